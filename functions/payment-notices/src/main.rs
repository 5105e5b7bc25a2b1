use shared::adapters::dynamodb::DynamoStore;
use shared::config::{SandboxAdapter, TableConfig};
use shared::entry::ColdStart;
use shared::services::payments::PaymentNotice;
use shared::services::payments::{deliver_payment_notice, NoticeOutcome};

/// Notices of one batch delivered at the same time.
const CONCURRENCY: usize = 10;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    shared::entry::init()?;
    // Notices go to the sandbox billers' endpoint, the only one built: checked first,
    // before any call leaves the function.
    let (start, sandbox) = ColdStart::load_with_sandbox(SandboxAdapter::BillerEndpoint).await?;
    let config = TableConfig::from_env(&start.env, start.hasher)?;
    let store = &DynamoStore::new(start.clients.dynamodb.clone(), config.table_name.clone());
    let endpoint =
        &shared::adapters::sandbox_biller_endpoint(&start.clients, config.table_name, sandbox);
    shared::entry::run_queue(CONCURRENCY, |notice: PaymentNotice, attempt| async move {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match deliver_payment_notice(store, endpoint, &notice, attempt, now).await? {
            NoticeOutcome::Delivered => tracing::info!(payment_id = %notice.payment_id, uin = notice.uin.as_str(), biller_id = %notice.biller_id, attempt, "payment notice delivered"),
            NoticeOutcome::Dropped => tracing::warn!(payment_id = %notice.payment_id, uin = notice.uin.as_str(), biller_id = %notice.biller_id, attempt, "payment notice dropped: the biller was revoked"),
        }
        Ok(())
    })
    .await
}
