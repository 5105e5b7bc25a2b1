//! The API as a client generated from its contract sees it: schemathesis reads
//! `docs/openapi.yaml`, generates requests that the spec allows, sends them to a local
//! stack (following the spec's links from one answer into the next request) and checks
//! every answer against the spec: no server error, a documented status, the documented
//! content type, headers and body.
//!
//! Each group of operations runs with the bearer its routes take: none for the public
//! routes, a citizen's session, a biller's key, an operator's key. The routes that end
//! the session they are called with run last, with a session of their own.
//!
//! The number of examples per operation and the seed are fixed, so a run is repeatable
//! and short enough for CI. `SCHEMATHESIS_MAX_EXAMPLES` and `SCHEMATHESIS_SEED` change
//! them for a longer session (docs/testing.md).

mod support;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;

use support::*;

/// Examples per operation in CI: enough to reach every documented status of the
/// cheap routes, few enough to stay within a few minutes on two cores.
const MAX_EXAMPLES: u32 = 25;
const SEED: u64 = 20261205;
/// Valid requests only, or (`all`) invalid ones too, which the server must refuse.
const DATA: &str = "positive";

/// The operations anyone may call (`security: []` in the spec).
const PUBLIC: &[&str] = &[
    "sendCode",
    "verifyCode",
    "register",
    "login",
    "completeTwoStepLogin",
    "startRecovery",
    "completeRecovery",
];
/// Citizen operations that end the session they are called with.
const SESSION_ENDING: &[&str] = &["logout", "revokeSession"];
const OPERATOR: &[&str] = &["confirmInPerson", "restoreAccess"];
const BILLER_TAG: &str = "charges";

/// The password of the citizens schemathesis acts as. Not the one of the spec's
/// examples, which schemathesis sends as they are: `DELETE /v1/account` with the
/// example's password would delete the account in the middle of the run.
const FUZZ_PASSWORD: &str = "Quartz-7-lantern#Fuzz";

/// A new citizen with [`FUZZ_PASSWORD`], and a session of theirs.
async fn citizen_unknown_to_the_spec(api: &Api) -> String {
    let email = unique_email();
    let phone = unique_phone();
    let email_token = verified(api, "email", &email, &email).await;
    let phone_token = verified(api, "sms", &phone, &phone).await;
    let mut body = registration(&email, &phone, &email_token, &phone_token);
    body["password"] = serde_json::json!(FUZZ_PASSWORD);
    let registered = api.post("/v1/accounts", &unique_ip(), body).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let session = login(api, &unique_ip(), &email, FUZZ_PASSWORD, false).await;
    assert_eq!(session.status, 201, "{}", session.body);
    text(&session.body["token"])
}

/// One schemathesis run: which operations, with which bearer.
struct Group {
    name: &'static str,
    bearer: Option<String>,
    filters: Vec<String>,
}

fn include_ids(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| ["--include-operation-id".to_string(), id.to_string()])
        .collect()
}

fn exclude_ids(ids: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| ["--exclude-operation-id".to_string(), id.to_string()])
        .collect()
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// Where schemathesis runs: under the target directory, never in the checkout, so that
/// nothing it writes lands in the repository.
fn work_dir(port: u16) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let dir = target.join("schemathesis").join(port.to_string());
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("schemathesis work dir {}: {e}", dir.display()));
    dir
}

async fn run_group(base: String, work: PathBuf, group: Group) {
    let root = repo_root();
    let max_examples: u32 = setting("SCHEMATHESIS_MAX_EXAMPLES", MAX_EXAMPLES);
    let seed: u64 = setting("SCHEMATHESIS_SEED", SEED);
    let data = std::env::var("SCHEMATHESIS_DATA").unwrap_or_else(|_| DATA.to_string());
    let mut command = tokio::process::Command::new(root.join(".venv/bin/schemathesis"));
    command
        .current_dir(&work)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .arg("run")
        .arg(root.join("docs/openapi.yaml"))
        .args(["--base-url", &base])
        .args(["--experimental", "openapi-3.1"])
        .args(["--checks", "all"])
        .args(["--data-generation-method", &data])
        .args(["--stateful", "links"])
        .args(["--hypothesis-seed", &seed.to_string()])
        .args(["--hypothesis-max-examples", &max_examples.to_string()])
        .args(["--hypothesis-database", "none"])
        .args([
            "--hypothesis-suppress-health-check",
            "too_slow,filter_too_much",
        ])
        .args(["--request-timeout", "30000"])
        .args(["--code-sample-style", "curl"])
        .args(["--no-color"])
        .args(&group.filters)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(bearer) = &group.bearer {
        command.args(["--header", &format!("Authorization: Bearer {bearer}")]);
    }
    let out = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("schemathesis did not start (is `make venv` done?): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // Every failure with its curl reproduction, then the summary.
        println!("{stdout}\n{stderr}");
        panic!(
            "schemathesis found problems in the {} operations (above)",
            group.name
        );
    }
    let summary = stdout
        .lines()
        .rev()
        .find(|l| l.contains("passed") || l.contains("No issues found"))
        .unwrap_or_default();
    println!("    {}: {}", group.name, summary.trim_matches(['=', ' ']));
}

fn main() {
    show_stack_warnings();
    run_suite(async {
        let (stack, api) = open_stack(&quick_sandbox(&[]), &[], 4).await;
        let session = citizen_unknown_to_the_spec(&api).await;
        let ending_session = citizen_unknown_to_the_spec(&api).await;
        let biller = new_biller("Школа № 1234");
        let operator = new_operator();
        let operator_key = text(&operator["key"]);
        let work = work_dir(stack.gateway_port());

        let mut private_of_citizen = exclude_ids(PUBLIC);
        private_of_citizen.extend(exclude_ids(SESSION_ENDING));
        private_of_citizen.extend(exclude_ids(OPERATOR));
        private_of_citizen.extend(["--exclude-tag".to_string(), BILLER_TAG.to_string()]);
        let groups = vec![
            Group {
                name: "public",
                bearer: None,
                filters: include_ids(PUBLIC),
            },
            Group {
                name: "citizen",
                bearer: Some(session),
                filters: private_of_citizen,
            },
            Group {
                name: "biller",
                bearer: Some(biller.key),
                filters: vec!["--include-tag".to_string(), BILLER_TAG.to_string()],
            },
            Group {
                name: "operator",
                bearer: Some(operator_key),
                filters: include_ids(OPERATOR),
            },
            Group {
                name: "session_ending",
                bearer: Some(ending_session),
                filters: include_ids(SESSION_ENDING),
            },
        ];
        let scenarios: Vec<Scenario> = groups
            .into_iter()
            .map(|group| {
                let (base, work) = (api.base.clone(), work.clone());
                let name = group.name;
                let run: Pin<Box<dyn Future<Output = ()> + Send>> =
                    Box::pin(run_group(base, work, group));
                let body: Box<dyn FnOnce(Api) -> _ + Send> = Box::new(move |_api| run);
                (name, body)
            })
            .collect();
        // One after another: each run already keeps the stack busy.
        let tally = run_all(&api, scenarios, false).await;
        stack.shutdown().await;
        let _ = std::fs::remove_dir_all(&work);
        tally
    })
}
