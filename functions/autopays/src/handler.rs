//! Routes of autopayments: parse, call the autopay service, respond.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::adapters::AutopayParts;
use shared::config::PaymentsConfig;
use shared::domain::requested;
use shared::entry::{Api, Reply};
use shared::http::{self as web};
use shared::services::autopays::AutopayFields;
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        let principal = web::principal(request)?;
        // Autopayments are a citizen's own: none is made for an organisation yet.
        web::citizen_only(request)?;
        let account = &principal.account_id;
        let id = || web::path_param(request, "id").unwrap_or_default();
        let autopays = self.parts.service();
        match route {
            Some("GET /v1/autopays") => {
                let list: Vec<Value> = autopays
                    .list(account)
                    .await?
                    .iter()
                    .map(|a| a.view())
                    .collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "autopays": list }),
                ))
            }
            Some("POST /v1/autopays") => {
                let fields = AutopayFields::parse(&web::json_object(request)?, true)?;
                let presence = principal.presence(now, self.step_up_window);
                let created = autopays.create(account, fields, presence, now).await?;
                Ok(web::json_response(StatusCode::CREATED, &created.view()))
            }
            Some("GET /v1/autopays/{id}") => {
                let autopay = autopays.get(account, &requested(id(), "autopay")?).await?;
                Ok(web::json_response(StatusCode::OK, &autopay.view()))
            }
            Some("PATCH /v1/autopays/{id}") => {
                let fields = AutopayFields::parse(&web::json_object(request)?, false)?;
                let presence = principal.presence(now, self.step_up_window);
                let updated = autopays
                    .update(account, &requested(id(), "autopay")?, fields, presence)
                    .await?;
                Ok(web::json_response(StatusCode::OK, &updated.view()))
            }
            Some("DELETE /v1/autopays/{id}") => {
                autopays
                    .remove(account, &requested(id(), "autopay")?)
                    .await?;
                Ok(web::no_content())
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    /// Payments are charged through the acquirer the deployment chose: decided first,
    /// before any call leaves the function.
    pub struct App from (start, config: PaymentsConfig, acquirer: Acquirer) {
        parts: AutopayParts = AutopayParts::new(&start.clients, &config, acquirer).await?,
        /// How long a login or step-up code counts as a proof of presence.
        step_up_window: std::time::Duration = config.step_up_window,
    }
}
