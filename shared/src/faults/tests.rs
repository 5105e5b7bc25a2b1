use super::*;

fn env(vars: &'static [(&'static str, &'static str)]) -> Env<impl Fn(&str) -> Option<String>> {
    Env(move |name: &str| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

#[test]
fn the_grammar_of_the_brief_parses() {
    let plan = Plan::parse(
        "dynamodb:TransactWriteItems=throttle@0.2;sesv2=timeout@nth:3;acquirer=slow:800ms@0.5",
    )
    .unwrap();
    let r = &plan.rules;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].dependency, Dependency::DynamoDb);
    assert_eq!(r[0].operation.as_deref(), Some("TransactWriteItems"));
    assert_eq!(
        (r[0].fault, r[0].trigger),
        (Fault::Throttle, Trigger::Rate(0.2))
    );
    assert_eq!(
        (r[1].dependency, r[1].operation.as_deref()),
        (Dependency::Sesv2, None)
    );
    assert_eq!(
        (r[1].fault, r[1].trigger),
        (Fault::Timeout, Trigger::Nth(3))
    );
    assert_eq!(r[2].fault, Fault::Slow(Duration::from_millis(800)));
}

#[test]
fn a_plan_file_may_have_lines_and_comments() {
    let plan =
        Plan::parse("# a comment\n\nsns:Publish=error@first:2\n registry:* = lost \n").unwrap();
    assert_eq!(plan.rules.len(), 2);
    assert_eq!(plan.rules[0].trigger, Trigger::First(2));
    assert_eq!(plan.rules[1].operation, None);
    assert_eq!(plan.rules[1].fault, Fault::Lost);
}

#[test]
fn a_bad_rule_is_named_with_what_is_wrong() {
    for (plan, bad, reason) in [
        (
            "dynamo=throttle",
            "dynamo=throttle",
            "unknown dependency `dynamo`",
        ),
        ("sns=explode", "sns=explode", "unknown fault `explode`"),
        ("sns=throttle@2", "sns=throttle@2", "unknown trigger `2`"),
        (
            "sns=throttle@nth:0",
            "sns=throttle@nth:0",
            "no count from 1",
        ),
        ("acquirer:pay=error", "acquirer:pay=error", "no call `pay`"),
        ("sqs=slow:5", "sqs=slow:5", "needs a unit"),
        ("ok=1;sqs", "ok=1", "unknown dependency"),
        ("sesv2=error; sqs", "sqs", "expected dependency"),
    ] {
        let e = Plan::parse(plan).unwrap_err();
        assert_eq!(e.rule, bad, "{plan}");
        assert!(e.reason.contains(reason), "{plan}: {}", e.reason);
    }
}

#[test]
fn nth_hits_only_that_call_and_first_the_first_ones() {
    let plan = Plan::parse("registry:check=error@nth:2;acquirer=throttle@first:2").unwrap();
    let checks: Vec<_> = (0..4)
        .map(|_| plan.decide(Dependency::Registry, "check"))
        .collect();
    assert_eq!(checks, [None, Some(Fault::Error), None, None]);
    assert_eq!(plan.decide(Dependency::Registry, "birth_record"), None);
    let charges: Vec<_> = (0..3)
        .map(|_| plan.decide(Dependency::Acquirer, "charge"))
        .collect();
    assert_eq!(
        charges,
        [Some(Fault::Throttle), Some(Fault::Throttle), None]
    );
}

#[test]
fn a_rate_hits_about_that_share_of_calls() {
    let plan = Plan::parse("dynamodb=throttle@0.25").unwrap();
    let hits = (0..4000)
        .filter(|_| plan.decide(Dependency::DynamoDb, "GetItem").is_some())
        .count();
    assert!((800..1200).contains(&hits), "{hits} of 4000");
}

#[test]
fn later_rules_count_calls_the_first_rule_took() {
    let plan = Plan::parse("sns=error@first:1;sns=timeout@nth:2").unwrap();
    assert_eq!(plan.decide(Dependency::Sns, "Publish"), Some(Fault::Error));
    assert_eq!(
        plan.decide(Dependency::Sns, "Publish"),
        Some(Fault::Timeout)
    );
    assert_eq!(plan.decide(Dependency::Sns, "Publish"), None);
}

#[test]
fn no_faults_without_the_variable() {
    let faults = Faults::from_env(&env(&[("STAGE", "prod")])).unwrap();
    assert!(!faults.is_on());
    assert_eq!(faults.hit(Dependency::DynamoDb, "GetItem"), None);
}

#[test]
fn any_plan_in_production_fails_the_cold_start() {
    let e = Faults::from_env(&env(&[("STAGE", "prod"), ("FAULTS", "sns=error@0.01")]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("FAULTS") && e.contains("refused in stage prod"),
        "{e}"
    );
    let e = Faults::from_env(&env(&[("STAGE", "prod"), ("FAULTS", "@/tmp/none")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("FAULTS"), "{e}");
}

#[test]
fn a_bad_plan_fails_the_cold_start_naming_variable_and_rule() {
    let e = Faults::from_env(&env(&[("STAGE", "dev"), ("FAULTS", "sns=error;sqs=boom")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("FAULTS") && e.contains("`sqs=boom`"), "{e}");
}

#[test]
fn a_plan_file_is_read_again_when_it_changes() {
    let path = std::env::temp_dir().join(format!("faults-{}", uuid::Uuid::new_v4()));
    let source = PlanFile::open(path.clone()).unwrap();
    assert!(source.current().is_empty(), "a missing file is no faults");
    std::fs::write(&path, "sesv2=timeout").unwrap();
    std::thread::sleep(RELOAD_INTERVAL * 2);
    assert_eq!(
        source.current().decide(Dependency::Sesv2, "SendEmail"),
        Some(Fault::Timeout)
    );
    std::fs::write(&path, "sesv2=timeout; broken").unwrap();
    std::thread::sleep(RELOAD_INTERVAL * 2);
    assert!(
        !source.current().is_empty(),
        "a broken plan keeps the last one"
    );
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(RELOAD_INTERVAL * 2);
    assert!(
        source.current().is_empty(),
        "a removed file lifts the faults"
    );
}

#[test]
fn an_unreadable_plan_file_fails_the_cold_start() {
    let path = std::env::temp_dir().join(format!("faults-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "acquirer=lost@sometimes").unwrap();
    let e = PlanFile::open(path.clone()).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert!(e.contains("acquirer=lost@sometimes"), "{e}");
}

#[tokio::test]
async fn a_faulty_integration_fails_calls_or_loses_their_answers() {
    let faults = Faults(Some(Arc::new(Source::Fixed(
        Plan::parse("billers=error@nth:1;billers=lost@nth:2").unwrap(),
    ))));
    let calls = AtomicU64::new(0);
    let faulty = Faulty::new((), faults);
    let call = || async {
        calls.fetch_add(1, Ordering::Relaxed);
        Ok::<_, String>(())
    };
    // The nth call: how many calls reached the integration after it, what it answered.
    for (calls_made, why, error) in [
        (0, "an error never reaches it", "injected failure"),
        (1, "a lost answer was carried out", "lost answer"),
    ] {
        let answer = faulty
            .run(Dependency::Billers, "deliver", call, |m| m)
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), calls_made, "{why}");
        assert!(answer.unwrap_err().contains(error));
    }
    assert!(faulty
        .run(Dependency::Billers, "deliver", call, |m| m)
        .await
        .is_ok());
}
