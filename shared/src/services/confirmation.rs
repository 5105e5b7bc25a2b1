//! From standard to confirmed: the citizen's identity confirmed in person by an operator
//! at a service centre who saw the passport, or by a one-time code sent by registered
//! post to an address the citizen gives.
//!
//! - Operators are principals of their own: an admin command creates one and prints its
//!   key once (`op_…`, stored only as a keyed hash); the authorizer tells operators from
//!   citizens, and every confirmation is logged under the operator's id.
//! - A letter's code is stored only as a keyed hash, lives 60 days, allows a few wrong
//!   tries, and a new letter can be asked for 30 days after the previous one.

use std::time::Duration;

use time::OffsetDateTime;

use crate::crypto::{self, Credential, Hasher};
use crate::domain::{AccountId, OperatorId, Snils};
use crate::error::AppError;
use crate::metrics::{self, CodeChannel, Metric};
use crate::redact::Secret;
use crate::services::identity::{SecurityEvent, StoredAccount};
use crate::services::inbox::{self, InboxStore, Message, MessageCategory};
use crate::services::profile::{ProfileStore, CONFIRMED, STANDARD};

/// The title of the message that tells a citizen their account is confirmed.
pub const CONFIRMED_TITLE: &str = "Учётная запись подтверждена";
use crate::services::snils_login_key;
use crate::services::{found_or_not, principal_by_key, secs, StoreError};
use crate::validation::invalid_field;

/// Prefix of operator keys (see [`crate::redact::TOKEN_PREFIXES`]).
pub const OPERATOR_KEY_PREFIX: &str = "op_";

/// How long a letter's code is valid.
pub const LETTER_CODE_TTL: Duration = Duration::from_secs(60 * 24 * 3600);
/// How long after a letter the next one may be asked for.
pub const LETTER_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Wrong codes a letter allows.
pub const LETTER_MAX_ATTEMPTS: u32 = 5;
/// Digits of a letter's code.
const LETTER_CODE_DIGITS: u32 = 8;
/// Longest postal address taken.
pub const MAX_ADDRESS_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    pub centre: String,
}

/// A letter asked for, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLetter {
    pub code_hash: String,
    pub attempts: u32,
    pub requested_at: i64,
    pub expires_at: i64,
    pub used: bool,
}

/// A letter for the post: what the envelope and the sheet inside carry.
#[derive(Debug, Clone)]
pub struct Letter {
    pub account_id: AccountId,
    pub recipient: String,
    pub address: String,
    pub code: Secret<String>,
}

/// How the identity was confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation<'a> {
    pub account_id: &'a AccountId,
    /// `in_person` or `registered_post`.
    pub via: &'static str,
    pub operator_id: Option<&'a OperatorId>,
    pub event: SecurityEvent,
}

/// An operator to store, with the keyed hash of the API key it signs in with.
#[derive(Debug)]
pub struct KeyedOperator<'a> {
    pub key_hash: &'a str,
    pub operator: &'a Operator,
}

#[trait_variant::make(Send)]
pub trait OperatorStore {
    async fn put_operator(&self, keyed: &KeyedOperator<'_>, now: i64) -> Result<(), StoreError>;

    /// The operator a key belongs to, unless revoked.
    async fn operator_by_key(&self, key_hash: &str) -> Result<Option<Operator>, StoreError>;

    /// `Ok(false)`: no such operator.
    async fn revoke_operator(&self, id: &OperatorId, now: i64) -> Result<bool, StoreError>;
}

#[trait_variant::make(Send)]
pub trait ConfirmationStore {
    /// The account a login key points to.
    async fn account_by_login(&self, login_key: &str) -> Result<Option<StoredAccount>, StoreError>;

    /// Moves a standard account to confirmed, logs the event and, for an operator, the
    /// confirmation under the operator; `Ok(false)`: the account is not standard (any
    /// more). A letter's code, when given, is spent in the same transaction.
    async fn confirm(
        &self,
        confirmation: &Confirmation<'_>,
        letter_code_hash: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError>;

    async fn letter(&self, account_id: &AccountId) -> Result<Option<StoredLetter>, StoreError>;

    /// Records a letter unless one was asked for after `not_after`; `Ok(false)`: too early.
    async fn put_letter(
        &self,
        account_id: &AccountId,
        letter: &StoredLetter,
        not_after: i64,
    ) -> Result<bool, StoreError>;

    /// Takes back a letter that never reached the post queue.
    async fn withdraw_letter(
        &self,
        account_id: &AccountId,
        code_hash: &str,
    ) -> Result<(), StoreError>;

    /// Counts an answer before it is checked; the attempts made with this one, or `None`
    /// if the letter is gone or has no attempts left.
    async fn letter_attempt(
        &self,
        account_id: &AccountId,
        code_hash: &str,
    ) -> Result<Option<u32>, StoreError>;
}

/// Where letters go to be printed and posted.
#[trait_variant::make(Send)]
pub trait PostOffice {
    async fn send_letter(&self, letter: &Letter) -> Result<(), StoreError>;
}

/// A letter asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterRequested {
    pub requested_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub next_letter_at: OffsetDateTime,
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Operators: created and revoked by the admin command, recognised by the authorizer.
pub struct OperatorService<S> {
    store: S,
    hasher: Hasher,
}

impl<S: OperatorStore + Sync> OperatorService<S> {
    pub fn new(store: S, hasher: Hasher) -> Self {
        Self { store, hasher }
    }

    fn key_hash(&self, key: &str) -> String {
        self.hasher.credential(Credential::OperatorKey, &[key])
    }

    /// Creates an operator; the key is shown once and kept only as a keyed hash.
    pub async fn create_operator(
        &self,
        name: &str,
        centre: &str,
        now: OffsetDateTime,
    ) -> Result<(Operator, Secret<String>), AppError> {
        let key = crypto::token(OPERATOR_KEY_PREFIX)?;
        let operator = Operator {
            id: OperatorId::new(),
            name: name.trim().to_string(),
            centre: centre.trim().to_string(),
        };
        self.store
            .put_operator(
                &KeyedOperator {
                    key_hash: &self.key_hash(key.expose()),
                    operator: &operator,
                },
                now.unix_timestamp(),
            )
            .await?;
        Ok((operator, key))
    }

    pub async fn revoke_operator(
        &self,
        id: &OperatorId,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let revoked = self.store.revoke_operator(id, now.unix_timestamp()).await?;
        found_or_not(revoked, "operator")
    }

    /// The operator behind a bearer key: the authorizer's question.
    pub async fn operator(&self, key: &str) -> Result<Operator, AppError> {
        principal_by_key(
            &self.hasher,
            key,
            OPERATOR_KEY_PREFIX,
            Credential::OperatorKey,
            |key_hash| async move { self.store.operator_by_key(&key_hash).await },
        )
        .await
    }
}

pub struct ConfirmationService<S, P> {
    store: S,
    post: P,
    hasher: Hasher,
}

impl<S: ConfirmationStore + ProfileStore + InboxStore + Sync, P: PostOffice + Sync>
    ConfirmationService<S, P>
{
    pub fn new(store: S, post: P, hasher: Hasher) -> Self {
        Self {
            store,
            post,
            hasher,
        }
    }

    /// An operator confirms the citizen whose SNILS and passport they hold in hand.
    pub async fn confirm_in_person(
        &self,
        operator_id: &OperatorId,
        snils: &Snils,
        passport_series: &str,
        passport_number: &str,
        ip: &str,
        now: OffsetDateTime,
    ) -> Result<StoredAccount, AppError> {
        let found = self
            .store
            .account_by_login(&snils_login_key(&self.hasher, snils.as_str()))
            .await?;
        let account = account_in_hand(&self.store, found, passport_series, passport_number).await?;
        self.require_standard(&account)?;
        let confirmation = Confirmation {
            account_id: &account.id,
            via: "in_person",
            operator_id: Some(operator_id),
            event: SecurityEvent {
                account_id: account.id.clone(),
                kind: "level_confirmed",
                at: now.unix_timestamp(),
                ip: ip.to_string(),
                user_agent: format!("operator {operator_id}"),
            },
        };
        if !self
            .store
            .confirm(&confirmation, None, now.unix_timestamp())
            .await?
        {
            return Err(AppError::LevelNotStandard);
        }
        tracing::info!(account_id = %account.id, %operator_id, "identity confirmed in person");
        self.tell_confirmed(&account.id, "в центре обслуживания", now.unix_timestamp())
            .await;
        Ok(StoredAccount {
            level: CONFIRMED,
            ..account
        })
    }

    fn require_standard(&self, account: &StoredAccount) -> Result<(), AppError> {
        match account.level {
            STANDARD => Ok(()),
            CONFIRMED => Err(AppError::AlreadyConfirmed),
            _ => Err(AppError::LevelNotStandard),
        }
    }

    async fn citizen(&self, account_id: &AccountId) -> Result<(StoredAccount, String), AppError> {
        let (account, stored) = self
            .store
            .load_profile(account_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let p = &stored.profile.personal;
        let recipient = [
            Some(&p.last_name),
            Some(&p.first_name),
            p.middle_name.as_ref(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
        Ok((account, recipient))
    }

    /// Queues a letter with a one-time code to `address`.
    pub async fn request_letter(
        &self,
        account_id: &AccountId,
        address: &str,
        now: OffsetDateTime,
    ) -> Result<LetterRequested, AppError> {
        let now_s = now.unix_timestamp();
        let (account, recipient) = self.citizen(account_id).await?;
        self.require_standard(&account)?;
        let code = crypto::digit_code(LETTER_CODE_DIGITS)?;
        let letter = StoredLetter {
            code_hash: self
                .hasher
                .credential(Credential::LetterCode, &[account_id, code.expose()]),
            attempts: 0,
            requested_at: now_s,
            expires_at: now_s + secs(LETTER_CODE_TTL),
            used: false,
        };
        let not_after = now_s - secs(LETTER_INTERVAL);
        if !self
            .store
            .put_letter(account_id, &letter, not_after)
            .await?
        {
            let previous = self.store.letter(account_id).await?;
            let next = previous.map_or(now_s, |l| l.requested_at + secs(LETTER_INTERVAL));
            return Err(AppError::LetterTooEarly {
                retry_after_secs: u64::try_from(next - now_s).unwrap_or(0).max(1),
            });
        }
        let queued = self
            .post
            .send_letter(&Letter {
                account_id: account_id.clone(),
                recipient,
                address: address.to_string(),
                code,
            })
            .await;
        if let Err(e) = queued {
            // No letter will come: the citizen may ask again at once.
            self.store
                .withdraw_letter(account_id, &letter.code_hash)
                .await?;
            return Err(AppError::DeliveryFailed(e.to_string()));
        }
        tracing::info!(%account_id, "confirmation letter queued for the post");
        // Handed to the post letters queue: the print-and-post service takes it from there.
        metrics::emit(Metric::CodesSent {
            channel: CodeChannel::Post,
        });
        Ok(LetterRequested {
            requested_at: at(now_s),
            expires_at: at(letter.expires_at),
            next_letter_at: at(now_s + secs(LETTER_INTERVAL)),
        })
    }

    /// Confirms the identity with the code from the letter.
    pub async fn confirm_by_letter(
        &self,
        account_id: &AccountId,
        code: &str,
        client_ip: &str,
        user_agent: &str,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        let code = code.trim();
        if code.len() != LETTER_CODE_DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid_field(
                "code",
                "invalid_code_format",
                format!("Код из письма состоит из {LETTER_CODE_DIGITS} цифр"),
            ));
        }
        let (account, _) = self.citizen(account_id).await?;
        self.require_standard(&account)?;
        let letter = self
            .store
            .letter(account_id)
            .await?
            .filter(|l| !l.used)
            .ok_or(AppError::NoLetterRequested)?;
        if letter.expires_at <= now_s {
            return Err(AppError::CodeExpired);
        }
        if letter.attempts >= LETTER_MAX_ATTEMPTS {
            return Err(AppError::CodeAttemptsExhausted);
        }
        // Counted before it is checked, so that parallel guesses stop at the limit.
        let Some(attempts) = self
            .store
            .letter_attempt(account_id, &letter.code_hash)
            .await?
        else {
            return Err(AppError::CodeAttemptsExhausted);
        };
        if !self.hasher.verify_credential(
            Credential::LetterCode,
            &[account_id, code],
            &letter.code_hash,
        ) {
            return Err(AppError::CodeMismatch {
                attempts_left: LETTER_MAX_ATTEMPTS.saturating_sub(attempts),
            });
        }
        let confirmation = Confirmation {
            account_id,
            via: "registered_post",
            operator_id: None,
            event: SecurityEvent {
                account_id: account_id.clone(),
                kind: "level_confirmed",
                at: now_s,
                ip: client_ip.to_string(),
                user_agent: user_agent.to_string(),
            },
        };
        if !self
            .store
            .confirm(&confirmation, Some(&letter.code_hash), now_s)
            .await?
        {
            // Say what changed meanwhile: the level, or the letter.
            let (account, _) = self.citizen(account_id).await?;
            self.require_standard(&account)?;
            return Err(AppError::CodeAlreadyUsed);
        }
        tracing::info!(%account_id, "identity confirmed by a code by post");
        self.tell_confirmed(account_id, "кодом из письма", now_s)
            .await;
        Ok(())
    }

    /// The citizen's inbox hears that the account is confirmed (no e-mail: the citizen
    /// is at the desk, or has just typed the code).
    async fn tell_confirmed(&self, account_id: &AccountId, how: &str, now: i64) {
        let message = Message::new(
            MessageCategory::Confirmation,
            CONFIRMED_TITLE,
            format!("Ваша учётная запись подтверждена ({how}). Вам доступны все услуги портала."),
            now,
        );
        inbox::keep_logged(&self.store, account_id, &message).await;
    }
}

/// The account of the citizen an operator has in front of them: the one their SNILS
/// found (`found`; 404 `account_not_found` without one), whose profile holds the
/// passport they show (422 `passport_mismatch` at `passport` otherwise). Confirming and
/// restoring access at a service centre identify the citizen alike.
pub(crate) async fn account_in_hand<S: ProfileStore + Sync>(
    store: &S,
    found: Option<StoredAccount>,
    passport_series: &str,
    passport_number: &str,
) -> Result<StoredAccount, AppError> {
    let account = found.ok_or(AppError::NotFound("account"))?;
    let (_, stored) = store
        .load_profile(&account.id)
        .await?
        .ok_or(AppError::NotFound("account"))?;
    let on_file = stored.profile.documents.passport.as_ref();
    if !on_file.is_some_and(|p| p.series == passport_series && p.number == passport_number) {
        return Err(invalid_field(
            "passport",
            "passport_mismatch",
            "Паспорт не совпадает с паспортом в профиле",
        ));
    }
    Ok(account)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn keys(secret: &str) -> Hasher {
        Hasher::from_secret(secret).unwrap()
    }

    #[tokio::test]
    async fn operator_keys_survive_a_rotation_until_their_version_is_removed() {
        let store = MemStore::new();
        let v1 = keys(&format!(r#"{{"current":"1","key_1":"{K1}"}}"#));
        let v2 = keys(&format!(
            r#"{{"current":"2","key_1":"{K1}","key_2":"{K2}"}}"#
        ));
        let only_v2 = keys(&format!(
            r#"{{"current":"2","identifiers":"2","key_2":"{K2}"}}"#
        ));
        let now = OffsetDateTime::now_utc();
        let (old, old_key) = OperatorService::new(store.clone(), v1)
            .create_operator("Петрова А. В.", "МФЦ Арбат", now)
            .await
            .unwrap();

        // After the rotation the old key still works, and new keys go under v2.
        let rotated = OperatorService::new(store.clone(), v2);
        assert_eq!(rotated.operator(old_key.expose()).await.unwrap(), old);
        let (new, new_key) = rotated
            .create_operator("Иванов И. И.", "МФЦ Арбат", now)
            .await
            .unwrap();
        assert!(store
            .state()
            .operators
            .contains_key(&only_v2.credential(Credential::OperatorKey, &[new_key.expose()])));

        // Removing v1 ends the keys made under it, and only those.
        let trimmed = OperatorService::new(store.clone(), only_v2);
        assert!(matches!(
            trimmed.operator(old_key.expose()).await,
            Err(AppError::Unauthenticated)
        ));
        assert_eq!(trimmed.operator(new_key.expose()).await.unwrap(), new);
    }
}
