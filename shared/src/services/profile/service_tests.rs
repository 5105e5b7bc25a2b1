//! Profile edits against the doubles of `crate::testing`: stale versions, lost write
//! races and a queue that does not take the checks.

use super::*;
use crate::testing::{test_hasher, Clock, Fault, MemStore};

const SNILS: &str = "11223344595";

fn event(clock: &Clock) -> SecurityEvent {
    SecurityEvent {
        account_id: "a1".into(),
        kind: "profile_changed",
        at: clock.unix(),
        ip: "203.0.113.7".into(),
        user_agent: "test".into(),
    }
}

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

/// Account `a1` whose profile was edited twice: version 2.
async fn edited_twice() -> (MemStore, ProfileService<MemStore, MemStore>, Clock) {
    let store = MemStore::new();
    store.add_account("a1");
    let service = ProfileService::new(store.clone(), store.clone(), test_hasher());
    let clock = Clock::new();
    for (version, text) in [(0, "Москва, ул. Ленина, 1"), (1, "Москва, ул. Ленина, 2")]
    {
        service
            .patch("a1", version, &address(text), event(&clock), clock.now())
            .await
            .unwrap();
    }
    (store, service, clock)
}

#[tokio::test]
async fn a_patch_against_an_old_version_gets_the_conflict_and_writes_nothing() {
    let (store, service, clock) = edited_twice().await;
    let before = store.profile("a1");
    let writes = store.script.calls("write_profile");
    let refused = service
        .patch("a1", 1, &snils(), event(&clock), clock.now())
        .await;
    assert!(
        matches!(refused, Err(AppError::VersionMismatch { current: 2 })),
        "{refused:?}"
    );
    assert_eq!(store.profile("a1"), before);
    assert_eq!(
        store.script.calls("write_profile"),
        writes,
        "no write tried"
    );
    assert!(store.state().jobs.is_empty(), "no check queued");
}

#[tokio::test]
async fn a_patch_losing_the_write_race_gets_the_conflict_with_the_winners_version() {
    let (store, service, clock) = edited_twice().await;
    // Another device's PATCH is written between this one's read and its write.
    let nth = store.script.calls("write_profile") + 1;
    store.race("write_profile", nth, |state| {
        if let Some(p) = state.profiles.get_mut("a1") {
            p.profile.addresses.actual = Some("Тверь, ул. Советская, 3".into());
            p.version += 1;
        }
    });
    let refused = service
        .patch("a1", 2, &snils(), event(&clock), clock.now())
        .await;
    assert!(
        matches!(refused, Err(AppError::VersionMismatch { current: 3 })),
        "{refused:?}"
    );
    let Some(stored) = store.profile("a1") else {
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
    let (store, service, clock) = edited_twice().await;
    let before = store.profile("a1");
    store.script.fail_next("enqueue", Fault::Unavailable);
    let failed = service
        .patch("a1", 2, &snils(), event(&clock), clock.now())
        .await;
    assert!(
        matches!(failed, Err(AppError::StoreUnavailable(_))),
        "{failed:?}"
    );
    // A SNILS saved `pending` with no check queued would stay pending: nothing written.
    assert_eq!(store.profile("a1"), before);
}
