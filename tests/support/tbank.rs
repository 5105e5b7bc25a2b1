//! Live integrations: a stack whose functions charge through the T-Bank adapter, and the
//! stand-in that plays the bank (`uslugi_local::tbank`) as a cardholder and the bank's
//! own tools see it: the hosted form, the switches, the record of notifications, and
//! notifications signed as the stand-in signs them.

use super::*;

use serde_json::Map;
use uslugi_local::tbank::{sign, StandInOptions, TEST_PASSWORD, TEST_TERMINAL};

/// The stand-in's test cards (docs/testing.md, "The T-Bank stand-in"), as typed on its
/// form.
pub const TB_SUCCEEDS: &str = "2200770239097761";
/// 3-D Secure with a challenge: [`TB_PASSCODE`] on the challenge page pays.
pub const TB_CHALLENGE: &str = "2201382000000047";
pub const TB_PASSCODE: &str = uslugi_local::tbank::CHALLENGE_PASSCODE;
/// Declined for lack of funds (`1051`).
pub const TB_NO_FUNDS: &str = "2201382000000831";

/// Starts a stack with live integrations (`Integrations=live` besides `params`): its
/// functions charge through the T-Bank adapter, against the stand-in the stack starts.
pub async fn open_live_stack(
    env: &[(&str, String)],
    params: &[(&str, String)],
    instances: u32,
) -> (Stack, Api) {
    let mut params = params.to_vec();
    params.push(("Integrations", "live".to_string()));
    let (stack, api) = open_stack(env, &params, instances).await;
    assert!(
        api.tbank.is_some(),
        "a live stack without the T-Bank stand-in"
    );
    (stack, api)
}

/// A one-time card token as a client would send it: the live acquirer never sends it
/// on (the card is typed on the bank's form), so any well-formed one does.
pub fn form_card() -> Value {
    json!({"type": "card", "token": format!("tok_form{}", six_digits())})
}

/// The stand-in of a live stack, reached directly (as the cardholder's browser and the
/// bank's own tools would), not through the gateway.
pub struct Bank {
    url: String,
    http: reqwest::Client,
}

impl Api {
    /// The T-Bank stand-in of this stack; panics on a stack without live integrations.
    pub fn bank(&self) -> Bank {
        let url = self
            .tbank
            .clone()
            .unwrap_or_else(|| panic!("the stack does not run live integrations"));
        Bank {
            url,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_else(|e| panic!("http client: {e}")),
        }
    }
}

impl Bank {
    /// The stand-in's base URL: forms are under it.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn text(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("the T-Bank stand-in: {e}"));
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("the T-Bank stand-in's answer: {e}"));
        (status, text)
    }

    async fn post_form(&self, url: &str, body: String) -> (u16, String) {
        let request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.text(request).await
    }

    /// The cardholder opens the hosted form at `url` (a payment's `confirmation_url`).
    pub async fn open_form(&self, url: &str) {
        assert!(url.starts_with(&self.url), "not the stand-in's form: {url}");
        let (status, page) = self.text(self.http.get(url)).await;
        assert_eq!(status, 200, "the form: {page}");
    }

    /// The cardholder types `pan` on the opened form at `url`: the page that follows.
    pub async fn submit_card(&self, url: &str, pan: &str) -> String {
        let (status, page) = self.post_form(url, format!("pan={pan}")).await;
        assert_eq!(status, 200, "the form took no card: {page}");
        page
    }

    /// The cardholder opens the form at `url` and pays with `pan`: the page that follows.
    pub async fn pay_on_form(&self, url: &str, pan: &str) -> String {
        self.open_form(url).await;
        self.submit_card(url, pan).await
    }

    /// The cardholder types `otp` on the 3-D Secure page of the form at `url`.
    pub async fn pass_challenge(&self, url: &str, otp: &str) -> String {
        let (status, page) = self
            .post_form(&format!("{url}/3ds"), format!("otp={otp}"))
            .await;
        assert_eq!(status, 200, "the challenge page: {page}");
        page
    }

    async fn switch(&self, faults: Value) {
        let request = self
            .http
            .post(format!("{}/_tbank/faults", self.url))
            .json(&faults);
        let (status, text) = self.text(request).await;
        assert_eq!(status, 200, "the stand-in's switches: {text}");
    }

    /// The next call of `method` (`CheckOrder`, `Init`, …) is carried out, and its answer
    /// comes only after the caller gave up. The switch is the stand-in's, for every
    /// caller: a scenario that throws it runs alone.
    pub async fn lose_next_answer(&self, method: &str) {
        self.switch(json!({"lose_next_answer": [method]})).await;
    }

    /// The next notification (every delivery of it) is signed with another password. The
    /// switch is the stand-in's: a scenario that throws it runs alone.
    pub async fn bad_token_next_notification(&self) {
        self.switch(json!({"bad_token_next_notification": true}))
            .await;
    }

    /// Every delivery of the notifications of the bank's payment `payment_id`, oldest
    /// first: `status`, `attempt`, `bad_token`, `accepted`.
    pub async fn deliveries(&self, payment_id: &str) -> Vec<Value> {
        let wanted: Option<u64> = payment_id.parse().ok();
        let request = self.http.get(format!("{}/_tbank/notifications", self.url));
        let (status, text) = self.text(request).await;
        assert_eq!(status, 200, "the stand-in's notifications: {text}");
        let all: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("deliveries: {e}: {text}"));
        all["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|d| {
                d["payment_id"]
                    .as_u64()
                    .is_some_and(|id| Some(id) == wanted)
            })
            .collect()
    }

    /// Waits (up to 30 s) until the stand-in has delivered notifications of `payment_id`
    /// that `done` is content with, and answers them.
    pub async fn wait_for_deliveries(
        &self,
        payment_id: &str,
        what: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let seen = self.deliveries(payment_id).await;
            if done(&seen) {
                return seen;
            }
            assert!(Instant::now() < deadline, "{what}: {seen:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A signed call of the bank's API (`GetState`, `CheckOrder`, …) with the test
    /// terminal's credentials: the bank's own view, as its merchant cabinet shows it.
    pub async fn call(&self, method: &str, fields: Value) -> Value {
        let mut body = fields.as_object().cloned().unwrap_or_default();
        body.insert("TerminalKey".into(), json!(TEST_TERMINAL));
        let token = sign::token(&body, TEST_PASSWORD);
        body.insert("Token".into(), json!(token));
        let request = self
            .http
            .post(format!("{}/v2/{method}", self.url))
            .json(&body);
        let (status, text) = self.text(request).await;
        assert_eq!(status, 200, "{method}: {text}");
        let answer: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: {e}: {text}"));
        assert_eq!(answer["Success"], true, "{method}: {answer}");
        answer
    }

    /// The status the bank holds for its payment `payment_id` (`CONFIRMED`, …).
    pub async fn status(&self, payment_id: &str) -> String {
        text(
            &self
                .call("GetState", json!({ "PaymentId": payment_id }))
                .await["Status"],
        )
    }

    /// The bank's payments of the order `order` (our payment id): their statuses.
    pub async fn order_statuses(&self, order: &str) -> Vec<String> {
        self.call("CheckOrder", json!({ "OrderId": order })).await["Payments"]
            .as_array()
            .map(|p| p.iter().map(|p| text(&p["Status"])).collect())
            .unwrap_or_default()
    }
}

/// How often the stand-in delivers a notification that is not answered `OK`.
pub fn notification_attempts() -> usize {
    usize::try_from(StandInOptions::default().notification_attempts).unwrap_or(usize::MAX)
}

/// A notification as the bank sends it of its payment `payment_id` (a number) for our
/// order `order`: `status`, `amount` in kopecks, paid with the card `pan`.
pub fn bank_notification(order: &str, payment_id: &str, status: &str, amount: u64) -> Value {
    let payment_id: u64 = payment_id
        .parse()
        .unwrap_or_else(|_| panic!("the bank's PaymentId is a number: {payment_id}"));
    json!({
        "TerminalKey": TEST_TERMINAL,
        "OrderId": order,
        "Success": true,
        "Status": status,
        "PaymentId": payment_id,
        "ErrorCode": "0",
        "Amount": amount,
        "CardId": payment_id + 500_000,
        "Pan": "220077******7761",
        "ExpDate": "1230",
        "DATA": {"Route": "ACQ", "Source": "cards"},
    })
}

/// `notification` with its `Token`, signed with `password` as the stand-in signs.
pub fn signed(notification: &Value, password: &str) -> Value {
    let mut body: Map<String, Value> = notification.as_object().cloned().unwrap_or_default();
    body.remove("Token");
    let token = sign::token(&body, password);
    body.insert("Token".into(), json!(token));
    Value::Object(body)
}

/// `notification` signed with the test terminal's password, as the stand-in signs.
pub fn signed_by_the_bank(notification: &Value) -> Value {
    signed(notification, TEST_PASSWORD)
}

/// `POST /v1/acquirer/notifications` of `body`, as the bank posts it (no session).
pub async fn notify_portal(api: &Api, body: &Value) -> Reply {
    api.request(Method::POST, "/v1/acquirer/notifications")
        .header("content-type", "application/json")
        .header("x-forwarded-for", unique_ip())
        .body(body.to_string())
        .send()
        .await
}
