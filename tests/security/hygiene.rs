//! Input hygiene: text that looks like one thing and is another. Invisible characters
//! that reorder or split what a citizen or operator reads, one letter typed as two code
//! points, and card numbers disguised by separators or by a token's prefix.

use serde_json::{json, Value};

use crate::scenario;
use crate::support::*;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        scenario!(invisible_characters_cannot_disguise_profile_text),
        scenario!(names_are_kept_in_one_unicode_form),
        scenario!(disguised_card_numbers_are_refused),
    ]
}

/// An address that reads `ул. Тверская, д. 1` on screen but holds a right-to-left
/// override, a zero-width space or a bidirectional isolate is refused, field by field,
/// and nothing is written.
async fn invisible_characters_cannot_disguise_profile_text(api: Api) {
    let (c, token) = citizen(&api).await;
    let reply = patch_new(
        &api,
        &token,
        json!({
            "personal": {"birthplace": "г. Москва\u{202E}авксоМ"},
            "addresses": {"registration": "ул.\u{200B}Тверская, д. 1",
                          "actual": "ул. \u{2066}Тверская\u{2069}, д. 1"},
        }),
    )
    .await;
    reply.assert_problem(422, "validation_failed");
    let mut errors = reply.field_errors();
    errors.sort();
    let expected: Vec<(String, String)> = [
        "/addresses/actual",
        "/addresses/registration",
        "/personal/birthplace",
    ]
    .iter()
    .map(|f| (f.to_string(), "invalid_characters".to_string()))
    .collect();
    assert_eq!(errors, expected, "{}", reply.body);
    // Nothing landed: the profile is still at its first version, without the fields.
    let now = profile(&api, &token).await;
    assert_eq!(now.body["version"], 0, "{}", now.body);
    assert_eq!(now.body["personal"]["birthplace"], Value::Null);
    let item = api
        .item(&format!("ACCOUNT#{}", c.account_id), "PROFILE")
        .await;
    assert!(
        item.is_none_or(|i| !all_text(&i).contains("Тверская")),
        "a refused address was stored"
    );
}

/// `Ёлкина` typed as `Е` + combining diaeresis is stored as the one letter `Ё`, so the
/// name matches registries and the same citizen's other records.
async fn names_are_kept_in_one_unicode_form(api: Api) {
    let (c, token) = citizen(&api).await;
    let reply = patch_new(
        &api,
        &token,
        json!({"personal": {"last_name": "Е\u{0308}лкина", "first_name": "Андреи\u{0306}"}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["personal"]["last_name"], "Ёлкина");
    assert_eq!(reply.body["personal"]["first_name"], "Андрей");
    let account = api
        .item(&format!("ACCOUNT#{}", c.account_id), "ACCOUNT")
        .await
        .unwrap_or_else(|| panic!("account item missing"));
    assert_eq!(string_attr(&account, "last_name"), "Ёлкина");

    // A zero-width space inside a name is refused, not stored.
    let reply = patch(
        &api,
        &token,
        Some("\"1\""),
        json!({"personal": {"first_name": "Ан\u{200B}дрей"}}),
    )
    .await;
    reply.assert_field_errors(&[("/personal/first_name", "invalid_characters")]);
}

/// A card number sent where a token belongs, dressed up so that a naive filter misses
/// it: a token's prefix glued on, dots or no-break spaces between the groups,
/// full-width digits. Each is refused before anything reads the body, and no payment
/// is opened.
async fn disguised_card_numbers_are_refused(api: Api) {
    let (c, token) = standard_payer(&api).await;
    for (n, disguised) in [
        "tok_4242424242424242",
        "ctok_4000_0000_0000_0002",
        "4242.4242.4242.4242",
        "4242\u{00A0}4242\u{00A0}4242\u{00A0}4242",
        "４２４２４２４２４２４２４２４２",
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"uins": [uin(20)], "method": {"type": "card", "token": disguised}});
        let key = format!("disguised-{}-{n}", c.account_id);
        let reply = pay(&api, &token, Some(&key), body).await;
        reply.assert_problem(422, "card_number_not_accepted");
        assert!(
            reply.body.to_string().contains("/method/token"),
            "{disguised}: {}",
            reply.body
        );
    }
    let archive = api.get_as(&token, "/v1/payments").await;
    assert_eq!(archive.status, 200, "{}", archive.body);
    assert_eq!(
        archive.body["payments"].as_array().map(Vec::len),
        Some(0),
        "{}",
        archive.body
    );
}
