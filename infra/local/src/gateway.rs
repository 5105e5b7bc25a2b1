//! The local API Gateway: HttpApi routes with Lambda authorizers, plus the
//! local-only `/_local/*` endpoints (outbox, scheduled invocations, routes).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::events::{
    authorizer_decision, authorizer_event, http_event, map_function_result, scheduled_event,
    AuthDecision, HttpRequest, HttpResponse,
};
use crate::intrinsics::STACK_NAME;
use crate::lambda::{FunctionEndpoint, InvokeError};
use crate::model::{ApiSpec, AuthorizerKind, ScheduleEvent};
use crate::outbox::OutboxState;
use crate::routes::RouteTable;

/// API Gateway's payload limit for HTTP APIs.
const MAX_BODY: usize = 10 * 1024 * 1024;

pub struct GatewayState {
    pub routes: RouteTable,
    pub apis: BTreeMap<String, ApiSpec>,
    /// By logical id.
    pub functions: BTreeMap<String, Arc<FunctionEndpoint>>,
    /// Schedule events by function logical id.
    pub schedules: BTreeMap<String, Vec<ScheduleEvent>>,
    pub moto_url: String,
    pub http: reqwest::Client,
    pub outbox: Mutex<OutboxState>,
    /// Log one line per request.
    pub log_requests: bool,
}

pub fn router(state: Arc<GatewayState>) -> Router {
    Router::new()
        .route("/_local/outbox", get(outbox).delete(clear_outbox))
        .route("/_local/schedules/{function}", post(schedule))
        .route("/_local/routes", get(list_routes))
        .fallback(api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves until the task is dropped or aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<GatewayState>,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

fn to_axum(r: HttpResponse, request_id: Option<&str>) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (k, v) in r.headers {
        // hyper computes the framing itself; a function's own value could contradict it.
        if k == "content-length" || k == "transfer-encoding" {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.append(name, value);
        }
    }
    if let Some(id) = request_id {
        if let Ok(v) = HeaderValue::from_str(id) {
            headers.insert("apigw-requestid", v);
        }
    }
    response
}

async fn api(
    State(state): State<Arc<GatewayState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let response = match to_bytes(body, MAX_BODY).await {
        Err(_) => HttpResponse::message(413, "Request Entity Too Large"),
        Ok(body) => {
            let mut headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            // Local only: a client-supplied X-Forwarded-For decides sourceIp, so
            // tests can act as many clients from one machine. API Gateway
            // itself always reports the TCP peer.
            let forwarded = headers
                .iter()
                .find(|(k, _)| k == "x-forwarded-for")
                .and_then(|(_, v)| v.split(',').next())
                .map(|ip| ip.trim().to_string())
                .filter(|ip| !ip.is_empty());
            let source_ip = forwarded.unwrap_or_else(|| peer.ip().to_string());
            match headers.iter_mut().find(|(k, _)| k == "x-forwarded-for") {
                Some((_, v)) => {
                    v.push_str(", ");
                    v.push_str(&peer.ip().to_string());
                }
                None => headers.push(("x-forwarded-for".into(), peer.ip().to_string())),
            }
            headers.push(("x-forwarded-proto".into(), "http".into()));
            let request = HttpRequest {
                method: method.clone(),
                raw_path: path.clone(),
                raw_query: parts.uri.query().unwrap_or_default().to_string(),
                headers,
                body: body.to_vec(),
                source_ip,
                protocol: format!("{:?}", parts.version),
                request_id: request_id.clone(),
                time: OffsetDateTime::now_utc(),
                api_id: String::new(),
            };
            handle(&state, request).await
        }
    };
    if state.log_requests {
        tracing::info!(
            "{method} {path} -> {} ({} ms)",
            response.status,
            started.elapsed().as_millis()
        );
    }
    to_axum(response, Some(&request_id))
}

fn internal_error() -> HttpResponse {
    HttpResponse::message(500, "Internal Server Error")
}

async fn handle(state: &GatewayState, mut request: HttpRequest) -> HttpResponse {
    let Some((route, path_parameters)) = state.routes.find(&request.method, &request.raw_path)
    else {
        return HttpResponse::message(404, "Not Found");
    };
    request.api_id = route.api.clone();

    let mut authorizer_context = None;
    if let Some(name) = &route.authorizer {
        let Some(spec) = state
            .apis
            .get(&route.api)
            .and_then(|a| a.authorizers.get(name))
        else {
            tracing::error!("route {} names unknown authorizer {name}", route.route_key);
            return internal_error();
        };
        let AuthorizerKind::Lambda { function } = &spec.kind else {
            return internal_error();
        };
        let mut identity = Vec::new();
        for header in &spec.identity_headers {
            match request.header(header) {
                Some(v) if !v.is_empty() => identity.push(v.to_string()),
                _ => return HttpResponse::message(401, "Unauthorized"),
            }
        }
        let query = request.query_parameters();
        for key in &spec.identity_query_strings {
            match query.get(key).and_then(Value::as_str) {
                Some(v) if !v.is_empty() => identity.push(v.to_string()),
                _ => return HttpResponse::message(401, "Unauthorized"),
            }
        }
        let Some(endpoint) = state.functions.get(function) else {
            return internal_error();
        };
        let event = authorizer_event(&request, &route.route_key, &path_parameters, &identity);
        let result = match endpoint.invoke(&state.http, &event).await {
            Ok(r) => r,
            // As in API Gateway: an authorizer that fails with the message
            // "Unauthorized" turns the request away with 401, any other failure is 500.
            Err(InvokeError::Function { message, .. }) if message == "Unauthorized" => {
                return HttpResponse::message(401, "Unauthorized");
            }
            Err(e) => {
                tracing::warn!("authorizer {name}: {e}");
                return internal_error();
            }
        };
        match authorizer_decision(&result, spec.simple_responses, &request.route_arn()) {
            Ok(AuthDecision::Allow(context)) => authorizer_context = Some(context),
            Ok(AuthDecision::Deny) => return HttpResponse::message(403, "Forbidden"),
            Err(why) => {
                tracing::warn!("authorizer {name}: {why}");
                return internal_error();
            }
        }
    }

    let Some(endpoint) = state.functions.get(&route.function) else {
        return internal_error();
    };
    let event = http_event(
        &request,
        &route.route_key,
        &path_parameters,
        authorizer_context.as_ref(),
    );
    match endpoint.invoke(&state.http, &event).await {
        Ok(result) => map_function_result(&result).unwrap_or_else(|why| {
            tracing::warn!("{}: malformed response: {why}", route.function);
            internal_error()
        }),
        Err(e) => {
            tracing::warn!("{e}");
            internal_error()
        }
    }
}

fn local_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "message": message.into() }))).into_response()
}

async fn moto_data(state: &GatewayState) -> Result<Value, Response> {
    let url = format!("{}/moto-api/data.json", state.moto_url);
    let response = state
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| local_error(StatusCode::BAD_GATEWAY, format!("moto: {e}")))?;
    response
        .json::<Value>()
        .await
        .map_err(|e| local_error(StatusCode::BAD_GATEWAY, format!("moto: {e}")))
}

async fn outbox(
    State(state): State<Arc<GatewayState>>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let data = match moto_data(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut messages = match state.outbox.lock() {
        Ok(mut outbox) => outbox.messages(&data, OffsetDateTime::now_utc()),
        Err(_) => return local_error(StatusCode::INTERNAL_SERVER_ERROR, "outbox state poisoned"),
    };
    if let Some(to) = query.get("to") {
        messages.retain(|m| m.is_for(to));
    }
    if let Some(channel) = query.get("channel") {
        messages.retain(|m| &m.channel == channel);
    }
    Json(json!({ "messages": messages })).into_response()
}

async fn clear_outbox(State(state): State<Arc<GatewayState>>) -> Response {
    let data = match moto_data(&state).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    match state.outbox.lock() {
        Ok(mut outbox) => outbox.clear(&data),
        Err(_) => return local_error(StatusCode::INTERNAL_SERVER_ERROR, "outbox state poisoned"),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn schedule(
    State(state): State<Arc<GatewayState>>,
    Path(function): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(endpoint) = state
        .functions
        .get(&function)
        .or_else(|| state.functions.values().find(|f| f.binary == function))
    else {
        return local_error(StatusCode::NOT_FOUND, format!("no function {function}"));
    };
    let schedules = state
        .schedules
        .get(&endpoint.logical_id)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let chosen = match query.get("event") {
        Some(name) => schedules.iter().find(|s| &s.name == name),
        None => schedules.first(),
    };
    let Some(event) = chosen else {
        let message = match query.get("event") {
            Some(name) if !schedules.is_empty() => {
                format!("{} has no Schedule event named {name}", endpoint.logical_id)
            }
            _ => format!(
                "{} has no Schedule or ScheduleV2 event",
                endpoint.logical_id
            ),
        };
        return local_error(StatusCode::NOT_FOUND, message);
    };
    // `?time=` (RFC 3339): the moment the rule was due, as the event's `time` says it,
    // so that a test fires the run of another day; by default, now.
    let due = match query.get("time") {
        Some(t) => match OffsetDateTime::parse(t, &Rfc3339) {
            Ok(due) => due,
            Err(e) => {
                let message = format!("time {t:?} is not an RFC 3339 date-time: {e}");
                return local_error(StatusCode::BAD_REQUEST, message);
            }
        },
        None => OffsetDateTime::now_utc(),
    };
    // A schedule with Input delivers exactly that instead of the scheduled event.
    let payload = event.input.clone().unwrap_or_else(|| {
        scheduled_event(
            &format!("{STACK_NAME}-{}{}", endpoint.logical_id, event.name),
            &uuid::Uuid::new_v4().to_string(),
            due,
        )
    });
    match endpoint.invoke(&state.http, &payload).await {
        Ok(result) => Json(result).into_response(),
        Err(InvokeError::Function { body, .. }) => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        }
        Err(e) => local_error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

async fn list_routes(State(state): State<Arc<GatewayState>>) -> Response {
    let routes: Vec<Value> = state
        .routes
        .routes()
        .iter()
        .map(|r| {
            json!({
                "routeKey": r.route_key,
                "function": r.function,
                "api": r.api,
                "authorizer": r.authorizer,
            })
        })
        .collect();
    let schedules: Vec<Value> = state
        .schedules
        .iter()
        .flat_map(|(f, events)| {
            events.iter().map(move |e| {
                json!({"function": f, "event": e.name, "type": e.kind, "expression": e.expression})
            })
        })
        .collect();
    Json(json!({ "routes": routes, "schedules": schedules })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuthorizerSpec, FunctionSpec, HttpEvent, RouteAuth};
    use std::time::Duration;

    /// Stands in for `cargo lambda watch`: answers the Invoke API per binary.
    async fn fake_lambda() -> u16 {
        async fn invoke(Path(name): Path<String>, Json(event): Json<Value>) -> Response {
            match name.as_str() {
                "echo" => Json(json!({
                    "statusCode": 200,
                    "headers": {"content-type": "application/json"},
                    "body": event.to_string(),
                }))
                .into_response(),
                "plain" => Json(json!({"ok": true})).into_response(),
                "boom" => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"errorType": "Boom", "errorMessage": "exploded"})),
                )
                    .into_response(),
                "auth" => {
                    let token = event["headers"]["authorization"]
                        .as_str()
                        .unwrap_or_default();
                    Json(json!({
                        "isAuthorized": token == "Bearer good",
                        "context": {"userId": "u-1"},
                    }))
                    .into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
        let app = Router::new().route("/2015-03-31/functions/{name}/invocations", post(invoke));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    fn function(
        id: &str,
        binary: &str,
        events: Vec<HttpEvent>,
        schedules: Vec<ScheduleEvent>,
    ) -> FunctionSpec {
        FunctionSpec {
            logical_id: id.into(),
            binary: binary.into(),
            environment: Default::default(),
            secret_variables: Default::default(),
            timeout_secs: 3,
            http_events: events,
            sqs_events: vec![],
            schedules,
        }
    }

    fn route(method: &str, path: &str, auth: RouteAuth) -> HttpEvent {
        HttpEvent {
            name: format!("{method}{path}"),
            api: "Api".into(),
            method: method.into(),
            path: Some(path.into()),
            auth,
        }
    }

    async fn gateway() -> String {
        let lambda_port = fake_lambda().await;
        let functions = vec![
            function(
                "Echo",
                "echo",
                vec![
                    route("POST", "/v1/codes", RouteAuth::None),
                    route("GET", "/v1/items/{id}", RouteAuth::Default),
                ],
                vec![ScheduleEvent {
                    name: "Nightly".into(),
                    kind: "Schedule".into(),
                    expression: Some("rate(1 day)".into()),
                    input: None,
                }],
            ),
            function(
                "Plain",
                "plain",
                vec![route("GET", "/plain", RouteAuth::None)],
                vec![],
            ),
            function(
                "Boom",
                "boom",
                vec![route("GET", "/boom", RouteAuth::None)],
                vec![],
            ),
            function("Auth", "auth", vec![], vec![]),
        ];
        let mut authorizers = BTreeMap::new();
        authorizers.insert(
            "Session".to_string(),
            AuthorizerSpec {
                name: "Session".into(),
                kind: AuthorizerKind::Lambda {
                    function: "Auth".into(),
                },
                identity_headers: vec!["Authorization".into()],
                identity_query_strings: vec![],
                simple_responses: true,
            },
        );
        let apis = ApiSpec::only_api("Session", authorizers);
        let state = GatewayState {
            routes: RouteTable::new(&functions, &apis),
            apis,
            functions: functions
                .iter()
                .map(|f| {
                    (
                        f.logical_id.clone(),
                        Arc::new(FunctionEndpoint::new(
                            &f.logical_id,
                            &f.binary,
                            lambda_port,
                            Duration::from_secs(3),
                            false,
                        )),
                    )
                })
                .collect(),
            schedules: functions
                .iter()
                .map(|f| (f.logical_id.clone(), f.schedules.clone()))
                .collect(),
            moto_url: "http://127.0.0.1:9".into(),
            http: reqwest::Client::new(),
            outbox: Mutex::new(OutboxState::default()),
            log_requests: false,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(serve(listener, Arc::new(state)));
        url
    }

    #[tokio::test]
    async fn routes_requests_to_functions_with_v2_events() {
        let url = gateway().await;
        let client = reqwest::Client::new();
        let r = client
            .post(format!("{url}/v1/codes?x=1"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", "198.51.100.9, 10.0.0.1")
            .body(r#"{"channel":"sms"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("apigw-requestid"));
        let request_id = r.headers()["apigw-requestid"].to_str().unwrap().to_string();
        let event: Value = r.json().await.unwrap();
        assert_eq!(event["routeKey"], "POST /v1/codes");
        assert_eq!(event["body"], r#"{"channel":"sms"}"#);
        assert_eq!(event["queryStringParameters"]["x"], "1");
        assert_eq!(event["requestContext"]["http"]["sourceIp"], "198.51.100.9");
        assert_eq!(event["requestContext"]["requestId"], request_id);
        assert_eq!(event["requestContext"]["apiId"], "Api");
        assert_eq!(event["headers"]["content-type"], "application/json");

        let r = client.get(format!("{url}/plain")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap(), json!({"ok": true}));
    }

    #[tokio::test]
    async fn gateway_errors() {
        let url = gateway().await;
        let client = reqwest::Client::new();
        let r = client.get(format!("{url}/nowhere")).send().await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "Not Found"})
        );
        let r = client.get(format!("{url}/boom")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        assert!(r.headers().contains_key("apigw-requestid"));
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "Internal Server Error"})
        );
    }

    /// `GET /v1/items/42`, with `Authorization` when given.
    async fn items_42(
        client: &reqwest::Client,
        url: &str,
        authorization: Option<&str>,
    ) -> reqwest::Response {
        let mut request = client.get(format!("{url}/v1/items/42"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send().await.unwrap()
    }

    #[tokio::test]
    async fn lambda_authorizer() {
        let url = gateway().await;
        let client = reqwest::Client::new();
        let r = items_42(&client, &url, None).await;
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "Unauthorized"})
        );
        let r = items_42(&client, &url, Some("Bearer bad")).await;
        assert_eq!(r.status(), 403);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"message": "Forbidden"})
        );
        let r = items_42(&client, &url, Some("Bearer good")).await;
        assert_eq!(r.status(), 200);
        let event: Value = r.json().await.unwrap();
        assert_eq!(event["pathParameters"]["id"], "42");
        assert_eq!(
            event["requestContext"]["authorizer"]["lambda"]["userId"],
            "u-1"
        );
    }

    #[tokio::test]
    async fn scheduled_invocation() {
        let url = gateway().await;
        let client = reqwest::Client::new();
        let run = |name: &str| client.post(format!("{url}/_local/schedules/{name}")).send();
        let r = run("echo").await.unwrap();
        assert_eq!(r.status(), 200);
        let result: Value = r.json().await.unwrap();
        let event: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(
            event["resources"][0],
            "arn:aws:events:us-east-1:123456789012:rule/uslugi-local-EchoNightly"
        );
        // The event of another moment, in UTC as EventBridge writes it; not a date-time: 400.
        let at = |time: &str| {
            let time =
                percent_encoding::utf8_percent_encode(time, percent_encoding::NON_ALPHANUMERIC);
            client
                .post(format!("{url}/_local/schedules/echo?time={time}"))
                .send()
        };
        let r = at("2027-01-05T09:00:00+03:00").await.unwrap();
        assert_eq!(r.status(), 200);
        let result: Value = r.json().await.unwrap();
        let event: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
        assert_eq!(event["time"], "2027-01-05T06:00:00Z");
        assert_eq!(at("tomorrow").await.unwrap().status(), 400);
        // A function with no schedule, and no function at all.
        for name in ["Plain", "Nope"] {
            assert_eq!(run(name).await.unwrap().status(), 404, "{name}");
        }
        let r = client
            .get(format!("{url}/_local/routes"))
            .send()
            .await
            .unwrap();
        let listed: Value = r.json().await.unwrap();
        assert_eq!(listed["routes"].as_array().unwrap().len(), 4);
    }
}
