//! The whole local stack as the load, chaos and autopay runs start and read it: every
//! function of the template under `cargo lambda watch` (debug builds), moto and the
//! gateway.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use shared::config::{Env, TableConfig};
use shared::crypto::Hasher;
use uslugi_local::provision::Clients;
use uslugi_local::{Stack, StackOptions};

use crate::cli::StackCommon;
use crate::system::MachineInfo;

/// What the load test's and the chaos run's reports say of the run itself, gathered the
/// same way by both at its end: the machine, the instances of each function, and how long
/// the setup before the measured phase and the whole run took.
pub struct RunSummary {
    pub machine: MachineInfo,
    pub lambda_concurrency: u32,
    pub setup: Duration,
    pub elapsed: Duration,
}

impl RunSummary {
    /// The summary of a run on the stack `flags` describe, started at `started`, whose
    /// setup took `setup`: read now, as the run ends.
    pub async fn at_end(flags: &StackCommon, setup: Duration, started: Instant) -> Self {
        let machine = crate::system::machine_info(&flags.repo).await;
        Self {
            machine,
            lambda_concurrency: flags.lambda_concurrency,
            setup,
            elapsed: started.elapsed(),
        }
    }
}

/// Writes the report of the run `command` (`load`, `chaos`) to its `--out` (the whole file
/// or none), prints it, and says where it went.
pub fn publish(flags: &StackCommon, command: &str, markdown: &str) -> Result<()> {
    crate::system::write_whole(&flags.out, "md.tmp", markdown)?;
    println!("{markdown}");
    eprintln!("uslugi-bench {command}: wrote {}", flags.out.display());
    Ok(())
}

/// The options of a run's stack: the repository's template, free ports, build output to
/// log files, `--lambda-concurrency` instances a function; the run adds its overrides.
pub fn options(flags: &StackCommon) -> StackOptions {
    let repo = &flags.repo;
    StackOptions {
        repo_root: repo.to_path_buf(),
        template: repo.join("infra/template.yaml"),
        gateway_port: 0,
        moto_port: 0,
        lambda_port: 0,
        env_overrides: Vec::new(),
        param_overrides: Vec::new(),
        lambda_concurrency: flags.lambda_concurrency,
        quiet: true,
    }
}

/// Variables (or parameters) as a table of literals, in the owned pairs the stack's and
/// the scenarios' overrides are: one conversion instead of two `.into()` a line.
pub fn variables(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Starts the stack (the first build takes minutes).
pub async fn start(options: StackOptions) -> Result<Stack> {
    Stack::start(options)
        .await
        .context("starting the local stack")
}

/// The environment the stack gives `binary`.
pub fn environment(stack: &Stack, binary: &str) -> Result<BTreeMap<String, String>> {
    stack
        .function(binary)
        .map(|f| f.environment.clone())
        .with_context(|| format!("the stack runs no function {binary}"))
}

/// The HMAC keys the stack's functions read at cold start, from moto, as they read them.
pub async fn hasher(moto: &Clients, env: &BTreeMap<String, String>) -> Result<Hasher> {
    let arn = env
        .get("HMAC_SECRET_ARN")
        .context("the stack gives its functions no HMAC_SECRET_ARN")?;
    let secret = moto
        .secretsmanager
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .with_context(|| format!("reading {arn}"))?;
    Hasher::from_secret(secret.secret_string().unwrap_or_default())
        .with_context(|| format!("the HMAC secret {arn}"))
}

/// The single table as the `pay` function is configured for it, with the stack's keys.
pub async fn pay_table(stack: &Stack, moto: &Clients) -> Result<TableConfig> {
    let pay_env = environment(stack, "pay")?;
    let hasher = hasher(moto, &pay_env).await?;
    TableConfig::from_env(&Env(|name: &str| pay_env.get(name).cloned()), hasher)
        .context("pay: table configuration")
}
