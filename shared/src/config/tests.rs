use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Env(move |k: &str| map.get(k).cloned())
}

fn hasher() -> Hasher {
    Hasher::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
}

/// The sentence a refused configuration fails the cold start with.
fn refused<T>(result: Result<T, ConfigError>) -> String {
    result.err().unwrap().to_string()
}

const BASE: [(&str, &str); 2] = [
    ("TABLE_NAME", "t"),
    ("EMAIL_SENDER", "no-reply@uslugi.example"),
];

#[test]
fn defaults_match_the_documented_limits() {
    let c = CodesConfig::from_env(&env(&BASE), hasher()).unwrap();
    assert_eq!(c.limits.code_ttl.as_secs(), 600);
    assert_eq!(c.limits.max_attempts, 5);
    assert_eq!(c.limits.resend_interval.as_secs(), 60);
    assert_eq!(c.limits.max_per_destination, 5);
    assert_eq!(c.limits.max_per_client_ip, 20);
}

#[test]
fn overrides_and_errors_name_the_variable() {
    let mut pairs = BASE.to_vec();
    pairs.push(("CODE_TTL_SECONDS", "5"));
    assert_eq!(
        CodesConfig::from_env(&env(&pairs), hasher())
            .unwrap()
            .limits
            .code_ttl
            .as_secs(),
        5
    );
    pairs.push(("CODE_MAX_ATTEMPTS", "zero"));
    let err = refused(CodesConfig::from_env(&env(&pairs), hasher()));
    assert!(err.contains("CODE_MAX_ATTEMPTS"), "{err}");
    let err = refused(CodesConfig::from_env(&env(&BASE[..1]), hasher()));
    assert!(err.contains("EMAIL_SENDER"), "{err}");
}

fn deployment(stage: &str, integrations: &str) -> Result<Deployment, ConfigError> {
    Deployment::from_env(&env(&[("STAGE", stage), ("INTEGRATIONS", integrations)]))
}

#[test]
fn sandboxes_run_outside_production_only() {
    let dev = deployment("dev", "sandbox").unwrap();
    assert!(!dev.is_production());
    for adapter in [
        SandboxAdapter::Registry,
        SandboxAdapter::Acquirer,
        SandboxAdapter::BillerEndpoint,
    ] {
        assert!(dev.allow_sandbox(adapter).is_ok());
    }
    let prod = deployment("prod", "sandbox").unwrap();
    assert!(prod.is_production());
    let err = refused(prod.allow_sandbox(SandboxAdapter::Registry));
    assert!(err.contains("INTEGRATIONS"), "{err}");
    assert!(err.contains("verify any passport"), "{err}");
    let err = refused(prod.allow_sandbox(SandboxAdapter::Acquirer));
    assert!(err.contains("paid without any money"), "{err}");
}

#[test]
fn live_integrations_run_sandboxes_for_the_rest_outside_production_only() {
    let dev = deployment("dev", "live").unwrap();
    assert!(dev.allow_sandbox(SandboxAdapter::Registry).is_ok());
    let err = refused(
        deployment("prod", "live")
            .unwrap()
            .allow_sandbox(SandboxAdapter::Registry),
    );
    assert!(err.contains("not built yet"), "{err}");
}

#[test]
fn stage_and_integrations_are_required_and_checked() {
    let err = refused(Deployment::from_env(&env(&[("INTEGRATIONS", "sandbox")])));
    assert!(err.contains("STAGE"), "{err}");
    let err = refused(deployment("dev", "sandbx"));
    assert!(err.contains("INTEGRATIONS"), "{err}");
}

#[test]
fn limits_default_to_what_an_empty_environment_reads() {
    let s = IdentityConfig::from_env(&env(&BASE), hasher())
        .unwrap()
        .limits;
    assert_eq!(
        (s.idle.as_secs(), s.max.as_secs(), s.foreign_idle.as_secs()),
        (12 * 3600, 30 * 24 * 3600, 30 * 60)
    );
    assert_eq!((s.max_failures, s.max_client_failures), (5, 50));
    assert_eq!(s.step_up_window, STEP_UP_WINDOW);
    let holds = HoldLimits::from_env(&env(&[])).unwrap();
    assert_eq!(holds, HoldLimits::default());
    assert_eq!((holds.hold.as_secs(), holds.max_held_bills), (300, 20));
    let mut pairs = BASE.to_vec();
    pairs.push(("PAYMENT_MAX_HELD_BILLS", "1"));
    assert!(refused(HoldLimits::from_env(&env(&pairs))).contains("must be at least"));
    pairs.push(("LOGIN_MAX_FAILURES", "99999999999"));
    let err = refused(SessionLimits::from_env(&env(&pairs)));
    assert!(
        err.contains("LOGIN_MAX_FAILURES") && err.contains("too large"),
        "{err}"
    );
}
