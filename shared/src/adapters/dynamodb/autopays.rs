//! Autopays (`ACCOUNT#{id}` / `AUTOPAY#{autopay id}`), their schedule index in shards
//! (`AUTOPAYS#monthly#{day}#{shard}` or `AUTOPAYS#weekly#{weekday}#{shard}` /
//! `{account id}#{autopay id}`, the shard a hash of the autopay id; autopays written
//! before sharding sit unsharded in `AUTOPAYS#monthly#{day}` until their next change
//! moves them) and the markers of bills an autopay skipped and told about
//! (`ACCOUNT#{id}` / `AUTOPAYSKIP#{autopay id}#{uin}`).

use super::payments::doc_item;
use super::*;
use crate::services::autopays::{
    Autopay, AutopayStore, SchedulePage, SchedulePageOf, Shard, SkippedBill, Trigger,
    SCHEDULE_SHARDS,
};
use crate::services::{Cap, CappedAdd, StoreError};

/// How long a skip notice is remembered.
const SKIP_MEMORY_SECS: i64 = 400 * 24 * 3600;

fn autopay_key(account_id: &str, id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), &format!("AUTOPAY#{id}"))
}

/// The schedule partition of a trigger's shard; none for new-bill autopays.
fn schedule_pk(trigger: &Trigger, shard: Shard) -> Option<String> {
    let day = match trigger {
        Trigger::NewBill => return None,
        Trigger::Monthly { day } => format!("AUTOPAYS#monthly#{day}"),
        Trigger::Weekly { weekday } => format!("AUTOPAYS#weekly#{weekday}"),
    };
    Some(match shard {
        Shard::Unsharded => day,
        Shard::Of(n) => format!("{day}#{n}"),
    })
}

fn schedule_key_in(trigger: &Trigger, shard: Shard, autopay: &Autopay) -> Option<Item> {
    schedule_pk(trigger, shard).map(|pk| key(pk, &format!("{}#{}", autopay.account_id, autopay.id)))
}

/// Where an autopay is filed now.
fn schedule_key(trigger: &Trigger, autopay: &Autopay) -> Option<Item> {
    schedule_key_in(trigger, Shard::of(&autopay.id, SCHEDULE_SHARDS), autopay)
}

/// Where it was filed before sharding: deleted on every write, which migrates it.
fn unsharded_key(trigger: &Trigger, autopay: &Autopay) -> Option<Item> {
    schedule_key_in(trigger, Shard::Unsharded, autopay)
}

impl AutopayStore for DynamoStore {
    async fn create_autopay(&self, autopay: &Autopay, cap: Cap) -> Result<CappedAdd, StoreError> {
        let item = doc_item(
            format!("ACCOUNT#{}", autopay.account_id),
            &format!("AUTOPAY#{}", autopay.id),
            autopay,
        )?;
        let mut items = vec![self.put_new(item)?];
        if let Some(mut index) = schedule_key(&autopay.trigger, autopay) {
            index.extend([
                ("account_id".into(), s(&autopay.account_id)),
                ("autopay_id".into(), s(&autopay.id)),
            ]);
            items.push(self.tx_put(index)?);
        }
        self.add_capped(&autopay.account_id, "AUTOPAY", cap, items)
            .await
    }

    async fn autopays(&self, account_id: &AccountId) -> Result<Vec<Autopay>, StoreError> {
        self.account_docs(account_id, "AUTOPAY#").await
    }

    async fn put_autopay(
        &self,
        autopay: &Autopay,
        previous: Option<&Trigger>,
    ) -> Result<(), StoreError> {
        let doc = to_doc(autopay, "autopay")?;
        let mut item = autopay_key(&autopay.account_id, &autopay.id);
        item.insert("doc".into(), s(doc));
        let mut request = self.transaction().transact_items(self.tx_put(item)?);
        let new_index = schedule_key(&autopay.trigger, autopay);
        let old_index = previous.and_then(|t| schedule_key(t, autopay));
        let olds = [
            old_index.filter(|old| Some(old) != new_index.as_ref()),
            previous.and_then(|t| unsharded_key(t, autopay)),
        ];
        for old in olds.into_iter().flatten() {
            request = request.transact_items(self.tx_delete(old)?);
        }
        if let Some(mut index) = new_index {
            index.extend([
                ("account_id".into(), s(&autopay.account_id)),
                ("autopay_id".into(), s(&autopay.id)),
            ]);
            request = request.transact_items(self.tx_put(index)?);
        }
        request.send().await.map_err(classify_transaction)?;
        Ok(())
    }

    async fn delete_autopay(&self, autopay: &Autopay) -> Result<(), StoreError> {
        let mut items = vec![self.delete_present(autopay_key(&autopay.account_id, &autopay.id))?];
        let indexes = [
            schedule_key(&autopay.trigger, autopay),
            unsharded_key(&autopay.trigger, autopay),
        ];
        for index in indexes.into_iter().flatten() {
            items.push(self.tx_delete(index)?);
        }
        // Gone already (a parallel delete) is the same outcome.
        self.remove_capped(&autopay.account_id, "AUTOPAY", items)
            .await?;
        Ok(())
    }

    async fn scheduled_autopays(
        &self,
        page: &SchedulePage,
        limit: usize,
    ) -> Result<SchedulePageOf, StoreError> {
        let Some(pk) = schedule_pk(&page.trigger, page.shard) else {
            return Ok(SchedulePageOf::default());
        };
        let (items, next) = self
            .query_page(&pk, page.after.as_deref(), limit, |q| {
                q.key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(&pk))
            })
            .await?;
        let entries = items
            .iter()
            .map(|item| Ok((get_id(item, "account_id")?, get_id(item, "autopay_id")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(SchedulePageOf { entries, next })
    }

    async fn claim_skip_notice(&self, skip: SkippedBill<'_>, now: i64) -> Result<bool, StoreError> {
        let mut item = key(
            format!("ACCOUNT#{}", skip.account_id),
            &format!("AUTOPAYSKIP#{}#{}", skip.autopay_id, skip.uin.as_str()),
        );
        item.insert(TTL_ATTRIBUTE.into(), n(now + SKIP_MEMORY_SECS));
        Ok(self.put_if_absent(item).await?.written())
    }
}
