//! The business registers (EGRUL for companies, EGRIP for sole traders). The shipped
//! adapter is a sandbox with documented test values (docs/testing.md), as
//! [`super::registry`] is for the registries of persons: a real SMEV adapter implements
//! the same [`BusinessRegistry`] trait.

use std::time::Duration;

use crate::domain::OrganisationIdentity;
use crate::services::organisations::{BusinessRecord, BusinessRegistry};
use crate::services::profile::RegistryUnavailable;

/// Answers by the organisation's INN (10 digits for a company, 12 for a sole trader):
///
/// | INN starts with | answer |
/// |---|---|
/// | `9999` | no such organisation |
/// | `9998` | liquidated |
/// | `9997` | no answer on the first two attempts, then as below |
/// | `9996` | never answers |
/// | anything else | active, under the registration number asked; a company's head is the person of INN [`head_inn_of`] the company's INN, a sole trader is the person of the INN itself |
pub struct SandboxBusinessRegistry {
    delay: Duration,
}

impl SandboxBusinessRegistry {
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

impl BusinessRegistry for SandboxBusinessRegistry {
    async fn lookup(
        &self,
        identity: &OrganisationIdentity,
        attempt: u32,
    ) -> Result<BusinessRecord, RegistryUnavailable> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let inn = identity.inn().as_str();
        if (inn.starts_with("9997") && attempt <= 2) || inn.starts_with("9996") {
            return Err(RegistryUnavailable(
                "business_registry_sandbox: timed out".into(),
            ));
        }
        if inn.starts_with("9999") {
            return Ok(BusinessRecord::NotFound);
        }
        if inn.starts_with("9998") {
            return Ok(BusinessRecord::Liquidated);
        }
        let (name, head_inn) = match identity {
            OrganisationIdentity::LegalEntity { .. } => {
                (format!("ООО «Песочница {inn}»"), head_inn_of(inn))
            }
            OrganisationIdentity::SoleTrader { .. } => (format!("ИП, ИНН {inn}"), inn.to_string()),
        };
        Ok(BusinessRecord::Active {
            name,
            registration_number: identity.registration_number().to_string(),
            head_inn,
        })
    }
}

/// `digits` followed by the check digit (Σ dᵢ·wᵢ) mod 11 mod 10 of the INN rules.
fn with_inn_check(digits: &str, weights: &[u32]) -> String {
    let sum: u32 = digits
        .bytes()
        .zip(weights)
        .map(|(d, w)| u32::from(d.saturating_sub(b'0')) * w)
        .sum();
    format!("{digits}{}", sum % 11 % 10)
}

/// A company's INN of the nine digits `number`, with its check digit.
pub fn organisation_inn(number: &str) -> String {
    with_inn_check(number, &[2, 4, 10, 3, 5, 9, 4, 6, 8])
}

/// A person's INN of the ten digits `number`, with its two check digits.
pub fn personal_inn(number: &str) -> String {
    let eleven = with_inn_check(number, &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]);
    with_inn_check(&eleven, &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
}

/// The INN of the head the sandbox names for the company of INN `company_inn`: the
/// person's INN whose first ten digits are `77` and the company's last eight.
pub fn head_inn_of(company_inn: &str) -> String {
    let tail = company_inn.get(2..).unwrap_or_default();
    personal_inn(&format!("77{tail}"))
}

/// `digits` followed by the check digit (number mod `m`) mod 10 of OGRN (m = 11) and
/// OGRNIP (m = 13); digits that are no number get 0.
fn with_number_check(digits: &str, m: u64) -> String {
    let check = digits.parse::<u64>().map_or(0, |n| n % m % 10);
    format!("{digits}{check}")
}

/// An OGRN of the twelve digits `number`, with its check digit.
pub fn ogrn_of(number: &str) -> String {
    with_number_check(number, 11)
}

/// An OGRNIP of the fourteen digits `number`, with its check digit.
pub fn ogrnip_of(number: &str) -> String {
    with_number_check(number, 13)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Inn, Kpp, Ogrn, Ogrnip};

    #[test]
    fn test_values_follow_the_reference() {
        assert_eq!(organisation_inn("770708389"), "7707083893");
        assert_eq!(personal_inn("5001007322"), "500100732259");
        assert_eq!(ogrn_of("102770013219"), "1027700132195");
        assert_eq!(ogrnip_of("30450011600015"), "304500116000157");
        let head = head_inn_of("7707083893");
        assert!(head.starts_with("7707083893"));
        assert!(Inn::parse_personal("inn", &head).is_ok());
    }

    fn company(inn: &str) -> OrganisationIdentity {
        OrganisationIdentity::legal_entity(
            Inn::parse("inn", inn).unwrap(),
            Kpp::parse("kpp", "773601001").unwrap(),
            Ogrn::parse("ogrn", "1027700132195").unwrap(),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn answers_as_documented() {
        let registry = SandboxBusinessRegistry::new(Duration::ZERO);
        let found = registry.lookup(&company("7707083893"), 1).await.unwrap();
        let BusinessRecord::Active {
            head_inn,
            registration_number,
            ..
        } = found
        else {
            panic!("{found:?}");
        };
        assert_eq!(head_inn, head_inn_of("7707083893"));
        assert_eq!(registration_number, "1027700132195");
        let absent = company(&organisation_inn("999900001"));
        assert_eq!(
            registry.lookup(&absent, 1).await.unwrap(),
            BusinessRecord::NotFound
        );
        let closed = company(&organisation_inn("999800001"));
        assert_eq!(
            registry.lookup(&closed, 1).await.unwrap(),
            BusinessRecord::Liquidated
        );
        let slow = company(&organisation_inn("999700001"));
        assert!(registry.lookup(&slow, 2).await.is_err());
        assert!(registry.lookup(&slow, 3).await.is_ok());
        let silent = company(&organisation_inn("999600001"));
        assert!(registry.lookup(&silent, 9).await.is_err());
        let trader = OrganisationIdentity::sole_trader(
            Inn::parse("inn", "500100732259").unwrap(),
            Ogrnip::parse("ogrnip", "304500116000157").unwrap(),
        )
        .unwrap();
        let BusinessRecord::Active { head_inn, .. } = registry.lookup(&trader, 1).await.unwrap()
        else {
            panic!("trader not found");
        };
        assert_eq!(head_inn, "500100732259");
    }
}
