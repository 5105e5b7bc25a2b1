//! A local stand-in for T-Bank's Internet Acquiring API v2, following the published
//! protocol (see docs/testing.md, "The T-Bank stand-in"), for the live acquirer adapter
//! (`shared::adapters::tbank`) to be tested against, never the real bank.
//!
//! * `POST /v2/{Init,GetState,CheckOrder,Confirm,Cancel,Charge}`: every request's
//!   `Token` is checked (`204` otherwise), a missing field is `2`, and every answer is
//!   HTTP 200, errors as `Success:false` with the bank's codes. Payments move along the
//!   bank's status graph; `Init` does not refuse a repeated `OrderId`, as the bank does
//!   not; `CheckOrder` lists every payment of an order (`335` for an order it never saw).
//!   `Cancel` cancels, releases a hold or refunds, in full or in part, once per
//!   `ExternalRequestId`, and refuses more than is left with `330`.
//! * `GET`/`POST /new/{code}`: the hosted form (`PaymentURL`), which takes a test card
//!   number; `POST /new/{code}/3ds` the 3-D Secure page of the challenge card.
//! * On each status the bank notifies, a signed notification is POSTed to the payment's
//!   `NotificationURL`, again until the answer is exactly `OK`.
//! * Switches (`POST /_tbank/faults`, or the methods of [`TbankStandIn`]): lose the
//!   answer to the next call of a method (the change is made, the answer comes after the
//!   client gave up), sign the next notification wrongly. `GET /_tbank/notifications`
//!   lists the deliveries.

mod form;
pub mod local;
pub mod sign;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use tokio::sync::oneshot;

/// The public test terminal's credentials, which the stand-in takes by default.
pub const TEST_TERMINAL: &str = "TinkoffBankTest";
pub const TEST_PASSWORD: &str = "TinkoffBankTest";

/// What a test card does on the form (or, saved, on `Charge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Card {
    /// Paid, no 3-D Secure.
    Succeeds,
    /// 3-D Secure without a challenge, paid.
    Frictionless,
    /// 3-D Secure with a challenge: the passcode [`CHALLENGE_PASSCODE`] pays.
    Challenge,
    /// 3-D Secure refused: `AUTH_FAIL`.
    AuthenticationFails,
    /// Declined for lack of funds: `REJECTED`, error `1051`.
    InsufficientFunds,
    /// Declined by the issuer: `REJECTED`, error `1014`.
    Declined,
}

/// The challenge card's passcode (the bank's own test ACS takes the same).
pub const CHALLENGE_PASSCODE: &str = "1qwezxc";

/// What a test card does: the bank's published test cards, and one plain decline. The
/// form takes no other number, as the bank's test terminals take only their test cards.
pub fn test_card(pan: &str) -> Option<Card> {
    Some(match pan {
        "2200770239097761" | "2201382000000591" => Card::Succeeds,
        "2201382000000013" | "2201382000000039" => Card::Frictionless,
        "2201382000000047" => Card::Challenge,
        "2201382000000005" | "2201382000000021" => Card::AuthenticationFails,
        "2201382000000831" => Card::InsufficientFunds,
        "4000000000000002" => Card::Declined,
        _ => return None,
    })
}

#[derive(Debug, Clone)]
pub struct StandInOptions {
    pub port: u16,
    pub terminal_key: String,
    pub password: String,
    /// How long a lost answer is held back: longer than the client waits.
    pub lost_answer_delay: Duration,
    /// Between deliveries of a notification that was not answered `OK`.
    pub notification_retry: Duration,
    pub notification_attempts: u32,
}

impl Default for StandInOptions {
    fn default() -> Self {
        Self {
            port: 0,
            terminal_key: TEST_TERMINAL.into(),
            password: TEST_PASSWORD.into(),
            lost_answer_delay: Duration::from_secs(30),
            notification_retry: Duration::from_millis(200),
            notification_attempts: 5,
        }
    }
}

/// One attempt to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub payment_id: u64,
    pub status: String,
    pub attempt: u32,
    /// Signed with a wrong token on purpose.
    pub bad_token: bool,
    /// The receiver answered 200 `OK`.
    pub accepted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PayType {
    OneStage,
    TwoStage,
}

#[derive(Debug, Clone)]
struct Payment {
    id: u64,
    order_id: String,
    amount: u64,
    /// What is still held or charged: the amount less what was released or refunded.
    remaining: u64,
    status: String,
    error_code: String,
    pay_type: PayType,
    recurrent: bool,
    initiator: Option<String>,
    notification_url: Option<String>,
    success_url: Option<String>,
    fail_url: Option<String>,
    due: OffsetDateTime,
    /// The card it was paid with, once it was.
    pan: Option<String>,
    rebill_id: Option<u64>,
    card_id: Option<u64>,
    /// Answers of cancels by `ExternalRequestId`.
    cancels: HashMap<String, Value>,
}

#[derive(Debug, Clone)]
struct SavedCard {
    pan: String,
    card_id: u64,
}

struct Books {
    next_id: u64,
    payments: BTreeMap<u64, Payment>,
    by_code: HashMap<String, u64>,
    cards: HashMap<u64, SavedCard>,
    lose_next: HashSet<String>,
    bad_token_next: bool,
    deliveries: Vec<Delivery>,
}

struct Inner {
    options: StandInOptions,
    base_url: String,
    books: Mutex<Books>,
    http: reqwest::Client,
}

type Shared = Arc<Inner>;

impl Inner {
    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running stand-in; stopped by [`TbankStandIn::shutdown`] or when dropped.
pub struct TbankStandIn {
    inner: Shared,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl TbankStandIn {
    pub async fn start(options: StandInOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            base_url: format!("http://{addr}"),
            options,
            books: Mutex::new(Books {
                next_id: 3_093_639_567,
                payments: BTreeMap::new(),
                by_code: HashMap::new(),
                cards: HashMap::new(),
                lose_next: HashSet::new(),
                bad_token_next: false,
                deliveries: Vec::new(),
            }),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(std::io::Error::other)?,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            inner,
            addr,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        self.inner.base_url.clone()
    }

    /// The API base the adapter takes (`TBANK_API_URL`).
    pub fn api_url(&self) -> String {
        format!("{}/v2", self.inner.base_url)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next call of `method` (`Init`, `Charge`, `Cancel`, …) is carried out, but its
    /// answer comes only after [`StandInOptions::lost_answer_delay`].
    pub fn lose_next_answer(&self, method: &str) {
        self.inner.books().lose_next.insert(method.to_string());
    }

    /// The next notification is signed with a wrong token.
    pub fn bad_token_next_notification(&self) {
        self.inner.books().bad_token_next = true;
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.books().deliveries.clone()
    }

    /// A payment's status, by its PaymentId.
    pub fn status(&self, payment_id: &str) -> Option<String> {
        let id: u64 = payment_id.parse().ok()?;
        let mut books = self.inner.books();
        let p = books.payments.get_mut(&id)?;
        expire(p);
        Some(p.status.clone())
    }

    /// Saves a card as a paid `Recurrent=Y` payment would: answers its RebillId.
    pub fn save_card(&self, pan: &str) -> u64 {
        let mut books = self.inner.books();
        save(&mut books, pan).0
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TbankStandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn save(books: &mut Books, pan: &str) -> (u64, u64) {
    let rebill = books.next_id;
    let card_id = books.next_id + 1;
    books.next_id += 2;
    books.cards.insert(
        rebill,
        SavedCard {
            pan: pan.to_string(),
            card_id,
        },
    );
    (rebill, card_id)
}

fn router(inner: Shared) -> Router {
    Router::new()
        .route("/v2/{method}", post(api))
        .route("/new/{code}", get(form::show).post(form::submit))
        .route("/new/{code}/3ds", post(form::challenge))
        .route("/_tbank/faults", post(faults))
        .route("/_tbank/notifications", get(notifications))
        .with_state(inner)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Faults {
    #[serde(default)]
    lose_next_answer: Vec<String>,
    #[serde(default)]
    bad_token_next_notification: bool,
}

async fn faults(State(inner): State<Shared>, Json(f): Json<Faults>) -> Response {
    let mut books = inner.books();
    books.lose_next.extend(f.lose_next_answer);
    books.bad_token_next |= f.bad_token_next_notification;
    Json(json!({"ok": true})).into_response()
}

async fn notifications(State(inner): State<Shared>) -> Response {
    Json(json!({ "deliveries": inner.books().deliveries.clone() })).into_response()
}

/// An error answer: HTTP 200, `Success:false`.
fn error(code: &str, message: &str) -> Value {
    json!({"Success": false, "ErrorCode": code, "Message": message, "Details": ""})
}

fn missing(field: &str) -> Value {
    error("2", &format!("Отсутствуют обязательные параметры: {field}"))
}

async fn api(State(inner): State<Shared>, Path(method): Path<String>, body: Bytes) -> Response {
    let answer = match serde_json::from_slice::<Map<String, Value>>(&body) {
        Err(_) => error("1", "Параметры не сопоставлены"),
        Ok(body) => answer(&inner, &method, &body),
    };
    let lose = inner.books().lose_next.remove(&method);
    if lose {
        tokio::time::sleep(inner.options.lost_answer_delay).await;
    }
    Json(answer).into_response()
}

fn answer(inner: &Shared, method: &str, body: &Map<String, Value>) -> Value {
    let Some(terminal) = text(body.get("TerminalKey")) else {
        return missing("TerminalKey");
    };
    let Some(given) = text(body.get("Token")) else {
        return missing("Token");
    };
    if terminal != inner.options.terminal_key {
        return error("205", "Терминал не найден");
    }
    if given != sign::token(body, &inner.options.password) {
        return error(
            "204",
            "Неверный токен. Проверьте пару TerminalKey/SecretKey",
        );
    }
    let mut books = inner.books();
    let mut outbox = Vec::new();
    let reply = match method {
        "Init" => init(inner, &mut books, body),
        "GetState" => get_state(&mut books, body),
        "CheckOrder" => check_order(&mut books, body),
        "Confirm" => confirm(&mut books, body, &mut outbox),
        "Cancel" => cancel(&mut books, body, &mut outbox),
        "Charge" => charge(&mut books, body, &mut outbox),
        _ => error("9999", "Метод не поддерживается стендом"),
    };
    drop(books);
    for note in outbox {
        notify(inner.clone(), note);
    }
    let mut reply = reply;
    if let Value::Object(m) = &mut reply {
        m.insert("TerminalKey".into(), Value::String(terminal));
    }
    reply
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn amount(value: Option<&Value>) -> Option<Result<u64, ()>> {
    let v = value?;
    Some(match v {
        Value::Number(n) => n
            .as_u64()
            .filter(|a| *a > 0 && *a <= 9_999_999_999)
            .ok_or(()),
        _ => Err(()),
    })
}

/// NEW and FORM_SHOWED payments past their `RedirectDueDate` expire.
fn expire(p: &mut Payment) {
    if matches!(p.status.as_str(), "NEW" | "FORM_SHOWED") && OffsetDateTime::now_utc() > p.due {
        p.status = "DEADLINE_EXPIRED".into();
    }
}

fn payment_of<'a>(
    books: &'a mut Books,
    body: &Map<String, Value>,
) -> Result<&'a mut Payment, Value> {
    let Some(id) = text(body.get("PaymentId")) else {
        return Err(missing("PaymentId"));
    };
    let found = id
        .parse::<u64>()
        .ok()
        .and_then(|id| books.payments.get_mut(&id));
    match found {
        Some(p) => {
            expire(p);
            Ok(p)
        }
        None => Err(error("255", "Платеж не найден")),
    }
}

fn init(inner: &Shared, books: &mut Books, body: &Map<String, Value>) -> Value {
    let Some(order_id) = text(body.get("OrderId")) else {
        return missing("OrderId");
    };
    if order_id.is_empty() || order_id.chars().count() > 36 {
        return error("1", "OrderId: от 1 до 36 символов");
    }
    let amount = match amount(body.get("Amount")) {
        None => return missing("Amount"),
        Some(Err(())) => return error("326", "Неверная сумма"),
        Some(Ok(a)) => a,
    };
    let pay_type = match text(body.get("PayType")).as_deref() {
        None | Some("O") => PayType::OneStage,
        Some("T") => PayType::TwoStage,
        Some(_) => return error("1", "PayType: O или T"),
    };
    let recurrent = text(body.get("Recurrent")).as_deref() == Some("Y");
    if recurrent && text(body.get("CustomerKey")).is_none() {
        return missing("CustomerKey");
    }
    let initiator = body
        .get("DATA")
        .and_then(|d| d.get("OperationInitiatorType"))
        .and_then(|v| text(Some(v)));
    let consistent = match initiator.as_deref() {
        None => true,
        Some("1") => recurrent,
        Some("0" | "2" | "R" | "I") => !recurrent,
        Some(_) => false,
    };
    if !consistent {
        return error(
            "1126",
            "Несопоставимые значения OperationInitiatorType и Recurrent",
        );
    }
    let due = match text(body.get("RedirectDueDate")) {
        None => OffsetDateTime::now_utc() + Duration::from_secs(24 * 3600),
        Some(raw) => {
            match OffsetDateTime::parse(&raw, &time::format_description::well_known::Rfc3339) {
                Ok(due) => due,
                Err(_) => return error("12", "Неверный формат RedirectDueDate"),
            }
        }
    };
    let id = books.next_id;
    books.next_id += 1;
    let code = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
    books.by_code.insert(code.clone(), id);
    books.payments.insert(
        id,
        Payment {
            id,
            order_id: order_id.clone(),
            amount,
            remaining: amount,
            status: "NEW".into(),
            error_code: "0".into(),
            pay_type,
            recurrent,
            initiator,
            notification_url: text(body.get("NotificationURL")),
            success_url: text(body.get("SuccessURL")),
            fail_url: text(body.get("FailURL")),
            due,
            pan: None,
            rebill_id: None,
            card_id: None,
            cancels: HashMap::new(),
        },
    );
    json!({
        "Success": true, "ErrorCode": "0", "Status": "NEW",
        "PaymentId": id.to_string(), "OrderId": order_id, "Amount": amount,
        "PaymentURL": format!("{}/new/{code}", inner.base_url),
    })
}

fn get_state(books: &mut Books, body: &Map<String, Value>) -> Value {
    match payment_of(books, body) {
        Err(e) => e,
        Ok(p) => json!({
            "Success": true, "ErrorCode": "0", "Message": "OK", "Status": p.status,
            "PaymentId": p.id.to_string(), "OrderId": p.order_id, "Amount": p.amount,
        }),
    }
}

fn check_order(books: &mut Books, body: &Map<String, Value>) -> Value {
    let Some(order_id) = text(body.get("OrderId")) else {
        return missing("OrderId");
    };
    let payments: Vec<Value> = books
        .payments
        .values_mut()
        .filter(|p| p.order_id == order_id)
        .map(|p| {
            expire(p);
            // The bank's own odd types: Success a string, ErrorCode a number.
            json!({
                "PaymentId": p.id.to_string(), "Amount": p.amount, "Status": p.status,
                "Success": "true", "ErrorCode": p.error_code.parse::<u64>().unwrap_or(0),
                "Message": "None",
            })
        })
        .collect();
    if payments.is_empty() {
        return error(
            "335",
            &format!("OrderId {order_id} не найден для TerminalKey"),
        );
    }
    json!({
        "Success": true, "ErrorCode": "0", "Message": "OK", "Details": "None",
        "OrderId": order_id, "Payments": payments,
    })
}

fn confirm(books: &mut Books, body: &Map<String, Value>, outbox: &mut Vec<Value>) -> Value {
    let p = match payment_of(books, body) {
        Err(e) => return e,
        Ok(p) => p,
    };
    // The spec allows it from AUTHORIZED only; from PARTIAL_REVERSED it is ambiguous
    // (the rest stays held "and must be confirmed"), and the stand-in allows it.
    if !matches!(p.status.as_str(), "AUTHORIZED" | "PARTIAL_REVERSED") {
        return error("8", "Неверный статус транзакции");
    }
    match amount(body.get("Amount")) {
        Some(Err(())) => return error("326", "Неверная сумма"),
        Some(Ok(a)) if a > p.remaining => {
            return error(
                "330",
                "Сумма в запросе больше чем в оригинальной транзакции",
            )
        }
        Some(Ok(a)) => p.remaining = a,
        None => {}
    }
    p.status = "CONFIRMED".into();
    outbox.push(notification(p));
    json!({
        "Success": true, "ErrorCode": "0", "Message": "OK", "Status": p.status,
        "PaymentId": p.id.to_string(), "OrderId": p.order_id,
    })
}

fn cancel(books: &mut Books, body: &Map<String, Value>, outbox: &mut Vec<Value>) -> Value {
    let p = match payment_of(books, body) {
        Err(e) => return e,
        Ok(p) => p,
    };
    let external = text(body.get("ExternalRequestId"));
    if let Some(previous) = external.as_ref().and_then(|id| p.cancels.get(id)) {
        // The same request again: the state as it is, nothing cancelled twice.
        let mut again = previous.clone();
        if let Value::Object(m) = &mut again {
            m.insert("Status".into(), Value::String(p.status.clone()));
        }
        return again;
    }
    let requested = match amount(body.get("Amount")) {
        Some(Err(())) => return error("326", "Неверная сумма"),
        Some(Ok(a)) => Some(a),
        None => None,
    };
    let before = p.remaining;
    let (partial, full) = match p.status.as_str() {
        "NEW" | "FORM_SHOWED" => ("CANCELED", "CANCELED"),
        "AUTHORIZED" | "PARTIAL_REVERSED" => ("PARTIAL_REVERSED", "REVERSED"),
        "CONFIRMED" | "PARTIAL_REFUNDED" => ("PARTIAL_REFUNDED", "REFUNDED"),
        _ => return error("8", "Неверный статус транзакции"),
    };
    if full == "CANCELED" {
        // A session is always cancelled in full; Amount is ignored.
        p.remaining = 0;
        p.status = full.into();
    } else {
        let amount = requested.unwrap_or(p.remaining);
        if amount > p.remaining {
            return error(
                "330",
                "Сумма в запросе больше чем в оригинальной транзакции",
            );
        }
        p.remaining -= amount;
        p.status = if p.remaining == 0 { full } else { partial }.into();
    }
    outbox.push(notification(p));
    let mut reply = json!({
        "Success": true, "ErrorCode": "0", "Message": "OK", "Details": "None",
        "Status": p.status, "OriginalAmount": before, "NewAmount": p.remaining,
        "PaymentId": p.id.to_string(), "OrderId": p.order_id,
    });
    if let (Some(id), Value::Object(m)) = (external, &mut reply) {
        m.insert("ExternalRequestId".into(), Value::String(id.clone()));
        p.cancels.insert(id, reply.clone());
    }
    reply
}

fn charge(books: &mut Books, body: &Map<String, Value>, outbox: &mut Vec<Value>) -> Value {
    let Some(rebill) = text(body.get("RebillId")) else {
        return missing("RebillId");
    };
    let card = rebill
        .parse::<u64>()
        .ok()
        .and_then(|r| books.cards.get(&r).cloned());
    let p = match payment_of(books, body) {
        Err(e) => return e,
        Ok(p) => p,
    };
    if p.status != "NEW" {
        return error("8", "Неверный статус транзакции");
    }
    if !matches!(p.initiator.as_deref(), Some("2" | "R" | "I")) {
        return error(
            "1126",
            "Несопоставимые значения OperationInitiatorType и RebillId",
        );
    }
    let Some(card) = card else {
        return error("104", "Ошибка совершения рекуррентного платежа");
    };
    p.pan = Some(card.pan.clone());
    p.card_id = Some(card.card_id);
    settle(p, test_card(&card.pan).unwrap_or(Card::Declined));
    outbox.push(notification(p));
    let ok = p.error_code == "0";
    json!({
        "Success": ok, "ErrorCode": p.error_code, "Status": p.status,
        "PaymentId": p.id.to_string(), "OrderId": p.order_id, "Amount": p.amount,
        "Message": if ok { "OK" } else { "Отказ" },
    })
}

/// The authorisation's result for a card that passed (or needed no) 3-D Secure.
fn settle(p: &mut Payment, card: Card) {
    match card {
        Card::Succeeds | Card::Frictionless | Card::Challenge => {
            p.status = match p.pay_type {
                PayType::OneStage => "CONFIRMED",
                PayType::TwoStage => "AUTHORIZED",
            }
            .into();
        }
        Card::AuthenticationFails => {
            p.status = "AUTH_FAIL".into();
            p.error_code = "101".into();
        }
        Card::InsufficientFunds => {
            p.status = "REJECTED".into();
            p.error_code = "1051".into();
        }
        Card::Declined => {
            p.status = "REJECTED".into();
            p.error_code = "1014".into();
        }
    }
}

/// The notification of a payment's current status, not yet signed.
fn notification(p: &Payment) -> Value {
    let mut body = json!({
        "OrderId": p.order_id, "Success": p.error_code == "0", "Status": p.status,
        "PaymentId": p.id, "ErrorCode": p.error_code, "Amount": p.amount,
    });
    if let Value::Object(m) = &mut body {
        if let Some(url) = &p.notification_url {
            m.insert("_url".into(), Value::String(url.clone()));
        }
        if let (Some(pan), Some(card_id)) = (&p.pan, p.card_id) {
            m.insert("CardId".into(), json!(card_id));
            m.insert("Pan".into(), json!(masked(pan)));
            m.insert("ExpDate".into(), json!("1230"));
        }
        if let Some(rebill) = p.rebill_id {
            m.insert("RebillId".into(), json!(rebill));
        }
        m.insert("DATA".into(), json!({"Route": "ACQ", "Source": "cards"}));
    }
    body
}

/// `220138******0047`.
fn masked(pan: &str) -> String {
    let head: String = pan.chars().take(6).collect();
    let tail: String = pan
        .chars()
        .skip(pan.chars().count().saturating_sub(4))
        .collect();
    format!("{head}******{tail}")
}

/// Delivers a notification until the answer is exactly `OK`, in the background.
fn notify(inner: Shared, mut body: Value) {
    let Value::Object(m) = &mut body else {
        return;
    };
    let Some(Value::String(url)) = m.remove("_url") else {
        return;
    };
    m.insert(
        "TerminalKey".into(),
        Value::String(inner.options.terminal_key.clone()),
    );
    let bad = std::mem::take(&mut inner.books().bad_token_next);
    let token = if bad {
        sign::token(m, "not-the-password")
    } else {
        sign::token(m, &inner.options.password)
    };
    m.insert("Token".into(), Value::String(token));
    let payment_id = m.get("PaymentId").and_then(Value::as_u64).unwrap_or(0);
    let status = text(m.get("Status")).unwrap_or_default();
    tokio::spawn(async move {
        for attempt in 1..=inner.options.notification_attempts {
            let accepted = match inner.http.post(&url).json(&body).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => {
                    r.text().await.is_ok_and(|t| t == "OK")
                }
                _ => false,
            };
            inner.books().deliveries.push(Delivery {
                payment_id,
                status: status.clone(),
                attempt,
                bad_token: bad,
                accepted,
            });
            if accepted {
                return;
            }
            tokio::time::sleep(inner.options.notification_retry).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_test_cards_are_known() {
        assert_eq!(test_card("2201382000000047"), Some(Card::Challenge));
        assert_eq!(test_card("5555555555554444"), None);
    }
}
