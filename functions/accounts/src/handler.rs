//! Routes of the account: parse the request, call the identity service, shape the response.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;
use time::OffsetDateTime;
use tracing::Instrument;

use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier};
use shared::config::{Env, IdentityConfig};
use shared::domain::{check_new_password, Email, PersonName, Phone};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::identity::{IdentityService, Registration};
use shared::AppError;

pub struct App {
    identity: IdentityService<DynamoStore, AwsNotifier>,
}

impl App {
    /// Built once per cold start: configuration, SDK clients, the service.
    pub async fn from_env() -> Result<Self, Error> {
        let config = IdentityConfig::from_env(&Env::process())?;
        Ok(Self {
            identity: adapters::identity_service(config).await,
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
        Some("POST /v1/accounts") => register(app, request, now).await,
        _ => Err(AppError::RouteNotFound),
    }
}

const QUESTION_CHARS: std::ops::RangeInclusive<usize> = 3..=200;
const ANSWER_CHARS: std::ops::RangeInclusive<usize> = 2..=100;
const MAX_TOKEN_LEN: usize = 128;

fn text_between(
    fields: &mut Fields<'_>,
    name: &str,
    value: Option<&str>,
    chars: std::ops::RangeInclusive<usize>,
) -> Option<String> {
    let value = value?.split_whitespace().collect::<Vec<_>>().join(" ");
    if chars.contains(&value.chars().count()) {
        Some(value)
    } else {
        fields.reject(FieldError::new(
            name,
            "invalid_length",
            format!("От {} до {} символов", chars.start(), chars.end()),
        ));
        None
    }
}

fn verification_token(
    fields: &mut Fields<'_>,
    name: &str,
    value: Option<&str>,
) -> Option<Secret<String>> {
    let value = value?.trim();
    if value.starts_with("vt_") && value.len() <= MAX_TOKEN_LEN {
        Some(Secret::new(value.to_string()))
    } else {
        fields.reject(FieldError::new(
            name,
            "verification_token_invalid",
            "Подтверждение недействительно или истекло. Запросите код ещё раз",
        ));
        None
    }
}

const REGISTRATION_FIELDS: [&str; 10] = [
    "last_name",
    "first_name",
    "middle_name",
    "email",
    "phone",
    "password",
    "security_question",
    "security_answer",
    "email_verification_token",
    "phone_verification_token",
];

fn parse_registration(
    body: &serde_json::Map<String, serde_json::Value>,
) -> Result<Registration, AppError> {
    let mut f = Fields::new(body);
    let name = |f: &mut Fields<'_>, field: &str, raw: Option<&str>| {
        raw.and_then(|v| PersonName::parse(field, v).map_err(|e| f.reject(e)).ok())
    };
    let raw = f.required_str("last_name");
    let last_name = name(&mut f, "last_name", raw);
    let raw = f.required_str("first_name");
    let first_name = name(&mut f, "first_name", raw);
    let raw = f
        .optional_str("middle_name")
        .filter(|v| !v.trim().is_empty());
    let middle_name = name(&mut f, "middle_name", raw);
    let raw = f.required_str("email");
    let email = raw.and_then(|v| Email::parse("email", v).map_err(|e| f.reject(e)).ok());
    let raw = f.required_str("phone");
    let phone = raw.and_then(|v| Phone::parse("phone", v).map_err(|e| f.reject(e)).ok());
    let password = f
        .required_str("password")
        .map(|p| Secret::new(p.to_string()));
    if let Some(password) = &password {
        let own: Vec<&str> = [
            body.get("email").and_then(|v| v.as_str()),
            email.as_ref().map(Email::as_str),
            body.get("phone").and_then(|v| v.as_str()),
            phone.as_ref().map(Phone::e164),
        ]
        .into_iter()
        .flatten()
        .collect();
        if let Err(e) = check_new_password("password", password, &own) {
            f.reject(e);
        }
    }
    let raw = f.required_str("security_question");
    let security_question = text_between(&mut f, "security_question", raw, QUESTION_CHARS);
    let raw = f.required_str("security_answer");
    let security_answer =
        text_between(&mut f, "security_answer", raw, ANSWER_CHARS).map(Secret::new);
    let raw = f.required_str("email_verification_token");
    let email_token = verification_token(&mut f, "email_verification_token", raw);
    let raw = f.required_str("phone_verification_token");
    let phone_token = verification_token(&mut f, "phone_verification_token", raw);
    f.finish(&REGISTRATION_FIELDS)?;
    match (
        last_name,
        first_name,
        email,
        phone,
        password,
        security_question,
        security_answer,
        email_token,
        phone_token,
    ) {
        (
            Some(last_name),
            Some(first_name),
            Some(email),
            Some(phone),
            Some(password),
            Some(security_question),
            Some(security_answer),
            Some(email_verification_token),
            Some(phone_verification_token),
        ) => Ok(Registration {
            last_name,
            first_name,
            middle_name,
            email,
            phone,
            password,
            security_question,
            security_answer,
            email_verification_token,
            phone_verification_token,
        }),
        _ => Err(AppError::Internal("validated fields missing".into())),
    }
}

async fn register(
    app: &App,
    request: &Request,
    now: OffsetDateTime,
) -> Result<Response<Body>, AppError> {
    let body = web::json_object(request)?;
    let registration = parse_registration(&body)?;
    let created = app
        .identity
        .register(registration, &web::client(request), now)
        .await?;
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({"account_id": created.account_id, "level": created.level}),
    ))
}
