//! Profiles: documents the sandbox registry verifies, children, levels.

use super::*;

// ------------------------------------------------------------------ profiles

/// A SNILS with a valid checksum whose number starts with `prefix` (sandbox rules read
/// the first digits) and is unique for this run.
pub fn snils_of(prefix: &str) -> String {
    let unique = unique_phone();
    let tail = &unique[unique.len() - (9 - prefix.len())..];
    snils_with_number(&format!("{prefix}{tail}"))
}

/// A SNILS of the nine-digit `number` with its check digits, as the sandbox writes it.
pub use shared::adapters::registry::snils_of as snils_with_number;

/// Who the sandbox civil registry's birth record of a certificate names
/// (docs/testing.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnBirthRecord {
    Mother,
    Father,
    Child,
}

/// A birth certificate number (six digits) whose first five, which stand for the parents
/// in the sandbox civil registry, are unique for this run.
pub fn certificate_number() -> String {
    let unique = unique_phone();
    format!("{}0", &unique[unique.len() - 5..])
}

/// The SNILS the sandbox birth record of certificate `number` gives `whom`.
pub fn birth_record_snils(number: &str, whom: OnBirthRecord) -> String {
    let parents = &number[..5];
    match whom {
        OnBirthRecord::Mother => snils_with_number(&format!("77{parents}01")),
        OnBirthRecord::Father => snils_with_number(&format!("77{parents}02")),
        OnBirthRecord::Child => snils_with_number(&format!("77{number}3")),
    }
}

/// A standard-level citizen whom the sandbox birth record of certificate `number` names.
pub async fn parent_on_record(api: &Api, number: &str, whom: OnBirthRecord) -> (Citizen, String) {
    standard_citizen(
        api,
        &birth_record_snils(number, whom),
        &verifiable_passport_number(),
    )
    .await
}

/// Two standard-level parents whom the sandbox birth record of a new certificate names.
pub struct Family {
    /// The certificate's six-digit number.
    pub number: String,
    pub mother_snils: String,
    pub mother: Citizen,
    pub mother_token: String,
    pub father: Citizen,
    pub father_token: String,
}

/// A [`Family`]: the mother shows the passport `mother_passport`.
pub async fn family_on_record(api: &Api, mother_passport: &str) -> Family {
    let number = certificate_number();
    let mother_snils = birth_record_snils(&number, OnBirthRecord::Mother);
    let (mother, mother_token) = standard_citizen(api, &mother_snils, mother_passport).await;
    let (father, father_token) = parent_on_record(api, &number, OnBirthRecord::Father).await;
    Family {
        number,
        mother_snils,
        mother,
        mother_token,
        father,
        father_token,
    }
}

/// Polls the account's child `id` until the registry decided the link (its `status` is
/// no longer `pending`), for at most a minute; the child as the API shows it.
pub async fn wait_for_child(api: &Api, token: &str, id: &str) -> Value {
    let path = &format!("/v1/profile/children/{id}");
    let decided =
        |child: &Value| child["status"] != "pending" && child["snils_status"] != "pending";
    poll(
        &format!("child {id} decided"),
        || api.get_as(token, path),
        decided,
    )
    .await
}

/// Reads with `read` (which must answer 200) every 300 ms until `done` holds of the body,
/// for at most a minute, and answers that body; `what` says what is awaited.
pub async fn poll<F, R>(what: &str, read: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: Fn() -> R,
    R: Future<Output = Reply>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = read().await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        if done(&reply.body) {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "{what} never happened: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

pub fn passport(number: &str) -> Value {
    json!({
        "series": "45 10",
        "number": number,
        "issue_date": "2010-06-01",
        "department_code": "770-001",
        "issued_by": "ОВД района Арбат г. Москвы",
    })
}

pub async fn profile(api: &Api, token: &str) -> Reply {
    api.call(Method::GET, "/v1/profile", &unique_ip(), Some(token), None)
        .await
}

pub async fn patch(api: &Api, token: &str, version: Option<&str>, body: Value) -> Reply {
    api.json_request(Method::PATCH, "/v1/profile", token, &body)
        .header_if("if-match", version)
        .send()
        .await
}

/// The first PATCH of a profile: at version 0, which sign-up gives it.
pub async fn patch_new(api: &Api, token: &str, body: Value) -> Reply {
    patch(api, token, Some("\"0\""), body).await
}

/// The first PATCH of a profile, which must be taken; the profile it answers.
pub async fn patch_new_ok(api: &Api, token: &str, body: Value) -> Value {
    let reply = patch_new(api, token, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// A new citizen with a session whose SNILS `snils` is saved (and so being checked).
pub async fn citizen_with_snils(api: &Api, snils: &str) -> (Citizen, String) {
    let (c, token) = citizen(api).await;
    patch_new_ok(api, &token, json!({"documents": {"snils": snils}})).await;
    (c, token)
}

/// Adds the child `child` to each of `parents`' profiles and waits until the registry
/// verified each link.
pub async fn add_child_to(api: &Api, parents: &[&str], child: &Value) {
    for parent in parents {
        let reply = api
            .post_as(parent, "/v1/profile/children", child.clone())
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
        let id = reply.body["id"].as_str().unwrap_or_default();
        assert_eq!(wait_for_child(api, parent, id).await["status"], "verified");
    }
}

/// Adds a car of plate `plate` with a new STS to the profile; its STS.
pub async fn add_car(api: &Api, token: &str, plate: &str) -> String {
    let sts = format!("77 УО {}", six_digits());
    let car = api
        .post_as(
            token,
            "/v1/profile/vehicles",
            json!({"sts": sts, "plate": plate}),
        )
        .await;
    assert_eq!(car.status, 201, "{}", car.body);
    sts
}

/// A new citizen with a session.
pub async fn citizen(api: &Api) -> (Citizen, String) {
    let c = sign_up(api).await;
    let token = token_for(api, &c).await;
    (c, token)
}

/// Polls the profile until `done` holds, for at most a minute.
pub async fn wait_for(api: &Api, token: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    poll(what, || profile(api, token), done).await
}

pub fn status(profile: &Value, field: &str) -> String {
    text(&profile["verification"][field]["status"])
}

/// Personal data and documents that the sandbox verifies.
pub fn verifiable(snils: &str, passport_number: &str) -> Value {
    json!({
        "personal": {"birth_date": "1985-03-12", "gender": "male"},
        "documents": {"snils": snils, "passport": passport(passport_number)},
    })
}

/// Six digits unique for this run.
pub fn six_digits() -> String {
    let unique = unique_phone();
    unique[unique.len() - 6..].to_string()
}

pub async fn call(
    api: &Api,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Reply {
    api.call(method, path, &unique_ip(), Some(token), body)
        .await
}

/// A citizen whose account reached the standard level.
pub async fn standard_citizen(api: &Api, snils: &str, passport_number: &str) -> (Citizen, String) {
    let (c, token) = citizen(api).await;
    let reply = patch_new(api, &token, verifiable(snils, passport_number)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(api, &token, "standard level", |p| p["level"] == "standard").await;
    (c, token)
}

/// A passport number the sandbox verifies (no rejecting prefix), unique for this run.
pub fn verifiable_passport_number() -> String {
    format!("70{}", &six_digits()[2..])
}

/// A citizen at the standard level, as the access matrix wants of anyone who pays:
/// a SNILS and passport of their own that the sandbox verifies.
pub async fn standard_payer(api: &Api) -> (Citizen, String) {
    standard_citizen(api, &snils_of("70"), &verifiable_passport_number()).await
}

/// A citizen at the confirmed level (standard, then confirmed at a desk by a new
/// operator), as the access matrix wants of anyone in an organisation; and the profile
/// body it verified.
pub async fn confirmed_citizen_with(api: &Api, mut body: Value) -> (Citizen, String) {
    let (c, token) = citizen(api).await;
    let verified = verifiable(&snils_of("73"), &verifiable_passport_number());
    for (section, fields) in verified.as_object().into_iter().flatten() {
        for (field, value) in fields.as_object().into_iter().flatten() {
            if body[section][field].is_null() {
                body[section][field] = value.clone();
            }
        }
    }
    let reply = patch_new(api, &token, body.clone()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_for(api, &token, "standard level", |p| {
        p["level"] == "standard"
            && body["documents"]
                .as_object()
                .into_iter()
                .flatten()
                .all(|(field, _)| p["verification"][field]["status"] == "verified")
    })
    .await;
    let operator = new_operator();
    let confirmed = api
        .post_as(
            &text(&operator["key"]),
            "/v1/operator/confirmations",
            json!({
                "snils": body["documents"]["snils"],
                "passport_series": "45 10",
                "passport_number": body["documents"]["passport"]["number"],
            }),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    (c, token)
}

/// A confirmed citizen with nothing else in the profile.
pub async fn confirmed_citizen(api: &Api) -> (Citizen, String) {
    confirmed_citizen_with(api, json!({})).await
}
