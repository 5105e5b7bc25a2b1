use super::*;

#[test]
fn token_errors_win_over_taken_contacts() {
    let err = registration_error(&[
        RegistrationRefusal::TokenInvalid(0),
        RegistrationRefusal::LoginTaken(1),
    ]);
    let AppError::Validation(errors) = err else {
        panic!("expected validation error")
    };
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "/email_verification_token");
    let err = registration_error(&[RegistrationRefusal::LoginTaken(1)]);
    assert!(matches!(err, AppError::ContactTaken(ref f) if f == &["phone"]));
}

#[test]
fn presence_is_fresh_within_the_window_only() {
    let now = at(1_800_000_000);
    let principal = |proven_at| Principal {
        account_id: AccountId::new(),
        session_id: SessionId::parse(&"s".repeat(43)).unwrap(),
        proven_at,
        strength: CredentialStrength::Password,
    };
    let window = Duration::from_secs(300);
    assert!(principal(1_800_000_000).presence(now, window).fresh);
    assert!(principal(1_800_000_000 - 300).presence(now, window).fresh);
    assert!(!principal(1_800_000_000 - 301).presence(now, window).fresh);
    // A proof from the future (a clock gone wrong) proves nothing, nor does none.
    assert!(!principal(1_800_000_060).presence(now, window).fresh);
    assert!(!principal(0).presence(now, window).fresh);
    assert!(matches!(
        principal(0).presence(now, window).require(),
        Err(AppError::StepUpRequired)
    ));
}

#[test]
fn user_agent_is_cut_on_a_char_boundary() {
    let c = Client::new(None, Some("ё".repeat(200)));
    assert!(c.user_agent.len() <= MAX_USER_AGENT);
    assert!(c.user_agent.chars().all(|ch| ch == 'ё'));
}

#[test]
fn snils_grouping_is_told_from_phones() {
    assert!(snils_grouping("112-233-445 95"));
    assert!(snils_grouping("112-233-445-95"));
    assert!(!snils_grouping("8 931 870-29-50"));
    assert!(!snils_grouping("+7 (931) 870-29-50"));
    assert!(!snils_grouping("11223344595"));
}

#[test]
fn known_devices_keep_the_most_recent() {
    let known: Vec<String> = (0..MAX_KNOWN_DEVICES).map(|i| i.to_string()).collect();
    let devices = remember_device(&known, "new".into());
    assert_eq!(devices.len(), MAX_KNOWN_DEVICES);
    assert_eq!(devices.first().map(String::as_str), Some("1"));
    assert_eq!(devices.last().map(String::as_str), Some("new"));
    assert_eq!(remember_device(&[], "a".into()), vec!["a".to_string()]);
}

#[test]
fn the_window_before_carries_its_share_of_the_client_limit() {
    let window = ClientWindow {
        key: "client",
        start: 3600,
        end: 7200,
    };
    assert_eq!(window.previous_start(), 0);
    assert_eq!(window.kept_until(), 10_800);
    // Just past the turn of the hour, the previous window counts whole.
    assert_eq!(window.carried(30, 3601), 30);
    // Halfway through, half of it (rounded up, never less than its share).
    assert_eq!(window.carried(30, 5400), 15);
    assert_eq!(window.carried(31, 5400), 16);
    // A second before the end, one failure of many still counts; at the end none.
    assert_eq!(window.carried(50, 7199), 1);
    assert_eq!(window.carried(50, 7200), 0);
    assert_eq!(window.carried(0, 3601), 0);
}
