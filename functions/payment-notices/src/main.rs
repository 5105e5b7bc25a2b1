use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::biller_endpoint::SandboxBillerEndpoint;
use shared::adapters::dynamodb::DynamoStore;
use shared::config::{Env, TableConfig};
use shared::services::payments::{deliver_notice, PaymentNotice};

/// Notices of one batch delivered at the same time.
const CONCURRENCY: usize = 10;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let config = TableConfig::from_env(&Env::process())?;
    let clients = shared::adapters::Clients::load().await;
    let endpoint = &SandboxBillerEndpoint::new(DynamoStore::new(
        clients.dynamodb.clone(),
        config.table_name,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let response: SqsBatchResponse = shared::batch::run(
            event.payload,
            CONCURRENCY,
            |notice: PaymentNotice, attempt| async move {
                deliver_notice(endpoint, &notice, attempt).await?;
                tracing::info!(payment_id = %notice.payment_id, uin = %notice.uin, biller_id = %notice.biller_id, attempt, "payment notice delivered");
                Ok(())
            },
        )
        .await;
        Ok::<_, Error>(response)
    }))
    .await
}
