use time::Duration;

use super::*;
use crate::adapters::bank_id::{sandbox_id_token, IdTokenClaims, SandboxBankIdVerifier};
use crate::adapters::signature::sandbox_ca::{Authority, Holder};
use crate::adapters::signature::SandboxSignatureVerifier;
use crate::domain::AccountLevel;
use crate::services::profile::{FieldStatus, StoredProfile};
use crate::testing::{MemStore, Outbox};

const SNILS: &str = "11223344595";

struct World {
    store: MemStore,
    outbox: Outbox,
    service: ESignatureService<MemStore, SandboxSignatureVerifier, SandboxBankIdVerifier, Outbox>,
    account: AccountId,
}

/// A standard citizen Пётр Иванов, SNILS [`SNILS`] verified.
fn world() -> World {
    let store = MemStore::new();
    let outbox = Outbox::default();
    let id = AccountId::new();
    let mut account = store.add_account(&id);
    account.level = STANDARD;
    store.state().accounts.insert(id.clone(), account);
    let mut profile = Profile::default();
    profile.personal.last_name = "Иванов".into();
    profile.personal.first_name = "Пётр".into();
    profile.personal.middle_name = Some("Сергеевич".into());
    profile.documents.snils = Some(SNILS.into());
    profile.statuses.insert(
        "snils".into(),
        FieldStatus::decided(State::Verified, "s1", 0),
    );
    store.put_profile(
        &id,
        StoredProfile {
            profile,
            version: 2,
        },
    );
    World {
        service: ESignatureService::new(
            store.clone(),
            Some(SandboxSignatureVerifier::new().unwrap()),
            Some(SandboxBankIdVerifier::new().unwrap()),
            outbox.clone(),
        ),
        store,
        outbox,
        account: id,
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn petr(snils: &str) -> Holder<'_> {
    Holder {
        snils: Some(snils),
        surname: "ИВАНОВ",
        given_name: "Петр Сергеевич",
    }
}

fn sign(holder: &Holder<'_>, challenge: &IssuedSignatureChallenge) -> String {
    let content = base64::engine::general_purpose::STANDARD
        .decode(&challenge.challenge)
        .unwrap();
    let t = now();
    Authority::sandbox()
        .unwrap()
        .issue(holder, t - Duration::hours(1), t + Duration::days(365))
        .unwrap()
        .sign_detached(&content)
        .unwrap()
}

impl World {
    async fn answer(
        &self,
        challenge: &IssuedSignatureChallenge,
        signature: &str,
    ) -> Result<(), AppError> {
        self.service
            .confirm(
                &self.account,
                &challenge.id,
                signature,
                ("10.0.0.1", "test"),
                now(),
            )
            .await
    }

    fn level(&self) -> AccountLevel {
        self.store.state().accounts[&self.account].level
    }
}

fn field_code(result: Result<(), AppError>) -> String {
    match result {
        Err(AppError::Validation(errors)) => {
            assert_eq!(errors[0].field, "/signature");
            errors[0].code.to_string()
        }
        other => panic!("not a field error: {other:?}"),
    }
}

#[tokio::test]
async fn a_signature_naming_the_citizen_confirms_the_account_once() {
    let w = world();
    let challenge = w
        .service
        .challenge(&w.account, ChallengePurpose::Signature, now())
        .await
        .unwrap();
    let signature = sign(&petr(SNILS), &challenge);
    w.answer(&challenge, &signature).await.unwrap();
    assert_eq!(w.level(), CONFIRMED);
    {
        let state = w.store.state();
        assert_eq!(state.signature_confirmations.len(), 1);
        assert!(state.signature_challenges.is_empty());
        assert_eq!(state.events.last().unwrap().kind, "level_confirmed");
        // The inbox keeps what the e-mail and the SMS say.
        let inbox = &state.inbox[&w.account];
        assert_eq!(inbox.len(), 1);
        assert!(inbox.values().all(|m| !m.read
            && m.message.category == crate::services::inbox::MessageCategory::Confirmation));
    }
    let sent = w.outbox.sent();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|m| m.text.contains("подтверждена")));
    // The same answer again: the account is confirmed already.
    assert!(matches!(
        w.answer(&challenge, &signature).await,
        Err(AppError::AlreadyConfirmed)
    ));
}

#[tokio::test]
async fn another_citizens_certificate_confirms_nothing() {
    let w = world();
    let challenge = w
        .service
        .challenge(&w.account, ChallengePurpose::Signature, now())
        .await
        .unwrap();
    let signature = sign(&petr("13875932508"), &challenge);
    assert_eq!(
        field_code(w.answer(&challenge, &signature).await),
        "snils_mismatch"
    );
    let other_name = Holder {
        snils: Some(SNILS),
        surname: "Сидоров",
        given_name: "Петр Сергеевич",
    };
    let signature = sign(&other_name, &challenge);
    assert_eq!(
        field_code(w.answer(&challenge, &signature).await),
        "name_mismatch"
    );
    assert_eq!(w.level(), STANDARD);
}

#[tokio::test]
async fn an_unverified_snils_confirms_nothing() {
    let w = world();
    w.store
        .state()
        .profiles
        .get_mut(&w.account)
        .unwrap()
        .profile
        .statuses
        .clear();
    let challenge = w
        .service
        .challenge(&w.account, ChallengePurpose::Signature, now())
        .await
        .unwrap();
    let signature = sign(&petr(SNILS), &challenge);
    assert_eq!(
        field_code(w.answer(&challenge, &signature).await),
        "snils_mismatch"
    );
}

#[tokio::test]
async fn untrusted_and_expired_certificates_are_refused_and_counted() {
    let w = world();
    let challenge = w
        .service
        .challenge(&w.account, ChallengePurpose::Signature, now())
        .await
        .unwrap();
    let content = base64::engine::general_purpose::STANDARD
        .decode(&challenge.challenge)
        .unwrap();
    let t = now();
    let untrusted = Authority::untrusted("Другой УЦ")
        .unwrap()
        .issue(&petr(SNILS), t - Duration::hours(1), t + Duration::days(1))
        .unwrap()
        .sign_detached(&content)
        .unwrap();
    assert_eq!(
        field_code(w.answer(&challenge, &untrusted).await),
        "certificate_untrusted"
    );
    let expired = Authority::sandbox()
        .unwrap()
        .issue(&petr(SNILS), t - Duration::days(400), t - Duration::days(1))
        .unwrap()
        .sign_detached(&content)
        .unwrap();
    assert_eq!(
        field_code(w.answer(&challenge, &expired).await),
        "certificate_expired"
    );
    assert_eq!(
        field_code(w.answer(&challenge, "не подпись").await),
        "signature_malformed"
    );
    // Two attempts left of five; then the challenge takes no more, even a right one.
    for _ in 0..2 {
        w.answer(&challenge, "x").await.unwrap_err();
    }
    let right = sign(&petr(SNILS), &challenge);
    assert!(matches!(
        w.answer(&challenge, &right).await,
        Err(AppError::SignatureAttemptsExhausted)
    ));
    assert_eq!(w.level(), STANDARD);
}

#[tokio::test]
async fn a_new_challenge_replaces_the_old_and_an_expired_one_is_gone() {
    let w = world();
    let first = w
        .service
        .challenge(&w.account, ChallengePurpose::Signature, now())
        .await
        .unwrap();
    let second = w
        .service
        .challenge(&w.account, ChallengePurpose::Signature, now())
        .await
        .unwrap();
    let signature = sign(&petr(SNILS), &first);
    assert!(matches!(
        w.answer(&first, &signature).await,
        Err(AppError::SignatureChallengeInvalid)
    ));
    let late = now() + CHALLENGE_LIFETIME + Duration::seconds(1);
    let signature = sign(&petr(SNILS), &second);
    assert!(matches!(
        w.service
            .confirm(&w.account, &second.id, &signature, ("10.0.0.1", "t"), late)
            .await,
        Err(AppError::SignatureChallengeInvalid)
    ));
    assert_eq!(w.level(), STANDARD);
}

#[tokio::test]
async fn only_a_standard_account_asks_and_none_without_a_verifier() {
    let w = world();
    w.store.state().accounts.get_mut(&w.account).unwrap().level =
        crate::services::profile::SIMPLIFIED;
    assert!(matches!(
        w.service
            .challenge(&w.account, ChallengePurpose::Signature, now())
            .await,
        Err(AppError::LevelNotStandard)
    ));
    let none: ESignatureService<MemStore, SandboxSignatureVerifier, SandboxBankIdVerifier, Outbox> =
        ESignatureService::new(w.store.clone(), None, None, w.outbox.clone());
    assert!(matches!(
        none.challenge(&w.account, ChallengePurpose::Signature, now())
            .await,
        Err(AppError::SignatureVerificationUnavailable)
    ));
}

#[tokio::test]
async fn the_banks_token_with_the_accounts_nonce_confirms_it() {
    let w = world();
    let challenge = w
        .service
        .challenge(&w.account, ChallengePurpose::BankId, now())
        .await
        .unwrap();
    let petr = ("ИВАНОВ", "Пётр", Some("Сергеевич"));
    let token = |snils: &str, nonce: &str| {
        sandbox_id_token(&IdTokenClaims::sandbox(snils, petr, nonce)).unwrap()
    };
    let confirm = |token: String| {
        let w = &w;
        let id = challenge.id.clone();
        async move {
            w.service
                .confirm_by_bank(&w.account, &id, &token, ("10.0.0.1", "t"), now())
                .await
        }
    };
    // A bank's challenge takes no signature.
    assert!(matches!(
        w.answer(&challenge, "x").await,
        Err(AppError::SignatureChallengeInvalid)
    ));
    match confirm(token(SNILS, "another-nonce")).await {
        Err(AppError::Validation(e)) => assert_eq!(e[0].code, "nonce_mismatch"),
        other => panic!("{other:?}"),
    }
    match confirm(token("13875932508", &challenge.challenge)).await {
        Err(AppError::Validation(e)) => {
            assert_eq!(e[0].field, "/id_token");
            assert_eq!(e[0].code, "snils_mismatch");
        }
        other => panic!("{other:?}"),
    }
    confirm(token(SNILS, &challenge.challenge)).await.unwrap();
    assert_eq!(w.level(), CONFIRMED);
    let sent = w.outbox.sent();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|m| m.text.contains("через банк")),
        "{sent:?}"
    );
}
