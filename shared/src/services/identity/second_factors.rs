//! Second factors beyond the SMS code: the authentication apps and backup codes an
//! account keeps, their management (list, enrol and confirm an app, rename, remove,
//! issue backup codes, give the phone back its place), and the second step of a login by
//! an app's code or a backup code. The codes themselves are decided in [`super::factors`].

use super::factors::{self, AppCode};
use super::*;
use crate::domain::FactorId;

/// How long after a password recovery second factors change only with a session that
/// proved a second factor (a two-step login or a step-up code), not a password alone.
pub const RECOVERY_COOLING: Duration = Duration::from_secs(72 * 3600);
/// How long an enrolled app waits for its first code before it is forgotten.
pub const APP_ENROLMENT_SECS: i64 = 15 * 60;
/// How long a login waiting for an app's code or a backup code stays open.
pub const FACTOR_CHALLENGE_SECS: i64 = 5 * 60;
/// Authentication apps (confirmed or waiting for their first code) one account may have.
pub const MAX_APPS: usize = 5;
/// Longest name of an app, in characters.
pub const MAX_FACTOR_NAME_CHARS: usize = 40;
/// The id of the phone as a second factor in the factor list and its routes.
pub const SMS_FACTOR_ID: &str = "sms";
/// The id of the backup codes in the factor list and its routes.
pub const BACKUP_CODES_FACTOR_ID: &str = "backup_codes";

const FACTOR_ADDED_SUBJECT: &str = "Добавлен способ подтверждения входа";
const FACTOR_CHANGED_SUBJECT: &str = "Способы подтверждения входа изменены";

/// A second factor a login may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    Sms,
    App,
    BackupCode,
    Passkey,
}

impl SecondFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::App => "app",
            Self::BackupCode => "backup_code",
            Self::Passkey => "passkey",
        }
    }

    /// A choice from a request; 422 `invalid_second_factor` at `field` otherwise.
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        match raw {
            "sms" => Ok(Self::Sms),
            "app" => Ok(Self::App),
            "backup_code" => Ok(Self::BackupCode),
            "passkey" => Ok(Self::Passkey),
            _ => Err(FieldError::new(
                field,
                "invalid_second_factor",
                "Выберите sms, app, passkey или backup_code",
            )),
        }
    }
}

/// What the second step of a login waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeStep {
    /// The SMS code `code_id`, sent to the phone whose key is `destination_key`.
    Sms {
        code_id: CodeId,
        destination_key: String,
    },
    App,
    BackupCode,
    /// Not a second factor: the login used a one-time password given on paper, and
    /// waits for the new password that replaces it.
    PasswordChange,
    /// An assertion of one of the account's passkeys, for this WebAuthn state (JSON).
    Passkey {
        state: String,
    },
}

impl ChallengeStep {
    /// How a challenge without an SMS code is stored: the factor it waits for.
    pub fn stored_name(&self) -> &'static str {
        match self {
            Self::Sms { .. } => SecondFactor::Sms.as_str(),
            Self::App => SecondFactor::App.as_str(),
            Self::BackupCode => SecondFactor::BackupCode.as_str(),
            Self::PasswordChange => "password_change",
            Self::Passkey { .. } => SecondFactor::Passkey.as_str(),
        }
    }
}

/// An authentication app of an account, as stored.
#[derive(Debug, Clone)]
pub struct StoredApp {
    pub id: FactorId,
    pub name: String,
    /// The shared secret in base32; it never leaves the service after the enrolment.
    pub secret: Secret<String>,
    pub created_at: i64,
    /// Its first code was given: it is a factor. Until then it expires.
    pub confirmed: bool,
    /// The last time step whose code it accepted.
    pub last_step: Option<u64>,
    pub last_used_at: Option<i64>,
}

/// The account's backup codes, as their keyed hashes.
#[derive(Debug, Clone, Default)]
pub struct StoredBackupCodes {
    pub hashes: Vec<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Everything an account keeps about its apps and backup codes.
#[derive(Debug, Clone, Default)]
pub struct StoredFactors {
    pub apps: Vec<StoredApp>,
    pub backup_codes: Option<StoredBackupCodes>,
    pub passkeys: Vec<StoredPasskey>,
}

impl StoredFactors {
    fn confirmed_apps(&self) -> impl Iterator<Item = &StoredApp> {
        self.apps.iter().filter(|a| a.confirmed)
    }

    fn backup_codes_left(&self) -> usize {
        self.backup_codes.as_ref().map_or(0, |b| b.hashes.len())
    }
}

/// What a second step by a factor uses up, in the session's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorUse {
    /// The app accepted a code of `step`: only a later step will do next time.
    App { id: FactorId, step: u64 },
    /// The backup code kept under `hash` is spent.
    BackupCode { hash: String },
    /// The passkey's counter moves from `sign_count_before` (condition) to `sign_count`,
    /// with the credential as updated.
    Passkey {
        id: FactorId,
        sign_count_before: u32,
        sign_count: u32,
        credential: String,
    },
}

/// A change to the account's factors, written atomically with its event.
#[derive(Debug, Clone)]
pub enum FactorChange {
    /// A new app waiting for its first code (no event until it is confirmed).
    EnrolApp {
        app: StoredApp,
        expires_at: i64,
    },
    /// The app's first code was right: it becomes a factor.
    ConfirmApp {
        id: FactorId,
        step: u64,
    },
    RenameApp {
        id: FactorId,
        name: String,
    },
    RemoveApp {
        id: FactorId,
    },
    /// The phone becomes a second factor again.
    AddSms,
    RemoveSms,
    /// New backup codes replace any earlier ones.
    ReplaceBackupCodes {
        hashes: Vec<String>,
    },
    RemoveBackupCodes,
    /// A verified passkey becomes a factor; its credential id is claimed and the
    /// registration ceremony spent.
    AddPasskey {
        passkey: StoredPasskey,
        user_handle: String,
        ceremony_key: String,
    },
    RemovePasskey {
        id: FactorId,
        credential_id: String,
    },
}

/// A factor change to write for an account, with the event that logs it, at `now`.
#[derive(Debug, Clone, Copy)]
pub struct FactorWrite<'a> {
    pub account_id: &'a AccountId,
    pub change: &'a FactorChange,
    pub event: Option<&'a SecurityEvent>,
    pub now: i64,
}

/// Why the store refused a factor change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorRefusal {
    /// No such factor (or not in the state the change needs).
    Missing,
    /// It is the last factor and two-step login is on.
    Last,
    /// The passkey's credential id is registered already.
    Taken,
    /// The passkey's registration ceremony was spent or has expired.
    Ceremony,
}

/// One entry of the factor list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorView {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Backup codes not used yet.
    pub remaining: Option<usize>,
}

/// An app just enrolled: what the citizen's app is given, once.
pub struct EnrolledApp {
    pub id: FactorId,
    pub secret: Secret<String>,
    pub uri: Secret<String>,
    pub expires_at: i64,
}

/// A request to change the factors: who asks, from where, and when.
#[derive(Debug, Clone, Copy)]
pub struct FactorRequest<'a> {
    pub principal: &'a Principal,
    pub client: &'a Client,
    pub now: OffsetDateTime,
}

impl<'a> FactorRequest<'a> {
    pub fn new(principal: &'a Principal, client: &'a Client, now: OffsetDateTime) -> Self {
        Self {
            principal,
            client,
            now,
        }
    }

    fn now_s(&self) -> i64 {
        self.now.unix_timestamp()
    }
}

/// A factor a route names: the phone, the backup codes, or an app by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorRef {
    Sms,
    BackupCodes,
    App(FactorId),
}

impl FactorRef {
    /// The factor a path names; anything else names none (404 `factor_not_found`).
    pub fn parse(raw: &str) -> Result<Self, AppError> {
        match raw {
            SMS_FACTOR_ID => Ok(Self::Sms),
            BACKUP_CODES_FACTOR_ID => Ok(Self::BackupCodes),
            _ => crate::domain::requested(raw, "factor").map(Self::App),
        }
    }
}

/// A factor's name as given: in NFC, whitespace collapsed, 1–40 characters, nothing
/// invisible (`invalid_characters`).
pub fn factor_name(raw: &str) -> Result<String, FieldError> {
    let name = crate::domain::nfc(raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    crate::domain::refuse_invisible("name", &name)?;
    if name.is_empty() || name.chars().count() > MAX_FACTOR_NAME_CHARS {
        return Err(FieldError::new(
            "name",
            "invalid_length",
            "Название — от 1 до 40 символов",
        ));
    }
    Ok(name)
}

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    /// The key the wrong codes of the account's apps and backup codes are counted under.
    pub(super) fn factor_attempts_key(&self, account_id: &AccountId) -> String {
        self.hasher
            .identifier(Identifier::SecondFactor, &[account_id])
    }

    /// The second factors an account has, in the order a login offers them.
    pub(super) async fn available_factors(
        &self,
        account: &StoredAccount,
    ) -> Result<Vec<SecondFactor>, AppError> {
        let stored = self.store.load_factors(&account.id).await?;
        let mut available = Vec::new();
        if account.sms_factor {
            available.push(SecondFactor::Sms);
        }
        if stored.confirmed_apps().next().is_some() {
            available.push(SecondFactor::App);
        }
        if !stored.passkeys.is_empty() {
            available.push(SecondFactor::Passkey);
        }
        if stored.backup_codes_left() > 0 {
            available.push(SecondFactor::BackupCode);
        }
        Ok(available)
    }

    /// Opens a login's second step by an app or a backup code: nothing is sent, the
    /// challenge waits for the code.
    pub(super) async fn start_factor_step(
        &self,
        account: &StoredAccount,
        factor: SecondFactor,
        login_key: &str,
        foreign_computer: bool,
        now: OffsetDateTime,
    ) -> Result<IssuedChallenge, AppError> {
        let step = match factor {
            SecondFactor::App => ChallengeStep::App,
            SecondFactor::BackupCode => ChallengeStep::BackupCode,
            SecondFactor::Passkey => {
                return self
                    .start_passkey_step(account, login_key, foreign_computer, now)
                    .await
            }
            SecondFactor::Sms => return Err(AppError::FactorNotEnrolled),
        };
        let token = crypto::token(CHALLENGE_TOKEN_PREFIX)?;
        let expires_at = now.unix_timestamp() + FACTOR_CHALLENGE_SECS;
        let challenge = LoginChallenge {
            key: self
                .hasher
                .credential(Credential::LoginChallenge, &[token.expose()]),
            account_id: account.id.clone(),
            step,
            login_key: login_key.to_string(),
            foreign_computer,
            credentials_epoch: account.credentials_epoch,
            expires_at,
        };
        self.store.put_challenge(&challenge).await?;
        tracing::info!(account_id = %account.id, factor = factor.as_str(), "two-step login: waiting for a factor's code");
        Ok(IssuedChallenge {
            token,
            expires_at: at(expires_at),
            resend_available_at: now,
            second_factor: factor,
            available: Vec::new(),
            passkey_options: None,
        })
    }

    /// Checks an app's code or a backup code for a login's second step. Every attempt is
    /// counted on the account's factor counter before the code is checked, so parallel
    /// guesses get no more than the limit; a malformed code costs nothing.
    pub(super) async fn factor_use(
        &self,
        account_id: &AccountId,
        step: &ChallengeStep,
        code: &str,
        client: &Client,
        now_s: i64,
    ) -> Result<(FactorUse, CountedAttempt), AppError> {
        enum Typed {
            App(String),
            Backup(String),
        }
        let typed = match step {
            ChallengeStep::App => Typed::App(factors::app_code(code)?),
            ChallengeStep::BackupCode => {
                Typed::Backup(factors::normalise_backup_code(code).ok_or_else(|| {
                    invalid_field(
                        "code",
                        "invalid_code_format",
                        "Резервный код — 10 букв и цифр",
                    )
                })?)
            }
            ChallengeStep::Passkey { .. } => {
                return Err(invalid_field(
                    "credential",
                    "required",
                    "Подтвердите вход ключом доступа",
                ))
            }
            ChallengeStep::Sms { .. } | ChallengeStep::PasswordChange => {
                return Err(AppError::TwoStepChallengeInvalid)
            }
        };
        let key = self.factor_attempts_key(account_id);
        let mut counted = self.count_attempt(&key, client, false, now_s).await?;
        // A wrong code is a failed login of the account: logged, and the owner warned.
        counted.account_id = Some(account_id.clone());
        let stored = self.store.load_factors(account_id).await?;
        let found = match &typed {
            Typed::App(code) => {
                let mut found = None;
                for app in stored.confirmed_apps() {
                    let bytes = factors::app_secret_bytes(app.secret.expose())?;
                    if let AppCode::Accepted { step } =
                        factors::check_app_code(&bytes, code, now_s, app.last_step)?
                    {
                        found = Some(FactorUse::App {
                            id: app.id.clone(),
                            step,
                        });
                        break;
                    }
                }
                found
            }
            Typed::Backup(code) => {
                let kept = stored.backup_codes.map(|b| b.hashes).unwrap_or_default();
                factors::backup_code_lookups(&self.hasher, account_id, code)
                    .into_iter()
                    .find(|hash| kept.contains(hash))
                    .map(|hash| FactorUse::BackupCode { hash })
            }
        };
        match found {
            Some(used) => Ok((used, counted)),
            None => Err(
                match self.fail_attempt(&counted, true, client, now_s).await {
                    AppError::InvalidCredentials => AppError::SecondFactorRefused,
                    other => other,
                },
            ),
        }
    }

    // -------------------------------------------------------------- management

    /// The account's second factors: the phone (while it is one), each confirmed app,
    /// and the backup codes with how many are left.
    pub async fn factors(&self, principal: &Principal) -> Result<Vec<FactorView>, AppError> {
        let account = self.account(principal).await?;
        let stored = self.store.load_factors(&account.id).await?;
        let mut views = Vec::new();
        if account.sms_factor {
            views.push(FactorView {
                id: SMS_FACTOR_ID.to_string(),
                kind: "sms",
                name: masked_phone(&account.phone),
                created_at: account.created_at,
                last_used_at: None,
                remaining: None,
            });
        }
        for app in stored.confirmed_apps() {
            views.push(FactorView {
                id: app.id.to_string(),
                kind: "app",
                name: app.name.clone(),
                created_at: app.created_at,
                last_used_at: app.last_used_at,
                remaining: None,
            });
        }
        views.extend(stored.passkeys.iter().map(passkey_view));
        if let Some(codes) = &stored.backup_codes {
            views.push(FactorView {
                id: BACKUP_CODES_FACTOR_ID.to_string(),
                kind: "backup_codes",
                name: "Резервные коды".to_string(),
                created_at: codes.created_at,
                last_used_at: codes.last_used_at,
                remaining: Some(codes.hashes.len()),
            });
        }
        Ok(views)
    }

    /// Every factor change needs a fresh proof of presence; for
    /// [`RECOVERY_COOLING`] after a password recovery, that proof must have been a
    /// second factor (a two-step login or a step-up code), since whoever recovered the
    /// password may not be the owner.
    pub(super) async fn factor_change_allowed(
        &self,
        request: &FactorRequest<'_>,
    ) -> Result<StoredAccount, AppError> {
        request
            .principal
            .presence(request.now, self.limits.step_up_window)
            .require()?;
        let account = self.account(request.principal).await?;
        let now_s = request.now_s();
        let cooling_until = account
            .recovered_at
            .map_or(0, |at| at.saturating_add(secs(RECOVERY_COOLING)));
        if cooling_until > now_s {
            let session = self
                .store
                .get_session(&request.principal.session_id)
                .await?;
            let window = secs(self.limits.step_up_window);
            let factor_fresh = session
                .and_then(|s| s.factor_proven_at)
                .is_some_and(|at| (0..=window).contains(&(now_s - at)));
            if !factor_fresh {
                return Err(AppError::FactorsLockedAfterRecovery {
                    retry_after_secs: wait(cooling_until, now_s),
                });
            }
        }
        Ok(account)
    }

    /// Writes a factor change with its event, and tells the owner by e-mail.
    pub(super) async fn apply_factor_change(
        &self,
        account: &StoredAccount,
        change: &FactorChange,
        event_kind: Option<&'static str>,
        request: &FactorRequest<'_>,
    ) -> Result<(), AppError> {
        let now_s = request.now_s();
        let event = event_kind.map(|kind| self.event(&account.id, kind, request.client, now_s));
        let write = FactorWrite {
            account_id: &account.id,
            change,
            event: event.as_ref(),
            now: now_s,
        };
        match self.store.change_factors(&write).await? {
            Ok(()) => {}
            Err(FactorRefusal::Missing) => return Err(AppError::NotFound("factor")),
            Err(FactorRefusal::Last) => return Err(AppError::LastSecondFactor),
            Err(FactorRefusal::Taken) => return Err(AppError::PasskeyAlreadyRegistered),
            Err(FactorRefusal::Ceremony) => return Err(AppError::PasskeyCeremonyInvalid),
        }
        if let Some(kind) = event_kind {
            tracing::info!(account_id = %account.id, event = kind, "second factors changed");
            let (subject, text) = match kind {
                "factor_added" => (
                    FACTOR_ADDED_SUBJECT,
                    "К вашей учётной записи подключён новый способ подтверждения входа.",
                ),
                "backup_codes_issued" => (
                    FACTOR_CHANGED_SUBJECT,
                    "Для вашей учётной записи выпущены новые резервные коды; прежние больше \
                     не действуют.",
                ),
                _ => (
                    FACTOR_CHANGED_SUBJECT,
                    "Способы подтверждения входа в вашу учётную запись изменены.",
                ),
            };
            let text =
                format!("{text}\nЕсли это были не вы, смените пароль и завершите чужие сеансы.");
            self.notify_email(&account.id, &account.email, subject, &text)
                .await;
        }
        Ok(())
    }

    /// A change the account as it stands decides alone (rename, remove, the phone back):
    /// the presence and the cooling after a recovery are checked first, then `change` reads
    /// the account, and what it returns is written with the event `event_kind`. The simple
    /// routes share this order so none of them can skip the check.
    async fn change_factor(
        &self,
        request: &FactorRequest<'_>,
        event_kind: &'static str,
        change: impl FnOnce(&StoredAccount) -> Result<FactorChange, AppError>,
    ) -> Result<(), AppError> {
        let account = self.factor_change_allowed(request).await?;
        let change = change(&account)?;
        self.apply_factor_change(&account, &change, Some(event_kind), request)
            .await
    }

    /// Enrols an authentication app: a new secret, shown once, waiting for its first code.
    pub async fn enrol_app(
        &self,
        request: FactorRequest<'_>,
        name: Option<String>,
    ) -> Result<EnrolledApp, AppError> {
        let account = self.factor_change_allowed(&request).await?;
        let stored = self.store.load_factors(&account.id).await?;
        let now_s = request.now_s();
        if stored.apps.len() >= MAX_APPS {
            return Err(AppError::TooMany {
                what: "authentication apps",
                limit: MAX_APPS,
            });
        }
        let enrolment = factors::enrol_app(&account.id)?;
        let id = FactorId::new();
        let expires_at = now_s + APP_ENROLMENT_SECS;
        let app = StoredApp {
            id: id.clone(),
            name: name.unwrap_or_else(|| "Приложение".to_string()),
            secret: Secret::new(enrolment.secret_base32.expose().clone()),
            created_at: now_s,
            confirmed: false,
            last_step: None,
            last_used_at: None,
        };
        self.apply_factor_change(
            &account,
            &FactorChange::EnrolApp { app, expires_at },
            None,
            &request,
        )
        .await?;
        Ok(EnrolledApp {
            id,
            secret: enrolment.secret_base32,
            uri: enrolment.uri,
            expires_at,
        })
    }

    /// Confirms an enrolled app with its first code; from then on it is a second factor.
    /// The code is counted on the account's factor counter before it is checked.
    pub async fn confirm_app(
        &self,
        request: FactorRequest<'_>,
        id: &FactorId,
        code: &str,
    ) -> Result<FactorView, AppError> {
        let account = self.factor_change_allowed(&request).await?;
        let code = factors::app_code(code)?;
        let now_s = request.now_s();
        let stored = self.store.load_factors(&account.id).await?;
        let app = stored
            .apps
            .into_iter()
            .find(|a| a.id == *id && !a.confirmed)
            .ok_or(AppError::NotFound("factor"))?;
        let key = self.factor_attempts_key(&account.id);
        let mut counted = self
            .count_attempt(&key, request.client, false, now_s)
            .await?;
        counted.account_id = None;
        let bytes = factors::app_secret_bytes(app.secret.expose())?;
        let AppCode::Accepted { step } = factors::check_app_code(&bytes, &code, now_s, None)?
        else {
            return Err(
                match self
                    .fail_attempt(&counted, false, request.client, now_s)
                    .await
                {
                    AppError::InvalidCredentials => AppError::SecondFactorRefused,
                    other => other,
                },
            );
        };
        self.store
            .forgive_attempt(&counted.login_key, counted.client_window())
            .await?;
        self.apply_factor_change(
            &account,
            &FactorChange::ConfirmApp {
                id: id.clone(),
                step,
            },
            Some("factor_added"),
            &request,
        )
        .await?;
        Ok(FactorView {
            id: id.to_string(),
            kind: "app",
            name: app.name,
            created_at: app.created_at,
            last_used_at: Some(now_s),
            remaining: None,
        })
    }

    /// Renames an app.
    pub async fn rename_factor(
        &self,
        request: FactorRequest<'_>,
        factor: &FactorRef,
        name: String,
    ) -> Result<(), AppError> {
        self.change_factor(&request, "factor_renamed", |_| {
            let FactorRef::App(id) = factor else {
                return Err(invalid_field(
                    "name",
                    "not_renamable",
                    "Переименовать можно только приложение",
                ));
            };
            Ok(FactorChange::RenameApp {
                id: id.clone(),
                name,
            })
        })
        .await
    }

    /// Removes a factor; the last one cannot go while two-step login is on.
    pub async fn remove_factor(
        &self,
        request: FactorRequest<'_>,
        factor: &FactorRef,
    ) -> Result<(), AppError> {
        // A passkey's id is an app's kind of id; its credential id is released with it.
        let passkey = match factor {
            FactorRef::App(id) => self.passkey_of(&request, id).await?,
            _ => None,
        };
        self.change_factor(&request, "factor_removed", |account| match factor {
            FactorRef::Sms if !account.sms_factor => Err(AppError::NotFound("factor")),
            FactorRef::Sms => Ok(FactorChange::RemoveSms),
            FactorRef::BackupCodes => Ok(FactorChange::RemoveBackupCodes),
            FactorRef::App(id) => Ok(match passkey {
                Some(credential_id) => FactorChange::RemovePasskey {
                    id: id.clone(),
                    credential_id,
                },
                None => FactorChange::RemoveApp { id: id.clone() },
            }),
        })
        .await
    }

    /// Makes the account's phone a second factor again.
    pub async fn add_sms_factor(&self, request: FactorRequest<'_>) -> Result<(), AppError> {
        self.change_factor(&request, "factor_added", |account| {
            if account.sms_factor {
                return Err(AppError::AlreadyExists("factor"));
            }
            Ok(FactorChange::AddSms)
        })
        .await
    }

    /// Ten new backup codes, shown once; any earlier ones stop working.
    pub async fn issue_backup_codes(
        &self,
        request: FactorRequest<'_>,
    ) -> Result<Vec<Secret<String>>, AppError> {
        let account = self.factor_change_allowed(&request).await?;
        let codes = factors::new_backup_codes()?;
        let mut hashes = Vec::with_capacity(codes.len());
        for code in &codes {
            let normalised = factors::normalise_backup_code(code.expose())
                .ok_or_else(|| AppError::Internal("backup code unreadable".into()))?;
            hashes.push(factors::backup_code_hash(
                &self.hasher,
                &account.id,
                &normalised,
            ));
        }
        self.apply_factor_change(
            &account,
            &FactorChange::ReplaceBackupCodes { hashes },
            Some("backup_codes_issued"),
            &request,
        )
        .await?;
        Ok(codes)
    }
}

/// A phone as the factor list names it: `+7 *** ***-**-50`.
fn masked_phone(phone: &str) -> String {
    let tail: String = phone
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("SMS на +7 *** ***-**-{tail}")
}

#[cfg(test)]
mod tests;
