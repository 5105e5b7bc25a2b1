//! The traffic each function gets in the warm run: realistic API Gateway HTTP API (v2)
//! events, including refusals, with the answer each one should get.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};

use crate::proxy::Call;
use uslugi_local::intrinsics::ACCOUNT_ID;
use uslugi_local::provision::Clients;

use crate::functions::FunctionSpec;

/// One event to deliver.
pub struct Step {
    pub label: Label,
    pub event: Json,
    pub expect: Option<Expect>,
}

/// What the report files a step under and counts for it; each measured invocation keeps
/// its step's label (see [`crate::measure::Sample`]).
#[derive(Debug, Clone)]
pub struct Label {
    /// What the request is, e.g. `send code (sms)`; results are grouped by it.
    pub case: String,
    pub route: String,
    /// How many argon2id hashes or verifications the function runs for this request, for
    /// the hash cost in the report (0 for most requests).
    pub argon2: u32,
    /// Units of work the event carries (an SQS batch's messages), for the AWS calls per
    /// unit in the report; `None` for a request.
    pub items: Option<usize>,
}

impl Step {
    /// The step of a request to an HTTP route: `case`, the API Gateway `event` (the route
    /// is its `routeKey`, so a scenario names the route once, where it builds the event)
    /// and the answer it should get.
    pub fn request(case: &str, event: Json, expect: Option<Expect>) -> Self {
        let route = event["routeKey"].as_str().unwrap_or_default().to_string();
        Self::on_route(case, &route, event, expect)
    }

    /// The step of `event` to `route` (an HTTP route, or the queue an SQS event comes
    /// from): `case` and the answer it should get.
    pub fn on_route(case: &str, route: &str, event: Json, expect: Option<Expect>) -> Self {
        Self {
            label: Label {
                case: case.to_string(),
                route: route.to_string(),
                argon2: 0,
                items: None,
            },
            event,
            expect,
        }
    }

    /// [`Step::request`] with the answer written as the report describes it (see
    /// [`Expect::parse`]): how the scenarios' tables of requests give theirs.
    pub fn expecting(case: &str, event: Json, answer: &'static str) -> Result<Self> {
        Ok(Self::request(case, event, Some(Expect::parse(answer)?)))
    }

    /// The step of a request for which the function runs `n` argon2id hashes or
    /// verifications.
    pub fn hashing(mut self, n: u32) -> Self {
        self.label.argon2 = n;
        self
    }

    /// The step, carrying `n` units of work.
    pub fn with_items(mut self, n: usize) -> Self {
        self.label.items = Some(n);
        self
    }
}

/// The answer a step should get: status, for refusals the problem `code`, and for
/// validation problems the `code` one of the listed field errors must carry.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    pub status: u16,
    pub problem: Option<&'static str>,
    pub field: Option<&'static str>,
}

impl Expect {
    /// Whether an answer is the expected one.
    pub fn matches(&self, status: u16, body: &Json) -> bool {
        let problem = body.get("code").and_then(Json::as_str);
        let field_codes = || {
            body.get("errors")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .filter_map(|e| e.get("code").and_then(Json::as_str))
        };
        status == self.status
            && self.problem.is_none_or(|p| problem == Some(p))
            && self.field.is_none_or(|f| field_codes().any(|c| c == f))
    }

    /// An answer written as [`Expect::describe`] writes it: `201`, `404 bill_not_found`,
    /// `422 validation_failed (address_length)`; scenarios list their requests' answers so.
    pub fn parse(text: &'static str) -> Result<Self> {
        let (status, rest) = text.split_once(' ').unwrap_or((text, ""));
        let status = status
            .parse()
            .with_context(|| format!("the expected answer `{text}` starts with no status"))?;
        let (problem, field) = match rest.split_once(" (") {
            Some((problem, field)) => {
                let field = field
                    .strip_suffix(')')
                    .with_context(|| format!("the expected answer `{text}`: no `)`"))?;
                (problem, Some(field))
            }
            None => (rest, None),
        };
        Ok(Self {
            status,
            problem: (!problem.is_empty()).then_some(problem),
            field,
        })
    }

    /// `422 validation_failed (verification_token_invalid)`.
    pub fn describe(&self) -> String {
        let mut text = self.status.to_string();
        if let Some(p) = self.problem {
            text.push_str(&format!(" {p}"));
        }
        if let Some(f) = self.field {
            text.push_str(&format!(" ({f})"));
        }
        text
    }
}

/// What [`Scenario::next_step`] returns: a scenario may first put what the event needs
/// into moto (an account, a verification token), before the event is handed out and so
/// outside the timing.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<Step>> + 'a>>;

/// A scenario as the harness runs it, behind `Box<dyn Scenario>`: every [`Script`] is one.
pub trait Scenario {
    /// One sentence for the report.
    fn describe(&self) -> String;
    /// Variables set on top of the template's for the bench.
    fn env_overrides(&self) -> Vec<(String, String)>;
    fn next_step(&mut self) -> StepFuture<'_>;
    /// Status and body of the function's answer (`ok` is false for an invocation error).
    fn answer(&self, ok: bool, body: &[u8]) -> Result<(u16, Json)>;
    /// The function's answer to the last step.
    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()>;
    /// Every how many steps the harness empties the tables (see [`Scenario::on_reset`]).
    fn reset_every(&self) -> Option<usize>;
    /// The tables were emptied: forget what was stored.
    fn on_reset(&mut self);
    /// AWS calls some kinds of request must make exactly; the run fails on any request
    /// that makes another number, and the report states the requirement.
    fn call_budgets(&self) -> Vec<CallBudget>;
}

/// The traffic of one function as a scenario writes it: the steps, what it checks in the
/// answers, and (with [`Script::RESET_EVERY`]) the cycle after which the harness empties
/// the tables; everything but the steps and the checks has a default.
pub trait Script {
    /// The routes the scenario sends requests to, which the template must declare (see
    /// [`require_routes`]): none unless a scenario says.
    const ROUTES: &'static [&'static str] = &[];
    /// Every how many steps the harness empties the tables (see [`Script::on_reset`]):
    /// never unless a scenario says.
    const RESET_EVERY: Option<usize> = None;
    /// One sentence for the report.
    fn describe(&self) -> String;
    /// Variables set on top of the template's for the bench: none unless a scenario says.
    fn env_overrides(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The next event, after putting what it needs into moto (outside the timing).
    fn next(&mut self) -> impl Future<Output = Result<Step>>;
    /// Status and body of the function's answer (`ok` is false for an invocation error):
    /// by default read as API Gateway reads an HTTP API integration's response.
    fn answer(&self, ok: bool, body: &[u8]) -> Result<(u16, Json)> {
        crate::measure::http_answer(ok, body)
    }
    /// The function's answer to the last step.
    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()>;
    /// The tables were emptied: forget what was stored.
    fn on_reset(&mut self) {}
    /// AWS calls some kinds of request must make exactly (see [`Scenario::call_budgets`]).
    fn call_budgets(&self) -> Vec<CallBudget> {
        Vec::new()
    }
}

impl<S: Script> Scenario for S {
    fn describe(&self) -> String {
        Script::describe(self)
    }
    fn env_overrides(&self) -> Vec<(String, String)> {
        Script::env_overrides(self)
    }
    fn next_step(&mut self) -> StepFuture<'_> {
        Box::pin(Script::next(self))
    }
    fn answer(&self, ok: bool, body: &[u8]) -> Result<(u16, Json)> {
        Script::answer(self, ok, body)
    }
    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        Script::observe(self, status, body, calls)
    }
    fn reset_every(&self) -> Option<usize> {
        S::RESET_EVERY
    }
    fn on_reset(&mut self) {
        Script::on_reset(self)
    }
    fn call_budgets(&self) -> Vec<CallBudget> {
        Script::call_budgets(self)
    }
}

/// Where a scenario is in its cycle of `K`s: the step within the cycle (from the start
/// again after every reset), the serial of the request (never reset) and the last kind
/// handed out.
#[derive(Debug, Clone)]
pub struct Cursor<K> {
    pub step: usize,
    pub serial: u32,
    pub last: Option<K>,
}

impl<K> Default for Cursor<K> {
    fn default() -> Self {
        Self {
            step: 0,
            serial: 0,
            last: None,
        }
    }
}

impl<K: Copy> Cursor<K> {
    /// The next kind of `cycle` and the request's serial, counted.
    pub fn advance(&mut self, cycle: &[K]) -> (K, u32) {
        let kind = cycle[self.step % cycle.len()];
        self.step += 1;
        self.serial += 1;
        self.last = Some(kind);
        (kind, self.serial)
    }

    /// Back to the start of the cycle; the serials go on.
    pub fn restart(&mut self) {
        self.step = 0;
    }
}

/// Declares a scenario's routes once: a constant for each (`NAME = "GET /v1/...";`) and
/// `ROUTES`, all of them in the order declared, which the scenario requires the template
/// to declare ([`require_routes`]).
macro_rules! routes {
    ($($name:ident = $route:literal;)*) => {
        $(const $name: &str = $route;)*

        /// Every route the scenario sends requests to.
        const ROUTES: &[&str] = &[$($name),*];
    };
}
pub(crate) use routes;

/// Declares a scenario's kinds of request once, each with the case the report groups it
/// under and the answer it should get as the report writes it (`Kind => case, "404
/// bill_not_found";`, see [`Expect::parse`]): the `Kind` enum, `Kind::ALL` (every kind,
/// in the order declared) and `Kind::step`, which makes the event of a kind its [`Step`].
/// The scenario reads as a table of its requests; its code only builds the events.
macro_rules! requests {
    ($(#[$doc:meta])* enum Kind {
        $($(#[$variant_doc:meta])* $variant:ident => $case:expr, $expect:expr;)*
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Kind {
            $($(#[$variant_doc])* $variant,)*
        }

        impl Kind {
            /// Every kind, in the order declared.
            #[allow(dead_code)]
            const ALL: [Kind; [$(Kind::$variant),*].len()] = [$(Kind::$variant),*];

            /// The step of this kind for `event`: the kind's case and expected answer.
            fn step(self, event: serde_json::Value) -> anyhow::Result<$crate::scenario::Step> {
                let (case, expect) = match self {
                    $(Kind::$variant => ($case, $expect),)*
                };
                $crate::scenario::Step::expecting(case, event, expect)
            }
        }

        #[cfg(test)]
        #[test]
        fn every_kind_of_request_has_an_answer_the_harness_reads() {
            for kind in Kind::ALL {
                let step = kind.step(serde_json::Value::Null).unwrap();
                assert!(step.expect.is_some(), "{kind:?}");
            }
        }
    };
}
pub(crate) use requests;

/// The unit test of a scenario that lists its requests' answers by hand rather than with
/// [`requests!`] (its kinds carry data): every answer in `$answers` (`&'static str`s, as
/// [`Expect::parse`] reads them) reads, so that no run fails on a mistyped one.
macro_rules! answers_read {
    ($answers:expr) => {
        #[cfg(test)]
        #[test]
        fn every_expected_answer_reads() {
            for answer in $answers {
                $crate::scenario::Expect::parse(answer).unwrap();
            }
        }
    };
}
pub(crate) use answers_read;

/// A requirement on one kind of request: exactly `calls` AWS calls whose operation starts
/// with `service` (`dynamodb.`).
#[derive(Debug, Clone)]
pub struct CallBudget {
    /// The step's case.
    pub case: String,
    pub service: &'static str,
    pub calls: usize,
    /// Where the requirement comes from, for the report.
    pub why: &'static str,
}

/// A measurement beside the warm run: a fresh process of the function with other
/// settings (the scenario's [`Scenario::env_overrides`]), sent `batches` events after one
/// that warms it up, each carrying `items` units of work (SQS messages).
pub struct ThroughputPlan {
    /// `VERIFICATION_CONCURRENCY=10`.
    pub label: String,
    pub scenario: Box<dyn Scenario>,
    pub batches: usize,
    pub items: usize,
}

/// The throughput measurements of a function, if it has any.
pub fn throughput_for(spec: &FunctionSpec, moto: &Clients) -> Result<Vec<ThroughputPlan>> {
    Ok(match spec.binary.as_str() {
        "verify-documents" => crate::portal::verification::throughput_plans(spec, moto)?,
        _ => Vec::new(),
    })
}

/// The scenario written for a function, or generic traffic to its routes, or none.
/// `moto` reaches moto directly, for what scenarios prepare outside the measured traffic.
pub fn for_function(spec: &FunctionSpec, moto: &Clients) -> Result<Option<Box<dyn Scenario>>> {
    use crate::identity::{accounts, authorizer, recovery, sessions};
    use crate::portal::{
        autopays, bills, charges, confirmation, notices, pay, profile, verification,
    };
    match spec.binary.as_str() {
        "codes" => routed(spec, Codes::new()),
        "accounts" => routed(spec, accounts::Accounts::new(spec, moto)?),
        "sessions" => routed(spec, sessions::Sessions::new(spec, moto)?),
        "recovery" => routed(spec, recovery::Recovery::new(spec, moto)?),
        "authorizer" => routed(spec, authorizer::Authorizer::new(spec, moto)?),
        "profile" => routed(spec, profile::ProfileScenario::new(spec, moto)?),
        "verify-documents" => routed(spec, verification::Verification::warm(spec, moto)?),
        "confirmation" => routed(spec, confirmation::ConfirmationScenario::new(spec, moto)?),
        "charges" => routed(spec, charges::Charges::new(spec, moto)?),
        "bills" => routed(spec, bills::Bills::new(spec, moto)?),
        "payment-notices" => routed(spec, notices::payment_notices(spec, moto)?),
        "bill-notices" => routed(spec, notices::bill_notices(spec, moto)?),
        "pay" => routed(spec, pay::Pay::new(spec, moto)?),
        "autopays" => routed(spec, autopays::Autopays::new(spec, moto)?),
        _ if !spec.routes.is_empty() => Ok(Some(Box::new(Generic::new(spec)))),
        _ => Ok(None),
    }
}

/// `scenario`, once the template declares every route it sends requests to: one check for
/// every scenario, before the first of its requests.
fn routed<S: Script + 'static>(
    spec: &FunctionSpec,
    scenario: S,
) -> Result<Option<Box<dyn Scenario>>> {
    require_routes(spec, S::ROUTES)?;
    Ok(Some(Box::new(scenario)))
}

/// The answer of a function no API Gateway stands before (a queue's consumer): 200 and
/// what it returned, or 500 and the error for an invocation error.
pub fn direct_answer(binary: &str, ok: bool, body: &[u8]) -> Result<(u16, Json)> {
    let result = json_answer(binary, body)?;
    Ok(if ok { (200, result) } else { (500, result) })
}

/// What the function answered, which must be JSON.
pub fn json_answer(binary: &str, body: &[u8]) -> Result<Json> {
    serde_json::from_slice(body).with_context(|| {
        format!(
            "{binary} answered something that is not JSON: {}",
            String::from_utf8_lossy(body)
        )
    })
}

/// `10, 3, 10`: batch sizes for a report's sentence.
pub fn sizes(sizes: &[usize]) -> String {
    crate::stats::comma_list(sizes.iter().map(usize::to_string))
}

/// Fails when the template no longer declares a route a scenario sends requests to.
pub fn require_routes(spec: &FunctionSpec, routes: &[&str]) -> Result<()> {
    for route in routes {
        if !spec.routes.iter().any(|r| r == route) {
            bail!(
                "{}: the template no longer declares the route `{route}`; update the {} scenario in bench/src/",
                spec.logical_id,
                spec.binary
            );
        }
    }
    Ok(())
}

/// The user agent of every request unless a scenario names another device.
pub const USER_AGENT: &str = "Mozilla/5.0 (Linux; Android 14) uslugi-bench";

/// Source addresses rotating over 508 documentation addresses, one per request serial.
pub fn source_ip(serial: u32) -> String {
    if serial.is_multiple_of(2) {
        format!("203.0.113.{}", serial / 2 % 254 + 1)
    } else {
        format!("198.51.100.{}", serial / 2 % 254 + 1)
    }
}

/// An API Gateway HTTP API payload-format-2.0 event for `route_key`.
pub fn http_api_event(
    route_key: &str,
    path_params: &[(&str, &str)],
    body: Option<&str>,
    source_ip: &str,
) -> Json {
    let (method, template) = route_key.split_once(' ').unwrap_or(("GET", "/"));
    let mut path = template.to_string();
    for (name, value) in path_params {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    let request_id = crate::system::uuid();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let user_agent = USER_AGENT;
    let mut headers = json!({
        "accept": "application/json",
        "host": "api.uslugi.example",
        "user-agent": user_agent,
        "x-forwarded-for": source_ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-amzn-trace-id": format!("Root=1-{:08x}-{}", now_ms / 1000, &request_id.replace('-', "")[..24]),
    });
    if let Some(b) = body {
        headers["content-type"] = json!("application/json");
        headers["content-length"] = json!(b.len().to_string());
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "bench",
            "domainName": "api.uslugi.example",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": user_agent,
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2025:00:00:00 +0000",
            "timeEpoch": now_ms,
        },
        "isBase64Encoded": false,
    });
    if !path_params.is_empty() {
        let params: serde_json::Map<String, Json> = path_params
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        event["pathParameters"] = Json::Object(params);
    }
    if let Some(b) = body {
        event["body"] = json!(b);
    }
    event
}

/// The event as the device named by `user_agent` sends it.
pub fn with_user_agent(mut event: Json, user_agent: &str) -> Json {
    event["headers"]["user-agent"] = json!(user_agent);
    event["requestContext"]["http"]["userAgent"] = json!(user_agent);
    event
}

/// The event of a citizen's private route as API Gateway passes it on once the session
/// authorizer let it through: the bearer token among the headers and the context the
/// authorizer answers for a session under `requestContext.authorizer.lambda`, as the local
/// gateway (infra/local) builds it.
pub fn authorized(mut event: Json, account_id: &str, session_id: &str, token: &str) -> Json {
    event["headers"]["authorization"] = json!(format!("Bearer {token}"));
    event["requestContext"]["authorizer"] = json!({
        "lambda": {"account_id": account_id, "session_id": session_id, "role": "citizen"},
    });
    event
}

/// The event of an operator's route once the authorizer recognised the operator's key.
pub fn as_operator(mut event: Json, operator_id: &str, key: &str) -> Json {
    event["headers"]["authorization"] = json!(format!("Bearer {key}"));
    event["requestContext"]["authorizer"] = json!({
        "lambda": {"operator_id": operator_id, "role": "operator"},
    });
    event
}

/// The event of a biller's route once the authorizer recognised the biller's key.
pub fn as_biller(mut event: Json, biller_id: &str, key: &str) -> Json {
    event["headers"]["authorization"] = json!(format!("Bearer {key}"));
    event["requestContext"]["authorizer"] = json!({
        "lambda": {"biller_id": biller_id, "role": "biller"},
    });
    event
}

/// The event with a query string, as API Gateway passes one: raw and parsed.
pub fn with_query(mut event: Json, query: &[(&str, &str)]) -> Json {
    let raw: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    let params: serde_json::Map<String, Json> = query
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    event["rawQueryString"] = json!(raw.join("&"));
    event["queryStringParameters"] = Json::Object(params);
    event
}

/// Percent-encoding of a query component: unreserved characters as they are.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first run of exactly six digits in a message: the confirmation code.
pub fn six_digit_code(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(chars[start..i].iter().collect());
            }
        } else {
            i += 1;
        }
    }
    None
}

// ------------------------------------------------------------------ codes

routes! {
    SEND = "POST /v1/codes";
    VERIFY = "POST /v1/codes/{id}/verify";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodesStep {
    SendSms,
    SendEmail,
    VerifyRight,
    VerifyWrong,
    ResendTooEarly,
    InvalidDestination,
    UnknownCode,
    MalformedJson,
}

/// One cycle of 20 requests: 9 codes sent (6 SMS, 3 e-mail), 6 verified with the right
/// code, and one each of a wrong code, a resend inside the resend interval, a landline
/// number, an unknown code id and a body that is not JSON.
const CYCLE: [CodesStep; 20] = {
    use CodesStep::*;
    [
        SendSms,
        SendEmail,
        SendSms,
        VerifyRight,
        SendSms,
        VerifyWrong,
        SendEmail,
        VerifyRight,
        ResendTooEarly,
        SendSms,
        VerifyRight,
        InvalidDestination,
        SendSms,
        VerifyRight,
        UnknownCode,
        SendEmail,
        VerifyRight,
        MalformedJson,
        SendSms,
        VerifyRight,
    ]
};

struct Codes {
    at: Cursor<CodesStep>,
    last_phone: Option<String>,
    /// Codes sent and not yet verified: (id, code), oldest first.
    pending: VecDeque<(String, String)>,
}

impl Codes {
    fn new() -> Self {
        Self {
            at: Cursor::default(),
            last_phone: None,
            pending: VecDeque::new(),
        }
    }

    fn source_ip(&self) -> String {
        source_ip(self.at.serial)
    }

    fn phone(&self) -> String {
        let n = 310_000_000 + self.at.serial;
        // Citizens type numbers in every form; the function normalises them.
        if n.is_multiple_of(2) {
            format!("+79{n:09}")
        } else {
            let d = format!("{n:09}");
            format!("8 (9{}) {}-{}-{}", &d[..2], &d[2..5], &d[5..7], &d[7..])
        }
    }

    fn step(&mut self) -> Result<Step> {
        use CodesStep::*;
        let (mut kind, serial) = self.at.advance(&CYCLE);
        if matches!(kind, VerifyRight | VerifyWrong) && self.pending.is_empty() {
            kind = SendSms;
        }
        if kind == ResendTooEarly && self.last_phone.is_none() {
            kind = SendSms;
        }
        self.at.last = Some(kind);
        let (case, event, expected) = match kind {
            SendSms => {
                let phone = self.phone();
                self.last_phone = Some(phone.clone());
                (
                    "send code (sms)",
                    self.send("sms", &phone),
                    expect(202, None),
                )
            }
            SendEmail => {
                let email = format!("citizen{serial}@mail.example");
                (
                    "send code (email)",
                    self.send("email", &email),
                    expect(202, None),
                )
            }
            VerifyRight => {
                let (id, code) = self.pending.pop_front().context("no code to verify")?;
                (
                    "verify code: right code",
                    self.verify(&id, &code),
                    expect(200, None),
                )
            }
            VerifyWrong => {
                let (id, code) = self.pending.back().cloned().context("no code to verify")?;
                let wrong = format!("{:06}", (code.parse::<u32>().unwrap_or(0) + 1) % 1_000_000);
                (
                    "verify code: wrong code",
                    self.verify(&id, &wrong),
                    expect(422, Some("code_mismatch")),
                )
            }
            ResendTooEarly => {
                let phone = self.last_phone.clone().unwrap_or_default();
                (
                    "send code: resend too early",
                    self.send("sms", &phone),
                    expect(429, Some("code_resend_too_early")),
                )
            }
            InvalidDestination => (
                "send code: landline number",
                self.send("sms", "+7 495 123-45-67"),
                expect_invalid("not_mobile_phone"),
            ),
            UnknownCode => (
                "verify code: unknown id",
                self.verify(&crate::system::uuid(), "123456"),
                expect(404, Some("code_not_found")),
            ),
            MalformedJson => (
                "send code: body not JSON",
                http_api_event(SEND, &[], Some("{\"channel\": \"sms\","), &self.source_ip()),
                expect(400, Some("invalid_json")),
            ),
        };
        Ok(Step::request(case, event, expected))
    }

    fn send(&self, channel: &str, destination: &str) -> Json {
        let body =
            json!({"channel": channel, "destination": destination, "purpose": "registration"});
        http_api_event(SEND, &[], Some(&body.to_string()), &self.source_ip())
    }

    fn verify(&self, id: &str, code: &str) -> Json {
        let body = json!({ "code": code });
        http_api_event(
            VERIFY,
            &[("id", id)],
            Some(&body.to_string()),
            &self.source_ip(),
        )
    }
}

pub fn expect(status: u16, problem: Option<&'static str>) -> Option<Expect> {
    Some(Expect {
        status,
        problem,
        field: None,
    })
}

/// A 422 whose field errors include `field`.
pub fn expect_invalid(field: &'static str) -> Option<Expect> {
    Some(Expect {
        status: 422,
        problem: Some("validation_failed"),
        field: Some(field),
    })
}

impl Script for Codes {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 20 requests: 6 SMS and 3 e-mail codes sent to fresh \
         destinations, 6 codes verified with the code read from the SMS/e-mail that went \
         through the proxy, 1 wrong code (422), 1 resend inside the resend interval (429), \
         1 landline number (422), 1 unknown code id (404), 1 body that is not JSON (400); \
         source IPs rotate over 508 addresses"
            .into()
    }

    fn env_overrides(&self) -> Vec<(String, String)> {
        // The hourly limits would otherwise refuse most of a 1,000-request run; the resend
        // interval keeps its template value so that one refusal per cycle is real.
        crate::stack::variables(&[
            ("CODE_MAX_PER_DESTINATION_PER_HOUR", "1000"),
            ("CODE_MAX_PER_IP_PER_HOUR", "100000"),
        ])
    }

    async fn next(&mut self) -> Result<Step> {
        self.step()
    }

    fn on_reset(&mut self) {
        // Codes still pending are simply never entered, as happens with real citizens.
        self.pending.clear();
        self.last_phone = None;
        self.at.restart();
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        if !matches!(
            self.at.last,
            Some(CodesStep::SendSms | CodesStep::SendEmail)
        ) || status != 202
        {
            return Ok(());
        }
        let id = body["id"]
            .as_str()
            .context("a 202 from POST /v1/codes has no `id`")?
            .to_string();
        let code = calls
            .iter()
            .filter_map(|c| c.message.as_deref())
            .find_map(six_digit_code)
            .context("POST /v1/codes answered 202 but no SMS or e-mail with a code went out")?;
        self.pending.push_back((id, code));
        Ok(())
    }
}

// ------------------------------------------------------------------ generic

/// For a function the bench has no scenario for: each of its routes in turn with an
/// empty JSON object, answers not checked.
struct Generic {
    routes: Vec<String>,
    n: usize,
}

impl Generic {
    fn new(spec: &FunctionSpec) -> Self {
        Self {
            routes: spec.routes.clone(),
            n: 0,
        }
    }
}

impl Script for Generic {
    fn describe(&self) -> String {
        "generic traffic (no scenario written for this function yet): each route in turn \
         with `{}` as the body; answers are not checked"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        Ok(self.step())
    }

    fn observe(&mut self, _: u16, _: &Json, _: &[Call]) -> Result<()> {
        Ok(())
    }
}

impl Generic {
    fn step(&mut self) -> Step {
        let route = self.routes[self.n % self.routes.len()].clone();
        self.n += 1;
        let id = crate::system::uuid();
        let params: Vec<(&str, &str)> = route
            .split(['{', '}'])
            .skip(1)
            .step_by(2)
            .map(|name| (name, id.as_str()))
            .collect();
        let event = http_api_event(&route, &params, Some("{}"), "203.0.113.10");
        Step::request(&format!("{route} with `{{}}`"), event, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_answers_read_as_they_are_described() {
        for text in [
            "201",
            "404 bill_not_found",
            "422 validation_failed (address_length)",
        ] {
            assert_eq!(Expect::parse(text).unwrap().describe(), text);
        }
        let invalid = Expect::parse("422 validation_failed (uin_checksum)").unwrap();
        assert_eq!(invalid.problem, Some("validation_failed"));
        assert_eq!(invalid.field, Some("uin_checksum"));
        assert!(Expect::parse("created").is_err());
        assert!(Expect::parse("422 validation_failed (open").is_err());
    }

    #[test]
    fn finds_the_code_in_a_message() {
        assert_eq!(
            six_digit_code("Код подтверждения: 042917. Никому его не сообщайте.").unwrap(),
            "042917"
        );
        assert_eq!(
            six_digit_code("+79310000001 code 1234567 or 765432").unwrap(),
            "765432"
        );
        assert!(six_digit_code("no code 12345").is_none());
    }

    #[test]
    fn events_carry_route_path_and_source_ip() {
        let e = http_api_event(VERIFY, &[("id", "abc")], Some("{}"), "203.0.113.5");
        assert_eq!(e["routeKey"], VERIFY);
        assert_eq!(e["requestContext"]["routeKey"], VERIFY);
        assert_eq!(e["rawPath"], "/v1/codes/abc/verify");
        assert_eq!(e["pathParameters"]["id"], "abc");
        assert_eq!(e["requestContext"]["http"]["sourceIp"], "203.0.113.5");
        assert_eq!(e["requestContext"]["http"]["method"], "POST");
        assert_eq!(e["body"], "{}");
    }

    #[test]
    fn query_strings_are_encoded_and_parsed() {
        let e = with_query(
            http_api_event("GET /v1/fines", &[], None, "203.0.113.5"),
            &[("sts", "77 УО 123456"), ("limit", "2")],
        );
        assert_eq!(
            e["rawQueryString"],
            "sts=77%20%D0%A3%D0%9E%20123456&limit=2"
        );
        assert_eq!(e["queryStringParameters"]["sts"], "77 УО 123456");
    }

    #[test]
    fn the_cycle_verifies_no_more_codes_than_it_sends() {
        let sends = CYCLE
            .iter()
            .filter(|s| matches!(s, CodesStep::SendSms | CodesStep::SendEmail))
            .count();
        let verifies = CYCLE
            .iter()
            .filter(|s| matches!(s, CodesStep::VerifyRight))
            .count();
        assert_eq!(CYCLE.len(), 20);
        assert!(sends > verifies);
    }

    #[test]
    fn phones_are_valid_mobile_numbers_in_both_forms() {
        let mut c = Codes::new();
        let even = c.phone();
        c.at.serial = 1;
        let odd = c.phone();
        assert_eq!(even, "+79310000000");
        assert_eq!(odd, "8 (931) 000-00-01");
    }
}
