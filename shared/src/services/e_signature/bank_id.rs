//! Confirming the identity through a bank: the citizen signs in at their bank's identity
//! provider, which returns an ID token (OpenID Connect, ES256) naming them, with the
//! account's challenge as its nonce. The verifier checks the token's signature, issuer,
//! audience, times and nonce; the service checks that it names the citizen, exactly as
//! for a signature's certificate.

use super::*;

/// How a confirmation through a bank is recorded on the account.
pub const VIA_BANK_ID: &str = "bank_id";

/// What a bank's ID token says of its holder, and who said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankIdentity {
    /// 11 digits.
    pub snils: String,
    pub family_name: String,
    pub given_name: String,
    pub middle_name: Option<String>,
    /// The bank's own id of the citizen (`sub`).
    pub subject: String,
    /// The bank (`iss`).
    pub issuer: String,
}

/// Why a bank's ID token confirms nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankIdRefusal {
    #[error("not an ID token: {0}")]
    Malformed(String),
    #[error("the token is not signed by a trusted bank")]
    BadSignature,
    #[error("the token is for another client or from another issuer")]
    WrongParty,
    #[error("the token expired or is not valid yet")]
    Expired,
    #[error("the token's nonce is not the account's challenge")]
    NonceMismatch,
    #[error("the token names no SNILS")]
    NoSnils,
}

impl BankIdRefusal {
    /// The field error the citizen gets at `/id_token`.
    fn problem(&self) -> AppError {
        let (code, text) = match self {
            Self::Malformed(_) => ("id_token_malformed", "Это не ответ банка"),
            Self::BadSignature => (
                "id_token_untrusted",
                "Ответ не подписан банком, которому доверяет портал",
            ),
            Self::WrongParty => (
                "id_token_wrong_party",
                "Ответ банка предназначен другому получателю",
            ),
            Self::Expired => (
                "id_token_expired",
                "Ответ банка устарел: войдите через банк снова",
            ),
            Self::NonceMismatch => (
                "nonce_mismatch",
                "Ответ банка относится к другому запросу: начните снова",
            ),
            Self::NoSnils => ("id_token_without_snils", "Банк не передал СНИЛС"),
        };
        invalid_field("id_token", code, text)
    }
}

/// Checks a bank's ID token against the `nonce` the account was given.
pub trait BankIdVerifier: Sync {
    fn verify(
        &self,
        id_token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<BankIdentity, BankIdRefusal>;
}

impl<S, V, B, N> ESignatureService<S, V, B, N>
where
    S: SignatureStore + ProfileStore + InboxStore + Sync,
    V: SignatureVerifier,
    B: BankIdVerifier,
    N: Notifier + Sync,
{
    /// Confirms the account with its bank's ID token over its open challenge.
    pub async fn confirm_by_bank(
        &self,
        account_id: &AccountId,
        challenge_id: &str,
        id_token: &str,
        client: (&str, &str),
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let bank = self.bank()?;
        let now_s = now.unix_timestamp();
        let (account, profile) = self.standard_citizen(account_id).await?;
        let challenge = self
            .answered_challenge(account_id, challenge_id, ChallengePurpose::BankId, now_s)
            .await?;
        let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&challenge.content);
        let bank_identity = bank
            .verify(id_token, &nonce, now)
            .map_err(|refusal| refusal.problem())?;
        let given_name = match &bank_identity.middle_name {
            Some(middle) => format!("{} {middle}", bank_identity.given_name),
            None => bank_identity.given_name.clone(),
        };
        let identity = SignedIdentity {
            snils: bank_identity.snils,
            surname: Some(bank_identity.family_name),
            given_name: Some(given_name),
            serial: bank_identity.subject,
            issuer: bank_identity.issuer,
        };
        holder_is_citizen(&identity, &profile, "id_token")?;
        self.finish(&account, &challenge, &identity, VIA_BANK_ID, client, now_s)
            .await?;
        tracing::info!(%account_id, "identity confirmed through a bank");
        Ok(())
    }
}
