//! The HTTP client of one stack: every request goes through [`Api::send`], which checks
//! the answer against docs/openapi.yaml, and the views of the stack's logs, queues and
//! table that scenarios read.

use super::*;

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
    /// The T-Bank stand-in's base URL, when the stack runs live integrations.
    pub tbank: Option<String>,
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

    /// Asserts a validation problem whose field errors are exactly `expected`, in order.
    pub fn assert_field_errors(&self, expected: &[(&str, &str)]) {
        self.assert_problem(422, "validation_failed");
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, c)| (f.to_string(), c.to_string()))
            .collect();
        assert_eq!(self.field_errors(), expected, "{}", self.body);
    }

    /// Asserts a validation problem that names each field of `expected` (whatever the code),
    /// among others.
    pub fn assert_fields_named(&self, expected: &[&str]) {
        self.assert_problem(422, "validation_failed");
        let errors = self.field_errors();
        for field in expected {
            assert!(
                errors.iter().any(|(f, _)| f == field),
                "{field} missing in {errors:?}"
            );
        }
    }

    /// The member names of the body, sorted: two answers that must not tell one case
    /// from another have the same.
    pub fn member_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .body
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The `id` of the body (empty when there is none).
    pub fn id(&self) -> String {
        text(&self.body["id"])
    }

    /// Asserts a validation problem that names each of `expected` (field, code), among
    /// others.
    pub fn assert_invalid_fields(&self, expected: &[(&str, &str)]) {
        for (field, code) in expected {
            self.assert_invalid_field(field, code);
        }
    }

    /// Asserts a validation problem that names `field` with `code` (among others).
    pub fn assert_invalid_field(&self, field: &str, code: &str) {
        self.assert_problem(422, "validation_failed");
        assert!(
            self.field_errors()
                .contains(&(field.to_string(), code.to_string())),
            "{field} {code} in {}",
            self.body
        );
    }

    /// The array at `key` of the body (empty when there is none).
    pub fn list(&self, key: &str) -> Vec<Value> {
        self.body[key].as_array().cloned().unwrap_or_default()
    }

    /// The seconds of its `Retry-After` (0 without one).
    pub fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    /// The field errors of a validation problem, as `(field, code)` pairs.
    pub fn field_errors(&self) -> Vec<(String, String)> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| (text(&e["field"]), text(&e["code"])))
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

    /// The header `name` when there is a `value`.
    pub fn header_if(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.header(name, value),
            None => self,
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
            tbank: stack.tbank_url().map(str::to_string),
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

    /// Waits until `function` has written one more line of `metric` (with `dimensions`) than
    /// the `before` it had, and asserts that it is one count with those dimensions.
    pub async fn assert_one_more_metric(
        &self,
        function: &str,
        metric: &str,
        dimensions: &[(&str, &str)],
        before: usize,
    ) {
        let lines = self
            .wait_for_metric(function, metric, dimensions, before)
            .await;
        assert_eq!(lines.len(), before + 1, "{function} {metric}: {lines:?}");
        let stage = self.metric_stage(function);
        assert_metric_line(&lines[before], metric, &stage, dimensions);
    }

    /// Fires the local scheduler's `job` (as EventBridge would) and answers what it planned.
    pub async fn fire_schedule(&self, job: &str) -> Value {
        let path = format!("/_local/schedules/{job}");
        let reply = self.request(Method::POST, &path).send().await;
        assert!((200..300).contains(&reply.status), "{}", reply.status);
        reply.body
    }

    /// Fires `job` as EventBridge would have at `time` (RFC 3339, the event's `time`):
    /// the run of another day. Answers what it planned.
    pub async fn fire_schedule_at(&self, job: &str, time: &str) -> Value {
        let path = format!("/_local/schedules/{job}");
        let reply = self
            .request(Method::POST, &path)
            .query(&[("time", time)])
            .send()
            .await;
        assert!(
            (200..300).contains(&reply.status),
            "{}: {}",
            reply.status,
            reply.body
        );
        reply.body
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

    /// Up to ten messages of the queue at `url`, left invisible for `hide_secs` seconds.
    pub async fn receive(&self, url: &str, hide_secs: i32) -> Vec<aws_sdk_sqs::types::Message> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(hide_secs)
            .send()
            .await;
        received
            .unwrap_or_else(|e| panic!("receive: {e}"))
            .messages
            .unwrap_or_default()
    }

    /// Puts a message with `body` on the queue at `url`, as a function would.
    pub async fn enqueue(&self, url: &str, body: impl Into<String>) {
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("send: {e}"));
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

    /// A GET as the holder of `token` (a session or a key), from an address of its own.
    pub async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::GET, path, &unique_ip(), Some(token), None)
            .await
    }

    /// A DELETE as the holder of `token`, from an address of its own.
    pub async fn delete_as(&self, token: &str, path: &str) -> Reply {
        self.call(Method::DELETE, path, &unique_ip(), Some(token), None)
            .await
    }

    /// A POST of `body` as the holder of `token`, from an address of its own.
    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, &unique_ip(), Some(token), Some(body))
            .await
    }

    /// A PUT of `body` as the holder of `token`, from an address of its own.
    pub async fn put_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, &unique_ip(), Some(token), Some(body))
            .await
    }

    /// A PATCH of `body` as the holder of `token`, from an address of its own.
    pub async fn patch_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, &unique_ip(), Some(token), Some(body))
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
        let request = uslugi_local::seed::client_request(
            &self.http,
            method,
            &format!("{}{path}", self.base),
            client_ip,
            user_agent,
            token,
            body.as_ref(),
        );
        self.send(request).await
    }

    /// A request of the JSON `body` to `path` as the holder of `token`, from an address of
    /// its own, that the test may add headers to.
    pub fn json_request(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: &Value,
    ) -> Request<'_> {
        self.request(method, path)
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-for", unique_ip())
            .header("content-type", "application/json")
            .body(body.to_string())
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

    /// Sends a code from an address of its own, which must be accepted; its id.
    pub async fn code_sent(&self, channel: &str, destination: &str, purpose: &str) -> String {
        let sent = self
            .send_code(&unique_ip(), channel, destination, purpose)
            .await;
        assert_eq!(sent.status, 202, "{}", sent.body);
        sent.id()
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
            .set_key(Some(item_key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get item: {e}"))
            .item
    }

    /// Deletes an item behind the services' back (a test breaking the table on purpose).
    pub async fn delete_item(&self, pk: &str, sk: &str) {
        let table = self.table_name().await;
        self.dynamodb
            .delete_item()
            .table_name(table)
            .set_key(Some(item_key(pk, sk)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete: {e}"));
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

/// A JSON string's text (empty for anything else).
pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_string()
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

/// The key of the item at `pk`/`sk` in the single table, for reading or deleting it.
fn item_key(pk: &str, sk: &str) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk.into())),
        ("sk".to_string(), AttributeValue::S(sk.into())),
    ])
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
