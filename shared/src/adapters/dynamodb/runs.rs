//! Records of scheduled runs: `AUTOPAYRUN#{run}` / `RUN` for the daily autopay run,
//! `RECONCILERUN#{run}` / `RUN` for reconciliation.

use aws_sdk_dynamodb::types::ReturnValue;

use super::*;
use crate::services::runs::{Run, RunStore, ShardedJob};
use crate::services::StoreError;

/// How long a run's record is kept.
const RUN_MEMORY_SECS: i64 = 30 * 24 * 3600;

fn run_key(run: Run<'_>) -> Item {
    let prefix = match run.job {
        ShardedJob::RunAutopays => "AUTOPAYRUN",
        ShardedJob::ReconcilePayments => "RECONCILERUN",
    };
    key(format!("{prefix}#{}", run.id), "RUN")
}

impl RunStore for DynamoStore {
    async fn open_run(&self, run: Run<'_>, shards: usize, now: i64) -> Result<(), StoreError> {
        let mut item = run_key(run);
        item.extend([
            ("shards".into(), n(shards)),
            ("opened_at".into(), n(now)),
            (TTL_ATTRIBUTE.into(), n(now + RUN_MEMORY_SECS)),
        ]);
        match self.put_if_absent(item).await? {
            // Planned before (the same schedule event again): its record stands.
            PutOutcome::Written | PutOutcome::AlreadyThere => Ok(()),
        }
    }

    async fn finish_shard(&self, run: Run<'_>, shard: &str, now: i64) -> Result<bool, StoreError> {
        let updated = self
            .update_item(run_key(run))
            // A run never opened gets a record that expires too.
            .update_expression("ADD done_shards :shard SET #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":shard", AttributeValue::Ss(vec![shard.to_string()]))
            .expression_attribute_values(":ttl", n(now + RUN_MEMORY_SECS))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = updated.attributes() else {
            return Ok(false);
        };
        let done = match item.get("done_shards") {
            Some(AttributeValue::Ss(set)) => set.len(),
            _ => 0,
        };
        let Ok(shards) = get_n::<usize>(item, "shards") else {
            return Ok(false);
        };
        if done < shards || item.contains_key("completed_at") {
            return Ok(false);
        }
        // Two last shards finishing together: one of them counts the run.
        let result = self
            .update_item(run_key(run))
            .update_expression("SET completed_at = :now")
            .condition_expression("attribute_not_exists(completed_at)")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        won_race(result.map_err(classify))
    }
}
