use super::*;
use crate::testing::{Fault, MemStore, Outbox};

fn account(n: u8) -> AccountId {
    AccountId::parse(&format!("00000000-0000-4000-8000-0000000000{n:02}")).unwrap()
}

fn message(category: MessageCategory, title: &str, at: i64) -> Message {
    Message::new(category, title, format!("{title}: текст"), at)
}

fn titles(page: &InboxPage) -> Vec<(&str, bool)> {
    page.messages
        .iter()
        .map(|m| (m.message.title.as_str(), m.read))
        .collect()
}

#[tokio::test]
async fn an_event_told_twice_is_kept_once() {
    let store = MemStore::new();
    let outbox = Outbox::default();
    let a = account(1);
    let email = Email::parse("email", "a@example.ru").unwrap();
    let notice = message(MessageCategory::Bills, "Новое начисление", 100)
        .of_event("bill:18810177220000000015");
    for _ in 0..2 {
        let sent = tell(&store, &outbox, &a, &notice, &[Delivery::Email(&email)]).await;
        assert!(sent.iter().all(Result::is_ok));
    }
    let inbox = store.state().inbox_of(&a);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].message.id, notice.id);
    // The inbox keeps it once; what the e-mail does on a retry is its sender's business.
    assert_eq!(
        outbox.sent()[0].subject.as_deref(),
        Some("Новое начисление")
    );
    assert_eq!(outbox.sent()[0].text, "Новое начисление: текст");
}

#[tokio::test]
async fn a_message_not_kept_is_still_sent() {
    let store = MemStore::new();
    store.script.fail_next("keep_message", Fault::Unavailable);
    let outbox = Outbox::default();
    let a = account(1);
    let email = Email::parse("email", "a@example.ru").unwrap();
    let alert = message(MessageCategory::Security, "Пароль изменён", 100);
    let sent = tell(&store, &outbox, &a, &alert, &[Delivery::Email(&email)]).await;
    assert!(sent[0].is_ok());
    assert_eq!(outbox.sent().len(), 1);
    // A worker that must not lose it sees the failure instead.
    store.script.fail_next("keep_message", Fault::Unavailable);
    assert!(keep(&store, &a, &alert).await.is_err());
    assert!(keep(&store, &a, &alert).await.unwrap());
}

#[tokio::test]
async fn the_list_is_unread_first_newest_first_and_counts_the_unread() {
    let store = MemStore::new();
    let inbox = InboxService::new(store.clone());
    let a = account(1);
    let first = message(MessageCategory::Bills, "первое", 100);
    let second = message(MessageCategory::Payments, "второе", 200);
    let third = message(MessageCategory::Security, "третье", 300);
    for m in [&first, &second, &third] {
        keep(&store, &a, m).await.unwrap();
    }
    inbox.mark_read(&a, &third.id, 400).await.unwrap();
    // Marking again changes nothing.
    inbox.mark_read(&a, &third.id, 401).await.unwrap();
    let page = inbox.list(&a, &InboxQuery::default(), 500).await.unwrap();
    assert_eq!(
        titles(&page),
        [("второе", false), ("первое", false), ("третье", true)]
    );
    assert_eq!(page.next, None);
    assert_eq!(inbox.unread_count(&a).await.unwrap(), 2);

    let unread = InboxQuery {
        unread_only: true,
        ..InboxQuery::default()
    };
    let page = inbox.list(&a, &unread, 500).await.unwrap();
    assert_eq!(titles(&page), [("второе", false), ("первое", false)]);
    let bills = InboxQuery {
        category: Some(MessageCategory::Bills),
        ..InboxQuery::default()
    };
    let page = inbox.list(&a, &bills, 500).await.unwrap();
    assert_eq!(titles(&page), [("первое", false)]);

    inbox.delete(&a, &second.id, 500).await.unwrap();
    assert_eq!(inbox.unread_count(&a).await.unwrap(), 1);
    assert!(matches!(
        inbox.delete(&a, &second.id, 500).await,
        Err(AppError::NotFound("message"))
    ));
    // A deleted message told again does not come back.
    assert!(!keep(&store, &a, &second).await.unwrap());
    assert_eq!(store.state().inbox_of(&a).len(), 2);
}

#[tokio::test]
async fn another_citizens_message_is_not_found() {
    let store = MemStore::new();
    let inbox = InboxService::new(store.clone());
    let (a, b) = (account(1), account(2));
    let m = message(MessageCategory::Payments, "Квитанция", 100);
    keep(&store, &a, &m).await.unwrap();
    for result in [
        inbox.mark_read(&b, &m.id, 200).await,
        inbox.delete(&b, &m.id, 200).await,
        inbox.mark_read(&a, &MessageId::new(), 200).await,
    ] {
        assert!(matches!(result, Err(AppError::NotFound("message"))));
    }
    let page = inbox.list(&b, &InboxQuery::default(), 200).await.unwrap();
    assert!(page.messages.is_empty());
    assert_eq!(inbox.unread_count(&b).await.unwrap(), 0);
    assert_eq!(inbox.unread_count(&a).await.unwrap(), 1);
}

#[tokio::test]
async fn pages_follow_their_cursor() {
    let store = MemStore::new();
    let inbox = InboxService::new(store.clone());
    let a = account(1);
    for at in 1..=5 {
        keep(
            &store,
            &a,
            &message(MessageCategory::Bills, &format!("m{at}"), at),
        )
        .await
        .unwrap();
    }
    let mut query = InboxQuery {
        limit: 2,
        ..InboxQuery::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = inbox.list(&a, &query, 10).await.unwrap();
        seen.extend(page.messages.iter().map(|m| m.message.title.clone()));
        match page.next {
            Some(next) => {
                // The cursor travels as an opaque string and reads back the same.
                query.after = Some(Cursor::decode(&next.encode()).unwrap());
            }
            None => break,
        }
    }
    assert_eq!(seen, ["m5", "m4", "m3", "m2", "m1"]);
}

#[tokio::test]
async fn past_the_cap_the_oldest_unread_becomes_read() {
    let store = MemStore::new();
    let a = account(1);
    for at in 1..=3 {
        let m = message(MessageCategory::Bills, &format!("m{at}"), at);
        assert!(store.keep_message(&a, &m, 2).await.unwrap());
    }
    let inbox = store.state().inbox_of(&a);
    let read: Vec<(&str, bool)> = inbox
        .iter()
        .map(|m| (m.message.title.as_str(), m.read))
        .collect();
    assert_eq!(read, [("m3", false), ("m2", false), ("m1", true)]);
}

#[test]
fn cursors_not_written_by_the_service_are_refused() {
    let place = Cursor {
        read: true,
        created_at: 1_764_000_000,
        id: MessageId::of_event("bill:1"),
    };
    assert_eq!(Cursor::decode(&place.encode()).unwrap(), place);
    assert!(place.position().starts_with("R#0001764000000#msg_"));
    for raw in ["", "!!", "VSMxIzE", "WCMwMDAxNzY0MDAwMDAwI21zZ18x"] {
        let refused = Cursor::decode(raw).unwrap_err();
        assert_eq!(
            (refused.field.as_str(), refused.code),
            ("/cursor", "invalid_cursor")
        );
    }
}

#[test]
fn event_ids_are_stable_and_of_the_id_shape() {
    let a = MessageId::of_event("payment:1");
    assert_eq!(a, MessageId::of_event("payment:1"));
    assert_ne!(a, MessageId::of_event("payment:2"));
    assert_eq!(MessageId::parse(a.as_str()).unwrap(), a);
}
