use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::{Env, PaymentsConfig};
use shared::metrics::{Job, Metric};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    shared::metrics::init()?;
    let config = PaymentsConfig::from_env(&Env::process())?;
    let min_age = config.reconcile_min_age;
    let clients = shared::adapters::Clients::load().await;
    let payments = &shared::adapters::payment_service(&clients, &config);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let run = payments
            .reconcile(time::OffsetDateTime::now_utc(), min_age)
            .await?;
        tracing::info!(
            checked = run.checked,
            settled = run.settled,
            "reconciliation run"
        );
        // Its absence over a while is what the missed-run alarm watches.
        shared::metrics::emit(Metric::ScheduledRunsCompleted {
            job: Job::ReconcilePayments,
        });
        Ok::<_, Error>(serde_json::json!({"checked": run.checked, "settled": run.settled}))
    }))
    .await
}
