//! Children and vehicles of a profile.
//!
//! - A child is one record shared by every parent who adds it: the birth certificate is
//!   the child's identity (its keyed hash is the child's id), and each parent holds a link
//!   to it. The second parent must name the same child (names and birth date as the first
//!   one recorded them); then both see the child, and later its bills.
//! - A vehicle belongs to one account and is known by its registration certificate (СТС);
//!   a new certificate is a new vehicle, so the СТС is not edited in place.

use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::crypto::Hasher;
use crate::domain::{BirthCertificate, OmsPolicy, Snils, VehicleCertificate, VehiclePlate};
use crate::error::{AppError, FieldError};
use crate::services::notices::{sync_holdings, NoticeStore};
use crate::services::profile::{birth_date, gender, name, text, Change, ProfileStore, Reader};
use crate::services::StoreError;

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

/// A child as stored: the record, its version and how many parents hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredChild {
    pub id: String,
    pub child: Child,
    pub version: u64,
    pub parents: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vehicle {
    pub sts: String,
    pub plate: String,
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVehicle {
    pub id: String,
    pub vehicle: Vehicle,
    pub created_at: i64,
}

/// Why linking a child was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    /// This account holds the child already.
    AlreadyLinked,
    /// Somebody changed the record meanwhile; read again.
    Stale,
}

pub trait HouseholdStore {
    fn child(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredChild>, StoreError>> + Send;

    /// Ids of the children linked to the account.
    fn child_links(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    fn children(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<StoredChild>, StoreError>> + Send;

    /// Creates the child with the account as its first parent, or (when `existing` is the
    /// version read) adds the account as another parent.
    fn link_child(
        &self,
        account_id: &str,
        id: &str,
        child: &Child,
        existing: Option<u64>,
        now: i64,
    ) -> impl Future<Output = Result<Result<(), LinkRefusal>, StoreError>> + Send;

    /// Replaces the record if it is still at `expected_version` and the account holds it.
    fn update_child(
        &self,
        account_id: &str,
        id: &str,
        child: &Child,
        expected_version: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the account's link; the record goes with the last parent.
    fn unlink_child(
        &self,
        account_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn vehicles(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<StoredVehicle>, StoreError>> + Send;

    /// `Ok(false)`: the account holds this vehicle already.
    fn put_vehicle(
        &self,
        account_id: &str,
        vehicle: &StoredVehicle,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn update_vehicle(
        &self,
        account_id: &str,
        id: &str,
        vehicle: &Vehicle,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn delete_vehicle(
        &self,
        account_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

// ------------------------------------------------------------------ requests

fn snils(path: &str, raw: &str) -> Result<String, FieldError> {
    Snils::parse(path, raw).map(|s| s.as_str().to_string())
}

fn oms(path: &str, raw: &str) -> Result<String, FieldError> {
    OmsPolicy::parse(path, raw).map(|s| s.as_str().to_string())
}

fn finish<T>(errors: Vec<FieldError>, value: Option<T>) -> Result<T, AppError> {
    match value {
        Some(v) if errors.is_empty() => Ok(v),
        _ if !errors.is_empty() => Err(AppError::Validation(errors)),
        _ => Err(AppError::Internal("validated fields missing".into())),
    }
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
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &CHILD_FIELDS);
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
        let child = match (last_name, first_name, born, certificate) {
            (Some(last_name), Some(first_name), Some(birth_date), Some(birth_certificate)) => {
                Some(Child {
                    last_name,
                    first_name,
                    middle_name: set(middle_name),
                    birth_date,
                    gender: set(gender),
                    birth_certificate,
                    snils: set(snils),
                    oms_policy: set(oms_policy),
                })
            }
            _ => None,
        };
        finish(errors, child)
    }

    /// The record with a PATCH applied. The birth certificate and date are the child's
    /// identity and stay as they are.
    pub fn patched(&self, body: &Map<String, Value>) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &CHILD_FIELDS);
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
            match r.change(body, field, "", name) {
                Change::Set(v) => *slot = v,
                Change::Clear => {
                    r.errors
                        .push(FieldError::new(field, "required", "Обязательное поле"))
                }
                Change::Keep => {}
            }
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
        if errors.is_empty() && next == *self && body.is_empty() {
            errors.push(FieldError::new(
                "",
                "nothing_to_change",
                "Укажите, что изменить",
            ));
        }
        finish(errors, Some(next))
    }
}

fn apply(change: Change<String>, slot: &mut Option<String>) {
    match change {
        Change::Keep => {}
        Change::Clear => *slot = None,
        Change::Set(v) => *slot = Some(v),
    }
}

fn plate(path: &str, raw: &str) -> Result<String, FieldError> {
    VehiclePlate::parse(path, raw).map(|p| p.as_str().to_string())
}

impl Vehicle {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &["sts", "plate", "title"]);
        let sts = r.required(body, "sts", "", |path, raw| {
            VehicleCertificate::parse(path, raw).map(|c| c.as_str().to_string())
        });
        let plate = r.required(body, "plate", "", plate);
        let title = match r.change(body, "title", "", text) {
            Change::Set(v) => Some(v),
            _ => None,
        };
        let vehicle = match (sts, plate) {
            (Some(sts), Some(plate)) => Some(Vehicle { sts, plate, title }),
            _ => None,
        };
        finish(errors, vehicle)
    }

    pub fn patched(&self, body: &Map<String, Value>) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &["plate", "title", "sts"]);
        if body.contains_key("sts") {
            r.errors.push(FieldError::new(
                "sts",
                "immutable",
                "Новое СТС — это новое транспортное средство: добавьте его отдельно",
            ));
        }
        let mut next = self.clone();
        match r.change(body, "plate", "", plate) {
            Change::Set(v) => next.plate = v,
            Change::Clear => {
                r.errors
                    .push(FieldError::new("plate", "required", "Обязательное поле"))
            }
            Change::Keep => {}
        }
        apply(r.change(body, "title", "", text), &mut next.title);
        if errors.is_empty() && body.is_empty() {
            errors.push(FieldError::new(
                "",
                "nothing_to_change",
                "Укажите, что изменить",
            ));
        }
        finish(errors, Some(next))
    }
}

// ------------------------------------------------------------------ the service

pub struct HouseholdService<S> {
    store: S,
    hasher: Hasher,
}

/// Times adding a child re-reads after losing a race with the other parent.
const LINK_RACE_RETRIES: usize = 3;

impl<S> HouseholdService<S>
where
    S: HouseholdStore + ProfileStore + NoticeStore + Sync,
{
    pub fn new(store: S, hasher: Hasher) -> Self {
        Self { store, hasher }
    }

    /// After a change to what finds an account's bills: the holder index follows, so new
    /// bills are told to the right citizens (see [`crate::services::notices`]).
    async fn synced(&self, account_ids: &[String]) {
        sync_holdings(&self.store, &self.hasher, account_ids).await;
    }

    /// A child's id: a keyed hash of the birth certificate, the same for every parent and
    /// telling nothing about the certificate.
    pub fn child_id(&self, birth_certificate: &str) -> String {
        self.hasher.digest("child", &[birth_certificate])
    }

    pub async fn children(&self, account_id: &str) -> Result<Vec<StoredChild>, AppError> {
        let ids = self.store.child_links(account_id).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.store.children(&ids).await?)
    }

    /// The child, if this account holds it; otherwise not found, whoever else holds it.
    pub async fn child(&self, account_id: &str, id: &str) -> Result<StoredChild, AppError> {
        self.store
            .child(id)
            .await?
            .filter(|c| c.parents.iter().any(|p| p == account_id))
            .ok_or(AppError::NotFound("child"))
    }

    pub async fn add_child(
        &self,
        account_id: &str,
        child: &Child,
        now: OffsetDateTime,
    ) -> Result<StoredChild, AppError> {
        let id = self.child_id(&child.birth_certificate);
        for _ in 0..LINK_RACE_RETRIES {
            let linked = self.store.child_links(account_id).await?;
            if linked.contains(&id) {
                return Err(AppError::AlreadyExists("child"));
            }
            if linked.len() >= MAX_CHILDREN {
                return Err(AppError::TooMany {
                    what: "children",
                    limit: MAX_CHILDREN,
                });
            }
            let existing = self.store.child(&id).await?;
            if let Some(other) = &existing {
                // The second parent names the same child, or it is not the same child.
                let same = other.child.last_name == child.last_name
                    && other.child.first_name == child.first_name
                    && other.child.birth_date == child.birth_date;
                if !same {
                    return Err(AppError::ChildMismatch);
                }
            }
            match self
                .store
                .link_child(
                    account_id,
                    &id,
                    child,
                    existing.as_ref().map(|c| c.version),
                    now.unix_timestamp(),
                )
                .await?
            {
                Ok(()) => {
                    self.synced(&[account_id.to_string()]).await;
                    return self.child(account_id, &id).await;
                }
                Err(LinkRefusal::AlreadyLinked) => return Err(AppError::AlreadyExists("child")),
                Err(LinkRefusal::Stale) => continue,
            }
        }
        Err(AppError::StoreUnavailable(
            "the child record kept changing".into(),
        ))
    }

    pub async fn update_child(
        &self,
        account_id: &str,
        id: &str,
        if_match: u64,
        body: &Map<String, Value>,
    ) -> Result<StoredChild, AppError> {
        let current = self.child(account_id, id).await?;
        if current.version != if_match {
            return Err(AppError::VersionMismatch {
                current: current.version,
            });
        }
        let next = current.child.patched(body)?;
        if !self
            .store
            .update_child(account_id, id, &next, current.version)
            .await?
        {
            let now = self.child(account_id, id).await?;
            return Err(AppError::VersionMismatch {
                current: now.version,
            });
        }
        let updated = self.child(account_id, id).await?;
        // The child's SNILS finds bills for every parent.
        self.synced(&updated.parents).await;
        Ok(updated)
    }

    pub async fn remove_child(&self, account_id: &str, id: &str) -> Result<(), AppError> {
        if self.store.unlink_child(account_id, id).await? {
            self.synced(&[account_id.to_string()]).await;
            Ok(())
        } else {
            Err(AppError::NotFound("child"))
        }
    }

    pub async fn vehicles(&self, account_id: &str) -> Result<Vec<StoredVehicle>, AppError> {
        Ok(self.store.vehicles(account_id).await?)
    }

    pub async fn vehicle(&self, account_id: &str, id: &str) -> Result<StoredVehicle, AppError> {
        self.store
            .vehicles(account_id)
            .await?
            .into_iter()
            .find(|v| v.id == id)
            .ok_or(AppError::NotFound("vehicle"))
    }

    pub async fn add_vehicle(
        &self,
        account_id: &str,
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
            id: self.hasher.digest("vehicle", &[account_id, &vehicle.sts]),
            vehicle,
            created_at: now.unix_timestamp(),
        };
        if !self.store.put_vehicle(account_id, &stored).await? {
            return Err(AppError::AlreadyExists("vehicle"));
        }
        self.synced(&[account_id.to_string()]).await;
        Ok(stored)
    }

    pub async fn update_vehicle(
        &self,
        account_id: &str,
        id: &str,
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

    pub async fn remove_vehicle(&self, account_id: &str, id: &str) -> Result<(), AppError> {
        if self.store.delete_vehicle(account_id, id).await? {
            self.synced(&[account_id.to_string()]).await;
            Ok(())
        } else {
            Err(AppError::NotFound("vehicle"))
        }
    }
}
