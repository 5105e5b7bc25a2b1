use super::*;
use serde_json::json;

/// An account id of the minted shape, where one is read through its check.
const ACCOUNT: &str = "0b7e5b6c-2f0e-4d8a-9c1e-5a4f3b2d1c0e";
/// A saved method's id of the minted shape, as a request must name one.
const METHOD: &str = "pm_0123456789abcdef0123456789abcdef";

fn object(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

#[test]
fn an_autopay_is_checked_field_by_field() {
    let ok = AutopayFields::parse(
        &object(
            json!({"name": "ЖКУ", "match": {"category": "utilities"}, "method_id": METHOD,
                       "limit": 500000, "trigger": {"type": "monthly", "day": 10}}),
        ),
        true,
    )
    .unwrap();
    assert_eq!(ok.trigger, Some(Trigger::Monthly { day: 10 }));
    let AppError::Validation(errors) = AutopayFields::parse(
        &object(
            json!({"name": "", "match": {"category": "x", "payer": {}}, "method_id": "card",
                       "limit": 0, "trigger": {"type": "monthly", "day": 31}, "extra": 1}),
        ),
        true,
    )
    .unwrap_err() else {
        panic!()
    };
    let codes: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code)).collect();
    for expected in [
        ("/name", "empty"),
        ("/match", "invalid_match"),
        ("/method_id", "invalid_method_id"),
        ("/limit", "invalid_limit"),
        ("/trigger/day", "out_of_range"),
        ("/extra", "unknown_field"),
    ] {
        assert!(codes.contains(&expected), "{expected:?} in {codes:?}");
    }
    assert_eq!(ok.method_id, Some(METHOD.parse().unwrap()));
    // A method id is one of the minted shape, not any `pm_…`.
    let AppError::Validation(errors) =
        AutopayFields::parse(&object(json!({"method_id": "pm_1"})), false).unwrap_err()
    else {
        panic!()
    };
    assert_eq!(errors[0].code, "invalid_method_id");
    // A PATCH sets only what it names.
    let patch = AutopayFields::parse(&object(json!({"status": "active"})), false).unwrap();
    assert_eq!(patch.status, Some(AutopayStatus::Active));
    assert!(patch.limit.is_none());
}

#[test]
fn schedule_pages_and_new_bills_share_a_queue_and_are_told_apart() {
    let page = json!({"run": "2026-12-05#e1", "date": "2026-12-05",
                      "trigger": {"type": "monthly", "day": 5},
                      "shard": {"of": 63}, "after": "a#ap_1"});
    let AutopayWork::Page(parsed) = serde_json::from_value(page.clone()).unwrap() else {
        panic!("a page read as a new bill");
    };
    assert_eq!(parsed.shard, Shard::Of(63));
    assert_eq!(parsed.shard_id(), "monthly-5-63");
    assert_eq!(serde_json::to_value(&parsed).unwrap(), page, "round trip");
    let unsharded = json!({"run": "r", "date": "2026-02-28",
                           "trigger": {"type": "weekly", "weekday": 6},
                           "shard": "unsharded", "after": null});
    let AutopayWork::Page(p) = serde_json::from_value(unsharded).unwrap() else {
        panic!("an unsharded page read as a new bill");
    };
    assert_eq!(p.shard_id(), "weekly-6-unsharded");
    assert_eq!(
        serde_json::from_value::<AutopayWork>(json!({"account_id": ACCOUNT, "uin": "1"})).unwrap(),
        AutopayWork::NewBill(NewBillForAccount {
            account_id: ACCOUNT.parse().unwrap(),
            uin: "1".into()
        })
    );
    // A day that does not exist is no page at all.
    assert!(
        serde_json::from_value::<SchedulePage>(json!({"run": "r", "date": "2026-02-30",
        "trigger": {"type": "monthly", "day": 1}, "shard": "unsharded", "after": null}))
        .is_err()
    );
}

/// An autopay of utilities paid with `pm_1`, the tests' starting point.
fn autopay(limit: u64, trigger: Trigger, status: AutopayStatus) -> Autopay {
    Autopay {
        id: "ap_1".into(),
        account_id: "a".into(),
        name: "n".into(),
        matching: Match::Category {
            category: Category::Utilities,
        },
        method_id: "pm_1".into(),
        limit,
        trigger,
        status,
        paused_reason: None,
        created_at: 0,
        generation: 0,
    }
}

#[test]
fn schedules() {
    let mut a = autopay(1, Trigger::Monthly { day: 26 }, AutopayStatus::Active);
    let thursday = time::Date::from_calendar_date(2026, time::Month::November, 26).unwrap();
    assert!(a.due_on(thursday));
    a.trigger = Trigger::Weekly { weekday: 4 };
    assert!(a.due_on(thursday));
    a.trigger = Trigger::Weekly { weekday: 5 };
    assert!(!a.due_on(thursday));
    a.trigger = Trigger::NewBill;
    assert!(!a.due_on(thursday));
}

#[test]
fn only_changes_that_let_an_autopay_pay_more_widen_it() {
    let current = autopay(1_000, Trigger::NewBill, AutopayStatus::Paused);
    let change = |f: fn(&mut AutopayFields)| {
        let mut fields = AutopayFields::default();
        f(&mut fields);
        widens(&current, &fields)
    };
    assert!(change(|f| f.limit = Some(1_001)));
    assert!(change(|f| f.method_id = Some("pm_2".into())));
    assert!(change(|f| f.status = Some(AutopayStatus::Active)));
    assert!(change(|f| {
        f.matching = Some(Match::Category {
            category: Category::Fines,
        })
    }));
    assert!(!change(|f| f.limit = Some(1_000)));
    assert!(!change(|f| f.limit = Some(10)));
    assert!(!change(|f| f.method_id = Some("pm_1".into())));
    assert!(!change(|f| f.status = Some(AutopayStatus::Paused)));
    assert!(!change(|f| f.name = Some("m".into())));
    assert!(!change(|f| f.trigger = Some(Trigger::Weekly { weekday: 1 })));
}
