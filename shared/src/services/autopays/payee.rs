//! Scheduled autopays of a catalogue payee (charity, rent): the payee's amount, paid once
//! a period (a month for a monthly autopay, an ISO week for a weekly one), with the
//! autopay's saved method, through the payment service's exactly-once path.
//!
//! The period is part of the idempotency key (`autopay:{id}:{generation}:{period}`), so
//! a schedule fired twice, a page delivered twice or a run repeated by hand in the same
//! period replays the first payment, and the next period pays again.

use super::*;
use crate::services::payments::{Catalogue, FreePayRequest};

/// Reads `{"payee_id", "fields", "amount"}` at `/match/payee`: a payee of the catalogue
/// that takes scheduled autopays, its fields and amount checked.
pub(super) fn parse_payee_match(raw: &Value, errors: &mut Vec<FieldError>) -> Option<Match> {
    let catalogue = match Catalogue::shared() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "payee catalogue not usable");
            errors.push(FieldError::new(
                "/match/payee",
                "payee_not_found",
                "Каталог получателей недоступен",
            ));
            return None;
        }
    };
    let mut body = Map::new();
    body.insert("name".into(), Value::String("autopay".into()));
    body.insert("payee_payment".into(), raw.clone());
    // The same checks as a template of the payee, reported at the autopay's path.
    let parsed = crate::services::payments::Template::parse_payee_payment(catalogue, &body, 0);
    let payment = match parsed {
        Ok(t) => t.payee_payment,
        Err(AppError::Validation(found)) => {
            errors.extend(found.into_iter().map(|mut e| {
                e.field = e.field.replacen("/payee_payment", "/match/payee", 1);
                e
            }));
            return None;
        }
        Err(_) => None,
    }?;
    match catalogue.payee(payment.payee_id.as_str()) {
        Some(p) if p.scheduled_autopay => Some(Match::Payee { payee: payment }),
        _ => {
            errors.push(FieldError::new(
                "/match/payee/payee_id",
                "payee_autopay_not_allowed",
                "Автоплатёж по расписанию этому получателю недоступен",
            ));
            None
        }
    }
}

/// An autopay of a payee runs on a schedule (monthly or weekly), and its amount is
/// within its limit.
pub(super) fn check_payee_autopay(autopay: &Autopay) -> Result<(), AppError> {
    let Match::Payee { payee } = &autopay.matching else {
        return Ok(());
    };
    let mut errors = Vec::new();
    if autopay.trigger == Trigger::NewBill {
        errors.push(FieldError::new(
            "/trigger/type",
            "payee_needs_schedule",
            "Автоплатёж получателю — только по расписанию: monthly или weekly",
        ));
    }
    if payee.amount > autopay.limit {
        errors.push(FieldError::new(
            "/limit",
            "amount_over_limit",
            "Сумма платежа больше лимита автоплатежа",
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The period a scheduled run on `date` pays for: `2026-12` (monthly) or `2026-W49`
/// (weekly, ISO week).
pub(super) fn period(trigger: Trigger, date: time::Date) -> String {
    match trigger {
        Trigger::Weekly { .. } => {
            let (year, week, _) = date.to_iso_week_date();
            format!("{year}-W{week:02}")
        }
        _ => format!("{}-{:02}", date.year(), u8::from(date.month())),
    }
}

impl<'a, S: AutopayStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    AutopayService<'a, S, G, M, Q>
{
    /// Pays an autopay's payee for the period of `date`, once.
    pub(super) async fn pay_payee(
        &self,
        autopay: &Autopay,
        payment: &PayeePayment,
        date: time::Date,
        now: OffsetDateTime,
    ) -> Result<AutopayRun, AppError> {
        let run = AutopayRun::default();
        let catalogue = Catalogue::shared().map_err(|e| AppError::Internal(e.to_string()))?;
        let Some(payee) = catalogue.payee(payment.payee_id.as_str()) else {
            tracing::warn!(autopay_id = %autopay.id, "autopay's payee left the catalogue; skipped");
            return Ok(run);
        };
        if payment.amount > autopay.limit {
            tracing::info!(autopay_id = %autopay.id, "autopay's amount over its limit; skipped");
            return Ok(run);
        }
        let request = FreePayRequest {
            fields: payment.fields.clone(),
            amount: payment.amount,
            method: MethodRequest::Saved(autopay.method_id.to_string()),
        };
        let key = format!(
            "autopay:{}:{}:{}",
            autopay.id,
            autopay.generation,
            period(autopay.trigger, date)
        );
        let origin = format!("autopay:{}", autopay.id);
        let outcome = self
            .payments
            .pay_payee(
                catalogue,
                payee,
                &PayingAs::Citizen(autopay.account_id.clone()),
                &key,
                &request,
                &origin,
                now,
            )
            .await;
        let mut run = run;
        match outcome {
            Ok(o) => {
                let uin = o.payment.bills.first().map(|b| b.uin.clone());
                match o.payment.status {
                    PaymentStatus::Succeeded => run.paid.extend(uin),
                    PaymentStatus::Declined => {
                        run.declined.extend(uin);
                        let reason = o.payment.decline_reason.unwrap_or_default();
                        self.pause(autopay, &reason, &decline_text(&reason)).await?;
                    }
                    _ => run.waiting.extend(uin),
                }
            }
            Err(AppError::NotFound("payment method")) => self.pause_method_removed(autopay).await?,
            Err(e) => return Err(e),
        }
        Ok(run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        let d = time::Date::from_calendar_date(2026, time::Month::December, 6).unwrap();
        assert_eq!(period(Trigger::Monthly { day: 6 }, d), "2026-12");
        assert_eq!(period(Trigger::Weekly { weekday: 7 }, d), "2026-W49");
    }

    #[test]
    fn a_payee_match_is_checked() {
        let mut errors = Vec::new();
        let charity = serde_json::json!({"payee_id": "charity-children", "amount": 50_000});
        assert!(matches!(
            parse_payee_match(&charity, &mut errors),
            Some(Match::Payee { .. })
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let troika = serde_json::json!({"payee_id": "troika", "amount": 50_000,
                                        "fields": {"card_number": "1234567897"}});
        assert!(parse_payee_match(&troika, &mut errors).is_none());
        assert_eq!(errors[0].code, "payee_autopay_not_allowed");
    }
}
