//! The daily run of the reminders and what they say.

use super::*;
use crate::domain::{Email, Phone};
use crate::error::AppError;
use crate::metrics::{self, Metric, NoticeKind};
use crate::redact::Secret;
use crate::services::codes::Notifier;
use crate::services::identity::StoredAccount;
use crate::services::notices::NoticeStore;
use crate::services::profile::ProfileStore;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderRun {
    /// Index entries looked at.
    pub looked: usize,
    pub emails: usize,
    pub sms: usize,
    /// Reminders a run before had sent (or another run is sending).
    pub already: usize,
    /// Entries whose account or document is gone or changed.
    pub stale: usize,
    /// The run stopped at its batch with entries possibly left.
    pub more: bool,
}

pub struct ReminderService<S, M> {
    store: S,
    mailer: M,
    batch: usize,
}

impl<S, M> ReminderService<S, M>
where
    S: ReminderStore + ProfileStore + NoticeStore + Sync,
    M: Notifier + Sync,
{
    pub fn new(store: S, mailer: M, batch: usize) -> Self {
        Self {
            store,
            mailer,
            batch: batch.max(1),
        }
    }

    /// The reminders due on `today` (Moscow's date of the scheduled run), each sent once.
    pub async fn run(&self, today: Date, now: OffsetDateTime) -> Result<ReminderRun, AppError> {
        let mut run = ReminderRun::default();
        for day in days_to_read(today) {
            let mut after: Option<String> = None;
            loop {
                let room = self.batch - run.looked;
                if room == 0 {
                    run.more = true;
                    return Ok(run);
                }
                let page = self
                    .store
                    .due_on(day, after.as_deref(), room.min(PAGE_SIZE))
                    .await?;
                for item in &page.items {
                    run.looked += 1;
                    self.remind(item, today, now, &mut run).await?;
                }
                match page.next {
                    Some(next) if !page.items.is_empty() => after = Some(next),
                    _ => break,
                }
            }
        }
        Ok(run)
    }

    async fn remind(
        &self,
        item: &DueItem,
        today: Date,
        now: OffsetDateTime,
        run: &mut ReminderRun,
    ) -> Result<(), AppError> {
        let Some(threshold) = threshold_for(today, item.entry.due) else {
            return Ok(());
        };
        let Some((account, stored)) = self.store.load_profile(&item.account_id).await? else {
            run.stale += 1;
            return Ok(());
        };
        // The index changes with the profile, so this holds; an entry the profile no
        // longer has is told nothing all the same.
        let current = stored
            .profile
            .dues
            .as_ref()
            .is_some_and(|d| d.contains(&item.entry));
        if !current {
            run.stale += 1;
            return Ok(());
        }
        let sms_wanted = match self.store.notification_settings(&account.id).await {
            Ok(settings) => settings.unwrap_or_default().verification_sms,
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "notification settings not read; no SMS reminder");
                false
            }
        };
        let message = reminder_message(&item.entry, today);
        let claim = |channel| ReminderClaim {
            account_id: &item.account_id,
            document: item.entry.document,
            stamp: &item.entry.stamp,
            threshold,
            channel,
        };
        let email_claim = claim(NoticeChannel::Email);
        if self.store.claim_reminder(&email_claim, now).await? {
            if self.send_email(&account, &message).await {
                run.emails += 1;
            } else {
                self.release(&email_claim).await;
            }
        } else {
            run.already += 1;
        }
        if sms_wanted {
            let sms_claim = claim(NoticeChannel::Sms);
            if self.store.claim_reminder(&sms_claim, now).await? {
                if self.send_sms(&account, &message).await {
                    run.sms += 1;
                } else {
                    self.release(&sms_claim).await;
                }
            }
        }
        tracing::info!(
            account_id = %item.account_id,
            document = item.entry.document.as_str(),
            threshold,
            "document reminder handled"
        );
        Ok(())
    }

    async fn release(&self, claim: &ReminderClaim<'_>) {
        if let Err(e) = self.store.release_reminder(claim).await {
            tracing::warn!(account_id = %claim.account_id, error = %e, "reminder claim not released; this reminder is lost");
        }
    }

    async fn send_email(&self, account: &StoredAccount, message: &ReminderMessage) -> bool {
        let Ok(email) = Email::parse("email", &account.email) else {
            return false;
        };
        let text = Secret::new(message.email.clone());
        match self.mailer.send_email(&email, message.subject, &text).await {
            Ok(()) => {
                sent(NoticeChannel::Email);
                true
            }
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "reminder e-mail not sent");
                false
            }
        }
    }

    async fn send_sms(&self, account: &StoredAccount, message: &ReminderMessage) -> bool {
        let Ok(phone) = Phone::parse("phone", &account.phone) else {
            return false;
        };
        match self
            .mailer
            .send_sms(&phone, &Secret::new(message.sms.clone()))
            .await
        {
            Ok(()) => {
                sent(NoticeChannel::Sms);
                true
            }
            Err(e) => {
                tracing::warn!(account_id = %account.id, error = %e, "reminder SMS not sent");
                false
            }
        }
    }
}

fn sent(channel: NoticeChannel) {
    metrics::emit(Metric::NoticesSent {
        kind: NoticeKind::DocumentReminder,
        channel,
    });
}

/// What a reminder says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderMessage {
    pub subject: &'static str,
    pub email: String,
    /// Short, and with nothing that identifies the document.
    pub sms: String,
}

pub const EXPIRY_SUBJECT: &str = "Срок действия документа";
pub const REPLACEMENT_SUBJECT: &str = "Замена паспорта";

/// The reminder of `entry` on `today`.
pub fn reminder_message(entry: &DueEntry, today: Date) -> ReminderMessage {
    let left = (entry.due - today).whole_days();
    let date = format!(
        "{:02}.{:02}.{}",
        entry.due.day(),
        u8::from(entry.due.month()),
        entry.due.year()
    );
    let title = entry.document.title();
    match (entry.document, entry.age) {
        (DueDocument::Passport, Some(age)) => {
            let when = match left {
                1.. => format!("{date} вам исполнится {age} лет (через {})", days(left)),
                0 => format!("сегодня, {date}, вам исполняется {age} лет"),
                _ => format!("{date} вам исполнилось {age} лет"),
            };
            ReminderMessage {
                subject: REPLACEMENT_SUBJECT,
                email: format!(
                    "Паспорт гражданина РФ нужно заменить: {when}. Заявление о замене можно подать на портале или в МФЦ."
                ),
                sms: format!(
                    "Паспорт гражданина РФ нужно заменить: {when}. Подробности в письме и в личном кабинете."
                ),
            }
        }
        _ => {
            let when = match left {
                1.. => format!("истекает {date} (через {})", days(left)),
                0 => format!("истекает сегодня, {date}"),
                _ => format!("истёк {date}"),
            };
            ReminderMessage {
                subject: EXPIRY_SUBJECT,
                email: format!(
                    "{title}: срок действия {when}. Оформите новый документ заранее и внесите его в профиль."
                ),
                sms: format!(
                    "{title}: срок действия {when}. Подробности в письме и в личном кабинете."
                ),
            }
        }
    }
}

/// `n` days in Russian: 1 день, 2 дня, 5 дней, 21 день.
pub fn days(n: i64) -> String {
    let word = match (n % 10, n % 100) {
        (_, 11..=14) => "дней",
        (1, _) => "день",
        (2..=4, _) => "дня",
        _ => "дней",
    };
    format!("{n} {word}")
}
