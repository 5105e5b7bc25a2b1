//! The payment service against the doubles of `crate::testing`: races, lost answers and
//! throttling that the end-to-end suite cannot make DynamoDB or the bank produce.

use super::*;
use crate::testing::{assert_unavailable, test_hasher, Acquirer, Clock, Fault, MemStore, Outbox};

const UIN: &str = "18810177200000012341";
const SNILS: &str = "11223344595";

type Service = PaymentService<MemStore, Acquirer, Outbox, MemStore>;

struct World {
    store: MemStore,
    acquirer: Acquirer,
    outbox: Outbox,
    clock: Clock,
    service: Service,
}

/// Account `a1`, whose verified SNILS the unpaid bill [`UIN`] (1 500 ₽) names.
fn world() -> World {
    let store = MemStore::new();
    let acquirer = Acquirer::default();
    let outbox = Outbox::default();
    store.add_citizen(&"a1".into(), SNILS);
    store.add_charge(UIN, 150_000, Category::Kindergarten, SNILS);
    let service = PaymentService::new(
        store.clone(),
        acquirer.clone(),
        outbox.clone(),
        store.clone(),
        test_hasher(),
    );
    World {
        store,
        acquirer,
        outbox,
        clock: Clock::new(),
        service,
    }
}

/// A request to pay the bill `uin` by the one-off card token `token`.
fn by_card_token(uin: &str, token: &str) -> PayRequest {
    PayRequest {
        uins: vec![Uin::parse("uin", uin).unwrap()],
        method: MethodRequest::CardToken(token.into()),
    }
}

fn receipts(outbox: &Outbox) -> usize {
    outbox
        .sent()
        .iter()
        .filter(|m| m.subject.as_deref() == Some(RECEIPT_SUBJECT))
        .count()
}

impl World {
    /// The citizen `account` pays [`UIN`] by card under the idempotency key `key`.
    async fn pay(&self, account: &str, key: &str) -> Result<PayOutcome, AppError> {
        self.pay_with(account, key, &by_card_token(UIN, "tok_visa"))
            .await
    }

    /// The citizen `account` sends `request` under the idempotency key `key`, now.
    async fn pay_with(
        &self,
        account: &str,
        key: &str,
        request: &PayRequest,
    ) -> Result<PayOutcome, AppError> {
        self.service
            .pay(
                &PayingAs::Citizen(account.into()),
                key,
                request,
                "citizen",
                self.clock.now(),
            )
            .await
    }

    /// One reconciliation run over every shard, following queued pages; the pages'
    /// results.
    async fn reconcile(&self, run: &str) -> Vec<Result<ReconcilePageOutcome, AppError>> {
        let now = self.clock.now();
        let mut pages = match self.service.plan_reconcile(run, now).await {
            Ok(pages) => pages,
            Err(e) => return vec![Err(e)],
        };
        let mut results = Vec::new();
        while let Some(page) = pages.pop() {
            results.push(
                self.service
                    .reconcile_page(&self.store, &page, 10, now, Duration::from_secs(60))
                    .await,
            );
            pages.append(&mut self.store.state().reconcile_pages);
        }
        results
    }

    fn charge(&self) -> StoredCharge {
        match self.store.state().charge(UIN) {
            Some(c) => c.clone(),
            None => panic!("the bill is gone"),
        }
    }

    fn stored(&self, id: &PaymentId) -> Payment {
        match self.store.state().payment(id) {
            Some(p) => p.clone(),
            None => panic!("payment {id} not stored"),
        }
    }

    /// The billers' notices queued.
    fn notices(&self) -> usize {
        self.store.state().payment_notices.len()
    }

    /// The payments stored.
    fn payments(&self) -> usize {
        self.store.state().payments.len()
    }

    /// Orders the bank moved money for, each with how often.
    fn charged(&self) -> Vec<(PaymentId, u32)> {
        self.acquirer
            .charges()
            .into_iter()
            .map(|(order, n)| (order.as_str().into(), n))
            .collect()
    }
}

#[tokio::test]
async fn two_citizens_racing_for_one_bill_open_one_payment() {
    let w = world();
    w.store.add_citizen(&"a2".into(), SNILS);
    let (first, second) = tokio::join!(w.pay("a1", "key-first-1"), w.pay("a2", "key-second-2"));
    let (won, lost) = match (first, second) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one opening should win: {other:?}"),
    };
    assert_eq!(won.payment.status, PaymentStatus::Succeeded);
    // The loser's transaction met the winner's lock; it read again and was told why.
    assert!(
        matches!(&lost, AppError::BillInPayment(u) | AppError::BillPaid(u) if u == UIN),
        "{lost:?}"
    );
    assert_eq!(w.charged(), [(won.payment.id.clone(), 1)]);
    let charge = w.charge();
    assert_eq!(charge.status, ChargeStatus::Paid);
    assert_eq!(
        w.store.state().paid_by.get(UIN),
        Some(&won.payment.id),
        "paid by the winner"
    );
    assert_eq!(w.payments(), 1, "no second payment stored");
}

#[tokio::test]
async fn a_stranger_losing_the_race_hears_only_that_the_bill_does_not_exist() {
    let w = world();
    w.store.add_account(&"stranger".into());
    let (first, second) =
        tokio::join!(w.pay("a1", "key-first-1"), w.pay("stranger", "key-other-2"));
    let outcomes = [&first, &second];
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(won, 1, "{first:?} {second:?}");
    // Whoever lost, a citizen who does not see the bill is told nothing about it.
    if let Err(e) = &second {
        assert!(matches!(e, AppError::BillMissing(u) if u == UIN), "{e:?}");
    }
    if let Err(e) = &first {
        assert!(
            matches!(e, AppError::BillInPayment(_) | AppError::BillPaid(_)),
            "{e:?}"
        );
    }
    assert_eq!(w.acquirer.charges().len(), 1);
}

#[tokio::test]
async fn an_opening_that_meets_a_changed_bill_reads_it_again_and_opens_once() {
    let w = world();
    // The bill changed between the read and the transaction (a biller's update).
    w.store.script.fail("open_payment", 1, Fault::Conflict);
    let outcome = w.pay("a1", "key-changed-1").await.unwrap();
    assert_eq!(outcome.payment.status, PaymentStatus::Succeeded);
    assert_eq!(w.store.script.calls("open_payment"), 2);
    assert_eq!(w.charged(), [(outcome.payment.id.clone(), 1)]);
    assert_eq!(
        w.acquirer.order(&outcome.payment.id).map(|o| o.amount),
        Some(outcome.payment.total),
        "charged the amount read the second time"
    );
    assert_eq!(w.payments(), 1);
}

#[tokio::test]
async fn a_replayed_key_answers_the_same_payment_and_charges_once() {
    let w = world();
    let first = w.pay("a1", "key-replay-1").await.unwrap();
    assert!(!first.replayed);
    let again = w.pay("a1", "key-replay-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.payment, first.payment);
    assert_eq!(w.acquirer.script.calls("charge"), 1);
    assert_eq!(receipts(&w.outbox), 1, "one receipt");
    assert_eq!(w.notices(), 1, "one biller notice");
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused_without_a_charge() {
    let w = world();
    w.pay("a1", "key-reused-1").await.unwrap();
    let other = by_card_token(UIN, "tok_other");
    let refused = w.pay_with("a1", "key-reused-1", &other).await;
    assert!(
        matches!(refused, Err(AppError::IdempotencyKeyReused)),
        "{refused:?}"
    );
    assert_eq!(w.acquirer.script.calls("charge"), 1);
}

#[tokio::test]
async fn two_requests_with_one_key_racing_open_one_payment() {
    let w = world();
    let (a, b) = tokio::join!(w.pay("a1", "key-double-1"), w.pay("a1", "key-double-1"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.payment.id, b.payment.id);
    assert_eq!(
        [a.replayed, b.replayed].iter().filter(|r| **r).count(),
        1,
        "the request that lost the key replays the other's payment"
    );
    assert_eq!(w.charged(), [(a.payment.id.clone(), 1)]);
    assert_eq!(w.charge().status, ChargeStatus::Paid);
}

#[tokio::test]
async fn a_lost_charge_answer_leaves_the_payment_pending_until_reconciliation_settles_it_once() {
    let w = world();
    w.acquirer.script.fail("charge", 1, Fault::Lost);
    let outcome = w.pay("a1", "key-lost-1").await.unwrap();
    let id = outcome.payment.id.clone();
    assert_eq!(outcome.payment.status, PaymentStatus::Pending);
    // The bank took the money; the bill stays locked by the payment.
    assert_eq!(w.charged(), [(id.clone(), 1)]);
    assert_eq!(w.charge().locked_by.as_deref(), Some(id.as_str()));
    assert_eq!(w.charge().status, ChargeStatus::Unpaid);

    // The citizen sends the request again: the same pending payment, nothing charged.
    let again = w.pay("a1", "key-lost-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.payment.status, PaymentStatus::Pending);
    assert_eq!(w.acquirer.script.calls("charge"), 1);

    w.clock.advance(600);
    for page in w.reconcile("r1").await {
        page.unwrap();
    }
    let settled = w.stored(&id);
    assert_eq!(settled.status, PaymentStatus::Succeeded);
    assert_eq!(
        settled.gateway_reference.as_deref(),
        Some(&*format!("ref-{id}"))
    );
    assert_eq!(w.charge().status, ChargeStatus::Paid);
    assert_eq!(w.store.state().paid_by.get(UIN), Some(&id));
    assert!(
        w.store.state().reconcile.is_empty(),
        "nothing left to reconcile"
    );
    assert_eq!(w.notices(), 1);

    // A second run finds nothing to do and changes nothing.
    for page in w.reconcile("r2").await {
        page.unwrap();
    }
    assert_eq!(w.acquirer.script.calls("charge"), 1);
    assert_eq!(w.notices(), 1);
    assert_eq!(receipts(&w.outbox), 1);
}

#[tokio::test]
async fn a_settle_whose_answer_was_lost_is_finished_without_settling_twice() {
    let w = world();
    w.store.script.fail("settle", 1, Fault::Lost);
    assert_unavailable(&w.pay("a1", "key-settle-1").await);
    // The transaction went through: paid once, but nothing after it was done.
    let id = match w.store.state().paid_by.get(UIN) {
        Some(id) => id.clone(),
        None => panic!("the bill was not paid"),
    };
    assert_eq!(w.stored(&id).status, PaymentStatus::Succeeded);
    assert_eq!(w.notices(), 0);
    assert!(w.store.state().reconcile.contains_key(&id));

    // Asked again, the citizen gets the settled payment; the bank is not asked again.
    let again = w.pay("a1", "key-settle-1").await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.payment.id, id);
    assert_eq!(again.payment.status, PaymentStatus::Succeeded);
    assert_eq!(w.acquirer.script.calls("charge"), 1);

    // Reconciliation queues the billers' notices it finds missing, once, and settles
    // nothing again.
    w.clock.advance(600);
    for page in w.reconcile("r1").await {
        page.unwrap();
    }
    assert_eq!(w.store.script.calls("settle"), 1);
    assert_eq!(w.notices(), 1);
    assert!(w.store.state().reconcile.is_empty());
    assert_eq!(w.charged(), [(id, 1)]);
}

#[tokio::test]
async fn a_confirmation_that_loses_to_reconciliation_answers_the_settled_payment() {
    let w = world();
    w.acquirer
        .reply_with(crate::testing::Reply::AskConfirmation);
    let opened = w.pay("a1", "key-3ds-1").await.unwrap();
    let id = opened.payment.id.clone();
    assert_eq!(opened.payment.status, PaymentStatus::RequiresConfirmation);
    // While the bank finishes the confirmation, a reconciliation run settles the payment
    // first (the cardholder confirmed at the bank).
    let racer = id.clone();
    w.store.race("settle", 1, move |state| {
        if let Some(p) = state.payments.values_mut().find(|p| p.id == racer) {
            p.status = PaymentStatus::Succeeded;
            p.gateway_reference = Some(format!("ref-{racer}"));
        }
        if let Some(c) = state.charges.get_mut(UIN) {
            c.status = ChargeStatus::Paid;
            c.locked_by = None;
            c.version += 1;
        }
        state.paid_by.insert(UIN.into(), racer.clone());
    });
    let confirmed = w
        .service
        .confirm(&PayingAs::Citizen("a1".into()), &id, w.clock.now())
        .await
        .unwrap();
    assert_eq!(confirmed.status, PaymentStatus::Succeeded);
    assert_eq!(confirmed.id, id);
    // The settle that lost does not send a receipt or queue notices a second time.
    assert_eq!(receipts(&w.outbox), 0);
    assert_eq!(w.notices(), 0);
    assert_eq!(w.charged(), [(id, 1)]);
}

/// Three payments whose charge never reached the bank's answer (pending), then what the
/// bank made of each.
async fn three_pending(w: &World) -> [PaymentId; 3] {
    let uins = ["18810177200000012368", "18810177200000012376", UIN];
    let mut ids = Vec::new();
    for (i, uin) in uins.iter().enumerate() {
        if *uin != UIN {
            w.store.add_charge(uin, 10_000, Category::Clubs, SNILS);
        }
        w.acquirer.script.fail_next("charge", Fault::Unavailable);
        let request = by_card_token(uin, "tok_visa");
        let outcome = w
            .pay_with("a1", &format!("key-pending-{i}"), &request)
            .await
            .unwrap();
        assert_eq!(outcome.payment.status, PaymentStatus::Pending);
        ids.push(outcome.payment.id);
    }
    match ids.try_into() {
        Ok(ids) => ids,
        Err(_) => panic!("three payments"),
    }
}

#[tokio::test]
async fn reconciliation_settles_by_what_the_bank_did_with_each_order() {
    let w = world();
    let [charged, declined, unseen] = three_pending(&w).await;
    assert!(
        w.acquirer.charges().is_empty(),
        "no charge reached the bank"
    );
    // The bank charged one order late, declined another, and never saw the third.
    w.acquirer.decide(
        &charged,
        GatewayStatus::Succeeded {
            reference: "late".into(),
        },
    );
    w.acquirer.decide(
        &declined,
        GatewayStatus::Declined {
            reason: "insufficient_funds".into(),
        },
    );
    w.clock.advance(600);
    let outcomes = w.reconcile("r1").await;
    let settled: usize = outcomes
        .into_iter()
        .map(|page| page.unwrap().run.settled)
        .sum();
    assert_eq!(settled, 3);

    let paid = w.stored(&charged);
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    let paid_uin = paid.bills[0].uin.as_str();
    assert_eq!(w.store.state().paid_by.get(paid_uin), Some(&charged));

    let refused = w.stored(&declined);
    assert_eq!(refused.status, PaymentStatus::Declined);
    assert_eq!(
        refused.decline_reason.as_deref(),
        Some("insufficient_funds")
    );
    // The order the bank never saw is cancelled there first, so it can never be charged.
    let cancelled = w.stored(&unseen);
    assert_eq!(cancelled.status, PaymentStatus::Declined);
    assert_eq!(
        w.acquirer.order(&unseen).map(|o| o.status),
        Some(GatewayStatus::Declined {
            reason: "cancelled".into()
        })
    );
    for p in [&refused, &cancelled] {
        let state = w.store.state();
        let bill = &state.charges[p.bills[0].uin.as_str()];
        assert_eq!(
            (bill.status, bill.locked_by.as_ref()),
            (ChargeStatus::Unpaid, None),
            "a declined payment frees its bill"
        );
    }
    assert!(w.store.state().reconcile.is_empty());
    assert_eq!(w.charged(), [(charged, 1)]);
}

#[tokio::test]
async fn a_throttled_store_leaves_the_payment_to_the_next_run() {
    let w = world();
    w.acquirer.script.fail("charge", 1, Fault::Unavailable);
    let id = w.pay("a1", "key-throttle-1").await.unwrap().payment.id;
    w.acquirer.decide(
        &id,
        GatewayStatus::Succeeded {
            reference: "late".into(),
        },
    );
    w.clock.advance(600);
    w.store.script.fail_next("settle", Fault::Unavailable);
    let failed: Vec<AppError> = w
        .reconcile("r1")
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        matches!(failed.as_slice(), [AppError::StoreUnavailable(_)]),
        "the payment's page fails and comes back: {failed:?}"
    );
    assert_eq!(w.stored(&id).status, PaymentStatus::Pending);
    assert_eq!(w.charge().locked_by.as_deref(), Some(id.as_str()));
    assert!(w.store.state().reconcile.contains_key(&id));
    assert!(
        !w.store.state().runs["r1"].2,
        "the run is not complete while a page failed"
    );

    for page in w.reconcile("r2").await {
        page.unwrap();
    }
    assert_eq!(w.stored(&id).status, PaymentStatus::Succeeded);
    assert_eq!(w.charge().status, ChargeStatus::Paid);
    assert!(w.store.state().reconcile.is_empty());
    assert_eq!(w.charged(), [(id, 1)]);
    assert!(w.store.state().runs["r2"].2, "the second run completes");
}

#[tokio::test]
async fn a_bank_notification_settles_a_waiting_payment_once_the_bank_confirms_it() {
    let w = world();
    w.acquirer
        .reply_with(crate::testing::Reply::AskConfirmation);
    let payment = w.pay("a1", "key-notified-1").await.unwrap().payment;
    assert_eq!(payment.status, PaymentStatus::RequiresConfirmation);
    let (account, reference) = (Owner::Citizen("a1".into()), format!("ref-{}", payment.id));
    let apply = |amount: u64| {
        let notification = BankNotification {
            order: &payment.id,
            reference: &reference,
            amount,
        };
        let (service, now) = (&w.service, w.clock.now());
        let account = &account;
        async move {
            service
                .apply_bank_notification(account, &notification, now)
                .await
                .unwrap()
        }
    };
    // Another of the bank's payments under this order (a void's rouble): nothing moves.
    let other = apply(100).await;
    assert_eq!(other, NotificationOutcome::Ignored("another_bank_payment"));
    // The bank does not say it charged yet: the payment keeps waiting.
    let early = apply(payment.total).await;
    assert_eq!(
        early,
        NotificationOutcome::Applied(PaymentStatus::RequiresConfirmation)
    );
    assert_eq!(w.charge().status, ChargeStatus::Unpaid);

    w.acquirer.decide(
        &payment.id,
        GatewayStatus::Succeeded {
            reference: reference.clone(),
        },
    );
    let applied = apply(payment.total).await;
    assert_eq!(
        applied,
        NotificationOutcome::Applied(PaymentStatus::Succeeded)
    );
    assert_eq!(w.charge().status, ChargeStatus::Paid);
    assert_eq!((receipts(&w.outbox), w.notices()), (1, 1));
    // The bank repeating itself changes nothing and sends nothing again.
    let again = apply(payment.total).await;
    assert_eq!(again, NotificationOutcome::Ignored("already_settled"));
    assert_eq!((receipts(&w.outbox), w.notices()), (1, 1));
}

#[path = "refund_tests.rs"]
mod refunds;
