use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::adapters::{AutopayParts, Clients};
use shared::config::{Deployment, Env, PaymentsConfig, SandboxAdapter};
use shared::metrics::{Job, Metric};
use shared::services::autopays::NewBillForAccount;

/// New bills of one batch paid at the same time.
const CONCURRENCY: usize = 5;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    shared::metrics::init()?;
    let env = Env::process();
    // Payments are charged through the sandbox acquirer, the only one built: checked
    // first, before any call leaves the function.
    let sandbox = Deployment::from_env(&env)?.allow_sandbox(SandboxAdapter::Acquirer)?;
    let clients = Clients::load().await?;
    let config = PaymentsConfig::from_env(&env, clients.hasher(&env).await?)?;
    let parts = &AutopayParts::new(&clients, &config, sandbox);
    // Two event sources: the daily schedule, and the queue of new bills.
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let autopays = parts.service();
        let now = time::OffsetDateTime::now_utc();
        if event.payload.get("Records").is_some() {
            let batch: SqsEvent = serde_json::from_value(event.payload)?;
            let response = shared::batch::run(
                batch,
                CONCURRENCY,
                |bill: NewBillForAccount, _| {
                    let autopays = &autopays;
                    async move {
                        let run = autopays.on_new_bill(&bill.account_id, &bill.uin, now).await?;
                        tracing::info!(account_id = %bill.account_id, uin = %bill.uin, paid = run.paid.len(), over_limit = run.over_limit.len(), declined = run.declined.len(), "new bill looked at");
                        Ok(())
                    }
                },
            )
            .await?;
            return Ok::<Value, Error>(serde_json::to_value(response)?);
        }
        let ran = autopays.run_scheduled(now).await?;
        tracing::info!(ran, "scheduled autopays run");
        // Only the daily run counts: its absence is what the missed-run alarm watches.
        shared::metrics::emit(Metric::ScheduledRunsCompleted {
            job: Job::RunAutopays,
        });
        Ok(serde_json::json!({ "ran": ran }))
    }))
    .await
}
