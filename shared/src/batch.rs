//! Queue-triggered functions: a per-message function lifted into a batch handler that
//! runs the messages of one batch concurrently and reports only the failed ones
//! (`ReportBatchItemFailures`), so Lambda deletes the rest. A batch in which every
//! message failed is an error of the invocation instead: Lambda counts it as failed and
//! the SQS event source scales its pollers down, so a dependency that is down for every
//! job is not hammered at full rate. The business code sees a parsed job and its attempt
//! number, never SQS.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::stream::{self, StreamExt};
use serde::de::DeserializeOwned;

use crate::AppError;

/// How a message is treated when its body is not a job: it fails on every delivery, so
/// the queue's redrive policy moves it to the dead-letter queue without blocking others.
fn parse<J: DeserializeOwned>(message: &SqsMessage) -> Result<J, AppError> {
    let body = message.body.as_deref().unwrap_or_default();
    serde_json::from_str(body).map_err(|e| AppError::Internal(format!("unreadable job: {e}")))
}

/// Deliveries of this message so far, from 1 (SQS's `ApproximateReceiveCount`).
fn attempt(message: &SqsMessage) -> u32 {
    message
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// Every message of a non-empty batch failed. Returned from the handler it makes the
/// invocation fail, so all messages come back after the visibility timeout (and reach the
/// dead-letter queue after `maxReceiveCount`) exactly as reported failures do.
#[derive(Debug, thiserror::Error)]
#[error("all {failed} messages of the batch failed")]
pub struct BatchFailed {
    pub failed: usize,
}

/// Runs `process` for every message, at most `concurrency` at a time, and lists the ids
/// of those that failed; fails as a whole when no message of a non-empty batch succeeded.
pub async fn run<J, F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    process: F,
) -> Result<SqsBatchResponse, BatchFailed>
where
    J: DeserializeOwned,
    F: Fn(J, u32) -> Fut,
    Fut: Future<Output = Result<(), AppError>>,
{
    let process = &process;
    let received = event.records.len();
    let failed: Vec<String> = stream::iter(event.records)
        .map(|message| async move {
            let id = message.message_id.clone().unwrap_or_default();
            let outcome = match parse::<J>(&message) {
                Ok(job) => process(job, attempt(&message)).await,
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => None,
                Err(e) => {
                    tracing::warn!(message_id = %id, attempt = attempt(&message), error = %e, "job failed; the queue retries it or, after its last delivery, dead-letters it");
                    Some(id)
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .filter_map(|failed| async move { failed })
        .collect()
        .await;
    if received > 0 && failed.len() == received {
        tracing::error!(
            failed = received,
            "every message of the batch failed; the invocation fails so the queue's pollers back off"
        );
        return Err(BatchFailed { failed: received });
    }
    let mut response = SqsBatchResponse::default();
    for id in failed {
        response.add_failure(id);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: &str, body: &str, receives: &str) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = Some(id.into());
        m.body = Some(body.into());
        m.attributes
            .insert("ApproximateReceiveCount".into(), receives.into());
        m
    }

    fn batch_of(records: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    #[tokio::test]
    async fn only_failed_messages_are_reported() {
        let event = batch_of(vec![
            message("ok", "1", "1"),
            message("fails", "2", "1"),
            message("poison", "not json", "1"),
            message("third-try", "3", "3"),
        ]);
        let response = run(event, 4, |n: u32, attempt: u32| async move {
            match n {
                2 => Err(AppError::StoreUnavailable("registry down".into())),
                3 if attempt < 3 => Err(AppError::StoreUnavailable("too early".into())),
                _ => Ok(()),
            }
        })
        .await
        .expect("a partial failure is not an error of the batch");
        let mut failed: Vec<String> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect();
        failed.sort();
        assert_eq!(failed, vec!["fails".to_string(), "poison".to_string()]);
    }

    #[tokio::test]
    async fn a_batch_in_which_every_message_failed_is_an_error() {
        let event = batch_of(vec![
            message("down", "1", "1"),
            message("poison", "not json", "2"),
        ]);
        let outcome = run(event, 4, |_: u32, _: u32| async move {
            Err(AppError::StoreUnavailable("registry down".into()))
        })
        .await;
        match outcome {
            Err(BatchFailed { failed }) => assert_eq!(failed, 2),
            Ok(response) => panic!("expected the batch to fail, got {response:?}"),
        }
    }

    #[tokio::test]
    async fn an_empty_batch_succeeds_with_nothing_to_retry() {
        let response = run(SqsEvent::default(), 4, |_: u32, _: u32| async move {
            Err(AppError::StoreUnavailable("never called".into()))
        })
        .await
        .expect("an empty batch has nothing that failed");
        assert!(response.batch_item_failures.is_empty());
    }
}
