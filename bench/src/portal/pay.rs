//! pay: a citizen pays bills by card through the sandbox acquirer — with an idempotency
//! key, the same key again (a replay, not a second charge), a declined card, a card that
//! asks for 3-D Secure and its confirmation, a saved card — and the refusals on the way:
//! another citizen's bill and payment, a key reused for another request, no key, a paid
//! bill, a card number in the body, saving a card without a recent step-up.
//!
//! The biller, its charges, both citizens and the one-time card tokens (the acquirer's
//! card page) are made by the harness with the shared crate's services, outside the
//! timing; each cycle starts on emptied tables with a fresh biller, citizens and bills.

use std::cell::Cell;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use shared::adapters::acquirer::SandboxAcquirer;
use shared::adapters::dynamodb::DynamoStore;

use super::documents::{self, Sandbox};
use super::{card_token, charge_body, test_card, text, text_is, Member, Portal};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{requests, routes, Cursor, Script, Step};

routes! {
    PAY = "POST /v1/payments";
    ARCHIVE = "GET /v1/payments";
    READ = "GET /v1/payments/{id}";
    CONFIRM = "POST /v1/payments/{id}/confirm";
    RECEIPT = "GET /v1/payments/{id}/receipt";
    METHODS = "GET /v1/payment-methods";
    ADD_METHOD = "POST /v1/payment-methods";
}

/// Bills each cycle pays (or tries to).
const BILLS: u64 = 7;

/// The sandbox acquirer's test cards (docs/testing.md).
const SUCCEEDS: &str = super::GOOD_CARD;
const DECLINED: &str = "4000000000000002";
const THREE_DS: &str = "4000000000003220";

/// The case whose calls must not charge again.
const REPLAY: &str = "same key again (replay)";

/// Operations that write or send: a replay must make none.
const WRITES: [&str; 9] = [
    "dynamodb.PutItem",
    "dynamodb.UpdateItem",
    "dynamodb.DeleteItem",
    "dynamodb.TransactWriteItems",
    "dynamodb.BatchWriteItem",
    "sqs.SendMessage",
    "sqs.SendMessageBatch",
    "sesv2.SendEmail",
    "sns.Publish",
];

requests! {
    enum Kind {
        /// Bills 1 and 2 by card, with the cycle's first key.
        PayTwo => "pay 2 bills by card", "201";
        Replay => REPLAY, "201";
        Read => "read a payment", "200";
        Receipt => "its receipt", "200";
        /// Bill 3 with a card the bank declines.
        Declined => "declined card (402)", "402 payment_declined";
        /// Bill 3 again, with a good card.
        PayAfterDecline => "pay 1 bill by card", "201";
        /// The stranger pays bill 1, which the payer paid.
        StrangersBill => "a bill another citizen paid (404)", "404 bill_not_found";
        /// Bill 4 with a card that asks for 3-D Secure.
        ThreeDs => "3-D Secure card (202)", "202";
        StrangerConfirms => "confirm another citizen's payment (404)", "404 payment_not_found";
        Confirm => "confirm 3-D Secure", "201";
        ConfirmAgain => "confirm it again (409)", "409 payment_not_awaiting_confirmation";
        KeyReused => "a key used for another request (422)", "422 idempotency_key_reused";
        NoKey => "no idempotency key (400)", "400 idempotency_key_required";
        /// Bill 2 again, with a new key.
        PaidAgain => "a paid bill again (409)", "409 bill_paid";
        SaveCard => "save a card (step-up fresh)", "201";
        /// Signed in an hour ago, no step-up since: past the template's window.
        SaveCardStale => "save a card without a recent step-up (403)", "403 step_up_required";
        /// Bills 5 to 7 with the saved card.
        PaySaved => "pay 3 bills by saved card", "201";
        CardNumber => "a card number in the body (422)", "422 card_number_not_accepted";
        Archive => "the payment archive", "200";
        Methods => "saved methods", "200";
    }
}

/// One cycle: a request of each kind, in the order declared.
const CYCLE: [Kind; Kind::ALL.len()] = Kind::ALL;

struct Prepared {
    payer: Member,
    stranger: Member,
    /// The first payment of the cycle, its key and body (for the replay).
    first: Option<(String, String, Json)>,
    /// The payment waiting for 3-D Secure.
    three_ds: Option<String>,
    saved_method: Option<String>,
}

pub struct Pay {
    portal: Portal,
    acquirer: SandboxAcquirer,
    at: Cursor<Kind>,
    cycles: u64,
    prepared: Option<Prepared>,
    /// Whether the last answer carried `Idempotent-Replayed: true`.
    replayed: Cell<bool>,
    /// What the next `observe` remembers: the key and body of the first payment.
    pending_first: Option<(String, Json)>,
}

impl Pay {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        let portal = Portal::new(spec, moto)?;
        let acquirer = SandboxAcquirer::new(DynamoStore::new(
            moto.dynamodb.clone(),
            portal.table().table_name.clone(),
        ));
        Ok(Self {
            portal,
            acquirer,
            at: Cursor::default(),
            cycles: 0,
            prepared: None,
            replayed: Cell::new(false),
            pending_first: None,
        })
    }

    fn uin(&self, k: u64) -> String {
        documents::uin(numbering::PAY.documents + self.cycles * 100 + k)
    }

    /// A one-time token from the acquirer's card page, as the citizen's browser gets it.
    async fn token(&self, number: &str) -> Result<String> {
        let now = OffsetDateTime::now_utc();
        card_token(&self.acquirer, &test_card(number, now), now).await
    }

    async fn card(&self, number: &str) -> Result<Json> {
        Ok(json!({"type": "card", "token": self.token(number).await?}))
    }

    async fn prepare(&mut self) -> Result<()> {
        self.cycles += 1;
        let n = numbering::PAY.citizens + 2 * self.cycles as u32;
        let payer = self.portal.member(n).await?;
        let stranger = self.portal.member(n + 1).await?;
        let (biller, _) = self.portal.biller("ГБУ «Жилищник района Арбат»").await?;
        for k in 1..=BILLS {
            let payers = json!([{"kind": "snils", "value": documents::snils(numbering::PAY.documents + self.cycles * 100 + k, Sandbox::Verified)}]);
            let body = charge_body("utilities", 100_000 + k * 1_000, payers);
            self.portal.put_charge(&biller, &self.uin(k), &body).await?;
        }
        self.prepared = Some(Prepared {
            payer,
            stranger,
            first: None,
            three_ds: None,
            saved_method: None,
        });
        Ok(())
    }

    /// `POST /v1/payments` by `who`, with `key` as its `Idempotency-Key` if given.
    fn pay(&self, who: &Member, key: Option<&str>, body: &Json) -> Json {
        let mut event = who.request(PAY, &[], Some(body), self.at.serial);
        if let Some(key) = key {
            event["headers"]["idempotency-key"] = json!(key);
        }
        event
    }

    fn key(&self) -> String {
        format!("bench-{}-{}", self.cycles, self.at.serial)
    }

    /// The cycle's bills numbered `bills`, as the body names them.
    fn uins(&self, bills: &[u64]) -> Vec<String> {
        bills.iter().map(|&k| self.uin(k)).collect()
    }

    /// The body that pays the cycle's `bills` with a fresh token of the card `number`.
    async fn by_card(&self, bills: &[u64], number: &str) -> Result<Json> {
        Ok(json!({"uins": self.uins(bills), "method": self.card(number).await?}))
    }

    /// `POST /v1/payments` by `who` with a new key, paying `bills` with the card `number`.
    async fn pay_new(&self, who: &Member, bills: &[u64], number: &str) -> Result<Json> {
        let body = self.by_card(bills, number).await?;
        Ok(self.pay(who, Some(&self.key()), &body))
    }
}

/// The event as the authorizer passes it for a session that last proved presence (a
/// login or a step-up code) at `at`.
pub fn proven(mut event: Json, at: i64) -> Json {
    event["requestContext"]["authorizer"]["lambda"]["proven_at"] = json!(at.to_string());
    event
}

impl Script for Pay {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 20 requests by two citizens, on bills of a biller made by the \
         harness and card tokens from the sandbox acquirer's card page: 2 bills paid by card \
         with an idempotency key (201), the same key and body again (201, \
         `Idempotent-Replayed: true`, the same payment, and no write or message: no second \
         charge), the payment and its receipt read, a declined card (402) and the bill paid \
         with another card (201), a 3-D Secure card (202 `requires_confirmation`) confirmed \
         (201) once, not twice (409) and not by the other citizen (404), a card saved with a \
         fresh step-up (201) and 3 bills paid with it (201), the archive and the saved \
         methods read; refusals: a bill the other citizen paid (404), a key reused for \
         another request (422), no key (400), a paid bill (409), a card number in the body \
         (422), a card saved an hour after the last proof of presence (403)"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.prepared.is_none() {
            self.prepare().await?;
        }
        let (kind, serial) = self.at.advance(&CYCLE);
        self.pending_first = None;
        let p = self.prepared.as_ref().context("nothing prepared")?;
        let (me, stranger) = (&p.payer, &p.stranger);
        let first = || p.first.clone().context("no first payment in this cycle");
        let three_ds = || p.three_ds.clone().context("no 3-D Secure payment");
        let event = match kind {
            PayTwo => {
                let key = self.key();
                let body = self.by_card(&[1, 2], SUCCEEDS).await?;
                let event = self.pay(me, Some(&key), &body);
                self.pending_first = Some((key, body));
                event
            }
            Replay => {
                let (_, key, body) = first()?;
                self.pay(me, Some(&key), &body)
            }
            Read => me.request(READ, &[("id", &first()?.0)], None, serial),
            Receipt => me.request(RECEIPT, &[("id", &first()?.0)], None, serial),
            Declined => self.pay_new(me, &[3], DECLINED).await?,
            PayAfterDecline => self.pay_new(me, &[3], SUCCEEDS).await?,
            StrangersBill => self.pay_new(stranger, &[1], SUCCEEDS).await?,
            ThreeDs => self.pay_new(me, &[4], THREE_DS).await?,
            StrangerConfirms => {
                stranger.request(CONFIRM, &[("id", &three_ds()?)], Some(&json!({})), serial)
            }
            Confirm => me.request(CONFIRM, &[("id", &three_ds()?)], Some(&json!({})), serial),
            ConfirmAgain => me.request(CONFIRM, &[("id", &three_ds()?)], Some(&json!({})), serial),
            KeyReused => {
                let (_, key, _) = first()?;
                self.pay(me, Some(&key), &self.by_card(&[5], SUCCEEDS).await?)
            }
            NoKey => self.pay(me, None, &self.by_card(&[5], SUCCEEDS).await?),
            PaidAgain => self.pay_new(me, &[2], SUCCEEDS).await?,
            SaveCard | SaveCardStale => {
                let body = self.card(SUCCEEDS).await?;
                let event = me.request(ADD_METHOD, &[], Some(&body), serial);
                // The stale one signed in an hour ago, no step-up since.
                let ago = if kind == SaveCardStale { 3600 } else { 0 };
                proven(event, OffsetDateTime::now_utc().unix_timestamp() - ago)
            }
            PaySaved => {
                let id = p.saved_method.clone().context("no saved card")?;
                let body =
                    json!({"uins": self.uins(&[5, 6, 7]), "method": {"type": "saved", "id": id}});
                self.pay(me, Some(&self.key()), &body)
            }
            CardNumber => {
                let body = json!({"uins": self.uins(&[5]),
                                  "method": {"type": "card", "token": "tok_x", "pan": SUCCEEDS}});
                self.pay(me, Some(&self.key()), &body)
            }
            Archive => me.request(ARCHIVE, &[], None, serial),
            Methods => me.request(METHODS, &[], None, serial),
        };
        kind.step(event)
    }

    fn answer(&self, ok: bool, raw: &[u8]) -> Result<(u16, Json)> {
        let replayed = ok
            && serde_json::from_slice::<Json>(raw).is_ok_and(|r| {
                r["headers"]["idempotent-replayed"] == "true"
                    || r["multiValueHeaders"]["idempotent-replayed"][0] == "true"
            });
        self.replayed.set(replayed);
        crate::measure::http_answer(ok, raw)
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.prepared = None;
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        use Kind::*;
        let Some(kind) = self.at.last else {
            return Ok(());
        };
        let replayed = self.replayed.get();
        let pending = self.pending_first.take();
        let Some(p) = self.prepared.as_mut() else {
            return Ok(());
        };
        let status_of = |want: &str| text_is(body, "status", "a payment", want);
        match (kind, status) {
            (PayTwo, 201) => {
                status_of("succeeded")?;
                if replayed {
                    bail!("a first payment was answered as a replay: {body}");
                }
                let id = text(body, "id", "a payment")?.to_string();
                let (key, request) = pending.context("the first payment's key was not kept")?;
                p.first = Some((id, key, request));
            }
            (Replay, 201) => {
                let first = p.first.as_ref().map(|f| f.0.as_str());
                if !replayed || body["id"].as_str() != first {
                    bail!(
                        "a request sent again with its key must answer the first payment ({first:?}) with `Idempotent-Replayed: true`, got {}: {body}",
                        if replayed { "the header" } else { "no header" }
                    );
                }
                let writes: Vec<&str> = calls
                    .iter()
                    .map(|c| c.operation.as_str())
                    .filter(|op| WRITES.contains(op))
                    .collect();
                if !writes.is_empty() {
                    bail!("a replay wrote or sent: {}", writes.join(" "));
                }
            }
            (PayAfterDecline | PaySaved, 201) | (Confirm, 201) => status_of("succeeded")?,
            (ThreeDs, 202) => {
                status_of("requires_confirmation")?;
                if !body["confirmation_url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("https://"))
                {
                    bail!("a payment waiting for 3-D Secure has no confirmation URL: {body}");
                }
                p.three_ds = Some(text(body, "id", "a payment")?.to_string());
            }
            (Declined, 402) if body["reason"] != "card_declined" => {
                bail!("a declined card was declined for another reason: {body}");
            }
            (SaveCard, 201) => {
                p.saved_method = Some(text(body, "id", "a saved card")?.to_string());
            }
            (Archive, 200) => {
                // Bills 1 and 2, 3 declined and paid, 4, and 5 to 7 by the time it is read.
                let n = body["payments"].as_array().map_or(0, Vec::len);
                if n != 5 {
                    bail!("the archive lists {n} payments, expected 5: {body}");
                }
            }
            (Methods, 200) => {
                let n = body["payment_methods"].as_array().map_or(0, Vec::len);
                if n != 1 {
                    bail!("{n} saved methods, expected the 1 card saved: {body}");
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proven_at_is_the_string_the_authorizer_answers() {
        let event = crate::scenario::authorized(
            crate::scenario::http_api_event(ADD_METHOD, &[], None, "203.0.113.1"),
            "acc",
            "ses",
            "tok",
        );
        let event = proven(event, 1_700_000_000);
        let context = &event["requestContext"]["authorizer"]["lambda"];
        assert_eq!(context["proven_at"], "1700000000");
        assert_eq!(context["account_id"], "acc");
    }

    #[test]
    fn the_cycle_opens_with_the_payment_it_replays() {
        assert_eq!(CYCLE[0], Kind::PayTwo);
        let first = |k: Kind| CYCLE.iter().position(|c| *c == k);
        assert!(first(Kind::Replay) > first(Kind::PayTwo));
        assert!(first(Kind::Confirm) > first(Kind::ThreeDs));
        assert!(first(Kind::PaySaved) > first(Kind::SaveCard));
    }
}
