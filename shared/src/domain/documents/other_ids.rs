//! The other identity documents a citizen's profile holds besides the passport: the
//! international passport, the military ID, a foreign citizen's identity document, and
//! the dates they carry (issue, expiry, the passport's replacement ages).
//!
//! None of them has a check digit, so only their shape is checked; the registries (where
//! one checks them) have the final word.

use super::*;

// ------------------------------------------------------------------ international passport

/// International passport (заграничный паспорт): series 2 digits, number 7 digits,
/// `75 1234567`; stored as 9 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct InternationalPassport(String);

impl InternationalPassport {
    /// `75 1234567`, `751234567`, `75 № 1234567`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        digits_field(
            field,
            raw,
            |c| c.is_whitespace() || c == '№',
            9,
            "international_passport_format",
            "Серия и номер заграничного паспорта — 9 цифр, например 75 1234567",
        )
        .map(Self)
    }

    /// Series (`75`) and number (`1234567`) from separate fields, as the profile has them.
    pub fn from_parts(
        series_field: &str,
        series: &str,
        number_field: &str,
        number: &str,
    ) -> Result<Self, FieldError> {
        let series = digits_field(
            series_field,
            series,
            char::is_whitespace,
            2,
            "international_passport_series_format",
            "Серия заграничного паспорта — 2 цифры, например 75",
        );
        let number = digits_field(
            number_field,
            number,
            |c| c.is_whitespace() || c == '№',
            7,
            "international_passport_number_format",
            "Номер заграничного паспорта — 7 цифр",
        );
        Ok(Self(series? + &number?))
    }

    /// 9 digits: series then number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 7-digit number without the series.
    pub fn number(&self) -> &str {
        &self.0[2..]
    }

    /// `75 1234567`, as printed.
    pub fn formatted(&self) -> String {
        format!("{} {}", &self.0[..2], &self.0[2..])
    }
}

/// The validities of an international passport: the old blank 5 years, the biometric 10.
pub const INTERNATIONAL_PASSPORT_YEARS: [u8; 2] = [5, 10];

/// The expiry printed in an international passport is the same calendar date 5 or 10
/// years after the issue (`2020-03-15` → `2030-03-15`); nothing else is accepted. For an
/// issue on 29 February either 28 February or 1 March of a common year is accepted: both
/// readings of a missing day occur, and the interior ministry's check decides.
pub fn check_international_passport_validity(
    field: &str,
    issue: Date,
    expiry: Date,
) -> Result<(), FieldError> {
    let valid = INTERNATIONAL_PASSPORT_YEARS
        .iter()
        .flat_map(|years| anniversaries(issue, *years))
        .any(|d| d == expiry);
    if valid {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            "international_passport_validity",
            "Заграничный паспорт действует 5 или 10 лет: дата окончания — та же дата через 5 или 10 лет после выдачи",
        ))
    }
}

/// `date` moved `years` on: one date, or for 29 February in a common year both 28 February
/// and 1 March. Empty past the calendar's range.
fn anniversaries(date: Date, years: u8) -> Vec<Date> {
    let Some(year) = date.year().checked_add(i32::from(years)) else {
        return Vec::new();
    };
    match date.replace_year(year) {
        Ok(d) => vec![d],
        Err(_) => [
            Date::from_calendar_date(year, Month::February, 28),
            Date::from_calendar_date(year, Month::March, 1),
        ]
        .into_iter()
        .flatten()
        .collect(),
    }
}

// ------------------------------------------------------------------ military ID

/// Military ID (военный билет): series 2 Cyrillic capitals, number 7 digits; stored
/// `АК 1234567`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MilitaryId(String);

impl MilitaryId {
    /// `АК 1234567`, `ак1234567`, `АК № 1234567`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        let format = refusal(
            field,
            "military_id_format",
            "Серия и номер военного билета — две русские буквы и 7 цифр, например АК 1234567",
        );
        let compact: Vec<char> = raw
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '№')
            .collect();
        if compact.len() != 9 {
            return Err(format());
        }
        let (letters, digits) = compact.split_at(2);
        if letters.iter().any(char::is_ascii_alphabetic) {
            return Err(FieldError::new(
                field,
                "military_id_latin_letters",
                "Буквы серии военного билета — русские, а не латинские: переключите раскладку",
            ));
        }
        let letters: String = letters.iter().flat_map(|c| c.to_uppercase()).collect();
        let letters_ok = letters.chars().all(|c| matches!(c, 'А'..='Я' | 'Ё'));
        if !letters_ok || !digits.iter().all(char::is_ascii_digit) {
            return Err(format());
        }
        let digits: String = digits.iter().collect();
        Ok(Self(format!("{letters} {digits}")))
    }

    /// Series (`АК`) and number (`1234567`) from separate fields, as the profile has them.
    pub fn from_parts(
        series_field: &str,
        series: &str,
        number_field: &str,
        number: &str,
    ) -> Result<Self, FieldError> {
        let raw = present(series_field, series)?;
        let letters: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if letters.iter().any(char::is_ascii_alphabetic) {
            return Err(FieldError::new(
                series_field,
                "military_id_latin_letters",
                "Буквы серии военного билета — русские, а не латинские: переключите раскладку",
            ));
        }
        let letters: String = letters.iter().flat_map(|c| c.to_uppercase()).collect();
        if letters.chars().count() != 2 || !letters.chars().all(|c| matches!(c, 'А'..='Я' | 'Ё'))
        {
            return Err(FieldError::new(
                series_field,
                "military_id_series_format",
                "Серия военного билета — две русские буквы, например АК",
            ));
        }
        let digits = digits_field(
            number_field,
            number,
            |c| c.is_whitespace() || c == '№',
            7,
            "military_id_number_format",
            "Номер военного билета — 7 цифр",
        )?;
        Ok(Self(format!("{letters} {digits}")))
    }

    /// `АК`.
    pub fn series(&self) -> &str {
        self.0.split(' ').next().unwrap_or_default()
    }

    /// `1234567`.
    pub fn number(&self) -> &str {
        self.0.rsplit(' ').next().unwrap_or_default()
    }

    /// `АК 1234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ------------------------------------------------------------------ foreign document

/// The country that issued a foreign citizen's document: ISO 3166-1 alpha-3, as the
/// profile's citizenship is written, checked against the standard's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Country(isocountry::CountryCode);

impl Country {
    /// `KAZ`, `kaz`. Russia is refused: a Russian citizen's identity is the passport.
    pub fn parse_foreign(field: &str, raw: &str) -> Result<Self, FieldError> {
        let code = present(field, raw)?.to_ascii_uppercase();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(FieldError::new(
                field,
                "country_format",
                "Код страны — три латинские буквы по ISO 3166-1, например KAZ",
            ));
        }
        let Ok(country) = isocountry::CountryCode::for_alpha3(&code) else {
            return Err(FieldError::new(
                field,
                "country_unknown",
                "Такого кода страны нет в ISO 3166-1: проверьте код, например KAZ",
            ));
        };
        if country == isocountry::CountryCode::RUS {
            return Err(FieldError::new(
                field,
                "country_russia",
                "Документ, выданный в России, — это паспорт гражданина РФ: укажите его в разделе паспорта",
            ));
        }
        Ok(Self(country))
    }

    /// `KAZ`.
    pub fn as_str(&self) -> &'static str {
        self.0.alpha3()
    }
}

/// Number of a foreign identity document. Formats differ by country, so only a bounded
/// set is accepted: Latin or Russian letters and digits (at most
/// [`FOREIGN_NUMBER_MAX`]), with single spaces or hyphens between them; stored in capitals.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ForeignDocumentNumber(String);

/// The most letters and digits a foreign document number may have.
pub const FOREIGN_NUMBER_MAX: usize = 20;

impl ForeignDocumentNumber {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        let format = refusal(
            field,
            "foreign_document_number_format",
            "Номер документа — до 20 латинских или русских букв и цифр, можно с пробелами и дефисами",
        );
        let mut value = String::new();
        let mut significant = 0;
        // A separator is written only between two letters or digits: spaces around a
        // hyphen fold into it, a run of spaces into one.
        let mut separator: Option<char> = None;
        for c in raw.chars() {
            if c.is_ascii_alphanumeric() || matches!(c, 'А'..='Я' | 'а'..='я' | 'Ё' | 'ё') {
                if let Some(sep) = separator.take() {
                    value.push(sep);
                }
                value.extend(c.to_uppercase());
                significant += 1;
            } else if c.is_whitespace() || is_dash(c) {
                let dash = is_dash(c);
                separator = match separator {
                    _ if value.is_empty() => return Err(format()),
                    Some('-') if dash => return Err(format()),
                    Some('-') => Some('-'),
                    _ if dash => Some('-'),
                    _ => Some(' '),
                };
            } else {
                return Err(format());
            }
        }
        if separator.is_some() || significant > FOREIGN_NUMBER_MAX {
            return Err(format());
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ------------------------------------------------------------------ dates

/// A document is never issued in the future nor before its holder was born. `birth_date`
/// is optional because the profile may not have it yet; then only the future is checked.
pub fn check_issue_date(
    field: &str,
    issue: Date,
    birth_date: Option<Date>,
    today: Date,
) -> Result<(), FieldError> {
    if issue > today {
        return Err(FieldError::new(
            field,
            "date_in_future",
            "Дата выдачи не может быть позже сегодняшнего дня",
        ));
    }
    if birth_date.is_some_and(|born| issue < born) {
        return Err(FieldError::new(
            field,
            "issue_before_birth",
            "Дата выдачи не может быть раньше даты рождения",
        ));
    }
    Ok(())
}

/// An expiry comes after the issue, and a document entered now is still valid: an
/// expired one is no identity document (the reminders tell the citizen before that day).
pub fn check_expiry_date(
    field: &str,
    issue: Date,
    expiry: Date,
    today: Date,
) -> Result<(), FieldError> {
    if expiry <= issue {
        return Err(FieldError::new(
            field,
            "expiry_before_issue",
            "Дата окончания срока действия должна быть позже даты выдачи",
        ));
    }
    if expiry < today {
        return Err(FieldError::new(
            field,
            "document_expired",
            "Срок действия документа истёк: укажите действующий документ",
        ));
    }
    Ok(())
}

/// The ages at which an RF passport must be replaced.
pub const PASSPORT_REPLACEMENT_AGES: [u8; 2] = [20, 45];

/// When an RF passport issued on `issue` to someone born on `birth_date` must be
/// replaced, and at which age: the first of the 20th and 45th birthdays that falls after
/// the issue (a passport issued on or after the 20th birthday is the one for 20 to 45; one
/// issued on or after the 45th is for life, `None`). For someone born on 29 February the
/// birthday in a common year is read as 28 February, the civil code's rule for a period
/// ending on a missing day.
pub fn passport_replacement(birth_date: Date, issue: Date) -> Option<(u8, Date)> {
    PASSPORT_REPLACEMENT_AGES.iter().find_map(|age| {
        let birthday = anniversaries(birth_date, *age).into_iter().next()?;
        (issue < birthday).then_some((*age, birthday))
    })
}

#[cfg(test)]
#[path = "other_ids_tests.rs"]
mod tests;
