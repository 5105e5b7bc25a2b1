//! Requests to the local gateway, as an API client sends them, timed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use serde_json::Value as Json;

use crate::http::{client, Client};

/// The device every request of the load test names.
pub const USER_AGENT: &str = "uslugi-load/1.0";
/// Longer than any answer the gateway waits for (a function's timeout and its slack).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct Api {
    base: String,
    http: Client,
}

/// An answer, or why there was none.
#[derive(Debug, Clone)]
pub struct Reply {
    /// 0: no answer (the connection failed or the request timed out).
    pub status: u16,
    pub body: Json,
    /// `Idempotent-Replayed: true`.
    pub replayed: bool,
    pub elapsed: Duration,
    /// Why there was no answer.
    pub error: Option<String>,
}

impl Reply {
    /// The problem code of an error answer.
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.body[name].as_str()
    }

    /// What the answer was, for an error message.
    pub fn describe(&self) -> String {
        match &self.error {
            Some(e) => format!("no answer: {e}"),
            None => format!("{} {}", self.status, self.body),
        }
    }
}

impl Api {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: client(),
        }
    }

    /// Sends one request; a failure to get an answer is a [`Reply`] with status 0, not an
    /// error, so that the load test counts it.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Reply {
        let started = Instant::now();
        match self.exchange(method, path, headers, body).await {
            Ok((status, replayed, body)) => Reply {
                status,
                body,
                replayed,
                elapsed: started.elapsed(),
                error: None,
            },
            Err(e) => Reply {
                status: 0,
                body: Json::Null,
                replayed: false,
                elapsed: started.elapsed(),
                error: Some(format!("{e:#}")),
            },
        }
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Result<(u16, bool, Json)> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("user-agent", USER_AGENT);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let payload = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(payload))
            .with_context(|| format!("building {method} {path}"))?;
        let response = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.http.request(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((parts, bytes))
        })
        .await
        .with_context(|| format!("{method} {path}: no answer in {REQUEST_TIMEOUT:?}"))?
        .with_context(|| format!("{method} {path}"))?;
        let (parts, bytes) = response;
        let replayed = parts
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let body = if bytes.is_empty() {
            Json::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((parts.status.as_u16(), replayed, body))
    }
}
