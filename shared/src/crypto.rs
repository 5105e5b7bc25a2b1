//! Secrets at rest and random values.
//!
//! Confirmation codes and tokens are never stored: only their HMAC-SHA256 under a key
//! from the HMAC secret. A six-digit code has only 10⁶ values, so a plain hash would be
//! reversed instantly from a table dump; without the key it cannot be. The secret holds
//! versioned keys, so that credentials can move to a new key while identifiers stay.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::redact::Secret;

/// Smallest HMAC key we accept: 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// What a keyed hash stands for when it is a permanent identifier: the table finds
/// accounts, children, payers and counters by it, so it must never change. These are
/// always hashed under the keyring's identifiers version; re-keying them is a data
/// migration, not a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identifier {
    /// A phone, e-mail address or SNILS as a login and a code destination.
    Destination,
    /// A client address in the code send limits.
    Client,
    /// A client address in the login failure limits.
    LoginClient,
    /// What was typed as a login when it is no phone, e-mail or SNILS.
    UnknownLogin,
    /// The account whose wrong security answers are counted.
    SecurityAnswer,
    /// A session whose wrong passwords, given to confirm a change the password guards,
    /// are counted apart from the account's logins.
    GuardedSession,
    /// The account whose wrong codes of authentication apps and backup codes are counted.
    SecondFactor,
    /// The stand-in number a recovery code for an unknown SNILS is recorded against.
    SnilsStandIn,
    /// A device (user agent) an account signed in from.
    Device,
    Child,
    Vehicle,
    /// A payer's document in the payer and holder indexes.
    Payer,
    IdempotencyKey,
    PaymentRequest,
    /// A document with a due date, as the reminders of that date know it: a changed
    /// document is another one, whose reminders start again.
    DocumentStamp,
}

impl Identifier {
    fn domain(self) -> &'static str {
        match self {
            Self::Destination => "destination",
            Self::Client => "client",
            Self::LoginClient => "login-client",
            Self::UnknownLogin => "unknown-login",
            Self::SecurityAnswer => "security-answer",
            Self::GuardedSession => "guarded-session",
            Self::SecondFactor => "second-factor",
            Self::SnilsStandIn => "snils-stand-in",
            Self::Device => "device",
            Self::Child => "child",
            Self::Vehicle => "vehicle",
            Self::Payer => "payer",
            Self::IdempotencyKey => "idempotency-key",
            Self::PaymentRequest => "payment-request",
            Self::DocumentStamp => "document-stamp",
        }
    }
}

/// What a keyed hash stands for when it is a secret handed to someone (a code, a token,
/// a key): new ones are hashed under the current version, and one hashed under any
/// version still in the keyring is accepted, so a rotation ends none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Code,
    VerificationToken,
    SessionToken,
    LoginChallenge,
    OperatorKey,
    LetterCode,
    BillerKey,
    /// A backup code of a second step (the account id, then the code as normalised).
    BackupCode,
    /// A WebAuthn ceremony (a passkey's registration or a passwordless login).
    PasskeyCeremony,
}

impl Credential {
    fn domain(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::VerificationToken => "verification-token",
            Self::SessionToken => "session-token",
            Self::LoginChallenge => "login-challenge",
            Self::OperatorKey => "operator-key",
            Self::LetterCode => "letter-code",
            Self::BillerKey => "biller-key",
            Self::BackupCode => "backup-code",
            Self::PasskeyCeremony => "passkey-ceremony",
        }
    }
}

/// Why a secret cannot serve as the HMAC keyring. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("the secret is not a JSON object (it starts with '{{' but does not parse)")]
    NotJson,
    #[error("the secret has no \"current\" version")]
    NoCurrent,
    #[error("\"{field}\" must be a version number such as \"1\"")]
    BadVersion { field: &'static str },
    #[error("\"{field}\" names version {version}, but there is no key_{version}")]
    UnknownVersion { field: &'static str, version: u32 },
    #[error("{name} must be a string of at least {MIN_KEY_BYTES} bytes")]
    ShortKey { name: String },
    #[error("there is no key_1 and no \"identifiers\": name the version identifiers are hashed under (the lowest present is {lowest}) once they were re-keyed to it")]
    IdentifiersUnnamed { lowest: u32 },
    #[error("unexpected field {name:?}: only \"current\", \"identifiers\" and key_<version> belong in the secret")]
    UnknownField { name: String },
}

/// Keyed hashing of codes, tokens and personal identifiers used in keys, under a
/// versioned key (see [`Hasher::from_secret`]).
#[derive(Clone)]
pub struct Hasher {
    keys: Arc<Keyring>,
}

struct Keyring {
    /// Every version present, the current one first, then the others newest first:
    /// the order look-ups try them in.
    by_preference: Vec<(u32, Secret<Vec<u8>>)>,
    /// Index in `by_preference` of the key identifiers are hashed under.
    identifiers: usize,
}

impl Hasher {
    /// A keyring of one version: what a test or a single-key setup needs.
    pub fn new(key: Vec<u8>) -> Result<Self, KeyringError> {
        Self::from_versions(1, None, vec![(1, key)])
    }

    /// Reads the HMAC secret's string: `{"current":"2","key_1":"…","key_2":"…"}`, with
    /// an optional `"identifiers":"1"` (default: the lowest version present, which must
    /// then be 1: a secret that lost key_1 has to say where identifiers went). A string
    /// that is not a JSON object is the key of version 1, as the secret held it before
    /// keys had versions.
    pub fn from_secret(secret: &str) -> Result<Self, KeyringError> {
        if !secret.trim_start().starts_with('{') {
            return Self::new(secret.as_bytes().to_vec());
        }
        // Parsed as a map of values, never into typed fields: serde's type errors quote
        // the offending value, and that value may be a key.
        let fields: serde_json::Map<String, Value> =
            serde_json::from_str(secret).map_err(|_| KeyringError::NotJson)?;
        let version = |field: &'static str, value: &Value| -> Result<u32, KeyringError> {
            let text = match value {
                Value::String(s) => s.trim().to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(KeyringError::BadVersion { field }),
            };
            text.parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or(KeyringError::BadVersion { field })
        };
        let mut current = None;
        let mut identifiers = None;
        let mut keys = Vec::new();
        for (name, value) in &fields {
            match name.as_str() {
                "current" => current = Some(version("current", value)?),
                "identifiers" => identifiers = Some(version("identifiers", value)?),
                other => {
                    let Some(v) = other
                        .strip_prefix("key_")
                        .and_then(|v| v.parse::<u32>().ok())
                        .filter(|v| *v > 0)
                    else {
                        return Err(KeyringError::UnknownField { name: name.clone() });
                    };
                    let Value::String(key) = value else {
                        return Err(KeyringError::ShortKey { name: name.clone() });
                    };
                    keys.push((v, key.as_bytes().to_vec()));
                }
            }
        }
        let current = current.ok_or(KeyringError::NoCurrent)?;
        Self::from_versions(current, identifiers, keys)
    }

    fn from_versions(
        current: u32,
        identifiers: Option<u32>,
        keys: Vec<(u32, Vec<u8>)>,
    ) -> Result<Self, KeyringError> {
        let mut by_version = BTreeMap::new();
        for (version, key) in keys {
            if key.len() < MIN_KEY_BYTES {
                return Err(KeyringError::ShortKey {
                    name: format!("key_{version}"),
                });
            }
            by_version.insert(version, Secret::new(key));
        }
        let lowest = by_version.keys().next().copied().unwrap_or(current);
        // Identifiers default to the lowest version, which is version 1 unless someone
        // removed it: then only an explicit choice may move them.
        let identifiers = match identifiers {
            Some(v) => v,
            None if lowest == 1 => 1,
            None => return Err(KeyringError::IdentifiersUnnamed { lowest }),
        };
        for (field, version) in [("current", current), ("identifiers", identifiers)] {
            if !by_version.contains_key(&version) {
                return Err(KeyringError::UnknownVersion { field, version });
            }
        }
        let mut by_preference: Vec<(u32, Secret<Vec<u8>>)> = Vec::with_capacity(by_version.len());
        if let Some(key) = by_version.remove(&current) {
            by_preference.push((current, key));
        }
        by_preference.extend(by_version.into_iter().rev());
        let identifiers = by_preference
            .iter()
            .position(|(v, _)| *v == identifiers)
            .unwrap_or_default();
        Ok(Self {
            keys: Arc::new(Keyring {
                by_preference,
                identifiers,
            }),
        })
    }

    /// The version new credentials are hashed under.
    pub fn current_version(&self) -> u32 {
        self.keys.by_preference.first().map_or(0, |(v, _)| *v)
    }

    /// Every version present, newest first: what a cold start reports.
    pub fn versions(&self) -> Vec<u32> {
        let mut versions: Vec<u32> = self.keys.by_preference.iter().map(|(v, _)| *v).collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        versions
    }

    /// The version identifiers are hashed under.
    pub fn identifiers_version(&self) -> u32 {
        self.keys
            .by_preference
            .get(self.keys.identifiers)
            .map_or(0, |(v, _)| *v)
    }

    /// The permanent keyed hash of an identifier.
    pub fn identifier(&self, kind: Identifier, parts: &[&str]) -> String {
        let (_, key) = &self.keys.by_preference[self.keys.identifiers];
        mac(key, kind.domain(), parts)
    }

    /// The keyed hash a new credential is stored under: the current version's.
    pub fn credential(&self, kind: Credential, parts: &[&str]) -> String {
        let (_, key) = &self.keys.by_preference[0];
        mac(key, kind.domain(), parts)
    }

    /// Every keyed hash a credential may have been stored under, the current version's
    /// first: a look-up tries them in this order. One while the keyring holds one key.
    pub fn credential_lookups(&self, kind: Credential, parts: &[&str]) -> Vec<String> {
        self.keys
            .by_preference
            .iter()
            .map(|(_, key)| mac(key, kind.domain(), parts))
            .collect()
    }

    /// Whether a presented credential matches a stored hash under any version present,
    /// each compared in constant time.
    pub fn verify_credential(&self, kind: Credential, parts: &[&str], stored: &str) -> bool {
        self.keys
            .by_preference
            .iter()
            .fold(false, |matched, (_, key)| {
                let candidate = mac(key, kind.domain(), parts);
                matched | bool::from(candidate.as_bytes().ct_eq(stored.as_bytes()))
            })
    }
}

/// HMAC-SHA256 over the domain and the parts (length-prefixed, so `("ab","c")` ≠
/// `("a","bc")`), base64url without padding.
fn mac(key: &Secret<Vec<u8>>, domain: &str, parts: &[&str]) -> String {
    // `new_from_slice` only fails for fixed-size keys; HMAC takes any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.expose()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(domain.as_bytes());
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// `N` bytes from the system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| AppError::Internal(format!("system RNG: {e}")))?;
    Ok(buf)
}

/// A uniformly random code of `digits` decimal digits (at most 18) from the CSPRNG.
pub fn digit_code(digits: u32) -> Result<Secret<String>, AppError> {
    let modulus = 10u64.pow(digits.min(18));
    // Rejection sampling keeps every code equally likely.
    let limit = u64::MAX - u64::MAX % modulus;
    loop {
        let n = u64::from_be_bytes(random_bytes::<8>()?);
        if n < limit {
            return Ok(Secret::new(format!(
                "{:0width$}",
                n % modulus,
                width = digits.min(18) as usize
            )));
        }
    }
}

/// A uniformly random six-digit code from the operating system's CSPRNG.
pub fn six_digit_code() -> Result<Secret<String>, AppError> {
    // Rejection sampling keeps every code equally likely: 4_294_000_000 is the largest
    // multiple of 10⁶ below 2³².
    const LIMIT: u32 = 4_294_000_000;
    loop {
        let n = u32::from_be_bytes(random_bytes::<4>()?);
        if n < LIMIT {
            return Ok(Secret::new(format!("{:06}", n % 1_000_000)));
        }
    }
}

/// A bearer token: the prefix (which lets logs recognise and mask it) and 256 random
/// bits in base64url.
pub fn token(prefix: &str) -> Result<Secret<String>, AppError> {
    let bytes = random_bytes::<32>()?;
    Ok(Secret::new(format!(
        "{prefix}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn hasher() -> Hasher {
        Hasher::new(vec![7; 32]).unwrap()
    }

    fn v1() -> Hasher {
        Hasher::from_secret(&format!(r#"{{"current":"1","key_1":"{K1}"}}"#)).unwrap()
    }

    fn v2() -> Hasher {
        Hasher::from_secret(&format!(
            r#"{{"current":"2","key_1":"{K1}","key_2":"{K2}"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Hasher::new(vec![1; 31]).is_err());
        let err = Hasher::from_secret(&format!(
            r#"{{"current":"2","key_1":"{K1}","key_2":"short"}}"#
        ))
        .err()
        .unwrap();
        assert_eq!(
            err,
            KeyringError::ShortKey {
                name: "key_2".into()
            }
        );
        // The message names the field, never the key.
        assert!(!err.to_string().contains("short"), "{err}");
    }

    #[test]
    fn a_secret_without_current_or_with_a_missing_version_is_refused() {
        let err = Hasher::from_secret(&format!(r#"{{"key_1":"{K1}"}}"#))
            .err()
            .unwrap();
        assert_eq!(err, KeyringError::NoCurrent);
        let err = Hasher::from_secret(&format!(r#"{{"current":"2","key_1":"{K1}"}}"#))
            .err()
            .unwrap();
        assert_eq!(
            err,
            KeyringError::UnknownVersion {
                field: "current",
                version: 2
            }
        );
        let err = Hasher::from_secret(&format!(r#"{{"current":"one","key_1":"{K1}"}}"#))
            .err()
            .unwrap();
        assert_eq!(err, KeyringError::BadVersion { field: "current" });
        let err = Hasher::from_secret(&format!(r#"{{"current":"1","key1":"{K1}"}}"#))
            .err()
            .unwrap();
        assert_eq!(
            err,
            KeyringError::UnknownField {
                name: "key1".into()
            }
        );
        let err = Hasher::from_secret(&format!(r#"{{"current":"1","key_1":"{K1}""#))
            .err()
            .unwrap();
        assert_eq!(err, KeyringError::NotJson);
    }

    #[test]
    fn a_plain_string_is_version_one() {
        let plain = Hasher::from_secret(K1).unwrap();
        assert_eq!(plain.current_version(), 1);
        let parts = ["+79318702901"];
        assert_eq!(
            plain.identifier(Identifier::Destination, &parts),
            v1().identifier(Identifier::Destination, &parts)
        );
        assert_eq!(
            plain.credential(Credential::SessionToken, &["st_x"]),
            v1().credential(Credential::SessionToken, &["st_x"])
        );
    }

    #[test]
    fn digest_depends_on_key_domain_and_parts() {
        let h = hasher();
        let other = Hasher::new(vec![8; 32]).unwrap();
        let d = h.credential(Credential::Code, &["id", "123456"]);
        assert_eq!(d, h.credential(Credential::Code, &["id", "123456"]));
        assert_ne!(d, other.credential(Credential::Code, &["id", "123456"]));
        assert_ne!(d, h.credential(Credential::LetterCode, &["id", "123456"]));
        assert_ne!(
            h.identifier(Identifier::Payer, &["ab", "c"]),
            h.identifier(Identifier::Payer, &["a", "bc"])
        );
        assert!(h.verify_credential(Credential::Code, &["id", "123456"], &d));
        assert!(!h.verify_credential(Credential::Code, &["id", "123457"], &d));
    }

    #[test]
    fn credentials_of_the_old_version_are_still_accepted_after_a_rotation() {
        let session = v1().credential(Credential::SessionToken, &["st_abc"]);
        let code = v1().credential(Credential::Code, &["id", "123456"]);
        let biller = v1().credential(Credential::BillerKey, &["bk_abc"]);
        let rotated = v2();
        // New ones are hashed under v2...
        assert_eq!(rotated.current_version(), 2);
        let new_session = rotated.credential(Credential::SessionToken, &["st_abc"]);
        assert_ne!(new_session, session);
        // ...and a look-up tries v2 first, then finds the v1 session and biller key.
        let lookups = rotated.credential_lookups(Credential::SessionToken, &["st_abc"]);
        assert_eq!(lookups, [new_session, session]);
        assert!(rotated
            .credential_lookups(Credential::BillerKey, &["bk_abc"])
            .contains(&biller));
        assert!(rotated.verify_credential(Credential::Code, &["id", "123456"], &code));
        assert!(!rotated.verify_credential(Credential::Code, &["id", "654321"], &code));
    }

    #[test]
    fn identifiers_do_not_change_with_a_rotation() {
        let parts = ["snils", "11223344595"];
        let before = v1().identifier(Identifier::Payer, &parts);
        assert_eq!(v2().identifier(Identifier::Payer, &parts), before);
        assert_eq!(v2().identifiers_version(), 1);
        // Named explicitly, the identifiers version wins over the lowest one.
        let pinned = Hasher::from_secret(&format!(
            r#"{{"current":"2","identifiers":"2","key_1":"{K1}","key_2":"{K2}"}}"#
        ))
        .unwrap();
        assert_ne!(pinned.identifier(Identifier::Payer, &parts), before);
    }

    #[test]
    fn removing_the_old_version_ends_its_credentials() {
        let session = v1().credential(Credential::SessionToken, &["st_abc"]);
        let code = v1().credential(Credential::Code, &["id", "123456"]);
        let only_v2 = Hasher::from_secret(&format!(
            r#"{{"current":"2","identifiers":"2","key_2":"{K2}"}}"#
        ))
        .unwrap();
        assert!(!only_v2
            .credential_lookups(Credential::SessionToken, &["st_abc"])
            .contains(&session));
        assert!(!only_v2.verify_credential(Credential::Code, &["id", "123456"], &code));
        assert_eq!(only_v2.identifiers_version(), 2);
    }

    #[test]
    fn dropping_key_1_without_naming_the_identifiers_version_is_refused() {
        // Identifiers default to the lowest version; with key_1 gone that default would
        // silently move every login to another key.
        let err = Hasher::from_secret(&format!(r#"{{"current":"2","key_2":"{K2}"}}"#))
            .err()
            .unwrap();
        assert_eq!(err, KeyringError::IdentifiersUnnamed { lowest: 2 });
    }

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..200)
            .map(|_| six_digit_code().unwrap().expose().clone())
            .collect();
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
        assert!(codes.len() > 190, "codes repeat too often: {}", codes.len());
    }

    #[test]
    fn tokens_carry_256_bits() {
        let t = token("vt_").unwrap();
        let body = t.expose().strip_prefix("vt_").unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
    }
}
