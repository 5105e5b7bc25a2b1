//! T-Bank's answers, read leniently (the same field is a string in one answer and a
//! number in another), and what their statuses and error codes mean to the service.

use serde_json::{Map, Value};

/// An amount in kopecks, as every T-Bank amount is: a whole number, at most 10 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kopecks(u64);

impl Kopecks {
    /// The largest amount the bank takes (`Amount` has at most 10 digits).
    pub const MAX: u64 = 9_999_999_999;

    /// `None` for more than [`Kopecks::MAX`].
    pub fn new(kopecks: u64) -> Option<Self> {
        (kopecks <= Self::MAX).then_some(Self(kopecks))
    }

    /// `None` for zero too: what a payment may be for.
    pub fn payable(kopecks: u64) -> Option<Self> {
        Self::new(kopecks).filter(|k| k.0 > 0)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    fn from_wire(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::Number(n) => n.as_u64().and_then(Self::new),
            Value::String(s) => s.trim().parse().ok().and_then(Self::new),
            _ => None,
        }
    }
}

impl From<Kopecks> for Value {
    fn from(k: Kopecks) -> Self {
        Value::from(k.0)
    }
}

/// One of the bank's answers. Every T-Bank call answers HTTP 200; `Success` and
/// `ErrorCode` say whether it worked. Other fields are read when asked for, leniently.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub success: bool,
    pub error_code: String,
    /// `CheckOrder`'s payments of the order.
    pub payments: Vec<OrderPayment>,
    body: Map<String, Value>,
}

/// A payment in `CheckOrder`'s list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderPayment {
    pub payment_id: String,
    pub status: String,
    pub amount: Option<Kopecks>,
    pub error_code: String,
}

/// Text of a string or a number: ids and codes come as either.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `true` or `"true"` (`CheckOrder`'s payments say it as a string).
fn truth(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl Reply {
    /// `None`: not a JSON object, so nothing is known.
    pub fn parse(raw: &[u8]) -> Option<Self> {
        let body: Map<String, Value> = serde_json::from_slice(raw).ok()?;
        let payments = match body.get("Payments") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| {
                    let item = item.as_object()?;
                    Some(OrderPayment {
                        payment_id: text(item.get("PaymentId"))?,
                        status: text(item.get("Status"))?,
                        amount: Kopecks::from_wire(item.get("Amount")),
                        error_code: text(item.get("ErrorCode")).unwrap_or_else(|| "0".into()),
                    })
                })
                .collect(),
            _ => Vec::new(),
        };
        let error_code = text(body.get("ErrorCode")).unwrap_or_default();
        Some(Self {
            // Both must say so: `Success` alone is not trusted.
            success: truth(body.get("Success")) && error_code == "0",
            error_code,
            payments,
            body,
        })
    }

    /// A field as text (`Status`, `PaymentId`, `PaymentURL`, …), string or number.
    pub fn text(&self, field: &str) -> Option<String> {
        text(self.body.get(field))
    }

    /// An amount field (`Amount`, `OriginalAmount`, `NewAmount`).
    pub fn kopecks(&self, field: &str) -> Option<Kopecks> {
        Kopecks::from_wire(self.body.get(field))
    }
}

/// What a payment notification names, read from its verified body: the order (our
/// payment id), the bank's payment, the amount and the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub order_id: String,
    pub payment_id: String,
    pub amount: Kopecks,
    pub status: String,
}

impl Notice {
    /// `None` for another kind of notification (a card added, a receipt).
    pub fn read(body: &Map<String, Value>) -> Option<Self> {
        Some(Self {
            order_id: text(body.get("OrderId"))?,
            payment_id: text(body.get("PaymentId"))?,
            amount: Kopecks::from_wire(body.get("Amount"))?,
            status: text(body.get("Status"))?,
        })
    }
}

/// Where a payment stands, as the service sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Money was debited (refunds since do not change that it was charged).
    Charged,
    /// Held by a two-stage authorisation, our `Confirm` due.
    Held,
    /// The cardholder or the bank is still acting, or a status we do not know.
    InProgress,
    /// Declined, cancelled, expired or released: never charged.
    Dead,
}

pub fn phase(status: &str) -> Phase {
    match status {
        "CONFIRMED" | "REFUNDING" | "PARTIAL_REFUNDED" | "REFUNDED" => Phase::Charged,
        "AUTHORIZED" | "PARTIAL_REVERSED" => Phase::Held,
        "REJECTED" | "AUTH_FAIL" | "DEADLINE_EXPIRED" | "CANCELED" | "REVERSED" => Phase::Dead,
        _ => Phase::InProgress,
    }
}

/// Whether `Cancel` may be sent to make sure a payment is never charged: a session
/// nobody finished, or a hold (released in full).
pub fn cancellable(status: &str) -> bool {
    matches!(status, "NEW" | "FORM_SHOWED" | "AUTHORIZED")
}

/// What an error code means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorMeaning {
    /// The card or the cardholder was declined: the reason code to show.
    Declined(&'static str),
    /// The request itself was refused (our configuration or our bug): nothing moved.
    Refused(&'static str),
    /// The bank does not know the payment or the order.
    NotFound,
    /// The payment is not in a state that allows the call.
    WrongState,
    /// Nothing can be said: ask again later.
    Unknown,
}

pub fn error_meaning(code: &str) -> ErrorMeaning {
    match code {
        "103" | "116" | "1051" => ErrorMeaning::Declined("insufficient_funds"),
        "101" | "2014" | "511" => ErrorMeaning::Declined("authentication_failed"),
        "104" => ErrorMeaning::Declined("recurrent_payment_failed"),
        "262" => ErrorMeaning::Declined("saved_card_expired"),
        "1005" | "1006" | "1008" | "1012" | "1014" | "1015" | "1033" | "1054" | "1057" | "1058"
        | "1082" => ErrorMeaning::Declined("card_declined"),
        "204" | "205" => ErrorMeaning::Refused("acquirer_credentials_refused"),
        "10" | "202" | "648" => ErrorMeaning::Refused("acquirer_terminal_unavailable"),
        "1" | "2" | "9" | "12" | "3017" | "308" | "309" | "334" | "1126" => {
            ErrorMeaning::Refused("acquirer_request_invalid")
        }
        "323" | "326" | "330" => ErrorMeaning::Refused("refund_exceeds_payment"),
        "3002" => ErrorMeaning::Refused("merchant_balance_insufficient"),
        "255" | "914" | "335" => ErrorMeaning::NotFound,
        "4" | "8" => ErrorMeaning::WrongState,
        _ => ErrorMeaning::Unknown,
    }
}

/// The reason code of a payment that ended without a charge.
pub fn decline_reason(status: &str, error_code: &str) -> String {
    match status {
        "AUTH_FAIL" => "authentication_failed".into(),
        "DEADLINE_EXPIRED" => "confirmation_expired".into(),
        "CANCELED" | "REVERSED" => "order_cancelled".into(),
        _ => match error_meaning(error_code) {
            ErrorMeaning::Declined(reason) => reason.into(),
            _ => "card_declined".into(),
        },
    }
}

/// What the bank holds for one order id, all its payments together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The bank has no payment for the order.
    Unseen,
    Charged {
        payment_id: String,
    },
    Held {
        payment_id: String,
    },
    InProgress {
        payment_id: String,
    },
    Dead {
        reason: String,
    },
}

/// The order's verdict: a charge anywhere wins, then a hold, then a payment still in
/// progress; only if every payment is dead is the order declined.
pub fn verdict(payments: &[OrderPayment]) -> Verdict {
    let find = |wanted: Phase| payments.iter().find(|p| phase(&p.status) == wanted);
    if let Some(p) = find(Phase::Charged) {
        return Verdict::Charged {
            payment_id: p.payment_id.clone(),
        };
    }
    if let Some(p) = find(Phase::Held) {
        return Verdict::Held {
            payment_id: p.payment_id.clone(),
        };
    }
    if let Some(p) = find(Phase::InProgress) {
        return Verdict::InProgress {
            payment_id: p.payment_id.clone(),
        };
    }
    // The latest payment's reason: the bank lists them in the order they were made.
    match payments.last() {
        Some(p) => Verdict::Dead {
            reason: decline_reason(&p.status, &p.error_code),
        },
        None => Verdict::Unseen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(id: &str, status: &str, code: &str) -> OrderPayment {
        OrderPayment {
            payment_id: id.into(),
            status: status.into(),
            amount: Kopecks::new(100),
            error_code: code.into(),
        }
    }

    #[test]
    fn init_answer_reads() {
        let reply = Reply::parse(
            r#"{"Success":true,"ErrorCode":"0","TerminalKey":"TinkoffBankTest","Status":"NEW",
 "PaymentId":"3093639567","OrderId":"21090","Amount":140000,
 "PaymentURL":"https://securepay.tinkoff.ru/new/fU1ppgqa"}"#
                .as_bytes(),
        )
        .unwrap();
        assert!(reply.success);
        assert_eq!(reply.text("PaymentId").as_deref(), Some("3093639567"));
        assert_eq!(reply.kopecks("Amount"), Kopecks::new(140000));
        assert_eq!(
            reply.text("PaymentURL").as_deref(),
            Some("https://securepay.tinkoff.ru/new/fU1ppgqa")
        );
    }

    #[test]
    fn check_order_payments_read_with_their_odd_types() {
        let reply = Reply::parse(
            r#"{"TerminalKey":"TinkoffBankTest","OrderId":"21057","Success":true,"ErrorCode":"0",
 "Message":"OK","Details":"None",
 "Payments":[{"PaymentId":"124671934","Amount":13660,"Status":"NEW","RRN":"12345678",
              "Success":"true","ErrorCode":0,"Message":"None"},
             {"PaymentId":700001702044,"Amount":"13660","Status":"REJECTED","ErrorCode":1051}]}"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            reply.payments,
            vec![
                OrderPayment {
                    payment_id: "124671934".into(),
                    status: "NEW".into(),
                    amount: Kopecks::new(13660),
                    error_code: "0".into()
                },
                OrderPayment {
                    payment_id: "700001702044".into(),
                    status: "REJECTED".into(),
                    amount: Kopecks::new(13660),
                    error_code: "1051".into()
                },
            ]
        );
    }

    #[test]
    fn an_error_is_success_false_or_a_nonzero_code() {
        let error = Reply::parse(
            r#"{"Success":false,"ErrorCode":"204","Message":"Неверный токен. Проверьте пару TerminalKey/SecretKey"}"#
                .as_bytes(),
        )
        .unwrap();
        assert!(!error.success);
        assert_eq!(error.error_code, "204");
        // A "success" with an error code is no success.
        assert!(
            !Reply::parse(br#"{"Success":true,"ErrorCode":"8"}"#)
                .unwrap()
                .success
        );
        assert!(
            !Reply::parse(br#"{"Success":"false","ErrorCode":"0"}"#)
                .unwrap()
                .success
        );
        assert_eq!(Reply::parse(b"<html>502</html>"), None);
        assert_eq!(Reply::parse(b"[]"), None);
    }

    #[test]
    fn cancel_answer_reads_the_amounts() {
        let reply = Reply::parse(
            br#"{"TerminalKey":"TinkoffBankTest","OrderId":"21057","Success":true,"Status":"PARTIAL_REFUNDED",
 "OriginalAmount":13000,"NewAmount":5000,"PaymentId":"2304882","ErrorCode":"0"}"#,
        )
        .unwrap();
        assert_eq!(reply.kopecks("OriginalAmount"), Kopecks::new(13000));
        assert_eq!(reply.kopecks("NewAmount"), Kopecks::new(5000));
    }

    #[test]
    fn statuses_map_to_phases() {
        let table: [(Phase, &[&str]); 5] = [
            (
                Phase::Charged,
                &["CONFIRMED", "REFUNDING", "PARTIAL_REFUNDED", "REFUNDED"],
            ),
            (Phase::Held, &["AUTHORIZED", "PARTIAL_REVERSED"]),
            (
                Phase::Dead,
                &[
                    "REJECTED",
                    "AUTH_FAIL",
                    "DEADLINE_EXPIRED",
                    "CANCELED",
                    "REVERSED",
                ],
            ),
            (
                Phase::InProgress,
                &[
                    "NEW",
                    "FORM_SHOWED",
                    "AUTHORIZING",
                    "3DS_CHECKING",
                    "3DS_CHECKED",
                ],
            ),
            (
                Phase::InProgress,
                &["CONFIRMING", "REVERSING", "SOMETHING_NEW"],
            ),
        ];
        for (expected, statuses) in table {
            for s in statuses {
                assert_eq!(phase(s), expected, "{s}");
            }
        }
    }

    #[test]
    fn a_charge_anywhere_in_the_order_wins() {
        assert_eq!(verdict(&[]), Verdict::Unseen);
        // Each order's payments (id, status, error code), and the verdict.
        type Payments<'a> = &'a [(&'a str, &'a str, &'a str)];
        let cases: [(Payments, &str); 4] = [
            (
                &[
                    ("1", "REJECTED", "1051"),
                    ("2", "NEW", "0"),
                    ("3", "CONFIRMED", "0"),
                ],
                r#"Charged { payment_id: "3" }"#,
            ),
            (
                &[("1", "CANCELED", "0"), ("2", "FORM_SHOWED", "0")],
                r#"InProgress { payment_id: "2" }"#,
            ),
            (
                &[("1", "NEW", "0"), ("2", "AUTHORIZED", "0")],
                r#"Held { payment_id: "2" }"#,
            ),
            (
                &[("1", "CANCELED", "0"), ("2", "REJECTED", "1051")],
                r#"Dead { reason: "insufficient_funds" }"#,
            ),
        ];
        for (order, expected) in cases {
            let payments: Vec<_> = order.iter().map(|(i, s, e)| payment(i, s, e)).collect();
            assert_eq!(format!("{:?}", verdict(&payments)), expected);
        }
    }

    #[test]
    fn decline_reasons_speak_the_services_language() {
        assert_eq!(decline_reason("REJECTED", "1051"), "insufficient_funds");
        assert_eq!(decline_reason("REJECTED", "1014"), "card_declined");
        assert_eq!(decline_reason("REJECTED", "777"), "card_declined");
        assert_eq!(decline_reason("AUTH_FAIL", "0"), "authentication_failed");
        assert_eq!(
            decline_reason("DEADLINE_EXPIRED", "0"),
            "confirmation_expired"
        );
        assert_eq!(decline_reason("CANCELED", "0"), "order_cancelled");
        assert_eq!(
            error_meaning("330"),
            ErrorMeaning::Refused("refund_exceeds_payment")
        );
        assert_eq!(error_meaning("335"), ErrorMeaning::NotFound);
        assert_eq!(error_meaning("8"), ErrorMeaning::WrongState);
        assert_eq!(error_meaning("99"), ErrorMeaning::Unknown);
    }

    #[test]
    fn kopecks_stay_within_ten_digits() {
        assert_eq!(Kopecks::payable(0), None);
        assert_eq!(Kopecks::new(0).map(Kopecks::get), Some(0));
        assert_eq!(Kopecks::payable(10_000_000_000), None);
        assert_eq!(Kopecks::new(10_000_000_000), None);
        assert_eq!(
            Kopecks::new(Kopecks::MAX).map(Kopecks::get),
            Some(Kopecks::MAX)
        );
        assert_eq!(
            Value::from(Kopecks::new(19200).unwrap()),
            Value::from(19200)
        );
    }
}
