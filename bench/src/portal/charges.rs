//! charges: billers push charges by UIN — created, repeated unchanged, updated, read,
//! cancelled, sent 50 at a time and, every fifth batch, 500 (the most one batch may
//! carry) — and the refusals on the way.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use uslugi_local::provision::Clients;

use super::documents::{self, Sandbox};
use super::{charge_body, number, text_is, Member, Portal};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{as_biller, http_api_event, routes, source_ip, Cursor, Script, Step};

routes! {
    PUT = "PUT /v1/biller/charges/{uin}";
    GET = "GET /v1/biller/charges/{uin}";
    DELETE = "DELETE /v1/biller/charges/{uin}";
    BATCH = "POST /v1/biller/charges:batch";
}

/// Charges in a batch.
pub const BATCH_SIZE: usize = 50;
/// Charges in the large batch: the most the API takes in one.
pub const BIG_BATCH: usize = shared::services::charges::MAX_BATCH;
/// Every how many batches of new charges one is the large one (the first is).
const BIG_BATCH_EVERY: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create(u64),
    Repeat(u64),
    NewAmount(u64),
    Read(u64),
    ReadCancelled(u64),
    BadCheckDigit,
    DueBeforeBill,
    OtherBillersRead(u64),
    OtherBillersPut(u64),
    Batch,
    /// Takes the place of a `Batch` every `BIG_BATCH_EVERY`.
    BigBatch,
    BatchWithErrors,
    Cancel(u64),
    CancelAgain(u64),
    AfterCancel(u64),
    Citizen,
}

impl Kind {
    /// The case the report groups a request of this kind under, the answer it should get
    /// (as [`crate::scenario::Expect::parse`] reads it) and the charges it carries (for a batch).
    fn expected(self) -> (String, &'static str, Option<usize>) {
        use Kind::*;
        let (case, answer) = match self {
            Create(_) => ("new charge", "201"),
            Repeat(_) => ("same charge again (unchanged)", "200"),
            NewAmount(_) => ("new amount (updated)", "200"),
            Read(_) => ("read a charge", "200"),
            ReadCancelled(_) => ("read a cancelled charge", "200"),
            BadCheckDigit => (
                "UIN with a wrong check digit (422)",
                "422 validation_failed (uin_checksum)",
            ),
            DueBeforeBill => (
                "due date before the bill date (422)",
                "422 validation_failed (due_before_bill_date)",
            ),
            OtherBillersRead(_) => (
                "another biller's charge: read (404)",
                "404 charge_not_found",
            ),
            OtherBillersPut(_) => (
                "another biller's charge: write (404)",
                "404 charge_not_found",
            ),
            Batch => {
                return (
                    format!("batch of {BATCH_SIZE} new charges"),
                    "200",
                    Some(BATCH_SIZE),
                )
            }
            BigBatch => {
                return (
                    format!("batch of {BIG_BATCH} new charges"),
                    "200",
                    Some(BIG_BATCH),
                )
            }
            BatchWithErrors => {
                return (
                    format!("batch of {BATCH_SIZE}, 2 invalid"),
                    "200",
                    Some(BATCH_SIZE),
                )
            }
            Cancel(_) => ("cancel a charge", "204"),
            CancelAgain(_) => ("cancel it again (no change)", "204"),
            AfterCancel(_) => ("write a cancelled charge (409)", "409 charge_cancelled"),
            Citizen => (
                "a citizen's session on a biller route (403)",
                "403 biller_only",
            ),
        };
        (case.to_string(), answer, None)
    }
}

/// One cycle of 20 requests on charges numbered 1 to 4 of the cycle.
const CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        Create(1),
        Repeat(1),
        NewAmount(1),
        Read(1),
        Create(2),
        Create(3),
        BadCheckDigit,
        DueBeforeBill,
        OtherBillersRead(1),
        Batch,
        Cancel(2),
        CancelAgain(2),
        AfterCancel(2),
        Read(3),
        BatchWithErrors,
        Citizen,
        Create(4),
        ReadCancelled(2),
        OtherBillersPut(1),
        Repeat(3),
    ]
};

struct Prepared {
    biller: (String, String),
    other: (String, String),
    citizen: Member,
}

pub struct Charges {
    portal: Portal,
    at: Cursor<Kind>,
    cycles: u64,
    prepared: Option<Prepared>,
    /// Batches of new charges sent so far.
    batches: u64,
}

impl Charges {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            portal: Portal::new(spec, moto)?,
            at: Cursor::default(),
            cycles: 0,
            prepared: None,
            batches: 0,
        })
    }

    /// The serial of charge `k` of this cycle (UIN and payers).
    fn serial_of(&self, k: u64) -> u64 {
        numbering::CHARGES.documents + self.cycles * 1000 + k
    }

    fn uin(&self, k: u64) -> String {
        documents::uin(self.serial_of(k))
    }

    /// A charge of the cycle: a kindergarten bill to a parent and the child, or a utility
    /// bill to a SNILS, with `extra` kopecks on top.
    fn body(&self, k: u64, extra: u64) -> Json {
        let s = self.serial_of(k);
        if k % 2 == 1 {
            charge_body(
                "kindergarten",
                450_000 + extra,
                json!([
                    {"kind": "snils", "value": documents::snils(s, Sandbox::Verified)},
                    {"kind": "birth_certificate", "value": documents::birth_certificate(s)},
                ]),
            )
        } else {
            charge_body(
                "utilities",
                731_250 + extra,
                json!([{"kind": "snils", "value": documents::snils(s, Sandbox::Verified)}]),
            )
        }
    }

    fn request(
        &self,
        biller: &(String, String),
        route: &str,
        uin: Option<&str>,
        body: Option<&Json>,
    ) -> Json {
        let params: Vec<(&str, &str)> = uin.map(|u| ("uin", u)).into_iter().collect();
        let body = body.map(Json::to_string);
        as_biller(
            http_api_event(route, &params, body.as_deref(), &source_ip(self.at.serial)),
            &biller.0,
            &biller.1,
        )
    }

    /// `size` new charges of this cycle, numbered from `first`.
    fn batch(&self, size: usize, first: u64, with_errors: bool) -> Json {
        let items: Vec<Json> = (0..size as u64)
            .map(|i| {
                let k = first + i;
                let mut item = self.body(k, 0);
                item["uin"] = json!(self.uin(k));
                if with_errors && i == 7 {
                    item["uin"] = json!(documents::broken_uin(&self.uin(k)));
                }
                if with_errors && i == 31 {
                    item["amount"] = json!(-100);
                }
                item
            })
            .collect();
        json!({ "charges": items })
    }
}

impl Script for Charges {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        format!(
            "repeating cycles of 20 requests by a biller made by the harness (as `uslugi-admin \
             create-biller` does), with 20-digit UINs carrying valid check digits: 4 new \
             charges (201), the same body again (200 `unchanged`), a new amount (200 \
             `updated`), reads, a cancellation twice (204) and a write to the cancelled \
             charge (409), a batch of {BATCH_SIZE} new charges (every {BIG_BATCH_EVERY}th time, \
             the first included, {BIG_BATCH} instead: the most one batch takes) and one of \
             {BATCH_SIZE} with 2 invalid items (200 with each item's result), and refusals: a wrong UIN check \
             digit (422), a due date before the bill date (422), another biller's charge read \
             and written (404), a citizen's session (403)"
        )
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.prepared.is_none() {
            self.cycles += 1;
            let citizen = self
                .portal
                .member(numbering::CHARGES.citizens + self.cycles as u32)
                .await?;
            self.prepared = Some(Prepared {
                biller: self.portal.biller("ГБОУ Школа № 1234").await?,
                other: self.portal.biller("ГБУ «Жилищник района Арбат»").await?,
                citizen,
            });
        }
        let (mut kind, serial) = self.at.advance(&CYCLE);
        if kind == Batch {
            if self.batches.is_multiple_of(BIG_BATCH_EVERY) {
                kind = BigBatch;
                self.at.last = Some(kind);
            }
            self.batches += 1;
        }
        let p = self.prepared.as_ref().context("nothing prepared")?;
        let (me, other) = (&p.biller, &p.other);
        let put = |biller: &(String, String), k: u64, change: u64| {
            self.request(biller, PUT, Some(&self.uin(k)), Some(&self.body(k, change)))
        };
        let batch = |size: usize, from: u64, invalid: bool| {
            self.request(me, BATCH, None, Some(&self.batch(size, from, invalid)))
        };
        let event = match kind {
            Create(k) | Repeat(k) => put(me, k, 0),
            NewAmount(k) => put(me, k, 5_000),
            Read(k) | ReadCancelled(k) => self.request(me, GET, Some(&self.uin(k)), None),
            BadCheckDigit => self.request(
                me,
                PUT,
                Some(&documents::broken_uin(&self.uin(5))),
                Some(&self.body(5, 0)),
            ),
            DueBeforeBill => {
                let mut body = self.body(6, 0);
                body["due_date"] = json!("2026-10-15");
                self.request(me, PUT, Some(&self.uin(6)), Some(&body))
            }
            OtherBillersRead(k) => self.request(other, GET, Some(&self.uin(k)), None),
            OtherBillersPut(k) => put(other, k, 0),
            Batch => batch(BATCH_SIZE, 100, false),
            // Numbered 400 to 899: apart from the other batches' charges of the cycle.
            BigBatch => batch(BIG_BATCH, 400, false),
            BatchWithErrors => batch(BATCH_SIZE, 300, true),
            Cancel(k) | CancelAgain(k) => self.request(me, DELETE, Some(&self.uin(k)), None),
            AfterCancel(k) => put(me, k, 10_000),
            Citizen => {
                let body = self.body(7, 0);
                p.citizen
                    .request(PUT, &[("uin", &self.uin(7))], Some(&body), serial)
            }
        };
        let (case, answer, items) = kind.expected();
        let step = Step::expecting(&case, event, answer)?;
        Ok(match items {
            Some(n) => step.with_items(n),
            None => step,
        })
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.prepared = None;
    }

    fn observe(&mut self, status: u16, body: &Json, _calls: &[Call]) -> Result<()> {
        use Kind::*;
        let Some(kind) = self.at.last else {
            return Ok(());
        };
        let outcome = |want: &str| text_is(body, "outcome", "a charge written", want);
        match (kind, status) {
            (Create(_), 201) => outcome("created")?,
            (Repeat(_), 200) => outcome("unchanged")?,
            (NewAmount(_), 200) => outcome("updated")?,
            (ReadCancelled(_), 200) if body["status"] != "cancelled" => {
                bail!("a cancelled charge reads otherwise: {body}");
            }
            (Batch | BigBatch | BatchWithErrors, 200) => {
                let failed = number(body, "failed", "a batch")?;
                let (size, want) = match kind {
                    BigBatch => (BIG_BATCH as u64, 0),
                    Batch => (BATCH_SIZE as u64, 0),
                    _ => (BATCH_SIZE as u64, 2),
                };
                if failed != want || number(body, "succeeded", "a batch")? != size - want {
                    bail!("a batch of {size} with {want} invalid items answered otherwise: {body}");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

crate::scenario::answers_read!(CYCLE
    .into_iter()
    .chain([Kind::BigBatch])
    .map(|kind| kind.expected().1));
