//! Notification settings (`ACCOUNT#{id}` / `NOTIFY`), the holder index
//! (`HOLDER#{payer key}` / `ACCOUNT#{id}`, mirrored at `ACCOUNT#{id}` / `HOLDS#{payer key}`)
//! and the markers of bill notices sent (`ACCOUNT#{id}` / `NOTICE#{uin}#{channel}`).

use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};

use super::*;
use crate::services::notices::{NoticeMark, NoticeStore, NotificationSettings};
use crate::services::StoreError;

/// How long a notice marker is kept: longer than any bill stays unpaid and rewritten.
const NOTICE_MEMORY_SECS: i64 = 400 * 24 * 3600;

fn settings_key(account_id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), "NOTIFY")
}

pub(super) fn holder_key(payer_key: &str, account_id: &str) -> Item {
    key(
        format!("HOLDER#{payer_key}"),
        &format!("ACCOUNT#{account_id}"),
    )
}

pub(super) fn holding_key(account_id: &str, payer_key: &str) -> Item {
    key(
        format!("ACCOUNT#{account_id}"),
        &format!("HOLDS#{payer_key}"),
    )
}

fn notice_key(mark: NoticeMark<'_>) -> Item {
    key(
        format!("ACCOUNT#{}", mark.account_id),
        &format!("NOTICE#{}#{}", mark.uin.as_str(), mark.channel.as_str()),
    )
}

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .put_request(build(PutRequest::builder().set_item(Some(item)).build())?)
        .build())
}

fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
    Ok(WriteRequest::builder()
        .delete_request(build(DeleteRequest::builder().set_key(Some(key)).build())?)
        .build())
}

impl NoticeStore for DynamoStore {
    async fn notification_settings(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<NotificationSettings>, StoreError> {
        self.get_eventual(settings_key(account_id))
            .await?
            .map(|item| get_doc(&item, "doc", "notification settings"))
            .transpose()
    }

    async fn put_notification_settings(
        &self,
        account_id: &AccountId,
        settings: &NotificationSettings,
        now: i64,
    ) -> Result<(), StoreError> {
        let doc = to_doc(settings, "notification settings")?;
        let mut item = settings_key(account_id);
        item.extend([("doc".into(), s(doc)), ("updated_at".into(), n(now))]);
        self.put(item).await?;
        Ok(())
    }

    async fn holders(&self, payer_key: &str) -> Result<Vec<AccountId>, StoreError> {
        self.query_prefix(&format!("HOLDER#{payer_key}"), "ACCOUNT#")
            .await?
            .iter()
            .map(|item| get_id(item, "account_id"))
            .collect()
    }

    async fn holdings(&self, account_id: &AccountId) -> Result<Vec<String>, StoreError> {
        self.sort_key_suffixes(&format!("ACCOUNT#{account_id}"), "HOLDS#")
            .await
    }

    async fn change_holdings(
        &self,
        account_id: &AccountId,
        add: &[String],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(2 * (add.len() + remove.len()));
        for payer_key in add {
            let mut holder = holder_key(payer_key, account_id);
            holder.insert("account_id".into(), s(account_id));
            requests.push(put_request(holder)?);
            requests.push(put_request(holding_key(account_id, payer_key))?);
        }
        for payer_key in remove {
            requests.push(delete_request(holder_key(payer_key, account_id))?);
            requests.push(delete_request(holding_key(account_id, payer_key))?);
        }
        self.batch_write(requests).await
    }

    async fn claim_notice(&self, mark: NoticeMark<'_>, now: i64) -> Result<bool, StoreError> {
        let mut item = notice_key(mark);
        item.extend([
            ("sent_at".into(), n(now)),
            (TTL_ATTRIBUTE.into(), n(now + NOTICE_MEMORY_SECS)),
        ]);
        Ok(self.put_if_absent(item).await?.written())
    }

    async fn release_notice(&self, mark: NoticeMark<'_>) -> Result<(), StoreError> {
        self.delete(notice_key(mark)).await
    }
}
