//! The adapter's configuration: the terminal's credentials from Secrets Manager, and
//! the rest from the environment.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::Env;
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
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
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
    let arn = env
        .optional(SECRET_ARN_VARIABLE)
        .ok_or(TbankConfigError::Missing(SECRET_ARN_VARIABLE))?;
    let out = secrets
        .get_secret_value()
        .secret_id(&arn)
        .send()
        .await
        .map_err(|e| TbankConfigError::SecretUnreadable {
            reason: format!("{arn}: {}", super::http::error_chain(&e)),
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

#[derive(Debug, Clone)]
pub struct TbankConfig {
    /// The API's base, without the method: [`PRODUCTION_API`] or a stand-in's.
    pub api_url: String,
    pub credentials: Credentials,
    pub pay_type: PayType,
    pub rebill_initiator: RebillInitiator,
    /// Where the bank posts its signed notifications; the terminal's setting if `None`.
    pub notification_url: Option<String>,
    pub success_url: Option<String>,
    pub fail_url: Option<String>,
    /// How long the hosted form lives (`RedirectDueDate`): at least a minute.
    pub form_lifetime: Duration,
    /// The deadline of one call.
    pub timeout: Duration,
}

impl TbankConfig {
    pub fn new(api_url: impl Into<String>, credentials: Credentials) -> Self {
        Self {
            api_url: api_url.into(),
            credentials,
            pay_type: PayType::OneStage,
            rebill_initiator: RebillInitiator::Cardholder,
            notification_url: None,
            success_url: None,
            fail_url: None,
            form_lifetime: Duration::from_secs(300),
            timeout: Duration::from_secs(10),
        }
    }

    /// `TBANK_API_URL` (production by default; `http://` only on the loopback
    /// interface), `TBANK_PAY_TYPE` (`O`/`T`), `TBANK_REBILL_INITIATOR` (`2`/`R`),
    /// `TBANK_NOTIFICATION_URL`, `TBANK_SUCCESS_URL`, `TBANK_FAIL_URL`,
    /// `TBANK_FORM_LIFETIME_SECS` (300), `TBANK_TIMEOUT_MS` (10 000).
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        credentials: Credentials,
    ) -> Result<Self, TbankConfigError> {
        let api_url = env
            .optional("TBANK_API_URL")
            .unwrap_or_else(|| PRODUCTION_API.into());
        let api_url = checked_api_url(api_url.trim_end_matches('/'))?;
        let mut config = Self::new(api_url, credentials);
        config.pay_type = match env.optional("TBANK_PAY_TYPE").as_deref() {
            None | Some("O") => PayType::OneStage,
            Some("T") => PayType::TwoStage,
            Some(_) => {
                return Err(TbankConfigError::Invalid {
                    name: "TBANK_PAY_TYPE",
                    reason: "must be O (one-stage) or T (two-stage)".into(),
                })
            }
        };
        config.rebill_initiator = match env.optional("TBANK_REBILL_INITIATOR").as_deref() {
            None | Some("2") => RebillInitiator::Cardholder,
            Some("R") => RebillInitiator::Merchant,
            Some(_) => {
                return Err(TbankConfigError::Invalid {
                    name: "TBANK_REBILL_INITIATOR",
                    reason: "must be 2 (the cardholder) or R (a recurring payment)".into(),
                })
            }
        };
        config.notification_url = env.optional("TBANK_NOTIFICATION_URL");
        config.success_url = env.optional("TBANK_SUCCESS_URL");
        config.fail_url = env.optional("TBANK_FAIL_URL");
        let number =
            |name: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| match env
                .optional(name)
            {
                None => Ok(default),
                Some(raw) => raw
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|v| range.contains(v))
                    .ok_or_else(|| TbankConfigError::Invalid {
                        name,
                        reason: format!(
                            "must be a number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    }),
            };
        config.form_lifetime =
            Duration::from_secs(number("TBANK_FORM_LIFETIME_SECS", 300, 60..=90 * 86_400)?);
        config.timeout = Duration::from_millis(number("TBANK_TIMEOUT_MS", 10_000, 100..=60_000)?);
        Ok(config)
    }
}

fn checked_api_url(url: &str) -> Result<String, TbankConfigError> {
    let invalid = |reason: &str| TbankConfigError::Invalid {
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
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn credentials() -> Credentials {
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
        assert_eq!(c.timeout, Duration::from_secs(10));
        let c = TbankConfig::from_env(
            &env(&[
                ("TBANK_API_URL", "http://127.0.0.1:8123/v2/"),
                ("TBANK_PAY_TYPE", "T"),
                ("TBANK_REBILL_INITIATOR", "R"),
                ("TBANK_TIMEOUT_MS", "1500"),
                ("TBANK_FORM_LIFETIME_SECS", "600"),
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
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.form_lifetime, Duration::from_secs(600));
        for (name, value) in [
            ("TBANK_API_URL", "http://securepay.tinkoff.ru/v2"),
            ("TBANK_API_URL", "ftp://x"),
            ("TBANK_PAY_TYPE", "X"),
            ("TBANK_TIMEOUT_MS", "0"),
            ("TBANK_FORM_LIFETIME_SECS", "10"),
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
