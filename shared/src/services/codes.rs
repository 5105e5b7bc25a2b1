//! Confirmation codes: send one by SMS or e-mail, check it, and issue a single-use
//! verification token that later flows (registration, recovery, contact change) redeem.
//!
//! Rules, all configurable ([`CodeLimits`]): a code lives `code_ttl`; `max_attempts`
//! wrong answers kill it; a destination gets at most one code per `resend_interval` and
//! `max_per_destination` per window; a client address at most `max_per_client_ip` per
//! window. A code whose message could not be delivered is withdrawn together with the
//! quota it took, so a failed send leaves nothing usable and nothing spent.

use std::future::Future;

use time::OffsetDateTime;

use crate::config::CodeLimits;
use crate::crypto::{self, Credential, Hasher, Identifier};
use crate::domain::{CodeId, Destination, Email, Phone, Purpose};
use crate::error::AppError;
use crate::metrics::{self, Metric};
use crate::redact::Secret;
use crate::services::{secs, StoreError};

use crate::services::{destination_key, verification_token_key};
use crate::validation::invalid_field;

/// Prefix of verification tokens (see [`crate::redact::TOKEN_PREFIXES`]).
pub const VERIFICATION_TOKEN_PREFIX: &str = "vt_";

/// Codes sent within one rate window, as last read from the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    /// 0 when the log does not exist yet; each write increments it.
    pub version: u64,
    /// `(code id, unix seconds)` of each send.
    pub sends: Vec<(String, i64)>,
}

/// The next state of a send log, written only if the log is still at `expected_version`.
#[derive(Debug, Clone)]
pub struct SendLogWrite {
    pub key: String,
    pub expected_version: u64,
    pub sends: Vec<(String, i64)>,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewCode {
    pub id: CodeId,
    pub code_hash: String,
    pub destination_hash: String,
    pub channel: &'static str,
    pub purpose: &'static str,
    pub max_attempts: u32,
    pub created_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    pub id: CodeId,
    pub code_hash: String,
    pub destination_hash: String,
    pub channel: String,
    pub purpose: String,
    pub attempts: u32,
    pub max_attempts: u32,
    pub used: bool,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewVerificationToken {
    pub token_hash: String,
    pub destination_hash: String,
    pub channel: String,
    pub purpose: String,
    pub code_id: CodeId,
    pub expires_at: i64,
}

/// Storage of codes, send logs and verification tokens.
#[trait_variant::make(Send)]
pub trait CodeStore {
    /// Both send logs, read consistently (missing ones are empty, version 0).
    async fn load_send_logs(
        &self,
        destination_key: &str,
        client_key: &str,
    ) -> Result<(SendLog, SendLog), StoreError>;

    /// Writes the code and both logs atomically; [`StoreError::Conflict`] if a log
    /// moved since it was read.
    async fn create_code(
        &self,
        code: &NewCode,
        destination_log: &SendLogWrite,
        client_log: &SendLogWrite,
    ) -> Result<(), StoreError>;

    /// Deletes the code and takes its entry out of both logs `create_code` wrote,
    /// atomically (a log keeps its expiry, or gets the one of its write if it has none).
    async fn withdraw_code(&self, id: &CodeId, logs: [&SendLogWrite; 2]) -> Result<(), StoreError>;

    async fn get_code(&self, id: &CodeId) -> Result<Option<StoredCode>, StoreError>;

    /// Counts an answer, before it is checked, if the code is still live and has
    /// attempts left; returns the attempts made with this one, or `None` if the code was
    /// no longer live.
    async fn count_attempt(&self, id: &CodeId, now: i64) -> Result<Option<u32>, StoreError>;

    /// Marks a live code used and stores the token, atomically; `false` if the code was
    /// no longer live. The answer that redeems it was counted already.
    async fn redeem_code(
        &self,
        id: &CodeId,
        now: i64,
        token: &NewVerificationToken,
    ) -> Result<bool, StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DeliveryError(pub String);

/// Delivery of messages to citizens.
#[trait_variant::make(Send)]
pub trait Notifier: Sync {
    async fn send_sms(&self, to: &Phone, text: &Secret<String>) -> Result<(), DeliveryError>;

    async fn send_email(
        &self,
        to: &Email,
        subject: &str,
        text: &Secret<String>,
    ) -> Result<(), DeliveryError>;
}

/// A request to send a code.
#[derive(Debug, Clone)]
pub struct SendCode {
    pub destination: Destination,
    pub purpose: Purpose,
    /// The caller's address as the API saw it.
    pub client_ip: String,
    /// `false` records the code exactly as if it were sent, but sends nothing: recovery
    /// for a login no account has must look the same from outside, down to the code id
    /// answering verification attempts.
    pub deliver: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCode {
    pub id: CodeId,
    pub expires_at: OffsetDateTime,
    pub resend_available_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: Secret<String>,
    pub expires_at: OffsetDateTime,
}

/// How many times a send is re-decided after losing a race on the send logs.
const SEND_RACE_RETRIES: usize = 3;

pub struct CodeService<S, N> {
    store: S,
    notifier: N,
    hasher: Hasher,
    limits: CodeLimits,
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The text of the message carrying a code.
pub fn code_message(code: &Secret<String>) -> Secret<String> {
    Secret::new(format!(
        "Код подтверждения: {}. Никому его не сообщайте.",
        code.expose()
    ))
}

pub const CODE_EMAIL_SUBJECT: &str = "Код подтверждения";

impl<S: CodeStore + Sync, N: Notifier + Sync> CodeService<S, N> {
    pub fn new(store: S, notifier: N, hasher: Hasher, limits: CodeLimits) -> Self {
        Self {
            store,
            notifier,
            hasher,
            limits,
        }
    }

    /// The key a destination's send log and token bindings use: a keyed hash, so the
    /// table holds no phone numbers or addresses in clear.
    pub fn destination_hash(&self, destination: &Destination) -> String {
        destination_key(&self.hasher, destination.canonical())
    }

    pub async fn send(&self, request: SendCode, now: OffsetDateTime) -> Result<SentCode, AppError> {
        let now_s = now.unix_timestamp();
        let window = secs(self.limits.rate_window);
        let destination_key = self.destination_hash(&request.destination);
        let client_key = self
            .hasher
            .identifier(Identifier::Client, &[&request.client_ip]);

        let mut attempt = 0;
        let (id, code, dest_write, client_write) = loop {
            attempt += 1;
            let (dest_log, client_log) = self
                .store
                .load_send_logs(&destination_key, &client_key)
                .await?;
            let dest_sends = recent(&dest_log.sends, now_s - window);
            let client_sends = recent(&client_log.sends, now_s - window);
            self.check_limits(&dest_sends, &client_sends, now_s, window)?;

            let id = CodeId::new();
            let code = crypto::six_digit_code()?;
            let new_code = NewCode {
                id: id.clone(),
                code_hash: self
                    .hasher
                    .credential(Credential::Code, &[&id, code.expose()]),
                destination_hash: destination_key.clone(),
                channel: request.destination.channel().as_str(),
                purpose: request.purpose.as_str(),
                max_attempts: self.limits.max_attempts,
                created_at: now_s,
                expires_at: now_s + secs(self.limits.code_ttl),
            };
            let log_write = |key: &str, log: &SendLog, mut sends: Vec<(String, i64)>| {
                sends.push((id.to_string(), now_s));
                SendLogWrite {
                    key: key.to_string(),
                    expected_version: log.version,
                    sends,
                    expires_at: now_s + window,
                }
            };
            let dest_write = log_write(&destination_key, &dest_log, dest_sends);
            let client_write = log_write(&client_key, &client_log, client_sends);
            match self
                .store
                .create_code(&new_code, &dest_write, &client_write)
                .await
            {
                Ok(()) => break (id, code, dest_write, client_write),
                Err(StoreError::Conflict) if attempt < SEND_RACE_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        };

        let text = code_message(&code);
        let delivered = match &request.destination {
            _ if !request.deliver => Ok(()),
            Destination::Phone(phone) => self.notifier.send_sms(phone, &text).await,
            Destination::Email(email) => {
                self.notifier
                    .send_email(email, CODE_EMAIL_SUBJECT, &text)
                    .await
            }
        };
        if let Err(e) = delivered {
            // Nobody received this code: withdraw it and give the quota back.
            if let Err(undo) = self
                .store
                .withdraw_code(&id, [&dest_write, &client_write])
                .await
            {
                tracing::error!(error = %undo, code_id = %id, "withdrawing undelivered code failed");
            }
            return Err(AppError::DeliveryFailed(e.0));
        }
        tracing::info!(code_id = %id, channel = request.destination.channel().as_str(), purpose = request.purpose.as_str(), "code sent");
        // A recovery code for a login without an account is recorded, not sent.
        if request.deliver {
            metrics::emit(Metric::CodesSent {
                channel: request.destination.channel().into(),
            });
        }
        Ok(SentCode {
            id,
            expires_at: at(now_s + secs(self.limits.code_ttl)),
            resend_available_at: at(now_s + secs(self.limits.resend_interval)),
        })
    }

    fn check_limits(
        &self,
        dest_sends: &[(String, i64)],
        client_sends: &[(String, i64)],
        now: i64,
        window: i64,
    ) -> Result<(), AppError> {
        let wait = |t: i64| u64::try_from(t - now).unwrap_or(0).max(1);
        if let Some(last) = dest_sends.iter().map(|(_, t)| *t).max() {
            let next = last + secs(self.limits.resend_interval);
            if next > now {
                return Err(AppError::ResendTooEarly {
                    retry_after_secs: wait(next),
                });
            }
        }
        // With the sends sorted oldest first, the limit frees up when the send that is
        // `max` places from the end leaves the window.
        let frees_at = |sends: &[(String, i64)], max: u32| -> Option<i64> {
            let max = max as usize;
            (sends.len() >= max).then(|| {
                let mut times: Vec<i64> = sends.iter().map(|(_, t)| *t).collect();
                times.sort_unstable();
                times[times.len() - max] + window
            })
        };
        if let Some(t) = frees_at(dest_sends, self.limits.max_per_destination) {
            return Err(AppError::DestinationRateLimited {
                retry_after_secs: wait(t),
            });
        }
        if let Some(t) = frees_at(client_sends, self.limits.max_per_client_ip) {
            return Err(AppError::ClientRateLimited {
                retry_after_secs: wait(t),
            });
        }
        Ok(())
    }

    pub async fn verify(
        &self,
        id: &CodeId,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedToken, AppError> {
        check_code_format(code)?;
        let now_s = now.unix_timestamp();
        let stored = self
            .store
            .get_code(id)
            .await?
            .ok_or(AppError::CodeNotFound)?;
        why_not_live(&stored, now_s)?;

        // Counted before it is checked: parallel guesses cannot all be checked while the
        // count still looks low, and the limit holds for the right code too.
        let Some(attempts) = self.store.count_attempt(id, now_s).await? else {
            return Err(self.why_gone(id, now_s).await);
        };
        if !self
            .hasher
            .verify_credential(Credential::Code, &[id, code], &stored.code_hash)
        {
            tracing::info!(code_id = %id, attempts, "wrong code");
            return Err(AppError::CodeMismatch {
                attempts_left: stored.max_attempts.saturating_sub(attempts),
            });
        }

        let token = crypto::token(VERIFICATION_TOKEN_PREFIX)?;
        let expires_at = now_s + secs(self.limits.token_ttl);
        let record = NewVerificationToken {
            token_hash: verification_token_key(&self.hasher, token.expose()),
            destination_hash: stored.destination_hash.clone(),
            channel: stored.channel.clone(),
            purpose: stored.purpose.clone(),
            code_id: id.clone(),
            expires_at,
        };
        if !self.store.redeem_code(id, now_s, &record).await? {
            return Err(self.why_gone(id, now_s).await);
        }
        tracing::info!(code_id = %id, "code verified, token issued");
        Ok(IssuedToken {
            token,
            expires_at: at(expires_at),
        })
    }

    /// After a conditional write found the code no longer live, says why.
    async fn why_gone(&self, id: &CodeId, now: i64) -> AppError {
        match self.store.get_code(id).await {
            Ok(Some(code)) => why_not_live(&code, now)
                .err()
                .unwrap_or(AppError::CodeAlreadyUsed),
            Ok(None) => AppError::CodeNotFound,
            Err(e) => e.into(),
        }
    }
}

/// A code as it is typed: six digits. Checked before anything else about an answer
/// (its code id included).
pub fn check_code_format(code: &str) -> Result<(), AppError> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid_field(
            "code",
            "invalid_code_format",
            "Код состоит из 6 цифр",
        ))
    }
}

/// A code id from a request: ids are UUIDs (in any form the standard allows); anything
/// else cannot exist, so the store is not asked.
pub fn parse_code_id(id: &str) -> Result<CodeId, AppError> {
    CodeId::parse(id).map_err(|_| AppError::CodeNotFound)
}

fn why_not_live(code: &StoredCode, now: i64) -> Result<(), AppError> {
    if code.used {
        Err(AppError::CodeAlreadyUsed)
    } else if code.attempts >= code.max_attempts {
        Err(AppError::CodeAttemptsExhausted)
    } else if code.expires_at <= now {
        Err(AppError::CodeExpired)
    } else {
        Ok(())
    }
}

fn recent(sends: &[(String, i64)], since: i64) -> Vec<(String, i64)> {
    sends.iter().filter(|(_, t)| *t > since).cloned().collect()
}

/// Sending and checking codes as other flows use them (two-step login): a small trait so
/// that a service that needs a code does not depend on how codes are stored or sent.
#[trait_variant::make(Send)]
pub trait Confirmations {
    async fn send_code(&self, request: SendCode, now: OffsetDateTime)
        -> Result<SentCode, AppError>;

    async fn verify_code(
        &self,
        id: &CodeId,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedToken, AppError>;
}

impl<S: CodeStore + Sync, N: Notifier + Sync> Confirmations for CodeService<S, N> {
    fn send_code(
        &self,
        request: SendCode,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<SentCode, AppError>> + Send {
        self.send(request, now)
    }

    fn verify_code(
        &self,
        id: &CodeId,
        code: &str,
        now: OffsetDateTime,
    ) -> impl Future<Output = Result<IssuedToken, AppError>> + Send {
        self.verify(id, code, now)
    }
}
