//! Where a confirmation code goes, and why.

use std::fmt;

use crate::domain::Phone;
use crate::error::FieldError;

/// A validated, lower-cased e-mail address. Masked when printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Longest address SMTP can carry (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;

impl Email {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                field,
                "invalid_email",
                "Введите адрес электронной почты в формате name@example.ru",
            )
        };
        let candidate = input.trim().to_lowercase();
        if candidate.len() > MAX_EMAIL_LEN {
            return Err(invalid());
        }
        let parsed = email_address::EmailAddress::parse_with_options(
            &candidate,
            email_address::Options::default()
                .without_display_text()
                .without_domain_literal(),
        )
        .map_err(|_| invalid())?;
        // RFC 5322 allows `user@localhost`; a citizen's mailbox always has a dotted domain.
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid());
        }
        Ok(Self(parsed.as_str().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let domain = self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        write!(f, "Email(***@{domain})")
    }
}

/// The channel a code travels by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Email,
}

impl Channel {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        match input {
            "sms" => Ok(Self::Sms),
            "email" => Ok(Self::Email),
            _ => Err(FieldError::new(
                field,
                "invalid_value",
                "Допустимые значения: sms, email",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
}

/// What a confirmation code will be used for; a verification token only works for the
/// purpose it was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Registration,
    Login,
    Recovery,
    ContactChange,
    /// A fresh proof of presence for a signed-in session; sent only by the sessions
    /// function to the account's own phone, never through `POST /v1/codes`.
    StepUp,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Self::Registration,
        Self::Login,
        Self::Recovery,
        Self::ContactChange,
    ];

    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == input)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_value",
                    "Допустимые значения: registration, login, recovery, contact_change",
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
            Self::Recovery => "recovery",
            Self::ContactChange => "contact_change",
            Self::StepUp => "step_up",
        }
    }
}

/// A phone or an e-mail address, normalised, that a code is sent to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    Phone(Phone),
    Email(Email),
}

impl Destination {
    pub fn parse(field: &str, channel: Channel, input: &str) -> Result<Self, FieldError> {
        match channel {
            Channel::Sms => Phone::parse(field, input).map(Self::Phone),
            Channel::Email => Email::parse(field, input).map(Self::Email),
        }
    }

    pub fn channel(&self) -> Channel {
        match self {
            Self::Phone(_) => Channel::Sms,
            Self::Email(_) => Channel::Email,
        }
    }

    /// The normalised form, identical for every way a citizen may type it: what keys,
    /// hashes and token bindings are computed from.
    pub fn canonical(&self) -> &str {
        match self {
            Self::Phone(p) => p.e164(),
            Self::Email(e) => e.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lower_cased_and_trimmed() {
        let e = Email::parse("destination", "  Ivan.Petrov@Mail.RU ").unwrap();
        assert_eq!(e.as_str(), "ivan.petrov@mail.ru");
    }

    #[test]
    fn email_refusals() {
        for input in [
            "",
            "ivan",
            "ivan@",
            "@mail.ru",
            "ivan@localhost",
            "ivan@@mail.ru",
            "Ivan <ivan@mail.ru>",
            "ivan@[127.0.0.1]",
            "ivan petrov@mail.ru",
            &format!("{}@mail.ru", "a".repeat(250)),
        ] {
            let err = Email::parse("destination", input).unwrap_err();
            assert_eq!(err.code, "invalid_email", "{input}");
        }
    }

    #[test]
    fn email_debug_hides_mailbox() {
        let e = Email::parse("e", "ivan@mail.ru").unwrap();
        assert_eq!(format!("{e:?}"), "Email(***@mail.ru)");
    }

    #[test]
    fn purposes_round_trip() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::parse("purpose", p.as_str()).unwrap(), p);
        }
        assert_eq!(
            Purpose::parse("purpose", "REGISTRATION").unwrap_err().code,
            "invalid_value"
        );
    }
}
