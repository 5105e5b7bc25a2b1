//! Templates that pay: `POST /v1/payment-templates/{id}/payments` pays what a template
//! names now, once per idempotency key.
//!
//! - A template of UINs pays those of its bills that are unpaid (paid, cancelled and
//!   unknown ones are skipped; none left: 409 `template_nothing_to_pay`).
//! - A template of a catalogue payee (`payee_payment`: the payee, its fields and an
//!   amount) pays that payee as `POST /v1/payees/{id}/payments` would, the fields and
//!   amount checked against the catalogue again.
//! - A template of requisites and a purpose stays a note for the client (409
//!   `template_nothing_to_pay`); another account's template is 404.

use std::collections::BTreeMap;

use super::*;

/// A catalogue payee as a template keeps it: the fields and amount to pay it with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeePayment {
    pub payee_id: PayeeId,
    pub fields: BTreeMap<String, String>,
    /// Kopecks.
    pub amount: u64,
}

impl PayeePayment {
    pub fn view(&self) -> Value {
        serde_json::json!({"payee_id": self.payee_id, "fields": self.fields, "amount": self.amount})
    }
}

impl Template {
    /// `POST /v1/payment-templates` of a catalogue payee: `{"name", "payee_payment":
    /// {"payee_id", "fields", "amount"}}`, checked against the catalogue.
    pub fn parse_payee_payment(
        catalogue: &Catalogue,
        body: &Map<String, Value>,
        now: i64,
    ) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        r.unknown(body, "", &["name", "payee_payment"]);
        let name = r.required(body, "name", "", text);
        let object = r.object(body, "payee_payment", "/payee_payment");
        let mut payment = None;
        if let Some(object) = object {
            Reader {
                errors: &mut errors,
            }
            .unknown(object, "/payee_payment", &["payee_id", "fields", "amount"]);
            let payee = object
                .get("payee_id")
                .and_then(Value::as_str)
                .and_then(|id| catalogue.payee(id));
            match payee {
                None => errors.push(FieldError::new(
                    "/payee_payment/payee_id",
                    "payee_not_found",
                    "Такого получателя нет в каталоге",
                )),
                Some(payee) => {
                    let fields = payee.check_fields(
                        object.get("fields"),
                        "/payee_payment/fields",
                        &mut errors,
                    );
                    let amount = amount_in(
                        object.get("amount"),
                        "/payee_payment/amount",
                        payee.amount,
                        &mut errors,
                    );
                    payment = amount.map(|amount| PayeePayment {
                        payee_id: payee.id.clone(),
                        fields,
                        amount,
                    });
                }
            }
        }
        if payment.is_none() && errors.is_empty() {
            errors.push(FieldError::new(
                "/payee_payment",
                "required",
                "Обязательное поле",
            ));
        }
        validated(
            Self {
                id: TemplateId::new(),
                name: name.unwrap_or_default(),
                uins: Vec::new(),
                payee: None,
                purpose: None,
                created_at: now,
                payee_payment: payment,
            },
            errors,
        )
    }
}

/// The body of `POST /v1/payment-templates/{id}/payments`: the method, kept raw until
/// the template says what it pays (a payee checks it against what it accepts).
#[derive(Debug, Clone)]
pub struct TemplatePayRequest {
    method: Value,
}

impl TemplatePayRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        Reader {
            errors: &mut errors,
        }
        .unknown(body, "", &["method"]);
        match body.get("method") {
            Some(method @ Value::Object(_)) if errors.is_empty() => Ok(Self {
                method: method.clone(),
            }),
            _ => {
                if !matches!(body.get("method"), Some(Value::Object(_))) {
                    errors.push(FieldError::new("/method", "required", "Обязательное поле"));
                }
                Err(AppError::Validation(errors))
            }
        }
    }

    /// The method for bills.
    fn for_bills(&self, bills: usize) -> Result<MethodRequest, AppError> {
        let mut errors = Vec::new();
        let method = match &self.method {
            Value::Object(m) => parse_method(
                m,
                "/method",
                &["saved", "card", "apple_pay", "mobile", "wallet"],
                &mut errors,
            ),
            _ => None,
        };
        if let (Some(MethodRequest::ApplePay(_)), true) = (&method, bills > 1) {
            errors.push(FieldError::new(
                "/method/type",
                "apple_pay_single_bill",
                "Apple Pay оплачивает только одно начисление за раз",
            ));
        }
        match method {
            Some(method) if errors.is_empty() => Ok(method),
            _ => Err(AppError::Validation(errors)),
        }
    }

    /// The method for a payee.
    fn for_payee(&self, payee: &CataloguePayee) -> Result<MethodRequest, AppError> {
        let mut errors = Vec::new();
        match payee_method(payee, Some(&self.method), "/method", &mut errors) {
            Some(method) if errors.is_empty() => Ok(method),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

impl<S, G, M, Q> PaymentService<S, G, M, Q>
where
    S: FreePaymentStores,
    G: PaymentGateway,
    M: Notifier,
    Q: PaymentNoticeQueue,
{
    /// Pays what the payer's template (a citizen's, or an organisation's) names now, once
    /// per idempotency key.
    pub async fn pay_template(
        &self,
        catalogue: &Catalogue,
        paying: &PayingAs,
        id: &TemplateId,
        key: &str,
        request: &TemplatePayRequest,
        now: OffsetDateTime,
    ) -> Result<PayOutcome, AppError> {
        self.may(paying, crate::domain::OrgAction::Pay).await?;
        let templates = self.store.templates(&paying.owner()).await?;
        let Some(template) = templates.into_iter().find(|t| t.id == *id) else {
            return Err(AppError::NotFound("payment template"));
        };
        let origin = format!("template:{}", template.id.as_str());
        if let Some(p) = &template.payee_payment {
            // The catalogue may have changed since the template was saved.
            let payee = catalogue
                .payee(p.payee_id.as_str())
                .ok_or(AppError::TemplateNothingToPay)?;
            let mut errors = Vec::new();
            let fields = serde_json::to_value(&p.fields).unwrap_or_default();
            let checked = payee.check_fields(Some(&fields), "/payee_payment/fields", &mut errors);
            let amount = serde_json::json!(p.amount);
            amount_in(
                Some(&amount),
                "/payee_payment/amount",
                payee.amount,
                &mut errors,
            );
            if !errors.is_empty() {
                return Err(AppError::Validation(errors));
            }
            let free = FreePayRequest {
                fields: checked,
                amount: p.amount,
                method: request.for_payee(payee)?,
            };
            return self
                .pay_payee_checked(catalogue, payee, paying, key, &free, &origin, now)
                .await;
        }
        if template.uins.is_empty() {
            return Err(AppError::TemplateNothingToPay);
        }
        // A retry is answered by the payment its key opened, whatever was paid since.
        let probe = request.for_bills(1)?;
        let identity = format!("template:{}|{}", template.id.as_str(), probe.canonical());
        let (key_hash, request_hash) = self.request_hashes(paying, key, &identity);
        if let Some(outcome) = self.replay(paying, &key_hash, &request_hash).await? {
            return Ok(outcome);
        }
        let charges = self.store.charges(&template.uins).await?;
        let unpaid: Vec<Uin> = template
            .uins
            .iter()
            .filter(|uin| {
                charges
                    .iter()
                    .any(|c| c.uin == **uin && c.status == ChargeStatus::Unpaid)
            })
            .cloned()
            .collect();
        if unpaid.is_empty() {
            return Err(AppError::TemplateNothingToPay);
        }
        let pay = PayRequest {
            method: request.for_bills(unpaid.len())?,
            uins: unpaid,
        };
        self.pay_as(paying, key, &pay, &identity, &origin, now)
            .await
    }
}
