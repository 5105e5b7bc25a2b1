//! A citizen's bills: found from the identifiers of the profile (only those a registry
//! verified), of the children and of the vehicles, one indexed query per identifier run
//! concurrently, plus the bills the citizen saved by UIN. An organisation's bills are found
//! the same way from its INN and KPP (a sole trader's INN), for its members. An unpaid bill whose biller was
//! revoked is shown as withdrawn (not payable), with one read of the billers per page.

use std::collections::BTreeMap;

use futures_util::future::try_join_all;
use time::Date;

use crate::domain::{
    AccountId, Category, OrgAction, OrganisationId, Payer, PayerKind, Uin, VehicleCertificate,
};
use crate::error::AppError;
use crate::services::charges::{ChargeService, ChargeStatus, ChargeStore, StoredCharge};
use crate::services::household::holdings::{holdings_of, Holder};
use crate::services::household::HouseholdStore;
use crate::services::organisations::{acting_role, OrgStatus, OrganisationStore};
use crate::services::profile::ProfileStore;
use crate::services::{Cap, CappedAdd, StoreError};

/// Bills one page carries at most.
pub const MAX_PAGE: usize = 100;
/// Bills one citizen may keep saved.
pub const MAX_SAVED: usize = 200;

/// A UIN a store reads back from a key or an index item. Only parsed UINs are ever
/// written, so one that does not parse is a corrupt item, never a bill to skip.
pub(crate) fn stored_uin(raw: &str) -> Result<Uin, StoreError> {
    Uin::parse("uin", raw).map_err(|e| StoreError::Corrupt(format!("stored UIN: {}", e.code)))
}

/// How many bills one account may look up per fixed window. Every route that tells of
/// a bill by its UIN or СТС counts: a lookup by UIN, fines by СТС, saving a bill, and
/// each bill of a payment a citizen opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupLimit {
    pub per_window: u32,
    pub window_secs: i64,
}

/// Lookups to add to an account's count in one window (`[window_start, window_end)`,
/// Unix seconds), if the count stays within `limit`: what [`LookupLimit::count`] asks
/// the store for, in one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupsToCount {
    pub window_start: i64,
    pub window_end: i64,
    pub n: u32,
    pub limit: u32,
}

/// The table's count of each account's lookups per window.
#[trait_variant::make(Send)]
pub trait LookupStore {
    /// Adds the lookups to the account's count in their window, in one conditional
    /// write; `false`: the count would pass the limit, and nothing was counted.
    async fn count_lookups(
        &self,
        account_id: &AccountId,
        lookups: LookupsToCount,
    ) -> Result<bool, StoreError>;
}

impl LookupLimit {
    /// Counts `n` lookups of the account at `now` (Unix seconds), before anything is
    /// read; over the limit, says how long until the window ends.
    pub async fn count<S: LookupStore + Sync>(
        &self,
        store: &S,
        account_id: &AccountId,
        n: usize,
        now: i64,
    ) -> Result<(), AppError> {
        let window = self.window_secs.max(1);
        let start = now - now.rem_euclid(window);
        let end = start + window;
        let refused = || AppError::LookupRateLimited {
            retry_after_secs: u64::try_from(end - now).unwrap_or(1).max(1),
        };
        let n = u32::try_from(n).map_err(|_| refused())?;
        if n > self.per_window {
            return Err(refused());
        }
        let lookups = LookupsToCount {
            window_start: start,
            window_end: end,
            n,
            limit: self.per_window,
        };
        if store.count_lookups(account_id, lookups).await? {
            Ok(())
        } else {
            Err(refused())
        }
    }
}

/// A bill on the citizen's list, with what found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedBill {
    pub charge: StoredCharge,
    pub matched: Vec<(Option<PayerKind>, Holder)>,
}

#[trait_variant::make(Send)]
pub trait BillStore {
    /// UINs of the charges that name a payer identifier (its index key).
    async fn charges_of_payer(&self, payer_key: &str) -> Result<Vec<Uin>, StoreError>;

    async fn charges(&self, uins: &[Uin]) -> Result<Vec<StoredCharge>, StoreError>;

    async fn saved_bills(&self, account_id: &AccountId) -> Result<Vec<Uin>, StoreError>;

    /// Saves a bill if the account stays within `cap`; a bill saved already is left as
    /// it is.
    async fn save_bill(&self, bill: BillToSave<'_>, cap: Cap) -> Result<CappedAdd, StoreError>;

    async fn forget_bill(&self, account_id: &AccountId, uin: &Uin) -> Result<bool, StoreError>;
}

/// A bill a citizen keeps on their list, as the store takes it: whose list, which bill
/// and when (Unix seconds). One value, so that the service, the store and its double
/// name the save's parts the same way.
#[derive(Debug, Clone, Copy)]
pub struct BillToSave<'a> {
    pub account_id: &'a AccountId,
    pub uin: &'a Uin,
    pub saved_at: i64,
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct BillFilter {
    pub category: Option<Category>,
    /// `None`: unpaid only.
    pub status: Option<ChargeStatus>,
    /// The last UIN of the previous page.
    pub after: Option<Uin>,
    pub limit: usize,
}

pub struct BillService<'a, S> {
    store: &'a S,
    charges: &'a ChargeService<S>,
}

impl<'a, S> BillService<'a, S>
where
    S: BillStore + ChargeStore + ProfileStore + HouseholdStore + Sync,
{
    pub fn new(store: &'a S, charges: &'a ChargeService<S>) -> Self {
        Self { store, charges }
    }

    /// The identifiers whose bills the citizen sees, each with whose it is.
    pub async fn identifiers(
        &self,
        account_id: &AccountId,
    ) -> Result<Vec<(Payer, Holder)>, AppError> {
        holdings_of(self.store, account_id)
            .await?
            .map(|(_, ids)| ids)
            .ok_or(AppError::Unauthenticated)
    }

    /// The citizen's bills, newest due date last, a page at a time.
    pub async fn list(
        &self,
        account_id: &AccountId,
        filter: &BillFilter,
    ) -> Result<Vec<ListedBill>, AppError> {
        let ids = self.identifiers(account_id).await?;
        let saved = self.store.saved_bills(account_id).await?;
        self.found(&ids, saved, filter).await
    }

    /// The bills that name any of `ids`, or are `saved` by UIN, as `filter` asks.
    async fn found(
        &self,
        ids: &[(Payer, Holder)],
        saved: Vec<Uin>,
        filter: &BillFilter,
    ) -> Result<Vec<ListedBill>, AppError> {
        // One query per identifier, all at once.
        let found = try_join_all(ids.iter().map(|(payer, _)| {
            let key = self.charges.payer_key(payer);
            async move { self.store.charges_of_payer(&key).await }
        }))
        .await?;
        // What found each UIN, and each UIN once, for the read.
        let mut matched: BTreeMap<String, Vec<(Option<PayerKind>, Holder)>> = BTreeMap::new();
        let mut uins: Vec<Uin> = Vec::new();
        let mut note = |uin: Uin, found_by: (Option<PayerKind>, Holder)| {
            let found = matched.entry(uin.as_str().to_string()).or_default();
            if found.is_empty() {
                uins.push(uin);
            }
            found.push(found_by);
        };
        for ((payer, holder), found) in ids.iter().zip(found) {
            for uin in found {
                note(uin, (Some(payer.kind), holder.clone()));
            }
        }
        for uin in saved {
            note(uin, (None, Holder::Saved));
        }
        let charges = if uins.is_empty() {
            Vec::new()
        } else {
            self.store.charges(&uins).await?
        };
        let wanted = filter.status.unwrap_or(ChargeStatus::Unpaid);
        let mut bills: Vec<ListedBill> = charges
            .into_iter()
            .filter(|c| c.status == wanted)
            .filter(|c| filter.category.is_none_or(|cat| c.body.category == cat))
            .map(|c| ListedBill {
                matched: matched.remove(c.uin.as_str()).unwrap_or_default(),
                charge: c,
            })
            .collect();
        // A stable order: by UIN, so a cursor is just the last UIN seen.
        bills.sort_by(|a, b| a.charge.uin.as_str().cmp(b.charge.uin.as_str()));
        if let Some(after) = &filter.after {
            bills.retain(|b| b.charge.uin.as_str() > after.as_str());
        }
        bills.truncate(filter.limit.clamp(1, MAX_PAGE));
        // Shown, not hidden, when their biller was revoked: the citizen sees why the bill
        // cannot be paid instead of a bill that vanished.
        self.charges
            .mark_withdrawn(bills.iter_mut().map(|b| &mut b.charge))
            .await?;
        Ok(bills)
    }

    /// Keeps a bill looked up by UIN on the citizen's list.
    pub async fn save(
        &self,
        account_id: &AccountId,
        uin: &Uin,
        now: i64,
    ) -> Result<StoredCharge, AppError> {
        let bill = self.charges.lookup(uin).await?;
        let saved = self.store.saved_bills(account_id).await?;
        if saved.iter().any(|u| u == uin) {
            return Ok(bill);
        }
        let cap = Cap {
            limit: MAX_SAVED,
            seen: saved.len(),
        };
        let bill_to_save = BillToSave {
            account_id,
            uin,
            saved_at: now,
        };
        match self.store.save_bill(bill_to_save, cap).await? {
            CappedAdd::Added | CappedAdd::AlreadyThere => Ok(bill),
            CappedAdd::Full => Err(AppError::TooMany {
                what: "saved bills",
                limit: MAX_SAVED,
            }),
        }
    }

    pub async fn forget(&self, account_id: &AccountId, uin: &Uin) -> Result<(), AppError> {
        if self.store.forget_bill(account_id, uin).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("bill"))
        }
    }

    /// Unpaid fines of any vehicle certificate, in the profile or not.
    pub async fn fines(&self, sts: &VehicleCertificate) -> Result<Vec<StoredCharge>, AppError> {
        let key = self.charges.payer_key(&Payer {
            kind: PayerKind::Sts,
            value: sts.as_str().to_string(),
        });
        let uins = self.store.charges_of_payer(&key).await?;
        if uins.is_empty() {
            return Ok(Vec::new());
        }
        let mut fines: Vec<StoredCharge> = self
            .store
            .charges(&uins)
            .await?
            .into_iter()
            .filter(|c| c.status == ChargeStatus::Unpaid && c.body.category == Category::Fines)
            .collect();
        fines.sort_by(|a, b| a.uin.as_str().cmp(b.uin.as_str()));
        self.charges.mark_withdrawn(fines.iter_mut()).await?;
        Ok(fines)
    }
}

impl<S> BillService<'_, S>
where
    S: BillStore + ChargeStore + ProfileStore + HouseholdStore + OrganisationStore + Sync,
{
    /// An organisation's bills, for a member acting for it (every role may see them):
    /// those naming its INN and KPP, or a sole trader's INN. The membership the
    /// authorizer read is read again here; a caller who is no active member is told
    /// the organisation is not found.
    pub async fn list_for_organisation(
        &self,
        organisation_id: &OrganisationId,
        account_id: &AccountId,
        filter: &BillFilter,
    ) -> Result<Vec<ListedBill>, AppError> {
        let role = acting_role(self.store, organisation_id, account_id)
            .await?
            .ok_or(AppError::NotFound("organisation"))?;
        if !role.may(OrgAction::See) {
            return Err(AppError::RoleForbids);
        }
        let organisation = self
            .store
            .organisation(organisation_id)
            .await?
            .filter(|o| o.status == OrgStatus::Registered)
            .ok_or(AppError::NotFound("organisation"))?;
        let ids = [(organisation.identity.payer(), Holder::Organisation)];
        self.found(&ids, Vec::new(), filter).await
    }
}

/// Days of a discount left on `today`, for the list.
pub fn discount_days_left(charge: &StoredCharge, today: Date) -> Option<i64> {
    let until = crate::json::parse_date("", &charge.body.discount.as_ref()?.until).ok()?;
    let days = (until - today).whole_days();
    (days >= 0).then_some(days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemStore;

    fn retry_after(result: Result<(), AppError>) -> u64 {
        match result {
            Err(AppError::LookupRateLimited { retry_after_secs }) => retry_after_secs,
            other => panic!("expected lookup_rate_limited, got {other:?}"),
        }
    }

    /// Three lookups per ten minutes: both tests count against it.
    const LIMIT: LookupLimit = LookupLimit {
        per_window: 3,
        window_secs: 600,
    };

    #[tokio::test]
    async fn lookups_count_in_fixed_windows_until_the_limit() {
        let limit = LIMIT;
        let store = MemStore::new();
        // 1_800_000_000 is a multiple of 600: a window starts there.
        let now = 1_800_000_100;
        limit.count(&store, &"a".into(), 2, now).await.unwrap();
        limit.count(&store, &"a".into(), 1, now).await.unwrap();
        assert_eq!(
            retry_after(limit.count(&store, &"a".into(), 1, now).await),
            500
        );
        assert_eq!(
            store.state().lookups_asked[0],
            (1_800_000_000, 1_800_000_600, 2)
        );
    }

    #[test]
    fn a_stored_uin_that_does_not_parse_is_corrupt() {
        assert_eq!(
            stored_uin("18810177220000000015").unwrap().as_str(),
            "18810177220000000015"
        );
        assert!(matches!(
            stored_uin("CHARGE#1881"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn more_lookups_than_a_window_holds_are_refused_without_a_write() {
        let limit = LIMIT;
        let store = MemStore::new();
        assert_eq!(
            retry_after(limit.count(&store, &"a".into(), 4, 1_800_000_599).await),
            1
        );
        assert!(store.state().lookups_asked.is_empty());
    }
}
