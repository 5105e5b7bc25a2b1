//! profile: a citizen's profile read and edited under its version (`If-Match`/`ETag`),
//! with valid and invalid documents, and children and vehicles, including a child both
//! parents add.

use anyhow::{Context, Result};
use serde_json::{json, Value as Json};
use uslugi_local::provision::Clients;

use super::documents::{self, AdultDocuments};
use super::{number, text, Member, Portal};
use crate::functions::FunctionSpec;
use crate::numbering;
use crate::proxy::Call;
use crate::scenario::{requests, routes, Cursor, Script, Step};

routes! {
    GET = "GET /v1/profile";
    PATCH = "PATCH /v1/profile";
    CHILDREN = "GET /v1/profile/children";
    ADD_CHILD = "POST /v1/profile/children";
    CHILD = "GET /v1/profile/children/{id}";
    PATCH_CHILD = "PATCH /v1/profile/children/{id}";
    DELETE_CHILD = "DELETE /v1/profile/children/{id}";
    VEHICLES = "GET /v1/profile/vehicles";
    ADD_VEHICLE = "POST /v1/profile/vehicles";
    PATCH_VEHICLE = "PATCH /v1/profile/vehicles/{id}";
    DELETE_VEHICLE = "DELETE /v1/profile/vehicles/{id}";
}

requests! {
    enum Kind {
        Read => "read the profile", "200";
        Fill => "fill in personal data and documents (checks queued)", "200";
        Stale => "edit on a stale version (412)", "412 version_mismatch";
        Invalid => "invalid documents (422)", "422 validation_failed (snils_checksum)";
        NoVersion => "edit without If-Match (428)", "428 precondition_required";
        Rename => "change the middle name (check queued again)", "200";
        AddChild => "add a child (202, pending the civil registry)", "202";
        AddChildAgain => "add the same child again (409)", "409 child_already_added";
        SecondParent => "the other parent adds the child (202)", "202";
        ListChildren => "list children", "200";
        EditChild => "edit the child", "200";
        EditChildStale => "the other parent edits a stale child (412)", "412 version_mismatch";
        ReadChild => "read the child", "200";
        InvalidChild => "child with a Latin series (422)", "422 validation_failed (birth_certificate_series_latin_letters)";
        AddVehicle => "add a vehicle", "201";
        ListVehicles => "list vehicles", "200";
        EditVehicle => "new plate for the vehicle", "200";
        InvalidVehicle => "vehicle with a letter no plate has (422)", "422 validation_failed (vehicle_plate_letter)";
        DeleteVehicle => "remove the vehicle", "204";
        LetChildGo => "the other parent lets the child go", "204";
        ChildGone => "read a child let go (404)", "404 child_not_found";
    }
}

/// Added to the cycle's serial for the documents the parents are made standard with
/// before the cycle, so that the cycle's own edit changes them.
const SETUP_DOCUMENTS: u64 = 500_000;

/// One cycle of 22 requests by two parents (0 and 1), each with who sends it.
const CYCLE: [(Kind, usize); 22] = {
    use Kind::*;
    [
        (Read, 0),
        (Fill, 0),
        (Stale, 0),
        (Invalid, 0),
        (NoVersion, 0),
        // The children come before the rename: a new name sends the SNILS back to the
        // registry, and a link is verified only against a verified SNILS.
        (AddChild, 0),
        (AddChildAgain, 0),
        (SecondParent, 1),
        (ListChildren, 1),
        (EditChild, 0),
        (EditChildStale, 1),
        (ReadChild, 1),
        (InvalidChild, 0),
        (Read, 0),
        (Rename, 0),
        (AddVehicle, 0),
        (ListVehicles, 0),
        (EditVehicle, 0),
        (InvalidVehicle, 0),
        (DeleteVehicle, 0),
        (LetChildGo, 1),
        (ChildGone, 1),
    ]
};

pub struct ProfileScenario {
    portal: Portal,
    /// Where the cycle is, each step with the parent (index) who sends it.
    at: Cursor<(Kind, usize)>,
    cycles: u32,
    parents: Vec<Member>,
    /// The profile version the first parent last read.
    version: u64,
    child_id: Option<String>,
    /// The child's version the first parent, and the second, last saw.
    child_version: u64,
    child_seen_by_second: u64,
    vehicle_id: Option<String>,
}

fn if_match(mut event: Json, version: u64) -> Json {
    event["headers"]["if-match"] = json!(format!("\"{version}\""));
    event
}

impl ProfileScenario {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            portal: Portal::new(spec, moto)?,
            at: Cursor::default(),
            cycles: 0,
            parents: Vec::new(),
            version: 0,
            child_id: None,
            child_version: 0,
            child_seen_by_second: 0,
            vehicle_id: None,
        })
    }

    /// The cycle's serial for documents: a new SNILS, child and vehicle every cycle.
    fn documents(&self) -> u64 {
        numbering::PROFILE.documents + u64::from(self.cycles)
    }
}

impl Script for ProfileScenario {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 22 requests by two parents registered, signed in and made \
         standard by the harness (with the SNILS the cycle's sandbox birth record names): \
         the profile read twice, filled in on the version it read (`If-Match`: personal \
         data, addresses, the same SNILS, a new INN and passport, OMS, driver licence; \
         registry checks queued), refused on a stale version (412), with invalid \
         documents (422: SNILS and INN check digits, a passport issued at 13) and without \
         `If-Match` (428); a child added (202, pending), added again (409), added by the \
         other parent (202), each link then checked against the birth record by the \
         harness as the worker would, listed (shared), edited (`If-Match`), edited by the \
         other parent on a stale version (412), read, let go by the other parent (204) \
         and then not found (404); a child with a Latin series (422); the parent renamed \
         (a new name sends the SNILS back to the registry, so after the children); a \
         vehicle added, listed, given a new plate, removed, and one with a letter no \
         plate has (422)"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.parents.is_empty() {
            self.cycles += 1;
            for i in 0..2 {
                let n = numbering::PROFILE.citizens + self.cycles * 2 + i;
                self.parents.push(self.portal.member(n).await?);
            }
            // Both parents have the verified SNILS the cycle's birth record names, so the
            // child's links can be verified; the parents' other documents are the ones
            // the cycle then edits.
            let docs = self.documents();
            for (i, snils) in [
                documents::mother_on_birth_record(docs),
                documents::father_on_birth_record(docs),
            ]
            .into_iter()
            .enumerate()
            {
                let parent = &self.parents[i];
                let mut adult = AdultDocuments::verified(
                    docs + SETUP_DOCUMENTS + i as u64,
                    parent.citizen.last_name.ends_with('а'),
                );
                adult.snils = snils;
                self.portal
                    .make_standard(&parent.account_id, &adult.profile_body())
                    .await?;
            }
        }
        let ((kind, who), serial) = self.at.advance(&CYCLE);
        // The registry check of each parent's link to the child runs here, outside the
        // timing, as the worker would run it after the parent's `POST`.
        match kind {
            AddChildAgain => {
                let parent = &self.parents[0].account_id;
                let child_id = self.child_id.clone().unwrap_or_default();
                self.portal.verify_child_link(parent, &child_id).await?;
            }
            ListChildren => {
                let parent = &self.parents[1].account_id;
                let child_id = self.child_id.clone().unwrap_or_default();
                let held = self.portal.verify_child_link(parent, &child_id).await?;
                let record = held
                    .record
                    .context("a verified parent does not see the child's record")?;
                if record.verified_parents.len() != 2 {
                    anyhow::bail!("the child is not shared by both parents: {record:?}");
                }
                self.child_version = record.version;
                self.child_seen_by_second = record.version;
            }
            _ => {}
        }
        let docs = self.documents();
        let member = self
            .parents
            .get(who)
            .with_context(|| format!("no parent {who} in the cycle"))?;
        let child_id = self.child_id.clone().unwrap_or_default();
        let vehicle_id = self.vehicle_id.clone().unwrap_or_default();
        let child = documents::child_body(docs, true);
        let vehicle = json!({
            "sts": documents::sts(docs),
            "plate": documents::plate(docs),
            "title": "Lada Vesta, серебристая",
        });
        // A request on the version the sender last saw.
        let patch = |route, params: &[(&str, &str)], body: &Json, version| {
            if_match(member.request(route, params, Some(body), serial), version)
        };
        let event = match kind {
            Read => member.request(GET, &[], None, serial),
            Fill => {
                let female = self.parents[0].citizen.last_name.ends_with('а');
                // New passport and INN (checks queued); the SNILS stays the verified one.
                let mut adult = AdultDocuments::verified(docs, female);
                adult.snils = documents::mother_on_birth_record(docs);
                patch(PATCH, &[], &adult.profile_body(), self.version)
            }
            Stale => {
                let body =
                    json!({"addresses": {"actual": "119019, г. Москва, ул. Новый Арбат, д. 2"}});
                patch(PATCH, &[], &body, self.version.saturating_sub(1))
            }
            Invalid => {
                // A check digit off in SNILS and INN, a passport issued at 13.
                let good = AdultDocuments::verified(docs + 1, true);
                let off = |s: &str| {
                    let (head, last) = s.split_at(s.len() - 1);
                    let digit = last.parse::<u8>().unwrap_or(0);
                    format!("{head}{}", (digit + 1) % 10)
                };
                let body = json!({
                    "documents": {
                        "snils": off(&good.snils),
                        "inn": off(&good.inn),
                        "passport": {
                            "series": good.passport_series,
                            "number": good.passport_number,
                            "issue_date": "2001-05-20",
                            "department_code": "770-001",
                            "issued_by": "ОВД района Арбат гор. Москвы",
                        },
                    },
                });
                patch(PATCH, &[], &body, self.version)
            }
            NoVersion => {
                let body = json!({"personal": {"birthplace": "гор. Тула"}});
                member.request(PATCH, &[], Some(&body), serial)
            }
            Rename => {
                let body = json!({"personal": {"middle_name": "Олеговна"}});
                patch(PATCH, &[], &body, self.version)
            }
            AddChild | AddChildAgain | SecondParent => {
                member.request(ADD_CHILD, &[], Some(&child), serial)
            }
            ListChildren => member.request(CHILDREN, &[], None, serial),
            EditChild => {
                let body = json!({"oms_policy": "7798 8900 1234 0001"});
                patch(PATCH_CHILD, &[("id", &child_id)], &body, self.child_version)
            }
            EditChildStale => {
                let body = json!({"middle_name": ""});
                patch(
                    PATCH_CHILD,
                    &[("id", &child_id)],
                    &body,
                    self.child_seen_by_second,
                )
            }
            ReadChild | ChildGone => member.request(CHILD, &[("id", &child_id)], None, serial),
            InvalidChild => {
                let mut body = documents::child_body(docs + 1, false);
                // The series' letters typed on the Latin layout.
                body["birth_certificate"] = json!("IV-MU 123456");
                member.request(ADD_CHILD, &[], Some(&body), serial)
            }
            AddVehicle => member.request(ADD_VEHICLE, &[], Some(&vehicle), serial),
            ListVehicles => member.request(VEHICLES, &[], None, serial),
            EditVehicle => {
                let body = json!({"plate": documents::plate(docs + 1), "title": null});
                member.request(PATCH_VEHICLE, &[("id", &vehicle_id)], Some(&body), serial)
            }
            InvalidVehicle => {
                let body = json!({"sts": documents::sts(docs + 1), "plate": "Б123ВС77"});
                member.request(ADD_VEHICLE, &[], Some(&body), serial)
            }
            DeleteVehicle => member.request(DELETE_VEHICLE, &[("id", &vehicle_id)], None, serial),
            LetChildGo => member.request(DELETE_CHILD, &[("id", &child_id)], None, serial),
        };
        kind.step(event)
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.parents.clear();
        self.version = 0;
        self.child_id = None;
        self.child_version = 0;
        self.child_seen_by_second = 0;
        self.vehicle_id = None;
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        use Kind::*;
        let Some((kind, _)) = self.at.last else {
            return Ok(());
        };
        if !(200..300).contains(&status) {
            return Ok(());
        }
        match kind {
            Read | Fill | Rename => {
                self.version = number(body, "version", "the profile")?;
                if matches!(kind, Fill | Rename)
                    && !crate::identity::called(calls, "sqs.SendMessageBatch")
                {
                    anyhow::bail!("a PATCH of checked fields queued no registry check");
                }
            }
            AddChild => {
                if body["status"] != "pending" {
                    anyhow::bail!("a child just added is not pending: {body}");
                }
                self.child_id = Some(text(body, "id", "the child")?.to_string());
            }
            EditChild => self.child_version = number(body, "version", "the child")?,
            SecondParent => {
                let id = text(body, "id", "the child")?;
                if Some(id) != self.child_id.as_deref() || body["status"] != "pending" {
                    anyhow::bail!("the other parent got another child, or not pending: {body}");
                }
            }
            AddVehicle => self.vehicle_id = Some(text(body, "id", "the vehicle")?.to_string()),
            _ => {}
        }
        Ok(())
    }
}
