//! The receipt of a payment, as the API returns it and as it is e-mailed.

use super::*;

pub const RECEIPT_SUBJECT: &str = "Квитанция об оплате";

/// `+79318702901` as `+7 931 ***-**-01`.
pub fn mobile_label(e164: &str) -> String {
    let national = e164.strip_prefix("+7").unwrap_or(e164);
    if national.len() == 10 {
        format!("Телефон +7 {} ***-**-{}", &national[..3], &national[8..])
    } else {
        "Телефон".into()
    }
}

/// `410011234567890` as `Кошелёк 41001•••7890`.
pub fn wallet_label(wallet: &str) -> String {
    let tail = &wallet[wallet.len().saturating_sub(4)..];
    format!("Кошелёк 41001•••{tail}")
}

/// The receipt: payer, each bill with its payee's requisites, amounts, time, reference.
pub fn receipt(payer: &str, payment: &Payment) -> Value {
    let bills: Vec<Value> = payment
        .bills
        .iter()
        .map(|b| {
            serde_json::json!({
                "uin": b.uin,
                "amount": b.amount,
                "purpose": b.purpose,
                "kbk": b.kbk,
                "oktmo": b.oktmo,
                "payee": b.payee,
            })
        })
        .collect();
    serde_json::json!({
        "payment_id": payment.id,
        "payer": payer,
        "bills": bills,
        "amount": payment.amount,
        "commission": payment.commission,
        "total": payment.total,
        "method": payment.method.label,
        "paid_at": payment.settled_at.map(crate::services::rfc3339),
        "gateway_reference": payment.gateway_reference,
    })
}

pub(super) fn receipt_text(payer: &str, payment: &Payment) -> String {
    let mut lines = vec![
        format!("Платёж {} выполнен.", payment.id),
        format!("Плательщик: {payer}"),
    ];
    for b in &payment.bills {
        lines.push(format!(
            "УИН {}: {} — {}. Получатель: {}, ИНН {}, КПП {}, БИК {}, счёт {}. КБК {}, ОКТМО {}.",
            b.uin.as_str(),
            roubles(b.amount),
            b.purpose,
            b.payee.name,
            b.payee.inn,
            b.payee.kpp,
            b.payee.bic,
            b.payee.account,
            b.kbk,
            b.oktmo
        ));
    }
    lines.push(format!("Сумма: {}", roubles(payment.amount)));
    lines.push(format!("Комиссия: {}", roubles(payment.commission)));
    lines.push(format!("Итого: {}", roubles(payment.total)));
    lines.push(format!("Способ оплаты: {}", payment.method.label));
    if let Some(t) = payment.settled_at {
        lines.push(format!(
            "Время: {}",
            crate::services::identity::at(t).to_offset(MOSCOW)
        ));
    }
    if let Some(reference) = &payment.gateway_reference {
        lines.push(format!("Номер операции в банке: {reference}"));
    }
    lines.join("\n")
}

/// E-mails a receipt to an address already known good (an organisation's) and counts
/// it as a notice of `kind`. A citizen's receipts go through [`crate::services::inbox`].
pub(crate) async fn email_counted_to<M: Notifier>(
    notifier: &M,
    email: &Email,
    (subject, kind): (&str, NoticeKind),
    text: &Secret<String>,
) -> Result<(), crate::services::codes::DeliveryError> {
    notifier.send_email(email, subject, text).await?;
    metrics::emit(Metric::NoticesSent {
        kind,
        channel: NoticeChannel::Email,
    });
    Ok(())
}
