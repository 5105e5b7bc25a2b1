use super::*;
use serde_json::json;

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn codes(err: AppError) -> Vec<(String, &'static str)> {
    match err {
        AppError::Validation(errors) => errors.into_iter().map(|e| (e.field, e.code)).collect(),
        AppError::CardNumberNotAccepted(path) => vec![(path, "card_number_not_accepted")],
        other => panic!("{other:?}"),
    }
}

const UIN: &str = "18810177200000012341";

fn payment(kind: MethodKind, saved: bool, origin: &str, status: PaymentStatus) -> Payment {
    Payment {
        id: "p1".into(),
        account_id: "a1".into(),
        organisation_id: None,
        bills: Vec::new(),
        amount: 100,
        commission: 0,
        total: 100,
        method: MethodSummary {
            kind,
            label: "Visa •••• 4242".into(),
            saved_method_id: saved.then(|| "m1".into()),
        },
        status,
        gateway_reference: None,
        confirmation_url: None,
        decline_reason: None,
        created_at: 0,
        settled_at: None,
        request_hash: String::new(),
        origin: origin.into(),
        hold_until: None,
        refunds: RefundTotals::default(),
    }
}

#[test]
fn a_payment_is_counted_by_method_and_by_what_the_payer_was_told() {
    let method = |kind, saved, origin| {
        payment(kind, saved, origin, PaymentStatus::Succeeded).metric_method()
    };
    assert_eq!(method(MethodKind::Card, false, "citizen"), "card");
    assert_eq!(method(MethodKind::Card, true, "citizen"), "saved_card");
    assert_eq!(method(MethodKind::ApplePay, false, "citizen"), "apple_pay");
    assert_eq!(method(MethodKind::Mobile, true, "citizen"), "saved_mobile");
    assert_eq!(method(MethodKind::Wallet, false, "citizen"), "wallet");
    // An autopay pays with a saved card, and is counted as what it is.
    assert_eq!(method(MethodKind::Card, true, "autopay:x1"), "autopay");

    let outcome = |status| payment(MethodKind::Card, false, "citizen", status).metric_outcome();
    assert_eq!(outcome(PaymentStatus::Succeeded), PaymentOutcome::Succeeded);
    assert_eq!(outcome(PaymentStatus::Declined), PaymentOutcome::Declined);
    assert_eq!(
        outcome(PaymentStatus::RequiresConfirmation),
        PaymentOutcome::Pending
    );
    assert_eq!(outcome(PaymentStatus::Pending), PaymentOutcome::Failed);

    let capture = metrics::Capture::start();
    payment(
        MethodKind::Card,
        true,
        "autopay:x1",
        PaymentStatus::Declined,
    )
    .count();
    assert_eq!(
        capture.counted("Payments"),
        [metrics::dims(&[
            ("Method", "autopay"),
            ("Outcome", "declined")
        ])]
    );
}

#[test]
fn a_payment_request_is_checked_field_by_field() {
    let ok = PayRequest::parse(&object(json!({
        "uins": [UIN], "method": {"type": "card", "token": "tok_abc"}
    })))
    .unwrap();
    assert_eq!(ok.uins, [Uin::parse("uin", UIN).unwrap()]);
    let errors = codes(
        PayRequest::parse(&object(json!({
            "uins": [UIN, UIN, "123"], "method": {"type": "cash"}, "tip": 1
        })))
        .unwrap_err(),
    );
    for expected in [
        ("/uins/1", "duplicate_uin"),
        ("/uins/2", "uin_format"),
        ("/method/type", "invalid_method_type"),
        ("/tip", "unknown_field"),
    ] {
        assert!(
            errors
                .iter()
                .any(|(f, c)| f == expected.0 && *c == expected.1),
            "{expected:?} in {errors:?}"
        );
    }
}

#[test]
fn apple_pay_pays_one_bill_only() {
    let errors = codes(
        PayRequest::parse(&object(json!({
            "uins": [UIN, "18810177200000012368"],
            "method": {"type": "apple_pay", "payment_data": "eyJk"}
        })))
        .unwrap_err(),
    );
    assert!(errors.contains(&("/method/type".to_string(), "apple_pay_single_bill")));
}

#[test]
fn card_numbers_are_refused_wherever_they_are() {
    let errors = codes(
        PayRequest::parse(&object(json!({
            "uins": [UIN], "method": {"type": "card", "token": "4242 4242 4242 4242"}
        })))
        .unwrap_err(),
    );
    assert_eq!(
        errors,
        [("/method/token".to_string(), "card_number_not_accepted")]
    );
    assert!(NewMethod::parse(&object(
        json!({"type": "card", "token": "tok_x", "pan": "4000000000000002"})
    ))
    .is_err());
    // A wallet number is not mistaken for a card.
    assert!(NewMethod::parse(&object(
        json!({"type": "wallet", "wallet": "4100112345678"})
    ))
    .is_ok());
}

#[test]
fn idempotency_keys() {
    assert!(check_idempotency_key(Some("a1b2c3d4")).is_ok());
    assert!(check_idempotency_key(Some("short")).is_err());
    assert!(check_idempotency_key(Some("has space in it")).is_err());
    assert!(check_idempotency_key(None).is_err());
}

#[test]
fn commissions_and_labels() {
    assert_eq!(commission(MethodKind::Card, 150_000), 0);
    assert_eq!(commission(MethodKind::Mobile, 150_000), 1_500);
    assert_eq!(commission(MethodKind::Mobile, 1_000), 100);
    assert_eq!(mobile_label("+79318702901"), "Телефон +7 931 ***-**-01");
    assert_eq!(wallet_label("410011234567890"), "Кошелёк 41001•••7890");
}

#[test]
fn templates_are_bills_or_a_payee() {
    assert!(Template::parse(&object(json!({"name": "Садик", "uins": [UIN]})), 0).is_ok());
    let errors = codes(Template::parse(&object(json!({"name": "Пусто"})), 0).unwrap_err());
    assert_eq!(errors, [("".to_string(), "template_empty")]);
    let errors = codes(
        Template::parse(
            &object(json!({"name": "Оба", "uins": [UIN], "purpose": "Взнос"})),
            0,
        )
        .unwrap_err(),
    );
    assert!(errors.iter().any(|(_, c)| *c == "template_ambiguous"));
}

#[test]
fn template_members_are_not_nullable() {
    let errors =
        codes(Template::parse(&object(json!({"name": "Садик", "uins": null})), 0).unwrap_err());
    assert_eq!(errors, [("/uins".to_string(), "invalid_type")]);
    let errors = codes(
        Template::parse(
            &object(json!({"name": "Взнос", "uins": null, "purpose": "Взнос",
                           "payee": {"name": "Фонд", "inn": "7701090559", "kpp": "770101001",
                                     "bic": "044525000", "account": "40601810245253000002"}})),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(errors, [("/uins".to_string(), "invalid_type")]);
    let errors = codes(
        Template::parse(
            &object(json!({"name": "Садик", "uins": [UIN], "payee": null})),
            0,
        )
        .unwrap_err(),
    );
    assert_eq!(errors, [("/payee".to_string(), "invalid_type")]);
}
