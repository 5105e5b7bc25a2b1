//! Routes of citizens' bills: parse, call the charge service, respond.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use shared::adapters::{self, dynamodb::DynamoStore};
use shared::config::{Env, TableConfig};
use shared::http::{self as web};
use shared::services::charges::{ChargeService, StoredCharge};
use shared::AppError;

const MOSCOW: time::UtcOffset = match time::UtcOffset::from_hms(3, 0, 0) {
    Ok(offset) => offset,
    Err(_) => time::UtcOffset::UTC,
};

pub struct App {
    charges: ChargeService<DynamoStore>,
}

impl App {
    /// Built once per cold start: configuration, SDK clients, the service.
    pub async fn from_env() -> Result<Self, Error> {
        let config = TableConfig::from_env(&Env::process())?;
        let clients = adapters::Clients::load().await;
        Ok(Self {
            charges: adapters::charge_service(&clients, config),
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
        Some("GET /v1/bills/{uin}") => {
            web::principal(request)?;
            // The check digit first: a mistyped UIN is told at once, with no lookup.
            let uin = ChargeService::<DynamoStore>::parse_uin(
                "uin",
                web::path_param(request, "uin").unwrap_or_default(),
            )?;
            let bill = app.charges.lookup(&uin).await?;
            Ok(web::json_response(StatusCode::OK, &bill_view(&bill, now)))
        }
        _ => Err(AppError::RouteNotFound),
    }
}

/// A bill as any holder of its UIN sees it: what to pay and to whom, never who the
/// payers are.
fn bill_view(c: &StoredCharge, now: OffsetDateTime) -> serde_json::Value {
    let b = &c.body;
    json!({
        "uin": c.uin,
        "status": c.status,
        "category": b.category,
        "amount": b.amount,
        // Discounts run to the end of their day in Moscow, where billers date them.
        "amount_due": c.amount_due(now.to_offset(MOSCOW).date()),
        "discount": b.discount,
        "payee": b.payee,
        "purpose": b.purpose,
        "kbk": b.kbk,
        "oktmo": b.oktmo,
        "bill_date": b.bill_date,
        "due_date": b.due_date,
    })
}
