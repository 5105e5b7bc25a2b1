//! Children and vehicles of a profile.
//!
//! - A child is one record shared by its parents: the birth certificate is the child's
//!   identity (its keyed hash is the child's id), and each citizen who adds it holds a
//!   link to it. Parenthood comes from the civil registry, not from whoever typed the
//!   certificate in: a link starts `pending`, and the verify-documents worker asks the
//!   registry for the birth record and makes it `verified` only when the record names the
//!   citizen (by the citizen's verified SNILS) as a parent; otherwise `rejected`.
//! - Only verified links find bills and new-bill notices (see
//!   [`crate::services::household::holdings::holdings_of`]); the child's SNILS only once the birth record
//!   confirms it. Adding answers the same `pending` whatever the data and whoever holds the
//!   certificate, so the answer tells nothing; the outcome comes by e-mail and in the list.
//! - The record's data are those of the first parent the registry confirmed: a link that
//!   never verifies (a squatter's) neither locks the parents out nor leaves its data.
//! - A change of the child's SNILS by a parent is checked again before it finds anything,
//!   and every parent is told of it; the certificate cannot change (a new certificate is
//!   a new child).
//! - A vehicle belongs to one account and is known by its registration certificate (СТС);
//!   a new certificate is a new vehicle, so the СТС is not edited in place.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::crypto::{Hasher, Identifier};
use crate::domain::{
    AccountId, BirthCertificate, ChildId, OmsPolicy, Snils, VehicleCertificate, VehicleId,
    VehiclePlate,
};
use crate::error::{AppError, FieldError};
use crate::json::{birth_date, gender, name, text, Change, Reader};
use crate::services::notices::NoticeStore;
use crate::services::profile::{JobQueue, ProfileStore, VerificationJob};
use crate::services::StoreError;
use crate::validation::validated;

pub mod holdings;

use holdings::sync_holdings;

/// Children one account may hold.
pub const MAX_CHILDREN: usize = 10;
/// Vehicles one account may hold.
pub const MAX_VEHICLES: usize = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub last_name: String,
    pub first_name: String,
    #[serde(default)]
    pub middle_name: Option<String>,
    pub birth_date: String,
    #[serde(default)]
    pub gender: Option<String>,
    pub birth_certificate: String,
    #[serde(default)]
    pub snils: Option<String>,
    #[serde(default)]
    pub oms_policy: Option<String>,
}

/// A child as stored: the record, its version, who holds it and what the civil registry
/// confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChild {
    pub id: ChildId,
    pub child: Child,
    pub version: u64,
    /// Every account holding a link, whatever its state.
    pub parents: Vec<AccountId>,
    /// The accounts the birth record names as parents.
    pub verified_parents: Vec<AccountId>,
    /// Where the check of the child's SNILS against the birth record stands.
    pub snils: SnilsCheck,
}

/// A verified parent's edit of a child's record, made against the record as it was read
/// (its version); a new SNILS waits for the check of `snils_submission`.
#[derive(Debug)]
pub struct ChildUpdate<'a> {
    pub account_id: &'a AccountId,
    pub current: &'a StoredChild,
    pub child: &'a Child,
    pub snils_submission: Option<&'a str>,
}

/// The check of a child's SNILS against the birth record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SnilsCheck {
    /// No SNILS, or one never checked (a record from before the checks).
    #[default]
    None,
    /// Waiting for the check queued by `submission`.
    Pending {
        submission: String,
    },
    Verified,
}

/// The outcome of the check of a child's SNILS queued by `submission`, to record on the
/// child's record.
#[derive(Debug)]
pub struct SnilsSettlement<'a> {
    pub id: &'a ChildId,
    pub submission: &'a str,
    pub verdict: SnilsVerdict<'a>,
}

/// What the birth record said of a child's SNILS.
#[derive(Debug, Clone, Copy)]
pub enum SnilsVerdict<'a> {
    Verified,
    /// Not the SNILS of the record: the child's data without it replace the record's.
    Rejected {
        without_snils: &'a Child,
    },
}

/// Where a citizen's link to a child stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// Waiting for the civil registry.
    Pending,
    /// The birth record names the citizen as a parent.
    Verified,
    /// It does not (or there is no such record); the reason is the same either way.
    Rejected,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Pending => "pending",
            LinkState::Verified => "verified",
            LinkState::Rejected => "rejected",
        }
    }
}

/// A citizen's link to a child, with the data the citizen gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildLink {
    pub id: ChildId,
    pub state: LinkState,
    /// What the citizen entered when adding the child.
    pub claim: Child,
    /// The submission whose check decides (decided) the link.
    pub submission: String,
    pub reason: Option<String>,
}

/// A child as one citizen sees it: the link, and the shared record once the link is
/// verified (before that the citizen sees only what they entered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldChild {
    pub link: ChildLink,
    pub record: Option<StoredChild>,
}

/// Why a birth record does not make a citizen the child's parent; one message for
/// every case, so that it tells nothing of the record.
pub const NOT_A_PARENT: &str =
    "в записи акта о рождении по этому свидетельству вы не указаны родителем";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    pub sts: String,
    pub plate: String,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVehicle {
    pub id: VehicleId,
    pub vehicle: Vehicle,
    pub created_at: i64,
}

/// Why linking a child was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// This account holds the child already.
    AlreadyLinked,
    /// The account holds [`MAX_CHILDREN`] children.
    TooMany,
}

/// What the civil registry's answer makes of a pending link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkVerdict {
    /// A parent. `first`: no parent was confirmed before, so the record takes this
    /// parent's data (and drops whatever a link that never verified wrote).
    Verified {
        first: bool,
        claim: Child,
    },
    Rejected {
        reason: String,
    },
}

/// The registry's verdict on an account's link as it was read, recorded only while the
/// link still waits for the check of the submission it was read with.
#[derive(Debug)]
pub struct LinkDecision<'a> {
    pub account_id: &'a AccountId,
    pub link: &'a ChildLink,
    pub verdict: &'a LinkVerdict,
}

#[trait_variant::make(Send)]
pub trait HouseholdStore {
    async fn child(&self, id: &ChildId) -> Result<Option<StoredChild>, StoreError>;

    /// The account's links to children, in the order they were added.
    async fn child_links(&self, account_id: &AccountId) -> Result<Vec<ChildLink>, StoreError>;

    async fn children(&self, ids: &[ChildId]) -> Result<Vec<StoredChild>, StoreError>;

    /// In one transaction: counts the child against the account's [`MAX_CHILDREN`]
    /// (a conditional counter), puts the pending link, and creates the record (with the
    /// claim as its data) or adds the account to its holders.
    async fn link_child(
        &self,
        account_id: &AccountId,
        link: &ChildLink,
        now: i64,
    ) -> Result<Result<(), LinkRefusal>, StoreError>;

    /// Records the registry's verdict on the link if it is still the one of its
    /// submission; `Ok(false)`: it is not (or a first parent was confirmed meanwhile:
    /// read again).
    async fn decide_link(&self, decision: &LinkDecision<'_>) -> Result<bool, StoreError>;

    /// Replaces the record if it is still at the version read and the account is a
    /// verified parent; a new SNILS waits for the check of `snils_submission`.
    async fn update_child(&self, update: &ChildUpdate<'_>) -> Result<bool, StoreError>;

    /// Records the check of the child's SNILS queued by `submission`: verified, or
    /// rejected (the record's data without the SNILS).
    async fn settle_child_snils(
        &self,
        settlement: &SnilsSettlement<'_>,
    ) -> Result<bool, StoreError>;

    /// Removes the account's link; the record goes with the last holder.
    async fn unlink_child(&self, account_id: &AccountId, id: &ChildId) -> Result<bool, StoreError>;

    async fn vehicles(&self, account_id: &AccountId) -> Result<Vec<StoredVehicle>, StoreError>;

    /// `Ok(false)`: the account holds this vehicle already.
    async fn put_vehicle(
        &self,
        account_id: &AccountId,
        vehicle: &StoredVehicle,
    ) -> Result<bool, StoreError>;

    async fn update_vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
        vehicle: &Vehicle,
    ) -> Result<bool, StoreError>;

    async fn delete_vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
    ) -> Result<bool, StoreError>;
}

// ------------------------------------------------------------------ requests

fn snils(path: &str, raw: &str) -> Result<String, FieldError> {
    Snils::parse(path, raw).map(|s| s.as_str().to_string())
}

fn oms(path: &str, raw: &str) -> Result<String, FieldError> {
    OmsPolicy::parse(path, raw).map(|s| s.as_str().to_string())
}

/// Reads a request body: refuses every field not in `known`, lets `read` take the rest
/// (it answers `None` where a field it needs was refused), and answers the value when
/// nothing was refused, or every refusal at once.
fn read_body<T>(
    body: &Map<String, Value>,
    known: &[&str],
    read: impl FnOnce(&mut Reader<'_>) -> Option<T>,
) -> Result<T, AppError> {
    let mut errors = Vec::new();
    let mut r = Reader {
        errors: &mut errors,
    };
    r.unknown(body, "", known);
    let value = read(&mut r);
    validated(value, errors)?.ok_or_else(|| AppError::Internal("validated fields missing".into()))
}

/// A PATCH that changes nothing is refused, rather than answered as a change.
fn refuse_empty_patch(errors: &mut Vec<FieldError>) {
    errors.push(FieldError::new(
        "",
        "nothing_to_change",
        "Укажите, что изменить",
    ));
}

const CHILD_FIELDS: [&str; 8] = [
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "gender",
    "birth_certificate",
    "snils",
    "oms_policy",
];

impl Child {
    /// A child from a POST body.
    pub fn parse(body: &Map<String, Value>, today: Date) -> Result<Self, AppError> {
        read_body(body, &CHILD_FIELDS, |r| {
            let last_name = r.required(body, "last_name", "", name);
            let first_name = r.required(body, "first_name", "", name);
            let middle_name = match body.get("middle_name") {
                Some(Value::String(s)) if s.trim().is_empty() => Change::Clear,
                _ => r.change(body, "middle_name", "", name),
            };
            let born = r.required(body, "birth_date", "", birth_date(today));
            let gender = r.change(body, "gender", "", gender);
            let certificate = r.required(body, "birth_certificate", "", |path, raw| {
                BirthCertificate::parse(path, raw).map(|c| c.as_str().to_string())
            });
            let snils = r.change(body, "snils", "", snils);
            let oms_policy = r.change(body, "oms_policy", "", oms);
            let set = |c: Change<String>| match c {
                Change::Set(v) => Some(v),
                _ => None,
            };
            Some(Child {
                last_name: last_name?,
                first_name: first_name?,
                middle_name: set(middle_name),
                birth_date: born?,
                gender: set(gender),
                birth_certificate: certificate?,
                snils: set(snils),
                oms_policy: set(oms_policy),
            })
        })
    }

    /// The record with a PATCH applied. The birth certificate and date are the child's
    /// identity and stay as they are.
    pub fn patched(&self, body: &Map<String, Value>) -> Result<Self, AppError> {
        read_body(body, &CHILD_FIELDS, |r| {
            for fixed in ["birth_date", "birth_certificate"] {
                if body.contains_key(fixed) {
                    r.errors.push(FieldError::new(
                        fixed,
                        "immutable",
                        "Не меняется: удалите ребёнка и добавьте его заново",
                    ));
                }
            }
            let mut next = self.clone();
            for (field, slot) in [
                ("last_name", &mut next.last_name),
                ("first_name", &mut next.first_name),
            ] {
                let change = r.change(body, field, "", name);
                apply_required(r.errors, field, change, slot);
            }
            // An empty middle name is "none", as in the profile.
            let middle = match body.get("middle_name") {
                Some(Value::String(s)) if s.trim().is_empty() => Change::Clear,
                _ => r.change(body, "middle_name", "", name),
            };
            apply(middle, &mut next.middle_name);
            apply(r.change(body, "gender", "", gender), &mut next.gender);
            apply(r.change(body, "snils", "", snils), &mut next.snils);
            apply(r.change(body, "oms_policy", "", oms), &mut next.oms_policy);
            if r.errors.is_empty() && next == *self && body.is_empty() {
                refuse_empty_patch(r.errors);
            }
            Some(next)
        })
    }
}

fn apply(change: Change<String>, slot: &mut Option<String>) {
    match change {
        Change::Keep => {}
        Change::Clear => *slot = None,
        Change::Set(v) => *slot = Some(v),
    }
}

/// Applies a PATCH of a field every record must have (a child's name, a vehicle's
/// plate): a new value replaces the old one, clearing it is refused as `required`.
fn apply_required(
    errors: &mut Vec<FieldError>,
    field: &str,
    change: Change<String>,
    slot: &mut String,
) {
    match change {
        Change::Keep => {}
        Change::Clear => errors.push(FieldError::new(field, "required", "Обязательное поле")),
        Change::Set(v) => *slot = v,
    }
}

fn plate(path: &str, raw: &str) -> Result<String, FieldError> {
    VehiclePlate::parse(path, raw).map(|p| p.as_str().to_string())
}

impl Vehicle {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        read_body(body, &["sts", "plate", "title"], |r| {
            let sts = r.required(body, "sts", "", |path, raw| {
                VehicleCertificate::parse(path, raw).map(|c| c.as_str().to_string())
            });
            let plate = r.required(body, "plate", "", plate);
            let title = match r.change(body, "title", "", text) {
                Change::Set(v) => Some(v),
                _ => None,
            };
            Some(Vehicle {
                sts: sts?,
                plate: plate?,
                title,
            })
        })
    }

    pub fn patched(&self, body: &Map<String, Value>) -> Result<Self, AppError> {
        read_body(body, &["plate", "title", "sts"], |r| {
            if body.contains_key("sts") {
                r.errors.push(FieldError::new(
                    "sts",
                    "immutable",
                    "Новое СТС — это новое транспортное средство: добавьте его отдельно",
                ));
            }
            let mut next = self.clone();
            let change = r.change(body, "plate", "", plate);
            apply_required(r.errors, "plate", change, &mut next.plate);
            apply(r.change(body, "title", "", text), &mut next.title);
            if r.errors.is_empty() && body.is_empty() {
                refuse_empty_patch(r.errors);
            }
            Some(next)
        })
    }
}

// ------------------------------------------------------------------ the service

pub struct HouseholdService<S, Q> {
    store: S,
    queue: Q,
    hasher: Hasher,
}

impl<S, Q> HouseholdService<S, Q>
where
    S: HouseholdStore + ProfileStore + NoticeStore + Sync,
    Q: JobQueue + Sync,
{
    pub fn new(store: S, queue: Q, hasher: Hasher) -> Self {
        Self {
            store,
            queue,
            hasher,
        }
    }

    /// After a change to what finds an account's bills: the holder index follows, so new
    /// bills are told to the right citizens (see [`crate::services::notices`]).
    async fn synced(&self, account_ids: &[AccountId]) {
        sync_holdings(&self.store, &self.hasher, account_ids).await;
    }

    /// A child's id: a keyed hash of the birth certificate, the same for every parent and
    /// telling nothing about the certificate.
    pub fn child_id(&self, birth_certificate: &str) -> ChildId {
        ChildId::from_hash(
            self.hasher
                .identifier(Identifier::Child, &[birth_certificate]),
        )
    }

    pub async fn children(&self, account_id: &AccountId) -> Result<Vec<HeldChild>, AppError> {
        let links = self.store.child_links(account_id).await?;
        let verified: Vec<ChildId> = links
            .iter()
            .filter(|l| l.state == LinkState::Verified)
            .map(|l| l.id.clone())
            .collect();
        let mut records = if verified.is_empty() {
            Vec::new()
        } else {
            self.store.children(&verified).await?
        };
        Ok(links
            .into_iter()
            .map(|link| {
                let record = records
                    .iter()
                    .position(|r| r.id == link.id)
                    .map(|i| records.swap_remove(i));
                HeldChild { link, record }
            })
            .collect())
    }

    /// The child as this account holds it; not found for anybody else, whoever holds it.
    pub async fn child(&self, account_id: &AccountId, id: &ChildId) -> Result<HeldChild, AppError> {
        let link = self
            .store
            .child_links(account_id)
            .await?
            .into_iter()
            .find(|l| l.id == *id)
            .ok_or(AppError::NotFound("child"))?;
        let record = match link.state {
            LinkState::Verified => self
                .store
                .child(id)
                .await?
                .filter(|c| c.verified_parents.iter().any(|p| p == account_id)),
            _ => None,
        };
        Ok(HeldChild { link, record })
    }

    /// Links the account to a child, pending the civil registry. The answer is the same
    /// whether the certificate is known, held by others, or right: nothing to guess from.
    pub async fn add_child(
        &self,
        account_id: &AccountId,
        child: &Child,
        now: OffsetDateTime,
    ) -> Result<HeldChild, AppError> {
        let link = ChildLink {
            id: self.child_id(&child.birth_certificate),
            state: LinkState::Pending,
            claim: child.clone(),
            submission: uuid::Uuid::new_v4().to_string(),
            reason: None,
        };
        // The job first: one whose link never landed finds none and is dropped, while a
        // link whose job was lost would stay pending for ever.
        self.queue
            .enqueue(&[VerificationJob::child(
                account_id,
                &link.id,
                &link.submission,
            )])
            .await?;
        match self
            .store
            .link_child(account_id, &link, now.unix_timestamp())
            .await?
        {
            Ok(()) => Ok(HeldChild { link, record: None }),
            Err(LinkRefusal::AlreadyLinked) => Err(AppError::AlreadyExists("child")),
            Err(LinkRefusal::TooMany) => Err(AppError::TooMany {
                what: "children",
                limit: MAX_CHILDREN,
            }),
        }
    }

    /// A verified parent edits the shared record. A new SNILS finds nothing until the
    /// birth record confirms it, and every parent is told of it by the worker.
    pub async fn update_child(
        &self,
        account_id: &AccountId,
        id: &ChildId,
        if_match: u64,
        body: &Map<String, Value>,
    ) -> Result<HeldChild, AppError> {
        let held = self.child(account_id, id).await?;
        let current = held.record.ok_or(AppError::NotFound("child"))?;
        if current.version != if_match {
            return Err(AppError::VersionMismatch {
                current: current.version,
            });
        }
        let next = current.child.patched(body)?;
        let snils_submission = (next.snils != current.child.snils && next.snils.is_some())
            .then(|| uuid::Uuid::new_v4().to_string());
        if let Some(submission) = &snils_submission {
            self.queue
                .enqueue(&[VerificationJob::child(account_id, id, submission)])
                .await?;
        }
        if !self
            .store
            .update_child(&ChildUpdate {
                account_id,
                current: &current,
                child: &next,
                snils_submission: snils_submission.as_deref(),
            })
            .await?
        {
            let now = self.child(account_id, id).await?;
            return Err(AppError::VersionMismatch {
                current: now.record.map(|r| r.version).unwrap_or_default(),
            });
        }
        let updated = self.child(account_id, id).await?;
        // The old SNILS no longer finds bills for any parent.
        if let Some(record) = &updated.record {
            self.synced(&record.verified_parents).await;
        }
        Ok(updated)
    }

    pub async fn remove_child(&self, account_id: &AccountId, id: &ChildId) -> Result<(), AppError> {
        if self.store.unlink_child(account_id, id).await? {
            self.synced(std::slice::from_ref(account_id)).await;
            Ok(())
        } else {
            Err(AppError::NotFound("child"))
        }
    }

    pub async fn vehicles(&self, account_id: &AccountId) -> Result<Vec<StoredVehicle>, AppError> {
        Ok(self.store.vehicles(account_id).await?)
    }

    pub async fn vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
    ) -> Result<StoredVehicle, AppError> {
        self.store
            .vehicles(account_id)
            .await?
            .into_iter()
            .find(|v| v.id == *id)
            .ok_or(AppError::NotFound("vehicle"))
    }

    pub async fn add_vehicle(
        &self,
        account_id: &AccountId,
        vehicle: Vehicle,
        now: OffsetDateTime,
    ) -> Result<StoredVehicle, AppError> {
        let held = self.store.vehicles(account_id).await?;
        if held.len() >= MAX_VEHICLES {
            return Err(AppError::TooMany {
                what: "vehicles",
                limit: MAX_VEHICLES,
            });
        }
        let stored = StoredVehicle {
            id: VehicleId::from_hash(
                self.hasher
                    .identifier(Identifier::Vehicle, &[account_id, &vehicle.sts]),
            ),
            vehicle,
            created_at: now.unix_timestamp(),
        };
        if !self.store.put_vehicle(account_id, &stored).await? {
            return Err(AppError::AlreadyExists("vehicle"));
        }
        self.synced(std::slice::from_ref(account_id)).await;
        Ok(stored)
    }

    pub async fn update_vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
        body: &Map<String, Value>,
    ) -> Result<StoredVehicle, AppError> {
        let current = self.vehicle(account_id, id).await?;
        let next = current.vehicle.patched(body)?;
        if !self.store.update_vehicle(account_id, id, &next).await? {
            return Err(AppError::NotFound("vehicle"));
        }
        Ok(StoredVehicle {
            vehicle: next,
            ..current
        })
    }

    pub async fn remove_vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
    ) -> Result<(), AppError> {
        if self.store.delete_vehicle(account_id, id).await? {
            self.synced(std::slice::from_ref(account_id)).await;
            Ok(())
        } else {
            Err(AppError::NotFound("vehicle"))
        }
    }
}
