//! A per-account request limit kept in the function instance's memory.
//!
//! Looking a bill up by UIN must stay one DynamoDB read, so its limit cannot be a counter
//! in the table. Each warm instance counts an account's lookups in fixed windows instead.
//! An account spread over several instances gets the limit once per instance, so the
//! bound is the limit times the function's concurrency (capped in the template); the
//! API's throttling bounds the rest.

use std::collections::HashMap;
use std::sync::Mutex;

/// Accounts remembered at most; past it, windows that ended are forgotten first.
const MAX_TRACKED: usize = 50_000;

pub struct WindowLimiter {
    limit: u32,
    window_secs: i64,
    /// Account → (window start, requests in it).
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

impl WindowLimiter {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self {
            limit: limit.max(1),
            window_secs: window_secs.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `key` at `now` (Unix seconds). `Err(seconds)`: over the limit,
    /// and how long until the window ends.
    pub fn check(&self, key: &str, now: i64) -> Result<(), u64> {
        let mut counts = match self.counts.lock() {
            Ok(guard) => guard,
            // A panic elsewhere while counting leaves counts that are still usable.
            Err(poisoned) => poisoned.into_inner(),
        };
        let window = now - now.rem_euclid(self.window_secs);
        if counts.len() >= MAX_TRACKED && !counts.contains_key(key) {
            counts.retain(|_, (start, _)| *start == window);
            if counts.len() >= MAX_TRACKED {
                counts.clear();
            }
        }
        let entry = counts.entry(key.to_string()).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.limit {
            return Err(u64::try_from(window + self.window_secs - now)
                .unwrap_or(1)
                .max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_over_the_limit_waits_for_the_next_window() {
        let limiter = WindowLimiter::new(3, 600);
        // 1_800_000_000 is a multiple of 600: a window starts there.
        let start = 1_800_000_000;
        for i in 0..3 {
            assert_eq!(limiter.check("a", start + i), Ok(()));
        }
        assert_eq!(limiter.check("a", start + 100), Err(500));
        // Others are not held back by it.
        assert_eq!(limiter.check("b", start + 100), Ok(()));
        // The next window starts afresh.
        assert_eq!(limiter.check("a", start + 600), Ok(()));
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = WindowLimiter::new(1, 60);
        for i in 0..(MAX_TRACKED + 10) {
            let _ = limiter.check(&i.to_string(), 1_000);
        }
        assert!(limiter.counts.lock().unwrap().len() <= MAX_TRACKED);
        // A fresh window lets everyone in again.
        assert_eq!(limiter.check("0", 1_080), Ok(()));
    }
}
