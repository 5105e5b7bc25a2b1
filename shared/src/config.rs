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
}

impl SandboxAdapter {
    fn harm(self) -> &'static str {
        match self {
            Self::Registry => "the sandbox registries verify any passport, SNILS or birth certificate that follows their made-up rules",
            Self::Acquirer => "the sandbox acquirer marks bills paid without any money moving",
            Self::BillerEndpoint => "the sandbox billers' endpoint keeps payment notices in the table, so no biller hears of a payment",
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

    /// Whether this deployment may run `adapter`: never in production, and only while
    /// the integrations are the sandboxes (the live adapters do not exist yet, so a
    /// function asked for them cannot start either). The factories of sandbox-backed
    /// services take the [`SandboxAllowed`] this returns.
    pub fn allow_sandbox(&self, adapter: SandboxAdapter) -> Result<SandboxAllowed, ConfigError> {
        match self.integrations {
            Integrations::Live => Err(ConfigError::Invalid {
                name: "INTEGRATIONS",
                reason: "live, but the live adapters (registries, acquirer, billers' endpoints) are not built yet; until they are, only INTEGRATIONS=sandbox can run, and not in the prod stage".into(),
            }),
            Integrations::Sandbox if self.is_production() => Err(ConfigError::Invalid {
                name: "INTEGRATIONS",
                reason: format!(
                    "sandbox in stage {PRODUCTION_STAGE} (STAGE): {}; production needs INTEGRATIONS=live",
                    adapter.harm()
                ),
            }),
            Integrations::Sandbox => Ok(SandboxAllowed(())),
        }
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
}

/// Limits of the confirmation-code flow.
#[derive(Debug, Clone)]
pub struct CodeLimits {
    /// How long a code can be verified.
    pub code_ttl: Duration,
    /// Wrong attempts that kill a code.
    pub max_attempts: u32,
    /// Minimum gap between two codes to one destination.
    pub resend_interval: Duration,
    /// Length of the window the hourly limits count over.
    pub rate_window: Duration,
    pub max_per_destination: u32,
    pub max_per_client_ip: u32,
    /// How long a verification token can be redeemed.
    pub token_ttl: Duration,
}

impl Default for CodeLimits {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(600),
            max_attempts: 5,
            resend_interval: Duration::from_secs(60),
            rate_window: Duration::from_secs(3600),
            max_per_destination: 5,
            max_per_client_ip: 20,
            token_ttl: Duration::from_secs(900),
        }
    }
}

/// Everything the codes function needs.
#[derive(Clone)]
pub struct CodesConfig {
    pub table_name: String,
    pub email_sender: String,
    /// Registered alphanumeric sender ID for SMS; `None` sends without one.
    pub sms_sender_id: Option<String>,
    pub hasher: Hasher,
    pub limits: CodeLimits,
}

impl CodesConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        let d = CodeLimits::default();
        let limit = |name, default: u32| -> Result<u32, ConfigError> {
            let n = env.number(name, u64::from(default), 1)?;
            u32::try_from(n).map_err(|_| ConfigError::Invalid {
                name,
                reason: "too large".into(),
            })
        };
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            hasher,
            limits: CodeLimits {
                code_ttl: env.seconds("CODE_TTL_SECONDS", d.code_ttl.as_secs(), 1)?,
                max_attempts: limit("CODE_MAX_ATTEMPTS", d.max_attempts)?,
                resend_interval: env.seconds(
                    "CODE_RESEND_INTERVAL_SECONDS",
                    d.resend_interval.as_secs(),
                    0,
                )?,
                rate_window: env.seconds("CODE_RATE_WINDOW_SECONDS", d.rate_window.as_secs(), 1)?,
                max_per_destination: limit(
                    "CODE_MAX_PER_DESTINATION_PER_HOUR",
                    d.max_per_destination,
                )?,
                max_per_client_ip: limit("CODE_MAX_PER_IP_PER_HOUR", d.max_per_client_ip)?,
                token_ttl: env.seconds(
                    "VERIFICATION_TOKEN_TTL_SECONDS",
                    d.token_ttl.as_secs(),
                    1,
                )?,
            },
        })
    }
}

/// Session lifetimes and login throttling.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Idle lifetime of a normal session.
    pub idle: Duration,
    /// Absolute lifetime of a normal session.
    pub max: Duration,
    /// Idle lifetime of a session opened on a foreign (shared) computer.
    pub foreign_idle: Duration,
    /// Absolute lifetime of a foreign-computer session.
    pub foreign_max: Duration,
    /// Consecutive failures of one login before it is locked.
    pub max_failures: u32,
    /// First lock; each further failure doubles it, up to `lock_max`.
    pub lock_base: Duration,
    pub lock_max: Duration,
    /// Failed logins one client address may make per window.
    pub max_client_failures: u32,
    pub client_failure_window: Duration,
    /// How long a login or step-up code counts as a fresh proof of presence.
    pub step_up_window: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(12 * 3600),
            max: Duration::from_secs(30 * 24 * 3600),
            foreign_idle: Duration::from_secs(30 * 60),
            foreign_max: Duration::from_secs(12 * 3600),
            max_failures: 5,
            lock_base: Duration::from_secs(60),
            lock_max: Duration::from_secs(3600),
            max_client_failures: 50,
            client_failure_window: Duration::from_secs(3600),
            step_up_window: STEP_UP_WINDOW,
        }
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
    env.seconds("STEP_UP_WINDOW_SECONDS", STEP_UP_WINDOW.as_secs(), 1)
}

/// Everything the identity functions (accounts, sessions, authorizer) need.
#[derive(Clone)]
pub struct IdentityConfig {
    pub table_name: String,
    pub email_sender: String,
    pub sms_sender_id: Option<String>,
    pub hasher: Hasher,
    pub limits: SessionLimits,
}

impl IdentityConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        let d = SessionLimits::default();
        let count = |name, default: u32| -> Result<u32, ConfigError> {
            let n = env.number(name, u64::from(default), 1)?;
            u32::try_from(n).map_err(|_| ConfigError::Invalid {
                name,
                reason: "too large".into(),
            })
        };
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            hasher,
            limits: SessionLimits {
                idle: env.seconds("SESSION_IDLE_SECONDS", d.idle.as_secs(), 1)?,
                max: env.seconds("SESSION_MAX_SECONDS", d.max.as_secs(), 1)?,
                foreign_idle: env.seconds(
                    "FOREIGN_SESSION_IDLE_SECONDS",
                    d.foreign_idle.as_secs(),
                    1,
                )?,
                foreign_max: env.seconds(
                    "FOREIGN_SESSION_MAX_SECONDS",
                    d.foreign_max.as_secs(),
                    1,
                )?,
                max_failures: count("LOGIN_MAX_FAILURES", d.max_failures)?,
                lock_base: env.seconds("LOGIN_LOCK_BASE_SECONDS", d.lock_base.as_secs(), 1)?,
                lock_max: env.seconds("LOGIN_LOCK_MAX_SECONDS", d.lock_max.as_secs(), 1)?,
                max_client_failures: count("LOGIN_MAX_FAILURES_PER_IP", d.max_client_failures)?,
                client_failure_window: env.seconds(
                    "LOGIN_IP_WINDOW_SECONDS",
                    d.client_failure_window.as_secs(),
                    1,
                )?,
                step_up_window: step_up_window(env)?,
            },
        })
    }
}

/// Everything the profile function needs.
#[derive(Clone)]
pub struct ProfileConfig {
    pub table_name: String,
    /// Where registry checks are queued.
    pub queue_url: String,
    pub hasher: Hasher,
    /// How long a queued check may stay pending before the sweeper steps in.
    pub verification_deadline_secs: i64,
}

/// `VERIFICATION_DEADLINE_SECONDS`: how long a registry check may stay pending.
fn verification_deadline<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<i64, ConfigError> {
    let secs = env.number(
        "VERIFICATION_DEADLINE_SECONDS",
        crate::services::profile::DEFAULT_DEADLINE_SECS.unsigned_abs(),
        1,
    )?;
    i64::try_from(secs).map_err(|_| ConfigError::Invalid {
        name: "VERIFICATION_DEADLINE_SECONDS",
        reason: "too large".into(),
    })
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
        let max_requeues = env.number("VERIFICATION_MAX_REQUEUES", 2, 0)?;
        let batch = env.number("VERIFICATION_SWEEP_BATCH", 200, 1)?;
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            queue_url: env.required("VERIFICATION_QUEUE_URL")?,
            limits: crate::services::verification::SweepLimits {
                deadline_secs: verification_deadline(env)?,
                max_requeues: u32::try_from(max_requeues).map_err(|_| ConfigError::Invalid {
                    name: "VERIFICATION_MAX_REQUEUES",
                    reason: "too large".into(),
                })?,
                batch: usize::try_from(batch).map_err(|_| ConfigError::Invalid {
                    name: "VERIFICATION_SWEEP_BATCH",
                    reason: "too large".into(),
                })?,
            },
        })
    }
}

impl ProfileConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            queue_url: env.required("VERIFICATION_QUEUE_URL")?,
            hasher,
            verification_deadline_secs: verification_deadline(env)?,
        })
    }
}

/// Everything the confirmation function needs.
#[derive(Clone)]
pub struct ConfirmationConfig {
    pub table_name: String,
    /// Where letters with codes are queued for the post.
    pub post_queue_url: String,
    pub hasher: Hasher,
}

impl ConfirmationConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            post_queue_url: env.required("POST_QUEUE_URL")?,
            hasher,
        })
    }
}

/// The table and the HMAC key: what recognising operators' and billers' keys, and reading
/// and writing charges, take (the authorizer, the admin command, charges, bills).
#[derive(Clone)]
pub struct TableConfig {
    pub table_name: String,
    pub hasher: Hasher,
}

impl TableConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            hasher,
        })
    }
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
        let concurrency = env.number("VERIFICATION_CONCURRENCY", 10, 1)?;
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            hasher,
            registry_delay: Duration::from_millis(delay_ms),
            concurrency: usize::try_from(concurrency).map_err(|_| ConfigError::Invalid {
                name: "VERIFICATION_CONCURRENCY",
                reason: "too large".into(),
            })?,
        })
    }
}

/// Everything the charges function needs: the table, and where written charges are
/// queued for new-bill notices.
#[derive(Clone)]
pub struct ChargesConfig {
    pub table: TableConfig,
    pub notices_queue_url: String,
}

impl ChargesConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table: TableConfig::from_env(env, hasher)?,
            notices_queue_url: env.required("BILL_NOTICES_QUEUE_URL")?,
        })
    }
}

/// Everything the bills function needs: the table, and the per-account limit on looking
/// bills up by UIN or fines by СТС.
#[derive(Clone)]
pub struct BillsConfig {
    pub table: TableConfig,
    pub lookups: LookupLimit,
}

impl BillsConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table: TableConfig::from_env(env, hasher)?,
            lookups: lookup_limit(env)?,
        })
    }
}

/// The per-account bill lookup limit (`BILL_LOOKUPS_PER_WINDOW` per
/// `BILL_LOOKUP_WINDOW_SECONDS`), shared by the bills and pay functions.
fn lookup_limit<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<LookupLimit, ConfigError> {
    let too_large = |name| ConfigError::Invalid {
        name,
        reason: "too large".into(),
    };
    Ok(LookupLimit {
        per_window: u32::try_from(env.number("BILL_LOOKUPS_PER_WINDOW", 30, 1)?)
            .map_err(|_| too_large("BILL_LOOKUPS_PER_WINDOW"))?,
        window_secs: i64::try_from(env.number("BILL_LOOKUP_WINDOW_SECONDS", 600, 1)?)
            .map_err(|_| too_large("BILL_LOOKUP_WINDOW_SECONDS"))?,
    })
}

/// Everything the payment functions need (pay, reconciliation, billers' notices).
#[derive(Clone)]
pub struct PaymentsConfig {
    pub table_name: String,
    pub email_sender: String,
    pub sms_sender_id: Option<String>,
    pub hasher: Hasher,
    /// Where notices of paid bills are queued for their billers.
    pub notices_queue_url: String,
    /// Payments younger than this are left to the request that opened them.
    pub reconcile_min_age: Duration,
    /// The bill lookup limit, which counts each bill of a payment a citizen opens.
    pub lookups: LookupLimit,
    pub holds: HoldLimits,
    pub step_up_window: Duration,
}

/// How far an unconfirmed payment may keep bills from other payers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLimits {
    /// How long an opened payment is guaranteed its bills; past it, a payment still
    /// waiting for 3-D Secure is withdrawn as soon as another payment needs a bill.
    pub hold: Duration,
    /// Bills one account may hold at once in payments not settled yet.
    pub max_held_bills: usize,
}

impl Default for HoldLimits {
    fn default() -> Self {
        Self {
            hold: Duration::from_secs(5 * 60),
            // One full payment (`MAX_BILLS`) always fits.
            max_held_bills: 20,
        }
    }
}

impl PaymentsConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            hasher,
            notices_queue_url: env.required("PAYMENT_NOTICES_QUEUE_URL")?,
            reconcile_min_age: Duration::from_secs(env.number(
                "RECONCILE_MIN_AGE_SECONDS",
                120,
                0,
            )?),
            lookups: lookup_limit(env)?,
            holds: HoldLimits {
                hold: env.seconds(
                    "PAYMENT_HOLD_SECONDS",
                    HoldLimits::default().hold.as_secs(),
                    1,
                )?,
                max_held_bills: usize::try_from(env.number(
                    "PAYMENT_MAX_HELD_BILLS",
                    HoldLimits::default().max_held_bills as u64,
                    crate::services::payments::MAX_BILLS as u64,
                )?)
                .map_err(|_| ConfigError::Invalid {
                    name: "PAYMENT_MAX_HELD_BILLS",
                    reason: "too large".into(),
                })?,
            },
            step_up_window: step_up_window(env)?,
        })
    }
}

/// Everything the bill-notices worker needs.
#[derive(Clone)]
pub struct NoticesConfig {
    pub table_name: String,
    pub email_sender: String,
    pub sms_sender_id: Option<String>,
    pub hasher: Hasher,
    /// Where new bills for accounts with a new-bill autopay are queued.
    pub autopay_queue_url: String,
    /// The portal's address (`https://…`, no trailing slash): the one link a new-bill
    /// notice carries.
    pub portal_url: String,
}

impl NoticesConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        hasher: Hasher,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            email_sender: env.required("EMAIL_SENDER")?,
            sms_sender_id: env.optional("SMS_SENDER_ID"),
            hasher,
            autopay_queue_url: env.required("AUTOPAY_QUEUE_URL")?,
            portal_url: portal_url(env)?,
        })
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
