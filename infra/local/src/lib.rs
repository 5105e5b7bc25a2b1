//! The uslugi stack on one machine, driven by `infra/template.yaml`:
//!
//! * moto stands in for DynamoDB, SQS, SES and SNS; the template's tables,
//!   queues and e-mail identities are created in it;
//! * every `AWS::Serverless::Function` runs under its own `cargo lambda watch`,
//!   with the environment the template gives it (intrinsics resolved);
//! * a small API Gateway emulator serves the HttpApi routes (payload format
//!   2.0, Lambda authorizers), feeds SQS event sources, and offers local-only
//!   helpers under `/_local/` (outbox of sent SMS/e-mail, scheduled invocations).
//!
//! ```no_run
//! # async fn demo() -> Result<(), uslugi_local::Error> {
//! use uslugi_local::{find_repo_root, Stack, StackOptions};
//! let root = find_repo_root(env!("CARGO_MANIFEST_DIR")).expect("inside the repository");
//! let stack = Stack::start(StackOptions::new(root)).await?;
//! println!("API at {}", stack.gateway_url());
//! stack.shutdown().await;
//! # Ok(()) }
//! ```

pub mod error;
pub mod events;
pub mod gateway;
pub mod intrinsics;
pub mod lambda;
pub mod model;
pub mod moto;
pub mod outbox;
pub mod ports;
pub mod process;
pub mod provision;
pub mod routes;
pub mod seed;
pub mod sqs;
mod stack;
pub mod tbank;
pub mod template;

pub use error::{Error, Result};
pub use ports::{free_port, free_ports};
pub use stack::{
    find_repo_root, function_environment, BuildOptions, FunctionInfo, Stack, StackOptions,
};
