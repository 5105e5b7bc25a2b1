//! Card numbers: recognised so that they can be refused. The portal never takes a card
//! number; cards are entered on the payment gateway's own page, which hands back a token.

use serde_json::Value;

/// Whether `digits` (ASCII digits only) passes the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `c` may stand between the digit groups of a card number as people type or
/// paste them: spaces of any width, hyphens and dashes, dots, slashes, underscores.
fn is_group_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '‐' | '‑' | '‒' | '–' | '—' | '.' | '/' | '_')
}

/// Whether a text holds what looks like a card number: 13 to 19 digits in a row, one
/// separator allowed between any two of them (spaces, dashes, dots, slashes,
/// underscores, as people type them), passing the Luhn check. Full-width and other
/// compatibility digits count as digits (the text is read in NFKC).
pub fn looks_like_card_number(text: &str) -> bool {
    let folded = crate::domain::nfkc(text);
    let mut run = String::new();
    let check = |run: &mut String| {
        let found = (13..=19).contains(&run.len()) && luhn_valid(run);
        run.clear();
        found
    };
    let mut chars = folded.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            run.push(c);
        } else if is_group_separator(c)
            && !run.is_empty()
            && chars.peek().is_some_and(char::is_ascii_digit)
        {
            continue;
        } else if check(&mut run) {
            return true;
        }
    }
    check(&mut run)
}

/// Whether `s` is an identifier the portal or the gateway hands out (`tok_…`): one of
/// `prefixes`, then a random part of letters, digits, `_` and `-` that holds at least
/// one letter. A random part of digits alone is what a card number with a prefix glued
/// on looks like, and is read as one.
fn is_identifier(s: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| {
        s.strip_prefix(p).is_some_and(|rest| {
            rest.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && rest.bytes().any(|b| b.is_ascii_alphabetic())
        })
    })
}

/// The JSON Pointer of the first string or number in `value` that looks like a card
/// number, skipping the members named in `except` (at any depth) and identifiers that
/// start with one of `id_prefixes` (`tok_…`: a gateway token's random part may hold a
/// long run of digits that passes the Luhn check by chance).
pub fn find_card_number(value: &Value, except: &[&str], id_prefixes: &[&str]) -> Option<String> {
    fn walk(value: &Value, path: &str, except: &[&str], prefixes: &[&str]) -> Option<String> {
        match value {
            Value::String(s) => {
                (!is_identifier(s, prefixes) && looks_like_card_number(s)).then(|| path.to_string())
            }
            Value::Number(n) => looks_like_card_number(&n.to_string()).then(|| path.to_string()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| walk(v, &format!("{path}/{i}"), except, prefixes)),
            Value::Object(members) => members
                .iter()
                .filter(|(k, _)| !except.contains(&k.as_str()))
                .find_map(|(k, v)| walk(v, &format!("{path}/{k}"), except, prefixes)),
            _ => None,
        }
    }
    walk(value, "", except, id_prefixes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn luhn() {
        for (number, valid) in [
            ("4242424242424242", true),
            ("4000000000000002", true),
            ("4000000000009995", true),
            ("4000000000003220", true),
            ("4000000000000119", true),
            ("2200000000000004", true),
            ("5555555555554444", true),
            ("4242424242424241", false),
            ("", false),
            ("42a2", false),
        ] {
            assert_eq!(luhn_valid(number), valid, "{number}");
        }
    }

    #[test]
    fn card_numbers_are_found_however_typed() {
        for (typed, card) in [
            ("4242 4242 4242 4242", true),
            ("card: 4242-4242-4242-4242.", true),
            ("4242 4242 4242 4241", false),
            // Phones, UINs, SNILS are not card numbers.
            ("+79318702901", false),
            ("18810177200000012349", false),
            ("112-233-445 95", false),
        ] {
            assert_eq!(looks_like_card_number(typed), card, "{typed}");
        }
        let body = json!({"method": {"type": "card", "note": ["x", 4242424242424242u64]},
                          "uins": ["4242424242424242"]});
        assert_eq!(
            find_card_number(&body, &["uins"], &[]).as_deref(),
            Some("/method/note/1")
        );
        assert_eq!(
            find_card_number(&json!({"token": "tok_abc"}), &[], &[]),
            None
        );
        // A token whose random part holds a Luhn-valid run of digits is a token.
        let lucky = json!({"token": "tok_ab4242424242424242cd"});
        assert_eq!(find_card_number(&lucky, &[], &["tok_"]), None);
        assert!(find_card_number(&lucky, &[], &[]).is_some());
        // A card number with a prefix glued on by a space is still refused.
        let glued = json!({"token": "tok_ 4242424242424242"});
        assert!(find_card_number(&glued, &[], &["tok_"]).is_some());
        // A prefix glued on without a space does not make a card number a token.
        for disguised in [
            "tok_4242424242424242",
            "pm_4242-4242-4242-4242",
            "ctok_4242_4242_4242_4242",
        ] {
            let body = json!({ "token": disguised });
            assert_eq!(
                find_card_number(&body, &[], &["tok_", "ctok_", "pm_"]).as_deref(),
                Some("/token"),
                "{disguised}"
            );
        }
    }

    #[test]
    fn separators_and_compatibility_digits_do_not_hide_a_card_number() {
        for typed in [
            "4242.4242.4242.4242",
            "4242/4242/4242/4242",
            "4242_4242_4242_4242",
            "4242\u{00A0}4242\u{00A0}4242\u{00A0}4242",
            "4242\u{2009}4242\u{2009}4242\u{2009}4242",
            "4242–4242–4242–4242",
            "４２４２４２４２４２４２４２４２",
            "карта:4242424242424242!",
        ] {
            assert!(looks_like_card_number(typed), "{typed}");
        }
        // Two separators in a row end a run: a list of small numbers is not a card.
        assert!(!looks_like_card_number("4242, 4242, 4242, 4242"));
        assert!(!looks_like_card_number("2026-12-05 10:00, 1 500.00 ₽"));
    }
}
