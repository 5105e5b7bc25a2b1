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
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::crypto::Hasher;
use crate::domain::{
    check_passport_issue_date, DepartmentCode, DriverLicence, Inn, OmsPolicy, PassportNumber,
    PassportSeries, PersonName, Snils,
};
use crate::domain::{Email, Phone};
use crate::error::{AppError, FieldError};
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind, VerificationOutcome};
use crate::redact::Secret;
use crate::services::charges::{payer_key, Payer, PayerKind};
use crate::services::codes::Notifier;
use crate::services::household::{
    HouseholdStore, LinkState, LinkVerdict, SnilsCheck, NOT_A_PARENT,
};
use crate::services::identity::{SecurityEvent, StoredAccount};
use crate::services::notices::{sync_holdings, NoticeStore};
use crate::services::{destination_key, StoreError};

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
    fn pending(submission: &str, due: i64) -> Self {
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

    fn decided(state: State, submission: &str, at: i64) -> Self {
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
    /// By checked field: `name`, `birth_date`, `gender`, `snils`, `passport`, `inn`.
    #[serde(default)]
    pub statuses: BTreeMap<String, FieldStatus>,
    #[serde(default)]
    pub notified: Vec<String>,
    /// Payer keys of the verified own documents (SNILS, passport, INN) as last written to
    /// the holder index, in the same transaction as the profile: what the next write
    /// removes from the index. `None`: written before the index followed the profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds: Option<Vec<String>>,
}

/// Fields a registry can check; the keys of [`Profile::statuses`].
pub const CHECKED_FIELDS: [&str; 6] = ["name", "birth_date", "gender", "snils", "passport", "inn"];

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
    /// bills by them (see [`crate::services::bills::holdings_of`]).
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

    fn remember_notified(&mut self, submission: &str) {
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
    /// A child's birth certificate at the civil registry: who the parents are, and the
    /// child's SNILS. Not a check of the profile: the job names the child.
    BirthRecord,
}

impl Check {
    pub const ALL: [Check; 3] = [Check::Snils, Check::Passport, Check::Inn];

    /// The registry that answers the check, by its short name (the `Registry`
    /// dimension of the `Verifications` metric).
    pub fn registry(self) -> &'static str {
        match self {
            // The Social Fund (СФР), formerly the pension fund.
            Check::Snils => "sfr",
            Check::Passport => "mvd",
            Check::Inn => "fns",
            Check::BirthRecord => "civil",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Check::Snils => "snils",
            Check::Passport => "passport",
            Check::Inn => "inn",
            Check::BirthRecord => "birth_record",
        }
    }

    /// Fields whose change makes the check run again.
    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Check::Snils => &["snils", "name", "birth_date", "gender"],
            Check::Passport => &["passport", "name", "birth_date", "gender"],
            Check::Inn => &["inn", "name", "birth_date"],
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
            Check::BirthRecord => &[],
        }
    }

    fn document(self) -> &'static str {
        self.as_str()
    }

    fn title(self) -> &'static str {
        match self {
            Check::Snils => "СНИЛС",
            Check::Passport => "Паспорт",
            Check::Inn => "ИНН",
            Check::BirthRecord => "Свидетельство о рождении",
        }
    }
}

/// A queued registry check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationJob {
    pub account_id: String,
    pub check: Check,
    /// The PATCH that queued it.
    pub submission: String,
    /// The profile version that PATCH wrote.
    pub version: u64,
    /// The child whose birth record a [`Check::BirthRecord`] job reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub child: Option<String>,
}

impl VerificationJob {
    /// The check of a citizen's link to a child (and of the child's SNILS) that the
    /// link or edit of `submission` queued.
    pub fn child(account_id: &str, child_id: &str, submission: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            check: Check::BirthRecord,
            submission: submission.to_string(),
            version: 0,
            child: Some(child_id.to_string()),
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
pub trait CivilRegistry {
    /// `Ok(None)`: no record of this certificate. `attempt` counts deliveries, from 1.
    fn birth_record(
        &self,
        certificate: &str,
        attempt: u32,
    ) -> impl Future<Output = Result<Option<BirthRecord>, RegistryUnavailable>> + Send;
}

pub trait Registry {
    /// `attempt` counts deliveries of the job, from 1.
    fn check(
        &self,
        request: &RegistryRequest,
        attempt: u32,
    ) -> impl Future<Output = Result<RegistryAnswer, RegistryUnavailable>> + Send;
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
    pub account_id: &'a str,
    pub profile: &'a Profile,
    /// The version read; the write fails with [`ProfileWriteRefusal::Stale`] if it moved.
    pub expected_version: u64,
    /// Names to copy onto the account item.
    pub account_names: Option<(&'a str, &'a str, Option<&'a str>)>,
    /// A SNILS login to claim and one to release.
    pub claim_login: Option<String>,
    pub release_login: Option<String>,
    /// A level to move the account to, from the level it must still have.
    pub level_change: Option<(&'a str, &'a str)>,
    /// Forget an earlier confirmation of identity (see [`IDENTITY_FIELDS`]).
    pub clear_confirmation: bool,
    pub events: Vec<SecurityEvent>,
    /// Holder index entries (payer keys) of the account to add and remove with the write,
    /// so that the index never disagrees with the verified documents.
    pub holdings_add: Vec<String>,
    pub holdings_remove: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileWriteRefusal {
    Stale,
    SnilsTaken,
}

pub trait ProfileStore {
    /// The account and its profile, read consistently.
    fn load_profile(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Option<(StoredAccount, StoredProfile)>, StoreError>> + Send;

    fn write_profile(
        &self,
        write: &ProfileWrite<'_>,
    ) -> impl Future<Output = Result<Result<(), ProfileWriteRefusal>, StoreError>> + Send;

    /// Accounts whose profile has a check overdue at `now` (Unix seconds), earliest
    /// first, at most `limit`: read from a sparse index, never a scan.
    fn overdue_profiles(
        &self,
        now: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// The queue of registry checks.
pub trait JobQueue {
    fn enqueue(
        &self,
        jobs: &[VerificationJob],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

// ------------------------------------------------------------------ the patch

/// A field of a PATCH: left alone, cleared (`null`), or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Change<T> {
    fn apply(&self, target: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *target = None,
            Change::Set(v) => *target = Some(v.clone()),
        }
    }
}

/// A validated PATCH of the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Change<String>,
    pub birth_date: Change<String>,
    pub gender: Change<String>,
    pub birthplace: Change<String>,
    pub citizenship: Change<String>,
    pub registration_address: Change<String>,
    pub actual_address: Change<String>,
    pub snils: Change<String>,
    pub inn: Change<String>,
    pub oms_policy: Change<String>,
    pub passport: Change<Passport>,
    pub driver_licence: Change<DriverLicenceDoc>,
}

/// Longest free-text field (addresses, issuing department, birthplace).
pub const MAX_TEXT_CHARS: usize = 300;

/// Reads a JSON object at a JSON Pointer, collecting every problem.
pub(crate) struct Reader<'a> {
    pub(crate) errors: &'a mut Vec<FieldError>,
}

impl Reader<'_> {
    pub(crate) fn object<'v>(
        &mut self,
        body: &'v Map<String, Value>,
        name: &str,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                self.errors
                    .push(FieldError::new(path, "invalid_type", "Ожидается объект"));
                None
            }
        }
    }

    pub(crate) fn unknown(&mut self, object: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in object.keys() {
            if !known.contains(&key.as_str()) {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                self.errors.push(FieldError::new(
                    &format!("{path}/{escaped}"),
                    "unknown_field",
                    "Неизвестное поле",
                ));
            }
        }
    }

    /// A string field that may be cleared with `null`.
    pub(crate) fn change<T>(
        &mut self,
        object: &Map<String, Value>,
        name: &str,
        path: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, FieldError>,
    ) -> Change<T> {
        let path = format!("{path}/{name}");
        match object.get(name) {
            None => Change::Keep,
            Some(Value::Null) => Change::Clear,
            Some(Value::String(s)) => match parse(&path, s) {
                Ok(v) => Change::Set(v),
                Err(e) => {
                    self.errors.push(e);
                    Change::Keep
                }
            },
            Some(_) => {
                self.errors
                    .push(FieldError::new(&path, "invalid_type", "Ожидается строка"));
                Change::Keep
            }
        }
    }

    pub(crate) fn required<T>(
        &mut self,
        object: &Map<String, Value>,
        name: &str,
        path: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, FieldError>,
    ) -> Option<T> {
        let full = format!("{path}/{name}");
        match self.change(object, name, path, parse) {
            Change::Set(v) => Some(v),
            Change::Clear => {
                self.errors
                    .push(FieldError::new(&full, "required", "Обязательное поле"));
                None
            }
            Change::Keep => {
                if !object.contains_key(name) {
                    self.errors
                        .push(FieldError::new(&full, "required", "Обязательное поле"));
                }
                None
            }
        }
    }
}

/// A line of free text: NFC, trimmed, at most [`MAX_TEXT_CHARS`], nothing invisible in it
/// (see [`crate::domain::free_text`]).
pub(crate) fn text(path: &str, raw: &str) -> Result<String, FieldError> {
    crate::domain::free_text(path, raw, MAX_TEXT_CHARS, false)
}

pub(crate) fn name(path: &str, raw: &str) -> Result<String, FieldError> {
    PersonName::parse(path, raw).map(|n| n.as_str().to_string())
}

/// A calendar date written `YYYY-MM-DD`.
pub fn parse_date(path: &str, raw: &str) -> Result<Date, FieldError> {
    let invalid = || FieldError::new(path, "invalid_date", "Дата в формате ГГГГ-ММ-ДД");
    let raw = raw.trim();
    let b = raw.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| raw[range].parse::<u16>().map_err(|_| invalid());
    let year = i32::from(number(0..4)?);
    let month = u8::try_from(number(5..7)?)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let day = u8::try_from(number(8..10)?).map_err(|_| invalid())?;
    Date::from_calendar_date(year, month, day).map_err(|_| invalid())
}

pub(crate) fn date_string(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(crate) fn birth_date(today: Date) -> impl Fn(&str, &str) -> Result<String, FieldError> {
    move |path, raw| {
        let d = parse_date(path, raw)?;
        if d > today {
            return Err(FieldError::new(
                path,
                "date_in_future",
                "Дата ещё не наступила",
            ));
        }
        if d.year() < 1900 {
            return Err(FieldError::new(
                path,
                "date_too_early",
                "Проверьте год рождения",
            ));
        }
        Ok(date_string(d))
    }
}

pub(crate) fn gender(path: &str, raw: &str) -> Result<String, FieldError> {
    match raw.trim() {
        "male" | "female" => Ok(raw.trim().to_string()),
        _ => Err(FieldError::new(
            path,
            "invalid_gender",
            "Допустимые значения: male, female",
        )),
    }
}

fn citizenship(path: &str, raw: &str) -> Result<String, FieldError> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(FieldError::new(
            path,
            "invalid_citizenship",
            "Код страны из трёх латинских букв, например RUS",
        ))
    }
}

impl ProfilePatch {
    /// Validates a PATCH body; every problem is reported with its JSON Pointer.
    pub fn parse(body: &Map<String, Value>, today: Date) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        let mut patch = ProfilePatch::default();
        r.unknown(body, "", &["personal", "addresses", "documents"]);
        if let Some(p) = r.object(body, "personal", "/personal") {
            let at = "/personal";
            r.unknown(
                p,
                at,
                &[
                    "last_name",
                    "first_name",
                    "middle_name",
                    "birth_date",
                    "gender",
                    "birthplace",
                    "citizenship",
                ],
            );
            for (field, slot) in [
                ("last_name", &mut patch.last_name),
                ("first_name", &mut patch.first_name),
            ] {
                match r.change(p, field, at, name) {
                    Change::Set(v) => *slot = Some(v),
                    Change::Clear => r.errors.push(FieldError::new(
                        &format!("{at}/{field}"),
                        "required",
                        "Обязательное поле",
                    )),
                    Change::Keep => {}
                }
            }
            // An empty middle name is "none", as at registration.
            patch.middle_name = match p.get("middle_name") {
                Some(Value::String(s)) if s.trim().is_empty() => Change::Clear,
                _ => r.change(p, "middle_name", at, name),
            };
            patch.birth_date = r.change(p, "birth_date", at, birth_date(today));
            patch.gender = r.change(p, "gender", at, gender);
            patch.birthplace = r.change(p, "birthplace", at, text);
            patch.citizenship = r.change(p, "citizenship", at, citizenship);
        }
        if let Some(a) = r.object(body, "addresses", "/addresses") {
            let at = "/addresses";
            r.unknown(a, at, &["registration", "actual"]);
            patch.registration_address = r.change(a, "registration", at, text);
            patch.actual_address = r.change(a, "actual", at, text);
        }
        if let Some(d) = r.object(body, "documents", "/documents") {
            let at = "/documents";
            r.unknown(
                d,
                at,
                &["snils", "inn", "oms_policy", "passport", "driver_licence"],
            );
            patch.snils = r.change(d, "snils", at, |path, raw| {
                Snils::parse(path, raw).map(|s| s.as_str().to_string())
            });
            patch.inn = r.change(d, "inn", at, |path, raw| {
                Inn::parse_personal(path, raw).map(|i| i.as_str().to_string())
            });
            patch.oms_policy = r.change(d, "oms_policy", at, |path, raw| {
                OmsPolicy::parse(path, raw).map(|o| o.as_str().to_string())
            });
            match d.get("passport") {
                None => {}
                Some(Value::Null) => patch.passport = Change::Clear,
                Some(Value::Object(p)) => {
                    let at = "/documents/passport";
                    r.unknown(
                        p,
                        at,
                        &[
                            "series",
                            "number",
                            "issue_date",
                            "department_code",
                            "issued_by",
                            "birthplace",
                        ],
                    );
                    let series = r.required(p, "series", at, |path, raw| {
                        PassportSeries::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let number = r.required(p, "number", at, |path, raw| {
                        PassportNumber::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let issue_date = r.required(p, "issue_date", at, parse_date);
                    let department_code = r.required(p, "department_code", at, |path, raw| {
                        DepartmentCode::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let issued_by = r.required(p, "issued_by", at, text);
                    let birthplace = match r.change(p, "birthplace", at, text) {
                        Change::Set(v) => Some(v),
                        _ => None,
                    };
                    if let (
                        Some(series),
                        Some(number),
                        Some(issue_date),
                        Some(department_code),
                        Some(issued_by),
                    ) = (series, number, issue_date, department_code, issued_by)
                    {
                        patch.passport = Change::Set(Passport {
                            series,
                            number,
                            issue_date: date_string(issue_date),
                            department_code,
                            issued_by,
                            birthplace,
                        });
                    }
                }
                Some(_) => r.errors.push(FieldError::new(
                    "/documents/passport",
                    "invalid_type",
                    "Ожидается объект",
                )),
            }
            match d.get("driver_licence") {
                None => {}
                Some(Value::Null) => patch.driver_licence = Change::Clear,
                Some(Value::Object(l)) => {
                    let at = "/documents/driver_licence";
                    r.unknown(l, at, &["number", "issue_date"]);
                    let number = r.required(l, "number", at, |path, raw| {
                        DriverLicence::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let issue_date = r.required(l, "issue_date", at, |path, raw| {
                        let d = parse_date(path, raw)?;
                        if d > today {
                            return Err(FieldError::new(
                                path,
                                "date_in_future",
                                "Дата ещё не наступила",
                            ));
                        }
                        Ok(date_string(d))
                    });
                    if let (Some(number), Some(issue_date)) = (number, issue_date) {
                        patch.driver_licence = Change::Set(DriverLicenceDoc { number, issue_date });
                    }
                }
                Some(_) => r.errors.push(FieldError::new(
                    "/documents/driver_licence",
                    "invalid_type",
                    "Ожидается объект",
                )),
            }
        }
        if errors.is_empty() && patch == ProfilePatch::default() {
            errors.push(FieldError::new(
                "",
                "nothing_to_change",
                "Укажите, что изменить",
            ));
        }
        if errors.is_empty() {
            Ok(patch)
        } else {
            Err(AppError::Validation(errors))
        }
    }

    /// The profile with this patch applied.
    fn apply(&self, profile: &Profile) -> Profile {
        let mut next = profile.clone();
        let p = &mut next.personal;
        if let Some(v) = &self.last_name {
            p.last_name = v.clone();
        }
        if let Some(v) = &self.first_name {
            p.first_name = v.clone();
        }
        self.middle_name.apply(&mut p.middle_name);
        self.birth_date.apply(&mut p.birth_date);
        self.gender.apply(&mut p.gender);
        self.birthplace.apply(&mut p.birthplace);
        self.citizenship.apply(&mut p.citizenship);
        self.registration_address
            .apply(&mut next.addresses.registration);
        self.actual_address.apply(&mut next.addresses.actual);
        let d = &mut next.documents;
        self.snils.apply(&mut d.snils);
        self.inn.apply(&mut d.inn);
        self.oms_policy.apply(&mut d.oms_policy);
        self.passport.apply(&mut d.passport);
        self.driver_licence.apply(&mut d.driver_licence);
        next
    }
}

/// Checked fields whose value differs between two profiles.
fn changed_fields(before: &Profile, after: &Profile) -> Vec<&'static str> {
    let (a, b) = (&before.personal, &after.personal);
    let (x, y) = (&before.documents, &after.documents);
    let mut changed = Vec::new();
    if (&a.last_name, &a.first_name, &a.middle_name)
        != (&b.last_name, &b.first_name, &b.middle_name)
    {
        changed.push("name");
    }
    if a.birth_date != b.birth_date {
        changed.push("birth_date");
    }
    if a.gender != b.gender {
        changed.push("gender");
    }
    if x.snils != y.snils {
        changed.push("snils");
    }
    if x.passport != y.passport {
        changed.push("passport");
    }
    if x.inn != y.inn {
        changed.push("inn");
    }
    changed
}

// ------------------------------------------------------------------ the service

/// A profile as the API shows it.
#[derive(Debug, Clone)]
pub struct ProfileView {
    pub profile: Profile,
    pub version: u64,
    pub level: String,
    pub email: String,
    pub phone: String,
}

pub struct ProfileService<S, Q> {
    store: S,
    queue: Q,
    hasher: Hasher,
    deadline_secs: i64,
}

/// How long a check may stay pending before the sweeper steps in, unless configured
/// (`VERIFICATION_DEADLINE_SECONDS`).
pub const DEFAULT_DEADLINE_SECS: i64 = 900;

/// The login key of a SNILS: the same keyed hash as phones and e-mails, so a login by
/// SNILS finds the account like any other login.
pub fn snils_login_key(hasher: &Hasher, snils: &str) -> String {
    destination_key(hasher, snils)
}

impl<S: ProfileStore + Sync, Q: JobQueue + Sync> ProfileService<S, Q> {
    pub fn new(store: S, queue: Q, hasher: Hasher) -> Self {
        Self {
            store,
            queue,
            hasher,
            deadline_secs: DEFAULT_DEADLINE_SECS,
        }
    }

    /// Checks it queues are due this many seconds later.
    pub fn with_deadline(mut self, deadline_secs: i64) -> Self {
        self.deadline_secs = deadline_secs;
        self
    }

    async fn load(&self, account_id: &str) -> Result<(StoredAccount, StoredProfile), AppError> {
        let (account, mut stored) = self
            .store
            .load_profile(account_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if stored.version == 0 {
            stored.profile = Profile::from_account(&account);
        }
        Ok((account, stored))
    }

    pub async fn get(&self, account_id: &str) -> Result<ProfileView, AppError> {
        let (account, stored) = self.load(account_id).await?;
        Ok(view(account, stored))
    }

    /// Applies a PATCH written against `if_match`, the version the client last read.
    pub async fn patch(
        &self,
        account_id: &str,
        if_match: u64,
        patch: &ProfilePatch,
        event: SecurityEvent,
        now: OffsetDateTime,
    ) -> Result<ProfileView, AppError> {
        let (account, stored) = self.load(account_id).await?;
        if stored.version != if_match {
            return Err(AppError::VersionMismatch {
                current: stored.version,
            });
        }
        let before = &stored.profile;
        let mut next = patch.apply(before);
        if let Some(passport) = &next.documents.passport {
            // The passport is checked against the birth date it will be stored with.
            let issue = parse_date("/documents/passport/issue_date", &passport.issue_date)
                .map_err(|e| AppError::Validation(vec![e]))?;
            let born = next
                .personal
                .birth_date
                .as_deref()
                .and_then(|d| parse_date("", d).ok());
            check_passport_issue_date("/documents/passport/issue_date", issue, born, now.date())
                .map_err(|e| AppError::Validation(vec![e]))?;
        }
        // What the PATCH changed, and what it checks: the same, plus failed documents
        // saved again unchanged. A value saved again is no edit: it releases no login,
        // drops no level and forgets no confirmation.
        let edited = changed_fields(before, &next);
        let mut changed = edited.clone();
        // A document whose check failed is checked again when it is saved again, even
        // unchanged: that is how the citizen retries.
        for (field, saved) in [
            ("snils", matches!(patch.snils, Change::Set(_))),
            ("passport", matches!(patch.passport, Change::Set(_))),
            ("inn", matches!(patch.inn, Change::Set(_))),
        ] {
            let failed = before
                .statuses
                .get(field)
                .is_some_and(|s| s.state == State::Failed);
            if saved && failed && !changed.contains(&field) {
                changed.push(field);
            }
        }
        let due = now.unix_timestamp() + self.deadline_secs;
        let submission = uuid::Uuid::new_v4().to_string();
        let version = stored.version + 1;
        let mut jobs = Vec::new();
        for field in &changed {
            // A changed field loses its old verdict; a check below may make it pending.
            next.statuses.remove(*field);
        }
        for check in Check::ALL {
            let document_present = next.filled(check.document());
            let touched = check.inputs().iter().any(|f| changed.contains(f));
            if document_present && touched {
                // Only what is filled in can be confirmed by the check.
                let filled: Vec<&str> = check
                    .decides()
                    .iter()
                    .copied()
                    .filter(|f| next.filled(f))
                    .collect();
                for field in filled {
                    next.statuses
                        .insert(field.to_string(), FieldStatus::pending(&submission, due));
                }
                jobs.push(VerificationJob {
                    account_id: account_id.to_string(),
                    check,
                    submission: submission.clone(),
                    version,
                    child: None,
                });
            }
        }
        // A verified document that changed no longer finds bills by its old value.
        let (holdings_add, holdings_remove) = next.follow_holdings(before, &self.hasher);
        let names_changed = changed.contains(&"name");
        let account_names = names_changed.then_some((
            next.personal.last_name.as_str(),
            next.personal.first_name.as_str(),
            next.personal.middle_name.as_deref(),
        ));
        // A SNILS becomes a login only once the registry verified it (the worker claims
        // it), so saving one answers the same whether another account holds it or not.
        let release_login = if edited.contains(&"snils") {
            before
                .documents
                .snils
                .as_deref()
                .map(|s| snils_login_key(&self.hasher, s))
        } else {
            None
        };
        // Jobs first: see the module comment.
        if !jobs.is_empty() {
            self.queue.enqueue(&jobs).await?;
        }
        // The level rests on verified data: an edit of any of it drops the account to
        // simplified until the checks pass again.
        let current_level = account.level.clone();
        let level_change = (account.level != SIMPLIFIED
            && edited.iter().any(|f| STANDARD_LEVEL_FIELDS.contains(f)))
        .then_some((current_level.as_str(), SIMPLIFIED));
        let mut events = vec![event];
        if level_change.is_some() {
            events.push(SecurityEvent {
                kind: "level_simplified",
                ..events[0].clone()
            });
        }
        let write = ProfileWrite {
            holdings_add,
            holdings_remove,
            account_id,
            profile: &next,
            expected_version: stored.version,
            account_names,
            claim_login: None,
            release_login,
            level_change,
            clear_confirmation: account.confirmed_at.is_some()
                && edited.iter().any(|f| IDENTITY_FIELDS.contains(f)),
            events,
        };
        match self.store.write_profile(&write).await? {
            Ok(()) => {}
            Err(ProfileWriteRefusal::Stale) => {
                let current = self
                    .store
                    .load_profile(account_id)
                    .await?
                    .map(|(_, p)| p.version)
                    .unwrap_or_default();
                return Err(AppError::VersionMismatch { current });
            }
            Err(ProfileWriteRefusal::SnilsTaken) => return Err(AppError::SnilsTaken),
        }
        tracing::info!(account_id, version, checks = jobs.len(), "profile changed");
        let mut account = account;
        if level_change.is_some() {
            account.level = SIMPLIFIED.to_string();
        }
        Ok(view(
            account,
            StoredProfile {
                profile: next,
                version,
            },
        ))
    }
}

fn view(account: StoredAccount, stored: StoredProfile) -> ProfileView {
    ProfileView {
        profile: stored.profile,
        version: stored.version,
        level: account.level,
        email: account.email,
        phone: account.phone,
    }
}

// ------------------------------------------------------------------ verification

/// What became of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// The answer was recorded.
    Applied,
    /// Nothing to do: already decided, or a newer edit replaced what it was for.
    Skipped(&'static str),
}

/// Deliveries after which a job whose profile write never appeared is given up.
const ORPHAN_ATTEMPTS: u32 = 3;

/// Times a child job decides its link again on a fresh read of the record when another
/// parent's job changed the record first.
const DECIDE_ATTEMPTS: usize = 3;
/// Times a job re-reads and retries when an edit lands between its read and its write.
const WRITE_RACE_RETRIES: usize = 3;

pub struct VerificationService<S, R, M> {
    store: S,
    registry: R,
    mailer: M,
    hasher: Hasher,
    writing: AccountLocks,
}

/// One lock per account, for the jobs of one process. The checks of one submission
/// (SNILS, passport, INN) arrive in the same batch and would otherwise race to write the
/// same profile, each loss costing a transaction and a re-read.
#[derive(Default)]
struct AccountLocks {
    locks:
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl AccountLocks {
    async fn lock(&self, account_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        self.entry(account_id).lock_owned().await
    }

    /// The account's lock if nobody holds it now.
    fn try_lock(&self, account_id: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        self.entry(account_id).try_lock_owned().ok()
    }

    fn entry(&self, account_id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        let mut locks = match self.locks.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Forget the locks nobody holds once there are many.
        if locks.len() > 1_000 {
            locks.retain(|_, l| std::sync::Arc::strong_count(l) > 1);
        }
        locks.entry(account_id.to_string()).or_default().clone()
    }
}

impl<S, R, M> VerificationService<S, R, M>
where
    S: ProfileStore + HouseholdStore + NoticeStore + Sync,
    R: Registry + CivilRegistry + Sync,
    M: Notifier + Sync,
{
    pub fn new(store: S, registry: R, mailer: M, hasher: Hasher) -> Self {
        Self {
            store,
            registry,
            mailer,
            hasher,
            writing: AccountLocks::default(),
        }
    }

    /// Runs one job. `Err` asks for the job again later (a registry or store that did not
    /// answer, or a profile write not visible yet).
    pub async fn process(
        &self,
        job: &VerificationJob,
        attempt: u32,
        now: OffsetDateTime,
    ) -> Result<JobOutcome, AppError> {
        if let Some(child) = &job.child {
            return self.process_child(job, child, attempt).await;
        }
        let mut answer: Option<RegistryAnswer> = None;
        let mut taken_elsewhere = false;
        // Held from the registry's answer to the end of the job.
        let mut _writing = None;
        // One more round than retries: the registry's answer is followed by a fresh read.
        for _ in 0..=WRITE_RACE_RETRIES {
            let Some((account, stored)) = self.store.load_profile(&job.account_id).await? else {
                return Ok(JobOutcome::Skipped("account gone"));
            };
            let profile = &stored.profile;
            let document = job.check.document();
            let status = profile.statuses.get(document);
            if status.and_then(|s| s.submission.as_deref()) != Some(job.submission.as_str()) {
                if stored.version < job.version && attempt < ORPHAN_ATTEMPTS {
                    return Err(AppError::StoreUnavailable(
                        "the edit that queued this job is not visible yet".into(),
                    ));
                }
                return Ok(JobOutcome::Skipped("superseded"));
            }
            if status.is_some_and(|s| s.state != State::Pending) {
                return Ok(JobOutcome::Skipped("already decided"));
            }
            let request = registry_request(job.check, profile).ok_or(AppError::Internal(
                "pending check without its document".into(),
            ))?;
            // Asked once per delivery; a lost write race reuses the answer.
            let mut decided = match &answer {
                Some(a) => a.clone(),
                None => {
                    let a = self.registry.check(&request, attempt).await.map_err(|e| {
                        verification_counted(job.check, VerificationOutcome::Retry);
                        AppError::StoreUnavailable(e.to_string())
                    })?;
                    answer = Some(a.clone());
                    // Registries are asked concurrently; the account's profile is
                    // written by one job at a time. A job that waited for the lock reads
                    // again (the job before it wrote); one that did not writes from the
                    // read it asked with, saving a round trip: a write it missed fails the
                    // version condition and sends it round again.
                    match self.writing.try_lock(&job.account_id) {
                        Some(guard) => {
                            _writing = Some(guard);
                            a
                        }
                        None => {
                            _writing = Some(self.writing.lock(&job.account_id).await);
                            continue;
                        }
                    }
                }
            };
            // A verified SNILS becomes the account's login, unless another account's
            // verified SNILS login holds it: then it is rejected like any mismatch.
            if matches!(decided, RegistryAnswer::Verified { .. })
                && job.check == Check::Snils
                && taken_elsewhere
            {
                decided = RegistryAnswer::Rejected {
                    source: "pension_fund",
                    reason: SNILS_HELD_ELSEWHERE.into(),
                };
            }
            let next = self.decide(job, &account, &stored, &decided, now);
            let notify = !next.submission_pending(&job.submission)
                && !stored.profile.notified.contains(&job.submission);
            let mut next = next;
            if notify {
                next.remember_notified(&job.submission);
            }
            let level_change = standard_reached(&account, &next).then(|| lifted_level(&account));
            let mut events = Vec::new();
            if let Some((_, to)) = level_change {
                events.push(SecurityEvent {
                    account_id: account.id.clone(),
                    kind: if to == CONFIRMED {
                        "level_confirmed"
                    } else {
                        "level_standard"
                    },
                    at: now.unix_timestamp(),
                    ip: String::new(),
                    user_agent: String::new(),
                });
            }
            let release_login = match (&decided, job.check) {
                (RegistryAnswer::Rejected { .. }, Check::Snils) => stored
                    .profile
                    .documents
                    .snils
                    .as_deref()
                    .map(|s| snils_login_key(&self.hasher, s)),
                _ => None,
            };
            let claim_login = match (&decided, job.check) {
                (RegistryAnswer::Verified { .. }, Check::Snils) => next
                    .documents
                    .snils
                    .as_deref()
                    .map(|s| snils_login_key(&self.hasher, s)),
                _ => None,
            };
            // The holder index follows in the same transaction: a verified document finds
            // the citizen's bills from now on, a rejected one no longer does.
            let (holdings_add, holdings_remove) =
                next.follow_holdings(&stored.profile, &self.hasher);
            let profile_write = ProfileWrite {
                holdings_add,
                holdings_remove,
                account_id: &job.account_id,
                profile: &next,
                expected_version: stored.version,
                account_names: None,
                claim_login,
                release_login,
                level_change,
                clear_confirmation: false,
                events,
            };
            match self.store.write_profile(&profile_write).await? {
                Ok(()) => {
                    tracing::info!(
                        account_id = %job.account_id,
                        check = job.check.as_str(),
                        verified = matches!(decided, RegistryAnswer::Verified { .. }),
                        "verification recorded"
                    );
                    verification_counted(
                        job.check,
                        match decided {
                            RegistryAnswer::Verified { .. } => VerificationOutcome::Verified,
                            RegistryAnswer::Rejected { .. } => VerificationOutcome::Rejected,
                        },
                    );
                    if notify {
                        self.send_outcome(
                            &account,
                            &next,
                            &job.submission,
                            level_change.map(|(_, to)| to),
                        )
                        .await;
                    }
                    return Ok(JobOutcome::Applied);
                }
                Err(ProfileWriteRefusal::Stale) => continue,
                Err(ProfileWriteRefusal::SnilsTaken) => {
                    taken_elsewhere = true;
                    continue;
                }
            }
        }
        Err(AppError::StoreUnavailable(
            "profile kept changing under the verification".into(),
        ))
    }

    /// A child job: the citizen's pending link is decided by whether the birth record
    /// names the citizen (by their verified SNILS) as a parent, and a pending SNILS of the
    /// child by whether it is the one on the record. Every parent is told of a SNILS
    /// decision; the citizen of their link's.
    async fn process_child(
        &self,
        job: &VerificationJob,
        child_id: &str,
        attempt: u32,
    ) -> Result<JobOutcome, AppError> {
        let Some(link) = self
            .store
            .child_links(&job.account_id)
            .await?
            .into_iter()
            .find(|l| l.id == child_id)
        else {
            if attempt < ORPHAN_ATTEMPTS {
                return Err(AppError::StoreUnavailable(
                    "the link that queued this job is not visible yet".into(),
                ));
            }
            return Ok(JobOutcome::Skipped("link gone"));
        };
        let Some(mut record) = self.store.child(child_id).await? else {
            return Ok(JobOutcome::Skipped("child gone"));
        };
        let link_pending = link.state == LinkState::Pending && link.submission == job.submission;
        let snils_pending = matches!(&record.snils, SnilsCheck::Pending { submission } if *submission == job.submission);
        if !link_pending && !snils_pending {
            return Ok(JobOutcome::Skipped("superseded"));
        }
        let certificate = if link_pending {
            link.claim.birth_certificate.clone()
        } else {
            record.child.birth_certificate.clone()
        };
        let birth = self
            .registry
            .birth_record(&certificate, attempt)
            .await
            .map_err(|e| {
                verification_counted(Check::BirthRecord, VerificationOutcome::Retry);
                AppError::StoreUnavailable(e.to_string())
            })?;
        let Some((account, stored)) = self.store.load_profile(&job.account_id).await? else {
            return Ok(JobOutcome::Skipped("account gone"));
        };
        let parent = stored.profile.is_verified("snils")
            && birth.as_ref().is_some_and(|b| {
                stored
                    .profile
                    .documents
                    .snils
                    .as_ref()
                    .is_some_and(|own| b.parents_snils.contains(own))
            });
        let mut touched = vec![job.account_id.clone()];
        if link_pending {
            // Both parents' jobs for one child often run side by side: when the other
            // parent was confirmed first meanwhile, the record is read again and the link
            // decided anew at once, rather than minutes later by the queue's retry.
            let mut decided = false;
            for _ in 0..DECIDE_ATTEMPTS {
                let verdict = if parent {
                    LinkVerdict::Verified {
                        first: record.verified_parents.is_empty(),
                        claim: link.claim.clone(),
                    }
                } else {
                    LinkVerdict::Rejected {
                        reason: NOT_A_PARENT.to_string(),
                    }
                };
                if self
                    .store
                    .decide_link(&job.account_id, child_id, &job.submission, &verdict)
                    .await?
                {
                    decided = true;
                    break;
                }
                let Some(fresh) = self.store.child(child_id).await? else {
                    return Ok(JobOutcome::Skipped("child gone"));
                };
                record = fresh;
            }
            if !decided {
                return Err(AppError::StoreUnavailable(
                    "the child record changed under the check".into(),
                ));
            }
            tracing::info!(account_id = %job.account_id, verified = parent, "child link decided");
            verification_counted(Check::BirthRecord, outcome_of(parent));
            let text = if parent {
                format!(
                    "Родство подтверждено: ребёнок {} добавлен в ваш профиль.",
                    link.claim.first_name
                )
            } else {
                format!(
                    "Ребёнок {} не добавлен: {}. Проверьте свидетельство о рождении и данные своего профиля (СНИЛС должен быть подтверждён).",
                    link.claim.first_name, NOT_A_PARENT
                )
            };
            self.tell(&account, CHILD_SUBJECT, text).await;
        }
        // The SNILS is decided on the record as it is now (the first parent's data may
        // just have replaced it), and only for a confirmed parent.
        let Some(record) = self.store.child(child_id).await? else {
            return Ok(JobOutcome::Applied);
        };
        let is_parent = record.verified_parents.contains(&job.account_id);
        if let (true, SnilsCheck::Pending { submission }) = (is_parent, &record.snils) {
            if *submission == job.submission {
                let verified = match (&birth, &record.child.snils) {
                    (Some(b), Some(snils)) => b.child_snils.as_ref() == Some(snils),
                    _ => false,
                };
                let mut child = record.child.clone();
                if !verified {
                    child.snils = None;
                }
                if self
                    .store
                    .settle_child_snils(child_id, submission, &child, verified)
                    .await?
                {
                    verification_counted(Check::BirthRecord, outcome_of(verified));
                    let text = if verified {
                        format!(
                            "СНИЛС ребёнка {} указан одним из родителей и подтверждён записью акта о рождении.",
                            record.child.first_name
                        )
                    } else {
                        format!(
                            "СНИЛС ребёнка {} указан одним из родителей, но не совпал с записью акта о рождении и удалён.",
                            record.child.first_name
                        )
                    };
                    for parent in &record.verified_parents {
                        if let Some((other, _)) = self.store.load_profile(parent).await? {
                            self.tell(&other, CHILD_SUBJECT, text.clone()).await;
                        }
                    }
                }
            }
        }
        touched.extend(record.verified_parents.iter().cloned());
        touched.sort();
        touched.dedup();
        sync_holdings(&self.store, &self.hasher, &touched).await;
        Ok(JobOutcome::Applied)
    }

    /// An e-mail to the citizen; a failure is logged, the decision stays.
    async fn tell(&self, account: &StoredAccount, subject: &str, text: String) {
        if let Ok(email) = Email::parse("email", &account.email) {
            match self
                .mailer
                .send_email(&email, subject, &Secret::new(text))
                .await
            {
                Ok(()) => verification_notice_sent(NoticeChannel::Email),
                Err(e) => {
                    tracing::warn!(account_id = %account.id, error = %e, "child check e-mail not sent")
                }
            }
        }
    }

    /// The profile with the registry's answer recorded.
    fn decide(
        &self,
        job: &VerificationJob,
        _account: &StoredAccount,
        stored: &StoredProfile,
        answer: &RegistryAnswer,
        now: OffsetDateTime,
    ) -> Profile {
        let mut next = stored.profile.clone();
        let at = now.unix_timestamp();
        match answer {
            RegistryAnswer::Verified { source } => {
                for field in job.check.decides() {
                    let pending_here = next.statuses.get(*field).is_some_and(|s| {
                        s.state == State::Pending
                            && s.submission.as_deref() == Some(&job.submission)
                    });
                    if pending_here {
                        next.statuses.insert(
                            field.to_string(),
                            FieldStatus {
                                source: Some(source.to_string()),
                                ..FieldStatus::decided(State::Verified, &job.submission, at)
                            },
                        );
                    }
                }
            }
            RegistryAnswer::Rejected { source, reason } => {
                // The document is removed, as on mos.ru, and the reason kept; personal
                // data it was compared with goes back to unverified.
                let document = job.check.document();
                match job.check {
                    Check::Snils => next.documents.snils = None,
                    Check::Passport => next.documents.passport = None,
                    Check::Inn => next.documents.inn = None,
                    Check::BirthRecord => {}
                }
                next.statuses.insert(
                    document.to_string(),
                    FieldStatus {
                        source: Some(source.to_string()),
                        reason: Some(reason.clone()),
                        ..FieldStatus::decided(State::Rejected, &job.submission, at)
                    },
                );
                for field in job.check.decides().iter().filter(|f| **f != document) {
                    let pending_here = next.statuses.get(*field).is_some_and(|s| {
                        s.state == State::Pending
                            && s.submission.as_deref() == Some(&job.submission)
                    });
                    if pending_here {
                        next.statuses.remove(*field);
                    }
                }
            }
        }
        next
    }

    async fn send_outcome(
        &self,
        account: &StoredAccount,
        profile: &Profile,
        submission: &str,
        lifted_to: Option<&str>,
    ) {
        let mut lines = vec!["Проверка данных профиля завершена.".to_string()];
        for check in Check::ALL {
            let Some(status) = profile.statuses.get(check.document()) else {
                continue;
            };
            if status.submission.as_deref() != Some(submission) {
                continue;
            }
            match status.state {
                State::Verified => lines.push(format!("{}: подтверждён.", check.title())),
                State::Rejected => lines.push(format!(
                    "{}: не подтверждён — {}. Данные удалены из профиля, введите их заново.",
                    check.title(),
                    status.reason.as_deref().unwrap_or("причина не указана")
                )),
                _ => {}
            }
        }
        match lifted_to {
            Some(CONFIRMED) => lines.push("Ваша учётная запись снова подтверждённая.".into()),
            Some(_) => lines.push("Ваша учётная запись теперь стандартная.".into()),
            None => {}
        }
        if let Ok(email) = Email::parse("email", &account.email) {
            let text = Secret::new(lines.join("\n"));
            match self.mailer.send_email(&email, OUTCOME_SUBJECT, &text).await {
                Ok(()) => verification_notice_sent(NoticeChannel::Email),
                Err(e) => {
                    tracing::warn!(account_id = %account.id, error = %e, "verification outcome e-mail not sent")
                }
            }
        }
        // The SMS copy only if the citizen asked for it in the notification settings.
        let sms_wanted = match self.store.notification_settings(&account.id).await {
            Ok(settings) => settings.unwrap_or_default().verification_sms,
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "notification settings not read; no SMS copy");
                false
            }
        };
        if !sms_wanted {
            return;
        }
        let Ok(phone) = Phone::parse("phone", &account.phone) else {
            return;
        };
        let rejected = Check::ALL.iter().any(|check| {
            profile.statuses.get(check.document()).is_some_and(|s| {
                s.submission.as_deref() == Some(submission) && s.state == State::Rejected
            })
        });
        let sms = if rejected {
            OUTCOME_SMS_REJECTED
        } else {
            OUTCOME_SMS_VERIFIED
        };
        match self
            .mailer
            .send_sms(&phone, &Secret::new(sms.to_string()))
            .await
        {
            Ok(()) => verification_notice_sent(NoticeChannel::Sms),
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "verification outcome SMS not sent")
            }
        }
    }
}

// ------------------------------------------------------------------ the sweeper

/// What the sweeper does with overdue checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// How long a check may stay pending each time it is queued, in seconds.
    pub deadline_secs: i64,
    /// Times an overdue check is queued again before it is marked `failed`.
    pub max_requeues: u32,
    /// Most profiles one run looks at; the rest wait for the next run.
    pub batch: usize,
}

/// What one run of the sweeper did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepRun {
    /// Profiles with an overdue check that were looked at.
    pub profiles: usize,
    /// Checks queued again.
    pub requeued: usize,
    /// Checks marked `failed`.
    pub failed: usize,
    /// Profiles that changed between the read and the write (a check finished, an
    /// edit): left to the next run, which reads them again.
    pub raced: usize,
}

/// Finds checks that stayed pending past their due time (a registry that never answered,
/// a job lost or dead-lettered) and queues them again, up to [`SweepLimits::max_requeues`]
/// times, then marks them `failed` with [`REGISTRY_TIMEOUT`]. Every write is conditional
/// on the profile version read, so a check that finishes at the same moment wins or is
/// read again, and a run repeated changes nothing more.
pub struct VerificationSweeper<S, Q> {
    store: S,
    queue: Q,
    limits: SweepLimits,
}

impl<S: ProfileStore + Sync, Q: JobQueue + Sync> VerificationSweeper<S, Q> {
    pub fn new(store: S, queue: Q, limits: SweepLimits) -> Self {
        Self {
            store,
            queue,
            limits,
        }
    }

    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepRun, AppError> {
        let now = now.unix_timestamp();
        let mut run = SweepRun::default();
        for account_id in self.store.overdue_profiles(now, self.limits.batch).await? {
            run.profiles += 1;
            let Some((_, stored)) = self.store.load_profile(&account_id).await? else {
                continue;
            };
            let (next, jobs, failed) = overdue(&self.limits, &account_id, &stored, now);
            if next == stored.profile {
                continue;
            }
            // Jobs first, as a PATCH queues them: a job whose write lost finds its check
            // decided or still pending, and does the right thing either way.
            if !jobs.is_empty() {
                self.queue.enqueue(&jobs).await?;
            }
            let write = ProfileWrite {
                account_id: &account_id,
                profile: &next,
                expected_version: stored.version,
                account_names: None,
                claim_login: None,
                release_login: None,
                level_change: None,
                clear_confirmation: false,
                events: Vec::new(),
                holdings_add: Vec::new(),
                holdings_remove: Vec::new(),
            };
            match self.store.write_profile(&write).await? {
                Ok(()) => {
                    run.requeued += jobs.len();
                    run.failed += failed;
                    tracing::info!(account_id = %account_id, requeued = jobs.len(), failed, "overdue checks swept");
                }
                Err(_) => run.raced += 1,
            }
        }
        Ok(run)
    }
}

/// The profile with its overdue checks queued again or failed, the jobs to queue and how
/// many failed.
fn overdue(
    limits: &SweepLimits,
    account_id: &str,
    stored: &StoredProfile,
    now: i64,
) -> (Profile, Vec<VerificationJob>, usize) {
    let mut next = stored.profile.clone();
    let mut jobs = Vec::new();
    let mut failed = 0;
    for check in Check::ALL {
        let document = check.document();
        let Some(status) = next.statuses.get(document).cloned() else {
            continue;
        };
        let Some(submission) = status.submission.clone() else {
            continue;
        };
        if status.state != State::Pending || status.due.unwrap_or(0) > now {
            continue;
        }
        let fields: Vec<&str> = check
            .decides()
            .iter()
            .copied()
            .filter(|f| {
                next.statuses.get(*f).is_some_and(|s| {
                    s.state == State::Pending && s.submission.as_deref() == Some(&submission)
                })
            })
            .collect();
        if status.requeued < limits.max_requeues {
            for field in fields {
                if let Some(s) = next.statuses.get_mut(field) {
                    s.due = Some(now + limits.deadline_secs);
                    s.requeued = status.requeued + 1;
                }
            }
            jobs.push(VerificationJob {
                account_id: account_id.to_string(),
                check,
                submission,
                version: stored.version + 1,
                child: None,
            });
        } else {
            // The document stays (unlike a rejection: nobody said it is wrong); the
            // personal data it was compared with go back to unverified.
            for field in fields {
                next.statuses.remove(field);
            }
            next.statuses.insert(
                document.to_string(),
                FieldStatus {
                    code: Some(REGISTRY_TIMEOUT.to_string()),
                    reason: Some(REGISTRY_TIMEOUT_REASON.to_string()),
                    ..FieldStatus::decided(State::Failed, &submission, now)
                },
            );
            failed += 1;
        }
    }
    // A pending field no check covers any more would keep the profile overdue for
    // ever: it goes back to unverified.
    next.statuses
        .retain(|_, s| s.state != State::Pending || s.due.unwrap_or(0) > now);
    (next, jobs, failed)
}

fn verification_counted(check: Check, outcome: VerificationOutcome) {
    metrics::emit(Metric::Verifications {
        registry: check.registry(),
        outcome,
    });
}

fn outcome_of(verified: bool) -> VerificationOutcome {
    if verified {
        VerificationOutcome::Verified
    } else {
        VerificationOutcome::Rejected
    }
}

fn verification_notice_sent(channel: NoticeChannel) {
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::Verification,
        channel,
    });
}

/// Why a SNILS whose login another account's verified SNILS holds is rejected: the
/// registry's own wording, so that nothing tells this case apart.
pub const SNILS_HELD_ELSEWHERE: &str = "данные не совпадают с данными реестра";

pub const OUTCOME_SUBJECT: &str = "Результат проверки данных профиля";
/// The subject of letters about a child's check.
pub const CHILD_SUBJECT: &str = "Проверка данных ребёнка";
/// The SMS copy of an outcome: short, and with no personal data (the e-mail has the rest).
pub const OUTCOME_SMS_VERIFIED: &str =
    "Проверка данных профиля завершена: данные подтверждены. Подробности в письме и в личном кабинете.";
pub const OUTCOME_SMS_REJECTED: &str =
    "Проверка данных профиля завершена: часть данных не подтверждена. Подробности в письме и в личном кабинете.";

pub const SIMPLIFIED: &str = "simplified";
pub const STANDARD: &str = "standard";
pub const CONFIRMED: &str = "confirmed";

/// Whether recording this outcome lifts a simplified account.
fn standard_reached(account: &StoredAccount, profile: &Profile) -> bool {
    account.level == SIMPLIFIED && STANDARD_LEVEL_FIELDS.iter().all(|f| profile.is_verified(f))
}

/// Where verified data lifts a simplified account: back to confirmed when its identity
/// was confirmed before (the edit that dropped it was checked again), else standard.
fn lifted_level(account: &StoredAccount) -> (&'static str, &'static str) {
    if account.confirmed_at.is_some() {
        (SIMPLIFIED, CONFIRMED)
    } else {
        (SIMPLIFIED, STANDARD)
    }
}

fn registry_request(check: Check, profile: &Profile) -> Option<RegistryRequest> {
    let d = &profile.documents;
    let document = match check {
        Check::Snils => d.snils.clone()?,
        Check::Passport => d
            .passport
            .as_ref()
            .map(|p| format!("{}{}", p.series, p.number))?,
        Check::Inn => d.inn.clone()?,
        Check::BirthRecord => return None,
    };
    let p = &profile.personal;
    Some(RegistryRequest {
        check,
        document,
        last_name: p.last_name.clone(),
        first_name: p.first_name.clone(),
        middle_name: p.middle_name.clone(),
        birth_date: p.birth_date.clone(),
        gender: p.gender.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SweepLimits = SweepLimits {
        deadline_secs: 100,
        max_requeues: 1,
        batch: 10,
    };

    /// A profile whose passport check (with the name it covers) is pending, due at 1000.
    fn passport_pending() -> StoredProfile {
        let mut profile = Profile::default();
        profile.personal.last_name = "Иванов".into();
        profile.personal.first_name = "Пётр".into();
        profile.documents.passport = Some(Passport {
            series: "4510".into(),
            number: "996001".into(),
            issue_date: "2010-06-01".into(),
            department_code: "770-001".into(),
            issued_by: "ОВД".into(),
            birthplace: None,
        });
        for field in ["passport", "name"] {
            profile
                .statuses
                .insert(field.into(), FieldStatus::pending("s1", 1000));
        }
        StoredProfile {
            profile,
            version: 4,
        }
    }

    #[test]
    fn overdue_checks_are_queued_again_then_failed() {
        let stored = passport_pending();
        let (next, jobs, failed) = overdue(&LIMITS, "a1", &stored, 999);
        assert_eq!(
            (next, jobs.len(), failed),
            (stored.profile.clone(), 0, 0),
            "not due yet"
        );
        assert_eq!(stored.profile.due(), Some(1000));

        let (next, jobs, failed) = overdue(&LIMITS, "a1", &stored, 1000);
        assert_eq!(failed, 0);
        assert_eq!(
            jobs,
            [VerificationJob {
                account_id: "a1".into(),
                check: Check::Passport,
                submission: "s1".into(),
                version: 5,
                child: None,
            }]
        );
        for field in ["passport", "name"] {
            let s = &next.statuses[field];
            assert_eq!(
                (s.state, s.due, s.requeued),
                (State::Pending, Some(1100), 1)
            );
        }
        assert_eq!(
            next.due(),
            Some(1100),
            "the index moves to the new due time"
        );

        let again = StoredProfile {
            profile: next,
            version: 5,
        };
        let (next, jobs, failed) = overdue(&LIMITS, "a1", &again, 1100);
        assert_eq!((jobs.len(), failed), (0, 1));
        let passport = &next.statuses["passport"];
        assert_eq!(passport.state, State::Failed);
        assert_eq!(passport.code.as_deref(), Some(REGISTRY_TIMEOUT));
        assert_eq!(passport.reason.as_deref(), Some(REGISTRY_TIMEOUT_REASON));
        assert_eq!(passport.at, Some(1100));
        assert!(
            next.documents.passport.is_some(),
            "a failed check keeps the document"
        );
        assert!(
            !next.statuses.contains_key("name"),
            "the name goes back to unverified"
        );
        assert_eq!(next.due(), None, "nothing pending: out of the index");

        let done = StoredProfile {
            profile: next.clone(),
            version: 6,
        };
        let (same, jobs, failed) = overdue(&LIMITS, "a1", &done, 5000);
        assert_eq!(
            (same, jobs.len(), failed),
            (next, 0, 0),
            "a repeated run changes nothing"
        );
    }

    #[test]
    fn a_pending_status_without_due_time_is_overdue_at_once() {
        let mut stored = passport_pending();
        for s in stored.profile.statuses.values_mut() {
            s.due = None;
        }
        assert_eq!(stored.profile.due(), Some(0));
        let (_, jobs, _) = overdue(&LIMITS, "a1", &stored, 1);
        assert_eq!(jobs.len(), 1);
    }

    #[test]
    fn the_holder_index_follows_verified_documents_only() {
        let Ok(hasher) = Hasher::new(vec![7; 32]) else {
            panic!("test key");
        };
        let mut before = Profile::default();
        before.documents.snils = Some("11223344595".into());
        before.statuses.insert(
            "snils".into(),
            FieldStatus::decided(State::Verified, "s1", 1),
        );
        // Written before the profile recorded its holdings: the verified SNILS is held.
        let snils_key = before.own_payer_keys(&hasher);
        assert_eq!(snils_key.len(), 1);

        let mut next = before.clone();
        next.documents.inn = Some("500100732259".into());
        next.statuses
            .insert("inn".into(), FieldStatus::decided(State::Verified, "s2", 2));
        let (add, remove) = next.follow_holdings(&before, &hasher);
        assert_eq!(
            (add.len(), remove),
            (1, vec![]),
            "only the newly verified INN"
        );
        assert_eq!(next.holds.as_ref().map(Vec::len), Some(2));

        // A new SNILS, pending: its old value leaves the index now.
        let mut edited = next.clone();
        edited.documents.snils = Some("11223344696".into());
        edited
            .statuses
            .insert("snils".into(), FieldStatus::pending("s3", 10));
        let (add, remove) = edited.follow_holdings(&next, &hasher);
        assert_eq!((add, remove), (vec![], snils_key));

        // Nothing changed: nothing written.
        let mut same = edited.clone();
        assert_eq!(same.follow_holdings(&edited, &hasher), (vec![], vec![]));
    }

    #[test]
    fn each_check_is_counted_under_its_registry() {
        let registries: Vec<&str> = [
            Check::Snils,
            Check::Passport,
            Check::Inn,
            Check::BirthRecord,
        ]
        .iter()
        .map(|c| c.registry())
        .collect();
        assert_eq!(registries, ["sfr", "mvd", "fns", "civil"]);

        let capture = metrics::Capture::start();
        verification_counted(Check::Inn, VerificationOutcome::Retry);
        verification_counted(Check::BirthRecord, outcome_of(false));
        assert_eq!(
            capture.counted("Verifications"),
            [
                metrics::dims(&[("Registry", "fns"), ("Outcome", "retry")]),
                metrics::dims(&[("Registry", "civil"), ("Outcome", "rejected")]),
            ]
        );
    }
}
