//! Autopayments: bills paid without the citizen, by a saved method, within a limit.
//!
//! - An autopay matches bills by category or by one payer identifier, and runs when a
//!   matching bill arrives, or monthly on a day, or weekly on a weekday.
//! - Each bill is paid through the payment service with the idempotency key
//!   `autopay:{autopay id}:{generation}:{uin}` and the same request every time, so a
//!   schedule that fires twice, a redelivered message, or a bill seen on two runs is
//!   paid once; the generation moves when the autopay is switched back on or given
//!   another method, so a new attempt is not an old one replayed. An autopay to a payee
//!   (no bill) puts its period, the month or the week of the run's day, in the UIN's
//!   place: paid once per period.
//! - A bill over the limit is skipped and the citizen told (once per bill); a declined
//!   payment pauses the autopay and tells the citizen.

use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::domain::roubles;
use crate::domain::{canonical, Category, Payer, PayerKind};
use crate::domain::{AccountId, AutopayId, MethodId, Uin};
use crate::error::{AppError, FieldError};
use crate::json::{text, Reader};
use crate::metrics::NoticeKind;
use crate::services::bills::{BillFilter, BillService, MAX_PAGE};
use crate::services::charges::{ChargeService, ChargeStatus, ChargeStore, StoredCharge};
use crate::services::codes::Notifier;
use crate::services::household::holdings::Holder;
use crate::services::identity::Presence;
use crate::services::payments::{
    MethodRequest, PayRequest, PayeePayment, PayingAs, PaymentGateway, PaymentNoticeQueue,
    PaymentService, PaymentStatus, PaymentStores, PortalChargeStore,
};
pub use crate::services::runs::Shard;
use crate::services::runs::{Run, RunStore, ShardedJob};
use crate::services::{Cap, CappedAdd, StoreError, MOSCOW};

mod payee;
mod run;

/// Autopays per account.
pub const MAX_AUTOPAYS: usize = 10;
/// The largest limit of one autopayment, in kopecks (a million roubles).
pub const MAX_LIMIT: u64 = 100_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by")]
pub enum Match {
    Category {
        category: Category,
    },
    Payer {
        payer: Payer,
    },
    /// A payee of the catalogue, paid its amount once a period on the schedule.
    Payee {
        payee: PayeePayment,
    },
}

impl Match {
    pub fn matches(&self, charge: &StoredCharge) -> bool {
        match self {
            Match::Category { category } => charge.body.category == *category,
            Match::Payer { payer } => charge.body.payers.contains(payer),
            Match::Payee { .. } => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Trigger {
    NewBill,
    Monthly { day: u8 },
    Weekly { weekday: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AutopayStatus {
    Active,
    Paused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autopay {
    pub id: AutopayId,
    pub account_id: AccountId,
    pub name: String,
    #[serde(rename = "match")]
    pub matching: Match,
    pub method_id: MethodId,
    /// Bills above this (kopecks, due today) are not paid.
    pub limit: u64,
    pub trigger: Trigger,
    pub status: AutopayStatus,
    pub paused_reason: Option<String>,
    pub created_at: i64,
    /// Bumped when the autopay is switched back on or given another method: part of the
    /// idempotency key of its payments, so that a new attempt is not an old one replayed.
    #[serde(default)]
    pub generation: u32,
}

impl Autopay {
    pub fn view(&self) -> Value {
        let mut v = serde_json::json!({
            "id": self.id,
            "name": self.name,
            "match": self.matching,
            "method_id": self.method_id,
            "limit": self.limit,
            "trigger": self.trigger,
            "status": self.status,
            "created_at": crate::services::rfc3339(self.created_at),
        });
        if let Some(r) = &self.paused_reason {
            v["paused_reason"] = serde_json::json!(r);
        }
        v
    }

    /// Whether a schedule run on `date` (Moscow) is this autopay's.
    pub fn due_on(&self, date: time::Date) -> bool {
        match self.trigger {
            Trigger::NewBill => false,
            Trigger::Monthly { day } => date.day() == day,
            Trigger::Weekly { weekday } => date.weekday().number_from_monday() == weekday,
        }
    }
}

/// Whether a change lets the autopay pay more than it could: a higher limit, another
/// match (any other match may catch other bills), another method, or an autopay that
/// was paused switched back on.
fn widens(current: &Autopay, fields: &AutopayFields) -> bool {
    fields.limit.is_some_and(|l| l > current.limit)
        || fields
            .matching
            .as_ref()
            .is_some_and(|m| *m != current.matching)
        || fields
            .method_id
            .as_ref()
            .is_some_and(|m| *m != current.method_id)
        || (fields.status == Some(AutopayStatus::Active) && current.status == AutopayStatus::Paused)
}

/// What a `POST` or `PATCH` may set.
#[derive(Debug, Clone, Default)]
pub struct AutopayFields {
    pub name: Option<String>,
    pub matching: Option<Match>,
    pub method_id: Option<MethodId>,
    pub limit: Option<u64>,
    pub trigger: Option<Trigger>,
    pub status: Option<AutopayStatus>,
}

fn parse_match(raw: &Value, errors: &mut Vec<FieldError>) -> Option<Match> {
    let Value::Object(m) = raw else {
        errors.push(FieldError::new("match", "invalid_type", "Ожидается объект"));
        return None;
    };
    if let Some(payee) = m.get("payee") {
        Reader {
            errors: &mut *errors,
        }
        .unknown(m, "/match", &["payee"]);
        return payee::parse_payee_match(payee, errors);
    }
    let mut r = Reader { errors };
    match (m.get("category"), m.get("payer")) {
        (Some(_), None) => {
            r.unknown(m, "/match", &["category"]);
            r.required(m, "category", "/match", Category::parse)
                .map(|category| Match::Category { category })
        }
        (None, Some(Value::Object(p))) => {
            r.unknown(m, "/match", &["payer"]);
            r.unknown(p, "/match/payer", &["kind", "value"]);
            let kind = r.required(p, "kind", "/match/payer", |path, raw| {
                serde_json::from_value::<PayerKind>(Value::String(raw.trim().to_string()))
                    .map_err(|_| {
                        FieldError::new(
                            path,
                            "invalid_payer_kind",
                            "Допустимые значения: snils, passport, birth_certificate, sts, inn, inn_kpp",
                        )
                    })
            })?;
            r.required(p, "value", "/match/payer", |path, raw| {
                canonical(kind, path, raw)
            })
            .map(|value| Match::Payer {
                payer: Payer { kind, value },
            })
        }
        _ => {
            r.errors.push(FieldError::new(
                "match",
                "invalid_match",
                "Укажите одно: {\"category\": …} или {\"payer\": {\"kind\": …, \"value\": …}}",
            ));
            None
        }
    }
}

fn parse_trigger(raw: &Value, errors: &mut Vec<FieldError>) -> Option<Trigger> {
    let Value::Object(t) = raw else {
        errors.push(FieldError::new(
            "trigger",
            "invalid_type",
            "Ожидается объект",
        ));
        return None;
    };
    let number = |name: &str, max: u64, errors: &mut Vec<FieldError>| -> Option<u8> {
        match t.get(name).and_then(Value::as_u64) {
            Some(n) if (1..=max).contains(&n) => u8::try_from(n).ok(),
            _ => {
                errors.push(FieldError::new(
                    &format!("/trigger/{name}"),
                    "out_of_range",
                    format!("Целое число от 1 до {max}"),
                ));
                None
            }
        }
    };
    let allowed = |known: &[&str], errors: &mut Vec<FieldError>| {
        Reader { errors }.unknown(t, "/trigger", known);
    };
    match t.get("type").and_then(Value::as_str) {
        Some("new_bill") => {
            allowed(&["type"], errors);
            Some(Trigger::NewBill)
        }
        Some("monthly") => {
            allowed(&["type", "day"], errors);
            // Up to the 28th, so every month has the day.
            number("day", 28, errors).map(|day| Trigger::Monthly { day })
        }
        Some("weekly") => {
            allowed(&["type", "weekday"], errors);
            number("weekday", 7, errors).map(|weekday| Trigger::Weekly { weekday })
        }
        _ => {
            errors.push(FieldError::new(
                "/trigger/type",
                "invalid_trigger",
                "Допустимые значения: new_bill, monthly, weekly",
            ));
            None
        }
    }
}

impl AutopayFields {
    /// Reads a body; `creating` requires every field but `status`.
    pub fn parse(body: &Map<String, Value>, creating: bool) -> Result<Self, AppError> {
        crate::services::payments::refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        let mut fields = AutopayFields::default();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(
            body,
            "",
            &["name", "match", "method_id", "limit", "trigger", "status"],
        );
        if body.contains_key("name") || creating {
            fields.name = r.required(body, "name", "", text);
        }
        if body.contains_key("method_id") || creating {
            fields.method_id = r.required(body, "method_id", "", |path, raw| {
                MethodId::parse(raw.trim()).map_err(|_| {
                    FieldError::new(
                        path,
                        "invalid_method_id",
                        "Идентификатор сохранённого способа оплаты, pm_…",
                    )
                })
            });
        }
        match body.get("limit") {
            Some(v) => match v.as_u64() {
                Some(l) if (1..=MAX_LIMIT).contains(&l) => fields.limit = Some(l),
                _ => errors.push(FieldError::new(
                    "limit",
                    "invalid_limit",
                    format!("Лимит в копейках: целое число от 1 до {MAX_LIMIT}"),
                )),
            },
            None if creating => {
                errors.push(FieldError::new("limit", "required", "Обязательное поле"))
            }
            None => {}
        }
        match body.get("match") {
            Some(v) => fields.matching = parse_match(v, &mut errors),
            None if creating => {
                errors.push(FieldError::new("match", "required", "Обязательное поле"))
            }
            None => {}
        }
        match body.get("trigger") {
            Some(v) => fields.trigger = parse_trigger(v, &mut errors),
            None if creating => {
                errors.push(FieldError::new("trigger", "required", "Обязательное поле"))
            }
            None => {}
        }
        match body.get("status").and_then(Value::as_str) {
            Some("active") => fields.status = Some(AutopayStatus::Active),
            Some("paused") => fields.status = Some(AutopayStatus::Paused),
            None if !body.contains_key("status") => {}
            _ => errors.push(FieldError::new(
                "status",
                "invalid_status",
                "Допустимые значения: active, paused",
            )),
        }
        if errors.is_empty() {
            Ok(fields)
        } else {
            Err(AppError::Validation(errors))
        }
    }
}

#[trait_variant::make(Send)]
pub trait AutopayStore {
    async fn autopays(&self, account_id: &AccountId) -> Result<Vec<Autopay>, StoreError>;

    /// Writes a new autopay and its schedule index entry if the account stays within
    /// `cap`.
    async fn create_autopay(&self, autopay: &Autopay, cap: Cap) -> Result<CappedAdd, StoreError>;

    /// Writes an autopay and its schedule index entry (dropping the old one's).
    async fn put_autopay(
        &self,
        autopay: &Autopay,
        previous: Option<&Trigger>,
    ) -> Result<(), StoreError>;

    async fn delete_autopay(&self, autopay: &Autopay) -> Result<(), StoreError>;

    /// One page of (account, autopay), at most `limit`, of the autopays a schedule run
    /// on a day of the month or week looks at: those of `page`'s trigger in its shard of
    /// that day's index, after its cursor; and the cursor of the next page, if any.
    async fn scheduled_autopays(
        &self,
        page: &SchedulePage,
        limit: usize,
    ) -> Result<SchedulePageOf, StoreError>;

    /// Claims telling the citizen about a bill an autopay skipped; `false`: told before.
    async fn claim_skip_notice(&self, skip: SkippedBill<'_>, now: i64) -> Result<bool, StoreError>;
}

/// A bill an autopay skipped (over its limit), as the marker of telling the citizen once
/// is keyed: one value, so that the service, the store and its double name it the same
/// way.
#[derive(Debug, Clone, Copy)]
pub struct SkippedBill<'a> {
    pub account_id: &'a AccountId,
    pub autopay_id: &'a AutopayId,
    pub uin: &'a Uin,
}

/// The stores an autopay service works on (those of payments and charges among them),
/// named once for its impl blocks.
pub trait AutopayStores:
    AutopayStore + RunStore + PaymentStores + ChargeStore + PortalChargeStore
{
}

impl<T: AutopayStore + RunStore + PaymentStores + ChargeStore + PortalChargeStore> AutopayStores
    for T
{
}

/// What one run of an autopay did with the bills it looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AutopayRun {
    pub paid: Vec<Uin>,
    pub over_limit: Vec<Uin>,
    pub declined: Vec<Uin>,
    pub waiting: Vec<Uin>,
}

pub struct AutopayService<'a, S, G, M, Q> {
    store: &'a S,
    payments: &'a PaymentService<S, G, M, Q>,
    charges: &'a ChargeService<S>,
    notifier: &'a M,
}

impl<'a, S: AutopayStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    AutopayService<'a, S, G, M, Q>
{
    pub fn new(
        store: &'a S,
        payments: &'a PaymentService<S, G, M, Q>,
        charges: &'a ChargeService<S>,
        notifier: &'a M,
    ) -> Self {
        Self {
            store,
            payments,
            charges,
            notifier,
        }
    }

    pub async fn list(&self, account_id: &AccountId) -> Result<Vec<Autopay>, AppError> {
        Ok(self.store.autopays(account_id).await?)
    }

    pub async fn get(&self, account_id: &AccountId, id: &AutopayId) -> Result<Autopay, AppError> {
        self.store
            .autopays(account_id)
            .await?
            .into_iter()
            .find(|a| a.id == *id)
            .ok_or(AppError::NotFound("autopay"))
    }

    async fn check_method(
        &self,
        account_id: &AccountId,
        method_id: &MethodId,
    ) -> Result<(), AppError> {
        if self
            .payments
            .methods(&PayingAs::Citizen(account_id.clone()))
            .await?
            .iter()
            .any(|m| m.id == *method_id)
        {
            Ok(())
        } else {
            Err(AppError::Validation(vec![FieldError::new(
                "method_id",
                "payment_method_not_found",
                "У вас нет такого сохранённого способа оплаты",
            )]))
        }
    }

    /// A new autopay pays bills without the citizen: it needs a fresh proof of presence.
    pub async fn create(
        &self,
        account_id: &AccountId,
        fields: AutopayFields,
        presence: Presence,
        now: OffsetDateTime,
    ) -> Result<Autopay, AppError> {
        presence.require()?;
        let missing = || AppError::Internal("autopay fields not checked".into());
        let method_id = fields.method_id.ok_or_else(missing)?;
        self.check_method(account_id, &method_id).await?;
        let too_many = || AppError::TooMany {
            what: "autopays",
            limit: MAX_AUTOPAYS,
        };
        let cap = Cap {
            limit: MAX_AUTOPAYS,
            seen: self.store.autopays(account_id).await?.len(),
        };
        if cap.seen >= cap.limit {
            return Err(too_many());
        }
        let autopay = Autopay {
            id: AutopayId::new(),
            account_id: account_id.clone(),
            name: fields.name.ok_or_else(missing)?,
            matching: fields.matching.ok_or_else(missing)?,
            method_id,
            limit: fields.limit.ok_or_else(missing)?,
            trigger: fields.trigger.ok_or_else(missing)?,
            status: fields.status.unwrap_or(AutopayStatus::Active),
            paused_reason: None,
            created_at: now.unix_timestamp(),
            generation: 0,
        };
        payee::check_payee_autopay(&autopay)?;
        match self.store.create_autopay(&autopay, cap).await? {
            CappedAdd::Added | CappedAdd::AlreadyThere => Ok(autopay),
            CappedAdd::Full => Err(too_many()),
        }
    }

    /// Changes an autopay; a change that lets it pay more (a higher limit, another
    /// match, another method, switching it back on) needs a fresh proof of presence,
    /// one that lets it pay less (a lower limit, a pause, a new name) does not.
    pub async fn update(
        &self,
        account_id: &AccountId,
        id: &AutopayId,
        fields: AutopayFields,
        presence: Presence,
    ) -> Result<Autopay, AppError> {
        let current = self.get(account_id, id).await?;
        if widens(&current, &fields) {
            presence.require()?;
        }
        if let Some(method_id) = &fields.method_id {
            self.check_method(account_id, method_id).await?;
        }
        let mut next = current.clone();
        if let Some(v) = fields.name {
            next.name = v;
        }
        if let Some(v) = fields.matching {
            next.matching = v;
        }
        if let Some(v) = fields.method_id {
            if v != next.method_id {
                next.generation += 1;
            }
            next.method_id = v;
        }
        if let Some(v) = fields.limit {
            next.limit = v;
        }
        if let Some(v) = fields.trigger {
            next.trigger = v;
        }
        if let Some(v) = fields.status {
            if v == AutopayStatus::Active && current.status == AutopayStatus::Paused {
                next.paused_reason = None;
                next.generation += 1;
            }
            next.status = v;
        }
        payee::check_payee_autopay(&next)?;
        self.store
            .put_autopay(&next, Some(&current.trigger))
            .await?;
        Ok(next)
    }

    pub async fn remove(&self, account_id: &AccountId, id: &AutopayId) -> Result<(), AppError> {
        let current = self.get(account_id, id).await?;
        Ok(self.store.delete_autopay(&current).await?)
    }
}

pub const AUTOPAY_SUBJECT: &str = "Автоплатёж";

/// A bank's decline reason, for the citizen.
fn decline_text(reason: &str) -> String {
    match reason {
        "insufficient_funds" => "на карте недостаточно средств".into(),
        "card_declined" => "банк отклонил платёж".into(),
        "token_used" | "unknown_token" | "token_expired" => {
            "банк не принял сохранённую карту".into()
        }
        _ => "платёж не прошёл".into(),
    }
}

/// Autopays of one schedule page, unless `AUTOPAY_RUN_PAGE_SIZE` says otherwise.
pub const PAGE_SIZE: usize = 50;
/// Autopays of one page paid at the same time.
const PAGE_CONCURRENCY: usize = 5;
/// Shards of each day's schedule index ([`Shard::of`] the autopay id). Changing it
/// strands the entries written under the old count: a change needs the index rewritten
/// first.
pub const SCHEDULE_SHARDS: u16 = 64;

/// One page of a shard of the schedule index.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchedulePageOf {
    pub entries: Vec<(AccountId, AutopayId)>,
    pub next: Option<String>,
}

/// The queued work of a schedule run: a page of one shard of one day's index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePage {
    pub run: String,
    /// The run's day (Moscow): a page handled after midnight still pays that day's.
    #[serde(with = "iso_date")]
    pub date: time::Date,
    pub trigger: Trigger,
    pub shard: Shard,
    /// The last sort key of the previous page.
    pub after: Option<String>,
}

impl SchedulePage {
    /// The shard's name within its run.
    pub fn shard_id(&self) -> String {
        let trigger = match self.trigger {
            Trigger::NewBill => "new_bill".to_string(),
            Trigger::Monthly { day } => format!("monthly-{day}"),
            Trigger::Weekly { weekday } => format!("weekly-{weekday}"),
        };
        format!("{trigger}-{}", self.shard.name())
    }
}

/// A day as `YYYY-MM-DD` in messages.
mod iso_date {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(date: &time::Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        ))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<time::Date, D::Error> {
        let raw = String::deserialize(d)?;
        let mut parts = raw.splitn(3, '-');
        let mut next = || parts.next().and_then(|p| p.parse::<i32>().ok());
        let (Some(year), Some(month), Some(day)) = (next(), next(), next()) else {
            return Err(D::Error::custom("a date YYYY-MM-DD"));
        };
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok())
            .ok_or_else(|| D::Error::custom("a month 1-12"))?;
        let day = u8::try_from(day).map_err(D::Error::custom)?;
        time::Date::from_calendar_date(year, month, day).map_err(D::Error::custom)
    }
}

/// What one schedule page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOutcome {
    /// Autopays that ran (were due and active).
    pub ran: usize,
    pub failed: usize,
    /// This page finished the run's last shard.
    pub run_completed: bool,
}

/// Where schedule pages are queued.
#[trait_variant::make(Send)]
pub trait SchedulePageQueue {
    async fn enqueue_pages(&self, pages: &[SchedulePage]) -> Result<(), StoreError>;
}

/// A message of the autopay runner's queues: a schedule page, or a new bill.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum AutopayWork {
    Page(SchedulePage),
    NewBill(NewBillForAccount),
}

/// The message that asks the autopay runner to look at a new bill for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBillForAccount {
    pub account_id: AccountId,
    pub uin: String,
}

impl NewBillForAccount {
    /// The bill the message names; `None` for a UIN that does not parse, which names no
    /// bill (only parsed UINs are queued).
    pub fn bill(&self) -> Option<Uin> {
        Uin::parse("uin", &self.uin).ok()
    }
}

#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod tests;
