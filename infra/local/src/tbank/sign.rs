//! The bank's `Token`, computed here on its own (not borrowed from the adapter), so the
//! stand-in checks the adapter rather than agreeing with it by construction.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// SHA-256, lowercase hex, over the values of the top-level scalars and `Password`,
/// ordered by their keys' bytes; `Token`, nulls, objects and arrays are left out.
pub fn token(body: &Map<String, Value>, password: &str) -> String {
    let mut pairs = BTreeMap::new();
    for (key, value) in body {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if key != "Token" {
            pairs.insert(key.as_str(), text);
        }
    }
    pairs.insert("Password", password.to_string());
    let joined: String = pairs.into_values().collect();
    Sha256::digest(joined.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn the_published_vectors() {
        let init = object(json!({"TerminalKey":"MerchantTerminalKey","Amount":19200,
            "OrderId":"21090","Description":"Подарочная карта на 1000 рублей","DATA":{"a":"b"}}));
        assert_eq!(
            token(&init, "usaf8fw8fsw21g"),
            "0024a00af7c350a3a67ca168ce06502aa72772456662e38696d48b56ee9c97d9"
        );
        let check = object(json!({"TerminalKey":"TinkoffBankTest","OrderId":"21057"}));
        assert_eq!(
            token(&check, "TinkoffBankTest"),
            "4c4c36adf9936b011879fa26f60759e7b47e57f7968283129b0ae9ac457486ab"
        );
        let note = object(json!({"TerminalKey":"1321054611234DEMO","OrderId":"201709",
            "Success":true,"Status":"AUTHORIZED","PaymentId":8742591,"ErrorCode":"0",
            "Amount":9855,"CardId":322264,"Pan":"430000******0777","ExpDate":"1122",
            "RebillId":101709,"DATA":{"Route":"ACQ"},"Token":"x"}));
        assert_eq!(
            token(&note, "Dfsfh56dgKl"),
            "b906d28e76c6428e37b25fcf86c0adc52c63d503013fdd632e300593d165766b"
        );
        let charge = object(
            json!({"TerminalKey":"TinkoffBankTest","PaymentId":"700001702044",
            "RebillId":"145919","IP":"10.0.0.1","InfoEmail":"a@b.ru","SendEmail":true}),
        );
        assert_eq!(
            token(&charge, "TinkoffBankTest"),
            "db073a3dc6a56f02e94dbcf28b0768e692ee46ed8cc4619b783f7290f1b1ad6d"
        );
    }
}
