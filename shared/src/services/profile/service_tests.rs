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
            .patch(&"a1".into(), version, patch, event, self.clock.now())
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
