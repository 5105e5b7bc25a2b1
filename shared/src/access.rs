//! The access matrix: what a citizen's account may do at each level and with each
//! credential strength (docs/architecture/levels-and-confirmation.md#the-access-matrix).
//!
//! Decided in one place. The authorizer looks up the route of every citizen's request
//! here ([`requirement_of_route`]) and refuses it before any function runs; the one rule
//! that depends on a body rather than a route, changing verified data, is asked of
//! [`Capability::VerifiedData`] by the profile service. Operators' and billers' routes
//! are not the matrix's: the authorizer does not put them through it, and they refuse
//! citizens themselves.

use crate::domain::{AccountLevel, CredentialStrength};
use crate::error::AppError;

/// What a citizen can do, in the groups the matrix grants by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// The account itself: contacts, password, sign-in methods, sessions, the security
    /// log, the inbox, deletion, and the steps that confirm the identity.
    OwnAccount,
    /// The profile, its documents and vehicles, and reading the children on it: how a
    /// simplified account climbs.
    Profile,
    /// Reference information: bills and fines found, saved bills, the catalogue of
    /// payees, notice settings.
    Reference,
    /// One's own payments, receipts, saved cards, templates and autopayments: reading
    /// them, and removing a card, a template or an autopayment (stopping money leaving is
    /// never refused).
    PaymentRecords,
    /// Paying, and setting up what pays: a card, a template, an autopayment.
    Payments,
    /// Adding a child or changing a child's record: another person's data.
    Children,
    /// Being in an organisation: reading it, its members and audit, joining by an
    /// invitation, leaving; and anything done for it (`X-Organisation-Id`).
    OrganisationMembership,
    /// Registering an organisation, inviting members, changing their roles.
    OrganisationAdministration,
    /// Changing data the registries verified and the level rests on (name, birth date,
    /// gender, SNILS, passport). Asked by the profile service, not by a route.
    VerifiedData,
}

/// The least a session must have for a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    pub level: AccountLevel,
    pub strength: CredentialStrength,
}

impl Requirement {
    const fn new(level: AccountLevel, strength: CredentialStrength) -> Self {
        Self { level, strength }
    }

    /// The stricter of two requirements, axis by axis.
    pub fn and(self, other: Self) -> Self {
        Self {
            level: self.level.max(other.level),
            strength: self.strength.max(other.strength),
        }
    }

    /// Whether a session of `standing` meets it; the refusal names what is missing, the
    /// level first (a second factor would not help a level that is too low).
    pub fn check(self, standing: Standing) -> Result<(), Refusal> {
        if standing.level < self.level {
            Err(Refusal::Level(self.level))
        } else if standing.strength < self.strength {
            Err(Refusal::SecondFactor)
        } else {
            Ok(())
        }
    }
}

/// What a session has: its account's level and its credentials' strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub level: AccountLevel,
    pub strength: CredentialStrength,
}

/// Why the matrix refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The account's level is below this one.
    Level(AccountLevel),
    /// The session proved no second factor.
    SecondFactor,
}

impl Refusal {
    /// The problem code a refused request is answered with (and the authorizer's mark).
    pub const fn code(self) -> &'static str {
        match self {
            Self::Level(AccountLevel::Confirmed) => "confirmed_level_required",
            Self::Level(_) => "standard_level_required",
            Self::SecondFactor => "second_factor_required",
        }
    }

    /// The refusal of problem code `code`; `None` for any other string.
    pub fn parse(code: &str) -> Option<Self> {
        [
            Self::Level(AccountLevel::Standard),
            Self::Level(AccountLevel::Confirmed),
            Self::SecondFactor,
        ]
        .into_iter()
        .find(|r| r.code() == code)
    }
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Level(level) => AppError::LevelRequired(level),
            Refusal::SecondFactor => AppError::SecondFactorRequired,
        }
    }
}

use AccountLevel::{Confirmed, Simplified, Standard};
use CredentialStrength::{Password, SecondFactor};

/// The matrix: the defaults follow the portals (a simplified account gets reference
/// information, a standard one most services and payments, a confirmed one everything,
/// organisations included), and a second factor guards what would hurt most in a
/// thief's hands with only the password.
pub const fn requirement(capability: Capability) -> Requirement {
    match capability {
        Capability::OwnAccount
        | Capability::Profile
        | Capability::Reference
        | Capability::PaymentRecords => Requirement::new(Simplified, Password),
        Capability::Payments | Capability::Children => Requirement::new(Standard, Password),
        Capability::OrganisationMembership => Requirement::new(Confirmed, Password),
        Capability::OrganisationAdministration => Requirement::new(Confirmed, SecondFactor),
        // Any level: the level rests on these data, so requiring one would lock out a
        // citizen whose passport was replaced. The second factor keeps a password thief
        // from putting another person's documents on a confirmed account.
        Capability::VerifiedData => Requirement::new(Simplified, SecondFactor),
    }
}

/// Every route a citizen's session may reach, by API Gateway's route key, and what it
/// is. A route missing here is refused as strictly as the matrix can (a test checks the
/// template against this list).
pub const CITIZEN_ROUTES: &[(&str, Capability)] = {
    use Capability::*;
    &[
        ("GET /v1/account", OwnAccount),
        ("DELETE /v1/account", OwnAccount),
        ("POST /v1/account/backup-codes", OwnAccount),
        ("PUT /v1/account/email", OwnAccount),
        ("PUT /v1/account/phone", OwnAccount),
        ("PUT /v1/account/password", OwnAccount),
        ("PUT /v1/account/security-question", OwnAccount),
        ("PUT /v1/account/security-settings", OwnAccount),
        ("GET /v1/account/factors", OwnAccount),
        ("POST /v1/account/factors/app", OwnAccount),
        ("POST /v1/account/factors/passkey", OwnAccount),
        ("POST /v1/account/factors/passkey/options", OwnAccount),
        ("POST /v1/account/factors/sms", OwnAccount),
        ("DELETE /v1/account/factors/sms", OwnAccount),
        ("PATCH /v1/account/factors/{id}", OwnAccount),
        ("DELETE /v1/account/factors/{id}", OwnAccount),
        ("POST /v1/account/factors/{id}/confirm", OwnAccount),
        ("POST /v1/account/confirmation-letters", OwnAccount),
        ("POST /v1/account/confirmation-letters/confirm", OwnAccount),
        ("POST /v1/account/signature-challenges", OwnAccount),
        ("POST /v1/account/signature-confirmations", OwnAccount),
        ("POST /v1/account/bank-id-challenges", OwnAccount),
        ("POST /v1/account/bank-id-confirmations", OwnAccount),
        ("GET /v1/sessions", OwnAccount),
        ("DELETE /v1/sessions/current", OwnAccount),
        ("DELETE /v1/sessions/{id}", OwnAccount),
        ("POST /v1/sessions/current/step-up", OwnAccount),
        ("POST /v1/sessions/current/step-up/verify", OwnAccount),
        ("GET /v1/security-events", OwnAccount),
        ("GET /v1/inbox", OwnAccount),
        ("GET /v1/inbox/unread-count", OwnAccount),
        ("POST /v1/inbox/{message_id}/read", OwnAccount),
        ("DELETE /v1/inbox/{message_id}", OwnAccount),
        ("GET /v1/profile", Profile),
        ("PATCH /v1/profile", Profile),
        ("GET /v1/profile/vehicles", Profile),
        ("POST /v1/profile/vehicles", Profile),
        ("GET /v1/profile/vehicles/{id}", Profile),
        ("PATCH /v1/profile/vehicles/{id}", Profile),
        ("DELETE /v1/profile/vehicles/{id}", Profile),
        ("GET /v1/profile/children", Profile),
        ("GET /v1/profile/children/{id}", Profile),
        ("DELETE /v1/profile/children/{id}", Profile),
        ("POST /v1/profile/children", Children),
        ("PATCH /v1/profile/children/{id}", Children),
        ("GET /v1/bills", Reference),
        ("GET /v1/bills/{uin}", Reference),
        ("POST /v1/bills/saved", Reference),
        ("DELETE /v1/bills/saved/{uin}", Reference),
        ("GET /v1/fines", Reference),
        ("GET /v1/notification-settings", Reference),
        ("PUT /v1/notification-settings", Reference),
        ("GET /v1/payees", Reference),
        ("GET /v1/payees/{id}", Reference),
        ("GET /v1/payments", PaymentRecords),
        ("GET /v1/payments/{id}", PaymentRecords),
        ("GET /v1/payments/{id}/receipt", PaymentRecords),
        ("GET /v1/payment-methods", PaymentRecords),
        ("DELETE /v1/payment-methods/{id}", PaymentRecords),
        ("GET /v1/payment-templates", PaymentRecords),
        ("DELETE /v1/payment-templates/{id}", PaymentRecords),
        ("GET /v1/autopays", PaymentRecords),
        ("GET /v1/autopays/{id}", PaymentRecords),
        ("DELETE /v1/autopays/{id}", PaymentRecords),
        ("POST /v1/payments", Payments),
        ("POST /v1/payments/{id}/confirm", Payments),
        ("POST /v1/payees/{id}/payments", Payments),
        ("POST /v1/payment-methods", Payments),
        ("POST /v1/payment-templates", Payments),
        ("POST /v1/payment-templates/{id}/payments", Payments),
        ("POST /v1/autopays", Payments),
        // A pause or a lower limit must stay possible; widening needs a step-up anyway.
        ("PATCH /v1/autopays/{id}", PaymentRecords),
        ("GET /v1/organisations", OrganisationMembership),
        ("GET /v1/organisations/{id}", OrganisationMembership),
        ("GET /v1/organisations/{id}/members", OrganisationMembership),
        ("GET /v1/organisations/{id}/audit", OrganisationMembership),
        (
            "POST /v1/organisation-invitations/accept",
            OrganisationMembership,
        ),
        (
            "DELETE /v1/organisations/{id}/members/{account_id}",
            OrganisationMembership,
        ),
        ("POST /v1/organisations", OrganisationAdministration),
        (
            "POST /v1/organisations/{id}/invitations",
            OrganisationAdministration,
        ),
        (
            "PATCH /v1/organisations/{id}/members/{account_id}",
            OrganisationAdministration,
        ),
    ]
};

/// The capability of route `route_key` (`"POST /v1/payments"`), if a citizen may reach it.
pub fn capability_of_route(route_key: &str) -> Option<Capability> {
    CITIZEN_ROUTES
        .iter()
        .find(|(key, _)| *key == route_key)
        .map(|(_, capability)| *capability)
}

/// Whether `route_key` is an operator's or a biller's route: the matrix has nothing to
/// say there, and the route itself answers a citizen 403 (`operator_only`,
/// `biller_only`).
pub fn for_other_principals(route_key: &str) -> bool {
    let path = route_key
        .split_once(' ')
        .map_or(route_key, |(_, path)| path);
    path.starts_with("/v1/operator/") || path.starts_with("/v1/biller/")
}

/// What a citizen's request on `route_key` needs; `for_organisation` when it names an
/// organisation (`X-Organisation-Id`), which adds what membership needs. A route the
/// matrix does not know needs the most there is: a forgotten entry fails closed.
pub fn requirement_of_route(route_key: &str, for_organisation: bool) -> Requirement {
    let route = match capability_of_route(route_key) {
        Some(capability) => requirement(capability),
        None if for_other_principals(route_key) => Requirement::new(Simplified, Password),
        None => {
            tracing::error!(route_key, "route missing from the access matrix");
            Requirement::new(Confirmed, SecondFactor)
        }
    };
    if for_organisation {
        route.and(requirement(Capability::OrganisationMembership))
    } else {
        route
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(level: AccountLevel, strength: CredentialStrength) -> Standing {
        Standing { level, strength }
    }

    #[test]
    fn payments_need_the_standard_level() {
        let pay = requirement_of_route("POST /v1/payments", false);
        assert_eq!(
            pay.check(standing(Simplified, SecondFactor)),
            Err(Refusal::Level(Standard))
        );
        assert_eq!(pay.check(standing(Standard, Password)), Ok(()));
        assert_eq!(pay.check(standing(Confirmed, Password)), Ok(()));
        // Reading and stopping are never refused: a level that dropped keeps them.
        for route in ["GET /v1/payments", "DELETE /v1/autopays/{id}"] {
            let read = requirement_of_route(route, false);
            assert_eq!(
                read.check(standing(Simplified, Password)),
                Ok(()),
                "{route}"
            );
        }
    }

    #[test]
    fn organisations_need_the_confirmed_level_and_administration_a_second_factor() {
        let register = requirement_of_route("POST /v1/organisations", false);
        assert_eq!(
            register.check(standing(Standard, SecondFactor)),
            Err(Refusal::Level(Confirmed))
        );
        assert_eq!(
            register.check(standing(Confirmed, Password)),
            Err(Refusal::SecondFactor)
        );
        assert_eq!(register.check(standing(Confirmed, SecondFactor)), Ok(()));
        let read = requirement_of_route("GET /v1/organisations/{id}", false);
        assert_eq!(read.check(standing(Confirmed, Password)), Ok(()));
    }

    #[test]
    fn acting_for_an_organisation_adds_membership() {
        let pay = requirement_of_route("POST /v1/payments", true);
        assert_eq!(
            pay.check(standing(Standard, Password)),
            Err(Refusal::Level(Confirmed))
        );
        assert_eq!(pay.check(standing(Confirmed, Password)), Ok(()));
    }

    #[test]
    fn an_unknown_route_needs_everything() {
        let unknown = requirement_of_route("POST /v1/something-new", false);
        assert_eq!(unknown, Requirement::new(Confirmed, SecondFactor));
        // Not an operator's route because it merely mentions one.
        let lookalike = requirement_of_route("POST /v1/profile/v1/operator/x", false);
        assert_eq!(lookalike, Requirement::new(Confirmed, SecondFactor));
    }

    #[test]
    fn other_principals_routes_are_left_to_the_route() {
        for route in [
            "POST /v1/operator/confirmations",
            "PUT /v1/biller/charges/{uin}",
        ] {
            assert!(for_other_principals(route), "{route}");
            let any = requirement_of_route(route, false);
            assert_eq!(
                any.check(Standing {
                    level: Simplified,
                    strength: Password
                }),
                Ok(())
            );
        }
        assert!(!for_other_principals("GET /v1/bills"));
    }

    #[test]
    fn verified_data_needs_a_second_factor_at_any_level() {
        let change = requirement(Capability::VerifiedData);
        assert_eq!(
            change.check(standing(Confirmed, Password)),
            Err(Refusal::SecondFactor)
        );
        assert_eq!(change.check(standing(Simplified, SecondFactor)), Ok(()));
    }

    #[test]
    fn refusals_round_trip_through_their_codes() {
        for refusal in [
            Refusal::Level(Standard),
            Refusal::Level(Confirmed),
            Refusal::SecondFactor,
        ] {
            assert_eq!(Refusal::parse(refusal.code()), Some(refusal));
        }
        assert_eq!(Refusal::parse("anything"), None);
    }

    #[test]
    fn every_route_is_listed_once() {
        let mut keys: Vec<&str> = CITIZEN_ROUTES.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let before = keys.len();
        keys.dedup();
        assert_eq!(before, keys.len());
    }
}
