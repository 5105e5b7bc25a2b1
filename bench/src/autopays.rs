//! The daily autopay run at scale, `uslugi-bench autopays`: on a local stack of its own,
//! seeds citizens with verified documents, a saved card, one due bill per autopay and
//! the autopays themselves straight through the shared services (no HTTP registration),
//! fires the run's schedule, waits for its queue to drain, and checks that every bill
//! was paid exactly once and the acquirer charged once per bill. Writes
//! bench/autopays-results.md: time, AWS calls per autopay (through a counting proxy in
//! front of moto), pages, retries.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::json;
use time::OffsetDateTime;

use shared::adapters::acquirer::SandboxAcquirer;
use shared::adapters::dynamodb::DynamoStore;
use shared::domain::{Category, Owner};
use shared::services::autopays::{
    Autopay, AutopayStatus, AutopayStore, Match, Trigger, MAX_AUTOPAYS, SCHEDULE_SHARDS,
};
use shared::services::bills::BillStore;
use shared::services::charges::ChargeStatus;
use shared::services::identity::Presence;
use shared::services::payments::{
    NewMethod, PayingAs, PaymentNotice, PaymentNoticeQueue, PaymentService, PaymentStore,
};
use shared::services::runs::Shard;
use shared::services::{Cap, StoreError, MOSCOW};
use uslugi_local::provision::Clients;
use uslugi_local::{Stack, StackOptions};

use crate::identity::fixtures::Outbox;
use crate::load::api::Api;
use crate::portal::documents::{uin, AdultDocuments};
use crate::portal::{card_token, charge_body, test_card, Portal, GOOD_CARD};
use crate::proxy::{self, Call, Recorder};

pub const USAGE: &str = "\
usage: uslugi-bench autopays [options]

Seeds due autopays on a local stack of its own, fires the daily run, waits for its
queue to drain, checks every bill paid once and charged once, and writes
bench/autopays-results.md.

options:
  --repo DIR                repository root (default: the directory above bench/)
  --out FILE                report to write (default: <repo>/bench/autopays-results.md)
  --autopays N              due autopays (default: 5000), 7 to a citizen (one per category)
  --pages-at-once N         the run queue's MaximumConcurrency (default: 8)
  --lambda-concurrency N    instances of each function the stack runs (default: 8)
  -h, --help                this text
";

/// Citizens' serial numbers: apart from the other benches' and the demo data's.
const CITIZEN_BASE: u32 = 230_000_000;
/// Bills' serial numbers (UINs `188…`).
const UIN_BASE: u64 = 7_000_000_000;
/// The sandbox acquirer's card that always succeeds.
/// Citizens seeded at once.
const SEEDING: usize = 16;

pub struct Args {
    /// The repository, the report, the stack's instances of each function.
    stack: crate::cli::StackCommon,
    pub autopays: usize,
    pub pages_at_once: u32,
}

pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut autopays = 5_000;
    let mut pages_at_once = 8;
    let Some(stack) = crate::cli::parse_stack(
        args,
        "bench/autopays-results.md",
        8,
        |flag, flags| match flag {
            "--autopays" => flags.set(&mut autopays, flag),
            "--pages-at-once" => flags.set(&mut pages_at_once, flag),
            _ => Ok(false),
        },
    )?
    else {
        return Ok(None);
    };
    if autopays == 0 || pages_at_once < 2 {
        bail!("--autopays at least 1, --pages-at-once at least 2");
    }
    Ok(Some(Args {
        stack,
        autopays,
        pages_at_once,
    }))
}

fn say(message: impl std::fmt::Display) {
    eprintln!("uslugi-bench autopays: {message}");
}

/// Saving a card queues no notice; nothing here pays.
struct NoNotices;

impl PaymentNoticeQueue for NoNotices {
    async fn queue_notices(&self, _: &[PaymentNotice]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// One seeded autopay and the bill it must pay.
struct Seeded {
    account_id: String,
    uin: String,
}

/// Runs the benchmark and writes the report; `Ok(false)` when a check failed.
pub async fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    // Functions reach moto through the counting proxy: every AWS call of the run is
    // counted by operation.
    let moto_port = uslugi_local::ports::free_port().context("a port for moto")?;
    let recorder = Arc::new(Recorder::default());
    let proxy = proxy::start(([127, 0, 0, 1], moto_port).into(), recorder.clone()).await?;
    say("starting the local stack (debug builds, cargo lambda watch; the first build takes minutes)");
    let stack = crate::stack::start(StackOptions {
        moto_port,
        env_overrides: vec![
            ("AWS_ENDPOINT_URL".into(), format!("http://{}", proxy.addr)),
            // Each bill an autopay looks at is a lookup of its account's list.
            ("BILL_LOOKUPS_PER_WINDOW".into(), "100000".into()),
        ],
        param_overrides: vec![(
            "AutopayRunMaxConcurrency".into(),
            args.pages_at_once.to_string(),
        )],
        ..crate::stack::options(&args.stack)
    })
    .await?;
    let result = bench(args, &stack, &recorder, started).await;
    stack.shutdown().await;
    drop(proxy);
    result
}

async fn bench(args: &Args, stack: &Stack, recorder: &Recorder, started: Instant) -> Result<bool> {
    let moto = Clients::new(&stack.moto_url());
    let table = crate::stack::pay_table(stack, &moto).await?;
    let hasher = table.hasher.clone();
    let store = || DynamoStore::new(moto.dynamodb.clone(), table.table_name.clone());
    let portal = Portal::with_env(
        "profile",
        &crate::stack::environment(stack, "profile")?,
        hasher.clone(),
        &moto,
    )?;
    let payments = PaymentService::new(
        store(),
        SandboxAcquirer::new(store()),
        Outbox::default(),
        NoNotices,
        hasher.clone(),
    );
    let acquirer = SandboxAcquirer::new(store());
    let autopay_store = store();

    // Today's trigger, as the run will look for it.
    let today = OffsetDateTime::now_utc().to_offset(MOSCOW).date();
    let trigger = if today.day() <= 28 {
        Trigger::Monthly { day: today.day() }
    } else {
        Trigger::Weekly {
            weekday: today.weekday().number_from_monday(),
        }
    };
    let (biller_id, _) = portal.biller("Получатель автоплатежей").await?;
    let categories = Category::ALL;
    let per_citizen = categories.len().min(MAX_AUTOPAYS);
    let citizens = args.autopays.div_ceil(per_citizen);
    say(format!(
        "seeding {} autopays of {citizens} citizens ({trigger:?})",
        args.autopays
    ));
    let seeding = Instant::now();
    let now = OffsetDateTime::now_utc();
    let card = test_card(GOOD_CARD, now);
    // Registration sends codes whose send log is one item per client address: one
    // citizen registers at a time, the rest of the seeding runs at once.
    let registering = tokio::sync::Mutex::new(());
    let seed_one = |c: usize| {
        let (portal, payments, acquirer, autopay_store, biller_id, card, registering) = (
            &portal,
            &payments,
            &acquirer,
            &autopay_store,
            &biller_id,
            &card,
            &registering,
        );
        async move {
            let serial = CITIZEN_BASE + u32::try_from(c)?;
            let member = {
                let _one_at_a_time = registering.lock().await;
                portal.member(serial).await?
            };
            let documents = AdultDocuments::verified(u64::from(serial), c.is_multiple_of(2));
            portal
                .make_standard(&member.account_id, &documents.profile_body())
                .await?;
            let token = card_token(acquirer, card, OffsetDateTime::now_utc()).await?;
            let method = payments
                .add_method(
                    &PayingAs::Citizen(member.account_id.parse()?),
                    NewMethod::Card(token),
                    Presence { fresh: true },
                    OffsetDateTime::now_utc(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("saving a card: {e}"))?;
            let count = per_citizen.min(args.autopays - c * per_citizen);
            let mut seeded = Vec::with_capacity(count);
            for (j, (name, category)) in categories.iter().take(count).enumerate() {
                let n = c * per_citizen + j;
                let bill = uin(UIN_BASE + n as u64);
                let amount = 10_000 + (n as u64 % 1_000) * 100;
                let payers = json!([{"kind": "snils", "value": documents.snils}]);
                portal
                    .put_charge(biller_id, &bill, &charge_body(name, amount, payers))
                    .await?;
                let autopay = Autopay {
                    id: format!("ap_{:032x}", UIN_BASE + n as u64).parse()?,
                    account_id: member.account_id.parse()?,
                    name: format!("Автоплатёж {name}"),
                    matching: Match::Category {
                        category: *category,
                    },
                    method_id: method.id.clone(),
                    limit: 1_000_000,
                    trigger,
                    status: AutopayStatus::Active,
                    paused_reason: None,
                    created_at: OffsetDateTime::now_utc().unix_timestamp(),
                    generation: 0,
                };
                autopay_store
                    .create_autopay(
                        &autopay,
                        Cap {
                            limit: MAX_AUTOPAYS,
                            seen: j,
                        },
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("writing an autopay: {e}"))?;
                seeded.push(Seeded {
                    account_id: member.account_id.clone(),
                    uin: bill,
                });
            }
            Ok::<_, anyhow::Error>(seeded)
        }
    };
    let seeded: Vec<Seeded> = stream::iter(0..citizens)
        .map(seed_one)
        .buffer_unordered(SEEDING)
        .try_collect::<Vec<Vec<Seeded>>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let seeding_time = seeding.elapsed();
    say(format!(
        "seeded {} autopays in {:.0} s; firing the run",
        seeded.len(),
        seeding_time.as_secs_f64()
    ));

    // The run: the schedule plans, the queue's pages pay.
    let _ = recorder.take_outside();
    let running = Instant::now();
    let api = Api::new(stack.gateway_url());
    let answer = api.fire_schedule("run-autopays").await?;
    let run = answer["run"].as_str().unwrap_or_default().to_string();
    let planned = answer["planned"].as_u64().unwrap_or(0);
    crate::runs::wait_drained(&moto.sqs, "-autopay-run", Duration::from_secs(4 * 3600)).await?;
    let run_time = running.elapsed();
    let calls = recorder.take_outside();
    say(format!(
        "run {run} drained in {:.0} s; checking the books",
        run_time.as_secs_f64()
    ));

    // The books: every bill paid, by one payment, charged once.
    let (pages, totals) = crate::runs::page_totals(
        stack.log_dir(),
        "RunAutopaysFunction",
        "schedule page done",
        &run,
        &["ran"],
    )?;
    let (completed, _) = crate::runs::page_totals(
        stack.log_dir(),
        "RunAutopaysFunction",
        "scheduled autopay run completed",
        &run,
        &[],
    )?;
    let (failed_pages, _) = crate::runs::page_totals(
        stack.log_dir(),
        "RunAutopaysFunction",
        "autopay run failed; its page comes back",
        "",
        &[],
    )?;
    let store = store();
    let mut unpaid = Vec::new();
    // What the bills asked on the day of the run (a fine's discount halves it).
    let mut expected_total = 0;
    let mut payments_per_bill: BTreeMap<String, usize> = BTreeMap::new();
    let mut read_back = 0;
    for chunk in seeded.chunks(100) {
        let uins = chunk
            .iter()
            .map(|s| {
                shared::domain::Uin::parse("uin", &s.uin)
                    .map_err(|e| anyhow::anyhow!("a seeded UIN: {}", e.code))
            })
            .collect::<Result<Vec<_>>>()?;
        let charges = store
            .charges(&uins)
            .await
            .map_err(|e| anyhow::anyhow!("reading the bills: {e}"))?;
        read_back += charges.len();
        for c in &charges {
            expected_total += c.amount_due(today);
            if c.status != ChargeStatus::Paid {
                unpaid.push(c.uin.as_str().to_string());
            }
        }
    }
    let mut accounts: Vec<&str> = seeded.iter().map(|s| s.account_id.as_str()).collect();
    accounts.dedup();
    for account in accounts {
        let made = store
            .owner_payments(&Owner::Citizen(account.parse()?), 0, i64::MAX)
            .await
            .map_err(|e| anyhow::anyhow!("reading payments: {e}"))?;
        for p in made {
            for b in &p.bills {
                *payments_per_bill
                    .entry(b.uin.as_str().to_string())
                    .or_default() += 1;
            }
        }
    }
    let paid_twice = payments_per_bill.values().filter(|&&n| n > 1).count();
    let paid_once = seeded
        .iter()
        .filter(|s| payments_per_bill.get(&s.uin) == Some(&1))
        .count();
    let (charged_total, orders) = acquirer
        .books()
        .await
        .map_err(|e| anyhow::anyhow!("the acquirer's books: {e}"))?;
    let checks = [
        ("every bill paid", unpaid.is_empty()),
        (
            "one payment per bill",
            paid_once == seeded.len() && paid_twice == 0,
        ),
        (
            "the acquirer charged once per bill, the bills' sum",
            orders == seeded.len() && charged_total == expected_total,
        ),
        ("every bill read back", read_back == seeded.len()),
        ("the run completed once", completed == 1),
    ];
    let ok = checks.iter().all(|(_, passed)| *passed);

    let mut by_operation: BTreeMap<&str, usize> = BTreeMap::new();
    for Call { operation, .. } in &calls {
        *by_operation.entry(operation.as_str()).or_default() += 1;
    }
    let machine = crate::system::machine_info(&args.stack.repo).await;
    let mut out = String::new();
    let per = |n: usize| n as f64 / seeded.len().max(1) as f64;
    let _ = writeln!(
        out,
        "# The daily autopay run at scale\n\n{}; {} ({} cores), {}; {}; moto {}.\n",
        machine.date, machine.cpu_model, machine.nproc, machine.memory, machine.rustc, machine.moto
    );
    let _ = writeln!(
        out,
        "`bash bench/run.sh autopays` \
         (`uslugi-bench autopays --autopays {}`) on the local stack: moto, debug builds \
         under `cargo lambda watch` with {} instances a function, the run queue's \
         `MaximumConcurrency` {}. Wall times are this machine's and moto's (about 200 \
         writes a second), not AWS's: [the capacity page](../docs/architecture/capacity.md#capacity-at-city-scale) \
         works out AWS from the calls counted here.\n",
        seeded.len(),
        args.stack.lambda_concurrency,
        args.pages_at_once
    );
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| autopays due (citizens) | {} ({citizens}) |",
        seeded.len()
    );
    let _ = writeln!(
        out,
        "| seeding (services and DynamoDB, no HTTP) | {:.0} s |",
        seeding_time.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| the run, schedule to queue drained | {:.0} s ({:.1} autopays/s) |",
        run_time.as_secs_f64(),
        seeded.len() as f64 / run_time.as_secs_f64().max(0.001)
    );
    let _ = writeln!(
        out,
        "| shards | {} per trigger + the unsharded partition; {planned} first pages |",
        SCHEDULE_SHARDS
    );
    let _ = writeln!(
        out,
        "| pages handled (`schedule page done`) | {pages}; autopays that ran: {} |",
        totals.get("ran").copied().unwrap_or(0)
    );
    let _ = writeln!(
        out,
        "| retries (`autopay run failed; its page comes back`) | {failed_pages} |"
    );
    let _ = writeln!(
        out,
        "| AWS calls during the run, all functions | {} ({:.1} per autopay) |",
        calls.len(),
        per(calls.len())
    );
    let _ = writeln!(
        out,
        "| the acquirer | {orders} orders, {charged_total} kopecks charged; the bills asked {expected_total} |"
    );
    let _ = writeln!(
        out,
        "| total time, stack start to books | {:.0} s |\n",
        started.elapsed().as_secs_f64()
    );
    let _ = writeln!(out, "## Checks\n\n| check | |\n|---|---|");
    for (name, passed) in &checks {
        let _ = writeln!(
            out,
            "| {name} | {} |",
            if *passed { "ok" } else { "FAILED" }
        );
    }
    let _ = writeln!(
        out,
        "\n## AWS calls per autopay, by operation\n\nEvery call a function made through \
         moto during the run (run-autopays' pages, and the payment-notices worker the \
         payments feed).\n\n| operation | calls | per autopay |\n|---|---|---|"
    );
    let mut ops: Vec<(&str, usize)> = by_operation.into_iter().collect();
    ops.sort_by_key(|op| std::cmp::Reverse(op.1));
    for (operation, n) in ops {
        let _ = writeln!(out, "| `{operation}` | {n} | {:.2} |", per(n));
    }
    std::fs::write(&args.stack.out, &out)
        .with_context(|| format!("writing {}", args.stack.out.display()))?;
    say(format!("wrote {}", args.stack.out.display()));
    for (name, passed) in &checks {
        say(format!("{}: {name}", if *passed { "ok" } else { "FAILED" }));
    }
    if !unpaid.is_empty() {
        say(format!("unpaid, e.g. {:?}", &unpaid[..unpaid.len().min(5)]));
    }
    // Which shards the run went through: each autopay's, as the index files it.
    let shards: std::collections::BTreeSet<Shard> = (0..seeded.len())
        .map(|n| Shard::of(&format!("ap_{:032x}", UIN_BASE + n as u64), SCHEDULE_SHARDS))
        .collect();
    say(format!("{} shards held the autopays", shards.len()));
    Ok(ok)
}
