use super::*;
use serde_json::json;

fn body() -> Map<String, Value> {
    match json!({
        "amount": 150_000,
        "purpose": "Родительская плата, ноябрь",
        "kbk": "07511302992020000130",
        "oktmo": "45383000",
        "bill_date": "2026-11-01",
        "due_date": "2026-12-10",
        "category": "kindergarten",
        "payers": [{"kind": "snils", "value": "112-233-445 95"}],
    }) {
        Value::Object(o) => o,
        _ => unreachable!(),
    }
}

fn codes(object: &Map<String, Value>) -> Vec<(String, &'static str)> {
    match ChargeBody::parse(object) {
        Err(AppError::Validation(errors)) => {
            errors.into_iter().map(|e| (e.field, e.code)).collect()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_payee_may_be_left_to_the_registration() {
    let draft = ChargeBody::parse(&body()).unwrap();
    assert!(!draft.payee_given);
    let mut with = body();
    with.insert(
        "payee".into(),
        json!({"name": "Школа", "inn": "7707083893", "kpp": "770701001",
               "bic": "044525000", "account": "03234643350000007300"}),
    );
    let draft = ChargeBody::parse(&with).unwrap();
    assert!(draft.payee_given);
    assert_eq!(draft.body.payee.inn, "7707083893");
    with.insert("payee".into(), json!("7707083893"));
    assert_eq!(codes(&with), vec![("/payee".into(), "invalid_type")]);
}

#[test]
fn free_text_has_no_hidden_characters_and_a_length() {
    for purpose in [
        "Оплата \u{202e}moc.live\u{202c}",
        "Оплата\u{200b}",
        "Оплата\u{2066}x\u{2069}",
        "Оплата\u{7}",
    ] {
        let mut b = body();
        b.insert("purpose".into(), json!(purpose));
        assert_eq!(
            codes(&b),
            vec![("/purpose".into(), "invalid_characters")],
            "{purpose:?}"
        );
    }
    let mut long = body();
    long.insert("purpose".into(), json!("я".repeat(MAX_PURPOSE_CHARS + 1)));
    assert_eq!(codes(&long), vec![("/purpose".into(), "too_long")]);
    long.insert("purpose".into(), json!("я".repeat(MAX_PURPOSE_CHARS)));
    assert!(ChargeBody::parse(&long).is_ok());
}
