//! Routes of logins by passkey (WebAuthn): the second step of a two-step login by a
//! passkey's assertion, and the passwordless login with a discoverable passkey.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use shared::entry::Reply;
use shared::http::{self as web, Fields};
use shared::redact::Secret;

use super::{created, App};

/// `POST /v1/sessions/two-step` with `credential` instead of `code`: a passkey's
/// assertion completes the login.
pub async fn two_step(
    app: &App,
    request: &Request,
    body: &Map<String, Value>,
    now: OffsetDateTime,
) -> Reply {
    let mut f = Fields::new(body);
    let challenge = super::challenge_field(&mut f);
    let credential = f.required_object("credential");
    let (challenge, credential) =
        f.finish_with(&["challenge_token", "credential"], (challenge, credential))?;
    let session = app
        .identity
        .complete_two_step_passkey(
            &Secret::new(challenge.to_string()),
            credential,
            &web::client(request),
            now,
        )
        .await?;
    Ok(created(&session))
}

/// `POST /v1/sessions/passkey/options`: request options for a discoverable passkey.
pub async fn options(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let started = app
        .identity
        .start_passwordless(&web::client(request), now)
        .await?;
    let expires_at = started
        .expires_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    Ok(web::json_response(
        StatusCode::OK,
        &json!({
            "ceremony_token": started.ceremony.expose(),
            "options": started.options,
            "expires_at": expires_at,
        }),
    ))
}

/// `POST /v1/sessions/passkey` `{ceremony_token, credential, foreign_computer?}`: the
/// passwordless login.
pub async fn login(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let ceremony = f.ceremony_token();
    let credential = f.required_object("credential");
    let foreign_computer = web::optional_bool(&mut f, "foreign_computer").unwrap_or(false);
    let (ceremony, credential) = f.finish_with(
        &["ceremony_token", "credential", "foreign_computer"],
        (ceremony, credential),
    )?;
    let session = app
        .identity
        .finish_passwordless(
            &Secret::new(ceremony.to_string()),
            credential,
            foreign_computer,
            &web::client(request),
            now,
        )
        .await?;
    Ok(created(&session))
}
