//! The verification queue over Amazon SQS.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::services::profile::{JobQueue, VerificationJob};
use crate::services::StoreError;

/// SendMessageBatch takes at most 10 messages.
const BATCH: usize = 10;

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

impl JobQueue for SqsQueue {
    async fn enqueue(&self, jobs: &[VerificationJob]) -> Result<(), StoreError> {
        for chunk in jobs.chunks(BATCH) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (i, job) in chunk.iter().enumerate() {
                let body = serde_json::to_string(job)
                    .map_err(|e| StoreError::Rejected(format!("job: {e}")))?;
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .map_err(|e| StoreError::Rejected(format!("job message: {e}")))?;
                entries.push(entry);
            }
            let out = self
                .client
                .send_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    StoreError::Unavailable(format!(
                        "SQS: {}",
                        aws_sdk_sqs::error::DisplayErrorContext(&e)
                    ))
                })?;
            if !out.failed().is_empty() {
                return Err(StoreError::Unavailable(format!(
                    "SQS refused {} of {} jobs",
                    out.failed().len(),
                    chunk.len()
                )));
            }
        }
        Ok(())
    }
}
