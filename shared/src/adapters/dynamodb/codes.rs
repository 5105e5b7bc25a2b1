//! Codes, send logs and verification tokens.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem};

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
        self.tx_put_versioned(item, w.expected_version)
    }

    /// Takes the code's entry out of the log a send wrote; a log with no expiry gets the
    /// one of that write.
    fn forget_send(
        &self,
        log: &SendLogWrite,
        code_id: &CodeId,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = self
            .update(send_log_key(&log.key))
            .update_expression(
                "REMOVE sends.#id SET version = if_not_exists(version, :zero) + :one, \
                 #ttl = if_not_exists(#ttl, :exp)",
            )
            .expression_attribute_names("#id", code_id)
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(log.expires_at));
        tx_update(update)
    }
}

fn send_log_from(item: Option<&Item>) -> Result<SendLog, StoreError> {
    let Some(item) = item else {
        return Ok(SendLog::default());
    };
    let mut sends = Vec::new();
    if let Ok(map) = get_map(item, "sends") {
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
const BATCH_GET_ROUNDS: u32 = 3;

impl CodeStore for DynamoStore {
    async fn load_send_logs(
        &self,
        destination_key: &str,
        client_key: &str,
    ) -> Result<(SendLog, SendLog), StoreError> {
        let dest = send_log_key(destination_key);
        let client = send_log_key(client_key);
        let found = self
            .batch_get_consistent(
                vec![dest.clone(), client.clone()],
                BatchGet {
                    rounds: BATCH_GET_ROUNDS,
                    projection: None,
                    what: "send logs",
                },
            )
            .await?;
        let find = |k: &Item| found.iter().find(|i| i.get("pk") == k.get("pk"));
        Ok((send_log_from(find(&dest))?, send_log_from(find(&client))?))
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
        let put_code = self.put_new(item)?;
        self.transaction()
            .transact_items(put_code)
            .transact_items(self.put_send_log(destination_log)?)
            .transact_items(self.put_send_log(client_log)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn withdraw_code(&self, id: &CodeId, logs: [&SendLogWrite; 2]) -> Result<(), StoreError> {
        let [destination_log, client_log] = logs;
        let delete = self.tx_delete(code_key(id))?;
        self.transaction()
            .transact_items(delete)
            .transact_items(self.forget_send(destination_log, id)?)
            .transact_items(self.forget_send(client_log, id)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn get_code(&self, id: &CodeId) -> Result<Option<StoredCode>, StoreError> {
        let Some(item) = self.get_consistent(code_key(id)).await? else {
            return Ok(None);
        };
        Ok(Some(StoredCode {
            id: id.clone(),
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

    async fn count_attempt(&self, id: &CodeId, now: i64) -> Result<Option<u32>, StoreError> {
        let result = self
            .update_item(code_key(id))
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
        id: &CodeId,
        now: i64,
        token: &NewVerificationToken,
    ) -> Result<bool, StoreError> {
        let mark_used = tx_update(
            self.update(code_key(id))
                .update_expression("SET #status = :used, used_at = :now")
                .condition_expression(
                    "#status = :active AND attempts <= max_attempts AND #ttl > :now",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":used", s("used"))
                .expression_attribute_values(":active", s("active"))
                .expression_attribute_values(":now", n(now)),
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
        let put_token = self.put_new(item)?;
        let result = self
            .transaction()
            .transact_items(mark_used)
            .transact_items(put_token)
            .send()
            .await;
        won_race(result.map_err(classify_transaction))
    }
}
