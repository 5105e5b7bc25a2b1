//! Domain types: values that are valid by construction.

mod contact;
mod phone;

pub use contact::{Channel, Destination, Email, Purpose};
pub use phone::Phone;
