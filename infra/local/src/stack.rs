//! Starting and stopping the whole local stack.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::gateway::{self, GatewayState};
use crate::intrinsics::{Physical, Resolver, ACCOUNT_ID, REGION};
use crate::lambda::{FunctionEndpoint, WatchCommand};
use crate::model::{self, Plan};
use crate::moto;
use crate::outbox::OutboxState;
use crate::ports::{free_port, free_ports, port_is_free};
use crate::process::{wait_until, ChildProcess, Children, Output};
use crate::provision::{self, Clients};
use crate::routes::RouteTable;
use crate::sqs::Poller;
use crate::template::Template;

/// How long children get to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// cargo lambda watch reads cargo metadata first, which waits for cargo's
/// lock while another build holds it.
const WATCH_READY_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Root of the Lambda workspace (the directory with the root Cargo.toml).
    pub repo_root: PathBuf,
    /// The SAM template; relative paths are taken from `repo_root`.
    pub template: PathBuf,
    /// 0 picks a free port.
    pub gateway_port: u16,
    /// 0 picks a free port.
    pub moto_port: u16,
    /// Functions listen on consecutive ports from here, in logical-id order;
    /// 0 picks a free port for each.
    pub lambda_port: u16,
    /// Set in every function's environment, after everything else.
    pub env_overrides: Vec<(String, String)>,
    /// Values for template Parameters.
    pub param_overrides: Vec<(String, String)>,
    /// `cargo lambda watch --concurrency`: instances per function.
    pub lambda_concurrency: u32,
    /// Send function and build output to log files under `<repo>/.local/logs/`
    /// instead of this process's output (moto always logs to a file).
    pub quiet: bool,
}

/// How functions are built and reloaded; [`Stack::start`] uses the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildOptions {
    /// Rebuild and restart a function when its sources change (interactive use).
    pub reload: bool,
    /// Build every function before starting, so a compile error fails the start
    /// instead of the first request, and first requests are fast.
    pub prebuild: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            reload: false,
            prebuild: true,
        }
    }
}

impl StackOptions {
    /// Defaults for tests: the repository's template, free ports, quiet, no reload.
    pub fn new(repo_root: impl Into<PathBuf>) -> StackOptions {
        StackOptions {
            repo_root: repo_root.into(),
            template: PathBuf::from("infra/template.yaml"),
            gateway_port: 0,
            moto_port: 0,
            lambda_port: 0,
            env_overrides: vec![],
            param_overrides: vec![],
            lambda_concurrency: 1,
            quiet: true,
        }
    }
}

/// The repository root above `start`: the first directory that has both
/// `Cargo.toml` and `infra/template.yaml`.
pub fn find_repo_root(start: impl AsRef<Path>) -> Option<PathBuf> {
    start
        .as_ref()
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("infra/template.yaml").is_file())
        .map(Path::to_path_buf)
}

/// One function as the stack runs it.
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub logical_id: String,
    pub binary: String,
    /// Port of its `cargo lambda watch`.
    pub port: u16,
    pub invoke_url: String,
    /// The complete environment the function gets.
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug)]
struct StackInfo {
    gateway_port: u16,
    moto_port: u16,
    names: BTreeMap<String, Physical>,
    functions: Vec<FunctionInfo>,
    routes: Vec<String>,
    log_dir: PathBuf,
    /// The T-Bank stand-in's base URL, with live integrations.
    tbank_url: Option<String>,
}

/// A running local stack: moto, one `cargo lambda watch` per function, the
/// gateway and the SQS pollers. Dropping it (or [`Stack::shutdown`]) stops
/// every process it started.
///
/// The stack runs on a thread and runtime of its own, so it keeps serving
/// whichever runtime the caller uses, and can be shared between tests.
pub struct Stack {
    info: Arc<StackInfo>,
    thread: StackThread,
    done: Option<oneshot::Receiver<()>>,
}

/// The stack's thread and the signal that stops it. Dropping it stops and joins the
/// thread, so neither a `Stack` nor a `Stack::start` abandoned half-way leaves it running.
struct StackThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StackThread {
    /// Tells the thread to stop (once; later calls do nothing).
    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the thread to end (once; later calls do nothing).
    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for StackThread {
    fn drop(&mut self) {
        self.signal_stop();
        self.join();
    }
}

impl Stack {
    /// Starts everything and returns once moto answers, the template's
    /// resources exist, every function's watch listens and the gateway listens.
    /// Functions are built first and not reloaded (see [`BuildOptions`]).
    pub async fn start(opts: StackOptions) -> Result<Stack> {
        Stack::start_with(opts, BuildOptions::default()).await
    }

    /// [`Stack::start`] with explicit build and reload behaviour.
    pub async fn start_with(opts: StackOptions, build: BuildOptions) -> Result<Stack> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<StackInfo>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("uslugi-local".into())
            .spawn(move || stack_thread(opts, build, ready_tx, stop_rx, done_tx))
            .map_err(|source| Error::Spawn {
                what: "the stack thread".into(),
                source,
            })?;
        let thread = StackThread {
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.await {
            Ok(Ok(info)) => Ok(Stack {
                info: Arc::new(info),
                thread,
                done: Some(done_rx),
            }),
            // The thread has already cleaned up; dropping `thread` joins it.
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Stopped),
        }
    }

    /// The port the gateway listens on (one stack per port on a machine).
    pub fn gateway_port(&self) -> u16 {
        self.info.gateway_port
    }

    /// `http://127.0.0.1:<gateway port>`
    pub fn gateway_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.info.gateway_port)
    }

    /// `http://127.0.0.1:<moto port>`, for SDK clients (any credentials work).
    pub fn moto_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.info.moto_port)
    }

    pub fn region(&self) -> &'static str {
        REGION
    }

    pub fn account_id(&self) -> &'static str {
        ACCOUNT_ID
    }

    /// What `Ref` gives for a resource: table name, queue URL, function binary...
    pub fn resource_name(&self, logical_id: &str) -> Option<String> {
        self.info
            .names
            .get(logical_id)
            .and_then(|p| p.ref_value.as_str())
            .map(str::to_string)
    }

    /// What `Fn::GetAtt` gives, e.g. `("WorkQueue", "Arn")`.
    pub fn attribute(&self, logical_id: &str, attribute: &str) -> Option<String> {
        self.info
            .names
            .get(logical_id)
            .and_then(|p| p.attributes.get(attribute))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    pub fn functions(&self) -> &[FunctionInfo] {
        &self.info.functions
    }

    /// A function by logical id or binary name.
    pub fn function(&self, name: &str) -> Option<&FunctionInfo> {
        self.info
            .functions
            .iter()
            .find(|f| f.logical_id == name || f.binary == name)
    }

    /// Route keys served by the gateway, e.g. `POST /v1/codes`.
    pub fn routes(&self) -> &[String] {
        &self.info.routes
    }

    /// The T-Bank stand-in (`/_tbank/faults`, `/_tbank/notifications`), when the stack
    /// runs live integrations.
    pub fn tbank_url(&self) -> Option<&str> {
        self.info.tbank_url.as_deref()
    }

    /// Where child process logs go.
    pub fn log_dir(&self) -> &Path {
        &self.info.log_dir
    }

    /// Invokes a function directly (by logical id or binary), bypassing the gateway.
    pub async fn invoke(&self, function: &str, payload: &Value) -> Result<Value> {
        let f = self
            .function(function)
            .ok_or_else(|| Error::UnknownFunction(function.to_string()))?;
        let endpoint = FunctionEndpoint::new(
            &f.logical_id,
            &f.binary,
            f.port,
            Duration::from_secs(900),
            true,
        );
        // A client of its own: a pooled client tied to another runtime would
        // break when that runtime ends.
        let http = reqwest::Client::new();
        endpoint
            .invoke(&http, payload)
            .await
            .map_err(|e| Error::http(&f.invoke_url, e))
    }

    /// Stops everything without blocking the caller's runtime.
    pub async fn shutdown(mut self) {
        self.thread.signal_stop();
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
        self.thread.join();
    }
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("gateway", &self.gateway_url())
            .field("moto", &self.moto_url())
            .finish()
    }
}

fn stack_thread(
    opts: StackOptions,
    build: BuildOptions,
    ready: oneshot::Sender<Result<StackInfo>>,
    mut stop: oneshot::Receiver<()>,
    done: oneshot::Sender<()>,
) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("uslugi-local-rt")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(Error::Io(e)));
            return;
        }
    };
    // Children are spawned from this thread (inside block_on), which lives
    // until they are stopped: their parent-death signal is tied to it.
    let mut children = Children::default();
    runtime.block_on(async {
        let started = tokio::select! {
            r = startup(&opts, build, &mut children) => r,
            _ = &mut stop => return,
        };
        match started {
            Ok((info, tasks)) => {
                if ready.send(Ok(info)).is_ok() {
                    let _ = stop.await;
                }
                for t in &tasks {
                    t.abort();
                }
            }
            Err(e) => {
                let _ = ready.send(Err(e));
            }
        }
    });
    children.stop_all(STOP_GRACE);
    runtime.shutdown_timeout(Duration::from_secs(1));
    let _ = done.send(());
}

fn venv_tool(repo: &Path, name: &str) -> PathBuf {
    let candidate = repo.join(".venv/bin").join(name);
    if candidate.is_file() {
        candidate
    } else {
        PathBuf::from(name)
    }
}

fn check_port(port: u16, what: &str) -> Result<()> {
    if port_is_free(port) {
        Ok(())
    } else {
        Err(Error::Options(format!(
            "port {port} for {what} is already in use (another stack still running?)"
        )))
    }
}

async fn startup(
    opts: &StackOptions,
    build_options: BuildOptions,
    children: &mut Children,
) -> Result<(StackInfo, Vec<JoinHandle<()>>)> {
    let repo = opts
        .repo_root
        .canonicalize()
        .map_err(|source| Error::Read {
            path: opts.repo_root.clone(),
            source,
        })?;
    let template_path = if opts.template.is_absolute() {
        opts.template.clone()
    } else {
        repo.join(&opts.template)
    };
    let manifest = repo.join("Cargo.toml");
    // The Lambda workspace's own target directory, so artifacts of a plain
    // `cargo build` at the root are reused.
    let target_dir = repo.join("target");
    let log_dir = repo.join(".local/logs");
    std::fs::create_dir_all(&log_dir).map_err(|source| Error::Read {
        path: log_dir.clone(),
        source,
    })?;
    prune_logs(&log_dir, LOG_RETENTION);

    // Ports first: the gateway's listener is bound right away, so "0" works
    // without a race and a busy port fails before anything starts.
    let moto_port = match opts.moto_port {
        0 => free_port()?,
        p => {
            check_port(p, "moto")?;
            p
        }
    };
    let gateway_addr = format!("127.0.0.1:{}", opts.gateway_port);
    let listener = tokio::net::TcpListener::bind(&gateway_addr)
        .await
        .map_err(|source| Error::Bind {
            addr: gateway_addr,
            source,
        })?;
    let gateway_port = listener.local_addr()?.port();
    let moto_url = format!("http://127.0.0.1:{moto_port}");
    // Live integrations charge through T-Bank: the stand-in plays the bank.
    let (mut env_overrides, mut param_overrides) =
        (opts.env_overrides.clone(), opts.param_overrides.clone());
    let tbank =
        crate::tbank::local::start(&mut env_overrides, &mut param_overrides, gateway_port).await?;

    // The whole plan is resolved before any process starts: template errors
    // are reported at once.
    let template = Template::load(&template_path)?;
    let mut resolver = Resolver::new(&template, &param_overrides)?;
    let mut plan: Plan = model::plan(&mut resolver, &moto_url)?;

    let function_ports: Vec<u16> = match opts.lambda_port {
        0 => free_ports(plan.functions.len())?,
        base => {
            let mut ports = Vec::new();
            for i in 0..plan.functions.len() {
                let port = u16::try_from(base as usize + i).map_err(|_| {
                    Error::Options(format!("lambda port {base} + {i} is out of range"))
                })?;
                check_port(port, &format!("function {}", plan.functions[i].logical_id))?;
                ports.push(port);
            }
            ports
        }
    };

    // moto starts while the functions build.
    let moto_log = log_dir.join(format!("moto-{moto_port}.log"));
    children.push(ChildProcess::spawn(
        "moto_server",
        moto::command(&venv_tool(&repo, "moto_server"), moto_port),
        Output::File(moto_log.clone()),
    )?);
    tracing::info!("moto starting on {moto_url} (log: {})", moto_log.display());

    let output_for = |name: &str| -> Output {
        if opts.quiet {
            Output::File(log_dir.join(name))
        } else {
            Output::Inherit
        }
    };

    let environments: Vec<BTreeMap<String, String>> = plan
        .functions
        .iter()
        .map(|f| function_environment(&f.environment, &moto_url, &env_overrides))
        .collect();

    if build_options.prebuild {
        let mut built = BTreeSet::new();
        for (f, env) in plan.functions.iter().zip(&environments) {
            if !built.insert(f.binary.clone()) {
                continue;
            }
            let watch = WatchCommand {
                cargo_lambda: Path::new("cargo-lambda"),
                manifest: &manifest,
                target_dir: &target_dir,
                binary: &f.binary,
                port: 0,
                concurrency: 1,
                reload: false,
                environment: env,
                env_file: None,
            };
            let output = output_for(&format!("build-{}-{gateway_port}.log", f.binary));
            tracing::info!("building {}", f.binary);
            // In a collection of its own, so an abandoned start stops the build too.
            let mut builds = Children::default();
            let index = builds.push(ChildProcess::spawn(
                &format!("cargo build --bin {}", f.binary),
                watch.prebuild(),
                output.clone(),
            )?);
            let Some(build) = builds.get_mut(index) else {
                return Err(Error::Stopped);
            };
            let status = tokio::select! {
                s = build.wait() => s?,
                // Fail fast if moto died meanwhile.
                e = wait_for_exit(children) => return Err(e),
            };
            if !status.success() {
                return Err(Error::Build {
                    binary: f.binary.clone(),
                    status: status.to_string(),
                    log: output.describe(),
                });
            }
        }
    }

    let http = reqwest::Client::new();
    wait_until(
        "moto_server",
        moto::READY_TIMEOUT,
        children,
        &moto_log.display().to_string(),
        || moto::answers(&http, &moto_url),
    )
    .await?;

    let clients = Clients::new(&moto_url);
    let urls = provision::provision(&clients, &plan.infrastructure).await?;
    if let Some(live) = &tbank {
        provision::create_secret(&clients.secretsmanager, &live.secret).await?;
    }
    // moto's queue URLs are predicted in the plan; should they differ, the
    // real ones win and everything that refers to them is resolved again.
    let mut changed = false;
    for (id, url) in &urls {
        if let Some(p) = resolver.physical_mut(id) {
            if p.ref_value.as_str() != Some(url.as_str()) {
                p.ref_value = Value::String(url.clone());
                p.attributes
                    .insert("QueueUrl".into(), Value::String(url.clone()));
                changed = true;
            }
        }
    }
    if changed {
        plan = model::finish_plan(&resolver)?;
    }
    tracing::info!(
        "provisioned {} table(s), {} queue(s), {} e-mail identit(y/ies), {} secret(s)",
        plan.infrastructure.tables.len(),
        plan.infrastructure.queues.len(),
        plan.infrastructure.email_identities.len(),
        plan.infrastructure.secrets.len()
    );

    let cargo_lambda = venv_tool(&repo, "cargo-lambda");
    let mut functions = Vec::new();
    let mut endpoints = BTreeMap::new();
    for ((f, port), environment) in plan
        .functions
        .iter()
        .zip(&function_ports)
        .zip(&environments)
    {
        let environment = if changed {
            function_environment(&f.environment, &moto_url, &env_overrides)
        } else {
            environment.clone()
        };
        let command = WatchCommand {
            cargo_lambda: &cargo_lambda,
            manifest: &manifest,
            target_dir: &target_dir,
            binary: &f.binary,
            port: *port,
            concurrency: opts.lambda_concurrency,
            reload: build_options.reload,
            environment: &environment,
            env_file: Some(&log_dir.join(format!("{}-{port}.env", f.logical_id))),
        }
        .build()
        .map_err(|source| Error::Spawn {
            what: format!("cargo lambda watch ({})", f.logical_id),
            source,
        })?;
        let output = output_for(&format!("{}-{port}.log", f.logical_id));
        children.push(ChildProcess::spawn(
            &format!("cargo lambda watch ({})", f.logical_id),
            command,
            output,
        )?);
        let endpoint = FunctionEndpoint::new(
            &f.logical_id,
            &f.binary,
            *port,
            Duration::from_secs(f.timeout_secs),
            build_options.reload,
        );
        functions.push(FunctionInfo {
            logical_id: f.logical_id.clone(),
            binary: f.binary.clone(),
            port: *port,
            invoke_url: endpoint.invoke_url.clone(),
            environment,
        });
        endpoints.insert(f.logical_id.clone(), Arc::new(endpoint));
    }
    for f in &functions {
        let port = f.port;
        let log = if opts.quiet {
            log_dir
                .join(format!("{}-{port}.log", f.logical_id))
                .display()
                .to_string()
        } else {
            "the output above".to_string()
        };
        wait_until(
            &format!("cargo lambda watch for {}", f.logical_id),
            WATCH_READY_TIMEOUT,
            children,
            &log,
            || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_ok()
            },
        )
        .await?;
    }

    let mut tasks = Vec::new();
    let tbank_url = tbank.as_ref().map(|live| live.bank.url());
    if let Some(live) = tbank {
        // Kept until the stack stops (its tasks are aborted then).
        tasks.push(tokio::spawn(async move {
            let _bank = live.bank;
            std::future::pending::<()>().await
        }));
    }
    for f in &plan.functions {
        for source in &f.sqs_events {
            let queue = plan
                .infrastructure
                .queues
                .iter()
                .find(|q| q.arn == source.queue_arn)
                .ok_or_else(|| {
                    Error::resolve(
                        format!(
                            "Resources.{}.Properties.Events.{}.Properties.Queue",
                            f.logical_id, source.name
                        ),
                        format!("{} is not a queue of this template", source.queue_arn),
                    )
                })?;
            let queue_url = urls
                .get(&queue.logical_id)
                .cloned()
                .unwrap_or_else(|| model::queue_url(&moto_url, &queue.name));
            let poller = Poller {
                sqs: clients.sqs.clone(),
                queue_url,
                queue_arn: source.queue_arn.clone(),
                source: source.clone(),
                function: endpoints[&f.logical_id].clone(),
                http: http.clone(),
            };
            tasks.push(tokio::spawn(poller.run()));
        }
    }

    let routes = RouteTable::new(&plan.functions, &plan.apis);
    let route_keys = routes
        .routes()
        .iter()
        .map(|r| r.route_key.clone())
        .collect();
    let state = GatewayState {
        routes,
        apis: plan.apis.clone(),
        functions: endpoints,
        schedules: plan
            .functions
            .iter()
            .map(|f| (f.logical_id.clone(), f.schedules.clone()))
            .collect(),
        moto_url: moto_url.clone(),
        http,
        outbox: Mutex::new(OutboxState::default()),
        log_requests: !opts.quiet,
    };
    tasks.push(tokio::spawn(async move {
        if let Err(e) = gateway::serve(listener, Arc::new(state)).await {
            tracing::error!("gateway stopped: {e}");
        }
    }));

    Ok((
        StackInfo {
            gateway_port,
            moto_port,
            names: plan.names.clone(),
            functions,
            routes: route_keys,
            log_dir,
            tbank_url,
        },
        tasks,
    ))
}

/// Log names carry ports, and tests pick new ports every run; old logs are
/// removed so the directory does not grow without bound.
const LOG_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

fn prune_logs(dir: &Path, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = path.extension().is_some_and(|e| e == "log" || e == "env");
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if ours && old {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Resolves when some child has exited (as that error).
async fn wait_for_exit(children: &mut Children) -> Error {
    loop {
        if let Err(e) = children.check_running() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The template's variables, then what points the function at moto, then the
/// caller's overrides.
pub fn function_environment(
    template_vars: &BTreeMap<String, String>,
    moto_url: &str,
    overrides: &[(String, String)],
) -> BTreeMap<String, String> {
    let mut env = template_vars.clone();
    for (k, v) in [
        ("AWS_ENDPOINT_URL", moto_url),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        // No instance metadata service here; asking it only adds timeouts.
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        env.insert(k.to_string(), v.to_string());
    }
    for (k, v) in overrides {
        env.insert(k.clone(), v.clone());
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_layers() {
        let mut vars = BTreeMap::new();
        vars.insert("TABLE_NAME".to_string(), "t".to_string());
        vars.insert("AWS_REGION".to_string(), "eu-west-1".to_string());
        vars.insert("RUST_LOG".to_string(), "info".to_string());
        let env = function_environment(
            &vars,
            "http://127.0.0.1:4566",
            &[("RUST_LOG".into(), "debug".into())],
        );
        for (name, value) in [
            ("TABLE_NAME", "t"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("RUST_LOG", "debug"),
        ] {
            assert_eq!(env[name], value, "{name}");
        }
    }

    /// Tests share stacks across threads and spawn their futures.
    #[test]
    fn stack_and_its_futures_are_send() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let start = Stack::start(StackOptions::new("/nonexistent"));
        send(&start);
        drop(start);
        fn stack_is_send_sync(s: &Stack) {
            send_sync(s);
            send(&s.invoke("f", &Value::Null));
        }
        let _ = stack_is_send_sync;
    }

    #[test]
    fn repo_root_is_found_from_inside() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = find_repo_root(here).expect("repository root");
        assert!(root.join("infra/template.yaml").is_file());
        assert_eq!(root, here.parent().unwrap().parent().unwrap());
    }
}
