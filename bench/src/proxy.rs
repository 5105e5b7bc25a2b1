//! The counting proxy between a function and moto: forwards every request unchanged,
//! names its operation, and files it under the invocation in flight.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::aws;
use crate::http::{self, Client, Server};

/// One AWS request a function made.
#[derive(Debug, Clone)]
pub struct Call {
    /// `service.Operation`.
    pub operation: String,
    /// Status moto answered; 502 when moto could not be reached.
    pub status: u16,
    /// When the proxy received the request.
    pub started: Instant,
    /// From the proxy receiving the request to having moto's whole answer.
    pub elapsed: Duration,
    /// Text of the SMS or e-mail the call sends, if it sends one.
    pub message: Option<String>,
}

#[derive(Default)]
struct Calls {
    /// Counts invocations; a call is filed under the one current when it arrived.
    generation: u64,
    in_invocation: bool,
    current: Vec<Call>,
    /// Calls made while no invocation was in flight (during init, say).
    outside: Vec<Call>,
}

/// The most calls that were in flight at one moment (0 for none): a call counts from the
/// proxy receiving it to the proxy having moto's whole answer.
pub fn max_in_flight(calls: &[Call]) -> usize {
    // Ends sort before starts at the same instant: back-to-back calls do not overlap.
    let mut edges: Vec<(Instant, i32)> = Vec::with_capacity(calls.len() * 2);
    for c in calls {
        edges.push((c.started, 1));
        edges.push((c.started + c.elapsed, -1));
    }
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}

/// Files calls under the invocation in flight. Shared by the proxy and the Runtime API.
#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Calls>,
}

impl Recorder {
    fn lock(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An invocation was handed to the function.
    pub fn begin(&self) {
        let mut c = self.lock();
        c.generation += 1;
        c.in_invocation = true;
        c.current.clear();
    }

    /// The function answered: the calls made since [`Recorder::begin`].
    pub fn finish(&self) -> Vec<Call> {
        let mut c = self.lock();
        c.generation += 1;
        c.in_invocation = false;
        std::mem::take(&mut c.current)
    }

    pub fn take_outside(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().outside)
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Files a finished call under the invocation that was in flight when it started.
    fn file(&self, started_in: u64, call: Call) {
        let mut c = self.lock();
        if c.in_invocation && c.generation == started_in {
            c.current.push(call);
        } else {
            // During init, or started in an invocation that has since answered (the
            // function returned without waiting for it): kept apart, not lost.
            c.outside.push(call);
        }
    }
}

pub async fn start(upstream: SocketAddr, recorder: Arc<Recorder>) -> Result<Server> {
    let client = http::client();
    http::serve(move |req| forward(req, upstream, client.clone(), recorder.clone())).await
}

async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
    client: Client,
    recorder: Arc<Recorder>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let generation = recorder.generation();
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return http::respond(400, format!("reading the request: {e}")),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let operation = aws::operation(parts.method.as_str(), &path, &parts.headers, &body);
    let message = aws::message_text(&operation, &body);

    let mut outbound = Request::builder()
        .method(parts.method.clone())
        .uri(format!("http://{upstream}{path}"));
    for (name, value) in &parts.headers {
        if !is_hop_by_hop(name.as_str()) {
            outbound = outbound.header(name, value);
        }
    }
    let result = match outbound.body(Full::new(body)) {
        Ok(request) => match client.request(request).await {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                match body.collect().await {
                    Ok(b) => Ok((parts, b.to_bytes())),
                    Err(e) => Err(format!("reading moto's answer: {e}")),
                }
            }
            Err(e) => Err(format!("reaching moto: {e}")),
        },
        Err(e) => Err(format!("building the request: {e}")),
    };
    let response = match result {
        Ok((parts, body)) => {
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = parts.status;
            for (name, value) in &parts.headers {
                if !is_hop_by_hop(name.as_str()) && name != "content-length" {
                    response.headers_mut().append(name, value.clone());
                }
            }
            response
        }
        Err(e) => http::respond(502, e),
    };
    recorder.file(
        generation,
        Call {
            operation,
            status: response.status().as_u16(),
            started,
            elapsed: started.elapsed(),
            message,
        },
    );
    response
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
            | "te"
            | "trailer"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(op: &str) -> Call {
        Call {
            operation: op.into(),
            status: 200,
            started: Instant::now(),
            elapsed: Duration::ZERO,
            message: None,
        }
    }

    #[test]
    fn counts_calls_in_flight_at_once() {
        let t0 = Instant::now();
        let span = |start_ms: u64, len_ms: u64| Call {
            started: t0 + Duration::from_millis(start_ms),
            elapsed: Duration::from_millis(len_ms),
            ..call("dynamodb.Query")
        };
        assert_eq!(max_in_flight(&[]), 0);
        // One after another, touching: never two at once.
        assert_eq!(max_in_flight(&[span(0, 10), span(10, 10), span(20, 5)]), 1);
        // Three overlapping, a fourth after them.
        assert_eq!(
            max_in_flight(&[span(0, 30), span(5, 30), span(10, 5), span(40, 5)]),
            3
        );
    }

    #[test]
    fn calls_are_filed_under_the_invocation_they_started_in() {
        let r = Recorder::default();
        r.file(r.generation(), call("init.Call"));
        r.begin();
        let g = r.generation();
        r.file(g, call("a.One"));
        r.file(g, call("a.Two"));
        let got: Vec<_> = r.finish().into_iter().map(|c| c.operation).collect();
        assert_eq!(got, ["a.One", "a.Two"]);
        // A call that outlives its invocation is not credited to the next one.
        r.begin();
        r.file(g, call("late.Call"));
        assert!(r.finish().is_empty());
        let outside: Vec<_> = r.take_outside().into_iter().map(|c| c.operation).collect();
        assert_eq!(outside, ["init.Call", "late.Call"]);
    }
}
