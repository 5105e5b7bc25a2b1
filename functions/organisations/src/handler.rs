//! Routes of the corporate cabinet: parse, call the organisation service, respond.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::{json, Value};
use time::OffsetDateTime;

use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier, sqs::SqsQueue};
use shared::config::OrganisationsConfig;
use shared::domain::{
    requested, AccountId, Channel, Destination, Email, Inn, Kpp, Ogrn, Ogrnip, OrgRole,
    OrganisationId, OrganisationIdentity, OrganisationKind,
};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::services::organisations::{Membership, Organisation, OrganisationService};
use shared::AppError;

type Service = OrganisationService<DynamoStore, SqsQueue, AwsNotifier>;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        let principal = web::principal(request)?;
        let account = &principal.account_id;
        // An organisation named in `X-Organisation-Id` that the caller does not act for
        // is refused here, as one that does not exist.
        web::acting_organisation(request)?;
        let service = &self.organisations;
        let id = || -> Result<OrganisationId, AppError> {
            requested(
                web::path_param(request, "id").unwrap_or_default(),
                "organisation",
            )
        };
        let member_id = || -> Result<AccountId, AppError> {
            requested(
                web::path_param(request, "account_id").unwrap_or_default(),
                "member",
            )
        };
        match route {
            Some("POST /v1/organisations") => {
                let (identity, email) = parse_registration(&web::json_object(request)?)?;
                let org = service.register(account, identity, email, now).await?;
                let mut view = org.view();
                view["role"] = json!(OrgRole::Owner.as_str());
                Ok(web::json_response(StatusCode::ACCEPTED, &view))
            }
            Some("GET /v1/organisations") => {
                let list = service.list(account).await?;
                Ok(listed("organisations", &list, |(org, member)| {
                    with_role(org, member)
                }))
            }
            Some("GET /v1/organisations/{id}") => {
                let (org, member) = service.get(account, &id()?).await?;
                Ok(web::json_response(
                    StatusCode::OK,
                    &with_role(&org, &member),
                ))
            }
            Some("GET /v1/organisations/{id}/members") => {
                let members = service.members(account, &id()?).await?;
                Ok(listed("members", &members, Membership::view))
            }
            Some("PATCH /v1/organisations/{id}/members/{account_id}") => {
                let object = web::json_object(request)?;
                let mut fields = Fields::new(&object);
                let role = read_role(&mut fields);
                let role = fields.finish_with(&["role"], role)?;
                let member = service
                    .change_role(account, &id()?, &member_id()?, role, now)
                    .await?;
                Ok(web::json_response(StatusCode::OK, &member.view()))
            }
            Some("DELETE /v1/organisations/{id}/members/{account_id}") => {
                service.remove(account, &id()?, &member_id()?, now).await?;
                Ok(web::no_content())
            }
            Some("POST /v1/organisations/{id}/invitations") => {
                let (contact, role) = parse_invitation(&web::json_object(request)?)?;
                let invitation = service.invite(account, &id()?, contact, role, now).await?;
                Ok(web::json_response(StatusCode::ACCEPTED, &invitation.view()))
            }
            Some("POST /v1/organisation-invitations/accept") => {
                let object = web::json_object(request)?;
                let mut fields = Fields::new(&object);
                let code = fields.required_str("code");
                let code = fields.finish_with(&["code"], code)?;
                let (org, member) = service.accept(account, code, now).await?;
                Ok(web::json_response(
                    StatusCode::OK,
                    &with_role(&org, &member),
                ))
            }
            Some("GET /v1/organisations/{id}/audit") => {
                let (after, limit) = parse_page(request)?;
                let page = service
                    .audit(account, &id()?, after.as_deref(), limit)
                    .await?;
                let entries: Vec<Value> = page.entries.iter().map(|e| e.view()).collect();
                Ok(web::json_response(
                    StatusCode::OK,
                    &json!({ "entries": entries, "next": page.next }),
                ))
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

fn with_role(org: &Organisation, member: &Membership) -> Value {
    let mut view = org.view();
    view["role"] = json!(member.role.as_str());
    view
}

/// `{key: [view of each item]}` with 200: every list this API answers is one named array.
fn listed<T>(key: &str, items: &[T], view: impl Fn(&T) -> Value) -> Response<Body> {
    let views: Vec<Value> = items.iter().map(view).collect();
    web::json_response(StatusCode::OK, &json!({ key: views }))
}

fn read_role(fields: &mut Fields<'_>) -> Option<OrgRole> {
    required(fields, "role", OrgRole::parse)
}

/// A required string field read by `parse`, its absence or refusal recorded: every
/// field of these bodies is read so, so the two steps are one call.
fn required<T>(
    fields: &mut Fields<'_>,
    field: &str,
    parse: fn(&str, &str) -> Result<T, FieldError>,
) -> Option<T> {
    let raw = fields.required_str(field)?;
    parse(field, raw).map_err(|e| fields.reject(e)).ok()
}

/// `{kind, inn, kpp, ogrn, email}` of a company or `{kind, inn, ogrnip, email}` of a
/// sole trader.
fn parse_registration(
    object: &serde_json::Map<String, Value>,
) -> Result<(OrganisationIdentity, Email), AppError> {
    let mut fields = Fields::new(object);
    let kind = required(&mut fields, "kind", OrganisationKind::parse);
    let inn = required(&mut fields, "inn", Inn::parse);
    let email = required(&mut fields, "email", Email::parse);
    let identity = match kind {
        Some(OrganisationKind::LegalEntity) => {
            let kpp = required(&mut fields, "kpp", Kpp::parse);
            let ogrn = required(&mut fields, "ogrn", Ogrn::parse);
            match (inn, kpp, ogrn) {
                (Some(inn), Some(kpp), Some(ogrn)) => {
                    OrganisationIdentity::legal_entity(inn, kpp, ogrn)
                        .map_err(|e| fields.reject(e))
                        .ok()
                }
                _ => None,
            }
        }
        Some(OrganisationKind::SoleTrader) => {
            let ogrnip = required(&mut fields, "ogrnip", Ogrnip::parse);
            match (inn, ogrnip) {
                (Some(inn), Some(ogrnip)) => OrganisationIdentity::sole_trader(inn, ogrnip)
                    .map_err(|e| fields.reject(e))
                    .ok(),
                _ => None,
            }
        }
        None => None,
    };
    let known: &[&str] = match kind {
        Some(OrganisationKind::SoleTrader) => &["kind", "inn", "ogrnip", "email"],
        Some(OrganisationKind::LegalEntity) => &["kind", "inn", "kpp", "ogrn", "email"],
        None => &["kind", "inn", "kpp", "ogrn", "ogrnip", "email"],
    };
    fields.finish_with(known, (identity, email))
}

/// `{channel, destination, role}`.
fn parse_invitation(
    object: &serde_json::Map<String, Value>,
) -> Result<(Destination, OrgRole), AppError> {
    let mut fields = Fields::new(object);
    let channel = required(&mut fields, "channel", Channel::parse);
    let destination_raw = fields.required_str("destination");
    let contact = match (channel, destination_raw) {
        (Some(channel), Some(raw)) => Destination::parse("destination", channel, raw)
            .map_err(|e| fields.reject(e))
            .ok(),
        _ => None,
    };
    let role = read_role(&mut fields);
    fields.finish_with(&["channel", "destination", "role"], (contact, role))
}

/// `?after=&limit=` of the audit log.
fn parse_page(request: &Request) -> Result<(Option<String>, usize), AppError> {
    let query = request.query_string_parameters_ref();
    let get = |name: &str| query.and_then(|q| q.first(name)).map(str::to_string);
    let mut errors = Vec::new();
    let after = get("after");
    if after.as_deref().is_some_and(|a| !is_audit_cursor(a)) {
        errors.push(FieldError::new(
            "after",
            "invalid_cursor",
            "Передайте значение next из предыдущей страницы",
        ));
    }
    let limit = match get("limit") {
        None => 20,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => {
                errors.push(FieldError::new(
                    "limit",
                    "invalid_limit",
                    "Укажите число от 1 до 100",
                ));
                0
            }
        },
    };
    if errors.is_empty() {
        Ok((after, limit))
    } else {
        Err(AppError::Validation(errors))
    }
}

/// `AUDIT#` + 12 digits + `#` + 32 hex digits: the page keys the store hands out.
fn is_audit_cursor(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix("AUDIT#") else {
        return false;
    };
    let Some((at, tail)) = rest.split_once('#') else {
        return false;
    };
    at.len() == 12
        && at.bytes().all(|b| b.is_ascii_digit())
        && tail.len() == 32
        && tail.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

shared::api_app! {
    pub struct App from (start, config: OrganisationsConfig) {
        organisations: Service = adapters::organisation_service(&start.clients, config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_cursors_are_only_the_store_s() {
        assert!(is_audit_cursor(&format!(
            "AUDIT#001800000000#{}",
            "0a".repeat(16)
        )));
        assert!(!is_audit_cursor("AUDIT#1#ab"));
        assert!(!is_audit_cursor("MEMBER#x"));
    }

    #[test]
    fn a_registration_lists_every_bad_field() {
        let body = json!({"kind": "legal_entity", "inn": "7707083894", "kpp": "77", "ogrn": "1027700132194", "email": "x"});
        let Err(AppError::Validation(errors)) = parse_registration(body.as_object().unwrap())
        else {
            panic!("accepted");
        };
        let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            [
                "inn_checksum",
                "invalid_email",
                "kpp_format",
                "ogrn_checksum"
            ]
        );
        let trader = json!({"kind": "sole_trader", "inn": "7707083893", "ogrnip": "304500116000157", "email": "a@example.ru"});
        let Err(AppError::Validation(errors)) = parse_registration(trader.as_object().unwrap())
        else {
            panic!("accepted");
        };
        assert_eq!(errors[0].code, "inn_not_personal");
    }
}
