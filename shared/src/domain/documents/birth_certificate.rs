//! The birth certificate: a Roman-numeral series, two Cyrillic letters and six digits.

use super::*;

// ------------------------------------------------------------------ birth certificate

/// Soviet-style birth certificate: `IV-МЮ 123456`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BirthCertificate {
    /// Canonical `IV-МЮ 123456`.
    value: String,
    /// Byte length of the series within `value`.
    series_len: usize,
}

impl BirthCertificate {
    /// Series and number in one field: `IV-МЮ 123456`, `IV-МЮ123456`, `iv-мю № 123456`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        // The number is the trailing run of digits; what precedes it is the series.
        let number_start = raw
            .char_indices()
            .rev()
            .take_while(|&(_, c)| c.is_ascii_digit() || c.is_whitespace() || c == '№')
            .last()
            .map_or(raw.len(), |(i, _)| i);
        let (series, number) = raw.split_at(number_start);
        if series.trim().is_empty() || number.trim().is_empty() {
            return Err(FieldError::new(
                field,
                "birth_certificate_format",
                "Введите серию и номер свидетельства о рождении, например IV-МЮ 123456",
            ));
        }
        let series = birth_certificate_series(field, series)?;
        let number = birth_certificate_number(field, number)?;
        Ok(Self::from_canonical(series, &number))
    }

    /// Series (`IV-МЮ`) and number (`123456`) from separate fields.
    pub fn from_parts(
        series_field: &str,
        series: &str,
        number_field: &str,
        number: &str,
    ) -> Result<Self, FieldError> {
        let series = birth_certificate_series(series_field, series)?;
        let number = birth_certificate_number(number_field, number)?;
        Ok(Self::from_canonical(series, &number))
    }

    fn from_canonical(mut series: String, number: &str) -> Self {
        let series_len = series.len();
        series.push(' ');
        series.push_str(number);
        Self {
            value: series,
            series_len,
        }
    }

    /// `IV-МЮ 123456`.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// `IV-МЮ`.
    pub fn series(&self) -> &str {
        &self.value[..self.series_len]
    }

    /// `123456`.
    pub fn number(&self) -> &str {
        &self.value[self.series_len + 1..]
    }
}

pub(super) fn birth_certificate_series(field: &str, raw: &str) -> Result<String, FieldError> {
    let raw = present(field, raw)?;
    let format = refusal(
        field,
        "birth_certificate_series_format",
        "Серия свидетельства — римское число, дефис и две русские буквы, например IV-МЮ",
    );
    // The hyphen is sometimes typed as a space; either separates the two parts.
    let (roman, letters) = match raw.split_once(is_dash) {
        Some(parts) => parts,
        None => raw.split_once(char::is_whitespace).ok_or_else(format)?,
    };
    let roman = roman_part(field, roman.trim())?;
    let letters = letters.trim();
    if letters.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(FieldError::new(
            field,
            "birth_certificate_series_latin_letters",
            "Буквы серии после дефиса — русские, а не латинские: переключите раскладку",
        ));
    }
    let letters: String = letters.chars().flat_map(char::to_uppercase).collect();
    if letters.chars().count() != 2 || !letters.chars().all(|c| matches!(c, 'А'..='Я' | 'Ё')) {
        return Err(format());
    }
    Ok(format!("{roman}-{letters}"))
}

/// The Roman numeral in Latin capitals. Cyrillic Х, С and the Ukrainian/Belarusian І are
/// read as X, C and I: they sit on the Russian layout and are indistinguishable on the
/// paper, so the citizen cannot know which was typed.
pub(super) fn roman_part(field: &str, raw: &str) -> Result<String, FieldError> {
    let roman: String = raw
        .chars()
        .map(|c| match c {
            'Х' | 'х' => 'X',
            'С' | 'с' => 'C',
            'І' | 'і' => 'I',
            _ => c.to_ascii_uppercase(),
        })
        .collect();
    if is_canonical_roman(&roman) {
        Ok(roman)
    } else {
        Err(FieldError::new(
            field,
            "birth_certificate_series_roman",
            "Серия начинается с римского числа из латинских букв I, V, X, L, C, например IV",
        ))
    }
}

/// Only I V X L C occur in series, so values stop at 399 (CCCXCIX).
pub(super) const ROMAN_MAX: u32 = 399;

/// Well-formed means written the one standard way: `IV`, never `IIII` or `IIV`. Parsing
/// and writing back catches every malformed string without a grammar.
pub(super) fn is_canonical_roman(s: &str) -> bool {
    roman_value(s).is_some_and(|v| (1..=ROMAN_MAX).contains(&v) && to_roman(v) == s)
}

pub(super) fn roman_value(s: &str) -> Option<u32> {
    let values = s
        .chars()
        .map(|c| match c {
            'I' => Some(1),
            'V' => Some(5),
            'X' => Some(10),
            'L' => Some(50),
            'C' => Some(100),
            _ => None,
        })
        .collect::<Option<Vec<i64>>>()?;
    let mut total: i64 = 0;
    for (i, v) in values.iter().enumerate() {
        if values.get(i + 1).is_some_and(|next| next > v) {
            total -= v;
        } else {
            total += v;
        }
    }
    u32::try_from(total).ok()
}

pub(super) fn to_roman(mut n: u32) -> String {
    const TABLE: [(u32, &str); 9] = [
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (value, symbol) in TABLE {
        while n >= value {
            out.push_str(symbol);
            n -= value;
        }
    }
    out
}

pub(super) fn birth_certificate_number(field: &str, raw: &str) -> Result<String, FieldError> {
    digits_field(
        field,
        raw,
        |c| c.is_whitespace() || c == '№',
        6,
        "birth_certificate_number_format",
        "Номер свидетельства о рождении — 6 цифр",
    )
}
