//! Access restored at a service centre: the operator's hourly count
//! (`OPERATOR#{id}` / `RESTORATIONS#{window start}`), and the one transaction that gives
//! the account its new contact and ends its sessions, with the operator's audit item
//! (`OPERATOR#{id}` / `RESTORATION#{millis}#{account}`).

use super::*;
use crate::services::profile::{CONFIRMED, STANDARD};
use crate::services::restoration::{Restoration, RestorationRefusal, RestorationStore};

/// Where the new contact's verification token is spent in the restoration's
/// transaction: first, so that a spent token is what a refusal reports first.
const TOKEN: usize = 0;
/// Where the new login's claim sits; the release of the old one (if any) and the
/// account's update follow it.
const CLAIM: usize = 1;

impl DynamoStore {
    /// One conditional ADD on the operator's count of `what` in the window starting at
    /// `window_start`: of any number of requests at once, `limit` are counted.
    pub(super) async fn count_operator_window(
        &self,
        operator_id: &OperatorId,
        what: &str,
        window_start: i64,
        window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        let result = self
            .update_item(key(
                format!("OPERATOR#{operator_id}"),
                &format!("{what}#{window_start}"),
            ))
            .update_expression("ADD #count :one SET #ttl = :end")
            .condition_expression("attribute_not_exists(#count) OR #count < :limit")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(window_end))
            .expression_attribute_values(":limit", n(limit))
            .send()
            .await;
        won_race(result.map_err(classify))
    }
}

impl RestorationStore for DynamoStore {
    async fn count_restoration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.count_operator_window(operator_id, "RESTORATIONS", window_start, window_end, limit)
            .await
    }

    async fn account_by_snils(&self, login_key: &str) -> Result<Option<StoredAccount>, StoreError> {
        IdentityStore::find_account(self, login_key).await
    }

    async fn account_sessions(&self, account_id: &AccountId) -> Result<Vec<SessionId>, StoreError> {
        Ok(IdentityStore::list_sessions(self, account_id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    async fn token_usable(&self, token: &TokenRedemption, now: i64) -> Result<bool, StoreError> {
        IdentityStore::token_usable(self, token, now).await
    }

    async fn restore_access(
        &self,
        r: &Restoration<'_>,
        now: i64,
    ) -> Result<Result<(), RestorationRefusal>, StoreError> {
        let account = r.account;
        let mut claim = login_key(r.new_key);
        claim.extend([
            ("account_id".into(), s(&account.id)),
            ("kind".into(), s(r.kind.as_str())),
        ]);
        let claim = self.put_new(claim)?;
        // An account registered at a service centre may have had no such contact, so no
        // login to release: the account's own condition (`#contact = :old`, empty) holds
        // it then.
        let release = r
            .old_key
            .map(|old| self.tx_delete_owned(login_key(old), "account_id = :me", &account.id))
            .transpose()?;
        let attribute = r.kind.as_str();
        // The epoch moves from the one read, as a new password moves it: every session
        // stamped with the old one is over, whether or not the list below had it.
        let same_epoch = if account.credentials_epoch == 0 {
            "(attribute_not_exists(credentials_epoch) OR credentials_epoch = :epoch)"
        } else {
            "credentials_epoch = :epoch"
        };
        // The phone back as a second factor: one more factor, on the condition that it
        // was still off (a change of factors meanwhile makes the transaction fail).
        let (sms_set, sms_condition) = if r.sms_factor_back {
            (
                ", sms_factor = :true, factor_count = if_not_exists(factor_count, :zero) + :one",
                " AND sms_factor = :false",
            )
        } else {
            ("", "")
        };
        let mut update = self
            .update(account_key(&account.id))
            // Like a recovery, it starts the second factors' cooling period, and a
            // passkey added before it no longer signs in without the password.
            .update_expression(format!(
                "SET #contact = :new, credentials_epoch = :next, recovered_at = :now, \
                 factors_changed_at = :now{sms_set}"
            ))
            .condition_expression(format!(
                "attribute_exists(pk) AND {same_epoch} AND #contact = :old \
                 AND #level IN (:standard, :confirmed){sms_condition}"
            ));
        if r.sms_factor_back {
            update = update
                .expression_attribute_values(":true", AttributeValue::Bool(true))
                .expression_attribute_values(":false", AttributeValue::Bool(false))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1));
        }
        let update = tx_update(
            update
                .expression_attribute_names("#contact", attribute)
                .expression_attribute_names("#level", "level")
                .expression_attribute_values(":new", s(r.new_value))
                .expression_attribute_values(
                    ":old",
                    s(match r.kind {
                        ContactKind::Email => &account.email,
                        ContactKind::Phone => &account.phone,
                    }),
                )
                .expression_attribute_values(":epoch", n(account.credentials_epoch))
                .expression_attribute_values(":next", n(account.credentials_epoch + 1))
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":standard", s(STANDARD))
                .expression_attribute_values(":confirmed", s(CONFIRMED)),
        )?;
        let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        let mut audit = key(
            format!("OPERATOR#{}", r.operator_id),
            &format!("RESTORATION#{millis:015}#{}", account.id),
        );
        audit.extend([
            ("account_id".into(), s(&account.id)),
            ("contact_kind".into(), s(r.kind.as_str())),
            ("at".into(), n(now)),
            ("ip".into(), s(&r.event.ip)),
        ]);
        let mut request = self
            .transaction()
            .transact_items(self.token_delete(r.token, now)?)
            .transact_items(claim);
        // Where each item sits, for reading a refusal: the token, the claim, then the
        // release (when there is one), then the account.
        let releases = usize::from(release.is_some());
        if let Some(release) = release {
            request = request.transact_items(release);
        }
        request = request
            .transact_items(update)
            .transact_items(event_put(&self.table, r.event)?)
            .transact_items(self.tx_put(audit)?);
        let (now_ended, later) = r
            .end_sessions
            .split_at(r.end_sessions.len().min(SESSIONS_PER_TRANSACTION));
        for id in now_ended {
            request = request.transact_items(self.session_delete(id)?);
        }
        if let Err(e) = request.send().await {
            let failed = failed_conditions(e)?;
            if failed.contains(&TOKEN) {
                return Ok(Err(RestorationRefusal::TokenInvalid));
            }
            if failed.contains(&CLAIM) {
                return Ok(Err(RestorationRefusal::ContactTaken));
            }
            if failed
                .iter()
                .any(|i| (CLAIM + 1..=CLAIM + 1 + releases).contains(i))
            {
                return Ok(Err(RestorationRefusal::AccountChanged));
            }
            return Err(StoreError::Conflict);
        }
        // Past the transaction's room: these are over already (their epoch is gone), and
        // are only tidied away; one left behind expires with its own lifetime.
        if let Err(e) = self
            .batch_delete(later.iter().map(|id| session_key(id)).collect())
            .await
        {
            tracing::warn!(account_id = %account.id, error = %e, "ended sessions not all deleted");
        }
        Ok(Ok(()))
    }
}
