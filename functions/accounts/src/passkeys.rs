//! Routes that register a passkey or security key (WebAuthn) as a second factor: the
//! creation options, then the authenticator's attestation. Listing, renaming and removing
//! a passkey go through the factor routes like any factor.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::entry::Reply;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::identity::{at, factor_name, FactorRequest};

use super::App;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `POST /v1/account/factors/passkey/options`: creation options and the ceremony token.
pub async fn options(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let client = web::client(request);
    let started = app
        .identity
        .start_passkey_registration(FactorRequest::new(&principal, &client, now))
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({
            "ceremony_token": started.ceremony.expose(),
            "options": started.options,
            "expires_at": rfc3339(started.expires_at),
        }),
    ))
}

/// `POST /v1/account/factors/passkey` `{ceremony_token, credential, name?}`: the
/// attestation; the passkey is a factor.
pub async fn register(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let client = web::client(request);
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let ceremony = f.ceremony_token();
    let credential = f.required_object("credential");
    let name = f
        .optional_str("name")
        .and_then(|raw| factor_name(raw).map_err(|e| f.reject(e)).ok());
    let (ceremony, credential) = f.finish_with(
        &["ceremony_token", "credential", "name"],
        (ceremony, credential),
    )?;
    let view = app
        .identity
        .finish_passkey_registration(
            FactorRequest::new(&principal, &client, now),
            &Secret::new(ceremony.to_string()),
            credential,
            name,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({
            "id": view.id,
            "kind": view.kind,
            "name": view.name,
            "created_at": rfc3339(at(view.created_at)),
            "last_used_at": Value::Null,
        }),
    ))
}
