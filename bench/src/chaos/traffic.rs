//! The chaos run's traffic and what it reads afterwards: billers, payers and verified
//! holders made before the faults; registrations, profile edits, charge batches and
//! payments during them, each client sending again after a 503 or no answer as a real
//! one would; then the table, the outbox and the dead-letter queues.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::Method;
use serde_json::{json, Value as Json};

use shared::adapters::acquirer::SandboxAcquirer;
use shared::adapters::dynamodb::DynamoStore;
use shared::services::charges::ChargeService;
use uslugi_local::provision::Clients;
use uslugi_local::Stack;

use super::api::{Api, Reply};
use super::invariants::{Due, Observed, OrderRow, VerificationRow};
use crate::identity::fixtures::Fixtures;
use crate::identity::Citizen;
use crate::portal::documents::{self, AdultDocuments, Sandbox};

/// Payable bills, holders' documents, new bills and registrants' documents are
/// numbered from these (apart, so no document of one is another's).
const BILL_SERIAL: u64 = 80_000_000;
const HOLDER_SERIAL: u64 = 81_000_000;
const NOTICE_SERIAL: u64 = 82_000_000;
const REGISTRANT_SERIAL: u64 = 83_000_000;
const PAYER_BASE: u32 = 191_000_000;
/// Attempts of one step of a client before it gives up.
pub const ATTEMPTS: usize = 10;
const PASSWORD: &str = "Zx8#kettle-Orbit";
/// Bills per payment at most.
const BILLS_PER_PAYMENT: usize = 3;
const BATCH: usize = 25;
/// New bills are of an education category: told by e-mail unless a citizen turns it off.
const NOTICE_CATEGORY: &str = "kindergarten";
use shared::services::bill_notices::NOTICE_SUBJECT;
use shared::services::payments::RECEIPT_SUBJECT;

/// How big the run is (see `chaos --help`).
#[derive(Debug, Clone)]
pub struct Shape {
    pub bills: usize,
    pub clients: usize,
    pub registrations: usize,
    pub holders: usize,
    pub notices: usize,
}

/// A citizen registered through the API.
#[derive(Debug, Clone)]
pub struct Registrant {
    pub email: String,
    pub account_id: String,
    pub token: String,
}

pub struct World {
    biller_keys: Vec<String>,
    /// Payers' session tokens and addresses.
    payers: Vec<(String, String)>,
    /// Payers' e-mails, where their receipts go.
    payer_emails: Vec<String>,
    /// Card tokens, one per payment, in order.
    card_tokens: Vec<String>,
    holders: Vec<(Registrant, String)>,
    table: String,
}

/// What the faulty phase did, as its clients saw it.
#[derive(Debug, Default)]
pub struct Outcome {
    pub charges_written: usize,
    pub batches: usize,
    pub batch_resends: usize,
    pub payments_sent: usize,
    pub payment_requests: usize,
    /// Final answers of the payments, by status and code.
    pub payment_answers: BTreeMap<String, usize>,
    pub registered: Vec<Registrant>,
    pub registrations_abandoned: usize,
    pub profile_edits: usize,
    pub notices_due: Vec<Due>,
}

/// The backoff after a refused step: the server's `Retry-After`, at most two seconds,
/// or one second.
async fn pause(reply: &Reply) {
    let seconds = reply.body["retry_after"].as_u64().unwrap_or(1).clamp(1, 2);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

fn auth(token: &str) -> String {
    format!("Bearer {token}")
}

pub async fn set_up(api: &Api, stack: &Stack, moto: &Clients, shape: &Shape) -> Result<World> {
    let table = crate::stack::pay_table(stack, moto).await?;
    let hasher = table.hasher.clone();
    let store = || DynamoStore::new(moto.dynamodb.clone(), table.table_name.clone());

    let billers = ChargeService::new(store(), table.hasher.clone());
    let biller_keys = crate::portal::billers(&billers, "Получатель хаос-прогона", 2).await?;

    let sessions_env = crate::stack::environment(stack, "sessions")?;
    let fixtures = Fixtures::with_env("sessions", &sessions_env, hasher, moto)?;
    let mut payers = Vec::new();
    let mut payer_emails = Vec::new();
    for c in 0..shape.clients {
        let citizen = Citizen::new(PAYER_BASE + c as u32);
        payer_emails.push(citizen.email.to_lowercase());
        let (_, session) = fixtures
            .member(&citizen)
            .await
            .with_context(|| format!("registering and signing payer {c} in"))?;
        payers.push((session.token, format!("198.51.100.{}", c % 250 + 1)));
    }

    let acquirer = SandboxAcquirer::new(store());
    let card_tokens = crate::portal::good_card_tokens(&acquirer, shape.bills).await?;

    // Holders register and are verified before the faults, so that whether a new bill
    // is theirs is decided; their e-mails are what the new-bill notices are counted by.
    let mut holders = Vec::new();
    for h in 0..shape.holders {
        let documents = AdultDocuments::verified(HOLDER_SERIAL + h as u64, h % 2 == 1);
        let Some(holder) = register(api, &format!("holder{h}"), 100 + h as u32, &documents).await?
        else {
            bail!("holder {h} could not register without faults");
        };
        holders.push((holder, documents.snils));
    }
    for (holder, _) in &holders {
        wait_verified(api, holder).await?;
    }
    Ok(World {
        biller_keys,
        payers,
        payer_emails,
        card_tokens,
        holders,
        table: table.table_name.clone(),
    })
}

/// Polls a holder's profile until every submitted document is verified (a minute).
async fn wait_verified(api: &Api, who: &Registrant) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = profile(api, &who.token).await;
        let states = verification_states(&reply.body);
        if reply.status == 200 && !states.is_empty() && states.iter().all(|(_, s)| s == "verified")
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "holder {} was not verified in a minute: {}",
                who.email,
                reply.describe()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The checked fields of a profile and where each stands, leaving out those never
/// submitted.
fn verification_states(profile: &Json) -> Vec<(String, String)> {
    profile["verification"]
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|(field, v)| {
                    let state = v["status"].as_str()?;
                    (state != "unverified").then(|| (field.clone(), state.to_string()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A verification token for `destination` through the code flow and the outbox; `None`
/// when every attempt failed.
async fn verified_destination(
    api: &Api,
    channel: &str,
    destination: &str,
    ip: &str,
) -> Option<String> {
    for _ in 0..ATTEMPTS {
        let sent = api
            .send(
                Method::POST,
                "/v1/codes",
                "/v1/codes",
                &[("x-forwarded-for", ip)],
                Some(&json!({"channel": channel, "destination": destination, "purpose": "registration"})),
            )
            .await;
        if sent.status != 202 {
            pause(&sent).await;
            continue;
        }
        let id = sent.text("id").unwrap_or_default().to_string();
        let Some(code) = code_in_outbox(api, destination).await else {
            continue;
        };
        let path = format!("/v1/codes/{id}/verify");
        let body = json!({ "code": code });
        if let Some(verified) =
            post_until(api, "/v1/codes/{id}/verify", &path, ip, &body, 200).await
        {
            return verified.text("verification_token").map(str::to_string);
        }
    }
    None
}

/// `GET /v1/profile` in the session of `token`.
async fn profile(api: &Api, token: &str) -> Reply {
    api.send(
        Method::GET,
        "/v1/profile",
        "/v1/profile",
        &[("authorization", &auth(token))],
        None,
    )
    .await
}

/// `POST path` (counted under `route`) from `ip`, sent again after a transient answer
/// (pausing as told), until it is answered `want`: that answer; `None` when another
/// answer came or every attempt failed.
async fn post_until(
    api: &Api,
    route: &str,
    path: &str,
    ip: &str,
    body: &Json,
    want: u16,
) -> Option<Reply> {
    for _ in 0..ATTEMPTS {
        let reply = api
            .send(
                Method::POST,
                route,
                path,
                &[("x-forwarded-for", ip)],
                Some(body),
            )
            .await;
        if reply.status == want {
            return Some(reply);
        }
        if !reply.transient() {
            return None;
        }
        pause(&reply).await;
    }
    None
}

/// The code in the newest message to `to`, waiting up to three seconds for it (a slow
/// send arrives late).
async fn code_in_outbox(api: &Api, to: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let messages = outbox(api, to).await;
        if let Some(code) = messages
            .first()
            .and_then(|m| m["text"].as_str())
            .and_then(extract_code)
        {
            return Some(code);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn extract_code(text: &str) -> Option<String> {
    let rest = text.split("Код подтверждения: ").nth(1)?;
    let code: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    (code.len() == 6).then_some(code)
}

/// The local stack's outbox for `to`, newest first (not counted: not the API's).
async fn outbox(api: &Api, to: &str) -> Vec<Json> {
    let reply = api
        .local_get(&format!("/_local/outbox?to={}", encode(to)))
        .await;
    reply.body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Registers citizen `name` through the API, signs in and fills the profile in with
/// `documents` (which queues their checks). `None`: a step failed on every attempt.
async fn register(
    api: &Api,
    name: &str,
    n: u32,
    documents: &AdultDocuments,
) -> Result<Option<Registrant>> {
    let email = format!("chaos.{name}@example.ru");
    let phone = format!("+7998{:07}", n);
    let ip = format!("203.0.113.{}", n % 250 + 1);
    let Some(email_token) = verified_destination(api, "email", &email, &ip).await else {
        return Ok(None);
    };
    let Some(phone_token) = verified_destination(api, "sms", &phone, &ip).await else {
        return Ok(None);
    };
    let citizen = Citizen {
        last_name: "Соколова",
        first_name: "Анна",
        middle_name: Some("Игоревна"),
        email,
        phone,
        password: PASSWORD.to_string(),
        security_question: "Девичья фамилия матери",
        security_answer: "Ёлкина",
    };
    let body = citizen.registration(&citizen.phone, PASSWORD, &email_token, &phone_token);
    let email = citizen.email;
    // Without an account id (an earlier attempt whose answer was lost may have made the
    // account), signing in tells.
    let mut account_id = post_until(api, "/v1/accounts", "/v1/accounts", &ip, &body, 201)
        .await
        .and_then(|r| r.text("account_id").map(str::to_string));
    let login = json!({"login": email, "password": PASSWORD, "foreign_computer": false});
    let token = post_until(api, "/v1/sessions", "/v1/sessions", &ip, &login, 201)
        .await
        .and_then(|r| r.text("token").map(str::to_string));
    let Some(token) = token else {
        return Ok(None);
    };
    let bearer = auth(&token);
    let mut filled = false;
    for _ in 0..ATTEMPTS {
        let read = profile(api, &token).await;
        if read.status != 200 {
            pause(&read).await;
            continue;
        }
        if account_id.is_none() {
            account_id = read.text("account_id").map(str::to_string);
        }
        let version = read.etag.clone().unwrap_or_default();
        let edit = api
            .send(
                Method::PATCH,
                "/v1/profile",
                "/v1/profile",
                &[("authorization", &bearer), ("if-match", &version)],
                Some(&documents.profile_body()),
            )
            .await;
        match edit.status {
            200 | 202 => {
                filled = true;
                break;
            }
            // Written by an attempt whose answer was lost, or read before it: read again.
            412 => continue,
            _ if edit.transient() => pause(&edit).await,
            _ => bail!("PATCH /v1/profile of {email}: {}", edit.describe()),
        }
    }
    if !filled {
        return Ok(None);
    }
    Ok(Some(Registrant {
        email,
        account_id: account_id.unwrap_or_default(),
        token,
    }))
}

/// Pushes `charges` for `biller` in batches, each sent again until every item is
/// written; returns (batches, resends).
async fn push(api: &Api, key: &str, charges: &[Json]) -> Result<(usize, usize)> {
    let mut batches = 0;
    let mut resends = 0;
    for chunk in charges.chunks(BATCH) {
        batches += 1;
        let mut done = false;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                resends += 1;
            }
            let reply = api
                .send(
                    Method::POST,
                    "/v1/biller/charges:batch",
                    "/v1/biller/charges:batch",
                    &[("authorization", &auth(key))],
                    Some(&json!({ "charges": chunk })),
                )
                .await;
            if reply.status == 200 && reply.body["failed"].as_u64() == Some(0) {
                done = true;
                break;
            }
            pause(&reply).await;
        }
        if !done {
            bail!(
                "a batch of {} charges was not written in {ATTEMPTS} attempts",
                chunk.len()
            );
        }
    }
    Ok((batches, resends))
}

pub async fn faulty_phase(api: &Api, world: &World, shape: &Shape) -> Result<Outcome> {
    let registrations = async {
        let mut set = tokio::task::JoinSet::new();
        for r in 0..shape.registrations {
            let api = api.clone();
            set.spawn(async move {
                let documents = AdultDocuments::new(
                    REGISTRANT_SERIAL + r as u64,
                    r % 2 == 0,
                    Sandbox::Verified,
                    // Some registrants' passports are refused by the registry.
                    if r % 4 == 3 {
                        Sandbox::Mismatch
                    } else {
                        Sandbox::Verified
                    },
                    Sandbox::Verified,
                );
                register(&api, &format!("citizen{r}"), 200 + r as u32, &documents).await
            });
        }
        let mut registered = Vec::new();
        let mut abandoned = 0;
        while let Some(done) = set.join_next().await {
            match done.context("a registration task failed")?? {
                Some(r) => registered.push(r),
                None => abandoned += 1,
            }
        }
        Ok::<_, anyhow::Error>((registered, abandoned))
    };
    let billing = async {
        let mut outcome = Outcome::default();
        // New bills for the holders first: each is due to its holder by e-mail.
        let mut notice_charges = Vec::new();
        for (h, (holder, snils)) in world.holders.iter().enumerate() {
            for k in 0..shape.notices {
                let serial = NOTICE_SERIAL + (h * shape.notices + k) as u64;
                let uin = documents::uin(serial);
                let mut body = crate::portal::charge_body(
                    NOTICE_CATEGORY,
                    150_000,
                    json!([{"kind": "snils", "value": snils}]),
                );
                body["uin"] = json!(uin);
                notice_charges.push(body);
                outcome.notices_due.push(Due {
                    to: holder.email.clone(),
                    uin,
                });
            }
        }
        let bills: Vec<(String, u64, Json)> = (0..shape.bills)
            .map(|i| {
                let serial = BILL_SERIAL + i as u64;
                let uin = documents::uin(serial);
                let amount = 10_000 + (serial * 7919) % 500_000;
                let mut body = crate::portal::charge_body(
                    "utilities",
                    amount,
                    json!([{"kind": "snils", "value": documents::snils(serial, Sandbox::Verified)}]),
                );
                body["uin"] = json!(uin);
                (uin, amount, body)
            })
            .collect();
        let key0 = &world.biller_keys[0];
        let key1 = &world.biller_keys[world.biller_keys.len() - 1];
        let payable: Vec<Json> = bills.iter().map(|b| b.2.clone()).collect();
        let (a, b) = tokio::try_join!(push(api, key0, &notice_charges), push(api, key1, &payable))?;
        outcome.batches = a.0 + b.0;
        outcome.batch_resends = a.1 + b.1;
        outcome.charges_written = notice_charges.len() + payable.len();

        // The payers: client c pays bills c, c + clients, ... in payments of one to three.
        let mut set = tokio::task::JoinSet::new();
        let mut tokens = world.card_tokens.iter();
        for (c, (session, ip)) in world.payers.iter().enumerate() {
            let mine: Vec<String> = bills
                .iter()
                .skip(c)
                .step_by(world.payers.len())
                .map(|b| b.0.clone())
                .collect();
            let mut payments = Vec::new();
            for (p, group) in mine.chunks(1 + c % BILLS_PER_PAYMENT).enumerate() {
                let token = tokens.next().context("too few card tokens")?;
                payments.push((
                    format!("chaos-{c}-{p}"),
                    json!({"uins": group, "method": {"type": "card", "token": token}}),
                ));
            }
            let api = api.clone();
            let session = session.clone();
            let ip = ip.clone();
            set.spawn(async move { pay_all(&api, &session, &ip, payments).await });
        }
        while let Some(done) = set.join_next().await {
            let (sent, requests, answers) = done.context("a paying client failed")?;
            outcome.payments_sent += sent;
            outcome.payment_requests += requests;
            for (k, n) in answers {
                *outcome.payment_answers.entry(k).or_default() += n;
            }
        }
        Ok::<_, anyhow::Error>(outcome)
    };
    let ((registered, abandoned), mut outcome) = tokio::try_join!(registrations, billing)?;
    outcome.profile_edits = registered.len();
    outcome.registered = registered;
    outcome.registrations_abandoned = abandoned;
    Ok(outcome)
}

/// One client's payments, each sent again with its key until the answer is final;
/// (payments, requests, final answers by status and code).
async fn pay_all(
    api: &Api,
    session: &str,
    ip: &str,
    payments: Vec<(String, Json)>,
) -> (usize, usize, BTreeMap<String, usize>) {
    let bearer = auth(session);
    let mut requests = 0;
    let mut answers = BTreeMap::new();
    let count = payments.len();
    for (key, body) in payments {
        let mut last = String::from("no final answer");
        for _ in 0..ATTEMPTS {
            requests += 1;
            let reply = api
                .send(
                    Method::POST,
                    "/v1/payments",
                    "/v1/payments",
                    &[
                        ("authorization", &bearer),
                        ("idempotency-key", &key),
                        ("x-forwarded-for", ip),
                    ],
                    Some(&body),
                )
                .await;
            let code = reply.body["code"].as_str().unwrap_or_default();
            let in_progress = code == "payment_in_progress";
            if !reply.transient() && !in_progress {
                let status = reply.body["status"].as_str().unwrap_or(code);
                last = format!("{} {status}", reply.status);
                break;
            }
            pause(&reply).await;
        }
        *answers.entry(last).or_default() += 1;
    }
    (count, requests, answers)
}

/// Messages in a dead-letter queue, their bodies; read at the end of the run, when
/// hiding them for a while harms nothing.
pub async fn dead_letters(moto: &Clients, url: &str) -> Result<Vec<String>> {
    let mut bodies = Vec::new();
    loop {
        let page = moto
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .send()
            .await
            .with_context(|| format!("reading {url}"))?;
        let messages = page.messages();
        if messages.is_empty() {
            return Ok(bodies);
        }
        bodies.extend(
            messages
                .iter()
                .map(|m| m.body().unwrap_or_default().to_string()),
        );
    }
}

/// The table, the outbox and the registrants' profiles, for the invariants.
pub async fn observe(
    api: &Api,
    moto: &Clients,
    world: &World,
    outcome: &Outcome,
) -> Result<Observed> {
    let mut o = Observed::default();
    for row in crate::table::scan(moto, &world.table).await? {
        let pk = row.text("pk").unwrap_or_default();
        let sk = row.text("sk").unwrap_or_default();
        if let (Some(uin), "CHARGE") = (pk.strip_prefix("CHARGE#"), sk.as_str()) {
            o.bills += 1;
            if let Some(payment) = row.text("lock_payment") {
                o.held_bills.push((uin.to_string(), payment));
            }
        } else if pk.starts_with("ACCOUNT#") && sk.starts_with("PAYMENT#") {
            o.payments.push(row.payment(&sk)?);
        } else if let Some(order) = pk.strip_prefix("ACQORDER#") {
            o.orders.push(OrderRow {
                order: order.to_string(),
                state: row.text("state").unwrap_or_default(),
                amount: row.number("amount"),
            });
        } else if pk.starts_with("BILLERINBOX#") {
            *o.payment_notices_delivered.entry(sk.clone()).or_default() += 1;
        }
    }

    for r in &outcome.registered {
        let reply = profile(api, &r.token).await;
        if reply.status != 200 {
            bail!("the profile of {}: {}", r.email, reply.describe());
        }
        for (field, state) in verification_states(&reply.body) {
            o.verifications.push(VerificationRow {
                account: r.account_id.clone(),
                field,
                state,
            });
        }
    }

    for email in &world.payer_emails {
        for m in outbox(api, email).await {
            if m["subject"].as_str() != Some(RECEIPT_SUBJECT) {
                continue;
            }
            // The receipt's first line names its payment: `Платёж {id} выполнен.`
            let text = m["text"].as_str().unwrap_or_default();
            if let Some(id) = text
                .strip_prefix("Платёж ")
                .and_then(|rest| rest.split_whitespace().next())
            {
                *o.receipts.entry(id.to_string()).or_default() += 1;
            }
        }
    }

    o.bill_notices_due = outcome.notices_due.clone();
    for (holder, _) in &world.holders {
        for m in outbox(api, &holder.email).await {
            if m["subject"].as_str() != Some(NOTICE_SUBJECT) {
                continue;
            }
            let text = m["text"].as_str().unwrap_or_default();
            for due in outcome.notices_due.iter().filter(|d| d.to == holder.email) {
                if text.contains(&due.uin) {
                    *o.bill_notices_sent.entry(due.clone()).or_default() += 1;
                }
            }
        }
    }
    Ok(o)
}
