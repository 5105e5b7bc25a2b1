//! The one error type of the system and its RFC 9457 problem description.
//!
//! Services return [`AppError`]; [`crate::http::respond`] is the only place that turns
//! it into an HTTP response. Problem `code`s are stable, machine-readable and English;
//! `title`/`detail` are for people and in Russian.

use serde::Serialize;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON Pointer (RFC 6901) to the field, e.g. `/destination`.
    pub field: String,
    /// Machine-readable reason, e.g. `not_mobile_phone`.
    pub code: &'static str,
    /// What is wrong, in Russian, for the citizen.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: &str, code: &'static str, detail: impl Into<String>) -> Self {
        // "" is the JSON Pointer of the whole body.
        let field = if field.is_empty() || field.starts_with('/') {
            field.to_string()
        } else {
            format!("/{field}")
        };
        Self {
            field,
            code,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("request body is not valid JSON")]
    InvalidJson { detail: String },
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// A bank's notification whose signature does not hold: nothing in it is trusted.
    #[error("the notification's signature does not hold")]
    InvalidSignature,
    #[error("request body failed validation")]
    Validation(Vec<FieldError>),
    #[error("no such route")]
    RouteNotFound,
    #[error("a code was sent to this destination moments ago")]
    ResendTooEarly { retry_after_secs: u64 },
    #[error("hourly code limit for the destination reached")]
    DestinationRateLimited { retry_after_secs: u64 },
    #[error("hourly code limit for the client address reached")]
    ClientRateLimited { retry_after_secs: u64 },
    #[error("too many bill lookups by one account")]
    LookupRateLimited { retry_after_secs: u64 },
    #[error("daily invitation limit of the organisation reached")]
    InvitationLimit { retry_after_secs: u64 },
    #[error("confirmation code not found")]
    CodeNotFound,
    #[error("confirmation code expired")]
    CodeExpired,
    #[error("confirmation code has no attempts left")]
    CodeAttemptsExhausted,
    #[error("confirmation code already used")]
    CodeAlreadyUsed,
    #[error("confirmation code does not match")]
    CodeMismatch { attempts_left: u32 },
    #[error("contact already registered: {0:?}")]
    ContactTaken(Vec<String>),
    #[error("wrong login or password")]
    InvalidCredentials,
    #[error("login locked after failed attempts")]
    LoginThrottled { retry_after_secs: u64 },
    #[error("too many failed logins from the client address")]
    LoginClientLimited { retry_after_secs: u64 },
    #[error("password does not match")]
    WrongPassword,
    #[error("the change needs a fresh proof of presence")]
    StepUpRequired,
    #[error("too many bills held in unconfirmed payments")]
    TooManyHeldBills { limit: usize },
    #[error("no valid session")]
    Unauthenticated,
    #[error("two-step login challenge unknown, expired or used")]
    TwoStepChallengeInvalid,
    #[error("the second factor's code is wrong or used already")]
    SecondFactorRefused,
    #[error("the account has no such second factor")]
    FactorNotEnrolled,
    #[error("passkey ceremony unknown, expired or finished")]
    PasskeyCeremonyInvalid,
    #[error("the passkey's attestation was refused")]
    PasskeyRefused,
    #[error("the passkey's assertion was refused")]
    PasskeyAssertionRefused,
    #[error("the passkey is registered already")]
    PasskeyAlreadyRegistered,
    #[error("the last second factor cannot go while two-step login is on")]
    LastSecondFactor,
    #[error("second factors are locked for a while after a password recovery")]
    FactorsLockedAfterRecovery { retry_after_secs: u64 },
    #[error("session not found")]
    SessionNotFound,
    #[error("profile changed since it was read (now version {current})")]
    VersionMismatch { current: u64 },
    #[error("If-Match header missing")]
    PreconditionRequired,
    #[error("SNILS belongs to another account")]
    SnilsTaken,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    #[error("at most {limit} {what}")]
    TooMany { what: &'static str, limit: usize },
    #[error("the birth certificate belongs to a child with other data")]
    ChildMismatch,
    #[error("the account is not at the standard level")]
    LevelNotStandard,
    #[error("the account is confirmed already")]
    AlreadyConfirmed,
    #[error("a confirmation letter was asked for recently")]
    LetterTooEarly { retry_after_secs: u64 },
    #[error("no confirmation letter was asked for")]
    NoLetterRequested,
    #[error("operators only")]
    OperatorOnly,
    #[error("access is restored at a service centre only to a standard or confirmed account")]
    RestorationNeedsStandard,
    /// The account changed between the restoration's reads and its transaction.
    #[error("the account changed during the restoration")]
    AccountChanged,
    #[error("hourly limit of the operator's access restorations reached")]
    RestorationLimit { retry_after_secs: u64 },
    #[error("hourly limit of the operator's registrations reached")]
    RegistrationLimit { retry_after_secs: u64 },
    /// A registration at a desk for a SNILS that is already an account's login.
    #[error("the SNILS is an account's login already")]
    SnilsRegistered,
    #[error("the one-time password from the service centre has expired")]
    TemporaryPasswordExpired,
    #[error("no electronic signature verifier in this deployment")]
    SignatureVerificationUnavailable,
    #[error("the signature challenge is unknown, expired or used")]
    SignatureChallengeInvalid,
    #[error("the signature challenge has no attempts left")]
    SignatureAttemptsExhausted,
    #[error("the charge is {0} and cannot change")]
    ChargeFinal(&'static str),
    #[error("billers only")]
    BillerOnly,
    #[error("the charge is being paid")]
    ChargeLocked,
    #[error("Idempotency-Key header missing or malformed")]
    IdempotencyKeyRequired,
    #[error("Idempotency-Key used before with another request")]
    IdempotencyKeyReused,
    #[error("bill {0} is paid already")]
    BillPaid(String),
    #[error("bill {0} is in another payment")]
    BillInPayment(String),
    #[error("bill {0} not found")]
    BillMissing(String),
    #[error("the payment is still being processed")]
    PaymentInProgress { payment_id: String },
    #[error("the bank declined the payment: {reason}")]
    PaymentDeclined { payment_id: String, reason: String },
    #[error("the payment cannot be confirmed in its state")]
    PaymentNotAwaitingConfirmation,
    /// A template has nothing to pay now: its bills are paid, or it names no payee.
    #[error("template has nothing to pay")]
    TemplateNothingToPay,
    #[error("the request carries what looks like a card number")]
    CardNumberNotAccepted(String),
    #[error("UIN {0} is outside the biller's registered prefixes")]
    UinOutsideBillerRange(String),
    #[error("the payee is not the biller's registered payee")]
    PayeeNotRegistered,
    #[error("bill {0} was withdrawn: its biller was revoked")]
    BillWithdrawn(String),
    #[error("message delivery failed: {0}")]
    DeliveryFailed(String),
    #[error("the account's level is below {0}")]
    LevelRequired(crate::domain::AccountLevel),
    #[error("the session proved no second factor")]
    SecondFactorRequired,
    #[error("the profile holds no verified personal INN")]
    PersonalInnRequired,
    #[error("an organisation of this INN is registered or being registered")]
    OrganisationTaken,
    #[error("the member's role does not allow it")]
    RoleForbids,
    /// `X-Organisation-Id` on a route that acts only for the citizen themselves.
    #[error("this route does not act for an organisation")]
    OrganisationNotSupported,
    #[error("the organisation would be left without an owner")]
    LastOwner,
    #[error("already a member of the organisation")]
    AlreadyMember,
    #[error("no invitation with this code")]
    InvitationCodeMismatch,
    #[error("too many invitation codes tried")]
    InvitationAttemptsLimited { retry_after_secs: u64 },
    #[error("data store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A problem description (RFC 9457) before it is serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: u16,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub retry_after_secs: Option<u64>,
    pub attempts_left: Option<u32>,
    /// The bill a refusal is about (extension member `uin`).
    pub uin: Option<String>,
    /// The payment a refusal is about (extension member `payment_id`).
    pub payment_id: Option<String>,
    /// Why a bank declined (extension member `reason`).
    pub reason: Option<String>,
}

impl Problem {
    fn new(
        status: u16,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            attempts_left: None,
            uin: None,
            payment_id: None,
            reason: None,
        }
    }

    /// The invalid fields a refusal lists, all for one reason: a builder step so that
    /// every refusal in [`AppError::problem`] stays one row of its table.
    fn fields<'a>(
        mut self,
        paths: impl IntoIterator<Item = &'a str>,
        code: &'static str,
        detail: &str,
    ) -> Self {
        let listed = paths
            .into_iter()
            .map(|path| FieldError::new(path, code, detail));
        self.errors.extend(listed);
        self
    }

    /// [`Self::fields`] for one field.
    fn field(self, path: &str, code: &'static str, detail: &str) -> Self {
        self.fields([path], code, detail)
    }

    fn about_bill(mut self, uin: &str) -> Self {
        self.uin = Some(uin.to_string());
        self
    }

    fn about_payment(mut self, payment_id: &str) -> Self {
        self.payment_id = Some(payment_id.to_string());
        self
    }

    fn declined_for(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_string());
        self
    }

    fn attempts_left(mut self, attempts: u32) -> Self {
        self.attempts_left = Some(attempts);
        self
    }

    fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs.max(1));
        self
    }
}

/// How long a client should wait after a delivery or store failure before retrying.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 5;

/// The `code` of a [`AppError::NotFound`], by what was not found.
fn not_found_code(what: &str) -> &'static str {
    match what {
        "child" => "child_not_found",
        "vehicle" => "vehicle_not_found",
        "account" => "account_not_found",
        "operator" => "operator_not_found",
        "charge" => "charge_not_found",
        "bill" => "bill_not_found",
        "biller" => "biller_not_found",
        "payment" => "payment_not_found",
        "receipt" => "receipt_not_found",
        "payment method" => "payment_method_not_found",
        "payment template" => "payment_template_not_found",
        "autopay" => "autopay_not_found",
        "factor" => "factor_not_found",
        "organisation" => "organisation_not_found",
        "member" => "member_not_found",
        "payee" => "payee_not_found",
        "message" => "message_not_found",
        _ => "not_found",
    }
}

/// The `detail` of a [`AppError::NotFound`], by what was not found.
fn not_found_detail(what: &str) -> &'static str {
    match what {
        "child" | "vehicle" => "Такой записи нет в вашем профиле",
        "payment" => "У вас нет такого платежа",
        "receipt" => "Квитанция есть только у выполненного платежа",
        "payment method" => "У вас нет такого способа оплаты",
        "payment template" => "У вас нет такого шаблона",
        "autopay" => "У вас нет такого автоплатежа",
        "factor" => "У вас нет такого способа подтверждения входа",
        "payee" => "Такого получателя нет в каталоге",
        "charge" => "У вас нет начисления с таким УИН",
        "bill" => "Начисление с таким УИН не найдено",
        "account" => "Учётная запись с таким СНИЛС не найдена",
        "organisation" => "У вас нет такой организации",
        "member" => "В организации нет такого участника",
        "message" => "У вас нет такого сообщения",
        _ => "Не найдено",
    }
}

/// The `code` of an [`AppError::AlreadyExists`], by what is there already.
fn already_exists_code(what: &str) -> &'static str {
    match what {
        "child" => "child_already_added",
        "vehicle" => "vehicle_already_added",
        "factor" => "factor_already_added",
        _ => "already_exists",
    }
}

/// The `code` of an [`AppError::TooMany`], by what there are too many of.
fn too_many_code(what: &str) -> &'static str {
    match what {
        "children" => "too_many_children",
        "vehicles" => "too_many_vehicles",
        "saved bills" => "too_many_saved_bills",
        "passkeys" => "too_many_passkeys",
        _ => "too_many",
    }
}

impl AppError {
    /// The problem each error is answered with: one row an error (status, code, title,
    /// detail, then the members it adds), kept as a table so that the texts can be read
    /// and compared at a glance.
    #[rustfmt::skip]
    pub fn problem(&self) -> Problem {
        use AppError::*;
        match self {
            InvalidJson { detail } => Problem::new(400, "invalid_json", "Некорректный JSON", format!("Тело запроса не является корректным JSON-объектом: {detail}")),
            InvalidSignature => Problem::new(400, "invalid_signature", "Неверная подпись", "Подпись уведомления не сходится"),
            PayloadTooLarge { limit } => Problem::new(413, "payload_too_large", "Слишком большой запрос", format!("Тело запроса больше {limit} байт")),
            Validation(errors) => Problem { errors: errors.clone(), ..Problem::new(422, "validation_failed", "Ошибка в данных запроса", "Проверьте отмеченные поля") },
            RouteNotFound => Problem::new(404, "route_not_found", "Не найдено", "Такого адреса нет"),
            ResendTooEarly { retry_after_secs } => Problem::new(429, "code_resend_too_early", "Слишком частый запрос кода", format!("Новый код можно запросить через {retry_after_secs} с")).retry_after(*retry_after_secs),
            DestinationRateLimited { retry_after_secs } => Problem::new(429, "code_destination_limit", "Превышен лимит кодов", "На этот номер или адрес отправлено слишком много кодов за час. Попробуйте позже").retry_after(*retry_after_secs),
            ClientRateLimited { retry_after_secs } => Problem::new(429, "code_client_limit", "Превышен лимит запросов", "С вашего адреса запрошено слишком много кодов за час. Попробуйте позже").retry_after(*retry_after_secs),
            LookupRateLimited { retry_after_secs } => Problem::new(429, "lookup_rate_limited", "Слишком много запросов", "Слишком много поисков начислений подряд. Попробуйте позже").retry_after(*retry_after_secs),
            InvitationLimit { retry_after_secs } => Problem::new(429, "invitation_limit", "Слишком много приглашений", "Организация отправила столько приглашений, сколько можно за сутки. Попробуйте завтра").retry_after(*retry_after_secs),
            CodeNotFound => Problem::new(404, "code_not_found", "Код не найден", "Код не найден. Запросите новый код"),
            CodeExpired => Problem::new(410, "code_expired", "Срок действия кода истёк", "Срок действия кода истёк. Запросите новый код"),
            CodeAttemptsExhausted => Problem::new(410, "code_attempts_exhausted", "Попытки исчерпаны", "Код введён неверно слишком много раз. Запросите новый код"),
            CodeAlreadyUsed => Problem::new(410, "code_already_used", "Код уже использован", "Этот код уже был использован. Запросите новый код"),
            CodeMismatch { attempts_left } => Problem::new(422, "code_mismatch", "Неверный код", format!("Неверный код. Осталось попыток: {attempts_left}")).attempts_left(*attempts_left),
            ContactTaken(fields) => Problem::new(409, "contact_already_registered", "Учётная запись уже существует", "Этот телефон или адрес почты уже привязан к учётной записи. Если это ваша учётная запись, восстановите доступ к ней")
                .fields(fields.iter().map(String::as_str), "already_registered", "Уже используется в другой учётной записи"),
            VersionMismatch { current } => Problem::new(412, "version_mismatch", "Данные уже изменены", format!("Профиль изменили в другом окне или на другом устройстве (версия {current}). Обновите страницу и внесите изменения снова")),
            PreconditionRequired => Problem::new(428, "precondition_required", "Нужна версия профиля", "Передайте заголовок If-Match со значением ETag из последнего чтения профиля"),
            SnilsTaken => Problem::new(409, "snils_already_registered", "СНИЛС уже используется", "Этот СНИЛС указан в другой учётной записи. Если это ваша учётная запись, восстановите доступ к ней")
                .field("/documents/snils", "already_registered", "СНИЛС уже указан в другой учётной записи"),
            NotFound(what) => Problem::new(404, not_found_code(what), "Не найдено", not_found_detail(what)),
            AlreadyExists(what) => Problem::new(409, already_exists_code(what), "Уже добавлено", "Эта запись уже есть в вашем профиле"),
            TooMany { what, limit } => Problem::new(409, too_many_code(what), "Достигнут предел", format!("Можно хранить не больше {limit} записей этого вида")),
            ChildMismatch => Problem::new(409, "child_data_mismatch", "Данные ребёнка не совпадают", "Этого ребёнка уже добавил другой родитель с другими ФИО или датой рождения. Проверьте данные свидетельства о рождении")
                .field("birth_certificate", "child_data_mismatch", "По этому свидетельству записан ребёнок с другими ФИО или датой рождения"),
            LevelNotStandard => Problem::new(409, "account_not_standard", "Учётная запись не стандартная", "Подтвердить личность можно после проверки СНИЛС и паспорта: учётная запись должна быть стандартной"),
            AlreadyConfirmed => Problem::new(409, "already_confirmed", "Учётная запись уже подтверждена", "Личность владельца этой учётной записи уже подтверждена"),
            LetterTooEarly { retry_after_secs } => Problem::new(429, "letter_too_early", "Письмо уже заказано", "Новое письмо с кодом можно заказать через 30 дней после предыдущего").retry_after(*retry_after_secs),
            NoLetterRequested => Problem::new(404, "no_letter_requested", "Письмо не заказано", "Сначала закажите письмо с кодом подтверждения"),
            ChargeFinal(status) => Problem::new(409, if *status == "paid" { "charge_paid" } else { "charge_cancelled" }, "Начисление нельзя изменить", "Оплаченное или аннулированное начисление не меняется"),
            BillerOnly => Problem::new(403, "biller_only", "Только для начислителей", "Этот адрес принимает запросы с ключом начислителя"),
            ChargeLocked => Problem::new(409, "charge_in_payment", "Начисление оплачивается", "Начисление сейчас оплачивается и не может быть изменено"),
            IdempotencyKeyRequired => Problem::new(400, "idempotency_key_required", "Нужен ключ идемпотентности", "Передайте заголовок Idempotency-Key, один на каждую попытку оплаты")
                .field("Idempotency-Key", "idempotency_key_required", "Заголовок Idempotency-Key обязателен: от 8 до 64 латинских букв, цифр, «-» и «_»"),
            IdempotencyKeyReused => Problem::new(422, "idempotency_key_reused", "Ключ идемпотентности уже использован", "Этот Idempotency-Key уже использован для другого запроса"),
            BillPaid(uin) => Problem::new(409, "bill_paid", "Начисление уже оплачено", format!("Начисление {uin} уже оплачено")).about_bill(uin),
            BillInPayment(uin) => Problem::new(409, "bill_in_payment", "Начисление оплачивается", format!("Начисление {uin} сейчас оплачивается в другом платеже")).about_bill(uin),
            UinOutsideBillerRange(uin) => Problem::new(403, "uin_outside_biller_range", "УИН вне диапазона начислителя", format!("УИН {uin} не начинается ни с одного префикса, зарегистрированного за этим начислителем")).about_bill(uin),
            PayeeNotRegistered => Problem::new(403, "payee_not_registered", "Получатель не зарегистрирован", "Реквизиты получателя отличаются от зарегистрированных за начислителем: укажите зарегистрированные или не указывайте получателя"),
            BillWithdrawn(uin) => Problem::new(409, "bill_withdrawn", "Начисление отозвано", format!("Начисление {uin} отозвано: получатель больше не принимает по нему оплату через портал")).about_bill(uin),
            BillMissing(uin) => Problem::new(404, "bill_not_found", "Начисление не найдено", format!("Начисление {uin} не найдено или отменено")).about_bill(uin),
            PaymentInProgress { payment_id } => Problem::new(409, "payment_in_progress", "Платёж обрабатывается", "Платёж с этим ключом ещё обрабатывается. Повторите запрос позже").retry_after(2).about_payment(payment_id),
            PaymentDeclined { payment_id, reason } => Problem::new(402, "payment_declined", "Платёж отклонён", "Банк отклонил платёж. Начисления не оплачены; попробуйте другой способ оплаты").about_payment(payment_id).declined_for(reason),
            PaymentNotAwaitingConfirmation => Problem::new(409, "payment_not_awaiting_confirmation", "Платёж не ждёт подтверждения", "Этот платёж не ожидает подтверждения"),
            TemplateNothingToPay => Problem::new(409, "template_nothing_to_pay", "Нечего оплачивать", "Все начисления шаблона уже оплачены, или шаблон не называет, что платить"),
            CardNumberNotAccepted(path) => Problem::new(422, "card_number_not_accepted", "Номер карты не принимается", "Данные карты вводятся только на странице платёжного шлюза")
                .field(path, "card_number_not_accepted", "Номер карты нельзя передавать: используйте токен платёжного шлюза"),
            AccountChanged => Problem::new(409, "account_changed", "Учётная запись изменилась", "Пока восстанавливался доступ, учётная запись изменилась: проверьте данные и повторите"),
            RestorationNeedsStandard => Problem::new(409, "account_not_standard", "Учётная запись не стандартная", "Восстановить доступ в центре обслуживания можно только к стандартной или подтверждённой учётной записи: паспорт в профиле должен быть проверен"),
            RestorationLimit { retry_after_secs } => Problem::new(429, "restoration_limit", "Слишком много восстановлений", "Оператор восстановил доступ слишком многим учётным записям за час. Попробуйте позже").retry_after(*retry_after_secs),
            RegistrationLimit { retry_after_secs } => Problem::new(429, "registration_limit", "Слишком много регистраций", "Оператор зарегистрировал слишком много учётных записей за час. Попробуйте позже").retry_after(*retry_after_secs),
            SnilsRegistered => Problem::new(409, "snils_already_registered", "Учётная запись уже есть", "По этому СНИЛС уже есть учётная запись: восстановите доступ к ней, а не регистрируйте новую"),
            TemporaryPasswordExpired => Problem::new(403, "temporary_password_expired", "Временный пароль истёк", "Срок действия временного пароля истёк. Обратитесь в центр обслуживания с паспортом"),
            SignatureVerificationUnavailable => Problem::new(503, "signature_verification_unavailable", "Проверка подписи недоступна", "Подтверждение электронной подписью пока недоступно. Подтвердите учётную запись в центре обслуживания или кодом по почте"),
            SignatureChallengeInvalid => Problem::new(410, "signature_challenge_invalid", "Запрос на подпись недействителен", "Время на подпись истекло или запрос уже использован. Запросите новый"),
            SignatureAttemptsExhausted => Problem::new(410, "signature_attempts_exhausted", "Попытки исчерпаны", "Слишком много попыток с этим запросом. Запросите новый"),
            OperatorOnly => Problem::new(403, "operator_only", "Только для операторов", "Это действие выполняет оператор центра обслуживания"),
            InvalidCredentials => Problem::new(401, "invalid_credentials", "Неверный логин или пароль", "Проверьте логин и пароль"),
            LoginThrottled { retry_after_secs } => Problem::new(429, "login_throttled", "Вход временно ограничен", "Слишком много неудачных попыток входа. Попробуйте позже или восстановите пароль").retry_after(*retry_after_secs),
            LoginClientLimited { retry_after_secs } => Problem::new(429, "login_client_limit", "Вход временно ограничен", "С вашего адреса слишком много неудачных попыток входа. Попробуйте позже").retry_after(*retry_after_secs),
            StepUpRequired => Problem::new(403, "step_up_required", "Подтвердите, что это вы", "Для этого действия войдите заново или подтвердите его кодом из SMS на ваш телефон"),
            TooManyHeldBills { limit } => Problem::new(409, "too_many_held_bills", "Слишком много неподтверждённых оплат", format!("В неподтверждённых оплатах уже {limit} начислений или больше. Подтвердите их или подождите несколько минут")),
            WrongPassword => Problem::new(403, "wrong_password", "Неверный пароль", "Для этого действия нужен текущий пароль").field("password", "wrong_password", "Неверный пароль"),
            Unauthenticated => Problem::new(401, "unauthenticated", "Требуется вход", "Сессия недействительна или истекла. Войдите снова"),
            TwoStepChallengeInvalid => Problem::new(401, "two_step_challenge_invalid", "Вход не подтверждён", "Время на ввод кода истекло или вход уже подтверждён. Войдите снова"),
            SecondFactorRefused => Problem::new(422, "second_factor_refused", "Код не подошёл", "Код неверный или уже использован").field("code", "second_factor_refused", "Код неверный или уже использован"),
            FactorNotEnrolled => Problem::new(409, "factor_not_enrolled", "Способ не подключён", "Этот способ подтверждения входа не подключён. Выберите другой"),
            PasskeyCeremonyInvalid => Problem::new(410, "passkey_ceremony_invalid", "Начните заново", "Время на подтверждение ключом доступа истекло или оно уже выполнено. Начните заново"),
            PasskeyRefused => Problem::new(422, "passkey_refused", "Ключ доступа не принят", "Ответ ключа доступа не прошёл проверку").field("credential", "passkey_refused", "Ответ ключа доступа не прошёл проверку"),
            PasskeyAssertionRefused => Problem::new(422, "second_factor_refused", "Ключ доступа не подошёл", "Ключ доступа не подошёл или его ответ уже использован").field("credential", "second_factor_refused", "Ключ доступа не подошёл или его ответ уже использован"),
            PasskeyAlreadyRegistered => Problem::new(409, "passkey_already_registered", "Ключ уже добавлен", "Этот ключ доступа уже подключён к учётной записи"),
            LastSecondFactor => Problem::new(409, "last_second_factor", "Последний способ подтверждения", "Пока вход с подтверждением включён, последний способ подтверждения удалить нельзя"),
            FactorsLockedAfterRecovery { retry_after_secs } => Problem::new(403, "factors_locked_after_recovery", "Изменение недоступно", "После восстановления пароля способы подтверждения входа можно менять только после подтверждения кодом или через 72 часа").retry_after(*retry_after_secs),
            SessionNotFound => Problem::new(404, "session_not_found", "Сессия не найдена", "Такой сессии нет или она уже завершена"),
            LevelRequired(crate::domain::AccountLevel::Confirmed) => Problem::new(403, "confirmed_level_required", "Нужна подтверждённая учётная запись", "Это доступно с подтверждённой учётной записью. Подтвердите личность в центре обслуживания, кодом из письма, электронной подписью или через банк"),
            LevelRequired(_) => Problem::new(403, "standard_level_required", "Нужна стандартная учётная запись", "Это доступно со стандартной учётной записью. Заполните в профиле ФИО, дату рождения, пол, СНИЛС и паспорт и дождитесь их проверки"),
            SecondFactorRequired => Problem::new(403, "second_factor_required", "Подтвердите вход", "Для этого действия подтвердите вход: кодом (POST /v1/sessions/current/step-up) или войдите с подтверждением"),
            PersonalInnRequired => Problem::new(409, "personal_inn_required", "Нужен проверенный ИНН", "Укажите в профиле свой ИНН и дождитесь его проверки: по нему реестр подтверждает руководителя"),
            OrganisationTaken => Problem::new(409, "organisation_already_registered", "Организация уже зарегистрирована", "Организация с этими ИНН и КПП уже зарегистрирована или регистрируется. Если вы её руководитель, обратитесь к её владельцу в кабинете"),
            RoleForbids => Problem::new(403, "role_forbids", "Недостаточно прав", "Ваша роль в организации не позволяет это действие"),
            OrganisationNotSupported => Problem::new(400, "organisation_not_supported", "Только для себя", "Это действие выполняется только от своего имени: уберите заголовок X-Organisation-Id"),
            LastOwner => Problem::new(409, "last_owner", "Последний владелец", "В организации должен остаться хотя бы один владелец"),
            AlreadyMember => Problem::new(409, "already_member", "Вы уже участник", "Вы уже состоите в этой организации"),
            InvitationCodeMismatch => Problem::new(422, "invitation_code_mismatch", "Неверный код приглашения", "Приглашения с таким кодом для ваших телефона и почты нет или оно истекло")
                .field("code", "invitation_code_mismatch", "Проверьте код из сообщения"),
            InvitationAttemptsLimited { retry_after_secs } => Problem::new(429, "invitation_attempts_limited", "Слишком много попыток", "Код приглашения введён неверно слишком много раз. Попробуйте позже").retry_after(*retry_after_secs),
            DeliveryFailed(_) => Problem::new(503, "delivery_unavailable", "Не удалось отправить код", "Сервис отправки сообщений временно недоступен. Повторите попытку позже").retry_after(RETRY_AFTER_UNAVAILABLE_SECS),
            StoreUnavailable(_) => Problem::new(503, "service_unavailable", "Сервис временно недоступен", "Повторите попытку позже").retry_after(RETRY_AFTER_UNAVAILABLE_SECS),
            Internal(_) => Problem::new(500, "internal_error", "Внутренняя ошибка", "Что-то пошло не так. Мы уже разбираемся"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_its_own_code() {
        let refusals = [
            AppError::ResendTooEarly {
                retry_after_secs: 3,
            },
            AppError::DestinationRateLimited {
                retry_after_secs: 3,
            },
            AppError::ClientRateLimited {
                retry_after_secs: 3,
            },
            AppError::LookupRateLimited {
                retry_after_secs: 3,
            },
            AppError::InvitationLimit {
                retry_after_secs: 3,
            },
            AppError::RestorationLimit {
                retry_after_secs: 3,
            },
            AppError::RegistrationLimit {
                retry_after_secs: 3,
            },
        ];
        let codes: std::collections::HashSet<_> =
            refusals.iter().map(|e| e.problem().code).collect();
        assert_eq!(codes.len(), refusals.len());
        for r in &refusals {
            let p = r.problem();
            assert_eq!(p.status, 429);
            assert_eq!(p.retry_after_secs, Some(3));
        }
    }

    #[test]
    fn field_paths_are_json_pointers() {
        assert_eq!(
            FieldError::new("destination", "x", "y").field,
            "/destination"
        );
        assert_eq!(FieldError::new("/a/0", "x", "y").field, "/a/0");
    }
}
