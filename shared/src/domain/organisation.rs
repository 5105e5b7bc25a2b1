//! Organisations in the corporate cabinet: their state registration numbers (OGRN of a
//! legal entity, OGRNIP of a sole trader), what identifies one (INN with KPP and OGRN, or
//! a person's INN with OGRNIP), the roles of its members and what each role may do, and
//! who owns a thing (a citizen or an organisation).
//!
//! Registration numbers are public (the state registers publish them), so unlike
//! personal documents they print in clear.

use serde::{Deserialize, Serialize};

use super::{AccountId, Inn, InnKind, Kpp, OrganisationId, Payer, PayerKind};
use crate::error::FieldError;

/// How one kind of registration number is written and checked: OGRN and OGRNIP differ
/// only in these, so one reader ([`RegistrationRule::read`]) serves both.
struct RegistrationRule {
    /// How many digits the number has; the last is the check digit.
    len: usize,
    /// The check digit is (the digits before it as a number mod `modulus`) mod 10.
    modulus: u64,
    format_code: &'static str,
    format_message: &'static str,
    checksum_code: &'static str,
    checksum_message: &'static str,
}

impl RegistrationRule {
    /// `raw` without spaces, if it is `len` ASCII digits whose last is the check digit;
    /// `required` when empty.
    fn read(&self, field: &str, raw: &str) -> Result<String, FieldError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(FieldError::new(field, "required", "Заполните поле"));
        }
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != self.len || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                field,
                self.format_code,
                self.format_message,
            ));
        }
        if check_digit(&digits, self.len - 1, self.modulus) != last_digit(&digits) {
            return Err(FieldError::new(
                field,
                self.checksum_code,
                self.checksum_message,
            ));
        }
        Ok(digits)
    }
}

/// The number the first `len` digits form, mod `m`, then mod 10: the check digit rule
/// of OGRN (m = 11) and OGRNIP (m = 13).
fn check_digit(digits: &str, len: usize, m: u64) -> Option<u8> {
    let number: u64 = digits.get(..len)?.parse().ok()?;
    u8::try_from(number % m % 10).ok()
}

fn last_digit(digits: &str) -> Option<u8> {
    digits.bytes().last().map(|b| b - b'0')
}

/// Primary state registration number of a legal entity (ОГРН): 13 digits, the last of
/// which is (the first 12 as a number mod 11) mod 10.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Ogrn(String);

const OGRN: RegistrationRule = RegistrationRule {
    len: 13,
    modulus: 11,
    format_code: "ogrn_format",
    format_message: "Введите ОГРН: 13 цифр, например 1027700132195",
    checksum_code: "ogrn_checksum",
    checksum_message: "Проверьте ОГРН: контрольная цифра не совпадает с номером",
};

impl Ogrn {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        OGRN.read(field, raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Primary state registration number of a sole trader (ОГРНИП): 15 digits, the last of
/// which is (the first 14 as a number mod 13) mod 10.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct Ogrnip(String);

const OGRNIP: RegistrationRule = RegistrationRule {
    len: 15,
    modulus: 13,
    format_code: "ogrnip_format",
    format_message: "Введите ОГРНИП: 15 цифр, например 304500116000157",
    checksum_code: "ogrnip_checksum",
    checksum_message: "Проверьте ОГРНИП: контрольная цифра не совпадает с номером",
};

impl Ogrnip {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        OGRNIP.read(field, raw).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Ogrn> for String {
    fn from(v: Ogrn) -> String {
        v.0
    }
}

impl From<Ogrnip> for String {
    fn from(v: Ogrnip) -> String {
        v.0
    }
}

/// What kind of organisation it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    /// A company (ЮЛ): INN of 10 digits, KPP, OGRN.
    LegalEntity,
    /// A sole trader (ИП): the person's INN of 12 digits, OGRNIP.
    SoleTrader,
}

impl OrganisationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LegalEntity => "legal_entity",
            Self::SoleTrader => "sole_trader",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        match raw {
            "legal_entity" => Ok(Self::LegalEntity),
            "sole_trader" => Ok(Self::SoleTrader),
            _ => Err(FieldError::new(
                field,
                "invalid_value",
                "Укажите legal_entity (юридическое лицо) или sole_trader (ИП)",
            )),
        }
    }
}

/// What identifies an organisation in the state registers, each part checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrganisationIdentity {
    LegalEntity { inn: Inn, kpp: Kpp, ogrn: Ogrn },
    SoleTrader { inn: Inn, ogrnip: Ogrnip },
}

impl OrganisationIdentity {
    /// A legal entity's identifiers; `inn` must be an organisation's (10 digits).
    pub fn legal_entity(inn: Inn, kpp: Kpp, ogrn: Ogrn) -> Result<Self, FieldError> {
        if inn.kind() != InnKind::Organisation {
            return Err(FieldError::new(
                "inn",
                "inn_not_organisation",
                "ИНН юридического лица состоит из 10 цифр",
            ));
        }
        Ok(Self::LegalEntity { inn, kpp, ogrn })
    }

    /// A sole trader's identifiers; `inn` must be a person's (12 digits).
    pub fn sole_trader(inn: Inn, ogrnip: Ogrnip) -> Result<Self, FieldError> {
        if inn.kind() != InnKind::Person {
            return Err(FieldError::new(
                "inn",
                "inn_not_personal",
                "ИНН индивидуального предпринимателя состоит из 12 цифр",
            ));
        }
        Ok(Self::SoleTrader { inn, ogrnip })
    }

    pub fn kind(&self) -> OrganisationKind {
        match self {
            Self::LegalEntity { .. } => OrganisationKind::LegalEntity,
            Self::SoleTrader { .. } => OrganisationKind::SoleTrader,
        }
    }

    pub fn inn(&self) -> &Inn {
        match self {
            Self::LegalEntity { inn, .. } | Self::SoleTrader { inn, .. } => inn,
        }
    }

    pub fn kpp(&self) -> Option<&Kpp> {
        match self {
            Self::LegalEntity { kpp, .. } => Some(kpp),
            Self::SoleTrader { .. } => None,
        }
    }

    /// The OGRN or OGRNIP.
    pub fn registration_number(&self) -> &str {
        match self {
            Self::LegalEntity { ogrn, .. } => ogrn.as_str(),
            Self::SoleTrader { ogrnip, .. } => ogrnip.as_str(),
        }
    }

    /// What makes it one organisation: INN and KPP of a legal entity (a company's
    /// branches share the INN and differ by KPP), the INN of a sole trader.
    pub fn unique_key(&self) -> String {
        match self {
            Self::LegalEntity { inn, kpp, .. } => format!("{}#{}", inn.as_str(), kpp.as_str()),
            Self::SoleTrader { inn, .. } => inn.as_str().to_string(),
        }
    }

    /// The payer identifier billers name it by in a charge: INN and KPP of a legal
    /// entity, the INN of a sole trader (whose charges name the person's INN).
    pub fn payer(&self) -> Payer {
        match self {
            Self::LegalEntity { inn, kpp, .. } => Payer {
                kind: PayerKind::InnKpp,
                value: format!("{}/{}", inn.as_str(), kpp.as_str()),
            },
            Self::SoleTrader { inn, .. } => Payer {
                kind: PayerKind::Inn,
                value: inn.as_str().to_string(),
            },
        }
    }
}

/// A member's role in an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrgRole {
    Owner,
    Accountant,
    Viewer,
}

/// Something a member may do for an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgAction {
    /// See the organisation, its bills and its members.
    See,
    /// Pay bills; keep payment methods, templates, autopays.
    Pay,
    /// Invite, change roles, remove members.
    ManageMembers,
    /// Read the audit log.
    ReadAudit,
}

impl OrgRole {
    pub const ALL: [OrgRole; 3] = [Self::Owner, Self::Accountant, Self::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Accountant => "accountant",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    "invalid_value",
                    "Укажите роль: owner, accountant или viewer",
                )
            })
    }

    /// What each role may do: the one place it is decided. An owner everything; an
    /// accountant sees and pays; a viewer only sees.
    pub fn may(self, action: OrgAction) -> bool {
        match action {
            OrgAction::See => true,
            OrgAction::Pay => matches!(self, Self::Owner | Self::Accountant),
            OrgAction::ManageMembers | OrgAction::ReadAudit => self == Self::Owner,
        }
    }
}

impl Serialize for OrgRole {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OrgRole {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        OrgRole::parse("role", &raw).map_err(|_| serde::de::Error::custom("unknown role"))
    }
}

/// Whose a thing is (a saved method, a template, an autopay, a payment): a citizen's or
/// an organisation's. Each owner keeps its things under its own partition key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    Citizen(AccountId),
    Organisation(OrganisationId),
}

impl Owner {
    /// The prefix of the partition key an owner's things are kept under.
    pub fn key_prefix(&self) -> &'static str {
        match self {
            Self::Citizen(_) => "ACCOUNT#",
            Self::Organisation(_) => "ORG#",
        }
    }

    /// The partition key of the owner's things.
    pub fn partition_key(&self) -> String {
        match self {
            Self::Citizen(id) => format!("{}{id}", self.key_prefix()),
            Self::Organisation(id) => format!("{}{id}", self.key_prefix()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads each `(raw, expected)` in `field`: the digits it is read as, or the code it
    /// is refused with. Both registration numbers are tested from such a table.
    fn assert_reads<T>(
        field: &str,
        parse: fn(&str, &str) -> Result<T, FieldError>,
        as_str: fn(&T) -> &str,
        cases: &[(&str, Result<&str, &str>)],
    ) {
        for (raw, expected) in cases {
            let read = parse(field, raw);
            let read = read.as_ref().map(as_str).map_err(|e| e.code);
            assert_eq!(read, *expected, "{raw:?}");
        }
    }

    #[test]
    fn ogrn_follows_the_reference() {
        assert_reads(
            "ogrn",
            Ogrn::parse,
            Ogrn::as_str,
            &[
                ("1027700132195", Ok("1027700132195")),
                (" 1027700 132195 ", Ok("1027700132195")),
                ("1027700132194", Err("ogrn_checksum")),
                ("102770013219", Err("ogrn_format")),
                ("10277001321955", Err("ogrn_format")),
                ("10277001321a5", Err("ogrn_format")),
                (" ", Err("required")),
            ],
        );
    }

    #[test]
    fn ogrnip_follows_the_reference() {
        assert_reads(
            "ogrnip",
            Ogrnip::parse,
            Ogrnip::as_str,
            &[
                ("304500116000157", Ok("304500116000157")),
                ("304500116000158", Err("ogrnip_checksum")),
                ("1027700132195", Err("ogrnip_format")),
            ],
        );
    }

    #[test]
    fn identities_take_the_inn_of_their_kind() {
        let company = Inn::parse("inn", "7707083893").unwrap();
        let person = Inn::parse("inn", "500100732259").unwrap();
        let kpp = Kpp::parse("kpp", "773601001").unwrap();
        let ogrn = Ogrn::parse("ogrn", "1027700132195").unwrap();
        let ogrnip = Ogrnip::parse("ogrnip", "304500116000157").unwrap();
        let legal =
            OrganisationIdentity::legal_entity(company.clone(), kpp.clone(), ogrn.clone()).unwrap();
        assert_eq!(legal.unique_key(), "7707083893#773601001");
        assert_eq!(legal.kind(), OrganisationKind::LegalEntity);
        let trader = OrganisationIdentity::sole_trader(person.clone(), ogrnip.clone()).unwrap();
        assert_eq!(trader.unique_key(), "500100732259");
        assert_eq!(trader.kpp(), None);
        assert_eq!(
            OrganisationIdentity::legal_entity(person, kpp, ogrn)
                .unwrap_err()
                .code,
            "inn_not_organisation"
        );
        assert_eq!(
            OrganisationIdentity::sole_trader(company, ogrnip)
                .unwrap_err()
                .code,
            "inn_not_personal"
        );
    }

    #[test]
    fn roles_allow_what_the_cabinet_promises() {
        use OrgAction::*;
        assert!([See, Pay, ManageMembers, ReadAudit]
            .iter()
            .all(|a| OrgRole::Owner.may(*a)));
        assert!(OrgRole::Accountant.may(See) && OrgRole::Accountant.may(Pay));
        assert!(!OrgRole::Accountant.may(ManageMembers) && !OrgRole::Accountant.may(ReadAudit));
        assert!(OrgRole::Viewer.may(See));
        assert!(!OrgRole::Viewer.may(Pay) && !OrgRole::Viewer.may(ManageMembers));
        for role in OrgRole::ALL {
            assert_eq!(OrgRole::parse("role", role.as_str()).unwrap(), role);
        }
        assert!(OrgRole::parse("role", "admin").is_err());
    }

    #[test]
    fn owners_keep_their_things_under_their_own_keys() {
        let citizen = Owner::Citizen(AccountId::from("acc-1"));
        let org = Owner::Organisation(OrganisationId::from("org_1"));
        assert_eq!(citizen.partition_key(), "ACCOUNT#acc-1");
        assert_eq!(org.partition_key(), "ORG#org_1");
    }
}
