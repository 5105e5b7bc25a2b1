//! The corporate cabinet: organisations (companies and sole traders) registered by the
//! citizen the state register names as their head, their members and roles, invitations,
//! and the audit log of every change.
//!
//! - Registration: a citizen at the confirmed level, with a verified personal INN in the
//!   profile, names the organisation; it starts `pending`, one per INN (+KPP), and a
//!   message on the verification queue asks the business register
//!   ([`BusinessRegistry`]). The worker registers it when the register names the citizen
//!   (by that INN) as the head or the trader, and refuses it otherwise ([`check`]).
//! - Members: the owner invites by phone or e-mail; whoever holds that contact accepts
//!   with the code sent ([`members`]). What each role may do is
//!   [`OrgRole::may`](crate::domain::OrgRole::may), the one place it is decided.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::crypto::Hasher;
use crate::domain::{
    AccountId, Email, InvitationId, MethodId, OrgAction, OrgRole, OrganisationId,
    OrganisationIdentity, PaymentId, TemplateId,
};
use crate::error::AppError;
use crate::services::codes::Notifier;
use crate::services::profile::ProfileStore;
use crate::services::{rfc3339, StoreError};

pub mod check;
pub mod members;
#[cfg(test)]
mod tests;

pub use check::*;
pub use members::*;

// ------------------------------------------------------------------ records

/// Where an organisation's registration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgStatus {
    /// Waiting for the business register's answer.
    Pending,
    Registered,
    /// The register did not name the applicant, or knows no such active organisation.
    Refused,
}

impl OrgStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Registered => "registered",
            Self::Refused => "refused",
        }
    }
}

/// Why a registration was refused (the `reason` the applicant sees).
pub mod refusal {
    /// The register has no such organisation.
    pub const NOT_FOUND: &str = "not_found_in_registry";
    /// The register knows it as liquidated.
    pub const LIQUIDATED: &str = "liquidated";
    /// The register names someone else as the head (or the trader).
    pub const NOT_THE_HEAD: &str = "applicant_not_head";
    /// The register holds another registration number (OGRN, OGRNIP) for the INN.
    pub const NUMBER_MISMATCH: &str = "registration_number_mismatch";
    /// The register did not answer after every attempt.
    pub const UNAVAILABLE: &str = "registry_unavailable";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    pub id: OrganisationId,
    pub identity: OrganisationIdentity,
    /// The organisation's contact e-mail.
    pub email: Email,
    pub status: OrgStatus,
    /// Why it was refused: one of [`refusal`].
    pub reason: Option<String>,
    /// The name the register holds, once registered.
    pub name: Option<String>,
    /// The citizen who asked to register it.
    pub applicant: AccountId,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

impl Organisation {
    /// The applicant's owner membership, inactive: written with the organisation and
    /// activated when the register names the applicant, so the store's double and the
    /// table hold the same one.
    pub fn applicant_membership(&self) -> Membership {
        Membership {
            organisation_id: self.id.clone(),
            account_id: self.applicant.clone(),
            role: OrgRole::Owner,
            active: false,
            since: self.created_at,
        }
    }

    pub fn view(&self) -> serde_json::Value {
        let identity = &self.identity;
        let mut view = serde_json::json!({
            "id": self.id,
            "kind": identity.kind().as_str(),
            "inn": identity.inn().as_str(),
            "status": self.status.as_str(),
            "email": self.email.as_str(),
            "created_at": rfc3339(self.created_at),
        });
        let fields = [
            ("kpp", identity.kpp().map(|k| k.as_str().to_string())),
            (
                match identity {
                    OrganisationIdentity::LegalEntity { .. } => "ogrn",
                    OrganisationIdentity::SoleTrader { .. } => "ogrnip",
                },
                Some(identity.registration_number().to_string()),
            ),
            ("name", self.name.clone()),
            ("reason", self.reason.clone()),
            ("decided_at", self.decided_at.map(rfc3339)),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                view[name] = serde_json::Value::String(value);
            }
        }
        view
    }
}

/// A citizen's place in an organisation. Written for the applicant when the
/// organisation is asked for (`active: false`); it acts only once registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organisation_id: OrganisationId,
    pub account_id: AccountId,
    pub role: OrgRole,
    pub active: bool,
    pub since: i64,
}

impl Membership {
    pub fn view(&self) -> serde_json::Value {
        serde_json::json!({
            "account_id": self.account_id,
            "role": self.role.as_str(),
            "since": rfc3339(self.since),
        })
    }
}

/// One line of an organisation's audit log: who did what to whom, when; ids only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: i64,
    /// `registered`, `refused`, `invited`, `joined`, `role_changed`, `removed`, `left`
    /// (the member deleted their account), `paid` (a member paid for it),
    /// `method_added`, `method_removed`, `template_added`, `template_removed`.
    pub action: String,
    /// Who did it; `None` for the register's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<AccountId>,
    /// The member it was done to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<AccountId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<InvitationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OrgRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The payment a `paid` entry is of, and its total (kopecks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<PaymentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<u64>,
    /// The saved method or the template a `method_…` or `template_…` entry is of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_id: Option<MethodId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<TemplateId>,
}

impl AuditEntry {
    pub fn new(action: &str, actor: Option<&AccountId>, at: i64) -> Self {
        Self {
            at,
            action: action.to_string(),
            actor: actor.cloned(),
            member: None,
            invitation_id: None,
            role: None,
            reason: None,
            payment_id: None,
            amount: None,
            method_id: None,
            template_id: None,
        }
    }

    pub fn view(&self) -> serde_json::Value {
        let mut view = serde_json::json!({
            "at": rfc3339(self.at),
            "action": self.action,
        });
        if let Some(actor) = &self.actor {
            view["actor"] = serde_json::json!(actor);
        }
        if let Some(member) = &self.member {
            view["member"] = serde_json::json!(member);
        }
        if let Some(id) = &self.invitation_id {
            view["invitation_id"] = serde_json::json!(id);
        }
        if let Some(role) = self.role {
            view["role"] = serde_json::json!(role.as_str());
        }
        if let Some(reason) = &self.reason {
            view["reason"] = serde_json::json!(reason);
        }
        if let Some(id) = &self.payment_id {
            view["payment_id"] = serde_json::json!(id);
        }
        if let Some(amount) = self.amount {
            view["amount"] = serde_json::json!(amount);
        }
        if let Some(id) = &self.method_id {
            view["method_id"] = serde_json::json!(id);
        }
        if let Some(id) = &self.template_id {
            view["template_id"] = serde_json::json!(id);
        }
        view
    }
}

/// A page of the audit log, newest first, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next: Option<String>,
}

/// What a registration decided, as the store writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Registered { name: String },
    Refused { reason: &'static str },
}

impl Decision {
    /// The audit entry of the decision made at `at`: the register's, so no actor; a
    /// refusal carries its reason. The worker's decision and the refusal of an
    /// organisation nothing will check are logged alike.
    pub fn audit(&self, at: i64) -> AuditEntry {
        match self {
            Self::Registered { .. } => AuditEntry::new("registered", None, at),
            Self::Refused { reason } => {
                let mut audit = AuditEntry::new("refused", None, at);
                audit.reason = Some(reason.to_string());
                audit
            }
        }
    }
}

/// How an add of a member ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Joined,
    /// The invitation was used or withdrawn meanwhile.
    InvitationGone,
    AlreadyMember,
}

/// How a change of a member's role, or a removal, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberChange {
    Done,
    /// It would leave the organisation with no owner.
    LastOwner,
    /// The member left or changed meanwhile.
    Changed,
}

// ------------------------------------------------------------------ store

#[trait_variant::make(Send)]
pub trait OrganisationStore {
    /// Writes the pending organisation, the key that makes its INN (+KPP) unique, the
    /// applicant's inactive owner membership and the audit entry, in one transaction.
    /// `false`: the key is taken; nothing was written.
    async fn create_organisation(
        &self,
        org: &Organisation,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    async fn organisation(&self, id: &OrganisationId) -> Result<Option<Organisation>, StoreError>;

    /// Records the register's decision on a pending organisation, with its audit entry
    /// (whose time is the decision's): registered activates the applicant's membership;
    /// refused frees the unique key. `false`: it was not pending any more.
    async fn decide(
        &self,
        org: &Organisation,
        decision: &Decision,
        audit: &AuditEntry,
    ) -> Result<bool, StoreError>;

    /// One member (one `GetItem`): what the authorizer reads.
    async fn membership(
        &self,
        org: &OrganisationId,
        account: &AccountId,
    ) -> Result<Option<Membership>, StoreError>;

    async fn members(&self, org: &OrganisationId) -> Result<Vec<Membership>, StoreError>;

    /// The organisations a citizen is a member of (or has asked to register).
    async fn memberships_of(&self, account: &AccountId) -> Result<Vec<Membership>, StoreError>;

    /// Stores the invitation with its audit entry and counts it in the organisation's
    /// day, in one transaction; `false`: the day holds `day.limit` already, and nothing
    /// was written.
    async fn put_invitation(
        &self,
        invitation: &Invitation,
        audit: &AuditEntry,
        day: &InvitationDay,
    ) -> Result<bool, StoreError>;

    /// The invitations sent to the contacts of these keys.
    async fn invitations_to(&self, contact_keys: &[String]) -> Result<Vec<Invitation>, StoreError>;

    /// Counts an attempt to accept an invitation by `account` within a window of
    /// [`ACCEPT_WINDOW_SECS`], before the code is checked: `false` when
    /// [`ACCEPT_MAX_ATTEMPTS`] were made.
    async fn count_accept_attempt(&self, account: &AccountId, now: i64)
        -> Result<bool, StoreError>;

    /// Uses the invitation: it goes, the member comes, with the audit entry.
    async fn join(
        &self,
        invitation: &Invitation,
        member: &Membership,
        audit: &AuditEntry,
    ) -> Result<Joined, StoreError>;

    /// Moves a member from `from` to `to` (owners counted so one stays).
    async fn change_role(
        &self,
        member: &Membership,
        to: OrgRole,
        audit: &AuditEntry,
    ) -> Result<MemberChange, StoreError>;

    async fn remove_member(
        &self,
        member: &Membership,
        audit: &AuditEntry,
    ) -> Result<MemberChange, StoreError>;

    /// A page of the audit log, newest first, after the page key `after`.
    async fn audit(
        &self,
        org: &OrganisationId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<AuditPage, StoreError>;
}

/// The queue the business-register checks go to (the verification queue).
#[trait_variant::make(Send)]
pub trait OrganisationQueue {
    async fn enqueue_checks(&self, checks: &[OrganisationCheck]) -> Result<(), StoreError>;
}

/// A message on the verification queue: check this organisation in the register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganisationCheck {
    pub organisation_id: OrganisationId,
}

// ------------------------------------------------------------------ service

/// The role `account` acts in for the organisation `id`: only an active member has one.
/// The authorizer's one read (`GetItem`), and the rule every service re-check follows.
pub async fn acting_role<S: OrganisationStore + Sync>(
    store: &S,
    id: &OrganisationId,
    account: &AccountId,
) -> Result<Option<OrgRole>, AppError> {
    Ok(active_membership(store, id, account).await?.map(|m| m.role))
}

/// The membership of `account` in `id` if it is active: an inactive one (the applicant's
/// before the register answers) acts for nothing, and every check of a member's rights
/// reads it so.
async fn active_membership<S: OrganisationStore + Sync>(
    store: &S,
    id: &OrganisationId,
    account: &AccountId,
) -> Result<Option<Membership>, StoreError> {
    Ok(store.membership(id, account).await?.filter(|m| m.active))
}

/// How long an invitation can be accepted.
pub const INVITATION_TTL_SECS: i64 = 7 * 24 * 3600;
/// Wrong invitation codes one account may try within [`ACCEPT_WINDOW_SECS`].
pub const ACCEPT_MAX_ATTEMPTS: u32 = 5;
pub const ACCEPT_WINDOW_SECS: i64 = 3600;
/// Invitations one organisation may send per day (UTC): each is an SMS or an e-mail
/// to a contact the owner names, so an owner cannot make the portal flood anyone.
pub const INVITATIONS_PER_DAY: u32 = 20;

/// The day an invitation is counted in: `[start, end)`, Unix seconds, and how many it
/// holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvitationDay {
    pub start: i64,
    pub end: i64,
    pub limit: u32,
}

impl InvitationDay {
    /// The UTC day of `at`.
    pub fn of(at: i64) -> Self {
        const DAY: i64 = 24 * 3600;
        let start = at - at.rem_euclid(DAY);
        Self {
            start,
            end: start + DAY,
            limit: INVITATIONS_PER_DAY,
        }
    }
}

/// Audit entries a page holds at most.
pub const AUDIT_PAGE_MAX: usize = 100;

pub struct OrganisationService<S, Q, N> {
    store: S,
    queue: Q,
    notifier: N,
    hasher: Hasher,
}

impl<S, Q, N> OrganisationService<S, Q, N>
where
    S: OrganisationStore + ProfileStore + Sync,
    Q: OrganisationQueue + Sync,
    N: Notifier + Sync,
{
    pub fn new(store: S, queue: Q, notifier: N, hasher: Hasher) -> Self {
        Self {
            store,
            queue,
            notifier,
            hasher,
        }
    }

    /// Asks to register an organisation for `applicant`: refused unless the account is
    /// confirmed and its profile holds a verified personal INN (what the register's
    /// answer is matched with); a second organisation of the same INN (+KPP) is a
    /// conflict that does not say whose it is.
    pub async fn register(
        &self,
        applicant: &AccountId,
        identity: OrganisationIdentity,
        email: Email,
        now: OffsetDateTime,
    ) -> Result<Organisation, AppError> {
        let (account, stored) = self
            .store
            .load_profile(applicant)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        // The authorizer refused a lower level already (the access matrix); the account
        // read here is the one the registration rests on, so the matrix is asked again.
        let needed =
            crate::access::requirement(crate::access::Capability::OrganisationAdministration);
        if account.level < needed.level {
            return Err(AppError::LevelRequired(needed.level));
        }
        if !stored.profile.is_verified("inn") {
            return Err(AppError::PersonalInnRequired);
        }
        let at = now.unix_timestamp();
        let org = Organisation {
            id: OrganisationId::new(),
            identity,
            email,
            status: OrgStatus::Pending,
            reason: None,
            name: None,
            applicant: applicant.clone(),
            created_at: at,
            decided_at: None,
        };
        let audit = AuditEntry::new("requested", Some(applicant), at);
        if !self.store.create_organisation(&org, &audit).await? {
            return Err(AppError::OrganisationTaken);
        }
        let check = OrganisationCheck {
            organisation_id: org.id.clone(),
        };
        if let Err(e) = self.queue.enqueue_checks(&[check]).await {
            // Nothing will check it: refused at once, which frees its INN for a retry.
            let refused = Decision::Refused {
                reason: refusal::UNAVAILABLE,
            };
            self.store
                .decide(&org, &refused, &refused.audit(at))
                .await?;
            return Err(e.into());
        }
        tracing::info!(organisation_id = %org.id, kind = org.identity.kind().as_str(), "organisation asked for");
        Ok(org)
    }

    /// The organisations `account` belongs to (or asked for), each with its role.
    pub async fn list(
        &self,
        account: &AccountId,
    ) -> Result<Vec<(Organisation, Membership)>, AppError> {
        let mut list = Vec::new();
        for member in self.store.memberships_of(account).await? {
            if let Some(org) = self.store.organisation(&member.organisation_id).await? {
                list.push((org, member));
            }
        }
        list.sort_by_key(|(org, _)| std::cmp::Reverse(org.created_at));
        Ok(list)
    }

    /// One organisation for one of its members (the applicant of a pending or refused
    /// one too); anyone else is told there is none.
    pub async fn get(
        &self,
        account: &AccountId,
        id: &OrganisationId,
    ) -> Result<(Organisation, Membership), AppError> {
        let member = self
            .store
            .membership(id, account)
            .await?
            .ok_or(AppError::NotFound("organisation"))?;
        Ok((self.organisation_of(id).await?, member))
    }

    /// The organisation `id`, which must be there.
    async fn organisation_of(&self, id: &OrganisationId) -> Result<Organisation, AppError> {
        self.store
            .organisation(id)
            .await?
            .ok_or(AppError::NotFound("organisation"))
    }

    /// The active membership of `account` in `id` as it is now, or not found as `missing`:
    /// the organisation, to a caller asking for themselves; the member, to an owner
    /// naming one.
    async fn active_member(
        &self,
        id: &OrganisationId,
        account: &AccountId,
        missing: &'static str,
    ) -> Result<Membership, AppError> {
        active_membership(&self.store, id, account)
            .await?
            .ok_or(AppError::NotFound(missing))
    }

    /// The active membership of `account`, read again, if its role may do `action`: a
    /// non-member is told the organisation is not found, a member whose role does not
    /// allow it is refused with `role_forbids`.
    pub async fn member_for(
        &self,
        id: &OrganisationId,
        account: &AccountId,
        action: OrgAction,
    ) -> Result<Membership, AppError> {
        let member = self.active_member(id, account, "organisation").await?;
        if !member.role.may(action) {
            return Err(AppError::RoleForbids);
        }
        Ok(member)
    }
}
