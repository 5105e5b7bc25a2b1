//! The reminders' date index (`DUE#{YYYY-MM-DD}` / `{account id}#{document}`, one partition
//! per day, written and deleted with the profile in its transaction) and the claims of
//! reminders sent (`ACCOUNT#{id}` /
//! `REMINDED#{document}#{stamp}#{threshold}#{channel}`, with a time to live).

use time::{Date, OffsetDateTime};

use super::*;
use crate::json::date_string;
use crate::services::profile::{DueDocument, DueEntry};
use crate::services::reminders::{DueItem, DuePage, ReminderClaim, ReminderStore};
use crate::services::StoreError;

/// How long a claim is kept after the due date: past the last reminder's catch-up days.
const CLAIM_MEMORY_SECS: i64 = 30 * 24 * 3600;

fn due_partition(day: Date) -> String {
    format!("DUE#{}", date_string(day))
}

/// The index entry of a document due on `entry.due`.
pub(super) fn due_key(account_id: &str, entry: &DueEntry) -> Item {
    key(
        due_partition(entry.due),
        &format!("{account_id}#{}", entry.document.as_str()),
    )
}

pub(super) fn due_item(account_id: &str, entry: &DueEntry) -> Item {
    let mut item = due_key(account_id, entry);
    item.extend([
        ("account_id".into(), s(account_id)),
        ("document".into(), s(entry.document.as_str())),
        ("stamp".into(), s(&entry.stamp)),
    ]);
    if let Some(age) = entry.age {
        item.insert("age".into(), n(age));
    }
    // Gone by itself once no reminder reads it any more; an account deleted meanwhile
    // leaves nothing behind for longer.
    let due_at = entry.due.midnight().assume_utc().unix_timestamp();
    item.insert(TTL_ATTRIBUTE.into(), n(due_at + CLAIM_MEMORY_SECS));
    item
}

fn due_from(day: Date, item: &Item) -> Result<DueItem, StoreError> {
    let document = get_s(item, "document")?;
    let document = DueDocument::parse(&document)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown due document {document}")))?;
    Ok(DueItem {
        account_id: get_id(item, "account_id")?,
        entry: DueEntry {
            document,
            due: day,
            stamp: get_s(item, "stamp")?,
            age: item.get("age").and_then(|_| get_n(item, "age").ok()),
        },
    })
}

fn claim_key(claim: &ReminderClaim<'_>) -> Item {
    key(
        format!("ACCOUNT#{}", claim.account_id),
        &format!(
            "REMINDED#{}#{}#{}#{}",
            claim.document.as_str(),
            claim.stamp,
            claim.threshold,
            claim.channel.as_str()
        ),
    )
}

impl ReminderStore for DynamoStore {
    async fn due_on(
        &self,
        day: Date,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DuePage, StoreError> {
        let pk = due_partition(day);
        let (items, next) = self
            .query_page(&pk, after, limit.max(1), |q| {
                q.key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(&pk))
            })
            .await?;
        Ok(DuePage {
            items: items
                .iter()
                .map(|item| due_from(day, item))
                .collect::<Result<_, _>>()?,
            next,
        })
    }

    async fn claim_reminder(
        &self,
        claim: &ReminderClaim<'_>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut item = claim_key(claim);
        item.extend([
            ("sent_at".into(), n(now.unix_timestamp())),
            (
                TTL_ATTRIBUTE.into(),
                n(now.unix_timestamp() + claim.threshold * 24 * 3600 + CLAIM_MEMORY_SECS),
            ),
        ]);
        Ok(self.put_if_absent(item).await?.written())
    }

    async fn release_reminder(&self, claim: &ReminderClaim<'_>) -> Result<(), StoreError> {
        self.delete(claim_key(claim)).await
    }
}
