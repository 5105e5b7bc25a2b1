//! The holder index: for every identifier a citizen's bills are found by (verified own
//! documents, children's, vehicles'), an item (`HOLDER#{payer key}`) naming the account,
//! kept in step after each change of the profile's verified documents, the children and
//! the vehicles. It is a hint: before anything is sent the account's identifiers are read
//! again (see [`holdings_of`]), so a stale entry never tells anyone about a bill that is
//! not theirs; it only can miss a notice until the next change re-syncs it.

use std::collections::{BTreeMap, BTreeSet};

use crate::crypto::Hasher;
use crate::domain::{payer_key, AccountId, ChildId, Payer, PayerKind, VehicleId};
use crate::error::AppError;
use crate::services::household::{HouseholdStore, LinkState, SnilsCheck};
use crate::services::identity::StoredAccount;
use crate::services::notices::NoticeStore;
use crate::services::profile::ProfileStore;
use crate::services::StoreError;

/// Whose identifier found a bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Own,
    Child {
        id: ChildId,
        first_name: String,
    },
    Vehicle {
        id: VehicleId,
        plate: String,
    },
    /// Saved by the citizen by its UIN.
    Saved,
    /// Named by the organisation's identifiers (INN and KPP, or a sole trader's INN).
    Organisation,
}

/// An account and the identifiers whose bills it sees, each with whose it is (own
/// documents once a registry verified them, children's, vehicles'); `None`: no account.
pub async fn holdings_of<S>(
    store: &S,
    account_id: &AccountId,
) -> Result<Option<(StoredAccount, Vec<(Payer, Holder)>)>, AppError>
where
    S: ProfileStore + HouseholdStore + Sync,
{
    let Some((account, stored)) = store.load_profile(account_id).await? else {
        return Ok(None);
    };
    let profile = &stored.profile;
    let mut ids = Vec::new();
    // Own documents only once a registry confirmed them: a typed-in SNILS of somebody
    // else must not show that person's bills.
    let d = &profile.documents;
    let own = [
        ("snils", PayerKind::Snils, d.snils.clone()),
        (
            "passport",
            PayerKind::Passport,
            d.passport
                .as_ref()
                .map(|p| format!("{}{}", p.series, p.number)),
        ),
        ("inn", PayerKind::Inn, d.inn.clone()),
    ];
    for (document, kind, value) in own {
        if let Some(value) = value.filter(|_| profile.is_verified(document)) {
            ids.push((Payer { kind, value }, Holder::Own));
        }
    }
    // Children only through links the civil registry confirmed, and a child's SNILS only
    // once the birth record confirmed it: a typed-in certificate or SNILS finds nothing.
    let links: Vec<ChildId> = store
        .child_links(account_id)
        .await?
        .into_iter()
        .filter(|l| l.state == LinkState::Verified)
        .map(|l| l.id)
        .collect();
    if !links.is_empty() {
        let children = store.children(&links).await?;
        for child in children
            .iter()
            .filter(|c| c.verified_parents.iter().any(|p| p == account_id))
        {
            let holder = Holder::Child {
                id: child.id.clone(),
                first_name: child.child.first_name.clone(),
            };
            ids.push((
                Payer {
                    kind: PayerKind::BirthCertificate,
                    value: child.child.birth_certificate.clone(),
                },
                holder.clone(),
            ));
            if let (Some(snils), SnilsCheck::Verified) = (&child.child.snils, &child.snils) {
                ids.push((
                    Payer {
                        kind: PayerKind::Snils,
                        value: snils.clone(),
                    },
                    holder,
                ));
            }
        }
    }
    for vehicle in store.vehicles(account_id).await? {
        ids.push((
            Payer {
                kind: PayerKind::Sts,
                value: vehicle.vehicle.sts.clone(),
            },
            Holder::Vehicle {
                id: vehicle.id.clone(),
                plate: vehicle.vehicle.plate.clone(),
            },
        ));
    }
    Ok(Some((account, ids)))
}

/// Brings the holder index entries of one account in line with what identifies its bills.
pub async fn sync_account<S>(
    store: &S,
    hasher: &Hasher,
    account_id: &AccountId,
) -> Result<(), AppError>
where
    S: ProfileStore + HouseholdStore + NoticeStore + Sync,
{
    let wanted: BTreeSet<String> = match holdings_of(store, account_id).await? {
        Some((_, ids)) => ids
            .iter()
            .map(|(payer, _)| payer_key(hasher, payer))
            .collect(),
        None => BTreeSet::new(),
    };
    let held: BTreeSet<String> = store.holdings(account_id).await?.into_iter().collect();
    let add: Vec<String> = wanted.difference(&held).cloned().collect();
    let remove: Vec<String> = held.difference(&wanted).cloned().collect();
    if !add.is_empty() || !remove.is_empty() {
        store.change_holdings(account_id, &add, &remove).await?;
    }
    Ok(())
}

/// What a full read of the holder index found of one account, by payer key: whether the
/// entry under the payer key (`HOLDER#`) and its mirror under the account (`HOLDS#`) exist.
pub type FoundEntries = BTreeMap<String, (bool, bool)>;

/// Everything the holder index holds, by account: what a repair starts from.
#[trait_variant::make(Send)]
pub trait HolderIndexScan {
    /// Accounts with a profile, each with the index entries found for it, and the index
    /// entries of accounts without one. A full read of the table: for repairs only.
    async fn scan_holder_index(&self) -> Result<BTreeMap<AccountId, FoundEntries>, StoreError>;
}

/// What a repair of the holder index changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexRepair {
    pub accounts: usize,
    /// Entries written (missing, or with a half missing).
    pub added: usize,
    /// Entries that named an account for an identifier it no longer holds.
    pub removed: usize,
}

/// Rebuilds the holder index from the profiles (verified own documents), the verified
/// children and the vehicles: every entry that should be there is written whole, every
/// other entry removed. Repeating it changes nothing.
pub async fn repair_holder_index<S>(store: &S, hasher: &Hasher) -> Result<IndexRepair, AppError>
where
    S: ProfileStore + HouseholdStore + NoticeStore + HolderIndexScan + Sync,
{
    let mut repair = IndexRepair::default();
    for (account_id, found) in store.scan_holder_index().await? {
        repair.accounts += 1;
        let wanted: BTreeSet<String> = match holdings_of(store, &account_id).await? {
            Some((_, ids)) => ids
                .iter()
                .map(|(payer, _)| payer_key(hasher, payer))
                .collect(),
            None => BTreeSet::new(),
        };
        let add: Vec<String> = wanted
            .iter()
            .filter(|k| found.get(*k) != Some(&(true, true)))
            .cloned()
            .collect();
        let remove: Vec<String> = found
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            store.change_holdings(&account_id, &add, &remove).await?;
            tracing::info!(account_id = %account_id, added = add.len(), removed = remove.len(), "holder index repaired");
        }
        repair.added += add.len();
        repair.removed += remove.len();
    }
    Ok(repair)
}

/// Syncs the holder index of accounts after a change to what identifies them (verified
/// documents, children, vehicles). Best effort: the change itself is done and stays
/// done; a failure is logged, and the account's next change syncs again.
pub async fn sync_holdings<S>(store: &S, hasher: &Hasher, account_ids: &[AccountId])
where
    S: ProfileStore + HouseholdStore + NoticeStore + Sync,
{
    for account_id in account_ids {
        if let Err(e) = sync_account(store, hasher, account_id).await {
            tracing::warn!(account_id = %account_id, error = %e, "holder index not synced; the next change retries");
        }
    }
}
