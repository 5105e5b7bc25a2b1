//! Running autopays: the daily schedule, shard by shard and page by page, and new bills as
//! they come; paying, pausing, and telling the citizen.

use super::*;
use crate::domain::Email;
use crate::metrics::{self, Metric, NoticeChannel};
use crate::services::inbox::{self, Delivery, Message, MessageCategory};

impl<'a, S: AutopayStores, G: PaymentGateway, M: Notifier, Q: PaymentNoticeQueue>
    AutopayService<'a, S, G, M, Q>
{
    /// Plans a schedule run for the day `today` (Moscow; the day the schedule event was
    /// due): the first page of every shard of that day's schedule index, monthly and
    /// weekly, for the queue. `run` names the run (the day and the schedule event); a
    /// planner that runs again for the same event plans the same pages.
    pub async fn plan_scheduled(
        &self,
        run: &str,
        today: time::Date,
        now: OffsetDateTime,
    ) -> Result<Vec<SchedulePage>, AppError> {
        let mut pages = Vec::new();
        for trigger in [
            Trigger::Monthly { day: today.day() },
            Trigger::Weekly {
                weekday: today.weekday().number_from_monday(),
            },
        ] {
            for shard in Shard::all(SCHEDULE_SHARDS) {
                pages.push(SchedulePage {
                    run: run.to_string(),
                    date: today,
                    trigger,
                    shard,
                    after: None,
                });
            }
        }
        self.store
            .open_run(
                Run {
                    job: ShardedJob::RunAutopays,
                    id: run,
                },
                pages.len(),
                now.unix_timestamp(),
            )
            .await?;
        Ok(pages)
    }

    /// Pays the autopays of one page of a shard, then queues the next page, or, on the
    /// shard's last page, marks the shard done. Every autopay of the page is tried; if
    /// any failed, the page fails after the others were paid and comes back whole: what
    /// it paid already is found paid (the idempotency key `autopay:{id}:{generation}:{uin}`
    /// replays the payment, a paid bill is not paid again), and the next page is queued
    /// only once the page succeeded, so a shard stops at a page that keeps failing (and
    /// its message reaches the dead-letter queue) rather than skipping it.
    pub async fn run_page(
        &self,
        queue: &impl SchedulePageQueue,
        page: &SchedulePage,
        page_size: usize,
        now: OffsetDateTime,
    ) -> Result<PageOutcome, AppError> {
        let found = self.store.scheduled_autopays(page, page_size).await?;
        let outcomes: Vec<Result<bool, AppError>> =
            stream::iter(found.entries)
                .map(|(account_id, id)| async move {
                    self.run_one(&account_id, &id, page.date, now).await
                })
                .buffer_unordered(PAGE_CONCURRENCY)
                .collect()
                .await;
        let mut outcome = PageOutcome::default();
        let mut failed = None;
        for result in outcomes {
            match result {
                Ok(true) => outcome.ran += 1,
                Ok(false) => {}
                Err(e) => {
                    outcome.failed += 1;
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = failed {
            tracing::warn!(
                shard = %page.shard_id(),
                failed = outcome.failed,
                "schedule page failed; it comes back and pays nothing twice"
            );
            return Err(e);
        }
        match found.next {
            Some(after) => {
                let next = SchedulePage {
                    after: Some(after),
                    ..page.clone()
                };
                queue.enqueue_pages(std::slice::from_ref(&next)).await?;
            }
            None => {
                outcome.run_completed = self
                    .store
                    .finish_shard(
                        Run {
                            job: ShardedJob::RunAutopays,
                            id: &page.run,
                        },
                        &page.shard_id(),
                        now.unix_timestamp(),
                    )
                    .await?;
            }
        }
        Ok(outcome)
    }

    /// One autopay of a schedule run; `false`: not this run's (paused, changed, gone).
    pub(super) async fn run_one(
        &self,
        account_id: &AccountId,
        id: &AutopayId,
        date: time::Date,
        now: OffsetDateTime,
    ) -> Result<bool, AppError> {
        let Ok(autopay) = self.get(account_id, id).await else {
            return Ok(false);
        };
        if autopay.status != AutopayStatus::Active || !autopay.due_on(date) {
            return Ok(false);
        }
        let outcome = match &autopay.matching {
            Match::Payee { payee } => self.pay_payee(&autopay, payee, date, now).await,
            _ => match self.due_bills(&autopay).await {
                Ok(bills) => self.pay_bills(&autopay, &bills, now).await,
                Err(e) => Err(e),
            },
        };
        match outcome {
            Ok(_) => Ok(true),
            Err(e) => {
                tracing::warn!(autopay_id = %autopay.id, error = %e, "autopay run failed; its page comes back");
                Err(e)
            }
        }
    }

    /// A new bill for an account: its active new-bill autopays that match pay it.
    pub async fn on_new_bill(
        &self,
        account_id: &AccountId,
        uin: &Uin,
        now: OffsetDateTime,
    ) -> Result<AutopayRun, AppError> {
        let mut total = AutopayRun::default();
        let Some(charge) = self.store.charge(uin).await? else {
            return Ok(total);
        };
        for autopay in self.store.autopays(account_id).await? {
            let wanted = autopay.status == AutopayStatus::Active
                && autopay.trigger == Trigger::NewBill
                && autopay.matching.matches(&charge);
            if !wanted {
                continue;
            }
            // Only a bill the account's own list shows (its verified documents, children,
            // vehicles), never one that merely names a typed-in identifier.
            let listed = self.due_bills(&autopay).await?;
            if !listed.iter().any(|c| c.uin == *uin) {
                continue;
            }
            let run = self
                .pay_bills(&autopay, std::slice::from_ref(&charge), now)
                .await?;
            total.paid.extend(run.paid);
            total.over_limit.extend(run.over_limit);
            total.declined.extend(run.declined);
            total.waiting.extend(run.waiting);
        }
        Ok(total)
    }

    /// The account's unpaid bills an autopay matches.
    pub(super) async fn due_bills(&self, autopay: &Autopay) -> Result<Vec<StoredCharge>, AppError> {
        let filter = BillFilter {
            category: match &autopay.matching {
                Match::Category { category } => Some(*category),
                Match::Payer { .. } | Match::Payee { .. } => None,
            },
            status: None,
            after: None,
            limit: MAX_PAGE,
        };
        Ok(BillService::new(self.store, self.charges)
            .list(&autopay.account_id, &filter)
            .await?
            .into_iter()
            // Bills the citizen only saved by UIN are someone else's: never paid unasked.
            .filter(|b| b.matched.iter().any(|(_, holder)| *holder != Holder::Saved))
            .map(|b| b.charge)
            // A withdrawn bill (its biller revoked) is skipped, not tried and failed.
            .filter(|c| {
                c.status == ChargeStatus::Unpaid && !c.withdrawn && autopay.matching.matches(c)
            })
            .collect())
    }

    pub(super) async fn pay_bills(
        &self,
        autopay: &Autopay,
        bills: &[StoredCharge],
        now: OffsetDateTime,
    ) -> Result<AutopayRun, AppError> {
        let mut run = AutopayRun::default();
        let today = now.to_offset(MOSCOW).date();
        for charge in bills {
            let due = charge.amount_due(today);
            if due > autopay.limit {
                run.over_limit.push(charge.uin.clone());
                if self
                    .store
                    .claim_skip_notice(
                        SkippedBill {
                            account_id: &autopay.account_id,
                            autopay_id: &autopay.id,
                            uin: &charge.uin,
                        },
                        now.unix_timestamp(),
                    )
                    .await?
                {
                    self.tell(
                        autopay,
                        &format!(
                            "Автоплатёж «{}» не оплатил начисление {} на {}: сумма больше лимита {}. Оплатите его сами или увеличьте лимит.",
                            autopay.name,
                            charge.uin.as_str(),
                            roubles(due),
                            roubles(autopay.limit)
                        ),
                    )
                    .await;
                }
                continue;
            }
            let request = PayRequest {
                uins: vec![charge.uin.clone()],
                method: MethodRequest::Saved(autopay.method_id.to_string()),
            };
            let key = format!(
                "autopay:{}:{}:{}",
                autopay.id,
                autopay.generation,
                charge.uin.as_str()
            );
            let origin = format!("autopay:{}", autopay.id);
            match self
                .payments
                .pay(
                    &PayingAs::Citizen(autopay.account_id.clone()),
                    &key,
                    &request,
                    &origin,
                    now,
                )
                .await
            {
                Ok(outcome) => match outcome.payment.status {
                    PaymentStatus::Succeeded => run.paid.push(charge.uin.clone()),
                    PaymentStatus::Declined => {
                        run.declined.push(charge.uin.clone());
                        let reason = outcome.payment.decline_reason.unwrap_or_default();
                        self.pause(autopay, &reason, &decline_text(&reason)).await?;
                        return Ok(run);
                    }
                    _ => run.waiting.push(charge.uin.clone()),
                },
                // Paid meanwhile, by the citizen or another autopay, or withdrawn since it
                // was listed: nothing to do.
                Err(
                    AppError::BillPaid(_)
                    | AppError::BillInPayment(_)
                    | AppError::BillMissing(_)
                    | AppError::BillWithdrawn(_),
                ) => {}
                Err(AppError::NotFound("payment method")) => {
                    self.pause_method_removed(autopay).await?;
                    return Ok(run);
                }
                Err(e) => return Err(e),
            }
        }
        if !run.paid.is_empty() {
            tracing::info!(autopay_id = %autopay.id, paid = run.paid.len(), "autopay paid bills");
        }
        Ok(run)
    }

    /// Pauses an autopay whose saved method is gone.
    pub(super) async fn pause_method_removed(&self, autopay: &Autopay) -> Result<(), AppError> {
        let why = "сохранённый способ оплаты удалён";
        self.pause(autopay, "payment_method_removed", why).await
    }

    pub(super) async fn pause(
        &self,
        autopay: &Autopay,
        reason: &str,
        why: &str,
    ) -> Result<(), AppError> {
        let mut paused = autopay.clone();
        paused.status = AutopayStatus::Paused;
        paused.paused_reason = Some(reason.to_string());
        self.store
            .put_autopay(&paused, Some(&autopay.trigger))
            .await?;
        tracing::info!(autopay_id = %autopay.id, reason, "autopay paused");
        self.tell(
            autopay,
            &format!(
                "Автоплатёж «{}» приостановлен: {why}. Проверьте способ оплаты и включите автоплатёж снова.",
                autopay.name
            ),
        )
        .await;
        Ok(())
    }

    pub(super) async fn tell(&self, autopay: &Autopay, text: &str) {
        let account = match self.payments.account(&autopay.account_id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(autopay_id = %autopay.id, error = %e, "autopay notice not sent: account not read");
                return;
            }
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let message = Message::new(MessageCategory::Payments, AUTOPAY_SUBJECT, text, now);
        let email = Email::parse("email", &account.email).ok();
        let deliveries: Vec<Delivery<'_>> = email.iter().map(Delivery::Email).collect();
        let sent = inbox::tell(
            self.store,
            self.notifier,
            &account.id,
            &message,
            &deliveries,
        );
        for result in sent.await {
            match result {
                Ok(()) => metrics::emit(Metric::NoticesSent {
                    kind: NoticeKind::Autopay,
                    channel: NoticeChannel::Email,
                }),
                Err(e) => {
                    tracing::warn!(autopay_id = %autopay.id, error = %e, "autopay notice not sent")
                }
            }
        }
    }
}
