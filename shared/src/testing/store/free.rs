//! Charges the portal issues for payments without a bill.

use super::MemStore;
use crate::services::charges::StoredCharge;
use crate::services::payments::{IssueRefusal, PortalBiller, PortalChargeStore};
use crate::services::StoreError;

impl PortalChargeStore for MemStore {
    async fn issue_portal_charge(
        &self,
        charge: &StoredCharge,
        portal: &PortalBiller,
        _now: i64,
    ) -> Result<Result<(), IssueRefusal>, StoreError> {
        self.transact("issue_portal_charge", IssueRefusal::UinTaken, |state| {
            if state.charges.contains_key(charge.uin.as_str()) {
                return Err(IssueRefusal::UinTaken);
            }
            if state.revoked_billers.contains(&portal.biller_id) {
                return Err(IssueRefusal::BillerRevoked);
            }
            state
                .charges
                .insert(charge.uin.as_str().to_string(), charge.clone());
            state.billers.insert(portal.biller_id.clone());
            Ok(())
        })
        .await
    }
}
