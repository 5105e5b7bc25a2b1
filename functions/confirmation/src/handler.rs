//! Routes of identity confirmation: parse, call the confirmation service, respond.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, sqs::SqsPostOffice};
use shared::config::ConfirmationConfig;
use shared::domain::{PassportNumber, PassportSeries, Snils};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::services::confirmation::{ConfirmationService, MAX_ADDRESS_CHARS};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/operator/confirmations") => in_person(self, request, now).await,
            Some("POST /v1/account/confirmation-letters") => letter(self, request, now).await,
            Some("POST /v1/account/confirmation-letters/confirm") => {
                by_letter(self, request, now).await
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: ConfirmationConfig) {
        confirmations: ConfirmationService<DynamoStore, SqsPostOffice> =
            adapters::confirmation_service(&start.clients, config),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `POST /v1/operator/confirmations`: the operator types the SNILS and the passport the
/// citizen shows at the desk.
async fn in_person(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let operator = web::operator(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let snils = f
        .required_str("snils")
        .and_then(|raw| Snils::parse("snils", raw).map_err(|e| f.reject(e)).ok());
    let series = f.required_str("passport_series").and_then(|raw| {
        PassportSeries::parse("passport_series", raw)
            .map_err(|e| f.reject(e))
            .ok()
    });
    let number = f.required_str("passport_number").and_then(|raw| {
        PassportNumber::parse("passport_number", raw)
            .map_err(|e| f.reject(e))
            .ok()
    });
    let (snils, series, number) = f.finish_with(
        &["snils", "passport_series", "passport_number"],
        (snils, series, number),
    )?;
    let ip = web::client_ip(request).unwrap_or_default();
    let account = app
        .confirmations
        .confirm_in_person(
            &operator,
            &snils,
            series.as_str(),
            number.as_str(),
            &ip,
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"account_id": account.id, "level": account.level}),
    ))
}

/// `POST /v1/account/confirmation-letters`: a letter with a code to a postal address.
async fn letter(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let address = f.required_str("address").map(str::trim);
    if address.is_some_and(|a| a.chars().count() < 10 || a.chars().count() > MAX_ADDRESS_CHARS) {
        f.reject(FieldError::new(
            "address",
            "address_length",
            format!("Адрес — от 10 до {MAX_ADDRESS_CHARS} символов, с индексом"),
        ));
    }
    if address.is_some_and(|a| a.chars().any(char::is_control)) {
        f.reject(FieldError::new(
            "address",
            "invalid_characters",
            "Недопустимые символы",
        ));
    }
    let address = f.finish_with(&["address"], address)?;
    let requested = app
        .confirmations
        .request_letter(&principal.account_id, address, now)
        .await?;
    Ok(web::json_response(
        StatusCode::ACCEPTED,
        &json!({
            "requested_at": rfc3339(requested.requested_at),
            "code_expires_at": rfc3339(requested.expires_at),
            "next_letter_available_at": rfc3339(requested.next_letter_at),
        }),
    ))
}

/// `POST /v1/account/confirmation-letters/confirm`: the code from the letter.
async fn by_letter(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let code = f.required_str("code");
    let code = f.finish_with(&["code"], code)?;
    let client = web::client(request);
    app.confirmations
        .confirm_by_letter(
            &principal.account_id,
            code,
            &client.ip,
            &client.user_agent,
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"level": "confirmed"}),
    ))
}
