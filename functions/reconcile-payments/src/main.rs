use shared::entry::PaymentsJob;
use shared::metrics::{Job, Metric};
use shared::services::payments::{ReconcilePage, ReconcilePageQueue, RECONCILE_PAGE};

/// Pages of one batch reconciled at the same time.
const CONCURRENCY: usize = 1;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    let job =
        PaymentsJob::start("RECONCILE_QUEUE_URL", "RECONCILE_PAGE_SIZE", RECONCILE_PAGE).await?;
    let min_age = job.config.reconcile_min_age;
    let payments =
        &shared::adapters::payment_service(&job.clients, &job.config, job.acquirer).await?;
    let (queue, page_size) = (&job.queue, job.page_size);
    // The schedule only plans a run (the first page of every shard of the open
    // payments); the queue brings the pages, one shard's page each.
    shared::entry::run_paged(
        CONCURRENCY,
        |page: ReconcilePage, now| async move {
            let outcome = payments
                .reconcile_page(queue, &page, page_size, now, min_age)
                .await?;
            tracing::info!(
                run = %page.run,
                shard = %page.shard.name(),
                checked = outcome.run.checked,
                settled = outcome.run.settled,
                "reconciliation page done"
            );
            // Written once per run, by the page that finished its last shard: its
            // absence over a while is what the missed-run alarm watches.
            if outcome.run_completed {
                tracing::info!(run = %page.run, "reconciliation run completed");
                shared::metrics::emit(Metric::ScheduledRunsCompleted {
                    job: Job::ReconcilePayments,
                });
            }
            Ok(())
        },
        // Reconciled as of the clock: what is open now, however late the event came.
        |scheduled, now| async move {
            let run = scheduled.id;
            let pages = payments.plan_reconcile(&run, now).await?;
            queue.enqueue_reconcile(&pages).await?;
            tracing::info!(run = %run, pages = pages.len(), "reconciliation run planned");
            Ok(serde_json::json!({ "run": run, "planned": pages.len() }))
        },
    )
    .await
}
