//! Paying bills: one or many at once, exactly once.
//!
//! - A payment is asked for with an `Idempotency-Key`: the same key and body give the same
//!   answer, however often and however concurrently they are sent; the same key with
//!   another body is refused.
//! - One DynamoDB transaction opens the payment: the idempotency record, the payment
//!   (`processing`), an entry for reconciliation, and a lock on every bill (refused if a
//!   bill is paid or locked by another payment). Only then is the bank asked to charge,
//!   with the payment's id as its order id, so the bank charges an order at most once.
//! - A second transaction settles it: every bill `paid` and the payment `succeeded`, or
//!   the locks released and the payment `declined`. An answer the bank did not give (a
//!   timeout) leaves the payment `pending` with its locks; the reconciliation job asks the
//!   bank what happened and settles it. Nothing is ever charged twice: nothing charges
//!   again, it only asks.
//! - After success: a receipt by e-mail, and a notice per bill queued for its biller.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::HoldLimits;
use crate::crypto::{Hasher, Identifier};
use crate::domain::{find_card_number, Email, Phone, Uin};
use crate::error::{AppError, FieldError};
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind, PaymentOutcome, ReconcileOutcome};
use crate::redact::Secret;
use crate::services::bills::{holdings_of, BillStore, LookupLimit, LookupStore};
use crate::services::charges::{Category, ChargeStatus, Payee, StoredCharge};
use crate::services::codes::Notifier;
use crate::services::household::HouseholdStore;
use crate::services::identity::{Presence, StoredAccount};
use crate::services::notices::roubles;
use crate::services::profile::ProfileStore;
use crate::services::profile::{text, Reader};
use crate::services::runs::{RunStore, Shard, ShardedJob};
use crate::services::{Cap, CappedAdd, StoreError, MOSCOW};

/// Bills one payment may pay.
pub const MAX_BILLS: usize = 20;
/// Saved payment methods per account.
pub const MAX_METHODS: usize = 10;
/// Payment templates per account.
pub const MAX_TEMPLATES: usize = 50;
/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_SECS: i64 = 24 * 3600;
/// How long a repeated request waits for the first one to finish before answering
/// `payment_in_progress`.
const REPLAY_WAIT: Duration = Duration::from_secs(8);
/// Open payments one reconciliation page looks at, oldest first, unless
/// `RECONCILE_PAGE_SIZE` says otherwise.
pub const RECONCILE_PAGE: usize = 100;
/// Shards of the reconciliation entries ([`Shard::of`] the payment id). Changing it
/// strands the entries written under the old count until their payments settle
/// (they are removed by key): a change needs the open entries rewritten first.
pub const RECONCILE_SHARDS: u16 = 16;
/// Times opening a payment reads again after a bill changed under it.
const OPEN_RETRIES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Opened; the bank is being asked.
    Processing,
    /// The bank asks the cardholder to confirm (3-D Secure).
    RequiresConfirmation,
    /// The bank's answer was lost; reconciliation will find out.
    Pending,
    Succeeded,
    Declined,
}

impl PaymentStatus {
    pub fn is_final(self) -> bool {
        matches!(self, PaymentStatus::Succeeded | PaymentStatus::Declined)
    }

    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_value(Value::String(raw.to_string())).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    Card,
    ApplePay,
    Mobile,
    Wallet,
}

/// A bill as paid: what the receipt and the biller's notice need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidBill {
    pub uin: String,
    pub biller_id: String,
    pub category: Category,
    /// Due at the time of payment, discount applied.
    pub amount: u64,
    pub payee: Payee,
    pub purpose: String,
    pub kbk: String,
    pub oktmo: String,
}

/// How a payment was paid, as the citizen sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodSummary {
    pub kind: MethodKind,
    /// `Visa •••• 4242`, `МТС +7 931 ***-**-02`.
    pub label: String,
    pub saved_method_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub account_id: String,
    pub bills: Vec<PaidBill>,
    pub amount: u64,
    pub commission: u64,
    pub total: u64,
    pub method: MethodSummary,
    pub status: PaymentStatus,
    pub gateway_reference: Option<String>,
    pub confirmation_url: Option<String>,
    pub decline_reason: Option<String>,
    pub created_at: i64,
    pub settled_at: Option<i64>,
    /// Keyed hash of the request that opened it, for idempotent replays.
    pub request_hash: String,
    /// `citizen`, or `autopay:{id}`.
    pub origin: String,
    /// Until when the payment is guaranteed its bills; past it, still waiting for
    /// 3-D Secure, it is withdrawn at the bank and declined (`confirmation_expired`)
    /// as soon as another payment needs a bill, a late confirmation comes, or the
    /// reconciliation runs. Absent for payments opened before holds had a deadline.
    #[serde(default)]
    pub hold_until: Option<i64>,
}

impl Payment {
    /// The notice each paid bill's biller gets.
    pub fn notices(&self) -> Vec<PaymentNotice> {
        self.bills
            .iter()
            .map(|b| PaymentNotice {
                payment_id: self.id.clone(),
                uin: b.uin.clone(),
                biller_id: b.biller_id.clone(),
                amount: b.amount,
                paid_at: self.settled_at.unwrap_or(self.created_at),
                gateway_reference: self.gateway_reference.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// The `Method` dimension of the `Payments` metric: `autopay` for an autopay's
    /// payment, else the kind, `saved_` before it when paid with a saved method.
    pub fn metric_method(&self) -> &'static str {
        if self.origin.starts_with("autopay:") {
            return "autopay";
        }
        let saved = self.method.saved_method_id.is_some();
        match (self.method.kind, saved) {
            (MethodKind::Card, false) => "card",
            (MethodKind::Card, true) => "saved_card",
            (MethodKind::ApplePay, _) => "apple_pay",
            (MethodKind::Mobile, false) => "mobile",
            (MethodKind::Mobile, true) => "saved_mobile",
            (MethodKind::Wallet, false) => "wallet",
            (MethodKind::Wallet, true) => "saved_wallet",
        }
    }

    /// The `Payments` count of the answer a payer got: by the status the payment is in
    /// once the bank has been asked.
    pub fn metric_outcome(&self) -> PaymentOutcome {
        match self.status {
            PaymentStatus::Succeeded => PaymentOutcome::Succeeded,
            PaymentStatus::Declined => PaymentOutcome::Declined,
            PaymentStatus::RequiresConfirmation => PaymentOutcome::Pending,
            // The bank did not say (or has not been heard yet): the reconciliation decides.
            PaymentStatus::Pending | PaymentStatus::Processing => PaymentOutcome::Failed,
        }
    }

    fn count(&self) {
        metrics::emit(Metric::Payments {
            method: self.metric_method(),
            outcome: self.metric_outcome(),
        });
    }

    pub fn categories(&self) -> Vec<Category> {
        let mut c: Vec<Category> = self.bills.iter().map(|b| b.category).collect();
        c.sort();
        c.dedup();
        c
    }
}

/// What the bank is asked to charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayMethod {
    /// A one-time token from the gateway's card page.
    CardToken(String),
    /// A saved card: the gateway's reusable token.
    SavedCard(String),
    /// Apple Pay's encrypted payment data.
    ApplePay(String),
    /// A mobile phone account, E.164.
    Mobile(String),
    /// An e-wallet number.
    Wallet(String),
}

/// The bank's answer to a charge or a confirmation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayAnswer {
    Succeeded { reference: String },
    Declined { reason: String },
    RequiresConfirmation { reference: String, url: String },
}

/// What the bank knows of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayStatus {
    Succeeded {
        reference: String,
    },
    Declined {
        reason: String,
    },
    AwaitingConfirmation,
    /// The bank has not seen the order.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The call's outcome is not known (a timeout): the order may or may not be charged.
    #[error("gateway outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The gateway refused the request before charging (a bad token).
    #[error("gateway refused: {0}")]
    Refused(String),
}

/// A card as the gateway saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCard {
    pub reusable_token: String,
    pub brand: String,
    pub last4: String,
    pub exp_month: u8,
    pub exp_year: u16,
}

pub trait PaymentGateway {
    /// Charges `amount` kopecks for `order` (at most once per order, however often asked).
    fn charge(
        &self,
        order: &str,
        amount: u64,
        method: &GatewayMethod,
    ) -> impl Future<Output = Result<GatewayAnswer, GatewayError>> + Send;

    /// Finishes an order that waited for the cardholder's confirmation.
    fn confirm(
        &self,
        order: &str,
    ) -> impl Future<Output = Result<GatewayAnswer, GatewayError>> + Send;

    fn status(
        &self,
        order: &str,
    ) -> impl Future<Output = Result<GatewayStatus, GatewayError>> + Send;

    /// Makes sure an order the bank has not seen, or one still waiting for the
    /// cardholder's confirmation, is never charged; answers what the bank knows of it
    /// afterwards (`Declined` if it was cancelled now, `Succeeded` if the cardholder
    /// confirmed it first).
    fn cancel(
        &self,
        order: &str,
    ) -> impl Future<Output = Result<GatewayStatus, GatewayError>> + Send;

    /// Turns a one-time card token into a saved card.
    fn save_card(
        &self,
        one_time_token: &str,
    ) -> impl Future<Output = Result<SavedCard, GatewayError>> + Send;
}

/// A notice to a biller that one of its bills was paid (квитирование).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentNotice {
    pub payment_id: String,
    pub uin: String,
    pub biller_id: String,
    pub amount: u64,
    pub paid_at: i64,
    pub gateway_reference: String,
}

pub trait PaymentNoticeQueue {
    fn queue_notices(
        &self,
        notices: &[PaymentNotice],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where payment notices end up: the biller's system.
pub trait BillerEndpoint {
    /// Delivers a notice; `Err`: try again later.
    fn deliver(
        &self,
        notice: &PaymentNotice,
        attempt: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A saved method, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMethod {
    pub id: String,
    pub kind: MethodKind,
    pub label: String,
    pub brand: Option<String>,
    pub last4: Option<String>,
    pub exp_month: Option<u8>,
    pub exp_year: Option<u16>,
    /// The gateway's reusable token; never shown.
    pub gateway_token: Option<String>,
    pub phone: Option<String>,
    pub wallet: Option<String>,
    pub created_at: i64,
}

impl SavedMethod {
    pub fn view(&self) -> Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "type": self.kind,
            "label": self.label,
            "created_at": crate::services::rfc3339(self.created_at),
        });
        if let (Some(brand), Some(last4), Some(m), Some(y)) =
            (&self.brand, &self.last4, self.exp_month, self.exp_year)
        {
            v["card"] =
                serde_json::json!({"brand": brand, "last4": last4, "exp_month": m, "exp_year": y});
        }
        v
    }

    fn gateway_method(&self) -> Result<GatewayMethod, AppError> {
        let missing = || AppError::Internal("saved method lacks its details".into());
        Ok(match self.kind {
            MethodKind::Card => {
                GatewayMethod::SavedCard(self.gateway_token.clone().ok_or_else(missing)?)
            }
            MethodKind::Mobile => GatewayMethod::Mobile(self.phone.clone().ok_or_else(missing)?),
            MethodKind::Wallet => GatewayMethod::Wallet(self.wallet.clone().ok_or_else(missing)?),
            MethodKind::ApplePay => return Err(missing()),
        })
    }
}

/// A named set of bills, or a payee and purpose, to pay again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub uins: Vec<String>,
    pub payee: Option<Payee>,
    pub purpose: Option<String>,
    pub created_at: i64,
}

impl Template {
    pub fn parse(body: &Map<String, Value>, now: i64) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &["name", "uins", "payee", "purpose"]);
        let name = r.required(body, "name", "", text);
        // Neither member is nullable: a null is a wrong type like any other, not an
        // absent member (parse_uins and Payee refuse it with `invalid_type`).
        let uins = match body.get("uins") {
            None => Vec::new(),
            Some(v) => parse_uins(v, "/uins", &mut errors).unwrap_or_default(),
        };
        let payee = match body.get("payee") {
            None => None,
            Some(Value::Null) => {
                errors.push(FieldError::new(
                    "/payee",
                    "invalid_type",
                    "Ожидается объект",
                ));
                None
            }
            Some(_) => Payee::parse_member(body, "", &mut errors),
        };
        let mut r = Reader {
            errors: &mut errors,
        };
        let purpose = if body.contains_key("purpose") {
            r.required(body, "purpose", "", text)
        } else {
            None
        };
        let by_payee = payee.is_some() || purpose.is_some();
        if uins.is_empty() && !by_payee && errors.is_empty() {
            errors.push(FieldError::new(
                "",
                "template_empty",
                "Укажите УИН начислений или получателя и назначение платежа",
            ));
        }
        if !uins.is_empty() && by_payee {
            errors.push(FieldError::new(
                "",
                "template_ambiguous",
                "Шаблон — это либо набор УИН, либо получатель и назначение",
            ));
        }
        if by_payee && (payee.is_none() || purpose.is_none()) && errors.is_empty() {
            errors.push(FieldError::new(
                if payee.is_none() {
                    "/payee"
                } else {
                    "/purpose"
                },
                "required",
                "Для шаблона по получателю нужны и получатель, и назначение",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        Ok(Self {
            id: format!("tpl_{}", uuid::Uuid::new_v4().simple()),
            name: name.unwrap_or_default(),
            uins,
            payee,
            purpose,
            created_at: now,
        })
    }
}

/// Why opening a payment was refused by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenRefusal {
    /// The idempotency key was taken meanwhile (a concurrent request with it).
    KeyTaken,
    /// A bill changed after it was read (paid, locked, updated).
    BillChanged,
    /// A bill's biller (this id) was revoked: its bills are withdrawn.
    BillerRevoked(String),
    /// The account's held bills changed after they were read (another payment opened
    /// or settled).
    HoldsChanged,
}

/// One payment of an account that holds bills, as the account's hold count keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBills {
    pub payment_id: String,
    pub bills: usize,
    pub until: i64,
}

/// The bills an account's payments hold: one item per account, rewritten whole on the
/// condition that its version is still the one read, so that parallel openings cannot
/// both take the last places.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldCount {
    /// 0 when the item does not exist yet.
    pub version: u64,
    pub holds: Vec<HeldBills>,
}

pub trait PaymentStore {
    /// The payment that holds a bill or paid it, if any.
    fn bill_payment(
        &self,
        uin: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// The payment an idempotency key opened, and the hash of its request.
    fn idempotency(
        &self,
        key_hash: &str,
    ) -> impl Future<Output = Result<Option<(String, String)>, StoreError>> + Send;

    fn payment(
        &self,
        account_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<Payment>, StoreError>> + Send;

    /// The bills the account's payments hold, read consistently.
    fn hold_count(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<HoldCount, StoreError>> + Send;

    /// The idempotency record, the payment, its reconciliation entry, the account's hold
    /// count (`holds`, on the version read) and the bills' locks (each on the version
    /// read), in one transaction.
    fn open_payment(
        &self,
        payment: &Payment,
        key_hash: &str,
        bill_versions: &[(String, u64)],
        holds: &HoldCount,
        key_expires_at: i64,
    ) -> impl Future<Output = Result<Result<(), OpenRefusal>, StoreError>> + Send;

    /// Records a state that is not final (requires confirmation, pending), if the payment
    /// is still in `from`.
    fn mark(
        &self,
        payment: &Payment,
        from: PaymentStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Settles a payment in one transaction: succeeded with every bill paid, or declined
    /// with every lock released. `false`: it was settled before.
    fn settle(&self, payment: &Payment) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes the reconciliation entry once nothing is left to do for a payment.
    fn close_reconciliation(
        &self,
        payment: &Payment,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Payments with a reconciliation entry created before `before`, oldest first:
    /// (account, payment).
    /// One page of (account, payment) of the open payments of one shard created before
    /// `before` (epoch seconds), oldest first, after a cursor; and the next page's
    /// cursor, if any.
    fn open_payments(
        &self,
        shard: Shard,
        before: i64,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<OpenPaymentsPage, StoreError>> + Send;

    /// An account's payments created in `[from, to)` (Unix ms), newest first.
    fn account_payments(
        &self,
        account_id: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<Payment>, StoreError>> + Send;

    fn account(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Option<StoredAccount>, StoreError>> + Send;

    fn methods(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<SavedMethod>, StoreError>> + Send;

    /// Saves a new method if the account stays within `cap`.
    fn put_method(
        &self,
        account_id: &str,
        method: &SavedMethod,
        cap: Cap,
    ) -> impl Future<Output = Result<CappedAdd, StoreError>> + Send;

    fn delete_method(
        &self,
        account_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn templates(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<Template>, StoreError>> + Send;

    /// Saves a new template if the account stays within `cap`.
    fn put_template(
        &self,
        account_id: &str,
        template: &Template,
        cap: Cap,
    ) -> impl Future<Output = Result<CappedAdd, StoreError>> + Send;

    fn delete_template(
        &self,
        account_id: &str,
        id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The method of a payment request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodRequest {
    Saved(String),
    CardToken(String),
    ApplePay(String),
    Mobile(Phone),
    Wallet(String),
}

/// `POST /v1/payments`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    pub uins: Vec<String>,
    pub method: MethodRequest,
}

fn parse_uins(raw: &Value, path: &str, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let Value::Array(items) = raw else {
        errors.push(FieldError::new(
            path,
            "invalid_type",
            "Ожидается массив УИН",
        ));
        return None;
    };
    if items.is_empty() || items.len() > MAX_BILLS {
        errors.push(FieldError::new(
            path,
            "bill_count",
            format!("От 1 до {MAX_BILLS} начислений в одном платеже"),
        ));
        return None;
    }
    let before = errors.len();
    let mut uins: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}/{i}");
        match item {
            Value::String(s) => match Uin::parse(&at, s) {
                Ok(u) if uins.iter().any(|x| x == u.as_str()) => errors.push(FieldError::new(
                    &at,
                    "duplicate_uin",
                    "Этот УИН уже есть в списке",
                )),
                Ok(u) => uins.push(u.as_str().to_string()),
                Err(e) => errors.push(e),
            },
            _ => errors.push(FieldError::new(&at, "invalid_type", "Ожидается строка")),
        }
    }
    (errors.len() == before).then_some(uins)
}

fn token(path: &str, raw: &str, prefix: &str) -> Result<String, FieldError> {
    let t = raw.trim();
    let ok = t.starts_with(prefix)
        && t.len() <= 200
        && t.len() > prefix.len()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(t.to_string())
    } else {
        Err(FieldError::new(
            path,
            "invalid_token",
            format!("Токен платёжного шлюза вида {prefix}…"),
        ))
    }
}

/// An e-wallet number: `41001` and 7 to 11 more digits.
fn wallet(path: &str, raw: &str) -> Result<String, FieldError> {
    let w = raw.trim();
    if w.starts_with("41001")
        && (12..=16).contains(&w.len())
        && w.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(w.to_string())
    } else {
        Err(FieldError::new(
            path,
            "invalid_wallet",
            "Номер кошелька: 41001 и ещё 7–11 цифр",
        ))
    }
}

fn mobile(path: &str, raw: &str) -> Result<Phone, FieldError> {
    Phone::parse(path, raw)
}

/// Reads a method object (`{"type": ...}`) at `path`.
fn parse_method(
    object: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<MethodRequest> {
    let mut r = Reader { errors };
    let kind = r.required(object, "type", path, |p, raw| {
        let t = raw.trim();
        if allowed.contains(&t) {
            Ok(t.to_string())
        } else {
            Err(FieldError::new(
                p,
                "invalid_method_type",
                format!("Допустимые значения: {}", allowed.join(", ")),
            ))
        }
    })?;
    let known: &[&str] = match kind.as_str() {
        "saved" => &["type", "id"],
        "card" => &["type", "token"],
        "apple_pay" => &["type", "payment_data"],
        "mobile" => &["type", "phone"],
        _ => &["type", "wallet"],
    };
    r.unknown(object, path, known);
    match kind.as_str() {
        "saved" => r
            .required(object, "id", path, |p, raw| token(p, raw, "pm_"))
            .map(MethodRequest::Saved),
        "card" => r
            .required(object, "token", path, |p, raw| token(p, raw, "tok_"))
            .map(MethodRequest::CardToken),
        "apple_pay" => r
            .required(object, "payment_data", path, |p, raw| {
                let d = raw.trim();
                if d.is_empty() || d.len() > 10_000 {
                    Err(FieldError::new(
                        p,
                        "invalid_payment_data",
                        "Данные Apple Pay: от 1 до 10 000 символов",
                    ))
                } else {
                    Ok(d.to_string())
                }
            })
            .map(MethodRequest::ApplePay),
        "mobile" => r
            .required(object, "phone", path, mobile)
            .map(MethodRequest::Mobile),
        _ => r
            .required(object, "wallet", path, wallet)
            .map(MethodRequest::Wallet),
    }
}

/// Identifiers the portal and the gateway hand out; never mistaken for card numbers.
const ID_PREFIXES: [&str; 5] = ["tok_", "ctok_", "pm_", "tpl_", "ap_"];

/// Refuses a body that carries what looks like a card number anywhere (UINs and wallet
/// numbers aside, which are checked for their own shape, and identifiers like `tok_…`).
pub fn refuse_card_numbers(body: &Map<String, Value>) -> Result<(), AppError> {
    match find_card_number(
        &Value::Object(body.clone()),
        &["uins", "wallet"],
        &ID_PREFIXES,
    ) {
        Some(path) => Err(AppError::CardNumberNotAccepted(path)),
        None => Ok(()),
    }
}

impl PayRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        Reader {
            errors: &mut errors,
        }
        .unknown(body, "", &["uins", "method"]);
        let uins = match body.get("uins") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new("uins", "required", "Обязательное поле"));
                None
            }
            Some(v) => parse_uins(v, "/uins", &mut errors),
        };
        let method = match body.get("method") {
            Some(Value::Object(m)) => parse_method(
                m,
                "/method",
                &["saved", "card", "apple_pay", "mobile", "wallet"],
                &mut errors,
            ),
            None | Some(Value::Null) => {
                errors.push(FieldError::new("method", "required", "Обязательное поле"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "method",
                    "invalid_type",
                    "Ожидается объект",
                ));
                None
            }
        };
        if let (Some(uins), Some(MethodRequest::ApplePay(_))) = (&uins, &method) {
            if uins.len() > 1 {
                errors.push(FieldError::new(
                    "/method/type",
                    "apple_pay_single_bill",
                    "Apple Pay оплачивает только одно начисление за раз",
                ));
            }
        }
        match (uins, method) {
            (Some(uins), Some(method)) if errors.is_empty() => Ok(Self { uins, method }),
            _ => Err(AppError::Validation(errors)),
        }
    }

    /// The request in a canonical form, for comparing replays.
    fn canonical(&self) -> String {
        let method = match &self.method {
            MethodRequest::Saved(id) => format!("saved:{id}"),
            MethodRequest::CardToken(t) => format!("card:{t}"),
            MethodRequest::ApplePay(d) => format!("apple_pay:{d}"),
            MethodRequest::Mobile(p) => format!("mobile:{}", p.e164()),
            MethodRequest::Wallet(w) => format!("wallet:{w}"),
        };
        format!("{}|{method}", self.uins.join(","))
    }
}

/// A method to save, checked.
pub enum NewMethod {
    Card(String),
    Mobile(Phone),
    Wallet(String),
}

impl NewMethod {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        let method = parse_method(body, "", &["card", "mobile", "wallet"], &mut errors);
        match method {
            Some(MethodRequest::CardToken(t)) if errors.is_empty() => Ok(NewMethod::Card(t)),
            Some(MethodRequest::Mobile(p)) if errors.is_empty() => Ok(NewMethod::Mobile(p)),
            Some(MethodRequest::Wallet(w)) if errors.is_empty() => Ok(NewMethod::Wallet(w)),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// Whether an idempotency key is usable: 8 to 64 of `A-Z a-z 0-9 - _`.
pub fn check_idempotency_key(raw: Option<&str>) -> Result<String, AppError> {
    match raw.map(str::trim) {
        Some(k)
            if (8..=64).contains(&k.len())
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(k.to_string())
        }
        _ => Err(AppError::IdempotencyKeyRequired),
    }
}

/// The commission the portal adds: mobile operators take 1 % (at least a rouble); cards,
/// Apple Pay and e-wallets pay state charges without one.
pub fn commission(kind: MethodKind, amount: u64) -> u64 {
    match kind {
        MethodKind::Mobile => amount.div_ceil(100).max(100),
        _ => 0,
    }
}

/// What a payment request led to.
#[derive(Debug, Clone)]
pub struct PayOutcome {
    pub payment: Payment,
    /// The answer repeats an earlier request with the same key.
    pub replayed: bool,
}

pub struct PaymentService<S, G, M, Q> {
    store: S,
    gateway: G,
    notifier: M,
    notices: Q,
    hasher: Hasher,
    /// Counted for payments citizens open; autopays pay their own bills uncounted.
    lookups: Option<LookupLimit>,
    holds: HoldLimits,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Times opening a payment reads the account's hold count again after a parallel
/// opening or settling moved it: each round lets at least one of them through, so this
/// covers far more parallel requests than an account makes.
const HOLD_RACE_RETRIES: usize = 64;

impl<S, G, M, Q> PaymentService<S, G, M, Q>
where
    S: PaymentStore + BillStore + LookupStore + ProfileStore + HouseholdStore + Sync,
    G: PaymentGateway + Sync,
    M: Notifier + Sync,
    Q: PaymentNoticeQueue + Sync,
{
    pub fn new(store: S, gateway: G, notifier: M, notices: Q, hasher: Hasher) -> Self {
        Self {
            store,
            gateway,
            notifier,
            notices,
            hasher,
            lookups: None,
            holds: HoldLimits::default(),
        }
    }

    /// Counts each bill of a payment against the account's lookup limit: opening a
    /// payment tells of a bill as a lookup does.
    pub fn with_lookup_limit(mut self, limit: LookupLimit) -> Self {
        self.lookups = Some(limit);
        self
    }

    /// How long and how many bills unconfirmed payments may hold.
    pub fn with_holds(mut self, holds: HoldLimits) -> Self {
        self.holds = holds;
        self
    }

    pub fn gateway(&self) -> &G {
        &self.gateway
    }

    /// Pays the bills of a request once per idempotency key.
    pub async fn pay(
        &self,
        account_id: &str,
        key: &str,
        request: &PayRequest,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<PayOutcome, AppError> {
        let key_hash = self
            .hasher
            .identifier(Identifier::IdempotencyKey, &[account_id, key]);
        let request_hash = self.hasher.identifier(
            Identifier::PaymentRequest,
            &[account_id, &request.canonical()],
        );
        let today = now.to_offset(MOSCOW).date();
        let mut counted = self.lookups.is_none();
        let now_s = now.unix_timestamp();
        let (mut bill_rounds, mut hold_rounds) = (0, 0);
        while bill_rounds < OPEN_RETRIES && hold_rounds < HOLD_RACE_RETRIES {
            // A request with this key before (or racing this one) decides the answer.
            if let Some(outcome) = self.replay(account_id, &key_hash, &request_hash).await? {
                return Ok(outcome);
            }
            // A replay tells nothing new; a request that may open a payment is counted
            // once, before any bill is read.
            if let (false, Some(limit)) = (counted, &self.lookups) {
                limit
                    .count(
                        &self.store,
                        account_id,
                        request.uins.len(),
                        now.unix_timestamp(),
                    )
                    .await?;
                counted = true;
            }
            let (gateway_method, summary) =
                self.resolve_method(account_id, &request.method).await?;
            let charges = match self.payable(&request.uins, now).await {
                Ok(charges) => charges,
                // A bill locked or paid by a request with this same key is that request's
                // payment, not a refusal.
                Err(refusal) => {
                    return match self.replay(account_id, &key_hash, &request_hash).await? {
                        Some(outcome) => Ok(outcome),
                        None => Err(self.as_seen_by(account_id, refusal).await?),
                    }
                }
            };
            let bills: Vec<PaidBill> = charges
                .iter()
                .map(|c| PaidBill {
                    uin: c.uin.clone(),
                    biller_id: c.biller_id.clone(),
                    category: c.body.category,
                    amount: c.amount_due(today),
                    payee: c.body.payee.clone(),
                    purpose: c.body.purpose.clone(),
                    kbk: c.body.kbk.clone(),
                    oktmo: c.body.oktmo.clone(),
                })
                .collect();
            let amount: u64 = bills.iter().map(|b| b.amount).sum();
            let commission = commission(summary.kind, amount);
            let payment = Payment {
                id: uuid::Uuid::now_v7().to_string(),
                account_id: account_id.to_string(),
                bills,
                amount,
                commission,
                total: amount + commission,
                method: summary.clone(),
                status: PaymentStatus::Processing,
                gateway_reference: None,
                confirmation_url: None,
                decline_reason: None,
                created_at: now.unix_timestamp(),
                settled_at: None,
                request_hash: request_hash.clone(),
                origin: origin.to_string(),
                hold_until: Some(now_s + secs(self.holds.hold)),
            };
            let versions: Vec<(String, u64)> =
                charges.iter().map(|c| (c.uin.clone(), c.version)).collect();
            let holds = self.hold_for(&payment, now_s).await?;
            match self
                .store
                .open_payment(
                    &payment,
                    &key_hash,
                    &versions,
                    &holds,
                    now_s + IDEMPOTENCY_TTL_SECS,
                )
                .await?
            {
                Ok(()) => {
                    tracing::info!(payment_id = %payment.id, account_id, bills = payment.bills.len(), total = payment.total, "payment opened");
                    let answer = self
                        .gateway
                        .charge(&payment.id, payment.total, &gateway_method)
                        .await;
                    let payment = self.record_answer(payment, answer, now).await?;
                    payment.count();
                    return Ok(PayOutcome {
                        payment,
                        replayed: false,
                    });
                }
                // Read again: the next round replays the request that took the key, or
                // names the bill that was paid or locked meanwhile.
                Err(OpenRefusal::KeyTaken | OpenRefusal::BillChanged) => bill_rounds += 1,
                // Another payment of the account opened or settled: count again, after
                // a short random pause so that parallel openings spread out.
                Err(OpenRefusal::HoldsChanged) => {
                    hold_rounds += 1;
                    let jitter = uuid::Uuid::new_v4().as_bytes()[0] % 32;
                    tokio::time::sleep(Duration::from_millis(5 + u64::from(jitter))).await;
                }
                Err(OpenRefusal::BillerRevoked(biller)) => {
                    let uin = payment
                        .bills
                        .iter()
                        .find(|b| b.biller_id == biller)
                        .map(|b| b.uin.clone())
                        .unwrap_or_default();
                    return Err(AppError::BillWithdrawn(uin));
                }
            }
        }
        Err(AppError::StoreUnavailable("the bills kept changing".into()))
    }

    /// The earlier outcome of a key, waiting a little for one still processing.
    async fn replay(
        &self,
        account_id: &str,
        key_hash: &str,
        request_hash: &str,
    ) -> Result<Option<PayOutcome>, AppError> {
        let Some((payment_id, stored_hash)) = self.store.idempotency(key_hash).await? else {
            return Ok(None);
        };
        if stored_hash != request_hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        let deadline = tokio::time::Instant::now() + REPLAY_WAIT;
        loop {
            let payment = self
                .store
                .payment(account_id, &payment_id)
                .await?
                .ok_or_else(|| AppError::StoreUnavailable("payment not readable yet".into()))?;
            if payment.status != PaymentStatus::Processing {
                return Ok(Some(PayOutcome {
                    payment,
                    replayed: true,
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::PaymentInProgress { payment_id });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn resolve_method(
        &self,
        account_id: &str,
        method: &MethodRequest,
    ) -> Result<(GatewayMethod, MethodSummary), AppError> {
        Ok(match method {
            MethodRequest::Saved(id) => {
                let saved = self
                    .store
                    .methods(account_id)
                    .await?
                    .into_iter()
                    .find(|m| &m.id == id)
                    .ok_or(AppError::NotFound("payment method"))?;
                (
                    saved.gateway_method()?,
                    MethodSummary {
                        kind: saved.kind,
                        label: saved.label.clone(),
                        saved_method_id: Some(saved.id.clone()),
                    },
                )
            }
            MethodRequest::CardToken(t) => (
                GatewayMethod::CardToken(t.clone()),
                MethodSummary {
                    kind: MethodKind::Card,
                    label: "Банковская карта".into(),
                    saved_method_id: None,
                },
            ),
            MethodRequest::ApplePay(d) => (
                GatewayMethod::ApplePay(d.clone()),
                MethodSummary {
                    kind: MethodKind::ApplePay,
                    label: "Apple Pay".into(),
                    saved_method_id: None,
                },
            ),
            MethodRequest::Mobile(p) => (
                GatewayMethod::Mobile(p.e164().to_string()),
                MethodSummary {
                    kind: MethodKind::Mobile,
                    label: mobile_label(p.e164()),
                    saved_method_id: None,
                },
            ),
            MethodRequest::Wallet(w) => (
                GatewayMethod::Wallet(w.clone()),
                MethodSummary {
                    kind: MethodKind::Wallet,
                    label: wallet_label(w),
                    saved_method_id: None,
                },
            ),
        })
    }

    /// A refusal of a bill as the caller may hear it. Of a bill the caller sees (saved,
    /// naming one of their verified documents, children or vehicles, or held or paid by
    /// their own payment) they hear what is wrong with it; of any other bill that is not
    /// payable, only the answer a UIN never issued gets, so that the route tells nobody
    /// whether a stranger's UIN exists, was paid or is being paid.
    async fn as_seen_by(&self, account_id: &str, refusal: AppError) -> Result<AppError, AppError> {
        let uin = match &refusal {
            AppError::BillPaid(uin) | AppError::BillInPayment(uin) => uin.clone(),
            _ => return Ok(refusal),
        };
        if self.sees(account_id, &uin).await? {
            Ok(refusal)
        } else {
            Ok(AppError::BillMissing(uin))
        }
    }

    /// Whether the account sees a bill (see [`Self::as_seen_by`]); the cheapest reads
    /// first.
    async fn sees(&self, account_id: &str, uin: &str) -> Result<bool, AppError> {
        if let Some(payment_id) = self.store.bill_payment(uin).await? {
            if self.store.payment(account_id, &payment_id).await?.is_some() {
                return Ok(true);
            }
        }
        if self
            .store
            .saved_bills(account_id)
            .await?
            .iter()
            .any(|u| u == uin)
        {
            return Ok(true);
        }
        let Some(charge) = self.store.charges(&[uin.to_string()]).await?.pop() else {
            return Ok(false);
        };
        let Some((_, mine)) = holdings_of(&self.store, account_id).await? else {
            return Ok(false);
        };
        Ok(charge
            .body
            .payers
            .iter()
            .any(|payer| mine.iter().any(|(id, _)| id == payer)))
    }

    /// The charges of the UINs, in the request's order, each unpaid and free; otherwise
    /// the refusal naming the first that is not. A bill held by a payment whose hold
    /// has passed is first freed if that payment still waits for 3-D Secure (see
    /// [`Self::withdraw`]), and the bills are read again.
    async fn payable(
        &self,
        uins: &[String],
        now: OffsetDateTime,
    ) -> Result<Vec<StoredCharge>, AppError> {
        let now_s = now.unix_timestamp();
        let mut withdrawn = false;
        loop {
            let mut found: BTreeMap<String, StoredCharge> = self
                .store
                .charges(uins)
                .await?
                .into_iter()
                .map(|c| (c.uin.clone(), c))
                .collect();
            let mut charges = Vec::with_capacity(uins.len());
            let mut expired = Vec::new();
            for uin in uins {
                let charge = found
                    .remove(uin)
                    .ok_or_else(|| AppError::BillMissing(uin.clone()))?;
                match (charge.status, &charge.locked_by, &charge.hold) {
                    (ChargeStatus::Cancelled, _, _) => {
                        return Err(AppError::BillMissing(uin.clone()))
                    }
                    (ChargeStatus::Paid, _, _) => return Err(AppError::BillPaid(uin.clone())),
                    (ChargeStatus::Unpaid, Some(payment_id), Some(hold))
                        if hold.until <= now_s && !withdrawn =>
                    {
                        expired.push((hold.account_id.clone(), payment_id.clone()));
                    }
                    (ChargeStatus::Unpaid, Some(_), _) => {
                        return Err(AppError::BillInPayment(uin.clone()))
                    }
                    (ChargeStatus::Unpaid, None, _) => charges.push(charge),
                }
            }
            if expired.is_empty() {
                return Ok(charges);
            }
            for (account_id, payment_id) in expired {
                if let Some(payment) = self.store.payment(&account_id, &payment_id).await? {
                    self.withdraw(payment, now).await?;
                }
            }
            withdrawn = true;
        }
    }

    /// Withdraws a payment whose hold has passed while it still waits for 3-D Secure:
    /// the bank cancels the order unless the cardholder confirmed it meanwhile, and the
    /// payment settles by the bank's answer, declined (its bills free) or, confirmed
    /// after all, succeeded (its bills paid). The bank's answer decides, so nothing is
    /// charged twice. A payment in any other state is left as it is: one `processing`
    /// or `pending` may have been charged, and only the reconciliation asks about it.
    async fn withdraw(&self, payment: Payment, now: OffsetDateTime) -> Result<Payment, AppError> {
        if payment.status != PaymentStatus::RequiresConfirmation {
            return Ok(payment);
        }
        let answer = match self.gateway.cancel(&payment.id).await {
            Ok(GatewayStatus::Succeeded { reference }) => GatewayAnswer::Succeeded { reference },
            Ok(GatewayStatus::Declined { reason }) => GatewayAnswer::Declined { reason },
            Ok(GatewayStatus::AwaitingConfirmation | GatewayStatus::Unknown) => return Ok(payment),
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "expired hold not withdrawn: bank not reachable");
                return Ok(payment);
            }
        };
        tracing::info!(payment_id = %payment.id, "hold expired: payment withdrawn");
        self.record_answer(payment, Ok(answer), now).await
    }

    /// The account's hold count with `payment` added; 409 `too_many_held_bills` when the
    /// account's payments would hold more bills than allowed. Holds past their deadline
    /// keep nobody from a bill any more, so they do not count.
    async fn hold_for(&self, payment: &Payment, now_s: i64) -> Result<HoldCount, AppError> {
        let count = self.store.hold_count(&payment.account_id).await?;
        let mut holds: Vec<HeldBills> = count
            .holds
            .into_iter()
            .filter(|h| h.until > now_s)
            .collect();
        let held: usize = holds.iter().map(|h| h.bills).sum();
        if held + payment.bills.len() > self.holds.max_held_bills {
            return Err(AppError::TooManyHeldBills {
                limit: self.holds.max_held_bills,
            });
        }
        holds.push(HeldBills {
            payment_id: payment.id.clone(),
            bills: payment.bills.len(),
            until: payment.hold_until.unwrap_or(now_s),
        });
        Ok(HoldCount {
            version: count.version,
            holds,
        })
    }

    /// Records the bank's answer to a charge or confirmation.
    async fn record_answer(
        &self,
        mut payment: Payment,
        answer: Result<GatewayAnswer, GatewayError>,
        now: OffsetDateTime,
    ) -> Result<Payment, AppError> {
        let from = payment.status;
        match answer {
            Ok(GatewayAnswer::Succeeded { reference }) => {
                payment.status = PaymentStatus::Succeeded;
                payment.gateway_reference = Some(reference);
                payment.confirmation_url = None;
                payment.settled_at = Some(now.unix_timestamp());
                self.settle(payment).await
            }
            Ok(GatewayAnswer::Declined { reason }) | Err(GatewayError::Refused(reason)) => {
                payment.status = PaymentStatus::Declined;
                payment.decline_reason = Some(reason);
                payment.confirmation_url = None;
                payment.settled_at = Some(now.unix_timestamp());
                self.settle(payment).await
            }
            Ok(GatewayAnswer::RequiresConfirmation { reference, url }) => {
                payment.status = PaymentStatus::RequiresConfirmation;
                payment.gateway_reference = Some(reference);
                payment.confirmation_url = Some(url);
                self.mark(payment, from).await
            }
            Err(GatewayError::OutcomeUnknown(e)) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "bank's answer lost; the payment waits for reconciliation");
                payment.status = PaymentStatus::Pending;
                self.mark(payment, from).await
            }
        }
    }

    async fn mark(&self, payment: Payment, from: PaymentStatus) -> Result<Payment, AppError> {
        if self.store.mark(&payment, from).await? {
            Ok(payment)
        } else {
            self.current(&payment).await
        }
    }

    async fn current(&self, payment: &Payment) -> Result<Payment, AppError> {
        self.store
            .payment(&payment.account_id, &payment.id)
            .await?
            .ok_or(AppError::NotFound("payment"))
    }

    /// Settles, then (once, by whoever settled) the receipt and the billers' notices.
    async fn settle(&self, payment: Payment) -> Result<Payment, AppError> {
        if !self.store.settle(&payment).await? {
            // Settled by a concurrent confirmation or reconciliation.
            return self.current(&payment).await;
        }
        tracing::info!(payment_id = %payment.id, status = ?payment.status, "payment settled");
        if payment.status == PaymentStatus::Succeeded {
            self.after_success(&payment).await;
        } else {
            self.close(&payment).await;
        }
        Ok(payment)
    }

    /// The receipt by e-mail (best effort) and the billers' notices (kept for
    /// reconciliation until queued).
    async fn after_success(&self, payment: &Payment) {
        self.send_receipt(payment).await;
        match self.notices.queue_notices(&payment.notices()).await {
            Ok(()) => self.close(payment).await,
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "billers' notices not queued; reconciliation queues them");
            }
        }
    }

    async fn close(&self, payment: &Payment) {
        if let Err(e) = self.store.close_reconciliation(payment).await {
            tracing::warn!(payment_id = %payment.id, error = %e, "reconciliation entry not removed; the next run removes it");
        }
    }

    async fn send_receipt(&self, payment: &Payment) {
        let account = match self.store.account(&payment.account_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "receipt not sent: account not read");
                return;
            }
        };
        let Ok(email) = Email::parse("email", &account.email) else {
            return;
        };
        let text = Secret::new(receipt_text(&account, payment));
        match self
            .notifier
            .send_email(&email, RECEIPT_SUBJECT, &text)
            .await
        {
            Ok(()) => metrics::emit(Metric::NoticesSent {
                kind: NoticeKind::Receipt,
                channel: NoticeChannel::Email,
            }),
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "receipt e-mail not sent")
            }
        }
    }

    /// The account a receipt names.
    pub async fn account(&self, account_id: &str) -> Result<StoredAccount, AppError> {
        self.store
            .account(account_id)
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    /// The citizen's own payment.
    pub async fn payment(&self, account_id: &str, id: &str) -> Result<Payment, AppError> {
        self.store
            .payment(account_id, id)
            .await?
            .ok_or(AppError::NotFound("payment"))
    }

    /// Finishes a payment that waited for 3-D Secure.
    pub async fn confirm(
        &self,
        account_id: &str,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Payment, AppError> {
        let payment = self.payment(account_id, id).await?;
        if payment.status != PaymentStatus::RequiresConfirmation {
            return Err(AppError::PaymentNotAwaitingConfirmation);
        }
        // Past its hold the payment no longer has its bills for sure: it is withdrawn
        // (unless the bank says the cardholder confirmed it), not finished.
        let payment = if payment
            .hold_until
            .is_some_and(|until| until <= now.unix_timestamp())
        {
            self.withdraw(payment, now).await?
        } else {
            let answer = self.gateway.confirm(&payment.id).await;
            self.record_answer(payment, answer, now).await?
        };
        payment.count();
        Ok(payment)
    }

    /// Asks the bank about one open payment and settles it; re-queues the billers'
    /// notices of a success that were not queued. `young`: a `processing` payment
    /// created after this (epoch seconds) is left alone (its charge call may still be
    /// in flight).
    async fn reconcile_one(
        &self,
        account_id: &str,
        id: &str,
        now: OffsetDateTime,
        young: i64,
        run: &mut ReconcileRun,
    ) -> Result<(), AppError> {
        let Some(payment) = self.store.payment(account_id, id).await? else {
            tracing::warn!(payment_id = %id, "reconciliation entry without its payment");
            return Ok(());
        };
        // A payment still `processing` may have its charge call in flight; a pending
        // one or one waiting for confirmation has had its answer, whatever its age.
        if payment.status == PaymentStatus::Processing && payment.created_at > young {
            return Ok(());
        }
        run.checked += 1;
        match payment.status {
            PaymentStatus::Succeeded => {
                self.after_success_notices_only(&payment).await;
                return Ok(());
            }
            PaymentStatus::Declined => {
                self.close(&payment).await;
                return Ok(());
            }
            _ => {}
        }
        let hold_passed = payment
            .hold_until
            .is_some_and(|until| until <= now.unix_timestamp());
        let status = match self.gateway.status(&payment.id).await {
            // Never charged (the call did not reach the bank, or the bank lost it):
            // make sure it never will be, then release the bills.
            Ok(GatewayStatus::Unknown) => self.gateway.cancel(&payment.id).await,
            // Waiting for 3-D Secure past its hold: withdrawn, as another payer's
            // request would withdraw it.
            Ok(GatewayStatus::AwaitingConfirmation) if hold_passed => {
                self.gateway.cancel(&payment.id).await
            }
            other => other,
        };
        let answer = match status {
            Ok(GatewayStatus::Succeeded { reference }) => {
                Ok(GatewayAnswer::Succeeded { reference })
            }
            Ok(GatewayStatus::Declined { reason }) => Ok(GatewayAnswer::Declined { reason }),
            Ok(GatewayStatus::AwaitingConfirmation | GatewayStatus::Unknown) => {
                reconciliation_counted(ReconcileOutcome::StillPending);
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "bank not reachable; next run");
                reconciliation_counted(ReconcileOutcome::StillPending);
                return Ok(());
            }
        };
        let settled = self.record_answer(payment, answer, now).await?;
        if settled.status.is_final() {
            run.settled += 1;
        }
        reconciliation_counted(match settled.status {
            PaymentStatus::Succeeded => ReconcileOutcome::Settled,
            PaymentStatus::Declined => ReconcileOutcome::Declined,
            _ => ReconcileOutcome::StillPending,
        });
        Ok(())
    }

    /// A succeeded payment still open for reconciliation: its notices were not queued.
    async fn after_success_notices_only(&self, payment: &Payment) {
        if self.notices.queue_notices(&payment.notices()).await.is_ok() {
            self.close(payment).await;
        }
    }

    /// The archive: payments created in `[from, to)`, filtered, a page after a cursor.
    pub async fn archive(
        &self,
        account_id: &str,
        filter: &ArchiveFilter,
    ) -> Result<Vec<Payment>, AppError> {
        let mut payments: Vec<Payment> = self
            .store
            .account_payments(account_id, filter.from_ms, filter.to_ms)
            .await?
            .into_iter()
            .filter(|p| filter.status.is_none_or(|s| p.status == s))
            .filter(|p| filter.category.is_none_or(|c| p.categories().contains(&c)))
            .collect();
        // Newest first; ids are UUIDv7, ordered by time.
        payments.sort_by(|a, b| b.id.cmp(&a.id));
        if let Some(after) = &filter.after {
            payments.retain(|p| p.id.as_str() < after.as_str());
        }
        payments.truncate(filter.limit.clamp(1, 100));
        Ok(payments)
    }

    pub async fn methods(&self, account_id: &str) -> Result<Vec<SavedMethod>, AppError> {
        Ok(self.store.methods(account_id).await?)
    }

    /// Saves a payment method; it can pay any bill and feed autopays, so a password
    /// alone is not enough: the session must have proved presence lately.
    pub async fn add_method(
        &self,
        account_id: &str,
        method: NewMethod,
        presence: Presence,
        now: OffsetDateTime,
    ) -> Result<SavedMethod, AppError> {
        presence.require()?;
        let too_many = || AppError::TooMany {
            what: "payment methods",
            limit: MAX_METHODS,
        };
        let cap = Cap {
            limit: MAX_METHODS,
            seen: self.store.methods(account_id).await?.len(),
        };
        // Refused before the gateway is asked; the write below holds the cap for good.
        if cap.seen >= cap.limit {
            return Err(too_many());
        }
        let id = format!("pm_{}", uuid::Uuid::new_v4().simple());
        let created_at = now.unix_timestamp();
        let saved = match method {
            NewMethod::Card(token) => {
                let card = self.gateway.save_card(&token).await.map_err(|e| match e {
                    GatewayError::Refused(reason) => AppError::Validation(vec![FieldError::new(
                        "token",
                        "token_refused",
                        format!("Шлюз не принял токен: {reason}"),
                    )]),
                    GatewayError::OutcomeUnknown(m) => AppError::StoreUnavailable(m),
                })?;
                SavedMethod {
                    id,
                    kind: MethodKind::Card,
                    label: format!("{} •••• {}", card.brand, card.last4),
                    brand: Some(card.brand),
                    last4: Some(card.last4),
                    exp_month: Some(card.exp_month),
                    exp_year: Some(card.exp_year),
                    gateway_token: Some(card.reusable_token),
                    phone: None,
                    wallet: None,
                    created_at,
                }
            }
            NewMethod::Mobile(phone) => SavedMethod {
                id,
                kind: MethodKind::Mobile,
                label: mobile_label(phone.e164()),
                brand: None,
                last4: None,
                exp_month: None,
                exp_year: None,
                gateway_token: None,
                phone: Some(phone.e164().to_string()),
                wallet: None,
                created_at,
            },
            NewMethod::Wallet(w) => SavedMethod {
                id,
                kind: MethodKind::Wallet,
                label: wallet_label(&w),
                brand: None,
                last4: None,
                exp_month: None,
                exp_year: None,
                gateway_token: None,
                phone: None,
                wallet: Some(w),
                created_at,
            },
        };
        match self.store.put_method(account_id, &saved, cap).await? {
            CappedAdd::Added => Ok(saved),
            CappedAdd::Full => Err(too_many()),
            // The id is fresh: only a retried write that had landed finds it.
            CappedAdd::AlreadyThere => Ok(saved),
        }
    }

    pub async fn remove_method(&self, account_id: &str, id: &str) -> Result<(), AppError> {
        if self.store.delete_method(account_id, id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("payment method"))
        }
    }

    pub async fn templates(&self, account_id: &str) -> Result<Vec<Template>, AppError> {
        Ok(self.store.templates(account_id).await?)
    }

    pub async fn add_template(
        &self,
        account_id: &str,
        template: &Template,
    ) -> Result<(), AppError> {
        let cap = Cap {
            limit: MAX_TEMPLATES,
            seen: self.store.templates(account_id).await?.len(),
        };
        match self.store.put_template(account_id, template, cap).await? {
            CappedAdd::Added | CappedAdd::AlreadyThere => Ok(()),
            CappedAdd::Full => Err(AppError::TooMany {
                what: "payment templates",
                limit: MAX_TEMPLATES,
            }),
        }
    }

    pub async fn remove_template(&self, account_id: &str, id: &str) -> Result<(), AppError> {
        if self.store.delete_template(account_id, id).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("payment template"))
        }
    }
}

impl<S, G, M, Q> PaymentService<S, G, M, Q>
where
    S: PaymentStore + BillStore + LookupStore + ProfileStore + HouseholdStore + RunStore + Sync,
    G: PaymentGateway + Sync,
    M: Notifier + Sync,
    Q: PaymentNoticeQueue + Sync,
{
    /// Plans a reconciliation run: the first page of every shard of the open payments
    /// created before now, for the queue. `run` names the run (the schedule event).
    pub async fn plan_reconcile(
        &self,
        run: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<ReconcilePage>, AppError> {
        let pages: Vec<ReconcilePage> = Shard::all(RECONCILE_SHARDS)
            .map(|shard| ReconcilePage {
                run: run.to_string(),
                before: now.unix_timestamp() + 1,
                shard,
                after: None,
            })
            .collect();
        self.store
            .open_run(
                ShardedJob::ReconcilePayments,
                run,
                pages.len(),
                now.unix_timestamp(),
            )
            .await?;
        Ok(pages)
    }

    /// Reconciles one page of a shard's open payments, then queues the next page or,
    /// on the shard's last page, marks the shard done. A page that fails comes back
    /// whole: settling a payment twice is settling it once (each settle is conditional
    /// on the state it was read in), and the next page is queued only once it
    /// succeeded.
    pub async fn reconcile_page(
        &self,
        queue: &impl ReconcilePageQueue,
        page: &ReconcilePage,
        page_size: usize,
        now: OffsetDateTime,
        min_age: Duration,
    ) -> Result<ReconcilePageOutcome, AppError> {
        let young = now.unix_timestamp() - i64::try_from(min_age.as_secs()).unwrap_or(0);
        let found = self
            .store
            .open_payments(page.shard, page.before, page.after.as_deref(), page_size)
            .await?;
        let mut outcome = ReconcilePageOutcome::default();
        for (account_id, id) in &found.entries {
            self.reconcile_one(account_id, id, now, young, &mut outcome.run)
                .await?;
        }
        match found.next {
            Some(after) => {
                let next = ReconcilePage {
                    after: Some(after),
                    ..page.clone()
                };
                queue.enqueue_reconcile(std::slice::from_ref(&next)).await?;
            }
            None => {
                outcome.run_completed = self
                    .store
                    .finish_shard(
                        ShardedJob::ReconcilePayments,
                        &page.run,
                        &page.shard.name(),
                        now.unix_timestamp(),
                    )
                    .await?;
            }
        }
        Ok(outcome)
    }
}

/// What a reconciliation run, or a page of it, did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileRun {
    pub checked: usize,
    pub settled: usize,
}

/// What one reconciliation page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcilePageOutcome {
    pub run: ReconcileRun,
    /// This page finished the run's last shard.
    pub run_completed: bool,
}

/// One page of a shard of the open payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenPaymentsPage {
    pub entries: Vec<(String, String)>,
    pub next: Option<String>,
}

/// The queued work of a reconciliation run: a page of one shard of the open payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcilePage {
    pub run: String,
    /// Payments created before this (epoch seconds): the run's start, so that a run
    /// ends however many payments open meanwhile.
    pub before: i64,
    pub shard: Shard,
    /// The last sort key of the previous page.
    pub after: Option<String>,
}

/// Where reconciliation pages are queued.
pub trait ReconcilePageQueue {
    fn enqueue_reconcile(
        &self,
        pages: &[ReconcilePage],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// What an archive page asks for.
#[derive(Debug, Clone)]
pub struct ArchiveFilter {
    pub from_ms: i64,
    pub to_ms: i64,
    pub status: Option<PaymentStatus>,
    pub category: Option<Category>,
    /// The last payment id of the previous page.
    pub after: Option<String>,
    pub limit: usize,
}

/// Delivers one payment notice to its biller; `Err` asks for it again.
fn reconciliation_counted(outcome: ReconcileOutcome) {
    metrics::emit(Metric::Reconciliations { outcome });
}

pub async fn deliver_notice<B: BillerEndpoint>(
    endpoint: &B,
    notice: &PaymentNotice,
    attempt: u32,
) -> Result<(), AppError> {
    endpoint
        .deliver(notice, attempt)
        .await
        .map_err(|e| AppError::StoreUnavailable(format!("biller did not acknowledge: {e}")))
}

pub const RECEIPT_SUBJECT: &str = "Квитанция об оплате";

/// `+79318702901` as `+7 931 ***-**-01`.
pub fn mobile_label(e164: &str) -> String {
    let national = e164.strip_prefix("+7").unwrap_or(e164);
    if national.len() == 10 {
        format!("Телефон +7 {} ***-**-{}", &national[..3], &national[8..])
    } else {
        "Телефон".into()
    }
}

/// `410011234567890` as `Кошелёк 41001•••7890`.
pub fn wallet_label(wallet: &str) -> String {
    let tail = &wallet[wallet.len().saturating_sub(4)..];
    format!("Кошелёк 41001•••{tail}")
}

/// The receipt: payer, each bill with its payee's requisites, amounts, time, reference.
pub fn receipt(account: &StoredAccount, payment: &Payment) -> Value {
    let bills: Vec<Value> = payment
        .bills
        .iter()
        .map(|b| {
            serde_json::json!({
                "uin": b.uin,
                "amount": b.amount,
                "purpose": b.purpose,
                "kbk": b.kbk,
                "oktmo": b.oktmo,
                "payee": b.payee,
            })
        })
        .collect();
    let payer = [
        account.last_name.as_str(),
        account.first_name.as_str(),
        account.middle_name.as_deref().unwrap_or(""),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ");
    serde_json::json!({
        "payment_id": payment.id,
        "payer": payer,
        "bills": bills,
        "amount": payment.amount,
        "commission": payment.commission,
        "total": payment.total,
        "method": payment.method.label,
        "paid_at": payment.settled_at.map(crate::services::rfc3339),
        "gateway_reference": payment.gateway_reference,
    })
}

fn receipt_text(account: &StoredAccount, payment: &Payment) -> String {
    let r = receipt(account, payment);
    let mut lines = vec![
        format!("Платёж {} выполнен.", payment.id),
        format!("Плательщик: {}", r["payer"].as_str().unwrap_or("")),
    ];
    for b in &payment.bills {
        lines.push(format!(
            "УИН {}: {} — {}. Получатель: {}, ИНН {}, КПП {}, БИК {}, счёт {}. КБК {}, ОКТМО {}.",
            b.uin,
            roubles(b.amount),
            b.purpose,
            b.payee.name,
            b.payee.inn,
            b.payee.kpp,
            b.payee.bic,
            b.payee.account,
            b.kbk,
            b.oktmo
        ));
    }
    lines.push(format!("Сумма: {}", roubles(payment.amount)));
    lines.push(format!("Комиссия: {}", roubles(payment.commission)));
    lines.push(format!("Итого: {}", roubles(payment.total)));
    lines.push(format!("Способ оплаты: {}", payment.method.label));
    if let Some(t) = payment.settled_at {
        lines.push(format!(
            "Время: {}",
            crate::services::identity::at(t).to_offset(MOSCOW)
        ));
    }
    if let Some(reference) = &payment.gateway_reference {
        lines.push(format!("Номер операции в банке: {reference}"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn codes(err: AppError) -> Vec<(String, &'static str)> {
        match err {
            AppError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
            AppError::CardNumberNotAccepted(path) => vec![(path, "card_number_not_accepted")],
            other => panic!("{other:?}"),
        }
    }

    const UIN: &str = "18810177200000012341";

    fn payment(kind: MethodKind, saved: bool, origin: &str, status: PaymentStatus) -> Payment {
        Payment {
            id: "p1".into(),
            account_id: "a1".into(),
            bills: Vec::new(),
            amount: 100,
            commission: 0,
            total: 100,
            method: MethodSummary {
                kind,
                label: "Visa •••• 4242".into(),
                saved_method_id: saved.then(|| "m1".to_string()),
            },
            status,
            gateway_reference: None,
            confirmation_url: None,
            decline_reason: None,
            created_at: 0,
            settled_at: None,
            request_hash: String::new(),
            origin: origin.into(),
            hold_until: None,
        }
    }

    #[test]
    fn a_payment_is_counted_by_method_and_by_what_the_payer_was_told() {
        let method = |kind, saved, origin| {
            payment(kind, saved, origin, PaymentStatus::Succeeded).metric_method()
        };
        assert_eq!(method(MethodKind::Card, false, "citizen"), "card");
        assert_eq!(method(MethodKind::Card, true, "citizen"), "saved_card");
        assert_eq!(method(MethodKind::ApplePay, false, "citizen"), "apple_pay");
        assert_eq!(method(MethodKind::Mobile, true, "citizen"), "saved_mobile");
        assert_eq!(method(MethodKind::Wallet, false, "citizen"), "wallet");
        // An autopay pays with a saved card, and is counted as what it is.
        assert_eq!(method(MethodKind::Card, true, "autopay:x1"), "autopay");

        let outcome = |status| payment(MethodKind::Card, false, "citizen", status).metric_outcome();
        assert_eq!(outcome(PaymentStatus::Succeeded), PaymentOutcome::Succeeded);
        assert_eq!(outcome(PaymentStatus::Declined), PaymentOutcome::Declined);
        assert_eq!(
            outcome(PaymentStatus::RequiresConfirmation),
            PaymentOutcome::Pending
        );
        assert_eq!(outcome(PaymentStatus::Pending), PaymentOutcome::Failed);

        let capture = metrics::Capture::start();
        payment(
            MethodKind::Card,
            true,
            "autopay:x1",
            PaymentStatus::Declined,
        )
        .count();
        assert_eq!(
            capture.counted("Payments"),
            [metrics::dims(&[
                ("Method", "autopay"),
                ("Outcome", "declined")
            ])]
        );
    }

    #[test]
    fn a_payment_request_is_checked_field_by_field() {
        let ok = PayRequest::parse(&object(json!({
            "uins": [UIN], "method": {"type": "card", "token": "tok_abc"}
        })))
        .unwrap();
        assert_eq!(ok.uins, [UIN]);
        let errors = codes(
            PayRequest::parse(&object(json!({
                "uins": [UIN, UIN, "123"], "method": {"type": "cash"}, "tip": 1
            })))
            .unwrap_err(),
        );
        for expected in [
            ("/uins/1", "duplicate_uin"),
            ("/uins/2", "uin_format"),
            ("/method/type", "invalid_method_type"),
            ("/tip", "unknown_field"),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|(f, c)| f == expected.0 && *c == expected.1),
                "{expected:?} in {errors:?}"
            );
        }
    }

    #[test]
    fn apple_pay_pays_one_bill_only() {
        let errors = codes(
            PayRequest::parse(&object(json!({
                "uins": [UIN, "18810177200000012368"],
                "method": {"type": "apple_pay", "payment_data": "eyJk"}
            })))
            .unwrap_err(),
        );
        assert!(errors.contains(&("/method/type".to_string(), "apple_pay_single_bill")));
    }

    #[test]
    fn card_numbers_are_refused_wherever_they_are() {
        let errors = codes(
            PayRequest::parse(&object(json!({
                "uins": [UIN], "method": {"type": "card", "token": "4242 4242 4242 4242"}
            })))
            .unwrap_err(),
        );
        assert_eq!(
            errors,
            [("/method/token".to_string(), "card_number_not_accepted")]
        );
        assert!(NewMethod::parse(&object(
            json!({"type": "card", "token": "tok_x", "pan": "4000000000000002"})
        ))
        .is_err());
        // A wallet number is not mistaken for a card.
        assert!(NewMethod::parse(&object(
            json!({"type": "wallet", "wallet": "4100112345678"})
        ))
        .is_ok());
    }

    #[test]
    fn idempotency_keys() {
        assert!(check_idempotency_key(Some("a1b2c3d4")).is_ok());
        assert!(check_idempotency_key(Some("short")).is_err());
        assert!(check_idempotency_key(Some("has space in it")).is_err());
        assert!(check_idempotency_key(None).is_err());
    }

    #[test]
    fn commissions_and_labels() {
        assert_eq!(commission(MethodKind::Card, 150_000), 0);
        assert_eq!(commission(MethodKind::Mobile, 150_000), 1_500);
        assert_eq!(commission(MethodKind::Mobile, 1_000), 100);
        assert_eq!(mobile_label("+79318702901"), "Телефон +7 931 ***-**-01");
        assert_eq!(wallet_label("410011234567890"), "Кошелёк 41001•••7890");
    }

    #[test]
    fn templates_are_bills_or_a_payee() {
        assert!(Template::parse(&object(json!({"name": "Садик", "uins": [UIN]})), 0).is_ok());
        let errors = codes(Template::parse(&object(json!({"name": "Пусто"})), 0).unwrap_err());
        assert_eq!(errors, [("".to_string(), "template_empty")]);
        let errors = codes(
            Template::parse(
                &object(json!({"name": "Оба", "uins": [UIN], "purpose": "Взнос"})),
                0,
            )
            .unwrap_err(),
        );
        assert!(errors.iter().any(|(_, c)| *c == "template_ambiguous"));
    }

    #[test]
    fn template_members_are_not_nullable() {
        let errors =
            codes(Template::parse(&object(json!({"name": "Садик", "uins": null})), 0).unwrap_err());
        assert_eq!(errors, [("/uins".to_string(), "invalid_type")]);
        let errors = codes(
            Template::parse(
                &object(json!({"name": "Взнос", "uins": null, "purpose": "Взнос",
                               "payee": {"name": "Фонд", "inn": "7701090559", "kpp": "770101001",
                                         "bic": "044525000", "account": "40601810245253000002"}})),
                0,
            )
            .unwrap_err(),
        );
        assert_eq!(errors, [("/uins".to_string(), "invalid_type")]);
        let errors = codes(
            Template::parse(
                &object(json!({"name": "Садик", "uins": [UIN], "payee": null})),
                0,
            )
            .unwrap_err(),
        );
        assert_eq!(errors, [("/payee".to_string(), "invalid_type")]);
    }
}
