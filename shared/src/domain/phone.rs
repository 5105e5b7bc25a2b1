//! Russian mobile phone numbers.

use std::fmt;

use crate::error::FieldError;

/// A Russian mobile number in E.164 (`+79XXXXXXXXX`). Masked when printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Accepts the usual Russian forms — `+7 931 870-29-01`, `89318702901`,
    /// `+79318702901`, `7 (931) 870 29 01`, `9318702901` — and normalises to E.164.
    /// Only mobile numbers (`+7 9xx`) are accepted: landlines cannot receive SMS.
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                field,
                "invalid_phone",
                "Введите номер мобильного телефона в формате +7 9XX XXX-XX-XX",
            )
        };
        let trimmed = input.trim();
        let (plus, rest) = match trimmed.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let mut digits = String::with_capacity(11);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '(' | ')' | '\u{a0}' => {}
                _ => return Err(invalid()),
            }
            if digits.len() > 11 {
                return Err(invalid());
            }
        }
        let national = match (plus, digits.len(), digits.as_bytes().first()) {
            (true, 11, Some(b'7')) => &digits[1..],
            (false, 11, Some(b'7' | b'8')) => &digits[1..],
            (false, 10, Some(_)) => &digits[..],
            _ => return Err(invalid()),
        };
        if !national.starts_with('9') {
            return Err(FieldError::new(
                field,
                "not_mobile_phone",
                "Код можно отправить только на мобильный номер (+7 9XX ...)",
            ));
        }
        Ok(Self(format!("+7{national}")))
    }

    /// The E.164 form, for sending and for keys.
    pub fn e164(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keep the last two digits: enough to tell numbers apart in a support ticket.
        write!(f, "Phone(+7*******{})", &self.0[self.0.len() - 2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_forms() {
        for input in [
            "+7 931 870-29-01",
            "89318702901",
            "+79318702901",
            "7 (931) 870 29 01",
            "8 931 870 29 01",
            "9318702901",
            " +7(931)870-29-01 ",
        ] {
            let phone = Phone::parse("phone", input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(phone.e164(), "+79318702901", "{input}");
        }
    }

    #[test]
    fn refuses_landlines_with_their_own_code() {
        for input in ["+7 495 123-45-67", "84951234567"] {
            let err = Phone::parse("destination", input).unwrap_err();
            assert_eq!(err.code, "not_mobile_phone", "{input}");
            assert_eq!(err.field, "/destination");
        }
    }

    #[test]
    fn refuses_malformed() {
        for input in [
            "",
            "+8 931 870 29 01",
            "+375291234567",
            "931870290",
            "+79318702901x",
            "89318702901 1",
            "phone",
            "+7931870290１",
            "++79318702901",
        ] {
            let err = Phone::parse("destination", input).unwrap_err();
            assert_eq!(err.code, "invalid_phone", "{input}");
        }
    }

    #[test]
    fn debug_masks_the_number() {
        let phone = Phone::parse("p", "+79318702901").unwrap();
        let shown = format!("{phone:?}");
        assert!(!shown.contains("9318702901"), "{shown}");
        assert!(shown.ends_with("01)"));
    }
}
