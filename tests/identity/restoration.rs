//! Access restored at a service centre: a citizen who lost their phone and e-mail shows
//! the passport, and the operator gives the account a new phone.

use serde_json::{json, Value};

use crate::support::*;

const PATH: &str = "/v1/operator/access-restorations";

/// What the operator types at the desk: the SNILS, the passport, a new phone and the
/// verification token of the code the citizen received on it.
fn desk(snils: &str, passport_number: &str, phone: &str, token: &str) -> Value {
    json!({
        "snils": snils,
        "passport_series": "45 10",
        "passport_number": passport_number,
        "contact": {"channel": "sms", "destination": phone, "verification_token": token},
    })
}

/// A token no code ever gave: for the refusals decided before it is looked at.
const NO_TOKEN: &str = "vt_never_issued";

/// The citizen at the desk receives a `contact_change` code on `phone` and the operator
/// verifies it: the verification token for the restoration.
async fn code_on(api: &Api, phone: &str) -> String {
    verified_for(api, "sms", phone, phone, "contact_change").await
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
    api.post_as(&first, PATH, desk(&snils, "681001", &new_phone, NO_TOKEN))
        .await
        .assert_problem(403, "operator_only");
    let biller = new_biller("МФЦ не начисляет");
    api.post_as(
        &biller.key,
        PATH,
        desk(&snils, "681001", &new_phone, NO_TOKEN),
    )
    .await
    .assert_problem(403, "operator_only");

    // The contact is checked like any destination, its errors under /contact.
    let reply = api
        .post_as(
            &key,
            PATH,
            desk(&snils, "681001", "+7 495 123-45-67", NO_TOKEN),
        )
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
        ("/contact/verification_token", "required"),
        ("/contact/note", "unknown_field"),
    ]);

    // Another passport: refused, and nothing changes.
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681002", &new_phone, NO_TOKEN))
        .await;
    reply.assert_field_errors(&[("/passport", "passport_mismatch")]);
    assert_eq!(session_status(&api, &first).await, 200);
    assert_eq!(session_status(&api, &second).await, 200);
    login(&api, &unique_ip(), &new_phone, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");
    assert!(api.outbox(&new_phone).await.is_empty());

    // The citizen receives a code on the new phone at the desk. A phone typed with one
    // digit wrong has no code of its own: refused, nothing changes, nothing is sent to it.
    let token = code_on(&api, &new_phone).await;
    let mistyped = unique_phone();
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", &mistyped, &token))
        .await;
    reply.assert_field_errors(&[("/contact/verification_token", "verification_token_invalid")]);
    assert_eq!(session_status(&api, &first).await, 200);
    assert!(api.outbox(&mistyped).await.is_empty());
    login(&api, &unique_ip(), &mistyped, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");

    // Someone else's phone stays theirs: only who holds it (a code received on it) hears
    // that it is taken. Without its code, the answer is the one any phone gets.
    let other = sign_up(&api).await;
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", &other.phone, NO_TOKEN))
        .await;
    reply.assert_field_errors(&[("/contact/verification_token", "verification_token_invalid")]);
    let others_token = code_on(&api, &other.phone).await;
    let reply = api
        .post_as(
            &key,
            PATH,
            desk(&snils, "681001", &other.phone, &others_token),
        )
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
        .post_as(&key, PATH, desk(&snils, "681001", &typed, &token))
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

    // The code is spent: the same token again, for the same phone, is refused. With a new
    // code, the same phone is no change.
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", &new_phone, &token))
        .await;
    reply.assert_field_errors(&[("/contact/verification_token", "verification_token_invalid")]);
    let again = code_on(&api, &new_phone).await;
    let reply = api
        .post_as(&key, PATH, desk(&snils, "681001", &new_phone, &again))
        .await;
    reply.assert_field_errors(&[("/contact/destination", "unchanged")]);
}

const REGISTRATIONS: &str = "/v1/operator/registrations";

/// What the operator types for a citizen with no phone and no e-mail.
fn registration_form(snils: &str, passport_number: &str) -> Value {
    json!({
        "personal": {
            "last_name": "Смирнова",
            "first_name": "Анна",
            "middle_name": "Петровна",
            "birth_date": "1985-03-12",
            "gender": "female",
        },
        "documents": {"snils": snils, "passport": passport(passport_number)},
    })
}

pub async fn an_operator_registers_a_citizen_without_contacts(api: Api) {
    let snils = snils_of("683");
    let number = six_digits();
    let operator = new_operator();
    let key = text(&operator["key"]);
    let form = registration_form(&snils, &number);

    // Only an operator key registers at the desk.
    let (_, citizen_token) = citizen(&api).await;
    api.post_as(&citizen_token, REGISTRATIONS, form.clone())
        .await
        .assert_problem(403, "operator_only");
    // Every identity field is required, each named; nothing is written.
    api.post_as(
        &key,
        REGISTRATIONS,
        json!({"personal": {"first_name": "Анна"}, "documents": {"snils": snils}}),
    )
    .await
    .assert_field_errors(&[
        ("/personal/last_name", "required"),
        ("/personal/birth_date", "required"),
        ("/personal/gender", "required"),
        ("/documents/passport", "required"),
    ]);

    let done = api.post_as(&key, REGISTRATIONS, form.clone()).await;
    assert_eq!(done.status, 201, "{}", done.body);
    assert_eq!(done.body["level"], "simplified");
    let paper = text(&done.body["temporary_password"]);
    assert_eq!(paper.len(), 14, "{paper}");

    // The registries verify what the operator typed; the account then is confirmed and
    // its SNILS a login. The operator's own confirmation route tells when: 404 while no
    // account has the SNILS as a login, `account_not_standard` while the SNILS is
    // verified and the passport not yet, 409 `already_confirmed` once all five are.
    let confirmed = json!({"snils": snils, "passport_series": "45 10", "passport_number": number});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reply = api
            .post_as(&key, "/v1/operator/confirmations", confirmed.clone())
            .await;
        if reply.status == 409 && reply.body["code"] == "already_confirmed" {
            break;
        }
        let waiting = reply.status == 404
            || (reply.status == 409 && reply.body["code"] == "account_not_standard");
        assert!(
            waiting && std::time::Instant::now() < deadline,
            "never confirmed: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // The same citizen registered again is sent to restoration.
    api.post_as(&key, REGISTRATIONS, form)
        .await
        .assert_problem(409, "snils_already_registered");

    // The paper password opens no session, only its own replacement.
    let first = login(&api, &unique_ip(), &snils, &paper, false).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["password_change_required"], true);
    assert!(first.body.get("token").is_none());
    let challenge = text(&first.body["challenge_token"]);
    // It is no two-step challenge.
    api.post(
        "/v1/sessions/two-step",
        &unique_ip(),
        json!({"challenge_token": challenge, "code": "123456"}),
    )
    .await
    .assert_problem(401, "two_step_challenge_invalid");
    let change = |password: &str| json!({"challenge_token": challenge, "new_password": password});
    api.post("/v1/sessions/password-change", &unique_ip(), change(&paper))
        .await
        .assert_field_errors(&[("/new_password", "password_unchanged")]);
    api.post("/v1/sessions/password-change", &unique_ip(), change("abc1"))
        .await
        .assert_field_errors(&[("/new_password", "password_length")]);
    let opened = api
        .post(
            "/v1/sessions/password-change",
            &unique_ip(),
            change(PASSWORD),
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let token = text(&opened.body["token"]);
    // The challenge opened one session; the paper password is gone, the new one works.
    api.post(
        "/v1/sessions/password-change",
        &unique_ip(),
        change(PASSWORD),
    )
    .await
    .assert_problem(401, "two_step_challenge_invalid");
    login(&api, &unique_ip(), &snils, &paper, false)
        .await
        .assert_problem(401, "invalid_credentials");
    assert_logs_in(&api, &snils, PASSWORD).await;

    // The account is confirmed, with the name the operator typed and no contact.
    let account = api.get_as(&token, "/v1/profile").await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert_eq!(account.body["level"], "confirmed");
    assert_eq!(account.body["personal"]["last_name"], "Смирнова");
    let events = api.get_as(&token, "/v1/security-events").await;
    assert_eq!(events.status, 200, "{}", events.body);
    let events = events.list("events");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for kind in ["account_created", "level_confirmed", "password_changed"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // The citizen adds a phone as anyone changes a contact, and logs in with it.
    let phone = unique_phone();
    let proof = verified_for(&api, "sms", &phone, &phone, "contact_change").await;
    let added = change_contact(&api, &token, "phone", &phone, &proof).await;
    assert_eq!(added.status, 204, "{}", added.body);
    assert_logs_in(&api, &phone, PASSWORD).await;
}

/// A citizen with two-step login on whose only factor was an authentication app on the
/// phone they lost: after the restoration, the new phone completes a two-step login.
pub async fn a_restored_phone_completes_a_two_step_login(api: Api) {
    let snils = snils_of("684");
    let number = verifiable_passport_number();
    let (c, token) = standard_citizen(&api, &snils, &number).await;
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);
    super::factors::with_app(&api, &token).await;
    let removed = api.delete_as(&token, "/v1/account/factors/sms").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let login = json!({"login": c.email, "password": PASSWORD});
    let asked = api.post("/v1/sessions", &unique_ip(), login.clone()).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(
        asked.body["second_factor"], "app",
        "the lost phone's app only"
    );

    let operator = new_operator();
    let new_phone = unique_phone();
    let token = code_on(&api, &new_phone).await;
    let restored = api
        .post_as(
            &text(&operator["key"]),
            PATH,
            desk(&snils, &number, &new_phone, &token),
        )
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);

    // The new phone is a factor again: the login's code goes there, and completes it.
    let asked = api.post("/v1/sessions", &unique_ip(), login).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(asked.body["second_factor"], "sms", "{}", asked.body);
    let code = api.code_sent_to(&new_phone).await;
    let done = api
        .post(
            "/v1/sessions/two-step",
            &unique_ip(),
            json!({"challenge_token": asked.body["challenge_token"], "code": code}),
        )
        .await;
    assert_eq!(done.status, 201, "{}", done.body);
    let token = text(&done.body["token"]);
    let listed = api.get_as(&token, "/v1/account/factors").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let kinds: Vec<_> = listed.body["factors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| text(&f["kind"]))
        .collect();
    assert!(kinds.contains(&"sms".to_string()), "{kinds:?}");
}
