//! The live acquirer: T-Bank Internet Acquiring (API v2, `https://securepay.tinkoff.ru/v2/`).
//!
//! The order id is our payment id (`OrderId`). A card payment is an `Init`: the bank
//! registers the order and answers its hosted form (`PaymentURL`), where the cardholder
//! types the card and passes 3-D Secure, so the payment `requires_confirmation` with that
//! URL. A saved card is an `Init` and a `Charge` with its `RebillId`. What the bank did
//! is read with `CheckOrder`, which lists every payment it holds for our order id: that
//! is how a lost answer is recovered, and how a second payment for one order is never
//! made. Nothing is kept in the table.
//!
//! The terminal key and password come from a Secrets Manager secret
//! ([`load_credentials`]); the password signs every request ([`token::token`]) and is
//! never logged, sent or put in an error. Every call has a deadline; a timeout, a
//! non-200 or an answer that does not parse is [`GatewayError::OutcomeUnknown`].

pub mod config;
pub mod http;
pub mod token;
pub mod wire;

use std::time::Duration;

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::services::payments::{
    GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway, RefundAnswer,
    RefundOrder, SavedCard,
};
pub use config::{
    load_credentials, Credentials, PayType, RebillInitiator, TbankConfig, TbankConfigError,
    PRODUCTION_API, SECRET_ARN_VARIABLE,
};
pub use token::{sign, token, verify_notification, NotificationError, NOTIFICATION_ACK};
use wire::{error_meaning, verdict, ErrorMeaning, OrderPayment, Reply, Verdict};
pub use wire::{Kopecks, Notice};

/// The prefix of the reusable token of a card saved with T-Bank: `tbrb_{RebillId}`.
pub const REBILL_TOKEN_PREFIX: &str = "tbrb_";
/// What an order cancelled before the bank saw it is registered with, so that the bank
/// itself remembers it as cancelled (the least a terminal takes: one rouble).
const VOID_ORDER_AMOUNT: u64 = 100;
/// How long the void order's form lives: the bank's least is a minute, with a margin for
/// the clocks.
const VOID_FORM_LIFETIME: Duration = Duration::from_secs(120);

/// What a refund did: the payment's status after it and the amounts before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub status: String,
    pub original: Option<Kopecks>,
    pub remaining: Option<Kopecks>,
}

pub struct TbankAcquirer {
    config: TbankConfig,
    http: http::Http,
}

fn unknown(what: impl std::fmt::Display) -> GatewayError {
    GatewayError::OutcomeUnknown(format!("T-Bank: {what}"))
}

/// `RedirectDueDate`: `YYYY-MM-DDTHH:MM:SS+00:00`.
fn due_date(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The RebillId of a saved card's reusable token.
fn rebill_id(reusable_token: &str) -> Option<&str> {
    let id = reusable_token.strip_prefix(REBILL_TOKEN_PREFIX)?;
    (!id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// What the bank holds for an order, as the trait's status.
fn status_of(verdict: Verdict) -> GatewayStatus {
    match verdict {
        Verdict::Unseen => GatewayStatus::Unknown,
        Verdict::Charged { payment_id } => GatewayStatus::Succeeded {
            reference: payment_id,
        },
        Verdict::Held { .. } | Verdict::InProgress { .. } => GatewayStatus::AwaitingConfirmation,
        Verdict::Dead { reason } => GatewayStatus::Declined { reason },
    }
}

impl TbankAcquirer {
    pub fn new(config: TbankConfig) -> Result<Self, TbankConfigError> {
        let http = http::Http::new(config.limits.timeout)
            .map_err(|e| TbankConfigError::Client(e.to_string()))?;
        Ok(Self { config, http })
    }

    pub fn config(&self) -> &TbankConfig {
        &self.config
    }

    /// One signed call. `Ok` is any answer the bank gave, `Success` or not.
    async fn call(
        &self,
        method: &str,
        mut body: Map<String, Value>,
    ) -> Result<Reply, GatewayError> {
        body.insert(
            "TerminalKey".into(),
            Value::String(self.config.credentials.terminal_key.clone()),
        );
        sign(&mut body, self.config.credentials.password.expose());
        let bytes = serde_json::to_vec(&body).map_err(|e| unknown(e.to_string()))?;
        let url = format!("{}/{method}", self.config.api_url);
        let raw = self
            .http
            .post_json(&url, bytes)
            .await
            .map_err(|e| unknown(format_args!("{method}: {e}")))?;
        Reply::parse(&raw).ok_or_else(|| unknown(format_args!("{method}: the answer is not JSON")))
    }

    /// Every payment the bank holds for `order`; none if it never saw it.
    pub async fn payments_of(&self, order: &str) -> Result<Vec<OrderPayment>, GatewayError> {
        let reply = self
            .call("CheckOrder", object(json!({ "OrderId": order })))
            .await?;
        if reply.success {
            return Ok(reply.payments);
        }
        match error_meaning(&reply.error_code) {
            ErrorMeaning::NotFound => Ok(Vec::new()),
            _ => Err(unknown(format_args!(
                "CheckOrder answered error {}",
                reply.error_code
            ))),
        }
    }

    /// Registers a payment session for `order`; answers its PaymentId and form URL.
    async fn init(
        &self,
        order: &str,
        amount: Kopecks,
        initiator: Option<RebillInitiator>,
        lifetime: Duration,
    ) -> Result<(String, Option<String>), GatewayError> {
        let mut body = object(json!({
            "OrderId": order,
            "Amount": amount.get(),
            "Description": "Оплата начислений",
            "PayType": self.config.pay_type.wire(),
            "Language": "ru",
            "RedirectDueDate": due_date(OffsetDateTime::now_utc() + lifetime),
        }));
        for (name, value) in [
            ("NotificationURL", &self.config.urls.notification),
            ("SuccessURL", &self.config.urls.success),
            ("FailURL", &self.config.urls.fail),
        ] {
            if let Some(v) = value {
                body.insert(name.into(), Value::String(v.clone()));
            }
        }
        let initiator = initiator.map_or("0", RebillInitiator::wire);
        body.insert(
            "DATA".into(),
            json!({ "OperationInitiatorType": initiator }),
        );
        let reply = self.call("Init", body).await?;
        if !reply.success {
            // `Init` never moves money: whatever went wrong, nothing was charged.
            return Err(GatewayError::Refused(
                match error_meaning(&reply.error_code) {
                    ErrorMeaning::Refused(reason) | ErrorMeaning::Declined(reason) => reason.into(),
                    _ => format!("acquirer_error_{}", reply.error_code),
                },
            ));
        }
        let payment_id = reply
            .text("PaymentId")
            .ok_or_else(|| unknown("Init answered no PaymentId"))?;
        Ok((payment_id, reply.text("PaymentURL")))
    }

    /// `Cancel` of one payment; `Ok(false)` if its state no longer allowed it.
    async fn cancel_payment(&self, payment_id: &str) -> Result<bool, GatewayError> {
        let reply = self
            .call("Cancel", object(json!({ "PaymentId": payment_id })))
            .await?;
        if reply.success {
            return Ok(true);
        }
        match error_meaning(&reply.error_code) {
            ErrorMeaning::WrongState | ErrorMeaning::NotFound => Ok(false),
            _ => Err(unknown(format_args!(
                "Cancel answered error {}",
                reply.error_code
            ))),
        }
    }

    /// Captures a hold (`Confirm`), then answers by the payment's state.
    async fn capture(&self, order: &str, payment_id: &str) -> Result<GatewayAnswer, GatewayError> {
        let reply = self
            .call("Confirm", object(json!({ "PaymentId": payment_id })))
            .await?;
        if !reply.success && error_meaning(&reply.error_code) != ErrorMeaning::WrongState {
            return Err(unknown(format_args!(
                "Confirm answered error {}",
                reply.error_code
            )));
        }
        // Confirmed, confirming, or moved on meanwhile: the order's state says which.
        self.answer_for_seen(order, self.payments_of(order).await?, false)
            .await
    }

    /// The answer for an order the bank has seen. `capture`: a hold may be confirmed.
    async fn answer_for_seen(
        &self,
        order: &str,
        payments: Vec<OrderPayment>,
        capture: bool,
    ) -> Result<GatewayAnswer, GatewayError> {
        match verdict(&payments) {
            Verdict::Charged { payment_id } => Ok(GatewayAnswer::Succeeded {
                reference: payment_id,
            }),
            Verdict::Held { payment_id } if capture => {
                Box::pin(self.capture(order, &payment_id)).await
            }
            Verdict::Held { .. } => Err(unknown("the payment is held, its confirmation pending")),
            Verdict::InProgress { .. } => Err(unknown(
                "the bank's payment of this order is still in progress (the cardholder has not finished its form)",
            )),
            Verdict::Dead { reason } => Ok(GatewayAnswer::Declined { reason }),
            Verdict::Unseen => Err(GatewayError::Refused("unknown_order".into())),
        }
    }

    /// After our `Init` of `ours`: if another payment of the order appeared meanwhile
    /// (a cancel that voided the order, a concurrent charge), ours is cancelled and the
    /// order answers by the others.
    async fn alone(&self, order: &str, ours: &str) -> Result<Option<GatewayAnswer>, GatewayError> {
        let others: Vec<OrderPayment> = self
            .payments_of(order)
            .await?
            .into_iter()
            .filter(|p| p.payment_id != ours)
            .collect();
        if others.is_empty() {
            return Ok(None);
        }
        self.cancel_payment(ours).await?;
        self.answer_for_seen(order, others, false).await.map(Some)
    }

    /// Charges a saved card: `Charge` of the session `Init` made.
    async fn rebill(
        &self,
        order: &str,
        payment_id: &str,
        rebill: &str,
    ) -> Result<GatewayAnswer, GatewayError> {
        let reply = self
            .call(
                "Charge",
                object(json!({ "PaymentId": payment_id, "RebillId": rebill })),
            )
            .await?;
        if reply.success {
            return match reply.text("Status").as_deref() {
                Some("CONFIRMED") => Ok(GatewayAnswer::Succeeded {
                    reference: payment_id.to_string(),
                }),
                Some("AUTHORIZED") => self.capture(order, payment_id).await,
                Some("REJECTED") => Ok(GatewayAnswer::Declined {
                    reason: wire::decline_reason("REJECTED", &reply.error_code),
                }),
                _ => {
                    self.answer_for_seen(order, self.payments_of(order).await?, true)
                        .await
                }
            };
        }
        match error_meaning(&reply.error_code) {
            ErrorMeaning::Declined(reason) => Ok(GatewayAnswer::Declined {
                reason: reason.into(),
            }),
            _ if reply.text("Status").as_deref() == Some("REJECTED") => {
                Ok(GatewayAnswer::Declined {
                    reason: "card_declined".into(),
                })
            }
            // Our session moved on meanwhile (a cancel of the order got there first):
            // the order answers what it is.
            ErrorMeaning::WrongState => {
                self.answer_for_seen(order, self.payments_of(order).await?, false)
                    .await
            }
            // Refused before anything moved; our session is cancelled so it cannot be
            // charged later.
            ErrorMeaning::Refused(reason) => {
                self.cancel_payment(payment_id).await?;
                Err(GatewayError::Refused(reason.into()))
            }
            _ => Err(unknown(format_args!(
                "Charge answered error {}",
                reply.error_code
            ))),
        }
    }

    /// Refunds `amount` (all that is left if `None`) of a charged payment (its bank
    /// reference, the PaymentId): `Cancel` with `refund_id` as `ExternalRequestId`, so a
    /// retry with the same id never refunds twice. A refund over what is left is
    /// `Refused("refund_exceeds_payment")`.
    pub async fn refund(
        &self,
        payment_id: &str,
        amount: Option<Kopecks>,
        refund_id: &str,
    ) -> Result<Refund, GatewayError> {
        if refund_id.is_empty() || refund_id.len() > 256 {
            return Err(GatewayError::Refused("invalid_refund_id".into()));
        }
        if amount.is_some_and(|a| a.get() == 0) {
            return Err(GatewayError::Refused("amount_not_accepted".into()));
        }
        let mut body = object(json!({
            "PaymentId": payment_id,
            "ExternalRequestId": refund_id,
        }));
        if let Some(a) = amount {
            body.insert("Amount".into(), a.into());
        }
        let reply = self.call("Cancel", body).await?;
        if reply.success {
            return Ok(Refund {
                status: reply.text("Status").unwrap_or_default(),
                original: reply.kopecks("OriginalAmount"),
                remaining: reply.kopecks("NewAmount"),
            });
        }
        Err(match error_meaning(&reply.error_code) {
            ErrorMeaning::Refused(reason) => GatewayError::Refused(reason.into()),
            ErrorMeaning::WrongState => GatewayError::Refused("payment_not_refundable".into()),
            ErrorMeaning::NotFound => GatewayError::Refused("unknown_payment".into()),
            _ => unknown(format_args!("Cancel answered error {}", reply.error_code)),
        })
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

impl PaymentGateway for TbankAcquirer {
    async fn charge(
        &self,
        order: &str,
        amount: u64,
        method: &GatewayMethod,
    ) -> Result<GatewayAnswer, GatewayError> {
        // The card is typed on the bank's form, so a card token from elsewhere is not
        // needed (nor sent); Apple Pay, mobile accounts and wallets are not taken here.
        let rebill = match method {
            GatewayMethod::CardToken(_) => None,
            GatewayMethod::SavedCard(token) => Some(rebill_id(token).ok_or_else(|| {
                GatewayError::Refused("saved_card_not_from_this_acquirer".into())
            })?),
            GatewayMethod::ApplePay(_) => {
                return Err(GatewayError::Refused("apple_pay_not_supported".into()))
            }
            GatewayMethod::Mobile(_) => {
                return Err(GatewayError::Refused("mobile_not_supported".into()))
            }
            GatewayMethod::Wallet(_) => {
                return Err(GatewayError::Refused("wallet_not_supported".into()))
            }
        };
        if order.is_empty() || order.len() > 36 {
            return Err(GatewayError::Refused("order_id_not_accepted".into()));
        }
        let amount = Kopecks::payable(amount)
            .ok_or_else(|| GatewayError::Refused("amount_not_accepted".into()))?;
        // An order the bank has seen answers what became of it: never a second session,
        // which the cardholder could pay as well.
        let seen = self.payments_of(order).await?;
        if !seen.is_empty() {
            return self.answer_for_seen(order, seen, true).await;
        }
        let initiator = rebill.map(|_| self.config.rebill_initiator);
        let (payment_id, url) = self
            .init(order, amount, initiator, self.config.limits.form_lifetime)
            .await?;
        if let Some(answer) = self.alone(order, &payment_id).await? {
            return Ok(answer);
        }
        match rebill {
            Some(rebill) => self.rebill(order, &payment_id, rebill).await,
            None => match url {
                Some(url) => Ok(GatewayAnswer::RequiresConfirmation {
                    reference: payment_id,
                    url,
                }),
                None => {
                    self.cancel_payment(&payment_id).await?;
                    Err(GatewayError::Refused(
                        "acquirer_gave_no_payment_form".into(),
                    ))
                }
            },
        }
    }

    async fn confirm(&self, order: &str) -> Result<GatewayAnswer, GatewayError> {
        let payments = self.payments_of(order).await?;
        self.answer_for_seen(order, payments, true).await
    }

    async fn status(&self, order: &str) -> Result<GatewayStatus, GatewayError> {
        Ok(status_of(verdict(&self.payments_of(order).await?)))
    }

    async fn cancel(&self, order: &str) -> Result<GatewayStatus, GatewayError> {
        let mut payments = self.payments_of(order).await?;
        if payments.is_empty() {
            // The bank never saw the order: it is registered and cancelled at once, so
            // the bank itself holds it as cancelled, and a charge still on its way
            // finds that (see `charge` and `alone`) instead of a clean order id.
            let amount = Kopecks::payable(VOID_ORDER_AMOUNT)
                .ok_or_else(|| unknown("the void amount is out of range"))?;
            // An order that cannot be voided now is not known to be safe: asked again
            // by the next reconciliation, not declined.
            let (void, _) = self
                .init(order, amount, None, VOID_FORM_LIFETIME)
                .await
                .map_err(|e| match e {
                    GatewayError::Refused(reason) => {
                        unknown(format_args!("the order could not be voided: {reason}"))
                    }
                    other => other,
                })?;
            self.cancel_payment(&void).await?;
            payments = self.payments_of(order).await?;
        }
        let mut cancelled = false;
        for p in payments.iter().filter(|p| wire::cancellable(&p.status)) {
            cancelled |= self.cancel_payment(&p.payment_id).await?;
        }
        if cancelled {
            payments = self.payments_of(order).await?;
        }
        Ok(status_of(verdict(&payments)))
    }

    async fn save_card(&self, _one_time_token: &str) -> Result<SavedCard, GatewayError> {
        // T-Bank saves a card only through a payment made with `Recurrent=Y`, whose
        // notification carries the RebillId; a one-time token cannot be turned into one.
        Err(GatewayError::Refused("card_saving_needs_a_payment".into()))
    }

    /// `Cancel` of the charge (`reference`, the bank's PaymentId) for `amount`, with the
    /// refund id as `ExternalRequestId`: asked again, the bank answers the first result.
    /// What the bank will not give back is `Declined`; a merchant balance too low for it
    /// stays `Refused` (nothing moved; ask again later).
    async fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError> {
        let amount = Kopecks::payable(refund.amount)
            .ok_or_else(|| GatewayError::Refused("amount_not_accepted".into()))?;
        match TbankAcquirer::refund(self, refund.reference, Some(amount), refund.refund_id).await {
            // The bank keeps no id of its own for a refund: its statement shows the charge.
            Ok(_) => Ok(RefundAnswer::Refunded {
                reference: refund.reference.to_string(),
            }),
            Err(GatewayError::Refused(reason))
                if matches!(
                    reason.as_str(),
                    "refund_exceeds_payment" | "payment_not_refundable" | "unknown_payment"
                ) =>
            {
                Ok(RefundAnswer::Declined { reason })
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::config::tests::credentials;
    use super::*;

    #[test]
    fn the_due_date_is_in_the_banks_format() {
        let at = OffsetDateTime::from_unix_timestamp(1_472_635_680).unwrap();
        assert_eq!(due_date(at), "2016-08-31T09:28:00+00:00");
    }

    #[test]
    fn a_reusable_token_is_a_rebill_id() {
        assert_eq!(rebill_id("tbrb_145919"), Some("145919"));
        assert_eq!(rebill_id("ctok_abc"), None);
        assert_eq!(rebill_id("tbrb_"), None);
        assert_eq!(rebill_id("tbrb_12a"), None);
        assert_eq!(rebill_id("tbrb_123456789012345678901"), None);
    }

    #[test]
    fn verdicts_answer_the_services_statuses() {
        assert_eq!(status_of(Verdict::Unseen), GatewayStatus::Unknown);
        assert_eq!(
            status_of(Verdict::Charged {
                payment_id: "1".into()
            }),
            GatewayStatus::Succeeded {
                reference: "1".into()
            }
        );
        assert_eq!(
            status_of(Verdict::InProgress {
                payment_id: "1".into()
            }),
            GatewayStatus::AwaitingConfirmation
        );
        assert_eq!(
            status_of(Verdict::Dead {
                reason: "order_cancelled".into()
            }),
            GatewayStatus::Declined {
                reason: "order_cancelled".into()
            }
        );
    }

    #[tokio::test]
    async fn unsupported_methods_are_refused_without_a_call() {
        // Nothing listens on this port: a call would be OutcomeUnknown, not Refused.
        let mut config = TbankConfig::new("http://127.0.0.1:9", credentials());
        config.limits.timeout = Duration::from_millis(200);
        let acquirer = TbankAcquirer::new(config).unwrap();
        for (method, reason) in [
            (
                GatewayMethod::ApplePay("e30=".into()),
                "apple_pay_not_supported",
            ),
            (
                GatewayMethod::Mobile("+79161234567".into()),
                "mobile_not_supported",
            ),
            (
                GatewayMethod::Wallet("410011234567890".into()),
                "wallet_not_supported",
            ),
            (
                GatewayMethod::SavedCard("ctok_1".into()),
                "saved_card_not_from_this_acquirer",
            ),
        ] {
            match acquirer.charge("order-1", 100, &method).await {
                Err(GatewayError::Refused(r)) => assert_eq!(r, reason),
                other => panic!("{method:?}: {other:?}"),
            }
        }
        match acquirer.save_card("tok_1").await {
            Err(GatewayError::Refused(r)) => assert_eq!(r, "card_saving_needs_a_payment"),
            other => panic!("{other:?}"),
        }
        match acquirer
            .charge("order-1", 0, &GatewayMethod::CardToken("tok_1".into()))
            .await
        {
            Err(GatewayError::Refused(r)) => assert_eq!(r, "amount_not_accepted"),
            other => panic!("{other:?}"),
        }
        // A lost answer is never a guess.
        match acquirer.status("order-1").await {
            Err(GatewayError::OutcomeUnknown(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}
