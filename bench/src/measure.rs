//! Running one function: repeated cold starts, then one process serving the warm run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde_json::Value as Json;
use tokio::process::Command;
use tokio::sync::oneshot;

use uslugi_local::intrinsics::{ACCOUNT_ID, REGION};
use uslugi_local::model::{Infrastructure, TableSpec};
use uslugi_local::provision::{self, Clients};

use crate::aws::snippet;
use crate::functions::FunctionSpec;
use crate::package::Package;
use crate::proxy::{Call, Recorder};
use crate::runtime_api::{Invocation, RuntimeApi};
use crate::scenario::{self, Scenario};
use crate::system::{self, Guarded, Memory};

/// How long a function may take to reach its first `next` before the run fails.
const INIT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Settings {
    pub proxy: SocketAddr,
    /// moto itself, for emptying tables between cycles (not through the proxy).
    pub moto: Clients,
    /// The template's tables.
    pub tables: Vec<TableSpec>,
    pub recorder: Arc<Recorder>,
    pub log_dir: PathBuf,
    pub cold_starts: usize,
    pub invocations: usize,
}

pub struct FunctionResult {
    pub spec: FunctionSpec,
    pub package: Package,
    /// One per counted start.
    pub cold: Vec<ColdStart>,
    pub overrides: Vec<(String, String)>,
    pub warm: Option<WarmRun>,
    /// Runs of fresh processes with other settings (see [`scenario::ThroughputPlan`]).
    pub throughput: Vec<ThroughputRun>,
}

/// A counted cold start: the init of a new process, then its first invocation. Their sum
/// is the cold start a caller waits for, so work moved out of the init into the first
/// request still shows.
#[derive(Debug, Clone)]
pub struct ColdStart {
    /// Exec → first `GET .../invocation/next`.
    pub init: Duration,
    /// `None` when the bench has no event to send the function.
    pub first: Option<FirstResponse>,
}

#[derive(Debug, Clone)]
pub struct FirstResponse {
    /// The scenario's case of the event.
    pub case: String,
    /// Event handed out → answer received.
    pub latency: Duration,
    /// AWS calls made while it was in flight.
    pub calls: usize,
}

impl ColdStart {
    /// Init plus the first response, when there was one.
    pub fn total(&self) -> Option<Duration> {
        self.first.as_ref().map(|f| self.init + f.latency)
    }
}

/// The floor binary's name, built with the harness (src/bin/floor.rs).
pub const FLOOR_BINARY: &str = "uslugi-bench-floor";

pub struct ThroughputRun {
    pub label: String,
    /// Set on top of the template for this run.
    pub overrides: Vec<(String, String)>,
    /// Units of work per event.
    pub items: usize,
    pub run: WarmRun,
}

pub struct WarmRun {
    pub describe: String,
    /// Init of the process that served the warm run.
    pub init: Duration,
    pub after_init: Memory,
    pub after_run: Memory,
    /// The first invocation after init, kept out of the warm figures.
    pub first: Sample,
    pub samples: Vec<Sample>,
    /// How many times the tables were emptied during the run.
    pub resets: usize,
    pub reset_every: Option<usize>,
    /// AWS calls made outside any invocation (during init, or left running).
    pub outside_calls: Vec<String>,
    /// Exact call counts the scenario required (and the run held to).
    pub budgets: Vec<scenario::CallBudget>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    /// The step's case, route, argon2id runs and units of work.
    pub label: scenario::Label,
    pub status: u16,
    pub latency: Duration,
    /// The AWS calls made inside the invocation, as the proxy saw them; the figures the
    /// report gives of them are read from here (see the methods).
    pub calls: Vec<Call>,
}

impl Sample {
    /// The operations called (`service.Operation`), in order.
    pub fn operations(&self) -> impl Iterator<Item = &str> {
        self.calls.iter().map(|c| c.operation.as_str())
    }

    /// Summed time of the AWS calls (proxy + moto) inside the invocation.
    pub fn aws_time(&self) -> Duration {
        self.calls.iter().map(|c| c.elapsed).sum()
    }

    /// The most AWS calls in flight at one moment of the invocation.
    pub fn max_in_flight(&self) -> usize {
        crate::proxy::max_in_flight(&self.calls)
    }

    /// AWS calls moto answered with an error status.
    pub fn aws_errors(&self) -> usize {
        self.calls.iter().filter(|c| c.status >= 400).count()
    }
}

pub async fn run(
    spec: FunctionSpec,
    package: Package,
    settings: &Settings,
) -> Result<FunctionResult> {
    let mut scenario = scenario::for_function(&spec, &settings.moto)?;
    let overrides = scenario
        .as_ref()
        .map(|s| s.env_overrides())
        .unwrap_or_default();
    let runner = Runner {
        spec: &spec,
        bootstrap: &package.bootstrap,
        settings,
        overrides: &overrides,
    };

    eprintln!(
        "uslugi-bench: {}: {} cold starts (+1 not counted)",
        spec.binary, settings.cold_starts
    );
    let cold_log = settings.log_dir.join(format!("{}-cold.log", spec.binary));
    let _ = std::fs::remove_file(&cold_log);
    let mut cold = Vec::with_capacity(settings.cold_starts);
    // The first start reads the binary from disk; the rest find it in the page cache,
    // as a Lambda worker that has the code does. Only those are counted.
    for i in 0..=settings.cold_starts {
        let start = runner.cold_start(scenario.as_mut(), &cold_log, i).await?;
        if i > 0 {
            cold.push(start);
        }
    }
    settings.recorder.take_outside();
    // The warm run starts a cycle of its own on empty tables, as if no cold start had
    // been sent anything.
    if let Some(s) = scenario.as_mut() {
        if s.reset_every().is_some() {
            runner.empty_tables().await?;
            s.on_reset();
        }
    }

    let warm = match scenario {
        Some(scenario) => Some(runner.warm(scenario, settings.invocations, "warm").await?),
        None => None,
    };

    let mut throughput = Vec::new();
    for (i, plan) in scenario::throughput_for(&spec, &settings.moto)?
        .into_iter()
        .enumerate()
    {
        let overrides = plan.scenario.env_overrides();
        let runner = Runner {
            overrides: &overrides,
            ..runner
        };
        eprintln!(
            "uslugi-bench: {}: throughput with {} ({} batches of {})",
            spec.binary, plan.label, plan.batches, plan.items
        );
        // One more batch than counted: the first after init is left out, as in the warm run.
        let run = runner
            .warm(
                plan.scenario,
                plan.batches + 1,
                &format!("throughput-{}", i + 1),
            )
            .await?;
        throughput.push(ThroughputRun {
            label: plan.label,
            overrides,
            items: plan.items,
            run,
        });
    }
    Ok(FunctionResult {
        spec: spec.clone(),
        package,
        cold,
        overrides,
        warm,
        throughput,
    })
}

/// Cold starts of the floor binary (`uslugi-bench-floor`, next to the harness), measured
/// as the functions' are, each answering one `{}` event.
pub async fn floor(settings: &Settings) -> Result<Vec<ColdStart>> {
    let exe = std::env::current_exe().context("finding the harness's own binary")?;
    let bootstrap = exe.with_file_name(FLOOR_BINARY);
    if !bootstrap.is_file() {
        bail!(
            "{} not found: build the harness's binaries (bench/run.sh does)",
            bootstrap.display()
        );
    }
    let spec = FunctionSpec {
        logical_id: "Floor".into(),
        binary: FLOOR_BINARY.into(),
        memory_mb: 128,
        timeout_s: 3,
        architectures: Vec::new(),
        json_logs: false,
        env: Default::default(),
        secret_env: Default::default(),
        hmac_secret: None,
        routes: Vec::new(),
        queues: Vec::new(),
    };
    let runner = Runner {
        spec: &spec,
        bootstrap: &bootstrap,
        settings,
        overrides: &[],
    };
    eprintln!(
        "uslugi-bench: {FLOOR_BINARY}: {} cold starts (+1 not counted)",
        settings.cold_starts
    );
    let log = settings.log_dir.join(format!("{FLOOR_BINARY}-cold.log"));
    let _ = std::fs::remove_file(&log);
    let event = serde_json::json!({});
    let mut cold = Vec::with_capacity(settings.cold_starts);
    for i in 0..=settings.cold_starts {
        let (mut process, init, api) = runner.start(&log).await?;
        let reply = runner
            .invoke(&api, &mut process, &event, "its first event", &log)
            .await?;
        process.stop().await;
        drop(api);
        if !reply.ok || reply.body.as_ref() != b"{}" {
            bail!(
                "{FLOOR_BINARY} answered {}: {}",
                if reply.ok { "a response" } else { "an error" },
                snippet(&String::from_utf8_lossy(&reply.body))
            );
        }
        if i > 0 {
            cold.push(ColdStart {
                init,
                first: Some(FirstResponse {
                    case: "`{}`".into(),
                    latency: reply.latency,
                    calls: reply.calls.len(),
                }),
            });
        }
    }
    settings.recorder.take_outside();
    Ok(cold)
}

#[derive(Clone, Copy)]
struct Runner<'a> {
    spec: &'a FunctionSpec,
    bootstrap: &'a Path,
    settings: &'a Settings,
    overrides: &'a [(String, String)],
}

impl Runner<'_> {
    fn function_name(&self) -> String {
        format!("uslugi-bench-{}", self.spec.logical_id)
    }

    /// What Lambda puts in a `provided.al2023` function's environment, then the
    /// template's variables, pointed at AWS through the counting proxy as the local stack
    /// points functions at moto, and the scenario's overrides.
    fn environment(&self, runtime_api: SocketAddr) -> Vec<(String, String)> {
        let name = self.function_name();
        let task_root = self
            .bootstrap
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mut env: Vec<(String, String)> = [
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.spec.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
            ("AWS_SESSION_TOKEN", "bench".into()),
            ("_HANDLER", "bootstrap".into()),
            ("LAMBDA_TASK_ROOT", task_root.clone()),
            ("LAMBDA_RUNTIME_DIR", task_root),
            ("TZ", ":UTC".into()),
            ("LANG", "en_US.UTF-8".into()),
            ("PATH", "/usr/local/bin:/usr/bin/:/bin".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if self.spec.json_logs {
            env.push(("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()));
            env.push(("AWS_LAMBDA_LOG_LEVEL".into(), "INFO".into()));
        }
        env.extend(uslugi_local::function_environment(
            &self.spec.env,
            &format!("http://{}", self.settings.proxy),
            self.overrides,
        ));
        env
    }

    /// Starts the function against a fresh Runtime API and waits for its first `next`.
    async fn start(&self, log: &Path) -> Result<(Guarded, Duration, RuntimeApi)> {
        let arn = format!(
            "arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}",
            self.function_name()
        );
        let mut api = RuntimeApi::start(
            arn,
            Duration::from_secs(self.spec.timeout_s),
            self.settings.recorder.clone(),
        )
        .await?;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(self.bootstrap);
        command
            .env_clear()
            .envs(self.environment(api.server.addr))
            .current_dir(self.bootstrap.parent().unwrap_or(Path::new("/")))
            .stdout(Stdio::from(out.try_clone()?))
            .stderr(Stdio::from(out));

        let started = Instant::now();
        let mut process = Guarded::spawn(&self.spec.binary, command)?;
        let init_error = async {
            match (&mut api.init_error).await {
                Ok(message) => message,
                Err(_) => std::future::pending().await,
            }
        };
        let ended = tokio::select! {
            biased;
            message = init_error => {
                process.stop().await;
                bail!("{} reported an init error: {}\nlog: {}", self.spec.binary, snippet(&message), log.display());
            }
            first = &mut api.first_next => first.map_err(|_| anyhow!("the Runtime API stand-in stopped"))?,
            status = process.exited() => {
                bail!(
                    "{} exited ({}) before asking for an event; last lines of {}:\n{}",
                    self.spec.binary,
                    status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    log.display(),
                    system::tail(log, 15)
                );
            }
            _ = tokio::time::sleep(INIT_TIMEOUT) => {
                process.stop().await;
                bail!("{} did not ask for an event within {INIT_TIMEOUT:?}; log: {}", self.spec.binary, log.display());
            }
        };
        Ok((process, ended - started, api))
    }

    /// A new process, timed to its first `next`, then sent the scenario's next event (the
    /// first of a cycle, on emptied tables, when the scenario has cycles) and timed to its
    /// answer, which must be the one the scenario expects.
    async fn cold_start(
        &self,
        scenario: Option<&mut Box<dyn Scenario>>,
        log: &Path,
        i: usize,
    ) -> Result<ColdStart> {
        let binary = &self.spec.binary;
        let Some(scenario) = scenario else {
            let (process, init, api) = self.start(log).await?;
            process.stop().await;
            drop(api);
            return Ok(ColdStart { init, first: None });
        };
        if scenario.reset_every().is_some() {
            self.empty_tables().await?;
            scenario.on_reset();
        }
        // Prepared before the process starts: fixtures are neither timed nor overlap the init.
        let step = scenario
            .next_step()
            .await
            .map_err(|e| e.context(format!("{binary}: preparing the event of cold start {i}")))?;
        let (mut process, init, api) = self.start(log).await?;
        let what = format!(
            "the first invocation of cold start {i} ({})",
            step.label.case
        );
        let reply = self
            .invoke(&api, &mut process, &step.event, &what, log)
            .await?;
        process.stop().await;
        drop(api);
        let (status, body) = scenario
            .answer(reply.ok, &reply.body)
            .with_context(|| format!("{binary}: answer to {what}"))?;
        if let Some(expect) = step.expect {
            if !expect.matches(status, &body) {
                bail!(
                    "{binary}: {what}: expected {}, got {status}: {} (log: {})",
                    expect.describe(),
                    snippet(&String::from_utf8_lossy(&reply.body)),
                    log.display()
                );
            }
        }
        scenario
            .observe(status, &body, &reply.calls)
            .map_err(|e| e.context(format!("{binary}: {what}")))?;
        Ok(ColdStart {
            init,
            first: Some(FirstResponse {
                case: step.label.case,
                latency: reply.latency,
                calls: reply.calls.len(),
            }),
        })
    }

    /// Hands the process one event and waits for its answer (or its exit, or the
    /// function's timeout and a margin).
    async fn invoke(
        &self,
        api: &RuntimeApi,
        process: &mut Guarded,
        event: &Json,
        what: &str,
        log: &Path,
    ) -> Result<crate::runtime_api::Reply> {
        let binary = &self.spec.binary;
        let reply_timeout = Duration::from_secs(self.spec.timeout_s + 5);
        let (tx, rx) = oneshot::channel();
        let payload = Bytes::from(serde_json::to_vec(event)?);
        api.jobs
            .send(Invocation {
                request_id: system::uuid(),
                payload,
                reply: tx,
            })
            .await
            .map_err(|_| anyhow!("the Runtime API stand-in stopped"))?;
        Ok(tokio::select! {
            reply = rx => reply.map_err(|_| anyhow!("the Runtime API stand-in dropped {what}"))?,
            status = process.exited() => bail!(
                "{binary} exited ({}) during {what}; last lines of {}:\n{}",
                status.map_or_else(|e| e.to_string(), |s| s.to_string()),
                log.display(),
                system::tail(log, 15)
            ),
            _ = tokio::time::sleep(reply_timeout) => bail!(
                "{binary} did not answer {what} within {reply_timeout:?}; log: {}",
                log.display()
            ),
        })
    }

    /// `total` invocations on one process; `tag` names its log and samples files.
    async fn warm(
        &self,
        mut scenario: Box<dyn Scenario>,
        total: usize,
        tag: &str,
    ) -> Result<WarmRun> {
        let binary = &self.spec.binary;
        eprintln!("uslugi-bench: {binary}: {total} invocations on one process");
        let budgets = scenario.call_budgets();
        let log = self.settings.log_dir.join(format!("{binary}-{tag}.log"));
        let _ = std::fs::remove_file(&log);
        let (mut process, init, api) = self.start(&log).await?;
        let pid = process
            .pid()
            .ok_or_else(|| anyhow!("{binary} has no pid"))?;
        let after_init = system::memory(pid)?;

        let mut samples = Vec::with_capacity(total);
        let mut mismatches = Vec::new();
        let reset_every = scenario.reset_every();
        let mut resets = 0;
        for n in 0..total {
            if reset_every.is_some_and(|every| n > 0 && n % every == 0) {
                self.empty_tables().await?;
                scenario.on_reset();
                resets += 1;
            }
            // Whatever the step prepares in moto happens here, before the clock starts.
            let step = scenario.next_step().await.map_err(|e| {
                e.context(format!(
                    "{binary}: preparing invocation {n}{}",
                    earlier(&mismatches)
                ))
            })?;
            let what = format!("invocation {n} ({})", step.label.case);
            let reply = self
                .invoke(&api, &mut process, &step.event, &what, &log)
                .await?;
            let (status, body) = scenario.answer(reply.ok, &reply.body).with_context(|| {
                format!("{binary}: answer to invocation {n} ({})", step.label.case)
            })?;
            if let Some(expect) = step.expect {
                if !expect.matches(status, &body) {
                    mismatches.push(format!(
                        "#{n} {}: expected {}, got {status}: {}",
                        step.label.case,
                        expect.describe(),
                        snippet(&String::from_utf8_lossy(&reply.body))
                    ));
                }
            }
            for budget in budgets.iter().filter(|b| b.case == step.label.case) {
                let made: Vec<&str> = reply
                    .calls
                    .iter()
                    .map(|c| c.operation.as_str())
                    .filter(|op| op.starts_with(budget.service))
                    .collect();
                if made.len() != budget.calls {
                    mismatches.push(format!(
                        "#{n} {}: must make exactly {} `{}*` calls, made {}: {}",
                        step.label.case,
                        budget.calls,
                        budget.service,
                        made.len(),
                        made.join(" ")
                    ));
                }
            }
            scenario.observe(status, &body, &reply.calls).map_err(|e| {
                e.context(format!(
                    "{binary}: invocation {n} ({}){}",
                    step.label.case,
                    earlier(&mismatches)
                ))
            })?;
            samples.push(Sample {
                label: step.label,
                status,
                latency: reply.latency,
                calls: reply.calls,
            });
        }
        let after_run = system::memory(pid)?;
        process.stop().await;
        drop(api);
        let outside_calls = self
            .settings
            .recorder
            .take_outside()
            .into_iter()
            .map(|c| c.operation)
            .collect();

        if !mismatches.is_empty() {
            bail!(
                "{binary}: {} of {total} answers were not what the scenario expects (log: {}):\n  {}",
                mismatches.len(),
                log.display(),
                first_mismatches(&mismatches)
            );
        }
        write_samples(
            &self
                .settings
                .log_dir
                .join(format!("{binary}-{tag}-samples.csv")),
            &samples,
        )?;
        let first = samples.remove(0);
        Ok(WarmRun {
            describe: scenario.describe(),
            init,
            after_init,
            after_run,
            first,
            samples,
            resets,
            reset_every,
            outside_calls,
            budgets,
        })
    }

    /// Drops and recreates every table. moto copies a whole table on each
    /// `TransactWriteItems`, so its answers slow down as tables fill; DynamoDB's do not.
    async fn empty_tables(&self) -> Result<()> {
        for table in &self.settings.tables {
            self.settings
                .moto
                .dynamodb
                .delete_table()
                .table_name(&table.name)
                .send()
                .await
                .with_context(|| format!("emptying table {}", table.name))?;
        }
        let tables = Infrastructure {
            tables: self.settings.tables.clone(),
            ..Infrastructure::default()
        };
        provision::provision(&self.settings.moto, &tables)
            .await
            .context("recreating the tables")?;
        Ok(())
    }
}

fn first_mismatches(mismatches: &[String]) -> String {
    mismatches
        .iter()
        .take(5)
        .cloned()
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// For an error that stops a warm run: the unexpected answers before it, which are often
/// its cause (a refused registration leaves no account for the next step).
fn earlier(mismatches: &[String]) -> String {
    if mismatches.is_empty() {
        String::new()
    } else {
        format!(
            "; earlier answers the scenario did not expect ({}):\n  {}",
            mismatches.len(),
            first_mismatches(mismatches)
        )
    }
}

/// An HTTP API function's answer as API Gateway turns it into a response: the function's
/// own response, or a bare 500 for an invocation error.
pub fn http_answer(ok: bool, raw: &[u8]) -> Result<(u16, Json)> {
    if ok {
        api_gateway_response(raw)
    } else {
        Ok((500, Json::Null))
    }
}

/// Status and JSON body (`null` if not JSON) of an API Gateway v2 proxy response.
fn api_gateway_response(raw: &[u8]) -> Result<(u16, Json)> {
    let response: Json = serde_json::from_slice(raw)
        .with_context(|| format!("not JSON: {}", snippet(&String::from_utf8_lossy(raw))))?;
    let status = response["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .with_context(|| format!("no statusCode in {}", snippet(&response.to_string())))?;
    let body = match &response["body"] {
        Json::String(text) if response["isBase64Encoded"] != Json::Bool(true) => {
            serde_json::from_str(text).unwrap_or(Json::Null)
        }
        _ => Json::Null,
    };
    Ok((status, body))
}

/// Every invocation of the warm run, for a closer look than the report gives.
fn write_samples(path: &Path, samples: &[Sample]) -> Result<()> {
    let mut csv = String::from("n,case,route,status,latency_us,aws_us,max_in_flight,aws_calls\n");
    for (n, s) in samples.iter().enumerate() {
        csv.push_str(&format!(
            "{n},\"{}\",\"{}\",{},{},{},{},\"{}\"\n",
            s.label.case.replace('"', "'"),
            s.label.route,
            s.status,
            s.latency.as_micros(),
            s.aws_time().as_micros(),
            s.max_in_flight(),
            s.operations().collect::<Vec<_>>().join(" ")
        ));
    }
    std::fs::write(path, csv).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_api_gateway_responses() {
        let raw =
            br#"{"statusCode":202,"headers":{},"body":"{\"id\":\"x\"}","isBase64Encoded":false}"#;
        let (status, body) = api_gateway_response(raw).unwrap();
        assert_eq!(status, 202);
        assert_eq!(body["id"], "x");
        let (status, body) = api_gateway_response(br#"{"statusCode":204,"body":"plain"}"#).unwrap();
        assert_eq!((status, body), (204, Json::Null));
        assert!(api_gateway_response(b"{}").is_err());
    }
}
