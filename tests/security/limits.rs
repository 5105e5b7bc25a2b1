//! Limits and caps raced with parallel requests: attempt limits on secrets (passwords,
//! security answers, confirmation codes, letter codes), the per-account bill lookup
//! limit, the payment route as a UIN oracle, and per-account caps on saved things.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::scenario;
use crate::support::*;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(parallel_wrong_passwords_stop_at_the_lock),
        scenario!(parallel_right_passwords_are_not_failures),
        scenario!(parallel_wrong_passwords_from_one_address_stop_at_its_limit),
        scenario!(parallel_wrong_current_passwords_stop_at_the_lock),
        scenario!(a_login_flood_does_not_lock_the_owner_out_of_a_password_change),
        scenario!(parallel_wrong_security_answers_stop_at_the_lock),
        scenario!(parallel_code_guesses_are_checked_at_most_the_limit),
        scenario!(parallel_letter_code_guesses_are_checked_at_most_the_limit),
        scenario!(lookups_of_every_kind_stop_at_the_account_limit),
        scenario!(opening_a_payment_tells_nothing_about_a_uin),
        scenario!(parallel_saved_methods_stop_at_the_cap),
        scenario!(parallel_templates_stop_at_the_cap),
        scenario!(parallel_autopays_stop_at_the_cap),
        scenario!(parallel_saved_bills_stop_at_the_cap),
    ]
}

/// Consecutive failures before a login is locked (`LOGIN_MAX_FAILURES`, default).
const MAX_FAILURES: usize = 5;
/// Failed logins per client address and window (`LOGIN_MAX_FAILURES_PER_IP`, default).
const MAX_CLIENT_FAILURES: usize = 50;
/// Wrong answers one confirmation code takes (`CODE_MAX_ATTEMPTS`, default).
const CODE_ATTEMPTS: usize = 5;
/// Wrong answers one letter code takes.
const LETTER_ATTEMPTS: usize = 5;
/// Bill lookups per account and window (`BILL_LOOKUPS_PER_WINDOW`, default).
const LOOKUPS: usize = 30;
/// Requests every race sends at once.
const RACE: usize = 16;

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

fn no_server_errors(replies: &[Reply]) {
    for r in replies {
        assert!(r.status < 500, "server error: {} {}", r.status, r.body);
    }
}

fn count(replies: &[Reply], status: u16, code: &str) -> usize {
    replies
        .iter()
        .filter(|r| r.status == status && r.body["code"] == code)
        .count()
}

/// Asserts that of a race's `replies`, `checked` (at most `limit`) were checked and every
/// other one refused with 429 `refused`.
fn assert_checked_at_most(replies: &[Reply], checked: usize, limit: usize, refused: &str) {
    let held = count(replies, 429, refused);
    let sent = replies.len();
    assert!(
        checked <= limit,
        "{checked} of {sent} parallel guesses were checked: {:?}",
        statuses(replies)
    );
    assert_eq!(checked + held, sent, "{:?}", statuses(replies));
}

/// How many of a race's code guesses were accepted, having asserted that at most `limit`
/// of them were checked (answered as a mismatch or accepted); `race` names the race.
fn accepted_of(replies: &[Reply], limit: usize, race: &str) -> usize {
    no_server_errors(replies);
    let mismatches = count(replies, 422, "code_mismatch");
    let accepted = replies.iter().filter(|r| r.status == 200).count();
    assert!(
        mismatches + accepted <= limit,
        "{race}: {} of {} parallel guesses were checked: {:?}",
        mismatches + accepted,
        replies.len(),
        statuses(replies)
    );
    accepted
}

// ------------------------------------------------------------------ passwords

async fn parallel_wrong_passwords_stop_at_the_lock(api: Api) {
    let c = sign_up(&api).await;
    let replies = join_all((0..RACE).map(|i| {
        let api = api.clone();
        let email = c.email.clone();
        async move {
            login(
                &api,
                &unique_ip(),
                &email,
                &format!("Wrong-pass-{i}"),
                false,
            )
            .await
        }
    }))
    .await;
    no_server_errors(&replies);
    let checked = count(&replies, 401, "invalid_credentials");
    assert_checked_at_most(&replies, checked, MAX_FAILURES, "login_throttled");
    // Locked now: even the right password is refused until the lock ends.
    let right = login(&api, &unique_ip(), &c.email, PASSWORD, false).await;
    right.assert_problem(429, "login_throttled");
    assert!(right.header("retry-after").is_some());
}

/// Every attempt is counted before its password is checked, so that parallel guesses
/// cannot all be checked; attempts still being checked are not failures, though. A
/// citizen's devices signing in at once, and a password-confirmed change among them,
/// are never refused as a lock (the lock is after consecutive failures).
async fn parallel_right_passwords_are_not_failures(api: Api) {
    let c = sign_up(&api).await;
    let owner = token_for(&api, &c).await;
    let logins = join_all((0..RACE).map(|_| {
        let api = api.clone();
        let email = c.email.clone();
        async move { login(&api, &unique_ip(), &email, PASSWORD, false).await }
    }));
    let change = api.put_as(
        &owner,
        "/v1/account/security-question",
        json!({"password": PASSWORD, "security_question": "Кличка первой собаки",
                    "security_answer": "Шарик"}),
    );
    let (replies, changed) = tokio::join!(logins, change);
    no_server_errors(&replies);
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        RACE,
        "{RACE} parallel logins with the right password: {:?} {:?}",
        statuses(&replies),
        replies
            .iter()
            .filter(|r| r.status != 201)
            .map(|r| &r.body)
            .collect::<Vec<_>>()
    );
    assert_eq!(changed.status, 204, "{}", changed.body);
    // Nothing was left counted: five wrong passwords still make the lock, not fewer.
    for i in 0..MAX_FAILURES {
        let wrong = login(
            &api,
            &unique_ip(),
            &c.email,
            &format!("Wrong-pass-{i}"),
            false,
        )
        .await;
        wrong.assert_problem(401, "invalid_credentials");
    }
    login(&api, &unique_ip(), &c.email, PASSWORD, false)
        .await
        .assert_problem(429, "login_throttled");
}

async fn parallel_wrong_passwords_from_one_address_stop_at_its_limit(api: Api) {
    let ip = unique_ip();
    let c = sign_up(&api).await;
    // Password spraying: one guess for each of many logins, all from one address.
    let tries = MAX_CLIENT_FAILURES + 14;
    let replies = join_all((0..tries).map(|_| {
        let api = api.clone();
        let ip = ip.clone();
        async move { login(&api, &ip, &unique_email(), "Wrong-pass-123", false).await }
    }))
    .await;
    no_server_errors(&replies);
    let checked = count(&replies, 401, "invalid_credentials");
    assert_checked_at_most(&replies, checked, MAX_CLIENT_FAILURES, "login_client_limit");
    // The address is held back even for an account with the right password.
    login(&api, &ip, &c.email, PASSWORD, false)
        .await
        .assert_problem(429, "login_client_limit");
    // Others are not.
    assert_logs_in(&api, &c.email, PASSWORD).await;
}

async fn parallel_wrong_current_passwords_stop_at_the_lock(api: Api) {
    let (c, token) = citizen(&api).await;
    let replies = join_all((0..RACE).map(|i| {
        let api = api.clone();
        let token = token.clone();
        async move {
            api.put_as(&token, "/v1/account/password", json!({"password": format!("Not-my-pass-{i}"), "new_password": "Quartz-Lantern-42"}))
            .await
        }
    }))
    .await;
    no_server_errors(&replies);
    let checked = count(&replies, 403, "wrong_password");
    assert_checked_at_most(&replies, checked, MAX_FAILURES, "login_throttled");
    // Every route that asks for the password shares the lock.
    api.put_as(
        &token,
        "/v1/account/password",
        json!({"password": PASSWORD, "new_password": "Quartz-Lantern-42"}),
    )
    .await
    .assert_problem(429, "login_throttled");
    api.put_as(&token, "/v1/account/security-question", json!({"password": PASSWORD, "security_question": "Кличка первой собаки", "security_answer": "Шарик"}))
    .await
    .assert_problem(429, "login_throttled");
    call(
        &api,
        Method::DELETE,
        "/v1/account",
        &token,
        Some(json!({"password": PASSWORD})),
    )
    .await
    .assert_problem(429, "login_throttled");
    // The lock is the session's: the login is not locked, and a new session's changes
    // have their own limit.
    let again = login(&api, &unique_ip(), &c.email, PASSWORD, false).await;
    assert_eq!(again.status, 201, "{}", again.body);
    let fresh = text(&again.body["token"]);
    let changed = api.put_as(&fresh, "/v1/account/security-question", json!({"password": PASSWORD, "security_question": "Кличка первой собаки", "security_answer": "Шарик"}))
    .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
}

/// A thief who knows the password keeps the login's limit full with logins of their own
/// (right passwords, each pending while it is checked), from many addresses, without a
/// pause. The owner, signed in already, changes the password in the middle of it: their
/// check is counted on their session, so it neither waits for the thief's logins nor is
/// refused, and the thief's sessions end with the old password.
async fn a_login_flood_does_not_lock_the_owner_out_of_a_password_change(api: Api) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let c = sign_up(&api).await;
    let owner = token_for(&api, &c).await;
    let stop = &AtomicBool::new(false);
    let flood = join_all((0..RACE).map(|_| {
        let api = api.clone();
        let email = c.email.clone();
        async move {
            let mut replies = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                replies.push(login(&api, &unique_ip(), &email, PASSWORD, false).await);
            }
            replies
        }
    }));
    let change = async {
        // Into the middle of the flood.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let body = json!({"password": PASSWORD, "new_password": "Quartz-Lantern-42"});
        let changed = api.put_as(&owner, "/v1/account/password", body).await;
        stop.store(true, Ordering::SeqCst);
        changed
    };
    let (replies, changed) = tokio::join!(flood, change);
    let replies: Vec<Reply> = replies.into_iter().flatten().collect();
    no_server_errors(&replies);
    assert!(
        replies.len() > RACE,
        "the flood went on while the owner acted: {:?}",
        statuses(&replies)
    );
    assert_eq!(changed.status, 204, "{}", changed.body);
    for reply in replies.iter().filter(|r| r.status == 201) {
        let thief = text(&reply.body["token"]);
        assert_eq!(api.get_as(&thief, "/v1/sessions").await.status, 401);
    }
    assert_eq!(api.get_as(&owner, "/v1/account").await.status, 200);
}

async fn parallel_wrong_security_answers_stop_at_the_lock(api: Api) {
    let c = sign_up(&api).await;
    let token = recovery_proof(&api, &c.email).await;
    let body = |answer: String| {
        json!({"login": c.email, "verification_token": token, "security_answer": answer,
               "new_password": "Granite-Kettle-77"})
    };
    let replies = join_all((0..RACE).map(|i| {
        let api = api.clone();
        let body = body(format!("Неверная-{i}"));
        async move { api.post("/v1/recovery/complete", &unique_ip(), body).await }
    }))
    .await;
    no_server_errors(&replies);
    let checked = replies
        .iter()
        .filter(|r| {
            r.status == 422
                && r.field_errors()
                    == [(
                        "/security_answer".to_string(),
                        "wrong_security_answer".to_string(),
                    )]
        })
        .count();
    assert_checked_at_most(&replies, checked, MAX_FAILURES, "login_throttled");
    // The right answer waits for the lock too.
    api.post(
        "/v1/recovery/complete",
        &unique_ip(),
        body("Ёлкина".to_string()),
    )
    .await
    .assert_problem(429, "login_throttled");
    // The password stayed.
    assert_logs_in(&api, &c.email, PASSWORD).await;
}

// ------------------------------------------------------------------ codes

/// Guesses sent at once, the right one among them: a limit counted after the check
/// lets every guess of the batch be checked, so the right one wins whatever its place.
async fn parallel_code_guesses_are_checked_at_most_the_limit(api: Api) {
    for round in 0..4 {
        let email = unique_email();
        let id = api.code_sent("email", &email, "registration").await;
        let code = api.code_sent_to(&email).await;
        let wrong: Vec<String> = (0..1_000_000u32)
            .map(|n| format!("{n:06}"))
            .filter(|g| *g != code)
            .take(RACE - 1)
            .collect();
        // The right guess goes last, as the last of a batch would.
        let mut guesses = wrong;
        guesses.push(code.clone());
        let replies = join_all(guesses.iter().map(|g| {
            let api = api.clone();
            let id = id.clone();
            let g = g.clone();
            async move { api.verify(&id, &g).await }
        }))
        .await;
        let accepted = accepted_of(&replies, CODE_ATTEMPTS, &format!("round {round}"));
        if accepted == 0 {
            // The limit is reached: the right code is refused now.
            api.verify(&id, &code)
                .await
                .assert_problem(410, "code_attempts_exhausted");
        }
    }
}

/// The code of the newest letter for `account_id` in the post queue; other letters are
/// put back at once.
async fn letter_code(api: &Api, account_id: &str) -> String {
    let queue = api.queue_url("-post-letters").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let messages = api.receive(&queue, 5).await;
        let mut found = None;
        for m in &messages {
            let letter: Value =
                serde_json::from_str(m.body().unwrap_or_default()).unwrap_or_default();
            if letter["account_id"] == account_id {
                found = letter["code"].as_str().map(str::to_string);
            } else if let Some(handle) = m.receipt_handle() {
                let _ = api
                    .sqs
                    .change_message_visibility()
                    .queue_url(&queue)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await;
            }
        }
        if let Some(code) = found {
            return code;
        }
        assert!(Instant::now() < deadline, "no letter in the post queue");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn parallel_letter_code_guesses_are_checked_at_most_the_limit(api: Api) {
    let rounds = join_all((0..2).map(|i| {
        let api = api.clone();
        async move {
            let (c, token) = standard_citizen(
                &api,
                &snils_of("681"),
                &format!("681{}", &six_digits()[3..]),
            )
            .await;
            let asked = api
                .post_as(
                    &token,
                    "/v1/account/confirmation-letters",
                    json!({"address": "125009, г. Москва, ул. Тверская, д. 13, кв. 5"}),
                )
                .await;
            assert_eq!(asked.status, 202, "{}", asked.body);
            let code = letter_code(&api, &c.account_id).await;
            let mut guesses: Vec<String> = (0..100_000_000u32)
                .map(|n| format!("{n:08}"))
                .filter(|g| *g != code)
                .take(RACE - 1)
                .collect();
            guesses.push(code.clone());
            let replies = join_all(guesses.iter().map(|g| {
                let api = api.clone();
                let token = token.clone();
                let g = g.clone();
                async move {
                    api.post_as(
                        &token,
                        "/v1/account/confirmation-letters/confirm",
                        json!({ "code": g }),
                    )
                    .await
                }
            }))
            .await;
            let accepted = accepted_of(&replies, LETTER_ATTEMPTS, &format!("citizen {i}"));
            let level = profile(&api, &token).await.body["level"].clone();
            if accepted == 0 {
                assert_eq!(level, "standard");
                api.post_as(
                    &token,
                    "/v1/account/confirmation-letters/confirm",
                    json!({ "code": code }),
                )
                .await
                .assert_problem(410, "code_attempts_exhausted");
            } else {
                assert_eq!(level, "confirmed");
            }
        }
    }))
    .await;
    assert_eq!(rounds.len(), 2);
}

// ------------------------------------------------------------------ lookups

fn payment_request<'a>(api: &'a Api, token: &str, uin: &str) -> Request<'a> {
    let body = json!({"uins": [uin], "method": {"type": "mobile", "phone": unique_phone()}});
    api.json_request(Method::POST, "/v1/payments", token, &body)
        .header("idempotency-key", unique_key())
}

async fn open_payment(api: &Api, token: &str, uin: &str) -> Reply {
    payment_request(api, token, uin).send().await
}

/// A valid-looking СТС unique for this run.
fn sts() -> String {
    format!("7712{}", six_digits())
}

async fn lookups_of_every_kind_stop_at_the_account_limit(api: Api) {
    let (_, token) = standard_payer(&api).await;
    // Three times the limit, spread over every route that tells of a bill and over
    // every instance of the functions.
    let tries = LOOKUPS * 3;
    let replies = join_all((0..tries).map(|i| {
        let api = api.clone();
        let token = token.clone();
        async move {
            let uin = uin(20);
            match i % 4 {
                0 => api.get_as(&token, &format!("/v1/bills/{uin}")).await,
                1 => {
                    api.get_as(&token, &format!("/v1/fines?sts={}", sts()))
                        .await
                }
                2 => {
                    api.post_as(&token, "/v1/bills/saved", json!({ "uin": uin }))
                        .await
                }
                _ => open_payment(&api, &token, &uin).await,
            }
        }
    }))
    .await;
    no_server_errors(&replies);
    let limited = count(&replies, 429, "lookup_rate_limited");
    let answered = tries - limited;
    assert!(
        answered <= LOOKUPS,
        "{answered} of {tries} parallel lookups were answered: {:?}",
        statuses(&replies)
    );
    for r in replies.iter().filter(|r| r.status == 429) {
        assert!(r.header("retry-after").is_some());
    }
    // Each route is refused now.
    let unknown = uin(20);
    api.get_as(&token, &format!("/v1/bills/{unknown}"))
        .await
        .assert_problem(429, "lookup_rate_limited");
    open_payment(&api, &token, &unknown)
        .await
        .assert_problem(429, "lookup_rate_limited");
}

/// What a refusal of `uin` says, with the UIN itself left out.
fn refusal(reply: &Reply, uin: &str) -> (u16, Value, Value, String, Vec<String>) {
    (
        reply.status,
        reply.body["code"].clone(),
        reply.body["title"].clone(),
        reply.body["detail"]
            .as_str()
            .unwrap_or_default()
            .replace(uin, "{uin}"),
        reply.member_names(),
    )
}

async fn opening_a_payment_tells_nothing_about_a_uin(api: Api) {
    let biller = new_biller("Школа № 57");
    let someone = || on_snils(&snils_of("708"));
    let (_, owner) = standard_payer(&api).await;
    let (_, attacker) = standard_payer(&api).await;
    // Paid by its payer.
    let paid = biller.charge(&api, "education", 30_000, someone()).await;
    let pay = open_payment(&api, &owner, &paid).await;
    assert!(
        pay.status == 201 || pay.status == 200,
        "{} {}",
        pay.status,
        pay.body
    );
    // Cancelled by its biller.
    let cancelled = biller.charge(&api, "education", 30_000, someone()).await;
    let cancel = biller.cancel(&api, &cancelled).await;
    assert!(cancel.status < 300, "{} {}", cancel.status, cancel.body);
    // Unpaid, and held by its payer's payment that waits for 3-D Secure.
    let held = biller.charge(&api, "education", 30_000, someone()).await;
    let holding = pay_bills(&api, &owner, &[&held], card(THREE_DS)).await;
    assert!(holding.status < 300, "{} {}", holding.status, holding.body);
    // Never issued.
    let unknown = uin(20);

    let tried = [&unknown, &paid, &cancelled, &held];
    let answers = join_all(tried.map(|u| {
        let api = api.clone();
        let attacker = attacker.clone();
        let u = u.clone();
        async move { open_payment(&api, &attacker, &u).await }
    }))
    .await;
    no_server_errors(&answers);
    let first = refusal(&answers[0], &unknown);
    assert!(first.0 >= 400, "{:?}", answers[0].body);
    for ((name, answer), uin) in ["paid", "cancelled", "held"]
        .iter()
        .zip(&answers[1..])
        .zip(&tried[1..])
    {
        assert_eq!(
            refusal(answer, uin),
            first,
            "a {name} bill answers otherwise than an unknown UIN: {}",
            answer.body
        );
        assert_eq!(
            answer.headers.get("content-type"),
            answers[0].headers.get("content-type")
        );
    }
}

// ------------------------------------------------------------------ caps

/// Sends `tries` copies of a request at once; the replies.
async fn race(
    api: &Api,
    tries: usize,
    method: Method,
    path: &str,
    token: &str,
    body: impl Fn(usize) -> Value,
) -> Vec<Reply> {
    let replies = join_all((0..tries).map(|i| {
        let api = api.clone();
        let method = method.clone();
        let path = path.to_string();
        let token = token.to_string();
        let body = body(i);
        async move { call(&api, method, &path, &token, Some(body)).await }
    }))
    .await;
    no_server_errors(&replies);
    replies
}

fn listed(reply: &Reply, field: &str) -> usize {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body[field].as_array().map(Vec::len).unwrap_or(0)
}

/// Checks a race of 40 creations against a cap, as the capped collections are checked:
/// `created` of them succeeded, the rest were refused with 409 `too_many`, and the list at
/// `path` then holds `cap` items under `field`. Returns that list.
async fn assert_stopped_at_cap(
    api: &Api,
    token: &str,
    replies: &[Reply],
    created: usize,
    (path, field): (&str, &str),
    cap: usize,
) -> Reply {
    let made = replies.iter().filter(|r| r.status == 201).count();
    let refused = count(replies, 409, "too_many");
    assert_eq!(made, created, "{:?}", statuses(replies));
    assert_eq!(made + refused, 40, "{:?}", statuses(replies));
    let list = api.get_as(token, path).await;
    assert_eq!(listed(&list, field), cap);
    list
}

async fn parallel_saved_methods_stop_at_the_cap(api: Api) {
    const CAP: usize = 10;
    let (_, token) = standard_payer(&api).await;
    let replies = race(
        &api,
        40,
        Method::POST,
        "/v1/payment-methods",
        &token,
        |_| json!({"type": "mobile", "phone": unique_phone()}),
    )
    .await;
    let list = assert_stopped_at_cap(
        &api,
        &token,
        &replies,
        CAP,
        ("/v1/payment-methods", "payment_methods"),
        CAP,
    )
    .await;
    // A removal frees a place, once.
    let id = text(&list.body["payment_methods"][0]["id"]);
    let removed = api
        .delete_as(&token, &format!("/v1/payment-methods/{id}"))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let again = race(
        &api,
        RACE,
        Method::POST,
        "/v1/payment-methods",
        &token,
        |_| json!({"type": "mobile", "phone": unique_phone()}),
    )
    .await;
    assert_eq!(
        again.iter().filter(|r| r.status == 201).count(),
        1,
        "{:?}",
        statuses(&again)
    );
}

fn template(i: usize) -> Value {
    json!({"name": format!("Взнос {i}"), "purpose": "Взнос на капитальный ремонт",
           "payee": {"name": "Фонд капремонта", "inn": "7701090559", "kpp": "770101001",
                     "bic": "044525000", "account": "40601810245253000002"}})
}

async fn parallel_templates_stop_at_the_cap(api: Api) {
    const CAP: usize = 50;
    let (_, token) = standard_payer(&api).await;
    for i in 0..30 {
        let made = api
            .post_as(&token, "/v1/payment-templates", template(i))
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
    }
    let replies = race(
        &api,
        40,
        Method::POST,
        "/v1/payment-templates",
        &token,
        |i| template(100 + i),
    )
    .await;
    let templates = ("/v1/payment-templates", "payment_templates");
    assert_stopped_at_cap(&api, &token, &replies, CAP - 30, templates, CAP).await;
}

async fn parallel_autopays_stop_at_the_cap(api: Api) {
    const CAP: usize = 10;
    let (_, token) = standard_payer(&api).await;
    let method = api
        .post_as(
            &token,
            "/v1/payment-methods",
            json!({"type": "mobile", "phone": unique_phone()}),
        )
        .await;
    assert_eq!(method.status, 201, "{}", method.body);
    let method = method.id();
    let replies = race(&api, 40, Method::POST, "/v1/autopays", &token, |i| {
        json!({"name": format!("Автоплатёж {i}"), "match": {"category": "utilities"},
               "method_id": method, "limit": 100_000, "trigger": {"type": "new_bill"}})
    })
    .await;
    let autopays = ("/v1/autopays", "autopays");
    assert_stopped_at_cap(&api, &token, &replies, CAP, autopays, CAP).await;
}

async fn parallel_saved_bills_stop_at_the_cap(api: Api) {
    const CAP: usize = 200;
    const KEPT: usize = 190;
    let (c, token) = citizen(&api).await;
    // An account that already keeps 190 bills (written straight into the table: saving
    // them one by one would take an hour of lookups).
    let table = api.table_name().await;
    let kept: Vec<String> = (0..KEPT).map(|_| uin(20)).collect();
    for chunk in kept.chunks(25) {
        let writes = chunk
            .iter()
            .map(|u| {
                let item = [
                    (
                        "pk",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!(
                            "ACCOUNT#{}",
                            c.account_id
                        )),
                    ),
                    (
                        "sk",
                        aws_sdk_dynamodb::types::AttributeValue::S(format!("SAVED#{u}")),
                    ),
                    (
                        "saved_at",
                        aws_sdk_dynamodb::types::AttributeValue::N("1764000000".into()),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .unwrap_or_else(|e| panic!("put request: {e}")),
                    )
                    .build()
            })
            .collect::<Vec<_>>();
        api.dynamodb
            .batch_write_item()
            .request_items(&table, writes)
            .send()
            .await
            .unwrap_or_else(|e| panic!("batch write: {e}"));
    }
    let biller = new_biller("Жилищник района");
    let fresh = join_all((0..40).map(|_| {
        let api = api.clone();
        let biller = &biller;
        async move {
            biller
                .charge(&api, "utilities", 10_000, on_snils(&snils_of("709")))
                .await
        }
    }))
    .await;
    let replies = race(
        &api,
        40,
        Method::POST,
        "/v1/bills/saved",
        &token,
        |i| json!({ "uin": fresh[i] }),
    )
    .await;
    let created = replies.iter().filter(|r| r.status == 201).count();
    let refused = count(&replies, 409, "too_many_saved_bills");
    let limited = count(&replies, 429, "lookup_rate_limited");
    assert_eq!(created, CAP - KEPT, "{:?}", statuses(&replies));
    assert_eq!(created + refused + limited, 40, "{:?}", statuses(&replies));
    let saved = api
        .dynamodb
        .query()
        .table_name(&table)
        .key_condition_expression("pk = :pk AND begins_with(sk, :saved)")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ACCOUNT#{}", c.account_id)),
        )
        .expression_attribute_values(
            ":saved",
            aws_sdk_dynamodb::types::AttributeValue::S("SAVED#".into()),
        )
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .unwrap_or_else(|e| panic!("query: {e}"));
    assert_eq!(saved.count(), CAP as i32);
}
