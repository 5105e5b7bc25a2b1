//! `make dev` reloads functions when what they are built from changes, and only then:
//! files that tools write into the repository (schemathesis' `.hypothesis/` and
//! `.schemathesis/`, notes, logs) must not restart a function in the middle of a run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use uslugi_local::{BuildOptions, Stack, StackOptions};

/// What `cargo run` prints each time the watch (re)starts the function's process: a
/// reload restarts the process under the same watch instance.
const PROCESS_START: &str = "Running `";
/// How long a change would take to reach the watch (its debounce is well under this).
const SETTLE: Duration = Duration::from_secs(5);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn process_starts(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(PROCESS_START)
        .count()
}

/// A request the codes function answers itself (a malformed body: 422, nothing sent).
async fn ask(http: &reqwest::Client, stack: &Stack) -> u16 {
    http.post(format!("{}/v1/codes", stack.gateway_url()))
        .json(&json!({"channel": "pigeon"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("codes did not answer: {e}"))
        .status()
        .as_u16()
}

#[tokio::test]
async fn tool_output_in_the_repository_does_not_restart_functions_but_sources_do() {
    let root = repo_root();
    let opts = StackOptions {
        lambda_concurrency: 1,
        ..StackOptions::new(&root)
    };
    let stack = Stack::start_with(
        opts,
        BuildOptions {
            reload: true,
            prebuild: true,
        },
    )
    .await
    .unwrap_or_else(|e| panic!("stack: {e}"));
    let codes = stack
        .functions()
        .iter()
        .find(|f| f.logical_id == "CodesFunction")
        .unwrap_or_else(|| panic!("no CodesFunction"));
    let log = stack
        .log_dir()
        .join(format!("{}-{}.log", codes.logical_id, codes.port));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    assert_eq!(ask(&http, &stack).await, 422);
    let started = process_starts(&log);
    assert_eq!(
        started, 1,
        "one function process after the first request ({log:?})"
    );

    // What a schemathesis run and a developer leave in the working directory.
    let written = [
        root.join(".hypothesis/examples/reload-test/example"),
        root.join(".schemathesis/reload-test.json"),
        root.join("reload-test-notes.md"),
        root.join("docs/reload-test.md"),
    ];
    // Folders the test makes are removed again; a real run's are left alone.
    let made: Vec<PathBuf> = [".hypothesis", ".schemathesis"]
        .iter()
        .map(|d| root.join(d))
        .filter(|d| !d.exists())
        .collect();
    for path in &written {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "not a source").unwrap();
    }
    tokio::time::sleep(SETTLE).await;
    let answered = ask(&http, &stack).await;
    let after_tools = process_starts(&log);
    for path in &written {
        std::fs::remove_file(path).ok();
    }
    std::fs::remove_dir_all(root.join(".hypothesis/examples/reload-test")).ok();
    for dir in &made {
        std::fs::remove_dir_all(dir).ok();
    }
    assert_eq!(answered, 422);
    assert_eq!(
        after_tools, started,
        "a file outside the sources restarted the function ({log:?})"
    );

    // A source of the function still reloads it (cargo rebuilds what the touch made stale).
    let source = root.join("functions/codes/src/main.rs");
    let text = std::fs::read(&source).unwrap();
    std::fs::write(&source, text).unwrap();
    tokio::time::sleep(SETTLE).await;
    // The rebuild may take minutes on a busy machine; the request waits for it.
    let patient = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    assert_eq!(ask(&patient, &stack).await, 422);
    assert!(
        process_starts(&log) > started,
        "a source change did not restart the function ({log:?})"
    );
    stack.shutdown().await;
}
