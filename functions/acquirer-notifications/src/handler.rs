//! The live acquirer's notifications: a public route (no authorizer; the bank signs what
//! it sends). The raw body is verified before anything in it is trusted; the payment it
//! names is settled as reconciliation settles it, after asking the bank; the answer is
//! exactly `OK` (text/plain), which tells the bank to stop repeating it.

use lambda_http::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use time::OffsetDateTime;

use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::tbank::{verify_notification, Notice, NOTIFICATION_ACK};
use shared::adapters::{self, LivePayments};
use shared::config::PaymentsConfig;
use shared::domain::PaymentId;
use shared::entry::{Api, Reply};
use shared::services::payments::{BankNotification, NotificationOutcome};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/acquirer/notifications") => notification(self, request, now).await,
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    /// Only the live acquirer notifies: without `TBANK_SECRET_ARN` the function does not
    /// start.
    pub struct App from (start, config: PaymentsConfig, acquirer: Acquirer) {
        /// The terminal's credentials and the payment service on them: one read of the
        /// secret per cold start.
        live: LivePayments =
            adapters::live_payment_service(&start.clients, &config, acquirer).await?,
        store: DynamoStore = start.clients.store(config.table_name.clone()),
    }
}

async fn notification(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let credentials = &app.live.credentials;
    let body = verify_notification(
        request.body().as_ref(),
        &credentials.terminal_key,
        credentials.password.expose(),
    )
    .map_err(|reason| {
        // Never the body: it holds the token and a masked card number.
        tracing::warn!(%reason, "acquirer notification refused");
        AppError::InvalidSignature
    })?;
    let outcome = match Notice::read(&body) {
        Some(notice) => apply(app, &notice, now).await?,
        None => NotificationOutcome::Ignored("another_kind_of_notification"),
    };
    tracing::info!(?outcome, "acquirer notification");
    Ok(acknowledged())
}

/// A payment notification, for the open payment it names.
async fn apply(
    app: &App,
    notice: &Notice,
    now: OffsetDateTime,
) -> Result<NotificationOutcome, AppError> {
    let Ok(order) = PaymentId::parse(&notice.order_id) else {
        return Ok(NotificationOutcome::Ignored("not_our_order"));
    };
    let Some(owner) = app.store.open_payment_owner(&order).await? else {
        return Ok(NotificationOutcome::Ignored("not_open"));
    };
    let notification = BankNotification {
        order: &order,
        reference: &notice.payment_id,
        amount: notice.amount.get(),
    };
    app.live
        .payments
        .apply_bank_notification(&owner, &notification, now)
        .await
}

/// `OK`, exactly: what the bank reads as "received".
fn acknowledged() -> Response<Body> {
    let mut response = Response::new(Body::from(NOTIFICATION_ACK));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
