//! Confirmation by electronic signature: the account's open challenge, its attempts, and
//! the confirmation that spends it, with the table's conditions.

use super::MemStore;
use crate::domain::AccountId;
use crate::services::e_signature::{SignatureChallenge, SignatureConfirmation, SignatureStore};
use crate::services::profile::{CONFIRMED, STANDARD};
use crate::services::StoreError;

impl SignatureStore for MemStore {
    async fn put_signature_challenge(
        &self,
        account_id: &AccountId,
        challenge: &SignatureChallenge,
    ) -> Result<(), StoreError> {
        self.write("put_signature_challenge", |state| {
            state
                .signature_challenges
                .insert(account_id.clone(), challenge.clone());
        })
        .await
    }

    async fn signature_challenge(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<SignatureChallenge>, StoreError> {
        self.read("signature_challenge", |state| {
            state.signature_challenges.get(account_id).cloned()
        })
        .await
    }

    async fn signature_attempt(
        &self,
        account_id: &AccountId,
        id: &str,
        max: u32,
    ) -> Result<Option<u32>, StoreError> {
        self.read("signature_attempt", |_| ()).await?;
        let mut state = self.state();
        Ok(state
            .signature_challenges
            .get_mut(account_id)
            .filter(|c| c.id == id && c.attempts < max)
            .map(|c| {
                c.attempts += 1;
                c.attempts
            }))
    }

    async fn confirm_by_signature(
        &self,
        c: &SignatureConfirmation<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let id = c.confirmation.account_id;
        self.write_if("confirm_by_signature", |state| {
            let open = state
                .signature_challenges
                .get(id)
                .is_some_and(|ch| ch.id == c.challenge_id);
            let standard = state.accounts.get(id).is_some_and(|a| a.level == STANDARD);
            if !(open && standard) {
                return false;
            }
            if let Some(account) = state.accounts.get_mut(id) {
                account.level = CONFIRMED;
                account.confirmed_at = Some(now);
            }
            state.signature_challenges.remove(id);
            state.events.push(c.confirmation.event.clone());
            state
                .signature_confirmations
                .push((id.clone(), c.certificate.serial.clone()));
            true
        })
        .await
    }
}
