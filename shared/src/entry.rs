//! How every function starts: logging and metrics, what it reads once per cold start
//! ([`ColdStart`]), and for an API function the loop that routes each request inside a
//! span that names it ([`run_api`]).

use std::future::Future;

use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;
use tracing::Instrument;

use crate::adapters::Clients;
use crate::config::{Deployment, Env, SandboxAdapter, SandboxAllowed};
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

    /// For a function built on a sandbox adapter, the only one built: whether the
    /// deployment allows it is checked first, before any call leaves the function.
    pub async fn load_with_sandbox(
        adapter: SandboxAdapter,
    ) -> Result<(Self, SandboxAllowed), Error> {
        let env = Env::process();
        let sandbox = Deployment::from_env(&env)?.allow_sandbox(adapter)?;
        Ok((Self::load_from(env).await?, sandbox))
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
