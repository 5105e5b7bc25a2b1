use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::{Env, SweepConfig};
use shared::metrics::{Job, Metric};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::init()?;
    let env = Env::process();
    let config = SweepConfig::from_env(&env)?;
    let clients = shared::adapters::Clients::load().await?;
    let sweeper = &shared::adapters::verification_sweeper(&clients, config);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let run = sweeper.sweep(time::OffsetDateTime::now_utc()).await?;
        tracing::info!(
            profiles = run.profiles,
            requeued = run.requeued,
            failed = run.failed,
            raced = run.raced,
            "verification sweep run"
        );
        // Its absence over a while is what the missed-run alarm watches.
        shared::metrics::emit(Metric::ScheduledRunsCompleted {
            job: Job::SweepVerifications,
        });
        Ok::<_, Error>(serde_json::json!({
            "profiles": run.profiles,
            "requeued": run.requeued,
            "failed": run.failed,
            "raced": run.raced,
        }))
    }))
    .await
}
