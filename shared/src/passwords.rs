//! Password and security-answer hashing: argon2id at OWASP's recommended parameters
//! (19 MiB, 2 passes, 1 lane), each hash with its own random salt, stored as a PHC string
//! so that the parameters travel with the hash.

use std::cell::RefCell;

use argon2::password_hash::{Output, PasswordHash, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

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

/// Length of the stored hash.
const OUTPUT_LEN: usize = 32;

thread_local! {
    /// The 19 MiB of argon2 working memory, allocated once per process and reused. A
    /// fresh 19 MiB per login, freed at once, fragments the heap: measured, a warm
    /// function's resident memory kept growing with every login.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2id of `secret` with `salt` into `out`, in the reused working memory.
fn compute(
    argon2: &Argon2<'_>,
    secret: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), AppError> {
    MEMORY.with(|memory| {
        let mut blocks = memory.borrow_mut();
        let needed = argon2.params().block_count();
        if blocks.len() != needed {
            *blocks = vec![Block::default(); needed];
        }
        argon2
            .hash_password_into_with_memory(secret, salt, out, &mut blocks[..])
            .map_err(|e| AppError::Internal(format!("argon2: {e}")))
    })
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) for a new secret.
pub fn hash(secret: &Secret<String>) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::Internal(format!("system RNG: {e}")))?;
    let salt_b64 =
        SaltString::encode_b64(&salt).map_err(|e| AppError::Internal(format!("salt: {e}")))?;
    let mut out = [0u8; OUTPUT_LEN];
    compute(&argon2()?, secret.expose().as_bytes(), &salt, &mut out)?;
    let output = Output::new(&out).map_err(|e| AppError::Internal(format!("argon2: {e}")))?;
    Ok(format!(
        "$argon2id$v=19$m={MEMORY_KIB},t={PASSES},p={LANES}${}${output}",
        salt_b64.as_str()
    ))
}

/// Whether `secret` matches a stored PHC string. With no stored hash (an unknown login)
/// the same work is done against a dummy, and the answer is no.
pub fn verify(secret: &Secret<String>, stored: Option<&str>) -> bool {
    let phc = stored.unwrap_or(DUMMY_PHC);
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(argon2) = argon2() else {
        return false;
    };
    let ours = parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(0x13)
        && parsed.params.get_decimal("m") == Some(MEMORY_KIB)
        && parsed.params.get_decimal("t") == Some(PASSES)
        && parsed.params.get_decimal("p") == Some(LANES);
    let matches = match (ours, parsed.salt, parsed.hash) {
        (true, Some(salt), Some(expected)) => {
            let mut salt_buf = [0u8; 64];
            let mut out = vec![0u8; expected.len()];
            match salt.decode_b64(&mut salt_buf) {
                Ok(salt) => {
                    compute(&argon2, secret.expose().as_bytes(), salt, &mut out).is_ok()
                        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
                }
                Err(_) => false,
            }
        }
        // Hashes made with other parameters (older ones) are checked the standard way.
        _ => argon2
            .verify_password(secret.expose().as_bytes(), &parsed)
            .is_ok(),
    };
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
    fn hashes_agree_with_the_standard_implementation() {
        use argon2::password_hash::PasswordHasher as _;
        let pw = Secret::new("Kx7#pqLm2".to_string());
        // Ours checks the standard one's hash, and the other way round.
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let standard = argon2()
            .unwrap()
            .hash_password(b"Kx7#pqLm2", &salt)
            .unwrap()
            .to_string();
        assert!(verify(&pw, Some(&standard)));
        let ours = hash(&pw).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2()
            .unwrap()
            .verify_password(b"Kx7#pqLm2", &parsed)
            .is_ok());
        // Other parameters still verify, the standard way.
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"Kx7#pqLm2", &salt)
        .unwrap()
        .to_string();
        assert!(verify(&pw, Some(&other)));
        assert!(!verify(&Secret::new("wrong".into()), Some(&other)));
    }

    #[test]
    fn unknown_account_never_matches_but_costs_the_same() {
        let parsed = PasswordHash::new(DUMMY_PHC).unwrap();
        assert_eq!(parsed.params.get_decimal("m"), Some(MEMORY_KIB));
        assert_eq!(parsed.params.get_decimal("t"), Some(PASSES));
        assert!(!verify(&Secret::new("anything".into()), None));
    }
}
