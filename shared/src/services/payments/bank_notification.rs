//! What the acquirer tells of a payment on its own: a notification, already verified
//! (its signature and terminal) by the adapter. Nothing in it settles money: it names a
//! payment, and that payment is settled the way reconciliation settles it, after
//! asking the bank (`status`), so receipts and billers' notices follow as they do there.

use super::*;

/// A verified notification as the service reads it: the payment it names (our order
/// id), the bank's reference of the charge, and the amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankNotification<'a> {
    pub order: &'a PaymentId,
    pub reference: &'a str,
    pub amount: u64,
}

/// What became of a notification. Both answers are acknowledged to the bank: it is told
/// once, however often it repeats itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// The payment was asked about and settled as far as the bank says.
    Applied(PaymentStatus),
    /// Nothing to do: why (a settled payment, another amount or another of the bank's
    /// payments, such as the void an order cancelled before the bank saw it is
    /// registered with).
    Ignored(&'static str),
}

impl<S: PaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    /// Applies a notification for the open payment of `owner` it names: only forward (a
    /// settled payment is never moved), and only once the bank confirms it.
    pub async fn apply_bank_notification(
        &self,
        owner: &Owner,
        notification: &BankNotification<'_>,
        now: OffsetDateTime,
    ) -> Result<NotificationOutcome, AppError> {
        let Some(payment) = self.store.payment(owner, notification.order).await? else {
            return Ok(NotificationOutcome::Ignored("unknown_payment"));
        };
        if payment.status.is_final() {
            return Ok(NotificationOutcome::Ignored("already_settled"));
        }
        let other_reference = payment
            .gateway_reference
            .as_deref()
            .is_some_and(|reference| reference != notification.reference);
        if payment.total != notification.amount || other_reference {
            return Ok(NotificationOutcome::Ignored("another_bank_payment"));
        }
        // No payment is too young to ask about: the bank has just spoken of it.
        let mut run = ReconcileRun::default();
        self.reconcile_one(owner, &payment.id, now, i64::MAX, &mut run)
            .await?;
        let after = self.store.payment(owner, &payment.id).await?;
        Ok(NotificationOutcome::Applied(
            after.map_or(payment.status, |p| p.status),
        ))
    }
}
