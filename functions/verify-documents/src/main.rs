use shared::config::{SandboxAdapter, VerificationConfig};
use shared::entry::ColdStart;
use shared::services::profile::VerificationJob;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    shared::entry::init()?;
    // Documents are checked with the sandbox registries, the only ones built: checked
    // first, before any call leaves the function.
    let (start, sandbox) = ColdStart::load_with_sandbox(SandboxAdapter::Registry).await?;
    let config = VerificationConfig::from_env(&start.env, start.hasher)?;
    let concurrency = config.concurrency;
    let service = &shared::adapters::verification_service(&start.clients, config, sandbox);
    shared::entry::run_queue(concurrency, |job: VerificationJob, attempt| async move {
        let outcome = service
            .process(&job, attempt, time::OffsetDateTime::now_utc())
            .await?;
        tracing::info!(account_id = %job.account_id, check = job.check.as_str(), ?outcome, "job done");
        Ok(())
    })
    .await
}
