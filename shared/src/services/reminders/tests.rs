//! The reminders' planner, and a run against the doubles: each threshold once, however
//! often the job runs.

use serde_json::{json, Value};
use time::Month;

use super::*;
use crate::domain::AccountId;
use crate::services::profile::{ProfilePatch, ProfileService};
use crate::testing::{profile_edit, test_hasher, Clock, Fault, MemStore, Outbox};

fn date(year: i32, month: u8, day: u8) -> Date {
    Date::from_calendar_date(year, Month::try_from(month).unwrap(), day).unwrap()
}

// ------------------------------------------------------------------ the planner

#[test]
fn each_threshold_fires_on_its_day_and_the_catch_up_days_after() {
    let due = date(2027, 3, 10);
    let on = |days_before: i64| threshold_for(due - Duration::days(days_before), due);
    for (days_before, expected) in [
        (120, None),
        (91, None),
        (90, Some(90)),
        (88, Some(90)),
        (87, Some(90)),
        (86, None),
        (31, None),
        (30, Some(30)),
        (27, Some(30)),
        (26, None),
        (8, None),
        (7, Some(7)),
        (4, Some(7)),
        (3, None),
        (1, None),
        (0, Some(0)),
        (-3, Some(0)),
        (-4, None),
    ] {
        assert_eq!(on(days_before), expected, "{days_before} days before");
    }
}

#[test]
fn a_run_reads_each_threshold_and_its_catch_up_days() {
    let today = date(2026, 12, 10);
    let days = days_to_read(today);
    assert_eq!(days.len(), THRESHOLDS.len() * (CATCH_UP_DAYS as usize + 1));
    for day in &days {
        assert!(threshold_for(today, *day).is_some(), "{day}");
    }
    assert!(days.contains(&date(2027, 3, 10)));
    assert!(days.contains(&date(2026, 12, 7)));
}

#[test]
fn messages_say_what_is_due_and_when() {
    let entry = |document, age| DueEntry {
        document,
        due: date(2027, 3, 10),
        stamp: "s".into(),
        age,
    };
    let m = reminder_message(&entry(DueDocument::Passport, Some(45)), date(2026, 12, 10));
    assert_eq!(m.subject, REPLACEMENT_SUBJECT);
    assert!(
        m.email
            .contains("10.03.2027 вам исполнится 45 лет (через 90 дней)"),
        "{}",
        m.email
    );
    let m = reminder_message(
        &entry(DueDocument::InternationalPassport, None),
        date(2027, 3, 10),
    );
    assert_eq!(m.subject, EXPIRY_SUBJECT);
    assert!(m
        .email
        .starts_with("Заграничный паспорт: срок действия истекает сегодня, 10.03.2027"));
    let m = reminder_message(
        &entry(DueDocument::ForeignDocument, None),
        date(2027, 3, 12),
    );
    assert!(m.sms.contains("истёк 10.03.2027"), "{}", m.sms);
    for (n, text) in [
        (1, "1 день"),
        (3, "3 дня"),
        (7, "7 дней"),
        (11, "11 дней"),
        (21, "21 день"),
        (30, "30 дней"),
    ] {
        assert_eq!(days(n), text);
    }
}

// ------------------------------------------------------------------ due dates of a profile

fn profile_with(birth: &str, issue: &str) -> crate::services::profile::Profile {
    let mut p = crate::services::profile::Profile::default();
    p.personal.birth_date = Some(birth.into());
    p.documents.passport = Some(crate::services::profile::Passport {
        series: "4510".into(),
        number: "123456".into(),
        issue_date: issue.into(),
        department_code: "770-001".into(),
        issued_by: "ОВД".into(),
        birthplace: None,
    });
    p
}

#[test]
fn the_passport_is_due_at_20_unless_issued_after_it() {
    let hasher = test_hasher();
    let at_14 = profile_with("1990-05-17", "2004-06-01").due_entries(&hasher);
    assert_eq!(
        (at_14[0].document, at_14[0].due, at_14[0].age),
        (DueDocument::Passport, date(2010, 5, 17), Some(20))
    );
    let after_20 = profile_with("1990-05-17", "2010-07-01").due_entries(&hasher);
    assert_eq!(
        (after_20[0].due, after_20[0].age),
        (date(2035, 5, 17), Some(45))
    );
    assert!(profile_with("1960-01-01", "2005-02-01")
        .due_entries(&hasher)
        .is_empty());
    // Without a birth date nothing is known to be due.
    let mut no_birth = profile_with("1990-05-17", "2004-06-01");
    no_birth.personal.birth_date = None;
    assert!(no_birth.due_entries(&hasher).is_empty());
    // Another passport is another document: another stamp.
    let mut other = profile_with("1990-05-17", "2004-06-01");
    if let Some(p) = other.documents.passport.as_mut() {
        p.number = "654321".into();
    }
    assert_ne!(other.due_entries(&hasher)[0].stamp, at_14[0].stamp);
}

// ------------------------------------------------------------------ runs

struct World {
    store: MemStore,
    outbox: Outbox,
    profiles: ProfileService<MemStore, MemStore>,
    reminders: ReminderService<MemStore, Outbox>,
    clock: Clock,
}

fn world() -> World {
    let store = MemStore::new();
    store.add_account(&"a1".into());
    let outbox = Outbox::default();
    World {
        profiles: ProfileService::new(store.clone(), store.clone(), test_hasher()),
        reminders: ReminderService::new(store.clone(), outbox.clone(), DEFAULT_BATCH),
        store,
        outbox,
        // 2026-12-06 09:00 UTC.
        clock: Clock::at(1_796_547_600),
    }
}

impl World {
    async fn patch(&self, body: Value) {
        let account: AccountId = "a1".into();
        let body = body.as_object().cloned().unwrap_or_default();
        let patch = ProfilePatch::parse(&body, self.clock.now().date()).unwrap();
        let version = self.store.profile(&account).map_or(0, |p| p.version);
        let event = profile_edit(&account, &self.clock);
        self.profiles
            .patch(
                &account,
                version,
                &patch,
                crate::domain::CredentialStrength::SecondFactor,
                event,
                self.clock.now(),
            )
            .await
            .unwrap();
    }

    /// Runs the job of `day` and answers the subjects of the e-mails it sent.
    async fn run_on(&self, day: Date) -> Vec<String> {
        let before = self.outbox.sent().len();
        self.reminders.run(day, self.clock.now()).await.unwrap();
        self.outbox.sent()[before..]
            .iter()
            .map(|m| m.subject.clone().unwrap_or_default())
            .collect()
    }
}

/// A passport to be replaced at 45 on 2027-03-10.
fn passport_due_2027_03_10() -> Value {
    json!({
        "personal": {"birth_date": "1982-03-10"},
        "documents": {"passport": {
            "series": "45 10", "number": "123456", "issue_date": "2002-04-01",
            "department_code": "770-001", "issued_by": "ОВД района Арбат г. Москвы"
        }}
    })
}

#[tokio::test]
async fn each_threshold_is_told_once_however_often_the_job_runs() {
    let w = world();
    w.patch(passport_due_2027_03_10()).await;
    assert_eq!(w.store.state().dues.len(), 1);
    assert!(
        w.run_on(date(2026, 12, 9)).await.is_empty(),
        "91 days before"
    );
    assert_eq!(w.run_on(date(2026, 12, 10)).await, [REPLACEMENT_SUBJECT]);
    // A rerun of the day, and the catch-up days after it, send nothing again.
    assert!(w.run_on(date(2026, 12, 10)).await.is_empty());
    assert!(w.run_on(date(2026, 12, 11)).await.is_empty());
    assert!(w.run_on(date(2026, 12, 13)).await.is_empty());
    assert_eq!(w.run_on(date(2027, 2, 8)).await.len(), 1, "30 days before");
    assert!(w.run_on(date(2027, 2, 8)).await.is_empty());
    assert_eq!(w.run_on(date(2027, 3, 3)).await.len(), 1, "7 days before");
    assert_eq!(w.run_on(date(2027, 3, 10)).await.len(), 1, "the day");
    assert!(w.run_on(date(2027, 3, 11)).await.is_empty());
    assert_eq!(w.outbox.sent().len(), 4);
    assert!(w.outbox.sent()[0].text.contains("через 90 дней"));
    assert_eq!(w.outbox.sent()[0].to, "a1@example.ru");
}

#[tokio::test]
async fn a_missed_day_is_caught_up_and_a_failed_send_is_tried_again() {
    let w = world();
    w.patch(passport_due_2027_03_10()).await;
    // The job did not run on the 90th and 89th days before.
    let sent = w.run_on(date(2026, 12, 12)).await;
    assert_eq!(sent.len(), 1);
    assert!(w.outbox.sent()[0].text.contains("через 88 дней"));
    // The 30-day reminder: the send fails, its claim is given back, the next run sends.
    w.outbox.script.fail_next("send_email", Fault::Unavailable);
    assert!(w.run_on(date(2027, 2, 8)).await.is_empty());
    assert_eq!(w.run_on(date(2027, 2, 9)).await.len(), 1);
    assert!(w.run_on(date(2027, 2, 10)).await.is_empty());
}

#[tokio::test]
async fn a_changed_document_starts_its_own_reminders_and_a_removed_one_has_none() {
    let w = world();
    w.patch(json!({"documents": {"international_passport": {
        "series": "75", "number": "1234567", "issue_date": "2017-03-10", "expiry_date": "2027-03-10"
    }}}))
    .await;
    assert_eq!(w.run_on(date(2026, 12, 10)).await, [EXPIRY_SUBJECT]);
    // Another passport with the same expiry: told again.
    w.patch(json!({"documents": {"international_passport": {
        "series": "75", "number": "7654321", "issue_date": "2017-03-10", "expiry_date": "2027-03-10"
    }}}))
    .await;
    assert_eq!(w.store.state().dues.len(), 1);
    assert_eq!(w.run_on(date(2026, 12, 11)).await.len(), 1);
    // Removed: its index entry goes with it.
    w.patch(json!({"documents": {"international_passport": null}}))
        .await;
    assert!(w.store.state().dues.is_empty());
    assert!(w.run_on(date(2027, 2, 8)).await.is_empty());
}

#[tokio::test]
async fn a_run_stops_at_its_batch() {
    let w = world();
    w.patch(passport_due_2027_03_10()).await;
    let small = ReminderService::new(w.store.clone(), w.outbox.clone(), 1);
    w.store.add_account(&"a2".into());
    let entry = w.store.state().dues.values().next().cloned().unwrap();
    w.store
        .state()
        .dues
        .insert((entry.due, "a2".into(), entry.document), entry);
    let run = small.run(date(2026, 12, 10), w.clock.now()).await.unwrap();
    assert_eq!((run.looked, run.more), (1, true));
}
