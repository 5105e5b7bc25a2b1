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
pub use store::{test_hasher, MemStore};
