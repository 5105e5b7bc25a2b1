//! Charges (`CHARGE#{uin}` / `CHARGE`), their payer index (`PAYER#{keyed hash}` /
//! `CHARGE#{uin}`) and billers (`BILLER#{id}` / `BILLER`, with their registration, found
//! by key at `BKEY#{hash}`).

use std::collections::BTreeSet;

use super::*;
use crate::domain::Uin;
use crate::services::bills::{stored_uin, BillStore, BillToSave, LookupStore, LookupsToCount};
use crate::services::charges::{
    Biller, ChargeBody, ChargeStatus, ChargeStore, ChargeWrite, ChargeWriteRefusal, StoredCharge,
};
use crate::services::payments::DroppedNotices;
use crate::services::payments::PaymentNotice;
use crate::services::{Cap, CappedAdd, StoreError};

pub(crate) fn charge_key(uin: &str) -> Item {
    key(format!("CHARGE#{uin}"), "CHARGE")
}

fn payer_item_key(payer_key: &str, uin: &str) -> Item {
    key(format!("PAYER#{payer_key}"), &format!("CHARGE#{uin}"))
}

fn biller_key_item(hash: &str) -> Item {
    key(format!("BKEY#{hash}"), "BKEY")
}

pub(crate) fn biller_item(id: &str) -> Item {
    key(format!("BILLER#{id}"), "BILLER")
}

fn status_name(status: ChargeStatus) -> &'static str {
    match status {
        ChargeStatus::Unpaid => "unpaid",
        ChargeStatus::Paid => "paid",
        ChargeStatus::Cancelled => "cancelled",
    }
}

pub(crate) fn charge_from(item: &Item) -> Result<StoredCharge, StoreError> {
    let body: ChargeBody = get_doc(item, "doc", "charge")?;
    let status = match get_s(item, "status")?.as_str() {
        "paid" => ChargeStatus::Paid,
        "cancelled" => ChargeStatus::Cancelled,
        _ => ChargeStatus::Unpaid,
    };
    Ok(StoredCharge {
        uin: stored_uin(get_s(item, "pk")?.trim_start_matches("CHARGE#"))?,
        biller_id: get_id(item, "biller_id")?,
        body,
        status,
        version: get_n(item, "version")?,
        updated_at: get_n(item, "updated_at")?,
        locked_by: get_s(item, "lock_payment").ok().map(parse_id).transpose()?,
        withdrawn: false,
        hold: match (get_s(item, "lock_account"), get_n(item, "lock_until")) {
            (Ok(account_id), Ok(until)) => {
                // An organisation's payment names it beside the member who paid.
                let owner = match get_s(item, "lock_organisation") {
                    Ok(org) => Owner::Organisation(parse_id(org)?),
                    Err(_) => Owner::Citizen(parse_id(account_id)?),
                };
                Some(crate::services::charges::BillHold { owner, until })
            }
            _ => None,
        },
    })
}

/// A charge's own item, as written.
pub(crate) fn charge_item(charge: &StoredCharge) -> Result<Item, StoreError> {
    let mut item = charge_key(charge.uin.as_str());
    item.extend([
        ("doc".into(), s(to_doc(&charge.body, "charge")?)),
        ("biller_id".into(), s(&charge.biller_id)),
        ("status".into(), s(status_name(charge.status))),
        ("version".into(), n(charge.version)),
        ("updated_at".into(), n(charge.updated_at)),
    ]);
    Ok(item)
}

impl ChargeStore for DynamoStore {
    async fn charge(&self, uin: &Uin) -> Result<Option<StoredCharge>, StoreError> {
        self.get_consistent(charge_key(uin.as_str()))
            .await?
            .as_ref()
            .map(charge_from)
            .transpose()
    }

    async fn charges_by_uin(&self, uins: &[Uin]) -> Result<Vec<StoredCharge>, StoreError> {
        self.charges_at(uins.iter().map(Uin::as_str)).await
    }

    async fn put_charge(
        &self,
        write: ChargeWrite<'_>,
    ) -> Result<Result<(), ChargeWriteRefusal>, StoreError> {
        let charge = write.charge;
        let status = status_name(charge.status);
        let uin = charge.uin.as_str();
        let item = charge_item(charge)?;
        let mut request = self
            .transaction()
            .transact_items(self.tx_put_versioned(item, write.expected)?);
        for payer in write.payer_keys {
            // What a citizen's list needs without reading the charge: category and status.
            let mut index = payer_item_key(payer, uin);
            index.extend([
                ("uin".into(), s(uin)),
                (
                    "category".into(),
                    serde_json::to_value(charge.body.category)
                        .ok()
                        .and_then(|v| v.as_str().map(s))
                        .unwrap_or_else(|| s("other")),
                ),
                ("status".into(), s(status)),
                ("updated_at".into(), n(charge.updated_at)),
            ]);
            let put = self.tx_put(index)?;
            request = request.transact_items(put);
        }
        for payer in write.dropped_payer_keys {
            let delete = self.tx_delete(payer_item_key(payer, uin))?;
            request = request.transact_items(delete);
        }
        match request.send().await {
            Ok(_) => Ok(Ok(())),
            Err(e) => match failed_conditions(e) {
                Ok(_) | Err(StoreError::Conflict) => Ok(Err(ChargeWriteRefusal::Stale)),
                Err(other) => Err(other),
            },
        }
    }

    async fn put_biller(
        &self,
        key_hash: &str,
        biller: &Biller,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut by_key = biller_key_item(key_hash);
        by_key.extend([
            ("biller_id".into(), s(&biller.id)),
            ("name".into(), s(&biller.name)),
        ]);
        let mut record = biller_item(&biller.id);
        record.extend([
            ("name".into(), s(&biller.name)),
            ("key_hash".into(), s(key_hash)),
            ("created_at".into(), n(now)),
        ]);
        if let Some(registration) = &biller.registration {
            let doc = to_doc(registration, "biller registration")?;
            record.insert("registration".into(), s(doc));
        }
        self.put_keyed_principal(by_key, record).await
    }

    async fn biller_by_key(&self, key_hash: &str) -> Result<Option<Biller>, StoreError> {
        self.get_consistent(biller_key_item(key_hash))
            .await?
            .map(|item| {
                Ok(Biller {
                    id: get_id(&item, "biller_id")?,
                    name: get_s(&item, "name")?,
                    registration: None,
                })
            })
            .transpose()
    }

    async fn biller_by_id(&self, id: &BillerId) -> Result<Option<Biller>, StoreError> {
        let Some(item) = self
            .get_consistent(biller_item(id))
            .await?
            .filter(|item| !item.contains_key("revoked_at"))
        else {
            return Ok(None);
        };
        let registration = match get_s(&item, "registration") {
            Ok(_) => Some(get_doc(&item, "registration", "biller registration")?),
            Err(_) => None,
        };
        Ok(Some(Biller {
            id: id.clone(),
            name: get_s(&item, "name")?,
            registration,
        }))
    }

    async fn revoked_billers(&self, ids: &[BillerId]) -> Result<BTreeSet<BillerId>, StoreError> {
        let keys: Vec<Item> = ids.iter().map(|id| biller_item(id)).collect();
        // Consistent: a bill must not look payable after its biller was revoked.
        let mut active = BTreeSet::new();
        for item in self
            .batch_get_consistent(
                keys,
                BatchGet {
                    projection: Some("pk, revoked_at"),
                    ..BatchGet::of("billers")
                },
            )
            .await?
        {
            if !item.contains_key("revoked_at") {
                let pk = get_s(&item, "pk")?;
                active.insert(parse_id::<BillerId>(pk.trim_start_matches("BILLER#"))?);
            }
        }
        // A biller with no record is as good as revoked.
        Ok(ids
            .iter()
            .filter(|id| !active.contains(*id))
            .cloned()
            .collect())
    }

    async fn revoke_biller(&self, id: &BillerId, now: i64) -> Result<bool, StoreError> {
        self.revoke_keyed_principal(biller_item(id), biller_key_item, now)
            .await
    }
}

/// What a record of a payment notice holds of it.
pub(crate) fn notice_attributes(notice: &PaymentNotice) -> Vec<(String, AttributeValue)> {
    let mut attributes = vec![
        ("uin".into(), s(notice.uin.as_str())),
        ("payment_id".into(), s(&notice.payment_id)),
        ("amount".into(), n(notice.amount)),
        ("paid_at".into(), n(notice.paid_at)),
        ("gateway_reference".into(), s(&notice.gateway_reference)),
        ("kind".into(), s(notice.kind())),
    ];
    if let Some(refund) = &notice.refund_id {
        attributes.push(("refund_id".into(), s(refund)));
    }
    attributes
}

impl DroppedNotices for DynamoStore {
    async fn record_dropped_notice(
        &self,
        notice: &PaymentNotice,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut item = key(
            format!("BILLER#{}", notice.biller_id),
            &format!("DROPPED#{}", notice.record_key()),
        );
        item.extend(notice_attributes(notice));
        item.insert("dropped_at".into(), n(now));
        // The same notice dropped again writes the same record.
        self.put(item).await?;
        Ok(())
    }
}

fn saved_key(account_id: &str, uin: &Uin) -> Item {
    key(
        format!("ACCOUNT#{account_id}"),
        &format!("SAVED#{}", uin.as_str()),
    )
}

impl DynamoStore {
    /// The stored charges under these UINs, whichever way the caller holds them: both
    /// the citizen's lists (typed) and a biller's batch (as written) read them so.
    async fn charges_at(
        &self,
        uins: impl Iterator<Item = &str>,
    ) -> Result<Vec<StoredCharge>, StoreError> {
        let keys: Vec<Item> = uins.map(charge_key).collect();
        // Consistent: a payment must not see a bill as unpaid after it was paid.
        self.batch_get_consistent(keys, BatchGet::of("charges"))
            .await?
            .iter()
            .map(charge_from)
            .collect()
    }
}

impl BillStore for DynamoStore {
    async fn charges_of_payer(&self, payer_key: &str) -> Result<Vec<Uin>, StoreError> {
        self.query_prefix(&format!("PAYER#{payer_key}"), "CHARGE#")
            .await?
            .iter()
            .map(|item| stored_uin(&get_s(item, "uin")?))
            .collect()
    }

    async fn charges(&self, uins: &[Uin]) -> Result<Vec<StoredCharge>, StoreError> {
        self.charges_at(uins.iter().map(Uin::as_str)).await
    }

    async fn saved_bills(&self, account_id: &AccountId) -> Result<Vec<Uin>, StoreError> {
        self.query_prefix(&format!("ACCOUNT#{account_id}"), "SAVED#")
            .await?
            .iter()
            .filter_map(|item| get_s(item, "sk").ok())
            .map(|sk| stored_uin(sk.trim_start_matches("SAVED#")))
            .collect()
    }

    async fn save_bill(&self, bill: BillToSave<'_>, cap: Cap) -> Result<CappedAdd, StoreError> {
        let mut item = saved_key(bill.account_id, bill.uin);
        item.insert("saved_at".into(), n(bill.saved_at));
        self.add_capped(bill.account_id, "SAVED", cap, vec![self.put_new(item)?])
            .await
    }

    async fn forget_bill(&self, account_id: &AccountId, uin: &Uin) -> Result<bool, StoreError> {
        let item = saved_key(account_id, uin);
        self.remove_capped(account_id, "SAVED", vec![self.delete_present(item)?])
            .await
    }
}

impl LookupStore for DynamoStore {
    async fn count_lookups(
        &self,
        account_id: &AccountId,
        lookups: LookupsToCount,
    ) -> Result<bool, StoreError> {
        // `count <= limit - n`: the lookups fit; a window's item expires with it.
        let result = self
            .update_item(key(
                format!("ACCOUNT#{account_id}"),
                &format!("LOOKUPS#{}", lookups.window_start),
            ))
            .update_expression("ADD #count :n SET #ttl = :end")
            .condition_expression("attribute_not_exists(#count) OR #count <= :room")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":n", n(lookups.n))
            .expression_attribute_values(":end", n(lookups.window_end))
            .expression_attribute_values(":room", n(lookups.limit.saturating_sub(lookups.n)))
            .send()
            .await;
        won_race(result.map_err(classify))
    }
}
