//! The documents' due dates, as the reminders find them: the expiry of the international
//! passport and of a foreign document, and the RF passport's replacement at 20 and 45.
//!
//! Each due date is an entry of a date-partitioned index (one partition per day) written
//! and deleted in the same transaction as the profile, so that the reminders' job reads
//! the few days it needs and never scans. The profile keeps the entries it last wrote
//! ([`Profile::dues`]), and each write adds and removes the difference.

use super::*;
use crate::crypto::Identifier;
use crate::domain::passport_replacement;

/// A document that falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueDocument {
    /// The RF passport, to be replaced at 20 and 45.
    Passport,
    InternationalPassport,
    ForeignDocument,
}

impl DueDocument {
    pub const ALL: [DueDocument; 3] = [
        DueDocument::Passport,
        DueDocument::InternationalPassport,
        DueDocument::ForeignDocument,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DueDocument::Passport => "passport",
            DueDocument::InternationalPassport => "international_passport",
            DueDocument::ForeignDocument => "foreign_document",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == raw)
    }

    /// How the citizen reads its name in a reminder.
    pub fn title(self) -> &'static str {
        match self {
            DueDocument::Passport => "Паспорт гражданина РФ",
            DueDocument::InternationalPassport => "Заграничный паспорт",
            DueDocument::ForeignDocument => "Документ иностранного гражданина",
        }
    }
}

/// One document's due date.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DueEntry {
    pub document: DueDocument,
    /// The day it expires or must be replaced.
    #[serde(with = "day")]
    pub due: Date,
    /// Stands for the document's content (a keyed hash, never the number itself): a
    /// changed document is another one, and its reminders start again.
    pub stamp: String,
    /// The passport's replacement age (20 or 45).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age: Option<u8>,
}

/// A [`Date`] as `YYYY-MM-DD` in stored documents.
mod day {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::json::date_string(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let raw = String::deserialize(deserializer)?;
        crate::json::parse_date("", &raw).map_err(|e| serde::de::Error::custom(e.code))
    }
}

/// Characters of the keyed hash kept as a stamp: enough to tell two documents apart.
const STAMP_CHARS: usize = 16;

fn stamp(hasher: &Hasher, document: DueDocument, parts: &[&str]) -> String {
    let mut all = vec![document.as_str()];
    all.extend_from_slice(parts);
    hasher
        .identifier(Identifier::DocumentStamp, &all)
        .chars()
        .take(STAMP_CHARS)
        .collect()
}

impl Profile {
    /// The due dates of the documents in the profile, by document.
    pub fn due_entries(&self, hasher: &Hasher) -> Vec<DueEntry> {
        let d = &self.documents;
        let day = |raw: &str| parse_date("", raw).ok();
        let mut entries = Vec::new();
        if let (Some(p), Some(born)) = (&d.passport, self.personal.birth_date.as_deref()) {
            if let (Some(birth), Some(issue)) = (day(born), day(&p.issue_date)) {
                if let Some((age, due)) = passport_replacement(birth, issue) {
                    entries.push(DueEntry {
                        document: DueDocument::Passport,
                        due,
                        stamp: stamp(
                            hasher,
                            DueDocument::Passport,
                            &[&p.series, &p.number, &p.issue_date, born],
                        ),
                        age: Some(age),
                    });
                }
            }
        }
        if let Some(p) = &d.international_passport {
            if let Some(due) = day(&p.expiry_date) {
                entries.push(DueEntry {
                    document: DueDocument::InternationalPassport,
                    due,
                    stamp: stamp(
                        hasher,
                        DueDocument::InternationalPassport,
                        &[&p.series, &p.number, &p.issue_date, &p.expiry_date],
                    ),
                    age: None,
                });
            }
        }
        if let Some(f) = &d.foreign_document {
            if let Some(due) = day(&f.expiry_date) {
                entries.push(DueEntry {
                    document: DueDocument::ForeignDocument,
                    due,
                    stamp: stamp(
                        hasher,
                        DueDocument::ForeignDocument,
                        &[&f.country, &f.number, &f.issue_date, &f.expiry_date],
                    ),
                    age: None,
                });
            }
        }
        entries
    }

    /// Records in `self` the due entries it has and answers the index entries to write
    /// and to delete against `before` (what was written when it was read). An entry that
    /// keeps its day and document but changes its stamp is only written: the write
    /// replaces the item, and a transaction may name an item once.
    pub fn follow_dues(
        &mut self,
        before: &Profile,
        hasher: &Hasher,
    ) -> (Vec<DueEntry>, Vec<DueEntry>) {
        let held = before.dues.clone().unwrap_or_default();
        let wanted = self.due_entries(hasher);
        let add: Vec<DueEntry> = wanted
            .iter()
            .filter(|e| !held.contains(e))
            .cloned()
            .collect();
        let remove = held
            .iter()
            .filter(|e| !wanted.contains(e))
            .filter(|e| {
                !add.iter()
                    .any(|a| a.document == e.document && a.due == e.due)
            })
            .cloned()
            .collect();
        self.dues = Some(wanted);
        (add, remove)
    }
}
