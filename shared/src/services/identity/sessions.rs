//! Sessions: the authorizer's check of a bearer token, the list, revoking.

use super::*;

/// A valid session's principal, with its account's level read in the same check: what
/// the authorizer puts through the access matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub principal: Principal,
    pub level: AccountLevel,
}

impl Authorized {
    pub fn standing(&self) -> crate::access::Standing {
        crate::access::Standing {
            level: self.level,
            strength: self.principal.strength,
        }
    }
}

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    // -------------------------------------------------------------- sessions

    /// Checks a bearer token; the authorizer's one question. The account it reads anyway
    /// gives the level, so the access matrix costs no further read.
    pub async fn authorize(
        &self,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Authorized, AppError> {
        let now_s = now.unix_timestamp();
        if !token.starts_with(SESSION_TOKEN_PREFIX) || token.len() > 128 {
            return Err(AppError::Unauthenticated);
        }
        // A session opened before the HMAC key's last rotation is stored under an older
        // version: each version present is tried, the current one first.
        let mut found = None;
        for id in self
            .hasher
            .credential_lookups(Credential::SessionToken, &[token])
        {
            let id = SessionId::from_hash(id);
            if let Some(session) = self.store.get_session(&id).await? {
                found = Some((id, session));
                break;
            }
        }
        let (id, session) = found.ok_or(AppError::Unauthenticated)?;
        if session.expires_at() <= now_s {
            return Err(AppError::Unauthenticated);
        }
        // A session lives only as long as its account and the password it was opened
        // with: whatever the session list missed (a login finishing during a password
        // change, recovery or deletion) ends here.
        let account = self
            .store
            .get_account(Some(&session.account_id))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if account.credentials_epoch != session.credentials_epoch {
            return Err(AppError::Unauthenticated);
        }
        // Moving the idle deadline on every request would be a write per request; a
        // fraction of the idle time is precision enough.
        let step = (session.idle_secs / 4).clamp(1, 60);
        if now_s - session.last_seen_at >= step {
            let moved = Session {
                last_seen_at: now_s,
                ..session.clone()
            };
            self.store
                .touch_session(&id, now_s, moved.expires_at())
                .await?;
        }
        Ok(Authorized {
            principal: Principal {
                account_id: session.account_id,
                session_id: id,
                proven_at: session.proven_at,
                strength: CredentialStrength::of_session(
                    session.factor_proven_at,
                    account.factors_changed_at,
                    now_s,
                ),
            },
            level: account.level,
        })
    }

    pub async fn sessions(
        &self,
        account_id: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Vec<Session>, AppError> {
        let now_s = now.unix_timestamp();
        let mut sessions: Vec<Session> = self
            .store
            .list_sessions(account_id)
            .await?
            .into_iter()
            .filter(|s| s.expires_at() > now_s)
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.last_seen_at));
        Ok(sessions)
    }

    pub async fn revoke(
        &self,
        principal: &Principal,
        session_id: &SessionId,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let kind = if *session_id == principal.session_id {
            "logout"
        } else {
            "session_revoked"
        };
        let event = self.event(&principal.account_id, kind, client, now.unix_timestamp());
        if self
            .store
            .delete_session(session_id, &principal.account_id, &event)
            .await?
        {
            Ok(())
        } else {
            Err(AppError::SessionNotFound)
        }
    }

    pub async fn security_events(
        &self,
        account_id: &AccountId,
    ) -> Result<Vec<StoredSecurityEvent>, AppError> {
        Ok(self.store.list_security_events(account_id, 100).await?)
    }
}
