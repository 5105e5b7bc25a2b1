//! Routes of citizens' bills: parse, call the charge service, respond.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::json;
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore};
use shared::config::BillsConfig;
use shared::domain::VehicleCertificate;
use shared::domain::{AccountId, Category, Uin};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::Fields;
use shared::http::{self as web};
use shared::services::bills::{BillFilter, BillService, ListedBill, LookupLimit, MAX_PAGE};
use shared::services::charges::{ChargeService, ChargeStatus, StoredCharge};
use shared::services::household::holdings::Holder;
use shared::services::notices::{NotificationSettings, SettingsService};
use shared::services::MOSCOW;
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("GET /v1/bills/{uin}") => {
                let principal = web::principal(request)?;
                // The check digit first: a mistyped UIN is told at once, with no lookup.
                let uin = path_uin(request)?;
                self.count_lookup(&principal.account_id, now).await?;
                let bill = self.charges.lookup(&uin).await?;
                Ok(web::json_response(StatusCode::OK, &bill_view(&bill, now)))
            }
            Some("GET /v1/bills") => list(self, request, now).await,
            Some("POST /v1/bills/saved") => {
                let principal = web::principal(request)?;
                // Saved bills are a citizen's own list: not kept for an organisation.
                web::citizen_only(request)?;
                let body = web::json_object(request)?;
                let mut f = Fields::new(&body);
                let raw = f.required_str("uin");
                f.finish(&["uin"])?;
                let uin = ChargeService::<DynamoStore>::parse_uin("uin", raw.unwrap_or_default())?;
                // Saving tells whether the bill exists, as a lookup does.
                self.count_lookup(&principal.account_id, now).await?;
                let bill = BillService::new(&self.store, &self.charges)
                    .save(&principal.account_id, &uin, now.unix_timestamp())
                    .await?;
                Ok(web::json_response(
                    StatusCode::CREATED,
                    &bill_view(&bill, now),
                ))
            }
            Some("DELETE /v1/bills/saved/{uin}") => {
                let principal = web::principal(request)?;
                web::citizen_only(request)?;
                let uin = path_uin(request)?;
                BillService::new(&self.store, &self.charges)
                    .forget(&principal.account_id, &uin)
                    .await?;
                Ok(web::no_content())
            }
            Some("GET /v1/fines") => {
                let principal = web::principal(request)?;
                let raw = query(request, "sts").ok_or_else(|| {
                    AppError::Validation(vec![FieldError::new(
                        "sts",
                        "required",
                        "Укажите номер СТС",
                    )])
                })?;
                let sts = VehicleCertificate::parse("sts", &raw)
                    .map_err(|e| AppError::Validation(vec![e]))?;
                self.count_lookup(&principal.account_id, now).await?;
                let fines = BillService::new(&self.store, &self.charges)
                    .fines(&sts)
                    .await?;
                let fines: Vec<serde_json::Value> =
                    fines.iter().map(|c| bill_view(c, now)).collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "fines": fines }),
                ))
            }
            Some("GET /v1/notification-settings") => {
                let principal = web::principal(request)?;
                let settings = SettingsService::new(&self.store)
                    .get(&principal.account_id)
                    .await?;
                Ok(web::json_response(StatusCode::OK, &settings.view()))
            }
            Some("PUT /v1/notification-settings") => {
                let principal = web::principal(request)?;
                let settings = NotificationSettings::parse(&web::json_object(request)?)?;
                SettingsService::new(&self.store)
                    .put(&principal.account_id, &settings, now)
                    .await?;
                Ok(web::json_response(StatusCode::OK, &settings.view()))
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (start, config: BillsConfig) {
        store: DynamoStore =
            DynamoStore::new(start.clients.dynamodb.clone(), config.table.table_name.clone()),
        /// Lookups of bills per account, counted in the table.
        lookups: LookupLimit = config.lookups,
        charges: ChargeService<DynamoStore> =
            adapters::charge_service(&start.clients, config.table),
    }
}

/// The UIN of a `…/{uin}` route, its check digit checked (a `uin` field error if wrong).
fn path_uin(request: &Request) -> Result<Uin, AppError> {
    ChargeService::<DynamoStore>::parse_uin(
        "uin",
        web::path_param(request, "uin").unwrap_or_default(),
    )
}

impl App {
    /// Counts a lookup by UIN or СТС, or a save, against the account's limit.
    async fn count_lookup(
        &self,
        account_id: &AccountId,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        self.lookups
            .count(&self.store, account_id, 1, now.unix_timestamp())
            .await
    }
}

/// Why an unpaid bill cannot be paid, for the citizen; `None` while it can.
fn not_payable(c: &StoredCharge) -> Option<serde_json::Value> {
    c.withdrawn.then(|| {
        json!({
            "code": "biller_revoked",
            "reason": "Начисление отозвано: получатель больше не принимает по нему оплату через портал. Уточните у получателя, как оплатить.",
        })
    })
}

/// A bill as any holder of its UIN sees it: what to pay and to whom, never who the
/// payers are.
fn bill_view(c: &StoredCharge, now: OffsetDateTime) -> serde_json::Value {
    let b = &c.body;
    json!({
        "uin": c.uin,
        "status": c.status,
        "payable": c.status == ChargeStatus::Unpaid && !c.withdrawn,
        "not_payable": not_payable(c),
        "category": b.category,
        "amount": b.amount,
        // Discounts run to the end of their day in Moscow, where billers date them.
        "amount_due": c.amount_due(now.to_offset(MOSCOW).date()),
        "discount": b.discount,
        "payee": b.payee,
        "purpose": b.purpose,
        "kbk": b.kbk,
        "oktmo": b.oktmo,
        "bill_date": b.bill_date,
        "due_date": b.due_date,
    })
}

fn query(request: &Request, name: &str) -> Option<String> {
    use lambda_http::RequestExt;
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// `GET /v1/bills?category=&status=&after=&limit=`, the citizen's or (with
/// `X-Organisation-Id`) the organisation's the citizen acts for.
async fn list(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let mut errors = Vec::new();
    let category = query(request, "category").and_then(|raw| {
        Category::parse("category", &raw)
            .map_err(|e| errors.push(e))
            .ok()
    });
    let status = match query(request, "status").as_deref() {
        None | Some("unpaid") => None,
        Some("paid") => Some(ChargeStatus::Paid),
        Some(_) => {
            errors.push(FieldError::new(
                "status",
                "invalid_status",
                "Допустимые значения: unpaid, paid",
            ));
            None
        }
    };
    let after = match query(request, "after") {
        Some(raw) => match ChargeService::<DynamoStore>::parse_uin("after", &raw) {
            Ok(uin) => Some(uin),
            Err(AppError::Validation(mut e)) => {
                errors.append(&mut e);
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    let limit = match query(request, "limit") {
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "invalid_limit",
                    format!("От 1 до {MAX_PAGE}"),
                ));
                MAX_PAGE
            }
        },
        None => 50,
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    let filter = BillFilter {
        category,
        status,
        after,
        limit,
    };
    let service = BillService::new(&app.store, &app.charges);
    // `X-Organisation-Id`: the organisation's bills, not the citizen's.
    let bills = match web::acting_organisation(request)? {
        Some((organisation, _)) => {
            service
                .list_for_organisation(&organisation, &principal.account_id, &filter)
                .await?
        }
        None => service.list(&principal.account_id, &filter).await?,
    };
    let next = (bills.len() == limit)
        .then(|| bills.last().map(|b| b.charge.uin.clone()))
        .flatten();
    let views: Vec<serde_json::Value> = bills.iter().map(|b| listed_view(b, now)).collect();
    Ok(web::json_response(
        StatusCode::OK,
        &json!({ "bills": views, "next_after": next }),
    ))
}

fn listed_view(bill: &ListedBill, now: OffsetDateTime) -> serde_json::Value {
    let mut view = bill_view(&bill.charge, now);
    let matched: Vec<serde_json::Value> = bill
        .matched
        .iter()
        .map(|(kind, holder)| {
            let mut m = match holder {
                Holder::Own => json!({"holder": "self"}),
                Holder::Child { id, first_name } => {
                    json!({"holder": "child", "child_id": id, "name": first_name})
                }
                Holder::Vehicle { id, plate } => {
                    json!({"holder": "vehicle", "vehicle_id": id, "plate": plate})
                }
                Holder::Saved => json!({"holder": "saved"}),
                Holder::Organisation => json!({"holder": "organisation"}),
            };
            if let Some(kind) = kind {
                m["identifier"] = json!(kind);
            }
            m
        })
        .collect();
    view["matched"] = json!(matched);
    view
}
