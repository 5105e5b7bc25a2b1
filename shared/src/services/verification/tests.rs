use super::*;

const LIMITS: SweepLimits = SweepLimits {
    deadline_secs: 100,
    max_requeues: 1,
    batch: 10,
};

/// A profile whose passport check (with the name it covers) is pending, due at 1000.
fn passport_pending() -> StoredProfile {
    let mut profile = Profile::default();
    profile.personal.last_name = "Иванов".into();
    profile.personal.first_name = "Пётр".into();
    profile.documents.passport = Some(Passport {
        series: "4510".into(),
        number: "996001".into(),
        issue_date: "2010-06-01".into(),
        department_code: "770-001".into(),
        issued_by: "ОВД".into(),
        birthplace: None,
    });
    for field in ["passport", "name"] {
        profile
            .statuses
            .insert(field.into(), FieldStatus::pending("s1", 1000));
    }
    StoredProfile {
        profile,
        version: 4,
    }
}

#[test]
fn overdue_checks_are_queued_again_then_failed() {
    let stored = passport_pending();
    let (next, jobs, failed) = overdue(&LIMITS, &"a1".into(), &stored, 999);
    assert_eq!(
        (next, jobs.len(), failed),
        (stored.profile.clone(), 0, 0),
        "not due yet"
    );
    assert_eq!(stored.profile.due(), Some(1000));

    let (next, jobs, failed) = overdue(&LIMITS, &"a1".into(), &stored, 1000);
    assert_eq!(failed, 0);
    assert_eq!(
        jobs,
        [VerificationJob {
            account_id: "a1".into(),
            check: Check::Passport,
            submission: "s1".into(),
            version: 5,
            child: None,
        }]
    );
    for field in ["passport", "name"] {
        let s = &next.statuses[field];
        assert_eq!(
            (s.state, s.due, s.requeued),
            (State::Pending, Some(1100), 1)
        );
    }
    assert_eq!(
        next.due(),
        Some(1100),
        "the index moves to the new due time"
    );

    let again = StoredProfile {
        profile: next,
        version: 5,
    };
    let (next, jobs, failed) = overdue(&LIMITS, &"a1".into(), &again, 1100);
    assert_eq!((jobs.len(), failed), (0, 1));
    let passport = &next.statuses["passport"];
    assert_eq!(passport.state, State::Failed);
    assert_eq!(passport.code.as_deref(), Some(REGISTRY_TIMEOUT));
    assert_eq!(passport.reason.as_deref(), Some(REGISTRY_TIMEOUT_REASON));
    assert_eq!(passport.at, Some(1100));
    assert!(
        next.documents.passport.is_some(),
        "a failed check keeps the document"
    );
    assert!(
        !next.statuses.contains_key("name"),
        "the name goes back to unverified"
    );
    assert_eq!(next.due(), None, "nothing pending: out of the index");

    let done = StoredProfile {
        profile: next.clone(),
        version: 6,
    };
    let (same, jobs, failed) = overdue(&LIMITS, &"a1".into(), &done, 5000);
    assert_eq!(
        (same, jobs.len(), failed),
        (next, 0, 0),
        "a repeated run changes nothing"
    );
}

#[test]
fn a_pending_status_without_due_time_is_overdue_at_once() {
    let mut stored = passport_pending();
    for s in stored.profile.statuses.values_mut() {
        s.due = None;
    }
    assert_eq!(stored.profile.due(), Some(0));
    let (_, jobs, _) = overdue(&LIMITS, &"a1".into(), &stored, 1);
    assert_eq!(jobs.len(), 1);
}

#[test]
fn the_holder_index_follows_verified_documents_only() {
    let Ok(hasher) = Hasher::new(vec![7; 32]) else {
        panic!("test key");
    };
    let mut before = Profile::default();
    before.documents.snils = Some("11223344595".into());
    before.statuses.insert(
        "snils".into(),
        FieldStatus::decided(State::Verified, "s1", 1),
    );
    // Written before the profile recorded its holdings: the verified SNILS is held.
    let snils_key = before.own_payer_keys(&hasher);
    assert_eq!(snils_key.len(), 1);

    let mut next = before.clone();
    next.documents.inn = Some("500100732259".into());
    next.statuses
        .insert("inn".into(), FieldStatus::decided(State::Verified, "s2", 2));
    let (add, remove) = next.follow_holdings(&before, &hasher);
    assert_eq!(
        (add.len(), remove),
        (1, vec![]),
        "only the newly verified INN"
    );
    assert_eq!(next.holds.as_ref().map(Vec::len), Some(2));

    // A new SNILS, pending: its old value leaves the index now.
    let mut edited = next.clone();
    edited.documents.snils = Some("11223344696".into());
    edited
        .statuses
        .insert("snils".into(), FieldStatus::pending("s3", 10));
    let (add, remove) = edited.follow_holdings(&next, &hasher);
    assert_eq!((add, remove), (vec![], snils_key));

    // Nothing changed: nothing written.
    let mut same = edited.clone();
    assert_eq!(same.follow_holdings(&edited, &hasher), (vec![], vec![]));
}

#[test]
fn each_check_is_counted_under_its_registry() {
    let registries: Vec<&str> = [
        Check::Snils,
        Check::Passport,
        Check::Inn,
        Check::BirthRecord,
    ]
    .iter()
    .map(|c| c.registry())
    .collect();
    assert_eq!(registries, ["sfr", "mvd", "fns", "civil"]);

    let capture = metrics::Capture::start();
    verification_counted(Check::Inn, VerificationOutcome::Retry);
    verification_counted(Check::BirthRecord, outcome_of(false));
    assert_eq!(
        capture.counted("Verifications"),
        [
            metrics::dims(&[("Registry", "fns"), ("Outcome", "retry")]),
            metrics::dims(&[("Registry", "civil"), ("Outcome", "rejected")]),
        ]
    );
}
