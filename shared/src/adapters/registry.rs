//! Federal registries. The shipped adapter is a sandbox with documented test values
//! (docs/testing.md), as payment providers ship test cards: a real SMEV adapter
//! implements the same [`Registry`] trait.

use std::time::Duration;

use crate::services::profile::{
    BirthRecord, Check, CivilRegistry, Registry, RegistryAnswer, RegistryRequest,
    RegistryUnavailable,
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
/// For a passport the number is the 6-digit number without the series, for an
/// international passport the 7-digit number without the series.
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
        Check::Passport | Check::InternationalPassport => "interior_ministry_sandbox",
        Check::Inn => "tax_service_sandbox",
        Check::BirthRecord => "civil_registry_sandbox",
    }
}

/// The part of the document the sandbox rules look at.
fn number(request: &RegistryRequest) -> &str {
    match request.check {
        // Series (4 digits) then number (6 digits).
        Check::Passport => request.document.get(4..).unwrap_or_default(),
        // Series (2 digits) then number (7 digits).
        Check::InternationalPassport => request.document.get(2..).unwrap_or_default(),
        Check::Snils | Check::Inn | Check::BirthRecord => &request.document,
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

/// A SNILS of the nine-digit `number`, with its check digits: how the sandbox writes the
/// SNILS of a birth record, and how tests write the documented test values.
pub fn snils_of(number: &str) -> String {
    let sum: u32 = number
        .bytes()
        .zip((1..=9).rev())
        .map(|(b, w)| u32::from(b.saturating_sub(b'0')) * w)
        .sum();
    let check = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => (s % 101) % 100,
    };
    format!("{number}{check:02}")
}

/// Birth records by the certificate's six-digit number `PPPPPC` (`PPPPP` stands for the
/// parents, so that siblings share them):
///
/// | number starts with | answer |
/// |---|---|
/// | `998` | no such record |
/// | `997` | no answer on the first two attempts, then as below |
/// | `996` | never answers |
/// | anything else | mother: SNILS `77PPPPP01`, father: SNILS `77PPPPP02`, child: SNILS `77PPPPPC3` (each with its check digits) |
impl CivilRegistry for SandboxRegistry {
    async fn birth_record(
        &self,
        certificate: &str,
        attempt: u32,
    ) -> Result<Option<BirthRecord>, RegistryUnavailable> {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        // Canonical `IV-МЮ 123456`: the number follows the last space.
        let number = certificate.rsplit(' ').next().unwrap_or_default();
        if (number.starts_with("997") && attempt <= 2) || number.starts_with("996") {
            return Err(RegistryUnavailable(
                "civil_registry_sandbox: timed out".into(),
            ));
        }
        if number.starts_with("998") || number.len() != 6 {
            return Ok(None);
        }
        let parents = number.get(..5).unwrap_or_default();
        Ok(Some(BirthRecord {
            parents_snils: vec![
                snils_of(&format!("77{parents}01")),
                snils_of(&format!("77{parents}02")),
            ],
            child_snils: Some(snils_of(&format!("77{number}3"))),
        }))
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
    async fn birth_records_answer_as_documented() {
        let registry = SandboxRegistry::new(Duration::ZERO);
        let record = registry.birth_record("IV-МЮ 410022", 1).await;
        let Ok(Some(record)) = record else {
            panic!("no record: {record:?}");
        };
        assert_eq!(record.parents_snils, ["77410020159", "77410020260"]);
        assert_eq!(record.child_snils.as_deref(), Some("77410022365"));
        assert!(matches!(
            registry.birth_record("I-АБ 998001", 1).await,
            Ok(None)
        ));
        assert!(registry.birth_record("I-АБ 997001", 2).await.is_err());
        assert!(matches!(
            registry.birth_record("I-АБ 997001", 3).await,
            Ok(Some(_))
        ));
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
        let foreign_trip = registry
            .check(&request(Check::InternationalPassport, "759991234"), 1)
            .await;
        assert!(matches!(
            foreign_trip,
            Ok(RegistryAnswer::Rejected {
                source: "interior_ministry_sandbox",
                ..
            })
        ));
        let series_only = registry
            .check(&request(Check::InternationalPassport, "999001234"), 1)
            .await;
        assert!(matches!(series_only, Ok(RegistryAnswer::Verified { .. })));
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
