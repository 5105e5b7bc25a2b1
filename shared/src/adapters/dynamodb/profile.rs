//! The profile document (`ACCOUNT#{id}` / `PROFILE`) and the account fields it keeps in
//! step: names, the SNILS login, the level, and the holder index entries of the verified
//! own documents.
//!
//! A profile with a pending check is in the sweeper's sparse index: `gsi1pk` =
//! [`DUE_PARTITION`], `gsi1sk` = `{due:012}#{account id}` (due in Unix seconds, zero-padded
//! so that the text order is the time order). A profile with nothing pending has neither
//! attribute and is not in the index.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use super::identity::{account_from, account_key, event_put, login_key, ACCOUNT_INDEX};
use super::notices::{holder_key, holding_key};
use super::*;
use crate::services::household::holdings::{FoundEntries, HolderIndexScan};
use crate::services::identity::StoredAccount;
use crate::services::profile::{
    Profile, ProfileStore, ProfileWrite, ProfileWriteRefusal, StoredProfile,
};
use crate::services::StoreError;

fn profile_key(account_id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), "PROFILE")
}

/// The one partition of the sweeper's index of pending checks.
pub const DUE_PARTITION: &str = "VERIFY_DUE";

/// Where a profile due at `due` sorts in the sweeper's index.
fn due_sort_key(due: i64, account_id: &str) -> String {
    format!("{:012}#{account_id}", due.max(0))
}

impl ProfileStore for DynamoStore {
    async fn load_profile(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<(StoredAccount, StoredProfile)>, StoreError> {
        let keys = [account_key(account_id), profile_key(account_id)];
        let found = self
            .batch_get_consistent(keys.to_vec(), BatchGet::once("profile"))
            .await?;
        let find = |sk: &str| {
            found
                .iter()
                .find(|i| matches!(i.get("sk"), Some(AttributeValue::S(s)) if s == sk))
        };
        let Some(account) = find("ACCOUNT") else {
            return Ok(None);
        };
        let account = account_from(account_id, account)?;
        let stored = match find("PROFILE") {
            Some(item) => StoredProfile {
                profile: get_doc(item, "doc", "profile document")?,
                version: get_n(item, "version")?,
            },
            None => StoredProfile {
                profile: Profile::default(),
                version: 0,
            },
        };
        Ok(Some((account, stored)))
    }

    async fn write_profile(
        &self,
        write: &ProfileWrite<'_>,
    ) -> Result<Result<(), ProfileWriteRefusal>, StoreError> {
        let doc = to_doc(write.profile, "profile document")?;
        let mut item = profile_key(write.account_id);
        item.extend([
            ("doc".into(), s(doc)),
            ("version".into(), n(write.expected_version + 1)),
        ]);
        if let Some(due) = write.profile.due() {
            item.extend([
                ("gsi1pk".into(), s(DUE_PARTITION)),
                ("gsi1sk".into(), s(due_sort_key(due, write.account_id))),
            ]);
        }
        let mut request = self
            .transaction()
            .transact_items(self.tx_put_versioned(item, write.expected_version)?);
        let mut index = 1;
        let mut claim_index = None;

        // One update of the account item: a transaction may name an item only once.
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        let mut conditions = vec!["attribute_exists(pk)"];
        let mut update = self.update(account_key(write.account_id));
        if let Some((last, first, middle)) = write.account_names {
            sets.push("last_name = :last, first_name = :first");
            update = update
                .expression_attribute_values(":last", s(last))
                .expression_attribute_values(":first", s(first));
            match middle {
                Some(m) => {
                    sets.push("middle_name = :middle");
                    update = update.expression_attribute_values(":middle", s(m));
                }
                None => removes.push("middle_name"),
            }
        }
        match (&write.claim_login, &write.release_login) {
            (Some(claim), _) => {
                sets.push("snils_login = :snils");
                update = update.expression_attribute_values(":snils", s(claim));
            }
            (None, Some(_)) => removes.push("snils_login"),
            (None, None) => {}
        }
        if write.clear_confirmation {
            removes.extend(["confirmed_at", "confirmed_via", "confirmed_by"]);
        }
        if let Some((from, to)) = write.level_change {
            sets.push("#level = :to");
            conditions.push("#level = :from");
            update = update
                .expression_attribute_names("#level", "level")
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to));
        }
        if !sets.is_empty() || !removes.is_empty() {
            let mut expression = String::new();
            if !sets.is_empty() {
                expression.push_str(&format!("SET {}", sets.join(", ")));
            }
            if !removes.is_empty() {
                expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
            }
            let update = build(
                update
                    .update_expression(expression.trim())
                    .condition_expression(conditions.join(" AND "))
                    .build(),
            )?;
            request = request.transact_items(TransactWriteItem::builder().update(update).build());
            index += 1;
        }
        if let Some(claim) = &write.claim_login {
            let mut item = login_key(claim);
            item.extend([
                ("account_id".into(), s(write.account_id)),
                ("kind".into(), s("snils")),
                ("verified".into(), b(true)),
            ]);
            // Claimed only by a verified SNILS; a claim made before that rule (when a
            // SNILS was claimed on saving) gives way to the verified owner.
            let put = build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .condition_expression(
                        "attribute_not_exists(pk) OR account_id = :me OR attribute_not_exists(verified)",
                    )
                    .expression_attribute_values(":me", s(write.account_id))
                    .build(),
            )?;
            request = request.transact_items(TransactWriteItem::builder().put(put).build());
            claim_index = Some(index);
        }
        for event in &write.events {
            request = request.transact_items(event_put(&self.table, event)?);
        }
        // The holder index changes with the profile or not at all (both halves of each
        // entry, as `change_holdings` writes them).
        for payer_key in &write.holdings_add {
            let mut holder = holder_key(payer_key, write.account_id);
            holder.insert("account_id".into(), s(write.account_id));
            for item in [holder, holding_key(write.account_id, payer_key)] {
                let put = Put::builder().table_name(&self.table).set_item(Some(item));
                request = request.transact_items(
                    TransactWriteItem::builder()
                        .put(build(put.build())?)
                        .build(),
                );
            }
        }
        for payer_key in &write.holdings_remove {
            for k in [
                holder_key(payer_key, write.account_id),
                holding_key(write.account_id, payer_key),
            ] {
                let delete = Delete::builder().table_name(&self.table).set_key(Some(k));
                request = request.transact_items(
                    TransactWriteItem::builder()
                        .delete(build(delete.build())?)
                        .build(),
                );
            }
        }
        // So does the reminders' date index (see `reminders.rs`).
        for entry in &write.dues_add {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(super::reminders::due_item(write.account_id, entry)));
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(build(put.build())?)
                    .build(),
            );
        }
        for entry in &write.dues_remove {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(super::reminders::due_key(write.account_id, entry)));
            request = request.transact_items(
                TransactWriteItem::builder()
                    .delete(build(delete.build())?)
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => {
                if let Some(release) = &write.release_login {
                    // Only our own claim is released; another account's login stays. Not
                    // in the transaction: a SNILS saved (never verified) by this account
                    // may be another's login, and that must not fail the write.
                    let released = self
                        .delete_item(login_key(release))
                        .condition_expression("account_id = :me")
                        .expression_attribute_values(":me", s(write.account_id))
                        .send()
                        .await;
                    match released.map_err(classify) {
                        Ok(_) | Err(StoreError::Conflict) => {}
                        Err(e) => {
                            tracing::warn!(account_id = %write.account_id, error = %e, "old SNILS login not released");
                        }
                    }
                }
                Ok(Ok(()))
            }
            Err(e) => {
                // A transaction that collided with another on the same items lost the
                // same race as a failed version condition: read again.
                let failed = match failed_conditions(e) {
                    Ok(failed) => failed,
                    Err(StoreError::Conflict) => Vec::new(),
                    Err(other) => return Err(other),
                };
                if claim_index.is_some_and(|i| failed.contains(&i)) {
                    Ok(Err(ProfileWriteRefusal::SnilsTaken))
                } else {
                    // The profile moved, or the account's level did: read again.
                    Ok(Err(ProfileWriteRefusal::Stale))
                }
            }
        }
    }

    async fn overdue_profiles(&self, now: i64, limit: usize) -> Result<Vec<AccountId>, StoreError> {
        let mut accounts = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(ACCOUNT_INDEX)
                .key_condition_expression("gsi1pk = :pk AND gsi1sk < :after")
                .expression_attribute_values(":pk", s(DUE_PARTITION))
                // Everything due at `now` or before sorts below the next second.
                .expression_attribute_values(":after", s(format!("{:012}", now.max(0) + 1)))
                .projection_expression("pk")
                .limit(i32::try_from(limit.max(1)).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in page.items() {
                let pk = get_s(item, "pk")?;
                accounts.push(parse_id(pk.trim_start_matches("ACCOUNT#"))?);
            }
            start = page.last_evaluated_key;
            if start.is_none() || accounts.len() >= limit {
                break;
            }
        }
        accounts.truncate(limit);
        Ok(accounts)
    }
}

impl HolderIndexScan for DynamoStore {
    async fn scan_holder_index(
        &self,
    ) -> Result<std::collections::BTreeMap<AccountId, FoundEntries>, StoreError> {
        let mut accounts: std::collections::BTreeMap<AccountId, FoundEntries> = Default::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "sk = :profile OR begins_with(pk, :holder) OR begins_with(sk, :holds)",
                )
                .expression_attribute_values(":profile", s("PROFILE"))
                .expression_attribute_values(":holder", s("HOLDER#"))
                .expression_attribute_values(":holds", s("HOLDS#"))
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in page.items() {
                let (pk, sk) = (get_s(item, "pk")?, get_s(item, "sk")?);
                if let Some(payer_key) = pk.strip_prefix("HOLDER#") {
                    let account = parse_id(sk.trim_start_matches("ACCOUNT#"))?;
                    accounts
                        .entry(account)
                        .or_default()
                        .entry(payer_key.to_string())
                        .or_default()
                        .0 = true;
                } else if let Some(account) = pk.strip_prefix("ACCOUNT#") {
                    let entries = accounts.entry(parse_id(account)?).or_default();
                    if let Some(payer_key) = sk.strip_prefix("HOLDS#") {
                        entries.entry(payer_key.to_string()).or_default().1 = true;
                    }
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(accounts)
    }
}
