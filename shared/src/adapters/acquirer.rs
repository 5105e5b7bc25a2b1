//! The sandbox acquirer: a stand-in for the bank behind the payment gateway, with test
//! cards like a real gateway's (documented in docs/testing.md). It keeps its own books in
//! the table under its own keys — tokens (`ACQTOKEN#{token}`), orders
//! (`ACQORDER#{order}`) and refunds (`ACQREFUND#{refund}`) — because reconciliation asks it later what happened to an order,
//! and the load test checks that every order was charged at most once. A real adapter
//! calls the acquirer's API instead and keeps nothing here.

use time::OffsetDateTime;

use super::dynamodb::DynamoStore;
use crate::domain::luhn_valid;
use crate::services::payments::{
    GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway, RefundAnswer,
    RefundOrder, SavedCard,
};

/// How long a one-time token lives.
const ONE_TIME_TOKEN_SECS: i64 = 3600;
/// How long an order waits for 3-D Secure before it is declined.
const CONFIRMATION_WINDOW_SECS: i64 = 15 * 60;
/// Times a refund reads its order again after a concurrent refund of it moved the
/// refunded total.
const REFUND_RETRIES: usize = 8;

/// What a test card does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Succeeds,
    Declined,
    InsufficientFunds,
    RequiresConfirmation,
    /// Charged, but the answer is lost (a timeout).
    TimesOut,
    /// Charged; every refund of it is declined (`refund_declined`).
    RefundsDeclined,
}

impl Behaviour {
    fn as_str(self) -> &'static str {
        match self {
            Behaviour::Succeeds => "succeeds",
            Behaviour::Declined => "declined",
            Behaviour::InsufficientFunds => "insufficient_funds",
            Behaviour::RequiresConfirmation => "requires_confirmation",
            Behaviour::TimesOut => "times_out",
            Behaviour::RefundsDeclined => "refunds_declined",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "declined" => Behaviour::Declined,
            "insufficient_funds" => Behaviour::InsufficientFunds,
            "requires_confirmation" => Behaviour::RequiresConfirmation,
            "times_out" => Behaviour::TimesOut,
            "refunds_declined" => Behaviour::RefundsDeclined,
            _ => Behaviour::Succeeds,
        }
    }
}

/// The test cards: any other Luhn-valid number succeeds.
pub const TEST_CARDS: [(&str, Behaviour); 6] = [
    ("4242424242424242", Behaviour::Succeeds),
    ("4000000000000002", Behaviour::Declined),
    ("4000000000009995", Behaviour::InsufficientFunds),
    ("4000000000003220", Behaviour::RequiresConfirmation),
    ("4000000000000119", Behaviour::TimesOut),
    ("4000000000005126", Behaviour::RefundsDeclined),
];

fn behaviour_of(number: &str) -> Behaviour {
    TEST_CARDS
        .iter()
        .find(|(n, _)| *n == number)
        .map_or(Behaviour::Succeeds, |(_, b)| *b)
}

fn brand_of(number: &str) -> &'static str {
    match number.as_bytes().first() {
        Some(b'4') => "Visa",
        Some(b'5') => "Mastercard",
        Some(b'2') => "Мир",
        _ => "Card",
    }
}

/// A card as typed on the gateway's page.
pub struct CardEntry<'a> {
    pub number: &'a str,
    pub exp_month: u8,
    pub exp_year: u16,
    pub cvc: &'a str,
}

pub struct SandboxAcquirer {
    store: DynamoStore,
}

use super::dynamodb::{classify, get_n, get_s, key, n, s, tx_update, Item, TTL_ATTRIBUTE};

fn token_key(token: &str) -> Item {
    key(format!("ACQTOKEN#{token}"), "ACQTOKEN")
}

fn order_key(order: &str) -> Item {
    key(format!("ACQORDER#{order}"), "ACQORDER")
}

fn refund_key(refund: &str) -> Item {
    key(format!("ACQREFUND#{refund}"), "ACQREFUND")
}

fn refund_reference(refund: &str) -> String {
    format!(
        "sbx-rf-{}",
        refund.replace('-', "").chars().take(20).collect::<String>()
    )
}

fn unavailable(e: impl std::fmt::Display) -> GatewayError {
    GatewayError::OutcomeUnknown(e.to_string())
}

fn reference(order: &str) -> String {
    format!(
        "sbx-{}",
        order.replace('-', "").chars().take(20).collect::<String>()
    )
}

struct Order {
    state: String,
    reason: Option<String>,
    created_at: i64,
}

/// What the sandbox's own refund record says: the order it gave back from and its answer.
fn recorded_refund(item: &Item, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError> {
    let same = get_s(item, "order").is_ok_and(|o| o == refund.order)
        && get_n::<u64>(item, "amount").is_ok_and(|a| a == refund.amount);
    if !same {
        return Err(GatewayError::Refused("refund_id_reused".into()));
    }
    Ok(match get_s(item, "state").as_deref() {
        Ok("refunded") => RefundAnswer::Refunded {
            reference: refund_reference(refund.refund_id),
        },
        _ => RefundAnswer::Declined {
            reason: get_s(item, "reason").unwrap_or_else(|_| "refund_declined".into()),
        },
    })
}

impl SandboxAcquirer {
    pub fn new(store: DynamoStore) -> Self {
        Self { store }
    }

    /// The gateway's card page: checks the card and answers a one-time token. The number
    /// and the CVC are not kept, only the brand, the last four digits and the expiry.
    pub async fn tokenize(
        &self,
        card: &CardEntry<'_>,
        now: OffsetDateTime,
    ) -> Result<String, GatewayError> {
        let number: String = card
            .number
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if !(13..=19).contains(&number.len()) || !luhn_valid(&number) {
            return Err(GatewayError::Refused("invalid_card_number".into()));
        }
        if card.cvc.len() != 3 || !card.cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(GatewayError::Refused("invalid_cvc".into()));
        }
        let (year, month) = (i32::from(card.exp_year), card.exp_month);
        let this_month = (now.year(), u8::from(now.month()));
        if !(1..=12).contains(&month) || (year, month) < this_month {
            return Err(GatewayError::Refused("card_expired".into()));
        }
        let token = format!("tok_{}", uuid::Uuid::new_v4().simple());
        let mut item = token_key(&token);
        item.extend([
            ("brand".into(), s(brand_of(&number))),
            ("last4".into(), s(&number[number.len() - 4..])),
            ("exp_month".into(), n(card.exp_month)),
            ("exp_year".into(), n(card.exp_year)),
            ("behaviour".into(), s(behaviour_of(&number).as_str())),
            ("reusable".into(), s("no")),
            (
                TTL_ATTRIBUTE.into(),
                n(now.unix_timestamp() + ONE_TIME_TOKEN_SECS),
            ),
        ]);
        self.store.put(item).await.map_err(unavailable)?;
        Ok(token)
    }

    async fn token(&self, token: &str) -> Result<Option<Item>, GatewayError> {
        self.store
            .get_consistent(token_key(token))
            .await
            .map_err(unavailable)
    }

    /// A token's behaviour, if it may pay `order`.
    async fn usable_token(
        &self,
        token: &str,
        reusable: bool,
        order: &str,
    ) -> Result<Behaviour, GatewayError> {
        let item = self
            .token(token)
            .await?
            .ok_or_else(|| GatewayError::Refused("unknown_token".into()))?;
        let is_reusable = get_s(&item, "reusable").is_ok_and(|r| r == "yes");
        if is_reusable != reusable {
            return Err(GatewayError::Refused("unknown_token".into()));
        }
        if !reusable {
            let expires: i64 = get_n(&item, TTL_ATTRIBUTE).unwrap_or(0);
            if expires < OffsetDateTime::now_utc().unix_timestamp() {
                return Err(GatewayError::Refused("token_expired".into()));
            }
            if get_s(&item, "used_by").is_ok_and(|u| u != order) {
                return Err(GatewayError::Refused("token_used".into()));
            }
        }
        Ok(Behaviour::parse(
            &get_s(&item, "behaviour").unwrap_or_default(),
        ))
    }

    async fn order(&self, order: &str) -> Result<Option<Order>, GatewayError> {
        Ok(self
            .store
            .get_consistent(order_key(order))
            .await
            .map_err(unavailable)?
            .map(|item| Order {
                state: get_s(&item, "state").unwrap_or_default(),
                reason: get_s(&item, "reason").ok(),
                created_at: get_n(&item, "created_at").unwrap_or(0),
            }))
    }

    fn answer(order_id: &str, order: &Order) -> GatewayAnswer {
        match order.state.as_str() {
            "charged" => GatewayAnswer::Succeeded {
                reference: reference(order_id),
            },
            "awaiting_confirmation" => GatewayAnswer::RequiresConfirmation {
                reference: reference(order_id),
                url: confirmation_url(order_id),
            },
            _ => GatewayAnswer::Declined {
                reason: order.reason.clone().unwrap_or_else(|| "declined".into()),
            },
        }
    }

    /// Records an order once; `false`: it existed already.
    async fn record_order(
        &self,
        order: &str,
        amount: u64,
        state: &str,
        reason: Option<&str>,
        one_time_token: Option<&str>,
        refunds_declined: bool,
    ) -> Result<bool, GatewayError> {
        let mut item = order_key(order);
        item.extend([
            ("amount".into(), n(amount)),
            ("state".into(), s(state)),
            (
                "created_at".into(),
                n(OffsetDateTime::now_utc().unix_timestamp()),
            ),
        ]);
        if let Some(r) = reason {
            item.insert("reason".into(), s(r));
        }
        if refunds_declined {
            item.insert("refunds".into(), s("declined"));
        }
        let put = self.store.put_new(item).map_err(unavailable)?;
        let mut request = self.store.client.transact_write_items().transact_items(put);
        if let Some(token) = one_time_token {
            let spend = tx_update(
                self.store
                    .update(token_key(token))
                    .update_expression("SET used_by = :order")
                    .condition_expression("attribute_not_exists(used_by) OR used_by = :order")
                    .expression_attribute_values(":order", s(order)),
            )
            .map_err(unavailable)?;
            request = request.transact_items(spend);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match super::dynamodb::classify_transaction(e) {
                crate::services::StoreError::Conflict => Ok(false),
                other => Err(unavailable(other)),
            },
        }
    }

    async fn set_state(
        &self,
        order: &str,
        from: &str,
        to: &str,
        reason: Option<&str>,
    ) -> Result<(), GatewayError> {
        let mut update = self
            .store
            .update_item(order_key(order))
            .condition_expression("#state = :from")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to));
        update = match reason {
            Some(r) => update
                .update_expression("SET #state = :to, reason = :reason")
                .expression_attribute_values(":reason", s(r)),
            None => update.update_expression("SET #state = :to"),
        };
        match update.send().await.map_err(classify) {
            Ok(_) | Err(crate::services::StoreError::Conflict) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Declines an order still waiting for 3-D Secure as `confirmation_expired`: what a
    /// late status check and a cancel both do, conditional on the order still waiting, so
    /// that a confirmation that got there first stands.
    async fn expire_confirmation(&self, order: &str) -> Result<(), GatewayError> {
        self.set_state(
            order,
            "awaiting_confirmation",
            "declined",
            Some("confirmation_expired"),
        )
        .await
    }

    /// Records a declined refund under its id, unless the id has an answer already: then
    /// that answer stands.
    async fn decline_refund(
        &self,
        refund: &RefundOrder<'_>,
        reason: &str,
    ) -> Result<RefundAnswer, GatewayError> {
        let mut item = refund_key(refund.refund_id);
        item.extend([
            ("order".into(), s(refund.order)),
            ("amount".into(), n(refund.amount)),
            ("state".into(), s("declined")),
            ("reason".into(), s(reason)),
            (
                "created_at".into(),
                n(OffsetDateTime::now_utc().unix_timestamp()),
            ),
        ]);
        match self.store.put_if_absent(item).await.map_err(unavailable)? {
            super::dynamodb::PutOutcome::Written => Ok(RefundAnswer::Declined {
                reason: reason.into(),
            }),
            super::dynamodb::PutOutcome::AlreadyThere => self.refund_answer(refund).await,
        }
    }

    /// The answer recorded under a refund id.
    async fn refund_answer(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError> {
        match self
            .store
            .get_consistent(refund_key(refund.refund_id))
            .await
            .map_err(unavailable)?
        {
            Some(item) => recorded_refund(&item, refund),
            None => Err(unavailable("sandbox: the refund record vanished")),
        }
    }

    /// One attempt at giving back `refund.amount` of an order read with `refunded` given
    /// back so far: the refund record and the order's new total in one transaction, on
    /// the condition that the total is still the one read. `None`: it moved meanwhile.
    async fn try_refund(
        &self,
        refund: &RefundOrder<'_>,
        refunded: u64,
    ) -> Result<Option<RefundAnswer>, GatewayError> {
        let mut item = refund_key(refund.refund_id);
        item.extend([
            ("order".into(), s(refund.order)),
            ("amount".into(), n(refund.amount)),
            ("state".into(), s("refunded")),
            (
                "created_at".into(),
                n(OffsetDateTime::now_utc().unix_timestamp()),
            ),
        ]);
        let put = self.store.put_new(item).map_err(unavailable)?;
        let seen = if refunded == 0 {
            "#state = :charged AND (attribute_not_exists(refunded) OR refunded = :seen)"
        } else {
            "#state = :charged AND refunded = :seen"
        };
        let total = tx_update(
            self.store
                .update(order_key(refund.order))
                .update_expression("SET refunded = :total")
                .condition_expression(seen)
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":charged", s("charged"))
                .expression_attribute_values(":seen", n(refunded))
                .expression_attribute_values(":total", n(refunded + refund.amount)),
        )
        .map_err(unavailable)?;
        let sent = self
            .store
            .client
            .transact_write_items()
            .transact_items(put)
            .transact_items(total)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(Some(RefundAnswer::Refunded {
                reference: refund_reference(refund.refund_id),
            })),
            Err(e) => match super::dynamodb::classify_transaction(e) {
                crate::services::StoreError::Conflict => Ok(None),
                other => Err(unavailable(other)),
            },
        }
    }

    /// The sum of what the acquirer charged over all orders, and how many: the books the
    /// load test checks against the payments. Scans: for tests and tools only.
    pub async fn books(&self) -> Result<(u64, usize), GatewayError> {
        let mut total = 0;
        let mut count = 0;
        let mut start = None;
        loop {
            let page = self
                .store
                .client
                .scan()
                .table_name(&self.store.table)
                .filter_expression("begins_with(pk, :order) AND #state = :charged")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":order", s("ACQORDER#"))
                .expression_attribute_values(":charged", s("charged"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(classify(e)))?;
            for item in page.items() {
                total += get_n::<u64>(item, "amount").unwrap_or(0);
                count += 1;
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok((total, count));
            }
        }
    }
}

/// Where the cardholder confirms a 3-D Secure payment (the sandbox has no such page; the
/// client calls `POST /v1/payments/{id}/confirm` as the bank's redirect would).
pub fn confirmation_url(order: &str) -> String {
    format!("https://acquirer.sandbox.uslugi.example/3ds/{order}")
}

impl PaymentGateway for SandboxAcquirer {
    async fn charge(
        &self,
        order: &str,
        amount: u64,
        method: &GatewayMethod,
    ) -> Result<GatewayAnswer, GatewayError> {
        if let Some(existing) = self.order(order).await? {
            return Ok(Self::answer(order, &existing));
        }
        let (behaviour, one_time) = match method {
            GatewayMethod::CardToken(t) => {
                (self.usable_token(t, false, order).await?, Some(t.as_str()))
            }
            GatewayMethod::SavedCard(t) => (self.usable_token(t, true, order).await?, None),
            GatewayMethod::ApplePay(_) => (Behaviour::Succeeds, None),
            // Accounts ending in 0000 are empty.
            GatewayMethod::Mobile(id) | GatewayMethod::Wallet(id) if id.ends_with("0000") => {
                (Behaviour::InsufficientFunds, None)
            }
            GatewayMethod::Mobile(_) | GatewayMethod::Wallet(_) => (Behaviour::Succeeds, None),
        };
        let (state, reason) = match behaviour {
            Behaviour::Succeeds | Behaviour::TimesOut | Behaviour::RefundsDeclined => {
                ("charged", None)
            }
            Behaviour::Declined => ("declined", Some("card_declined")),
            Behaviour::InsufficientFunds => ("declined", Some("insufficient_funds")),
            Behaviour::RequiresConfirmation => ("awaiting_confirmation", None),
        };
        if !self
            .record_order(
                order,
                amount,
                state,
                reason,
                one_time,
                behaviour == Behaviour::RefundsDeclined,
            )
            .await?
        {
            // A concurrent charge of the same order, or the token was spent meanwhile.
            return match self.order(order).await? {
                Some(existing) => Ok(Self::answer(order, &existing)),
                None => Err(GatewayError::Refused("token_used".into())),
            };
        }
        if behaviour == Behaviour::TimesOut {
            return Err(GatewayError::OutcomeUnknown(
                "sandbox: the acquirer did not answer in time".into(),
            ));
        }
        Ok(Self::answer(
            order,
            &Order {
                state: state.into(),
                reason: reason.map(str::to_string),
                created_at: 0,
            },
        ))
    }

    async fn confirm(&self, order: &str) -> Result<GatewayAnswer, GatewayError> {
        if let GatewayStatus::AwaitingConfirmation = self.status(order).await? {
            self.set_state(order, "awaiting_confirmation", "charged", None)
                .await?;
        }
        match self.order(order).await? {
            Some(o) => Ok(Self::answer(order, &o)),
            None => Err(GatewayError::Refused("unknown_order".into())),
        }
    }

    async fn status(&self, order: &str) -> Result<GatewayStatus, GatewayError> {
        let Some(o) = self.order(order).await? else {
            return Ok(GatewayStatus::Unknown);
        };
        if o.state == "awaiting_confirmation" {
            let age = OffsetDateTime::now_utc().unix_timestamp() - o.created_at;
            if age <= CONFIRMATION_WINDOW_SECS {
                return Ok(GatewayStatus::AwaitingConfirmation);
            }
            self.expire_confirmation(order).await?;
            // Declined now, unless a confirmation won the race.
            return Ok(match self.order(order).await? {
                Some(o) if o.state == "charged" => GatewayStatus::Succeeded {
                    reference: reference(order),
                },
                _ => GatewayStatus::Declined {
                    reason: "confirmation_expired".into(),
                },
            });
        }
        Ok(match Self::answer(order, &o) {
            GatewayAnswer::Succeeded { reference } => GatewayStatus::Succeeded { reference },
            GatewayAnswer::Declined { reason } => GatewayStatus::Declined { reason },
            GatewayAnswer::RequiresConfirmation { .. } => GatewayStatus::AwaitingConfirmation,
        })
    }

    async fn cancel(&self, order: &str) -> Result<GatewayStatus, GatewayError> {
        self.record_order(order, 0, "cancelled", Some("order_cancelled"), None, false)
            .await?;
        // An order waiting for 3-D Secure is declined now, unless the cardholder's
        // confirmation got there first (the conditional update decides).
        self.expire_confirmation(order).await?;
        self.status(order).await
    }

    async fn refund(&self, refund: &RefundOrder<'_>) -> Result<RefundAnswer, GatewayError> {
        for _ in 0..REFUND_RETRIES {
            if let Some(item) = self
                .store
                .get_consistent(refund_key(refund.refund_id))
                .await
                .map_err(unavailable)?
            {
                return recorded_refund(&item, refund);
            }
            let Some(order) = self
                .store
                .get_consistent(order_key(refund.order))
                .await
                .map_err(unavailable)?
            else {
                return self.decline_refund(refund, "unknown_order").await;
            };
            let amount: u64 = get_n(&order, "amount").unwrap_or(0);
            let refunded: u64 = get_n(&order, "refunded").unwrap_or(0);
            if !get_s(&order, "state").is_ok_and(|state| state == "charged") {
                return self.decline_refund(refund, "order_not_charged").await;
            }
            if get_s(&order, "refunds").is_ok_and(|r| r == "declined") {
                return self.decline_refund(refund, "refund_declined").await;
            }
            if refund.amount == 0 || refund.amount > amount.saturating_sub(refunded) {
                return self.decline_refund(refund, "refund_exceeds_payment").await;
            }
            if let Some(answer) = self.try_refund(refund, refunded).await? {
                return Ok(answer);
            }
            // Another refund of the order (or this one, asked twice at once) got there
            // first: read both again.
        }
        Err(GatewayError::OutcomeUnknown(
            "sandbox: the order's refunds kept changing".into(),
        ))
    }

    async fn save_card(&self, one_time_token: &str) -> Result<SavedCard, GatewayError> {
        let item = self
            .token(one_time_token)
            .await?
            .ok_or_else(|| GatewayError::Refused("unknown_token".into()))?;
        if get_s(&item, "reusable").is_ok_and(|r| r == "yes") || get_s(&item, "used_by").is_ok() {
            return Err(GatewayError::Refused("token_used".into()));
        }
        let expires: i64 = get_n(&item, TTL_ATTRIBUTE).unwrap_or(0);
        if expires < OffsetDateTime::now_utc().unix_timestamp() {
            return Err(GatewayError::Refused("token_expired".into()));
        }
        let card = SavedCard {
            reusable_token: format!("ctok_{}", uuid::Uuid::new_v4().simple()),
            brand: get_s(&item, "brand").unwrap_or_default(),
            last4: get_s(&item, "last4").unwrap_or_default(),
            exp_month: get_n(&item, "exp_month").unwrap_or(0),
            exp_year: get_n(&item, "exp_year").unwrap_or(0),
        };
        let mut saved = token_key(&card.reusable_token);
        for name in ["brand", "last4", "exp_month", "exp_year", "behaviour"] {
            if let Some(v) = item.get(name) {
                saved.insert(name.into(), v.clone());
            }
        }
        saved.insert("reusable".into(), s("yes"));
        let put = self.store.tx_put(saved).map_err(unavailable)?;
        let spend = tx_update(
            self.store
                .update(token_key(one_time_token))
                .update_expression("SET used_by = :saved")
                .condition_expression("attribute_not_exists(used_by)")
                .expression_attribute_values(":saved", s("saved")),
        )
        .map_err(unavailable)?;
        self.store
            .client
            .transact_write_items()
            .transact_items(put)
            .transact_items(spend)
            .send()
            .await
            .map_err(|e| match super::dynamodb::classify_transaction(e) {
                crate::services::StoreError::Conflict => GatewayError::Refused("token_used".into()),
                other => unavailable(other),
            })?;
        Ok(card)
    }
}
