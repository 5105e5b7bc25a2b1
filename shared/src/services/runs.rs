//! Scheduled runs that scale out: a schedule only plans a run — the first page of every
//! shard of what it has to look at, onto a queue — and queue-driven workers handle a
//! page each, queue the shard's next page, and mark the shard done on its last. The page
//! that finds every shard of its run done, and only that one, counts the run.

use serde::{Deserialize, Serialize};

use crate::services::StoreError;

/// A shard of a sharded index: one of a fixed count, or the unsharded partition that
/// entries written before sharding stay in until their next write moves them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shard {
    Unsharded,
    Of(u16),
}

impl Shard {
    /// The shard of `id` among `count`: a stable hash (FNV-1a), so that entries spread
    /// evenly and an entry never moves while the count stays.
    pub fn of(id: &str, count: u16) -> Self {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in id.bytes() {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        let shard = hash % u32::from(count.max(1));
        // Below `count`, a u16.
        Shard::Of(u16::try_from(shard).unwrap_or(0))
    }

    /// Every shard of `count`, and the unsharded partition first.
    pub fn all(count: u16) -> impl Iterator<Item = Shard> {
        std::iter::once(Shard::Unsharded).chain((0..count).map(Shard::Of))
    }

    /// The shard's name, as in a run's record.
    pub fn name(self) -> String {
        match self {
            Shard::Unsharded => "unsharded".into(),
            Shard::Of(n) => n.to_string(),
        }
    }
}

/// A scheduled job that runs in shards and keeps a record of each run; the sweeper of
/// verifications is scheduled too, but works in one invocation and keeps none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardedJob {
    RunAutopays,
    ReconcilePayments,
}

/// One run of a sharded job: the job and the run's id, which name the run's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run<'a> {
    pub job: ShardedJob,
    pub id: &'a str,
}

/// How a page of a sharded run ends, said once for every such run: with the shard's next
/// page queued by `enqueue_next` (`next`: where that page starts), or, on the shard's last
/// page, with the shard marked done. `true`: this page completed the run.
pub async fn continue_shard<S, F, Fut>(
    store: &S,
    next: Option<String>,
    enqueue_next: F,
    run: Run<'_>,
    shard: &str,
    now: i64,
) -> Result<bool, StoreError>
where
    S: RunStore,
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), StoreError>>,
{
    match next {
        Some(after) => enqueue_next(after).await.map(|()| false),
        None => store.finish_shard(run, shard, now).await,
    }
}

/// The records of scheduled runs.
#[trait_variant::make(Send)]
pub trait RunStore {
    /// Records a run of `job` and how many shards it has, unless recorded already.
    async fn open_run(&self, run: Run<'_>, shards: usize, now: i64) -> Result<(), StoreError>;

    /// Marks one shard of a run done; `true` exactly once per run: for the call that
    /// finds every shard done. A run never opened (a page sent by hand, or redriven
    /// after its record expired) is never complete.
    async fn finish_shard(&self, run: Run<'_>, shard: &str, now: i64) -> Result<bool, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_spread_over_every_shard_and_stay_put() {
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..1_600 {
            let id = format!("ap_{i:032x}");
            let shard = Shard::of(&id, 16);
            assert_eq!(shard, Shard::of(&id, 16), "stable");
            *seen.entry(shard).or_insert(0) += 1;
        }
        assert_eq!(seen.len(), 16, "{seen:?}");
        // Even enough that no shard holds twice its share.
        assert!(seen.values().all(|&n| (50..200).contains(&n)), "{seen:?}");
        assert_eq!(Shard::all(16).count(), 17);
        assert_eq!(Shard::all(16).next(), Some(Shard::Unsharded));
    }
}
