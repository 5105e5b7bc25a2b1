//! What a biller is registered for: the UIN prefixes it may issue and the payee its
//! charges pay. A biller's key proves who is calling; the registration bounds what that
//! caller may write, so a leaked or careless key cannot write charges in another
//! biller's range or send citizens' money to another account. (A revoked biller hears of
//! no more payments: see [`crate::services::payments::deliver_payment_notice`].)

use serde::{Deserialize, Serialize};

use crate::domain::{charge_text, Payee, Uin};
use crate::domain::{Inn, Kpp};
use crate::error::{AppError, FieldError};

/// Prefixes one biller may hold.
pub const MAX_PREFIXES: usize = 20;
/// The shortest prefix: the three digits of a revenue administrator's code.
const MIN_PREFIX: usize = 3;
/// The longest prefix: a UIN of 20 digits with only its last digits left.
const MAX_PREFIX: usize = 19;

/// The leading digits of the UINs one biller issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UinPrefix(String);

impl UinPrefix {
    pub fn parse(path: &str, raw: &str) -> Result<Self, FieldError> {
        let v = raw.trim();
        if (MIN_PREFIX..=MAX_PREFIX).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(v.to_string()))
        } else {
            Err(FieldError::new(
                path,
                "uin_prefix_format",
                format!("Префикс УИН: от {MIN_PREFIX} до {MAX_PREFIX} цифр"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn covers(&self, uin: &Uin) -> bool {
        uin.as_str().starts_with(&self.0)
    }
}

/// A Bank of Russia BIC: 9 digits; `04…` for banks, `00…` for treasury bodies.
fn bic(path: &str, raw: &str) -> Result<String, FieldError> {
    let v = raw.trim();
    if v.len() == 9
        && v.bytes().all(|b| b.is_ascii_digit())
        && (v.starts_with("04") || v.starts_with("00"))
    {
        Ok(v.to_string())
    } else {
        Err(FieldError::new(
            path,
            "bic_format",
            "БИК: 9 цифр, начинается с 04 или 00",
        ))
    }
}

/// Whether an account's control key (its 9th digit) agrees with the BIC, by the Bank of
/// Russia's rule: the three digits of the bank's conditional number, then the 20 of the
/// account, weighed 7, 1, 3 repeating; the sum of the last digits of the products ends
/// in 0. The conditional number is the BIC's last three digits, or `0` and its 5th and
/// 6th digits for a correspondent account (`301…`) or an account at a division of the
/// Bank of Russia (BIC ending in 000–002).
pub fn account_key_matches(bic: &str, account: &str) -> bool {
    if bic.len() != 9 || account.len() != 20 {
        return false;
    }
    let conditional = if account.starts_with("301") || matches!(&bic[6..], "000" | "001" | "002") {
        format!("0{}", &bic[4..6])
    } else {
        bic[6..].to_string()
    };
    let sum: u32 = conditional
        .bytes()
        .chain(account.bytes())
        .zip([7u32, 1, 3].into_iter().cycle())
        .map(|(b, w)| (u32::from(b - b'0') * w) % 10)
        .sum();
    sum.is_multiple_of(10)
}

/// A 20-digit account whose key agrees with the BIC. Treasury bodies' BICs (`00…`) are
/// checked for format only: how their accounts' keys are formed is not confirmed here.
fn account(path: &str, raw: &str, bic: Option<&str>) -> Result<String, FieldError> {
    let v = raw.trim();
    if v.len() != 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new(path, "account_format", "Счёт: 20 цифр"));
    }
    match bic {
        Some(b) if b.starts_with("04") && !account_key_matches(b, v) => Err(FieldError::new(
            path,
            "account_key_mismatch",
            "Номер счёта не сходится с БИК (контрольный ключ)",
        )),
        _ => Ok(v.to_string()),
    }
}

/// What an administrator registers a biller with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub uin_prefixes: Vec<UinPrefix>,
    pub payee: Payee,
}

/// The raw values of a registration, as the admin command takes them.
#[derive(Debug, Clone, Default)]
pub struct RegistrationInput<'a> {
    /// Comma-separated.
    pub uin_prefixes: &'a str,
    pub payee_name: &'a str,
    pub payee_inn: &'a str,
    pub payee_kpp: &'a str,
    pub payee_bic: &'a str,
    pub payee_account: &'a str,
}

impl Registration {
    /// Checks every value; all problems are reported at once.
    pub fn parse(input: &RegistrationInput<'_>) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let mut prefixes: Vec<UinPrefix> = Vec::new();
        for raw in input
            .uin_prefixes
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            match UinPrefix::parse("uin_prefixes", raw) {
                Ok(p) if !prefixes.contains(&p) => prefixes.push(p),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
        if prefixes.is_empty() && errors.is_empty() || prefixes.len() > MAX_PREFIXES {
            errors.push(FieldError::new(
                "uin_prefixes",
                "uin_prefixes_count",
                format!("От 1 до {MAX_PREFIXES} префиксов УИН через запятую"),
            ));
        }
        let mut keep = |r: Result<String, FieldError>| r.map_err(|e| errors.push(e)).ok();
        let name = keep(charge_text("payee/name", input.payee_name, 160));
        let inn = keep(Inn::parse("payee/inn", input.payee_inn).map(|v| v.as_str().to_string()));
        let kpp = keep(Kpp::parse("payee/kpp", input.payee_kpp).map(|v| v.as_str().to_string()));
        let bic = keep(bic("payee/bic", input.payee_bic));
        let account = keep(account(
            "payee/account",
            input.payee_account,
            bic.as_deref(),
        ));
        match (name, inn, kpp, bic, account) {
            (Some(name), Some(inn), Some(kpp), Some(bic), Some(account)) if errors.is_empty() => {
                Ok(Self {
                    uin_prefixes: prefixes,
                    payee: Payee {
                        name,
                        inn,
                        kpp,
                        bic,
                        account,
                    },
                })
            }
            _ => Err(AppError::Validation(errors)),
        }
    }

    /// The payee a charge under `uin` pays, if the biller may write it: the UIN under
    /// one of its prefixes, and the payee given (if any) its registered one. Where the
    /// money goes (INN, KPP, BIC, account) must be the same; the name is always the
    /// registered one, however the body spells it.
    pub fn admit(&self, uin: &Uin, given: Option<&Payee>) -> Result<Payee, AppError> {
        if !self.uin_prefixes.iter().any(|p| p.covers(uin)) {
            return Err(AppError::UinOutsideBillerRange(uin.as_str().to_string()));
        }
        let r = &self.payee;
        match given {
            Some(p)
                if (&p.inn, &p.kpp, &p.bic, &p.account) != (&r.inn, &r.kpp, &r.bic, &r.account) =>
            {
                Err(AppError::PayeeNotRegistered)
            }
            _ => Ok(r.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(prefixes: &'a str, bic: &'a str, account: &'a str) -> RegistrationInput<'a> {
        RegistrationInput {
            uin_prefixes: prefixes,
            payee_name: "ГБОУ Школа № 1234",
            payee_inn: "7707083893",
            payee_kpp: "770701001",
            payee_bic: bic,
            payee_account: account,
        }
    }

    fn codes(e: AppError) -> Vec<&'static str> {
        match e {
            AppError::Validation(errors) => errors.iter().map(|e| e.code).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn account_keys() {
        // A bank's correspondent account and a settlement account.
        assert!(account_key_matches("044525225", "30101810400000000225"));
        assert!(account_key_matches("823397286", "50286516400000008106"));
        assert!(account_key_matches("044525225", "40702810200000012345"));
        assert!(!account_key_matches("044525225", "40702810300000012345"));
        // At a division of the Bank of Russia.
        assert!(account_key_matches("044525000", "03234643350000007300"));
        assert!(!account_key_matches("044525000", "03234643450000007300"));
    }

    #[test]
    fn a_registration_is_checked_value_by_value() {
        let ok = Registration::parse(&input(
            "188, 0355431,188",
            "044525000",
            "03234643350000007300",
        ))
        .unwrap();
        assert_eq!(ok.uin_prefixes.len(), 2, "duplicates dropped");
        assert_eq!(
            codes(
                Registration::parse(&input("18", "044525000", "03234643350000007300")).unwrap_err()
            ),
            vec!["uin_prefix_format"]
        );
        assert_eq!(
            codes(
                Registration::parse(&input("", "044525000", "03234643350000007300")).unwrap_err()
            ),
            vec!["uin_prefixes_count"]
        );
        assert_eq!(
            codes(
                Registration::parse(&input("188", "044525000", "03234643450000007300"))
                    .unwrap_err()
            ),
            vec!["account_key_mismatch"]
        );
        assert_eq!(
            codes(Registration::parse(&input("188", "14452500", "1")).unwrap_err()),
            vec!["bic_format", "account_format"]
        );
        let mut bad_inn = input("188", "044525000", "03234643350000007300");
        bad_inn.payee_inn = "7707083894";
        bad_inn.payee_name = "Школа\u{202e}";
        let found = codes(Registration::parse(&bad_inn).unwrap_err());
        assert_eq!(found.len(), 2, "{found:?}");
        // Treasury BICs: format only.
        assert!(Registration::parse(&input("188", "004525988", "03100643000000017300")).is_ok());
    }

    #[test]
    fn a_charge_is_admitted_under_a_prefix_to_the_registered_payee() {
        let r =
            Registration::parse(&input("0355431", "044525000", "03234643350000007300")).unwrap();
        let uin = |raw: &str| Uin::parse("uin", raw).unwrap();
        assert_eq!(
            r.admit(&uin("03554310101220400005"), None).unwrap(),
            r.payee
        );
        assert_eq!(
            r.admit(&uin("03554310101220400005"), Some(&r.payee))
                .unwrap(),
            r.payee
        );
        assert!(matches!(
            r.admit(&uin("18810177220000000015"), None),
            Err(AppError::UinOutsideBillerRange(_))
        ));
        let mut renamed = r.payee.clone();
        renamed.name = "Школа".into();
        assert_eq!(
            r.admit(&uin("03554310101220400005"), Some(&renamed))
                .unwrap(),
            r.payee,
            "the registered name is kept"
        );
        let mut other = r.payee.clone();
        other.account = "40702810200000012345".into();
        assert!(matches!(
            r.admit(&uin("03554310101220400005"), Some(&other)),
            Err(AppError::PayeeNotRegistered)
        ));
    }
}
