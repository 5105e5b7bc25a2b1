//! Passkeys and security keys (WebAuthn), with a software authenticator (1Password's
//! passkey-rs) answering the server's options as a browser would: registered as a second
//! factor, the second step of a login, a passwordless login, and what a thief or a replay
//! gets.

use passkey_authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey_client::Client;
use passkey_crypto::rust_crypto::RustCryptoBackend;
use passkey_types::ctap2::{Aaguid, Ctap2Error};
use passkey_types::webauthn::{
    AuthenticatedPublicKeyCredential, CreatedPublicKeyCredential, CredentialCreationOptions,
    CredentialRequestOptions,
};
use passkey_types::Passkey as SoftPasskey;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

/// The web origin the local stack's relying party accepts (`WebauthnOrigins`).
const ORIGIN: &str = "http://localhost:3000";

/// The citizen at the authenticator: always present, and verified (a PIN that says yes).
struct AlwaysYes;

#[async_trait::async_trait]
impl UserValidationMethod for AlwaysYes {
    type PasskeyItem = SoftPasskey;
    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, SoftPasskey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }
    fn is_presence_enabled(&self) -> bool {
        true
    }
    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

/// A software authenticator holding at most one passkey, behind a WebAuthn client.
type Device =
    Client<Option<SoftPasskey>, AlwaysYes, RustCryptoBackend, public_suffix::PublicSuffixList, ()>;

/// A new authenticator; `counter`: it keeps a signature counter (a security key does,
/// synced passkeys do not).
fn device(store: Option<SoftPasskey>, counter: bool) -> Device {
    let mut authenticator =
        Authenticator::new(Aaguid::new_empty(), store, AlwaysYes, RustCryptoBackend);
    authenticator.set_make_credentials_with_signature_counter(counter);
    // http://localhost is the local stack's origin; a real one is https.
    Client::new(authenticator).allows_insecure_localhost(true)
}

/// A copy of the device's key, as a thief who cloned it would hold.
fn clone_of(original: &Device) -> Device {
    device(original.authenticator().store().clone(), true)
}

fn origin() -> url::Url {
    url::Url::parse(ORIGIN).expect("the origin is a URL")
}

/// The server's options (JSON) as the client reads them.
fn options<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"))
}

/// The authenticator's attestation for creation options.
async fn attest(device: &mut Device, creation: &Value) -> Value {
    let opts: CredentialCreationOptions = options(creation);
    let created: CreatedPublicKeyCredential = device
        .register(&origin(), opts, None)
        .await
        .expect("the authenticator creates a credential");
    serde_json::to_value(&created).expect("JSON")
}

/// The authenticator's assertion for request options.
async fn assert_with(device: &mut Device, request: &Value) -> Value {
    let opts: CredentialRequestOptions = options(request);
    let asserted: AuthenticatedPublicKeyCredential = device
        .authenticate(&origin(), opts, None)
        .await
        .expect("the authenticator answers");
    serde_json::to_value(&asserted).expect("JSON")
}

/// `POST /v1/account/factors/passkey/options` in the session `token`: its 200.
async fn creation_options(api: &Api, token: &str) -> Reply {
    call(
        api,
        Method::POST,
        "/v1/account/factors/passkey/options",
        token,
        None,
    )
    .await
}

/// Registers a passkey of `device` in the session `token`; the factor's id and the
/// credential id.
async fn with_passkey(api: &Api, token: &str, device: &mut Device) -> (String, String) {
    let started = creation_options(api, token).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let credential = attest(device, &started.body["options"]).await;
    let body = json!({"ceremony_token": started.body["ceremony_token"],
                      "credential": credential, "name": "Ключ"});
    let added = api
        .post_as(token, "/v1/account/factors/passkey", body)
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.body["kind"], "passkey");
    (added.id(), text(&credential["id"]))
}

/// `POST /v1/sessions` with the passkey as second factor: the 202.
async fn passkey_challenge(api: &Api, c: &Citizen) -> Reply {
    let body = json!({"login": c.email, "password": PASSWORD, "second_factor": "passkey"});
    let reply = api.post("/v1/sessions", &unique_ip(), body).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["second_factor"], "passkey", "{}", reply.body);
    reply
}

async fn answer_challenge(api: &Api, challenge: &Value, credential: &Value) -> Reply {
    api.post(
        "/v1/sessions/two-step",
        &unique_ip(),
        json!({"challenge_token": challenge, "credential": credential}),
    )
    .await
}

async fn passwordless_options(api: &Api) -> Reply {
    let started = api
        .post("/v1/sessions/passkey/options", &unique_ip(), json!({}))
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    started
}

async fn passwordless(api: &Api, ceremony: &Value, credential: &Value) -> Reply {
    api.post(
        "/v1/sessions/passkey",
        &unique_ip(),
        json!({"ceremony_token": ceremony, "credential": credential}),
    )
    .await
}

async fn factor_kinds(api: &Api, token: &str) -> Vec<String> {
    let listed = api.get_as(token, "/v1/account/factors").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    listed.body["factors"]
        .as_array()
        .map(|f| f.iter().map(|f| text(&f["kind"])).collect())
        .unwrap_or_default()
}

async fn events_of(api: &Api, token: &str) -> Vec<String> {
    let events = api.get_as(token, "/v1/security-events").await;
    events.body["events"]
        .as_array()
        .map(|e| e.iter().map(|e| text(&e["type"])).collect())
        .unwrap_or_default()
}

pub async fn a_passkey_is_the_second_step_of_a_login(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let mut key = device(None, true);
    let started = creation_options(&api, &token).await;
    assert_eq!(started.status, 200, "{}", started.body);
    let public_key = &started.body["options"]["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    // The user handle is no account id, and no contact is in the options.
    let handle = text(&public_key["user"]["id"]);
    assert!(!handle.contains(&c.account_id), "{public_key}");
    assert!(!public_key.to_string().contains(&c.email), "{public_key}");
    let credential = attest(&mut key, &started.body["options"]).await;
    let body = json!({"ceremony_token": started.body["ceremony_token"],
                      "credential": credential});
    let mail_before = api.outbox(&c.email).await.len();
    let added = api
        .post_as(&token, "/v1/account/factors/passkey", body.clone())
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert!(
        api.outbox(&c.email).await.len() > mail_before,
        "the owner is told"
    );
    // The same finish again: the ceremony is spent.
    api.post_as(&token, "/v1/account/factors/passkey", body)
        .await
        .assert_problem(410, "passkey_ceremony_invalid");
    assert_eq!(factor_kinds(&api, &token).await, ["sms", "passkey"]);
    // Registering the same authenticator again: it is excluded by the options.
    let again = creation_options(&api, &token).await;
    let excluded = &again.body["options"]["publicKey"]["excludeCredentials"];
    assert_eq!(excluded[0]["id"], credential["id"], "{}", again.body);

    assert_eq!(set_two_step(&api, &token, true).await.status, 200);
    let first = passkey_challenge(&api, &c).await;
    assert_eq!(first.body["available_factors"], json!(["sms", "passkey"]));
    let request = &first.body["passkey_options"];
    assert_eq!(
        request["publicKey"]["allowCredentials"][0]["id"],
        credential["id"]
    );
    let assertion = assert_with(&mut key, request).await;
    // A code where an assertion is awaited is refused at its field.
    api.post(
        "/v1/sessions/two-step",
        &unique_ip(),
        json!({"challenge_token": first.body["challenge_token"], "code": "123456"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let done = answer_challenge(&api, &first.body["challenge_token"], &assertion).await;
    assert_eq!(done.status, 201, "{}", done.body);
    // The same assertion again: on the spent challenge, and on a new one.
    answer_challenge(&api, &first.body["challenge_token"], &assertion)
        .await
        .assert_problem(401, "two_step_challenge_invalid");
    let second = passkey_challenge(&api, &c).await;
    answer_challenge(&api, &second.body["challenge_token"], &assertion)
        .await
        .assert_problem(422, "second_factor_refused");

    // A copy of the key answers with a counter that went back.
    let mut copy = clone_of(&key);
    let third = passkey_challenge(&api, &c).await;
    let fresh = assert_with(&mut key, &third.body["passkey_options"]).await;
    let ok = answer_challenge(&api, &third.body["challenge_token"], &fresh).await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let fourth = passkey_challenge(&api, &c).await;
    let cloned = assert_with(&mut copy, &fourth.body["passkey_options"]).await;
    answer_challenge(&api, &fourth.body["challenge_token"], &cloned)
        .await
        .assert_problem(422, "second_factor_refused");
    let events = events_of(&api, &text(&done.body["token"])).await;
    assert!(events.contains(&"factor_added".to_string()), "{events:?}");
    assert!(
        events.contains(&"passkey_clone_suspected".to_string()),
        "{events:?}"
    );
}

pub async fn another_citizens_passkey_cannot_finish_a_login(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let mut own = device(None, false);
    with_passkey(&api, &token, &mut own).await;
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);
    let (_, other_token) = citizen(&api).await;
    let mut theirs = device(None, false);
    let (_, their_id) = with_passkey(&api, &other_token, &mut theirs).await;

    // The thief's authenticator signs this login's challenge with their own key.
    let challenge = passkey_challenge(&api, &c).await;
    let mut request = challenge.body["passkey_options"].clone();
    request["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": their_id}]);
    let foreign = assert_with(&mut theirs, &request).await;
    answer_challenge(&api, &challenge.body["challenge_token"], &foreign)
        .await
        .assert_problem(422, "second_factor_refused");
    // The owner still can.
    let mine = assert_with(&mut own, &challenge.body["passkey_options"]).await;
    let done = answer_challenge(&api, &challenge.body["challenge_token"], &mine).await;
    assert_eq!(done.status, 201, "{}", done.body);
}

pub async fn a_discoverable_passkey_logs_in_without_a_password(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let mut key = device(None, true);
    with_passkey(&api, &token, &mut key).await;

    let started = passwordless_options(&api).await;
    let request = &started.body["options"];
    assert!(request["publicKey"]["allowCredentials"]
        .as_array()
        .is_none_or(|a| a.is_empty()));
    let assertion = assert_with(&mut key, request).await;
    let done = passwordless(&api, &started.body["ceremony_token"], &assertion).await;
    assert_eq!(done.status, 201, "{}", done.body);
    let session = text(&done.body["token"]);
    assert_eq!(api.get_as(&session, "/v1/sessions").await.status, 200);
    // The session proved a second factor: factor changes need nothing more.
    let issued = call(
        &api,
        Method::POST,
        "/v1/account/backup-codes",
        &session,
        None,
    )
    .await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    // The same answer again: the ceremony is spent.
    passwordless(&api, &started.body["ceremony_token"], &assertion)
        .await
        .assert_problem(410, "passkey_ceremony_invalid");

    // A credential nobody registered answers as a wrong signature does.
    let (_, other_token) = citizen(&api).await;
    let mut stranger = device(None, false);
    let unfinished = creation_options(&api, &other_token).await;
    attest(&mut stranger, &unfinished.body["options"]).await;
    let started = passwordless_options(&api).await;
    let unknown = assert_with(&mut stranger, &started.body["options"]).await;
    let refused = passwordless(&api, &started.body["ceremony_token"], &unknown).await;
    refused.assert_problem(401, "invalid_credentials");
    // A signature that does not match the challenge answers the same.
    let started = passwordless_options(&api).await;
    let other = passwordless_options(&api).await;
    let wrong = assert_with(&mut key, &other.body["options"]).await;
    let refused_too = passwordless(&api, &started.body["ceremony_token"], &wrong).await;
    refused_too.assert_problem(401, "invalid_credentials");
    assert_eq!(refused.body["detail"], refused_too.body["detail"]);
}

pub async fn passkeys_follow_the_factor_rules(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let mut key = device(None, false);
    let (id, credential_id) = with_passkey(&api, &token, &mut key).await;
    // The credential id is claimed for the account, with the account's user handle.
    let claim = api
        .item(&format!("PASSKEY#{credential_id}"), "PASSKEY")
        .await
        .expect("the credential id is claimed");
    assert_eq!(
        claim.get("account_id").and_then(|v| v.as_s().ok()),
        Some(&c.account_id)
    );
    assert_eq!(set_two_step(&api, &token, true).await.status, 200);
    let path = format!("/v1/account/factors/{id}");
    let renamed = api
        .patch_as(&token, &path, json!({"name": "Рабочий ключ"}))
        .await;
    assert_eq!(renamed.status, 204, "{}", renamed.body);
    // Without the phone the passkey is the last factor.
    let removed = api.delete_as(&token, "/v1/account/factors/sms").await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    api.delete_as(&token, &path)
        .await
        .assert_problem(409, "last_second_factor");
    let listed = api.get_as(&token, "/v1/account/factors").await;
    assert_eq!(listed.body["factors"][0]["name"], "Рабочий ключ");
    // Another citizen cannot remove it.
    let (_, other) = citizen(&api).await;
    api.delete_as(&other, &path)
        .await
        .assert_problem(404, "factor_not_found");

    // Right after a recovery, a password alone changes no passkey.
    let proof = recovery_proof(&api, &c.email).await;
    let body = json!({"login": c.email, "verification_token": proof,
                      "security_answer": "Ёлкина", "new_password": "Granite-Kettle-77"});
    let recovered = api.post("/v1/recovery/complete", &unique_ip(), body).await;
    assert_eq!(recovered.status, 204, "{}", recovered.body);
    let body =
        json!({"login": c.email, "password": "Granite-Kettle-77", "second_factor": "passkey"});
    let challenge = api.post("/v1/sessions", &unique_ip(), body).await;
    assert_eq!(challenge.status, 202, "{}", challenge.body);
    let assertion = assert_with(&mut key, &challenge.body["passkey_options"]).await;
    let done = answer_challenge(&api, &challenge.body["challenge_token"], &assertion).await;
    assert_eq!(done.status, 201, "{}", done.body);
    let token = text(&done.body["token"]);
    // The passkey proved a second factor: the session may change the factors.
    let back = call(&api, Method::POST, "/v1/account/factors/sms", &token, None).await;
    assert_eq!(back.status, 204, "{}", back.body);
    let removed = api.delete_as(&token, &path).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(factor_kinds(&api, &token).await, ["sms"]);
    assert!(api
        .item(&format!("PASSKEY#{credential_id}"), "PASSKEY")
        .await
        .is_none());
    // Its credential is released: it no longer logs in.
    let started = passwordless_options(&api).await;
    let stale = assert_with(&mut key, &started.body["options"]).await;
    passwordless(&api, &started.body["ceremony_token"], &stale)
        .await
        .assert_problem(401, "invalid_credentials");
}

pub async fn passkey_changes_are_locked_after_a_recovery(api: Api) {
    let c = sign_up(&api).await;
    let proof = recovery_proof(&api, &c.email).await;
    let body = json!({"login": c.email, "verification_token": proof,
                      "security_answer": "Ёлкина", "new_password": "Granite-Kettle-77"});
    let recovered = api.post("/v1/recovery/complete", &unique_ip(), body).await;
    assert_eq!(recovered.status, 204, "{}", recovered.body);
    let reply = login(&api, &unique_ip(), &c.email, "Granite-Kettle-77", false).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = text(&reply.body["token"]);
    creation_options(&api, &token)
        .await
        .assert_problem(403, "factors_locked_after_recovery");
}

pub async fn deleting_the_account_releases_its_passkeys(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let mut key = device(None, false);
    let (_, credential_id) = with_passkey(&api, &token, &mut key).await;
    let reply = api
        .call(
            Method::DELETE,
            "/v1/account",
            &unique_ip(),
            Some(&token),
            Some(json!({ "password": PASSWORD })),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert!(api
        .item(&format!("PASSKEY#{credential_id}"), "PASSKEY")
        .await
        .is_none());
    let started = passwordless_options(&api).await;
    let stale = assert_with(&mut key, &started.body["options"]).await;
    passwordless(&api, &started.body["ceremony_token"], &stale)
        .await
        .assert_problem(401, "invalid_credentials");
}

pub async fn a_passkey_from_before_a_recovery_no_longer_logs_in_alone(api: Api) {
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let mut key = device(None, true);
    with_passkey(&api, &token, &mut key).await;

    // The owner recovers the password: whoever added that passkey may be the thief.
    let proof = recovery_proof(&api, &c.email).await;
    let body = json!({"login": c.email, "verification_token": proof,
                      "security_answer": "Ёлкина", "new_password": "Granite-Kettle-77"});
    let recovered = api.post("/v1/recovery/complete", &unique_ip(), body).await;
    assert_eq!(recovered.status, 204, "{}", recovered.body);

    let started = passwordless_options(&api).await;
    let assertion = assert_with(&mut key, &started.body["options"]).await;
    passwordless(&api, &started.body["ceremony_token"], &assertion)
        .await
        .assert_problem(401, "invalid_credentials");
}
