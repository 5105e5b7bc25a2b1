use super::*;

/// The refusal code; also checks that the citizen is told in Russian.
pub(super) fn code<T: fmt::Debug>(result: Result<T, FieldError>) -> &'static str {
    let err = result.unwrap_err();
    assert!(
        err.detail.chars().any(|c| matches!(c, 'А'..='я')),
        "{}",
        err.detail
    );
    err.code
}

/// Checks that each input is refused with its code, as [`code`] reads it.
pub(super) fn refuses<T: fmt::Debug>(
    parse: impl Fn(&str, &str) -> Result<T, FieldError>,
    field: &str,
    cases: &[(&str, &str)],
) {
    for (input, expected) in cases {
        assert_eq!(code(parse(field, input)), *expected, "{input}");
    }
}

/// Checks that each input is accepted and kept in its canonical form, as `shown` reads it.
pub(super) fn accepts<T>(
    parse: impl Fn(&str, &str) -> Result<T, FieldError>,
    field: &str,
    shown: impl Fn(&T) -> &str,
    cases: &[(&str, &str)],
) {
    for (input, canonical) in cases {
        let value = parse(field, input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(shown(&value), *canonical, "{input}");
    }
}

pub(super) fn date(year: i32, month: u8, day: u8) -> Date {
    Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap()
}

// -------------------------------------------------------------- SNILS

#[test]
fn snils_accepts_every_usual_form() {
    for input in [
        "138-759-325 08",
        "13875932508",
        "138 759 325 08",
        "138-759-325-08",
        " 138-759-325 08 ",
        "138\u{a0}759\u{a0}325\u{a0}08",
        "138\u{2011}759\u{2013}325 08",
        "1387 5932 508",
    ] {
        let snils = Snils::parse("snils", input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
        assert_eq!(snils.as_str(), "13875932508", "{input}");
        assert_eq!(snils.formatted(), "138-759-325 08", "{input}");
    }
}

#[test]
fn snils_reference_vectors_and_checksum_branches() {
    accepts(
        Snils::parse,
        "snils",
        Snils::as_str,
        &[
            ("138-759-325 08", "13875932508"), // sum 210 → 210 mod 101 = 8
            ("112-233-445 95", "11223344595"), // sum 95 < 100
            ("001-019-989 00", "00101998900"), // sum 100 → 00
            ("001-029-985 00", "00102998500"), // sum 101 → 00
            ("642-185-924 00", "64218592400"), // sum 201 → mod 101 = 100 → 00
            ("001-001-999 65", "00100199965"), // first number the rule covers
        ],
    );
}

#[test]
fn snils_up_to_001_001_998_has_no_checksum() {
    for input in ["001-001-998 00", "001-001-998 47", "000-000-001 99"] {
        assert!(Snils::parse("snils", input).is_ok(), "{input}");
    }
    assert_eq!(
        code(Snils::parse("snils", "001-001-999 66")),
        "snils_checksum"
    );
}

#[test]
fn snils_refusals() {
    refuses(
        Snils::parse,
        "snils",
        &[
            ("112-233-445 96", "snils_checksum"),
            ("138-759-325 09", "snils_checksum"),
            ("642-185-924 100", "snils_format"),
            ("1387593250", "snils_format"),
            ("138759325080", "snils_format"),
            ("138-759-325 0a", "snils_format"),
            ("138.759.325 08", "snils_format"),
            ("138-759-325 0８", "snils_format"),
            ("СНИЛС 13875932508", "snils_format"),
            ("", "required"),
            ("   ", "required"),
        ],
    );
    let err = Snils::parse("documents/snils", "112-233-445 96").unwrap_err();
    assert_eq!(err.field, "/documents/snils");
}

// -------------------------------------------------------------- INN

#[test]
fn inn_reference_vectors() {
    let org = Inn::parse("inn", "7707083893").unwrap();
    assert_eq!(
        (org.as_str(), org.kind()),
        ("7707083893", InnKind::Organisation)
    );
    let person = Inn::parse("inn", " 5001 0073 2259 ").unwrap();
    assert_eq!(
        (person.as_str(), person.kind()),
        ("500100732259", InnKind::Person)
    );
    assert_eq!(
        Inn::parse_personal("inn", "500100732259").unwrap().as_str(),
        "500100732259"
    );
}

#[test]
fn inn_refusals() {
    refuses(
        Inn::parse,
        "inn",
        &[
            ("7707083894", "inn_checksum"),
            ("500100732258", "inn_checksum"),
            ("500100732269", "inn_checksum"),
            ("770708389", "inn_format"),
            ("77070838931", "inn_format"),
            ("5001007322590", "inn_format"),
            ("7707-083893", "inn_format"),
            ("ИНН 7707083893", "inn_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn personal_inn_refuses_an_organisation_number() {
    refuses(
        Inn::parse_personal,
        "inn",
        &[
            ("7707083893", "inn_not_personal"),
            ("7707083894", "inn_not_personal"),
            ("500100732258", "inn_checksum"),
            ("50010073225", "inn_format"),
            ("50010073225x", "inn_format"),
            (" ", "required"),
        ],
    );
}

// -------------------------------------------------------------- KPP

#[test]
fn kpp_forms_and_refusals() {
    accepts(
        Kpp::parse,
        "kpp",
        Kpp::as_str,
        &[
            ("773601001", "773601001"),
            ("7736AB001", "7736AB001"),
            ("7736ab001", "7736AB001"),
            (" 7736 01 001 ", "773601001"),
        ],
    );
    refuses(
        Kpp::parse,
        "kpp",
        &[
            ("77360100", "kpp_format"),
            ("7736010011", "kpp_format"),
            ("7736АБ001", "kpp_format"),
            ("77A601001", "kpp_format"),
            ("773601OO1", "kpp_format"),
            ("7736-01-001", "kpp_format"),
            ("", "required"),
        ],
    );
}

// -------------------------------------------------------------- UIN

#[test]
fn uin_reference_vectors() {
    for input in [
        "18810177220000000015",
        "03554310101220400005",
        "1881017722000000001123450",
    ] {
        assert_eq!(Uin::parse("uin", input).unwrap().as_str(), input);
    }
    assert_eq!(
        Uin::parse("uin", " 1881 0177 2200 0000 0015 ")
            .unwrap()
            .as_str(),
        "18810177220000000015"
    );
}

#[test]
fn uin_second_pass_accepts_either_reading_of_the_weights() {
    // First pass gives 10 for each body below.
    // Weights 3…12: 4; weights 3…10, 1, 2: 1.
    assert!(Uin::parse("uin", "18810177220000000044").is_ok());
    assert!(Uin::parse("uin", "18810177220000000041").is_ok());
    assert_eq!(
        code(Uin::parse("uin", "18810177220000000043")),
        "uin_checksum"
    );
    // Both readings agree on 6.
    assert!(Uin::parse("uin", "18810177220000000976").is_ok());
    assert_eq!(
        code(Uin::parse("uin", "18810177220000000977")),
        "uin_checksum"
    );
    // Second pass gives 10 again under both readings: the check digit is 0.
    assert!(Uin::parse("uin", "18810177220000005670").is_ok());
    assert_eq!(
        code(Uin::parse("uin", "18810177220000005671")),
        "uin_checksum"
    );
}

#[test]
fn uin_refusals() {
    refuses(
        Uin::parse,
        "uin",
        &[
            ("18810177220000000016", "uin_checksum"),
            ("03554310101220400004", "uin_checksum"),
            ("1881017722000000001123451", "uin_checksum"),
            ("188101772200000000", "uin_format"),
            ("1881017722000000001", "uin_format"),
            ("188101772200000000155", "uin_format"),
            ("18810177220000000015!", "uin_format"),
            ("1881-0177-2200-0000-0015", "uin_format"),
            ("1881017722000000001123A50", "uin_letters"),
            ("18810177220000000О15", "uin_letters"),
            ("", "required"),
        ],
    );
}

// -------------------------------------------------------------- passport

#[test]
fn passport_series_number_and_whole() {
    for input in ["4510", "45 10", " 45 10 "] {
        let series = PassportSeries::parse("series", input).unwrap();
        assert_eq!(series.as_str(), "4510");
        assert_eq!(series.formatted(), "45 10");
    }
    for input in ["123456", "123 456", "№ 123456", "№123456"] {
        assert_eq!(
            PassportNumber::parse("number", input).unwrap().as_str(),
            "123456"
        );
    }
    for input in [
        "45 10 123456",
        "4510 123456",
        "4510123456",
        "45 10 № 123456",
        " 45 10  123456 ",
    ] {
        let passport = Passport::parse("passport", input).unwrap();
        assert_eq!(passport.series.as_str(), "4510", "{input}");
        assert_eq!(passport.number.as_str(), "123456", "{input}");
        assert_eq!(passport.formatted(), "45 10 123456", "{input}");
    }
}

#[test]
fn passport_refusals() {
    refuses(
        PassportSeries::parse,
        "s",
        &[
            ("451", "passport_series_format"),
            ("45100", "passport_series_format"),
            ("45-10", "passport_series_format"),
            ("45 1O", "passport_series_format"),
            ("", "required"),
        ],
    );
    refuses(
        PassportNumber::parse,
        "n",
        &[
            ("12345", "passport_number_format"),
            ("1234567", "passport_number_format"),
            ("12345a", "passport_number_format"),
            ("123-456", "passport_number_format"),
            (" ", "required"),
        ],
    );
    refuses(
        Passport::parse,
        "p",
        &[
            ("45 10 12345", "passport_format"),
            ("45 10 1234567", "passport_format"),
            ("45 1O 123456", "passport_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn department_code_forms_and_refusals() {
    for input in [
        "770-001",
        "770001",
        "770 001",
        " 770 - 001 ",
        "770–001",
        "770‑001",
    ] {
        assert_eq!(
            DepartmentCode::parse("department_code", input)
                .unwrap_or_else(|e| panic!("{input}: {e:?}"))
                .as_str(),
            "770-001"
        );
    }
    refuses(
        DepartmentCode::parse,
        "d",
        &[
            ("77-0001", "department_code_format"),
            ("770-01", "department_code_format"),
            ("7700011", "department_code_format"),
            ("770_001", "department_code_format"),
            ("770-00a", "department_code_format"),
            ("770--001", "department_code_format"),
            ("770-001-", "department_code_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn passport_issue_date_not_in_future_nor_before_14() {
    let today = date(2024, 6, 1);
    let check = |issue, birth| check_passport_issue_date("issue_date", issue, birth, today);
    assert!(check(today, None).is_ok());
    assert!(check(date(2014, 5, 10), Some(date(2000, 5, 10))).is_ok());
    assert!(check(today, Some(date(2010, 6, 1))).is_ok());
    assert_eq!(
        code(check(date(2024, 6, 2), None)),
        "passport_issue_in_future"
    );
    assert_eq!(
        code(check(date(2024, 6, 2), Some(date(1980, 1, 1)))),
        "passport_issue_in_future"
    );
    assert_eq!(
        code(check(date(2014, 5, 9), Some(date(2000, 5, 10)))),
        "passport_issue_before_14"
    );
    assert_eq!(
        code(check(date(1999, 1, 1), Some(date(2000, 5, 10)))),
        "passport_issue_before_14"
    );
    let err = check(date(2014, 5, 9), Some(date(2000, 5, 10))).unwrap_err();
    assert_eq!(err.field, "/issue_date");
}

#[test]
fn passport_issue_date_for_29_february_birthdays() {
    let today = date(2024, 6, 1);
    let born = Some(date(2008, 2, 29));
    let check = |issue| check_passport_issue_date("issue_date", issue, born, today);
    assert!(check(date(2022, 2, 28)).is_ok());
    assert!(check(date(2022, 3, 1)).is_ok());
    assert_eq!(code(check(date(2022, 2, 27))), "passport_issue_before_14");
    // An ordinary 28 February birthday is not moved.
    let born = Some(date(2008, 2, 28));
    assert!(check_passport_issue_date("d", date(2022, 2, 28), born, today).is_ok());
    assert_eq!(
        code(check_passport_issue_date(
            "d",
            date(2022, 2, 27),
            born,
            today
        )),
        "passport_issue_before_14"
    );
}

#[test]
fn passport_issue_date_at_the_end_of_the_calendar() {
    let today = date(9999, 12, 31);
    assert_eq!(
        code(check_passport_issue_date(
            "d",
            today,
            Some(date(9990, 1, 1)),
            today
        )),
        "passport_issue_before_14"
    );
}

// -------------------------------------------------------------- birth certificate

#[test]
fn birth_certificate_forms() {
    accepts(
        BirthCertificate::parse,
        "birth_certificate",
        BirthCertificate::as_str,
        &[
            ("IV-МЮ 123456", "IV-МЮ 123456"),
            ("IV-МЮ123456", "IV-МЮ 123456"),
            (" iv-мю 123456 ", "IV-МЮ 123456"),
            ("IV МЮ 123456", "IV-МЮ 123456"),
            ("IV - МЮ № 123456", "IV-МЮ 123456"),
            ("IV–МЮ 123456", "IV-МЮ 123456"),
            ("IV-Мю 123456", "IV-МЮ 123456"),
            ("ІV-МЮ 123456", "IV-МЮ 123456"),
            ("ХII-ЖА 000001", "XII-ЖА 000001"),
            ("LXXХIХ-ЁЖ 654321", "LXXXIX-ЁЖ 654321"),
            ("CCCXCIX-АБ 123456", "CCCXCIX-АБ 123456"),
            ("I-АБ 123 456", "I-АБ 123456"),
        ],
    );
    let cert = BirthCertificate::parse("c", "IV-МЮ 123456").unwrap();
    assert_eq!((cert.series(), cert.number()), ("IV-МЮ", "123456"));
}

#[test]
fn birth_certificate_from_separate_fields() {
    let cert = BirthCertificate::from_parts("series", " iv-мю ", "number", "123 456").unwrap();
    assert_eq!(cert.as_str(), "IV-МЮ 123456");
    assert_eq!(cert, BirthCertificate::parse("c", "IV-МЮ 123456").unwrap());
    let err = BirthCertificate::from_parts("series", "IV-МЮ", "number", "12345").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.code),
        ("/number", "birth_certificate_number_format")
    );
    let err = BirthCertificate::from_parts("series", "IV-MЮ", "number", "123456").unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.code),
        ("/series", "birth_certificate_series_latin_letters")
    );
    assert_eq!(
        code(BirthCertificate::from_parts(
            "series", "", "number", "123456"
        )),
        "required"
    );
    assert_eq!(
        code(BirthCertificate::from_parts(
            "series", "IV-МЮ", "number", ""
        )),
        "required"
    );
}

#[test]
fn birth_certificate_refusals() {
    refuses(
        BirthCertificate::parse,
        "c",
        &[
            ("IV-MЮ 123456", "birth_certificate_series_latin_letters"),
            ("IV-MU 123456", "birth_certificate_series_latin_letters"),
            ("IV-Мa 123456", "birth_certificate_series_latin_letters"),
            ("IIII-МЮ 123456", "birth_certificate_series_roman"),
            ("IC-МЮ 123456", "birth_certificate_series_roman"),
            ("VX-МЮ 123456", "birth_certificate_series_roman"),
            ("IIV-МЮ 123456", "birth_certificate_series_roman"),
            ("CD-МЮ 123456", "birth_certificate_series_roman"),
            ("CCCC-МЮ 123456", "birth_certificate_series_roman"),
            ("АБ-МЮ 123456", "birth_certificate_series_roman"),
            ("4-МЮ 123456", "birth_certificate_series_roman"),
            ("-МЮ 123456", "birth_certificate_series_roman"),
            ("IV-М 123456", "birth_certificate_series_format"),
            ("IV-МЮЯ 123456", "birth_certificate_series_format"),
            ("IV-М! 123456", "birth_certificate_series_format"),
            ("IVМЮ 123456", "birth_certificate_series_format"),
            ("IV-МЮ 12345", "birth_certificate_number_format"),
            ("IV-МЮ 1234567", "birth_certificate_number_format"),
            ("IV-МЮ", "birth_certificate_format"),
            ("123456", "birth_certificate_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn roman_numerals_are_accepted_only_in_standard_form() {
    for n in 1..=ROMAN_MAX {
        let numeral = to_roman(n);
        assert!(is_canonical_roman(&numeral), "{numeral}");
        assert_eq!(roman_value(&numeral), Some(n));
    }
    for numeral in [
        "", "IIII", "VV", "IL", "XXXX", "LL", "IVI", "IXI", "XIIII", "iv",
    ] {
        assert!(!is_canonical_roman(numeral), "{numeral}");
    }
}

// -------------------------------------------------------------- vehicle documents

#[test]
fn vehicle_certificate_forms() {
    accepts(
        VehicleCertificate::parse,
        "sts",
        VehicleCertificate::as_str,
        &[
            ("77 УО 123456", "77 УО 123456"),
            ("77УО123456", "77 УО 123456"),
            ("77 уо 123456", "77 УО 123456"),
            ("77 YO 123456", "77 УО 123456"),
            ("77 yo 123456", "77 УО 123456"),
            ("77 ХО 123456", "77 ХО 123456"),
            ("99 12 345678", "99 12 345678"),
            ("9912345678", "99 12 345678"),
            ("77 1А 123456", "77 1А 123456"),
        ],
    );
    refuses(
        VehicleCertificate::parse,
        "sts",
        &[
            ("77 ЯО 123456", "vehicle_certificate_letter"),
            ("77 DO 123456", "vehicle_certificate_letter"),
            ("7 УО 123456", "vehicle_certificate_format"),
            ("77 УО 12345", "vehicle_certificate_format"),
            ("77 УО 1234567", "vehicle_certificate_format"),
            ("АА УО 123456", "vehicle_certificate_format"),
            ("77 УО 12345О", "vehicle_certificate_format"),
            ("77-УО-123456", "vehicle_certificate_format"),
            ("77 У! 123456", "vehicle_certificate_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn vehicle_plate_forms() {
    accepts(
        VehiclePlate::parse,
        "plate",
        VehiclePlate::as_str,
        &[
            ("А123ВС77", "А123ВС77"),
            ("А123ВС777", "А123ВС777"),
            ("а123вс77", "А123ВС77"),
            ("A123BC77", "А123ВС77"),
            ("А 123 ВС 77", "А123ВС77"),
            (" a 123 bc 777 ", "А123ВС777"),
            ("Х001ТУ199", "Х001ТУ199"),
        ],
    );
    refuses(
        VehiclePlate::parse,
        "plate",
        &[
            ("Б123ВС77", "vehicle_plate_letter"),
            ("D123BC77", "vehicle_plate_letter"),
            ("А123ВЯ77", "vehicle_plate_letter"),
            ("А12ВС77", "vehicle_plate_format"),
            ("А1234ВС77", "vehicle_plate_format"),
            ("А123ВС7", "vehicle_plate_format"),
            ("А123ВС7777", "vehicle_plate_format"),
            ("1123ВС77", "vehicle_plate_format"),
            ("А123В177", "vehicle_plate_format"),
            ("А123ВС7A", "vehicle_plate_format"),
            ("А123-ВС77", "vehicle_plate_format"),
            ("", "required"),
        ],
    );
}

#[test]
fn driver_licence_forms_and_refusals() {
    for input in [
        "99 12 345678",
        "9912345678",
        "9912 345678",
        "99 12 № 345678",
    ] {
        assert_eq!(
            DriverLicence::parse("licence", input).unwrap().as_str(),
            "99 12 345678",
            "{input}"
        );
    }
    refuses(
        DriverLicence::parse,
        "licence",
        &[
            ("99 12 34567", "driver_licence_format"),
            ("99 12 3456789", "driver_licence_format"),
            ("99 АА 345678", "driver_licence_format"),
            ("99-12-345678", "driver_licence_format"),
            ("", "required"),
        ],
    );
}

// -------------------------------------------------------------- OMS policy

#[test]
fn oms_policy_forms_and_refusals() {
    for input in [
        "1234567890123456",
        "1234 5678 9012 3456",
        "1234-5678-9012-3456",
        " 1234567890123456 ",
    ] {
        assert_eq!(
            OmsPolicy::parse("oms_policy", input).unwrap().as_str(),
            "1234567890123456"
        );
    }
    refuses(
        OmsPolicy::parse,
        "oms_policy",
        &[
            ("123456789012345", "oms_policy_format"),
            ("12345678901234567", "oms_policy_format"),
            ("123456789012345a", "oms_policy_format"),
            ("", "required"),
        ],
    );
}

// -------------------------------------------------------------- printing

#[test]
fn debug_masks_personal_data() {
    let shown = [
        format!("{:?}", Snils::parse("f", "138-759-325 08").unwrap()),
        format!("{:?}", Inn::parse("f", "500100732259").unwrap()),
        format!("{:?}", Uin::parse("f", "18810177220000000015").unwrap()),
        format!("{:?}", Passport::parse("f", "45 10 123456").unwrap()),
        format!("{:?}", DepartmentCode::parse("f", "770-001").unwrap()),
        format!(
            "{:?}",
            BirthCertificate::parse("f", "IV-МЮ 123456").unwrap()
        ),
        format!(
            "{:?}",
            VehicleCertificate::parse("f", "77 УО 123456").unwrap()
        ),
        format!("{:?}", VehiclePlate::parse("f", "А123ВС77").unwrap()),
        format!("{:?}", DriverLicence::parse("f", "99 12 345678").unwrap()),
        format!("{:?}", OmsPolicy::parse("f", "1234567890123456").unwrap()),
    ];
    assert_eq!(
        shown,
        [
            "Snils(*********08)",
            "Inn(**********59)",
            "Uin(******************15)",
            "Passport { series: PassportSeries(****), number: PassportNumber(****56) }",
            "DepartmentCode(***-***)",
            "BirthCertificate(**-** ****56)",
            "VehicleCertificate(** ** ****56)",
            "VehiclePlate(******77)",
            "DriverLicence(** ** ****78)",
            "OmsPolicy(**************56)",
        ]
    );
    // An organisation's KPP is public and stays readable.
    assert_eq!(
        format!("{:?}", Kpp::parse("f", "773601001").unwrap()),
        "Kpp(\"773601001\")"
    );
}

#[test]
fn serialises_to_the_canonical_form() {
    let snils = Snils::parse("f", "138-759-325 08").unwrap();
    assert_eq!(serde_json::to_string(&snils).unwrap(), "\"13875932508\"");
    let cert = BirthCertificate::parse("f", "iv-мю 123456").unwrap();
    assert_eq!(serde_json::to_string(&cert).unwrap(), "\"IV-МЮ 123456\"");
    let passport = Passport::parse("f", "45 10 123456").unwrap();
    assert_eq!(
        serde_json::to_string(&passport).unwrap(),
        r#"{"series":"4510","number":"123456"}"#
    );
}

#[test]
fn a_stored_uin_reads_back_through_its_checks() {
    let uin = Uin::parse("f", "1881 0177 2200 0000 0015").unwrap();
    let json = serde_json::to_string(&uin).unwrap();
    assert_eq!(json, "\"18810177220000000015\"");
    assert_eq!(serde_json::from_str::<Uin>(&json).unwrap(), uin);
    for malformed in ["\"18810177220000000016\"", "\"1881\"", "\"\"", "42"] {
        assert!(
            serde_json::from_str::<Uin>(malformed).is_err(),
            "{malformed}"
        );
    }
}
