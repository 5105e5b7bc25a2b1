//! Routes of identity confirmation: parse, call the confirmation service, respond.

use lambda_http::http::StatusCode;
use lambda_http::Request;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use shared::adapters::bank_id::SandboxBankIdVerifier;
use shared::adapters::signature::{SandboxSignatureVerifier, MAX_SIGNATURE_BYTES};
use shared::adapters::{
    self, dynamodb::DynamoStore, notify::AwsNotifier, sqs::SqsPostOffice, sqs::SqsQueue,
};
use shared::config::{ConfirmationConfig, ProfileConfig, RestorationConfig};
use shared::domain::{Channel, Destination, PassportNumber, PassportSeries, Snils};
use shared::entry::{Api, Reply};
use shared::error::FieldError;
use shared::http::{self as web, Fields};
use shared::redact::Secret;
use shared::services::confirmation::{ConfirmationService, MAX_ADDRESS_CHARS};
use shared::services::e_signature::{ChallengePurpose, ESignatureService};
use shared::services::profile::ProfilePatch;
use shared::services::restoration::registration::{DeskRegistrationService, RegisterAtDesk};
use shared::services::restoration::{RestorationService, RestoreAccess};
use shared::AppError;

impl Api for App {
    async fn route(&self, route: Option<&str>, request: &Request, now: OffsetDateTime) -> Reply {
        match route {
            Some("POST /v1/operator/confirmations") => in_person(self, request, now).await,
            Some("POST /v1/operator/access-restorations") => restore(self, request, now).await,
            Some("POST /v1/operator/registrations") => register(self, request, now).await,
            Some("POST /v1/account/signature-challenges") => {
                signature_challenge(self, request, now).await
            }
            Some("POST /v1/account/signature-confirmations") => {
                by_signature(self, request, now).await
            }
            Some("POST /v1/account/bank-id-challenges") => bank_challenge(self, request, now).await,
            Some("POST /v1/account/bank-id-confirmations") => by_bank(self, request, now).await,
            Some("POST /v1/account/confirmation-letters") => letter(self, request, now).await,
            Some("POST /v1/account/confirmation-letters/confirm") => {
                by_letter(self, request, now).await
            }
            _ => Err(AppError::RouteNotFound),
        }
    }
}

shared::api_app! {
    pub struct App from (
        start,
        config: ((ConfirmationConfig, RestorationConfig), ProfileConfig)
    ) {
        /// Citizens without a phone or e-mail registered at the desk; counted with the
        /// restorations' hourly limit, in a count of its own.
        registrations: DeskRegistrationService<DynamoStore, SqsQueue> =
            adapters::desk_registration_service(&start.clients, config.1, config.0 .1.limit),
        confirmations: ConfirmationService<DynamoStore, SqsPostOffice> =
            adapters::confirmation_service(&start.clients, config.0 .0),
        /// Confirmation by a qualified electronic signature (the sandbox authority outside
        /// production).
        signatures: ESignatureService<
            DynamoStore,
            SandboxSignatureVerifier,
            SandboxBankIdVerifier,
            AwsNotifier,
        > =
            adapters::e_signature_service(&start.clients, config.0 .1.clone()),
        /// Access restored at the desk: a new phone or e-mail, told to the citizen.
        restorations: RestorationService<DynamoStore, AwsNotifier> =
            adapters::restoration_service(&start.clients, config.0 .1),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// `POST /v1/operator/confirmations`: the operator types the SNILS and the passport the
/// citizen shows at the desk.
async fn in_person(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let operator = web::operator(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let (snils, series, number) = desk_fields(&mut f);
    let (snils, series, number) = f.finish_with(
        &["snils", "passport_series", "passport_number"],
        (snils, series, number),
    )?;
    let ip = web::client_ip(request).unwrap_or_default();
    let account = app
        .confirmations
        .confirm_in_person(
            &operator,
            &snils,
            series.as_str(),
            number.as_str(),
            &ip,
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"account_id": account.id, "level": account.level}),
    ))
}

/// The SNILS and the passport the operator types at the desk, each refusal recorded.
fn desk_fields(
    f: &mut Fields<'_>,
) -> (
    Option<Snils>,
    Option<PassportSeries>,
    Option<PassportNumber>,
) {
    let snils = f
        .required_str("snils")
        .and_then(|raw| Snils::parse("snils", raw).map_err(|e| f.reject(e)).ok());
    let series = f.required_str("passport_series").and_then(|raw| {
        PassportSeries::parse("passport_series", raw)
            .map_err(|e| f.reject(e))
            .ok()
    });
    let number = f.required_str("passport_number").and_then(|raw| {
        PassportNumber::parse("passport_number", raw)
            .map_err(|e| f.reject(e))
            .ok()
    });
    (snils, series, number)
}

/// The longest verification token accepted (the codes function issues much shorter).
const MAX_VERIFICATION_TOKEN_CHARS: usize = 128;

/// `contact`: `{"channel": "sms" | "email", "destination", "verification_token"}`, the
/// destination checked as the code flow checks one; its refusals are reported under
/// `/contact`. The new contact and the verification token of its code.
fn contact_field(f: &mut Fields<'_>) -> Option<(Destination, Secret<String>)> {
    let contact = f.required_object("contact").and_then(Value::as_object)?;
    let mut inner = Fields::new(contact);
    let channel = inner.required_str("channel").and_then(|raw| {
        Channel::parse("channel", raw)
            .map_err(|e| inner.reject(e))
            .ok()
    });
    let raw = inner.required_str("destination");
    let destination = match (channel, raw) {
        (Some(channel), Some(raw)) => Destination::parse("destination", channel, raw)
            .map_err(|e| inner.reject(e))
            .ok(),
        _ => None,
    };
    let token = inner
        .required_str_within(
            "verification_token",
            MAX_VERIFICATION_TOKEN_CHARS,
            "verification_token_invalid",
            "Подтверждение нового контакта недействительно или истекло. Запросите код ещё раз",
        )
        .map(|raw| Secret::new(raw.to_string()));
    if let Err(AppError::Validation(errors)) =
        inner.finish(&["channel", "destination", "verification_token"])
    {
        for mut error in errors {
            error.field = format!("/contact{}", error.field);
            f.reject(error);
        }
    }
    destination.zip(token)
}

/// `POST /v1/operator/access-restorations`: the citizen who lost their phone and e-mail
/// shows the passport; the operator gives the account a new phone or e-mail.
async fn restore(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let operator = web::operator(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let (snils, series, number) = desk_fields(&mut f);
    let contact = contact_field(&mut f);
    let (snils, series, number, contact) = f.finish_with(
        &["snils", "passport_series", "passport_number", "contact"],
        (snils, series, number, contact),
    )?;
    let ip = web::client_ip(request).unwrap_or_default();
    let restored = app
        .restorations
        .restore(
            &operator,
            &RestoreAccess {
                snils: &snils,
                passport_series: series.as_str(),
                passport_number: number.as_str(),
                contact: &contact.0,
                verification_token: &contact.1,
                ip: &ip,
            },
            now,
        )
        .await?;
    let channel = match restored.contact {
        Destination::Phone(_) => Channel::Sms,
        Destination::Email(_) => Channel::Email,
    };
    Ok(web::json_response(
        StatusCode::OK,
        &json!({
            "account_id": restored.account_id,
            "contact": {"channel": channel.as_str(), "destination": restored.contact.canonical()},
        }),
    ))
}

/// `POST /v1/operator/registrations`: a citizen with neither a phone nor an e-mail is
/// registered at the desk from the passport in front of the operator; the answer carries
/// the one-time password to print for them.
async fn register(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let operator = web::operator(request)?;
    let body = web::json_object(request)?;
    let profile = ProfilePatch::parse(&body, now.date())?;
    let ip = web::client_ip(request).unwrap_or_default();
    let done = app
        .registrations
        .register(
            &operator,
            &RegisterAtDesk {
                profile: &profile,
                ip: &ip,
            },
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({
            "account_id": done.account_id,
            "level": done.level,
            "temporary_password": done.temporary_password.expose(),
            "temporary_password_expires_at": rfc3339(done.temporary_password_expires_at),
        }),
    ))
}

/// `POST /v1/account/confirmation-letters`: a letter with a code to a postal address.
async fn letter(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let address = f.required_str("address").map(str::trim);
    if address.is_some_and(|a| a.chars().count() < 10 || a.chars().count() > MAX_ADDRESS_CHARS) {
        f.reject(FieldError::new(
            "address",
            "address_length",
            format!("Адрес — от 10 до {MAX_ADDRESS_CHARS} символов, с индексом"),
        ));
    }
    if address.is_some_and(|a| a.chars().any(char::is_control)) {
        f.reject(FieldError::new(
            "address",
            "invalid_characters",
            "Недопустимые символы",
        ));
    }
    let address = f.finish_with(&["address"], address)?;
    let requested = app
        .confirmations
        .request_letter(&principal.account_id, address, now)
        .await?;
    Ok(web::json_response(
        StatusCode::ACCEPTED,
        &json!({
            "requested_at": rfc3339(requested.requested_at),
            "code_expires_at": rfc3339(requested.expires_at),
            "next_letter_available_at": rfc3339(requested.next_letter_at),
        }),
    ))
}

/// `POST /v1/account/confirmation-letters/confirm`: the code from the letter.
async fn by_letter(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let code = f.required_str("code");
    let code = f.finish_with(&["code"], code)?;
    let client = web::client(request);
    app.confirmations
        .confirm_by_letter(
            &principal.account_id,
            code,
            &client.ip,
            &client.user_agent,
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"level": "confirmed"}),
    ))
}

/// The `challenge_id` of an online confirmation, refused at its field when empty or
/// longer than any id the service hands out.
fn challenge_id_field<'a>(f: &mut Fields<'a>) -> Option<&'a str> {
    f.required_str_within(
        "challenge_id",
        64,
        "invalid_challenge_id",
        "Начните подтверждение снова",
    )
}

/// `POST /v1/account/signature-challenges`: bytes for the citizen's signing plug-in.
async fn signature_challenge(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    web::citizen_only(request)?;
    let issued = app
        .signatures
        .challenge(&principal.account_id, ChallengePurpose::Signature, now)
        .await?;
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({
            "challenge_id": issued.id,
            "challenge": issued.challenge,
            "expires_at": rfc3339(issued.expires_at),
        }),
    ))
}

/// `POST /v1/account/signature-confirmations`: the challenge signed with a qualified
/// certificate confirms the account.
async fn by_signature(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    web::citizen_only(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let challenge_id = challenge_id_field(&mut f);
    let signature = f.required_str_within(
        "signature",
        MAX_SIGNATURE_BYTES,
        "signature_length",
        format!("Подпись — от 1 до {MAX_SIGNATURE_BYTES} символов в base64"),
    );
    let (challenge_id, signature) =
        f.finish_with(&["challenge_id", "signature"], (challenge_id, signature))?;
    let client = web::client(request);
    app.signatures
        .confirm(
            &principal.account_id,
            challenge_id,
            signature,
            (&client.ip, &client.user_agent),
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"level": "confirmed"}),
    ))
}

/// `POST /v1/account/bank-id-challenges`: the nonce the citizen's bank is to put in its ID
/// token.
async fn bank_challenge(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    web::citizen_only(request)?;
    let issued = app
        .signatures
        .challenge(&principal.account_id, ChallengePurpose::BankId, now)
        .await?;
    Ok(web::json_response(
        StatusCode::CREATED,
        &json!({
            "challenge_id": issued.id,
            "nonce": issued.challenge,
            "client_id": shared::adapters::bank_id::PORTAL_CLIENT_ID,
            "expires_at": rfc3339(issued.expires_at),
        }),
    ))
}

/// The longest ID token accepted.
const MAX_ID_TOKEN_CHARS: usize = 8 * 1024;

/// `POST /v1/account/bank-id-confirmations`: the bank's ID token confirms the account.
async fn by_bank(app: &App, request: &Request, now: OffsetDateTime) -> Reply {
    let principal = web::principal(request)?;
    web::citizen_only(request)?;
    let body = web::json_object(request)?;
    let mut f = Fields::new(&body);
    let challenge_id = challenge_id_field(&mut f);
    let id_token = f.required_str_within(
        "id_token",
        MAX_ID_TOKEN_CHARS,
        "id_token_length",
        format!("Ответ банка — от 1 до {MAX_ID_TOKEN_CHARS} символов"),
    );
    let (challenge_id, id_token) =
        f.finish_with(&["challenge_id", "id_token"], (challenge_id, id_token))?;
    let client = web::client(request);
    app.signatures
        .confirm_by_bank(
            &principal.account_id,
            challenge_id,
            id_token,
            (&client.ip, &client.user_agent),
            now,
        )
        .await?;
    Ok(web::json_response(
        StatusCode::OK,
        &json!({"level": "confirmed"}),
    ))
}
