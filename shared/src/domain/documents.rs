//! Russian identity documents and identifiers: SNILS, INN, KPP, UIN, passport, birth
//! certificate, vehicle documents, driver licence, OMS policy, registration plate.
//!
//! Every type parses what a citizen types (spaces, hyphens, lower case, look-alike
//! letters), refuses with a specific code, and keeps one canonical form. These values are
//! personal data: `Debug` masks them, and there is deliberately no `Display`, so that a
//! value reaches a log line only through an explicit `as_str()`.

use std::fmt::{self, Write as _};

use serde::{Serialize, Serializer};
use time::{Date, Month};

use crate::error::FieldError;

// ------------------------------------------------------------------ shared helpers

/// Dashes that office suites and phones substitute for the hyphen a citizen typed.
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' | '\u{2014}' | '\u{2212}'
    )
}

/// `raw` without the characters `skip` accepts; `None` if what is left is not all ASCII
/// digits. Full-width and other Unicode digits are refused: no registry accepts them.
fn digits_only(raw: &str, skip: impl Fn(char) -> bool) -> Option<String> {
    let mut digits = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if !skip(c) {
            return None;
        }
    }
    Some(digits)
}

fn digit_values(digits: &str) -> Vec<u32> {
    digits.bytes().map(|b| u32::from(b - b'0')).collect()
}

fn weighted_sum(digits: &[u32], weights: impl IntoIterator<Item = u32>) -> u32 {
    digits.iter().zip(weights).map(|(d, w)| d * w).sum()
}

fn required(field: &str) -> FieldError {
    FieldError::new(field, "required", "Заполните поле")
}

/// Writes `Name(…)` with every letter and digit but the last `keep` hidden. The kept
/// tail (a check digit or a region, never enough to identify anyone) lets support tell
/// two values apart; separators stay to show the shape.
fn write_masked(f: &mut fmt::Formatter<'_>, name: &str, value: &str, keep: usize) -> fmt::Result {
    let hidden = value.chars().count().saturating_sub(keep);
    f.write_str(name)?;
    f.write_char('(')?;
    for (i, c) in value.chars().enumerate() {
        if i < hidden && c.is_alphanumeric() {
            f.write_char('*')?;
        } else {
            f.write_char(c)?;
        }
    }
    f.write_char(')')
}

/// The twelve Cyrillic letters that registration plates and vehicle documents use, chosen
/// because each has a Latin twin of the same shape. A citizen copying `А123ВС` from a
/// plate cannot see which layout the keyboard was in, and the traffic police registry
/// stores Cyrillic; so the Latin twin (and lower case of either) is read as the Cyrillic
/// capital rather than refused.
fn vehicle_letter(c: char) -> Option<char> {
    Some(match c {
        'А' | 'а' | 'A' | 'a' => 'А',
        'В' | 'в' | 'B' | 'b' => 'В',
        'Е' | 'е' | 'E' | 'e' => 'Е',
        'К' | 'к' | 'K' | 'k' => 'К',
        'М' | 'м' | 'M' | 'm' => 'М',
        'Н' | 'н' | 'H' | 'h' => 'Н',
        'О' | 'о' | 'O' | 'o' => 'О',
        'Р' | 'р' | 'P' | 'p' => 'Р',
        'С' | 'с' | 'C' | 'c' => 'С',
        'Т' | 'т' | 'T' | 't' => 'Т',
        'У' | 'у' | 'Y' | 'y' => 'У',
        'Х' | 'х' | 'X' | 'x' => 'Х',
        _ => return None,
    })
}

const VEHICLE_LETTERS: &str = "А, В, Е, К, М, Н, О, Р, С, Т, У, Х";

/// Values travel to the client and to storage in their canonical form.
macro_rules! serialize_canonical {
    ($($t:ty),* $(,)?) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}

serialize_canonical!(
    Snils,
    Inn,
    Kpp,
    Uin,
    PassportSeries,
    PassportNumber,
    DepartmentCode,
    BirthCertificate,
    VehicleCertificate,
    DriverLicence,
    OmsPolicy,
    VehiclePlate,
);

// ------------------------------------------------------------------ SNILS

/// Insurance number (СНИЛС): 11 digits, stored without separators.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Snils(String);

/// Numbers up to 001-001-998 were issued before the checksum rule existed.
const SNILS_LAST_UNCHECKED: u32 = 1_001_998;

impl Snils {
    /// Accepts `138-759-325 08`, `13875932508` and any spacing or hyphenation of the
    /// 11 digits.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        let format = || {
            FieldError::new(
                field,
                "snils_format",
                "Введите СНИЛС: 11 цифр, например 123-456-789 01",
            )
        };
        let digits = digits_only(raw, |c| c.is_whitespace() || is_dash(c)).ok_or_else(format)?;
        if digits.len() != 11 {
            return Err(format());
        }
        let values = digit_values(&digits);
        let number = values[..9].iter().fold(0, |n, d| n * 10 + d);
        let check = values[9] * 10 + values[10];
        if number > SNILS_LAST_UNCHECKED && check != snils_checksum(&values[..9]) {
            return Err(FieldError::new(
                field,
                "snils_checksum",
                "Проверьте СНИЛС: контрольное число не совпадает с номером",
            ));
        }
        Ok(Self(digits))
    }

    /// 11 digits, no separators: what registries and keys use.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `XXX-XXX-XXX YY`, as printed on the card.
    pub fn formatted(&self) -> String {
        let s = &self.0;
        format!("{}-{}-{} {}", &s[..3], &s[3..6], &s[6..9], &s[9..])
    }
}

fn snils_checksum(number: &[u32]) -> u32 {
    let sum = weighted_sum(number, (1..=9).rev());
    match sum {
        0..=99 => sum,
        100 | 101 => 0,
        _ => match sum % 101 {
            100 => 0,
            rest => rest,
        },
    }
}

impl fmt::Debug for Snils {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "Snils", &self.0, 2)
    }
}

// ------------------------------------------------------------------ INN

/// Whose INN it is; the length tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InnKind {
    /// 10 digits.
    Organisation,
    /// 12 digits: a citizen or a sole trader.
    Person,
}

/// Taxpayer number (ИНН), digits only.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Inn(String);

const INN10_WEIGHTS: [u32; 9] = [2, 4, 10, 3, 5, 9, 4, 6, 8];
const INN12_WEIGHTS_11: [u32; 10] = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8];
const INN12_WEIGHTS_12: [u32; 11] = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8];

impl Inn {
    /// An organisation's (10 digits) or a person's (12 digits) INN.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let format = || {
            FieldError::new(
                field,
                "inn_format",
                "Введите ИНН: 10 цифр для организации или 12 цифр для физического лица",
            )
        };
        let digits = inn_digits(field, raw, format)?;
        match digits.len() {
            10 | 12 => check_inn(field, digits),
            _ => Err(format()),
        }
    }

    /// A person's INN only: a citizen's profile cannot hold an organisation's number.
    pub fn parse_personal(field: &str, raw: &str) -> Result<Self, FieldError> {
        let format =
            || FieldError::new(field, "inn_format", "Введите ИНН физического лица: 12 цифр");
        let digits = inn_digits(field, raw, format)?;
        match digits.len() {
            12 => check_inn(field, digits),
            10 => Err(FieldError::new(
                field,
                "inn_not_personal",
                "Это ИНН организации (10 цифр). Укажите ИНН физического лица — 12 цифр",
            )),
            _ => Err(format()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> InnKind {
        if self.0.len() == 10 {
            InnKind::Organisation
        } else {
            InnKind::Person
        }
    }
}

fn inn_digits(
    field: &str,
    raw: &str,
    format: impl Fn() -> FieldError,
) -> Result<String, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(required(field));
    }
    digits_only(raw, char::is_whitespace).ok_or_else(format)
}

fn check_inn(field: &str, digits: String) -> Result<Inn, FieldError> {
    let d = digit_values(&digits);
    let valid = if d.len() == 10 {
        d[9] == weighted_sum(&d[..9], INN10_WEIGHTS) % 11 % 10
    } else {
        d[10] == weighted_sum(&d[..10], INN12_WEIGHTS_11) % 11 % 10
            && d[11] == weighted_sum(&d[..11], INN12_WEIGHTS_12) % 11 % 10
    };
    if valid {
        Ok(Inn(digits))
    } else {
        Err(FieldError::new(
            field,
            "inn_checksum",
            "Проверьте ИНН: контрольные цифры не совпадают с номером",
        ))
    }
}

impl fmt::Debug for Inn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "Inn", &self.0, 2)
    }
}

// ------------------------------------------------------------------ KPP

/// Tax registration reason code (КПП) of an organisation: public, so printed in clear.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kpp(String);

impl Kpp {
    /// 4 digits (tax office), 2 digits or Latin capitals (reason), 3 digits.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        let kpp: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let b = kpp.as_bytes();
        let valid = b.len() == 9
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4..6]
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            && b[6..].iter().all(u8::is_ascii_digit);
        if !valid {
            return Err(FieldError::new(
                field,
                "kpp_format",
                "Введите КПП: 9 знаков, например 773601001",
            ));
        }
        Ok(Self(kpp))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// ------------------------------------------------------------------ UIN

/// Accrual identifier (УИН) of the state payments system (ГИС ГМП): 20 or 25 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uin(String);

impl Uin {
    /// Digits with optional spaces. Some issuers use 25-character UINs with letters;
    /// those are refused with their own code until a biller needs them.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        let format = || FieldError::new(field, "uin_format", "Введите УИН: 20 или 25 цифр");
        let Some(digits) = digits_only(raw, char::is_whitespace) else {
            if raw.chars().any(char::is_alphabetic) {
                return Err(FieldError::new(
                    field,
                    "uin_letters",
                    "УИН должен состоять только из цифр",
                ));
            }
            return Err(format());
        };
        if digits.len() != 20 && digits.len() != 25 {
            return Err(format());
        }
        let d = digit_values(&digits);
        let (body, check) = d.split_at(d.len() - 1);
        if !uin_check_digits(body).contains(&check[0]) {
            return Err(FieldError::new(
                field,
                "uin_checksum",
                "Проверьте УИН: контрольная цифра не совпадает с номером",
            ));
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The check digits a UIN body may carry. Weights 1…10 repeat from the left; when the
/// sum mod 11 is 10, the digits are weighed again from 3. Texts disagree on how that
/// second series repeats: our reference says 3…12, the Treasury wording ("the series
/// shifted two places left") and published implementations give 3…10, 1, 2. The two
/// differ for about one UIN in twelve, so both are accepted: refusing a genuine bill
/// blocks a payment, while a mistyped UIN that slips through is only not found.
fn uin_check_digits(body: &[u32]) -> [u32; 2] {
    let first = weighted_sum(body, (1..=10).cycle()) % 11;
    if first != 10 {
        return [first, first];
    }
    let reweighed = |sum: u32| match sum % 11 {
        10 => 0,
        rest => rest,
    };
    [
        reweighed(weighted_sum(body, (3..=12).cycle())),
        reweighed(weighted_sum(body, (3..=10).chain(1..=2).cycle())),
    ]
}

impl fmt::Debug for Uin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "Uin", &self.0, 2)
    }
}

// ------------------------------------------------------------------ passport

/// Series of an RF passport: 4 digits (region, year of the blank), stored without space.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PassportSeries(String);

impl PassportSeries {
    /// `4510` or `45 10`.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        match digits_only(raw, char::is_whitespace) {
            Some(digits) if digits.len() == 4 => Ok(Self(digits)),
            _ => Err(FieldError::new(
                field,
                "passport_series_format",
                "Серия паспорта — 4 цифры, например 45 10",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `45 10`, as printed.
    pub fn formatted(&self) -> String {
        format!("{} {}", &self.0[..2], &self.0[2..])
    }
}

impl fmt::Debug for PassportSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "PassportSeries", &self.0, 0)
    }
}

/// Number of an RF passport: 6 digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PassportNumber(String);

impl PassportNumber {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        match digits_only(raw, |c| c.is_whitespace() || c == '№') {
            Some(digits) if digits.len() == 6 => Ok(Self(digits)),
            _ => Err(FieldError::new(
                field,
                "passport_number_format",
                "Номер паспорта — 6 цифр",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PassportNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "PassportNumber", &self.0, 2)
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
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
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
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
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

impl fmt::Debug for DepartmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "DepartmentCode", &self.0, 0)
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
fn fourteenth_birthday(birth_date: Date) -> Option<Date> {
    let year = birth_date.year().checked_add(14)?;
    birth_date
        .replace_year(year)
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28))
        .ok()
}

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
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
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

fn birth_certificate_series(field: &str, raw: &str) -> Result<String, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(required(field));
    }
    let format = || {
        FieldError::new(
            field,
            "birth_certificate_series_format",
            "Серия свидетельства — римское число, дефис и две русские буквы, например IV-МЮ",
        )
    };
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
fn roman_part(field: &str, raw: &str) -> Result<String, FieldError> {
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
const ROMAN_MAX: u32 = 399;

/// Well-formed means written the one standard way: `IV`, never `IIII` or `IIV`. Parsing
/// and writing back catches every malformed string without a grammar.
fn is_canonical_roman(s: &str) -> bool {
    roman_value(s).is_some_and(|v| (1..=ROMAN_MAX).contains(&v) && to_roman(v) == s)
}

fn roman_value(s: &str) -> Option<u32> {
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

fn to_roman(mut n: u32) -> String {
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

fn birth_certificate_number(field: &str, raw: &str) -> Result<String, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(required(field));
    }
    match digits_only(raw, |c| c.is_whitespace() || c == '№') {
        Some(digits) if digits.len() == 6 => Ok(digits),
        _ => Err(FieldError::new(
            field,
            "birth_certificate_number_format",
            "Номер свидетельства о рождении — 6 цифр",
        )),
    }
}

impl fmt::Debug for BirthCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "BirthCertificate", &self.value, 2)
    }
}

// ------------------------------------------------------------------ vehicle documents

/// Vehicle registration certificate (СТС): `77 УО 123456` or `99 12 345678`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VehicleCertificate(String);

impl VehicleCertificate {
    /// 2 digits, 2 digits or letters of the plate alphabet, 6 digits; spaces optional.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        let format = || {
            FieldError::new(
                field,
                "vehicle_certificate_format",
                "Введите серию и номер СТС: 10 знаков, например 77 УО 123456",
            )
        };
        let chars: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if chars.len() != 10
            || !chars[..2].iter().all(char::is_ascii_digit)
            || !chars[4..].iter().all(char::is_ascii_digit)
        {
            return Err(format());
        }
        let mut series = String::with_capacity(8);
        for &c in &chars[2..4] {
            if c.is_ascii_digit() {
                series.push(c);
            } else if c.is_alphabetic() {
                series.push(vehicle_letter(c).ok_or_else(|| {
                    FieldError::new(
                        field,
                        "vehicle_certificate_letter",
                        format!("В серии СТС допустимы буквы {VEHICLE_LETTERS}"),
                    )
                })?);
            } else {
                return Err(format());
            }
        }
        let region: String = chars[..2].iter().collect();
        let number: String = chars[4..].iter().collect();
        Ok(Self(format!("{region} {series} {number}")))
    }

    /// `77 УО 123456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VehicleCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "VehicleCertificate", &self.0, 2)
    }
}

/// Russian registration plate: `А123ВС77`, `А123ВС777`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VehiclePlate(String);

impl VehiclePlate {
    /// Letter, 3 digits, 2 letters, region of 2–3 digits; spaces ignored, Latin
    /// look-alikes and lower case read as the Cyrillic capitals.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        let chars: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let shape_ok = matches!(chars.len(), 8 | 9)
            && [0, 4, 5].iter().all(|&i| chars[i].is_alphabetic())
            && chars[1..4].iter().all(char::is_ascii_digit)
            && chars[6..].iter().all(char::is_ascii_digit);
        if !shape_ok {
            return Err(FieldError::new(
                field,
                "vehicle_plate_format",
                "Введите госномер в формате А123ВС77 или А123ВС777",
            ));
        }
        let mut plate = String::with_capacity(2 * chars.len());
        for (i, &c) in chars.iter().enumerate() {
            if matches!(i, 0 | 4 | 5) {
                plate.push(vehicle_letter(c).ok_or_else(|| {
                    FieldError::new(
                        field,
                        "vehicle_plate_letter",
                        format!("В госномере допустимы буквы {VEHICLE_LETTERS}"),
                    )
                })?);
            } else {
                plate.push(c);
            }
        }
        Ok(Self(plate))
    }

    /// `А123ВС77`: Cyrillic capitals, no spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VehiclePlate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "VehiclePlate", &self.0, 2)
    }
}

/// Driver licence: 10 digits, `99 12 345678`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DriverLicence(String);

impl DriverLicence {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        match digits_only(raw, |c| c.is_whitespace() || c == '№') {
            Some(d) if d.len() == 10 => Ok(Self(format!("{} {} {}", &d[..2], &d[2..4], &d[4..]))),
            _ => Err(FieldError::new(
                field,
                "driver_licence_format",
                "Введите серию и номер водительского удостоверения: 10 цифр, например 99 12 345678",
            )),
        }
    }

    /// `99 12 345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DriverLicence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "DriverLicence", &self.0, 2)
    }
}

// ------------------------------------------------------------------ OMS policy

/// Unified OMS policy number (ЕНП): 16 digits.
///
/// The number carries a check digit defined by the Federal OMS Fund, but its algorithm
/// is not confirmed from the fund's specification, so only length and digits are
/// checked: a guessed algorithm would refuse genuine policies.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OmsPolicy(String);

impl OmsPolicy {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(required(field));
        }
        match digits_only(raw, |c| c.is_whitespace() || is_dash(c)) {
            Some(digits) if digits.len() == 16 => Ok(Self(digits)),
            _ => Err(FieldError::new(
                field,
                "oms_policy_format",
                "Номер полиса ОМС — 16 цифр",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OmsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_masked(f, "OmsPolicy", &self.0, 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The refusal code; also checks that the citizen is told in Russian.
    fn code<T: fmt::Debug>(result: Result<T, FieldError>) -> &'static str {
        let err = result.unwrap_err();
        assert!(
            err.detail.chars().any(|c| matches!(c, 'А'..='я')),
            "{}",
            err.detail
        );
        err.code
    }

    fn date(year: i32, month: u8, day: u8) -> Date {
        Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap()
    }

    // -------------------------------------------------------------- SNILS

    #[test]
    fn snils_accepts_every_usual_form() {
        for input in [
            "138-759-325 08",
            "13875932508",
            "138 759 325 08",
            "138-759-325-08",
            " 138-759-325 08 ",
            "138\u{a0}759\u{a0}325\u{a0}08",
            "138\u{2011}759\u{2013}325 08",
            "1387 5932 508",
        ] {
            let snils = Snils::parse("snils", input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(snils.as_str(), "13875932508", "{input}");
            assert_eq!(snils.formatted(), "138-759-325 08", "{input}");
        }
    }

    #[test]
    fn snils_reference_vectors_and_checksum_branches() {
        for (input, canonical) in [
            ("138-759-325 08", "13875932508"), // sum 210 → 210 mod 101 = 8
            ("112-233-445 95", "11223344595"), // sum 95 < 100
            ("001-019-989 00", "00101998900"), // sum 100 → 00
            ("001-029-985 00", "00102998500"), // sum 101 → 00
            ("642-185-924 00", "64218592400"), // sum 201 → mod 101 = 100 → 00
            ("001-001-999 65", "00100199965"), // first number the rule covers
        ] {
            assert_eq!(Snils::parse("snils", input).unwrap().as_str(), canonical);
        }
    }

    #[test]
    fn snils_up_to_001_001_998_has_no_checksum() {
        for input in ["001-001-998 00", "001-001-998 47", "000-000-001 99"] {
            assert!(Snils::parse("snils", input).is_ok(), "{input}");
        }
        assert_eq!(
            code(Snils::parse("snils", "001-001-999 66")),
            "snils_checksum"
        );
    }

    #[test]
    fn snils_refusals() {
        for (input, expected) in [
            ("112-233-445 96", "snils_checksum"),
            ("138-759-325 09", "snils_checksum"),
            ("642-185-924 100", "snils_format"),
            ("1387593250", "snils_format"),
            ("138759325080", "snils_format"),
            ("138-759-325 0a", "snils_format"),
            ("138.759.325 08", "snils_format"),
            ("138-759-325 0８", "snils_format"),
            ("СНИЛС 13875932508", "snils_format"),
            ("", "required"),
            ("   ", "required"),
        ] {
            assert_eq!(code(Snils::parse("snils", input)), expected, "{input}");
        }
        let err = Snils::parse("documents/snils", "112-233-445 96").unwrap_err();
        assert_eq!(err.field, "/documents/snils");
    }

    // -------------------------------------------------------------- INN

    #[test]
    fn inn_reference_vectors() {
        let org = Inn::parse("inn", "7707083893").unwrap();
        assert_eq!(
            (org.as_str(), org.kind()),
            ("7707083893", InnKind::Organisation)
        );
        let person = Inn::parse("inn", " 5001 0073 2259 ").unwrap();
        assert_eq!(
            (person.as_str(), person.kind()),
            ("500100732259", InnKind::Person)
        );
        assert_eq!(
            Inn::parse_personal("inn", "500100732259").unwrap().as_str(),
            "500100732259"
        );
    }

    #[test]
    fn inn_refusals() {
        for (input, expected) in [
            ("7707083894", "inn_checksum"),
            ("500100732258", "inn_checksum"),
            ("500100732269", "inn_checksum"),
            ("770708389", "inn_format"),
            ("77070838931", "inn_format"),
            ("5001007322590", "inn_format"),
            ("7707-083893", "inn_format"),
            ("ИНН 7707083893", "inn_format"),
            ("", "required"),
        ] {
            assert_eq!(code(Inn::parse("inn", input)), expected, "{input}");
        }
    }

    #[test]
    fn personal_inn_refuses_an_organisation_number() {
        for (input, expected) in [
            ("7707083893", "inn_not_personal"),
            ("7707083894", "inn_not_personal"),
            ("500100732258", "inn_checksum"),
            ("50010073225", "inn_format"),
            ("50010073225x", "inn_format"),
            (" ", "required"),
        ] {
            assert_eq!(code(Inn::parse_personal("inn", input)), expected, "{input}");
        }
    }

    // -------------------------------------------------------------- KPP

    #[test]
    fn kpp_forms_and_refusals() {
        for (input, canonical) in [
            ("773601001", "773601001"),
            ("7736AB001", "7736AB001"),
            ("7736ab001", "7736AB001"),
            (" 7736 01 001 ", "773601001"),
        ] {
            assert_eq!(Kpp::parse("kpp", input).unwrap().as_str(), canonical);
        }
        for (input, expected) in [
            ("77360100", "kpp_format"),
            ("7736010011", "kpp_format"),
            ("7736АБ001", "kpp_format"),
            ("77A601001", "kpp_format"),
            ("773601OO1", "kpp_format"),
            ("7736-01-001", "kpp_format"),
            ("", "required"),
        ] {
            assert_eq!(code(Kpp::parse("kpp", input)), expected, "{input}");
        }
    }

    // -------------------------------------------------------------- UIN

    #[test]
    fn uin_reference_vectors() {
        for input in [
            "18810177220000000015",
            "03554310101220400005",
            "1881017722000000001123450",
        ] {
            assert_eq!(Uin::parse("uin", input).unwrap().as_str(), input);
        }
        assert_eq!(
            Uin::parse("uin", " 1881 0177 2200 0000 0015 ")
                .unwrap()
                .as_str(),
            "18810177220000000015"
        );
    }

    #[test]
    fn uin_second_pass_accepts_either_reading_of_the_weights() {
        // First pass gives 10 for each body below.
        // Weights 3…12: 4; weights 3…10, 1, 2: 1.
        assert!(Uin::parse("uin", "18810177220000000044").is_ok());
        assert!(Uin::parse("uin", "18810177220000000041").is_ok());
        assert_eq!(
            code(Uin::parse("uin", "18810177220000000043")),
            "uin_checksum"
        );
        // Both readings agree on 6.
        assert!(Uin::parse("uin", "18810177220000000976").is_ok());
        assert_eq!(
            code(Uin::parse("uin", "18810177220000000977")),
            "uin_checksum"
        );
        // Second pass gives 10 again under both readings: the check digit is 0.
        assert!(Uin::parse("uin", "18810177220000005670").is_ok());
        assert_eq!(
            code(Uin::parse("uin", "18810177220000005671")),
            "uin_checksum"
        );
    }

    #[test]
    fn uin_refusals() {
        for (input, expected) in [
            ("18810177220000000016", "uin_checksum"),
            ("03554310101220400004", "uin_checksum"),
            ("1881017722000000001123451", "uin_checksum"),
            ("188101772200000000", "uin_format"),
            ("1881017722000000001", "uin_format"),
            ("188101772200000000155", "uin_format"),
            ("18810177220000000015!", "uin_format"),
            ("1881-0177-2200-0000-0015", "uin_format"),
            ("1881017722000000001123A50", "uin_letters"),
            ("18810177220000000О15", "uin_letters"),
            ("", "required"),
        ] {
            assert_eq!(code(Uin::parse("uin", input)), expected, "{input}");
        }
    }

    // -------------------------------------------------------------- passport

    #[test]
    fn passport_series_number_and_whole() {
        for input in ["4510", "45 10", " 45 10 "] {
            let series = PassportSeries::parse("series", input).unwrap();
            assert_eq!(series.as_str(), "4510");
            assert_eq!(series.formatted(), "45 10");
        }
        for input in ["123456", "123 456", "№ 123456", "№123456"] {
            assert_eq!(
                PassportNumber::parse("number", input).unwrap().as_str(),
                "123456"
            );
        }
        for input in [
            "45 10 123456",
            "4510 123456",
            "4510123456",
            "45 10 № 123456",
            " 45 10  123456 ",
        ] {
            let passport = Passport::parse("passport", input).unwrap();
            assert_eq!(passport.series.as_str(), "4510", "{input}");
            assert_eq!(passport.number.as_str(), "123456", "{input}");
            assert_eq!(passport.formatted(), "45 10 123456", "{input}");
        }
    }

    #[test]
    fn passport_refusals() {
        for (input, expected) in [
            ("451", "passport_series_format"),
            ("45100", "passport_series_format"),
            ("45-10", "passport_series_format"),
            ("45 1O", "passport_series_format"),
            ("", "required"),
        ] {
            assert_eq!(code(PassportSeries::parse("s", input)), expected, "{input}");
        }
        for (input, expected) in [
            ("12345", "passport_number_format"),
            ("1234567", "passport_number_format"),
            ("12345a", "passport_number_format"),
            ("123-456", "passport_number_format"),
            (" ", "required"),
        ] {
            assert_eq!(code(PassportNumber::parse("n", input)), expected, "{input}");
        }
        for (input, expected) in [
            ("45 10 12345", "passport_format"),
            ("45 10 1234567", "passport_format"),
            ("45 1O 123456", "passport_format"),
            ("", "required"),
        ] {
            assert_eq!(code(Passport::parse("p", input)), expected, "{input}");
        }
    }

    #[test]
    fn department_code_forms_and_refusals() {
        for input in [
            "770-001",
            "770001",
            "770 001",
            " 770 - 001 ",
            "770–001",
            "770‑001",
        ] {
            assert_eq!(
                DepartmentCode::parse("department_code", input)
                    .unwrap_or_else(|e| panic!("{input}: {e:?}"))
                    .as_str(),
                "770-001"
            );
        }
        for (input, expected) in [
            ("77-0001", "department_code_format"),
            ("770-01", "department_code_format"),
            ("7700011", "department_code_format"),
            ("770_001", "department_code_format"),
            ("770-00a", "department_code_format"),
            ("770--001", "department_code_format"),
            ("770-001-", "department_code_format"),
            ("", "required"),
        ] {
            assert_eq!(code(DepartmentCode::parse("d", input)), expected, "{input}");
        }
    }

    #[test]
    fn passport_issue_date_not_in_future_nor_before_14() {
        let today = date(2024, 6, 1);
        let check = |issue, birth| check_passport_issue_date("issue_date", issue, birth, today);
        assert!(check(today, None).is_ok());
        assert!(check(date(2014, 5, 10), Some(date(2000, 5, 10))).is_ok());
        assert!(check(today, Some(date(2010, 6, 1))).is_ok());
        assert_eq!(
            code(check(date(2024, 6, 2), None)),
            "passport_issue_in_future"
        );
        assert_eq!(
            code(check(date(2024, 6, 2), Some(date(1980, 1, 1)))),
            "passport_issue_in_future"
        );
        assert_eq!(
            code(check(date(2014, 5, 9), Some(date(2000, 5, 10)))),
            "passport_issue_before_14"
        );
        assert_eq!(
            code(check(date(1999, 1, 1), Some(date(2000, 5, 10)))),
            "passport_issue_before_14"
        );
        let err = check(date(2014, 5, 9), Some(date(2000, 5, 10))).unwrap_err();
        assert_eq!(err.field, "/issue_date");
    }

    #[test]
    fn passport_issue_date_for_29_february_birthdays() {
        let today = date(2024, 6, 1);
        let born = Some(date(2008, 2, 29));
        let check = |issue| check_passport_issue_date("issue_date", issue, born, today);
        assert!(check(date(2022, 2, 28)).is_ok());
        assert!(check(date(2022, 3, 1)).is_ok());
        assert_eq!(code(check(date(2022, 2, 27))), "passport_issue_before_14");
        // An ordinary 28 February birthday is not moved.
        let born = Some(date(2008, 2, 28));
        assert!(check_passport_issue_date("d", date(2022, 2, 28), born, today).is_ok());
        assert_eq!(
            code(check_passport_issue_date(
                "d",
                date(2022, 2, 27),
                born,
                today
            )),
            "passport_issue_before_14"
        );
    }

    #[test]
    fn passport_issue_date_at_the_end_of_the_calendar() {
        let today = date(9999, 12, 31);
        assert_eq!(
            code(check_passport_issue_date(
                "d",
                today,
                Some(date(9990, 1, 1)),
                today
            )),
            "passport_issue_before_14"
        );
    }

    // -------------------------------------------------------------- birth certificate

    #[test]
    fn birth_certificate_forms() {
        for (input, canonical) in [
            ("IV-МЮ 123456", "IV-МЮ 123456"),
            ("IV-МЮ123456", "IV-МЮ 123456"),
            (" iv-мю 123456 ", "IV-МЮ 123456"),
            ("IV МЮ 123456", "IV-МЮ 123456"),
            ("IV - МЮ № 123456", "IV-МЮ 123456"),
            ("IV–МЮ 123456", "IV-МЮ 123456"),
            ("IV-Мю 123456", "IV-МЮ 123456"),
            ("ІV-МЮ 123456", "IV-МЮ 123456"),
            ("ХII-ЖА 000001", "XII-ЖА 000001"),
            ("LXXХIХ-ЁЖ 654321", "LXXXIX-ЁЖ 654321"),
            ("CCCXCIX-АБ 123456", "CCCXCIX-АБ 123456"),
            ("I-АБ 123 456", "I-АБ 123456"),
        ] {
            let cert = BirthCertificate::parse("birth_certificate", input)
                .unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(cert.as_str(), canonical, "{input}");
        }
        let cert = BirthCertificate::parse("c", "IV-МЮ 123456").unwrap();
        assert_eq!((cert.series(), cert.number()), ("IV-МЮ", "123456"));
    }

    #[test]
    fn birth_certificate_from_separate_fields() {
        let cert = BirthCertificate::from_parts("series", " iv-мю ", "number", "123 456").unwrap();
        assert_eq!(cert.as_str(), "IV-МЮ 123456");
        assert_eq!(cert, BirthCertificate::parse("c", "IV-МЮ 123456").unwrap());
        let err = BirthCertificate::from_parts("series", "IV-МЮ", "number", "12345").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            ("/number", "birth_certificate_number_format")
        );
        let err = BirthCertificate::from_parts("series", "IV-MЮ", "number", "123456").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            ("/series", "birth_certificate_series_latin_letters")
        );
        assert_eq!(
            code(BirthCertificate::from_parts(
                "series", "", "number", "123456"
            )),
            "required"
        );
        assert_eq!(
            code(BirthCertificate::from_parts(
                "series", "IV-МЮ", "number", ""
            )),
            "required"
        );
    }

    #[test]
    fn birth_certificate_refusals() {
        for (input, expected) in [
            ("IV-MЮ 123456", "birth_certificate_series_latin_letters"),
            ("IV-MU 123456", "birth_certificate_series_latin_letters"),
            ("IV-Мa 123456", "birth_certificate_series_latin_letters"),
            ("IIII-МЮ 123456", "birth_certificate_series_roman"),
            ("IC-МЮ 123456", "birth_certificate_series_roman"),
            ("VX-МЮ 123456", "birth_certificate_series_roman"),
            ("IIV-МЮ 123456", "birth_certificate_series_roman"),
            ("CD-МЮ 123456", "birth_certificate_series_roman"),
            ("CCCC-МЮ 123456", "birth_certificate_series_roman"),
            ("АБ-МЮ 123456", "birth_certificate_series_roman"),
            ("4-МЮ 123456", "birth_certificate_series_roman"),
            ("-МЮ 123456", "birth_certificate_series_roman"),
            ("IV-М 123456", "birth_certificate_series_format"),
            ("IV-МЮЯ 123456", "birth_certificate_series_format"),
            ("IV-М! 123456", "birth_certificate_series_format"),
            ("IVМЮ 123456", "birth_certificate_series_format"),
            ("IV-МЮ 12345", "birth_certificate_number_format"),
            ("IV-МЮ 1234567", "birth_certificate_number_format"),
            ("IV-МЮ", "birth_certificate_format"),
            ("123456", "birth_certificate_format"),
            ("", "required"),
        ] {
            assert_eq!(
                code(BirthCertificate::parse("c", input)),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn roman_numerals_are_accepted_only_in_standard_form() {
        for n in 1..=ROMAN_MAX {
            let numeral = to_roman(n);
            assert!(is_canonical_roman(&numeral), "{numeral}");
            assert_eq!(roman_value(&numeral), Some(n));
        }
        for numeral in [
            "", "IIII", "VV", "IL", "XXXX", "LL", "IVI", "IXI", "XIIII", "iv",
        ] {
            assert!(!is_canonical_roman(numeral), "{numeral}");
        }
    }

    // -------------------------------------------------------------- vehicle documents

    #[test]
    fn vehicle_certificate_forms() {
        for (input, canonical) in [
            ("77 УО 123456", "77 УО 123456"),
            ("77УО123456", "77 УО 123456"),
            ("77 уо 123456", "77 УО 123456"),
            ("77 YO 123456", "77 УО 123456"),
            ("77 yo 123456", "77 УО 123456"),
            ("77 ХО 123456", "77 ХО 123456"),
            ("99 12 345678", "99 12 345678"),
            ("9912345678", "99 12 345678"),
            ("77 1А 123456", "77 1А 123456"),
        ] {
            assert_eq!(
                VehicleCertificate::parse("sts", input)
                    .unwrap_or_else(|e| panic!("{input}: {e:?}"))
                    .as_str(),
                canonical,
                "{input}"
            );
        }
        for (input, expected) in [
            ("77 ЯО 123456", "vehicle_certificate_letter"),
            ("77 DO 123456", "vehicle_certificate_letter"),
            ("7 УО 123456", "vehicle_certificate_format"),
            ("77 УО 12345", "vehicle_certificate_format"),
            ("77 УО 1234567", "vehicle_certificate_format"),
            ("АА УО 123456", "vehicle_certificate_format"),
            ("77 УО 12345О", "vehicle_certificate_format"),
            ("77-УО-123456", "vehicle_certificate_format"),
            ("77 У! 123456", "vehicle_certificate_format"),
            ("", "required"),
        ] {
            assert_eq!(
                code(VehicleCertificate::parse("sts", input)),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn vehicle_plate_forms() {
        for (input, canonical) in [
            ("А123ВС77", "А123ВС77"),
            ("А123ВС777", "А123ВС777"),
            ("а123вс77", "А123ВС77"),
            ("A123BC77", "А123ВС77"),
            ("А 123 ВС 77", "А123ВС77"),
            (" a 123 bc 777 ", "А123ВС777"),
            ("Х001ТУ199", "Х001ТУ199"),
        ] {
            assert_eq!(
                VehiclePlate::parse("plate", input)
                    .unwrap_or_else(|e| panic!("{input}: {e:?}"))
                    .as_str(),
                canonical,
                "{input}"
            );
        }
        for (input, expected) in [
            ("Б123ВС77", "vehicle_plate_letter"),
            ("D123BC77", "vehicle_plate_letter"),
            ("А123ВЯ77", "vehicle_plate_letter"),
            ("А12ВС77", "vehicle_plate_format"),
            ("А1234ВС77", "vehicle_plate_format"),
            ("А123ВС7", "vehicle_plate_format"),
            ("А123ВС7777", "vehicle_plate_format"),
            ("1123ВС77", "vehicle_plate_format"),
            ("А123В177", "vehicle_plate_format"),
            ("А123ВС7A", "vehicle_plate_format"),
            ("А123-ВС77", "vehicle_plate_format"),
            ("", "required"),
        ] {
            assert_eq!(
                code(VehiclePlate::parse("plate", input)),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn driver_licence_forms_and_refusals() {
        for input in [
            "99 12 345678",
            "9912345678",
            "9912 345678",
            "99 12 № 345678",
        ] {
            assert_eq!(
                DriverLicence::parse("licence", input).unwrap().as_str(),
                "99 12 345678",
                "{input}"
            );
        }
        for (input, expected) in [
            ("99 12 34567", "driver_licence_format"),
            ("99 12 3456789", "driver_licence_format"),
            ("99 АА 345678", "driver_licence_format"),
            ("99-12-345678", "driver_licence_format"),
            ("", "required"),
        ] {
            assert_eq!(
                code(DriverLicence::parse("licence", input)),
                expected,
                "{input}"
            );
        }
    }

    // -------------------------------------------------------------- OMS policy

    #[test]
    fn oms_policy_forms_and_refusals() {
        for input in [
            "1234567890123456",
            "1234 5678 9012 3456",
            "1234-5678-9012-3456",
            " 1234567890123456 ",
        ] {
            assert_eq!(
                OmsPolicy::parse("oms_policy", input).unwrap().as_str(),
                "1234567890123456"
            );
        }
        for (input, expected) in [
            ("123456789012345", "oms_policy_format"),
            ("12345678901234567", "oms_policy_format"),
            ("123456789012345a", "oms_policy_format"),
            ("", "required"),
        ] {
            assert_eq!(
                code(OmsPolicy::parse("oms_policy", input)),
                expected,
                "{input}"
            );
        }
    }

    // -------------------------------------------------------------- printing

    #[test]
    fn debug_masks_personal_data() {
        let shown = [
            format!("{:?}", Snils::parse("f", "138-759-325 08").unwrap()),
            format!("{:?}", Inn::parse("f", "500100732259").unwrap()),
            format!("{:?}", Uin::parse("f", "18810177220000000015").unwrap()),
            format!("{:?}", Passport::parse("f", "45 10 123456").unwrap()),
            format!("{:?}", DepartmentCode::parse("f", "770-001").unwrap()),
            format!(
                "{:?}",
                BirthCertificate::parse("f", "IV-МЮ 123456").unwrap()
            ),
            format!(
                "{:?}",
                VehicleCertificate::parse("f", "77 УО 123456").unwrap()
            ),
            format!("{:?}", VehiclePlate::parse("f", "А123ВС77").unwrap()),
            format!("{:?}", DriverLicence::parse("f", "99 12 345678").unwrap()),
            format!("{:?}", OmsPolicy::parse("f", "1234567890123456").unwrap()),
        ];
        assert_eq!(
            shown,
            [
                "Snils(*********08)",
                "Inn(**********59)",
                "Uin(******************15)",
                "Passport { series: PassportSeries(****), number: PassportNumber(****56) }",
                "DepartmentCode(***-***)",
                "BirthCertificate(**-** ****56)",
                "VehicleCertificate(** ** ****56)",
                "VehiclePlate(******77)",
                "DriverLicence(** ** ****78)",
                "OmsPolicy(**************56)",
            ]
        );
        // An organisation's KPP is public and stays readable.
        assert_eq!(
            format!("{:?}", Kpp::parse("f", "773601001").unwrap()),
            "Kpp(\"773601001\")"
        );
    }

    #[test]
    fn serialises_to_the_canonical_form() {
        let snils = Snils::parse("f", "138-759-325 08").unwrap();
        assert_eq!(serde_json::to_string(&snils).unwrap(), "\"13875932508\"");
        let cert = BirthCertificate::parse("f", "iv-мю 123456").unwrap();
        assert_eq!(serde_json::to_string(&cert).unwrap(), "\"IV-МЮ 123456\"");
        let passport = Passport::parse("f", "45 10 123456").unwrap();
        assert_eq!(
            serde_json::to_string(&passport).unwrap(),
            r#"{"series":"4510","number":"123456"}"#
        );
    }
}
