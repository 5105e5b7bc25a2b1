//! bills: a citizen's bills found from ten identifiers of the profile (one query each, run
//! concurrently), bills looked up by UIN (the account's lookup counter, the bill, and for
//! an unpaid bill its biller's revocation: three DynamoDB calls, two when there is no
//! bill), fines by СТС.
//!
//! Lookups by UIN and by СТС are limited per account in the table (about 30 in ten
//! minutes); every 20 of them move to a fresh citizen, so the run never reaches the limit
//! and measures the lookups, not the refusals.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use uslugi_local::provision::Clients;

use super::documents::{self, AdultDocuments};
use super::{charge_body, Member, Portal};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{requests, routes, with_query, CallBudget, Cursor, Script, Step};

routes! {
    BY_UIN = "GET /v1/bills/{uin}";
    LIST = "GET /v1/bills";
    FINES = "GET /v1/fines";
}

/// Families whose bills are listed, in turn.
const FAMILIES: usize = 3;
/// Children of each family: each with a birth certificate and a SNILS.
const CHILDREN: u64 = 3;
/// Identifiers of each family: SNILS, passport and INN, two per child, one vehicle.
pub const IDENTIFIERS: usize = 3 + 2 * CHILDREN as usize + 1;
/// Unpaid bills each family has, under 7 of its identifiers (and one cancelled).
const UNPAID: usize = 8;
/// Lookups by UIN or СТС one citizen makes before the next one takes over.
const LOOKUPS_PER_CITIZEN: u32 = 20;

/// The cases the call budget applies to.
const UIN_FOUND: &str = "UIN lookup: bill found";
const UIN_UNKNOWN: &str = "UIN lookup: unknown UIN (404)";

requests! {
    enum Kind {
        List => "list bills: 10 identifiers", "200";
        ListFines => "list bills: fines only", "200";
        ListPage => "list bills: a page of 2", "200";
        ListBadFilter => "list bills: unknown category (422)", "422 validation_failed (invalid_category)";
        UinFound => UIN_FOUND, "200";
        UinUnknown => UIN_UNKNOWN, "404 bill_not_found";
        UinBroken => "UIN lookup: wrong check digit (422)", "422 validation_failed (uin_checksum)";
        Fines => "fines by СТС: two found", "200";
        NoFines => "fines by СТС: none", "200";
        FinesBadSts => "fines by СТС: malformed (422)", "422 validation_failed (vehicle_certificate_format)";
    }
}

/// One cycle of 20 requests: 6 lists, 11 lookups by UIN, 5 by СТС... (see `describe`).
const CYCLE: [Kind; 20] = {
    use Kind::*;
    [
        List,
        UinFound,
        UinFound,
        Fines,
        ListFines,
        UinUnknown,
        UinBroken,
        List,
        UinFound,
        NoFines,
        ListPage,
        UinFound,
        ListBadFilter,
        FinesBadSts,
        List,
        UinFound,
        UinFound,
        Fines,
        List,
        UinFound,
    ]
};

/// A family: the parent who lists the bills, the vehicle's СТС and the UINs billed.
struct Family {
    parent: Member,
    sts: String,
    uins: Vec<String>,
}

pub struct Bills {
    portal: Portal,
    at: Cursor<Kind>,
    families: Vec<Family>,
    /// The citizen making lookups now, and how many it made.
    looker: Option<Member>,
    lookers: u32,
    looked_up: u32,
}

impl Bills {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            portal: Portal::new(spec, moto)?,
            at: Cursor::default(),
            families: Vec::new(),
            looker: None,
            lookers: 0,
            looked_up: 0,
        })
    }

    /// A parent with verified SNILS, passport and INN, three children (birth certificate
    /// and SNILS each) and a car: ten identifiers; and charges of four billers under
    /// seven of them.
    async fn family(&self, f: u64, billers: &[(String, String)]) -> Result<Family> {
        let n = numbering::BILLS.citizens + 1 + f as u32;
        let parent = self.portal.member(n).await?;
        let serial = numbering::BILLS.documents + f * 100;
        let mut adult = AdultDocuments::verified(serial, parent.citizen.last_name.ends_with('а'));
        // The parent the children's birth records name, so the links are verified.
        adult.snils = documents::mother_on_birth_record(serial + 1);
        self.portal
            .make_standard(&parent.account_id, &adult.profile_body())
            .await?;
        let mut children = Vec::new();
        for c in 1..=CHILDREN {
            let child = documents::child_body(serial + c, true);
            self.portal.add_child(&parent.account_id, &child).await?;
            children.push(child);
        }
        let sts = documents::sts(serial);
        self.portal
            .add_vehicle(
                &parent.account_id,
                &json!({"sts": sts, "plate": documents::plate(serial), "title": "Škoda Octavia"}),
            )
            .await?;
        let payer = |kind: &str, value: &Json| json!([{"kind": kind, "value": value}]);
        let passport = json!(format!(
            "{} {}",
            adult.passport_series, adult.passport_number
        ));
        let charges = [
            (0, "utilities", payer("snils", &json!(adult.snils))),
            (3, "taxes", payer("inn", &json!(adult.inn))),
            (3, "other", payer("passport", &passport)),
            (
                1,
                "kindergarten",
                payer("birth_certificate", &children[0]["birth_certificate"]),
            ),
            (2, "clubs", payer("snils", &children[1]["snils"])),
            (
                1,
                "kindergarten",
                payer("birth_certificate", &children[2]["birth_certificate"]),
            ),
            (2, "fines", payer("sts", &json!(sts))),
            (2, "fines", payer("sts", &json!(sts))),
        ];
        let mut uins = Vec::new();
        for (i, (biller, category, payers)) in charges.into_iter().enumerate() {
            let uin = documents::uin(serial + i as u64);
            let (id, _) = &billers[biller];
            self.portal
                .put_charge(
                    id,
                    &uin,
                    &charge_body(category, 120_000 + 1_000 * i as u64, payers),
                )
                .await?;
            uins.push(uin);
        }
        // A cancelled bill is not listed.
        let cancelled = documents::uin(serial + 50);
        self.portal
            .put_charge(
                &billers[0].0,
                &cancelled,
                &charge_body("utilities", 99_000, payer("snils", &json!(adult.snils))),
            )
            .await?;
        self.portal
            .charges
            .cancel(
                &billers[0].0.parse()?,
                &shared::domain::Uin::parse("uin", &cancelled)
                    .map_err(|e| anyhow::anyhow!("a fixture UIN: {}", e.code))?,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("cancelling a fixture charge: {e}"))?;
        Ok(Family { parent, sts, uins })
    }

    async fn prepare(&mut self) -> Result<()> {
        let mut billers = Vec::new();
        for name in [
            "ГБУ «Жилищник района Арбат»",
            "ГБОУ Школа № 1234",
            "ГУ МВД России по г. Москве",
            "ИФНС России № 30 по г. Москве",
        ] {
            billers.push(self.portal.biller(name).await?);
        }
        for f in 0..FAMILIES as u64 {
            let family = self.family(f, &billers).await?;
            self.families.push(family);
        }
        Ok(())
    }

    /// The citizen for the next lookup: a new one every `LOOKUPS_PER_CITIZEN`.
    async fn looker(&mut self) -> Result<Member> {
        if self.looked_up.is_multiple_of(LOOKUPS_PER_CITIZEN) || self.looker.is_none() {
            self.lookers += 1;
            self.looker = Some(
                self.portal
                    .member(numbering::BILL_LOOKUPS.citizens + self.lookers)
                    .await?,
            );
        }
        self.looked_up += 1;
        self.looker.clone().context("no citizen for lookups")
    }
}

impl Script for Bills {
    const ROUTES: &'static [&'static str] = ROUTES;
    fn describe(&self) -> String {
        format!(
            "repeating cycles of 20 requests. The harness prepares, with the shared crate's \
             services, four billers and {FAMILIES} families: a parent with SNILS, passport and \
             INN verified by the registry sandbox, {CHILDREN} children with a birth \
             certificate and a SNILS each, and a car — {IDENTIFIERS} identifiers — with \
             {UNPAID} unpaid charges under 7 of them and a cancelled one. Each cycle: the \
             bills of a family listed 4 times (all, fines only, a page of 2) and once with an \
             unknown category (422); 11 lookups by UIN (7 found, 1 unknown: 404, 1 wrong \
             check digit: 422); 4 by СТС (two fines, none, malformed: 422). The families take \
             turns per cycle; lookups are made by citizens registered and signed in by the \
             harness, a new one every {LOOKUPS_PER_CITIZEN} lookups, so that no account \
             nears the per-account lookup limit"
        )
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.families.is_empty() {
            self.prepare().await?;
        }
        let (kind, serial) = self.at.advance(&CYCLE);
        let family = &self.families[self.at.step / CYCLE.len() % FAMILIES];
        let uin = family.uins[serial as usize % family.uins.len()].clone();
        let sts = family.sts.clone();
        let parent = family.parent.clone();
        let list =
            |query: &[(&str, &str)]| with_query(parent.request(LIST, &[], None, serial), query);
        let event = match kind {
            List => parent.request(LIST, &[], None, serial),
            ListFines => list(&[("category", "fines")]),
            ListPage => list(&[("limit", "2")]),
            ListBadFilter => list(&[("category", "parking")]),
            UinFound | UinUnknown | UinBroken => {
                let looker = self.looker().await?;
                let uin = match kind {
                    UinUnknown => {
                        documents::uin(numbering::BILLS.documents + 900_000 + u64::from(serial))
                    }
                    UinBroken => documents::broken_uin(&uin),
                    _ => uin,
                };
                looker.request(BY_UIN, &[("uin", &uin)], None, serial)
            }
            Fines | NoFines | FinesBadSts => {
                let looker = self.looker().await?;
                let sts = match kind {
                    NoFines => {
                        documents::sts(numbering::BILLS.documents + 900_000 + u64::from(serial))
                    }
                    FinesBadSts => "12".to_string(),
                    _ => sts,
                };
                with_query(looker.request(FINES, &[], None, serial), &[("sts", &sts)])
            }
        };
        kind.step(event)
    }

    fn call_budgets(&self) -> Vec<CallBudget> {
        vec![
            CallBudget {
                case: UIN_FOUND.into(),
                service: "dynamodb.",
                calls: 3,
                why: "a UIN lookup that finds an unpaid bill makes exactly three DynamoDB \
                      calls: one conditional UpdateItem of the account's lookup counter, one \
                      GetItem of the bill, one BatchGetItem of its biller (a bill of a \
                      revoked biller is shown withdrawn)",
            },
            CallBudget {
                case: UIN_UNKNOWN.into(),
                service: "dynamodb.",
                calls: 2,
                why: "a UIN lookup that finds no bill makes exactly two DynamoDB calls: the \
                      lookup counter's UpdateItem and the GetItem that finds nothing",
            },
        ]
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        use Kind::*;
        let Some(kind) = self.at.last else {
            return Ok(());
        };
        if status != 200 {
            return Ok(());
        }
        let count = |name: &str| -> Result<usize> {
            Ok(body[name]
                .as_array()
                .with_context(|| format!("the answer has no `{name}` list: {body}"))?
                .len())
        };
        match kind {
            List => {
                let bills = count("bills")?;
                if bills != UNPAID {
                    bail!("the family's list has {bills} bills, expected {UNPAID}: {body}");
                }
                let queries = calls
                    .iter()
                    .filter(|c| c.operation == "dynamodb.Query")
                    .count();
                if queries < IDENTIFIERS {
                    bail!("listing bills of {IDENTIFIERS} identifiers made only {queries} queries");
                }
            }
            ListFines if count("bills")? != 2 => bail!("fines only: expected 2 bills: {body}"),
            ListPage if count("bills")? != 2 || !body["next_after"].is_string() => {
                bail!("a page of 2 is not 2 bills with a cursor: {body}")
            }
            Fines if count("fines")? != 2 => bail!("expected 2 fines by the СТС: {body}"),
            NoFines if count("fines")? != 0 => bail!("expected no fines: {body}"),
            _ => {}
        }
        Ok(())
    }
}
