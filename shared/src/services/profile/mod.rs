//! The citizen's profile: personal data, addresses and documents, each with a
//! verification status, and the jobs that check documents against federal registries.
//!
//! - The profile is one document per account, read and written whole under a version
//!   condition: two tabs editing at once cannot silently overwrite each other (412).
//! - Changing a checked field (name, birth date, gender, SNILS, passport, INN) marks it
//!   `pending` and queues the registry checks that cover it, tagged with the submission
//!   (one PATCH). Jobs are queued *before* the write: a job whose write never landed finds
//!   no field of its submission and is dropped, while a write whose jobs were lost could
//!   leave fields pending for ever.
//! - SNILS is unique across accounts (a login item claimed in the same transaction) and,
//!   once saved, a login.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::crypto::Hasher;
use crate::domain::{
    check_passport_issue_date, AccountLevel, DepartmentCode, DriverLicence, Inn, OmsPolicy,
    PassportNumber, PassportSeries, Snils,
};
use crate::domain::{payer_key, AccountId, ChildId, Payer, PayerKind};
use crate::error::{AppError, FieldError};
use crate::json::{birth_date, date_string, gender, name, parse_date, text, Change, Reader};
use crate::services::identity::{SecurityEvent, StoredAccount};
use crate::services::{snils_login_key, StoreError};

mod documents;
mod dues;
mod patch;
mod service;
pub use documents::*;
pub use dues::*;
pub use patch::*;
pub use service::*;

// ------------------------------------------------------------------ the document

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personal {
    pub last_name: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// `male` or `female`, as the registries record it.
    #[serde(default)]
    pub gender: Option<String>,
    #[serde(default)]
    pub birthplace: Option<String>,
    /// ISO 3166 alpha-3, e.g. `RUS`.
    #[serde(default)]
    pub citizenship: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addresses {
    #[serde(default)]
    pub registration: Option<String>,
    #[serde(default)]
    pub actual: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passport {
    pub series: String,
    pub number: String,
    pub issue_date: String,
    pub department_code: String,
    pub issued_by: String,
    #[serde(default)]
    pub birthplace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverLicenceDoc {
    pub number: String,
    pub issue_date: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Documents {
    #[serde(default)]
    pub snils: Option<String>,
    #[serde(default)]
    pub inn: Option<String>,
    #[serde(default)]
    pub oms_policy: Option<String>,
    #[serde(default)]
    pub passport: Option<Passport>,
    #[serde(default)]
    pub driver_licence: Option<DriverLicenceDoc>,
    #[serde(default)]
    pub international_passport: Option<InternationalPassportDoc>,
    #[serde(default)]
    pub military_id: Option<MilitaryIdDoc>,
    #[serde(default)]
    pub foreign_document: Option<ForeignDocumentDoc>,
    /// The citizen's own birth certificate.
    #[serde(default)]
    pub birth_certificate: Option<BirthCertificateDoc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Unverified,
    Pending,
    Verified,
    Rejected,
    /// The registry did not answer in time, after the re-queues the sweeper allows: the
    /// document stays, and saving it again checks it again.
    Failed,
}

/// Where a checked field stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldStatus {
    pub state: State,
    /// When it was verified or rejected.
    #[serde(default)]
    pub at: Option<i64>,
    /// The registry that decided.
    #[serde(default)]
    pub source: Option<String>,
    /// Why it was rejected, for the citizen.
    #[serde(default)]
    pub reason: Option<String>,
    /// The submission whose checks are running (pending) or decided it.
    #[serde(default)]
    pub submission: Option<String>,
    /// Why a check failed, for clients (with `reason` for the citizen): [`REGISTRY_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Pending: when the check is overdue (Unix seconds), and the sweeper steps in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<i64>,
    /// Pending: times the sweeper queued the check again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub requeued: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl FieldStatus {
    pub(crate) fn pending(submission: &str, due: i64) -> Self {
        Self {
            state: State::Pending,
            at: None,
            source: None,
            reason: None,
            submission: Some(submission.to_string()),
            code: None,
            due: Some(due),
            requeued: 0,
        }
    }

    pub(crate) fn decided(state: State, submission: &str, at: i64) -> Self {
        Self {
            state,
            at: Some(at),
            source: None,
            reason: None,
            submission: Some(submission.to_string()),
            code: None,
            due: None,
            requeued: 0,
        }
    }
}

/// The code of a check the registry never answered (see [`State::Failed`]).
pub const REGISTRY_TIMEOUT: &str = "registry_timeout";
/// What the citizen reads about it.
pub const REGISTRY_TIMEOUT_REASON: &str =
    "реестр не ответил вовремя; сохраните документ ещё раз, чтобы повторить проверку";

/// Submissions whose outcome letter went out, newest last; a few are enough to make a
/// redelivered last job send nothing twice.
const NOTIFIED_KEPT: usize = 10;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub personal: Personal,
    #[serde(default)]
    pub addresses: Addresses,
    #[serde(default)]
    pub documents: Documents,
    /// By checked field: `name`, `birth_date`, `gender`, `snils`, `passport`, `inn`,
    /// `international_passport`.
    #[serde(default)]
    pub statuses: BTreeMap<String, FieldStatus>,
    #[serde(default)]
    pub notified: Vec<String>,
    /// Payer keys of the verified own documents (SNILS, passport, INN) as last written to
    /// the holder index, in the same transaction as the profile: what the next write
    /// removes from the index. `None`: written before the index followed the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<Vec<String>>,
    /// The documents' entries in the reminders' date index as last written, in the same
    /// transaction as the profile: what the next write removes (see [`DueEntry`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dues: Option<Vec<DueEntry>>,
}

/// Fields a registry can check; the keys of [`Profile::statuses`].
pub const CHECKED_FIELDS: [&str; 7] = [
    "name",
    "birth_date",
    "gender",
    "snils",
    "passport",
    "inn",
    "international_passport",
];

/// Fields that say who a person is rather than describe them: a SNILS is issued once for
/// life, and birth date and gender do not change. An edit of any of them is somebody
/// else's identity, so a confirmation given in person or by post no longer holds; a new
/// passport or name (replacement at 20 and 45, marriage) keeps it.
pub const IDENTITY_FIELDS: [&str; 3] = ["snils", "birth_date", "gender"];

/// What the standard level needs verified.
pub const STANDARD_LEVEL_FIELDS: [&str; 5] = ["name", "birth_date", "gender", "snils", "passport"];

/// Weights of the completeness percentage (they add up to 100); see docs/api.
pub const COMPLETENESS_WEIGHTS: [(&str, u32); 12] = [
    ("name", 10),
    ("birth_date", 10),
    ("gender", 5),
    ("birthplace", 5),
    ("citizenship", 5),
    ("registration_address", 5),
    ("actual_address", 5),
    ("snils", 15),
    ("passport", 20),
    ("inn", 10),
    ("oms_policy", 5),
    ("driver_licence", 5),
];

impl Profile {
    /// A new profile starts from what registration knew.
    pub fn from_account(account: &StoredAccount) -> Self {
        Self {
            personal: Personal {
                last_name: account.last_name.clone(),
                first_name: account.first_name.clone(),
                middle_name: account.middle_name.clone(),
                ..Personal::default()
            },
            ..Self::default()
        }
    }

    fn filled(&self, field: &str) -> bool {
        let p = &self.personal;
        let d = &self.documents;
        match field {
            "name" => !p.last_name.is_empty() && !p.first_name.is_empty(),
            "birth_date" => p.birth_date.is_some(),
            "gender" => p.gender.is_some(),
            "birthplace" => p.birthplace.is_some(),
            "citizenship" => p.citizenship.is_some(),
            "registration_address" => self.addresses.registration.is_some(),
            "actual_address" => self.addresses.actual.is_some(),
            "snils" => d.snils.is_some(),
            "passport" => d.passport.is_some(),
            "inn" => d.inn.is_some(),
            "oms_policy" => d.oms_policy.is_some(),
            "driver_licence" => d.driver_licence.is_some(),
            "international_passport" => d.international_passport.is_some(),
            "military_id" => d.military_id.is_some(),
            "foreign_document" => d.foreign_document.is_some(),
            "birth_certificate" => d.birth_certificate.is_some(),
            _ => false,
        }
    }

    /// Percentage of the profile filled in, by [`COMPLETENESS_WEIGHTS`].
    pub fn completeness(&self) -> u32 {
        COMPLETENESS_WEIGHTS
            .iter()
            .filter(|(field, _)| self.filled(field))
            .map(|(_, weight)| weight)
            .sum()
    }

    /// The status of a checked field: `unverified` when filled and never checked.
    pub fn status(&self, field: &str) -> Option<FieldStatus> {
        if let Some(status) = self.statuses.get(field) {
            return Some(status.clone());
        }
        self.filled(field).then_some(FieldStatus {
            state: State::Unverified,
            at: None,
            source: None,
            reason: None,
            submission: None,
            code: None,
            due: None,
            requeued: 0,
        })
    }

    /// Filled in and confirmed by a registry.
    /// Whether `field` is verified, or being checked (the registries asked, no answer
    /// yet): what the access matrix's verified data covers.
    pub fn verified_or_checking(&self, field: &str) -> bool {
        self.filled(field)
            && self
                .statuses
                .get(field)
                .is_some_and(|s| matches!(s.state, State::Verified | State::Pending))
    }

    pub fn is_verified(&self, field: &str) -> bool {
        self.filled(field)
            && self
                .statuses
                .get(field)
                .is_some_and(|s| s.state == State::Verified)
    }

    /// Whether any check of `submission` is still running.
    pub fn submission_pending(&self, submission: &str) -> bool {
        self.statuses
            .values()
            .any(|s| s.state == State::Pending && s.submission.as_deref() == Some(submission))
    }

    /// Whether a field of `submission` is in the document at all.
    pub fn knows_submission(&self, submission: &str) -> bool {
        self.statuses
            .values()
            .any(|s| s.submission.as_deref() == Some(submission))
    }

    /// When the earliest pending check is overdue: the profile's place in the sweeper's
    /// index. A pending status without a due time (written before there was one) is
    /// overdue at once.
    pub fn due(&self) -> Option<i64> {
        self.statuses
            .values()
            .filter(|s| s.state == State::Pending)
            .map(|s| s.due.unwrap_or(0))
            .min()
    }

    /// Payer keys of the own documents a registry verified: what finds the citizen's
    /// bills by them (see [`crate::services::household::holdings::holdings_of`]).
    pub fn own_payer_keys(&self, hasher: &Hasher) -> Vec<String> {
        let d = &self.documents;
        let mut payers = Vec::new();
        if self.is_verified("snils") {
            if let Some(v) = &d.snils {
                payers.push((PayerKind::Snils, v.clone()));
            }
        }
        if self.is_verified("passport") {
            if let Some(p) = &d.passport {
                payers.push((PayerKind::Passport, format!("{}{}", p.series, p.number)));
            }
        }
        if self.is_verified("inn") {
            if let Some(v) = &d.inn {
                payers.push((PayerKind::Inn, v.clone()));
            }
        }
        let mut keys: Vec<String> = payers
            .into_iter()
            .map(|(kind, value)| payer_key(hasher, &Payer { kind, value }))
            .collect();
        keys.sort();
        keys
    }

    /// Records in `self` the own payer keys it holds and answers the holder index entries
    /// to add and remove against `before` (what was held when it was read).
    pub fn follow_holdings(
        &mut self,
        before: &Profile,
        hasher: &Hasher,
    ) -> (Vec<String>, Vec<String>) {
        let held = before
            .holds
            .clone()
            .unwrap_or_else(|| before.own_payer_keys(hasher));
        let wanted = self.own_payer_keys(hasher);
        let add = wanted
            .iter()
            .filter(|k| !held.contains(k))
            .cloned()
            .collect();
        let remove = held
            .iter()
            .filter(|k| !wanted.contains(k))
            .cloned()
            .collect();
        self.holds = Some(wanted);
        (add, remove)
    }

    pub(crate) fn remember_notified(&mut self, submission: &str) {
        self.notified.push(submission.to_string());
        let excess = self.notified.len().saturating_sub(NOTIFIED_KEPT);
        self.notified.drain(..excess);
    }
}

// ------------------------------------------------------------------ checks and jobs

/// A registry check: what it reads, and which fields its answer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// SNILS with name, birth date and gender, at the pension fund.
    Snils,
    /// Passport with name, birth date and gender, at the interior ministry.
    Passport,
    /// INN with name and birth date, at the tax service.
    Inn,
    /// The international passport with name, birth date and gender, at the interior
    /// ministry. It decides the document only: the personal data are the passport's.
    InternationalPassport,
    /// A child's birth certificate at the civil registry: who the parents are, and the
    /// child's SNILS. Not a check of the profile: the job names the child.
    BirthRecord,
}

impl Check {
    pub const ALL: [Check; 4] = [
        Check::Snils,
        Check::Passport,
        Check::Inn,
        Check::InternationalPassport,
    ];

    /// The registry that answers the check, by its short name (the `Registry`
    /// dimension of the `Verifications` metric).
    pub fn registry(self) -> &'static str {
        match self {
            // The Social Fund (СФР), formerly the pension fund.
            Check::Snils => "sfr",
            Check::Passport | Check::InternationalPassport => "mvd",
            Check::Inn => "fns",
            Check::BirthRecord => "civil",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Snils => "snils",
            Check::Passport => "passport",
            Check::Inn => "inn",
            Check::InternationalPassport => "international_passport",
            Check::BirthRecord => "birth_record",
        }
    }

    /// Fields whose change makes the check run again.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Check::Snils => &["snils", "name", "birth_date", "gender"],
            Check::Passport => &["passport", "name", "birth_date", "gender"],
            Check::Inn => &["inn", "name", "birth_date"],
            Check::InternationalPassport => {
                &["international_passport", "name", "birth_date", "gender"]
            }
            Check::BirthRecord => &[],
        }
    }

    /// Fields the answer decides. The document is the one a mismatch rejects; the
    /// passport check also confirms the personal data it was compared with.
    pub fn decides(self) -> &'static [&'static str] {
        match self {
            Check::Snils => &["snils"],
            Check::Passport => &["passport", "name", "birth_date", "gender"],
            Check::Inn => &["inn"],
            Check::InternationalPassport => &["international_passport"],
            Check::BirthRecord => &[],
        }
    }

    pub(crate) fn document(self) -> &'static str {
        self.as_str()
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            Check::Snils => "СНИЛС",
            Check::Passport => "Паспорт",
            Check::Inn => "ИНН",
            Check::InternationalPassport => "Заграничный паспорт",
            Check::BirthRecord => "Свидетельство о рождении",
        }
    }
}

/// A queued registry check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationJob {
    pub account_id: AccountId,
    pub check: Check,
    /// The PATCH that queued it.
    pub submission: String,
    /// The profile version that PATCH wrote.
    pub version: u64,
    /// The child whose birth record a [`Check::BirthRecord`] job reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<ChildId>,
}

impl VerificationJob {
    /// The check of a citizen's link to a child (and of the child's SNILS) that the
    /// link or edit of `submission` queued.
    pub fn child(account_id: &AccountId, child_id: &ChildId, submission: &str) -> Self {
        Self {
            account_id: account_id.clone(),
            check: Check::BirthRecord,
            submission: submission.to_string(),
            version: 0,
            child: Some(child_id.clone()),
        }
    }
}

// ------------------------------------------------------------------ registries

/// What a registry is asked: the document with the personal data it must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRequest {
    pub check: Check,
    pub document: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryAnswer {
    Verified {
        source: &'static str,
    },
    Rejected {
        source: &'static str,
        reason: String,
    },
}

/// A registry that could not answer now; the job is retried.
#[derive(Debug, thiserror::Error)]
#[error("registry unavailable: {0}")]
pub struct RegistryUnavailable(pub String);

/// What the civil registry's record of a birth says, as far as the portal needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthRecord {
    /// SNILS of the parents the record names.
    pub parents_snils: Vec<String>,
    /// The child's SNILS, when one was issued.
    pub child_snils: Option<String>,
}

/// The civil registry (ЗАГС): birth records by certificate.
#[trait_variant::make(Send)]
pub trait CivilRegistry {
    /// `Ok(None)`: no record of this certificate. `attempt` counts deliveries, from 1.
    async fn birth_record(
        &self,
        certificate: &str,
        attempt: u32,
    ) -> Result<Option<BirthRecord>, RegistryUnavailable>;
}

#[trait_variant::make(Send)]
pub trait Registry {
    /// `attempt` counts deliveries of the job, from 1.
    async fn check(
        &self,
        request: &RegistryRequest,
        attempt: u32,
    ) -> Result<RegistryAnswer, RegistryUnavailable>;
}

// ------------------------------------------------------------------ stores

/// The profile as stored, with its version (0: never written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredProfile {
    pub profile: Profile,
    pub version: u64,
}

/// A profile write and what goes with it, in one transaction.
#[derive(Debug, Clone)]
pub struct ProfileWrite<'a> {
    pub account_id: &'a AccountId,
    pub profile: &'a Profile,
    /// The version read; the write fails with [`ProfileWriteRefusal::Stale`] if it moved.
    pub expected_version: u64,
    /// Names to copy onto the account item.
    pub account_names: Option<(&'a str, &'a str, Option<&'a str>)>,
    /// A SNILS login to claim and one to release.
    pub claim_login: Option<String>,
    pub release_login: Option<String>,
    /// A level to move the account to, from the level it must still have.
    pub level_change: Option<(AccountLevel, AccountLevel)>,
    /// Forget an earlier confirmation of identity (see [`IDENTITY_FIELDS`]).
    pub clear_confirmation: bool,
    pub events: Vec<SecurityEvent>,
    /// Holder index entries (payer keys) of the account to add and remove with the write,
    /// so that the index never disagrees with the verified documents.
    pub holdings_add: Vec<String>,
    pub holdings_remove: Vec<String>,
    /// Entries of the reminders' date index to write and delete with the profile (see
    /// [`Profile::follow_dues`]).
    pub dues_add: Vec<DueEntry>,
    pub dues_remove: Vec<DueEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileWriteRefusal {
    Stale,
    SnilsTaken,
}

#[trait_variant::make(Send)]
pub trait ProfileStore {
    /// The account and its profile, read consistently.
    async fn load_profile(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<(StoredAccount, StoredProfile)>, StoreError>;

    async fn write_profile(
        &self,
        write: &ProfileWrite<'_>,
    ) -> Result<Result<(), ProfileWriteRefusal>, StoreError>;

    /// Accounts whose profile has a check overdue at `now` (Unix seconds), earliest
    /// first, at most `limit`: read from a sparse index, never a scan.
    async fn overdue_profiles(&self, now: i64, limit: usize) -> Result<Vec<AccountId>, StoreError>;
}

/// The queue of registry checks.
#[trait_variant::make(Send)]
pub trait JobQueue {
    async fn enqueue(&self, jobs: &[VerificationJob]) -> Result<(), StoreError>;
}

/// The levels of an account (its `level`), by their short names.
pub const SIMPLIFIED: AccountLevel = AccountLevel::Simplified;
pub const STANDARD: AccountLevel = AccountLevel::Standard;
pub const CONFIRMED: AccountLevel = AccountLevel::Confirmed;

#[cfg(test)]
mod service_tests;
