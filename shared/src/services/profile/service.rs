//! The profile as the API reads and edits it: a PATCH marks checked fields `pending` and
//! queues their registry checks before the write.

use super::*;
use crate::access::{self, Capability};
use crate::domain::CredentialStrength;

/// A profile as the API shows it.
#[derive(Debug, Clone)]
pub struct ProfileView {
    pub profile: Profile,
    pub version: u64,
    pub level: AccountLevel,
    pub email: String,
    pub phone: String,
}

pub struct ProfileService<S, Q> {
    store: S,
    queue: Q,
    hasher: Hasher,
    deadline_secs: i64,
}

/// How long a check may stay pending before the sweeper steps in, unless configured
/// (`VERIFICATION_DEADLINE_SECONDS`).
pub const DEFAULT_DEADLINE_SECS: i64 = 900;

impl<S: ProfileStore + Sync, Q: JobQueue + Sync> ProfileService<S, Q> {
    pub fn new(store: S, queue: Q, hasher: Hasher) -> Self {
        Self {
            store,
            queue,
            hasher,
            deadline_secs: DEFAULT_DEADLINE_SECS,
        }
    }

    /// Checks it queues are due this many seconds later.
    pub fn with_deadline(mut self, deadline_secs: i64) -> Self {
        self.deadline_secs = deadline_secs;
        self
    }

    async fn load(
        &self,
        account_id: &AccountId,
    ) -> Result<(StoredAccount, StoredProfile), AppError> {
        let (account, mut stored) = self
            .store
            .load_profile(account_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if stored.version == 0 {
            stored.profile = Profile::from_account(&account);
        }
        Ok((account, stored))
    }

    pub async fn get(&self, account_id: &AccountId) -> Result<ProfileView, AppError> {
        let (account, stored) = self.load(account_id).await?;
        Ok(view(account, stored))
    }

    /// Applies a PATCH written against `if_match`, the version the client last read, in
    /// a session of credentials `strength`.
    pub async fn patch(
        &self,
        account_id: &AccountId,
        if_match: u64,
        patch: &ProfilePatch,
        strength: CredentialStrength,
        event: SecurityEvent,
        now: OffsetDateTime,
    ) -> Result<ProfileView, AppError> {
        let (account, stored) = self.load(account_id).await?;
        if stored.version != if_match {
            return Err(AppError::VersionMismatch {
                current: stored.version,
            });
        }
        let before = &stored.profile;
        let mut next = patch.apply(before);
        if let Some(passport) = &next.documents.passport {
            // The passport is checked against the birth date it will be stored with.
            let issue = parse_date("/documents/passport/issue_date", &passport.issue_date)
                .map_err(|e| AppError::Validation(vec![e]))?;
            let born = next
                .personal
                .birth_date
                .as_deref()
                .and_then(|d| parse_date("", d).ok());
            check_passport_issue_date("/documents/passport/issue_date", issue, born, now.date())
                .map_err(|e| AppError::Validation(vec![e]))?;
        }
        let errors = check_other_documents(&patch.other, before, &next, now.date());
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        // What the PATCH changed, and what it checks: the same, plus failed documents
        // saved again unchanged. A value saved again is no edit: it releases no login,
        // drops no level and forgets no confirmation.
        let edited = changed_fields(before, &next);
        // Changing what the registries verified and the level rests on is the access
        // matrix's `VerifiedData`, asked before anything is queued or written. A field
        // being checked counts too: right after an edit, the rest of the passport's
        // fields are pending, and the level would come back on whatever was left there.
        if edited
            .iter()
            .any(|f| STANDARD_LEVEL_FIELDS.contains(f) && before.verified_or_checking(f))
        {
            let needed = access::requirement(Capability::VerifiedData);
            needed.check(access::Standing {
                level: account.level,
                strength,
            })?;
        }
        let mut changed = edited.clone();
        // A document whose check failed is checked again when it is saved again, even
        // unchanged: that is how the citizen retries.
        for (field, saved) in [
            ("snils", matches!(patch.snils, Change::Set(_))),
            ("passport", matches!(patch.passport, Change::Set(_))),
            ("inn", matches!(patch.inn, Change::Set(_))),
            (
                "international_passport",
                matches!(patch.other.international_passport, Change::Set(_)),
            ),
        ] {
            let failed = before
                .statuses
                .get(field)
                .is_some_and(|s| s.state == State::Failed);
            if saved && failed && !changed.contains(&field) {
                changed.push(field);
            }
        }
        let due = now.unix_timestamp() + self.deadline_secs;
        let submission = uuid::Uuid::new_v4().to_string();
        let version = stored.version + 1;
        let mut jobs = Vec::new();
        for field in &changed {
            // A changed field loses its old verdict; a check below may make it pending.
            next.statuses.remove(*field);
        }
        for check in Check::ALL {
            let document_present = next.filled(check.document());
            let touched = check.inputs().iter().any(|f| changed.contains(f));
            if document_present && touched {
                // Only what is filled in can be confirmed by the check.
                let filled: Vec<&str> = check
                    .decides()
                    .iter()
                    .copied()
                    .filter(|f| next.filled(f))
                    .collect();
                for field in filled {
                    next.statuses
                        .insert(field.to_string(), FieldStatus::pending(&submission, due));
                }
                jobs.push(VerificationJob {
                    account_id: account_id.clone(),
                    check,
                    submission: submission.clone(),
                    version,
                    child: None,
                });
            }
        }
        // A verified document that changed no longer finds bills by its old value.
        let (holdings_add, holdings_remove) = next.follow_holdings(before, &self.hasher);
        // The reminders' index follows the documents' due dates.
        let (dues_add, dues_remove) = next.follow_dues(before, &self.hasher);
        let names_changed = changed.contains(&"name");
        let account_names = names_changed.then_some((
            next.personal.last_name.as_str(),
            next.personal.first_name.as_str(),
            next.personal.middle_name.as_deref(),
        ));
        // A SNILS becomes a login only once the registry verified it (the worker claims
        // it), so saving one answers the same whether another account holds it or not.
        let release_login = if edited.contains(&"snils") {
            before
                .documents
                .snils
                .as_deref()
                .map(|s| snils_login_key(&self.hasher, s))
        } else {
            None
        };
        // Jobs first: see the module comment.
        if !jobs.is_empty() {
            self.queue.enqueue(&jobs).await?;
        }
        // The level rests on verified data: an edit of any of it drops the account to
        // simplified until the checks pass again.
        let level_change = (account.level != SIMPLIFIED
            && edited.iter().any(|f| STANDARD_LEVEL_FIELDS.contains(f)))
        .then_some((account.level, SIMPLIFIED));
        let mut events = vec![event];
        if level_change.is_some() {
            events.push(SecurityEvent {
                kind: "level_simplified",
                ..events[0].clone()
            });
        }
        let write = ProfileWrite {
            holdings_add,
            holdings_remove,
            dues_add,
            dues_remove,
            account_id,
            profile: &next,
            expected_version: stored.version,
            account_names,
            claim_login: None,
            release_login,
            level_change,
            // A first profile replaces no earlier data: the confirmation an operator
            // gave an account registered at the desk stands for what they typed.
            clear_confirmation: stored.version > 0
                && account.confirmed_at.is_some()
                && edited.iter().any(|f| IDENTITY_FIELDS.contains(f)),
            events,
        };
        match self.store.write_profile(&write).await? {
            Ok(()) => {}
            Err(ProfileWriteRefusal::Stale) => {
                let current = self
                    .store
                    .load_profile(account_id)
                    .await?
                    .map(|(_, p)| p.version)
                    .unwrap_or_default();
                return Err(AppError::VersionMismatch { current });
            }
            Err(ProfileWriteRefusal::SnilsTaken) => return Err(AppError::SnilsTaken),
        }
        tracing::info!(%account_id, version, checks = jobs.len(), "profile changed");
        let mut account = account;
        if level_change.is_some() {
            account.level = SIMPLIFIED;
        }
        Ok(view(
            account,
            StoredProfile {
                profile: next,
                version,
            },
        ))
    }
}

pub(super) fn view(account: StoredAccount, stored: StoredProfile) -> ProfileView {
    ProfileView {
        profile: stored.profile,
        version: stored.version,
        level: account.level,
        email: account.email,
        phone: account.phone,
    }
}
