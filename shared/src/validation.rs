//! The end of a field-by-field check of a request body.
//!
//! Parsers collect every [`FieldError`] they find rather than stopping at the first, so
//! the citizen sees all the problems of a form at once; [`validated`] is the one way such
//! a collection ends.

use crate::error::{AppError, FieldError};

/// The checked value when no field was wrong, else every collected error in one
/// [`AppError::Validation`]. It exists so each parser ends its checks the same way instead
/// of spelling out the `is_empty` test again.
pub fn validated<T>(value: T, errors: Vec<FieldError>) -> Result<T, AppError> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(AppError::Validation(errors))
    }
}

/// The refusal of a request for one wrong field, for the checks that stop at it (a code
/// of the wrong format, a value equal to the current one); it exists so such refusals do
/// not each build the one-element list by hand.
pub fn invalid_field(field: &str, code: &'static str, detail: impl Into<String>) -> AppError {
    AppError::Validation(vec![FieldError::new(field, code, detail)])
}

/// The `(field, code)` pairs of a validation refusal, for tests that check which fields a
/// parser named; any other error fails the test. One reading of the refusal for every
/// parser's tests.
#[cfg(test)]
pub(crate) fn field_codes(err: &AppError) -> Vec<(&str, &'static str)> {
    match err {
        AppError::Validation(errors) => errors.iter().map(|e| (e.field.as_str(), e.code)).collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_check_keeps_the_value_and_a_failed_one_reports_every_error() {
        assert_eq!(validated(7, Vec::new()).ok(), Some(7));
        let errors = vec![
            FieldError::new("a", "required", "Обязательное поле"),
            FieldError::new("b", "too_long", "Слишком длинно"),
        ];
        match validated(7, errors.clone()) {
            Err(AppError::Validation(got)) => assert_eq!(got, errors),
            other => panic!("expected a validation error, got {other:?}"),
        }
        match invalid_field("code", "invalid_code_format", "Код состоит из 6 цифр")
        {
            AppError::Validation(got) => assert_eq!(
                got,
                [FieldError::new(
                    "/code",
                    "invalid_code_format",
                    "Код состоит из 6 цифр"
                )]
            ),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}
