//! The attack scenarios of each area, in a module of their own, gathered here.

use crate::support::Scenario;

/// Environment overrides every function of the security stack gets.
pub fn environment() -> Vec<(&'static str, String)> {
    vec![
        ("REGISTRY_SANDBOX_DELAY_MS", "0".to_string()),
        ("CODE_RESEND_INTERVAL_SECONDS", "0".to_string()),
    ]
}

/// Every attack scenario.
pub fn all() -> Vec<Scenario> {
    Vec::new()
}
