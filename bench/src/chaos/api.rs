//! Requests to the local gateway as the chaos run's clients send them, each answer
//! counted by phase and status, and every 5xx the run does not allow kept for the report.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hyper::http::response::Parts;
use hyper::Method;
use serde_json::Value as Json;

use crate::http::Gateway;

const USER_AGENT: &str = "uslugi-chaos/1.0";

/// The part of the run a request was sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Setup,
    Faulty,
    Recovery,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup (no faults)",
            Phase::Faulty => "faulty phase",
            Phase::Recovery => "after the faults were lifted",
        }
    }
}

/// An answer the run does not allow: a 5xx other than a 503 with `Retry-After`, or none.
#[derive(Debug, Clone)]
pub struct Bad {
    pub phase: Phase,
    pub route: String,
    pub status: u16,
    pub detail: String,
}

/// Answers by phase, status (0: no answer) and problem code (empty for none); every
/// 503 carried `Retry-After` unless it is in `bad`. `unavailable` counts the 503s per
/// route, for where the citizen met the faults.
#[derive(Debug, Default)]
pub struct Tally {
    pub by_status: BTreeMap<(Phase, u16, String), usize>,
    pub unavailable: BTreeMap<String, usize>,
    pub bad: Vec<Bad>,
}

impl Tally {
    /// Counts one answer; `retry_after` is whether it carried a usable `Retry-After`.
    pub fn count(
        &mut self,
        phase: Phase,
        route: &str,
        status: u16,
        code: &str,
        retry_after: bool,
        body: &str,
    ) {
        *self
            .by_status
            .entry((phase, status, code.to_string()))
            .or_default() += 1;
        if status == 503 {
            *self.unavailable.entry(route.to_string()).or_default() += 1;
        }
        let allowed = status != 0 && (status < 500 || (status == 503 && retry_after));
        if !allowed {
            self.bad.push(Bad {
                phase,
                route: route.to_string(),
                status,
                detail: body.chars().take(300).collect(),
            });
        }
    }

    pub fn total(&self, phase: Phase) -> usize {
        self.by_status
            .iter()
            .filter(|((p, _, _), _)| *p == phase)
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Clone)]
pub struct Api {
    gateway: Gateway,
    faulty: Arc<AtomicBool>,
    lifted: Arc<AtomicBool>,
    pub tally: Arc<Mutex<Tally>>,
}

/// An answer (status 0: none).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Json,
    pub etag: Option<String>,
}

impl Reply {
    pub fn text(&self, name: &str) -> Option<&str> {
        self.body[name].as_str()
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.status, self.body)
    }

    /// Worth sending again: no answer, a 5xx, a 429.
    pub fn transient(&self) -> bool {
        self.status == 0 || self.status >= 500 || self.status == 429
    }
}

impl Api {
    pub fn new(base: String) -> Self {
        Self {
            gateway: Gateway::new(base, USER_AGENT),
            faulty: Arc::new(AtomicBool::new(false)),
            lifted: Arc::new(AtomicBool::new(false)),
            tally: Arc::new(Mutex::new(Tally::default())),
        }
    }

    /// Marks the faulty phase's start; the answers after it count for it.
    pub fn faults_on(&self) {
        self.faulty.store(true, Ordering::SeqCst);
    }

    /// Marks the faults' lifting.
    pub fn faults_lifted(&self) {
        self.lifted.store(true, Ordering::SeqCst);
    }

    fn phase(&self) -> Phase {
        if self.lifted.load(Ordering::SeqCst) {
            Phase::Recovery
        } else if self.faulty.load(Ordering::SeqCst) {
            Phase::Faulty
        } else {
            Phase::Setup
        }
    }

    /// A GET of the local stack's own endpoints (`/_local/...`), not counted.
    pub async fn local_get(&self, path: &str) -> Reply {
        match self.gateway.exchange(Method::GET, path, &[], None).await {
            Ok((parts, bytes)) => read(&parts, &bytes).0,
            Err(_) => Reply {
                status: 0,
                body: Json::Null,
                etag: None,
            },
        }
    }

    /// Sends one request and counts its answer under `route` (a path without ids).
    pub async fn send(
        &self,
        method: Method,
        route: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Json>,
    ) -> Reply {
        // The phase the request was sent in: an answer that comes after the lifting
        // was still made under faults.
        let phase = self.phase();
        let answer = self.gateway.exchange(method, path, headers, body).await;
        let (reply, retry_after, raw) = match answer {
            Ok((parts, bytes)) => read(&parts, &bytes),
            Err(e) => (
                Reply {
                    status: 0,
                    body: Json::Null,
                    etag: None,
                },
                false,
                format!("{e:#}"),
            ),
        };
        if let Ok(mut tally) = self.tally.lock() {
            let code = reply.body["code"].as_str().unwrap_or_default();
            tally.count(phase, route, reply.status, code, retry_after, &raw);
        }
        reply
    }
}

/// An answer as the run keeps it, whether it carried a usable `Retry-After`, and its
/// body as text.
fn read(parts: &Parts, bytes: &[u8]) -> (Reply, bool, String) {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let retry_after = header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|s| s >= 1);
    let reply = Reply {
        status: parts.status.as_u16(),
        body: crate::http::json_body(bytes),
        etag: header("etag"),
    };
    (
        reply,
        retry_after,
        String::from_utf8_lossy(bytes).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_503_with_retry_after_is_an_allowed_5xx() {
        let mut t = Tally::default();
        t.count(Phase::Faulty, "/v1/payments", 201, "", false, "");
        t.count(
            Phase::Faulty,
            "/v1/payments",
            409,
            "payment_in_progress",
            false,
            "",
        );
        t.count(
            Phase::Faulty,
            "/v1/payments",
            503,
            "service_unavailable",
            true,
            "",
        );
        assert!(t.bad.is_empty());
        t.count(
            Phase::Faulty,
            "/v1/payments",
            503,
            "service_unavailable",
            false,
            "no header",
        );
        t.count(Phase::Faulty, "/v1/payments", 500, "", false, "boom");
        t.count(Phase::Recovery, "/v1/profile", 504, "", true, "");
        t.count(Phase::Faulty, "/v1/profile", 0, "", false, "no answer");
        let statuses: Vec<u16> = t.bad.iter().map(|b| b.status).collect();
        assert_eq!(statuses, vec![503, 500, 504, 0]);
        assert_eq!(t.total(Phase::Faulty), 6);
        let unavailable = (Phase::Faulty, 503, "service_unavailable".to_string());
        assert_eq!(t.by_status[&unavailable], 2);
        assert_eq!(t.unavailable["/v1/payments"], 2);
    }
}
