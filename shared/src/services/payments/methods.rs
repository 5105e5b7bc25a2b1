//! An account's saved payment methods and templates.

use super::*;

impl<S: PaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    pub async fn methods(&self, account_id: &AccountId) -> Result<Vec<SavedMethod>, AppError> {
        Ok(self.store.methods(account_id).await?)
    }

    /// Saves a payment method; it can pay any bill and feed autopays, so a password
    /// alone is not enough: the session must have proved presence lately.
    pub async fn add_method(
        &self,
        account_id: &AccountId,
        method: NewMethod,
        presence: Presence,
        now: OffsetDateTime,
    ) -> Result<SavedMethod, AppError> {
        presence.require()?;
        let cap = Cap {
            limit: MAX_METHODS,
            seen: self.store.methods(account_id).await?.len(),
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
        let added = self.store.put_method(account_id, &saved, cap).await?;
        cap.admit(added, METHODS)?;
        Ok(saved)
    }

    pub async fn remove_method(
        &self,
        account_id: &AccountId,
        id: &MethodId,
    ) -> Result<(), AppError> {
        let removed = self.store.delete_method(account_id, id).await?;
        found_or_not(removed, "payment method")
    }

    pub async fn templates(&self, account_id: &AccountId) -> Result<Vec<Template>, AppError> {
        Ok(self.store.templates(account_id).await?)
    }

    pub async fn add_template(
        &self,
        account_id: &AccountId,
        template: &Template,
    ) -> Result<(), AppError> {
        let cap = Cap {
            limit: MAX_TEMPLATES,
            seen: self.store.templates(account_id).await?.len(),
        };
        let added = self.store.put_template(account_id, template, cap).await?;
        cap.admit(added, TEMPLATES)
    }

    pub async fn remove_template(
        &self,
        account_id: &AccountId,
        id: &TemplateId,
    ) -> Result<(), AppError> {
        let removed = self.store.delete_template(account_id, id).await?;
        found_or_not(removed, "payment template")
    }
}

/// How the capped things of this file are named in a `TooMany` refusal.
const METHODS: &str = "payment methods";
const TEMPLATES: &str = "payment templates";
