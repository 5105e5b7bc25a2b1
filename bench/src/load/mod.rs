//! The payments load test, `uslugi-bench load`: on a local stack of its own (moto, every
//! function under `cargo lambda watch` in a debug build, the local gateway), billers push
//! ≥ 1,000 charges through the batch endpoint, 50 citizens pay them concurrently — one bill
//! or several at a time, each request sent again with the same idempotency key as a flaky
//! mobile client would, some bills raced for by two clients — and the books are checked
//! from the table: every bill paid exactly once, the sums equal, no 5xx. Writes
//! bench/load-results.md; exits non-zero when a check fails.

pub(crate) mod api;
mod checks;
mod plan;
mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;

use shared::adapters::acquirer::SandboxAcquirer;
use shared::adapters::dynamodb::DynamoStore;
use shared::services::charges::{ChargeBody, ChargeService};
use uslugi_local::provision::Clients;
use uslugi_local::{Stack, StackOptions};

use crate::identity::fixtures::Fixtures;
use crate::identity::Citizen;
use crate::stack::RunSummary;
use api::{Api, Reply};
use checks::{KeyLog, Kind, Ledger, Sent, StoredBill};
use plan::{Method as PayMethod, Plan, Retry, Rng, Shape};

pub const USAGE: &str = "\
usage: uslugi-bench load [options]

Starts a local stack (debug builds under cargo lambda watch), creates bills and citizens,
pays every bill with concurrent clients that send requests again with the same
idempotency key, checks the books and writes bench/load-results.md. Exits 1 when a
check fails (a bill not paid exactly once, sums that differ, a 5xx).

options:
  --repo DIR                repository root (default: the directory above bench/)
  --out FILE                report to write (default: <repo>/bench/load-results.md)
  --bills N                 charges to create and pay (default: 1000)
  --clients N               concurrent citizens paying (default: 50)
  --billers N               billers the charges are spread over (default: 4)
  --batch N                 charges per batch request, at most 500 (default: 250)
  --lambda-concurrency N    instances per function under cargo lambda watch (default: 8)
  --race-every N            one single-bill payment in N is raced by another client
                            (default: 25; 0: no races)
  --seed N                  shapes the run: sizes, retries, races, amounts (default: 1)
  -h, --help                this text
";

/// Citizens of the load test are numbered from here (their phones and e-mails).
const CITIZEN_BASE: u32 = 190_000_000;
/// Times a request with no final answer (none, a 5xx, `payment_in_progress`) is sent
/// again, a second apart.
const RESENDS: usize = 3;
/// Reconciliation runs at most; each settles up to 200 payments.
const RECONCILE_RUNS: usize = 10;
/// Card tokens each client keeps in reserve, for a payment whose token was refused.
const SPARE_TOKENS: usize = 3;

pub struct Args {
    /// The repository, the report, the stack's instances of each function.
    stack: crate::cli::StackCommon,
    shape: Shape,
}

/// The options after `load`; `None` for `--help`.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut shape = Shape::default();
    let Some(stack) =
        crate::cli::parse_stack(args, "bench/load-results.md", 8, |flag, flags| match flag {
            "--bills" => flags.set(&mut shape.bills, flag),
            "--clients" => flags.set(&mut shape.clients, flag),
            "--billers" => flags.set(&mut shape.billers, flag),
            "--batch" => flags.set(&mut shape.batch, flag),
            "--race-every" => flags.set(&mut shape.race_every, flag),
            "--seed" => flags.set(&mut shape.seed, flag),
            _ => Ok(false),
        })?
    else {
        return Ok(None);
    };
    if shape.bills == 0 || shape.clients == 0 || shape.billers == 0 {
        bail!("--bills, --clients and --billers must be at least 1");
    }
    if !(1..=500).contains(&shape.batch) {
        bail!("--batch must be from 1 to 500");
    }
    Ok(Some(Args { stack, shape }))
}

fn say(message: impl std::fmt::Display) {
    eprintln!("uslugi-bench load: {message}");
}

/// Runs the load test and writes the report; `Ok(false)` when a check failed.
pub async fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    let plan = Plan::new(&args.shape);
    say(format!(
        "{} bills in {} payments by {} clients ({} races, at least {} requests)",
        plan.bills.len(),
        plan.payments(),
        args.shape.clients,
        plan.races(),
        plan.requests()
    ));

    say("starting the local stack (debug builds, cargo lambda watch; the first build takes minutes)");
    let stack = crate::stack::start(StackOptions {
        // Nothing is in flight when reconciliation runs (the clients are done), so it
        // need not leave young payments alone as it must in production.
        // Each bill of a payment counts against the account's bill lookup limit; a load
        // test's citizen pays far more bills in ten minutes than a person does.
        env_overrides: crate::stack::variables(&[
            ("RECONCILE_MIN_AGE_SECONDS", "0"),
            ("BILL_LOOKUPS_PER_WINDOW", "100000"),
        ]),
        ..crate::stack::options(&args.stack)
    })
    .await?;
    let stack_ready = started.elapsed();
    say(format!(
        "stack up in {:.0} s: gateway {}, logs in {}",
        stack_ready.as_secs_f64(),
        stack.gateway_url(),
        stack.log_dir().display()
    ));
    let result = load(args, &plan, &stack, stack_ready, started).await;
    stack.shutdown().await;
    result
}

/// Everything a client needs to pay one planned payment.
struct Job {
    owner: Request,
    retry: Retry,
    racer: Option<Request>,
}

/// One idempotency key's request, as a client sends it.
#[derive(Clone)]
struct Request {
    client: usize,
    session: String,
    ip: String,
    key: String,
    body: Json,
    uins: Vec<String>,
}

struct Member {
    token: String,
    ip: String,
}

async fn load(
    args: &Args,
    plan: &Plan,
    stack: &Stack,
    stack_ready: Duration,
    started: Instant,
) -> Result<bool> {
    let moto = Clients::new(&stack.moto_url());
    let table = crate::stack::pay_table(stack, &moto).await?;
    let store = || DynamoStore::new(moto.dynamodb.clone(), table.table_name.clone());
    let api = Api::new(stack.gateway_url());
    let setup = Instant::now();

    // Billers, as `uslugi-admin create-biller` makes them; charges through the API.
    let billers_service = ChargeService::new(store(), table.hasher.clone());
    let biller_keys = crate::portal::billers(
        &billers_service,
        "Получатель нагрузочного теста",
        args.shape.billers,
    )
    .await?;
    let mut batches = 0;
    let mut batch_times = Vec::new();
    for (n, key) in biller_keys.iter().enumerate() {
        let bills: Vec<Json> = plan
            .bills
            .iter()
            .filter(|b| b.biller == n)
            .map(|b| b.charge())
            .collect();
        for chunk in bills.chunks(args.shape.batch) {
            let reply = api
                .send(
                    Method::POST,
                    "/v1/biller/charges:batch",
                    &[("authorization", &format!("Bearer {key}"))],
                    Some(&json!({ "charges": chunk })),
                )
                .await;
            batches += 1;
            batch_times.push(reply.elapsed);
            let succeeded = reply.body["succeeded"].as_u64().unwrap_or(0);
            if reply.status != 200 || succeeded != chunk.len() as u64 {
                bail!(
                    "batch {batches} of biller {}: {} of {} charges created: {}",
                    n + 1,
                    succeeded,
                    chunk.len(),
                    reply.describe()
                );
            }
        }
    }
    say(format!(
        "{} charges created in {batches} batches",
        plan.bills.len()
    ));

    // Citizens and sessions, made with the identity services as the bench's fixtures do.
    let sessions_env = crate::stack::environment(stack, "sessions")?;
    let fixtures = Fixtures::with_env("sessions", &sessions_env, table.hasher.clone(), &moto)?;
    let mut members = Vec::new();
    for c in 0..args.shape.clients {
        let citizen = Citizen::new(CITIZEN_BASE + c as u32);
        let (_, session) = fixtures
            .member(&citizen)
            .await
            .with_context(|| format!("registering and signing citizen {c} in"))?;
        members.push(Member {
            token: session.token,
            ip: format!("198.51.100.{}", c % 250 + 1),
        });
    }
    say(format!("{} citizens signed in", members.len()));

    // One-time tokens from the acquirer's card page, made before the clients start so
    // that the run sends only the API's traffic; saved cards through the API.
    let acquirer = SandboxAcquirer::new(store());
    let needed = plan.card_tokens() + SPARE_TOKENS * args.shape.clients;
    let tokens = crate::portal::good_card_tokens(&acquirer, needed).await?;
    let mut tokens = tokens.into_iter();
    let mut next_token = || {
        tokens
            .next()
            .context("the plan counted too few card tokens")
    };
    let mut saved = BTreeMap::new();
    for (c, saves) in plan.saves_card.iter().enumerate() {
        if !saves {
            continue;
        }
        let m = &members[c];
        let reply = api
            .send(
                Method::POST,
                "/v1/payment-methods",
                &[
                    ("authorization", &format!("Bearer {}", m.token)),
                    ("x-forwarded-for", &m.ip),
                ],
                Some(&json!({"type": "card", "token": next_token()?})),
            )
            .await;
        let id = reply.text("id").map(str::to_string);
        match (reply.status, id) {
            (201, Some(id)) => {
                saved.insert(c, id);
            }
            _ => bail!("saving a card for client {c}: {}", reply.describe()),
        }
    }

    let run_id = crate::system::uuid().replace('-', "");
    let mut jobs: Vec<(Vec<Job>, Vec<String>)> = Vec::with_capacity(plan.clients.len());
    for (c, payments) in plan.clients.iter().enumerate() {
        let mut mine = Vec::with_capacity(payments.len());
        for (p, payment) in payments.iter().enumerate() {
            let uins: Vec<String> = payment
                .bills
                .iter()
                .map(|b| plan.bills[*b].uin.clone())
                .collect();
            let method = match (payment.method, saved.get(&c)) {
                (PayMethod::Saved, Some(id)) => json!({"type": "saved", "id": id}),
                _ => json!({"type": "card", "token": next_token()?}),
            };
            let request = |client: usize, key: String, method: Json| Request {
                client,
                session: members[client].token.clone(),
                ip: members[client].ip.clone(),
                key,
                body: json!({"uins": uins, "method": method}),
                uins: uins.clone(),
            };
            let owner = request(c, format!("load-{}-{c}-{p}", &run_id[..12]), method);
            let racer = match payment.racer {
                Some(r) => Some(request(
                    r,
                    format!("race-{}-{r}-{c}-{p}", &run_id[..12]),
                    json!({"type": "card", "token": next_token()?}),
                )),
                None => None,
            };
            mine.push(Job {
                owner,
                retry: payment.retry,
                racer,
            });
        }
        let spares = (0..SPARE_TOKENS)
            .map(|_| next_token())
            .collect::<Result<Vec<_>>>()?;
        jobs.push((mine, spares));
    }
    let setup_time = setup.elapsed();
    say(format!(
        "set up in {:.0} s; {} clients paying",
        setup_time.as_secs_f64(),
        jobs.len()
    ));

    // The clients, all at once.
    let paying = Instant::now();
    let mut clients = JoinSet::new();
    for (c, (mine, spares)) in jobs.into_iter().enumerate() {
        let api = api.clone();
        let seed = args
            .shape
            .seed
            .wrapping_mul(1_000_003)
            .wrapping_add(c as u64);
        clients.spawn(client(api, mine, spares, seed));
    }
    let mut logs = Vec::new();
    while let Some(done) = clients.join_next().await {
        logs.extend(done.context("a client task failed")?);
    }
    let paying_time = paying.elapsed();
    say(format!(
        "clients done in {:.1} s; reconciling",
        paying_time.as_secs_f64()
    ));

    let mut reconciliations = Vec::new();
    for _ in 0..RECONCILE_RUNS {
        let answer = api
            .fire_schedule("reconcile-payments")
            .await
            .context("reconciliation")?;
        // The schedule only plans the run; its pages are done when the queue is empty.
        let run = answer["run"].as_str().unwrap_or_default().to_string();
        crate::runs::wait_drained(&moto.sqs, "-reconcile", Duration::from_secs(600)).await?;
        let (_, totals) = crate::runs::page_totals(
            stack.log_dir(),
            "ReconcilePaymentsFunction",
            "reconciliation page done",
            &run,
            &["checked", "settled"],
        )?;
        let checked = totals.get("checked").copied().unwrap_or(0);
        let settled = totals.get("settled").copied().unwrap_or(0);
        reconciliations.push((checked, settled));
        if checked == 0 {
            break;
        }
    }

    say("reading the books");
    let mut ledger = read_ledger(&moto, &table.table_name).await?;
    let (charged_total, charged_orders) = acquirer
        .books()
        .await
        .map_err(|e| anyhow::anyhow!("the acquirer's books: {e}"))?;
    ledger.charged_total = charged_total;
    ledger.charged_orders = charged_orders;

    let planned: BTreeMap<String, u64> = plan
        .bills
        .iter()
        .map(|b| (b.uin.clone(), b.amount))
        .collect();
    let answers = checks::check_answers(&logs);
    let books = checks::check_books(&planned, &ledger, &answers);
    let passed = books.iter().all(|c| c.passed);

    let summary = RunSummary::at_end(&args.stack, setup_time, started).await;
    let markdown = report::render(&report::Run {
        summary,
        shape: &args.shape,
        plan,
        stack_ready,
        batches,
        batch_times: &batch_times,
        paying: paying_time,
        logs: &logs,
        answers: &answers,
        ledger: &ledger,
        reconciliations: &reconciliations,
        checks: &books,
    });
    crate::stack::publish(&args.stack, "load", &markdown)?;
    for c in books.iter().filter(|c| !c.passed) {
        say(format!("check failed: {}: {}", c.name, c.detail));
    }
    for u in answers.unexpected.iter().take(10) {
        say(format!("unexpected answers: {u}"));
    }
    Ok(passed)
}

/// One client: its payments one after another, each sent as its plan says.
async fn client(api: Api, jobs: Vec<Job>, mut spares: Vec<String>, seed: u64) -> Vec<KeyLog> {
    let mut rng = Rng::new(seed);
    let mut logs = Vec::new();
    for job in jobs {
        let raced = job.racer.is_some();
        let mut owner = KeyLog {
            key: job.owner.key.clone(),
            client: job.owner.client,
            uins: job.owner.uins.clone(),
            raced,
            sent: Vec::new(),
        };
        let mut racer = job.racer.as_ref().map(|r| KeyLog {
            key: r.key.clone(),
            client: r.client,
            uins: r.uins.clone(),
            raced,
            sent: Vec::new(),
        });
        // The first request, its concurrent duplicates and the racing client's request
        // go out together; duplicates a few milliseconds apart, as a client that gave
        // up waiting would send them.
        let copies = match job.retry {
            Retry::Concurrent(n) => n,
            Retry::ConcurrentThenAfter => 2,
            Retry::Once | Retry::After => 1,
        };
        let mut set = JoinSet::new();
        for i in 0..copies {
            let (kind, delay) = if i == 0 {
                (Kind::First, 0)
            } else {
                (Kind::Concurrent, rng.below(40))
            };
            set.spawn(post(api.clone(), job.owner.clone(), kind, delay));
        }
        if let Some(r) = &job.racer {
            set.spawn(post(api.clone(), r.clone(), Kind::Race, rng.below(5)));
        }
        while let Some(done) = set.join_next().await {
            let (key, sent) = match done {
                Ok(x) => x,
                Err(e) => (
                    job.owner.key.clone(),
                    Sent {
                        kind: Kind::First,
                        status: 0,
                        code: None,
                        field: None,
                        payment_id: None,
                        replayed: false,
                        elapsed: Duration::ZERO,
                        error: Some(format!("request task failed: {e}")),
                    },
                ),
            };
            match racer.as_mut() {
                Some(r) if r.key == key => r.sent.push(sent),
                _ => owner.sent.push(sent),
            }
        }
        if matches!(job.retry, Retry::After | Retry::ConcurrentThenAfter) {
            let delay = rng.below(100);
            owner.sent.push(
                post(api.clone(), job.owner.clone(), Kind::After, delay)
                    .await
                    .1,
            );
        }
        resend_until_final(&api, &job.owner, &mut owner).await;
        if let (Some(r), Some(log)) = (&job.racer, racer.as_mut()) {
            resend_until_final(&api, r, log).await;
        }
        // A card token refused as if it were a card number: as a person would, pay the
        // same bills again with the card entered anew (a new token, so a new key).
        let token_refused = owner.sent.iter().any(token_refused);
        logs.push(owner);
        logs.extend(racer);
        if token_refused {
            if let Some(token) = spares.pop() {
                let mut again = job.owner.clone();
                again.key = format!("{}-t", job.owner.key);
                again.body["method"] = json!({"type": "card", "token": token});
                let mut log = KeyLog {
                    key: again.key.clone(),
                    client: again.client,
                    uins: again.uins.clone(),
                    raced,
                    sent: vec![post(api.clone(), again.clone(), Kind::NewToken, 0).await.1],
                };
                resend_until_final(&api, &again, &mut log).await;
                logs.push(log);
            }
        }
    }
    logs
}

/// A card token the payment function refused as if it were a card number.
fn token_refused(s: &Sent) -> bool {
    s.status == 422
        && s.code.as_deref() == Some("card_number_not_accepted")
        && s.field.as_deref() == Some("/method/token")
}

/// An answer a client acts on: anything but no answer, a 5xx or "still in progress".
fn is_final(s: &Sent) -> bool {
    (200..500).contains(&s.status) && s.code.as_deref() != Some("payment_in_progress")
}

async fn resend_until_final(api: &Api, request: &Request, log: &mut KeyLog) {
    for _ in 0..RESENDS {
        if log.sent.iter().any(is_final) {
            return;
        }
        log.sent.push(
            post(api.clone(), request.clone(), Kind::Resend, 1000)
                .await
                .1,
        );
    }
}

/// `POST /v1/payments` after `delay_ms`; the key and what was answered.
async fn post(api: Api, request: Request, kind: Kind, delay_ms: u64) -> (String, Sent) {
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    let reply: Reply = api
        .send(
            Method::POST,
            "/v1/payments",
            &[
                ("authorization", &format!("Bearer {}", request.session)),
                ("idempotency-key", &request.key),
                ("x-forwarded-for", &request.ip),
            ],
            Some(&request.body),
        )
        .await;
    let payment_id = reply
        .text("id")
        .or_else(|| reply.text("payment_id"))
        .map(str::to_string);
    let sent = Sent {
        kind,
        status: reply.status,
        code: reply.code().map(str::to_string),
        field: reply.body["errors"][0]["field"]
            .as_str()
            .map(str::to_string),
        payment_id,
        replayed: reply.replayed,
        elapsed: reply.elapsed,
        error: reply.error.clone(),
    };
    (request.key, sent)
}

/// Charges, payments and open reconciliation entries, by scanning the whole table (a test
/// tool may; the functions never do).
async fn read_ledger(moto: &Clients, table: &str) -> Result<Ledger> {
    let mut ledger = Ledger::default();
    for row in crate::table::scan(moto, table).await? {
        let pk = row.text("pk").unwrap_or_default();
        let sk = row.text("sk").unwrap_or_default();
        if let (Some(uin), "CHARGE") = (pk.strip_prefix("CHARGE#"), sk.as_str()) {
            let doc = row
                .text("doc")
                .with_context(|| format!("charge {uin}: no doc"))?;
            let body: ChargeBody =
                serde_json::from_str(&doc).with_context(|| format!("charge {uin}: its doc"))?;
            ledger.bills.push(StoredBill {
                uin: uin.to_string(),
                status: row.text("status").unwrap_or_default(),
                paid_by: row.text("paid_by"),
                locked_by: row.text("lock_payment"),
                // The load test's charges carry no discount: what is due is the amount.
                amount: body.amount,
            });
        } else if pk.starts_with("ACCOUNT#") && sk.starts_with("PAYMENT#") {
            ledger.payments.push(row.payment(&sk)?);
        } else if pk == "RECONCILE" {
            ledger.open_reconciliations += 1;
        }
    }
    let ids: BTreeSet<&str> = ledger.payments.iter().map(|p| p.id.as_str()).collect();
    if ids.len() != ledger.payments.len() {
        bail!("the table holds a payment id under two keys");
    }
    Ok(ledger)
}
