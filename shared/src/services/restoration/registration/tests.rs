use serde_json::{json, Value};

use super::*;
use crate::domain::Snils;
use crate::services::profile::State;
use crate::testing::{assert_unavailable, test_hasher, Fault, MemStore};

/// 2026-12-06 19:30:00 UTC.
const NOW: i64 = 1_796_585_400;
const SNILS: &str = "112-233-445 95";

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

fn operator() -> OperatorId {
    static OPERATOR: std::sync::OnceLock<OperatorId> = std::sync::OnceLock::new();
    OPERATOR.get_or_init(OperatorId::new).clone()
}

/// The form an operator fills at the desk.
fn form() -> Value {
    json!({
        "personal": {
            "last_name": "Смирнова",
            "first_name": "Анна",
            "middle_name": "Петровна",
            "birth_date": "1950-03-02",
            "gender": "female"
        },
        "documents": {
            "snils": SNILS,
            "passport": {
                "series": "45 10",
                "number": "123456",
                "issue_date": "2010-06-01",
                "department_code": "770-001",
                "issued_by": "ОВД района Арбат г. Москвы"
            }
        }
    })
}

fn parse(body: &Value) -> Result<ProfilePatch, AppError> {
    ProfilePatch::parse(body.as_object().unwrap(), at(NOW).date())
}

struct Desk {
    store: MemStore,
    service: DeskRegistrationService<MemStore, MemStore>,
}

fn desk(per_hour: u32) -> Desk {
    let store = MemStore::new();
    let profiles = ProfileService::new(store.clone(), store.clone(), test_hasher());
    Desk {
        service: DeskRegistrationService::new(
            store.clone(),
            profiles,
            test_hasher(),
            RestorationLimit { per_hour },
        ),
        store,
    }
}

impl Desk {
    async fn register(&self, body: &Value) -> Result<RegisteredAtDesk, AppError> {
        let patch = parse(body)?;
        self.service
            .register(
                &operator(),
                &RegisterAtDesk {
                    profile: &patch,
                    ip: "10.0.0.1",
                },
                at(NOW),
            )
            .await
    }
}

#[tokio::test]
async fn a_citizen_without_contacts_gets_a_confirmed_account_with_a_paper_password() {
    let d = desk(30);
    let done = d.register(&form()).await.unwrap();
    let account = d
        .store
        .state()
        .accounts
        .get(&done.account_id)
        .cloned()
        .unwrap();
    assert_eq!((account.email.as_str(), account.phone.as_str()), ("", ""));
    assert_eq!(account.last_name, "Смирнова");
    // Confirmed by the operator; the level follows once the registries verify.
    assert_eq!(account.confirmed_at, Some(NOW));
    assert_eq!(account.level, SIMPLIFIED);
    assert_eq!(done.level, SIMPLIFIED);
    let due = NOW + TEMPORARY_PASSWORD_DAYS * 86_400;
    assert_eq!(account.password_change_due, Some(due));
    assert_eq!(done.temporary_password_expires_at.unix_timestamp(), due);
    // The paper password is the account's, printable, and only its hash is kept.
    let password = done.temporary_password.expose();
    assert_eq!(password.len(), 14);
    assert!(password
        .split('-')
        .all(|g| g.len() == 4 && g.bytes().all(|b| PASSWORD_ALPHABET.contains(&b))));
    assert!(!account.password_hash.contains(password.as_str()));
    assert!(passwords::verify(
        &done.temporary_password,
        Some(&account.password_hash)
    ));
    // The profile holds what the operator typed, waiting for the registries.
    let stored = d.store.profile(&done.account_id).unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(
        stored.profile.documents.snils.as_deref(),
        Some("11223344595")
    );
    for field in ["name", "birth_date", "gender", "snils", "passport"] {
        assert_eq!(
            stored.profile.statuses[field].state,
            State::Pending,
            "{field}"
        );
    }
    assert!(!d.store.state().jobs.is_empty());
    let state = d.store.state();
    assert_eq!(
        state.registration_audit,
        vec![(operator(), done.account_id.clone())]
    );
    let kinds: Vec<&str> = state.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["account_created", "profile_changed"]);
    let desk = format!("operator {}", operator());
    assert!(state.events.iter().all(|e| e.user_agent == desk));
}

#[tokio::test]
async fn two_registrations_get_different_passwords() {
    let d = desk(30);
    let first = d.register(&form()).await.unwrap();
    let mut other = form();
    other["documents"]["snils"] = json!("138-759-325 08");
    let second = d.register(&other).await.unwrap();
    assert_ne!(
        first.temporary_password.expose(),
        second.temporary_password.expose()
    );
}

#[tokio::test]
async fn every_missing_identity_field_is_named_and_nothing_is_written() {
    let d = desk(30);
    let body = json!({"personal": {"first_name": "Анна"}, "documents": {}});
    let Err(AppError::Validation(errors)) = d.register(&body).await else {
        panic!("not refused");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "/personal/last_name",
            "/personal/birth_date",
            "/personal/gender",
            "/documents/snils",
            "/documents/passport"
        ]
    );
    assert!(errors.iter().all(|e| e.code == "required"));
    assert!(d.store.state().accounts.is_empty());
}

#[tokio::test]
async fn a_snils_that_is_a_login_already_is_sent_to_restoration() {
    let d = desk(30);
    let existing = d.store.add_account(&AccountId::new());
    let snils = Snils::parse("snils", SNILS).unwrap();
    d.store
        .state()
        .logins
        .insert(snils_login_key(&test_hasher(), snils.as_str()), existing.id);
    assert!(matches!(
        d.register(&form()).await,
        Err(AppError::SnilsRegistered)
    ));
    assert_eq!(d.store.state().accounts.len(), 1);
    assert!(d.store.state().registration_audit.is_empty());
}

#[tokio::test]
async fn an_operator_registers_at_most_the_hourly_limit() {
    let d = desk(1);
    d.register(&form()).await.unwrap();
    let mut other = form();
    other["documents"]["snils"] = json!("138-759-325 08");
    match d.register(&other).await {
        Err(AppError::RegistrationLimit { retry_after_secs }) => {
            assert_eq!(retry_after_secs, 1800);
        }
        other => panic!("not limited: {other:?}"),
    }
    assert_eq!(d.store.state().accounts.len(), 1);
}

#[tokio::test]
async fn checks_that_cannot_be_queued_leave_no_account() {
    let d = desk(30);
    d.store.script.fail_next("enqueue", Fault::Unavailable);
    assert_unavailable(&d.register(&form()).await);
    let state = d.store.state();
    assert!(state.accounts.is_empty());
    assert!(state.profiles.is_empty());
    assert!(state.registration_audit.is_empty());
}

#[tokio::test]
async fn a_passport_issued_before_fourteen_leaves_no_account() {
    let d = desk(30);
    let mut body = form();
    body["documents"]["passport"]["issue_date"] = json!("1960-01-01");
    let Err(AppError::Validation(errors)) = d.register(&body).await else {
        panic!("not refused");
    };
    assert_eq!(errors[0].field, "/documents/passport/issue_date");
    assert!(d.store.state().accounts.is_empty());
}
