//! When a double fails: a script of faults by operation and call number, and a clock the
//! test moves by hand.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;

/// A failure a double can inject into one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A racing writer got there first: a conditional write is refused as the store
    /// refuses it when its condition does not hold (nothing is written).
    Conflict,
    /// Throttled or unavailable: the call does nothing and fails with a retryable error.
    Unavailable,
    /// A timeout with the work done: the call takes effect, and the caller sees the
    /// error `Unavailable` would give (a lost answer).
    Lost,
}

/// Faults planned per operation (`"open_payment"`, `"charge"`, …) at the Nth call of
/// it, counted from 1 over the double's life; and the count of every call made.
#[derive(Debug, Default)]
pub struct Script {
    state: Mutex<ScriptState>,
}

#[derive(Debug, Default)]
struct ScriptState {
    calls: BTreeMap<&'static str, usize>,
    planned: Vec<(&'static str, usize, Fault)>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Script {
    /// Makes the `nth` call (from 1) of `operation` fail with `fault`.
    pub fn fail(&self, operation: &'static str, nth: usize, fault: Fault) {
        lock(&self.state).planned.push((operation, nth, fault));
    }

    /// Makes the next call of `operation` fail with `fault`.
    pub fn fail_next(&self, operation: &'static str, fault: Fault) {
        let mut state = lock(&self.state);
        let nth = state.calls.get(operation).copied().unwrap_or(0) + 1;
        state.planned.push((operation, nth, fault));
    }

    /// Counts a call of `operation`; the fault planned for it, if any.
    pub fn call(&self, operation: &'static str) -> (usize, Option<Fault>) {
        let mut state = lock(&self.state);
        let count = state.calls.entry(operation).or_insert(0);
        *count += 1;
        let nth = *count;
        let fault = state
            .planned
            .iter()
            .find(|(op, n, _)| *op == operation && *n == nth)
            .map(|(_, _, f)| *f);
        (nth, fault)
    }

    /// Calls of `operation` made so far, failed ones included.
    pub fn calls(&self, operation: &str) -> usize {
        lock(&self.state).calls.get(operation).copied().unwrap_or(0)
    }
}

/// A clock the test moves: services take `now` as an argument, and this is where a test
/// gets it from.
#[derive(Debug)]
pub struct Clock {
    now: Mutex<OffsetDateTime>,
}

impl Clock {
    /// 2026-12-01 09:00 UTC (12:00 in Moscow), unless set otherwise.
    pub fn new() -> Self {
        Self::at(1_796_115_600)
    }

    pub fn at(unix: i64) -> Self {
        Self {
            now: Mutex::new(
                OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            ),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        *lock(&self.now)
    }

    pub fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }

    pub fn advance(&self, secs: i64) {
        let mut now = lock(&self.now);
        *now += time::Duration::seconds(secs);
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}
