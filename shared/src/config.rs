//! Configuration, read once per cold start from the environment the template sets.
//!
//! A missing or malformed variable fails the cold start with a message naming it,
//! rather than surfacing later as a 500 on some request.
//!
//! The HMAC key is no variable: `HMAC_SECRET_ARN` names the secret, which the function
//! reads from Secrets Manager before its configuration
//! ([`crate::adapters::Clients::hasher`]) and hands to `from_env` as a [`Hasher`]. So
//! every `from_env` stays synchronous and testable without AWS.

use std::time::Duration;

use crate::crypto::{Hasher, KeyringError};
use crate::services::bills::LookupLimit;

#[derive(thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    /// The secret could not be fetched (rights, network, a wrong ARN).
    #[error("the HMAC secret {arn} (from HMAC_SECRET_ARN) could not be read: {reason}")]
    SecretUnreadable { arn: String, reason: String },
    /// The secret was read but is no usable keyring; the reason never holds key material.
    #[error("the HMAC secret {arn} (from HMAC_SECRET_ARN) is refused: {reason}")]
    SecretRefused {
        arn: String,
        #[source]
        reason: KeyringError,
    },
}

/// A function's `main` returns its init error, and the runtime prints it with `Debug`:
/// that is what the on-call engineer reads in the log, so it is the sentence itself.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The variable that names the HMAC secret in Secrets Manager.
pub const HMAC_SECRET_ARN: &str = "HMAC_SECRET_ARN";

/// What the stack integrates with: the sandboxes shipped in this repository, or the real
/// registries, acquirer and billers' endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integrations {
    Sandbox,
    Live,
}

/// A sandbox adapter a function is about to build, and what it would fake in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxAdapter {
    Registry,
    Acquirer,
    BillerEndpoint,
    SignatureVerifier,
}

impl SandboxAdapter {
    fn harm(self) -> &'static str {
        match self {
            Self::Registry => "the sandbox registries verify any passport, SNILS or birth certificate that follows their made-up rules",
            Self::Acquirer => "the sandbox acquirer marks bills paid without any money moving",
            Self::BillerEndpoint => "the sandbox billers' endpoint keeps payment notices in the table, so no biller hears of a payment",
            Self::SignatureVerifier => "the sandbox certification authority's and sandbox bank's keys are published, so anyone could sign as anyone",
        }
    }
}

/// The deployment a function runs in: `STAGE` and `INTEGRATIONS`, read at cold start by
/// every function that builds an integration adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub stage: String,
    pub integrations: Integrations,
}

/// Proof that the deployment may run a sandbox adapter: only
/// [`Deployment::allow_sandbox`] makes one, and the factories in [`crate::adapters`]
/// that build a sandbox-backed service ask for it.
#[derive(Debug, Clone, Copy)]
pub struct SandboxAllowed(());

/// The stage that is production.
pub const PRODUCTION_STAGE: &str = "prod";

impl Deployment {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let stage = env.required("STAGE")?;
        let integrations = match env.required("INTEGRATIONS")?.as_str() {
            "sandbox" => Integrations::Sandbox,
            "live" => Integrations::Live,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "INTEGRATIONS",
                    reason: "must be sandbox or live".into(),
                })
            }
        };
        Ok(Self {
            stage,
            integrations,
        })
    }

    pub fn is_production(&self) -> bool {
        self.stage == PRODUCTION_STAGE
    }

    /// Whether this deployment may run `adapter`: never in production. A stage with live
    /// integrations runs the live adapters that exist (the acquirer, see
    /// [`crate::adapters::gateway::AcquirerChoice`]) and, outside production, the
    /// sandboxes for the rest. The factories of sandbox-backed services take the
    /// [`SandboxAllowed`] this returns.
    pub fn allow_sandbox(&self, adapter: SandboxAdapter) -> Result<SandboxAllowed, ConfigError> {
        if !self.is_production() {
            return Ok(SandboxAllowed(()));
        }
        Err(ConfigError::Invalid {
            name: "INTEGRATIONS",
            reason: match self.integrations {
                Integrations::Live => format!(
                    "live in stage {PRODUCTION_STAGE}, but this function's live adapter is not built yet, and a sandbox cannot stand in: {}",
                    adapter.harm()
                ),
                Integrations::Sandbox => format!(
                    "sandbox in stage {PRODUCTION_STAGE} (STAGE): {}; production needs INTEGRATIONS=live",
                    adapter.harm()
                ),
            },
        })
    }
}

/// What a function built on an integration may build, decided from the deployment before
/// anything loads: a [`SandboxAllowed`], or which acquirer.
pub trait Permit: Sized {
    fn permit(deployment: &Deployment, adapter: SandboxAdapter) -> Result<Self, ConfigError>;
}

impl Permit for SandboxAllowed {
    fn permit(deployment: &Deployment, adapter: SandboxAdapter) -> Result<Self, ConfigError> {
        deployment.allow_sandbox(adapter)
    }
}

/// Reads variables through a lookup function, so tests need not touch the process env.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env(|name| std::env::var(name).ok())
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        (self.0)(name)
            .filter(|v| !v.is_empty())
            .ok_or(ConfigError::Missing(name))
    }

    pub fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// A whole number with a default; `min` guards against a limit of zero by mistake.
    pub fn number(&self, name: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
        let Some(raw) = (self.0)(name).filter(|v| !v.is_empty()) else {
            return Ok(default);
        };
        let value: u64 = raw.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            reason: "not a whole number".into(),
        })?;
        if value < min {
            return Err(ConfigError::Invalid {
                name,
                reason: format!("must be at least {min}"),
            });
        }
        Ok(value)
    }

    pub fn seconds(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(name, default, min).map(Duration::from_secs)
    }

    /// A [`number`](Self::number) as the type it is kept in (a count, seconds as a
    /// [`Duration`]); one that does not fit is refused as too large.
    pub fn read<T: EnvNumber>(
        &self,
        name: &'static str,
        default: T,
        min: u64,
    ) -> Result<T, ConfigError> {
        let n = self.number(name, default.to_u64(), min)?;
        T::from_u64(n).ok_or(ConfigError::Invalid {
            name,
            reason: "too large".into(),
        })
    }
}

/// What a variable read with [`Env::read`] holds: a whole number, or whole seconds.
pub trait EnvNumber: Sized {
    fn to_u64(&self) -> u64;
    fn from_u64(n: u64) -> Option<Self>;
}

impl EnvNumber for Duration {
    fn to_u64(&self) -> u64 {
        self.as_secs()
    }
    fn from_u64(n: u64) -> Option<Self> {
        Some(Duration::from_secs(n))
    }
}

macro_rules! env_number {
    ($($t:ty),*) => {$(
        impl EnvNumber for $t {
            fn to_u64(&self) -> u64 {
                u64::try_from(*self).unwrap_or(u64::MAX)
            }
            fn from_u64(n: u64) -> Option<Self> {
                <$t>::try_from(n).ok()
            }
        }
    )*};
}
env_number!(u32, usize, i64);

/// Declares a set of limits: each field is read from its variable (seconds for a
/// [`Duration`]) with its default and lower bound, and [`Default`] gives the defaults.
macro_rules! limits {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident: $ty:ty = env($var:literal, $default:expr, $min:expr),
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                Self { $($field: $default,)* }
            }
        }

        impl $name {
            pub fn from_env<F: Fn(&str) -> Option<String>>(
                env: &Env<F>,
            ) -> Result<Self, ConfigError> {
                Ok(Self { $($field: env.read($var, $default, $min)?,)* })
            }
        }
    };
}

pub(crate) use limits;

/// A function's configuration: read at cold start from the environment, with the HMAC
/// keys read before it.
pub trait FromEnv: Sized {
    fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError>;
}

/// Two configurations of one function (identity and codes, for login and recovery), read
/// in that order.
impl<A: FromEnv, B: FromEnv> FromEnv for (A, B) {
    fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok((A::from_env(env, hasher.clone())?, B::from_env(env, hasher)?))
    }
}

/// Declares a function's configuration: the struct, and its `from_env`, which reads the
/// fields in order, each with the expression beside it (`$env` names the variables and
/// `$hasher` the HMAC keys read before).
macro_rules! env_config {
    (
        $(#[$meta:meta])*
        pub struct $name:ident from ($env:ident, $hasher:ident) {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident: $ty:ty = $value:expr,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            pub fn from_env<F: Fn(&str) -> Option<String>>(
                $env: &Env<F>,
                $hasher: Hasher,
            ) -> Result<Self, ConfigError> {
                Ok(Self { $($field: $value,)* })
            }
        }

        impl FromEnv for $name {
            fn from_env<F: Fn(&str) -> Option<String>>(
                env: &Env<F>,
                hasher: Hasher,
            ) -> Result<Self, ConfigError> {
                Self::from_env(env, hasher)
            }
        }
    };
    // A function that works on the table: the table and the keys come first.
    (
        $(#[$meta:meta])*
        pub struct $name:ident from ($env:ident, $hasher:ident) on the table {
            $($fields:tt)*
        }
    ) => {
        env_config! {
            $(#[$meta])*
            pub struct $name from ($env, $hasher) {
                pub table_name: String = $env.required("TABLE_NAME")?,
                pub hasher: Hasher = $hasher,
                $($fields)*
            }
        }
    };
    // A function that sends messages: the table, the keys and the senders come first.
    (
        $(#[$meta:meta])*
        pub struct $name:ident from ($env:ident, $hasher:ident) sends messages {
            $($fields:tt)*
        }
    ) => {
        env_config! {
            $(#[$meta])*
            pub struct $name from ($env, $hasher) on the table {
                pub email_sender: String = $env.required("EMAIL_SENDER")?,
                /// Registered alphanumeric sender ID for SMS; `None` sends without one.
                pub sms_sender_id: Option<String> = $env.optional("SMS_SENDER_ID"),
                $($fields)*
            }
        }
    };
}

limits! {
    /// Limits of the confirmation-code flow.
    #[derive(Debug, Clone)]
    pub struct CodeLimits {
        /// How long a code can be verified.
        pub code_ttl: Duration = env("CODE_TTL_SECONDS", Duration::from_secs(600), 1),
        /// Wrong attempts that kill a code.
        pub max_attempts: u32 = env("CODE_MAX_ATTEMPTS", 5, 1),
        /// Minimum gap between two codes to one destination.
        pub resend_interval: Duration =
            env("CODE_RESEND_INTERVAL_SECONDS", Duration::from_secs(60), 0),
        /// Length of the window the hourly limits count over.
        pub rate_window: Duration = env("CODE_RATE_WINDOW_SECONDS", Duration::from_secs(3600), 1),
        pub max_per_destination: u32 = env("CODE_MAX_PER_DESTINATION_PER_HOUR", 5, 1),
        pub max_per_client_ip: u32 = env("CODE_MAX_PER_IP_PER_HOUR", 20, 1),
        /// How long a verification token can be redeemed.
        pub token_ttl: Duration =
            env("VERIFICATION_TOKEN_TTL_SECONDS", Duration::from_secs(900), 1),
    }
}

env_config! {
    /// Everything the codes function needs.
    #[derive(Clone)]
    pub struct CodesConfig from (env, hasher) sends messages {
        pub limits: CodeLimits = CodeLimits::from_env(env)?,
    }
}

limits! {
    /// Session lifetimes and login throttling.
    #[derive(Debug, Clone)]
    pub struct SessionLimits {
        /// Idle lifetime of a normal session.
        pub idle: Duration = env("SESSION_IDLE_SECONDS", Duration::from_secs(12 * 3600), 1),
        /// Absolute lifetime of a normal session.
        pub max: Duration = env("SESSION_MAX_SECONDS", Duration::from_secs(30 * 24 * 3600), 1),
        /// Idle lifetime of a session opened on a foreign (shared) computer.
        pub foreign_idle: Duration =
            env("FOREIGN_SESSION_IDLE_SECONDS", Duration::from_secs(30 * 60), 1),
        /// Absolute lifetime of a foreign-computer session.
        pub foreign_max: Duration =
            env("FOREIGN_SESSION_MAX_SECONDS", Duration::from_secs(12 * 3600), 1),
        /// Consecutive failures of one login before it is locked.
        pub max_failures: u32 = env("LOGIN_MAX_FAILURES", 5, 1),
        /// First lock; each further failure doubles it, up to `lock_max`.
        pub lock_base: Duration = env("LOGIN_LOCK_BASE_SECONDS", Duration::from_secs(60), 1),
        pub lock_max: Duration = env("LOGIN_LOCK_MAX_SECONDS", Duration::from_secs(3600), 1),
        /// Failed logins one client address may make per window.
        pub max_client_failures: u32 = env("LOGIN_MAX_FAILURES_PER_IP", 50, 1),
        pub client_failure_window: Duration =
            env("LOGIN_IP_WINDOW_SECONDS", Duration::from_secs(3600), 1),
        /// How long a login or step-up code counts as a fresh proof of presence
        /// (`STEP_UP_WINDOW_SECONDS`, read by every function that guards a change with
        /// one: accounts, sessions, pay, autopays).
        pub step_up_window: Duration = env("STEP_UP_WINDOW_SECONDS", STEP_UP_WINDOW, 1),
    }
}

/// How long a login or a step-up code counts as a fresh proof of presence, by default:
/// long enough to finish what one signed in for, short enough that a session left open
/// (or stolen) does not carry it.
pub const STEP_UP_WINDOW: Duration = Duration::from_secs(5 * 60);

/// `STEP_UP_WINDOW_SECONDS`: the step-up window of every function that guards a change
/// with a fresh proof of presence (accounts, sessions, pay, autopays).
pub fn step_up_window<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Duration, ConfigError> {
    env.read("STEP_UP_WINDOW_SECONDS", STEP_UP_WINDOW, 1)
}

env_config! {
    /// Everything the identity functions (accounts, sessions, authorizer) need.
    #[derive(Clone)]
    pub struct IdentityConfig from (env, hasher) sends messages {
        pub limits: SessionLimits = SessionLimits::from_env(env)?,
        /// The WebAuthn relying party, where the function serves passkeys.
        pub passkeys: Option<crate::services::identity::PasskeyRp> =
            crate::services::identity::PasskeyRp::from_env(env)?,
    }
}

/// `VERIFICATION_DEADLINE_SECONDS`: how long a registry check may stay pending.
fn verification_deadline<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<i64, ConfigError> {
    env.read(
        "VERIFICATION_DEADLINE_SECONDS",
        crate::services::profile::DEFAULT_DEADLINE_SECS,
        1,
    )
}

/// Everything the sweeper of overdue checks needs.
pub struct SweepConfig {
    pub table_name: String,
    /// Where checks are queued again.
    pub queue_url: String,
    pub limits: crate::services::verification::SweepLimits,
}

impl SweepConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let max_requeues = env.read("VERIFICATION_MAX_REQUEUES", 2, 0)?;
        let batch = env.read("VERIFICATION_SWEEP_BATCH", 200, 1)?;
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            queue_url: env.required("VERIFICATION_QUEUE_URL")?,
            limits: crate::services::verification::SweepLimits {
                deadline_secs: verification_deadline(env)?,
                max_requeues,
                batch,
            },
        })
    }
}

/// Everything the document reminders' job needs.
pub struct ReminderConfig {
    pub table_name: String,
    pub email_sender: String,
    pub sms_sender_id: Option<String>,
    /// Most index entries one run looks at.
    pub batch: usize,
}

impl ReminderConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            batch: env.read(
                "REMINDERS_BATCH",
                crate::services::reminders::DEFAULT_BATCH,
                1,
            )?,
        })
    }
}

env_config! {
    /// Everything the profile function needs.
    #[derive(Clone)]
    pub struct ProfileConfig from (env, hasher) on the table {
        /// Where registry checks are queued.
        pub queue_url: String = env.required("VERIFICATION_QUEUE_URL")?,
        /// How long a queued check may stay pending before the sweeper steps in.
        pub verification_deadline_secs: i64 = verification_deadline(env)?,
    }
}

env_config! {
    /// Everything the organisations function needs.
    #[derive(Clone)]
    pub struct OrganisationsConfig from (env, hasher) sends messages {
        /// Where business-register checks are queued (the verification queue).
        pub queue_url: String = env.required("VERIFICATION_QUEUE_URL")?,
    }
}

env_config! {
    /// Everything the confirmation function needs.
    #[derive(Clone)]
    pub struct ConfirmationConfig from (env, hasher) on the table {
        /// Where letters with codes are queued for the post.
        pub post_queue_url: String = env.required("POST_QUEUE_URL")?,
    }
}

env_config! {
    /// What restoring access at a service centre needs (the confirmation function).
    #[derive(Clone)]
    pub struct RestorationConfig from (env, hasher) sends messages {
        /// Restorations one operator may make per hour.
        pub limit: crate::services::restoration::RestorationLimit =
            crate::services::restoration::RestorationLimit {
                per_hour: env.read(
                    "ACCESS_RESTORATIONS_PER_HOUR",
                    crate::services::restoration::DEFAULT_RESTORATIONS_PER_HOUR,
                    1,
                )?,
            },
    }
}

env_config! {
    /// The table and the HMAC key: what recognising operators' and billers' keys, and
    /// reading and writing charges, take (the authorizer, the admin command, charges,
    /// bills).
    #[derive(Clone)]
    pub struct TableConfig from (env, hasher) on the table {}
}

/// Everything the verification worker needs.
#[derive(Clone)]
pub struct VerificationConfig {
    pub table_name: String,
    pub email_sender: String,
    pub sms_sender_id: Option<String>,
    pub hasher: Hasher,
    /// How long the sandbox registries take to answer.
    pub registry_delay: Duration,
    /// Jobs of one batch checked at the same time.
    pub concurrency: usize,
}

impl VerificationConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        let delay_ms = env.number("REGISTRY_SANDBOX_DELAY_MS", 0, 0)?;
        let concurrency = env.read("VERIFICATION_CONCURRENCY", 10, 1)?;
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            hasher,
            registry_delay: Duration::from_millis(delay_ms),
            concurrency,
        })
    }
}

env_config! {
    /// Everything the charges function needs: the table, and where written charges are
    /// queued for new-bill notices.
    #[derive(Clone)]
    pub struct ChargesConfig from (env, hasher) {
        pub table: TableConfig = TableConfig::from_env(env, hasher)?,
        pub notices_queue_url: String = env.required("BILL_NOTICES_QUEUE_URL")?,
    }
}

env_config! {
    /// Everything the bills function needs: the table, and the per-account limit on
    /// looking bills up by UIN or fines by СТС.
    #[derive(Clone)]
    pub struct BillsConfig from (env, hasher) {
        pub table: TableConfig = TableConfig::from_env(env, hasher)?,
        pub lookups: LookupLimit = lookup_limit(env)?,
    }
}

/// The per-account bill lookup limit (`BILL_LOOKUPS_PER_WINDOW` per
/// `BILL_LOOKUP_WINDOW_SECONDS`), shared by the bills and pay functions.
fn lookup_limit<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<LookupLimit, ConfigError> {
    Ok(LookupLimit {
        per_window: env.read("BILL_LOOKUPS_PER_WINDOW", 30, 1)?,
        window_secs: env.read("BILL_LOOKUP_WINDOW_SECONDS", 600, 1)?,
    })
}

env_config! {
    /// Everything the payment functions need (pay, reconciliation, billers' notices).
    #[derive(Clone)]
    pub struct PaymentsConfig from (env, hasher) sends messages {
        /// Where notices of paid bills are queued for their billers.
        pub notices_queue_url: String = env.required("PAYMENT_NOTICES_QUEUE_URL")?,
        /// Payments younger than this are left to the request that opened them.
        pub reconcile_min_age: Duration =
            env.read("RECONCILE_MIN_AGE_SECONDS", Duration::from_secs(120), 0)?,
        /// The bill lookup limit, which counts each bill of a payment a citizen opens.
        pub lookups: LookupLimit = lookup_limit(env)?,
        pub holds: HoldLimits = HoldLimits::from_env(env)?,
        pub step_up_window: Duration = step_up_window(env)?,
    }
}

limits! {
    /// How far an unconfirmed payment may keep bills from other payers.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HoldLimits {
        /// How long an opened payment is guaranteed its bills; past it, a payment still
        /// waiting for 3-D Secure is withdrawn as soon as another payment needs a bill.
        pub hold: Duration = env("PAYMENT_HOLD_SECONDS", Duration::from_secs(5 * 60), 1),
        /// Bills one account may hold at once in payments not settled yet: one full
        /// payment (`MAX_BILLS`) always fits.
        pub max_held_bills: usize = env(
            "PAYMENT_MAX_HELD_BILLS",
            20,
            crate::services::payments::MAX_BILLS as u64
        ),
    }
}

env_config! {
    /// Everything the bill-notices worker needs.
    #[derive(Clone)]
    pub struct NoticesConfig from (env, hasher) sends messages {
        /// Where new bills for accounts with a new-bill autopay are queued.
        pub autopay_queue_url: String = env.required("AUTOPAY_QUEUE_URL")?,
        /// The portal's address (`https://…`, no trailing slash): the one link a new-bill
        /// notice carries.
        pub portal_url: String = portal_url(env)?,
    }
}

/// `PORTAL_URL`: an `https://` origin, written into citizens' messages as is.
fn portal_url<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, ConfigError> {
    let url = env.required("PORTAL_URL")?;
    let host = url.strip_prefix("https://").unwrap_or_default();
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(ConfigError::Invalid {
            name: "PORTAL_URL",
            reason: "an https:// origin: lower-case host name, no path".into(),
        });
    }
    Ok(url)
}

#[cfg(test)]
mod tests;
