//! Operators (`OPERATOR#{id}` / `OPERATOR`, found by key at `OPKEY#{hash}` / `OPKEY`),
//! their confirmations (`OPERATOR#{id}` / `CONFIRMATION#{millis}#{account}`) and letters
//! with codes (`ACCOUNT#{id}` / `LETTER`).

use aws_sdk_dynamodb::types::TransactWriteItem;

use super::identity::{account_key, event_put};
use super::*;
use crate::services::confirmation::{
    Confirmation, ConfirmationStore, KeyedOperator, Operator, OperatorStore, StoredLetter,
    LETTER_MAX_ATTEMPTS,
};
use crate::services::e_signature::SignedIdentity;
use crate::services::identity::{IdentityStore, StoredAccount};
use crate::services::profile::{CONFIRMED, STANDARD};
use crate::services::StoreError;

fn key_item(hash: &str) -> Item {
    key(format!("OPKEY#{hash}"), "OPKEY")
}

fn operator_item(id: &str) -> Item {
    key(format!("OPERATOR#{id}"), "OPERATOR")
}

fn letter_key(account_id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), "LETTER")
}

/// The operator a key item names.
fn operator_from(item: &Item) -> Result<Operator, StoreError> {
    Ok(Operator {
        id: get_id(item, "operator_id")?,
        name: get_s(item, "name")?,
        centre: get_s(item, "centre")?,
    })
}

impl OperatorStore for DynamoStore {
    async fn put_operator(&self, keyed: &KeyedOperator<'_>, now: i64) -> Result<(), StoreError> {
        let operator = keyed.operator;
        let mut by_key = key_item(keyed.key_hash);
        by_key.extend([
            ("operator_id".into(), s(&operator.id)),
            ("name".into(), s(&operator.name)),
            ("centre".into(), s(&operator.centre)),
        ]);
        let mut record = operator_item(&operator.id);
        record.extend([
            ("name".into(), s(&operator.name)),
            ("centre".into(), s(&operator.centre)),
            ("key_hash".into(), s(keyed.key_hash)),
            ("created_at".into(), n(now)),
        ]);
        self.put_keyed_principal(by_key, record).await
    }

    async fn operator_by_key(&self, key_hash: &str) -> Result<Option<Operator>, StoreError> {
        self.get_consistent_as(key_item(key_hash), operator_from)
            .await
    }

    async fn revoke_operator(&self, id: &OperatorId, now: i64) -> Result<bool, StoreError> {
        self.revoke_keyed_principal(operator_item(id), key_item, now)
            .await
    }
}

fn letter_from(item: &Item) -> Result<StoredLetter, StoreError> {
    Ok(StoredLetter {
        code_hash: get_s(item, "code_hash")?,
        attempts: get_n(item, "attempts")?,
        requested_at: get_n(item, "requested_at")?,
        expires_at: get_n(item, TTL_ATTRIBUTE)?,
        used: get_bool(item, "used"),
    })
}

impl DynamoStore {
    /// The update that moves a standard account to confirmed and records how: by an
    /// operator (`confirmed_by`), or by a certificate (its serial and issuer).
    pub(super) fn confirmation_lift(
        &self,
        confirmation: &Confirmation<'_>,
        certificate: Option<&SignedIdentity>,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut lift = self
            .update(account_key(confirmation.account_id))
            .condition_expression("#level = :standard")
            .expression_attribute_names("#level", "level")
            .expression_attribute_values(":standard", s(STANDARD))
            .expression_attribute_values(":confirmed", s(CONFIRMED))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":via", s(confirmation.via));
        lift = match (confirmation.operator_id, certificate) {
            (Some(operator), _) => lift
                .update_expression(
                    "SET #level = :confirmed, confirmed_at = :now, confirmed_via = :via, \
                     confirmed_by = :operator",
                )
                .expression_attribute_values(":operator", s(operator)),
            (None, Some(certificate)) => lift
                .update_expression(
                    "SET #level = :confirmed, confirmed_at = :now, confirmed_via = :via, \
                     confirmed_certificate_serial = :serial, \
                     confirmed_certificate_issuer = :issuer REMOVE confirmed_by",
                )
                .expression_attribute_values(":serial", s(&certificate.serial))
                .expression_attribute_values(":issuer", s(&certificate.issuer)),
            (None, None) => lift.update_expression(
                "SET #level = :confirmed, confirmed_at = :now, confirmed_via = :via \
                 REMOVE confirmed_by",
            ),
        };
        Ok(TransactWriteItem::builder()
            .update(build(lift.build())?)
            .build())
    }
}

impl ConfirmationStore for DynamoStore {
    async fn account_by_login(&self, login_key: &str) -> Result<Option<StoredAccount>, StoreError> {
        IdentityStore::find_account(self, login_key).await
    }

    async fn confirm(
        &self,
        confirmation: &Confirmation<'_>,
        letter_code_hash: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .transaction()
            .transact_items(self.confirmation_lift(confirmation, None, now)?)
            .transact_items(event_put(&self.table, &confirmation.event)?);
        if let Some(operator) = confirmation.operator_id {
            let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
            let mut audit = key(
                format!("OPERATOR#{operator}"),
                &format!("CONFIRMATION#{millis:015}#{}", confirmation.account_id),
            );
            audit.extend([
                ("account_id".into(), s(confirmation.account_id)),
                ("at".into(), n(now)),
                ("ip".into(), s(&confirmation.event.ip)),
            ]);
            request = request.transact_items(self.tx_put(audit)?);
        }
        if let Some(hash) = letter_code_hash {
            let spend = tx_update(
                self.update(letter_key(confirmation.account_id))
                    .update_expression("SET used = :true")
                    // The answer that spends it was counted already.
                    .condition_expression(
                        "code_hash = :hash AND used = :false AND attempts <= :max AND #ttl > :now",
                    )
                    .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                    .expression_attribute_values(":hash", s(hash))
                    .expression_attribute_values(":true", b(true))
                    .expression_attribute_values(":false", b(false))
                    .expression_attribute_values(":max", n(LETTER_MAX_ATTEMPTS))
                    .expression_attribute_values(":now", n(now)),
            )?;
            request = request.transact_items(spend);
        }
        won_race(
            request
                .send()
                .await
                .map(|_| ())
                .map_err(classify_transaction),
        )
    }

    async fn letter(&self, account_id: &AccountId) -> Result<Option<StoredLetter>, StoreError> {
        self.get_consistent_as(letter_key(account_id), letter_from)
            .await
    }

    async fn put_letter(
        &self,
        account_id: &AccountId,
        letter: &StoredLetter,
        not_after: i64,
    ) -> Result<bool, StoreError> {
        let mut item = letter_key(account_id);
        item.extend([
            ("code_hash".into(), s(&letter.code_hash)),
            ("attempts".into(), n(letter.attempts)),
            ("requested_at".into(), n(letter.requested_at)),
            ("used".into(), b(letter.used)),
            (TTL_ATTRIBUTE.into(), n(letter.expires_at)),
        ]);
        let result = self
            .put_item(item)
            .condition_expression("attribute_not_exists(pk) OR requested_at <= :not_after")
            .expression_attribute_values(":not_after", n(not_after))
            .send()
            .await
            .map_err(classify);
        won_race(result)
    }

    async fn withdraw_letter(
        &self,
        account_id: &AccountId,
        code_hash: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .delete_item(letter_key(account_id))
            .condition_expression("code_hash = :hash")
            .expression_attribute_values(":hash", s(code_hash))
            .send()
            .await
            .map_err(classify);
        won_race(result).map(|_| ())
    }

    async fn letter_attempt(
        &self,
        account_id: &AccountId,
        code_hash: &str,
    ) -> Result<Option<u32>, StoreError> {
        let update = self
            .update_item(letter_key(account_id))
            .expression_attribute_values(":hash", s(code_hash))
            .expression_attribute_values(":false", b(false))
            .expression_attribute_values(":max", n(LETTER_MAX_ATTEMPTS));
        count_attempt(
            update,
            "code_hash = :hash AND used = :false AND attempts < :max",
        )
        .await
    }
}
