//! The invariants the chaos run checks once the faults are lifted and the queues are
//! drained. Everything here works on data already read from the stack, so it is
//! unit-tested.

use std::collections::{BTreeMap, BTreeSet};

use super::api::{Bad, Phase};
use crate::table::StoredPayment;

/// An order in the sandbox acquirer's records (`ACQORDER#{payment id}`).
#[derive(Debug, Clone)]
pub struct OrderRow {
    pub order: String,
    pub state: String,
    pub amount: u64,
}

/// A checked profile field of an account the run registered.
#[derive(Debug, Clone)]
pub struct VerificationRow {
    pub account: String,
    pub field: String,
    pub state: String,
}

/// A notice that was due: who should have heard of what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Due {
    pub to: String,
    pub uin: String,
}

/// Everything the checks read.
#[derive(Debug, Default)]
pub struct Observed {
    pub bills: usize,
    /// Bills still held by a payment (`lock_payment`), with the payment.
    pub held_bills: Vec<(String, String)>,
    pub payments: Vec<StoredPayment>,
    pub orders: Vec<OrderRow>,
    pub verifications: Vec<VerificationRow>,
    /// Text of every message parked in the verification dead-letter queue.
    pub verification_dlq: Vec<String>,
    pub bill_notices_due: Vec<Due>,
    /// New-bill notices found in the outbox, per recipient and UIN.
    pub bill_notices_sent: BTreeMap<Due, usize>,
    pub bill_notices_dlq: Vec<String>,
    /// Payment notices in the billers' inboxes, per `uin#payment id`.
    pub payment_notices_delivered: BTreeMap<String, usize>,
    pub payment_notices_dlq: Vec<String>,
    /// Receipts found in the outbox, per payment id.
    pub receipts: BTreeMap<String, usize>,
    pub answers_bad: Vec<Bad>,
    pub answers_faulty: usize,
}

#[derive(Debug, Clone)]
pub struct Invariant {
    pub name: &'static str,
    pub held: bool,
    pub numbers: String,
    pub details: Vec<String>,
}

const FINAL_PAYMENT: [&str; 2] = ["succeeded", "declined"];
const FINAL_VERIFICATION: [&str; 2] = ["verified", "rejected"];
/// Details kept per invariant for the report.
const DETAILS: usize = 10;

fn invariant(name: &'static str, numbers: String, details: Vec<String>) -> Invariant {
    Invariant {
        name,
        held: details.is_empty(),
        numbers,
        details: details.into_iter().take(DETAILS).collect(),
    }
}

fn in_any(dlq: &[String], needle: &str) -> bool {
    dlq.iter().any(|m| m.contains(needle))
}

pub fn check(o: &Observed) -> Vec<Invariant> {
    let succeeded = crate::table::succeeded(&o.payments);

    // 1. Every bill paid at most once.
    let paid = crate::table::paid_by_bill(&succeeded);
    let twice: Vec<String> = paid
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(uin, ids)| format!("bill {uin} paid by {}", ids.join(", ")))
        .collect();
    let once = invariant(
        "every bill paid at most once",
        format!(
            "{} bills, {} paid, {} paid more than once",
            o.bills,
            paid.len(),
            twice.len()
        ),
        twice,
    );

    // 2. Every charge of the acquirer belongs to exactly one succeeded payment.
    let by_id: BTreeMap<&str, &StoredPayment> =
        succeeded.iter().map(|p| (p.id.as_str(), *p)).collect();
    let charged: Vec<&OrderRow> = o.orders.iter().filter(|r| r.state == "charged").collect();
    let mut problems = Vec::new();
    let mut charged_ids = BTreeSet::new();
    for r in &charged {
        charged_ids.insert(r.order.as_str());
        match by_id.get(r.order.as_str()) {
            None => problems.push(format!(
                "order {} charged {} kopecks for no succeeded payment",
                r.order, r.amount
            )),
            Some(p) if p.total != r.amount => problems.push(format!(
                "order {} charged {} kopecks, its payment's total is {}",
                r.order, r.amount, p.total
            )),
            Some(_) => {}
        }
    }
    for p in &succeeded {
        if !charged_ids.contains(p.id.as_str()) {
            problems.push(format!("payment {} succeeded without a charge", p.id));
        }
    }
    let charges = invariant(
        "every acquirer charge belongs to exactly one succeeded payment",
        format!(
            "{} orders, {} charged ({} kopecks), {} succeeded payments",
            o.orders.len(),
            charged.len(),
            charged.iter().map(|r| r.amount).sum::<u64>(),
            succeeded.len()
        ),
        problems,
    );

    // 3. No payment left in an intermediate state.
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &o.payments {
        *by_status.entry(p.status.as_str()).or_default() += 1;
    }
    let mut stuck: Vec<String> = o
        .payments
        .iter()
        .filter(|p| !FINAL_PAYMENT.contains(&p.status.as_str()))
        .map(|p| format!("payment {} is {}", p.id, p.status))
        .collect();
    // Once every payment is settled no bill may stay held: a hold outliving its payment
    // keeps the citizen from paying the bill.
    stuck.extend(
        o.held_bills
            .iter()
            .map(|(uin, payment)| format!("bill {uin} still held by payment {payment}")),
    );
    let settled = invariant(
        "no payment left in an intermediate state, no bill left held",
        format!(
            "{} payments: {}; {} bills held",
            o.payments.len(),
            crate::stats::comma_list(by_status.iter().map(|(s, n)| format!("{n} {s}"))),
            o.held_bills.len()
        ),
        stuck,
    );

    // 4. Every verification ended, or its job sits in the dead-letter queue.
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    let mut parked = 0;
    let mut open = Vec::new();
    for v in &o.verifications {
        *states.entry(v.state.as_str()).or_default() += 1;
        if FINAL_VERIFICATION.contains(&v.state.as_str()) {
            continue;
        }
        if in_any(&o.verification_dlq, &v.account) {
            parked += 1;
        } else {
            open.push(format!(
                "account {}: {} is {} and no job of it is dead-lettered",
                v.account, v.field, v.state
            ));
        }
    }
    let verifications = invariant(
        "every verification ended verified or rejected, or is dead-lettered",
        format!(
            "{} checked fields: {}; {} dead-lettered ({} messages in the dead-letter queue)",
            o.verifications.len(),
            crate::stats::comma_list(states.iter().map(|(s, n)| format!("{n} {s}"))),
            parked,
            o.verification_dlq.len()
        ),
        open,
    );

    // 5. Every notice sent once or dead-lettered.
    let mut problems = Vec::new();
    let mut sent_once = 0;
    let mut dead = 0;
    for due in &o.bill_notices_due {
        match o.bill_notices_sent.get(due).copied().unwrap_or(0) {
            1 => sent_once += 1,
            0 if in_any(&o.bill_notices_dlq, &due.uin) => dead += 1,
            0 => problems.push(format!(
                "new-bill notice of {} to {} never sent",
                due.uin, due.to
            )),
            n => problems.push(format!(
                "new-bill notice of {} to {} sent {n} times",
                due.uin, due.to
            )),
        }
    }
    let due: BTreeSet<&Due> = o.bill_notices_due.iter().collect();
    for (sent, n) in &o.bill_notices_sent {
        if !due.contains(sent) {
            problems.push(format!(
                "new-bill notice of {} to {} sent {n} times, none due",
                sent.uin, sent.to
            ));
        }
    }
    let mut delivered = 0;
    let mut payment_dead = 0;
    let mut due_payment = 0;
    let mut due_keys = BTreeSet::new();
    for p in &succeeded {
        for uin in &p.uins {
            due_payment += 1;
            let key = format!("{uin}#{}", p.id);
            match o.payment_notices_delivered.get(&key).copied().unwrap_or(0) {
                1 => delivered += 1,
                0 if in_any(&o.payment_notices_dlq, &p.id) => payment_dead += 1,
                0 => problems.push(format!("payment notice of {key} never delivered")),
                n => problems.push(format!("payment notice of {key} delivered {n} times")),
            }
            due_keys.insert(key);
        }
    }
    for key in o.payment_notices_delivered.keys() {
        if !due_keys.contains(key) {
            problems.push(format!(
                "payment notice of {key} delivered for no succeeded payment"
            ));
        }
    }
    // A receipt is best effort by design (a failed send is logged, not retried): one
    // missing is counted, never one too many or one for a payment that did not succeed.
    let mut receipts_once = 0;
    for (id, n) in &o.receipts {
        if !by_id.contains_key(id.as_str()) {
            problems.push(format!("receipt of payment {id}, which did not succeed"));
        } else if *n > 1 {
            problems.push(format!("receipt of payment {id} sent {n} times"));
        } else {
            receipts_once += 1;
        }
    }
    let notices = invariant(
        "every notice sent once or dead-lettered",
        format!(
            "new-bill notices: {} due, {sent_once} sent once, {dead} dead-lettered; \
             payment notices to billers: {due_payment} due, {delivered} delivered once, \
             {payment_dead} dead-lettered; receipts (best effort): {} succeeded payments, \
             {receipts_once} sent once, {} not sent",
            o.bill_notices_due.len(),
            succeeded.len(),
            succeeded.len().saturating_sub(receipts_once)
        ),
        problems,
    );

    // 6. No 5xx but a 503 with Retry-After.
    let answers = invariant(
        "no 5xx other than a 503 with Retry-After",
        format!(
            "{} answers in the faulty phase; {} not allowed",
            o.answers_faulty,
            o.answers_bad.len()
        ),
        o.answers_bad
            .iter()
            .map(|b| {
                let phase = match b.phase {
                    Phase::Setup => "setup",
                    Phase::Faulty => "faulty",
                    Phase::Recovery => "recovery",
                };
                format!("{phase}: {} answered {}: {}", b.route, b.status, b.detail)
            })
            .collect(),
    );

    vec![once, charges, settled, verifications, notices, answers]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(id: &str, status: &str, uins: &[&str], total: u64) -> StoredPayment {
        StoredPayment {
            id: id.into(),
            status: status.into(),
            uins: uins.iter().map(|u| u.to_string()).collect(),
            amount: total,
            total,
        }
    }

    fn order(id: &str, state: &str, amount: u64) -> OrderRow {
        OrderRow {
            order: id.into(),
            state: state.into(),
            amount,
        }
    }

    fn clean() -> Observed {
        let mut o = Observed {
            bills: 3,
            payments: vec![
                payment("p1", "succeeded", &["u1", "u2"], 300),
                payment("p2", "declined", &["u3"], 100),
                payment("p3", "succeeded", &["u3"], 100),
            ],
            orders: vec![
                order("p1", "charged", 300),
                order("p2", "declined", 100),
                order("p3", "charged", 100),
            ],
            verifications: vec![VerificationRow {
                account: "a1".into(),
                field: "snils".into(),
                state: "verified".into(),
            }],
            bill_notices_due: vec![Due {
                to: "x@example.org".into(),
                uin: "u9".into(),
            }],
            answers_faulty: 10,
            ..Observed::default()
        };
        o.bill_notices_sent.insert(o.bill_notices_due[0].clone(), 1);
        for key in ["u1#p1", "u2#p1", "u3#p3"] {
            o.payment_notices_delivered.insert(key.into(), 1);
        }
        o
    }

    fn failed(o: &Observed) -> Vec<&'static str> {
        check(o)
            .into_iter()
            .filter(|i| !i.held)
            .map(|i| i.name)
            .collect()
    }

    /// Asserts that `o` fails one invariant, and that it holds once `dead_letter` has put
    /// the message that was not handled into its dead-letter queue.
    fn holds_once_dead_lettered(o: &mut Observed, dead_letter: impl FnOnce(&mut Observed)) {
        assert_eq!(failed(o).len(), 1);
        dead_letter(o);
        assert!(failed(o).is_empty());
    }

    #[test]
    fn a_clean_run_holds_every_invariant() {
        assert!(failed(&clean()).is_empty(), "{:?}", check(&clean()));
    }

    #[test]
    fn a_bill_paid_twice_fails_the_first() {
        let mut o = clean();
        o.payments.push(payment("p4", "succeeded", &["u1"], 50));
        o.orders.push(order("p4", "charged", 50));
        o.payment_notices_delivered.insert("u1#p4".into(), 1);
        assert_eq!(failed(&o), vec!["every bill paid at most once"]);
    }

    #[test]
    fn a_charge_without_its_payment_or_with_another_amount_fails() {
        let mut o = clean();
        o.orders.push(order("p2x", "charged", 100));
        assert_eq!(
            failed(&o),
            vec!["every acquirer charge belongs to exactly one succeeded payment"]
        );
        let mut o = clean();
        o.orders[0].amount = 299;
        assert_eq!(failed(&o).len(), 1);
        let mut o = clean();
        o.orders.remove(2);
        assert_eq!(failed(&o).len(), 1);
    }

    #[test]
    fn a_pending_payment_fails_the_third() {
        let mut o = clean();
        o.payments.push(payment("p5", "pending", &["u7"], 70));
        assert_eq!(
            failed(&o),
            vec!["no payment left in an intermediate state, no bill left held"]
        );
        let mut o = clean();
        o.held_bills.push(("u3".into(), "p2".into()));
        assert_eq!(failed(&o).len(), 1);
    }

    #[test]
    fn an_open_verification_fails_unless_dead_lettered() {
        let mut o = clean();
        o.verifications[0].state = "pending".into();
        holds_once_dead_lettered(&mut o, |o| {
            o.verification_dlq.push("{\"account_id\":\"a1\"}".into())
        });
    }

    #[test]
    fn a_notice_sent_twice_or_never_fails_unless_dead_lettered() {
        let mut o = clean();
        o.bill_notices_sent.insert(o.bill_notices_due[0].clone(), 2);
        assert_eq!(failed(&o), vec!["every notice sent once or dead-lettered"]);
        o.bill_notices_sent.clear();
        holds_once_dead_lettered(&mut o, |o| o.bill_notices_dlq.push("u9".into()));
        o.payment_notices_delivered.remove("u3#p3");
        holds_once_dead_lettered(&mut o, |o| {
            o.payment_notices_dlq.push("{\"payment_id\":\"p3\"}".into())
        });
    }

    #[test]
    fn a_receipt_may_be_missing_but_never_repeated_or_for_a_failed_payment() {
        let mut o = clean();
        o.receipts.insert("p1".into(), 1);
        assert!(failed(&o).is_empty());
        o.receipts.insert("p3".into(), 2);
        assert_eq!(failed(&o), vec!["every notice sent once or dead-lettered"]);
        o.receipts.remove("p3");
        o.receipts.insert("p2".into(), 1);
        assert_eq!(failed(&o).len(), 1);
    }

    #[test]
    fn a_500_fails_the_last() {
        let mut o = clean();
        o.answers_bad.push(Bad {
            phase: Phase::Faulty,
            route: "/v1/payments".into(),
            status: 500,
            detail: String::new(),
        });
        assert_eq!(failed(&o), vec!["no 5xx other than a 503 with Retry-After"]);
    }
}
