use super::*;
use crate::domain::{PassportNumber, PassportSeries};
use crate::redact::Secret;
use crate::services::profile::{Passport, Profile, StoredProfile, SIMPLIFIED};
use crate::testing::{test_hasher, MemStore, Outbox};

/// 2026-12-06 19:30:00 UTC: half an hour into its window.
const NOW: i64 = 1_796_585_400;
const SNILS: &str = "112-233-445 95";
const NEW_PHONE: &str = "+79161234567";

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

struct Desk {
    store: MemStore,
    outbox: Outbox,
    service: RestorationService<MemStore, Outbox>,
    account: StoredAccount,
    sessions: Vec<SessionId>,
}

/// A standard account whose SNILS is [`SNILS`] and passport 45 10 123456, with its
/// contact logins and two sessions.
fn desk(per_hour: u32) -> Desk {
    let store = MemStore::new();
    let outbox = Outbox::default();
    let hasher = test_hasher();
    let id = AccountId::new();
    let mut account = store.add_account(&id);
    account.level = STANDARD;
    let mut profile = Profile::default();
    profile.documents.snils = Some(SNILS.into());
    profile.documents.passport = Some(Passport {
        series: "4510".into(),
        number: "123456".into(),
        issue_date: "2010-06-01".into(),
        department_code: "770-001".into(),
        issued_by: "ОВД района Арбат г. Москвы".into(),
        birthplace: None,
    });
    store.put_profile(
        &id,
        StoredProfile {
            profile,
            version: 3,
        },
    );
    let snils = Snils::parse("snils", SNILS).unwrap();
    let sessions = vec![
        SessionId::parse(&"a".repeat(43)).unwrap(),
        SessionId::parse(&"b".repeat(43)).unwrap(),
    ];
    {
        let mut state = store.state();
        state.accounts.insert(id.clone(), account.clone());
        for login in [
            snils_login_key(&hasher, snils.as_str()),
            destination_key(&hasher, &account.email),
            destination_key(&hasher, &account.phone),
        ] {
            state.logins.insert(login, id.clone());
        }
        for session in &sessions {
            state.sessions.insert(session.clone(), id.clone());
        }
    }
    let service = RestorationService::new(
        store.clone(),
        outbox.clone(),
        hasher,
        RestorationLimit { per_hour },
    );
    Desk {
        store,
        outbox,
        service,
        account,
        sessions,
    }
}

fn phone(raw: &str) -> Destination {
    Destination::Phone(Phone::parse("destination", raw).unwrap())
}

async fn restore(
    desk: &Desk,
    operator: &OperatorId,
    number: &str,
    contact: &Destination,
    now: i64,
) -> Result<Restored, AppError> {
    // The citizen received the code at the new contact, and the operator verified it.
    let token = format!("vt-{}-{now}", contact.canonical());
    give_token(desk, &token, contact.canonical(), now + 600);
    restore_with(desk, operator, number, contact, &token, now).await
}

/// A live `contact_change` token `token` for `destination`, expiring at `expires`.
fn give_token(desk: &Desk, token: &str, destination: &str, expires: i64) {
    let hasher = test_hasher();
    let key = verification_token_keys(&hasher, token).remove(0);
    desk.store.state().verification_tokens.insert(
        key,
        (
            "contact_change".into(),
            destination_key(&hasher, destination),
            expires,
        ),
    );
}

/// A restoration whose new contact comes with the verification token `token`.
async fn restore_with(
    desk: &Desk,
    operator: &OperatorId,
    number: &str,
    contact: &Destination,
    token: &str,
    now: i64,
) -> Result<Restored, AppError> {
    let snils = Snils::parse("snils", SNILS).unwrap();
    let series = PassportSeries::parse("passport_series", "45 10").unwrap();
    let number = PassportNumber::parse("passport_number", number).unwrap();
    let token = Secret::new(token.to_string());
    let request = RestoreAccess {
        snils: &snils,
        passport_series: series.as_str(),
        passport_number: number.as_str(),
        contact,
        verification_token: &token,
        ip: "198.51.100.4",
    };
    desk.service.restore(operator, &request, at(now)).await
}

/// What a refused restoration must leave as it was: the account, its logins and
/// sessions, its security log and the operator's audit; and nobody was told anything.
fn assert_nothing_written(desk: &Desk) {
    let state = desk.store.state();
    assert_eq!(state.accounts.get(&desk.account.id), Some(&desk.account));
    assert_eq!(state.sessions.len(), 2);
    assert!(!state
        .logins
        .contains_key(&destination_key(&test_hasher(), NEW_PHONE)));
    assert!(state.events.is_empty());
    assert!(state.restoration_audit.is_empty());
    assert!(state.inbox.is_empty(), "a refusal tells nobody");
    drop(state);
    assert!(desk.outbox.sent().is_empty());
}

#[tokio::test]
async fn a_new_phone_replaces_the_old_login_and_every_session_ends() {
    let desk = desk(30);
    let operator = OperatorId::new();
    let restored = restore(&desk, &operator, "123456", &phone("8 916 123-45-67"), NOW)
        .await
        .unwrap();
    assert_eq!(restored.account_id, desk.account.id);
    assert_eq!(restored.contact.canonical(), NEW_PHONE);

    let hasher = test_hasher();
    let state = desk.store.state();
    let account = &state.accounts[&desk.account.id];
    assert_eq!(account.phone, NEW_PHONE);
    assert_eq!(account.email, desk.account.email);
    // The new epoch ends every session, the ones the list missed too.
    assert_eq!(
        account.credentials_epoch,
        desk.account.credentials_epoch + 1
    );
    assert!(desk
        .sessions
        .iter()
        .all(|s| !state.sessions.contains_key(s)));
    assert_eq!(
        state.logins.get(&destination_key(&hasher, NEW_PHONE)),
        Some(&desk.account.id)
    );
    assert!(!state
        .logins
        .contains_key(&destination_key(&hasher, &desk.account.phone)));
    let event = &state.events[0];
    assert_eq!(event.kind, "access_restored");
    assert_eq!(event.user_agent, format!("operator {operator}"));
    assert_eq!(event.ip, "198.51.100.4");
    assert_eq!(
        state.restoration_audit,
        vec![(operator.clone(), desk.account.id.clone())]
    );
    drop(state);

    // An SMS to the new phone, an e-mail to the address the account keeps; not the
    // phone declared lost.
    let sent = desk.outbox.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0].to, NEW_PHONE);
    assert!(sent[0].text.contains("восстановлен в центре обслуживания"));
    assert_eq!(sent[1].to, desk.account.email);
    assert_eq!(sent[1].subject.as_deref(), Some("Доступ восстановлен"));
    assert!(sent[1].text.contains("новый номер телефона"));
}

#[tokio::test]
async fn a_new_address_is_told_and_so_is_the_phone_kept() {
    let desk = desk(30);
    let email = Destination::Email(Email::parse("destination", "New.Owner@Example.ru").unwrap());
    restore(&desk, &OperatorId::new(), "123456", &email, NOW)
        .await
        .unwrap();
    let state = desk.store.state();
    assert_eq!(
        state.accounts[&desk.account.id].email,
        "new.owner@example.ru"
    );
    assert_eq!(state.accounts[&desk.account.id].phone, desk.account.phone);
    // The inbox keeps one security message, naming what changed.
    let inbox = state.inbox_of(&desk.account.id);
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert_eq!(
        inbox[0].message.category,
        crate::services::inbox::MessageCategory::Security
    );
    assert!(inbox[0]
        .message
        .text
        .contains("новый адрес электронной почты"));
    drop(state);
    let sent = desk.outbox.sent();
    let to: Vec<&str> = sent.iter().map(|m| m.to.as_str()).collect();
    assert_eq!(to, ["new.owner@example.ru", desk.account.phone.as_str()]);
}

#[tokio::test]
async fn another_passport_changes_nothing() {
    let desk = desk(30);
    let refused = restore(&desk, &OperatorId::new(), "654321", &phone(NEW_PHONE), NOW).await;
    let Err(AppError::Validation(errors)) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(errors[0].field, "/passport");
    assert_eq!(errors[0].code, "passport_mismatch");
    assert_nothing_written(&desk);
}

#[tokio::test]
async fn a_contact_of_another_account_writes_nothing() {
    let desk = desk(30);
    let other = AccountId::new();
    desk.store
        .state()
        .logins
        .insert(destination_key(&test_hasher(), NEW_PHONE), other.clone());
    let refused = restore(&desk, &OperatorId::new(), "123456", &phone(NEW_PHONE), NOW).await;
    let Err(AppError::ContactTaken(fields)) = &refused else {
        panic!("{refused:?}")
    };
    assert_eq!(fields, &["/contact/destination"]);
    let problem = refused.unwrap_err().problem();
    assert_eq!(
        (problem.status, problem.code),
        (409, "contact_already_registered")
    );
    assert_eq!(problem.errors[0].field, "/contact/destination");
    // The other account keeps its login; this one is as it was.
    assert_eq!(
        desk.store
            .state()
            .logins
            .get(&destination_key(&test_hasher(), NEW_PHONE)),
        Some(&other)
    );
    let state = desk.store.state();
    assert_eq!(state.accounts.get(&desk.account.id), Some(&desk.account));
    assert_eq!(state.sessions.len(), 2);
    assert!(state.events.is_empty() && state.restoration_audit.is_empty());
    drop(state);
    assert!(desk.outbox.sent().is_empty());
}

#[tokio::test]
async fn a_simplified_account_or_an_unknown_snils_is_refused() {
    let desk = desk(30);
    desk.store
        .state()
        .accounts
        .get_mut(&desk.account.id)
        .unwrap()
        .level = SIMPLIFIED;
    let refused = restore(&desk, &OperatorId::new(), "123456", &phone(NEW_PHONE), NOW).await;
    assert!(
        matches!(refused, Err(AppError::RestorationNeedsStandard)),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().problem().code, "account_not_standard");

    let empty = self::desk(30);
    empty.store.state().logins.clear();
    let refused = restore(&empty, &OperatorId::new(), "123456", &phone(NEW_PHONE), NOW).await;
    assert!(
        matches!(refused, Err(AppError::NotFound("account"))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_same_phone_again_is_no_change() {
    let desk = desk(30);
    let same = desk.account.phone.clone();
    let refused = restore(&desk, &OperatorId::new(), "123456", &phone(&same), NOW).await;
    let Err(AppError::Validation(errors)) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(
        (errors[0].field.as_str(), errors[0].code),
        ("/contact/destination", "unchanged")
    );
    assert_nothing_written(&desk);
}

#[tokio::test]
async fn an_operator_stops_at_the_hourly_limit_before_anything_is_read() {
    let desk = desk(2);
    let operator = OperatorId::new();
    // Refused attempts count too: a key that probes uses up its hour.
    for _ in 0..2 {
        let probe = restore(&desk, &operator, "654321", &phone(NEW_PHONE), NOW).await;
        assert!(matches!(probe, Err(AppError::Validation(_))), "{probe:?}");
    }
    let reads = desk.store.script.calls("account_by_snils");
    let refused = restore(&desk, &operator, "123456", &phone(NEW_PHONE), NOW).await;
    let Err(AppError::RestorationLimit { retry_after_secs }) = refused else {
        panic!("{refused:?}")
    };
    // Until the end of the hour the window started at.
    assert_eq!(retry_after_secs, 1800);
    assert_eq!(desk.store.script.calls("account_by_snils"), reads);
    assert_nothing_written(&desk);
    let problem = AppError::RestorationLimit { retry_after_secs }.problem();
    assert_eq!((problem.status, problem.code), (429, "restoration_limit"));

    // Another operator has an hour of their own, and the next hour starts afresh.
    restore(&desk, &OperatorId::new(), "654321", &phone(NEW_PHONE), NOW)
        .await
        .unwrap_err();
    restore(&desk, &operator, "123456", &phone(NEW_PHONE), NOW + 1800)
        .await
        .unwrap();
}

#[tokio::test]
async fn parallel_restorations_count_no_further_than_the_limit() {
    let desk = desk(3);
    let operator = OperatorId::new();
    let contact = phone(NEW_PHONE);
    let attempts = (0..8).map(|_| restore(&desk, &operator, "654321", &contact, NOW));
    let answers = futures_util::future::join_all(attempts).await;
    let limited = answers
        .iter()
        .filter(|a| matches!(a, Err(AppError::RestorationLimit { .. })))
        .count();
    assert_eq!(limited, 5, "{answers:?}");
}

#[tokio::test]
async fn a_change_by_the_citizen_meanwhile_is_a_conflict_not_a_failure() {
    let desk = desk(30);
    // The citizen changes their password just before the restoration's transaction.
    let id = desk.account.id.clone();
    desk.store.race("restore_access", 1, move |state| {
        if let Some(account) = state.accounts.get_mut(&id) {
            account.credentials_epoch += 1;
        }
    });
    let refused = restore(&desk, &OperatorId::new(), "123456", &phone(NEW_PHONE), NOW).await;
    assert!(
        matches!(refused, Err(AppError::AccountChanged)),
        "{refused:?}"
    );
    let problem = refused.unwrap_err().problem();
    assert_eq!((problem.status, problem.code), (409, "account_changed"));
    // Nothing of the restoration was written, nobody was told.
    let state = desk.store.state();
    assert_eq!(state.sessions.len(), 2);
    assert!(!state
        .logins
        .contains_key(&destination_key(&test_hasher(), NEW_PHONE)));
    assert!(state.events.is_empty() && state.restoration_audit.is_empty());
    drop(state);
    assert!(desk.outbox.sent().is_empty());
}

#[tokio::test]
async fn an_account_registered_at_a_desk_gets_its_first_phone() {
    let desk = desk(30);
    let hasher = test_hasher();
    {
        // Registered at a service centre: no e-mail, no phone, no contact logins.
        let mut state = desk.store.state();
        let account = state.accounts.get_mut(&desk.account.id).unwrap();
        account.email = String::new();
        account.phone = String::new();
        account.level = CONFIRMED;
        for contact in [&desk.account.email, &desk.account.phone] {
            state.logins.remove(&destination_key(&hasher, contact));
        }
    }
    let phone = phone(NEW_PHONE);
    restore(&desk, &OperatorId::new(), "123456", &phone, NOW)
        .await
        .unwrap();
    let state = desk.store.state();
    let account = &state.accounts[&desk.account.id];
    assert_eq!(account.phone, NEW_PHONE);
    // The restoration starts the factors' cooling period, as a recovery does.
    assert_eq!(account.recovered_at, Some(NOW));
    assert_eq!(
        state.logins.get(&destination_key(&hasher, NEW_PHONE)),
        Some(&desk.account.id)
    );
}

#[tokio::test]
async fn a_new_phone_is_a_second_factor_again_when_the_owner_had_turned_it_off() {
    let mut desk = desk(30);
    // Two-step login on, the phone removed as a factor: an app on the lost phone is all.
    {
        let mut state = desk.store.state();
        let account = state.accounts.get_mut(&desk.account.id).unwrap();
        account.two_step_login = true;
        account.sms_factor = false;
        account.factor_count = 1;
        desk.account = account.clone();
    }
    let operator = OperatorId::new();
    restore(&desk, &operator, "123456", &phone(NEW_PHONE), NOW)
        .await
        .unwrap();
    let account = desk.store.state().accounts[&desk.account.id].clone();
    assert!(account.sms_factor, "the new phone completes a login");
    assert_eq!(account.factor_count, 2);
    assert!(account.two_step_login);

    // An e-mail restored leaves the factors as they are.
    let desk = desk_with_factors_off();
    restore(
        &desk,
        &operator,
        "123456",
        &Destination::Email(Email::parse("destination", "new@example.ru").unwrap()),
        NOW,
    )
    .await
    .unwrap();
    let account = desk.store.state().accounts[&desk.account.id].clone();
    assert!(!account.sms_factor);
    assert_eq!(account.factor_count, 1);
}

/// [`desk`] with the phone off as a factor and one other factor.
fn desk_with_factors_off() -> Desk {
    let mut desk = desk(30);
    let mut state = desk.store.state();
    let account = state.accounts.get_mut(&desk.account.id).unwrap();
    account.sms_factor = false;
    account.factor_count = 1;
    desk.account = account.clone();
    drop(state);
    desk
}

#[tokio::test]
async fn a_contact_without_a_live_code_of_its_own_writes_nothing() {
    let desk = desk(30);
    let operator = OperatorId::new();
    let contact = phone(NEW_PHONE);
    // A code for another phone (the operator mistyped a digit), an expired one, one of
    // another purpose, and none at all: each the same 422, nothing written.
    give_token(&desk, "other-phone", "+79161234568", NOW + 600);
    give_token(&desk, "expired", NEW_PHONE, NOW - 1);
    let hasher = test_hasher();
    let key = verification_token_keys(&hasher, "registration").remove(0);
    desk.store.state().verification_tokens.insert(
        key,
        (
            "registration".into(),
            destination_key(&hasher, NEW_PHONE),
            NOW + 600,
        ),
    );
    for token in ["other-phone", "expired", "registration", "never-issued"] {
        let refused = restore_with(&desk, &operator, "123456", &contact, token, NOW).await;
        let Err(AppError::Validation(errors)) = refused else {
            panic!("{token}: {refused:?}");
        };
        assert_eq!(errors[0].field, "/contact/verification_token", "{token}");
        assert_eq!(errors[0].code, "verification_token_invalid", "{token}");
        assert_nothing_written(&desk);
    }
    // The right one works once: it is spent with the restoration.
    give_token(&desk, "right", NEW_PHONE, NOW + 600);
    restore_with(&desk, &operator, "123456", &contact, "right", NOW)
        .await
        .unwrap();
    let key = verification_token_keys(&hasher, "right").remove(0);
    assert!(!desk.store.state().verification_tokens.contains_key(&key));
}
