//! Personal names as mos.ru accepts them: Russian letters, hyphen, space, apostrophe.

use std::fmt;

use crate::error::FieldError;

/// A trimmed name of 1–60 characters. `ё` is kept as typed: it is part of the name.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

pub const MAX_NAME_CHARS: usize = 60;

fn is_russian_letter(c: char) -> bool {
    matches!(c, 'А'..='Я' | 'а'..='я' | 'Ё' | 'ё')
}

impl PersonName {
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        // One Unicode form (a "ё" typed as "е" and a combining mark is the letter "ё"),
        // and runs of spaces collapse to one: "Анна  Мария" is the same name.
        let name = crate::domain::nfc(input)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let chars = name.chars().count();
        if chars == 0 {
            return Err(FieldError::new(field, "required", "Заполните поле"));
        }
        if chars > MAX_NAME_CHARS {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("Не более {MAX_NAME_CHARS} символов"),
            ));
        }
        let allowed = |c: char| is_russian_letter(c) || matches!(c, '-' | ' ' | '\'' | '’');
        if !name.chars().all(allowed) {
            return Err(FieldError::new(
                field,
                "invalid_characters",
                "Используйте буквы русского алфавита, дефис, пробел или апостроф",
            ));
        }
        if !name.chars().any(is_russian_letter) {
            return Err(FieldError::new(
                field,
                "invalid_characters",
                "Имя должно содержать буквы русского алфавита",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonName([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_russian_names_and_keeps_yo() {
        for (input, stored) in [
            ("Пётр", "Пётр"),
            ("  Римский-Корсаков ", "Римский-Корсаков"),
            ("Анна  Мария", "Анна Мария"),
            ("Д'Артаньян", "Д'Артаньян"),
            ("Ёлкина", "Ёлкина"),
            ("Е\u{0308}лкина", "Ёлкина"),
            ("Андреи\u{0306}", "Андрей"),
        ] {
            assert_eq!(
                PersonName::parse("first_name", input).unwrap().as_str(),
                stored
            );
        }
    }

    #[test]
    fn refuses_other_scripts_digits_and_length() {
        for (input, code) in [
            ("", "required"),
            ("   ", "required"),
            ("Ivan", "invalid_characters"),
            ("Иван2", "invalid_characters"),
            ("Иvan", "invalid_characters"),
            ("---", "invalid_characters"),
            ("Иван!", "invalid_characters"),
            ("Ив\u{200B}ан", "invalid_characters"),
            ("\u{202E}навИ", "invalid_characters"),
        ] {
            assert_eq!(
                PersonName::parse("first_name", input).unwrap_err().code,
                code,
                "{input}"
            );
        }
        let long = "а".repeat(61);
        assert_eq!(
            PersonName::parse("last_name", &long).unwrap_err().code,
            "too_long"
        );
        assert!(PersonName::parse("last_name", &"а".repeat(60)).is_ok());
    }
}
