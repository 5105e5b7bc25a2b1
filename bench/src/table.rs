//! The whole single table read back after a run, for the checks of the books (a test
//! tool may scan it; the functions never do).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use shared::services::payments::Payment;
use uslugi_local::provision::Clients;

/// One item: its string and its number attributes (numbers as DynamoDB writes them).
#[derive(Debug, Default)]
pub struct Row {
    strings: BTreeMap<String, String>,
    numbers: BTreeMap<String, String>,
}

impl Row {
    /// A string attribute.
    pub fn text(&self, name: &str) -> Option<String> {
        self.strings.get(name).cloned()
    }

    /// A whole-number attribute; 0 when there is none.
    pub fn number(&self, name: &str) -> u64 {
        self.numbers
            .get(name)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    }

    /// The payment of a `PAYMENT#` item (sort key `sk`): its document and status.
    pub fn payment(&self, sk: &str) -> Result<StoredPayment> {
        let doc = self
            .text("doc")
            .with_context(|| format!("payment {sk}: no doc"))?;
        let payment: Payment =
            serde_json::from_str(&doc).with_context(|| format!("payment {sk}: its doc"))?;
        Ok(StoredPayment {
            id: payment.id.into(),
            status: self.text("status").unwrap_or_default(),
            uins: payment
                .bills
                .into_iter()
                .map(|b| b.uin.as_str().to_string())
                .collect(),
            amount: payment.amount,
            total: payment.total,
        })
    }
}

/// A payment as stored in the table.
#[derive(Debug, Clone)]
pub struct StoredPayment {
    pub id: String,
    pub status: String,
    pub uins: Vec<String>,
    pub amount: u64,
    pub total: u64,
}

/// The payments that succeeded, as the checks of the books read them.
pub fn succeeded(payments: &[StoredPayment]) -> Vec<&StoredPayment> {
    payments
        .iter()
        .filter(|p| p.status == "succeeded")
        .collect()
}

/// The ids of the `succeeded` payments of each bill, by UIN: a bill with two was paid
/// twice (what the load test's and the chaos run's books both check).
pub fn paid_by_bill<'a>(succeeded: &[&'a StoredPayment]) -> BTreeMap<&'a str, Vec<&'a str>> {
    let mut paid: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in succeeded {
        for uin in &p.uins {
            paid.entry(uin.as_str()).or_default().push(p.id.as_str());
        }
    }
    paid
}

/// Every item of `table`, page by page (the SDK's paginator follows the pages).
pub async fn scan(moto: &Clients, table: &str) -> Result<Vec<Row>> {
    let items = moto
        .dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .context("scanning the table")?;
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let mut row = Row::default();
        for (name, value) in item {
            if let Ok(s) = value.as_s() {
                row.strings.insert(name, s.clone());
            } else if let Ok(n) = value.as_n() {
                row.numbers.insert(name, n.clone());
            }
        }
        rows.push(row);
    }
    Ok(rows)
}
