//! The DynamoDB store: one table, items told apart by their keys (see
//! docs/data-model.md for every item and access pattern).

mod autopays;
mod charges;
mod codes;
mod confirmation;
mod household;
mod identity;
mod notices;
mod payments;
mod profile;
mod runs;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

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

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub(crate) fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Rejected(format!("item lacks string {name}"))),
    }
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Rejected(format!("item has malformed number {name}"))),
        _ => Err(StoreError::Rejected(format!("item lacks number {name}"))),
    }
}

/// Sorts SDK failures into what the service can act on.
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let message = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
    match err.code() {
        Some("ConditionalCheckFailedException") => StoreError::Conflict,
        Some("ValidationException" | "ResourceNotFoundException") => StoreError::Rejected(message),
        _ => StoreError::Unavailable(message),
    }
}

/// A cancelled transaction whose reason is a failed condition, or a concurrent transaction
/// on the same item, is a lost race; any other reason (throttling) is worth a retry later.
pub(crate) fn classify_transaction<R: std::fmt::Debug>(
    err: SdkError<TransactWriteItemsError, R>,
) -> StoreError {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    {
        let lost_race = cancel.cancellation_reasons().iter().any(|r| {
            matches!(
                r.code(),
                Some("ConditionalCheckFailed" | "TransactionConflict")
            )
        });
        if lost_race {
            return StoreError::Conflict;
        }
    }
    classify(err)
}

pub(crate) fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Rejected(format!("building request: {e}")))
}

/// A token per transaction call. The SDK resends the same token when it retries after a
/// timeout, so a transaction that committed but whose answer was lost is not applied twice
/// (which would fail its own conditions and read as a lost race).
pub(crate) fn idempotency_token() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// BatchWriteItem takes at most 25 requests.
const BATCH_WRITE: usize = 25;

impl DynamoStore {
    /// Puts and deletes in batches of 25 (not atomic), asking again for whatever DynamoDB
    /// left unprocessed.
    pub(crate) async fn batch_write(
        &self,
        requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for _ in 0..5 {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(classify)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable("writes left unprocessed".into()));
            }
        }
        Ok(())
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
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
        let put = |item: Item| -> Result<TransactWriteItem, StoreError> {
            Ok(TransactWriteItem::builder()
                .put(build(
                    Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression("attribute_not_exists(pk)")
                        .build(),
                )?)
                .build())
        };
        self.client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(put(by_key)?)
            .transact_items(put(record)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
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
        use aws_sdk_dynamodb::types::{Delete, TransactWriteItem, Update};
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(record_key.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(record) = out.item else {
            return Ok(false);
        };
        let forget_key = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key_item(&get_s(&record, "key_hash")?)))
                .build(),
        )?;
        let mark = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(record_key))
                .update_expression("SET revoked_at = :now")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":now", n(now))
                .build(),
        )?;
        self.client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(TransactWriteItem::builder().delete(forget_key).build())
            .transact_items(TransactWriteItem::builder().update(mark).build())
            .send()
            .await
            .map_err(classify_transaction)?;
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

/// The counter of an account's things of one kind (see [`Cap`]).
pub(crate) fn counter_key(account_id: &str, kind: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), &format!("COUNT#{kind}"))
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
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<CappedAdd, StoreError> {
        retry_contended(|| self.add_capped_once(account_id, kind, cap, items.clone())).await
    }

    async fn add_capped_once(
        &self,
        account_id: &str,
        kind: &str,
        cap: Cap,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<CappedAdd, StoreError> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
        if cap.seen >= cap.limit {
            return Ok(CappedAdd::Full);
        }
        let count = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(counter_key(account_id, kind)))
                .update_expression("SET #count = if_not_exists(#count, :seen) + :one")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":seen", n(cap.seen))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(cap.limit))
                .build(),
        )?;
        let counter_index = items.len();
        let result = self
            .client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .set_transact_items(Some(items))
            .transact_items(TransactWriteItem::builder().update(count).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(CappedAdd::Added),
            Err(e) => {
                let failed = identity::failed_conditions(e)?;
                if failed.contains(&0) {
                    Ok(CappedAdd::AlreadyThere)
                } else if failed.contains(&counter_index) {
                    Ok(CappedAdd::Full)
                } else {
                    Err(StoreError::Conflict)
                }
            }
        }
    }

    /// Deletes `items`, of which the first is the thing (a delete conditional on its
    /// presence), and uncounts it. `false`: there was no such thing.
    pub(crate) async fn remove_capped(
        &self,
        account_id: &str,
        kind: &str,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        retry_contended(|| self.remove_capped_once(account_id, kind, items.clone())).await
    }

    async fn remove_capped_once(
        &self,
        account_id: &str,
        kind: &str,
        items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
        let uncount = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(counter_key(account_id, kind)))
                .update_expression("SET #count = #count - :one")
                .condition_expression("#count > :zero")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":zero", n(0))
                .build(),
        )?;
        let counter_index = items.len();
        let result = self
            .client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .set_transact_items(Some(items.clone()))
            .transact_items(TransactWriteItem::builder().update(uncount).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => {
                let failed = identity::failed_conditions(e)?;
                if failed.contains(&0) {
                    return Ok(false);
                }
                if !failed.contains(&counter_index) {
                    return Err(StoreError::Conflict);
                }
                // An account from before the counter: nothing to uncount; the first add
                // starts the counter from the listed things.
                let result = self
                    .client
                    .transact_write_items()
                    .client_request_token(idempotency_token())
                    .set_transact_items(Some(items))
                    .send()
                    .await;
                match result {
                    Ok(_) => Ok(true),
                    Err(e) => match identity::failed_conditions(e)? {
                        failed if failed.contains(&0) => Ok(false),
                        _ => Err(StoreError::Conflict),
                    },
                }
            }
        }
    }

    /// Items by their keys, read consistently, 100 keys to a `BatchGetItem`, asking again
    /// for the keys DynamoDB leaves unprocessed under load (up to 5 rounds per 100).
    /// Missing items are left out; `what` names them in the error when keys stay unread.
    pub(crate) async fn consistent_batch_get(
        &self,
        keys: Vec<Item>,
        projection: Option<&str>,
        what: &str,
    ) -> Result<Vec<Item>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = chunk.to_vec();
            for _ in 0..5 {
                if pending.is_empty() {
                    break;
                }
                let request = build(
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .set_projection_expression(projection.map(str::to_string))
                        .consistent_read(true)
                        .build(),
                )?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(classify)?;
                found.extend(
                    out.responses
                        .and_then(|mut r| r.remove(&self.table))
                        .unwrap_or_default(),
                );
                pending = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(format!("{what} not read in full")));
            }
        }
        Ok(found)
    }

    /// A put of a new item, conditional on its absence, for a transaction.
    pub(crate) fn put_new(
        &self,
        item: Item,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
        Ok(TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?)
            .build())
    }

    /// A delete of an existing item, conditional on its presence, for a transaction.
    pub(crate) fn delete_present(
        &self,
        key: Item,
    ) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
        use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
        Ok(TransactWriteItem::builder()
            .delete(build(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .condition_expression("attribute_exists(pk)")
                    .build(),
            )?)
            .build())
    }
}
