//! How every function starts: logging and metrics, what it reads once per cold start
//! ([`ColdStart`]), and for an API function the loop that routes each request inside a
//! span that names it ([`run_api`]).

use std::future::Future;

use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier, Clients};
use crate::config::{CodesConfig, Deployment, Env, IdentityConfig, SandboxAdapter, SandboxAllowed};
use crate::crypto::Hasher;
use crate::http as web;
use crate::services::codes::CodeService;
use crate::services::identity::IdentityService;
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

    /// The identity and code services, for the functions that need both (login, recovery).
    #[allow(clippy::type_complexity)]
    pub fn identity_and_codes(
        &self,
    ) -> Result<
        (
            IdentityService<DynamoStore, AwsNotifier>,
            CodeService<DynamoStore, AwsNotifier>,
        ),
        Error,
    > {
        let identity = IdentityConfig::from_env(&self.env, self.hasher.clone())?;
        let codes = CodesConfig::from_env(&self.env, self.hasher.clone())?;
        Ok((
            adapters::identity_service(&self.clients, identity),
            adapters::code_service(&self.clients, codes),
        ))
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

/// An API function: built once per cold start, then a route per request.
pub trait Api: Sync {
    /// The response to one request, or the error [`web::respond`] turns into one.
    fn route(
        &self,
        request: &Request,
    ) -> impl Future<Output = Result<Response<Body>, AppError>> + Send;
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
    let span = tracing::info_span!(
        "request",
        api_request_id = web::api_request_id(&request).as_deref().unwrap_or("-"),
        route = web::route_key(&request).as_deref().unwrap_or("-"),
    );
    Ok(async { web::respond(app.route(&request).await) }
        .instrument(span)
        .await)
}
