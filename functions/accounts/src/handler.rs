//! Routes of the account: parse the request, call the identity service, shape the response.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::json;
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier};
use shared::config::IdentityConfig;
use shared::domain::{check_new_password, Channel, Destination, Email, PersonName, Phone};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::identity::{GuardedRequest, IdentityService, Registration, SecuritySettings};
use shared::services::organisations::LeaveOrganisations;
use shared::AppError;

// A child module, so that it reaches the app's services.
#[path = "factors.rs"]
mod factors;
#[path = "passkeys.rs"]
mod passkeys;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/accounts") => register(self, request, now).await,
            Some("GET /v1/account") => profile(self, request).await,
            Some("PUT /v1/account/password") => change_password(self, request, now).await,
            Some("PUT /v1/account/security-question") => change_question(self, request, now).await,
            Some("PUT /v1/account/email") => {
                change_contact(self, request, Channel::Email, now).await
            }
            Some("PUT /v1/account/phone") => change_contact(self, request, Channel::Sms, now).await,
            Some("DELETE /v1/account") => delete(self, request, now).await,
            Some("PUT /v1/account/security-settings") => {
                security_settings(self, request, now).await
            }
            Some("POST /v1/account/factors/passkey/options") => {
                passkeys::options(self, request, now).await
            }
            Some("POST /v1/account/factors/passkey") => {
                passkeys::register(self, request, now).await
            }
            other => factors::route(self, other, request, now)
                .await
                .unwrap_or(Err(AppError::RouteNotFound)),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: IdentityConfig) {
        /// The table as the organisations a deleted account leaves see it.
        store: DynamoStore = start.clients.store(config.table_name.clone()),
        identity: IdentityService<DynamoStore, AwsNotifier> =
            adapters::identity_service(&start.clients, config),
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
    let value = shared::domain::nfc(value?)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if let Err(invisible) = shared::domain::refuse_invisible(name, &value) {
        fields.reject(invisible);
        None
    } else if chars.contains(&value.chars().count()) {
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
    // Every `?` here is a value the checks above leave present once `finish` passed.
    let registration = (|| {
        Some(Registration {
            last_name: last_name?,
            first_name: first_name?,
            middle_name,
            email: email?,
            phone: phone?,
            password: password?,
            security_question: security_question?,
            security_answer: security_answer?,
            email_verification_token: email_token?,
            phone_verification_token: phone_token?,
        })
    })();
    f.finish_with(&REGISTRATION_FIELDS, registration)
}

async fn register(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
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

/// The current password of a signed-in citizen, required for every sensitive change.
fn current_password(f: &mut Fields<'_>) -> Option<Secret<String>> {
    let password = f.required_str("password")?;
    if password.is_empty() || password.chars().count() > shared::domain::MAX_PASSWORD_CHARS {
        f.reject(FieldError::new(
            "password",
            "wrong_password",
            "Неверный пароль",
        ));
        return None;
    }
    Some(Secret::new(password.to_string()))
}

/// The body of a sensitive change: the current password, then what `read` takes of the
/// change's own fields; any field but `known` is refused, and every error is told at
/// once. Each change of the account's credentials and contacts is asked for so.
fn password_and<T>(
    request: &Request,
    known: &[&str],
    read: impl FnOnce(&mut Fields<'_>) -> Option<T>,
) -> Result<(Secret<String>, T), AppError> {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let password = current_password(&mut f);
    let change = read(&mut f);
    f.finish_with(known, (password, change))
}

async fn profile(app: &App, request: &Request) -> Reply {
    let principal = web::principal(request)?;
    let a = app.identity.account(&principal).await?;
    let created_at = shared::services::identity::at(a.created_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(web::json_response(
        StatusCode::OK,
        &json!({
            "account_id": a.id,
            "last_name": a.last_name,
            "first_name": a.first_name,
            "middle_name": a.middle_name,
            "email": a.email,
            "phone": a.phone,
            "level": a.level,
            "security_question": a.security_question,
            "two_step_login": a.two_step_login,
            "new_device_alerts": a.new_device_alerts,
            "created_at": created_at,
        }),
    ))
}

async fn change_password(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let (password, new_password) = password_and(request, &["password", "new_password"], |f| {
        f.required_str("new_password")
            .map(|p| Secret::new(p.to_string()))
    })?;
    app.identity
        .change_password(
            GuardedRequest::new(&principal, &password, &web::client(request), now),
            new_password,
        )
        .await?;
    Ok(web::no_content())
}

async fn change_question(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let known = ["password", "security_question", "security_answer"];
    let (password, (question, answer)) = password_and(request, &known, |f| {
        let raw = f.required_str("security_question");
        let question = text_between(f, "security_question", raw, QUESTION_CHARS);
        let raw = f.required_str("security_answer");
        let answer = text_between(f, "security_answer", raw, ANSWER_CHARS).map(Secret::new);
        question.zip(answer)
    })?;
    app.identity
        .change_security_question(
            GuardedRequest::new(&principal, &password, &web::client(request), now),
            &question,
            &answer,
        )
        .await?;
    Ok(web::no_content())
}

async fn change_contact(
    app: &App,
    request: &Request,
    channel: Channel,
    now: OffsetDateTime,
) -> Reply {
    let principal = web::principal(request)?;
    let field = match channel {
        Channel::Email => "email",
        Channel::Sms => "phone",
    };
    let known = ["password", field, "verification_token"];
    let (password, (contact, token)) = password_and(request, &known, |f| {
        let raw = f.required_str(field);
        let contact = raw.and_then(|v| {
            Destination::parse(field, channel, v)
                .map_err(|e| f.reject(e))
                .ok()
        });
        let raw = f.required_str("verification_token");
        let token = verification_token(f, "verification_token", raw);
        contact.zip(token)
    })?;
    app.identity
        .change_contact(
            GuardedRequest::new(&principal, &password, &web::client(request), now),
            contact,
            &token,
        )
        .await?;
    Ok(web::no_content())
}

async fn delete(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let (password, ()) = password_and(request, &["password"], |_| Some(()))?;
    let client = web::client(request);
    let request = GuardedRequest::new(&principal, &password, &client, now);
    app.identity
        .delete_account(request, &LeaveOrganisations(&app.store))
        .await?;
    Ok(web::no_content())
}

async fn security_settings(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let password = current_password(&mut f);
    let settings = SecuritySettings {
        two_step_login: web::optional_bool(&mut f, "two_step_login"),
        new_device_alerts: web::optional_bool(&mut f, "new_device_alerts"),
    };
    let given = |name: &str| body.get(name).is_some_and(|v| !v.is_null());
    if !given("two_step_login") && !given("new_device_alerts") {
        f.reject(FieldError::new(
            "two_step_login",
            "nothing_to_change",
            "Укажите, какую настройку изменить",
        ));
    }
    let password = f.finish_with(
        &["password", "two_step_login", "new_device_alerts"],
        password,
    )?;
    let effective = app
        .identity
        .change_security_settings(
            GuardedRequest::new(&principal, &password, &web::client(request), now),
            settings,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({
            "two_step_login": effective.two_step_login,
            "new_device_alerts": effective.new_device_alerts,
        }),
    ))
}
