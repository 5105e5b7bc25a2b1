//! How every function starts: logging and metrics, what it reads once per cold start
//! ([`ColdStart`]), and for an API function the loop that routes each request inside a
//! span that names it ([`run_api`]).

use std::future::Future;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use tracing::Instrument;

use crate::adapters::gateway::AcquirerChoice;
use crate::adapters::{sqs::SqsQueue, Clients};
use crate::config::{Deployment, Env, PaymentsConfig, Permit, SandboxAdapter};
use crate::crypto::Hasher;
use crate::http as web;
use crate::AppError;

/// What a function's start-up and its runtime loop fail with.
pub type Error = lambda_http::Error;

/// Logging and metrics, first thing in every function's `main`.
pub fn init() -> Result<(), Error> {
    crate::logging::init();
    crate::metrics::init()?;
    Ok(())
}

/// What every function reads at cold start: the environment, the SDK clients and the
/// HMAC keys.
pub struct ColdStart {
    pub env: Env<fn(&str) -> Option<String>>,
    pub clients: Clients,
    pub hasher: Hasher,
}

impl ColdStart {
    /// The clients, then the keys (one `GetSecretValue`).
    pub async fn load() -> Result<Self, Error> {
        Self::load_from(Env::process()).await
    }

    /// For a function built on an integration adapter: what the deployment allows it to
    /// build (a [`crate::config::SandboxAllowed`], or the [`AcquirerChoice`]) is decided first, before
    /// any call leaves the function.
    pub async fn load_with_sandbox<P: Permit>(adapter: SandboxAdapter) -> Result<(Self, P), Error> {
        let env = Env::process();
        let permit = P::permit(&Deployment::from_env(&env)?, adapter)?;
        Ok((Self::load_from(env).await?, permit))
    }

    async fn load_from(env: Env<fn(&str) -> Option<String>>) -> Result<Self, Error> {
        let clients = Clients::load().await?;
        let hasher = clients.hasher(&env).await?;
        Ok(Self {
            env,
            clients,
            hasher,
        })
    }
}

/// What a route answers: the response, or the error [`web::respond`] turns into one.
pub type Reply = Result<Response<Body>, AppError>;

/// What a scheduled job over payments done in pages reads at cold start (the
/// reconciliation, the autopay run): the queue of its pages and their size, the clients
/// and the payments' configuration.
pub struct PaymentsJob {
    /// The acquirer payments are charged through (the sandbox's, or the live one):
    /// decided first, before any call leaves the function.
    pub acquirer: AcquirerChoice,
    pub queue: SqsQueue,
    pub page_size: usize,
    pub clients: Clients,
    pub config: PaymentsConfig,
}

impl PaymentsJob {
    /// The job's start: logging and metrics first (as [`run_api`] does for an API
    /// function), then the queue's URL from `queue_var`, the page size from `page_var`
    /// (`default_page` when unset).
    pub async fn start(
        queue_var: &'static str,
        page_var: &'static str,
        default_page: usize,
    ) -> Result<Self, Error> {
        init()?;
        let env = Env::process();
        let acquirer =
            AcquirerChoice::permit(&Deployment::from_env(&env)?, SandboxAdapter::Acquirer)?;
        let queue_url = env.required(queue_var)?;
        let page_size = env.read(page_var, default_page, 1)?;
        let ColdStart {
            clients, hasher, ..
        } = ColdStart::load().await?;
        let config = PaymentsConfig::from_env(&env, hasher)?;
        Ok(Self {
            acquirer,
            queue: SqsQueue::new(clients.sqs.clone(), queue_url),
            page_size,
            clients,
            config,
        })
    }
}

/// An API function: built once per cold start, then a route per request.
pub trait Api: Sync {
    /// The response to one request: its API Gateway route key (`None` when the event
    /// carries none), the request, and the time it is handled at.
    fn route(
        &self,
        route: Option<&str>,
        request: &Request,
        now: OffsetDateTime,
    ) -> impl Future<Output = Reply> + Send;
}

/// Runs an API function: logging and metrics, the app built once, then every request
/// routed inside a span with its API request id and route.
pub async fn run_api<A: Api>(app: impl Future<Output = Result<A, Error>>) -> Result<(), Error> {
    init()?;
    let app = app.await?;
    lambda_http::run(lambda_http::service_fn(|request| handle(&app, request))).await
}

/// One request: routed, its result turned into a response.
pub async fn handle<A: Api>(app: &A, request: Request) -> Result<Response<Body>, Error> {
    let route = web::route_key(&request);
    let span = tracing::info_span!(
        "request",
        api_request_id = web::api_request_id(&request).as_deref().unwrap_or("-"),
        route = route.as_deref().unwrap_or("-"),
    );
    let now = OffsetDateTime::now_utc();
    Ok(
        async { web::respond(app.route(route.as_deref(), &request, now).await) }
            .instrument(span)
            .await,
    )
}

/// Runs a queue worker: logging and metrics are the caller's (its cold start comes
/// first), then every SQS batch through [`crate::batch::run`], at most `concurrency`
/// messages at a time.
pub async fn run_queue<J, F, Fut>(concurrency: usize, process: F) -> Result<(), Error>
where
    J: DeserializeOwned,
    F: Fn(J, u32) -> Fut,
    Fut: Future<Output = Result<(), AppError>>,
{
    let process = &process;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<SqsEvent>| async move {
            Ok::<_, Error>(crate::batch::run(event.payload, concurrency, process).await?)
        },
    ))
    .await
}

/// A schedule's invocation: the EventBridge event's id (kept when EventBridge retries)
/// and its `time`, the moment the rule was due (also kept by a retry, however late).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub id: String,
    pub time: OffsetDateTime,
}

impl Scheduled {
    /// Reads the scheduled event; an event without an `id` is named by the invocation's
    /// request id, and one without a readable `time` is taken as due `now`.
    pub fn of(payload: &Value, request_id: &str, now: OffsetDateTime) -> Self {
        let id = payload
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| request_id.to_string(), str::to_string);
        let time = match payload.get("time").and_then(Value::as_str) {
            Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| {
                    tracing::warn!(time = t, error = %e, "scheduled event's time not read; taken as now");
                    now
                }),
            None => now,
        };
        Self { id, time }
    }
}

/// Runs a scheduled job done in pages. Two event sources: the schedule, which only plans
/// the run (`plan`, given the [`Scheduled`] event: its id, which EventBridge keeps when it
/// retries, so a retry plans the same pages, and its `time`, the moment it was due), and
/// the queue of the planned pages, handed to `page` at most `concurrency` at a time. Both
/// are given the time of the invocation.
pub async fn run_paged<J, F, Fut, P, PFut>(
    concurrency: usize,
    page: F,
    plan: P,
) -> Result<(), Error>
where
    J: DeserializeOwned,
    F: Fn(J, OffsetDateTime) -> Fut,
    Fut: Future<Output = Result<(), AppError>>,
    P: Fn(Scheduled, OffsetDateTime) -> PFut,
    PFut: Future<Output = Result<Value, Error>>,
{
    let (page, plan) = (&page, &plan);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| async move {
            let now = OffsetDateTime::now_utc();
            if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                let response =
                    crate::batch::run(batch, concurrency, |job: J, _| page(job, now)).await?;
                return Ok::<Value, Error>(serde_json::to_value(response)?);
            }
            let scheduled = Scheduled::of(&event.payload, &event.context.request_id, now);
            plan(scheduled, now).await
        },
    ))
    .await
}

/// Declares an API function's `App` and its `from_env`: the fields, each beside how it is
/// built from the cold start (`start`: the SDK clients and keys) and the configuration
/// (`config`, of the type named). With a sandbox adapter named after the configuration,
/// the deployment is checked before anything loads and the proof is bound to that name.
///
/// ```ignore
/// shared::api_app! {
///     pub struct App from (start, config: IdentityConfig) {
///         identity: IdentityService<DynamoStore, AwsNotifier> =
///             adapters::identity_service(&start.clients, config),
///     }
/// }
/// ```
#[macro_export]
macro_rules! api_app {
    (
        $(#[$meta:meta])*
        pub struct $app:ident from ($start:ident, $config:ident: $cfg:ty) { $($fields:tt)* }
    ) => {
        $crate::api_app!(@app [$(#[$meta])*] $app, $start, $config: $cfg,
            ($start) = ($crate::entry::ColdStart::load().await?), { $($fields)* });
    };
    (
        $(#[$meta:meta])*
        pub struct $app:ident
            from ($start:ident, $config:ident: $cfg:ty, $sandbox:ident: $adapter:ident)
            { $($fields:tt)* }
    ) => {
        $crate::api_app!(@app [$(#[$meta])*] $app, $start, $config: $cfg,
            (($start, $sandbox)) = ($crate::entry::ColdStart::load_with_sandbox(
                $crate::config::SandboxAdapter::$adapter,
            )
            .await?), { $($fields)* });
    };
    (
        @app [$(#[$meta:meta])*] $app:ident, $start:ident, $config:ident: $cfg:ty,
        ($($bound:tt)*) = ($load:expr),
        { $($(#[$fmeta:meta])* $field:ident: $ty:ty = $value:expr,)* }
    ) => {
        $(#[$meta])*
        pub struct $app {
            $($(#[$fmeta])* $field: $ty,)*
        }

        impl $app {
            /// Built once per cold start: configuration, SDK clients, the services.
            pub async fn from_env() -> ::std::result::Result<Self, $crate::entry::Error> {
                let $($bound)* = $load;
                let $config: $cfg =
                    $crate::config::FromEnv::from_env(&$start.env, $start.hasher.clone())?;
                Ok(Self { $($field: $value,)* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(rfc3339: &str) -> OffsetDateTime {
        OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn a_scheduled_event_is_read_by_its_id_and_time() {
        let now = at("2026-12-06T16:00:00Z");
        let event = json!({"id": "e-1", "detail-type": "Scheduled Event",
                           "time": "2027-01-05T06:00:00Z", "detail": {}});
        assert_eq!(
            Scheduled::of(&event, "req-1", now),
            Scheduled {
                id: "e-1".into(),
                time: at("2027-01-05T06:00:00Z")
            }
        );
        // No id: the invocation's request id; no time, or an unreadable one: now.
        for event in [json!({}), json!({"time": "yesterday"}), json!({"time": 5})] {
            assert_eq!(
                Scheduled::of(&event, "req-1", now),
                Scheduled {
                    id: "req-1".into(),
                    time: now
                }
            );
        }
    }
}
