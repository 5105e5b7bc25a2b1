//! Children (`CHILD#{id}` / `CHILD`, linked from `ACCOUNT#{id}` / `CHILD#{id}`) and
//! vehicles (`ACCOUNT#{id}` / `VEHICLE#{id}`).

use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem, Update,
};

use super::identity::failed_conditions;
use super::*;
use crate::services::household::{
    Child, HouseholdStore, LinkRefusal, StoredChild, StoredVehicle, Vehicle,
};
use crate::services::StoreError;

const CHILD_PREFIX: &str = "CHILD#";
const VEHICLE_PREFIX: &str = "VEHICLE#";

fn child_key(id: &str) -> Item {
    key(format!("{CHILD_PREFIX}{id}"), "CHILD")
}

fn link_key(account_id: &str, id: &str) -> Item {
    key(
        format!("ACCOUNT#{account_id}"),
        &format!("{CHILD_PREFIX}{id}"),
    )
}

fn vehicle_key(account_id: &str, id: &str) -> Item {
    key(
        format!("ACCOUNT#{account_id}"),
        &format!("{VEHICLE_PREFIX}{id}"),
    )
}

fn child_from(item: &Item) -> Result<StoredChild, StoreError> {
    let pk = get_s(item, "pk")?;
    let child: Child = serde_json::from_str(&get_s(item, "doc")?)
        .map_err(|e| StoreError::Rejected(format!("child record: {e}")))?;
    let parents = match item.get("parents") {
        Some(AttributeValue::Ss(p)) => p.clone(),
        _ => Vec::new(),
    };
    Ok(StoredChild {
        id: pk.trim_start_matches(CHILD_PREFIX).to_string(),
        child,
        version: get_n(item, "version")?,
        parents,
    })
}

fn vehicle_from(item: &Item) -> Result<StoredVehicle, StoreError> {
    let sk = get_s(item, "sk")?;
    Ok(StoredVehicle {
        id: sk.trim_start_matches(VEHICLE_PREFIX).to_string(),
        vehicle: Vehicle {
            sts: get_s(item, "sts")?,
            plate: get_s(item, "plate")?,
            title: get_s(item, "title").ok(),
        },
        created_at: get_n(item, "created_at")?,
    })
}

fn doc(child: &Child) -> Result<AttributeValue, StoreError> {
    serde_json::to_string(child)
        .map(s)
        .map_err(|e| StoreError::Rejected(format!("child record: {e}")))
}

impl DynamoStore {
    /// Sort keys under the account's partition that start with `prefix`.
    async fn account_items(&self, account_id: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(format!("ACCOUNT#{account_id}")))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            items.extend(page.items().iter().cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

impl HouseholdStore for DynamoStore {
    async fn child(&self, id: &str) -> Result<Option<StoredChild>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(child_key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(classify)?;
        out.item.as_ref().map(child_from).transpose()
    }

    async fn child_links(&self, account_id: &str) -> Result<Vec<String>, StoreError> {
        self.account_items(account_id, CHILD_PREFIX)
            .await?
            .iter()
            .map(|item| {
                Ok(get_s(item, "sk")?
                    .trim_start_matches(CHILD_PREFIX)
                    .to_string())
            })
            .collect()
    }

    async fn children(&self, ids: &[String]) -> Result<Vec<StoredChild>, StoreError> {
        let mut request = KeysAndAttributes::builder().consistent_read(true);
        for id in ids {
            request = request.keys(child_key(id));
        }
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, build(request.build())?)
            .send()
            .await
            .map_err(classify)?;
        if out
            .unprocessed_keys
            .as_ref()
            .is_some_and(|u| u.values().any(|k| !k.keys().is_empty()))
        {
            return Err(StoreError::Unavailable("children not read in full".into()));
        }
        let mut children: Vec<StoredChild> = out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default()
            .iter()
            .map(child_from)
            .collect::<Result<_, _>>()?;
        // In the order the links were listed, so a page looks the same every time.
        children.sort_by_key(|c| ids.iter().position(|id| *id == c.id));
        Ok(children)
    }

    async fn link_child(
        &self,
        account_id: &str,
        id: &str,
        child: &Child,
        existing: Option<u64>,
        now: i64,
    ) -> Result<Result<(), LinkRefusal>, StoreError> {
        let record = match existing {
            None => {
                let mut item = child_key(id);
                item.extend([
                    ("doc".into(), doc(child)?),
                    ("version".into(), n(1)),
                    (
                        "parents".into(),
                        AttributeValue::Ss(vec![account_id.to_string()]),
                    ),
                ]);
                TransactWriteItem::builder()
                    .put(build(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .condition_expression("attribute_not_exists(pk)")
                            .build(),
                    )?)
                    .build()
            }
            Some(version) => TransactWriteItem::builder()
                .update(build(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(child_key(id)))
                        .update_expression("ADD parents :me")
                        .condition_expression("version = :v")
                        .expression_attribute_values(
                            ":me",
                            AttributeValue::Ss(vec![account_id.to_string()]),
                        )
                        .expression_attribute_values(":v", n(version))
                        .build(),
                )?)
                .build(),
        };
        let mut link = link_key(account_id, id);
        link.insert("added_at".into(), n(now));
        let link = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(link))
                .condition_expression("attribute_not_exists(pk)")
                .build(),
        )?;
        let result = self
            .client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(record)
            .transact_items(TransactWriteItem::builder().put(link).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => {
                // A collision with the other parent's transaction is a lost race too.
                let failed = match failed_conditions(e) {
                    Ok(failed) => failed,
                    Err(StoreError::Conflict) => Vec::new(),
                    Err(other) => return Err(other),
                };
                if failed.contains(&1) {
                    Ok(Err(LinkRefusal::AlreadyLinked))
                } else {
                    Ok(Err(LinkRefusal::Stale))
                }
            }
        }
    }

    async fn update_child(
        &self,
        account_id: &str,
        id: &str,
        child: &Child,
        expected_version: u64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(child_key(id)))
            .update_expression("SET doc = :doc, version = :next")
            .condition_expression("version = :expected AND contains(parents, :me)")
            .expression_attribute_values(":doc", doc(child)?)
            .expression_attribute_values(":next", n(expected_version + 1))
            .expression_attribute_values(":expected", n(expected_version))
            .expression_attribute_values(":me", s(account_id))
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn unlink_child(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let unlink = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(link_key(account_id, id)))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let leave = build(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(child_key(id)))
                .update_expression("DELETE parents :me")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(
                    ":me",
                    AttributeValue::Ss(vec![account_id.to_string()]),
                )
                .build(),
        )?;
        let result = self
            .client
            .transact_write_items()
            .client_request_token(idempotency_token())
            .transact_items(TransactWriteItem::builder().delete(unlink).build())
            .transact_items(TransactWriteItem::builder().update(leave).build())
            .send()
            .await;
        if let Err(e) = result {
            failed_conditions(e)?;
            return Ok(false);
        }
        // The last parent takes the record along; an empty set is no attribute at all.
        let orphan = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(child_key(id)))
            .condition_expression("attribute_not_exists(parents)")
            .send()
            .await;
        match orphan.map_err(classify) {
            Ok(_) | Err(StoreError::Conflict) => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn vehicles(&self, account_id: &str) -> Result<Vec<StoredVehicle>, StoreError> {
        let mut vehicles: Vec<StoredVehicle> = self
            .account_items(account_id, VEHICLE_PREFIX)
            .await?
            .iter()
            .map(vehicle_from)
            .collect::<Result<_, _>>()?;
        vehicles.sort_by_key(|v| (v.created_at, v.id.clone()));
        Ok(vehicles)
    }

    async fn put_vehicle(
        &self,
        account_id: &str,
        vehicle: &StoredVehicle,
    ) -> Result<bool, StoreError> {
        let mut item = vehicle_key(account_id, &vehicle.id);
        item.extend([
            ("sts".into(), s(&vehicle.vehicle.sts)),
            ("plate".into(), s(&vehicle.vehicle.plate)),
            ("created_at".into(), n(vehicle.created_at)),
        ]);
        if let Some(title) = &vehicle.vehicle.title {
            item.insert("title".into(), s(title));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn update_vehicle(
        &self,
        account_id: &str,
        id: &str,
        vehicle: &Vehicle,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(vehicle_key(account_id, id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":plate", s(&vehicle.plate));
        update = match &vehicle.title {
            Some(title) => update
                .update_expression("SET plate = :plate, title = :title")
                .expression_attribute_values(":title", s(title)),
            None => update.update_expression("SET plate = :plate REMOVE title"),
        };
        match update.send().await.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete_vehicle(&self, account_id: &str, id: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(vehicle_key(account_id, id)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match result.map_err(classify) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
