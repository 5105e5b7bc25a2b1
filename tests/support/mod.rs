//! What every end-to-end test needs: a local stack, an HTTP client that behaves like
//! an API client, a view of the outbox and of the DynamoDB table, and a tiny runner
//! that runs scenarios concurrently, reports each one and always tears the stacks down.

#![allow(dead_code)]

pub mod spec;

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use reqwest::Method;
use serde_json::{json, Value};
use uslugi_local::{Stack, StackOptions};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// Prints the local stack's own warnings (a function that timed out or failed behind the
/// gateway's 500, a poller that gave up) on the test's output, so that a failed run
/// says why. `E2E_LOG` takes a filter in `RUST_LOG` form instead.
pub fn show_stack_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("E2E_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("uslugi_local=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Starts a stack on free ports with the given environment overrides for every function.
pub async fn start_stack(env: &[(&str, String)]) -> Stack {
    start_stack_with(env, &[]).await
}

/// Starts a stack with environment and template parameter overrides.
pub async fn start_stack_with(env: &[(&str, String)], params: &[(&str, String)]) -> Stack {
    start_stack_scaled(env, params, 4).await
}

/// Starts a stack whose functions each run `lambda_concurrency` instances, so that
/// concurrent requests really run at once (races need more than one instance).
pub async fn start_stack_scaled(
    env: &[(&str, String)],
    params: &[(&str, String)],
    lambda_concurrency: u32,
) -> Stack {
    let root = repo_root();
    let opts = StackOptions {
        template: root.join("infra/template.yaml"),
        repo_root: root,
        gateway_port: free_port(),
        moto_port: free_port(),
        lambda_port: 0,
        env_overrides: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        param_overrides: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        lambda_concurrency,
        quiet: true,
    };
    match Stack::start(opts).await {
        Ok(stack) => stack,
        Err(e) => panic!("local stack did not start: {e}"),
    }
}

/// Asserts that `line` is one count of `metric` in the namespace `Uslugi`, whose one
/// dimension set is `Stage` followed by `dimensions`, with those values.
pub fn assert_metric_line(line: &Value, metric: &str, stage: &str, dimensions: &[(&str, &str)]) {
    let directive = &line["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Uslugi", "{line}");
    assert!(line["_aws"]["Timestamp"].is_u64(), "{line}");
    let mut names = vec!["Stage"];
    names.extend(dimensions.iter().map(|(k, _)| *k));
    assert_eq!(directive["Dimensions"], json!([names]), "{line}");
    assert_eq!(
        directive["Metrics"],
        json!([{"Name": metric, "Unit": "Count"}]),
        "{line}"
    );
    assert_eq!(line["Stage"], stage, "{line}");
    for (k, v) in dimensions {
        assert_eq!(line[*k], *v, "{line}");
    }
    assert_eq!(line[metric], 1, "{line}");
}

/// A client of one stack.
/// The user agent of every request unless a test names another device.
pub const DEVICE: &str = "e2e-tests/1.0";

#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub moto: String,
    http: reqwest::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Where each function's output goes, by logical id, and the `Stage` its metrics
    /// carry.
    function_logs: std::sync::Arc<std::collections::BTreeMap<String, FunctionLog>>,
}

#[derive(Debug, Clone)]
struct FunctionLog {
    path: PathBuf,
    stage: String,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with the given status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with(code)));
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }

    /// The field errors of a validation problem, as `(field, code)` pairs.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            e["field"].as_str().unwrap_or_default().to_string(),
                            e["code"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Reply {
    /// A body as the tests read it: JSON when it parses, else the text; empty is `null`.
    fn body_of(text: String) -> Value {
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }
}

/// A request to the stack's gateway that a test builds itself. Its answer is read whole
/// and checked against docs/openapi.yaml ([`spec`]) like every other.
pub struct Request<'a> {
    api: &'a Api,
    inner: reqwest::RequestBuilder,
}

impl Request<'_> {
    pub fn header(self, name: &str, value: impl AsRef<str>) -> Self {
        Self {
            inner: self.inner.header(name, value.as_ref()),
            ..self
        }
    }

    pub fn body(self, body: String) -> Self {
        Self {
            inner: self.inner.body(body),
            ..self
        }
    }

    pub fn query(self, pairs: &[(&str, &str)]) -> Self {
        Self {
            inner: self.inner.query(pairs),
            ..self
        }
    }

    pub async fn send(self) -> Reply {
        self.api.send(self.inner).await
    }
}

impl Api {
    pub async fn new(stack: &Stack) -> Self {
        let moto = stack.moto_url();
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "test", "test", None, None, "e2e",
            ))
            .load()
            .await;
        Self {
            base: stack.gateway_url(),
            moto,
            // The first call may wait for `cargo lambda watch` to build a function.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(600))
                .build()
                .unwrap_or_else(|e| panic!("http client: {e}")),
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            function_logs: std::sync::Arc::new(
                stack
                    .functions()
                    .iter()
                    .map(|f| {
                        (
                            f.logical_id.clone(),
                            FunctionLog {
                                path: stack
                                    .log_dir()
                                    .join(format!("{}-{}.log", f.logical_id, f.port)),
                                stage: f
                                    .environment
                                    .get("STAGE")
                                    .filter(|s| !s.is_empty())
                                    .cloned()
                                    .unwrap_or_else(|| "local".to_string()),
                            },
                        )
                    })
                    .collect(),
            ),
        }
    }

    fn function_log(&self, function: &str) -> &FunctionLog {
        self.function_logs
            .get(function)
            .unwrap_or_else(|| panic!("no function {function} in the stack"))
    }

    /// The `Stage` the metrics of `function` (a logical id) carry: its `STAGE`, or
    /// `local` when the stack sets none.
    pub fn metric_stage(&self, function: &str) -> String {
        self.function_log(function).stage.clone()
    }

    /// The embedded-metric-format lines of `metric` that `function` (a logical id) wrote
    /// to its log so far: JSON objects with `_aws` at the top level, as CloudWatch reads
    /// them from a log group.
    pub fn metric_lines(&self, function: &str, metric: &str) -> Vec<Value> {
        let path = &self.function_log(function).path;
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("log of {function} ({}): {e}", path.display()));
        text.lines()
            .filter(|line| line.starts_with('{'))
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line.get("_aws").is_some() && line.get(metric).is_some())
            .collect()
    }

    /// Waits (up to 10 s) until `function` has written more than `after` lines of
    /// `metric` whose members match `dimensions`, and returns the matching lines.
    pub async fn wait_for_metric(
        &self,
        function: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        after: usize,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.matching_metric_lines(function, metric, dimensions);
            if lines.len() > after || Instant::now() > deadline {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `fault injected` warnings `function` (a logical id) logged so far for
    /// `dependency`: one per fault the layer put into a call.
    pub fn injected_faults(&self, function: &str, dependency: &str) -> usize {
        let path = &self.function_log(function).path;
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["message"] == "fault injected" && line["dependency"] == dependency)
            .count()
    }

    /// The lines of `metric` in `function`'s log whose members match `dimensions`.
    pub fn matching_metric_lines(
        &self,
        function: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
    ) -> Vec<Value> {
        self.metric_lines(function, metric)
            .into_iter()
            .filter(|line| dimensions.iter().all(|(k, v)| line[*k] == *v))
            .collect()
    }

    /// The URL of the queue whose name ends with `suffix`.
    pub async fn queue_url(&self, suffix: &str) -> String {
        let queues = self
            .sqs
            .list_queues()
            .send()
            .await
            .unwrap_or_else(|e| panic!("list queues: {e}"));
        queues
            .queue_urls()
            .iter()
            .find(|u| u.ends_with(suffix))
            .cloned()
            .unwrap_or_else(|| panic!("no queue ending with {suffix}: {queues:?}"))
    }

    /// POSTs a raw body as if from `client_ip` (the local gateway takes the caller's
    /// address from `X-Forwarded-For`, as API Gateway would from the TCP peer).
    pub async fn post_raw(&self, path: &str, client_ip: &str, body: String) -> Reply {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-forwarded-for", client_ip)
            .header("user-agent", DEVICE)
            .body(body);
        self.send(request).await
    }

    /// Any request, optionally with a bearer token and a JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        client_ip: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.call_from_device(method, path, client_ip, DEVICE, token, body)
            .await
    }

    /// Any request, from the device a user agent names.
    pub async fn call_from_device(
        &self,
        method: reqwest::Method,
        path: &str,
        client_ip: &str,
        user_agent: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("x-forwarded-for", client_ip)
            .header("user-agent", user_agent);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        self.send(request).await
    }

    /// A request to `path` (from `/`) that the test adds headers and a body to.
    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        Request {
            api: self,
            inner: self.http.request(method, format!("{}{path}", self.base)),
        }
    }

    /// Sends a request, reads the whole answer and checks it against docs/openapi.yaml:
    /// the one door every response of the gateway comes in by.
    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let request = request
            .build()
            .unwrap_or_else(|e| panic!("a request that cannot be sent: {e}"));
        let method = request.method().clone();
        let path = request.url().path().to_string();
        let response = self
            .http
            .execute(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: the body: {e}"));
        // Checked on the blocking pool: the scenario waits for the verdict, but the other
        // requests of a flood (often futures of the same task) keep their pace meanwhile.
        let checked = tokio::task::spawn_blocking(move || {
            spec::check(&spec::Seen {
                method: &method,
                path: &path,
                status,
                headers: &headers,
                body: &text,
            });
            (headers, text)
        })
        .await;
        let (headers, text) = match checked {
            Ok(checked) => checked,
            // The mismatch's message, as the scenario's own failure.
            Err(e) => match e.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(e) => panic!("the check against docs/openapi.yaml did not run: {e}"),
            },
        };
        Reply {
            status,
            headers,
            body: Reply::body_of(text),
        }
    }

    pub async fn post(&self, path: &str, client_ip: &str, body: Value) -> Reply {
        self.post_raw(path, client_ip, body.to_string()).await
    }

    pub async fn send_code(
        &self,
        client_ip: &str,
        channel: &str,
        destination: &str,
        purpose: &str,
    ) -> Reply {
        self.post(
            "/v1/codes",
            client_ip,
            serde_json::json!({"channel": channel, "destination": destination, "purpose": purpose}),
        )
        .await
    }

    pub async fn verify(&self, id: &str, code: &str) -> Reply {
        self.post(
            &format!("/v1/codes/{id}/verify"),
            "198.51.100.1",
            serde_json::json!({ "code": code }),
        )
        .await
    }

    /// Messages the local outbox holds for `to`, newest first.
    pub async fn outbox(&self, to: &str) -> Vec<Value> {
        let reply = self
            .request(Method::GET, "/_local/outbox")
            .query(&[("to", to)])
            .send()
            .await;
        assert_eq!(reply.status, 200, "outbox: {}", reply.body);
        reply.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The code in the newest message to `to`.
    pub async fn code_sent_to(&self, to: &str) -> String {
        let messages = self.outbox(to).await;
        let newest = messages
            .first()
            .unwrap_or_else(|| panic!("no message was sent to {to}"));
        extract_code(newest["text"].as_str().unwrap_or_default())
            .unwrap_or_else(|| panic!("no code in message {newest}"))
    }

    pub async fn table_name(&self) -> String {
        let tables = self
            .dynamodb
            .list_tables()
            .send()
            .await
            .unwrap_or_else(|e| panic!("list tables: {e}"));
        let names = tables.table_names();
        assert_eq!(names.len(), 1, "expected one table, found {names:?}");
        names[0].clone()
    }

    pub async fn item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Option<std::collections::HashMap<String, AttributeValue>> {
        let table = self.table_name().await;
        self.dynamodb
            .get_item()
            .table_name(table)
            .key("pk", AttributeValue::S(pk.into()))
            .key("sk", AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get item: {e}"))
            .item
    }

    /// Every item whose partition key starts with `prefix`.
    pub async fn items_with_prefix(
        &self,
        prefix: &str,
    ) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        let table = self.table_name().await;
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .dynamodb
                .scan()
                .table_name(&table)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", AttributeValue::S(prefix.into()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap_or_else(|e| panic!("scan: {e}"));
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return items;
            }
        }
    }
}

pub fn extract_code(text: &str) -> Option<String> {
    let rest = text.split("Код подтверждения: ").nth(1)?;
    let code: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    (code.len() == 6).then_some(code)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A mobile number no other scenario uses, in E.164.
pub fn unique_phone() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt = std::process::id() % 1000;
    format!("+7999{salt:03}{n:04}")
}

pub fn unique_email() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("citizen{n}.{}@example.ru", std::process::id())
}

/// A client address no other scenario uses (TEST-NET-3, RFC 5737).
pub fn unique_ip() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("203.0.{}.{}", n / 250, n % 250 + 1)
}

pub fn string_attr(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(s)) => s.clone(),
        other => panic!("attribute {name} is not a string: {other:?}"),
    }
}

pub fn number_attr(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or_else(|_| panic!("{name}={n}")),
        other => panic!("attribute {name} is not a number: {other:?}"),
    }
}

/// Every string inside an item, flattened, to check what is stored in clear.
pub fn all_text(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    fn walk(v: &AttributeValue, out: &mut String) {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => {
                out.push_str(s);
                out.push(' ');
            }
            AttributeValue::M(m) => m.iter().for_each(|(k, v)| {
                out.push_str(k);
                out.push(' ');
                walk(v, out)
            }),
            AttributeValue::L(l) => l.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    for (k, v) in item {
        out.push_str(k);
        out.push(' ');
        walk(v, &mut out);
    }
    out
}

pub type Scenario = (
    &'static str,
    Box<dyn FnOnce(Api) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>,
);

#[macro_export]
macro_rules! scenario {
    ($f:ident) => {
        (
            stringify!($f),
            Box::new(|api| {
                Box::pin($f(api)) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            }) as Box<dyn FnOnce(_) -> _ + Send>,
        )
    };
}

/// How many scenarios ran and how many of them failed.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub ran: usize,
    pub failed: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Self) {
        self.ran += other.ran;
        self.failed += other.failed;
    }
}

impl Tally {
    /// Prints the closing line and ends the process, non-zero when anything failed.
    pub fn finish(self) -> ! {
        println!("\n{}", spec::summary());
        println!(
            "\n{} passed, {} failed",
            self.ran - self.failed,
            self.failed
        );
        std::process::exit(i32::from(self.failed > 0))
    }
}

/// The names given after `--` on the command line: a scenario runs when its name contains
/// one of them (as libtest filters), every scenario when none is given. Flags (`-…`) are
/// ignored.
fn name_filters() -> &'static [String] {
    static FILTERS: OnceLock<Vec<String>> = OnceLock::new();
    FILTERS.get_or_init(|| {
        std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect()
    })
}

/// Whether the command line asks for the scenario `name`.
pub fn wanted(name: &str) -> bool {
    let filters = name_filters();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

/// Runs the scenarios the command line asks for ([`wanted`]) concurrently (or one by one),
/// prints one line per scenario and returns how many ran and failed. A panicking scenario
/// fails alone.
pub async fn run_all(api: &Api, scenarios: Vec<Scenario>, concurrently: bool) -> Tally {
    let given = scenarios.len();
    let scenarios: Vec<Scenario> = scenarios
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .collect();
    if scenarios.len() < given {
        println!(
            "{} of {given} scenarios filtered out by name",
            given - scenarios.len()
        );
    }
    let mut tally = Tally {
        ran: scenarios.len(),
        failed: 0,
    };
    let mut handles = Vec::new();
    for (name, body) in scenarios {
        let api = api.clone();
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            body(api).await;
            started.elapsed()
        });
        if concurrently {
            handles.push((name, handle));
        } else {
            tally.failed += report(name, handle.await);
        }
    }
    for (name, handle) in handles {
        tally.failed += report(name, handle.await);
    }
    tally
}

fn report(name: &str, outcome: Result<Duration, tokio::task::JoinError>) -> usize {
    match outcome {
        Ok(took) => {
            println!("test {name} ... ok ({:.1}s)", took.as_secs_f32());
            0
        }
        Err(e) => {
            let message = match e.try_into_panic() {
                Ok(payload) => payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()),
                Err(e) => e.to_string(),
            };
            println!("test {name} ... FAILED\n    {message}");
            1
        }
    }
}

// ------------------------------------------------------------------ accounts

/// The password of every account the tests create.
pub const PASSWORD: &str = "Zx8#kettle-Orbit";

/// A verification token for `destination`, through the code flow and the outbox.
pub async fn verified(api: &Api, channel: &str, destination: &str, canonical: &str) -> String {
    verified_for(api, channel, destination, canonical, "registration").await
}

pub async fn verified_for(
    api: &Api,
    channel: &str,
    destination: &str,
    canonical: &str,
    purpose: &str,
) -> String {
    let sent = api
        .send_code(&unique_ip(), channel, destination, purpose)
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap_or_default().to_string();
    let code = api.code_sent_to(canonical).await;
    let verified = api.verify(&id, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    verified.body["verification_token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn registration(email: &str, phone: &str, email_token: &str, phone_token: &str) -> Value {
    json!({
        "last_name": "Иванов",
        "first_name": "Пётр",
        "middle_name": "Сергеевич",
        "email": email,
        "phone": phone,
        "password": PASSWORD,
        "security_question": "Девичья фамилия матери",
        "security_answer": "Ёлкина",
        "email_verification_token": email_token,
        "phone_verification_token": phone_token,
    })
}

pub struct Citizen {
    pub email: String,
    pub phone: String,
    pub account_id: String,
}

pub async fn sign_up(api: &Api) -> Citizen {
    let email = unique_email();
    let phone = unique_phone();
    let email_token = verified(api, "email", &email, &email).await;
    let phone_token = verified(api, "sms", &phone, &phone).await;
    let reply = api
        .post(
            "/v1/accounts",
            &unique_ip(),
            registration(&email, &phone, &email_token, &phone_token),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    Citizen {
        email,
        phone,
        account_id: reply.body["account_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

pub async fn login(api: &Api, ip: &str, login: &str, password: &str, foreign: bool) -> Reply {
    api.post(
        "/v1/sessions",
        ip,
        json!({"login": login, "password": password, "foreign_computer": foreign}),
    )
    .await
}

pub async fn token_for(api: &Api, citizen: &Citizen) -> String {
    let reply = login(api, &unique_ip(), &citizen.email, PASSWORD, false).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["token"].as_str().unwrap_or_default().to_string()
}

// ------------------------------------------------------------------ the admin command

/// The environment the stack gives its functions: what the admin command needs too.
pub static ADMIN_ENV: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Runs `uslugi-admin` against the stack: whether it succeeded, and what it printed.
pub fn admin_outcome(args: &[&str]) -> (bool, Value) {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let env = ADMIN_ENV
        .get()
        .unwrap_or_else(|| panic!("no stack environment"));
    let out = std::process::Command::new(target.join("debug/uslugi-admin"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("uslugi-admin: {e}"));
    let printed = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "uslugi-admin {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), printed)
}

/// Runs `uslugi-admin` (built by `make build` with the functions) against the stack.
pub fn admin(args: &[&str]) -> Value {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target"));
    let env = ADMIN_ENV
        .get()
        .unwrap_or_else(|| panic!("no stack environment"));
    let out = std::process::Command::new(target.join("debug/uslugi-admin"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("uslugi-admin: {e}"));
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

// ------------------------------------------------------------------ profiles

/// A SNILS with a valid checksum whose number starts with `prefix` (sandbox rules read
/// the first digits) and is unique for this run.
pub fn snils_of(prefix: &str) -> String {
    let unique = unique_phone();
    let tail = &unique[unique.len() - (9 - prefix.len())..];
    let number = format!("{prefix}{tail}");
    let sum: u32 = number
        .bytes()
        .zip((1..=9).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => (s % 101) % 100,
    };
    format!("{number}{check:02}")
}

/// A SNILS of the nine-digit `number` with its check digits.
pub fn snils_with_number(number: &str) -> String {
    let sum: u32 = number
        .bytes()
        .zip((1..=9).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = match sum {
        s if s < 100 => s,
        100 | 101 => 0,
        s => (s % 101) % 100,
    };
    format!("{number}{check:02}")
}

/// Who the sandbox civil registry's birth record of a certificate names
/// (docs/testing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBirthRecord {
    Mother,
    Father,
    Child,
}

/// A birth certificate number (six digits) whose first five, which stand for the parents
/// in the sandbox civil registry, are unique for this run.
pub fn certificate_number() -> String {
    let unique = unique_phone();
    format!("{}0", &unique[unique.len() - 5..])
}

/// The SNILS the sandbox birth record of certificate `number` gives `whom`.
pub fn birth_record_snils(number: &str, whom: OnBirthRecord) -> String {
    let parents = &number[..5];
    match whom {
        OnBirthRecord::Mother => snils_with_number(&format!("77{parents}01")),
        OnBirthRecord::Father => snils_with_number(&format!("77{parents}02")),
        OnBirthRecord::Child => snils_with_number(&format!("77{number}3")),
    }
}

/// A standard-level citizen whom the sandbox birth record of certificate `number` names.
pub async fn parent_on_record(api: &Api, number: &str, whom: OnBirthRecord) -> (Citizen, String) {
    standard_citizen(api, &birth_record_snils(number, whom), &six_digits()).await
}

/// Polls the account's child `id` until the registry decided the link (its `status` is
/// no longer `pending`), for at most a minute; the child as the API shows it.
pub async fn wait_for_child(api: &Api, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = api
            .call(
                Method::GET,
                &format!("/v1/profile/children/{id}"),
                &unique_ip(),
                Some(token),
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let decided = reply.body["status"] != "pending" && reply.body["snils_status"] != "pending";
        if decided {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "child {id} never decided: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn passport(number: &str) -> Value {
    json!({
        "series": "45 10",
        "number": number,
        "issue_date": "2010-06-01",
        "department_code": "770-001",
        "issued_by": "ОВД района Арбат г. Москвы",
    })
}

pub async fn profile(api: &Api, token: &str) -> Reply {
    api.call(Method::GET, "/v1/profile", &unique_ip(), Some(token), None)
        .await
}

pub async fn patch(api: &Api, token: &str, version: Option<&str>, body: Value) -> Reply {
    let mut request = api
        .request(Method::PATCH, "/v1/profile")
        .header("authorization", format!("Bearer {token}"))
        .header("x-forwarded-for", unique_ip())
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(v) = version {
        request = request.header("if-match", v);
    }
    request.send().await
}

/// A new citizen with a session.
pub async fn citizen(api: &Api) -> (Citizen, String) {
    let c = sign_up(api).await;
    let token = token_for(api, &c).await;
    (c, token)
}

/// Polls the profile until `done` holds, for at most a minute.
pub async fn wait_for(api: &Api, token: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = profile(api, token).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if done(&reply.body) {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn status(profile: &Value, field: &str) -> String {
    profile["verification"][field]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Personal data and documents that the sandbox verifies.
pub fn verifiable(snils: &str, passport_number: &str) -> Value {
    json!({
        "personal": {"birth_date": "1985-03-12", "gender": "male"},
        "documents": {"snils": snils, "passport": passport(passport_number)},
    })
}

/// Six digits unique for this run.
pub fn six_digits() -> String {
    let unique = unique_phone();
    unique[unique.len() - 6..].to_string()
}

pub async fn call(
    api: &Api,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    api.call(method, path, &unique_ip(), Some(token), body)
        .await
}

/// A citizen whose account reached the standard level.
pub async fn standard_citizen(api: &Api, snils: &str, passport_number: &str) -> (Citizen, String) {
    let (c, token) = citizen(api).await;
    let reply = patch(
        api,
        &token,
        Some("\"0\""),
        verifiable(snils, passport_number),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(api, &token, "standard level", |p| p["level"] == "standard").await;
    (c, token)
}

// ------------------------------------------------------------------ bills

/// The GIS GMP check digit (first pass: weights 1..10 repeating), or `None` when the
/// first pass gives 10 (such prefixes are skipped here rather than second-guessed).
pub fn check_digit(digits: &str) -> Option<u32> {
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * (i as u32 % 10 + 1))
        .sum();
    let d = sum % 11;
    (d < 10).then_some(d)
}

/// A valid UIN of `length` digits, unique for this run.
pub fn uin(length: usize) -> String {
    loop {
        let unique = format!("{}{}", unique_phone(), unique_phone());
        let digits: String = unique.chars().filter(char::is_ascii_digit).collect();
        let body = format!("188{}", &digits[digits.len() - (length - 4)..]);
        if let Some(d) = check_digit(&body) {
            return format!("{body}{d}");
        }
    }
}

pub fn charge(amount: u64, payers: Value) -> Value {
    json!({
        "amount": amount,
        "payee": {
            "name": "ГБОУ Школа № 1234",
            "inn": "7707083893",
            "kpp": "770701001",
            "bic": "044525000",
            "account": "03234643350000007300",
        },
        "purpose": "Родительская плата за присмотр и уход, ноябрь",
        "kbk": "07511302992020000130",
        "oktmo": "45383000",
        "bill_date": "2026-11-01",
        "due_date": "2026-12-10",
        "category": "kindergarten",
        "payers": payers,
    })
}

pub struct BillerKey {
    pub id: String,
    pub key: String,
}

/// A biller registered for the UINs [`uin`] makes (`188…`) and the payee of [`charge`].
pub fn new_biller(name: &str) -> BillerKey {
    let created = admin(&[
        "create-biller",
        "--name",
        name,
        "--uin-prefixes",
        "188",
        "--payee-name",
        "ГБОУ Школа № 1234",
        "--payee-inn",
        "7707083893",
        "--payee-kpp",
        "770701001",
        "--payee-bic",
        "044525000",
        "--payee-account",
        "03234643350000007300",
    ]);
    BillerKey {
        id: created["biller_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        key: created["key"].as_str().unwrap_or_default().to_string(),
    }
}

pub async fn as_biller(
    api: &Api,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Reply {
    api.call(method, path, &unique_ip(), Some(key), body).await
}

pub async fn put_charge(
    api: &Api,
    biller: &BillerKey,
    category: &str,
    amount: u64,
    payers: Value,
) -> String {
    let uin = uin(20);
    let mut body = charge(amount, payers);
    body["category"] = json!(category);
    let reply = as_biller(
        &api.clone(),
        Method::PUT,
        &format!("/v1/biller/charges/{uin}"),
        &biller.key,
        Some(body),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    uin
}

/// Waits until a queue has no message visible or in flight, for at most two minutes.
pub async fn wait_for_empty_queue(api: &Api, suffix: &str) {
    let url = api.queue_url(suffix).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let attributes = api
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("queue attributes: {e}"));
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let left = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        if left == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{suffix}: {left} messages never handled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Fires a reconciliation run and waits until its pages (and any other run's) are done.
pub async fn reconcile(api: &Api) -> Value {
    let reply = api
        .request(Method::POST, "/_local/schedules/reconcile-payments")
        .send()
        .await;
    assert!((200..300).contains(&reply.status), "{}", reply.status);
    let planned = reply.body;
    assert_eq!(planned["planned"], 17, "{planned}");
    wait_for_empty_queue(api, "-reconcile").await;
    planned
}
