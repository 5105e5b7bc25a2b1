//! The identity documents of the profile besides the passport: the international
//! passport (checked by the interior ministry like the passport), the military ID, a
//! foreign citizen's document and the citizen's own birth certificate (no registry checks
//! these three: they stay `unverified`, as entered). Each is one object of
//! `documents`, set whole by a PATCH or cleared with `null`; its dates are checked
//! against the birth date it will be stored with.

use super::*;
use crate::domain::{
    check_expiry_date, check_international_passport_validity, check_issue_date, BirthCertificate,
    Country, ForeignDocumentNumber, InternationalPassport, MilitaryId,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InternationalPassportDoc {
    /// 2 digits.
    pub series: String,
    /// 7 digits.
    pub number: String,
    pub issue_date: String,
    pub expiry_date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MilitaryIdDoc {
    /// 2 Cyrillic capitals.
    pub series: String,
    /// 7 digits.
    pub number: String,
    pub issue_date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignDocumentDoc {
    /// ISO 3166-1 alpha-3 of the issuing country, never `RUS`.
    pub country: String,
    pub number: String,
    pub issue_date: String,
    pub expiry_date: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BirthCertificateDoc {
    /// `IV-МЮ`.
    pub series: String,
    /// 6 digits.
    pub number: String,
    pub issue_date: String,
}

/// The documents no registry checks: shown `unverified` in `verification` once entered.
pub const UNCHECKED_DOCUMENTS: [&str; 3] = ["military_id", "foreign_document", "birth_certificate"];

/// The document objects of this module a PATCH may name under `documents`.
pub(super) const OTHER_DOCUMENTS: [&str; 4] = [
    "international_passport",
    "military_id",
    "foreign_document",
    "birth_certificate",
];

/// The PATCH of the documents of this module.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OtherDocumentsPatch {
    pub international_passport: Change<InternationalPassportDoc>,
    pub military_id: Change<MilitaryIdDoc>,
    pub foreign_document: Change<ForeignDocumentDoc>,
    pub birth_certificate: Change<BirthCertificateDoc>,
}

/// A date field: `YYYY-MM-DD`, kept in that form.
fn date_field(path: &str, raw: &str) -> Result<String, FieldError> {
    parse_date(path, raw).map(date_string)
}

/// A document of a series and a number that are checked together (`from_parts` with the
/// paths of both): each required at its own path, then parsed as one.
fn series_and_number<T>(
    r: &mut Reader<'_>,
    o: &Map<String, Value>,
    at: &str,
    from_parts: impl FnOnce(&str, &str, &str, &str) -> Result<T, FieldError>,
) -> Option<T> {
    let series = o.get("series").and_then(Value::as_str).unwrap_or_default();
    let number = o.get("number").and_then(Value::as_str).unwrap_or_default();
    r.required(o, "series", at, |_, _| Ok(()))
        .and(r.required(o, "number", at, |_, _| Ok(())))
        .and_then(|()| {
            from_parts(
                &format!("{at}/series"),
                series,
                &format!("{at}/number"),
                number,
            )
            .map_err(|e| r.errors.push(e))
            .ok()
        })
}

/// Reads `documents/{name}`: `null` clears it, an object sets it whole (every field
/// required), anything else is refused.
fn object_change<T>(
    r: &mut Reader<'_>,
    documents: &Map<String, Value>,
    name: &str,
    fields: &[&str],
    read: impl FnOnce(&mut Reader<'_>, &Map<String, Value>, &str) -> Option<T>,
) -> Change<T> {
    let at = format!("/documents/{name}");
    match documents.get(name) {
        None => Change::Keep,
        Some(Value::Null) => Change::Clear,
        Some(Value::Object(o)) => {
            r.unknown(o, &at, fields);
            read(r, o, &at).map_or(Change::Keep, Change::Set)
        }
        Some(_) => {
            r.errors
                .push(FieldError::new(&at, "invalid_type", "Ожидается объект"));
            Change::Keep
        }
    }
}

impl OtherDocumentsPatch {
    /// Reads the documents of this module from the `documents` object of a PATCH; the
    /// shape of each field is checked here, its dates against the profile later
    /// ([`check_other_documents`]).
    pub(super) fn parse(r: &mut Reader<'_>, d: &Map<String, Value>) -> Self {
        let international_passport = object_change(
            r,
            d,
            "international_passport",
            &["series", "number", "issue_date", "expiry_date"],
            |r, o, at| {
                let series = o.get("series").and_then(Value::as_str).unwrap_or_default();
                let number = o.get("number").and_then(Value::as_str).unwrap_or_default();
                let passport = r
                    .required(o, "series", at, |_, _| Ok(()))
                    .and(r.required(o, "number", at, |_, _| Ok(())))
                    .and_then(|()| {
                        InternationalPassport::from_parts(
                            &format!("{at}/series"),
                            series,
                            &format!("{at}/number"),
                            number,
                        )
                        .map_err(|e| r.errors.push(e))
                        .ok()
                    });
                let issue_date = r.required(o, "issue_date", at, date_field);
                let expiry_date = r.required(o, "expiry_date", at, date_field);
                Some(InternationalPassportDoc {
                    series: passport.as_ref()?.as_str()[..2].to_string(),
                    number: passport?.number().to_string(),
                    issue_date: issue_date?,
                    expiry_date: expiry_date?,
                })
            },
        );
        let military_id = object_change(
            r,
            d,
            "military_id",
            &["series", "number", "issue_date"],
            |r, o, at| {
                let id = series_and_number(r, o, at, MilitaryId::from_parts);
                let issue_date = r.required(o, "issue_date", at, date_field);
                let id = id?;
                Some(MilitaryIdDoc {
                    series: id.series().to_string(),
                    number: id.number().to_string(),
                    issue_date: issue_date?,
                })
            },
        );
        let foreign_document = object_change(
            r,
            d,
            "foreign_document",
            &["country", "number", "issue_date", "expiry_date"],
            |r, o, at| {
                let country = r.required(o, "country", at, |path, raw| {
                    Country::parse_foreign(path, raw).map(|c| c.as_str().to_string())
                });
                let number = r.required(o, "number", at, |path, raw| {
                    ForeignDocumentNumber::parse(path, raw).map(|n| n.as_str().to_string())
                });
                let issue_date = r.required(o, "issue_date", at, date_field);
                let expiry_date = r.required(o, "expiry_date", at, date_field);
                Some(ForeignDocumentDoc {
                    country: country?,
                    number: number?,
                    issue_date: issue_date?,
                    expiry_date: expiry_date?,
                })
            },
        );
        let birth_certificate = object_change(
            r,
            d,
            "birth_certificate",
            &["series", "number", "issue_date"],
            |r, o, at| {
                let certificate = series_and_number(r, o, at, BirthCertificate::from_parts);
                let issue_date = r.required(o, "issue_date", at, date_field);
                let certificate = certificate?;
                Some(BirthCertificateDoc {
                    series: certificate.series().to_string(),
                    number: certificate.number().to_string(),
                    issue_date: issue_date?,
                })
            },
        );
        Self {
            international_passport,
            military_id,
            foreign_document,
            birth_certificate,
        }
    }

    pub(super) fn apply(&self, d: &mut Documents) {
        self.international_passport
            .apply(&mut d.international_passport);
        self.military_id.apply(&mut d.military_id);
        self.foreign_document.apply(&mut d.foreign_document);
        self.birth_certificate.apply(&mut d.birth_certificate);
    }
}

/// The dates of the documents of this module in `next` (the profile a PATCH would write):
/// a document the PATCH sets is checked whole (issued neither in the future nor before
/// birth, an expiry after the issue and not past, an international passport valid 5 or
/// 10 years); one it leaves is checked again only against a changed birth date, so that a
/// document that expired since it was entered does not block other edits.
pub(super) fn check_other_documents(
    patch: &OtherDocumentsPatch,
    before: &Profile,
    next: &Profile,
    today: Date,
) -> Vec<FieldError> {
    let born = next
        .personal
        .birth_date
        .as_deref()
        .and_then(|d| parse_date("", d).ok());
    let birth_changed = before.personal.birth_date != next.personal.birth_date;
    let mut errors = Vec::new();
    let d = &next.documents;
    let mut check = |name: &str, set: bool, issue: &str, expiry: Option<&str>| {
        if !set && !birth_changed {
            return;
        }
        let issue_at = format!("/documents/{name}/issue_date");
        let expiry_at = format!("/documents/{name}/expiry_date");
        let Ok(issue) = parse_date(&issue_at, issue) else {
            return;
        };
        if let Err(e) = check_issue_date(&issue_at, issue, born, today) {
            errors.push(e);
            return;
        }
        let Some(Ok(expiry)) = expiry.map(|e| parse_date(&expiry_at, e)) else {
            return;
        };
        if !set {
            return;
        }
        if let Err(e) = check_expiry_date(&expiry_at, issue, expiry, today) {
            errors.push(e);
        } else if name == "international_passport" {
            if let Err(e) = check_international_passport_validity(&expiry_at, issue, expiry) {
                errors.push(e);
            }
        }
    };
    if let Some(p) = &d.international_passport {
        let set = matches!(patch.international_passport, Change::Set(_));
        check(
            "international_passport",
            set,
            &p.issue_date,
            Some(&p.expiry_date),
        );
    }
    if let Some(m) = &d.military_id {
        check(
            "military_id",
            matches!(patch.military_id, Change::Set(_)),
            &m.issue_date,
            None,
        );
    }
    if let Some(f) = &d.foreign_document {
        let set = matches!(patch.foreign_document, Change::Set(_));
        check("foreign_document", set, &f.issue_date, Some(&f.expiry_date));
    }
    if let Some(b) = &d.birth_certificate {
        let set = matches!(patch.birth_certificate, Change::Set(_));
        check("birth_certificate", set, &b.issue_date, None);
    }
    errors
}
