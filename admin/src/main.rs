//! `uslugi-admin`: what only an administrator does, run from a workstation with the
//! stack's table and the ARN of its HMAC secret in the environment (`TABLE_NAME`,
//! `HMAC_SECRET_ARN`, and the usual AWS credentials and region, or `AWS_ENDPOINT_URL` for
//! the local stack). The key itself is read from Secrets Manager, as the functions read
//! it, and never passes through the shell.
//!
//! ```text
//! uslugi-admin create-operator --name "Петрова А. В." --centre "МФЦ Арбат"
//! uslugi-admin revoke-operator --id 6f1c…
//! uslugi-admin create-biller --name "Детский сад № 1234" --uin-prefixes 0355431,0355432 \
//!     --payee-name "ГБОУ Школа № 1234" --payee-inn 7707083893 --payee-kpp 770701001 \
//!     --payee-bic 044525000 --payee-account 03234643350000007300
//! uslugi-admin revoke-biller --id 9a0b…
//! uslugi-admin import-charges --biller-id 9a0b… --file charges.csv
//! uslugi-admin sandbox-card-token --number 4242424242424242 --exp 12/30 --cvc 123
//! uslugi-admin repair-holder-index
//! uslugi-admin refund-payment --payment-id 0193… --uin 18810177200000012341 \
//!     --amount 50000 --reason "Переплата" --idempotency-key refund-2026-12-06-1
//! ```
//!
//! `refund-payment` gives back part or all of a paid bill of a payment as an
//! administrator (any biller's bill), through the payment service as the billers' route
//! does: never more than remains, once per `--idempotency-key` (run again with the same
//! key and values, it answers the same refund, and asks the bank again if its answer was
//! lost). It needs what the payment functions read (`EMAIL_SENDER`,
//! `PAYMENT_NOTICES_QUEUE_URL`, `STAGE`, `INTEGRATIONS`) and prints the refund as JSON.
//!
//! `repair-holder-index` rebuilds the holder index of new-bill notices from the profiles'
//! verified documents, the verified children and the vehicles (a full read of the table)
//! and prints how many entries it wrote and removed; running it again changes nothing.
//!
//! `import-charges` writes a biller's charges from a JSON or CSV file as the batch route
//! does (see [`import`]) and prints each item's outcome; with `BILL_NOTICES_QUEUE_URL`
//! set, written charges are queued for new-bill notices as the charges function does.
//!
//! `sandbox-card-token` plays the sandbox acquirer's card page: it answers the one-time
//! token a client would get there, for trying payments against the sandbox. It reads
//! `STAGE` and `INTEGRATIONS` as the payment functions do, and refuses in the prod stage.
//!
//! `create-operator` and `create-biller` print the new id and key as JSON; the key is
//! shown only this once and works as a bearer token on operator or biller routes. A
//! biller is registered with the UIN prefixes it issues (comma-separated) and the payee
//! its charges pay (INN and account checked by their check digits, the account against
//! the BIC); its key writes nothing else. `revoke-biller` withdraws its unpaid charges:
//! citizens can no longer pay them, and it hears of no more payments.

mod import;

use std::process::ExitCode;

use shared::config::{Deployment, Env, Permit, SandboxAdapter, TableConfig};

const USAGE: &str = "usage:
  uslugi-admin create-operator --name NAME --centre CENTRE
  uslugi-admin revoke-operator --id OPERATOR_ID
  uslugi-admin create-biller --name NAME --uin-prefixes PREFIX[,PREFIX...]
      --payee-name NAME --payee-inn INN --payee-kpp KPP --payee-bic BIC --payee-account ACCOUNT
  uslugi-admin revoke-biller --id BILLER_ID
  uslugi-admin import-charges --biller-id BILLER_ID --file CHARGES.json|CHARGES.csv
  uslugi-admin sandbox-card-token --number CARD_NUMBER --exp MM/YY [--cvc CVC]
  uslugi-admin repair-holder-index
  uslugi-admin refund-payment --payment-id PAYMENT_ID --uin UIN --amount KOPECKS --reason REASON
      --idempotency-key KEY";

/// What a command fails with: any error, printed as its message. `?` takes the
/// configuration's and the services' errors as they are, with no conversion at each call.
type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The value after `--name` in `args`, which the command cannot go without.
fn required<'a>(args: &'a [String], name: &str) -> Result<&'a str, String> {
    flag(args, name).ok_or_else(|| USAGE.to_string())
}

/// The value after `--name` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
        .filter(|v| !v.trim().is_empty())
}

/// An error as the administrator reads it: each invalid value by name.
fn refusal(e: shared::AppError) -> String {
    match e {
        shared::AppError::Validation(errors) => errors
            .iter()
            .map(|f| {
                format!(
                    "{}: {} ({})",
                    f.field.trim_start_matches('/'),
                    f.detail,
                    f.code
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// `sandbox-card-token`: the one-time token the sandbox acquirer's card page would give.
async fn sandbox_card_token(
    args: &[String],
    acquirer: shared::adapters::acquirer::SandboxAcquirer,
    now: time::OffsetDateTime,
) -> Result<String, Failure> {
    let (number, exp) = (required(args, "--number")?, required(args, "--exp")?);
    let (month, year) = exp
        .split_once('/')
        .and_then(|(m, y)| Some((m.parse::<u8>().ok()?, y.parse::<u16>().ok()?)))
        .ok_or("--exp takes MM/YY")?;
    let card = shared::adapters::acquirer::CardEntry {
        number,
        exp_month: month,
        exp_year: 2000 + year % 100,
        cvc: flag(args, "--cvc").unwrap_or("123"),
    };
    let token = acquirer.tokenize(&card, now).await?;
    Ok(serde_json::json!({ "token": token }).to_string())
}

/// `refund-payment`: an administrator's refund of a paid bill of a payment.
async fn refund_payment(
    args: &[String],
    payments: &shared::adapters::Payments,
    now: time::OffsetDateTime,
) -> Result<String, Failure> {
    let payment_id = shared::domain::requested(required(args, "--payment-id")?, "payment")?;
    let key = shared::services::payments::check_idempotency_key(flag(args, "--idempotency-key"))
        .map_err(refusal)?;
    let amount: u64 = required(args, "--amount")?
        .parse()
        .map_err(|_| "--amount takes whole kopecks")?;
    let body = serde_json::json!({
        "uin": required(args, "--uin")?,
        "amount": amount,
        "reason": required(args, "--reason")?,
    });
    let ask = match body.as_object() {
        Some(object) => {
            shared::services::payments::RefundRequest::parse(object).map_err(refusal)?
        }
        None => return Err(USAGE.into()),
    };
    let outcome = payments
        .refund(
            &shared::services::payments::Refunder::Admin,
            &payment_id,
            &key,
            &ask,
            now,
        )
        .await
        .map_err(refusal)?;
    let mut view = outcome.refund.view();
    view["replayed"] = serde_json::Value::Bool(outcome.replayed);
    Ok(view.to_string())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("uslugi-admin: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<String, Failure> {
    let command = args.first().map(String::as_str);
    if !matches!(
        command,
        Some(
            "create-operator"
                | "revoke-operator"
                | "create-biller"
                | "revoke-biller"
                | "import-charges"
                | "sandbox-card-token"
                | "repair-holder-index"
                | "refund-payment"
        )
    ) {
        return Err(USAGE.into());
    }
    let env = Env::process();
    let now = time::OffsetDateTime::now_utc();
    if command == Some("sandbox-card-token") {
        let sandbox =
            Deployment::from_env(&env).and_then(|d| d.allow_sandbox(SandboxAdapter::Acquirer))?;
        let table_name = env.required("TABLE_NAME")?;
        let clients = shared::adapters::Clients::load().await?;
        return sandbox_card_token(
            args,
            shared::adapters::sandbox_acquirer(&clients, table_name, sandbox),
            now,
        )
        .await;
    }
    if command == Some("refund-payment") {
        // The refund goes to the acquirer that charged: the sandbox's, or the live one.
        let acquirer = Deployment::from_env(&env).and_then(|d| {
            shared::adapters::gateway::AcquirerChoice::permit(&d, SandboxAdapter::Acquirer)
        })?;
        let clients = shared::adapters::Clients::load().await?;
        let hasher = clients.hasher(&env).await?;
        let config = shared::config::PaymentsConfig::from_env(&env, hasher)?;
        let payments = shared::adapters::payment_service(&clients, &config, acquirer).await?;
        return refund_payment(args, &payments, now).await;
    }
    let clients = shared::adapters::Clients::load().await?;
    let hasher = clients.hasher(&env).await?;
    let config = TableConfig::from_env(&env, hasher)?;
    let table_name = config.table_name.clone();
    let hasher = config.hasher.clone();
    if command == Some("repair-holder-index") {
        let store =
            shared::adapters::dynamodb::DynamoStore::new(clients.dynamodb.clone(), table_name);
        let repair =
            shared::services::household::holdings::repair_holder_index(&store, &hasher).await?;
        return Ok(serde_json::json!({
            "accounts": repair.accounts,
            "added": repair.added,
            "removed": repair.removed,
        })
        .to_string());
    }
    let operators = shared::adapters::operator_service(&clients, config.clone());
    let billers = shared::adapters::charge_service(&clients, config);
    match command {
        Some("import-charges") => {
            let (biller_id, file) = (required(args, "--biller-id")?, required(args, "--file")?);
            let items = import::read(file)?;
            let biller_id = shared::domain::requested(biller_id, "biller")?;
            let biller = billers.active_biller(&biller_id).await?;
            let env = Env::process();
            let results = match env.optional("BILL_NOTICES_QUEUE_URL") {
                Some(url) => {
                    let writer = shared::adapters::charge_writer(
                        &clients,
                        shared::config::ChargesConfig {
                            table: TableConfig {
                                table_name: table_name.clone(),
                                hasher: hasher.clone(),
                            },
                            notices_queue_url: url,
                        },
                    );
                    import::write_all(&writer, &biller.id, &items, now).await?
                }
                None => {
                    eprintln!("uslugi-admin: BILL_NOTICES_QUEUE_URL is not set: no new-bill notices for these charges");
                    import::write_all(&billers, &biller.id, &items, now).await?
                }
            };
            let failed = results.iter().filter(|r| r["outcome"] == "failed").count();
            let report = serde_json::json!({
                "biller_id": biller.id,
                "succeeded": results.len() - failed,
                "failed": failed,
                "results": results,
            });
            if failed > 0 {
                println!("{report}");
                return Err(format!(
                    "{failed} of {} charges not imported (see the results)",
                    results.len()
                )
                .into());
            }
            Ok(report.to_string())
        }
        Some("create-biller") => {
            let name = required(args, "--name")?;
            let input = shared::services::billers::RegistrationInput {
                uin_prefixes: flag(args, "--uin-prefixes").unwrap_or_default(),
                payee_name: flag(args, "--payee-name").unwrap_or_default(),
                payee_inn: flag(args, "--payee-inn").unwrap_or_default(),
                payee_kpp: flag(args, "--payee-kpp").unwrap_or_default(),
                payee_bic: flag(args, "--payee-bic").unwrap_or_default(),
                payee_account: flag(args, "--payee-account").unwrap_or_default(),
            };
            let registration =
                shared::services::billers::Registration::parse(&input).map_err(refusal)?;
            let (biller, key) = billers
                .create_biller(name, registration.clone(), now)
                .await?;
            Ok(serde_json::json!({
                "biller_id": biller.id,
                "name": biller.name,
                "uin_prefixes": registration.uin_prefixes,
                "payee": registration.payee,
                "key": key.expose(),
            })
            .to_string())
        }
        Some("revoke-biller") => {
            let id = required(args, "--id")?;
            let biller_id = shared::domain::requested(id, "biller")?;
            billers.revoke_biller(&biller_id, now).await?;
            Ok(serde_json::json!({"revoked": id}).to_string())
        }
        Some("create-operator") => {
            let (name, centre) = (required(args, "--name")?, required(args, "--centre")?);
            let (operator, key) = operators.create_operator(name, centre, now).await?;
            Ok(serde_json::json!({
                "operator_id": operator.id,
                "name": operator.name,
                "centre": operator.centre,
                "key": key.expose(),
            })
            .to_string())
        }
        _ => {
            let id = required(args, "--id")?;
            // An id of another shape names no operator.
            let operator = id
                .parse()
                .map_err(|_| shared::AppError::NotFound("operator"))?;
            operators.revoke_operator(&operator, now).await?;
            Ok(serde_json::json!({"revoked": id}).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_read_by_name() {
        let args: Vec<String> = ["create-operator", "--name", "Петрова", "--centre", " "]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(flag(&args, "--name"), Some("Петрова"));
        assert_eq!(flag(&args, "--centre"), None, "blank is missing");
        assert_eq!(flag(&args, "--id"), None);
    }
}
