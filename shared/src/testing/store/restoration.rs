//! Access restored at a service centre: the operator's hourly count, and the one
//! transaction that gives the account its new contact, with the table's conditions.

use super::MemStore;
use crate::domain::{AccountId, OperatorId, SessionId};
use crate::services::identity::{ContactKind, StoredAccount};
use crate::services::profile::{CONFIRMED, STANDARD};
use crate::services::restoration::{Restoration, RestorationRefusal, RestorationStore};
use crate::services::StoreError;

impl RestorationStore for MemStore {
    async fn count_restoration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        _window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.write_if("count_restoration", |state| {
            let count = state
                .restorations
                .entry((operator_id.clone(), window_start))
                .or_insert(0);
            let counted = *count < limit;
            if counted {
                *count += 1;
            }
            counted
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

    /// The new login must be free, the old one still the account's, and the account at
    /// the epoch, contact and level read; then everything is written at once.
    async fn restore_access(
        &self,
        r: &Restoration<'_>,
        _now: i64,
    ) -> Result<Result<(), RestorationRefusal>, StoreError> {
        let read = r.account;
        self.transact(
            "restore_access",
            RestorationRefusal::AccountChanged,
            |state| {
                if state.logins.contains_key(r.new_key) {
                    return Err(RestorationRefusal::ContactTaken);
                }
                if state.logins.get(r.old_key) != Some(&read.id) {
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
                {
                    return Err(RestorationRefusal::AccountChanged);
                }
                *contact = r.new_value.to_string();
                account.credentials_epoch += 1;
                state.logins.remove(r.old_key);
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
