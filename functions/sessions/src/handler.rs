//! Routes of sessions and the security log: parse, call the identity service, respond.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier};
use shared::config::{CodesConfig, IdentityConfig};
use shared::domain::{SessionId, MAX_PASSWORD_CHARS};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::codes::{check_code_format, parse_code_id, CodeService};
use shared::services::identity::{
    at, CodeAnswer, IdentityService, IssuedSession, Login, LoginOutcome, SecondFactor,
};
use shared::AppError;

// A child module, so that it reaches the app's services.
#[path = "passkeys.rs"]
mod passkeys;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/sessions") => login(self, request, now).await,
            Some("POST /v1/sessions/two-step") => two_step(self, request, now).await,
            Some("POST /v1/sessions/passkey/options") => {
                passkeys::options(self, request, now).await
            }
            Some("POST /v1/sessions/passkey") => passkeys::login(self, request, now).await,
            Some("POST /v1/sessions/password-change") => password_change(self, request, now).await,
            Some("GET /v1/sessions") => list(self, request, now).await,
            Some("DELETE /v1/sessions/current") => {
                let principal = web::principal(request)?;
                revoke(self, request, &principal.session_id.clone(), principal, now).await
            }
            Some("DELETE /v1/sessions/{id}") => {
                let principal = web::principal(request)?;
                // An id of another shape names no session.
                let id = SessionId::parse(web::path_param(request, "id").unwrap_or_default())
                    .map_err(|_| AppError::SessionNotFound)?;
                revoke(self, request, &id, principal, now).await
            }
            Some("GET /v1/security-events") => events(self, request).await,
            Some("POST /v1/sessions/current/step-up") => start_step_up(self, request, now).await,
            Some("POST /v1/sessions/current/step-up/verify") => {
                complete_step_up(self, request, now).await
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: (IdentityConfig, CodesConfig)) {
        identity: IdentityService<DynamoStore, AwsNotifier> =
            adapters::identity_service(&start.clients, config.0),
        /// Sends and checks the SMS codes of two-step login.
        codes: CodeService<DynamoStore, AwsNotifier> =
            adapters::code_service(&start.clients, config.1),
    }
}

/// Longest login worth looking up: an e-mail address at most.
const MAX_LOGIN_LEN: usize = 254;

fn rfc3339(unix: i64) -> String {
    at(unix)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn login(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let login = f.required_str("login");
    let password = f.required_str("password");
    let foreign_computer = web::optional_bool(&mut f, "foreign_computer").unwrap_or(false);
    let second_factor = f.optional_str("second_factor").and_then(|raw| {
        match SecondFactor::parse("second_factor", raw) {
            Ok(factor) => Some(factor),
            Err(e) => {
                f.reject(e);
                None
            }
        }
    });
    if login.is_some_and(|l| l.trim().is_empty() || l.len() > MAX_LOGIN_LEN) {
        f.reject(FieldError::new(
            "login",
            "invalid_login",
            "Введите телефон, почту или СНИЛС",
        ));
    }
    if password.is_some_and(|p| p.is_empty() || p.chars().count() > MAX_PASSWORD_CHARS) {
        f.reject(FieldError::new(
            "password",
            "invalid_password",
            "Введите пароль",
        ));
    }
    let (login, password) = f.finish_with(
        &["login", "password", "foreign_computer", "second_factor"],
        (login, password),
    )?;
    let outcome = app
        .identity
        .login(
            Login {
                login: login.to_string(),
                password: Secret::new(password.to_string()),
                foreign_computer,
                second_factor,
            },
            &web::client(request),
            now,
            &app.codes,
        )
        .await?;
    match outcome {
        LoginOutcome::Session(session) => Ok(created(&session)),
        LoginOutcome::CodeRequired(challenge) => {
            #[derive(Serialize)]
            struct CodeRequired<'a> {
                two_step_required: bool,
                challenge_token: &'a str,
                second_factor: &'static str,
                available_factors: Vec<&'static str>,
                /// For a passkey: the options for `navigator.credentials.get`.
                #[serde(skip_serializing_if = "Option::is_none")]
                passkey_options: Option<serde_json::Value>,
                #[serde(flatten)]
                times: CodeTimes,
            }
            Ok(web::json_response(
                StatusCode::ACCEPTED,
                &CodeRequired {
                    two_step_required: true,
                    challenge_token: challenge.token.expose(),
                    second_factor: challenge.second_factor.as_str(),
                    available_factors: challenge.available.iter().map(|f| f.as_str()).collect(),
                    passkey_options: challenge.passkey_options,
                    times: CodeTimes {
                        expires_at: challenge.expires_at,
                        resend_available_at: challenge.resend_available_at,
                    },
                },
            ))
        }
        LoginOutcome::PasswordChangeRequired(challenge) => {
            #[derive(Serialize)]
            struct PasswordChangeRequired<'a> {
                password_change_required: bool,
                challenge_token: &'a str,
                #[serde(with = "time::serde::rfc3339")]
                expires_at: OffsetDateTime,
            }
            Ok(web::json_response(
                StatusCode::ACCEPTED,
                &PasswordChangeRequired {
                    password_change_required: true,
                    challenge_token: challenge.token.expose(),
                    expires_at: challenge.expires_at,
                },
            ))
        }
    }
}

/// When a code just sent expires and when another may be asked for: the answers that
/// send a code (a two-step login, a step-up) end with these two fields.
#[derive(Serialize)]
struct CodeTimes {
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    resend_available_at: OffsetDateTime,
}

/// The longest `challenge_token` a body may carry (docs/openapi.yaml, `maxLength`).
const MAX_CHALLENGE_TOKEN_CHARS: usize = 128;

/// `POST /v1/sessions/two-step`: the SMS code, the app's code or a backup code that
/// completes a two-step login; or a passkey's assertion (`credential`).
async fn two_step(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    if body.contains_key("credential") {
        return passkeys::two_step(app, request, &body, now).await;
    }
    let mut f = Fields::new(&body);
    let challenge = challenge_field(&mut f);
    // Codes are typed by hand: stray spaces around them are no error.
    let code = f.required_str("code").map(str::trim);
    let (challenge, code) = f.finish_with(&["challenge_token", "code"], (challenge, code))?;
    let session = app
        .identity
        .complete_two_step(
            &Secret::new(challenge.to_string()),
            CodeAnswer {
                code,
                client: &web::client(request),
                now,
                codes: &app.codes,
            },
        )
        .await?;
    Ok(created(&session))
}

/// A `challenge_token` of a body, refused at its field when empty or too long.
pub(crate) fn challenge_field<'a>(f: &mut Fields<'a>) -> Option<&'a str> {
    f.required_str_within(
        "challenge_token",
        MAX_CHALLENGE_TOKEN_CHARS,
        "invalid_challenge_token",
        "Войдите снова",
    )
}

/// `POST /v1/sessions/password-change`: the first login with a password given on paper
/// at a service centre ends with the citizen's own password, which opens the session.
async fn password_change(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let challenge = challenge_field(&mut f);
    let new_password = f.required_str("new_password");
    if new_password.is_some_and(|p| p.chars().count() > MAX_PASSWORD_CHARS) {
        f.reject(FieldError::new(
            "new_password",
            "password_length",
            "Пароль слишком длинный",
        ));
    }
    let (challenge, new_password) = f.finish_with(
        &["challenge_token", "new_password"],
        (challenge, new_password),
    )?;
    let session = app
        .identity
        .complete_password_change(
            &Secret::new(challenge.to_string()),
            &Secret::new(new_password.to_string()),
            &web::client(request),
            now,
        )
        .await?;
    Ok(created(&session))
}

/// `POST /v1/sessions/current/step-up`: a code to the account's phone, to prove presence.
async fn start_step_up(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let sent = app
        .identity
        .start_step_up(&principal, &web::client(request), now, &app.codes)
        .await?;
    #[derive(Serialize)]
    struct Sent<'a> {
        id: &'a str,
        #[serde(flatten)]
        times: CodeTimes,
    }
    Ok(web::json_response(
        StatusCode::ACCEPTED,
        &Sent {
            id: &sent.id,
            times: CodeTimes {
                expires_at: sent.expires_at,
                resend_available_at: sent.resend_available_at,
            },
        },
    ))
}

/// `POST /v1/sessions/current/step-up/verify` `{id, code}`: the session has proved
/// presence until `proven_until`.
async fn complete_step_up(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let id = f.required_str("id");
    // Codes are typed by hand: stray spaces around them are no error.
    let code = f.required_str("code").map(str::trim);
    let (id, code) = f.finish_with(&["id", "code"], (id, code))?;
    // The answer's format is checked before the id, as the code service does.
    check_code_format(code)?;
    let id = parse_code_id(id)?;
    let until = app
        .identity
        .complete_step_up(
            &principal,
            &id,
            CodeAnswer {
                code,
                client: &web::client(request),
                now,
                codes: &app.codes,
            },
        )
        .await?;
    #[derive(Serialize)]
    struct Proven {
        #[serde(with = "time::serde::rfc3339")]
        proven_until: OffsetDateTime,
    }
    Ok(web::json_response(
        StatusCode::OK,
        &Proven {
            proven_until: until,
        },
    ))
}

/// The answer to a completed login.
pub(crate) fn created(session: &IssuedSession) -> Response<Body> {
    #[derive(Serialize)]
    struct Created<'a> {
        session_id: &'a str,
        token: &'a str,
        token_type: &'static str,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        absolute_expires_at: OffsetDateTime,
    }
    web::json_response(
        StatusCode::CREATED,
        &Created {
            session_id: &session.id,
            token: session.token.expose(),
            token_type: "Bearer",
            expires_at: session.expires_at,
            absolute_expires_at: session.absolute_expires_at,
        },
    )
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    current: bool,
    foreign_computer: bool,
    created_at: String,
    last_seen_at: String,
    expires_at: String,
    ip: String,
    device: String,
}

async fn list(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let sessions = app.identity.sessions(&principal.account_id, now).await?;
    let views: Vec<SessionView> = sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.id == principal.session_id,
            foreign_computer: s.foreign_computer,
            created_at: rfc3339(s.created_at),
            last_seen_at: rfc3339(s.last_seen_at),
            expires_at: rfc3339(s.expires_at()),
            ip: s.ip,
            device: s.user_agent,
            id: s.id.to_string(),
        })
        .collect();
    Ok(web::json_response(
        StatusCode::OK,
        &serde_json::json!({ "sessions": views }),
    ))
}

async fn revoke(
    app: &App,
    request: &Request,
    session_id: &SessionId,
    principal: shared::services::identity::Principal,
    now: OffsetDateTime,
) -> Reply {
    app.identity
        .revoke(&principal, session_id, &web::client(request), now)
        .await?;
    Ok(web::no_content())
}

async fn events(app: &App, request: &Request) -> Reply {
    let principal = web::principal(request)?;
    let events: Vec<serde_json::Value> = app
        .identity
        .security_events(&principal.account_id)
        .await?
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "type": e.kind,
                "at": rfc3339(e.at),
                "ip": e.ip,
                "device": e.user_agent,
            })
        })
        .collect();
    Ok(web::json_response(
        StatusCode::OK,
        &serde_json::json!({ "events": events }),
    ))
}
