//! Step-up, sessions that end, no contact oracle, bounded holds: what a thief with a
//! password, or a payer who walks away from 3-D Secure, can no longer do.

use std::time::Duration;

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::scenario;
use crate::support::*;

/// `STEP_UP_WINDOW_SECONDS` of the security stack: how long a login or a step-up code
/// counts as a fresh proof of presence there (the default is minutes).
pub const STEP_UP_WINDOW_SECS: u64 = 120;
/// `PAYMENT_HOLD_SECONDS` of the security stack: how long an unconfirmed payment holds
/// its bills there.
pub const PAYMENT_HOLD_SECS: u64 = 30;
/// Bills one account may hold in unconfirmed payments (the default of
/// `PAYMENT_MAX_HELD_BILLS`).
const MAX_HELD_BILLS: usize = 20;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(a_stolen_password_cannot_turn_two_step_login_off),
        scenario!(a_stolen_password_cannot_change_the_phone_or_email),
        scenario!(a_stolen_password_cannot_save_a_card_or_create_or_widen_an_autopay),
        scenario!(a_contact_change_does_not_tell_which_contacts_are_registered),
        scenario!(a_password_change_ends_the_sessions_a_thief_opens_during_it),
        scenario!(a_recovery_ends_every_session_even_those_opened_during_it),
        scenario!(deleting_the_account_ends_every_session_even_those_opened_during_it),
        scenario!(an_abandoned_3ds_payment_frees_its_bills_after_a_short_hold),
        scenario!(one_account_cannot_hold_more_bills_than_the_cap),
    ]
}

// ------------------------------------------------------------------ helpers

/// A session whose login is older than the step-up window: a thief's session opened
/// long ago (or a device left signed in).
async fn stale_session(api: &Api, c: &Citizen) -> String {
    let token = token_for(api, c).await;
    tokio::time::sleep(Duration::from_secs(STEP_UP_WINDOW_SECS + 2)).await;
    token
}

async fn security_events(api: &Api, token: &str) -> Vec<String> {
    let reply = api.get_as(token, "/v1/security-events").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["events"]
        .as_array()
        .map(|events| events.iter().map(|e| text(&e["type"])).collect())
        .unwrap_or_default()
}

/// What the authorizer answers a token with: any route behind it that reads nothing of
/// the account would do; the session list is one.
async fn authorizer_status(api: &Api, token: &str) -> u16 {
    api.get_as(token, "/v1/sessions").await.status
}

/// Asserts that the authorizer refuses every one of `sessions` now; `what` says whose
/// they are.
async fn assert_all_ended(api: &Api, sessions: &[impl AsRef<str>], what: &str) {
    for token in sessions {
        let status = authorizer_status(api, token.as_ref()).await;
        assert_eq!(status, 401, "{what} ({} of them)", sessions.len());
    }
}

/// Logins with the (old) password, one every 60 ms, while `during` runs: the sessions a
/// thief opens while the owner acts. The owner's own password check is counted on their
/// session, not on the login's limit, so the flood can be as dense as a thief likes
/// without making the owner wait. Returns the tokens of the logins that succeeded.
async fn logins_during<F: std::future::Future<Output = Reply>>(
    api: &Api,
    c: &Citizen,
    during: F,
) -> (Reply, Vec<String>) {
    let logins = (0..32u64).map(|i| {
        let api = api.clone();
        let email = c.email.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(60 * i)).await;
            login(&api, &unique_ip(), &email, PASSWORD, false).await
        }
    });
    let (acted, replies) = tokio::join!(during, join_all(logins));
    let mut tokens = Vec::new();
    for reply in replies {
        assert!(reply.status < 500, "{}", reply.body);
        if reply.status == 201 {
            tokens.push(text(&reply.body["token"]));
        }
    }
    (acted, tokens)
}

// ------------------------------------------------------------------ step-up

async fn a_stolen_password_cannot_turn_two_step_login_off(api: Api) {
    let c = sign_up(&api).await;
    let owner = token_for(&api, &c).await;
    let thief = stale_session(&api, &c).await;
    // The owner, just signed in, turns two-step login on: no step-up to make it safer.
    let on = set_two_step(&api, &owner, true).await;
    assert_eq!(on.status, 200, "{}", on.body);

    // The thief has the password and an old session: not enough.
    let off = set_two_step(&api, &thief, false).await;
    off.assert_problem(403, "step_up_required");
    let account = api.get_as(&owner, "/v1/account").await;
    assert_eq!(account.body["two_step_login"], true, "{}", account.body);

    // With a fresh code to the account's phone it is allowed, and the owner hears of it.
    let sms_before = api.outbox(&c.phone).await.len();
    let mail_before = api.outbox(&c.email).await.len();
    step_up(&api, &thief, &c.phone).await;
    assert_eq!(api.outbox(&c.phone).await.len(), sms_before + 1);
    let off = set_two_step(&api, &thief, false).await;
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["two_step_login"], false);
    assert!(
        api.outbox(&c.email).await.len() > mail_before,
        "the owner is told by e-mail"
    );
    let events = security_events(&api, &owner).await;
    assert!(
        events.contains(&"step_up_completed".to_string()),
        "{events:?}"
    );
    assert!(
        events.contains(&"two_step_disabled".to_string()),
        "{events:?}"
    );
}

async fn a_stolen_password_cannot_change_the_phone_or_email(api: Api) {
    let c = sign_up(&api).await;
    let thief = stale_session(&api, &c).await;
    let new_phone = unique_phone();
    let new_email = unique_email();
    // The thief confirms contacts of their own: the codes prove they hold them, not that
    // they are the account's owner.
    let phone_token = verified_for(&api, "sms", &new_phone, &new_phone, "contact_change").await;
    let email_token = verified_for(&api, "email", &new_email, &new_email, "contact_change").await;
    change_contact(&api, &thief, "phone", &new_phone, &phone_token)
        .await
        .assert_problem(403, "step_up_required");
    change_contact(&api, &thief, "email", &new_email, &email_token)
        .await
        .assert_problem(403, "step_up_required");
    let account = api.get_as(&thief, "/v1/account").await;
    assert_eq!(account.body["phone"], c.phone.as_str());
    assert_eq!(account.body["email"], c.email.as_str());

    // A code to the current phone lets the change through; the old phone is told.
    step_up(&api, &thief, &c.phone).await;
    let before = api.outbox(&c.phone).await.len();
    let phone = change_contact(&api, &thief, "phone", &new_phone, &phone_token).await;
    assert_eq!(phone.status, 204, "{}", phone.body);
    assert_eq!(api.outbox(&c.phone).await.len(), before + 1);
}

async fn a_stolen_password_cannot_save_a_card_or_create_or_widen_an_autopay(api: Api) {
    // Standard, as paying and setting up payments need (the access matrix), and signed
    // in just now: saving a card and an autopay need nothing more.
    let (c, owner) = standard_payer(&api).await;
    let saved = api
        .post_as(&owner, "/v1/payment-methods", card(SUCCEEDS))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let method = saved.id();
    let autopay = json!({"name": "Свет", "match": {"category": "utilities"}, "method_id": method,
                         "limit": 100_000, "trigger": {"type": "monthly", "day": 10}});
    let created = api.post_as(&owner, "/v1/autopays", autopay.clone()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.id();
    let path = format!("/v1/autopays/{id}");

    let thief = stale_session(&api, &c).await;
    let card_reply = api
        .post_as(&thief, "/v1/payment-methods", card(SUCCEEDS))
        .await;
    card_reply.assert_problem(403, "step_up_required");
    let create = api.post_as(&thief, "/v1/autopays", autopay).await;
    create.assert_problem(403, "step_up_required");
    for widening in [
        json!({"limit": 100_000_000}),
        json!({"match": {"category": "fines"}}),
        json!({"status": "paused"}),
    ] {
        let reply = api.patch_as(&thief, &path, widening.clone()).await;
        if widening.get("status").is_some() {
            // Pausing narrows: allowed without a step-up.
            assert_eq!(reply.status, 200, "{}", reply.body);
        } else {
            reply.assert_problem(403, "step_up_required");
        }
    }
    // Switching it back on and a lower limit: only the lower limit.
    let on = api
        .patch_as(&thief, &path, json!({"status": "active"}))
        .await;
    on.assert_problem(403, "step_up_required");
    let lower = api.patch_as(&thief, &path, json!({"limit": 50_000})).await;
    assert_eq!(lower.status, 200, "{}", lower.body);
    let methods = api.get_as(&thief, "/v1/payment-methods").await;
    assert_eq!(
        methods.body["payment_methods"].as_array().map(Vec::len),
        Some(1)
    );
    let list = api.get_as(&thief, "/v1/autopays").await;
    assert_eq!(list.body["autopays"].as_array().map(Vec::len), Some(1));
    assert_eq!(list.body["autopays"][0]["limit"], 50_000);
    assert_eq!(list.body["autopays"][0]["status"], "paused");

    // With a code to the phone, all of it.
    step_up(&api, &thief, &c.phone).await;
    let wider = api
        .patch_as(&thief, &path, json!({"limit": 200_000, "status": "active"}))
        .await;
    assert_eq!(wider.status, 200, "{}", wider.body);
    let card_reply = api
        .post_as(&thief, "/v1/payment-methods", card(SUCCEEDS))
        .await;
    assert_eq!(card_reply.status, 201, "{}", card_reply.body);
}

// ------------------------------------------------------------------ contact oracle

async fn a_contact_change_does_not_tell_which_contacts_are_registered(api: Api) {
    let victim = sign_up(&api).await;
    let c = sign_up(&api).await;
    let token = token_for(&api, &c).await;
    let stranger = unique_phone();
    // A code the attacker got for a phone of their own.
    let own = unique_phone();
    let own_token = verified_for(&api, "sms", &own, &own, "contact_change").await;
    let try_phone = |phone: String, proof: String| {
        let api = api.clone();
        let token = token.clone();
        async move { change_contact(&api, &token, "phone", &phone, &proof).await }
    };
    for proof in ["vt_forged".to_string(), own_token.clone()] {
        let registered = try_phone(victim.phone.clone(), proof.clone()).await;
        let unregistered = try_phone(stranger.clone(), proof.clone()).await;
        assert_eq!(
            (registered.status, registered.body.clone()),
            (unregistered.status, unregistered.body.clone()),
            "a registered phone answers as any other"
        );
        registered.assert_field_errors(&[("/verification_token", "verification_token_invalid")]);
    }
    // The code for the attacker's own phone still works for that phone.
    let own_change = try_phone(own.clone(), own_token).await;
    assert_eq!(own_change.status, 204, "{}", own_change.body);
}

// ------------------------------------------------------------------ sessions end

async fn a_password_change_ends_the_sessions_a_thief_opens_during_it(api: Api) {
    let c = sign_up(&api).await;
    let owner = token_for(&api, &c).await;
    let thief = token_for(&api, &c).await;
    let change = api.put_as(
        &owner,
        "/v1/account/password",
        json!({"password": PASSWORD, "new_password": "Granite-Kettle-77"}),
    );
    let (changed, during) = logins_during(&api, &c, change).await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(
        authorizer_status(&api, &thief).await,
        401,
        "the old session"
    );
    assert_all_ended(
        &api,
        &during,
        "sessions opened with the old password during the change",
    )
    .await;
    assert_eq!(
        authorizer_status(&api, &owner).await,
        200,
        "the owner's session stays"
    );
}

async fn a_recovery_ends_every_session_even_those_opened_during_it(api: Api) {
    let c = sign_up(&api).await;
    let owner = token_for(&api, &c).await;
    let proof = recovery_proof(&api, &c.email).await;
    let ip = unique_ip();
    let recover = api.post(
        "/v1/recovery/complete",
        &ip,
        json!({"login": c.email, "verification_token": proof, "security_answer": "Ёлкина",
               "new_password": "Granite-Kettle-77"}),
    );
    let (recovered, during) = logins_during(&api, &c, recover).await;
    assert_eq!(recovered.status, 204, "{}", recovered.body);
    assert_eq!(authorizer_status(&api, &owner).await, 401);
    assert_all_ended(
        &api,
        &during,
        "sessions opened with the old password during the recovery",
    )
    .await;
}

async fn deleting_the_account_ends_every_session_even_those_opened_during_it(api: Api) {
    let c = sign_up(&api).await;
    let owner = token_for(&api, &c).await;
    let other = token_for(&api, &c).await;
    // Deleting is destructive, but not a widening: the password is its proof.
    let delete = call(
        &api,
        Method::DELETE,
        "/v1/account",
        &owner,
        Some(json!({"password": PASSWORD})),
    );
    let (deleted, during) = logins_during(&api, &c, delete).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let all: Vec<&String> = [&owner, &other].into_iter().chain(&during).collect();
    assert_all_ended(
        &api,
        &all,
        "sessions of a deleted account, some opened during the deletion",
    )
    .await;
}

// ------------------------------------------------------------------ bounded holds

/// Today in Moscow, as the bills' dates are written.
fn moscow_today_text() -> String {
    let today = moscow_today();
    format!(
        "{}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    )
}

async fn an_abandoned_3ds_payment_frees_its_bills_after_a_short_hold(api: Api) {
    let biller = new_biller("ГИБДД ГУ МВД по г. Москве");
    // A fine at half price through today.
    let fine = uin(25);
    let mut body = charge(500_000, on_sts("77 УО 123456"));
    body["category"] = json!("fines");
    body["discount"] = json!({"amount": 250_000, "until": moscow_today_text()});
    let put = biller.put(&api, &fine, body).await;
    assert_eq!(put.status, 201, "{}", put.body);

    // Someone starts paying it with a 3-D Secure card and never confirms.
    let (_, squatter) = standard_payer(&api).await;
    let held = pay_bills(&api, &squatter, &[&fine], card(THREE_DS)).await;
    assert_eq!(held.status, 202, "{}", held.body);
    assert_eq!(held.body["status"], "requires_confirmation");
    let held_id = held.id();

    // The fine's payer keeps the fine among their bills, so they are told why they cannot
    // pay it yet (to a caller who does not see a bill, a held one reads as unknown).
    let (_, payer) = standard_payer(&api).await;
    let saved = api
        .post_as(&payer, "/v1/bills/saved", json!({ "uin": fine }))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let early = pay_bills(&api, &payer, &[&fine], card(SUCCEEDS)).await;
    early.assert_problem(409, "bill_in_payment");

    // After the short hold, the other payer pays it, at the discounted amount.
    tokio::time::sleep(Duration::from_secs(PAYMENT_HOLD_SECS + 2)).await;
    let paid = pay_bills(&api, &payer, &[&fine], card(SUCCEEDS)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.body["amount"], 250_000);
    let paid_id = paid.id();

    // The abandoned payment can no longer be confirmed: one charge, not two.
    let late = call(
        &api,
        Method::POST,
        &format!("/v1/payments/{held_id}/confirm"),
        &squatter,
        None,
    )
    .await;
    assert!(
        late.status == 409 || late.status == 402,
        "a late confirmation: {} {}",
        late.status,
        late.body
    );
    let order = |id: String| {
        let api = api.clone();
        async move {
            api.item(&format!("ACQORDER#{id}"), "ACQORDER")
                .await
                .map(|item| string_attr(&item, "state"))
        }
    };
    assert_eq!(order(paid_id).await.as_deref(), Some("charged"));
    assert_ne!(order(held_id.clone()).await.as_deref(), Some("charged"));
    let abandoned = api
        .get_as(&squatter, &format!("/v1/payments/{held_id}"))
        .await;
    assert_eq!(abandoned.body["status"], "declined", "{}", abandoned.body);
}

async fn one_account_cannot_hold_more_bills_than_the_cap(api: Api) {
    let biller = new_biller("Школа № 2048");
    let (_, token) = standard_payer(&api).await;
    let mut uins = Vec::new();
    for _ in 0..MAX_HELD_BILLS + 4 {
        uins.push(
            biller
                .charge(&api, "kindergarten", 10_000, on_snils(&snils_of("707")))
                .await,
        );
    }
    let cards: Vec<Value> = uins.iter().map(|_| card(THREE_DS)).collect();
    let replies = join_all(
        uins.iter()
            .zip(cards)
            .map(|(uin, method)| pay_bills(&api, &token, &[uin.as_str()], method)),
    )
    .await;
    let mut held = 0;
    for reply in &replies {
        assert!(reply.status < 500, "{} {}", reply.status, reply.body);
        if reply.status == 202 {
            held += 1;
        } else {
            reply.assert_problem(409, "too_many_held_bills");
        }
    }
    assert!(
        held > 0 && held <= MAX_HELD_BILLS,
        "{held} bills held at once in unconfirmed payments"
    );
}
