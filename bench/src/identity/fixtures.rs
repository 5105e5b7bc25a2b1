//! What the identity scenarios need in moto before a request: verification tokens,
//! accounts, sessions. Made with the shared crate's code services, identity service and
//! DynamoDB store — what the codes, accounts and sessions functions run — configured from
//! the measured function's resolved environment (same table, same HMAC key), and talking
//! to moto directly: not through the counting proxy and between invocations, so none of
//! it is timed or counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use time::OffsetDateTime;

use shared::adapters::dynamodb::DynamoStore;
use shared::config::{CodesConfig, Env, IdentityConfig, TableConfig};
use shared::crypto::Hasher;
use shared::domain::{Destination, Email, PersonName, Phone, Purpose};
use shared::error::FieldError;
use shared::redact::Secret;
use shared::services::codes::{CodeService, DeliveryError, Notifier, SendCode};
use shared::services::confirmation::OperatorService;
use shared::services::identity::{
    Client, GuardedRequest, IdentityService, IdentityStore, Login, LoginOutcome, Principal,
    Registration, SecuritySettings,
};
use uslugi_local::provision::Clients;

use super::{Citizen, FIXTURE_AGE};
use crate::functions::FunctionSpec;
use crate::scenario::{six_digit_code, USER_AGENT};

/// Where the fixtures' requests come from (TEST-NET-1), apart from the scenarios' own.
const HARNESS_IP: &str = "192.0.2.10";

/// The messages the fixtures' services send, kept so that codes can be read from them.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<String>>>);

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lock())
    }
}

impl Notifier for Outbox {
    async fn send_sms(&self, _to: &Phone, text: &Secret<String>) -> Result<(), DeliveryError> {
        self.lock().push(text.expose().clone());
        Ok(())
    }

    async fn send_email(
        &self,
        _to: &Email,
        _subject: &str,
        text: &Secret<String>,
    ) -> Result<(), DeliveryError> {
        self.lock().push(text.expose().clone());
        Ok(())
    }
}

/// A session as a login answers it.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session_id: String,
    pub token: String,
}

/// A citizen the fixtures registered and signed in (see [`Fixtures::signed_in_members`]).
pub struct SignedInMember {
    pub citizen: Citizen,
    pub account_id: String,
    pub session: SignedIn,
}

pub struct Fixtures {
    codes: CodeService<DynamoStore, Outbox>,
    identity: IdentityService<DynamoStore, Outbox>,
    operators: OperatorService<DynamoStore>,
    store: DynamoStore,
    outbox: Outbox,
    /// Idle lifetime of the sessions the fixtures open.
    pub session_idle: Duration,
}

fn invalid(what: &str, e: FieldError) -> anyhow::Error {
    anyhow!("fixture citizen: {what} refused ({} {})", e.field, e.code)
}

/// The account's session `session_id` as the authorizer passes it on, presence proven
/// at `at`.
fn principal(account_id: &str, session_id: &str, at: OffsetDateTime) -> Result<Principal> {
    Ok(Principal {
        account_id: account_id.parse()?,
        session_id: session_id.parse()?,
        proven_at: at.unix_timestamp(),
        strength: shared::domain::CredentialStrength::Password,
    })
}

fn client() -> Client {
    Client::new(Some(HARNESS_IP.into()), Some(USER_AGENT.into()))
}

impl Fixtures {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Self::with_env(&spec.binary, &spec.env, spec.hasher()?, moto)
    }

    /// Fixtures configured from the resolved environment `env` of the function `binary`
    /// and the HMAC keys it reads (the load test takes both from the local stack).
    pub fn with_env(
        binary: &str,
        env: &BTreeMap<String, String>,
        hasher: Hasher,
        moto: &Clients,
    ) -> Result<Self> {
        let env = Env(|name: &str| env.get(name).cloned());
        let identity = IdentityConfig::from_env(&env, hasher.clone())
            .with_context(|| format!("{binary}: identity configuration"))?;
        let operators = TableConfig::from_env(&env, hasher.clone())
            .with_context(|| format!("{binary}: operator configuration"))?;
        let mut codes = CodesConfig::from_env(&env, hasher)
            .with_context(|| format!("{binary}: code configuration"))?;
        // The fixtures send several codes to one contact in a row (a contact confirmed
        // again for a registration that will find it taken) and all from one address.
        // Limits guard the functions, not what the harness prepares.
        codes.limits.resend_interval = Duration::ZERO;
        codes.limits.max_per_destination = u32::MAX;
        codes.limits.max_per_client_ip = u32::MAX;
        let outbox = Outbox::default();
        let store = || DynamoStore::new(moto.dynamodb.clone(), identity.table_name.clone());
        Ok(Self {
            codes: CodeService::new(store(), outbox.clone(), codes.hasher, codes.limits),
            operators: OperatorService::new(store(), operators.hasher),
            store: store(),
            session_idle: identity.limits.idle,
            identity: IdentityService::new(
                store(),
                outbox.clone(),
                identity.hasher,
                identity.limits,
            ),
            outbox,
        })
    }

    /// A verification token for `destination`, as the codes function issues one: a code
    /// sent, read from its message and verified, all as of `at`.
    pub async fn token(
        &self,
        destination: Destination,
        purpose: Purpose,
        at: OffsetDateTime,
    ) -> Result<String> {
        self.outbox.take();
        let sent = self
            .codes
            .send(
                SendCode {
                    destination,
                    purpose,
                    client_ip: HARNESS_IP.into(),
                    deliver: true,
                },
                at,
            )
            .await
            .context("sending a code")?;
        let code = self
            .outbox
            .take()
            .iter()
            .find_map(|m| six_digit_code(m))
            .context("the code service sent no message with a code")?;
        self.verify(&sent.id, &code, at).await
    }

    /// Verifies a code the function sent; the verification token, as the codes function
    /// answers `POST /v1/codes/{id}/verify`.
    pub async fn verify(&self, code_id: &str, code: &str, at: OffsetDateTime) -> Result<String> {
        let issued = self
            .codes
            .verify(&code_id.parse()?, code, at)
            .await
            .context("verifying a code")?;
        Ok(issued.token.expose().clone())
    }

    /// Registration tokens for the citizen's e-mail and phone.
    pub async fn registration_tokens(
        &self,
        citizen: &Citizen,
        at: OffsetDateTime,
    ) -> Result<(String, String)> {
        let email = Email::parse("email", &citizen.email).map_err(|e| invalid("e-mail", e))?;
        let phone = Phone::parse("phone", &citizen.phone).map_err(|e| invalid("phone", e))?;
        let email_token = self
            .token(Destination::Email(email), Purpose::Registration, at)
            .await?;
        let phone_token = self
            .token(Destination::Phone(phone), Purpose::Registration, at)
            .await?;
        Ok((email_token, phone_token))
    }

    /// Registers the citizen as the accounts function does, tokens and all, as of `at`;
    /// the account id.
    pub async fn register(&self, citizen: &Citizen, at: OffsetDateTime) -> Result<String> {
        let (email_token, phone_token) = self.registration_tokens(citizen, at).await?;
        let name = |field: &str, value: &str| {
            PersonName::parse(field, value).map_err(|e| invalid("name", e))
        };
        let registration = Registration {
            last_name: name("last_name", citizen.last_name)?,
            first_name: name("first_name", citizen.first_name)?,
            middle_name: citizen
                .middle_name
                .map(|m| name("middle_name", m))
                .transpose()?,
            email: Email::parse("email", &citizen.email).map_err(|e| invalid("e-mail", e))?,
            phone: Phone::parse("phone", &citizen.phone).map_err(|e| invalid("phone", e))?,
            password: Secret::new(citizen.password.clone()),
            security_question: citizen.security_question.to_string(),
            security_answer: Secret::new(citizen.security_answer.to_string()),
            email_verification_token: Secret::new(email_token),
            phone_verification_token: Secret::new(phone_token),
        };
        let created = self
            .identity
            .register(registration, &client(), at)
            .await
            .context("registering a fixture account")?;
        Ok(created.account_id.into())
    }

    /// The citizen registered two hours ago ([`FIXTURE_AGE`]) and signed in now: the
    /// account id and the session.
    pub async fn member(&self, citizen: &Citizen) -> Result<(String, SignedIn)> {
        let now = OffsetDateTime::now_utc();
        let account_id = self.register(citizen, now - FIXTURE_AGE).await?;
        let session = self.sign_in(citizen, now).await?;
        Ok((account_id, session))
    }

    /// `count` citizens numbered from `first`, each registered and signed in from the
    /// bench's device as of `at`: the accounts the sessions and recovery scenarios start
    /// their cycles with.
    pub async fn signed_in_members(
        &self,
        first: u32,
        count: usize,
        at: OffsetDateTime,
    ) -> Result<Vec<SignedInMember>> {
        let mut members = Vec::with_capacity(count);
        for n in (first..).take(count) {
            let citizen = Citizen::new(n);
            let account_id = self.register(&citizen, at).await?;
            let session = self.sign_in(&citizen, at).await?;
            members.push(SignedInMember {
                citizen,
                account_id,
                session,
            });
        }
        Ok(members)
    }

    /// Signs in with the citizen's e-mail and password from the bench's device, as of
    /// `at`.
    pub async fn sign_in(&self, citizen: &Citizen, at: OffsetDateTime) -> Result<SignedIn> {
        let login = Login {
            login: citizen.email.clone(),
            password: Secret::new(citizen.password.clone()),
            foreign_computer: false,
            second_factor: None,
        };
        match self
            .identity
            .login(login, &client(), at, &self.codes)
            .await
            .context("signing a fixture account in")?
        {
            LoginOutcome::Session(session) => Ok(SignedIn {
                session_id: session.id.into(),
                token: session.token.expose().clone(),
            }),
            LoginOutcome::CodeRequired(_) => {
                bail!("a fixture account asked for a two-step code at sign-in")
            }
            LoginOutcome::PasswordChangeRequired(_) => {
                bail!("a fixture account asked for a new password at sign-in")
            }
        }
    }

    /// Turns two-step login on, as `PUT /v1/account/security-settings` does.
    pub async fn enable_two_step(
        &self,
        account_id: &str,
        session: &SignedIn,
        citizen: &Citizen,
        at: OffsetDateTime,
    ) -> Result<()> {
        // Just signed in: turning two-step on needs no step-up anyway.
        let principal = principal(account_id, &session.session_id, at)?;
        let settings = SecuritySettings {
            two_step_login: Some(true),
            new_device_alerts: None,
        };
        let effective = self
            .identity
            .change_security_settings(
                GuardedRequest::new(
                    &principal,
                    &Secret::new(citizen.password.clone()),
                    &client(),
                    at,
                ),
                settings,
            )
            .await
            .context("turning two-step login on")?;
        if !effective.two_step_login {
            bail!("two-step login stayed off for a fixture account");
        }
        Ok(())
    }

    /// Ends a session, as `DELETE /v1/sessions/current` does.
    pub async fn sign_out(
        &self,
        account_id: &str,
        session_id: &str,
        at: OffsetDateTime,
    ) -> Result<()> {
        let principal = principal(account_id, session_id, at)?;
        self.identity
            .revoke(&principal, &principal.session_id, &client(), at)
            .await
            .context("ending a fixture session")
    }

    /// An operator of a service centre, as the admin command creates one: its id and key.
    pub async fn operator(&self, at: OffsetDateTime) -> Result<(String, String)> {
        let (operator, key) = self
            .operators
            .create_operator("Оператор стенда", "МФЦ стенда", at)
            .await
            .context("creating a fixture operator")?;
        Ok((operator.id.into(), key.expose().clone()))
    }

    /// Dates the session's last use back to `last_seen`, with the store call the
    /// authorizer moves the idle deadline with.
    pub async fn set_last_seen(&self, session_id: &str, last_seen: OffsetDateTime) -> Result<()> {
        let seen = last_seen.unix_timestamp();
        let idle = i64::try_from(self.session_idle.as_secs()).unwrap_or(i64::MAX);
        self.store
            .touch_session(&session_id.parse()?, seen, seen.saturating_add(idle))
            .await
            .context("dating a fixture session")
    }
}
