//! Second factors beyond the SMS code: an authentication app (TOTP, RFC 6238) and
//! backup codes. What is here decides about a factor's secret and the codes typed for it;
//! what the store keeps and the routes that use them build on it.
//!
//! - **Authentication app.** A 160-bit secret from the CSPRNG, shown once as base32 and
//!   as an `otpauth://` URI (issuer `uslugi`, an account label that names no person);
//!   codes of 6 digits per 30-second step, accepted for the step before, the current one
//!   and the one after (±1 step of skew), and only for a step later than the last one the
//!   factor accepted: a code is never accepted twice, nor an older one after a newer.
//! - **Backup codes.** Ten one-time codes of 10 characters of Crockford's base32 (50 bits
//!   each), shown once as `xxxxx-xxxxx`; only their keyed hashes are kept. A typed code is
//!   read as Crockford reads it: case, spaces and hyphens do not matter, `i`/`l` are `1`
//!   and `o` is `0`.

use totp_rs::{Algorithm, Builder, Totp};

use crate::crypto::{self, Credential, Hasher};
use crate::domain::AccountId;
use crate::error::AppError;
use crate::redact::Secret;
use crate::validation::invalid_field;

/// The issuer an authentication app shows the codes under.
pub const TOTP_ISSUER: &str = "uslugi";
/// Digits of an authentication app's code.
pub const TOTP_DIGITS: usize = 6;
/// Seconds of one time step.
pub const TOTP_STEP_SECS: u64 = 30;
/// Steps before and after the current one whose codes are still accepted.
pub const TOTP_SKEW: u16 = 1;
/// Bytes of an authentication app's secret (RFC 4226 recommends 160 bits).
pub const TOTP_SECRET_BYTES: usize = 20;
/// Backup codes issued at once; issuing them again replaces every one.
pub const BACKUP_CODES: usize = 10;
/// Characters of a backup code, hyphen not counted.
pub const BACKUP_CODE_CHARS: usize = 10;
/// Crockford's base32: no `i`, `l`, `o` or `u`, so nothing is mistaken when read aloud.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new authentication app: its secret, to be kept, and what the citizen's app is given
/// once (the secret in base32 and the `otpauth://` URI), never again.
pub struct AppEnrolment {
    pub secret: Secret<Vec<u8>>,
    pub secret_base32: Secret<String>,
    pub uri: Secret<String>,
}

/// What a code typed for an authentication app proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCode {
    /// A code of this time step, later than the last one accepted.
    Accepted { step: u64 },
    /// A right code of a step already accepted (or an earlier one): a replay.
    Replayed,
    /// Not a code of the app for now.
    Wrong,
}

/// The label an app shows next to the codes: the issuer and a short, stable piece of the
/// account id, so that a citizen with several accounts tells them apart, and nothing
/// personal (no name, phone or e-mail) ends up in the app or a QR code.
pub fn app_label(account_id: &AccountId) -> String {
    let id: &str = account_id;
    let short: String = id.chars().filter(|c| *c != '-').take(8).collect();
    format!("account-{short}")
}

fn totp(secret: &[u8], label: &str) -> Result<Totp, AppError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(TOTP_DIGITS as u8)
        .with_skew(TOTP_SKEW)
        .with_step_duration(TOTP_STEP_SECS)
        .with_secret(secret.to_vec())
        .with_issuer(Some(TOTP_ISSUER))
        .with_account_name(label)
        .build()
        .map_err(|e| AppError::Internal(format!("authentication app: {e}")))
}

/// A new authentication app for the account.
pub fn enrol_app(account_id: &AccountId) -> Result<AppEnrolment, AppError> {
    let secret = crypto::random_bytes::<TOTP_SECRET_BYTES>()?.to_vec();
    let app = totp(&secret, &app_label(account_id))?;
    let uri = app
        .to_url()
        .map_err(|e| AppError::Internal(format!("authentication app URI: {e}")))?;
    Ok(AppEnrolment {
        secret_base32: Secret::new(app.secret().to_base32()),
        uri: Secret::new(uri),
        secret: Secret::new(secret),
    })
}

/// The bytes of an app's secret as it is kept (base32).
pub fn app_secret_bytes(base32: &str) -> Result<Vec<u8>, AppError> {
    totp_rs::Secret::try_from_base32(base32)
        .map(|secret| secret.as_ref().to_vec())
        .map_err(|_| AppError::Internal("stored app secret unreadable".into()))
}

/// A typed app code's format: six digits, stray spaces around them (and one in the
/// middle, as apps show them) forgiven; otherwise 422 `invalid_code_format` at `/code`.
pub fn app_code(typed: &str) -> Result<String, AppError> {
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() == TOTP_DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(invalid_field(
            "code",
            "invalid_code_format",
            "Код из приложения состоит из 6 цифр",
        ))
    }
}

/// Checks a code (already through [`app_code`]) against the app's secret at `now`
/// (Unix seconds), given the last step the factor accepted.
pub fn check_app_code(
    secret: &[u8],
    code: &str,
    now: i64,
    last_step: Option<u64>,
) -> Result<AppCode, AppError> {
    let app = totp(secret, TOTP_ISSUER)?;
    let now = u64::try_from(now).unwrap_or(0);
    Ok(match app.check(code, now) {
        Some(step) if last_step.is_some_and(|last| step <= last) => AppCode::Replayed,
        Some(step) => AppCode::Accepted { step },
        None => AppCode::Wrong,
    })
}

/// Ten new backup codes, as shown to the citizen (`xxxxx-xxxxx`).
pub fn new_backup_codes() -> Result<Vec<Secret<String>>, AppError> {
    (0..BACKUP_CODES)
        .map(|_| {
            let bytes = crypto::random_bytes::<BACKUP_CODE_CHARS>()?;
            // 256 is a multiple of 32: every character is equally likely.
            let chars: String = bytes
                .iter()
                .map(|b| char::from(CROCKFORD[usize::from(b % 32)]))
                .collect();
            let (head, tail) = chars.split_at(BACKUP_CODE_CHARS / 2);
            Ok(Secret::new(format!("{head}-{tail}")))
        })
        .collect()
}

/// A typed backup code as it is hashed: lower case, without spaces and hyphens, with
/// Crockford's look-alikes read as digits; `None` when it cannot be a backup code.
pub fn normalise_backup_code(typed: &str) -> Option<String> {
    let code: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'i' | 'l' => '1',
            'o' => '0',
            other => other,
        })
        .collect();
    (code.chars().count() == BACKUP_CODE_CHARS && code.bytes().all(|b| CROCKFORD.contains(&b)))
        .then_some(code)
}

/// The keyed hash a backup code of the account is kept under (the current key version).
pub fn backup_code_hash(hasher: &Hasher, account_id: &AccountId, normalised: &str) -> String {
    hasher.credential(Credential::BackupCode, &[account_id, normalised])
}

/// The keyed hashes a typed backup code may be kept under, current key version first
/// (codes issued before a rotation are kept under an older one).
pub fn backup_code_lookups(
    hasher: &Hasher,
    account_id: &AccountId,
    normalised: &str,
) -> Vec<String> {
    hasher.credential_lookups(Credential::BackupCode, &[account_id, normalised])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 secret of RFC 6238's test vectors (Appendix B).
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn codes_match_the_rfc_6238_vectors() {
        // Appendix B gives 8 digits; an app shows their last 6.
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            let step = u64::try_from(time).unwrap() / TOTP_STEP_SECS;
            assert_eq!(
                check_app_code(RFC_SECRET, code, time, None).unwrap(),
                AppCode::Accepted { step },
                "{time}"
            );
        }
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        let time = 1_111_111_109; // step 37037036
        let step = 37_037_036;
        let code = "081804";
        for (now, seen) in [
            (time - 30, Some(step)),
            (time + 30, Some(step)),
            (time - 60, None),
            (time + 60, None),
        ] {
            let found = check_app_code(RFC_SECRET, code, now, None).unwrap();
            match seen {
                Some(s) => assert_eq!(found, AppCode::Accepted { step: s }, "{now}"),
                None => assert_eq!(found, AppCode::Wrong, "{now}"),
            }
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_never_after_a_later_one() {
        let time = 1_111_111_109;
        let step = 37_037_036;
        let code = "081804";
        assert_eq!(
            check_app_code(RFC_SECRET, code, time, Some(step)).unwrap(),
            AppCode::Replayed
        );
        assert_eq!(
            check_app_code(RFC_SECRET, code, time, Some(step + 1)).unwrap(),
            AppCode::Replayed
        );
        assert_eq!(
            check_app_code(RFC_SECRET, code, time, Some(step - 1)).unwrap(),
            AppCode::Accepted { step }
        );
        assert_eq!(
            check_app_code(RFC_SECRET, "081805", time, None).unwrap(),
            AppCode::Wrong
        );
    }

    #[test]
    fn app_codes_are_six_digits() {
        assert_eq!(app_code(" 081 804 ").unwrap(), "081804");
        for bad in ["", "08180", "0818045", "08180a", "٠٨١٨٠٤"] {
            assert!(app_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_enrolment_names_the_issuer_and_no_person() {
        let id = AccountId::new();
        let enrolment = enrol_app(&id).unwrap();
        assert_eq!(enrolment.secret.expose().len(), TOTP_SECRET_BYTES);
        let uri = enrolment.uri.expose();
        assert!(uri.starts_with("otpauth://totp/uslugi:account-"), "{uri}");
        assert!(uri.contains("issuer=uslugi"), "{uri}");
        assert!(
            uri.contains(&format!("secret={}", enrolment.secret_base32.expose())),
            "{uri}"
        );
        // Two enrolments never share a secret.
        let other = enrol_app(&id).unwrap();
        assert_ne!(enrolment.secret.expose(), other.secret.expose());
        // Kept as base32, read back to the same bytes.
        assert_eq!(
            &app_secret_bytes(enrolment.secret_base32.expose()).unwrap(),
            enrolment.secret.expose()
        );
    }

    #[test]
    fn backup_codes_are_ten_distinct_and_read_back() {
        let codes = new_backup_codes().unwrap();
        assert_eq!(codes.len(), BACKUP_CODES);
        let mut normalised: Vec<String> = codes
            .iter()
            .map(|c| {
                let shown = c.expose();
                assert_eq!(shown.len(), BACKUP_CODE_CHARS + 1, "{shown}");
                assert_eq!(shown.as_bytes()[5], b'-');
                normalise_backup_code(shown).unwrap()
            })
            .collect();
        normalised.sort();
        normalised.dedup();
        assert_eq!(normalised.len(), BACKUP_CODES);
    }

    #[test]
    fn backup_codes_are_read_as_crockford_reads_them() {
        assert_eq!(
            normalise_backup_code(" AB1C0-d2EFG ").as_deref(),
            Some("ab1c0d2efg")
        );
        assert_eq!(
            normalise_backup_code("abIcO-d2eLg").as_deref(),
            Some("ab1c0d2e1g")
        );
        for bad in ["", "abcde", "abcde-fghjkm", "abcde-fghju", "абвгд-еёжзи"] {
            assert_eq!(normalise_backup_code(bad), None, "{bad:?}");
        }
    }
}
