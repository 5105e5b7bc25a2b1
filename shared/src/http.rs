//! HTTP plumbing shared by every API function: reading the request, and turning a
//! service result or an [`AppError`] into a response. Error → HTTP mapping lives here
//! and nowhere else.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{AppError, FieldError};

/// Largest request body any route accepts; our bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The API Gateway route key (`"POST /v1/codes/{id}/verify"`), independent of the stage.
pub fn route_key(req: &Request) -> Option<String> {
    api_context(req).and_then(|ctx| ctx.route_key.clone())
}

/// The caller's address as API Gateway saw it (the TCP peer).
pub fn client_ip(req: &Request) -> Option<String> {
    api_context(req).and_then(|ctx| ctx.http.source_ip.clone())
}

/// API Gateway's id of this request: the correlation id in our logs.
pub fn api_request_id(req: &Request) -> Option<String> {
    api_context(req).and_then(|ctx| ctx.request_id.clone())
}

fn api_context(
    req: &Request,
) -> Option<&lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext> {
    #[allow(unreachable_patterns)]
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => Some(ctx),
        _ => None,
    }
}

/// The role the authorizer gives a request when it could not read its store. Such a
/// request has no principal, and every reader of the caller below refuses it with a 503.
pub const UNAVAILABLE_ROLE: &str = "unavailable";

/// The role the authorizer gives a citizen's request that the access matrix refuses
/// (`crate::access`), with the refusal's code as `refusal`. Such a request has no
/// principal either: no handler can act for the account.
pub const REFUSED_ROLE: &str = "refused";

/// A 503 for a request the authorizer could not decide on, and the matrix's 403 for one
/// it refused.
fn refuse_undecided(
    fields: Option<&std::collections::HashMap<String, Value>>,
) -> Result<(), AppError> {
    let get = |name: &str| fields.and_then(|f| f.get(name)).and_then(Value::as_str);
    match get("role") {
        Some(UNAVAILABLE_ROLE) => Err(AppError::StoreUnavailable(
            "the authorizer could not read its store".into(),
        )),
        // An unreadable refusal is still a refusal, as strict as the matrix has.
        Some(REFUSED_ROLE) => Err(get("refusal")
            .and_then(crate::access::Refusal::parse)
            .unwrap_or(crate::access::Refusal::Level(
                crate::domain::AccountLevel::Confirmed,
            ))
            .into()),
        _ => Ok(()),
    }
}

/// Who is calling a private route, as the authorizer established it. Handlers take the
/// account from here and never from the body.
pub fn principal(req: &Request) -> Result<crate::services::identity::Principal, AppError> {
    let fields = api_context(req)
        .and_then(|ctx| ctx.authorizer.as_ref())
        .map(|a| &a.fields);
    refuse_undecided(fields)?;
    let get = |name: &str| {
        fields
            .and_then(|f| f.get(name))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    // Ids of another shape than the authorizer writes are no identity at all.
    let account_id = get("account_id").and_then(|v| v.parse().ok());
    let session_id = get("session_id").and_then(|v| v.parse().ok());
    match (account_id, session_id) {
        (Some(account_id), Some(session_id)) => Ok(crate::services::identity::Principal {
            account_id,
            session_id,
            // Missing or unreadable: never fresh, so a step-up is asked for.
            proven_at: get("proven_at").and_then(|v| v.parse().ok()).unwrap_or(0),
            // Missing or unreadable: the weaker, so a second factor is asked for.
            strength: get("strength")
                .and_then(|v| crate::domain::CredentialStrength::parse(&v))
                .unwrap_or(crate::domain::CredentialStrength::Password),
        }),
        _ => Err(AppError::Unauthenticated),
    }
}

/// The mark the authorizer gives a request whose `X-Organisation-Id` names an
/// organisation the caller is not an active member of (or no organisation at all).
pub const ORGANISATION_REFUSED: &str = "refused";

/// The organisation a request acts for (`X-Organisation-Id`) and the caller's role in it,
/// as the authorizer read them; `None` when the request names none. One the caller does
/// not act for is not found, whether or not it exists.
pub fn acting_organisation(
    req: &Request,
) -> Result<Option<(crate::domain::OrganisationId, crate::domain::OrgRole)>, AppError> {
    let fields = api_context(req)
        .and_then(|ctx| ctx.authorizer.as_ref())
        .map(|a| &a.fields);
    let get = |name: &str| {
        fields
            .and_then(|f| f.get(name))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    let Some(id) = get("organisation_id") else {
        return Ok(None);
    };
    let refused = AppError::NotFound("organisation");
    if id == ORGANISATION_REFUSED {
        return Err(refused);
    }
    let id = id.parse().map_err(|_| AppError::NotFound("organisation"))?;
    let role = get("organisation_role")
        .and_then(|r| crate::domain::OrgRole::parse("role", r).ok())
        .ok_or(refused)?;
    Ok(Some((id, role)))
}

/// Refuses a request that names an organisation (`X-Organisation-Id`, whether or not the
/// caller belongs to it) on a route that acts only for the citizen: done for the citizen,
/// it would not be what was asked (400 `organisation_not_supported`).
pub fn citizen_only(req: &Request) -> Result<(), AppError> {
    let named = api_context(req)
        .and_then(|ctx| ctx.authorizer.as_ref())
        .and_then(|a| a.fields.get("organisation_id"))
        .and_then(Value::as_str)
        .is_some_and(|v| !v.is_empty());
    if named {
        Err(AppError::OrganisationNotSupported)
    } else {
        Ok(())
    }
}

/// The operator calling an operator route, as the authorizer established it; a citizen's
/// session is refused here.
pub fn operator(req: &Request) -> Result<crate::domain::OperatorId, AppError> {
    caller_in_role(req, "operator", "operator_id", AppError::OperatorOnly)?
        .parse()
        .map_err(|_| AppError::Unauthenticated)
}

/// The biller calling a biller route, as the authorizer established it.
pub fn biller(req: &Request) -> Result<crate::domain::BillerId, AppError> {
    caller_in_role(req, "biller", "biller_id", AppError::BillerOnly)?
        .parse()
        .map_err(|_| AppError::Unauthenticated)
}

/// The id (`id_field`) of a caller the authorizer gave `role`; a request with no
/// authorizer context is unauthenticated, one in another role is `refused`.
fn caller_in_role(
    req: &Request,
    role: &str,
    id_field: &str,
    refused: AppError,
) -> Result<String, AppError> {
    let fields = api_context(req)
        .and_then(|ctx| ctx.authorizer.as_ref())
        .map(|a| &a.fields)
        .ok_or(AppError::Unauthenticated)?;
    refuse_undecided(Some(fields))?;
    let get = |name: &str| {
        fields
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    };
    match (get("role"), get(id_field)) {
        (Some(given), Some(id)) if given == role => Ok(id.to_string()),
        _ => Err(refused),
    }
}

/// The caller's address and user agent, for sessions and the security log.
pub fn client(req: &Request) -> crate::services::identity::Client {
    let ctx = api_context(req);
    crate::services::identity::Client::new(
        ctx.and_then(|c| c.http.source_ip.clone()),
        ctx.and_then(|c| c.http.user_agent.clone()),
    )
}

/// An optional boolean field; records `invalid_type` when present and not a boolean.
pub fn optional_bool(fields: &mut Fields<'_>, name: &str) -> Option<bool> {
    match fields.object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            fields.errors.push(FieldError::new(
                name,
                "invalid_type",
                "Ожидается true или false",
            ));
            None
        }
    }
}

/// A response with no body.
pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The 202 of a route that sent a code (`POST /v1/codes`, `POST /v1/recovery`): the
/// code's id, when it expires and when another may be asked for.
pub fn code_sent(sent: &crate::services::codes::SentCode) -> Response<Body> {
    #[derive(Serialize)]
    struct Sent {
        id: String,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: time::OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        resend_available_at: time::OffsetDateTime,
    }
    json_response(
        StatusCode::ACCEPTED,
        &Sent {
            id: sent.id.to_string(),
            expires_at: sent.expires_at,
            resend_available_at: sent.resend_available_at,
        },
    )
}

/// A path parameter declared by the route, e.g. `{id}`.
pub fn path_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.path_parameters_ref().and_then(|p| p.first(name))
}

/// Parses the body as one JSON object, refusing oversized or malformed bodies.
pub fn json_object(req: &Request) -> Result<Map<String, Value>, AppError> {
    json_object_up_to(req, MAX_BODY_BYTES)
}

/// [`json_object`] for the few routes that take more than a form's worth (batches).
pub fn json_object_up_to(req: &Request, limit: usize) -> Result<Map<String, Value>, AppError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > limit {
        return Err(AppError::PayloadTooLarge { limit });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(AppError::InvalidJson {
            detail: "тело запроса пустое".into(),
        });
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AppError::InvalidJson {
            detail: "ожидался объект".into(),
        }),
        Err(e) => Err(AppError::InvalidJson {
            detail: format!("строка {}, позиция {}", e.line(), e.column()),
        }),
    }
}

/// The longest passkey `ceremony_token` a body may carry (docs/openapi.yaml, `maxLength`).
pub const MAX_CEREMONY_TOKEN_CHARS: usize = 128;

/// Reads fields of a JSON object while collecting every problem, so that one response
/// lists all invalid fields at once.
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    pub errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            errors: Vec::new(),
        }
    }

    /// A required string field; records `required` or `invalid_type` when absent or wrong.
    pub fn required_str(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.errors
                    .push(FieldError::new(name, "required", "Обязательное поле"));
                None
            }
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.errors
                    .push(FieldError::new(name, "invalid_type", "Ожидается строка"));
                None
            }
        }
    }

    /// A required object field, as its JSON value (always an object); records `required`
    /// or `invalid_type` when absent or wrong.
    pub fn required_object(&mut self, name: &str) -> Option<&'a Value> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.errors
                    .push(FieldError::new(name, "required", "Обязательное поле"));
                None
            }
            Some(object @ Value::Object(_)) => Some(object),
            Some(_) => {
                self.errors
                    .push(FieldError::new(name, "invalid_type", "Ожидается объект"));
                None
            }
        }
    }

    /// A required string field of 1 to `max_chars` characters (as the API's `maxLength`
    /// counts them, not UTF-8 bytes); an empty or longer one is refused at its field with
    /// `code` and `detail`. The value is given back either way: the refusal is recorded.
    pub fn required_str_within(
        &mut self,
        name: &str,
        max_chars: usize,
        code: &'static str,
        detail: impl Into<String>,
    ) -> Option<&'a str> {
        let value = self.required_str(name);
        if value.is_some_and(|v| v.is_empty() || v.chars().count() > max_chars) {
            self.errors.push(FieldError::new(name, code, detail));
        }
        value
    }

    /// A passkey ceremony's `ceremony_token`, refused at its field when empty or longer
    /// than [`MAX_CEREMONY_TOKEN_CHARS`].
    pub fn ceremony_token(&mut self) -> Option<&'a str> {
        self.required_str_within(
            "ceremony_token",
            MAX_CEREMONY_TOKEN_CHARS,
            "invalid_ceremony_token",
            "Начните заново",
        )
    }

    /// An optional string field: absent or null is `None`.
    pub fn optional_str(&mut self, name: &str) -> Option<&'a str> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => {
                self.errors
                    .push(FieldError::new(name, "invalid_type", "Ожидается строка"));
                None
            }
        }
    }

    /// Records a validation error for `name`.
    pub fn reject(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// [`Fields::finish`], then the values the route read, unwrapped: a value missing
    /// once every check passed is a bug in the route's checks (a 500), not the caller's
    /// mistake.
    pub fn finish_with<V: ReadValues>(
        self,
        known: &[&str],
        values: V,
    ) -> Result<V::Present, AppError> {
        self.finish(known)?;
        values
            .present()
            .ok_or_else(|| AppError::Internal("validated fields missing".into()))
    }

    /// Fails with every collected error, plus one for each field the route does not know
    /// (a misspelt field is refused rather than silently ignored).
    pub fn finish(mut self, known: &[&str]) -> Result<(), AppError> {
        for key in self.object.keys() {
            if !known.contains(&key.as_str()) {
                self.errors.push(FieldError::new(
                    &escape_pointer(key),
                    "unknown_field",
                    "Неизвестное поле",
                ));
            }
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(self.errors))
        }
    }
}

/// The values a route read with [`Fields`]: one `Option` or a tuple of them. Once
/// [`Fields::finish`] has passed, every value a check needed is present;
/// [`Fields::finish_with`] hands them over unwrapped in one line, whatever their number,
/// so that no route spells out the "cannot happen" error of a missing one by hand.
pub trait ReadValues {
    /// The values, each unwrapped.
    type Present;
    /// All the values, or `None` when any is missing.
    fn present(self) -> Option<Self::Present>;
}

impl<T> ReadValues for Option<T> {
    type Present = T;
    fn present(self) -> Option<T> {
        self
    }
}

/// [`ReadValues`] for a tuple of options, of the arity of its type parameters.
macro_rules! read_values_tuple {
    ($($value:ident),+) => {
        impl<$($value),+> ReadValues for ($(Option<$value>,)+) {
            type Present = ($($value,)+);
            #[allow(non_snake_case)]
            fn present(self) -> Option<Self::Present> {
                let ($($value,)+) = self;
                Some(($($value?,)+))
            }
        }
    };
}

read_values_tuple!(A, B);
read_values_tuple!(A, B, C);
read_values_tuple!(A, B, C, D);
read_values_tuple!(A, B, C, D, E);
read_values_tuple!(A, B, C, D, E, F);
read_values_tuple!(A, B, C, D, E, F, G);
read_values_tuple!(A, B, C, D, E, F, G, H);
read_values_tuple!(A, B, C, D, E, F, G, H, I);

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// A JSON success response.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => with_json(status, text, "application/json"),
        Err(e) => problem_response(&AppError::Internal(format!("serialising response: {e}"))),
    }
}

fn with_json(status: StatusCode, text: String, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The response for an error: RFC 9457 `application/problem+json`, with `Retry-After`
/// on refusals that can be retried. Server-side failures are logged here, once.
pub fn problem_response(err: &AppError) -> Response<Body> {
    let problem = err.problem();
    if problem.status >= 500 {
        tracing::error!(error = %err, code = problem.code, "request failed");
        // Counted per function version: a canary version's 5xx rolls its deployment back.
        crate::metrics::emit(crate::metrics::Metric::ServerErrors);
    } else {
        tracing::info!(
            code = problem.code,
            status = problem.status,
            "request refused"
        );
    }
    let mut body = serde_json::json!({
        "type": format!("/problems/{}", problem.code),
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
    });
    if !problem.errors.is_empty() {
        body["errors"] = serde_json::to_value(&problem.errors).unwrap_or(Value::Null);
    }
    if let Some(secs) = problem.retry_after_secs {
        body["retry_after"] = secs.into();
    }
    if let Some(left) = problem.attempts_left {
        body["attempts_left"] = left.into();
    }
    if let Some(uin) = &problem.uin {
        body["uin"] = uin.as_str().into();
    }
    if let Some(id) = &problem.payment_id {
        body["payment_id"] = id.as_str().into();
    }
    if let Some(reason) = &problem.reason {
        body["reason"] = reason.as_str().into();
    }
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = with_json(status, body.to_string(), "application/problem+json");
    if let Some(secs) = problem.retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Turns a route's outcome into the response Lambda returns.
pub fn respond(result: Result<Response<Body>, AppError>) -> Response<Body> {
    result.unwrap_or_else(|err| problem_response(&err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(resp: &Response<Body>) -> Value {
        serde_json::from_slice(resp.body().as_ref()).unwrap()
    }

    /// A request the authorizer let through with `context`.
    fn authorized(context: &[(&str, &str)]) -> Request {
        use lambda_http::aws_lambda_events::apigw::{
            ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequestContext,
        };
        let mut authorizer = ApiGatewayRequestAuthorizer::default();
        authorizer.fields = context
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let mut ctx = ApiGatewayV2httpRequestContext::default();
        ctx.authorizer = Some(authorizer);
        Request::default().with_request_context(RequestContext::ApiGatewayV2(ctx))
    }

    #[test]
    fn an_undecided_authorizer_is_a_503_for_every_kind_of_caller() {
        let undecided = authorized(&[("role", UNAVAILABLE_ROLE)]);
        for outcome in [
            principal(&undecided).map(|_| ()),
            operator(&undecided).map(|_| ()),
            biller(&undecided).map(|_| ()),
        ] {
            let response = respond(outcome.map(|()| no_content()));
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
        }
        // Ids of the shapes the authorizer writes: a UUID and a keyed hash.
        let account = "0b7e5b6c-2f0e-4d8a-9c1e-5a4f3b2d1c0e";
        let session = "s".repeat(43);
        let citizen = authorized(&[
            ("role", "citizen"),
            ("account_id", account),
            ("session_id", &session),
        ]);
        assert_eq!(
            principal(&citizen).map(|p| p.account_id).ok().as_deref(),
            Some(account)
        );
        assert!(matches!(operator(&citizen), Err(AppError::OperatorOnly)));
    }

    #[test]
    fn a_request_the_matrix_refused_has_no_principal_and_gets_the_refusal() {
        use crate::domain::{AccountLevel, CredentialStrength};
        let refused = |code| authorized(&[("role", REFUSED_ROLE), ("refusal", code)]);
        for (code, status) in [
            ("standard_level_required", 403),
            ("confirmed_level_required", 403),
            ("second_factor_required", 403),
        ] {
            let response = respond(principal(&refused(code)).map(|_| no_content()));
            assert_eq!(response.status(), status, "{code}");
            let body: Value = serde_json::from_slice(response.body().as_ref()).unwrap();
            assert_eq!(body["code"], code);
        }
        // A refusal it cannot read is still one, as strict as the matrix has.
        assert!(matches!(
            principal(&refused("nonsense")),
            Err(AppError::LevelRequired(AccountLevel::Confirmed))
        ));
        assert!(matches!(
            operator(&refused("second_factor_required")),
            Err(AppError::SecondFactorRequired)
        ));
        // The strength the authorizer wrote; anything else reads as the password alone.
        let session = "s".repeat(43);
        let with = |strength| {
            let req = authorized(&[
                ("role", "citizen"),
                ("account_id", "0b7e5b6c-2f0e-4d8a-9c1e-5a4f3b2d1c0e"),
                ("session_id", &session),
                ("strength", strength),
            ]);
            principal(&req).map(|p| p.strength).ok()
        };
        assert_eq!(
            with("second_factor"),
            Some(CredentialStrength::SecondFactor)
        );
        assert_eq!(with("password"), Some(CredentialStrength::Password));
        assert_eq!(with("SECOND_FACTOR"), Some(CredentialStrength::Password));
    }

    #[test]
    fn validation_problem_lists_fields() {
        let err = AppError::Validation(vec![FieldError::new(
            "destination",
            "not_mobile_phone",
            "только мобильные",
        )]);
        let resp = problem_response(&err);
        assert_eq!(resp.status(), 422);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = body_json(&resp);
        assert_eq!(body["code"], "validation_failed");
        assert_eq!(body["type"], "/problems/validation_failed");
        assert_eq!(body["errors"][0]["field"], "/destination");
        assert_eq!(body["errors"][0]["code"], "not_mobile_phone");
    }

    #[test]
    fn server_errors_are_counted_and_refusals_are_not() {
        let capture = crate::metrics::Capture::start();
        assert_eq!(
            problem_response(&AppError::StoreUnavailable("throttled".into())).status(),
            503
        );
        assert_eq!(respond(Err(AppError::Internal("bug".into()))).status(), 500);
        assert_eq!(
            problem_response(&AppError::NotFound("payment")).status(),
            404
        );
        let counted = capture.counted("ServerErrors");
        assert_eq!(counted.len(), 2, "{:?}", capture.lines());
        assert_eq!(
            counted[0],
            crate::metrics::dims(&[("FunctionName", "local"), ("Version", "$LATEST")])
        );
        assert_eq!(capture.lines().len(), 2, "a 404 counts nothing");
    }

    #[test]
    fn refusal_carries_retry_after_header() {
        let resp = problem_response(&AppError::ResendTooEarly {
            retry_after_secs: 42,
        });
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "42");
        assert_eq!(body_json(&resp)["retry_after"], 42);
    }

    #[test]
    fn finish_with_hands_over_the_values_read() {
        let obj: Map<String, Value> = serde_json::from_str(r#"{"a": "x", "b": "y"}"#).unwrap();
        let mut f = Fields::new(&obj);
        let (a, b) = (f.required_str("a"), f.required_str("b"));
        assert_eq!(f.finish_with(&["a", "b"], (a, b)).unwrap(), ("x", "y"));
        // A value missing once the checks passed is the route's bug: a 500.
        let missing = Fields::new(&obj).finish_with(&["a", "b"], (a, None::<&str>));
        assert!(matches!(missing, Err(AppError::Internal(_))));
        // The caller's mistakes come first, as `finish` tells them.
        let refused = Fields::new(&obj).finish_with(&["a"], a);
        assert!(matches!(refused, Err(AppError::Validation(_))));
    }

    #[test]
    fn fields_report_missing_wrong_and_unknown() {
        let obj: Map<String, Value> = serde_json::from_str(r#"{"a": 1, "zz/x": true}"#).unwrap();
        let mut f = Fields::new(&obj);
        assert!(f.required_str("a").is_none());
        assert!(f.required_str("b").is_none());
        let Err(AppError::Validation(errors)) = f.finish(&["a", "b"]) else {
            panic!("expected validation error");
        };
        let got: Vec<_> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            got,
            [
                ("/a", "invalid_type"),
                ("/b", "required"),
                ("/zz~1x", "unknown_field")
            ]
        );
    }
}
