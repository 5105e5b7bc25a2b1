//! Technology behind the service traits. Each adapter is named by what it runs on.

pub mod acquirer;
pub mod aws;
pub mod bank_id;
pub mod biller_endpoint;
pub mod business_registry;
pub mod dynamodb;
pub mod gateway;
pub mod notify;
pub mod registry;
pub mod signature;
pub mod sqs;
pub mod tbank;

use crate::config::{
    ChargesConfig, CodesConfig, ConfigError, ConfirmationConfig, Env, IdentityConfig,
    NoticesConfig, OrganisationsConfig, PaymentsConfig, ProfileConfig, RestorationConfig,
    SandboxAllowed, SweepConfig, TableConfig, VerificationConfig, HMAC_SECRET_ARN,
};
use crate::crypto::Hasher;
use crate::faults::{Faults, Faulty};
use crate::services::bill_notices::NoticeService;
use crate::services::charges::ChargeService;
use crate::services::codes::CodeService;
use crate::services::confirmation::{ConfirmationService, OperatorService};
use crate::services::e_signature::ESignatureService;
use crate::services::household::HouseholdService;
use crate::services::identity::IdentityService;
use crate::services::organisations::OrganisationService;
use crate::services::payments::PaymentService;
use crate::services::profile::ProfileService;
use crate::services::restoration::registration::DeskRegistrationService;
use crate::services::restoration::RestorationService;
use crate::services::verification::{VerificationService, VerificationSweeper};

/// The SDK clients every service is built on: one configuration load and one set of
/// connections per cold start, however many services a function uses.
#[derive(Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sesv2: aws_sdk_sesv2::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
    /// The fault plan (`FAULTS`), off unless set; the integrations get it too.
    pub faults: Faults,
}

impl Clients {
    /// Fails when `FAULTS` holds a plan that does not parse, or any plan in production.
    /// Secrets Manager is read at cold start only and gets no faults.
    pub async fn load() -> Result<Self, ConfigError> {
        let faults = Faults::from_env(&Env::process())?;
        let sdk = aws::load().await;
        Ok(Self {
            dynamodb: aws::dynamodb(&sdk, &faults),
            sns: aws::sns(&sdk, &faults),
            sesv2: aws::sesv2(&sdk, &faults),
            sqs: aws::sqs(&sdk, &faults),
            secretsmanager: aws_sdk_secretsmanager::Client::new(&sdk),
            faults,
        })
    }

    /// The HMAC keyring from the secret `HMAC_SECRET_ARN` names: one `GetSecretValue`
    /// per cold start. The key never passes through the environment, and neither it nor
    /// any part of it reaches an error message.
    pub async fn hasher<F: Fn(&str) -> Option<String>>(
        &self,
        env: &Env<F>,
    ) -> Result<Hasher, ConfigError> {
        let arn = env.required(HMAC_SECRET_ARN)?;
        let out = self
            .secretsmanager
            .get_secret_value()
            .secret_id(&arn)
            .send()
            .await
            .map_err(|e| ConfigError::SecretUnreadable {
                arn: arn.clone(),
                reason: error_chain(&e),
            })?;
        let Some(secret) = out.secret_string() else {
            return Err(ConfigError::SecretUnreadable {
                arn,
                reason: "it holds no SecretString".into(),
            });
        };
        let hasher = Hasher::from_secret(secret)
            .map_err(|reason| ConfigError::SecretRefused { arn, reason })?;
        // Versions only, never a key: how an engineer sees a rotation reach the function.
        tracing::info!(
            current = hasher.current_version(),
            identifiers = hasher.identifiers_version(),
            versions = ?hasher.versions(),
            "HMAC keys read"
        );
        Ok(hasher)
    }

    /// The table store on this function's DynamoDB client: what nearly every service keeps
    /// its items in, one per service over the shared connections.
    pub fn store(&self, table_name: impl Into<String>) -> dynamodb::DynamoStore {
        dynamodb::DynamoStore::new(self.dynamodb.clone(), table_name)
    }

    /// The SQS queue at `url` on this function's SQS client.
    pub fn queue(&self, url: impl Into<String>) -> sqs::SqsQueue {
        sqs::SqsQueue::new(self.sqs.clone(), url)
    }

    pub fn notifier(
        &self,
        email_sender: String,
        sms_sender_id: Option<String>,
    ) -> notify::AwsNotifier {
        notify::AwsNotifier::new(
            self.sns.clone(),
            self.sesv2.clone(),
            email_sender,
            sms_sender_id,
        )
    }
}

/// An SDK error with its sources: the SDK's own `Display` is only "service error".
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// The code service over DynamoDB, SNS and SES.
pub fn code_service(
    clients: &Clients,
    config: CodesConfig,
) -> CodeService<dynamodb::DynamoStore, notify::AwsNotifier> {
    CodeService::new(
        clients.store(config.table_name),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
        config.limits,
    )
}

/// The identity service over DynamoDB, SNS and SES.
pub fn identity_service(
    clients: &Clients,
    config: IdentityConfig,
) -> IdentityService<dynamodb::DynamoStore, notify::AwsNotifier> {
    IdentityService::new(
        clients.store(config.table_name),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
        config.limits,
    )
    .with_passkeys(config.passkeys)
}

/// The profile service over DynamoDB and the SQS verification queue.
pub fn profile_service(
    clients: &Clients,
    config: ProfileConfig,
) -> ProfileService<dynamodb::DynamoStore, sqs::SqsQueue> {
    ProfileService::new(
        clients.store(config.table_name),
        clients.queue(config.queue_url),
        config.hasher,
    )
    .with_deadline(config.verification_deadline_secs)
}

/// The sweeper of overdue checks over DynamoDB and the SQS verification queue.
pub fn verification_sweeper(
    clients: &Clients,
    config: SweepConfig,
) -> VerificationSweeper<dynamodb::DynamoStore, sqs::SqsQueue> {
    VerificationSweeper::new(
        clients.store(config.table_name),
        clients.queue(config.queue_url),
        config.limits,
    )
}

/// The document reminders' daily job over DynamoDB, SES and SNS.
pub fn reminder_service(
    clients: &Clients,
    config: crate::config::ReminderConfig,
) -> crate::services::reminders::ReminderService<dynamodb::DynamoStore, notify::AwsNotifier> {
    crate::services::reminders::ReminderService::new(
        clients.store(config.table_name),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.batch,
    )
}

/// The verification worker's service over DynamoDB, the sandbox registries and SES.
pub fn verification_service(
    clients: &Clients,
    config: VerificationConfig,
    _: SandboxAllowed,
) -> VerificationService<
    dynamodb::DynamoStore,
    Faulty<registry::SandboxRegistry>,
    notify::AwsNotifier,
> {
    VerificationService::new(
        clients.store(config.table_name),
        Faulty::new(
            registry::SandboxRegistry::new(config.registry_delay),
            clients.faults.clone(),
        ),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
    )
}

/// Organisations over DynamoDB, SNS and SES, their register checks queued on the
/// verification queue.
pub fn organisation_service(
    clients: &Clients,
    config: OrganisationsConfig,
) -> OrganisationService<dynamodb::DynamoStore, sqs::SqsQueue, notify::AwsNotifier> {
    OrganisationService::new(
        clients.store(config.table_name),
        clients.queue(config.queue_url),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
    )
}

/// The business registers the verification worker checks organisations with: the
/// sandbox, the only one built.
pub fn business_registry(
    config: &VerificationConfig,
    _: SandboxAllowed,
) -> business_registry::SandboxBusinessRegistry {
    business_registry::SandboxBusinessRegistry::new(config.registry_delay)
}

/// Children and vehicles over DynamoDB.
pub fn household_service(
    clients: &Clients,
    config: &ProfileConfig,
) -> HouseholdService<dynamodb::DynamoStore, sqs::SqsQueue> {
    HouseholdService::new(
        clients.store(config.table_name.clone()),
        // A child's parenthood is checked by the same worker as the profile's documents.
        clients.queue(config.queue_url.clone()),
        config.hasher.clone(),
    )
}

/// Confirmation in person and by post over DynamoDB and the SQS post queue.
pub fn confirmation_service(
    clients: &Clients,
    config: ConfirmationConfig,
) -> ConfirmationService<dynamodb::DynamoStore, sqs::SqsPostOffice> {
    ConfirmationService::new(
        clients.store(config.table_name),
        sqs::SqsPostOffice::new(clients.sqs.clone(), config.post_queue_url),
        config.hasher,
    )
}

/// Restoring access at a service centre over DynamoDB, SNS and SES.
pub fn restoration_service(
    clients: &Clients,
    config: RestorationConfig,
) -> RestorationService<dynamodb::DynamoStore, notify::AwsNotifier> {
    RestorationService::new(
        clients.store(config.table_name),
        clients.notifier(config.email_sender, config.sms_sender_id),
        config.hasher,
        config.limit,
    )
}

/// Registering at a service centre over DynamoDB and the SQS verification queue.
pub fn desk_registration_service(
    clients: &Clients,
    config: ProfileConfig,
    limit: crate::services::restoration::RestorationLimit,
) -> DeskRegistrationService<dynamodb::DynamoStore, sqs::SqsQueue> {
    let hasher = config.hasher.clone();
    DeskRegistrationService::new(
        clients.store(config.table_name.clone()),
        profile_service(clients, config),
        hasher,
        limit,
    )
}

/// Confirmation by electronic signature over DynamoDB, SES and SNS. The sandbox
/// verifier is built only where the deployment allows sandboxes; elsewhere (production,
/// until a verification service's adapter exists) there is none and the routes answer
/// 503 `signature_verification_unavailable`.
pub fn e_signature_service(
    clients: &Clients,
    config: RestorationConfig,
) -> ESignatureService<
    dynamodb::DynamoStore,
    signature::SandboxSignatureVerifier,
    bank_id::SandboxBankIdVerifier,
    notify::AwsNotifier,
> {
    let env = crate::config::Env::process();
    let sandbox = crate::config::Deployment::from_env(&env)
        .ok()
        .and_then(|d| {
            d.allow_sandbox(crate::config::SandboxAdapter::SignatureVerifier)
                .ok()
        })
        .is_some();
    let verifier = sandbox
        .then(|| match signature::SandboxSignatureVerifier::new() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "sandbox signature verifier not built");
                None
            }
        })
        .flatten();
    let bank = sandbox
        .then(|| match bank_id::SandboxBankIdVerifier::new() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "sandbox bank verifier not built");
                None
            }
        })
        .flatten();
    ESignatureService::new(
        clients.store(config.table_name.clone()),
        verifier,
        bank,
        clients.notifier(config.email_sender, config.sms_sender_id),
    )
}

/// The citizen's inbox over DynamoDB.
pub fn inbox_service(
    clients: &Clients,
    config: TableConfig,
) -> crate::services::inbox::InboxService<dynamodb::DynamoStore> {
    crate::services::inbox::InboxService::new(clients.store(config.table_name))
}

/// Operators over DynamoDB.
pub fn operator_service(
    clients: &Clients,
    config: TableConfig,
) -> OperatorService<dynamodb::DynamoStore> {
    OperatorService::new(clients.store(config.table_name), config.hasher)
}

/// Charges and bills over DynamoDB.
pub fn charge_service(
    clients: &Clients,
    config: TableConfig,
) -> ChargeService<dynamodb::DynamoStore> {
    ChargeService::new(clients.store(config.table_name), config.hasher)
}

/// Charges as billers write them: over DynamoDB, each written charge queued on SQS for
/// new-bill notices.
pub fn charge_writer(
    clients: &Clients,
    config: ChargesConfig,
) -> ChargeService<dynamodb::DynamoStore, sqs::SqsQueue> {
    charge_service(clients, config.table).with_announcer(clients.queue(config.notices_queue_url))
}

/// New-bill notices over DynamoDB, SES and SNS.
pub fn notice_service(
    clients: &Clients,
    config: NoticesConfig,
) -> NoticeService<dynamodb::DynamoStore, notify::AwsNotifier, sqs::SqsAutopayTrigger> {
    NoticeService::new(
        clients.store(config.table_name.clone()),
        clients.notifier(config.email_sender.clone(), config.sms_sender_id.clone()),
        config.hasher.clone(),
        config.portal_url.clone(),
    )
    .with_hook(sqs::SqsAutopayTrigger::new(
        clients.store(config.table_name.clone()),
        clients.queue(config.autopay_queue_url.clone()),
    ))
}

/// The sandbox acquirer over DynamoDB: what the payment service charges through, and
/// what `uslugi-admin sandbox-card-token` plays the card page of.
pub fn sandbox_acquirer(
    clients: &Clients,
    table_name: String,
    _: SandboxAllowed,
) -> acquirer::SandboxAcquirer {
    acquirer::SandboxAcquirer::new(clients.store(table_name))
}

/// The sandbox billers' endpoint over DynamoDB: where billers' payment notices go.
pub fn sandbox_biller_endpoint(
    clients: &Clients,
    table_name: String,
    _: SandboxAllowed,
) -> Faulty<biller_endpoint::SandboxBillerEndpoint> {
    Faulty::new(
        biller_endpoint::SandboxBillerEndpoint::new(clients.store(table_name)),
        clients.faults.clone(),
    )
}

/// The payment service as deployed: DynamoDB, the acquirer the deployment chose, SES and
/// SNS, and the SQS queue of billers' notices.
pub type Payments = PaymentService<
    dynamodb::DynamoStore,
    Faulty<gateway::Acquirer>,
    notify::AwsNotifier,
    sqs::SqsQueue,
>;

/// The payment service; the live acquirer reads its secret here, once per cold start.
pub async fn payment_service(
    clients: &Clients,
    config: &PaymentsConfig,
    acquirer: gateway::AcquirerChoice,
) -> Result<Payments, tbank::TbankConfigError> {
    let acquirer = gateway::Acquirer::load(clients, config.table_name.clone(), acquirer).await?;
    Ok(payment_service_on(clients, config, acquirer))
}

/// The payment service on T-Bank and the terminal's credentials it charges with, from
/// one read of the secret: the bank's notifications are verified with the same ones.
/// Refused where the deployment chose the sandbox.
pub async fn live_payment_service(
    clients: &Clients,
    config: &PaymentsConfig,
    acquirer: gateway::AcquirerChoice,
) -> Result<LivePayments, tbank::TbankConfigError> {
    if let gateway::AcquirerChoice::Sandbox(_) = acquirer {
        return Err(tbank::TbankConfigError::Env(
            crate::config::ConfigError::Missing("TBANK_SECRET_ARN"),
        ));
    }
    let env = crate::config::Env::process();
    let credentials = tbank::load_credentials(&clients.secretsmanager, &env).await?;
    let acquirer = gateway::Acquirer::live(&env, credentials.clone())?;
    Ok(LivePayments {
        credentials,
        payments: payment_service_on(clients, config, acquirer),
    })
}

/// What [`live_payment_service`] builds.
pub struct LivePayments {
    pub credentials: tbank::Credentials,
    pub payments: Payments,
}

fn payment_service_on(
    clients: &Clients,
    config: &PaymentsConfig,
    acquirer: gateway::Acquirer,
) -> Payments {
    PaymentService::new(
        clients.store(config.table_name.clone()),
        Faulty::new(acquirer, clients.faults.clone()),
        clients.notifier(config.email_sender.clone(), config.sms_sender_id.clone()),
        clients.queue(config.notices_queue_url.clone()),
        config.hasher.clone(),
    )
    .with_holds(config.holds)
}

/// What autopays run on: the table, the payment service, charges (for the bill list) and
/// a notifier, built once per cold start; [`AutopayParts::service`] borrows them.
pub struct AutopayParts {
    pub store: dynamodb::DynamoStore,
    pub payments: Payments,
    pub charges: ChargeService<dynamodb::DynamoStore>,
    pub notifier: notify::AwsNotifier,
}

impl AutopayParts {
    pub async fn new(
        clients: &Clients,
        config: &PaymentsConfig,
        acquirer: gateway::AcquirerChoice,
    ) -> Result<Self, tbank::TbankConfigError> {
        Ok(Self {
            store: clients.store(config.table_name.clone()),
            payments: payment_service(clients, config, acquirer).await?,
            charges: ChargeService::new(
                clients.store(config.table_name.clone()),
                config.hasher.clone(),
            ),
            notifier: clients.notifier(config.email_sender.clone(), config.sms_sender_id.clone()),
        })
    }

    pub fn service(
        &self,
    ) -> crate::services::autopays::AutopayService<
        '_,
        dynamodb::DynamoStore,
        Faulty<gateway::Acquirer>,
        notify::AwsNotifier,
        sqs::SqsQueue,
    > {
        crate::services::autopays::AutopayService::new(
            &self.store,
            &self.payments,
            &self.charges,
            &self.notifier,
        )
    }
}
