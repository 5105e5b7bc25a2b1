//! Charges as billers send them: read field by field, every problem with its JSON Pointer.

use super::*;

impl Payer {
    /// Reads `{"kind": ..., "value": ...}`; the value is checked as its kind requires.
    fn parse(r: &mut Reader<'_>, object: &Map<String, Value>, at: &str) -> Option<Self> {
        r.unknown(object, at, &["kind", "value"]);
        let kind = r.required(object, "kind", at, |path, raw| {
            let kind = match raw.trim() {
                "snils" => PayerKind::Snils,
                "passport" => PayerKind::Passport,
                "birth_certificate" => PayerKind::BirthCertificate,
                "sts" => PayerKind::Sts,
                "inn" => PayerKind::Inn,
                "inn_kpp" => PayerKind::InnKpp,
                _ => return Err(FieldError::new(
                    path,
                    "invalid_payer_kind",
                    "Допустимые значения: snils, passport, birth_certificate, sts, inn, inn_kpp",
                )),
            };
            Ok(kind)
        })?;
        let value = r.required(object, "value", at, |path, raw| canonical(kind, path, raw))?;
        Some(Payer { kind, value })
    }
}

impl Payee {
    /// Reads `payee` of `object` (at JSON Pointer `at`): name, INN, KPP, BIC, account.
    pub fn parse_member(
        object: &Map<String, Value>,
        at: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        Self::parse_in(&mut Reader { errors }, object, at)
    }

    fn parse_in(r: &mut Reader<'_>, object: &Map<String, Value>, at: &str) -> Option<Self> {
        match r.object(object, "payee", &format!("{at}/payee")) {
            Some(p) => {
                let pa = format!("{at}/payee");
                r.unknown(p, &pa, &["name", "inn", "kpp", "bic", "account"]);
                let name = r.required(p, "name", &pa, |path, raw| {
                    charge_text(path, raw, MAX_PAYEE_NAME_CHARS)
                });
                let inn = r.required(p, "inn", &pa, |path, raw| {
                    Inn::parse(path, raw).map(|v| v.as_str().to_string())
                });
                let kpp = r.required(p, "kpp", &pa, |path, raw| {
                    Kpp::parse(path, raw).map(|v| v.as_str().to_string())
                });
                let bic = r.required(p, "bic", &pa, |path, raw| {
                    digits(path, raw, &[9], "bic_format", "БИК: 9 цифр")
                });
                let account = r.required(p, "account", &pa, |path, raw| {
                    digits(path, raw, &[20], "account_format", "Счёт: 20 цифр")
                });
                match (name, inn, kpp, bic, account) {
                    (Some(name), Some(inn), Some(kpp), Some(bic), Some(account)) => Some(Payee {
                        name,
                        inn,
                        kpp,
                        bic,
                        account,
                    }),
                    _ => None,
                }
            }
            // Absent or null: the registered payee; one of another type was reported by
            // `object`.
            None => None,
        }
    }
}

impl ChargeBody {
    /// Validates a charge at JSON Pointer `at` ("" for a whole body, `/charges/3` in a
    /// batch); every problem is reported.
    pub fn parse_at(
        object: &Map<String, Value>,
        at: &str,
        errors: &mut Vec<FieldError>,
    ) -> Option<ChargeDraft> {
        let mut r = Reader { errors };
        r.unknown(
            object,
            at,
            &[
                "uin",
                "amount",
                "payee",
                "purpose",
                "kbk",
                "oktmo",
                "bill_date",
                "due_date",
                "discount",
                "category",
                "payers",
            ],
        );
        let amount_value = amount(&mut r, object, "amount", at);
        let payee_given = object.get("payee").is_some_and(|v| !v.is_null());
        let payee = match Payee::parse_in(&mut r, object, at) {
            Some(p) => Some(p),
            None if !payee_given => Some(Payee::default()),
            None => None,
        };
        let purpose = r.required(object, "purpose", at, |path, raw| {
            charge_text(path, raw, MAX_PURPOSE_CHARS)
        });
        let kbk = r.required(object, "kbk", at, |path, raw| {
            let v = raw.trim();
            if v.len() == 20 && v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(v.to_ascii_uppercase())
            } else {
                Err(FieldError::new(path, "kbk_format", "КБК: 20 символов"))
            }
        });
        let oktmo = r.required(object, "oktmo", at, |path, raw| {
            digits(path, raw, &[8, 11], "oktmo_format", "ОКТМО: 8 или 11 цифр")
        });
        let bill_date = r.required(object, "bill_date", at, parse_date);
        let due_date = r.required(object, "due_date", at, parse_date);
        if let (Some(bill), Some(due)) = (bill_date, due_date) {
            if due < bill {
                r.errors.push(FieldError::new(
                    &format!("{at}/due_date"),
                    "due_before_bill_date",
                    "Срок оплаты раньше даты начисления",
                ));
            }
        }
        let discount = match object.get("discount") {
            None | Some(Value::Null) => None,
            Some(Value::Object(d)) => {
                let da = format!("{at}/discount");
                r.unknown(d, &da, &["amount", "until"]);
                let off = amount(&mut r, d, "amount", &da);
                let until = r.required(d, "until", &da, parse_date);
                if let (Some(off), Some(total)) = (off, amount_value) {
                    if off >= total {
                        r.errors.push(FieldError::new(
                            &format!("{da}/amount"),
                            "discount_too_large",
                            "Скидка должна быть меньше суммы",
                        ));
                    }
                }
                match (off, until) {
                    (Some(amount), Some(until)) => Some(Discount {
                        amount,
                        until: date_string(until),
                    }),
                    _ => None,
                }
            }
            Some(_) => {
                r.errors.push(FieldError::new(
                    &format!("{at}/discount"),
                    "invalid_type",
                    "Ожидается объект",
                ));
                None
            }
        };
        let category = r.required(object, "category", at, Category::parse);
        let payers = match object.get("payers") {
            Some(Value::Array(list)) if !list.is_empty() && list.len() <= MAX_PAYERS => {
                let mut payers = Vec::new();
                for (i, entry) in list.iter().enumerate() {
                    let pa = format!("{at}/payers/{i}");
                    match entry {
                        Value::Object(o) => {
                            if let Some(p) = Payer::parse(&mut r, o, &pa) {
                                payers.push(p);
                            }
                        }
                        _ => {
                            r.errors
                                .push(FieldError::new(&pa, "invalid_type", "Ожидается объект"))
                        }
                    }
                }
                // One index item per identifier, and an order that does not matter.
                payers.sort_by(|a, b| (a.kind as u8, &a.value).cmp(&(b.kind as u8, &b.value)));
                payers.dedup();
                Some(payers)
            }
            Some(Value::Array(_)) => {
                r.errors.push(FieldError::new(
                    &format!("{at}/payers"),
                    "payers_count",
                    format!("От 1 до {MAX_PAYERS} плательщиков"),
                ));
                None
            }
            None | Some(Value::Null) => {
                r.errors.push(FieldError::new(
                    &format!("{at}/payers"),
                    "required",
                    "Обязательное поле",
                ));
                None
            }
            Some(_) => {
                r.errors.push(FieldError::new(
                    &format!("{at}/payers"),
                    "invalid_type",
                    "Ожидается массив",
                ));
                None
            }
        };
        match (
            amount_value,
            payee,
            purpose,
            kbk,
            oktmo,
            bill_date,
            due_date,
            category,
            payers,
        ) {
            (
                Some(amount),
                Some(payee),
                Some(purpose),
                Some(kbk),
                Some(oktmo),
                Some(bill),
                Some(due),
                Some(category),
                Some(payers),
            ) if r.errors.is_empty() => Some(ChargeDraft {
                body: ChargeBody {
                    amount,
                    payee,
                    purpose,
                    kbk,
                    oktmo,
                    bill_date: date_string(bill),
                    due_date: date_string(due),
                    discount,
                    category,
                    payers,
                },
                payee_given,
            }),
            _ => None,
        }
    }

    pub fn parse(object: &Map<String, Value>) -> Result<ChargeDraft, AppError> {
        let mut errors = Vec::new();
        match Self::parse_at(object, "", &mut errors) {
            Some(body) if errors.is_empty() => Ok(body),
            _ => Err(AppError::Validation(errors)),
        }
    }
}
