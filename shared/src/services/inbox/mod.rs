//! The citizen's inbox («Сообщения»): every message the portal sends a citizen, kept in
//! the account, as the portals' own inboxes do.
//!
//! - **One way to tell a citizen**: [`tell`] keeps the message in the inbox, then sends
//!   its e-mail and SMS, if any, through the [`Notifier`]. A worker that must not lose a
//!   message (the bill notices) calls [`keep`] on its own and fails the queue message when
//!   the inbox could not be written; a request that told of something it already did (a
//!   password changed) keeps on a best-effort basis and logs a message not kept.
//! - **Once per event**: a message about an event (a bill, a payment, a check's outcome)
//!   has an id derived from the event ([`MessageId::of_event`]) and is written on the
//!   condition that the id is new, so a queue's retry finds the message already kept.
//!   A deleted message leaves a marker for a while, so a late retry does not bring it
//!   back.
//! - **What is not kept**: one-time codes (they are secrets, and useless a few minutes
//!   later) and messages addressed to an organisation (a receipt of an organisation's
//!   payment): the inbox is a citizen's own.
//! - **Bounds**: at most [`MAX_UNREAD`] unread messages; a new one past that makes the
//!   oldest unread read. A read message is kept for [`MESSAGE_RETENTION`] from its
//!   creation (and at least [`READ_RETENTION`] after it was read), then DynamoDB's TTL
//!   removes it. Unread messages do not expire, so the unread counter kept beside them
//!   stays exact.

use base64::Engine;

use crate::domain::{AccountId, Email, MessageId, PaymentId, Phone, Uin};
use crate::error::{AppError, FieldError};
use crate::redact::Secret;
use crate::services::codes::{DeliveryError, Notifier};
use crate::services::StoreError;

/// How long a message is kept after it was created, once it is read.
pub const MESSAGE_RETENTION: std::time::Duration = std::time::Duration::from_secs(365 * 24 * 3600);
/// How long a message read late (near the end of its retention) is still kept.
pub const READ_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// How long a deleted message's id is remembered, so that a retried event does not bring
/// the message back: longer than any queue keeps a message (14 days at most).
pub const DELETED_MEMORY: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);
/// Unread messages an account keeps; past it the oldest unread one becomes read.
pub const MAX_UNREAD: u32 = 500;
/// Messages on one page of the list: the default and the most.
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// What a message is about; the list can be filtered by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MessageCategory {
    /// New bills.
    Bills,
    /// Receipts of payments and autopayments' reports.
    Payments,
    /// Outcomes of the checks of the profile's data.
    Verification,
    /// The account's identity confirmed.
    Confirmation,
    /// Security alerts: logins, password, contacts, second factors, access restored.
    Security,
    /// The account itself (its creation).
    Account,
}

impl MessageCategory {
    pub const ALL: [Self; 6] = [
        Self::Bills,
        Self::Payments,
        Self::Verification,
        Self::Confirmation,
        Self::Security,
        Self::Account,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bills => "bills",
            Self::Payments => "payments",
            Self::Verification => "verification",
            Self::Confirmation => "confirmation",
            Self::Security => "security",
            Self::Account => "account",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// A message to a citizen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub category: MessageCategory,
    /// A short title in Russian (the e-mail's subject, when there is one).
    pub title: String,
    /// The text in Russian, as the e-mail has it.
    pub text: String,
    /// The bill the message is about.
    pub uin: Option<Uin>,
    /// The payment the message is about.
    pub payment_id: Option<PaymentId>,
    /// Unix seconds.
    pub created_at: i64,
}

impl Message {
    /// A message with a new random id: for things told once, in the request that did them.
    pub fn new(
        category: MessageCategory,
        title: impl Into<String>,
        text: impl Into<String>,
        created_at: i64,
    ) -> Self {
        Self {
            id: MessageId::new(),
            category,
            title: title.into(),
            text: text.into(),
            uin: None,
            payment_id: None,
            created_at,
        }
    }

    /// The message about `event`: its id is the event's, the same on every retry.
    pub fn of_event(self, event: &str) -> Self {
        Self {
            id: MessageId::of_event(event),
            ..self
        }
    }

    pub fn about_bill(self, uin: &Uin) -> Self {
        Self {
            uin: Some(uin.clone()),
            ..self
        }
    }

    pub fn about_payment(self, payment_id: &PaymentId) -> Self {
        Self {
            payment_id: Some(payment_id.clone()),
            ..self
        }
    }
}

/// A message as the inbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub message: Message,
    pub read: bool,
}

impl StoredMessage {
    /// The message as the API shows it.
    pub fn view(&self) -> serde_json::Value {
        let m = &self.message;
        serde_json::json!({
            "id": m.id,
            "category": m.category.as_str(),
            "title": m.title,
            "text": m.text,
            "uin": m.uin.as_ref().map(Uin::as_str),
            "payment_id": m.payment_id,
            "created_at": crate::services::rfc3339(m.created_at),
            "read": self.read,
        })
    }
}

/// A place in the list: the list runs unread before read, each newest first (by creation
/// time, then id). Handed to clients as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub read: bool,
    pub created_at: i64,
    pub id: MessageId,
}

impl Cursor {
    /// The cursor of the place after `message`.
    pub fn after(message: &StoredMessage) -> Self {
        Self {
            read: message.read,
            created_at: message.message.created_at,
            id: message.message.id.clone(),
        }
    }

    /// The place as the store's sort keys write it: `U#0001764000000#msg_…` (unread) or
    /// `R#…` (read); the time is zero-padded so that keys sort by it.
    pub fn position(&self) -> String {
        let state = if self.read { 'R' } else { 'U' };
        format!("{state}#{:013}#{}", self.created_at.max(0), self.id)
    }

    /// The place a [`Self::position`] names; `None` for anything else.
    pub fn from_position(position: &str) -> Option<Self> {
        let mut parts = position.splitn(3, '#');
        let read = match parts.next()? {
            "U" => false,
            "R" => true,
            _ => return None,
        };
        let time = parts.next()?;
        if time.len() != 13 || !time.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let created_at = time.parse().ok()?;
        let id = MessageId::parse(parts.next()?).ok()?;
        Some(Self {
            read,
            created_at,
            id,
        })
    }

    /// The opaque form handed to clients.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.position())
    }

    /// A cursor a client handed back; one this service did not write is refused.
    pub fn decode(raw: &str) -> Result<Self, FieldError> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|position| Self::from_position(&position))
            .ok_or_else(|| {
                FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "Курсор не распознан: возьмите его из ответа на предыдущий запрос",
                )
            })
    }
}

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxQuery {
    pub category: Option<MessageCategory>,
    pub unread_only: bool,
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl Default for InboxQuery {
    fn default() -> Self {
        Self {
            category: None,
            unread_only: false,
            after: None,
            limit: DEFAULT_PAGE,
        }
    }
}

/// One page of the list, and where the next one starts, if there may be more. A page
/// filtered by category may hold fewer than asked before the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboxPage {
    pub messages: Vec<StoredMessage>,
    pub next: Option<Cursor>,
}

#[trait_variant::make(Send)]
pub trait InboxStore {
    /// Keeps a new unread message, counted as unread in the same transaction; past
    /// `max_unread`, the oldest unread message becomes read in it too. `Ok(false)`: a
    /// message of that id was kept before (and is still there, or was deleted).
    async fn keep_message(
        &self,
        account_id: &AccountId,
        message: &Message,
        max_unread: u32,
    ) -> Result<bool, StoreError>;

    /// A page of the list, unread first, each newest first; messages past their time
    /// (`now`) are left out.
    async fn list_messages(
        &self,
        account_id: &AccountId,
        query: &InboxQuery,
        now: i64,
    ) -> Result<InboxPage, StoreError>;

    /// Marks a message read (moving it among the read ones and counting it off, in one
    /// transaction). `Ok(false)`: no such message; one already read is `Ok(true)`.
    async fn mark_read(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Deletes a message. `Ok(false)`: no such message.
    async fn delete_message(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// The number of unread messages (a counter, one read).
    async fn unread_count(&self, account_id: &AccountId) -> Result<u32, StoreError>;
}

/// The citizen's side: the list, marking read, deleting, the unread count.
pub struct InboxService<S> {
    store: S,
}

impl<S: InboxStore + Sync> InboxService<S> {
    pub fn new(store: S) -> Self {
        Self { store }
    }

    pub async fn list(
        &self,
        account_id: &AccountId,
        query: &InboxQuery,
        now: i64,
    ) -> Result<InboxPage, AppError> {
        let query = InboxQuery {
            limit: query.limit.clamp(1, MAX_PAGE),
            ..query.clone()
        };
        // The unread ones come first: a cursor among the read ones has passed them all.
        if query.unread_only && query.after.as_ref().is_some_and(|c| c.read) {
            return Ok(InboxPage::default());
        }
        Ok(self.store.list_messages(account_id, &query, now).await?)
    }

    /// Idempotent: a message already read stays read.
    pub async fn mark_read(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        now: i64,
    ) -> Result<(), AppError> {
        let found = retried(|| self.store.mark_read(account_id, id, now)).await?;
        crate::services::found_or_not(found, "message")
    }

    pub async fn delete(
        &self,
        account_id: &AccountId,
        id: &MessageId,
        now: i64,
    ) -> Result<(), AppError> {
        let found = retried(|| self.store.delete_message(account_id, id, now)).await?;
        crate::services::found_or_not(found, "message")
    }

    pub async fn unread_count(&self, account_id: &AccountId) -> Result<u32, AppError> {
        Ok(self.store.unread_count(account_id).await?)
    }
}

/// A change of a message that lost a race (a parallel mark or delete of the same message,
/// a new message counted meanwhile) is made again on a fresh read, a few times.
async fn retried<F, Fut>(change: F) -> Result<bool, StoreError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, StoreError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match change().await {
            Err(StoreError::Conflict) if attempt < 3 => continue,
            other => return other,
        }
    }
}

/// Keeps a message in the account's inbox. `Ok(false)`: it was kept before (a retry of
/// the same event).
pub async fn keep<S: InboxStore + Sync>(
    store: &S,
    account_id: &AccountId,
    message: &Message,
) -> Result<bool, StoreError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store.keep_message(account_id, message, MAX_UNREAD).await {
            Err(StoreError::Conflict) if attempt < 3 => continue,
            Ok(kept) => {
                if kept {
                    tracing::info!(%account_id, message_id = %message.id, category = message.category.as_str(), "inbox message kept");
                }
                return Ok(kept);
            }
            Err(e) => return Err(e),
        }
    }
}

/// [`keep`] for what is told on a best-effort basis: a failure is logged, not returned.
pub async fn keep_logged<S: InboxStore + Sync>(
    store: &S,
    account_id: &AccountId,
    message: &Message,
) {
    if let Err(e) = keep(store, account_id, message).await {
        tracing::warn!(%account_id, message_id = %message.id, category = message.category.as_str(), error = %e, "inbox message not kept");
    }
}

/// The hook of the profile checks: the outcome of a check kept in the inbox (its e-mail
/// and SMS go as they always did). The outcome of one submission is one event, so a job
/// retried after its profile write keeps it once; a child's check (no submission of the
/// parent's) is a message of its own.
pub async fn keep_verification_outcome<S: InboxStore + Sync>(
    store: &S,
    account_id: &AccountId,
    title: &str,
    text: &str,
    submission: Option<&str>,
) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let message = Message::new(MessageCategory::Verification, title, text, now);
    let message = match submission {
        Some(submission) => message.of_event(&format!("verification:{submission}")),
        None => message,
    };
    keep_logged(store, account_id, &message).await;
}

/// What goes out with a message besides the inbox.
#[derive(Debug, Clone, Copy)]
pub enum Delivery<'a> {
    /// The message's title as the subject, its text as the body.
    Email(&'a Email),
    /// An SMS of its own, shorter text.
    Sms(&'a Phone, &'a str),
}

/// Tells a citizen: keeps the message in the inbox (a failure is logged: the e-mail and
/// SMS still go), then sends each delivery. The answers of the sends, in order, for the
/// caller to count or log as it always did.
pub async fn tell<S, M>(
    store: &S,
    notifier: &M,
    account_id: &AccountId,
    message: &Message,
    deliveries: &[Delivery<'_>],
) -> Vec<Result<(), DeliveryError>>
where
    S: InboxStore + Sync,
    M: Notifier + Sync,
{
    keep_logged(store, account_id, message).await;
    let mut sent = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        sent.push(match delivery {
            Delivery::Email(to) => {
                let text = Secret::new(message.text.clone());
                notifier.send_email(to, &message.title, &text).await
            }
            Delivery::Sms(to, text) => notifier.send_sms(to, &Secret::new(text.to_string())).await,
        });
    }
    sent
}

#[cfg(test)]
mod tests;
