//! Refunds (`ACCOUNT#{id}` / `REFUND#{payment id}#{refund id}`, an organisation's payment's
//! under `ORG#{id}`, in the payments index
//! `gsi1` under `REFUNDS#{payment id}`), their idempotency records
//! (`IDEMPOTENCY#{keyed hash}` / `REFUND`) and the payment's refund totals, which live in
//! the payment item (its document, and `refund_version` for the conditions).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

use super::charges::charge_key;
use super::identity::ACCOUNT_INDEX;
use super::payments::{claim_key, owner_from, payment_item};
use super::*;
use crate::domain::{RefundId, Uin};
use crate::services::payments::{
    Payment, Refund, RefundOpening, RefundRefusal, RefundSettling, RefundStore,
};
use crate::services::StoreError;

fn refund_key(refund: &Refund) -> Item {
    key(
        refund.owner().partition_key(),
        &format!("REFUND#{}#{}", refund.payment_id, refund.id),
    )
}

fn refund_key_record(key_hash: &str) -> Item {
    key(format!("IDEMPOTENCY#{key_hash}"), "REFUND")
}

fn refund_item(refund: &Refund) -> Result<Item, StoreError> {
    let mut item = refund_key(refund);
    item.extend([
        ("doc".into(), s(to_doc(refund, "refund")?)),
        // The state as the document spells it (`requested`, …), for the conditions.
        (
            "state".into(),
            s(to_doc(&refund.state, "refund state")?.trim_matches('"')),
        ),
        ("gsi1pk".into(), s(format!("REFUNDS#{}", refund.payment_id))),
        (
            "gsi1sk".into(),
            s(format!("{:012}#{}", refund.created_at, refund.id)),
        ),
    ]);
    Ok(item)
}

fn refund_from(item: &Item) -> Result<Refund, StoreError> {
    get_doc(item, "doc", "refund")
}

/// The payment with its refund totals, on the condition that it is paid and its refund
/// version is still the one before `payment`'s.
fn payment_on_version(table: &str, payment: &Payment) -> Result<TransactWriteItem, StoreError> {
    let mut item = payment_item(payment)?;
    item.insert("refund_version".into(), n(payment.refunds.version));
    let seen = payment.refunds.version.saturating_sub(1);
    let condition = if seen == 0 {
        "#status = :succeeded AND (attribute_not_exists(refund_version) OR refund_version = :seen)"
    } else {
        "#status = :succeeded AND refund_version = :seen"
    };
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition)
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":succeeded", s("succeeded"))
        .expression_attribute_values(":seen", n(seen));
    Ok(TransactWriteItem::builder()
        .put(build(put.build())?)
        .build())
}

fn sorted(items: &[Item]) -> Result<Vec<Refund>, StoreError> {
    let mut refunds = items
        .iter()
        .map(refund_from)
        .collect::<Result<Vec<_>, _>>()?;
    refunds.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
    Ok(refunds)
}

impl DynamoStore {
    /// Sends a refund's transaction: `None` when it went through, else the index of the
    /// first item whose condition failed (`usize::MAX` for a conflict with another
    /// transaction, which is to be read again like a moved payment).
    async fn refund_transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Option<usize>, StoreError> {
        let Err(e) = self
            .transaction()
            .set_transact_items(Some(items))
            .send()
            .await
        else {
            return Ok(None);
        };
        match failed_conditions(e) {
            Ok(failed) => Ok(Some(failed.first().copied().unwrap_or(usize::MAX))),
            Err(StoreError::Conflict) => Ok(Some(usize::MAX)),
            Err(other) => Err(other),
        }
    }
}

impl RefundStore for DynamoStore {
    async fn paid_by(&self, uin: &Uin) -> Result<Option<(Owner, PaymentId)>, StoreError> {
        let Some(item) = self
            .get_consistent_projected(
                charge_key(uin.as_str()),
                "paid_by, paid_account, paid_organisation",
            )
            .await?
        else {
            return Ok(None);
        };
        // A bill paid before payments recorded their account on it has no
        // `paid_account`: it cannot be refunded through the API.
        if get_s(&item, "paid_account").is_err() {
            return Ok(None);
        }
        match get_s(&item, "paid_by") {
            Ok(payment) => Ok(Some((
                owner_from(&item, "paid_account", "paid_organisation")?,
                parse_id(payment)?,
            ))),
            Err(_) => Ok(None),
        }
    }

    async fn refund_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<(Owner, PaymentId, RefundId, String)>, StoreError> {
        let found = self.get_consistent(refund_key_record(key_hash)).await?;
        // A record past its expiry is gone, whether or not DynamoDB swept it yet.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        found
            .filter(|item| get_n::<i64>(item, TTL_ATTRIBUTE).is_ok_and(|t| t > now))
            .map(|item| {
                Ok((
                    owner_from(&item, "account_id", "organisation_id")?,
                    get_id(&item, "payment_id")?,
                    get_id(&item, "refund_id")?,
                    get_s(&item, "request_hash")?,
                ))
            })
            .transpose()
    }

    async fn refunds(
        &self,
        owner: &Owner,
        payment_id: &PaymentId,
    ) -> Result<Vec<Refund>, StoreError> {
        let (pk, prefix) = (owner.partition_key(), format!("REFUND#{payment_id}#"));
        sorted(
            &self
                .query_all(|q| {
                    q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                        .expression_attribute_values(":pk", s(&pk))
                        .expression_attribute_values(":prefix", s(&prefix))
                        .consistent_read(true)
                })
                .await?,
        )
    }

    async fn payment_refunds(&self, payment_id: &PaymentId) -> Result<Vec<Refund>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(ACCOUNT_INDEX)
                    .key_condition_expression("gsi1pk = :pk")
                    .expression_attribute_values(":pk", s(format!("REFUNDS#{payment_id}")))
            })
            .await?;
        sorted(&items)
    }

    async fn open_refund(
        &self,
        opening: RefundOpening<'_>,
    ) -> Result<Result<(), RefundRefusal>, StoreError> {
        let (refund, payment) = (opening.refund, opening.payment);
        let mut record = refund_key_record(opening.key_hash);
        record.extend([
            ("account_id".into(), s(&refund.account_id)),
            ("payment_id".into(), s(&refund.payment_id)),
            ("refund_id".into(), s(&refund.id)),
            ("request_hash".into(), s(&refund.request_hash)),
            (TTL_ATTRIBUTE.into(), n(opening.key_expires_at)),
        ]);
        if let Some(org) = &refund.organisation_id {
            record.insert("organisation_id".into(), s(org));
        }
        let items = vec![
            claim_key(&self.table, record, refund.created_at)?,
            self.put_new(refund_item(refund)?)?,
            payment_on_version(&self.table, payment)?,
        ];
        // The first item is the key's record, the third the payment.
        Ok(match self.refund_transaction(items).await? {
            None => Ok(()),
            Some(0) => Err(RefundRefusal::KeyTaken),
            Some(_) => Err(RefundRefusal::PaymentChanged),
        })
    }

    async fn settle_refund(
        &self,
        refund: &Refund,
        payment: &Payment,
    ) -> Result<RefundSettling, StoreError> {
        let settled = TransactWriteItem::builder()
            .put(build(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(refund_item(refund)?))
                    .condition_expression("#state = :requested")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":requested", s("requested"))
                    .build(),
            )?)
            .build();
        let items = vec![settled, payment_on_version(&self.table, payment)?];
        Ok(match self.refund_transaction(items).await? {
            None => RefundSettling::Settled,
            Some(0) => RefundSettling::AlreadySettled,
            Some(_) => RefundSettling::PaymentChanged,
        })
    }
}
