//! authorizer: the session check before every private route, invoked with the REQUEST
//! authorizer event (payload 2.0) the local gateway builds, and its answers read as API
//! Gateway reads them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::events::{authorizer_decision, authorizer_event, AuthDecision, HttpRequest};
use uslugi_local::provision::Clients;

use super::fixtures::{Fixtures, SignedIn};
use super::{called, field, step, Citizen, FIXTURE_AGE};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{expect, json_answer, source_ip, Cursor, Script, Step, USER_AGENT};

/// What the report groups the authorizer's invocations under.
const ROUTE: &str = "SessionAuthorizer (REQUEST, payload 2.0)";

/// Private routes the requests are for, in turn (the authorizer does not look at them).
const PRIVATE_ROUTES: [(&str, &str); 4] = [
    ("GET", "/v1/sessions"),
    ("GET", "/v1/account"),
    ("GET", "/v1/security-events"),
    ("PUT", "/v1/account/password"),
];

/// The authorizer moves a session's idle deadline when it was last moved a minute or
/// more ago (a quarter of the idle time, at most 60 s); sessions of the valid case are
/// kept younger than this, the idle-deadline case's older.
const FRESH: Duration = Duration::from_secs(30);
const STALE: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Valid,
    IdleDeadlineMoved,
    Operator,
    UnknownToken,
    Expired,
    LoggedOut,
    UnknownOperatorKey,
    Malformed,
}

/// One cycle of 20 requests: 13 with a valid session token, 1 whose session was last
/// used two minutes ago (its idle deadline is moved), 1 with an operator's key, and 5
/// turned away: a session token no session has, a session past its idle lifetime, a
/// session ended by logout, an operator key no operator has, and a token that is neither.
const CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        Valid,
        Valid,
        Valid,
        IdleDeadlineMoved,
        Valid,
        Valid,
        UnknownToken,
        Valid,
        Operator,
        Valid,
        Expired,
        Valid,
        Valid,
        LoggedOut,
        Valid,
        UnknownOperatorKey,
        Valid,
        Malformed,
        Valid,
        Valid,
    ]
};

struct Fresh {
    session: SignedIn,
    /// When the harness last moved its idle deadline to "now".
    refreshed: Instant,
}

/// One account's sessions, signed in by the fixtures, and an operator.
struct Prepared {
    account_id: String,
    operator_id: String,
    operator_key: String,
    valid: Vec<Fresh>,
    stale: SignedIn,
    expired: SignedIn,
    logged_out: SignedIn,
}

pub struct Authorizer {
    fixtures: Fixtures,
    at: Cursor<Kind>,
    prepared: Option<Prepared>,
    /// The session a 200 must name.
    expected: Option<String>,
}

impl Authorizer {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            fixtures: Fixtures::new(spec, moto)?,
            at: Cursor::default(),
            prepared: None,
            expected: None,
        })
    }

    /// A citizen registered two hours ago with six sessions: three in use, one left
    /// alone for a while, one idle past its lifetime, one ended by logout; and an
    /// operator of a service centre.
    async fn prepare(&self) -> Result<Prepared> {
        let now = OffsetDateTime::now_utc();
        let (operator_id, operator_key) = self.fixtures.operator(now - FIXTURE_AGE).await?;
        let citizen = Citizen::new(numbering::AUTHORIZER.citizens + 1);
        let account_id = self.fixtures.register(&citizen, now - FIXTURE_AGE).await?;
        let mut valid = Vec::new();
        for _ in 0..3 {
            valid.push(Fresh {
                session: self.fixtures.sign_in(&citizen, now).await?,
                refreshed: Instant::now(),
            });
        }
        let stale = self.fixtures.sign_in(&citizen, now).await?;
        let expired = self.fixtures.sign_in(&citizen, now).await?;
        let idle =
            time::Duration::try_from(self.fixtures.session_idle).context("session idle time")?;
        self.fixtures
            .set_last_seen(&expired.session_id, now - idle - time::Duration::HOUR)
            .await?;
        let logged_out = self.fixtures.sign_in(&citizen, now).await?;
        self.fixtures
            .sign_out(&account_id, &logged_out.session_id, now)
            .await?;
        Ok(Prepared {
            account_id,
            operator_id,
            operator_key,
            valid,
            stale,
            expired,
            logged_out,
        })
    }

    /// The event API Gateway sends the authorizer for a request with this
    /// `Authorization` header, built by the local gateway's own code.
    fn event(&self, authorization: &str) -> Json {
        let (method, path) = PRIVATE_ROUTES[self.at.serial as usize % PRIVATE_ROUTES.len()];
        let ip = source_ip(self.at.serial);
        let header = |k: &str, v: &str| (k.to_string(), v.to_string());
        let request = HttpRequest {
            method: method.into(),
            raw_path: path.into(),
            raw_query: String::new(),
            headers: vec![
                header("accept", "application/json"),
                header("authorization", authorization),
                header("host", "api.uslugi.example"),
                header("user-agent", USER_AGENT),
                header("x-forwarded-for", &ip),
                header("x-forwarded-proto", "https"),
            ],
            body: Vec::new(),
            source_ip: ip,
            protocol: "HTTP/1.1".into(),
            request_id: crate::system::uuid(),
            time: OffsetDateTime::now_utc(),
            api_id: "bench".into(),
        };
        authorizer_event(
            &request,
            &format!("{method} {path}"),
            &BTreeMap::new(),
            &[authorization.to_string()],
        )
    }
}

impl Script for Authorizer {
    fn describe(&self) -> String {
        "repeating cycles of 20 REQUEST-authorizer events (payload 2.0, identity source \
         `Authorization`, built by the local gateway's code) for private routes: 13 valid \
         session tokens, 1 of a session last used two minutes before (its idle deadline is \
         moved), 1 operator key, and 5 turned away: an unknown session token, a session idle \
         past its lifetime, a session ended by logout, an unknown operator key, a token that \
         is neither. Answers are shown as \
         API Gateway turns them into a response: 200 when `isAuthorized` is true (the route \
         is called with the context, which must name the session or operator), 401 when the authorizer \
         fails with `Unauthorized`. The account, its sessions and the operator are made by \
         the harness with the shared crate's services, outside the timing"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.prepared.is_none() {
            self.prepared = Some(self.prepare().await?);
        }
        let (kind, _) = self.at.advance(&CYCLE);
        self.expected = None;
        let now = OffsetDateTime::now_utc();
        let valid_index = self.at.serial as usize;
        let prepared = self.prepared.as_mut().context("no sessions prepared")?;
        let bearer = |s: &SignedIn| format!("Bearer {}", s.token);
        let (case, authorization, status) = match kind {
            Valid => {
                let n = prepared.valid.len();
                let fresh = &mut prepared.valid[valid_index % n];
                // Kept inside the minute after which the authorizer writes: this case is
                // the read-only check most requests get.
                if fresh.refreshed.elapsed() > FRESH {
                    self.fixtures
                        .set_last_seen(&fresh.session.session_id, now)
                        .await?;
                    fresh.refreshed = Instant::now();
                }
                self.expected = Some(fresh.session.session_id.clone());
                ("valid token", bearer(&fresh.session), 200)
            }
            IdleDeadlineMoved => {
                let stale = &prepared.stale;
                self.fixtures
                    .set_last_seen(&stale.session_id, now - STALE)
                    .await?;
                self.expected = Some(stale.session_id.clone());
                (
                    "valid token, idle deadline moved",
                    bearer(&prepared.stale),
                    200,
                )
            }
            Operator => (
                "operator key",
                format!("Bearer {}", prepared.operator_key),
                200,
            ),
            UnknownOperatorKey => (
                "unknown operator key",
                format!("Bearer op_{}", crate::system::uuid().replace('-', "")),
                401,
            ),
            UnknownToken => (
                "unknown session token",
                format!("Bearer st_{}", crate::system::uuid().replace('-', "")),
                401,
            ),
            Expired => ("session idle too long", bearer(&prepared.expired), 401),
            LoggedOut => ("session ended by logout", bearer(&prepared.logged_out), 401),
            Malformed => (
                "neither a session token nor an operator key",
                "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl".to_string(),
                401,
            ),
        };
        Ok(step(
            case,
            ROUTE,
            self.event(&authorization),
            expect(status, None),
            0,
        ))
    }

    fn answer(&self, ok: bool, body: &[u8]) -> Result<(u16, Json)> {
        let result = json_answer("the authorizer", body)?;
        if !ok {
            // An authorizer that fails with the message `Unauthorized` turns the request
            // away with 401; any other failure is a 500 (as in the local gateway).
            let unauthorized =
                result.get("errorMessage").and_then(Json::as_str) == Some("Unauthorized");
            return Ok(if unauthorized {
                (401, json!({"message": "Unauthorized"}))
            } else {
                (500, result)
            });
        }
        // The template enables simple responses; the ARN only matters to IAM policies.
        Ok(match authorizer_decision(&result, true, "") {
            Ok(AuthDecision::Allow(context)) => (200, context),
            Ok(AuthDecision::Deny) => (403, json!({"message": "Forbidden"})),
            Err(why) => (500, json!({"message": why})),
        })
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        let expected = self.expected.take();
        if status != 200 {
            return Ok(());
        }
        let prepared = self.prepared.as_ref().context("no sessions prepared")?;
        if self.at.last == Some(Kind::Operator) {
            let operator = field(body, "operator_id", "the authorizer's context")?;
            if operator != prepared.operator_id {
                bail!("the authorizer let an operator key through as another operator: {body}");
            }
            return Ok(());
        }
        let session = field(body, "session_id", "the authorizer's context")?;
        let account = field(body, "account_id", "the authorizer's context")?;
        if Some(session) != expected.as_deref() || account != prepared.account_id {
            bail!("the authorizer let a request through as another session or account: {body}");
        }
        if self.at.last == Some(Kind::IdleDeadlineMoved) && !called(calls, "dynamodb.UpdateItem") {
            bail!("the authorizer did not move the idle deadline of a session last used two minutes ago");
        }
        Ok(())
    }
}
