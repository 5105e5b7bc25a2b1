//! Document numbers for the scenarios: valid by the functions' own validators (check
//! digits are found by asking `shared::domain`, not computed here a second time), unique
//! per serial, and with the registry sandbox's test prefixes where a scenario wants a
//! refusal or a timeout (docs/testing.md).

use serde_json::{json, Value as Json};
use shared::adapters::registry::snils_of;
use shared::domain::{Inn, Snils, Uin};

/// The first digits that make the sandbox registries answer otherwise than "verified".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sandbox {
    /// Verified.
    Verified,
    /// `999`: rejected, the data do not match.
    Mismatch,
    /// `998`: rejected, not found in the registry.
    NotFound,
    /// `997`: no answer on the first two deliveries, then verified.
    SlowTwice,
}

impl Sandbox {
    fn prefix(self) -> Option<&'static str> {
        match self {
            Sandbox::Verified => None,
            Sandbox::Mismatch => Some("999"),
            Sandbox::NotFound => Some("998"),
            Sandbox::SlowTwice => Some("997"),
        }
    }

    /// Whether a job on a document of this kind fails on delivery `attempt`.
    pub fn times_out(self, attempt: u32) -> bool {
        self == Sandbox::SlowTwice && attempt <= 2
    }
}

/// The first `digits` digits: the sandbox prefix, if any, then the serial; never one of
/// the test prefixes by accident (numbers start at 1 or 2).
fn body(digits: usize, serial: u64, sandbox: Sandbox) -> String {
    match sandbox.prefix() {
        Some(prefix) => {
            let rest = digits - prefix.len();
            format!(
                "{prefix}{:0rest$}",
                serial % 10u64.pow(rest as u32),
                rest = rest
            )
        }
        None => {
            let rest = digits - 1;
            format!("2{:0rest$}", serial % 10u64.pow(rest as u32), rest = rest)
        }
    }
}

/// The one completion of `prefix` by `check_digits` digits that `valid` accepts.
fn complete(prefix: &str, check_digits: u32, valid: impl Fn(&str) -> bool) -> Option<String> {
    (0..10u32.pow(check_digits))
        .map(|c| format!("{prefix}{c:0width$}", width = check_digits as usize))
        .find(|candidate| valid(candidate))
}

/// An SNILS, 11 digits.
pub fn snils(serial: u64, sandbox: Sandbox) -> String {
    complete(&body(9, serial, sandbox), 2, |s| {
        Snils::parse("snils", s).is_ok()
    })
    .unwrap_or_default()
}

/// A citizen's INN, 12 digits.
pub fn inn(serial: u64, sandbox: Sandbox) -> String {
    complete(&body(10, serial, sandbox), 2, |s| {
        Inn::parse_personal("inn", s).is_ok()
    })
    .unwrap_or_default()
}

/// A passport's series and number; the sandbox reads the number.
pub fn passport(serial: u64, sandbox: Sandbox) -> (String, String) {
    (
        format!("45{:02}", serial / 1_000_000 % 100),
        body(6, serial, sandbox),
    )
}

/// A 20-digit UIN (the traffic police's `188` prefix and a serial) with its check digit.
pub fn uin(serial: u64) -> String {
    complete(&format!("188{serial:016}"), 1, |s| {
        Uin::parse("uin", s).is_ok()
    })
    .unwrap_or_default()
}

/// The UIN with a last digit its check does not allow.
pub fn broken_uin(uin: &str) -> String {
    let (body, _) = uin.split_at(uin.len().saturating_sub(1));
    complete(body, 1, |s| Uin::parse("uin", s).is_err()).unwrap_or_default()
}

const ROMAN: [&str; 10] = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"];

/// A birth certificate, `IV-МЮ 123456`.
pub fn birth_certificate(serial: u64) -> String {
    format!(
        "{}-МЮ {:06}",
        ROMAN[(serial / 1_000_000 % 10) as usize],
        serial % 1_000_000
    )
}

/// A vehicle registration certificate in digits only, `77 12 345678`.
pub fn sts(serial: u64) -> String {
    format!(
        "77 {:02} {:06}",
        serial / 1_000_000 % 100,
        serial % 1_000_000
    )
}

const PLATE_LETTERS: [char; 12] = ['А', 'В', 'Е', 'К', 'М', 'Н', 'О', 'Р', 'С', 'Т', 'У', 'Х'];

/// A registration plate, `А123ВС77`.
pub fn plate(serial: u64) -> String {
    let letter = |shift: u64| PLATE_LETTERS[((serial / shift) % 12) as usize];
    format!(
        "{}{:03}{}{}77",
        letter(1000),
        serial % 1000,
        letter(12_000),
        letter(144_000)
    )
}

/// The documents of one adult, as a PATCH of the profile carries them.
#[derive(Debug, Clone)]
pub struct AdultDocuments {
    pub snils: String,
    pub inn: String,
    pub passport_series: String,
    pub passport_number: String,
    pub female: bool,
}

impl AdultDocuments {
    /// Documents of person `serial`; `sandbox` applies to each of SNILS, passport, INN.
    pub fn new(
        serial: u64,
        female: bool,
        snils_s: Sandbox,
        passport_s: Sandbox,
        inn_s: Sandbox,
    ) -> Self {
        let (passport_series, passport_number) = passport(serial, passport_s);
        Self {
            snils: snils(serial, snils_s),
            inn: inn(serial, inn_s),
            passport_series,
            passport_number,
            female,
        }
    }

    /// Documents every registry verifies.
    pub fn verified(serial: u64, female: bool) -> Self {
        Self::new(
            serial,
            female,
            Sandbox::Verified,
            Sandbox::Verified,
            Sandbox::Verified,
        )
    }

    /// A PATCH body with the personal data, addresses and documents, as a citizen fills
    /// the profile in: SNILS printed with its groups, the INN with spaces.
    pub fn profile_body(&self) -> Json {
        json!({
            "personal": {
                "birth_date": "1988-04-12",
                "gender": if self.female { "female" } else { "male" },
                "birthplace": "гор. Москва",
                "citizenship": "rus",
            },
            "addresses": {
                "registration": "119002, г. Москва, пер. Сивцев Вражек, д. 15, кв. 4",
                "actual": "119002, г. Москва, пер. Сивцев Вражек, д. 15, кв. 4",
            },
            "documents": {
                "snils": format!(
                    "{}-{}-{} {}",
                    &self.snils[..3],
                    &self.snils[3..6],
                    &self.snils[6..9],
                    &self.snils[9..]
                ),
                "inn": format!("{} {}", &self.inn[..4], &self.inn[4..]),
                "oms_policy": "7798 8900 1234 5678",
                "passport": {
                    "series": format!("{} {}", &self.passport_series[..2], &self.passport_series[2..]),
                    "number": self.passport_number,
                    "issue_date": "2008-05-20",
                    "department_code": "770-001",
                    "issued_by": "ОВД района Арбат гор. Москвы",
                },
                "driver_licence": {"number": "99 12 345678", "issue_date": "2015-06-01"},
            },
        })
    }
}

/// The mother's SNILS on the sandbox civil registry's birth record of the certificate of
/// child `serial` (docs/testing.md): the first five digits of its number stand for the
/// parents, so children `serial` within one ten share her.
pub fn mother_on_birth_record(serial: u64) -> String {
    let number = format!("{:06}", serial % 1_000_000);
    snils_of(&format!("77{}01", &number[..5]))
}

/// The father's SNILS on the sandbox birth record of certificate `serial`.
pub fn father_on_birth_record(serial: u64) -> String {
    let number = format!("{:06}", serial % 1_000_000);
    snils_of(&format!("77{}02", &number[..5]))
}

/// A child's record as `POST /v1/profile/children` takes it: the SNILS, when asked for,
/// is the one its sandbox birth record carries.
pub fn child_body(serial: u64, snils_too: bool) -> Json {
    const CHILDREN: [(&str, &str, &str, &str, &str); 3] = [
        ("Иванова", "Мария", "Сергеевна", "2016-03-01", "female"),
        ("Иванов", "Илья", "Сергеевич", "2019-09-15", "male"),
        ("Иванова", "Дарья", "Сергеевна", "2021-01-20", "female"),
    ];
    let (last, first, middle, born, gender) = CHILDREN[(serial % 3) as usize];
    let mut body = json!({
        "last_name": last,
        "first_name": first,
        "middle_name": middle,
        "birth_date": born,
        "gender": gender,
        "birth_certificate": birth_certificate(serial),
    });
    if snils_too {
        let number = format!("{:06}", serial % 1_000_000);
        body["snils"] = json!(snils_of(&format!("77{number}3")));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::{BirthCertificate, VehicleCertificate, VehiclePlate};

    #[test]
    fn numbers_pass_the_validators_and_differ() {
        for serial in [0, 1, 42, 123_456, 9_999_999, 987_654_321] {
            for sandbox in [
                Sandbox::Verified,
                Sandbox::Mismatch,
                Sandbox::NotFound,
                Sandbox::SlowTwice,
            ] {
                let s = snils(serial, sandbox);
                assert_eq!(Snils::parse("snils", &s).unwrap().as_str(), s);
                let i = inn(serial, sandbox);
                assert_eq!(Inn::parse_personal("inn", &i).unwrap().as_str(), i);
                assert_eq!(
                    s.starts_with("99") || s.starts_with("997"),
                    sandbox != Sandbox::Verified
                );
            }
            let u = uin(serial);
            assert_eq!(u.len(), 20);
            Uin::parse("uin", &u).unwrap();
            let b = broken_uin(&u);
            assert_eq!(b.len(), 20);
            assert!(Uin::parse("uin", &b).is_err());
            BirthCertificate::parse("c", &birth_certificate(serial)).unwrap();
            assert_eq!(
                VehicleCertificate::parse("sts", &sts(serial))
                    .unwrap()
                    .as_str(),
                sts(serial)
            );
            assert_eq!(
                VehiclePlate::parse("plate", &plate(serial))
                    .unwrap()
                    .as_str(),
                plate(serial)
            );
        }
        assert_ne!(snils(1, Sandbox::Verified), snils(2, Sandbox::Verified));
        assert_ne!(uin(1), uin(2));
        assert_ne!(birth_certificate(1), birth_certificate(2));
        assert!(passport(5, Sandbox::NotFound).1.starts_with("998"));
        assert!(!passport(5, Sandbox::Verified).1.starts_with("99"));
        assert!(Sandbox::SlowTwice.times_out(2) && !Sandbox::SlowTwice.times_out(3));
    }

    #[test]
    fn bodies_pass_the_functions_parsers() {
        use shared::services::household::Child;
        use shared::services::profile::ProfilePatch;
        let today = time::OffsetDateTime::now_utc().date();
        let docs = AdultDocuments::verified(7, true);
        let body = docs.profile_body();
        ProfilePatch::parse(body.as_object().unwrap(), today).unwrap();
        for serial in 0..3 {
            let child = child_body(serial, serial % 2 == 0);
            Child::parse(child.as_object().unwrap(), today).unwrap();
        }
    }
}
