//! Checks every response the end-to-end client receives against `docs/openapi.yaml`.
//!
//! The operation is found by method and path template; its declared response for the
//! status (or a `4XX`-style range, or `default`) must exist, the `Content-Type` must be one
//! the spec declares for it, a JSON body must match the response schema (JSON Schema
//! 2020-12, `$ref`s resolved inside the one document) and every declared response header
//! that is `required` must be there. The spec is read once per test process.
//!
//! Routes that are not in the spec on purpose are listed in [`UNCHECKED`], each with its
//! reason; nothing else is let through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use jsonschema::{Draft, Registry, Validator};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::Value;

/// Requests whose answers are not checked, and why: the method (`None` for any), the path
/// (a prefix when it ends with `/`, else the whole path) and the reason. Keep it short.
pub const UNCHECKED: &[(Option<&str>, &str, &str)] = &[
    (
        None,
        "/_local/",
        "the local stack's own routes (outbox, schedules): not part of the API",
    ),
    (
        Some("POST"),
        "/v1/nothing-here",
        "a route that does not exist, sent to see the gateway's own 404",
    ),
];

/// The URI the spec is registered under, for `$ref`s into it.
const SPEC_URI: &str = "urn:uslugi:openapi";

/// One response as the client saw it.
pub struct Seen<'a> {
    pub method: &'a Method,
    /// The path as sent, without the query.
    pub path: &'a str,
    pub status: u16,
    pub headers: &'a HeaderMap,
    pub body: &'a str,
}

/// What the check made of a response.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It matches the spec.
    Conforms,
    /// The route is one of [`UNCHECKED`], for this reason.
    Unchecked(&'static str),
}

struct Route {
    template: String,
    segments: Vec<String>,
}

pub struct Spec {
    doc: Value,
    routes: Vec<Route>,
    registry: Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

/// The spec of this repository, read once.
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let path = super::repo_root().join("docs/openapi.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Spec::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

/// Responses checked in this process, and the time the checks took in all (µs).
static CHECKED: AtomicU64 = AtomicU64::new(0);
static CHECK_MICROS: AtomicU64 = AtomicU64::new(0);

/// How many responses this process checked and how long that took, for the end of a run.
pub fn summary() -> String {
    let checked = CHECKED.load(Ordering::Relaxed);
    let micros = CHECK_MICROS.load(Ordering::Relaxed);
    format!(
        "{checked} responses checked against docs/openapi.yaml in {:.2} s of checking ({:.2} ms each)",
        micros as f64 / 1e6,
        if checked == 0 { 0.0 } else { micros as f64 / 1e3 / checked as f64 }
    )
}

/// Checks a response against the spec; panics with what does not match.
pub fn check(seen: &Seen<'_>) -> Verdict {
    let started = Instant::now();
    let verdict = spec().verdict(seen);
    CHECKED.fetch_add(1, Ordering::Relaxed);
    CHECK_MICROS.fetch_add(
        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    match verdict {
        Ok(Verdict::Unchecked(reason)) => {
            // Said once per reason and process, so a run shows what it did not check.
            static SAID: Mutex<Vec<&str>> = Mutex::new(Vec::new());
            let mut said = SAID.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !said.contains(&reason) {
                said.push(reason);
                println!(
                    "not checked against docs/openapi.yaml: {} {} and the like ({reason})",
                    seen.method, seen.path
                );
            }
            Verdict::Unchecked(reason)
        }
        Ok(verdict) => verdict,
        Err(mismatch) => panic!(
            "the response does not match docs/openapi.yaml: {} {} answered {}: {mismatch}\n    body: {}",
            seen.method,
            seen.path,
            seen.status,
            shorten(seen.body)
        ),
    }
}

fn shorten(body: &str) -> String {
    const MAX: usize = 2000;
    match body.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &body[..at]),
        None => body.to_string(),
    }
}

/// `~` and `/` escaped for a JSON pointer segment.
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer as a URI fragment: what a fragment may not hold (`{`, `}`, `%`, …)
/// percent-encoded.
fn fragment(pointer: &str) -> String {
    pointer
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn segments(path: &str) -> Vec<String> {
    path.trim_start_matches('/')
        .split('/')
        .map(str::to_string)
        .collect()
}

/// Whether a path segment matches a template segment (`{id}`, `{id}.pdf`, `charges:batch`);
/// how literal the match was (a literal segment outranks a parameter).
fn segment_matches(template: &str, actual: &str) -> Option<usize> {
    match (template.find('{'), template.find('}')) {
        (Some(open), Some(close)) if open < close => {
            let (prefix, suffix) = (&template[..open], &template[close + 1..]);
            let fits = actual.len() > prefix.len() + suffix.len()
                && actual.starts_with(prefix)
                && actual.ends_with(suffix);
            fits.then_some(0)
        }
        _ => (template == actual).then_some(1),
    }
}

impl Spec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
        // The template's conversion: every mapping key a string (`200:` as well as
        // `'200':`); the document has no CloudFormation tags for it to expand.
        let doc = uslugi_local::template::yaml_to_json(yaml)?;
        let routes = doc["paths"]
            .as_object()
            .ok_or("no paths")?
            .keys()
            .map(|template| Route {
                template: template.clone(),
                segments: segments(template),
            })
            .collect();
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(SPEC_URI, doc.clone())
            .and_then(|r| r.prepare())
            .map_err(|e| format!("the spec as a schema resource: {e}"))?;
        Ok(Self {
            doc,
            routes,
            registry,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// The path template that `path` falls under: the one with the most literal segments.
    fn route(&self, path: &str) -> Option<&str> {
        let actual = segments(path);
        self.routes
            .iter()
            .filter(|r| r.segments.len() == actual.len())
            .filter_map(|r| {
                r.segments
                    .iter()
                    .zip(&actual)
                    .map(|(t, a)| segment_matches(t, a))
                    .sum::<Option<usize>>()
                    .map(|literal| (literal, r.template.as_str()))
            })
            .max_by_key(|(literal, _)| *literal)
            .map(|(_, template)| template)
    }

    /// Follows a `$ref` to `#/...` inside the document; where the object is, as a pointer.
    fn follow<'a>(&'a self, value: &'a Value, at: String) -> Result<(&'a Value, String), String> {
        let mut current = (value, at);
        for _ in 0..16 {
            let Some(reference) = current.0.get("$ref").and_then(Value::as_str) else {
                return Ok(current);
            };
            let pointer = reference.strip_prefix('#').ok_or_else(|| {
                format!("{}: a $ref outside the document: {reference}", current.1)
            })?;
            let target = self
                .doc
                .pointer(pointer)
                .ok_or_else(|| format!("{}: $ref {reference} names nothing", current.1))?;
            current = (target, pointer.to_string());
        }
        Err(format!("{}: $ref chain too long", current.1))
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        let schema = serde_json::json!({ "$ref": format!("{SPEC_URI}#{}", fragment(pointer)) });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_string(), validator.clone());
        Ok(validator)
    }

    /// Whether the response matches; what does not, naming the operation, the status and
    /// the place in the spec.
    pub fn verdict(&self, seen: &Seen<'_>) -> Result<Verdict, String> {
        let method = seen.method.as_str().to_ascii_lowercase();
        for (only, prefix, reason) in UNCHECKED {
            let method_fits = only.is_none_or(|m| m.eq_ignore_ascii_case(&method));
            let path_fits = if prefix.ends_with('/') {
                seen.path.starts_with(prefix)
            } else {
                seen.path == *prefix
            };
            if method_fits && path_fits {
                return Ok(Verdict::Unchecked(reason));
            }
        }
        let template = self.route(seen.path).ok_or_else(|| {
            format!(
                "no path of the spec matches {}; a route left out on purpose belongs in UNCHECKED (tests/support/spec.rs)",
                seen.path
            )
        })?;
        let paths_at = format!("/paths/{}", escape(template));
        let operation = self.doc["paths"][template]
            .get(&method)
            .ok_or_else(|| format!("{template} has no {} operation in the spec", seen.method))?;
        let name = operation["operationId"]
            .as_str()
            .map(|id| format!("{id} ({} {template})", seen.method))
            .unwrap_or_else(|| format!("{} {template}", seen.method));
        let responses = operation["responses"]
            .as_object()
            .ok_or_else(|| format!("{name}: no responses"))?;
        let status = seen.status.to_string();
        let range = format!("{}XX", seen.status / 100);
        let key = [status.as_str(), range.as_str(), "default"]
            .into_iter()
            .find(|k| responses.contains_key(*k))
            .ok_or_else(|| {
                format!(
                    "{name}: status {} is not declared (declared: {})",
                    seen.status,
                    responses.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let (response, response_at) = self.follow(
            &responses[key],
            format!("{paths_at}/{method}/responses/{}", escape(key)),
        )?;
        let at = format!("{name}, status {} (response {response_at})", seen.status);

        // Required headers.
        if let Some(headers) = response.get("headers").and_then(Value::as_object) {
            for (header, declared) in headers {
                if header.eq_ignore_ascii_case("content-type") {
                    continue;
                }
                let (declared, _) = self.follow(
                    declared,
                    format!("{response_at}/headers/{}", escape(header)),
                )?;
                if declared["required"] == true && !seen.headers.contains_key(header.as_str()) {
                    return Err(format!("{at}: the required header {header} is missing"));
                }
            }
        }

        // Content type and body.
        let content = response.get("content").and_then(Value::as_object);
        let Some(content) = content.filter(|c| !c.is_empty()) else {
            if seen.body.is_empty() {
                return Ok(Verdict::Conforms);
            }
            return Err(format!(
                "{at}: the spec declares no body, the response has one"
            ));
        };
        let actual_type = seen
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .ok_or_else(|| {
                format!(
                    "{at}: no Content-Type (declared: {})",
                    content.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let media = content
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&actual_type))
            .or_else(|| {
                content.keys().find(|k| {
                    k.strip_suffix("/*").is_some_and(|major| {
                        actual_type.starts_with(&format!("{}/", major.to_ascii_lowercase()))
                    }) || k.as_str() == "*/*"
                })
            })
            .ok_or_else(|| {
                format!(
                    "{at}: Content-Type {actual_type} is not declared (declared: {})",
                    content.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
        let is_json = actual_type == "application/json" || actual_type.ends_with("+json");
        if !is_json {
            return Ok(Verdict::Conforms);
        }
        let body: Value = serde_json::from_str(seen.body)
            .map_err(|e| format!("{at}: the {actual_type} body is not JSON: {e}"))?;
        if content[media].get("schema").is_none() {
            return Ok(Verdict::Conforms);
        }
        let schema_at = format!("{response_at}/content/{}/schema", escape(media));
        let validator = self.validator(&schema_at)?;
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .take(5)
            .map(|e| {
                let instance = e.instance_path().as_str();
                // The keyword's place in the spec once a `$ref` was followed, else under
                // the response's schema.
                let keyword = e.schema_path().as_str().trim_start_matches("/$ref");
                let keyword =
                    if keyword.starts_with("/components/") || keyword.starts_with("/paths/") {
                        keyword.to_string()
                    } else {
                        format!("{schema_at}{keyword}")
                    };
                format!(
                    "at {} of the body (schema {keyword}): {}",
                    if instance.is_empty() { "/" } else { instance },
                    e.masked()
                )
            })
            .collect();
        if errors.is_empty() {
            Ok(Verdict::Conforms)
        } else {
            Err(format!("{at}, {media}:\n      {}", errors.join("\n      ")))
        }
    }
}
