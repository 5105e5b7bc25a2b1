//! Verification jobs against the doubles of `crate::testing`: a registry that times out,
//! and decisions that race the citizen's edits.

use super::*;
use crate::json::Change;
use crate::testing::{
    assert_unavailable, profile_edit, test_hasher, Clock, Fault, MemStore, Outbox, Registries,
};

const SNILS: &str = "11223344595";

struct World {
    store: MemStore,
    registries: Registries,
    outbox: Outbox,
    clock: Clock,
    profiles: ProfileService<MemStore, MemStore>,
    service: VerificationService<MemStore, Registries, Outbox>,
}

fn world() -> World {
    let store = MemStore::new();
    store.add_account(&"a1".into());
    let registries = Registries::default();
    let outbox = Outbox::default();
    World {
        profiles: ProfileService::new(store.clone(), store.clone(), test_hasher()),
        service: VerificationService::new(
            store.clone(),
            registries.clone(),
            outbox.clone(),
            test_hasher(),
        ),
        store,
        registries,
        outbox,
        clock: Clock::new(),
    }
}

impl World {
    /// The citizen saves [`SNILS`] against `version`.
    async fn patch_snils(&self, version: u64) -> Result<ProfileView, AppError> {
        let patch = ProfilePatch {
            snils: Change::Set(SNILS.into()),
            ..ProfilePatch::default()
        };
        let event = profile_edit(&"a1".into(), &self.clock);
        self.profiles
            .patch(
                &"a1".into(),
                version,
                &patch,
                crate::domain::CredentialStrength::SecondFactor,
                event,
                self.clock.now(),
            )
            .await
    }

    /// The citizen saves a SNILS; the check it queued.
    async fn save_snils(&self) -> VerificationJob {
        self.patch_snils(self.profile().version).await.unwrap();
        match self.store.state().jobs.pop() {
            Some(job) => job,
            None => panic!("no check queued"),
        }
    }

    /// The citizen saves a SNILS, and its check runs with `edit` of another request
    /// written just before the check's own write; the job and what became of it.
    async fn check_racing(
        &self,
        edit: impl FnOnce(&mut Profile) + Send + 'static,
    ) -> (VerificationJob, JobOutcome) {
        let job = self.save_snils().await;
        self.store.edit_before_next_write(&"a1".into(), edit);
        let outcome = self
            .service
            .process(&job, 1, self.clock.now())
            .await
            .unwrap();
        (job, outcome)
    }

    fn profile(&self) -> StoredProfile {
        self.store.profile(&"a1".into()).unwrap_or(StoredProfile {
            profile: Profile::default(),
            version: 0,
        })
    }

    fn snils_state(&self) -> Option<State> {
        self.profile()
            .profile
            .statuses
            .get("snils")
            .map(|s| s.state)
    }

    fn letters(&self) -> usize {
        self.outbox
            .sent()
            .iter()
            .filter(|m| m.subject.as_deref() == Some(OUTCOME_SUBJECT))
            .count()
    }
}

#[tokio::test]
async fn a_registry_timeout_asks_for_the_job_again_and_decides_nothing() {
    let w = world();
    let job = w.save_snils().await;
    let before = w.profile();
    w.registries.script.fail("check", 1, Fault::Unavailable);
    // An error sends the job back to the queue.
    assert_unavailable(&w.service.process(&job, 1, w.clock.now()).await);
    assert_eq!(w.profile(), before, "still pending, nothing written");
    assert_eq!(w.snils_state(), Some(State::Pending));
    assert_eq!(w.letters(), 0);

    // The queue delivers it again: the registry answers, and the SNILS is decided.
    let applied = w.service.process(&job, 2, w.clock.now()).await.unwrap();
    assert_eq!(applied, JobOutcome::Applied);
    assert_eq!(w.snils_state(), Some(State::Verified));
    assert_eq!(w.letters(), 1);
    let asked: Vec<u32> = w.registries.asked().iter().map(|(_, a)| *a).collect();
    assert_eq!(asked, [1, 2]);

    // A third delivery (the queue's at-least-once) changes nothing and writes no letter.
    let again = w.service.process(&job, 3, w.clock.now()).await.unwrap();
    assert_eq!(again, JobOutcome::Skipped("already decided"));
    assert_eq!(w.letters(), 1);
}

#[tokio::test]
async fn a_decision_racing_a_new_snils_does_not_overwrite_it() {
    let w = world();
    // The citizen saves another SNILS while the registry checks the first one.
    let (job, outcome) = w
        .check_racing(|p| {
            p.documents.snils = Some("11223344696".into());
            p.statuses
                .insert("snils".into(), FieldStatus::pending("s-newer", 0));
        })
        .await;
    assert_eq!(outcome, JobOutcome::Skipped("superseded"));
    let stored = w.profile();
    assert_eq!(
        stored.version,
        job.version + 1,
        "only the racing edit was written"
    );
    assert_eq!(
        stored.profile.documents.snils.as_deref(),
        Some("11223344696")
    );
    let status = &stored.profile.statuses["snils"];
    assert_eq!(
        (status.state, status.submission.as_deref()),
        (State::Pending, Some("s-newer"))
    );
    assert!(w.store.state().logins.is_empty(), "no login claimed");
    assert_eq!(w.letters(), 0);
}

#[tokio::test]
async fn a_decision_losing_the_write_to_another_edit_is_written_on_a_fresh_read() {
    let w = world();
    // An edit of the address lands between the job's read and its write.
    let (job, outcome) = w
        .check_racing(|p| p.addresses.actual = Some("Тверь, ул. Советская, 3".into()))
        .await;
    assert_eq!(outcome, JobOutcome::Applied);
    let stored = w.profile();
    assert_eq!(stored.version, job.version + 2);
    assert_eq!(w.snils_state(), Some(State::Verified));
    assert_eq!(
        stored.profile.addresses.actual.as_deref(),
        Some("Тверь, ул. Советская, 3"),
        "the other edit is kept"
    );
    assert_eq!(
        w.registries.asked().len(),
        1,
        "the answer is reused, not asked again"
    );
    assert_eq!(w.letters(), 1);
}

#[tokio::test]
async fn a_snils_another_account_verified_first_is_rejected_as_a_mismatch() {
    let w = world();
    let job = w.save_snils().await;
    w.store
        .state()
        .logins
        .insert(snils_login_key(&test_hasher(), SNILS), "a2".into());
    let outcome = w.service.process(&job, 1, w.clock.now()).await.unwrap();
    assert_eq!(outcome, JobOutcome::Applied);
    let stored = w.profile();
    assert_eq!(w.snils_state(), Some(State::Rejected));
    assert_eq!(
        stored.profile.statuses["snils"].reason.as_deref(),
        Some(SNILS_HELD_ELSEWHERE)
    );
    assert_eq!(
        stored.profile.documents.snils, None,
        "removed, as any rejected document"
    );
    assert_eq!(
        w.store.state().logins.values().collect::<Vec<_>>(),
        ["a2"],
        "the other account keeps its login"
    );
}

#[tokio::test]
async fn a_job_of_a_patch_that_lost_its_write_race_is_skipped() {
    let w = world();
    // The PATCH queues its check first, then loses the write to another device's edit.
    w.store.edit_before_next_write(&"a1".into(), |p| {
        p.addresses.actual = Some("Тверь, ул. Советская, 3".into());
    });
    let refused = w.patch_snils(0).await;
    assert!(
        matches!(refused, Err(AppError::VersionMismatch { current: 1 })),
        "{refused:?}"
    );
    let Some(job) = w.store.state().jobs.pop() else {
        panic!("the check was queued before the write");
    };
    // Its job finds no submission of its own, at a version as new as its own.
    let outcome = w.service.process(&job, 1, w.clock.now()).await.unwrap();
    assert_eq!(outcome, JobOutcome::Skipped("superseded"));
    assert!(w.registries.asked().is_empty(), "the registry is not asked");
    assert_eq!(w.profile().profile.documents.snils, None);
}
