//! What the load test will do, decided before it starts and from a seed: the bills, who
//! pays which in which payments, which requests are sent again and how, and which bills
//! two clients race for. Nothing here talks to the stack, so the shape of a run is
//! reproducible and unit-tested.

use serde_json::{json, Value as Json};

use crate::portal::documents::{self, Sandbox};

/// UINs and payers' documents of the load test are numbered from here.
const SERIAL_BASE: u64 = 70_000_000;
/// Categories the bills are spread over. Fines are left out: their discount would make
/// what is due differ from the bill's amount, and the books compare amounts.
const CATEGORIES: [&str; 4] = ["kindergarten", "utilities", "taxes", "clubs"];

/// How the run is shaped (see `--help`).
#[derive(Debug, Clone)]
pub struct Shape {
    pub bills: usize,
    pub clients: usize,
    pub billers: usize,
    /// Charges per `POST /v1/biller/charges:batch`.
    pub batch: usize,
    /// One payment in `race_every` of those that pay one bill is raced by another client.
    pub race_every: usize,
    /// One client in `saved_every` saves a card and pays every other payment with it.
    pub saved_every: usize,
    pub seed: u64,
}

impl Default for Shape {
    /// The run `--help` describes: 1,000 bills for 50 clients.
    fn default() -> Self {
        Self {
            bills: 1000,
            clients: 50,
            billers: 4,
            batch: 250,
            race_every: 25,
            saved_every: 5,
            seed: 1,
        }
    }
}

/// A charge to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bill {
    pub uin: String,
    pub biller: usize,
    /// Kopecks.
    pub amount: u64,
    pub category: &'static str,
    serial: u64,
}

impl Bill {
    /// The body of the charge in a batch: the UIN and the charge as a biller writes it.
    pub fn charge(&self) -> Json {
        let payers = json!([
            {"kind": "snils", "value": documents::snils(self.serial, Sandbox::Verified)}
        ]);
        let mut body = crate::portal::charge_body(self.category, self.amount, payers);
        body["uin"] = json!(self.uin);
        body
    }
}

/// How a flaky client sends a payment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Once.
    Once,
    /// `n` copies at the same moment (the first "timed out" on the client, which sent
    /// it again without waiting).
    Concurrent(usize),
    /// Once more after the answer came (the answer was lost on the way).
    After,
    /// Two at once, and once more after both answers.
    ConcurrentThenAfter,
}

impl Retry {
    /// Requests sent with the key beyond the first.
    pub fn duplicates(self) -> usize {
        match self {
            Retry::Once => 0,
            Retry::Concurrent(n) => n - 1,
            Retry::After => 1,
            Retry::ConcurrentThenAfter => 2,
        }
    }
}

/// How a payment is paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// A one-time token from the acquirer's card page.
    CardToken,
    /// The client's saved card.
    Saved,
}

/// One payment a client makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPayment {
    /// Indexes into [`Plan::bills`].
    pub bills: Vec<usize>,
    pub retry: Retry,
    pub method: Method,
    /// Another client that asks to pay the same (single) bill at the same moment with a
    /// key of its own.
    pub racer: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub bills: Vec<Bill>,
    /// Per client, its payments in order.
    pub clients: Vec<Vec<PlannedPayment>>,
    /// Clients that save a card first.
    pub saves_card: Vec<bool>,
}

/// SplitMix64: small, fast and good enough to shape a load test reproducibly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl Plan {
    pub fn new(shape: &Shape) -> Plan {
        let mut rng = Rng::new(shape.seed);
        let bills: Vec<Bill> = (0..shape.bills)
            .map(|i| {
                let serial = SERIAL_BASE + i as u64;
                Bill {
                    uin: documents::uin(serial),
                    biller: i % shape.billers.max(1),
                    // 100.00 to 20,000.00 roubles, in whole kopecks.
                    amount: 10_000 + rng.below(1_990_001),
                    category: CATEGORIES[i % CATEGORIES.len()],
                    serial,
                }
            })
            .collect();
        let clients = shape.clients.max(1);
        let saves_card: Vec<bool> = (0..clients)
            .map(|c| shape.saved_every > 0 && c % shape.saved_every == 0)
            .collect();
        let mut plans = Vec::with_capacity(clients);
        let mut singles = 0usize;
        for (c, saves) in saves_card.iter().enumerate() {
            // Round robin: client c pays bills c, c + clients, c + 2 clients, ...
            let mine: Vec<usize> = (c..bills.len()).step_by(clients).collect();
            let mut payments = Vec::new();
            let mut at = 0;
            while at < mine.len() {
                // Three payments in four pay one bill; the others two to five.
                let size = if rng.below(4) == 0 {
                    2 + rng.below(4) as usize
                } else {
                    1
                };
                let size = size.min(mine.len() - at);
                let retry = match rng.below(20) {
                    0..=7 => Retry::Once,
                    8..=11 => Retry::Concurrent(2),
                    12 => Retry::Concurrent(3),
                    13..=17 => Retry::After,
                    _ => Retry::ConcurrentThenAfter,
                };
                let method = if *saves && payments.len() % 2 == 1 {
                    Method::Saved
                } else {
                    Method::CardToken
                };
                let mut racer = None;
                if size == 1 && clients > 1 && shape.race_every > 0 {
                    singles += 1;
                    if singles.is_multiple_of(shape.race_every) {
                        let other = 1 + rng.below(clients as u64 - 1) as usize;
                        racer = Some((c + other) % clients);
                    }
                }
                payments.push(PlannedPayment {
                    bills: mine[at..at + size].to_vec(),
                    retry,
                    method,
                    racer,
                });
                at += size;
            }
            plans.push(payments);
        }
        Plan {
            bills,
            clients: plans,
            saves_card,
        }
    }

    pub fn payments(&self) -> usize {
        self.clients.iter().map(Vec::len).sum()
    }

    pub fn races(&self) -> usize {
        self.clients
            .iter()
            .flatten()
            .filter(|p| p.racer.is_some())
            .count()
    }

    /// One-time card tokens the run needs: one per payment paid by card token, one per
    /// race, one per saved card.
    pub fn card_tokens(&self) -> usize {
        let by_token = self
            .clients
            .iter()
            .flatten()
            .filter(|p| p.method == Method::CardToken)
            .count();
        by_token + self.races() + self.saves_card.iter().filter(|s| **s).count()
    }

    /// Requests the plan sends at least (retries after errors come on top).
    pub fn requests(&self) -> usize {
        self.clients
            .iter()
            .flatten()
            .map(|p| 1 + p.retry.duplicates() + usize::from(p.racer.is_some()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn shape() -> Shape {
        Shape {
            seed: 7,
            ..Shape::default()
        }
    }

    #[test]
    fn every_bill_is_in_exactly_one_payment() {
        let plan = Plan::new(&shape());
        let mut seen = BTreeSet::new();
        for p in plan.clients.iter().flatten() {
            assert!((1..=5).contains(&p.bills.len()), "{p:?}");
            for b in &p.bills {
                assert!(seen.insert(*b), "bill {b} planned twice");
            }
        }
        assert_eq!(seen.len(), 1000);
        assert_eq!(plan.clients.len(), 50);
        // Each client pays its own share: 20 bills.
        for payments in &plan.clients {
            assert_eq!(payments.iter().map(|p| p.bills.len()).sum::<usize>(), 20);
        }
    }

    #[test]
    fn bills_are_valid_distinct_and_spread_over_billers() {
        let plan = Plan::new(&shape());
        let uins: BTreeSet<&str> = plan.bills.iter().map(|b| b.uin.as_str()).collect();
        assert_eq!(uins.len(), 1000);
        for b in &plan.bills {
            assert!(
                shared::domain::Uin::parse("uin", &b.uin).is_ok(),
                "{}",
                b.uin
            );
            assert!((10_000..=2_000_000).contains(&b.amount));
        }
        for biller in 0..4 {
            assert_eq!(
                plan.bills.iter().filter(|b| b.biller == biller).count(),
                250
            );
        }
        let charge = plan.bills[0].charge();
        let object = charge.as_object().cloned().unwrap_or_default();
        assert_eq!(charge["uin"], plan.bills[0].uin.as_str());
        assert!(shared::services::charges::ChargeBody::parse(&object).is_ok());
    }

    #[test]
    fn the_mix_has_multi_bill_payments_duplicates_and_races() {
        let plan = Plan::new(&shape());
        let all: Vec<&PlannedPayment> = plan.clients.iter().flatten().collect();
        let multi = all.iter().filter(|p| p.bills.len() > 1).count();
        assert!(multi * 10 > all.len(), "{multi} of {}", all.len());
        assert!(multi * 2 < all.len(), "{multi} of {}", all.len());
        for retry in [
            Retry::Once,
            Retry::Concurrent(2),
            Retry::Concurrent(3),
            Retry::After,
            Retry::ConcurrentThenAfter,
        ] {
            assert!(all.iter().any(|p| p.retry == retry), "{retry:?}");
        }
        assert!(plan.races() >= 10, "{} races", plan.races());
        for (c, payments) in plan.clients.iter().enumerate() {
            for p in payments {
                if let Some(r) = p.racer {
                    assert_ne!(r, c);
                    assert_eq!(p.bills.len(), 1);
                }
            }
        }
        assert!(all.iter().any(|p| p.method == Method::Saved));
        assert!(plan.requests() > plan.payments() + plan.races());
    }

    #[test]
    fn a_seed_gives_one_plan() {
        let a = Plan::new(&shape());
        let b = Plan::new(&shape());
        assert_eq!(a.clients, b.clients);
        assert_eq!(a.bills, b.bills);
        let c = Plan::new(&Shape { seed: 8, ..shape() });
        assert_ne!(a.clients, c.clients);
    }

    #[test]
    fn a_small_run_still_works() {
        let plan = Plan::new(&Shape {
            bills: 3,
            clients: 5,
            billers: 2,
            batch: 500,
            race_every: 1,
            saved_every: 0,
            seed: 1,
        });
        assert_eq!(plan.payments(), 3);
        assert_eq!(plan.clients.iter().filter(|c| c.is_empty()).count(), 2);
    }
}
