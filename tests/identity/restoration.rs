//! Access restored at a service centre: a citizen who lost their phone and e-mail shows
//! the passport, and the operator gives the account a new phone.

use serde_json::{json, Value};

use crate::support::*;

const PATH: &str = "/v1/operator/access-restorations";

/// What the operator types at the desk: the SNILS, the passport and a new phone.
fn desk(snils: &str, passport_number: &str, phone: &str) -> Value {
    json!({
        "snils": snils,
        "passport_series": "45 10",
        "passport_number": passport_number,
        "contact": {"channel": "sms", "destination": phone},
    })
}

/// Whether `GET /v1/sessions` still lets the holder of `token` in.
async fn session_status(api: &Api, token: &str) -> u16 {
    api.get_as(token, "/v1/sessions").await.status
}

pub async fn an_operator_restores_access_with_a_new_phone(api: Api) {
    let snils = snils_of("681");
    let (c, first) = standard_citizen(&api, &snils, "681001").await;
    let second = token_for(&api, &c).await;
    let operator = new_operator();
    let key = text(&operator["key"]);
    let operator_id = text(&operator["operator_id"]);
    let new_phone = unique_phone();

    // Only an operator key opens the route: a citizen's session and a biller's key are
    // refused before anything is read or counted.
    api.post_as(&first, PATH, desk(&snils, "681001", &new_phone))
        .await
        .assert_problem(403, "operator_only");
    let biller = new_biller("МФЦ не начисляет");
    api.post_as(&biller.key, PATH, desk(&snils, "681001", &new_phone))
        .await
        .assert_problem(403, "operator_only");

    // The contact is checked like any destination, its errors under /contact.
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", "+7 495 123-45-67"))
        .await;
    reply.assert_field_errors(&[("/contact/destination", "not_mobile_phone")]);
    let reply = api
        .post_as(
            &key,
            PATH,
            json!({"snils": snils, "passport_series": "45 10", "passport_number": "681001",
                   "contact": {"channel": "fax", "destination": new_phone, "note": 1}}),
        )
        .await;
    reply.assert_field_errors(&[
        ("/contact/channel", "invalid_value"),
        ("/contact/note", "unknown_field"),
    ]);

    // Another passport: refused, and nothing changes.
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681002", &new_phone))
        .await;
    reply.assert_field_errors(&[("/passport", "passport_mismatch")]);
    assert_eq!(session_status(&api, &first).await, 200);
    assert_eq!(session_status(&api, &second).await, 200);
    login(&api, &unique_ip(), &new_phone, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");
    assert!(api.outbox(&new_phone).await.is_empty());

    // Someone else's phone stays theirs.
    let other = sign_up(&api).await;
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", &other.phone))
        .await;
    reply.assert_problem(409, "contact_already_registered");
    assert_eq!(
        reply.field_errors(),
        vec![(
            "/contact/destination".to_string(),
            "already_registered".to_string()
        )]
    );
    assert_eq!(session_status(&api, &first).await, 200);
    assert_logs_in(&api, &other.phone, PASSWORD).await;

    // The right passport: the new phone, typed as the citizen says it.
    let typed = format!("8 {} {}", &new_phone[2..5], &new_phone[5..]);
    let done = api
        .post_as(&key, PATH, desk(&snils, "681001", &typed))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        done.body,
        json!({"account_id": c.account_id, "contact": {"channel": "sms", "destination": new_phone}})
    );

    // Every old session is over; the new phone and the old password sign in, the old
    // phone no longer does.
    assert_eq!(session_status(&api, &first).await, 401, "first session");
    assert_eq!(session_status(&api, &second).await, 401, "second session");
    let reply = login(&api, &unique_ip(), &new_phone, PASSWORD, false).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = text(&reply.body["token"]);
    login(&api, &unique_ip(), &c.phone, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");

    // The new phone got an SMS, the address the account keeps a letter.
    let sms = api.outbox(&new_phone).await;
    assert!(
        sms.iter().any(|m| m["text"]
            .as_str()
            .is_some_and(|t| t.contains("восстановлен в центре обслуживания"))),
        "{sms:?}"
    );
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter().any(|m| m["subject"] == "Доступ восстановлен"),
        "{mail:?}"
    );

    // Logged for the citizen, naming the operator, and under the operator.
    let events = api.get_as(&token, "/v1/security-events").await;
    let restored = events.body["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["type"] == "access_restored"))
        .cloned()
        .unwrap_or_else(|| panic!("no access_restored event: {}", events.body));
    assert!(
        text(&restored["device"]).contains(&operator_id),
        "{restored}"
    );
    let audit = api
        .items_with_prefix(&format!("OPERATOR#{operator_id}"))
        .await;
    assert!(
        audit
            .iter()
            .any(|i| string_attr(i, "sk").starts_with("RESTORATION#")
                && string_attr(i, "account_id") == c.account_id),
        "no restoration under the operator"
    );

    // The same phone again is no change.
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", &new_phone))
        .await;
    reply.assert_field_errors(&[("/contact/destination", "unchanged")]);
}
