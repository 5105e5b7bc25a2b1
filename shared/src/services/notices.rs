//! The settings that steer new-bill notices, and the store the notices are kept in.
//!
//! - **Settings** (`GET/PUT /v1/notification-settings`): per bill category, whether a new
//!   bill is told by e-mail and by SMS; education services (education, kindergarten,
//!   clubs) by e-mail unless the citizen turns it off, as on mos.ru. One more switch sends
//!   the outcome of a profile check by SMS too (the e-mail always goes).
//! - **The store** ([`NoticeStore`]): the settings, the holder index (see
//!   [`crate::services::household::holdings`]) and the markers of notices told.
//! - **Announcing**: whoever writes charges hands their UINs to a [`BillAnnouncer`]; the
//!   telling itself is [`crate::services::bill_notices`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::domain::{AccountId, Category, Uin};
use crate::error::{AppError, FieldError};
use crate::metrics::NoticeChannel;
use crate::services::StoreError;
use crate::validation::validated;

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
        validated(settings, errors)
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

#[trait_variant::make(Send)]
pub trait NoticeStore {
    async fn notification_settings(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<NotificationSettings>, StoreError>;

    async fn put_notification_settings(
        &self,
        account_id: &AccountId,
        settings: &NotificationSettings,
        now: i64,
    ) -> Result<(), StoreError>;

    /// Accounts the index names as holders of a payer identifier (its key).
    async fn holders(&self, payer_key: &str) -> Result<Vec<AccountId>, StoreError>;

    /// The payer keys the index holds for an account.
    async fn holdings(&self, account_id: &AccountId) -> Result<Vec<String>, StoreError>;

    /// Adds and removes index entries of an account (each entry is two items: under the
    /// payer key and under the account).
    async fn change_holdings(
        &self,
        account_id: &AccountId,
        add: &[String],
        remove: &[String],
    ) -> Result<(), StoreError>;

    /// Claims the notice of a bill to an account by a channel. `false`: claimed before.
    async fn claim_notice(&self, mark: NoticeMark<'_>, now: i64) -> Result<bool, StoreError>;

    /// Gives a claim back after the send failed, so a retry sends it.
    async fn release_notice(&self, mark: NoticeMark<'_>) -> Result<(), StoreError>;
}

/// The marker of one bill's notice to one account by one channel: what a claim takes and
/// a release gives back, in one value so that the service, the store and its double name
/// it the same way.
#[derive(Debug, Clone, Copy)]
pub struct NoticeMark<'a> {
    pub account_id: &'a AccountId,
    pub uin: &'a Uin,
    pub channel: Channel,
}

/// The message that asks for a bill's notices: the UIN alone, so the queue holds nothing
/// about the payers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillNotice {
    pub uin: String,
}

impl BillNotice {
    /// The bill the message names; `None` for a UIN that does not parse, which names no
    /// bill (only parsed UINs are queued).
    pub fn bill(&self) -> Option<Uin> {
        Uin::parse("uin", &self.uin).ok()
    }
}

/// Where the UINs of written charges go to be told to their holders.
#[trait_variant::make(Send)]
pub trait BillAnnouncer {
    async fn announce(&self, uins: &[Uin]) -> Result<(), StoreError>;
}

/// Announces nothing: for code that writes charges without notices (tests, the admin
/// command's tools).
impl BillAnnouncer for () {
    async fn announce(&self, _: &[Uin]) -> Result<(), StoreError> {
        Ok(())
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

    pub async fn get(&self, account_id: &AccountId) -> Result<NotificationSettings, AppError> {
        Ok(self
            .store
            .notification_settings(account_id)
            .await?
            .unwrap_or_default())
    }

    pub async fn put(
        &self,
        account_id: &AccountId,
        settings: &NotificationSettings,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        Ok(self
            .store
            .put_notification_settings(account_id, settings, now.unix_timestamp())
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::field_codes;
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
        let found = field_codes(&err);
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
}
