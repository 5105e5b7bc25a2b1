//! Organisations (`ORG#{id}` / `ORG`), the key that makes an INN (+KPP) one
//! organisation's (`ORGKEY#{inn}[#{kpp}]` / `ORGKEY`), members (`ORG#{id}` /
//! `MEMBER#{account id}`, mirrored as `ACCOUNT#{account id}` / `ORG#{id}` for a
//! citizen's list), invitations under the keyed hash of the contact
//! (`ORGINVITE#{contact key}` / `INVITE#{invitation id}`), the count of a citizen's
//! attempts at invitation codes (`ACCOUNT#{account id}` / `ORGACCEPT`) and the audit log
//! (`ORG#{id}` / `AUDIT#{unix time, 12 digits}#{random}`). See
//! docs/data-model/organisations.md.

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};

use super::*;
use crate::domain::{
    Email, Inn, InvitationId, Kpp, Ogrn, Ogrnip, OrgRole, OrganisationId, OrganisationIdentity,
};
use crate::services::organisations::{
    AuditEntry, AuditPage, Decision, Invitation, InvitationDay, Joined, MemberChange, Membership,
    OrgStatus, Organisation, OrganisationStore, ACCEPT_MAX_ATTEMPTS, ACCEPT_WINDOW_SECS,
};

fn org_pk(id: &OrganisationId) -> String {
    format!("ORG#{id}")
}

fn org_key(id: &OrganisationId) -> Item {
    key(org_pk(id), "ORG")
}

fn unique_key(unique: &str) -> Item {
    key(format!("ORGKEY#{unique}"), "ORGKEY")
}

fn member_key(org: &OrganisationId, account: &AccountId) -> Item {
    key(org_pk(org), &format!("MEMBER#{account}"))
}

fn mirror_key(org: &OrganisationId, account: &AccountId) -> Item {
    key(format!("ACCOUNT#{account}"), &format!("ORG#{org}"))
}

fn invitation_key(contact_key: &str, id: &InvitationId) -> Item {
    key(format!("ORGINVITE#{contact_key}"), &format!("INVITE#{id}"))
}

/// The count of an organisation's invitations in the day starting at `day_start`.
fn invitations_day_key(org: &OrganisationId, day_start: i64) -> Item {
    key(org_pk(org), &format!("INVITES#{day_start}"))
}

fn attempts_key(account: &AccountId) -> Item {
    key(format!("ACCOUNT#{account}"), "ORGACCEPT")
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("organisation item: {what}"))
}

fn status_of(raw: &str) -> Result<OrgStatus, StoreError> {
    match raw {
        "pending" => Ok(OrgStatus::Pending),
        "registered" => Ok(OrgStatus::Registered),
        "refused" => Ok(OrgStatus::Refused),
        _ => Err(corrupt("status")),
    }
}

fn role_of(raw: &str) -> Result<OrgRole, StoreError> {
    OrgRole::parse("role", raw).map_err(|_| corrupt("role"))
}

fn optional_s(item: &Item, name: &str) -> Option<String> {
    get_s(item, name).ok().filter(|v| !v.is_empty())
}

fn organisation_item(org: &Organisation) -> Item {
    let identity = &org.identity;
    let mut item = org_key(&org.id);
    item.extend([
        ("kind".into(), s(identity.kind().as_str())),
        ("inn".into(), s(identity.inn().as_str())),
        ("reg_number".into(), s(identity.registration_number())),
        ("email".into(), s(org.email.as_str())),
        ("status".into(), s(org.status.as_str())),
        ("applicant".into(), s(&org.applicant)),
        ("created_at".into(), n(org.created_at)),
        // The applicant is its first owner (once registered).
        ("owners".into(), n(1)),
    ]);
    if let Some(kpp) = identity.kpp() {
        item.insert("kpp".into(), s(kpp.as_str()));
    }
    item
}

fn organisation_from(item: &Item) -> Result<Organisation, StoreError> {
    let inn = Inn::parse("inn", &get_s(item, "inn")?).map_err(|_| corrupt("inn"))?;
    let number = get_s(item, "reg_number")?;
    let identity = match get_s(item, "kind")?.as_str() {
        "legal_entity" => {
            let kpp = Kpp::parse("kpp", &get_s(item, "kpp")?).map_err(|_| corrupt("kpp"))?;
            let ogrn = Ogrn::parse("ogrn", &number).map_err(|_| corrupt("ogrn"))?;
            OrganisationIdentity::legal_entity(inn, kpp, ogrn)
        }
        "sole_trader" => {
            let ogrnip = Ogrnip::parse("ogrnip", &number).map_err(|_| corrupt("ogrnip"))?;
            OrganisationIdentity::sole_trader(inn, ogrnip)
        }
        _ => return Err(corrupt("kind")),
    }
    .map_err(|_| corrupt("identity"))?;
    let pk = get_s(item, "pk")?;
    Ok(Organisation {
        id: parse_id(pk.trim_start_matches("ORG#"))?,
        identity,
        email: Email::parse("email", &get_s(item, "email")?).map_err(|_| corrupt("email"))?,
        status: status_of(&get_s(item, "status")?)?,
        reason: optional_s(item, "reason"),
        name: optional_s(item, "name"),
        applicant: get_id(item, "applicant")?,
        created_at: get_n(item, "created_at")?,
        decided_at: get_n(item, "decided_at").ok(),
    })
}

fn member_attributes(member: &Membership, mut item: Item) -> Item {
    item.extend([
        ("organisation_id".into(), s(&member.organisation_id)),
        ("account_id".into(), s(&member.account_id)),
        ("role".into(), s(member.role.as_str())),
        ("active".into(), b(member.active)),
        ("since".into(), n(member.since)),
    ]);
    item
}

fn membership_from(item: &Item) -> Result<Membership, StoreError> {
    Ok(Membership {
        organisation_id: get_id(item, "organisation_id")?,
        account_id: get_id(item, "account_id")?,
        role: role_of(&get_s(item, "role")?)?,
        active: get_bool(item, "active"),
        since: get_n(item, "since")?,
    })
}

fn invitation_item(invitation: &Invitation) -> Item {
    let mut item = invitation_key(&invitation.contact_key, &invitation.id);
    item.extend([
        ("organisation_id".into(), s(&invitation.organisation_id)),
        ("role".into(), s(invitation.role.as_str())),
        ("code_hash".into(), s(&invitation.code_hash)),
        ("invited_by".into(), s(&invitation.invited_by)),
        ("created_at".into(), n(invitation.created_at)),
        ("expires_at".into(), n(invitation.expires_at)),
        (TTL_ATTRIBUTE.into(), n(invitation.expires_at)),
    ]);
    item
}

fn invitation_from(item: &Item) -> Result<Invitation, StoreError> {
    let pk = get_s(item, "pk")?;
    let sk = get_s(item, "sk")?;
    Ok(Invitation {
        id: parse_id(sk.trim_start_matches("INVITE#"))?,
        organisation_id: get_id(item, "organisation_id")?,
        contact_key: pk.trim_start_matches("ORGINVITE#").to_string(),
        role: role_of(&get_s(item, "role")?)?,
        code_hash: get_s(item, "code_hash")?,
        invited_by: get_id(item, "invited_by")?,
        created_at: get_n(item, "created_at")?,
        expires_at: get_n(item, "expires_at")?,
    })
}

/// The audit entry's item: sorted by its second, then by a UUID v7 (milliseconds, then
/// random), which keeps the entries of one second in order and apart.
pub(super) fn audit_item(org: &OrganisationId, entry: &AuditEntry) -> Result<Item, StoreError> {
    let sk = format!("AUDIT#{:012}#{}", entry.at, uuid::Uuid::now_v7().simple());
    let mut item = key(org_pk(org), &sk);
    item.insert("doc".into(), s(to_doc(entry, "audit entry")?));
    Ok(item)
}

/// A transaction's delete under `condition`.
fn delete_if(
    table: &str,
    key: Item,
    condition: &str,
    names: &[(&str, &str)],
    values: &[(&str, AttributeValue)],
) -> Result<TransactWriteItem, StoreError> {
    let mut delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(condition);
    for (name, attribute) in names {
        delete = delete.expression_attribute_names(*name, *attribute);
    }
    for (name, value) in values {
        delete = delete.expression_attribute_values(*name, value.clone());
    }
    Ok(TransactWriteItem::builder()
        .delete(build(delete.build())?)
        .build())
}

/// Whether a transaction guarded by its first item was written: that item's condition
/// failing means the write was refused (`false`), any other failure is a conflict.
/// Creating an organisation and deciding one both answer so.
fn first_condition_held(failed: Vec<usize>) -> Result<bool, StoreError> {
    if failed.is_empty() {
        Ok(true)
    } else if failed.contains(&0) {
        Ok(false)
    } else {
        Err(StoreError::Conflict)
    }
}

/// The failed conditions of a transaction, or none when it was written.
async fn transact_reporting(
    store: &DynamoStore,
    items: Vec<TransactWriteItem>,
) -> Result<Vec<usize>, StoreError> {
    match store
        .transaction()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(Vec::new()),
        Err(e) => failed_conditions(e),
    }
}

impl DynamoStore {
    /// The owners count of the organisation, moved by `delta`; a drop keeps one.
    fn owners_moved(
        &self,
        org: &OrganisationId,
        delta: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = self
            .update(org_key(org))
            .update_expression("SET owners = owners + :delta")
            .expression_attribute_values(":delta", n(delta));
        tx_update(if delta < 0 {
            update
                .condition_expression("owners > :one")
                .expression_attribute_values(":one", n(1))
        } else {
            update.condition_expression("attribute_exists(pk)")
        })
    }

    /// Both items of a new membership (the organisation's and the citizen's mirror),
    /// each put only where none is: the applicant's and an invited member's alike.
    fn member_puts(&self, member: &Membership) -> Result<[TransactWriteItem; 2], StoreError> {
        let org = &member.organisation_id;
        Ok([
            self.put_new(member_attributes(
                member,
                member_key(org, &member.account_id),
            ))?,
            self.put_new(member_attributes(
                member,
                mirror_key(org, &member.account_id),
            ))?,
        ])
    }

    /// Both items of a membership updated by `expression` (values `values`), the first
    /// under `condition`.
    fn member_updates(
        &self,
        member: &Membership,
        expression: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let keys = [
            member_key(&member.organisation_id, &member.account_id),
            mirror_key(&member.organisation_id, &member.account_id),
        ];
        let mut updates = Vec::new();
        for (i, key) in keys.into_iter().enumerate() {
            let mut update = self
                .update(key)
                .update_expression(expression)
                .condition_expression(if i == 0 {
                    condition
                } else {
                    "attribute_exists(pk)"
                });
            if expression.contains("#role") || (i == 0 && condition.contains("#role")) {
                update = update.expression_attribute_names("#role", "role");
            }
            for (name, value) in values {
                if i == 0 || expression.contains(name) {
                    update = update.expression_attribute_values(*name, value.clone());
                }
            }
            updates.push(tx_update(update)?);
        }
        Ok(updates)
    }
}

impl OrganisationStore for DynamoStore {
    async fn create_organisation(
        &self,
        org: &Organisation,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let mut claim = unique_key(&org.identity.unique_key());
        claim.insert("organisation_id".into(), s(&org.id));
        let mut items = vec![self.put_new(claim)?, self.put_new(organisation_item(org))?];
        items.extend(self.member_puts(&org.applicant_membership())?);
        items.push(self.put_new(audit_item(&org.id, audit)?)?);
        first_condition_held(transact_reporting(self, items).await?)
    }

    async fn organisation(&self, id: &OrganisationId) -> Result<Option<Organisation>, StoreError> {
        self.get_consistent_as(org_key(id), organisation_from).await
    }

    async fn decide(
        &self,
        org: &Organisation,
        decision: &Decision,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        let (status, attribute, value) = match decision {
            Decision::Registered { name } => ("registered", "name", name.as_str()),
            Decision::Refused { reason } => ("refused", "reason", *reason),
        };
        let mut items = vec![tx_update(
            self.update(org_key(&org.id))
                .update_expression("SET #status = :status, decided_at = :at, #detail = :detail")
                .condition_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#detail", attribute)
                .expression_attribute_values(":status", s(status))
                .expression_attribute_values(":at", n(audit.at))
                .expression_attribute_values(":detail", s(value))
                .expression_attribute_values(":pending", s("pending")),
        )?];
        match decision {
            Decision::Registered { .. } => {
                items.extend(self.member_updates(
                    &org.applicant_membership(),
                    "SET active = :true, since = :at",
                    "attribute_exists(pk)",
                    &[(":true", b(true)), (":at", n(audit.at))],
                )?);
            }
            Decision::Refused { .. } => items.push(delete_if(
                &self.table,
                unique_key(&org.identity.unique_key()),
                "organisation_id = :id",
                &[],
                &[(":id", s(&org.id))],
            )?),
        }
        items.push(self.put_new(audit_item(&org.id, audit)?)?);
        first_condition_held(transact_reporting(self, items).await?)
    }

    async fn membership(
        &self,
        org: &OrganisationId,
        account: &AccountId,
    ) -> Result<Option<Membership>, StoreError> {
        self.get_consistent_as(member_key(org, account), membership_from)
            .await
    }

    async fn members(&self, org: &OrganisationId) -> Result<Vec<Membership>, StoreError> {
        self.query_prefix(&org_pk(org), "MEMBER#")
            .await?
            .iter()
            .map(membership_from)
            .collect()
    }

    async fn memberships_of(&self, account: &AccountId) -> Result<Vec<Membership>, StoreError> {
        self.query_prefix(&format!("ACCOUNT#{account}"), "ORG#")
            .await?
            .iter()
            .map(membership_from)
            .collect()
    }

    async fn put_invitation(
        &self,
        invitation: &Invitation,
        audit: &AuditEntry,
        day: &InvitationDay,
    ) -> Result<bool, StoreError> {
        let items = [
            self.put_new(invitation_item(invitation))?,
            self.put_new(audit_item(&invitation.organisation_id, audit)?)?,
        ];
        let count = tx_update(
            self.update(invitations_day_key(&invitation.organisation_id, day.start))
                .update_expression("ADD #count :one SET #ttl = :end")
                .condition_expression("attribute_not_exists(#count) OR #count < :limit")
                .expression_attribute_names("#count", "count")
                .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":end", n(day.end))
                .expression_attribute_values(":limit", n(day.limit)),
        )?;
        match self.transact_counted(&items, &count).await? {
            Counted::Written => Ok(true),
            Counted::CounterRefused => Ok(false),
            // A new invitation's id is new: its put cannot meet an item.
            Counted::ThingRefused => Err(StoreError::Conflict),
        }
    }

    async fn invitations_to(&self, contact_keys: &[String]) -> Result<Vec<Invitation>, StoreError> {
        let mut invitations = Vec::new();
        for contact_key in contact_keys {
            for item in self
                .query_prefix(&format!("ORGINVITE#{contact_key}"), "INVITE#")
                .await?
            {
                invitations.push(invitation_from(&item)?);
            }
        }
        Ok(invitations)
    }

    async fn count_accept_attempt(
        &self,
        account: &AccountId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (window, max) = (ACCEPT_WINDOW_SECS, ACCEPT_MAX_ATTEMPTS);
        // A window that is over (or none yet) starts again with this attempt.
        let fresh = self
            .update_item(attempts_key(account))
            .update_expression("SET attempts = :one, window_ends = :end, #ttl = :end")
            .condition_expression("attribute_not_exists(window_ends) OR window_ends <= :now")
            .expression_attribute_names("#ttl", TTL_ATTRIBUTE)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":end", n(now + window))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        if won_race(fresh.map_err(classify))? {
            return Ok(true);
        }
        let counted = self
            .update_item(attempts_key(account))
            .update_expression("ADD attempts :one")
            .condition_expression("window_ends > :now AND attempts < :max")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":max", n(max))
            .send()
            .await;
        won_race(counted.map_err(classify))
    }

    async fn join(
        &self,
        invitation: &Invitation,
        member: &Membership,
        audit: &AuditEntry,
    ) -> Result<Joined, StoreError> {
        let org = &member.organisation_id;
        let mut items =
            vec![self.delete_present(invitation_key(&invitation.contact_key, &invitation.id))?];
        items.extend(self.member_puts(member)?);
        items.push(self.put_new(audit_item(org, audit)?)?);
        if member.role == OrgRole::Owner {
            items.push(self.owners_moved(org, 1)?);
        }
        match transact_reporting(self, items).await? {
            failed if failed.is_empty() => Ok(Joined::Joined),
            failed if failed.contains(&0) => Ok(Joined::InvitationGone),
            failed if failed.contains(&1) => Ok(Joined::AlreadyMember),
            _ => Err(StoreError::Conflict),
        }
    }

    async fn change_role(
        &self,
        member: &Membership,
        to: OrgRole,
        audit: &AuditEntry,
    ) -> Result<MemberChange, StoreError> {
        let mut items = self.member_updates(
            member,
            "SET #role = :to",
            "#role = :from AND active = :true",
            &[
                (":to", s(to.as_str())),
                (":from", s(member.role.as_str())),
                (":true", b(true)),
            ],
        )?;
        let owners = match (member.role, to) {
            (OrgRole::Owner, _) => Some(self.owners_moved(&member.organisation_id, -1)?),
            (_, OrgRole::Owner) => Some(self.owners_moved(&member.organisation_id, 1)?),
            _ => None,
        };
        items.push(self.put_new(audit_item(&member.organisation_id, audit)?)?);
        let owners_at = items.len();
        items.extend(owners);
        Ok(member_change(
            transact_reporting(self, items).await?,
            owners_at,
        ))
    }

    async fn remove_member(
        &self,
        member: &Membership,
        audit: &AuditEntry,
    ) -> Result<MemberChange, StoreError> {
        let org = &member.organisation_id;
        let mut items = vec![
            delete_if(
                &self.table,
                member_key(org, &member.account_id),
                "#role = :role",
                &[("#role", "role")],
                &[(":role", s(member.role.as_str()))],
            )?,
            self.tx_delete(mirror_key(org, &member.account_id))?,
            self.put_new(audit_item(org, audit)?)?,
        ];
        let owners_at = items.len();
        if member.role == OrgRole::Owner {
            items.push(self.owners_moved(org, -1)?);
        }
        Ok(member_change(
            transact_reporting(self, items).await?,
            owners_at,
        ))
    }

    async fn audit(
        &self,
        org: &OrganisationId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let pk = org_pk(org);
        let (items, next) = self
            .query_page(&pk, after, limit, |q| {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", s(&pk))
                    .expression_attribute_values(":prefix", s("AUDIT#"))
                    .scan_index_forward(false)
            })
            .await?;
        let entries = items
            .iter()
            .map(|item| get_doc(item, "doc", "audit entry"))
            .collect::<Result<_, _>>()?;
        Ok(AuditPage { entries, next })
    }
}

/// A member's change from the transaction's failed conditions: the member's own (the
/// first item) means it changed meanwhile, the owners count (at `owners_at`) that it was
/// the last owner.
fn member_change(failed: Vec<usize>, owners_at: usize) -> MemberChange {
    if failed.is_empty() {
        MemberChange::Done
    } else if failed.contains(&0) {
        MemberChange::Changed
    } else if failed.contains(&owners_at) {
        MemberChange::LastOwner
    } else {
        MemberChange::Changed
    }
}
