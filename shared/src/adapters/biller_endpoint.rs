//! The sandbox biller endpoint: where payment notices (квитирование) are delivered until a
//! biller's real system is connected. A delivered notice lands in the biller's inbox in the
//! table (`BILLERINBOX#{biller id}` / `{uin}#{payment id}`, and `#{refund id}` after it for
//! a refund's notice), once however often it is
//! delivered. Billers whose name contains `(нестабильный)` refuse the first two
//! deliveries of every notice, which is how the retries are shown and tested.

use time::OffsetDateTime;

use super::dynamodb::{get_s, key, n, notice_attributes, DynamoStore, PutOutcome};
use crate::services::payments::{BillerEndpoint, PaymentNotice};
use crate::services::StoreError;

/// The marker in a sandbox biller's name that makes its endpoint fail at first.
pub const UNRELIABLE_MARK: &str = "(нестабильный)";
/// Deliveries an unreliable sandbox biller refuses before it acknowledges.
pub const UNRELIABLE_REFUSALS: u32 = 2;

pub struct SandboxBillerEndpoint {
    store: DynamoStore,
}

impl SandboxBillerEndpoint {
    pub fn new(store: DynamoStore) -> Self {
        Self { store }
    }
}

impl BillerEndpoint for SandboxBillerEndpoint {
    async fn deliver(&self, notice: &PaymentNotice, attempt: u32) -> Result<(), StoreError> {
        let biller = self
            .store
            .get_eventual(key(format!("BILLER#{}", notice.biller_id), "BILLER"))
            .await?;
        let name = biller
            .as_ref()
            .and_then(|i| get_s(i, "name").ok())
            .unwrap_or_default();
        if name.contains(UNRELIABLE_MARK) && attempt <= UNRELIABLE_REFUSALS {
            return Err(StoreError::Unavailable(format!(
                "sandbox biller endpoint: refused delivery {attempt}"
            )));
        }
        let mut item = key(
            format!("BILLERINBOX#{}", notice.biller_id),
            &notice.record_key(),
        );
        item.extend(notice_attributes(notice));
        item.extend([
            ("attempts".into(), n(attempt)),
            (
                "delivered_at".into(),
                n(OffsetDateTime::now_utc().unix_timestamp()),
            ),
        ]);
        match self.store.put_if_absent(item).await? {
            // Delivered before: acknowledged again, changed nothing.
            PutOutcome::Written | PutOutcome::AlreadyThere => Ok(()),
        }
    }
}
