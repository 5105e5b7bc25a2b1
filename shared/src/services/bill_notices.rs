//! Telling citizens of their new bills.
//!
//! - **Telling**: the charges function queues the UIN of every unpaid charge it writes;
//!   the bill-notices worker finds the holders (see [`crate::services::household::holdings`])
//!   and tells each once per channel. A marker item per (account, bill, channel) is
//!   claimed before the send, so a repeated charge write, a redelivered message or a
//!   second payer naming the same account never sends twice. The notice is also kept in
//!   the citizen's inbox, whatever the channels, once per bill
//!   (see [`crate::services::inbox`]).
//! - **Wording**: the portal's own, filled only with values the portal checked (category,
//!   amount, due date, UIN, whose bill it is, the portal's address). A biller's free text
//!   (purpose, payee name) never goes into an SMS or e-mail: a citizen reads these as the
//!   portal speaking, so a biller must not be able to put a link or a request there.

use std::collections::BTreeMap;
use std::future::Future;

use time::OffsetDateTime;

use crate::crypto::Hasher;
use crate::domain::{payer_key, roubles, AccountId, Category, Email, Payer, Phone, Uin};
use crate::error::AppError;
use crate::metrics::{self, Metric, NoticeKind};
use crate::redact::Secret;
use crate::services::charges::{ChargeStatus, ChargeStore, StoredCharge};
use crate::services::codes::Notifier;
use crate::services::household::holdings::{holdings_of, Holder};
use crate::services::household::HouseholdStore;
use crate::services::inbox::{self, InboxStore, Message, MessageCategory};
use crate::services::notices::{Channel, NoticeMark, NoticeStore, SettingsService};
use crate::services::profile::ProfileStore;
use crate::services::StoreError;

/// What one bill's notice run did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NoticeRun {
    /// Messages sent.
    pub sent: usize,
    /// Accounts the index named that no longer hold any of the bill's identifiers.
    pub stale: usize,
}

impl NoticeRun {
    /// Counts what one channel's [`NoticeService::send_once`] did: a message sent,
    /// one sent before, or a failure kept for the end of the run (the others still go).
    fn tally(&mut self, sent: Result<bool, AppError>, failed: &mut Option<AppError>) {
        match sent {
            Ok(true) => self.sent += 1,
            Ok(false) => {}
            Err(e) => *failed = Some(e),
        }
    }
}

/// Told of every account a new bill belongs to (after the index hint was checked), so
/// that its new-bill autopays can pay it.
#[trait_variant::make(Send)]
pub trait NewBillHook {
    async fn new_bill(
        &self,
        account_id: &AccountId,
        charge: &StoredCharge,
    ) -> Result<(), StoreError>;
}

impl NewBillHook for () {
    async fn new_bill(&self, _: &AccountId, _: &StoredCharge) -> Result<(), StoreError> {
        Ok(())
    }
}

pub struct NoticeService<S, M, H = ()> {
    store: S,
    notifier: M,
    hasher: Hasher,
    hook: H,
    /// The portal's address, the one link a notice carries.
    portal_url: String,
}

impl<S, M> NoticeService<S, M> {
    pub fn new(store: S, notifier: M, hasher: Hasher, portal_url: String) -> Self {
        Self {
            store,
            notifier,
            hasher,
            hook: (),
            portal_url,
        }
    }

    /// The same service, telling `hook` of every account a new bill belongs to.
    pub fn with_hook<H>(self, hook: H) -> NoticeService<S, M, H> {
        NoticeService {
            store: self.store,
            notifier: self.notifier,
            hasher: self.hasher,
            hook,
            portal_url: self.portal_url,
        }
    }
}

impl<S, M, H> NoticeService<S, M, H>
where
    S: ChargeStore + ProfileStore + HouseholdStore + NoticeStore + InboxStore + Sync,
    M: Notifier + Sync,
    H: NewBillHook + Sync,
{
    /// Tells every holder of a bill's identifiers about it, once per channel. `Err`: some
    /// notice was not sent and the run should be tried again (what was sent stays sent).
    pub async fn announce(&self, uin: &Uin, now: OffsetDateTime) -> Result<NoticeRun, AppError> {
        let mut run = NoticeRun::default();
        let Some(charge) = self.store.charge(uin).await? else {
            return Ok(run);
        };
        if charge.status != ChargeStatus::Unpaid {
            return Ok(run);
        }
        let keyed: Vec<(String, &Payer)> = charge
            .body
            .payers
            .iter()
            .map(|p| (payer_key(&self.hasher, p), p))
            .collect();
        let mut candidates: BTreeMap<AccountId, Vec<String>> = BTreeMap::new();
        let found = futures_util::future::try_join_all(
            keyed.iter().map(|(key, _)| self.store.holders(key)),
        )
        .await?;
        for ((key, _), accounts) in keyed.iter().zip(found) {
            for account in accounts {
                candidates.entry(account).or_default().push(key.clone());
            }
        }
        let mut failed = None;
        for (account_id, keys) in candidates {
            // The index is a hint: what the account holds now decides.
            let holdings = holdings_of(&self.store, &account_id).await?;
            let (account, holders) = match holdings {
                Some((account, ids)) => {
                    let holders: Vec<Holder> = ids
                        .into_iter()
                        .filter(|(payer, _)| charge.body.payers.contains(payer))
                        .map(|(_, holder)| holder)
                        .collect();
                    (Some(account), holders)
                }
                None => (None, Vec::new()),
            };
            let Some(account) = account.filter(|_| !holders.is_empty()) else {
                run.stale += 1;
                self.store.change_holdings(&account_id, &[], &keys).await?;
                continue;
            };
            if let Err(e) = self.hook.new_bill(&account_id, &charge).await {
                tracing::warn!(account_id = %account_id, uin = uin.as_str(), error = %e, "new-bill autopays not asked; the message is retried");
                failed = Some(AppError::from(e));
            }
            let channels = SettingsService::new(&self.store)
                .get(&account_id)
                .await?
                .for_category(charge.body.category);
            let today = now.to_offset(crate::services::MOSCOW).date();
            let text = notice_text(&charge, &holders, today, &self.portal_url);
            let at = now.unix_timestamp();
            // Kept whatever the channels say, once per bill: a retry finds it kept. Not
            // kept, the message fails and is retried; the channels still go now, each
            // once, as their markers say.
            let message = Message::new(MessageCategory::Bills, NOTICE_SUBJECT, text.clone(), at)
                .of_event(&format!("bill:{}", uin.as_str()))
                .about_bill(uin);
            if let Err(e) = inbox::keep(&self.store, &account_id, &message).await {
                tracing::warn!(account_id = %account_id, uin = uin.as_str(), error = %e, "bill notice not kept in the inbox; the message is retried");
                failed = Some(AppError::from(e));
            }
            let mark = |channel| NoticeMark {
                account_id: &account_id,
                uin,
                channel,
            };
            if channels.email {
                if let Ok(email) = Email::parse("email", &account.email) {
                    let text = Secret::new(text.clone());
                    let send = self.notifier.send_email(&email, NOTICE_SUBJECT, &text);
                    let sent = self.send_once(mark(Channel::Email), at, send).await;
                    run.tally(sent, &mut failed);
                }
            }
            if channels.sms {
                if let Ok(phone) = Phone::parse("phone", &account.phone) {
                    let sms = Secret::new(sms_text(&charge, today, &self.portal_url));
                    let send = self.notifier.send_sms(&phone, &sms);
                    let sent = self.send_once(mark(Channel::Sms), at, send).await;
                    run.tally(sent, &mut failed);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(run),
        }
    }

    /// Claims, sends, and gives the claim back if the send failed. `Ok(false)`: sent
    /// before. `send` is not polled unless the claim is won.
    async fn send_once(
        &self,
        mark: NoticeMark<'_>,
        now: i64,
        send: impl Future<Output = Result<(), crate::services::codes::DeliveryError>>,
    ) -> Result<bool, AppError> {
        if !self.store.claim_notice(mark, now).await? {
            return Ok(false);
        }
        let NoticeMark {
            account_id,
            uin,
            channel,
        } = mark;
        match send.await {
            Ok(()) => {
                tracing::info!(
                    %account_id,
                    uin = uin.as_str(),
                    channel = channel.as_str(),
                    "bill notice sent"
                );
                metrics::emit(Metric::NoticesSent {
                    kind: NoticeKind::NewBill,
                    channel: channel.into(),
                });
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(%account_id, uin = uin.as_str(), channel = channel.as_str(), error = %e, "bill notice not sent");
                self.store.release_notice(mark).await?;
                Err(AppError::StoreUnavailable(format!("notice not sent: {e}")))
            }
        }
    }
}

pub const NOTICE_SUBJECT: &str = "Новое начисление";

fn category_title(category: Category) -> &'static str {
    match category {
        Category::Utilities => "ЖКУ",
        Category::Education => "образование",
        Category::Kindergarten => "детский сад",
        Category::Clubs => "кружки и секции",
        Category::Fines => "штраф",
        Category::Taxes => "налоги",
        Category::Other => "прочее",
    }
}

/// The e-mail: the portal's wording, checked values only (see the module's notes).
fn notice_text(
    charge: &crate::services::charges::StoredCharge,
    holders: &[Holder],
    today: time::Date,
    portal_url: &str,
) -> String {
    let b = &charge.body;
    let mut lines = vec![format!(
        "Новое начисление ({}).",
        category_title(b.category)
    )];
    let mut whose: Vec<String> = Vec::new();
    for holder in holders {
        let text = match holder {
            Holder::Own => "на ваше имя".to_string(),
            Holder::Child { first_name, .. } => format!("для ребёнка {first_name}"),
            Holder::Vehicle { plate, .. } => format!("по автомобилю {plate}"),
            Holder::Saved | Holder::Organisation => continue,
        };
        if !whose.contains(&text) {
            whose.push(text);
        }
    }
    if !whose.is_empty() {
        lines.push(format!("Начислено {}.", whose.join(", ")));
    }
    let due = charge.amount_due(today);
    if due < b.amount {
        let until = b.discount.as_ref().map(|d| d.until.as_str()).unwrap_or("");
        lines.push(format!(
            "К оплате {} со скидкой до {until} (без скидки {}).",
            roubles(due),
            roubles(b.amount)
        ));
    } else {
        lines.push(format!("К оплате {}.", roubles(due)));
    }
    lines.push(format!(
        "Оплатить до {}. УИН {}.",
        b.due_date,
        charge.uin.as_str()
    ));
    lines.push(format!(
        "Подробности и оплата — в разделе «Мои платежи» на {portal_url}. Мы не присылаем ссылок на оплату в письмах и SMS."
    ));
    lines.join("\n")
}

/// The SMS: the portal's wording, checked values only.
fn sms_text(
    charge: &crate::services::charges::StoredCharge,
    today: time::Date,
    portal_url: &str,
) -> String {
    format!(
        "Новое начисление ({}): {} до {}. УИН {}. Оплата на {portal_url}",
        category_title(charge.body.category),
        roubles(charge.amount_due(today)),
        charge.body.due_date,
        charge.uin.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_notice_is_kept_in_the_inbox_once_and_a_failed_keep_is_retried() {
        use crate::testing::{test_hasher, Clock, Fault, MemStore, Outbox};
        let store = MemStore::new();
        let outbox = Outbox::default();
        let clock = Clock::new();
        let account: AccountId = "00000000-0000-4000-8000-000000000001".into();
        let snils = "11223344595";
        let uin = "18810177220000000015";
        store.add_citizen(&account, snils);
        store.add_charge(uin, 150_000, Category::Kindergarten, snils);
        let key = payer_key(
            &test_hasher(),
            &Payer {
                kind: crate::domain::PayerKind::Snils,
                value: snils.into(),
            },
        );
        store
            .state()
            .holdings
            .entry(account.clone())
            .or_default()
            .insert(key);
        let notices = NoticeService::new(
            store.clone(),
            outbox.clone(),
            test_hasher(),
            "https://uslugi.example".into(),
        );
        let uin = Uin::parse("uin", uin).unwrap();
        // The inbox cannot be written: the e-mail goes, the run fails for the queue.
        store.script.fail_next("keep_message", Fault::Unavailable);
        assert!(notices.announce(&uin, clock.now()).await.is_err());
        assert_eq!(outbox.sent().len(), 1);
        assert!(store.state().inbox_of(&account).is_empty());
        // The queue's retry keeps it and sends nothing again; a third delivery changes
        // nothing.
        for _ in 0..2 {
            notices.announce(&uin, clock.now()).await.unwrap();
        }
        assert_eq!(outbox.sent().len(), 1);
        let inbox = store.state().inbox_of(&account);
        assert_eq!(inbox.len(), 1, "{inbox:?}");
        assert_eq!(inbox[0].message.uin.as_ref(), Some(&uin));
        assert_eq!(inbox[0].message.text, outbox.sent()[0].text);
    }

    #[test]
    fn notices_carry_none_of_the_billers_text() {
        let mut charge = crate::testing::unpaid_charge(
            "18810177220000000015",
            150_000,
            Category::Kindergarten,
            "11223344595",
        );
        charge.body.payee.name = "Звоните +7 900 000-00-00".into();
        charge.body.purpose = "Оплатите по ссылке http://evil.example/pay".into();
        charge.body.due_date = "2026-12-10".into();
        let today = time::Date::from_calendar_date(2026, time::Month::November, 2).unwrap();
        let email = notice_text(&charge, &[Holder::Own], today, "https://uslugi.example");
        let sms = sms_text(&charge, today, "https://uslugi.example");
        for text in [&email, &sms] {
            assert!(
                !text.contains("evil") && !text.contains("Оплатите"),
                "{text}"
            );
            assert!(!text.contains("Звоните"), "{text}");
            assert!(text.contains("1\u{a0}500,00 ₽"), "{text}");
            assert!(
                text.contains("2026-12-10") && text.contains(charge.uin.as_str()),
                "{text}"
            );
            assert!(text.contains("https://uslugi.example"), "{text}");
        }
        assert!(email.contains("детский сад") && email.contains("на ваше имя"));
    }
}
