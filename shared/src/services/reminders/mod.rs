//! Reminders of documents that expire or must be replaced: the international passport and
//! a foreign document on their expiry, the RF passport on the 20th and 45th birthdays.
//!
//! - **When**: [`THRESHOLDS`] days before the due date and on the day itself. A daily job
//!   (`document-reminders`) reads the entries of the reminders' date index (one partition
//!   per day, written with the profile: see [`crate::services::profile::DueEntry`]) for
//!   the days that reach a threshold today, never scanning.
//! - **A missed day is caught up**: each threshold is read back [`CATCH_UP_DAYS`] days, so
//!   a document whose threshold fell on a day the job did not run is told on the next run
//!   (saying how many days are left then). A job down longer than that misses the
//!   threshold; the next one still comes.
//! - **Exactly once** per document, threshold and channel: a conditional claim item is
//!   written before sending, so a rerun of the day or two runs at once send nothing twice.
//!   A send that fails gives the claim back, for the next run to try again. A changed
//!   document has another stamp, so its reminders start again.
//! - **How**: by e-mail always (as the outcome of a profile check), and by SMS too when
//!   the citizen turned on SMS about their documents (the `verification.sms` switch of the
//!   notification settings).
//! - **Bounded**: at most `batch` entries a run, read in pages; the rest wait for the next
//!   run, within the catch-up window.

use time::{Date, Duration, OffsetDateTime};

use crate::domain::AccountId;
use crate::metrics::NoticeChannel;
use crate::services::profile::{DueDocument, DueEntry};
use crate::services::StoreError;

mod service;
pub use service::*;

/// Days before the due date a reminder goes, the due day itself last.
pub const THRESHOLDS: [i64; 4] = [90, 30, 7, 0];

/// Days a threshold is read back, for runs that did not happen.
pub const CATCH_UP_DAYS: i64 = 3;

/// Entries one run looks at, unless configured (`REMINDERS_BATCH`).
pub const DEFAULT_BATCH: usize = 2_000;

/// Entries read per query page.
pub const PAGE_SIZE: usize = 100;

/// The threshold a document due on `due` is told for on `today`: the one whose window
/// (the threshold day and the [`CATCH_UP_DAYS`] after it) holds today. `None` between
/// windows.
pub fn threshold_for(today: Date, due: Date) -> Option<i64> {
    let left = (due - today).whole_days();
    THRESHOLDS
        .iter()
        .copied()
        .find(|t| left <= *t && left >= t - CATCH_UP_DAYS)
}

/// The days whose partitions a run on `today` reads: for each threshold, the due dates
/// that reach it today and those that reached it on the missed days before.
pub fn days_to_read(today: Date) -> Vec<Date> {
    let mut days: Vec<Date> = THRESHOLDS
        .iter()
        .flat_map(|t| (0..=CATCH_UP_DAYS).map(move |k| t - k))
        .filter_map(|offset| today.checked_add(Duration::days(offset)))
        .collect();
    days.sort();
    days.dedup();
    days
}

/// An entry of the date index: whose document falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueItem {
    pub account_id: AccountId,
    pub entry: DueEntry,
}

/// A page of a day's entries; `next` continues it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuePage {
    pub items: Vec<DueItem>,
    pub next: Option<String>,
}

/// The claim of one reminder: a document (by its stamp), a threshold and a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReminderClaim<'a> {
    pub account_id: &'a AccountId,
    pub document: DueDocument,
    pub stamp: &'a str,
    pub threshold: i64,
    pub channel: NoticeChannel,
}

#[trait_variant::make(Send)]
pub trait ReminderStore {
    /// The entries due on `day`, at most `limit`, after the page `after` ended with.
    async fn due_on(
        &self,
        day: Date,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DuePage, StoreError>;

    /// Records that the reminder is being sent: `false` if it was already.
    async fn claim_reminder(
        &self,
        claim: &ReminderClaim<'_>,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Gives a claim back after its reminder could not be sent.
    async fn release_reminder(&self, claim: &ReminderClaim<'_>) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests;
