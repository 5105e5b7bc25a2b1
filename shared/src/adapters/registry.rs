//! Federal registries. The shipped adapter is a sandbox with documented test values
//! (docs/testing.md), as payment providers ship test cards: a real SMEV adapter
//! implements the same [`Registry`] trait.

use std::time::Duration;

use crate::services::profile::{
    Check, Registry, RegistryAnswer, RegistryRequest, RegistryUnavailable,
};

/// Answers by the document number:
///
/// | document starts with | answer |
/// |---|---|
/// | `999` | rejected: the data do not match |
/// | `998` | rejected: not found in the registry |
/// | `997` | no answer on the first two attempts, then verified |
/// | `996` | never answers |
/// | anything else | verified |
///
/// For a passport the number is the 6-digit number without the series.
pub struct SandboxRegistry {
    delay: Duration,
}

impl SandboxRegistry {
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

fn source(check: Check) -> &'static str {
    match check {
        Check::Snils => "pension_fund_sandbox",
        Check::Passport => "interior_ministry_sandbox",
        Check::Inn => "tax_service_sandbox",
    }
}

/// The part of the document the sandbox rules look at.
fn number(request: &RegistryRequest) -> &str {
    match request.check {
        // Series (4 digits) then number (6 digits).
        Check::Passport => request.document.get(4..).unwrap_or_default(),
        Check::Snils | Check::Inn => &request.document,
    }
}

impl Registry for SandboxRegistry {
    async fn check(
        &self,
        request: &RegistryRequest,
        attempt: u32,
    ) -> Result<RegistryAnswer, RegistryUnavailable> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let source = source(request.check);
        let number = number(request);
        if number.starts_with("999") {
            Ok(RegistryAnswer::Rejected {
                source,
                reason: "данные не совпадают с данными реестра".into(),
            })
        } else if number.starts_with("998") {
            Ok(RegistryAnswer::Rejected {
                source,
                reason: "документ не найден в реестре".into(),
            })
        } else if (number.starts_with("997") && attempt <= 2) || number.starts_with("996") {
            Err(RegistryUnavailable(format!("{source}: timed out")))
        } else {
            Ok(RegistryAnswer::Verified { source })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(check: Check, document: &str) -> RegistryRequest {
        RegistryRequest {
            check,
            document: document.into(),
            last_name: "Иванов".into(),
            first_name: "Пётр".into(),
            middle_name: None,
            birth_date: Some("1990-05-17".into()),
            gender: Some("male".into()),
        }
    }

    #[tokio::test]
    async fn test_values_answer_as_documented() {
        let registry = SandboxRegistry::new(Duration::ZERO);
        let verified = registry
            .check(&request(Check::Snils, "11223344595"), 1)
            .await;
        assert!(matches!(verified, Ok(RegistryAnswer::Verified { .. })));
        let mismatch = registry
            .check(&request(Check::Passport, "4510999001"), 1)
            .await;
        assert!(matches!(mismatch, Ok(RegistryAnswer::Rejected { .. })));
        let series_only = registry
            .check(&request(Check::Passport, "9990123456"), 1)
            .await;
        assert!(
            matches!(series_only, Ok(RegistryAnswer::Verified { .. })),
            "the rules read the number, not the series"
        );
        let slow = request(Check::Inn, "997123456789");
        assert!(registry.check(&slow, 1).await.is_err());
        assert!(registry.check(&slow, 2).await.is_err());
        assert!(matches!(
            registry.check(&slow, 3).await,
            Ok(RegistryAnswer::Verified { .. })
        ));
        assert!(registry
            .check(&request(Check::Snils, "99612345600"), 9)
            .await
            .is_err());
    }
}
