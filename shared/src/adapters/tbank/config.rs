//! The adapter's configuration: the terminal's credentials from Secrets Manager, and
//! the rest from the environment.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{ConfigError, Env};
use crate::redact::Secret;

/// The variable naming the secret with the terminal key and password.
pub const SECRET_ARN_VARIABLE: &str = "TBANK_SECRET_ARN";
/// The production API.
pub const PRODUCTION_API: &str = "https://securepay.tinkoff.ru/v2";
/// The terminal's credentials, from the secret: `{"TerminalKey": "…", "Password": "…"}`.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub terminal_key: String,
    pub password: Secret<String>,
}

impl Credentials {
    /// Reads the secret's text. The reason of a refusal never holds any of it.
    pub fn from_secret(text: &str) -> Result<Self, TbankConfigError> {
        let body: Map<String, Value> =
            serde_json::from_str(text).map_err(|_| TbankConfigError::Secret {
                reason: "it is not a JSON object".into(),
            })?;
        let field = |name: &str| match body.get(name) {
            Some(Value::String(v)) if !v.trim().is_empty() => Ok(v.clone()),
            _ => Err(TbankConfigError::Secret {
                reason: format!("it has no {name}"),
            }),
        };
        let terminal_key = field("TerminalKey")?;
        if terminal_key.len() > 20 {
            return Err(TbankConfigError::Secret {
                reason: "its TerminalKey is longer than 20 characters".into(),
            });
        }
        Ok(Self {
            terminal_key,
            password: Secret::new(field("Password")?),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TbankConfigError {
    /// A variable is missing or invalid.
    #[error(transparent)]
    Env(#[from] ConfigError),
    #[error("the T-Bank secret could not be read: {reason}")]
    SecretUnreadable { reason: String },
    #[error("the T-Bank secret is refused: {reason}")]
    Secret { reason: String },
    #[error("the HTTPS client could not be built: {0}")]
    Client(String),
}

/// Reads the credentials from the secret `TBANK_SECRET_ARN` names: once per cold start.
pub async fn load_credentials<F: Fn(&str) -> Option<String>>(
    secrets: &aws_sdk_secretsmanager::Client,
    env: &Env<F>,
) -> Result<Credentials, TbankConfigError> {
    let arn = env.required(SECRET_ARN_VARIABLE)?;
    let out = secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| TbankConfigError::SecretUnreadable {
            reason: format!("{arn}: {}", crate::adapters::error_chain(&e)),
        })?;
    let text = out
        .secret_string()
        .ok_or_else(|| TbankConfigError::SecretUnreadable {
            reason: format!("{arn} holds no SecretString"),
        })?;
    Credentials::from_secret(text)
}

/// One-stage (the form's payment is charged at once) or two-stage (held, then our
/// `Confirm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayType {
    OneStage,
    TwoStage,
}

impl PayType {
    pub(super) fn wire(self) -> &'static str {
        match self {
            PayType::OneStage => "O",
            PayType::TwoStage => "T",
        }
    }
}

/// Who starts a payment with a saved card, as the bank must be told
/// (`DATA.OperationInitiatorType`): the cardholder (`2`) or we, on a schedule (`R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebillInitiator {
    Cardholder,
    Merchant,
}

impl RebillInitiator {
    pub(super) fn wire(self) -> &'static str {
        match self {
            RebillInitiator::Cardholder => "2",
            RebillInitiator::Merchant => "R",
        }
    }
}

/// Where the bank posts its signed notifications and sends the cardholder after the
/// form; the terminal's settings where `None`.
#[derive(Debug, Clone, Default)]
pub struct CallbackUrls {
    pub notification: Option<String>,
    pub success: Option<String>,
    pub fail: Option<String>,
}

crate::config::limits! {
    /// How long the hosted form lives (`RedirectDueDate`) and how long one call may take.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TbankLimits {
        pub form_lifetime: Duration = env("TBANK_FORM_LIFETIME_SECONDS", Duration::from_secs(300), 60),
        pub timeout: Duration = env("TBANK_TIMEOUT_SECONDS", Duration::from_secs(10), 1),
    }
}

#[derive(Debug, Clone)]
pub struct TbankConfig {
    /// The API's base, without the method: [`PRODUCTION_API`] or a stand-in's.
    pub api_url: String,
    pub credentials: Credentials,
    pub pay_type: PayType,
    pub rebill_initiator: RebillInitiator,
    pub urls: CallbackUrls,
    pub limits: TbankLimits,
}

impl TbankConfig {
    pub fn new(api_url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            api_url: api_url.into(),
            credentials,
            pay_type: PayType::OneStage,
            rebill_initiator: RebillInitiator::Cardholder,
            urls: CallbackUrls::default(),
            limits: TbankLimits::default(),
        }
    }

    /// `TBANK_API_URL` (production by default; `http://` only on the loopback
    /// interface), `TBANK_PAY_TYPE` (`O`/`T`), `TBANK_REBILL_INITIATOR` (`2`/`R`),
    /// `TBANK_NOTIFICATION_URL`, `TBANK_SUCCESS_URL`, `TBANK_FAIL_URL`,
    /// `TBANK_FORM_LIFETIME_SECONDS` (300), `TBANK_TIMEOUT_SECONDS` (10).
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        credentials: Credentials,
    ) -> Result<Self, TbankConfigError> {
        let api_url = env
            .optional("TBANK_API_URL")
            .unwrap_or_else(|| PRODUCTION_API.into());
        let api_url = checked_api_url(api_url.trim_end_matches('/'))?;
        let mut config = Self::new(api_url, credentials);
        config.pay_type = choice(
            env,
            "TBANK_PAY_TYPE",
            &[("O", PayType::OneStage), ("T", PayType::TwoStage)],
            "must be O (one-stage) or T (two-stage)",
        )?;
        config.rebill_initiator = choice(
            env,
            "TBANK_REBILL_INITIATOR",
            &[
                ("2", RebillInitiator::Cardholder),
                ("R", RebillInitiator::Merchant),
            ],
            "must be 2 (the cardholder) or R (a recurring payment)",
        )?;
        config.urls = CallbackUrls {
            notification: env.optional("TBANK_NOTIFICATION_URL"),
            success: env.optional("TBANK_SUCCESS_URL"),
            fail: env.optional("TBANK_FAIL_URL"),
        };
        config.limits = TbankLimits::from_env(env)?;
        Ok(config)
    }
}

/// One of `options` by its text; the first when the variable is not set.
fn choice<T: Copy, F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    options: &[(&str, T)],
    reason: &str,
) -> Result<T, ConfigError> {
    let invalid = || ConfigError::Invalid {
        name,
        reason: reason.into(),
    };
    let Some(value) = env.optional(name) else {
        return options.first().map(|(_, t)| *t).ok_or_else(invalid);
    };
    options
        .iter()
        .find(|(text, _)| *text == value.trim())
        .map(|(_, t)| *t)
        .ok_or_else(invalid)
}

fn checked_api_url(url: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "TBANK_API_URL",
        reason: reason.into(),
    };
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(invalid(
                "http:// only reaches a local stand-in (127.0.0.1, localhost); the bank needs https://",
            ));
        }
    } else if !url.starts_with("https://") {
        return Err(invalid("must be an https:// address"));
    }
    if url.parse::<::http::Uri>().is_err() {
        return Err(invalid("is not an address"));
    }
    Ok(url.to_string())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The public test terminal's credentials.
    pub(in crate::adapters::tbank) fn credentials() -> Credentials {
        Credentials::from_secret(
            r#"{"TerminalKey":"TinkoffBankTest","Password":"TinkoffBankTest"}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_secret_reads_and_never_shows_the_password() {
        let c = credentials();
        assert_eq!(c.terminal_key, "TinkoffBankTest");
        assert_eq!(c.password.expose(), "TinkoffBankTest");
        assert!(!format!("{c:?}").contains("TinkoffBankTest\" }"));
        assert!(format!("{c:?}").contains("[redacted]"));
        for bad in [
            "",
            "[]",
            r#"{"TerminalKey":"T"}"#,
            r#"{"Password":"p"}"#,
            r#"{"TerminalKey":"T","Password":""}"#,
            r#"{"TerminalKey":"123456789012345678901","Password":"p"}"#,
        ] {
            let e = Credentials::from_secret(bad).unwrap_err();
            assert!(!e.to_string().contains("\"p\""), "{e}");
        }
    }

    #[test]
    fn the_config_reads_the_environment() {
        let c = TbankConfig::from_env(&env(&[]), credentials()).unwrap();
        assert_eq!(c.api_url, PRODUCTION_API);
        assert_eq!(c.pay_type, PayType::OneStage);
        assert_eq!(c.limits.timeout, Duration::from_secs(10));
        let c = TbankConfig::from_env(
            &env(&[
                ("TBANK_API_URL", "http://127.0.0.1:8123/v2/"),
                ("TBANK_PAY_TYPE", "T"),
                ("TBANK_REBILL_INITIATOR", "R"),
                ("TBANK_TIMEOUT_SECONDS", "2"),
                ("TBANK_FORM_LIFETIME_SECONDS", "600"),
                (
                    "TBANK_NOTIFICATION_URL",
                    "https://api.example/v1/acquirer/notifications",
                ),
            ]),
            credentials(),
        )
        .unwrap();
        assert_eq!(c.api_url, "http://127.0.0.1:8123/v2");
        assert_eq!(c.pay_type, PayType::TwoStage);
        assert_eq!(c.rebill_initiator, RebillInitiator::Merchant);
        assert_eq!(c.limits.timeout, Duration::from_secs(2));
        assert_eq!(c.limits.form_lifetime, Duration::from_secs(600));
        for (name, value) in [
            ("TBANK_API_URL", "http://securepay.tinkoff.ru/v2"),
            ("TBANK_API_URL", "ftp://x"),
            ("TBANK_PAY_TYPE", "X"),
            ("TBANK_TIMEOUT_SECONDS", "0"),
            ("TBANK_FORM_LIFETIME_SECONDS", "10"),
        ] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(Box::new([(name, value)]));
            assert!(
                TbankConfig::from_env(&env(pairs), credentials()).is_err(),
                "{name}={value}"
            );
        }
    }
}
