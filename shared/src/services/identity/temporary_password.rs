//! The first login of an account registered at a service centre: its password is a
//! one-time password printed for the citizen, and it opens nothing but its own
//! replacement. The login answers with a challenge instead of a session; the new
//! password, sent with the challenge, replaces the paper one and opens the session.

use super::*;
use account::new_password_hash;

/// How long the citizen has to choose a password once the paper one was accepted.
pub const PASSWORD_CHANGE_CHALLENGE_SECS: i64 = 600;

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    /// A challenge waiting for the password that replaces the paper one.
    pub(super) async fn start_password_change(
        &self,
        account: &StoredAccount,
        login_key: &str,
        foreign_computer: bool,
        now: OffsetDateTime,
    ) -> Result<IssuedChallenge, AppError> {
        let token = crypto::token(CHALLENGE_TOKEN_PREFIX)?;
        let expires_at = now.unix_timestamp() + PASSWORD_CHANGE_CHALLENGE_SECS;
        let challenge = LoginChallenge {
            key: self
                .hasher
                .credential(Credential::LoginChallenge, &[token.expose()]),
            account_id: account.id.clone(),
            step: ChallengeStep::PasswordChange,
            login_key: login_key.to_string(),
            foreign_computer,
            credentials_epoch: account.credentials_epoch,
            expires_at,
        };
        self.store.put_challenge(&challenge).await?;
        tracing::info!(account_id = %account.id, "paper password accepted: waiting for a new one");
        Ok(IssuedChallenge {
            token,
            expires_at: at(expires_at),
            resend_available_at: now,
            second_factor: SecondFactor::Sms,
            available: Vec::new(),
            passkey_options: None,
        })
    }

    /// Replaces the paper password with the citizen's own and opens the session. Two
    /// writes: the password (on the condition that the credentials are still the ones
    /// the challenge proved, so a challenge replayed after it gets nothing), then the
    /// session, which consumes the challenge. If the second fails, the citizen logs in
    /// with the new password.
    pub async fn complete_password_change(
        &self,
        challenge_token: &Secret<String>,
        new_password: &Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<IssuedSession, AppError> {
        let now_s = now.unix_timestamp();
        let challenge = self.live_challenge(challenge_token, now_s).await?;
        if challenge.step != ChallengeStep::PasswordChange {
            return Err(AppError::TwoStepChallengeInvalid);
        }
        let account = self
            .store
            .get_account(Some(&challenge.account_id))
            .await?
            .filter(|a| {
                a.credentials_epoch == challenge.credentials_epoch
                    && a.password_change_due.is_some()
            })
            .ok_or(AppError::TwoStepChallengeInvalid)?;
        if passwords::verify(new_password, Some(&account.password_hash)) {
            return Err(invalid_field(
                "new_password",
                "password_unchanged",
                "Придумайте новый пароль: временный пароль больше не действует",
            ));
        }
        let hash = new_password_hash(&account, new_password)?;
        let event = self.event(&account.id, "password_changed", client, now_s);
        let change = PasswordChange {
            account_id: &account.id,
            password_hash: &hash,
            credentials_epoch: account.credentials_epoch,
            keep_session: None,
            token: None,
            end_sessions: &[],
            event: &event,
        };
        if !self.store.replace_password(&change, now_s).await? {
            // Another completion of the same challenge won.
            return Err(AppError::TwoStepChallengeInvalid);
        }
        tracing::info!(account_id = %account.id, "paper password replaced");
        let account = StoredAccount {
            credentials_epoch: account.credentials_epoch + 1,
            password_change_due: None,
            ..account
        };
        self.open_session(
            &account,
            challenge.foreign_computer,
            // The paper password's attempt was given back when it was accepted.
            ProvenLogin {
                key: &challenge.login_key,
                client: None,
            },
            client,
            now_s,
            Some(TwoStepProof {
                challenge_key: Some(&challenge.key),
                ceremony_key: None,
                token: None,
                factor_use: None,
                second_factor: false,
            }),
        )
        .await
    }
}
