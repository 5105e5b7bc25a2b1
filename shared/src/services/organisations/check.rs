//! The business-register check of a pending organisation, run by the verification
//! worker: the register (EGRUL for companies, EGRIP for sole traders) must know the
//! organisation as active, under the registration number given, and name the applicant
//! as its head (or as the trader). The applicant is matched by the verified personal
//! INN of the profile, which is what both registers record for a person.

use time::OffsetDateTime;

use super::{refusal, Decision, OrgStatus, OrganisationCheck, OrganisationStore};
use crate::domain::{Inn, OrganisationIdentity};
use crate::error::AppError;
use crate::services::profile::{ProfileStore, RegistryUnavailable, VerificationJob};

/// A message of the verification queue: a document check of a profile, or (told apart
/// by its `organisation_id`) a business-register check of an organisation.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum VerificationMessage {
    Organisation(OrganisationCheck),
    Document(VerificationJob),
}

/// What the register holds for an INN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusinessRecord {
    Active {
        /// The full name registered.
        name: String,
        /// The OGRN or OGRNIP.
        registration_number: String,
        /// The personal INN of the head (a company's director) or of the trader.
        head_inn: String,
    },
    Liquidated,
    NotFound,
}

/// The business registers (EGRUL, EGRIP). `attempt` counts the deliveries of the check
/// (from 1), for a sandbox that answers late.
#[trait_variant::make(Send)]
pub trait BusinessRegistry {
    async fn lookup(
        &self,
        identity: &OrganisationIdentity,
        attempt: u32,
    ) -> Result<BusinessRecord, RegistryUnavailable>;
}

/// Deliveries after which a register that never answered refuses the registration
/// (the applicant may ask again; the INN is free).
pub const REGISTRY_ATTEMPTS: u32 = 5;

/// What became of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    Registered,
    Refused(&'static str),
    /// Nothing to do: gone or decided already.
    Skipped(&'static str),
}

/// The register's answer for `applicant_inn`: registered, or refused with a reason.
pub fn decide(
    identity: &OrganisationIdentity,
    record: &BusinessRecord,
    applicant_inn: Option<&str>,
) -> Decision {
    let refused = |reason| Decision::Refused { reason };
    match record {
        BusinessRecord::NotFound => refused(refusal::NOT_FOUND),
        BusinessRecord::Liquidated => refused(refusal::LIQUIDATED),
        BusinessRecord::Active {
            registration_number,
            ..
        } if registration_number != identity.registration_number() => {
            refused(refusal::NUMBER_MISMATCH)
        }
        BusinessRecord::Active { head_inn, .. } if applicant_inn != Some(head_inn.as_str()) => {
            refused(refusal::NOT_THE_HEAD)
        }
        BusinessRecord::Active { name, .. } => Decision::Registered { name: name.clone() },
    }
}

/// Runs one check. `Err` asks for it again later (a register or store that did not
/// answer).
pub async fn run_check<S, R>(
    store: &S,
    registry: &R,
    check: &OrganisationCheck,
    attempt: u32,
    now: OffsetDateTime,
) -> Result<CheckOutcome, AppError>
where
    S: OrganisationStore + ProfileStore + Sync,
    R: BusinessRegistry + Sync,
{
    let Some(org) = store.organisation(&check.organisation_id).await? else {
        return Ok(CheckOutcome::Skipped("organisation gone"));
    };
    if org.status != OrgStatus::Pending {
        return Ok(CheckOutcome::Skipped("already decided"));
    }
    let decision = match registry.lookup(&org.identity, attempt).await {
        Ok(record) => {
            // The INN the applicant's profile holds verified now.
            let applicant_inn = store
                .load_profile(&org.applicant)
                .await?
                .and_then(|(_, stored)| {
                    let profile = stored.profile;
                    profile
                        .is_verified("inn")
                        .then_some(profile.documents.inn)
                        .flatten()
                })
                .and_then(|raw| Inn::parse_personal("inn", &raw).ok());
            decide(
                &org.identity,
                &record,
                applicant_inn.as_ref().map(Inn::as_str),
            )
        }
        Err(e) if attempt < REGISTRY_ATTEMPTS => {
            return Err(AppError::StoreUnavailable(e.to_string()));
        }
        Err(_) => Decision::Refused {
            reason: refusal::UNAVAILABLE,
        },
    };
    let audit = decision.audit(now.unix_timestamp());
    if !store.decide(&org, &decision, &audit).await? {
        return Ok(CheckOutcome::Skipped("already decided"));
    }
    let registered = matches!(decision, Decision::Registered { .. });
    tracing::info!(organisation_id = %org.id, registered, "organisation checked");
    Ok(match decision {
        Decision::Registered { .. } => CheckOutcome::Registered,
        Decision::Refused { reason } => CheckOutcome::Refused(reason),
    })
}
