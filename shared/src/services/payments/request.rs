//! Payment requests as clients send them: bills, method, idempotency key; checked field by
//! field, and never with a card number in them.

use super::*;

/// The method of a payment request, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MethodRequest {
    Saved(String),
    CardToken(String),
    ApplePay(String),
    Mobile(Phone),
    Wallet(String),
}

/// `POST /v1/payments`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    pub uins: Vec<Uin>,
    pub method: MethodRequest,
}

pub(super) fn parse_uins(
    raw: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<Uin>> {
    let Value::Array(items) = raw else {
        errors.push(FieldError::new(
            path,
            "invalid_type",
            "Ожидается массив УИН",
        ));
        return None;
    };
    if items.is_empty() || items.len() > MAX_BILLS {
        errors.push(FieldError::new(
            path,
            "bill_count",
            format!("От 1 до {MAX_BILLS} начислений в одном платеже"),
        ));
        return None;
    }
    let before = errors.len();
    let mut uins: Vec<Uin> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}/{i}");
        match item {
            Value::String(s) => match Uin::parse(&at, s) {
                Ok(u) if uins.contains(&u) => errors.push(FieldError::new(
                    &at,
                    "duplicate_uin",
                    "Этот УИН уже есть в списке",
                )),
                Ok(u) => uins.push(u),
                Err(e) => errors.push(e),
            },
            _ => errors.push(FieldError::new(&at, "invalid_type", "Ожидается строка")),
        }
    }
    (errors.len() == before).then_some(uins)
}

pub(super) fn token(path: &str, raw: &str, prefix: &str) -> Result<String, FieldError> {
    let t = raw.trim();
    let ok = t.starts_with(prefix)
        && t.len() <= 200
        && t.len() > prefix.len()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(t.to_string())
    } else {
        Err(FieldError::new(
            path,
            "invalid_token",
            format!("Токен платёжного шлюза вида {prefix}…"),
        ))
    }
}

/// An e-wallet number: `41001` and 7 to 11 more digits.
pub(super) fn wallet(path: &str, raw: &str) -> Result<String, FieldError> {
    let w = raw.trim();
    if w.starts_with("41001")
        && (12..=16).contains(&w.len())
        && w.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(w.to_string())
    } else {
        Err(FieldError::new(
            path,
            "invalid_wallet",
            "Номер кошелька: 41001 и ещё 7–11 цифр",
        ))
    }
}

pub(super) fn mobile(path: &str, raw: &str) -> Result<Phone, FieldError> {
    Phone::parse(path, raw)
}

/// Reads a method object (`{"type": ...}`) at `path`.
pub(super) fn parse_method(
    object: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<MethodRequest> {
    let mut r = Reader { errors };
    let kind = r.required(object, "type", path, |p, raw| {
        let t = raw.trim();
        if allowed.contains(&t) {
            Ok(t.to_string())
        } else {
            Err(FieldError::new(
                p,
                "invalid_method_type",
                format!("Допустимые значения: {}", allowed.join(", ")),
            ))
        }
    })?;
    let known: &[&str] = match kind.as_str() {
        "saved" => &["type", "id"],
        "card" => &["type", "token"],
        "apple_pay" => &["type", "payment_data"],
        "mobile" => &["type", "phone"],
        _ => &["type", "wallet"],
    };
    r.unknown(object, path, known);
    match kind.as_str() {
        "saved" => r
            .required(object, "id", path, |p, raw| token(p, raw, "pm_"))
            .map(MethodRequest::Saved),
        "card" => r
            .required(object, "token", path, |p, raw| token(p, raw, "tok_"))
            .map(MethodRequest::CardToken),
        "apple_pay" => r
            .required(object, "payment_data", path, |p, raw| {
                let d = raw.trim();
                if d.is_empty() || d.len() > 10_000 {
                    Err(FieldError::new(
                        p,
                        "invalid_payment_data",
                        "Данные Apple Pay: от 1 до 10 000 символов",
                    ))
                } else {
                    Ok(d.to_string())
                }
            })
            .map(MethodRequest::ApplePay),
        "mobile" => r
            .required(object, "phone", path, mobile)
            .map(MethodRequest::Mobile),
        _ => r
            .required(object, "wallet", path, wallet)
            .map(MethodRequest::Wallet),
    }
}

/// Identifiers the portal and the gateway hand out; never mistaken for card numbers.
pub(super) const ID_PREFIXES: [&str; 5] = ["tok_", "ctok_", "pm_", "tpl_", "ap_"];

/// Refuses a body that carries what looks like a card number anywhere (UINs and wallet
/// numbers aside, which are checked for their own shape, and identifiers like `tok_…`).
pub fn refuse_card_numbers(body: &Map<String, Value>) -> Result<(), AppError> {
    match find_card_number(
        &Value::Object(body.clone()),
        &["uins", "wallet"],
        &ID_PREFIXES,
    ) {
        Some(path) => Err(AppError::CardNumberNotAccepted(path)),
        None => Ok(()),
    }
}

impl PayRequest {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        Reader {
            errors: &mut errors,
        }
        .unknown(body, "", &["uins", "method"]);
        let uins = match body.get("uins") {
            None | Some(Value::Null) => {
                errors.push(FieldError::new("uins", "required", "Обязательное поле"));
                None
            }
            Some(v) => parse_uins(v, "/uins", &mut errors),
        };
        let method = match body.get("method") {
            Some(Value::Object(m)) => parse_method(
                m,
                "/method",
                &["saved", "card", "apple_pay", "mobile", "wallet"],
                &mut errors,
            ),
            None | Some(Value::Null) => {
                errors.push(FieldError::new("method", "required", "Обязательное поле"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new(
                    "method",
                    "invalid_type",
                    "Ожидается объект",
                ));
                None
            }
        };
        if let (Some(uins), Some(MethodRequest::ApplePay(_))) = (&uins, &method) {
            if uins.len() > 1 {
                errors.push(FieldError::new(
                    "/method/type",
                    "apple_pay_single_bill",
                    "Apple Pay оплачивает только одно начисление за раз",
                ));
            }
        }
        match (uins, method) {
            (Some(uins), Some(method)) if errors.is_empty() => Ok(Self { uins, method }),
            _ => Err(AppError::Validation(errors)),
        }
    }

    /// The request in a canonical form, for comparing replays.
    pub(super) fn canonical(&self) -> String {
        let uins: Vec<&str> = self.uins.iter().map(Uin::as_str).collect();
        format!("{}|{}", uins.join(","), self.method.canonical())
    }
}

impl MethodRequest {
    /// The method in a canonical form, for comparing replays.
    pub(super) fn canonical(&self) -> String {
        match self {
            MethodRequest::Saved(id) => format!("saved:{id}"),
            MethodRequest::CardToken(t) => format!("card:{t}"),
            MethodRequest::ApplePay(d) => format!("apple_pay:{d}"),
            MethodRequest::Mobile(p) => format!("mobile:{}", p.e164()),
            MethodRequest::Wallet(w) => format!("wallet:{w}"),
        }
    }
}

/// A method to save, checked.
pub enum NewMethod {
    Card(String),
    Mobile(Phone),
    Wallet(String),
}

impl NewMethod {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, AppError> {
        refuse_card_numbers(body)?;
        let mut errors = Vec::new();
        let method = parse_method(body, "", &["card", "mobile", "wallet"], &mut errors);
        match method {
            Some(MethodRequest::CardToken(t)) if errors.is_empty() => Ok(NewMethod::Card(t)),
            Some(MethodRequest::Mobile(p)) if errors.is_empty() => Ok(NewMethod::Mobile(p)),
            Some(MethodRequest::Wallet(w)) if errors.is_empty() => Ok(NewMethod::Wallet(w)),
            _ => Err(AppError::Validation(errors)),
        }
    }
}

/// Whether an idempotency key is usable: 8 to 64 of `A-Z a-z 0-9 - _`.
pub fn check_idempotency_key(raw: Option<&str>) -> Result<String, AppError> {
    match raw.map(str::trim) {
        Some(k)
            if (8..=64).contains(&k.len())
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(k.to_string())
        }
        _ => Err(AppError::IdempotencyKeyRequired),
    }
}

/// The commission the portal adds: mobile operators take 1 % (at least a rouble); cards,
/// Apple Pay and e-wallets pay state charges without one.
pub fn commission(kind: MethodKind, amount: u64) -> u64 {
    match kind {
        MethodKind::Mobile => amount.div_ceil(100).max(100),
        _ => 0,
    }
}
