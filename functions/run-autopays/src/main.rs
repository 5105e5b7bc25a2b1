use shared::adapters::AutopayParts;
use shared::entry::PaymentsJob;
use shared::metrics::{Job, Metric};
use shared::services::autopays::{AutopayRun, AutopayWork, SchedulePageQueue, PAGE_SIZE};

/// Messages of one batch handled at the same time.
const CONCURRENCY: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    let job =
        PaymentsJob::start("AUTOPAY_RUN_QUEUE_URL", "AUTOPAY_RUN_PAGE_SIZE", PAGE_SIZE).await?;
    let parts = &AutopayParts::new(&job.clients, &job.config, job.acquirer).await?;
    let (run_queue, page_size) = (&job.queue, job.page_size);
    // Three event sources: the daily schedule, which only plans the run; the queue of
    // its pages, a page of a shard each; and the queue of new bills.
    shared::entry::run_paged(
        CONCURRENCY,
        |work: AutopayWork, now| async move {
            let autopays = parts.service();
            match work {
                AutopayWork::Page(page) => {
                    let outcome = autopays.run_page(run_queue, &page, page_size, now).await?;
                    tracing::info!(run = %page.run, shard = %page.shard_id(), ran = outcome.ran, "schedule page done");
                    // Written once per run, by the page that finished its last
                    // shard: its absence is what the missed-run alarm watches.
                    if outcome.run_completed {
                        tracing::info!(run = %page.run, "scheduled autopay run completed");
                        shared::metrics::emit(Metric::ScheduledRunsCompleted {
                            job: Job::RunAutopays,
                        });
                    }
                }
                AutopayWork::NewBill(bill) => {
                    // A UIN that does not parse names no bill: nothing to pay.
                    let run = match bill.bill() {
                        Some(uin) => autopays.on_new_bill(&bill.account_id, &uin, now).await?,
                        None => AutopayRun::default(),
                    };
                    tracing::info!(account_id = %bill.account_id, uin = %bill.uin, paid = run.paid.len(), over_limit = run.over_limit.len(), declined = run.declined.len(), "new bill looked at");
                }
            }
            Ok(())
        },
        // The run's day is the one the schedule event was due on (its `time`, in Moscow),
        // not the clock's: a retry of the event, even one that comes after midnight,
        // plans the same day's pages again and pays nothing twice.
        |scheduled, now| async move {
            let today = scheduled.time.to_offset(shared::services::MOSCOW).date();
            let run = format!("{today}#{}", scheduled.id);
            let pages = parts.service().plan_scheduled(&run, today, now).await?;
            SchedulePageQueue::enqueue_pages(run_queue, &pages).await?;
            tracing::info!(run = %run, pages = pages.len(), "scheduled autopay run planned");
            Ok(serde_json::json!({ "run": run, "planned": pages.len() }))
        },
    )
    .await
}
