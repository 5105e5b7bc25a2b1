//! `uslugi-local`: run the uslugi stack locally (see the library docs).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use uslugi_local::intrinsics::Resolver;
use uslugi_local::template::Template;
use uslugi_local::{find_repo_root, model, BuildOptions, Stack, StackOptions};

#[derive(Parser)]
#[command(
    name = "uslugi-local",
    version,
    about = "Run the uslugi SAM template locally on moto and cargo lambda watch"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Start moto, the functions and the gateway; Ctrl-C stops everything.
    Up(UpArgs),
    /// Print what `up` would create and serve, without starting anything.
    Plan(TemplateArgs),
    /// Load a demo family with bills into the running stack (`make seed`).
    Seed(SeedArgs),
}

#[derive(Args)]
struct SeedArgs {
    /// Repository root (default: found upwards from the current directory).
    #[arg(long)]
    repo_root: Option<PathBuf>,
    /// The running stack's gateway.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    gateway: String,
}

#[derive(Args)]
struct TemplateArgs {
    /// Repository root (default: found upwards from the current directory).
    #[arg(long)]
    repo_root: Option<PathBuf>,
    /// SAM template, relative to the repository root.
    #[arg(long, default_value = "infra/template.yaml")]
    template: PathBuf,
    /// Template parameter value, e.g. --param Stage=local (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = key_value)]
    params: Vec<(String, String)>,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    template: TemplateArgs,
    #[arg(long, default_value_t = 3000)]
    gateway_port: u16,
    #[arg(long, env = "MOTO_PORT", default_value_t = 4566)]
    moto_port: u16,
    /// First port for the functions; one port per function from here.
    #[arg(long, default_value_t = 9000)]
    lambda_port: u16,
    /// Extra variable for every function, e.g. --env RUST_LOG=debug (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = key_value)]
    env: Vec<(String, String)>,
    /// Fault plan for every function (their `FAULTS`), e.g.
    /// --faults 'dynamodb:TransactWriteItems=throttle@0.2;sesv2=timeout@nth:3', or
    /// --faults @path/to/plan for a file they read again whenever it changes (a relative
    /// path is from the repository root). See docs/operations.md, "Fault injection".
    #[arg(long, env = "FAULTS", value_name = "PLAN")]
    faults: Option<String>,
    /// Instances per function (cargo lambda watch --concurrency).
    #[arg(long, default_value_t = 1)]
    concurrency: u32,
    /// Send function and build output to .local/logs/ instead of the terminal.
    #[arg(long)]
    quiet: bool,
    /// Do not rebuild functions when their sources change.
    #[arg(long)]
    no_reload: bool,
    /// Do not build the functions before starting (they build on first call).
    #[arg(long)]
    no_prebuild: bool,
    /// Also leave the tools environment in this file, relative to the repository root
    /// (`make dev` gives .local/stack.env); it is always in .local/stacks/<gateway port>.env.
    #[arg(long, value_name = "PATH")]
    tools_env: Option<PathBuf>,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

fn repo_root(given: &Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(root) = given {
        return Ok(root.clone());
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    find_repo_root(&cwd)
        .or_else(|| find_repo_root(env!("CARGO_MANIFEST_DIR")))
        .ok_or_else(|| "cannot find the repository root; pass --repo-root".to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("USLUGI_LOCAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("uslugi_local=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let result = match cli.command {
        Commands::Plan(args) => plan(args),
        Commands::Up(args) => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(up(args)),
            Err(e) => Err(e.to_string()),
        },
        Commands::Seed(args) => match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => repo_root(&args.repo_root)
                .and_then(|root| rt.block_on(uslugi_local::seed::seed(&root, &args.gateway))),
            Err(e) => Err(e.to_string()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("uslugi-local: {e}");
            ExitCode::FAILURE
        }
    }
}

fn plan(args: TemplateArgs) -> Result<(), String> {
    let root = repo_root(&args.repo_root)?;
    let template = Template::load(&root.join(&args.template)).map_err(|e| e.to_string())?;
    let mut resolver = Resolver::new(&template, &args.params).map_err(|e| e.to_string())?;
    let plan = model::plan(&mut resolver, "http://127.0.0.1:4566").map_err(|e| e.to_string())?;
    for t in &plan.infrastructure.tables {
        println!("table      {} ({})", t.name, t.logical_id);
    }
    for q in &plan.infrastructure.queues {
        println!("queue      {} ({})", q.name, q.logical_id);
    }
    for i in &plan.infrastructure.email_identities {
        println!("identity   {} ({})", i.identity, i.logical_id);
    }
    for s in &plan.infrastructure.secrets {
        println!("secret     {} ({})", s.name, s.logical_id);
    }
    for f in &plan.functions {
        println!("function   {} (binary {})", f.logical_id, f.binary);
        for e in &f.http_events {
            let key = match &e.path {
                Some(p) => format!("{} {p}", e.method),
                None => "$default".into(),
            };
            println!("  route    {key}");
        }
        for e in &f.sqs_events {
            println!("  sqs      {} (batch {})", e.queue_arn, e.batch_size);
        }
        for s in &f.schedules {
            println!(
                "  schedule {} {}",
                s.name,
                s.expression.as_deref().unwrap_or_default()
            );
        }
        for (k, v) in &f.environment {
            println!("  env      {k}={v}");
        }
    }
    Ok(())
}

async fn up(args: UpArgs) -> Result<(), String> {
    let opts_root = repo_root(&args.template.repo_root)?;
    let mut env_overrides = args.env;
    if let Some(plan) = args.faults.filter(|p| !p.trim().is_empty()) {
        // The functions run elsewhere than here: a plan file is named by its full path.
        let plan = match plan.trim().strip_prefix('@') {
            Some(path) => format!("@{}", opts_root.join(path.trim()).display()),
            None => plan,
        };
        println!("  faults   {plan}");
        env_overrides.push(("FAULTS".to_string(), plan));
    }
    let opts = StackOptions {
        repo_root: opts_root.clone(),
        template: args.template.template,
        gateway_port: args.gateway_port,
        moto_port: args.moto_port,
        lambda_port: args.lambda_port,
        env_overrides,
        param_overrides: args.template.params,
        lambda_concurrency: args.concurrency,
        quiet: args.quiet,
    };
    let build = BuildOptions {
        reload: !args.no_reload,
        prebuild: !args.no_prebuild,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    // A signal during start-up drops the start, which stops what was started.
    let stack = tokio::select! {
        r = Stack::start_with(opts, build) => r.map_err(|e| e.to_string())?,
        _ = tokio::signal::ctrl_c() => return Ok(()),
        _ = terminate.recv() => return Ok(()),
    };

    let gw = stack.gateway_url();
    println!();
    println!("uslugi-local is up");
    println!("  gateway   {gw}");
    println!(
        "  moto      {}  (state: {}/moto-api/data.json)",
        stack.moto_url(),
        stack.moto_url()
    );
    for f in stack.functions() {
        println!(
            "  function  {} (binary {}) on port {}",
            f.logical_id, f.binary, f.port
        );
    }
    for r in stack.routes() {
        println!("  route     {r}");
    }
    println!("  logs      {}", stack.log_dir().display());
    // What local tools (the admin command, `make seed`) need to reach this stack: each
    // stack has its own file, so stacks side by side never read or remove each other's.
    let mut tools_env = Vec::new();
    if let Some(f) = stack.functions().first() {
        let vars = uslugi_local::seed::tool_environment(&f.environment);
        let mut paths = vec![uslugi_local::seed::stack_env_path(
            &opts_root,
            stack.gateway_port(),
        )];
        paths.extend(args.tools_env.iter().map(|p| opts_root.join(p)));
        for path in paths {
            match uslugi_local::seed::StackEnvFile::write(&path, &vars) {
                Ok(file) => {
                    println!("  tools env {}", path.display());
                    tools_env.push(file);
                }
                Err(e) => println!("  (could not write {}: {e})", path.display()),
            }
        }
    }
    println!();
    println!("Try:");
    println!(
        "  curl -s -X POST {gw}/v1/codes -H 'content-type: application/json' -d '{{\"channel\":\"sms\",\"destination\":\"+79318702901\",\"purpose\":\"registration\"}}'"
    );
    println!("  curl -s {gw}/_local/outbox");
    println!();
    println!("Ctrl-C stops everything.");

    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("stopping...");
    for file in &tools_env {
        file.remove_if_own();
    }
    stack.shutdown().await;
    Ok(())
}
