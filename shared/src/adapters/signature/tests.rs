use time::Duration;

use super::sandbox_ca::{Authority, Holder};
use super::*;

const SNILS: &str = "11223344595";

fn holder(snils: Option<&str>) -> Holder<'_> {
    Holder {
        snils,
        surname: "Иванов",
        given_name: "Иван Иванович",
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn verifier() -> SandboxSignatureVerifier {
    SandboxSignatureVerifier::new().unwrap()
}

fn signed_by(ca: &Authority, snils: Option<&str>, content: &[u8]) -> String {
    let t = now();
    ca.issue(
        &holder(snils),
        t - Duration::hours(1),
        t + Duration::days(365),
    )
    .unwrap()
    .sign_detached(content)
    .unwrap()
}

#[test]
fn a_signature_by_a_sandbox_certificate_names_its_holder() {
    let content = [7u8; 32];
    let signature = signed_by(&Authority::sandbox().unwrap(), Some(SNILS), &content);
    let identity = verifier().verify(&signature, &content, now()).unwrap();
    assert_eq!(identity.snils, SNILS);
    assert_eq!(identity.surname.as_deref(), Some("Иванов"));
    assert_eq!(identity.given_name.as_deref(), Some("Иван Иванович"));
    assert_eq!(identity.serial.len(), 16);
    assert!(
        identity.issuer.contains("Uslugi sandbox"),
        "{}",
        identity.issuer
    );
    // With PEM armour and line breaks, as some plug-ins write it.
    let wrapped: Vec<String> = signature
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let pem = format!(
        "-----BEGIN CMS-----\n{}\n-----END CMS-----\n",
        wrapped.join("\n")
    );
    assert!(verifier().verify(&pem, &content, now()).is_ok());
}

#[test]
fn a_signature_over_another_challenge_is_refused() {
    let signature = signed_by(&Authority::sandbox().unwrap(), Some(SNILS), &[7u8; 32]);
    assert_eq!(
        verifier().verify(&signature, &[8u8; 32], now()),
        Err(SignatureRefusal::DigestMismatch)
    );
}

#[test]
fn an_authority_nobody_trusts_is_refused() {
    let content = [1u8; 32];
    let signature = signed_by(
        &Authority::untrusted("Другой УЦ").unwrap(),
        Some(SNILS),
        &content,
    );
    assert_eq!(
        verifier().verify(&signature, &content, now()),
        Err(SignatureRefusal::UntrustedIssuer)
    );
    // The sandbox authority's name on another key: the name matches, the key does not.
    let impostor =
        Authority::untrusted("Uslugi sandbox qualified certification authority").unwrap();
    let signature = signed_by(&impostor, Some(SNILS), &content);
    assert!(verifier().verify(&signature, &content, now()).is_err());
}

#[test]
fn an_expired_or_not_yet_valid_certificate_is_refused() {
    let ca = Authority::sandbox().unwrap();
    let content = [2u8; 32];
    let t = now();
    let expired = ca
        .issue(
            &holder(Some(SNILS)),
            t - Duration::days(400),
            t - Duration::days(35),
        )
        .unwrap()
        .sign_detached(&content)
        .unwrap();
    assert_eq!(
        verifier().verify(&expired, &content, t),
        Err(SignatureRefusal::Expired)
    );
    let early = ca
        .issue(
            &holder(Some(SNILS)),
            t + Duration::days(1),
            t + Duration::days(35),
        )
        .unwrap()
        .sign_detached(&content)
        .unwrap();
    assert_eq!(
        verifier().verify(&early, &content, t),
        Err(SignatureRefusal::Expired)
    );
}

#[test]
fn a_certificate_without_snils_is_refused() {
    let content = [3u8; 32];
    let signature = signed_by(&Authority::sandbox().unwrap(), None, &content);
    assert_eq!(
        verifier().verify(&signature, &content, now()),
        Err(SignatureRefusal::NoSnils)
    );
}

#[test]
fn what_is_not_a_signature_is_malformed() {
    for junk in ["", "не подпись", "AAAA", &"QUJD".repeat(5000)] {
        assert!(
            matches!(
                verifier().verify(junk, &[0u8; 32], now()),
                Err(SignatureRefusal::Malformed(_))
            ),
            "{junk:.20}"
        );
    }
}
