//! Refunds: a biller (of its own bills) or an administrator gives back part or all of
//! what a paid bill took, never more than it took, never twice.
//!
//! - A refund names the payment, the bill (UIN) of it and the kopecks to give back, and is
//!   asked for with an `Idempotency-Key`: the same key and body give the same refund.
//! - One DynamoDB transaction opens it: the key's record, the refund (`requested`) and the
//!   payment with the amount counted as being refunded, on the condition that the
//!   payment's refund version is still the one read; two refunds racing for the remainder
//!   cannot both pass, the loser reads again and is refused if too little is left.
//! - The bank is asked with the refund's id, so that asking again never gives back twice.
//!   Its answer settles the refund in a second transaction (`succeeded`: the amount moves
//!   to the refunded total; `declined`: it is released). A lost answer leaves the refund
//!   `requested`, its amount held; the same request again asks the bank again with the
//!   same refund id.
//! - After success: a receipt e-mail to the payer.
//!
//! States: `requested → succeeded | declined` ([`RefundState::can_become`]).

use super::*;
use crate::domain::RefundId;
use crate::services::inbox::{self, Delivery, Message, MessageCategory};

/// Times a refund reads its payment again after another refund of it moved it.
const REFUND_RETRIES: usize = 16;
/// Longest reason of a refund, in characters.
pub const MAX_REFUND_REASON_CHARS: usize = 300;
pub const REFUND_RECEIPT_SUBJECT: &str = "Возврат платежа";

/// Where a refund is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundState {
    /// Counted against the payment; the bank is being asked (or its answer was lost).
    Requested,
    /// The bank gave the money back.
    Succeeded,
    /// The bank would not; nothing was given back.
    Declined,
}

impl RefundState {
    /// The refund graph: `requested → succeeded | declined`, nothing else.
    pub fn can_become(self, next: RefundState) -> bool {
        matches!(
            (self, next),
            (
                RefundState::Requested,
                RefundState::Succeeded | RefundState::Declined
            )
        )
    }
}

/// Who asks for a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refunder {
    /// A biller, of its own bills only.
    Biller(BillerId),
    /// An administrator, of any bill.
    Admin,
}

impl Refunder {
    /// How the refund records who asked: `biller:{id}` or `admin`.
    pub fn label(&self) -> String {
        match self {
            Refunder::Biller(id) => format!("biller:{id}"),
            Refunder::Admin => "admin".into(),
        }
    }

    fn may_refund(&self, bill: &PaidBill) -> bool {
        match self {
            Refunder::Biller(id) => bill.biller_id == *id,
            Refunder::Admin => true,
        }
    }
}

/// What a refund asks for, as read from a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub uin: Uin,
    /// Kopecks, > 0.
    pub amount: u64,
    pub reason: String,
}

impl RefundRequest {
    /// `{"uin", "amount", "reason"}`, every problem with its field path.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &["uin", "amount", "reason"]);
        let uin = r.required(body, "uin", "", Uin::parse);
        let reason = r.required(body, "reason", "", |path, raw| {
            crate::domain::free_text(path, raw, MAX_REFUND_REASON_CHARS, false)
        });
        let amount = match body.get("amount") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new("/amount", "required", "Обязательное поле"));
                None
            }
            Some(Value::Number(n)) => match n.as_u64() {
                Some(a) if a > 0 => Some(a),
                _ => {
                    errors.push(FieldError::new(
                        "/amount",
                        "invalid_amount",
                        "Сумма возврата — целое число копеек больше нуля",
                    ));
                    None
                }
            },
            Some(_) => {
                errors.push(FieldError::new(
                    "/amount",
                    "invalid_type",
                    "Ожидается целое число копеек",
                ));
                None
            }
        };
        match (uin, amount, reason) {
            (Some(uin), Some(amount), Some(reason)) if errors.is_empty() => Ok(Self {
                uin,
                amount,
                reason,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }

    fn canonical(&self) -> String {
        format!("{}|{}|{}", self.uin.as_str(), self.amount, self.reason)
    }
}

/// A refund, as stored under its payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// Also the refund id the bank is asked with.
    pub id: RefundId,
    pub payment_id: PaymentId,
    /// The payer (the member who paid, for an organisation).
    pub account_id: AccountId,
    /// The organisation paid for: the payment and its refunds are in its partition, not
    /// the member's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<OrganisationId>,
    /// The bill given back, and whose bill it is.
    pub uin: Uin,
    pub biller_id: BillerId,
    /// Kopecks, > 0.
    pub amount: u64,
    /// Why, in the refunder's words; the payer reads it in the receipt.
    pub reason: String,
    pub state: RefundState,
    /// `biller:{id}` or `admin`.
    pub requested_by: String,
    /// The bank's reference of the refund, once it succeeded.
    pub bank_reference: Option<String>,
    /// The bank's reason, once declined.
    pub decline_reason: Option<String>,
    /// Unix seconds of the opening, and of the bank's answer.
    pub created_at: i64,
    pub settled_at: Option<i64>,
    /// Keyed hash of the request that opened it, for idempotent replays.
    pub request_hash: String,
}

/// What a bill of a payment has had given back, and what is being given back now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillRefunds {
    pub uin: Uin,
    /// Kopecks the bank gave back.
    pub refunded: u64,
    /// Kopecks of refunds still `requested`.
    pub pending: u64,
}

/// A payment's refunds in sum, kept in the payment: rewritten with each refund on the
/// condition that `version` is still the one read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundTotals {
    /// 0 before the first refund.
    pub version: u64,
    pub bills: Vec<BillRefunds>,
}

impl RefundTotals {
    pub fn is_empty(&self) -> bool {
        self.version == 0 && self.bills.is_empty()
    }

    /// Kopecks given back over all bills.
    pub fn refunded(&self) -> u64 {
        self.bills.iter().map(|b| b.refunded).sum()
    }

    fn of(&self, uin: &Uin) -> (u64, u64) {
        self.bills
            .iter()
            .find(|b| b.uin == *uin)
            .map_or((0, 0), |b| (b.refunded, b.pending))
    }

    fn entry(&mut self, uin: &Uin) -> &mut BillRefunds {
        if let Some(i) = self.bills.iter().position(|b| b.uin == *uin) {
            return &mut self.bills[i];
        }
        self.bills.push(BillRefunds {
            uin: uin.clone(),
            refunded: 0,
            pending: 0,
        });
        let last = self.bills.len() - 1;
        &mut self.bills[last]
    }
}

impl Refund {
    /// Whose payment it gives back of: where the payment and its refunds are kept.
    pub fn owner(&self) -> Owner {
        match &self.organisation_id {
            Some(org) => Owner::Organisation(org.clone()),
            None => Owner::Citizen(self.account_id.clone()),
        }
    }

    /// The refund as the API shows it (to the biller, the administrator and the payer).
    pub fn view(&self) -> Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "payment_id": self.payment_id,
            "uin": self.uin,
            "amount": self.amount,
            "reason": self.reason,
            "state": self.state,
            "created_at": crate::services::rfc3339(self.created_at),
        });
        if let Some(at) = self.settled_at {
            v["settled_at"] = Value::String(crate::services::rfc3339(at));
        }
        if let Some(r) = &self.bank_reference {
            v["bank_reference"] = Value::String(r.clone());
        }
        if let Some(r) = &self.decline_reason {
            v["decline_reason"] = Value::String(r.clone());
        }
        v
    }
}

/// Why opening a refund was refused by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRefusal {
    /// The idempotency key was taken meanwhile (a concurrent request with it).
    KeyTaken,
    /// The payment's refunds moved after it was read.
    PaymentChanged,
}

/// How settling a refund went in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundSettling {
    Settled,
    /// It was settled before (a concurrent request with the same key).
    AlreadySettled,
    /// The payment's refunds moved after it was read.
    PaymentChanged,
}

/// A refund to open as the store takes it: the refund, the payment with the refund
/// counted (its `refunds.version` one past the version read), the hash of the key and
/// when the key is forgotten.
#[derive(Debug, Clone, Copy)]
pub struct RefundOpening<'a> {
    pub refund: &'a Refund,
    pub payment: &'a Payment,
    pub key_hash: &'a str,
    pub key_expires_at: i64,
}

#[trait_variant::make(Send)]
pub trait RefundStore {
    /// Whose payment paid a bill, and which, if it is paid.
    async fn paid_by(&self, uin: &Uin) -> Result<Option<(Owner, PaymentId)>, StoreError>;

    /// The refund an idempotency key opened (its payment's owner, the payment, the
    /// refund), and the hash of its request.
    async fn refund_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<(Owner, PaymentId, RefundId, String)>, StoreError>;

    /// A payment's refunds, oldest first.
    async fn refunds(
        &self,
        owner: &Owner,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError>;

    /// The refunds of a payment whatever its account (a biller's listing), oldest first.
    async fn payment_refunds(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError>;

    /// The key's record, the refund and the payment (on the refund version read), in one
    /// transaction.
    async fn open_refund(
        &self,
        opening: RefundOpening<'_>,
    ) -> Result<Result<(), RefundRefusal>, StoreError>;

    /// The refund in its final state (if it is still `requested`) and the payment with
    /// its totals moved (on the refund version read), in one transaction.
    async fn settle_refund(
        &self,
        refund: &Refund,
        payment: &Payment,
    ) -> Result<RefundSettling, StoreError>;
}

/// What a refund request led to.
#[derive(Debug, Clone)]
pub struct RefundOutcome {
    pub refund: Refund,
    /// The answer repeats an earlier request with the same key.
    pub replayed: bool,
}

/// The refund e-mailed to the payer.
fn refund_receipt_text(payment: &Payment, refund: &Refund) -> String {
    let mut lines = vec![
        format!("Возврат по платежу {} выполнен.", payment.id),
        format!(
            "УИН {}: возвращено {}.",
            refund.uin.as_str(),
            roubles(refund.amount)
        ),
        format!("Основание: {}", refund.reason),
        format!(
            "Всего возвращено по платежу: {}",
            roubles(payment.refunds.refunded())
        ),
        format!("Способ оплаты: {}", payment.method.label),
    ];
    if let Some(reference) = &refund.bank_reference {
        lines.push(format!("Номер операции в банке: {reference}"));
    }
    lines.join("\n")
}

impl<S, G, M, Q> PaymentService<S, G, M, Q>
where
    S: PaymentStores + RefundStore,
    G: PaymentGateway,
    M: Notifier,
    Q: PaymentNoticeQueue,
{
    /// Gives back `ask.amount` of bill `ask.uin` of payment `payment_id`, once per
    /// idempotency key. A payment the refunder may not refund is not found.
    pub async fn refund(
        &self,
        by: &Refunder,
        payment_id: &PaymentId,
        key: &str,
        ask: &RefundRequest,
        now: OffsetDateTime,
    ) -> Result<RefundOutcome, AppError> {
        let scope = by.label();
        let key_hash = self
            .hasher
            .identifier(Identifier::IdempotencyKey, &["refund", &scope, key]);
        let request_hash = self.hasher.identifier(
            Identifier::PaymentRequest,
            &["refund", &scope, payment_id.as_str(), &ask.canonical()],
        );
        for _ in 0..REFUND_RETRIES {
            if let Some(outcome) = self.refund_replay(&key_hash, &request_hash, now).await? {
                return Ok(outcome);
            }
            let payment = self.refundable(by, payment_id, &ask.uin).await?;
            let Some(bill) = payment.bills.iter().find(|b| b.uin == ask.uin) else {
                return Err(AppError::NotFound("payment"));
            };
            let (refunded, pending) = payment.refunds.of(&ask.uin);
            let remaining = bill.amount.saturating_sub(refunded + pending);
            if ask.amount > remaining {
                return Err(invalid_field(
                    "/amount",
                    "refund_exceeds_remaining",
                    format!(
                        "Вернуть можно не больше {} ({} уже возвращено или возвращается)",
                        roubles(remaining),
                        roubles(refunded + pending)
                    ),
                ));
            }
            let refund = Refund {
                id: RefundId::new(),
                payment_id: payment.id.clone(),
                account_id: payment.account_id.clone(),
                organisation_id: payment.organisation_id.clone(),
                uin: ask.uin.clone(),
                biller_id: bill.biller_id.clone(),
                amount: ask.amount,
                reason: ask.reason.clone(),
                state: RefundState::Requested,
                requested_by: scope.clone(),
                bank_reference: None,
                decline_reason: None,
                created_at: now.unix_timestamp(),
                settled_at: None,
                request_hash: request_hash.clone(),
            };
            let mut counted = payment.clone();
            counted.refunds.entry(&ask.uin).pending += ask.amount;
            counted.refunds.version += 1;
            let opening = RefundOpening {
                refund: &refund,
                payment: &counted,
                key_hash: &key_hash,
                key_expires_at: now.unix_timestamp() + IDEMPOTENCY_TTL_SECS,
            };
            match self.store.open_refund(opening).await? {
                Ok(()) => {
                    let refund = self.ask_bank(refund, now).await?;
                    return Ok(RefundOutcome {
                        refund,
                        replayed: false,
                    });
                }
                // Another request with this key, or another refund of this payment, got
                // there first: read again.
                Err(RefundRefusal::KeyTaken | RefundRefusal::PaymentChanged) => continue,
            }
        }
        Err(AppError::StoreUnavailable(
            "the payment's refunds kept changing".into(),
        ))
    }

    /// The refunds of a payment a biller may see: of its own bills.
    pub async fn biller_refunds(
        &self,
        biller: &BillerId,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, AppError> {
        let mut refunds = self.store.payment_refunds(payment_id).await?;
        refunds.retain(|r| r.biller_id == *biller);
        Ok(refunds)
    }

    /// The refunds of one of the caller's payments (read with the payment, whose
    /// reading checked the caller may see it).
    pub async fn refunds_of(&self, payment: &Payment) -> Result<Vec<Refund>, AppError> {
        Ok(self.store.refunds(&payment.owner(), &payment.id).await?)
    }

    /// The paid payment of a bill that the refunder may refund; anything else is not
    /// found, alike, so that a biller learns nothing of another's payments.
    async fn refundable(
        &self,
        by: &Refunder,
        payment_id: &PaymentId,
        uin: &Uin,
    ) -> Result<Payment, AppError> {
        let not_found = || AppError::NotFound("payment");
        let Some((owner, paid_by)) = self.store.paid_by(uin).await? else {
            return Err(not_found());
        };
        if paid_by != *payment_id {
            return Err(not_found());
        }
        let payment = self
            .store
            .payment(&owner, payment_id)
            .await?
            .ok_or_else(not_found)?;
        let allowed = payment.status == PaymentStatus::Succeeded
            && payment
                .bills
                .iter()
                .any(|b| b.uin == *uin && by.may_refund(b));
        if allowed {
            Ok(payment)
        } else {
            Err(not_found())
        }
    }

    /// The refund an earlier request with this key opened, asked of the bank again if its
    /// answer was lost.
    async fn refund_replay(
        &self,
        key_hash: &str,
        request_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Option<RefundOutcome>, AppError> {
        let Some((owner, payment_id, refund_id, stored_hash)) =
            self.store.refund_key(key_hash).await?
        else {
            return Ok(None);
        };
        if stored_hash != request_hash {
            return Err(AppError::IdempotencyKeyReused);
        }
        let refund = self
            .store
            .refunds(&owner, &payment_id)
            .await?
            .into_iter()
            .find(|r| r.id == refund_id)
            .ok_or_else(|| AppError::Internal("a refund key without its refund".into()))?;
        let refund = match refund.state {
            RefundState::Requested => self.ask_bank(refund, now).await?,
            _ => refund,
        };
        Ok(Some(RefundOutcome {
            refund,
            replayed: true,
        }))
    }

    /// Asks the bank to give a requested refund back and settles it by the answer; a lost
    /// answer leaves it requested.
    async fn ask_bank(&self, refund: Refund, now: OffsetDateTime) -> Result<Refund, AppError> {
        let payment = self
            .store
            .payment(&refund.owner(), &refund.payment_id)
            .await?
            .ok_or_else(|| AppError::Internal("a refund without its payment".into()))?;
        let reference = payment.gateway_reference.clone().unwrap_or_default();
        let asked = RefundOrder {
            order: refund.payment_id.as_str(),
            reference: &reference,
            amount: refund.amount,
            refund_id: refund.id.as_str(),
        };
        let (state, bank_reference, reason) = match self.gateway.refund(&asked).await {
            Ok(RefundAnswer::Refunded { reference }) => {
                (RefundState::Succeeded, Some(reference), None)
            }
            Ok(RefundAnswer::Declined { reason }) => (RefundState::Declined, None, Some(reason)),
            // Refused before anything moved: nothing was given back.
            Err(GatewayError::Refused(reason)) => (RefundState::Declined, None, Some(reason)),
            Err(GatewayError::OutcomeUnknown(e)) => {
                tracing::warn!(refund_id = %refund.id, error = %e, "refund outcome unknown; asked again on the next request");
                return Ok(refund);
            }
        };
        let mut settled = refund.clone();
        settled.state = state;
        settled.bank_reference = bank_reference;
        settled.decline_reason = reason;
        settled.settled_at = Some(now.unix_timestamp());
        self.settle_refund(&settled, payment).await
    }

    /// Moves the refund's amount out of the pending total (into the refunded one if it
    /// succeeded) with the refund's final state, reading the payment again while other
    /// refunds move it.
    async fn settle_refund(
        &self,
        settled: &Refund,
        mut payment: Payment,
    ) -> Result<Refund, AppError> {
        for _ in 0..REFUND_RETRIES {
            let mut moved = payment.clone();
            let entry = moved.refunds.entry(&settled.uin);
            entry.pending = entry.pending.saturating_sub(settled.amount);
            if settled.state == RefundState::Succeeded {
                entry.refunded += settled.amount;
            }
            moved.refunds.version += 1;
            match self.store.settle_refund(settled, &moved).await? {
                RefundSettling::Settled => {
                    if settled.state == RefundState::Succeeded {
                        self.tell_refund(&moved, settled).await;
                        self.queue_refund_notice(&moved, settled).await;
                    }
                    return Ok(settled.clone());
                }
                RefundSettling::AlreadySettled => {
                    return self
                        .store
                        .refunds(&settled.owner(), &settled.payment_id)
                        .await?
                        .into_iter()
                        .find(|r| r.id == settled.id)
                        .ok_or_else(|| AppError::Internal("a settled refund vanished".into()));
                }
                RefundSettling::PaymentChanged => {
                    payment = self
                        .store
                        .payment(&settled.owner(), &settled.payment_id)
                        .await?
                        .ok_or_else(|| AppError::Internal("a refund without its payment".into()))?;
                }
            }
        }
        Err(AppError::StoreUnavailable(
            "the payment's refunds kept changing".into(),
        ))
    }

    /// The biller's notice of a refund, through the paid-bill notices' queue; best effort
    /// as the paid-bill notices are, a failure is logged.
    async fn queue_refund_notice(&self, payment: &Payment, refund: &Refund) {
        let notice = PaymentNotice {
            payment_id: payment.id.clone(),
            uin: refund.uin.clone(),
            biller_id: refund.biller_id.clone(),
            amount: refund.amount,
            paid_at: refund.settled_at.unwrap_or(refund.created_at),
            gateway_reference: refund.bank_reference.clone().unwrap_or_default(),
            refund_id: Some(refund.id.clone()),
        };
        if let Err(e) = self.notices.queue_notices(&[notice]).await {
            tracing::warn!(refund_id = %refund.id, error = %e, "refund notice not queued");
        }
    }

    /// The payer's receipt of a refund; best effort, a failure is logged.
    async fn tell_refund(&self, payment: &Payment, refund: &Refund) {
        let email = match self.receipt_holder(payment).await {
            Ok(Some(ReceiptHolder {
                email: Some(email), ..
            })) => email,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "refund receipt: payer unreadable");
                return;
            }
        };
        let text = refund_receipt_text(payment, refund);
        if payment.organisation_id.is_some() {
            // An organisation's receipt goes to its address only: the inbox is a citizen's.
            let receipt = (REFUND_RECEIPT_SUBJECT, NoticeKind::Receipt);
            let text = Secret::new(text);
            let sent = email_counted_to(&self.notifier, &email, receipt, &text);
            if let Err(e) = sent.await {
                tracing::warn!(error = %e, "refund receipt not sent");
            }
            return;
        }
        let at = refund.settled_at.unwrap_or(refund.created_at);
        let message = Message::new(MessageCategory::Payments, REFUND_RECEIPT_SUBJECT, text, at)
            .of_event(&format!("refund:{}", refund.id))
            .about_payment(&payment.id);
        let email = [Delivery::Email(&email)];
        let sent = inbox::tell(
            &self.store,
            &self.notifier,
            &payment.account_id,
            &message,
            &email,
        );
        for result in sent.await {
            match result {
                Ok(()) => metrics::emit(Metric::NoticesSent {
                    kind: NoticeKind::Receipt,
                    channel: NoticeChannel::Email,
                }),
                Err(e) => tracing::warn!(error = %e, "refund receipt not sent"),
            }
        }
    }
}
