//! Codes, send logs and verification tokens.

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, ReturnValue, TransactWriteItem, Update,
};

use super::*;
use crate::services::codes::{
    CodeStore, NewCode, NewVerificationToken, SendLog, SendLogWrite, StoredCode,
};
use crate::services::StoreError;

fn code_key(id: &str) -> Item {
    key(format!("CODE#{id}"), "CODE")
}

fn send_log_key(log_key: &str) -> Item {
    key(format!("SENDLOG#{log_key}"), "SENDLOG")
}

impl DynamoStore {
    fn put_send_log(&self, w: &SendLogWrite) -> Result<TransactWriteItem, StoreError> {
        let sends: Item = w.sends.iter().map(|(id, at)| (id.clone(), n(at))).collect();
        let mut item = send_log_key(&w.key);
        item.insert("sends".into(), AttributeValue::M(sends));
        item.insert("version".into(), n(w.expected_version + 1));
        item.insert(TTL_ATTRIBUTE.into(), n(w.expires_at));
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        put = if w.expected_version == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :v")
                .expression_attribute_values(":v", n(w.expected_version))
        };
        Ok(TransactWriteItem::builder()
            .put(build(put.build())?)
            .build())
    }

    fn forget_send(
        &self,
        log_key: &str,
        code_id: &str,
        expires_at: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(send_log_key(log_key)))
            .update_expression(
                "REMOVE sends.#id SET version = if_not_exists(version, :zero) + :one, \
                 #ttl = if_not_exists(#ttl, :exp)",
            )
            .expression_attribute_names("#id", code_id)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_at));
        Ok(TransactWriteItem::builder()
            .update(build(update.build())?)
            .build())
    }
}

fn send_log_from(item: Option<&Item>) -> Result<SendLog, StoreError> {
    let Some(item) = item else {
        return Ok(SendLog::default());
    };
    let mut sends = Vec::new();
    if let Some(AttributeValue::M(map)) = item.get("sends") {
        for (id, at) in map {
            if let AttributeValue::N(at) = at {
                let at = at
                    .parse()
                    .map_err(|_| StoreError::Rejected("malformed send time".into()))?;
                sends.push((id.clone(), at));
            }
        }
    }
    Ok(SendLog {
        version: get_n(item, "version")?,
        sends,
    })
}

/// BatchGetItem may leave keys unprocessed under load; they are asked for again.
const BATCH_GET_ROUNDS: usize = 3;

impl CodeStore for DynamoStore {
    async fn load_send_logs(
        &self,
        destination_key: &str,
        client_key: &str,
    ) -> Result<(SendLog, SendLog), StoreError> {
        let dest = send_log_key(destination_key);
        let client = send_log_key(client_key);
        let mut pending = build(
            KeysAndAttributes::builder()
                .keys(dest.clone())
                .keys(client.clone())
                .consistent_read(true)
                .build(),
        )?;
        let mut found: Vec<Item> = Vec::with_capacity(2);
        for _ in 0..BATCH_GET_ROUNDS {
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(classify)?;
            if let Some(mut responses) = out.responses {
                found.extend(responses.remove(&self.table).unwrap_or_default());
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => pending = rest,
                _ => {
                    let find = |k: &Item| found.iter().find(|i| i.get("pk") == k.get("pk"));
                    return Ok((send_log_from(find(&dest))?, send_log_from(find(&client))?));
                }
            }
        }
        Err(StoreError::Unavailable(
            "send logs still unprocessed after retries".into(),
        ))
    }

    async fn create_code(
        &self,
        code: &NewCode,
        destination_log: &SendLogWrite,
        client_log: &SendLogWrite,
    ) -> Result<(), StoreError> {
        let mut item = code_key(&code.id);
        item.extend([
            ("code_hash".into(), s(&code.code_hash)),
            ("destination_hash".into(), s(&code.destination_hash)),
            ("channel".into(), s(code.channel)),
            ("purpose".into(), s(code.purpose)),
            ("status".into(), s("active")),
            ("attempts".into(), n(0)),
            ("max_attempts".into(), n(code.max_attempts)),
            ("created_at".into(), n(code.created_at)),
            (TTL_ATTRIBUTE.into(), n(code.expires_at)),
        ]);
        let put_code = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        self.client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(TransactWriteItem::builder().put(put_code).build())
            .transact_items(self.put_send_log(destination_log)?)
            .transact_items(self.put_send_log(client_log)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn withdraw_code(
        &self,
        code_id: &str,
        destination_key: &str,
        client_key: &str,
        logs_expire_at: i64,
    ) -> Result<(), StoreError> {
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(code_key(code_id)))
                .build(),
        )?;
        self.client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(self.forget_send(destination_key, code_id, logs_expire_at)?)
            .transact_items(self.forget_send(client_key, code_id, logs_expire_at)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn get_code(&self, id: &str) -> Result<Option<StoredCode>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(code_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Ok(Some(StoredCode {
            id: id.to_string(),
            code_hash: get_s(&item, "code_hash")?,
            destination_hash: get_s(&item, "destination_hash")?,
            channel: get_s(&item, "channel")?,
            purpose: get_s(&item, "purpose")?,
            attempts: get_n(&item, "attempts")?,
            max_attempts: get_n(&item, "max_attempts")?,
            used: get_s(&item, "status")? == "used",
            expires_at: get_n(&item, TTL_ATTRIBUTE)?,
        }))
    }

    async fn count_attempt(&self, id: &str, now: i64) -> Result<Option<u32>, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(code_key(id)))
            .update_expression("SET attempts = attempts + :one")
            .condition_expression("#status = :active AND attempts < max_attempts AND #ttl > :now")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":active", s("active"))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(get_n(
                &out.attributes.unwrap_or_default(),
                "attempts",
            )?)),
            Err(e) => match classify(e) {
                StoreError::Conflict => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn redeem_code(
        &self,
        id: &str,
        now: i64,
        token: &NewVerificationToken,
    ) -> Result<bool, StoreError> {
        let mark_used = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(code_key(id)))
                .update_expression("SET #status = :used, used_at = :now")
                .condition_expression(
                    "#status = :active AND attempts <= max_attempts AND #ttl > :now",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":used", s("used"))
                .expression_attribute_values(":active", s("active"))
                .expression_attribute_values(":now", n(now))
                .build(),
        )?;
        let mut item = key(format!("VTOKEN#{}", token.token_hash), "VTOKEN");
        item.extend([
            ("destination_hash".into(), s(&token.destination_hash)),
            ("channel".into(), s(&token.channel)),
            ("purpose".into(), s(&token.purpose)),
            ("code_id".into(), s(&token.code_id)),
            ("created_at".into(), n(now)),
            (TTL_ATTRIBUTE.into(), n(token.expires_at)),
        ]);
        let put_token = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let result = self
            .client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(TransactWriteItem::builder().update(mark_used).build())
            .transact_items(TransactWriteItem::builder().put(put_token).build())
            .send()
            .await;
        match result.map_err(classify_transaction) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
