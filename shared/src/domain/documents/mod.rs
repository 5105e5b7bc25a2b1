//! Russian identity documents and identifiers: SNILS, INN, KPP, UIN, passport, birth
//! certificate, international passport, military ID, a foreign citizen's document, vehicle
//! documents, driver licence, OMS policy, registration plate.
//!
//! Every type parses what a citizen types (spaces, hyphens, lower case, look-alike
//! letters), refuses with a specific code, and keeps one canonical form. These values are
//! personal data: `Debug` masks them, and there is deliberately no `Display`, so that a
//! value reaches a log line only through an explicit `as_str()`.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month};

use crate::error::FieldError;

mod birth_certificate;
mod other_ids;
mod passport;
mod vehicle;
pub use birth_certificate::*;
pub use other_ids::*;
pub use passport::*;
pub use vehicle::*;

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

/// The refusal of a value that is not of the type's shape, made when needed.
fn refusal<'a>(
    field: &'a str,
    code: &'static str,
    message: &'static str,
) -> impl Fn() -> FieldError + Copy + 'a {
    move || FieldError::new(field, code, message)
}

/// `raw` trimmed, or `required` when nothing is left.
fn present<'a>(field: &str, raw: &'a str) -> Result<&'a str, FieldError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(required(field));
    }
    Ok(raw)
}

/// A field of exactly `len` digits once the characters `skip` accepts are dropped:
/// `required` when empty, refused with `code` and `message` when anything else.
fn digits_field(
    field: &str,
    raw: &str,
    skip: impl Fn(char) -> bool,
    len: usize,
    code: &'static str,
    message: &'static str,
) -> Result<String, FieldError> {
    match digits_only(present(field, raw)?, skip) {
        Some(digits) if digits.len() == len => Ok(digits),
        _ => Err(refusal(field, code, message)()),
    }
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
    VEHICLE_TWINS
        .iter()
        .find(|twins| twins.contains(c))
        .and_then(|twins| twins.chars().next())
}

/// Each letter of [`vehicle_letter`]: the Cyrillic capital first, then its lower case and
/// its Latin twin in both cases.
const VEHICLE_TWINS: [&str; 12] = [
    "АаAa", "ВвBb", "ЕеEe", "КкKk", "МмMm", "НнHh", "ОоOo", "РрPp", "СсCc", "ТтTt", "УуYy", "ХхXx",
];

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
    InternationalPassport,
    MilitaryId,
    ForeignDocumentNumber,
);

/// `Debug` shows the canonical form masked ([`write_masked`]), all but the last `keep`
/// letters and digits hidden.
macro_rules! debug_masked {
    ($($t:ident: $keep:literal),* $(,)?) => {$(
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_masked(f, stringify!($t), self.as_str(), $keep)
            }
        }
    )*};
}

debug_masked!(
    Snils: 2,
    Inn: 2,
    Uin: 2,
    OmsPolicy: 2,
    PassportSeries: 0,
    PassportNumber: 2,
    DepartmentCode: 0,
    VehicleCertificate: 2,
    VehiclePlate: 2,
    DriverLicence: 2,
    BirthCertificate: 2,
    InternationalPassport: 2,
    MilitaryId: 2,
    ForeignDocumentNumber: 2,
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
        let digits = digits_field(
            field,
            raw,
            |c| c.is_whitespace() || is_dash(c),
            11,
            "snils_format",
            "Введите СНИЛС: 11 цифр, например 123-456-789 01",
        )?;
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
        let format = refusal(
            field,
            "inn_format",
            "Введите ИНН: 10 цифр для организации или 12 цифр для физического лица",
        );
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
    let raw = present(field, raw)?;
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

// ------------------------------------------------------------------ KPP

/// Tax registration reason code (КПП) of an organisation: public, so printed in clear.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kpp(String);

impl Kpp {
    /// 4 digits (tax office), 2 digits or Latin capitals (reason), 3 digits.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
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
        let raw = present(field, raw)?;
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

/// A UIN kept in a stored document or a queued message is read back through its checks,
/// so a malformed one fails the read rather than naming a bill that does not exist.
impl<'de> Deserialize<'de> for Uin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Uin::parse("uin", &raw).map_err(|e| serde::de::Error::custom(e.code))
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
        digits_field(
            field,
            raw,
            |c| c.is_whitespace() || is_dash(c),
            16,
            "oms_policy_format",
            "Номер полиса ОМС — 16 цифр",
        )
        .map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests;
