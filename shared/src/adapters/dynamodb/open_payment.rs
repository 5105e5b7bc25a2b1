//! An open payment's owner, found by the payment's id alone (as a bank's notification
//! names it): from its reconciliation entry, `RECONCILE#{shard of the id}` /
//! `{created}#{account id}#{payment id}`, near the time the id holds (a UUID v7 begins
//! with its creation time in milliseconds; the payment's `created_at` is its request's
//! time, a little before). A payment no longer open has no entry: there is nothing left
//! to settle.

use super::payments::reconcile_pk;
use super::*;
use crate::services::payments::RECONCILE_SHARDS;
use crate::services::runs::Shard;

/// How long before its id's time a payment's request may have started.
const CREATED_BEFORE_ID_SECS: u64 = 60;

/// The creation time (epoch seconds) a UUID v7 id holds: `xxxxxxxx-xxxx-7…`.
fn id_seconds(id: &PaymentId) -> Option<u64> {
    let text = id.as_str();
    let hex = format!("{}{}", text.get(..8)?, text.get(9..13)?);
    u64::from_str_radix(&hex, 16).ok().map(|ms| ms / 1000)
}

impl DynamoStore {
    /// The owner of the open payment `id` (a citizen, or the organisation it was made
    /// for); `None` if it is not open (or not ours).
    pub async fn open_payment_owner(&self, id: &PaymentId) -> Result<Option<Owner>, StoreError> {
        let Some(seconds) = id_seconds(id) else {
            return Ok(None);
        };
        let pk = reconcile_pk(Shard::of(id.as_str(), RECONCILE_SHARDS));
        let from = format!("{:012}#", seconds.saturating_sub(CREATED_BEFORE_ID_SECS));
        let to = format!("{seconds:012}$");
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":from", s(&from))
                    .expression_attribute_values(":to", s(&to))
            })
            .await?;
        for item in &items {
            if get_s(item, "payment_id")? == id.as_str() {
                return super::payments::owner_from(item, "account_id", "organisation_id")
                    .map(Some);
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v7_id_holds_its_second() {
        let id = PaymentId::parse("0190d6a2-1b2c-7d3e-8f40-1234567890ab").unwrap();
        assert_eq!(id_seconds(&id), Some(0x0190_d6a2_1b2c / 1000));
    }
}
