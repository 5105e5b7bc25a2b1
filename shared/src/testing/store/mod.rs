//! One in-memory table behind every store trait the services use, with the conditions
//! DynamoDB checks (versions, locks, idempotency records) and a [`Script`] of faults.
//!
//! Every call yields to the runtime first, so futures joined in a test interleave
//! between a service's reads and its writes as concurrent requests do. Each operation
//! is named as its trait method; see [`MemStore::race`] for a writer that gets in
//! before a chosen call.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use super::script::{lock, Fault, Script};
use crate::crypto::Hasher;
use crate::domain::{
    payer_key, AccountId, AutopayId, BillerId, Category, OperatorId, Owner, Payee, Payer,
    PayerKind, PaymentId, RefundId, Uin,
};
use crate::services::autopays::{Autopay, SchedulePage, SchedulePageQueue};
use crate::services::charges::{ChargeBody, ChargeStatus, StoredCharge};
use crate::services::confirmation::Operator;
use crate::services::identity::{SecurityEvent, StoredAccount};
use crate::services::payments::{
    HoldCount, Payment, PaymentNotice, PaymentNoticeQueue, ReconcilePage, ReconcilePageQueue,
    Refund, SavedMethod,
};
use crate::services::profile::{
    FieldStatus, JobQueue, Profile, State as ProfileState, StoredProfile, VerificationJob,
};
use crate::services::StoreError;

/// Operations of the store traits the double does not model, a list of trait methods
/// a function cannot write: each one `finds nothing` answers an empty value (after its
/// call is counted and its fault applied, as a read), each one `refused` fails with
/// [`not_modelled`].
macro_rules! unmodelled {
    (
        $(finds nothing {
            $(fn $read:ident(&self $(, $rarg:ident: $rty:ty)*) -> $found:ty;)*
        })?
        $(refused {
            $(fn $refused:ident(&self $(, $arg:ident: $ty:ty)*) -> $answer:ty;)*
        })?
    ) => {
        $($(
            async fn $read(&self $(, $rarg: $rty)*) -> Result<$found, StoreError> {
                self.read(stringify!($read), |_| <$found>::default()).await
            }
        )*)?
        $($(
            async fn $refused(&self $(, $arg: $ty)*) -> Result<$answer, StoreError> {
                super::not_modelled(stringify!($refused))
            }
        )*)?
    };
}

mod free;
mod inbox;
mod organisations;
mod payments;
mod profile;
mod refunds;
mod reminders;
mod restoration;
mod signature;

/// A writer that runs against the state just before a chosen call.
type Race = Box<dyn FnOnce(&mut State) + Send>;
/// Writers planned, each before the Nth call of an operation.
type Races = Vec<(&'static str, usize, Race)>;

/// The table's content; tests seed and read it through [`MemStore::state`].
#[derive(Default)]
pub struct State {
    pub accounts: BTreeMap<AccountId, StoredAccount>,
    /// Absent: never written (version 0).
    pub profiles: BTreeMap<AccountId, StoredProfile>,
    /// SNILS login key → account.
    pub logins: BTreeMap<String, AccountId>,
    pub events: Vec<SecurityEvent>,
    /// Holder index: account → payer keys.
    pub holdings: BTreeMap<AccountId, BTreeSet<String>>,
    pub notices_claimed: BTreeSet<(AccountId, String, &'static str)>,
    pub jobs: Vec<VerificationJob>,
    /// Operators by key hash, and the ids revoked.
    pub operators: BTreeMap<String, Operator>,
    pub revoked_operators: BTreeSet<OperatorId>,
    /// Contact and SNILS logins are in `logins`; sessions by id, with their account.
    pub sessions: BTreeMap<crate::domain::SessionId, AccountId>,
    /// Access restorations counted: (operator, window start) → count.
    pub restorations: BTreeMap<(OperatorId, i64), u32>,
    /// Live verification tokens by their key: (purpose, destination key, expiry).
    pub verification_tokens: BTreeMap<String, (String, String, i64)>,
    /// Access restorations written: (operator, account).
    pub restoration_audit: Vec<(OperatorId, AccountId)>,
    /// Desk registrations counted: (operator, window start) → count.
    pub registrations: BTreeMap<(OperatorId, i64), u32>,
    /// Desk registrations written: (operator, account).
    pub registration_audit: Vec<(OperatorId, AccountId)>,
    /// Open e-signature challenges, by account.
    pub signature_challenges: BTreeMap<AccountId, crate::services::e_signature::SignatureChallenge>,
    /// Accounts confirmed by a signature, with the certificate's serial.
    pub signature_confirmations: Vec<(AccountId, String)>,

    pub billers: BTreeSet<BillerId>,
    pub revoked_billers: BTreeSet<BillerId>,
    pub charges: BTreeMap<String, StoredCharge>,
    /// UIN → the payment that paid it.
    pub paid_by: BTreeMap<String, PaymentId>,
    /// Payer key → UINs.
    pub payer_index: BTreeMap<String, BTreeSet<String>>,
    pub saved_bills: BTreeMap<AccountId, Vec<Uin>>,
    /// Lookups counted: (account, window start) → count.
    pub lookups: BTreeMap<(AccountId, i64), u32>,
    /// What the lookup limit asked to count: (window start, window end, n).
    pub lookups_asked: Vec<(i64, i64, u32)>,

    /// Idempotency key hash → (payment, request hash).
    pub idempotency: BTreeMap<String, (PaymentId, String)>,
    /// (owner, payment id) → payment.
    pub payments: BTreeMap<(Owner, PaymentId), Payment>,
    /// Reconciliation entries: payment id → (owner, created at).
    pub reconcile: BTreeMap<PaymentId, (Owner, i64)>,
    pub hold_counts: BTreeMap<Owner, HoldCount>,
    pub methods: BTreeMap<Owner, Vec<SavedMethod>>,
    pub payment_notices: Vec<PaymentNotice>,
    pub reconcile_pages: Vec<ReconcilePage>,
    /// Refund key hash → (payment's owner, payment, refund, request hash).
    pub refund_keys: BTreeMap<String, (Owner, PaymentId, RefundId, String)>,
    pub refunds: BTreeMap<RefundId, Refund>,

    /// (account, autopay id) → autopay.
    pub autopays: BTreeMap<(AccountId, AutopayId), Autopay>,
    pub skip_notices: BTreeSet<(AccountId, AutopayId, String)>,
    pub schedule_pages: Vec<SchedulePage>,
    /// Run → (shards, shards done, completed).
    pub runs: BTreeMap<String, (usize, BTreeSet<String>, bool)>,

    pub orgs: organisations::Orgs,

    /// The reminders' date index: (day, account, document) → entry.
    pub dues: BTreeMap<
        (time::Date, AccountId, crate::services::profile::DueDocument),
        crate::services::profile::DueEntry,
    >,
    /// Reminders claimed: (account, document, stamp, threshold, channel).
    pub reminders_claimed: BTreeSet<(AccountId, &'static str, String, i64, &'static str)>,
    /// Each account's inbox: message id → message; and the ids of deleted messages.
    pub inbox: BTreeMap<
        AccountId,
        BTreeMap<crate::domain::MessageId, crate::services::inbox::StoredMessage>,
    >,
    pub inbox_deleted: BTreeSet<(AccountId, crate::domain::MessageId)>,
}

impl State {
    /// The payment of an id, whatever its account.
    pub fn payment(&self, id: &PaymentId) -> Option<&Payment> {
        self.payments.values().find(|p| p.id == *id)
    }

    pub fn charge(&self, uin: &str) -> Option<&StoredCharge> {
        self.charges.get(uin)
    }

    /// The charges of those UINs that have one, in the order asked.
    fn charges_of(&self, uins: &[String]) -> Vec<StoredCharge> {
        uins.iter()
            .filter_map(|u| self.charge(u).cloned())
            .collect()
    }
}

/// Implements queues that only collect what is sent, in a list of [`State`] the tests
/// read: a trait impl a function cannot write, alike for every queue.
macro_rules! collecting_queues {
    ($($queue:ident::$send:ident($item:ty) => $list:ident;)*) => {$(
        impl $queue for MemStore {
            async fn $send(&self, items: &[$item]) -> Result<(), StoreError> {
                self.write(stringify!($send), |state| {
                    state.$list.extend(items.iter().cloned());
                })
                .await
            }
        }
    )*};
}

collecting_queues! {
    PaymentNoticeQueue::queue_notices(PaymentNotice) => payment_notices;
    ReconcilePageQueue::enqueue_reconcile(ReconcilePage) => reconcile_pages;
    SchedulePageQueue::enqueue_pages(SchedulePage) => schedule_pages;
    JobQueue::enqueue(VerificationJob) => jobs;
}

#[derive(Clone)]
pub struct MemStore {
    pub script: Arc<Script>,
    state: Arc<Mutex<State>>,
    races: Arc<Mutex<Races>>,
    hasher: Hasher,
}

/// The strings a set-valued index holds under `key`, none when it holds no set there.
fn listed<K: Ord + Borrow<Q>, Q: Ord + ?Sized>(
    index: &BTreeMap<K, BTreeSet<String>>,
    key: &Q,
) -> Vec<String> {
    index
        .get(key)
        .map(|set| set.iter().cloned().collect())
        .unwrap_or_default()
}

/// The key the doubles' hashes use; services under test are given [`test_hasher`].
pub fn test_hasher() -> Hasher {
    match Hasher::new(vec![7; 32]) {
        Ok(h) => h,
        Err(e) => panic!("test key: {e:?}"),
    }
}

pub(crate) fn not_modelled<T>(operation: &str) -> Result<T, StoreError> {
    Err(StoreError::Rejected(format!(
        "{operation} is not modelled by MemStore"
    )))
}

fn unavailable() -> StoreError {
    StoreError::Unavailable("injected: throttled".into())
}

fn lost() -> StoreError {
    StoreError::Unavailable("injected: answer lost after the write".into())
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    pub fn new() -> Self {
        Self {
            script: Arc::default(),
            state: Arc::default(),
            races: Arc::default(),
            hasher: test_hasher(),
        }
    }

    /// The state, to seed or to check (not across an await).
    pub fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Runs `writer` against the state just before the `nth` call (from 1) of
    /// `operation`: a racing request that got in first, so the call meets its write.
    pub fn race(
        &self,
        operation: &'static str,
        nth: usize,
        writer: impl FnOnce(&mut State) + Send + 'static,
    ) {
        let writer: Race = Box::new(writer);
        lock(&self.races).push((operation, nth, writer));
    }

    /// Starts a call: yields, counts it, lets a racing writer in; a planned
    /// `Unavailable` fails it here. The fault left (`Conflict`, `Lost`) is the
    /// operation's to apply.
    async fn enter(&self, operation: &'static str) -> Result<Option<Fault>, StoreError> {
        tokio::task::yield_now().await;
        let (nth, fault) = self.script.call(operation);
        let due: Vec<Race> = {
            let mut races = lock(&self.races);
            let mut due = Vec::new();
            let mut i = 0;
            while i < races.len() {
                if races[i].0 == operation && races[i].1 == nth {
                    due.push(races.remove(i).2);
                } else {
                    i += 1;
                }
            }
            due
        };
        if !due.is_empty() {
            let mut state = self.state();
            for writer in due {
                writer(&mut state);
            }
        }
        match fault {
            Some(Fault::Unavailable) => Err(unavailable()),
            other => Ok(other),
        }
    }

    /// Runs `writer` just before the next call of `operation`.
    pub fn race_next(
        &self,
        operation: &'static str,
        writer: impl FnOnce(&mut State) + Send + 'static,
    ) {
        self.race(operation, self.script.calls(operation) + 1, writer);
    }

    /// Another request's edit of the profile of `account_id`, written just before the
    /// next `write_profile`: the profile changes and its version moves on.
    pub fn edit_before_next_write(
        &self,
        account_id: &AccountId,
        edit: impl FnOnce(&mut Profile) + Send + 'static,
    ) {
        let id = account_id.clone();
        self.race_next("write_profile", move |state| {
            let stored = state.profiles.entry(id).or_insert(StoredProfile {
                profile: Profile::default(),
                version: 0,
            });
            edit(&mut stored.profile);
            stored.version += 1;
        });
    }

    /// A write whose condition, if any, the double does not model, made by `change`:
    /// `Conflict` fails it as a lost race, having written nothing.
    async fn write<T>(
        &self,
        operation: &'static str,
        change: impl FnOnce(&mut State) -> T,
    ) -> Result<T, StoreError> {
        let fault = match self.enter(operation).await? {
            Some(Fault::Conflict) => return Err(StoreError::Conflict),
            other => other,
        };
        let value = change(&mut self.state());
        Self::done(fault, value)
    }

    /// A write on a condition (an item that must be new, a state to move from) that
    /// `change` checks, writing when it holds and answering whether it did: `Conflict`
    /// is another request that got in first.
    async fn write_if(
        &self,
        operation: &'static str,
        change: impl FnOnce(&mut State) -> bool,
    ) -> Result<bool, StoreError> {
        let fault = self.enter(operation).await?;
        if fault == Some(Fault::Conflict) {
            return Ok(false);
        }
        let changed = change(&mut self.state());
        Self::done(fault, changed)
    }

    /// A transaction whose conditions the double checks: `change` refuses, having
    /// written nothing, or writes; `Conflict` refuses it with `stale`, as a racing
    /// request that wrote first. A refusal is answered even when the fault is `Lost`:
    /// only a write that took effect can lose its answer.
    async fn transact<R>(
        &self,
        operation: &'static str,
        stale: R,
        change: impl FnOnce(&mut State) -> Result<(), R>,
    ) -> Result<Result<(), R>, StoreError> {
        let fault = self.enter(operation).await?;
        if fault == Some(Fault::Conflict) {
            return Ok(Err(stale));
        }
        match change(&mut self.state()) {
            Ok(()) => Self::done(fault, Ok(())),
            refused => Ok(refused),
        }
    }

    /// A read of what `look` picks from the state: `Conflict` makes no sense for it
    /// and fails it like `Unavailable`.
    async fn read<T>(
        &self,
        operation: &'static str,
        look: impl FnOnce(&State) -> T,
    ) -> Result<T, StoreError> {
        match self.enter(operation).await? {
            None => Ok(look(&self.state())),
            Some(Fault::Conflict) => Err(StoreError::Conflict),
            Some(_) => Err(lost()),
        }
    }

    /// Ends a write that took effect: a `Lost` one fails now.
    fn done<T>(fault: Option<Fault>, value: T) -> Result<T, StoreError> {
        match fault {
            Some(Fault::Lost) => Err(lost()),
            _ => Ok(value),
        }
    }

    // -------------------------------------------------------------- seeding

    /// An account at level `simplified`, with an e-mail address and a phone.
    pub fn add_account(&self, id: &AccountId) -> StoredAccount {
        let account = StoredAccount {
            id: id.clone(),
            last_name: "Иванов".into(),
            first_name: "Пётр".into(),
            middle_name: None,
            email: format!("{id}@example.ru"),
            phone: "+79318702901".into(),
            password_hash: String::new(),
            security_question: String::new(),
            security_answer_hash: String::new(),
            level: crate::services::profile::SIMPLIFIED,
            created_at: 0,
            two_step_login: false,
            new_device_alerts: false,
            known_devices: Vec::new(),
            snils_login: None,
            confirmed_at: None,
            credentials_epoch: 0,
            sms_factor: true,
            factor_count: 1,
            recovered_at: None,
            factors_changed_at: None,
            password_change_due: None,
        };
        self.state().accounts.insert(id.clone(), account.clone());
        account
    }

    pub fn put_profile(&self, account_id: &AccountId, stored: StoredProfile) {
        self.state().profiles.insert(account_id.clone(), stored);
    }

    pub fn profile(&self, account_id: &AccountId) -> Option<StoredProfile> {
        self.state().profiles.get(account_id).cloned()
    }

    /// [`unpaid_charge`], indexed under its payer, of an active biller.
    pub fn add_charge(&self, uin: &str, amount: u64, category: Category, snils: &str) {
        let charge = unpaid_charge(uin, amount, category, snils);
        let keys: Vec<String> = charge
            .body
            .payers
            .iter()
            .map(|p| payer_key(&self.hasher, p))
            .collect();
        let mut state = self.state();
        state.billers.insert(charge.biller_id.clone());
        for key in keys {
            state
                .payer_index
                .entry(key)
                .or_default()
                .insert(uin.to_string());
        }
        state.charges.insert(uin.to_string(), charge);
    }

    /// [`Self::add_account`] with a profile at version 1 holding `snils` verified: the
    /// bills naming it are the account's.
    pub fn add_citizen(&self, id: &AccountId, snils: &str) {
        self.add_account(id);
        let mut profile = Profile::default();
        profile.documents.snils = Some(snils.to_string());
        profile.statuses.insert(
            "snils".into(),
            FieldStatus::decided(ProfileState::Verified, "s0", 0),
        );
        self.put_profile(
            id,
            StoredProfile {
                profile,
                version: 1,
            },
        );
    }

    pub fn add_method(&self, account_id: &AccountId, method: SavedMethod) {
        self.state()
            .methods
            .entry(Owner::Citizen(account_id.clone()))
            .or_default()
            .push(method);
    }

    pub fn add_autopay(&self, autopay: Autopay) {
        self.state()
            .autopays
            .insert((autopay.account_id.clone(), autopay.id.clone()), autopay);
    }
}

/// An unpaid charge of `amount` kopecks in `category` naming one payer by SNILS, of
/// biller `b1`, at version 1.
pub fn unpaid_charge(uin: &str, amount: u64, category: Category, snils: &str) -> StoredCharge {
    StoredCharge {
        uin: Uin::parse("uin", uin).expect("a valid test UIN"),
        biller_id: "b1".into(),
        body: ChargeBody {
            amount,
            payee: Payee {
                name: "МБДОУ Детский сад № 1".into(),
                inn: "7707083893".into(),
                kpp: "770701001".into(),
                bic: "044525000".into(),
                account: "03234643350000007300".into(),
            },
            purpose: "Родительская плата".into(),
            kbk: "07511302992020000130".into(),
            oktmo: "45383000".into(),
            bill_date: "2026-11-01".into(),
            due_date: "2026-12-25".into(),
            discount: None,
            category,
            payers: vec![Payer {
                kind: PayerKind::Snils,
                value: snils.to_string(),
            }],
        },
        status: ChargeStatus::Unpaid,
        version: 1,
        updated_at: 0,
        locked_by: None,
        withdrawn: false,
        hold: None,
    }
}
