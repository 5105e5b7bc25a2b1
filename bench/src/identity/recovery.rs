//! recovery: a code to the confirmed contact of a known login, the same answer for an
//! unknown one, and the new password set with the code and the security answer.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use super::fixtures::Fixtures;
use super::{called, field, sent_code, Citizen, FIXTURE_AGE};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{http_api_event, routes, source_ip, Cursor, Script, Step};

routes! {
    START = "POST /v1/recovery";
    COMPLETE = "POST /v1/recovery/complete";
}

const ACCOUNTS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Email,
    Phone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StartKnown(Via),
    StartUnknown(Via),
    StartTooEarly(Via),
    InvalidLogin,
    WrongAnswer,
    Complete,
}

impl Kind {
    /// The case the report groups a request of this kind under, the answer it should get
    /// (as [`crate::scenario::Expect::parse`] reads it) and the argon2id hashes and
    /// verifications it costs the function.
    fn expected(self) -> (&'static str, &'static str, u32) {
        use Kind::*;
        use Via::*;
        match self {
            StartKnown(Email) => ("start: known e-mail", "202", 0),
            StartKnown(Phone) => ("start: known phone", "202", 0),
            StartUnknown(Email) => ("start: unknown e-mail", "202", 0),
            StartUnknown(Phone) => ("start: unknown phone", "202", 0),
            StartTooEarly(_) => (
                "start: again inside the resend interval",
                "429 code_resend_too_early",
                0,
            ),
            InvalidLogin => (
                "start: login neither phone nor e-mail",
                "422 validation_failed (invalid_phone)",
                0,
            ),
            WrongAnswer => (
                "complete: wrong security answer",
                "422 validation_failed (wrong_security_answer)",
                1,
            ),
            // The answer is verified and the new password hashed.
            Complete => ("complete", "204", 2),
        }
    }
}

/// One cycle of 16 requests, each with the account (index) it is about: each of the 3
/// accounts starts a recovery by e-mail and by phone (6 codes sent), 4 recoveries for
/// logins no account has (nothing sent), 1 start again inside the resend interval (429),
/// 1 login that is neither a phone nor an e-mail (422), 3 recoveries completed with the
/// code's verification token, 1 of them after a wrong security answer (422).
const CYCLE: [(Kind, usize); 16] = {
    use Kind::*;
    use Via::*;
    [
        (StartKnown(Email), 0),
        (StartUnknown(Email), 0),
        (StartKnown(Phone), 1),
        (StartKnown(Email), 2),
        (WrongAnswer, 1),
        (StartUnknown(Phone), 0),
        (Complete, 1),
        (StartKnown(Phone), 0),
        (StartTooEarly(Phone), 0),
        (Complete, 0),
        (StartUnknown(Email), 0),
        (StartKnown(Phone), 2),
        (InvalidLogin, 0),
        (StartKnown(Email), 1),
        (StartUnknown(Phone), 0),
        (Complete, 2),
    ]
};

/// A recovery the function started: the login as typed, the code id it answered and the
/// code its message carried, and the verification token once the code is verified.
struct Flow {
    account: usize,
    login: String,
    code_id: String,
    code: String,
    token: Option<String>,
}

pub struct Recovery {
    fixtures: Fixtures,
    at: Cursor<(Kind, usize)>,
    citizens: u32,
    /// The cycle's accounts, made before its first request; empty until then.
    members: Vec<Citizen>,
    flows: Vec<Flow>,
    /// The login of the last start.
    login: Option<String>,
}

impl Recovery {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            fixtures: Fixtures::new(spec, moto)?,
            at: Cursor::default(),
            citizens: 0,
            members: Vec::new(),
            flows: Vec::new(),
            login: None,
        })
    }

    /// Citizens who registered two hours ago and signed in then (the session a recovery
    /// ends).
    async fn prepare(&mut self) -> Result<()> {
        let first = numbering::RECOVERY.citizens + self.citizens + 1;
        self.citizens += ACCOUNTS as u32;
        let at = OffsetDateTime::now_utc() - FIXTURE_AGE;
        let members = self.fixtures.signed_in_members(first, ACCOUNTS, at).await?;
        self.members = members.into_iter().map(|m| m.citizen).collect();
        Ok(())
    }

    fn event(&self, route: &str, body: &Json) -> Json {
        http_api_event(
            route,
            &[],
            Some(&body.to_string()),
            &source_ip(self.at.serial),
        )
    }

    fn login_of(citizen: &Citizen, via: Via, serial: u32) -> String {
        match via {
            Via::Email => citizen.email.clone(),
            Via::Phone => citizen.typed_phone(serial),
        }
    }

    /// The login and verification token of the account's first recovery still open, its
    /// code verified (by the fixtures, as the codes function would) if it was not yet.
    async fn verified_flow(&mut self, account: usize) -> Result<(String, String)> {
        let index = self
            .flows
            .iter()
            .position(|f| f.account == account)
            .with_context(|| format!("account {account} has no recovery started"))?;
        if self.flows[index].token.is_none() {
            let flow = &self.flows[index];
            let token = self
                .fixtures
                .verify(&flow.code_id, &flow.code, OffsetDateTime::now_utc())
                .await?;
            self.flows[index].token = Some(token);
        }
        let flow = &self.flows[index];
        let token = flow.token.clone().context("the code was not verified")?;
        Ok((flow.login.clone(), token))
    }
}

impl Script for Recovery {
    const ROUTES: &'static [&'static str] = ROUTES;
    // The reset also clears the accounts' code logs: a contact gets one code per
    // resend interval, and each is sent one per cycle.
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 16 requests over 3 accounts registered and signed in two hours \
         earlier: each account starts a recovery by e-mail and by phone (6 starts, the code \
         read from the message that went through the proxy), 4 starts for logins no account \
         has (202 as well, nothing sent), 1 start again inside the resend interval (429), 1 \
         login that is neither a phone nor an e-mail (422), 3 recoveries completed with the \
         code's verification token and the security answer (204), one of them after a wrong \
         answer (422). Accounts are made, and codes verified, by the harness with the shared \
         crate's services, outside the timing; source IPs rotate over 508 addresses"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.members.is_empty() {
            self.prepare().await?;
        }
        let ((kind, account), serial) = self.at.advance(&CYCLE);
        let citizen = self
            .members
            .get(account)
            .with_context(|| format!("no account {account} in the cycle"))?
            .clone();
        let event = match kind {
            StartKnown(via) | StartTooEarly(via) => {
                let login = Self::login_of(&citizen, via, serial);
                let event = self.event(START, &json!({ "login": login }));
                self.login = Some(login);
                event
            }
            StartUnknown(via) => {
                let nobody = Citizen::new(numbering::RECOVERY_UNKNOWN.citizens + serial);
                let login = Self::login_of(&nobody, via, serial);
                self.event(START, &json!({ "login": login }))
            }
            InvalidLogin => self.event(START, &json!({"login": "ivanov_anna"})),
            WrongAnswer | Complete => {
                let (login, token) = self.verified_flow(account).await?;
                let answer = if kind == Complete {
                    citizen.security_answer.to_string()
                } else {
                    format!("{}а", citizen.security_answer)
                };
                let body = json!({
                    "login": login,
                    "verification_token": token,
                    "security_answer": answer,
                    "new_password": format!("Juniper{serial}dock"),
                });
                self.event(COMPLETE, &body)
            }
        };
        let (case, answer, hashes) = kind.expected();
        Ok(Step::expecting(case, event, answer)?.hashing(hashes))
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.members.clear();
        self.flows.clear();
        self.login = None;
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        use Kind::*;
        let login = self.login.take();
        let Some((kind, account)) = self.at.last else {
            return Ok(());
        };
        match (kind, status) {
            (StartKnown(_), 202) => {
                let code_id = field(body, "id", "a 202 from POST /v1/recovery")?;
                let code = sent_code(calls).context(
                    "a recovery for a known login answered 202 but no message with a code went out",
                )?;
                self.flows.push(Flow {
                    account,
                    login: login.context("no login recorded for the start")?,
                    code_id: code_id.to_string(),
                    code,
                    token: None,
                });
            }
            (StartUnknown(_), 202) => {
                field(body, "id", "a 202 from POST /v1/recovery")?;
                if called(calls, "sns.Publish") || called(calls, "sesv2.SendEmail") {
                    bail!("a recovery for a login no account has sent a message");
                }
            }
            (Complete, 204) => {
                let index = self
                    .flows
                    .iter()
                    .position(|f| f.account == account)
                    .context("a recovery completed that was not started")?;
                self.flows.remove(index);
            }
            _ => {}
        }
        Ok(())
    }
}

crate::scenario::answers_read!(CYCLE.map(|(kind, _)| kind.expected().1));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_follow_their_starts() {
        for (i, (kind, account)) in CYCLE.iter().enumerate() {
            if matches!(kind, Kind::Complete | Kind::WrongAnswer) {
                assert!(CYCLE[..i]
                    .iter()
                    .any(|(k, a)| matches!(k, Kind::StartKnown(_)) && a == account));
            }
            if let Kind::StartTooEarly(via) = kind {
                assert_eq!(CYCLE[i - 1], (Kind::StartKnown(*via), *account));
            }
        }
        // One code per contact and cycle: no start repeats but the one meant to.
        for (i, entry) in CYCLE.iter().enumerate() {
            if matches!(entry.0, Kind::StartKnown(_)) {
                assert!(!CYCLE[i + 1..].contains(entry));
            }
        }
    }
}
