//! Routes of the account's second factors: list them, enrol and confirm an app, rename,
//! remove, give the phone back its place, issue backup codes. Every change needs a fresh
//! proof of presence, which the identity service checks.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use shared::entry::Reply;
use shared::http::{self as web, Fields};
use shared::services::identity::{
    at, factor_name, Client, FactorRef, FactorRequest, FactorView, Principal,
};
use shared::AppError;

use super::App;

/// The factor routes, by API Gateway's route key; `None` for any other route.
pub async fn route(
    app: &App,
    route: Option<&str>,
    request: &Request,
    now: OffsetDateTime,
) -> Option<Reply> {
    Some(match route? {
        "GET /v1/account/factors" => list(app, request).await,
        "POST /v1/account/factors/app" => enrol_app(app, request, now).await,
        "POST /v1/account/factors/{id}/confirm" => confirm_app(app, request, now).await,
        "POST /v1/account/factors/sms" => add_sms(app, request, now).await,
        "PATCH /v1/account/factors/{id}" => rename(app, request, now).await,
        "DELETE /v1/account/factors/{id}" => match factor_in_path(request) {
            Ok(factor) => remove(app, request, now, factor).await,
            Err(e) => Err(e),
        },
        // Its own route, since the same path adds the phone back.
        "DELETE /v1/account/factors/sms" => remove(app, request, now, FactorRef::Sms).await,
        "POST /v1/account/backup-codes" => backup_codes(app, request, now).await,
        _ => return None,
    })
}

fn rfc3339(unix: i64) -> String {
    at(unix)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Serialize)]
struct View {
    id: String,
    kind: &'static str,
    name: String,
    created_at: String,
    last_used_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<usize>,
}

impl From<FactorView> for View {
    fn from(v: FactorView) -> Self {
        Self {
            id: v.id,
            kind: v.kind,
            name: v.name,
            created_at: rfc3339(v.created_at),
            last_used_at: v.last_used_at.map(rfc3339),
            remaining: v.remaining,
        }
    }
}

/// A name as given, or its field error noted.
fn named(f: &mut Fields<'_>, raw: Option<&str>) -> Option<String> {
    raw.and_then(|raw| factor_name(raw).map_err(|e| f.reject(e)).ok())
}

fn factor_in_path(request: &Request) -> Result<FactorRef, AppError> {
    FactorRef::parse(web::path_param(request, "id").unwrap_or_default())
}

/// Who asks to change the factors, and from where: every change route hands the identity
/// service the same [`FactorRequest`], so the signed-in principal and the client are read
/// here once rather than in each route.
struct Caller {
    principal: Principal,
    client: Client,
}

impl Caller {
    fn of(request: &Request) -> Result<Self, AppError> {
        Ok(Self {
            principal: web::principal(request)?,
            client: web::client(request),
        })
    }

    fn at(&self, now: OffsetDateTime) -> FactorRequest<'_> {
        FactorRequest::new(&self.principal, &self.client, now)
    }
}

/// The body of a factor route: what `read` takes of its fields; any field but `known` is
/// refused, and every error is told at once. The routes that take a body all read it so.
fn body_with<T>(
    request: &Request,
    known: &[&str],
    read: impl FnOnce(&mut Fields<'_>) -> Option<T>,
) -> Result<T, AppError> {
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let value = read(&mut f);
    f.finish_with(known, value)
}

async fn list(app: &App, request: &Request) -> Reply {
    let principal = web::principal(request)?;
    let views: Vec<View> = app
        .identity
        .factors(&principal)
        .await?
        .into_iter()
        .map(View::from)
        .collect();
    Ok(web::json_response(
        StatusCode::OK,
        &json!({ "factors": views }),
    ))
}

/// `POST /v1/account/factors/app` `{name?}`: the secret and the `otpauth://` URI, once.
async fn enrol_app(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let caller = Caller::of(request)?;
    let name = body_with(request, &["name"], |f| {
        let raw = f.optional_str("name");
        Some(named(f, raw))
    })?;
    let enrolled = app.identity.enrol_app(caller.at(now), name).await?;
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({
            "id": enrolled.id.as_str(),
            "secret": enrolled.secret.expose(),
            "otpauth_uri": enrolled.uri.expose(),
            "confirm_by": rfc3339(enrolled.expires_at),
        }),
    ))
}

/// `POST /v1/account/factors/{id}/confirm` `{code}`: the app's first code.
async fn confirm_app(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let caller = Caller::of(request)?;
    let code = body_with(request, &["code"], |f| {
        f.required_str("code").map(str::to_string)
    })?;
    let FactorRef::App(id) = factor_in_path(request)? else {
        return Err(AppError::NotFound("factor"));
    };
    let view = app.identity.confirm_app(caller.at(now), &id, &code).await?;
    Ok(web::json_response(StatusCode::OK, &View::from(view)))
}

/// `POST /v1/account/factors/sms`: the account's phone is a second factor again.
async fn add_sms(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let caller = Caller::of(request)?;
    app.identity.add_sms_factor(caller.at(now)).await?;
    Ok(web::no_content())
}

/// `PATCH /v1/account/factors/{id}` `{name}`.
async fn rename(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let caller = Caller::of(request)?;
    let name = body_with(request, &["name"], |f| {
        let raw = f.required_str("name");
        named(f, raw)
    })?;
    let factor = factor_in_path(request)?;
    app.identity
        .rename_factor(caller.at(now), &factor, name)
        .await?;
    Ok(web::no_content())
}

/// `DELETE /v1/account/factors/{id}`, and `…/sms`.
async fn remove(app: &App, request: &Request, now: OffsetDateTime, factor: FactorRef) -> Reply {
    let caller = Caller::of(request)?;
    app.identity.remove_factor(caller.at(now), &factor).await?;
    Ok(web::no_content())
}

/// `POST /v1/account/backup-codes`: ten new codes, shown once; earlier ones stop working.
async fn backup_codes(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let caller = Caller::of(request)?;
    let codes = app.identity.issue_backup_codes(caller.at(now)).await?;
    let codes: Vec<&str> = codes.iter().map(|c| c.expose().as_str()).collect();
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({ "codes": codes }),
    ))
}
