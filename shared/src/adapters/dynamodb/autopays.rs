//! Autopays (`ACCOUNT#{id}` / `AUTOPAY#{autopay id}`), their schedule index
//! (`AUTOPAYS#monthly#{day}` or `AUTOPAYS#weekly#{weekday}` / `{account id}#{autopay id}`)
//! and the markers of bills an autopay skipped and told about
//! (`ACCOUNT#{id}` / `AUTOPAYSKIP#{autopay id}#{uin}`).

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::payments::doc_item;
use super::*;
use crate::services::autopays::{Autopay, AutopayStore, Trigger};
use crate::services::{Cap, CappedAdd, StoreError};

/// How long a skip notice is remembered.
const SKIP_MEMORY_SECS: i64 = 400 * 24 * 3600;

fn autopay_key(account_id: &str, id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), &format!("AUTOPAY#{id}"))
}

/// The schedule partition of a trigger; none for new-bill autopays.
fn schedule_pk(trigger: &Trigger) -> Option<String> {
    match trigger {
        Trigger::NewBill => None,
        Trigger::Monthly { day } => Some(format!("AUTOPAYS#monthly#{day}")),
        Trigger::Weekly { weekday } => Some(format!("AUTOPAYS#weekly#{weekday}")),
    }
}

fn schedule_key(trigger: &Trigger, autopay: &Autopay) -> Option<Item> {
    schedule_pk(trigger).map(|pk| key(pk, &format!("{}#{}", autopay.account_id, autopay.id)))
}

impl AutopayStore for DynamoStore {
    async fn create_autopay(&self, autopay: &Autopay, cap: Cap) -> Result<CappedAdd, StoreError> {
        let item = doc_item(
            format!("ACCOUNT#{}", autopay.account_id),
            &format!("AUTOPAY#{}", autopay.id),
            autopay,
        )?;
        let mut items = vec![self.put_new(item)?];
        if let Some(mut index) = schedule_key(&autopay.trigger, autopay) {
            index.extend([
                ("account_id".into(), s(&autopay.account_id)),
                ("autopay_id".into(), s(&autopay.id)),
            ]);
            items.push(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(index))
                            .build(),
                    )?)
                    .build(),
            );
        }
        self.add_capped(&autopay.account_id, "AUTOPAY", cap, items)
            .await
    }

    async fn autopays(&self, account_id: &str) -> Result<Vec<Autopay>, StoreError> {
        self.docs(&format!("ACCOUNT#{account_id}"), "AUTOPAY#")
            .await
    }

    async fn put_autopay(
        &self,
        autopay: &Autopay,
        previous: Option<&Trigger>,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(autopay)
            .map_err(|e| StoreError::Rejected(format!("autopay: {e}")))?;
        let mut item = autopay_key(&autopay.account_id, &autopay.id);
        item.insert("doc".into(), s(doc));
        let mut request = self
            .client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build(),
                    )?)
                    .build(),
            );
        let new_index = schedule_key(&autopay.trigger, autopay);
        let old_index = previous.and_then(|t| schedule_key(t, autopay));
        if let Some(old) = old_index.filter(|old| Some(old) != new_index.as_ref()) {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .delete(build(
                        Delete::builder()
                            .table_name(&self.table)
                            .set_key(Some(old))
                            .build(),
                    )?)
                    .build(),
            );
        }
        if let Some(mut index) = new_index {
            index.extend([
                ("account_id".into(), s(&autopay.account_id)),
                ("autopay_id".into(), s(&autopay.id)),
            ]);
            request = request.transact_items(
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(index))
                            .build(),
                    )?)
                    .build(),
            );
        }
        request.send().await.map_err(classify_transaction)?;
        Ok(())
    }

    async fn delete_autopay(&self, autopay: &Autopay) -> Result<(), StoreError> {
        let delete = |key: Item| -> Result<TransactWriteItem, StoreError> {
            Ok(TransactWriteItem::builder()
                .delete(build(
                    Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key))
                        .build(),
                )?)
                .build())
        };
        let mut items = vec![self.delete_present(autopay_key(&autopay.account_id, &autopay.id))?];
        if let Some(index) = schedule_key(&autopay.trigger, autopay) {
            items.push(delete(index)?);
        }
        // Gone already (a parallel delete) is the same outcome.
        self.remove_capped(&autopay.account_id, "AUTOPAY", items)
            .await?;
        Ok(())
    }

    async fn scheduled_autopays(
        &self,
        trigger: &Trigger,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let Some(pk) = schedule_pk(trigger) else {
            return Ok(Vec::new());
        };
        self.query_prefix(&pk, "")
            .await?
            .iter()
            .map(|item| Ok((get_s(item, "account_id")?, get_s(item, "autopay_id")?)))
            .collect()
    }

    async fn claim_skip_notice(
        &self,
        account_id: &str,
        autopay_id: &str,
        uin: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut item = key(
            format!("ACCOUNT#{account_id}"),
            &format!("AUTOPAYSKIP#{autopay_id}#{uin}"),
        );
        item.insert(TTL_ATTRIBUTE.into(), n(now + SKIP_MEMORY_SECS));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
