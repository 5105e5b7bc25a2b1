//! End-to-end tests of the profile and of document verification: PATCHes over the local
//! gateway, registry checks run by the verification worker off the SQS queue (the
//! gateway polls it as Lambda would), and what landed in DynamoDB and the outbox.

mod support;

#[path = "profile/documents.rs"]
mod documents;
#[path = "profile/signature.rs"]
mod signature;

use documents::*;
use signature::*;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

/// A failed check comes back this fast on the test stack (the queue's visibility
/// timeout), so retries and the dead-letter queue are reached in seconds.
const RETRY_SECS: u64 = 2;

fn main() {
    run_suite(async {
        let params = [("VerificationRetrySeconds", RETRY_SECS.to_string())];
        let (stack, api) = open_stack(&quick_sandbox(&[]), &params, 4).await;
        let scenarios = vec![
            scenario!(profile_starts_from_registration),
            scenario!(every_document_is_validated),
            scenario!(patches_need_the_version_they_read),
            scenario!(concurrent_patches_one_wins),
            scenario!(verified_documents_lift_the_level_and_snils_logs_in),
            scenario!(rejected_documents_are_cleared_with_reasons),
            scenario!(a_snils_logs_in_only_for_its_verified_owner),
            scenario!(registry_timeout_is_retried),
            scenario!(poison_message_goes_to_the_dead_letter_queue),
            scenario!(redelivered_and_stale_jobs_change_nothing),
            scenario!(profiles_are_private),
            scenario!(children_are_shared_by_both_parents),
            scenario!(vehicles_belong_to_their_owner),
            scenario!(operator_confirms_in_person),
            scenario!(code_by_post_confirms),
            scenario!(an_e_signature_confirms_the_account),
            scenario!(a_bank_confirms_the_account),
            scenario!(other_documents_are_validated_and_kept),
            scenario!(an_international_passport_is_checked_by_the_interior_ministry),
            scenario!(an_expiring_passport_is_reminded_once_per_threshold),
        ];
        run_then_stop(stack, &api, scenarios, true).await
    })
}

// ------------------------------------------------------------------ helpers

/// A personal INN with valid check digits starting with `prefix`.
fn inn(prefix: &str) -> String {
    let unique = unique_phone();
    let tail = &unique[unique.len() - (10 - prefix.len())..];
    let mut digits: Vec<u32> = format!("{prefix}{tail}")
        .bytes()
        .map(|b| u32::from(b - b'0'))
        .collect();
    for weights in [
        &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8][..],
        &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8][..],
    ] {
        let sum: u32 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
        digits.push(sum % 11 % 10);
    }
    digits.iter().map(|d| d.to_string()).collect()
}

fn outcome_letters(mail: &[Value]) -> Vec<&Value> {
    mail.iter()
        .filter(|m| m["subject"] == "Результат проверки данных профиля")
        .collect()
}

// ------------------------------------------------------------------ scenarios

async fn profile_starts_from_registration(api: Api) {
    let (c, token) = citizen(&api).await;
    let reply = profile(&api, &token).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some("\"0\""));
    let p = &reply.body;
    assert_eq!(p["version"], 0);
    assert_eq!(p["level"], "simplified");
    assert_eq!(p["personal"]["last_name"], "Иванов");
    assert_eq!(p["personal"]["middle_name"], "Сергеевич");
    assert_eq!(p["contacts"]["email"], c.email.as_str());
    assert_eq!(p["completeness"], 10, "only the name is filled");
    assert_eq!(status(p, "name"), "unverified");

    // Fields without a registry check are saved as given.
    let reply = patch_new(
        &api,
        &token,
        json!({
            "personal": {"birthplace": "г. Москва", "citizenship": "rus"},
            "addresses": {"registration": "г. Москва, ул. Тверская, д. 1, кв. 2",
                          "actual": "г. Москва, ул. Тверская, д. 1, кв. 2"},
            "documents": {"oms_policy": "7700 0000 0000 0001",
                          "driver_licence": {"number": "99 12 345678", "issue_date": "2015-04-01"}},
        }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let p = &reply.body;
    assert_eq!(p["version"], 1);
    assert_eq!(p["personal"]["citizenship"], "RUS");
    assert_eq!(p["documents"]["oms_policy"], "7700000000000001");
    assert_eq!(p["documents"]["driver_licence"]["number"], "99 12 345678");
    assert_eq!(p["completeness"], 40);

    // What landed: one profile item, version 1, the document inside.
    let item = api
        .item(&format!("ACCOUNT#{}", c.account_id), "PROFILE")
        .await
        .unwrap_or_else(|| panic!("profile item missing"));
    assert_eq!(number_attr(&item, "version"), 1);
    let doc: Value = serde_json::from_str(&string_attr(&item, "doc")).unwrap_or_default();
    assert_eq!(
        doc["addresses"]["actual"],
        "г. Москва, ул. Тверская, д. 1, кв. 2"
    );

    // null clears a field.
    let reply = patch(
        &api,
        &token,
        Some("\"1\""),
        json!({"documents": {"driver_licence": null}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["documents"]["driver_licence"], Value::Null);
    assert_eq!(reply.body["completeness"], 35);
}

async fn every_document_is_validated(api: Api) {
    let (c, token) = citizen(&api).await;
    let body = json!({
        "personal": {
            "last_name": "Ivanov",
            "first_name": "",
            "birth_date": "1985-02-30",
            "gender": "m",
            "citizenship": "Россия",
            "nickname": "x",
        },
        "documents": {
            "snils": "112-233-445 96",
            "inn": "500100732258",
            "oms_policy": "12345",
            "passport": {
                "series": "45 1",
                "number": "12345",
                "issue_date": "2099-01-01",
                "department_code": "770001x",
                "issued_by": "",
            },
            "driver_licence": {"number": "99 12 34567", "issue_date": "2015-13-01"},
        },
        "addresses": "Москва",
    });
    let reply = patch_new(&api, &token, body).await;
    reply.assert_fields_named(&[
        "/personal/last_name",
        "/personal/first_name",
        "/personal/birth_date",
        "/personal/gender",
        "/personal/citizenship",
        "/personal/nickname",
        "/documents/snils",
        "/documents/inn",
        "/documents/oms_policy",
        "/documents/passport/series",
        "/documents/passport/number",
        "/documents/passport/department_code",
        "/documents/passport/issued_by",
        "/documents/driver_licence/number",
        "/documents/driver_licence/issue_date",
        "/addresses",
    ]);
    let errors = reply.field_errors();
    let code_of = |path: &str| {
        errors
            .iter()
            .find(|(f, _)| f == path)
            .map(|(_, c)| c.clone())
            .unwrap_or_default()
    };
    assert_eq!(code_of("/documents/snils"), "snils_checksum");
    assert_eq!(code_of("/documents/inn"), "inn_checksum");
    assert_eq!(code_of("/personal/nickname"), "unknown_field");

    // A passport issued before the 14th birthday, and one dated in the future.
    let early = json!({
        "personal": {"birth_date": "2000-05-20"},
        "documents": {"passport": {"series": "4510", "number": "123456",
            "issue_date": "2014-05-19", "department_code": "770-001", "issued_by": "ОВД"}},
    });
    let reply = patch_new(&api, &token, early).await;
    reply.assert_field_errors(&[("/documents/passport/issue_date", "passport_issue_before_14")]);
    let reply = patch_new(&api, &token, json!({})).await;
    reply.assert_problem(422, "validation_failed");

    // Nothing was written by any of it.
    assert!(api
        .item(&format!("ACCOUNT#{}", c.account_id), "PROFILE")
        .await
        .is_none());
    assert_eq!(profile(&api, &token).await.body["version"], 0);
}

async fn patches_need_the_version_they_read(api: Api) {
    let (_, token) = citizen(&api).await;
    let body = json!({"personal": {"birthplace": "г. Тверь"}});
    patch(&api, &token, None, body.clone())
        .await
        .assert_problem(428, "precondition_required");
    patch(&api, &token, Some("\"7\""), body.clone())
        .await
        .assert_problem(412, "version_mismatch");
    patch(&api, &token, Some("garbage"), body.clone())
        .await
        .assert_problem(412, "version_mismatch");
    let reply = patch(&api, &token, Some("W/\"0\""), body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn concurrent_patches_one_wins(api: Api) {
    let (_, token) = citizen(&api).await;
    let first = patch_new(
        &api,
        &token,
        json!({"personal": {"birthplace": "г. Тверь"}}),
    );
    let second = patch_new(
        &api,
        &token,
        json!({"personal": {"birthplace": "г. Казань"}}),
    );
    let (a, b) = tokio::join!(first, second);
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", a.body, b.body);
    let winner = if a.status == 200 { &a } else { &b };
    let now = profile(&api, &token).await.body;
    assert_eq!(now["version"], 1);
    assert_eq!(
        now["personal"]["birthplace"],
        winner.body["personal"]["birthplace"]
    );
}

async fn verified_documents_lift_the_level_and_snils_logs_in(api: Api) {
    let (c, token) = citizen(&api).await;
    let snils = snils_of("112");
    let reply = patch_new(&api, &token, verifiable(&snils, "123456")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for field in ["name", "birth_date", "gender", "snils", "passport"] {
        assert_eq!(
            status(&reply.body, field),
            "pending",
            "{field}: {}",
            reply.body
        );
    }

    let done = wait_for(&api, &token, "verification", |p| {
        ["name", "birth_date", "gender", "snils", "passport"]
            .iter()
            .all(|f| status(p, f) == "verified")
    })
    .await;
    assert_eq!(done["level"], "standard", "{done}");
    assert_eq!(
        done["verification"]["snils"]["source"],
        "pension_fund_sandbox"
    );
    assert!(done["verification"]["passport"]["at"].is_string());

    // One letter for the submission, whatever the number of checks in it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mail = api.outbox(&c.email).await;
    let letters = outcome_letters(&mail);
    assert_eq!(letters.len(), 1, "{mail:?}");
    let text = letters[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("СНИЛС: подтверждён"), "{text}");
    assert!(text.contains("стандартная"), "{text}");

    // The account item carries the level; the security log the transition.
    let account = api
        .item(&format!("ACCOUNT#{}", c.account_id), "ACCOUNT")
        .await
        .unwrap_or_else(|| panic!("account missing"));
    assert_eq!(string_attr(&account, "level"), "standard");
    let events = api.get_as(&token, "/v1/security-events").await;
    assert!(
        events.body.to_string().contains("level_standard"),
        "{}",
        events.body
    );

    // The SNILS is a login now, with or without separators.
    let formatted = format!(
        "{}-{}-{} {}",
        &snils[0..3],
        &snils[3..6],
        &snils[6..9],
        &snils[9..]
    );
    for form in [snils.as_str(), formatted.as_str()] {
        let reply = login(&api, &unique_ip(), form, PASSWORD, false).await;
        assert_eq!(reply.status, 201, "{form}: {}", reply.body);
    }

    // And a way back in: recovery by SNILS sends the code to the confirmed phone, while an
    // unknown SNILS gets the same answer and sends nothing.
    let sms_before = api.outbox(&c.phone).await.len();
    let started = api
        .post("/v1/recovery", &unique_ip(), json!({"login": formatted}))
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    assert_eq!(api.outbox(&c.phone).await.len(), sms_before + 1);
    let unknown = api
        .post(
            "/v1/recovery",
            &unique_ip(),
            json!({"login": snils_of("567")}),
        )
        .await;
    assert_eq!(unknown.status, 202, "{}", unknown.body);
    assert_eq!(unknown.member_names(), started.member_names());
    assert_eq!(api.outbox(&c.phone).await.len(), sms_before + 1);

    // An edit of verified data drops the level until the checks pass again. It needs a
    // second factor in the session (the access matrix): a step-up code first.
    step_up(&api, &token, &c.phone).await;
    let version = format!("\"{}\"", done["version"]);
    let edited = patch(
        &api,
        &token,
        Some(&version),
        json!({"personal": {"middle_name": "Сергеевич-Оглы"}}),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["level"], "simplified");
    assert_eq!(status(&edited.body, "name"), "pending");
    let again = wait_for(&api, &token, "re-verification", |p| {
        p["level"] == "standard"
    })
    .await;
    assert_eq!(status(&again, "name"), "verified");
}

async fn rejected_documents_are_cleared_with_reasons(api: Api) {
    let (c, token) = citizen(&api).await;
    let mismatching = snils_of("999");
    let reply = patch_new(&api, &token, verifiable(&mismatching, "998001")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let done = wait_for(&api, &token, "rejection", |p| {
        status(p, "snils") == "rejected" && status(p, "passport") == "rejected"
    })
    .await;
    assert_eq!(done["documents"]["snils"], Value::Null, "{done}");
    assert_eq!(done["documents"]["passport"], Value::Null, "{done}");
    let reason = done["verification"]["snils"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("не совпадают"), "{reason}");
    let reason = done["verification"]["passport"]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(reason.contains("не найден"), "{reason}");
    assert_eq!(done["level"], "simplified");
    assert_ne!(status(&done, "name"), "pending", "{done}");

    // A rejected SNILS is no login, and another account may claim it now.
    let reply = login(&api, &unique_ip(), &mismatching, PASSWORD, false).await;
    reply.assert_problem(401, "invalid_credentials");
    let (_, other) = citizen(&api).await;
    let reply = patch_new(&api, &other, json!({"documents": {"snils": mismatching}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mail = api.outbox(&c.email).await;
    let letters = outcome_letters(&mail);
    assert_eq!(letters.len(), 1, "{mail:?}");
    assert!(letters[0]["text"]
        .as_str()
        .unwrap_or_default()
        .contains("введите их заново"));
}

async fn a_snils_logs_in_only_for_its_verified_owner(api: Api) {
    let (first_c, first) = citizen(&api).await;
    let (second_c, second) = citizen(&api).await;
    let taken = snils_of("234");
    let verified = json!({"personal": {"birth_date": "1985-03-12", "gender": "male"},
                          "documents": {"snils": taken}});
    let reply = patch_new(&api, &first, verified.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(&api, &first, "the SNILS check", |p| {
        status(p, "snils") == "verified"
    })
    .await;
    // The second account saving it is answered as for any SNILS; the check then rejects
    // it with the registry's wording, and the login stays the first account's.
    let reply = patch_new(&api, &second, verified).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(status(&reply.body, "snils"), "pending");
    let done = wait_for(&api, &second, "the SNILS check", |p| {
        status(p, "snils") == "rejected"
    })
    .await;
    assert_eq!(done["documents"]["snils"], Value::Null, "{done}");
    let as_first = login(&api, &unique_ip(), &taken, PASSWORD, false).await;
    assert_eq!(as_first.status, 201, "{}", as_first.body);
    let token = as_first.body["token"].as_str().unwrap_or_default();
    let me = profile(&api, token).await;
    assert_eq!(
        me.body["contacts"]["email"],
        first_c.email.as_str(),
        "{}",
        me.body
    );
    assert_ne!(me.body["contacts"]["email"], second_c.email.as_str());
}

async fn registry_timeout_is_retried(api: Api) {
    let (_, token) = citizen(&api).await;
    let started = Instant::now();
    let reply = patch_new(
        &api,
        &token,
        json!({"personal": {"birth_date": "1985-03-12"}, "documents": {"inn": inn("997")}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(status(&reply.body, "inn"), "pending");
    let done = wait_for(&api, &token, "the third attempt", |p| {
        status(p, "inn") == "verified"
    })
    .await;
    assert_eq!(done["verification"]["inn"]["source"], "tax_service_sandbox");
    // Two timeouts, each waited out before the next delivery.
    assert!(
        started.elapsed() >= Duration::from_secs(2 * RETRY_SECS),
        "verified after {:?}",
        started.elapsed()
    );
}

async fn poison_message_goes_to_the_dead_letter_queue(api: Api) {
    let queue = api.queue_url("-verification").await;
    let dead = api.queue_url("-verification-dlq").await;
    let (_, token) = citizen(&api).await;
    // A good job in the same batch as an unreadable one: it goes through regardless.
    let poison = format!("not a job {}", unique_ip());
    api.enqueue(&queue, &poison).await;
    let reply = patch_new(
        &api,
        &token,
        json!({"personal": {"birth_date": "1985-03-12"}, "documents": {"inn": inn("770")}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(&api, &token, "the good job", |p| {
        status(p, "inn") == "verified"
    })
    .await;

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let messages = api.receive(&dead, 0).await;
        if messages.iter().any(|m| m.body() == Some(poison.as_str())) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poison never reached the DLQ"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn redelivered_and_stale_jobs_change_nothing(api: Api) {
    let queue = api.queue_url("-verification").await;
    let (c, token) = citizen(&api).await;
    let first = snils_of("345");
    let reply = patch_new(
        &api,
        &token,
        json!({"personal": {"birth_date": "1985-03-12", "gender": "female"},
               "documents": {"snils": first}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(&api, &token, "first check", |p| {
        status(p, "snils") == "verified"
    })
    .await;

    // The job as the queue carried it, from the submission recorded in the document.
    let doc_of = |api: Api, account: String| async move {
        let item = api
            .item(&format!("ACCOUNT#{account}"), "PROFILE")
            .await
            .unwrap_or_else(|| panic!("profile item missing"));
        let doc: Value = serde_json::from_str(&string_attr(&item, "doc")).unwrap_or_default();
        (number_attr(&item, "version"), doc)
    };
    let (version, doc) = doc_of(api.clone(), c.account_id.clone()).await;
    let old_job = json!({
        "account_id": c.account_id,
        "check": "snils",
        "submission": doc["statuses"]["snils"]["submission"],
        "version": version - 1,
    });

    // Delivered again: already decided, nothing changes and no second letter.
    api.enqueue(&queue, old_job.to_string()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(doc_of(api.clone(), c.account_id.clone()).await.0, version);
    assert_eq!(outcome_letters(&api.outbox(&c.email).await).len(), 1);

    // A newer edit: the old job arriving late must not decide the new SNILS. Changing a
    // verified SNILS needs a second factor (the access matrix): a step-up code first.
    step_up(&api, &token, &c.phone).await;
    let second = snils_of("456");
    let reply = patch(
        &api,
        &token,
        Some(&format!("\"{version}\"")),
        json!({"documents": {"snils": second}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(&api, &token, "second check", |p| {
        status(p, "snils") == "verified"
    })
    .await;
    let (version, doc) = doc_of(api.clone(), c.account_id.clone()).await;
    api.enqueue(&queue, old_job.to_string()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, doc_after) = doc_of(api.clone(), c.account_id.clone()).await;
    assert_eq!(after, version, "the stale job wrote");
    assert_eq!(doc_after, doc);
    assert_eq!(doc_after["documents"]["snils"], second.as_str());
}

async fn profiles_are_private(api: Api) {
    let (a, token_a) = citizen(&api).await;
    let (_, token_b) = citizen(&api).await;
    let reply = patch_new(
        &api,
        &token_a,
        json!({"addresses": {"actual": "г. Москва, ул. Арбат, д. 10"}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // B sees B's own profile, never A's, whatever B sends.
    let b = profile(&api, &token_b).await;
    assert_eq!(b.status, 200);
    assert_eq!(b.body["addresses"]["actual"], Value::Null);
    assert_ne!(b.body["contacts"]["email"], a.email.as_str());
    let reply = patch(
        &api,
        &token_b,
        Some("\"1\""),
        json!({"account_id": a.account_id, "addresses": {"actual": "чужой"}}),
    )
    .await;
    reply.assert_problem(422, "validation_failed");
    let a_now = profile(&api, &token_a).await.body;
    assert_eq!(a_now["addresses"]["actual"], "г. Москва, ул. Арбат, д. 10");
    // No token, no profile.
    let reply = api
        .call(Method::GET, "/v1/profile", &unique_ip(), None, None)
        .await;
    assert_eq!(reply.status, 401);
}

// ------------------------------------------------------------------ children and vehicles

async fn patch_at(api: &Api, path: &str, token: &str, version: &str, body: Value) -> Reply {
    api.json_request(Method::PATCH, path, token, &body)
        .header("if-match", version)
        .send()
        .await
}

async fn children_are_shared_by_both_parents(api: Api) {
    // The parents are the ones the sandbox birth record of the certificate names.
    let number = certificate_number();
    let (mother_c, mother) = parent_on_record(&api, &number, OnBirthRecord::Mother).await;
    let (_, father) = parent_on_record(&api, &number, OnBirthRecord::Father).await;
    // Standard, as adding a child needs (the access matrix): the registry must answer.
    let (_, stranger) = standard_payer(&api).await;
    let certificate = format!("IV-МЮ {number}");
    let child = json!({
        "last_name": "Иванова",
        "first_name": "Мария",
        "middle_name": "Петровна",
        "birth_date": "2018-04-02",
        "gender": "female",
        "birth_certificate": certificate,
        "snils": birth_record_snils(&number, OnBirthRecord::Child),
    });
    let path = "/v1/profile/children";

    // Field errors first: Latin letters in the series, a future birth date.
    let mut bad = child.clone();
    bad["birth_certificate"] = json!("IV-MЮ 123456");
    bad["birth_date"] = json!("2999-01-01");
    let reply = api.post_as(&mother, path, bad).await;
    reply.assert_problem(422, "validation_failed");
    reply.assert_invalid_field(
        "/birth_certificate",
        "birth_certificate_series_latin_letters",
    );
    reply.assert_invalid_field("/birth_date", "date_in_future");

    // Added pending: the answer is the same whatever the registry will say.
    let added = api.post_as(&mother, path, child.clone()).await;
    assert_eq!(added.status, 202, "{}", added.body);
    assert_eq!(added.body["status"], "pending");
    assert_eq!(added.header("etag"), None);
    let id = added.id();
    assert!(!id.contains(&number), "the id gives the certificate away");
    api.post_as(&mother, path, child.clone())
        .await
        .assert_problem(409, "child_already_added");
    let decided = wait_for_child(&api, &mother, &id).await;
    assert_eq!(decided["status"], "verified", "{decided}");
    assert_eq!(decided["snils_status"], "verified", "{decided}");
    assert_eq!(decided["shared_with_another_parent"], false);
    await_letter(&api, &mother_c.email, "Родство подтверждено").await;

    // The father names the child his own way: he joins the record as the mother wrote it.
    let mut other = child.clone();
    other["first_name"] = json!("Маша");
    let linked = api.post_as(&father, path, other).await;
    assert_eq!(linked.status, 202, "{}", linked.body);
    assert_eq!(linked.body["id"], id.as_str());
    let joined = wait_for_child(&api, &father, &id).await;
    assert_eq!(joined["status"], "verified", "{joined}");
    assert_eq!(joined["first_name"], "Мария", "{joined}");
    assert_eq!(joined["shared_with_another_parent"], true);
    let list = api.get_as(&father, path).await;
    assert_eq!(
        list.body["children"].as_array().map(Vec::len),
        Some(1),
        "{}",
        list.body
    );

    // A stranger the record does not name is told no, and never sees the record.
    let tried = api.post_as(&stranger, path, child.clone()).await;
    assert_eq!(tried.status, 202, "{}", tried.body);
    let refused = wait_for_child(&api, &stranger, &id).await;
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert!(refused.get("version").is_none(), "{refused}");
    api.delete_as(&stranger, &format!("{path}/{id}")).await;

    // One record: the mother's edit is what the father sees; a stale edit is refused.
    let one = format!("{path}/{id}");
    let edited = patch_at(
        &api,
        &one,
        &mother,
        "\"2\"",
        json!({"oms_policy": "7700000000000002"}),
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["version"], 3);
    let seen = api.get_as(&father, &one).await;
    assert_eq!(seen.body["oms_policy"], "7700000000000002");
    patch_at(&api, &one, &father, "\"2\"", json!({"gender": "female"}))
        .await
        .assert_problem(412, "version_mismatch");
    let reply = patch_at(
        &api,
        &one,
        &father,
        "\"3\"",
        json!({"birth_certificate": "I-АБ 000001"}),
    )
    .await;
    reply.assert_problem(422, "validation_failed");
    assert!(reply
        .field_errors()
        .contains(&("/birth_certificate".into(), "immutable".into())));

    // Nobody else reads or writes it, and learns nothing of it.
    api.get_as(&stranger, &one)
        .await
        .assert_problem(404, "child_not_found");
    patch_at(&api, &one, &stranger, "\"3\"", json!({"gender": "male"}))
        .await
        .assert_problem(404, "child_not_found");
    api.delete_as(&stranger, &one)
        .await
        .assert_problem(404, "child_not_found");

    // Each parent lets go on their own; the record goes with the last one.
    assert_eq!(api.delete_as(&mother, &one).await.status, 204);
    let mine = api.get_as(&mother, path).await;
    assert_eq!(mine.body["children"], json!([]));
    let theirs = api.get_as(&father, &one).await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert_eq!(theirs.body["shared_with_another_parent"], false);
    assert!(api.item(&format!("CHILD#{id}"), "CHILD").await.is_some());
    assert_eq!(api.delete_as(&father, &one).await.status, 204);
    assert!(api.item(&format!("CHILD#{id}"), "CHILD").await.is_none());
}

/// Polls the outbox of `to` until a message mentions `text`, for at most a minute.
async fn await_letter(api: &Api, to: &str, text: &str) {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !api
        .outbox(to)
        .await
        .iter()
        .any(|m| m.to_string().contains(text))
    {
        assert!(
            Instant::now() < deadline,
            "no message to {to} mentions {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

async fn vehicles_belong_to_their_owner(api: Api) {
    let (_, owner) = citizen(&api).await;
    let (_, stranger) = citizen(&api).await;
    let path = "/v1/profile/vehicles";
    let digits = six_digits();
    // Latin look-alike letters, as a keyboard left in English types them.
    let car = json!({"sts": format!("77 YO {digits}"), "plate": "a123bc77", "title": "Семейный"});
    let added = api.post_as(&owner, path, car.clone()).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["sts"], format!("77 УО {digits}"));
    assert_eq!(added.body["plate"], "А123ВС77");
    let id = added.id();
    api.post_as(&owner, path, car)
        .await
        .assert_problem(409, "vehicle_already_added");

    let reply = api
        .post_as(
            &owner,
            path,
            json!({"sts": "77 УО 12345", "plate": "Ж123ВС77", "colour": "red"}),
        )
        .await;
    reply.assert_problem(422, "validation_failed");
    let fields: Vec<String> = reply.field_errors().into_iter().map(|(f, _)| f).collect();
    assert!(
        fields.contains(&"/sts".to_string())
            && fields.contains(&"/plate".to_string())
            && fields.contains(&"/colour".to_string()),
        "{fields:?}"
    );

    let one = format!("{path}/{id}");
    let moved = api
        .patch_as(&owner, &one, json!({"plate": "В456ОР199", "title": null}))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["plate"], "В456ОР199");
    assert_eq!(moved.body["title"], Value::Null);
    let reply = api
        .patch_as(&owner, &one, json!({"sts": "99 12 345678"}))
        .await;
    reply.assert_problem(422, "validation_failed");
    assert!(reply
        .field_errors()
        .contains(&("/sts".into(), "immutable".into())));

    for method in [Method::GET, Method::DELETE] {
        call(&api, method, &one, &stranger, None)
            .await
            .assert_problem(404, "vehicle_not_found");
    }
    let list = api.get_as(&stranger, path).await;
    assert_eq!(list.body["vehicles"], json!([]));

    assert_eq!(api.delete_as(&owner, &one).await.status, 204);
    let list = api.get_as(&owner, path).await;
    assert_eq!(list.body["vehicles"], json!([]));
}

// ------------------------------------------------------------------ confirmation

async fn operator_confirms_in_person(api: Api) {
    let snils = snils_of("678");
    let (c, token) = standard_citizen(&api, &snils, "678001").await;
    let operator = new_operator();
    let key = text(&operator["key"]);
    let operator_id = text(&operator["operator_id"]);
    assert!(key.starts_with("op_"), "{operator}");
    let path = "/v1/operator/confirmations";
    let desk = |snils: &str, number: &str| json!({"snils": snils, "passport_series": "45 10", "passport_number": number});

    // A citizen's session is no operator, and an operator key opens no citizen's route.
    api.post_as(&token, path, desk(&snils, "678001"))
        .await
        .assert_problem(403, "operator_only");
    assert_eq!(api.get_as(&key, "/v1/profile").await.status, 401);

    // What the operator types is checked against the profile.
    let reply = api.post_as(&key, path, desk(&snils, "678002")).await;
    reply.assert_field_errors(&[("/passport", "passport_mismatch")]);
    api.post_as(&key, path, desk(&snils_of("679"), "678001"))
        .await
        .assert_problem(404, "account_not_found");
    let reply = api
        .post_as(&key, path, desk("112-233-445 96", "678001"))
        .await;
    assert!(reply
        .field_errors()
        .contains(&("/snils".into(), "snils_checksum".into())));

    let done = api.post_as(&key, path, desk(&snils, "678001")).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(
        done.body,
        json!({"account_id": c.account_id, "level": "confirmed"})
    );
    assert_eq!(profile(&api, &token).await.body["level"], "confirmed");
    api.post_as(&key, path, desk(&snils, "678001"))
        .await
        .assert_problem(409, "already_confirmed");

    // Logged for the citizen and under the operator.
    let events = api.get_as(&token, "/v1/security-events").await;
    let confirmed: Vec<&Value> = events.body["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["type"] == "level_confirmed")
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(confirmed.len(), 1, "{}", events.body);
    assert!(confirmed[0]["device"]
        .as_str()
        .unwrap_or_default()
        .contains(&operator_id));
    let audit = api
        .items_with_prefix(&format!("OPERATOR#{operator_id}"))
        .await;
    assert!(
        audit
            .iter()
            .any(|i| string_attr(i, "account_id") == c.account_id),
        "no confirmation under the operator"
    );
    let account = api
        .item(&format!("ACCOUNT#{}", c.account_id), "ACCOUNT")
        .await
        .unwrap_or_else(|| panic!("account missing"));
    assert_eq!(string_attr(&account, "confirmed_via"), "in_person");
    assert_eq!(string_attr(&account, "confirmed_by"), operator_id);

    // A revoked key stops working at once.
    admin(&["revoke-operator", "--id", &operator_id]);
    assert_eq!(
        api.post_as(&key, path, desk(&snils, "678001")).await.status,
        401
    );
}

async fn code_by_post_confirms(api: Api) {
    let path = "/v1/account/confirmation-letters";
    let address = json!({"address": "125009, г. Москва, ул. Тверская, д. 13, кв. 5"});
    // Only a standard account may ask.
    let (_, simplified) = citizen(&api).await;
    api.post_as(&simplified, path, address.clone())
        .await
        .assert_problem(409, "account_not_standard");

    let (c, token) = standard_citizen(&api, &snils_of("680"), "680001").await;
    let reply = api
        .post_as(&token, path, json!({"address": "Москва"}))
        .await;
    reply.assert_problem(422, "validation_failed");
    let asked = api.post_as(&token, path, address.clone()).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert!(asked.body["next_letter_available_at"].is_string());

    // The letter waits for the post with the code, the name and the address on it.
    let queue = api.queue_url("-post-letters").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let letter = loop {
        let messages = api
            .sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap_or_else(|e| panic!("receive: {e}"))
            .messages
            .unwrap_or_default();
        let mine = messages
            .iter()
            .filter_map(|m| serde_json::from_str::<Value>(m.body().unwrap_or_default()).ok())
            .find(|l| l["account_id"] == c.account_id.as_str());
        if let Some(letter) = mine {
            break letter;
        }
        assert!(Instant::now() < deadline, "no letter in the post queue");
    };
    assert_eq!(letter["recipient"], "Иванов Пётр Сергеевич");
    assert_eq!(letter["address"], address["address"]);
    let code = text(&letter["code"]);
    assert_eq!(code.len(), 8, "{letter}");
    // Stored only as a keyed hash.
    let item = api
        .item(&format!("ACCOUNT#{}", c.account_id), "LETTER")
        .await
        .unwrap_or_else(|| panic!("letter item missing"));
    assert!(!all_text(&item).contains(&code));

    // A second letter only after 30 days.
    let again = api.post_as(&token, path, address).await;
    again.assert_problem(429, "letter_too_early");
    let wait: u64 = again
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(wait > 29 * 24 * 3600, "Retry-After {wait}");

    let confirm = format!("{path}/confirm");
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let reply = api.post_as(&token, &confirm, json!({"code": wrong})).await;
    reply.assert_problem(422, "code_mismatch");
    assert_eq!(reply.body["attempts_left"], 4);
    api.post_as(&token, &confirm, json!({"code": "12ab"}))
        .await
        .assert_problem(422, "validation_failed");
    let done = api.post_as(&token, &confirm, json!({"code": code})).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(profile(&api, &token).await.body["level"], "confirmed");
    let account = api
        .item(&format!("ACCOUNT#{}", c.account_id), "ACCOUNT")
        .await
        .unwrap_or_else(|| panic!("account missing"));
    assert_eq!(string_attr(&account, "confirmed_via"), "registered_post");
    api.post_as(&token, &confirm, json!({"code": code}))
        .await
        .assert_problem(409, "already_confirmed");
}
