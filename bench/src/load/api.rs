//! Requests to the local gateway, as an API client sends them, timed.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use hyper::Method;
use serde_json::Value as Json;

use crate::http::Gateway;

/// The device every request of the load test names.
pub const USER_AGENT: &str = "uslugi-load/1.0";

#[derive(Clone)]
pub struct Api {
    gateway: Gateway,
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
            gateway: Gateway::new(base, USER_AGENT),
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
        match self.gateway.exchange(method, path, headers, body).await {
            Ok((parts, bytes)) => Reply {
                status: parts.status.as_u16(),
                body: crate::http::json_body(&bytes),
                replayed: parts
                    .headers
                    .get("idempotent-replayed")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("true")),
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

    /// Fires the local stack's schedule `name` (`reconcile-payments`) as EventBridge would:
    /// the body of its answer (the `run` it started, what it `planned`), or an error
    /// with what the gateway answered instead of a 200.
    pub async fn fire_schedule(&self, name: &str) -> Result<Json> {
        let path = format!("/_local/schedules/{name}");
        let reply = self.send(Method::POST, &path, &[], None).await;
        if reply.status != 200 {
            bail!("firing the schedule {name}: {}", reply.describe());
        }
        Ok(reply.body)
    }
}
