//! Payments, bills, charges, runs and autopays (the queues they feed are in the
//! parent module).

use std::collections::btree_map::Entry;
use std::collections::BTreeSet;

use super::{listed, MemStore};
use crate::domain::{AccountId, BillerId, MethodId, Owner, PaymentId, TemplateId, Uin};
use crate::services::autopays::{
    Autopay, AutopayStore, SchedulePage, SchedulePageOf, SkippedBill, Trigger, SCHEDULE_SHARDS,
};
use crate::services::bills::{stored_uin, BillStore, BillToSave, LookupStore, LookupsToCount};
use crate::services::charges::{
    BillHold, Biller, ChargeStatus, ChargeStore, ChargeWrite, ChargeWriteRefusal, StoredCharge,
};
use crate::services::identity::StoredAccount;
use crate::services::organisations::AuditEntry;
use crate::services::payments::{
    paid_audit, HoldCount, OpenPaymentsPage, OpenRefusal, Payment, PaymentOpening, PaymentStatus,
    PaymentStore, ReconcilePage, SavedMethod, Template, RECONCILE_SHARDS,
};
use crate::services::runs::{Run, RunStore, Shard};
use crate::services::{Cap, CappedAdd, StoreError};

/// Adds `item` to a capped list unless one `same` is there or the list is full.
fn add_capped<T>(list: &mut Vec<T>, item: T, same: impl Fn(&T) -> bool, cap: Cap) -> CappedAdd {
    if list.iter().any(same) {
        CappedAdd::AlreadyThere
    } else if list.len() >= cap.limit {
        CappedAdd::Full
    } else {
        list.push(item);
        CappedAdd::Added
    }
}

/// Removes the items `gone` picks; whether there was any.
fn remove_all<T>(list: &mut Vec<T>, gone: impl Fn(&T) -> bool) -> bool {
    let before = list.len();
    list.retain(|x| !gone(x));
    list.len() < before
}

/// A page of an index of (sort key, whose, id): the entries after `after` in key
/// order, at most `limit`, and the last key when the page is full, as DynamoDB's
/// `LastEvaluatedKey`; `page` makes the trait's page type of them.
fn index_page<W: Ord, I: Ord, P>(
    entries: impl IntoIterator<Item = (String, W, I)>,
    after: Option<&str>,
    limit: usize,
    page: impl FnOnce(Vec<(W, I)>, Option<String>) -> P,
) -> P {
    let mut entries: Vec<_> = entries
        .into_iter()
        .filter(|(key, _, _)| after.is_none_or(|a| key.as_str() > a))
        .collect();
    entries.sort();
    entries.truncate(limit);
    let next = match entries.last() {
        Some((key, _, _)) if entries.len() == limit => Some(key.clone()),
        _ => None,
    };
    let entries = entries
        .into_iter()
        .map(|(_, account, id)| (account, id))
        .collect();
    page(entries, next)
}

impl MemStore {
    /// The stored charges under these UINs, in the order asked, as the operation `op`
    /// (what a script fails): a citizen's bills and a biller's batch read them alike.
    async fn charges_at(
        &self,
        op: &'static str,
        uins: &[Uin],
    ) -> Result<Vec<StoredCharge>, StoreError> {
        let uins: Vec<String> = uins.iter().map(|u| u.as_str().to_string()).collect();
        self.read(op, |state| state.charges_of(&uins)).await
    }
}

/// An organisation's audit entry, written with the change it tells of.
fn audited(state: &mut super::State, owner: &Owner, audit: Option<&AuditEntry>) {
    if let (Owner::Organisation(org), Some(entry)) = (owner, audit) {
        state
            .orgs
            .audit
            .entry(org.clone())
            .or_default()
            .push(entry.clone());
    }
}

/// The sort key of a reconciliation entry: oldest first.
fn reconcile_sort_key(created_at: i64, id: &str) -> String {
    format!("{created_at:012}#{id}")
}

impl PaymentStore for MemStore {
    async fn bill_payment(&self, uin: &Uin) -> Result<Option<PaymentId>, StoreError> {
        let uin = uin.as_str();
        self.read("bill_payment", |state| {
            state
                .charges
                .get(uin)
                .and_then(|c| c.locked_by.clone())
                .or_else(|| state.paid_by.get(uin).cloned())
        })
        .await
    }

    async fn idempotency(&self, key_hash: &str) -> Result<Option<(PaymentId, String)>, StoreError> {
        self.read("idempotency", |state| {
            state.idempotency.get(key_hash).cloned()
        })
        .await
    }

    async fn payment(&self, owner: &Owner, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        self.read("payment", |state| {
            state.payments.get(&(owner.clone(), id.clone())).cloned()
        })
        .await
    }

    async fn hold_count(&self, owner: &Owner) -> Result<HoldCount, StoreError> {
        self.read("hold_count", |state| {
            state.hold_counts.get(owner).cloned().unwrap_or_default()
        })
        .await
    }

    /// One transaction: refused (in the adapter's order) when the key is taken, a
    /// biller revoked, the hold count moved, or a bill is not unpaid, free and at the
    /// version read. `Conflict` refuses it as a bill that changed. Keys do not expire
    /// here (the tests' payments are minutes apart).
    async fn open_payment(
        &self,
        opening: PaymentOpening<'_>,
    ) -> Result<Result<(), OpenRefusal>, StoreError> {
        let (payment, holds) = (opening.payment, opening.holds);
        let (key_hash, bill_versions) = (opening.key_hash, opening.bill_versions);
        self.transact("open_payment", OpenRefusal::BillChanged, |state| {
            if state.idempotency.contains_key(key_hash) {
                return Err(OpenRefusal::KeyTaken);
            }
            for bill in &payment.bills {
                if !state.billers.contains(&bill.biller_id)
                    || state.revoked_billers.contains(&bill.biller_id)
                {
                    return Err(OpenRefusal::BillerRevoked(bill.biller_id.clone()));
                }
            }
            let current = state
                .hold_counts
                .get(&payment.owner())
                .map(|h| h.version)
                .unwrap_or(0);
            if current != holds.version {
                return Err(OpenRefusal::HoldsChanged);
            }
            for (uin, version) in bill_versions {
                let free = state.charges.get(uin.as_str()).is_some_and(|c| {
                    c.status == ChargeStatus::Unpaid
                        && c.locked_by.is_none()
                        && c.version == *version
                });
                if !free {
                    return Err(OpenRefusal::BillChanged);
                }
            }
            state.idempotency.insert(
                key_hash.to_string(),
                (payment.id.clone(), payment.request_hash.clone()),
            );
            state
                .payments
                .insert((payment.owner(), payment.id.clone()), payment.clone());
            state
                .reconcile
                .insert(payment.id.clone(), (payment.owner(), payment.created_at));
            state.hold_counts.insert(
                payment.owner(),
                HoldCount {
                    version: holds.version + 1,
                    holds: holds.holds.clone(),
                },
            );
            let until = payment.hold_until.unwrap_or(payment.created_at);
            for (uin, _) in bill_versions {
                if let Some(charge) = state.charges.get_mut(uin.as_str()) {
                    charge.locked_by = Some(payment.id.clone());
                    charge.hold = Some(BillHold {
                        owner: payment.owner(),
                        until,
                    });
                    charge.version += 1;
                }
            }
            Ok(())
        })
        .await
    }

    async fn mark(&self, payment: &Payment, from: PaymentStatus) -> Result<bool, StoreError> {
        self.write_if("mark", |state| {
            let key = (payment.owner(), payment.id.clone());
            match state.payments.get_mut(&key) {
                Some(stored) if stored.status == from => {
                    *stored = payment.clone();
                    true
                }
                _ => false,
            }
        })
        .await
    }

    /// One transaction, on the payment still open and every bill still locked by it.
    async fn settle(&self, payment: &Payment) -> Result<bool, StoreError> {
        let settled = self.transact("settle", (), |state| {
            let key = (payment.owner(), payment.id.clone());
            let open = state
                .payments
                .get(&key)
                .is_some_and(|p| !p.status.is_final());
            let locked = payment.bills.iter().all(|b| {
                state
                    .charges
                    .get(b.uin.as_str())
                    .is_some_and(|c| c.locked_by.as_deref() == Some(payment.id.as_str()))
            });
            if !open || !locked {
                return Err(());
            }
            state.payments.insert(key, payment.clone());
            let paid = payment.status == PaymentStatus::Succeeded;
            for bill in &payment.bills {
                if let Some(charge) = state.charges.get_mut(bill.uin.as_str()) {
                    charge.locked_by = None;
                    charge.hold = None;
                    charge.version += 1;
                    if paid {
                        charge.status = ChargeStatus::Paid;
                    }
                }
                if paid {
                    state
                        .paid_by
                        .insert(bill.uin.as_str().to_string(), payment.id.clone());
                }
            }
            let count = state.hold_counts.entry(payment.owner()).or_default();
            count.holds.retain(|h| h.payment_id != payment.id);
            count.version += 1;
            if let (Some(org), Some(audit)) = (&payment.organisation_id, paid_audit(payment)) {
                state.orgs.audit.entry(org.clone()).or_default().push(audit);
            }
            Ok(())
        });
        Ok(settled.await?.is_ok())
    }

    async fn close_reconciliation(&self, payment: &Payment) -> Result<(), StoreError> {
        self.write("close_reconciliation", |state| {
            state.reconcile.remove(&payment.id);
        })
        .await
    }

    async fn open_payments(
        &self,
        page: &ReconcilePage,
        limit: usize,
    ) -> Result<OpenPaymentsPage, StoreError> {
        let (shard, before) = (page.shard, page.before);
        self.read("open_payments", |state| {
            let entries = state
                .reconcile
                .iter()
                .filter(|(id, (_, created))| {
                    *created < before && Shard::of(id, RECONCILE_SHARDS) == shard
                })
                .map(|(id, (owner, created))| {
                    (reconcile_sort_key(*created, id), owner.clone(), id.clone())
                });
            index_page(entries, page.after.as_deref(), limit, |entries, next| {
                OpenPaymentsPage { entries, next }
            })
        })
        .await
    }

    async fn owner_payments(
        &self,
        owner: &Owner,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Payment>, StoreError> {
        let mut found: Vec<Payment> = self
            .read("owner_payments", |state| {
                state
                    .payments
                    .values()
                    .filter(|p| p.owner() == *owner)
                    .filter(|p| (from_ms..to_ms).contains(&(p.created_at * 1000)))
                    .cloned()
                    .collect()
            })
            .await?;
        found.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(found)
    }

    async fn account(&self, account_id: &AccountId) -> Result<Option<StoredAccount>, StoreError> {
        self.read("account", |state| state.accounts.get(account_id).cloned())
            .await
    }

    async fn methods(&self, owner: &Owner) -> Result<Vec<SavedMethod>, StoreError> {
        self.read("methods", |state| {
            state.methods.get(owner).cloned().unwrap_or_default()
        })
        .await
    }

    async fn put_method(
        &self,
        owner: &Owner,
        method: &SavedMethod,
        cap: Cap,
        audit: Option<&AuditEntry>,
    ) -> Result<CappedAdd, StoreError> {
        self.write("put_method", |state| {
            let added = add_capped(
                state.methods.entry(owner.clone()).or_default(),
                method.clone(),
                |m| m.id == method.id,
                cap,
            );
            if added == CappedAdd::Added {
                audited(state, owner, audit);
            }
            added
        })
        .await
    }

    async fn delete_method(
        &self,
        owner: &Owner,
        id: &MethodId,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError> {
        self.write("delete_method", |state| {
            let removed = remove_all(state.methods.entry(owner.clone()).or_default(), |m| {
                m.id == *id
            });
            if removed {
                audited(state, owner, audit);
            }
            removed
        })
        .await
    }

    unmodelled! {
        finds nothing {
            fn templates(&self, _owner: &Owner) -> Vec<Template>;
        }
        refused {
            fn put_template(&self, _owner: &Owner, _template: &Template, _cap: Cap, _audit: Option<&AuditEntry>) -> CappedAdd;
            fn delete_template(&self, _owner: &Owner, _id: &TemplateId, _audit: Option<&AuditEntry>) -> bool;
        }
    }
}

impl BillStore for MemStore {
    async fn charges_of_payer(&self, payer_key: &str) -> Result<Vec<Uin>, StoreError> {
        let uins: Vec<String> = self
            .read("charges_of_payer", |state| {
                listed(&state.payer_index, payer_key)
            })
            .await?;
        uins.iter().map(|uin| stored_uin(uin)).collect()
    }

    async fn charges(&self, uins: &[Uin]) -> Result<Vec<StoredCharge>, StoreError> {
        self.charges_at("charges", uins).await
    }

    async fn saved_bills(&self, account_id: &AccountId) -> Result<Vec<Uin>, StoreError> {
        self.read("saved_bills", |state| {
            state
                .saved_bills
                .get(account_id)
                .cloned()
                .unwrap_or_default()
        })
        .await
    }

    async fn save_bill(&self, bill: BillToSave<'_>, cap: Cap) -> Result<CappedAdd, StoreError> {
        self.write("save_bill", |state| {
            add_capped(
                state
                    .saved_bills
                    .entry(bill.account_id.clone())
                    .or_default(),
                bill.uin.clone(),
                |u| u == bill.uin,
                cap,
            )
        })
        .await
    }

    async fn forget_bill(&self, account_id: &AccountId, uin: &Uin) -> Result<bool, StoreError> {
        self.write("forget_bill", |state| {
            remove_all(
                state.saved_bills.entry(account_id.clone()).or_default(),
                |u| u == uin,
            )
        })
        .await
    }
}

/// Counts per account and window, as the table's conditional counter does.
impl LookupStore for MemStore {
    async fn count_lookups(
        &self,
        account_id: &AccountId,
        lookups: LookupsToCount,
    ) -> Result<bool, StoreError> {
        let LookupsToCount {
            window_start,
            window_end,
            n,
            limit,
        } = lookups;
        self.write_if("count_lookups", |state| {
            state.lookups_asked.push((window_start, window_end, n));
            let count = state
                .lookups
                .entry((account_id.clone(), window_start))
                .or_insert(0);
            let counted = *count + n <= limit;
            if counted {
                *count += n;
            }
            counted
        })
        .await
    }
}

impl ChargeStore for MemStore {
    async fn charge(&self, uin: &Uin) -> Result<Option<StoredCharge>, StoreError> {
        self.read("charge", |state| state.charge(uin.as_str()).cloned())
            .await
    }

    async fn charges_by_uin(&self, uins: &[Uin]) -> Result<Vec<StoredCharge>, StoreError> {
        self.charges_at("charges_by_uin", uins).await
    }

    async fn put_charge(
        &self,
        write: ChargeWrite<'_>,
    ) -> Result<Result<(), ChargeWriteRefusal>, StoreError> {
        let charge = write.charge;
        let uin = charge.uin.as_str();
        self.transact("put_charge", ChargeWriteRefusal::Stale, |state| {
            let current = state.charges.get(uin).map(|c| c.version).unwrap_or(0);
            if current != write.expected {
                return Err(ChargeWriteRefusal::Stale);
            }
            state.charges.insert(uin.to_string(), charge.clone());
            for key in write.payer_keys {
                state
                    .payer_index
                    .entry(key.clone())
                    .or_default()
                    .insert(uin.to_string());
            }
            for key in write.dropped_payer_keys {
                if let Some(uins) = state.payer_index.get_mut(key) {
                    uins.remove(uin);
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_biller(
        &self,
        _key_hash: &str,
        biller: &Biller,
        _now: i64,
    ) -> Result<(), StoreError> {
        self.write("put_biller", |state| {
            state.billers.insert(biller.id.clone());
        })
        .await
    }

    unmodelled! {
        refused {
            fn biller_by_key(&self, _key_hash: &str) -> Option<Biller>;
        }
    }

    async fn revoke_biller(&self, id: &BillerId, _now: i64) -> Result<bool, StoreError> {
        self.write("revoke_biller", |state| {
            state.revoked_billers.insert(id.clone())
        })
        .await
    }

    async fn biller_by_id(&self, id: &BillerId) -> Result<Option<Biller>, StoreError> {
        let active = self
            .read("biller_by_id", |state| {
                state.billers.contains(id) && !state.revoked_billers.contains(id)
            })
            .await?;
        Ok(active.then(|| Biller {
            id: id.clone(),
            name: id.to_string(),
            registration: None,
        }))
    }

    async fn revoked_billers(&self, ids: &[BillerId]) -> Result<BTreeSet<BillerId>, StoreError> {
        self.read("revoked_billers", |state| {
            ids.iter()
                .filter(|id| !state.billers.contains(*id) || state.revoked_billers.contains(*id))
                .cloned()
                .collect()
        })
        .await
    }
}

impl RunStore for MemStore {
    async fn open_run(&self, run: Run<'_>, shards: usize, _now: i64) -> Result<(), StoreError> {
        self.write("open_run", |state| {
            state
                .runs
                .entry(run.id.to_string())
                .or_insert((shards, BTreeSet::new(), false));
        })
        .await
    }

    async fn finish_shard(&self, run: Run<'_>, shard: &str, _now: i64) -> Result<bool, StoreError> {
        self.write("finish_shard", |state| match state.runs.get_mut(run.id) {
            Some((shards, done, completed)) => {
                done.insert(shard.to_string());
                if done.len() >= *shards && !*completed {
                    *completed = true;
                    true
                } else {
                    false
                }
            }
            None => false,
        })
        .await
    }
}

/// The schedule index: an autopay is in the shard [`Shard::of`] its id, sorted by
/// `account#id`.
impl AutopayStore for MemStore {
    async fn autopays(&self, account_id: &AccountId) -> Result<Vec<Autopay>, StoreError> {
        self.read("autopays", |state| {
            state
                .autopays
                .values()
                .filter(|a| a.account_id == *account_id)
                .cloned()
                .collect()
        })
        .await
    }

    async fn create_autopay(&self, autopay: &Autopay, cap: Cap) -> Result<CappedAdd, StoreError> {
        self.write("create_autopay", |state| {
            let held = state
                .autopays
                .keys()
                .filter(|(account, _)| *account == autopay.account_id)
                .count();
            match state
                .autopays
                .entry((autopay.account_id.clone(), autopay.id.clone()))
            {
                Entry::Occupied(_) => CappedAdd::AlreadyThere,
                Entry::Vacant(_) if held >= cap.limit => CappedAdd::Full,
                Entry::Vacant(slot) => {
                    slot.insert(autopay.clone());
                    CappedAdd::Added
                }
            }
        })
        .await
    }

    async fn put_autopay(
        &self,
        autopay: &Autopay,
        _previous: Option<&Trigger>,
    ) -> Result<(), StoreError> {
        self.write("put_autopay", |state| {
            state.autopays.insert(
                (autopay.account_id.clone(), autopay.id.clone()),
                autopay.clone(),
            );
        })
        .await
    }

    async fn delete_autopay(&self, autopay: &Autopay) -> Result<(), StoreError> {
        self.write("delete_autopay", |state| {
            state
                .autopays
                .remove(&(autopay.account_id.clone(), autopay.id.clone()));
        })
        .await
    }

    async fn scheduled_autopays(
        &self,
        page: &SchedulePage,
        limit: usize,
    ) -> Result<SchedulePageOf, StoreError> {
        let (trigger, shard) = (&page.trigger, page.shard);
        self.read("scheduled_autopays", |state| {
            let entries = state
                .autopays
                .values()
                .filter(|a| a.trigger == *trigger && Shard::of(&a.id, SCHEDULE_SHARDS) == shard)
                .map(|a| {
                    let key = format!("{}#{}", a.account_id, a.id);
                    (key, a.account_id.clone(), a.id.clone())
                });
            index_page(entries, page.after.as_deref(), limit, |entries, next| {
                SchedulePageOf { entries, next }
            })
        })
        .await
    }

    async fn claim_skip_notice(
        &self,
        skip: SkippedBill<'_>,
        _now: i64,
    ) -> Result<bool, StoreError> {
        let marker = (
            skip.account_id.clone(),
            skip.autopay_id.clone(),
            skip.uin.as_str().to_string(),
        );
        self.write_if("claim_skip_notice", |state| {
            state.skip_notices.insert(marker)
        })
        .await
    }
}
