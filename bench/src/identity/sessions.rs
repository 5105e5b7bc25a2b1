//! sessions: logins (by e-mail and by phone, from a new device, on a foreign computer,
//! with a two-step SMS code), refused logins, and a signed-in citizen's sessions and
//! security log.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use super::fixtures::{Fixtures, SignedInMember};
use super::{called, field, sent_code, Citizen, FIXTURE_AGE};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{
    authorized, http_api_event, requests, routes, source_ip, with_user_agent, Cursor, Script, Step,
};

routes! {
    LOGIN = "POST /v1/sessions";
    TWO_STEP = "POST /v1/sessions/two-step";
    LIST = "GET /v1/sessions";
    LOGOUT = "DELETE /v1/sessions/current";
    REVOKE = "DELETE /v1/sessions/{id}";
    EVENTS = "GET /v1/security-events";
}

/// A device none of the accounts signed in from before.
const NEW_DEVICE: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// The cycle's accounts, by index: two with a password alone, one with two-step login.
const ACCOUNTS: usize = 3;
const TWO_STEP_ACCOUNT: usize = 2;

requests! {
    enum Kind {
        LoginEmail => "login by e-mail", "201";
        LoginPhone => "login by phone", "201";
        LoginNewDevice => "login from a new device", "201";
        LoginForeign => "login on a foreign computer", "201";
        LoginTwoStep => "login with two-step on: code sent", "202";
        TwoStepCode => "two-step login: code", "201";
        WrongPassword => "login: wrong password", "401 invalid_credentials";
        UnknownEmail => "login: unknown e-mail", "401 invalid_credentials";
        UnknownPhone => "login: unknown phone", "401 invalid_credentials";
        ListSessions => "list sessions", "200";
        SecurityEvents => "security log", "200";
        Logout => "logout", "204";
        RevokeOther => "revoke another session", "204";
    }
}

/// One cycle of 20 requests, each with the account (index) it is about: 6 logins with a
/// password alone (2 by e-mail, 2 by phone, 1 from a new device, 1 on a foreign
/// computer), a two-step login and its code, 2 wrong passwords, 2 unknown logins, 3
/// session lists, 2 security logs, 2 logouts and a revocation of an older session.
const CYCLE: [(Kind, usize); 20] = {
    use Kind::*;
    [
        (LoginEmail, 0),
        (LoginPhone, 1),
        (ListSessions, 0),
        (WrongPassword, 0),
        (UnknownEmail, 0),
        (SecurityEvents, 0),
        (LoginNewDevice, 1),
        (LoginTwoStep, TWO_STEP_ACCOUNT),
        (TwoStepCode, TWO_STEP_ACCOUNT),
        (ListSessions, 1),
        (RevokeOther, 0),
        (WrongPassword, 1),
        (LoginEmail, 0),
        (UnknownPhone, 0),
        (SecurityEvents, 1),
        (Logout, 0),
        (LoginForeign, 1),
        (ListSessions, TWO_STEP_ACCOUNT),
        (Logout, 1),
        (LoginPhone, 0),
    ]
};

struct Member {
    citizen: Citizen,
    account_id: String,
}

/// A session of one of the cycle's accounts.
struct Open {
    account: usize,
    id: String,
    token: String,
}

pub struct Sessions {
    fixtures: Fixtures,
    at: Cursor<(Kind, usize)>,
    citizens: u32,
    /// The cycle's accounts, made before its first request; empty until then.
    members: Vec<Member>,
    /// Sessions open in the cycle, oldest first: each account's first sign-in (by the
    /// fixtures, two hours earlier) and those the function opened.
    open: Vec<Open>,
    /// A two-step login waiting for its code: the challenge token and the code the SMS
    /// carried.
    challenge: Option<(String, String)>,
    /// The session a logout or revocation ends when it answers 204.
    ending: Option<String>,
}

impl Sessions {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            fixtures: Fixtures::new(spec, moto)?,
            at: Cursor::default(),
            citizens: 0,
            members: Vec::new(),
            open: Vec::new(),
            challenge: None,
            ending: None,
        })
    }

    /// Citizens who registered two hours ago and signed in then from the bench's device
    /// (so it is a known device), the last of them with two-step login on since.
    async fn prepare(&mut self) -> Result<()> {
        let at = OffsetDateTime::now_utc() - FIXTURE_AGE;
        let first = numbering::SESSIONS.citizens + self.citizens + 1;
        self.citizens += ACCOUNTS as u32;
        let members = self.fixtures.signed_in_members(first, ACCOUNTS, at).await?;
        for (i, member) in members.into_iter().enumerate() {
            let SignedInMember {
                citizen,
                account_id,
                session,
            } = member;
            if i == TWO_STEP_ACCOUNT {
                self.fixtures
                    .enable_two_step(&account_id, &session, &citizen, at)
                    .await?;
            }
            self.open.push(Open {
                account: i,
                id: session.session_id,
                token: session.token,
            });
            self.members.push(Member {
                citizen,
                account_id,
            });
        }
        Ok(())
    }

    fn member(&self, account: usize) -> Result<&Member> {
        self.members
            .get(account)
            .with_context(|| format!("no account {account} in the cycle"))
    }

    fn login(&self, login: &str, password: &str, foreign_computer: bool) -> Json {
        let mut body = json!({"login": login, "password": password});
        if foreign_computer {
            body["foreign_computer"] = json!(true);
        }
        http_api_event(
            LOGIN,
            &[],
            Some(&body.to_string()),
            &source_ip(self.at.serial),
        )
    }

    fn newest(&self, account: usize) -> Result<&Open> {
        self.open
            .iter()
            .rev()
            .find(|s| s.account == account)
            .with_context(|| format!("account {account} has no open session"))
    }

    /// A private request from the account's newest session.
    fn private(&self, account: usize, route: &str, params: &[(&str, &str)]) -> Result<Json> {
        let member = self.member(account)?;
        let session = self.newest(account)?;
        let event = http_api_event(route, params, None, &source_ip(self.at.serial));
        Ok(authorized(
            event,
            &member.account_id,
            &session.id,
            &session.token,
        ))
    }
}

impl Script for Sessions {
    const ROUTES: &'static [&'static str] = ROUTES;
    // Besides keeping every cycle alike, the reset clears the two-step account's
    // code log: its next login within the resend interval would be refused.
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 20 requests over 3 accounts registered two hours earlier and \
         signed in then from the bench's device, one of them with two-step login on: 6 \
         logins with the password alone (2 by e-mail, 2 by phone typed in the usual forms, \
         1 from a new device, which e-mails an alert, 1 on a foreign computer), 1 two-step \
         login (202, SMS) completed with the code read from that SMS (201), 2 wrong \
         passwords and 2 unknown logins (401), 3 session lists, 2 security logs, 2 logouts \
         and 1 revocation of the oldest session; private routes carry the authorizer \
         context of the account's newest session. Accounts and first sign-ins are made by \
         the harness with the shared crate's services, outside the timing; source IPs \
         rotate over 508 addresses"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.members.is_empty() {
            self.prepare().await?;
        }
        let ((kind, account), serial) = self.at.advance(&CYCLE);
        let member = self.member(account)?;
        let (email, phone) = (
            member.citizen.email.clone(),
            member.citizen.typed_phone(serial),
        );
        let password = member.citizen.password.clone();
        let wrong = format!("{password}1");
        let unknown = Citizen::new(numbering::SESSIONS_UNKNOWN.citizens + serial);
        let event = match kind {
            LoginEmail | LoginTwoStep => self.login(&email, &password, false),
            LoginPhone => self.login(&phone, &password, false),
            LoginNewDevice => with_user_agent(self.login(&email, &password, false), NEW_DEVICE),
            LoginForeign => self.login(&phone, &password, true),
            TwoStepCode => {
                let (challenge, code) = self
                    .challenge
                    .take()
                    .context("no two-step login waits for its code")?;
                let body = json!({"challenge_token": challenge, "code": code});
                let source = source_ip(self.at.serial);
                http_api_event(TWO_STEP, &[], Some(&body.to_string()), &source)
            }
            WrongPassword => {
                let login = if account == 0 { &email } else { &phone };
                self.login(login, &wrong, false)
            }
            UnknownEmail => self.login(&unknown.email, &unknown.password, false),
            UnknownPhone => self.login(&unknown.typed_phone(serial), &unknown.password, false),
            ListSessions => self.private(account, LIST, &[])?,
            SecurityEvents => self.private(account, EVENTS, &[])?,
            Logout => {
                let event = self.private(account, LOGOUT, &[])?;
                self.ending = Some(self.newest(account)?.id.clone());
                event
            }
            RevokeOther => {
                // From the newest session, the citizen ends the oldest one (the first
                // sign-in, on another phone say).
                let oldest = self
                    .open
                    .iter()
                    .find(|s| s.account == account)
                    .map(|s| s.id.clone())
                    .context("no session to revoke")?;
                let event = self.private(account, REVOKE, &[("id", &oldest)])?;
                self.ending = Some(oldest);
                event
            }
        };
        let step = kind.step(event)?;
        // Every login verifies one argon2id hash: the account's, or a dummy one for an
        // unknown login, so that both take the same time.
        let hashes = u32::from(step.label.route == LOGIN);
        Ok(step.hashing(hashes))
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.members.clear();
        self.open.clear();
        self.challenge = None;
        self.ending = None;
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        use Kind::*;
        let ending = self.ending.take();
        let Some((kind, account)) = self.at.last else {
            return Ok(());
        };
        match (kind, status) {
            (LoginEmail | LoginPhone | LoginNewDevice | LoginForeign | TwoStepCode, 201) => {
                let id = field(body, "session_id", "a 201 from a login")?;
                let token = field(body, "token", "a 201 from a login")?;
                if kind == LoginNewDevice && !called(calls, "sesv2.SendEmail") {
                    bail!("a login from a new device sent no alert e-mail");
                }
                self.open.push(Open {
                    account,
                    id: id.to_string(),
                    token: token.to_string(),
                });
            }
            (LoginTwoStep, 202) => {
                let challenge = field(body, "challenge_token", "a 202 from a two-step login")?;
                let code = sent_code(calls)
                    .context("a two-step login answered 202 but no SMS with a code went out")?;
                self.challenge = Some((challenge.to_string(), code));
            }
            (Logout | RevokeOther, 204) => {
                let id = ending.context("no session recorded as ending")?;
                self.open.retain(|s| s.id != id);
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_is_consistent() {
        let pos = |k: Kind| CYCLE.iter().position(|(kind, _)| *kind == k).unwrap();
        assert_eq!(pos(Kind::TwoStepCode), pos(Kind::LoginTwoStep) + 1);
        assert!(CYCLE.iter().all(|(_, account)| *account < ACCOUNTS));
        // Each account fails at most twice a cycle, far from the lock.
        for a in 0..ACCOUNTS {
            let failures = CYCLE
                .iter()
                .filter(|(k, acc)| *k == Kind::WrongPassword && *acc == a)
                .count();
            assert!(failures < 5);
        }
    }
}
