//! The events AWS would deliver to the functions, and the mapping of function
//! results back to HTTP responses, in the shapes API Gateway (HTTP API, payload
//! format 2.0), SQS and EventBridge use.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::intrinsics::{scalar_text, ACCOUNT_ID, PARTITION, REGION};

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// What the gateway knows about one incoming request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub raw_path: String,
    pub raw_query: String,
    /// Header names lower-cased, in arrival order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The TCP peer, or the first `X-Forwarded-For` address (see the gateway).
    pub source_ip: String,
    pub protocol: String,
    pub request_id: String,
    pub time: OffsetDateTime,
    pub api_id: String,
}

impl HttpRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn domain_name(&self) -> String {
        self.header("host").unwrap_or("localhost").to_string()
    }

    /// Headers as API Gateway passes them: one entry per name, repeated values
    /// joined by commas, cookies moved out into `cookies`.
    fn event_headers(&self) -> Map<String, Value> {
        let mut out: Map<String, Value> = Map::new();
        for (k, v) in &self.headers {
            if k == "cookie" {
                continue;
            }
            match out.get_mut(k) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(v);
                }
                _ => {
                    out.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        out
    }

    fn cookies(&self) -> Vec<Value> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| Value::String(c.to_string()))
            .collect()
    }

    pub fn query_parameters(&self) -> Map<String, Value> {
        let mut out: Map<String, Value> = Map::new();
        for (k, v) in form_urlencoded::parse(self.raw_query.as_bytes()) {
            match out.get_mut(k.as_ref()) {
                Some(Value::String(existing)) => {
                    existing.push(',');
                    existing.push_str(&v);
                }
                _ => {
                    out.insert(k.into_owned(), Value::String(v.into_owned()));
                }
            }
        }
        out
    }

    fn request_context(&self, route_key: &str) -> Value {
        let domain = self.domain_name();
        let prefix = domain
            .split(['.', ':'])
            .next()
            .unwrap_or_default()
            .to_string();
        json!({
            "accountId": ACCOUNT_ID,
            "apiId": self.api_id,
            "domainName": domain,
            "domainPrefix": prefix,
            "http": {
                "method": self.method,
                "path": self.raw_path,
                "protocol": self.protocol,
                "sourceIp": self.source_ip,
                "userAgent": self.header("user-agent").unwrap_or_default(),
            },
            "requestId": self.request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": api_gateway_time(self.time),
            "timeEpoch": (self.time.unix_timestamp_nanos() / 1_000_000) as i64,
        })
    }

    /// Fields shared by the route event and the authorizer event.
    fn common_fields(
        &self,
        route_key: &str,
        path_parameters: &BTreeMap<String, String>,
    ) -> Map<String, Value> {
        let mut event = Map::new();
        event.insert("version".into(), json!("2.0"));
        event.insert("routeKey".into(), json!(route_key));
        event.insert("rawPath".into(), json!(self.raw_path));
        event.insert("rawQueryString".into(), json!(self.raw_query));
        let cookies = self.cookies();
        if !cookies.is_empty() {
            event.insert("cookies".into(), Value::Array(cookies));
        }
        event.insert("headers".into(), Value::Object(self.event_headers()));
        let query = self.query_parameters();
        if !query.is_empty() {
            event.insert("queryStringParameters".into(), Value::Object(query));
        }
        if !path_parameters.is_empty() {
            event.insert("pathParameters".into(), json!(path_parameters));
        }
        event.insert("requestContext".into(), self.request_context(route_key));
        event
    }

    /// `arn:aws:execute-api:region:account:api/stage/METHOD/path`, what IAM
    /// policies returned by authorizers are matched against.
    pub fn route_arn(&self) -> String {
        format!(
            "arn:{PARTITION}:execute-api:{REGION}:{ACCOUNT_ID}:{}/$default/{}/{}",
            self.api_id,
            self.method,
            self.raw_path.trim_start_matches('/')
        )
    }
}

/// `12/Mar/2020:19:03:58 +0000`, API Gateway's `requestContext.time`.
fn api_gateway_time(t: OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// The payload format 2.0 event for a route.
pub fn http_event(
    request: &HttpRequest,
    route_key: &str,
    path_parameters: &BTreeMap<String, String>,
    authorizer_context: Option<&Value>,
) -> Value {
    let mut event = request.common_fields(route_key, path_parameters);
    if let Some(context) = authorizer_context {
        if let Some(Value::Object(rc)) = event.get_mut("requestContext") {
            rc.insert("authorizer".into(), json!({ "lambda": context }));
        }
    }
    if !request.body.is_empty() {
        // Text bodies go through as they are; anything that is not UTF-8 is
        // base64-encoded, as API Gateway does for binary payloads.
        let (body, encoded) = match std::str::from_utf8(&request.body) {
            Ok(text) => (text.to_string(), false),
            Err(_) => (BASE64.encode(&request.body), true),
        };
        event.insert("body".into(), Value::String(body));
        event.insert("isBase64Encoded".into(), Value::Bool(encoded));
    } else {
        event.insert("isBase64Encoded".into(), Value::Bool(false));
    }
    Value::Object(event)
}

/// The payload format 2.0 event for a Lambda REQUEST authorizer.
pub fn authorizer_event(
    request: &HttpRequest,
    route_key: &str,
    path_parameters: &BTreeMap<String, String>,
    identity_source: &[String],
) -> Value {
    let mut event = request.common_fields(route_key, path_parameters);
    event.insert("type".into(), json!("REQUEST"));
    event.insert("routeArn".into(), json!(request.route_arn()));
    event.insert("identitySource".into(), json!(identity_source));
    Value::Object(event)
}

/// What an authorizer decided.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthDecision {
    /// Allowed; the context to hand to the route as `requestContext.authorizer.lambda`.
    Allow(Value),
    Deny,
}

/// Interprets an authorizer's result, simple (`isAuthorized`) or IAM policy.
/// A result in the wrong shape is an error, as API Gateway treats it (500).
pub fn authorizer_decision(
    result: &Value,
    simple_responses: bool,
    route_arn: &str,
) -> Result<AuthDecision, String> {
    let context = result.get("context").cloned().unwrap_or(Value::Null);
    if simple_responses {
        return match result.get("isAuthorized") {
            Some(Value::Bool(true)) => Ok(AuthDecision::Allow(context)),
            Some(Value::Bool(false)) => Ok(AuthDecision::Deny),
            _ => Err("authorizer result has no boolean isAuthorized".into()),
        };
    }
    let Some(policy) = result.get("policyDocument") else {
        return Err("authorizer result has no policyDocument".into());
    };
    let statements = match policy.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => return Err("policyDocument has no Statement".into()),
    };
    let listed = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::Array(items)) => items.iter().filter_map(|i| scalar_text(i).ok()).collect(),
            Some(v) => scalar_text(v).ok().into_iter().collect(),
            None => vec![],
        }
    };
    let mut allowed = false;
    for statement in &statements {
        let actions = listed(statement.get("Action"));
        let resources = listed(statement.get("Resource"));
        let action_matches = actions
            .iter()
            .any(|a| glob_match(&a.to_ascii_lowercase(), "execute-api:invoke"));
        let resource_matches = resources.iter().any(|r| glob_match(r, route_arn));
        if !(action_matches && resource_matches) {
            continue;
        }
        match statement.get("Effect").and_then(Value::as_str) {
            // An explicit Deny wins over any Allow.
            Some(e) if e.eq_ignore_ascii_case("deny") => return Ok(AuthDecision::Deny),
            Some(e) if e.eq_ignore_ascii_case("allow") => allowed = true,
            _ => {}
        }
    }
    Ok(if allowed {
        AuthDecision::Allow(context)
    } else {
        AuthDecision::Deny
    })
}

/// IAM-style wildcard match: `*` any run of characters, `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// An HTTP response to send back to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn json(status: u16, body: &Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// API Gateway's own error responses, e.g. `{"message":"Not Found"}`.
    pub fn message(status: u16, message: &str) -> HttpResponse {
        HttpResponse::json(status, &json!({ "message": message }))
    }
}

/// Maps a function result to the HTTP response, following payload format 2.0:
/// an object with `statusCode` is a proxy response; any other JSON is the body
/// of a 200 `application/json` response.
pub fn map_function_result(result: &Value) -> Result<HttpResponse, String> {
    let Some(proxy) = result.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Ok(HttpResponse::json(200, result));
    };
    let status = proxy
        .get("statusCode")
        .and_then(|s| {
            s.as_u64()
                .or_else(|| s.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|s| (100..=599).contains(s))
        .ok_or("statusCode is not an HTTP status")? as u16;

    let mut headers = Vec::new();
    if let Some(Value::Object(map)) = proxy.get("headers") {
        for (k, v) in map {
            if let Ok(v) = scalar_text(v) {
                headers.push((k.to_ascii_lowercase(), v));
            }
        }
    }
    if let Some(Value::Object(map)) = proxy.get("multiValueHeaders") {
        for (k, values) in map {
            if let Value::Array(values) = values {
                for v in values {
                    if let Ok(v) = scalar_text(v) {
                        headers.push((k.to_ascii_lowercase(), v));
                    }
                }
            }
        }
    }
    if let Some(Value::Array(cookies)) = proxy.get("cookies") {
        for c in cookies {
            if let Some(c) = c.as_str() {
                headers.push(("set-cookie".into(), c.to_string()));
            }
        }
    }
    let body = match proxy.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => {
            if proxy.get("isBase64Encoded") == Some(&Value::Bool(true)) {
                BASE64
                    .decode(s)
                    .map_err(|e| format!("body is not valid base64: {e}"))?
            } else {
                s.clone().into_bytes()
            }
        }
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// One SQS message as the event source mapping delivers it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqsRecord {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub md5_of_body: String,
    pub md5_of_message_attributes: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub message_attributes: BTreeMap<String, Value>,
}

pub fn sqs_event(records: &[SqsRecord], queue_arn: &str) -> Value {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut rec = json!({
                "messageId": r.message_id,
                "receiptHandle": r.receipt_handle,
                "body": r.body,
                "attributes": r.attributes,
                "messageAttributes": r.message_attributes,
                "md5OfBody": r.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            });
            if let (Some(md5), Value::Object(map)) = (&r.md5_of_message_attributes, &mut rec) {
                map.insert("md5OfMessageAttributes".into(), json!(md5));
            }
            rec
        })
        .collect();
    json!({ "Records": records })
}

/// Which messages of a batch failed, from the function's result.
///
/// `None` means the whole batch is to be retried (the function reported an
/// identifier that is not in the batch, which Lambda treats as a batch failure).
pub fn batch_item_failures(result: &Value, message_ids: &[String]) -> Option<Vec<String>> {
    let failures = match result.get("batchItemFailures") {
        None | Some(Value::Null) => return Some(vec![]),
        Some(Value::Array(items)) => items,
        Some(_) => return None,
    };
    let mut out = Vec::new();
    for f in failures {
        let id = f.get("itemIdentifier").and_then(Value::as_str)?;
        if id.is_empty() || !message_ids.iter().any(|m| m == id) {
            return None;
        }
        out.push(id.to_string());
    }
    Some(out)
}

/// The event EventBridge delivers for a scheduled rule.
pub fn scheduled_event(rule_name: &str, id: &str, time: OffsetDateTime) -> Value {
    let time = time
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(time)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": time,
        "region": REGION,
        "resources": [format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}")],
        "detail": {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            raw_path: "/v1/codes/abc/verify".into(),
            raw_query: "a=1&b=x%20y&a=2".into(),
            headers: vec![
                ("host".into(), "127.0.0.1:3000".into()),
                ("content-type".into(), "application/json".into()),
                ("x-multi".into(), "1".into()),
                ("x-multi".into(), "2".into()),
                ("cookie".into(), "s=1; t=2".into()),
                ("user-agent".into(), "curl/8".into()),
            ],
            body: br#"{"code":"123456"}"#.to_vec(),
            source_ip: "203.0.113.7".into(),
            protocol: "HTTP/1.1".into(),
            request_id: "req-1".into(),
            time: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            api_id: "HttpApi".into(),
        }
    }

    fn params() -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        p.insert("id".to_string(), "abc".to_string());
        p
    }

    #[test]
    fn http_event_has_the_payload_v2_shape() {
        let e = http_event(&request(), "POST /v1/codes/{id}/verify", &params(), None);
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["routeKey"], "POST /v1/codes/{id}/verify");
        assert_eq!(e["rawPath"], "/v1/codes/abc/verify");
        assert_eq!(e["rawQueryString"], "a=1&b=x%20y&a=2");
        assert_eq!(e["cookies"], json!(["s=1", "t=2"]));
        assert_eq!(e["headers"]["x-multi"], "1,2");
        assert_eq!(e["headers"].get("cookie"), None);
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["pathParameters"], json!({"id": "abc"}));
        assert_eq!(e["body"], r#"{"code":"123456"}"#);
        assert_eq!(e["isBase64Encoded"], false);
        let rc = &e["requestContext"];
        assert_eq!(rc["accountId"], "123456789012");
        assert_eq!(rc["apiId"], "HttpApi");
        assert_eq!(rc["domainName"], "127.0.0.1:3000");
        assert_eq!(rc["http"]["method"], "POST");
        assert_eq!(rc["http"]["path"], "/v1/codes/abc/verify");
        assert_eq!(rc["http"]["sourceIp"], "203.0.113.7");
        assert_eq!(rc["http"]["userAgent"], "curl/8");
        assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
        assert_eq!(rc["requestId"], "req-1");
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["time"], "14/Nov/2023:22:13:20 +0000");
        assert_eq!(rc["timeEpoch"], 1_700_000_000_000i64);
        assert_eq!(rc.get("authorizer"), None);
    }

    #[test]
    fn http_event_without_body_query_or_params() {
        let mut r = request();
        r.body.clear();
        r.raw_query.clear();
        r.headers.retain(|(k, _)| k != "cookie");
        let e = http_event(
            &r,
            "$default",
            &BTreeMap::new(),
            Some(&json!({"user": "u1"})),
        );
        assert_eq!(e.get("body"), None);
        assert_eq!(e.get("cookies"), None);
        assert_eq!(e.get("queryStringParameters"), None);
        assert_eq!(e.get("pathParameters"), None);
        assert_eq!(
            e["requestContext"]["authorizer"],
            json!({"lambda": {"user": "u1"}})
        );
    }

    #[test]
    fn binary_bodies_are_base64() {
        let mut r = request();
        r.body = vec![0xff, 0x00, 0x10];
        let e = http_event(&r, "$default", &BTreeMap::new(), None);
        assert_eq!(e["body"], "/wAQ");
        assert_eq!(e["isBase64Encoded"], true);
    }

    #[test]
    fn authorizer_event_shape() {
        let e = authorizer_event(
            &request(),
            "POST /v1/codes/{id}/verify",
            &params(),
            &["Bearer t".into()],
        );
        assert_eq!(e["type"], "REQUEST");
        assert_eq!(e["version"], "2.0");
        assert_eq!(
            e["routeArn"],
            "arn:aws:execute-api:us-east-1:123456789012:HttpApi/$default/POST/v1/codes/abc/verify"
        );
        assert_eq!(e["identitySource"], json!(["Bearer t"]));
        assert_eq!(e.get("body"), None);
    }

    #[test]
    fn simple_authorizer_responses() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/x";
        assert_eq!(
            authorizer_decision(
                &json!({"isAuthorized": true, "context": {"u": 1}}),
                true,
                arn
            ),
            Ok(AuthDecision::Allow(json!({"u": 1})))
        );
        assert_eq!(
            authorizer_decision(&json!({"isAuthorized": false}), true, arn),
            Ok(AuthDecision::Deny)
        );
        assert!(authorizer_decision(&json!({"policyDocument": {}}), true, arn).is_err());
    }

    #[test]
    fn iam_policy_authorizer_responses() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:api/$default/GET/v1/profile";
        let policy = |effect: &str, resource: &str| {
            json!({
                "principalId": "user",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": [resource]}]
                },
                "context": {"userId": "u1"}
            })
        };
        assert_eq!(
            authorizer_decision(
                &policy("Allow", "arn:aws:execute-api:us-east-1:123456789012:api/*"),
                false,
                arn
            ),
            Ok(AuthDecision::Allow(json!({"userId": "u1"})))
        );
        assert_eq!(
            authorizer_decision(
                &policy("Allow", "arn:aws:execute-api:*:*:api/$default/POST/*"),
                false,
                arn
            ),
            Ok(AuthDecision::Deny)
        );
        assert_eq!(
            authorizer_decision(&policy("Deny", "*"), false, arn),
            Ok(AuthDecision::Deny)
        );
        let both = json!({"policyDocument": {"Statement": [
            {"Action": "*", "Effect": "Allow", "Resource": "*"},
            {"Action": "execute-api:*", "Effect": "Deny", "Resource": arn}
        ]}});
        assert_eq!(
            authorizer_decision(&both, false, arn),
            Ok(AuthDecision::Deny)
        );
        assert!(authorizer_decision(&json!({"isAuthorized": true}), false, arn).is_err());
    }

    #[test]
    fn globbing() {
        for (pattern, text, matches) in [
            ("*", "anything", true),
            ("a*c", "abbbc", true),
            ("a?c", "abc", true),
            ("a?c", "abbc", false),
            ("arn:*:api/*/GET/*", "arn:aws:x:api/$default/GET/v1/a", true),
            (
                "arn:*:api/*/GET/*",
                "arn:aws:x:api/$default/POST/v1/a",
                false,
            ),
        ] {
            assert_eq!(glob_match(pattern, text), matches, "{pattern} ~ {text}");
        }
    }

    #[test]
    fn proxy_results_map_to_responses() {
        let r = map_function_result(&json!({
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Num": 5},
            "multiValueHeaders": {"x-many": ["a", "b"]},
            "cookies": ["s=1; HttpOnly"],
            "body": "{\"id\":\"x\"}",
            "isBase64Encoded": false
        }))
        .unwrap();
        assert_eq!(r.status, 201);
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/json".into())));
        assert!(r.headers.contains(&("x-num".into(), "5".into())));
        assert!(r.headers.contains(&("x-many".into(), "a".into())));
        assert!(r.headers.contains(&("x-many".into(), "b".into())));
        assert!(r
            .headers
            .contains(&("set-cookie".into(), "s=1; HttpOnly".into())));
        assert_eq!(r.body, b"{\"id\":\"x\"}");

        let r = map_function_result(&json!({"statusCode": "204"})).unwrap();
        assert_eq!(r.status, 204);
        assert!(r.body.is_empty());

        let r = map_function_result(
            &json!({"statusCode": 200, "body": "/wAQ", "isBase64Encoded": true}),
        )
        .unwrap();
        assert_eq!(r.body, vec![0xff, 0x00, 0x10]);

        assert!(map_function_result(&json!({"statusCode": 42})).is_err());
    }

    #[test]
    fn non_proxy_results_are_json_bodies() {
        let r = map_function_result(&json!({"ok": true})).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
        assert_eq!(r.body, br#"{"ok":true}"#);
        let r = map_function_result(&json!("hello")).unwrap();
        assert_eq!(r.body, br#""hello""#);
    }

    #[test]
    fn sqs_event_shape() {
        let mut attributes = BTreeMap::new();
        attributes.insert("ApproximateReceiveCount".to_string(), "2".to_string());
        let record = SqsRecord {
            message_id: "m1".into(),
            receipt_handle: "rh".into(),
            body: "hello".into(),
            md5_of_body: "5d41402abc4b2a76b9719d911017c592".into(),
            md5_of_message_attributes: None,
            attributes,
            message_attributes: BTreeMap::new(),
        };
        let e = sqs_event(&[record], "arn:aws:sqs:us-east-1:123456789012:q");
        let r = &e["Records"][0];
        assert_eq!(r["messageId"], "m1");
        assert_eq!(r["receiptHandle"], "rh");
        assert_eq!(r["body"], "hello");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "2");
        assert_eq!(r["messageAttributes"], json!({}));
        assert_eq!(r["md5OfBody"], "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(r["awsRegion"], "us-east-1");
    }

    #[test]
    fn batch_failures() {
        let ids = vec!["a".to_string(), "b".to_string()];
        assert_eq!(batch_item_failures(&Value::Null, &ids), Some(vec![]));
        assert_eq!(batch_item_failures(&json!({}), &ids), Some(vec![]));
        assert_eq!(
            batch_item_failures(&json!({"batchItemFailures": []}), &ids),
            Some(vec![])
        );
        assert_eq!(
            batch_item_failures(
                &json!({"batchItemFailures": [{"itemIdentifier": "b"}]}),
                &ids
            ),
            Some(vec!["b".to_string()])
        );
        assert_eq!(
            batch_item_failures(
                &json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]}),
                &ids
            ),
            None
        );
        assert_eq!(
            batch_item_failures(&json!({"batchItemFailures": "x"}), &ids),
            None
        );
    }

    #[test]
    fn scheduled_event_shape() {
        let e = scheduled_event(
            "Nightly",
            "id-1",
            OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        );
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["source"], "aws.events");
        assert_eq!(e["time"], "2023-11-14T22:13:20Z");
        assert_eq!(
            e["resources"][0],
            "arn:aws:events:us-east-1:123456789012:rule/Nightly"
        );
        assert_eq!(e["detail"], json!({}));
    }
}
