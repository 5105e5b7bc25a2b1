//! Profile edits against the doubles of `crate::testing`: stale versions, lost write
//! races and a queue that does not take the checks.

use super::*;
use crate::testing::{assert_unavailable, profile_edit, test_hasher, Clock, Fault, MemStore};

const SNILS: &str = "11223344595";

fn address(text: &str) -> ProfilePatch {
    ProfilePatch {
        registration_address: Change::Set(text.into()),
        ..ProfilePatch::default()
    }
}

fn snils() -> ProfilePatch {
    ProfilePatch {
        snils: Change::Set(SNILS.into()),
        ..ProfilePatch::default()
    }
}

struct Edited {
    store: MemStore,
    service: ProfileService<MemStore, MemStore>,
    clock: Clock,
}

/// Account `a1` whose profile was edited twice: version 2.
async fn edited_twice() -> Edited {
    let store = MemStore::new();
    store.add_account(&"a1".into());
    let w = Edited {
        service: ProfileService::new(store.clone(), store.clone(), test_hasher()),
        store,
        clock: Clock::new(),
    };
    for (version, text) in [(0, "Москва, ул. Ленина, 1"), (1, "Москва, ул. Ленина, 2")]
    {
        w.patch(version, &address(text)).await.unwrap();
    }
    w
}

impl Edited {
    async fn patch(&self, version: u64, patch: &ProfilePatch) -> Result<ProfileView, AppError> {
        let event = profile_edit(&"a1".into(), &self.clock);
        self.service
            .patch(
                &"a1".into(),
                version,
                patch,
                crate::domain::CredentialStrength::SecondFactor,
                event,
                self.clock.now(),
            )
            .await
    }
}

/// Fails the test unless `result` is the conflict naming version `current`.
#[track_caller]
fn assert_conflict(result: &Result<ProfileView, AppError>, current: u64) {
    assert!(
        matches!(result, Err(AppError::VersionMismatch { current: c }) if *c == current),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_patch_against_an_old_version_gets_the_conflict_and_writes_nothing() {
    let w = edited_twice().await;
    let before = w.store.profile(&"a1".into());
    let writes = w.store.script.calls("write_profile");
    assert_conflict(&w.patch(1, &snils()).await, 2);
    assert_eq!(w.store.profile(&"a1".into()), before);
    assert_eq!(
        w.store.script.calls("write_profile"),
        writes,
        "no write tried"
    );
    assert!(w.store.state().jobs.is_empty(), "no check queued");
}

#[tokio::test]
async fn a_patch_losing_the_write_race_gets_the_conflict_with_the_winners_version() {
    let w = edited_twice().await;
    // Another device's PATCH is written between this one's read and its write.
    w.store.edit_before_next_write(&"a1".into(), |p| {
        p.addresses.actual = Some("Тверь, ул. Советская, 3".into());
    });
    assert_conflict(&w.patch(2, &snils()).await, 3);
    let Some(stored) = w.store.profile(&"a1".into()) else {
        panic!("profile gone");
    };
    assert_eq!(stored.version, 3);
    assert_eq!(
        stored.profile.addresses.actual.as_deref(),
        Some("Тверь, ул. Советская, 3"),
        "the winner's edit stands"
    );
    assert_eq!(
        stored.profile.documents.snils, None,
        "the loser's is not written"
    );
}

#[tokio::test]
async fn a_patch_whose_checks_cannot_be_queued_writes_nothing() {
    let w = edited_twice().await;
    let before = w.store.profile(&"a1".into());
    w.store.script.fail_next("enqueue", Fault::Unavailable);
    assert_unavailable(&w.patch(2, &snils()).await);
    // A SNILS saved `pending` with no check queued would stay pending: nothing written.
    assert_eq!(w.store.profile(&"a1".into()), before);
}

/// Account `a1` at the standard level whose SNILS the registry verified: version 3.
async fn with_verified_snils() -> Edited {
    let w = edited_twice().await;
    w.patch(2, &snils()).await.unwrap();
    let mut state = w.store.state();
    if let Some(stored) = state.profiles.get_mut(&"a1".into()) {
        stored.profile.statuses.insert(
            "snils".into(),
            FieldStatus::decided(State::Verified, "s1", 0),
        );
    }
    if let Some(account) = state.accounts.get_mut(&"a1".into()) {
        account.level = STANDARD;
    }
    drop(state);
    w
}

#[tokio::test]
async fn changing_verified_data_needs_a_second_factor_and_writes_nothing_without_one() {
    let w = with_verified_snils().await;
    let before = w.store.profile(&"a1".into());
    let jobs = w.store.state().jobs.len();
    let other = ProfilePatch {
        snils: Change::Set("12345678964".into()),
        ..ProfilePatch::default()
    };
    let event = profile_edit(&"a1".into(), &w.clock);
    let refused = w
        .service
        .patch(
            &"a1".into(),
            3,
            &other,
            crate::domain::CredentialStrength::Password,
            event,
            w.clock.now(),
        )
        .await;
    assert!(
        matches!(refused, Err(AppError::SecondFactorRequired)),
        "{refused:?}"
    );
    assert_eq!(w.store.profile(&"a1".into()), before, "nothing written");
    assert_eq!(w.store.state().jobs.len(), jobs, "no check queued");
    assert_eq!(w.store.state().accounts[&"a1".into()].level, STANDARD);
    // Data nobody verified yet is the citizen's to change with the password alone.
    let event = profile_edit(&"a1".into(), &w.clock);
    let address_only = w
        .service
        .patch(
            &"a1".into(),
            3,
            &address("Москва, ул. Ленина, 3"),
            crate::domain::CredentialStrength::Password,
            event,
            w.clock.now(),
        )
        .await;
    assert!(address_only.is_ok(), "{address_only:?}");
    // With a second factor the change goes through, and the level drops until checked.
    let changed = w.patch(4, &other).await.map(|v| v.level);
    assert!(
        matches!(changed, Ok(AccountLevel::Simplified)),
        "{changed:?}"
    );
}
