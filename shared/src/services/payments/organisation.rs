//! Paying for an organisation: who a payment is made by and for, the member's rights
//! checked on every call, the organisation's receipts and its audit entry.
//!
//! A member of a registered organisation pays its bills with the organisation as the
//! payment's owner: the payment, its hold count and its refunds live under the
//! organisation's key, so every member with the right to see them finds them, and none
//! of them lands in the member's own archive. The member who paid is kept in the
//! payment (`account_id`). What a role may do is decided by
//! [`OrgRole::may`](crate::domain::OrgRole::may): paying and confirming need
//! [`OrgAction::Pay`], reading needs [`OrgAction::See`]. The membership is read again here,
//! whatever the authorizer read, so a member removed a moment ago pays nothing.

use super::*;
use crate::domain::{OrgAction, OrganisationIdentity};
use crate::services::organisations::{acting_role, AuditEntry, OrgStatus, Organisation};

/// Who pays, and for whom: a citizen for themselves, or a member for an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayingAs {
    Citizen(AccountId),
    Member {
        account: AccountId,
        organisation: OrganisationId,
    },
}

impl PayingAs {
    /// The citizen acting.
    pub fn account(&self) -> &AccountId {
        match self {
            Self::Citizen(account) | Self::Member { account, .. } => account,
        }
    }

    pub fn organisation(&self) -> Option<&OrganisationId> {
        match self {
            Self::Citizen(_) => None,
            Self::Member { organisation, .. } => Some(organisation),
        }
    }

    /// Whose payments the caller acts on.
    pub fn owner(&self) -> Owner {
        match self {
            Self::Citizen(account) => Owner::Citizen(account.clone()),
            Self::Member { organisation, .. } => Owner::Organisation(organisation.clone()),
        }
    }
}

/// The audit entry of an organisation's payment that succeeded: who paid, which
/// payment, how much (kopecks, commission included). Written with the settlement, in
/// its transaction.
pub fn paid_audit(payment: &Payment) -> Option<AuditEntry> {
    payment.organisation_id.as_ref()?;
    if payment.status != PaymentStatus::Succeeded {
        return None;
    }
    let at = payment.settled_at.unwrap_or(payment.created_at);
    let mut entry = AuditEntry::new("paid", Some(&payment.account_id), at);
    entry.payment_id = Some(payment.id.clone());
    entry.amount = Some(payment.total);
    Some(entry)
}

/// How an organisation is named as a payer: its name as the register holds it, then its
/// INN (and KPP).
pub fn organisation_payer(organisation: &Organisation) -> String {
    let identity = &organisation.identity;
    let mut payer = match &organisation.name {
        Some(name) => format!("{name}, ИНН {}", identity.inn().as_str()),
        None => format!("ИНН {}", identity.inn().as_str()),
    };
    if let OrganisationIdentity::LegalEntity { kpp, .. } = identity {
        payer.push_str(&format!(", КПП {}", kpp.as_str()));
    }
    payer
}

/// A citizen as named on a receipt: last, first and middle name.
pub fn citizen_payer(account: &StoredAccount) -> String {
    [
        account.last_name.as_str(),
        account.first_name.as_str(),
        account.middle_name.as_deref().unwrap_or(""),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(" ")
}

/// Whom a payment's receipts name and go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReceiptHolder {
    pub payer: String,
    /// `None`: nowhere to send it (an account without a valid address).
    pub email: Option<Email>,
}

impl<S: PaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    /// Refuses a member whose role does not allow `action` (403 `role_forbids`), and
    /// anyone who is no active member of the organisation, as if it did not exist (404).
    /// A citizen acting for themselves may do anything with their own payments.
    pub(super) async fn may(&self, paying: &PayingAs, action: OrgAction) -> Result<(), AppError> {
        let PayingAs::Member {
            account,
            organisation,
        } = paying
        else {
            return Ok(());
        };
        let role = acting_role(&self.store, organisation, account)
            .await?
            .ok_or(AppError::NotFound("organisation"))?;
        if role.may(action) {
            Ok(())
        } else {
            Err(AppError::RoleForbids)
        }
    }

    /// The registered organisation a member acts for.
    pub(super) async fn organisation(&self, id: &OrganisationId) -> Result<Organisation, AppError> {
        self.store
            .organisation(id)
            .await?
            .filter(|o| o.status == OrgStatus::Registered)
            .ok_or(AppError::NotFound("organisation"))
    }

    /// Whom a payment's receipts name and go to: the citizen who paid for themselves, or
    /// the organisation paid for (its e-mail, not the member's). `None`: the payer is gone.
    pub(super) async fn receipt_holder(
        &self,
        payment: &Payment,
    ) -> Result<Option<ReceiptHolder>, StoreError> {
        if let Some(id) = &payment.organisation_id {
            return Ok(self
                .store
                .organisation(id)
                .await?
                .map(|organisation| ReceiptHolder {
                    payer: organisation_payer(&organisation),
                    email: Some(organisation.email.clone()),
                }));
        }
        Ok(self
            .store
            .account(&payment.account_id)
            .await?
            .map(|account| ReceiptHolder {
                payer: citizen_payer(&account),
                email: Email::parse("email", &account.email).ok(),
            }))
    }

    /// The receipt of a succeeded payment, for whoever may see the payment.
    pub async fn receipt_of(&self, paying: &PayingAs, id: &PaymentId) -> Result<Value, AppError> {
        let payment = self.payment(paying, id).await?;
        if payment.status != PaymentStatus::Succeeded {
            return Err(AppError::NotFound("receipt"));
        }
        let holder = self
            .receipt_holder(&payment)
            .await?
            .ok_or(AppError::NotFound("receipt"))?;
        Ok(receipt(&holder.payer, &payment))
    }
}
