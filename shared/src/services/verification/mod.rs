//! The jobs that check a profile's documents against federal registries, and the sweeper
//! that finds checks left pending.
//!
//! - A job carries one [`Check`] of one submission (one PATCH); its answer is recorded
//!   only while the fields it covers are still those of that submission.
//! - Children's checks ask the civil registry for the birth record (see
//!   [`crate::services::household`]).
//! - A verified document may change what finds the citizen's bills: the holder index
//!   follows.

use time::OffsetDateTime;

use crate::crypto::Hasher;
use crate::domain::{AccountId, AccountLevel, ChildId, Email, Phone};
use crate::error::AppError;
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind, VerificationOutcome};
use crate::redact::Secret;
use crate::services::codes::Notifier;
use crate::services::household::holdings::sync_holdings;
use crate::services::household::{
    HouseholdStore, LinkDecision, LinkState, LinkVerdict, SnilsCheck, SnilsSettlement,
    SnilsVerdict, NOT_A_PARENT,
};
use crate::services::identity::{SecurityEvent, StoredAccount};
use crate::services::notices::NoticeStore;
use crate::services::profile::*;
use crate::services::snils_login_key;

mod sweep;
pub use sweep::*;

// ------------------------------------------------------------------ verification

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The answer was recorded.
    Applied,
    /// Nothing to do: already decided, or a newer edit replaced what it was for.
    Skipped(&'static str),
}

/// Deliveries after which a job whose profile write never appeared is given up.
const ORPHAN_ATTEMPTS: u32 = 3;

/// Times a child job decides its link again on a fresh read of the record when another
/// parent's job changed the record first.
const DECIDE_ATTEMPTS: usize = 3;
/// Times a job re-reads and retries when an edit lands between its read and its write.
const WRITE_RACE_RETRIES: usize = 3;

pub struct VerificationService<S, R, M> {
    store: S,
    registry: R,
    mailer: M,
    hasher: Hasher,
    writing: AccountLocks,
}

/// One lock per account, for the jobs of one process. The checks of one submission
/// (SNILS, passport, INN) arrive in the same batch and would otherwise race to write the
/// same profile, each loss costing a transaction and a re-read.
#[derive(Default)]
struct AccountLocks {
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl AccountLocks {
    async fn lock(&self, account_id: &AccountId) -> tokio::sync::OwnedMutexGuard<()> {
        self.entry(account_id).lock_owned().await
    }

    /// The account's lock if nobody holds it now.
    fn try_lock(&self, account_id: &AccountId) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.entry(account_id).try_lock_owned().ok()
    }

    fn entry(&self, account_id: &AccountId) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Forget the locks nobody holds once there are many.
        if locks.len() > 1_000 {
            locks.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
        }
        locks.entry(account_id.to_string()).or_default().clone()
    }
}

impl<S, R, M> VerificationService<S, R, M>
where
    S: ProfileStore + HouseholdStore + NoticeStore + crate::services::inbox::InboxStore + Sync,
    R: Registry + CivilRegistry + Sync,
    M: Notifier + Sync,
{
    pub fn new(store: S, registry: R, mailer: M, hasher: Hasher) -> Self {
        Self {
            store,
            registry,
            mailer,
            hasher,
            writing: AccountLocks::default(),
        }
    }

    /// Runs one job. `Err` asks for the job again later (a registry or store that did not
    /// answer, or a profile write not visible yet).
    pub async fn process(
        &self,
        job: &VerificationJob,
        attempt: u32,
        now: OffsetDateTime,
    ) -> Result<JobOutcome, AppError> {
        if let Some(child) = &job.child {
            return self.process_child(job, child, attempt).await;
        }
        let mut answer: Option<RegistryAnswer> = None;
        let mut taken_elsewhere = false;
        // Held from the registry's answer to the end of the job.
        let mut _writing = None;
        // One more round than retries: the registry's answer is followed by a fresh read.
        for _ in 0..=WRITE_RACE_RETRIES {
            let Some((account, stored)) = self.store.load_profile(&job.account_id).await? else {
                return Ok(JobOutcome::Skipped("account gone"));
            };
            let profile = &stored.profile;
            let document = job.check.document();
            let status = profile.statuses.get(document);
            if status.and_then(|s| s.submission.as_deref()) != Some(job.submission.as_str()) {
                if stored.version < job.version && attempt < ORPHAN_ATTEMPTS {
                    return Err(AppError::StoreUnavailable(
                        "the edit that queued this job is not visible yet".into(),
                    ));
                }
                return Ok(JobOutcome::Skipped("superseded"));
            }
            if status.is_some_and(|s| s.state != State::Pending) {
                return Ok(JobOutcome::Skipped("already decided"));
            }
            let request = registry_request(job.check, profile).ok_or(AppError::Internal(
                "pending check without its document".into(),
            ))?;
            // Asked once per delivery; a lost write race reuses the answer.
            let mut decided = match &answer {
                Some(a) => a.clone(),
                None => {
                    let a = self.registry.check(&request, attempt).await.map_err(|e| {
                        verification_counted(job.check, VerificationOutcome::Retry);
                        AppError::StoreUnavailable(e.to_string())
                    })?;
                    answer = Some(a.clone());
                    // Registries are asked concurrently; the account's profile is
                    // written by one job at a time. A job that waited for the lock reads
                    // again (the job before it wrote); one that did not writes from the
                    // read it asked with, saving a round trip: a write it missed fails the
                    // version condition and sends it round again.
                    match self.writing.try_lock(&job.account_id) {
                        Some(guard) => {
                            _writing = Some(guard);
                            a
                        }
                        None => {
                            _writing = Some(self.writing.lock(&job.account_id).await);
                            continue;
                        }
                    }
                }
            };
            // A verified SNILS becomes the account's login, unless another account's
            // verified SNILS login holds it: then it is rejected like any mismatch.
            if matches!(decided, RegistryAnswer::Verified { .. })
                && job.check == Check::Snils
                && taken_elsewhere
            {
                decided = RegistryAnswer::Rejected {
                    source: "pension_fund",
                    reason: SNILS_HELD_ELSEWHERE.into(),
                };
            }
            let next = self.decide(job, &account, &stored, &decided, now);
            let notify = !next.submission_pending(&job.submission)
                && !stored.profile.notified.contains(&job.submission);
            let mut next = next;
            if notify {
                next.remember_notified(&job.submission);
            }
            let level_change = standard_reached(&account, &next).then(|| lifted_level(&account));
            let mut events = Vec::new();
            if let Some((_, to)) = level_change {
                events.push(SecurityEvent {
                    account_id: account.id.clone(),
                    kind: if to == CONFIRMED {
                        "level_confirmed"
                    } else {
                        "level_standard"
                    },
                    at: now.unix_timestamp(),
                    ip: String::new(),
                    user_agent: String::new(),
                });
            }
            let release_login = match (&decided, job.check) {
                (RegistryAnswer::Rejected { .. }, Check::Snils) => stored
                    .profile
                    .documents
                    .snils
                    .as_deref()
                    .map(|s| snils_login_key(&self.hasher, s)),
                _ => None,
            };
            let claim_login = match (&decided, job.check) {
                (RegistryAnswer::Verified { .. }, Check::Snils) => next
                    .documents
                    .snils
                    .as_deref()
                    .map(|s| snils_login_key(&self.hasher, s)),
                _ => None,
            };
            // The holder index follows in the same transaction: a verified document finds
            // the citizen's bills from now on, a rejected one no longer does.
            let (holdings_add, holdings_remove) =
                next.follow_holdings(&stored.profile, &self.hasher);
            // A rejected document leaves the reminders' index with the profile.
            let (dues_add, dues_remove) = next.follow_dues(&stored.profile, &self.hasher);
            let profile_write = ProfileWrite {
                holdings_add,
                holdings_remove,
                dues_add,
                dues_remove,
                account_id: &job.account_id,
                profile: &next,
                expected_version: stored.version,
                account_names: None,
                claim_login,
                release_login,
                level_change,
                clear_confirmation: false,
                events,
            };
            match self.store.write_profile(&profile_write).await? {
                Ok(()) => {
                    tracing::info!(
                        account_id = %job.account_id,
                        check = job.check.as_str(),
                        verified = matches!(decided, RegistryAnswer::Verified { .. }),
                        "verification recorded"
                    );
                    verification_counted(
                        job.check,
                        match decided {
                            RegistryAnswer::Verified { .. } => VerificationOutcome::Verified,
                            RegistryAnswer::Rejected { .. } => VerificationOutcome::Rejected,
                        },
                    );
                    if notify {
                        self.send_outcome(
                            &account,
                            &next,
                            &job.submission,
                            level_change.map(|(_, to)| to),
                        )
                        .await;
                    }
                    return Ok(JobOutcome::Applied);
                }
                Err(ProfileWriteRefusal::Stale) => continue,
                Err(ProfileWriteRefusal::SnilsTaken) => {
                    taken_elsewhere = true;
                    continue;
                }
            }
        }
        Err(AppError::StoreUnavailable(
            "profile kept changing under the verification".into(),
        ))
    }

    /// A child job: the citizen's pending link is decided by whether the birth record
    /// names the citizen (by their verified SNILS) as a parent, and a pending SNILS of the
    /// child by whether it is the one on the record. Every parent is told of a SNILS
    /// decision; the citizen of their link's.
    async fn process_child(
        &self,
        job: &VerificationJob,
        child_id: &ChildId,
        attempt: u32,
    ) -> Result<JobOutcome, AppError> {
        let Some(link) = self
            .store
            .child_links(&job.account_id)
            .await?
            .into_iter()
            .find(|l| l.id == *child_id)
        else {
            if attempt < ORPHAN_ATTEMPTS {
                return Err(AppError::StoreUnavailable(
                    "the link that queued this job is not visible yet".into(),
                ));
            }
            return Ok(JobOutcome::Skipped("link gone"));
        };
        let Some(mut record) = self.store.child(child_id).await? else {
            return Ok(JobOutcome::Skipped("child gone"));
        };
        let link_pending = link.state == LinkState::Pending && link.submission == job.submission;
        let snils_pending = matches!(&record.snils, SnilsCheck::Pending { submission } if *submission == job.submission);
        if !link_pending && !snils_pending {
            return Ok(JobOutcome::Skipped("superseded"));
        }
        let certificate = if link_pending {
            link.claim.birth_certificate.clone()
        } else {
            record.child.birth_certificate.clone()
        };
        let birth = self
            .registry
            .birth_record(&certificate, attempt)
            .await
            .map_err(|e| {
                verification_counted(Check::BirthRecord, VerificationOutcome::Retry);
                AppError::StoreUnavailable(e.to_string())
            })?;
        let Some((account, stored)) = self.store.load_profile(&job.account_id).await? else {
            return Ok(JobOutcome::Skipped("account gone"));
        };
        let parent = stored.profile.is_verified("snils")
            && birth.as_ref().is_some_and(|b| {
                stored
                    .profile
                    .documents
                    .snils
                    .as_ref()
                    .is_some_and(|own| b.parents_snils.contains(own))
            });
        let mut touched = vec![job.account_id.clone()];
        if link_pending {
            // Both parents' jobs for one child often run side by side: when the other
            // parent was confirmed first meanwhile, the record is read again and the link
            // decided anew at once, rather than minutes later by the queue's retry.
            let mut decided = false;
            for _ in 0..DECIDE_ATTEMPTS {
                let verdict = if parent {
                    LinkVerdict::Verified {
                        first: record.verified_parents.is_empty(),
                        claim: link.claim.clone(),
                    }
                } else {
                    LinkVerdict::Rejected {
                        reason: NOT_A_PARENT.to_string(),
                    }
                };
                if self
                    .store
                    .decide_link(&LinkDecision {
                        account_id: &job.account_id,
                        link: &link,
                        verdict: &verdict,
                    })
                    .await?
                {
                    decided = true;
                    break;
                }
                let Some(fresh) = self.store.child(child_id).await? else {
                    return Ok(JobOutcome::Skipped("child gone"));
                };
                record = fresh;
            }
            if !decided {
                return Err(AppError::StoreUnavailable(
                    "the child record changed under the check".into(),
                ));
            }
            tracing::info!(account_id = %job.account_id, verified = parent, "child link decided");
            verification_counted(Check::BirthRecord, outcome_of(parent));
            let text = if parent {
                format!(
                    "Родство подтверждено: ребёнок {} добавлен в ваш профиль.",
                    link.claim.first_name
                )
            } else {
                format!(
                    "Ребёнок {} не добавлен: {}. Проверьте свидетельство о рождении и данные своего профиля (СНИЛС должен быть подтверждён).",
                    link.claim.first_name, NOT_A_PARENT
                )
            };
            self.tell(&account, CHILD_SUBJECT, text).await;
        }
        // The SNILS is decided on the record as it is now (the first parent's data may
        // just have replaced it), and only for a confirmed parent.
        let Some(record) = self.store.child(child_id).await? else {
            return Ok(JobOutcome::Applied);
        };
        let is_parent = record.verified_parents.contains(&job.account_id);
        if let (true, SnilsCheck::Pending { submission }) = (is_parent, &record.snils) {
            if *submission == job.submission {
                let verified = match (&birth, &record.child.snils) {
                    (Some(b), Some(snils)) => b.child_snils.as_ref() == Some(snils),
                    _ => false,
                };
                let mut child = record.child.clone();
                if !verified {
                    child.snils = None;
                }
                if self
                    .store
                    .settle_child_snils(&SnilsSettlement {
                        id: child_id,
                        submission,
                        verdict: if verified {
                            SnilsVerdict::Verified
                        } else {
                            SnilsVerdict::Rejected {
                                without_snils: &child,
                            }
                        },
                    })
                    .await?
                {
                    verification_counted(Check::BirthRecord, outcome_of(verified));
                    let text = if verified {
                        format!(
                            "СНИЛС ребёнка {} указан одним из родителей и подтверждён записью акта о рождении.",
                            record.child.first_name
                        )
                    } else {
                        format!(
                            "СНИЛС ребёнка {} указан одним из родителей, но не совпал с записью акта о рождении и удалён.",
                            record.child.first_name
                        )
                    };
                    for parent in &record.verified_parents {
                        if let Some((other, _)) = self.store.load_profile(parent).await? {
                            self.tell(&other, CHILD_SUBJECT, text.clone()).await;
                        }
                    }
                }
            }
        }
        touched.extend(record.verified_parents.iter().cloned());
        touched.sort();
        touched.dedup();
        sync_holdings(&self.store, &self.hasher, &touched).await;
        Ok(JobOutcome::Applied)
    }

    /// An e-mail to the citizen; a failure is logged, the decision stays.
    async fn tell(&self, account: &StoredAccount, subject: &str, text: String) {
        crate::services::inbox::keep_verification_outcome(
            &self.store,
            &account.id,
            subject,
            &text,
            None,
        )
        .await;
        if let Ok(email) = Email::parse("email", &account.email) {
            match self
                .mailer
                .send_email(&email, subject, &Secret::new(text))
                .await
            {
                Ok(()) => verification_notice_sent(NoticeChannel::Email),
                Err(e) => {
                    tracing::warn!(account_id = %account.id, error = %e, "child check e-mail not sent")
                }
            }
        }
    }

    /// The profile with the registry's answer recorded.
    fn decide(
        &self,
        job: &VerificationJob,
        _account: &StoredAccount,
        stored: &StoredProfile,
        answer: &RegistryAnswer,
        now: OffsetDateTime,
    ) -> Profile {
        let mut next = stored.profile.clone();
        let at = now.unix_timestamp();
        match answer {
            RegistryAnswer::Verified { source } => {
                for field in job.check.decides() {
                    let pending_here = next.statuses.get(*field).is_some_and(|s| {
                        s.state == State::Pending
                            && s.submission.as_deref() == Some(&job.submission)
                    });
                    if pending_here {
                        next.statuses.insert(
                            field.to_string(),
                            FieldStatus {
                                source: Some(source.to_string()),
                                ..FieldStatus::decided(State::Verified, &job.submission, at)
                            },
                        );
                    }
                }
            }
            RegistryAnswer::Rejected { source, reason } => {
                // The document is removed, as on mos.ru, and the reason kept; personal
                // data it was compared with goes back to unverified.
                let document = job.check.document();
                match job.check {
                    Check::Snils => next.documents.snils = None,
                    Check::Passport => next.documents.passport = None,
                    Check::Inn => next.documents.inn = None,
                    Check::InternationalPassport => next.documents.international_passport = None,
                    Check::BirthRecord => {}
                }
                next.statuses.insert(
                    document.to_string(),
                    FieldStatus {
                        source: Some(source.to_string()),
                        reason: Some(reason.clone()),
                        ..FieldStatus::decided(State::Rejected, &job.submission, at)
                    },
                );
                for field in job.check.decides().iter().filter(|f| **f != document) {
                    let pending_here = next.statuses.get(*field).is_some_and(|s| {
                        s.state == State::Pending
                            && s.submission.as_deref() == Some(&job.submission)
                    });
                    if pending_here {
                        next.statuses.remove(*field);
                    }
                }
            }
        }
        next
    }

    async fn send_outcome(
        &self,
        account: &StoredAccount,
        profile: &Profile,
        submission: &str,
        lifted_to: Option<AccountLevel>,
    ) {
        let mut lines = vec!["Проверка данных профиля завершена.".to_string()];
        for check in Check::ALL {
            let Some(status) = profile.statuses.get(check.document()) else {
                continue;
            };
            if status.submission.as_deref() != Some(submission) {
                continue;
            }
            match status.state {
                State::Verified => lines.push(format!("{}: подтверждён.", check.title())),
                State::Rejected => lines.push(format!(
                    "{}: не подтверждён — {}. Данные удалены из профиля, введите их заново.",
                    check.title(),
                    status.reason.as_deref().unwrap_or("причина не указана")
                )),
                _ => {}
            }
        }
        match lifted_to {
            Some(CONFIRMED) => lines.push("Ваша учётная запись снова подтверждённая.".into()),
            Some(_) => lines.push("Ваша учётная запись теперь стандартная.".into()),
            None => {}
        }
        crate::services::inbox::keep_verification_outcome(
            &self.store,
            &account.id,
            OUTCOME_SUBJECT,
            &lines.join("\n"),
            Some(submission),
        )
        .await;
        if let Ok(email) = Email::parse("email", &account.email) {
            let text = Secret::new(lines.join("\n"));
            match self.mailer.send_email(&email, OUTCOME_SUBJECT, &text).await {
                Ok(()) => verification_notice_sent(NoticeChannel::Email),
                Err(e) => {
                    tracing::warn!(account_id = %account.id, error = %e, "verification outcome e-mail not sent")
                }
            }
        }
        // The SMS copy only if the citizen asked for it in the notification settings.
        let sms_wanted = match self.store.notification_settings(&account.id).await {
            Ok(settings) => settings.unwrap_or_default().verification_sms,
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "notification settings not read; no SMS copy");
                false
            }
        };
        if !sms_wanted {
            return;
        }
        let Ok(phone) = Phone::parse("phone", &account.phone) else {
            return;
        };
        let rejected = Check::ALL.iter().any(|check| {
            profile.statuses.get(check.document()).is_some_and(|s| {
                s.submission.as_deref() == Some(submission) && s.state == State::Rejected
            })
        });
        let sms = if rejected {
            OUTCOME_SMS_REJECTED
        } else {
            OUTCOME_SMS_VERIFIED
        };
        match self
            .mailer
            .send_sms(&phone, &Secret::new(sms.to_string()))
            .await
        {
            Ok(()) => verification_notice_sent(NoticeChannel::Sms),
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "verification outcome SMS not sent")
            }
        }
    }
}

fn verification_counted(check: Check, outcome: VerificationOutcome) {
    metrics::emit(Metric::Verifications {
        registry: check.registry(),
        outcome,
    });
}

fn outcome_of(verified: bool) -> VerificationOutcome {
    if verified {
        VerificationOutcome::Verified
    } else {
        VerificationOutcome::Rejected
    }
}

fn verification_notice_sent(channel: NoticeChannel) {
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::Verification,
        channel,
    });
}

/// Why a SNILS whose login another account's verified SNILS holds is rejected: the
/// registry's own wording, so that nothing tells this case apart.
pub const SNILS_HELD_ELSEWHERE: &str = "данные не совпадают с данными реестра";

pub const OUTCOME_SUBJECT: &str = "Результат проверки данных профиля";
/// The subject of letters about a child's check.
pub const CHILD_SUBJECT: &str = "Проверка данных ребёнка";
/// The SMS copy of an outcome: short, and with no personal data (the e-mail has the rest).
pub const OUTCOME_SMS_VERIFIED: &str =
    "Проверка данных профиля завершена: данные подтверждены. Подробности в письме и в личном кабинете.";
pub const OUTCOME_SMS_REJECTED: &str =
    "Проверка данных профиля завершена: часть данных не подтверждена. Подробности в письме и в личном кабинете.";

/// Whether recording this outcome lifts a simplified account.
fn standard_reached(account: &StoredAccount, profile: &Profile) -> bool {
    account.level == SIMPLIFIED && STANDARD_LEVEL_FIELDS.iter().all(|f| profile.is_verified(f))
}

/// Where verified data lifts a simplified account: back to confirmed when its identity
/// was confirmed before (the edit that dropped it was checked again), else standard.
fn lifted_level(account: &StoredAccount) -> (AccountLevel, AccountLevel) {
    if account.confirmed_at.is_some() {
        (SIMPLIFIED, CONFIRMED)
    } else {
        (SIMPLIFIED, STANDARD)
    }
}

fn registry_request(check: Check, profile: &Profile) -> Option<RegistryRequest> {
    let d = &profile.documents;
    let document = match check {
        Check::Snils => d.snils.clone()?,
        Check::Passport => d
            .passport
            .as_ref()
            .map(|p| format!("{}{}", p.series, p.number))?,
        Check::Inn => d.inn.clone()?,
        Check::InternationalPassport => d
            .international_passport
            .as_ref()
            .map(|p| format!("{}{}", p.series, p.number))?,
        Check::BirthRecord => return None,
    };
    let p = &profile.personal;
    Some(RegistryRequest {
        check,
        document,
        last_name: p.last_name.clone(),
        first_name: p.first_name.clone(),
        middle_name: p.middle_name.clone(),
        birth_date: p.birth_date.clone(),
        gender: p.gender.clone(),
    })
}

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
