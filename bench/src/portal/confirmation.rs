//! confirmation: an operator confirms standard accounts in person; a citizen asks for a
//! letter with a code by post and confirms with it; and the refusals on the way.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use uslugi_local::provision::Clients;

use super::documents::{self, AdultDocuments, Sandbox};
use super::{Member, Portal};
use crate::functions::FunctionSpec;
use crate::identity::{step, Citizen, FIXTURE_AGE};
use crate::proxy::Call;
use crate::scenario::{
    as_operator, expect, expect_invalid, http_api_event, one_of_each, require_routes, source_ip,
    Cursor, Script, Step,
};

const IN_PERSON: &str = "POST /v1/operator/confirmations";
const LETTER: &str = "POST /v1/account/confirmation-letters";
const BY_LETTER: &str = "POST /v1/account/confirmation-letters/confirm";

/// Citizens of this scenario are numbered from here; their documents from `DOCUMENTS`.
const BASE: u32 = 120_000_000;
const DOCUMENTS: u64 = 30_000_000;

const ADDRESS: &str = "119002, г. Москва, пер. Сивцев Вражек, д. 15, кв. 4";

one_of_each! {
    enum Kind {
        InPerson,
        InPersonAgain,
        WrongPassport,
        UnknownSnils,
        BadSnils,
        CitizenAsOperator,
        Letter,
        LetterTooEarly,
        ShortAddress,
        WrongCode,
        MalformedCode,
        RightCode,
        CodeAgain,
        NotStandard,
    }
}

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
        require_routes(spec, &[IN_PERSON, LETTER, BY_LETTER])?;
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
            DOCUMENTS + u64::from(n - BASE),
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
        let n = BASE + self.cycles * 3;
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
        Ok(match kind {
            InPerson => step(
                "operator confirms a standard account",
                IN_PERSON,
                self.at_the_desk(p, &p.desk.snils, &p.desk.series, &p.desk.number),
                expect(200, None),
                0,
            ),
            InPersonAgain => step(
                "operator confirms it again (409)",
                IN_PERSON,
                self.at_the_desk(p, &p.desk.snils, &p.desk.series, &p.desk.number),
                expect(409, Some("already_confirmed")),
                0,
            ),
            WrongPassport => {
                let other = documents::passport(DOCUMENTS + 999_999, Sandbox::Verified).1;
                step(
                    "operator types another passport (422)",
                    IN_PERSON,
                    self.at_the_desk(
                        p,
                        &p.by_post_documents.snils,
                        &p.by_post_documents.series,
                        &other,
                    ),
                    expect_invalid("passport_mismatch"),
                    0,
                )
            }
            UnknownSnils => step(
                "operator types an unknown SNILS (404)",
                IN_PERSON,
                self.at_the_desk(
                    p,
                    &documents::snils(DOCUMENTS + 9_000_000 + u64::from(serial), Sandbox::Verified),
                    &p.desk.series,
                    &p.desk.number,
                ),
                expect(404, Some("account_not_found")),
                0,
            ),
            BadSnils => {
                let snils = &p.desk.snils;
                let last = snils[10..].parse::<u8>().unwrap_or(0);
                let typo = format!("{}{}", &snils[..10], (last + 1) % 10);
                step(
                    "operator mistypes the SNILS (422)",
                    IN_PERSON,
                    self.at_the_desk(p, &typo, &p.desk.series, &p.desk.number),
                    expect_invalid("snils_checksum"),
                    0,
                )
            }
            CitizenAsOperator => {
                let body = json!({
                    "snils": p.desk.snils,
                    "passport_series": p.desk.series,
                    "passport_number": p.desk.number,
                });
                step(
                    "a citizen's session on the operator route (403)",
                    IN_PERSON,
                    post.request(IN_PERSON, &[], Some(&body), serial),
                    expect(403, Some("operator_only")),
                    0,
                )
            }
            Letter => step(
                "ask for a letter with a code",
                LETTER,
                post.request(LETTER, &[], Some(&json!({"address": ADDRESS})), serial),
                expect(202, None),
                0,
            ),
            LetterTooEarly => step(
                "ask for a second letter too early (429)",
                LETTER,
                post.request(LETTER, &[], Some(&json!({"address": ADDRESS})), serial),
                expect(429, Some("letter_too_early")),
                0,
            ),
            ShortAddress => step(
                "letter to a too-short address (422)",
                LETTER,
                post.request(LETTER, &[], Some(&json!({"address": "Москва"})), serial),
                expect_invalid("address_length"),
                0,
            ),
            WrongCode => step(
                "wrong code from the letter (422)",
                BY_LETTER,
                post.request(BY_LETTER, &[], Some(&json!({"code": wrong_code})), serial),
                expect(422, Some("code_mismatch")),
                0,
            ),
            MalformedCode => step(
                "code of the wrong shape (422)",
                BY_LETTER,
                post.request(BY_LETTER, &[], Some(&json!({"code": "12ab"})), serial),
                expect_invalid("invalid_code_format"),
                0,
            ),
            RightCode => step(
                "confirm with the code from the letter",
                BY_LETTER,
                post.request(BY_LETTER, &[], Some(&json!({"code": code})), serial),
                expect(200, None),
                0,
            ),
            CodeAgain => step(
                "the code again once confirmed (409)",
                BY_LETTER,
                post.request(BY_LETTER, &[], Some(&json!({"code": code})), serial),
                expect(409, Some("already_confirmed")),
                0,
            ),
            NotStandard => step(
                "a simplified account asks for a letter (409)",
                LETTER,
                p.simplified
                    .request(LETTER, &[], Some(&json!({"address": ADDRESS})), serial),
                expect(409, Some("account_not_standard")),
                0,
            ),
        })
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
