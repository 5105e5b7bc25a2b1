//! Registration at a service centre: the operator's hourly count
//! (`OPERATOR#{id}` / `REGISTRATIONS#{window start}`), and the one transaction that
//! writes the account, its first security event and the operator's audit item
//! (`OPERATOR#{id}` / `REGISTRATION#{at}#{account}`).

use super::*;
use crate::domain::OperatorId;
use crate::services::profile::SIMPLIFIED;
use crate::services::restoration::registration::{DeskAccount, DeskRegistrationStore};

/// How the operator's confirmation of a desk registration is recorded.
const CONFIRMED_VIA: &str = "in_person_registration";

fn audit_key(operator_id: &OperatorId, at: i64, account_id: &AccountId) -> Item {
    key(
        format!("OPERATOR#{operator_id}"),
        &format!("REGISTRATION#{at:010}#{account_id}"),
    )
}

impl DeskRegistrationStore for DynamoStore {
    async fn count_registration(
        &self,
        operator_id: &OperatorId,
        window_start: i64,
        window_end: i64,
        limit: u32,
    ) -> Result<bool, StoreError> {
        self.count_operator_window(
            operator_id,
            "REGISTRATIONS",
            window_start,
            window_end,
            limit,
        )
        .await
    }

    async fn create_desk_account(
        &self,
        account: &DeskAccount<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut item = account_key(account.id);
        item.extend([
            ("last_name".into(), s(account.last_name)),
            ("first_name".into(), s(account.first_name)),
            // No contact yet: the citizen adds one after the first login.
            ("email".into(), s("")),
            ("phone".into(), s("")),
            ("password_hash".into(), s(account.password_hash)),
            ("password_change_due".into(), n(account.password_change_due)),
            ("security_question".into(), s("")),
            ("security_answer_hash".into(), s("")),
            ("level".into(), s(SIMPLIFIED)),
            ("created_at".into(), n(now)),
            ("credentials_epoch".into(), n(0)),
            // Without a phone there is no SMS factor.
            ("sms_factor".into(), b(false)),
            ("factor_count".into(), n(0)),
            ("confirmed_at".into(), n(now)),
            ("confirmed_via".into(), s(CONFIRMED_VIA)),
            ("confirmed_by".into(), s(account.operator_id)),
        ]);
        if let Some(middle) = account.middle_name {
            item.insert("middle_name".into(), s(middle));
        }
        let mut audit = audit_key(account.operator_id, now, account.id);
        audit.extend([
            ("account_id".into(), s(account.id)),
            ("at".into(), n(now)),
            ("ip".into(), s(&account.event.ip)),
        ]);
        let request = self
            .transaction()
            .transact_items(self.put_new(item)?)
            .transact_items(event_put(&self.table, account.event)?)
            .transact_items(self.tx_put(audit)?);
        match request.send().await {
            Ok(_) => Ok(()),
            // A fresh id is never there already: anything refused is a conflict.
            Err(e) => Err(failed_conditions(e).map_or_else(|e| e, |_| StoreError::Conflict)),
        }
    }

    async fn withdraw_desk_account(
        &self,
        account_id: &AccountId,
        operator_id: &OperatorId,
        registered_at: i64,
    ) -> Result<(), StoreError> {
        self.transaction()
            .transact_items(self.tx_delete(account_key(account_id))?)
            .transact_items(self.tx_delete(audit_key(operator_id, registered_at, account_id))?)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed_conditions(e).map_or_else(|e| e, |_| StoreError::Conflict))
    }
}
