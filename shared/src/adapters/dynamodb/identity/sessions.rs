//! Sessions as items: writing one, deleting them in batches; and giving back a counted
//! login attempt, or settling a wrong one.

use super::*;

pub(super) fn challenge_key(key: &str) -> Item {
    super::key(format!("CHALLENGE#{key}"), "CHALLENGE")
}

/// Items one transaction may hold, with room left for the account update and the event.
pub(super) const SESSIONS_PER_TRANSACTION: usize = 90;

impl DynamoStore {
    /// Gives a client's counted attempt back. The window's item may have expired
    /// meanwhile; a count below zero then lives only until the next window's end, when
    /// nobody reads it any more.
    pub(super) fn give_back_update(&self, client: ClientWindow<'_>) -> Result<Update, StoreError> {
        build(
            self.update(client_failures_key(client.key, client.start))
                .update_expression("ADD #count :minus_one SET #ttl = :end")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":minus_one", n(-1))
                .expression_attribute_values(":end", n(client.kept_until()))
                .build(),
        )
    }

    pub(super) async fn give_back(&self, client: ClientWindow<'_>) -> Result<(), StoreError> {
        let update = self.give_back_update(client)?;
        self.update_item(update.key)
            .update_expression(update.update_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Takes a wrong attempt off the login's pending ones; it stays among the failures.
    /// A counter deleted meanwhile by a right secret (or written before attempts were
    /// marked pending) is left alone.
    pub(super) async fn settle_pending(&self, login_key: &str) -> Result<(), StoreError> {
        let settled = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(login_failures_key(login_key)))
            .update_expression("ADD #pending :minus_one")
            .condition_expression("#pending > :zero")
            .expression_attribute_names("#pending", "pending")
            .expression_attribute_values(":minus_one", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await
            .map_err(classify);
        match settled {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes items in batches, asking again for whatever DynamoDB left unprocessed.
    pub(super) async fn batch_delete(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
        let mut requests = Vec::with_capacity(keys.len());
        for k in keys {
            let delete = build(DeleteRequest::builder().set_key(Some(k)).build())?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.batch_write(requests).await
    }

    /// Keys of every item in a partition.
    pub(super) async fn partition_keys(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(|q| {
            q.key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(pk))
                .projection_expression("pk, sk")
        })
        .await
    }

    pub(super) fn token_delete(
        &self,
        token: &TokenRedemption,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(verification_token_item_key(&token.token_key)))
                .condition_expression(
                    "purpose = :purpose AND destination_hash = :dest AND #ttl > :now",
                )
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":purpose", s(token.purpose))
                .expression_attribute_values(":dest", s(&token.destination_key))
                .expression_attribute_values(":now", n(now))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(super) fn session_delete(&self, id: &str) -> Result<TransactWriteItem, StoreError> {
        self.tx_delete(session_key(id))
    }
}

pub(super) fn session_from(item: &Item) -> Result<Session, StoreError> {
    let pk = get_s(item, "pk")?;
    Ok(Session {
        id: parse_id(pk.trim_start_matches("SESSION#"))?,
        account_id: get_id(item, "account_id")?,
        created_at: get_n(item, "created_at")?,
        last_seen_at: get_n(item, "last_seen_at")?,
        idle_secs: get_n(item, "idle_secs")?,
        absolute_expires_at: get_n(item, "absolute_expires_at")?,
        foreign_computer: get_bool(item, "foreign_computer"),
        ip: get_s(item, "ip").unwrap_or_default(),
        user_agent: get_s(item, "user_agent").unwrap_or_default(),
        // Sessions from before step-up proved presence when they were created.
        proven_at: get_n(item, "proven_at").or_else(|_| get_n(item, "created_at"))?,
        factor_proven_at: get_n(item, "factor_proven_at").ok(),
        credentials_epoch: get_n(item, "credentials_epoch").unwrap_or(0),
    })
}

impl DynamoStore {
    /// [`IdentityStore::create_session`].
    pub(super) async fn put_session(
        &self,
        write: &SessionWrite<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let session = write.session;
        let mut item = session_key(&session.id);
        item.extend([
            ("account_id".into(), s(&session.account_id)),
            ("created_at".into(), n(session.created_at)),
            ("last_seen_at".into(), n(session.last_seen_at)),
            ("idle_secs".into(), n(session.idle_secs)),
            ("absolute_expires_at".into(), n(session.absolute_expires_at)),
            ("foreign_computer".into(), b(session.foreign_computer)),
            ("ip".into(), s(&session.ip)),
            ("user_agent".into(), s(&session.user_agent)),
            ("proven_at".into(), n(session.proven_at)),
            ("credentials_epoch".into(), n(session.credentials_epoch)),
            (
                "gsi1pk".into(),
                s(format!("ACCOUNT#{}", session.account_id)),
            ),
            (
                "gsi1sk".into(),
                s(format!("SESSION#{:012}", session.created_at)),
            ),
            (TTL_ATTRIBUTE.into(), n(session.expires_at())),
        ]);
        if let Some(at) = session.factor_proven_at {
            item.insert("factor_proven_at".into(), n(at));
        }
        let put = self.put_new(item)?;
        let clear_failures = self.tx_delete(login_failures_key(write.login_key))?;
        let mut request = self
            .transaction()
            .transact_items(put)
            .transact_items(clear_failures)
            .transact_items(event_put(&self.table, write.event)?);
        // Indices of the items whose failed condition means "already used".
        let mut single_use = Vec::new();
        // Items before the optional ones below.
        let mut fixed = 3;
        if let Some(client) = write.client {
            request = request.transact_items(
                TransactWriteItem::builder()
                    .update(self.give_back_update(client)?)
                    .build(),
            );
            fixed += 1;
        }
        if let Some(devices) = &write.known_devices {
            let update = tx_update(
                self.update(account_key(&session.account_id))
                    .update_expression("SET known_devices = :devices")
                    .condition_expression("attribute_exists(pk)")
                    .expression_attribute_values(
                        ":devices",
                        AttributeValue::L(devices.iter().map(s).collect()),
                    ),
            )?;
            request = request.transact_items(update);
        }
        if let Some(challenge) = write.challenge_key {
            let delete = build(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(challenge_key(challenge)))
                    .condition_expression("account_id = :account AND #ttl > :now")
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":account", s(&session.account_id))
                    .expression_attribute_values(":now", n(now))
                    .build(),
            )?;
            single_use.push(fixed + usize::from(write.known_devices.is_some()));
            request = request.transact_items(TransactWriteItem::builder().delete(delete).build());
        }
        if let Some(token) = write.token {
            single_use.push(
                fixed
                    + usize::from(write.known_devices.is_some())
                    + usize::from(write.challenge_key.is_some()),
            );
            request = request.transact_items(self.token_delete(token, now)?);
        }
        if let Some(used) = write.factor_use {
            single_use.push(
                fixed
                    + usize::from(write.known_devices.is_some())
                    + usize::from(write.challenge_key.is_some())
                    + usize::from(write.token.is_some()),
            );
            request =
                request.transact_items(self.factor_use_update(&session.account_id, used, now)?);
        }
        if let Some(ceremony) = write.ceremony_key {
            single_use.push(
                fixed
                    + usize::from(write.known_devices.is_some())
                    + usize::from(write.challenge_key.is_some())
                    + usize::from(write.token.is_some())
                    + usize::from(write.factor_use.is_some()),
            );
            request = request.transact_items(self.ceremony_delete(
                ceremony,
                crate::services::identity::CeremonyPurpose::Login,
                None,
                now,
            )?);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => {
                let failed = failed_conditions(e)?;
                if failed.iter().any(|i| single_use.contains(i)) {
                    return Ok(false);
                }
                // The session id is fresh and random; the account vanishing mid-login
                // reads as a lost race.
                Err(StoreError::Conflict)
            }
        }
    }
}
