//! Routes that register a passkey or security key (WebAuthn) as a second factor: the
//! creation options, then the authenticator's attestation. Listing, renaming and removing
//! a passkey go through the factor routes like any factor.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use shared::entry::Reply;
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::identity::{at, factor_name, FactorRequest};

use super::App;

/// The longest `ceremony_token` a body may carry (docs/openapi.yaml, `maxLength`).
const MAX_CEREMONY_TOKEN_CHARS: usize = 128;

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A `ceremony_token` of a body, refused at its field when empty or too long.
pub fn ceremony_field<'a>(f: &mut Fields<'a>) -> Option<&'a str> {
    let token = f.required_str("ceremony_token");
    if token.is_some_and(|t| t.is_empty() || t.chars().count() > MAX_CEREMONY_TOKEN_CHARS) {
        f.reject(FieldError::new(
            "ceremony_token",
            "invalid_ceremony_token",
            "Начните заново",
        ));
    }
    token
}

/// The authenticator's answer (`credential`): a JSON object, as `PublicKeyCredential`'s
/// `toJSON()` gives it.
pub fn credential_field<'a>(f: &mut Fields<'_>, body: &'a Map<String, Value>) -> Option<&'a Value> {
    match body.get("credential") {
        Some(value @ Value::Object(_)) => Some(value),
        None | Some(Value::Null) => {
            f.reject(FieldError::new(
                "credential",
                "required",
                "Обязательное поле",
            ));
            None
        }
        Some(_) => {
            f.reject(FieldError::new(
                "credential",
                "invalid_type",
                "Ожидается объект",
            ));
            None
        }
    }
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
    let ceremony = ceremony_field(&mut f);
    let credential = credential_field(&mut f, &body);
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
