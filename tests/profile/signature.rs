//! Confirmation by a qualified electronic signature: the citizen signs a challenge with a
//! certificate of the sandbox certification authority (issued here, as a citizen's
//! signing token would hold it).

use base64::Engine as _;
use serde_json::{json, Value};
use shared::adapters::signature::sandbox_ca::{Authority, Holder};
use time::{Duration, OffsetDateTime};

use crate::support::*;

const CHALLENGES: &str = "/v1/account/signature-challenges";
const CONFIRMATIONS: &str = "/v1/account/signature-confirmations";

/// The challenge's bytes signed by `authority` for `holder`, valid from `from` to `to`.
fn signed(
    authority: &Authority,
    holder: &Holder<'_>,
    (from, to): (OffsetDateTime, OffsetDateTime),
    challenge: &Value,
) -> String {
    let content = base64::engine::general_purpose::STANDARD
        .decode(text(&challenge["challenge"]))
        .expect("the challenge is base64");
    authority
        .issue(holder, from, to)
        .expect("a sandbox certificate")
        .sign_detached(&content)
        .expect("a signature")
}

pub async fn an_e_signature_confirms_the_account(api: Api) {
    let snils = snils_of("684");
    let (c, token) = standard_citizen(&api, &snils, &verifiable_passport_number()).await;
    let digits: String = snils.chars().filter(char::is_ascii_digit).collect();
    let now = OffsetDateTime::now_utc();
    let valid = (now - Duration::hours(1), now + Duration::days(365));
    let sandbox = Authority::sandbox().expect("the sandbox authority");
    // The names registration gave the citizen, as the certificate writes them.
    let citizen = Holder {
        snils: Some(&digits),
        surname: "ИВАНОВ",
        given_name: "Петр Сергеевич",
    };

    // A simplified citizen cannot ask.
    let (_, simplified) = crate::support::citizen(&api).await;
    api.post_as(&simplified, CHALLENGES, json!({}))
        .await
        .assert_problem(409, "account_not_standard");

    let issued = api.post_as(&token, CHALLENGES, json!({})).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    let challenge = issued.body.clone();
    let answer = |signature: String| json!({"challenge_id": challenge["challenge_id"], "signature": signature});

    // An authority nobody trusts, an expired certificate, another citizen's SNILS: each
    // refused at /signature, the account still standard.
    let untrusted = Authority::untrusted("Посторонний УЦ").expect("an authority");
    let refusals = [
        (
            signed(&untrusted, &citizen, valid, &challenge),
            "certificate_untrusted",
        ),
        (
            signed(
                &sandbox,
                &citizen,
                (now - Duration::days(400), now - Duration::days(1)),
                &challenge,
            ),
            "certificate_expired",
        ),
        (
            signed(
                &sandbox,
                &Holder {
                    snils: Some("13875932508"),
                    ..citizen
                },
                valid,
                &challenge,
            ),
            "snils_mismatch",
        ),
    ];
    for (signature, code) in refusals {
        api.post_as(&token, CONFIRMATIONS, answer(signature))
            .await
            .assert_field_errors(&[("/signature", code)]);
    }
    let profile = api.get_as(&token, "/v1/profile").await;
    assert_eq!(profile.body["level"], "standard", "{}", profile.body);

    // The citizen's own certificate confirms the account.
    let done = api
        .post_as(
            &token,
            CONFIRMATIONS,
            answer(signed(&sandbox, &citizen, valid, &challenge)),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body, json!({"level": "confirmed"}));
    let profile = api.get_as(&token, "/v1/profile").await;
    assert_eq!(profile.body["level"], "confirmed", "{}", profile.body);
    // Told by e-mail and SMS, and in the inbox.
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter()
            .any(|m| m["subject"] == "Учётная запись подтверждена"),
        "{mail:?}"
    );
    let sms = api.outbox(&c.phone).await;
    assert!(
        sms.iter().any(|m| m["text"]
            .as_str()
            .is_some_and(|t| t.contains("подтверждена электронной подписью"))),
        "{sms:?}"
    );
    let inbox = api.get_as(&token, "/v1/inbox?category=confirmation").await;
    assert_eq!(inbox.status, 200, "{}", inbox.body);
    assert!(
        inbox
            .body
            .to_string()
            .contains("подтверждена электронной подписью"),
        "{}",
        inbox.body
    );
    // The challenge is spent; a confirmed account asks for no other.
    api.post_as(
        &token,
        CONFIRMATIONS,
        answer(signed(&sandbox, &citizen, valid, &challenge)),
    )
    .await
    .assert_problem(409, "already_confirmed");
    api.post_as(&token, CHALLENGES, json!({}))
        .await
        .assert_problem(409, "already_confirmed");
}

const BANK_CHALLENGES: &str = "/v1/account/bank-id-challenges";
const BANK_CONFIRMATIONS: &str = "/v1/account/bank-id-confirmations";

pub async fn a_bank_confirms_the_account(api: Api) {
    use shared::adapters::bank_id::{sandbox_id_token, IdTokenClaims, PORTAL_CLIENT_ID};

    let snils = snils_of("685");
    let (c, token) = standard_citizen(&api, &snils, &verifiable_passport_number()).await;
    let digits: String = snils.chars().filter(char::is_ascii_digit).collect();
    let names = ("Иванов", "Пётр", Some("Сергеевич"));

    let issued = api.post_as(&token, BANK_CHALLENGES, json!({})).await;
    assert_eq!(issued.status, 201, "{}", issued.body);
    assert_eq!(issued.body["client_id"], PORTAL_CLIENT_ID);
    let nonce = text(&issued.body["nonce"]);
    let id_token = |claims: &IdTokenClaims| sandbox_id_token(claims).expect("a sandbox token");
    let answer = |id_token: String| json!({"challenge_id": issued.body["challenge_id"], "id_token": id_token});

    // Another login's nonce, another citizen, a token whose payload was swapped: each
    // refused at /id_token.
    let refusals = [
        (
            id_token(&IdTokenClaims::sandbox(&digits, names, "another-login")),
            "nonce_mismatch",
        ),
        (
            id_token(&IdTokenClaims::sandbox("13875932508", names, &nonce)),
            "snils_mismatch",
        ),
        (
            {
                let real = id_token(&IdTokenClaims::sandbox(&digits, names, &nonce));
                let other = id_token(&IdTokenClaims::sandbox("13875932508", names, &nonce));
                let mut parts: Vec<&str> = real.split('.').collect();
                let swapped = other.split('.').nth(1).unwrap_or_default().to_string();
                parts[1] = &swapped;
                parts.join(".")
            },
            "id_token_untrusted",
        ),
    ];
    for (id_token, code) in refusals {
        api.post_as(&token, BANK_CONFIRMATIONS, answer(id_token))
            .await
            .assert_field_errors(&[("/id_token", code)]);
    }

    let done = api
        .post_as(
            &token,
            BANK_CONFIRMATIONS,
            answer(id_token(&IdTokenClaims::sandbox(&digits, names, &nonce))),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let profile = api.get_as(&token, "/v1/profile").await;
    assert_eq!(profile.body["level"], "confirmed", "{}", profile.body);
    let mail = api.outbox(&c.email).await;
    assert!(
        mail.iter()
            .any(|m| m["text"].as_str().is_some_and(|t| t.contains("через банк"))),
        "{mail:?}"
    );
    let inbox = api.get_as(&token, "/v1/inbox?category=confirmation").await;
    assert!(
        inbox.body.to_string().contains("через банк"),
        "{}",
        inbox.body
    );
}
