//! End-to-end tests of identity: registration, login, sessions, the authorizer and the
//! security log, over HTTP through the local gateway.

mod support;

#[path = "identity/factors.rs"]
mod factors;
#[path = "identity/passkeys.rs"]
mod passkeys;
#[path = "identity/restoration.rs"]
mod restoration;

use factors::*;
use passkeys::*;
use restoration::*;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

/// Idle lifetime of foreign-computer sessions on the test stack.
const FOREIGN_IDLE_SECS: u64 = 6;

fn main() {
    run_suite(async {
        let env = [
            // Several codes to one contact in a row (duplicate and racing sign-ups).
            ("CODE_RESEND_INTERVAL_SECONDS", "0".to_string()),
            ("CODE_MAX_PER_DESTINATION_PER_HOUR", "50".to_string()),
            (
                "FOREIGN_SESSION_IDLE_SECONDS",
                FOREIGN_IDLE_SECS.to_string(),
            ),
        ];
        let (stack, api) = open_stack(&env, &[], 4).await;
        let scenarios = vec![
            scenario!(full_sign_up),
            scenario!(registration_field_errors),
            scenario!(duplicate_phone_and_email),
            scenario!(racing_sign_ups_one_wins),
            scenario!(login_by_phone_and_email_forms),
            scenario!(wrong_password_and_unknown_login_look_the_same),
            scenario!(throttling_after_failures),
            scenario!(foreign_computer_session_expires),
            scenario!(listing_and_revoking_sessions),
            scenario!(logout),
            scenario!(private_routes_need_a_valid_token),
            scenario!(security_log),
            scenario!(password_change_revokes_other_sessions),
            scenario!(recovery_by_email_and_by_phone),
            scenario!(recovery_reveals_nothing_about_unknown_logins),
            scenario!(contact_change),
            scenario!(account_deletion),
            scenario!(security_settings_need_the_password),
            scenario!(two_step_login),
            scenario!(new_device_alerts),
            scenario!(an_authentication_app_completes_a_login_once_per_code),
            scenario!(parallel_wrong_app_codes_stop_at_the_lock),
            scenario!(a_backup_code_works_once),
            scenario!(the_last_factor_cannot_be_removed),
            scenario!(factors_are_locked_right_after_a_recovery),
            scenario!(a_passkey_is_the_second_step_of_a_login),
            scenario!(another_citizens_passkey_cannot_finish_a_login),
            scenario!(a_discoverable_passkey_logs_in_without_a_password),
            scenario!(passkeys_follow_the_factor_rules),
            scenario!(passkey_changes_are_locked_after_a_recovery),
            scenario!(a_passkey_from_before_a_recovery_no_longer_logs_in_alone),
            scenario!(deleting_the_account_releases_its_passkeys),
            scenario!(an_operator_restores_access_with_a_new_phone),
            scenario!(a_restored_phone_completes_a_two_step_login),
            scenario!(an_operator_registers_a_citizen_without_contacts),
        ];
        run_then_stop(stack, &api, scenarios, true).await
    })
}

async fn sessions(api: &Api, token: &str) -> Reply {
    api.get_as(token, "/v1/sessions").await
}

/// Asserts what `GET /v1/sessions` answers the holder of `token` (200 while its session
/// lives, 401 once it is over): the scenarios check that sessions end, and which.
async fn assert_session(api: &Api, token: &str, status: u16, why: &str) {
    assert_eq!(sessions(api, token).await.status, status, "{why}");
}

// ------------------------------------------------------------------ registration

async fn full_sign_up(api: Api) {
    let email = unique_email();
    let phone = unique_phone();
    let email_token = verified(&api, "email", &email.to_uppercase(), &email).await;
    let typed_phone = format!("8{}", &phone[2..]);
    let phone_token = verified(&api, "sms", &typed_phone, &phone).await;
    let body = registration(
        &email.to_uppercase(),
        &typed_phone,
        &email_token,
        &phone_token,
    );
    let reply = api.post("/v1/accounts", &unique_ip(), body.clone()).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["level"], "simplified");
    let account_id = reply.body["account_id"].as_str().unwrap_or_default();

    // What landed: names as typed (ё kept), contacts normalised, secrets only hashed.
    let account = api
        .item(&format!("ACCOUNT#{account_id}"), "ACCOUNT")
        .await
        .unwrap_or_else(|| panic!("account item missing"));
    assert_eq!(string_attr(&account, "first_name"), "Пётр");
    assert_eq!(string_attr(&account, "email"), email);
    assert_eq!(string_attr(&account, "phone"), phone);
    assert!(string_attr(&account, "password_hash").starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    assert!(string_attr(&account, "security_answer_hash").starts_with("$argon2id$"));
    let text = all_text(&account);
    assert!(!text.contains(PASSWORD) && !text.contains("Ёлкина") && !text.contains("елкина"));

    // A welcome letter went out.
    let mail = api.outbox(&email).await;
    assert_eq!(mail[0]["subject"], "Добро пожаловать", "{mail:?}");

    // The same request again: its tokens are spent, and that is all it learns; whether
    // the contacts are registered is told only to whoever proves they hold them.
    let again = api.post("/v1/accounts", &unique_ip(), body).await;
    again.assert_problem(422, "validation_failed");
    assert!(again.field_errors().contains(&(
        "/email_verification_token".into(),
        "verification_token_invalid".into()
    )));

    // A fresh e-mail + phone with the used tokens: the tokens are refused.
    let reply = api
        .post(
            "/v1/accounts",
            &unique_ip(),
            registration(&unique_email(), &unique_phone(), &email_token, &phone_token),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    reply.assert_invalid_field("/email_verification_token", "verification_token_invalid");
    reply.assert_invalid_field("/phone_verification_token", "verification_token_invalid");
}

async fn registration_field_errors(api: Api) {
    let ip = unique_ip();
    let base = registration("a@example.ru", "+79990000000", "vt_x", "vt_y");
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "last_name",
            json!("Ivanov"),
            "/last_name",
            "invalid_characters",
        ),
        (
            "first_name",
            json!("Пётр1"),
            "/first_name",
            "invalid_characters",
        ),
        ("first_name", json!(""), "/first_name", "required"),
        (
            "middle_name",
            json!("Sergeevich"),
            "/middle_name",
            "invalid_characters",
        ),
        ("last_name", json!("а".repeat(61)), "/last_name", "too_long"),
        ("email", json!("not-an-email"), "/email", "invalid_email"),
        (
            "phone",
            json!("+7 495 123-45-67"),
            "/phone",
            "not_mobile_phone",
        ),
        ("phone", json!("12345"), "/phone", "invalid_phone"),
        ("password", json!("a1b2c3"), "/password", "password_length"),
        (
            "password",
            json!("onlyletters"),
            "/password",
            "password_too_simple",
        ),
        (
            "password",
            json!("password1"),
            "/password",
            "password_breached",
        ),
        (
            "password",
            json!("a1@example.ru"),
            "/password",
            "password_is_contact",
        ),
        (
            "security_question",
            json!("?"),
            "/security_question",
            "invalid_length",
        ),
        (
            "security_answer",
            json!(null),
            "/security_answer",
            "required",
        ),
        (
            "email_verification_token",
            json!("123456"),
            "/email_verification_token",
            "verification_token_invalid",
        ),
        (
            "phone_verification_token",
            json!(42),
            "/phone_verification_token",
            "invalid_type",
        ),
        ("level", json!("confirmed"), "/level", "unknown_field"),
    ];
    for (field, value, pointer, code) in cases {
        let mut body = base.clone();
        if field == "password" && code == "password_is_contact" {
            body["email"] = json!("a1@example.ru");
        }
        body[field] = value;
        let reply = api.post("/v1/accounts", &ip, body.clone()).await;
        reply.assert_invalid_field(pointer, code);
    }
    api.post_raw("/v1/accounts", &ip, "{\"last_name\":".into())
        .await
        .assert_problem(400, "invalid_json");
}

async fn duplicate_phone_and_email(api: Api) {
    let first = sign_up(&api).await;

    // Same phone, new e-mail.
    let email = unique_email();
    let email_token = verified(&api, "email", &email, &email).await;
    let phone_token = verified(&api, "sms", &first.phone, &first.phone).await;
    let reply = register(&api, &email, &first.phone, &email_token, &phone_token).await;
    reply.assert_problem(409, "contact_already_registered");
    assert_eq!(
        reply.field_errors(),
        [("/phone".to_string(), "already_registered".to_string())]
    );
    // Nothing was spent: the e-mail token still works with a free phone.
    let phone = unique_phone();
    let free_phone_token = verified(&api, "sms", &phone, &phone).await;
    let ok = register(&api, &email, &phone, &email_token, &free_phone_token).await;
    assert_eq!(ok.status, 201, "{}", ok.body);

    // Same e-mail (in another case), new phone.
    let phone = unique_phone();
    let phone_token = verified(&api, "sms", &phone, &phone).await;
    let email_token = verified(&api, "email", &first.email, &first.email).await;
    let reply = api
        .post(
            "/v1/accounts",
            &unique_ip(),
            registration(
                &first.email.to_uppercase(),
                &phone,
                &email_token,
                &phone_token,
            ),
        )
        .await;
    reply.assert_problem(409, "contact_already_registered");
    assert_eq!(
        reply.field_errors(),
        [("/email".to_string(), "already_registered".to_string())]
    );
}

async fn racing_sign_ups_one_wins(api: Api) {
    let phone = unique_phone();
    let (email_a, email_b) = (unique_email(), unique_email());
    let token_a = verified(&api, "email", &email_a, &email_a).await;
    let token_b = verified(&api, "email", &email_b, &email_b).await;
    let phone_a = verified(&api, "sms", &phone, &phone).await;
    let phone_b = verified(&api, "sms", &phone, &phone).await;
    let (ip_a, ip_b) = (unique_ip(), unique_ip());
    let (a, b) = tokio::join!(
        api.post(
            "/v1/accounts",
            &ip_a,
            registration(&email_a, &phone, &token_a, &phone_a)
        ),
        api.post(
            "/v1/accounts",
            &ip_b,
            registration(&email_b, &phone, &token_b, &phone_b)
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let loser = if a.status == 409 { &a } else { &b };
    loser.assert_problem(409, "contact_already_registered");
}

// ------------------------------------------------------------------ login

async fn login_by_phone_and_email_forms(api: Api) {
    let c = sign_up(&api).await;
    let digits = &c.phone[2..];
    for form in [
        c.phone.clone(),
        format!("8{digits}"),
        format!(
            "+7 ({}) {}-{}-{}",
            &digits[..3],
            &digits[3..6],
            &digits[6..8],
            &digits[8..]
        ),
        c.email.to_uppercase(),
        format!("  {}  ", c.email),
    ] {
        let reply = login(&api, &unique_ip(), &form, PASSWORD, false).await;
        assert_eq!(reply.status, 201, "{form}: {}", reply.body);
        let token = reply.body["token"].as_str().unwrap_or_default();
        assert!(token.starts_with("st_") && token.len() >= 46, "{token}");
        assert_eq!(reply.body["token_type"], "Bearer");
        assert_eq!(sessions(&api, token).await.status, 200);
    }
    // The token is stored only as a keyed hash.
    let reply = login(&api, &unique_ip(), &c.email, PASSWORD, false).await;
    let token = reply.body["token"].as_str().unwrap_or_default();
    let id = reply.body["session_id"].as_str().unwrap_or_default();
    let item = api
        .item(&format!("SESSION#{id}"), "SESSION")
        .await
        .unwrap_or_else(|| panic!("session item missing"));
    assert!(!all_text(&item).contains(&token[3..]));
    assert_eq!(string_attr(&item, "account_id"), c.account_id);
}

async fn wrong_password_and_unknown_login_look_the_same(api: Api) {
    let c = sign_up(&api).await;
    let wrong = login(&api, &unique_ip(), &c.email, "Wrong-pass-123", false).await;
    let unknown = login(&api, &unique_ip(), &unique_email(), "Wrong-pass-123", false).await;
    let unknown_phone = login(&api, &unique_ip(), &unique_phone(), PASSWORD, false).await;
    wrong.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, unknown_phone.body);
    assert_eq!(wrong.status, unknown.status);
    assert_eq!(wrong.header("content-type"), unknown.header("content-type"));
}

async fn throttling_after_failures(api: Api) {
    let c = sign_up(&api).await;
    let unknown = unique_email();
    for who in [c.email.as_str(), unknown.as_str()] {
        for _ in 0..5 {
            login(&api, &unique_ip(), who, "Wrong-pass-123", false)
                .await
                .assert_problem(401, "invalid_credentials");
        }
        // Locked now, whether or not the account exists — even the right password.
        let locked = login(&api, &unique_ip(), who, PASSWORD, false).await;
        locked.assert_problem(429, "login_throttled");
        let retry = locked.retry_after();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    // The owner was told.
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter()
            .any(|m| m["subject"] == "Попытки входа в ваш аккаунт"),
        "{mail:?}"
    );
}

async fn foreign_computer_session_expires(api: Api) {
    let c = sign_up(&api).await;
    let reply = login(&api, &unique_ip(), &c.phone, PASSWORD, true).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = text(&reply.body["token"]);
    assert_eq!(sessions(&api, &token).await.status, 200);
    tokio::time::sleep(Duration::from_secs(FOREIGN_IDLE_SECS + 2)).await;
    let expired = sessions(&api, &token).await;
    assert_eq!(expired.status, 401, "{}", expired.body);
    // A normal session of the same account lives on.
    let normal = token_for(&api, &c).await;
    assert_eq!(sessions(&api, &normal).await.status, 200);
}

async fn listing_and_revoking_sessions(api: Api) {
    let c = sign_up(&api).await;
    let first = token_for(&api, &c).await;
    let second = token_for(&api, &c).await;
    let listed = sessions(&api, &first).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let list = listed.list("sessions");
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list.iter().filter(|s| s["current"] == true).count(), 1);
    assert!(list
        .iter()
        .all(|s| s["device"] == "e2e-tests/1.0" && s["ip"].is_string()));
    let other = list
        .iter()
        .find(|s| s["current"] == false)
        .and_then(|s| s["id"].as_str())
        .unwrap_or_default()
        .to_string();

    // Another citizen cannot revoke it.
    let stranger = sign_up(&api).await;
    let stranger_token = token_for(&api, &stranger).await;
    api.delete_as(&stranger_token, &format!("/v1/sessions/{other}"))
        .await
        .assert_problem(404, "session_not_found");
    assert_eq!(sessions(&api, &second).await.status, 200);

    let revoked = api
        .delete_as(&first, &format!("/v1/sessions/{other}"))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_eq!(sessions(&api, &second).await.status, 401);
    assert_eq!(sessions(&api, &first).await.status, 200);
    api.delete_as(&first, &format!("/v1/sessions/{other}"))
        .await
        .assert_problem(404, "session_not_found");
}

async fn logout(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let reply = api.delete_as(&token, "/v1/sessions/current").await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(sessions(&api, &token).await.status, 401);
}

async fn private_routes_need_a_valid_token(api: Api) {
    for path in ["/v1/sessions", "/v1/security-events"] {
        let none = api.call(Method::GET, path, &unique_ip(), None, None).await;
        assert_eq!(none.status, 401, "{path}: {}", none.body);
        for bad in [
            "st_forged0000000000000000000000000000000000000",
            "garbage",
            "vt_notasession",
        ] {
            let reply = api.get_as(bad, path).await;
            assert_eq!(reply.status, 401, "{path} with {bad}: {}", reply.body);
        }
    }
}

async fn security_log(api: Api) {
    let c = sign_up(&api).await;
    let ip = unique_ip();
    login(&api, &ip, &c.email, "Wrong-pass-123", false)
        .await
        .assert_problem(401, "invalid_credentials");
    let token = token_for(&api, &c).await;
    let other = token_for(&api, &c).await;
    api.delete_as(&other, "/v1/sessions/current").await;
    let reply = api.get_as(&token, "/v1/security-events").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let events = reply.list("events");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    for expected in [
        "account_created",
        "login_failed",
        "login_succeeded",
        "logout",
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected} missing from {kinds:?}"
        );
    }
    // Newest first, with the address the attempt came from.
    assert_eq!(kinds[0], "logout", "{kinds:?}");
    assert!(events
        .iter()
        .any(|e| e["type"] == "login_failed" && e["ip"] == ip.as_str()));
}

// ------------------------------------------------------------------ the account

async fn password_change_revokes_other_sessions(api: Api) {
    let c = sign_up(&api).await;
    let current = token_for(&api, &c).await;
    let other = token_for(&api, &c).await;
    let new_password = "Quartz-Lantern-42";

    api.put_as(
        &current,
        "/v1/account/password",
        json!({"password": "Not-my-pass-1", "new_password": new_password}),
    )
    .await
    .assert_problem(403, "wrong_password");
    let weak = api
        .put_as(
            &current,
            "/v1/account/password",
            json!({"password": PASSWORD, "new_password": "qwerty123"}),
        )
        .await;
    weak.assert_field_errors(&[("/new_password", "password_breached")]);

    let changed = api
        .put_as(
            &current,
            "/v1/account/password",
            json!({"password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_session(&api, &other, 401, "other session ended").await;
    assert_session(&api, &current, 200, "this one lives on").await;
    login(&api, &unique_ip(), &c.email, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");
    assert_logs_in(&api, &c.email, new_password).await;
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter().any(|m| m["subject"] == "Пароль изменён"),
        "{mail:?}"
    );

    // The security question changes with the password confirmed.
    let reply = api.put_as(&current, "/v1/account/security-question", json!({"password": new_password, "security_question": "Кличка первого питомца", "security_answer": "Шарик"}))
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let profile = api.get_as(&current, "/v1/account").await;
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert_eq!(profile.body["security_question"], "Кличка первого питомца");
    assert_eq!(profile.body["email"], c.email.as_str());
    assert!(profile.body.get("password_hash").is_none());
}

async fn start_recovery(api: &Api, login: &str) -> Reply {
    api.post("/v1/recovery", &unique_ip(), json!({ "login": login }))
        .await
}

async fn recovery_by_email_and_by_phone(api: Api) {
    for by_phone in [false, true] {
        let c = sign_up(&api).await;
        let session = token_for(&api, &c).await;
        let (login_as, contact) = if by_phone {
            (format!("8{}", &c.phone[2..]), c.phone.clone())
        } else {
            (c.email.to_uppercase(), c.email.clone())
        };
        let before = api.outbox(&contact).await.len();
        let started = start_recovery(&api, &login_as).await;
        assert_eq!(started.status, 202, "{}", started.body);
        let messages = api.outbox(&contact).await;
        assert_eq!(
            messages.len(),
            before + 1,
            "the code went to the confirmed contact"
        );
        let code = extract_code(messages[0]["text"].as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("no code in {}", messages[0]));
        let id = started.body["id"].as_str().unwrap_or_default();
        let verified = api.verify(id, &code).await;
        assert_eq!(verified.status, 200, "{}", verified.body);
        let token = verified.body["verification_token"]
            .as_str()
            .unwrap_or_default();
        let new_password = "Granite-Kettle-77";
        let body = |answer: &str| json!({"login": login_as, "verification_token": token, "security_answer": answer, "new_password": new_password});

        // Without a live code no answer is even looked at.
        let forged = api
            .post(
                "/v1/recovery/complete",
                &unique_ip(),
                json!({"login": login_as, "verification_token": "vt_forged", "security_answer": "Иванова", "new_password": new_password}),
            )
            .await;
        forged.assert_field_errors(&[("/verification_token", "verification_token_invalid")]);

        let wrong = api
            .post("/v1/recovery/complete", &unique_ip(), body("Иванова"))
            .await;
        wrong.assert_field_errors(&[("/security_answer", "wrong_security_answer")]);

        // Case, spaces and ё/е do not matter in the answer.
        let done = api
            .post("/v1/recovery/complete", &unique_ip(), body("  елкина "))
            .await;
        assert_eq!(done.status, 204, "{}", done.body);
        assert_session(&api, &session, 401, "all sessions ended").await;
        assert_logs_in(&api, &c.email, new_password).await;
        // The token was single use.
        let again = api
            .post("/v1/recovery/complete", &unique_ip(), body("Ёлкина"))
            .await;
        again.assert_field_errors(&[("/verification_token", "verification_token_invalid")]);
    }
}

async fn recovery_reveals_nothing_about_unknown_logins(api: Api) {
    let c = sign_up(&api).await;
    let unknown = unique_email();
    let known = start_recovery(&api, &c.email).await;
    let stranger = start_recovery(&api, &unknown).await;
    assert_eq!(known.status, 202);
    assert_eq!(stranger.status, 202, "{}", stranger.body);
    assert_eq!(known.member_names(), stranger.member_names());
    assert!(
        api.outbox(&unknown).await.is_empty(),
        "nothing is sent to an unknown login"
    );
    // The id of the unknown one behaves like a real code.
    let id = stranger.body["id"].as_str().unwrap_or_default();
    api.verify(id, "000000")
        .await
        .assert_problem(422, "code_mismatch");
    // Malformed logins are refused for everyone alike.
    start_recovery(&api, "+7 495 123-45-67")
        .await
        .assert_problem(422, "validation_failed");
}

async fn contact_change(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;

    // E-mail.
    let new_email = unique_email();
    let vt = verified_for(&api, "email", &new_email, &new_email, "contact_change").await;
    let wrong_purpose = verified(&api, "email", &new_email, &new_email).await;
    change_contact(&api, &token, "email", &new_email, &wrong_purpose)
        .await
        .assert_problem(422, "validation_failed");
    let reply = change_contact(&api, &token, "email", &new_email, &vt).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let old_mail = api.outbox(&c.email).await;
    assert!(
        old_mail
            .iter()
            .any(|m| m["subject"] == "Контактные данные изменены"),
        "{old_mail:?}"
    );
    assert_logs_in(&api, &new_email, PASSWORD).await;
    login(&api, &unique_ip(), &c.email, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");

    // Phone.
    let new_phone = unique_phone();
    let vt = verified_for(&api, "sms", &new_phone, &new_phone, "contact_change").await;
    let reply = change_contact(&api, &token, "phone", &new_phone, &vt).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let old_sms = api.outbox(&c.phone).await;
    assert!(
        old_sms[0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("изменён")),
        "{old_sms:?}"
    );
    assert_logs_in(&api, &new_phone, PASSWORD).await;

    // Someone else's contact stays theirs.
    let other = sign_up(&api).await;
    let vt = verified_for(&api, "email", &other.email, &other.email, "contact_change").await;
    change_contact(&api, &token, "email", &other.email, &vt)
        .await
        .assert_problem(409, "contact_already_registered");
    // And the old e-mail is free again: a new account may take it.
    let phone = unique_phone();
    let email_token = verified(&api, "email", &c.email, &c.email).await;
    let phone_token = verified(&api, "sms", &phone, &phone).await;
    let reply = register(&api, &c.email, &phone, &email_token, &phone_token).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

async fn account_deletion(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let other = token_for(&api, &c).await;
    api.call(
        Method::DELETE,
        "/v1/account",
        &unique_ip(),
        Some(&token),
        Some(json!({"password": "Wrong-pass-123"})),
    )
    .await
    .assert_problem(403, "wrong_password");
    let reply = api
        .call(
            Method::DELETE,
            "/v1/account",
            &unique_ip(),
            Some(&token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(sessions(&api, &token).await.status, 401);
    assert_eq!(sessions(&api, &other).await.status, 401);
    login(&api, &unique_ip(), &c.email, PASSWORD, false)
        .await
        .assert_problem(401, "invalid_credentials");
    // Nothing of the account is left.
    assert!(api
        .item(&format!("ACCOUNT#{}", c.account_id), "ACCOUNT")
        .await
        .is_none());
    let prefix = format!("ACCOUNT#{}", c.account_id);
    assert!(
        api.items_with_prefix(&prefix).await.is_empty(),
        "security log removed"
    );
    let sessions_left = api.items_with_prefix("SESSION#").await;
    assert!(sessions_left
        .iter()
        .all(|s| string_attr(s, "account_id") != c.account_id));
    // Its contacts can register again.
    let email_token = verified(&api, "email", &c.email, &c.email).await;
    let phone_token = verified(&api, "sms", &c.phone, &c.phone).await;
    let again = register(&api, &c.email, &c.phone, &email_token, &phone_token).await;
    assert_eq!(again.status, 201, "{}", again.body);
}

// ------------------------------------------------------------------ two-step login and alerts

async fn settings(api: &Api, token: &str, body: Value) -> Reply {
    api.put_as(token, "/v1/account/security-settings", body)
        .await
}

async fn security_settings_need_the_password(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;

    let reply = settings(&api, &token, json!({"two_step_login": true})).await;
    reply.assert_problem(422, "validation_failed");
    assert!(reply
        .field_errors()
        .contains(&("/password".into(), "required".into())));

    settings(
        &api,
        &token,
        json!({"password": "Wrong-pass-123", "two_step_login": true}),
    )
    .await
    .assert_problem(403, "wrong_password");

    let reply = settings(&api, &token, json!({"password": PASSWORD})).await;
    reply.assert_field_errors(&[("/two_step_login", "nothing_to_change")]);

    let reply = settings(
        &api,
        &token,
        json!({"password": PASSWORD, "two_step_login": "yes", "colour": "red"}),
    )
    .await;
    reply.assert_problem(422, "validation_failed");
    reply.assert_invalid_field("/two_step_login", "invalid_type");
    reply.assert_invalid_field("/colour", "unknown_field");

    // Nothing above changed the account.
    let account = api.get_as(&token, "/v1/account").await;
    assert_eq!(account.status, 200, "{}", account.body);
    assert_eq!(account.body["two_step_login"], false);
    assert_eq!(account.body["new_device_alerts"], true);

    // Without a session there is no changing anything: the authorizer refuses it
    // before the function runs.
    let reply = api
        .call(
            Method::PUT,
            "/v1/account/security-settings",
            &unique_ip(),
            None,
            Some(json!({"password": PASSWORD, "two_step_login": true})),
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.body);
}

async fn two_step_login(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let reply = set_two_step(&api, &token, true).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"two_step_login": true, "new_device_alerts": true})
    );
    let account = api
        .item(&format!("ACCOUNT#{}", c.account_id), "ACCOUNT")
        .await
        .unwrap_or_else(|| panic!("account item missing"));
    assert!(matches!(
        account.get("two_step_login"),
        Some(aws_sdk_dynamodb::types::AttributeValue::Bool(true))
    ));

    // A wrong password still gets the plain refusal, and no SMS goes out.
    let sms_before = api.outbox(&c.phone).await.len();
    login(&api, &unique_ip(), &c.email, "Wrong-pass-123", false)
        .await
        .assert_problem(401, "invalid_credentials");
    assert_eq!(api.outbox(&c.phone).await.len(), sms_before);

    // The right password: no session yet, a code by SMS instead.
    let first = login(&api, &unique_ip(), &c.email, PASSWORD, true).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.body["two_step_required"], true);
    assert!(first.body.get("token").is_none(), "{}", first.body);
    let challenge = text(&first.body["challenge_token"]);
    assert!(challenge.starts_with("lc_"), "{}", first.body);
    let sms = api.outbox(&c.phone).await;
    assert_eq!(sms.len(), sms_before + 1);
    assert_eq!(sms[0]["channel"], "sms");
    let code = api.code_sent_to(&c.phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    let complete = |challenge: String, code: String| {
        let api = api.clone();
        async move {
            api.post(
                "/v1/sessions/two-step",
                &unique_ip(),
                json!({"challenge_token": challenge, "code": code}),
            )
            .await
        }
    };
    let reply = complete(challenge.clone(), wrong.to_string()).await;
    reply.assert_problem(422, "code_mismatch");
    complete("lc_not-a-challenge".into(), code.clone())
        .await
        .assert_problem(401, "two_step_challenge_invalid");
    // maxLength 128 counts characters: 128 Cyrillic ones (253 bytes) are a well-formed
    // body naming no challenge, and one more is a field error.
    let longest = format!("lc_{}", "ж".repeat(125));
    complete(longest, code.clone())
        .await
        .assert_problem(401, "two_step_challenge_invalid");
    let too_long = complete(format!("lc_{}", "ж".repeat(126)), code.clone()).await;
    too_long.assert_field_errors(&[("/challenge_token", "invalid_challenge_token")]);
    let reply = api
        .post(
            "/v1/sessions/two-step",
            &unique_ip(),
            json!({"challenge_token": challenge}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    assert!(reply
        .field_errors()
        .contains(&("/code".into(), "required".into())));

    let done = complete(challenge.clone(), code.clone()).await;
    assert_eq!(done.status, 201, "{}", done.body);
    assert_eq!(done.body["token_type"], "Bearer");
    let session_token = text(&done.body["token"]);
    let listed = sessions(&api, &session_token).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let current: Vec<&Value> = listed.body["sessions"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["current"] == true).collect())
        .unwrap_or_default();
    assert_eq!(current.len(), 1, "{}", listed.body);
    assert_eq!(
        current[0]["foreign_computer"], true,
        "the flag survives the second step"
    );

    // The challenge is single-use.
    complete(challenge, code)
        .await
        .assert_problem(401, "two_step_challenge_invalid");

    // The log tells the story.
    let events = api.get_as(&session_token, "/v1/security-events").await;
    let kinds: Vec<&str> = events.body["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["type"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds.first(), Some(&"login_succeeded"), "{kinds:?}");
    assert!(kinds.contains(&"two_step_enabled"), "{kinds:?}");

    // Turned off again, the password alone signs in.
    let reply = set_two_step(&api, &session_token, false).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let plain = login(&api, &unique_ip(), &c.email, PASSWORD, false).await;
    assert_eq!(plain.status, 201, "{}", plain.body);
}

async fn login_from(api: &Api, device: &str, login: &str) -> Reply {
    api.call_from_device(
        Method::POST,
        "/v1/sessions",
        "203.0.113.77",
        device,
        None,
        Some(json!({"login": login, "password": PASSWORD})),
    )
    .await
}

async fn new_device_alerts(api: Api) {
    const SUBJECT: &str = "Вход с нового устройства";
    const PHONE_APP: &str = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36";
    let c = sign_up(&api).await;
    let alerts = |api: Api, email: String| async move {
        api.outbox(&email)
            .await
            .into_iter()
            .filter(|m| m["subject"] == SUBJECT)
            .collect::<Vec<Value>>()
    };

    // The first login ever has nothing to compare with; the same device again is known.
    let token = token_for(&api, &c).await;
    token_for(&api, &c).await;
    assert!(alerts(api.clone(), c.email.clone()).await.is_empty());

    // Another device: the owner hears of it, with where and what.
    let reply = login_from(&api, PHONE_APP, &c.phone).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let sent = alerts(api.clone(), c.email.clone()).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let text = sent[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("203.0.113.77"), "{text}");
    assert!(text.contains("Android 14"), "{text}");
    assert!(text.contains("(МСК)"), "{text}");

    // Now known: no second letter.
    let reply = login_from(&api, PHONE_APP, &c.email).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(alerts(api.clone(), c.email.clone()).await.len(), 1);

    // Turned off: a third device passes quietly.
    let reply = settings(
        &api,
        &token,
        json!({"password": PASSWORD, "new_device_alerts": false}),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({"two_step_login": false, "new_device_alerts": false})
    );
    let reply = login_from(&api, "Tablet/2.0", &c.email).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(alerts(api.clone(), c.email.clone()).await.len(), 1);
}
