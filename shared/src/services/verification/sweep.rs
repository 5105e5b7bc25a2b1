//! The sweeper: checks left pending past their deadline are queued again, then failed.

use super::*;

// ------------------------------------------------------------------ the sweeper

/// What the sweeper does with overdue checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// How long a check may stay pending each time it is queued, in seconds.
    pub deadline_secs: i64,
    /// Times an overdue check is queued again before it is marked `failed`.
    pub max_requeues: u32,
    /// Most profiles one run looks at; the rest wait for the next run.
    pub batch: usize,
}

/// What one run of the sweeper did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepRun {
    /// Profiles with an overdue check that were looked at.
    pub profiles: usize,
    /// Checks queued again.
    pub requeued: usize,
    /// Checks marked `failed`.
    pub failed: usize,
    /// Profiles that changed between the read and the write (a check finished, an
    /// edit): left to the next run, which reads them again.
    pub raced: usize,
}

/// Finds checks that stayed pending past their due time (a registry that never answered,
/// a job lost or dead-lettered) and queues them again, up to [`SweepLimits::max_requeues`]
/// times, then marks them `failed` with [`REGISTRY_TIMEOUT`]. Every write is conditional
/// on the profile version read, so a check that finishes at the same moment wins or is
/// read again, and a run repeated changes nothing more.
pub struct VerificationSweeper<S, Q> {
    store: S,
    queue: Q,
    limits: SweepLimits,
}

impl<S: ProfileStore + Sync, Q: JobQueue + Sync> VerificationSweeper<S, Q> {
    pub fn new(store: S, queue: Q, limits: SweepLimits) -> Self {
        Self {
            store,
            queue,
            limits,
        }
    }

    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepRun, AppError> {
        let now = now.unix_timestamp();
        let mut run = SweepRun::default();
        for account_id in self.store.overdue_profiles(now, self.limits.batch).await? {
            run.profiles += 1;
            let Some((_, stored)) = self.store.load_profile(&account_id).await? else {
                continue;
            };
            let (next, jobs, failed) = overdue(&self.limits, &account_id, &stored, now);
            if next == stored.profile {
                continue;
            }
            // Jobs first, as a PATCH queues them: a job whose write lost finds its check
            // decided or still pending, and does the right thing either way.
            if !jobs.is_empty() {
                self.queue.enqueue(&jobs).await?;
            }
            let write = ProfileWrite {
                account_id: &account_id,
                profile: &next,
                expected_version: stored.version,
                account_names: None,
                claim_login: None,
                release_login: None,
                level_change: None,
                clear_confirmation: false,
                events: Vec::new(),
                holdings_add: Vec::new(),
                holdings_remove: Vec::new(),
                dues_add: Vec::new(),
                dues_remove: Vec::new(),
            };
            match self.store.write_profile(&write).await? {
                Ok(()) => {
                    run.requeued += jobs.len();
                    run.failed += failed;
                    tracing::info!(account_id = %account_id, requeued = jobs.len(), failed, "overdue checks swept");
                }
                Err(_) => run.raced += 1,
            }
        }
        Ok(run)
    }
}

/// The profile with its overdue checks queued again or failed, the jobs to queue and how
/// many failed.
pub(super) fn overdue(
    limits: &SweepLimits,
    account_id: &AccountId,
    stored: &StoredProfile,
    now: i64,
) -> (Profile, Vec<VerificationJob>, usize) {
    let mut next = stored.profile.clone();
    let mut jobs = Vec::new();
    let mut failed = 0;
    for check in Check::ALL {
        let document = check.document();
        let Some(status) = next.statuses.get(document).cloned() else {
            continue;
        };
        let Some(submission) = status.submission.clone() else {
            continue;
        };
        if status.state != State::Pending || status.due.unwrap_or(0) > now {
            continue;
        }
        let fields: Vec<&str> = check
            .decides()
            .iter()
            .copied()
            .filter(|f| {
                next.statuses.get(*f).is_some_and(|s| {
                    s.state == State::Pending && s.submission.as_deref() == Some(&submission)
                })
            })
            .collect();
        if status.requeued < limits.max_requeues {
            for field in fields {
                if let Some(s) = next.statuses.get_mut(field) {
                    s.due = Some(now + limits.deadline_secs);
                    s.requeued = status.requeued + 1;
                }
            }
            jobs.push(VerificationJob {
                account_id: account_id.clone(),
                check,
                submission,
                version: stored.version + 1,
                child: None,
            });
        } else {
            // The document stays (unlike a rejection: nobody said it is wrong); the
            // personal data it was compared with go back to unverified.
            for field in fields {
                next.statuses.remove(field);
            }
            next.statuses.insert(
                document.to_string(),
                FieldStatus {
                    code: Some(REGISTRY_TIMEOUT.to_string()),
                    reason: Some(REGISTRY_TIMEOUT_REASON.to_string()),
                    ..FieldStatus::decided(State::Failed, &submission, now)
                },
            );
            failed += 1;
        }
    }
    // A pending field no check covers any more would keep the profile overdue for
    // ever: it goes back to unverified.
    next.statuses
        .retain(|_, s| s.state != State::Pending || s.due.unwrap_or(0) > now);
    (next, jobs, failed)
}
