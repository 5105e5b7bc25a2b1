//! accounts: registrations with contacts confirmed by code, the refusals citizens run
//! into, and a signed-in citizen's own routes.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use super::fixtures::{Fixtures, SignedIn};
use super::{called, field, Citizen, FIXTURE_AGE};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{authorized, http_api_event, routes, source_ip, Cursor, Script, Step};

routes! {
    REGISTER = "POST /v1/accounts";
    PROFILE = "GET /v1/account";
    PASSWORD = "PUT /v1/account/password";
    SETTINGS = "PUT /v1/account/security-settings";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Register,
    BreachedPassword,
    ContactTaken,
    ExpiredTokens,
    Profile,
    ChangePassword,
    WrongPassword,
    SecuritySettings,
}

impl Kind {
    /// The case the report groups a request of this kind under, the answer it should get
    /// (as [`crate::scenario::Expect::parse`] reads it) and the argon2id hashes and
    /// verifications it costs the function.
    fn expected(self) -> (&'static str, &'static str, u32) {
        use Kind::*;
        match self {
            // The password and the security answer are hashed.
            Register => ("registration", "201", 2),
            BreachedPassword => (
                "registration: breached password",
                "422 validation_failed (password_breached)",
                0,
            ),
            ContactTaken => (
                "registration: contacts already registered",
                "409 contact_already_registered",
                2,
            ),
            ExpiredTokens => (
                "registration: confirmations expired",
                "422 validation_failed (verification_token_invalid)",
                2,
            ),
            Profile => ("profile", "200", 0),
            // The current password is verified, the new one hashed.
            ChangePassword => ("change password", "204", 2),
            WrongPassword => (
                "change password: wrong current password",
                "403 wrong_password",
                1,
            ),
            SecuritySettings => ("security settings: new-device alerts", "200", 1),
        }
    }
}

/// One cycle of 20 requests: 7 registrations that succeed (one of them resubmitting a
/// registration refused for its password), one refused for a breached password (no AWS
/// call), one whose contacts belong to an account registered earlier in the cycle (409),
/// one with confirmations older than their 15 minutes (422); then the first citizen of
/// the cycle, signed in, looks at the profile 5 times, changes the password twice, gets
/// the current password wrong once and turns new-device alerts off and on.
const CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        Register,
        Register,
        BreachedPassword,
        Register,
        Profile,
        SecuritySettings,
        Register,
        ContactTaken,
        Profile,
        ChangePassword,
        Register,
        ExpiredTokens,
        Profile,
        WrongPassword,
        Register,
        ChangePassword,
        Profile,
        SecuritySettings,
        Register,
        Profile,
    ]
};

/// Someone filling in the registration form, contacts confirmed.
struct Applicant {
    citizen: Citizen,
    email_token: String,
    phone_token: String,
}

struct Member {
    citizen: Citizen,
    account_id: String,
}

/// The cycle's first citizen, signed in for the private routes.
#[derive(Clone)]
struct Current {
    account_id: String,
    session: SignedIn,
    password: String,
    new_device_alerts: bool,
}

pub struct Accounts {
    fixtures: Fixtures,
    at: Cursor<Kind>,
    citizens: u32,
    /// The applicant of the last registration request.
    applying: Option<Applicant>,
    /// Refused for the password; the next registration resubmits it with a good one.
    retry: Option<Applicant>,
    /// Accounts registered in this cycle.
    members: Vec<Member>,
    current: Option<Current>,
    /// What the last private request should change once it succeeds.
    new_password: Option<String>,
    new_alerts: Option<bool>,
}

impl Accounts {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            fixtures: Fixtures::new(spec, moto)?,
            at: Cursor::default(),
            citizens: 0,
            applying: None,
            retry: None,
            members: Vec::new(),
            current: None,
            new_password: None,
            new_alerts: None,
        })
    }

    fn citizen(&mut self) -> Citizen {
        self.citizens += 1;
        Citizen::new(numbering::ACCOUNTS.citizens + self.citizens)
    }

    /// The citizen with both contacts confirmed for registration as of `at`.
    async fn applicant(&self, citizen: Citizen, at: OffsetDateTime) -> Result<Applicant> {
        let (email_token, phone_token) = self.fixtures.registration_tokens(&citizen, at).await?;
        Ok(Applicant {
            citizen,
            email_token,
            phone_token,
        })
    }

    fn registration(&self, a: &Applicant, password: &str) -> Json {
        let c = &a.citizen;
        // The phone typed as people type numbers; the function normalises them.
        let phone = c.typed_phone(self.at.serial);
        let body = c.registration(&phone, password, &a.email_token, &a.phone_token);
        http_api_event(
            REGISTER,
            &[],
            Some(&body.to_string()),
            &source_ip(self.at.serial),
        )
    }

    /// The cycle's first citizen, signed in (by the fixtures, once per cycle).
    async fn current(&mut self, now: OffsetDateTime) -> Result<Current> {
        if self.current.is_none() {
            let member = self
                .members
                .first()
                .context("no account was registered before the first private request of the cycle (were the registrations refused?)")?;
            let session = self.fixtures.sign_in(&member.citizen, now).await?;
            self.current = Some(Current {
                account_id: member.account_id.clone(),
                session,
                password: member.citizen.password.clone(),
                new_device_alerts: true,
            });
        }
        self.current.clone().context("no signed-in citizen")
    }

    fn private(&self, current: &Current, route: &str, body: Option<Json>) -> Json {
        let text = body.map(|b| b.to_string());
        let event = http_api_event(route, &[], text.as_deref(), &source_ip(self.at.serial));
        authorized(
            event,
            &current.account_id,
            &current.session.session_id,
            &current.session.token,
        )
    }
}

impl Script for Accounts {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 20 requests: 7 registrations that succeed, each with e-mail and \
         phone confirmed by code just before (one resubmits a registration refused for a \
         breached password), 1 refused for a breached password (422), 1 whose contacts \
         belong to an account registered earlier in the cycle (409), 1 with confirmations \
         older than the token lifetime (422); the cycle's first citizen, signed in, then \
         reads the profile 5 times, changes the password twice, gives a wrong current \
         password once (403) and turns new-device alerts off and on. Codes, tokens and the \
         sign-in are made by the harness with the shared crate's services, outside the \
         timing; source IPs rotate over 508 addresses"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        let (kind, _) = self.at.advance(&CYCLE);
        let now = OffsetDateTime::now_utc();
        let event = match kind {
            Register => {
                let applicant = match self.retry.take() {
                    Some(a) => a,
                    None => {
                        let citizen = self.citizen();
                        self.applicant(citizen, now).await?
                    }
                };
                let event = self.registration(&applicant, &applicant.citizen.password);
                self.applying = Some(applicant);
                event
            }
            BreachedPassword => {
                let citizen = self.citizen();
                let applicant = self.applicant(citizen, now).await?;
                let event = self.registration(&applicant, "qwerty123");
                self.retry = Some(applicant);
                event
            }
            ContactTaken => {
                let owner = self
                    .members
                    .first()
                    .context("no account registered in the cycle to collide with")?;
                let (email, phone) = (owner.citizen.email.clone(), owner.citizen.phone.clone());
                let mut citizen = self.citizen();
                citizen.email = email;
                citizen.phone = phone;
                // Confirmed by code just now: the contacts are the citizen's, the account
                // on them too, forgotten.
                let applicant = self.applicant(citizen, now).await?;
                self.registration(&applicant, &applicant.citizen.password)
            }
            ExpiredTokens => {
                let citizen = self.citizen();
                let applicant = self.applicant(citizen, now - FIXTURE_AGE).await?;
                self.registration(&applicant, &applicant.citizen.password)
            }
            Profile => {
                let current = self.current(now).await?;
                self.private(&current, PROFILE, None)
            }
            ChangePassword => {
                let serial = self.at.serial;
                let current = self.current(now).await?;
                let new = format!("Heather{serial}quay");
                let body = json!({"password": current.password, "new_password": new});
                let event = self.private(&current, PASSWORD, Some(body));
                self.new_password = Some(new);
                event
            }
            WrongPassword => {
                let serial = self.at.serial;
                let current = self.current(now).await?;
                let body = json!({
                    "password": format!("{}x", current.password),
                    "new_password": format!("Heather{serial}quay"),
                });
                self.private(&current, PASSWORD, Some(body))
            }
            SecuritySettings => {
                let current = self.current(now).await?;
                let alerts = !current.new_device_alerts;
                let body = json!({"password": current.password, "new_device_alerts": alerts});
                let event = self.private(&current, SETTINGS, Some(body));
                self.new_alerts = Some(alerts);
                event
            }
        };
        let (case, answer, hashes) = kind.expected();
        Ok(Step::expecting(case, event, answer)?.hashing(hashes))
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.applying = None;
        self.retry = None;
        self.members.clear();
        self.current = None;
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        let applying = self.applying.take();
        let new_password = self.new_password.take();
        let new_alerts = self.new_alerts.take();
        match (self.at.last, status) {
            (Some(Kind::Register), 201) => {
                let applicant =
                    applying.context("a registration answered 201 with no applicant")?;
                let account_id = field(body, "account_id", "a 201 from POST /v1/accounts")?;
                if !called(calls, "sesv2.SendEmail") {
                    bail!("a registration answered 201 but sent no welcome e-mail");
                }
                self.members.push(Member {
                    citizen: applicant.citizen,
                    account_id: account_id.to_string(),
                });
            }
            (Some(Kind::Profile), 200) => {
                let current = self.current.as_ref().context("no signed-in citizen")?;
                let shown = field(body, "account_id", "a 200 from GET /v1/account")?;
                if shown != current.account_id {
                    bail!("GET /v1/account showed another account than the signed-in one");
                }
            }
            (Some(Kind::ChangePassword), 204) => {
                let current = self.current.as_mut().context("no signed-in citizen")?;
                current.password = new_password.context("no new password recorded")?;
            }
            (Some(Kind::SecuritySettings), 200) => {
                let current = self.current.as_mut().context("no signed-in citizen")?;
                let asked = new_alerts.context("no setting recorded")?;
                if body.get("new_device_alerts").and_then(Json::as_bool) != Some(asked) {
                    bail!("security settings answered 200 without the asked setting: {body}");
                }
                current.new_device_alerts = asked;
            }
            _ => {}
        }
        Ok(())
    }
}

crate::scenario::answers_read!(CYCLE.map(|kind| kind.expected().1));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_requests_come_after_a_registration() {
        let first_private = CYCLE
            .iter()
            .position(|k| !matches!(k, Kind::Register | Kind::BreachedPassword))
            .unwrap();
        assert!(CYCLE[..first_private].contains(&Kind::Register));
        // The breached-password applicant is resubmitted by a later registration.
        let breached = CYCLE
            .iter()
            .position(|k| *k == Kind::BreachedPassword)
            .unwrap();
        assert!(CYCLE[breached..].contains(&Kind::Register));
    }
}
