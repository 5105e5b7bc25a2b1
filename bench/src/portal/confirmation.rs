//! confirmation: an operator confirms standard accounts in person; a citizen asks for a
//! letter with a code by post and confirms with it; and the refusals on the way.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use super::documents::{self, AdultDocuments, Sandbox};
use super::{Member, Portal};
use crate::functions::FunctionSpec;
use crate::identity::{Citizen, FIXTURE_AGE};
use crate::numbering::CONFIRMATION as NUMBERING;
use crate::proxy::Call;
use crate::scenario::{
    as_operator, http_api_event, requests, routes, source_ip, Cursor, Script, Step,
};

routes! {
    IN_PERSON = "POST /v1/operator/confirmations";
    LETTER = "POST /v1/account/confirmation-letters";
    BY_LETTER = "POST /v1/account/confirmation-letters/confirm";
}

const ADDRESS: &str = "119002, г. Москва, пер. Сивцев Вражек, д. 15, кв. 4";

requests! {
    enum Kind {
        InPerson => "operator confirms a standard account", "200";
        InPersonAgain => "operator confirms it again (409)", "409 already_confirmed";
        WrongPassport => "operator types another passport (422)", "422 validation_failed (passport_mismatch)";
        UnknownSnils => "operator types an unknown SNILS (404)", "404 account_not_found";
        BadSnils => "operator mistypes the SNILS (422)", "422 validation_failed (snils_checksum)";
        CitizenAsOperator => "a citizen's session on the operator route (403)", "403 operator_only";
        Letter => "ask for a letter with a code", "202";
        LetterTooEarly => "ask for a second letter too early (429)", "429 letter_too_early";
        ShortAddress => "letter to a too-short address (422)", "422 validation_failed (address_length)";
        WrongCode => "wrong code from the letter (422)", "422 code_mismatch";
        MalformedCode => "code of the wrong shape (422)", "422 validation_failed (invalid_code_format)";
        RightCode => "confirm with the code from the letter", "200";
        CodeAgain => "the code again once confirmed (409)", "409 already_confirmed";
        NotStandard => "a simplified account asks for a letter (409)", "409 account_not_standard";
    }
}

/// One cycle: a request of each kind, in the order declared.
const CYCLE: [Kind; Kind::ALL.len()] = Kind::ALL;

/// A standard citizen's documents, for the operator's desk.
struct AtTheDesk {
    snils: String,
    series: String,
    number: String,
}

/// What a cycle prepares: an operator, a standard citizen who comes to the desk, a
/// standard citizen who asks for a letter, and one who is still simplified.
struct Prepared {
    operator_id: String,
    operator_key: String,
    desk: AtTheDesk,
    by_post: Member,
    by_post_documents: AtTheDesk,
    simplified: Member,
}

pub struct ConfirmationScenario {
    portal: Portal,
    at: Cursor<Kind>,
    cycles: u32,
    prepared: Option<Prepared>,
    /// The code the last letter carried.
    code: Option<String>,
}

impl ConfirmationScenario {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Ok(Self {
            portal: Portal::new(spec, moto)?,
            at: Cursor::default(),
            cycles: 0,
            prepared: None,
            code: None,
        })
    }

    /// A citizen made standard with documents every registry verifies; its documents.
    async fn standard(&self, n: u32) -> Result<(String, AtTheDesk)> {
        let citizen = Citizen::new(n);
        let account_id = self
            .portal
            .people
            .register(&citizen, OffsetDateTime::now_utc() - FIXTURE_AGE)
            .await?;
        let docs = AdultDocuments::verified(
            NUMBERING.documents + u64::from(n - NUMBERING.citizens),
            citizen.last_name.ends_with('а'),
        );
        self.portal
            .make_standard(&account_id, &docs.profile_body())
            .await?;
        Ok((
            account_id,
            AtTheDesk {
                snils: docs.snils,
                series: docs.passport_series,
                number: docs.passport_number,
            },
        ))
    }

    async fn prepare(&mut self) -> Result<Prepared> {
        self.cycles += 1;
        let n = NUMBERING.citizens + self.cycles * 3;
        let (operator_id, operator_key) = self
            .portal
            .people
            .operator(OffsetDateTime::now_utc())
            .await?;
        let (_, desk) = self.standard(n).await?;
        let (by_post_id, by_post_documents) = self.standard(n + 1).await?;
        let session = self
            .portal
            .people
            .sign_in(&Citizen::new(n + 1), OffsetDateTime::now_utc())
            .await?;
        let by_post = Member {
            citizen: Citizen::new(n + 1),
            account_id: by_post_id,
            session,
        };
        let simplified = self.portal.member(n + 2).await?;
        Ok(Prepared {
            operator_id,
            operator_key,
            desk,
            by_post,
            by_post_documents,
            simplified,
        })
    }

    fn at_the_desk(&self, p: &Prepared, snils: &str, series: &str, number: &str) -> Json {
        let body = json!({
            "snils": snils,
            "passport_series": series,
            "passport_number": number,
        })
        .to_string();
        as_operator(
            http_api_event(IN_PERSON, &[], Some(&body), &source_ip(self.at.serial)),
            &p.operator_id,
            &p.operator_key,
        )
    }
}

impl Script for ConfirmationScenario {
    const ROUTES: &'static [&'static str] = ROUTES;
    const RESET_EVERY: Option<usize> = Some(CYCLE.len());

    fn describe(&self) -> String {
        "repeating cycles of 14 requests; before each, the harness creates an operator (as \
         `uslugi-admin create-operator` does) and three citizens, two of them made standard \
         by the profile and verification services (SNILS and passport verified). An operator \
         confirms a standard account in person (200), again (409), with a passport other \
         than the profile's (422), an unknown SNILS (404) and a mistyped one (422); a \
         citizen's session on the operator route (403); a citizen asks for a letter (202: \
         its code read from the message queued for the post), again too early (429), to a \
         too-short address (422), enters a wrong code (422), a malformed one (422), the \
         right one (200) and it again (409); a simplified account asks for a letter (409)"
            .into()
    }

    async fn next(&mut self) -> Result<Step> {
        use Kind::*;
        if self.prepared.is_none() {
            self.prepared = Some(self.prepare().await?);
        }
        let (kind, serial) = self.at.advance(&CYCLE);
        let p = self.prepared.as_ref().context("nothing prepared")?;
        let code = self.code.clone().unwrap_or_default();
        let wrong_code = format!(
            "{:08}",
            (code.parse::<u32>().unwrap_or(0) + 1) % 100_000_000
        );
        let post = &p.by_post;
        let (snils, series, number) = (&p.desk.snils, &p.desk.series, &p.desk.number);
        let letter = |who: &Member, address: &str| {
            who.request(LETTER, &[], Some(&json!({ "address": address })), serial)
        };
        let by_letter =
            |code: &str| post.request(BY_LETTER, &[], Some(&json!({ "code": code })), serial);
        let event = match kind {
            InPerson | InPersonAgain => self.at_the_desk(p, snils, series, number),
            WrongPassport => {
                let other = documents::passport(NUMBERING.documents + 999_999, Sandbox::Verified).1;
                let theirs = &p.by_post_documents;
                self.at_the_desk(p, &theirs.snils, &theirs.series, &other)
            }
            UnknownSnils => {
                let n = NUMBERING.documents + 9_000_000 + u64::from(serial);
                let unknown = documents::snils(n, Sandbox::Verified);
                self.at_the_desk(p, &unknown, series, number)
            }
            BadSnils => {
                let last = snils[10..].parse::<u8>().unwrap_or(0);
                let typo = format!("{}{}", &snils[..10], (last + 1) % 10);
                self.at_the_desk(p, &typo, series, number)
            }
            CitizenAsOperator => {
                let body = json!({
                    "snils": snils,
                    "passport_series": series,
                    "passport_number": number,
                });
                post.request(IN_PERSON, &[], Some(&body), serial)
            }
            Letter | LetterTooEarly => letter(post, ADDRESS),
            ShortAddress => letter(post, "Москва"),
            WrongCode => by_letter(&wrong_code),
            MalformedCode => by_letter("12ab"),
            RightCode | CodeAgain => by_letter(&code),
            NotStandard => letter(&p.simplified, ADDRESS),
        };
        kind.step(event)
    }

    fn on_reset(&mut self) {
        self.at.restart();
        self.prepared = None;
        self.code = None;
    }

    fn observe(&mut self, status: u16, body: &Json, calls: &[Call]) -> Result<()> {
        match (self.at.last, status) {
            (Some(Kind::InPerson), 200) if body["level"] != "confirmed" => {
                bail!("an in-person confirmation answered another level: {body}");
            }
            (Some(Kind::Letter), 202) => {
                let letter = calls
                    .iter()
                    .filter(|c| c.operation == "sqs.SendMessage")
                    .find_map(|c| c.message.as_deref())
                    .context("a letter was asked for but none was queued for the post")?;
                let letter: Json = serde_json::from_str(letter)
                    .with_context(|| format!("the letter queued is not JSON: {letter}"))?;
                let code = letter["code"]
                    .as_str()
                    .with_context(|| format!("the letter carries no code: {letter}"))?;
                self.code = Some(code.to_string());
            }
            (Some(Kind::RightCode), 200) if body["level"] != "confirmed" => {
                bail!("a confirmation by letter answered another level: {body}");
            }
            _ => {}
        }
        Ok(())
    }
}
