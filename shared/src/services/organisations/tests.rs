use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use crate::adapters::business_registry::{
    head_inn_of, ogrn_of, organisation_inn, SandboxBusinessRegistry,
};
use crate::domain::{AccountLevel, Destination, Inn, Kpp, Ogrn, Phone};
use crate::services::profile::{FieldStatus, State as ProfileState};
use crate::services::profile::{CONFIRMED, SIMPLIFIED, STANDARD};
use crate::testing::{test_hasher, MemStore, Outbox};

type Service = OrganisationService<MemStore, MemStore, Outbox>;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn service() -> (Service, MemStore, Outbox) {
    let store = MemStore::new();
    let outbox = Outbox::default();
    let service =
        OrganisationService::new(store.clone(), store.clone(), outbox.clone(), test_hasher());
    (service, store, outbox)
}

/// A citizen at `level` whose profile holds the personal INN `inn` verified.
fn citizen(store: &MemStore, id: &str, level: AccountLevel, inn: &str) -> AccountId {
    let id = AccountId::from(id);
    store.add_citizen(&id, "11223344595");
    let mut state = store.state();
    if let Some(account) = state.accounts.get_mut(&id) {
        account.level = level;
        account.phone = format!("+7931870{:04}", id.len() * 7 + inn.len());
    }
    if let Some(stored) = state.profiles.get_mut(&id) {
        stored.profile.documents.inn = Some(inn.to_string());
        stored.profile.statuses.insert(
            "inn".into(),
            FieldStatus::decided(ProfileState::Verified, "s0", 0),
        );
    }
    id
}

fn company(inn: &str) -> OrganisationIdentity {
    OrganisationIdentity::legal_entity(
        Inn::parse("inn", inn).unwrap(),
        Kpp::parse("kpp", "773601001").unwrap(),
        Ogrn::parse("ogrn", &ogrn_of("102770013219")).unwrap(),
    )
    .unwrap()
}

fn email() -> Email {
    Email::parse("email", "office@example.ru").unwrap()
}

/// Registers a company for a confirmed head and runs the worker's check.
async fn registered(service: &Service, store: &MemStore) -> (AccountId, OrganisationId) {
    let inn = organisation_inn("770100001");
    let head = citizen(store, "head", CONFIRMED, &head_inn_of(&inn));
    let org = service
        .register(&head, company(&inn), email(), now())
        .await
        .unwrap();
    let outcome = check(store, &org.id, 1).await;
    assert_eq!(outcome, CheckOutcome::Registered);
    (head, org.id)
}

async fn check(store: &MemStore, id: &OrganisationId, attempt: u32) -> CheckOutcome {
    let registry = SandboxBusinessRegistry::new(Duration::ZERO);
    let check = OrganisationCheck {
        organisation_id: id.clone(),
    };
    run_check(store, &registry, &check, attempt, now())
        .await
        .unwrap()
}

#[tokio::test]
async fn the_head_registers_a_company_and_becomes_its_owner() {
    let (service, store, _) = service();
    let (head, id) = registered(&service, &store).await;
    let (org, member) = service.get(&head, &id).await.unwrap();
    assert_eq!(org.status, OrgStatus::Registered);
    assert_eq!(member.role, OrgRole::Owner);
    assert!(member.active);
    assert_eq!(store.state().orgs.checks.len(), 1);
    assert_eq!(
        acting_role(&store, &id, &head).await.unwrap(),
        Some(OrgRole::Owner)
    );
    // A second check of the same organisation changes nothing.
    assert!(matches!(
        check(&store, &id, 2).await,
        CheckOutcome::Skipped(_)
    ));
}

#[tokio::test]
async fn only_confirmed_citizens_with_a_verified_inn_register() {
    let (service, store, _) = service();
    let inn = organisation_inn("770100002");
    let standard = citizen(&store, "standard", STANDARD, &head_inn_of(&inn));
    let err = service
        .register(&standard, company(&inn), email(), now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, AppError::LevelRequired(AccountLevel::Confirmed)),
        "{err:?}"
    );
    let unverified = citizen(&store, "unverified", CONFIRMED, &head_inn_of(&inn));
    store
        .state()
        .profiles
        .get_mut(&unverified)
        .unwrap()
        .profile
        .statuses
        .remove("inn");
    let err = service
        .register(&unverified, company(&inn), email(), now())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::PersonalInnRequired), "{err:?}");
    assert!(store.state().orgs.organisations.is_empty());
}

#[tokio::test]
async fn a_citizen_the_register_does_not_name_is_refused_and_the_inn_is_freed() {
    let (service, store, _) = service();
    let inn = organisation_inn("770100003");
    let other = citizen(&store, "other", CONFIRMED, &organisation_inn_person());
    let org = service
        .register(&other, company(&inn), email(), now())
        .await
        .unwrap();
    // Meanwhile the INN is taken: a second request is a conflict naming nobody.
    let head = citizen(&store, "head", CONFIRMED, &head_inn_of(&inn));
    let err = service
        .register(&head, company(&inn), email(), now())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::OrganisationTaken), "{err:?}");
    assert_eq!(
        check(&store, &org.id, 1).await,
        CheckOutcome::Refused(refusal::NOT_THE_HEAD)
    );
    let (refused, member) = service.get(&other, &org.id).await.unwrap();
    assert_eq!(refused.reason.as_deref(), Some(refusal::NOT_THE_HEAD));
    assert!(!member.active);
    assert_eq!(acting_role(&store, &org.id, &other).await.unwrap(), None);
    // The real head may register it now.
    service
        .register(&head, company(&inn), email(), now())
        .await
        .unwrap();
}

fn organisation_inn_person() -> String {
    crate::adapters::business_registry::personal_inn("5001007322")
}

#[tokio::test]
async fn registers_that_never_answer_refuse_after_the_last_attempt() {
    let (service, store, _) = service();
    let inn = organisation_inn("999600001");
    let head = citizen(&store, "head", CONFIRMED, &head_inn_of(&inn));
    let org = service
        .register(&head, company(&inn), email(), now())
        .await
        .unwrap();
    let registry = SandboxBusinessRegistry::new(Duration::ZERO);
    let check_of = OrganisationCheck {
        organisation_id: org.id.clone(),
    };
    assert!(run_check(&store, &registry, &check_of, 1, now())
        .await
        .is_err());
    assert_eq!(
        check(&store, &org.id, REGISTRY_ATTEMPTS).await,
        CheckOutcome::Refused(refusal::UNAVAILABLE)
    );
}

/// The owner `by` (owner, organisation) invites `member` as an accountant by SMS to the
/// member's phone; the code that went there.
async fn invite_by_sms(
    service: &Service,
    store: &MemStore,
    outbox: &Outbox,
    by: (&AccountId, &OrganisationId),
    member: &AccountId,
) -> String {
    let phone = store.state().accounts[member].phone.clone();
    let to = Destination::Phone(Phone::parse("phone", &phone).unwrap());
    let invitation = service
        .invite(by.0, by.1, to, OrgRole::Accountant, now())
        .await
        .unwrap();
    assert_eq!(invitation.role, OrgRole::Accountant);
    let sms = outbox.sent().pop().unwrap();
    assert_eq!(sms.to, phone);
    sms.text.split("Код подтверждения: ").nth(1).unwrap()[..6].to_string()
}

#[tokio::test]
async fn an_invited_accountant_joins_with_the_code_and_a_viewer_cannot_invite() {
    let (service, store, outbox) = service();
    let (head, id) = registered(&service, &store).await;
    let accountant = citizen(&store, "accountant-1", SIMPLIFIED, "500100732259");
    let code = &invite_by_sms(&service, &store, &outbox, (&head, &id), &accountant).await;
    // The code is someone else's to use.
    let stranger = citizen(&store, "stranger", SIMPLIFIED, "500100732259");
    assert!(matches!(
        service.accept(&stranger, code, now()).await.unwrap_err(),
        AppError::InvitationCodeMismatch
    ));
    let (org, member) = service.accept(&accountant, code, now()).await.unwrap();
    assert_eq!(org.id, id);
    assert_eq!(member.role, OrgRole::Accountant);
    assert_eq!(service.members(&accountant, &id).await.unwrap().len(), 2);
    // An accountant manages no members.
    let to = Destination::Email(Email::parse("e", "x@example.ru").unwrap());
    let err = service
        .invite(&accountant, &id, to.clone(), OrgRole::Viewer, now())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::RoleForbids), "{err:?}");
    // A stranger is told there is no such organisation.
    let err = service
        .invite(&stranger, &id, to, OrgRole::Viewer, now())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::NotFound("organisation")), "{err:?}");
    assert!(matches!(
        service.get(&stranger, &id).await.unwrap_err(),
        AppError::NotFound("organisation")
    ));
}

#[tokio::test]
async fn wrong_codes_are_counted_before_they_are_checked() {
    let (service, store, _) = service();
    let guesser = citizen(&store, "guesser", SIMPLIFIED, "500100732259");
    for _ in 0..ACCEPT_MAX_ATTEMPTS {
        assert!(matches!(
            service.accept(&guesser, "000000", now()).await.unwrap_err(),
            AppError::InvitationCodeMismatch
        ));
    }
    assert!(matches!(
        service.accept(&guesser, "000000", now()).await.unwrap_err(),
        AppError::InvitationAttemptsLimited { .. }
    ));
    let later = now() + time::Duration::seconds(ACCEPT_WINDOW_SECS);
    assert!(matches!(
        service.accept(&guesser, "000000", later).await.unwrap_err(),
        AppError::InvitationCodeMismatch
    ));
}

#[tokio::test]
async fn the_last_owner_stays_and_the_audit_tells_it_all() {
    let (service, store, _) = service();
    let (head, id) = registered(&service, &store).await;
    let err = service
        .change_role(&head, &id, &head, OrgRole::Viewer, now())
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::LastOwner), "{err:?}");
    let err = service.remove(&head, &id, &head, now()).await.unwrap_err();
    assert!(matches!(err, AppError::LastOwner), "{err:?}");
    let page = service.audit(&head, &id, None, 1).await.unwrap();
    assert_eq!(page.entries[0].action, "registered");
    let rest = service
        .audit(&head, &id, page.next.as_deref(), 10)
        .await
        .unwrap();
    assert_eq!(rest.entries[0].action, "requested");
    assert_eq!(rest.next, None);
}

#[test]
fn the_verification_queue_tells_organisations_from_documents() {
    let org: VerificationMessage =
        serde_json::from_str(r#"{"organisation_id": "org_0123456789abcdef0123456789abcdef"}"#)
            .unwrap();
    assert!(matches!(org, VerificationMessage::Organisation(_)));
    let job: VerificationMessage = serde_json::from_str(
        r#"{"account_id": "0b6f3d2c-5e1a-4f7b-9c8d-1a2b3c4d5e6f", "check": "snils", "submission": "s1", "version": 1}"#,
    )
    .unwrap();
    assert!(matches!(job, VerificationMessage::Document(_)));
}

#[tokio::test]
async fn an_organisation_sends_at_most_its_days_invitations() {
    let (service, store, outbox) = service();
    let (head, id) = registered(&service, &store).await;
    let sent_before = outbox.sent().len();
    let to = || Destination::Email(Email::parse("e", "someone@example.ru").unwrap());
    for _ in 0..INVITATIONS_PER_DAY {
        service
            .invite(&head, &id, to(), OrgRole::Viewer, now())
            .await
            .unwrap();
    }
    let err = service
        .invite(&head, &id, to(), OrgRole::Viewer, now())
        .await
        .unwrap_err();
    let AppError::InvitationLimit { retry_after_secs } = err else {
        panic!("expected the day's limit, got {err:?}");
    };
    let day = InvitationDay::of(now().unix_timestamp());
    assert_eq!(
        i64::try_from(retry_after_secs).unwrap(),
        day.end - now().unix_timestamp()
    );
    // Nothing more went out, and the refused one is not in the log.
    let limit = usize::try_from(INVITATIONS_PER_DAY).unwrap();
    assert_eq!(outbox.sent().len(), sent_before + limit);
    let invited = store.state().orgs.audit[&id]
        .iter()
        .filter(|e| e.action == "invited")
        .count();
    assert_eq!(invited, limit);
    // The next day counts afresh.
    let tomorrow = now() + time::Duration::days(1);
    service
        .invite(&head, &id, to(), OrgRole::Viewer, tomorrow)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_leaving_account_goes_from_every_organisation_but_never_the_last_owner() {
    let (service, store, outbox) = service();
    let (head, id) = registered(&service, &store).await;
    let member = citizen(&store, "accountant-2", SIMPLIFIED, "500100732259");
    let code = invite_by_sms(&service, &store, &outbox, (&head, &id), &member).await;
    service.accept(&member, &code, now()).await.unwrap();

    // The last owner is refused, and nobody's membership changed.
    let err = leave_every_organisation(&store, &head, 1_800_000_100)
        .await
        .unwrap_err();
    assert!(matches!(err, AppError::LastOwner), "{err:?}");
    assert_eq!(service.members(&head, &id).await.unwrap().len(), 2);

    // A member goes, and the log says so.
    leave_every_organisation(&store, &member, 1_800_000_200)
        .await
        .unwrap();
    assert_eq!(service.members(&head, &id).await.unwrap().len(), 1);
    let page = service.audit(&head, &id, None, 1).await.unwrap();
    assert_eq!(page.entries[0].action, "left");
    assert_eq!(page.entries[0].member.as_ref(), Some(&member));
}
