//! Refunds against the doubles: partial refunds up to what was paid, the key's replays,
//! a race for the remainder, a declined and a lost bank answer, another biller's payment.

use super::*;
use crate::validation::field_codes;
use RefundState::{Declined, Requested, Succeeded};

/// A refund world: account `a1` paid the bill [`UIN`] of biller `b1` (1 500 ₽) by card.
struct Paid {
    w: World,
    payment: PaymentId,
}

async fn paid() -> Paid {
    let w = world();
    let outcome = w.pay("a1", "pay-key-1").await.unwrap();
    assert_eq!(outcome.payment.status, PaymentStatus::Succeeded);
    Paid {
        payment: outcome.payment.id,
        w,
    }
}

fn uin() -> Uin {
    Uin::parse("uin", UIN).unwrap()
}

fn asking(amount: u64) -> RefundRequest {
    RefundRequest {
        uin: uin(),
        amount,
        reason: "Переплата".into(),
    }
}

fn biller() -> Refunder {
    Refunder::Biller("b1".into())
}

impl Paid {
    async fn refund(&self, by: &Refunder, key: &str, amount: u64) -> Result<Refund, AppError> {
        let (now, ask) = (self.w.clock.now(), asking(amount));
        let asked = self.w.service.refund(by, &self.payment, key, &ask, now);
        asked.await.map(|o| o.refund)
    }

    /// Asks for a refund that the service takes (whatever the bank answers) and checks
    /// the state it ended in and the payment's totals after it: most scenarios check the
    /// three together, so they say it in one line.
    async fn refunded(
        &self,
        by: &Refunder,
        key: &str,
        amount: u64,
        state: RefundState,
        totals: (u64, u64),
    ) -> Refund {
        let refund = self.refund(by, key, amount).await.unwrap();
        assert_eq!(refund.state, state);
        assert_eq!(self.totals(), totals);
        refund
    }

    fn totals(&self) -> (u64, u64) {
        let state = self.w.store.state();
        let payment = state.payment(&self.payment).unwrap();
        let refunds = &payment.refunds;
        (
            refunds.refunded(),
            refunds.bills.iter().map(|b| b.pending).sum(),
        )
    }

    fn refund_receipts(&self) -> usize {
        self.w
            .outbox
            .sent()
            .iter()
            .filter(|m| m.subject.as_deref() == Some(REFUND_RECEIPT_SUBJECT))
            .count()
    }
}

#[tokio::test]
async fn partial_refunds_add_up_to_what_was_paid_and_no_further() {
    let w = paid().await;
    w.refunded(&biller(), "refund-key-1", 50_000, Succeeded, (50_000, 0))
        .await;
    assert_eq!(w.refund_receipts(), 1);
    let admin = Refunder::Admin;
    w.refunded(&admin, "refund-key-2", 100_000, Succeeded, (150_000, 0))
        .await;
    let over = w.refund(&biller(), "refund-key-3", 1).await.unwrap_err();
    assert_eq!(
        field_codes(&over),
        [("/amount", "refund_exceeds_remaining")]
    );
    assert_eq!(w.w.acquirer.order(&w.payment).unwrap().refunded(), 150_000);
    assert_eq!(w.refund_receipts(), 2);
}

#[tokio::test]
async fn the_same_key_gives_the_same_refund_and_another_body_is_refused() {
    let w = paid().await;
    let first = w.refund(&biller(), "refund-key-1", 50_000).await.unwrap();
    let again =
        w.w.service
            .refund(
                &biller(),
                &w.payment,
                "refund-key-1",
                &asking(50_000),
                w.w.clock.now(),
            )
            .await
            .unwrap();
    assert!(again.replayed);
    assert_eq!(again.refund.id, first.id);
    assert_eq!(w.totals(), (50_000, 0));
    let other = w
        .refund(&biller(), "refund-key-1", 40_000)
        .await
        .unwrap_err();
    assert!(matches!(other, AppError::IdempotencyKeyReused), "{other:?}");
}

#[tokio::test]
async fn another_billers_payment_is_not_found() {
    let w = paid().await;
    let e = w
        .refund(&Refunder::Biller("b2".into()), "refund-key-1", 100)
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::NotFound("payment")), "{e:?}");
    assert!(w
        .w
        .service
        .biller_refunds(&"b2".into(), &w.payment)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(w.totals(), (0, 0));
}

#[tokio::test]
async fn a_declined_refund_leaves_the_totals_as_they_were() {
    let w = paid().await;
    w.w.acquirer.decline_refunds(Some("refund_declined"));
    let declined = w
        .refunded(&biller(), "refund-key-1", 50_000, Declined, (0, 0))
        .await;
    assert_eq!(declined.decline_reason.as_deref(), Some("refund_declined"));
    assert_eq!(w.refund_receipts(), 0);
}

#[tokio::test]
async fn a_lost_bank_answer_keeps_the_amount_held_until_the_same_request_comes_again() {
    let w = paid().await;
    w.w.acquirer.script.fail("refund", 1, Fault::Lost);
    let pending = w
        .refunded(&biller(), "refund-key-1", 50_000, Requested, (0, 50_000))
        .await;
    // The remainder counts what is held: 1 000 ₽ more cannot be asked for meanwhile.
    let over = w
        .refund(&biller(), "refund-key-2", 100_001)
        .await
        .unwrap_err();
    assert_eq!(
        field_codes(&over),
        [("/amount", "refund_exceeds_remaining")]
    );
    let settled = w
        .refunded(&biller(), "refund-key-1", 50_000, Succeeded, (50_000, 0))
        .await;
    assert_eq!(settled.id, pending.id);
    // The bank gave back once, under the one refund id.
    let order = w.w.acquirer.order(&w.payment).unwrap();
    assert_eq!(order.refunds.len(), 1);
}

#[tokio::test]
async fn two_refunds_racing_for_the_remainder_cannot_both_pass() {
    let w = paid().await;
    let (by_biller, by_admin) = (biller(), Refunder::Admin);
    let (a, b) = tokio::join!(
        w.refund(&by_biller, "refund-key-a", 150_000),
        w.refund(&by_admin, "refund-key-b", 150_000),
    );
    let passed = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(passed, 1, "{a:?} {b:?}");
    let refused = if a.is_err() { a } else { b }.unwrap_err();
    assert_eq!(
        field_codes(&refused),
        [("/amount", "refund_exceeds_remaining")]
    );
    assert_eq!(w.totals(), (150_000, 0));
    assert_eq!(w.w.acquirer.order(&w.payment).unwrap().refunded(), 150_000);
}

#[tokio::test]
async fn a_refund_racing_another_reads_the_payment_again() {
    let w = paid().await;
    w.w.store.script.fail("open_refund", 1, Fault::Conflict);
    // The first opening meets a conflict (another refund moved the payment): read again.
    w.refunded(&biller(), "refund-key-1", 10_000, Succeeded, (10_000, 0))
        .await;
}

#[test]
fn the_refund_graph_goes_from_requested_only() {
    assert!(Requested.can_become(Succeeded));
    assert!(Requested.can_become(Declined));
    for from in [Succeeded, Declined] {
        for to in [Requested, Succeeded, Declined] {
            assert!(!from.can_become(to));
        }
    }
}

#[test]
fn a_refund_body_names_every_bad_field() {
    let body = serde_json::json!({"uin": "123", "amount": 0, "extra": 1});
    let e = RefundRequest::parse(body.as_object().unwrap()).unwrap_err();
    let mut codes = field_codes(&e);
    codes.sort();
    assert_eq!(
        codes,
        [
            ("/amount", "invalid_amount"),
            ("/extra", "unknown_field"),
            ("/reason", "required"),
            ("/uin", "uin_format"),
        ]
    );
    let body = serde_json::json!({"uin": UIN, "amount": "100", "reason": "x"});
    let e = RefundRequest::parse(body.as_object().unwrap()).unwrap_err();
    assert_eq!(field_codes(&e), [("/amount", "invalid_type")]);
}
