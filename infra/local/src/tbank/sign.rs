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

    #[test]
    fn the_published_vectors() {
        let vectors: Vec<Value> = serde_json::from_str(include_str!(
            "../../../../shared/src/adapters/tbank/token_vectors.json"
        ))
        .unwrap();
        assert!(!vectors.is_empty());
        for v in vectors {
            let body = v["body"].as_object().cloned().unwrap();
            let password = v["password"].as_str().unwrap();
            assert_eq!(token(&body, password), v["token"], "{}", v["name"]);
        }
    }
}
