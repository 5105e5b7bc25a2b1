//! Reconciliation: payments the bank has not answered for are asked about, shard by shard,
//! page by page, and settled.

use super::*;

impl<S: PaymentStores + RunStore, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    /// Plans a reconciliation run: the first page of every shard of the open payments
    /// created before now, for the queue. `run` names the run (the schedule event).
    pub async fn plan_reconcile(
        &self,
        run: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ReconcilePage>, AppError> {
        let pages: Vec<ReconcilePage> = Shard::all(RECONCILE_SHARDS)
            .map(|shard| ReconcilePage {
                run: run.to_string(),
                before: now.unix_timestamp() + 1,
                shard,
                after: None,
            })
            .collect();
        self.store
            .open_run(
                Run {
                    job: ShardedJob::ReconcilePayments,
                    id: run,
                },
                pages.len(),
                now.unix_timestamp(),
            )
            .await?;
        Ok(pages)
    }

    /// Reconciles one page of a shard's open payments, then queues the next page or,
    /// on the shard's last page, marks the shard done. A page that fails comes back
    /// whole: settling a payment twice is settling it once (each settle is conditional
    /// on the state it was read in), and the next page is queued only once it
    /// succeeded.
    pub async fn reconcile_page(
        &self,
        queue: &impl ReconcilePageQueue,
        page: &ReconcilePage,
        page_size: usize,
        now: OffsetDateTime,
        min_age: Duration,
    ) -> Result<ReconcilePageOutcome, AppError> {
        let young = now.unix_timestamp() - i64::try_from(min_age.as_secs()).unwrap_or(0);
        let found = self.store.open_payments(page, page_size).await?;
        let mut outcome = ReconcilePageOutcome::default();
        for (owner, id) in &found.entries {
            self.reconcile_one(owner, id, now, young, &mut outcome.run)
                .await?;
        }
        outcome.run_completed = continue_shard(
            &self.store,
            found.next,
            |after| async move {
                let next = ReconcilePage {
                    after: Some(after),
                    ..page.clone()
                };
                queue.enqueue_reconcile(std::slice::from_ref(&next)).await
            },
            Run {
                job: ShardedJob::ReconcilePayments,
                id: &page.run,
            },
            &page.shard.name(),
            now.unix_timestamp(),
        )
        .await?;
        Ok(outcome)
    }
}

/// What a reconciliation run, or a page of it, did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileRun {
    pub checked: usize,
    pub settled: usize,
}

/// What one reconciliation page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcilePageOutcome {
    pub run: ReconcileRun,
    /// This page finished the run's last shard.
    pub run_completed: bool,
}

/// One page of a shard of the open payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenPaymentsPage {
    pub entries: Vec<(Owner, PaymentId)>,
    pub next: Option<String>,
}

/// The queued work of a reconciliation run: a page of one shard of the open payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcilePage {
    pub run: String,
    /// Payments created before this (epoch seconds): the run's start, so that a run
    /// ends however many payments open meanwhile.
    pub before: i64,
    pub shard: Shard,
    /// The last sort key of the previous page.
    pub after: Option<String>,
}

/// Where reconciliation pages are queued.
#[trait_variant::make(Send)]
pub trait ReconcilePageQueue {
    async fn enqueue_reconcile(&self, pages: &[ReconcilePage]) -> Result<(), StoreError>;
}

/// What an archive page asks for.
#[derive(Debug, Clone)]
pub struct ArchiveFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub status: Option<PaymentStatus>,
    pub category: Option<Category>,
    /// The last payment id of the previous page.
    pub after: Option<String>,
    pub limit: usize,
}

pub(super) fn reconciliation_counted(outcome: ReconcileOutcome) {
    metrics::emit(Metric::Reconciliations { outcome });
}
