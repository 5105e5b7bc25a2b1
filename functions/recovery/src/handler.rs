//! Routes of password recovery.
//!
//! `POST /v1/recovery` answers the same whether or not an account has the login: for an
//! unknown login a code is recorded exactly as for a real one (same limits, same id
//! behaviour on verification), only nothing is sent.

use lambda_http::Request;
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier};
use shared::config::{CodesConfig, IdentityConfig};
use shared::domain::{Channel, Destination, Purpose, MAX_PASSWORD_CHARS};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::codes::{CodeService, SendCode};
use shared::services::identity::IdentityService;
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/recovery") => start(self, request, now).await,
            Some("POST /v1/recovery/complete") => complete(self, request, now).await,
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: (IdentityConfig, CodesConfig)) {
        identity: IdentityService<DynamoStore, AwsNotifier> =
            adapters::identity_service(&start.clients, config.0),
        codes: CodeService<DynamoStore, AwsNotifier> =
            adapters::code_service(&start.clients, config.1),
    }
}

/// A login as recovery takes it: an e-mail address, a mobile phone or a SNILS; the
/// destination a code is recorded against if no account has that login.
fn login_destination(app: &App, f: &mut Fields<'_>, login: Option<&str>) -> Option<Destination> {
    let login = login?.trim();
    if let Some(destination) = app.identity.recovery_stand_in(login) {
        return Some(destination);
    }
    let channel = if login.contains('@') {
        Channel::Email
    } else {
        Channel::Sms
    };
    // Not a login: the error says what a phone or e-mail should look like.
    Destination::parse("login", channel, login)
        .map_err(|e| f.reject(e))
        .ok()
}

async fn start(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let raw = f.required_str("login");
    let typed = login_destination(app, &mut f, raw);
    let (raw, typed) = f.finish_with(&["login"], (raw, typed))?;
    let real = app.identity.recovery_destination(raw).await?;
    let deliver = real.is_some();
    let sent = app
        .codes
        .send(
            SendCode {
                destination: real.unwrap_or(typed),
                purpose: Purpose::Recovery,
                client_ip: web::client_ip(request).unwrap_or_default(),
                deliver,
            },
            now,
        )
        .await?;
    Ok(web::code_sent(&sent))
}

async fn complete(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let raw = f.required_str("login");
    let typed = login_destination(app, &mut f, raw);
    let token = f.required_str("verification_token");
    if token.is_some_and(|t| !t.starts_with("vt_") || t.len() > 128) {
        f.reject(FieldError::new(
            "verification_token",
            "verification_token_invalid",
            "Подтверждение недействительно или истекло. Запросите код ещё раз",
        ));
    }
    let answer = f.required_str("security_answer");
    if answer.is_some_and(|a| a.trim().is_empty() || a.chars().count() > 100) {
        f.reject(FieldError::new(
            "security_answer",
            "wrong_security_answer",
            "Неверный ответ на контрольный вопрос",
        ));
    }
    let new_password = f.required_str("new_password");
    if new_password.is_some_and(|p| p.chars().count() > MAX_PASSWORD_CHARS) {
        f.reject(FieldError::new(
            "new_password",
            "password_length",
            format!("Пароль должен быть не длиннее {MAX_PASSWORD_CHARS} символов"),
        ));
    }
    let known = [
        "login",
        "verification_token",
        "security_answer",
        "new_password",
    ];
    let (login, _, token, answer, new_password) =
        f.finish_with(&known, (raw, typed, token, answer, new_password))?;
    app.identity
        .complete_recovery(
            login,
            &Secret::new(token.trim().to_string()),
            &Secret::new(answer.to_string()),
            Secret::new(new_password.to_string()),
            &web::client(request),
            now,
        )
        .await?;
    Ok(web::no_content())
}
