//! New-bill notices and the settings that steer them.
//!
//! - **Settings** (`GET/PUT /v1/notification-settings`): per bill category, whether a new
//!   bill is told by e-mail and by SMS; education services (education, kindergarten,
//!   clubs) by e-mail unless the citizen turns it off, as on mos.ru. One more switch sends
//!   the outcome of a profile check by SMS too (the e-mail always goes).
//! - **Who holds what** (`HOLDER#{payer key}`): for every identifier a citizen's bills are
//!   found by (verified own documents, children's, vehicles'), an index item naming the
//!   account, kept in step after each change of the profile's verified documents, the
//!   children and the vehicles. It is a hint: before anything is sent the account's
//!   identifiers are read again, so a stale entry never tells anyone about a bill that is
//!   not theirs; it only can miss a notice until the next change re-syncs it.
//! - **Telling**: the charges function queues the UIN of every unpaid charge it writes;
//!   the bill-notices worker finds the holders and tells each once per channel. A marker
//!   item per (account, bill, channel) is claimed before the send, so a repeated charge
//!   write, a redelivered message or a second payer naming the same account never sends
//!   twice.
//! - **Wording**: the portal's own, filled only with values the portal checked (category,
//!   amount, due date, UIN, whose bill it is, the portal's address). A biller's free text
//!   (purpose, payee name) never goes into an SMS or e-mail: a citizen reads these as the
//!   portal speaking, so a biller must not be able to put a link or a request there.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::crypto::Hasher;
use crate::domain::{Email, Phone};
use crate::error::{AppError, FieldError};
use crate::metrics::{self, Metric, NoticeChannel, NoticeKind};
use crate::redact::Secret;
use crate::services::bills::{holdings_of, Holder};
use crate::services::charges::{
    payer_key, Category, ChargeStatus, ChargeStore, Payer, StoredCharge,
};
use crate::services::codes::Notifier;
use crate::services::household::HouseholdStore;
use crate::services::profile::ProfileStore;
use crate::services::StoreError;

/// How a citizen wants to hear of something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Channels {
    pub email: bool,
    pub sms: bool,
}

/// A citizen's notification settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSettings {
    /// New bills, per category.
    pub bills: BTreeMap<Category, Channels>,
    /// The outcome of a profile check by SMS as well as by e-mail.
    pub verification_sms: bool,
}

/// Categories told by e-mail unless the citizen says otherwise: education services.
pub const ON_BY_DEFAULT: [Category; 3] =
    [Category::Education, Category::Kindergarten, Category::Clubs];

impl Default for NotificationSettings {
    fn default() -> Self {
        let bills = Category::ALL
            .iter()
            .map(|(_, c)| {
                let on = ON_BY_DEFAULT.contains(c);
                (
                    *c,
                    Channels {
                        email: on,
                        sms: false,
                    },
                )
            })
            .collect();
        Self {
            bills,
            verification_sms: false,
        }
    }
}

impl NotificationSettings {
    pub fn for_category(&self, category: Category) -> Channels {
        self.bills.get(&category).copied().unwrap_or_default()
    }

    /// The settings a `PUT` sets: what the body names, defaults for what it leaves out.
    ///
    /// `{"bills": {"fines": {"email": true, "sms": true}}, "verification": {"sms": true}}`
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        let mut settings = Self::default();
        let mut errors = Vec::new();
        for key in body.keys() {
            if key != "bills" && key != "verification" {
                errors.push(FieldError::new(key, "unknown_field", "Неизвестное поле"));
            }
        }
        match body.get("bills") {
            None => {}
            Some(Value::Object(bills)) => {
                for (name, channels) in bills {
                    let path = format!("bills/{name}");
                    match Category::parse(&path, name) {
                        Ok(category) => {
                            let default = settings.for_category(category);
                            if let Some(c) = parse_channels(&path, channels, default, &mut errors) {
                                settings.bills.insert(category, c);
                            }
                        }
                        Err(e) => errors.push(e),
                    }
                }
            }
            Some(_) => errors.push(FieldError::new(
                "bills",
                "invalid_type",
                "Ожидается объект с категориями начислений",
            )),
        }
        match body.get("verification") {
            None => {}
            Some(Value::Object(v)) => {
                for key in v.keys().filter(|k| *k != "sms") {
                    errors.push(FieldError::new(
                        &format!("verification/{key}"),
                        "unknown_field",
                        "Неизвестное поле: результат проверки всегда приходит по почте, по SMS — по выбору",
                    ));
                }
                match v.get("sms") {
                    None => {}
                    Some(Value::Bool(b)) => settings.verification_sms = *b,
                    Some(_) => errors.push(FieldError::new(
                        "verification/sms",
                        "invalid_type",
                        "Ожидается true или false",
                    )),
                }
            }
            Some(_) => errors.push(FieldError::new(
                "verification",
                "invalid_type",
                "Ожидается объект",
            )),
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(AppError::Validation(errors))
        }
    }

    /// As the API shows it: every category with both channels.
    pub fn view(&self) -> Value {
        let bills: Map<String, Value> = Category::ALL
            .iter()
            .map(|(name, c)| {
                let ch = self.for_category(*c);
                (
                    name.to_string(),
                    serde_json::json!({"email": ch.email, "sms": ch.sms}),
                )
            })
            .collect();
        serde_json::json!({
            "bills": bills,
            "verification": {"email": true, "sms": self.verification_sms},
        })
    }
}

fn parse_channels(
    path: &str,
    raw: &Value,
    default: Channels,
    errors: &mut Vec<FieldError>,
) -> Option<Channels> {
    let Value::Object(object) = raw else {
        errors.push(FieldError::new(
            path,
            "invalid_type",
            "Ожидается объект {\"email\": …, \"sms\": …}",
        ));
        return None;
    };
    let mut channels = default;
    let before = errors.len();
    for (key, value) in object {
        let at = format!("{path}/{key}");
        let slot = match key.as_str() {
            "email" => &mut channels.email,
            "sms" => &mut channels.sms,
            _ => {
                errors.push(FieldError::new(&at, "unknown_field", "Неизвестное поле"));
                continue;
            }
        };
        match value {
            Value::Bool(b) => *slot = *b,
            _ => errors.push(FieldError::new(
                &at,
                "invalid_type",
                "Ожидается true или false",
            )),
        }
    }
    (errors.len() == before).then_some(channels)
}

/// A channel a bill notice goes by; each is claimed and sent on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }
}

impl From<Channel> for NoticeChannel {
    fn from(channel: Channel) -> Self {
        match channel {
            Channel::Email => NoticeChannel::Email,
            Channel::Sms => NoticeChannel::Sms,
        }
    }
}

pub trait NoticeStore {
    fn notification_settings(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Option<NotificationSettings>, StoreError>> + Send;

    fn put_notification_settings(
        &self,
        account_id: &str,
        settings: &NotificationSettings,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Accounts the index names as holders of a payer identifier (its key).
    fn holders(
        &self,
        payer_key: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The payer keys the index holds for an account.
    fn holdings(
        &self,
        account_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Adds and removes index entries of an account (each entry is two items: under the
    /// payer key and under the account).
    fn change_holdings(
        &self,
        account_id: &str,
        add: &[String],
        remove: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims the notice of a bill to an account by a channel. `false`: claimed before.
    fn claim_notice(
        &self,
        account_id: &str,
        uin: &str,
        channel: Channel,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives a claim back after the send failed, so a retry sends it.
    fn release_notice(
        &self,
        account_id: &str,
        uin: &str,
        channel: Channel,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The message that asks for a bill's notices: the UIN alone, so the queue holds nothing
/// about the payers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillNotice {
    pub uin: String,
}

/// Where the UINs of written charges go to be told to their holders.
pub trait BillAnnouncer {
    fn announce(&self, uins: &[String]) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Announces nothing: for code that writes charges without notices (tests, the admin
/// command's tools).
impl BillAnnouncer for () {
    async fn announce(&self, _: &[String]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Brings the holder index entries of one account in line with what identifies its bills.
pub async fn sync_account<S>(store: &S, hasher: &Hasher, account_id: &str) -> Result<(), AppError>
where
    S: ProfileStore + HouseholdStore + NoticeStore + Sync,
{
    let wanted: BTreeSet<String> = match holdings_of(store, account_id).await? {
        Some((_, ids)) => ids
            .iter()
            .map(|(payer, _)| payer_key(hasher, payer))
            .collect(),
        None => BTreeSet::new(),
    };
    let held: BTreeSet<String> = store.holdings(account_id).await?.into_iter().collect();
    let add: Vec<String> = wanted.difference(&held).cloned().collect();
    let remove: Vec<String> = held.difference(&wanted).cloned().collect();
    if !add.is_empty() || !remove.is_empty() {
        store.change_holdings(account_id, &add, &remove).await?;
    }
    Ok(())
}

/// What a full read of the holder index found of one account, by payer key: whether the
/// entry under the payer key (`HOLDER#`) and its mirror under the account (`HOLDS#`) exist.
pub type FoundEntries = BTreeMap<String, (bool, bool)>;

/// Everything the holder index holds, by account: what a repair starts from.
pub trait HolderIndexScan {
    /// Accounts with a profile, each with the index entries found for it, and the index
    /// entries of accounts without one. A full read of the table: for repairs only.
    fn scan_holder_index(
        &self,
    ) -> impl Future<Output = Result<BTreeMap<String, FoundEntries>, StoreError>> + Send;
}

/// What a repair of the holder index changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexRepair {
    pub accounts: usize,
    /// Entries written (missing, or with a half missing).
    pub added: usize,
    /// Entries that named an account for an identifier it no longer holds.
    pub removed: usize,
}

/// Rebuilds the holder index from the profiles (verified own documents), the verified
/// children and the vehicles: every entry that should be there is written whole, every
/// other entry removed. Repeating it changes nothing.
pub async fn repair_holder_index<S>(store: &S, hasher: &Hasher) -> Result<IndexRepair, AppError>
where
    S: ProfileStore + HouseholdStore + NoticeStore + HolderIndexScan + Sync,
{
    let mut repair = IndexRepair::default();
    for (account_id, found) in store.scan_holder_index().await? {
        repair.accounts += 1;
        let wanted: BTreeSet<String> = match holdings_of(store, &account_id).await? {
            Some((_, ids)) => ids
                .iter()
                .map(|(payer, _)| payer_key(hasher, payer))
                .collect(),
            None => BTreeSet::new(),
        };
        let add: Vec<String> = wanted
            .iter()
            .filter(|k| found.get(*k) != Some(&(true, true)))
            .cloned()
            .collect();
        let remove: Vec<String> = found
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            store.change_holdings(&account_id, &add, &remove).await?;
            tracing::info!(account_id = %account_id, added = add.len(), removed = remove.len(), "holder index repaired");
        }
        repair.added += add.len();
        repair.removed += remove.len();
    }
    Ok(repair)
}

/// Syncs the holder index of accounts after a change to what identifies them (verified
/// documents, children, vehicles). Best effort: the change itself is done and stays
/// done; a failure is logged, and the account's next change syncs again.
pub async fn sync_holdings<S>(store: &S, hasher: &Hasher, account_ids: &[String])
where
    S: ProfileStore + HouseholdStore + NoticeStore + Sync,
{
    for account_id in account_ids {
        if let Err(e) = sync_account(store, hasher, account_id).await {
            tracing::warn!(account_id = %account_id, error = %e, "holder index not synced; the next change retries");
        }
    }
}

/// A citizen's notification settings.
pub struct SettingsService<'a, S> {
    store: &'a S,
}

impl<'a, S: NoticeStore + Sync> SettingsService<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Self { store }
    }

    pub async fn get(&self, account_id: &str) -> Result<NotificationSettings, AppError> {
        Ok(self
            .store
            .notification_settings(account_id)
            .await?
            .unwrap_or_default())
    }

    pub async fn put(
        &self,
        account_id: &str,
        settings: &NotificationSettings,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        Ok(self
            .store
            .put_notification_settings(account_id, settings, now.unix_timestamp())
            .await?)
    }
}

/// What one bill's notice run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoticeRun {
    /// Messages sent.
    pub sent: usize,
    /// Accounts the index named that no longer hold any of the bill's identifiers.
    pub stale: usize,
}

/// Told of every account a new bill belongs to (after the index hint was checked), so
/// that its new-bill autopays can pay it.
pub trait NewBillHook {
    fn new_bill(
        &self,
        account_id: &str,
        charge: &StoredCharge,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

impl NewBillHook for () {
    async fn new_bill(&self, _: &str, _: &StoredCharge) -> Result<(), StoreError> {
        Ok(())
    }
}

pub struct NoticeService<S, M, H = ()> {
    store: S,
    notifier: M,
    hasher: Hasher,
    hook: H,
    /// The portal's address, the one link a notice carries.
    portal_url: String,
}

impl<S, M> NoticeService<S, M> {
    pub fn new(store: S, notifier: M, hasher: Hasher, portal_url: String) -> Self {
        Self {
            store,
            notifier,
            hasher,
            hook: (),
            portal_url,
        }
    }

    /// The same service, telling `hook` of every account a new bill belongs to.
    pub fn with_hook<H>(self, hook: H) -> NoticeService<S, M, H> {
        NoticeService {
            store: self.store,
            notifier: self.notifier,
            hasher: self.hasher,
            hook,
            portal_url: self.portal_url,
        }
    }
}

impl<S, M, H> NoticeService<S, M, H>
where
    S: ChargeStore + ProfileStore + HouseholdStore + NoticeStore + Sync,
    M: Notifier + Sync,
    H: NewBillHook + Sync,
{
    /// Tells every holder of a bill's identifiers about it, once per channel. `Err`: some
    /// notice was not sent and the run should be tried again (what was sent stays sent).
    pub async fn announce(&self, uin: &str, now: OffsetDateTime) -> Result<NoticeRun, AppError> {
        let mut run = NoticeRun::default();
        let Some(charge) = self.store.charge(uin).await? else {
            return Ok(run);
        };
        if charge.status != ChargeStatus::Unpaid {
            return Ok(run);
        }
        let keyed: Vec<(String, &Payer)> = charge
            .body
            .payers
            .iter()
            .map(|p| (payer_key(&self.hasher, p), p))
            .collect();
        let mut candidates: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let found = futures_util::future::try_join_all(
            keyed.iter().map(|(key, _)| self.store.holders(key)),
        )
        .await?;
        for ((key, _), accounts) in keyed.iter().zip(found) {
            for account in accounts {
                candidates.entry(account).or_default().push(key.clone());
            }
        }
        let mut failed = None;
        for (account_id, keys) in candidates {
            // The index is a hint: what the account holds now decides.
            let holdings = holdings_of(&self.store, &account_id).await?;
            let (account, holders) = match holdings {
                Some((account, ids)) => {
                    let holders: Vec<Holder> = ids
                        .into_iter()
                        .filter(|(payer, _)| charge.body.payers.contains(payer))
                        .map(|(_, holder)| holder)
                        .collect();
                    (Some(account), holders)
                }
                None => (None, Vec::new()),
            };
            let Some(account) = account.filter(|_| !holders.is_empty()) else {
                run.stale += 1;
                self.store.change_holdings(&account_id, &[], &keys).await?;
                continue;
            };
            if let Err(e) = self.hook.new_bill(&account_id, &charge).await {
                tracing::warn!(account_id = %account_id, uin, error = %e, "new-bill autopays not asked; the message is retried");
                failed = Some(AppError::from(e));
            }
            let channels = SettingsService::new(&self.store)
                .get(&account_id)
                .await?
                .for_category(charge.body.category);
            let today = now.to_offset(crate::services::MOSCOW).date();
            let text = notice_text(&charge, &holders, today, &self.portal_url);
            let at = now.unix_timestamp();
            if channels.email {
                if let Ok(email) = Email::parse("email", &account.email) {
                    let text = Secret::new(text.clone());
                    let send = self.notifier.send_email(&email, NOTICE_SUBJECT, &text);
                    match self
                        .send_once(&account_id, uin, Channel::Email, at, send)
                        .await
                    {
                        Ok(true) => run.sent += 1,
                        Ok(false) => {}
                        Err(e) => failed = Some(e),
                    }
                }
            }
            if channels.sms {
                if let Ok(phone) = Phone::parse("phone", &account.phone) {
                    let sms = Secret::new(sms_text(&charge, today, &self.portal_url));
                    let send = self.notifier.send_sms(&phone, &sms);
                    match self
                        .send_once(&account_id, uin, Channel::Sms, at, send)
                        .await
                    {
                        Ok(true) => run.sent += 1,
                        Ok(false) => {}
                        Err(e) => failed = Some(e),
                    }
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(run),
        }
    }

    /// Claims, sends, and gives the claim back if the send failed. `Ok(false)`: sent
    /// before. `send` is not polled unless the claim is won.
    async fn send_once(
        &self,
        account_id: &str,
        uin: &str,
        channel: Channel,
        now: i64,
        send: impl Future<Output = Result<(), crate::services::codes::DeliveryError>>,
    ) -> Result<bool, AppError> {
        if !self
            .store
            .claim_notice(account_id, uin, channel, now)
            .await?
        {
            return Ok(false);
        }
        match send.await {
            Ok(()) => {
                tracing::info!(
                    account_id,
                    uin,
                    channel = channel.as_str(),
                    "bill notice sent"
                );
                metrics::emit(Metric::NoticesSent {
                    kind: NoticeKind::NewBill,
                    channel: channel.into(),
                });
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(account_id, uin, channel = channel.as_str(), error = %e, "bill notice not sent");
                self.store.release_notice(account_id, uin, channel).await?;
                Err(AppError::StoreUnavailable(format!("notice not sent: {e}")))
            }
        }
    }
}

pub const NOTICE_SUBJECT: &str = "Новое начисление";

/// `150000` kopecks as `1 500,00 ₽`.
pub fn roubles(kopecks: u64) -> String {
    let whole = (kopecks / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(ch);
    }
    format!("{grouped},{:02} ₽", kopecks % 100)
}

fn category_title(category: Category) -> &'static str {
    match category {
        Category::Utilities => "ЖКУ",
        Category::Education => "образование",
        Category::Kindergarten => "детский сад",
        Category::Clubs => "кружки и секции",
        Category::Fines => "штраф",
        Category::Taxes => "налоги",
        Category::Other => "прочее",
    }
}

/// The e-mail: the portal's wording, checked values only (see the module's notes).
fn notice_text(
    charge: &crate::services::charges::StoredCharge,
    holders: &[Holder],
    today: time::Date,
    portal_url: &str,
) -> String {
    let b = &charge.body;
    let mut lines = vec![format!(
        "Новое начисление ({}).",
        category_title(b.category)
    )];
    let mut whose: Vec<String> = Vec::new();
    for holder in holders {
        let text = match holder {
            Holder::Own => "на ваше имя".to_string(),
            Holder::Child { first_name, .. } => format!("для ребёнка {first_name}"),
            Holder::Vehicle { plate, .. } => format!("по автомобилю {plate}"),
            Holder::Saved => continue,
        };
        if !whose.contains(&text) {
            whose.push(text);
        }
    }
    if !whose.is_empty() {
        lines.push(format!("Начислено {}.", whose.join(", ")));
    }
    let due = charge.amount_due(today);
    if due < b.amount {
        let until = b.discount.as_ref().map(|d| d.until.as_str()).unwrap_or("");
        lines.push(format!(
            "К оплате {} со скидкой до {until} (без скидки {}).",
            roubles(due),
            roubles(b.amount)
        ));
    } else {
        lines.push(format!("К оплате {}.", roubles(due)));
    }
    lines.push(format!("Оплатить до {}. УИН {}.", b.due_date, charge.uin));
    lines.push(format!(
        "Подробности и оплата — в разделе «Мои платежи» на {portal_url}. Мы не присылаем ссылок на оплату в письмах и SMS."
    ));
    lines.join("\n")
}

/// The SMS: the portal's wording, checked values only.
fn sms_text(
    charge: &crate::services::charges::StoredCharge,
    today: time::Date,
    portal_url: &str,
) -> String {
    format!(
        "Новое начисление ({}): {} до {}. УИН {}. Оплата на {portal_url}",
        category_title(charge.body.category),
        roubles(charge.amount_due(today)),
        charge.body.due_date,
        charge.uin
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn education_services_are_on_by_email_by_default() {
        let s = NotificationSettings::default();
        for c in ON_BY_DEFAULT {
            assert_eq!(
                s.for_category(c),
                Channels {
                    email: true,
                    sms: false
                }
            );
        }
        assert_eq!(s.for_category(Category::Fines), Channels::default());
        assert!(!s.verification_sms);
        let view = s.view();
        assert_eq!(view["bills"]["kindergarten"]["email"], true);
        assert_eq!(view["bills"]["utilities"]["email"], false);
        assert_eq!(view["bills"].as_object().unwrap().len(), 7);
    }

    #[test]
    fn a_put_sets_what_it_names_and_defaults_the_rest() {
        let s = NotificationSettings::parse(&object(json!({
            "bills": {"fines": {"sms": true}, "clubs": {"email": false}},
            "verification": {"sms": true},
        })))
        .unwrap();
        assert_eq!(
            s.for_category(Category::Fines),
            Channels {
                email: false,
                sms: true
            }
        );
        assert_eq!(s.for_category(Category::Clubs), Channels::default());
        assert!(s.for_category(Category::Education).email);
        assert!(s.verification_sms);
    }

    #[test]
    fn bad_settings_name_each_field() {
        let err = NotificationSettings::parse(&object(json!({
            "bills": {"parking": {"email": true}, "fines": {"sms": "yes", "push": true}},
            "verification": {"email": false},
            "extra": 1,
        })))
        .unwrap_err();
        let AppError::Validation(errors) = err else {
            panic!("{err:?}")
        };
        let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
        for expected in [
            ("/bills/parking", "invalid_category"),
            ("/bills/fines/sms", "invalid_type"),
            ("/bills/fines/push", "unknown_field"),
            ("/verification/email", "unknown_field"),
            ("/extra", "unknown_field"),
        ] {
            assert!(found.contains(&expected), "{expected:?} in {found:?}");
        }
    }

    #[test]
    fn notices_carry_none_of_the_billers_text() {
        use crate::services::charges::{ChargeBody, Payee, PayerKind};
        let charge = StoredCharge {
            uin: "18810177220000000015".into(),
            biller_id: "b-1".into(),
            body: ChargeBody {
                amount: 150_000,
                payee: Payee {
                    name: "Звоните +7 900 000-00-00".into(),
                    ..Payee::default()
                },
                purpose: "Оплатите по ссылке http://evil.example/pay".into(),
                kbk: "07511302992020000130".into(),
                oktmo: "45383000".into(),
                bill_date: "2026-11-01".into(),
                due_date: "2026-12-10".into(),
                discount: None,
                category: Category::Kindergarten,
                payers: vec![Payer {
                    kind: PayerKind::Snils,
                    value: "11223344595".into(),
                }],
            },
            status: ChargeStatus::Unpaid,
            version: 1,
            updated_at: 0,
            locked_by: None,
            withdrawn: false,
            hold: None,
        };
        let today = time::Date::from_calendar_date(2026, time::Month::November, 2).unwrap();
        let email = notice_text(&charge, &[Holder::Own], today, "https://uslugi.example");
        let sms = sms_text(&charge, today, "https://uslugi.example");
        for text in [&email, &sms] {
            assert!(
                !text.contains("evil") && !text.contains("Оплатите"),
                "{text}"
            );
            assert!(!text.contains("Звоните"), "{text}");
            assert!(text.contains("1\u{a0}500,00 ₽"), "{text}");
            assert!(
                text.contains("2026-12-10") && text.contains(&charge.uin),
                "{text}"
            );
            assert!(text.contains("https://uslugi.example"), "{text}");
        }
        assert!(email.contains("детский сад") && email.contains("на ваше имя"));
    }

    #[test]
    fn amounts_in_roubles() {
        assert_eq!(roubles(0), "0,00 ₽");
        assert_eq!(roubles(5), "0,05 ₽");
        assert_eq!(roubles(150_000), "1\u{a0}500,00 ₽");
        assert_eq!(roubles(123_456_789), "1\u{a0}234\u{a0}567,89 ₽");
    }
}
