//! The reminders' date index and their claims.

use time::{Date, OffsetDateTime};

use super::MemStore;
use crate::services::reminders::{DueItem, DuePage, ReminderClaim, ReminderStore};
use crate::services::StoreError;

/// A claim as the double keeps it.
fn claimed(
    claim: &ReminderClaim<'_>,
) -> (
    crate::domain::AccountId,
    &'static str,
    String,
    i64,
    &'static str,
) {
    (
        claim.account_id.clone(),
        claim.document.as_str(),
        claim.stamp.to_string(),
        claim.threshold,
        claim.channel.as_str(),
    )
}

impl ReminderStore for MemStore {
    /// Pages by the position in the day's entries (the cursor is the count read so far).
    async fn due_on(
        &self,
        day: Date,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DuePage, StoreError> {
        let skip: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
        self.read("due_on", |state| {
            let all: Vec<DueItem> = state
                .dues
                .iter()
                .filter(|((d, _, _), _)| *d == day)
                .map(|((_, account_id, _), entry)| DueItem {
                    account_id: account_id.clone(),
                    entry: entry.clone(),
                })
                .collect();
            let items: Vec<DueItem> = all.iter().skip(skip).take(limit).cloned().collect();
            let read = skip + items.len();
            DuePage {
                items,
                next: (read < all.len()).then(|| read.to_string()),
            }
        })
        .await
    }

    async fn claim_reminder(
        &self,
        claim: &ReminderClaim<'_>,
        _now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.write_if("claim_reminder", |state| {
            state.reminders_claimed.insert(claimed(claim))
        })
        .await
    }

    async fn release_reminder(&self, claim: &ReminderClaim<'_>) -> Result<(), StoreError> {
        self.write("release_reminder", |state| {
            state.reminders_claimed.remove(&claimed(claim));
        })
        .await
    }
}
