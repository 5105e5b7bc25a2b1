//! uslugi-bench: measures each Lambda function of the template — binary and zip size,
//! cold start (init and first response, against a floor binary), memory, warm latency per route and AWS calls per request — against a
//! private moto server, and writes bench/results.md.
//!
//! Expects release binaries in `<target>/lambda/<binary>/bootstrap`; bench/run.sh
//! builds them first. Not part of `make test`: nothing here asserts on timings.

mod autopays;
mod aws;
mod chaos;
mod cli;
mod companions;
mod functions;
mod hashing;
mod http;
mod identity;
mod load;
mod measure;
mod numbering;
mod package;
mod portal;
mod proxy;
mod report;
mod runs;
mod runtime_api;
mod scenario;
mod stack;
mod stats;
mod system;
mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use uslugi_local::moto::Moto;
use uslugi_local::provision::{self, Clients};

/// Hashes and verifications timed in the harness itself (see bench/README.md).
const HASH_RUNS: usize = 20;

const USAGE: &str = "\
usage: uslugi-bench [options]
       uslugi-bench load [options]   (the payments load test; `load --help`)
       uslugi-bench autopays [options]   (the daily autopay run at scale; `autopays --help`)
       uslugi-bench chaos [options]  (the chaos run; `chaos --help`)

Measures every function in infra/template.yaml and writes bench/results.md.
Build the functions first (bench/run.sh does both).

options:
  --repo DIR          repository root (default: the directory above bench/)
  --target-dir DIR    cargo target dir holding lambda/<binary>/bootstrap
                      (default: $CARGO_TARGET_DIR, else <repo>/target)
  --out FILE          report to write (default: <repo>/bench/results.md)
  --moto PATH         moto_server to run (default: <repo>/.venv/bin/moto_server)
  --only BINARY       measure only this function (repeatable)
  --cold-starts N     counted cold starts per function (default: 25)
  --invocations N     invocations in the warm run (default: 1000)
  -h, --help          this text
";

struct Args {
    repo: PathBuf,
    target_dir: PathBuf,
    out: PathBuf,
    moto: PathBuf,
    only: Vec<String>,
    cold_starts: usize,
    invocations: usize,
}

fn parse_args() -> Result<Option<Args>> {
    let mut target_dir = None;
    let mut moto = None;
    let mut only = Vec::new();
    let mut cold_starts = 25;
    let mut invocations = 1000;
    let common = cli::parse(
        std::env::args().skip(1),
        "bench/results.md",
        |flag, flags| {
            match flag {
                "--target-dir" => target_dir = Some(flags.path(flag)?),
                "--moto" => moto = Some(flags.path(flag)?),
                "--only" => only.push(flags.value(flag)?),
                "--cold-starts" => cold_starts = flags.number(flag)?,
                "--invocations" => invocations = flags.number(flag)?,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    let Some(cli::Common { repo, out }) = common else {
        return Ok(None);
    };
    if cold_starts < 1 {
        bail!("--cold-starts must be at least 1");
    }
    if invocations < 2 {
        bail!("--invocations must be at least 2");
    }
    let target_dir = target_dir
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| repo.join("target"));
    Ok(Some(Args {
        out,
        moto: moto.unwrap_or_else(|| repo.join(".venv/bin/moto_server")),
        target_dir,
        repo,
        only,
        cold_starts,
        invocations,
    }))
}

/// Runs the subcommand whose module is `$name` (`uslugi-bench load`): its `USAGE`, its
/// `parse_args` of the arguments after the name and its `run`, which answers whether the
/// run's checks passed (`$failed` says what it means when they did not). A macro, as a
/// module cannot be passed to a function.
macro_rules! subcommand {
    ($name:ident, $failed:expr) => {
        command(
            concat!("uslugi-bench ", stringify!($name)),
            $name::USAGE,
            || $name::parse_args(std::env::args().skip(2)),
            |args| async move { $name::run(&args).await },
            $failed,
        )
    };
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        // The stack is owned by `load::run`; leaving it (done, failed or interrupted)
        // stops every process it started.
        Some("load") => subcommand!(load, "the books do not balance (see above)"),
        Some("autopays") => subcommand!(autopays, "a bill was not paid exactly once (see above)"),
        Some("chaos") => subcommand!(chaos, "an invariant did not hold (see above)"),
        // Every child process is owned by `run`; leaving it (done, failed or interrupted)
        // kills them.
        _ => command(
            "uslugi-bench",
            USAGE,
            parse_args,
            |args| async move { run(&args).await.map(|()| true) },
            "",
        ),
    }
}

/// Runs one command of the harness: reads its arguments (`--help` prints `usage`; a bad
/// argument exits 2), runs it on a current-thread runtime until it ends or a termination
/// signal arrives, and exits 1 when it fails or answers `false` (`failed` says why).
fn command<A, Run, Fut>(
    name: &str,
    usage: &str,
    parse: impl FnOnce() -> Result<Option<A>>,
    run: Run,
    failed: &str,
) -> ExitCode
where
    Run: FnOnce(A) -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let args = match parse() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{usage}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{name}: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(args) => result,
            signal = system::termination_signal() => Err(anyhow::anyhow!("interrupted by {signal}")),
        }
    });
    drop(runtime);
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("{name}: {failed}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    let log_dir = args.repo.join("bench/out");
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;

    // moto and the proxy start before the template is read: resolved queue URLs point
    // at the proxy.
    if !args.moto.is_file() {
        bail!(
            "moto_server not found at {}: install the dev tools into .venv (`make venv`) or pass --moto PATH",
            args.moto.display()
        );
    }
    let recorder = Arc::new(proxy::Recorder::default());
    eprintln!("uslugi-bench: starting moto");
    let moto = Moto::start(&args.moto, &log_dir.join("moto.log")).await?;
    let proxy = proxy::start(
        SocketAddr::from(([127, 0, 0, 1], moto.port())),
        recorder.clone(),
    )
    .await?;

    let template_path = args.repo.join("infra/template.yaml");
    let stack = functions::load(&template_path, &format!("http://{}", proxy.addr))?;
    let mut functions = stack.functions;
    if !args.only.is_empty() {
        for name in &args.only {
            if !functions.iter().any(|f| &f.binary == name) {
                bail!("--only {name}: no function in the template builds a binary of that name");
            }
        }
        functions.retain(|f| args.only.contains(&f.binary));
    }
    if functions.is_empty() {
        bail!("{} declares no function", template_path.display());
    }
    // Straight to moto, not through the proxy: setting up is not the functions' traffic.
    // The queue URLs moto answers with name moto; the functions keep the proxy's.
    let clients = Clients::new(&moto.url());
    provision::provision(&clients, &stack.infrastructure)
        .await
        .context("creating the template's resources in moto")?;

    // Before any function runs, on an otherwise idle harness: argon2id is all CPU.
    let hashing = if functions
        .iter()
        .any(|f| identity::HASHING_FUNCTIONS.contains(&f.binary.as_str()))
    {
        eprintln!("uslugi-bench: timing password hashing ({HASH_RUNS} runs)");
        Some(hashing::measure(HASH_RUNS)?)
    } else {
        None
    };

    // Sizes first: a missing binary fails the run before minutes of measuring.
    let mut packages = Vec::new();
    for f in &functions {
        packages.push(package::measure(&args.target_dir, &f.binary, &log_dir)?);
    }

    let settings = measure::Settings {
        proxy: proxy.addr,
        moto: clients,
        tables: stack.infrastructure.tables,
        recorder,
        log_dir,
        cold_starts: args.cold_starts,
        invocations: args.invocations,
    };
    // The floor first, on an otherwise idle harness, as each function's cold starts are.
    let floor = measure::floor(&settings).await?;
    let mut results = Vec::new();
    for (spec, package) in functions.into_iter().zip(packages) {
        results.push(measure::run(spec, package, &settings).await?);
    }
    drop(proxy);
    moto.stop();

    let machine = system::machine_info(&args.repo).await;
    let markdown = report::render(&report::Run {
        machine: &machine,
        results: &results,
        floor: &floor,
        hashing: hashing.as_ref(),
        cold_starts: args.cold_starts,
        invocations: args.invocations,
        elapsed: started.elapsed(),
        companions: companions::render(&args.repo.join("bench")),
    });
    crate::system::write_whole(&args.out, "md.tmp", &markdown)?;
    eprintln!(
        "uslugi-bench: wrote {} in {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
