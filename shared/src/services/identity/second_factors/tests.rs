//! Unit tests of the second factors' parsing and naming.

use super::*;

#[test]
fn factor_refs_are_the_phone_the_codes_or_an_app() {
    assert_eq!(FactorRef::parse("sms").unwrap(), FactorRef::Sms);
    assert_eq!(
        FactorRef::parse("backup_codes").unwrap(),
        FactorRef::BackupCodes
    );
    let id = FactorId::new();
    assert_eq!(FactorRef::parse(&id).unwrap(), FactorRef::App(id.clone()));
    assert!(matches!(
        FactorRef::parse("af_nope"),
        Err(AppError::NotFound("factor"))
    ));
}

#[test]
fn names_are_trimmed_and_bounded() {
    assert_eq!(factor_name("  Телефон   Маши ").unwrap(), "Телефон Маши");
    assert!(factor_name("   ").is_err());
    assert!(factor_name(&"я".repeat(41)).is_err());
    assert!(factor_name(&"я".repeat(40)).is_ok());
    assert!(factor_name("Теле\u{200b}фон").is_err());
}

#[test]
fn the_phone_is_masked_in_the_list() {
    assert_eq!(masked_phone("+79318702950"), "SMS на +7 *** ***-**-50");
}

#[test]
fn second_factors_read_back() {
    for f in [
        SecondFactor::Sms,
        SecondFactor::App,
        SecondFactor::BackupCode,
        SecondFactor::Passkey,
    ] {
        assert_eq!(SecondFactor::parse("f", f.as_str()).unwrap(), f);
    }
    assert!(SecondFactor::parse("f", "totp").is_err());
}
