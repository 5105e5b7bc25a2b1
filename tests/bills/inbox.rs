//! The citizen's inbox («Сообщения»): what the portal told a citizen by e-mail and SMS is
//! kept in the account, unread first, and is the citizen's alone.

use super::*;

/// `GET /v1/inbox{query}` as the holder of `token`.
async fn inbox(api: &Api, token: &str, query: &str) -> Reply {
    api.get_as(token, &format!("/v1/inbox{query}")).await
}

/// The messages of one list answer, which must be a 200.
fn messages(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.list("messages")
}

/// Polls the inbox until a message of `category` mentioning `text` is there; it.
async fn await_kept(api: &Api, token: &str, category: &str, text: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let listed = messages(&inbox(api, token, "?limit=100").await);
        if let Some(m) = listed
            .iter()
            .find(|m| m["category"] == category && m.to_string().contains(text))
        {
            return m.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {category} message mentioning {text}: {listed:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

async fn unread_count(api: &Api, token: &str) -> u64 {
    let reply = api.get_as(token, "/v1/inbox/unread-count").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["unread"].as_u64().unwrap_or(u64::MAX)
}

/// Unread before read, each newest first.
fn assert_listed_in_order(listed: &[Value]) {
    let keys: Vec<(bool, String)> = listed
        .iter()
        .map(|m| (m["read"] == true, text(&m["created_at"])))
        .collect();
    for pair in keys.windows(2) {
        let ((read_a, at_a), (read_b, at_b)) = (&pair[0], &pair[1]);
        assert!(
            (!read_a && *read_b) || (read_a == read_b && at_a >= at_b),
            "out of order: {keys:?}"
        );
    }
}

pub(super) async fn the_inbox_keeps_what_the_citizen_was_told(api: Api) {
    let biller = new_biller("ГБУ Жилищник района");
    let snils = snils_of("705");
    // Standard, as paying needs (the access matrix): the SNILS and a passport verified.
    let (c, token) = standard_citizen(&api, &snils, &verifiable_passport_number()).await;
    // Told on the way: the welcome and the check's outcome.
    await_kept(&api, &token, "account", "аккаунт создан").await;
    await_kept(&api, &token, "verification", "СНИЛС").await;

    // A new bill: by e-mail (kindergarten is on by default) and in the inbox, with its UIN.
    let uin = biller
        .charge(&api, "kindergarten", 150_000, on_snils(&snils))
        .await;
    await_message(&api, &c.email, &uin).await;
    let notice = await_kept(&api, &token, "bills", &uin).await;
    assert_eq!(notice["uin"], uin.as_str(), "{notice}");
    assert_eq!(notice["read"], false);
    assert_eq!(notice["title"], "Новое начисление");

    // The bill told again: the biller repeats its write, and the queue delivers the
    // notice again. Still one message, and one e-mail.
    let again = biller
        .put(&api, &uin, charge(150_000, on_snils(&snils)))
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    let queue = api.queue_url("-bill-notices").await;
    api.sqs
        .send_message()
        .queue_url(&queue)
        .message_body(json!({ "uin": uin }).to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("redeliver the notice: {e}"));
    wait_for_empty_queue(&api, "-bill-notices").await;
    let listed = messages(&inbox(&api, &token, "?category=bills").await);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(mentioning(&api, &c.email, &uin).await.len(), 1);

    // Paid: the receipt is kept with the payment's id.
    let paid = pay_bills(&api, &token, &[&uin], card(SUCCEEDS)).await;
    assert_eq!(paid.status, 201, "{}", paid.body);
    let payment_id = paid.id();
    let receipt = await_kept(&api, &token, "payments", &payment_id).await;
    assert_eq!(receipt["payment_id"], payment_id.as_str(), "{receipt}");

    // A login from a new device: the security alert is kept too.
    let alerts = api
        .put_as(
            &token,
            "/v1/account/security-settings",
            json!({"password": PASSWORD, "new_device_alerts": true}),
        )
        .await;
    assert_eq!(alerts.status, 200, "{}", alerts.body);
    let login = api
        .call_from_device(
            Method::POST,
            "/v1/sessions",
            &unique_ip(),
            "Inbox-Test-Device/2.0",
            None,
            Some(json!({"login": c.email, "password": PASSWORD, "foreign_computer": false})),
        )
        .await;
    assert_eq!(login.status, 201, "{}", login.body);
    let alert = await_kept(&api, &token, "security", "Inbox-Test-Device/2.0").await;

    // All unread so far, newest first; the count agrees.
    let all = messages(&inbox(&api, &token, "").await);
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all.iter().all(|m| m["read"] == false), "{all:?}");
    assert_listed_in_order(&all);
    assert_eq!(unread_count(&api, &token).await, 5);

    // The notice read (twice: the same answer), the alert deleted.
    let notice_id = text(&notice["id"]);
    for _ in 0..2 {
        let read = api
            .post_as(&token, &format!("/v1/inbox/{notice_id}/read"), json!({}))
            .await;
        assert_eq!(read.status, 204, "{}", read.body);
    }
    let alert_id = text(&alert["id"]);
    let deleted = api
        .delete_as(&token, &format!("/v1/inbox/{alert_id}"))
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    let gone = api
        .delete_as(&token, &format!("/v1/inbox/{alert_id}"))
        .await;
    gone.assert_problem(404, "message_not_found");
    assert_eq!(unread_count(&api, &token).await, 3);
    let all = messages(&inbox(&api, &token, "").await);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_listed_in_order(&all);
    assert_eq!(
        all[3]["id"],
        notice_id.as_str(),
        "the read one last: {all:?}"
    );
    let unread = messages(&inbox(&api, &token, "?unread=true").await);
    assert_eq!(unread.len(), 3, "{unread:?}");
    assert!(unread.iter().all(|m| m["read"] == false));
    // In DynamoDB: the notice under the read ones, the alert's id remembered as deleted.
    let pk = format!("ACCOUNT#{}", c.account_id);
    let pointer = api
        .item(&pk, &format!("INBOXID#{alert_id}"))
        .await
        .unwrap_or_else(|| panic!("the deleted message's id is remembered"));
    assert_eq!(string_attr(&pointer, "state"), "deleted");
    let counter = api.item(&pk, "INBOX").await.unwrap_or_default();
    assert_eq!(number_attr(&counter, "unread"), 3);

    // Pages of one, by the cursor: the same list.
    let mut paged = Vec::new();
    let mut query = "?limit=1".to_string();
    loop {
        let page = inbox(&api, &token, &query).await;
        paged.extend(messages(&page));
        match page.body["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=1&cursor={cursor}"),
            None => break,
        }
    }
    let ids = |list: &[Value]| list.iter().map(|m| text(&m["id"])).collect::<Vec<_>>();
    assert_eq!(ids(&paged), ids(&all));

    // Another citizen sees none of it and can touch none of it.
    let (_, other) = citizen(&api).await;
    let theirs = messages(&inbox(&api, &other, "?limit=100").await);
    assert!(
        theirs.iter().all(|m| !ids(&all).contains(&text(&m["id"]))),
        "{theirs:?}"
    );
    let read = api
        .post_as(&other, &format!("/v1/inbox/{notice_id}/read"), json!({}))
        .await;
    read.assert_problem(404, "message_not_found");
    let receipt_id = text(&receipt["id"]);
    for path in [
        format!("/v1/inbox/{receipt_id}/read"),
        "/v1/inbox/not-a-message/read".to_string(),
    ] {
        let reply = api.post_as(&other, &path, json!({})).await;
        reply.assert_problem(404, "message_not_found");
    }
    let delete = api
        .delete_as(&other, &format!("/v1/inbox/{receipt_id}"))
        .await;
    delete.assert_problem(404, "message_not_found");
    assert_eq!(messages(&inbox(&api, &token, "").await).len(), 4);

    // The inbox is a citizen's own: acting for an organisation is refused, here already
    // by the access matrix (acting for one needs the confirmed level).
    let acting = api
        .request(Method::GET, "/v1/inbox")
        .header("authorization", format!("Bearer {token}"))
        .header("x-organisation-id", "org_0123456789abcdef0123456789abcdef")
        .send()
        .await;
    acting.assert_problem(403, "confirmed_level_required");

    // Bad parameters are named, each with its code.
    let bad = inbox(
        &api,
        &token,
        "?category=cinema&unread=yes&limit=0&cursor=zzz",
    )
    .await;
    bad.assert_invalid_fields(&[
        ("/category", "invalid_category"),
        ("/unread", "invalid_flag"),
        ("/limit", "invalid_limit"),
        ("/cursor", "invalid_cursor"),
    ]);
}
