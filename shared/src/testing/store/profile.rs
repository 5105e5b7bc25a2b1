//! Profiles and their holder index (the queue of their jobs is in the parent module);
//! households are not modelled (no children, no vehicles).

use super::{listed, MemStore};
use crate::domain::{AccountId, ChildId, OperatorId, VehicleId};
use crate::services::confirmation::{KeyedOperator, Operator, OperatorStore};
use crate::services::household::{
    ChildLink, ChildUpdate, HouseholdStore, LinkDecision, LinkRefusal, SnilsSettlement,
    StoredChild, StoredVehicle, Vehicle,
};
use crate::services::identity::StoredAccount;
use crate::services::notices::{NoticeMark, NoticeStore, NotificationSettings};
use crate::services::profile::{
    Profile, ProfileStore, ProfileWrite, ProfileWriteRefusal, StoredProfile,
};
use crate::services::StoreError;

impl ProfileStore for MemStore {
    async fn load_profile(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<(StoredAccount, StoredProfile)>, StoreError> {
        self.read("load_profile", |state| {
            state.accounts.get(account_id).map(|account| {
                let profile = state
                    .profiles
                    .get(account_id)
                    .cloned()
                    .unwrap_or(StoredProfile {
                        profile: Profile::default(),
                        version: 0,
                    });
                (account.clone(), profile)
            })
        })
        .await
    }

    /// The conditions of the transaction: the profile still at the version read, a
    /// claimed SNILS login not another account's, the account still at the level it
    /// moves from.
    async fn write_profile(
        &self,
        write: &ProfileWrite<'_>,
    ) -> Result<Result<(), ProfileWriteRefusal>, StoreError> {
        self.transact("write_profile", ProfileWriteRefusal::Stale, |state| {
            let id = write.account_id.clone();
            let version = state.profiles.get(&id).map(|p| p.version).unwrap_or(0);
            let Some(account) = state.accounts.get(&id).cloned() else {
                return Err(ProfileWriteRefusal::Stale);
            };
            if version != write.expected_version {
                return Err(ProfileWriteRefusal::Stale);
            }
            if let Some((from, _)) = write.level_change {
                if account.level != from {
                    return Err(ProfileWriteRefusal::Stale);
                }
            }
            if let Some(login) = &write.claim_login {
                if state.logins.get(login).is_some_and(|owner| *owner != id) {
                    return Err(ProfileWriteRefusal::SnilsTaken);
                }
            }
            state.profiles.insert(
                id.clone(),
                StoredProfile {
                    profile: write.profile.clone(),
                    version: version + 1,
                },
            );
            if let Some(login) = &write.release_login {
                if state.logins.get(login) == Some(&id) {
                    state.logins.remove(login);
                }
            }
            if let Some(login) = &write.claim_login {
                state.logins.insert(login.clone(), id.clone());
            }
            if let Some(account) = state.accounts.get_mut(&id) {
                if let Some((last, first, middle)) = write.account_names {
                    account.last_name = last.to_string();
                    account.first_name = first.to_string();
                    account.middle_name = middle.map(str::to_string);
                }
                if let Some((_, to)) = write.level_change {
                    account.level = to;
                }
                if write.clear_confirmation {
                    account.confirmed_at = None;
                }
                if write.release_login.is_some() {
                    account.snils_login = None;
                }
                if let Some(login) = &write.claim_login {
                    account.snils_login = Some(login.clone());
                }
            }
            state.events.extend(write.events.iter().cloned());
            let held = state.holdings.entry(id).or_default();
            for key in &write.holdings_remove {
                held.remove(key);
            }
            held.extend(write.holdings_add.iter().cloned());
            for entry in &write.dues_remove {
                state
                    .dues
                    .remove(&(entry.due, write.account_id.clone(), entry.document));
            }
            for entry in &write.dues_add {
                state.dues.insert(
                    (entry.due, write.account_id.clone(), entry.document),
                    entry.clone(),
                );
            }
            Ok(())
        })
        .await
    }

    async fn overdue_profiles(&self, now: i64, limit: usize) -> Result<Vec<AccountId>, StoreError> {
        let mut due: Vec<(i64, AccountId)> = self
            .read("overdue_profiles", |state| {
                state
                    .profiles
                    .iter()
                    .filter_map(|(id, p)| p.profile.due().map(|d| (d, id.clone())))
                    .filter(|(d, _)| *d <= now)
                    .collect()
            })
            .await?;
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }
}

impl NoticeStore for MemStore {
    unmodelled! {
        finds nothing {
            fn notification_settings(&self, _account_id: &AccountId) -> Option<NotificationSettings>;
        }
        refused {
            fn put_notification_settings(&self, _account_id: &AccountId, _settings: &NotificationSettings, _now: i64) -> ();
        }
    }

    async fn holders(&self, payer_key: &str) -> Result<Vec<AccountId>, StoreError> {
        self.read("holders", |state| {
            state
                .holdings
                .iter()
                .filter(|(_, keys)| keys.contains(payer_key))
                .map(|(account, _)| account.clone())
                .collect()
        })
        .await
    }

    async fn holdings(&self, account_id: &AccountId) -> Result<Vec<String>, StoreError> {
        self.read("holdings", |state| listed(&state.holdings, account_id))
            .await
    }

    async fn change_holdings(
        &self,
        account_id: &AccountId,
        add: &[String],
        remove: &[String],
    ) -> Result<(), StoreError> {
        self.write("change_holdings", |state| {
            let held = state.holdings.entry(account_id.clone()).or_default();
            for key in remove {
                held.remove(key);
            }
            held.extend(add.iter().cloned());
        })
        .await
    }

    async fn claim_notice(&self, mark: NoticeMark<'_>, _now: i64) -> Result<bool, StoreError> {
        self.write_if("claim_notice", |state| {
            state.notices_claimed.insert(claimed(mark))
        })
        .await
    }

    async fn release_notice(&self, mark: NoticeMark<'_>) -> Result<(), StoreError> {
        self.write("release_notice", |state| {
            state.notices_claimed.remove(&claimed(mark));
        })
        .await
    }
}

/// A notice marker as the double keeps it among the claimed ones.
fn claimed(mark: NoticeMark<'_>) -> (AccountId, String, &'static str) {
    (
        mark.account_id.clone(),
        mark.uin.as_str().to_string(),
        mark.channel.as_str(),
    )
}

/// Households are not modelled: none is found, and a change is refused.
impl HouseholdStore for MemStore {
    unmodelled! {
        finds nothing {
            fn child(&self, _id: &ChildId) -> Option<StoredChild>;
            fn child_links(&self, _account_id: &AccountId) -> Vec<ChildLink>;
            fn children(&self, _ids: &[ChildId]) -> Vec<StoredChild>;
            fn vehicles(&self, _account_id: &AccountId) -> Vec<StoredVehicle>;
        }
        refused {
            fn link_child(&self, _account_id: &AccountId, _link: &ChildLink, _now: i64) -> Result<(), LinkRefusal>;
            fn decide_link(&self, _decision: &LinkDecision<'_>) -> bool;
            fn update_child(&self, _update: &ChildUpdate<'_>) -> bool;
            fn settle_child_snils(&self, _settlement: &SnilsSettlement<'_>) -> bool;
            fn unlink_child(&self, _account_id: &AccountId, _id: &ChildId) -> bool;
            fn put_vehicle(&self, _account_id: &AccountId, _vehicle: &StoredVehicle) -> bool;
            fn update_vehicle(&self, _account_id: &AccountId, _id: &VehicleId, _vehicle: &Vehicle) -> bool;
            fn delete_vehicle(&self, _account_id: &AccountId, _id: &VehicleId) -> bool;
        }
    }
}

impl OperatorStore for MemStore {
    async fn put_operator(&self, keyed: &KeyedOperator<'_>, _now: i64) -> Result<(), StoreError> {
        self.write("put_operator", |state| {
            state
                .operators
                .insert(keyed.key_hash.to_string(), keyed.operator.clone());
        })
        .await
    }

    async fn operator_by_key(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        self.read("operator_by_key", |state| {
            state
                .operators
                .get(key_hash)
                .filter(|o| !state.revoked_operators.contains(&o.id))
                .cloned()
        })
        .await
    }

    async fn revoke_operator(&self, id: &OperatorId, _now: i64) -> Result<bool, StoreError> {
        self.write("revoke_operator", |state| {
            let known = state.operators.values().any(|o| o.id == *id);
            if known {
                state.revoked_operators.insert(id.clone());
            }
            known
        })
        .await
    }
}
