//! The `Token` every T-Bank request and notification carries: SHA-256 (lowercase hex)
//! over the values of the body's top-level scalars and the terminal password, in the
//! byte order of their keys. Nested objects and arrays (`DATA`, `Receipt`, …), nulls and
//! `Token` itself are not signed. Pure functions, so the bank's published examples are
//! their tests.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The token of `body` under `password`.
pub fn token(body: &Map<String, Value>, password: &str) -> String {
    // `BTreeMap<&str, _>` orders keys by their bytes, as the bank's reference (a Java
    // `TreeMap<String, String>` over ASCII keys) does; a locale order would not.
    let mut signed: BTreeMap<&str, Cow<'_, str>> = body
        .iter()
        .filter(|(key, _)| key.as_str() != "Token")
        .filter_map(|(key, value)| scalar_text(value).map(|text| (key.as_str(), text)))
        .collect();
    signed.insert("Password", Cow::Borrowed(password));
    let mut digest = Sha256::new();
    for value in signed.values() {
        digest.update(value.as_bytes());
    }
    hex(digest.finalize().as_slice())
}

/// A scalar as the bank renders it for signing: a string as is, a number in its JSON
/// decimal text, a boolean as `true`/`false`; anything else is not signed.
fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Signs a request body in place: sets its `Token`.
pub fn sign(body: &mut Map<String, Value>, password: &str) {
    let token = token(body, password);
    body.insert("Token".into(), Value::String(token));
}

/// Why a notification is not trusted. None of these carries the password or the
/// expected token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("the notification is not a JSON object")]
    NotAnObject,
    #[error("the notification carries no Token")]
    NoToken,
    #[error("the notification's Token does not match")]
    BadToken,
    #[error("the notification is for another terminal")]
    OtherTerminal,
}

/// Checks a notification's raw body before anything in it is trusted: its `Token`
/// (compared in constant time, case-insensitively: the bank sends lowercase) and its
/// `TerminalKey`. Answers the body as parsed; nested `DATA`/`Data` is not covered by the
/// token and must not be trusted even then.
pub fn verify_notification(
    raw: &[u8],
    terminal_key: &str,
    password: &str,
) -> Result<Map<String, Value>, NotificationError> {
    let body: Map<String, Value> =
        serde_json::from_slice(raw).map_err(|_| NotificationError::NotAnObject)?;
    let Some(Value::String(given)) = body.get("Token") else {
        return Err(NotificationError::NoToken);
    };
    let expected = token(&body, password);
    let given = given.to_ascii_lowercase();
    if !bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(NotificationError::BadToken);
    }
    // Checked after the token, so that a forged body learns nothing from which check
    // failed.
    match body.get("TerminalKey") {
        Some(Value::String(key)) if key == terminal_key => Ok(body),
        _ => Err(NotificationError::OtherTerminal),
    }
}

/// What the bank must read back from a notification it may stop sending: exactly this,
/// with HTTP 200.
pub const NOTIFICATION_ACK: &str = "OK";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    /// The published vectors (A–E) and one computed for GetState, shared with the
    /// local stand-in's own token code.
    const VECTORS: &str = include_str!("token_vectors.json");

    #[test]
    fn the_vectors() {
        let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
        assert_eq!(vectors.len(), 7);
        for v in vectors {
            let body = object(v["body"].clone());
            let password = v["password"].as_str().unwrap();
            assert_eq!(token(&body, password), v["token"], "{}", v["name"]);
        }
    }

    #[test]
    fn a_token_already_in_the_body_is_not_signed() {
        let mut body = object(json!({"TerminalKey": "TinkoffBankTest", "OrderId": "21057"}));
        sign(&mut body, "TinkoffBankTest");
        assert_eq!(
            body["Token"],
            "4c4c36adf9936b011879fa26f60759e7b47e57f7968283129b0ae9ac457486ab"
        );
        assert_eq!(
            token(&body, "TinkoffBankTest"),
            "4c4c36adf9936b011879fa26f60759e7b47e57f7968283129b0ae9ac457486ab"
        );
    }

    const VECTOR_D: &str = r#"{"TerminalKey":"1321054611234DEMO","OrderId":"201709","Success":true,"Status":"AUTHORIZED",
 "PaymentId":8742591,"ErrorCode":"0","Amount":9855,"CardId":322264,"Pan":"430000******0777",
 "ExpDate":"1122","RebillId":101709,"DATA":{"Route":"ACQ"},
 "Token":"b906d28e76c6428e37b25fcf86c0adc52c63d503013fdd632e300593d165766b"}"#;

    #[test]
    fn vector_d_the_docs_notification_verifies() {
        let body =
            verify_notification(VECTOR_D.as_bytes(), "1321054611234DEMO", "Dfsfh56dgKl").unwrap();
        assert_eq!(body["Status"], "AUTHORIZED");
    }

    #[test]
    fn an_uppercase_token_verifies_too() {
        let upper = VECTOR_D.replace(
            "b906d28e76c6428e37b25fcf86c0adc52c63d503013fdd632e300593d165766b",
            "B906D28E76C6428E37B25FCF86C0ADC52C63D503013FDD632E300593D165766B",
        );
        assert!(verify_notification(upper.as_bytes(), "1321054611234DEMO", "Dfsfh56dgKl").is_ok());
    }

    #[test]
    fn a_changed_signed_field_is_refused() {
        let forged = VECTOR_D.replace("\"Amount\":9855", "\"Amount\":985500");
        assert_eq!(
            verify_notification(forged.as_bytes(), "1321054611234DEMO", "Dfsfh56dgKl"),
            Err(NotificationError::BadToken)
        );
        let flipped = VECTOR_D.replace("\"Success\":true", "\"Success\":false");
        assert_eq!(
            verify_notification(flipped.as_bytes(), "1321054611234DEMO", "Dfsfh56dgKl"),
            Err(NotificationError::BadToken)
        );
    }

    #[test]
    fn the_unsigned_nested_data_may_change_without_the_token_noticing() {
        // Why nothing under DATA is ever trusted.
        let nested = VECTOR_D.replace("\"Route\":\"ACQ\"", "\"Route\":\"EVIL\"");
        assert!(verify_notification(nested.as_bytes(), "1321054611234DEMO", "Dfsfh56dgKl").is_ok());
    }

    #[test]
    fn another_password_or_terminal_is_refused() {
        assert_eq!(
            verify_notification(VECTOR_D.as_bytes(), "1321054611234DEMO", "wrong"),
            Err(NotificationError::BadToken)
        );
        assert_eq!(
            verify_notification(VECTOR_D.as_bytes(), "OtherTerminal", "Dfsfh56dgKl"),
            Err(NotificationError::OtherTerminal)
        );
    }

    #[test]
    fn a_body_without_a_token_or_not_an_object_is_refused() {
        assert_eq!(
            verify_notification(br#"{"TerminalKey":"T"}"#, "T", "p"),
            Err(NotificationError::NoToken)
        );
        assert_eq!(
            verify_notification(b"[1,2]", "T", "p"),
            Err(NotificationError::NotAnObject)
        );
        assert_eq!(
            verify_notification(b"OK", "T", "p"),
            Err(NotificationError::NotAnObject)
        );
    }
}
