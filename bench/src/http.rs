//! Small HTTP/1.1 plumbing on hyper: a loopback server whose connections all end when
//! it is dropped, and a pooled client.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

pub type Client = LegacyClient<HttpConnector, Full<Bytes>>;

pub fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    LegacyClient::builder(TokioExecutor::new()).build(connector)
}

/// Longer than any answer the local gateway waits for (a function's timeout and its slack).
const GATEWAY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The local gateway as one API client (named by its user agent) reaches it.
#[derive(Clone)]
pub struct Gateway {
    http: Client,
    base: String,
    user_agent: &'static str,
}

impl Gateway {
    pub fn new(base: String, user_agent: &'static str) -> Self {
        Self {
            http: client(),
            base,
            user_agent,
        }
    }

    /// One request to `{base}{path}` with a JSON body (if any) and the given headers: the
    /// answer's head and whole body, or an error naming the request (its building, the
    /// connection, or no answer in time).
    pub async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<(hyper::http::response::Parts, Bytes)> {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header("user-agent", self.user_agent);
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
        tokio::time::timeout(GATEWAY_TIMEOUT, async {
            let response = self.http.request(request).await?;
            let (parts, body) = response.into_parts();
            let bytes = body.collect().await?.to_bytes();
            Ok::<_, anyhow::Error>((parts, bytes))
        })
        .await
        .with_context(|| format!("{method} {path}: no answer in {GATEWAY_TIMEOUT:?}"))?
        .with_context(|| format!("{method} {path}"))
    }
}

/// A JSON answer's body: `null` when empty, the text as a string when not JSON.
pub fn json_body(bytes: &[u8]) -> serde_json::Value {
    if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        })
    }
}

/// A server on 127.0.0.1 with a port of its own; dropping it closes the listener and
/// every open connection.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn serve<H, F>(handler: H) -> Result<Server>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // Owned here, so aborting the accept loop also ends every connection.
        let mut connections = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let handler = handler.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let handler = handler.clone();
                            async move { Ok::<_, Infallible>(handler(req).await) }
                        });
                        let _ = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Server { addr, task })
}

pub fn respond(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    response
}
