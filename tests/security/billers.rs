//! Billers: a biller's key writes only charges under its own UIN prefixes and to its
//! registered payee; its free text never reaches citizens; a revoked biller's bills
//! cannot be paid and it hears of no more payments.

use reqwest::Method;
use serde_json::{json, Value};

use crate::scenario;
use crate::support::*;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(a_biller_cannot_write_under_another_billers_prefix),
        scenario!(a_biller_cannot_name_a_foreign_payee),
        scenario!(a_batch_refuses_foreign_items_one_by_one),
        scenario!(a_billers_text_never_reaches_citizens),
        scenario!(a_revoked_billers_bills_cannot_be_paid),
        scenario!(a_revoked_biller_hears_of_no_payment),
    ]
}

/// A UIN prefix no other biller of this run has: `0` and seven digits.
fn unique_prefix() -> String {
    let digits = six_digits();
    format!("09{digits}")
}

/// A valid UIN of `length` digits under `prefix`, unique for this run.
fn uin_under(prefix: &str, length: usize) -> String {
    loop {
        // Enough digits for a 25-digit UIN under the shortest prefix.
        let unique = format!(
            "{}{}{}{}",
            six_digits(),
            six_digits(),
            six_digits(),
            six_digits()
        );
        let body = format!(
            "{prefix}{}",
            &unique[unique.len() - (length - 1 - prefix.len())..]
        );
        if let Some(d) = check_digit(&body) {
            return format!("{body}{d}");
        }
    }
}

/// The payee every biller of these scenarios is registered with, unless told otherwise.
fn registered_payee() -> Value {
    json!({
        "name": "ГБОУ Школа № 1234",
        "inn": "7707083893",
        "kpp": "770701001",
        "bic": "044525000",
        "account": "03234643350000007300",
    })
}

fn body(amount: u64, payer_snils: &str) -> Value {
    let mut body = charge(amount, on_snils(payer_snils));
    body["payee"] = registered_payee();
    body
}

async fn put(api: &Api, biller: &BillerKey, uin: &str, body: Value) -> Reply {
    biller.put(api, uin, body).await
}

async fn charge_item(
    api: &Api,
    uin: &str,
) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    api.item(&format!("CHARGE#{uin}"), "CHARGE").await
}

async fn a_biller_cannot_write_under_another_billers_prefix(api: Api) {
    let (prefix_a, prefix_b) = (unique_prefix(), unique_prefix());
    let a = new_biller_under("Детский сад № 5", &prefix_a);
    let b = new_biller_under("Школа № 6", &prefix_b);
    let snils = snils_of("811");
    let own = uin_under(&prefix_b, 20);
    let reply = put(&api, &b, &own, body(150_000, &snils)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let before = charge_item(&api, &own).await;

    // A overwrites B's charge, and writes a new one in B's range, for any payer.
    let taken = put(&api, &a, &own, body(1_000, &snils_of("812"))).await;
    taken.assert_problem(403, "uin_outside_biller_range");
    let fresh = uin_under(&prefix_b, 25);
    let planted = put(&api, &a, &fresh, body(990_000, &snils)).await;
    planted.assert_problem(403, "uin_outside_biller_range");
    // Outside every biller's range too.
    let nobodys = uin(20);
    put(&api, &a, &nobodys, body(990_000, &snils))
        .await
        .assert_problem(403, "uin_outside_biller_range");

    assert_eq!(
        charge_item(&api, &own).await,
        before,
        "B's charge unchanged"
    );
    assert!(charge_item(&api, &fresh).await.is_none(), "nothing written");
    assert!(
        charge_item(&api, &nobodys).await.is_none(),
        "nothing written"
    );
    // A's own range still works.
    let mine = put(&api, &a, &uin_under(&prefix_a, 20), body(1_000, &snils)).await;
    assert_eq!(mine.status, 201, "{}", mine.body);
}

async fn a_biller_cannot_name_a_foreign_payee(api: Api) {
    let prefix = unique_prefix();
    let a = new_biller_under("Кружок робототехники", &prefix);
    let snils = snils_of("813");
    let uin = uin_under(&prefix, 20);
    let mut foreign = body(150_000, &snils);
    // Another organisation's valid requisites: the money would go elsewhere.
    foreign["payee"] = json!({
        "name": "ООО Ромашка",
        "inn": "7702083018",
        "kpp": "770201001",
        "bic": "044525225",
        "account": "40702810200000012345",
    });
    put(&api, &a, &uin, foreign)
        .await
        .assert_problem(403, "payee_not_registered");
    // Only the account changed.
    let mut account = body(150_000, &snils);
    account["payee"]["account"] = json!("40601810800000000001");
    put(&api, &a, &uin, account)
        .await
        .assert_problem(403, "payee_not_registered");
    assert!(charge_item(&api, &uin).await.is_none(), "nothing written");

    // Without a payee the registered one is filled in.
    let mut bare = body(150_000, &snils);
    bare.as_object_mut().map(|o| o.remove("payee"));
    let written = put(&api, &a, &uin, bare).await;
    assert_eq!(written.status, 201, "{}", written.body);
    assert_eq!(written.body["payee"], registered_payee());
}

async fn a_batch_refuses_foreign_items_one_by_one(api: Api) {
    let (prefix_a, prefix_b) = (unique_prefix(), unique_prefix());
    let a = new_biller_under("Управляющая компания «Дом»", &prefix_a);
    let snils = snils_of("814");
    let (own1, foreign, own2, payee) = (
        uin_under(&prefix_a, 20),
        uin_under(&prefix_b, 20),
        uin_under(&prefix_a, 25),
        uin_under(&prefix_a, 20),
    );
    let item = |uin: &str| {
        let mut b = body(10_000, &snils);
        b["uin"] = json!(uin);
        b
    };
    let mut foreign_payee = item(&payee);
    foreign_payee["payee"]["inn"] = json!("7702083018");
    let reply = api
        .post_as(
            &a.key,
            "/v1/biller/charges:batch",
            json!({"charges": [item(&own1), item(&foreign), item(&own2), foreign_payee]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let results = reply.list("results");
    assert_eq!(results.len(), 4, "{}", reply.body);
    assert_eq!(results[0]["outcome"], "created", "{}", reply.body);
    assert_eq!(results[2]["outcome"], "created", "{}", reply.body);
    assert_eq!(results[1]["outcome"], "failed", "{}", reply.body);
    assert_eq!(results[1]["status"], 403, "{}", reply.body);
    assert_eq!(
        results[1]["code"], "uin_outside_biller_range",
        "{}",
        reply.body
    );
    assert_eq!(results[3]["status"], 403, "{}", reply.body);
    assert_eq!(results[3]["code"], "payee_not_registered", "{}", reply.body);
    assert!(charge_item(&api, &foreign).await.is_none());
    assert!(charge_item(&api, &payee).await.is_none());
    assert!(charge_item(&api, &own1).await.is_some());
    assert!(charge_item(&api, &own2).await.is_some());
}

/// Polls the outbox of `to` until a message mentions `uin`, for at most a minute.
async fn message_about(api: &Api, to: &str, uin: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = api
            .outbox(to)
            .await
            .into_iter()
            .map(|m| m.to_string())
            .find(|m| m.contains(uin));
        if let Some(m) = found {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message about {uin} reached {to}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn a_billers_text_never_reaches_citizens(api: Api) {
    let prefix = unique_prefix();
    let a = new_biller_under("Детский сад № 9", &prefix);
    let snils = snils_of("815");
    let (c, token) = standard_citizen(&api, &snils, &verifiable_passport_number()).await;
    let settings = api
        .put_as(
            &token,
            "/v1/notification-settings",
            json!({"bills": {"kindergarten": {"email": true, "sms": true}}}),
        )
        .await;
    assert_eq!(settings.status, 200, "{}", settings.body);

    // Bidi overrides and control characters in the free text are refused outright.
    let hidden = uin_under(&prefix, 20);
    let mut bidi = body(150_000, &snils);
    bidi["purpose"] = json!("Оплата за ноябрь \u{202e}moc.live\u{202c}");
    let refused = put(&api, &a, &hidden, bidi).await;
    refused.assert_problem(422, "validation_failed");
    assert!(
        refused.field_errors().iter().any(|(f, _)| f == "/purpose"),
        "{}",
        refused.body
    );
    assert!(charge_item(&api, &hidden).await.is_none());

    let uin = uin_under(&prefix, 20);
    let mut phishing = body(150_000, &snils);
    phishing["purpose"] = json!("Оплатите по ссылке http://evil.example/pay иначе начислим пени");
    let written = put(&api, &a, &uin, phishing).await;
    assert_eq!(written.status, 201, "{}", written.body);

    let email = message_about(&api, &c.email, &uin).await;
    let sms = message_about(&api, &c.phone, &uin).await;
    for (channel, text) in [("e-mail", &email), ("SMS", &sms)] {
        assert!(
            !text.contains("evil") && !text.contains("Оплатите по ссылке"),
            "the biller's text reached the {channel}: {text}"
        );
        assert!(text.contains("500,00"), "the amount is told: {text}");
    }
}

async fn a_revoked_billers_bills_cannot_be_paid(api: Api) {
    let prefix = unique_prefix();
    let r = new_biller_under("Секция фехтования", &prefix);
    let snils = snils_of("816");
    let (_, token) = standard_citizen(&api, &snils, &verifiable_passport_number()).await;
    let uin = uin_under(&prefix, 20);
    let written = put(&api, &r, &uin, body(70_000, &snils)).await;
    assert_eq!(written.status, 201, "{}", written.body);
    // An autopay of the citizen that would pay it on today's schedule.
    let method_id = saved_card(&api, &token, SUCCEEDS).await;
    let trigger = todays_trigger();
    let autopay = api
        .post_as(
            &token,
            "/v1/autopays",
            json!({"name": "Секции", "match": {"payer": {"kind": "snils", "value": snils}},
                    "method_id": method_id, "limit": 1_000_000, "trigger": trigger}),
        )
        .await;
    assert_eq!(autopay.status, 201, "{}", autopay.body);

    admin(&["revoke-biller", "--id", &r.id]);

    pay_bills(&api, &token, &[&uin], card(SUCCEEDS))
        .await
        .assert_problem(409, "bill_withdrawn");
    let looked_up = api.get_as(&token, &format!("/v1/bills/{uin}")).await;
    assert_eq!(looked_up.status, 200, "{}", looked_up.body);
    assert_eq!(looked_up.body["payable"], false, "{}", looked_up.body);
    assert_eq!(
        looked_up.body["not_payable"]["code"], "biller_revoked",
        "{}",
        looked_up.body
    );
    let list = api.get_as(&token, "/v1/bills").await;
    let listed = list.body["bills"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["uin"] == json!(uin)).cloned())
        .unwrap_or_else(|| panic!("the bill is still listed: {}", list.body));
    assert_eq!(listed["payable"], false, "{listed}");

    let run = api
        .request(Method::POST, "/_local/schedules/run-autopays")
        .send()
        .await;
    assert!((200..300).contains(&run.status), "{}", run.status);
    // The schedule only plans; the run's pages are done when its queue is empty.
    wait_for_empty_queue(&api, "-autopay-run").await;
    let item = charge_item(&api, &uin).await.unwrap_or_default();
    assert_eq!(
        string_attr(&item, "status"),
        "unpaid",
        "the autopay paid it"
    );
    assert!(!item.contains_key("lock_payment"), "the autopay locked it");
    let payments = api.get_as(&token, "/v1/payments").await;
    assert!(
        !payments.body.to_string().contains(&uin),
        "a payment of the withdrawn bill: {}",
        payments.body
    );
}

async fn a_revoked_biller_hears_of_no_payment(api: Api) {
    let prefix = unique_prefix();
    // Its endpoint refuses the first deliveries: the notice is still queued when the
    // biller is revoked.
    let r = new_biller_under("Бассейн «Волна» (нестабильный)", &prefix);
    let snils = snils_of("817");
    let (_, token) = standard_payer(&api).await;
    let uin = uin_under(&prefix, 20);
    let written = put(&api, &r, &uin, body(40_000, &snils)).await;
    assert_eq!(written.status, 201, "{}", written.body);
    let paid = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let payment = paid.id();
    admin(&["revoke-biller", "--id", &r.id]);

    let inbox = (format!("BILLERINBOX#{}", r.id), format!("{uin}#{payment}"));
    let dropped = (
        format!("BILLER#{}", r.id),
        format!("DROPPED#{uin}#{payment}"),
    );
    // The endpoint's refusals come back after the queue's visibility timeout
    // (`PaymentNoticeRetrySeconds`, 120 s on this stack): the third delivery, the one it
    // would acknowledge, comes after about four minutes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        assert!(
            api.item(&inbox.0, &inbox.1).await.is_none(),
            "the revoked biller got the notice"
        );
        if api.item(&dropped.0, &dropped.1).await.is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the notice was neither delivered nor dropped"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
