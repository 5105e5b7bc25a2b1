//! Accounts: sign-up through the code flow, sessions.

use super::*;

// ------------------------------------------------------------------ accounts

/// The password of every account the tests create.
pub const PASSWORD: &str = "Zx8#kettle-Orbit";

/// A verification token for `destination`, through the code flow and the outbox.
pub async fn verified(api: &Api, channel: &str, destination: &str, canonical: &str) -> String {
    verified_for(api, channel, destination, canonical, "registration").await
}

pub async fn verified_for(
    api: &Api,
    channel: &str,
    destination: &str,
    canonical: &str,
    purpose: &str,
) -> String {
    let id = api.code_sent(channel, destination, purpose).await;
    proven(api, &id, canonical).await
}

/// Verifies the code `id` with what the newest message to `to` says; the verification
/// token it gives.
pub async fn proven(api: &Api, id: &str, to: &str) -> String {
    let code = api.code_sent_to(to).await;
    let verified = api.verify(id, &code).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    text(&verified.body["verification_token"])
}

pub fn registration(email: &str, phone: &str, email_token: &str, phone_token: &str) -> Value {
    json!({
        "last_name": "Иванов",
        "first_name": "Пётр",
        "middle_name": "Сергеевич",
        "email": email,
        "phone": phone,
        "password": PASSWORD,
        "security_question": "Девичья фамилия матери",
        "security_answer": "Ёлкина",
        "email_verification_token": email_token,
        "phone_verification_token": phone_token,
    })
}

/// `POST /v1/accounts` of [`registration`] from an address of its own.
pub async fn register(
    api: &Api,
    email: &str,
    phone: &str,
    email_token: &str,
    phone_token: &str,
) -> Reply {
    let body = registration(email, phone, email_token, phone_token);
    api.post("/v1/accounts", &unique_ip(), body).await
}

pub struct Citizen {
    pub email: String,
    pub phone: String,
    pub account_id: String,
}

pub async fn sign_up(api: &Api) -> Citizen {
    let email = unique_email();
    let phone = unique_phone();
    let email_token = verified(api, "email", &email, &email).await;
    let phone_token = verified(api, "sms", &phone, &phone).await;
    let reply = register(api, &email, &phone, &email_token, &phone_token).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    Citizen {
        email,
        phone,
        account_id: text(&reply.body["account_id"]),
    }
}

pub async fn login(api: &Api, ip: &str, login: &str, password: &str, foreign: bool) -> Reply {
    api.post(
        "/v1/sessions",
        ip,
        json!({"login": login, "password": password, "foreign_computer": foreign}),
    )
    .await
}

/// Asserts that `login` with `password` signs in (a new session).
pub async fn assert_logs_in(api: &Api, login_as: &str, password: &str) {
    let reply = login(api, &unique_ip(), login_as, password, false).await;
    assert_eq!(reply.status, 201, "{login_as}: {}", reply.body);
}

pub async fn token_for(api: &Api, citizen: &Citizen) -> String {
    let reply = login(api, &unique_ip(), &citizen.email, PASSWORD, false).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    text(&reply.body["token"])
}

/// Turns two-step login on or off, with the account's password.
pub async fn set_two_step(api: &Api, token: &str, on: bool) -> Reply {
    let body = json!({"password": PASSWORD, "two_step_login": on});
    api.put_as(token, "/v1/account/security-settings", body)
        .await
}

/// Starts a recovery of the account whose login (and contact) is `email` and proves the
/// code sent there; the verification token that completes it.
pub async fn recovery_proof(api: &Api, email: &str) -> String {
    let started = api
        .post("/v1/recovery", &unique_ip(), json!({ "login": email }))
        .await;
    assert_eq!(started.status, 202, "{}", started.body);
    let id = started.body["id"].as_str().unwrap_or_default();
    proven(api, id, email).await
}

/// `PUT /v1/account/{contact}` (`email` or `phone`) to `value`, with the account's
/// password and the verification token `proof` of the new contact.
pub async fn change_contact(
    api: &Api,
    token: &str,
    contact: &str,
    value: &str,
    proof: &str,
) -> Reply {
    let body = json!({"password": PASSWORD, contact: value, "verification_token": proof});
    api.put_as(token, &format!("/v1/account/{contact}"), body)
        .await
}

/// Proves presence in the session with a code sent to the account's current phone: a
/// step-up, which also counts as a second factor for the access matrix.
pub async fn step_up(api: &Api, token: &str, phone: &str) {
    let path = "/v1/sessions/current/step-up";
    let sent = api
        .call(reqwest::Method::POST, path, &unique_ip(), Some(token), None)
        .await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let id = sent.id();
    let code = api.code_sent_to(phone).await;
    let body = json!({"id": id, "code": code});
    let done = api.post_as(token, &format!("{path}/verify"), body).await;
    assert_eq!(done.status, 200, "{}", done.body);
}
