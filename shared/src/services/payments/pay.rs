//! Opening, settling and confirming payments, and reading them back.

use std::collections::HashMap;

use super::*;
use crate::domain::OrgAction;
use crate::services::inbox::{self, Delivery, Message, MessageCategory};

impl<S: PaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    /// Pays the bills of a request once per idempotency key.
    pub async fn pay(
        &self,
        paying: &PayingAs,
        key: &str,
        request: &PayRequest,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<PayOutcome, AppError> {
        self.may(paying, OrgAction::Pay).await?;
        self.pay_as(paying, key, request, &request.canonical(), origin, now)
            .await
    }

    /// The keyed hashes of an idempotency key and of the request it comes with, in its
    /// canonical form (`identity`). A member's key is theirs within the organisation:
    /// the same key sent for themselves is another request.
    pub(super) fn request_hashes(
        &self,
        paying: &PayingAs,
        key: &str,
        identity: &str,
    ) -> (String, String) {
        let account = paying.account().as_str();
        let (key_parts, request_parts) = match paying.organisation() {
            None => (vec![account, key], vec![account, identity]),
            Some(org) => (
                vec![account, org.as_str(), key],
                vec![account, org.as_str(), identity],
            ),
        };
        let key_hash = self
            .hasher
            .identifier(Identifier::IdempotencyKey, &key_parts);
        let request_hash = self
            .hasher
            .identifier(Identifier::PaymentRequest, &request_parts);
        (key_hash, request_hash)
    }

    /// [`Self::pay`] of the bills a request comes to, the request compared with replays
    /// by `identity`: what the citizen asked for (a payee and its fields, a template),
    /// not the bills it came to. The caller has checked that the payer may pay
    /// ([`Self::may`]), once per request.
    pub(super) async fn pay_as(
        &self,
        paying: &PayingAs,
        key: &str,
        request: &PayRequest,
        identity: &str,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<PayOutcome, AppError> {
        // The caller checked the payer may pay (one read of the membership per request).
        let account_id = paying.account();
        let (key_hash, request_hash) = self.request_hashes(paying, key, identity);
        let today = now.to_offset(MOSCOW).date();
        let mut counted = self.lookups.is_none();
        let now_s = now.unix_timestamp();
        let (mut bill_rounds, mut hold_rounds) = (0, 0);
        while bill_rounds < OPEN_RETRIES && hold_rounds < HOLD_RACE_RETRIES {
            // A request with this key before (or racing this one) decides the answer.
            if let Some(outcome) = self.replay(paying, &key_hash, &request_hash).await? {
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
            let (gateway_method, summary) = self.resolve_method(paying, &request.method).await?;
            let charges = match self.payable(&request.uins, now).await {
                Ok(charges) => charges,
                // A bill locked or paid by a request with this same key is that request's
                // payment, not a refusal.
                Err(refusal) => {
                    return match self.replay(paying, &key_hash, &request_hash).await? {
                        Some(outcome) => Ok(outcome),
                        None => Err(self.as_seen_by(paying, refusal).await?),
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
                id: PaymentId::new(),
                account_id: account_id.clone(),
                organisation_id: paying.organisation().cloned(),
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
                refunds: RefundTotals::default(),
            };
            let versions: Vec<(Uin, u64)> =
                charges.iter().map(|c| (c.uin.clone(), c.version)).collect();
            let holds = self.hold_for(&payment, now_s).await?;
            let opening = PaymentOpening {
                payment: &payment,
                key_hash: &key_hash,
                key_expires_at: now_s + IDEMPOTENCY_TTL_SECS,
                bill_versions: &versions,
                holds: &holds,
            };
            match self.store.open_payment(opening).await? {
                Ok(()) => {
                    tracing::info!(payment_id = %payment.id, %account_id, organisation_id = ?payment.organisation_id, bills = payment.bills.len(), total = payment.total, "payment opened");
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
                        .map(|b| b.uin.as_str().to_string())
                        .unwrap_or_default();
                    return Err(AppError::BillWithdrawn(uin));
                }
            }
        }
        Err(AppError::StoreUnavailable("the bills kept changing".into()))
    }

    /// The earlier outcome of a key, waiting a little for one still processing.
    pub(super) async fn replay(
        &self,
        paying: &PayingAs,
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
                .payment(&paying.owner(), &payment_id)
                .await?
                .ok_or_else(|| AppError::StoreUnavailable("payment not readable yet".into()))?;
            if payment.status != PaymentStatus::Processing {
                return Ok(Some(PayOutcome {
                    payment,
                    replayed: true,
                }));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(AppError::PaymentInProgress {
                    payment_id: payment_id.into(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub(super) async fn resolve_method(
        &self,
        paying: &PayingAs,
        method: &MethodRequest,
    ) -> Result<(GatewayMethod, MethodSummary), AppError> {
        Ok(match method {
            // The payer's own saved methods: a member paying for an organisation uses
            // the organisation's, never their own.
            MethodRequest::Saved(id) => {
                let saved = self
                    .store
                    .methods(&paying.owner())
                    .await?
                    .into_iter()
                    .find(|m| m.id.as_str() == id)
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
                MethodSummary::one_off(MethodKind::Card, "Банковская карта"),
            ),
            MethodRequest::ApplePay(d) => (
                GatewayMethod::ApplePay(d.clone()),
                MethodSummary::one_off(MethodKind::ApplePay, "Apple Pay"),
            ),
            MethodRequest::Mobile(p) => (
                GatewayMethod::Mobile(p.e164().to_string()),
                MethodSummary::one_off(MethodKind::Mobile, mobile_label(p.e164())),
            ),
            MethodRequest::Wallet(w) => (
                GatewayMethod::Wallet(w.clone()),
                MethodSummary::one_off(MethodKind::Wallet, wallet_label(w)),
            ),
        })
    }

    /// A refusal of a bill as the caller may hear it. Of a bill the caller sees (saved,
    /// naming one of their verified documents, children or vehicles — or, for an
    /// organisation, naming it — or held or paid by their own payment) they hear what is
    /// wrong with it; of any other bill that is not payable, only the answer a UIN never
    /// issued gets, so that the route tells nobody whether a stranger's UIN exists, was
    /// paid or is being paid.
    pub(super) async fn as_seen_by(
        &self,
        paying: &PayingAs,
        refusal: AppError,
    ) -> Result<AppError, AppError> {
        let uin = match &refusal {
            AppError::BillPaid(uin) | AppError::BillInPayment(uin) => uin.clone(),
            _ => return Ok(refusal),
        };
        // A UIN that does not parse names no bill (requests' UINs are parsed already).
        let Ok(typed) = Uin::parse("uin", &uin) else {
            return Ok(AppError::BillMissing(uin));
        };
        if self.sees(paying, &typed).await? {
            Ok(refusal)
        } else {
            Ok(AppError::BillMissing(uin))
        }
    }

    /// Whether the account sees a bill (see [`Self::as_seen_by`]); the cheapest reads
    /// first.
    pub(super) async fn sees(&self, paying: &PayingAs, uin: &Uin) -> Result<bool, AppError> {
        if let Some(payment_id) = self.store.bill_payment(uin).await? {
            if self
                .store
                .payment(&paying.owner(), &payment_id)
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        let account_id = match paying {
            PayingAs::Citizen(account_id) => account_id,
            PayingAs::Member { organisation, .. } => {
                let payer = self.organisation(organisation).await?.identity.payer();
                let charge = self.store.charges(std::slice::from_ref(uin)).await?.pop();
                return Ok(charge.is_some_and(|c| c.body.payers.contains(&payer)));
            }
        };
        if self
            .store
            .saved_bills(account_id)
            .await?
            .iter()
            .any(|u| u == uin)
        {
            return Ok(true);
        }
        let Some(charge) = self.store.charges(std::slice::from_ref(uin)).await?.pop() else {
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
    pub(super) async fn payable(
        &self,
        uins: &[Uin],
        now: OffsetDateTime,
    ) -> Result<Vec<StoredCharge>, AppError> {
        let now_s = now.unix_timestamp();
        let mut withdrawn = false;
        loop {
            let mut found: HashMap<Uin, StoredCharge> = self
                .store
                .charges(uins)
                .await?
                .into_iter()
                .map(|c| (c.uin.clone(), c))
                .collect();
            let mut charges = Vec::with_capacity(uins.len());
            let mut expired = Vec::new();
            for uin in uins {
                let named = || uin.as_str().to_string();
                let charge = found
                    .remove(uin)
                    .ok_or_else(|| AppError::BillMissing(named()))?;
                match (charge.status, &charge.locked_by, &charge.hold) {
                    (ChargeStatus::Cancelled, _, _) => return Err(AppError::BillMissing(named())),
                    (ChargeStatus::Paid, _, _) => return Err(AppError::BillPaid(named())),
                    (ChargeStatus::Unpaid, Some(payment_id), Some(hold))
                        if hold.until <= now_s && !withdrawn =>
                    {
                        expired.push((hold.owner.clone(), payment_id.clone()));
                    }
                    (ChargeStatus::Unpaid, Some(_), _) => {
                        return Err(AppError::BillInPayment(named()))
                    }
                    (ChargeStatus::Unpaid, None, _) => charges.push(charge),
                }
            }
            if expired.is_empty() {
                return Ok(charges);
            }
            for (owner, payment_id) in expired {
                if let Some(payment) = self.store.payment(&owner, &payment_id).await? {
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
    pub(super) async fn withdraw(
        &self,
        payment: Payment,
        now: OffsetDateTime,
    ) -> Result<Payment, AppError> {
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
    pub(super) async fn hold_for(
        &self,
        payment: &Payment,
        now_s: i64,
    ) -> Result<HoldCount, AppError> {
        let count = self.store.hold_count(&payment.owner()).await?;
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
    pub(super) async fn record_answer(
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

    pub(super) async fn mark(
        &self,
        payment: Payment,
        from: PaymentStatus,
    ) -> Result<Payment, AppError> {
        if self.store.mark(&payment, from).await? {
            Ok(payment)
        } else {
            self.current(&payment).await
        }
    }

    pub(super) async fn current(&self, payment: &Payment) -> Result<Payment, AppError> {
        self.store
            .payment(&payment.owner(), &payment.id)
            .await?
            .ok_or(AppError::NotFound("payment"))
    }

    /// Settles, then (once, by whoever settled) the receipt and the billers' notices.
    pub(super) async fn settle(&self, payment: Payment) -> Result<Payment, AppError> {
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
    pub(super) async fn after_success(&self, payment: &Payment) {
        self.send_receipt(payment).await;
        match self.notices.queue_notices(&payment.notices()).await {
            Ok(()) => self.close(payment).await,
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "billers' notices not queued; reconciliation queues them");
            }
        }
    }

    pub(super) async fn close(&self, payment: &Payment) {
        if let Err(e) = self.store.close_reconciliation(payment).await {
            tracing::warn!(payment_id = %payment.id, error = %e, "reconciliation entry not removed; the next run removes it");
        }
    }

    pub(super) async fn send_receipt(&self, payment: &Payment) {
        let holder = match self.receipt_holder(payment).await {
            Ok(Some(ReceiptHolder {
                payer,
                email: Some(email),
            })) => (payer, email),
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(payment_id = %payment.id, error = %e, "receipt not sent: payer not read");
                return;
            }
        };
        let text = receipt_text(&holder.0, payment);
        let sent = if payment.organisation_id.is_some() {
            // An organisation's receipt goes to its address only: the inbox is a citizen's.
            let receipt = (RECEIPT_SUBJECT, NoticeKind::Receipt);
            let text = Secret::new(text);
            vec![email_counted_to(&self.notifier, &holder.1, receipt, &text).await]
        } else {
            let at = payment.settled_at.unwrap_or(payment.created_at);
            let message = Message::new(MessageCategory::Payments, RECEIPT_SUBJECT, text, at)
                .of_event(&format!("receipt:{}", payment.id))
                .about_payment(&payment.id);
            let email = [Delivery::Email(&holder.1)];
            let sent = inbox::tell(
                &self.store,
                &self.notifier,
                &payment.account_id,
                &message,
                &email,
            );
            let sent = sent.await;
            if sent.iter().any(Result::is_ok) {
                metrics::emit(Metric::NoticesSent {
                    kind: NoticeKind::Receipt,
                    channel: NoticeChannel::Email,
                });
            }
            sent
        };
        for e in sent.into_iter().filter_map(Result::err) {
            tracing::warn!(payment_id = %payment.id, error = %e, "receipt e-mail not sent")
        }
    }

    /// The account an autopay's notice goes to.
    pub async fn account(&self, account_id: &AccountId) -> Result<StoredAccount, AppError> {
        self.store
            .account(account_id)
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    /// A payment of the caller's: their own, or, for a member, the organisation's.
    pub async fn payment(&self, paying: &PayingAs, id: &PaymentId) -> Result<Payment, AppError> {
        self.may(paying, OrgAction::See).await?;
        self.store
            .payment(&paying.owner(), id)
            .await?
            .ok_or(AppError::NotFound("payment"))
    }

    /// Finishes a payment that waited for 3-D Secure: for an organisation, by a member
    /// who may pay.
    pub async fn confirm(
        &self,
        paying: &PayingAs,
        id: &PaymentId,
        now: OffsetDateTime,
    ) -> Result<Payment, AppError> {
        self.may(paying, OrgAction::Pay).await?;
        let payment = self
            .store
            .payment(&paying.owner(), id)
            .await?
            .ok_or(AppError::NotFound("payment"))?;
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
    pub(super) async fn reconcile_one(
        &self,
        owner: &Owner,
        id: &PaymentId,
        now: OffsetDateTime,
        young: i64,
        run: &mut ReconcileRun,
    ) -> Result<(), AppError> {
        let Some(payment) = self.store.payment(owner, id).await? else {
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
    pub(super) async fn after_success_notices_only(&self, payment: &Payment) {
        if self.notices.queue_notices(&payment.notices()).await.is_ok() {
            self.close(payment).await;
        }
    }

    /// The archive: payments created in `[from, to)`, filtered, a page after a cursor.
    pub async fn archive(
        &self,
        paying: &PayingAs,
        filter: &ArchiveFilter,
    ) -> Result<Vec<Payment>, AppError> {
        self.may(paying, OrgAction::See).await?;
        let mut payments: Vec<Payment> = self
            .store
            .owner_payments(&paying.owner(), filter.from_ms, filter.to_ms)
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
}
