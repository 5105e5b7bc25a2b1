//! Second factors beyond the SMS code: an authentication app (TOTP), backup codes, and
//! their management, tried the way a citizen and a thief would.

use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

/// Wrong codes of the second factors before they lock (`LOGIN_MAX_FAILURES`, default).
const MAX_FAILURES: usize = 5;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The code an authentication app with `secret` (base32) shows at `unix`.
fn app_code(secret: &str, unix: u64) -> String {
    let bytes = totp_rs::Secret::try_from_base32(secret)
        .expect("the enrolment's secret is base32")
        .as_ref()
        .to_vec();
    totp_rs::Builder::new()
        .with_secret(bytes)
        .build()
        .expect("a 160-bit secret")
        .generate(unix)
        .to_string()
}

/// A code the app does not show around `unix`.
fn wrong_code(secret: &str, unix: u64) -> String {
    let shown: Vec<String> = [unix - 30, unix, unix + 30]
        .iter()
        .map(|t| app_code(secret, *t))
        .collect();
    (0..1000u32)
        .map(|i| format!("{:06}", 123_457 + i * 7))
        .find(|c| !shown.contains(c))
        .unwrap_or_default()
}

async fn factors(api: &Api, token: &str) -> Vec<Value> {
    let listed = api.get_as(token, "/v1/account/factors").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    listed.body["factors"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn kinds(factors: &[Value]) -> Vec<String> {
    factors.iter().map(|f| text(&f["kind"])).collect()
}

async fn event_kinds(api: &Api, token: &str) -> Vec<String> {
    let events = api.get_as(token, "/v1/security-events").await;
    events.body["events"]
        .as_array()
        .map(|e| e.iter().map(|e| text(&e["type"])).collect())
        .unwrap_or_default()
}

/// Enrols an app named "Телефон" in the session `token`, not confirmed yet; the 201. The
/// tests that confirm it at once and the one that looks at the enrolment start alike.
async fn enrol_app(api: &Api, token: &str) -> Reply {
    let enrolled = api
        .post_as(token, "/v1/account/factors/app", json!({"name": "Телефон"}))
        .await;
    assert_eq!(enrolled.status, 201, "{}", enrolled.body);
    enrolled
}

/// Enrols and confirms an app in the session `token`; its id and secret.
pub(super) async fn with_app(api: &Api, token: &str) -> (String, String) {
    let enrolled = enrol_app(api, token).await;
    let id = enrolled.id();
    let secret = text(&enrolled.body["secret"]);
    let code = app_code(&secret, unix_now());
    let path = format!("/v1/account/factors/{id}/confirm");
    let confirmed = api.post_as(token, &path, json!({ "code": code })).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    (id, secret)
}

/// `POST /v1/sessions` with `second_factor`; the challenge token of its 202.
async fn challenge(api: &Api, c: &Citizen, factor: &str) -> String {
    let body = json!({"login": c.email, "password": PASSWORD, "second_factor": factor});
    let reply = api.post("/v1/sessions", &unique_ip(), body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["second_factor"], factor, "{}", reply.body);
    text(&reply.body["challenge_token"])
}

async fn second_step(api: &Api, challenge: &str, code: &str) -> Reply {
    api.post(
        "/v1/sessions/two-step",
        &unique_ip(),
        json!({"challenge_token": challenge, "code": code}),
    )
    .await
}

pub async fn an_authentication_app_completes_a_login_once_per_code(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let enrolled = enrol_app(&api, &token).await;
    let uri = text(&enrolled.body["otpauth_uri"]);
    assert!(uri.starts_with("otpauth://totp/uslugi:"), "{uri}");
    let local_part = c.email.split('@').next().unwrap_or_default();
    assert!(
        !uri.contains(local_part) && !uri.contains(&c.phone[2..]),
        "no personal data in the URI: {uri}"
    );
    // Not a factor before its first code.
    assert_eq!(kinds(&factors(&api, &token).await), ["sms"]);
    let id = enrolled.id();
    let secret = text(&enrolled.body["secret"]);
    let now = unix_now();
    let path = format!("/v1/account/factors/{id}/confirm");
    api.post_as(&token, &path, json!({"code": wrong_code(&secret, now)}))
        .await
        .assert_problem(422, "second_factor_refused");
    let mail_before = api.outbox(&c.email).await.len();
    let confirmed = api
        .post_as(&token, &path, json!({"code": app_code(&secret, now)}))
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    assert!(
        api.outbox(&c.email).await.len() > mail_before,
        "the owner is told"
    );
    assert_eq!(kinds(&factors(&api, &token).await), ["sms", "app"]);
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);

    // The login asks the app: nothing goes to the phone.
    let sms_before = api.outbox(&c.phone).await.len();
    let body = json!({"login": c.email, "password": PASSWORD, "second_factor": "app"});
    let first = api.post("/v1/sessions", &unique_ip(), body).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["available_factors"], json!(["sms", "app"]));
    assert_eq!(api.outbox(&c.phone).await.len(), sms_before);
    // The next step's code (one step of skew): the confirmation used this step's.
    let code = app_code(&secret, now + 30);
    let done = second_step(&api, &text(&first.body["challenge_token"]), &code).await;
    assert_eq!(done.status, 201, "{}", done.body);

    // The same code, on a new login, is a replay.
    let again = challenge(&api, &c, "app").await;
    second_step(&api, &again, &code)
        .await
        .assert_problem(422, "second_factor_refused");
    let events = event_kinds(&api, &text(&done.body["token"])).await;
    assert!(events.contains(&"factor_added".to_string()), "{events:?}");
}

pub async fn parallel_wrong_app_codes_stop_at_the_lock(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let (_, secret) = with_app(&api, &token).await;
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);
    let challenge = challenge(&api, &c, "app").await;
    let wrong = wrong_code(&secret, unix_now());
    let replies = join_all((0..12).map(|_| second_step(&api, &challenge, &wrong))).await;
    let refused = replies
        .iter()
        .filter(|r| r.status == 422 && r.body["code"] == "second_factor_refused")
        .count();
    let held = replies
        .iter()
        .filter(|r| r.status == 429 && r.body["code"] == "login_throttled")
        .count();
    assert!(
        refused <= MAX_FAILURES,
        "{refused} wrong codes were checked"
    );
    assert_eq!(refused + held, replies.len());
    // Locked: even the right code waits.
    second_step(&api, &challenge, &app_code(&secret, unix_now()))
        .await
        .assert_problem(429, "login_throttled");
}

pub async fn a_backup_code_works_once(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let issued = call(&api, Method::POST, "/v1/account/backup-codes", &token, None).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let codes: Vec<String> = issued.body["codes"]
        .as_array()
        .map(|c| c.iter().map(text).collect())
        .unwrap_or_default();
    assert_eq!(codes.len(), 10);
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);

    // Typed in capitals, with a space: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let first = challenge(&api, &c, "backup_code").await;
    let done = second_step(&api, &first, &typed).await;
    assert_eq!(done.status, 201, "{}", done.body);
    let listed = factors(&api, &token).await;
    let backup = listed.iter().find(|f| f["kind"] == "backup_codes");
    assert_eq!(backup.map(|b| b["remaining"].clone()), Some(json!(9)));

    let again = challenge(&api, &c, "backup_code").await;
    second_step(&api, &again, &codes[0])
        .await
        .assert_problem(422, "second_factor_refused");
    // Issued again, the old ones are gone.
    let reissued = call(&api, Method::POST, "/v1/account/backup-codes", &token, None).await;
    assert_eq!(reissued.status, 201, "{}", reissued.body);
    second_step(&api, &again, &codes[1])
        .await
        .assert_problem(422, "second_factor_refused");
}

pub async fn the_last_factor_cannot_be_removed(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);
    api.delete_as(&token, "/v1/account/factors/sms")
        .await
        .assert_problem(409, "last_second_factor");
    let (app, _) = with_app(&api, &token).await;
    // Another citizen names the app: it is none of theirs.
    let (_, other) = citizen(&api).await;
    let path = format!("/v1/account/factors/{app}");
    api.delete_as(&other, &path)
        .await
        .assert_problem(404, "factor_not_found");

    let removed = api.delete_as(&token, "/v1/account/factors/sms").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    // The app is the last one now; two removals at once cannot both pass either.
    let renamed = api
        .patch_as(&token, &path, json!({"name": "Рабочий"}))
        .await;
    assert_eq!(renamed.status, 204, "{}", renamed.body);
    let both = join_all((0..2).map(|_| api.delete_as(&token, &path))).await;
    for reply in &both {
        reply.assert_problem(409, "last_second_factor");
    }
    let listed = factors(&api, &token).await;
    assert_eq!(kinds(&listed), ["app"]);
    assert_eq!(listed[0]["name"], "Рабочий");
    // With the phone back, the app may go.
    let back = call(&api, Method::POST, "/v1/account/factors/sms", &token, None).await;
    assert_eq!(back.status, 204, "{}", back.body);
    let removed = api.delete_as(&token, &path).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let events = event_kinds(&api, &token).await;
    assert!(events.contains(&"factor_removed".to_string()), "{events:?}");
}

pub async fn factors_are_locked_right_after_a_recovery(api: Api) {
    let c = sign_up(&api).await;
    let proof = recovery_proof(&api, &c.email).await;
    let body = json!({"login": c.email, "verification_token": proof,
                      "security_answer": "Ёлкина", "new_password": "Granite-Kettle-77"});
    let recovered = api.post("/v1/recovery/complete", &unique_ip(), body).await;
    assert_eq!(recovered.status, 204, "{}", recovered.body);
    let reply = login(&api, &unique_ip(), &c.email, "Granite-Kettle-77", false).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = text(&reply.body["token"]);
    // A fresh login by password is not enough right after a recovery.
    let refused = call(&api, Method::POST, "/v1/account/backup-codes", &token, None).await;
    refused.assert_problem(403, "factors_locked_after_recovery");
    assert!(refused.header("retry-after").is_some());
    api.delete_as(&token, "/v1/account/factors/sms")
        .await
        .assert_problem(403, "factors_locked_after_recovery");
    // A code to the phone proves it is the owner.
    let sent = call(
        &api,
        Method::POST,
        "/v1/sessions/current/step-up",
        &token,
        None,
    )
    .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let code = api.code_sent_to(&c.phone).await;
    let verify = json!({"id": sent.id(), "code": code});
    let proven = api
        .post_as(&token, "/v1/sessions/current/step-up/verify", verify)
        .await;
    assert_eq!(proven.status, 200, "{}", proven.body);
    let issued = call(&api, Method::POST, "/v1/account/backup-codes", &token, None).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
}
