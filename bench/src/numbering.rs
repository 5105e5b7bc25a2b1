//! Where each scenario of the harness numbers its citizens and documents from. The
//! scenarios of one run share one moto, and a citizen's number makes its phone, e-mail and
//! names ([`crate::identity::Citizen::new`]), a document serial its SNILS, passport, UIN
//! ... ([`crate::portal::documents`]): two scenarios must never make the same. The ranges
//! stand side by side here, and a test checks that none reaches into another.

/// The first citizen number and the first document serial of a scenario (or of one kind
/// of its citizens): the scenario's citizens are `citizens + n`, its documents and UINs
/// are made from the serials `documents + n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    pub citizens: u32,
    /// 0 for a scenario that makes no documents.
    pub documents: u64,
}

impl Numbering {
    /// A range of citizens and one of documents.
    const fn new(citizens: u32, documents: u64) -> Self {
        Self {
            citizens,
            documents,
        }
    }

    /// A range of citizens only.
    const fn citizens(citizens: u32) -> Self {
        Self::new(citizens, 0)
    }
}

// ------------------------------------------------------------------ identity

pub const ACCOUNTS: Numbering = Numbering::citizens(500_000_000);
pub const SESSIONS: Numbering = Numbering::citizens(600_000_000);
/// Logins no account has, for the sessions scenario's refusals.
pub const SESSIONS_UNKNOWN: Numbering = Numbering::citizens(650_000_000);
pub const RECOVERY: Numbering = Numbering::citizens(700_000_000);
/// Logins no account has, for the recoveries that must send nothing.
pub const RECOVERY_UNKNOWN: Numbering = Numbering::citizens(750_000_000);
pub const AUTHORIZER: Numbering = Numbering::citizens(800_000_000);

// ------------------------------------------------------------------ portal

pub const PROFILE: Numbering = Numbering::new(100_000_000, 10_000_000);
/// The warm run's; each throughput run takes the next million citizens and documents.
pub const VERIFICATION: Numbering = Numbering::new(110_000_000, 20_000_000);
pub const CONFIRMATION: Numbering = Numbering::new(120_000_000, 30_000_000);
/// The families whose bills are listed; documents and UINs.
pub const BILLS: Numbering = Numbering::new(130_000_000, 50_000_000);
/// The citizens who look bills up, a new one every few lookups.
pub const BILL_LOOKUPS: Numbering = Numbering::citizens(131_000_000);
/// The payers of the charges; their documents and the UINs.
pub const CHARGES: Numbering = Numbering::new(140_000_000, 40_000_000);
/// Two citizens a cycle; the UINs they pay.
pub const PAY: Numbering = Numbering::new(150_000_000, 60_000_000);
/// Two citizens a cycle.
pub const AUTOPAYS: Numbering = Numbering::citizens(160_000_000);
/// Both notice workers' citizens and UINs.
pub const NOTICES: Numbering = Numbering::new(170_000_000, 70_000_000);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every range, for the test that they stay apart.
    const ALL: [Numbering; 15] = [
        ACCOUNTS,
        SESSIONS,
        SESSIONS_UNKNOWN,
        RECOVERY,
        RECOVERY_UNKNOWN,
        AUTHORIZER,
        PROFILE,
        VERIFICATION,
        CONFIRMATION,
        BILLS,
        BILL_LOOKUPS,
        CHARGES,
        PAY,
        AUTOPAYS,
        NOTICES,
    ];

    /// Checks that the `starts`, sorted, lie each at least `room` above the one before.
    fn apart(mut starts: Vec<u64>, room: u64) {
        starts.sort_unstable();
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= room, "{} and {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn no_range_reaches_into_another() {
        // A scenario makes fewer than a million citizens (the verification throughput
        // runs move a million on) and fewer than ten million document serials (the
        // confirmation scenario's malformed passports start 9 million in).
        apart(
            ALL.iter().map(|n| u64::from(n.citizens)).collect(),
            1_000_000,
        );
        apart(
            ALL.iter()
                .map(|n| n.documents)
                .filter(|&d| d != 0)
                .collect(),
            10_000_000,
        );
    }
}
