//! The HTTPS client under the T-Bank adapter: hyper's client with rustls (the stack the
//! AWS SDK already builds on), the system's root certificates, and one deadline per call
//! covering connecting, sending and reading the whole answer.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::adapters::error_chain;

/// Why no answer was read. Every one of them leaves the call's outcome unknown.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the request could not be built: {0}")]
    Request(String),
    #[error("the connection failed: {0}")]
    Connection(String),
    #[error("the answer was HTTP {0}")]
    Status(u16),
    #[error("the answer could not be read: {0}")]
    Body(String),
}

#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// Reads the system's root certificates; `Err` if there are none usable.
    pub fn new(timeout: Duration) -> std::io::Result<Self> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
            // Plain HTTP only reaches the local stand-in: the configuration refuses an
            // `http://` API address anywhere but on the loopback interface.
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self { client, timeout })
    }

    /// POSTs a JSON body and answers the body of a 200.
    pub async fn post_json(&self, url: &str, body: Vec<u8>) -> Result<Bytes, TransportError> {
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Request(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| TransportError::Connection(error_chain(&e)))?;
            let status = response.status();
            if status != http::StatusCode::OK {
                return Err(TransportError::Status(status.as_u16()));
            }
            response
                .into_body()
                .collect()
                .await
                .map(|collected| collected.to_bytes())
                .map_err(|e| TransportError::Body(e.to_string()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout(self.timeout))?
    }
}
