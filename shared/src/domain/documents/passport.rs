//! The passport: series, number, issuing department, and when it may have been issued.

use super::*;

// ------------------------------------------------------------------ passport

/// Series of an RF passport: 4 digits (region, year of the blank), stored without space.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PassportSeries(String);

impl PassportSeries {
    /// `4510` or `45 10`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        digits_field(
            field,
            raw,
            char::is_whitespace,
            4,
            "passport_series_format",
            "Серия паспорта — 4 цифры, например 45 10",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `45 10`, as printed.
    pub fn formatted(&self) -> String {
        format!("{} {}", &self.0[..2], &self.0[2..])
    }
}

/// Number of an RF passport: 6 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PassportNumber(String);

impl PassportNumber {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        digits_field(
            field,
            raw,
            |c| c.is_whitespace() || c == '№',
            6,
            "passport_number_format",
            "Номер паспорта — 6 цифр",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Series and number together; forms with separate fields parse each part and build
/// this directly.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Passport {
    pub series: PassportSeries,
    pub number: PassportNumber,
}

impl Passport {
    /// Series and number in one field: `45 10 123456`, `4510 123456`, `4510123456`,
    /// `45 10 № 123456`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        match digits_only(raw, |c| c.is_whitespace() || c == '№') {
            Some(digits) if digits.len() == 10 => Ok(Self {
                series: PassportSeries(digits[..4].to_string()),
                number: PassportNumber(digits[4..].to_string()),
            }),
            _ => Err(FieldError::new(
                field,
                "passport_format",
                "Введите серию и номер паспорта: 10 цифр, например 45 10 123456",
            )),
        }
    }

    /// `45 10 123456`, as printed.
    pub fn formatted(&self) -> String {
        format!("{} {}", self.series.formatted(), self.number.as_str())
    }
}

impl fmt::Debug for Passport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Passport")
            .field("series", &self.series)
            .field("number", &self.number)
            .finish()
    }
}

/// Code of the issuing department: `NNN-NNN`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DepartmentCode(String);

impl DepartmentCode {
    /// `770-001`, `770001`, `770 001`; stored with the hyphen.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let digits: String = match compact.chars().position(is_dash) {
            // A hyphen is only where the printed code has it.
            Some(3) => compact
                .chars()
                .enumerate()
                .filter(|&(i, _)| i != 3)
                .map(|(_, c)| c)
                .collect(),
            Some(_) => String::new(),
            None => compact,
        };
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                "department_code_format",
                "Код подразделения — 6 цифр в формате 123-456",
            ));
        }
        Ok(Self(format!("{}-{}", &digits[..3], &digits[3..])))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A passport is issued at 14 at the earliest and never with a future date.
/// `birth_date` is optional because the profile may not have it yet; then only the
/// future is checked.
pub fn check_passport_issue_date(
    field: &str,
    issue_date: Date,
    birth_date: Option<Date>,
    today: Date,
) -> Result<(), FieldError> {
    if issue_date > today {
        return Err(FieldError::new(
            field,
            "passport_issue_in_future",
            "Дата выдачи паспорта не может быть позже сегодняшнего дня",
        ));
    }
    if let Some(birth_date) = birth_date {
        let too_early = match fourteenth_birthday(birth_date) {
            Some(birthday) => issue_date < birthday,
            None => true,
        };
        if too_early {
            return Err(FieldError::new(
                field,
                "passport_issue_before_14",
                "Паспорт выдаётся с 14 лет: дата выдачи не может быть раньше 14-летия",
            ));
        }
    }
    Ok(())
}

/// For someone born on 29 February the 14th birthday always falls in a common year
/// (a leap year plus 14 is never a leap year). Read either as 28 February (the civil
/// code's rule for a period ending on a missing day) or as 1 March; the earlier date is
/// taken so that no genuine passport is refused — the interior ministry check has the
/// final word. `None` when the date is past the calendar's range.
pub(super) fn fourteenth_birthday(birth_date: Date) -> Option<Date> {
    let year = birth_date.year().checked_add(14)?;
    birth_date
        .replace_year(year)
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
        .ok()
}
