//! The SQS event source mapping: polls a queue in moto and invokes the
//! function with batches, deleting what the function handled.
//!
//! Messages that are not deleted become visible again after the queue's
//! visibility timeout; moto applies the queue's RedrivePolicy and moves them to
//! the dead-letter queue after `maxReceiveCount` receives, as SQS does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use base64::Engine as _;
use serde_json::{json, Value};

use crate::events::{batch_item_failures, sqs_event, SqsRecord};
use crate::lambda::FunctionEndpoint;
use crate::model::SqsEvent;

/// SQS returns at most this many messages per ReceiveMessage.
const MAX_RECEIVE: u32 = 10;

pub struct Poller {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub source: SqsEvent,
    pub function: Arc<FunctionEndpoint>,
    pub http: reqwest::Client,
}

fn record(m: &Message) -> SqsRecord {
    let attributes: BTreeMap<String, String> = m
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
        .collect();
    let message_attributes: BTreeMap<String, Value> = m
        .message_attributes
        .iter()
        .flatten()
        .map(|(name, v)| {
            let b64 = |b: &aws_sdk_sqs::primitives::Blob| {
                base64::engine::general_purpose::STANDARD.encode(b.as_ref())
            };
            (
                name.clone(),
                json!({
                    "stringValue": v.string_value,
                    "binaryValue": v.binary_value.as_ref().map(b64),
                    "stringListValues": v.string_list_values.clone().unwrap_or_default(),
                    "binaryListValues": v.binary_list_values.iter().flatten().map(b64).collect::<Vec<_>>(),
                    "dataType": v.data_type,
                }),
            )
        })
        .collect();
    SqsRecord {
        message_id: m.message_id.clone().unwrap_or_default(),
        receipt_handle: m.receipt_handle.clone().unwrap_or_default(),
        body: m.body.clone().unwrap_or_default(),
        md5_of_body: m.md5_of_body.clone().unwrap_or_default(),
        md5_of_message_attributes: m.md5_of_message_attributes.clone(),
        attributes,
        message_attributes,
    }
}

impl Poller {
    /// Runs until the task is aborted.
    pub async fn run(self) {
        loop {
            match self.poll_once().await {
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(
                        function = %self.function.logical_id,
                        queue = %self.queue_url,
                        "SQS poll failed: {e}"
                    );
                    // moto may be restarting or gone; do not spin.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn receive(&self, max: u32, wait_secs: i32) -> Result<Vec<Message>, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, MAX_RECEIVE) as i32)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(out.messages.unwrap_or_default())
    }

    /// One receive-invoke-delete round; returns how many messages were handled.
    pub async fn poll_once(&self) -> Result<usize, String> {
        let batch_size = self.source.batch_size;
        let mut messages = self.receive(batch_size, 1).await?;
        if messages.is_empty() {
            return Ok(0);
        }
        // With a batching window, keep collecting until the batch is full or
        // the window has passed, as the event source mapping does.
        if self.source.batching_window_secs > 0 {
            let deadline =
                Instant::now() + Duration::from_secs(self.source.batching_window_secs as u64);
            while (messages.len() as u32) < batch_size {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                // Long polls are whole seconds; the last fraction is short polls.
                let wait = if left >= Duration::from_secs(1) { 1 } else { 0 };
                let more = self
                    .receive(batch_size - messages.len() as u32, wait)
                    .await?;
                if more.is_empty() && wait == 0 {
                    tokio::time::sleep(left.min(Duration::from_millis(100))).await;
                }
                messages.extend(more);
            }
        }

        let records: Vec<SqsRecord> = messages.iter().map(record).collect();
        let ids: Vec<String> = records.iter().map(|r| r.message_id.clone()).collect();
        let event = sqs_event(&records, &self.queue_arn);
        let to_delete: Vec<&SqsRecord> = match self.function.invoke(&self.http, &event).await {
            Err(e) => {
                // Nothing is deleted; the batch comes back after the visibility timeout.
                tracing::warn!(function = %self.function.logical_id, "SQS batch failed: {e}");
                vec![]
            }
            Ok(result) if self.source.report_batch_item_failures => {
                match batch_item_failures(&result, &ids) {
                    Some(failed) => records
                        .iter()
                        .filter(|r| !failed.contains(&r.message_id))
                        .collect(),
                    None => {
                        tracing::warn!(
                            function = %self.function.logical_id,
                            "invalid batchItemFailures {result}; retrying the whole batch"
                        );
                        vec![]
                    }
                }
            }
            Ok(_) => records.iter().collect(),
        };
        self.delete(&to_delete).await?;
        Ok(records.len())
    }

    async fn delete(&self, records: &[&SqsRecord]) -> Result<(), String> {
        for chunk in records.chunks(MAX_RECEIVE as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&r.receipt_handle)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            if !out.failed.is_empty() {
                tracing::warn!(queue = %self.queue_url, "could not delete {} messages", out.failed.len());
            }
        }
        Ok(())
    }
}
