//! Scheduled runs on the local stack: a schedule only plans (it queues the first page
//! of every shard); the work is done when the run's queue is drained. What the pages
//! did is in the function's log lines.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;

/// The URL of the queue whose name ends with `suffix` (`-reconcile`, `-autopay-run`).
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, suffix: &str) -> Result<String> {
    let queues = sqs.list_queues().send().await.context("listing queues")?;
    queues
        .queue_urls()
        .iter()
        .find(|u| u.ends_with(suffix))
        .cloned()
        .with_context(|| format!("no queue ending with {suffix}"))
}

/// Messages visible or in flight in a queue.
pub async fn messages_left(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .context("queue attributes")?;
    let count = |name: QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// Waits until the queue ending with `suffix` has been empty on two reads in a row
/// (a page queues its next page before it is deleted, so one empty read can be a gap).
pub async fn wait_drained(sqs: &aws_sdk_sqs::Client, suffix: &str, limit: Duration) -> Result<()> {
    let url = queue_url(sqs, suffix).await?;
    let deadline = Instant::now() + limit;
    let mut empty_reads = 0;
    while empty_reads < 2 {
        if messages_left(sqs, &url).await? == 0 {
            empty_reads += 1;
        } else {
            empty_reads = 0;
        }
        if Instant::now() > deadline {
            bail!("{suffix} not drained in {} s", limit.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Sums numeric `fields` over the log lines `message` of one run (`run` field; every
/// run when empty) in the logs of a function (files `<logical id>-<pid>.log`), and
/// counts the lines.
pub fn page_totals(
    log_dir: &Path,
    logical_id: &str,
    message: &str,
    run: &str,
    fields: &[&str],
) -> Result<(usize, BTreeMap<String, u64>)> {
    let mut lines = 0;
    let mut totals: BTreeMap<String, u64> = fields.iter().map(|f| (f.to_string(), 0)).collect();
    for entry in std::fs::read_dir(log_dir).context("reading the log directory")? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !(name.starts_with(&format!("{logical_id}-")) && name.ends_with(".log")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["message"] != message || (!run.is_empty() && v["run"] != run) {
                continue;
            }
            lines += 1;
            for (field, total) in totals.iter_mut() {
                *total += v[field.as_str()].as_u64().unwrap_or(0);
            }
        }
    }
    Ok((lines, totals))
}
