//! Organisations in the double: the conditions of
//! `shared/src/adapters/dynamodb/organisations.rs` (one organisation per unique key,
//! decided once, one owner kept, invitations used once, attempts counted in a window).

use std::collections::BTreeMap;

use super::{MemStore, State};
use crate::domain::{AccountId, InvitationId, OrgRole, OrganisationId};
use crate::services::organisations::{
    AuditEntry, AuditPage, Decision, Invitation, InvitationDay, Joined, MemberChange, Membership,
    OrgStatus, Organisation, OrganisationCheck, OrganisationQueue, OrganisationStore,
    ACCEPT_MAX_ATTEMPTS, ACCEPT_WINDOW_SECS,
};
use crate::services::StoreError;

/// The organisations' part of the table.
#[derive(Default)]
pub struct Orgs {
    pub organisations: BTreeMap<OrganisationId, Organisation>,
    /// Unique key → organisation.
    pub keys: BTreeMap<String, OrganisationId>,
    pub members: BTreeMap<(OrganisationId, AccountId), Membership>,
    pub invitations: BTreeMap<InvitationId, Invitation>,
    /// (Organisation, day start) → invitations sent that day.
    pub invitations_per_day: BTreeMap<(OrganisationId, i64), u32>,
    /// Account → (attempts, window end).
    pub attempts: BTreeMap<AccountId, (u32, i64)>,
    /// Organisation → entries, oldest first.
    pub audit: BTreeMap<OrganisationId, Vec<AuditEntry>>,
    pub checks: Vec<OrganisationCheck>,
}

impl Orgs {
    fn owners(&self, org: &OrganisationId) -> usize {
        self.members
            .values()
            .filter(|m| m.organisation_id == *org && m.role == OrgRole::Owner)
            .count()
    }

    fn log(&mut self, org: &OrganisationId, entry: &AuditEntry) {
        self.audit
            .entry(org.clone())
            .or_default()
            .push(entry.clone());
    }
}

fn orgs(state: &mut State) -> &mut Orgs {
    &mut state.orgs
}

impl MemStore {
    /// The memberships `keep` selects: one organisation's members and one citizen's
    /// organisations are the same scan of the members, read under their own operation.
    async fn members_where(
        &self,
        operation: &'static str,
        keep: impl Fn(&Membership) -> bool,
    ) -> Result<Vec<Membership>, StoreError> {
        self.read(operation, |state| {
            state
                .orgs
                .members
                .values()
                .filter(|m| keep(m))
                .cloned()
                .collect()
        })
        .await
    }

    /// A change of one member, as the caller last read it (the same role), that keeps
    /// an owner and is logged with `audit`: a role change and a removal are checked
    /// alike and differ only in what `change` does to the member's entry.
    async fn change_member(
        &self,
        operation: &'static str,
        member: &Membership,
        audit: &AuditEntry,
        change: impl FnOnce(&mut Orgs, &(OrganisationId, AccountId)),
    ) -> Result<MemberChange, StoreError> {
        let answer = self
            .transact(operation, MemberChange::Changed, |state| {
                let orgs = orgs(state);
                let org = &member.organisation_id;
                let key = (org.clone(), member.account_id.clone());
                if orgs.members.get(&key).map(|m| m.role) != Some(member.role) {
                    return Err(MemberChange::Changed);
                }
                if member.role == OrgRole::Owner && orgs.owners(org) <= 1 {
                    return Err(MemberChange::LastOwner);
                }
                change(orgs, &key);
                orgs.log(org, audit);
                Ok(())
            })
            .await?;
        Ok(answer.err().unwrap_or(MemberChange::Done))
    }
}

impl OrganisationQueue for MemStore {
    async fn enqueue_checks(&self, checks: &[OrganisationCheck]) -> Result<(), StoreError> {
        self.write("enqueue_checks", |state| {
            state.orgs.checks.extend(checks.iter().cloned());
        })
        .await
    }
}

impl OrganisationStore for MemStore {
    async fn create_organisation(
        &self,
        org: &Organisation,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.write_if("create_organisation", |state| {
            let orgs = orgs(state);
            let unique = org.identity.unique_key();
            if orgs.keys.contains_key(&unique) {
                return false;
            }
            orgs.keys.insert(unique, org.id.clone());
            orgs.organisations.insert(org.id.clone(), org.clone());
            orgs.members.insert(
                (org.id.clone(), org.applicant.clone()),
                org.applicant_membership(),
            );
            orgs.log(&org.id, audit);
            true
        })
        .await
    }

    async fn organisation(&self, id: &OrganisationId) -> Result<Option<Organisation>, StoreError> {
        self.read("organisation", |state| {
            state.orgs.organisations.get(id).cloned()
        })
        .await
    }

    async fn decide(
        &self,
        org: &Organisation,
        decision: &Decision,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError> {
        self.write_if("decide", |state| {
            let orgs = orgs(state);
            let Some(stored) = orgs.organisations.get_mut(&org.id) else {
                return false;
            };
            if stored.status != OrgStatus::Pending {
                return false;
            }
            stored.decided_at = Some(audit.at);
            match decision {
                Decision::Registered { name } => {
                    stored.status = OrgStatus::Registered;
                    stored.name = Some(name.clone());
                    if let Some(m) = orgs
                        .members
                        .get_mut(&(org.id.clone(), org.applicant.clone()))
                    {
                        m.active = true;
                        m.since = audit.at;
                    }
                }
                Decision::Refused { reason } => {
                    stored.status = OrgStatus::Refused;
                    stored.reason = Some(reason.to_string());
                    orgs.keys.retain(|_, id| *id != org.id);
                }
            }
            orgs.log(&org.id, audit);
            true
        })
        .await
    }

    async fn membership(
        &self,
        org: &OrganisationId,
        account: &AccountId,
    ) -> Result<Option<Membership>, StoreError> {
        self.read("membership", |state| {
            state
                .orgs
                .members
                .get(&(org.clone(), account.clone()))
                .cloned()
        })
        .await
    }

    async fn members(&self, org: &OrganisationId) -> Result<Vec<Membership>, StoreError> {
        self.members_where("members", |m| m.organisation_id == *org)
            .await
    }

    async fn memberships_of(&self, account: &AccountId) -> Result<Vec<Membership>, StoreError> {
        self.members_where("memberships_of", |m| m.account_id == *account)
            .await
    }

    async fn put_invitation(
        &self,
        invitation: &Invitation,
        audit: &AuditEntry,
        day: &InvitationDay,
    ) -> Result<bool, StoreError> {
        self.write("put_invitation", |state| {
            let orgs = orgs(state);
            let sent = orgs
                .invitations_per_day
                .entry((invitation.organisation_id.clone(), day.start))
                .or_default();
            if *sent >= day.limit {
                return false;
            }
            *sent += 1;
            orgs.invitations
                .insert(invitation.id.clone(), invitation.clone());
            orgs.log(&invitation.organisation_id, audit);
            true
        })
        .await
    }

    async fn invitations_to(&self, contact_keys: &[String]) -> Result<Vec<Invitation>, StoreError> {
        self.read("invitations_to", |state| {
            state
                .orgs
                .invitations
                .values()
                .filter(|i| contact_keys.contains(&i.contact_key))
                .cloned()
                .collect()
        })
        .await
    }

    async fn count_accept_attempt(
        &self,
        account: &AccountId,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (window, max) = (ACCEPT_WINDOW_SECS, ACCEPT_MAX_ATTEMPTS);
        self.write_if("count_accept_attempt", |state| {
            let entry = state
                .orgs
                .attempts
                .entry(account.clone())
                .or_insert((0, now + window));
            if entry.1 <= now {
                *entry = (0, now + window);
            }
            if entry.0 >= max {
                return false;
            }
            entry.0 += 1;
            true
        })
        .await
    }

    async fn join(
        &self,
        invitation: &Invitation,
        member: &Membership,
        audit: &AuditEntry,
    ) -> Result<Joined, StoreError> {
        let answer = self
            .transact("join", Joined::InvitationGone, |state| {
                let orgs = orgs(state);
                if !orgs.invitations.contains_key(&invitation.id) {
                    return Err(Joined::InvitationGone);
                }
                let key = (member.organisation_id.clone(), member.account_id.clone());
                if orgs.members.contains_key(&key) {
                    return Err(Joined::AlreadyMember);
                }
                orgs.invitations.remove(&invitation.id);
                orgs.members.insert(key, member.clone());
                orgs.log(&member.organisation_id, audit);
                Ok(())
            })
            .await?;
        Ok(answer.err().unwrap_or(Joined::Joined))
    }

    async fn change_role(
        &self,
        member: &Membership,
        to: OrgRole,
        audit: &AuditEntry,
    ) -> Result<MemberChange, StoreError> {
        self.change_member("change_role", member, audit, |orgs, key| {
            if let Some(stored) = orgs.members.get_mut(key) {
                stored.role = to;
            }
        })
        .await
    }

    async fn remove_member(
        &self,
        member: &Membership,
        audit: &AuditEntry,
    ) -> Result<MemberChange, StoreError> {
        self.change_member("remove_member", member, audit, |orgs, key| {
            orgs.members.remove(key);
        })
        .await
    }

    async fn audit(
        &self,
        org: &OrganisationId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        self.read("audit", |state| {
            let all: Vec<AuditEntry> = state
                .orgs
                .audit
                .get(org)
                .map(|entries| entries.iter().rev().cloned().collect())
                .unwrap_or_default();
            // The double's page key is the position in the newest-first list.
            let start: usize = after.and_then(|a| a.parse().ok()).unwrap_or(0);
            let entries: Vec<AuditEntry> = all.iter().skip(start).take(limit).cloned().collect();
            let end = start + entries.len();
            AuditPage {
                entries,
                next: (end < all.len()).then(|| end.to_string()),
            }
        })
        .await
    }
}
