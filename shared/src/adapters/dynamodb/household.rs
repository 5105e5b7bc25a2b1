//! Children (`CHILD#{id}` / `CHILD`, linked from `ACCOUNT#{id}` / `CHILD#{id}`, counted
//! in `ACCOUNT#{id}` / `CHILDREN`) and vehicles (`ACCOUNT#{id}` / `VEHICLE#{id}`).

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem};

use super::*;
use crate::services::household::{
    Child, ChildLink, ChildUpdate, HouseholdStore, LinkDecision, LinkRefusal, LinkState,
    LinkVerdict, SnilsCheck, SnilsSettlement, SnilsVerdict, StoredChild, StoredVehicle, Vehicle,
    MAX_CHILDREN,
};
use crate::services::StoreError;

const CHILD_PREFIX: &str = "CHILD#";
/// Times adding a child is tried when its transaction collides with another add.
const LINK_CONFLICT_RETRIES: usize = 8;
const VEHICLE_PREFIX: &str = "VEHICLE#";

fn child_key(id: &str) -> Item {
    key(format!("{CHILD_PREFIX}{id}"), "CHILD")
}

/// The key of an account's own item whose sort key is `prefix` and an id: a child
/// link or a vehicle.
fn account_item_key(account_id: &str, prefix: &str, id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), &format!("{prefix}{id}"))
}

fn link_key(account_id: &str, id: &str) -> Item {
    account_item_key(account_id, CHILD_PREFIX, id)
}

/// The account's count of child links, kept in the transactions that add and remove
/// them, so that the cap holds however many adds run at once.
fn counter_key(account_id: &str) -> Item {
    key(format!("ACCOUNT#{account_id}"), "CHILDREN")
}

fn vehicle_key(account_id: &str, id: &str) -> Item {
    account_item_key(account_id, VEHICLE_PREFIX, id)
}

fn child_from(item: &Item) -> Result<StoredChild, StoreError> {
    let pk = get_s(item, "pk")?;
    let child: Child = get_doc(item, "doc", "child record")?;
    let set = |name: &str| match item.get(name) {
        Some(AttributeValue::Ss(p)) => p.iter().map(|a| parse_id(a.as_str())).collect(),
        _ => Ok(Vec::new()),
    };
    let snils = match (
        get_s(item, "snils_state").ok().as_deref(),
        get_s(item, "snils_submission"),
    ) {
        (Some("verified"), _) => SnilsCheck::Verified,
        (Some("pending"), Ok(submission)) => SnilsCheck::Pending { submission },
        _ => SnilsCheck::None,
    };
    Ok(StoredChild {
        id: parse_id(pk.trim_start_matches(CHILD_PREFIX))?,
        child,
        version: get_n(item, "version")?,
        parents: set("parents")?,
        verified_parents: set("verified_parents")?,
        snils,
    })
}

fn link_from(item: &Item) -> Result<ChildLink, StoreError> {
    let sk = get_s(item, "sk")?;
    // Links written before parenthood was checked carry no state: they count as
    // pending, never as verified.
    let state = match get_s(item, "state").ok().as_deref() {
        Some("verified") => LinkState::Verified,
        Some("rejected") => LinkState::Rejected,
        _ => LinkState::Pending,
    };
    let claim: Child = match get_s(item, "claim") {
        Ok(claim) => serde_json::from_str(&claim)
            .map_err(|e| StoreError::Rejected(format!("child claim: {e}")))?,
        Err(_) => Child {
            last_name: String::new(),
            first_name: String::new(),
            middle_name: None,
            birth_date: String::new(),
            gender: None,
            birth_certificate: String::new(),
            snils: None,
            oms_policy: None,
        },
    };
    Ok(ChildLink {
        id: parse_id(sk.trim_start_matches(CHILD_PREFIX))?,
        state,
        claim,
        submission: get_s(item, "submission").unwrap_or_default(),
        reason: get_s(item, "reason").ok(),
    })
}

fn vehicle_from(item: &Item) -> Result<StoredVehicle, StoreError> {
    let sk = get_s(item, "sk")?;
    Ok(StoredVehicle {
        id: parse_id(sk.trim_start_matches(VEHICLE_PREFIX))?,
        vehicle: Vehicle {
            sts: get_s(item, "sts")?,
            plate: get_s(item, "plate")?,
            title: get_s(item, "title").ok(),
        },
        created_at: get_n(item, "created_at")?,
    })
}

fn doc(child: &Child) -> Result<AttributeValue, StoreError> {
    to_doc(child, "child record").map(s)
}

impl DynamoStore {
    /// Sort keys under the account's partition that start with `prefix`.
    async fn account_items(&self, account_id: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.query_all(|q| {
            q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(format!("ACCOUNT#{account_id}")))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
        })
        .await
    }
}

impl HouseholdStore for DynamoStore {
    async fn child(&self, id: &ChildId) -> Result<Option<StoredChild>, StoreError> {
        self.get_consistent_as(child_key(id), child_from).await
    }

    async fn child_links(&self, account_id: &AccountId) -> Result<Vec<ChildLink>, StoreError> {
        let items = self.account_items(account_id, CHILD_PREFIX).await?;
        let mut links = Vec::with_capacity(items.len());
        for item in &items {
            links.push((
                get_n::<i64>(item, "added_at").unwrap_or_default(),
                link_from(item)?,
            ));
        }
        links.sort_by(|a, b| (a.0, &a.1.id).cmp(&(b.0, &b.1.id)));
        Ok(links.into_iter().map(|(_, link)| link).collect())
    }

    async fn children(&self, ids: &[ChildId]) -> Result<Vec<StoredChild>, StoreError> {
        // The callers ask for a few at a time: one call, keys left unprocessed an error.
        let keys = ids.iter().map(|id| child_key(id)).collect();
        let mut children: Vec<StoredChild> = self
            .batch_get_consistent(keys, BatchGet::once("children"))
            .await?
            .iter()
            .map(child_from)
            .collect::<Result<_, _>>()?;
        // In the order the links were listed, so a page looks the same every time.
        children.sort_by_key(|c| ids.iter().position(|id| *id == c.id));
        Ok(children)
    }

    async fn link_child(
        &self,
        account_id: &AccountId,
        link: &ChildLink,
        now: i64,
    ) -> Result<Result<(), LinkRefusal>, StoreError> {
        let count = tx_update(
            self.update(counter_key(account_id))
                .update_expression("ADD #n :one")
                .condition_expression("attribute_not_exists(#n) OR #n < :max")
                .expression_attribute_names("#n", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(MAX_CHILDREN as u64)),
        )?;
        let mut item = link_key(account_id, &link.id);
        item.extend([
            ("added_at".into(), n(now)),
            ("state".into(), s(link.state.as_str())),
            ("claim".into(), doc(&link.claim)?),
            ("submission".into(), s(&link.submission)),
        ]);
        let put = self.put_new(item)?;
        // Creates the record with the claim as its data, or joins an existing one as it
        // is: nothing here depends on (or tells) whether it existed.
        let record = tx_update(
            self.update(child_key(&link.id))
                .update_expression(
                    "SET doc = if_not_exists(doc, :doc), version = if_not_exists(version, :one) \
                     ADD parents :me",
                )
                .expression_attribute_values(":doc", doc(&link.claim)?)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(
                    ":me",
                    AttributeValue::Ss(vec![account_id.to_string()]),
                ),
        )?;
        // Adds of one account all touch its counter: a transaction that collided with
        // another is tried again, after a pause that differs from one request to the next.
        for attempt in 0..LINK_CONFLICT_RETRIES {
            let result = self
                .transaction()
                .transact_items(count.clone())
                .transact_items(put.clone())
                .transact_items(record.clone())
                .send()
                .await;
            let failed = match result {
                Ok(_) => return Ok(Ok(())),
                Err(e) => match failed_conditions(e) {
                    Ok(failed) => failed,
                    Err(StoreError::Conflict) if attempt + 1 < LINK_CONFLICT_RETRIES => {
                        let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
                        let pause = 20 + jitter + 50 * attempt as u64;
                        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        continue;
                    }
                    Err(other) => return Err(other),
                },
            };
            return Ok(Err(if failed.contains(&1) {
                LinkRefusal::AlreadyLinked
            } else {
                LinkRefusal::TooMany
            }));
        }
        Err(StoreError::Unavailable(
            "the child links kept colliding".into(),
        ))
    }

    async fn decide_link(&self, decision: &LinkDecision<'_>) -> Result<bool, StoreError> {
        let link = self
            .update(link_key(decision.account_id, &decision.link.id))
            .condition_expression("submission = :s AND #state = :pending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":s", s(&decision.link.submission))
            .expression_attribute_values(":pending", s(LinkState::Pending.as_str()));
        let mut request = self.transaction();
        match decision.verdict {
            LinkVerdict::Rejected { reason } => {
                let link = build(
                    link.update_expression("SET #state = :state, reason = :reason")
                        .expression_attribute_values(":state", s(LinkState::Rejected.as_str()))
                        .expression_attribute_values(":reason", s(reason))
                        .build(),
                )?;
                request = request.transact_items(TransactWriteItem::builder().update(link).build());
            }
            LinkVerdict::Verified { first, claim } => {
                let link = build(
                    link.update_expression("SET #state = :state REMOVE reason")
                        .expression_attribute_values(":state", s(LinkState::Verified.as_str()))
                        .build(),
                )?;
                let me = AttributeValue::Ss(vec![decision.account_id.to_string()]);
                let record = self
                    .update(child_key(&decision.link.id))
                    .expression_attribute_values(":me", me);
                let record = if *first {
                    // The first confirmed parent's data replace whatever an unconfirmed
                    // holder wrote; the SNILS among them waits for its own check.
                    let record = record
                        .condition_expression(
                            "attribute_exists(pk) AND attribute_not_exists(verified_parents)",
                        )
                        .expression_attribute_values(":doc", doc(claim)?)
                        .expression_attribute_values(":one", n(1));
                    match &claim.snils {
                        Some(_) => record
                            .update_expression(
                                "SET doc = :doc, version = version + :one, \
                                 snils_state = :pending, snils_submission = :s \
                                 ADD verified_parents :me",
                            )
                            .expression_attribute_values(":pending", s(LinkState::Pending.as_str()))
                            .expression_attribute_values(":s", s(&decision.link.submission)),
                        None => record.update_expression(
                            "SET doc = :doc, version = version + :one \
                             REMOVE snils_state, snils_submission ADD verified_parents :me",
                        ),
                    }
                } else {
                    record
                        .condition_expression("attribute_exists(verified_parents)")
                        .update_expression("ADD verified_parents :me")
                };
                request = request
                    .transact_items(TransactWriteItem::builder().update(link).build())
                    .transact_items(
                        TransactWriteItem::builder()
                            .update(build(record.build())?)
                            .build(),
                    );
            }
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) => match failed_conditions(e) {
                Ok(_) | Err(StoreError::Conflict) => Ok(false),
                Err(other) => Err(other),
            },
        }
    }

    async fn update_child(&self, change: &ChildUpdate<'_>) -> Result<bool, StoreError> {
        let update = self
            .update_item(child_key(&change.current.id))
            .condition_expression("version = :expected AND contains(verified_parents, :me)")
            .expression_attribute_values(":doc", doc(change.child)?)
            .expression_attribute_values(":next", n(change.current.version + 1))
            .expression_attribute_values(":expected", n(change.current.version))
            .expression_attribute_values(":me", s(change.account_id));
        let update = match (change.snils_submission, &change.child.snils) {
            (Some(submission), _) => update
                .update_expression(
                    "SET doc = :doc, version = :next, snils_state = :pending, \
                     snils_submission = :s",
                )
                .expression_attribute_values(":pending", s(LinkState::Pending.as_str()))
                .expression_attribute_values(":s", s(submission)),
            (None, None) => update.update_expression(
                "SET doc = :doc, version = :next REMOVE snils_state, snils_submission",
            ),
            (None, Some(_)) => update.update_expression("SET doc = :doc, version = :next"),
        };
        won_race(update.send().await.map_err(classify))
    }

    async fn settle_child_snils(
        &self,
        settlement: &SnilsSettlement<'_>,
    ) -> Result<bool, StoreError> {
        let update = self
            .update_item(child_key(settlement.id))
            .condition_expression("snils_state = :pending AND snils_submission = :s")
            .expression_attribute_values(":pending", s(LinkState::Pending.as_str()))
            .expression_attribute_values(":s", s(settlement.submission));
        let update = match settlement.verdict {
            SnilsVerdict::Verified => update
                .update_expression("SET snils_state = :verified")
                .expression_attribute_values(":verified", s(LinkState::Verified.as_str())),
            SnilsVerdict::Rejected { without_snils } => update
                .update_expression(
                    "SET doc = :doc, version = version + :one \
                     REMOVE snils_state, snils_submission",
                )
                .expression_attribute_values(":doc", doc(without_snils)?)
                .expression_attribute_values(":one", n(1)),
        };
        won_race(update.send().await.map_err(classify))
    }

    async fn unlink_child(&self, account_id: &AccountId, id: &ChildId) -> Result<bool, StoreError> {
        let unlink = build(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(link_key(account_id, id)))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )?;
        let leave = tx_update(
            self.update(child_key(id))
                .update_expression("DELETE parents :me, verified_parents :me")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_values(
                    ":me",
                    AttributeValue::Ss(vec![account_id.to_string()]),
                ),
        )?;
        let uncount = tx_update(
            self.update(counter_key(account_id))
                .update_expression("ADD #n :minus")
                .condition_expression("#n > :zero")
                .expression_attribute_names("#n", "count")
                .expression_attribute_values(":minus", n(-1))
                .expression_attribute_values(":zero", n(0)),
        )?;
        let result = self
            .transaction()
            .transact_items(TransactWriteItem::builder().delete(unlink.clone()).build())
            .transact_items(leave.clone())
            .transact_items(uncount)
            .send()
            .await;
        if let Err(e) = result {
            let failed = failed_conditions(e)?;
            if !failed.contains(&2) {
                return Ok(false);
            }
            // A link from before the counter: let go of it without counting down.
            let result = self
                .transaction()
                .transact_items(TransactWriteItem::builder().delete(unlink).build())
                .transact_items(leave)
                .send()
                .await;
            if let Err(e) = result {
                failed_conditions(e)?;
                return Ok(false);
            }
        }
        // The last parent takes the record along; an empty set is no attribute at all.
        let orphan = self
            .delete_item(child_key(id))
            .condition_expression("attribute_not_exists(parents)")
            .send()
            .await;
        match orphan.map_err(classify) {
            Ok(_) | Err(StoreError::Conflict) => Ok(true),
            Err(e) => Err(e),
        }
    }

    async fn vehicles(&self, account_id: &AccountId) -> Result<Vec<StoredVehicle>, StoreError> {
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
        account_id: &AccountId,
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
        Ok(self.put_if_absent(item).await?.written())
    }

    async fn update_vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
        vehicle: &Vehicle,
    ) -> Result<bool, StoreError> {
        let mut update = self
            .update_item(vehicle_key(account_id, id))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":plate", s(&vehicle.plate));
        update = match &vehicle.title {
            Some(title) => update
                .update_expression("SET plate = :plate, title = :title")
                .expression_attribute_values(":title", s(title)),
            None => update.update_expression("SET plate = :plate REMOVE title"),
        };
        won_race(update.send().await.map_err(classify))
    }

    async fn delete_vehicle(
        &self,
        account_id: &AccountId,
        id: &VehicleId,
    ) -> Result<bool, StoreError> {
        self.delete_if_exists(vehicle_key(account_id, id)).await
    }
}
