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

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::config::HoldLimits;
use crate::crypto::{Hasher, Identifier};
use crate::domain::roubles;
use crate::domain::Category;
use crate::domain::Payee;
use crate::domain::{
    find_card_number, AccountId, BillerId, Email, MethodId, OrganisationId, Owner, PaymentId,
    Phone, TemplateId, Uin,
};
use crate::error::{AppError, FieldError};
use crate::json::{text, Reader};
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind, PaymentOutcome, ReconcileOutcome};
use crate::redact::Secret;
use crate::services::bills::{BillStore, LookupLimit, LookupStore};
use crate::services::charges::{ChargeStatus, StoredCharge};
use crate::services::codes::Notifier;
use crate::services::household::holdings::holdings_of;
use crate::services::household::HouseholdStore;
use crate::services::identity::{Presence, StoredAccount};
use crate::services::inbox::InboxStore;
use crate::services::organisations::{AuditEntry, OrganisationStore};
use crate::services::profile::ProfileStore;
use crate::services::runs::{continue_shard, Run, RunStore, Shard, ShardedJob};
use crate::services::{found_or_not, secs, Cap, CappedAdd, StoreError, MOSCOW};
use crate::validation::{invalid_field, validated};

mod bank_notification;
mod biller_notices;
mod catalogue;
mod free;
mod methods;
mod organisation;
mod pay;
mod receipt;
mod reconcile;
mod refund;
mod request;
mod template_pay;
pub use bank_notification::*;
pub use biller_notices::*;
pub use catalogue::*;
pub use free::*;
pub use organisation::*;
pub use receipt::*;
pub use reconcile::*;
pub use refund::*;
pub use request::*;
pub use template_pay::*;

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
    pub uin: Uin,
    pub biller_id: BillerId,
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
    pub saved_method_id: Option<MethodId>,
}

impl MethodSummary {
    /// A method given with the payment itself rather than one of the account's saved
    /// methods: the four such kinds differ only in kind and label.
    pub(crate) fn one_off(kind: MethodKind, label: impl Into<String>) -> Self {
        Self {
            kind,
            label: label.into(),
            saved_method_id: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    /// The citizen who paid: the payer, or the member who paid for an organisation.
    pub account_id: AccountId,
    /// The organisation paid for, whose payment it is (kept under its key); absent for a
    /// citizen's own payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<OrganisationId>,
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
    /// What was given back of it, by bill (absent until the first refund).
    #[serde(default, skip_serializing_if = "RefundTotals::is_empty")]
    pub refunds: RefundTotals,
}

impl Payment {
    /// Whose payment it is: the organisation's it was made for, else the citizen's.
    pub fn owner(&self) -> Owner {
        match &self.organisation_id {
            Some(org) => Owner::Organisation(org.clone()),
            None => Owner::Citizen(self.account_id.clone()),
        }
    }

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
                refund_id: None,
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

/// What the bank is asked to give back of a charged order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundOrder<'a> {
    /// The payment's order id (our payment id).
    pub order: &'a str,
    /// The bank's reference of the charge (the payment's gateway reference).
    pub reference: &'a str,
    /// Kopecks to give back now, > 0.
    pub amount: u64,
    /// Our refund id: asking again with it never pays back twice.
    pub refund_id: &'a str,
}

/// The bank's answer to a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundAnswer {
    /// The money is on its way back; `reference` is the bank's reference of the refund.
    Refunded { reference: String },
    /// The bank will not give it back (more than remains, the order is not charged).
    Declined { reason: String },
}

#[trait_variant::make(Send)]
pub trait PaymentGateway: Sync {
    /// Charges `amount` kopecks for `order` (at most once per order, however often asked).
    async fn charge(
        &self,
        order: &str,
        amount: u64,
        method: &GatewayMethod,
    ) -> Result<GatewayAnswer, GatewayError>;

    /// Finishes an order that waited for the cardholder's confirmation.
    async fn confirm(&self, order: &str) -> Result<GatewayAnswer, GatewayError>;

    async fn status(&self, order: &str) -> Result<GatewayStatus, GatewayError>;

    /// Makes sure an order the bank has not seen, or one still waiting for the
    /// cardholder's confirmation, is never charged; answers what the bank knows of it
    /// afterwards (`Declined` if it was cancelled now, `Succeeded` if the cardholder
    /// confirmed it first).
    async fn cancel(&self, order: &str) -> Result<GatewayStatus, GatewayError>;

    /// Turns a one-time card token into a saved card.
    async fn save_card(&self, one_time_token: &str) -> Result<SavedCard, GatewayError>;

    /// Gives back part or all of a charged order, at most once per refund id however
    /// often asked (asking again with the same id answers what became of it), and never
    /// more than remains of the charge.
    async fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError>;
}

/// A notice to a biller that one of its bills was paid (квитирование), or that part of
/// what it took was given back (`refund_id` set: `amount` is the refund's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentNotice {
    pub payment_id: PaymentId,
    pub uin: Uin,
    pub biller_id: BillerId,
    pub amount: u64,
    pub paid_at: i64,
    pub gateway_reference: String,
    /// A refund notice's refund; absent from a paid-bill notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<crate::domain::RefundId>,
}

impl PaymentNotice {
    /// `payment` or `refund`.
    pub fn kind(&self) -> &'static str {
        if self.refund_id.is_some() {
            "refund"
        } else {
            "payment"
        }
    }

    /// What tells one notice from another of the same bill: the UIN, the payment and a
    /// refund notice's refund.
    pub fn record_key(&self) -> String {
        match &self.refund_id {
            Some(refund) => format!("{}#{}#{}", self.uin.as_str(), self.payment_id, refund),
            None => format!("{}#{}", self.uin.as_str(), self.payment_id),
        }
    }
}

#[trait_variant::make(Send)]
pub trait PaymentNoticeQueue: Sync {
    async fn queue_notices(&self, notices: &[PaymentNotice]) -> Result<(), StoreError>;
}

/// Where payment notices end up: the biller's system.
#[trait_variant::make(Send)]
pub trait BillerEndpoint {
    /// Delivers a notice; `Err`: try again later.
    async fn deliver(&self, notice: &PaymentNotice, attempt: u32) -> Result<(), StoreError>;
}

/// A saved method, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMethod {
    pub id: MethodId,
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
    pub id: TemplateId,
    pub name: String,
    pub uins: Vec<Uin>,
    pub payee: Option<Payee>,
    pub purpose: Option<String>,
    pub created_at: i64,
    /// A payee of the catalogue with its fields and amount, paid by the template.
    #[serde(default)]
    pub payee_payment: Option<PayeePayment>,
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
        validated(
            Self {
                id: TemplateId::new(),
                name: name.unwrap_or_default(),
                uins,
                payee,
                purpose,
                created_at: now,
                payee_payment: None,
            },
            errors,
        )
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
    BillerRevoked(BillerId),
    /// The account's held bills changed after they were read (another payment opened
    /// or settled).
    HoldsChanged,
}

/// A payment to open as the store takes it: the payment, the hash of its idempotency key
/// and when the key is forgotten, the version of each bill as it was read and the
/// account's hold count as it was read. One value, so that the service, the store and
/// its double name the opening's parts the same way.
#[derive(Debug, Clone, Copy)]
pub struct PaymentOpening<'a> {
    pub payment: &'a Payment,
    pub key_hash: &'a str,
    pub key_expires_at: i64,
    pub bill_versions: &'a [(Uin, u64)],
    pub holds: &'a HoldCount,
}

/// One payment of an account that holds bills, as the account's hold count keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBills {
    pub payment_id: PaymentId,
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

#[trait_variant::make(Send)]
pub trait PaymentStore {
    /// The payment that holds a bill or paid it, if any.
    async fn bill_payment(&self, uin: &Uin) -> Result<Option<PaymentId>, StoreError>;

    /// The payment an idempotency key opened, and the hash of its request.
    async fn idempotency(&self, key_hash: &str) -> Result<Option<(PaymentId, String)>, StoreError>;

    /// One of the owner's payments.
    async fn payment(&self, owner: &Owner, id: &PaymentId) -> Result<Option<Payment>, StoreError>;

    /// The bills the owner's payments hold, read consistently.
    async fn hold_count(&self, owner: &Owner) -> Result<HoldCount, StoreError>;

    /// The idempotency record, the payment, its reconciliation entry, the account's hold
    /// count (`holds`, on the version read) and the bills' locks (each on the version
    /// read), in one transaction.
    async fn open_payment(
        &self,
        opening: PaymentOpening<'_>,
    ) -> Result<Result<(), OpenRefusal>, StoreError>;

    /// Records a state that is not final (requires confirmation, pending), if the payment
    /// is still in `from`.
    async fn mark(&self, payment: &Payment, from: PaymentStatus) -> Result<bool, StoreError>;

    /// Settles a payment in one transaction: succeeded with every bill paid, or declined
    /// with every lock released. `false`: it was settled before.
    async fn settle(&self, payment: &Payment) -> Result<bool, StoreError>;

    /// Removes the reconciliation entry once nothing is left to do for a payment.
    async fn close_reconciliation(&self, payment: &Payment) -> Result<(), StoreError>;

    /// One page of (owner, payment), at most `limit`, of the open payments (those with
    /// a reconciliation entry) of `page`'s shard created before its `before` (epoch
    /// seconds), oldest first, after its cursor; and the next page's cursor, if any.
    async fn open_payments(
        &self,
        page: &ReconcilePage,
        limit: usize,
    ) -> Result<OpenPaymentsPage, StoreError>;

    /// The owner's payments created in `[from, to)` (Unix ms), newest first.
    async fn owner_payments(
        &self,
        owner: &Owner,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Payment>, StoreError>;

    async fn account(&self, account_id: &AccountId) -> Result<Option<StoredAccount>, StoreError>;

    /// The owner's saved methods: a citizen's, or an organisation's.
    async fn methods(&self, owner: &Owner) -> Result<Vec<SavedMethod>, StoreError>;

    /// Saves a new method if the owner stays within `cap`, with an organisation's audit
    /// entry (`audit`) in the same transaction.
    async fn put_method(
        &self,
        owner: &Owner,
        method: &SavedMethod,
        cap: Cap,
        audit: Option<&AuditEntry>,
    ) -> Result<CappedAdd, StoreError>;

    async fn delete_method(
        &self,
        owner: &Owner,
        id: &MethodId,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError>;

    async fn templates(&self, owner: &Owner) -> Result<Vec<Template>, StoreError>;

    /// Saves a new template if the owner stays within `cap` (and `audit`, as for methods).
    async fn put_template(
        &self,
        owner: &Owner,
        template: &Template,
        cap: Cap,
        audit: Option<&AuditEntry>,
    ) -> Result<CappedAdd, StoreError>;

    async fn delete_template(
        &self,
        owner: &Owner,
        id: &TemplateId,
        audit: Option<&AuditEntry>,
    ) -> Result<bool, StoreError>;
}

/// The stores a payment service works on, named once for its impl blocks.
pub trait PaymentStores:
    PaymentStore
    + BillStore
    + LookupStore
    + ProfileStore
    + HouseholdStore
    + OrganisationStore
    + InboxStore
    + Sync
{
}

impl<T> PaymentStores for T where
    T: PaymentStore
        + BillStore
        + LookupStore
        + ProfileStore
        + HouseholdStore
        + OrganisationStore
        + InboxStore
        + Sync
{
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

/// Times opening a payment reads the account's hold count again after a parallel
/// opening or settling moved it: each round lets at least one of them through, so this
/// covers far more parallel requests than an account makes.
const HOLD_RACE_RETRIES: usize = 64;

impl<S: PaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
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
}

#[cfg(test)]
mod organisation_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
