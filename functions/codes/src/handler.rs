//! Routes of the code flow: parse the request, call the service, shape the response.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier};
use shared::config::CodesConfig;
use shared::domain::{Channel, Destination, Purpose};
use shared::entry::{Api, Reply};
use shared::http::{self as web, Fields};
use shared::services::codes::{check_code_format, parse_code_id, CodeService, SendCode};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/codes") => send(self, request, now).await,
            Some("POST /v1/codes/{id}/verify") => verify(self, request, now).await,
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: CodesConfig) {
        codes: CodeService<DynamoStore, AwsNotifier> =
            adapters::code_service(&start.clients, config),
    }
}

async fn send(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    let mut fields = Fields::new(&body);
    let channel = fields.required_str("channel");
    let destination = fields.required_str("destination");
    let purpose = fields.required_str("purpose");

    let channel = channel.and_then(|c| {
        Channel::parse("channel", c)
            .map_err(|e| fields.reject(e))
            .ok()
    });
    let purpose = purpose.and_then(|p| {
        Purpose::parse("purpose", p)
            .map_err(|e| fields.reject(e))
            .ok()
    });
    // The destination can only be checked once the channel says what it should be.
    let destination = match (channel, destination) {
        (Some(channel), Some(raw)) => Destination::parse("destination", channel, raw)
            .map_err(|e| fields.reject(e))
            .ok(),
        _ => None,
    };
    let (destination, purpose) = fields.finish_with(
        &["channel", "destination", "purpose"],
        (destination, purpose),
    )?;

    let sent = app
        .codes
        .send(
            SendCode {
                destination,
                purpose,
                client_ip: web::client_ip(request).unwrap_or_default(),
                deliver: true,
            },
            now,
        )
        .await?;
    Ok(web::code_sent(&sent))
}

#[derive(Serialize)]
struct TokenBody<'a> {
    verification_token: &'a str,
    expires_at: String,
}

async fn verify(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let id = web::path_param(request, "id").unwrap_or_default();
    let body = web::json_object(request)?;
    let mut fields = Fields::new(&body);
    let code = fields.required_str("code");
    fields.finish(&["code"])?;
    let code = code.unwrap_or_default();
    let code = code.trim();
    // The answer's format is checked before the id, as the service does.
    check_code_format(code)?;
    let id = parse_code_id(id)?;
    let issued = app.codes.verify(&id, code, now).await?;
    let expires_at = issued
        .expires_at
        .format(&Rfc3339)
        .map_err(|e| AppError::Internal(format!("formatting expiry: {e}")))?;
    Ok(web::json_response(
        StatusCode::OK,
        &TokenBody {
            verification_token: issued.token.expose(),
            expires_at,
        },
    ))
}
