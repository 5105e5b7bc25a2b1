//! End-to-end tests of payments: citizens pay bills that billers pushed, through the
//! sandbox acquirer's test cards, over the local gateway.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

fn main() {
    run_suite(async {
        let env = quick_sandbox(&[
            // Pages of two, so that a shard of a run is a chain of pages.
            ("AUTOPAY_RUN_PAGE_SIZE", "2".to_string()),
            ("RECONCILE_PAGE_SIZE", "2".to_string()),
        ]);
        // Notices a biller refused come back after a second, not two minutes; the
        // runs' pages taken four at a time, as many as a function's instances here.
        let params = [
            ("PaymentNoticeRetrySeconds", "1".to_string()),
            ("AutopayRunMaxConcurrency", "4".to_string()),
            ("ReconcileMaxConcurrency", "4".to_string()),
        ];
        let (stack, api) = open_stack(&env, &params, 4).await;
        let scenarios = vec![
            scenario!(one_bill_by_each_method),
            scenario!(several_bills_in_one_payment),
            scenario!(every_card_outcome),
            scenario!(an_unknown_outcome_is_reconciled_to_one_charge),
            scenario!(one_key_one_payment),
            scenario!(overlapping_payments_charge_once),
            scenario!(billers_hear_of_payments_after_failures),
            scenario!(saved_methods_never_show_a_card_number),
            scenario!(the_archive_filters_and_is_private),
            scenario!(templates),
            scenario!(autopays_on_schedule_pay_once_within_the_limit),
            scenario!(a_monthly_charity_autopay_pays_once_a_month),
            scenario!(autopays_pay_new_bills_once),
            scenario!(a_declined_card_pauses_the_autopay),
            scenario!(autopays_are_checked_and_private),
            scenario!(a_sharded_run_pays_each_bill_once_however_its_pages_come),
            scenario!(a_donation_without_a_bill_is_paid_once),
            scenario!(payee_payments_are_checked_and_write_nothing),
            scenario!(templates_pay_in_one_call),
            scenario!(billers_refund_their_bills_partly_up_to_what_was_paid),
            scenario!(racing_refunds_of_the_remainder_pass_once),
            scenario!(a_declined_bank_refund_changes_no_total),
        ];
        let mut tally = run_all(&api, scenarios, true).await;
        // Alone, so that the counts it waits for are its own.
        let counted = vec![scenario!(payments_and_scheduled_runs_are_counted)];
        tally += run_all(&api, counted, false).await;
        stack.shutdown().await;
        tally
    })
}

// ------------------------------------------------------------------ helpers

/// A one-time token from the sandbox acquirer's card page.
async fn bill(api: &Api, token: &str, uin: &str) -> Value {
    let reply = api.get_as(token, &format!("/v1/bills/{uin}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// A biller and a citizen who owes it nothing yet.
async fn biller_and_citizen(api: &Api, name: &str) -> (BillerKey, Citizen, String) {
    let biller = new_biller(name);
    let (citizen, token) = standard_payer(api).await;
    (biller, citizen, token)
}

async fn new_bill(api: &Api, biller: &BillerKey, category: &str, amount: u64) -> String {
    biller
        .charge(api, category, amount, on_snils(&snils_of("705")))
        .await
}

/// Bills of `biller` on the citizen's SNILS, one per `(category, amount)`, issued in
/// that order: for the scenarios that pay or list several.
async fn new_bills<const N: usize>(
    api: &Api,
    biller: &BillerKey,
    bills: [(&str, u64); N],
) -> [String; N] {
    let bills = bills.map(|(category, amount)| (category, amount, on_snils(&snils_of("705"))));
    biller.charges(api, bills).await
}

/// The acquirer's record of an order: its state and amount.
async fn acquirer_order(api: &Api, payment_id: &str) -> Option<(String, i64)> {
    let item = api
        .item(&format!("ACQORDER#{payment_id}"), "ACQORDER")
        .await?;
    Some((string_attr(&item, "state"), number_attr(&item, "amount")))
}

/// `GET /v1/payments/{id}/receipt` as the payer: the bills' and the donations' scenarios
/// read the receipt of the payment they made.
async fn receipt_of(api: &Api, token: &str, id: &str) -> Reply {
    api.get_as(token, &format!("/v1/payments/{id}/receipt"))
        .await
}

// ------------------------------------------------------------------ scenarios

async fn one_bill_by_each_method(api: Api) {
    let (biller, c, token) = biller_and_citizen(&api, "Детский сад № 12").await;
    let saved = api
        .post_as(&token, "/v1/payment-methods", card(SUCCEEDS))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let saved_id = saved.id();
    let methods = [
        ("card", card(SUCCEEDS), 0),
        ("saved", json!({"type": "saved", "id": saved_id}), 0),
        (
            "apple_pay",
            json!({"type": "apple_pay", "payment_data": "eyJkYXRhIjoic2FuZGJveCJ9"}),
            0,
        ),
        ("mobile", json!({"type": "mobile", "phone": c.phone}), 1_500),
        (
            "wallet",
            json!({"type": "wallet", "wallet": "410011234567890"}),
            0,
        ),
    ];
    for (name, method, commission) in methods {
        let uin = new_bill(&api, &biller, "kindergarten", 150_000).await;
        let reply = pay_bills(&api, &token, &[&uin], method).await;
        assert_eq!(reply.status, 201, "{name}: {}", reply.body);
        assert_eq!(reply.body["status"], "succeeded", "{name}");
        assert_eq!(reply.body["amount"], 150_000, "{name}");
        assert_eq!(reply.body["commission"], commission, "{name}");
        assert_eq!(reply.body["total"], 150_000 + commission, "{name}");
        assert_eq!(bill(&api, &token, &uin).await["status"], "paid", "{name}");
        let id = reply.id();
        // The bank charged the order once, for the total.
        assert_eq!(
            acquirer_order(&api, &id).await,
            Some(("charged".to_string(), 150_000 + commission)),
            "{name}"
        );
        let receipt = receipt_of(&api, &token, &id).await;
        assert_eq!(receipt.status, 200, "{name}: {}", receipt.body);
        assert_eq!(receipt.body["bills"][0]["uin"], uin.as_str());
        assert_eq!(receipt.body["bills"][0]["kbk"], "07511302992020000130");
        assert_eq!(receipt.body["bills"][0]["oktmo"], "45383000");
        assert_eq!(receipt.body["bills"][0]["payee"]["inn"], "7707083893");
        assert_eq!(receipt.body["commission"], commission);
        assert!(receipt.body["gateway_reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("sbx-")));
        assert!(receipt.body["payer"]
            .as_str()
            .is_some_and(|p| !p.is_empty()));
        let mail = api.outbox(&c.email).await;
        assert!(
            mail.iter().any(|m| {
                let t = m.to_string();
                t.contains("Квитанция об оплате") && t.contains(&uin)
            }),
            "{name}: no receipt e-mail for {uin}"
        );
    }
}

async fn several_bills_in_one_payment(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "Кружок робототехники").await;
    let [a, b] = new_bills(&api, &biller, [("clubs", 120_000), ("utilities", 310_050)]).await;
    // A fine at half price while its discount lasts.
    let fine = uin(25);
    let mut body = charge(500_000, on_sts("77 УО 654321"));
    body["category"] = json!("fines");
    body["discount"] = json!({"amount": 250_000, "until": "2999-12-31"});
    let put = biller.put(&api, &fine, body).await;
    assert_eq!(put.status, 201, "{}", put.body);

    let apple = pay(
        &api,
        &token,
        Some(&unique_key()),
        json!({"uins": [a, b], "method": {"type": "apple_pay", "payment_data": "eyJk"}}),
    )
    .await;
    apple.assert_problem(422, "validation_failed");
    assert!(apple.field_errors().contains(&(
        "/method/type".to_string(),
        "apple_pay_single_bill".to_string()
    )));

    let reply = pay_bills(&api, &token, &[&a, &b, &fine], card(SUCCEEDS)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["amount"], 120_000 + 310_050 + 250_000);
    assert_eq!(reply.body["bills"].as_array().map(Vec::len), Some(3));
    for uin in [&a, &b, &fine] {
        assert_eq!(bill(&api, &token, uin).await["status"], "paid");
    }
    let id = reply.body["id"].as_str().unwrap_or_default();
    assert_eq!(
        acquirer_order(&api, id).await,
        Some(("charged".to_string(), 680_050))
    );
}

async fn every_card_outcome(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "Управа района").await;
    // Declined, and out of funds: nothing paid, nothing left locked.
    for (number, reason) in [
        (DECLINED, "card_declined"),
        (NO_FUNDS, "insufficient_funds"),
    ] {
        let uin = new_bill(&api, &biller, "other", 10_000).await;
        let key = unique_key();
        let body = json!({"uins": [uin], "method": card(number)});
        let reply = pay(&api, &token, Some(&key), body.clone()).await;
        reply.assert_problem(402, "payment_declined");
        // The same request again is the same decline, told as a replay.
        let replay = pay(&api, &token, Some(&key), body).await;
        replay.assert_problem(402, "payment_declined");
        assert_eq!(replay.body["payment_id"], reply.body["payment_id"]);
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(reply.body["reason"], reason);
        let payment_id = text(&reply.body["payment_id"]);
        let stored = api
            .get_as(&token, &format!("/v1/payments/{payment_id}"))
            .await;
        assert_eq!(stored.body["status"], "declined");
        assert_eq!(bill(&api, &token, &uin).await["status"], "unpaid");
        // The same bill is paid at once with another card.
        let again = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
        assert_eq!(again.status, 201, "{}", again.body);
    }

    // 3-D Secure: waits, holds the bill, finishes on confirmation.
    let uin = new_bill(&api, &biller, "other", 20_000).await;
    let reply = pay_bills(&api, &token, &[&uin], card(THREE_DS)).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "requires_confirmation");
    assert!(reply.body["confirmation_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://")));
    let id = reply.id();
    pay_bills(&api, &token, &[&uin], card(SUCCEEDS))
        .await
        .assert_problem(409, "bill_in_payment");
    assert_eq!(
        acquirer_order(&api, &id).await.map(|o| o.0),
        Some("awaiting_confirmation".into())
    );
    let confirmed = api
        .post_as(&token, &format!("/v1/payments/{id}/confirm"), json!({}))
        .await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "succeeded");
    assert_eq!(bill(&api, &token, &uin).await["status"], "paid");
    api.post_as(&token, &format!("/v1/payments/{id}/confirm"), json!({}))
        .await
        .assert_problem(409, "payment_not_awaiting_confirmation");
    // A token is spent by its payment.
    let token_once = card_token(SUCCEEDS);
    let [first, second] = new_bills(&api, &biller, [("other", 1_000), ("other", 1_000)]).await;
    let method = json!({"type": "card", "token": token_once});
    let ok = pay_bills(&api, &token, &[&first], method.clone()).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let reused = pay_bills(&api, &token, &[&second], method).await;
    reused.assert_problem(402, "payment_declined");
    assert_eq!(reused.body["reason"], "token_used");
    assert_eq!(bill(&api, &token, &second).await["status"], "unpaid");
}

async fn an_unknown_outcome_is_reconciled_to_one_charge(api: Api) {
    let (biller, c, token) = biller_and_citizen(&api, "Жилищник района").await;
    let uin = new_bill(&api, &biller, "utilities", 45_600).await;
    let key = unique_key();
    let body = json!({"uins": [uin], "method": card(TIMES_OUT)});
    let reply = pay(&api, &token, Some(&key), body.clone()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["status"], "pending");
    let id = reply.id();
    // The bank did charge; the portal does not know yet, and holds the bill.
    assert_eq!(
        acquirer_order(&api, &id).await,
        Some(("charged".into(), 45_600))
    );
    assert_eq!(bill(&api, &token, &uin).await["status"], "unpaid");
    pay_bills(&api, &token, &[&uin], card(SUCCEEDS))
        .await
        .assert_problem(409, "bill_in_payment");
    // A retry with the same key asks nothing of the bank: the same pending payment.
    let retry = pay(&api, &token, Some(&key), body.clone()).await;
    assert_eq!(retry.status, 202, "{}", retry.body);
    assert_eq!(retry.body["id"], id.as_str());
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));

    reconcile(&api).await;
    let settled = api.get_as(&token, &format!("/v1/payments/{id}")).await;
    assert_eq!(settled.body["status"], "succeeded", "{}", settled.body);
    assert_eq!(bill(&api, &token, &uin).await["status"], "paid");
    // Once reconciled, the same key answers the settled payment; still one charge.
    let after = pay(&api, &token, Some(&key), body).await;
    assert_eq!(after.status, 201, "{}", after.body);
    assert_eq!(after.body["id"], id.as_str());
    reconcile(&api).await;
    let orders = api.items_with_prefix(&format!("ACQORDER#{id}")).await;
    assert_eq!(orders.len(), 1);
    assert_eq!(string_attr(&orders[0], "state"), "charged");
    let mail = api.outbox(&c.email).await;
    let receipts = mail
        .iter()
        .filter(|m| m.to_string().contains("Квитанция об оплате") && m.to_string().contains(&uin))
        .count();
    assert_eq!(receipts, 1, "one receipt for one payment");
}

async fn one_key_one_payment(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "Школа № 57").await;
    let uin = new_bill(&api, &biller, "education", 99_000).await;
    let key = unique_key();
    let body = json!({"uins": [uin], "method": card(SUCCEEDS)});
    // The same key twice at once: one payment, one charge, the same answer.
    let (a, b) = tokio::join!(
        pay(&api, &token, Some(&key), body.clone()),
        pay(&api, &token, Some(&key), body.clone())
    );
    assert_eq!((a.status, b.status), (201, 201), "{} / {}", a.body, b.body);
    assert_eq!(a.body["id"], b.body["id"]);
    let id = a.body["id"].as_str().unwrap_or_default();
    assert_eq!(
        acquirer_order(&api, id).await,
        Some(("charged".into(), 99_000))
    );
    let replayed = [&a, &b]
        .iter()
        .filter(|r| r.header("idempotent-replayed") == Some("true"))
        .count();
    assert_eq!(replayed, 1);
    // The same key with another body is refused; no key at all too.
    let other = new_bill(&api, &biller, "education", 1_000).await;
    pay(
        &api,
        &token,
        Some(&key),
        json!({"uins": [other], "method": card(SUCCEEDS)}),
    )
    .await
    .assert_problem(422, "idempotency_key_reused");
    pay(
        &api,
        &token,
        None,
        json!({"uins": [other], "method": card(SUCCEEDS)}),
    )
    .await
    .assert_problem(400, "idempotency_key_required");
    assert_eq!(bill(&api, &token, &other).await["status"], "unpaid");
    // A paid bill cannot be paid again, and the refusal names it.
    let again = pay_bills(&api, &token, &[&other, &uin], card(SUCCEEDS)).await;
    again.assert_problem(409, "bill_paid");
    assert_eq!(again.body["uin"], uin.as_str());
    assert_eq!(bill(&api, &token, &other).await["status"], "unpaid");
    // Bad requests name their fields.
    let bad = pay(
        &api,
        &token,
        Some(&unique_key()),
        json!({"uins": [], "method": {"type": "cash"}}),
    )
    .await;
    bad.assert_problem(422, "validation_failed");
    bad.assert_invalid_field("/uins", "bill_count");
    bad.assert_invalid_field("/method/type", "invalid_method_type");
    let broken = format!(
        "{}{}",
        &uin[..19],
        (uin[19..].parse::<u32>().unwrap_or(0) + 1) % 10
    );
    pay_bills(&api, &token, &[&broken], card(SUCCEEDS))
        .await
        .assert_problem(422, "validation_failed");
}

async fn overlapping_payments_charge_once(api: Api) {
    let (biller, _, mother) = biller_and_citizen(&api, "Газпром межрегионгаз").await;
    let (_, father) = standard_payer(&api).await;
    let [shared_bill, hers, his] = new_bills(
        &api,
        &biller,
        [
            ("utilities", 70_000),
            ("utilities", 1_000),
            ("utilities", 2_000),
        ],
    )
    .await;
    // Both parents keep the shared bill among their saved bills: the loser sees it, so
    // it hears why it cannot be paid (a stranger would hear only `bill_not_found`).
    for token in [&mother, &father] {
        let saved = api
            .post_as(token, "/v1/bills/saved", json!({ "uin": shared_bill }))
            .await;
        assert_eq!(saved.status, 201, "{}", saved.body);
    }
    let (key_a, key_b) = (unique_key(), unique_key());
    let (a, b) = tokio::join!(
        pay(
            &api,
            &mother,
            Some(&key_a),
            json!({"uins": [hers, shared_bill], "method": card(SUCCEEDS)})
        ),
        pay(
            &api,
            &father,
            Some(&key_b),
            json!({"uins": [shared_bill, his], "method": card(SUCCEEDS)})
        )
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let (won, lost) = if a.status == 201 { (&a, &b) } else { (&b, &a) };
    assert!(
        ["bill_in_payment", "bill_paid"].contains(&lost.body["code"].as_str().unwrap_or_default()),
        "{}",
        lost.body
    );
    assert_eq!(lost.body["uin"], shared_bill.as_str());
    let id = won.body["id"].as_str().unwrap_or_default();
    let total = won.body["total"].as_i64().unwrap_or_default();
    assert_eq!(
        acquirer_order(&api, id).await,
        Some(("charged".into(), total))
    );
    // The loser's own bill stays unpaid and free.
    let loser_bill = if a.status == 201 { &his } else { &hers };
    let loser_token = if a.status == 201 { &father } else { &mother };
    assert_eq!(
        bill(&api, loser_token, loser_bill).await["status"],
        "unpaid"
    );
    let retry = pay(
        &api,
        loser_token,
        Some(&unique_key()),
        json!({"uins": [loser_bill], "method": card(SUCCEEDS)}),
    )
    .await;
    assert_eq!(retry.status, 201, "{}", retry.body);
}

async fn billers_hear_of_payments_after_failures(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "Секция плавания (нестабильный)").await;
    let uin = new_bill(&api, &biller, "clubs", 300_000).await;
    let reply = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let inbox = loop {
        if let Some(item) = api
            .item(
                &format!("BILLERINBOX#{}", biller.id),
                &format!("{uin}#{id}"),
            )
            .await
        {
            break item;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the biller never got the notice"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    // Refused twice, acknowledged on a later delivery: the third, or a later one when a
    // slow first start outlasted the queue's one-second visibility timeout and the
    // message was handed out again meanwhile. Delivery is idempotent, so however many
    // deliveries it took, the biller holds this one notice.
    let attempts = number_attr(&inbox, "attempts");
    assert!(
        attempts >= 3,
        "acknowledged on delivery {attempts}, before the endpoint's two refusals were over"
    );
    assert_eq!(number_attr(&inbox, "amount"), 300_000);
    let notices = api
        .items_with_prefix(&format!("BILLERINBOX#{}", biller.id))
        .await;
    assert_eq!(notices.len(), 1, "one notice of one payment: {notices:?}");
}

async fn saved_methods_never_show_a_card_number(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "ЦОДД").await;
    let (_, stranger) = standard_payer(&api).await;
    for body in [
        json!({"type": "card", "token": "4242 4242 4242 4242"}),
        json!({"type": "card", "token": card_token(SUCCEEDS), "number": "4000000000000002"}),
    ] {
        let reply = api.post_as(&token, "/v1/payment-methods", body).await;
        reply.assert_problem(422, "card_number_not_accepted");
    }
    let pay_with_pan = pay(
        &api,
        &token,
        Some(&unique_key()),
        json!({"uins": [new_bill(&api, &biller, "fines", 100).await], "method": {"type": "card", "token": "tok_x", "pan": "5555555555554444"}}),
    )
    .await;
    pay_with_pan.assert_problem(422, "card_number_not_accepted");

    let saved = api
        .post_as(&token, "/v1/payment-methods", card(SUCCEEDS))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    assert_eq!(saved.body["card"]["last4"], "4242");
    assert_eq!(saved.body["card"]["brand"], "Visa");
    let phone = api
        .post_as(
            &token,
            "/v1/payment-methods",
            json!({"type": "mobile", "phone": "+79161234567"}),
        )
        .await;
    assert_eq!(phone.status, 201, "{}", phone.body);
    let list = api.get_as(&token, "/v1/payment-methods").await;
    let text = list.body.to_string();
    assert_eq!(
        list.body["payment_methods"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        !text.contains("4242424242424242") && !text.contains("tok_") && !text.contains("ctok_"),
        "{text}"
    );
    assert!(
        !text.contains("+79161234567"),
        "the phone is masked: {text}"
    );
    let id = saved.id();
    // Another citizen neither sees, uses nor removes it.
    assert_eq!(
        api.get_as(&stranger, "/v1/payment-methods").await.body["payment_methods"],
        json!([])
    );
    let uin = new_bill(&api, &biller, "fines", 100).await;
    pay(
        &api,
        &stranger,
        Some(&unique_key()),
        json!({"uins": [uin], "method": {"type": "saved", "id": id}}),
    )
    .await
    .assert_problem(404, "payment_method_not_found");
    api.delete_as(&stranger, &format!("/v1/payment-methods/{id}"))
        .await
        .assert_problem(404, "payment_method_not_found");
    assert_eq!(bill(&api, &token, &uin).await["status"], "unpaid");
    let removed = api
        .delete_as(&token, &format!("/v1/payment-methods/{id}"))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    api.delete_as(&token, &format!("/v1/payment-methods/{id}"))
        .await
        .assert_problem(404, "payment_method_not_found");
}

async fn the_archive_filters_and_is_private(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "ГБУ Жилищник").await;
    let (_, stranger) = standard_payer(&api).await;
    let [fine, utility, declined_bill] = new_bills(
        &api,
        &biller,
        [
            ("fines", 50_000),
            ("utilities", 70_000),
            ("utilities", 1_000),
        ],
    )
    .await;
    let paid_fine = pay_bills(&api, &token, &[&fine], card(SUCCEEDS)).await;
    assert_eq!(paid_fine.status, 201, "{}", paid_fine.body);
    let paid_utility = pay_bills(&api, &token, &[&utility], card(SUCCEEDS)).await;
    assert_eq!(paid_utility.status, 201, "{}", paid_utility.body);
    pay_bills(&api, &token, &[&declined_bill], card(DECLINED))
        .await
        .assert_problem(402, "payment_declined");

    let ids = |reply: &Reply| -> Vec<String> {
        reply.body["payments"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|p| p["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all = api.get_as(&token, "/v1/payments").await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(ids(&all).len(), 3);
    // Newest first.
    assert_eq!(all.body["payments"][0]["status"], "declined");
    let fines = api.get_as(&token, "/v1/payments?category=fines").await;
    assert_eq!(ids(&fines), vec![paid_fine.id()]);
    let succeeded = api.get_as(&token, "/v1/payments?status=succeeded").await;
    assert_eq!(ids(&succeeded).len(), 2);
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(3, 0, 0).unwrap_or(time::UtcOffset::UTC))
        .date();
    let in_period = api
        .get_as(&token, &format!("/v1/payments?from={today}&to={today}"))
        .await;
    assert_eq!(ids(&in_period).len(), 3);
    let before = api
        .get_as(&token, "/v1/payments?from=2020-01-01&to=2020-12-31")
        .await;
    assert!(ids(&before).is_empty());
    let page = api.get_as(&token, "/v1/payments?limit=2").await;
    assert_eq!(ids(&page).len(), 2);
    let next = page.body["next_after"].as_str().unwrap_or_default();
    let rest = api
        .get_as(&token, &format!("/v1/payments?limit=2&after={next}"))
        .await;
    assert_eq!(ids(&rest).len(), 1);
    api.get_as(&token, "/v1/payments?status=lost&from=yesterday")
        .await
        .assert_problem(422, "validation_failed");
    // Another citizen sees none of it.
    assert!(ids(&api.get_as(&stranger, "/v1/payments").await).is_empty());
    let id = paid_fine.body["id"].as_str().unwrap_or_default();
    for path in [
        format!("/v1/payments/{id}"),
        format!("/v1/payments/{id}/receipt"),
    ] {
        api.get_as(&stranger, &path)
            .await
            .assert_problem(404, "payment_not_found");
    }
}

async fn templates(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "Музыкальная школа").await;
    let (_, stranger) = standard_payer(&api).await;
    let uin = new_bill(&api, &biller, "education", 40_000).await;
    let by_bills = api
        .post_as(
            &token,
            "/v1/payment-templates",
            json!({"name": "Музыкалка", "uins": [uin]}),
        )
        .await;
    assert_eq!(by_bills.status, 201, "{}", by_bills.body);
    let by_payee = api
        .post_as(
            &token,
            "/v1/payment-templates",
            json!({"name": "Взнос на капремонт", "purpose": "Взнос на капитальный ремонт",
                    "payee": {"name": "Фонд капремонта", "inn": "7701090559", "kpp": "770101001",
                              "bic": "044525000", "account": "40601810245253000002"}}),
        )
        .await;
    assert_eq!(by_payee.status, 201, "{}", by_payee.body);
    let bad = api
        .post_as(
            &token,
            "/v1/payment-templates",
            json!({"name": "", "uins": ["123"], "payee": {"inn": "1"}}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    // A null is a wrong type, not an absent member: this one is not saved as a template
    // of a payee.
    let null_uins = api
        .post_as(
            &token,
            "/v1/payment-templates",
            json!({"name": "Взнос", "purpose": "Взнос на капитальный ремонт", "uins": null,
                    "payee": {"name": "Фонд капремонта", "inn": "7701090559", "kpp": "770101001",
                              "bic": "044525000", "account": "40601810245253000002"}}),
        )
        .await;
    null_uins.assert_field_errors(&[("/uins", "invalid_type")]);
    let list = api.get_as(&token, "/v1/payment-templates").await;
    assert_eq!(
        list.body["payment_templates"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        api.get_as(&stranger, "/v1/payment-templates").await.body["payment_templates"],
        json!([])
    );
    let id = by_bills.body["id"].as_str().unwrap_or_default();
    api.delete_as(&stranger, &format!("/v1/payment-templates/{id}"))
        .await
        .assert_problem(404, "payment_template_not_found");
    let removed = api
        .delete_as(&token, &format!("/v1/payment-templates/{id}"))
        .await;
    assert_eq!(removed.status, 204);
    assert_eq!(
        api.get_as(&token, "/v1/payment-templates").await.body["payment_templates"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// The business metrics of payments: one embedded-metric-format line per answer a payer
/// got (a replay is not a second payment), a receipt counted as a notice sent, and each
/// scheduled run's successful end, which the missed-run alarm watches.
async fn payments_and_scheduled_runs_are_counted(api: Api) {
    let (biller, _, token) = biller_and_citizen(&api, "Управа района Арбат").await;
    let stage = api.metric_stage("PayFunction");
    let count = |metric: &str, dims: &[(&str, &str)]| {
        api.matching_metric_lines("PayFunction", metric, dims).len()
    };
    let succeeded = [("Method", "card"), ("Outcome", "succeeded")];
    let declined = [("Method", "card"), ("Outcome", "declined")];
    let receipt = [("Kind", "receipt"), ("Channel", "email")];
    let (succeeded_before, declined_before, receipts_before) = (
        count("Payments", &succeeded),
        count("Payments", &declined),
        count("NoticesSent", &receipt),
    );

    let uin = new_bill(&api, &biller, "other", 10_000).await;
    let paid = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let lines = api
        .wait_for_metric("PayFunction", "Payments", &succeeded, succeeded_before)
        .await;
    assert_eq!(lines.len(), succeeded_before + 1, "{lines:?}");
    assert_metric_line(&lines[succeeded_before], "Payments", &stage, &succeeded);
    let receipts = api
        .wait_for_metric("PayFunction", "NoticesSent", &receipt, receipts_before)
        .await;
    assert_eq!(receipts.len(), receipts_before + 1, "{receipts:?}");
    assert_metric_line(&receipts[receipts_before], "NoticesSent", &stage, &receipt);

    let uin = new_bill(&api, &biller, "other", 10_000).await;
    let key = unique_key();
    let body = json!({"uins": [uin], "method": card(DECLINED)});
    pay(&api, &token, Some(&key), body.clone())
        .await
        .assert_problem(402, "payment_declined");
    pay(&api, &token, Some(&key), body)
        .await
        .assert_problem(402, "payment_declined");
    let lines = api
        .wait_for_metric("PayFunction", "Payments", &declined, declined_before)
        .await;
    assert_eq!(
        lines.len(),
        declined_before + 1,
        "the replay is not counted: {lines:?}"
    );
    assert_metric_line(&lines[declined_before], "Payments", &stage, &declined);

    for (function, job) in [
        ("ReconcilePaymentsFunction", "reconcile-payments"),
        ("RunAutopaysFunction", "run-autopays"),
    ] {
        let dims = [("Job", job)];
        let before = api
            .matching_metric_lines(function, "ScheduledRunsCompleted", &dims)
            .len();
        if function == "ReconcilePaymentsFunction" {
            reconcile(&api).await;
        } else {
            run_schedule(&api).await;
        }
        api.assert_one_more_metric(function, "ScheduledRunsCompleted", &dims, before)
            .await;
    }
}

// ------------------------------------------------------------------ autopays

/// Fires the daily autopay run and waits until its pages (and any other run's) are done.
async fn run_schedule(api: &Api) -> Value {
    let planned = api.fire_schedule("run-autopays").await;
    wait_for_empty_queue(api, "-autopay-run").await;
    planned
}

/// The payments of an account that paid `uin`.
async fn payments_of(api: &Api, token: &str, uin: &str) -> Vec<Value> {
    let list = api.get_as(token, "/v1/payments").await;
    list.body["payments"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter(|p| p["bills"].to_string().contains(uin))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Polls a bill until it has `status`, for at most a minute.
async fn wait_for_bill(api: &Api, token: &str, uin: &str, status: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while bill(api, token, uin).await["status"] != status {
        assert!(
            std::time::Instant::now() < deadline,
            "bill {uin} never {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Polls an autopay until it has `status`, for at most a minute.
async fn wait_for_autopay(api: &Api, token: &str, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let reply = api.get_as(token, &format!("/v1/autopays/{id}")).await;
        if reply.body["status"] == status {
            return reply.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "autopay {id} never {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn autopays_on_schedule_pay_once_within_the_limit(api: Api) {
    let biller = new_biller("Мосэнергосбыт");
    let snils = snils_of("706");
    let (c, token) = standard_citizen(&api, &snils, "706001").await;
    let method = saved_card(&api, &token, SUCCEEDS).await;
    let payer = on_snils(&snils);
    let small = biller
        .charge(&api, "utilities", 50_000, payer.clone())
        .await;
    let large = biller
        .charge(&api, "utilities", 900_000, payer.clone())
        .await;
    let other_category = biller.charge(&api, "taxes", 10_000, payer).await;
    // Today's day of the month, so that the run below is this autopay's; days past the
    // 28th are not offered, so such a day tests the weekly trigger instead.
    let trigger = todays_trigger();
    let created = api
        .post_as(
            &token,
            "/v1/autopays",
            json!({"name": "Свет", "match": {"category": "utilities"}, "method_id": method,
                    "limit": 100_000, "trigger": trigger}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "active");
    // The schedule fires twice, the second time while the first may still run: two
    // runs, each planning every shard of the day onto the queue.
    let (first, second) = tokio::join!(run_schedule(&api), run_schedule(&api));
    assert_eq!(first["planned"], 130, "{first}");
    assert_eq!(second["planned"], 130, "{second}");
    assert_ne!(first["run"], second["run"]);
    run_schedule(&api).await;
    wait_for_bill(&api, &token, &small, "paid").await;
    // Every page of all three runs handled before the counts below.
    wait_for_empty_queue(&api, "-autopay-run").await;
    assert_eq!(
        bill(&api, &token, &large).await["status"],
        "unpaid",
        "over the limit"
    );
    assert_eq!(
        bill(&api, &token, &other_category).await["status"],
        "unpaid"
    );
    let paid = payments_of(&api, &token, &small).await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    let id = paid[0]["id"].as_str().unwrap_or_default();
    assert_eq!(
        acquirer_order(&api, id).await,
        Some(("charged".into(), 50_000))
    );
    assert!(payments_of(&api, &token, &large).await.is_empty());
    // Told once about the bill it skipped, however many runs saw it.
    let skipped = api
        .outbox(&c.email)
        .await
        .into_iter()
        .filter(|m| m.to_string().contains(&large) && m.to_string().contains("больше лимита"))
        .count();
    assert_eq!(skipped, 1);
}

/// Fires the daily autopay run as it was due at `time` (RFC 3339) and waits until its
/// pages (and any other run's) are done.
async fn run_schedule_at(api: &Api, time: &str) -> Value {
    let planned = api.fire_schedule_at("run-autopays", time).await;
    wait_for_empty_queue(api, "-autopay-run").await;
    planned
}

/// A day of the month (1 to 28) whose run this month and next month is no other
/// scenario's: not today's or tomorrow's day, and on neither's weekday (the weekly
/// autopays of the other scenarios); those two days.
fn monthly_run_days() -> (u8, time::Date, time::Date) {
    let today = moscow_today();
    let tomorrow = today.next_day().unwrap_or_else(|| panic!("no tomorrow"));
    let (year, month) = (today.year(), today.month());
    let (next_year, next_month) = match month {
        time::Month::December => (year + 1, time::Month::January),
        m => (year, m.next()),
    };
    let taken_days = [today.day(), tomorrow.day()];
    let taken_weekdays = [today.weekday(), tomorrow.weekday()];
    (1..=28u8)
        .find_map(|day| {
            let this = time::Date::from_calendar_date(year, month, day).ok()?;
            let next = time::Date::from_calendar_date(next_year, next_month, day).ok()?;
            let free = !taken_days.contains(&day)
                && !taken_weekdays.contains(&this.weekday())
                && !taken_weekdays.contains(&next.weekday());
            free.then_some((day, this, next))
        })
        .unwrap_or_else(|| panic!("no free day of the month"))
}

/// The receipt e-mails in the outbox of `email`, once there are `count` (or after 30 s).
async fn receipts_to(api: &Api, email: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let receipts: Vec<Value> = api
            .outbox(email)
            .await
            .into_iter()
            .filter(|m| m.to_string().contains("Квитанция об оплате"))
            .collect();
        if receipts.len() >= count || std::time::Instant::now() > deadline {
            return receipts;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// A monthly autopay to a charity fund of the catalogue: the month's run pays it once
/// (a charge the portal issues, charged once at the acquirer), the same day's run fired
/// again and a page of the first run delivered again pay nothing more, and the next
/// month's run pays again. The runs are the schedule's events of those days (their
/// `time`), as EventBridge would send them.
async fn a_monthly_charity_autopay_pays_once_a_month(api: Api) {
    let (c, token) = standard_payer(&api).await;
    let method = saved_card(&api, &token, SUCCEEDS).await;
    let (day, this_month, next_month) = monthly_run_days();
    let created = api
        .post_as(
            &token,
            "/v1/autopays",
            json!({"name": "Детский фонд", "match": {"payee": {"payee_id": "charity-children", "amount": 50_000}},
                    "method_id": method, "limit": 100_000,
                    "trigger": {"type": "monthly", "day": day}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "active");
    let id = created.id();
    // The archive: the citizen's payments, each to the fund, for its amount.
    let archive = || async {
        let list = api.get_as(&token, "/v1/payments").await;
        assert_eq!(list.status, 200, "{}", list.body);
        let payments = list.list("payments");
        for p in &payments {
            assert_eq!(p["status"], "succeeded", "{p}");
            assert_eq!(p["total"], 50_000, "{p}");
            assert_eq!(p["bills"][0]["payee"]["inn"], "7713034238", "{p}");
            assert_eq!(p["method"]["saved_method_id"], method.as_str(), "{p}");
        }
        payments
    };
    // A payment of the autopay, as the bank and the table keep it: the order charged
    // once for its amount, the portal's charge for its UIN paid.
    let assert_paid_once = |payment: Value| {
        let api = &api;
        async move {
            let payment_id = text(&payment["id"]);
            let uin = text(&payment["bills"][0]["uin"]);
            assert!(uin.starts_with("0355") && uin.len() == 25, "{uin}");
            assert_eq!(
                acquirer_order(api, &payment_id).await,
                Some(("charged".to_string(), 50_000))
            );
            let charge = api
                .item(&format!("CHARGE#{uin}"), "CHARGE")
                .await
                .unwrap_or_else(|| panic!("no charge item for {uin}"));
            assert_eq!(string_attr(&charge, "status"), "paid");
            assert_eq!(
                string_attr(&charge, "biller_id"),
                "0f5a7c2e-3d1b-4c8e-9a60-5e1f0a110355"
            );
            uin
        }
    };

    // This month's run, at 09:00 in Moscow on the day.
    let first_time = format!("{this_month}T06:00:00Z");
    let first = run_schedule_at(&api, &first_time).await;
    assert_eq!(first["planned"], 130, "{first}");
    assert!(
        text(&first["run"]).starts_with(&format!("{this_month}#")),
        "the run is the event's day: {first}"
    );
    let paid = archive().await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    let first_payment = text(&paid[0]["id"]);
    let first_uin = assert_paid_once(paid[0].clone()).await;
    let receipts = receipts_to(&api, &c.email, 1).await;
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert!(receipts[0].to_string().contains(&first_uin));

    // The same day's run fired again (another event), and a page of the first run
    // delivered again: nothing more is paid.
    run_schedule_at(&api, &format!("{this_month}T06:05:00Z")).await;
    let filed = api
        .items_with_prefix(&format!("AUTOPAYS#monthly#{day}#"))
        .await
        .into_iter()
        .find(|item| string_attr(item, "autopay_id") == id)
        .map(|item| string_attr(&item, "pk"))
        .unwrap_or_else(|| panic!("autopay {id} not in the day's index"));
    let shard: u16 = filed
        .rsplit('#')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no shard in {filed}"));
    let page = json!({"run": first["run"], "date": this_month.to_string(),
                      "trigger": {"type": "monthly", "day": day},
                      "shard": {"of": shard}, "after": null});
    let queue = api.queue_url("-autopay-run").await;
    api.enqueue(&queue, page.to_string()).await;
    wait_for_empty_queue(&api, "-autopay-run").await;
    let paid = archive().await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(text(&paid[0]["id"]), first_payment);
    assert_eq!(receipts_to(&api, &c.email, 1).await.len(), 1);

    // Next month's run pays again: a second payment, for a charge of its own.
    let second = run_schedule_at(&api, &format!("{next_month}T06:00:00Z")).await;
    assert!(
        text(&second["run"]).starts_with(&format!("{next_month}#")),
        "{second}"
    );
    let paid = archive().await;
    assert_eq!(paid.len(), 2, "{paid:?}");
    let (earlier, later): (Vec<Value>, Vec<Value>) = paid
        .into_iter()
        .partition(|p| text(&p["id"]) == first_payment);
    assert_eq!((earlier.len(), later.len()), (1, 1));
    let second_uin = assert_paid_once(later[0].clone()).await;
    assert_ne!(second_uin, first_uin);
    let receipts = receipts_to(&api, &c.email, 2).await;
    assert_eq!(receipts.len(), 2, "{receipts:?}");
    for uin in [&first_uin, &second_uin] {
        assert_eq!(
            receipts
                .iter()
                .filter(|m| m.to_string().contains(uin.as_str()))
                .count(),
            1,
            "one receipt for {uin}"
        );
    }
    // Still active, as the citizen set it up.
    let autopay = api.get_as(&token, &format!("/v1/autopays/{id}")).await;
    assert_eq!(autopay.status, 200, "{}", autopay.body);
    assert_eq!(autopay.body["status"], "active");
    assert!(autopay.body.get("paused_reason").is_none());
}

async fn autopays_pay_new_bills_once(api: Api) {
    let biller = new_biller("Спортивная школа");
    let snils = snils_of("707");
    let (_, token) = standard_citizen(&api, &snils, "707001").await;
    let method = saved_card(&api, &token, SUCCEEDS).await;
    let created = api.post_as(&token, "/v1/autopays", json!({"name": "Всё на мой СНИЛС", "match": {"payer": {"kind": "snils", "value": snils}},
                    "method_id": method, "limit": 1_000_000, "trigger": {"type": "new_bill"}}))
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let payer = on_snils(&snils);
    let uin = biller.charge(&api, "clubs", 250_000, payer.clone()).await;
    wait_for_bill(&api, &token, &uin, "paid").await;
    // The same charge written again is announced again: still one payment.
    let again = biller
        .put(&api, &uin, {
            let mut body = charge(250_000, payer.clone());
            body["category"] = json!("clubs");
            body
        })
        .await;
    assert!(
        [200, 409].contains(&again.status),
        "a paid charge repeats unchanged or is final: {}",
        again.body
    );
    let marker = biller.charge(&api, "clubs", 1_000, payer).await;
    wait_for_bill(&api, &token, &marker, "paid").await;
    assert_eq!(payments_of(&api, &token, &uin).await.len(), 1);
}

async fn a_declined_card_pauses_the_autopay(api: Api) {
    let biller = new_biller("Водоканал");
    let snils = snils_of("708");
    let (c, token) = standard_citizen(&api, &snils, "708001").await;
    let method = saved_card(&api, &token, DECLINED).await;
    let created = api
        .post_as(
            &token,
            "/v1/autopays",
            json!({"name": "Вода", "match": {"category": "utilities"}, "method_id": method,
                    "limit": 1_000_000, "trigger": {"type": "new_bill"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let uin = biller
        .charge(&api, "utilities", 12_000, on_snils(&snils))
        .await;
    let autopay = wait_for_autopay(&api, &token, &id, "paused").await;
    assert_eq!(autopay["paused_reason"], "card_declined");
    assert_eq!(bill(&api, &token, &uin).await["status"], "unpaid");
    assert!(
        api.outbox(&c.email)
            .await
            .iter()
            .any(|m| m.to_string().contains("приостановлен")),
        "the citizen is told"
    );
    // Switched back on with another card, it pays on its next bill.
    let good = saved_card(&api, &token, SUCCEEDS).await;
    let resumed = api
        .patch_as(
            &token,
            &format!("/v1/autopays/{id}"),
            json!({"status": "active", "method_id": good}),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert!(resumed.body.get("paused_reason").is_none());
    let next = biller
        .charge(&api, "utilities", 13_000, on_snils(&snils))
        .await;
    wait_for_bill(&api, &token, &next, "paid").await;
}

async fn autopays_are_checked_and_private(api: Api) {
    let (_, token) = standard_payer(&api).await;
    let (_, stranger) = standard_payer(&api).await;
    let method = saved_card(&api, &token, SUCCEEDS).await;
    let bad = api
        .post_as(
            &token,
            "/v1/autopays",
            json!({"name": "", "match": {"category": "cinema"}, "method_id": "x", "limit": -1,
                    "trigger": {"type": "daily"}}),
        )
        .await;
    bad.assert_invalid_fields(&[
        ("/name", "empty"),
        ("/match/category", "invalid_category"),
        ("/method_id", "invalid_method_id"),
        ("/limit", "invalid_limit"),
        ("/trigger/type", "invalid_trigger"),
    ]);
    let body = json!({"name": "Штрафы", "match": {"category": "fines"}, "method_id": method,
                      "limit": 500_000, "trigger": {"type": "weekly", "weekday": 1}});
    // Somebody else's saved method is not one's own.
    let theirs = api.post_as(&stranger, "/v1/autopays", body.clone()).await;
    theirs.assert_problem(422, "validation_failed");
    assert!(theirs.field_errors().contains(&(
        "/method_id".to_string(),
        "payment_method_not_found".to_string()
    )));
    let created = api.post_as(&token, "/v1/autopays", body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let path = format!("/v1/autopays/{id}");
    for method in [Method::GET, Method::DELETE] {
        call(&api, method, &path, &stranger, None)
            .await
            .assert_problem(404, "autopay_not_found");
    }
    api.patch_as(&stranger, &path, json!({"limit": 1}))
        .await
        .assert_problem(404, "autopay_not_found");
    assert_eq!(
        api.get_as(&stranger, "/v1/autopays").await.body["autopays"],
        json!([])
    );
    let changed = api
        .patch_as(
            &token,
            &path,
            json!({"limit": 700_000, "trigger": {"type": "monthly", "day": 5}}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["limit"], 700_000);
    assert_eq!(
        changed.body["trigger"],
        json!({"type": "monthly", "day": 5})
    );
    assert_eq!(api.delete_as(&token, &path).await.status, 204);
    api.get_as(&token, &path)
        .await
        .assert_problem(404, "autopay_not_found");
}

/// Fifty autopays due on a day no other scenario runs (tomorrow's weekday), spread
/// over the shards of that day's index. Every page of the day is delivered and pays
/// only half of them (the others paused), as a worker that stopped half-way would;
/// then every page comes again twice at once (the redelivery, and a duplicate). Each
/// bill is paid once, by one payment, charged once at the acquirer.
async fn a_sharded_run_pays_each_bill_once_however_its_pages_come(api: Api) {
    let biller = new_biller("Городские услуги");
    let tomorrow = moscow_today()
        .next_day()
        .unwrap_or_else(|| panic!("no tomorrow"));
    let weekday = tomorrow.weekday().number_from_monday();
    let categories = [
        "utilities",
        "education",
        "kindergarten",
        "clubs",
        "fines",
        "taxes",
        "other",
    ];
    // (citizen token, method, autopay id, uin, amount) of each autopay.
    let mut autopays: Vec<(String, String, String, String, u64)> = Vec::new();
    let citizens = futures::future::join_all((0..8u32).map(|i| {
        let api = &api;
        async move {
            let snils = snils_of("709");
            let (_, token) = standard_citizen(api, &snils, &format!("709{:03}", 100 + i)).await;
            let method = saved_card(api, &token, SUCCEEDS).await;
            (snils, token, method)
        }
    }))
    .await;
    for (i, (snils, token, method)) in citizens.iter().enumerate() {
        // 7 + 7 + … + 1: fifty autopays, one per category and citizen.
        let count = if i < 7 { 7 } else { 1 };
        for (j, category) in categories.iter().take(count).enumerate() {
            let amount = 10_000 + 100 * (i * 7 + j) as u64;
            let payer = on_snils(snils);
            let uin = biller.charge(&api, category, amount, payer).await;
            let created = api
                .post_as(
                    token,
                    "/v1/autopays",
                    json!({"name": format!("Автоплатёж {j}"), "match": {"category": category},
                            "method_id": method, "limit": 1_000_000,
                            "trigger": {"type": "weekly", "weekday": weekday}}),
                )
                .await;
            assert_eq!(created.status, 201, "{}", created.body);
            let id = created.id();
            autopays.push((token.clone(), method.clone(), id, uin, amount));
        }
    }
    assert_eq!(autopays.len(), 50);
    // Filed over several shards of the day's index, none in the unsharded partition.
    let filed = api
        .items_with_prefix(&format!("AUTOPAYS#weekly#{weekday}#"))
        .await
        .into_iter()
        .filter(|item| {
            autopays
                .iter()
                .any(|a| string_attr(item, "autopay_id") == a.2)
        })
        .map(|item| string_attr(&item, "pk"))
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        filed.len() >= 8,
        "50 autopays over {} shards: {filed:?}",
        filed.len()
    );
    // A first delivery of every page that pays only part of its autopays, as a worker
    // that stopped half-way leaves a shard: the last 25 are paused while it runs.
    let set_status = |token: String, id: String, status: &'static str| {
        let api = &api;
        async move {
            let reply = api
                .patch_as(
                    &token,
                    &format!("/v1/autopays/{id}"),
                    json!({ "status": status }),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    };
    for (token, _, id, _, _) in autopays.iter().skip(25) {
        set_status(token.clone(), id.clone(), "paused").await;
    }
    let queue = api.queue_url("-autopay-run").await;
    let run = format!("e2e-{}", unique_key());
    let mut pages = vec![json!({"run": run, "date": tomorrow.to_string(),
                                "trigger": {"type": "weekly", "weekday": weekday},
                                "shard": "unsharded", "after": null})];
    for shard in 0..64 {
        pages.push(json!({"run": run, "date": tomorrow.to_string(),
                          "trigger": {"type": "weekly", "weekday": weekday},
                          "shard": {"of": shard}, "after": null}));
    }
    let deliver = |pages: Vec<Value>| {
        let (api, queue) = (&api, &queue);
        async move {
            for page in pages {
                api.enqueue(queue, page.to_string()).await;
            }
            wait_for_empty_queue(api, "-autopay-run").await;
        }
    };
    deliver(pages.clone()).await;
    for (i, (token, _, _, uin, _)) in autopays.iter().enumerate() {
        let expected = if i < 25 { "paid" } else { "unpaid" };
        assert_eq!(bill(&api, token, uin).await["status"], expected, "bill {i}");
    }
    // The pages come again, twice each and at once: the redelivery of pages that paid
    // part of their autopays, and a duplicate delivery of every one of them.
    for (token, _, id, _, _) in autopays.iter().skip(25) {
        set_status(token.clone(), id.clone(), "active").await;
    }
    deliver(pages.iter().chain(pages.iter()).cloned().collect()).await;
    for (token, _, _, uin, _) in &autopays {
        wait_for_bill(&api, token, uin, "paid").await;
    }
    for (token, _, id, uin, amount) in &autopays {
        let paid = payments_of(&api, token, uin).await;
        assert_eq!(paid.len(), 1, "autopay {id}, bill {uin}: {paid:?}");
        let payment = paid[0]["id"].as_str().unwrap_or_default();
        assert_eq!(
            acquirer_order(&api, payment).await,
            Some(("charged".into(), i64::try_from(*amount).unwrap_or(0))),
            "bill {uin}"
        );
    }
    // Nothing failed for good.
    let dead = api.queue_url("-autopay-run-dlq").await;
    let dead_letters = api
        .sqs
        .receive_message()
        .queue_url(&dead)
        .send()
        .await
        .unwrap_or_else(|e| panic!("receive: {e}"));
    assert!(dead_letters.messages().is_empty());
}

// ------------------------------------------------------------------ payees without a bill

/// `POST /v1/payees/{id}/payments` of `body` under the idempotency key `key`.
async fn pay_payee(api: &Api, token: &str, payee: &str, key: &str, body: &Value) -> Reply {
    api.json_request(
        Method::POST,
        &format!("/v1/payees/{payee}/payments"),
        token,
        body,
    )
    .header("idempotency-key", key)
    .send()
    .await
}

/// A donation to a charity fund of the catalogue: a charge the portal issues on the spot
/// (its own UIN prefix), paid once however often the request is sent, with a receipt and
/// a place in the archive like any payment.
async fn a_donation_without_a_bill_is_paid_once(api: Api) {
    let (_, token) = standard_payer(&api).await;
    let catalogue = api.get_as(&token, "/v1/payees").await;
    assert_eq!(catalogue.status, 200, "{}", catalogue.body);
    let charity = catalogue
        .list("payees")
        .into_iter()
        .filter(|p| p["category"] == "charity")
        .count();
    assert!(charity >= 2, "{}", catalogue.body);
    assert_eq!(
        api.get_as(&token, "/v1/payees/troika").await.body["fields"][0]["name"],
        "card_number"
    );
    let key = unique_key();
    let body = json!({"amount": 50_000, "method": card(SUCCEEDS)});
    let paid = pay_payee(&api, &token, "charity-children", &key, &body).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let id = paid.id();
    let uin = text(&paid.body["bills"][0]["uin"]);
    assert!(uin.starts_with("0355") && uin.len() == 25, "{uin}");
    assert_eq!(paid.body["total"], 50_000);
    // The same request again: the same payment, not a second charge or a second charge
    // issued.
    let again = pay_payee(&api, &token, "charity-children", &key, &body).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.id(), id);
    assert_eq!(again.body["bills"][0]["uin"], uin.as_str());
    assert_eq!(
        acquirer_order(&api, &id).await,
        Some(("charged".to_string(), 50_000))
    );
    // Another amount under the same key is another request.
    let other = json!({"amount": 60_000, "method": body["method"].clone()});
    pay_payee(&api, &token, "charity-children", &key, &other)
        .await
        .assert_problem(422, "idempotency_key_reused");
    let receipt = receipt_of(&api, &token, &id).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert_eq!(receipt.body["bills"][0]["payee"]["inn"], "7713034238");
    let archive = api.get_as(&token, "/v1/payments").await;
    let ids: Vec<String> = archive
        .list("payments")
        .iter()
        .map(|p| text(&p["id"]))
        .collect();
    assert_eq!(ids, vec![id]);
}

/// Every field of a payment to a payee is checked at its path, Apple Pay is refused with
/// its own code, and a refused request writes nothing.
async fn payee_payments_are_checked_and_write_nothing(api: Api) {
    let (_, token) = standard_payer(&api).await;
    let apple_pay = json!({"type": "apple_pay", "payment_data": "eyJkYXRhIjoic2FuZGJveCJ9"});
    let refusals: [(Value, &[(&str, &str)]); 3] = [
        (
            json!({"fields": {"card_number": "1234567890"}, "amount": 50_000, "method": card(SUCCEEDS)}),
            &[("/fields/card_number", "troika_checksum")],
        ),
        (
            json!({"fields": {"number": "1234567897"}, "amount": 1, "method": card(SUCCEEDS)}),
            &[
                ("/fields/number", "unknown_field"),
                ("/fields/card_number", "required"),
                ("/amount", "amount_out_of_range"),
            ],
        ),
        (
            json!({"fields": {"card_number": "1234567897"}, "amount": 50_000, "method": apple_pay}),
            &[("/method/type", "apple_pay_not_accepted")],
        ),
    ];
    for (body, expected) in refusals {
        pay_payee(&api, &token, "troika", &unique_key(), &body)
            .await
            .assert_invalid_fields(expected);
    }
    let good = json!({"fields": {"card_number": "1234567897"}, "amount": 50_000,
                      "method": card(SUCCEEDS)});
    pay_payee(&api, &token, "nobody", &unique_key(), &good)
        .await
        .assert_problem(404, "payee_not_found");
    api.json_request(Method::POST, "/v1/payees/troika/payments", &token, &good)
        .send()
        .await
        .assert_problem(400, "idempotency_key_required");
    // Nothing was paid, nothing is in the archive.
    assert_eq!(
        api.get_as(&token, "/v1/payments").await.list("payments"),
        Vec::<Value>::new()
    );
    // The same card, right: a top-up of 500 roubles.
    let topped = pay_payee(&api, &token, "troika", &unique_key(), &good).await;
    assert_eq!(topped.status, 201, "{}", topped.body);
    assert!(text(&topped.body["bills"][0]["purpose"]).ends_with("1234567897"));
}

/// `POST /v1/payment-templates/{id}/payments`: a template of bills pays those still
/// unpaid in one payment; one of a catalogue payee pays it; another citizen's is 404.
async fn templates_pay_in_one_call(api: Api) {
    let (_, stranger) = standard_payer(&api).await;
    let (biller, _, token) = biller_and_citizen(&api, "Спортивная школа").await;
    let bills = [("clubs", 30_000), ("clubs", 20_000), ("education", 10_000)];
    let [paid_before, unpaid_a, unpaid_b] = new_bills(&api, &biller, bills).await;
    let first = pay_bills(&api, &token, &[&paid_before], card(SUCCEEDS)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let template = api
        .post_as(
            &token,
            "/v1/payment-templates",
            json!({"name": "Секции", "uins": [paid_before, unpaid_a, unpaid_b]}),
        )
        .await;
    assert_eq!(template.status, 201, "{}", template.body);
    let path = format!("/v1/payment-templates/{}/payments", template.id());
    let body = json!({"method": card(SUCCEEDS)});
    let call = |token: String, key: String| {
        let (api, path, body) = (&api, path.clone(), body.clone());
        async move {
            api.json_request(Method::POST, &path, &token, &body)
                .header("idempotency-key", key)
                .send()
                .await
        }
    };
    call(stranger.clone(), unique_key())
        .await
        .assert_problem(404, "payment_template_not_found");
    let key = unique_key();
    let paid = call(token.clone(), key.clone()).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let uins: Vec<String> = paid.list("bills").iter().map(|b| text(&b["uin"])).collect();
    assert_eq!(uins, vec![unpaid_a.clone(), unpaid_b.clone()]);
    assert_eq!(paid.body["total"], 30_000);
    // A retry answers the same payment; a new attempt finds nothing left to pay.
    let again = call(token.clone(), key).await;
    assert_eq!(again.id(), paid.id());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    call(token.clone(), unique_key())
        .await
        .assert_problem(409, "template_nothing_to_pay");
    // A template of a payee of the catalogue pays it with its fields and amount.
    let troika = api
        .post_as(
            &token,
            "/v1/payment-templates",
            json!({"name": "Тройка сына", "payee_payment": {"payee_id": "troika",
                   "fields": {"card_number": "0001234566"}, "amount": 30_000}}),
        )
        .await;
    assert_eq!(troika.status, 201, "{}", troika.body);
    let topped = api
        .json_request(
            Method::POST,
            &format!("/v1/payment-templates/{}/payments", troika.id()),
            &token,
            &json!({"method": card(SUCCEEDS)}),
        )
        .header("idempotency-key", unique_key())
        .send()
        .await;
    assert_eq!(topped.status, 201, "{}", topped.body);
    assert_eq!(topped.body["total"], 30_000);
}

// ------------------------------------------------------------------ refunds

/// The sandbox card whose charges succeed and whose refunds the bank declines.
const REFUNDS_DECLINED: &str = "4000000000005126";

/// `POST /v1/biller/payments/{id}/refunds` with the biller's key under `key`.
async fn refund(api: &Api, biller: &BillerKey, payment: &str, key: &str, body: Value) -> Reply {
    api.json_request(
        Method::POST,
        &format!("/v1/biller/payments/{payment}/refunds"),
        &biller.key,
        &body,
    )
    .header("idempotency-key", key)
    .send()
    .await
}

/// Asserts a refund the bank answered (201) in `state`; its id.
fn settled(reply: &Reply, state: &str) -> String {
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["state"], state, "{}", reply.body);
    reply.id()
}

fn refund_of(uin: &str, amount: u64) -> Value {
    json!({"uin": uin, "amount": amount, "reason": "Перерасчёт за ноябрь"})
}

/// The refunds one biller asks for of one bill of a payment: a scenario names the
/// biller, the payment and the bill once, and each request says only its key and amount.
struct RefundsOf<'a> {
    api: &'a Api,
    biller: &'a BillerKey,
    payment: &'a str,
    uin: &'a str,
}

impl<'a> RefundsOf<'a> {
    fn new(api: &'a Api, biller: &'a BillerKey, payment: &'a str, uin: &'a str) -> Self {
        Self {
            api,
            biller,
            payment,
            uin,
        }
    }

    /// [`refund`] of `amount` kopecks of the bill under `key`.
    async fn ask(&self, key: &str, amount: u64) -> Reply {
        let body = refund_of(self.uin, amount);
        refund(self.api, self.biller, self.payment, key, body).await
    }
}

/// A biller, a citizen who paid its bill of `amount` by `card_number`: (biller, citizen,
/// token, UIN, payment id).
async fn paid_bill(
    api: &Api,
    name: &str,
    amount: u64,
    card_number: &str,
) -> (BillerKey, Citizen, String, String, String) {
    let (biller, c, token) = biller_and_citizen(api, name).await;
    let uin = new_bill(api, &biller, "clubs", amount).await;
    let paid = pay_bills(api, &token, &[&uin], card(card_number)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let id = paid.id();
    (biller, c, token, uin, id)
}

async fn billers_refund_their_bills_partly_up_to_what_was_paid(api: Api) {
    let (biller, c, token, uin, id) = paid_bill(&api, "Бассейн «Волна»", 150_000, SUCCEEDS).await;
    let refunds = RefundsOf::new(&api, &biller, &id, &uin);
    let first = refunds.ask("refund-key-1a", 50_000).await;
    let refund_id = settled(&first, "succeeded");
    // The payer's archive shows it, the receipt e-mail tells of it, the biller hears.
    let detail = api.get_as(&token, &format!("/v1/payments/{id}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    assert_eq!(detail.body["refunded"], 50_000);
    assert_eq!(detail.body["refunds"][0]["id"], refund_id.as_str());
    assert_eq!(detail.body["refunds"][0]["amount"], 50_000);
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter()
            .any(|m| m.to_string().contains("Возврат платежа")),
        "no refund receipt: {mail:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let notice = api
            .item(
                &format!("BILLERINBOX#{}", biller.id),
                &format!("{uin}#{id}#{refund_id}"),
            )
            .await;
        if let Some(notice) = notice {
            assert_eq!(string_attr(&notice, "kind"), "refund");
            assert_eq!(number_attr(&notice, "amount"), 50_000);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no refund notice");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // The same key again: the same refund, said to be a replay; another body with it is
    // refused.
    let again = refunds.ask("refund-key-1a", 50_000).await;
    assert_eq!(settled(&again, "succeeded"), refund_id);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    refunds
        .ask("refund-key-1a", 40_000)
        .await
        .assert_problem(422, "idempotency_key_reused");
    // The rest, then not a kopeck more.
    let rest = refunds.ask("refund-key-1b", 100_000).await;
    settled(&rest, "succeeded");
    refunds
        .ask("refund-key-1c", 1)
        .await
        .assert_invalid_field("/amount", "refund_exceeds_remaining");
    let detail = api.get_as(&token, &format!("/v1/payments/{id}")).await;
    assert_eq!(detail.body["refunded"], 150_000);
    let listed = api
        .get_as(&biller.key, &format!("/v1/biller/payments/{id}/refunds"))
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.list("refunds").len(), 2);
    // Bad input: every field named; no key at all.
    let bad = refund(
        &api,
        &biller,
        &id,
        "refund-key-1d",
        json!({"uin": "12", "amount": -5, "note": "x"}),
    )
    .await;
    bad.assert_invalid_fields(&[
        ("/uin", "uin_format"),
        ("/amount", "invalid_amount"),
        ("/reason", "required"),
        ("/note", "unknown_field"),
    ]);
    api.json_request(
        Method::POST,
        &format!("/v1/biller/payments/{id}/refunds"),
        &biller.key,
        &refund_of(&uin, 100),
    )
    .send()
    .await
    .assert_problem(400, "idempotency_key_required");
    // Another biller's key: the payment is not found, and it lists nothing of it.
    let other = new_biller("Другая секция");
    refund(&api, &other, &id, "refund-key-1e", refund_of(&uin, 100))
        .await
        .assert_problem(404, "payment_not_found");
    let theirs = api
        .get_as(&other.key, &format!("/v1/biller/payments/{id}/refunds"))
        .await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert!(theirs.list("refunds").is_empty());
    // A citizen's token is no biller's.
    let citizen_try = refund(
        &api,
        &BillerKey {
            id: String::new(),
            key: token.clone(),
        },
        &id,
        "refund-key-1f",
        refund_of(&uin, 100),
    )
    .await;
    assert_eq!(citizen_try.status, 403, "{}", citizen_try.body);
}

async fn racing_refunds_of_the_remainder_pass_once(api: Api) {
    let (biller, _, token, uin, id) = paid_bill(&api, "Кружок шахмат", 80_000, SUCCEEDS).await;
    let refunds = RefundsOf::new(&api, &biller, &id, &uin);
    let (a, b) = tokio::join!(
        refunds.ask("refund-race-a", 80_000),
        refunds.ask("refund-race-b", 80_000),
    );
    let statuses = [a.status, b.status];
    assert!(
        statuses.contains(&201) && statuses.contains(&422),
        "exactly one passes: {} / {}",
        a.body,
        b.body
    );
    let refused = if a.status == 422 { a } else { b };
    refused.assert_invalid_field("/amount", "refund_exceeds_remaining");
    let detail = api.get_as(&token, &format!("/v1/payments/{id}")).await;
    assert_eq!(detail.body["refunded"], 80_000);
    assert_eq!(detail.body["refunds"].as_array().map(Vec::len), Some(1));
    let order = api
        .item(&format!("ACQORDER#{id}"), "ACQORDER")
        .await
        .unwrap_or_else(|| panic!("no acquirer order"));
    assert_eq!(number_attr(&order, "refunded"), 80_000);
}

async fn a_declined_bank_refund_changes_no_total(api: Api) {
    let (biller, c, token, uin, id) =
        paid_bill(&api, "Студия танца", 60_000, REFUNDS_DECLINED).await;
    let whole = refund_of(&uin, 60_000);
    let declined = refund(&api, &biller, &id, "refund-declined-1", whole.clone()).await;
    settled(&declined, "declined");
    assert_eq!(declined.body["decline_reason"], "refund_declined");
    let detail = api.get_as(&token, &format!("/v1/payments/{id}")).await;
    assert_eq!(detail.body["refunded"], 0);
    assert_eq!(detail.body["refunds"][0]["state"], "declined");
    let mail = api.outbox(&c.email).await;
    assert!(
        !mail
            .iter()
            .any(|m| m.to_string().contains("Возврат платежа")),
        "a declined refund sends no receipt"
    );
    // Nothing is held for it: the whole amount can still be asked for.
    let again = refund(&api, &biller, &id, "refund-declined-2", whole).await;
    settled(&again, "declined");
}
