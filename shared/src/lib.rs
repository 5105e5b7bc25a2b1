//! The library every uslugi Lambda function is built on.
//!
//! - [`domain`]: identifiers and their validation (phones, e-mails, code purposes).
//! - [`services`]: business rules, written against small store and notifier traits.
//! - [`adapters`]: the technology behind those traits (DynamoDB, SNS, SES).
//! - [`http`]: request parsing and the one place where errors become HTTP responses.
//! - [`json`]: reading JSON bodies field by field, every problem with its JSON Pointer;
//!   [`validation`] ends such a check.
//! - [`faults`]: fault injection into the adapters, for tests and chaos runs (never in prod).
//! - [`entry`]: how every function starts, and the request loop of the API functions.
//! - [`config`], [`logging`], [`metrics`], [`redact`], [`crypto`]: cold-start plumbing and
//!   safety rules.
//! - `testing` (tests only): the doubles the services' tests run against.

pub mod access;
pub mod adapters;
pub mod batch;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod entry;
pub mod error;
pub mod faults;
pub mod http;
pub mod json;
pub mod logging;
pub mod metrics;
pub mod passwords;
pub mod redact;
pub mod services;
#[cfg(test)]
pub(crate) mod testing;
pub mod validation;

pub use error::{AppError, FieldError};
