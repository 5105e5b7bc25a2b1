//! The stand-in as the local stack runs it: started when the stack is asked for live
//! integrations (`--param Integrations=live`), its terminal's credentials in a moto
//! secret, and every function pointed at it (`TBANK_*`, set before the caller's own
//! overrides, which still win).

use crate::error::Result;
use crate::model::SecretSpec;

use super::{StandInOptions, TbankStandIn, TEST_PASSWORD, TEST_TERMINAL};

/// The moto secret with the stand-in terminal's credentials.
pub const SECRET_NAME: &str = "uslugi-local-tbank";
/// What the template's `TbankSecretArn` is given (its rule wants one with live
/// integrations); the functions read [`SECRET_NAME`] instead.
const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:uslugi-local-tbank";

/// The stand-in, with the environment and parameters that point the stack at it.
pub struct LiveAcquirer {
    pub bank: TbankStandIn,
    pub secret: SecretSpec,
}

/// Whether the stack's parameters ask for live integrations.
pub fn wanted(params: &[(String, String)]) -> bool {
    params
        .iter()
        .any(|(name, value)| name == "Integrations" && value == "live")
}

/// Starts the stand-in when `params` ask for live integrations; adds its variables to
/// `env` (before the caller's) and the secret's ARN to `params`. Notifications go to
/// the gateway on `gateway_port`.
pub async fn start(
    env: &mut Vec<(String, String)>,
    params: &mut Vec<(String, String)>,
    gateway_port: u16,
) -> Result<Option<LiveAcquirer>> {
    if !wanted(params) {
        return Ok(None);
    }
    let bank = TbankStandIn::start(StandInOptions::default()).await?;
    let ours = [
        ("TBANK_API_URL", bank.api_url()),
        ("TBANK_SECRET_ARN", SECRET_NAME.to_string()),
        (
            "TBANK_NOTIFICATION_URL",
            format!("http://127.0.0.1:{gateway_port}/v1/acquirer/notifications"),
        ),
    ];
    env.splice(0..0, ours.map(|(k, v)| (k.to_string(), v)));
    if !params.iter().any(|(name, _)| name == "TbankSecretArn") {
        params.push(("TbankSecretArn".into(), SECRET_ARN.into()));
    }
    tracing::info!("T-Bank stand-in on {}", bank.url());
    Ok(Some(LiveAcquirer {
        bank,
        secret: SecretSpec {
            logical_id: "TbankStandIn".into(),
            name: SECRET_NAME.into(),
            value: serde_json::json!({"TerminalKey": TEST_TERMINAL, "Password": TEST_PASSWORD})
                .to_string(),
        },
    }))
}
