//! The citizen's inbox, in the account's partition:
//!
//! - `ACCOUNT#{id}` / `INBOX#U#{created_at, 13 digits}#{message id}`: an unread message,
//!   `INBOX#R#…` once read. Sort keys put the unread before the read (`U` > `R` in a
//!   query newest first), each newest first. Read messages carry the TTL attribute.
//! - `ACCOUNT#{id}` / `INBOXID#{message id}`: where a message is (`at`: its creation time;
//!   `state`: `unread`, `read` or `deleted`): a mark or a delete finds the message's key
//!   by its id, and a retried event finds its message kept (or deleted) before.
//! - `ACCOUNT#{id}` / `INBOX`: the unread counter, changed in the same transaction as
//!   every message that is kept, read or deleted.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::*;
use crate::domain::{MessageId, PaymentId, Uin};
use crate::services::inbox::{
    Cursor, InboxPage, InboxQuery, InboxStore, Message, MessageCategory, StoredMessage,
    DELETED_MEMORY, MESSAGE_RETENTION, READ_RETENTION,
};
use crate::services::secs;

const UNREAD: &str = "unread";
const READ: &str = "read";
const DELETED: &str = "deleted";
/// Pages read, at most, to fill one page of a list filtered by category.
const FILTERED_ROUNDS: usize = 5;

fn pk(account_id: &AccountId) -> String {
    format!("ACCOUNT#{account_id}")
}

fn message_sk(place: &Cursor) -> String {
    format!("INBOX#{}", place.position())
}

fn place_of(id: &MessageId, created_at: i64, read: bool) -> Cursor {
    Cursor {
        read,
        created_at,
        id: id.clone(),
    }
}

fn pointer_key(account_id: &AccountId, id: &MessageId) -> Item {
    key(pk(account_id), &format!("INBOXID#{id}"))
}

fn counter_key(account_id: &AccountId) -> Item {
    key(pk(account_id), "INBOX")
}

/// When a message read at `now` goes: a year after it was written, and not sooner than a
/// month after it was read.
fn read_expiry(created_at: i64, now: i64) -> i64 {
    created_at
        .saturating_add(secs(MESSAGE_RETENTION))
        .max(now.saturating_add(secs(READ_RETENTION)))
}

fn message_item(
    account_id: &AccountId,
    message: &Message,
    read: bool,
    expires_at: Option<i64>,
) -> Item {
    let place = place_of(&message.id, message.created_at, read);
    let mut item = key(pk(account_id), &message_sk(&place));
    item.insert("id".into(), s(&message.id));
    item.insert("category".into(), s(message.category.as_str()));
    item.insert("title".into(), s(&message.title));
    item.insert("text".into(), s(&message.text));
    item.insert("created_at".into(), n(message.created_at));
    if let Some(uin) = &message.uin {
        item.insert("uin".into(), s(uin.as_str()));
    }
    if let Some(payment_id) = &message.payment_id {
        item.insert("payment_id".into(), s(payment_id));
    }
    if let Some(at) = expires_at {
        item.insert(TTL_ATTRIBUTE.into(), n(at));
    }
    item
}

fn stored_message(item: &Item) -> Result<StoredMessage, StoreError> {
    let sk = get_s(item, "sk")?;
    let read = sk.starts_with("INBOX#R#");
    let raw_category = get_s(item, "category")?;
    let category = MessageCategory::parse(&raw_category)
        .ok_or_else(|| StoreError::Corrupt(format!("message category {raw_category}")))?;
    let uin = match item.get("uin") {
        Some(_) => Some(
            Uin::parse("uin", &get_s(item, "uin")?)
                .map_err(|_| StoreError::Corrupt("message uin".into()))?,
        ),
        None => None,
    };
    let payment_id = match item.get("payment_id") {
        Some(_) => Some(get_id::<PaymentId>(item, "payment_id")?),
        None => None,
    };
    Ok(StoredMessage {
        message: Message {
            id: get_id(item, "id")?,
            category,
            title: get_s(item, "title")?,
            text: get_s(item, "text")?,
            uin,
            payment_id,
            created_at: get_n(item, "created_at")?,
        },
        read,
    })
}

/// Where a message is, by its pointer.
struct Pointer {
    created_at: i64,
    state: String,
}

impl DynamoStore {
    async fn pointer(
        &self,
        account_id: &AccountId,
        id: &MessageId,
    ) -> Result<Option<Pointer>, StoreError> {
        let Some(item) = self.get_consistent(pointer_key(account_id, id)).await? else {
            return Ok(None);
        };
        let state = get_s(&item, "state")?;
        if ![UNREAD, READ, DELETED].contains(&state.as_str()) {
            return Err(StoreError::Corrupt(format!("message state {state}")));
        }
        Ok(Some(Pointer {
            created_at: get_n(&item, "at")?,
            state,
        }))
    }

    fn new_pointer(
        &self,
        account_id: &AccountId,
        message: &Message,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut pointer = pointer_key(account_id, &message.id);
        pointer.insert("at".into(), n(message.created_at));
        pointer.insert("state".into(), s(UNREAD));
        self.put_new(pointer)
    }

    /// A pointer moved from `from` to `to`, kept until `expires_at`.
    fn move_pointer(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        (from, to): (&str, &str),
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        tx_update(
            self.update(pointer_key(account_id, id))
                .update_expression("SET #state = :to, #ttl = :ttl")
                .condition_expression("#state = :from")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to))
                .expression_attribute_values(":ttl", n(expires_at)),
        )
    }

    fn count_unread(
        &self,
        account_id: &AccountId,
        by: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        tx_update(
            self.update(counter_key(account_id))
                .update_expression("ADD unread :by")
                .expression_attribute_values(":by", n(by)),
        )
    }

    /// The transaction's parts that make the unread message `unread` read.
    fn read_parts(
        &self,
        account_id: &AccountId,
        unread: &StoredMessage,
        now: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let m = &unread.message;
        let expires_at = read_expiry(m.created_at, now);
        let was = message_sk(&place_of(&m.id, m.created_at, false));
        Ok(vec![
            self.delete_present(key(pk(account_id), &was))?,
            self.tx_put(message_item(account_id, m, true, Some(expires_at)))?,
            self.move_pointer(account_id, &m.id, (UNREAD, READ), expires_at)?,
        ])
    }

    /// A new message when the unread ones fill the cap: the oldest unread one is made read
    /// in the same transaction, and the counter stays. `Ok(false)`: kept before.
    async fn keep_past_cap(
        &self,
        account_id: &AccountId,
        message: &Message,
    ) -> Result<bool, StoreError> {
        let (oldest, _) = self
            .query_page(&pk(account_id), None, 1, |q| {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", s(pk(account_id)))
                    .expression_attribute_values(":prefix", s("INBOX#U#"))
                    .scan_index_forward(true)
            })
            .await?;
        let mut parts = vec![
            self.new_pointer(account_id, message)?,
            self.tx_put(message_item(account_id, message, false, None))?,
        ];
        match oldest.first() {
            Some(item) => {
                let oldest = stored_message(item)?;
                parts.extend(self.read_parts(account_id, &oldest, message.created_at)?);
            }
            // The counter says full but no message is unread: it is set right.
            None => parts.push(tx_update(
                self.update(counter_key(account_id))
                    .update_expression("SET unread = :one")
                    .expression_attribute_values(":one", n(1)),
            )?),
        }
        match self
            .transaction()
            .set_transact_items(Some(parts))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                if failed_conditions(e)?.contains(&0) {
                    Ok(false)
                } else {
                    Err(StoreError::Conflict)
                }
            }
        }
    }

    /// The query of a page of the list: newest first under `prefix`, without messages
    /// past their time, of one category if asked.
    fn list_query(
        account_id: &AccountId,
        query: &InboxQuery,
        now: i64,
    ) -> impl Fn(QueryFluentBuilder) -> QueryFluentBuilder {
        let prefix = if query.unread_only {
            "INBOX#U#"
        } else {
            "INBOX#"
        };
        let pk = pk(account_id);
        let category = query.category;
        move |q| {
            let q = q
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .scan_index_forward(false);
            match category {
                Some(c) => q
                    .filter_expression(
                        "(attribute_not_exists(#ttl) OR #ttl > :now) AND category = :category",
                    )
                    .expression_attribute_values(":category", s(c.as_str())),
                None => q.filter_expression("attribute_not_exists(#ttl) OR #ttl > :now"),
            }
        }
    }
}

impl InboxStore for DynamoStore {
    async fn keep_message(
        &self,
        account_id: &AccountId,
        message: &Message,
        max_unread: u32,
    ) -> Result<bool, StoreError> {
        let count = tx_update(
            self.update(counter_key(account_id))
                .update_expression("ADD unread :one")
                .condition_expression("attribute_not_exists(unread) OR unread < :max")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_unread)),
        )?;
        let sent = self
            .transaction()
            .transact_items(self.new_pointer(account_id, message)?)
            .transact_items(self.tx_put(message_item(account_id, message, false, None))?)
            .transact_items(count)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(e) => {
                if failed_conditions(e)?.contains(&0) {
                    return Ok(false);
                }
                self.keep_past_cap(account_id, message).await
            }
        }
    }

    async fn list_messages(
        &self,
        account_id: &AccountId,
        query: &InboxQuery,
        now: i64,
    ) -> Result<InboxPage, StoreError> {
        let pk = pk(account_id);
        let mut after = query.after.as_ref().map(message_sk);
        let mut messages = Vec::new();
        let mut rounds = 0;
        loop {
            rounds += 1;
            let wanted = query.limit.saturating_sub(messages.len());
            let (items, next) = self
                .query_page(
                    &pk,
                    after.as_deref(),
                    wanted,
                    Self::list_query(account_id, query, now),
                )
                .await?;
            for item in &items {
                messages.push(stored_message(item)?);
            }
            let Some(next) = next else {
                return Ok(InboxPage {
                    messages,
                    next: None,
                });
            };
            if messages.len() >= query.limit || rounds >= FILTERED_ROUNDS {
                let place = next
                    .strip_prefix("INBOX#")
                    .and_then(Cursor::from_position)
                    .ok_or_else(|| StoreError::Corrupt(format!("inbox key {next}")))?;
                return Ok(InboxPage {
                    messages,
                    next: Some(place),
                });
            }
            after = Some(next);
        }
    }

    async fn mark_read(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(pointer) = self.pointer(account_id, id).await? else {
            return Ok(false);
        };
        match pointer.state.as_str() {
            READ => return Ok(true),
            DELETED => return Ok(false),
            _ => {}
        }
        let at = message_sk(&place_of(id, pointer.created_at, false));
        let Some(item) = self.get_consistent(key(pk(account_id), &at)).await? else {
            // Moved or deleted since the pointer was read.
            return Err(StoreError::Conflict);
        };
        let mut parts = self.read_parts(account_id, &stored_message(&item)?, now)?;
        parts.push(self.count_unread(account_id, -1)?);
        self.transact(parts).await?;
        Ok(true)
    }

    async fn delete_message(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let Some(pointer) = self.pointer(account_id, id).await? else {
            return Ok(false);
        };
        let read = match pointer.state.as_str() {
            DELETED => return Ok(false),
            READ => true,
            _ => false,
        };
        let at = message_sk(&place_of(id, pointer.created_at, read));
        let forget = now.saturating_add(secs(DELETED_MEMORY));
        let mut parts = vec![
            self.delete_present(key(pk(account_id), &at))?,
            self.move_pointer(account_id, id, (pointer.state.as_str(), DELETED), forget)?,
        ];
        if !read {
            parts.push(self.count_unread(account_id, -1)?);
        }
        self.transact(parts).await?;
        Ok(true)
    }

    async fn unread_count(&self, account_id: &AccountId) -> Result<u32, StoreError> {
        match self.get_consistent(counter_key(account_id)).await? {
            Some(item) if item.contains_key("unread") => Ok(get_n::<i64>(&item, "unread")?
                .max(0)
                .try_into()
                .unwrap_or(0)),
            _ => Ok(0),
        }
    }
}
