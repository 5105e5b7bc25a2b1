//! Routes of the profile: parse, call the profile service, respond.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;
use tracing::Instrument;

use shared::adapters::{self, dynamodb::DynamoStore, sqs::SqsQueue};
use shared::config::{Env, ProfileConfig};
use shared::http::{self as web};
use shared::services::identity::{at, SecurityEvent};
use shared::services::profile::{ProfilePatch, ProfileService, ProfileView, CHECKED_FIELDS};
use shared::AppError;

pub struct App {
    profiles: ProfileService<DynamoStore, SqsQueue>,
}

impl App {
    /// Built once per cold start: configuration, SDK clients, the service.
    pub async fn from_env() -> Result<Self, Error> {
        let config = ProfileConfig::from_env(&Env::process())?;
        let clients = adapters::Clients::load().await;
        Ok(Self {
            profiles: adapters::profile_service(&clients, config),
        })
    }
}

pub async fn handle(app: &App, request: Request) -> Result<Response<Body>, Error> {
    let span = tracing::info_span!(
        "request",
        api_request_id = web::api_request_id(&request).as_deref().unwrap_or("-"),
        route = web::route_key(&request).as_deref().unwrap_or("-"),
    );
    Ok(async { web::respond(route(app, &request).await) }
        .instrument(span)
        .await)
}

async fn route(app: &App, request: &Request) -> Result<Response<Body>, AppError> {
    let now = OffsetDateTime::now_utc();
    match web::route_key(request).as_deref() {
        Some("GET /v1/profile") => {
            let principal = web::principal(request)?;
            let view = app.profiles.get(&principal.account_id).await?;
            Ok(respond(StatusCode::OK, &view))
        }
        Some("PATCH /v1/profile") => patch(app, request, now).await,
        _ => Err(AppError::RouteNotFound),
    }
}

/// The version a client read, from `If-Match: "3"` (weak or strong, quoted or not). A
/// tag we never issued matches no version, and the service answers 412 with the current
/// one.
fn if_match(request: &Request) -> Result<u64, AppError> {
    let raw = request
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .ok_or(AppError::PreconditionRequired)?;
    let tag = raw.trim().trim_start_matches("W/").trim_matches('"');
    Ok(tag.parse().unwrap_or(u64::MAX))
}

async fn patch(
    app: &App,
    request: &Request,
    now: OffsetDateTime,
) -> Result<Response<Body>, AppError> {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let patch = ProfilePatch::parse(&body, now.date())?;
    let expected = if_match(request)?;
    let client = web::client(request);
    let event = SecurityEvent {
        account_id: principal.account_id.clone(),
        kind: "profile_changed",
        at: now.unix_timestamp(),
        ip: client.ip,
        user_agent: client.user_agent,
    };
    let view = app
        .profiles
        .patch(&principal.account_id, expected, &patch, event, now)
        .await?;
    Ok(respond(StatusCode::OK, &view))
}

fn rfc3339(unix: i64) -> Value {
    at(unix)
        .format(&time::format_description::well_known::Rfc3339)
        .map(Value::String)
        .unwrap_or(Value::Null)
}

/// The profile as the API shows it, with its version as the ETag.
fn respond(status: StatusCode, view: &ProfileView) -> Response<Body> {
    let p = &view.profile;
    let mut verification = serde_json::Map::new();
    for field in CHECKED_FIELDS {
        if let Some(s) = p.status(field) {
            let mut entry = json!({ "status": s.state });
            if let Some(t) = s.at {
                entry["at"] = rfc3339(t);
            }
            if let Some(source) = &s.source {
                entry["source"] = json!(source);
            }
            if let Some(reason) = &s.reason {
                entry["reason"] = json!(reason);
            }
            verification.insert(field.to_string(), entry);
        }
    }
    let body = json!({
        "version": view.version,
        "level": view.level,
        "completeness": p.completeness(),
        "personal": p.personal,
        "contacts": {"email": view.email, "phone": view.phone},
        "addresses": p.addresses,
        "documents": p.documents,
        "verification": verification,
    });
    let mut response = web::json_response(status, &body);
    if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", view.version)) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}
