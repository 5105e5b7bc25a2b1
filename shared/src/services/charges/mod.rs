//! Charges (GIS GMP accruals) as billers push them, and bills as citizens look them up.
//!
//! - A biller (a kindergarten, a club, a utility, the traffic police) is a principal with
//!   an API key (`bk_…`, stored only as a keyed hash) made by the admin command.
//! - A charge is known by its UIN. Writing the same body again changes nothing; a new
//!   amount updates an unpaid charge; a paid or cancelled one is final. A biller sees and
//!   changes only its own charges: another biller's UIN reads as not found.
//! - A biller writes only UINs under the prefixes it is registered with, and its charges
//!   pay only its registered payee (see [`crate::services::billers`]); the body may leave
//!   the payee out and gets the registered one.
//! - Each payer identifier of a charge gets an index item (`PAYER#{keyed hash}`) written in
//!   the same transaction, so a citizen's bills are found with one query per identifier.

use std::collections::BTreeSet;

use futures_util::stream::{self, StreamExt};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

use crate::crypto::{self, Credential, Hasher};
use crate::domain::{
    canonical, charge_text, payer_key, BillerId, Category, Inn, Kpp, Payee, Payer, PayerKind,
    PaymentId, Uin,
};
use crate::error::{AppError, FieldError};
use crate::json::{date_string, parse_date, Reader};
use crate::metrics::{self, ChargeOutcome, Metric};
use crate::redact::Secret;
use crate::services::billers::Registration;
use crate::services::notices::BillAnnouncer;
use crate::services::StoreError;

mod parse;

/// Prefix of billers' API keys (see [`crate::redact::TOKEN_PREFIXES`]).
pub const BILLER_KEY_PREFIX: &str = "bk_";
/// Payers one charge may name.
pub const MAX_PAYERS: usize = 10;
/// Charges one batch may carry.
pub const MAX_BATCH: usize = 500;
/// Largest amount of one charge, in kopecks (a hundred million roubles).
pub const MAX_AMOUNT: u64 = 10_000_000_000;
/// Longest purpose of payment, as GIS GMP takes it.
pub const MAX_PURPOSE_CHARS: usize = 210;
/// Longest payee name, as GIS GMP takes it.
pub const MAX_PAYEE_NAME_CHARS: usize = 160;

/// A reduction that applies until a date, inclusive (traffic fines: half for 20 days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discount {
    /// Kopecks off the amount.
    pub amount: u64,
    pub until: String,
}

/// A charge as a biller sent it: the body, and whether it named a payee (one it leaves
/// out is the biller's registered payee).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeDraft {
    pub body: ChargeBody,
    pub payee_given: bool,
}

/// A charge as a biller writes it (the UIN is in the path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeBody {
    /// Kopecks.
    pub amount: u64,
    pub payee: Payee,
    pub purpose: String,
    pub kbk: String,
    pub oktmo: String,
    pub bill_date: String,
    pub due_date: String,
    #[serde(default)]
    pub discount: Option<Discount>,
    pub category: Category,
    pub payers: Vec<Payer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Unpaid,
    Paid,
    Cancelled,
}

/// A charge as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCharge {
    pub uin: Uin,
    pub biller_id: BillerId,
    pub body: ChargeBody,
    pub status: ChargeStatus,
    pub version: u64,
    pub updated_at: i64,
    /// The payment that holds the charge while the bank answers; nobody else may pay or
    /// change it meanwhile.
    pub locked_by: Option<PaymentId>,
    /// Its biller was revoked: an unpaid charge is no longer paid through the portal.
    /// Not stored with the charge: read from the biller when a citizen sees the bill.
    pub withdrawn: bool,
    /// Whose payment holds it and until when the hold is guaranteed (absent for locks
    /// taken before holds had a deadline).
    pub hold: Option<BillHold>,
}

/// Whose payment holds a bill (a citizen's or an organisation's), and the end of the
/// hold's guarantee: past it, a payment still waiting for 3-D Secure is withdrawn when
/// another payment needs the bill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillHold {
    pub owner: crate::domain::Owner,
    pub until: i64,
}

impl StoredCharge {
    /// What is due on `today`: the discount while it lasts.
    pub fn amount_due(&self, today: Date) -> u64 {
        match &self.body.discount {
            Some(d) if parse_date("", &d.until).is_ok_and(|until| today <= until) => {
                self.body.amount.saturating_sub(d.amount)
            }
            _ => self.body.amount,
        }
    }
}

fn digits(
    path: &str,
    raw: &str,
    lengths: &[usize],
    code: &'static str,
    what: &str,
) -> Result<String, FieldError> {
    let v = raw.trim();
    if lengths.contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(v.to_string())
    } else {
        Err(FieldError::new(path, code, what.to_string()))
    }
}

fn amount(r: &mut Reader<'_>, object: &Map<String, Value>, name: &str, path: &str) -> Option<u64> {
    let at = format!("{path}/{name}");
    match object.get(name) {
        None | Some(Value::Null) => {
            r.errors
                .push(FieldError::new(&at, "required", "Обязательное поле"));
            None
        }
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v > 0 && v <= MAX_AMOUNT => Some(v),
            _ => {
                r.errors.push(FieldError::new(
                    &at,
                    "invalid_amount",
                    "Сумма в копейках: целое число больше нуля",
                ));
                None
            }
        },
        Some(_) => {
            r.errors
                .push(FieldError::new(&at, "invalid_type", "Ожидается число"));
            None
        }
    }
}

/// What writing a charge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Biller {
    pub id: BillerId,
    pub name: String,
    /// What it may write; `None` for a biller registered before registrations had
    /// prefixes and a payee, which therefore writes nothing.
    pub registration: Option<Registration>,
}

/// One write of a charge as the store takes it: the charge, the payer index items it
/// gets and those it no longer has, written together if the stored version is still
/// `expected` (0: new). One value, so the service, the store and its double name the
/// write's parts the same way.
#[derive(Debug, Clone, Copy)]
pub struct ChargeWrite<'a> {
    pub charge: &'a StoredCharge,
    pub payer_keys: &'a [String],
    pub dropped_payer_keys: &'a [String],
    pub expected: u64,
}

/// Why a charge write was refused by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeWriteRefusal {
    /// The charge changed since it was read.
    Stale,
}

#[trait_variant::make(Send)]
pub trait ChargeStore {
    async fn charge(&self, uin: &Uin) -> Result<Option<StoredCharge>, StoreError>;

    /// The stored charges among these UINs (consistent reads, in as few requests as the
    /// store allows); absent UINs are left out.
    async fn charges_by_uin(&self, uins: &[Uin]) -> Result<Vec<StoredCharge>, StoreError>;

    /// Writes the charge and its payer index items (adding new ones, removing dropped
    /// ones) in one transaction, if the stored version is still `expected` (0: new).
    async fn put_charge(
        &self,
        write: ChargeWrite<'_>,
    ) -> Result<Result<(), ChargeWriteRefusal>, StoreError>;

    async fn put_biller(&self, key_hash: &str, biller: &Biller, now: i64)
        -> Result<(), StoreError>;

    async fn biller_by_key(&self, key_hash: &str) -> Result<Option<Biller>, StoreError>;

    async fn revoke_biller(&self, id: &BillerId, now: i64) -> Result<bool, StoreError>;

    /// A biller by its id, unless revoked.
    async fn biller_by_id(&self, id: &BillerId) -> Result<Option<Biller>, StoreError>;

    /// Which of these billers are revoked (or unknown), in one read.
    async fn revoked_billers(&self, ids: &[BillerId]) -> Result<BTreeSet<BillerId>, StoreError>;
}

/// A batch item's result.
#[derive(Debug)]
pub struct BatchItem {
    pub uin: Option<Uin>,
    pub result: Result<WriteOutcome, AppError>,
}

/// Charges over a store; `A` queues written charges for new-bill notices (`()`: none).
pub struct ChargeService<S, A = ()> {
    store: S,
    hasher: Hasher,
    announcer: A,
}

/// Times a write re-reads after losing a race on the same UIN.
const WRITE_RACE_RETRIES: usize = 3;
/// Charges of one batch written at the same time. Each write is one transaction of its
/// own; sixteen in flight keep a batch of 500 well inside the function's timeout without
/// bursting one biller's batch into hundreds of parallel requests.
const BATCH_WRITE_CONCURRENCY: usize = 16;

impl<S: ChargeStore + Sync> ChargeService<S> {
    pub fn new(store: S, hasher: Hasher) -> Self {
        Self {
            store,
            hasher,
            announcer: (),
        }
    }

    /// The same service, queueing every unpaid charge it writes for notices.
    pub fn with_announcer<A: BillAnnouncer + Sync>(self, announcer: A) -> ChargeService<S, A> {
        ChargeService {
            store: self.store,
            hasher: self.hasher,
            announcer,
        }
    }
}

impl<S: ChargeStore + Sync, A: BillAnnouncer + Sync> ChargeService<S, A> {
    /// The index key of a payer identifier: a keyed hash, so the table holds no SNILS or
    /// passport number in a key.
    pub fn payer_key(&self, payer: &Payer) -> String {
        payer_key(&self.hasher, payer)
    }

    pub async fn create_biller(
        &self,
        name: &str,
        registration: Registration,
        now: OffsetDateTime,
    ) -> Result<(Biller, Secret<String>), AppError> {
        let key = crypto::token(BILLER_KEY_PREFIX)?;
        let biller = Biller {
            id: BillerId::new(),
            name: name.trim().to_string(),
            registration: Some(registration),
        };
        self.store
            .put_biller(
                &self
                    .hasher
                    .credential(Credential::BillerKey, &[key.expose()]),
                &biller,
                now.unix_timestamp(),
            )
            .await?;
        Ok((biller, key))
    }

    pub async fn revoke_biller(&self, id: &BillerId, now: OffsetDateTime) -> Result<(), AppError> {
        if self.store.revoke_biller(id, now.unix_timestamp()).await? {
            Ok(())
        } else {
            Err(AppError::NotFound("biller"))
        }
    }

    /// A biller that is not revoked, by id: whom an import writes for.
    pub async fn active_biller(&self, id: &BillerId) -> Result<Biller, AppError> {
        self.store
            .biller_by_id(id)
            .await?
            .ok_or(AppError::NotFound("biller"))
    }

    /// The biller behind an API key: the authorizer's question.
    pub async fn biller(&self, key: &str) -> Result<Biller, AppError> {
        if !key.starts_with(BILLER_KEY_PREFIX) || key.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        // A key issued before the HMAC key's last rotation is stored under an older
        // version: each version present is tried, the current one first.
        for key_hash in self
            .hasher
            .credential_lookups(Credential::BillerKey, &[key])
        {
            if let Some(biller) = self.store.biller_by_key(&key_hash).await? {
                return Ok(biller);
            }
        }
        Err(AppError::Unauthenticated)
    }

    pub fn parse_uin(path: &str, raw: &str) -> Result<Uin, AppError> {
        Uin::parse(path, raw).map_err(|e| AppError::Validation(vec![e]))
    }

    /// What an active biller may write; a revoked one is refused as its key is.
    async fn registration(&self, biller_id: &BillerId) -> Result<Registration, AppError> {
        let biller = self
            .store
            .biller_by_id(biller_id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        // Registered before prefixes and payees were: nothing is in its range.
        Ok(biller.registration.unwrap_or_else(|| Registration {
            uin_prefixes: Vec::new(),
            payee: Payee::default(),
        }))
    }

    /// The body to store: under the biller's prefixes, paying its registered payee.
    fn admit(
        registration: &Registration,
        uin: &Uin,
        draft: &ChargeDraft,
    ) -> Result<ChargeBody, AppError> {
        let given = draft.payee_given.then_some(&draft.body.payee);
        let payee = registration.admit(uin, given)?;
        Ok(ChargeBody {
            payee,
            ..draft.body.clone()
        })
    }

    /// Marks the unpaid charges whose billers were revoked as withdrawn: one read of the
    /// billers, none when nothing is unpaid.
    pub async fn mark_withdrawn<'c>(
        &self,
        charges: impl IntoIterator<Item = &'c mut StoredCharge>,
    ) -> Result<(), AppError> {
        let unpaid: Vec<&mut StoredCharge> = charges
            .into_iter()
            .filter(|c| c.status == ChargeStatus::Unpaid)
            .collect();
        if unpaid.is_empty() {
            return Ok(());
        }
        let mut billers: Vec<BillerId> = unpaid.iter().map(|c| c.biller_id.clone()).collect();
        billers.sort();
        billers.dedup();
        let revoked = self.store.revoked_billers(&billers).await?;
        for c in unpaid {
            c.withdrawn = revoked.contains(&c.biller_id);
        }
        Ok(())
    }

    /// A biller's own charge; another biller's reads as not found.
    pub async fn own_charge(
        &self,
        biller_id: &BillerId,
        uin: &Uin,
    ) -> Result<StoredCharge, AppError> {
        self.store
            .charge(uin)
            .await?
            .filter(|c| c.biller_id == *biller_id)
            .ok_or(AppError::NotFound("charge"))
    }

    /// Creates or updates a charge; the same body again changes nothing. Then queues it
    /// for notices, a repeat too: a write whose queueing failed (503) is repaired by the
    /// biller's retry, and the notices are sent once however often they are asked for.
    pub async fn put(
        &self,
        biller_id: &BillerId,
        uin: &Uin,
        draft: &ChargeDraft,
        now: OffsetDateTime,
    ) -> Result<WriteOutcome, AppError> {
        let registration = self.registration(biller_id).await?;
        let body = Self::admit(&registration, uin, draft)?;
        let outcome = self.write(biller_id, uin, &body, now, None).await?;
        self.announce(std::slice::from_ref(uin)).await?;
        Ok(outcome)
    }

    async fn announce(&self, uins: &[Uin]) -> Result<(), AppError> {
        if uins.is_empty() {
            return Ok(());
        }
        self.announcer.announce(uins).await.map_err(|e| {
            AppError::StoreUnavailable(format!("charges written, notices not queued: {e}"))
        })
    }

    /// Creates or updates an unpaid charge. `known` is the stored charge as a batch read
    /// it (`Some(None)`: absent), used for the first attempt only: a lost race re-reads.
    async fn write(
        &self,
        biller_id: &BillerId,
        uin: &Uin,
        body: &ChargeBody,
        now: OffsetDateTime,
        mut known: Option<Option<StoredCharge>>,
    ) -> Result<WriteOutcome, AppError> {
        for _ in 0..WRITE_RACE_RETRIES {
            let current = match known.take() {
                Some(read) => read,
                None => self.store.charge(uin).await?,
            };
            let (expected, dropped, outcome) = match &current {
                Some(c) if c.biller_id != *biller_id => return Err(AppError::NotFound("charge")),
                Some(c) if c.body == *body => {
                    charge_counted(ChargeOutcome::Unchanged);
                    return Ok(WriteOutcome::Unchanged);
                }
                Some(c) if c.locked_by.is_some() => return Err(AppError::ChargeLocked),
                Some(c) if c.status != ChargeStatus::Unpaid => {
                    return Err(AppError::ChargeFinal(c.status_name()))
                }
                Some(c) => {
                    let dropped: Vec<String> = c
                        .body
                        .payers
                        .iter()
                        .filter(|p| !body.payers.contains(p))
                        .map(|p| self.payer_key(p))
                        .collect();
                    (c.version, dropped, WriteOutcome::Updated)
                }
                None => (0, Vec::new(), WriteOutcome::Created),
            };
            let charge = StoredCharge {
                uin: uin.clone(),
                biller_id: biller_id.clone(),
                body: body.clone(),
                status: ChargeStatus::Unpaid,
                version: expected + 1,
                updated_at: now.unix_timestamp(),
                locked_by: None,
                withdrawn: false,
                hold: None,
            };
            let keys: Vec<String> = body.payers.iter().map(|p| self.payer_key(p)).collect();
            match self
                .store
                .put_charge(ChargeWrite {
                    charge: &charge,
                    payer_keys: &keys,
                    dropped_payer_keys: &dropped,
                    expected,
                })
                .await?
            {
                Ok(()) => {
                    tracing::info!(uin = uin.as_str(), %biller_id, ?outcome, "charge written");
                    charge_counted(match outcome {
                        WriteOutcome::Created => ChargeOutcome::Created,
                        WriteOutcome::Updated => ChargeOutcome::Updated,
                        WriteOutcome::Unchanged => ChargeOutcome::Unchanged,
                    });
                    return Ok(outcome);
                }
                Err(ChargeWriteRefusal::Stale) => continue,
            }
        }
        Err(AppError::StoreUnavailable(
            "the charge kept changing".into(),
        ))
    }

    /// Cancels an unpaid charge; cancelling again changes nothing.
    pub async fn cancel(
        &self,
        biller_id: &BillerId,
        uin: &Uin,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        for _ in 0..WRITE_RACE_RETRIES {
            let current = self.own_charge(biller_id, uin).await?;
            match current.status {
                // Cancelling again changes nothing.
                ChargeStatus::Cancelled => {
                    charge_counted(ChargeOutcome::Unchanged);
                    return Ok(());
                }
                ChargeStatus::Paid => return Err(AppError::ChargeFinal("paid")),
                ChargeStatus::Unpaid if current.locked_by.is_some() => {
                    return Err(AppError::ChargeLocked)
                }
                ChargeStatus::Unpaid => {}
            }
            let keys: Vec<String> = current
                .body
                .payers
                .iter()
                .map(|p| self.payer_key(p))
                .collect();
            let cancelled = StoredCharge {
                status: ChargeStatus::Cancelled,
                version: current.version + 1,
                updated_at: now.unix_timestamp(),
                ..current.clone()
            };
            match self
                .store
                .put_charge(ChargeWrite {
                    charge: &cancelled,
                    payer_keys: &keys,
                    dropped_payer_keys: &[],
                    expected: current.version,
                })
                .await?
            {
                Ok(()) => {
                    charge_counted(ChargeOutcome::Cancelled);
                    return Ok(());
                }
                Err(ChargeWriteRefusal::Stale) => continue,
            }
        }
        Err(AppError::StoreUnavailable(
            "the charge kept changing".into(),
        ))
    }

    /// A batch: each item validated and written on its own; one bad item fails alone.
    ///
    /// Every item is validated first; the charges already stored under the valid UINs are
    /// read in one consistent batch read per hundred; then the writes run
    /// [`BATCH_WRITE_CONCURRENCY`] at a time, one transaction each (none for an unchanged
    /// charge). Items naming the same UIN are written in their order, one after another,
    /// so the last one wins as it would one by one.
    pub async fn put_batch(
        &self,
        biller_id: &BillerId,
        items: &[Value],
        now: OffsetDateTime,
    ) -> Result<Vec<BatchItem>, AppError> {
        if items.is_empty() || items.len() > MAX_BATCH {
            return Err(AppError::Validation(vec![FieldError::new(
                "charges",
                "batch_size",
                format!("От 1 до {MAX_BATCH} начислений в пакете"),
            )]));
        }
        let registration = self.registration(biller_id).await?;
        let mut results: Vec<Option<Result<WriteOutcome, AppError>>> =
            Vec::with_capacity(items.len());
        let mut uins: Vec<Option<Uin>> = Vec::with_capacity(items.len());
        let mut bodies: Vec<Option<ChargeBody>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let (uin, checked) = Self::check_item(&registration, item, i);
            let (body, result) = match checked {
                Ok(body) => (Some(body), None),
                Err(refusal) => (None, Some(Err(refusal))),
            };
            uins.push(uin);
            bodies.push(body);
            results.push(result);
        }
        // Items to write, grouped by UIN in order of first appearance.
        let mut groups: Vec<(Uin, Vec<usize>)> = Vec::new();
        let mut group_of: std::collections::HashMap<Uin, usize> = std::collections::HashMap::new();
        for (i, (uin, body)) in uins.iter().zip(&bodies).enumerate() {
            if let (Some(uin), Some(_)) = (uin, body) {
                match group_of.get(uin) {
                    Some(&g) => groups[g].1.push(i),
                    None => {
                        group_of.insert(uin.clone(), groups.len());
                        groups.push((uin.clone(), vec![i]));
                    }
                }
            }
        }
        let wanted: Vec<Uin> = groups.iter().map(|(uin, _)| uin.clone()).collect();
        let mut stored: std::collections::HashMap<Uin, StoredCharge> = self
            .store
            .charges_by_uin(&wanted)
            .await?
            .into_iter()
            .map(|c| (c.uin.clone(), c))
            .collect();
        let bodies = &bodies;
        let written: Vec<Vec<(usize, Result<WriteOutcome, AppError>)>> =
            stream::iter(groups.into_iter().map(|(uin, indexes)| {
                let known = stored.remove(&uin);
                async move {
                    let mut known = Some(known);
                    let mut out = Vec::with_capacity(indexes.len());
                    for i in indexes {
                        if let Some(body) = &bodies[i] {
                            let result = self.write(biller_id, &uin, body, now, known.take()).await;
                            out.push((i, result));
                        }
                    }
                    out
                }
            }))
            .buffer_unordered(BATCH_WRITE_CONCURRENCY)
            .collect()
            .await;
        for (i, result) in written.into_iter().flatten() {
            results[i] = Some(result);
        }
        let results: Vec<BatchItem> = uins
            .into_iter()
            .zip(results)
            .map(|(uin, result)| BatchItem {
                uin,
                result: result.unwrap_or(Err(AppError::StoreUnavailable(
                    "the charge was not written".into(),
                ))),
            })
            .collect();
        // Each written UIN once, in the order of their text.
        let mut written: Vec<Uin> = results
            .iter()
            .filter(|r| r.result.is_ok())
            .filter_map(|r| r.uin.clone())
            .collect();
        written.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        written.dedup();
        self.announce(&written).await?;
        Ok(results)
    }

    /// One batch item validated and admitted: its UIN when it has a valid one, and the
    /// charge to write or the item's refusal.
    fn check_item(
        registration: &Registration,
        item: &Value,
        i: usize,
    ) -> (Option<Uin>, Result<ChargeBody, AppError>) {
        let at = format!("/charges/{i}");
        let Some(object) = item.as_object() else {
            return (
                None,
                Err(AppError::Validation(vec![FieldError::new(
                    &at,
                    "invalid_type",
                    "Ожидается объект",
                )])),
            );
        };
        let mut errors = Vec::new();
        let uin = match object.get("uin") {
            Some(Value::String(raw)) => match Uin::parse(&format!("{at}/uin"), raw) {
                Ok(u) => Some(u),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            _ => {
                errors.push(FieldError::new(
                    &format!("{at}/uin"),
                    "required",
                    "Обязательное поле",
                ));
                None
            }
        };
        let draft = ChargeBody::parse_at(object, &at, &mut errors);
        let checked = match (&uin, draft) {
            (Some(uin), Some(draft)) if errors.is_empty() => Self::admit(registration, uin, &draft),
            _ => Err(AppError::Validation(errors)),
        };
        (uin, checked)
    }

    /// Any bill by its UIN, as a citizen holding the paper sees it: one read, and one of
    /// its biller while it is unpaid.
    pub async fn lookup(&self, uin: &Uin) -> Result<StoredCharge, AppError> {
        let mut charge = self
            .store
            .charge(uin)
            .await?
            .filter(|c| c.status != ChargeStatus::Cancelled)
            .ok_or(AppError::NotFound("bill"))?;
        self.mark_withdrawn([&mut charge]).await?;
        Ok(charge)
    }
}

impl StoredCharge {
    pub fn status_name(&self) -> &'static str {
        match self.status {
            ChargeStatus::Unpaid => "unpaid",
            ChargeStatus::Paid => "paid",
            ChargeStatus::Cancelled => "cancelled",
        }
    }
}

fn charge_counted(outcome: ChargeOutcome) {
    metrics::emit(Metric::ChargesWritten { outcome });
}

#[cfg(test)]
mod tests;
