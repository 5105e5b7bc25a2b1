//! Paid-bill notices to billers: delivered while the biller is active, recorded for the
//! administrator once it is revoked.

use super::*;
use crate::services::charges::ChargeStore;

/// Delivers one payment notice to its biller; `Err` asks for it again.
pub async fn deliver_notice<B: BillerEndpoint>(
    endpoint: &B,
    notice: &PaymentNotice,
    attempt: u32,
) -> Result<(), AppError> {
    endpoint
        .deliver(notice, attempt)
        .await
        .map_err(|e| AppError::StoreUnavailable(format!("biller did not acknowledge: {e}")))
}

/// Where paid-bill notices a revoked biller no longer gets are kept, for the
/// administrator to settle with it by other means.
#[trait_variant::make(Send)]
pub trait DroppedNotices {
    async fn record_dropped_notice(
        &self,
        notice: &PaymentNotice,
        now: i64,
    ) -> Result<(), StoreError>;
}

/// What became of a paid-bill notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeOutcome {
    Delivered,
    /// Its biller was revoked: recorded, not delivered, not tried again.
    Dropped,
}

/// Delivers a paid-bill notice to its biller while the biller is active; a revoked
/// biller's notice is recorded and dropped, so that it is neither delivered nor retried
/// for ever. `Err` asks for the notice again.
pub async fn deliver_payment_notice<S, B>(
    store: &S,
    endpoint: &B,
    notice: &PaymentNotice,
    attempt: u32,
    now: i64,
) -> Result<NoticeOutcome, AppError>
where
    S: ChargeStore + DroppedNotices + Sync,
    B: BillerEndpoint + Sync,
{
    if store.biller_by_id(&notice.biller_id).await?.is_none() {
        store.record_dropped_notice(notice, now).await?;
        return Ok(NoticeOutcome::Dropped);
    }
    deliver_notice(endpoint, notice, attempt).await?;
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::Biller,
        channel: NoticeChannel::Biller,
    });
    Ok(NoticeOutcome::Delivered)
}
