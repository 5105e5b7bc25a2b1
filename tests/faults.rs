//! End-to-end tests of faults: the stack runs with a fault plan file (`FAULTS=@file`)
//! that each scenario writes and clears, and a citizen sees a 503 with `Retry-After`,
//! never another 5xx, and nothing half-done once the dependency is back.
//!
//! Scenarios run one at a time: the plan is the stack's, not a scenario's.

mod support;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// The plan file every function of the stack reads.
static PLAN: OnceLock<PathBuf> = OnceLock::new();

fn main() {
    let plan = std::env::temp_dir().join(format!("uslugi-faults-{}.plan", std::process::id()));
    let _ = std::fs::remove_file(&plan);
    let _ = PLAN.set(plan.clone());
    run_suite(async move {
        let env = [
            ("FAULTS", format!("@{}", plan.display())),
            ("REGISTRY_SANDBOX_DELAY_MS", "0".to_string()),
        ];
        // A job the registry failed comes back in seconds, not a minute.
        let params = [("VerificationRetrySeconds", "2".to_string())];
        let scenarios = vec![
            scenario!(a_throttled_payment_write_is_retried_to_one_charge),
            scenario!(a_code_send_timing_out_is_withdrawn),
            scenario!(a_lost_bank_answer_is_reconciled),
            scenario!(a_failing_bank_leaves_no_charge),
            scenario!(a_registry_failure_is_retried_from_the_queue),
            scenario!(a_failing_authorizer_store_is_a_503_and_counted),
            scenario!(an_undecided_request_changes_nothing),
        ];
        // One instance per function: the `nth:` counts of a plan are per instance.
        let (stack, api) = open_stack(&env, &params, 1).await;
        let tally = run_then_stop(stack, &api, scenarios, false).await;
        let _ = std::fs::remove_file(&plan);
        tally
    })
}

// ------------------------------------------------------------------ helpers

/// Puts `rules` in force (an empty string lifts every fault) and waits until the
/// functions have looked at the file again.
async fn faults(rules: &str) {
    let path = PLAN.get().unwrap_or_else(|| panic!("no plan file"));
    std::fs::write(path, rules).unwrap_or_else(|e| panic!("plan file: {e}"));
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// Waits (up to 5 s) until `function` has logged at least `count` injected faults of
/// `dependency` (its output reaches the log file a moment after its answer), and
/// returns how many it has.
async fn wait_for_faults(api: &Api, function: &str, dependency: &str, count: usize) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let seen = api.injected_faults(function, dependency);
        if seen >= count || std::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a citizen sees when a dependency is down.
fn assert_unavailable(reply: &Reply, code: &str) {
    reply.assert_problem(503, code);
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("503 without Retry-After: {}", reply.body));
    assert!(retry_after >= 1);
}

/// A citizen with one unpaid bill of `amount`.
async fn citizen_with_bill(api: &Api, amount: u64) -> (Citizen, String, String) {
    let biller = new_biller("Жилищник района Хамовники");
    let (citizen, token) = standard_payer(api).await;
    let uin = biller
        .charge(api, "utilities", amount, on_snils(&snils_of("705")))
        .await;
    (citizen, token, uin)
}

async fn bill_status(api: &Api, token: &str, uin: &str) -> String {
    let reply = api.get_as(token, &format!("/v1/bills/{uin}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    text(&reply.body["status"])
}

/// The acquirer's orders of a payment: their states and amounts.
async fn orders(api: &Api, payment_id: &str) -> Vec<(String, i64)> {
    api.items_with_prefix(&format!("ACQORDER#{payment_id}"))
        .await
        .iter()
        .map(|o| (string_attr(o, "state"), number_attr(o, "amount")))
        .collect()
}

async fn payment(api: &Api, token: &str, id: &str) -> Value {
    let reply = api.get_as(token, &format!("/v1/payments/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Pays `body` under `key` and checks the answer: `status`, with the payment in `state`.
/// Returns the payment's id. The scenarios pay so, then look at what the bank and the
/// bill show.
async fn pay_expecting(
    api: &Api,
    token: &str,
    key: &str,
    body: &Value,
    (status, state): (u16, &str),
) -> String {
    let reply = pay(api, token, Some(key), body.clone()).await;
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.body["status"], state);
    reply.id()
}

fn receipts(mail: &[Value], uin: &str) -> usize {
    mail.iter()
        .filter(|m| {
            let t = m.to_string();
            t.contains("Квитанция об оплате") && t.contains(uin)
        })
        .count()
}

// ------------------------------------------------------------------ scenarios

async fn a_throttled_payment_write_is_retried_to_one_charge(api: Api) {
    let (c, token, uin) = citizen_with_bill(&api, 12_300).await;
    let key = unique_key();
    let body = json!({"uins": [uin], "method": {"type": "card", "token": card_token(SUCCEEDS)}});
    let before = api.injected_faults("PayFunction", "dynamodb");
    faults("dynamodb:TransactWriteItems=throttle").await;
    let refused = pay(&api, &token, Some(&key), body.clone()).await;
    faults("").await;
    assert_unavailable(&refused, "service_unavailable");
    // The SDK tried three times, each throttled, before the citizen heard.
    assert!(
        wait_for_faults(&api, "PayFunction", "dynamodb", before + 3).await >= before + 3,
        "the SDK did not retry the throttled write"
    );
    // Nothing half-done: the bill is neither paid nor held by a payment.
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");

    let id = pay_expecting(&api, &token, &key, &body, (201, "succeeded")).await;
    assert_eq!(orders(&api, &id).await, [("charged".to_string(), 12_300)]);
    assert_eq!(bill_status(&api, &token, &uin).await, "paid");
    // The same key once more: the same payment, no second charge.
    let again = pay(&api, &token, Some(&key), body.clone()).await;
    assert_eq!(again.body["id"], id.as_str(), "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(receipts(&api.outbox(&c.email).await, &uin), 1);
}

async fn a_code_send_timing_out_is_withdrawn(api: Api) {
    let email = unique_email();
    let phone = unique_phone();
    let ip = unique_ip();
    faults("sesv2:SendEmail=timeout; sns:Publish=timeout").await;
    let by_mail = api.send_code(&ip, "email", &email, "registration").await;
    let by_sms = api.send_code(&ip, "sms", &phone, "registration").await;
    faults("").await;
    assert_unavailable(&by_mail, "delivery_unavailable");
    assert_unavailable(&by_sms, "delivery_unavailable");
    assert!(wait_for_faults(&api, "CodesFunction", "sesv2", 1).await >= 1);
    assert!(wait_for_faults(&api, "CodesFunction", "sns", 1).await >= 1);
    assert!(api.outbox(&email).await.is_empty());
    assert!(api.outbox(&phone).await.is_empty());

    // Nothing counted against the citizen: a new code at once, not "too early", and it
    // verifies.
    for (channel, to) in [("email", &email), ("sms", &phone)] {
        let sent = api.send_code(&ip, channel, to, "registration").await;
        assert_eq!(sent.status, 202, "{channel}: {}", sent.body);
        let id = sent.id();
        let code = api.code_sent_to(to).await;
        let verified = api.verify(&id, &code).await;
        assert_eq!(verified.status, 200, "{channel}: {}", verified.body);
        assert_eq!(api.outbox(to).await.len(), 1, "{channel}: one message");
        // The one delivered send counts: the next is too early.
        api.send_code(&ip, channel, to, "registration")
            .await
            .assert_problem(429, "code_resend_too_early");
    }
}

async fn a_lost_bank_answer_is_reconciled(api: Api) {
    let (c, token, uin) = citizen_with_bill(&api, 45_600).await;
    let key = unique_key();
    let body = json!({"uins": [uin], "method": {"type": "card", "token": card_token(SUCCEEDS)}});
    // The bank charges, and its answer never arrives.
    faults("acquirer:charge=lost").await;
    let id = pay_expecting(&api, &token, &key, &body, (202, "pending")).await;
    assert_eq!(orders(&api, &id).await, [("charged".to_string(), 45_600)]);
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");

    // While the bank cannot be asked either, reconciliation decides nothing.
    faults("acquirer:status=error").await;
    reconcile(&api).await;
    assert_eq!(payment(&api, &token, &id).await["status"], "pending");
    assert!(wait_for_faults(&api, "ReconcilePaymentsFunction", "acquirer", 1).await >= 1);

    faults("").await;
    reconcile(&api).await;
    assert_eq!(payment(&api, &token, &id).await["status"], "succeeded");
    assert_eq!(bill_status(&api, &token, &uin).await, "paid");
    assert_eq!(orders(&api, &id).await, [("charged".to_string(), 45_600)]);
    let again = pay(&api, &token, Some(&key), body.clone()).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(receipts(&api.outbox(&c.email).await, &uin), 1);
}

async fn a_failing_bank_leaves_no_charge(api: Api) {
    let (_, token, uin) = citizen_with_bill(&api, 7_700).await;
    let body = json!({"uins": [uin], "method": {"type": "card", "token": card_token(SUCCEEDS)}});
    // The bank fails: the portal cannot know whether it charged.
    faults("acquirer:charge=error").await;
    let reply = pay(&api, &token, Some(&unique_key()), body.clone()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let id = reply.id();
    assert!(orders(&api, &id).await.is_empty(), "the bank never saw it");

    // A slow bank is still an answer: reconciliation decides.
    faults("acquirer:status=slow:300ms; acquirer:cancel=slow:300ms").await;
    reconcile(&api).await;
    faults("").await;
    let settled = payment(&api, &token, &id).await;
    assert_eq!(settled["status"], "declined", "{settled}");
    // Released: the bill can be paid by a new request.
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");
    let paid = pay(&api, &token, Some(&unique_key()), body.clone()).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(bill_status(&api, &token, &uin).await, "paid");
}

async fn a_registry_failure_is_retried_from_the_queue(api: Api) {
    let (_, token) = citizen(&api).await;
    let before = api.injected_faults("VerifyDocumentsFunction", "registry");
    // The first registry call of the worker fails; the job comes back from the queue.
    faults("registry:check=error@nth:1").await;
    let reply = patch_new(&api, &token, verifiable(&snils_of("705"), &six_digits())).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let profile = wait_for(&api, &token, "standard level", |p| p["level"] == "standard").await;
    faults("").await;
    assert_eq!(status(&profile, "snils"), "verified", "{profile}");
    assert_eq!(status(&profile, "passport"), "verified", "{profile}");
    assert_eq!(
        wait_for_faults(&api, "VerifyDocumentsFunction", "registry", before + 1).await,
        before + 1
    );
}

async fn a_failing_authorizer_store_is_a_503_and_counted(api: Api) {
    let (_, token) = citizen(&api).await;
    let before = api.metric_lines("AuthorizerFunction", "ServerErrors").len();
    faults("dynamodb:GetItem=error").await;
    let reply = api.get_as(&token, "/v1/profile").await;
    faults("").await;
    assert_unavailable(&reply, "service_unavailable");
    let errors = api
        .wait_for_metric("AuthorizerFunction", "ServerErrors", &[], before)
        .await;
    assert_eq!(errors.len(), before + 1, "one ServerErrors line");
    let line = errors.last().cloned().unwrap_or_default();
    let stage = api.metric_stage("AuthorizerFunction");
    assert_eq!(line["Stage"], stage.as_str(), "{line}");
    // The store is back: the same session works.
    let after = api.get_as(&token, "/v1/profile").await;
    assert_eq!(after.status, 200, "{}", after.body);
}

/// While the authorizer cannot read its store, a request it could not decide on reaches
/// no handler's work: a citizen's deletion of the account, a biller's write and an
/// operator's route all answer 503, and once the store is back nothing has changed.
async fn an_undecided_request_changes_nothing(api: Api) {
    let (_, token) = citizen(&api).await;
    let biller = new_biller("ГБУ Жилищник района Арбат");
    let uin = uin(20);
    faults("dynamodb:GetItem=error").await;
    let deleted = api.delete_as(&token, "/v1/account").await;
    let written = biller
        .put(&api, &uin, charge(10_000, on_snils("112-233-445 95")))
        .await;
    let confirmed = api
        .post_as("op_not-a-real-key", "/v1/operator/confirmations", json!({}))
        .await;
    faults("").await;
    assert_unavailable(&deleted, "service_unavailable");
    assert_unavailable(&written, "service_unavailable");
    assert_unavailable(&confirmed, "service_unavailable");
    let profile = api.get_as(&token, "/v1/profile").await;
    assert_eq!(
        profile.status, 200,
        "the account is still there: {}",
        profile.body
    );
    let charge = biller.get(&api, &uin).await;
    assert_eq!(charge.status, 404, "no charge was written: {}", charge.body);
}
