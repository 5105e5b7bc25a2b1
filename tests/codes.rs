//! End-to-end tests of the confirmation-code flow, over HTTP through the local gateway,
//! against the real DynamoDB/SNS/SES code running on the local stand-ins.

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Resend interval of the main stack: short, so that the hourly limits can be reached
/// in seconds, and long enough that an immediate second request is surely too early.
const RESEND_SECS: u64 = 3;
/// Code lifetime on the stack that tests expiry.
const SHORT_TTL_SECS: u64 = 2;

fn main() {
    run_suite(async {
        let mut tally = Tally::default();
        {
            let env = [("CODE_RESEND_INTERVAL_SECONDS", RESEND_SECS.to_string())];
            let (stack, api) = open_stack(&env, &[], 4).await;
            tally += run_all(
                &api,
                vec![
                    scenario!(sms_code_round_trip),
                    scenario!(email_code_round_trip),
                    scenario!(wrong_code_then_attempt_limit),
                    scenario!(early_resend_is_refused),
                    scenario!(destination_hourly_limit),
                    scenario!(client_hourly_limit),
                    scenario!(malformed_requests_are_refused_and_nothing_is_sent),
                    scenario!(malformed_verification_requests),
                    scenario!(unknown_route_is_404),
                ],
                true,
            )
            .await;
            // Alone, so that the one count it waits for is its own.
            tally += run_all(&api, vec![scenario!(a_code_sent_by_sms_is_counted)], false).await;
            stack.shutdown().await;
        }
        {
            // A second stack whose SNS endpoint is a closed port and whose codes expire
            // in seconds.
            let dead = free_port();
            let env = [
                ("AWS_ENDPOINT_URL_SNS", format!("http://127.0.0.1:{dead}")),
                ("CODE_TTL_SECONDS", SHORT_TTL_SECS.to_string()),
            ];
            let (stack, api) = open_stack(&env, &[], 4).await;
            let scenarios = vec![
                scenario!(sms_failure_leaves_nothing_behind),
                scenario!(expired_code_is_refused),
                scenario!(failed_sends_count_as_server_errors_not_codes_sent),
            ];
            tally += run_then_stop(stack, &api, scenarios, false).await;
        }
        tally
    })
}

fn parse_time(value: &serde_json::Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a time: {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn near(actual: OffsetDateTime, expected: OffsetDateTime) -> bool {
    (actual - expected).abs() <= time::Duration::seconds(5)
}

async fn sms_code_round_trip(api: Api) {
    let phone = unique_phone();
    // Typed the way people type it: 8, spaces, hyphens.
    let typed = format!(
        "8 {} {}-{}-{}",
        &phone[2..5],
        &phone[5..8],
        &phone[8..10],
        &phone[10..]
    );
    let before = OffsetDateTime::now_utc();
    let sent = api
        .send_code(&unique_ip(), "sms", &typed, "registration")
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.id();
    assert!(!id.is_empty());
    assert!(near(
        parse_time(&sent.body["expires_at"]),
        before + Duration::from_secs(600)
    ));
    assert!(near(
        parse_time(&sent.body["resend_available_at"]),
        before + Duration::from_secs(RESEND_SECS)
    ));

    let messages = api.outbox(&phone).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["channel"], "sms");
    assert_eq!(messages[0]["to"], phone.as_str(), "stored in E.164");
    let text = messages[0]["text"].as_str().unwrap_or_default();
    let code = extract_code(text).unwrap_or_else(|| panic!("no code in {text}"));
    assert_eq!(
        text,
        format!("Код подтверждения: {code}. Никому его не сообщайте.")
    );

    // Neither the code nor the phone number is stored in clear.
    let stored = api
        .item(&format!("CODE#{id}"), "CODE")
        .await
        .unwrap_or_else(|| panic!("code item missing"));
    let text = all_text(&stored);
    assert!(
        !text.contains(&code) && !text.contains(&phone[2..]),
        "{text}"
    );
    assert_eq!(string_attr(&stored, "status"), "active");
    assert_eq!(string_attr(&stored, "purpose"), "registration");

    let verified = api.verify(&id, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    let token = verified.body["verification_token"]
        .as_str()
        .unwrap_or_default();
    assert!(token.starts_with("vt_") && token.len() > 40, "{token}");
    assert!(near(
        parse_time(&verified.body["expires_at"]),
        OffsetDateTime::now_utc() + Duration::from_secs(900)
    ));

    let stored = api
        .item(&format!("CODE#{id}"), "CODE")
        .await
        .unwrap_or_default();
    assert_eq!(string_attr(&stored, "status"), "used");
    // The token is stored only as a keyed hash, bound to the purpose.
    let tokens = api.items_with_prefix("VTOKEN#").await;
    let ours: Vec<_> = tokens
        .iter()
        .filter(|t| string_attr(t, "code_id") == id)
        .collect();
    assert_eq!(ours.len(), 1);
    assert!(!all_text(ours[0]).contains(&token[3..]));
    assert_eq!(string_attr(ours[0], "purpose"), "registration");
    assert_eq!(string_attr(ours[0], "channel"), "sms");

    // Single use.
    api.verify(&id, &code)
        .await
        .assert_problem(410, "code_already_used");
}

async fn email_code_round_trip(api: Api) {
    let email = unique_email();
    let typed = format!("  {}  ", email.to_uppercase());
    let id = api.code_sent("email", &typed, "recovery").await;

    let messages = api.outbox(&email).await;
    assert_eq!(
        messages.len(),
        1,
        "lower-cased address gets the mail: {messages:?}"
    );
    assert_eq!(messages[0]["channel"], "email");
    assert_eq!(messages[0]["subject"], "Код подтверждения");
    assert_eq!(messages[0]["from"], "no-reply@uslugi.example");
    let code = extract_code(messages[0]["text"].as_str().unwrap_or_default())
        .unwrap_or_else(|| panic!("no code in {}", messages[0]));

    let verified = api.verify(&id, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert!(verified.body["verification_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("vt_")));
}

async fn wrong_code_then_attempt_limit(api: Api) {
    let phone = unique_phone();
    let id = api.code_sent("sms", &phone, "login").await;
    let code = api.code_sent_to(&phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for left in (0..5).rev() {
        let reply = api.verify(&id, wrong).await;
        reply.assert_problem(422, "code_mismatch");
        assert_eq!(reply.body["attempts_left"], left, "{}", reply.body);
    }
    // Five wrong answers killed the code: even the right one is refused now.
    api.verify(&id, &code)
        .await
        .assert_problem(410, "code_attempts_exhausted");
    let stored = api
        .item(&format!("CODE#{id}"), "CODE")
        .await
        .unwrap_or_default();
    assert_eq!(number_attr(&stored, "attempts"), 5);
    assert_eq!(string_attr(&stored, "status"), "active");
}

async fn early_resend_is_refused(api: Api) {
    let phone = unique_phone();
    let first = api
        .send_code(&unique_ip(), "sms", &phone, "registration")
        .await;
    assert_eq!(first.status, 202, "{}", first.body);
    // Another client, another purpose: the destination is what is protected.
    let again = api.send_code(&unique_ip(), "sms", &phone, "login").await;
    again.assert_problem(429, "code_resend_too_early");
    let retry: u64 = again
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After missing: {:?}", again.headers));
    assert!((1..=RESEND_SECS).contains(&retry), "Retry-After {retry}");
    assert_eq!(api.outbox(&phone).await.len(), 1, "only one SMS went out");

    tokio::time::sleep(Duration::from_secs(retry) + Duration::from_millis(300)).await;
    let later = api.send_code(&unique_ip(), "sms", &phone, "login").await;
    assert_eq!(
        later.status, 202,
        "allowed after Retry-After: {}",
        later.body
    );
}

async fn destination_hourly_limit(api: Api) {
    let email = unique_email();
    let ip = unique_ip();
    for i in 0..5 {
        if i > 0 {
            tokio::time::sleep(Duration::from_secs(RESEND_SECS) + Duration::from_millis(200)).await;
        }
        let reply = api.send_code(&ip, "email", &email, "registration").await;
        assert_eq!(reply.status, 202, "send {i}: {}", reply.body);
    }
    tokio::time::sleep(Duration::from_secs(RESEND_SECS) + Duration::from_millis(200)).await;
    let refused = api
        .send_code(&unique_ip(), "email", &email, "registration")
        .await;
    refused.assert_problem(429, "code_destination_limit");
    let retry = refused.retry_after();
    assert!((3500..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(api.outbox(&email).await.len(), 5);
}

async fn client_hourly_limit(api: Api) {
    let ip = unique_ip();
    for i in 0..20 {
        let reply = api
            .send_code(&ip, "sms", &unique_phone(), "registration")
            .await;
        assert_eq!(reply.status, 202, "send {i}: {}", reply.body);
    }
    let phone = unique_phone();
    let refused = api.send_code(&ip, "sms", &phone, "registration").await;
    refused.assert_problem(429, "code_client_limit");
    assert!(refused
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|s| s > 3500));
    assert!(api.outbox(&phone).await.is_empty());
    // Another address is not affected.
    let other = api
        .send_code(&unique_ip(), "sms", &phone, "registration")
        .await;
    assert_eq!(other.status, 202, "{}", other.body);
}

async fn malformed_requests_are_refused_and_nothing_is_sent(api: Api) {
    let ip = unique_ip();
    #[rustfmt::skip]
    let cases = [
        ("/destination", "not_mobile_phone", json!({"channel": "sms", "destination": "+7 495 123-45-67", "purpose": "login"})),
        ("/destination", "invalid_phone", json!({"channel": "sms", "destination": "+7 931 870-29-0", "purpose": "login"})),
        ("/destination", "invalid_phone", json!({"channel": "sms", "destination": "+375 29 123-45-67", "purpose": "login"})),
        ("/destination", "invalid_email", json!({"channel": "email", "destination": "ivan@", "purpose": "login"})),
        ("/destination", "invalid_email", json!({"channel": "email", "destination": "ivan@localhost", "purpose": "login"})),
        ("/purpose", "invalid_value", json!({"channel": "sms", "destination": "+79318702901", "purpose": "hack"})),
        ("/channel", "invalid_value", json!({"channel": "fax", "destination": "+79318702901", "purpose": "login"})),
        ("/channel", "required", json!({"destination": "+79318702901", "purpose": "login"})),
        ("/destination", "invalid_type", json!({"channel": "sms", "destination": 79318702901u64, "purpose": "login"})),
        ("/admin", "unknown_field", json!({"channel": "sms", "destination": "+79318702901", "purpose": "login", "admin": true})),
    ];
    for (field, code, body) in cases {
        let reply = api.post("/v1/codes", &ip, body.clone()).await;
        reply.assert_invalid_field(field, code);
    }
    // Every invalid field is reported at once.
    let reply = api
        .post(
            "/v1/codes",
            &ip,
            json!({"channel": "sms", "destination": "123", "purpose": "x"}),
        )
        .await;
    assert_eq!(reply.field_errors().len(), 2, "{}", reply.body);

    for raw in ["{\"channel\": \"sms\"", "[1,2]", "", "not json"] {
        let reply = api.post_raw("/v1/codes", &ip, raw.to_string()).await;
        reply.assert_problem(400, "invalid_json");
    }
    let huge = json!({"channel": "sms", "destination": "x".repeat(20_000), "purpose": "login"});
    api.post("/v1/codes", &ip, huge)
        .await
        .assert_problem(413, "payload_too_large");

    assert!(api.outbox("+79318702901").await.is_empty());
    assert!(api.outbox("+74951234567").await.is_empty());
    // Refused requests spend no quota: this address can still send 20 codes.
    for _ in 0..3 {
        let ok = api.send_code(&ip, "sms", &unique_phone(), "login").await;
        assert_eq!(ok.status, 202, "{}", ok.body);
    }
}

async fn malformed_verification_requests(api: Api) {
    let phone = unique_phone();
    let sent = api.send_code(&unique_ip(), "sms", &phone, "login").await;
    let id = sent.id();
    for bad in ["12345", "1234567", "12a456", "", "１２３４５６"] {
        let reply = api.verify(&id, bad).await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(
            reply.field_errors(),
            [("/code".to_string(), "invalid_code_format".to_string())],
            "{bad}"
        );
    }
    let reply = api
        .post(
            &format!("/v1/codes/{id}/verify"),
            "198.51.100.1",
            json!({"code": 123456}),
        )
        .await;
    assert_eq!(
        reply.field_errors(),
        [("/code".to_string(), "invalid_type".to_string())]
    );
    // Format errors cost no attempt.
    let stored = api
        .item(&format!("CODE#{id}"), "CODE")
        .await
        .unwrap_or_default();
    assert_eq!(number_attr(&stored, "attempts"), 0);

    api.verify("00000000-0000-4000-8000-000000000000", "123456")
        .await
        .assert_problem(404, "code_not_found");
    api.verify("not-a-code-id", "123456")
        .await
        .assert_problem(404, "code_not_found");
}

async fn unknown_route_is_404(api: Api) {
    let reply = api
        .post("/v1/nothing-here", "198.51.100.2", json!({}))
        .await;
    assert_eq!(reply.status, 404);
}

async fn sms_failure_leaves_nothing_behind(api: Api) {
    let phone = unique_phone();
    let ip = unique_ip();
    // Six tries: were quota spent on failures, the 60-s resend rule or the hourly limit
    // would answer 429 instead of 503.
    for _ in 0..6 {
        let reply = api.send_code(&ip, "sms", &phone, "registration").await;
        reply.assert_problem(503, "delivery_unavailable");
        assert!(reply
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1));
    }
    assert!(
        api.items_with_prefix("CODE#").await.is_empty(),
        "no code left"
    );
    for log in api.items_with_prefix("SENDLOG#").await {
        match log.get("sends") {
            Some(aws_sdk_dynamodb::types::AttributeValue::M(m)) => {
                assert!(m.is_empty(), "quota left spent: {log:?}")
            }
            None => {}
            other => panic!("unexpected sends {other:?}"),
        }
    }
    assert!(api.outbox(&phone).await.is_empty());
}

/// The business metric of a sent code: one embedded-metric-format line in the codes
/// function's log, which CloudWatch turns into `Uslugi/CodesSent` by `Stage, Channel`.
async fn a_code_sent_by_sms_is_counted(api: Api) {
    let sms = [("Channel", "sms")];
    let before = api
        .matching_metric_lines("CodesFunction", "CodesSent", &sms)
        .len();
    let sent = api
        .send_code(&unique_ip(), "sms", &unique_phone(), "registration")
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let lines = api
        .wait_for_metric("CodesFunction", "CodesSent", &sms, before)
        .await;
    assert_eq!(lines.len(), before + 1, "one code, one count: {lines:?}");
    let stage = api.metric_stage("CodesFunction");
    assert_metric_line(&lines[before], "CodesSent", &stage, &sms);
    // Nothing but the metric, its dimensions and `_aws`: no phone, no code id.
    assert_eq!(
        lines[before].as_object().map(|o| o.len()),
        Some(4),
        "{}",
        lines[before]
    );
}

/// On the stack whose SMS provider is down: a failed send is a 503 counted under
/// `ServerErrors` (the canary's rollback signal), never a code sent.
async fn failed_sends_count_as_server_errors_not_codes_sent(api: Api) {
    let before = api.metric_lines("CodesFunction", "ServerErrors").len();
    let reply = api
        .send_code(&unique_ip(), "sms", &unique_phone(), "registration")
        .await;
    reply.assert_problem(503, "delivery_unavailable");
    let errors = api
        .wait_for_metric("CodesFunction", "ServerErrors", &[], before)
        .await;
    assert_eq!(errors.len(), before + 1, "{errors:?}");
    let line = &errors[before];
    let function = line["FunctionName"].as_str().unwrap_or_default();
    let version = line["Version"].as_str().unwrap_or_default();
    assert!(!function.is_empty() && !version.is_empty(), "{line}");
    assert_metric_line(
        line,
        "ServerErrors",
        &api.metric_stage("CodesFunction"),
        &[("FunctionName", function), ("Version", version)],
    );
    assert!(
        api.matching_metric_lines("CodesFunction", "CodesSent", &[("Channel", "sms")])
            .is_empty(),
        "no SMS went out on this stack"
    );
}

async fn expired_code_is_refused(api: Api) {
    let email = unique_email();
    let id = api.code_sent("email", &email, "contact_change").await;
    let code = api.code_sent_to(&email).await;
    tokio::time::sleep(Duration::from_secs(SHORT_TTL_SECS + 1)).await;
    api.verify(&id, &code)
        .await
        .assert_problem(410, "code_expired");
}
