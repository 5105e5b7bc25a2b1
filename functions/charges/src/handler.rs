//! Routes of billers: parse, call the charge service, respond.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::adapters::sqs::SqsQueue;
use shared::adapters::{self, dynamodb::DynamoStore};
use shared::config::ChargesConfig;
use shared::domain::BillerId;
use shared::entry::{Api, Reply};
use shared::http::{self as web};
use shared::services::charges::{ChargeBody, ChargeService, StoredCharge, WriteOutcome};
use shared::services::identity::at;
use shared::AppError;

/// Largest batch body taken.
const BATCH_BODY_BYTES: usize = 1024 * 1024;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        let Some(route) = route else {
            return Err(AppError::RouteNotFound);
        };
        if !route.contains("/v1/biller/charges") {
            return Err(AppError::RouteNotFound);
        }
        let biller = web::biller(request)?;
        if route == "POST /v1/biller/charges:batch" {
            return batch(self, request, &biller, now).await;
        }
        let uin = ChargeService::<DynamoStore>::parse_uin(
            "uin",
            web::path_param(request, "uin").unwrap_or_default(),
        )?;
        let uin = &uin;
        match route {
            "PUT /v1/biller/charges/{uin}" => {
                let object = web::json_object(request)?;
                // The UIN is the path's; one in the body must say the same.
                if let Some(given) = object.get("uin") {
                    let same = given
                        .as_str()
                        .and_then(|raw| ChargeService::<DynamoStore>::parse_uin("uin", raw).ok())
                        .is_some_and(|u| u == *uin);
                    if !same {
                        return Err(AppError::Validation(vec![shared::FieldError::new(
                            "uin",
                            "uin_mismatch",
                            "УИН в теле запроса не совпадает с УИН в адресе",
                        )]));
                    }
                }
                let draft = ChargeBody::parse(&object)?;
                let outcome = self.charges.put(&biller, uin, &draft, now).await?;
                let charge = self.charges.own_charge(&biller, uin).await?;
                let status = match outcome {
                    WriteOutcome::Created => StatusCode::CREATED,
                    _ => StatusCode::OK,
                };
                let mut view = charge_view(&charge);
                view["outcome"] = json!(outcome_name(outcome));
                Ok(web::json_response(status, &view))
            }
            "GET /v1/biller/charges/{uin}" => {
                let charge = self.charges.own_charge(&biller, uin).await?;
                Ok(web::json_response(StatusCode::OK, &charge_view(&charge)))
            }
            "DELETE /v1/biller/charges/{uin}" => {
                self.charges.cancel(&biller, uin, now).await?;
                Ok(web::no_content())
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: ChargesConfig) {
        charges: ChargeService<DynamoStore, SqsQueue> =
            adapters::charge_writer(&start.clients, config),
    }
}

fn outcome_name(outcome: WriteOutcome) -> &'static str {
    match outcome {
        WriteOutcome::Created => "created",
        WriteOutcome::Updated => "updated",
        WriteOutcome::Unchanged => "unchanged",
    }
}

fn charge_view(c: &StoredCharge) -> Value {
    let mut view = json!(c.body);
    view["uin"] = json!(c.uin);
    view["status"] = json!(c.status);
    view["version"] = json!(c.version);
    view["updated_at"] = json!(at(c.updated_at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default());
    view
}

/// `POST /v1/biller/charges:batch`: up to 500 charges, each with its own result.
async fn batch(app: &App, request: &Request, biller: &BillerId, now: OffsetDateTime) -> Reply {
    // 500 charges of about a kilobyte each; API Gateway itself takes up to 10 MB.
    let body = web::json_object_up_to(request, BATCH_BODY_BYTES)?;
    let items = match body.get("charges") {
        Some(Value::Array(items)) => items,
        _ => {
            return Err(AppError::Validation(vec![shared::FieldError::new(
                "charges",
                "required",
                "Ожидается массив начислений",
            )]))
        }
    };
    let results = app.charges.put_batch(biller, items, now).await?;
    let mut failed = 0;
    let report: Vec<Value> = results
        .into_iter()
        .enumerate()
        .map(|(i, item)| match item.result {
            Ok(outcome) => json!({"index": i, "uin": item.uin, "outcome": outcome_name(outcome)}),
            Err(e) => {
                failed += 1;
                let problem = e.problem();
                json!({
                    "index": i,
                    "uin": item.uin,
                    "outcome": "failed",
                    "status": problem.status,
                    "code": problem.code,
                    "errors": problem.errors,
                })
            }
        })
        .collect();
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"succeeded": report.len() - failed, "failed": failed, "results": report}),
    ))
}
