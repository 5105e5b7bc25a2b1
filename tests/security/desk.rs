//! Floods at the service centre's and the online confirmation's limits: an operator key
//! registering citizens by the hundred, and a flood of answers to one e-signature
//! challenge. Each limit is one conditional write, so parallel requests cannot pass it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use futures::future::join_all;
use serde_json::{json, Value};

use crate::scenario;
use crate::support::*;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(parallel_desk_registrations_stop_at_the_operators_hour),
        scenario!(parallel_answers_to_one_signature_challenge_stop_at_five),
    ]
}

/// Registrations one operator may make per clock hour: `ACCESS_RESTORATIONS_PER_HOUR`
/// (default 30), counted apart from the restorations.
const REGISTRATIONS_PER_HOUR: usize = 30;
/// Answers one signature challenge takes.
const SIGNATURE_ATTEMPTS: usize = 5;
/// Requests each flood sends at once.
const FLOOD: usize = 40;

fn count(replies: &[Reply], status: u16, code: &str) -> usize {
    replies
        .iter()
        .filter(|r| r.status == status && r.body["code"] == code)
        .count()
}

fn no_server_errors(replies: &[Reply]) {
    for r in replies {
        assert!(r.status < 500, "server error: {} {}", r.status, r.body);
    }
}

/// Waits out the last seconds of a clock hour: the operator's count is per clock hour,
/// and a flood split across two would be counted in both.
async fn clear_of_the_hours_turn() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let left = 3600 - now % 3600;
    if left < 30 {
        tokio::time::sleep(Duration::from_secs(left + 1)).await;
    }
}

/// What an operator types for a citizen with neither phone nor e-mail.
fn registration_form(snils: &str, passport_number: &str) -> Value {
    json!({
        "personal": {"last_name": "Смирнова", "first_name": "Анна", "middle_name": "Петровна",
                     "birth_date": "1985-03-12", "gender": "female"},
        "documents": {"snils": snils, "passport": passport(passport_number)},
    })
}

async fn parallel_desk_registrations_stop_at_the_operators_hour(api: Api) {
    // A SNILS that is a login already: every registration the hour lets through is
    // refused after the count, so the flood writes no account.
    let snils = snils_of("791");
    let number = verifiable_passport_number();
    standard_citizen(&api, &snils, &number).await;
    let operator = new_operator();
    let key = text(&operator["key"]);
    let operator_id = text(&operator["operator_id"]);
    clear_of_the_hours_turn().await;
    let replies = join_all((0..FLOOD).map(|_| {
        let api = api.clone();
        let key = key.clone();
        let body = registration_form(&snils, &number);
        async move { api.post_as(&key, "/v1/operator/registrations", body).await }
    }))
    .await;
    no_server_errors(&replies);
    let counted = count(&replies, 409, "snils_already_registered");
    let held = count(&replies, 429, "registration_limit");
    assert_eq!(counted, REGISTRATIONS_PER_HOUR, "{:?}", statuses(&replies));
    assert_eq!(held, FLOOD - REGISTRATIONS_PER_HOUR);
    assert!(replies
        .iter()
        .filter(|r| r.status == 429)
        .all(|r| r.header("retry-after").is_some()));
    // Nothing was registered: no audit item under the operator.
    let audit = api
        .items_with_prefix(&format!("OPERATOR#{operator_id}"))
        .await;
    let registered = audit
        .iter()
        .filter(|i| string_attr(i, "sk").starts_with("REGISTRATION#"))
        .count();
    assert_eq!(registered, 0);
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status).collect()
}

async fn parallel_answers_to_one_signature_challenge_stop_at_five(api: Api) {
    let (_, token) = standard_payer(&api).await;
    let issued = api
        .post_as(&token, "/v1/account/signature-challenges", json!({}))
        .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let challenge_id = issued.body["challenge_id"].clone();
    // Answers that are no signature at all: each one counted before it is looked at.
    let replies = join_all((0..FLOOD).map(|i| {
        let api = api.clone();
        let token = token.clone();
        let junk = STANDARD.encode(format!("not a signature {i}"));
        let body = json!({"challenge_id": challenge_id, "signature": junk});
        async move {
            api.post_as(&token, "/v1/account/signature-confirmations", body)
                .await
        }
    }))
    .await;
    no_server_errors(&replies);
    let exhausted = count(&replies, 410, "signature_attempts_exhausted");
    let checked = replies.iter().filter(|r| r.status == 422).count();
    assert!(
        checked <= SIGNATURE_ATTEMPTS,
        "{checked} answers checked: {:?}",
        statuses(&replies)
    );
    assert_eq!(checked + exhausted, FLOOD, "{:?}", statuses(&replies));
    // The account is still standard.
    let account = api.get_as(&token, "/v1/account").await;
    assert_eq!(account.body["level"], "standard", "{}", account.body);
}
