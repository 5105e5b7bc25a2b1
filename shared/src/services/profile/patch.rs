//! A PATCH of the profile: read and checked field by field, then applied to the document.

use super::*;
use crate::validation::validated;

/// A validated PATCH of the profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub middle_name: Change<String>,
    pub birth_date: Change<String>,
    pub gender: Change<String>,
    pub birthplace: Change<String>,
    pub citizenship: Change<String>,
    pub registration_address: Change<String>,
    pub actual_address: Change<String>,
    pub snils: Change<String>,
    pub inn: Change<String>,
    pub oms_policy: Change<String>,
    pub passport: Change<Passport>,
    pub driver_licence: Change<DriverLicenceDoc>,
    /// The international passport, military ID, foreign document and birth certificate.
    pub other: OtherDocumentsPatch,
}

pub(super) fn citizenship(path: &str, raw: &str) -> Result<String, FieldError> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(FieldError::new(
            path,
            "invalid_citizenship",
            "Код страны из трёх латинских букв, например RUS",
        ))
    }
}

impl ProfilePatch {
    /// Validates a PATCH body; every problem is reported with its JSON Pointer.
    pub fn parse(body: &Map<String, Value>, today: Date) -> Result<Self, AppError> {
        let mut errors = Vec::new();
        let mut r = Reader {
            errors: &mut errors,
        };
        let mut patch = ProfilePatch::default();
        r.unknown(body, "", &["personal", "addresses", "documents"]);
        if let Some(p) = r.object(body, "personal", "/personal") {
            let at = "/personal";
            r.unknown(
                p,
                at,
                &[
                    "last_name",
                    "first_name",
                    "middle_name",
                    "birth_date",
                    "gender",
                    "birthplace",
                    "citizenship",
                ],
            );
            for (field, slot) in [
                ("last_name", &mut patch.last_name),
                ("first_name", &mut patch.first_name),
            ] {
                match r.change(p, field, at, name) {
                    Change::Set(v) => *slot = Some(v),
                    Change::Clear => r.errors.push(FieldError::new(
                        &format!("{at}/{field}"),
                        "required",
                        "Обязательное поле",
                    )),
                    Change::Keep => {}
                }
            }
            // An empty middle name is "none", as at registration.
            patch.middle_name = match p.get("middle_name") {
                Some(Value::String(s)) if s.trim().is_empty() => Change::Clear,
                _ => r.change(p, "middle_name", at, name),
            };
            patch.birth_date = r.change(p, "birth_date", at, birth_date(today));
            patch.gender = r.change(p, "gender", at, gender);
            patch.birthplace = r.change(p, "birthplace", at, text);
            patch.citizenship = r.change(p, "citizenship", at, citizenship);
        }
        if let Some(a) = r.object(body, "addresses", "/addresses") {
            let at = "/addresses";
            r.unknown(a, at, &["registration", "actual"]);
            patch.registration_address = r.change(a, "registration", at, text);
            patch.actual_address = r.change(a, "actual", at, text);
        }
        if let Some(d) = r.object(body, "documents", "/documents") {
            let at = "/documents";
            let mut known = vec!["snils", "inn", "oms_policy", "passport", "driver_licence"];
            known.extend(OTHER_DOCUMENTS);
            r.unknown(d, at, &known);
            patch.other = OtherDocumentsPatch::parse(&mut r, d);
            patch.snils = r.change(d, "snils", at, |path, raw| {
                Snils::parse(path, raw).map(|s| s.as_str().to_string())
            });
            patch.inn = r.change(d, "inn", at, |path, raw| {
                Inn::parse_personal(path, raw).map(|i| i.as_str().to_string())
            });
            patch.oms_policy = r.change(d, "oms_policy", at, |path, raw| {
                OmsPolicy::parse(path, raw).map(|o| o.as_str().to_string())
            });
            match d.get("passport") {
                None => {}
                Some(Value::Null) => patch.passport = Change::Clear,
                Some(Value::Object(p)) => {
                    let at = "/documents/passport";
                    r.unknown(
                        p,
                        at,
                        &[
                            "series",
                            "number",
                            "issue_date",
                            "department_code",
                            "issued_by",
                            "birthplace",
                        ],
                    );
                    let series = r.required(p, "series", at, |path, raw| {
                        PassportSeries::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let number = r.required(p, "number", at, |path, raw| {
                        PassportNumber::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let issue_date = r.required(p, "issue_date", at, parse_date);
                    let department_code = r.required(p, "department_code", at, |path, raw| {
                        DepartmentCode::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let issued_by = r.required(p, "issued_by", at, text);
                    let birthplace = match r.change(p, "birthplace", at, text) {
                        Change::Set(v) => Some(v),
                        _ => None,
                    };
                    if let (
                        Some(series),
                        Some(number),
                        Some(issue_date),
                        Some(department_code),
                        Some(issued_by),
                    ) = (series, number, issue_date, department_code, issued_by)
                    {
                        patch.passport = Change::Set(Passport {
                            series,
                            number,
                            issue_date: date_string(issue_date),
                            department_code,
                            issued_by,
                            birthplace,
                        });
                    }
                }
                Some(_) => r.errors.push(FieldError::new(
                    "/documents/passport",
                    "invalid_type",
                    "Ожидается объект",
                )),
            }
            match d.get("driver_licence") {
                None => {}
                Some(Value::Null) => patch.driver_licence = Change::Clear,
                Some(Value::Object(l)) => {
                    let at = "/documents/driver_licence";
                    r.unknown(l, at, &["number", "issue_date"]);
                    let number = r.required(l, "number", at, |path, raw| {
                        DriverLicence::parse(path, raw).map(|s| s.as_str().to_string())
                    });
                    let issue_date = r.required(l, "issue_date", at, |path, raw| {
                        let d = parse_date(path, raw)?;
                        if d > today {
                            return Err(FieldError::new(
                                path,
                                "date_in_future",
                                "Дата ещё не наступила",
                            ));
                        }
                        Ok(date_string(d))
                    });
                    if let (Some(number), Some(issue_date)) = (number, issue_date) {
                        patch.driver_licence = Change::Set(DriverLicenceDoc { number, issue_date });
                    }
                }
                Some(_) => r.errors.push(FieldError::new(
                    "/documents/driver_licence",
                    "invalid_type",
                    "Ожидается объект",
                )),
            }
        }
        if errors.is_empty() && patch == ProfilePatch::default() {
            errors.push(FieldError::new(
                "",
                "nothing_to_change",
                "Укажите, что изменить",
            ));
        }
        validated(patch, errors)
    }

    /// The profile with this patch applied.
    pub(super) fn apply(&self, profile: &Profile) -> Profile {
        let mut next = profile.clone();
        let p = &mut next.personal;
        if let Some(v) = &self.last_name {
            p.last_name = v.clone();
        }
        if let Some(v) = &self.first_name {
            p.first_name = v.clone();
        }
        self.middle_name.apply(&mut p.middle_name);
        self.birth_date.apply(&mut p.birth_date);
        self.gender.apply(&mut p.gender);
        self.birthplace.apply(&mut p.birthplace);
        self.citizenship.apply(&mut p.citizenship);
        self.registration_address
            .apply(&mut next.addresses.registration);
        self.actual_address.apply(&mut next.addresses.actual);
        let d = &mut next.documents;
        self.snils.apply(&mut d.snils);
        self.inn.apply(&mut d.inn);
        self.oms_policy.apply(&mut d.oms_policy);
        self.passport.apply(&mut d.passport);
        self.driver_licence.apply(&mut d.driver_licence);
        self.other.apply(d);
        next
    }
}

/// Checked fields whose value differs between two profiles.
pub(super) fn changed_fields(before: &Profile, after: &Profile) -> Vec<&'static str> {
    let (a, b) = (&before.personal, &after.personal);
    let (x, y) = (&before.documents, &after.documents);
    let mut changed = Vec::new();
    if (&a.last_name, &a.first_name, &a.middle_name)
        != (&b.last_name, &b.first_name, &b.middle_name)
    {
        changed.push("name");
    }
    if a.birth_date != b.birth_date {
        changed.push("birth_date");
    }
    if a.gender != b.gender {
        changed.push("gender");
    }
    if x.snils != y.snils {
        changed.push("snils");
    }
    if x.passport != y.passport {
        changed.push("passport");
    }
    if x.inn != y.inn {
        changed.push("inn");
    }
    if x.international_passport != y.international_passport {
        changed.push("international_passport");
    }
    changed
}
