//! What the local stack runs, derived from the template: resource names,
//! the resources to create in moto, the functions with their environments and
//! event sources, and the HTTP APIs with their authorizers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::intrinsics::{
    scalar_text, Physical, Resolver, Unresolved, ACCOUNT_ID, PARTITION, REGION,
};
use crate::template::Resource;

pub const TABLE_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::Serverless::SimpleTable",
];
pub const QUEUE_TYPE: &str = "AWS::SQS::Queue";
pub const EMAIL_IDENTITY_TYPE: &str = "AWS::SES::EmailIdentity";
pub const SECRET_TYPE: &str = "AWS::SecretsManager::Secret";
pub const FUNCTION_TYPE: &str = "AWS::Serverless::Function";
pub const HTTP_API_TYPE: &str = "AWS::Serverless::HttpApi";
/// The API SAM creates for `HttpApi` events that name no `ApiId`.
pub const IMPLICIT_HTTP_API: &str = "ServerlessHttpApi";

pub fn table_arn(name: &str) -> String {
    format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}")
}

pub fn queue_arn(name: &str) -> String {
    format!("arn:{PARTITION}:sqs:{REGION}:{ACCOUNT_ID}:{name}")
}

pub fn queue_url(moto_url: &str, name: &str) -> String {
    // moto answers CreateQueue with exactly this shape (host of the request,
    // then account and name); the real URL from CreateQueue replaces it anyway.
    format!("{}/{ACCOUNT_ID}/{name}", moto_url.trim_end_matches('/'))
}

pub fn function_arn(binary: &str) -> String {
    format!("arn:{PARTITION}:lambda:{REGION}:{ACCOUNT_ID}:function:{binary}")
}

/// Assigns `Ref`/`GetAtt` values to every resource type the local stack knows.
///
/// Names may depend on other names (a queue named after a table, say), so this
/// repeats until nothing changes; what is still unnamed then is a cycle.
pub fn assign_names(resolver: &mut Resolver<'_>, moto_url: &str) -> Result<()> {
    let template = resolver.template();
    let mut todo: Vec<&Resource> = Vec::new();
    for r in template.resources.values() {
        if resolver.physical(&r.logical_id).is_none()
            && crate::intrinsics::NAMED_TYPES.contains(&r.kind.as_str())
            && resolver.resource_enabled(&r.logical_id)?
        {
            todo.push(r);
        }
    }
    in_passes(
        todo,
        |r| &r.logical_id,
        |r| match physical_for(resolver, r, moto_url) {
            Ok(p) => {
                resolver.set_physical(&r.logical_id, p);
                Ok(None)
            }
            Err(Unresolved::Pending(_)) => Ok(Some(r)),
            Err(Unresolved::Failed(e)) => Err(e),
        },
        |ids| format!("the names of {ids} refer to each other"),
    )
}

/// Takes `pending` in passes until every item is done: `step` finishes an item (`None`)
/// or hands it back to wait for others (`Some`). A pass that finishes none leaves items
/// that wait on each other: refused with `cycle` of their logical ids. Names that refer
/// to names, and queues behind their dead-letter queues, are ordered so.
fn in_passes<T>(
    mut pending: Vec<T>,
    logical_id: impl Fn(&T) -> &str,
    mut step: impl FnMut(T) -> Result<Option<T>>,
    cycle: impl Fn(&str) -> String,
) -> Result<()> {
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for item in pending {
            waiting.extend(step(item)?);
        }
        if waiting.len() == before {
            let ids: Vec<&str> = waiting.iter().map(&logical_id).collect();
            return Err(Error::template(cycle(&ids.join(", "))));
        }
        pending = waiting;
    }
    Ok(())
}

fn name_or(
    resolver: &Resolver<'_>,
    r: &Resource,
    property: &str,
    fallback: String,
) -> std::result::Result<String, Unresolved> {
    match r.property(property) {
        None => Ok(fallback),
        Some(v) => {
            let at = r.at(property);
            let v = resolver.try_resolve(v, &at)?;
            scalar_text(&v).map_err(|m| Unresolved::Failed(Error::resolve(at, m)))
        }
    }
}

fn physical_for(
    resolver: &Resolver<'_>,
    r: &Resource,
    moto_url: &str,
) -> std::result::Result<Physical, Unresolved> {
    let mut attributes = BTreeMap::new();
    let ref_value = match r.kind.as_str() {
        k if TABLE_TYPES.contains(&k) => {
            let name = name_or(resolver, r, "TableName", r.logical_id.clone())?;
            attributes.insert("Arn".into(), Value::String(table_arn(&name)));
            name
        }
        QUEUE_TYPE => {
            let fifo = match r.property("FifoQueue") {
                Some(v) => {
                    let v = resolver.try_resolve(v, &r.at("FifoQueue"))?;
                    v == Value::Bool(true) || v == Value::String("true".into())
                }
                None => false,
            };
            // Queues without QueueName get a name from the logical id; FIFO
            // queue names must end in .fifo.
            let fallback = if fifo {
                format!("{}.fifo", r.logical_id)
            } else {
                r.logical_id.clone()
            };
            let name = name_or(resolver, r, "QueueName", fallback)?;
            let url = queue_url(moto_url, &name);
            attributes.insert("Arn".into(), Value::String(queue_arn(&name)));
            attributes.insert("QueueName".into(), Value::String(name));
            attributes.insert("QueueUrl".into(), Value::String(url.clone()));
            url
        }
        FUNCTION_TYPE => {
            let binary = function_binary(resolver, r).map_err(Unresolved::Failed)?;
            attributes.insert("Arn".into(), Value::String(function_arn(&binary)));
            binary
        }
        "AWS::SNS::Topic" => {
            let name = name_or(resolver, r, "TopicName", r.logical_id.clone())?;
            let arn = format!("arn:{PARTITION}:sns:{REGION}:{ACCOUNT_ID}:{name}");
            attributes.insert("TopicArn".into(), Value::String(arn.clone()));
            attributes.insert("TopicName".into(), Value::String(name));
            arn
        }
        "AWS::Logs::LogGroup" => {
            let name = name_or(resolver, r, "LogGroupName", r.logical_id.clone())?;
            attributes.insert(
                "Arn".into(),
                Value::String(format!(
                    "arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
                )),
            );
            name
        }
        EMAIL_IDENTITY_TYPE => name_or(resolver, r, "EmailIdentity", r.logical_id.clone())?,
        // Secrets are named when the resolver is built.
        _ => r.logical_id.clone(),
    };
    Ok(Physical {
        ref_value: Value::String(ref_value),
        attributes,
    })
}

/// `Metadata.BuildProperties.Binary`, else the package name of the crate at `CodeUri`.
fn function_binary(resolver: &Resolver<'_>, r: &Resource) -> Result<String> {
    if let Some(binary) = r
        .metadata
        .get("BuildProperties")
        .and_then(|b| b.get("Binary"))
    {
        return resolver.resolve_string(
            binary,
            &format!("Resources.{}.Metadata.BuildProperties.Binary", r.logical_id),
        );
    }
    let code_uri = match r.property("CodeUri") {
        Some(v) => resolver.resolve_string(v, &r.at("CodeUri"))?,
        None => {
            return Err(Error::template(format!(
                "{}: set Metadata.BuildProperties.Binary or CodeUri",
                r.logical_id
            )))
        }
    };
    let manifest = resolver.template().dir().join(&code_uri).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).map_err(|source| Error::Read {
        path: manifest.clone(),
        source,
    })?;
    let parsed: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::template(format!("{}: {}: {e}", r.logical_id, manifest.display())))?;
    parsed
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            Error::template(format!(
                "{}: {} has no [package] name; set Metadata.BuildProperties.Binary",
                r.logical_id,
                manifest.display()
            ))
        })
}

// ------------------------------------------------------------------ resources to create

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    pub kind: String,
    pub name: String,
    /// Resolved `Properties`.
    pub properties: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub name: String,
    pub arn: String,
    /// SQS attributes for CreateQueue, already as strings.
    pub attributes: BTreeMap<String, String>,
    /// ARN of the dead-letter queue from `RedrivePolicy`, to create it first.
    pub dead_letter_arn: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmailIdentitySpec {
    pub logical_id: String,
    pub identity: String,
}

/// A secret to create in moto, so that functions read it by the ARN `!Ref` gives them.
#[derive(Clone, PartialEq)]
pub struct SecretSpec {
    pub logical_id: String,
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for SecretSpec {
    // The value stays out of plans and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSpec")
            .field("logical_id", &self.logical_id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Infrastructure {
    pub tables: Vec<TableSpec>,
    /// In creation order: every dead-letter queue before the queues using it.
    pub queues: Vec<QueueSpec>,
    pub email_identities: Vec<EmailIdentitySpec>,
    pub secrets: Vec<SecretSpec>,
}

/// CloudFormation queue properties that map one-to-one onto SQS attributes.
const QUEUE_ATTRIBUTES: &[&str] = &[
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
];

pub fn infrastructure(resolver: &Resolver<'_>) -> Result<Infrastructure> {
    let template = resolver.template();
    let mut infra = Infrastructure::default();
    for r in template.resources.values() {
        if !resolver.resource_enabled(&r.logical_id)? {
            continue;
        }
        let name = || -> Result<String> {
            resolver
                .physical(&r.logical_id)
                .and_then(|p| p.ref_value.as_str().map(str::to_string))
                .ok_or_else(|| Error::template(format!("{} has no name", r.logical_id)))
        };
        match r.kind.as_str() {
            k if TABLE_TYPES.contains(&k) => {
                let properties = resolver.resolve(
                    &Value::Object(r.properties.clone()),
                    &format!("Resources.{}.Properties", r.logical_id),
                )?;
                infra.tables.push(TableSpec {
                    logical_id: r.logical_id.clone(),
                    kind: r.kind.clone(),
                    name: name()?,
                    properties,
                });
            }
            QUEUE_TYPE => {
                let physical = resolver.physical(&r.logical_id);
                let queue_name = physical
                    .and_then(|p| p.attributes.get("QueueName"))
                    .and_then(Value::as_str)
                    .unwrap_or(&r.logical_id)
                    .to_string();
                let mut attributes = BTreeMap::new();
                for key in QUEUE_ATTRIBUTES {
                    if let Some(v) = r.property(key) {
                        let at = r.at(key);
                        let v = resolver.resolve(v, &at)?;
                        if v.is_null() {
                            continue;
                        }
                        attributes.insert(
                            key.to_string(),
                            scalar_text(&v).map_err(|m| Error::resolve(at, m))?,
                        );
                    }
                }
                let mut dead_letter_arn = None;
                for key in ["RedrivePolicy", "RedriveAllowPolicy"] {
                    if let Some(v) = r.property(key) {
                        let at = r.at(key);
                        let v = resolver.resolve(v, &at)?;
                        // CloudFormation accepts the policy as an object or as a JSON string.
                        let policy: Value = match v {
                            Value::String(s) => serde_json::from_str(&s)
                                .map_err(|e| Error::resolve(&at, format!("not JSON: {e}")))?,
                            Value::Null => continue,
                            other => other,
                        };
                        if key == "RedrivePolicy" {
                            dead_letter_arn = policy
                                .get("deadLetterTargetArn")
                                .and_then(Value::as_str)
                                .map(str::to_string);
                        }
                        attributes.insert(key.to_string(), policy.to_string());
                    }
                }
                infra.queues.push(QueueSpec {
                    logical_id: r.logical_id.clone(),
                    arn: queue_arn(&queue_name),
                    name: queue_name,
                    attributes,
                    dead_letter_arn,
                });
            }
            EMAIL_IDENTITY_TYPE => infra.email_identities.push(EmailIdentitySpec {
                logical_id: r.logical_id.clone(),
                identity: name()?,
            }),
            SECRET_TYPE => {
                // A secret with neither SecretString nor GenerateSecretString has no value
                // to read, in AWS either; it is left out.
                if let Some(value) = resolver.secret_value(&r.logical_id) {
                    let name = resolver
                        .physical(&r.logical_id)
                        .and_then(|p| p.attributes.get("Name"))
                        .and_then(Value::as_str)
                        .unwrap_or(&r.logical_id)
                        .to_string();
                    infra.secrets.push(SecretSpec {
                        logical_id: r.logical_id.clone(),
                        name,
                        value: value.to_string(),
                    });
                }
            }
            _ => {}
        }
    }
    infra.queues = order_queues(std::mem::take(&mut infra.queues))?;
    Ok(infra)
}

/// Dead-letter queues first: moto refuses a RedrivePolicy naming a queue that
/// does not exist yet.
fn order_queues(pending: Vec<QueueSpec>) -> Result<Vec<QueueSpec>> {
    let known: Vec<String> = pending.iter().map(|q| q.arn.clone()).collect();
    let mut ordered: Vec<QueueSpec> = Vec::with_capacity(pending.len());
    in_passes(
        pending,
        |q| &q.logical_id,
        |q| {
            let ready = match &q.dead_letter_arn {
                None => true,
                // A dead-letter queue outside the template is left to moto to judge.
                Some(arn) if !known.contains(arn) => true,
                Some(arn) => ordered.iter().any(|o| &o.arn == arn),
            };
            if ready {
                ordered.push(q);
                Ok(None)
            } else {
                Ok(Some(q))
            }
        },
        |ids| format!("queues {ids} name each other as dead-letter queues"),
    )?;
    Ok(ordered)
}

// ------------------------------------------------------------------ functions

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAuth {
    /// The API's `DefaultAuthorizer`, if it has one.
    Default,
    /// `Auth.Authorizer: NONE`.
    None,
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpEvent {
    pub name: String,
    /// Logical id of the HttpApi (or [`IMPLICIT_HTTP_API`]).
    pub api: String,
    /// Upper-case method or `ANY`.
    pub method: String,
    /// `None` for the `$default` route.
    pub path: Option<String>,
    pub auth: RouteAuth,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqsEvent {
    pub name: String,
    pub queue_arn: String,
    pub batch_size: u32,
    pub batching_window_secs: u32,
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`: most batches Lambda runs at once for this
    /// source (2 to 1000, as AWS allows). The local poller runs one batch at a time,
    /// which is always within it.
    pub maximum_concurrency: Option<u32>,
}

/// SQS event sources' `MaximumConcurrency` bounds, as Lambda enforces them.
const MAXIMUM_CONCURRENCY: std::ops::RangeInclusive<u32> = 2..=1000;

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleEvent {
    pub name: String,
    /// `Schedule` or `ScheduleV2`.
    pub kind: String,
    pub expression: Option<String>,
    /// The `Input` the schedule sends instead of the default event, if set.
    pub input: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    /// Variables from the template (Globals, then the function's own), resolved.
    pub environment: BTreeMap<String, String>,
    /// Those of `environment` whose value comes from a dynamic reference
    /// (`{{resolve:...}}`), i.e. holds a secret.
    pub secret_variables: BTreeSet<String>,
    pub timeout_secs: u64,
    pub http_events: Vec<HttpEvent>,
    pub sqs_events: Vec<SqsEvent>,
    pub schedules: Vec<ScheduleEvent>,
}

/// Function property with SAM's Globals applied (the function's own value wins).
fn function_property(global: &Map<String, Value>, r: &Resource, key: &str) -> Option<Value> {
    r.property(key).or_else(|| global.get(key)).cloned()
}

/// A property of the function `logical_id` (e.g. `MemorySize`, `Architectures`),
/// with SAM's Globals applied and resolved; `None` when neither sets it.
pub fn function_setting(
    resolver: &Resolver<'_>,
    logical_id: &str,
    key: &str,
) -> Result<Option<Value>> {
    let template = resolver.template();
    let r = template
        .resources
        .get(logical_id)
        .filter(|r| r.kind == FUNCTION_TYPE)
        .ok_or_else(|| Error::UnknownFunction(logical_id.to_string()))?;
    function_property(&template.global("Function"), r, key)
        .map(|v| resolver.resolve(&v, &r.at(key)))
        .transpose()
}

pub fn functions(resolver: &Resolver<'_>) -> Result<Vec<FunctionSpec>> {
    let template = resolver.template();
    let global = template.global("Function");
    let mut out = Vec::new();
    for r in template.resources_of(FUNCTION_TYPE) {
        if !resolver.resource_enabled(&r.logical_id)? {
            continue;
        }
        let binary = resolver
            .physical(&r.logical_id)
            .and_then(|p| p.ref_value.as_str())
            .map(str::to_string)
            .ok_or_else(|| Error::template(format!("{} has no binary", r.logical_id)))?;

        let mut environment = BTreeMap::new();
        let mut secret_variables = BTreeSet::new();
        let sources = [
            (
                global.get("Environment").and_then(|e| e.get("Variables")),
                "Globals.Function.Environment.Variables".to_string(),
            ),
            (
                r.property("Environment").and_then(|e| e.get("Variables")),
                r.at("Environment.Variables"),
            ),
        ];
        for (vars, at) in sources {
            let Some(Value::Object(vars)) = vars else {
                continue;
            };
            for (key, value) in vars {
                let at = format!("{at}.{key}");
                // Globals are resolved per function: that is where their value is used.
                let at = if at.starts_with("Globals") {
                    format!("{at} (for {})", r.logical_id)
                } else {
                    at
                };
                let v = resolver.resolve(value, &at)?;
                if v.is_null() {
                    continue;
                }
                if value.to_string().contains("{{resolve:") {
                    secret_variables.insert(key.clone());
                } else {
                    secret_variables.remove(key);
                }
                environment.insert(
                    key.clone(),
                    scalar_text(&v).map_err(|m| Error::resolve(at, m))?,
                );
            }
        }

        let timeout_secs = match function_property(&global, r, "Timeout") {
            None => 3,
            Some(v) => resolver
                .resolve_string(&v, &r.at("Timeout"))?
                .parse()
                .map_err(|_| Error::resolve(r.at("Timeout"), "not a number of seconds"))?,
        };

        let mut spec = FunctionSpec {
            logical_id: r.logical_id.clone(),
            binary,
            environment,
            secret_variables,
            timeout_secs,
            http_events: vec![],
            sqs_events: vec![],
            schedules: vec![],
        };
        if let Some(Value::Object(events)) = r.property("Events") {
            for (name, event) in events {
                add_event(resolver, r, &mut spec, name, event)?;
            }
        }
        out.push(spec);
    }
    Ok(out)
}

fn add_event(
    resolver: &Resolver<'_>,
    r: &Resource,
    spec: &mut FunctionSpec,
    name: &str,
    event: &Value,
) -> Result<()> {
    let at = r.at(&format!("Events.{name}"));
    let kind = event
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let props = match event.get("Properties") {
        Some(p) => resolver.resolve(p, &format!("{at}.Properties"))?,
        None => Value::Object(Map::new()),
    };
    let text = |key: &str| props.get(key).and_then(|v| scalar_text(v).ok());
    let number = |key: &str, default: u32| -> Result<u32> {
        match text(key) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| Error::resolve(format!("{at}.Properties.{key}"), "not a number")),
        }
    };
    match kind {
        "HttpApi" => {
            if let Some(version) = text("PayloadFormatVersion") {
                if version != "2.0" {
                    return Err(Error::resolve(
                        format!("{at}.Properties.PayloadFormatVersion"),
                        "only payload format 2.0 is emulated locally",
                    ));
                }
            }
            let api = match text("ApiId") {
                Some(id) => id,
                None => IMPLICIT_HTTP_API.to_string(),
            };
            let path = text("Path").filter(|p| p != "$default" && p != "/$default");
            let method = text("Method")
                .map(|m| m.to_ascii_uppercase())
                .unwrap_or_else(|| "ANY".to_string());
            let method = if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" {
                "ANY".to_string()
            } else {
                method
            };
            let auth = match props.get("Auth").and_then(|a| a.get("Authorizer")) {
                None => RouteAuth::Default,
                Some(v) => match scalar_text(v) {
                    Ok(n) if n == "NONE" => RouteAuth::None,
                    Ok(n) => RouteAuth::Named(n),
                    Err(m) => {
                        return Err(Error::resolve(
                            format!("{at}.Properties.Auth.Authorizer"),
                            m,
                        ))
                    }
                },
            };
            spec.http_events.push(HttpEvent {
                name: name.to_string(),
                api,
                method,
                path,
                auth,
            });
        }
        "SQS" => {
            if props.get("Enabled") == Some(&Value::Bool(false)) {
                return Ok(());
            }
            let queue_arn = text("Queue").ok_or_else(|| {
                Error::resolve(format!("{at}.Properties.Queue"), "an SQS event needs Queue")
            })?;
            let report = match props.get("FunctionResponseTypes") {
                Some(Value::Array(types)) => types
                    .iter()
                    .any(|t| t.as_str() == Some("ReportBatchItemFailures")),
                _ => false,
            };
            let maximum_concurrency = match props
                .get("ScalingConfig")
                .and_then(|c| c.get("MaximumConcurrency"))
            {
                None | Some(Value::Null) => None,
                Some(v) => {
                    let at = format!("{at}.Properties.ScalingConfig.MaximumConcurrency");
                    let n = scalar_text(v)
                        .ok()
                        .and_then(|s| s.parse::<u32>().ok())
                        .filter(|n| MAXIMUM_CONCURRENCY.contains(n))
                        .ok_or_else(|| {
                            Error::resolve(&at, format!("must be a number from 2 to 1000, not {v}"))
                        })?;
                    Some(n)
                }
            };
            spec.sqs_events.push(SqsEvent {
                name: name.to_string(),
                queue_arn,
                batch_size: number("BatchSize", 10)?.max(1),
                batching_window_secs: number("MaximumBatchingWindowInSeconds", 0)?,
                report_batch_item_failures: report,
                maximum_concurrency,
            });
        }
        "Schedule" | "ScheduleV2" => {
            let input = match props.get("Input") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(serde_json::from_str(s).map_err(|e| {
                    Error::resolve(format!("{at}.Properties.Input"), format!("not JSON: {e}"))
                })?),
                Some(other) => Some(other.clone()),
            };
            spec.schedules.push(ScheduleEvent {
                name: name.to_string(),
                kind: kind.to_string(),
                expression: text("Schedule").or_else(|| text("ScheduleExpression")),
                input,
            });
        }
        other => {
            tracing::warn!(
                function = %r.logical_id,
                event = name,
                "event type {other} is not emulated locally; ignoring it"
            );
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ HTTP APIs

#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizerKind {
    /// A Lambda REQUEST authorizer; the function's logical id.
    Lambda { function: String },
    /// Anything else (JWT): declared, but refused when a route uses it.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizerSpec {
    pub name: String,
    pub kind: AuthorizerKind,
    /// Header names (as written) that must be present; their values form `identitySource`.
    pub identity_headers: Vec<String>,
    pub identity_query_strings: Vec<String>,
    pub simple_responses: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiSpec {
    pub logical_id: String,
    pub default_authorizer: Option<String>,
    pub authorizers: BTreeMap<String, AuthorizerSpec>,
}

#[cfg(test)]
impl ApiSpec {
    /// The APIs of a template with one API, `Api`: the routing and gateway tests build
    /// their route tables over it.
    pub(crate) fn only_api(
        default_authorizer: &str,
        authorizers: BTreeMap<String, AuthorizerSpec>,
    ) -> BTreeMap<String, ApiSpec> {
        let api = ApiSpec {
            logical_id: "Api".into(),
            default_authorizer: Some(default_authorizer.into()),
            authorizers,
        };
        BTreeMap::from([(api.logical_id.clone(), api)])
    }
}

/// The HTTP APIs that routes refer to, with their authorizers.
pub fn http_apis(
    resolver: &Resolver<'_>,
    functions: &[FunctionSpec],
) -> Result<BTreeMap<String, ApiSpec>> {
    let template = resolver.template();
    let global = template.global("HttpApi");
    let mut ids: Vec<String> = template
        .resources_of(HTTP_API_TYPE)
        .map(|r| r.logical_id.clone())
        .collect();
    if functions
        .iter()
        .flat_map(|f| &f.http_events)
        .any(|e| e.api == IMPLICIT_HTTP_API)
    {
        ids.push(IMPLICIT_HTTP_API.to_string());
    }
    let mut apis = BTreeMap::new();
    for id in ids {
        let resource = template.resources.get(&id);
        if resource.is_some() && !resolver.resource_enabled(&id)? {
            continue;
        }
        let raw_auth = resource
            .and_then(|r| r.property("Auth"))
            .or_else(|| global.get("Auth"));
        let mut api = ApiSpec {
            logical_id: id.clone(),
            ..ApiSpec::default()
        };
        if let Some(raw_auth) = raw_auth {
            let at = format!("Resources.{id}.Properties.Auth");
            let auth = resolver.resolve(raw_auth, &at)?;
            api.default_authorizer = auth
                .get("DefaultAuthorizer")
                .and_then(Value::as_str)
                .map(str::to_string);
            if let Some(Value::Object(authorizers)) = auth.get("Authorizers") {
                for (name, a) in authorizers {
                    let raw = raw_auth.get("Authorizers").and_then(|x| x.get(name));
                    let spec =
                        authorizer(name, a, raw, functions, &format!("{at}.Authorizers.{name}"))?;
                    api.authorizers.insert(name.clone(), spec);
                }
            }
            if let Some(default) = &api.default_authorizer {
                if !api.authorizers.contains_key(default) {
                    return Err(Error::resolve(
                        format!("{at}.DefaultAuthorizer"),
                        format!("no authorizer named {default}"),
                    ));
                }
            }
        }
        apis.insert(id, api);
    }
    Ok(apis)
}

fn authorizer(
    name: &str,
    a: &Value,
    raw: Option<&Value>,
    functions: &[FunctionSpec],
    at: &str,
) -> Result<AuthorizerSpec> {
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items.iter().filter_map(|i| scalar_text(i).ok()).collect(),
            Some(v) => scalar_text(v).ok().into_iter().collect(),
            None => vec![],
        }
    };
    let identity = a.get("Identity");
    let kind = if let Some(arn) = a.get("FunctionArn") {
        // `!GetAtt Fn.Arn` and `!Ref Fn.Alias` name the function directly; a plain
        // ARN, qualified by an alias or not, is matched against the ARNs the local
        // stack gives its functions.
        let raw_arn = raw.and_then(|r| r.get("FunctionArn"));
        let by_att = raw_arn
            .and_then(|f| f.get("Fn::GetAtt"))
            .and_then(|g| match g {
                Value::String(s) => s.split('.').next().map(str::to_string),
                Value::Array(items) => items.first().and_then(Value::as_str).map(str::to_string),
                _ => None,
            });
        let by_alias = raw_arn
            .and_then(|f| f.get("Ref"))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_suffix(".Alias"))
            .map(str::to_string);
        let direct = by_att.or(by_alias);
        let arn = scalar_text(arn).map_err(|m| Error::resolve(format!("{at}.FunctionArn"), m))?;
        let unqualified = |f: &FunctionSpec| {
            let plain = function_arn(&f.binary);
            arn == plain
                || arn
                    .strip_prefix(plain.as_str())
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|q| !q.is_empty() && !q.contains(':'))
        };
        let function = functions
            .iter()
            .find(|f| Some(&f.logical_id) == direct.as_ref())
            .or_else(|| functions.iter().find(|f| unqualified(f)))
            .ok_or_else(|| {
                Error::resolve(
                    format!("{at}.FunctionArn"),
                    format!("{arn} is not a function of this template"),
                )
            })?;
        if let Some(version) = a
            .get("AuthorizerPayloadFormatVersion")
            .and_then(|v| scalar_text(v).ok())
        {
            if version != "2.0" {
                return Err(Error::resolve(
                    format!("{at}.AuthorizerPayloadFormatVersion"),
                    "only payload format 2.0 is emulated locally",
                ));
            }
        }
        AuthorizerKind::Lambda {
            function: function.logical_id.clone(),
        }
    } else if a.get("JwtConfiguration").is_some() {
        AuthorizerKind::Unsupported("JWT authorizers are not emulated locally".into())
    } else {
        AuthorizerKind::Unsupported(
            "authorizer has neither FunctionArn nor JwtConfiguration".into(),
        )
    };
    Ok(AuthorizerSpec {
        name: name.to_string(),
        kind,
        identity_headers: strings(identity.and_then(|i| i.get("Headers"))),
        identity_query_strings: strings(identity.and_then(|i| i.get("QueryStrings"))),
        simple_responses: matches!(a.get("EnableSimpleResponses"), Some(Value::Bool(true)))
            || a.get("EnableSimpleResponses").and_then(Value::as_str) == Some("true"),
    })
}

/// Everything the stack needs from the template, resolved.
#[derive(Debug, Clone)]
pub struct Plan {
    pub infrastructure: Infrastructure,
    pub functions: Vec<FunctionSpec>,
    pub apis: BTreeMap<String, ApiSpec>,
    /// `Ref` value of every named resource, by logical id.
    pub names: BTreeMap<String, Physical>,
}

/// Builds the plan in one go (queue URLs predicted from `moto_url`).
pub fn plan(resolver: &mut Resolver<'_>, moto_url: &str) -> Result<Plan> {
    assign_names(resolver, moto_url)?;
    finish_plan(resolver)
}

/// The parts of the plan that depend on names, e.g. after queue URLs changed.
pub fn finish_plan(resolver: &Resolver<'_>) -> Result<Plan> {
    let infrastructure = infrastructure(resolver)?;
    let functions = functions(resolver)?;
    let apis = http_apis(resolver, &functions)?;
    check_routes(&functions, &apis)?;
    let names = resolver
        .template()
        .resources
        .keys()
        .filter_map(|id| resolver.physical(id).map(|p| (id.clone(), p.clone())))
        .collect();
    Ok(Plan {
        infrastructure,
        functions,
        apis,
        names,
    })
}

/// Routes must name existing APIs and usable authorizers; checked up front so
/// a typo fails the start rather than a request.
fn check_routes(functions: &[FunctionSpec], apis: &BTreeMap<String, ApiSpec>) -> Result<()> {
    for f in functions {
        for e in &f.http_events {
            let at = format!("Resources.{}.Properties.Events.{}", f.logical_id, e.name);
            let api = apis.get(&e.api).ok_or_else(|| {
                Error::resolve(
                    &at,
                    format!("ApiId {} is not an HttpApi of this template", e.api),
                )
            })?;
            let name = match &e.auth {
                RouteAuth::None => None,
                RouteAuth::Default => api.default_authorizer.clone(),
                RouteAuth::Named(n) => Some(n.clone()),
            };
            if let Some(name) = name {
                match api.authorizers.get(&name).map(|a| &a.kind) {
                    None => {
                        return Err(Error::resolve(
                            &at,
                            format!("authorizer {name} is not declared on {}", e.api),
                        ))
                    }
                    Some(AuthorizerKind::Unsupported(why)) => {
                        return Err(Error::resolve(&at, format!("authorizer {name}: {why}")))
                    }
                    Some(AuthorizerKind::Lambda { .. }) => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::Template;
    use serde_json::json;
    use std::path::Path;

    const MOTO: &str = "http://127.0.0.1:4566";

    fn plan_of(text: &str, params: &[(&str, &str)]) -> Result<Plan> {
        let t = Template::parse(text, Path::new("/repo/infra/template.yaml"))?;
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut r = Resolver::new(&t, &params)?;
        plan(&mut r, MOTO)
    }

    /// Asserts that the plan of `text` fails with an error that names each of `parts` (the
    /// place in the template and the reason); `case` says which variant failed.
    fn assert_refused(text: &str, params: &[(&str, &str)], parts: &[&str], case: &str) {
        let err = plan_of(text, params).unwrap_err().to_string();
        for part in parts {
            assert!(err.contains(part), "{case}: {err}");
        }
    }

    #[test]
    fn real_template_plan() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).unwrap();
        let mut r = Resolver::new(&t, &[]).unwrap();
        let plan = plan(&mut r, MOTO).unwrap();

        assert_eq!(plan.infrastructure.tables.len(), 1);
        let table = &plan.infrastructure.tables[0];
        assert_eq!(table.name, "uslugi-dev-main");
        assert_eq!(
            table.properties["TimeToLiveSpecification"]["Enabled"],
            json!(true)
        );
        assert_eq!(
            plan.infrastructure.email_identities,
            vec![EmailIdentitySpec {
                logical_id: "EmailSenderIdentity".into(),
                identity: "no-reply@uslugi.example".into()
            }]
        );

        let codes = plan
            .functions
            .iter()
            .find(|f| f.logical_id == "CodesFunction")
            .unwrap();
        assert_eq!(codes.binary, "codes");
        assert_eq!(codes.timeout_secs, 10);
        assert_eq!(codes.environment["TABLE_NAME"], "uslugi-dev-main");
        assert_eq!(codes.environment["RUST_LOG"], "info");
        assert_eq!(codes.environment["EMAIL_SENDER"], "no-reply@uslugi.example");
        assert_eq!(codes.environment["CODE_TTL_SECONDS"], "600");
        assert_eq!(codes.environment["STAGE"], "dev");
        assert_eq!(codes.environment["INTEGRATIONS"], "sandbox");
        // The functions get the secret's ARN, and read the key from moto themselves: no
        // variable holds a secret.
        assert_eq!(
            codes.environment["HMAC_SECRET_ARN"],
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:HmacSecret"
        );
        assert!(codes.secret_variables.is_empty());
        assert!(!codes.environment.contains_key("HMAC_SECRET"));
        let [secret] = &plan.infrastructure.secrets[..] else {
            panic!("one secret: {:?}", plan.infrastructure.secrets);
        };
        assert_eq!(secret.name, "HmacSecret");
        // GenerateSecretString: one plain key of 64 alphanumerics, which the functions
        // read as version 1.
        assert_eq!(secret.value.len(), 64);
        assert!(secret.value.chars().all(|c| c.is_ascii_alphanumeric()));
        // Globals.Function, resolved.
        let setting = |key: &str| function_setting(&r, "CodesFunction", key).unwrap();
        assert_eq!(setting("MemorySize"), Some(json!(128)));
        assert_eq!(setting("Architectures"), Some(json!(["arm64"])));
        assert_eq!(setting("LoggingConfig"), Some(json!({"LogFormat": "JSON"})));
        assert_eq!(setting("EphemeralStorage"), None);
        assert!(function_setting(&r, "MainTable", "MemorySize").is_err());

        let routes: Vec<_> = codes
            .http_events
            .iter()
            .map(|e| (e.method.as_str(), e.path.as_deref(), e.api.as_str()))
            .collect();
        assert!(routes.contains(&("POST", Some("/v1/codes"), "HttpApi")));
        assert!(routes.contains(&("POST", Some("/v1/codes/{id}/verify"), "HttpApi")));
        assert!(plan.apis.contains_key("HttpApi"));
        assert_eq!(plan.names["MainTable"].ref_value, json!("uslugi-dev-main"));
    }

    #[test]
    fn real_template_routes_sources_and_authorizer_go_through_aliases() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let plan = plan_of(&text, &[("VerificationMaxConcurrency", "7")]).unwrap();
        // The authorizer is named by its alias, and still found.
        assert_eq!(
            plan.apis["HttpApi"].authorizers["SessionAuthorizer"].kind,
            AuthorizerKind::Lambda {
                function: "AuthorizerFunction".into()
            }
        );
        let sources = |function: &str| {
            let f = plan
                .functions
                .iter()
                .find(|f| f.logical_id == function)
                .unwrap();
            f.sqs_events
                .iter()
                .map(|e| e.maximum_concurrency)
                .collect::<Vec<_>>()
        };
        assert_eq!(sources("VerifyDocumentsFunction"), vec![Some(7)]);
        for worker in ["BillNoticesFunction", "PaymentNoticesFunction"] {
            assert_eq!(sources(worker), vec![Some(2)], "{worker}");
        }
        // New bills, and the pages of the daily run; the reconciliation's pages.
        assert_eq!(sources("RunAutopaysFunction"), vec![Some(2), Some(2)]);
        assert_eq!(sources("ReconcilePaymentsFunction"), vec![Some(2)]);
    }

    #[test]
    fn real_template_refuses_placeholders_in_prod() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let real = [
            ("EmailSender", "no-reply@portal.example.org"),
            ("PortalUrl", "https://portal.example.org"),
            ("CorsAllowedOrigin", "https://portal.example.org"),
            ("WebauthnRpId", "portal.example.org"),
            ("WebauthnOrigins", "https://portal.example.org"),
            (
                "TbankSecretArn",
                "arn:aws:secretsmanager:eu-central-1:123456789012:secret:tbank",
            ),
        ];
        let mut prod = vec![("Stage", "prod"), ("Integrations", "live")];
        prod.extend(real);
        plan_of(&text, &prod).unwrap();
        // The sandboxes are refused in prod whatever else is set.
        let sandboxed: Vec<_> = prod
            .iter()
            .copied()
            .filter(|(k, _)| *k != "Integrations")
            .collect();
        let err = plan_of(&text, &sandboxed).unwrap_err();
        assert!(
            matches!(&err, Error::RuleFailed { rule, message }
                if rule == "NoSandboxInProd" && message.contains("verifies any passport")),
            "{err}"
        );
        for (placeholder, value) in [
            ("EmailSender", "no-reply@uslugi.example"),
            ("EmailSender", "no-reply-dev@uslugi.example"),
            ("PortalUrl", "https://uslugi.example"),
            ("CorsAllowedOrigin", "https://uslugi.example"),
            ("WebauthnRpId", "localhost"),
        ] {
            let mut params = prod.clone();
            params.retain(|(k, _)| *k != placeholder);
            params.push((placeholder, value));
            let err = plan_of(&text, &params).unwrap_err();
            assert!(
                matches!(&err, Error::RuleFailed { rule, message }
                    if rule == "PlaceholdersNotInProd" && message.starts_with(placeholder)),
                "{placeholder}={value}: {err}"
            );
        }
        // Outside prod, the placeholders are what dev runs with.
        plan_of(&text, &[("Stage", "dev")]).unwrap();
    }

    #[test]
    fn stage_parameter_changes_names() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let plan = plan_of(&text, &[("Stage", "e2e")]).unwrap();
        assert_eq!(plan.infrastructure.tables[0].name, "uslugi-e2e-main");
    }

    const QUEUES: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  WorkConcurrency: {Type: Number, Default: 5}
Globals:
  Function:
    Timeout: 5
    Environment:
      Variables:
        QUEUE_URL: !Ref WorkQueue
Resources:
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "uslugi-${Stage}-work"
      VisibilityTimeout: 30
      MessageRetentionPeriod: 345600
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: 3
  WorkDlq:
    Type: AWS::SQS::Queue
    Properties:
      MessageRetentionPeriod: 1209600
  Fifo:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
  Worker:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties: {Binary: worker}
    Properties:
      Timeout: 20
      Environment:
        Variables:
          DLQ_ARN: !GetAtt WorkDlq.Arn
          DLQ_NAME: !GetAtt WorkDlq.QueueName
          SELF: !Ref Worker
          SELF_ARN: !GetAtt Worker.Arn
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: !Ref WorkConcurrency
        Plain:
          Type: SQS
          Properties:
            Queue: {"Fn::GetAtt": [Fifo, Arn]}
        Nightly:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
        WithInput:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
            Input: '{"job":"cleanup"}'
"#;

    #[test]
    fn queues_dead_letter_first_and_attributes() {
        let plan = plan_of(QUEUES, &[]).unwrap();
        let names: Vec<_> = plan
            .infrastructure
            .queues
            .iter()
            .map(|q| q.name.as_str())
            .collect();
        let dlq = names.iter().position(|n| *n == "WorkDlq").unwrap();
        let work = names.iter().position(|n| *n == "uslugi-dev-work").unwrap();
        assert!(dlq < work, "{names:?}");
        assert!(names.contains(&"Fifo.fifo"));

        let work = &plan.infrastructure.queues[work];
        assert_eq!(work.attributes["VisibilityTimeout"], "30");
        assert_eq!(work.attributes["MessageRetentionPeriod"], "345600");
        let redrive: Value = serde_json::from_str(&work.attributes["RedrivePolicy"]).unwrap();
        assert_eq!(
            redrive,
            json!({"deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:WorkDlq", "maxReceiveCount": 3})
        );
        assert_eq!(
            work.dead_letter_arn.as_deref(),
            Some("arn:aws:sqs:us-east-1:123456789012:WorkDlq")
        );
        let fifo = plan
            .infrastructure
            .queues
            .iter()
            .find(|q| q.logical_id == "Fifo")
            .unwrap();
        assert_eq!(fifo.attributes["FifoQueue"], "true");
    }

    #[test]
    fn function_environment_and_events() {
        let plan = plan_of(QUEUES, &[]).unwrap();
        let f = &plan.functions[0];
        assert_eq!(f.timeout_secs, 20);
        assert_eq!(
            f.environment["QUEUE_URL"],
            "http://127.0.0.1:4566/123456789012/uslugi-dev-work"
        );
        assert_eq!(
            f.environment["DLQ_ARN"],
            "arn:aws:sqs:us-east-1:123456789012:WorkDlq"
        );
        assert_eq!(f.environment["DLQ_NAME"], "WorkDlq");
        assert_eq!(f.environment["SELF"], "worker");
        assert_eq!(
            f.environment["SELF_ARN"],
            "arn:aws:lambda:us-east-1:123456789012:function:worker"
        );

        let work = f.sqs_events.iter().find(|e| e.name == "Work").unwrap();
        assert_eq!(
            work.queue_arn,
            "arn:aws:sqs:us-east-1:123456789012:uslugi-dev-work"
        );
        assert_eq!(work.batch_size, 5);
        assert_eq!(work.batching_window_secs, 1);
        assert!(work.report_batch_item_failures);
        assert_eq!(work.maximum_concurrency, Some(5));
        let plain = f.sqs_events.iter().find(|e| e.name == "Plain").unwrap();
        assert_eq!(plain.batch_size, 10);
        assert!(!plain.report_batch_item_failures);
        assert_eq!(plain.maximum_concurrency, None);

        let nightly = f.schedules.iter().find(|s| s.name == "Nightly").unwrap();
        assert_eq!(nightly.expression.as_deref(), Some("cron(0 3 * * ? *)"));
        assert_eq!(nightly.input, None);
        let with_input = f.schedules.iter().find(|s| s.name == "WithInput").unwrap();
        assert_eq!(with_input.kind, "ScheduleV2");
        assert_eq!(with_input.input, Some(json!({"job": "cleanup"})));
    }

    #[test]
    fn maximum_concurrency_outside_what_lambda_allows_is_refused() {
        for bad in ["1", "1001", "many"] {
            assert_refused(
                QUEUES,
                &[("WorkConcurrency", bad)],
                &[
                    "Events.Work.Properties.ScalingConfig.MaximumConcurrency",
                    "from 2 to 1000",
                ],
                bad,
            );
        }
        let plan = plan_of(QUEUES, &[("WorkConcurrency", "1000")]).unwrap();
        let work = plan.functions[0]
            .sqs_events
            .iter()
            .find(|e| e.name == "Work");
        assert_eq!(work.unwrap().maximum_concurrency, Some(1000));
    }

    #[test]
    fn an_authorizer_arn_is_matched_whole_not_by_its_start() {
        // `function:auth-other` starts like `function:auth` but is not it, nor is a
        // version of a version (`auth:live:1`).
        for arn in [
            "arn:aws:lambda:us-east-1:123456789012:function:auth-other",
            "arn:aws:lambda:us-east-1:123456789012:function:auth:live:1",
        ] {
            let text = AUTH.replace(
                "arn:aws:lambda:us-east-1:123456789012:function:auth\n",
                &format!("{arn}\n"),
            );
            assert_refused(
                &text,
                &[],
                &[
                    "Authorizers.PolicyAuth.FunctionArn",
                    "is not a function of this template",
                ],
                arn,
            );
        }
    }

    const ALIASES: &str = r#"
Globals:
  Function:
    AutoPublishAlias: live
Resources:
  Worker:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: worker}}
    Properties:
      Environment:
        Variables:
          ALIAS: !Ref Worker.Alias
          VERSION: !Ref Worker.Version
          NUMBER: !GetAtt Worker.Version.Version
          NUMBER_LONG: {"Fn::GetAtt": [Worker.Version, Version]}
          ARN: !GetAtt Worker.Arn
  Canary:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: canary}}
    Properties:
      AutoPublishAlias: !Sub "${AWS::StackName}-next"
      Environment:
        Variables:
          ALIAS: !Ref Canary.Alias
"#;

    #[test]
    fn published_alias_and_version_resolve_to_the_one_local_build() {
        let plan = plan_of(ALIASES, &[]).unwrap();
        let env = |id: &str| {
            plan.functions
                .iter()
                .find(|f| f.logical_id == id)
                .unwrap()
                .environment
                .clone()
        };
        let worker = env("Worker");
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:worker";
        assert_eq!(worker["ARN"], arn);
        assert_eq!(worker["ALIAS"], format!("{arn}:live"));
        assert_eq!(worker["VERSION"], format!("{arn}:$LATEST"));
        assert_eq!(worker["NUMBER"], "$LATEST");
        assert_eq!(worker["NUMBER_LONG"], "$LATEST");
        // A function's own AutoPublishAlias wins over the Globals', intrinsics and all.
        assert_eq!(
            env("Canary")["ALIAS"],
            "arn:aws:lambda:us-east-1:123456789012:function:canary:uslugi-local-next"
        );
    }

    #[test]
    fn alias_of_a_function_that_publishes_none_is_refused() {
        let text = ALIASES.replace("    AutoPublishAlias: live\n", "");
        assert_refused(
            &text,
            &[],
            &[
                "Resources.Worker.Properties.Environment.Variables.ALIAS",
                "Worker publishes no alias or version",
            ],
            "no AutoPublishAlias",
        );
    }

    const AUTH: &str = r#"
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: SessionAuth
        Authorizers:
          SessionAuth:
            FunctionArn: !GetAtt AuthFunction.Arn
            Identity:
              Headers: [Authorization]
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
          PolicyAuth:
            FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:auth
          AliasAuth:
            FunctionArn: !Ref AuthFunction.Alias
          QualifiedArnAuth:
            FunctionArn: arn:aws:lambda:us-east-1:123456789012:function:auth:live
          Jwt:
            JwtConfiguration: {issuer: x, audience: [y]}
            IdentitySource: $request.header.Authorization
  AuthFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: auth}}
    Properties: {AutoPublishAlias: live}
  Profile:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: profile}}
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: get, Path: /v1/profile}
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /v1/public/{proxy+}
            Auth: {Authorizer: NONE}
        Policy:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /v1/policy
            Auth: {Authorizer: PolicyAuth}
        Fallback:
          Type: HttpApi
"#;

    #[test]
    fn authorizers_and_route_auth() {
        let plan = plan_of(AUTH, &[]).unwrap();
        let api = &plan.apis["Api"];
        assert_eq!(api.default_authorizer.as_deref(), Some("SessionAuth"));
        let session = &api.authorizers["SessionAuth"];
        assert_eq!(
            session.kind,
            AuthorizerKind::Lambda {
                function: "AuthFunction".into()
            }
        );
        assert_eq!(session.identity_headers, vec!["Authorization".to_string()]);
        assert!(session.simple_responses);
        let policy = &api.authorizers["PolicyAuth"];
        assert_eq!(
            policy.kind,
            AuthorizerKind::Lambda {
                function: "AuthFunction".into()
            }
        );
        assert!(!policy.simple_responses);
        for by_alias in ["AliasAuth", "QualifiedArnAuth"] {
            assert_eq!(
                api.authorizers[by_alias].kind,
                AuthorizerKind::Lambda {
                    function: "AuthFunction".into()
                },
                "{by_alias}"
            );
        }
        assert!(matches!(
            api.authorizers["Jwt"].kind,
            AuthorizerKind::Unsupported(_)
        ));

        let profile = plan
            .functions
            .iter()
            .find(|f| f.logical_id == "Profile")
            .unwrap();
        let by_name = |n: &str| {
            profile
                .http_events
                .iter()
                .find(|e| e.name == n)
                .unwrap()
                .clone()
        };
        assert_eq!(by_name("Get").method, "GET");
        assert_eq!(by_name("Get").auth, RouteAuth::Default);
        assert_eq!(by_name("Public").auth, RouteAuth::None);
        assert_eq!(
            by_name("Policy").auth,
            RouteAuth::Named("PolicyAuth".into())
        );
        assert_eq!(by_name("Policy").method, "ANY");
        let fallback = by_name("Fallback");
        assert_eq!(fallback.path, None);
        assert_eq!(fallback.api, IMPLICIT_HTTP_API);
        assert!(plan.apis.contains_key(IMPLICIT_HTTP_API));
    }

    #[test]
    fn route_using_unsupported_authorizer_fails_the_plan() {
        let text = AUTH.replace("Auth: {Authorizer: PolicyAuth}", "Auth: {Authorizer: Jwt}");
        assert_refused(&text, &[], &["JWT", "Profile"], "JWT authorizer");
    }

    #[test]
    fn unsupported_intrinsic_in_environment_names_the_place() {
        let text = r#"
Resources:
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: f}}
    Properties:
      Environment:
        Variables:
          X: !ImportValue shared-thing
"#;
        let err = plan_of(text, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Resources.F.Properties.Environment.Variables.X: intrinsic function Fn::ImportValue is not supported locally"
        );
    }

    #[test]
    fn circular_names_are_reported() {
        let text = r#"
Resources:
  A:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !GetAtt B.QueueName}
  B:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !GetAtt A.QueueName}
"#;
        assert_refused(text, &[], &["refer to each other"], "A and B");
    }

    #[test]
    fn conditions_leave_resources_out() {
        let text = r#"
Parameters:
  WithQueue: {Type: String, Default: "no"}
Conditions:
  HasQueue: !Equals [!Ref WithQueue, "yes"]
Resources:
  Q:
    Type: AWS::SQS::Queue
    Condition: HasQueue
  F:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: f}}
    Properties:
      Environment:
        Variables:
          Q: !If [HasQueue, !Ref Q, none]
"#;
        let plan = plan_of(text, &[]).unwrap();
        assert!(plan.infrastructure.queues.is_empty());
        assert_eq!(plan.functions[0].environment["Q"], "none");
        let plan = plan_of(text, &[("WithQueue", "yes")]).unwrap();
        assert_eq!(plan.infrastructure.queues.len(), 1);
        assert_eq!(
            plan.functions[0].environment["Q"],
            "http://127.0.0.1:4566/123456789012/Q"
        );
    }

    #[test]
    fn binary_falls_back_to_code_uri_package() {
        let dir = std::env::temp_dir().join(format!("uslugi-local-test-{}", std::process::id()));
        let crate_dir = dir.join("functions/thing");
        std::fs::create_dir_all(&crate_dir).unwrap();
        std::fs::write(
            crate_dir.join("Cargo.toml"),
            "[package]\nname = \"thing\"\nversion = \"0.1.0\"\n",
        )
        .unwrap();
        let text = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      CodeUri: functions/thing\n";
        let t = Template::parse(text, &dir.join("template.yaml")).unwrap();
        let mut r = Resolver::new(&t, &[]).unwrap();
        let plan = plan(&mut r, MOTO).unwrap();
        assert_eq!(plan.functions[0].binary, "thing");
        std::fs::remove_dir_all(&dir).ok();
    }
}
