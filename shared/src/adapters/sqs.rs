//! Queues over Amazon SQS: registry checks, new-bill notices, letters by post.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::domain::{AccountId, Uin};
use crate::services::autopays::{NewBillForAccount, SchedulePage, SchedulePageQueue};
use crate::services::bill_notices::NewBillHook;
use crate::services::charges::StoredCharge;
use crate::services::confirmation::{Letter, PostOffice};
use crate::services::notices::{BillAnnouncer, BillNotice};
use crate::services::organisations::{OrganisationCheck, OrganisationQueue};
use crate::services::payments::{
    PaymentNotice, PaymentNoticeQueue, ReconcilePage, ReconcilePageQueue,
};
use crate::services::profile::{JobQueue, VerificationJob};
use crate::services::StoreError;

/// SendMessageBatch takes at most 10 messages.
const BATCH: usize = 10;

/// A call SQS did not answer or refused, as the store error the services retry on, with
/// the SDK's whole error chain: one wording for every queue here.
fn unavailable(err: impl std::error::Error) -> StoreError {
    StoreError::Unavailable(format!(
        "SQS: {}",
        aws_sdk_sqs::error::DisplayErrorContext(&err)
    ))
}

pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

impl SqsQueue {
    /// Sends each message as its JSON, ten to a call.
    async fn send_all<T: serde::Serialize>(&self, messages: &[T]) -> Result<(), StoreError> {
        for chunk in messages.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, message) in chunk.iter().enumerate() {
                let body = serde_json::to_string(message)
                    .map_err(|e| StoreError::Rejected(format!("message: {e}")))?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| StoreError::Rejected(format!("message: {e}")))?;
                entries.push(entry);
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(unavailable)?;
            if !out.failed().is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "SQS refused {} of {} messages",
                    out.failed().len(),
                    chunk.len()
                )));
            }
        }
        Ok(())
    }
}

/// The queues of work the services fill, each a trait with one method that takes the
/// messages: on SQS every one is [`SqsQueue::send_all`], so one line a queue says so.
macro_rules! sent_as_json {
    ($($queue:ident: $method:ident(&[$message:ident]);)*) => {$(
        impl $queue for SqsQueue {
            async fn $method(&self, messages: &[$message]) -> Result<(), StoreError> {
                self.send_all(messages).await
            }
        }
    )*};
}

sent_as_json! {
    JobQueue: enqueue(&[VerificationJob]);
    PaymentNoticeQueue: queue_notices(&[PaymentNotice]);
    SchedulePageQueue: enqueue_pages(&[SchedulePage]);
    ReconcilePageQueue: enqueue_reconcile(&[ReconcilePage]);
    OrganisationQueue: enqueue_checks(&[OrganisationCheck]);
}

impl BillAnnouncer for SqsQueue {
    async fn announce(&self, uins: &[Uin]) -> Result<(), StoreError> {
        let notices: Vec<BillNotice> = uins
            .iter()
            .map(|uin| BillNotice {
                uin: uin.as_str().to_string(),
            })
            .collect();
        self.send_all(&notices).await
    }
}

/// Letters with confirmation codes, queued for the print-and-post service.
pub struct SqsPostOffice {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsPostOffice {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }
}

impl PostOffice for SqsPostOffice {
    async fn send_letter(&self, letter: &Letter) -> Result<(), StoreError> {
        // The code travels in clear here only because it has to be printed; the queue is
        // encrypted and readable by the post service alone.
        let body = serde_json::json!({
            "account_id": letter.account_id,
            "recipient": letter.recipient,
            "address": letter.address,
            "code": letter.code.expose(),
        });
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Asks the autopay runner to look at a new bill, for accounts with a new-bill autopay
/// that matches it; others cost one query and no message.
pub struct SqsAutopayTrigger {
    store: super::dynamodb::DynamoStore,
    queue: SqsQueue,
}

impl SqsAutopayTrigger {
    pub fn new(store: super::dynamodb::DynamoStore, queue: SqsQueue) -> Self {
        Self { store, queue }
    }
}

impl NewBillHook for SqsAutopayTrigger {
    async fn new_bill(
        &self,
        account_id: &AccountId,
        charge: &StoredCharge,
    ) -> Result<(), StoreError> {
        use crate::services::autopays::{AutopayStatus, AutopayStore, Trigger};
        let wanted = self.store.autopays(account_id).await?.iter().any(|a| {
            a.status == AutopayStatus::Active
                && a.trigger == Trigger::NewBill
                && a.matching.matches(charge)
        });
        if !wanted {
            return Ok(());
        }
        self.queue
            .send_all(&[NewBillForAccount {
                account_id: account_id.clone(),
                uin: charge.uin.as_str().to_string(),
            }])
            .await
    }
}
