//! The keys of the identity items, and accounts and security events as items.

use super::*;
use crate::domain::AccountLevel;

/// The index that lists an account's sessions (declared in the template).
pub const ACCOUNT_INDEX: &str = "gsi1";

pub(crate) fn account_key(id: &str) -> Item {
    key(format!("ACCOUNT#{id}"), "ACCOUNT")
}

pub(crate) fn login_key(login: &str) -> Item {
    key(format!("LOGIN#{login}"), "LOGIN")
}

pub(super) fn login_failures_key(login: &str) -> Item {
    key(format!("LOGINFAIL#{login}"), "LOGINFAIL")
}

pub(super) fn client_failures_key(client: &str, window_start: i64) -> Item {
    key(format!("LOGINIP#{client}#{window_start}"), "LOGINIP")
}

pub(super) fn session_key(id: &str) -> Item {
    key(format!("SESSION#{id}"), "SESSION")
}

pub(super) fn verification_token_item_key(token_key: &str) -> Item {
    key(format!("VTOKEN#{token_key}"), "VTOKEN")
}

pub(crate) fn event_put(table: &str, e: &SecurityEvent) -> Result<TransactWriteItem, StoreError> {
    let retention = i64::try_from(SECURITY_EVENT_RETENTION.as_secs()).unwrap_or(i64::MAX);
    // Milliseconds in the sort key keep events of one second in the order they happened.
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    let mut item = key(
        format!("ACCOUNT#{}", e.account_id),
        &format!("EVENT#{millis:015}#{}", uuid::Uuid::new_v4().simple()),
    );
    item.extend([
        ("kind".into(), s(e.kind)),
        ("at".into(), n(e.at)),
        ("ip".into(), s(&e.ip)),
        ("user_agent".into(), s(&e.user_agent)),
        (TTL_ATTRIBUTE.into(), n(e.at.saturating_add(retention))),
    ]);
    let put = build(
        Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .build(),
    )?;
    Ok(TransactWriteItem::builder().put(put).build())
}

pub(crate) fn account_from(id: &AccountId, item: &Item) -> Result<StoredAccount, StoreError> {
    Ok(StoredAccount {
        id: id.clone(),
        last_name: get_s(item, "last_name")?,
        first_name: get_s(item, "first_name")?,
        middle_name: get_s(item, "middle_name").ok(),
        email: get_s(item, "email")?,
        phone: get_s(item, "phone")?,
        password_hash: get_s(item, "password_hash")?,
        security_question: get_s(item, "security_question")?,
        security_answer_hash: get_s(item, "security_answer_hash")?,
        level: AccountLevel::parse(&get_s(item, "level")?)
            .ok_or_else(|| StoreError::Corrupt("account level".into()))?,
        created_at: get_n(item, "created_at")?,
        two_step_login: get_bool(item, "two_step_login"),
        // Alerts are on unless the owner turned them off.
        new_device_alerts: !matches!(
            item.get("new_device_alerts"),
            Some(AttributeValue::Bool(false))
        ),
        known_devices: get_list(item, "known_devices")
            .map(|devices| {
                devices
                    .iter()
                    .filter_map(|d| d.as_s().ok().cloned())
                    .collect()
            })
            .unwrap_or_default(),
        snils_login: get_s(item, "snils_login").ok(),
        confirmed_at: get_n(item, "confirmed_at").ok(),
        credentials_epoch: get_n(item, "credentials_epoch").unwrap_or(0),
        // The phone is a factor unless the owner removed it; a count never written is
        // the phone alone.
        sms_factor: !matches!(item.get("sms_factor"), Some(AttributeValue::Bool(false))),
        factor_count: get_n(item, "factor_count").unwrap_or(1),
        recovered_at: get_n(item, "recovered_at").ok(),
        factors_changed_at: get_n(item, "factors_changed_at").ok(),
        password_change_due: get_n(item, "password_change_due").ok(),
    })
}
