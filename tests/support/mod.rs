//! What every end-to-end test needs: a local stack, an HTTP client that behaves like
//! an API client, a view of the outbox and of the DynamoDB table, and a tiny runner
//! that runs scenarios concurrently, reports each one and always tears the stacks down.

#![allow(dead_code)]

pub mod spec;

mod accounts;
mod admin;
mod bills;
mod client;
mod payments;
mod profiles;
mod runner;
mod tbank;

// Each suite uses some of these.
#[allow(unused_imports)]
pub use {
    accounts::*, admin::*, bills::*, client::*, payments::*, profiles::*, runner::*, tbank::*,
};

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{json, Value};
use uslugi_local::{Stack, StackOptions};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Prints the local stack's own warnings (a function that timed out or failed behind the
/// gateway's 500, a poller that gave up) on the test's output, so that a failed run
/// says why. `E2E_LOG` takes a filter in `RUST_LOG` form instead.
pub fn show_stack_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("E2E_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("uslugi_local=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Starts a stack on free ports with the given environment overrides for every function.
pub async fn start_stack(env: &[(&str, String)]) -> Stack {
    start_stack_with(env, &[]).await
}

/// Starts a stack with environment and template parameter overrides.
pub async fn start_stack_with(env: &[(&str, String)], params: &[(&str, String)]) -> Stack {
    start_stack_scaled(env, params, 4).await
}

/// Starts a stack whose functions each run `lambda_concurrency` instances, so that
/// concurrent requests really run at once (races need more than one instance).
pub async fn start_stack_scaled(
    env: &[(&str, String)],
    params: &[(&str, String)],
    lambda_concurrency: u32,
) -> Stack {
    let root = repo_root();
    let opts = StackOptions {
        template: root.join("infra/template.yaml"),
        repo_root: root,
        gateway_port: free_port(),
        moto_port: free_port(),
        lambda_port: 0,
        env_overrides: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        param_overrides: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        lambda_concurrency,
        quiet: true,
    };
    match Stack::start(opts).await {
        Ok(stack) => stack,
        Err(e) => panic!("local stack did not start: {e}"),
    }
}

/// The settings most suites start from, then `more`: the sandbox registry answers at once
/// and a code may be sent again at once (sign-up, recovery and confirmations send several
/// to one contact within a minute).
pub fn quick_sandbox<'a>(more: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut env = vec![
        ("REGISTRY_SANDBOX_DELAY_MS", "0".to_string()),
        ("CODE_RESEND_INTERVAL_SECONDS", "0".to_string()),
    ];
    env.extend_from_slice(more);
    env
}

/// Starts a stack of `instances` per function with `env` and template `params`, keeps its
/// environment for [`admin`], and returns it with a client.
pub async fn open_stack(
    env: &[(&str, String)],
    params: &[(&str, String)],
    instances: u32,
) -> (Stack, Api) {
    let stack = start_stack_scaled(env, params, instances).await;
    remember_admin_env(&stack);
    let api = Api::new(&stack).await;
    (stack, api)
}

/// Runs `scenarios` on the stack (concurrently or one by one), then tears it down.
pub async fn run_then_stop(
    stack: Stack,
    api: &Api,
    scenarios: Vec<Scenario>,
    concurrently: bool,
) -> Tally {
    let tally = run_all(api, scenarios, concurrently).await;
    stack.shutdown().await;
    tally
}

/// Runs a suite's `body` (which starts its stacks and runs its scenarios) on a runtime of
/// its own, prints the closing lines and ends the process, non-zero when anything failed.
pub fn run_suite(body: impl Future<Output = Tally>) -> ! {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    runtime.block_on(body).finish()
}
