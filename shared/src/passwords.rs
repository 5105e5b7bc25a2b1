//! Password and security-answer hashing: argon2id at OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane), each hash with its own random salt, stored as a PHC string
//! so that the parameters travel with the hash.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::AppError;
use crate::redact::Secret;

/// OWASP Password Storage Cheat Sheet, argon2id, first configuration.
pub const MEMORY_KIB: u32 = 19 * 1024;
pub const PASSES: u32 = 2;
pub const LANES: u32 = 1;

/// A hash of a password nobody knows, with the same parameters, verified against when a
/// login names no account, so that unknown and known logins take the same time.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$dXNsdWdpLWR1bW15LXNhbHQ$CxvbqO25qL1z2fOlQ0fEr7Ue8mvXwUQEcNcm0Olyyx4";

fn argon2() -> Result<Argon2<'static>, AppError> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None)
        .map_err(|e| AppError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a secret into a PHC string.
pub fn hash(secret: &Secret<String>) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::Internal(format!("system RNG: {e}")))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(format!("salt: {e}")))?;
    argon2()?
        .hash_password(secret.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}")))
}

/// Checks a secret against a stored PHC string (in constant time, inside argon2).
/// `None` (no such account) spends the same effort on a dummy hash and answers `false`.
pub fn verify(secret: &Secret<String>, stored: Option<&str>) -> bool {
    let phc = stored.unwrap_or(DUMMY_PHC);
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(argon2) = argon2() else {
        return false;
    };
    let matches = argon2
        .verify_password(secret.expose().as_bytes(), &parsed)
        .is_ok();
    matches && stored.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_owasp_parameters() {
        let pw = Secret::new("Kx7#pqLm2".to_string());
        let stored = hash(&pw).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert!(verify(&pw, Some(&stored)));
        assert!(!verify(&Secret::new("Kx7#pqLm3".into()), Some(&stored)));
        assert_ne!(stored, hash(&pw).unwrap(), "salted");
    }

    #[test]
    fn unknown_account_never_matches_but_costs_the_same() {
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        assert_eq!(parsed.params.get_decimal("m"), Some(MEMORY_KIB));
        assert_eq!(parsed.params.get_decimal("t"), Some(PASSES));
        assert!(!verify(&Secret::new("anything".into()), None));
    }
}
