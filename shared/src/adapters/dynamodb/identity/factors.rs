//! Second factors as items: an account's authentication apps (`FACTOR#{id}`) and its
//! backup codes (`FACTOR#backup_codes`), in the account's partition; and the counts on
//! the account that keep its last factor from going while two-step login is on.

use super::*;
use crate::redact::Secret;
use crate::services::identity::{
    FactorChange, FactorRefusal, FactorUse, FactorWrite, StoredApp, StoredBackupCodes,
    StoredFactors,
};

const FACTOR_PREFIX: &str = "FACTOR#";
const BACKUP_CODES_SK: &str = "FACTOR#backup_codes";

fn app_key(account_id: &AccountId, id: &str) -> Item {
    key(
        format!("ACCOUNT#{account_id}"),
        &format!("{FACTOR_PREFIX}{id}"),
    )
}

fn backup_codes_key(account_id: &AccountId) -> Item {
    key(format!("ACCOUNT#{account_id}"), BACKUP_CODES_SK)
}

/// The account's update for a factor that goes: one fewer, unless that leaves none while
/// two-step login is on. A count never written is 1: the phone.
const LAST_FACTOR_STAYS: &str = "attribute_exists(pk) AND (attribute_not_exists(two_step_login) \
     OR two_step_login = :false OR factor_count > :one)";

fn app_from(item: &Item) -> Result<StoredApp, StoreError> {
    let sk = get_s(item, "sk")?;
    Ok(StoredApp {
        id: parse_id(sk.trim_start_matches(FACTOR_PREFIX))?,
        name: get_s(item, "name")?,
        secret: Secret::new(get_s(item, "secret")?),
        created_at: get_n(item, "created_at")?,
        confirmed: get_bool(item, "confirmed"),
        last_step: get_n(item, "last_step").ok(),
        last_used_at: get_n(item, "last_used_at").ok(),
    })
}

fn backup_codes_from(item: &Item) -> Result<StoredBackupCodes, StoreError> {
    Ok(StoredBackupCodes {
        // An empty string set is no attribute: every code is used.
        hashes: match item.get("codes") {
            Some(AttributeValue::Ss(codes)) => codes.clone(),
            _ => Vec::new(),
        },
        created_at: get_n(item, "created_at")?,
        last_used_at: get_n(item, "last_used_at").ok(),
    })
}

impl DynamoStore {
    /// [`IdentityStore::load_factors`]: one query of the account's `FACTOR#` items.
    pub(super) async fn factors_of(
        &self,
        account_id: &AccountId,
        now: i64,
    ) -> Result<StoredFactors, StoreError> {
        let items = self
            .query_prefix(&format!("ACCOUNT#{account_id}"), FACTOR_PREFIX)
            .await?;
        let mut factors = StoredFactors::default();
        for item in &items {
            if get_s(item, "sk")? == BACKUP_CODES_SK {
                factors.backup_codes = Some(backup_codes_from(item)?);
                continue;
            }
            if super::passkeys::is_passkey(item) {
                factors.passkeys.push(super::passkeys::passkey_from(item)?);
                continue;
            }
            let app = app_from(item)?;
            // An enrolment not confirmed in time is gone, whether or not TTL took it yet.
            let expired = get_n::<i64>(item, TTL_ATTRIBUTE).is_ok_and(|ttl| ttl <= now);
            if app.confirmed || !expired {
                factors.apps.push(app);
            }
        }
        Ok(factors)
    }

    /// The update that spends what a second step by a factor used, for the session's
    /// transaction: its condition fails when it was spent already.
    pub(super) fn factor_use_update(
        &self,
        account_id: &AccountId,
        used: &FactorUse,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        match used {
            FactorUse::App { id, step } => tx_update(
                self.update(app_key(account_id, id))
                    .update_expression("SET last_step = :step, last_used_at = :now")
                    .condition_expression(
                        "confirmed = :true AND (attribute_not_exists(last_step) OR last_step < :step)",
                    )
                    .expression_attribute_values(":step", n(*step))
                    .expression_attribute_values(":now", n(now))
                    .expression_attribute_values(":true", b(true)),
            ),
            FactorUse::BackupCode { hash } => tx_update(
                self.update(backup_codes_key(account_id))
                    .update_expression("DELETE codes :spent SET last_used_at = :now")
                    .condition_expression("contains(codes, :hash)")
                    .expression_attribute_values(":spent", AttributeValue::Ss(vec![hash.clone()]))
                    .expression_attribute_values(":hash", s(hash))
                    .expression_attribute_values(":now", n(now)),
            ),
            FactorUse::Passkey {
                id,
                sign_count_before,
                sign_count,
                credential,
            } => self.passkey_use_update(
                account_id,
                id,
                *sign_count_before,
                *sign_count,
                credential,
                now,
            ),
        }
    }

    /// The account's factor count moved by `delta` (a count never written is 1), on
    /// `condition`; a factor added also stamps `factors_changed_at` with `now`.
    fn factor_count_update(
        &self,
        account_id: &AccountId,
        delta: i64,
        sets: &str,
        condition: &str,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let (op, stamp) = if delta < 0 {
            ("-", "")
        } else {
            ("+", ", factors_changed_at = :changed")
        };
        let expression =
            format!("SET factor_count = if_not_exists(factor_count, :one) {op} :one{sets}{stamp}");
        let mut update = self
            .update(account_key(account_id))
            .condition_expression(condition)
            .expression_attribute_values(":one", n(1));
        if !stamp.is_empty() {
            update = update.expression_attribute_values(":changed", n(now));
        }
        // DynamoDB refuses a value that neither expression uses.
        for (name, value) in [(":false", false), (":true", true)] {
            if expression.contains(name) || condition.contains(name) {
                update = update.expression_attribute_values(name, b(value));
            }
        }
        tx_update(update.update_expression(expression))
    }

    /// One more factor on the account (an app confirmed, a passkey), stamped `now`.
    fn factor_added(
        &self,
        account_id: &AccountId,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        self.factor_count_update(account_id, 1, "", "attribute_exists(pk)", now)
    }

    /// [`IdentityStore::change_factors`]: the change's items, then the event; the index
    /// of a failed condition says what refused it.
    pub(super) async fn write_factor_change(
        &self,
        write: &FactorWrite<'_>,
    ) -> Result<Result<(), FactorRefusal>, StoreError> {
        let FactorWrite {
            account_id,
            change,
            event,
            now,
        } = *write;
        let mut items = Vec::new();
        // Which item's failed condition means "the last factor", if any.
        let mut last_factor_at = None;
        // Items whose failed condition means something else than a missing factor.
        let mut refusal_at: Vec<(usize, FactorRefusal)> = Vec::new();
        match change {
            FactorChange::EnrolApp { app, expires_at } => {
                let mut item = app_key(account_id, &app.id);
                item.extend([
                    ("kind".into(), s("app")),
                    ("name".into(), s(&app.name)),
                    ("secret".into(), s(app.secret.expose())),
                    ("created_at".into(), n(app.created_at)),
                    ("confirmed".into(), b(false)),
                    (TTL_ATTRIBUTE.into(), n(*expires_at)),
                ]);
                items.push(self.put_new(item)?);
            }
            FactorChange::ConfirmApp { id, step } => {
                items.push(tx_update(
                    self.update(app_key(account_id, id))
                        .update_expression(
                            "SET confirmed = :true, last_step = :step, last_used_at = :now REMOVE #ttl",
                        )
                        .condition_expression("confirmed = :false AND #ttl > :now")
                        .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                        .expression_attribute_values(":true", b(true))
                        .expression_attribute_values(":false", b(false))
                        .expression_attribute_values(":step", n(*step))
                        .expression_attribute_values(":now", n(now)),
                )?);
                items.push(self.factor_added(account_id, now)?);
            }
            FactorChange::RenameApp { id, name } => {
                items.push(tx_update(
                    self.update(app_key(account_id, id))
                        .update_expression("SET #name = :name")
                        .condition_expression("confirmed = :true")
                        .expression_attribute_names("#name", "name")
                        .expression_attribute_values(":name", s(name))
                        .expression_attribute_values(":true", b(true)),
                )?);
            }
            FactorChange::RemoveApp { id } => {
                let delete = build(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(app_key(account_id, id)))
                        .condition_expression("confirmed = :true")
                        .expression_attribute_values(":true", b(true))
                        .build(),
                )?;
                items.push(TransactWriteItem::builder().delete(delete).build());
                last_factor_at = Some(items.len());
                items.push(self.factor_count_update(account_id, -1, "", LAST_FACTOR_STAYS, now)?);
            }
            FactorChange::AddSms => {
                items.push(self.factor_count_update(
                    account_id,
                    1,
                    ", sms_factor = :true",
                    "attribute_exists(pk) AND sms_factor = :false",
                    now,
                )?);
            }
            FactorChange::RemoveSms => {
                last_factor_at = Some(items.len());
                items.push(self.factor_count_update(
                    account_id,
                    -1,
                    ", sms_factor = :false",
                    &format!(
                        "{LAST_FACTOR_STAYS} AND (attribute_not_exists(sms_factor) OR sms_factor = :true)"
                    ),
                    now,
                )?);
            }
            FactorChange::ReplaceBackupCodes { hashes } => {
                let mut item = backup_codes_key(account_id);
                item.extend([
                    ("kind".into(), s("backup_codes")),
                    ("codes".into(), AttributeValue::Ss(hashes.clone())),
                    ("created_at".into(), n(now)),
                ]);
                items.push(self.tx_put(item)?);
                // New codes are a new factor: stamped as any other.
                items.push(tx_update(
                    self.update(account_key(account_id))
                        .update_expression("SET factors_changed_at = :changed")
                        .condition_expression("attribute_exists(pk)")
                        .expression_attribute_values(":changed", n(now)),
                )?);
            }
            FactorChange::RemoveBackupCodes => {
                items.push(self.delete_present(backup_codes_key(account_id))?);
            }
            FactorChange::AddPasskey {
                passkey,
                user_handle,
                ceremony_key,
            } => {
                for (item, refusal) in
                    self.passkey_claim(account_id, passkey, user_handle, ceremony_key, now)?
                {
                    refusal_at.push((items.len(), refusal));
                    items.push(item);
                }
                items.push(self.factor_added(account_id, now)?);
            }
            FactorChange::RemovePasskey { id, credential_id } => {
                items.extend(self.passkey_release(account_id, id, credential_id)?);
                last_factor_at = Some(items.len());
                items.push(self.factor_count_update(account_id, -1, "", LAST_FACTOR_STAYS, now)?);
            }
        }
        if let Some(event) = event {
            items.push(event_put(&self.table, event)?);
        }
        let mut request = self.transaction();
        for item in items {
            request = request.transact_items(item);
        }
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                let failed = failed_conditions(e)?;
                if let Some((_, refusal)) = refusal_at.iter().find(|(i, _)| failed.contains(i)) {
                    Ok(Err(*refusal))
                } else if last_factor_at.is_some_and(|i| failed.contains(&i)) {
                    Ok(Err(FactorRefusal::Last))
                } else {
                    Ok(Err(FactorRefusal::Missing))
                }
            }
        }
    }
}
