//! The DynamoDB calls the adapters make, in one place: items built from typed values and
//! read back into them, reads of one item and of many, puts and deletes with and without
//! a condition, the parts of transactions, and the sorting of every SDK failure into a
//! [`StoreError`] ([`classify`], [`classify_transaction`], [`failed_conditions`]).
//!
//! Each helper makes exactly the calls its name says (a get is one `GetItem`, a put one
//! `PutItem`); the bench counts them.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::builders::TransactWriteItemsFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::{PutBuilder, TransactWriteItemBuilder, UpdateBuilder};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update, WriteRequest,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::DynamoStore;
use crate::services::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

// ---- Building items -------------------------------------------------------------------

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn b(v: bool) -> AttributeValue {
    AttributeValue::Bool(v)
}

pub(crate) fn key(pk: String, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

/// A value as the JSON text of an item's document attribute; `what` names it in the error.
pub(crate) fn to_doc<T: Serialize + ?Sized>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Rejected(format!("{what}: {e}")))
}

// ---- Reading items ----------------------------------------------------------------------

pub(crate) fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(StoreError::Rejected(format!("item lacks string {name}"))),
    }
}

/// An id in the string attribute `name`; one of another shape is a corrupt item.
pub(crate) fn get_id<T>(item: &Item, name: &str) -> Result<T, StoreError>
where
    T: TryFrom<String, Error = crate::domain::IdError>,
{
    parse_id(get_s(item, name)?)
}

/// An id read from a stored key or attribute; one of another shape is a corrupt item.
pub(crate) fn parse_id<T>(value: impl Into<String>) -> Result<T, StoreError>
where
    T: TryFrom<String, Error = crate::domain::IdError>,
{
    T::try_from(value.into()).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v
            .parse()
            .map_err(|_| StoreError::Rejected(format!("item has malformed number {name}"))),
        _ => Err(StoreError::Rejected(format!("item lacks number {name}"))),
    }
}

/// A flag that is off unless the item holds `true`.
pub(crate) fn get_bool(item: &Item, name: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::Bool(true)))
}

pub(crate) fn get_map<'a>(item: &'a Item, name: &str) -> Result<&'a Item, StoreError> {
    match item.get(name) {
        Some(AttributeValue::M(v)) => Ok(v),
        _ => Err(StoreError::Rejected(format!("item lacks map {name}"))),
    }
}

pub(crate) fn get_list<'a>(item: &'a Item, name: &str) -> Result<&'a [AttributeValue], StoreError> {
    match item.get(name) {
        Some(AttributeValue::L(v)) => Ok(v),
        _ => Err(StoreError::Rejected(format!("item lacks list {name}"))),
    }
}

/// The JSON document in the string attribute `name`; `what` names it in the error.
pub(crate) fn get_doc<T: DeserializeOwned>(
    item: &Item,
    name: &str,
    what: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(&get_s(item, name)?)
        .map_err(|e| StoreError::Rejected(format!("{what}: {e}")))
}

// ---- Errors -----------------------------------------------------------------------------

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

/// Indices of the transaction items whose condition failed.
pub(crate) fn failed_conditions<R: std::fmt::Debug>(
    err: SdkError<TransactWriteItemsError, R>,
) -> Result<Vec<usize>, StoreError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) =
        err.as_service_error()
    {
        let failed: Vec<usize> = cancel
            .cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect();
        if !failed.is_empty() {
            return Ok(failed);
        }
    }
    Err(classify_transaction(err))
}

/// A conditional write's outcome as a yes or no: `false` when its condition did not hold
/// (a lost race, or the state it asked for was not there).
pub(crate) fn won_race<T>(result: Result<T, StoreError>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Counts one attempt on an item (`ADD attempts :one`) under the update's `condition`,
/// which holds while the thing attempted is the one asked for and has attempts left: the
/// count after it, or `None` when the condition did not hold. Counted before the secret
/// is compared, so parallel attempts cannot pass the limit.
pub(crate) async fn count_attempt(
    update: UpdateItemFluentBuilder,
    condition: &str,
) -> Result<Option<u32>, StoreError> {
    let result = update
        .update_expression("ADD attempts :one")
        .condition_expression(condition)
        .expression_attribute_values(":one", n(1))
        .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
        .send()
        .await;
    match result.map_err(classify) {
        Ok(out) => Ok(out
            .attributes
            .as_ref()
            .and_then(|a| get_n(a, "attempts").ok())),
        Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e),
    }
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

/// A transaction item of one built part, `into` saying which kind of part it is (an
/// update, a put, a delete): every part's build error sorted the same way, in one place.
fn tx_item<P, E: std::fmt::Display>(
    part: Result<P, E>,
    into: fn(TransactWriteItemBuilder, P) -> TransactWriteItemBuilder,
) -> Result<TransactWriteItem, StoreError> {
    Ok(into(TransactWriteItem::builder(), build(part)?).build())
}

/// An update for a transaction.
pub(crate) fn tx_update(update: UpdateBuilder) -> Result<TransactWriteItem, StoreError> {
    tx_item(update.build(), TransactWriteItemBuilder::update)
}

// ---- Calls ------------------------------------------------------------------------------

/// What a put conditional on the item's absence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum PutOutcome {
    Written,
    /// An item with that key was there already; nothing was written.
    AlreadyThere,
}

impl PutOutcome {
    pub(crate) fn written(self) -> bool {
        self == Self::Written
    }
}

/// BatchGetItem takes at most 100 keys.
const BATCH_GET: usize = 100;
/// BatchWriteItem takes at most 25 requests.
const BATCH_WRITE: usize = 25;

/// How a batch get asks: `rounds` calls per 100 keys at the most (the first and the
/// asking again for keys DynamoDB left unprocessed), `projection` the attributes read, and
/// `what` what the keys are, for the error when some stay unread.
pub(crate) struct BatchGet<'a> {
    pub rounds: u32,
    pub projection: Option<&'a str>,
    pub what: &'a str,
}

impl<'a> BatchGet<'a> {
    /// Whole items, asking again up to 4 times.
    pub(crate) fn of(what: &'a str) -> Self {
        Self {
            rounds: 5,
            projection: None,
            what,
        }
    }

    /// Whole items in one call per 100 keys: keys left unprocessed are an error.
    pub(crate) fn once(what: &'a str) -> Self {
        Self {
            rounds: 1,
            projection: None,
            what,
        }
    }
}

/// The pause before asking again for unprocessed keys or writes: short, growing with
/// the round, bounded.
async fn back_off(round: u32) {
    let millis = 20u64.saturating_mul(1 << round.min(4));
    tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
}

impl DynamoStore {
    async fn get_item(
        &self,
        key: Item,
        consistent: bool,
        projection: Option<&str>,
    ) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_projection_expression(projection.map(str::to_string))
            .set_consistent_read(consistent.then_some(true))
            .send()
            .await
            .map_err(classify)?;
        Ok(out.item)
    }

    /// One item by its key, read consistently (one `GetItem`).
    pub(crate) async fn get_consistent(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.get_item(key, true, None).await
    }

    /// One item by its key, read consistently and read back by `from` into the record it
    /// stores (one `GetItem`): the read of a record that may be absent, said once.
    pub(crate) async fn get_consistent_as<T>(
        &self,
        key: Item,
        from: impl FnOnce(&Item) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.get_consistent(key)
            .await?
            .as_ref()
            .map(from)
            .transpose()
    }

    /// Some attributes of one item, read consistently (one `GetItem`).
    pub(crate) async fn get_consistent_projected(
        &self,
        key: Item,
        projection: &str,
    ) -> Result<Option<Item>, StoreError> {
        self.get_item(key, true, Some(projection)).await
    }

    /// One item by its key, read eventually consistently (one `GetItem`): for what may
    /// lag a write by a moment.
    pub(crate) async fn get_eventual(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.get_item(key, false, None).await
    }

    /// Every item a query finds, page after page (one `Query` a page): `query` gives the
    /// table's query its key condition, values, index and order.
    pub(crate) async fn query_all(
        &self,
        query: impl Fn(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = query(self.client.query().table_name(&self.table))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Every item of a partition whose sort key starts with `prefix` (every item for
    /// ""), all pages.
    pub(crate) async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_all(|q| {
            let q = q.expression_attribute_values(":pk", s(pk));
            // DynamoDB refuses an empty string in `begins_with`.
            if prefix.is_empty() {
                q.key_condition_expression("pk = :pk")
            } else {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            }
        })
        .await
    }

    /// What follows `prefix` in the sort keys of the partition `pk` (all pages): the names
    /// a partition lists under a prefix, such as the payer keys an account holds.
    pub(crate) async fn sort_key_suffixes(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query_prefix(pk, prefix)
            .await?
            .iter()
            .filter_map(|item| get_s(item, "sk").ok())
            .map(|sk| sk.trim_start_matches(prefix).to_string())
            .collect())
    }

    /// One page of the partition `pk` (one `Query`): up to `limit` items after the sort
    /// key `after`, and the sort key the next page starts after, if there is more.
    pub(crate) async fn query_page(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
        query: impl FnOnce(QueryFluentBuilder) -> QueryFluentBuilder,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let page = query(self.client.query().table_name(&self.table))
            .set_exclusive_start_key(after.map(|sk| key(pk.to_string(), sk)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(classify)?;
        let next = match page.last_evaluated_key() {
            Some(last) => Some(get_s(last, "sk")?),
            None => None,
        };
        Ok((page.items.unwrap_or_default(), next))
    }

    /// Writes the item whether or not one is there (one `PutItem`).
    pub(crate) async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.put_item(item).send().await.map_err(classify)?;
        Ok(())
    }

    /// Writes the item unless one with its key is there (one `PutItem`).
    pub(crate) async fn put_if_absent(&self, item: Item) -> Result<PutOutcome, StoreError> {
        let result = self
            .put_item(item)
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) => Ok(PutOutcome::Written),
            Err(StoreError::Conflict) => Ok(PutOutcome::AlreadyThere),
            Err(e) => Err(e),
        }
    }

    /// Deletes the item if there is one (one `DeleteItem`).
    pub(crate) async fn delete(&self, key: Item) -> Result<(), StoreError> {
        self.delete_item(key).send().await.map_err(classify)?;
        Ok(())
    }

    /// Deletes the item, conditional on its presence (one `DeleteItem`). `false`: there
    /// was none.
    pub(crate) async fn delete_if_exists(&self, key: Item) -> Result<bool, StoreError> {
        let result = self
            .delete_item(key)
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        won_race(result.map_err(classify))
    }

    /// Items by their keys, read consistently, 100 keys to a `BatchGetItem`, asking again
    /// with a short pause for the keys DynamoDB leaves unprocessed under load (at most
    /// `how.rounds` calls per 100). Missing items are left out; `how.what` names them in
    /// the error when keys stay unread.
    pub(crate) async fn batch_get_consistent(
        &self,
        keys: Vec<Item>,
        how: BatchGet<'_>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET) {
            let mut pending = chunk.to_vec();
            for round in 0..how.rounds {
                if pending.is_empty() {
                    break;
                }
                if round > 0 {
                    back_off(round).await;
                }
                let request = build(
                    KeysAndAttributes::builder()
                        .set_keys(Some(std::mem::take(&mut pending)))
                        .set_projection_expression(how.projection.map(str::to_string))
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
                return Err(StoreError::Unavailable(format!(
                    "{} not read in full",
                    how.what
                )));
            }
        }
        Ok(found)
    }

    /// Puts and deletes in batches of 25 (not atomic), asking again with a short pause for
    /// whatever DynamoDB left unprocessed (up to 5 calls per 25).
    pub(crate) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE) {
            let mut pending = chunk.to_vec();
            for round in 0..5 {
                if round > 0 {
                    back_off(round).await;
                }
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

    /// An `UpdateItem` call on the item at `key`, for the caller to give its expressions.
    pub(crate) fn update_item(&self, key: Item) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
    }

    /// A `PutItem` call of `item`, for the caller to give its condition.
    pub(crate) fn put_item(&self, item: Item) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
    }

    /// A `DeleteItem` call on the item at `key`, for the caller to give its condition.
    pub(crate) fn delete_item(&self, key: Item) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
    }

    /// A `TransactWriteItems` call with its own idempotency token, for the caller to fill.
    pub(crate) fn transaction(&self) -> TransactWriteItemsFluentBuilder {
        self.client
            .transact_write_items()
            .client_request_token(idempotency_token())
    }

    /// Writes `items` in one transaction (one `TransactWriteItems`); a failed condition or
    /// a collision with another transaction is a [`StoreError::Conflict`].
    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        self.transaction()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    /// An update of the item at `key`, for the caller to give its expressions.
    pub(crate) fn update(&self, key: Item) -> UpdateBuilder {
        Update::builder().table_name(&self.table).set_key(Some(key))
    }

    /// A put for a transaction of the item whose stored version is `expected`: of a new
    /// item when that is 0.
    pub(crate) fn tx_put_versioned(
        &self,
        item: Item,
        expected: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.tx_put_with(item, |put| {
            if expected == 0 {
                put.condition_expression("attribute_not_exists(pk)")
            } else {
                put.condition_expression("version = :expected")
                    .expression_attribute_values(":expected", n(expected))
            }
        })
    }

    /// A put of `item` for a transaction, `condition` giving it its condition, if any.
    fn tx_put_with(
        &self,
        item: Item,
        condition: impl FnOnce(PutBuilder) -> PutBuilder,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder().table_name(&self.table).set_item(Some(item));
        tx_item(condition(put).build(), TransactWriteItemBuilder::put)
    }

    fn tx_delete_if(
        &self,
        key: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .set_condition_expression(condition.map(str::to_string));
        tx_item(delete.build(), TransactWriteItemBuilder::delete)
    }

    /// A put for a transaction, whether or not the item is there.
    pub(crate) fn tx_put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        self.tx_put_with(item, |put| put)
    }

    /// A put of a new item, conditional on its absence, for a transaction.
    pub(crate) fn put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        self.tx_put_with(item, |put| {
            put.condition_expression("attribute_not_exists(pk)")
        })
    }

    /// A delete for a transaction, whether or not the item is there.
    pub(crate) fn tx_delete(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        self.tx_delete_if(key, None)
    }

    /// A delete of an existing item, conditional on its presence, for a transaction.
    pub(crate) fn delete_present(&self, key: Item) -> Result<TransactWriteItem, StoreError> {
        self.tx_delete_if(key, Some("attribute_exists(pk)"))
    }
}
