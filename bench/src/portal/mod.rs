//! Scenarios of the portal's functions past sign-up: the profile, the verification
//! worker, confirmation of identity, billers' charges and citizens' bills; and what they
//! prepare in moto.
//!
//! As for the identity scenarios, everything a request needs beforehand — citizens with
//! sessions, verified documents, children, vehicles, operators, billers, charges — is made
//! by [`Portal`] with the shared crate's own services and DynamoDB store, configured from
//! the measured function's environment, talking to moto directly and outside the timing.

pub mod autopays;
pub mod bills;
pub mod charges;
pub mod confirmation;
pub mod documents;
pub mod notices;
pub mod pay;
pub mod profile;
pub mod verification;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value as Json;
use time::OffsetDateTime;

use shared::adapters::acquirer::{CardEntry, SandboxAcquirer};
use shared::adapters::dynamodb::DynamoStore;
use shared::adapters::registry::SandboxRegistry;
use shared::config::{Env, TableConfig};
use shared::domain::{AccountId, ChildId};
use shared::services::charges::ChargeService;
use shared::services::household::{
    Child, HeldChild, HouseholdService, LinkState, StoredVehicle, Vehicle,
};
use shared::services::identity::SecurityEvent;
use shared::services::profile::{
    JobQueue, ProfilePatch, ProfileService, VerificationJob, STANDARD,
};
use shared::services::verification::{JobOutcome, VerificationService};
use shared::services::StoreError;
use uslugi_local::provision::Clients;

use crate::functions::FunctionSpec;
use crate::identity::fixtures::{Fixtures, Outbox, SignedIn};
use crate::identity::Citizen;
use crate::scenario::{authorized, http_api_event, source_ip};

/// A citizen of a scenario: registered, signed in.
#[derive(Debug, Clone)]
pub struct Member {
    pub citizen: Citizen,
    pub account_id: String,
    pub session: SignedIn,
}

impl Member {
    /// A private request of this citizen, from the address numbered `serial`.
    pub fn request(
        &self,
        route: &str,
        params: &[(&str, &str)],
        body: Option<&Json>,
        serial: u32,
    ) -> Json {
        let body = body.map(Json::to_string);
        let event = http_api_event(route, params, body.as_deref(), &source_ip(serial));
        authorized(
            event,
            &self.account_id,
            &self.session.session_id,
            &self.session.token,
        )
    }
}

/// Jobs the profile service queued, kept rather than sent: the harness runs them itself.
#[derive(Clone, Default)]
pub struct KeptJobs(Arc<Mutex<Vec<VerificationJob>>>);

impl KeptJobs {
    fn take(&self) -> Vec<VerificationJob> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

impl JobQueue for KeptJobs {
    async fn enqueue(&self, jobs: &[VerificationJob]) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(jobs);
        Ok(())
    }
}

pub struct Portal {
    pub people: Fixtures,
    profiles: ProfileService<DynamoStore, KeptJobs>,
    verifier: VerificationService<DynamoStore, SandboxRegistry, Outbox>,
    pub household: HouseholdService<DynamoStore, KeptJobs>,
    pub charges: ChargeService<DynamoStore>,
    jobs: KeptJobs,
    table: TableConfig,
}

impl Portal {
    pub fn new(spec: &FunctionSpec, moto: &Clients) -> Result<Self> {
        Self::with_env(&spec.binary, &spec.env, spec.hasher()?, moto)
    }

    /// The portal configured from the resolved environment `env` of the function
    /// `binary` and the HMAC keys it reads (the autopay run takes both from the stack).
    pub fn with_env(
        binary: &str,
        env: &std::collections::BTreeMap<String, String>,
        hasher: shared::crypto::Hasher,
        moto: &Clients,
    ) -> Result<Self> {
        let people = Fixtures::with_env(binary, env, hasher.clone(), moto)?;
        let env = Env(|name: &str| env.get(name).cloned());
        let table = TableConfig::from_env(&env, hasher)
            .with_context(|| format!("{binary}: table configuration"))?;
        let store = || DynamoStore::new(moto.dynamodb.clone(), table.table_name.clone());
        let jobs = KeptJobs::default();
        Ok(Self {
            people,
            profiles: ProfileService::new(store(), jobs.clone(), table.hasher.clone()),
            // No registry delay: the harness's own checks are not what is measured.
            verifier: VerificationService::new(
                store(),
                SandboxRegistry::new(Duration::ZERO),
                Outbox::default(),
                table.hasher.clone(),
            ),
            household: HouseholdService::new(store(), jobs.clone(), table.hasher.clone()),
            charges: ChargeService::new(store(), table.hasher.clone()),
            jobs,
            table,
        })
    }

    pub fn table(&self) -> &TableConfig {
        &self.table
    }

    /// Citizen `n`, registered two hours ago and signed in now, as the identity
    /// scenarios make theirs.
    pub async fn member(&self, n: u32) -> Result<Member> {
        let citizen = Citizen::new(n);
        let (account_id, session) = self.people.member(&citizen).await?;
        Ok(Member {
            citizen,
            account_id,
            session,
        })
    }

    /// Saves a PATCH of the profile as `PATCH /v1/profile` does (on the version stored
    /// now); the registry checks it queued.
    pub async fn patch_profile_with<Q: JobQueue + Sync>(
        profiles: &ProfileService<DynamoStore, Q>,
        account_id: &str,
        body: &Json,
    ) -> Result<u64> {
        let account_id: AccountId = account_id.parse()?;
        let now = OffsetDateTime::now_utc();
        let object = body
            .as_object()
            .context("a profile PATCH body must be a JSON object")?;
        let patch = ProfilePatch::parse(object, now.date())
            .map_err(|e| anyhow::anyhow!("the profile service refused a fixture PATCH: {e}"))?;
        let current = profiles
            .get(&account_id)
            .await
            .map_err(|e| anyhow::anyhow!("reading a fixture profile: {e}"))?
            .version;
        let event = SecurityEvent {
            account_id: account_id.clone(),
            kind: "profile_changed",
            at: now.unix_timestamp(),
            ip: "192.0.2.10".into(),
            user_agent: crate::scenario::USER_AGENT.into(),
        };
        let view = profiles
            .patch(
                &account_id,
                current,
                &patch,
                shared::domain::CredentialStrength::SecondFactor,
                event,
                now,
            )
            .await
            .map_err(|e| anyhow::anyhow!("saving a fixture profile: {e}"))?;
        Ok(view.version)
    }

    /// Saves the PATCH and runs the registry checks it queued through the verification
    /// service, as the worker would; the level the account has then.
    pub async fn patch_and_verify(
        &self,
        account_id: &str,
        body: &Json,
    ) -> Result<shared::domain::AccountLevel> {
        Self::patch_profile_with(&self.profiles, account_id, body).await?;
        for job in self.jobs.take() {
            self.apply(&job, "a fixture profile's verification").await?;
        }
        let view = self
            .profiles
            .get(&account_id.parse()?)
            .await
            .map_err(|e| anyhow::anyhow!("reading a fixture profile: {e}"))?;
        Ok(view.level)
    }

    /// Saves documents every registry verifies and checks the account became standard.
    pub async fn make_standard(&self, account_id: &str, body: &Json) -> Result<()> {
        let level = self.patch_and_verify(account_id, body).await?;
        if level != STANDARD {
            bail!("a fixture account with verified documents is {level}, not standard");
        }
        Ok(())
    }

    /// Adds a child as `POST /v1/profile/children` does, then runs the civil registry
    /// check the worker would: the link is verified when the sandbox birth record names
    /// the account's verified SNILS.
    pub async fn add_child(&self, account_id: &str, body: &Json) -> Result<HeldChild> {
        let account_id: AccountId = account_id.parse()?;
        let now = OffsetDateTime::now_utc();
        let object = body.as_object().context("a child must be a JSON object")?;
        let child = Child::parse(object, now.date())
            .map_err(|e| anyhow::anyhow!("a fixture child was refused: {e}"))?;
        let added = self
            .household
            .add_child(&account_id, &child, now)
            .await
            .map_err(|e| anyhow::anyhow!("adding a fixture child: {e}"))?;
        for job in self.jobs.take() {
            self.verifier
                .process(&job, 1, OffsetDateTime::now_utc())
                .await
                .map_err(|e| anyhow::anyhow!("checking a fixture child: {e}"))?;
        }
        self.household
            .child(&account_id, &added.link.id)
            .await
            .map_err(|e| anyhow::anyhow!("reading a fixture child: {e}"))
    }

    /// Runs the civil registry check of a child link the function added (and queued for
    /// the worker) through the verification service, as the worker would; the link must
    /// come out verified.
    pub async fn verify_child_link(&self, account_id: &str, child_id: &str) -> Result<HeldChild> {
        let account_id: AccountId = account_id.parse()?;
        let child_id: ChildId = child_id.parse()?;
        let held = self
            .household
            .child(&account_id, &child_id)
            .await
            .map_err(|e| anyhow::anyhow!("reading a child link: {e}"))?;
        let job = VerificationJob::child(&account_id, &child_id, &held.link.submission);
        self.apply(&job, "the check of a child link").await?;
        let held = self
            .household
            .child(&account_id, &child_id)
            .await
            .map_err(|e| anyhow::anyhow!("reading a child link: {e}"))?;
        if held.link.state != LinkState::Verified {
            bail!(
                "a child link came out {:?} ({:?}), not verified",
                held.link.state,
                held.link.reason
            );
        }
        Ok(held)
    }

    /// Adds a vehicle as `POST /v1/profile/vehicles` does.
    pub async fn add_vehicle(&self, account_id: &str, body: &Json) -> Result<StoredVehicle> {
        let object = body
            .as_object()
            .context("a vehicle must be a JSON object")?;
        let vehicle = Vehicle::parse(object)
            .map_err(|e| anyhow::anyhow!("a fixture vehicle was refused: {e}"))?;
        self.household
            .add_vehicle(&account_id.parse()?, vehicle, OffsetDateTime::now_utc())
            .await
            .map_err(|e| anyhow::anyhow!("adding a fixture vehicle: {e}"))
    }

    /// Runs a verification job as the worker would, on its first delivery; it must be
    /// applied.
    async fn apply(&self, job: &VerificationJob, what: &str) -> Result<()> {
        let outcome = self
            .verifier
            .process(job, 1, OffsetDateTime::now_utc())
            .await
            .map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
        if outcome != JobOutcome::Applied {
            bail!("{what} was skipped: {outcome:?}");
        }
        Ok(())
    }

    /// A biller, as `uslugi-admin create-biller` makes one: its id and key.
    pub async fn biller(&self, name: &str) -> Result<(String, String)> {
        let (biller, key) = self
            .charges
            .create_biller(name, registration()?, OffsetDateTime::now_utc())
            .await
            .map_err(|e| anyhow::anyhow!("creating a fixture biller: {e}"))?;
        Ok((biller.id.into(), key.expose().clone()))
    }

    /// Writes a charge as `PUT /v1/biller/charges/{uin}` does.
    pub async fn put_charge(&self, biller_id: &str, uin: &str, body: &Json) -> Result<()> {
        let object = body.as_object().context("a charge must be a JSON object")?;
        let charge = shared::services::charges::ChargeBody::parse(object)
            .map_err(|e| anyhow::anyhow!("a fixture charge was refused: {e}"))?;
        let uin = shared::domain::Uin::parse("uin", uin)
            .map_err(|e| anyhow::anyhow!("a fixture UIN: {}", e.code))?;
        self.charges
            .put(
                &biller_id.parse()?,
                &uin,
                &charge,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("writing a fixture charge: {e}"))?;
        Ok(())
    }
}

/// What every fixture biller is registered for: the UINs [`documents::uin`] makes
/// (`188…`) and the payee requisites of [`charge_body`].
pub fn registration() -> Result<shared::services::billers::Registration> {
    shared::services::billers::Registration::parse(&shared::services::billers::RegistrationInput {
        uin_prefixes: "188",
        payee_name: "ГБОУ Школа № 1234",
        payee_inn: "7707083893",
        payee_kpp: "770701001",
        payee_bic: "044525000",
        payee_account: "03234643350000007300",
    })
    .map_err(|e| anyhow::anyhow!("a fixture biller's registration: {e}"))
}

/// Billers named `{name} № 1` to `№ n`, as `uslugi-admin create-biller` makes them: their
/// keys, in turn.
pub async fn billers(
    service: &ChargeService<DynamoStore>,
    name: &str,
    n: usize,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for i in 1..=n {
        let (_, key) = service
            .create_biller(
                &format!("{name} № {i}"),
                registration()?,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("creating biller {i}: {e}"))?;
        keys.push(key.expose().clone());
    }
    Ok(keys)
}

/// The sandbox acquirer's test card that always succeeds (docs/testing.md).
pub const GOOD_CARD: &str = "4242424242424242";

/// A test card as a citizen types it on the acquirer's card page, good for three years.
pub fn test_card(number: &str, now: OffsetDateTime) -> CardEntry<'_> {
    CardEntry {
        number,
        exp_month: 12,
        exp_year: u16::try_from(now.year() + 3).unwrap_or(2030),
        cvc: "123",
    }
}

/// A one-time token of `card` from the sandbox acquirer's card page, as the citizen's
/// browser gets it.
pub async fn card_token(
    acquirer: &SandboxAcquirer,
    card: &CardEntry<'_>,
    now: OffsetDateTime,
) -> Result<String> {
    acquirer
        .tokenize(card, now)
        .await
        .map_err(|e| anyhow::anyhow!("a card token from the sandbox acquirer: {e}"))
}

/// `n` one-time tokens of the card that always succeeds, made at one moment.
pub async fn good_card_tokens(acquirer: &SandboxAcquirer, n: usize) -> Result<Vec<String>> {
    let now = OffsetDateTime::now_utc();
    let card = test_card(GOOD_CARD, now);
    let mut tokens = Vec::with_capacity(n);
    for _ in 0..n {
        tokens.push(card_token(acquirer, &card, now).await?);
    }
    Ok(tokens)
}

/// A charge body as billers send it, naming `payers` (`{"kind", "value"}` objects).
pub fn charge_body(category: &str, amount: u64, payers: Json) -> Json {
    let (payee, purpose, kbk) = match category {
        "fines" => (
            "УФК по г. Москве (ГУ МВД России по г. Москве)",
            "Штраф по постановлению об административном правонарушении",
            "18811601123010001140",
        ),
        "kindergarten" => (
            "ГБОУ Школа № 1234",
            "Родительская плата за присмотр и уход, ноябрь",
            "07511302992020000130",
        ),
        "taxes" => (
            "УФК по г. Москве (ИФНС России № 30)",
            "Налог на имущество физических лиц",
            "18210601020041000110",
        ),
        "clubs" => (
            "ГБУ ДО Дом творчества «Арбат»",
            "Кружок робототехники, ноябрь",
            "07511302992020000130",
        ),
        _ => (
            "ГБУ «Жилищник района Арбат»",
            "Жилищно-коммунальные услуги, октябрь",
            "07511302992020000130",
        ),
    };
    let mut body = serde_json::json!({
        "amount": amount,
        "payee": {
            "name": payee,
            "inn": "7707083893",
            "kpp": "770701001",
            "bic": "044525000",
            "account": "03234643350000007300",
        },
        "purpose": purpose,
        "kbk": kbk,
        "oktmo": "45383000",
        "bill_date": "2026-11-01",
        "due_date": "2026-12-10",
        "category": category,
        "payers": payers,
    });
    if category == "fines" {
        // Half off while it lasts, as for traffic fines.
        body["discount"] = serde_json::json!({"amount": amount / 2, "until": "2099-12-31"});
    }
    body
}

/// A string field of an answer, or an error naming the request.
pub fn text<'a>(body: &'a Json, name: &str, what: &str) -> Result<&'a str> {
    crate::identity::field(body, name, what)
}

/// Checks that a string field of an answer reads `want` (a charge write's `outcome`, a
/// payment's `status`): the scenarios check what an answer carries where it matters.
pub fn text_is(body: &Json, name: &str, what: &str, want: &str) -> Result<()> {
    let got = text(body, name, what)?;
    if got != want {
        bail!("{what} has `{name}` `{got}`, expected `{want}`: {body}");
    }
    Ok(())
}

/// A number field of an answer, or an error naming the request.
pub fn number(body: &Json, name: &str, what: &str) -> Result<u64> {
    body.get(name)
        .and_then(Json::as_u64)
        .with_context(|| format!("{what} has no number `{name}`: {body}"))
}
