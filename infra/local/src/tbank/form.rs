//! The hosted form behind `PaymentURL`: a card number field, and for the challenge card a
//! 3-D Secure page asking for the passcode. Opening it moves `NEW` to `FORM_SHOWED`;
//! submitting a card goes through `AUTHORIZING` (and `3DS_CHECKING`) to the result, then
//! redirects to the payment's `SuccessURL`/`FailURL` (or shows the result).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{expire, notification, notify, save, settle, test_card, Books, Card, Payment, Shared};

fn field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn page(title: &str, inner: &str) -> Response {
    Html(format!(
        "<!doctype html><html lang=\"ru\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body><h1>{title}</h1>{inner}</body></html>"
    ))
    .into_response()
}

fn gone() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Платёжная форма не найдена или устарела",
    )
        .into_response()
}

/// The payment whose form `code` opens, and its id.
fn opened<'a>(books: &'a mut Books, code: &str) -> Option<(u64, &'a mut Payment)> {
    let id = books.by_code.get(code).copied()?;
    books.payments.get_mut(&id).map(|p| (id, p))
}

/// Where the cardholder goes after the form: the payment's URL for the outcome, or a page.
fn finish(url: Option<String>, status: &str) -> Response {
    match url {
        Some(url) => (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response(),
        None => page(
            "Оплата завершена",
            &format!("<p id=\"status\">{status}</p>"),
        ),
    }
}

pub async fn show(State(inner): State<Shared>, Path(code): Path<String>) -> Response {
    let mut books = inner.books();
    let Some((_, p)) = opened(&mut books, &code) else {
        return gone();
    };
    expire(p);
    match p.status.as_str() {
        "NEW" => p.status = "FORM_SHOWED".into(),
        "FORM_SHOWED" => {}
        _ => return gone(),
    }
    page(
        "Оплата картой",
        &format!(
            "<p>Сумма: {} коп.</p><form method=\"post\"><input name=\"pan\" autocomplete=\"cc-number\"><button>Оплатить</button></form>",
            p.amount
        ),
    )
}

pub async fn submit(
    State(inner): State<Shared>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let pan: String = field(&body, "pan")
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let mut books = inner.books();
    let Some((id, p)) = opened(&mut books, &code) else {
        return gone();
    };
    expire(p);
    if !matches!(p.status.as_str(), "NEW" | "FORM_SHOWED") {
        return gone();
    }
    let Some(card) = test_card(&pan) else {
        p.status = "FORM_SHOWED".into();
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            page("Оплата картой", "<p id=\"error\">Неверный номер карты</p>"),
        )
            .into_response();
    };
    p.pan = Some(pan.clone());
    if card == Card::Challenge {
        p.status = "3DS_CHECKING".into();
        return page(
            "3-D Secure",
            "<form method=\"post\" action=\"3ds\"><input name=\"otp\"><button>Подтвердить</button></form>",
        );
    }
    p.status = "AUTHORIZING".into();
    conclude(&inner, books, id, card)
}

pub async fn challenge(
    State(inner): State<Shared>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let otp = field(&body, "otp").unwrap_or_default();
    let mut books = inner.books();
    let Some((id, p)) = opened(&mut books, &code) else {
        return gone();
    };
    if p.status != "3DS_CHECKING" {
        return gone();
    }
    let card = if otp == super::CHALLENGE_PASSCODE {
        p.status = "3DS_CHECKED".into();
        Card::Challenge
    } else {
        Card::AuthenticationFails
    };
    conclude(&inner, books, id, card)
}

/// The authorisation's result, its notification and the redirect.
fn conclude(
    inner: &Shared,
    mut books: std::sync::MutexGuard<'_, super::Books>,
    id: u64,
    card: Card,
) -> Response {
    let recurrent_pan = books
        .payments
        .get(&id)
        .filter(|p| p.recurrent)
        .and_then(|p| p.pan.clone());
    let issued = match (card, recurrent_pan) {
        (Card::Succeeds | Card::Frictionless | Card::Challenge, Some(pan)) => {
            Some(save(&mut books, &pan))
        }
        _ => None,
    };
    let Some(p) = books.payments.get_mut(&id) else {
        return gone();
    };
    settle(p, card);
    if let Some((rebill, card_id)) = issued {
        p.rebill_id = Some(rebill);
        p.card_id = Some(card_id);
    } else if p.card_id.is_none() {
        p.card_id = Some(p.id + 500_000);
    }
    let note = notification(p);
    let ok = p.error_code == "0";
    let url = if ok {
        p.success_url.clone()
    } else {
        p.fail_url.clone()
    };
    let status = p.status.clone();
    drop(books);
    notify(inner.clone(), note);
    finish(url, &status)
}
