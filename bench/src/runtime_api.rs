//! A stand-in for the Lambda Runtime API (2018-06-01): hands the function one event at a
//! time and times it from the moment the event leaves to the moment the answer arrives.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use tokio::sync::{mpsc, oneshot};

use crate::http::{self, Server};
use crate::proxy::{Call, Recorder};

const PREFIX: &str = "/2018-06-01/runtime";

/// An event to deliver and where to send the function's answer.
pub struct Invocation {
    pub request_id: String,
    pub payload: Bytes,
    pub reply: oneshot::Sender<Reply>,
}

#[derive(Debug)]
pub struct Reply {
    /// `false` when the function reported an invocation error instead of a response.
    pub ok: bool,
    pub body: Bytes,
    /// Event handed over → answer received.
    pub latency: Duration,
    /// AWS requests made while the invocation was in flight.
    pub calls: Vec<Call>,
}

struct InFlight {
    request_id: String,
    started: Instant,
    reply: oneshot::Sender<Reply>,
}

struct State {
    function_arn: String,
    timeout: Duration,
    recorder: Arc<Recorder>,
    jobs: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    in_flight: Mutex<Option<InFlight>>,
    first_next: Mutex<Option<oneshot::Sender<Instant>>>,
    init_error: Mutex<Option<oneshot::Sender<String>>>,
}

/// One stand-in serves one function process.
pub struct RuntimeApi {
    pub server: Server,
    /// When the function first asked for an event: the end of its init.
    pub first_next: oneshot::Receiver<Instant>,
    /// The error the function reported from its init, if it did.
    pub init_error: oneshot::Receiver<String>,
    pub jobs: mpsc::Sender<Invocation>,
}

impl RuntimeApi {
    pub async fn start(
        function_arn: String,
        timeout: Duration,
        recorder: Arc<Recorder>,
    ) -> Result<Self> {
        let (jobs_tx, jobs_rx) = mpsc::channel(1);
        let (first_tx, first_rx) = oneshot::channel();
        let (init_tx, init_rx) = oneshot::channel();
        let state = Arc::new(State {
            function_arn,
            timeout,
            recorder,
            jobs: tokio::sync::Mutex::new(jobs_rx),
            in_flight: Mutex::new(None),
            first_next: Mutex::new(Some(first_tx)),
            init_error: Mutex::new(Some(init_tx)),
        });
        let server = http::serve(move |req| handle(req, state.clone())).await?;
        Ok(Self {
            server,
            first_next: first_rx,
            init_error: init_rx,
            jobs: jobs_tx,
        })
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Response<Full<Bytes>> {
    let arrived = Instant::now();
    let path = req.uri().path().to_string();
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return http::respond(404, "unknown path");
    };
    match (req.method(), rest) {
        (&Method::GET, "/invocation/next") => {
            if let Some(tx) = take(&state.first_next) {
                let _ = tx.send(arrived);
            }
            next(&state).await
        }
        (&Method::POST, "/init/error") => {
            let body = read(req).await;
            if let Some(tx) = take(&state.init_error) {
                let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
            }
            accepted()
        }
        (&Method::POST, rest) => {
            let Some((id, kind)) = rest
                .strip_prefix("/invocation/")
                .and_then(|r| r.rsplit_once('/'))
            else {
                return http::respond(404, "unknown path");
            };
            let ok = match kind {
                "response" => true,
                "error" => false,
                _ => return http::respond(404, "unknown path"),
            };
            let in_flight = {
                let mut slot = state.in_flight.lock().unwrap_or_else(|p| p.into_inner());
                match slot.take() {
                    Some(f) if f.request_id == id => f,
                    other => {
                        *slot = other;
                        return http::respond(400, "no such invocation in flight");
                    }
                }
            };
            let latency = arrived - in_flight.started;
            let calls = state.recorder.finish();
            let body = read(req).await;
            let _ = in_flight.reply.send(Reply {
                ok,
                body,
                latency,
                calls,
            });
            accepted()
        }
        _ => http::respond(405, "method not allowed"),
    }
}

async fn next(state: &State) -> Response<Full<Bytes>> {
    let job = state.jobs.lock().await.recv().await;
    let Some(job) = job else {
        // The harness is done with this process; it is about to be stopped.
        return http::respond(503, "no more events");
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(state.timeout)
        .as_millis();
    let mut response = Response::new(Full::new(job.payload));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", job.request_id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        state.function_arn.clone(),
    );
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            deadline / 1000,
            &job.request_id.replace('-', "")[..24],
            &job.request_id.replace('-', "")[..16]
        ),
    );
    state.recorder.begin();
    *state.in_flight.lock().unwrap_or_else(|p| p.into_inner()) = Some(InFlight {
        request_id: job.request_id,
        reply: job.reply,
        started: Instant::now(),
    });
    response
}

async fn read(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

fn accepted() -> Response<Full<Bytes>> {
    http::respond(202, r#"{"status":"OK"}"#)
}
