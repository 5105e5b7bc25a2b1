//! The notice workers: `payment-notices` (billers told of payments, квитирование) and
//! `bill-notices` (citizens told of new bills). Both get SQS events as the event source
//! mapping delivers them and answer a partial batch response.
//!
//! The messages are the services' own types (`PaymentNotice`, `BillNotice`) serialised as
//! the functions that queue them do; the harness makes the records itself, with the
//! receive count each should carry, and builds the event with the local stack's
//! `sqs_event`. What the messages name — billers, holders with verified SNILS, charges —
//! is made by the shared crate's services outside the timing, each cycle on emptied
//! tables.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use shared::services::notices::BillNotice;
use shared::services::payments::PaymentNotice;
use uslugi_local::events::{batch_item_failures, sqs_event, SqsRecord};
use uslugi_local::provision::Clients;

use super::documents::{self, AdultDocuments, Sandbox};
use super::{charge_body, Member, Portal};
use crate::functions::{FunctionSpec, QueueSource};
use crate::identity::step;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{direct_answer, expect, sizes, Script, Step};

/// Batch sizes in turn, as for the verification worker: full batches of a backlog and
/// the small ones of a quiet queue. One cycle is one round of them.
const BATCHES: [usize; 6] = [10, 3, 10, 1, 10, 4];

/// A biller whose sandbox endpoint refuses the first deliveries (see
/// `shared::adapters::biller_endpoint`).
const UNRELIABLE: &str = "ООО «Расчётный центр» (нестабильный)";
/// Deliveries it refuses.
const REFUSALS: u32 = 2;

fn queue_of(spec: &FunctionSpec) -> Result<QueueSource> {
    spec.queues.first().cloned().with_context(|| {
        format!(
            "{}: the template gives it no SQS event source",
            spec.logical_id
        )
    })
}

/// An SQS record of `body` on its `receives`-th delivery.
fn record(body: &Json, receives: u32) -> SqsRecord {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let attributes: BTreeMap<String, String> = [
        ("ApproximateReceiveCount", receives.to_string()),
        ("SentTimestamp", now_ms.to_string()),
        ("SenderId", "AROAEXAMPLE:bench".to_string()),
        ("ApproximateFirstReceiveTimestamp", now_ms.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    SqsRecord {
        message_id: crate::system::uuid(),
        receipt_handle: crate::system::uuid(),
        body: body.to_string(),
        md5_of_body: String::new(),
        md5_of_message_attributes: None,
        attributes,
        message_attributes: BTreeMap::new(),
    }
}

/// A partial batch response listing exactly `expected`.
fn check_failures(
    what: &str,
    ok: bool,
    body: &Json,
    ids: &[String],
    expected: &BTreeSet<String>,
) -> Result<()> {
    if !ok {
        bail!("the batch failed as a whole: {body}");
    }
    let failed: BTreeSet<String> = batch_item_failures(body, ids)
        .with_context(|| format!("the answer is not a valid partial batch response: {body}"))?
        .into_iter()
        .collect();
    if &failed != expected {
        bail!("batchItemFailures lists {failed:?}, expected {expected:?} ({what}): {body}");
    }
    Ok(())
}

/// A notice worker's queue as its scenario feeds it: the event source, the batches sent
/// in the cycle and the message ids of the last one, which its answer must account for.
pub(crate) struct Deliveries {
    source: QueueSource,
    batches: usize,
    ids: Vec<String>,
}

impl Deliveries {
    fn new(spec: &FunctionSpec) -> Result<Self> {
        Ok(Self {
            source: queue_of(spec)?,
            batches: 0,
            ids: Vec::new(),
        })
    }

    /// The size of the next batch, from [`BATCHES`] in turn.
    fn next_size(&mut self) -> usize {
        let n = BATCHES[self.batches % BATCHES.len()];
        self.batches += 1;
        n
    }

    /// Back to the first batch size (the cycle starts again).
    fn restart(&mut self) {
        self.batches = 0;
    }

    /// The step of one SQS event of `records` from the `queue` queue, answered 200; each
    /// record is a unit of work, and their ids are kept for [`Deliveries::check`].
    fn step(&mut self, case: &str, queue: &str, records: &[SqsRecord]) -> Step {
        self.ids = records.iter().map(|r| r.message_id.clone()).collect();
        step(
            case,
            &format!("SQS event ({queue} queue)"),
            sqs_event(records, &self.source.queue_arn),
            expect(200, None),
            0,
        )
        .with_items(records.len())
    }

    /// Checks that the answer to the last batch lists exactly `expected` (see
    /// [`check_failures`]).
    fn check(
        &self,
        what: &str,
        status: u16,
        body: &Json,
        expected: &BTreeSet<String>,
    ) -> Result<()> {
        check_failures(what, status == 200, body, &self.ids, expected)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What one notice worker's scenario knows of its notices: what it prepares for a cycle,
/// the records of a batch, and what the answer to a batch must be. It starts from its
/// default: nothing prepared, nothing sent.
pub(crate) trait Notices: Default {
    /// The function, as the answer to an invocation error names it.
    const BINARY: &'static str;
    /// The queue the events come from, as the report names it.
    const QUEUE: &'static str;
    /// One sentence for the report.
    fn describe(&self) -> String;
    /// The case and the records of the cycle's next batch of `n`, after preparing what
    /// they name with `portal`'s services if the cycle has not yet.
    async fn batch(&mut self, portal: &Portal, n: usize) -> Result<(String, Vec<SqsRecord>)>;
    /// The tables were emptied: what the cycle prepared is gone.
    fn forget_cycle(&mut self);
    /// Checks the worker's answer to the last batch, whose records `queue` kept.
    fn check(&self, queue: &Deliveries, status: u16, body: &Json, calls: &[Call]) -> Result<()>;
}

/// The scenario of a notice worker: its notices fed to it through [`Deliveries`], batch
/// sizes from [`BATCHES`], one round of them a cycle.
pub struct NoticeScenario<N> {
    portal: Portal,
    queue: Deliveries,
    notices: N,
}

impl<N: Notices> NoticeScenario<N> {
    /// The scenario of `spec`'s worker, nothing sent yet.
    fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            portal: Portal::new(spec, moto)?,
            queue: Deliveries::new(spec)?,
            notices: N::default(),
        })
    }
}

/// The `payment-notices` scenario.
pub fn payment_notices(
    spec: &FunctionSpec,
    moto: &Clients,
) -> Result<NoticeScenario<PaymentNotices>> {
    NoticeScenario::new(spec, moto)
}

/// The `bill-notices` scenario.
pub fn bill_notices(spec: &FunctionSpec, moto: &Clients) -> Result<NoticeScenario<BillNotices>> {
    NoticeScenario::new(spec, moto)
}

impl<N: Notices> Script for NoticeScenario<N> {
    const RESET_EVERY: Option<usize> = Some(BATCHES.len());

    fn describe(&self) -> String {
        self.notices.describe()
    }

    async fn next(&mut self) -> Result<Step> {
        let n = self.queue.next_size();
        let (case, records) = self.notices.batch(&self.portal, n).await?;
        Ok(self.queue.step(&case, N::QUEUE, &records))
    }

    fn answer(&self, ok: bool, raw: &[u8]) -> Result<(u16, Json)> {
        direct_answer(N::BINARY, ok, raw)
    }

    fn on_reset(&mut self) {
        self.queue.restart();
        self.notices.forget_cycle();
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        self.notices.check(&self.queue, status, body, calls)
    }
}

// ------------------------------------------------------------------ payment-notices

#[derive(Default)]
pub struct PaymentNotices {
    serial: u64,
    /// The reliable and the unreliable biller of this cycle.
    billers: Option<(String, String)>,
    expected: BTreeSet<String>,
}

impl Notices for PaymentNotices {
    const BINARY: &'static str = "payment-notices";
    const QUEUE: &'static str = "payment notices";

    fn describe(&self) -> String {
        format!(
            "SQS events of {} payment notices in turn, cycling; a full batch has 7 notices \
             to a biller made by the harness, one to a biller whose sandbox endpoint refuses \
             the first {REFUSALS} deliveries on its first delivery (it must be listed in \
             `batchItemFailures`, and only it), one to it on its third delivery (delivered) \
             and one to a biller that is not registered (dropped and recorded, not failed)",
            sizes(&BATCHES)
        )
    }

    async fn batch(&mut self, portal: &Portal, n: usize) -> Result<(String, Vec<SqsRecord>)> {
        if self.billers.is_none() {
            let (good, _) = portal.biller("ГБУ «Жилищник района Арбат»").await?;
            let (flaky, _) = portal.biller(UNRELIABLE).await?;
            self.billers = Some((good, flaky));
        }
        let (good, flaky) = self.billers.clone().context("no billers")?;
        let (mut refused, mut late, mut dropped) = (0, 0, 0);
        let mut records = Vec::with_capacity(n);
        self.expected.clear();
        for i in 0..n {
            self.serial += 1;
            // Of a full batch: 7 to the reliable biller, one to the unreliable one on its
            // first delivery (refused: listed), one on its third (delivered), one to a
            // biller no longer registered (dropped and recorded).
            let (biller, receives) = match (n, i) {
                (10, 3) => (flaky.clone(), 1),
                (10, 6) => (flaky.clone(), REFUSALS + 1),
                (10, 8) | (4, 2) => (crate::system::uuid(), 1),
                _ => (good.clone(), 1),
            };
            let notice = PaymentNotice {
                payment_id: crate::system::uuid().parse()?,
                uin: shared::domain::Uin::parse(
                    "uin",
                    &documents::uin(numbering::NOTICES.documents + self.serial),
                )
                .map_err(|e| anyhow::anyhow!("a fixture UIN: {}", e.code))?,
                biller_id: biller.parse()?,
                amount: 150_000 + self.serial % 1000,
                paid_at: time::OffsetDateTime::now_utc().unix_timestamp(),
                gateway_reference: format!("sbx_{}", self.serial),
                refund_id: None,
            };
            let r = record(&serde_json::to_value(&notice)?, receives);
            if biller == flaky && receives <= REFUSALS {
                refused += 1;
                self.expected.insert(r.message_id.clone());
            } else if biller == flaky {
                late += 1;
            } else if biller != good {
                dropped += 1;
            }
            records.push(r);
        }
        let mut case = format!("batch of {}", plural(n, "notice", "notices"));
        let parts: Vec<String> = [
            (refused, "refused: listed"),
            (late, "delivered on a 3rd attempt"),
            (dropped, "for a revoked biller"),
        ]
        .into_iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{count} {what}"))
        .collect();
        if !parts.is_empty() {
            case.push_str(&format!(" ({})", parts.join(", ")));
        }
        Ok((case, records))
    }

    fn forget_cycle(&mut self) {
        self.billers = None;
    }

    fn check(&self, queue: &Deliveries, status: u16, body: &Json, _calls: &[Call]) -> Result<()> {
        let what = "the unreliable biller's notices on their first delivery";
        queue.check(what, status, body, &self.expected)
    }
}

// ------------------------------------------------------------------ bill-notices

struct Holders {
    /// SNILS of two standard citizens (the payer index knows them).
    snils: [String; 2],
    biller: String,
}

#[derive(Default)]
pub struct BillNotices {
    cycles: u32,
    serial: u64,
    holders: Option<Holders>,
    /// E-mails the last batch must send: one per bill of a holder.
    told: usize,
}

impl BillNotices {
    /// Citizen `n`, made standard with verified documents from `serial`: the account and
    /// its SNILS.
    async fn holder(portal: &Portal, n: u32, serial: u64) -> Result<(Member, String)> {
        let member = portal.member(n).await?;
        let adult = AdultDocuments::verified(serial, member.citizen.last_name.ends_with('а'));
        portal
            .make_standard(&member.account_id, &adult.profile_body())
            .await?;
        let snils = adult.snils.clone();
        Ok((member, snils))
    }
}

impl Notices for BillNotices {
    const BINARY: &'static str = "bill-notices";
    const QUEUE: &'static str = "bill notices";

    fn describe(&self) -> String {
        format!(
            "SQS events of {} new bills in turn, cycling, for two citizens with verified \
             SNILS made by the harness (kindergarten bills, told by e-mail by default): of \
             every four bills one to each citizen (one e-mail each, checked), one to a SNILS \
             nobody holds and one UIN with no charge (nothing sent); no message may fail",
            sizes(&BATCHES)
        )
    }

    async fn batch(&mut self, portal: &Portal, n: usize) -> Result<(String, Vec<SqsRecord>)> {
        if self.holders.is_none() {
            self.cycles += 1;
            let n = numbering::NOTICES.citizens + 2 * self.cycles;
            let serial = numbering::NOTICES.documents + u64::from(self.cycles) * 10_000;
            let (_, first) = Self::holder(portal, n, serial).await?;
            let (_, second) = Self::holder(portal, n + 1, serial + 1).await?;
            let (biller, _) = portal.biller("ГБОУ Школа № 1234").await?;
            self.holders = Some(Holders {
                snils: [first, second],
                biller,
            });
            self.serial = serial + 100;
        }
        let h = self.holders.as_ref().context("no holders")?;
        let mut records = Vec::with_capacity(n);
        let (mut told, mut nobody, mut unknown) = (0, 0, 0);
        for i in 0..n {
            self.serial += 1;
            let uin = documents::uin(self.serial);
            // Of every four bills: one to each holder, one to a SNILS nobody holds, one
            // UIN with no charge (withdrawn before the worker got to it).
            let payer = match i % 4 {
                0 | 1 => Some((h.snils[i % 2].clone(), true)),
                2 => Some((documents::snils(self.serial, Sandbox::Verified), false)),
                _ => None,
            };
            match payer {
                Some((snils, held)) => {
                    let body = charge_body(
                        "kindergarten",
                        450_000,
                        json!([{"kind": "snils", "value": snils}]),
                    );
                    portal.put_charge(&h.biller, &uin, &body).await?;
                    if held {
                        told += 1;
                    } else {
                        nobody += 1;
                    }
                }
                None => unknown += 1,
            }
            let notice = serde_json::to_value(BillNotice { uin })?;
            records.push(record(&notice, 1));
        }
        self.told = told;
        let case = format!(
            "batch of {} ({told} to a holder, {nobody} held by nobody, {unknown} with no charge)",
            plural(n, "bill", "bills")
        );
        Ok((case, records))
    }

    fn forget_cycle(&mut self) {
        self.holders = None;
    }

    fn check(&self, queue: &Deliveries, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        queue.check("none may fail", status, body, &BTreeSet::new())?;
        let emails = calls
            .iter()
            .filter(|c| c.operation == "sesv2.SendEmail")
            .count();
        if emails != self.told {
            bail!(
                "{emails} e-mails sent for {} bills of a holder (one each expected)",
                self.told
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_receive_count_the_worker_reads_as_its_attempt() {
        let r = record(&json!({"uin": "x"}), 3);
        assert_eq!(r.attributes["ApproximateReceiveCount"], "3");
        assert_eq!(r.body, r#"{"uin":"x"}"#);
    }

    #[test]
    fn a_partial_batch_response_must_list_exactly_the_expected_messages() {
        let ids = vec!["a".to_string(), "b".to_string()];
        let expected: BTreeSet<String> = ["a".to_string()].into();
        let listed = json!({"batchItemFailures": [{"itemIdentifier": "a"}]});
        assert!(check_failures("t", true, &listed, &ids, &expected).is_ok());
        let none = json!({"batchItemFailures": []});
        assert!(check_failures("t", true, &none, &ids, &expected).is_err());
        let both = json!({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]});
        assert!(check_failures("t", true, &both, &ids, &expected).is_err());
        assert!(check_failures("t", false, &listed, &ids, &expected).is_err());
    }
}
