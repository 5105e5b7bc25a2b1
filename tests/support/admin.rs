//! The operator's command, `uslugi-admin`, run against the stack.

use super::*;

// ------------------------------------------------------------------ the admin command

/// The environment the stack gives its functions: what the admin command needs too.
pub static ADMIN_ENV: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Runs `uslugi-admin` (built by `make build` with the functions) against the stack.
fn run_admin(args: &[&str]) -> std::process::Output {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let env = ADMIN_ENV
        .get()
        .unwrap_or_else(|| panic!("no stack environment"));
    std::process::Command::new(target.join("debug/uslugi-admin"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("uslugi-admin: {e}"))
}

/// Runs `uslugi-admin` against the stack: whether it succeeded, and what it printed.
pub fn admin_outcome(args: &[&str]) -> (bool, Value) {
    let out = run_admin(args);
    let printed = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "uslugi-admin {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), printed)
}

/// Runs `uslugi-admin` against the stack and asserts that it succeeded.
pub fn admin(args: &[&str]) -> Value {
    let out = run_admin(args);
    assert!(
        out.status.success(),
        "uslugi-admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("uslugi-admin output: {e}"))
}

/// Keeps the stack's function environment for [`admin`].
pub fn remember_admin_env(stack: &Stack) {
    if let Some(f) = stack.functions().first() {
        let _ = ADMIN_ENV.set(f.environment.clone().into_iter().collect());
    }
}

/// The operator Петрова А. В. of МФЦ Арбат, as `create-operator` printed it (`key`,
/// `operator_id`).
pub fn new_operator() -> Value {
    admin(&[
        "create-operator",
        "--name",
        "Петрова А. В.",
        "--centre",
        "МФЦ Арбат",
    ])
}
