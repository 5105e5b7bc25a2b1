//! Vehicle documents: the registration certificate (СТС), the registration plate, the
//! driver licence.

use super::*;

// ------------------------------------------------------------------ vehicle documents

/// Vehicle registration certificate (СТС): `77 УО 123456` or `99 12 345678`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VehicleCertificate(String);

impl VehicleCertificate {
    /// 2 digits, 2 digits or letters of the plate alphabet, 6 digits; spaces optional.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        let format = refusal(
            field,
            "vehicle_certificate_format",
            "Введите серию и номер СТС: 10 знаков, например 77 УО 123456",
        );
        let chars: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if chars.len() != 10
            || !chars[..2].iter().all(char::is_ascii_digit)
            || !chars[4..].iter().all(char::is_ascii_digit)
        {
            return Err(format());
        }
        let mut series = String::with_capacity(8);
        for &c in &chars[2..4] {
            if c.is_ascii_digit() {
                series.push(c);
            } else if c.is_alphabetic() {
                series.push(vehicle_letter(c).ok_or_else(|| {
                    FieldError::new(
                        field,
                        "vehicle_certificate_letter",
                        format!("В серии СТС допустимы буквы {VEHICLE_LETTERS}"),
                    )
                })?);
            } else {
                return Err(format());
            }
        }
        let region: String = chars[..2].iter().collect();
        let number: String = chars[4..].iter().collect();
        Ok(Self(format!("{region} {series} {number}")))
    }

    /// `77 УО 123456`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Russian registration plate: `А123ВС77`, `А123ВС777`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VehiclePlate(String);

impl VehiclePlate {
    /// Letter, 3 digits, 2 letters, region of 2–3 digits; spaces ignored, Latin
    /// look-alikes and lower case read as the Cyrillic capitals.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let raw = present(field, raw)?;
        let chars: Vec<char> = raw.chars().filter(|c| !c.is_whitespace()).collect();
        let shape_ok = matches!(chars.len(), 8 | 9)
            && [0, 4, 5].iter().all(|&i| chars[i].is_alphabetic())
            && chars[1..4].iter().all(char::is_ascii_digit)
            && chars[6..].iter().all(char::is_ascii_digit);
        if !shape_ok {
            return Err(FieldError::new(
                field,
                "vehicle_plate_format",
                "Введите госномер в формате А123ВС77 или А123ВС777",
            ));
        }
        let mut plate = String::with_capacity(2 * chars.len());
        for (i, &c) in chars.iter().enumerate() {
            if matches!(i, 0 | 4 | 5) {
                plate.push(vehicle_letter(c).ok_or_else(|| {
                    FieldError::new(
                        field,
                        "vehicle_plate_letter",
                        format!("В госномере допустимы буквы {VEHICLE_LETTERS}"),
                    )
                })?);
            } else {
                plate.push(c);
            }
        }
        Ok(Self(plate))
    }

    /// `А123ВС77`: Cyrillic capitals, no spaces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Driver licence: 10 digits, `99 12 345678`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DriverLicence(String);

impl DriverLicence {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let d = digits_field(
            field,
            raw,
            |c| c.is_whitespace() || c == '№',
            10,
            "driver_licence_format",
            "Введите серию и номер водительского удостоверения: 10 цифр, например 99 12 345678",
        )?;
        Ok(Self(format!("{} {} {}", &d[..2], &d[2..4], &d[4..])))
    }

    /// `99 12 345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
