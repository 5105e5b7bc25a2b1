//! End-to-end tests of the corporate cabinet: organisations registered by the citizen
//! the sandbox business register names, members invited by a code, roles, the audit log,
//! the organisation's bills paid by its members, and what strangers, the wrong roles and
//! guessers get.

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use shared::adapters::business_registry::{
    head_inn_of, ogrn_of, ogrnip_of, organisation_inn, personal_inn,
};
use support::*;

fn main() {
    run_suite(async {
        let (stack, api) = open_stack(&quick_sandbox(&[]), &[], 4).await;
        let scenarios = vec![
            scenario!(the_head_registers_a_company_and_a_sole_trader),
            scenario!(those_the_register_does_not_name_are_refused),
            scenario!(members_join_by_invitation_in_their_roles),
            scenario!(strangers_see_nothing_and_cannot_act_for_it),
            scenario!(members_see_the_bills_named_by_its_inn_and_kpp),
            scenario!(invitations_stop_at_the_days_limit),
            scenario!(a_deleted_account_leaves_and_the_last_owner_stays),
            scenario!(wrong_invitation_codes_are_limited),
            scenario!(an_accountant_pays_the_company_bills_and_a_viewer_cannot),
            scenario!(members_paying_one_bill_at_once_pay_it_once),
            scenario!(an_organisation_keeps_its_own_methods_and_templates),
        ];
        run_then_stop(stack, &api, scenarios, true).await
    })
}

// ------------------------------------------------------------------ helpers

/// A company INN of the sandbox starting with `prefix` (`9999` not found, `9998`
/// liquidated; docs/testing.md), unique for this run.
fn company_inn(prefix: &str) -> String {
    let number = format!("{prefix}{}{}", six_digits(), six_digits());
    organisation_inn(&number[..9])
}

/// The KPP of every company of [`company`].
const KPP: &str = "773601001";

/// A company's registration body.
fn company(inn: &str) -> Value {
    json!({"kind": "legal_entity", "inn": inn, "kpp": KPP, "ogrn": ogrn_of("102770013219"), "email": "office@example.ru"})
}

/// A confirmed citizen in a session that proved a second factor: what every member (and
/// every stranger trying their luck) needs to reach an organisation's routes at all, so
/// that what stops them is the role or the membership, not the access matrix.
async fn confirmed_member(api: &Api) -> (Citizen, String) {
    let (c, token) = confirmed_citizen(api).await;
    step_up(api, &token, &c.phone).await;
    (c, token)
}

/// A confirmed citizen whose profile holds the personal INN `inn`, verified, in a session
/// that proved a second factor (a step-up code), as registering an organisation and
/// managing its members need (the access matrix).
async fn confirmed_with_inn(api: &Api, inn: &str) -> (Citizen, String) {
    let (c, token) = confirmed_citizen_with(api, json!({"documents": {"inn": inn}})).await;
    step_up(api, &token, &c.phone).await;
    (c, token)
}

/// Registers `body` for `token` and waits for the register's decision; the organisation.
async fn registered(api: &Api, token: &str, body: Value) -> Value {
    let asked = api.post_as(token, "/v1/organisations", body).await;
    assert_eq!(asked.status, 202, "{}", asked.body);
    assert_eq!(asked.body["status"], "pending");
    let path = format!("/v1/organisations/{}", asked.id());
    poll(
        "the register's decision",
        || api.get_as(token, &path),
        |o| o["status"] != "pending",
    )
    .await
}

/// A registered company with its owner (the head), its id.
async fn company_with_owner(api: &Api) -> (Citizen, String, String) {
    let inn = company_inn("77");
    let (head, token) = confirmed_with_inn(api, &head_inn_of(&inn)).await;
    let org = registered(api, &token, company(&inn)).await;
    assert_eq!(org["status"], "registered", "{org}");
    (head, token, text(&org["id"]))
}

/// Invites `contact` by `channel` in `role`; the code sent.
async fn invite(
    api: &Api,
    token: &str,
    id: &str,
    channel: &str,
    contact: &str,
    role: &str,
) -> String {
    let reply = api
        .post_as(
            token,
            &format!("/v1/organisations/{id}/invitations"),
            json!({"channel": channel, "destination": contact, "role": role}),
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["role"], role);
    api.code_sent_to(contact).await
}

async fn accept(api: &Api, token: &str, code: &str) -> Reply {
    api.post_as(
        token,
        "/v1/organisation-invitations/accept",
        json!({"code": code}),
    )
    .await
}

async fn as_organisation(api: &Api, token: &str, path: &str, id: &str) -> Reply {
    api.request(Method::GET, path)
        .header("authorization", format!("Bearer {token}"))
        .header("x-organisation-id", id)
        .send()
        .await
}

/// `GET path` as `token`, which must answer 200 (with the body shown when it does not):
/// the reads the scenarios go on from.
async fn get_ok(api: &Api, token: &str, path: &str) -> Reply {
    let reply = api.get_as(token, path).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
}

/// The actions of a page of the audit log.
fn actions(page: &Reply) -> Vec<String> {
    assert_eq!(page.status, 200, "{}", page.body);
    page.list("entries")
        .iter()
        .map(|e| text(&e["action"]))
        .collect()
}

// ------------------------------------------------------------------ scenarios

async fn the_head_registers_a_company_and_a_sole_trader(api: Api) {
    let inn = company_inn("77");
    // The head's personal INN is also the INN of their sole trade.
    let personal = head_inn_of(&inn);
    let (_, token) = confirmed_with_inn(&api, &personal).await;
    let org = registered(&api, &token, company(&inn)).await;
    assert_eq!(org["status"], "registered", "{org}");
    assert_eq!(org["role"], "owner");
    assert_eq!(org["kpp"], "773601001");
    let trader = json!({"kind": "sole_trader", "inn": personal, "ogrnip": ogrnip_of("30450011600015"), "email": "ip@example.ru"});
    let trade = registered(&api, &token, trader).await;
    assert_eq!(trade["status"], "registered", "{trade}");
    assert_eq!(trade["kind"], "sole_trader");
    let list = get_ok(&api, &token, "/v1/organisations").await;
    assert_eq!(list.list("organisations").len(), 2);

    // Anyone else asking for the company is told it is taken, not by whom.
    let (other, other_token) =
        confirmed_with_inn(&api, &personal_inn(&format!("5002{}", six_digits()))).await;
    let taken = api
        .post_as(&other_token, "/v1/organisations", company(&inn))
        .await;
    taken.assert_problem(409, "organisation_already_registered");
    assert!(!taken.body.to_string().contains(&text(&org["id"])));
    assert_eq!(
        api.get_as(&other_token, "/v1/organisations")
            .await
            .list("organisations")
            .len(),
        0,
        "{}",
        other.account_id
    );
}

async fn those_the_register_does_not_name_are_refused(api: Api) {
    let (_, token) =
        confirmed_with_inn(&api, &personal_inn(&format!("5001{}", six_digits()))).await;
    // A company the register names someone else as the head of.
    let org = registered(&api, &token, company(&company_inn("77"))).await;
    assert_eq!(org["status"], "refused", "{org}");
    assert_eq!(org["reason"], "applicant_not_head");
    let closed = registered(&api, &token, company(&company_inn("9998"))).await;
    assert_eq!(closed["reason"], "liquidated", "{closed}");

    // A standard-level citizen is refused up front, by the access matrix; for the head,
    // every bad field is named.
    let (_, standard) =
        standard_citizen(&api, &snils_of("732"), &verifiable_passport_number()).await;
    api.post_as(&standard, "/v1/organisations", company(&company_inn("77")))
        .await
        .assert_problem(403, "confirmed_level_required");
    let bad = json!({"kind": "legal_entity", "inn": "7707083894", "kpp": "77", "ogrn": "1027700132194", "email": "office@example.ru"});
    let reply = api.post_as(&token, "/v1/organisations", bad).await;
    reply.assert_field_errors(&[
        ("/inn", "inn_checksum"),
        ("/kpp", "kpp_format"),
        ("/ogrn", "ogrn_checksum"),
    ]);
}

async fn members_join_by_invitation_in_their_roles(api: Api) {
    let (_, owner, id) = company_with_owner(&api).await;
    let (accountant, accountant_token) = confirmed_member(&api).await;
    let code = invite(&api, &owner, &id, "sms", &accountant.phone, "accountant").await;
    let joined = accept(&api, &accountant_token, &code).await;
    assert_eq!(joined.status, 200, "{}", joined.body);
    assert_eq!(joined.body["role"], "accountant");
    assert_eq!(joined.body["id"], id.as_str());
    // The code is used up.
    accept(&api, &accountant_token, &code)
        .await
        .assert_problem(422, "invitation_code_mismatch");
    let seen = get_ok(&api, &accountant_token, &format!("/v1/organisations/{id}")).await;
    assert_eq!(seen.body["role"], "accountant");

    let (viewer, viewer_token) = confirmed_member(&api).await;
    let code = invite(&api, &owner, &id, "email", &viewer.email, "viewer").await;
    assert_eq!(accept(&api, &viewer_token, &code).await.status, 200);
    let members = api
        .get_as(&viewer_token, &format!("/v1/organisations/{id}/members"))
        .await;
    assert_eq!(members.list("members").len(), 3, "{}", members.body);

    // Neither a viewer nor an accountant manages members or reads the audit log.
    for token in [&viewer_token, &accountant_token] {
        api.post_as(
            token,
            &format!("/v1/organisations/{id}/invitations"),
            json!({"channel": "email", "destination": unique_email(), "role": "owner"}),
        )
        .await
        .assert_problem(403, "role_forbids");
        api.get_as(token, &format!("/v1/organisations/{id}/audit"))
            .await
            .assert_problem(403, "role_forbids");
    }
    let member = |who: &Citizen| format!("/v1/organisations/{id}/members/{}", who.account_id);
    api.patch_as(&viewer_token, &member(&viewer), json!({"role": "owner"}))
        .await
        .assert_problem(403, "role_forbids");

    // The owner changes a role, removes a member, and stays the last owner.
    let changed = api
        .patch_as(&owner, &member(&viewer), json!({"role": "accountant"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["role"], "accountant");
    assert_eq!(api.delete_as(&owner, &member(&viewer)).await.status, 204);
    api.get_as(&viewer_token, &format!("/v1/organisations/{id}"))
        .await
        .assert_problem(404, "organisation_not_found");
    let owners = api.get_as(&owner, "/v1/organisations").await;
    let head_id = owners.list("organisations")[0]["id"].clone();
    assert_eq!(head_id, json!(id));

    // The audit log tells it all, newest first, page by page.
    let audit = get_ok(
        &api,
        &owner,
        &format!("/v1/organisations/{id}/audit?limit=4"),
    )
    .await;
    assert_eq!(
        actions(&audit),
        ["removed", "role_changed", "joined", "invited"]
    );
    let next = text(&audit.body["next"]);
    let rest = api
        .request(Method::GET, &format!("/v1/organisations/{id}/audit"))
        .header("authorization", format!("Bearer {owner}"))
        .query(&[("after", next.as_str())])
        .send()
        .await;
    assert_eq!(
        actions(&rest),
        ["joined", "invited", "registered", "requested"]
    );
    assert!(!rest.body.to_string().contains(&accountant.phone));
    assert!(!rest.body.to_string().contains(&viewer.email));
}

async fn strangers_see_nothing_and_cannot_act_for_it(api: Api) {
    let (_, owner, id) = company_with_owner(&api).await;
    let (_, stranger) = confirmed_member(&api).await;
    for path in [
        format!("/v1/organisations/{id}"),
        format!("/v1/organisations/{id}/members"),
        format!("/v1/organisations/{id}/audit"),
        // An id no organisation has is answered the same.
        "/v1/organisations/org_00000000000000000000000000000000".to_string(),
    ] {
        api.get_as(&stranger, &path)
            .await
            .assert_problem(404, "organisation_not_found");
    }
    api.post_as(
        &stranger,
        &format!("/v1/organisations/{id}/invitations"),
        json!({"channel": "email", "destination": unique_email(), "role": "owner"}),
    )
    .await
    .assert_problem(404, "organisation_not_found");
    // Naming it in the header gets a stranger nowhere; its owner acts for it.
    as_organisation(&api, &stranger, "/v1/organisations", &id)
        .await
        .assert_problem(404, "organisation_not_found");
    as_organisation(&api, &stranger, "/v1/organisations", "not-an-id")
        .await
        .assert_problem(404, "organisation_not_found");
    let acting = as_organisation(&api, &owner, "/v1/organisations", &id).await;
    assert_eq!(acting.status, 200, "{}", acting.body);
    assert_eq!(
        api.get_as(&stranger, "/v1/organisations")
            .await
            .list("organisations")
            .len(),
        0
    );
}

/// The UINs of the bills `token` sees acting for `id`, which must answer 200.
async fn organisation_bills(api: &Api, token: &str, id: &str) -> Vec<String> {
    let reply = as_organisation(api, token, "/v1/bills", id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    for bill in reply.list("bills") {
        assert_eq!(bill["matched"][0]["holder"], "organisation", "{bill}");
    }
    let mut uins = uins_of(&reply);
    uins.sort();
    uins
}

async fn members_see_the_bills_named_by_its_inn_and_kpp(api: Api) {
    let inn = company_inn("77");
    let personal = head_inn_of(&inn);
    let (_, owner) = confirmed_with_inn(&api, &personal).await;
    let id = text(&registered(&api, &owner, company(&inn)).await["id"]);
    let trader = json!({"kind": "sole_trader", "inn": personal, "ogrnip": ogrnip_of("30450011600015"), "email": "ip@example.ru"});
    let trade = text(&registered(&api, &owner, trader).await["id"]);
    let biller = new_biller("ГКУ «Администратор Московского парковочного пространства»");
    let company_payer = payer("inn_kpp", &format!("{inn}/773601001"));
    let [fine, tax, _branch, trade_bill] = biller
        .charges(
            &api,
            [
                ("fines", 300_000, company_payer.clone()),
                ("taxes", 1_250_000, company_payer),
                // The same INN with another KPP: a branch, another organisation, on
                // neither list below.
                (
                    "utilities",
                    90_000,
                    payer("inn_kpp", &format!("{inn}/773602001")),
                ),
                ("taxes", 410_000, payer("inn", &personal)),
            ],
        )
        .await;
    let mut company_bills = vec![fine.clone(), tax];
    company_bills.sort();

    // Every role sees the company's bills: an accountant, a viewer, the owner.
    let (accountant, accountant_token) = confirmed_member(&api).await;
    let code = invite(&api, &owner, &id, "sms", &accountant.phone, "accountant").await;
    assert_eq!(accept(&api, &accountant_token, &code).await.status, 200);
    let (viewer, viewer_token) = confirmed_member(&api).await;
    let code = invite(&api, &owner, &id, "email", &viewer.email, "viewer").await;
    assert_eq!(accept(&api, &viewer_token, &code).await.status, 200);
    for token in [&owner, &accountant_token, &viewer_token] {
        assert_eq!(organisation_bills(&api, token, &id).await, company_bills);
    }
    let listed = as_organisation(&api, &accountant_token, "/v1/bills", &id).await;
    let first = &listed.list("bills")[0];
    assert_eq!(first["matched"][0]["identifier"], "inn_kpp", "{first}");
    assert_eq!(first["payable"], true);
    // The category filter works on the organisation's list as on a citizen's.
    let fines = as_organisation(&api, &viewer_token, "/v1/bills?category=fines", &id).await;
    assert_eq!(uins_of(&fines), [fine]);
    // The sole trade's list holds the bill on the trader's INN, and none of the company's.
    assert_eq!(organisation_bills(&api, &owner, &trade).await, [trade_bill]);
    // Members' own lists do not hold the company's bills.
    let own = get_ok(&api, &accountant_token, "/v1/bills").await;
    assert!(uins_of(&own).is_empty(), "{}", own.body);
    // A stranger, or a member naming an organisation they do not belong to, is told it
    // is not found.
    let (_, stranger) = confirmed_member(&api).await;
    as_organisation(&api, &stranger, "/v1/bills", &id)
        .await
        .assert_problem(404, "organisation_not_found");
    as_organisation(&api, &accountant_token, "/v1/bills", &trade)
        .await
        .assert_problem(404, "organisation_not_found");
}

async fn invitations_stop_at_the_days_limit(api: Api) {
    let (_, owner, id) = company_with_owner(&api).await;
    // One contact flooded with invitations: at most the day's 20 reach it.
    let victim = unique_email();
    let path = format!("/v1/organisations/{id}/invitations");
    let body = json!({"channel": "email", "destination": victim, "role": "viewer"});
    let replies =
        futures::future::join_all((0..24).map(|_| api.post_as(&owner, &path, body.clone()))).await;
    let sent = replies.iter().filter(|r| r.status == 202).count();
    let held: Vec<&Reply> = replies.iter().filter(|r| r.status != 202).collect();
    assert_eq!(
        sent,
        20,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for reply in held {
        reply.assert_problem(429, "invitation_limit");
        assert!(reply.header("retry-after").is_some());
    }
    assert_eq!(api.outbox(&victim).await.len(), 20);
    // The audit log holds the 20 sent, not the refused ones.
    let audit = get_ok(
        &api,
        &owner,
        &format!("/v1/organisations/{id}/audit?limit=100"),
    )
    .await;
    let invited = actions(&audit).iter().filter(|a| *a == "invited").count();
    assert_eq!(invited, 20);
}

async fn delete_account(api: &Api, token: &str) -> Reply {
    call(
        api,
        Method::DELETE,
        "/v1/account",
        token,
        Some(json!({"password": PASSWORD})),
    )
    .await
}

async fn a_deleted_account_leaves_and_the_last_owner_stays(api: Api) {
    let (_, owner, id) = company_with_owner(&api).await;
    let (accountant, accountant_token) = confirmed_member(&api).await;
    let code = invite(&api, &owner, &id, "sms", &accountant.phone, "accountant").await;
    assert_eq!(accept(&api, &accountant_token, &code).await.status, 200);

    // The sole owner cannot leave the company ownerless: nothing is deleted.
    delete_account(&api, &owner)
        .await
        .assert_problem(409, "last_owner");
    get_ok(&api, &owner, &format!("/v1/organisations/{id}")).await;

    // A member's deletion takes them out first, and the log says so.
    let deleted = delete_account(&api, &accountant_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let members = get_ok(&api, &owner, &format!("/v1/organisations/{id}/members")).await;
    assert_eq!(members.list("members").len(), 1, "{}", members.body);
    assert!(api
        .item(
            &format!("ORG#{id}"),
            &format!("MEMBER#{}", accountant.account_id)
        )
        .await
        .is_none());
    let audit = get_ok(
        &api,
        &owner,
        &format!("/v1/organisations/{id}/audit?limit=1"),
    )
    .await;
    assert_eq!(actions(&audit), ["left"]);

    // With a second owner, the first may go.
    let (second, second_token) = confirmed_member(&api).await;
    let code = invite(&api, &owner, &id, "email", &second.email, "owner").await;
    assert_eq!(accept(&api, &second_token, &code).await.status, 200);
    assert_eq!(delete_account(&api, &owner).await.status, 204);
    let members = get_ok(
        &api,
        &second_token,
        &format!("/v1/organisations/{id}/members"),
    )
    .await;
    assert_eq!(members.list("members").len(), 1, "{}", members.body);
}

async fn wrong_invitation_codes_are_limited(api: Api) {
    let (_, token) = confirmed_member(&api).await;
    // Parallel guesses: counted before they are checked, so at most five get an answer.
    let guesses = (0..8).map(|i| {
        let api = &api;
        let token = &token;
        async move { accept(api, token, &format!("{:06}", 100_000 + i)).await }
    });
    let replies = futures::future::join_all(guesses).await;
    let wrong = replies.iter().filter(|r| r.status == 422).count();
    let limited = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (wrong, limited),
        (5, 3),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let last = accept(&api, &token, "123456").await;
    last.assert_problem(429, "invitation_attempts_limited");
    assert!(last.retry_after() > 0);
}

// ------------------------------------------------------------------ paying as an organisation

/// A registered company that the scenarios pay for: its owner (the head) with their
/// session, its id, its INN and its e-mail, which no other organisation has (receipts go
/// there).
struct PayingCompany {
    head: Citizen,
    owner: String,
    id: String,
    inn: String,
    email: String,
}

/// Registers a company with an e-mail of its own, its owner the head.
async fn paying_company(api: &Api) -> PayingCompany {
    let inn = company_inn("77");
    let email = format!("office{}@example.ru", six_digits());
    let (head, owner) = confirmed_with_inn(api, &head_inn_of(&inn)).await;
    let mut body = company(&inn);
    body["email"] = json!(email);
    let org = registered(api, &owner, body).await;
    assert_eq!(org["status"], "registered", "{org}");
    PayingCompany {
        head,
        owner,
        id: text(&org["id"]),
        inn,
        email,
    }
}

impl PayingCompany {
    /// The payers of a charge on the company's INN and KPP.
    fn payer(&self) -> Value {
        payer("inn_kpp", &format!("{}/{KPP}", self.inn))
    }

    /// A new citizen invited by SMS in `role` who accepted; with their session.
    async fn member(&self, api: &Api, role: &str) -> (Citizen, String) {
        let (member, token) = confirmed_member(api).await;
        let code = invite(api, &self.owner, &self.id, "sms", &member.phone, role).await;
        let joined = accept(api, &token, &code).await;
        assert_eq!(joined.status, 200, "{}", joined.body);
        (member, token)
    }
}

/// `method path` with the JSON `body` as the holder of `token` acting for the
/// organisation `id`, with the idempotency key `key` when there is one.
async fn send_for(
    api: &Api,
    token: &str,
    id: &str,
    method: Method,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> Reply {
    api.json_request(method, path, token, body)
        .header("x-organisation-id", id)
        .header_if("idempotency-key", key)
        .send()
        .await
}

/// `POST /v1/payments` of `body` under `key`, acting for the organisation `id`.
async fn pay_for(api: &Api, token: &str, id: &str, key: &str, body: &Value) -> Reply {
    send_for(
        api,
        token,
        id,
        Method::POST,
        "/v1/payments",
        Some(key),
        body,
    )
    .await
}

/// `POST /v1/payments/{payment}/confirm` (3-D Secure done) acting for the organisation.
async fn confirm_for(api: &Api, token: &str, id: &str, payment: &str) -> Reply {
    let path = format!("/v1/payments/{payment}/confirm");
    send_for(api, token, id, Method::POST, &path, None, &json!({})).await
}

/// The ids of a page of an archive, which must answer 200, newest first.
fn payment_ids(archive: &Reply) -> Vec<String> {
    assert_eq!(archive.status, 200, "{}", archive.body);
    archive
        .list("payments")
        .iter()
        .map(|p| text(&p["id"]))
        .collect()
}

/// The organisation's archive as `token` acting for it (`GET /v1/payments` with the
/// header and `query`): the ids, newest first.
async fn organisation_archive(api: &Api, token: &str, id: &str, query: &str) -> Vec<String> {
    payment_ids(&as_organisation(api, token, &format!("/v1/payments{query}"), id).await)
}

/// Asserts that a payment's view says it was paid for the organisation `id` by `member`.
fn assert_paid_for(payment: &Value, id: &str, member: &Citizen) {
    assert_eq!(payment["organisation_id"], id, "{payment}");
    assert_eq!(
        payment["member_id"],
        member.account_id.as_str(),
        "{payment}"
    );
}

/// The `paid` entries of the organisation's audit log, newest first, as its owner reads
/// them.
async fn paid_entries(api: &Api, owner: &str, id: &str) -> Vec<Value> {
    let audit = get_ok(
        api,
        owner,
        &format!("/v1/organisations/{id}/audit?limit=100"),
    )
    .await;
    audit
        .list("entries")
        .into_iter()
        .filter(|e| e["action"] == "paid")
        .collect()
}

/// The receipt letters (`Квитанция об оплате`) in the outbox of `to` that name `uin`.
async fn receipts_naming(api: &Api, to: &str, uin: &str) -> usize {
    api.outbox(to)
        .await
        .iter()
        .map(Value::to_string)
        .filter(|m| m.contains("Квитанция об оплате") && m.contains(uin))
        .count()
}

/// The organisation's unpaid bills (its list as it opens) and its paid ones, as `token`
/// acting for it sees them: the UINs of each.
async fn organisation_bills_by_status(
    api: &Api,
    token: &str,
    id: &str,
) -> (Vec<String>, Vec<String>) {
    let unpaid = as_organisation(api, token, "/v1/bills", id).await;
    assert_eq!(unpaid.status, 200, "{}", unpaid.body);
    for bill in unpaid.list("bills") {
        assert_eq!(bill["payable"], true, "{bill}");
    }
    let paid = as_organisation(api, token, "/v1/bills?status=paid", id).await;
    assert_eq!(paid.status, 200, "{}", paid.body);
    for bill in paid.list("bills") {
        assert_eq!(bill["status"], "paid", "{bill}");
        assert_eq!(bill["payable"], false, "{bill}");
    }
    (uins_of(&unpaid), uins_of(&paid))
}

async fn an_accountant_pays_the_company_bills_and_a_viewer_cannot(api: Api) {
    let company = paying_company(&api).await;
    let (owner, id) = (&company.owner, company.id.as_str());
    let (accountant, accountant_token) = company.member(&api, "accountant").await;
    let (viewer, viewer_token) = company.member(&api, "viewer").await;
    let biller = new_biller("ИФНС России № 36 по г. Москве");
    let [tax, fine, refused] = biller
        .charges(
            &api,
            [
                ("taxes", 1_250_000, company.payer()),
                ("fines", 300_000, company.payer()),
                ("utilities", 90_000, company.payer()),
            ],
        )
        .await;
    let mut all = vec![tax.clone(), fine.clone(), refused.clone()];
    all.sort();

    // A stranger naming the company, and a member naming another organisation, are told
    // it is not found; neither pays. (Each attempt has a card token of its own.)
    let tax_by_card = || json!({"uins": [tax], "method": card(SUCCEEDS)});
    let (_, stranger) = confirmed_member(&api).await;
    pay_for(&api, &stranger, id, &unique_key(), &tax_by_card())
        .await
        .assert_problem(404, "organisation_not_found");
    let (_, other_owner, other_id) = company_with_owner(&api).await;
    pay_for(
        &api,
        &accountant_token,
        &other_id,
        &unique_key(),
        &tax_by_card(),
    )
    .await
    .assert_problem(404, "organisation_not_found");

    // A viewer may not pay: nothing is written, the bill stays payable.
    pay_for(&api, &viewer_token, id, &unique_key(), &tax_by_card())
        .await
        .assert_problem(403, "role_forbids");
    assert_eq!(
        organisation_bills_by_status(&api, owner, id).await,
        (all.clone(), vec![])
    );
    assert!(organisation_archive(&api, &viewer_token, id, "")
        .await
        .is_empty());

    // The accountant pays the tax for the company.
    let (key, paying) = (unique_key(), tax_by_card());
    let paid = pay_for(&api, &accountant_token, id, &key, &paying).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_eq!(paid.body["status"], "succeeded");
    assert_eq!(paid.body["total"], 1_250_000);
    assert_paid_for(&paid.body, id, &accountant);
    let tax_payment = paid.id();
    // The same request under the same key is the same payment, told as a replay.
    let replay = pay_for(&api, &accountant_token, id, &key, &paying).await;
    assert_eq!(replay.status, 201, "{}", replay.body);
    assert_eq!(replay.id(), tax_payment);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    // The tax leaves the company's list of bills to pay, and is among its paid ones.
    let (unpaid, paid_bills) = organisation_bills_by_status(&api, &viewer_token, id).await;
    assert!(!unpaid.contains(&tax), "{unpaid:?}");
    assert_eq!(paid_bills, [tax.as_str()]);

    // Every member sees the payment, as the company's; the payer alone does not.
    let path = format!("/v1/payments/{tax_payment}");
    for token in [owner, &accountant_token, &viewer_token] {
        let seen = as_organisation(&api, token, &path, id).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
        assert_eq!(seen.body["status"], "succeeded");
        assert_paid_for(&seen.body, id, &accountant);
    }
    api.get_as(&accountant_token, &path)
        .await
        .assert_problem(404, "payment_not_found");
    as_organisation(&api, &other_owner, &path, &other_id)
        .await
        .assert_problem(404, "payment_not_found");

    // The receipt names the company, not the member; it went to the company's address.
    let receipt = as_organisation(&api, &viewer_token, &format!("{path}/receipt"), id).await;
    assert_eq!(receipt.status, 200, "{}", receipt.body);
    let payer = text(&receipt.body["payer"]);
    assert!(
        payer.contains(&company.inn) && payer.contains(KPP),
        "{}",
        receipt.body
    );
    assert!(!payer.contains("Иванов"), "{}", receipt.body);
    assert_eq!(receipts_naming(&api, &company.email, &tax).await, 1);
    assert_eq!(receipts_naming(&api, &accountant.email, &tax).await, 0);

    // The accountant's own payment is theirs alone, and names no organisation.
    let donation = api
        .json_request(
            Method::POST,
            "/v1/payees/charity-children/payments",
            &accountant_token,
            &json!({"amount": 50_000, "method": card(SUCCEEDS)}),
        )
        .header("idempotency-key", unique_key())
        .send()
        .await;
    assert_eq!(donation.status, 201, "{}", donation.body);
    assert!(
        donation.body.get("organisation_id").is_none(),
        "{}",
        donation.body
    );
    assert!(
        donation.body.get("member_id").is_none(),
        "{}",
        donation.body
    );

    // A declined card pays nothing; 3-D Secure waits for a confirmation a viewer may not
    // give.
    let declined = pay_for(
        &api,
        &accountant_token,
        id,
        &unique_key(),
        &json!({"uins": [refused], "method": card(DECLINED)}),
    )
    .await;
    declined.assert_problem(402, "payment_declined");
    let declined_payment = text(&declined.body["payment_id"]);
    let waiting = pay_for(
        &api,
        &accountant_token,
        id,
        &unique_key(),
        &json!({"uins": [fine], "method": card(THREE_DS)}),
    )
    .await;
    assert_eq!(waiting.status, 202, "{}", waiting.body);
    assert_eq!(waiting.body["status"], "requires_confirmation");
    assert_paid_for(&waiting.body, id, &accountant);
    // The bank's page is the paying member's card's: shown to them only.
    assert!(
        waiting.body["confirmation_url"].is_string(),
        "{}",
        waiting.body
    );
    let fine_payment = waiting.id();
    confirm_for(&api, &viewer_token, id, &fine_payment)
        .await
        .assert_problem(403, "role_forbids");
    let still = as_organisation(&api, owner, &format!("/v1/payments/{fine_payment}"), id).await;
    assert_eq!(
        still.body["status"], "requires_confirmation",
        "{}",
        still.body
    );
    assert!(
        still.body.get("confirmation_url").is_none(),
        "{}",
        still.body
    );
    let confirmed = confirm_for(&api, &accountant_token, id, &fine_payment).await;
    assert_eq!(confirmed.status, 201, "{}", confirmed.body);
    assert_eq!(confirmed.body["status"], "succeeded");
    assert_paid_for(&confirmed.body, id, &accountant);

    // The company's archive, the same for every member, holds its three payments and
    // nothing else; the members' own archives hold none of them.
    let company_payments = vec![fine_payment.clone(), declined_payment, tax_payment.clone()];
    for token in [owner, &accountant_token, &viewer_token] {
        let archive = as_organisation(&api, token, "/v1/payments", id).await;
        assert_eq!(payment_ids(&archive), company_payments);
        for payment in archive.list("payments") {
            assert_paid_for(&payment, id, &accountant);
        }
    }
    assert_eq!(
        organisation_archive(&api, &viewer_token, id, "?status=succeeded").await,
        [fine_payment.clone(), tax_payment.clone()]
    );
    assert_eq!(
        payment_ids(&api.get_as(&accountant_token, "/v1/payments").await),
        [donation.id()]
    );
    for token in [owner, &viewer_token] {
        assert!(payment_ids(&api.get_as(token, "/v1/payments").await).is_empty());
    }

    // The audit log tells each payment that went through, by whom and for how much.
    let paid_log = paid_entries(&api, owner, id).await;
    assert_eq!(paid_log.len(), 2, "{paid_log:?}");
    for (entry, (payment, amount)) in paid_log
        .iter()
        .zip([(&fine_payment, 300_000), (&tax_payment, 1_250_000)])
    {
        assert_eq!(entry["actor"], accountant.account_id.as_str(), "{entry}");
        assert_eq!(entry["payment_id"], payment.as_str(), "{entry}");
        assert_eq!(entry["amount"], amount, "{entry}");
    }

    // A member the owner removed sees the company's payments no more.
    let removed = api
        .delete_as(
            owner,
            &format!("/v1/organisations/{id}/members/{}", viewer.account_id),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    as_organisation(&api, &viewer_token, "/v1/payments", id)
        .await
        .assert_problem(404, "organisation_not_found");
    as_organisation(&api, &viewer_token, &path, id)
        .await
        .assert_problem(404, "organisation_not_found");
}

async fn members_paying_one_bill_at_once_pay_it_once(api: Api) {
    let company = paying_company(&api).await;
    let (owner, id) = (&company.owner, company.id.as_str());
    let (accountant, accountant_token) = company.member(&api, "accountant").await;
    let biller = new_biller("ГБУ «Жилищник района Хамовники»");
    let [rent, deposit] = biller
        .charges(
            &api,
            [
                ("utilities", 480_000, company.payer()),
                ("other", 120_000, company.payer()),
            ],
        )
        .await;

    // The owner and the accountant pay the same bill at the same moment.
    let rent_by_card = || json!({"uins": [rent], "method": card(SUCCEEDS)});
    let (by_owner, by_accountant) = (rent_by_card(), rent_by_card());
    let (owner_key, accountant_key) = (unique_key(), unique_key());
    let (a, b) = tokio::join!(
        pay_for(&api, owner, id, &owner_key, &by_owner),
        pay_for(&api, &accountant_token, id, &accountant_key, &by_accountant),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let (owner_account, accountant_account) = (
        company.head.account_id.as_str(),
        accountant.account_id.as_str(),
    );
    let (won, lost, winner, loser, loser_token) = if a.status == 201 {
        (&a, &b, owner_account, accountant_account, &accountant_token)
    } else {
        (&b, &a, accountant_account, owner_account, owner)
    };
    assert!(
        ["bill_in_payment", "bill_paid"].contains(&lost.body["code"].as_str().unwrap_or_default()),
        "{}",
        lost.body
    );
    assert_eq!(lost.body["uin"], rent.as_str());
    assert_eq!(won.body["organisation_id"], id);
    assert_eq!(won.body["member_id"], winner);
    let payment = won.id();

    // Paid once: the bill is paid, one payment went through, one receipt, one entry.
    assert_eq!(
        organisation_bills_by_status(&api, &accountant_token, id).await,
        (vec![deposit.clone()], vec![rent.clone()])
    );
    assert_eq!(
        organisation_archive(&api, owner, id, "?status=succeeded").await,
        [payment.as_str()]
    );
    assert_eq!(receipts_naming(&api, &company.email, &rent).await, 1);
    let paid_log = paid_entries(&api, owner, id).await;
    assert_eq!(paid_log.len(), 1, "{paid_log:?}");
    assert_eq!(paid_log[0]["actor"], winner);
    assert_eq!(paid_log[0]["payment_id"], payment.as_str());
    assert_eq!(paid_log[0]["amount"], 480_000);

    // The one turned away was refused that bill only: it pays another at once.
    let other = pay_for(
        &api,
        loser_token,
        id,
        &unique_key(),
        &json!({"uins": [deposit], "method": card(SUCCEEDS)}),
    )
    .await;
    assert_eq!(other.status, 201, "{}", other.body);
    assert_eq!(other.body["member_id"], loser);
    assert_eq!(paid_entries(&api, owner, id).await.len(), 2);
}

async fn an_organisation_keeps_its_own_methods_and_templates(api: Api) {
    let company = paying_company(&api).await;
    let (owner, id) = (&company.owner, company.id.as_str());
    let (accountant, accountant_token) = company.member(&api, "accountant").await;
    let (_, viewer) = company.member(&api, "viewer").await;
    let biller = new_biller("Префектура ЦАО");
    let [rent, water] = biller
        .charges(
            &api,
            [
                ("utilities", 75_000, company.payer()),
                ("utilities", 12_000, company.payer()),
            ],
        )
        .await;

    // The owner saves a card for the company (a fresh login is presence enough); every
    // member sees it, no member's own list holds it, and a viewer may not save one.
    let saved = send_for(
        &api,
        owner,
        id,
        Method::POST,
        "/v1/payment-methods",
        None,
        &card(SUCCEEDS),
    )
    .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    let method = saved.id();
    let listed = as_organisation(&api, &viewer, "/v1/payment-methods", id).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let ids: Vec<String> = listed
        .list("payment_methods")
        .iter()
        .map(|m| text(&m["id"]))
        .collect();
    assert_eq!(ids, std::slice::from_ref(&method));
    let own = get_ok(&api, owner, "/v1/payment-methods").await;
    assert!(own.list("payment_methods").is_empty(), "{}", own.body);
    send_for(
        &api,
        &viewer,
        id,
        Method::POST,
        "/v1/payment-methods",
        None,
        &card(SUCCEEDS),
    )
    .await
    .assert_problem(403, "role_forbids");

    // The accountant pays with it for the company; their own methods do not pay for it.
    let body = json!({"uins": [rent], "method": {"type": "saved", "id": method}});
    let paid = pay_for(&api, &accountant_token, id, &unique_key(), &body).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    assert_paid_for(&paid.body, id, &accountant);
    assert_eq!(paid.body["method"]["saved_method_id"], method.as_str());
    let mine = api
        .post_as(&accountant_token, "/v1/payment-methods", card(SUCCEEDS))
        .await;
    assert_eq!(mine.status, 201, "{}", mine.body);
    let body = json!({"uins": [water], "method": {"type": "saved", "id": mine.id()}});
    pay_for(&api, &accountant_token, id, &unique_key(), &body)
        .await
        .assert_problem(404, "payment_method_not_found");

    // A template of the company's: kept by the accountant, paid in one call.
    let template = send_for(
        &api,
        &accountant_token,
        id,
        Method::POST,
        "/v1/payment-templates",
        None,
        &json!({"name": "Вода", "uins": [water]}),
    )
    .await;
    assert_eq!(template.status, 201, "{}", template.body);
    let own = get_ok(&api, &accountant_token, "/v1/payment-templates").await;
    assert!(own.list("payment_templates").is_empty(), "{}", own.body);
    let path = format!("/v1/payment-templates/{}/payments", template.id());
    let body = json!({"method": {"type": "saved", "id": method}});
    let by_template = send_for(
        &api,
        &accountant_token,
        id,
        Method::POST,
        &path,
        Some(&unique_key()),
        &body,
    )
    .await;
    assert_eq!(by_template.status, 201, "{}", by_template.body);
    assert_paid_for(&by_template.body, id, &accountant);
    // Not the accountant's own template: without the header it is not found.
    api.json_request(Method::POST, &path, &accountant_token, &body)
        .header("idempotency-key", unique_key())
        .send()
        .await
        .assert_problem(404, "payment_template_not_found");
    assert_eq!(
        organisation_bills_by_status(&api, owner, id).await.0,
        Vec::<String>::new()
    );

    // Each change is in the audit log, by whom it was made.
    let audit = get_ok(
        &api,
        owner,
        &format!("/v1/organisations/{id}/audit?limit=100"),
    )
    .await;
    let entries = audit.list("entries");
    let of = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(of("method_added").len(), 1, "{}", audit.body);
    assert_eq!(of("method_added")[0]["method_id"], method.as_str());
    assert_eq!(
        of("template_added")[0]["actor"],
        accountant.account_id.as_str()
    );
    assert_eq!(of("paid").len(), 2);

    // Autopayments are a citizen's own yet: acting for the company they are refused.
    as_organisation(&api, owner, "/v1/autopays", id)
        .await
        .assert_problem(400, "organisation_not_supported");
    send_for(
        &api,
        owner,
        id,
        Method::POST,
        "/v1/autopays",
        None,
        &json!({}),
    )
    .await
    .assert_problem(400, "organisation_not_supported");
    // So is the citizen's own list of saved bills: nothing is saved.
    send_for(
        &api,
        owner,
        id,
        Method::POST,
        "/v1/bills/saved",
        None,
        &json!({"uin": rent}),
    )
    .await
    .assert_problem(400, "organisation_not_supported");
    let saved = get_ok(&api, owner, "/v1/bills?status=paid").await;
    assert!(uins_of(&saved).is_empty(), "{}", saved.body);
}
