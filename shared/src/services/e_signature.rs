//! Confirming the identity online with a qualified electronic signature.
//!
//! - A `standard` citizen asks for a challenge: 32 random bytes, kept under the account
//!   for 10 minutes (one open challenge per account, a new one replaces it).
//! - The citizen's signing plug-in signs the bytes into a detached CMS signature, which
//!   comes back with the challenge's id. Each answer is counted on the challenge before
//!   the signature is checked: at most [`MAX_SIGNATURE_ATTEMPTS`].
//! - The verifier (an adapter: the sandbox authority, or in a real deployment a
//!   verification service) checks the signature and the certificate and says whom the
//!   certificate names. The service decides: the certificate's SNILS must be the
//!   profile's verified SNILS, and its surname and given name the profile's.
//! - One transaction spends the challenge, moves the account to `confirmed`
//!   (`confirmed_via: e_signature`, the certificate's serial and issuer kept) and logs
//!   `level_confirmed`; the citizen is told by e-mail and SMS.

use base64::Engine as _;
use time::{Duration, OffsetDateTime};

use crate::domain::{AccountId, Email, Phone};
use crate::error::AppError;
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind};
use crate::services::codes::Notifier;
use crate::services::confirmation::Confirmation;
use crate::services::identity::{SecurityEvent, StoredAccount};
use crate::services::inbox::{tell, Delivery, InboxStore, Message, MessageCategory};
use crate::services::profile::{Profile, ProfileStore, State, CONFIRMED, STANDARD};
use crate::services::StoreError;
use crate::validation::invalid_field;

/// How long a challenge may be signed.
pub const CHALLENGE_LIFETIME: Duration = Duration::minutes(10);
/// Answers one challenge takes, counted before each is checked.
pub const MAX_SIGNATURE_ATTEMPTS: u32 = 5;
/// How the confirmation is recorded on the account.
pub const VIA_E_SIGNATURE: &str = "e_signature";

const CONFIRMED_SUBJECT: &str = "Учётная запись подтверждена";
const BANK_CONFIRMED_TEXT: &str = "Ваша учётная запись подтверждена через банк: вам \
     доступны все услуги. Если это были не вы, обратитесь в центр обслуживания.";
const CONFIRMED_TEXT: &str = "Ваша учётная запись подтверждена электронной подписью: вам \
     доступны все услуги. Если это были не вы, обратитесь в центр обслуживания.";

/// What a certificate says of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIdentity {
    /// 11 digits.
    pub snils: String,
    pub surname: Option<String>,
    /// The first name and the patronymic, separated by a space.
    pub given_name: Option<String>,
    /// The certificate's serial number, in hex.
    pub serial: String,
    /// The issuing authority's name (RFC 4514).
    pub issuer: String,
}

/// Why a signature does not confirm anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    #[error("not a CMS signature: {0}")]
    Malformed(String),
    #[error("the signature carries its content; a detached signature is expected")]
    NotDetached,
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    #[error("the signature is over something other than the challenge")]
    DigestMismatch,
    #[error("the signature does not verify with its certificate")]
    BadSignature,
    #[error("the signer's certificate is not in the signature")]
    SignerCertificateMissing,
    #[error("the certificate is not issued by a trusted authority")]
    UntrustedIssuer,
    #[error("a certificate is outside its validity")]
    Expired,
    #[error("the certificate is not one for signing")]
    NotForSigning,
    #[error("the certificate names no SNILS")]
    NoSnils,
}

impl SignatureRefusal {
    /// The field error the citizen gets at `/signature`.
    fn problem(&self) -> AppError {
        let (code, text) = match self {
            Self::Malformed(_) | Self::NotDetached | Self::SignerCertificateMissing => (
                "signature_malformed",
                "Это не открепленная подпись CMS с сертификатом",
            ),
            Self::UnsupportedAlgorithm(_) => (
                "signature_algorithm_unsupported",
                "Алгоритм подписи не поддерживается",
            ),
            Self::DigestMismatch | Self::BadSignature => (
                "signature_mismatch",
                "Подпись не соответствует запросу: подпишите его снова",
            ),
            Self::UntrustedIssuer => (
                "certificate_untrusted",
                "Сертификат выдан не аккредитованным удостоверяющим центром",
            ),
            Self::Expired => ("certificate_expired", "Срок действия сертификата истёк"),
            Self::NotForSigning => (
                "certificate_not_for_signing",
                "Этот сертификат нельзя использовать для подписи",
            ),
            Self::NoSnils => (
                "certificate_without_snils",
                "В сертификате нет СНИЛС: нужен квалифицированный сертификат физического лица",
            ),
        };
        invalid_field("signature", code, text)
    }
}

/// Checks a detached signature over `content` and says whom its certificate names.
pub trait SignatureVerifier: Sync {
    fn verify(
        &self,
        signature: &str,
        content: &[u8],
        now: OffsetDateTime,
    ) -> Result<SignedIdentity, SignatureRefusal>;
}

/// What a challenge is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengePurpose {
    /// A detached signature over its bytes.
    Signature,
    /// A bank identity provider's ID token carrying its bytes as the nonce.
    BankId,
}

impl ChallengePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::BankId => "bank_id",
        }
    }
}

/// A challenge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureChallenge {
    pub id: String,
    pub purpose: ChallengePurpose,
    /// The bytes to sign.
    pub content: Vec<u8>,
    pub expires_at: i64,
    pub attempts: u32,
}

/// A confirmation by signature: the account's, spending its challenge.
#[derive(Debug)]
pub struct SignatureConfirmation<'a> {
    pub confirmation: Confirmation<'a>,
    pub challenge_id: &'a str,
    pub certificate: &'a SignedIdentity,
}

#[trait_variant::make(Send)]
pub trait SignatureStore {
    /// Keeps `challenge` as the account's only open one.
    async fn put_signature_challenge(
        &self,
        account_id: &AccountId,
        challenge: &SignatureChallenge,
    ) -> Result<(), StoreError>;

    async fn signature_challenge(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<SignatureChallenge>, StoreError>;

    /// Counts an answer to challenge `id` before it is checked, if it has attempts left;
    /// the attempts made with this one, or `None`.
    async fn signature_attempt(
        &self,
        account_id: &AccountId,
        id: &str,
        max: u32,
    ) -> Result<Option<u32>, StoreError>;

    /// Moves a standard account to confirmed, logs the event and deletes the challenge,
    /// all at once; `Ok(false)`: the account is not standard or the challenge is gone.
    async fn confirm_by_signature(
        &self,
        confirmation: &SignatureConfirmation<'_>,
        now: i64,
    ) -> Result<bool, StoreError>;
}

/// A challenge handed to the citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSignatureChallenge {
    pub id: String,
    /// The bytes to sign, base64.
    pub challenge: String,
    pub expires_at: OffsetDateTime,
}

pub struct ESignatureService<S, V, B, N> {
    store: S,
    verifier: Option<V>,
    bank: Option<B>,
    notifier: N,
}

impl<S, V, B, N> ESignatureService<S, V, B, N>
where
    S: SignatureStore + ProfileStore + InboxStore + Sync,
    V: SignatureVerifier,
    B: BankIdVerifier,
    N: Notifier + Sync,
{
    /// `verifier`, `bank`: `None` where none may be built (production, until the real
    /// adapters exist): their routes then answer 503.
    pub fn new(store: S, verifier: Option<V>, bank: Option<B>, notifier: N) -> Self {
        Self {
            store,
            verifier,
            bank,
            notifier,
        }
    }

    fn verifier(&self) -> Result<&V, AppError> {
        self.verifier
            .as_ref()
            .ok_or(AppError::SignatureVerificationUnavailable)
    }

    fn bank(&self) -> Result<&B, AppError> {
        self.bank
            .as_ref()
            .ok_or(AppError::SignatureVerificationUnavailable)
    }

    async fn standard_citizen(
        &self,
        account_id: &AccountId,
    ) -> Result<(StoredAccount, Profile), AppError> {
        let (account, stored) = self
            .store
            .load_profile(account_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        match account.level {
            STANDARD => Ok((account, stored.profile)),
            CONFIRMED => Err(AppError::AlreadyConfirmed),
            _ => Err(AppError::LevelNotStandard),
        }
    }

    /// A new challenge for `purpose`; it replaces any open one.
    pub async fn challenge(
        &self,
        account_id: &AccountId,
        purpose: ChallengePurpose,
        now: OffsetDateTime,
    ) -> Result<IssuedSignatureChallenge, AppError> {
        match purpose {
            ChallengePurpose::Signature => self.verifier().map(|_| ())?,
            ChallengePurpose::BankId => self.bank().map(|_| ())?,
        }
        self.standard_citizen(account_id).await?;
        let mut content = vec![0u8; 32];
        getrandom::fill(&mut content)
            .map_err(|e| AppError::Internal(format!("no randomness available: {e}")))?;
        let expires_at = now + CHALLENGE_LIFETIME;
        let challenge = SignatureChallenge {
            id: uuid::Uuid::new_v4().to_string(),
            purpose,
            content,
            expires_at: expires_at.unix_timestamp(),
            attempts: 0,
        };
        self.store
            .put_signature_challenge(account_id, &challenge)
            .await?;
        let encoded = match purpose {
            ChallengePurpose::Signature => base64::engine::general_purpose::STANDARD,
            // A nonce travels in URLs and JSON Web Tokens.
            ChallengePurpose::BankId => base64::engine::general_purpose::URL_SAFE_NO_PAD,
        }
        .encode(&challenge.content);
        Ok(IssuedSignatureChallenge {
            id: challenge.id,
            challenge: encoded,
            expires_at,
        })
    }

    /// The account's open challenge `challenge_id` for `purpose`, with this answer
    /// counted on it before anything is checked: parallel answers stop at the limit.
    async fn answered_challenge(
        &self,
        account_id: &AccountId,
        challenge_id: &str,
        purpose: ChallengePurpose,
        now_s: i64,
    ) -> Result<SignatureChallenge, AppError> {
        let challenge = self
            .store
            .signature_challenge(account_id)
            .await?
            .filter(|c| c.id == challenge_id && c.purpose == purpose && c.expires_at > now_s)
            .ok_or(AppError::SignatureChallengeInvalid)?;
        if self
            .store
            .signature_attempt(account_id, &challenge.id, MAX_SIGNATURE_ATTEMPTS)
            .await?
            .is_none()
        {
            return Err(AppError::SignatureAttemptsExhausted);
        }
        Ok(challenge)
    }

    /// Confirms the account with a signature over its open challenge.
    pub async fn confirm(
        &self,
        account_id: &AccountId,
        challenge_id: &str,
        signature: &str,
        client: (&str, &str),
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let verifier = self.verifier()?;
        let now_s = now.unix_timestamp();
        let (account, profile) = self.standard_citizen(account_id).await?;
        let challenge = self
            .answered_challenge(account_id, challenge_id, ChallengePurpose::Signature, now_s)
            .await?;
        let identity = verifier
            .verify(signature, &challenge.content, now)
            .map_err(|refusal| refusal.problem())?;
        holder_is_citizen(&identity, &profile, "signature")?;
        self.finish(
            &account,
            &challenge,
            &identity,
            VIA_E_SIGNATURE,
            client,
            now_s,
        )
        .await?;
        tracing::info!(%account_id, "identity confirmed by an electronic signature");
        Ok(())
    }

    /// The transaction that spends the challenge and confirms the account, then the
    /// notice.
    async fn finish(
        &self,
        account: &StoredAccount,
        challenge: &SignatureChallenge,
        identity: &SignedIdentity,
        via: &'static str,
        client: (&str, &str),
        now_s: i64,
    ) -> Result<(), AppError> {
        let account_id = &account.id;
        let confirmation = SignatureConfirmation {
            confirmation: Confirmation {
                account_id,
                via,
                operator_id: None,
                event: SecurityEvent {
                    account_id: account_id.clone(),
                    kind: "level_confirmed",
                    at: now_s,
                    ip: client.0.to_string(),
                    user_agent: client.1.to_string(),
                },
            },
            challenge_id: &challenge.id,
            certificate: identity,
        };
        if !self
            .store
            .confirm_by_signature(&confirmation, now_s)
            .await?
        {
            // Say what changed meanwhile: the level, or the challenge.
            self.standard_citizen(account_id).await?;
            return Err(AppError::SignatureChallengeInvalid);
        }
        let text = if via == VIA_BANK_ID {
            BANK_CONFIRMED_TEXT
        } else {
            CONFIRMED_TEXT
        };
        self.tell(account, text, now_s).await;
        Ok(())
    }

    /// Tells the citizen in the inbox and on both contacts; a notice that cannot be sent
    /// changes nothing.
    async fn tell(&self, account: &StoredAccount, text: &str, now: i64) {
        let message = Message::new(MessageCategory::Confirmation, CONFIRMED_SUBJECT, text, now);
        let email = Email::parse("email", &account.email).ok();
        let phone = Phone::parse("phone", &account.phone).ok();
        let mut deliveries = Vec::new();
        if let Some(email) = &email {
            deliveries.push((NoticeChannel::Email, Delivery::Email(email)));
        }
        if let Some(phone) = &phone {
            deliveries.push((NoticeChannel::Sms, Delivery::Sms(phone, text)));
        }
        let (channels, deliveries): (Vec<_>, Vec<_>) = deliveries.into_iter().unzip();
        let answers = tell(
            &self.store,
            &self.notifier,
            &account.id,
            &message,
            &deliveries,
        )
        .await;
        for (channel, answer) in channels.into_iter().zip(answers) {
            match answer {
                Ok(()) => sent(channel),
                Err(e) => tracing::warn!(error = %e, "confirmation notice not sent"),
            }
        }
    }
}

fn sent(channel: NoticeChannel) {
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::Security,
        channel,
    });
}

/// Names compared as people write them: case, spaces and ё/е do not matter.
fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        crate::domain::nfc(s)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
            .replace('ё', "е")
    };
    norm(a) == norm(b)
}

/// The certificate (or the bank's assertion) must name the citizen: the profile's
/// verified SNILS, and its names; a mismatch is reported at `field`.
pub(crate) fn holder_is_citizen(
    identity: &SignedIdentity,
    profile: &Profile,
    field: &str,
) -> Result<(), AppError> {
    let verified = |field: &str| {
        profile
            .statuses
            .get(field)
            .is_some_and(|s| s.state == State::Verified)
    };
    let snils = profile
        .documents
        .snils
        .as_deref()
        .filter(|_| verified("snils"));
    if snils != Some(identity.snils.as_str()) {
        return Err(invalid_field(
            field,
            "snils_mismatch",
            "СНИЛС в сертификате не совпадает с подтверждённым СНИЛС в профиле",
        ));
    }
    let p = &profile.personal;
    let given = match &p.middle_name {
        Some(middle) => format!("{} {middle}", p.first_name),
        None => p.first_name.clone(),
    };
    let names_match = identity
        .surname
        .as_deref()
        .is_some_and(|s| same_name(s, &p.last_name))
        && identity
            .given_name
            .as_deref()
            .is_some_and(|g| same_name(g, &given));
    if !names_match {
        return Err(invalid_field(
            field,
            "name_mismatch",
            "Фамилия, имя или отчество в сертификате не совпадают с профилем",
        ));
    }
    Ok(())
}

mod bank_id;
pub use bank_id::*;

#[cfg(test)]
mod tests;
