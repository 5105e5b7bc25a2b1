use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::{Env, ReminderConfig};
use shared::entry::Scheduled;
use shared::metrics::{Job, Metric};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::init()?;
    let config = ReminderConfig::from_env(&Env::process())?;
    let clients = shared::adapters::Clients::load().await?;
    let reminders = &shared::adapters::reminder_service(&clients, config);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let now = time::OffsetDateTime::now_utc();
        // The run's day is the one the schedule event was due on (its `time`, in
        // Moscow), not the clock's: a late retry reminds of the same day's documents.
        let scheduled = Scheduled::of(&event.payload, &event.context.request_id, now);
        let today = scheduled.time.to_offset(shared::services::MOSCOW).date();
        let run = reminders.run(today, now).await?;
        if run.more {
            tracing::warn!(
                looked = run.looked,
                "more documents due than a run looks at; the rest wait for the next run"
            );
        }
        tracing::info!(
            day = %today,
            looked = run.looked,
            emails = run.emails,
            sms = run.sms,
            already = run.already,
            stale = run.stale,
            "document reminders run"
        );
        // Its absence over a day is what the missed-run alarm watches.
        shared::metrics::emit(Metric::ScheduledRunsCompleted {
            job: Job::DocumentReminders,
        });
        Ok::<_, Error>(serde_json::json!({
            "day": today.to_string(),
            "looked": run.looked,
            "emails": run.emails,
            "sms": run.sms,
            "already": run.already,
            "stale": run.stale,
            "more": run.more,
        }))
    }))
    .await
}
