//! The payee catalogue: organisations a citizen pays without a bill («Дополнительные
//! платежи»: charity funds, a transport card, a home phone, city property rent), kept as
//! data in `shared/catalogue/payees.json`, embedded in the binary and checked once per
//! cold start (a bad pattern, an amount range upside down or a payee's requisites that
//! do not hold is a startup error, not a refusal at payment time).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::domain::{luhn_valid, BillerId, Category, Payee};
use crate::error::FieldError;
use crate::services::billers::{Registration, RegistrationInput, UinPrefix};
use crate::services::charges::{MAX_AMOUNT, MAX_PURPOSE_CHARS};

/// The catalogue as shipped.
const EMBEDDED: &str = include_str!("../../../catalogue/payees.json");

/// The longest value of a payee's field: so that the purpose built from them fits.
pub const MAX_FIELD_CHARS: usize = 50;
/// The leading digits of a portal UIN: the prefix, then the digits of the keyed hash.
const PORTAL_UIN_BODY: usize = 24;

/// Why the catalogue cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("payee catalogue is not valid JSON of its shape: {0}")]
    Shape(String),
    #[error("payee catalogue: {at}: {what}")]
    Invalid { at: String, what: String },
}

fn invalid(at: impl Into<String>, what: impl Into<String>) -> CatalogueError {
    CatalogueError::Invalid {
        at: at.into(),
        what: what.into(),
    }
}

/// A payee's id in the catalogue: lower-case Latin letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PayeeId(String);

impl PayeeId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=40).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PayeeId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("malformed payee id {s:?}"))
    }
}

impl From<PayeeId> for String {
    fn from(id: PayeeId) -> String {
        id.0
    }
}

impl std::fmt::Display for PayeeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a payee is, as the catalogue groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayeeCategory {
    Charity,
    Transport,
    Phone,
    Rent,
}

impl PayeeCategory {
    /// The category of the charge issued for a payment to it.
    pub fn charge_category(self) -> Category {
        match self {
            PayeeCategory::Phone => Category::Utilities,
            PayeeCategory::Charity | PayeeCategory::Transport | PayeeCategory::Rent => {
                Category::Other
            }
        }
    }
}

/// The check a field's value must pass beyond its pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldCheck {
    /// The pattern only.
    None,
    /// Digits only (spaces typed between them are dropped).
    Digits,
    /// Digits whose last is their Luhn check digit.
    Luhn,
    /// A «Тройка» card number: 10 digits, the last the Luhn check digit of the first
    /// nine (the project's rule: the operator publishes none; docs/testing.md).
    Troika,
}

/// The ways of paying the catalogue names; Apple Pay is not one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AcceptedMethod {
    Card,
    Saved,
    Mobile,
    Wallet,
}

impl AcceptedMethod {
    pub fn name(self) -> &'static str {
        match self {
            AcceptedMethod::Card => "card",
            AcceptedMethod::Saved => "saved",
            AcceptedMethod::Mobile => "mobile",
            AcceptedMethod::Wallet => "wallet",
        }
    }
}

/// One field a payee asks for.
#[derive(Debug, Clone)]
pub struct PayeeField {
    pub name: String,
    pub label: String,
    pub pattern: regex_lite::Regex,
    pub check: FieldCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AmountRange {
    pub min: u64,
    pub max: u64,
}

/// A payee of the catalogue, checked.
#[derive(Debug, Clone)]
pub struct CataloguePayee {
    pub id: PayeeId,
    pub name: String,
    pub category: PayeeCategory,
    /// Whether a monthly or weekly autopay may pay it.
    pub scheduled_autopay: bool,
    pub methods: Vec<AcceptedMethod>,
    pub amount: AmountRange,
    pub fields: Vec<PayeeField>,
    /// What its charges say, and whom they pay.
    pub purpose: String,
    pub payee: Payee,
    pub kbk: String,
    pub oktmo: String,
}

/// The portal itself as the biller of the charges it issues for payments without a
/// bill: a fixed id and its own UIN prefix.
#[derive(Debug, Clone)]
pub struct PortalBiller {
    pub biller_id: BillerId,
    pub name: String,
    pub uin_prefix: UinPrefix,
}

/// The catalogue, checked.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub portal: PortalBiller,
    payees: Vec<CataloguePayee>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    portal: RawPortal,
    payees: Vec<RawPayee>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPortal {
    biller_id: String,
    biller_name: String,
    uin_prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayee {
    id: String,
    name: String,
    category: PayeeCategory,
    purpose: String,
    payee: Payee,
    kbk: String,
    oktmo: String,
    fields: Vec<RawField>,
    amount: AmountRange,
    scheduled_autopay: bool,
    methods: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    label: String,
    pattern: String,
    check: FieldCheck,
}

fn all_digits(s: &str, lengths: &[usize]) -> bool {
    lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl Catalogue {
    /// The catalogue shipped in the binary.
    pub fn embedded() -> Result<Self, CatalogueError> {
        Self::parse(EMBEDDED)
    }

    /// [`Self::embedded`], checked once per process, for the code that has no catalogue
    /// handed to it (autopays).
    pub fn shared() -> Result<&'static Self, CatalogueError> {
        static SHARED: std::sync::OnceLock<Result<Catalogue, CatalogueError>> =
            std::sync::OnceLock::new();
        SHARED
            .get_or_init(Self::embedded)
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn parse(json: &str) -> Result<Self, CatalogueError> {
        let raw: RawCatalogue =
            serde_json::from_str(json).map_err(|e| CatalogueError::Shape(e.to_string()))?;
        let biller_id = BillerId::parse(&raw.portal.biller_id)
            .map_err(|_| invalid("portal.biller_id", "not a canonical UUID"))?;
        let uin_prefix = UinPrefix::parse("", &raw.portal.uin_prefix)
            .ok()
            .filter(|p| p.as_str().len() <= 8)
            .ok_or_else(|| invalid("portal.uin_prefix", "3 to 8 digits"))?;
        if raw.portal.biller_name.trim().is_empty() {
            return Err(invalid("portal.biller_name", "empty"));
        }
        let mut payees: Vec<CataloguePayee> = Vec::with_capacity(raw.payees.len());
        for p in raw.payees {
            let payee = Self::checked_payee(p, &uin_prefix)?;
            if payees.iter().any(|q| q.id == payee.id) {
                return Err(invalid(payee.id.as_str(), "id given twice"));
            }
            payees.push(payee);
        }
        if payees.is_empty() {
            return Err(invalid("payees", "no payee"));
        }
        Ok(Self {
            portal: PortalBiller {
                biller_id,
                name: raw.portal.biller_name,
                uin_prefix,
            },
            payees,
        })
    }

    fn checked_payee(p: RawPayee, prefix: &UinPrefix) -> Result<CataloguePayee, CatalogueError> {
        let id = PayeeId::parse(&p.id).ok_or_else(|| invalid(&p.id, "malformed id"))?;
        let at = |what: &str| format!("{id}.{what}");
        if p.name.trim().is_empty() {
            return Err(invalid(at("name"), "empty"));
        }
        // The payee's requisites pass the checks a biller's registration passes.
        let registration = Registration::parse(&RegistrationInput {
            uin_prefixes: prefix.as_str(),
            payee_name: &p.payee.name,
            payee_inn: &p.payee.inn,
            payee_kpp: &p.payee.kpp,
            payee_bic: &p.payee.bic,
            payee_account: &p.payee.account,
        })
        .map_err(|e| invalid(at("payee"), format!("{:?}", e.problem().errors)))?;
        if !all_digits(&p.kbk, &[20]) {
            return Err(invalid(at("kbk"), "20 digits"));
        }
        if !all_digits(&p.oktmo, &[8, 11]) {
            return Err(invalid(at("oktmo"), "8 or 11 digits"));
        }
        let AmountRange { min, max } = p.amount;
        if min == 0 || min > max || max > MAX_AMOUNT {
            return Err(invalid(
                at("amount"),
                format!("needs 0 < min <= max <= {MAX_AMOUNT}"),
            ));
        }
        let mut fields: Vec<PayeeField> = Vec::with_capacity(p.fields.len());
        let mut purpose_len = p.purpose.chars().count();
        for f in p.fields {
            let name_ok = (1..=32).contains(&f.name.len())
                && f.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !name_ok || fields.iter().any(|g| g.name == f.name) {
                return Err(invalid(
                    at("fields"),
                    format!("bad or repeated name {:?}", f.name),
                ));
            }
            if f.label.trim().is_empty() {
                return Err(invalid(at(&f.name), "empty label"));
            }
            let pattern = regex_lite::Regex::new(&f.pattern)
                .map_err(|e| invalid(at(&f.name), format!("pattern: {e}")))?;
            purpose_len += f.label.chars().count() + 4 + MAX_FIELD_CHARS;
            fields.push(PayeeField {
                name: f.name,
                label: f.label,
                pattern,
                check: f.check,
            });
        }
        if p.purpose.trim().is_empty() || purpose_len > MAX_PURPOSE_CHARS {
            return Err(invalid(
                at("purpose"),
                format!("empty, or with its fields longer than {MAX_PURPOSE_CHARS} characters"),
            ));
        }
        let mut methods = Vec::with_capacity(p.methods.len());
        for m in &p.methods {
            let method = match m.as_str() {
                "card" => AcceptedMethod::Card,
                "saved" => AcceptedMethod::Saved,
                "mobile" => AcceptedMethod::Mobile,
                "wallet" => AcceptedMethod::Wallet,
                // «Дополнительные платежи» are not paid with Apple Pay.
                other => return Err(invalid(at("methods"), format!("{other:?} not accepted"))),
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
        if methods.is_empty() {
            return Err(invalid(at("methods"), "none"));
        }
        Ok(CataloguePayee {
            id,
            name: p.name,
            category: p.category,
            purpose: p.purpose,
            payee: registration.payee,
            kbk: p.kbk,
            oktmo: p.oktmo,
            fields,
            amount: p.amount,
            scheduled_autopay: p.scheduled_autopay,
            methods,
        })
    }

    pub fn payees(&self) -> &[CataloguePayee] {
        &self.payees
    }

    /// A payee by its id as a request names it; any other id is not found.
    pub fn payee(&self, raw: &str) -> Option<&CataloguePayee> {
        self.payees.iter().find(|p| p.id.as_str() == raw)
    }

    /// The UIN the portal issues for one payment: its prefix, digits of a keyed hash
    /// (`seed`, URL-safe base64) and the check digit, 25 digits in all. The same seed
    /// gives the same UIN, so a retried payment meets the charge it issued.
    pub fn portal_uin(&self, seed: &str) -> Option<crate::domain::Uin> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut n: u128 = 0;
        for b in seed.bytes().take(20) {
            let v = ALPHABET.iter().position(|a| *a == b)?;
            n = n.wrapping_mul(64).wrapping_add(v as u128);
        }
        let width = PORTAL_UIN_BODY - self.portal.uin_prefix.as_str().len();
        let digits = format!("{n:0>width$}");
        let body = format!(
            "{}{}",
            self.portal.uin_prefix.as_str(),
            &digits[digits.len() - width..]
        );
        (0..=9).find_map(|c| crate::domain::Uin::parse("uin", &format!("{body}{c}")).ok())
    }
}

impl CataloguePayee {
    /// The payee as `GET /v1/payees` shows it.
    pub fn view(&self) -> Value {
        let fields: Vec<Value> = self
            .fields
            .iter()
            .map(|f| json!({"name": f.name, "label": f.label, "pattern": f.pattern.as_str()}))
            .collect();
        let methods: Vec<&str> = self.methods.iter().map(|m| m.name()).collect();
        json!({
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "fields": fields,
            "amount": {"min": self.amount.min, "max": self.amount.max},
            "scheduled_autopay": self.scheduled_autopay,
            "methods": methods,
        })
    }

    /// The fields of a request (`fields`, at `path`), each checked: every one the payee
    /// asks for, none other; every problem is added to `errors`.
    pub fn check_fields(
        &self,
        raw: Option<&Value>,
        path: &str,
        errors: &mut Vec<FieldError>,
    ) -> BTreeMap<String, String> {
        let empty = Map::new();
        let object = match raw {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(o)) => o,
            Some(_) => {
                errors.push(FieldError::new(path, "invalid_type", "Ожидается объект"));
                return BTreeMap::new();
            }
        };
        let known: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        crate::json::Reader { errors }.unknown(object, path, &known);
        let mut values = BTreeMap::new();
        for field in &self.fields {
            let at = format!("{path}/{}", field.name);
            match object.get(&field.name) {
                None | Some(Value::Null) => {
                    errors.push(FieldError::new(&at, "required", "Обязательное поле"))
                }
                Some(Value::String(s)) => match field.check_value(&at, s) {
                    Ok(v) => {
                        values.insert(field.name.clone(), v);
                    }
                    Err(e) => errors.push(e),
                },
                Some(_) => errors.push(FieldError::new(&at, "invalid_type", "Ожидается строка")),
            }
        }
        values
    }

    /// The purpose of the charge a payment issues: the payee's, then each field.
    pub fn purpose_with(&self, values: &BTreeMap<String, String>) -> String {
        let mut purpose = self.purpose.clone();
        for f in &self.fields {
            if let Some(v) = values.get(&f.name) {
                purpose.push_str(&format!("; {}: {v}", f.label));
            }
        }
        purpose
    }
}

impl PayeeField {
    /// The value in its canonical form, or why it is refused.
    pub fn check_value(&self, at: &str, raw: &str) -> Result<String, FieldError> {
        // Free text's rules first (NFC, not empty, not too long, nothing invisible).
        let text = crate::domain::free_text(at, raw, MAX_FIELD_CHARS, true)?;
        let value: String = match self.check {
            FieldCheck::None => text,
            _ => text.chars().filter(|c| !c.is_whitespace()).collect(),
        };
        if !self.pattern.is_match(&value) {
            return Err(FieldError::new(
                at,
                "field_format",
                format!("{}: проверьте формат", self.label),
            ));
        }
        let digits = value.bytes().all(|b| b.is_ascii_digit());
        let passes = match self.check {
            FieldCheck::None => true,
            FieldCheck::Digits => digits,
            FieldCheck::Luhn => digits && luhn_valid(&value),
            FieldCheck::Troika => digits && value.len() == 10 && luhn_valid(&value),
        };
        if passes {
            Ok(value)
        } else {
            Err(FieldError::new(
                at,
                match self.check {
                    FieldCheck::Troika => "troika_checksum",
                    _ => "field_checksum",
                },
                format!("{}: контрольная цифра не совпадает", self.label),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_catalogue_is_valid() {
        let c = Catalogue::embedded().unwrap();
        let charity = c
            .payees()
            .iter()
            .filter(|p| p.category == PayeeCategory::Charity)
            .count();
        assert!(charity >= 2);
        for id in ["troika", "home-phone", "city-rent"] {
            assert!(c.payee(id).is_some(), "{id}");
        }
        assert!(c.payee("nobody").is_none());
    }

    fn with(edit: impl Fn(&mut Value)) -> Result<Catalogue, CatalogueError> {
        let mut v: Value = serde_json::from_str(EMBEDDED).unwrap();
        edit(&mut v);
        Catalogue::parse(&v.to_string())
    }

    #[test]
    fn a_broken_catalogue_is_a_startup_error() {
        let bad_regex = with(|v| v["payees"][2]["fields"][0]["pattern"] = json!("^[0-9{10}$"));
        assert!(
            matches!(bad_regex, Err(CatalogueError::Invalid { .. })),
            "{bad_regex:?}"
        );
        let upside_down = with(|v| v["payees"][0]["amount"] = json!({"min": 500, "max": 100}));
        assert!(matches!(upside_down, Err(CatalogueError::Invalid { .. })));
        let apple_pay = with(|v| v["payees"][0]["methods"] = json!(["card", "apple_pay"]));
        assert!(matches!(apple_pay, Err(CatalogueError::Invalid { .. })));
        let twice = with(|v| v["payees"][1]["id"] = json!("charity-children"));
        assert!(matches!(twice, Err(CatalogueError::Invalid { .. })));
        let bad_inn = with(|v| v["payees"][0]["payee"]["inn"] = json!("7707083894"));
        assert!(matches!(bad_inn, Err(CatalogueError::Invalid { .. })));
        let unknown = with(|v| v["payees"][0]["colour"] = json!("red"));
        assert!(matches!(unknown, Err(CatalogueError::Shape(_))));
        assert!(with(|_| {}).is_ok());
    }

    #[test]
    fn troika_numbers() {
        let c = Catalogue::embedded().unwrap();
        let field = &c.payee("troika").unwrap().fields[0];
        for good in ["1234567897", "0001234566", "12345 67897"] {
            assert!(
                field.check_value("/fields/card_number", good).is_ok(),
                "{good}"
            );
        }
        let code = |raw: &str| field.check_value("/f", raw).unwrap_err().code;
        assert_eq!(code("1234567890"), "troika_checksum");
        assert_eq!(code("123456789"), "field_format");
        assert_eq!(code("12345678a7"), "field_format");
    }

    #[test]
    fn fields_are_checked_by_their_path() {
        let c = Catalogue::embedded().unwrap();
        let rent = c.payee("city-rent").unwrap();
        let mut errors = Vec::new();
        let values = rent.check_fields(
            Some(&json!({"contract": "12-34567/21"})),
            "/fields",
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            rent.purpose_with(&values),
            "Арендная плата по договору с городом Москвой; Номер договора аренды: 12-34567/21"
        );
        let mut errors = Vec::new();
        rent.check_fields(Some(&json!({"extra": "1"})), "/fields", &mut errors);
        let got: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert!(got.contains(&("/fields/contract", "required")), "{got:?}");
        assert!(got.iter().any(|(f, _)| *f == "/fields/extra"), "{got:?}");
    }

    #[test]
    fn portal_uins_are_stable_and_checked() {
        let c = Catalogue::embedded().unwrap();
        let seed = "q1w2e3r4t5y6u7i8o9p0AaBbCcDdEeFfGgHhIiJjKkL";
        let a = c.portal_uin(seed).unwrap();
        assert_eq!(a, c.portal_uin(seed).unwrap());
        assert_eq!(a.as_str().len(), 25);
        assert!(a.as_str().starts_with("0355"));
        assert_ne!(
            a,
            c.portal_uin("Z1w2e3r4t5y6u7i8o9p0AaBbCcDdEeFfGgHhIiJjKkL")
                .unwrap()
        );
    }
}
