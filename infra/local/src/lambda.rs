//! Running functions under `cargo lambda watch` and invoking them through its
//! Lambda Invoke API.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

/// How long an invocation may take while the function may still be compiling
/// (first call, or after a source change when reloading).
const BUILD_ALLOWANCE: Duration = Duration::from_secs(900);

/// One function as served by its own `cargo lambda watch` instance.
#[derive(Debug)]
pub struct FunctionEndpoint {
    pub logical_id: String,
    pub binary: String,
    /// `http://127.0.0.1:<port>/2015-03-31/functions/<binary>/invocations`
    pub invoke_url: String,
    pub timeout: Duration,
    /// Whether code reload is on, so any call may wait for a rebuild.
    pub reload: bool,
    warm: AtomicBool,
}

impl FunctionEndpoint {
    pub fn new(logical_id: &str, binary: &str, port: u16, timeout: Duration, reload: bool) -> Self {
        FunctionEndpoint {
            logical_id: logical_id.to_string(),
            binary: binary.to_string(),
            invoke_url: invoke_url(port, binary),
            timeout,
            reload,
            warm: AtomicBool::new(false),
        }
    }

    /// The wait for a result: the function's own timeout plus slack once it
    /// has answered, else long enough for a debug build.
    fn wait(&self) -> Duration {
        if self.reload || !self.warm.load(Ordering::Relaxed) {
            BUILD_ALLOWANCE
        } else {
            self.timeout + Duration::from_secs(5)
        }
    }

    /// Invokes the function with `payload` and returns its result.
    pub async fn invoke(
        &self,
        http: &reqwest::Client,
        payload: &Value,
    ) -> Result<Value, InvokeError> {
        let response = http
            .post(&self.invoke_url)
            .timeout(self.wait())
            .json(payload)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    InvokeError::Timeout(self.logical_id.clone())
                } else {
                    InvokeError::Unreachable(format!("{}: {e}", self.logical_id))
                }
            })?;
        let status = response.status();
        let function_error = response.headers().contains_key("x-amz-function-error");
        let bytes = response
            .bytes()
            .await
            .map_err(|e| InvokeError::Unreachable(format!("{}: {e}", self.logical_id)))?;
        // The function answered, so it is built and running.
        self.warm.store(true, Ordering::Relaxed);
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        // cargo lambda watch answers a function error or panic with HTTP 500
        // and {"errorType", "errorMessage"}; the real Invoke API uses 200 plus
        // X-Amz-Function-Error. Both are handled.
        if !status.is_success() || function_error {
            return Err(InvokeError::Function {
                function: self.logical_id.clone(),
                status: status.as_u16(),
                error_type: body
                    .get("errorType")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                message: body
                    .get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| body.to_string()),
                body,
            });
        }
        Ok(body)
    }
}

pub fn invoke_url(port: u16, binary: &str) -> String {
    format!("http://127.0.0.1:{port}/2015-03-31/functions/{binary}/invocations")
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    #[error("{function} failed ({status}): {error_type}: {message}")]
    Function {
        function: String,
        status: u16,
        error_type: String,
        message: String,
        body: Value,
    },
    #[error("{0} did not answer in time")]
    Timeout(String),
    #[error("cannot reach {0}")]
    Unreachable(String),
}

/// Variables of this process that cargo (and so the function build) needs;
/// everything else stays out of the functions' environments.
fn passes_through(key: &str) -> bool {
    const EXACT: &[&str] = &[
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "TZ",
        "TMPDIR",
        "TERM",
        "NO_COLOR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "RUSTC",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_INCREMENTAL",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CC",
        "CXX",
        "AR",
        "CFLAGS",
        "CXXFLAGS",
        "LDFLAGS",
        "PKG_CONFIG_PATH",
    ];
    const PREFIXES: &[&str] = &[
        "LC_",
        "CARGO_BUILD_",
        "CARGO_PROFILE_",
        "CARGO_NET_",
        "CARGO_HTTP_",
        "CARGO_REGISTRIES_",
        "CARGO_REGISTRY_",
        "CARGO_TERM_",
        "CARGO_TARGET_",
    ];
    EXACT.contains(&key) || PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Variables cargo lambda reads for itself: `RUST_LOG=info` meant for a
/// function would also turn on its own (very verbose) logging. They reach the
/// function through `--env-file`, which sets them for the function only.
const TOOL_VARS: &[&str] = &["RUST_LOG"];

/// The value quoted for cargo lambda's env-file parser, if it survives it:
/// single quotes keep commas, spaces and `=`, but backslash sequences are
/// still interpreted and a quote cannot be escaped.
fn env_file_value(value: &str) -> Option<String> {
    (!value.contains(['\'', '\\', '\n', '\r'])).then(|| format!("'{value}'"))
}

/// Settings for one `cargo lambda watch` instance.
pub struct WatchCommand<'a> {
    pub cargo_lambda: &'a Path,
    pub manifest: &'a Path,
    pub target_dir: &'a Path,
    pub binary: &'a str,
    pub port: u16,
    pub concurrency: u32,
    pub reload: bool,
    /// The function's complete environment.
    pub environment: &'a BTreeMap<String, String>,
    /// Where to write the `--env-file` for [`TOOL_VARS`]; without it they are
    /// set on the watch process like everything else.
    pub env_file: Option<&'a Path>,
}

impl WatchCommand<'_> {
    /// The function's variables are set on the watch process itself, which
    /// passes its environment on to the function. `--env-var` would split
    /// values at commas and `--env-file` interprets backslashes and rejects
    /// unquoted spaces or `=`, so neither carries arbitrary values faithfully;
    /// only [`TOOL_VARS`] go through the env file. The environment is cleared
    /// first so that nothing from this process (AWS profiles, RUST_LOG, ...)
    /// leaks into a function.
    pub fn build(&self) -> std::io::Result<Command> {
        let mut cmd = Command::new(self.cargo_lambda);
        cmd.arg("lambda")
            .arg("watch")
            .arg("--invoke-address")
            .arg("127.0.0.1")
            .arg("--invoke-port")
            .arg(self.port.to_string())
            .arg("--manifest-path")
            .arg(self.manifest)
            .arg("--bin")
            .arg(self.binary)
            .arg("--concurrency")
            .arg(self.concurrency.max(1).to_string());
        if !self.reload {
            cmd.arg("--ignore-changes");
        }
        if let Some(path) = self.env_file {
            let lines: Vec<String> = self.file_vars().map(|(k, v)| format!("{k}={v}")).collect();
            if !lines.is_empty() {
                std::fs::write(path, lines.join("\n") + "\n")?;
                cmd.arg("--env-file").arg(path);
            }
        }
        self.apply_environment(&mut cmd);
        Ok(cmd)
    }

    /// Variables that go through the env file, quoted.
    fn file_vars(&self) -> impl Iterator<Item = (&String, String)> + '_ {
        self.env_file.into_iter().flat_map(move |_| {
            self.environment
                .iter()
                .filter(|(k, _)| TOOL_VARS.contains(&k.as_str()))
                .filter_map(|(k, v)| env_file_value(v).map(|q| (k, q)))
        })
    }
}

impl WatchCommand<'_> {
    fn apply_environment(&self, cmd: &mut Command) {
        if let Some(dir) = self.manifest.parent() {
            cmd.current_dir(dir);
        }
        cmd.env_clear();
        for (k, v) in std::env::vars_os() {
            if k.to_str().is_some_and(passes_through) {
                cmd.env(&k, v);
            }
        }
        cmd.env("CARGO_TARGET_DIR", self.target_dir);
        let in_file: Vec<&String> = self.file_vars().map(|(k, _)| k).collect();
        for (k, v) in self.environment {
            if !in_file.contains(&k) {
                cmd.env(k, v);
            }
        }
    }

    /// `cargo build` of the function exactly as `cargo lambda watch` later
    /// runs it (`cargo run --manifest-path <root> --bin <binary>`, dev profile,
    /// same environment), so the watch finds it up to date. Each binary is
    /// built on its own: one `cargo build` of several would unify their
    /// features and produce other artifacts than the watch uses.
    pub fn prebuild(&self) -> Command {
        let mut cmd = Command::new("cargo");
        cmd.arg("build")
            .arg("--manifest-path")
            .arg(self.manifest)
            .arg("--bin")
            .arg(self.binary);
        self.apply_environment(&mut cmd);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `codes` function's watch command on port 9001, in a repository at `/repo`.
    fn codes_watch(
        cargo_lambda: &str,
        environment: &BTreeMap<String, String>,
        concurrency: u32,
        reload: bool,
        env_file: Option<&Path>,
    ) -> Command {
        WatchCommand {
            cargo_lambda: Path::new(cargo_lambda),
            manifest: Path::new("/repo/Cargo.toml"),
            target_dir: Path::new("/repo/target"),
            binary: "codes",
            port: 9001,
            concurrency,
            reload,
            environment,
            env_file,
        }
        .build()
        .unwrap()
    }

    fn args_of(cmd: &Command) -> Vec<String> {
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn watch_command_line_and_environment() {
        let mut env = BTreeMap::new();
        env.insert(
            "TABLE_NAME".to_string(),
            "t, with comma=and equals".to_string(),
        );
        env.insert("PATH".to_string(), "/fn/path".to_string());
        let cmd = codes_watch("/repo/.venv/bin/cargo-lambda", &env, 2, false, None);
        let args = args_of(&cmd);
        assert_eq!(
            args,
            [
                "lambda",
                "watch",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                "9001",
                "--manifest-path",
                "/repo/Cargo.toml",
                "--bin",
                "codes",
                "--concurrency",
                "2",
                "--ignore-changes"
            ]
        );
        let envs: BTreeMap<_, _> = cmd
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().into_owned(),
                    v?.to_string_lossy().into_owned(),
                ))
            })
            .collect();
        assert_eq!(envs["TABLE_NAME"], "t, with comma=and equals");
        assert_eq!(envs["CARGO_TARGET_DIR"], "/repo/target");
        // The function's own value wins over the pass-through.
        assert_eq!(envs["PATH"], "/fn/path");
        assert!(!envs.contains_key("AWS_PROFILE"));
    }

    #[test]
    fn rust_log_goes_through_the_env_file() {
        let dir = std::env::temp_dir().join(format!("uslugi-local-env-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.env");
        let mut env = BTreeMap::new();
        env.insert("RUST_LOG".to_string(), "info,aws_config=warn".to_string());
        env.insert("TABLE_NAME".to_string(), "t".to_string());
        let cmd = codes_watch("cargo-lambda", &env, 1, true, Some(&file));
        let args = args_of(&cmd);
        assert!(!args.contains(&"--ignore-changes".to_string()));
        assert!(args.contains(&"--env-file".to_string()));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "RUST_LOG='info,aws_config=warn'\n"
        );
        let keys: Vec<_> = cmd
            .get_envs()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(keys.contains(&"TABLE_NAME".to_string()));
        assert!(!keys.contains(&"RUST_LOG".to_string()));
        std::fs::remove_dir_all(&dir).ok();
    }

    /// `make dev` reloads only for what `.cargolambdaignore` lets through: every crate
    /// the functions are built from must be inside it, or a change to it would go unseen.
    #[test]
    fn the_reload_scope_covers_every_crate_the_functions_use() {
        let root = crate::find_repo_root(env!("CARGO_MANIFEST_DIR")).unwrap();
        let root = std::fs::canonicalize(root).unwrap();
        let ignore = std::fs::read_to_string(root.join(".cargolambdaignore")).unwrap();
        let watched: Vec<&str> = ignore
            .lines()
            .filter_map(|l| l.strip_prefix("!/"))
            .map(|l| l.trim_end_matches("/**").trim_end_matches('/'))
            .collect();
        assert!(watched.contains(&"Cargo.toml") && watched.contains(&"Cargo.lock"));
        let is_watched = |path: &Path| {
            let relative = path.strip_prefix(&root).unwrap();
            watched.iter().any(|w| relative.starts_with(w))
        };
        let mut crates = vec![root.clone(), root.join("shared")];
        for entry in std::fs::read_dir(root.join("functions")).unwrap() {
            crates.push(entry.unwrap().path());
        }
        let mut seen = 0;
        for dir in crates {
            if dir != root {
                assert!(is_watched(&dir), "{} is not watched", dir.display());
            }
            let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
                .unwrap()
                .parse()
                .unwrap();
            let tables = [
                manifest.get("dependencies"),
                manifest
                    .get("workspace")
                    .and_then(|w| w.get("dependencies")),
            ];
            for deps in tables.into_iter().flatten() {
                for (name, dep) in deps.as_table().unwrap() {
                    if let Some(path) = dep.get("path").and_then(|p| p.as_str()) {
                        let path = std::fs::canonicalize(dir.join(path)).unwrap();
                        assert!(
                            is_watched(&path),
                            "{name} ({}) is built into functions but not watched",
                            path.display()
                        );
                        seen += 1;
                    }
                }
            }
        }
        // The workspace's `shared` at least: the check looked at something.
        assert!(seen >= 1);
    }

    #[test]
    fn env_file_quoting() {
        assert_eq!(env_file_value("a, b=c d").as_deref(), Some("'a, b=c d'"));
        assert_eq!(env_file_value("it's"), None);
        assert_eq!(env_file_value("a\\b"), None);
    }

    #[test]
    fn pass_through_is_limited() {
        assert!(passes_through("PATH"));
        assert!(passes_through("CARGO_HOME"));
        assert!(passes_through("CARGO_PROFILE_DEV_DEBUG"));
        assert!(!passes_through("AWS_PROFILE"));
        assert!(!passes_through("RUST_LOG"));
        assert!(!passes_through("CARGO_PKG_NAME"));
    }
}
