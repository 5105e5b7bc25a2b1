//! End-to-end tests of what keeps verification moving: the sweeper of overdue checks (a
//! registry that never answers ends `failed`, and the citizen retries) and the holder
//! index of new-bill notices, which follows verified documents and can be repaired.
//!
//! A stack of its own, with a deadline of a few seconds: the sweeper acts on every overdue
//! check of the stack, which the other suites' scenarios must not meet.

mod support;

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use support::*;

/// Seconds a check may stay pending on this stack before the sweeper steps in.
const DEADLINE_SECS: u64 = 5;

fn main() {
    run_suite(async {
        let params = [
            ("VerificationRetrySeconds", "2".to_string()),
            ("VerificationDeadlineSeconds", DEADLINE_SECS.to_string()),
            ("VerificationMaxRequeues", "1".to_string()),
        ];
        let (stack, api) = open_stack(&quick_sandbox(&[]), &params, 4).await;
        // One after another: each sweep acts on every overdue check of the stack.
        let scenarios = vec![
            scenario!(a_registry_that_never_answers_fails_and_the_citizen_retries),
            scenario!(the_holder_index_follows_documents_and_is_repaired),
        ];
        run_then_stop(stack, &api, scenarios, false).await
    })
}

/// Fires the sweeper as its schedule would; what the run did.
async fn sweep(api: &Api) -> Value {
    api.fire_schedule("sweep-verifications").await
}

/// Waits until every check queued now is overdue.
async fn past_the_deadline() {
    tokio::time::sleep(Duration::from_millis(DEADLINE_SECS * 1000 + 1100)).await;
}

fn version_of(p: &Value) -> String {
    format!("\"{}\"", p["version"])
}

async fn a_registry_that_never_answers_fails_and_the_citizen_retries(api: Api) {
    let (c, token) = citizen(&api).await;
    // The sandbox never answers for a SNILS starting with 996.
    let silent = snils_of("996");
    let patched = Instant::now();
    let reply = patch_new(&api, &token, json!({"documents": {"snils": silent}})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(status(&reply.body, "snils"), "pending");
    let item = api
        .item(&format!("ACCOUNT#{}", c.account_id), "PROFILE")
        .await
        .unwrap_or_else(|| panic!("no profile item"));
    assert_eq!(
        string_attr(&item, "gsi1pk"),
        "VERIFY_DUE",
        "pending: in the sweeper's index"
    );

    // Not overdue yet: the sweeper leaves it. The run is counted for the missed-run
    // alarm.
    let function = "SweepVerificationsFunction";
    let dims = [("Job", "sweep-verifications")];
    let before = api
        .matching_metric_lines(function, "ScheduledRunsCompleted", &dims)
        .len();
    let run = sweep(&api).await;
    // A run that ended before the deadline cannot have found the check overdue; on a
    // machine slow enough to get past it, the run may have queued it again already.
    if patched.elapsed() < Duration::from_secs(DEADLINE_SECS) {
        assert_eq!(run["requeued"], 0, "{run}");
    }
    assert_eq!(run["failed"], 0, "{run}");
    let early_requeues = run["requeued"].as_u64().unwrap_or_default();
    api.assert_one_more_metric(function, "ScheduledRunsCompleted", &dims, before)
        .await;

    // Overdue: queued again once (VerificationMaxRequeues = 1), still pending.
    if early_requeues == 0 {
        past_the_deadline().await;
        let run = sweep(&api).await;
        assert_eq!(run["requeued"], 1, "{run}");
        assert_eq!(run["failed"], 0, "{run}");
    }
    let p = profile(&api, &token).await.body;
    assert_eq!(status(&p, "snils"), "pending", "{p}");

    // Overdue again: failed, with a reason the citizen reads, the SNILS kept.
    past_the_deadline().await;
    let run = sweep(&api).await;
    assert_eq!(run["failed"], 1, "{run}");
    let p = profile(&api, &token).await.body;
    let snils = &p["verification"]["snils"];
    assert_eq!(snils["status"], "failed", "{p}");
    assert_eq!(snils["code"], "registry_timeout", "{p}");
    assert!(
        snils["reason"]
            .as_str()
            .is_some_and(|r| r.contains("не ответил")),
        "{p}"
    );
    assert!(snils["at"].is_string(), "{p}");
    assert_eq!(
        p["documents"]["snils"],
        silent.as_str(),
        "a failed check keeps the document"
    );
    let item = api
        .item(&format!("ACCOUNT#{}", c.account_id), "PROFILE")
        .await
        .unwrap_or_else(|| panic!("no profile item"));
    assert!(
        !item.contains_key("gsi1pk"),
        "nothing pending: out of the index"
    );

    // Sweeping again changes nothing (the version stays).
    let run = sweep(&api).await;
    assert_eq!(
        (run["requeued"].clone(), run["failed"].clone()),
        (json!(0), json!(0)),
        "{run}"
    );
    assert_eq!(profile(&api, &token).await.body["version"], p["version"]);

    // Saving the same SNILS again retries the check.
    let reply = patch(
        &api,
        &token,
        Some(&version_of(&p)),
        json!({"documents": {"snils": silent}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(status(&reply.body, "snils"), "pending");
    assert!(reply.body["verification"]["snils"].get("code").is_none());

    // A SNILS the registry answers for ends verified. The one it replaces is being
    // checked, so the change needs a second factor (the access matrix): a step-up first.
    step_up(&api, &token, &c.phone).await;
    let good = snils_of("770");
    let reply = patch(
        &api,
        &token,
        Some(&version_of(&reply.body)),
        json!({"documents": {"snils": good}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let done = wait_for(&api, &token, "the good SNILS verified", |p| {
        status(p, "snils") == "verified"
    })
    .await;
    assert_eq!(
        done["verification"]["snils"]["source"],
        "pension_fund_sandbox"
    );
}

/// The account's holder index entries: the mirrors under the account (`HOLDS#…`) by
/// payer key, and whether the entry under each payer key is there.
async fn index_entries(api: &Api, account_id: &str) -> Vec<(String, bool)> {
    let mut entries = Vec::new();
    for item in api
        .items_with_prefix(&format!("ACCOUNT#{account_id}"))
        .await
    {
        let sk = string_attr(&item, "sk");
        if let Some(key) = sk.strip_prefix("HOLDS#") {
            let holder = api
                .item(&format!("HOLDER#{key}"), &format!("ACCOUNT#{account_id}"))
                .await
                .is_some();
            entries.push((key.to_string(), holder));
        }
    }
    entries.sort();
    entries
}

async fn the_holder_index_follows_documents_and_is_repaired(api: Api) {
    let (c, token) = standard_citizen(&api, &snils_of("771"), &verifiable_passport_number()).await;
    // SNILS and passport verified: both find the citizen's bills, written with the profile.
    let entries = index_entries(&api, &c.account_id).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|(_, holder)| *holder), "{entries:?}");

    // A new SNILS takes the old one out of the index at once, and adds itself once
    // verified. Changing a verified SNILS needs a second factor: a step-up code first.
    step_up(&api, &token, &c.phone).await;
    let p = profile(&api, &token).await.body;
    let reply = patch(
        &api,
        &token,
        Some(&version_of(&p)),
        json!({"documents": {"snils": snils_of("772")}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let after_patch = index_entries(&api, &c.account_id).await;
    let kept = after_patch.iter().filter(|e| entries.contains(e)).count();
    assert_eq!(
        kept, 1,
        "the old SNILS is gone, the passport stays: {after_patch:?}"
    );
    wait_for(&api, &token, "the new SNILS verified", |p| {
        status(p, "snils") == "verified"
    })
    .await;
    let entries = index_entries(&api, &c.account_id).await;
    assert_eq!(entries.len(), 2, "{entries:?}");

    // Entries lost (one whole, one half) and a stray one: the repair puts it right.
    let (gone, _) = &entries[0];
    let (halved, _) = &entries[1];
    let account = format!("ACCOUNT#{}", c.account_id);
    for (pk, sk) in [
        (format!("HOLDER#{gone}"), account.clone()),
        (account.clone(), format!("HOLDS#{gone}")),
        (format!("HOLDER#{halved}"), account.clone()),
    ] {
        api.delete_item(&pk, &sk).await;
    }
    let table = api.table_name().await;
    api.dynamodb
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(format!("ACCOUNT#{}", c.account_id)))
        .item("sk", AttributeValue::S("HOLDS#stray".into()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put: {e}"));
    assert_ne!(index_entries(&api, &c.account_id).await, entries);

    let repair = admin(&["repair-holder-index"]);
    assert!(
        repair["added"].as_u64().unwrap_or_default() >= 2,
        "{repair}"
    );
    assert!(
        repair["removed"].as_u64().unwrap_or_default() >= 1,
        "{repair}"
    );
    assert_eq!(index_entries(&api, &c.account_id).await, entries);

    let again = admin(&["repair-holder-index"]);
    assert_eq!(
        (again["added"].clone(), again["removed"].clone()),
        (json!(0), json!(0)),
        "{again}"
    );
}
