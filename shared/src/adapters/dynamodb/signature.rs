//! Confirmation by electronic signature: the account's open challenge
//! (`ACCOUNT#{id}` / `SIGNATURE_CHALLENGE`), its attempts, and the transaction that spends
//! it and confirms the account.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};

use base64::Engine as _;

use super::identity::event_put;
use super::*;
use crate::services::e_signature::{
    ChallengePurpose, SignatureChallenge, SignatureConfirmation, SignatureStore,
};

fn challenge_key(account_id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), "SIGNATURE_CHALLENGE")
}

fn challenge_from(item: &Item) -> Result<SignatureChallenge, StoreError> {
    Ok(SignatureChallenge {
        id: get_s(item, "challenge_id")?,
        purpose: match get_s(item, "purpose").ok().as_deref() {
            Some("bank_id") => ChallengePurpose::BankId,
            _ => ChallengePurpose::Signature,
        },
        content: base64::engine::general_purpose::STANDARD
            .decode(get_s(item, "content")?)
            .map_err(|e| StoreError::Corrupt(format!("signature challenge: {e}")))?,
        expires_at: get_n(item, TTL_ATTRIBUTE)?,
        attempts: get_n(item, "attempts").unwrap_or(0),
    })
}

impl SignatureStore for DynamoStore {
    async fn put_signature_challenge(
        &self,
        account_id: &AccountId,
        challenge: &SignatureChallenge,
    ) -> Result<(), StoreError> {
        let mut item = challenge_key(account_id);
        item.extend([
            ("challenge_id".into(), s(&challenge.id)),
            ("purpose".into(), s(challenge.purpose.as_str())),
            (
                "content".into(),
                s(base64::engine::general_purpose::STANDARD.encode(&challenge.content)),
            ),
            ("attempts".into(), n(challenge.attempts)),
            (TTL_ATTRIBUTE.into(), n(challenge.expires_at)),
        ]);
        self.put(item).await
    }

    async fn signature_challenge(
        &self,
        account_id: &AccountId,
    ) -> Result<Option<SignatureChallenge>, StoreError> {
        self.get_consistent_as(challenge_key(account_id), challenge_from)
            .await
    }

    async fn signature_attempt(
        &self,
        account_id: &AccountId,
        id: &str,
        max: u32,
    ) -> Result<Option<u32>, StoreError> {
        let update = self
            .update_item(challenge_key(account_id))
            .expression_attribute_values(":id", s(id))
            .expression_attribute_values(":max", n(max));
        count_attempt(update, "challenge_id = :id AND attempts < :max").await
    }

    async fn confirm_by_signature(
        &self,
        c: &SignatureConfirmation<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let confirmation = &c.confirmation;
        let spend = TransactWriteItem::builder()
            .delete(build(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(challenge_key(confirmation.account_id)))
                    .condition_expression("challenge_id = :id")
                    .expression_attribute_values(":id", s(c.challenge_id))
                    .build(),
            )?)
            .build();
        let request = self
            .transaction()
            .transact_items(self.confirmation_lift(confirmation, Some(c.certificate), now)?)
            .transact_items(event_put(&self.table, &confirmation.event)?)
            .transact_items(spend);
        won_race(
            request
                .send()
                .await
                .map(|_| ())
                .map_err(classify_transaction),
        )
    }
}
