//! verify-documents: SQS events of registry checks, as the event source mapping delivers
//! them, and the function's partial batch response.
//!
//! The jobs are real: citizens' PATCHes saved by the shared crate's `ProfileService`
//! through its SQS adapter into the template's verification queue in moto, then received
//! from it with every system attribute (`ApproximateReceiveCount` among them) and made
//! into the event by the local stack's `sqs_event`. Handled messages are deleted, as
//! Lambda does; failed ones are made visible again at once (instead of after the queue's
//! visibility timeout), so they come back in a later batch with a higher receive count.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::sqs::SqsQueue;
use shared::services::profile::{Check, ProfileService, VerificationJob};
use uslugi_local::events::{batch_item_failures, sqs_event, SqsRecord};
use uslugi_local::provision::Clients;

use super::documents::{AdultDocuments, Sandbox};
use super::Portal;
use crate::functions::{FunctionSpec, QueueSource};
use crate::identity::{step, Citizen, FIXTURE_AGE};
use crate::numbering::{self, Numbering};
use crate::proxy::Call;
use crate::scenario::{direct_answer, expect, sizes, Script, Step, ThroughputPlan};

/// What the report groups the function's invocations under.
const ROUTE: &str = "SQS event (verification queue)";

/// Batch sizes of the warm run, in turn: full batches of a backlog and the small ones
/// of a quiet queue.
const WARM_BATCHES: [usize; 6] = [10, 3, 10, 1, 10, 4];

/// The registry delay and batches of the throughput runs.
pub const THROUGHPUT_DELAY_MS: u64 = 200;
const THROUGHPUT_BATCHES: usize = 20;

/// How the sandbox answers the checks of one account's current documents.
#[derive(Debug, Clone, Copy)]
struct Answers {
    snils: Sandbox,
    passport: Sandbox,
    inn: Sandbox,
}

impl Answers {
    fn of(&self, check: Check) -> Sandbox {
        match check {
            Check::Snils => self.snils,
            Check::Passport => self.passport,
            Check::Inn => self.inn,
            // Not a check of these profiles (no international passport, no child):
            // this run queues none.
            Check::InternationalPassport | Check::BirthRecord => Sandbox::Verified,
        }
    }
}

struct Account {
    id: String,
    female: bool,
    answers: Answers,
    /// Its jobs sent and not yet handled.
    in_queue: usize,
}

struct Queue {
    url: String,
    arn: String,
    batch_size: usize,
}

/// A message of the last batch, to delete or put back once the function answered.
struct Delivered {
    receipt: String,
    account: String,
    failed: bool,
}

pub struct Verification {
    portal: Portal,
    moto: Clients,
    source: QueueSource,
    label: &'static str,
    overrides: Vec<(String, String)>,
    /// Batch sizes in turn.
    sizes: Vec<usize>,
    /// Every how many submissions one has a document the sandbox refuses, and one an
    /// INN it answers only on the third delivery (0: never).
    reject_every: u64,
    slow_every: u64,
    /// Where this run's citizens and documents are numbered from.
    numbering: Numbering,
    pool_size: usize,
    queue: Option<Queue>,
    profiles: Option<ProfileService<DynamoStore, SqsQueue>>,
    accounts: Vec<Account>,
    next_account: usize,
    submissions: u64,
    batches: usize,
    queued: usize,
    last_ids: Vec<String>,
    expected_failures: BTreeSet<String>,
    delivered: Vec<Delivered>,
}

impl Verification {
    fn new(spec: &FunctionSpec, moto: &Clients, label: &'static str) -> Result<Self> {
        let source = spec.queues.first().cloned().with_context(|| {
            format!(
                "{}: the template gives it no SQS event source",
                spec.logical_id
            )
        })?;
        Ok(Self {
            portal: Portal::new(spec, moto)?,
            moto: moto.clone(),
            source,
            label,
            overrides: Vec::new(),
            sizes: WARM_BATCHES.to_vec(),
            reject_every: 4,
            slow_every: 9,
            numbering: numbering::VERIFICATION,
            pool_size: 16,
            queue: None,
            profiles: None,
            accounts: Vec::new(),
            next_account: 0,
            submissions: 0,
            batches: 0,
            queued: 0,
            last_ids: Vec::new(),
            expected_failures: BTreeSet::new(),
            delivered: Vec::new(),
        })
    }

    /// The warm run: batches of several sizes, with no registry delay, so that the
    /// latencies are the function's own work and its AWS calls.
    pub fn warm(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        let mut v = Self::new(spec, moto, "warm")?;
        v.overrides = crate::stack::variables(&[("REGISTRY_SANDBOX_DELAY_MS", "0")]);
        Ok(v)
    }

    fn throughput(spec: &FunctionSpec, moto: &Clients, concurrency: usize, n: u32) -> Result<Self> {
        let mut v = Self::new(spec, moto, "throughput")?;
        v.overrides = vec![
            (
                "REGISTRY_SANDBOX_DELAY_MS".into(),
                THROUGHPUT_DELAY_MS.to_string(),
            ),
            ("VERIFICATION_CONCURRENCY".into(), concurrency.to_string()),
        ];
        v.sizes = vec![v.source.batch_size as usize];
        // Every job waits for the registry; none fails.
        v.slow_every = 0;
        v.numbering = Numbering {
            citizens: numbering::VERIFICATION.citizens + n * 1_000_000,
            documents: numbering::VERIFICATION.documents + u64::from(n) * 1_000_000,
        };
        Ok(v)
    }

    async fn prepare(&mut self) -> Result<()> {
        let sqs = &self.moto.sqs;
        let name = self.source.queue_name().to_string();
        let url = sqs
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .with_context(|| format!("looking up queue {name} in moto"))?
            .queue_url()
            .map(str::to_string)
            .with_context(|| format!("moto gave no URL for queue {name}"))?;
        // Jobs left by the profile scenario's PATCHes (for accounts long gone) or by an
        // earlier run of this function. Drained rather than purged: SQS allows one purge
        // a minute.
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .send()
                .await
                .with_context(|| format!("draining {name}"))?;
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .with_context(|| format!("draining {name}"))?;
            }
        }
        self.profiles = Some(ProfileService::new(
            DynamoStore::new(
                self.moto.dynamodb.clone(),
                self.portal.table().table_name.clone(),
            ),
            SqsQueue::new(sqs.clone(), url.clone()),
            self.portal.table().hasher.clone(),
        ));
        self.queue = Some(Queue {
            url,
            arn: self.source.queue_arn.clone(),
            batch_size: self.source.batch_size as usize,
        });
        let at = time::OffsetDateTime::now_utc() - FIXTURE_AGE;
        for i in 0..self.pool_size {
            let n = self.numbering.citizens + 1 + i as u32;
            let citizen = Citizen::new(n);
            let id = self.portal.people.register(&citizen, at).await?;
            self.accounts.push(Account {
                id,
                female: citizen.last_name.ends_with('а'),
                answers: Answers {
                    snils: Sandbox::Verified,
                    passport: Sandbox::Verified,
                    inn: Sandbox::Verified,
                },
                in_queue: 0,
            });
        }
        Ok(())
    }

    /// Acknowledges the last batch as Lambda would: handled messages deleted, failed ones
    /// back in the queue (at once here).
    async fn settle(&mut self) -> Result<()> {
        let queue = self.queue.as_ref().context("no queue")?;
        for d in std::mem::take(&mut self.delivered) {
            if d.failed {
                self.moto
                    .sqs
                    .change_message_visibility()
                    .queue_url(&queue.url)
                    .receipt_handle(&d.receipt)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .context("putting a failed job back in the queue")?;
                self.queued += 1;
            } else {
                self.moto
                    .sqs
                    .delete_message()
                    .queue_url(&queue.url)
                    .receipt_handle(&d.receipt)
                    .send()
                    .await
                    .context("deleting a handled job")?;
                if let Some(a) = self.accounts.iter_mut().find(|a| a.id == d.account) {
                    a.in_queue = a.in_queue.saturating_sub(1);
                }
            }
        }
        Ok(())
    }

    /// A citizen with nothing in the queue saves new SNILS, passport and INN: three jobs.
    async fn submit(&mut self) -> Result<()> {
        let pool = self.accounts.len();
        let index = (0..pool)
            .map(|i| (self.next_account + i) % pool)
            .find(|&i| self.accounts[i].in_queue == 0)
            .context("every account of the pool still has jobs in the queue")?;
        self.next_account = index + 1;
        self.submissions += 1;
        let s = self.submissions;
        let every = |n: u64, offset: u64| n > 0 && (s + offset).is_multiple_of(n);
        let answers = Answers {
            snils: if every(self.reject_every, 0) {
                Sandbox::Mismatch
            } else {
                Sandbox::Verified
            },
            passport: if every(self.reject_every, 2) {
                Sandbox::NotFound
            } else {
                Sandbox::Verified
            },
            inn: if every(self.slow_every, 0) {
                Sandbox::SlowTwice
            } else {
                Sandbox::Verified
            },
        };
        let account = &self.accounts[index];
        let documents = AdultDocuments::new(
            self.numbering.documents + s,
            account.female,
            answers.snils,
            answers.passport,
            answers.inn,
        );
        let profiles = self.profiles.as_ref().context("not prepared")?;
        Portal::patch_profile_with(profiles, &account.id, &documents.profile_body()).await?;
        let account = &mut self.accounts[index];
        account.answers = answers;
        account.in_queue += 3;
        self.queued += 3;
        Ok(())
    }
}

/// Runs of a fresh process with the template's registry delay of 200 ms written out, once
/// with the template's concurrency (10) and once checking one job at a time.
pub fn throughput_plans(spec: &FunctionSpec, moto: &Clients) -> Result<Vec<ThroughputPlan>> {
    let mut plans = Vec::new();
    for (n, concurrency) in [(1, 10), (2, 1)] {
        let scenario = Verification::throughput(spec, moto, concurrency, n)?;
        let items = scenario.source.batch_size as usize;
        plans.push(ThroughputPlan {
            label: format!("VERIFICATION_CONCURRENCY={concurrency}"),
            scenario: Box::new(scenario),
            batches: THROUGHPUT_BATCHES,
            items,
        });
    }
    Ok(plans)
}

impl Verification {
    /// Every job of the last batch is one the sandbox times out.
    fn all_fail(&self) -> bool {
        !self.last_ids.is_empty() && self.expected_failures.len() == self.last_ids.len()
    }
}

impl Script for Verification {
    fn describe(&self) -> String {
        if self.label == "throughput" {
            return format!(
                "batches of {} jobs, each from a citizen's PATCH of SNILS, passport and INN, \
                 one in four with a document the sandbox rejects",
                self.source.batch_size
            );
        }
        format!(
            "SQS events of {} jobs in turn, received with their system attributes from the \
             template's verification queue in moto, where 16 citizens registered by the \
             harness queued them with the profile service (a PATCH of SNILS, passport and \
             INN: three jobs). One submission in four has a document the sandbox rejects \
             (SNILS `999…`, passport number `998…`), one in nine an INN `997…` the sandbox \
             answers only on the third delivery: the function must list exactly those jobs \
             in `batchItemFailures` while their receive count is 1 or 2, and nothing else \
             (checked on every batch); a batch of nothing but such jobs fails the \
             invocation instead, so that Lambda's pollers back off. Handled messages are deleted, failed ones made visible \
             again at once and delivered in a later batch. Answers are shown as 200 when the \
             function returned a response, 500 for an invocation error",
            sizes(&self.sizes)
        )
    }

    fn env_overrides(&self) -> Vec<(String, String)> {
        self.overrides.clone()
    }

    async fn next(&mut self) -> Result<Step> {
        if self.queue.is_none() {
            self.prepare().await?;
        }
        self.settle().await?;
        let wanted = self.sizes[self.batches % self.sizes.len()];
        self.batches += 1;
        while self.queued < wanted {
            self.submit().await?;
        }
        let queue = self.queue.as_ref().context("no queue")?;
        let mut records = Vec::new();
        while records.len() < wanted.min(queue.batch_size) {
            let out = self
                .moto
                .sqs
                .receive_message()
                .queue_url(&queue.url)
                .max_number_of_messages((wanted - records.len()) as i32)
                .message_system_attribute_names("All".into())
                .send()
                .await
                .context("receiving jobs from moto")?;
            if out.messages().is_empty() {
                bail!(
                    "the verification queue gave {} of the {wanted} jobs sent to it",
                    records.len()
                );
            }
            for m in out.messages() {
                let attributes: BTreeMap<String, String> = m
                    .attributes()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                    .collect();
                records.push(SqsRecord {
                    message_id: m.message_id().unwrap_or_default().to_string(),
                    receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    md5_of_body: m.md5_of_body().unwrap_or_default().to_string(),
                    md5_of_message_attributes: None,
                    attributes,
                    message_attributes: BTreeMap::new(),
                });
            }
        }
        self.queued = self.queued.saturating_sub(records.len());

        // Which must fail: the sandbox's slow INN on its first two deliveries.
        let answers: HashMap<&str, Answers> = self
            .accounts
            .iter()
            .map(|a| (a.id.as_str(), a.answers))
            .collect();
        self.expected_failures.clear();
        self.delivered.clear();
        for r in &records {
            let job: VerificationJob = serde_json::from_str(&r.body)
                .with_context(|| format!("a message in the queue is not a job: {}", r.body))?;
            let attempt: u32 = r
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .context("a received message has no ApproximateReceiveCount")?;
            let fails = answers
                .get(job.account_id.as_str())
                .is_some_and(|a| a.of(job.check).times_out(attempt));
            if fails {
                self.expected_failures.insert(r.message_id.clone());
            }
            self.delivered.push(Delivered {
                receipt: r.receipt_handle.clone(),
                account: job.account_id.into(),
                failed: fails,
            });
        }
        self.last_ids = records.iter().map(|r| r.message_id.clone()).collect();
        let n = records.len();
        let mut case = format!("batch of {n} job{}", if n == 1 { "" } else { "s" });
        // A batch none of whose jobs succeeded fails as a whole (an invocation error), by
        // design of the shared batch runner: every message comes back, as listed ones do.
        let all_fail = !records.is_empty() && self.expected_failures.len() == records.len();
        match self.expected_failures.len() {
            _ if all_fail => case.push_str(", every job a registry timeout: invocation error"),
            0 => {}
            1 => case.push_str(", 1 registry timeout listed"),
            f => case.push_str(&format!(", {f} registry timeouts listed")),
        }
        // A batch whose every job fails fails the invocation (shared::batch), so that
        // Lambda's pollers back off; its messages come back all the same.
        let status = if self.all_fail() { 500 } else { 200 };
        Ok(step(
            &case,
            ROUTE,
            sqs_event(&records, &queue.arn),
            expect(status, None),
            0,
        ))
    }

    fn answer(&self, ok: bool, body: &[u8]) -> Result<(u16, Json)> {
        direct_answer("verify-documents", ok, body)
    }

    fn observe(&mut self, status: u16, body: &Json, _calls: &[Call]) -> Result<()> {
        if status == 500 && self.all_fail() {
            let message = body["errorMessage"].as_str().unwrap_or_default();
            if !message.contains("messages of the batch failed") {
                bail!("the batch failed for another reason than its jobs: {body}");
            }
            return Ok(());
        }
        if status != 200 {
            bail!("the batch failed as a whole: {body}");
        }
        let failed = batch_item_failures(body, &self.last_ids)
            .with_context(|| format!("the answer is not a valid partial batch response: {body}"))?;
        let failed: BTreeSet<String> = failed.into_iter().collect();
        if failed != self.expected_failures {
            bail!(
                "batchItemFailures lists {:?}, expected {:?} (the sandbox's slow INNs on their first two deliveries): {}",
                failed,
                self.expected_failures,
                json!(body)
            );
        }
        Ok(())
    }
}
