use shared::config::NoticesConfig;
use shared::entry::ColdStart;
use shared::services::bill_notices::NoticeRun;
use shared::services::notices::BillNotice;

/// Bills of one batch told at the same time.
const CONCURRENCY: usize = 10;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    shared::entry::init()?;
    let start = ColdStart::load().await?;
    let config = NoticesConfig::from_env(&start.env, start.hasher)?;
    let service = &shared::adapters::notice_service(&start.clients, config);
    shared::entry::run_queue(CONCURRENCY, |notice: BillNotice, _| async move {
        // A UIN that does not parse names no bill: nothing to tell.
        let run = match notice.bill() {
            Some(uin) => {
                service
                    .announce(&uin, time::OffsetDateTime::now_utc())
                    .await?
            }
            None => NoticeRun::default(),
        };
        tracing::info!(uin = %notice.uin, sent = run.sent, stale = run.stale, "bill told");
        Ok(())
    })
    .await
}
