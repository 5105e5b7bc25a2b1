//! Passkeys as items: the factor in the account's partition (`FACTOR#{id}`, kind
//! `passkey`), the index of credential ids (`PASSKEY#{credential id}`), the ceremonies
//! waiting for an authenticator (`CEREMONY#{keyed hash of the token}`), and the account's
//! user handle.

use super::*;
use crate::services::identity::{CeremonyPurpose, PasskeyCeremony, PasskeyOwner, StoredPasskey};

const FACTOR_PREFIX: &str = "FACTOR#";
const PASSKEY_KIND: &str = "passkey";

fn factor_key(account_id: &AccountId, id: &str) -> Item {
    key(
        format!("ACCOUNT#{account_id}"),
        &format!("{FACTOR_PREFIX}{id}"),
    )
}

pub(super) fn credential_key(credential_id: &str) -> Item {
    key(format!("PASSKEY#{credential_id}"), "PASSKEY")
}

fn ceremony_key(key_hash: &str) -> Item {
    key(format!("CEREMONY#{key_hash}"), "CEREMONY")
}

/// Whether a `FACTOR#` item is a passkey.
pub(super) fn is_passkey(item: &Item) -> bool {
    get_s(item, "kind").is_ok_and(|k| k == PASSKEY_KIND)
}

pub(super) fn passkey_from(item: &Item) -> Result<StoredPasskey, StoreError> {
    let sk = get_s(item, "sk")?;
    Ok(StoredPasskey {
        id: parse_id(sk.trim_start_matches(FACTOR_PREFIX))?,
        name: get_s(item, "name")?,
        credential: get_s(item, "credential")?,
        credential_id: get_s(item, "credential_id")?,
        sign_count: get_n(item, "sign_count").unwrap_or(0),
        created_at: get_n(item, "created_at")?,
        last_used_at: get_n(item, "last_used_at").ok(),
    })
}

fn purpose_from(raw: &str) -> Result<CeremonyPurpose, StoreError> {
    match raw {
        "registration" => Ok(CeremonyPurpose::Registration),
        "login" => Ok(CeremonyPurpose::Login),
        other => Err(StoreError::Corrupt(format!("ceremony purpose {other}"))),
    }
}

impl DynamoStore {
    /// [`IdentityStore::passkey_user_handle`]: set once, with `if_not_exists`, so two
    /// first registrations at once agree on it.
    pub(super) async fn user_handle(&self, account_id: &AccountId) -> Result<String, StoreError> {
        let out = self
            .update_item(account_key(account_id))
            .update_expression("SET passkey_user_handle = if_not_exists(passkey_user_handle, :h)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":h", s(uuid::Uuid::new_v4().to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(classify)?;
        get_s(&out.attributes.unwrap_or_default(), "passkey_user_handle")
    }

    pub(super) async fn put_ceremony(&self, c: &PasskeyCeremony) -> Result<(), StoreError> {
        let mut item = ceremony_key(&c.key);
        item.extend([
            ("purpose".into(), s(c.purpose.as_str())),
            ("state".into(), s(&c.state)),
            (TTL_ATTRIBUTE.into(), n(c.expires_at)),
        ]);
        if let Some(account_id) = &c.account_id {
            item.insert("account_id".into(), s(account_id));
        }
        match self.put_if_absent(item).await? {
            PutOutcome::Written => Ok(()),
            PutOutcome::AlreadyThere => Err(StoreError::Conflict),
        }
    }

    pub(super) async fn ceremony(
        &self,
        key_hash: &str,
    ) -> Result<Option<PasskeyCeremony>, StoreError> {
        self.get_consistent(ceremony_key(key_hash))
            .await?
            .map(|item| {
                Ok(PasskeyCeremony {
                    key: key_hash.to_string(),
                    purpose: purpose_from(&get_s(&item, "purpose")?)?,
                    account_id: get_id(&item, "account_id").ok(),
                    state: get_s(&item, "state")?,
                    expires_at: get_n(&item, TTL_ATTRIBUTE)?,
                })
            })
            .transpose()
    }

    pub(super) async fn passkey_owner(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyOwner>, StoreError> {
        self.get_consistent(credential_key(credential_id))
            .await?
            .map(|item| {
                Ok(PasskeyOwner {
                    account_id: get_id(&item, "account_id")?,
                    factor_id: get_id(&item, "factor_id")?,
                    user_handle: get_s(&item, "user_handle")?,
                })
            })
            .transpose()
    }

    /// [`IdentityStore::count_client_attempt`].
    pub(super) async fn count_client(
        &self,
        client: ClientWindow<'_>,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let counted = self
            .update_item(client_failures_key(client.key, client.start))
            .update_expression("ADD #count :one SET #ttl = :end")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(client.kept_until()))
            .expression_attribute_values(":limit", n(limit))
            .send()
            .await
            .map_err(classify);
        match counted {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Spends a ceremony in a transaction: it must still be there, for `purpose` (and the
    /// account, for a registration), and live.
    pub(super) fn ceremony_delete(
        &self,
        key_hash: &str,
        purpose: CeremonyPurpose,
        account_id: Option<&AccountId>,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut condition = "purpose = :purpose AND #ttl > :now".to_string();
        let mut delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(ceremony_key(key_hash)))
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":purpose", s(purpose.as_str()))
            .expression_attribute_values(":now", n(now));
        if let Some(account_id) = account_id {
            condition.push_str(" AND account_id = :account");
            delete = delete.expression_attribute_values(":account", s(account_id));
        }
        let delete = build(delete.condition_expression(condition).build())?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// The items of a passkey's registration, each with what its failed condition means:
    /// the factor, the claim of its credential id, and the ceremony spent.
    pub(super) fn passkey_claim(
        &self,
        account_id: &AccountId,
        passkey: &StoredPasskey,
        user_handle: &str,
        ceremony: &str,
        now: i64,
    ) -> Result<Vec<(TransactWriteItem, FactorRefusal)>, StoreError> {
        let mut factor = factor_key(account_id, &passkey.id);
        factor.extend([
            ("kind".into(), s(PASSKEY_KIND)),
            // A factor that completes a login, as a confirmed app: renamed the same way.
            ("confirmed".into(), b(true)),
            ("name".into(), s(&passkey.name)),
            ("credential".into(), s(&passkey.credential)),
            ("credential_id".into(), s(&passkey.credential_id)),
            ("sign_count".into(), n(passkey.sign_count)),
            ("created_at".into(), n(passkey.created_at)),
        ]);
        let mut index = credential_key(&passkey.credential_id);
        index.extend([
            ("account_id".into(), s(account_id)),
            ("factor_id".into(), s(&passkey.id)),
            ("user_handle".into(), s(user_handle)),
        ]);
        Ok(vec![
            (self.put_new(factor)?, FactorRefusal::Missing),
            (self.put_new(index)?, FactorRefusal::Taken),
            (
                self.ceremony_delete(
                    ceremony,
                    CeremonyPurpose::Registration,
                    Some(account_id),
                    now,
                )?,
                FactorRefusal::Ceremony,
            ),
        ])
    }

    /// The items of a passkey's removal: the factor and its credential id's claim.
    pub(super) fn passkey_release(
        &self,
        account_id: &AccountId,
        id: &str,
        credential_id: &str,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let factor = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(factor_key(account_id, id)))
                .condition_expression("kind = :kind")
                .expression_attribute_values(":kind", s(PASSKEY_KIND))
                .build(),
        )?;
        Ok(vec![
            TransactWriteItem::builder().delete(factor).build(),
            self.tx_delete_owned(
                credential_key(credential_id),
                "account_id = :me",
                account_id,
            )?,
        ])
    }

    /// The update of a passkey's counter and credential after an assertion, for the
    /// session's transaction: on the condition that the counter is still the one read, so
    /// that of two logins racing with one authenticator's answers only one passes.
    pub(super) fn passkey_use_update(
        &self,
        account_id: &AccountId,
        id: &str,
        sign_count_before: u32,
        sign_count: u32,
        credential: &str,
        now: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        tx_update(
            self.update(factor_key(account_id, id))
                .update_expression(
                    "SET credential = :credential, sign_count = :count, last_used_at = :now",
                )
                .condition_expression("kind = :kind AND sign_count = :before")
                .expression_attribute_values(":credential", s(credential))
                .expression_attribute_values(":count", n(sign_count))
                .expression_attribute_values(":before", n(sign_count_before))
                .expression_attribute_values(":kind", s(PASSKEY_KIND))
                .expression_attribute_values(":now", n(now)),
        )
    }
}
