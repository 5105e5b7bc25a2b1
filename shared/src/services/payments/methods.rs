//! Saved payment methods and templates: a citizen's own, or an organisation's, which its
//! members who may pay keep (every member sees them), each change in its audit log.

use super::*;
use crate::domain::OrgAction;

/// An organisation's audit entry of a change to its methods or templates, by the member
/// acting; none for a citizen's own.
fn change_audit(
    paying: &PayingAs,
    action: &str,
    now: OffsetDateTime,
    mark: impl FnOnce(&mut AuditEntry),
) -> Option<AuditEntry> {
    paying.organisation()?;
    let mut entry = AuditEntry::new(action, Some(paying.account()), now.unix_timestamp());
    mark(&mut entry);
    Some(entry)
}

impl<S: PaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    pub async fn methods(&self, paying: &PayingAs) -> Result<Vec<SavedMethod>, AppError> {
        self.may(paying, OrgAction::See).await?;
        Ok(self.store.methods(&paying.owner()).await?)
    }

    /// Saves a payment method; it can pay any bill and feed autopays, so a password
    /// alone is not enough: the session must have proved presence lately.
    pub async fn add_method(
        &self,
        paying: &PayingAs,
        method: NewMethod,
        presence: Presence,
        now: OffsetDateTime,
    ) -> Result<SavedMethod, AppError> {
        presence.require()?;
        self.may(paying, OrgAction::Pay).await?;
        let owner = paying.owner();
        let cap = Cap {
            limit: MAX_METHODS,
            seen: self.store.methods(&owner).await?.len(),
        };
        // Refused before the gateway is asked; the write below holds the cap for good.
        cap.check_room(METHODS)?;
        let id = MethodId::new();
        let created_at = now.unix_timestamp();
        let saved = match method {
            NewMethod::Card(token) => {
                let card = self.gateway.save_card(&token).await.map_err(|e| match e {
                    GatewayError::Refused(reason) => invalid_field(
                        "token",
                        "token_refused",
                        format!("Шлюз не принял токен: {reason}"),
                    ),
                    GatewayError::OutcomeUnknown(m) => AppError::StoreUnavailable(m),
                })?;
                SavedMethod {
                    id,
                    kind: MethodKind::Card,
                    label: format!("{} •••• {}", card.brand, card.last4),
                    brand: Some(card.brand),
                    last4: Some(card.last4),
                    exp_month: Some(card.exp_month),
                    exp_year: Some(card.exp_year),
                    gateway_token: Some(card.reusable_token),
                    phone: None,
                    wallet: None,
                    created_at,
                }
            }
            NewMethod::Mobile(phone) => SavedMethod {
                id,
                kind: MethodKind::Mobile,
                label: mobile_label(phone.e164()),
                brand: None,
                last4: None,
                exp_month: None,
                exp_year: None,
                gateway_token: None,
                phone: Some(phone.e164().to_string()),
                wallet: None,
                created_at,
            },
            NewMethod::Wallet(w) => SavedMethod {
                id,
                kind: MethodKind::Wallet,
                label: wallet_label(&w),
                brand: None,
                last4: None,
                exp_month: None,
                exp_year: None,
                gateway_token: None,
                phone: None,
                wallet: Some(w),
                created_at,
            },
        };
        // The id is fresh: only a retried write that had landed finds it there.
        let audit = change_audit(paying, "method_added", now, |e| {
            e.method_id = Some(saved.id.clone())
        });
        let added = self
            .store
            .put_method(&owner, &saved, cap, audit.as_ref())
            .await?;
        cap.admit(added, METHODS)?;
        Ok(saved)
    }

    pub async fn remove_method(
        &self,
        paying: &PayingAs,
        id: &MethodId,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        self.may(paying, OrgAction::Pay).await?;
        let audit = change_audit(paying, "method_removed", now, |e| {
            e.method_id = Some(id.clone())
        });
        let removed = self
            .store
            .delete_method(&paying.owner(), id, audit.as_ref())
            .await?;
        found_or_not(removed, "payment method")
    }

    pub async fn templates(&self, paying: &PayingAs) -> Result<Vec<Template>, AppError> {
        self.may(paying, OrgAction::See).await?;
        Ok(self.store.templates(&paying.owner()).await?)
    }

    pub async fn add_template(
        &self,
        paying: &PayingAs,
        template: &Template,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        self.may(paying, OrgAction::Pay).await?;
        let owner = paying.owner();
        let cap = Cap {
            limit: MAX_TEMPLATES,
            seen: self.store.templates(&owner).await?.len(),
        };
        let audit = change_audit(paying, "template_added", now, |e| {
            e.template_id = Some(template.id.clone())
        });
        let added = self
            .store
            .put_template(&owner, template, cap, audit.as_ref())
            .await?;
        cap.admit(added, TEMPLATES)
    }

    pub async fn remove_template(
        &self,
        paying: &PayingAs,
        id: &TemplateId,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        self.may(paying, OrgAction::Pay).await?;
        let audit = change_audit(paying, "template_removed", now, |e| {
            e.template_id = Some(id.clone())
        });
        let removed = self
            .store
            .delete_template(&paying.owner(), id, audit.as_ref())
            .await?;
        found_or_not(removed, "payment template")
    }
}

/// How the capped things of this file are named in a `TooMany` refusal.
const METHODS: &str = "payment methods";
const TEMPLATES: &str = "payment templates";
