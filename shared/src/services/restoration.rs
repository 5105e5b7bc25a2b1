//! Access restored at a service centre: a citizen who lost both their phone and their
//! e-mail comes to a centre with their passport, and an operator gives the account a new
//! phone or e-mail.
//!
//! - The account is found by its SNILS, and the passport the operator holds must be the
//!   profile's, as for a confirmation in person; the account must be `standard` or
//!   `confirmed`, so that passport was verified by the registries.
//! - Every restoration an operator asks for is counted, per hour and before anything is
//!   read: a stolen operator key cannot take over accounts by the thousand.
//! - One transaction gives the account the new contact and its login, releases the old
//!   login, moves the credentials epoch (which ends every session at once, listed or
//!   not), deletes the sessions listed, logs `access_restored` for the citizen and keeps
//!   an audit item under the operator. A new phone is a second factor again, so factors
//!   left on the lost phone cannot keep the citizen out of a two-step login.

use time::OffsetDateTime;

use crate::crypto::Hasher;
use crate::domain::{AccountId, Destination, Email, OperatorId, Phone, Purpose, SessionId, Snils};
use crate::error::AppError;
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind};
use crate::redact::Secret;
use crate::services::codes::Notifier;
use crate::services::confirmation::account_in_hand;
use crate::services::identity::{ContactKind, SecurityEvent, StoredAccount, TokenRedemption};
use crate::services::inbox::{self, InboxStore, Message, MessageCategory};
use crate::services::profile::{ProfileStore, CONFIRMED, STANDARD};
use crate::services::{destination_key, snils_login_key, verification_token_keys, StoreError};
use crate::validation::invalid_field;

/// Restorations one operator may make per hour, by default.
pub const DEFAULT_RESTORATIONS_PER_HOUR: u32 = 30;
/// The window restorations are counted in.
pub const RESTORATION_WINDOW_SECS: i64 = 3600;

/// The subject of the e-mails that tell of a restoration.
const RESTORED_SUBJECT: &str = "Доступ восстановлен";

/// The clock hour an operator's desk actions are counted in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OperatorHour {
    pub start: i64,
    pub end: i64,
}

impl OperatorHour {
    pub(crate) fn at(now: i64) -> Self {
        let start = now - now.rem_euclid(RESTORATION_WINDOW_SECS);
        Self {
            start,
            end: start + RESTORATION_WINDOW_SECS,
        }
    }

    /// Seconds until the hour ends, at least one: the `Retry-After` of a refusal.
    pub(crate) fn retry_after(self, now: i64) -> u64 {
        u64::try_from(self.end - now).unwrap_or(1).max(1)
    }
}

/// Restorations one operator may make per fixed hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestorationLimit {
    pub per_hour: u32,
}

impl Default for RestorationLimit {
    fn default() -> Self {
        Self {
            per_hour: DEFAULT_RESTORATIONS_PER_HOUR,
        }
    }
}

/// One restoration to write at once.
#[derive(Debug)]
pub struct Restoration<'a> {
    /// The account as read: its credentials epoch and level are the transaction's
    /// conditions, its contact of `kind` the one replaced.
    pub account: &'a StoredAccount,
    pub kind: ContactKind,
    /// The new contact, canonical, and its login key.
    pub new_value: &'a str,
    pub new_key: &'a str,
    /// The login key of the contact replaced.
    pub old_key: Option<&'a str>,
    /// The sessions the account's list showed; the new epoch ends the others too.
    pub end_sessions: &'a [SessionId],
    pub event: &'a SecurityEvent,
    pub operator_id: &'a OperatorId,
    /// The new contact's verification token, spent by the same transaction.
    pub token: &'a TokenRedemption,
    /// The new phone becomes a second factor again: it was off (the owner removed it, or
    /// the account had no phone), and the factors left may be on the lost phone.
    pub sms_factor_back: bool,
}

/// Why a restoration's transaction was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorationRefusal {
    /// The new contact is another account's login.
    ContactTaken,
    /// The account changed since it was read (its password, level or contact).
    AccountChanged,
    /// The verification token of the new contact was spent or expired meanwhile.
    TokenInvalid,
}

#[trait_variant::make(Send)]
pub trait RestorationStore {
    /// Counts one restoration of the operator in the window starting at `window_start`
    /// if fewer than `limit` were counted there; `false`: none was counted.
    async fn count_restoration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError>;

    /// The account a SNILS login key points to.
    async fn account_by_snils(&self, login_key: &str) -> Result<Option<StoredAccount>, StoreError>;

    /// The ids of the account's sessions (the list may miss one opened a moment ago).
    async fn account_sessions(&self, account_id: &AccountId) -> Result<Vec<SessionId>, StoreError>;

    /// Whether a verification token is live, for its destination and purpose.
    async fn token_usable(&self, token: &TokenRedemption, now: i64) -> Result<bool, StoreError>;

    /// Writes the restoration, all or nothing; `Ok(Err(..))` says why it was refused.
    async fn restore_access(
        &self,
        restoration: &Restoration<'_>,
        now: i64,
    ) -> Result<Result<(), RestorationRefusal>, StoreError>;
}

/// What the operator typed at the desk, checked.
#[derive(Debug)]
pub struct RestoreAccess<'a> {
    pub snils: &'a Snils,
    pub passport_series: &'a str,
    pub passport_number: &'a str,
    pub contact: &'a Destination,
    /// A `contact_change` verification token of the new contact: the citizen received
    /// its code there, at the desk. A mistyped digit cannot give a stranger the login.
    pub verification_token: &'a Secret<String>,
    /// The operator's address, for the citizen's security log and the audit.
    pub ip: &'a str,
}

/// A restoration done: the account and the contact it now has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub account_id: AccountId,
    pub contact: Destination,
}

pub struct RestorationService<S, N> {
    store: S,
    notifier: N,
    hasher: Hasher,
    limit: RestorationLimit,
}

impl<S: RestorationStore + ProfileStore + InboxStore + Sync, N: Notifier + Sync>
    RestorationService<S, N>
{
    pub fn new(store: S, notifier: N, hasher: Hasher, limit: RestorationLimit) -> Self {
        Self {
            store,
            notifier,
            hasher,
            limit,
        }
    }

    /// An operator gives the account of the citizen in front of them, whose SNILS and
    /// passport they hold, a new phone or e-mail; every session of the account ends.
    pub async fn restore(
        &self,
        operator_id: &OperatorId,
        request: &RestoreAccess<'_>,
        now: OffsetDateTime,
    ) -> Result<Restored, AppError> {
        let now_s = now.unix_timestamp();
        // Counted before anything is read, whatever the answer will be: a key that only
        // probes SNILS numbers uses up its hour as fast as one that restores.
        self.count(operator_id, now_s).await?;
        let found = self
            .store
            .account_by_snils(&snils_login_key(&self.hasher, request.snils.as_str()))
            .await?;
        let account = account_in_hand(
            &self.store,
            found,
            request.passport_series,
            request.passport_number,
        )
        .await?;
        // Only a passport the registries verified identifies the owner.
        if account.level != STANDARD && account.level != CONFIRMED {
            return Err(AppError::RestorationNeedsStandard);
        }
        let (kind, old_value) = match request.contact {
            Destination::Email(_) => (ContactKind::Email, account.email.as_str()),
            Destination::Phone(_) => (ContactKind::Phone, account.phone.as_str()),
        };
        let new_value = request.contact.canonical();
        let new_key = destination_key(&self.hasher, new_value);
        // The proof that the citizen holds the new contact comes before anything about
        // it is written or told: without it, whether another account has it stays
        // unsaid, even to an operator.
        let token = self
            .live_token(request.verification_token, &new_key, now_s)
            .await?
            .ok_or_else(token_refused)?;
        if new_value == old_value {
            return Err(invalid_field(
                "/contact/destination",
                "unchanged",
                "Это значение уже указано в учётной записи",
            ));
        }
        // An account registered at a service centre may have no such contact yet.
        let old_key = (!old_value.is_empty()).then(|| destination_key(&self.hasher, old_value));
        let sessions = self.store.account_sessions(&account.id).await?;
        let event = SecurityEvent {
            account_id: account.id.clone(),
            kind: "access_restored",
            at: now_s,
            ip: request.ip.to_string(),
            user_agent: format!("operator {operator_id}"),
        };
        let restoration = Restoration {
            account: &account,
            kind,
            new_value,
            new_key: &new_key,
            old_key: old_key.as_deref(),
            end_sessions: &sessions,
            event: &event,
            operator_id,
            token: &token,
            // An authentication app or a passkey on the lost phone would leave a citizen
            // with two-step login on and no backup codes stuck: the phone the operator
            // saw them receive it on completes a login again.
            sms_factor_back: kind == ContactKind::Phone && !account.sms_factor,
        };
        match self.store.restore_access(&restoration, now_s).await? {
            Ok(()) => {}
            Err(RestorationRefusal::ContactTaken) => {
                return Err(AppError::ContactTaken(vec!["/contact/destination".into()]))
            }
            // A citizen's own change raced the operator's: a conflict to look at and
            // send again, not a failure of the service.
            Err(RestorationRefusal::AccountChanged) => return Err(AppError::AccountChanged),
            Err(RestorationRefusal::TokenInvalid) => return Err(token_refused()),
        }
        tracing::info!(account_id = %account.id, %operator_id, "access restored at a service centre");
        self.tell(&account, request.contact, now_s).await;
        Ok(Restored {
            account_id: account.id.clone(),
            contact: request.contact.clone(),
        })
    }

    /// The live `contact_change` token for the new contact's login key, under whichever
    /// version of the HMAC key it was issued.
    async fn live_token(
        &self,
        token: &Secret<String>,
        new_key: &str,
        now: i64,
    ) -> Result<Option<TokenRedemption>, AppError> {
        for token_key in verification_token_keys(&self.hasher, token.expose()) {
            let redemption = TokenRedemption {
                token_key,
                destination_key: new_key.to_string(),
                purpose: Purpose::ContactChange.as_str(),
            };
            if self.store.token_usable(&redemption, now).await? {
                return Ok(Some(redemption));
            }
        }
        Ok(None)
    }

    async fn count(&self, operator_id: &OperatorId, now: i64) -> Result<(), AppError> {
        let hour = OperatorHour::at(now);
        if self
            .store
            .count_restoration(operator_id, hour.start, hour.end, self.limit.per_hour)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::RestorationLimit {
                retry_after_secs: hour.retry_after(now),
            })
        }
    }

    /// Tells the citizen at the new contact, and at the contact the account keeps: if it
    /// was not the owner at the desk, the owner hears of it where they can still be
    /// reached. The contact replaced is not told: it is the one declared lost.
    async fn tell(&self, account: &StoredAccount, contact: &Destination, now: i64) {
        const IF_NOT_YOU: &str =
            "Если это были не вы, обратитесь в центр обслуживания с паспортом.";
        let changed = match contact {
            Destination::Phone(_) => "новый номер телефона",
            Destination::Email(_) => "новый адрес электронной почты",
        };
        let kept = format!(
            "Доступ к вашей учётной записи восстановлен в центре обслуживания: в ней указан \
             {changed}, все сеансы завершены. {IF_NOT_YOU}"
        );
        let message = Message::new(MessageCategory::Security, RESTORED_SUBJECT, kept, now);
        inbox::keep_logged(&self.store, &account.id, &message).await;
        match contact {
            Destination::Phone(phone) => {
                let new = format!(
                    "Доступ к вашей учётной записи восстановлен в центре обслуживания: этот \
                     номер теперь указан в ней, все сеансы завершены. {IF_NOT_YOU}"
                );
                self.sms(phone, new).await;
                let kept = format!(
                    "Доступ к вашей учётной записи восстановлен в центре обслуживания: в ней \
                     указан новый номер телефона, все сеансы завершены. {IF_NOT_YOU}"
                );
                if let Ok(email) = Email::parse("email", &account.email) {
                    self.email(&email, kept).await;
                }
            }
            Destination::Email(email) => {
                let new = format!(
                    "Доступ к вашей учётной записи восстановлен в центре обслуживания: этот \
                     адрес теперь указан в ней, все сеансы завершены. {IF_NOT_YOU}"
                );
                self.email(email, new).await;
                let kept = format!(
                    "Доступ к вашей учётной записи восстановлен в центре обслуживания: в ней \
                     указан новый адрес электронной почты, все сеансы завершены. {IF_NOT_YOU}"
                );
                if let Ok(phone) = Phone::parse("phone", &account.phone) {
                    self.sms(&phone, kept).await;
                }
            }
        }
    }

    async fn sms(&self, to: &Phone, text: String) {
        match self.notifier.send_sms(to, &Secret::new(text)).await {
            Ok(()) => notice_sent(NoticeChannel::Sms),
            Err(e) => tracing::warn!(error = %e, "restoration SMS not sent"),
        }
    }

    async fn email(&self, to: &Email, text: String) {
        match self
            .notifier
            .send_email(to, RESTORED_SUBJECT, &Secret::new(text))
            .await
        {
            Ok(()) => notice_sent(NoticeChannel::Email),
            Err(e) => tracing::warn!(error = %e, "restoration e-mail not sent"),
        }
    }
}

/// No live code proof for the new contact (422 at `/contact/verification_token`).
fn token_refused() -> AppError {
    invalid_field(
        "/contact/verification_token",
        "verification_token_invalid",
        "Подтверждение нового контакта недействительно или истекло. Запросите код ещё раз",
    )
}

fn notice_sent(channel: NoticeChannel) {
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::Security,
        channel,
    });
}

pub mod registration;

#[cfg(test)]
mod tests;
