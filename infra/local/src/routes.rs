//! HTTP API route selection, as API Gateway does it: the most specific route
//! wins (literal segments over `{param}` over `{proxy+}`, a named method over
//! `ANY`), and `$default` catches everything else.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use crate::model::{ApiSpec, FunctionSpec, RouteAuth};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// `POST /v1/codes/{id}/verify` or `$default`.
    pub route_key: String,
    pub method: String,
    /// Logical id of the function behind the route.
    pub function: String,
    pub api: String,
    /// Name of the authorizer guarding the route, after `DefaultAuthorizer` and `NONE`.
    pub authorizer: Option<String>,
    /// `None` for `$default`.
    segments: Option<Vec<Segment>>,
}

/// Compared in order: no greedy segment, literal segments, segments, named method.
type Specificity = (bool, usize, usize, bool);

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

fn split(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    if trimmed.is_empty() {
        vec![]
    } else {
        trimmed.split('/').collect()
    }
}

fn parse_segments(path: &str) -> Vec<Segment> {
    split(path)
        .into_iter()
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_suffix('+') {
                    Some(greedy) => Segment::Greedy(greedy.to_string()),
                    None => Segment::Param(name.to_string()),
                },
                None => Segment::Literal(s.to_string()),
            },
        )
        .collect()
}

impl RouteTable {
    pub fn new(functions: &[FunctionSpec], apis: &BTreeMap<String, ApiSpec>) -> RouteTable {
        let mut routes: Vec<Route> = Vec::new();
        for f in functions {
            for e in &f.http_events {
                let route_key = match &e.path {
                    Some(path) => format!("{} {}", e.method, path),
                    None => "$default".to_string(),
                };
                if routes.iter().any(|r| r.route_key == route_key) {
                    tracing::warn!(
                        "route {route_key} is declared twice; {}.{} is ignored",
                        f.logical_id,
                        e.name
                    );
                    continue;
                }
                let api = apis.get(&e.api);
                let authorizer = match &e.auth {
                    RouteAuth::None => None,
                    RouteAuth::Named(n) => Some(n.clone()),
                    RouteAuth::Default => api.and_then(|a| a.default_authorizer.clone()),
                };
                routes.push(Route {
                    route_key,
                    method: e.method.clone(),
                    function: f.logical_id.clone(),
                    api: e.api.clone(),
                    authorizer,
                    segments: e.path.as_deref().map(parse_segments),
                });
            }
        }
        RouteTable { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The route for a request, with its decoded path parameters.
    pub fn find(&self, method: &str, path: &str) -> Option<(&Route, BTreeMap<String, String>)> {
        let request = split(path);
        let mut best: Option<(Specificity, &Route, BTreeMap<String, String>)> = None;
        for route in &self.routes {
            let Some(segments) = &route.segments else {
                continue;
            };
            if route.method != "ANY" && !route.method.eq_ignore_ascii_case(method) {
                continue;
            }
            let Some(params) = match_segments(segments, &request) else {
                continue;
            };
            let greedy = segments.iter().any(|s| matches!(s, Segment::Greedy(_)));
            let literals = segments
                .iter()
                .filter(|s| matches!(s, Segment::Literal(_)))
                .count();
            let score = (!greedy, literals, segments.len(), route.method != "ANY");
            if best.as_ref().is_none_or(|(b, _, _)| score > *b) {
                best = Some((score, route, params));
            }
        }
        if let Some((_, route, params)) = best {
            return Some((route, params));
        }
        self.routes
            .iter()
            .find(|r| r.segments.is_none())
            .map(|r| (r, BTreeMap::new()))
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn match_segments(segments: &[Segment], request: &[&str]) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Greedy(name) => {
                // `{proxy+}` takes the rest of the path, at least one segment.
                if i != segments.len() - 1 || request.len() <= i {
                    return None;
                }
                let rest = request[i..].join("/");
                if rest.is_empty() {
                    return None;
                }
                params.insert(name.clone(), decode(&rest));
                return Some(params);
            }
            Segment::Literal(lit) => {
                if request.get(i) != Some(&lit.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => match request.get(i) {
                Some(value) if !value.is_empty() => {
                    params.insert(name.clone(), decode(value));
                }
                _ => return None,
            },
        }
    }
    (segments.len() == request.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::HttpEvent;

    fn table(routes: &[(&str, Option<&str>, RouteAuth)]) -> RouteTable {
        let functions: Vec<FunctionSpec> = routes
            .iter()
            .enumerate()
            .map(|(i, (method, path, auth))| FunctionSpec {
                logical_id: format!("F{i}"),
                binary: format!("f{i}"),
                environment: Default::default(),
                secret_variables: Default::default(),
                timeout_secs: 3,
                http_events: vec![HttpEvent {
                    name: "E".into(),
                    api: "Api".into(),
                    method: method.to_string(),
                    path: path.map(str::to_string),
                    auth: auth.clone(),
                }],
                sqs_events: vec![],
                schedules: vec![],
            })
            .collect();
        RouteTable::new(&functions, &ApiSpec::only_api("Default", BTreeMap::new()))
    }

    #[test]
    fn most_specific_route_wins() {
        let t = table(&[
            ("ANY", Some("/v1/{proxy+}"), RouteAuth::None),
            ("POST", Some("/v1/codes/{id}/verify"), RouteAuth::Default),
            ("POST", Some("/v1/codes/{id}/{action}"), RouteAuth::None),
            ("POST", Some("/v1/codes"), RouteAuth::Named("Other".into())),
            ("ANY", Some("/v1/codes"), RouteAuth::None),
            ("ANY", None, RouteAuth::None),
        ]);
        let (r, p) = t.find("POST", "/v1/codes/abc%20d/verify").unwrap();
        assert_eq!(r.route_key, "POST /v1/codes/{id}/verify");
        assert_eq!(p["id"], "abc d");
        assert_eq!(r.authorizer.as_deref(), Some("Default"));

        let (r, p) = t.find("POST", "/v1/codes/abc/resend").unwrap();
        assert_eq!(r.route_key, "POST /v1/codes/{id}/{action}");
        assert_eq!(p["action"], "resend");

        let (r, _) = t.find("POST", "/v1/codes").unwrap();
        assert_eq!(r.route_key, "POST /v1/codes");
        assert_eq!(r.authorizer.as_deref(), Some("Other"));
        let (r, _) = t.find("GET", "/v1/codes").unwrap();
        assert_eq!(r.route_key, "ANY /v1/codes");

        let (r, p) = t.find("DELETE", "/v1/a/b/c").unwrap();
        assert_eq!(r.route_key, "ANY /v1/{proxy+}");
        assert_eq!(p["proxy"], "a/b/c");

        let (r, _) = t.find("GET", "/elsewhere").unwrap();
        assert_eq!(r.route_key, "$default");
    }

    #[test]
    fn no_match_without_default_route() {
        let t = table(&[
            ("POST", Some("/v1/codes"), RouteAuth::None),
            ("GET", Some("/v1/items/{id}"), RouteAuth::None),
            ("GET", Some("/files/{proxy+}"), RouteAuth::None),
        ]);
        assert!(t.find("GET", "/v1/codes").is_none());
        assert!(t.find("POST", "/v1/codes/x").is_none());
        assert!(t.find("GET", "/v1/items/").is_none());
        assert!(t.find("GET", "/v1/items").is_none());
        assert!(t.find("GET", "/files").is_none());
        assert!(t.find("GET", "/files/a").is_some());
        assert!(t.find("post", "/v1/codes").is_some());
    }

    #[test]
    fn root_path() {
        let t = table(&[("GET", Some("/"), RouteAuth::None)]);
        assert_eq!(t.find("GET", "/").unwrap().0.route_key, "GET /");
        assert!(t.find("GET", "/x").is_none());
    }
}
