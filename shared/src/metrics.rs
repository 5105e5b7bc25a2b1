//! Business metrics as CloudWatch embedded metric format (EMF) log lines.
//!
//! A metric is one JSON object on one stdout line whose top level holds an `_aws` block
//! (namespace, dimension set, metric name and unit) next to the dimension values and the
//! count. CloudWatch Logs turns every such line of a function's log group into a data
//! point of namespace [`NAMESPACE`]: no AWS call, no extra permission, nothing on the
//! request's path but one write to stdout.
//!
//! The line is written straight to stdout, not through the tracing subscriber: the
//! subscriber's JSON formatter would put it under `message` (or among the event's
//! fields) and CloudWatch only reads `_aws` at the top level. Lambda passes a custom
//! runtime's JSON lines through as they are under `LoggingConfig.LogFormat: JSON`.
//!
//! Every metric carries the `Stage` dimension, read from `STAGE` once per cold start
//! ([`init`]); a process-wide cell holds it, as the logging subscriber is process-wide,
//! so that services emit without a handle passed through every constructor. Dimension
//! values are `&'static str`: only a value written in the code can become one, never an
//! identifier, an address or anything a caller sent.
//!
//! Emission never fails a request: a write error is ignored (the log line is all there
//! is to lose).

use std::cell::RefCell;
use std::io::Write;
use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Env};

/// The CloudWatch namespace of every business metric.
pub const NAMESPACE: &str = "Uslugi";

/// `Stage` when `STAGE` is not set (the local stack, tests).
pub const DEFAULT_STAGE: &str = "local";

/// How a confirmation code travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeChannel {
    Sms,
    Email,
    /// A letter by registered post.
    Post,
}

impl CodeChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Post => "post",
        }
    }
}

impl From<crate::domain::Channel> for CodeChannel {
    fn from(channel: crate::domain::Channel) -> Self {
        match channel {
            crate::domain::Channel::Sms => Self::Sms,
            crate::domain::Channel::Email => Self::Email,
        }
    }
}

/// What became of one registry check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationOutcome {
    Verified,
    Rejected,
    /// The registry did not answer; the job comes back from the queue.
    Retry,
}

impl VerificationOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::Rejected => "rejected",
            Self::Retry => "retry",
        }
    }
}

/// What a payer's request (a payment, a 3-D Secure confirmation, an autopay) ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentOutcome {
    Succeeded,
    Declined,
    /// Waiting for the cardholder's 3-D Secure confirmation.
    Pending,
    /// The bank's answer was lost; the reconciliation settles the payment later.
    Failed,
}

impl PaymentOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }
}

/// What the reconciliation learnt of one open payment from the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileOutcome {
    /// The bank charged it: the payment succeeded.
    Settled,
    Declined,
    /// No final answer yet (3-D Secure still open, or the bank not reachable).
    StillPending,
}

impl ReconcileOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Settled => "settled",
            Self::Declined => "declined",
            Self::StillPending => "still_pending",
        }
    }
}

/// A scheduled job whose successful runs are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    ReconcilePayments,
    RunAutopays,
    SweepVerifications,
    DocumentReminders,
}

impl Job {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReconcilePayments => "reconcile-payments",
            Self::RunAutopays => "run-autopays",
            Self::SweepVerifications => "sweep-verifications",
            Self::DocumentReminders => "document-reminders",
        }
    }
}

/// What a notice was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    NewBill,
    Receipt,
    Verification,
    Autopay,
    /// A paid bill's notice to its biller.
    Biller,
    /// A security alert: new device, locked login, changed password or contact, …
    Security,
    /// A document expires or must be replaced soon.
    DocumentReminder,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewBill => "new_bill",
            Self::Receipt => "receipt",
            Self::Verification => "verification",
            Self::Autopay => "autopay",
            Self::Biller => "biller",
            Self::Security => "security",
            Self::DocumentReminder => "document_reminder",
        }
    }
}

/// How a notice travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeChannel {
    Sms,
    Email,
    /// The biller's endpoint.
    Biller,
}

impl NoticeChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::Biller => "biller",
        }
    }
}

/// What a biller's write did to a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeOutcome {
    Created,
    Updated,
    Unchanged,
    Cancelled,
}

impl ChargeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Unchanged => "unchanged",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One count of one business metric, with its dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    CodesSent {
        channel: CodeChannel,
    },
    LoginsFailed,
    LoginsThrottled,
    Verifications {
        /// The registry's short name ([`crate::services::profile::Check::registry`]).
        registry: &'static str,
        outcome: VerificationOutcome,
    },
    Payments {
        /// [`crate::services::payments::Payment::metric_method`].
        method: &'static str,
        outcome: PaymentOutcome,
    },
    Reconciliations {
        outcome: ReconcileOutcome,
    },
    ScheduledRunsCompleted {
        job: Job,
    },
    NoticesSent {
        kind: NoticeKind,
        channel: NoticeChannel,
    },
    ChargesWritten {
        outcome: ChargeOutcome,
    },
    /// A 5xx answer of an API function; dimensions `FunctionName` and `Version` come
    /// from the Lambda environment.
    ServerErrors,
}

impl Metric {
    pub fn name(&self) -> &'static str {
        match self {
            Self::CodesSent { .. } => "CodesSent",
            Self::LoginsFailed => "LoginsFailed",
            Self::LoginsThrottled => "LoginsThrottled",
            Self::Verifications { .. } => "Verifications",
            Self::Payments { .. } => "Payments",
            Self::Reconciliations { .. } => "Reconciliations",
            Self::ScheduledRunsCompleted { .. } => "ScheduledRunsCompleted",
            Self::NoticesSent { .. } => "NoticesSent",
            Self::ChargesWritten { .. } => "ChargesWritten",
            Self::ServerErrors => "ServerErrors",
        }
    }

    /// The dimensions besides `Stage`, in the order of the dimension set.
    fn dimensions<'a>(&self, context: &'a Context) -> Vec<(&'static str, &'a str)> {
        match *self {
            Self::CodesSent { channel } => vec![("Channel", channel.as_str())],
            Self::LoginsFailed | Self::LoginsThrottled => Vec::new(),
            Self::Verifications { registry, outcome } => {
                vec![("Registry", registry), ("Outcome", outcome.as_str())]
            }
            Self::Payments { method, outcome } => {
                vec![("Method", method), ("Outcome", outcome.as_str())]
            }
            Self::Reconciliations { outcome } => vec![("Outcome", outcome.as_str())],
            Self::ScheduledRunsCompleted { job } => vec![("Job", job.as_str())],
            Self::NoticesSent { kind, channel } => {
                vec![("Kind", kind.as_str()), ("Channel", channel.as_str())]
            }
            Self::ChargesWritten { outcome } => vec![("Outcome", outcome.as_str())],
            Self::ServerErrors => vec![
                ("FunctionName", context.function_name.as_str()),
                ("Version", context.function_version.as_str()),
            ],
        }
    }
}

/// What every line of this process carries, read once per cold start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub stage: String,
    pub function_name: String,
    pub function_version: String,
}

impl Context {
    /// `STAGE` (default [`DEFAULT_STAGE`]); the function's name and version as Lambda
    /// sets them (`local` and `$LATEST` outside Lambda).
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let stage = env
            .optional("STAGE")
            .unwrap_or_else(|| DEFAULT_STAGE.to_string());
        // The template's own pattern for a stage; anything else is a deployment mistake
        // that would scatter the metrics over stray dimension values.
        if stage.len() > 64
            || !stage
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(ConfigError::Invalid {
                name: "STAGE",
                reason: "only a-z, 0-9 and '-', at most 64 characters".into(),
            });
        }
        Ok(Self {
            stage,
            function_name: env
                .optional("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| "local".to_string()),
            function_version: env
                .optional("AWS_LAMBDA_FUNCTION_VERSION")
                .unwrap_or_else(|| "$LATEST".to_string()),
        })
    }

    fn fallback() -> Self {
        Self {
            stage: DEFAULT_STAGE.to_string(),
            function_name: "local".to_string(),
            function_version: "$LATEST".to_string(),
        }
    }
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Reads the metrics' context from the environment and turns emission on. Call once at
/// cold start, after [`crate::logging::init`]; a bad `STAGE` fails the cold start naming
/// the variable.
pub fn init() -> Result<(), ConfigError> {
    let context = Context::from_env(&Env::process())?;
    // A second init (tests) keeps the first context.
    let _ = CONTEXT.set(context);
    Ok(())
}

/// The context of a captured line: the process's once [`init`] ran, else the defaults.
fn capture_context() -> Context {
    CONTEXT.get().cloned().unwrap_or_else(Context::fallback)
}

/// The EMF object of one count of `metric`, at `timestamp_ms` (Unix milliseconds).
pub fn line(metric: &Metric, context: &Context, timestamp_ms: u64) -> Value {
    let dimensions = metric.dimensions(context);
    let mut names = vec![Value::from("Stage")];
    names.extend(dimensions.iter().map(|(name, _)| Value::from(*name)));
    let mut object = Map::new();
    object.insert(
        "_aws".into(),
        serde_json::json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [names],
                "Metrics": [{"Name": metric.name(), "Unit": "Count"}],
            }],
        }),
    );
    object.insert("Stage".into(), context.stage.as_str().into());
    for (name, value) in dimensions {
        object.insert(name.into(), value.into());
    }
    object.insert(metric.name().into(), 1.into());
    Value::Object(object)
}

thread_local! {
    /// Lines captured on this thread instead of written, while a [`Capture`] lives.
    static CAPTURED: RefCell<Option<Vec<Value>>> = const { RefCell::new(None) };
}

/// Counts one `metric`: writes its EMF line to stdout (or to this thread's [`Capture`]).
/// A process that never ran [`init`] (the admin tool, unit tests) writes nothing: its
/// stdout is somebody's terminal, not a log group.
pub fn emit(metric: Metric) {
    let timestamp_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let captured = CAPTURED.with(|cell| match cell.borrow_mut().as_mut() {
        Some(lines) => {
            lines.push(line(&metric, &capture_context(), timestamp_ms));
            true
        }
        None => false,
    });
    let Some(context) = CONTEXT.get().filter(|_| !captured) else {
        return;
    };
    let mut text = line(&metric, context, timestamp_ms).to_string();
    text.push('\n');
    // One write of the whole line under the lock, so that no log line of another task
    // lands inside it; a failed write costs the data point, never the request.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Captures the metric lines this thread emits while it lives, instead of writing them:
/// how tests see what a flow counted. Tokio's test runtime runs a test's tasks on its
/// own thread, so a test sees its own lines only.
pub struct Capture {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Capture {
    pub fn start() -> Self {
        CAPTURED.with(|cell| *cell.borrow_mut() = Some(Vec::new()));
        Self {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Every line captured so far, as JSON.
    pub fn lines(&self) -> Vec<Value> {
        CAPTURED.with(|cell| cell.borrow().clone().unwrap_or_default())
    }

    /// The lines of metric `name`, each as its dimensions besides `Stage`
    /// (`[("Channel", "sms")]`), in the order of emission.
    pub fn counted(&self, name: &str) -> Vec<Vec<(String, String)>> {
        self.lines()
            .iter()
            .filter(|line| line.get(name).is_some())
            .map(|line| {
                line["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                    .as_array()
                    .map(|names| {
                        names
                            .iter()
                            .filter_map(Value::as_str)
                            .filter(|n| *n != "Stage")
                            .map(|n| {
                                (
                                    n.to_string(),
                                    line[n].as_str().unwrap_or_default().to_string(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        CAPTURED.with(|cell| *cell.borrow_mut() = None);
    }
}

/// `[("Channel", "sms")]` from `&[("Channel", "sms")]`, to compare with [`Capture::counted`].
pub fn dims(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            stage: "prod".into(),
            function_name: "uslugi-prod-codes".into(),
            function_version: "7".into(),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env(move |name: &str| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn a_line_is_an_emf_object_cloudwatch_reads() {
        let value = line(
            &Metric::Payments {
                method: "saved_card",
                outcome: PaymentOutcome::Succeeded,
            },
            &ctx(),
            1_764_000_000_123,
        );
        let text = value.to_string();
        assert!(!text.contains('\n'), "one line: {text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        let aws = &parsed["_aws"];
        assert_eq!(aws["Timestamp"], 1_764_000_000_123_u64);
        let directive = &aws["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Uslugi");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["Stage", "Method", "Outcome"]])
        );
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "Payments", "Unit": "Count"}])
        );
        // Every dimension named in the set, and the metric, are top-level members.
        assert_eq!(parsed["Stage"], "prod");
        assert_eq!(parsed["Method"], "saved_card");
        assert_eq!(parsed["Outcome"], "succeeded");
        assert_eq!(parsed["Payments"], 1);
        assert_eq!(parsed.as_object().unwrap().len(), 5);
    }

    #[test]
    fn dimension_sets_are_the_contracts() {
        let c = ctx();
        let set = |m: Metric| -> Vec<String> {
            line(&m, &c, 0)["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        let cases: Vec<(Metric, &[&str])> = vec![
            (
                Metric::CodesSent {
                    channel: CodeChannel::Post,
                },
                &["Stage", "Channel"],
            ),
            (Metric::LoginsFailed, &["Stage"]),
            (Metric::LoginsThrottled, &["Stage"]),
            (
                Metric::Verifications {
                    registry: "fns",
                    outcome: VerificationOutcome::Retry,
                },
                &["Stage", "Registry", "Outcome"],
            ),
            (
                Metric::Reconciliations {
                    outcome: ReconcileOutcome::StillPending,
                },
                &["Stage", "Outcome"],
            ),
            (
                Metric::ScheduledRunsCompleted {
                    job: Job::RunAutopays,
                },
                &["Stage", "Job"],
            ),
            (
                Metric::NoticesSent {
                    kind: NoticeKind::Biller,
                    channel: NoticeChannel::Biller,
                },
                &["Stage", "Kind", "Channel"],
            ),
            (
                Metric::ChargesWritten {
                    outcome: ChargeOutcome::Cancelled,
                },
                &["Stage", "Outcome"],
            ),
            (Metric::ServerErrors, &["Stage", "FunctionName", "Version"]),
        ];
        for (metric, expected) in cases {
            assert_eq!(set(metric), expected, "{}", metric.name());
        }
        let errors = line(&Metric::ServerErrors, &c, 0);
        assert_eq!(errors["FunctionName"], "uslugi-prod-codes");
        assert_eq!(errors["Version"], "7");
        assert_eq!(errors["ServerErrors"], 1);
    }

    #[test]
    fn values_are_the_contracts_spelling() {
        let spellings = [
            (CodeChannel::Sms.as_str(), "sms"),
            (CodeChannel::Email.as_str(), "email"),
            (CodeChannel::Post.as_str(), "post"),
            (PaymentOutcome::Succeeded.as_str(), "succeeded"),
            (PaymentOutcome::Declined.as_str(), "declined"),
            (PaymentOutcome::Pending.as_str(), "pending"),
            (PaymentOutcome::Failed.as_str(), "failed"),
            (ReconcileOutcome::Settled.as_str(), "settled"),
            (ReconcileOutcome::Declined.as_str(), "declined"),
            (ReconcileOutcome::StillPending.as_str(), "still_pending"),
            (Job::ReconcilePayments.as_str(), "reconcile-payments"),
            (Job::RunAutopays.as_str(), "run-autopays"),
            (NoticeKind::NewBill.as_str(), "new_bill"),
            (NoticeKind::Receipt.as_str(), "receipt"),
            (NoticeKind::Verification.as_str(), "verification"),
            (NoticeKind::Autopay.as_str(), "autopay"),
            (NoticeKind::Biller.as_str(), "biller"),
            (NoticeKind::Security.as_str(), "security"),
            (ChargeOutcome::Created.as_str(), "created"),
            (ChargeOutcome::Updated.as_str(), "updated"),
            (ChargeOutcome::Unchanged.as_str(), "unchanged"),
            (ChargeOutcome::Cancelled.as_str(), "cancelled"),
            (VerificationOutcome::Verified.as_str(), "verified"),
            (VerificationOutcome::Rejected.as_str(), "rejected"),
            (VerificationOutcome::Retry.as_str(), "retry"),
        ];
        for (spelled, contract) in spellings {
            assert_eq!(spelled, contract);
        }
    }

    #[test]
    fn context_reads_stage_and_lambdas_names_with_defaults() {
        let c = Context::from_env(&env(&[])).unwrap();
        assert_eq!(c, Context::fallback());
        let c = Context::from_env(&env(&[
            ("STAGE", "prod"),
            ("AWS_LAMBDA_FUNCTION_NAME", "uslugi-prod-pay"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "12"),
        ]))
        .unwrap();
        assert_eq!(c.stage, "prod");
        assert_eq!(c.function_name, "uslugi-prod-pay");
        assert_eq!(c.function_version, "12");
        let err = Context::from_env(&env(&[("STAGE", "Prod Stage")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("STAGE"), "{err}");
    }

    #[test]
    fn capture_takes_this_threads_lines_and_stops_when_dropped() {
        {
            let capture = Capture::start();
            emit(Metric::CodesSent {
                channel: CodeChannel::Sms,
            });
            emit(Metric::LoginsFailed);
            assert_eq!(capture.lines().len(), 2);
            assert_eq!(capture.counted("CodesSent"), [dims(&[("Channel", "sms")])]);
            assert_eq!(capture.counted("LoginsFailed"), [dims(&[])]);
            assert!(capture.counted("Payments").is_empty());
            assert_eq!(
                capture.lines()[0]["Stage"],
                capture_context().stage.as_str()
            );
        }
        assert!(CAPTURED.with(|cell| cell.borrow().is_none()));
    }
}
