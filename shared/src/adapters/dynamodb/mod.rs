//! The DynamoDB store: one table, items told apart by their keys (see
//! docs/data-model.md for every item and access pattern).

mod autopays;
mod charges;
mod codes;
mod confirmation;
mod free;
mod household;
mod identity;
mod inbox;
mod notices;
mod open_payment;
mod ops;
mod organisations;
mod payments;
mod profile;
mod refunds;
mod reminders;
mod runs;
mod signature;

pub(crate) use charges::notice_attributes;
pub(crate) use ops::*;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;

#[allow(unused_imports)]
use crate::domain::{
    AccountId, AutopayId, BillerId, ChildId, CodeId, MethodId, OperatorId, OrganisationId, Owner,
    PaymentId, SessionId, SubmissionId, TemplateId, VehicleId,
};
use crate::services::{Cap, CappedAdd, StoreError};

/// Name of the TTL attribute declared in the template; DynamoDB deletes expired items.
pub const TTL_ATTRIBUTE: &str = "expires_at_epoch";

pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// Principals with API keys (operators, billers) are stored alike: an item found by the
/// keyed hash of the key, and a record found by the principal's id that remembers the
/// hash, so that revoking by id can forget the key.
impl DynamoStore {
    /// Writes both items at once; neither may exist yet.
    pub(crate) async fn put_keyed_principal(
        &self,
        by_key: Item,
        record: Item,
    ) -> Result<(), StoreError> {
        self.transact(vec![self.put_new(by_key)?, self.put_new(record)?])
            .await
    }

    /// Forgets the key of the principal whose record is at `record_key` and marks the
    /// record revoked; the record stays, so logs keep a name for the id. `Ok(false)`: no
    /// such principal.
    pub(crate) async fn revoke_keyed_principal(
        &self,
        record_key: Item,
        key_item: impl Fn(&str) -> Item,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(record) = self.get_consistent(record_key.clone()).await? else {
            return Ok(false);
        };
        let forget_key = self.tx_delete(key_item(&get_s(&record, "key_hash")?))?;
        let mark = tx_update(
            self.update(record_key)
                .update_expression("SET revoked_at = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":now", n(now)),
        )?;
        self.transact(vec![forget_key, mark]).await?;
        Ok(true)
    }
}

/// Tries a transaction on a counter again when it met a parallel transaction on the
/// same counter (every answer it can give is decided by its conditions, so trying again
/// is safe), a few times, with a short random pause.
async fn retry_contended<T, F, Fut>(mut once: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    const TRIES: u32 = 5;
    let mut tried = 0;
    loop {
        tried += 1;
        match once().await {
            Err(StoreError::Conflict) if tried < TRIES => {
                let pause = 10 + u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 40);
                tokio::time::sleep(std::time::Duration::from_millis(pause * u64::from(tried)))
                    .await;
            }
            other => return other,
        }
    }
}

/// The counter of the things of `kind` (see [`Cap`]) in the partition `pk`: an account's,
/// an organisation's.
fn counter_key_in(pk: &str, kind: &str) -> Item {
    key(pk.to_string(), &format!("COUNT#{kind}"))
}

/// How a transaction of a thing's items and its counter's update ended. The thing's own
/// condition (on the first item) and the counter's (on the last) fail apart, and adding
/// and removing each read them their own way.
enum Counted {
    Written,
    /// The thing's condition failed.
    ThingRefused,
    /// The counter's condition failed, the thing's held.
    CounterRefused,
}

/// Per-account caps: the thing's items and the counter change in one transaction.
impl DynamoStore {
    /// Writes `items`, of which the first is the new thing (a put conditional on its
    /// absence), and counts it, if the count stays within the cap.
    pub(crate) async fn add_capped(
        &self,
        account_id: &str,
        kind: &str,
        cap: Cap,
        items: Vec<TransactWriteItem>,
    ) -> Result<CappedAdd, StoreError> {
        self.add_capped_in(&format!("ACCOUNT#{account_id}"), kind, cap, items)
            .await
    }

    /// [`Self::add_capped`] counted in the partition `pk` (an account's, an
    /// organisation's).
    pub(crate) async fn add_capped_in(
        &self,
        pk: &str,
        kind: &str,
        cap: Cap,
        items: Vec<TransactWriteItem>,
    ) -> Result<CappedAdd, StoreError> {
        if cap.seen >= cap.limit {
            return Ok(CappedAdd::Full);
        }
        let count = tx_update(
            self.update(counter_key_in(pk, kind))
                .update_expression("SET #count = if_not_exists(#count, :seen) + :one")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":seen", n(cap.seen))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(cap.limit)),
        )?;
        retry_contended(|| async {
            Ok(match self.transact_counted(&items, &count).await? {
                Counted::Written => CappedAdd::Added,
                Counted::ThingRefused => CappedAdd::AlreadyThere,
                Counted::CounterRefused => CappedAdd::Full,
            })
        })
        .await
    }

    /// Deletes `items`, of which the first is the thing (a delete conditional on its
    /// presence), and uncounts it. `false`: there was no such thing.
    pub(crate) async fn remove_capped(
        &self,
        account_id: &str,
        kind: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        self.remove_capped_in(&format!("ACCOUNT#{account_id}"), kind, items)
            .await
    }

    /// [`Self::remove_capped`] uncounted in the partition `pk`.
    pub(crate) async fn remove_capped_in(
        &self,
        pk: &str,
        kind: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        let uncount = tx_update(
            self.update(counter_key_in(pk, kind))
                .update_expression("SET #count = #count - :one")
                .condition_expression("#count > :zero")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0)),
        )?;
        retry_contended(|| async {
            match self.transact_counted(&items, &uncount).await? {
                Counted::Written => Ok(true),
                Counted::ThingRefused => Ok(false),
                // An account from before the counter: nothing to uncount; the first add
                // starts the counter from the listed things.
                Counted::CounterRefused => {
                    let result = self
                        .transaction()
                        .set_transact_items(Some(items.clone()))
                        .send()
                        .await;
                    match result {
                        Ok(_) => Ok(true),
                        Err(e) => match failed_conditions(e)? {
                            failed if failed.contains(&0) => Ok(false),
                            _ => Err(StoreError::Conflict),
                        },
                    }
                }
            }
        })
        .await
    }

    /// `items` and then the counter's update `counter` in one transaction (one
    /// `TransactWriteItems`); a condition failed elsewhere is a lost race.
    async fn transact_counted(
        &self,
        items: &[TransactWriteItem],
        counter: &TransactWriteItem,
    ) -> Result<Counted, StoreError> {
        let result = self
            .transaction()
            .set_transact_items(Some(items.to_vec()))
            .transact_items(counter.clone())
            .send()
            .await;
        let Err(e) = result else {
            return Ok(Counted::Written);
        };
        let failed = failed_conditions(e)?;
        if failed.contains(&0) {
            Ok(Counted::ThingRefused)
        } else if failed.contains(&items.len()) {
            Ok(Counted::CounterRefused)
        } else {
            Err(StoreError::Conflict)
        }
    }
}
