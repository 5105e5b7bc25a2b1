//! Fault injection: makes chosen calls to a dependency throttle, fail, time out or slow
//! down, so that tests and chaos runs show what a citizen sees when DynamoDB throttles,
//! SES hangs or the bank answers late. Off unless `FAULTS` is set, and refused in the
//! production stage.
//!
//! # The plan (`FAULTS`)
//!
//! Rules separated by `;` or new lines; blank lines and lines starting with `#` are
//! skipped. A rule is `dependency[:operation]=fault[@trigger]`:
//!
//! - `dependency`: `dynamodb`, `sqs`, `sesv2`, `sns` (the SDK calls), `registry`,
//!   `acquirer`, `billers` (the integrations).
//! - `operation`: the SDK operation (`TransactWriteItems`, `SendEmail`, `Publish`,
//!   `SendMessageBatch`, ...), or for an integration one of its calls (`registry`:
//!   `check`, `birth_record`; `acquirer`: `charge`, `confirm`, `status`, `cancel`,
//!   `save_card`, `refund`; `billers`: `deliver`). Left out or `*`: every call.
//! - `fault`: `throttle` (the service's own throttling answer), `error` (a 500),
//!   `timeout` (no answer: the request never arrives and the call hangs past the SDK's
//!   attempt timeout), `lost` (the request is carried out, its answer lost: a timeout
//!   after the fact), `slow:<N>ms` or `slow:<N>s` (answers late, then normally).
//! - `trigger`: a rate `0.2` (each matching call with that probability), `nth:3` (the
//!   third matching call only), `first:2` (the first two matching calls). Left out: every
//!   matching call.
//!
//! Rules are tried in order and the first that fires applies; every matching rule counts
//! the call. Counts are per process (one warm function instance) and start again when
//! the plan changes.
//!
//! `FAULTS=@/path/to/plan` reads the plan from that file instead, and reads it again when
//! it changes (its modification time or size, looked at no more than every
//! [`RELOAD_INTERVAL`]): tests set faults per scenario without restarting anything. A
//! missing or empty file means no faults; a file that stops parsing keeps the previous
//! plan (and says so at `ERROR`).
//!
//! Every injected fault is logged once at `WARN` with the message `fault injected` and
//! the fields `dependency`, `operation` and `fault`: nothing about the request itself.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{ConfigError, Env, PRODUCTION_STAGE};

/// The variable that holds the plan, or `@` and the path of a file that does.
pub const FAULTS: &str = "FAULTS";

/// How often a plan file is looked at for changes, at most.
pub const RELOAD_INTERVAL: Duration = Duration::from_millis(100);

/// How long an integration call with a `timeout` fault hangs before it fails: the SDK
/// calls' attempt timeout.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(2);

/// What a call is made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    DynamoDb,
    Sqs,
    Sesv2,
    Sns,
    Registry,
    Acquirer,
    Billers,
}

impl Dependency {
    const ALL: [Self; 7] = [
        Self::DynamoDb,
        Self::Sqs,
        Self::Sesv2,
        Self::Sns,
        Self::Registry,
        Self::Acquirer,
        Self::Billers,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::Sqs => "sqs",
            Self::Sesv2 => "sesv2",
            Self::Sns => "sns",
            Self::Registry => "registry",
            Self::Acquirer => "acquirer",
            Self::Billers => "billers",
        }
    }

    /// The calls of an integration; `None` for an SDK service, whose operations are
    /// many and named by the SDK.
    fn operations(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Registry => Some(&["check", "birth_record"]),
            Self::Acquirer => Some(&[
                "charge",
                "confirm",
                "status",
                "cancel",
                "save_card",
                "refund",
            ]),
            Self::Billers => Some(&["deliver"]),
            Self::DynamoDb | Self::Sqs | Self::Sesv2 | Self::Sns => None,
        }
    }
}

/// What an injected fault does to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The service's own throttling answer (DynamoDB `ProvisionedThroughputExceededException`,
    /// SES `TooManyRequestsException`, ...); an integration is unavailable.
    Throttle,
    /// A server error (500); an integration is unavailable.
    Error,
    /// No answer: the request is not carried out and the call hangs until it times out.
    Timeout,
    /// The request is carried out but its answer never comes back.
    Lost,
    /// The answer comes this much later, otherwise unchanged.
    Slow(Duration),
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Error => "error",
            Self::Timeout => "timeout",
            Self::Lost => "lost",
            Self::Slow(_) => "slow",
        }
    }
}

/// Which matching calls a rule hits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Trigger {
    Always,
    /// Each matching call with this probability (0 < p ≤ 1).
    Rate(f64),
    /// The nth matching call only, from 1.
    Nth(u64),
    /// The first n matching calls.
    First(u64),
}

#[derive(Debug)]
struct Rule {
    dependency: Dependency,
    /// `None`: every operation.
    operation: Option<String>,
    fault: Fault,
    trigger: Trigger,
    /// Matching calls seen so far.
    seen: AtomicU64,
}

impl Rule {
    fn matches(&self, dependency: Dependency, operation: &str) -> bool {
        self.dependency == dependency && self.operation.as_deref().is_none_or(|o| o == operation)
    }

    fn fires(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        match self.trigger {
            Trigger::Always => true,
            Trigger::Rate(p) => unit_random() < p,
            Trigger::Nth(k) => n == k,
            Trigger::First(k) => n <= k,
        }
    }
}

/// A uniform number in [0, 1); 1 (never below any rate) if the system RNG fails.
fn unit_random() -> f64 {
    getrandom::u64().map_or(1.0, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

/// A parsed plan: its rules in order.
#[derive(Debug, Default)]
pub struct Plan {
    rules: Vec<Rule>,
}

/// A rule that does not parse, with the rule's text and what is wrong with it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("rule `{rule}`: {reason}")]
pub struct PlanError {
    pub rule: String,
    pub reason: String,
}

impl Plan {
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let rules = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(|line| line.split(';'))
            .map(str::trim)
            .filter(|rule| !rule.is_empty())
            .map(|rule| {
                parse_rule(rule).map_err(|reason| PlanError {
                    rule: rule.to_string(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The fault for this call, if a rule fires.
    fn decide(&self, dependency: Dependency, operation: &str) -> Option<Fault> {
        let mut hit = None;
        for rule in self
            .rules
            .iter()
            .filter(|r| r.matches(dependency, operation))
        {
            // Every matching rule counts the call, so `nth:` means the same whatever
            // rules come before it.
            if rule.fires() && hit.is_none() {
                hit = Some(rule.fault);
            }
        }
        hit
    }
}

fn parse_rule(rule: &str) -> Result<Rule, String> {
    let (target, action) = rule
        .split_once('=')
        .ok_or("expected dependency[:operation]=fault[@trigger]")?;
    let (dependency, operation) = match target.trim().split_once(':') {
        Some((d, o)) => (d.trim(), Some(o.trim())),
        None => (target.trim(), None),
    };
    let dependency = Dependency::ALL
        .into_iter()
        .find(|d| d.name() == dependency)
        .ok_or_else(|| {
            format!(
                "unknown dependency `{dependency}` (one of {})",
                Dependency::ALL.map(Dependency::name).join(", ")
            )
        })?;
    let operation = match operation {
        None | Some("*") => None,
        Some("") => return Err("empty operation (leave it out, or `*`, for every call)".into()),
        Some(op) => {
            match dependency.operations() {
                Some(known) if !known.contains(&op) => {
                    return Err(format!(
                        "{} has no call `{op}` (one of {})",
                        dependency.name(),
                        known.join(", ")
                    ))
                }
                _ if !op.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    return Err(format!("operation `{op}` is no SDK operation name"))
                }
                _ => {}
            }
            Some(op.to_string())
        }
    };
    let (fault, trigger) = match action.split_once('@') {
        Some((f, t)) => (f.trim(), Some(t.trim())),
        None => (action.trim(), None),
    };
    Ok(Rule {
        dependency,
        operation,
        fault: parse_fault(fault)?,
        trigger: trigger.map_or(Ok(Trigger::Always), parse_trigger)?,
        seen: AtomicU64::new(0),
    })
}

fn parse_fault(fault: &str) -> Result<Fault, String> {
    match fault {
        "throttle" => Ok(Fault::Throttle),
        "error" => Ok(Fault::Error),
        "timeout" => Ok(Fault::Timeout),
        "lost" => Ok(Fault::Lost),
        _ => {
            let delay = fault.strip_prefix("slow:").ok_or_else(|| {
                format!("unknown fault `{fault}` (throttle, error, timeout, lost or slow:<N>ms)")
            })?;
            let (digits, unit) = if let Some(ms) = delay.strip_suffix("ms") {
                (ms, Duration::from_millis as fn(u64) -> Duration)
            } else if let Some(s) = delay.strip_suffix('s') {
                (s, Duration::from_secs as fn(u64) -> Duration)
            } else {
                return Err(format!("delay `{delay}` needs a unit, ms or s"));
            };
            let n: u64 = digits
                .trim()
                .parse()
                .map_err(|_| format!("delay `{delay}` is not a whole number"))?;
            Ok(Fault::Slow(unit(n)))
        }
    }
}

fn parse_trigger(trigger: &str) -> Result<Trigger, String> {
    let count = |n: &str| -> Result<u64, String> {
        n.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("`{n}` is no count from 1"))
    };
    if let Some(n) = trigger.strip_prefix("nth:") {
        return Ok(Trigger::Nth(count(n)?));
    }
    if let Some(n) = trigger.strip_prefix("first:") {
        return Ok(Trigger::First(count(n)?));
    }
    match trigger.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 1.0 => Ok(Trigger::Rate(p)),
        _ => Err(format!(
            "unknown trigger `{trigger}` (a rate in (0, 1], nth:<N> or first:<N>)"
        )),
    }
}

/// Where the plan comes from.
#[derive(Debug)]
enum Source {
    Fixed(Plan),
    File(PlanFile),
}

#[derive(Debug)]
struct PlanFile {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    checked: Instant,
    /// Modification time and size of what `plan` was read from; `None`: no file.
    stamp: Option<(SystemTime, u64)>,
    plan: Arc<Plan>,
}

fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl PlanFile {
    fn open(path: PathBuf) -> Result<Self, String> {
        let stamp = stamp(&path);
        let plan = match stamp {
            None => Plan::default(),
            Some(_) => {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("plan file {}: {e}", path.display()))?;
                Plan::parse(&text).map_err(|e| format!("plan file {}: {e}", path.display()))?
            }
        };
        Ok(Self {
            path,
            state: Mutex::new(Loaded {
                checked: Instant::now(),
                stamp,
                plan: Arc::new(plan),
            }),
        })
    }

    fn current(&self) -> Arc<Plan> {
        let Ok(mut loaded) = self.state.lock() else {
            return Arc::new(Plan::default());
        };
        if loaded.checked.elapsed() >= RELOAD_INTERVAL {
            loaded.checked = Instant::now();
            let now = stamp(&self.path);
            if now != loaded.stamp {
                loaded.stamp = now;
                match now.map(|_| std::fs::read_to_string(&self.path)) {
                    None => loaded.plan = Arc::new(Plan::default()),
                    Some(Ok(text)) => match Plan::parse(&text) {
                        Ok(plan) => {
                            tracing::info!(rules = plan.rules.len(), "fault plan read");
                            loaded.plan = Arc::new(plan);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "fault plan refused; the previous plan stays")
                        }
                    },
                    Some(Err(e)) => {
                        tracing::error!(error = %e, "fault plan unreadable; the previous plan stays")
                    }
                }
            }
        }
        Arc::clone(&loaded.plan)
    }
}

/// The fault plan of a function, shared by all its adapters. Cloning is cheap; when off
/// (no `FAULTS`), asking costs one branch.
#[derive(Debug, Clone, Default)]
pub struct Faults(Option<Arc<Source>>);

impl Faults {
    /// No faults.
    pub fn off() -> Self {
        Self(None)
    }

    /// The plan `FAULTS` sets. A plan that does not parse, a plan file that cannot be
    /// read, or any plan at all in stage `prod`, fails the cold start.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let Some(raw) = env.optional(FAULTS) else {
            return Ok(Self::off());
        };
        let stage = env.required("STAGE")?;
        if stage == PRODUCTION_STAGE {
            return Err(ConfigError::Invalid {
                name: FAULTS,
                reason: format!(
                    "fault injection is refused in stage {PRODUCTION_STAGE} (STAGE); unset it"
                ),
            });
        }
        let invalid = |reason: String| ConfigError::Invalid {
            name: FAULTS,
            reason,
        };
        let source = match raw.trim().strip_prefix('@') {
            Some(path) => {
                Source::File(PlanFile::open(PathBuf::from(path.trim())).map_err(invalid)?)
            }
            None => Source::Fixed(Plan::parse(&raw).map_err(|e| invalid(e.to_string()))?),
        };
        tracing::warn!(plan = %raw.trim(), "fault injection is on");
        Ok(Self(Some(Arc::new(source))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The fault to inject into this call, if any; logged once at `WARN`.
    pub fn hit(&self, dependency: Dependency, operation: &str) -> Option<Fault> {
        let source = self.0.as_deref()?;
        let fault = match source {
            Source::Fixed(plan) => plan.decide(dependency, operation),
            Source::File(file) => file.current().decide(dependency, operation),
        }?;
        tracing::warn!(
            dependency = dependency.name(),
            operation,
            fault = fault.name(),
            "fault injected"
        );
        Some(fault)
    }

    /// What an integration call does before (and after) it reaches the integration.
    pub async fn before_call(&self, dependency: Dependency, operation: &str) -> Step {
        match self.hit(dependency, operation) {
            None => Step::Call,
            Some(Fault::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                Step::Call
            }
            Some(Fault::Throttle | Fault::Error) => Step::Fail,
            Some(Fault::Timeout) => {
                tokio::time::sleep(INTEGRATION_TIMEOUT).await;
                Step::Fail
            }
            Some(Fault::Lost) => Step::CallThenFail,
        }
    }
}

/// What an integration wrapper does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Call,
    /// Fail without calling.
    Fail,
    /// Call, then fail as if the answer never came.
    CallThenFail,
}

/// An integration (registry, acquirer, billers' endpoint) with the plan's faults put in
/// front of it. It implements the integration's own trait, so a service cannot tell.
pub struct Faulty<T> {
    inner: T,
    faults: Faults,
}

impl<T> Faulty<T> {
    pub fn new(inner: T, faults: Faults) -> Self {
        Self { inner, faults }
    }

    pub fn inner(&self) -> &T {
        &self.inner
    }

    /// Runs `call` as the plan says for `dependency`/`operation`; `unavailable` is the
    /// integration's own failure.
    pub async fn run<R, E, Fut>(
        &self,
        dependency: Dependency,
        operation: &'static str,
        call: impl FnOnce() -> Fut,
        unavailable: impl FnOnce(String) -> E,
    ) -> Result<R, E>
    where
        Fut: std::future::Future<Output = Result<R, E>>,
    {
        let reason = |what: &str| format!("{}: {operation}: injected {what}", dependency.name());
        match self.faults.before_call(dependency, operation).await {
            Step::Call => call().await,
            Step::Fail => Err(unavailable(reason("failure"))),
            Step::CallThenFail => {
                // Whatever the integration answered is lost on the way back.
                let _ = call().await;
                Err(unavailable(reason("lost answer")))
            }
        }
    }
}

#[cfg(test)]
mod tests;

// ------------------------------------------------------------------ the integrations

mod integrations {
    use super::{Dependency, Faulty};
    use crate::services::payments::{
        BillerEndpoint, GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway,
        PaymentNotice, RefundAnswer, RefundOrder, SavedCard,
    };
    use crate::services::profile::{
        BirthRecord, CivilRegistry, Registry, RegistryAnswer, RegistryRequest, RegistryUnavailable,
    };
    use crate::services::StoreError;

    /// The error an integration's calls fail with, and so its injected faults.
    trait Fault {
        const DEPENDENCY: Dependency;
        fn injected(reason: String) -> Self;
    }

    impl Fault for RegistryUnavailable {
        const DEPENDENCY: Dependency = Dependency::Registry;
        fn injected(reason: String) -> Self {
            RegistryUnavailable(reason)
        }
    }

    /// Every acquirer fault is an unknown outcome: a bank's throttling or 500 does not
    /// promise that nothing was charged either.
    impl Fault for GatewayError {
        const DEPENDENCY: Dependency = Dependency::Acquirer;
        fn injected(reason: String) -> Self {
            GatewayError::OutcomeUnknown(reason)
        }
    }

    impl<I> Faulty<I> {
        /// `call` to the integration whose error is `E`, as the plan says.
        async fn call<R, E: Fault, Fut>(
            &self,
            operation: &'static str,
            call: impl FnOnce() -> Fut,
        ) -> Result<R, E>
        where
            Fut: std::future::Future<Output = Result<R, E>>,
        {
            self.run(E::DEPENDENCY, operation, call, E::injected).await
        }
    }

    /// Implements integrations' traits for [`Faulty`], each method passing its call
    /// to the inner integration through [`Faulty::call`] under the method's name: one
    /// wrapper for every method, in trait impls a function cannot write.
    macro_rules! through_faults {
        ($($integration:ident {
            $(fn $op:ident(&self $(, $arg:ident: $ty:ty)*) -> $answer:ty;)*
        })*) => {$(
            impl<I: $integration + Sync> $integration for Faulty<I> {
                $(
                    async fn $op(&self $(, $arg: $ty)*) -> $answer {
                        self.call(stringify!($op), || self.inner.$op($($arg),*)).await
                    }
                )*
            }
        )*};
    }

    through_faults! {
        Registry {
            fn check(&self, request: &RegistryRequest, attempt: u32) -> Result<RegistryAnswer, RegistryUnavailable>;
        }
        CivilRegistry {
            fn birth_record(&self, certificate: &str, attempt: u32) -> Result<Option<BirthRecord>, RegistryUnavailable>;
        }
        PaymentGateway {
            fn charge(&self, order: &str, amount: u64, method: &GatewayMethod) -> Result<GatewayAnswer, GatewayError>;
            fn confirm(&self, order: &str) -> Result<GatewayAnswer, GatewayError>;
            fn status(&self, order: &str) -> Result<GatewayStatus, GatewayError>;
            fn cancel(&self, order: &str) -> Result<GatewayStatus, GatewayError>;
            fn save_card(&self, one_time_token: &str) -> Result<SavedCard, GatewayError>;
            fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError>;
        }
    }

    impl<B: BillerEndpoint + Sync> BillerEndpoint for Faulty<B> {
        async fn deliver(&self, notice: &PaymentNotice, attempt: u32) -> Result<(), StoreError> {
            self.run(
                Dependency::Billers,
                "deliver",
                || self.inner.deliver(notice, attempt),
                StoreError::Unavailable,
            )
            .await
        }
    }
}
