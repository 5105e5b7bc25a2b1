//! What the load test checks once the clients are done: the answers (no 5xx, every
//! repeated request answered with its key's payment) and the books read from the table
//! (every bill paid exactly once, the sums equal, one charged order per payment).
//! Everything here works on data already collected, so it is unit-tested.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::table::StoredPayment;

/// Why a request was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The first request with a key.
    First,
    /// The same key and body, sent while the first was in flight.
    Concurrent,
    /// The same key and body, sent after an answer came.
    After,
    /// The same key and body, sent again because the last answer was an error or said
    /// the payment was still in progress.
    Resend,
    /// Another client's request for the same bill, with a key of its own.
    Race,
    /// The same bills with a new card token and key, after the first token was refused
    /// as if it were a card number.
    NewToken,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::First => "first request with a key",
            Kind::Concurrent => "duplicate, concurrent with the first",
            Kind::After => "duplicate, after the answer",
            Kind::Resend => "resent after an error or `payment_in_progress`",
            Kind::Race => "another client racing for the bill",
            Kind::NewToken => "new token and key after the token was refused",
        }
    }
}

/// One answered (or unanswered) `POST /v1/payments`.
#[derive(Debug, Clone)]
pub struct Sent {
    pub kind: Kind,
    /// 0: no answer.
    pub status: u16,
    pub code: Option<String>,
    /// The field a 4xx names first (`errors[0].field`).
    pub field: Option<String>,
    /// The payment the answer names (its `id`, or a problem's `payment_id`).
    pub payment_id: Option<String>,
    pub replayed: bool,
    pub elapsed: Duration,
    pub error: Option<String>,
}

/// Every request sent with one idempotency key.
#[derive(Debug, Clone)]
pub struct KeyLog {
    pub key: String,
    pub client: usize,
    pub uins: Vec<String>,
    /// The key raced another for one of its bills (it may lose: see [`lost_race`]).
    pub raced: bool,
    pub sent: Vec<Sent>,
}

/// Problem codes a request that lost a race for a bill gets when its citizen sees the bill.
pub const LOST_RACE: [&str; 2] = ["bill_in_payment", "bill_paid"];

/// Whether an answer is how a payment that lost a race for its bill is refused: 409
/// `bill_in_payment` or `bill_paid` to a citizen who sees the bill, and 404
/// `bill_not_found` to one who does not (the load test's bills are nobody's), so that the
/// route does not tell a stranger that a bill exists and is being paid.
pub fn lost_race(s: &Sent) -> bool {
    match s.status {
        409 => s.code.as_deref().is_some_and(|c| LOST_RACE.contains(&c)),
        404 => s.code.as_deref() == Some("bill_not_found"),
        _ => false,
    }
}

/// What the answers say, and what is wrong with them.
#[derive(Debug, Default)]
pub struct AnswerCheck {
    pub requests: usize,
    pub by_status: BTreeMap<u16, usize>,
    pub by_code: BTreeMap<String, usize>,
    pub by_kind: BTreeMap<Kind, usize>,
    /// Answers with `Idempotent-Replayed: true`.
    pub replays: usize,
    /// Replays that named their key's payment.
    pub replays_matching: usize,
    /// Answers to raced keys that say the race was lost ([`lost_race`]).
    pub lost_races: usize,
    pub server_errors: usize,
    pub unanswered: usize,
    /// Keys whose answers named no payment and were refused otherwise than a lost race.
    pub unexpected: Vec<String>,
    /// Keys whose answers named two payments, or a repeat that was not answered with the
    /// key's payment.
    pub mismatched: Vec<String>,
    /// Payment ids the answers named as succeeded (201).
    pub succeeded_ids: BTreeSet<String>,
}

fn is_success(s: &Sent) -> bool {
    (200..300).contains(&s.status)
}

pub fn check_answers(logs: &[KeyLog]) -> AnswerCheck {
    let mut check = AnswerCheck::default();
    for log in logs {
        for s in &log.sent {
            check.requests += 1;
            *check.by_status.entry(s.status).or_default() += 1;
            *check.by_kind.entry(s.kind).or_default() += 1;
            if let Some(code) = &s.code {
                *check.by_code.entry(code.clone()).or_default() += 1;
            }
            if s.status >= 500 {
                check.server_errors += 1;
            }
            if s.status == 0 {
                check.unanswered += 1;
            }
            if log.raced && lost_race(s) {
                check.lost_races += 1;
            }
            if s.status == 201 {
                if let Some(id) = &s.payment_id {
                    check.succeeded_ids.insert(id.clone());
                }
            }
        }
        let ids: BTreeSet<&str> = log
            .sent
            .iter()
            .filter(|s| is_success(s))
            .filter_map(|s| s.payment_id.as_deref())
            .collect();
        let originals = log
            .sent
            .iter()
            .filter(|s| is_success(s) && !s.replayed)
            .count();
        let replays: Vec<&Sent> = log.sent.iter().filter(|s| s.replayed).collect();
        check.replays += replays.len();
        match ids.len() {
            0 => {
                // No payment: the key lost a race for its bill, or something is wrong.
                let lost = log.raced && log.sent.iter().all(lost_race);
                let failed = log.sent.iter().any(|s| s.status == 0 || s.status >= 500);
                if !lost && !failed {
                    let answers: Vec<String> = log
                        .sent
                        .iter()
                        .map(|s| {
                            let at = s.field.as_deref().map(|f| format!(" at {f}"));
                            format!(
                                "{} {}{}",
                                s.status,
                                s.code.as_deref().unwrap_or(""),
                                at.unwrap_or_default()
                            )
                        })
                        .collect();
                    check.unexpected.push(format!(
                        "key {} (client {}, bills {}): {}",
                        log.key,
                        log.client,
                        log.uins.join(" "),
                        answers.join(", ")
                    ));
                }
            }
            1 => {
                let id = ids.iter().next().copied().unwrap_or_default();
                check.replays_matching += replays
                    .iter()
                    .filter(|s| s.payment_id.as_deref() == Some(id))
                    .count();
                // Every other answer to the key: its payment replayed, or still in
                // progress (a 409 that names it); never another payment or a refusal.
                let stray: Vec<String> = log
                    .sent
                    .iter()
                    .filter(|s| s.status != 0 && s.status < 500)
                    .filter(|s| {
                        let names_it = s.payment_id.as_deref() == Some(id);
                        let in_progress =
                            s.status == 409 && s.code.as_deref() == Some("payment_in_progress");
                        !(names_it && (is_success(s) || in_progress))
                    })
                    .map(|s| format!("{} {}", s.status, s.code.as_deref().unwrap_or("")))
                    .collect();
                if originals > 1 || !stray.is_empty() {
                    check.mismatched.push(format!(
                        "key {} (client {}): payment {id}, {originals} answers not marked as replays, other answers: [{}]",
                        log.key,
                        log.client,
                        stray.join(", ")
                    ));
                }
            }
            _ => check.mismatched.push(format!(
                "key {} (client {}) was answered with {} payments: {:?}",
                log.key,
                log.client,
                ids.len(),
                ids
            )),
        }
    }
    check
}

/// A charge as stored in the table.
#[derive(Debug, Clone)]
pub struct StoredBill {
    pub uin: String,
    pub status: String,
    pub paid_by: Option<String>,
    pub locked_by: Option<String>,
    /// What is due (no discounts in the load test).
    pub amount: u64,
}

/// What the table and the acquirer hold after the run.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub bills: Vec<StoredBill>,
    pub payments: Vec<StoredPayment>,
    /// The acquirer's charged total and its number of charged orders (`books()`).
    pub charged_total: u64,
    pub charged_orders: usize,
    /// Reconciliation entries still open.
    pub open_reconciliations: usize,
}

/// One line of the report's checks.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    pub detail: String,
}

fn check(name: &'static str, passed: bool, detail: String) -> Check {
    Check {
        name,
        passed,
        detail,
    }
}

/// Lists at most a few examples.
fn examples(items: &[String]) -> String {
    let mut shown: Vec<String> = items.iter().take(5).cloned().collect();
    if items.len() > 5 {
        shown.push(format!("… {} more", items.len() - 5));
    }
    shown.join("; ")
}

/// The checks of the books, for the bills the run created (`planned`, UIN → amount).
pub fn check_books(
    planned: &BTreeMap<String, u64>,
    ledger: &Ledger,
    answers: &AnswerCheck,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let stored: BTreeMap<&str, &StoredBill> =
        ledger.bills.iter().map(|b| (b.uin.as_str(), b)).collect();
    let succeeded = crate::table::succeeded(&ledger.payments);
    let paid_in = crate::table::paid_by_bill(&succeeded);

    let mut missing = Vec::new();
    let mut not_paid = Vec::new();
    let mut wrong_amount = Vec::new();
    for (uin, amount) in planned {
        match stored.get(uin.as_str()) {
            None => missing.push(uin.clone()),
            Some(b) => {
                if b.status != "paid" || b.locked_by.is_some() {
                    not_paid.push(format!(
                        "{uin}: {}{}",
                        b.status,
                        b.locked_by
                            .as_deref()
                            .map(|l| format!(", locked by {l}"))
                            .unwrap_or_default()
                    ));
                }
                if b.amount != *amount {
                    wrong_amount.push(format!("{uin}: {} stored, {amount} sent", b.amount));
                }
            }
        }
    }
    checks.push(check(
        "every bill created as sent",
        missing.is_empty() && wrong_amount.is_empty(),
        if missing.is_empty() && wrong_amount.is_empty() {
            format!("{} charges in the table", planned.len())
        } else {
            format!(
                "{} missing ({}), {} with another amount ({})",
                missing.len(),
                examples(&missing),
                wrong_amount.len(),
                examples(&wrong_amount)
            )
        },
    ));
    checks.push(check(
        "every bill `paid`, none left locked",
        not_paid.is_empty(),
        if not_paid.is_empty() {
            format!("{} of {} paid", planned.len(), planned.len())
        } else {
            format!("{} not paid: {}", not_paid.len(), examples(&not_paid))
        },
    ));

    let mut not_once = Vec::new();
    let mut wrong_payer = Vec::new();
    for uin in planned.keys() {
        let ids = paid_in.get(uin.as_str()).cloned().unwrap_or_default();
        if ids.len() != 1 {
            not_once.push(format!("{uin} in {} succeeded payments", ids.len()));
            continue;
        }
        let paid_by = stored.get(uin.as_str()).and_then(|b| b.paid_by.as_deref());
        if paid_by != ids.first().copied() {
            wrong_payer.push(format!(
                "{uin}: paid_by {}, paid in {}",
                paid_by.unwrap_or("none"),
                ids.first().copied().unwrap_or_default()
            ));
        }
    }
    let strangers: Vec<String> = paid_in
        .keys()
        .filter(|u| !planned.contains_key(**u))
        .map(|u| u.to_string())
        .collect();
    checks.push(check(
        "every bill in exactly one succeeded payment",
        not_once.is_empty() && strangers.is_empty(),
        if not_once.is_empty() && strangers.is_empty() {
            format!(
                "{} bills in {} succeeded payments",
                planned.len(),
                succeeded.len()
            )
        } else {
            let mut problems = not_once.clone();
            problems.extend(
                strangers
                    .iter()
                    .map(|u| format!("{u} paid, though the run did not create it")),
            );
            examples(&problems)
        },
    ));
    checks.push(check(
        "each bill's `paid_by` is the payment that paid it",
        wrong_payer.is_empty(),
        if wrong_payer.is_empty() {
            "yes".into()
        } else {
            examples(&wrong_payer)
        },
    ));

    let bills_total: u64 = planned.values().sum();
    let stored_total: u64 = planned
        .keys()
        .filter_map(|u| stored.get(u.as_str()))
        .map(|b| b.amount)
        .sum();
    let payments_amount: u64 = succeeded.iter().map(|p| p.amount).sum();
    let payments_total: u64 = succeeded.iter().map(|p| p.total).sum();
    checks.push(check(
        "sum of bills = sum of succeeded payments = acquirer's charged total",
        bills_total == stored_total
            && stored_total == payments_amount
            && payments_amount == payments_total
            && payments_total == ledger.charged_total,
        format!(
            "bills {} · payments {} (with commission {}) · acquirer {}",
            roubles(stored_total),
            roubles(payments_amount),
            roubles(payments_total),
            roubles(ledger.charged_total)
        ),
    ));
    checks.push(check(
        "acquirer's charged orders = succeeded payments",
        ledger.charged_orders == succeeded.len(),
        format!(
            "{} charged orders, {} succeeded payments",
            ledger.charged_orders,
            succeeded.len()
        ),
    ));
    let unsettled: Vec<String> = ledger
        .payments
        .iter()
        .filter(|p| p.status != "succeeded" && p.status != "declined")
        .map(|p| format!("{} {}", p.id, p.status))
        .collect();
    checks.push(check(
        "no payment left unsettled after reconciliation",
        unsettled.is_empty(),
        if unsettled.is_empty() {
            format!(
                "{} payments in the table, {} declined; {} reconciliation entries open",
                ledger.payments.len(),
                ledger
                    .payments
                    .iter()
                    .filter(|p| p.status == "declined")
                    .count(),
                ledger.open_reconciliations
            )
        } else {
            examples(&unsettled)
        },
    ));
    let stored_ids: BTreeSet<&str> = succeeded.iter().map(|p| p.id.as_str()).collect();
    let unknown: Vec<String> = answers
        .succeeded_ids
        .iter()
        .filter(|id| !stored_ids.contains(id.as_str()))
        .cloned()
        .collect();
    checks.push(check(
        "every payment answered 201 is stored as succeeded",
        unknown.is_empty(),
        if unknown.is_empty() {
            format!(
                "{} payment ids answered, {} succeeded in the table",
                answers.succeeded_ids.len(),
                stored_ids.len()
            )
        } else {
            format!("not succeeded in the table: {}", examples(&unknown))
        },
    ));
    checks.push(check(
        "every repeated request answered with its key's payment",
        answers.mismatched.is_empty(),
        if answers.mismatched.is_empty() {
            format!(
                "{} replays, {} naming the first answer's payment",
                answers.replays, answers.replays_matching
            )
        } else {
            examples(&answers.mismatched)
        },
    ));
    checks.push(check(
        "no answer with a 5xx, none missing",
        answers.server_errors == 0 && answers.unanswered == 0,
        format!(
            "{} with 5xx, {} without an answer",
            answers.server_errors, answers.unanswered
        ),
    ));
    checks
}

/// Kopecks as roubles: `1234.56 ₽`.
pub fn roubles(kopecks: u64) -> String {
    format!("{}.{:02} ₽", kopecks / 100, kopecks % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(kind: Kind, status: u16, id: Option<&str>, replayed: bool) -> Sent {
        Sent {
            kind,
            status,
            code: None,
            field: None,
            payment_id: id.map(str::to_string),
            replayed,
            elapsed: Duration::from_millis(10),
            error: None,
        }
    }

    fn refused(kind: Kind, code: &str) -> Sent {
        Sent {
            code: Some(code.into()),
            ..sent(kind, 409, None, false)
        }
    }

    fn log(key: &str, raced: bool, sent: Vec<Sent>) -> KeyLog {
        KeyLog {
            key: key.into(),
            client: 0,
            uins: vec!["u1".into()],
            raced,
            sent,
        }
    }

    #[test]
    fn replays_of_one_payment_pass() {
        let logs = vec![log(
            "k1",
            false,
            vec![
                sent(Kind::First, 201, Some("p1"), false),
                sent(Kind::Concurrent, 201, Some("p1"), true),
                sent(Kind::After, 201, Some("p1"), true),
                Sent {
                    code: Some("payment_in_progress".into()),
                    ..sent(Kind::Concurrent, 409, Some("p1"), false)
                },
            ],
        )];
        let c = check_answers(&logs);
        assert!(c.mismatched.is_empty(), "{:?}", c.mismatched);
        assert!(c.unexpected.is_empty());
        assert_eq!((c.replays, c.replays_matching), (2, 2));
        assert_eq!(c.by_status[&201], 3);
        assert_eq!(c.succeeded_ids.len(), 1);
    }

    #[test]
    fn a_second_payment_or_a_refused_duplicate_is_a_mismatch() {
        let two = log(
            "k1",
            false,
            vec![
                sent(Kind::First, 201, Some("p1"), false),
                sent(Kind::Concurrent, 201, Some("p2"), false),
            ],
        );
        let refused_dup = log(
            "k2",
            false,
            vec![
                sent(Kind::First, 201, Some("p3"), false),
                refused(Kind::After, "bill_paid"),
            ],
        );
        let unmarked = log(
            "k3",
            false,
            vec![
                sent(Kind::First, 201, Some("p4"), false),
                sent(Kind::After, 201, Some("p4"), false),
            ],
        );
        let c = check_answers(&[two, refused_dup, unmarked]);
        assert_eq!(c.mismatched.len(), 3, "{:?}", c.mismatched);
    }

    #[test]
    fn a_lost_race_is_expected_only_when_raced() {
        let lost = log("k1", true, vec![refused(Kind::Race, "bill_in_payment")]);
        let not_raced = log("k2", false, vec![refused(Kind::First, "bill_paid")]);
        let c = check_answers(&[lost, not_raced]);
        assert_eq!(c.lost_races, 1);
        assert_eq!(c.unexpected.len(), 1);
        assert!(c.unexpected[0].contains("k2"));
    }

    #[test]
    fn a_stranger_loses_a_race_with_the_answer_of_a_bill_never_issued() {
        let mut not_found = refused(Kind::Race, "bill_not_found");
        not_found.status = 404;
        let lost = log("k1", true, vec![not_found.clone()]);
        let not_raced = log("k2", false, vec![not_found]);
        let c = check_answers(&[lost, not_raced]);
        assert_eq!(c.lost_races, 1);
        assert_eq!(c.unexpected.len(), 1);
        assert!(c.unexpected[0].contains("k2"));
    }

    #[test]
    fn server_errors_and_missing_answers_are_counted() {
        let c = check_answers(&[log(
            "k1",
            false,
            vec![
                sent(Kind::First, 502, None, false),
                sent(Kind::Resend, 0, None, false),
                sent(Kind::Resend, 201, Some("p1"), false),
            ],
        )]);
        assert_eq!((c.server_errors, c.unanswered), (1, 1));
        assert!(c.mismatched.is_empty(), "{:?}", c.mismatched);
        let books = check_books(&BTreeMap::new(), &Ledger::default(), &c);
        assert!(!books.last().is_some_and(|b| b.passed));
    }

    fn ledger() -> (BTreeMap<String, u64>, Ledger) {
        let planned: BTreeMap<String, u64> =
            [("u1".to_string(), 100), ("u2".to_string(), 250)].into();
        let bill = |uin: &str, amount, by: &str| StoredBill {
            uin: uin.into(),
            status: "paid".into(),
            paid_by: Some(by.into()),
            locked_by: None,
            amount,
        };
        let ledger = Ledger {
            bills: vec![bill("u1", 100, "p1"), bill("u2", 250, "p2")],
            payments: vec![
                StoredPayment {
                    id: "p1".into(),
                    status: "succeeded".into(),
                    uins: vec!["u1".into()],
                    amount: 100,
                    total: 100,
                },
                StoredPayment {
                    id: "p2".into(),
                    status: "succeeded".into(),
                    uins: vec!["u2".into()],
                    amount: 250,
                    total: 250,
                },
            ],
            charged_total: 350,
            charged_orders: 2,
            open_reconciliations: 0,
        };
        (planned, ledger)
    }

    #[test]
    fn balanced_books_pass() {
        let (planned, ledger) = ledger();
        let checks = check_books(&planned, &ledger, &AnswerCheck::default());
        for c in &checks {
            assert!(c.passed, "{}: {}", c.name, c.detail);
        }
    }

    #[test]
    fn a_bill_paid_twice_or_charged_twice_fails() {
        let (planned, mut ledger) = ledger();
        ledger.payments.push(StoredPayment {
            id: "p3".into(),
            status: "succeeded".into(),
            uins: vec!["u1".into()],
            amount: 100,
            total: 100,
        });
        ledger.charged_total += 100;
        ledger.charged_orders += 1;
        let failed: Vec<&str> = check_books(&planned, &ledger, &AnswerCheck::default())
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert!(failed.contains(&"every bill in exactly one succeeded payment"));
        assert!(
            failed.contains(&"sum of bills = sum of succeeded payments = acquirer's charged total")
        );

        let (planned, mut ledger) = ledger_with_unpaid();
        ledger.charged_orders = 3;
        let failed: Vec<&str> = check_books(&planned, &ledger, &AnswerCheck::default())
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert!(failed.contains(&"every bill `paid`, none left locked"));
        assert!(failed.contains(&"acquirer's charged orders = succeeded payments"));
    }

    fn ledger_with_unpaid() -> (BTreeMap<String, u64>, Ledger) {
        let (planned, mut ledger) = ledger();
        ledger.bills[1].status = "unpaid".into();
        ledger.bills[1].locked_by = Some("p9".into());
        (planned, ledger)
    }

    #[test]
    fn money() {
        assert_eq!(roubles(123_456), "1234.56 ₽");
        assert_eq!(roubles(5), "0.05 ₽");
    }
}
