//! The integrations' doubles: an acquirer, the registries and a notifier, each with a
//! [`Script`] of faults.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::script::{lock, Fault, Script};
use crate::domain::{Email, Phone};
use crate::redact::Secret;
use crate::services::codes::{DeliveryError, Notifier};
use crate::services::payments::{
    GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway, RefundAnswer,
    RefundOrder, SavedCard,
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
    /// What was given back, by refund id: each id at most once.
    pub refunds: BTreeMap<String, u64>,
}

impl Order {
    fn new(amount: u64, status: GatewayStatus, charged: u32) -> Self {
        Self {
            amount,
            status,
            charged,
            refunds: BTreeMap::new(),
        }
    }

    /// Kopecks given back so far.
    pub fn refunded(&self) -> u64 {
        self.refunds.values().sum()
    }
}

/// An acquirer that charges an order at most once, as the real one promises, and gives
/// back at most what it charged, once per refund id; operations `charge`, `confirm`,
/// `status`, `cancel`, `refund`. A [`Fault::Lost`] charge takes the money and
/// answers `OutcomeUnknown`; any other fault answers `OutcomeUnknown` having done nothing.
#[derive(Clone, Default)]
pub struct Acquirer {
    pub script: Arc<Script>,
    state: Arc<Mutex<AcquirerState>>,
}

#[derive(Default)]
struct AcquirerState {
    reply: Option<Reply>,
    /// Why new refunds are declined, if they are.
    refund_decline: Option<String>,
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

    /// New refunds are declined with this reason from now on (`None`: they are made).
    pub fn decline_refunds(&self, reason: Option<&str>) {
        lock(&self.state).refund_decline = reason.map(str::to_string);
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
        let entry = state
            .orders
            .entry(order.to_string())
            .or_insert_with(|| Order::new(0, GatewayStatus::Unknown, 0));
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
            Order::new(amount, status, charged)
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
        let entry = state
            .orders
            .entry(order.to_string())
            .or_insert_with(|| Order::new(0, GatewayStatus::Unknown, 0));
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

    async fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError> {
        let fault = self.begin("refund").await?;
        let answer = self.make_refund(refund);
        Self::finish(fault, Ok(answer))
    }
}

fn refund_reference(refund_id: &str) -> String {
    format!("rfnd-{refund_id}")
}

impl Acquirer {
    /// A refund as the bank makes it: an id seen before answers as it did; a new one gives
    /// back what it asks if the order is charged and that much remains.
    fn make_refund(&self, refund: &RefundOrder<'_>) -> RefundAnswer {
        let mut state = lock(&self.state);
        let decline = state.refund_decline.clone();
        let declined = |reason: &str| RefundAnswer::Declined {
            reason: reason.into(),
        };
        let Some(entry) = state.orders.get_mut(refund.order) else {
            return declined("unknown_order");
        };
        if entry.refunds.contains_key(refund.refund_id) {
            return RefundAnswer::Refunded {
                reference: refund_reference(refund.refund_id),
            };
        }
        if !matches!(entry.status, GatewayStatus::Succeeded { .. }) {
            return declined("order_not_charged");
        }
        if let Some(reason) = decline {
            return declined(&reason);
        }
        if refund.amount == 0 || refund.amount > entry.amount.saturating_sub(entry.refunded()) {
            return declined("refund_exceeds_payment");
        }
        entry
            .refunds
            .insert(refund.refund_id.to_string(), refund.amount);
        RefundAnswer::Refunded {
            reference: refund_reference(refund.refund_id),
        }
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

#[cfg(test)]
mod refund_tests {
    use super::*;

    fn asked<'a>(refund_id: &'a str, amount: u64) -> RefundOrder<'a> {
        RefundOrder {
            order: "p1",
            reference: "ref-p1",
            amount,
            refund_id,
        }
    }

    #[tokio::test]
    async fn the_double_gives_back_at_most_what_it_charged_once_per_refund_id() {
        let acquirer = Acquirer::default();
        let card = GatewayMethod::CardToken("tok".into());
        acquirer.charge("p1", 1_000, &card).await.unwrap();
        let first = acquirer.refund(&asked("r1", 600)).await.unwrap();
        assert_eq!(
            first,
            RefundAnswer::Refunded {
                reference: "rfnd-r1".into()
            }
        );
        // Asked again with the same id: the same answer, nothing more given back.
        assert_eq!(acquirer.refund(&asked("r1", 600)).await.unwrap(), first);
        assert_eq!(
            acquirer.refund(&asked("r2", 401)).await.unwrap(),
            RefundAnswer::Declined {
                reason: "refund_exceeds_payment".into()
            }
        );
        acquirer.decline_refunds(Some("refund_declined"));
        assert!(matches!(
            acquirer.refund(&asked("r3", 400)).await.unwrap(),
            RefundAnswer::Declined { .. }
        ));
        acquirer.decline_refunds(None);
        acquirer.refund(&asked("r3", 400)).await.unwrap();
        assert_eq!(acquirer.order("p1").unwrap().refunded(), 1_000);
    }
}
