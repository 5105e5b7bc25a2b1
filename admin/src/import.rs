//! `import-charges`: a biller's charges from a file, written as the batch route writes
//! them (each item validated and written on its own, idempotent on the UIN), 500 at a
//! time. A JSON file holds an array of charge bodies with their `uin` (or
//! `{"charges": [...]}`); a CSV file has a header row with the columns in [`COLUMNS`].

use serde_json::{json, Map, Value};

/// CSV columns. `payers` lists `kind:value` pairs separated by `;`
/// (`snils:112-233-445 95;sts:77 УО 123456`); the discount columns may be empty.
pub const COLUMNS: [&str; 16] = [
    "uin",
    "amount",
    "category",
    "purpose",
    "kbk",
    "oktmo",
    "bill_date",
    "due_date",
    "payee_name",
    "payee_inn",
    "payee_kpp",
    "payee_bic",
    "payee_account",
    "discount_amount",
    "discount_until",
    "payers",
];

/// The charge bodies in a file, by its extension.
pub fn read(path: &str) -> Result<Vec<Value>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if path.to_ascii_lowercase().ends_with(".csv") {
        from_csv(&raw)
    } else {
        from_json(&raw)
    }
    .map_err(|e| format!("{path}: {e}"))
}

fn from_json(raw: &[u8]) -> Result<Vec<Value>, String> {
    match serde_json::from_slice::<Value>(raw).map_err(|e| format!("not JSON: {e}"))? {
        Value::Array(items) => Ok(items),
        Value::Object(mut o) => match o.remove("charges") {
            Some(Value::Array(items)) => Ok(items),
            _ => Err("expected an array of charges or {\"charges\": [...]}".into()),
        },
        _ => Err("expected an array of charges or {\"charges\": [...]}".into()),
    }
}

fn from_csv(raw: &[u8]) -> Result<Vec<Value>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(raw);
    let headers = reader
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .clone();
    let unknown: Vec<&str> = headers.iter().filter(|h| !COLUMNS.contains(h)).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown CSV columns {unknown:?}; the columns are {}",
            COLUMNS.join(",")
        ));
    }
    let mut items = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("CSV row {}: {e}", line + 2))?;
        let cell = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
        };
        items.push(row(&cell));
    }
    Ok(items)
}

/// A CSV row as the JSON body the charge validation reads; what cannot be read as its
/// type is passed on as text, so validation names the field.
fn row<'a>(cell: &dyn Fn(&str) -> Option<&'a str>) -> Value {
    let number = |name: &str| -> Option<Value> {
        cell(name).map(|v| {
            v.parse::<u64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(v))
        })
    };
    let mut body = Map::new();
    // The columns copied as text: all but the amount, the payee, the discount and the
    // payers, which are read below.
    let text = COLUMNS.into_iter().filter(|c| {
        !c.starts_with("payee_")
            && !c.starts_with("discount_")
            && !matches!(*c, "amount" | "payers")
    });
    for name in text {
        if let Some(v) = cell(name) {
            body.insert(name.into(), json!(v));
        }
    }
    if let Some(v) = number("amount") {
        body.insert("amount".into(), v);
    }
    let mut payee = Map::new();
    for (column, field) in [
        ("payee_name", "name"),
        ("payee_inn", "inn"),
        ("payee_kpp", "kpp"),
        ("payee_bic", "bic"),
        ("payee_account", "account"),
    ] {
        if let Some(v) = cell(column) {
            payee.insert(field.into(), json!(v));
        }
    }
    if !payee.is_empty() {
        body.insert("payee".into(), Value::Object(payee));
    }
    if cell("discount_amount").is_some() || cell("discount_until").is_some() {
        let mut discount = Map::new();
        if let Some(v) = number("discount_amount") {
            discount.insert("amount".into(), v);
        }
        if let Some(v) = cell("discount_until") {
            discount.insert("until".into(), json!(v));
        }
        body.insert("discount".into(), Value::Object(discount));
    }
    if let Some(list) = cell("payers") {
        let payers: Vec<Value> = list
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once(':') {
                Some((kind, value)) => json!({"kind": kind.trim(), "value": value.trim()}),
                None => json!({"kind": p, "value": ""}),
            })
            .collect();
        body.insert("payers".into(), Value::Array(payers));
    }
    Value::Object(body)
}

/// Writes the items in batches of the batch route's size; each item's outcome in order.
pub async fn write_all<S, A>(
    charges: &shared::services::charges::ChargeService<S, A>,
    biller_id: &shared::domain::BillerId,
    items: &[serde_json::Value],
    now: time::OffsetDateTime,
) -> Result<Vec<serde_json::Value>, String>
where
    S: shared::services::charges::ChargeStore + Sync,
    A: shared::services::notices::BillAnnouncer + Sync,
{
    use shared::services::charges::{WriteOutcome, MAX_BATCH};
    if items.is_empty() {
        return Err("the file holds no charges".into());
    }
    let mut results = Vec::with_capacity(items.len());
    for (chunk_index, chunk) in items.chunks(MAX_BATCH).enumerate() {
        let written = charges
            .put_batch(biller_id, chunk, now)
            .await
            .map_err(|e| e.to_string())?;
        for (i, item) in written.into_iter().enumerate() {
            let index = chunk_index * MAX_BATCH + i;
            results.push(match item.result {
                Ok(outcome) => serde_json::json!({
                    "index": index,
                    "uin": item.uin,
                    "outcome": match outcome {
                        WriteOutcome::Created => "created",
                        WriteOutcome::Updated => "updated",
                        WriteOutcome::Unchanged => "unchanged",
                    },
                }),
                Err(e) => {
                    let problem = e.problem();
                    // Field pointers name the file's item, not the batch's.
                    let errors: Vec<serde_json::Value> = problem
                        .errors
                        .iter()
                        .map(|f| {
                            serde_json::json!({
                                "field": f.field.replacen(&format!("/charges/{i}"), &format!("/{index}"), 1),
                                "code": f.code,
                                "detail": f.detail,
                            })
                        })
                        .collect();
                    serde_json::json!({
                        "index": index,
                        "uin": item.uin,
                        "outcome": "failed",
                        "code": problem.code,
                        "errors": errors,
                    })
                }
            });
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_charge_bodies() {
        let csv = "uin,amount,category,purpose,kbk,oktmo,bill_date,due_date,payee_name,payee_inn,payee_kpp,payee_bic,payee_account,discount_amount,discount_until,payers\n\
                   18810177200000012341,150000,kindergarten,Сад,07511302992020000130,45383000,2026-11-01,2026-12-10,ГБОУ,7707083893,770701001,044525000,03234643450000007300,,,snils:112-233-445 95;sts:77 УО 123456\n\
                   1881,abc,fines,Штраф,1,2,x,y,n,i,k,b,a,250000,2026-12-01,\n";
        let items = from_csv(csv.as_bytes()).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["amount"], 150_000);
        assert_eq!(items[0]["payee"]["inn"], "7707083893");
        assert_eq!(
            items[0]["payers"][1],
            json!({"kind": "sts", "value": "77 УО 123456"})
        );
        assert!(items[0].get("discount").is_none());
        // Kept as text for validation to name.
        assert_eq!(items[1]["amount"], "abc");
        assert_eq!(items[1]["discount"]["amount"], 250_000);
        assert!(items[1].get("payers").is_none());
    }

    #[test]
    fn unknown_columns_are_refused() {
        assert!(from_csv(b"uin,colour\n1,red\n").is_err());
    }

    #[test]
    fn json_files() {
        assert_eq!(from_json(br#"[{"uin": "1"}]"#).unwrap().len(), 1);
        assert_eq!(from_json(br#"{"charges": [{}, {}]}"#).unwrap().len(), 2);
        assert!(from_json(br#"{"uin": "1"}"#).is_err());
    }
}
