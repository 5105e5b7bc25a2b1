//! Secrets at rest and random values.
//!
//! Confirmation codes and tokens are never stored: only their HMAC-SHA256 under a key
//! from configuration. A six-digit code has only 10⁶ values, so a plain hash would be
//! reversed instantly from a table dump; without the key it cannot be.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::AppError;
use crate::redact::Secret;

/// Smallest HMAC key we accept: 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// Keyed hashing of codes, tokens and personal identifiers used in keys.
#[derive(Clone)]
pub struct Hasher {
    key: Secret<Vec<u8>>,
}

impl Hasher {
    pub fn new(key: Vec<u8>) -> Result<Self, String> {
        if key.len() < MIN_KEY_BYTES {
            return Err(format!("HMAC key must be at least {MIN_KEY_BYTES} bytes"));
        }
        Ok(Self {
            key: Secret::new(key),
        })
    }

    /// HMAC-SHA256 over the parts (length-prefixed, so `("ab","c")` ≠ `("a","bc")`),
    /// base64url without padding.
    pub fn digest(&self, domain: &str, parts: &[&str]) -> String {
        // `new_from_slice` only fails for fixed-size keys; HMAC takes any length.
        let mut mac = match Hmac::<Sha256>::new_from_slice(self.key.expose()) {
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

    /// Compares a candidate with a stored digest in constant time.
    pub fn verify(&self, domain: &str, parts: &[&str], stored: &str) -> bool {
        let candidate = self.digest(domain, parts);
        candidate.as_bytes().ct_eq(stored.as_bytes()).into()
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
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

    fn hasher() -> Hasher {
        Hasher::new(vec![7; 32]).unwrap()
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(Hasher::new(vec![1; 31]).is_err());
    }

    #[test]
    fn digest_depends_on_key_domain_and_parts() {
        let h = hasher();
        let other = Hasher::new(vec![8; 32]).unwrap();
        let d = h.digest("code", &["id", "123456"]);
        assert_eq!(d, h.digest("code", &["id", "123456"]));
        assert_ne!(d, other.digest("code", &["id", "123456"]));
        assert_ne!(d, h.digest("token", &["id", "123456"]));
        assert_ne!(h.digest("x", &["ab", "c"]), h.digest("x", &["a", "bc"]));
        assert!(h.verify("code", &["id", "123456"], &d));
        assert!(!h.verify("code", &["id", "123457"], &d));
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
