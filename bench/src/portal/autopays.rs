//! autopays: a citizen sets up an autopayment of utility bills with a saved card — with
//! the fresh proof of presence (step-up) creating one needs — lists, reads, lowers and
//! raises its limit, deletes it; and the refusals: no recent step-up, invalid fields,
//! another citizen's card, another citizen's autopay.
//!
//! Both citizens and the payer's saved card (a one-time token from the sandbox
//! acquirer's card page, saved by the payment service) are made by the harness, outside
//! the timing; each cycle starts on emptied tables.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use shared::adapters::acquirer::SandboxAcquirer;
use shared::adapters::dynamodb::DynamoStore;
use shared::services::identity::Presence;
use shared::services::payments::{
    NewMethod, PayingAs, PaymentNotice, PaymentNoticeQueue, PaymentService,
};
use shared::services::StoreError;

use super::pay::proven;
use super::{card_token, test_card, text, Member, Portal, GOOD_CARD};
use crate::functions::FunctionSpec;
use crate::identity::fixtures::Outbox;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{requests, routes, Cursor, Script, Step};

routes! {
    LIST = "GET /v1/autopays";
    CREATE = "POST /v1/autopays";
    GET = "GET /v1/autopays/{id}";
    PATCH = "PATCH /v1/autopays/{id}";
    DELETE = "DELETE /v1/autopays/{id}";
}

requests! {
    enum Kind {
        Create => "create (step-up fresh)", "201";
        CreateStale => "create without a recent step-up (403)", "403 step_up_required";
        CreateInvalid => "create with invalid fields (422)", "422 validation_failed (invalid_category)";
        StrangerCreates => "create with another citizen's card (422)", "422 validation_failed (payment_method_not_found)";
        List => "list", "200";
        Get => "read", "200";
        StrangerGets => "another citizen's autopay: read (404)", "404 autopay_not_found";
        Lower => "lower the limit (no step-up needed)", "200";
        RaiseStale => "raise the limit without a recent step-up (403)", "403 step_up_required";
        Raise => "raise the limit, new day (step-up fresh)", "200";
        StrangerPatches => "another citizen's autopay: change (404)", "404 autopay_not_found";
        StrangerDeletes => "another citizen's autopay: delete (404)", "404 autopay_not_found";
        StrangerLists => "another citizen's list (empty)", "200";
        Delete => "delete", "204";
        GetDeleted => "read a deleted autopay (404)", "404 autopay_not_found";
        CreateWeekly => "create (step-up fresh)", "201";
    }
}

/// One cycle: a request of each kind, in the order declared.
const CYCLE: [Kind; Kind::ALL.len()] = Kind::ALL;

/// Billers' notices are not what this scenario sends: the fixtures' payment service
/// queues none.
struct NoNotices;

impl PaymentNoticeQueue for NoNotices {
    async fn queue_notices(&self, _: &[PaymentNotice]) -> Result<(), StoreError> {
        Ok(())
    }
}

type Payments = PaymentService<DynamoStore, SandboxAcquirer, Outbox, NoNotices>;

struct Prepared {
    payer: Member,
    stranger: Member,
    method: String,
    /// The autopay the cycle created.
    autopay: Option<String>,
}

pub struct Autopays {
    portal: Portal,
    acquirer: SandboxAcquirer,
    payments: Payments,
    at: Cursor<Kind>,
    cycles: u32,
    prepared: Option<Prepared>,
}

fn body(method: &str) -> Json {
    json!({"name": "Свет и вода", "match": {"category": "utilities"}, "method_id": method,
           "limit": 500_000, "trigger": {"type": "monthly", "day": 5}})
}

fn now_s() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Autopays {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        let portal = Portal::new(spec, moto)?;
        let table = portal.table().clone();
        let store = || DynamoStore::new(moto.dynamodb.clone(), table.table_name.clone());
        Ok(Self {
            acquirer: SandboxAcquirer::new(store()),
            payments: PaymentService::new(
                store(),
                SandboxAcquirer::new(store()),
                Outbox::default(),
                NoNotices,
                table.hasher.clone(),
            ),
            portal,
            at: Cursor::default(),
            cycles: 0,
            prepared: None,
        })
    }

    async fn prepare(&mut self) -> Result<()> {
        self.cycles += 1;
        let n = numbering::AUTOPAYS.citizens + 2 * self.cycles;
        let payer = self.portal.member(n).await?;
        let stranger = self.portal.member(n + 1).await?;
        let now = OffsetDateTime::now_utc();
        let token = card_token(&self.acquirer, &test_card(GOOD_CARD, now), now).await?;
        let saved = self
            .payments
            .add_method(
                &PayingAs::Citizen(payer.account_id.parse()?),
                NewMethod::Card(token),
                Presence { fresh: true },
                now,
            )
            .await
            .map_err(|e| anyhow::anyhow!("saving a fixture card: {e}"))?;
        self.prepared = Some(Prepared {
            payer,
            stranger,
            method: saved.id.to_string(),
            autopay: None,
        });
        Ok(())
    }
}

impl Script for Autopays {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 16 requests by two citizens, the first with a card saved by \
         the harness: an autopay of utility bills created with a fresh step-up (201), \
         listed, read, its limit lowered without a step-up (200) and raised with one (200), \
         deleted (204), then read (404), and another created (201); refusals: creating or \
         raising the limit an hour after the last proof of presence (403), invalid fields \
         (422), the other citizen creating one with the first one's card (422) or reading, \
         changing or deleting the first one's autopay (404), and listing none of it (200, \
         empty)"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.prepared.is_none() {
            self.prepare().await?;
        }
        let (kind, serial) = self.at.advance(&CYCLE);
        let p = self.prepared.as_ref().context("nothing prepared")?;
        let (me, stranger) = (&p.payer, &p.stranger);
        let id = || p.autopay.clone().context("no autopay in this cycle");
        let stale = now_s() - 3600;
        // A request that needs a proof of presence, made at `at`.
        let create = |who: &Member, body: &Json, at| {
            proven(who.request(CREATE, &[], Some(body), serial), at)
        };
        let patch = |who: &Member, body: Json, at| -> Result<Json> {
            let event = who.request(PATCH, &[("id", &id()?)], Some(&body), serial);
            Ok(proven(event, at))
        };
        let event = match kind {
            Create => create(me, &body(&p.method), now_s()),
            CreateStale => create(me, &body(&p.method), stale),
            CreateInvalid => {
                let bad = json!({"name": "", "match": {"category": "cinema"}, "method_id": "x",
                                 "limit": -1, "trigger": {"type": "daily"}});
                create(me, &bad, now_s())
            }
            StrangerCreates => create(stranger, &body(&p.method), now_s()),
            List => me.request(LIST, &[], None, serial),
            Get => me.request(GET, &[("id", &id()?)], None, serial),
            StrangerGets => stranger.request(GET, &[("id", &id()?)], None, serial),
            Lower => patch(me, json!({"limit": 300_000}), stale)?,
            RaiseStale => patch(me, json!({"limit": 900_000}), stale)?,
            Raise => patch(
                me,
                json!({"limit": 700_000, "trigger": {"type": "monthly", "day": 20}}),
                now_s(),
            )?,
            StrangerPatches => patch(stranger, json!({"limit": 1}), now_s())?,
            StrangerDeletes => stranger.request(DELETE, &[("id", &id()?)], None, serial),
            StrangerLists => stranger.request(LIST, &[], None, serial),
            Delete => me.request(DELETE, &[("id", &id()?)], None, serial),
            GetDeleted => me.request(GET, &[("id", &id()?)], None, serial),
            CreateWeekly => {
                let mut weekly = body(&p.method);
                weekly["trigger"] = json!({"type": "weekly", "weekday": 1});
                weekly["match"] = json!({"category": "fines"});
                create(me, &weekly, now_s())
            }
        };
        kind.step(event)
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.prepared = None;
    }

    fn observe(&mut self, status: u16, body: &Json, _calls: &[Call]) -> Result<()> {
        use Kind::*;
        let (Some(kind), Some(p)) = (self.at.last, self.prepared.as_mut()) else {
            return Ok(());
        };
        let listed = || body["autopays"].as_array().map_or(0, Vec::len);
        match (kind, status) {
            (Create, 201) => {
                if body["status"] != "active" || body["method_id"] != p.method.as_str() {
                    bail!("a new autopay is not active with the saved card: {body}");
                }
                p.autopay = Some(text(body, "id", "a new autopay")?.to_string());
            }
            (List, 200) if listed() != 1 => {
                bail!("the list has {} autopays, expected 1: {body}", listed());
            }
            (StrangerLists, 200) if listed() != 0 => {
                bail!("another citizen lists someone else's autopays: {body}");
            }
            (Lower, 200) if body["limit"] != 300_000 => {
                bail!("a lowered limit reads otherwise: {body}");
            }
            (Raise, 200) if body["limit"] != 700_000 || body["trigger"]["day"] != 20 => {
                bail!("a raised limit reads otherwise: {body}");
            }
            _ => {}
        }
        Ok(())
    }
}
