//! Paying a payee of the catalogue without a bill («Дополнительные платежи»).
//!
//! - The request (the payee's fields, an amount, a method) is checked against the
//!   catalogue: every field at `/fields/<name>`, the amount within the payee's range, a
//!   method the payee accepts (Apple Pay never: 422 `apple_pay_not_accepted`).
//! - The portal issues a charge on the spot under its own UIN prefix, as its own biller
//!   (`portal` in the catalogue). The UIN is derived from the keyed hash of the account
//!   and the idempotency key, so a retry meets the charge it issued and never issues a
//!   second; the charge and the portal biller's record are written in one transaction.
//! - The charge is then paid by [`PaymentService::pay`]'s exactly-once path under the
//!   same key: receipts, the archive, billers' notices and the reconciliation are those
//!   of every payment.

use std::collections::BTreeMap;

use super::*;
use crate::json::date_string;
use crate::services::charges::ChargeBody;

/// Why issuing a portal charge was refused by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueRefusal {
    /// A charge with this UIN is there already (a retry's, as a rule).
    UinTaken,
    /// The portal biller's record was revoked: the portal pays nobody without a bill.
    BillerRevoked,
}

#[trait_variant::make(Send)]
pub trait PortalChargeStore {
    /// Puts a new charge of the portal biller (on the condition that its UIN is free)
    /// and, in the same transaction, the portal biller's record: created if absent, on
    /// the condition that it was not revoked.
    async fn issue_portal_charge(
        &self,
        charge: &StoredCharge,
        portal: &PortalBiller,
        now: i64,
    ) -> Result<Result<(), IssueRefusal>, StoreError>;
}

/// `POST /v1/payees/{id}/payments`, checked against its payee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreePayRequest {
    pub fields: BTreeMap<String, String>,
    /// Kopecks.
    pub amount: u64,
    pub method: MethodRequest,
}

/// Reads an amount in kopecks at `path`, within `range`.
pub(super) fn amount_in(
    raw: Option<&Value>,
    path: &str,
    range: AmountRange,
    errors: &mut Vec<FieldError>,
) -> Option<u64> {
    match raw {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(path, "required", "Обязательное поле"));
            None
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (range.min..=range.max).contains(&v) => Some(v),
            _ => {
                errors.push(FieldError::new(
                    path,
                    "amount_out_of_range",
                    format!(
                        "Сумма в копейках: от {} до {}",
                        roubles(range.min),
                        roubles(range.max)
                    ),
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(path, "invalid_type", "Ожидается число"));
            None
        }
    }
}

/// Reads the method of a payment to a payee at `path`: Apple Pay is refused with its own
/// code, and a method the payee does not take with another.
pub(super) fn payee_method(
    payee: &CataloguePayee,
    raw: Option<&Value>,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<MethodRequest> {
    let object = match raw {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => {
            errors.push(FieldError::new(path, "required", "Обязательное поле"));
            return None;
        }
        Some(_) => {
            errors.push(FieldError::new(path, "invalid_type", "Ожидается объект"));
            return None;
        }
    };
    let type_at = format!("{path}/type");
    if object.get("type").and_then(Value::as_str) == Some("apple_pay") {
        errors.push(FieldError::new(
            &type_at,
            "apple_pay_not_accepted",
            "Дополнительные платежи не оплачиваются через Apple Pay: выберите карту",
        ));
        return None;
    }
    let method = parse_method(object, path, &["saved", "card", "mobile", "wallet"], errors)?;
    let kind = match method {
        MethodRequest::Saved(_) => AcceptedMethod::Saved,
        MethodRequest::CardToken(_) => AcceptedMethod::Card,
        MethodRequest::Mobile(_) => AcceptedMethod::Mobile,
        MethodRequest::Wallet(_) => AcceptedMethod::Wallet,
        MethodRequest::ApplePay(_) => return None,
    };
    if payee.methods.contains(&kind) {
        Some(method)
    } else {
        let names: Vec<&str> = payee.methods.iter().map(|m| m.name()).collect();
        errors.push(FieldError::new(
            &type_at,
            "method_not_accepted",
            format!("Этот получатель принимает: {}", names.join(", ")),
        ));
        None
    }
}

impl FreePayRequest {
    pub fn parse(payee: &CataloguePayee, body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        Reader {
            errors: &mut errors,
        }
        .unknown(body, "", &["fields", "amount", "method"]);
        let fields = payee.check_fields(body.get("fields"), "/fields", &mut errors);
        let amount = amount_in(body.get("amount"), "/amount", payee.amount, &mut errors);
        let method = payee_method(payee, body.get("method"), "/method", &mut errors);
        match (amount, method) {
            (Some(amount), Some(method)) if errors.is_empty() => Ok(Self {
                fields,
                amount,
                method,
            }),
            _ => Err(AppError::Validation(errors)),
        }
    }

    /// The request in a canonical form, for comparing replays.
    pub(super) fn canonical(&self, payee: &CataloguePayee) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "payee:{}|{}|{}|{}",
            payee.id,
            fields.join(";"),
            self.amount,
            self.method.canonical()
        )
    }
}

/// Whether two charge bodies ask for the same payment (their dates aside: a retry after
/// midnight meets the charge issued the day before).
fn same_payment(a: &ChargeBody, b: &ChargeBody) -> bool {
    (a.amount, &a.payee, &a.purpose, &a.kbk, &a.oktmo, a.category)
        == (b.amount, &b.payee, &b.purpose, &b.kbk, &b.oktmo, b.category)
}

/// The stores paying a payee works on: those of payments, and the portal's charges.
pub trait FreePaymentStores: PaymentStores + PortalChargeStore {}

impl<T: PaymentStores + PortalChargeStore> FreePaymentStores for T {}

impl<S: FreePaymentStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    PaymentService<S, G, M, Q>
{
    /// Pays a payee of the catalogue once per idempotency key: issues the portal's
    /// charge for it (once) and pays that charge.
    #[allow(clippy::too_many_arguments)]
    pub async fn pay_payee(
        &self,
        catalogue: &Catalogue,
        payee: &CataloguePayee,
        paying: &PayingAs,
        key: &str,
        request: &FreePayRequest,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<PayOutcome, AppError> {
        // Checked before the portal's charge is issued: a viewer issues nothing.
        self.may(paying, crate::domain::OrgAction::Pay).await?;
        self.pay_payee_checked(catalogue, payee, paying, key, request, origin, now)
            .await
    }

    /// [`Self::pay_payee`] for a payer whose right to pay was checked already.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn pay_payee_checked(
        &self,
        catalogue: &Catalogue,
        payee: &CataloguePayee,
        paying: &PayingAs,
        key: &str,
        request: &FreePayRequest,
        origin: &str,
        now: OffsetDateTime,
    ) -> Result<PayOutcome, AppError> {
        let identity = request.canonical(payee);
        let (key_hash, request_hash) = self.request_hashes(paying, key, &identity);
        // A retry is answered before anything is written.
        if let Some(outcome) = self.replay(paying, &key_hash, &request_hash).await? {
            return Ok(outcome);
        }
        let uin = catalogue
            .portal_uin(&key_hash)
            .ok_or_else(|| AppError::Internal("portal UIN not derived".into()))?;
        let today = date_string(now.to_offset(MOSCOW).date());
        let body = ChargeBody {
            amount: request.amount,
            payee: payee.payee.clone(),
            purpose: payee.purpose_with(&request.fields),
            kbk: payee.kbk.clone(),
            oktmo: payee.oktmo.clone(),
            bill_date: today.clone(),
            due_date: today,
            discount: None,
            category: payee.category.charge_category(),
            payers: Vec::new(),
        };
        self.issue(&catalogue.portal, &uin, body, now).await?;
        let pay = PayRequest {
            uins: vec![uin],
            method: request.method.clone(),
        };
        self.pay_as(paying, key, &pay, &identity, origin, now).await
    }

    /// Issues the portal's charge under `uin`, or finds the one a retry issued before.
    async fn issue(
        &self,
        portal: &PortalBiller,
        uin: &Uin,
        body: ChargeBody,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let charge = StoredCharge {
            uin: uin.clone(),
            biller_id: portal.biller_id.clone(),
            body,
            status: ChargeStatus::Unpaid,
            version: 1,
            updated_at: now.unix_timestamp(),
            locked_by: None,
            withdrawn: false,
            hold: None,
        };
        match self
            .store
            .issue_portal_charge(&charge, portal, now.unix_timestamp())
            .await?
        {
            Ok(()) => {
                tracing::info!(uin = %uin.as_str(), "portal charge issued");
                Ok(())
            }
            Err(IssueRefusal::UinTaken) => {
                match self.store.charges(std::slice::from_ref(uin)).await?.pop() {
                    Some(c)
                        if c.biller_id == portal.biller_id
                            && same_payment(&c.body, &charge.body) =>
                    {
                        Ok(())
                    }
                    // The key paid something else once (its record has expired since).
                    Some(_) => Err(AppError::IdempotencyKeyReused),
                    None => Err(AppError::StoreUnavailable(
                        "portal charge not readable yet".into(),
                    )),
                }
            }
            Err(IssueRefusal::BillerRevoked) => {
                Err(AppError::BillWithdrawn(uin.as_str().to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{test_hasher, Acquirer, Clock, MemStore, Outbox};

    fn service(
        store: &MemStore,
        acquirer: &Acquirer,
    ) -> PaymentService<MemStore, Acquirer, Outbox, MemStore> {
        PaymentService::new(
            store.clone(),
            acquirer.clone(),
            Outbox::default(),
            store.clone(),
            test_hasher(),
        )
    }

    fn troika(body: Value) -> Result<FreePayRequest, AppError> {
        let c = Catalogue::embedded().unwrap();
        let Value::Object(body) = body else { panic!() };
        FreePayRequest::parse(c.payee("troika").unwrap(), &body)
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        let ok = troika(serde_json::json!({
            "fields": {"card_number": "1234567897"},
            "amount": 50_000,
            "method": {"type": "card", "token": "tok_visa"},
        }));
        assert!(ok.is_ok(), "{ok:?}");
        let refused = troika(serde_json::json!({
            "fields": {"card_number": "1234567890"},
            "amount": 1,
            "method": {"type": "apple_pay", "payment_data": "x"},
        }))
        .unwrap_err();
        let codes = crate::validation::field_codes(&refused);
        assert!(
            codes.contains(&("/fields/card_number", "troika_checksum")),
            "{codes:?}"
        );
        assert!(
            codes.contains(&("/amount", "amount_out_of_range")),
            "{codes:?}"
        );
        assert!(
            codes.contains(&("/method/type", "apple_pay_not_accepted")),
            "{codes:?}"
        );
    }

    #[tokio::test]
    async fn a_retry_pays_one_charge_once() {
        let store = MemStore::new();
        store.add_citizen(&"a1".into(), "11223344595");
        let acquirer = Acquirer::default();
        let service = service(&store, &acquirer);
        let c = Catalogue::embedded().unwrap();
        let payee = c.payee("troika").unwrap();
        let request = troika(serde_json::json!({
            "fields": {"card_number": "1234567897"},
            "amount": 50_000,
            "method": {"type": "card", "token": "tok_visa"},
        }))
        .unwrap();
        let now = Clock::new().now();
        let account = PayingAs::Citizen("a1".into());
        let pay = || {
            service.pay_payee(
                &c,
                payee,
                &account,
                "key-00000001",
                &request,
                "payee:troika",
                now,
            )
        };
        let first = pay().await.unwrap();
        assert_eq!(first.payment.status, PaymentStatus::Succeeded);
        assert_eq!(first.payment.amount, 50_000);
        let uin = first.payment.bills[0].uin.clone();
        assert!(uin.as_str().starts_with("0355"));
        let again = pay().await.unwrap();
        assert!(again.replayed);
        assert_eq!(again.payment.id, first.payment.id);
        assert_eq!(acquirer.charges().len(), 1);
        let state = store.state();
        let charge = state.charge(uin.as_str()).unwrap();
        assert_eq!(charge.status, ChargeStatus::Paid);
        assert_eq!(charge.biller_id, c.portal.biller_id);
        assert_eq!(
            state
                .charges
                .keys()
                .filter(|u| u.starts_with("0355"))
                .count(),
            1
        );
    }
}
