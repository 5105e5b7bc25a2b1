//! What charges are made of: their category, the identifiers that name their payers (in
//! the canonical form profiles store them in, and as index keys), and money as a citizen
//! reads it.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hasher, Identifier};
use crate::domain::{
    BirthCertificate, Inn, Kpp, PassportNumber, PassportSeries, Snils, VehicleCertificate,
};
use crate::error::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Utilities,
    Education,
    Kindergarten,
    Clubs,
    Fines,
    Taxes,
    Other,
}

impl Category {
    pub const ALL: [(&'static str, Category); 7] = [
        ("utilities", Category::Utilities),
        ("education", Category::Education),
        ("kindergarten", Category::Kindergarten),
        ("clubs", Category::Clubs),
        ("fines", Category::Fines),
        ("taxes", Category::Taxes),
        ("other", Category::Other),
    ];

    pub fn parse(path: &str, raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == raw.trim())
            .map(|(_, c)| *c)
            .ok_or_else(|| {
                FieldError::new(
                    path,
                    "invalid_category",
                    "Допустимые значения: utilities, education, kindergarten, clubs, fines, taxes, other",
                )
            })
    }
}

/// Whom a charge pays: the payee's bank details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payee {
    pub name: String,
    pub inn: String,
    pub kpp: String,
    pub bic: String,
    pub account: String,
}

/// A biller's free text: NFC, trimmed, not empty, at most `max` characters, with no
/// control or invisible formatting characters (see [`crate::domain::free_text`]).
pub(crate) fn charge_text(path: &str, raw: &str, max: usize) -> Result<String, FieldError> {
    crate::domain::free_text(path, raw, max, false)
}

/// What a payer identifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayerKind {
    Snils,
    Passport,
    BirthCertificate,
    Sts,
    Inn,
    InnKpp,
}

/// A payer identifier in its canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    pub kind: PayerKind,
    pub value: String,
}

/// An identifier as the profile stores it, so charges and profiles meet on one key.
pub fn canonical(kind: PayerKind, path: &str, raw: &str) -> Result<String, FieldError> {
    match kind {
        PayerKind::Snils => Snils::parse(path, raw).map(|v| v.as_str().to_string()),
        PayerKind::Passport => {
            // Series and number together, as on the passport: `45 10 123456`.
            let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
            if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FieldError::new(
                    path,
                    "passport_format",
                    "Серия и номер паспорта: 10 цифр",
                ));
            }
            let series = PassportSeries::parse(path, &digits[..4])?;
            let number = PassportNumber::parse(path, &digits[4..])?;
            Ok(format!("{}{}", series.as_str(), number.as_str()))
        }
        PayerKind::BirthCertificate => {
            BirthCertificate::parse(path, raw).map(|v| v.as_str().to_string())
        }
        PayerKind::Sts => VehicleCertificate::parse(path, raw).map(|v| v.as_str().to_string()),
        PayerKind::Inn => Inn::parse(path, raw).map(|v| v.as_str().to_string()),
        PayerKind::InnKpp => {
            let (inn, kpp) = raw.split_once('/').ok_or_else(|| {
                FieldError::new(path, "inn_kpp_format", "ИНН и КПП через косую черту")
            })?;
            let inn = Inn::parse(path, inn)?;
            let kpp = Kpp::parse(path, kpp)?;
            Ok(format!("{}/{}", inn.as_str(), kpp.as_str()))
        }
    }
}

/// The index key of a payer identifier: a keyed hash of its kind and canonical value.
pub fn payer_key(hasher: &Hasher, payer: &Payer) -> String {
    let kind = serde_json::to_value(payer.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    hasher.identifier(Identifier::Payer, &[&kind, &payer.value])
}

/// `150000` kopecks as `1 500,00 ₽`.
pub fn roubles(kopecks: u64) -> String {
    let whole = (kopecks / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(ch);
    }
    format!("{grouped},{:02} ₽", kopecks % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_roubles() {
        assert_eq!(roubles(0), "0,00 ₽");
        assert_eq!(roubles(5), "0,05 ₽");
        assert_eq!(roubles(150_000), "1\u{a0}500,00 ₽");
        assert_eq!(roubles(123_456_789), "1\u{a0}234\u{a0}567,89 ₽");
    }
}
