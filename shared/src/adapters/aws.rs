//! The shared AWS SDK configuration, loaded once per cold start.
//!
//! Endpoints come from the standard variables (`AWS_ENDPOINT_URL`,
//! `AWS_ENDPOINT_URL_<SERVICE>`), so the same binary talks to AWS in the cloud and to the
//! local stand-in on a laptop.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Tight timeouts: an API function has 10 s in all, and a citizen waiting on a hung
/// dependency is better served by a quick 503 with a retry hint.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_attempt_timeout(Duration::from_secs(2))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

// ------------------------------------------------------------------ fault injection

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

use crate::faults::{Dependency, Fault, Faults};

/// How long a `timeout` or `lost` call hangs: far past the attempt timeout above, which
/// is what ends it.
const HANG: Duration = Duration::from_secs(60);

/// The clients of one SDK service, with the plan's faults when there is one. Without,
/// they are the SDK's own, untouched.
macro_rules! client {
    ($name:ident, $sdk:ident, $dependency:expr) => {
        pub fn $name(config: &SdkConfig, faults: &Faults) -> $sdk::Client {
            if !faults.is_on() {
                return $sdk::Client::new(config);
            }
            let conf = $sdk::config::Builder::from(config)
                .http_client(FaultyHttpClient::new())
                .interceptor(FaultPicker {
                    dependency: $dependency,
                    faults: faults.clone(),
                })
                .build();
            $sdk::Client::from_conf(conf)
        }
    };
}

client!(dynamodb, aws_sdk_dynamodb, Dependency::DynamoDb);
client!(sqs, aws_sdk_sqs, Dependency::Sqs);
client!(sesv2, aws_sdk_sesv2, Dependency::Sesv2);
client!(sns, aws_sdk_sns, Dependency::Sns);

/// The fault picked for one attempt, carried on the request to [`FaultyConnector`].
#[derive(Debug, Clone, Copy)]
struct Injected {
    dependency: Dependency,
    fault: Fault,
}

/// Asks the plan about every attempt, by the operation's SDK name, just before it is
/// sent (after signing): each retry of the SDK is asked about again, as each would meet
/// the service again.
#[derive(Debug)]
struct FaultPicker {
    dependency: Dependency,
    faults: Faults,
}

impl Intercept for FaultPicker {
    fn name(&self) -> &'static str {
        "FaultPicker"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg.load::<Metadata>().map_or("unknown", Metadata::name);
        if let Some(fault) = self.faults.hit(self.dependency, operation) {
            context.request_mut().add_extension(Injected {
                dependency: self.dependency,
                fault,
            });
        }
        Ok(())
    }
}

/// The SDK's default HTTPS client, with [`FaultyConnector`] in front of its connections.
#[derive(Debug)]
struct FaultyHttpClient {
    inner: SharedHttpClient,
}

impl FaultyHttpClient {
    fn new() -> Self {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        Self {
            inner: aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
                .build_https(),
        }
    }
}

impl HttpClient for FaultyHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultyConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

/// Answers an attempt [`FaultPicker`] marked as the service would under that fault; any
/// other goes through unchanged. The SDK then retries, classifies and times out exactly
/// as it would against AWS.
#[derive(Debug)]
struct FaultyConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for FaultyConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let Some(injected) = request.extension::<Injected>().copied() else {
            return self.inner.call(request);
        };
        let inner = self.inner.clone();
        match injected.fault {
            Fault::Throttle | Fault::Error => {
                HttpConnectorFuture::ready(error_response(injected.dependency, injected.fault))
            }
            Fault::Slow(delay) => HttpConnectorFuture::new(async move {
                tokio::time::sleep(delay).await;
                inner.call(request).await
            }),
            Fault::Timeout => HttpConnectorFuture::new(async move {
                tokio::time::sleep(HANG).await;
                Err(ConnectorError::timeout("injected fault: no answer".into()))
            }),
            Fault::Lost => HttpConnectorFuture::new(async move {
                let _ = inner.call(request).await;
                tokio::time::sleep(HANG).await;
                Err(ConnectorError::timeout(
                    "injected fault: answer lost".into(),
                ))
            }),
        }
    }
}

/// The error the service itself sends when it throttles or fails, in its protocol: JSON
/// with the error type (DynamoDB, SQS, SES v2), XML (SNS's query protocol).
fn error_response(dependency: Dependency, fault: Fault) -> Result<HttpResponse, ConnectorError> {
    let throttled = fault == Fault::Throttle;
    let (status, code) = match (dependency, throttled) {
        (Dependency::DynamoDb, true) => (400, "ProvisionedThroughputExceededException"),
        (Dependency::Sesv2, true) => (429, "TooManyRequestsException"),
        (Dependency::Sns, true) => (400, "Throttling"),
        (_, true) => (400, "ThrottlingException"),
        (Dependency::DynamoDb, false) => (500, "InternalServerError"),
        (_, false) => (500, "InternalFailure"),
    };
    let status = StatusCode::try_from(status)
        .map_err(|e| ConnectorError::other(BoxError::from(e.to_string()), None))?;
    let mut response = if dependency == Dependency::Sns {
        let mut r = HttpResponse::new(
            status,
            SdkBody::from(format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code>\
                 <Message>injected fault</Message></Error>\
                 <RequestId>fault-injection</RequestId></ErrorResponse>",
                if throttled { "Sender" } else { "Receiver" }
            )),
        );
        r.headers_mut().insert("content-type", "text/xml");
        r
    } else {
        let mut r = HttpResponse::new(
            status,
            SdkBody::from(format!(
                r#"{{"__type":"{code}","message":"injected fault"}}"#
            )),
        );
        r.headers_mut()
            .insert("content-type", "application/x-amz-json-1.0");
        r.headers_mut().insert("x-amzn-errortype", code);
        r
    };
    response
        .headers_mut()
        .insert("x-amzn-requestid", "fault-injection");
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    /// SDK settings as [`load`] makes them, against an address nothing listens on:
    /// every answer here comes from the fault layer.
    async fn config() -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-central-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            ))
            .endpoint_url("http://127.0.0.1:9")
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_millis(300))
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .load()
            .await
    }

    fn faults(plan: &'static str) -> Faults {
        Faults::from_env(&Env(move |name: &str| match name {
            "STAGE" => Some("test".to_string()),
            "FAULTS" => Some(plan.to_string()),
            _ => None,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn dynamodb_throttling_is_retried_by_the_sdk_as_from_aws() {
        // Two throttled attempts, then a server error: what the caller gets is the
        // third attempt's, so the SDK took the throttling for what it is and retried.
        let client = dynamodb(
            &config().await,
            &faults("dynamodb:GetItem=throttle@first:2; dynamodb:GetItem=error@nth:3"),
        );
        let err = client
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
            .send()
            .await
            .unwrap_err();
        let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err);
        assert_eq!(code, Some("InternalServerError"), "{err:?}");
    }

    #[tokio::test]
    async fn a_throttled_dynamodb_call_fails_with_the_throttling_exception() {
        let client = dynamodb(&config().await, &faults("dynamodb=throttle"));
        let err = client
            .describe_table()
            .table_name("t")
            .send()
            .await
            .unwrap_err();
        let service = err.into_service_error();
        assert_eq!(
            aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&service),
            Some("ProvisionedThroughputExceededException")
        );
    }

    #[tokio::test]
    async fn sns_and_ses_errors_are_read_in_their_own_protocols() {
        let config = config().await;
        let plan = faults("sns:Publish=throttle@first:2; sns=error; sesv2:SendEmail=throttle");
        let err = sns(&config, &plan)
            .publish()
            .phone_number("+79990000000")
            .message("x")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            aws_sdk_sns::error::ProvideErrorMetadata::code(&err),
            Some("InternalFailure"),
            "{err:?}"
        );
        let err = sesv2(&config, &plan)
            .send_email()
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_too_many_requests_exception(), "{err:?}");
    }

    #[tokio::test]
    async fn a_timeout_is_the_sdks_own_attempt_timeout() {
        let client = sqs(&config().await, &faults("sqs=timeout"));
        let started = std::time::Instant::now();
        let err = client
            .send_message()
            .queue_url("http://127.0.0.1:9/q")
            .message_body("x")
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(err, aws_sdk_sqs::error::SdkError::TimeoutError(_)),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn without_a_plan_the_clients_are_the_sdks_own() {
        let client = dynamodb(&config().await, &Faults::off());
        // Nothing listens there: a connection error, not an injected answer.
        let err = client.list_tables().send().await.unwrap_err();
        assert!(
            matches!(err, aws_sdk_dynamodb::error::SdkError::DispatchFailure(_)),
            "{err:?}"
        );
    }
}
