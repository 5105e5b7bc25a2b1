use shared::config::{SandboxAdapter, VerificationConfig};
use shared::entry::ColdStart;
use shared::services::organisations::{run_check, VerificationMessage};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    shared::entry::init()?;
    // Documents are checked with the sandbox registries, the only ones built: checked
    // first, before any call leaves the function.
    let (start, sandbox) = ColdStart::load_with_sandbox(SandboxAdapter::Registry).await?;
    let config = VerificationConfig::from_env(&start.env, start.hasher)?;
    let concurrency = config.concurrency;
    // Organisations are checked in the business registers, on the same queue.
    let store = &start.clients.store(config.table_name.clone());
    let business = &shared::adapters::business_registry(&config, sandbox);
    let service = &shared::adapters::verification_service(&start.clients, config, sandbox);
    shared::entry::run_queue(concurrency, |message: VerificationMessage, attempt| async move {
        let now = time::OffsetDateTime::now_utc();
        match message {
            VerificationMessage::Document(job) => {
                let outcome = service.process(&job, attempt, now).await?;
                tracing::info!(account_id = %job.account_id, check = job.check.as_str(), ?outcome, "job done");
            }
            VerificationMessage::Organisation(check) => {
                let outcome = run_check(store, business, &check, attempt, now).await?;
                tracing::info!(organisation_id = %check.organisation_id, ?outcome, "organisation check done");
            }
        }
        Ok(())
    })
    .await
}
