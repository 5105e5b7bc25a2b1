//! The access matrix (docs/architecture/levels-and-confirmation.md#the-access-matrix):
//! what an account may do at each level and with each credential strength, tried from
//! below: a simplified account paying, a standard one registering an organisation or
//! acting for one, a password-only session changing verified data. Each refusal is a
//! 403 problem that leaves nothing behind, and a level reached or lost counts from the
//! next request of the same session.

use crate::scenario;
use crate::support::*;
use serde_json::{json, Value};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(each_level_opens_what_the_matrix_says_and_no_more),
        scenario!(a_level_lost_closes_payments_but_not_the_records),
        scenario!(verified_data_needs_a_second_factor),
        scenario!(a_phone_of_the_thiefs_own_is_no_second_factor_yet),
    ]
}

/// A company's registration body, as a standard or confirmed citizen would send it.
fn company() -> Value {
    json!({"kind": "legal_entity", "inn": "7707083893", "kpp": "773601001",
           "ogrn": "1027700132195", "email": "office@example.ru"})
}

/// The payments (as their items' count) the account `account_id` has in DynamoDB.
async fn payment_items(api: &Api, account_id: &str) -> usize {
    api.items_with_prefix(&format!("ACCOUNT#{account_id}"))
        .await
        .iter()
        .filter(|item| {
            item.get("sk")
                .and_then(|sk| sk.as_s().ok())
                .is_some_and(|sk| sk.starts_with("PAYMENT#"))
        })
        .count()
}

async fn each_level_opens_what_the_matrix_says_and_no_more(api: Api) {
    let biller = new_biller("Матрица доступа");
    let uin = biller
        .charge(&api, "taxes", 150_000, on_snils(&snils_of("741")))
        .await;
    let (c, token) = citizen(&api).await;

    // Simplified: reference information and the account's own records, nothing else.
    for path in [
        "/v1/bills",
        &format!("/v1/bills/{uin}"),
        "/v1/payments",
        "/v1/autopays",
        "/v1/payees",
        "/v1/inbox",
    ] {
        let reply = api.get_as(&token, path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let paid = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
    paid.assert_problem(403, "standard_level_required");
    assert_eq!(payment_items(&api, &c.account_id).await, 0, "no payment");
    let child = json!({"last_name": "Иванова", "first_name": "Мария",
                       "birth_date": "2019-04-02", "gender": "female",
                       "birth_certificate": {"series": "IV-МЮ", "number": "123456",
                                             "issue_date": "2019-04-10"}});
    api.post_as(&token, "/v1/profile/children", child)
        .await
        .assert_problem(403, "standard_level_required");
    api.post_as(&token, "/v1/organisations", company())
        .await
        .assert_problem(403, "confirmed_level_required");
    let children = api.get_as(&token, "/v1/profile/children").await;
    assert_eq!(children.status, 200, "{}", children.body);
    assert_eq!(children.body["children"], json!([]), "no child written");

    // Standard, in the same session: the registries' answer counts from the next request.
    let number = verifiable_passport_number();
    let body = verifiable(&snils_of("742"), &number);
    patch_new_ok(&api, &token, body.clone()).await;
    wait_for(&api, &token, "standard level", |p| p["level"] == "standard").await;
    let paid = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.body["status"], "succeeded");
    assert_eq!(payment_items(&api, &c.account_id).await, 1);
    api.post_as(&token, "/v1/organisations", company())
        .await
        .assert_problem(403, "confirmed_level_required");
    // Acting for an organisation needs the confirmed level too, and is refused before
    // the organisation is looked up: the answer is the same for any id.
    for id in [
        "00000000-0000-4000-8000-000000000000".to_string(),
        "not-an-id".to_string(),
    ] {
        api.json_request(reqwest::Method::GET, "/v1/payments", &token, &json!(null))
            .header("x-organisation-id", &id)
            .send()
            .await
            .assert_problem(403, "confirmed_level_required");
    }

    // Confirmed at a desk: organisations open, but registering one needs a second factor.
    let operator = new_operator();
    let confirmed = api
        .post_as(
            &text(&operator["key"]),
            "/v1/operator/confirmations",
            json!({"snils": body["documents"]["snils"], "passport_series": "45 10",
                   "passport_number": number}),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let mine = api.get_as(&token, "/v1/organisations").await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    api.post_as(&token, "/v1/organisations", company())
        .await
        .assert_problem(403, "second_factor_required");
    step_up(&api, &token, &c.phone).await;
    // Past the matrix, the service's own rule speaks: no verified personal INN.
    api.post_as(&token, "/v1/organisations", company())
        .await
        .assert_problem(409, "personal_inn_required");
    let mine = api.get_as(&token, "/v1/organisations").await;
    assert_eq!(mine.body["organisations"], json!([]), "nothing registered");
}

async fn a_level_lost_closes_payments_but_not_the_records(api: Api) {
    let biller = new_biller("Потеря уровня");
    let [first, second] = biller
        .charges(
            &api,
            [
                ("taxes", 90_000, on_snils(&snils_of("743"))),
                ("taxes", 70_000, on_snils(&snils_of("743"))),
            ],
        )
        .await;
    let (c, token) = standard_payer(&api).await;
    let paid = pay_bills(&api, &token, &[&first], card(SUCCEEDS)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let payment = paid.id();

    // A new passport drops the account to simplified until the registry answers; the
    // sandbox never answers a number starting 996, so it stays there.
    step_up(&api, &token, &c.phone).await;
    let profile = profile(&api, &token).await;
    let mut passport = profile.body["documents"]["passport"].clone();
    passport["number"] = json!(format!("996{}", &six_digits()[3..]));
    let version = profile.header("etag").map(str::to_string);
    let changed = patch(
        &api,
        &token,
        version.as_deref(),
        json!({"documents": {"passport": passport}}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["level"], "simplified");

    let refused = pay_bills(&api, &token, &[&second], card(SUCCEEDS)).await;
    refused.assert_problem(403, "standard_level_required");
    assert_eq!(
        payment_items(&api, &c.account_id).await,
        1,
        "no second payment"
    );
    // What was paid stays readable, and its receipt with it.
    let archive = api.get_as(&token, "/v1/payments").await;
    assert_eq!(archive.status, 200, "{}", archive.body);
    let one = api.get_as(&token, &format!("/v1/payments/{payment}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["status"], "succeeded");
    let receipt = api
        .get_as(&token, &format!("/v1/payments/{payment}/receipt"))
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
}

async fn verified_data_needs_a_second_factor(api: Api) {
    let (c, token) = standard_payer(&api).await;
    let before = profile(&api, &token).await;
    let version = before.header("etag").map(str::to_string);
    let stolen = json!({"documents": {"snils": snils_of("744")}});

    // The password alone (a thief's session) changes nothing verified.
    let refused = patch(&api, &token, version.as_deref(), stolen.clone()).await;
    refused.assert_problem(403, "second_factor_required");
    let after = profile(&api, &token).await;
    assert_eq!(after.body["documents"], before.body["documents"]);
    assert_eq!(after.body["level"], "standard");
    assert_eq!(
        after.header("etag"),
        before.header("etag"),
        "nothing written"
    );
    // What nobody verified is the citizen's to change with the password.
    let address = json!({"addresses": {"actual": "Москва, ул. Тверская, 7"}});
    let moved = patch(&api, &token, version.as_deref(), address).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["level"], "standard");

    // With a step-up code the same change goes through and the level waits for it.
    step_up(&api, &token, &c.phone).await;
    let version = moved.header("etag").map(str::to_string);
    let changed = patch(&api, &token, version.as_deref(), stolen).await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["level"], "simplified");
}

/// A thief with the password alone gives the account a phone of their own (a fresh login
/// is presence enough for that) and steps up with a code sent to it: the session proved a
/// factor, but one added moments ago, so the matrix still counts the password only.
async fn a_phone_of_the_thiefs_own_is_no_second_factor_yet(api: Api) {
    let (_, token) = standard_payer(&api).await;
    let thiefs_phone = unique_phone();
    let proof = verified_for(&api, "sms", &thiefs_phone, &thiefs_phone, "contact_change").await;
    let changed = change_contact(&api, &token, "phone", &thiefs_phone, &proof).await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    step_up(&api, &token, &thiefs_phone).await;

    let before = profile(&api, &token).await;
    let version = before.header("etag").map(str::to_string);
    let refused = patch(
        &api,
        &token,
        version.as_deref(),
        json!({"documents": {"snils": snils_of("745")}}),
    )
    .await;
    refused.assert_problem(403, "second_factor_required");
    let after = profile(&api, &token).await;
    assert_eq!(after.body["documents"], before.body["documents"]);
    assert_eq!(after.body["level"], "standard");
}
