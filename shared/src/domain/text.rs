//! Text typed by people: one Unicode form, and no characters that cannot be seen.
//!
//! The same word can arrive as different code points: `ё` typed as `е` followed by a
//! combining diaeresis looks the same as the single letter `ё` but compares, hashes and
//! sorts differently. Every name and free text is brought to NFC (canonical composition)
//! before it is checked, so a name is stored in one form whatever keyboard typed it.
//!
//! Some characters change how text around them looks without being seen themselves:
//! bidirectional controls (the "Trojan Source" trick, which can make `moc.evil` read as
//! `live.com`), zero-width spaces and joiners that split a word so that filters miss it,
//! and other invisible format characters. A citizen never needs them in a name, an
//! address or a purpose, and a biller or an attacker can use them to make one text look
//! like another, so they are refused.

use icu_normalizer::ComposingNormalizerBorrowed;

use crate::error::FieldError;

/// `text` in NFC.
pub fn nfc(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(text)
        .into_owned()
}

/// `text` in NFKC: compatibility forms folded too (full-width digits become ASCII
/// digits). Only for recognising what a text holds, never for storing it.
pub fn nfkc(text: &str) -> String {
    ComposingNormalizerBorrowed::new_nfkc()
        .normalize(text)
        .into_owned()
}

/// Whether `c` is a character that is not seen but changes how text reads or compares:
/// controls, bidirectional embeddings, overrides, isolates and marks, zero-width
/// characters, invisible fillers, variation selectors, tag characters, private-use and
/// non-characters, and line or paragraph separators in what is meant to be one line.
pub fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Soft hyphen, combining grapheme joiner, Arabic letter mark.
            '\u{00AD}' | '\u{034F}' | '\u{061C}'
            // Hangul and Khmer fillers and inherent vowels, Mongolian selectors.
            | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
            // Zero-width space, non-joiner and joiner; left-to-right and right-to-left marks.
            | '\u{200B}'..='\u{200F}'
            // Line and paragraph separators; bidirectional embeddings and overrides.
            | '\u{2028}'..='\u{202E}'
            // Word joiner, invisible operators, bidirectional isolates, deprecated formats.
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
            | '\u{E000}'..='\u{F8FF}' | '\u{FDD0}'..='\u{FDEF}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}'
            | '\u{F0000}'..='\u{10FFFF}'
        )
        || (c as u32) & 0xFFFE == 0xFFFE
}

/// A line of free text (an address, a purpose, a question, a title) as it is kept:
/// NFC, trimmed, with runs of whitespace collapsed to one space when `collapse` is set,
/// between 1 and `max_chars` characters, with nothing invisible in it.
pub fn free_text(
    field: &str,
    raw: &str,
    max_chars: usize,
    collapse: bool,
) -> Result<String, FieldError> {
    let normal = nfc(raw);
    let text = if collapse {
        normal.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        normal.trim().to_string()
    };
    if text.is_empty() {
        return Err(FieldError::new(field, "empty", "Поле не может быть пустым"));
    }
    if text.chars().count() > max_chars {
        return Err(FieldError::new(
            field,
            "too_long",
            format!("Не длиннее {max_chars} символов"),
        ));
    }
    refuse_invisible(field, &text)?;
    Ok(text)
}

/// Refuses a text holding a character [`is_invisible`] names.
pub fn refuse_invisible(field: &str, text: &str) -> Result<(), FieldError> {
    if text.chars().any(is_invisible) {
        return Err(FieldError::new(
            field,
            "invalid_characters",
            "Текст содержит невидимые или управляющие символы",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composes_letters_typed_in_two_code_points() {
        // "ё" and "й" typed as a base letter and a combining mark.
        let typed = "Сёмин Йосиф"
            .replace('ё', "е\u{0308}")
            .replace('Й', "И\u{0306}");
        assert_ne!(typed, "Сёмин Йосиф");
        assert_eq!(nfc(&typed), "Сёмин Йосиф");
        assert_eq!(
            free_text("f", &typed, 50, true).unwrap(),
            "Сёмин Йосиф".to_string()
        );
    }

    #[test]
    fn refuses_bidi_controls_and_invisible_characters() {
        for bad in [
            "ул. Тверская\u{202E}1 .д",
            "ул.\u{2066}Тверская\u{2069}",
            "Ок\u{200B}ко",
            "Оплата\u{200D}",
            "\u{FEFF}Оплата",
            "Оплата\u{00AD}",
            "строка\u{2028}вторая",
            "частный\u{E000}",
            "звонок\u{0007}",
            "тег\u{E0041}",
        ] {
            assert_eq!(
                free_text("purpose", bad, 300, false).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn collapsing_whitespace_turns_a_line_separator_into_a_space() {
        assert_eq!(
            free_text("f", "строка\u{2028}вторая", 300, true).unwrap(),
            "строка вторая"
        );
    }

    #[test]
    fn keeps_ordinary_text() {
        for good in [
            "г. Москва, ул. Тверская, д. 1, кв. 5",
            "Оплата «Кружок» — сентябрь № 5",
            "Квитанция № 12/3-а; за 2026 г.",
        ] {
            assert_eq!(free_text("f", good, 300, true).unwrap(), good);
        }
        assert_eq!(
            free_text("f", "  два   пробела ", 300, true).unwrap(),
            "два пробела"
        );
        assert_eq!(free_text("f", "   ", 300, true).unwrap_err().code, "empty");
        assert_eq!(
            free_text("f", &"а".repeat(301), 300, true)
                .unwrap_err()
                .code,
            "too_long"
        );
    }

    #[test]
    fn nfkc_folds_full_width_digits() {
        assert_eq!(nfkc("４２４２"), "4242");
    }
}
