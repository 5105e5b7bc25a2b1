use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::adapters::sqs::SqsQueue;
use shared::adapters::AutopayParts;
use shared::config::{Deployment, Env, PaymentsConfig, SandboxAdapter};
use shared::entry::ColdStart;
use shared::metrics::{Job, Metric};
use shared::services::autopays::AutopayWork;

/// Messages of one batch handled at the same time.
const CONCURRENCY: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::init()?;
    let env = Env::process();
    // Payments are charged through the sandbox acquirer, the only one built: checked
    // first, before any call leaves the function.
    let sandbox = Deployment::from_env(&env)?.allow_sandbox(SandboxAdapter::Acquirer)?;
    let run_queue_url = env.required("AUTOPAY_RUN_QUEUE_URL")?;
    let page_size = usize::try_from(env.number(
        "AUTOPAY_RUN_PAGE_SIZE",
        shared::services::autopays::PAGE_SIZE as u64,
        1,
    )?)?;
    let ColdStart {
        clients, hasher, ..
    } = ColdStart::load().await?;
    let config = PaymentsConfig::from_env(&env, hasher)?;
    let parts = &AutopayParts::new(&clients, &config, sandbox);
    let run_queue = &SqsQueue::new(clients.sqs.clone(), run_queue_url);
    // Three event sources: the daily schedule, which only plans the run; the queue of
    // its pages, a page of a shard each; and the queue of new bills.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let autopays = parts.service();
        let now = time::OffsetDateTime::now_utc();
        if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            let response = shared::batch::run(batch, CONCURRENCY, |work: AutopayWork, _| {
                let autopays = &autopays;
                async move {
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
                            let run = autopays.on_new_bill(&bill.account_id, &bill.uin, now).await?;
                            tracing::info!(account_id = %bill.account_id, uin = %bill.uin, paid = run.paid.len(), over_limit = run.over_limit.len(), declined = run.declined.len(), "new bill looked at");
                        }
                    }
                    Ok(())
                }
            })
            .await?;
            return Ok::<Value, Error>(serde_json::to_value(response)?);
        }
        // The schedule event's id names the run: EventBridge retries it with the same id,
        // which plans the same pages again and pays nothing twice.
        let today = now.to_offset(shared::services::MOSCOW).date();
        let event_id = event
            .payload
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| event.context.request_id.clone());
        let run = format!("{today}#{event_id}");
        let pages = autopays.plan_scheduled(&run, now).await?;
        shared::services::autopays::SchedulePageQueue::enqueue_pages(run_queue, &pages).await?;
        tracing::info!(run = %run, pages = pages.len(), "scheduled autopay run planned");
        Ok(serde_json::json!({ "run": run, "planned": pages.len() }))
    }))
    .await
}
