//! The level of a citizen's account and the strength of the credentials a session was
//! opened (or last stepped up) with: the two axes of the access matrix (`crate::access`).

use std::fmt;

use serde::Serialize;

/// How far the state trusts who holds the account (docs/architecture/levels-and-confirmation.md).
/// Ordered: each level can do all that the one below it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountLevel {
    /// A login and a password; nothing checked.
    Simplified,
    /// Name, birth date, gender, SNILS and passport verified by the registries.
    Standard,
    /// A standard account whose owner was also seen: at a desk, by post, by a qualified
    /// e-signature or through a bank.
    Confirmed,
}

impl AccountLevel {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Simplified => "simplified",
            Self::Standard => "standard",
            Self::Confirmed => "confirmed",
        }
    }

    /// The level stored as `raw`; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "simplified" => Some(Self::Simplified),
            "standard" => Some(Self::Standard),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

impl From<AccountLevel> for String {
    fn from(level: AccountLevel) -> Self {
        level.as_str().to_string()
    }
}

impl fmt::Display for AccountLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a session proved when it was opened or last stepped up. Ordered: a second factor
/// is at least as strong as a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStrength {
    /// The password alone (or a paper one-time password changed at the first login).
    Password,
    /// A second factor as well: a two-step login (SMS or app code, backup code, passkey),
    /// a passwordless passkey, or a step-up code in this session.
    SecondFactor,
}

impl CredentialStrength {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second_factor",
        }
    }

    /// The strength written as `raw`; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "password" => Some(Self::Password),
            "second_factor" => Some(Self::SecondFactor),
            _ => None,
        }
    }

    /// The strength, at `now`, of a session that last proved a second factor at
    /// `factor_proven_at` (`None`: never), on an account whose second factors last
    /// changed at `factors_changed_at`.
    ///
    /// A proof made since a factor was added or replaced counts only once the change is
    /// [`FACTOR_SETTLING_SECS`] old: otherwise a password alone would be enough to add a
    /// factor of one's own (a new phone, an app, a passkey) and prove it at once. A proof
    /// made before the change was made with a factor the account already had.
    pub const fn of_session(
        factor_proven_at: Option<i64>,
        factors_changed_at: Option<i64>,
        now: i64,
    ) -> Self {
        match (factor_proven_at, factors_changed_at) {
            (None, _) => Self::Password,
            (Some(_), None) => Self::SecondFactor,
            (Some(proven), Some(changed)) => {
                if proven < changed || now - changed >= FACTOR_SETTLING_SECS {
                    Self::SecondFactor
                } else {
                    Self::Password
                }
            }
        }
    }
}

/// How long a second factor added or replaced waits before a proof made with it makes a
/// session strong: 72 hours, as the factor lock after a password recovery, time for the
/// owner to hear of the change (they are told) and undo it.
pub const FACTOR_SETTLING_SECS: i64 = 72 * 3600;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_round_trip_and_are_ordered() {
        for level in [
            AccountLevel::Simplified,
            AccountLevel::Standard,
            AccountLevel::Confirmed,
        ] {
            assert_eq!(AccountLevel::parse(level.as_str()), Some(level));
        }
        assert!(AccountLevel::Simplified < AccountLevel::Standard);
        assert!(AccountLevel::Standard < AccountLevel::Confirmed);
        assert_eq!(AccountLevel::parse("Standard"), None);
        assert_eq!(AccountLevel::parse(""), None);
    }

    #[test]
    fn strength_comes_from_the_session() {
        use CredentialStrength::{Password, SecondFactor};
        let of = CredentialStrength::of_session;
        let now = 1_000_000;
        assert_eq!(of(None, None, now), Password);
        assert_eq!(of(None, Some(0), now), Password);
        assert_eq!(of(Some(0), None, now), SecondFactor);
        // Proved with a factor the account had before the change.
        assert_eq!(of(Some(now - 10), Some(now - 5), now), SecondFactor);
        // Proved since a change made a moment ago (a new phone, then a step-up to it).
        assert_eq!(of(Some(now - 5), Some(now - 10), now), Password);
        assert_eq!(of(Some(now), Some(now), now), Password);
        // Once the change has settled, any proof counts.
        let settled = now - FACTOR_SETTLING_SECS;
        assert_eq!(of(Some(now - 5), Some(settled), now), SecondFactor);
        assert_eq!(of(Some(now - 5), Some(settled + 1), now), Password);
        assert!(CredentialStrength::Password < CredentialStrength::SecondFactor);
        for s in [
            CredentialStrength::Password,
            CredentialStrength::SecondFactor,
        ] {
            assert_eq!(CredentialStrength::parse(s.as_str()), Some(s));
        }
    }
}
