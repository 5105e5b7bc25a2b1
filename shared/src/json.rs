//! Reading JSON request bodies: a [`Reader`] that walks an object by JSON Pointer and
//! collects every problem, the [`Change`] a PATCH field asks for, and the parsers of the
//! common fields (free text, names, dates, gender).

use serde_json::{Map, Value};
use time::Date;

use crate::domain::PersonName;
use crate::error::FieldError;

/// A field of a PATCH: left alone, cleared (`null`), or set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T: Clone> Change<T> {
    pub(crate) fn apply(&self, target: &mut Option<T>) {
        match self {
            Change::Keep => {}
            Change::Clear => *target = None,
            Change::Set(v) => *target = Some(v.clone()),
        }
    }
}

/// Longest free-text field (addresses, issuing department, birthplace).
pub const MAX_TEXT_CHARS: usize = 300;

/// Reads a JSON object at a JSON Pointer, collecting every problem.
pub(crate) struct Reader<'a> {
    pub(crate) errors: &'a mut Vec<FieldError>,
}

impl Reader<'_> {
    pub(crate) fn object<'v>(
        &mut self,
        body: &'v Map<String, Value>,
        name: &str,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match body.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(_) => {
                self.errors
                    .push(FieldError::new(path, "invalid_type", "Ожидается объект"));
                None
            }
        }
    }

    pub(crate) fn unknown(&mut self, object: &Map<String, Value>, path: &str, known: &[&str]) {
        for key in object.keys() {
            if !known.contains(&key.as_str()) {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                self.errors.push(FieldError::new(
                    &format!("{path}/{escaped}"),
                    "unknown_field",
                    "Неизвестное поле",
                ));
            }
        }
    }

    /// A string field that may be cleared with `null`.
    pub(crate) fn change<T>(
        &mut self,
        object: &Map<String, Value>,
        name: &str,
        path: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, FieldError>,
    ) -> Change<T> {
        let path = format!("{path}/{name}");
        match object.get(name) {
            None => Change::Keep,
            Some(Value::Null) => Change::Clear,
            Some(Value::String(s)) => match parse(&path, s) {
                Ok(v) => Change::Set(v),
                Err(e) => {
                    self.errors.push(e);
                    Change::Keep
                }
            },
            Some(_) => {
                self.errors
                    .push(FieldError::new(&path, "invalid_type", "Ожидается строка"));
                Change::Keep
            }
        }
    }

    pub(crate) fn required<T>(
        &mut self,
        object: &Map<String, Value>,
        name: &str,
        path: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, FieldError>,
    ) -> Option<T> {
        let full = format!("{path}/{name}");
        match self.change(object, name, path, parse) {
            Change::Set(v) => Some(v),
            Change::Clear => {
                self.errors
                    .push(FieldError::new(&full, "required", "Обязательное поле"));
                None
            }
            Change::Keep => {
                if !object.contains_key(name) {
                    self.errors
                        .push(FieldError::new(&full, "required", "Обязательное поле"));
                }
                None
            }
        }
    }
}

/// A line of free text: NFC, trimmed, at most [`MAX_TEXT_CHARS`], nothing invisible in it
/// (see [`crate::domain::free_text`]).
pub(crate) fn text(path: &str, raw: &str) -> Result<String, FieldError> {
    crate::domain::free_text(path, raw, MAX_TEXT_CHARS, false)
}

pub(crate) fn name(path: &str, raw: &str) -> Result<String, FieldError> {
    PersonName::parse(path, raw).map(|n| n.as_str().to_string())
}

/// A calendar date written `YYYY-MM-DD`.
pub fn parse_date(path: &str, raw: &str) -> Result<Date, FieldError> {
    let invalid = || FieldError::new(path, "invalid_date", "Дата в формате ГГГГ-ММ-ДД");
    let raw = raw.trim();
    let b = raw.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| raw[range].parse::<u16>().map_err(|_| invalid());
    let year = i32::from(number(0..4)?);
    let month = u8::try_from(number(5..7)?)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(invalid)?;
    let day = u8::try_from(number(8..10)?).map_err(|_| invalid())?;
    Date::from_calendar_date(year, month, day).map_err(|_| invalid())
}

pub(crate) fn date_string(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

pub(crate) fn birth_date(today: Date) -> impl Fn(&str, &str) -> Result<String, FieldError> {
    move |path, raw| {
        let d = parse_date(path, raw)?;
        if d > today {
            return Err(FieldError::new(
                path,
                "date_in_future",
                "Дата ещё не наступила",
            ));
        }
        if d.year() < 1900 {
            return Err(FieldError::new(
                path,
                "date_too_early",
                "Проверьте год рождения",
            ));
        }
        Ok(date_string(d))
    }
}

pub(crate) fn gender(path: &str, raw: &str) -> Result<String, FieldError> {
    match raw.trim() {
        "male" | "female" => Ok(raw.trim().to_string()),
        _ => Err(FieldError::new(
            path,
            "invalid_gender",
            "Допустимые значения: male, female",
        )),
    }
}
