//! Routes of the profile: parse, call the profile service, respond.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, sqs::SqsQueue};
use shared::config::ProfileConfig;
use shared::domain::{requested, IdError};
use shared::entry::{Api, Reply};
use shared::http::{self as web};
use shared::services::household::{
    Child, HeldChild, HouseholdService, SnilsCheck, StoredVehicle, Vehicle,
};
use shared::services::identity::{at, SecurityEvent};
use shared::services::profile::{
    ProfilePatch, ProfileService, ProfileView, CHECKED_FIELDS, UNCHECKED_DOCUMENTS,
};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("GET /v1/profile") => {
                let principal = web::principal(request)?;
                let view = self.profiles.get(&principal.account_id).await?;
                Ok(respond(StatusCode::OK, &view))
            }
            Some("PATCH /v1/profile") => patch(self, request, now).await,
            Some(route) if route.contains("/v1/profile/children") => {
                children(self, request, route, now).await
            }
            Some(route) if route.contains("/v1/profile/vehicles") => {
                vehicles(self, request, route, now).await
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: ProfileConfig) {
        household: HouseholdService<DynamoStore, SqsQueue> =
            adapters::household_service(&start.clients, &config),
        profiles: ProfileService<DynamoStore, SqsQueue> =
            adapters::profile_service(&start.clients, config),
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

async fn patch(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
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
        .patch(
            &principal.account_id,
            expected,
            &patch,
            principal.strength,
            event,
            now,
        )
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
    // Documents no registry checks show `unverified` once entered, and stay so.
    for field in CHECKED_FIELDS.into_iter().chain(UNCHECKED_DOCUMENTS) {
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
            if let Some(code) = &s.code {
                entry["code"] = json!(code);
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

/// The path's id; one of another shape answers as an unknown `what`.
fn id_param<T>(request: &Request, what: &'static str) -> Result<T, AppError>
where
    T: std::str::FromStr<Err = IdError>,
{
    requested(web::path_param(request, "id").unwrap_or_default(), what)
}

fn child_response(status: StatusCode, c: &HeldChild) -> Response<Body> {
    let mut response = web::json_response(status, &child_view(c));
    if let Some(record) = &c.record {
        if let Ok(tag) = HeaderValue::from_str(&format!("\"{}\"", record.version)) {
            response.headers_mut().insert(header::ETAG, tag);
        }
    }
    response
}

/// A confirmed parent sees the shared record; anybody else only what they entered and
/// where the check stands, so that nothing tells whether somebody else holds the child.
fn child_view(c: &HeldChild) -> Value {
    let mut view = match &c.record {
        Some(record) => {
            let mut view = json!(record.child);
            view["version"] = json!(record.version);
            // Whether the other parent holds the child too; who that is stays private.
            view["shared_with_another_parent"] = json!(record.verified_parents.len() > 1);
            if record.child.snils.is_some() {
                view["snils_status"] = json!(match record.snils {
                    SnilsCheck::Verified => "verified",
                    SnilsCheck::Pending { .. } => "pending",
                    SnilsCheck::None => "unverified",
                });
            }
            view
        }
        None => json!(c.link.claim),
    };
    view["id"] = json!(c.link.id);
    view["status"] = json!(c.link.state.as_str());
    if let Some(reason) = &c.link.reason {
        view["reason"] = json!(reason);
    }
    view
}

/// A list of the account's children or vehicles: 200 with `{field: [view of each]}`.
fn list_response<T>(field: &str, items: &[T], view: fn(&T) -> Value) -> Response<Body> {
    let list: Vec<Value> = items.iter().map(view).collect();
    web::json_response(StatusCode::OK, &json!({ field: list }))
}

fn vehicle_view(v: &StoredVehicle) -> Value {
    let mut view = json!(v.vehicle);
    view["id"] = json!(v.id);
    view["created_at"] = rfc3339(v.created_at);
    view
}

async fn children(app: &App, request: &Request, route: &str, now: OffsetDateTime) -> Reply {
    let account = web::principal(request)?.account_id;
    match route {
        "GET /v1/profile/children" => {
            let children = app.household.children(&account).await?;
            Ok(list_response("children", &children, child_view))
        }
        "POST /v1/profile/children" => {
            let child = Child::parse(&web::json_object(request)?, now.date())?;
            let held = app.household.add_child(&account, &child, now).await?;
            Ok(child_response(StatusCode::ACCEPTED, &held))
        }
        "GET /v1/profile/children/{id}" => {
            let stored = app
                .household
                .child(&account, &id_param(request, "child")?)
                .await?;
            Ok(child_response(StatusCode::OK, &stored))
        }
        "PATCH /v1/profile/children/{id}" => {
            let body = web::json_object(request)?;
            let expected = if_match(request)?;
            let stored = app
                .household
                .update_child(&account, &id_param(request, "child")?, expected, &body)
                .await?;
            Ok(child_response(StatusCode::OK, &stored))
        }
        "DELETE /v1/profile/children/{id}" => {
            app.household
                .remove_child(&account, &id_param(request, "child")?)
                .await?;
            Ok(web::no_content())
        }
        _ => Err(AppError::RouteNotFound),
    }
}

async fn vehicles(app: &App, request: &Request, route: &str, now: OffsetDateTime) -> Reply {
    let account = web::principal(request)?.account_id;
    match route {
        "GET /v1/profile/vehicles" => {
            let vehicles = app.household.vehicles(&account).await?;
            Ok(list_response("vehicles", &vehicles, vehicle_view))
        }
        "POST /v1/profile/vehicles" => {
            let vehicle = Vehicle::parse(&web::json_object(request)?)?;
            let stored = app.household.add_vehicle(&account, vehicle, now).await?;
            Ok(web::json_response(
                StatusCode::CREATED,
                &vehicle_view(&stored),
            ))
        }
        "GET /v1/profile/vehicles/{id}" => {
            let stored = app
                .household
                .vehicle(&account, &id_param(request, "vehicle")?)
                .await?;
            Ok(web::json_response(StatusCode::OK, &vehicle_view(&stored)))
        }
        "PATCH /v1/profile/vehicles/{id}" => {
            let body = web::json_object(request)?;
            let stored = app
                .household
                .update_vehicle(&account, &id_param(request, "vehicle")?, &body)
                .await?;
            Ok(web::json_response(StatusCode::OK, &vehicle_view(&stored)))
        }
        "DELETE /v1/profile/vehicles/{id}" => {
            app.household
                .remove_vehicle(&account, &id_param(request, "vehicle")?)
                .await?;
            Ok(web::no_content())
        }
        _ => Err(AppError::RouteNotFound),
    }
}
