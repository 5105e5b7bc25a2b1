//! Refunds of payments: the key records, the refunds and the payments' refund totals.

use super::MemStore;
use crate::domain::{Owner, PaymentId, RefundId, Uin};
use crate::services::payments::{
    Payment, Refund, RefundOpening, RefundRefusal, RefundSettling, RefundState, RefundStore,
};
use crate::services::StoreError;

/// Whether the stored payment's refunds are still at the version `next` was counted on.
fn at_version(stored: Option<&Payment>, next: &Payment) -> bool {
    stored.is_some_and(|p| p.refunds.version + 1 == next.refunds.version)
}

impl MemStore {
    /// The refunds of a payment that `keep` picks, oldest first, as the operation `op`.
    async fn refunds_where(
        &self,
        op: &'static str,
        payment_id: &PaymentId,
        keep: impl Fn(&Refund) -> bool,
    ) -> Result<Vec<Refund>, StoreError> {
        self.read(op, |state| {
            let mut found: Vec<Refund> = state
                .refunds
                .values()
                .filter(|r| r.payment_id == *payment_id && keep(r))
                .cloned()
                .collect();
            found.sort_by_key(|r| r.created_at);
            found
        })
        .await
    }
}

impl RefundStore for MemStore {
    async fn paid_by(&self, uin: &Uin) -> Result<Option<(Owner, PaymentId)>, StoreError> {
        self.read("paid_by", |state| {
            let id = state.paid_by.get(uin.as_str())?;
            state.payment(id).map(|p| (p.owner(), id.clone()))
        })
        .await
    }

    async fn refunds(
        &self,
        owner: &Owner,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError> {
        let of_owner = |r: &Refund| r.owner() == *owner;
        self.refunds_where("refunds", payment_id, of_owner).await
    }

    async fn payment_refunds(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError> {
        self.refunds_where("payment_refunds", payment_id, |_| true)
            .await
    }

    async fn refund_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<(Owner, PaymentId, RefundId, String)>, StoreError> {
        self.read("refund_key", |state| {
            state.refund_keys.get(key_hash).cloned()
        })
        .await
    }

    async fn open_refund(
        &self,
        opening: RefundOpening<'_>,
    ) -> Result<Result<(), RefundRefusal>, StoreError> {
        let (refund, payment, key_hash) = (opening.refund, opening.payment, opening.key_hash);
        self.transact("open_refund", RefundRefusal::PaymentChanged, |state| {
            if state.refund_keys.contains_key(key_hash) {
                return Err(RefundRefusal::KeyTaken);
            }
            let key = (payment.owner(), payment.id.clone());
            if !at_version(state.payments.get(&key), payment) {
                return Err(RefundRefusal::PaymentChanged);
            }
            state.refund_keys.insert(
                key_hash.to_string(),
                (
                    refund.owner(),
                    refund.payment_id.clone(),
                    refund.id.clone(),
                    refund.request_hash.clone(),
                ),
            );
            state.refunds.insert(refund.id.clone(), refund.clone());
            state.payments.insert(key, payment.clone());
            Ok(())
        })
        .await
    }

    async fn settle_refund(
        &self,
        refund: &Refund,
        payment: &Payment,
    ) -> Result<RefundSettling, StoreError> {
        let done = self
            .transact("settle_refund", RefundSettling::PaymentChanged, |state| {
                let requested = state
                    .refunds
                    .get(&refund.id)
                    .is_some_and(|r| r.state == RefundState::Requested);
                if !requested {
                    return Err(RefundSettling::AlreadySettled);
                }
                let key = (payment.owner(), payment.id.clone());
                if !at_version(state.payments.get(&key), payment) {
                    return Err(RefundSettling::PaymentChanged);
                }
                state.refunds.insert(refund.id.clone(), refund.clone());
                state.payments.insert(key, payment.clone());
                Ok(())
            })
            .await?;
        Ok(match done {
            Ok(()) => RefundSettling::Settled,
            Err(refusal) => refusal,
        })
    }
}
