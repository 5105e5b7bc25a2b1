//! The inbox: messages by account, the ids of deleted ones remembered.

use super::*;
use crate::domain::MessageId;
use crate::services::inbox::{Cursor, InboxPage, InboxQuery, InboxStore, Message, StoredMessage};

/// The list's order: unread first, each newest first (by time, then id).
fn order(m: &StoredMessage) -> (bool, std::cmp::Reverse<i64>, std::cmp::Reverse<MessageId>) {
    (
        m.read,
        std::cmp::Reverse(m.message.created_at),
        std::cmp::Reverse(m.message.id.clone()),
    )
}

impl State {
    /// An account's messages in the list's order.
    pub fn inbox_of(&self, account_id: &AccountId) -> Vec<StoredMessage> {
        let mut all: Vec<StoredMessage> = self
            .inbox
            .get(account_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by_key(order);
        all
    }
}

impl InboxStore for MemStore {
    async fn keep_message(
        &self,
        account_id: &AccountId,
        message: &Message,
        max_unread: u32,
    ) -> Result<bool, StoreError> {
        self.write_if("keep_message", |state| {
            if state
                .inbox_deleted
                .contains(&(account_id.clone(), message.id.clone()))
            {
                return false;
            }
            let inbox = state.inbox.entry(account_id.clone()).or_default();
            if inbox.contains_key(&message.id) {
                return false;
            }
            let unread = inbox.values().filter(|m| !m.read).count();
            if unread >= max_unread as usize {
                let oldest = inbox
                    .values_mut()
                    .filter(|m| !m.read)
                    .min_by_key(|m| (m.message.created_at, m.message.id.clone()));
                if let Some(oldest) = oldest {
                    oldest.read = true;
                }
            }
            inbox.insert(
                message.id.clone(),
                StoredMessage {
                    message: message.clone(),
                    read: false,
                },
            );
            true
        })
        .await
    }

    async fn list_messages(
        &self,
        account_id: &AccountId,
        query: &InboxQuery,
        _now: i64,
    ) -> Result<InboxPage, StoreError> {
        self.read("list_messages", |state| {
            let after = query.after.as_ref().map(|c| {
                (
                    c.read,
                    std::cmp::Reverse(c.created_at),
                    std::cmp::Reverse(c.id.clone()),
                )
            });
            let all: Vec<StoredMessage> = state
                .inbox_of(account_id)
                .into_iter()
                .filter(|m| !query.unread_only || !m.read)
                .filter(|m| query.category.is_none_or(|c| m.message.category == c))
                .filter(|m| after.as_ref().is_none_or(|a| order(m) > *a))
                .collect();
            let more = all.len() > query.limit;
            let messages: Vec<StoredMessage> = all.into_iter().take(query.limit).collect();
            let next = if more {
                messages.last().map(Cursor::after)
            } else {
                None
            };
            InboxPage { messages, next }
        })
        .await
    }

    async fn mark_read(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        _now: i64,
    ) -> Result<bool, StoreError> {
        self.write("mark_read", |state| {
            match state.inbox.get_mut(account_id).and_then(|m| m.get_mut(id)) {
                Some(message) => {
                    message.read = true;
                    true
                }
                None => false,
            }
        })
        .await
    }

    async fn delete_message(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        _now: i64,
    ) -> Result<bool, StoreError> {
        self.write("delete_message", |state| {
            let removed = state
                .inbox
                .get_mut(account_id)
                .and_then(|m| m.remove(id))
                .is_some();
            if removed {
                state.inbox_deleted.insert((account_id.clone(), id.clone()));
            }
            removed
        })
        .await
    }

    async fn unread_count(&self, account_id: &AccountId) -> Result<u32, StoreError> {
        self.read("unread_count", |state| {
            let unread = state
                .inbox_of(account_id)
                .iter()
                .filter(|m| !m.read)
                .count();
            u32::try_from(unread).unwrap_or(u32::MAX)
        })
        .await
    }
}
