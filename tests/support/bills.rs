//! Bills: UINs, charges, billers and the queues behind them.

use super::*;

// ------------------------------------------------------------------ bills

/// The GIS GMP check digit (first pass: weights 1..10 repeating), or `None` when the
/// first pass gives 10 (such prefixes are skipped here rather than second-guessed).
pub fn check_digit(digits: &str) -> Option<u32> {
    let sum: u32 = digits
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * (i as u32 % 10 + 1))
        .sum();
    let d = sum % 11;
    (d < 10).then_some(d)
}

/// A valid UIN of `length` digits, unique for this run.
pub fn uin(length: usize) -> String {
    loop {
        let unique = format!("{}{}", unique_phone(), unique_phone());
        let digits: String = unique.chars().filter(char::is_ascii_digit).collect();
        let body = format!("188{}", &digits[digits.len() - (length - 4)..]);
        if let Some(d) = check_digit(&body) {
            return format!("{body}{d}");
        }
    }
}

/// The payers of a charge: one, by the `kind` of document and its `value`.
pub fn payer(kind: &str, value: &str) -> Value {
    json!([{"kind": kind, "value": value}])
}

/// The one payer of a charge with this SNILS.
pub fn on_snils(snils: &str) -> Value {
    payer("snils", snils)
}

/// The one payer of a charge with this birth certificate.
pub fn on_certificate(certificate: &str) -> Value {
    payer("birth_certificate", certificate)
}

/// The one payer of a charge with this vehicle registration (STS).
pub fn on_sts(sts: &str) -> Value {
    payer("sts", sts)
}

pub fn charge(amount: u64, payers: Value) -> Value {
    json!({
        "amount": amount,
        "payee": {
            "name": "ГБОУ Школа № 1234",
            "inn": "7707083893",
            "kpp": "770701001",
            "bic": "044525000",
            "account": "03234643350000007300",
        },
        "purpose": "Родительская плата за присмотр и уход, ноябрь",
        "kbk": "07511302992020000130",
        "oktmo": "45383000",
        "bill_date": "2026-11-01",
        "due_date": "2026-12-10",
        "category": "kindergarten",
        "payers": payers,
    })
}

pub struct BillerKey {
    pub id: String,
    pub key: String,
}

/// A biller registered for the UINs [`uin`] makes (`188…`) and the payee of [`charge`].
pub fn new_biller(name: &str) -> BillerKey {
    new_biller_under(name, "188")
}

/// A biller registered for the UINs that start with `prefix`, and the payee of [`charge`].
pub fn new_biller_under(name: &str, prefix: &str) -> BillerKey {
    let created = admin(&[
        "create-biller",
        "--name",
        name,
        "--uin-prefixes",
        prefix,
        "--payee-name",
        "ГБОУ Школа № 1234",
        "--payee-inn",
        "7707083893",
        "--payee-kpp",
        "770701001",
        "--payee-bic",
        "044525000",
        "--payee-account",
        "03234643350000007300",
    ]);
    BillerKey {
        id: text(&created["biller_id"]),
        key: text(&created["key"]),
    }
}

/// The UINs of a list of bills, in its order.
pub fn uins_of(reply: &Reply) -> Vec<String> {
    reply.body["bills"]
        .as_array()
        .map(|b| {
            b.iter()
                .filter_map(|b| b["uin"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub async fn as_biller(
    api: &Api,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> Reply {
    api.call(method, path, &unique_ip(), Some(key), body).await
}

impl BillerKey {
    /// `PUT` of the charge `uin` with this key.
    pub async fn put(&self, api: &Api, uin: &str, body: Value) -> Reply {
        let path = format!("/v1/biller/charges/{uin}");
        api.put_as(&self.key, &path, body).await
    }

    /// `GET` of the charge `uin` with this key.
    pub async fn get(&self, api: &Api, uin: &str) -> Reply {
        let path = format!("/v1/biller/charges/{uin}");
        api.get_as(&self.key, &path).await
    }

    /// `DELETE` (cancelling) of the charge `uin` with this key.
    pub async fn cancel(&self, api: &Api, uin: &str) -> Reply {
        let path = format!("/v1/biller/charges/{uin}");
        api.delete_as(&self.key, &path).await
    }

    /// Puts a new charge of `amount` kopecks in `category` on `payers` (else as
    /// [`charge`]) with this key; its UIN.
    pub async fn charge(&self, api: &Api, category: &str, amount: u64, payers: Value) -> String {
        let uin = uin(20);
        let mut body = charge(amount, payers);
        body["category"] = json!(category);
        let reply = self.put(api, &uin, body).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        uin
    }

    /// Several [`BillerKey::charge`]s, one `(category, amount, payers)` each, put in that
    /// order: the UINs of a scenario's bills.
    pub async fn charges<const N: usize>(
        &self,
        api: &Api,
        charges: [(&str, u64, Value); N],
    ) -> [String; N] {
        let mut uins = Vec::with_capacity(N);
        for (category, amount, payers) in charges {
            uins.push(self.charge(api, category, amount, payers).await);
        }
        uins.try_into()
            .unwrap_or_else(|_| unreachable!("one UIN per charge"))
    }
}

/// Waits until a queue has no message visible or in flight, for at most two minutes.
pub async fn wait_for_empty_queue(api: &Api, suffix: &str) {
    let url = api.queue_url(suffix).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let attributes = api
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap_or_else(|e| panic!("queue attributes: {e}"));
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| {
            attributes
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let left = count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            + count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
        if left == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{suffix}: {left} messages never handled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Fires a reconciliation run and waits until its pages (and any other run's) are done.
pub async fn reconcile(api: &Api) -> Value {
    let planned = api.fire_schedule("reconcile-payments").await;
    assert_eq!(planned["planned"], 17, "{planned}");
    wait_for_empty_queue(api, "-reconcile").await;
    planned
}
