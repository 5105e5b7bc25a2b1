//! The chaos run, `uslugi-bench chaos`: on a local stack of its own whose functions read
//! a fault plan file (`FAULTS=@file`), citizens register, fill their profiles in (checks
//! that go to the registries), billers push charges in batches (new-bill notices), and
//! citizens pay them (the bank, payment notices to the billers), while every dependency
//! fails now and then: DynamoDB, SQS, SES, SNS, the registries, the acquirer and the
//! billers' endpoint. Then the plan is emptied, the work queues drain, reconciliation
//! runs, and the invariants are checked from the table, the queues and the outbox.
//! Writes bench/chaos-results.md; exits non-zero when an invariant does not hold.

mod api;
mod invariants;
mod report;
mod traffic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hyper::Method;

use uslugi_local::{Stack, StackOptions};

use crate::stack::RunSummary;
use api::{Api, Phase};

pub const USAGE: &str = "\
usage: uslugi-bench chaos [options]

Starts a local stack (debug builds under cargo lambda watch) whose functions read a
fault plan file, sends registrations, profile edits, charge batches and payments while
every dependency fails now and then, lifts the faults, drains the queues, reconciles,
checks the invariants and writes bench/chaos-results.md. Exits 1 when an invariant
does not hold.

options:
  --repo DIR                repository root (default: the directory above bench/)
  --out FILE                report to write (default: <repo>/bench/chaos-results.md)
  --plan FILE               the fault plan of the faulty phase (default: the built-in
                            plan, printed in the report)
  --bills N                 charges to pay (default: 300)
  --clients N               concurrent citizens paying (default: 20)
  --registrations N         citizens who register and fill their profile in during the
                            faulty phase (default: 12)
  --holders N               citizens, verified before the faults, told of new bills
                            (default: 4)
  --notices N               new bills pushed per holder (default: 5)
  --lambda-concurrency N    instances per function under cargo lambda watch (default: 4)
  --drain-timeout SECONDS   longest wait for the work queues to empty (default: 240)
  --outage-every SECONDS    during the faulty phase, every this many seconds one
                            dependency is down altogether for 2 s, in turn (default: 6;
                            0: no outages)
  -h, --help                this text
";

/// The faulty phase's plan: every dependency fails now and then, in every way the
/// layer knows, at rates that let most work through on the SDK's or the queue's
/// retries. `lost` is kept to the acquirer: a lost SES or SNS answer makes the worker
/// send again, which no sender can tell from a failure (at-least-once delivery).
pub const DEFAULT_PLAN: &str = "\
# DynamoDB: throttling and 500s on any call
dynamodb=throttle@0.12
dynamodb=error@0.06
# SQS: sends of the functions (the local stack's own pollers get no faults)
sqs=throttle@0.1
sqs=error@0.06
# SES and SNS: codes, new-bill notices, receipts
sesv2=throttle@0.12
sesv2=timeout@0.06
sesv2=slow:800ms@0.1
sns=error@0.15
sns=slow:800ms@0.1
# The registries: failures and hangs (the job comes back from the queue)
registry=error@0.25
registry=timeout@0.08
registry=slow:1s@0.1
# The acquirer: failures, hangs, late and lost answers (unknown outcomes)
acquirer=error@0.08
acquirer=timeout@0.04
acquirer=lost@0.04
acquirer=slow:800ms@0.12
# The billers' endpoint: failures and hangs of payment notices
billers=error@0.35
billers=timeout@0.08
";

/// Outages of the faulty phase, in turn: one dependency (or one of its calls) down
/// altogether for a moment, on top of the plan. Each is what a citizen must meet as a
/// 503 with `Retry-After` and nothing half-done.
pub const OUTAGES: [&str; 8] = [
    "dynamodb:TransactWriteItems=throttle",
    "acquirer=error",
    "sesv2=error",
    "sqs=error",
    "dynamodb:GetItem=error",
    "sns=throttle",
    "registry=timeout",
    "billers=error",
];
/// How long an outage lasts.
const OUTAGE: Duration = Duration::from_secs(2);

/// The work queues the run waits for, and their dead-letter queues.
const WORK_QUEUES: [&str; 7] = [
    "VerificationQueue",
    "PostLettersQueue",
    "BillNoticesQueue",
    "PaymentNoticesQueue",
    "AutopayQueue",
    "ReconcileQueue",
    "AutopayRunQueue",
];
/// The retry delay of every work queue during the run: a message a fault sent back
/// comes again in seconds, not minutes, so the run drains in minutes.
const RETRY_SECONDS: &str = "3";
/// Reconciliation runs after the faults: each plans its pages onto the reconcile queue,
/// which is drained before the next; the second finds what the first settled closed.
const RECONCILE_RUNS: usize = 2;
/// The local stack's endpoint that fires the reconciliation's schedule (a route of its own
/// in the answers' tally).
const RECONCILE_SCHEDULE: &str = "/_local/schedules/reconcile-payments";

pub struct Args {
    /// The repository, the report, the stack's instances of each function.
    stack: crate::cli::StackCommon,
    plan: String,
    plan_source: String,
    pub shape: traffic::Shape,
    drain_timeout: Duration,
    outage_every: Duration,
}

/// The options after `chaos`; `None` for `--help`.
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Args>> {
    let mut plan_file: Option<PathBuf> = None;
    let mut shape = traffic::Shape {
        bills: 300,
        clients: 20,
        registrations: 12,
        holders: 4,
        notices: 5,
    };
    let mut drain = 240;
    let mut outage_every = 6;
    let Some(stack) =
        crate::cli::parse_stack(
            args,
            "bench/chaos-results.md",
            4,
            |flag, flags| match flag {
                "--plan" => {
                    plan_file = Some(flags.path(flag)?);
                    Ok(true)
                }
                "--bills" => flags.set(&mut shape.bills, flag),
                "--clients" => flags.set(&mut shape.clients, flag),
                "--registrations" => flags.set(&mut shape.registrations, flag),
                "--holders" => flags.set(&mut shape.holders, flag),
                "--notices" => flags.set(&mut shape.notices, flag),
                "--drain-timeout" => flags.set(&mut drain, flag),
                "--outage-every" => flags.set(&mut outage_every, flag),
                _ => Ok(false),
            },
        )?
    else {
        return Ok(None);
    };
    if shape.clients == 0 {
        bail!("--clients must be at least 1");
    }
    let (plan, plan_source) = match plan_file {
        Some(path) => (
            std::fs::read_to_string(&path).with_context(|| format!("--plan {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEFAULT_PLAN.to_string(), "the built-in plan".to_string()),
    };
    Ok(Some(Args {
        stack,
        plan,
        plan_source,
        shape,
        drain_timeout: Duration::from_secs(drain),
        outage_every: Duration::from_secs(outage_every),
    }))
}

fn say(message: impl std::fmt::Display) {
    eprintln!("uslugi-bench chaos: {message}");
}

/// Puts `rules` in force for every function (empty: no faults) and waits until they
/// have looked at the file again (they do at most every 100 ms).
async fn set_plan(path: &Path, rules: &str) -> Result<()> {
    crate::system::write_whole(path, "tmp", rules)?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    Ok(())
}

/// Runs the chaos run and writes the report; `Ok(false)` when an invariant failed.
pub async fn run(args: &Args) -> Result<bool> {
    let started = Instant::now();
    let out_dir = args.stack.repo.join("bench/out");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let plan_path = out_dir.join("chaos.plan");
    set_plan(&plan_path, "").await?;
    // Validate the plan before minutes of start-up: the functions would refuse it later
    // and keep no faults.
    shared::faults::Plan::parse(&args.plan)
        .map_err(|e| anyhow::anyhow!("the fault plan {}: {e}", args.plan_source))?;

    say("starting the local stack (debug builds, cargo lambda watch; the first build takes minutes)");
    let mut env_overrides = vec![("FAULTS".into(), format!("@{}", plan_path.display()))];
    env_overrides.extend(crate::stack::variables(&[
        // Nothing is in flight when reconciliation runs (the faulty phase is over).
        ("RECONCILE_MIN_AGE_SECONDS", "0"),
        ("BILL_LOOKUPS_PER_WINDOW", "100000"),
        ("REGISTRY_SANDBOX_DELAY_MS", "0"),
        // A client sends a code again after a 503; the limits meant for people
        // would refuse a chaos run's resends.
        ("CODE_RESEND_INTERVAL_SECONDS", "0"),
        ("CODE_MAX_PER_DESTINATION_PER_HOUR", "1000"),
        ("CODE_MAX_PER_IP_PER_HOUR", "100000"),
    ]));
    let stack = crate::stack::start(StackOptions {
        env_overrides,
        param_overrides: crate::stack::variables(&[
            ("VerificationRetrySeconds", RETRY_SECONDS),
            ("PaymentNoticeRetrySeconds", RETRY_SECONDS),
        ]),
        ..crate::stack::options(&args.stack)
    })
    .await?;
    say(format!(
        "stack up in {:.0} s: gateway {}, logs in {}",
        started.elapsed().as_secs_f64(),
        stack.gateway_url(),
        stack.log_dir().display()
    ));
    let result = chaos(args, &stack, &plan_path, started).await;
    // Whatever happened, the next stack on this plan file starts without faults.
    let _ = std::fs::write(&plan_path, "");
    stack.shutdown().await;
    result
}

async fn chaos(args: &Args, stack: &Stack, plan_path: &Path, started: Instant) -> Result<bool> {
    let moto = uslugi_local::provision::Clients::new(&stack.moto_url());
    let queue = |logical: &str| {
        stack
            .resource_name(logical)
            .with_context(|| format!("the stack has no queue {logical}"))
    };
    // The queues whose retry delay is fixed in the template (not a parameter).
    for logical in WORK_QUEUES {
        moto.sqs
            .set_queue_attributes()
            .queue_url(queue(logical)?)
            .attributes(
                aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
                RETRY_SECONDS,
            )
            .send()
            .await
            .with_context(|| format!("shortening the retry delay of {logical}"))?;
    }
    // Earlier stacks' logs share the directory: only what is written from here counts.
    let logged_before = fault_lines(stack.log_dir(), &BTreeMap::new()).1;
    let api = Api::new(stack.gateway_url());

    say("setting up without faults: billers, payers, verified holders");
    let setup = Instant::now();
    let world = traffic::set_up(&api, stack, &moto, &args.shape).await?;
    let setup_time = setup.elapsed();

    say(format!(
        "faulty phase: {} rules in force",
        rule_count(&args.plan)
    ));
    set_plan(plan_path, &args.plan).await?;
    api.faults_on();
    let faulty = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let outages = tokio::spawn(outages(
        plan_path.to_path_buf(),
        args.plan.clone(),
        args.outage_every,
        stop.clone(),
    ));
    let outcome = traffic::faulty_phase(&api, &world, &args.shape).await;
    stop.store(true, Ordering::SeqCst);
    let outages = outages.await.context("the outage task failed")??;
    let outcome = outcome?;
    let faulty_time = faulty.elapsed();
    set_plan(plan_path, "").await?;
    api.faults_lifted();
    say(format!(
        "faults lifted after {:.0} s; draining the queues",
        faulty_time.as_secs_f64()
    ));

    let recovery = Instant::now();
    let mut queue_urls = Vec::new();
    for logical in WORK_QUEUES {
        queue_urls.push((logical, queue(logical)?));
    }
    drain(&moto, &queue_urls, args.drain_timeout).await?;
    let mut reconciliations = Vec::new();
    for _ in 0..RECONCILE_RUNS {
        let reply = api
            .send(
                Method::POST,
                RECONCILE_SCHEDULE,
                RECONCILE_SCHEDULE,
                &[],
                None,
            )
            .await;
        if reply.status != 200 {
            bail!("reconciliation: {}", reply.describe());
        }
        reconciliations.push(reply.body["planned"].as_u64().unwrap_or(0));
        // The run's pages, and the notices of what it settled.
        drain(&moto, &queue_urls, args.drain_timeout).await?;
    }
    // Payments reconciliation settled queue their notices: drain again.
    drain(&moto, &queue_urls, args.drain_timeout).await?;
    let recovery_time = recovery.elapsed();

    say("reading the table, the queues and the outbox");
    let mut observed = traffic::observe(&api, &moto, &world, &outcome).await?;
    let dead_letters = [
        ("VerificationDeadLetterQueue", 0),
        ("BillNoticesDeadLetterQueue", 1),
        ("PaymentNoticesDeadLetterQueue", 2),
    ];
    let mut parked = BTreeMap::new();
    for (logical, slot) in dead_letters {
        let bodies = traffic::dead_letters(&moto, &queue(logical)?).await?;
        parked.insert(logical, bodies.len());
        match slot {
            0 => observed.verification_dlq = bodies,
            1 => observed.bill_notices_dlq = bodies,
            _ => observed.payment_notices_dlq = bodies,
        }
    }
    {
        let tally = api
            .tally
            .lock()
            .map_err(|_| anyhow::anyhow!("the answer tally was poisoned"))?;
        observed.answers_bad = tally.bad.clone();
        observed.answers_faulty = tally.total(Phase::Faulty);
    }
    let results = invariants::check(&observed);
    let held = results.iter().all(|i| i.held);

    let (lines, _) = fault_lines(stack.log_dir(), &logged_before);
    let faults = count_faults(&lines);
    let summary = RunSummary::at_end(&args.stack, setup_time, started).await;
    let tally = api
        .tally
        .lock()
        .map_err(|_| anyhow::anyhow!("the answer tally was poisoned"))?;
    let markdown = report::render(&report::Run {
        summary,
        shape: &args.shape,
        plan: &args.plan,
        plan_source: &args.plan_source,
        faulty: faulty_time,
        recovery: recovery_time,
        outcome: &outcome,
        outages: &outages,
        outage_every: args.outage_every,
        faults: &faults,
        tally: &tally,
        reconciliations: &reconciliations,
        parked: &parked,
        invariants: &results,
    });
    crate::stack::publish(&args.stack, "chaos", &markdown)?;
    for i in results.iter().filter(|i| !i.held) {
        say(format!("invariant failed: {}: {}", i.name, i.numbers));
        for d in &i.details {
            say(format!("  {d}"));
        }
    }
    Ok(held)
}

/// Sleeps `span` unless `stop` is set first; `false` when stopped.
async fn sleep_unless(stop: &AtomicBool, span: Duration) -> bool {
    let until = Instant::now() + span;
    while Instant::now() < until {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    !stop.load(Ordering::SeqCst)
}

/// Until `stop`: every `every`, one of [`OUTAGES`] in turn is put before `plan` for
/// [`OUTAGE`]; returns the outages there were, in order.
async fn outages(
    path: PathBuf,
    plan: String,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> Result<Vec<&'static str>> {
    let mut done = Vec::new();
    if every.is_zero() {
        return Ok(done);
    }
    while sleep_unless(&stop, every).await {
        let rule = OUTAGES[done.len() % OUTAGES.len()];
        set_plan(&path, &format!("{rule}\n{plan}")).await?;
        done.push(rule);
        sleep_unless(&stop, OUTAGE).await;
        set_plan(&path, &plan).await?;
    }
    Ok(done)
}

fn rule_count(plan: &str) -> usize {
    plan.split([';', '\n'])
        .map(str::trim)
        .filter(|r| !r.is_empty() && !r.starts_with('#'))
        .count()
}

/// Waits until every work queue holds no message, visible or in flight, twice in a row
/// a second apart.
async fn drain(
    moto: &uslugi_local::provision::Clients,
    queues: &[(&str, String)],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut empty_in_a_row = 0;
    loop {
        let mut waiting = Vec::new();
        for (logical, url) in queues {
            let attributes = moto
                .sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                .send()
                .await
                .with_context(|| format!("reading {logical}"))?;
            let count = |name: aws_sdk_sqs::types::QueueAttributeName| -> u64 {
                attributes
                    .attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let n = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                + count(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                )
                + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed);
            if n > 0 {
                waiting.push(format!("{logical} {n}"));
            }
        }
        if waiting.is_empty() {
            empty_in_a_row += 1;
            if empty_in_a_row >= 2 {
                return Ok(());
            }
        } else {
            empty_in_a_row = 0;
        }
        if Instant::now() > deadline {
            bail!(
                "the work queues did not drain in {} s: {}",
                timeout.as_secs(),
                waiting.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The `fault injected` lines the functions have logged, parsed, leaving out the first
/// `skip[file]` lines of each file; and how many lines each file has now.
fn fault_lines(
    log_dir: &Path,
    skip: &BTreeMap<PathBuf, usize>,
) -> (Vec<serde_json::Value>, BTreeMap<PathBuf, usize>) {
    let mut lines = Vec::new();
    let mut seen = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(log_dir) else {
        return (lines, seen);
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.extension().and_then(|e| e.to_str()) != Some("log") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let from = skip.get(&path).copied().unwrap_or(0);
        seen.insert(path.clone(), text.lines().count());
        for line in text.lines().skip(from) {
            if !line.contains("fault injected") {
                continue;
            }
            let Some(start) = line.find('{') else {
                continue;
            };
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line[start..]) {
                if v["message"] == "fault injected" {
                    lines.push(v);
                }
            }
        }
    }
    (lines, seen)
}

/// Faults per (dependency, fault kind).
pub type FaultCounts = BTreeMap<(String, String), usize>;

fn count_faults(lines: &[serde_json::Value]) -> FaultCounts {
    let mut counts = FaultCounts::new();
    for v in lines {
        let text = |name: &str| v[name].as_str().unwrap_or("?").to_string();
        // `slow:800ms` and `slow:1s` are one kind.
        let fault = text("fault");
        let kind = fault.split(':').next().unwrap_or("?").to_string();
        *counts.entry((text("dependency"), kind)).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_plan_parses_and_touches_every_dependency() {
        assert!(shared::faults::Plan::parse(DEFAULT_PLAN).is_ok());
        for dependency in [
            "dynamodb", "sqs", "sesv2", "sns", "registry", "acquirer", "billers",
        ] {
            assert!(
                DEFAULT_PLAN
                    .lines()
                    .any(|l| l.starts_with(&format!("{dependency}="))),
                "{dependency}"
            );
        }
        assert_eq!(rule_count(DEFAULT_PLAN), 18);
        for outage in OUTAGES {
            assert!(shared::faults::Plan::parse(&format!("{outage}\n{DEFAULT_PLAN}")).is_ok());
        }
    }

    #[test]
    fn only_the_fault_lines_written_after_the_start_count() {
        let dir = std::env::temp_dir().join(format!("uslugi-chaos-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let line = |dependency: &str| {
            format!("{{\"level\":\"WARN\",\"message\":\"fault injected\",\"dependency\":\"{dependency}\",\"fault\":\"error\"}}\n")
        };
        let write = |name: &str, text: &str| {
            use std::io::Write as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
                .unwrap_or_else(|e| panic!("{e}"));
            f.write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        };
        // An earlier stack's file, and one of this stack that sorts before it.
        write("PayFunction-1.log", &line("old"));
        write("AccountsFunction-2.log", "starting\n");
        let before = fault_lines(&dir, &BTreeMap::new()).1;
        write("AccountsFunction-2.log", &line("dynamodb"));
        write("PayFunction-1.log", "done\n");
        write("SessionsFunction-3.log", &line("sqs"));
        write("SessionsFunction-3.env", &line("ignored"));
        let (lines, _) = fault_lines(&dir, &before);
        let _ = std::fs::remove_dir_all(&dir);
        let dependencies: Vec<&str> = lines
            .iter()
            .filter_map(|l| l["dependency"].as_str())
            .collect();
        assert_eq!(dependencies, vec!["dynamodb", "sqs"]);
    }

    #[test]
    fn faults_are_counted_by_dependency_and_kind() {
        let lines = vec![
            serde_json::json!({"message": "fault injected", "dependency": "acquirer", "fault": "slow:800ms"}),
            serde_json::json!({"message": "fault injected", "dependency": "acquirer", "fault": "slow:1s"}),
            serde_json::json!({"message": "fault injected", "dependency": "dynamodb", "fault": "throttle"}),
        ];
        let counts = count_faults(&lines);
        assert_eq!(counts[&("acquirer".to_string(), "slow".to_string())], 2);
        assert_eq!(counts[&("dynamodb".to_string(), "throttle".to_string())], 1);
    }
}
