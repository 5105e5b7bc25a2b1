//! Scheduled autopays against the doubles of `crate::testing`: a page that fails
//! part-way comes back and pays nothing twice.

use super::*;
use crate::domain::PaymentId;
use crate::services::payments::{MethodKind, PaymentService, SavedMethod};
use crate::testing::{
    assert_unavailable, test_hasher, Acquirer, Clock, Fault, MemStore, Outbox, Reply,
};

const SNILS: &str = "11223344595";
const FIRST: &str = "18810177200000012341";
const SECOND: &str = "18810177200000012368";

struct World {
    store: MemStore,
    acquirer: Acquirer,
    clock: Clock,
    payments: PaymentService<MemStore, Acquirer, Outbox, MemStore>,
    charges: ChargeService<MemStore>,
    outbox: Outbox,
}

/// Account `a1` with a verified SNILS, a saved card, two unpaid utility bills naming
/// the SNILS, and an autopay of its utilities on the 1st of the month (the clock's day).
fn world() -> World {
    let store = MemStore::new();
    store.add_citizen(&"a1".into(), SNILS);
    for uin in [FIRST, SECOND] {
        store.add_charge(uin, 250_000, Category::Utilities, SNILS);
    }
    store.add_method(
        &"a1".into(),
        SavedMethod {
            id: "pm_1".into(),
            kind: MethodKind::Card,
            label: "Visa •••• 4242".into(),
            brand: Some("Visa".into()),
            last4: Some("4242".into()),
            exp_month: Some(12),
            exp_year: Some(2030),
            gateway_token: Some("saved-tok".into()),
            phone: None,
            wallet: None,
            created_at: 0,
        },
    );
    store.add_autopay(Autopay {
        id: "ap_1".into(),
        account_id: "a1".into(),
        name: "ЖКУ".into(),
        matching: Match::Category {
            category: Category::Utilities,
        },
        method_id: "pm_1".into(),
        limit: 1_000_000,
        trigger: Trigger::Monthly { day: 1 },
        status: AutopayStatus::Active,
        paused_reason: None,
        created_at: 0,
        generation: 0,
    });
    let acquirer = Acquirer::default();
    let outbox = Outbox::default();
    World {
        payments: PaymentService::new(
            store.clone(),
            acquirer.clone(),
            outbox.clone(),
            store.clone(),
            test_hasher(),
        ),
        charges: ChargeService::new(store.clone(), test_hasher()),
        store,
        acquirer,
        clock: Clock::new(),
        outbox,
    }
}

impl World {
    fn page(&self) -> SchedulePage {
        SchedulePage {
            run: "2026-12-01#e1".into(),
            date: self.clock.now().to_offset(MOSCOW).date(),
            trigger: Trigger::Monthly { day: 1 },
            shard: Shard::of("ap_1", SCHEDULE_SHARDS),
            after: None,
        }
    }

    async fn run_page(&self) -> Result<PageOutcome, AppError> {
        let service = AutopayService::new(&self.store, &self.payments, &self.charges, &self.outbox);
        service
            .run_page(&self.store, &self.page(), 50, self.clock.now())
            .await
    }

    fn status(&self, uin: &str) -> (ChargeStatus, Option<PaymentId>) {
        let state = self.store.state();
        match state.charge(uin) {
            Some(c) => (c.status, state.paid_by.get(uin).cloned()),
            None => panic!("no bill {uin}"),
        }
    }

    /// How often the bank moved money for each bill.
    fn charged_per_bill(&self) -> Vec<(String, u32)> {
        let state = self.store.state();
        let mut per_bill: Vec<(String, u32)> = self
            .acquirer
            .charges()
            .into_iter()
            .map(|(order, n)| {
                let uin = state
                    .payment(&order.as_str().into())
                    .map(|p| p.bills[0].uin.as_str().to_string())
                    .unwrap_or(order);
                (uin, n)
            })
            .collect();
        per_bill.sort();
        per_bill
    }
}

#[tokio::test]
async fn a_page_that_fails_part_way_comes_back_and_pays_nothing_twice() {
    let w = world();
    // The store throttles the opening of the second bill's payment.
    w.store.script.fail("open_payment", 2, Fault::Unavailable);
    // The page fails, to come back.
    assert_unavailable(&w.run_page().await);
    let paid = [FIRST, SECOND]
        .into_iter()
        .filter(|u| w.status(u).0 == ChargeStatus::Paid)
        .count();
    assert_eq!(paid, 1, "the bill before the failure is paid");
    assert!(
        w.store.state().schedule_pages.is_empty(),
        "no next page queued after a failed one"
    );

    // The queue delivers the page again: the rest is paid, the paid bill is not.
    let outcome = w.run_page().await.unwrap();
    assert_eq!((outcome.ran, outcome.failed), (1, 0));
    for uin in [FIRST, SECOND] {
        assert_eq!(w.status(uin).0, ChargeStatus::Paid, "{uin}");
    }
    assert_eq!(
        w.charged_per_bill(),
        [(FIRST.to_string(), 1), (SECOND.to_string(), 1)]
    );
    // Delivered a third time (at least once), it still pays nothing more.
    w.run_page().await.unwrap();
    assert_eq!(w.acquirer.script.calls("charge"), 2);
}

#[tokio::test]
async fn a_page_whose_settle_answer_was_lost_comes_back_without_charging_again() {
    let w = world();
    // The first bill's settle goes through, but its answer is lost.
    w.store.script.fail("settle", 1, Fault::Lost);
    assert_unavailable(&w.run_page().await);
    let outcome = w.run_page().await.unwrap();
    assert_eq!(outcome.ran, 1);
    for uin in [FIRST, SECOND] {
        assert_eq!(w.status(uin).0, ChargeStatus::Paid, "{uin}");
    }
    assert_eq!(
        w.charged_per_bill(),
        [(FIRST.to_string(), 1), (SECOND.to_string(), 1)]
    );
    let autopay =
        w.store.state().autopays[&(AccountId::from("a1"), AutopayId::from("ap_1"))].clone();
    assert_eq!(
        autopay.status,
        AutopayStatus::Active,
        "not paused by a store fault"
    );
}

#[tokio::test]
async fn a_declined_payment_pauses_the_autopay_and_tells_the_citizen() {
    let w = world();
    w.acquirer
        .reply_with(Reply::Decline("insufficient_funds".into()));
    let outcome = w.run_page().await.unwrap();
    assert_eq!(outcome.ran, 1);
    // The first decline stops the run: the second bill is not tried.
    assert_eq!(w.acquirer.script.calls("charge"), 1);
    for uin in [FIRST, SECOND] {
        assert_eq!(w.status(uin), (ChargeStatus::Unpaid, None), "{uin}");
    }
    let autopay =
        w.store.state().autopays[&(AccountId::from("a1"), AutopayId::from("ap_1"))].clone();
    assert_eq!(autopay.status, AutopayStatus::Paused);
    assert_eq!(autopay.paused_reason.as_deref(), Some("insufficient_funds"));
    let letters = w.outbox.sent();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].to, "a1@example.ru");
    assert!(
        letters[0].text.contains("приостановлен"),
        "{}",
        letters[0].text
    );
    // Paused, it pays nothing on the page's next delivery.
    let again = w.run_page().await.unwrap();
    assert_eq!(again.ran, 0);
    assert_eq!(w.acquirer.script.calls("charge"), 1);
}

/// A monthly autopay of a charity fund pays once a month: runs twice in one month pay
/// once, a run the next month pays again, each a charge the portal issued.
#[tokio::test]
async fn a_payee_autopay_pays_once_a_month() {
    let w = world();
    let fund = serde_json::json!({"payee_id": "charity-children", "amount": 50_000});
    let mut errors = Vec::new();
    let matching = payee::parse_payee_match(&fund, &mut errors).unwrap();
    w.store.add_autopay(Autopay {
        id: "ap_2".into(),
        account_id: "a1".into(),
        name: "Фонд".into(),
        matching,
        method_id: "pm_1".into(),
        limit: 100_000,
        trigger: Trigger::Monthly { day: 6 },
        status: AutopayStatus::Active,
        paused_reason: None,
        created_at: 0,
        generation: 0,
    });
    let service = AutopayService::new(&w.store, &w.payments, &w.charges, &w.outbox);
    let day = |month, d| time::Date::from_calendar_date(2026, month, d).unwrap();
    let now = w.clock.now();
    for date in [
        day(time::Month::December, 6),
        day(time::Month::December, 6),
        day(time::Month::January, 6),
    ] {
        assert!(service
            .run_one(&"a1".into(), &"ap_2".into(), date, now)
            .await
            .unwrap());
    }
    let portal: Vec<String> = w
        .store
        .state()
        .charges
        .keys()
        .filter(|u| u.starts_with("0355"))
        .cloned()
        .collect();
    assert_eq!(portal.len(), 2, "{portal:?}");
    assert_eq!(w.acquirer.charges().len(), 2);
    // A new-bill trigger or an amount over the limit is refused.
    let mut autopay = w.store.state().autopays[&("a1".into(), "ap_2".into())].clone();
    autopay.trigger = Trigger::NewBill;
    autopay.limit = 10;
    let codes = crate::validation::field_codes(&payee::check_payee_autopay(&autopay).unwrap_err())
        .into_iter()
        .map(|(_, c)| c)
        .collect::<Vec<_>>();
    assert_eq!(codes, ["payee_needs_schedule", "amount_over_limit"]);
}

/// A run is planned for the day it is given (the day its schedule event was due), not
/// the clock's: that day's monthly and weekly shards, each page carrying the day.
#[tokio::test]
async fn a_run_is_planned_for_the_day_it_is_given() {
    let w = world();
    let service = AutopayService::new(&w.store, &w.payments, &w.charges, &w.outbox);
    let day = time::Date::from_calendar_date(2027, time::Month::January, 5).unwrap();
    let pages = service
        .plan_scheduled("2027-01-05#e1", day, w.clock.now())
        .await
        .unwrap();
    assert_eq!(pages.len(), 2 * (usize::from(SCHEDULE_SHARDS) + 1));
    assert!(pages
        .iter()
        .all(|p| p.date == day && p.run == "2027-01-05#e1"));
    let triggers: std::collections::BTreeSet<String> = pages
        .iter()
        .map(|p| serde_json::to_string(&p.trigger).unwrap())
        .collect();
    // 2027-01-05 is a Tuesday.
    assert_eq!(
        triggers,
        [
            r#"{"type":"monthly","day":5}"#.to_string(),
            r#"{"type":"weekly","weekday":2}"#.to_string()
        ]
        .into_iter()
        .collect()
    );
}
