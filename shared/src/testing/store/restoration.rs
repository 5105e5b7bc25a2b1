//! Access restored at a service centre: the operator's hourly count, and the one
//! transaction that gives the account its new contact, with the table's conditions.

use std::collections::btree_map::Entry;

use super::MemStore;
use crate::domain::{AccountId, OperatorId, SessionId};
use crate::services::identity::{ContactKind, StoredAccount, TokenRedemption};
use crate::services::profile::{CONFIRMED, SIMPLIFIED, STANDARD};
use crate::services::restoration::registration::{DeskAccount, DeskRegistrationStore};
use crate::services::restoration::{Restoration, RestorationRefusal, RestorationStore};
use crate::services::StoreError;

/// Whether `token` is live in `state`, as the table's condition on the token item reads.
fn live(state: &super::State, token: &TokenRedemption, now: i64) -> bool {
    state.verification_tokens.get(&token.token_key).is_some_and(
        |(purpose, destination, expires)| {
            purpose == token.purpose && *destination == token.destination_key && *expires > now
        },
    )
}

/// One more in an operator's hourly count when it is below `limit`, as the table's
/// conditional `ADD` does.
fn count_below(entry: Entry<'_, (OperatorId, i64), u32>, limit: u32) -> bool {
    let count = entry.or_insert(0);
    let counted = *count < limit;
    if counted {
        *count += 1;
    }
    counted
}

impl RestorationStore for MemStore {
    async fn count_restoration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        _window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.write_if("count_restoration", |state| {
            count_below(
                state
                    .restorations
                    .entry((operator_id.clone(), window_start)),
                limit,
            )
        })
        .await
    }

    async fn account_by_snils(&self, login_key: &str) -> Result<Option<StoredAccount>, StoreError> {
        self.read("account_by_snils", |state| {
            state
                .logins
                .get(login_key)
                .and_then(|id| state.accounts.get(id))
                .cloned()
        })
        .await
    }

    async fn account_sessions(&self, account_id: &AccountId) -> Result<Vec<SessionId>, StoreError> {
        self.read("account_sessions", |state| {
            state
                .sessions
                .iter()
                .filter(|(_, owner)| *owner == account_id)
                .map(|(id, _)| id.clone())
                .collect()
        })
        .await
    }

    async fn token_usable(&self, token: &TokenRedemption, now: i64) -> Result<bool, StoreError> {
        self.read("token_usable", |state| live(state, token, now))
            .await
    }

    /// The token must be live, the new login free, the old one still the account's, and the account at
    /// the epoch, contact and level read; then everything is written at once.
    async fn restore_access(
        &self,
        r: &Restoration<'_>,
        now: i64,
    ) -> Result<Result<(), RestorationRefusal>, StoreError> {
        let read = r.account;
        self.transact(
            "restore_access",
            RestorationRefusal::AccountChanged,
            |state| {
                if !live(state, r.token, now) {
                    return Err(RestorationRefusal::TokenInvalid);
                }
                if state.logins.contains_key(r.new_key) {
                    return Err(RestorationRefusal::ContactTaken);
                }
                if r.old_key
                    .is_some_and(|old| state.logins.get(old) != Some(&read.id))
                {
                    return Err(RestorationRefusal::AccountChanged);
                }
                let account = state
                    .accounts
                    .get_mut(&read.id)
                    .ok_or(RestorationRefusal::AccountChanged)?;
                let contact = match r.kind {
                    ContactKind::Email => &mut account.email,
                    ContactKind::Phone => &mut account.phone,
                };
                let old = match r.kind {
                    ContactKind::Email => &read.email,
                    ContactKind::Phone => &read.phone,
                };
                if account.credentials_epoch != read.credentials_epoch
                    || contact != old
                    || (account.level != STANDARD && account.level != CONFIRMED)
                    || (r.sms_factor_back && account.sms_factor)
                {
                    return Err(RestorationRefusal::AccountChanged);
                }
                *contact = r.new_value.to_string();
                state.verification_tokens.remove(&r.token.token_key);
                if r.sms_factor_back {
                    account.sms_factor = true;
                    account.factor_count += 1;
                }
                account.credentials_epoch += 1;
                account.recovered_at = Some(now);
                account.factors_changed_at = Some(now);
                if let Some(old) = r.old_key {
                    state.logins.remove(old);
                }
                state.logins.insert(r.new_key.to_string(), read.id.clone());
                for id in r.end_sessions {
                    state.sessions.remove(id);
                }
                state.events.push(r.event.clone());
                state
                    .restoration_audit
                    .push((r.operator_id.clone(), read.id.clone()));
                Ok(())
            },
        )
        .await
    }
}

impl DeskRegistrationStore for MemStore {
    async fn count_registration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        _window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.write_if("count_registration", |state| {
            count_below(
                state
                    .registrations
                    .entry((operator_id.clone(), window_start)),
                limit,
            )
        })
        .await
    }

    async fn create_desk_account(&self, a: &DeskAccount<'_>, now: i64) -> Result<(), StoreError> {
        self.write("create_desk_account", |state| {
            state.accounts.insert(
                a.id.clone(),
                StoredAccount {
                    id: a.id.clone(),
                    last_name: a.last_name.to_string(),
                    first_name: a.first_name.to_string(),
                    middle_name: a.middle_name.map(str::to_string),
                    email: String::new(),
                    phone: String::new(),
                    password_hash: a.password_hash.to_string(),
                    security_question: String::new(),
                    security_answer_hash: String::new(),
                    level: SIMPLIFIED,
                    created_at: now,
                    two_step_login: false,
                    new_device_alerts: true,
                    known_devices: Vec::new(),
                    snils_login: None,
                    confirmed_at: Some(now),
                    credentials_epoch: 0,
                    sms_factor: false,
                    factor_count: 0,
                    recovered_at: None,
                    factors_changed_at: None,
                    password_change_due: Some(a.password_change_due),
                },
            );
            state.events.push(a.event.clone());
            state
                .registration_audit
                .push((a.operator_id.clone(), a.id.clone()));
        })
        .await
    }

    async fn withdraw_desk_account(
        &self,
        account_id: &AccountId,
        operator_id: &OperatorId,
        _registered_at: i64,
    ) -> Result<(), StoreError> {
        self.write("withdraw_desk_account", |state| {
            state.accounts.remove(account_id);
            state
                .registration_audit
                .retain(|(o, a)| !(o == operator_id && a == account_id));
        })
        .await
    }
}
