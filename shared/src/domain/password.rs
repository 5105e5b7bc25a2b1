//! The password policy: 8–128 characters, at least one Latin letter and one digit, not
//! the account's own e-mail or phone, and not one of the most common breached passwords.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::error::FieldError;
use crate::redact::Secret;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Most common passwords from breach corpora, most common first (see shared/data/README.md).
const COMMON_PASSWORDS: &str = include_str!("../../data/common-passwords.txt");

/// Built on first use only: functions that never check a new password never pay for it.
fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON_PASSWORDS.lines().filter(|l| !l.is_empty()).collect())
}

pub fn common_password_count() -> usize {
    common_passwords().len()
}

/// Checks a new password against the policy. `own` are the account's e-mail and phone
/// (in any form the citizen may type them), which a password may not be.
pub fn check_new_password(
    field: &str,
    password: &Secret<String>,
    own: &[&str],
) -> Result<(), FieldError> {
    let pw = password.expose();
    let chars = pw.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(FieldError::new(
            field,
            "password_length",
            format!("Пароль должен быть от {MIN_PASSWORD_CHARS} до {MAX_PASSWORD_CHARS} символов"),
        ));
    }
    if !pw.chars().any(|c| c.is_ascii_alphabetic()) || !pw.chars().any(|c| c.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            "password_too_simple",
            "Пароль должен содержать хотя бы одну латинскую букву и одну цифру",
        ));
    }
    let lowered = pw.to_lowercase();
    // A phone number alone never passes the letter rule above, so in practice this
    // catches the e-mail address, in any case.
    let is_own = own
        .iter()
        .any(|value| !value.trim().is_empty() && lowered == value.trim().to_lowercase());
    if is_own {
        return Err(FieldError::new(
            field,
            "password_is_contact",
            "Пароль не должен совпадать с электронной почтой или телефоном",
        ));
    }
    if common_passwords().contains(lowered.as_str()) {
        return Err(FieldError::new(
            field,
            "password_breached",
            "Этот пароль слишком распространён и есть в базах утечек. Придумайте другой",
        ));
    }
    Ok(())
}

/// The security answer as compared: case, spaces and ё/е do not matter.
pub fn normalise_security_answer(answer: &str) -> String {
    crate::domain::nfc(answer)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace('ё', "е")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pw: &str) -> Result<(), &'static str> {
        check_new_password(
            "password",
            &Secret::new(pw.to_string()),
            &["ivan@mail.ru", "+79318702901"],
        )
        .map_err(|e| e.code)
    }

    #[test]
    fn policy() {
        assert_eq!(check("Kx7#pqLm2"), Ok(()));
        assert_eq!(check("a1b2c3"), Err("password_length"));
        assert_eq!(
            check(&format!("a1{}", "x".repeat(127))),
            Err("password_length")
        );
        assert_eq!(check("абвгдежз1"), Err("password_too_simple"));
        assert_eq!(check("abcdefghij"), Err("password_too_simple"));
        assert_eq!(check("12345678901"), Err("password_too_simple"));
        assert!(check("IVAN@mail.ru1").is_ok());
        assert_eq!(check("password1"), Err("password_breached"));
        assert_eq!(check("Password1"), Err("password_breached"));
    }

    #[test]
    fn contact_as_password_is_refused() {
        let own = ["ivan1@mail.ru", "+79318702901"];
        for pw in ["ivan1@mail.ru", "IVAN1@MAIL.RU"] {
            let err = check_new_password("password", &Secret::new(pw.into()), &own).unwrap_err();
            assert_eq!(err.code, "password_is_contact", "{pw}");
        }
    }

    #[test]
    fn bundled_list_is_large() {
        assert!(
            common_password_count() >= 10_000,
            "{}",
            common_password_count()
        );
    }

    #[test]
    fn security_answers_compare_loosely() {
        assert_eq!(
            normalise_security_answer("  Ёжик   в Тумане "),
            "ежик в тумане"
        );
    }
}
