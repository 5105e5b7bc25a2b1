//! Technology behind the service traits. Each adapter is named by what it runs on.

pub mod aws;
pub mod dynamodb;
pub mod notify;

use crate::config::{CodesConfig, IdentityConfig};
use crate::services::codes::CodeService;
use crate::services::identity::IdentityService;

/// The SDK clients every service is built on: one configuration load and one set of
/// connections per cold start, however many services a function uses.
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sesv2: aws_sdk_sesv2::Client,
}

impl Clients {
    pub async fn load() -> Self {
        let sdk = aws::load().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
            sns: aws_sdk_sns::Client::new(&sdk),
            sesv2: aws_sdk_sesv2::Client::new(&sdk),
        }
    }

    fn notifier(&self, email_sender: String, sms_sender_id: Option<String>) -> notify::AwsNotifier {
        notify::AwsNotifier::new(
            self.sns.clone(),
            self.sesv2.clone(),
            email_sender,
            sms_sender_id,
        )
    }
}

/// The code service over DynamoDB, SNS and SES.
pub fn code_service(
    clients: &Clients,
    config: CodesConfig,
) -> CodeService<dynamodb::DynamoStore, notify::AwsNotifier> {
    CodeService::new(
        dynamodb::DynamoStore::new(clients.dynamodb.clone(), config.table_name),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
        config.limits,
    )
}

/// The identity service over DynamoDB, SNS and SES.
pub fn identity_service(
    clients: &Clients,
    config: IdentityConfig,
) -> IdentityService<dynamodb::DynamoStore, notify::AwsNotifier> {
    IdentityService::new(
        dynamodb::DynamoStore::new(clients.dynamodb.clone(), config.table_name),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
        config.limits,
    )
}
