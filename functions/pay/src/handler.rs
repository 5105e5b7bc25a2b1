//! Routes of paying: parse, call the payment service, respond.

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Request, RequestExt};
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::adapters::{self, Payments};
use shared::config::PaymentsConfig;
use shared::domain::{requested, AccountId, Category};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web};
use shared::json::parse_date;
use shared::services::payments::{
    check_idempotency_key, ArchiveFilter, Catalogue, FreePayRequest, NewMethod, PayOutcome,
    PayRequest, PayingAs, Payment, PaymentStatus, Refund, RefundRequest, RefundState, Refunder,
    Template, TemplatePayRequest,
};
use shared::services::{rfc3339, MOSCOW};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        if let Some(
            route @ ("POST /v1/biller/payments/{id}/refunds"
            | "GET /v1/biller/payments/{id}/refunds"),
        ) = route
        {
            return biller_refunds(self, route, request, now).await;
        }
        let principal = web::principal(request)?;
        let account = &principal.account_id;
        // `X-Organisation-Id`: a member acts for the organisation, whose payments, saved
        // methods and templates these are.
        let paying = match web::acting_organisation(request)? {
            Some((organisation, _)) => PayingAs::Member {
                account: account.clone(),
                organisation,
            },
            None => PayingAs::Citizen(account.clone()),
        };
        let id = || web::path_param(request, "id").unwrap_or_default();
        match route {
            Some("POST /v1/payments") => {
                let key = idempotency_key(request)?;
                let pay = PayRequest::parse(&web::json_object(request)?)?;
                let outcome = self
                    .payments
                    .pay(&paying, &key, &pay, "citizen", now)
                    .await?;
                Ok(outcome_response(&outcome, account))
            }
            Some("GET /v1/payees") => {
                let payees: Vec<Value> = self.payees.payees().iter().map(|p| p.view()).collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "payees": payees }),
                ))
            }
            Some("GET /v1/payees/{id}") => {
                let payee = self.payees.payee(id()).ok_or(AppError::NotFound("payee"))?;
                Ok(web::json_response(StatusCode::OK, &payee.view()))
            }
            Some("POST /v1/payees/{id}/payments") => {
                let key = idempotency_key(request)?;
                let payee = self.payees.payee(id()).ok_or(AppError::NotFound("payee"))?;
                let pay = FreePayRequest::parse(payee, &web::json_object(request)?)?;
                let origin = format!("payee:{}", payee.id);
                let outcome = self
                    .payments
                    .pay_payee(&self.payees, payee, &paying, &key, &pay, &origin, now)
                    .await?;
                Ok(outcome_response(&outcome, account))
            }
            Some("POST /v1/payment-templates/{id}/payments") => {
                let key = idempotency_key(request)?;
                let template = requested(id(), "payment template")?;
                let pay = TemplatePayRequest::parse(&web::json_object(request)?)?;
                let outcome = self
                    .payments
                    .pay_template(&self.payees, &paying, &template, &key, &pay, now)
                    .await?;
                Ok(outcome_response(&outcome, account))
            }
            Some("GET /v1/payments") => archive(self, request, &paying).await,
            Some("GET /v1/payments/{id}") => {
                let payment = self
                    .payments
                    .payment(&paying, &requested(id(), "payment")?)
                    .await?;
                let mut view = payment_view(&payment, account);
                if !payment.refunds.is_empty() {
                    let refunds = self.payments.refunds_of(&payment).await?;
                    view["refunds"] = refunds.iter().map(Refund::view).collect();
                }
                Ok(web::json_response(StatusCode::OK, &view))
            }
            Some("POST /v1/payments/{id}/confirm") => {
                let payment = self
                    .payments
                    .confirm(&paying, &requested(id(), "payment")?, now)
                    .await?;
                payment_response(&payment, account)
            }
            Some("GET /v1/payments/{id}/receipt") => {
                let receipt = self
                    .payments
                    .receipt_of(&paying, &requested(id(), "payment")?)
                    .await?;
                Ok(web::json_response(StatusCode::OK, &receipt))
            }
            Some("GET /v1/payment-methods") => {
                let methods: Vec<Value> = self
                    .payments
                    .methods(&paying)
                    .await?
                    .iter()
                    .map(|m| m.view())
                    .collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "payment_methods": methods }),
                ))
            }
            Some("POST /v1/payment-methods") => {
                let method = NewMethod::parse(&web::json_object(request)?)?;
                let presence = principal.presence(now, self.step_up_window);
                let saved = self
                    .payments
                    .add_method(&paying, method, presence, now)
                    .await?;
                Ok(web::json_response(StatusCode::CREATED, &saved.view()))
            }
            Some("DELETE /v1/payment-methods/{id}") => {
                self.payments
                    .remove_method(&paying, &requested(id(), "payment method")?, now)
                    .await?;
                Ok(web::no_content())
            }
            Some("GET /v1/payment-templates") => {
                let templates = self.payments.templates(&paying).await?;
                let views: Vec<Value> = templates.iter().map(template_view).collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "payment_templates": views }),
                ))
            }
            Some("POST /v1/payment-templates") => {
                let body = web::json_object(request)?;
                let template = if body.contains_key("payee_payment") {
                    Template::parse_payee_payment(&self.payees, &body, now.unix_timestamp())?
                } else {
                    Template::parse(&body, now.unix_timestamp())?
                };
                self.payments.add_template(&paying, &template, now).await?;
                Ok(web::json_response(
                    StatusCode::CREATED,
                    &template_view(&template),
                ))
            }
            Some("DELETE /v1/payment-templates/{id}") => {
                self.payments
                    .remove_template(&paying, &requested(id(), "payment template")?, now)
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
        payments: Payments = adapters::payment_service(&start.clients, &config, acquirer)
            .await?
            .with_lookup_limit(config.lookups),
        /// How long a login or step-up code counts as a proof of presence.
        step_up_window: std::time::Duration = config.step_up_window,
        /// The payees paid without a bill, checked once per cold start.
        payees: Catalogue = Catalogue::embedded()?,
    }
}

/// The `Idempotency-Key` header, checked (400 `idempotency_key_required`).
fn idempotency_key(request: &Request) -> Result<String, AppError> {
    check_idempotency_key(
        request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok()),
    )
}

/// The answer of a payment request; a replayed decline is still a decline, and still
/// says it is a replay.
fn outcome_response(
    outcome: &PayOutcome,
    caller: &AccountId,
) -> lambda_http::Response<lambda_http::Body> {
    let mut response = payment_response(&outcome.payment, caller)
        .unwrap_or_else(|declined| web::problem_response(&declined));
    if outcome.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// A payment's answer: 201 paid, 202 waiting (confirmation or the bank's answer), 402
/// declined; the same for a replay.
fn payment_response(payment: &Payment, caller: &AccountId) -> Reply {
    let status = match payment.status {
        PaymentStatus::Succeeded => StatusCode::CREATED,
        PaymentStatus::Declined => {
            return Err(AppError::PaymentDeclined {
                payment_id: payment.id.to_string(),
                reason: payment
                    .decline_reason
                    .clone()
                    .unwrap_or_else(|| "declined".into()),
            })
        }
        _ => StatusCode::ACCEPTED,
    };
    Ok(web::json_response(status, &payment_view(payment, caller)))
}

/// A payment as `caller` sees it: an organisation's payment waiting for 3-D Secure shows
/// the bank's confirmation page only to the member who paid (it is their card's).
fn payment_view(p: &Payment, caller: &AccountId) -> Value {
    let bills: Vec<Value> = p
        .bills
        .iter()
        .map(|b| {
            json!({
                "uin": b.uin,
                "category": b.category,
                "amount": b.amount,
                "purpose": b.purpose,
                "payee": {"name": b.payee.name, "inn": b.payee.inn},
            })
        })
        .collect();
    let mut view = json!({
        "id": p.id,
        "status": p.status,
        "bills": bills,
        "amount": p.amount,
        "commission": p.commission,
        "total": p.total,
        "method": {"type": p.method.kind, "label": p.method.label, "saved_method_id": p.method.saved_method_id},
        "created_at": rfc3339(p.created_at),
        "settled_at": p.settled_at.map(rfc3339),
    });
    if let Some(r) = &p.gateway_reference {
        view["gateway_reference"] = json!(r);
    }
    if let (PaymentStatus::RequiresConfirmation, Some(url), true) =
        (p.status, &p.confirmation_url, p.account_id == *caller)
    {
        view["confirmation_url"] = json!(url);
    }
    if let Some(reason) = &p.decline_reason {
        view["decline_reason"] = json!(reason);
    }
    if !p.refunds.is_empty() {
        view["refunded"] = json!(p.refunds.refunded());
    }
    // An organisation's payment: which, and the member who paid it.
    if let Some(organisation) = &p.organisation_id {
        view["organisation_id"] = json!(organisation);
        view["member_id"] = json!(p.account_id);
    }
    view
}

/// A biller's refunds of its own bills of a payment: `POST` gives back part of a bill
/// (201 settled — succeeded or declined by the bank, 202 the bank's answer is awaited),
/// `GET` lists them. Another biller's payment is not found, as one that does not exist.
async fn biller_refunds(app: &App, route: &str, request: &Request, now: OffsetDateTime) -> Reply {
    let biller = web::biller(request)?;
    let payment_id = requested(
        web::path_param(request, "id").unwrap_or_default(),
        "payment",
    )?;
    if route.starts_with("GET ") {
        let refunds = app.payments.biller_refunds(&biller, &payment_id).await?;
        let views: Vec<Value> = refunds.iter().map(Refund::view).collect();
        return Ok(web::json_response(
            StatusCode::OK,
            &json!({ "refunds": views }),
        ));
    }
    let key = idempotency_key(request)?;
    let ask = RefundRequest::parse(&web::json_object(request)?)?;
    let outcome = app
        .payments
        .refund(&Refunder::Biller(biller), &payment_id, &key, &ask, now)
        .await?;
    let status = match outcome.refund.state {
        RefundState::Requested => StatusCode::ACCEPTED,
        RefundState::Succeeded | RefundState::Declined => StatusCode::CREATED,
    };
    let mut response = web::json_response(status, &outcome.refund.view());
    if outcome.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn template_view(t: &Template) -> Value {
    let mut view = json!({
        "id": t.id,
        "name": t.name,
        "created_at": rfc3339(t.created_at),
    });
    if !t.uins.is_empty() {
        view["uins"] = json!(t.uins);
    }
    if let Some(payee) = &t.payee {
        view["payee"] = json!(payee);
    }
    if let Some(purpose) = &t.purpose {
        view["purpose"] = json!(purpose);
    }
    if let Some(payment) = &t.payee_payment {
        view["payee_payment"] = payment.view();
    }
    view
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// `GET /v1/payments?from=&to=&status=&category=&after=&limit=`: dates are Moscow days,
/// both inclusive.
async fn archive(app: &App, request: &Request, paying: &PayingAs) -> Reply {
    let mut errors = Vec::new();
    let mut day = |name: &str| {
        query(request, name).and_then(|raw| parse_date(name, &raw).map_err(|e| errors.push(e)).ok())
    };
    let from = day("from");
    let to = day("to");
    let start_of = |d: time::Date| d.midnight().assume_offset(MOSCOW).unix_timestamp() * 1000;
    let from_ms = from.map_or(0, start_of);
    let to_ms = to.and_then(|d| d.next_day()).map_or(i64::MAX / 2, start_of);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errors.push(FieldError::new(
                "to",
                "invalid_period",
                "Конец периода раньше начала",
            ));
        }
    }
    let status = query(request, "status").and_then(|raw| {
        PaymentStatus::parse(&raw)
            .or_else(|| {
                errors.push(FieldError::new(
                    "status",
                    "invalid_status",
                    "Допустимые значения: processing, requires_confirmation, pending, succeeded, declined",
                ));
                None
            })
    });
    let category = query(request, "category").and_then(|raw| {
        Category::parse("category", &raw)
            .map_err(|e| errors.push(e))
            .ok()
    });
    let limit = match query(request, "limit") {
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                errors.push(FieldError::new("limit", "invalid_limit", "От 1 до 100"));
                100
            }
        },
        None => 20,
    };
    let after = query(request, "after");
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let payments = app
        .payments
        .archive(
            paying,
            &ArchiveFilter {
                from_ms,
                to_ms,
                status,
                category,
                after,
                limit,
            },
        )
        .await?;
    let next = (payments.len() == limit)
        .then(|| payments.last().map(|p| p.id.clone()))
        .flatten();
    let views: Vec<Value> = payments
        .iter()
        .map(|p| payment_view(p, paying.account()))
        .collect();
    Ok(web::json_response(
        StatusCode::OK,
        &json!({ "payments": views, "next_after": next }),
    ))
}
