//! Payments (`ACCOUNT#{id}` / `PAYMENT#{payment id}`, an organisation's under `ORG#{id}`),
//! idempotency records (`IDEMPOTENCY#{keyed hash}`), reconciliation entries
//! (`RECONCILE#{shard}` / `{created, 12 digits}#{account id}#{payment id}`; before
//! sharding, `RECONCILE`), bill locks on the charge items, saved methods (`ACCOUNT#{id}` /
//! `METHOD#{id}`) and templates (`ACCOUNT#{id}` / `TEMPLATE#{id}`). Opening a payment also
//! checks that every bill's biller is still active; settling an organisation's payment
//! writes its `paid` audit entry.

use aws_sdk_dynamodb::types::{ConditionCheck, Put, TransactWriteItem};

use super::charges::{biller_item, charge_key};
use super::identity::{account_from, account_key};
use super::organisations::audit_item;
use super::*;
use crate::domain::Uin;
use crate::services::identity::StoredAccount;
use crate::services::organisations::AuditEntry;
use crate::services::payments::{
    paid_audit, HeldBills, HoldCount, OpenPaymentsPage, OpenRefusal, Payment, PaymentOpening,
    PaymentStatus, PaymentStore, ReconcilePage, SavedMethod, Template, RECONCILE_SHARDS,
};
use crate::services::runs::Shard;
use crate::services::{Cap, CappedAdd, StoreError};

/// The one partition of reconciliation entries written before sharding: still read,
/// and an entry in it is removed when its payment is done with.
const UNSHARDED_RECONCILE_PK: &str = "RECONCILE";

pub(super) fn reconcile_pk(shard: Shard) -> String {
    match shard {
        Shard::Unsharded => UNSHARDED_RECONCILE_PK.to_string(),
        Shard::Of(n) => format!("{UNSHARDED_RECONCILE_PK}#{n}"),
    }
}

fn payment_key(owner: &Owner, id: &str) -> Item {
    key(owner.partition_key(), &format!("PAYMENT#{id}"))
}

/// The owner's hold count: which of its payments hold how many bills, until when.
fn hold_count_key(owner: &Owner) -> Item {
    key(owner.partition_key(), "HELD_BILLS")
}

/// The owner a reconciliation entry or a bill's lock names: the organisation beside the
/// member who paid for it, else the citizen.
pub(super) fn owner_from(
    item: &Item,
    account: &str,
    organisation: &str,
) -> Result<Owner, StoreError> {
    match get_s(item, organisation) {
        Ok(org) => Ok(Owner::Organisation(parse_id(org)?)),
        Err(_) => Ok(Owner::Citizen(get_id(item, account)?)),
    }
}

/// How long a hold count outlives its last change: it only matters while a hold lasts.
const HOLD_COUNT_TTL_SECS: i64 = 24 * 3600;

fn idempotency_key(key_hash: &str) -> Item {
    key(format!("IDEMPOTENCY#{key_hash}"), "IDEMPOTENCY")
}

fn reconcile_key_in(shard: Shard, payment: &Payment) -> Item {
    key(
        reconcile_pk(shard),
        &format!(
            "{:012}#{}#{}",
            payment.created_at, payment.account_id, payment.id
        ),
    )
}

/// Where a payment's entry is written: its shard.
fn reconcile_key(payment: &Payment) -> Item {
    reconcile_key_in(Shard::of(&payment.id, RECONCILE_SHARDS), payment)
}

fn status_name(status: PaymentStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub(super) fn payment_item(payment: &Payment) -> Result<Item, StoreError> {
    let doc = to_doc(payment, "payment")?;
    let mut item = payment_key(&payment.owner(), &payment.id);
    item.extend([
        ("doc".into(), s(doc)),
        ("status".into(), s(status_name(payment.status))),
        ("created_at".into(), n(payment.created_at)),
    ]);
    Ok(item)
}

fn payment_from(item: &Item) -> Result<Payment, StoreError> {
    get_doc(item, "doc", "payment")
}

/// The payment's item, if its stored status is still one of `from`.
fn payment_put(
    table: &str,
    payment: &Payment,
    from: &[PaymentStatus],
) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .set_item(Some(payment_item(payment)?))
        .condition_expression(
            (0..from.len())
                .map(|i| format!("#status = :from{i}"))
                .collect::<Vec<_>>()
                .join(" OR "),
        )
        .expression_attribute_names("#status", "status");
    for (i, status) in from.iter().enumerate() {
        put = put.expression_attribute_values(format!(":from{i}"), s(status_name(*status)));
    }
    Ok(TransactWriteItem::builder()
        .put(build(put.build())?)
        .build())
}

/// An idempotency record put for a transaction, unless the key is taken: an expired
/// record not swept yet (its TTL at or before `now`) may be replaced.
pub(super) fn claim_key(
    table: &str,
    record: Item,
    now: i64,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(record))
        .condition_expression("attribute_not_exists(pk) OR #ttl <= :now")
        .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
        .expression_attribute_values(":now", n(now));
    Ok(TransactWriteItem::builder()
        .put(build(put.build())?)
        .build())
}

impl DynamoStore {
    /// The owner's hold count rewritten whole, if its version is still the one read.
    fn hold_count_put(
        &self,
        owner: &Owner,
        holds: &HoldCount,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut item = hold_count_key(owner);
        let last = holds.holds.iter().map(|h| h.until).max().unwrap_or(now);
        item.extend([
            ("version".into(), n(holds.version + 1)),
            (
                "holds".into(),
                AttributeValue::M(
                    holds
                        .holds
                        .iter()
                        .map(|h| {
                            (
                                h.payment_id.to_string(),
                                AttributeValue::M(
                                    [
                                        ("bills".to_string(), n(h.bills as u64)),
                                        ("until".to_string(), n(h.until)),
                                    ]
                                    .into(),
                                ),
                            )
                        })
                        .collect(),
                ),
            ),
            (TTL_ATTRIBUTE.into(), n(last.max(now) + HOLD_COUNT_TTL_SECS)),
        ]);
        let condition = if holds.version == 0 {
            "attribute_not_exists(pk) OR attribute_not_exists(version) OR version = :version"
        } else {
            "version = :version"
        };
        Ok(TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(condition)
                    .expression_attribute_values(":version", n(holds.version))
                    .build(),
            )?)
            .build())
    }
}

impl PaymentStore for DynamoStore {
    async fn bill_payment(&self, uin: &Uin) -> Result<Option<PaymentId>, StoreError> {
        self.get_consistent_projected(charge_key(uin.as_str()), "lock_payment, paid_by")
            .await?
            .and_then(|item| {
                get_s(&item, "lock_payment")
                    .or_else(|_| get_s(&item, "paid_by"))
                    .ok()
            })
            .map(parse_id)
            .transpose()
    }

    async fn idempotency(&self, key_hash: &str) -> Result<Option<(PaymentId, String)>, StoreError> {
        let found = self.get_consistent(idempotency_key(key_hash)).await?;
        // A record past its expiry is gone, whether or not DynamoDB swept it yet.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        found
            .filter(|item| get_n::<i64>(item, TTL_ATTRIBUTE).is_ok_and(|t| t > now))
            .map(|item| Ok((get_id(&item, "payment_id")?, get_s(&item, "request_hash")?)))
            .transpose()
    }

    async fn payment(&self, owner: &Owner, id: &PaymentId) -> Result<Option<Payment>, StoreError> {
        self.get_consistent_as(payment_key(owner, id), payment_from)
            .await
    }

    async fn hold_count(&self, owner: &Owner) -> Result<HoldCount, StoreError> {
        let Some(item) = self.get_consistent(hold_count_key(owner)).await? else {
            return Ok(HoldCount::default());
        };
        let mut holds = Vec::new();
        if let Some(AttributeValue::M(stored)) = item.get("holds") {
            for (payment_id, hold) in stored {
                let payment_id = parse_id(payment_id.as_str())?;
                let Ok(hold) = hold.as_m() else { continue };
                if let (Ok(bills), Ok(until)) = (get_n(hold, "bills"), get_n(hold, "until")) {
                    holds.push(HeldBills {
                        payment_id,
                        bills,
                        until,
                    });
                }
            }
        }
        Ok(HoldCount {
            version: get_n(&item, "version").unwrap_or(0),
            holds,
        })
    }

    async fn open_payment(
        &self,
        opening: PaymentOpening<'_>,
    ) -> Result<Result<(), OpenRefusal>, StoreError> {
        let PaymentOpening {
            payment,
            key_hash,
            key_expires_at,
            bill_versions,
            holds,
        } = opening;
        let mut idempotency = idempotency_key(key_hash);
        idempotency.extend([
            ("payment_id".into(), s(&payment.id)),
            ("request_hash".into(), s(&payment.request_hash)),
            (TTL_ATTRIBUTE.into(), n(key_expires_at)),
        ]);
        let mut reconcile = reconcile_key(payment);
        reconcile.extend([
            ("account_id".into(), s(&payment.account_id)),
            ("payment_id".into(), s(&payment.id)),
        ]);
        if let Some(org) = &payment.organisation_id {
            reconcile.insert("organisation_id".into(), s(org));
        }
        let claim_key = claim_key(&self.table, idempotency, payment.created_at)?;
        let mut request = self
            .transaction()
            .transact_items(claim_key)
            .transact_items(self.put_new(payment_item(payment)?)?)
            .transact_items(self.put_new(reconcile)?)
            .transact_items(self.hold_count_put(&payment.owner(), holds, payment.created_at)?);
        let until = payment.hold_until.unwrap_or(payment.created_at);
        // An organisation's payment names it on the lock, so that whoever finds the hold
        // expired finds the payment under its key.
        let (lock_set, organisation) = match &payment.organisation_id {
            Some(org) => (
                "SET lock_payment = :payment, lock_account = :account, lock_organisation = :org, lock_until = :until, version = version + :one",
                Some(s(org)),
            ),
            None => (
                "SET lock_payment = :payment, lock_account = :account, lock_until = :until, version = version + :one",
                None,
            ),
        };
        for (uin, version) in bill_versions {
            let update = self
                .update(charge_key(uin.as_str()))
                .update_expression(lock_set)
                .expression_attribute_values(":account", s(&payment.account_id))
                .expression_attribute_values(":until", n(until))
                .condition_expression(
                    "#status = :unpaid AND attribute_not_exists(lock_payment) AND version = :version",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":payment", s(&payment.id))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":unpaid", s("unpaid"))
                .expression_attribute_values(":version", n(version));
            let lock = tx_update(match &organisation {
                Some(org) => update.expression_attribute_values(":org", org.clone()),
                None => update,
            })?;
            request = request.transact_items(lock);
        }
        // Each biller still active, in the same transaction: a revoked biller's bill is not
        // locked, with no read more on the way.
        let mut billers: Vec<&BillerId> = payment.bills.iter().map(|b| &b.biller_id).collect();
        billers.sort_unstable();
        billers.dedup();
        let first_biller = 4 + bill_versions.len();
        for biller in &billers {
            let check = build(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(biller_item(biller.as_str())))
                    .condition_expression(
                        "attribute_exists(pk) AND attribute_not_exists(revoked_at)",
                    )
                    .build(),
            )?;
            request =
                request.transact_items(TransactWriteItem::builder().condition_check(check).build());
        }
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(e) => match super::failed_conditions(e) {
                // The first item is the idempotency record, the fourth the hold count.
                Ok(failed) if failed.first() == Some(&0) => Ok(Err(OpenRefusal::KeyTaken)),
                Ok(failed) => {
                    let revoked = failed
                        .iter()
                        .find_map(|i| i.checked_sub(first_biller).and_then(|k| billers.get(k)));
                    Ok(Err(match revoked {
                        Some(biller) => OpenRefusal::BillerRevoked((*biller).clone()),
                        None if failed.first() == Some(&3) => OpenRefusal::HoldsChanged,
                        None => OpenRefusal::BillChanged,
                    }))
                }
                Err(StoreError::Conflict) => Ok(Err(OpenRefusal::BillChanged)),
                Err(other) => Err(other),
            },
        }
    }

    async fn mark(&self, payment: &Payment, from: PaymentStatus) -> Result<bool, StoreError> {
        let result = self
            .put_item(payment_item(payment)?)
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", s(status_name(from)))
            .send()
            .await;
        won_race(result.map_err(classify))
    }

    async fn settle(&self, payment: &Payment) -> Result<bool, StoreError> {
        let open = [
            PaymentStatus::Processing,
            PaymentStatus::RequiresConfirmation,
            PaymentStatus::Pending,
        ];
        let paid = payment.status == PaymentStatus::Succeeded;
        let mut request =
            self.transaction()
                .transact_items(payment_put(&self.table, payment, &open)?);
        let at = payment.settled_at.unwrap_or(payment.created_at);
        for bill in &payment.bills {
            let update = self
                .update(charge_key(bill.uin.as_str()))
                .condition_expression("lock_payment = :payment")
                .expression_attribute_values(":payment", s(&payment.id))
                .expression_attribute_values(":one", n(1));
            let update = match (paid, &payment.organisation_id) {
                (true, None) => update
                    .update_expression(
                        "SET #status = :paid, paid_by = :payment, paid_account = :account, paid_at = :at, version = version + :one REMOVE lock_payment, lock_account, lock_until",
                    ),
                // The organisation paid (its member acted): a refund finds the payment
                // under its key.
                (true, Some(org)) => update
                    .update_expression(
                        "SET #status = :paid, paid_by = :payment, paid_account = :account, paid_organisation = :org, paid_at = :at, version = version + :one REMOVE lock_payment, lock_account, lock_organisation, lock_until",
                    )
                    .expression_attribute_values(":org", s(org)),
                (false, _) => update.update_expression(
                    "SET version = version + :one REMOVE lock_payment, lock_account, lock_organisation, lock_until",
                ),
            };
            let update = if paid {
                update
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":account", s(&payment.account_id))
                    .expression_attribute_values(":paid", s("paid"))
                    .expression_attribute_values(":at", n(at))
            } else {
                update
            };
            request = request.transact_items(
                TransactWriteItem::builder()
                    .update(build(update.build())?)
                    .build(),
            );
        }
        // The payment holds nothing any more: out of the account's hold count, whose
        // version moves so that an opening that read it before counts again.
        let release = tx_update(
            self.update(hold_count_key(&payment.owner()))
                .update_expression("REMOVE holds.#payment SET version = if_not_exists(version, :zero) + :one, #ttl = :ttl")
                .expression_attribute_names("#payment", &payment.id)
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":ttl", n(at + HOLD_COUNT_TTL_SECS)),
        )?;
        request = request.transact_items(release);
        if let (Some(org), Some(audit)) = (&payment.organisation_id, paid_audit(payment)) {
            request = request.transact_items(self.put_new(audit_item(org, &audit)?)?);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match super::failed_conditions(e) {
                Ok(_) | Err(StoreError::Conflict) => Ok(false),
                Err(other) => Err(other),
            },
        }
    }

    async fn close_reconciliation(&self, payment: &Payment) -> Result<(), StoreError> {
        let deleted = self
            .delete_item(reconcile_key(payment))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        // Nothing in its shard: a payment opened before sharding, whose entry is in
        // the unsharded partition (one more call, for those only).
        if deleted.attributes().is_none_or(|a| a.is_empty()) {
            self.delete(reconcile_key_in(Shard::Unsharded, payment))
                .await?;
        }
        Ok(())
    }

    async fn open_payments(
        &self,
        page: &ReconcilePage,
        limit: usize,
    ) -> Result<OpenPaymentsPage, StoreError> {
        let (pk, before) = (reconcile_pk(page.shard), page.before);
        let (items, next) = self
            .query_page(&pk, page.after.as_deref(), limit, |q| {
                q.key_condition_expression("pk = :pk AND sk < :before")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":before", s(format!("{before:012}$")))
            })
            .await?;
        let entries = items
            .iter()
            .map(|item| {
                let owner = owner_from(item, "account_id", "organisation_id")?;
                Ok((owner, get_id(item, "payment_id")?))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(OpenPaymentsPage { entries, next })
    }

    async fn owner_payments(
        &self,
        owner: &Owner,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Payment>, StoreError> {
        // UUIDv7 ids start with the creation time in milliseconds: 12 hex digits,
        // written `xxxxxxxx-xxxx-`.
        let bound = |ms: i64| {
            let hex = format!("{:012x}", ms.clamp(0, 0xffff_ffff_ffff));
            format!("PAYMENT#{}-{}", &hex[..8], &hex[8..])
        };
        self.query_all(|q| {
            q.key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(owner.partition_key()))
                .expression_attribute_values(":from", s(bound(from_ms)))
                .expression_attribute_values(":to", s(bound(to_ms)))
                .scan_index_forward(false)
        })
        .await?
        .iter()
        .map(payment_from)
        .collect()
    }

    async fn account(&self, account_id: &AccountId) -> Result<Option<StoredAccount>, StoreError> {
        self.get_eventual(account_key(account_id))
            .await?
            .as_ref()
            .map(|item| account_from(account_id, item))
            .transpose()
    }

    async fn methods(&self, owner: &Owner) -> Result<Vec<SavedMethod>, StoreError> {
        self.owner_docs(&owner.partition_key(), "METHOD#").await
    }

    async fn put_method(
        &self,
        owner: &Owner,
        method: &SavedMethod,
        cap: Cap,
        audit: Option<&AuditEntry>,
    ) -> Result<CappedAdd, StoreError> {
        let at = CountedItem::new(owner, "METHOD", method.id.as_str());
        self.put_counted(at, method, cap, audit).await
    }

    async fn delete_method(
        &self,
        owner: &Owner,
        id: &MethodId,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError> {
        self.delete_counted(CountedItem::new(owner, "METHOD", id.as_str()), audit)
            .await
    }

    async fn templates(&self, owner: &Owner) -> Result<Vec<Template>, StoreError> {
        self.owner_docs(&owner.partition_key(), "TEMPLATE#").await
    }

    async fn put_template(
        &self,
        owner: &Owner,
        template: &Template,
        cap: Cap,
        audit: Option<&AuditEntry>,
    ) -> Result<CappedAdd, StoreError> {
        let at = CountedItem::new(owner, "TEMPLATE", template.id.as_str());
        self.put_counted(at, template, cap, audit).await
    }

    async fn delete_template(
        &self,
        owner: &Owner,
        id: &TemplateId,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError> {
        self.delete_counted(CountedItem::new(owner, "TEMPLATE", id.as_str()), audit)
            .await
    }
}

/// An owner's item counted against a cap, a saved method or a template:
/// `ACCOUNT#{account}` (or `ORG#{id}`) / `{kind}#{id}`, counted under `kind` in the same
/// partition. Saving and removing the two differ only in these, so they are written once.
#[derive(Debug, Clone, Copy)]
struct CountedItem<'a> {
    owner: &'a Owner,
    kind: &'static str,
    id: &'a str,
}

impl<'a> CountedItem<'a> {
    fn new(owner: &'a Owner, kind: &'static str, id: &'a str) -> Self {
        Self { owner, kind, id }
    }

    fn pk(&self) -> String {
        self.owner.partition_key()
    }

    fn sk(&self) -> String {
        format!("{}#{}", self.kind, self.id)
    }
}

impl DynamoStore {
    /// Saves an account's counted item, holding `value` as its document, if the account
    /// stays within `cap`.
    async fn put_counted<T: serde::Serialize>(
        &self,
        at: CountedItem<'_>,
        value: &T,
        cap: Cap,
        audit: Option<&AuditEntry>,
    ) -> Result<CappedAdd, StoreError> {
        let item = doc_item(at.pk(), &at.sk(), value)?;
        let mut items = vec![self.put_new(item)?];
        items.extend(self.audit_put(at.owner, audit)?);
        self.add_capped_in(&at.pk(), at.kind, cap, items).await
    }

    /// Removes an owner's counted item; whether it was there.
    async fn delete_counted(
        &self,
        at: CountedItem<'_>,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError> {
        let item = key(at.pk(), &at.sk());
        let mut items = vec![self.delete_present(item)?];
        items.extend(self.audit_put(at.owner, audit)?);
        self.remove_capped_in(&at.pk(), at.kind, items).await
    }

    /// An organisation's audit entry for the transaction that makes its change; a
    /// citizen's things have no audit log.
    fn audit_put(
        &self,
        owner: &Owner,
        audit: Option<&AuditEntry>,
    ) -> Result<Option<TransactWriteItem>, StoreError> {
        match (owner, audit) {
            (Owner::Organisation(org), Some(entry)) => {
                Ok(Some(self.put_new(audit_item(org, entry)?)?))
            }
            _ => Ok(None),
        }
    }
}

/// An item holding a value as its JSON document (`doc`).
pub(crate) fn doc_item<T: serde::Serialize>(
    pk: String,
    sk: &str,
    value: &T,
) -> Result<Item, StoreError> {
    let doc = to_doc(value, &format!("{sk} doc"))?;
    let mut item = key(pk, sk);
    item.insert("doc".into(), s(doc));
    Ok(item)
}

impl DynamoStore {
    /// The JSON documents (`doc`) of an account's items under a sort-key prefix.
    pub(crate) async fn account_docs<T: serde::de::DeserializeOwned>(
        &self,
        account_id: &AccountId,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.owner_docs(&format!("ACCOUNT#{account_id}"), prefix)
            .await
    }

    /// The JSON documents (`doc`) of a partition's items under a sort-key prefix.
    pub(crate) async fn owner_docs<T: serde::de::DeserializeOwned>(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query_prefix(pk, prefix)
            .await?
            .iter()
            .map(|item| get_doc(item, "doc", &format!("{prefix} doc")))
            .collect()
    }
}
