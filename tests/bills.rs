//! End-to-end tests of charges and bills: billers with their keys push charges over the
//! local gateway, citizens look bills up by UIN.

#[path = "bills/inbox.rs"]
mod inbox;
mod support;

use inbox::*;

use reqwest::Method;
use serde_json::{json, Value};
use support::*;

fn main() {
    run_suite(async {
        let (stack, api) = open_stack(
            &quick_sandbox(&[
                // Low, so that reaching it takes a few requests (each instance counts its own).
                ("BILL_LOOKUPS_PER_WINDOW", LOOKUP_LIMIT.to_string()),
            ]),
            &[],
            4,
        )
        .await;
        let mut tally = run_all(
            &api,
            vec![
                scenario!(billers_need_their_key),
                scenario!(charges_are_idempotent_and_final_once_cancelled),
                scenario!(every_invalid_field_is_named),
                scenario!(bulk_reports_each_item),
                scenario!(charges_are_imported_from_files),
                scenario!(bills_are_looked_up_by_uin),
                scenario!(bills_are_found_from_the_profile),
                scenario!(new_bills_are_told_once_as_each_citizen_wants),
                scenario!(unverified_identifiers_get_no_notices),
                scenario!(verification_outcome_by_sms_when_asked),
                scenario!(lookups_are_limited_per_account),
                scenario!(the_inbox_keeps_what_the_citizen_was_told),
            ],
            true,
        )
        .await;
        // Alone and last: its thousand notice jobs would hold up the notices the
        // scenarios above wait for.
        tally += run_all(
            &api,
            vec![scenario!(a_full_batch_is_written_once_in_order)],
            false,
        )
        .await;
        stack.shutdown().await;
        tally
    })
}

// ------------------------------------------------------------------ helpers

/// Lookups by UIN per account and window in this run (see `main`).
const LOOKUP_LIMIT: usize = 8;
/// `cargo lambda watch --concurrency` of the test stack: instances that each count.
const INSTANCES: usize = 4;

/// The same UIN with a wrong check digit.
fn broken(uin: &str) -> String {
    let (body, last) = uin.split_at(uin.len() - 1);
    let wrong = (last.parse::<u32>().unwrap_or(0) + 1) % 10;
    format!("{body}{wrong}")
}

fn snils_payer() -> Value {
    on_snils("112-233-445 95")
}

// ------------------------------------------------------------------ scenarios

async fn billers_need_their_key(api: Api) {
    let biller = new_biller("Детский сад № 7");
    let path = format!("/v1/biller/charges/{}", uin(20));
    let body = charge(150_000, snils_payer());
    let none = api
        .call(Method::PUT, &path, &unique_ip(), None, Some(body.clone()))
        .await;
    assert_eq!(none.status, 401);
    let forged = api
        .put_as("bk_forged0000000000000000", &path, body.clone())
        .await;
    assert_eq!(forged.status, 401);
    // A citizen is not a biller, and a biller's key opens no citizen's route.
    let c = sign_up(&api).await;
    let session = token_for(&api, &c).await;
    api.put_as(&session, &path, body.clone())
        .await
        .assert_problem(403, "biller_only");
    assert_eq!(api.get_as(&biller.key, "/v1/profile").await.status, 401);
    // A revoked key stops working.
    admin(&["revoke-biller", "--id", &biller.id]);
    assert_eq!(api.put_as(&biller.key, &path, body).await.status, 401);
}

async fn charges_are_idempotent_and_final_once_cancelled(api: Api) {
    let school = new_biller("Школа № 1234");
    let other = new_biller("ГИБДД");
    let uin = uin(25);
    let path = format!("/v1/biller/charges/{uin}");
    let payers = json!([
        {"kind": "snils", "value": "112-233-445 95"},
        {"kind": "birth_certificate", "value": "IV-МЮ 123456"},
    ]);
    let body = charge(150_000, payers);

    let created = api.put_as(&school.key, &path, body.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["outcome"], "created");
    assert_eq!(created.body["status"], "unpaid");
    assert_eq!(created.body["payers"][0]["value"], "11223344595");
    let again = api.put_as(&school.key, &path, body.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["outcome"], "unchanged");
    assert_eq!(again.body["version"], 1);

    // What landed: the charge and one index item per payer, no identifier in clear.
    let item = api
        .item(&format!("CHARGE#{uin}"), "CHARGE")
        .await
        .unwrap_or_else(|| panic!("charge missing"));
    assert_eq!(string_attr(&item, "biller_id"), school.id);
    let index: Vec<_> = api
        .items_with_prefix("PAYER#")
        .await
        .into_iter()
        .filter(|i| string_attr(i, "sk") == format!("CHARGE#{uin}"))
        .collect();
    assert_eq!(index.len(), 2);
    assert!(index
        .iter()
        .all(|i| !string_attr(i, "pk").contains("11223344595")));

    let mut changed = body.clone();
    changed["amount"] = json!(120_000);
    changed["payers"] = snils_payer();
    let updated = api.put_as(&school.key, &path, changed.clone()).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["outcome"], "updated");
    assert_eq!(updated.body["amount"], 120_000);
    let index = api
        .items_with_prefix("PAYER#")
        .await
        .into_iter()
        .filter(|i| string_attr(i, "sk") == format!("CHARGE#{uin}"))
        .count();
    assert_eq!(index, 1, "the dropped payer's index item went with it");

    // Another biller learns nothing of it and changes nothing.
    api.get_as(&other.key, &path)
        .await
        .assert_problem(404, "charge_not_found");
    api.put_as(&other.key, &path, body.clone())
        .await
        .assert_problem(404, "charge_not_found");
    api.delete_as(&other.key, &path)
        .await
        .assert_problem(404, "charge_not_found");

    assert_eq!(api.delete_as(&school.key, &path).await.status, 204);
    assert_eq!(api.delete_as(&school.key, &path).await.status, 204);
    let read = api.get_as(&school.key, &path).await;
    assert_eq!(read.body["status"], "cancelled");
    api.put_as(&school.key, &path, body)
        .await
        .assert_problem(409, "charge_cancelled");
}

async fn every_invalid_field_is_named(api: Api) {
    let biller = new_biller("Управляющая компания");
    let body = charge(150_000, snils_payer());
    for length in [20, 25] {
        let reply = api
            .put_as(
                &biller.key,
                &format!("/v1/biller/charges/{}", broken(&uin(length))),
                body.clone(),
            )
            .await;
        reply.assert_problem(422, "validation_failed");
        assert_eq!(
            reply.field_errors(),
            vec![("/uin".to_string(), "uin_checksum".to_string())],
            "length {length}"
        );
    }
    let bad = json!({
        "amount": 0,
        "payee": {"name": "", "inn": "7707083894", "kpp": "7707", "bic": "04452", "account": "123"},
        "purpose": "",
        "kbk": "123",
        "oktmo": "4538",
        "bill_date": "2026-11-31",
        "due_date": "2026-10-01",
        "category": "cinema",
        "discount": {"amount": 100, "until": "soon"},
        "payers": [{"kind": "snils", "value": "112-233-445 96"}, {"kind": "pet", "value": "Шарик"}],
        "extra": true,
    });
    let reply = biller.put(&api, &uin(20), bad).await;
    reply.assert_fields_named(&[
        "/amount",
        "/payee/name",
        "/payee/inn",
        "/payee/kpp",
        "/payee/bic",
        "/payee/account",
        "/purpose",
        "/kbk",
        "/oktmo",
        "/bill_date",
        "/category",
        "/discount/until",
        "/payers/0/value",
        "/payers/1/kind",
        "/extra",
    ]);
    // A null payee is the registered one; a passport with a letter inside is a field error,
    // not a crash;
    // a UIN in the body must be the path's.
    let mut odd = charge(150_000, payer("passport", "123é56789"));
    odd["payee"] = Value::Null;
    odd["uin"] = json!(uin(20));
    let reply = biller.put(&api, &uin(20), odd.clone()).await;
    reply.assert_field_errors(&[("/uin", "uin_mismatch")]);
    odd.as_object_mut().map(|o| o.remove("uin"));
    let reply = biller.put(&api, &uin(20), odd).await;
    let errors = reply.field_errors();
    assert!(
        !errors.iter().any(|(field, _)| field.starts_with("/payee")),
        "{errors:?}"
    );
    reply.assert_invalid_field("/payers/0/value", "passport_format");

    // The same payer twice, apart: one index item, and the order does not matter.
    let twice = uin(25);
    let payers = json!([
        {"kind": "snils", "value": "112-233-445 95"},
        {"kind": "sts", "value": "77 УО 123456"},
        {"kind": "snils", "value": "11223344595"},
    ]);
    let reply = biller.put(&api, &twice, charge(150_000, payers)).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["payers"].as_array().map(Vec::len), Some(2));
    let reordered = json!([
        {"kind": "sts", "value": "77 УО 123456"},
        {"kind": "snils", "value": "112-233-445 95"},
    ]);
    let again = biller.put(&api, &twice, charge(150_000, reordered)).await;
    assert_eq!(again.body["outcome"], "unchanged", "{}", again.body);

    let mut late = charge(150_000, snils_payer());
    late["due_date"] = json!("2026-10-01");
    late["discount"] = json!({"amount": 150_000, "until": "2026-11-20"});
    let reply = biller.put(&api, &uin(20), late).await;
    reply.assert_invalid_field("/due_date", "due_before_bill_date");
    reply.assert_invalid_field("/discount/amount", "discount_too_large");
}

async fn bulk_reports_each_item(api: Api) {
    let biller = new_biller("Энергосбыт");
    let good = uin(20);
    let mut first = charge(310_050, snils_payer());
    first["uin"] = json!(good);
    first["category"] = json!("utilities");
    let mut bad_uin = charge(100, snils_payer());
    bad_uin["uin"] = json!(broken(&uin(20)));
    let mut bad_amount = charge(100, snils_payer());
    bad_amount["uin"] = json!(uin(25));
    bad_amount["amount"] = json!(-5);
    let reply = api
        .post_as(
            &biller.key,
            "/v1/biller/charges:batch",
            json!({"charges": [first, bad_uin, bad_amount, "not a charge"]}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["succeeded"], 1);
    assert_eq!(reply.body["failed"], 3);
    let results = reply.list("results");
    assert_eq!(results[0]["outcome"], "created");
    assert_eq!(results[1]["errors"][0]["field"], "/charges/1/uin");
    assert_eq!(results[1]["errors"][0]["code"], "uin_checksum");
    assert_eq!(results[2]["errors"][0]["field"], "/charges/2/amount");
    assert_eq!(results[3]["errors"][0]["field"], "/charges/3");
    let stored = biller.get(&api, &good).await;
    assert_eq!(stored.body["amount"], 310_050);
    // Too many at once is refused whole.
    let many: Vec<Value> = (0..501).map(|_| json!({})).collect();
    api.post_as(
        &biller.key,
        "/v1/biller/charges:batch",
        json!({"charges": many}),
    )
    .await
    .assert_problem(422, "validation_failed");
}

/// The largest batch a biller may send: every charge written, a UIN named twice written
/// in the order given, another biller's UIN refused alone; the same batch again changes
/// nothing but what it changes.
async fn a_full_batch_is_written_once_in_order(api: Api) {
    let biller = new_biller("Городской расчётный центр");
    let other = new_biller("Соседний расчётный центр");
    let foreign = uin(20);
    let put = other
        .put(&api, &foreign, charge(42_000, snils_payer()))
        .await;
    assert_eq!(put.status, 201, "{}", put.body);
    let uins: Vec<String> = (0..498).map(|_| uin(20)).collect();
    let mut items: Vec<Value> = uins
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut c = charge(10_000 + i as u64, snils_payer());
            c["uin"] = json!(u);
            c
        })
        .collect();
    let mut theirs = charge(1, snils_payer());
    theirs["uin"] = json!(foreign);
    items.push(theirs);
    let mut again = charge(777, snils_payer());
    again["uin"] = json!(uins[3]);
    items.push(again);
    assert_eq!(items.len(), 500);
    let batch = json!({ "charges": items });
    let reply = api
        .post_as(&biller.key, "/v1/biller/charges:batch", batch.clone())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["succeeded"], 499, "{}", reply.body["failed"]);
    assert_eq!(reply.body["failed"], 1);
    let results = reply.list("results");
    assert_eq!(results.len(), 500);
    for (i, r) in results.iter().enumerate().take(498) {
        assert_eq!(r["index"], i);
        assert_eq!(r["uin"], uins[i]);
        assert_eq!(r["outcome"], "created", "{r}");
    }
    assert_eq!(results[498]["outcome"], "failed");
    assert_eq!(results[498]["status"], 404, "{}", results[498]);
    assert_eq!(results[499]["outcome"], "updated", "{}", results[499]);
    // Every charge is stored as sent, the later item of a UIN named twice winning.
    for (i, u) in uins.iter().enumerate().step_by(37) {
        let stored = biller.get(&api, u).await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        let expected = if i == 3 { 777 } else { 10_000 + i as u64 };
        assert_eq!(stored.body["amount"], expected, "{u}");
    }
    let twice = api
        .get_as(&biller.key, &format!("/v1/biller/charges/{}", uins[3]))
        .await;
    assert_eq!(twice.body["amount"], 777);
    let untouched = other.get(&api, &foreign).await;
    assert_eq!(untouched.body["amount"], 42_000);
    // Sent again: unchanged, but for the UIN named twice, which goes back and forth.
    let reply = api
        .post_as(&biller.key, "/v1/biller/charges:batch", batch)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let results = reply.list("results");
    let unchanged = results
        .iter()
        .filter(|r| r["outcome"] == "unchanged")
        .count();
    assert_eq!(unchanged, 497, "{}", reply.body["succeeded"]);
    assert_eq!(results[3]["outcome"], "updated");
    assert_eq!(results[499]["outcome"], "updated");
    assert_eq!(results[498]["status"], 404);
}

async fn bills_are_looked_up_by_uin(api: Api) {
    let police = new_biller("ГИБДД ГУ МВД по г. Москве");
    let c = sign_up(&api).await;
    let session = token_for(&api, &c).await;
    let fine = uin(20);
    let mut body = charge(500_000, on_sts("77 УО 123456"));
    body["category"] = json!("fines");
    body["discount"] = json!({"amount": 250_000, "until": "2999-12-31"});
    let put = police.put(&api, &fine, body.clone()).await;
    assert_eq!(put.status, 201, "{}", put.body);
    let expired = uin(25);
    body["discount"] = json!({"amount": 250_000, "until": "2026-11-02"});
    let put = police.put(&api, &expired, body).await;
    assert_eq!(put.status, 201, "{}", put.body);

    let bill = api.get_as(&session, &format!("/v1/bills/{fine}")).await;
    assert_eq!(bill.status, 200, "{}", bill.body);
    assert_eq!(bill.body["amount"], 500_000);
    assert_eq!(
        bill.body["amount_due"], 250_000,
        "half price while the discount lasts"
    );
    assert_eq!(bill.body["payee"]["bic"], "044525000");
    assert!(
        bill.body.get("payers").is_none(),
        "a paper bill tells nothing of its payers"
    );
    let bill = api.get_as(&session, &format!("/v1/bills/{expired}")).await;
    assert_eq!(bill.body["amount_due"], 500_000, "the discount is over");

    let reply = api
        .get_as(&session, &format!("/v1/bills/{}", broken(&fine)))
        .await;
    reply.assert_field_errors(&[("/uin", "uin_checksum")]);
    api.get_as(&session, &format!("/v1/bills/{}", uin(20)))
        .await
        .assert_problem(404, "bill_not_found");
    assert_eq!(
        api.call(
            Method::GET,
            &format!("/v1/bills/{fine}"),
            &unique_ip(),
            None,
            None
        )
        .await
        .status,
        401
    );
}

async fn bills(api: &Api, token: &str, query: &str) -> Reply {
    api.get_as(token, &format!("/v1/bills{query}")).await
}

async fn bills_are_found_from_the_profile(api: Api) {
    let biller = new_biller("Расчётный центр");
    // A parent with verified documents, a child and a car; the other parent adds the child.
    // The parents are the ones the sandbox birth record of the certificate names.
    let Family {
        number,
        mother_snils: own_snils,
        mother_token: mother,
        father_token: father,
        ..
    } = family_on_record(&api, "701001").await;
    let certificate = format!("II-МЮ {number}");
    let child = json!({"last_name": "Иванова", "first_name": "Мария", "birth_date": "2019-02-03",
                       "birth_certificate": certificate});
    add_child_to(&api, &[&mother, &father], &child).await;
    let sts = add_car(&api, &mother, "А123ВС77").await;
    // Somebody whose SNILS is still being checked (the sandbox never answers for 996…).
    let pending_snils = snils_of("996");
    let (_, stranger) = citizen_with_snils(&api, &pending_snils).await;

    let [utility, kindergarten, fine, unverified, cancelled] = biller
        .charges(
            &api,
            [
                ("utilities", 310_050, on_snils(&own_snils)),
                ("kindergarten", 150_000, on_certificate(&certificate)),
                ("fines", 500_000, on_sts(&sts)),
                ("taxes", 99_900, on_snils(&pending_snils)),
                ("utilities", 1_000, on_snils(&own_snils)),
            ],
        )
        .await;
    assert_eq!(biller.cancel(&api, &cancelled).await.status, 204);

    // The mother sees her own, her child's and her car's unpaid bills, each saying why.
    let list = bills(&api, &mother, "").await;
    assert_eq!(list.status, 200, "{}", list.body);
    let mut expected = vec![utility.clone(), kindergarten.clone(), fine.clone()];
    expected.sort();
    assert_eq!(uins_of(&list), expected);
    let by_uin = |uin: &str| {
        list.body["bills"]
            .as_array()
            .and_then(|b| b.iter().find(|b| b["uin"] == uin).cloned())
            .unwrap_or_default()
    };
    assert_eq!(by_uin(&kindergarten)["matched"][0]["holder"], "child");
    assert_eq!(by_uin(&kindergarten)["matched"][0]["name"], "Мария");
    assert_eq!(by_uin(&fine)["matched"][0]["holder"], "vehicle");
    assert_eq!(by_uin(&fine)["matched"][0]["plate"], "А123ВС77");
    assert_eq!(by_uin(&utility)["matched"][0]["identifier"], "snils");
    assert!(by_uin(&utility)["payers"].is_null());

    // Filters and stable pages.
    assert_eq!(
        uins_of(&bills(&api, &mother, "?category=fines").await),
        vec![fine.clone()]
    );
    let first = bills(&api, &mother, "?limit=2").await;
    assert_eq!(uins_of(&first), expected[..2].to_vec());
    let next = text(&first.body["next_after"]);
    assert_eq!(
        uins_of(&bills(&api, &mother, &format!("?limit=2&after={next}")).await),
        expected[2..].to_vec()
    );
    bills(&api, &mother, "?category=cinema&limit=0")
        .await
        .assert_problem(422, "validation_failed");

    // The other parent sees the child's bill; nobody sees a bill through an unchecked SNILS.
    assert_eq!(
        uins_of(&bills(&api, &father, "").await),
        vec![kindergarten.clone()]
    );
    assert!(uins_of(&bills(&api, &stranger, "").await).is_empty());

    // Saved bills are the saver's own.
    let saved = api
        .post_as(&stranger, "/v1/bills/saved", json!({"uin": unverified}))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let list = bills(&api, &stranger, "").await;
    assert_eq!(uins_of(&list), vec![unverified.clone()]);
    assert_eq!(list.body["bills"][0]["matched"][0]["holder"], "saved");
    assert!(!uins_of(&bills(&api, &father, "").await).contains(&unverified));
    let forget = format!("/v1/bills/saved/{unverified}");
    assert_eq!(api.delete_as(&stranger, &forget).await.status, 204);
    api.delete_as(&stranger, &forget)
        .await
        .assert_problem(404, "bill_not_found");

    // Fines by any СТС, in the profile or not.
    let fines = api
        .get_as(
            &father,
            &format!("/v1/fines?sts={}", sts.replace(' ', "%20")),
        )
        .await;
    assert_eq!(fines.status, 200, "{}", fines.body);
    assert_eq!(fines.body["fines"][0]["uin"], fine.as_str());
    api.get_as(&father, "/v1/fines?sts=12")
        .await
        .assert_problem(422, "validation_failed");
}

// ------------------------------------------------------------------ notices

async fn settings(api: &Api, token: &str, body: Option<Value>) -> Reply {
    let method = if body.is_some() {
        Method::PUT
    } else {
        Method::GET
    };
    call(api, method, "/v1/notification-settings", token, body).await
}

/// Asserts an answer of the notification settings: 200, and each JSON pointer of
/// `expected` holding its value (the scenario checks defaults, edits and reads so).
fn assert_settings(reply: &Reply, expected: &[(&str, Value)]) {
    assert_eq!(reply.status, 200, "{}", reply.body);
    for (pointer, value) in expected {
        assert_eq!(
            reply.body.pointer(pointer),
            Some(value),
            "{pointer}: {}",
            reply.body
        );
    }
}

/// Messages in the outbox for `to` that mention `text`.
async fn mentioning(api: &Api, to: &str, text: &str) -> Vec<Value> {
    api.outbox(to)
        .await
        .into_iter()
        .filter(|m| m.to_string().contains(text))
        .collect()
}

/// Waits until the outbox for `to` holds a message mentioning `text`; returns them all.
async fn await_message(api: &Api, to: &str, text: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = mentioning(api, to, text).await;
        if !found.is_empty() {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message to {to} mentioning {text}: {:?}",
            api.outbox(to).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

async fn new_bills_are_told_once_as_each_citizen_wants(api: Api) {
    let biller = new_biller("Детский сад № 7");
    let Family {
        number,
        mother_snils: own_snils,
        mother,
        mother_token,
        father,
        father_token,
    } = family_on_record(&api, "702001").await;

    // Defaults: education services by e-mail, the rest off, outcome SMS off.
    let defaults = settings(&api, &mother_token, None).await;
    assert_settings(
        &defaults,
        &[
            ("/bills/kindergarten", json!({"email": true, "sms": false})),
            ("/bills/education/email", json!(true)),
            ("/bills/fines", json!({"email": false, "sms": false})),
            ("/bills/utilities/email", json!(false)),
            ("/verification", json!({"email": true, "sms": false})),
        ],
    );

    // Each says what they want; what a PUT leaves out takes its default.
    let put = settings(
        &api,
        &father_token,
        Some(json!({"bills": {"kindergarten": {"email": false, "sms": true}}})),
    )
    .await;
    assert_settings(
        &put,
        &[
            ("/bills/kindergarten", json!({"email": false, "sms": true})),
            ("/bills/education/email", json!(true)),
        ],
    );
    let put = settings(
        &api,
        &mother_token,
        Some(json!({"bills": {"fines": {"sms": true}, "utilities": {"email": true}}})),
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.body);
    let read = settings(&api, &mother_token, None).await;
    assert_settings(
        &read,
        &[
            ("/bills/utilities", json!({"email": true, "sms": false})),
            ("/bills/fines", json!({"email": false, "sms": true})),
            ("/bills/kindergarten/email", json!(true)),
        ],
    );

    // Bad settings are refused field by field, and change nothing.
    let bad = settings(
        &api,
        &mother_token,
        Some(
            json!({"bills": {"cinema": {"email": true}, "fines": {"sms": "yes", "push": true}},
                    "verification": {"email": false}}),
        ),
    )
    .await;
    bad.assert_invalid_fields(&[
        ("/bills/cinema", "invalid_category"),
        ("/bills/fines/sms", "invalid_type"),
        ("/bills/fines/push", "unknown_field"),
        ("/verification/email", "unknown_field"),
    ]);
    assert_settings(
        &settings(&api, &mother_token, None).await,
        &[("/bills/fines/sms", json!(true))],
    );

    // Both parents hold the child; the mother has a car.
    let certificate = format!("III-МЮ {number}");
    let child = json!({"last_name": "Смирнов", "first_name": "Пётр", "birth_date": "2020-05-06",
                       "birth_certificate": certificate});
    add_child_to(&api, &[&mother_token, &father_token], &child).await;
    let sts = add_car(&api, &mother_token, "В456ОР77").await;

    // A kindergarten bill for the child: the mother by e-mail, the father by SMS only.
    let kindergarten = biller
        .charge(&api, "kindergarten", 150_000, on_certificate(&certificate))
        .await;
    let mail = await_message(&api, &mother.email, &kindergarten).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let told = mail[0].to_string();
    assert!(told.contains("Пётр"), "says whose bill it is: {told}");
    assert!(told.contains("500,00"), "says how much: {told}");
    await_message(&api, &father.phone, &kindergarten).await;

    // The same charge again, then a new amount: still one message each.
    let path = format!("/v1/biller/charges/{kindergarten}");
    let mut body = charge(150_000, on_certificate(&certificate));
    let again = api.put_as(&biller.key, &path, body.clone()).await;
    assert_eq!(again.status, 200, "{}", again.body);
    body["amount"] = json!(160_000);
    let changed = api.put_as(&biller.key, &path, body).await;
    assert_eq!(changed.status, 200, "{}", changed.body);

    // A fine for the car: the mother by SMS (her choice), not by e-mail.
    let fine = biller.charge(&api, "fines", 500_000, on_sts(&sts)).await;
    // A utility bill on her SNILS, verified by the registry: by e-mail, as she asked.
    let utility = biller
        .charge(&api, "utilities", 310_050, on_snils(&own_snils))
        .await;
    await_message(&api, &mother.phone, &fine).await;
    let mail = await_message(&api, &mother.email, &utility).await;
    assert!(mail[0].to_string().contains("на ваше имя"), "{mail:?}");
    // The repeats and the utility bill went through the same queue as the fine; give
    // stragglers a moment, then count.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        mentioning(&api, &mother.email, &kindergarten).await.len(),
        1
    );
    assert_eq!(
        mentioning(&api, &father.phone, &kindergarten).await.len(),
        1
    );
    assert!(mentioning(&api, &father.email, &kindergarten)
        .await
        .is_empty());
    assert!(mentioning(&api, &mother.email, &fine).await.is_empty());
    assert_eq!(mentioning(&api, &mother.email, &utility).await.len(), 1);
    assert!(mentioning(&api, &mother.phone, &utility).await.is_empty());
    assert!(
        mentioning(&api, &father.phone, &fine).await.is_empty(),
        "the car is the mother's alone"
    );

    // Once the child is removed from the father's profile, his next bills stop.
    let children = api.get_as(&father_token, "/v1/profile/children").await;
    let child_id = text(&children.body["children"][0]["id"]);
    let removed = api
        .delete_as(&father_token, &format!("/v1/profile/children/{child_id}"))
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let club = biller
        .charge(&api, "kindergarten", 70_000, on_certificate(&certificate))
        .await;
    await_message(&api, &mother.email, &club).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(mentioning(&api, &father.phone, &club).await.is_empty());
}

async fn unverified_identifiers_get_no_notices(api: Api) {
    let biller = new_biller("ИФНС № 1");
    // The sandbox never answers for 996…: the SNILS stays pending.
    let pending_snils = snils_of("996");
    let (stranger, token) = citizen_with_snils(&api, &pending_snils).await;
    let on = settings(
        &api,
        &token,
        Some(json!({"bills": {"taxes": {"email": true, "sms": true}, "fines": {"email": true}}})),
    )
    .await;
    assert_eq!(on.status, 200, "{}", on.body);
    // A car's fine as a marker that the queue moved on.
    let sts = add_car(&api, &token, "В456ОР77").await;
    let tax = biller
        .charge(&api, "taxes", 99_900, on_snils(&pending_snils))
        .await;
    let lesson = biller.charge(&api, "fines", 45_000, on_sts(&sts)).await;
    await_message(&api, &stranger.email, &lesson).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(mentioning(&api, &stranger.email, &tax).await.is_empty());
    assert!(mentioning(&api, &stranger.phone, &tax).await.is_empty());
}

async fn verification_outcome_by_sms_when_asked(api: Api) {
    let (quiet, quiet_token) = citizen(&api).await;
    let (keen, keen_token) = citizen(&api).await;
    let on = settings(
        &api,
        &keen_token,
        Some(json!({"verification": {"sms": true}})),
    )
    .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(on.body["verification"], json!({"email": true, "sms": true}));
    for (token, snils, number) in [
        (&quiet_token, snils_of("703"), "703001"),
        (&keen_token, snils_of("704"), "704001"),
    ] {
        let reply = patch_new(&api, token, verifiable(&snils, number)).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        wait_for(&api, token, "standard level", |p| p["level"] == "standard").await;
    }
    // Both get the e-mail; only the one who asked gets the SMS, with no personal data.
    await_message(&api, &keen.email, "Проверка данных профиля завершена").await;
    await_message(&api, &quiet.email, "Проверка данных профиля завершена").await;
    let sms = await_message(&api, &keen.phone, "Проверка данных профиля завершена").await;
    assert_eq!(sms.len(), 1, "{sms:?}");
    assert!(sms[0].to_string().contains("подтверждены"), "{sms:?}");
    assert!(mentioning(&api, &quiet.phone, "Проверка данных профиля")
        .await
        .is_empty());
}

async fn lookups_are_limited_per_account(api: Api) {
    let biller = new_biller("МОЭК");
    let uin = biller.charge(&api, "utilities", 1_000, snils_payer()).await;
    let (_, greedy) = citizen(&api).await;
    let (_, other) = citizen(&api).await;
    let path = format!("/v1/bills/{uin}");
    // The count is the table's, whichever instance answers.
    let mut answered = 0;
    let mut refused = None;
    for _ in 0..(LOOKUP_LIMIT * INSTANCES + 1) {
        let reply = api.get_as(&greedy, &path).await;
        match reply.status {
            200 => answered += 1,
            _ => {
                refused = Some(reply);
                break;
            }
        }
    }
    let refused = refused.unwrap_or_else(|| panic!("no limit after {answered} lookups"));
    refused.assert_problem(429, "lookup_rate_limited");
    assert_eq!(answered, LOOKUP_LIMIT, "refused after {answered}");
    let retry: u64 = refused
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After"));
    assert!((1..=600).contains(&retry), "{retry}");
    // Another account is not held back.
    let reply = api.get_as(&other, &path).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn charges_are_imported_from_files(api: Api) {
    let biller = new_biller("Расчётный центр ЖКХ");
    let (first, second) = (uin(20), uin(25));
    let header = "uin,amount,category,purpose,kbk,oktmo,bill_date,due_date,payee_name,payee_inn,payee_kpp,payee_bic,payee_account,discount_amount,discount_until,payers";
    let requisites = "ГБУ Жилищник,7707083893,770701001,044525000,03234643350000007300";
    // Valid, but outside the biller's registered prefix (188).
    let foreign = "03554310101220400005";
    let csv = format!(
        "{header}\n\
         {first},310050,utilities,ЖКУ за ноябрь,07511302992020000130,45383000,2026-11-01,2026-12-10,{requisites},,,snils:112-233-445 95\n\
         {second},500000,fines,Штраф,18811601123010001140,45383000,2026-11-01,2026-12-10,{requisites},250000,2999-12-31,sts:77 УО 123456;snils:11223344595\n\
         {},100,utilities,Ошибка,07511302992020000130,45383000,2026-11-01,2026-12-10,{requisites},,,snils:112-233-445 95\n\
         {foreign},100,utilities,Чужой УИН,07511302992020000130,45383000,2026-11-01,2026-12-10,{requisites},,,snils:112-233-445 95\n",
        broken(&uin(20))
    );
    let dir = std::env::temp_dir().join(format!("uslugi-import-{}", six_digits()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let csv_path = dir.join("charges.csv");
    std::fs::write(&csv_path, csv).unwrap_or_else(|e| panic!("{e}"));
    let path = csv_path.to_string_lossy().to_string();

    // Partial success: the two good rows are written, the bad one is named.
    let (ok, report) =
        admin_outcome(&["import-charges", "--biller-id", &biller.id, "--file", &path]);
    assert!(!ok, "a failed row makes the command fail: {report}");
    assert_eq!(report["succeeded"], 2, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    assert_eq!(report["results"][0]["outcome"], "created");
    assert_eq!(
        report["results"][2]["errors"][0]["field"], "/2/uin",
        "{report}"
    );
    assert_eq!(
        report["results"][2]["errors"][0]["code"], "uin_checksum",
        "{report}"
    );
    assert_eq!(
        report["results"][3]["code"], "uin_outside_biller_range",
        "{report}"
    );
    for (uin, amount) in [(&first, 310_050), (&second, 500_000)] {
        let stored = biller.get(&api, uin).await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        assert_eq!(stored.body["amount"], amount);
    }
    // Imported again, nothing changes.
    let (_, again) = admin_outcome(&["import-charges", "--biller-id", &biller.id, "--file", &path]);
    assert_eq!(again["results"][0]["outcome"], "unchanged", "{again}");
    assert_eq!(again["results"][1]["outcome"], "unchanged", "{again}");

    // A JSON file of bodies, all good.
    let third = uin(20);
    let mut body = charge(99_000, snils_payer());
    body["uin"] = json!(third);
    let json_path = dir.join("charges.json");
    std::fs::write(&json_path, json!({"charges": [body]}).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, report) = admin_outcome(&[
        "import-charges",
        "--biller-id",
        &biller.id,
        "--file",
        &json_path.to_string_lossy(),
    ]);
    assert!(ok, "{report}");
    assert_eq!(report["succeeded"], 1);
    // Only for a biller that exists.
    let unknown = std::process::Command::new(
        std::env::var("CARGO_TARGET_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| repo_root().join("target"))
            .join("debug/uslugi-admin"),
    )
    .args([
        "import-charges",
        "--biller-id",
        "no-such-biller",
        "--file",
        &path,
    ])
    .envs(
        ADMIN_ENV
            .get()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .output()
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("biller not found"));
    let _ = std::fs::remove_dir_all(&dir);
}
