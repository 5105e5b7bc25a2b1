//! Members of an organisation: invitations by phone or e-mail with a code, accepting
//! one, roles, removal, and the audit log.
//!
//! An invitation is kept under the keyed hash of the contact it was sent to, never the
//! contact itself; whoever signs in with an account holding that contact finds it. The
//! inviter is answered alike whether or not any account holds the contact.

use time::OffsetDateTime;

use super::{
    AuditEntry, AuditPage, InvitationDay, Joined, MemberChange, Membership, OrgStatus,
    Organisation, OrganisationQueue, OrganisationService, OrganisationStore, ACCEPT_WINDOW_SECS,
    AUDIT_PAGE_MAX, INVITATION_TTL_SECS,
};
use crate::crypto::{six_digit_code, Credential};
use crate::domain::{AccountId, Destination, InvitationId, OrgAction, OrgRole, OrganisationId};
use crate::error::AppError;
use crate::redact::Secret;
use crate::services::codes::Notifier;
use crate::services::destination_key;
use crate::services::identity::Departure;
use crate::services::profile::ProfileStore;

/// An invitation to join an organisation in a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    pub id: InvitationId,
    pub organisation_id: OrganisationId,
    /// The keyed hash of the phone or e-mail address it was sent to.
    pub contact_key: String,
    pub role: OrgRole,
    /// The keyed hash of the code sent.
    pub code_hash: String,
    pub invited_by: AccountId,
    pub created_at: i64,
    pub expires_at: i64,
}

impl Invitation {
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "role": self.role.as_str(),
            "expires_at": crate::services::rfc3339(self.expires_at),
        })
    }
}

const INVITATION_SUBJECT: &str = "Приглашение в кабинет организации";

fn invitation_text(org: &Organisation, role: OrgRole, code: &Secret<String>) -> Secret<String> {
    let whom = org
        .name
        .clone()
        .unwrap_or_else(|| format!("ИНН {}", org.identity.inn().as_str()));
    let role = match role {
        OrgRole::Owner => "владельца",
        OrgRole::Accountant => "бухгалтера",
        OrgRole::Viewer => "наблюдателя",
    };
    Secret::new(format!(
        "Вас пригласили в кабинет организации {whom} в роли {role}. Код подтверждения: {}. Введите его в личном кабинете в течение 7 дней.",
        code.expose()
    ))
}

fn code_hash_parts<'a>(id: &'a InvitationId, code: &'a str) -> [&'a str; 3] {
    ["organisation-invitation", id.as_str(), code]
}

impl<S, Q, N> OrganisationService<S, Q, N>
where
    S: OrganisationStore + ProfileStore + Sync,
    Q: OrganisationQueue + Sync,
    N: Notifier + Sync,
{
    /// The registered organisation `id`, for a member whose role may `action`.
    async fn registered_for(
        &self,
        id: &OrganisationId,
        account: &AccountId,
        action: OrgAction,
    ) -> Result<(Organisation, Membership), AppError> {
        let member = self.member_for(id, account, action).await?;
        let org = self.organisation_of(id).await?;
        if org.status != OrgStatus::Registered {
            return Err(AppError::NotFound("organisation"));
        }
        Ok((org, member))
    }

    /// The owner invites whoever holds `contact` in `role`: a code goes to it. The
    /// answer is the same whether or not an account holds the contact.
    pub async fn invite(
        &self,
        owner: &AccountId,
        id: &OrganisationId,
        contact: Destination,
        role: OrgRole,
        now: OffsetDateTime,
    ) -> Result<Invitation, AppError> {
        let (org, _) = self
            .registered_for(id, owner, OrgAction::ManageMembers)
            .await?;
        let at = now.unix_timestamp();
        let code = six_digit_code()?;
        let invitation_id = InvitationId::new();
        let invitation = Invitation {
            code_hash: self.hasher.credential(
                Credential::Code,
                &code_hash_parts(&invitation_id, code.expose()),
            ),
            id: invitation_id,
            organisation_id: id.clone(),
            contact_key: destination_key(&self.hasher, contact.canonical()),
            role,
            invited_by: owner.clone(),
            created_at: at,
            expires_at: at + INVITATION_TTL_SECS,
        };
        let mut audit = AuditEntry::new("invited", Some(owner), at);
        audit.invitation_id = Some(invitation.id.clone());
        audit.role = Some(role);
        // Counted with the invitation, before anything is sent.
        let day = InvitationDay::of(at);
        if !self.store.put_invitation(&invitation, &audit, &day).await? {
            return Err(AppError::InvitationLimit {
                retry_after_secs: u64::try_from(day.end - at).unwrap_or(1).max(1),
            });
        }
        let text = invitation_text(&org, role, &code);
        let sent = match &contact {
            Destination::Phone(phone) => self.notifier.send_sms(phone, &text).await,
            Destination::Email(email) => {
                self.notifier
                    .send_email(email, INVITATION_SUBJECT, &text)
                    .await
            }
        };
        sent.map_err(|e| AppError::DeliveryFailed(e.0))?;
        tracing::info!(organisation_id = %id, invitation_id = %invitation.id, channel = contact.channel().as_str(), "invitation sent");
        Ok(invitation)
    }

    /// `account` accepts the invitation whose code it was sent, to one of its contacts.
    /// The attempt is counted before the code is checked.
    pub async fn accept(
        &self,
        account: &AccountId,
        code: &str,
        now: OffsetDateTime,
    ) -> Result<(Organisation, Membership), AppError> {
        let at = now.unix_timestamp();
        if !self.store.count_accept_attempt(account, at).await? {
            return Err(AppError::InvitationAttemptsLimited {
                retry_after_secs: ACCEPT_WINDOW_SECS.unsigned_abs(),
            });
        }
        let (holder, _) = self
            .store
            .load_profile(account)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let keys: Vec<String> = [holder.phone.as_str(), holder.email.as_str()]
            .into_iter()
            .filter(|c| !c.is_empty())
            .map(|c| destination_key(&self.hasher, c))
            .collect();
        let code = code.trim();
        let invitation = self
            .store
            .invitations_to(&keys)
            .await?
            .into_iter()
            .filter(|i| i.expires_at > at)
            .find(|i| {
                self.hasher.verify_credential(
                    Credential::Code,
                    &code_hash_parts(&i.id, code),
                    &i.code_hash,
                )
            })
            .ok_or(AppError::InvitationCodeMismatch)?;
        let member = Membership {
            organisation_id: invitation.organisation_id.clone(),
            account_id: account.clone(),
            role: invitation.role,
            active: true,
            since: at,
        };
        let mut audit = AuditEntry::new("joined", Some(account), at);
        audit.invitation_id = Some(invitation.id.clone());
        audit.role = Some(invitation.role);
        match self.store.join(&invitation, &member, &audit).await? {
            Joined::Joined => {}
            Joined::InvitationGone => return Err(AppError::InvitationCodeMismatch),
            Joined::AlreadyMember => return Err(AppError::AlreadyMember),
        }
        let org = self.organisation_of(&member.organisation_id).await?;
        tracing::info!(organisation_id = %org.id, invitation_id = %invitation.id, "invitation accepted");
        Ok((org, member))
    }

    /// The members, for any member.
    pub async fn members(
        &self,
        account: &AccountId,
        id: &OrganisationId,
    ) -> Result<Vec<Membership>, AppError> {
        self.registered_for(id, account, OrgAction::See).await?;
        let mut members: Vec<Membership> = self
            .store
            .members(id)
            .await?
            .into_iter()
            .filter(|m| m.active)
            .collect();
        members.sort_by_key(|m| (m.role, m.since));
        Ok(members)
    }

    /// The owner changes a member's role; the last owner stays one.
    pub async fn change_role(
        &self,
        owner: &AccountId,
        id: &OrganisationId,
        member_id: &AccountId,
        role: OrgRole,
        now: OffsetDateTime,
    ) -> Result<Membership, AppError> {
        self.registered_for(id, owner, OrgAction::ManageMembers)
            .await?;
        let member = self.active_member(id, member_id, "member").await?;
        if member.role == role {
            return Ok(member);
        }
        let mut audit = AuditEntry::new("role_changed", Some(owner), now.unix_timestamp());
        audit.member = Some(member_id.clone());
        audit.role = Some(role);
        member_changed(self.store.change_role(&member, role, &audit).await?)?;
        Ok(Membership { role, ..member })
    }

    /// The owner removes a member (an owner may leave too), never the last owner.
    pub async fn remove(
        &self,
        owner: &AccountId,
        id: &OrganisationId,
        member_id: &AccountId,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        self.registered_for(id, owner, OrgAction::ManageMembers)
            .await?;
        let member = self.active_member(id, member_id, "member").await?;
        let mut audit = AuditEntry::new("removed", Some(owner), now.unix_timestamp());
        audit.member = Some(member_id.clone());
        audit.role = Some(member.role);
        member_changed(self.store.remove_member(&member, &audit).await?)
    }

    /// A page of the audit log, newest first, for the owner.
    pub async fn audit(
        &self,
        owner: &AccountId,
        id: &OrganisationId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, AppError> {
        self.member_for(id, owner, OrgAction::ReadAudit).await?;
        let limit = limit.clamp(1, AUDIT_PAGE_MAX);
        Ok(self.store.audit(id, after, limit).await?)
    }
}

/// Takes a citizen whose account is being deleted out of every organisation they are an
/// active member of, each departure logged as `left`. One they are the last owner of is
/// refused before anything changes (409 `last_owner`): they hand it over first. The
/// inactive owner membership of a registration still pending or refused is left as it
/// is (it acts for nothing).
pub async fn leave_every_organisation<S: OrganisationStore + Sync>(
    store: &S,
    account: &AccountId,
    now: i64,
) -> Result<(), AppError> {
    let memberships = store.memberships_of(account).await?;
    for owned in memberships
        .iter()
        .filter(|m| m.active && m.role == OrgRole::Owner)
    {
        let owners = store
            .members(&owned.organisation_id)
            .await?
            .iter()
            .filter(|m| m.active && m.role == OrgRole::Owner)
            .count();
        if owners <= 1 {
            return Err(AppError::LastOwner);
        }
    }
    for membership in memberships.iter().filter(|m| m.active) {
        let mut audit = AuditEntry::new("left", Some(account), now);
        audit.member = Some(account.clone());
        audit.role = Some(membership.role);
        member_changed(store.remove_member(membership, &audit).await?)?;
    }
    Ok(())
}

/// An account's organisations, left when it is deleted ([`leave_every_organisation`]).
pub struct LeaveOrganisations<'a, S>(pub &'a S);

impl<S: OrganisationStore + Sync> Departure for LeaveOrganisations<'_, S> {
    async fn leave(&self, account: &AccountId, now: i64) -> Result<(), AppError> {
        leave_every_organisation(self.0, account, now).await
    }
}

fn member_changed(change: MemberChange) -> Result<(), AppError> {
    match change {
        MemberChange::Done => Ok(()),
        MemberChange::LastOwner => Err(AppError::LastOwner),
        MemberChange::Changed => Err(AppError::NotFound("member")),
    }
}
