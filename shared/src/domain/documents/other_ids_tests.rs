//! Test vectors of the international passport, the military ID, a foreign document and
//! the dates they carry.

use super::super::tests::{accepts, code, date, refuses};
use super::*;

#[test]
fn international_passport_accepts_usual_forms() {
    accepts(
        InternationalPassport::parse,
        "number",
        InternationalPassport::as_str,
        &[
            ("75 1234567", "751234567"),
            ("751234567", "751234567"),
            (" 75 № 1234567 ", "751234567"),
            ("75\u{a0}1234567", "751234567"),
        ],
    );
    let p = InternationalPassport::parse("number", "75 1234567").unwrap();
    assert_eq!(
        (p.number(), p.formatted().as_str()),
        ("1234567", "75 1234567")
    );
    assert_eq!(format!("{p:?}"), "InternationalPassport(*******67)");
}

#[test]
fn international_passport_refusals() {
    refuses(
        InternationalPassport::parse,
        "number",
        &[
            ("75 123456", "international_passport_format"),
            ("75 12345678", "international_passport_format"),
            ("7A 1234567", "international_passport_format"),
            ("75-1234567", "international_passport_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn international_passport_is_valid_five_or_ten_years_to_the_day() {
    let field = "/documents/international_passport/expiry_date";
    let issued = date(2020, 3, 15);
    for expiry in [date(2025, 3, 15), date(2030, 3, 15)] {
        assert!(check_international_passport_validity(field, issued, expiry).is_ok());
    }
    for expiry in [
        date(2030, 3, 14),
        date(2030, 3, 16),
        date(2027, 3, 15),
        date(2035, 3, 15),
    ] {
        assert_eq!(
            code(check_international_passport_validity(field, issued, expiry)),
            "international_passport_validity",
            "{expiry}"
        );
    }
    // Issued on 29 February: either reading of the missing day.
    let leap = date(2016, 2, 29);
    for expiry in [date(2021, 2, 28), date(2021, 3, 1), date(2026, 2, 28)] {
        assert!(check_international_passport_validity(field, leap, expiry).is_ok());
    }
}

#[test]
fn military_id_accepts_usual_forms() {
    accepts(
        MilitaryId::parse,
        "military_id",
        MilitaryId::as_str,
        &[
            ("АК 1234567", "АК 1234567"),
            ("ак1234567", "АК 1234567"),
            ("АК № 1234567", "АК 1234567"),
            ("ЁЖ 7654321", "ЁЖ 7654321"),
        ],
    );
    let id = MilitaryId::parse("m", "АК 1234567").unwrap();
    assert_eq!(format!("{id:?}"), "MilitaryId(** *****67)");
}

#[test]
fn military_id_refusals() {
    refuses(
        MilitaryId::parse,
        "military_id",
        &[
            ("AK 1234567", "military_id_latin_letters"),
            ("АK 1234567", "military_id_latin_letters"),
            ("А1 1234567", "military_id_format"),
            ("АК 123456", "military_id_format"),
            ("АК 12345678", "military_id_format"),
            ("АК 123456Б", "military_id_format"),
            ("1234567", "military_id_format"),
            ("  ", "required"),
        ],
    );
}

#[test]
fn countries_are_iso_alpha3_and_not_russia() {
    for (input, canonical) in [("KAZ", "KAZ"), ("uzb", "UZB"), (" DEU ", "DEU")] {
        let country = Country::parse_foreign("country", input).unwrap();
        assert_eq!(country.as_str(), canonical);
    }
    refuses(
        Country::parse_foreign,
        "country",
        &[
            ("RUS", "country_russia"),
            ("rus", "country_russia"),
            ("XYZ", "country_unknown"),
            ("SUN", "country_unknown"),
            ("KZ", "country_format"),
            ("КАЗ", "country_format"),
            ("KAZA", "country_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn foreign_numbers_are_letters_and_digits_with_separators() {
    accepts(
        ForeignDocumentNumber::parse,
        "number",
        ForeignDocumentNumber::as_str,
        &[
            ("N12345678", "N12345678"),
            ("ab 123  456", "AB 123 456"),
            ("AB - 123456", "AB-123456"),
            ("ав–123456", "АВ-123456"),
            ("12345678901234567890", "12345678901234567890"),
        ],
    );
    refuses(
        ForeignDocumentNumber::parse,
        "number",
        &[
            ("AB--123", "foreign_document_number_format"),
            ("-AB123", "foreign_document_number_format"),
            ("AB123-", "foreign_document_number_format"),
            ("AB/123", "foreign_document_number_format"),
            ("AB_123", "foreign_document_number_format"),
            ("123456789012345678901", "foreign_document_number_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn issue_dates_are_neither_future_nor_before_birth() {
    let today = date(2026, 12, 6);
    let born = Some(date(1990, 5, 17));
    assert!(check_issue_date("d", date(2026, 12, 6), born, today).is_ok());
    assert!(check_issue_date("d", date(1990, 5, 17), born, today).is_ok());
    assert!(check_issue_date("d", date(1980, 1, 1), None, today).is_ok());
    assert_eq!(
        code(check_issue_date("d", date(2026, 12, 7), born, today)),
        "date_in_future"
    );
    assert_eq!(
        code(check_issue_date("d", date(1990, 5, 16), born, today)),
        "issue_before_birth"
    );
}

#[test]
fn expiry_dates_follow_the_issue_and_are_not_past() {
    let today = date(2026, 12, 6);
    let issued = date(2020, 1, 10);
    assert!(check_expiry_date("e", issued, date(2026, 12, 6), today).is_ok());
    assert!(check_expiry_date("e", issued, date(2030, 1, 10), today).is_ok());
    assert_eq!(
        code(check_expiry_date("e", issued, issued, today)),
        "expiry_before_issue"
    );
    assert_eq!(
        code(check_expiry_date("e", issued, date(2019, 1, 1), today)),
        "expiry_before_issue"
    );
    assert_eq!(
        code(check_expiry_date("e", issued, date(2026, 12, 5), today)),
        "document_expired"
    );
}

#[test]
fn passports_are_replaced_at_20_and_45() {
    let born = date(1990, 5, 17);
    // Issued at 14: due on the 20th birthday.
    assert_eq!(
        passport_replacement(born, date(2004, 6, 1)),
        Some((20, date(2010, 5, 17)))
    );
    // Issued after the 20th birthday (a late first passport, or the replacement): 45.
    assert_eq!(
        passport_replacement(born, date(2010, 6, 1)),
        Some((45, date(2035, 5, 17)))
    );
    assert_eq!(
        passport_replacement(born, date(2010, 5, 17)),
        Some((45, date(2035, 5, 17)))
    );
    // The day before the 20th birthday still needs the replacement at 20.
    assert_eq!(
        passport_replacement(born, date(2010, 5, 16)),
        Some((20, date(2010, 5, 17)))
    );
    // Issued at 45 or later: for life.
    assert_eq!(passport_replacement(born, date(2035, 5, 17)), None);
    // Born on 29 February: the birthday in a common year is 28 February.
    assert_eq!(
        passport_replacement(date(2004, 2, 29), date(2018, 3, 1)),
        Some((20, date(2024, 2, 29)))
    );
    assert_eq!(
        passport_replacement(date(2004, 2, 29), date(2024, 3, 1)),
        Some((45, date(2049, 2, 28)))
    );
}

#[test]
fn separate_series_and_number_fields() {
    let p = InternationalPassport::from_parts("s", "75", "n", "№ 1234567").unwrap();
    assert_eq!(p.as_str(), "751234567");
    let err = InternationalPassport::from_parts("s", "7", "n", "1234567").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.code),
        ("/s", "international_passport_series_format")
    );
    let err = InternationalPassport::from_parts("s", "75", "n", "123456").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.code),
        ("/n", "international_passport_number_format")
    );

    let id = MilitaryId::from_parts("s", "ак", "n", "1234567").unwrap();
    assert_eq!(
        (id.as_str(), id.series(), id.number()),
        ("АК 1234567", "АК", "1234567")
    );
    for (series, number, field, expected) in [
        ("AK", "1234567", "/s", "military_id_latin_letters"),
        ("А", "1234567", "/s", "military_id_series_format"),
        ("А1", "1234567", "/s", "military_id_series_format"),
        ("АК", "12345", "/n", "military_id_number_format"),
        ("", "1234567", "/s", "required"),
    ] {
        let err = MilitaryId::from_parts("s", series, "n", number).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            (field, expected),
            "{series} {number}"
        );
    }
}
