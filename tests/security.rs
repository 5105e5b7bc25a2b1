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

#[path = "security/billers.rs"]
mod billers;
#[path = "security/desk.rs"]
mod desk;
#[path = "security/family.rs"]
mod family;
#[path = "security/hygiene.rs"]
mod hygiene;
#[path = "security/levels.rs"]
mod levels;
#[path = "security/limits.rs"]
mod limits;
#[path = "security/stepup.rs"]
mod stepup;

use support::*;

/// `cargo lambda watch --concurrency` of this stack: at least the number of parallel
/// requests the race scenarios send.
pub const INSTANCES: u32 = 16;

/// Environment overrides every function of the security stack gets.
fn environment() -> Vec<(&'static str, String)> {
    vec![
        ("REGISTRY_SANDBOX_DELAY_MS", "0".to_string()),
        ("CODE_RESEND_INTERVAL_SECONDS", "0".to_string()),
        // A login or step-up code is fresh for two minutes here (five by default), so
        // that a scenario can hold a session older than that.
        (
            "STEP_UP_WINDOW_SECONDS",
            stepup::STEP_UP_WINDOW_SECS.to_string(),
        ),
        // Unconfirmed payments hold their bills for seconds here (minutes by default).
        (
            "PAYMENT_HOLD_SECONDS",
            stepup::PAYMENT_HOLD_SECS.to_string(),
        ),
    ]
}

/// Every attack scenario, by area, and whether the area's scenarios run at once. The
/// areas run one after another. Each scenario's flood of parallel requests is what its
/// race needs; many floods at once would only queue behind one another in the local
/// DynamoDB (one process on a small machine) until requests time out, which tests
/// nothing. The limits scenarios, each a flood of 16 to 90 requests, run one by one.
fn areas() -> Vec<(&'static str, Vec<Scenario>, bool)> {
    vec![
        ("billers", billers::scenarios(), true),
        ("family", family::scenarios(), true),
        ("hygiene", hygiene::scenarios(), true),
        ("levels", levels::scenarios(), true),
        ("stepup", stepup::scenarios(), true),
        ("limits", limits::scenarios(), false),
        ("desk", desk::scenarios(), false),
    ]
}

/// Starts every instance of the functions the scenarios reach, one burst of exactly
/// [`INSTANCES`] requests per function, before the scenarios' own floods: requests that
/// pile up while a function's instances are still starting can be left undelivered by
/// the local runtime, which stalls every scenario behind them.
async fn warm_up(api: &Api) {
    use reqwest::Method;
    let (_, token) = citizen(api).await;
    let routes = [
        (Method::GET, "/v1/account", true),
        (Method::GET, "/v1/sessions", true),
        (Method::GET, "/v1/profile", true),
        (Method::GET, "/v1/bills", true),
        (Method::GET, "/v1/payments", true),
        (Method::GET, "/v1/autopays", true),
        (Method::POST, "/v1/account/confirmation-letters", true),
        (Method::POST, "/v1/codes", false),
        (Method::POST, "/v1/recovery", false),
        (Method::POST, "/v1/sessions", false),
    ];
    for (method, path, signed_in) in routes {
        let token = signed_in.then_some(token.as_str());
        let body = (method == Method::POST).then(|| serde_json::json!({}));
        let replies = futures::future::join_all((0..INSTANCES).map(|_| {
            let (method, body) = (method.clone(), body.clone());
            async move { api.call(method, path, &unique_ip(), token, body).await }
        }))
        .await;
        for reply in replies {
            assert!(
                reply.status < 500,
                "warm-up {method} {path}: {}",
                reply.body
            );
        }
    }
}

fn main() {
    show_stack_warnings();
    run_suite(async {
        let (stack, api) = open_stack(&environment(), &[], INSTANCES).await;
        warm_up(&api).await;
        let mut tally = Tally::default();
        for (area, scenarios, at_once) in areas() {
            println!("\n{area}:");
            tally += run_all(&api, scenarios, at_once).await;
        }
        stack.shutdown().await;
        tally
    })
}
