//! Technology behind the service traits. Each adapter is named by what it runs on.

pub mod aws;
pub mod dynamodb;
pub mod notify;
