//! End-to-end tests of payments with live integrations: the stack runs with
//! `Integrations=live`, so the deployed functions charge through the T-Bank adapter
//! against the stand-in the stack starts (API Gateway → pay → adapter → stand-in), and
//! the stand-in's signed notifications come back through `POST /v1/acquirer/notifications`.
//! A citizen pays on the bank's hosted form as a cardholder would; the scenarios look at
//! what the citizen, the biller and the bank see.
//!
//! Most scenarios run concurrently. Those that throw one of the stand-in's switches (a
//! lost answer, a wrongly signed notification) run alone afterwards: a switch takes the
//! next call of whoever makes it.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

fn main() {
    run_suite(async {
        let env = quick_sandbox(&[
            // A lost answer is given up on after 3 s, not 10: well within the stand-in's
            // wait for an answer to its notification, and short for the suite.
            ("TBANK_TIMEOUT_SECONDS", "3".to_string()),
        ]);
        let (stack, api) = open_live_stack(&env, &[], 2).await;
        let scenarios = vec![
            scenario!(a_bill_paid_on_the_banks_form_is_settled_by_its_notification),
            scenario!(a_declined_card_leaves_the_bill_to_pay_again),
            scenario!(three_d_secure_settles_after_the_challenge),
            scenario!(a_biller_refunds_part_of_a_payment_at_the_bank),
        ];
        let mut tally = run_all(&api, scenarios, true).await;
        // One at a time: each throws a switch of the stand-in.
        let alone = vec![
            scenario!(a_lost_bank_answer_is_settled_once_by_reconciliation),
            scenario!(only_a_signed_notification_settles_a_payment),
        ];
        tally += run_all(&api, alone, false).await;
        stack.shutdown().await;
        tally
    })
}

// ------------------------------------------------------------------ helpers

/// A biller, a citizen and a club bill of `amount` kopecks of that biller, which the
/// citizen pays by its UIN: (biller, citizen, session token, UIN).
async fn billed_citizen(
    api: &Api,
    biller: &str,
    amount: u64,
) -> (BillerKey, Citizen, String, String) {
    let biller = new_biller(biller);
    let (citizen, token) = standard_payer(api).await;
    let uin = biller
        .charge(api, "clubs", amount, on_snils(&snils_of("705")))
        .await;
    (biller, citizen, token, uin)
}

/// A payment the bank is to confirm on its form: its id, its `confirmation_url` (the
/// stand-in's form) and the bank's PaymentId (`gateway_reference`).
struct Opened {
    id: String,
    url: String,
    reference: String,
}

/// Pays the bills `uins` by card: 202 `requires_confirmation`, the bills held, with the
/// bank's form to go to.
async fn open_payment(api: &Api, token: &str, uins: &[&str], amount: u64) -> Opened {
    let reply = pay_bills(api, token, uins, form_card()).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(
        reply.body["status"], "requires_confirmation",
        "{}",
        reply.body
    );
    assert_eq!(reply.body["total"], amount, "{}", reply.body);
    let url = text(&reply.body["confirmation_url"]);
    assert!(
        url.starts_with(&format!("{}/new/", api.bank().url())),
        "the bank's form: {}",
        reply.body
    );
    let reference = text(&reply.body["gateway_reference"]);
    assert!(
        !reference.is_empty() && reference.bytes().all(|b| b.is_ascii_digit()),
        "the bank's PaymentId: {}",
        reply.body
    );
    Opened {
        id: reply.id(),
        url,
        reference,
    }
}

async fn payment(api: &Api, token: &str, id: &str) -> Value {
    let reply = api.get_as(token, &format!("/v1/payments/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Waits (up to 30 s) until the payment `id` is `succeeded` or `declined`; the payment.
async fn settled(api: &Api, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = payment(api, token, id).await;
        if p["status"] == "succeeded" || p["status"] == "declined" {
            return p;
        }
        assert!(Instant::now() < deadline, "never settled: {p}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn bill_status(api: &Api, token: &str, uin: &str) -> String {
    let reply = api.get_as(token, &format!("/v1/bills/{uin}")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    text(&reply.body["status"])
}

/// The receipt e-mails the citizen at `email` got for the bill `uin`.
async fn receipts(api: &Api, email: &str, uin: &str) -> usize {
    api.outbox(email)
        .await
        .iter()
        .filter(|m| {
            let t = m.to_string();
            t.contains("Квитанция об оплате") && t.contains(uin)
        })
        .count()
}

/// The biller's sandbox inbox entry `sk` (`{uin}#{payment}`, with `#{refund}` for a
/// refund), waited for up to a minute.
async fn biller_heard(
    api: &Api,
    biller: &BillerKey,
    sk: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    let pk = format!("BILLERINBOX#{}", biller.id);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(item) = api.item(&pk, sk).await {
            return item;
        }
        assert!(Instant::now() < deadline, "the biller never heard of {sk}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The biller's inbox: how many notices it holds.
async fn biller_notices(api: &Api, biller: &BillerKey) -> usize {
    api.items_with_prefix(&format!("BILLERINBOX#{}", biller.id))
        .await
        .len()
}

/// What the citizen notices of a payment that succeeded: its detail, the bill paid, the
/// archive and the receipt naming the bank's reference, one receipt e-mail, and the
/// biller told once.
async fn assert_paid(
    api: &Api,
    (citizen, token): (&Citizen, &str),
    biller: &BillerKey,
    uin: &str,
    opened: &Opened,
) {
    let p = payment(api, token, &opened.id).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_eq!(p["gateway_reference"], opened.reference.as_str(), "{p}");
    assert!(p.get("confirmation_url").is_none(), "{p}");
    assert!(p["settled_at"].is_string(), "{p}");
    assert_eq!(bill_status(api, token, uin).await, "paid");
    let archive = api.get_as(token, "/v1/payments?status=succeeded").await;
    assert_eq!(archive.status, 200, "{}", archive.body);
    assert!(
        archive
            .list("payments")
            .iter()
            .any(|p| p["id"] == opened.id.as_str()),
        "not in the archive: {}",
        archive.body
    );
    let receipt = api
        .get_as(token, &format!("/v1/payments/{}/receipt", opened.id))
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    assert_eq!(receipt.body["gateway_reference"], opened.reference.as_str());
    assert_eq!(receipt.body["bills"][0]["uin"], uin);
    assert_eq!(
        receipts(api, &citizen.email, uin).await,
        1,
        "one receipt e-mail"
    );
    let notice = biller_heard(api, biller, &format!("{uin}#{}", opened.id)).await;
    assert_eq!(number_attr(&notice, "amount"), number_attr_of(&p, "amount"));
    assert_eq!(
        biller_notices(api, biller).await,
        1,
        "the biller is told once"
    );
}

fn number_attr_of(body: &Value, field: &str) -> i64 {
    body[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} is no number: {body}"))
}

// ------------------------------------------------------------------ scenarios

/// The citizen pays on the bank's form; the bank's signed notification settles the
/// payment: the bill is paid, the archive shows it, the receipt goes out, the biller is
/// told.
async fn a_bill_paid_on_the_banks_form_is_settled_by_its_notification(api: Api) {
    let (biller, c, token, uin) = billed_citizen(&api, "Спортивная школа «Смена»", 150_000).await;
    let opened = open_payment(&api, &token, &[&uin], 150_000).await;
    let bank = api.bank();
    // Held for this payment: not paid twice by a second click meanwhile.
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");
    pay_bills(&api, &token, &[&uin], form_card())
        .await
        .assert_problem(409, "bill_in_payment");

    let page = bank.pay_on_form(&opened.url, TB_SUCCEEDS).await;
    assert!(page.contains("CONFIRMED"), "{page}");
    let p = settled(&api, &token, &opened.id).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    assert_paid(&api, (&c, &token), &biller, &uin, &opened).await;
    // The bank heard back `OK` on the first delivery, and holds one charge for the order.
    let heard = bank
        .wait_for_deliveries(&opened.reference, "the notification acknowledged", |d| {
            d.iter()
                .any(|d| d["status"] == "CONFIRMED" && d["accepted"] == true)
        })
        .await;
    assert!(heard.iter().all(|d| d["bad_token"] == false), "{heard:?}");
    assert_eq!(bank.order_statuses(&opened.id).await, ["CONFIRMED"]);
    // Settled: the client's late confirmation changes nothing.
    api.post_as(
        &token,
        &format!("/v1/payments/{}/confirm", opened.id),
        json!({}),
    )
    .await
    .assert_problem(409, "payment_not_awaiting_confirmation");
    assert_eq!(receipts(&api, &c.email, &uin).await, 1);
    // The bank saves a card only through a payment: a one-time token is not saved.
    api.post_as(&token, "/v1/payment-methods", form_card())
        .await
        .assert_invalid_field("/token", "token_refused");
}

/// A card the bank declines: the payment is `declined` with the bank's reason, the bill
/// is free again, and a new payment pays it.
async fn a_declined_card_leaves_the_bill_to_pay_again(api: Api) {
    let (biller, c, token, uin) = billed_citizen(&api, "Кружок керамики", 64_000).await;
    let bank = api.bank();
    let declined = open_payment(&api, &token, &[&uin], 64_000).await;
    let page = bank.pay_on_form(&declined.url, TB_NO_FUNDS).await;
    assert!(page.contains("REJECTED"), "{page}");
    let p = settled(&api, &token, &declined.id).await;
    assert_eq!(p["status"], "declined", "{p}");
    assert_eq!(p["decline_reason"], "insufficient_funds", "{p}");
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");
    assert_eq!(receipts(&api, &c.email, &uin).await, 0);
    let archive = api.get_as(&token, "/v1/payments?status=declined").await;
    assert_eq!(archive.status, 200, "{}", archive.body);
    assert_eq!(archive.list("payments").len(), 1, "{}", archive.body);
    assert_eq!(archive.body["payments"][0]["id"], declined.id.as_str());

    // Paid again, by a new payment: a new order at the bank, and its own form.
    let paid = open_payment(&api, &token, &[&uin], 64_000).await;
    assert_ne!(paid.id, declined.id);
    assert_ne!(paid.reference, declined.reference);
    bank.pay_on_form(&paid.url, TB_SUCCEEDS).await;
    assert_eq!(settled(&api, &token, &paid.id).await["status"], "succeeded");
    assert_paid(&api, (&c, &token), &biller, &uin, &paid).await;
    // The declined one stays declined, at the bank as here.
    assert_eq!(
        payment(&api, &token, &declined.id).await["status"],
        "declined"
    );
    assert_eq!(bank.status(&declined.reference).await, "REJECTED");
}

/// A card with a 3-D Secure challenge: the form answers the challenge page and the
/// payment waits; the right passcode pays it, a wrong one declines it.
async fn three_d_secure_settles_after_the_challenge(api: Api) {
    let (biller, c, token, uin) = billed_citizen(&api, "Музыкальная школа № 5", 92_500).await;
    let bank = api.bank();
    let opened = open_payment(&api, &token, &[&uin], 92_500).await;
    let page = bank.pay_on_form(&opened.url, TB_CHALLENGE).await;
    assert!(page.contains("3-D Secure"), "{page}");
    assert_eq!(bank.status(&opened.reference).await, "3DS_CHECKING");
    // Nothing is decided while the cardholder is on the challenge page.
    let waiting = payment(&api, &token, &opened.id).await;
    assert_eq!(waiting["status"], "requires_confirmation", "{waiting}");
    assert_eq!(waiting["confirmation_url"], opened.url.as_str());
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");

    bank.pass_challenge(&opened.url, TB_PASSCODE).await;
    // Back from the bank, the client confirms, racing the bank's notification: either
    // settles it, and the other finds it settled.
    let confirmed = api
        .post_as(
            &token,
            &format!("/v1/payments/{}/confirm", opened.id),
            json!({}),
        )
        .await;
    match confirmed.status {
        201 => assert_eq!(confirmed.body["status"], "succeeded", "{}", confirmed.body),
        _ => confirmed.assert_problem(409, "payment_not_awaiting_confirmation"),
    }
    assert_eq!(
        settled(&api, &token, &opened.id).await["status"],
        "succeeded"
    );
    assert_paid(&api, (&c, &token), &biller, &uin, &opened).await;

    // A wrong passcode: the bank refuses the authentication, the bill stays to pay.
    let uin = biller
        .charge(&api, "clubs", 30_000, on_snils(&snils_of("705")))
        .await;
    let failed = open_payment(&api, &token, &[&uin], 30_000).await;
    bank.pay_on_form(&failed.url, TB_CHALLENGE).await;
    bank.pass_challenge(&failed.url, "000000").await;
    let p = settled(&api, &token, &failed.id).await;
    assert_eq!(p["status"], "declined", "{p}");
    assert_eq!(p["decline_reason"], "authentication_failed", "{p}");
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");
    assert_eq!(bank.status(&failed.reference).await, "AUTH_FAIL");
}

/// A biller gives back part of a paid bill: the bank refunds it (its payment
/// `PARTIAL_REFUNDED`, then `REFUNDED` for the rest), the payer and the biller are told;
/// more than is left is 422 and never reaches the bank.
async fn a_biller_refunds_part_of_a_payment_at_the_bank(api: Api) {
    let (biller, c, token, uin) = billed_citizen(&api, "Бассейн «Дельфин»", 150_000).await;
    let bank = api.bank();
    let opened = open_payment(&api, &token, &[&uin], 150_000).await;
    bank.pay_on_form(&opened.url, TB_SUCCEEDS).await;
    assert_eq!(
        settled(&api, &token, &opened.id).await["status"],
        "succeeded"
    );

    let refund = |key: &'static str, amount: u64| {
        let api = &api;
        let biller = &biller;
        let path = format!("/v1/biller/payments/{}/refunds", opened.id);
        let body = json!({"uin": uin, "amount": amount, "reason": "Перерасчёт за ноябрь"});
        async move {
            api.json_request(Method::POST, &path, &biller.key, &body)
                .header("idempotency-key", key)
                .send()
                .await
        }
    };
    let part = refund("live-refund-1", 50_000).await;
    assert_eq!(part.status, 201, "{}", part.body);
    assert_eq!(part.body["state"], "succeeded", "{}", part.body);
    let refund_id = part.id();
    assert_eq!(bank.status(&opened.reference).await, "PARTIAL_REFUNDED");
    // The bank's notification of the refund is acknowledged (and settles nothing).
    bank.wait_for_deliveries(&opened.reference, "the refund's notification", |d| {
        d.iter()
            .any(|d| d["status"] == "PARTIAL_REFUNDED" && d["accepted"] == true)
    })
    .await;
    let detail = payment(&api, &token, &opened.id).await;
    assert_eq!(detail["status"], "succeeded", "{detail}");
    assert_eq!(detail["refunded"], 50_000, "{detail}");
    assert_eq!(detail["refunds"][0]["id"], refund_id.as_str(), "{detail}");
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter()
            .any(|m| m.to_string().contains("Возврат платежа")),
        "no refund receipt: {mail:?}"
    );
    let notice = biller_heard(&api, &biller, &format!("{uin}#{}#{refund_id}", opened.id)).await;
    assert_eq!(string_attr(&notice, "kind"), "refund");
    assert_eq!(number_attr(&notice, "amount"), 50_000);

    // More than is left: refused before the bank is asked.
    refund("live-refund-2", 100_001)
        .await
        .assert_invalid_field("/amount", "refund_exceeds_remaining");
    assert_eq!(bank.status(&opened.reference).await, "PARTIAL_REFUNDED");
    // Exactly what is left: the bank's payment is refunded in full.
    let rest = refund("live-refund-3", 100_000).await;
    assert_eq!(rest.status, 201, "{}", rest.body);
    assert_eq!(rest.body["state"], "succeeded", "{}", rest.body);
    assert_eq!(bank.status(&opened.reference).await, "REFUNDED");
    assert_eq!(payment(&api, &token, &opened.id).await["refunded"], 150_000);
    // The same key again: the same refund, nothing more at the bank.
    let again = refund("live-refund-1", 50_000).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.id(), refund_id);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(bank.order_statuses(&opened.id).await, ["REFUNDED"]);
}

/// The citizen pays on the form, and the bank's answer to the portal's question about
/// it is lost: the notification is acknowledged but settles nothing. The reconciliation
/// run asks again and settles the payment, once, however often it runs.
async fn a_lost_bank_answer_is_settled_once_by_reconciliation(api: Api) {
    let (biller, c, token, uin) = billed_citizen(&api, "Кружок рисования", 45_600).await;
    let bank = api.bank();
    let opened = open_payment(&api, &token, &[&uin], 45_600).await;
    bank.open_form(&opened.url).await;
    // The notification's question to the bank (`CheckOrder`) goes unanswered.
    bank.lose_next_answer("CheckOrder").await;
    bank.submit_card(&opened.url, TB_SUCCEEDS).await;
    let heard = bank
        .wait_for_deliveries(&opened.reference, "the notification acknowledged", |d| {
            d.iter().any(|d| d["accepted"] == true)
        })
        .await;
    assert_eq!(heard.len(), 1, "acknowledged at once: {heard:?}");
    // The bank charged the card; the portal does not know it yet.
    assert_eq!(bank.status(&opened.reference).await, "CONFIRMED");
    let waiting = payment(&api, &token, &opened.id).await;
    assert_eq!(waiting["status"], "requires_confirmation", "{waiting}");
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");
    assert_eq!(receipts(&api, &c.email, &uin).await, 0);

    reconcile(&api).await;
    assert_paid(&api, (&c, &token), &biller, &uin, &opened).await;
    // Another run, and the client's replay of its request: nothing more.
    reconcile(&api).await;
    assert_eq!(
        payment(&api, &token, &opened.id).await["status"],
        "succeeded"
    );
    assert_eq!(receipts(&api, &c.email, &uin).await, 1);
    assert_eq!(biller_notices(&api, &biller).await, 1);
    assert_eq!(bank.order_statuses(&opened.id).await, ["CONFIRMED"]);
}

/// The portal trusts a notification only when its token holds: the stand-in's wrongly
/// signed ones, a forged one and a tampered one are 400 `invalid_signature` and change
/// nothing; one signed as the bank signs settles the payment.
async fn only_a_signed_notification_settles_a_payment(api: Api) {
    let (biller, c, token, uin) = billed_citizen(&api, "Студия танца «Па»", 72_000).await;
    let bank = api.bank();
    let opened = open_payment(&api, &token, &[&uin], 72_000).await;
    bank.open_form(&opened.url).await;
    bank.bad_token_next_notification().await;
    bank.submit_card(&opened.url, TB_SUCCEEDS).await;
    // Every delivery of the wrongly signed notification is refused, to the last.
    let refused = bank
        .wait_for_deliveries(&opened.reference, "every delivery refused", |d| {
            d.len() >= notification_attempts()
        })
        .await;
    assert!(
        refused
            .iter()
            .all(|d| d["bad_token"] == true && d["accepted"] == false),
        "{refused:?}"
    );
    assert_eq!(bank.status(&opened.reference).await, "CONFIRMED");

    let notification = bank_notification(&opened.id, &opened.reference, "CONFIRMED", 72_000);
    let forged = signed(&notification, "not-the-password");
    let mut tampered = signed_by_the_bank(&notification);
    tampered["Amount"] = json!(7_200);
    let mut unsigned = notification.clone();
    if let Some(body) = unsigned.as_object_mut() {
        body.remove("Token");
    }
    for body in [&forged, &tampered, &unsigned] {
        notify_portal(&api, body)
            .await
            .assert_problem(400, "invalid_signature");
    }
    let waiting = payment(&api, &token, &opened.id).await;
    assert_eq!(waiting["status"], "requires_confirmation", "{waiting}");
    assert_eq!(bill_status(&api, &token, &uin).await, "unpaid");
    assert_eq!(receipts(&api, &c.email, &uin).await, 0);

    let good = notify_portal(&api, &signed_by_the_bank(&notification)).await;
    assert_eq!(good.status, 200, "{}", good.body);
    assert_eq!(good.body, "OK");
    assert_eq!(good.header("content-type"), Some("text/plain"));
    assert_paid(&api, (&c, &token), &biller, &uin, &opened).await;
    // The bank repeats itself: acknowledged again, and nothing more happens.
    let again = notify_portal(&api, &signed_by_the_bank(&notification)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(receipts(&api, &c.email, &uin).await, 1);
    assert_eq!(biller_notices(&api, &biller).await, 1);
}
