//! The live acquirer adapter (`shared::adapters::tbank`) against the T-Bank stand-in,
//! in-process on random ports, with a notification receiver that verifies as the
//! service's route will.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use shared::adapters::tbank::{
    verify_notification, Credentials, Kopecks, PayType, TbankAcquirer, TbankConfig,
    NOTIFICATION_ACK,
};
use shared::services::payments::{
    GatewayAnswer, GatewayError, GatewayMethod, GatewayStatus, PaymentGateway,
};
use uslugi_local::tbank::{StandInOptions, TbankStandIn, TEST_PASSWORD, TEST_TERMINAL};

/// What the receiver heard: (status, verified) per notification.
type Heard = Arc<Mutex<Vec<(String, bool)>>>;

async fn receive(State(heard): State<Heard>, body: Bytes) -> axum::response::Response {
    match verify_notification(&body, TEST_TERMINAL, TEST_PASSWORD) {
        Ok(note) => {
            let status = note["Status"].as_str().unwrap_or_default().to_string();
            heard.lock().unwrap().push((status, true));
            NOTIFICATION_ACK.into_response()
        }
        Err(e) => {
            heard.lock().unwrap().push((e.to_string(), false));
            (StatusCode::BAD_REQUEST, "refused").into_response()
        }
    }
}

struct World {
    bank: TbankStandIn,
    acquirer: TbankAcquirer,
    heard: Heard,
    http: reqwest::Client,
}

async fn world_with(pay_type: PayType, password: &str) -> World {
    let bank = TbankStandIn::start(StandInOptions {
        lost_answer_delay: Duration::from_secs(3),
        ..StandInOptions::default()
    })
    .await
    .unwrap();
    let heard: Heard = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/notifications", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/notifications", post(receive))
        .with_state(heard.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let credentials = Credentials::from_secret(&format!(
        r#"{{"TerminalKey":"{TEST_TERMINAL}","Password":"{password}"}}"#
    ))
    .unwrap();
    let mut config = TbankConfig::new(bank.api_url(), credentials);
    config.pay_type = pay_type;
    config.urls.notification = Some(receiver);
    config.limits.timeout = Duration::from_secs(1);
    World {
        bank,
        acquirer: TbankAcquirer::new(config).unwrap(),
        heard,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    }
}

async fn world() -> World {
    world_with(PayType::OneStage, TEST_PASSWORD).await
}

fn order() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn card() -> GatewayMethod {
    GatewayMethod::CardToken("tok_form".into())
}

impl World {
    /// A card payment up to its form: the form's URL and the PaymentId.
    async fn open(&self, order: &str, amount: u64) -> (String, String) {
        match self.acquirer.charge(order, amount, &card()).await.unwrap() {
            GatewayAnswer::RequiresConfirmation { reference, url } => (url, reference),
            other => panic!("{other:?}"),
        }
    }

    /// The cardholder on the form: opens it and submits `pan`; answers the page.
    /// A new order of `amount`, paid on its form with the card `pan`: the order and the
    /// bank's payment.
    async fn paid(&self, amount: u64, pan: &str) -> (String, String) {
        let order = order();
        let (url, payment_id) = self.open(&order, amount).await;
        self.pay(&url, pan).await;
        (order, payment_id)
    }

    async fn pay(&self, url: &str, pan: &str) -> String {
        let shown = self.http.get(url).send().await.unwrap();
        assert_eq!(shown.status(), 200);
        self.post_form(url, &format!("pan={pan}")).await
    }

    async fn post_form(&self, url: &str, body: &str) -> String {
        self.http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits for the receiver to have heard `status` (verified or not).
    async fn heard(&self, status: &str) -> Vec<(String, bool)> {
        for _ in 0..50 {
            let heard = self.heard.lock().unwrap().clone();
            if heard.iter().any(|(s, _)| s == status) {
                return heard;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "never heard {status}: {:?}",
            self.heard.lock().unwrap().clone()
        );
    }
}

#[tokio::test]
async fn a_card_payment_goes_through_the_banks_form() {
    let w = world().await;
    let order = order();
    let (url, payment_id) = w.open(&order, 140_000).await;
    assert!(url.starts_with(&w.bank.url()), "{url}");
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::AwaitingConfirmation
    );
    w.pay(&url, "2200770239097761").await;
    assert_eq!(
        w.acquirer.confirm(&order).await.unwrap(),
        GatewayAnswer::Succeeded {
            reference: payment_id.clone()
        }
    );
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::Succeeded {
            reference: payment_id
        }
    );
    // The bank's signed notification passes the verifier.
    let heard = w.heard("CONFIRMED").await;
    assert!(heard.iter().all(|(_, verified)| *verified), "{heard:?}");
    // Asked again, the order answers what it is: no second session.
    assert!(matches!(
        w.acquirer.charge(&order, 140_000, &card()).await.unwrap(),
        GatewayAnswer::Succeeded { .. }
    ));
    assert_eq!(w.acquirer.payments_of(&order).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_declined_card_declines_the_order() {
    let w = world().await;
    let (order, _) = w.paid(50_000, "2201382000000831").await;
    let declined = GatewayAnswer::Declined {
        reason: "insufficient_funds".into(),
    };
    assert_eq!(w.acquirer.confirm(&order).await.unwrap(), declined);
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::Declined {
            reason: "insufficient_funds".into()
        }
    );
    w.heard("REJECTED").await;
    // A declined order stays declined: charging it again opens nothing.
    assert_eq!(
        w.acquirer.charge(&order, 50_000, &card()).await.unwrap(),
        declined
    );
}

#[tokio::test]
async fn three_d_secure_waits_for_the_cardholders_passcode() {
    let w = world().await;
    let order = order();
    let (url, payment_id) = w.open(&order, 19_200).await;
    let page = w.pay(&url, "2201382000000047").await;
    assert!(page.contains("3-D Secure"), "{page}");
    assert_eq!(w.bank.status(&payment_id).as_deref(), Some("3DS_CHECKING"));
    // Not finished yet: nothing is guessed.
    assert!(matches!(
        w.acquirer.confirm(&order).await,
        Err(GatewayError::OutcomeUnknown(_))
    ));
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::AwaitingConfirmation
    );
    w.post_form(&format!("{url}/3ds"), "otp=1qwezxc").await;
    assert_eq!(
        w.acquirer.confirm(&order).await.unwrap(),
        GatewayAnswer::Succeeded {
            reference: payment_id
        }
    );

    // A wrong passcode fails the authentication.
    let other = uuid::Uuid::new_v4().to_string();
    let (url, _) = w.open(&other, 19_200).await;
    w.pay(&url, "2201382000000047").await;
    w.post_form(&format!("{url}/3ds"), "otp=000000").await;
    assert_eq!(
        w.acquirer.confirm(&other).await.unwrap(),
        GatewayAnswer::Declined {
            reason: "authentication_failed".into()
        }
    );
}

#[tokio::test]
async fn a_lost_answer_is_unknown_and_the_status_finds_the_payment() {
    let w = world().await;
    let order = order();
    w.bank.lose_next_answer("Init");
    assert!(matches!(
        w.acquirer.charge(&order, 10_000, &card()).await,
        Err(GatewayError::OutcomeUnknown(_))
    ));
    // The bank registered it: the order is in progress, and a retry opens no second
    // session the cardholder could pay as well.
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::AwaitingConfirmation
    );
    assert!(matches!(
        w.acquirer.charge(&order, 10_000, &card()).await,
        Err(GatewayError::OutcomeUnknown(_))
    ));
    assert_eq!(w.acquirer.payments_of(&order).await.unwrap().len(), 1);
    // Withdrawn: its session is cancelled.
    assert_eq!(
        w.acquirer.cancel(&order).await.unwrap(),
        GatewayStatus::Declined {
            reason: "order_cancelled".into()
        }
    );

    // A saved card charged, its answer lost: the status says it was charged.
    let rebill = w.bank.save_card("2200770239097761");
    let saved = GatewayMethod::SavedCard(format!("tbrb_{rebill}"));
    let order = uuid::Uuid::new_v4().to_string();
    w.bank.lose_next_answer("Charge");
    assert!(matches!(
        w.acquirer.charge(&order, 25_000, &saved).await,
        Err(GatewayError::OutcomeUnknown(_))
    ));
    assert!(matches!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::Succeeded { .. }
    ));
    // And charging it again does not charge twice.
    assert!(matches!(
        w.acquirer.charge(&order, 25_000, &saved).await.unwrap(),
        GatewayAnswer::Succeeded { .. }
    ));
    assert_eq!(w.acquirer.payments_of(&order).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_saved_card_is_charged_or_declined_at_once() {
    let w = world().await;
    let good = GatewayMethod::SavedCard(format!("tbrb_{}", w.bank.save_card("2200770239097761")));
    let poor = GatewayMethod::SavedCard(format!("tbrb_{}", w.bank.save_card("2201382000000831")));
    assert!(matches!(
        w.acquirer.charge(&order(), 30_000, &good).await.unwrap(),
        GatewayAnswer::Succeeded { .. }
    ));
    assert_eq!(
        w.acquirer.charge(&order(), 30_000, &poor).await.unwrap(),
        GatewayAnswer::Declined {
            reason: "insufficient_funds".into()
        }
    );
    // A RebillId the bank never issued: refused, and its session cancelled.
    let unknown = GatewayMethod::SavedCard("tbrb_42".into());
    let order = order();
    assert!(matches!(
        w.acquirer.charge(&order, 30_000, &unknown).await.unwrap(),
        GatewayAnswer::Declined { .. }
    ));
}

#[tokio::test]
async fn cancelling_an_order_the_bank_never_saw_voids_it_at_the_bank() {
    let w = world().await;
    let order = order();
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::Unknown
    );
    let cancelled = GatewayStatus::Declined {
        reason: "order_cancelled".into(),
    };
    assert_eq!(w.acquirer.cancel(&order).await.unwrap(), cancelled);
    assert_eq!(w.acquirer.status(&order).await.unwrap(), cancelled);
    // A charge arriving later finds the order cancelled and opens nothing.
    assert_eq!(
        w.acquirer.charge(&order, 10_000, &card()).await.unwrap(),
        GatewayAnswer::Declined {
            reason: "order_cancelled".into()
        }
    );
    let rebill = w.bank.save_card("2200770239097761");
    assert_eq!(
        w.acquirer
            .charge(
                &order,
                10_000,
                &GatewayMethod::SavedCard(format!("tbrb_{rebill}"))
            )
            .await
            .unwrap(),
        GatewayAnswer::Declined {
            reason: "order_cancelled".into()
        }
    );
    let payments = w.acquirer.payments_of(&order).await.unwrap();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].status, "CANCELED");

    // A paid order is not cancelled: it answers that it was charged.
    let paid = uuid::Uuid::new_v4().to_string();
    let (url, _) = w.open(&paid, 10_000).await;
    w.pay(&url, "2200770239097761").await;
    assert!(matches!(
        w.acquirer.cancel(&paid).await.unwrap(),
        GatewayStatus::Succeeded { .. }
    ));
}

#[tokio::test]
async fn a_notification_with_a_bad_signature_is_refused() {
    let w = world().await;
    let order = order();
    let (url, payment_id) = w.open(&order, 10_000).await;
    w.bank.bad_token_next_notification();
    w.pay(&url, "2200770239097761").await;
    let heard = w.heard("the notification's Token does not match").await;
    assert!(
        !heard.iter().any(|(s, ok)| s == "CONFIRMED" && *ok),
        "{heard:?}"
    );
    // The stand-in records a delivery once the receiver has answered it.
    let mut ours = Vec::new();
    for _ in 0..50 {
        ours = w
            .bank
            .deliveries()
            .into_iter()
            .filter(|d| d.payment_id.to_string() == payment_id)
            .collect();
        if !ours.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!ours.is_empty());
    assert!(ours.iter().all(|d| d.bad_token && !d.accepted), "{ours:?}");
    // The next one is signed properly again and accepted.
    w.acquirer
        .refund(&payment_id, Kopecks::new(1_000), "rf-after-bad")
        .await
        .unwrap();
    let heard = w.heard("PARTIAL_REFUNDED").await;
    assert!(heard.iter().any(|(s, ok)| s == "PARTIAL_REFUNDED" && *ok));
}

#[tokio::test]
async fn refunds_in_full_and_in_part_once_per_refund_id() {
    let w = world().await;
    let (order, payment_id) = w.paid(140_000, "2200770239097761").await;

    // Each refund asked: its amount (all that is left if `None`), its id, and the
    // bank's answer: the status, the amount before and what remains; or the refusal.
    type Expected = Result<(&'static str, u64, u64), &'static str>;
    let steps: [(Option<u64>, &str, Expected); 5] = [
        (
            Some(5_000),
            "rf-1",
            Ok(("PARTIAL_REFUNDED", 140_000, 135_000)),
        ),
        // The same refund again (a retry after a timeout) refunds nothing more.
        (
            Some(5_000),
            "rf-1",
            Ok(("PARTIAL_REFUNDED", 140_000, 135_000)),
        ),
        // More than is left is refused.
        (Some(200_000), "rf-2", Err("refund_exceeds_payment")),
        // The rest, in full.
        (None, "rf-3", Ok(("REFUNDED", 135_000, 0))),
        // Nothing is left to refund; the order still was charged.
        (Some(100), "rf-4", Err("payment_not_refundable")),
    ];
    for (amount, refund_id, expected) in steps {
        let answer = w
            .acquirer
            .refund(&payment_id, amount.and_then(Kopecks::new), refund_id)
            .await;
        match (answer, expected) {
            (Ok(r), Ok((status, original, remaining))) => {
                assert_eq!(r.status, status, "{refund_id}");
                assert_eq!(r.original, Kopecks::new(original), "{refund_id}");
                assert_eq!(r.remaining, Kopecks::new(remaining), "{refund_id}");
            }
            (Err(GatewayError::Refused(reason)), Err(expected)) => assert_eq!(reason, expected),
            (answer, expected) => panic!("{refund_id}: {answer:?}, expected {expected:?}"),
        }
    }
    assert!(matches!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::Succeeded { .. }
    ));
}

#[tokio::test]
async fn two_stage_payments_are_confirmed_by_the_adapter() {
    let w = world_with(PayType::TwoStage, TEST_PASSWORD).await;
    let (order, payment_id) = w.paid(77_700, "2201382000000013").await;
    assert_eq!(w.bank.status(&payment_id).as_deref(), Some("AUTHORIZED"));
    assert_eq!(
        w.acquirer.status(&order).await.unwrap(),
        GatewayStatus::AwaitingConfirmation
    );
    assert_eq!(
        w.acquirer.confirm(&order).await.unwrap(),
        GatewayAnswer::Succeeded {
            reference: payment_id.clone()
        }
    );
    assert_eq!(w.bank.status(&payment_id).as_deref(), Some("CONFIRMED"));
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_the_bank() {
    let w = world_with(PayType::OneStage, "not-the-password").await;
    let order = order();
    // Every call is refused with 204: a charge is refused, a status unknown.
    assert!(matches!(
        w.acquirer.status(&order).await,
        Err(GatewayError::OutcomeUnknown(_))
    ));
    let raw = w
        .http
        .post(format!("{}/CheckOrder", w.bank.api_url()))
        .json(
            &serde_json::json!({"TerminalKey": TEST_TERMINAL, "OrderId": "21057",
            "Token": "0000000000000000000000000000000000000000000000000000000000000000"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["Success"], false);
    assert_eq!(body["ErrorCode"], "204");
}
