//! The integrations' doubles: an acquirer, the registries and a notifier, each with a
//! [`Script`] of faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::script::{lock, Fault, Script};
use crate::domain::{Email, Phone};
use crate::redact::Secret;
use crate::services::codes::{DeliveryError, Notifier};
use crate::services::payments::{
    GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway, SavedCard,
};
use crate::services::profile::{
    BirthRecord, CivilRegistry, Registry, RegistryAnswer, RegistryRequest, RegistryUnavailable,
};

// ------------------------------------------------------------------ the acquirer

/// How the acquirer answers a new order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Succeed,
    Decline(String),
    /// 3-D Secure: the order waits for the cardholder.
    AskConfirmation,
}

/// An order as the bank knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub amount: u64,
    pub status: GatewayStatus,
    /// Times money moved for the order: more than one is a double charge.
    pub charged: u32,
}

/// An acquirer that charges an order at most once, as the real one promises; operations
/// `charge`, `confirm`, `status`, `cancel`. A [`Fault::Lost`] charge takes the money and
/// answers `OutcomeUnknown`; any other fault answers `OutcomeUnknown` having done nothing.
#[derive(Clone, Default)]
pub struct Acquirer {
    pub script: Arc<Script>,
    state: Arc<Mutex<AcquirerState>>,
}

#[derive(Default)]
struct AcquirerState {
    reply: Option<Reply>,
    orders: BTreeMap<String, Order>,
}

fn reference(order: &str) -> String {
    format!("ref-{order}")
}

fn unknown(fault: Fault) -> GatewayError {
    GatewayError::OutcomeUnknown(format!("injected {fault:?}"))
}

impl Acquirer {
    /// How new orders are answered from now on (they succeed unless told otherwise).
    pub fn reply_with(&self, reply: Reply) {
        lock(&self.state).reply = Some(reply);
    }

    pub fn order(&self, order: &str) -> Option<Order> {
        lock(&self.state).orders.get(order).cloned()
    }

    /// Orders that moved money, and how often each did.
    pub fn charges(&self) -> BTreeMap<String, u32> {
        lock(&self.state)
            .orders
            .iter()
            .filter(|(_, o)| o.charged > 0)
            .map(|(id, o)| (id.clone(), o.charged))
            .collect()
    }

    /// What the bank decides about an order outside the portal's calls (the cardholder
    /// confirmed, the bank gave up on it).
    pub fn decide(&self, order: &str, status: GatewayStatus) {
        let mut state = lock(&self.state);
        let entry = state.orders.entry(order.to_string()).or_insert(Order {
            amount: 0,
            status: GatewayStatus::Unknown,
            charged: 0,
        });
        if matches!(status, GatewayStatus::Succeeded { .. }) {
            entry.charged += 1;
        }
        entry.status = status;
    }

    /// Starts a call: a fault other than `Lost` answers `OutcomeUnknown` here, having
    /// done nothing; `Lost` is left for [`Self::finish`].
    async fn begin(&self, operation: &'static str) -> Result<Option<Fault>, GatewayError> {
        tokio::task::yield_now().await;
        match self.script.call(operation).1 {
            Some(f @ (Fault::Unavailable | Fault::Conflict)) => Err(unknown(f)),
            other => Ok(other),
        }
    }

    /// Ends a call that took effect: a `Lost` one answers `OutcomeUnknown`.
    fn finish<T>(fault: Option<Fault>, answer: Result<T, GatewayError>) -> Result<T, GatewayError> {
        match fault {
            Some(f) => Err(unknown(f)),
            None => answer,
        }
    }

    fn answer(status: &GatewayStatus, order: &str) -> Result<GatewayAnswer, GatewayError> {
        match status {
            GatewayStatus::Succeeded { reference } => Ok(GatewayAnswer::Succeeded {
                reference: reference.clone(),
            }),
            GatewayStatus::Declined { reason } => Ok(GatewayAnswer::Declined {
                reason: reason.clone(),
            }),
            GatewayStatus::AwaitingConfirmation => Ok(GatewayAnswer::RequiresConfirmation {
                reference: reference(order),
                url: format!("https://acs.example/{order}"),
            }),
            GatewayStatus::Unknown => Err(GatewayError::Refused("unknown order".into())),
        }
    }
}

impl PaymentGateway for Acquirer {
    async fn charge(
        &self,
        order: &str,
        amount: u64,
        _method: &GatewayMethod,
    ) -> Result<GatewayAnswer, GatewayError> {
        let fault = self.begin("charge").await?;
        let mut state = lock(&self.state);
        let reply = state.reply.clone().unwrap_or(Reply::Succeed);
        let entry = state.orders.entry(order.to_string()).or_insert_with(|| {
            let (status, charged) = match reply {
                Reply::Succeed => (
                    GatewayStatus::Succeeded {
                        reference: reference(order),
                    },
                    1,
                ),
                Reply::Decline(reason) => (GatewayStatus::Declined { reason }, 0),
                Reply::AskConfirmation => (GatewayStatus::AwaitingConfirmation, 0),
            };
            Order {
                amount,
                status,
                charged,
            }
        });
        let answer = Self::answer(&entry.status, order);
        Self::finish(fault, answer)
    }

    async fn confirm(&self, order: &str) -> Result<GatewayAnswer, GatewayError> {
        let fault = self.begin("confirm").await?;
        let mut state = lock(&self.state);
        let Some(entry) = state.orders.get_mut(order) else {
            return Err(GatewayError::Refused("unknown order".into()));
        };
        if entry.status == GatewayStatus::AwaitingConfirmation {
            entry.status = GatewayStatus::Succeeded {
                reference: reference(order),
            };
            entry.charged += 1;
        }
        let answer = Self::answer(&entry.status, order);
        Self::finish(fault, answer)
    }

    async fn status(&self, order: &str) -> Result<GatewayStatus, GatewayError> {
        tokio::task::yield_now().await;
        if let (_, Some(f)) = self.script.call("status") {
            return Err(unknown(f));
        }
        Ok(lock(&self.state)
            .orders
            .get(order)
            .map(|o| o.status.clone())
            .unwrap_or(GatewayStatus::Unknown))
    }

    async fn cancel(&self, order: &str) -> Result<GatewayStatus, GatewayError> {
        let fault = self.begin("cancel").await?;
        let mut state = lock(&self.state);
        let entry = state.orders.entry(order.to_string()).or_insert(Order {
            amount: 0,
            status: GatewayStatus::Unknown,
            charged: 0,
        });
        if matches!(
            entry.status,
            GatewayStatus::Unknown | GatewayStatus::AwaitingConfirmation
        ) {
            entry.status = GatewayStatus::Declined {
                reason: "cancelled".into(),
            };
        }
        let status = entry.status.clone();
        Self::finish(fault, Ok(status))
    }

    async fn save_card(&self, one_time_token: &str) -> Result<SavedCard, GatewayError> {
        if let (_, Some(f)) = self.script.call("save_card") {
            return Err(unknown(f));
        }
        Ok(SavedCard {
            reusable_token: format!("saved-{one_time_token}"),
            brand: "Visa".into(),
            last4: "4242".into(),
            exp_month: 12,
            exp_year: 2030,
        })
    }
}

// ------------------------------------------------------------------ the registries

/// The federal registries (operation `check`), which verify what they are asked, and
/// the civil registry (`birth_record`), which knows no record; any fault is an
/// unavailable registry.
#[derive(Clone, Default)]
pub struct Registries {
    pub script: Arc<Script>,
    asked: Arc<Mutex<Vec<(RegistryRequest, u32)>>>,
}

impl Registries {
    /// Every check asked, with its attempt.
    pub fn asked(&self) -> Vec<(RegistryRequest, u32)> {
        lock(&self.asked).clone()
    }
}

impl Registry for Registries {
    async fn check(
        &self,
        request: &RegistryRequest,
        attempt: u32,
    ) -> Result<RegistryAnswer, RegistryUnavailable> {
        tokio::task::yield_now().await;
        let (_, fault) = self.script.call("check");
        lock(&self.asked).push((request.clone(), attempt));
        match fault {
            Some(f) => Err(RegistryUnavailable(format!("injected {f:?}"))),
            None => Ok(RegistryAnswer::Verified {
                source: "registry_double",
            }),
        }
    }
}

impl CivilRegistry for Registries {
    async fn birth_record(
        &self,
        _certificate: &str,
        _attempt: u32,
    ) -> Result<Option<BirthRecord>, RegistryUnavailable> {
        if let (_, Some(f)) = self.script.call("birth_record") {
            return Err(RegistryUnavailable(format!("injected {f:?}")));
        }
        Ok(None)
    }
}

// ------------------------------------------------------------------ the notifier

/// A message as the notifier was asked to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub to: String,
    pub subject: Option<String>,
    pub text: String,
}

/// SMS and e-mail (operations `send_sms`, `send_email`): a [`Fault::Lost`] send is
/// delivered and still reported failed; any other fault delivers nothing.
#[derive(Clone, Default)]
pub struct Outbox {
    pub script: Arc<Script>,
    sent: Arc<Mutex<Vec<Sent>>>,
}

impl Outbox {
    /// What was delivered, in order.
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }

    fn deliver(&self, operation: &'static str, message: Sent) -> Result<(), DeliveryError> {
        let fault = self.script.call(operation).1;
        if fault.is_none() || fault == Some(Fault::Lost) {
            lock(&self.sent).push(message);
        }
        match fault {
            Some(f) => Err(DeliveryError(format!("injected {f:?}"))),
            None => Ok(()),
        }
    }
}

impl Notifier for Outbox {
    async fn send_sms(&self, to: &Phone, text: &Secret<String>) -> Result<(), DeliveryError> {
        self.deliver(
            "send_sms",
            Sent {
                to: to.e164().to_string(),
                subject: None,
                text: text.expose().clone(),
            },
        )
    }

    async fn send_email(
        &self,
        to: &Email,
        subject: &str,
        text: &Secret<String>,
    ) -> Result<(), DeliveryError> {
        self.deliver(
            "send_email",
            Sent {
                to: to.as_str().to_string(),
                subject: Some(subject.to_string()),
                text: text.expose().clone(),
            },
        )
    }
}
