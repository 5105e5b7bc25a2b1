//! Accounts, logins, sessions, login failures and security events.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};

use super::*;
use crate::services::identity::{
    AccountCreation, Attempt, AttemptCount, ChallengeStep, ClientWindow, ContactChange,
    ContactChangeRefusal, ContactKind, FactorRefusal, FactorWrite, IdentityStore, LoginChallenge,
    LoginFailures, LoginState, PasswordChange, PresenceProof, QuestionChange, RegistrationRefusal,
    SecurityEvent, SecuritySettings, Session, SessionWrite, StoredAccount, StoredFactors,
    StoredSecurityEvent, TokenRedemption, FAILURE_MEMORY, SECURITY_EVENT_RETENTION,
};
use crate::services::StoreError;

mod desk;
mod factors;
mod items;
mod passkeys;
mod restoration;
mod sessions;
pub use items::*;
use sessions::*;

impl DynamoStore {
    /// A transaction's delete of `key` under `condition`, in which `:me` stands for
    /// `account_id`: how an item an account owns (a session, a login) is removed without
    /// touching one that another account holds by then.
    fn tx_delete_owned(
        &self,
        key: Item,
        condition: &str,
        account_id: &AccountId,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression(condition)
                .expression_attribute_values(":me", s(account_id))
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }
}

impl IdentityStore for DynamoStore {
    async fn create_account(
        &self,
        creation: &AccountCreation<'_>,
        now: i64,
    ) -> Result<Result<(), Vec<RegistrationRefusal>>, StoreError> {
        let account = creation.account;
        let mut item = account_key(&account.id);
        item.extend([
            ("last_name".into(), s(&account.last_name)),
            ("first_name".into(), s(&account.first_name)),
            ("email".into(), s(&account.email)),
            ("phone".into(), s(&account.phone)),
            ("password_hash".into(), s(&account.password_hash)),
            ("security_question".into(), s(&account.security_question)),
            (
                "security_answer_hash".into(),
                s(&account.security_answer_hash),
            ),
            ("level".into(), s(account.level)),
            ("created_at".into(), n(account.created_at)),
        ]);
        if let Some(middle) = &account.middle_name {
            item.insert("middle_name".into(), s(middle));
        }
        let mut request = self.transaction();
        let put_account = self.put_new(item)?;
        request = request.transact_items(put_account);
        for login in creation.logins {
            let mut item = login_key(&login.key);
            item.extend([
                ("account_id".into(), s(&account.id)),
                ("kind".into(), s(login.kind)),
            ]);
            let put = self.put_new(item)?;
            request = request.transact_items(put);
        }
        for token in creation.tokens {
            request = request.transact_items(self.token_delete(token, now)?);
        }
        request = request.transact_items(event_put(&self.table, creation.event)?);
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                let failed = failed_conditions(e)?;
                let first_token = 1 + creation.logins.len();
                Ok(Err(failed
                    .into_iter()
                    .filter_map(|i| match i {
                        0 => None,
                        i if i < first_token => Some(RegistrationRefusal::LoginTaken(i - 1)),
                        i => Some(RegistrationRefusal::TokenInvalid(i - first_token)),
                    })
                    .collect()))
            }
        }
    }

    async fn load_login_state(
        &self,
        login: &str,
        client: &ClientWindow<'_>,
    ) -> Result<LoginState, StoreError> {
        let keys = [
            login_key(login),
            login_failures_key(login),
            client_failures_key(client.key, client.start),
            client_failures_key(client.key, client.previous_start()),
        ];
        let found = self
            .batch_get_consistent(keys.to_vec(), BatchGet::once("login state"))
            .await?;
        let find = |k: &Item| found.iter().find(|i| i.get("pk") == k.get("pk"));
        let mut state = LoginState::default();
        if let Some(item) = find(&keys[0]) {
            state.account_id = Some(get_id(item, "account_id")?);
        }
        if let Some(item) = find(&keys[1]) {
            state.failures = LoginFailures {
                count: get_n(item, "count")?,
                last_failure_at: get_n(item, "last_failure_at")?,
                // Counters written before attempts were marked pending have none.
                pending: get_n(item, "pending").unwrap_or(0),
            };
        }
        if let Some(item) = find(&keys[2]) {
            state.client_failures = get_n(item, "count")?;
        }
        if let Some(item) = find(&keys[3]) {
            state.previous_client_failures = get_n(item, "count")?;
        }
        Ok(state)
    }

    async fn get_account(
        &self,
        id: Option<&AccountId>,
    ) -> Result<Option<StoredAccount>, StoreError> {
        // A well-formed key no account has: same request, same cost.
        let key = account_key(id.map_or("00000000-0000-0000-0000-000000000000", AccountId::as_str));
        match (id, self.get_consistent(key).await?) {
            (Some(id), Some(item)) => account_from(id, &item).map(Some),
            _ => Ok(None),
        }
    }

    async fn count_attempt(
        &self,
        attempt: &Attempt<'_>,
        now: i64,
    ) -> Result<AttemptCount, StoreError> {
        // The client first: an address over its limit does not touch the login's count.
        let mut count_client = self
            .update_item(client_failures_key(
                attempt.client.key,
                attempt.client.start,
            ))
            .update_expression("ADD #count :one SET #ttl = :end")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(attempt.client.kept_until()));
        if let Some(limit) = attempt.client_limit {
            count_client = count_client
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .expression_attribute_values(":limit", n(limit));
        }
        match count_client.send().await.map_err(classify) {
            Ok(_) => {}
            Err(StoreError::Conflict) => return Ok(AttemptCount::ClientLimited),
            Err(e) => return Err(e),
        }
        let memory = i64::try_from(FAILURE_MEMORY.as_secs()).unwrap_or(i64::MAX);
        // Under the limit anyone may count; past it only the one attempt that finds the
        // count as it was when its lock was read to be over.
        let counted = self
            .update_item(login_failures_key(attempt.login_key))
            .update_expression(
                "ADD #count :one, #pending :one SET last_failure_at = :now, #ttl = :forget",
            )
            .condition_expression("attribute_not_exists(#count) OR #count < :max OR #count = :seen")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#pending", "pending")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":forget", n(now.saturating_add(memory)))
            .expression_attribute_values(":max", n(attempt.max_failures))
            .expression_attribute_values(":seen", n(attempt.seen_failures))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(classify);
        match counted {
            Ok(out) => Ok(AttemptCount::Counted {
                failures: get_n(&out.attributes.unwrap_or_default(), "count")?,
            }),
            Err(StoreError::Conflict) => {
                // The address made no attempt that was checked.
                self.give_back(attempt.client).await?;
                Ok(AttemptCount::LoginLimited)
            }
            Err(e) => Err(e),
        }
    }

    async fn settle_failure(&self, login_key: &str) -> Result<(), StoreError> {
        self.settle_pending(login_key).await
    }

    async fn forgive_attempt(
        &self,
        login_key: &str,
        client: ClientWindow<'_>,
    ) -> Result<(), StoreError> {
        let clear = self.tx_delete(login_failures_key(login_key))?;
        self.transaction()
            .transact_items(clear)
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.give_back_update(client)?)
                    .build(),
            )
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn put_event(&self, event: &SecurityEvent) -> Result<(), StoreError> {
        self.transaction()
            .transact_items(event_put(&self.table, event)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn create_session(&self, write: &SessionWrite<'_>, now: i64) -> Result<bool, StoreError> {
        self.put_session(write, now).await
    }

    async fn load_factors(&self, account_id: &AccountId) -> Result<StoredFactors, StoreError> {
        self.factors_of(account_id, time::OffsetDateTime::now_utc().unix_timestamp())
            .await
    }

    async fn change_factors(
        &self,
        write: &FactorWrite<'_>,
    ) -> Result<Result<(), FactorRefusal>, StoreError> {
        self.write_factor_change(write).await
    }

    async fn put_challenge(&self, challenge: &LoginChallenge) -> Result<(), StoreError> {
        let mut item = challenge_key(&challenge.key);
        match &challenge.step {
            ChallengeStep::Sms {
                code_id,
                destination_key,
            } => item.extend([
                ("code_id".into(), s(code_id)),
                ("destination_hash".into(), s(destination_key)),
            ]),
            other => {
                item.insert("factor".into(), s(other.stored_name()));
                if let ChallengeStep::Passkey { state } = other {
                    item.insert("passkey_state".into(), s(state));
                }
            }
        }
        item.extend([
            ("account_id".into(), s(&challenge.account_id)),
            ("login_key".into(), s(&challenge.login_key)),
            ("foreign_computer".into(), b(challenge.foreign_computer)),
            ("credentials_epoch".into(), n(challenge.credentials_epoch)),
            (TTL_ATTRIBUTE.into(), n(challenge.expires_at)),
        ]);
        match self.put_if_absent(item).await? {
            PutOutcome::Written => Ok(()),
            PutOutcome::AlreadyThere => Err(StoreError::Conflict),
        }
    }

    async fn passkey_user_handle(&self, account_id: &AccountId) -> Result<String, StoreError> {
        self.user_handle(account_id).await
    }

    async fn put_passkey_ceremony(
        &self,
        ceremony: &crate::services::identity::PasskeyCeremony,
    ) -> Result<(), StoreError> {
        self.put_ceremony(ceremony).await
    }

    async fn get_passkey_ceremony(
        &self,
        key: &str,
    ) -> Result<Option<crate::services::identity::PasskeyCeremony>, StoreError> {
        self.ceremony(key).await
    }

    async fn find_passkey(
        &self,
        credential_id: &str,
    ) -> Result<Option<crate::services::identity::PasskeyOwner>, StoreError> {
        self.passkey_owner(credential_id).await
    }

    async fn count_client_attempt(
        &self,
        client: ClientWindow<'_>,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.count_client(client, limit).await
    }

    async fn get_challenge(&self, key: &str) -> Result<Option<LoginChallenge>, StoreError> {
        self.get_consistent(challenge_key(key))
            .await?
            .map(|item| {
                // Challenges from before other factors were SMS codes.
                let step = match get_s(&item, "factor").ok().as_deref() {
                    Some("app") => ChallengeStep::App,
                    Some("backup_code") => ChallengeStep::BackupCode,
                    Some("password_change") => ChallengeStep::PasswordChange,
                    Some("passkey") => ChallengeStep::Passkey {
                        state: get_s(&item, "passkey_state")?,
                    },
                    _ => ChallengeStep::Sms {
                        code_id: get_id(&item, "code_id")?,
                        destination_key: get_s(&item, "destination_hash")?,
                    },
                };
                Ok(LoginChallenge {
                    key: key.to_string(),
                    account_id: get_id(&item, "account_id")?,
                    step,
                    login_key: get_s(&item, "login_key")?,
                    foreign_computer: get_bool(&item, "foreign_computer"),
                    credentials_epoch: get_n(&item, "credentials_epoch").unwrap_or(0),
                    expires_at: get_n(&item, TTL_ATTRIBUTE)?,
                })
            })
            .transpose()
    }

    async fn update_security_settings(
        &self,
        account_id: &AccountId,
        settings: SecuritySettings,
        events: &[SecurityEvent],
    ) -> Result<(), StoreError> {
        let mut sets = Vec::new();
        let mut update = self
            .update(account_key(account_id))
            .condition_expression("attribute_exists(pk)");
        if let Some(on) = settings.two_step_login {
            sets.push("two_step_login = :two_step");
            update = update.expression_attribute_values(":two_step", b(on));
        }
        if let Some(on) = settings.new_device_alerts {
            sets.push("new_device_alerts = :alerts");
            update = update.expression_attribute_values(":alerts", b(on));
        }
        if sets.is_empty() {
            return Ok(());
        }
        let update = tx_update(update.update_expression(format!("SET {}", sets.join(", "))))?;
        let mut request = self.transaction().transact_items(update);
        for event in events {
            request = request.transact_items(event_put(&self.table, event)?);
        }
        request.send().await.map_err(classify_transaction)?;
        Ok(())
    }

    async fn get_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.get_consistent_as(session_key(id), session_from).await
    }

    async fn touch_session(
        &self,
        id: &SessionId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .update_item(session_key(id))
            .update_expression("SET last_seen_at = :now, #ttl = :exp")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n(expires_at))
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list_sessions(&self, account_id: &AccountId) -> Result<Vec<Session>, StoreError> {
        self.query_all(|q| {
            q.index_name(ACCOUNT_INDEX)
                .key_condition_expression("gsi1pk = :pk AND begins_with(gsi1sk, :prefix)")
                .expression_attribute_values(":pk", s(format!("ACCOUNT#{account_id}")))
                .expression_attribute_values(":prefix", s("SESSION#"))
        })
        .await?
        .iter()
        .map(session_from)
        .collect()
    }

    async fn delete_session(
        &self,
        id: &SessionId,
        account_id: &AccountId,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError> {
        let delete = self.tx_delete_owned(session_key(id), "account_id = :me", account_id)?;
        let result = self
            .transaction()
            .transact_items(delete)
            .transact_items(event_put(&self.table, event)?)
            .send()
            .await;
        won_race(result.map_err(classify_transaction))
    }

    async fn list_security_events(
        &self,
        account_id: &AccountId,
        limit: i32,
    ) -> Result<Vec<StoredSecurityEvent>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(format!("ACCOUNT#{account_id}")))
            .expression_attribute_values(":prefix", s("EVENT#"))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(classify)?;
        page.items()
            .iter()
            .map(|item| {
                Ok(StoredSecurityEvent {
                    kind: get_s(item, "kind")?,
                    at: get_n(item, "at")?,
                    ip: get_s(item, "ip").unwrap_or_default(),
                    user_agent: get_s(item, "user_agent").unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn find_account(&self, login: &str) -> Result<Option<StoredAccount>, StoreError> {
        match self.get_consistent(login_key(login)).await? {
            Some(item) => self.get_account(Some(&get_id(&item, "account_id")?)).await,
            None => Ok(None),
        }
    }

    async fn replace_password(
        &self,
        change: &PasswordChange<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let next_epoch = change.credentials_epoch + 1;
        // The epoch moves only from the one the change read: of two changes at once, one
        // wins, and a session stamped with the old epoch never passes the authorizer.
        let same_epoch = if change.credentials_epoch == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(credentials_epoch) OR credentials_epoch = :epoch)"
        } else {
            "attribute_exists(pk) AND credentials_epoch = :epoch"
        };
        let mut update = self
            .update(account_key(change.account_id))
            // Any password the citizen chooses replaces a paper one.
            .update_expression(
                "SET password_hash = :hash, credentials_epoch = :next REMOVE password_change_due",
            )
            .condition_expression(same_epoch)
            .expression_attribute_values(":hash", s(change.password_hash))
            .expression_attribute_values(":epoch", n(change.credentials_epoch))
            .expression_attribute_values(":next", n(next_epoch));
        // A recovery (the only change that redeems a token) starts the second factors'
        // cooling period.
        if change.token.is_some() {
            update = update
                .update_expression(
                    "SET password_hash = :hash, credentials_epoch = :next, recovered_at = :now \
                     REMOVE password_change_due",
                )
                .expression_attribute_values(":now", n(now));
        }
        let update = tx_update(update)?;
        let mut request = self
            .transaction()
            .transact_items(update)
            .transact_items(event_put(&self.table, change.event)?);
        let token = change.token;
        if let Some(token) = token {
            request = request.transact_items(self.token_delete(token, now)?);
        }
        if let Some(keep) = change.keep_session {
            let restamp = tx_update(
                self.update(session_key(keep))
                    .update_expression("SET credentials_epoch = :next")
                    .condition_expression("account_id = :account")
                    .expression_attribute_values(":next", n(next_epoch))
                    .expression_attribute_values(":account", s(change.account_id)),
            )?;
            request = request.transact_items(restamp);
        }
        let (now_ended, later) = change
            .end_sessions
            .split_at(change.end_sessions.len().min(SESSIONS_PER_TRANSACTION));
        for id in now_ended {
            request = request.transact_items(self.session_delete(id)?);
        }
        match request.send().await {
            Ok(_) => {}
            Err(e) => {
                let failed = failed_conditions(e)?;
                // Item 2 is the token; the account vanishing (item 0) reads the same.
                if failed
                    .iter()
                    .any(|i| *i == 0 || (*i == 2 && token.is_some()))
                {
                    return Ok(false);
                }
                return Err(StoreError::Conflict);
            }
        }
        self.batch_delete(later.iter().map(|id| session_key(id)).collect())
            .await?;
        Ok(true)
    }

    async fn replace_security_question(
        &self,
        change: &QuestionChange<'_>,
    ) -> Result<(), StoreError> {
        let update = tx_update(
            self.update(account_key(change.account_id))
                .update_expression("SET security_question = :q, security_answer_hash = :a")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(":q", s(change.question))
                .expression_attribute_values(":a", s(change.answer_hash)),
        )?;
        self.transaction()
            .transact_items(update)
            .transact_items(event_put(&self.table, change.event)?)
            .send()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn change_contact(
        &self,
        change: &ContactChange,
        now: i64,
    ) -> Result<Result<(), Vec<ContactChangeRefusal>>, StoreError> {
        let account_id = &change.account_id;
        let mut claim = login_key(&change.new_key);
        claim.extend([
            ("account_id".into(), s(account_id)),
            ("kind".into(), s(change.kind.as_str())),
        ]);
        let claim = self.put_new(claim)?;
        let attribute = match change.kind {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
        };
        // A new phone is a new second factor (its SMS codes): stamped.
        let set = match change.kind {
            ContactKind::Email => "SET #contact = :v",
            ContactKind::Phone => "SET #contact = :v, factors_changed_at = :changed",
        };
        let mut update = self
            .update(account_key(account_id))
            .update_expression(set)
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#contact", attribute)
            .expression_attribute_values(":v", s(&change.new_value));
        if change.kind == ContactKind::Phone {
            update = update.expression_attribute_values(":changed", n(now));
        }
        let mut request = self.transaction().transact_items(claim);
        match &change.old_key {
            Some(old_key) => {
                request = request.transact_items(self.tx_delete_owned(
                    login_key(old_key),
                    "account_id = :me",
                    account_id,
                )?);
            }
            // No login to release: the account must still have no such contact, so two
            // first contacts added at once cannot both become its login.
            None => {
                update = update
                    .condition_expression("attribute_exists(pk) AND #contact = :none")
                    .expression_attribute_values(":none", s(""));
            }
        }
        let token_index = if change.old_key.is_some() { 3 } else { 2 };
        let result = request
            .transact_items(tx_update(update)?)
            .transact_items(self.token_delete(&change.token, now)?)
            .transact_items(event_put(&self.table, &change.event)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                let failed = failed_conditions(e)?;
                let mut refusals = Vec::new();
                if failed.contains(&0) {
                    refusals.push(ContactChangeRefusal::Taken);
                }
                if failed.contains(&token_index) {
                    refusals.push(ContactChangeRefusal::TokenInvalid);
                }
                if refusals.is_empty() {
                    // The old login or the account moved under us: a concurrent change.
                    return Err(StoreError::Conflict);
                }
                Ok(Err(refusals))
            }
        }
    }

    async fn prove_presence(
        &self,
        proof: &PresenceProof<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let proven = tx_update(
            self.update(session_key(&proof.principal.session_id))
                .update_expression("SET proven_at = :now, factor_proven_at = :now")
                .condition_expression("account_id = :account")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":account", s(&proof.principal.account_id)),
        )?;
        let result = self
            .transaction()
            .transact_items(self.token_delete(proof.token, now)?)
            .transact_items(proven)
            .transact_items(event_put(&self.table, proof.event)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match failed_conditions(e) {
                // The code's token was not a live step-up token for this phone, or the
                // session ended meanwhile.
                Ok(_) => Ok(false),
                Err(e) => Err(e),
            },
        }
    }

    async fn token_usable(&self, token: &TokenRedemption, now: i64) -> Result<bool, StoreError> {
        Ok(self
            .get_consistent(verification_token_item_key(&token.token_key))
            .await?
            .is_some_and(|item| {
                get_s(&item, "purpose").is_ok_and(|p| p == token.purpose)
                    && get_s(&item, "destination_hash").is_ok_and(|d| d == token.destination_key)
                    && get_n::<i64>(&item, TTL_ATTRIBUTE).is_ok_and(|ttl| ttl > now)
            }))
    }

    async fn delete_account(
        &self,
        account_id: &AccountId,
        login_keys: &[String],
    ) -> Result<(), StoreError> {
        let sessions: Vec<SessionId> = self
            .list_sessions(account_id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect();
        // First, atomically: the account, its logins and its sessions, so that nobody
        // can sign in or stay signed in once this returns.
        let delete_account = self.tx_delete(account_key(account_id))?;
        let mut request = self.transaction().transact_items(delete_account);
        for login in login_keys {
            request = request.transact_items(self.tx_delete_owned(
                login_key(login),
                "attribute_not_exists(pk) OR account_id = :me",
                account_id,
            )?);
        }
        let (now_ended, later) = sessions.split_at(sessions.len().min(SESSIONS_PER_TRANSACTION));
        for id in now_ended {
            request = request.transact_items(self.session_delete(id)?);
        }
        request.send().await.map_err(classify_transaction)?;
        // Then the rest: remaining sessions, the security log, the profile, vehicles, and
        // links to children, each child leaving with its last parent.
        let mut rest: Vec<Item> = later.iter().map(|id| session_key(id)).collect();
        // A passkey's credential id is claimed outside the partition.
        for passkey in self.factors_of(account_id, 0).await?.passkeys {
            rest.push(passkeys::credential_key(&passkey.credential_id));
        }
        let own = self
            .partition_keys(&format!("ACCOUNT#{account_id}"))
            .await?;
        for item in &own {
            if let Some(child) = get_s(item, "sk")?.strip_prefix("CHILD#") {
                crate::services::household::HouseholdStore::unlink_child(
                    self,
                    account_id,
                    &parse_id(child)?,
                )
                .await?;
            }
        }
        // Payments stay: they are the record of money paid to billers, which outlives the
        // account (and reconciliation still needs an open one).
        rest.extend(
            own.into_iter()
                .filter(|item| get_s(item, "sk").is_ok_and(|sk| !sk.starts_with("PAYMENT#"))),
        );
        self.batch_delete(rest).await
    }
}
