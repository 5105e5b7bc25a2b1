//! Charges the portal issues for payments without a bill: the charge (`CHARGE#{uin}`)
//! and the portal biller's record (`BILLER#{id}` / `BILLER`) in one transaction.

use super::charges::{biller_item, charge_item};
use super::*;
use crate::services::charges::StoredCharge;
use crate::services::payments::{IssueRefusal, PortalBiller, PortalChargeStore};

impl PortalChargeStore for DynamoStore {
    async fn issue_portal_charge(
        &self,
        charge: &StoredCharge,
        portal: &PortalBiller,
        now: i64,
    ) -> Result<Result<(), IssueRefusal>, StoreError> {
        let put = self.put_new(charge_item(charge)?)?;
        // Created with the first charge; a record revoked by an operator stops the
        // portal's payments without a bill.
        let biller = tx_update(
            self.update(biller_item(portal.biller_id.as_str()))
                .update_expression(
                    "SET #name = :name, created_at = if_not_exists(created_at, :now)",
                )
                .condition_expression("attribute_not_exists(revoked_at)")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", s(&portal.name))
                .expression_attribute_values(":now", n(now)),
        )?;
        match self
            .transaction()
            .transact_items(put)
            .transact_items(biller)
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                let failed = failed_conditions(e)?;
                Ok(Err(if failed.contains(&0) {
                    IssueRefusal::UinTaken
                } else {
                    IssueRefusal::BillerRevoked
                }))
            }
        }
    }
}
