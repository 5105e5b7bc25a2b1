//! What the identity service keeps: the store behind accounts, logins, sessions, login
//! failures and the security log.

use super::*;

/// The store also keeps the account's inbox, where security alerts are kept
/// ([`crate::services::inbox`]): every identity store is an inbox store.
#[trait_variant::make(Send)]
pub trait IdentityStore: InboxStore {
    /// Writes the account, claims its logins and consumes the tokens, all or nothing.
    /// `Ok(Err(..))` lists what refused the transaction (by index into `logins`/`tokens`).
    async fn create_account(
        &self,
        creation: &AccountCreation<'_>,
        now: i64,
    ) -> Result<Result<(), Vec<RegistrationRefusal>>, StoreError>;

    /// The account a login key points to, its failure counter, and the client's
    /// failures in the current window and the one before it.
    async fn load_login_state(
        &self,
        login_key: &str,
        client: &ClientWindow<'_>,
    ) -> Result<LoginState, StoreError>;

    /// The account; with `None` it reads a key that cannot exist, so that an unknown
    /// login costs the same round trip as a known one.
    async fn get_account(
        &self,
        id: Option<&AccountId>,
    ) -> Result<Option<StoredAccount>, StoreError>;

    /// Counts an attempt on the client's window and on the login's failures (as pending),
    /// each with a condition that holds only under its limit, so that parallel attempts
    /// cannot pass it. An attempt the login refuses is given back to the client.
    async fn count_attempt(
        &self,
        attempt: &Attempt<'_>,
        now: i64,
    ) -> Result<AttemptCount, StoreError>;

    /// Marks a counted attempt whose secret was wrong as decided: it stays among the
    /// login's failures and is no longer pending. Nothing when the count was cleared
    /// meanwhile (a right secret in parallel).
    async fn settle_failure(&self, login_key: &str) -> Result<(), StoreError>;

    /// Takes a counted attempt back after its secret proved right: the login's failures
    /// are cleared and the client's attempt is given back.
    async fn forgive_attempt(
        &self,
        login_key: &str,
        client: ClientWindow<'_>,
    ) -> Result<(), StoreError>;

    /// Logs a security event on its own.
    async fn put_event(&self, event: &SecurityEvent) -> Result<(), StoreError>;

    /// Creates the session, clears the login's failures, gives the client's attempt back
    /// when asked, logs the event, and updates the known devices and consumes a two-step
    /// challenge when asked, atomically.
    /// `Ok(false)`: the challenge or token to consume was already gone.
    async fn create_session(&self, write: &SessionWrite<'_>, now: i64) -> Result<bool, StoreError>;

    /// The account's authentication apps and backup codes.
    async fn load_factors(&self, account_id: &AccountId) -> Result<StoredFactors, StoreError>;

    /// Writes a change to the account's second factors and logs its event, atomically;
    /// `Ok(Err(..))` says why its conditions refused it.
    async fn change_factors(
        &self,
        write: &FactorWrite<'_>,
    ) -> Result<Result<(), FactorRefusal>, StoreError>;

    async fn put_challenge(&self, challenge: &LoginChallenge) -> Result<(), StoreError>;

    /// The account's WebAuthn user handle (a random UUID), made on first use.
    async fn passkey_user_handle(&self, account_id: &AccountId) -> Result<String, StoreError>;

    async fn put_passkey_ceremony(&self, ceremony: &PasskeyCeremony) -> Result<(), StoreError>;

    async fn get_passkey_ceremony(&self, key: &str) -> Result<Option<PasskeyCeremony>, StoreError>;

    /// Whose a credential id (base64url) is.
    async fn find_passkey(&self, credential_id: &str) -> Result<Option<PasskeyOwner>, StoreError>;

    /// Counts an attempt on the client's window alone, if it is under `limit`; `false`
    /// when the window is full.
    async fn count_client_attempt(
        &self,
        client: ClientWindow<'_>,
        limit: u32,
    ) -> Result<bool, StoreError>;

    async fn get_challenge(&self, key: &str) -> Result<Option<LoginChallenge>, StoreError>;

    async fn update_security_settings(
        &self,
        account_id: &AccountId,
        settings: SecuritySettings,
        events: &[SecurityEvent],
    ) -> Result<(), StoreError>;

    async fn get_session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;

    /// Moves the idle deadline; a session deleted meanwhile stays deleted.
    async fn touch_session(
        &self,
        id: &SessionId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;

    async fn list_sessions(&self, account_id: &AccountId) -> Result<Vec<Session>, StoreError>;

    /// Deletes a session of this account and logs the event; `false` if there was none.
    async fn delete_session(
        &self,
        id: &SessionId,
        account_id: &AccountId,
        event: &SecurityEvent,
    ) -> Result<bool, StoreError>;

    async fn list_security_events(
        &self,
        account_id: &AccountId,
        limit: i32,
    ) -> Result<Vec<StoredSecurityEvent>, StoreError>;

    /// The account a login key points to (two consistent reads).
    async fn find_account(&self, login_key: &str) -> Result<Option<StoredAccount>, StoreError>;

    /// Sets a new password hash and the next credentials epoch, ends the listed
    /// sessions and logs the event; with a token, consumes it in the same transaction
    /// (`Ok(false)`: the token was refused, or the account changed meanwhile).
    async fn replace_password(
        &self,
        change: &PasswordChange<'_>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Records that the session proved presence now, consuming the step-up code's
    /// verification token and logging the event, atomically; `false`: the token was not
    /// a live step-up token for the account's phone, or the session is gone.
    async fn prove_presence(&self, proof: &PresenceProof<'_>, now: i64)
        -> Result<bool, StoreError>;

    async fn replace_security_question(
        &self,
        change: &QuestionChange<'_>,
    ) -> Result<(), StoreError>;

    async fn change_contact(
        &self,
        change: &ContactChange,
        now: i64,
    ) -> Result<Result<(), Vec<ContactChangeRefusal>>, StoreError>;

    /// Whether a verification token is live and bound to this destination and purpose;
    /// it stays unspent (a transaction redeems it later).
    async fn token_usable(&self, token: &TokenRedemption, now: i64) -> Result<bool, StoreError>;

    /// Removes the account, its logins, its sessions and its security log.
    async fn delete_account(
        &self,
        account_id: &AccountId,
        login_keys: &[String],
    ) -> Result<(), StoreError>;
}
