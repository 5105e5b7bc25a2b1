//! The acquirer the payment service charges through, as the deployment chose it: the
//! sandbox acquirer (`INTEGRATIONS=sandbox`, never in production) or T-Bank
//! (`INTEGRATIONS=live`). One type for both, so the payment service and every function
//! built on it name a single gateway type.

use super::acquirer::SandboxAcquirer;
use super::tbank::{load_credentials, Credentials, TbankAcquirer, TbankConfig, TbankConfigError};
use super::Clients;
use crate::config::{
    ConfigError, Deployment, Env, Integrations, Permit, SandboxAdapter, SandboxAllowed,
};
use crate::services::payments::{
    GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway, RefundAnswer,
    RefundOrder, SavedCard,
};

/// Which acquirer a function may build, decided from `INTEGRATIONS` and `STAGE` before
/// anything loads.
#[derive(Debug, Clone, Copy)]
pub enum AcquirerChoice {
    /// The sandbox acquirer: outside production only.
    Sandbox(SandboxAllowed),
    /// T-Bank, with the terminal's credentials from `TBANK_SECRET_ARN`.
    Live,
}

impl Permit for AcquirerChoice {
    fn permit(deployment: &Deployment, adapter: SandboxAdapter) -> Result<Self, ConfigError> {
        match deployment.integrations {
            Integrations::Live => Ok(Self::Live),
            Integrations::Sandbox => deployment.allow_sandbox(adapter).map(Self::Sandbox),
        }
    }
}

pub enum Acquirer {
    Sandbox(SandboxAcquirer),
    /// Boxed: its configuration and HTTPS client are much larger than the sandbox.
    Live(Box<TbankAcquirer>),
}

impl Acquirer {
    /// The chosen acquirer. The live one reads its secret (one `GetSecretValue`) and its
    /// `TBANK_*` variables: once per cold start.
    pub async fn load(
        clients: &Clients,
        table_name: String,
        choice: AcquirerChoice,
    ) -> Result<Self, TbankConfigError> {
        Ok(match choice {
            AcquirerChoice::Sandbox(_) => {
                Self::Sandbox(SandboxAcquirer::new(clients.store(table_name)))
            }
            AcquirerChoice::Live => {
                let env = Env::process();
                let credentials = load_credentials(&clients.secretsmanager, &env).await?;
                Self::live(&env, credentials)?
            }
        })
    }

    /// T-Bank with credentials read already, and its `TBANK_*` variables.
    pub fn live<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        credentials: Credentials,
    ) -> Result<Self, TbankConfigError> {
        Ok(Self::Live(Box::new(TbankAcquirer::new(
            TbankConfig::from_env(env, credentials)?,
        )?)))
    }
}

/// Implements [`PaymentGateway`] for [`Acquirer`]: each method asks the chosen one.
macro_rules! either_acquirer {
    ($(fn $op:ident(&self $(, $arg:ident: $ty:ty)*) -> $answer:ty;)*) => {
        impl PaymentGateway for Acquirer {
            $(
                async fn $op(&self $(, $arg: $ty)*) -> $answer {
                    match self {
                        Self::Sandbox(sandbox) => PaymentGateway::$op(sandbox, $($arg),*).await,
                        // The trait's method: T-Bank's inherent `refund` takes other arguments.
                        Self::Live(tbank) => PaymentGateway::$op(&**tbank, $($arg),*).await,
                    }
                }
            )*
        }
    };
}

either_acquirer! {
    fn charge(&self, order: &str, amount: u64, method: &GatewayMethod) -> Result<GatewayAnswer, GatewayError>;
    fn confirm(&self, order: &str) -> Result<GatewayAnswer, GatewayError>;
    fn status(&self, order: &str) -> Result<GatewayStatus, GatewayError>;
    fn cancel(&self, order: &str) -> Result<GatewayStatus, GatewayError>;
    fn save_card(&self, one_time_token: &str) -> Result<SavedCard, GatewayError>;
    fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(stage: &str, integrations: &str) -> Result<AcquirerChoice, ConfigError> {
        let deployment = Deployment::from_env(&Env(|name: &str| match name {
            "STAGE" => Some(stage.to_string()),
            "INTEGRATIONS" => Some(integrations.to_string()),
            _ => None,
        }))?;
        AcquirerChoice::permit(&deployment, SandboxAdapter::Acquirer)
    }

    #[test]
    fn live_integrations_choose_the_bank_and_production_never_the_sandbox() {
        assert!(matches!(
            choice("dev", "sandbox"),
            Ok(AcquirerChoice::Sandbox(_))
        ));
        assert!(matches!(choice("dev", "live"), Ok(AcquirerChoice::Live)));
        assert!(matches!(choice("prod", "live"), Ok(AcquirerChoice::Live)));
        assert!(choice("prod", "sandbox").is_err());
    }
}
