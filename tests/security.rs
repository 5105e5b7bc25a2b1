//! End-to-end attack scenarios: each one is tried the way an attacker would try it
//! against a running local stack, and must fail for the attacker. docs/security.md
//! names the attack each scenario stands for and the defence it proves.
//!
//! The stack runs every function with [`INSTANCES`] instances, so that a flood of
//! parallel requests is really served in parallel: with one instance per function the
//! local stack would serialise requests and hide every race.
//!
//! Each area's scenarios live in `tests/security/<area>.rs`, whose `scenarios()` lists
//! them.

mod support;

#[path = "security/family.rs"]
mod family;

use support::*;

/// `cargo lambda watch --concurrency` of this stack: at least the number of parallel
/// requests the race scenarios send.
pub const INSTANCES: u32 = 16;

/// Environment overrides every function of the security stack gets.
fn environment() -> Vec<(&'static str, String)> {
    vec![
        ("REGISTRY_SANDBOX_DELAY_MS", "0".to_string()),
        ("CODE_RESEND_INTERVAL_SECONDS", "0".to_string()),
    ]
}

/// Every attack scenario.
fn all() -> Vec<Scenario> {
    Vec::new().into_iter().chain(family::scenarios()).collect()
}

fn main() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    };
    let tally = runtime.block_on(async {
        let stack = start_stack_scaled(&environment(), &[], INSTANCES).await;
        remember_admin_env(&stack);
        let api = Api::new(&stack).await;
        let tally = run_all(&api, all(), true).await;
        stack.shutdown().await;
        tally
    });
    tally.finish()
}
