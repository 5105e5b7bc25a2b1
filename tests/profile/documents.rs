//! The identity documents besides the passport (the international passport, checked by
//! the sandbox interior ministry; the military ID, a foreign document and the own birth
//! certificate, which no registry checks), and the reminders of documents falling due,
//! sent by `document-reminders` when the local scheduler fires it for a given day.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

/// Every document of the kind, valid, for someone born on 1990-05-17.
fn other_documents(international_number: &str) -> Value {
    json!({
        "personal": {"birth_date": "1990-05-17", "gender": "male"},
        "documents": {
            "international_passport": {
                "series": "75", "number": international_number,
                "issue_date": "2020-03-15", "expiry_date": "2030-03-15",
            },
            "military_id": {"series": "ак", "number": "№ 1234567", "issue_date": "2010-06-01"},
            "foreign_document": {
                "country": "kaz", "number": "n 1234-5678",
                "issue_date": "2019-01-10", "expiry_date": "2029-01-10",
            },
            "birth_certificate": {"series": "IV-мю", "number": "123456", "issue_date": "1990-06-01"},
        },
    })
}

pub async fn other_documents_are_validated_and_kept(api: Api) {
    let (_, token) = citizen(&api).await;
    // A bad value of each is refused with its field path, and nothing is written.
    let bad = json!({
        "personal": {"birth_date": "1990-05-17"},
        "documents": {
            "international_passport": {
                "series": "7", "number": "1234567",
                "issue_date": "2020-03-15", "expiry_date": "2030-03-15",
            },
            "military_id": {"series": "AK", "number": "1234567", "issue_date": "2010-06-01"},
            "foreign_document": {
                "country": "RUS", "number": "N1", "issue_date": "2019-01-10",
                "expiry_date": "2029-01-10",
            },
            "birth_certificate": {"series": "IV-MU", "number": "123456", "issue_date": "1990-06-01"},
        },
    });
    patch_new(&api, &token, bad).await.assert_field_errors(&[
        (
            "/documents/international_passport/series",
            "international_passport_series_format",
        ),
        ("/documents/military_id/series", "military_id_latin_letters"),
        ("/documents/foreign_document/country", "country_russia"),
        (
            "/documents/birth_certificate/series",
            "birth_certificate_series_latin_letters",
        ),
    ]);
    // Dates: checked against the birth date the profile will have.
    let dates = json!({
        "personal": {"birth_date": "1990-05-17"},
        "documents": {
            "international_passport": {
                "series": "75", "number": "1234567",
                "issue_date": "2020-03-15", "expiry_date": "2030-03-14",
            },
            "military_id": {"series": "АК", "number": "1234567", "issue_date": "2099-06-01"},
            "foreign_document": {
                "country": "XYZ", "number": "N1", "issue_date": "2019-01-10",
                "expiry_date": "2029-01-10",
            },
            "birth_certificate": {"series": "IV-МЮ", "number": "123456", "issue_date": "1990-05-16"},
        },
    });
    patch_new(&api, &token, dates)
        .await
        .assert_field_errors(&[("/documents/foreign_document/country", "country_unknown")]);
    let dates = json!({
        "personal": {"birth_date": "1990-05-17"},
        "documents": {
            "international_passport": {
                "series": "75", "number": "1234567",
                "issue_date": "2020-03-15", "expiry_date": "2030-03-14",
            },
            "military_id": {"series": "АК", "number": "1234567", "issue_date": "2099-06-01"},
            "foreign_document": {
                "country": "KAZ", "number": "N1", "issue_date": "2015-01-10",
                "expiry_date": "2020-01-10",
            },
            "birth_certificate": {"series": "IV-МЮ", "number": "123456", "issue_date": "1990-05-16"},
        },
    });
    patch_new(&api, &token, dates).await.assert_field_errors(&[
        (
            "/documents/international_passport/expiry_date",
            "international_passport_validity",
        ),
        ("/documents/military_id/issue_date", "date_in_future"),
        (
            "/documents/foreign_document/expiry_date",
            "document_expired",
        ),
        (
            "/documents/birth_certificate/issue_date",
            "issue_before_birth",
        ),
    ]);
    assert_eq!(
        profile(&api, &token).await.body["version"],
        0,
        "nothing written"
    );

    let saved = patch_new_ok(&api, &token, other_documents("1234567")).await;
    let d = &saved["documents"];
    assert_eq!(d["international_passport"]["number"], "1234567");
    assert_eq!(
        d["military_id"],
        json!({"series": "АК", "number": "1234567", "issue_date": "2010-06-01"})
    );
    assert_eq!(d["foreign_document"]["country"], "KAZ");
    assert_eq!(d["foreign_document"]["number"], "N 1234-5678");
    assert_eq!(d["birth_certificate"]["series"], "IV-МЮ");
    for unchecked in ["military_id", "foreign_document", "birth_certificate"] {
        assert_eq!(status(&saved, unchecked), "unverified", "{unchecked}");
    }
    assert_eq!(status(&saved, "international_passport"), "pending");
    let p = wait_for(&api, &token, "international passport verified", |p| {
        status(p, "international_passport") == "verified"
    })
    .await;
    // Removed with null, like the passport.
    let version = format!("\"{}\"", p["version"]);
    let reply = patch(
        &api,
        &token,
        Some(&version),
        json!({"documents": {"military_id": null}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["documents"]["military_id"].is_null());
    assert!(reply.body["verification"]["military_id"].is_null());
}

pub async fn an_international_passport_is_checked_by_the_interior_ministry(api: Api) {
    let (c, token) = citizen(&api).await;
    patch_new_ok(&api, &token, other_documents("1234567")).await;
    let p = wait_for(&api, &token, "international passport verified", |p| {
        status(p, "international_passport") == "verified"
    })
    .await;
    assert_eq!(
        p["verification"]["international_passport"]["source"],
        "interior_ministry_sandbox"
    );
    // Changed, it loses its mark and is checked again; 999… is rejected and removed.
    let version = format!("\"{}\"", p["version"]);
    let mut changed = other_documents("9991234");
    changed["personal"] = json!({});
    let reply = patch(&api, &token, Some(&version), changed).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(status(&reply.body, "international_passport"), "pending");
    let p = wait_for(&api, &token, "international passport rejected", |p| {
        status(p, "international_passport") == "rejected"
    })
    .await;
    assert!(p["documents"]["international_passport"].is_null());
    assert!(p["verification"]["international_passport"]["reason"].is_string());
    // The letter goes after the profile is written (and the inbox kept): wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let letters = api.outbox(&c.email).await;
        let told = letters.iter().any(|m| {
            m["subject"] == "Результат проверки данных профиля"
                && m["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("Заграничный паспорт: не подтверждён"))
        });
        if told {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rejection letter: {letters:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// What `document-reminders` sent `to` under `subject`.
async fn reminders_to(api: &Api, to: &str, text: &str) -> usize {
    api.outbox(to)
        .await
        .iter()
        .filter(|m| m["text"].as_str().is_some_and(|t| t.contains(text)))
        .count()
}

/// Asserts that `c` got `n` replacement reminders by e-mail and as many by SMS.
async fn told(api: &Api, c: &Citizen, n: usize) {
    let text = "Паспорт гражданина РФ нужно заменить";
    assert_eq!(reminders_to(api, &c.email, text).await, n, "e-mails");
    assert_eq!(reminders_to(api, &c.phone, text).await, n, "SMS");
}

async fn remind_on(api: &Api, day: &str) -> Value {
    api.fire_schedule_at("document-reminders", &format!("{day}T07:00:00Z"))
        .await
}

pub async fn an_expiring_passport_is_reminded_once_per_threshold(api: Api) {
    let (c, token) = citizen(&api).await;
    // SMS copies of messages about documents.
    let reply = call(
        &api,
        Method::PUT,
        "/v1/notification-settings",
        &token,
        Some(json!({"verification": {"sms": true}})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Born 1982-03-10, the passport issued after the 20th birthday: due at 45, on
    // 2027-03-10.
    patch_new_ok(
        &api,
        &token,
        json!({
            "personal": {"birth_date": "1982-03-10"},
            "documents": {"passport": {
                "series": "45 10", "number": "123456", "issue_date": "2002-04-01",
                "department_code": "770-001", "issued_by": "ОВД района Арбат г. Москвы",
            }},
        }),
    )
    .await;
    remind_on(&api, "2026-12-09").await;
    told(&api, &c, 0).await;
    let run = remind_on(&api, "2026-12-10").await;
    assert!(run["emails"].as_u64().is_some_and(|n| n >= 1), "{run}");
    told(&api, &c, 1).await;
    // The same day again, and the next days: nothing more.
    remind_on(&api, "2026-12-10").await;
    remind_on(&api, "2026-12-11").await;
    told(&api, &c, 1).await;
    remind_on(&api, "2027-02-08").await;
    told(&api, &c, 2).await;
    remind_on(&api, "2027-02-09").await;
    told(&api, &c, 2).await;
    remind_on(&api, "2027-03-03").await;
    remind_on(&api, "2027-03-10").await;
    remind_on(&api, "2027-03-10").await;
    told(&api, &c, 4).await;
    let letters = api.outbox(&c.email).await;
    assert!(letters.iter().any(|m| m["subject"] == "Замена паспорта"
        && m["text"]
            .as_str()
            .is_some_and(|t| t.contains("10.03.2027 вам исполнится 45 лет (через 90 дней)"))));
}
