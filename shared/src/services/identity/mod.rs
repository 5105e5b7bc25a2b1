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

use std::time::Duration;

use time::OffsetDateTime;

use crate::config::SessionLimits;
use crate::crypto::{self, Credential, Hasher, Identifier};
use crate::domain::{
    AccountId, AccountLevel, CodeId, CredentialStrength, Destination, Email, PersonName, Phone,
    Purpose, SessionId, Snils,
};
use crate::error::{AppError, FieldError};
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind};
use crate::passwords;
use crate::redact::Secret;
use crate::services::codes::{Confirmations, Notifier, SendCode};
use crate::services::inbox::{self, Delivery, InboxStore, Message, MessageCategory};
use crate::services::{
    destination_key, verification_token_key, verification_token_keys, StoreError, MOSCOW,
};
use crate::services::{secs, snils_login_key};
use crate::validation::invalid_field;

mod account;
pub mod factors;
mod passkeys;
mod second_factors;
mod sessions;
mod sign_in;
mod store;
mod temporary_password;
pub use passkeys::*;
pub use second_factors::*;
pub use sessions::Authorized;
pub use store::IdentityStore;

/// What else an account leaves when it is deleted (its organisations): asked once the
/// password is confirmed, before anything is deleted; a refusal keeps the account whole.
#[trait_variant::make(Send)]
pub trait Departure {
    async fn leave(&self, account: &AccountId, now: i64) -> Result<(), AppError>;
}
/// Prefix of session tokens (see [`crate::redact::TOKEN_PREFIXES`]).
pub const SESSION_TOKEN_PREFIX: &str = "st_";

/// Prefix of two-step login challenge tokens (see [`crate::redact::TOKEN_PREFIXES`]).
pub const CHALLENGE_TOKEN_PREFIX: &str = "lc_";
/// Devices remembered per account for new-device alerts; the oldest is forgotten first.
pub const MAX_KNOWN_DEVICES: usize = 20;

/// How long an attempt waits, at most, for attempts still being checked to be decided
/// when they alone fill the login's limit, or while it loses races to count itself;
/// well inside the functions' timeout.
const PENDING_WAIT: Duration = Duration::from_secs(3);
/// How often a waiting attempt reads the login's state again.
const PENDING_POLL: Duration = Duration::from_millis(100);
/// Attempts still pending this long after the last one was counted are taken for
/// failures: their check ended without a word (a function past its timeout, a lost
/// write). Longer than the functions' timeout (10 s).
const PENDING_LIFETIME_SECS: i64 = 15;

/// How long security events are kept.
pub const SECURITY_EVENT_RETENTION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Failure counters of a login are forgotten this long after the last failure.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(24 * 3600);

// ------------------------------------------------------------------ records

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub email: String,
    pub phone: String,
    pub password_hash: String,
    pub security_question: String,
    pub security_answer_hash: String,
    pub level: AccountLevel,
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

/// A registration to write in one transaction: the account, the contacts it claims as
/// logins, the verification tokens that prove them, and the event that logs it.
#[derive(Debug)]
pub struct AccountCreation<'a> {
    pub account: &'a NewAccount,
    pub logins: &'a [LoginClaim],
    pub tokens: &'a [TokenRedemption],
    pub event: &'a SecurityEvent,
}

/// Why a registration transaction was refused; several can hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationRefusal {
    LoginTaken(usize),
    TokenInvalid(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAccount {
    pub id: AccountId,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub email: String,
    pub phone: String,
    pub password_hash: String,
    pub security_question: String,
    pub security_answer_hash: String,
    pub level: AccountLevel,
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
    /// The phone is a second factor of login (SMS codes); on unless the owner removed it.
    pub sms_factor: bool,
    /// Second factors that keep two-step login possible: the phone while `sms_factor`,
    /// each confirmed authentication app and each passkey (backup codes are a fallback,
    /// not counted).
    pub factor_count: u32,
    /// When the password was last recovered (not changed), if ever.
    pub recovered_at: Option<i64>,
    /// When a second factor was last added or replaced (a phone, an app, a passkey,
    /// backup codes, the phone back as a factor), if ever: a factor that new does not
    /// yet make a session strong for the access matrix (`Authorized::standing`).
    pub factors_changed_at: Option<i64>,
    /// The password is a one-time password given on paper at a service centre: the
    /// first login must replace it, before this time (Unix seconds).
    pub password_change_due: Option<i64>,
}

/// A login whose password was right, waiting for the SMS code of two-step login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginChallenge {
    /// Keyed hash of the challenge token handed to the client.
    pub key: String,
    pub account_id: AccountId,
    /// What the second step waits for.
    pub step: ChallengeStep,
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
    /// What a two-step login consumes: its challenge, and the SMS code's verification
    /// token or the app's time step or the backup code.
    pub challenge_key: Option<&'a str>,
    pub token: Option<&'a TokenRedemption>,
    pub factor_use: Option<&'a FactorUse>,
    /// The passkey ceremony a passwordless login spends.
    pub ceremony_key: Option<&'a str>,
}

/// What proves the second step of a login: its challenge, consumed with the SMS code's
/// verification token or what an app's code or a backup code uses up.
#[derive(Debug, Clone, Copy)]
struct TwoStepProof<'a> {
    /// The challenge of a two-step login (none for a passwordless one).
    challenge_key: Option<&'a str>,
    /// The ceremony of a passwordless login.
    ceremony_key: Option<&'a str>,
    token: Option<&'a TokenRedemption>,
    factor_use: Option<&'a FactorUse>,
    /// Whether the step proved a second factor (not so the change of a paper password).
    second_factor: bool,
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
/// updated, the confirming token consumed and the event logged, all at once.
#[derive(Debug, Clone)]
pub struct ContactChange {
    pub account_id: AccountId,
    pub kind: ContactKind,
    pub new_value: String,
    pub new_key: String,
    /// The login of the contact replaced; `None` when the account had none (registered
    /// at a service centre), and then the account must still have none.
    pub old_key: Option<String>,
    pub token: TokenRedemption,
    pub event: SecurityEvent,
}

/// Why a contact change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactChangeRefusal {
    Taken,
    TokenInvalid,
}

/// Consecutive failed logins, counted atomically by the store; the lock is derived from
/// them, so concurrent failures cannot overwrite each other's count. Every attempt is
/// counted before its secret is checked, as pending; a wrong secret leaves it counted as
/// a failure and no longer pending, a right secret takes it back (clears the count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginFailures {
    /// Attempts counted since the last right secret: failures and pending ones.
    pub count: u32,
    /// When the last attempt was counted.
    pub last_failure_at: i64,
    /// Of `count`, the attempts whose secret is still being checked.
    pub pending: u32,
}

impl LoginFailures {
    /// The attempts that failed: `count` less those still pending. Pending attempts
    /// older than [`PENDING_LIFETIME_SECS`] count as failed.
    pub fn failed(&self, now: i64) -> u32 {
        if now - self.last_failure_at > PENDING_LIFETIME_SECS {
            self.count
        } else {
            self.count.saturating_sub(self.pending)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    pub account_id: AccountId,
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
    pub id: SessionId,
    pub account_id: AccountId,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_secs: i64,
    pub absolute_expires_at: i64,
    pub foreign_computer: bool,
    pub ip: String,
    pub user_agent: String,
    /// When the session last proved its holder present: its login, or a step-up code.
    pub proven_at: i64,
    /// When the session last proved it with a second factor (a two-step login or a
    /// step-up code), not with the password alone.
    pub factor_proven_at: Option<i64>,
    /// The account's credentials epoch the session was opened under.
    pub credentials_epoch: u64,
}

/// A new password to write, with what else changes along with it.
#[derive(Debug, Clone)]
pub struct PasswordChange<'a> {
    pub account_id: &'a AccountId,
    pub password_hash: &'a str,
    /// The credentials epoch the change read; the write moves it to the next one.
    pub credentials_epoch: u64,
    /// The session that stays (the one that changed the password), restamped.
    pub keep_session: Option<&'a SessionId>,
    /// A recovery's verification token, consumed in the same transaction.
    pub token: Option<&'a TokenRedemption>,
    /// The sessions that end with the old password.
    pub end_sessions: &'a [SessionId],
    pub event: &'a SecurityEvent,
}

/// A new security question and the hash of its answer, with the event that logs it.
#[derive(Debug)]
pub struct QuestionChange<'a> {
    pub account_id: &'a AccountId,
    pub question: &'a str,
    pub answer_hash: &'a str,
    pub event: &'a SecurityEvent,
}

impl Session {
    /// When the session ends if nothing more happens.
    pub fn expires_at(&self) -> i64 {
        (self.last_seen_at + self.idle_secs).min(self.absolute_expires_at)
    }
}

/// A step-up to record: the session that proved presence (the principal's), the step-up
/// code's verification token it consumes, and the event that logs it.
#[derive(Debug)]
pub struct PresenceProof<'a> {
    pub principal: &'a Principal,
    pub token: &'a TokenRedemption,
    pub event: &'a SecurityEvent,
}

/// What a login attempt found, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct LoginState {
    pub account_id: Option<AccountId>,
    pub failures: LoginFailures,
    pub client_failures: u32,
    /// The client's failures in the window before the current one.
    pub previous_client_failures: u32,
}

/// A client address's attempts in one fixed window. The limit slides: the window
/// before counts for the part of it still within one window's length of now, so that a
/// flood straddling a window's end gets no second limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientWindow<'a> {
    pub key: &'a str,
    pub start: i64,
    pub end: i64,
}

impl ClientWindow<'_> {
    /// Where the window before this one started.
    pub fn previous_start(&self) -> i64 {
        self.start - (self.end - self.start)
    }

    /// How long a window's count is kept: through the next window, which carries it.
    pub fn kept_until(&self) -> i64 {
        self.end + (self.end - self.start)
    }

    /// The previous window's `failures` still counted at `now`: its share of the
    /// sliding window that ends now, rounded up.
    pub fn carried(&self, previous_failures: u32, now: i64) -> u32 {
        let length = (self.end - self.start).max(1);
        let left = (self.end - now).clamp(0, length);
        let carried = (i64::from(previous_failures) * left + length - 1) / length;
        u32::try_from(carried).unwrap_or(u32::MAX)
    }
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
    account_id: Option<AccountId>,
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

/// A request to change what the password guards (the password itself, the security
/// question, a contact, the account's existence, its security settings): who asks, the
/// password they gave to confirm it, from where, and when.
#[derive(Debug)]
pub struct GuardedRequest<'a> {
    pub principal: &'a Principal,
    pub password: &'a Secret<String>,
    pub client: &'a Client,
    pub now: OffsetDateTime,
}

impl<'a> GuardedRequest<'a> {
    pub fn new(
        principal: &'a Principal,
        password: &'a Secret<String>,
        client: &'a Client,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            principal,
            password,
            client,
            now,
        }
    }

    fn now_s(&self) -> i64 {
        self.now.unix_timestamp()
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
    pub account_id: AccountId,
    pub level: AccountLevel,
}

pub struct Login {
    pub login: String,
    pub password: Secret<String>,
    pub foreign_computer: bool,
    /// The second factor the citizen chose, if two-step login asks for one; `None`: the
    /// SMS code, or the app when the phone is no factor.
    pub second_factor: Option<SecondFactor>,
}

pub struct IssuedSession {
    pub id: SessionId,
    pub token: Secret<String>,
    pub expires_at: OffsetDateTime,
    pub absolute_expires_at: OffsetDateTime,
}

/// The second step of a two-step login: an SMS code went to the account's phone, or
/// the login waits for a code of the app or a backup code.
pub struct IssuedChallenge {
    pub token: Secret<String>,
    pub expires_at: OffsetDateTime,
    pub resend_available_at: OffsetDateTime,
    pub second_factor: SecondFactor,
    /// The second factors the account has, for the client to offer another one.
    pub available: Vec<SecondFactor>,
    /// For a passkey: the WebAuthn request options (`publicKey`) to answer.
    pub passkey_options: Option<serde_json::Value>,
}

/// What a right password leads to.
pub enum LoginOutcome {
    Session(IssuedSession),
    CodeRequired(IssuedChallenge),
    /// The password was a one-time password from a service centre: no session until
    /// the citizen chooses their own ([`IdentityService::complete_password_change`]).
    PasswordChangeRequired(IssuedChallenge),
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
    pub account_id: AccountId,
    pub session_id: SessionId,
    /// When the session last proved its holder present (Unix seconds): its login or a
    /// step-up code. The authorizer passes it on with the account and session ids.
    pub proven_at: i64,
    /// Whether the session proved a second factor: the access matrix's second axis.
    pub strength: CredentialStrength,
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

/// A code the citizen typed in to finish a step (a two-step login, a step-up): the code,
/// where the request came from, when, and the code service that checks it.
#[derive(Debug)]
pub struct CodeAnswer<'a, C> {
    pub code: &'a str,
    pub client: &'a Client,
    pub now: OffsetDateTime,
    pub codes: &'a C,
}

/// A step-up code on its way to the account's phone.
pub struct StepUpChallenge {
    pub id: CodeId,
    pub expires_at: OffsetDateTime,
    pub resend_available_at: OffsetDateTime,
}

// ------------------------------------------------------------------ service

pub struct IdentityService<S, N> {
    store: S,
    notifier: N,
    hasher: Hasher,
    limits: SessionLimits,
    /// The WebAuthn relying party, in the functions that serve passkeys.
    passkeys: Option<PasskeyRp>,
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
            passkeys: None,
        }
    }

    /// The service with the stage's WebAuthn relying party (built once per cold start).
    pub fn with_passkeys(mut self, rp: Option<PasskeyRp>) -> Self {
        self.passkeys = rp;
        self
    }

    /// The id of a new session, from its bearer token.
    pub fn session_id(&self, token: &str) -> SessionId {
        SessionId::from_hash(self.hasher.credential(Credential::SessionToken, &[token]))
    }
}

fn token_refused() -> AppError {
    invalid_field(
        "verification_token",
        "verification_token_invalid",
        "Подтверждение недействительно или истекло. Запросите код ещё раз",
    )
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
mod tests;
