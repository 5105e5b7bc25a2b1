//! The HTTP API Lambda authorizer (payload 2.0, simple responses).
//!
//! A valid session token lets the request through with the account and session ids in
//! the context (role `citizen`, with `proven_at`, when the session last proved presence), an operator key with the operator's id (role
//! `operator`), a biller's key with the biller's id (role `biller`); handlers read them
//! there. Anything else fails with the error message
//! `Unauthorized`, which API Gateway answers with 401 without calling the route. When
//! the store cannot be read, the request goes on marked `role=unavailable` and with no
//! principal, which every handler answers with 503.
//!
//! A citizen's request also goes through the access matrix (`shared::access`) by its
//! route: one the account's level or the session's credentials do not allow goes on
//! marked `role=refused` with the refusal's code and, again, no principal, which every
//! handler answers with that 403 problem.

use std::collections::HashMap;

use lambda_runtime::{Error, LambdaEvent};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use shared::access::requirement_of_route;
use shared::adapters::{self, dynamodb::DynamoStore, notify::AwsNotifier};
use shared::config::{IdentityConfig, TableConfig};
use shared::domain::OrganisationId;
use shared::entry::ColdStart;
use shared::http::{ORGANISATION_REFUSED, REFUSED_ROLE, UNAVAILABLE_ROLE};
use shared::services::charges::{ChargeService, BILLER_KEY_PREFIX};
use shared::services::confirmation::{OperatorService, OPERATOR_KEY_PREFIX};
use shared::services::identity::IdentityService;
use shared::services::organisations::acting_role;
use shared::AppError;

pub struct App {
    identity: IdentityService<DynamoStore, AwsNotifier>,
    operators: OperatorService<DynamoStore>,
    billers: ChargeService<DynamoStore>,
    /// Memberships of organisations, for `X-Organisation-Id`.
    store: DynamoStore,
}

impl App {
    pub async fn from_env() -> Result<Self, Error> {
        let start = ColdStart::load().await?;
        let identity = IdentityConfig::from_env(&start.env, start.hasher.clone())?;
        let table = TableConfig::from_env(&start.env, start.hasher)?;
        Ok(Self {
            identity: adapters::identity_service(&start.clients, identity),
            operators: adapters::operator_service(&start.clients, table.clone()),
            store: start.clients.store(table.table_name.clone()),
            billers: adapters::charge_service(&start.clients, table),
        })
    }
}

#[derive(Deserialize)]
pub struct AuthorizerRequest {
    #[serde(default)]
    headers: HashMap<String, String>,
    /// The route as API Gateway matched it (`"POST /v1/payments"`): what the access
    /// matrix is looked up by.
    #[serde(default, rename = "routeKey")]
    route_key: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    is_authorized: bool,
    context: HashMap<&'static str, String>,
}

/// The header naming the organisation a citizen acts for.
const ORGANISATION_HEADER: &str = "x-organisation-id";

fn header<'a>(headers: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// The organisation of `X-Organisation-Id` and the caller's role in it (one `GetItem`),
/// or the mark [`ORGANISATION_REFUSED`] when the caller is no active member of it, or it
/// is no organisation's id: the handler answers both as not found.
async fn organisation_context(
    app: &App,
    raw: &str,
    account: &shared::domain::AccountId,
) -> Result<Vec<(&'static str, String)>, AppError> {
    let refused = vec![("organisation_id", ORGANISATION_REFUSED.to_string())];
    let Ok(id) = raw.parse::<OrganisationId>() else {
        return Ok(refused);
    };
    Ok(match acting_role(&app.store, &id, account).await? {
        Some(role) => vec![
            ("organisation_id", id.to_string()),
            ("organisation_role", role.as_str().to_string()),
        ],
        None => refused,
    })
}

/// The token of `Authorization: Bearer <token>` (scheme in any case).
fn bearer(headers: &HashMap<String, String>) -> Option<&str> {
    let value = header(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

pub async fn handle(
    app: &App,
    event: LambdaEvent<AuthorizerRequest>,
) -> Result<AuthorizerResponse, Error> {
    let Some(token) = bearer(&event.payload.headers) else {
        return Err("Unauthorized".into());
    };
    let context = if token.starts_with(BILLER_KEY_PREFIX) {
        app.billers.biller(token).await.map(|biller| {
            HashMap::from([
                ("biller_id", biller.id.into()),
                ("role", "biller".to_string()),
            ])
        })
    } else if token.starts_with(OPERATOR_KEY_PREFIX) {
        app.operators.operator(token).await.map(|operator| {
            HashMap::from([
                ("operator_id", operator.id.into()),
                ("role", "operator".to_string()),
            ])
        })
    } else {
        match app
            .identity
            .authorize(token, OffsetDateTime::now_utc())
            .await
        {
            Ok(authorized) => {
                let named = header(&event.payload.headers, ORGANISATION_HEADER);
                let route = event.payload.route_key.as_str();
                // Before the organisation's read: a refused request costs nothing more
                // and learns nothing of the membership it names.
                match requirement_of_route(route, named.is_some()).check(authorized.standing()) {
                    Err(refusal) => {
                        tracing::info!(
                            account_id = %authorized.principal.account_id,
                            route,
                            refusal = refusal.code(),
                            "access matrix refused"
                        );
                        Ok(HashMap::from([
                            ("role", REFUSED_ROLE.to_string()),
                            ("refusal", refusal.code().to_string()),
                        ]))
                    }
                    Ok(()) => {
                        let principal = authorized.principal;
                        let organisation = match named {
                            Some(raw) => {
                                organisation_context(app, raw, &principal.account_id).await
                            }
                            None => Ok(Vec::new()),
                        };
                        organisation.map(|organisation| {
                            let mut context = HashMap::from([
                                ("account_id", principal.account_id.into()),
                                ("session_id", principal.session_id.into()),
                                // When the session last proved presence: routes that
                                // need a fresh proof (step-up) judge it by this.
                                ("proven_at", principal.proven_at.to_string()),
                                ("strength", principal.strength.as_str().to_string()),
                                ("role", "citizen".to_string()),
                            ]);
                            context.extend(organisation);
                            context
                        })
                    }
                }
            }
            Err(e) => Err(e),
        }
    };
    match context {
        Ok(context) => Ok(AuthorizerResponse {
            is_authorized: true,
            context,
        }),
        Err(AppError::Unauthenticated) => Err("Unauthorized".into()),
        Err(e) => {
            tracing::error!(error = %e, "authorizer failed");
            // Lambda counts every refused token as an error too (that is how a 401 is
            // answered), so only this metric tells a failing authorizer from a busy one.
            shared::metrics::emit(shared::metrics::Metric::ServerErrors);
            match e {
                // A store failure must not let anyone in, nor look like a bad token; and
                // API Gateway would answer a failed authorizer with a bare 500. So the
                // request goes on with no principal, only the mark `role=unavailable`:
                // every reader of the caller (`shared::http::principal`, `operator`,
                // `biller`) refuses it with a 503 problem and `Retry-After`.
                AppError::StoreUnavailable(_) => Ok(AuthorizerResponse {
                    is_authorized: true,
                    context: HashMap::from([("role", UNAVAILABLE_ROLE.to_string())]),
                }),
                // Anything else is a bug, which a retry would not cure: a 500.
                e => Err(e.to_string().into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_is_read_in_any_case() {
        let h = |v: &str| HashMap::from([("Authorization".to_string(), v.to_string())]);
        assert_eq!(bearer(&h("Bearer st_abc")), Some("st_abc"));
        assert_eq!(bearer(&h("bearer  st_abc ")), Some("st_abc"));
        assert_eq!(bearer(&h("Basic st_abc")), None);
        assert_eq!(bearer(&h("st_abc")), None);
        assert_eq!(bearer(&HashMap::new()), None);
    }
}
