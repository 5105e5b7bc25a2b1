//! Passkeys and security keys (WebAuthn, with the `webauthn-rs` crate): registering one as
//! a second factor, the second step of a login by one, and the passwordless login with a
//! discoverable one.
//!
//! Every ceremony is two calls: the options, whose state (the challenge, and for a login
//! the credentials allowed) is kept server-side under a random ceremony token, and the
//! finish, which checks the authenticator's answer against that state and spends it in
//! the same transaction as what it proves. The library neither expires nor spends a
//! state: the item's `expires_at` and the transaction's conditional delete do.

use std::sync::Arc;

use base64::Engine as _;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::*;
use crate::config::{ConfigError, Env};
use crate::domain::FactorId;

/// How long a ceremony waits for the authenticator (the options' own timeout).
pub const PASSKEY_CEREMONY_SECS: i64 = 5 * 60;
/// Passkeys one account may register.
pub const MAX_PASSKEYS: usize = 10;
/// Prefix of ceremony tokens (see [`crate::redact::TOKEN_PREFIXES`]).
pub const CEREMONY_TOKEN_PREFIX: &str = "wc_";
/// Unfinished passwordless ceremonies one client address may have per login window. They
/// are counted apart from the address's failed logins: a login page that opens a ceremony
/// for its autofill on every visit must not lock an office's shared address out of
/// password logins.
pub const PASSWORDLESS_PER_CLIENT: u32 = 300;
/// The relying party's name that authenticators show.
const RP_NAME: &str = "Госуслуги";

/// The relying party of a stage: its id (the portal's registrable domain) and the web
/// origins answers may come from. Built once per cold start.
#[derive(Clone)]
pub struct PasskeyRp {
    webauthn: Arc<Webauthn>,
}

impl std::fmt::Debug for PasskeyRp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeyRp")
            .field("origins", &self.webauthn.get_allowed_origins())
            .finish()
    }
}

impl PasskeyRp {
    /// The relying party `rp_id` for the origins listed (the first is the main one).
    pub fn new(rp_id: &str, origins: &[url::Url]) -> Result<Self, String> {
        let (first, more) = origins
            .split_first()
            .ok_or_else(|| "no origin".to_string())?;
        let mut builder = WebauthnBuilder::new(rp_id, first)
            .map_err(|e| e.to_string())?
            .rp_name(RP_NAME)
            .timeout(Duration::from_secs(secs_u64(PASSKEY_CEREMONY_SECS)));
        for origin in more {
            builder = builder.append_allowed_origin(origin);
        }
        let webauthn = builder.build().map_err(|e| e.to_string())?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
        })
    }

    /// `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGINS` (comma-separated), both or neither; `None`
    /// for a function that serves no passkeys.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Option<Self>, ConfigError> {
        let (Some(rp_id), Some(origins)) = (
            env.optional("WEBAUTHN_RP_ID"),
            env.optional("WEBAUTHN_ORIGINS"),
        ) else {
            return Ok(None);
        };
        let invalid = |name: &'static str, reason: String| ConfigError::Invalid { name, reason };
        let origins = origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| url::Url::parse(o).map_err(|e| invalid("WEBAUTHN_ORIGINS", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(rp_id.trim(), &origins)
            .map(Some)
            .map_err(|reason| invalid("WEBAUTHN_RP_ID", reason))
    }
}

fn secs_u64(s: i64) -> u64 {
    u64::try_from(s).unwrap_or(0)
}

/// What a ceremony's state is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyPurpose {
    /// Registering a passkey of the signed-in account.
    Registration,
    /// A passwordless login: no account is known until the answer names one.
    Login,
}

impl CeremonyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Login => "login",
        }
    }
}

/// A ceremony waiting for the authenticator's answer, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyCeremony {
    /// Keyed hash of the ceremony token handed to the client.
    pub key: String,
    pub purpose: CeremonyPurpose,
    /// The account registering (none for a passwordless login).
    pub account_id: Option<AccountId>,
    /// The library's state, serialised (JSON).
    pub state: String,
    pub expires_at: i64,
}

/// A passkey of an account, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    pub id: FactorId,
    pub name: String,
    /// The library's `Passkey`, serialised (JSON): the credential id, the public key,
    /// the counter and the flags.
    pub credential: String,
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The authenticator's signature counter last accepted (0: it keeps none).
    pub sign_count: u32,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// Whose a credential id is: the index a passwordless login reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyOwner {
    pub account_id: AccountId,
    pub factor_id: FactorId,
    /// The account's user handle the credential was registered with.
    pub user_handle: String,
}

/// A ceremony opened: the options for `navigator.credentials`, and the token that finishes
/// it.
pub struct PasskeyOptions {
    pub ceremony: Secret<String>,
    pub options: serde_json::Value,
    pub expires_at: OffsetDateTime,
}

/// A credential id as stored and indexed: base64url, no padding.
pub fn credential_id_text(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn credential_refused() -> AppError {
    invalid_field(
        "credential",
        "invalid_credential",
        "Ответ ключа доступа не распознан",
    )
}

/// The authenticator's answer as the library reads it; 422 `invalid_credential` at
/// `/credential` when it is no WebAuthn answer at all.
fn answer<T: serde::de::DeserializeOwned>(credential: &serde_json::Value) -> Result<T, AppError> {
    serde_json::from_value(credential.clone()).map_err(|_| credential_refused())
}

fn state_of<T: serde::de::DeserializeOwned>(state: &str) -> Result<T, AppError> {
    serde_json::from_str(state).map_err(|e| AppError::Internal(format!("passkey state: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, AppError> {
    serde_json::to_string(value).map_err(|e| AppError::Internal(format!("passkey json: {e}")))
}

fn to_value<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, AppError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(format!("passkey json: {e}")))
}

/// The counter a serialised `Passkey` holds.
fn stored_counter(passkey: &Passkey) -> Result<u32, AppError> {
    let value = to_value(passkey)?;
    Ok(value["cred"]["counter"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(0))
}

/// A passkey in the account's factor list.
pub(super) fn passkey_view(p: &StoredPasskey) -> FactorView {
    FactorView {
        id: p.id.to_string(),
        kind: "passkey",
        name: p.name.clone(),
        created_at: p.created_at,
        last_used_at: p.last_used_at,
        remaining: None,
    }
}

/// Whether an assertion's counter proves a copy of the authenticator: when either count
/// is kept (not 0), each use must count higher than the last one accepted.
pub fn counter_went_back(stored: u32, asserted: u32) -> bool {
    (stored != 0 || asserted != 0) && asserted <= stored
}

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    fn rp(&self) -> Result<&Webauthn, AppError> {
        self.passkeys
            .as_ref()
            .map(|rp| rp.webauthn.as_ref())
            .ok_or_else(|| AppError::Internal("WEBAUTHN_RP_ID/WEBAUTHN_ORIGINS not set".into()))
    }

    /// The key passwordless ceremonies of a client address are counted under.
    fn ceremony_client_key(&self, client: &Client) -> String {
        self.hasher
            .identifier(Identifier::LoginClient, &[&client.ip, "passkey-ceremony"])
    }

    fn ceremony_key(&self, token: &str) -> String {
        self.hasher
            .credential(Credential::PasskeyCeremony, &[token])
    }

    /// A ceremony token's live ceremony of `purpose`; any other token is
    /// [`AppError::PasskeyCeremonyInvalid`].
    async fn live_ceremony(
        &self,
        token: &Secret<String>,
        purpose: CeremonyPurpose,
        now_s: i64,
    ) -> Result<PasskeyCeremony, AppError> {
        let token = token.expose();
        if !token.starts_with(CEREMONY_TOKEN_PREFIX) || token.chars().count() > 128 {
            return Err(AppError::PasskeyCeremonyInvalid);
        }
        for key in self
            .hasher
            .credential_lookups(Credential::PasskeyCeremony, &[token])
        {
            if let Some(found) = self.store.get_passkey_ceremony(&key).await? {
                return if found.purpose == purpose && found.expires_at > now_s {
                    Ok(found)
                } else {
                    Err(AppError::PasskeyCeremonyInvalid)
                };
            }
        }
        Err(AppError::PasskeyCeremonyInvalid)
    }

    async fn open_ceremony(
        &self,
        purpose: CeremonyPurpose,
        account_id: Option<&AccountId>,
        state: String,
        options: serde_json::Value,
        now_s: i64,
    ) -> Result<PasskeyOptions, AppError> {
        let token = crypto::token(CEREMONY_TOKEN_PREFIX)?;
        let expires_at = now_s + PASSKEY_CEREMONY_SECS;
        self.store
            .put_passkey_ceremony(&PasskeyCeremony {
                key: self.ceremony_key(token.expose()),
                purpose,
                account_id: account_id.cloned(),
                state,
                expires_at,
            })
            .await?;
        Ok(PasskeyOptions {
            ceremony: token,
            options,
            expires_at: at(expires_at),
        })
    }

    /// The credential id of the caller's passkey `id`, if `id` is one of their passkeys.
    pub(super) async fn passkey_of(
        &self,
        request: &FactorRequest<'_>,
        id: &FactorId,
    ) -> Result<Option<String>, AppError> {
        let stored = self
            .store
            .load_factors(&request.principal.account_id)
            .await?;
        Ok(stored
            .passkeys
            .into_iter()
            .find(|p| p.id == *id)
            .map(|p| p.credential_id))
    }

    // -------------------------------------------------------------- registration

    /// Opens the registration of a passkey: creation options that exclude the account's
    /// passkeys, under the account's user handle (random, not the account id).
    pub async fn start_passkey_registration(
        &self,
        request: FactorRequest<'_>,
    ) -> Result<PasskeyOptions, AppError> {
        let rp = self.rp()?;
        let account = self.factor_change_allowed(&request).await?;
        let stored = self.store.load_factors(&account.id).await?;
        if stored.passkeys.len() >= MAX_PASSKEYS {
            return Err(AppError::TooMany {
                what: "passkeys",
                limit: MAX_PASSKEYS,
            });
        }
        let mut exclude = Vec::with_capacity(stored.passkeys.len());
        for p in &stored.passkeys {
            exclude.push(state_of::<Passkey>(&p.credential)?.cred_id().clone());
        }
        let handle = self.store.passkey_user_handle(&account.id).await?;
        let handle = uuid::Uuid::parse_str(&handle)
            .map_err(|_| AppError::Internal("stored user handle unreadable".into()))?;
        // The name an authenticator lists the passkey under: the account, not a contact.
        let label = factors::app_label(&account.id);
        let (options, state) = rp
            .start_passkey_registration(
                handle,
                &label,
                &format!("{} {}", account.first_name, account.last_name),
                (!exclude.is_empty()).then_some(exclude),
            )
            .map_err(|e| AppError::Internal(format!("passkey options: {e}")))?;
        let state = to_json::<PasskeyRegistration>(&state)?;
        self.open_ceremony(
            CeremonyPurpose::Registration,
            Some(&account.id),
            state,
            to_value(&options)?,
            request.now.unix_timestamp(),
        )
        .await
    }

    /// Finishes a registration with the authenticator's attestation: the passkey becomes a
    /// factor, and the ceremony is spent in the same transaction.
    pub async fn finish_passkey_registration(
        &self,
        request: FactorRequest<'_>,
        ceremony: &Secret<String>,
        credential: &serde_json::Value,
        name: Option<String>,
    ) -> Result<FactorView, AppError> {
        let rp = self.rp()?;
        let account = self.factor_change_allowed(&request).await?;
        let response: RegisterPublicKeyCredential = answer(credential)?;
        let now_s = request.now.unix_timestamp();
        let ceremony = self
            .live_ceremony(ceremony, CeremonyPurpose::Registration, now_s)
            .await?;
        if ceremony.account_id.as_ref() != Some(&account.id) {
            return Err(AppError::PasskeyCeremonyInvalid);
        }
        let state: PasskeyRegistration = state_of(&ceremony.state)?;
        let passkey = rp
            .finish_passkey_registration(&response, &state)
            .map_err(|e| {
                tracing::info!(account_id = %account.id, error = %e, "passkey registration refused");
                AppError::PasskeyRefused
            })?;
        let handle = self.store.passkey_user_handle(&account.id).await?;
        let stored = StoredPasskey {
            id: FactorId::new(),
            name: name.unwrap_or_else(|| "Ключ доступа".to_string()),
            credential: to_json(&passkey)?,
            credential_id: credential_id_text(passkey.cred_id().as_ref()),
            sign_count: stored_counter(&passkey)?,
            created_at: now_s,
            last_used_at: None,
        };
        let view = passkey_view(&stored);
        self.apply_factor_change(
            &account,
            &FactorChange::AddPasskey {
                passkey: stored,
                user_handle: handle,
                ceremony_key: ceremony.key,
            },
            Some("factor_added"),
            &request,
        )
        .await?;
        Ok(view)
    }

    // -------------------------------------------------------------- second step

    /// Opens a login's second step by a passkey: request options that allow the account's
    /// passkeys, their state kept with the challenge.
    pub(super) async fn start_passkey_step(
        &self,
        account: &StoredAccount,
        login_key: &str,
        foreign_computer: bool,
        now: OffsetDateTime,
    ) -> Result<IssuedChallenge, AppError> {
        let rp = self.rp()?;
        let stored = self.store.load_factors(&account.id).await?;
        let mut allowed = Vec::with_capacity(stored.passkeys.len());
        for p in &stored.passkeys {
            allowed.push(state_of::<Passkey>(&p.credential)?);
        }
        let (options, state) = rp
            .start_passkey_authentication(&allowed)
            .map_err(|_| AppError::FactorNotEnrolled)?;
        let token = crypto::token(CHALLENGE_TOKEN_PREFIX)?;
        let expires_at = now.unix_timestamp() + PASSKEY_CEREMONY_SECS;
        let challenge = LoginChallenge {
            key: self
                .hasher
                .credential(Credential::LoginChallenge, &[token.expose()]),
            account_id: account.id.clone(),
            step: ChallengeStep::Passkey {
                state: to_json::<PasskeyAuthentication>(&state)?,
            },
            login_key: login_key.to_string(),
            foreign_computer,
            credentials_epoch: account.credentials_epoch,
            expires_at,
        };
        self.store.put_challenge(&challenge).await?;
        tracing::info!(account_id = %account.id, "two-step login: waiting for a passkey");
        Ok(IssuedChallenge {
            token,
            expires_at: at(expires_at),
            resend_available_at: now,
            second_factor: SecondFactor::Passkey,
            available: Vec::new(),
            passkey_options: Some(to_value(&options)?),
        })
    }

    /// Finishes a two-step login with a passkey's assertion. The attempt is counted on the
    /// account's factor counter first, as a code's is; the challenge, the passkey's counter
    /// and the session change in one transaction, so an assertion opens one session.
    pub async fn complete_two_step_passkey(
        &self,
        challenge_token: &Secret<String>,
        credential: &serde_json::Value,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<IssuedSession, AppError> {
        let rp = self.rp()?;
        let now_s = now.unix_timestamp();
        let challenge = self.live_challenge(challenge_token, now_s).await?;
        let ChallengeStep::Passkey { state } = &challenge.step else {
            return Err(invalid_field(
                "code",
                "required",
                "Введите код: этот вход ждёт код, а не ключ доступа",
            ));
        };
        let response: PublicKeyCredential = answer(credential)?;
        let key = self.factor_attempts_key(&challenge.account_id);
        let mut counted = self.count_attempt(&key, client, false, now_s).await?;
        counted.account_id = Some(challenge.account_id.clone());
        let state: PasskeyAuthentication = state_of(state)?;
        let verified = rp.finish_passkey_authentication(&response, &state);
        let used = match verified {
            Ok(result) => {
                self.passkey_use(&challenge.account_id, &result, client, now_s)
                    .await?
            }
            Err(e) => {
                self.passkey_failure(&challenge.account_id, &e, client, now_s)
                    .await?;
                None
            }
        };
        let Some(used) = used else {
            return Err(
                match self.fail_attempt(&counted, true, client, now_s).await {
                    AppError::InvalidCredentials => AppError::PasskeyAssertionRefused,
                    other => other,
                },
            );
        };
        let session = self
            .finish_two_step(&challenge, client, now_s, None, Some(&used))
            .await?;
        self.store
            .forgive_attempt(&counted.login_key, counted.client_window())
            .await?;
        Ok(session)
    }

    /// What a verified assertion uses up: the passkey's counter moves to the assertion's
    /// (on the condition that it is still the one read). `None` when the credential is
    /// not (any more) the account's, or its counter went back: a copy of it.
    async fn passkey_use(
        &self,
        account_id: &AccountId,
        result: &AuthenticationResult,
        client: &Client,
        now_s: i64,
    ) -> Result<Option<FactorUse>, AppError> {
        let id = credential_id_text(result.cred_id().as_ref());
        let stored = self.store.load_factors(account_id).await?;
        let Some(found) = stored.passkeys.into_iter().find(|p| p.credential_id == id) else {
            return Ok(None);
        };
        // The state holds the credential as it was when the login began; another login
        // may have moved the counter since, so the stored one is the one to beat.
        if counter_went_back(found.sign_count, result.counter()) {
            self.clone_suspected(account_id, client, now_s).await?;
            return Ok(None);
        }
        let mut passkey: Passkey = state_of(&found.credential)?;
        passkey.update_credential(result);
        Ok(Some(FactorUse::Passkey {
            id: found.id,
            sign_count_before: found.sign_count,
            sign_count: result.counter().max(found.sign_count),
            credential: to_json(&passkey)?,
        }))
    }

    /// A refused assertion: the library's verdict, logged; a counter that went back is a
    /// security event of the account.
    async fn passkey_failure(
        &self,
        account_id: &AccountId,
        error: &WebauthnError,
        client: &Client,
        now_s: i64,
    ) -> Result<(), AppError> {
        tracing::info!(%account_id, error = %error, "passkey assertion refused");
        if matches!(error, WebauthnError::CredentialPossibleCompromise) {
            self.clone_suspected(account_id, client, now_s).await?;
        }
        Ok(())
    }

    async fn clone_suspected(
        &self,
        account_id: &AccountId,
        client: &Client,
        now_s: i64,
    ) -> Result<(), AppError> {
        tracing::warn!(%account_id, "passkey counter went back: a copy of the authenticator");
        let event = self.event(account_id, "passkey_clone_suspected", client, now_s);
        self.store.put_event(&event).await?;
        Ok(())
    }

    // -------------------------------------------------------------- passwordless

    /// Opens a passwordless login: options without an allow-list (the authenticator
    /// offers its discoverable credentials for this relying party). The ceremony holds
    /// only the challenge. Counted per client address and login window (a counter of its
    /// own, not the failed logins'), and given back when the login succeeds, so an address
    /// opens no more than [`PASSWORDLESS_PER_CLIENT`] unfinished ones.
    pub async fn start_passwordless(
        &self,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<PasskeyOptions, AppError> {
        let rp = self.rp()?;
        let now_s = now.unix_timestamp();
        let client_key = self.ceremony_client_key(client);
        let start = self.window_start(now_s);
        let window = ClientWindow {
            key: &client_key,
            start,
            end: start + secs(self.limits.client_failure_window),
        };
        if !self
            .store
            .count_client_attempt(window, PASSWORDLESS_PER_CLIENT)
            .await?
        {
            metrics::emit(Metric::LoginsThrottled);
            return Err(AppError::LoginClientLimited {
                retry_after_secs: wait(window.end, now_s),
            });
        }
        let (options, state) = rp
            .start_discoverable_authentication()
            .map_err(|e| AppError::Internal(format!("passkey options: {e}")))?;
        let mut options = to_value(&options)?;
        // A "sign in with a passkey" button, not the autofill of a login field: the
        // client may ask for conditional mediation itself.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let state = to_json::<DiscoverableAuthentication>(&state)?;
        self.open_ceremony(CeremonyPurpose::Login, None, state, options, now_s)
            .await
    }

    /// Finishes a passwordless login: the answer's credential id finds the account, its
    /// user handle must be the one the credential was registered with, and the signature
    /// is checked. A credential nobody has answers exactly as a wrong signature does (401
    /// `invalid_credentials`). The session has proved a second factor (possession and
    /// user verification).
    pub async fn finish_passwordless(
        &self,
        ceremony: &Secret<String>,
        credential: &serde_json::Value,
        foreign_computer: bool,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<IssuedSession, AppError> {
        let rp = self.rp()?;
        let now_s = now.unix_timestamp();
        let response: PublicKeyCredential = answer(credential)?;
        let ceremony = self
            .live_ceremony(ceremony, CeremonyPurpose::Login, now_s)
            .await?;
        let (handle, cred_id) = rp
            .identify_discoverable_authentication(&response)
            .map_err(|_| AppError::InvalidCredentials)?;
        let owner = self
            .store
            .find_passkey(&credential_id_text(cred_id))
            .await?
            .filter(|o| o.user_handle == handle.to_string())
            .ok_or(AppError::InvalidCredentials)?;
        let stored = self.store.load_factors(&owner.account_id).await?;
        let found = stored
            .passkeys
            .into_iter()
            .find(|p| p.id == owner.factor_id)
            .ok_or(AppError::InvalidCredentials)?;
        let account = self
            .store
            .get_account(Some(&owner.account_id))
            .await?
            .ok_or(AppError::InvalidCredentials)?;
        // A passkey added before the password was last recovered (or access restored at
        // a service centre) may be whoever took the account over: without the password
        // it opens nothing any more. The owner registers a new one.
        if account
            .recovered_at
            .is_some_and(|at| found.created_at <= at)
        {
            return Err(AppError::InvalidCredentials);
        }
        let passkey: Passkey = state_of(&found.credential)?;
        let state: DiscoverableAuthentication = state_of(&ceremony.state)?;
        let result = match rp.finish_discoverable_authentication_v2(&response, state, &passkey) {
            Ok(result) if result.user_verified() => result,
            Ok(_) => return Err(AppError::InvalidCredentials),
            Err(e) => {
                self.passkey_failure(&owner.account_id, &e, client, now_s)
                    .await?;
                return Err(AppError::InvalidCredentials);
            }
        };
        let used = self
            .passkey_use(&owner.account_id, &result, client, now_s)
            .await?
            .ok_or(AppError::InvalidCredentials)?;
        let client_key = self.ceremony_client_key(client);
        let start = self.window_start(now_s);
        let login_key = self.factor_attempts_key(&account.id);
        let session = self
            .open_session(
                &account,
                foreign_computer,
                ProvenLogin {
                    key: &login_key,
                    // The ceremony's count on the address is given back.
                    client: Some(ClientWindow {
                        key: &client_key,
                        start,
                        end: start + secs(self.limits.client_failure_window),
                    }),
                },
                client,
                now_s,
                Some(TwoStepProof {
                    challenge_key: None,
                    ceremony_key: Some(&ceremony.key),
                    token: None,
                    factor_use: Some(&used),
                    second_factor: true,
                }),
            )
            .await
            .map_err(|e| match e {
                // The ceremony or the counter was spent meanwhile by another answer.
                AppError::TwoStepChallengeInvalid => AppError::PasskeyCeremonyInvalid,
                other => other,
            })?;
        tracing::info!(account_id = %account.id, "passwordless login with a passkey");
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<url::Url> {
        list.iter().map(|o| url::Url::parse(o).unwrap()).collect()
    }

    #[test]
    fn the_relying_party_takes_its_stage_settings() {
        assert!(PasskeyRp::new("localhost", &origins(&["http://localhost:3000"])).is_ok());
        assert!(PasskeyRp::new(
            "uslugi.example.ru",
            &origins(&["https://uslugi.example.ru", "https://m.uslugi.example.ru"])
        )
        .is_ok());
        // An origin outside the relying party's domain is refused at cold start.
        assert!(PasskeyRp::new("uslugi.example.ru", &origins(&["https://evil.example"])).is_err());
        assert!(PasskeyRp::new("localhost", &[]).is_err());
    }

    #[test]
    fn settings_come_from_the_environment_both_or_neither() {
        let read = |vars: &'static [(&'static str, &'static str)]| {
            let env = Env(move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            });
            PasskeyRp::from_env(&env)
        };
        assert!(read(&[]).unwrap().is_none());
        assert!(read(&[("WEBAUTHN_RP_ID", "localhost")]).unwrap().is_none());
        let rp = read(&[
            ("WEBAUTHN_RP_ID", "localhost"),
            (
                "WEBAUTHN_ORIGINS",
                "http://localhost:3000, http://localhost:8080",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(rp.webauthn.get_allowed_origins().len(), 2);
        assert!(matches!(
            read(&[
                ("WEBAUTHN_RP_ID", "localhost"),
                ("WEBAUTHN_ORIGINS", "not a url")
            ]),
            Err(ConfigError::Invalid {
                name: "WEBAUTHN_ORIGINS",
                ..
            })
        ));
    }

    #[test]
    fn a_counter_that_does_not_move_up_is_a_copy() {
        // Synced passkeys keep no counter: nothing to compare.
        assert!(!counter_went_back(0, 0));
        assert!(!counter_went_back(0, 1));
        assert!(!counter_went_back(4, 5));
        assert!(counter_went_back(5, 5));
        assert!(counter_went_back(5, 3));
        // A counter that was kept and now reads 0 went back too.
        assert!(counter_went_back(5, 0));
    }

    #[test]
    fn the_options_of_a_passwordless_login_carry_only_a_challenge() {
        let rp = PasskeyRp::new("localhost", &origins(&["http://localhost:3000"])).unwrap();
        let (options, state) = rp.webauthn.start_discoverable_authentication().unwrap();
        let options = serde_json::to_value(&options).unwrap();
        assert!(options["publicKey"]["challenge"].is_string());
        assert_eq!(options["publicKey"]["rpId"], "localhost");
        let state = serde_json::to_string(&state).unwrap();
        assert!(state.len() < 1024, "{state}");
    }

    #[test]
    fn credential_ids_are_base64url_without_padding() {
        assert_eq!(credential_id_text(&[0xfb, 0xff]), "-_8");
    }
}
