//! Technology behind the service traits. Each adapter is named by what it runs on.

pub mod aws;
pub mod dynamodb;
pub mod notify;

use crate::config::{CodesConfig, IdentityConfig};
use crate::services::codes::CodeService;
use crate::services::identity::IdentityService;

/// The code service over DynamoDB, SNS and SES: built once per cold start.
pub async fn code_service(
    config: CodesConfig,
) -> CodeService<dynamodb::DynamoStore, notify::AwsNotifier> {
    let sdk = aws::load().await;
    CodeService::new(
        dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        notify::AwsNotifier::new(
            aws_sdk_sns::Client::new(&sdk),
            aws_sdk_sesv2::Client::new(&sdk),
            config.email_sender,
            config.sms_sender_id,
        ),
        config.hasher,
        config.limits,
    )
}

/// The identity service over DynamoDB, SNS and SES: built once per cold start.
pub async fn identity_service(
    config: IdentityConfig,
) -> IdentityService<dynamodb::DynamoStore, notify::AwsNotifier> {
    let sdk = aws::load().await;
    IdentityService::new(
        dynamodb::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.table_name),
        notify::AwsNotifier::new(
            aws_sdk_sns::Client::new(&sdk),
            aws_sdk_sesv2::Client::new(&sdk),
            config.email_sender,
            config.sms_sender_id,
        ),
        config.hasher,
        config.limits,
    )
}
