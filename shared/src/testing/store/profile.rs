//! Profiles, their holder index and their jobs; households are not modelled (no
//! children, no vehicles).

use super::{not_modelled, MemStore};
use crate::domain::{AccountId, ChildId, OperatorId, VehicleId};
use crate::services::confirmation::{Operator, OperatorStore};
use crate::services::household::{
    Child, ChildLink, HouseholdStore, LinkRefusal, LinkVerdict, StoredChild, StoredVehicle, Vehicle,
};
use crate::services::identity::StoredAccount;
use crate::services::notices::{Channel, NoticeStore, NotificationSettings};
use crate::services::profile::{
    JobQueue, Profile, ProfileStore, ProfileWrite, ProfileWriteRefusal, StoredProfile,
    VerificationJob,
};
use crate::services::StoreError;
use crate::testing::script::Fault;

impl ProfileStore for MemStore {
    async fn load_profile(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<(StoredAccount, StoredProfile)>, StoreError> {
        self.read("load_profile").await?;
        let state = self.state();
        Ok(state.accounts.get(account_id).map(|account| {
            let profile = state
                .profiles
                .get(account_id)
                .cloned()
                .unwrap_or(StoredProfile {
                    profile: Profile::default(),
                    version: 0,
                });
            (account.clone(), profile)
        }))
    }

    /// The conditions of the transaction: the profile still at the version read, a
    /// claimed SNILS login not another account's, the account still at the level it
    /// moves from.
    async fn write_profile(
        &self,
        write: &ProfileWrite<'_>,
    ) -> Result<Result<(), ProfileWriteRefusal>, StoreError> {
        let fault = self.enter("write_profile").await?;
        if fault == Some(Fault::Conflict) {
            return Ok(Err(ProfileWriteRefusal::Stale));
        }
        let mut state = self.state();
        let id = write.account_id.clone();
        let version = state.profiles.get(&id).map(|p| p.version).unwrap_or(0);
        let Some(account) = state.accounts.get(&id).cloned() else {
            return Ok(Err(ProfileWriteRefusal::Stale));
        };
        if version != write.expected_version {
            return Ok(Err(ProfileWriteRefusal::Stale));
        }
        if let Some((from, _)) = write.level_change {
            if account.level != from {
                return Ok(Err(ProfileWriteRefusal::Stale));
            }
        }
        if let Some(login) = &write.claim_login {
            if state.logins.get(login).is_some_and(|owner| *owner != id) {
                return Ok(Err(ProfileWriteRefusal::SnilsTaken));
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
                account.level = to.to_string();
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
        drop(state);
        Self::done(fault, Ok(()))
    }

    async fn overdue_profiles(&self, now: i64, limit: usize) -> Result<Vec<AccountId>, StoreError> {
        self.read("overdue_profiles").await?;
        let state = self.state();
        let mut due: Vec<(i64, AccountId)> = state
            .profiles
            .iter()
            .filter_map(|(id, p)| p.profile.due().map(|d| (d, id.clone())))
            .filter(|(d, _)| *d <= now)
            .collect();
        due.sort();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }
}

impl JobQueue for MemStore {
    async fn enqueue(&self, jobs: &[VerificationJob]) -> Result<(), StoreError> {
        self.write("enqueue", |state| {
            state.jobs.extend(jobs.iter().cloned());
        })
        .await
    }
}

impl NoticeStore for MemStore {
    async fn notification_settings(
        &self,
        _account_id: &AccountId,
    ) -> Result<Option<NotificationSettings>, StoreError> {
        self.read("notification_settings").await?;
        Ok(None)
    }

    async fn put_notification_settings(
        &self,
        _account_id: &AccountId,
        _settings: &NotificationSettings,
        _now: i64,
    ) -> Result<(), StoreError> {
        not_modelled("put_notification_settings")
    }

    async fn holders(&self, payer_key: &str) -> Result<Vec<AccountId>, StoreError> {
        self.read("holders").await?;
        Ok(self
            .state()
            .holdings
            .iter()
            .filter(|(_, keys)| keys.contains(payer_key))
            .map(|(account, _)| account.clone())
            .collect())
    }

    async fn holdings(&self, account_id: &AccountId) -> Result<Vec<String>, StoreError> {
        self.read("holdings").await?;
        Ok(self
            .state()
            .holdings
            .get(account_id)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default())
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

    async fn claim_notice(
        &self,
        account_id: &AccountId,
        uin: &str,
        channel: Channel,
        _now: i64,
    ) -> Result<bool, StoreError> {
        self.claim("claim_notice", |state| {
            state
                .notices_claimed
                .insert((account_id.clone(), uin.to_string(), channel.as_str()))
        })
        .await
    }

    async fn release_notice(
        &self,
        account_id: &AccountId,
        uin: &str,
        channel: Channel,
    ) -> Result<(), StoreError> {
        self.write("release_notice", |state| {
            state
                .notices_claimed
                .remove(&(account_id.clone(), uin.to_string(), channel.as_str()));
        })
        .await
    }
}

impl HouseholdStore for MemStore {
    async fn child(&self, _id: &ChildId) -> Result<Option<StoredChild>, StoreError> {
        self.read("child").await?;
        Ok(None)
    }

    async fn child_links(&self, _account_id: &AccountId) -> Result<Vec<ChildLink>, StoreError> {
        self.read("child_links").await?;
        Ok(Vec::new())
    }

    async fn children(&self, _ids: &[ChildId]) -> Result<Vec<StoredChild>, StoreError> {
        self.read("children").await?;
        Ok(Vec::new())
    }

    async fn link_child(
        &self,
        _account_id: &AccountId,
        _link: &ChildLink,
        _now: i64,
    ) -> Result<Result<(), LinkRefusal>, StoreError> {
        not_modelled("link_child")
    }

    async fn decide_link(
        &self,
        _account_id: &AccountId,
        _id: &ChildId,
        _submission: &str,
        _verdict: &LinkVerdict,
    ) -> Result<bool, StoreError> {
        not_modelled("decide_link")
    }

    async fn update_child(
        &self,
        _account_id: &AccountId,
        _id: &ChildId,
        _child: &Child,
        _expected_version: u64,
        _snils_submission: Option<&str>,
    ) -> Result<bool, StoreError> {
        not_modelled("update_child")
    }

    async fn settle_child_snils(
        &self,
        _id: &ChildId,
        _submission: &str,
        _child: &Child,
        _verified: bool,
    ) -> Result<bool, StoreError> {
        not_modelled("settle_child_snils")
    }

    async fn unlink_child(
        &self,
        _account_id: &AccountId,
        _id: &ChildId,
    ) -> Result<bool, StoreError> {
        not_modelled("unlink_child")
    }

    async fn vehicles(&self, _account_id: &AccountId) -> Result<Vec<StoredVehicle>, StoreError> {
        self.read("vehicles").await?;
        Ok(Vec::new())
    }

    async fn put_vehicle(
        &self,
        _account_id: &AccountId,
        _vehicle: &StoredVehicle,
    ) -> Result<bool, StoreError> {
        not_modelled("put_vehicle")
    }

    async fn update_vehicle(
        &self,
        _account_id: &AccountId,
        _id: &VehicleId,
        _vehicle: &Vehicle,
    ) -> Result<bool, StoreError> {
        not_modelled("update_vehicle")
    }

    async fn delete_vehicle(
        &self,
        _account_id: &AccountId,
        _id: &VehicleId,
    ) -> Result<bool, StoreError> {
        not_modelled("delete_vehicle")
    }
}

impl OperatorStore for MemStore {
    async fn put_operator(
        &self,
        key_hash: &str,
        operator: &Operator,
        _now: i64,
    ) -> Result<(), StoreError> {
        self.write("put_operator", |state| {
            state
                .operators
                .insert(key_hash.to_string(), operator.clone());
        })
        .await
    }

    async fn operator_by_key(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        self.read("operator_by_key").await?;
        let state = self.state();
        Ok(state
            .operators
            .get(key_hash)
            .filter(|o| !state.revoked_operators.contains(&o.id))
            .cloned())
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
