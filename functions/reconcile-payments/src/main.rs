use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::{Deployment, Env, PaymentsConfig, SandboxAdapter};
use shared::metrics::{Job, Metric};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    shared::metrics::init()?;
    let env = Env::process();
    // Payments are charged through the sandbox acquirer, the only one built: checked
    // first, before any call leaves the function.
    let sandbox = Deployment::from_env(&env)?.allow_sandbox(SandboxAdapter::Acquirer)?;
    let clients = shared::adapters::Clients::load().await?;
    let config = PaymentsConfig::from_env(&env, clients.hasher(&env).await?)?;
    let min_age = config.reconcile_min_age;
    let payments = &shared::adapters::payment_service(&clients, &config, sandbox);
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
