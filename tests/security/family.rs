//! Family: children as a key to other people's bills, joining somebody else's child,
//! identifier changes that move another parent's autopay, the SNILS oracle, the cap on
//! children.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::scenario;
use crate::support::*;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(a_child_with_an_adults_snils_finds_nothing),
        scenario!(guessing_a_childs_birth_date_joins_nothing),
        scenario!(a_squatter_does_not_lock_the_parents_out),
        scenario!(a_co_parent_changing_the_childs_snils_moves_no_autopay),
        scenario!(someone_elses_snils_answers_like_a_fresh_one),
        scenario!(parallel_child_adds_stop_at_the_cap),
    ]
}

const CHILDREN: &str = "/v1/profile/children";

fn child(certificate: &str, birth_date: &str) -> Value {
    json!({"last_name": "Соколова", "first_name": "Вера", "birth_date": birth_date,
           "birth_certificate": certificate})
}

async fn bill_uins(api: &Api, token: &str) -> Vec<String> {
    let reply = api.get_as(token, "/v1/bills").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    uins_of(&reply)
}

/// Polls until `to` has a message mentioning `needle`, for at most a minute.
async fn wait_for_message(api: &Api, to: &str, needle: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(m) = api
            .outbox(to)
            .await
            .into_iter()
            .find(|m| m.to_string().contains(needle))
        {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no message to {to} mentions {needle}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Adds a child; the answer must not depend on whether the data are right.
async fn add(api: &Api, token: &str, body: Value) -> Reply {
    let reply = api.post_as(token, CHILDREN, body).await;
    assert!(reply.status < 500, "{}", reply.body);
    reply
}

fn id_of(reply: &Reply) -> String {
    reply.id()
}

/// The attacker adds a "child" carrying the victim's SNILS (and a certificate of their
/// own invention): the victim's bills must stay the victim's, and no notice of a new one
/// may reach the attacker.
async fn a_child_with_an_adults_snils_finds_nothing(api: Api) {
    let biller = new_biller("Детский сад №7");
    let victim_snils = snils_of("781");
    let (victim, _) = standard_citizen(&api, &victim_snils, &verifiable_passport_number()).await;
    let payer = on_snils(&victim_snils);
    let old_bill = biller
        .charge(&api, "kindergarten", 420_000, payer.clone())
        .await;

    let (attacker, token) =
        standard_citizen(&api, &snils_of("782"), &verifiable_passport_number()).await;
    let mut body = child(&format!("III-АБ {}", six_digits()), "2017-09-01");
    body["snils"] = json!(victim_snils);
    let added = add(&api, &token, body).await;
    assert!([201, 202].contains(&added.status), "{}", added.body);
    wait_for_child(&api, &token, &id_of(&added)).await;

    let seen = bill_uins(&api, &token).await;
    assert!(
        !seen.contains(&old_bill),
        "the attacker sees the victim's bill through a 'child': {seen:?}"
    );
    let new_bill = biller.charge(&api, "kindergarten", 130_000, payer).await;
    wait_for_message(&api, &victim.email, &new_bill).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let told = api.outbox(&attacker.email).await;
    assert!(
        !told.iter().any(|m| m.to_string().contains(&new_bill)),
        "the attacker was told of the victim's new bill: {told:?}"
    );
    assert!(!bill_uins(&api, &token).await.contains(&new_bill));
}

/// The attacker tries birth dates on a real child's certificate: every answer is the
/// answer to the right data, and the attacker, whom the birth record does not name,
/// never sees the child's bills; the father still joins afterwards.
async fn guessing_a_childs_birth_date_joins_nothing(api: Api) {
    let biller = new_biller("Школа искусств");
    let number = certificate_number();
    let certificate = format!("IV-МЮ {number}");
    let born = "2016-05-20";
    let (_, mother) = parent_on_record(&api, &number, OnBirthRecord::Mother).await;
    let added = add(&api, &mother, child(&certificate, born)).await;
    assert!([201, 202].contains(&added.status), "{}", added.body);
    let id = id_of(&added);
    let decided = wait_for_child(&api, &mother, &id).await;
    assert_eq!(decided["status"], "verified", "{decided}");
    let bill = biller
        .charge(&api, "clubs", 90_000, on_certificate(&certificate))
        .await;
    assert!(bill_uins(&api, &mother).await.contains(&bill));

    let (_, attacker) =
        standard_citizen(&api, &snils_of("783"), &verifiable_passport_number()).await;
    let mut answers = Vec::new();
    for date in ["2016-05-18", "2016-05-19", born, "2016-05-21"] {
        let reply = add(&api, &attacker, child(&certificate, date)).await;
        answers.push((date, reply.status, reply.body.clone()));
        if reply.status < 300 {
            // Let go, as an attacker would, to try the next date.
            let gone = api
                .delete_as(&attacker, &format!("{CHILDREN}/{}", id_of(&reply)))
                .await;
            assert_eq!(gone.status, 204, "{}", gone.body);
        }
    }
    let shape = |(date, status, body): &(&str, u16, Value)| {
        let mut body = body.clone();
        if body["birth_date"] == *date {
            body["birth_date"] = Value::Null;
        }
        (*status, body)
    };
    let first = shape(&answers[0]);
    for answer in &answers {
        assert_eq!(
            shape(answer),
            first,
            "the answers tell a wrong birth date from the right one: {answers:?}"
        );
    }

    // The attacker tries the right data and waits for the registry.
    let tried = add(&api, &attacker, child(&certificate, born)).await;
    assert!(tried.status < 300, "{}", tried.body);
    let outcome = wait_for_child(&api, &attacker, &id).await;
    assert_ne!(outcome["status"], "verified", "{outcome}");
    assert!(
        !bill_uins(&api, &attacker).await.contains(&bill),
        "the attacker sees the child's bill"
    );

    let (_, father) = parent_on_record(&api, &number, OnBirthRecord::Father).await;
    let joined = add(&api, &father, child(&certificate, born)).await;
    assert!([201, 202].contains(&joined.status), "{}", joined.body);
    let joined = wait_for_child(&api, &father, &id).await;
    assert_eq!(joined["status"], "verified", "{joined}");
    assert!(bill_uins(&api, &father).await.contains(&bill));
}

/// The attacker takes a child's certificate first, with made-up data: the parents still
/// add their child, and the attacker's data do not become the child's.
async fn a_squatter_does_not_lock_the_parents_out(api: Api) {
    let biller = new_biller("Поликлиника №3");
    let number = certificate_number();
    let certificate = format!("I-ПР {number}");
    let (_, attacker) = standard_payer(&api).await;
    let mut squatted = child(&certificate, "2010-01-01");
    squatted["first_name"] = json!("Захват");
    let taken = add(&api, &attacker, squatted).await;
    assert!([201, 202].contains(&taken.status), "{}", taken.body);

    let (_, mother) = parent_on_record(&api, &number, OnBirthRecord::Mother).await;
    let added = add(&api, &mother, child(&certificate, "2019-11-11")).await;
    assert!(
        [201, 202].contains(&added.status),
        "the mother is locked out of her child: {}",
        added.body
    );
    let decided = wait_for_child(&api, &mother, &id_of(&added)).await;
    assert_eq!(decided["status"], "verified", "{decided}");
    assert_eq!(decided["first_name"], "Вера", "{decided}");
    assert_eq!(decided["birth_date"], "2019-11-11", "{decided}");
    let bill = biller
        .charge(&api, "clubs", 50_000, on_certificate(&certificate))
        .await;
    assert!(bill_uins(&api, &mother).await.contains(&bill));
    assert!(!bill_uins(&api, &attacker).await.contains(&bill));
}

/// Both parents hold the child; the mother's card pays the child's kindergarten bills
/// by itself. The father puts a stranger's SNILS on the child: the mother's card must not
/// pay the stranger's bill, and both parents hear of the change.
async fn a_co_parent_changing_the_childs_snils_moves_no_autopay(api: Api) {
    let biller = new_biller("Детский сад №12");
    let number = certificate_number();
    let certificate = format!("II-МЮ {number}");
    let (mother_c, mother) = parent_on_record(&api, &number, OnBirthRecord::Mother).await;
    let (father_c, father) = parent_on_record(&api, &number, OnBirthRecord::Father).await;
    let mut body = child(&certificate, "2020-03-03");
    body["snils"] = json!(birth_record_snils(&number, OnBirthRecord::Child));
    let mut id = String::new();
    for parent in [&mother, &father] {
        let added = add(&api, parent, body.clone()).await;
        assert!([201, 202].contains(&added.status), "{}", added.body);
        id = id_of(&added);
        let decided = wait_for_child(&api, parent, &id).await;
        assert_eq!(decided["status"], "verified", "{decided}");
    }
    let method_id = saved_card(&api, &mother, SUCCEEDS).await;
    let autopay = api
        .post_as(
            &mother,
            "/v1/autopays",
            json!({"name": "Садик", "match": {"category": "kindergarten"},
                    "method_id": method_id, "limit": 10_000_000,
                    "trigger": {"type": "new_bill"}}),
        )
        .await;
    assert_eq!(autopay.status, 201, "{}", autopay.body);

    let stranger_snils = snils_of("784");
    let (stranger, _) =
        standard_citizen(&api, &stranger_snils, &verifiable_passport_number()).await;
    let one = format!("{CHILDREN}/{id}");
    let current = api.get_as(&father, &one).await;
    let version = current.header("etag").unwrap_or("\"1\"").to_string();
    let changed = api
        .json_request(
            Method::PATCH,
            &one,
            &father,
            &json!({"snils": stranger_snils}),
        )
        .header("if-match", version)
        .send()
        .await;
    assert!(changed.status < 500, "{}", changed.body);

    let bill = biller
        .charge(&api, "kindergarten", 777_000, on_snils(&stranger_snils))
        .await;
    wait_for_message(&api, &stranger.email, &bill).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let paid = api.get_as(&mother, "/v1/payments").await;
    assert!(
        !paid.body.to_string().contains(&bill),
        "the mother's card paid the stranger's bill: {}",
        paid.body
    );
    assert!(!bill_uins(&api, &mother).await.contains(&bill));
    if changed.status < 300 {
        for parent in [&mother_c, &father_c] {
            wait_for_message(&api, &parent.email, "не совпал с записью акта").await;
        }
    }
}

/// Saving a SNILS another account holds answers as saving a fresh one does, and a SNILS
/// nobody verified is no login.
async fn someone_elses_snils_answers_like_a_fresh_one(api: Api) {
    let owned = snils_of("785");
    let (_, _owner) = standard_citizen(&api, &owned, &verifiable_passport_number()).await;
    let (_, token) = citizen(&api).await;
    let taken = patch_new(&api, &token, json!({"documents": {"snils": owned}})).await;
    let (_, other) = citizen(&api).await;
    let fresh = patch_new(
        &api,
        &other,
        json!({"documents": {"snils": snils_of("786")}}),
    )
    .await;
    assert_eq!(
        (
            taken.status,
            taken.body["verification"]["snils"]["status"].clone()
        ),
        (
            fresh.status,
            fresh.body["verification"]["snils"]["status"].clone()
        ),
        "taken: {} fresh: {}",
        taken.body,
        fresh.body
    );

    // A SNILS the registry never answers for stays unverified: no login by it.
    let unverified = snils_of("996");
    let (_, squatter) = citizen(&api).await;
    let saved = patch_new(&api, &squatter, json!({"documents": {"snils": unverified}})).await;
    assert_eq!(saved.status, 200, "{}", saved.body);
    let by_snils = login(&api, &unique_ip(), &unverified, PASSWORD, false).await;
    assert!(
        by_snils.status >= 400,
        "an unverified SNILS logs in: {}",
        by_snils.body
    );
}

/// Forty children added at once: the cap of ten holds.
async fn parallel_child_adds_stop_at_the_cap(api: Api) {
    let (_, token) = standard_payer(&api).await;
    // Every instance of the function awake first, as during a busy hour.
    let reads = (0..40).map(|_| api.get_as(&token, CHILDREN));
    futures::future::join_all(reads).await;
    let adds = (0..40).map(|_| {
        let api = api.clone();
        let token = token.clone();
        let body = child(&format!("V-ЖА {}", six_digits()), "2015-01-01");
        async move { add(&api, &token, body).await.status }
    });
    let statuses = futures::future::join_all(adds).await;
    let list = api.get_as(&token, CHILDREN).await;
    let held = list.body["children"].as_array().map(Vec::len);
    assert_eq!(held, Some(10), "statuses {statuses:?}, list {}", list.body);
    assert_eq!(
        statuses.iter().filter(|s| **s < 300).count(),
        10,
        "{statuses:?}"
    );
}
