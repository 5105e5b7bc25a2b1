//! The cost of one password hash and one verification, timed in the harness with the
//! functions' own code (`shared::passwords`), before any function runs.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use shared::passwords;
use shared::redact::Secret;

pub struct HashCost {
    /// Each `passwords::hash` of a fresh password.
    pub hash: Vec<Duration>,
    /// Each `passwords::verify` of that password against its hash.
    pub verify: Vec<Duration>,
    /// Each `passwords::verify` with no stored hash (an unknown login: the dummy hash).
    pub verify_unknown: Vec<Duration>,
}

/// Times `runs` hashes and verifications after one untimed round (first use of the
/// allocator's 19 MiB and of the code).
pub fn measure(runs: usize) -> Result<HashCost> {
    let mut cost = HashCost {
        hash: Vec::with_capacity(runs),
        verify: Vec::with_capacity(runs),
        verify_unknown: Vec::with_capacity(runs),
    };
    for n in 0..=runs {
        let password = Secret::new(format!("Lilac{n}harbour"));
        let started = Instant::now();
        let stored = passwords::hash(&password)?;
        let hashed = started.elapsed();

        let started = Instant::now();
        let matches = passwords::verify(&password, Some(&stored));
        let verified = started.elapsed();
        if !matches {
            bail!("shared::passwords::verify refused the password it had just hashed");
        }

        let started = Instant::now();
        let matches = passwords::verify(&password, None);
        let verified_unknown = started.elapsed();
        if matches {
            bail!("shared::passwords::verify accepted a password for no stored hash");
        }
        if n > 0 {
            cost.hash.push(hashed);
            cost.verify.push(verified);
            cost.verify_unknown.push(verified_unknown);
        }
    }
    Ok(cost)
}
