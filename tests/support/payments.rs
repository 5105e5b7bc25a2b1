//! Payments: the acquirer sandbox's test cards and the payment request.

use super::*;

/// The sandbox acquirer's test cards (docs/testing.md): each number answers one way.
pub const SUCCEEDS: &str = "4242424242424242";
pub const DECLINED: &str = "4000000000000002";
pub const NO_FUNDS: &str = "4000000000009995";
pub const THREE_DS: &str = "4000000000003220";
pub const TIMES_OUT: &str = "4000000000000119";

/// A one-time token of the sandbox card `number`, as the acquirer's page would give it.
pub fn card_token(number: &str) -> String {
    admin(&["sandbox-card-token", "--number", number, "--exp", "12/39"])["token"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A payment method: a new token of the sandbox card `number`.
pub fn card(number: &str) -> Value {
    json!({"type": "card", "token": card_token(number)})
}

/// An idempotency key no other payment uses.
pub fn unique_key() -> String {
    format!("key-{}", six_digits() + &six_digits())
}

/// `POST /v1/payments` of `body` as the holder of `token`, with the idempotency key `key`
/// when there is one.
pub async fn pay(api: &Api, token: &str, key: Option<&str>, body: Value) -> Reply {
    api.json_request(Method::POST, "/v1/payments", token, &body)
        .header_if("idempotency-key", key)
        .send()
        .await
}

/// Pays the bills `uins` by `method`, under a new idempotency key.
pub fn pay_bills<'a>(
    api: &'a Api,
    token: &'a str,
    uins: &[&str],
    method: Value,
) -> impl Future<Output = Reply> + 'a {
    let body = json!({"uins": uins, "method": method});
    let key = unique_key();
    async move { pay(api, token, Some(&key), body).await }
}

/// Saves a new token of the sandbox card `number` as a payment method; its id.
pub async fn saved_card(api: &Api, token: &str, number: &str) -> String {
    let saved = api
        .post_as(token, "/v1/payment-methods", card(number))
        .await;
    assert_eq!(saved.status, 201, "{}", saved.body);
    saved.id()
}

/// Today in Moscow, as the bills' dates and the autopay runs read it.
pub fn moscow_today() -> time::Date {
    let offset = time::UtcOffset::from_hms(3, 0, 0).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::now_utc().to_offset(offset).date()
}

/// An autopay trigger that today's run fires: today's day of the month, or (days past the
/// 28th are not offered) today's weekday.
pub fn todays_trigger() -> Value {
    let today = moscow_today();
    if today.day() <= 28 {
        json!({"type": "monthly", "day": today.day()})
    } else {
        json!({"type": "weekly", "weekday": today.weekday().number_from_monday()})
    }
}
