use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::adapters::sqs::SqsQueue;
use shared::config::{Deployment, Env, PaymentsConfig, SandboxAdapter};
use shared::entry::ColdStart;
use shared::metrics::{Job, Metric};
use shared::services::payments::{ReconcilePage, ReconcilePageQueue};

/// Pages of one batch reconciled at the same time.
const CONCURRENCY: usize = 1;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::init()?;
    let env = Env::process();
    // Payments are charged through the sandbox acquirer, the only one built: checked
    // first, before any call leaves the function.
    let sandbox = Deployment::from_env(&env)?.allow_sandbox(SandboxAdapter::Acquirer)?;
    let queue_url = env.required("RECONCILE_QUEUE_URL")?;
    let page_size = usize::try_from(env.number(
        "RECONCILE_PAGE_SIZE",
        shared::services::payments::RECONCILE_PAGE as u64,
        1,
    )?)?;
    let ColdStart {
        clients, hasher, ..
    } = ColdStart::load().await?;
    let config = PaymentsConfig::from_env(&env, hasher)?;
    let min_age = config.reconcile_min_age;
    let payments = &shared::adapters::payment_service(&clients, &config, sandbox);
    let queue = &SqsQueue::new(clients.sqs.clone(), queue_url);
    // Two event sources: the schedule, which only plans a run (the first page of every
    // shard of the open payments), and the queue of pages, one shard's page each.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = time::OffsetDateTime::now_utc();
        if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            let response =
                shared::batch::run(batch, CONCURRENCY, |page: ReconcilePage, _| async move {
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
                })
                .await?;
            return Ok::<Value, Error>(serde_json::to_value(response)?);
        }
        // The schedule event's id names the run: EventBridge retries it with the same id.
        let event_id = event
            .payload
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| event.context.request_id.clone());
        let pages = payments.plan_reconcile(&event_id, now).await?;
        queue.enqueue_reconcile(&pages).await?;
        tracing::info!(run = %event_id, pages = pages.len(), "reconciliation run planned");
        Ok(serde_json::json!({ "run": event_id, "planned": pages.len() }))
    }))
    .await
}
