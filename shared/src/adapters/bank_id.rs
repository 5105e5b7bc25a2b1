//! The sandbox bank identity provider: ID tokens (JSON Web Tokens, ES256) signed with the
//! sandbox bank's key, published in `shared/sandbox/` on purpose so that tests and
//! sandbox deployments can play the bank. Only the sandbox verifier trusts it, and only
//! where sandboxes are allowed. A real bank's adapter (its issuer, its published keys) is
//! not built.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::services::e_signature::{BankIdRefusal, BankIdVerifier, BankIdentity};

/// The sandbox bank's issuer (`iss`).
pub const SANDBOX_BANK_ISSUER: &str = "https://id.bank.sandbox.uslugi.example";
/// The portal's client id at the bank (`aud`).
pub const PORTAL_CLIENT_ID: &str = "uslugi-portal";
/// The sandbox bank's public key, which the sandbox verifier trusts.
const SANDBOX_BANK_PUBLIC_KEY_PEM: &str = include_str!("../../sandbox/bank-idp.pub.pem");
/// Its private key: published, since only sandboxes trust it.
const SANDBOX_BANK_KEY_PEM: &str = include_str!("../../sandbox/bank-idp.key.pem");
/// Clock skew allowed between the bank and the portal.
const LEEWAY_SECS: i64 = 60;
/// The longest a token may have been valid: a bank's ID token is short-lived.
const MAX_TOKEN_LIFETIME_SECS: i64 = 600;

/// The claims of a bank's ID token the portal reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub nonce: String,
    /// 11 digits, as the bank verified them.
    #[serde(default)]
    pub snils: Option<String>,
    pub family_name: String,
    pub given_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
}

impl IdTokenClaims {
    /// The sandbox bank's claims for a citizen, issued `now` for 5 minutes.
    pub fn sandbox(snils: &str, names: (&str, &str, Option<&str>), nonce: &str) -> Self {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Self {
            iss: SANDBOX_BANK_ISSUER.to_string(),
            aud: PORTAL_CLIENT_ID.to_string(),
            sub: format!("sandbox-{snils}"),
            iat: now,
            exp: now + 300,
            nonce: nonce.to_string(),
            snils: Some(snils.to_string()),
            family_name: names.0.to_string(),
            given_name: names.1.to_string(),
            middle_name: names.2.map(str::to_string),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sandbox bank: {0}")]
pub struct SandboxBankError(String);

/// Signs `claims` as the sandbox bank: what the bank hands the citizen's browser.
pub fn sandbox_id_token(claims: &IdTokenClaims) -> Result<String, SandboxBankError> {
    let key = EncodingKey::from_ec_pem(SANDBOX_BANK_KEY_PEM.as_bytes())
        .map_err(|e| SandboxBankError(e.to_string()))?;
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, &key)
        .map_err(|e| SandboxBankError(e.to_string()))
}

/// Verifies ID tokens of the sandbox bank.
pub struct SandboxBankIdVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl SandboxBankIdVerifier {
    pub fn new() -> Result<Self, SandboxBankError> {
        let key = DecodingKey::from_ec_pem(SANDBOX_BANK_PUBLIC_KEY_PEM.as_bytes())
            .map_err(|e| SandboxBankError(e.to_string()))?;
        // Only ES256: a token naming another algorithm (`none`, HS256 with the public key
        // as a secret) is refused before its signature is looked at.
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[SANDBOX_BANK_ISSUER]);
        validation.set_audience(&[PORTAL_CLIENT_ID]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Times are checked below against the service's clock.
        validation.validate_exp = false;
        Ok(Self { key, validation })
    }
}

impl BankIdVerifier for SandboxBankIdVerifier {
    fn verify(
        &self,
        id_token: &str,
        nonce: &str,
        now: OffsetDateTime,
    ) -> Result<BankIdentity, BankIdRefusal> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<IdTokenClaims>(id_token, &self.key, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature
                | ErrorKind::InvalidAlgorithm
                | ErrorKind::InvalidEcdsaKey => BankIdRefusal::BadSignature,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => BankIdRefusal::WrongParty,
                _ => BankIdRefusal::Malformed(e.to_string()),
            })?;
        let claims = data.claims;
        let now = now.unix_timestamp();
        let fresh = claims.iat <= now + LEEWAY_SECS
            && claims.exp > now - LEEWAY_SECS
            && claims.exp - claims.iat <= MAX_TOKEN_LIFETIME_SECS;
        if !fresh {
            return Err(BankIdRefusal::Expired);
        }
        // Compared in constant time: the nonce is the account's secret for this attempt.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            claims.nonce.as_bytes(),
            nonce.as_bytes(),
        )) {
            return Err(BankIdRefusal::NonceMismatch);
        }
        let snils = claims
            .snils
            .filter(|s| s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(BankIdRefusal::NoSnils)?;
        Ok(BankIdentity {
            snils,
            family_name: claims.family_name,
            given_name: claims.given_name,
            middle_name: claims.middle_name,
            subject: claims.sub,
            issuer: claims.iss,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "bm9uY2Utb2YtdGhlLWFjY291bnQ";

    fn claims() -> IdTokenClaims {
        IdTokenClaims::sandbox("11223344595", ("Иванов", "Пётр", Some("Сергеевич")), NONCE)
    }

    fn verify(token: &str) -> Result<BankIdentity, BankIdRefusal> {
        SandboxBankIdVerifier::new()
            .unwrap()
            .verify(token, NONCE, OffsetDateTime::now_utc())
    }

    #[test]
    fn a_sandbox_token_names_the_citizen() {
        let identity = verify(&sandbox_id_token(&claims()).unwrap()).unwrap();
        assert_eq!(identity.snils, "11223344595");
        assert_eq!(identity.family_name, "Иванов");
        assert_eq!(identity.middle_name.as_deref(), Some("Сергеевич"));
        assert_eq!(identity.issuer, SANDBOX_BANK_ISSUER);
    }

    #[test]
    fn another_nonce_audience_issuer_or_time_is_refused() {
        let other_nonce = IdTokenClaims {
            nonce: "another".into(),
            ..claims()
        };
        assert_eq!(
            verify(&sandbox_id_token(&other_nonce).unwrap()),
            Err(BankIdRefusal::NonceMismatch)
        );
        for wrong in [
            IdTokenClaims {
                aud: "another-client".into(),
                ..claims()
            },
            IdTokenClaims {
                iss: "https://evil.example".into(),
                ..claims()
            },
        ] {
            assert_eq!(
                verify(&sandbox_id_token(&wrong).unwrap()),
                Err(BankIdRefusal::WrongParty)
            );
        }
        let old = claims();
        let expired = IdTokenClaims {
            iat: old.iat - 3600,
            exp: old.iat - 3300,
            ..old
        };
        assert_eq!(
            verify(&sandbox_id_token(&expired).unwrap()),
            Err(BankIdRefusal::Expired)
        );
        let no_snils = IdTokenClaims {
            snils: None,
            ..claims()
        };
        assert_eq!(
            verify(&sandbox_id_token(&no_snils).unwrap()),
            Err(BankIdRefusal::NoSnils)
        );
    }

    #[test]
    fn a_token_signed_otherwise_or_tampered_is_refused() {
        let token = sandbox_id_token(&claims()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        // The payload of someone else with the sandbox's signature.
        let forged_claims = IdTokenClaims {
            snils: Some("13875932508".into()),
            ..claims()
        };
        let forged = sandbox_id_token(&forged_claims).unwrap();
        let forged_payload = forged.split('.').nth(1).unwrap().to_string();
        parts[1] = &forged_payload;
        assert_eq!(verify(&parts.join(".")), Err(BankIdRefusal::BadSignature));
        // An unsigned token ("alg": "none").
        let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = token.split('.').nth(1).unwrap();
        assert!(verify(&format!("{header}.{payload}.")).is_err());
        assert!(matches!(verify("junk"), Err(BankIdRefusal::Malformed(_))));
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}
