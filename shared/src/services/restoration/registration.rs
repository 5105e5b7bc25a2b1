//! Registering at a service centre a citizen who has neither a phone nor an e-mail.
//!
//! - The operator has the citizen and the passport in front of them and types what a
//!   profile holds for the standard level: the name, the birth date, the gender, the
//!   SNILS and the passport, validated exactly as `PATCH /v1/profile` validates them.
//! - Every registration an operator asks for is counted per hour before anything is
//!   read, in a count of its own beside restorations.
//! - A SNILS that is already some account's login is refused: that citizen restores
//!   access instead. The operator holds the paper, so telling them is no leak.
//! - The account is written with the operator's confirmation already on it
//!   (`confirmed_via: in_person_registration`) and a one-time password, returned once
//!   for the operator to print; the profile is then written by the profile service,
//!   which queues the registry checks. When the registries verify the five fields, the
//!   verification worker claims the SNILS as the login and lifts the account straight to
//!   `confirmed`, as it does for any account with a confirmation.
//! - The first login with the paper password opens no session: the citizen must choose
//!   their own password first (see `IdentityService::complete_password_change`).

use time::{Duration, OffsetDateTime};

use crate::crypto::Hasher;
use crate::domain::{AccountId, AccountLevel, CredentialStrength, OperatorId};
use crate::error::{AppError, FieldError};
use crate::json::Change;
use crate::passwords;
use crate::redact::Secret;
use crate::services::identity::SecurityEvent;
use crate::services::profile::{JobQueue, ProfilePatch, ProfileService, ProfileStore, SIMPLIFIED};
use crate::services::{snils_login_key, StoreError};

use super::{OperatorHour, RestorationLimit, RestorationStore};

/// How long a paper password can be used for the first login.
pub const TEMPORARY_PASSWORD_DAYS: i64 = 30;

/// Characters of a paper password: lower-case Latin letters and digits a reader cannot
/// mistake for one another (no 0/o, 1/l/i).
const PASSWORD_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// A paper password: three groups of four, about 59 bits.
const PASSWORD_GROUPS: usize = 3;
const PASSWORD_GROUP_CHARS: usize = 4;

/// An account registered at a desk, to write with its audit trail.
#[derive(Debug)]
pub struct DeskAccount<'a> {
    pub id: &'a AccountId,
    pub last_name: &'a str,
    pub first_name: &'a str,
    pub middle_name: Option<&'a str>,
    pub password_hash: &'a str,
    /// Until when the paper password may be used.
    pub password_change_due: i64,
    pub operator_id: &'a OperatorId,
    pub event: &'a SecurityEvent,
}

#[trait_variant::make(Send)]
pub trait DeskRegistrationStore {
    /// Counts one registration of the operator in the window starting at
    /// `window_start` if fewer than `limit` were counted there.
    async fn count_registration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError>;

    /// Writes the account (confirmed by the operator, with no contact and a paper
    /// password), its `account_created` event and the operator's audit item, all or
    /// nothing.
    async fn create_desk_account(
        &self,
        account: &DeskAccount<'_>,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Takes back an account [`Self::create_desk_account`] wrote whose profile could
    /// not be written: the account and the audit item.
    async fn withdraw_desk_account(
        &self,
        account_id: &AccountId,
        operator_id: &OperatorId,
        registered_at: i64,
    ) -> Result<(), StoreError>;
}

/// What the operator typed at the desk: the profile's identity fields, parsed.
#[derive(Debug)]
pub struct RegisterAtDesk<'a> {
    pub profile: &'a ProfilePatch,
    /// The operator's address, for the citizen's security log and the audit.
    pub ip: &'a str,
}

/// An account registered at a desk.
#[derive(Debug)]
pub struct RegisteredAtDesk {
    pub account_id: AccountId,
    /// Shown once, for the operator to print; stored only as its hash.
    pub temporary_password: Secret<String>,
    pub temporary_password_expires_at: OffsetDateTime,
    pub level: AccountLevel,
}

pub struct DeskRegistrationService<S, Q> {
    store: S,
    profiles: ProfileService<S, Q>,
    hasher: Hasher,
    limit: RestorationLimit,
}

impl<S, Q> DeskRegistrationService<S, Q>
where
    S: DeskRegistrationStore + RestorationStore + ProfileStore + Sync,
    Q: JobQueue + Sync,
{
    pub fn new(
        store: S,
        profiles: ProfileService<S, Q>,
        hasher: Hasher,
        limit: RestorationLimit,
    ) -> Self {
        Self {
            store,
            profiles,
            hasher,
            limit,
        }
    }

    pub async fn register(
        &self,
        operator_id: &OperatorId,
        request: &RegisterAtDesk<'_>,
        now: OffsetDateTime,
    ) -> Result<RegisteredAtDesk, AppError> {
        let now_s = now.unix_timestamp();
        self.count(operator_id, now_s).await?;
        let (last_name, first_name, snils) = identity_fields(request.profile)?;
        if self
            .store
            .account_by_snils(&snils_login_key(&self.hasher, snils))
            .await?
            .is_some()
        {
            return Err(AppError::SnilsRegistered);
        }
        let password = temporary_password()?;
        let password_hash = passwords::hash(&password)?;
        let id = AccountId::new();
        let event = SecurityEvent {
            account_id: id.clone(),
            kind: "account_created",
            at: now_s,
            ip: request.ip.to_string(),
            user_agent: format!("operator {operator_id}"),
        };
        let expires_at = now + Duration::days(TEMPORARY_PASSWORD_DAYS);
        let middle_name = match &request.profile.middle_name {
            Change::Set(m) => Some(m.as_str()),
            _ => None,
        };
        self.store
            .create_desk_account(
                &DeskAccount {
                    id: &id,
                    last_name,
                    first_name,
                    middle_name,
                    password_hash: &password_hash,
                    password_change_due: expires_at.unix_timestamp(),
                    operator_id,
                    event: &event,
                },
                now_s,
            )
            .await?;
        let profile_event = SecurityEvent {
            kind: "profile_changed",
            ..event
        };
        if let Err(e) = self
            .profiles
            .patch(
                &id,
                0,
                request.profile,
                // A first profile changes nothing verified: the strength is not asked.
                CredentialStrength::Password,
                profile_event,
                now,
            )
            .await
        {
            // Nothing of the registration stays: the account has no login yet, so
            // nobody could have used it.
            if let Err(withdrawal) = self
                .store
                .withdraw_desk_account(&id, operator_id, now_s)
                .await
            {
                tracing::error!(account_id = %id, error = %withdrawal, "desk account without a profile left behind");
            }
            return Err(e);
        }
        tracing::info!(account_id = %id, %operator_id, "account registered at a service centre");
        Ok(RegisteredAtDesk {
            account_id: id,
            temporary_password: password,
            temporary_password_expires_at: expires_at,
            level: SIMPLIFIED,
        })
    }

    async fn count(&self, operator_id: &OperatorId, now: i64) -> Result<(), AppError> {
        let hour = OperatorHour::at(now);
        if self
            .store
            .count_registration(operator_id, hour.start, hour.end, self.limit.per_hour)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::RegistrationLimit {
                retry_after_secs: hour.retry_after(now),
            })
        }
    }
}

/// The names and the SNILS of a registration, every one of the five identity fields
/// required (each missing one reported at its path).
fn identity_fields(p: &ProfilePatch) -> Result<(&str, &str, &str), AppError> {
    let mut missing = Vec::new();
    let mut need = |present: bool, path: &str| {
        if !present {
            missing.push(FieldError::new(path, "required", "Обязательное поле"));
        }
    };
    need(p.last_name.is_some(), "/personal/last_name");
    need(p.first_name.is_some(), "/personal/first_name");
    need(
        matches!(p.birth_date, Change::Set(_)),
        "/personal/birth_date",
    );
    need(matches!(p.gender, Change::Set(_)), "/personal/gender");
    need(matches!(p.snils, Change::Set(_)), "/documents/snils");
    need(matches!(p.passport, Change::Set(_)), "/documents/passport");
    match (&p.last_name, &p.first_name, &p.snils) {
        (Some(last), Some(first), Change::Set(snils)) if missing.is_empty() => {
            Ok((last.as_str(), first.as_str(), snils.as_str()))
        }
        _ => Err(AppError::Validation(missing)),
    }
}

/// A new paper password: `xxxx-xxxx-xxxx` from [`PASSWORD_ALPHABET`], drawn without
/// bias (bytes past the alphabet's last whole multiple are drawn again).
fn temporary_password() -> Result<Secret<String>, AppError> {
    let alphabet = PASSWORD_ALPHABET.len();
    let usable = 256 - 256 % alphabet;
    let mut out = String::with_capacity(PASSWORD_GROUPS * (PASSWORD_GROUP_CHARS + 1));
    let mut drawn = 0;
    while drawn < PASSWORD_GROUPS * PASSWORD_GROUP_CHARS {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| AppError::Internal(format!("no randomness available: {e}")))?;
        for b in bytes {
            let b = usize::from(b);
            if b >= usable || drawn == PASSWORD_GROUPS * PASSWORD_GROUP_CHARS {
                continue;
            }
            if drawn > 0 && drawn % PASSWORD_GROUP_CHARS == 0 {
                out.push('-');
            }
            out.push(char::from(PASSWORD_ALPHABET[b % alphabet]));
            drawn += 1;
        }
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests;
