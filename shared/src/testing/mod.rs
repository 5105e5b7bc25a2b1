//! Test doubles for the service-level tests (compiled for tests only): one in-memory
//! store behind every store trait, an acquirer, the registries, a notifier, and a clock.
//!
//! Each double counts its calls by operation (the trait method's name) in a
//! [`Script`], and fails the call a test chose: `double.script.fail("settle", 1,
//! Fault::Lost)` makes the first `settle` take effect and answer an error, as a timeout
//! does. [`MemStore::race`] lets a racing writer change the state just before a chosen
//! call, so that the call's condition meets a real concurrent write.

mod doubles;
mod script;
mod store;

pub use doubles::{Acquirer, Outbox, Registries, Reply};
pub use script::{Clock, Fault};
pub use store::{test_hasher, unpaid_charge, MemStore};

use crate::domain::AccountId;
use crate::services::identity::SecurityEvent;
use crate::AppError;

/// The security event of a citizen's profile edit at the clock's time.
pub fn profile_edit(account_id: &AccountId, clock: &Clock) -> SecurityEvent {
    SecurityEvent {
        account_id: account_id.clone(),
        kind: "profile_changed",
        at: clock.unix(),
        ip: "203.0.113.7".into(),
        user_agent: "test".into(),
    }
}

/// Fails the test unless `result` is the error of a store that could not be reached or
/// lost a race: the answer that makes a queue deliver the message again.
#[track_caller]
pub fn assert_unavailable<T: std::fmt::Debug>(result: &Result<T, AppError>) {
    assert!(
        matches!(result, Err(AppError::StoreUnavailable(_))),
        "{result:?}"
    );
}
