//! Routes of the citizen's inbox: parse, call the inbox service, respond.

use lambda_http::http::StatusCode;
use lambda_http::{Request, RequestExt};
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::config::TableConfig;
use shared::domain::{requested, MessageId};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web};
use shared::services::inbox::{
    Cursor, InboxQuery, InboxService, MessageCategory, DEFAULT_PAGE, MAX_PAGE,
};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        let principal = web::principal(request)?;
        // The inbox is a citizen's own: an organisation has none.
        web::citizen_only(request)?;
        let account = &principal.account_id;
        let now = now.unix_timestamp();
        let id = || -> Result<MessageId, AppError> {
            requested(
                web::path_param(request, "message_id").unwrap_or_default(),
                "message",
            )
        };
        match route {
            Some("GET /v1/inbox") => {
                let page = self.inbox.list(account, &list_query(request)?, now).await?;
                let messages: Vec<Value> = page.messages.iter().map(|m| m.view()).collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({
                        "messages": messages,
                        "next_cursor": page.next.as_ref().map(Cursor::encode),
                    }),
                ))
            }
            Some("GET /v1/inbox/unread-count") => {
                let unread = self.inbox.unread_count(account).await?;
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "unread": unread }),
                ))
            }
            Some("POST /v1/inbox/{message_id}/read") => {
                self.inbox.mark_read(account, &id()?, now).await?;
                Ok(web::no_content())
            }
            Some("DELETE /v1/inbox/{message_id}") => {
                self.inbox.delete(account, &id()?, now).await?;
                Ok(web::no_content())
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

fn query(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// `?category=&unread=&cursor=&limit=`, every parameter checked, all refusals at once.
fn list_query(request: &Request) -> Result<InboxQuery, AppError> {
    let mut errors = Vec::new();
    let category = query(request, "category").and_then(|raw| {
        MessageCategory::parse(&raw).or_else(|| {
            let allowed: Vec<&str> = MessageCategory::ALL.iter().map(|c| c.as_str()).collect();
            errors.push(FieldError::new(
                "category",
                "invalid_category",
                format!("Допустимые значения: {}", allowed.join(", ")),
            ));
            None
        })
    });
    let unread_only = match query(request, "unread").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::new(
                "unread",
                "invalid_flag",
                "Допустимые значения: true, false",
            ));
            false
        }
    };
    let after = query(request, "cursor")
        .and_then(|raw| Cursor::decode(&raw).map_err(|e| errors.push(e)).ok());
    let limit = match query(request, "limit") {
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "invalid_limit",
                    format!("От 1 до {MAX_PAGE}"),
                ));
                DEFAULT_PAGE
            }
        },
        None => DEFAULT_PAGE,
    };
    if !errors.is_empty() {
        return Err(AppError::Validation(errors));
    }
    Ok(InboxQuery {
        category,
        unread_only,
        after,
        limit,
    })
}

shared::api_app! {
    pub struct App from (start, config: TableConfig) {
        inbox: InboxService<shared::adapters::dynamodb::DynamoStore> =
            shared::adapters::inbox_service(&start.clients, config),
    }
}
