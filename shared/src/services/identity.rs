//! Accounts, sessions and the security log.
//!
//! - Registration redeems two verification tokens (e-mail and phone, purpose
//!   `registration`) and claims both contacts as logins in one DynamoDB transaction: two
//!   racing sign-ups for one phone cannot both win, and a refused sign-up spends nothing.
//! - Login accepts a phone in any usual form or an e-mail in any case. A wrong password
//!   and an unknown login get the same answer after the same work (a dummy argon2 hash).
//!   Failures are counted per login (known or not, so throttling reveals nothing) and per
//!   client address; after `max_failures` the login is locked with a doubling delay and
//!   the owner gets an e-mail.
//! - Sessions are opaque 256-bit bearer tokens stored only as keyed hashes, with an idle
//!   and an absolute lifetime; a "foreign computer" session gets the short idle lifetime.

use std::future::Future;
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::SessionLimits;
use crate::crypto::{self, Credential, Hasher, Identifier};
use crate::domain::{Destination, Email, PersonName, Phone, Purpose, Snils};
use crate::error::{AppError, FieldError};
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind};
use crate::passwords;
use crate::redact::Secret;
use crate::services::codes::{Confirmations, DeliveryError, Notifier, SendCode};
use crate::services::profile::snils_login_key;
use crate::services::{
    destination_key, verification_token_key, verification_token_keys, StoreError, MOSCOW,
};

/// Prefix of session tokens (see [`crate::redact::TOKEN_PREFIXES`]).
pub const SESSION_TOKEN_PREFIX: &str = "st_";

/// Prefix of two-step login challenge tokens (see [`crate::redact::TOKEN_PREFIXES`]).
pub const CHALLENGE_TOKEN_PREFIX: &str = "lc_";
/// Devices remembered per account for new-device alerts; the oldest is forgotten first.
pub const MAX_KNOWN_DEVICES: usize = 20;

/// Reads of a login's state after losing the race to count an attempt.
const ATTEMPT_RACE_RETRIES: usize = 3;

/// How long security events are kept.
pub const SECURITY_EVENT_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Failure counters of a login are forgotten this long after the last failure.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(24 * 3600);

// ------------------------------------------------------------------ records

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub email: String,
    pub phone: String,
    pub password_hash: String,
    pub security_question: String,
    pub security_answer_hash: String,
    pub level: &'static str,
    pub created_at: i64,
}

/// A contact claimed as a login: its key and what it is.
#[derive(Debug, Clone)]
pub struct LoginClaim {
    pub key: String,
    pub kind: &'static str,
}

/// A verification token to consume, valid only for this contact and purpose.
#[derive(Debug, Clone)]
pub struct TokenRedemption {
    pub token_key: String,
    pub destination_key: String,
    pub purpose: &'static str,
}

/// Why a registration transaction was refused; several can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationRefusal {
    LoginTaken(usize),
    TokenInvalid(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    pub id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub email: String,
    pub phone: String,
    pub password_hash: String,
    pub security_question: String,
    pub security_answer_hash: String,
    pub level: String,
    pub created_at: i64,
    /// A password alone is not enough to sign in: an SMS code to the phone completes it.
    pub two_step_login: bool,
    /// An e-mail tells the owner of a login from a device not seen before.
    pub new_device_alerts: bool,
    /// Keyed hashes of the devices (user agents) the account signed in from, oldest first.
    pub known_devices: Vec<String>,
    /// The login key of the account's SNILS, once the profile holds one.
    pub snils_login: Option<String>,
    /// When the identity was confirmed (in person or by a code by post); kept when the
    /// level drops after an edit, so re-verified data lifts it straight back.
    pub confirmed_at: Option<i64>,
    /// Moves with every new password: a session stamped with another epoch is over, so a
    /// password change or a recovery ends every session opened with the old password,
    /// even one whose login was still under way.
    pub credentials_epoch: u64,
}

/// A login whose password was right, waiting for the SMS code of two-step login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    /// Keyed hash of the challenge token handed to the client.
    pub key: String,
    pub account_id: String,
    /// The code sent to the phone.
    pub code_id: String,
    /// The phone the code went to, as its key.
    pub destination_key: String,
    /// The login whose failure counter a completed login clears.
    pub login_key: String,
    pub foreign_computer: bool,
    /// The account's credentials epoch when the password was checked.
    pub credentials_epoch: u64,
    pub expires_at: i64,
}

/// A session to write, with everything that changes along with it.
#[derive(Debug, Clone)]
pub struct SessionWrite<'a> {
    pub session: &'a Session,
    /// The login whose failure counter is cleared.
    pub login_key: &'a str,
    /// The client window whose counted attempt the login gives back.
    pub client: Option<ClientWindow<'a>>,
    pub event: &'a SecurityEvent,
    /// The account's known devices after this login, when the device is new.
    pub known_devices: Option<Vec<String>>,
    /// What a two-step login consumes: its challenge and the code's verification token.
    pub challenge_key: Option<&'a str>,
    pub token: Option<&'a TokenRedemption>,
}

/// Security settings to change; `None` leaves one as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SecuritySettings {
    pub two_step_login: Option<bool>,
    pub new_device_alerts: Option<bool>,
}

/// Which contact of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactKind {
    Email,
    Phone,
}

impl ContactKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
        }
    }
}

/// A contact change to write: the new login claimed, the old one released, the account
/// updated and the confirming token consumed, all at once.
#[derive(Debug, Clone)]
pub struct ContactChange {
    pub kind: ContactKind,
    pub new_value: String,
    pub new_key: String,
    pub old_key: String,
    pub token: TokenRedemption,
}

/// Why a contact change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactChangeRefusal {
    Taken,
    TokenInvalid,
}

/// Consecutive failed logins, counted atomically by the store; the lock is derived from
/// them, so concurrent failures cannot overwrite each other's count. Every attempt is
/// counted as a failure before its secret is checked, and a right secret takes it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginFailures {
    pub count: u32,
    pub last_failure_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub account_id: String,
    pub kind: &'static str,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecurityEvent {
    pub kind: String,
    pub at: i64,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The keyed hash of the token: the session's public id.
    pub id: String,
    pub account_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_secs: i64,
    pub absolute_expires_at: i64,
    pub foreign_computer: bool,
    pub ip: String,
    pub user_agent: String,
    /// When the session last proved its holder present: its login, or a step-up code.
    pub proven_at: i64,
    /// The account's credentials epoch the session was opened under.
    pub credentials_epoch: u64,
}

/// A new password to write, with what else changes along with it.
#[derive(Debug, Clone)]
pub struct PasswordChange<'a> {
    pub account_id: &'a str,
    pub password_hash: &'a str,
    /// The credentials epoch the change read; the write moves it to the next one.
    pub credentials_epoch: u64,
    /// The session that stays (the one that changed the password), restamped.
    pub keep_session: Option<&'a str>,
    /// A recovery's verification token, consumed in the same transaction.
    pub token: Option<&'a TokenRedemption>,
}

impl Session {
    /// When the session ends if nothing more happens.
    pub fn expires_at(&self) -> i64 {
        (self.last_seen_at + self.idle_secs).min(self.absolute_expires_at)
    }
}

/// What a login attempt found, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct LoginState {
    pub account_id: Option<String>,
    pub failures: LoginFailures,
    pub client_failures: u32,
}

/// A client address's attempts in one fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientWindow<'a> {
    pub key: &'a str,
    pub start: i64,
    pub end: i64,
}

/// One attempt at a secret (a password, a security answer), to count before the secret
/// is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub login_key: &'a str,
    /// Failures after which the login is locked.
    pub max_failures: u32,
    /// The failures the caller read and whose lock it found over: past the limit, one
    /// attempt is let through only while nobody else counted since that read.
    pub seen_failures: u32,
    pub client: ClientWindow<'a>,
    /// Attempts the client may make in its window; `None`: counted, not limited.
    pub client_limit: Option<u32>,
}

/// What counting an attempt decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptCount {
    /// Counted: the secret may be checked. The login's failures with this one.
    Counted { failures: u32 },
    /// The client's window is full.
    ClientLimited,
    /// The login reached its limit meanwhile.
    LoginLimited,
}

/// An attempt the store counted, for what follows the check of its secret.
#[derive(Debug, Clone)]
struct CountedAttempt {
    login_key: String,
    client_key: String,
    window_start: i64,
    window_end: i64,
    /// The login's failures, this attempt included.
    failures: u32,
    /// The account the login names, if any.
    account_id: Option<String>,
}

/// The login a session is opened for: its failure counter to clear, and the client's
/// attempt to give back, if one is still counted.
#[derive(Debug, Clone, Copy)]
struct ProvenLogin<'a> {
    key: &'a str,
    client: Option<ClientWindow<'a>>,
}

impl CountedAttempt {
    fn client_window(&self) -> ClientWindow<'_> {
        ClientWindow {
            key: &self.client_key,
            start: self.window_start,
            end: self.window_end,
        }
    }
}

// ------------------------------------------------------------------ store

pub trait IdentityStore {
    /// Writes the account, claims its logins and consumes the tokens, all or nothing.
    /// `Ok(Err(..))` lists what refused the transaction (by index into `logins`/`tokens`).
    fn create_account(
        &self,
        account: &NewAccount,
        logins: &[LoginClaim],
        tokens: &[TokenRedemption],
        event: &SecurityEvent,
        now: i64,
    ) -> impl Future<Output = Result<Result<(), Vec<RegistrationRefusal>>, StoreError>> + Send;

    /// The account a login key points to, its failure counter, and the client's
    /// failures in the current window.
    fn load_login_state(
        &self,
        login_key: &str,
        client_key: &str,
        window_start: i64,
    ) -> impl Future<Output = Result<LoginState, StoreError>> + Send;

    /// The account; with `None` it reads a key that cannot exist, so that an unknown
    /// login costs the same round trip as a known one.
    fn get_account(
        &self,
        id: Option<&str>,
    ) -> impl Future<Output = Result<Option<StoredAccount>, StoreError>> + Send;

    /// Counts an attempt on the client's window and on the login's failures, each with
    /// a condition that holds only under its limit, so that parallel attempts cannot
    /// pass it. An attempt the login refuses is given back to the client.
    fn count_attempt(
        &self,
        attempt: &Attempt<'_>,
        now: i64,
    ) -> impl Future<Output = Result<AttemptCount, StoreError>> + Send;

    /// Takes a counted attempt back after its secret proved right: the login's failures
    /// are cleared and the client's attempt is given back.
    fn forgive_attempt(
        &self,
        login_key: &str,
        client: ClientWindow<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Logs a security event on its own.
    fn put_event(
        &self,
        event: &SecurityEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Creates the session, clears the login's failures, gives the client's attempt back
    /// when asked, logs the event, and updates the known devices and consumes a two-step
    /// challenge when asked, atomically.
    /// `Ok(false)`: the challenge or token to consume was already gone.
    fn create_session(
        &self,
        write: &SessionWrite<'_>,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn put_challenge(
        &self,
        challenge: &LoginChallenge,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_challenge(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LoginChallenge>, StoreError>> + Send;

    fn update_security_settings(
        &self,
        account_id: &str,
        settings: SecuritySettings,
        events: &[SecurityEvent],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_session(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Moves the idle deadline; a session deleted meanwhile stays deleted.
    fn touch_session(
        &self,
        id: &str,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn list_sessions(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Deletes a session of this account and logs the event; `false` if there was none.
    fn delete_session(
        &self,
        id: &str,
        account_id: &str,
        event: &SecurityEvent,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn list_security_events(
        &self,
        account_id: &str,
        limit: i32,
    ) -> impl Future<Output = Result<Vec<StoredSecurityEvent>, StoreError>> + Send;

    /// The account a login key points to (two consistent reads).
    fn find_account(
        &self,
        login_key: &str,
    ) -> impl Future<Output = Result<Option<StoredAccount>, StoreError>> + Send;

    /// Sets a new password hash and the next credentials epoch, ends the listed
    /// sessions and logs the event; with a token, consumes it in the same transaction
    /// (`Ok(false)`: the token was refused, or the account changed meanwhile).
    fn replace_password(
        &self,
        change: &PasswordChange<'_>,
        end_sessions: &[String],
        event: &SecurityEvent,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that the session proved presence now, consuming the step-up code's
    /// verification token and logging the event, atomically; `false`: the token was not
    /// a live step-up token for the account's phone, or the session is gone.
    fn prove_presence(
        &self,
        session_id: &str,
        account_id: &str,
        token: &TokenRedemption,
        event: &SecurityEvent,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn replace_security_question(
        &self,
        account_id: &str,
        question: &str,
        answer_hash: &str,
        event: &SecurityEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn change_contact(
        &self,
        account_id: &str,
        change: &ContactChange,
        event: &SecurityEvent,
        now: i64,
    ) -> impl Future<Output = Result<Result<(), Vec<ContactChangeRefusal>>, StoreError>> + Send;

    /// Whether a verification token is live and bound to this destination and purpose;
    /// it stays unspent (a transaction redeems it later).
    fn token_usable(
        &self,
        token: &TokenRedemption,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the account, its logins, its sessions and its security log.
    fn delete_account(
        &self,
        account_id: &str,
        login_keys: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

// ------------------------------------------------------------------ requests

/// Where a request came from, as API Gateway saw it.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: String,
    pub user_agent: String,
}

/// Longest user-agent kept with a session or event.
const MAX_USER_AGENT: usize = 256;

impl Client {
    pub fn new(ip: Option<String>, user_agent: Option<String>) -> Self {
        let mut user_agent = user_agent.unwrap_or_default();
        if user_agent.len() > MAX_USER_AGENT {
            let mut cut = MAX_USER_AGENT;
            while !user_agent.is_char_boundary(cut) {
                cut -= 1;
            }
            user_agent.truncate(cut);
        }
        Self {
            ip: ip.unwrap_or_default(),
            user_agent,
        }
    }
}

pub struct Registration {
    pub last_name: PersonName,
    pub first_name: PersonName,
    pub middle_name: Option<PersonName>,
    pub email: Email,
    pub phone: Phone,
    pub password: Secret<String>,
    pub security_question: String,
    pub security_answer: Secret<String>,
    pub email_verification_token: Secret<String>,
    pub phone_verification_token: Secret<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAccount {
    pub account_id: String,
    pub level: &'static str,
}

pub struct Login {
    pub login: String,
    pub password: Secret<String>,
    pub foreign_computer: bool,
}

pub struct IssuedSession {
    pub id: String,
    pub token: Secret<String>,
    pub expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
}

/// The second step of a two-step login: an SMS code went to the account's phone.
pub struct IssuedChallenge {
    pub token: Secret<String>,
    pub expires_at: OffsetDateTime,
    pub resend_available_at: OffsetDateTime,
}

/// What a right password leads to.
pub enum LoginOutcome {
    Session(IssuedSession),
    CodeRequired(IssuedChallenge),
}

/// The security settings in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EffectiveSettings {
    pub two_step_login: bool,
    pub new_device_alerts: bool,
}

/// Who a valid session token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    pub session_id: String,
    /// When the session last proved its holder present (Unix seconds): its login or a
    /// step-up code. The authorizer passes it on with the account and session ids.
    pub proven_at: i64,
}

impl Principal {
    /// Whether the session proved presence recently enough for a change that a
    /// password alone must not allow.
    pub fn presence(&self, now: OffsetDateTime, window: Duration) -> Presence {
        let age = now.unix_timestamp() - self.proven_at;
        Presence {
            fresh: (0..=secs(window)).contains(&age),
        }
    }
}

/// Whether the caller proved presence within the step-up window: a login or a step-up
/// code (`POST /v1/sessions/current/step-up`) a few minutes ago at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    pub fresh: bool,
}

impl Presence {
    /// `step_up_required` unless presence was proven within the window.
    pub fn require(self) -> Result<(), AppError> {
        if self.fresh {
            Ok(())
        } else {
            Err(AppError::StepUpRequired)
        }
    }
}

/// A step-up code on its way to the account's phone.
pub struct StepUpChallenge {
    pub id: String,
    pub expires_at: OffsetDateTime,
    pub resend_available_at: OffsetDateTime,
}

// ------------------------------------------------------------------ service

pub struct IdentityService<S, N> {
    store: S,
    notifier: N,
    hasher: Hasher,
    limits: SessionLimits,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

const WELCOME_SUBJECT: &str = "Добро пожаловать";
const PASSWORD_CHANGED_SUBJECT: &str = "Пароль изменён";
const CONTACT_CHANGED_SUBJECT: &str = "Контактные данные изменены";
const ACCOUNT_DELETED_SUBJECT: &str = "Учётная запись удалена";
const LOCKED_SUBJECT: &str = "Попытки входа в ваш аккаунт";
const NEW_DEVICE_SUBJECT: &str = "Вход с нового устройства";
const TWO_STEP_DISABLED_SUBJECT: &str = "Вход по SMS-коду отключён";
const STEP_UP_SUBJECT: &str = "Действие подтверждено кодом";

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    pub fn new(store: S, notifier: N, hasher: Hasher, limits: SessionLimits) -> Self {
        Self {
            store,
            notifier,
            hasher,
            limits,
        }
    }

    /// The id of a new session, from its bearer token.
    pub fn session_id(&self, token: &str) -> String {
        self.hasher.credential(Credential::SessionToken, &[token])
    }

    /// A verification token a client hands back, as the key it is stored under. A token
    /// issued before the HMAC key's last rotation is stored under an older version, so
    /// while the keyring holds several, each is tried (current first) by reading the
    /// token; with one version there is nothing to read.
    async fn redemption(
        &self,
        token: &str,
        destination_key: String,
        purpose: &'static str,
        now_s: i64,
    ) -> Result<TokenRedemption, AppError> {
        let keys = verification_token_keys(&self.hasher, token);
        let mut redemption = TokenRedemption {
            token_key: String::new(),
            destination_key,
            purpose,
        };
        if keys.len() > 1 {
            for key in &keys {
                redemption.token_key.clone_from(key);
                if self.store.token_usable(&redemption, now_s).await? {
                    return Ok(redemption);
                }
            }
        }
        // None usable: the current version's key, which the caller's checks refuse.
        redemption.token_key = keys.into_iter().next().unwrap_or_default();
        Ok(redemption)
    }

    // -------------------------------------------------------------- registration

    pub async fn register(
        &self,
        r: Registration,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<RegisteredAccount, AppError> {
        let now_s = now.unix_timestamp();
        let email_key = destination_key(&self.hasher, r.email.as_str());
        let phone_key = destination_key(&self.hasher, r.phone.e164());
        let id = uuid::Uuid::new_v4().to_string();
        let account = NewAccount {
            id: id.clone(),
            last_name: r.last_name.as_str().to_string(),
            first_name: r.first_name.as_str().to_string(),
            middle_name: r.middle_name.map(|m| m.as_str().to_string()),
            email: r.email.as_str().to_string(),
            phone: r.phone.e164().to_string(),
            password_hash: passwords::hash(&r.password)?,
            security_question: r.security_question,
            security_answer_hash: passwords::hash(&Secret::new(
                crate::domain::normalise_security_answer(r.security_answer.expose()),
            ))?,
            level: "simplified",
            created_at: now_s,
        };
        let logins = [
            LoginClaim {
                key: email_key.clone(),
                kind: "email",
            },
            LoginClaim {
                key: phone_key.clone(),
                kind: "phone",
            },
        ];
        let tokens = [
            self.redemption(
                r.email_verification_token.expose(),
                email_key,
                "registration",
                now_s,
            )
            .await?,
            self.redemption(
                r.phone_verification_token.expose(),
                phone_key,
                "registration",
                now_s,
            )
            .await?,
        ];
        let event = self.event(&id, "account_created", client, now_s);
        // A transaction that collided with another one touching the same contact is
        // tried again; the second try sees the winner's login and refuses cleanly.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .store
                .create_account(&account, &logins, &tokens, &event, now_s)
                .await
            {
                Ok(Ok(())) => break,
                Ok(Err(refusals)) => return Err(registration_error(&refusals)),
                Err(StoreError::Conflict) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(account_id = %id, "account registered");
        let welcome = Secret::new(format!(
            "{}, ваш аккаунт создан. Уровень учётной записи: упрощённая. \
             Чтобы получить доступ к большему числу услуг, заполните профиль.",
            account.first_name
        ));
        // The account exists either way; a lost welcome letter is not worth an error.
        if let Err(e) = self
            .notifier
            .send_email(&r.email, WELCOME_SUBJECT, &welcome)
            .await
        {
            tracing::warn!(account_id = %id, error = %e, "welcome e-mail not sent");
        }
        Ok(RegisteredAccount {
            account_id: id,
            level: account.level,
        })
    }

    // -------------------------------------------------------------- login

    /// The login key of what a citizen typed: a phone in any usual form, an e-mail in any
    /// case; anything else still gets a key, so that it is throttled like the rest.
    fn login_key(&self, login: &str) -> String {
        let trimmed = login.trim();
        // A SNILS written in its own groups (`112-233-445 95`) is unmistakable; eleven bare
        // digits that make a Russian mobile number are read as the phone, anything else
        // as a SNILS.
        let snils_shaped = snils_grouping(trimmed);
        if trimmed.contains('@') {
            if let Ok(email) = Email::parse("login", trimmed) {
                return destination_key(&self.hasher, email.as_str());
            }
        } else if let (true, Ok(snils)) = (snils_shaped, Snils::parse("login", trimmed)) {
            return snils_login_key(&self.hasher, snils.as_str());
        } else if let Ok(phone) = Phone::parse("login", trimmed) {
            return destination_key(&self.hasher, phone.e164());
        } else if let Ok(snils) = Snils::parse("login", trimmed) {
            return snils_login_key(&self.hasher, snils.as_str());
        }
        self.hasher
            .identifier(Identifier::UnknownLogin, &[&trimmed.to_lowercase()])
    }

    fn window_start(&self, now: i64) -> i64 {
        let window = secs(self.limits.client_failure_window).max(1);
        now - now.rem_euclid(window)
    }

    /// Checks the login and password. With two-step login on, an SMS code goes to the
    /// account's phone and the session waits for [`Self::complete_two_step`].
    pub async fn login<C: Confirmations + Sync>(
        &self,
        request: Login,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<LoginOutcome, AppError> {
        let now_s = now.unix_timestamp();
        let login_key = self.login_key(&request.login);
        let client_key = self
            .hasher
            .identifier(Identifier::LoginClient, &[&client.ip]);
        let counted = self
            .count_attempt(&login_key, &client_key, true, now_s)
            .await
            .inspect_err(|e| {
                // A locked login, or a client address over its failures.
                if matches!(
                    e,
                    AppError::LoginThrottled { .. } | AppError::LoginClientLimited { .. }
                ) {
                    metrics::emit(Metric::LoginsThrottled);
                }
            })?;

        let account = self
            .store
            .get_account(counted.account_id.as_deref())
            .await?;
        let verified = passwords::verify(
            &request.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        );
        let Some(account) = account.filter(|_| verified) else {
            metrics::emit(Metric::LoginsFailed);
            return Err(self.fail_attempt(&counted, true, client, now_s).await);
        };
        if account.two_step_login {
            // The password is proven; the SMS code has its own attempt limit.
            self.store
                .forgive_attempt(&counted.login_key, counted.client_window())
                .await?;
            return self
                .start_two_step(
                    &account,
                    &login_key,
                    request.foreign_computer,
                    client,
                    now,
                    codes,
                )
                .await
                .map(LoginOutcome::CodeRequired);
        }
        self.open_session(
            &account,
            request.foreign_computer,
            ProvenLogin {
                key: &login_key,
                client: Some(counted.client_window()),
            },
            client,
            now_s,
            None,
        )
        .await
        .map(LoginOutcome::Session)
    }

    async fn start_two_step<C: Confirmations + Sync>(
        &self,
        account: &StoredAccount,
        login_key: &str,
        foreign_computer: bool,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<IssuedChallenge, AppError> {
        let phone = Phone::parse("phone", &account.phone)
            .map_err(|_| AppError::Internal("stored phone unreadable".into()))?;
        let destination = Destination::Phone(phone);
        let destination_key = destination_key(&self.hasher, destination.canonical());
        let sent = codes
            .send_code(
                SendCode {
                    destination,
                    purpose: Purpose::Login,
                    client_ip: client.ip.clone(),
                    deliver: true,
                },
                now,
            )
            .await?;
        let token = crypto::token(CHALLENGE_TOKEN_PREFIX)?;
        let challenge = LoginChallenge {
            key: self
                .hasher
                .credential(Credential::LoginChallenge, &[token.expose()]),
            account_id: account.id.clone(),
            code_id: sent.id,
            destination_key,
            login_key: login_key.to_string(),
            foreign_computer,
            credentials_epoch: account.credentials_epoch,
            expires_at: sent.expires_at.unix_timestamp(),
        };
        self.store.put_challenge(&challenge).await?;
        tracing::info!(account_id = %account.id, "two-step login: code sent");
        Ok(IssuedChallenge {
            token,
            expires_at: sent.expires_at,
            resend_available_at: sent.resend_available_at,
        })
    }

    /// Finishes a two-step login with the SMS code. The challenge is single-use: the
    /// session, the challenge and the code's token change in one transaction.
    pub async fn complete_two_step<C: Confirmations + Sync>(
        &self,
        challenge_token: &Secret<String>,
        code: &str,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<IssuedSession, AppError> {
        let now_s = now.unix_timestamp();
        let token = challenge_token.expose();
        // Characters, as the API's maxLength counts them: a longer token is no challenge.
        if !token.starts_with(CHALLENGE_TOKEN_PREFIX) || token.chars().count() > 128 {
            return Err(AppError::TwoStepChallengeInvalid);
        }
        let mut found = None;
        for key in self
            .hasher
            .credential_lookups(Credential::LoginChallenge, &[token])
        {
            found = self.store.get_challenge(&key).await?;
            if found.is_some() {
                break;
            }
        }
        let challenge = found
            .filter(|c| c.expires_at > now_s)
            .ok_or(AppError::TwoStepChallengeInvalid)?;
        let verified = codes.verify_code(&challenge.code_id, code, now).await?;
        // The session belongs to the password the challenge checked: a password changed
        // meanwhile makes it a session of the old one, refused by the authorizer.
        let account = StoredAccount {
            credentials_epoch: challenge.credentials_epoch,
            ..self
                .store
                .get_account(Some(&challenge.account_id))
                .await?
                .ok_or(AppError::TwoStepChallengeInvalid)?
        };
        let redemption = TokenRedemption {
            token_key: verification_token_key(&self.hasher, verified.token.expose()),
            destination_key: challenge.destination_key.clone(),
            purpose: Purpose::Login.as_str(),
        };
        self.open_session(
            &account,
            challenge.foreign_computer,
            // The password's attempt was given back when the code was sent.
            ProvenLogin {
                key: &challenge.login_key,
                client: None,
            },
            client,
            now_s,
            Some((&challenge.key, &redemption)),
        )
        .await
    }

    /// Creates a session for a proven login; remembers the device and tells the owner
    /// of a new one.
    async fn open_session(
        &self,
        account: &StoredAccount,
        foreign_computer: bool,
        login: ProvenLogin<'_>,
        client: &Client,
        now_s: i64,
        two_step: Option<(&str, &TokenRedemption)>,
    ) -> Result<IssuedSession, AppError> {
        let token = crypto::token(SESSION_TOKEN_PREFIX)?;
        let (idle, max) = if foreign_computer {
            (self.limits.foreign_idle, self.limits.foreign_max)
        } else {
            (self.limits.idle, self.limits.max)
        };
        let session = Session {
            id: self.session_id(token.expose()),
            account_id: account.id.clone(),
            created_at: now_s,
            last_seen_at: now_s,
            idle_secs: secs(idle),
            absolute_expires_at: now_s + secs(max),
            foreign_computer,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            proven_at: now_s,
            credentials_epoch: account.credentials_epoch,
        };
        let device = self
            .hasher
            .identifier(Identifier::Device, &[&account.id, &client.user_agent]);
        let new_device = !account.known_devices.contains(&device);
        let known_devices = new_device.then(|| remember_device(&account.known_devices, device));
        let event = self.event(&account.id, "login_succeeded", client, now_s);
        let write = SessionWrite {
            session: &session,
            login_key: login.key,
            client: login.client,
            event: &event,
            known_devices,
            challenge_key: two_step.map(|(key, _)| key),
            token: two_step.map(|(_, token)| token),
        };
        if !self.store.create_session(&write, now_s).await? {
            return Err(AppError::TwoStepChallengeInvalid);
        }
        tracing::info!(account_id = %account.id, foreign_computer, new_device, "session created");
        // The very first login has nothing to compare with: no alert for it.
        if new_device && account.new_device_alerts && !account.known_devices.is_empty() {
            self.alert_new_device(account, client, now_s).await;
        }
        Ok(IssuedSession {
            id: session.id.clone(),
            token,
            expires_at: at(session.expires_at()),
            absolute_expires_at: at(session.absolute_expires_at),
        })
    }

    async fn alert_new_device(&self, account: &StoredAccount, client: &Client, now_s: i64) {
        let moscow = at(now_s).to_offset(MOSCOW);
        let device = if client.user_agent.is_empty() {
            "неизвестно"
        } else {
            client.user_agent.as_str()
        };
        let text = format!(
            "В вашу учётную запись выполнен вход с нового устройства.\n\
             Время: {:02}.{:02}.{} {:02}:{:02} (МСК)\n\
             IP-адрес: {}\n\
             Устройство: {}\n\
             Если это были не вы, смените пароль и завершите чужие сеансы.",
            moscow.day(),
            u8::from(moscow.month()),
            moscow.year(),
            moscow.hour(),
            moscow.minute(),
            client.ip,
            device,
        );
        self.notify_email(&account.email, NEW_DEVICE_SUBJECT, &text)
            .await;
    }

    /// Counts an attempt at the secret of `login_key` before the secret is checked, and
    /// refuses one over the login's lock or the client's limit (`limit_client`). A race
    /// lost to parallel attempts is read again, so that its answer says how long to wait.
    async fn count_attempt(
        &self,
        login_key: &str,
        client_key: &str,
        limit_client: bool,
        now: i64,
    ) -> Result<CountedAttempt, AppError> {
        let window_start = self.window_start(now);
        let window_end = window_start + secs(self.limits.client_failure_window);
        for _ in 0..ATTEMPT_RACE_RETRIES {
            let state = self
                .store
                .load_login_state(login_key, client_key, window_start)
                .await?;
            if limit_client && state.client_failures >= self.limits.max_client_failures {
                return Err(AppError::LoginClientLimited {
                    retry_after_secs: wait(window_end, now),
                });
            }
            let locked_until = self.locked_until(&state.failures);
            if locked_until > now {
                return Err(AppError::LoginThrottled {
                    retry_after_secs: wait(locked_until, now),
                });
            }
            let attempt = Attempt {
                login_key,
                max_failures: self.limits.max_failures,
                seen_failures: state.failures.count,
                client: ClientWindow {
                    key: client_key,
                    start: window_start,
                    end: window_end,
                },
                client_limit: limit_client.then_some(self.limits.max_client_failures),
            };
            match self.store.count_attempt(&attempt, now).await? {
                AttemptCount::Counted { failures } => {
                    return Ok(CountedAttempt {
                        login_key: login_key.to_string(),
                        client_key: client_key.to_string(),
                        window_start,
                        window_end,
                        failures,
                        account_id: state.account_id,
                    })
                }
                AttemptCount::ClientLimited => {
                    return Err(AppError::LoginClientLimited {
                        retry_after_secs: wait(window_end, now),
                    })
                }
                // Others counted meanwhile: the next read tells the lock they set.
                AttemptCount::LoginLimited => continue,
            }
        }
        Err(AppError::LoginThrottled {
            retry_after_secs: wait(now + secs(self.limits.lock_base), now),
        })
    }

    /// A counted attempt whose secret was wrong: logs it for the account, if any, and
    /// warns the owner when it is the one that locked the login.
    async fn fail_attempt(
        &self,
        counted: &CountedAttempt,
        warn: bool,
        client: &Client,
        now: i64,
    ) -> AppError {
        let Some(account_id) = counted.account_id.as_deref() else {
            return AppError::InvalidCredentials;
        };
        let event = self.event(account_id, "login_failed", client, now);
        if let Err(e) = self.store.put_event(&event).await {
            return e.into();
        }
        if warn && counted.failures == self.limits.max_failures {
            self.warn_owner(account_id).await;
        }
        AppError::InvalidCredentials
    }

    /// The n-th failure past the limit locks the login for base·2ⁿ⁻¹ after it, capped.
    fn locked_until(&self, failures: &LoginFailures) -> i64 {
        match failures.count.checked_sub(self.limits.max_failures) {
            Some(over) => {
                let delay = secs(self.limits.lock_base)
                    .saturating_mul(1_i64 << over.min(20))
                    .min(secs(self.limits.lock_max));
                failures.last_failure_at.saturating_add(delay)
            }
            None => 0,
        }
    }

    /// Tells the owner that their login is now locked after failed attempts.
    async fn warn_owner(&self, account_id: &str) {
        let account = match self.store.get_account(Some(account_id)).await {
            Ok(Some(a)) => a,
            _ => return,
        };
        let Ok(email) = Email::parse("email", &account.email) else {
            return;
        };
        let text = Secret::new(
            "Несколько раз подряд в ваш аккаунт пытались войти с неверным паролем, \
             и вход временно ограничен. Если это были не вы, смените пароль."
                .to_string(),
        );
        match self
            .notifier
            .send_email(&email, LOCKED_SUBJECT, &text)
            .await
        {
            Ok(()) => security_notice_sent(NoticeChannel::Email),
            Err(DeliveryError(e)) => {
                tracing::warn!(account_id, error = %e, "lock warning not sent")
            }
        }
    }

    // -------------------------------------------------------------- sessions

    /// Checks a bearer token; the authorizer's one question.
    pub async fn authorize(&self, token: &str, now: OffsetDateTime) -> Result<Principal, AppError> {
        let now_s = now.unix_timestamp();
        if !token.starts_with(SESSION_TOKEN_PREFIX) || token.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        // A session opened before the HMAC key's last rotation is stored under an older
        // version: each version present is tried, the current one first.
        let mut found = None;
        for id in self
            .hasher
            .credential_lookups(Credential::SessionToken, &[token])
        {
            if let Some(session) = self.store.get_session(&id).await? {
                found = Some((id, session));
                break;
            }
        }
        let (id, session) = found.ok_or(AppError::Unauthenticated)?;
        if session.expires_at() <= now_s {
            return Err(AppError::Unauthenticated);
        }
        // A session lives only as long as its account and the password it was opened
        // with: whatever the session list missed (a login finishing during a password
        // change, recovery or deletion) ends here.
        let account = self
            .store
            .get_account(Some(&session.account_id))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if account.credentials_epoch != session.credentials_epoch {
            return Err(AppError::Unauthenticated);
        }
        // Moving the idle deadline on every request would be a write per request; a
        // fraction of the idle time is precision enough.
        let step = (session.idle_secs / 4).clamp(1, 60);
        if now_s - session.last_seen_at >= step {
            let moved = Session {
                last_seen_at: now_s,
                ..session.clone()
            };
            self.store
                .touch_session(&id, now_s, moved.expires_at())
                .await?;
        }
        Ok(Principal {
            account_id: session.account_id,
            session_id: id,
            proven_at: session.proven_at,
        })
    }

    pub async fn sessions(
        &self,
        account_id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, AppError> {
        let now_s = now.unix_timestamp();
        let mut sessions: Vec<Session> = self
            .store
            .list_sessions(account_id)
            .await?
            .into_iter()
            .filter(|s| s.expires_at() > now_s)
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
        Ok(sessions)
    }

    pub async fn revoke(
        &self,
        principal: &Principal,
        session_id: &str,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let kind = if session_id == principal.session_id {
            "logout"
        } else {
            "session_revoked"
        };
        let event = self.event(&principal.account_id, kind, client, now.unix_timestamp());
        if self
            .store
            .delete_session(session_id, &principal.account_id, &event)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::SessionNotFound)
        }
    }

    pub async fn security_events(
        &self,
        account_id: &str,
    ) -> Result<Vec<StoredSecurityEvent>, AppError> {
        Ok(self.store.list_security_events(account_id, 100).await?)
    }

    // -------------------------------------------------------------- the account

    pub async fn account(&self, principal: &Principal) -> Result<StoredAccount, AppError> {
        self.store
            .get_account(Some(&principal.account_id))
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    /// Checks the password of a signed-in citizen before a sensitive change. Failures
    /// count towards the same lock as logins with the account's e-mail.
    async fn confirm_password(
        &self,
        account: &StoredAccount,
        password: &Secret<String>,
        client: &Client,
        now: i64,
    ) -> Result<(), AppError> {
        let login_key = destination_key(&self.hasher, &account.email);
        let client_key = self
            .hasher
            .identifier(Identifier::LoginClient, &[&client.ip]);
        let counted = self
            .count_attempt(&login_key, &client_key, false, now)
            .await?;
        if passwords::verify(password, Some(&account.password_hash)) {
            self.store
                .forgive_attempt(&counted.login_key, counted.client_window())
                .await?;
            return Ok(());
        }
        match self.fail_attempt(&counted, true, client, now).await {
            AppError::InvalidCredentials => Err(AppError::WrongPassword),
            other => Err(other),
        }
    }

    async fn notify_email(&self, to: &str, subject: &str, text: &str) {
        let Ok(email) = Email::parse("email", to) else {
            return;
        };
        match self
            .notifier
            .send_email(&email, subject, &Secret::new(text.to_string()))
            .await
        {
            Ok(()) => security_notice_sent(NoticeChannel::Email),
            Err(e) => tracing::warn!(error = %e, "notification e-mail not sent"),
        }
    }

    /// Sessions of the account other than `keep`.
    async fn other_sessions(
        &self,
        account_id: &str,
        keep: Option<&str>,
    ) -> Result<Vec<String>, AppError> {
        Ok(self
            .store
            .list_sessions(account_id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .filter(|id| Some(id.as_str()) != keep)
            .collect())
    }

    pub async fn change_password(
        &self,
        principal: &Principal,
        old_password: &Secret<String>,
        new_password: Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        let account = self.account(principal).await?;
        self.confirm_password(&account, old_password, client, now_s)
            .await?;
        crate::domain::check_new_password(
            "new_password",
            &new_password,
            &[&account.email, &account.phone],
        )
        .map_err(|e| AppError::Validation(vec![e]))?;
        let hash = passwords::hash(&new_password)?;
        // Every other session ends: whoever knew the old password is out.
        let others = self
            .other_sessions(&account.id, Some(&principal.session_id))
            .await?;
        let event = self.event(&account.id, "password_changed", client, now_s);
        let change = PasswordChange {
            account_id: &account.id,
            password_hash: &hash,
            credentials_epoch: account.credentials_epoch,
            keep_session: Some(&principal.session_id),
            token: None,
        };
        if !self
            .store
            .replace_password(&change, &others, &event, now_s)
            .await?
        {
            // The account went away meanwhile (deleted in another session).
            return Err(AppError::Unauthenticated);
        }
        self.notify_email(
            &account.email,
            PASSWORD_CHANGED_SUBJECT,
            "Пароль от вашей учётной записи изменён, другие сеансы завершены. \
             Если это были не вы, восстановите доступ.",
        )
        .await;
        Ok(())
    }

    pub async fn change_security_question(
        &self,
        principal: &Principal,
        password: &Secret<String>,
        question: &str,
        answer: &Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        let account = self.account(principal).await?;
        self.confirm_password(&account, password, client, now_s)
            .await?;
        let answer_hash = passwords::hash(&Secret::new(crate::domain::normalise_security_answer(
            answer.expose(),
        )))?;
        let event = self.event(&account.id, "security_question_changed", client, now_s);
        self.store
            .replace_security_question(&account.id, question, &answer_hash, &event)
            .await?;
        Ok(())
    }

    /// Replaces the e-mail or phone with one confirmed by a `contact_change` code, and
    /// tells the old address.
    pub async fn change_contact(
        &self,
        principal: &Principal,
        password: &Secret<String>,
        new_contact: Destination,
        token: &Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        // Before the password: without a fresh proof of presence nothing is checked,
        // so the route cannot be used to try passwords either.
        principal
            .presence(now, self.limits.step_up_window)
            .require()?;
        let account = self.account(principal).await?;
        self.confirm_password(&account, password, client, now_s)
            .await?;
        let (kind, old_value) = match &new_contact {
            Destination::Email(_) => (ContactKind::Email, account.email.clone()),
            Destination::Phone(_) => (ContactKind::Phone, account.phone.clone()),
        };
        let new_value = new_contact.canonical().to_string();
        if new_value == old_value {
            return Err(AppError::Validation(vec![FieldError::new(
                kind.as_str(),
                "unchanged",
                "Новое значение совпадает с текущим",
            )]));
        }
        let new_key = destination_key(&self.hasher, &new_value);
        let change = ContactChange {
            kind,
            new_value: new_value.clone(),
            new_key: new_key.clone(),
            old_key: destination_key(&self.hasher, &old_value),
            token: self
                .redemption(token.expose(), new_key, "contact_change", now_s)
                .await?,
        };
        let event_kind = match kind {
            ContactKind::Email => "email_changed",
            ContactKind::Phone => "phone_changed",
        };
        let event = self.event(&account.id, event_kind, client, now_s);
        // The proof first, on its own: whatever the transaction below reports when both
        // its conditions fail, a refused token must answer the same for a contact that
        // is registered as for one that is not.
        if !self.store.token_usable(&change.token, now_s).await? {
            return Err(token_refused());
        }
        if let Err(refusals) = self
            .store
            .change_contact(&account.id, &change, &event, now_s)
            .await?
        {
            // The proof first: only who holds the new contact (a live code for it) may
            // learn that another account has it, as at registration.
            return Err(if refusals.contains(&ContactChangeRefusal::TokenInvalid) {
                token_refused()
            } else {
                AppError::ContactTaken(vec![kind.as_str().to_string()])
            });
        }
        // The old address hears of it: if the change was not the owner's, they know.
        match kind {
            ContactKind::Email => {
                self.notify_email(
                    &old_value,
                    CONTACT_CHANGED_SUBJECT,
                    "Адрес электронной почты вашей учётной записи изменён. \
                     Если это были не вы, восстановите доступ.",
                )
                .await
            }
            ContactKind::Phone => {
                if let Ok(phone) = Phone::parse("phone", &old_value) {
                    let text = Secret::new(
                        "Номер телефона вашей учётной записи изменён. \
                         Если это были не вы, восстановите доступ."
                            .to_string(),
                    );
                    match self.notifier.send_sms(&phone, &text).await {
                        Ok(()) => security_notice_sent(NoticeChannel::Sms),
                        Err(e) => tracing::warn!(error = %e, "contact change SMS not sent"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the account and everything kept about it; the citizen may leave.
    pub async fn delete_account(
        &self,
        principal: &Principal,
        password: &Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        let account = self.account(principal).await?;
        self.confirm_password(&account, password, client, now_s)
            .await?;
        let mut logins = vec![
            destination_key(&self.hasher, &account.email),
            destination_key(&self.hasher, &account.phone),
        ];
        logins.extend(account.snils_login.clone());
        self.store.delete_account(&account.id, &logins).await?;
        tracing::info!(account_id = %account.id, "account deleted");
        self.notify_email(
            &account.email,
            ACCOUNT_DELETED_SUBJECT,
            "Ваша учётная запись и все связанные с ней данные удалены.",
        )
        .await;
        Ok(())
    }

    /// Turns two-step login and new-device alerts on or off (the password confirms it).
    pub async fn change_security_settings(
        &self,
        principal: &Principal,
        password: &Secret<String>,
        settings: SecuritySettings,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<EffectiveSettings, AppError> {
        let now_s = now.unix_timestamp();
        let account = self.account(principal).await?;
        // Turning two-step login off weakens the account: a password alone must not.
        let weakening = settings.two_step_login == Some(false) && account.two_step_login;
        if weakening {
            principal
                .presence(now, self.limits.step_up_window)
                .require()?;
        }
        self.confirm_password(&account, password, client, now_s)
            .await?;
        let mut events = Vec::new();
        match settings.two_step_login {
            Some(true) if !account.two_step_login => {
                events.push(self.event(&account.id, "two_step_enabled", client, now_s))
            }
            Some(false) if account.two_step_login => {
                events.push(self.event(&account.id, "two_step_disabled", client, now_s))
            }
            _ => {}
        }
        if settings
            .new_device_alerts
            .is_some_and(|on| on != account.new_device_alerts)
        {
            events.push(self.event(&account.id, "new_device_alerts_changed", client, now_s));
        }
        if !events.is_empty() {
            self.store
                .update_security_settings(&account.id, settings, &events)
                .await?;
        }
        if weakening {
            self.notify_email(
                &account.email,
                TWO_STEP_DISABLED_SUBJECT,
                "Вход по SMS-коду для вашей учётной записи отключён. \
                 Если это были не вы, восстановите доступ и включите его снова.",
            )
            .await;
        }
        Ok(EffectiveSettings {
            two_step_login: settings.two_step_login.unwrap_or(account.two_step_login),
            new_device_alerts: settings
                .new_device_alerts
                .unwrap_or(account.new_device_alerts),
        })
    }

    // -------------------------------------------------------------- step-up

    /// Sends a step-up code to the account's current phone: the fresh proof of
    /// presence that turning two-step login off, changing a contact, saving a payment
    /// method or widening an autopay need once the login is older than the window.
    pub async fn start_step_up<C: Confirmations + Sync>(
        &self,
        principal: &Principal,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<StepUpChallenge, AppError> {
        let account = self.account(principal).await?;
        let phone = Phone::parse("phone", &account.phone)
            .map_err(|_| AppError::Internal("stored phone unreadable".into()))?;
        let sent = codes
            .send_code(
                SendCode {
                    destination: Destination::Phone(phone),
                    purpose: Purpose::StepUp,
                    client_ip: client.ip.clone(),
                    deliver: true,
                },
                now,
            )
            .await?;
        tracing::info!(account_id = %account.id, "step-up code sent");
        Ok(StepUpChallenge {
            id: sent.id,
            expires_at: sent.expires_at,
            resend_available_at: sent.resend_available_at,
        })
    }

    /// Checks a step-up code (its wrong answers count on the code like any other's)
    /// and marks the session as having proved presence now. Only a step-up code sent to
    /// the account's current phone will do: the token is redeemed against that phone
    /// and purpose, in one transaction with the session's update and the event.
    pub async fn complete_step_up<C: Confirmations + Sync>(
        &self,
        principal: &Principal,
        code_id: &str,
        code: &str,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<OffsetDateTime, AppError> {
        let now_s = now.unix_timestamp();
        let account = self.account(principal).await?;
        let verified = codes.verify_code(code_id, code, now).await?;
        let redemption = TokenRedemption {
            token_key: verification_token_key(&self.hasher, verified.token.expose()),
            destination_key: destination_key(&self.hasher, &account.phone),
            purpose: Purpose::StepUp.as_str(),
        };
        let event = self.event(&account.id, "step_up_completed", client, now_s);
        if !self
            .store
            .prove_presence(
                &principal.session_id,
                &account.id,
                &redemption,
                &event,
                now_s,
            )
            .await?
        {
            // A code of another purpose or for another phone: as if there were none.
            return Err(AppError::CodeNotFound);
        }
        tracing::info!(account_id = %account.id, "step-up completed");
        self.notify_email(
            &account.email,
            STEP_UP_SUBJECT,
            "Кодом из SMS на ваш телефон подтверждено важное действие в учётной записи \
             (отключение входа по SMS-коду, смена телефона или почты, сохранение способа \
             оплаты или автоплатежа). Если это были не вы, смените пароль и завершите \
             чужие сеансы.",
        )
        .await;
        Ok(at(now_s + secs(self.limits.step_up_window)))
    }

    // -------------------------------------------------------------- recovery

    /// Where a recovery code for `login` goes: the account's confirmed contact of the
    /// same kind as the login. `None` when no account answers to it.
    pub async fn recovery_destination(&self, login: &str) -> Result<Option<Destination>, AppError> {
        let trimmed = login.trim();
        let account = self.store.find_account(&self.login_key(trimmed)).await?;
        Ok(account.and_then(|account| recovery_contact(&account, trimmed)))
    }

    /// The destination a recovery code for `login` is recorded against when no account
    /// answers to it: the login itself for a phone or e-mail, and for a SNILS a stand-in
    /// number derived from it, so that limits and the code behave as for a real account
    /// while nothing is sent.
    pub fn recovery_stand_in(&self, login: &str) -> Option<Destination> {
        let trimmed = login.trim();
        if trimmed.contains('@') {
            return Email::parse("login", trimmed).ok().map(Destination::Email);
        }
        if let Ok(phone) = Phone::parse("login", trimmed) {
            return Some(Destination::Phone(phone));
        }
        let snils = Snils::parse("login", trimmed).ok()?;
        let digest = self
            .hasher
            .identifier(Identifier::SnilsStandIn, &[snils.as_str()]);
        let digits: String = digest
            .bytes()
            .map(|b| char::from(b'0' + b % 10))
            .take(9)
            .collect();
        Phone::parse("login", &format!("+79{digits}"))
            .ok()
            .map(Destination::Phone)
    }

    /// Sets a new password for the account behind `login`, proven by a recovery token for
    /// its contact and the security answer. Every session ends.
    pub async fn complete_recovery(
        &self,
        login: &str,
        token: &Secret<String>,
        answer: &Secret<String>,
        new_password: Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        let trimmed = login.trim();
        let account = self
            .store
            .find_account(&self.login_key(trimmed))
            .await?
            .ok_or_else(token_refused)?;
        let destination = recovery_contact(&account, trimmed).ok_or_else(token_refused)?;
        let redemption = self
            .redemption(
                token.expose(),
                destination_key(&self.hasher, destination.canonical()),
                "recovery",
                now_s,
            )
            .await?;
        // The code comes first: without it nobody gets to try security answers, and an
        // unknown login and a missing code look the same.
        if !self.store.token_usable(&redemption, now_s).await? {
            return Err(token_refused());
        }

        // Wrong answers are limited like passwords, on a counter of their own.
        let answer_key = self
            .hasher
            .identifier(Identifier::SecurityAnswer, &[&account.id]);
        let client_key = self
            .hasher
            .identifier(Identifier::LoginClient, &[&client.ip]);
        let counted = self
            .count_attempt(&answer_key, &client_key, false, now_s)
            .await?;
        let normalised = Secret::new(crate::domain::normalise_security_answer(answer.expose()));
        if !passwords::verify(&normalised, Some(&account.security_answer_hash)) {
            // No event and no owner e-mail for answers: the counter names no account.
            return Err(
                match self.fail_attempt(&counted, false, client, now_s).await {
                    AppError::InvalidCredentials => AppError::Validation(vec![FieldError::new(
                        "security_answer",
                        "wrong_security_answer",
                        "Неверный ответ на контрольный вопрос",
                    )]),
                    other => other,
                },
            );
        }
        self.store
            .forgive_attempt(&counted.login_key, counted.client_window())
            .await?;
        crate::domain::check_new_password(
            "new_password",
            &new_password,
            &[&account.email, &account.phone],
        )
        .map_err(|e| AppError::Validation(vec![e]))?;
        let hash = passwords::hash(&new_password)?;
        let sessions = self.other_sessions(&account.id, None).await?;
        let event = self.event(&account.id, "password_recovered", client, now_s);
        let change = PasswordChange {
            account_id: &account.id,
            password_hash: &hash,
            credentials_epoch: account.credentials_epoch,
            keep_session: None,
            token: Some(&redemption),
        };
        if !self
            .store
            .replace_password(&change, &sessions, &event, now_s)
            .await?
        {
            return Err(token_refused());
        }
        self.notify_email(
            &account.email,
            PASSWORD_CHANGED_SUBJECT,
            "Пароль от вашей учётной записи изменён через восстановление доступа, \
             все сеансы завершены. Если это были не вы, обратитесь в поддержку.",
        )
        .await;
        Ok(())
    }

    fn event(
        &self,
        account_id: &str,
        kind: &'static str,
        client: &Client,
        now: i64,
    ) -> SecurityEvent {
        SecurityEvent {
            account_id: account_id.to_string(),
            kind,
            at: now,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        }
    }
}

fn token_refused() -> AppError {
    AppError::Validation(vec![FieldError::new(
        "verification_token",
        "verification_token_invalid",
        "Подтверждение недействительно или истекло. Запросите код ещё раз",
    )])
}

/// The contact a recovery for `login` goes to: the e-mail for an e-mail login, the phone
/// for anything else.
fn recovery_contact(account: &StoredAccount, login: &str) -> Option<Destination> {
    if login.contains('@') {
        Email::parse("email", &account.email)
            .ok()
            .map(Destination::Email)
    } else {
        Phone::parse("phone", &account.phone)
            .ok()
            .map(Destination::Phone)
    }
}

/// Whether `login` is written in the groups of a SNILS: `XXX-XXX-XXX YY` or
/// `XXX-XXX-XXX-YY` (spaces anywhere), which no usual way of writing a phone matches.
fn snils_grouping(login: &str) -> bool {
    let compact: String = login.chars().filter(|c| !c.is_whitespace()).collect();
    let groups: Vec<usize> = compact.split('-').map(str::len).collect();
    compact.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        && (groups == [3, 3, 5] || groups == [3, 3, 3, 2])
}

/// The known devices with `device` added last, the oldest dropped beyond the limit.
fn remember_device(known: &[String], device: String) -> Vec<String> {
    let mut devices: Vec<String> = known.to_vec();
    devices.push(device);
    let excess = devices.len().saturating_sub(MAX_KNOWN_DEVICES);
    devices.drain(..excess);
    devices
}

fn wait(until: i64, now: i64) -> u64 {
    u64::try_from(until - now).unwrap_or(0).max(1)
}

/// Maps refusals of the registration transaction to one answer: a taken contact wins
/// (409, pointing to recovery), otherwise the tokens are at fault (422).
/// Why a sign-up was refused. A refused token wins over a taken contact: only someone who
/// just proved they hold a phone or address learns that it is registered, so the route
/// cannot be used to find out whose contacts have accounts.
fn registration_error(refusals: &[RegistrationRefusal]) -> AppError {
    const FIELDS: [&str; 2] = ["email", "phone"];
    let errors: Vec<FieldError> = refusals
        .iter()
        .filter_map(|r| match r {
            RegistrationRefusal::TokenInvalid(i) => FIELDS.get(*i).map(|f| {
                FieldError::new(
                    &format!("{f}_verification_token"),
                    "verification_token_invalid",
                    "Подтверждение недействительно или истекло. Запросите код ещё раз",
                )
            }),
            _ => None,
        })
        .collect();
    if !errors.is_empty() {
        return AppError::Validation(errors);
    }
    let taken: Vec<String> = refusals
        .iter()
        .filter_map(|r| match r {
            RegistrationRefusal::LoginTaken(i) => FIELDS.get(*i).map(|f| f.to_string()),
            _ => None,
        })
        .collect();
    if taken.is_empty() {
        AppError::StoreUnavailable("registration refused for no stated reason".into())
    } else {
        AppError::ContactTaken(taken)
    }
}

/// Counts an alert to the account's owner (new device, locked login, changed password,
/// contact or settings, deletion, step-up) that SES or SNS took.
fn security_notice_sent(channel: NoticeChannel) {
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::Security,
        channel,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_errors_win_over_taken_contacts() {
        let err = registration_error(&[
            RegistrationRefusal::TokenInvalid(0),
            RegistrationRefusal::LoginTaken(1),
        ]);
        let AppError::Validation(errors) = err else {
            panic!("expected validation error")
        };
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "/email_verification_token");
        let err = registration_error(&[RegistrationRefusal::LoginTaken(1)]);
        assert!(matches!(err, AppError::ContactTaken(ref f) if f == &["phone"]));
    }

    #[test]
    fn presence_is_fresh_within_the_window_only() {
        let now = at(1_800_000_000);
        let principal = |proven_at| Principal {
            account_id: "a".into(),
            session_id: "s".into(),
            proven_at,
        };
        let window = Duration::from_secs(300);
        assert!(principal(1_800_000_000).presence(now, window).fresh);
        assert!(principal(1_800_000_000 - 300).presence(now, window).fresh);
        assert!(!principal(1_800_000_000 - 301).presence(now, window).fresh);
        // A proof from the future (a clock gone wrong) proves nothing, nor does none.
        assert!(!principal(1_800_000_060).presence(now, window).fresh);
        assert!(!principal(0).presence(now, window).fresh);
        assert!(matches!(
            principal(0).presence(now, window).require(),
            Err(AppError::StepUpRequired)
        ));
    }

    #[test]
    fn user_agent_is_cut_on_a_char_boundary() {
        let c = Client::new(None, Some("ё".repeat(200)));
        assert!(c.user_agent.len() <= MAX_USER_AGENT);
        assert!(c.user_agent.chars().all(|ch| ch == 'ё'));
    }

    #[test]
    fn snils_grouping_is_told_from_phones() {
        assert!(snils_grouping("112-233-445 95"));
        assert!(snils_grouping("112-233-445-95"));
        assert!(!snils_grouping("8 931 870-29-50"));
        assert!(!snils_grouping("+7 (931) 870-29-50"));
        assert!(!snils_grouping("11223344595"));
    }

    #[test]
    fn known_devices_keep_the_most_recent() {
        let known: Vec<String> = (0..MAX_KNOWN_DEVICES).map(|i| i.to_string()).collect();
        let devices = remember_device(&known, "new".into());
        assert_eq!(devices.len(), MAX_KNOWN_DEVICES);
        assert_eq!(devices.first().map(String::as_str), Some("1"));
        assert_eq!(devices.last().map(String::as_str), Some("new"));
        assert_eq!(remember_device(&[], "a".into()), vec!["a".to_string()]);
    }
}
