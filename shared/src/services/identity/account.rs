//! Changes to an account: password, security question, contacts, deletion, security
//! settings; the step-up by code that guards them; recovery of a lost password.

use super::*;

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    // -------------------------------------------------------------- the account

    pub async fn account(&self, principal: &Principal) -> Result<StoredAccount, AppError> {
        self.store
            .get_account(Some(&principal.account_id))
            .await?
            .ok_or(AppError::Unauthenticated)
    }

    /// Checks the password of a signed-in citizen before a sensitive change. Attempts
    /// are counted, before the check, on a counter of the account and the session they
    /// come from, not on the logins': someone who knows the password and keeps the
    /// login's limit full with logins cannot lock the owner out of their own changes,
    /// and a stolen session still gets no more tries than the limit. A failure is logged
    /// and the owner is warned at the limit, as for logins.
    pub(super) async fn confirm_password(
        &self,
        account: &StoredAccount,
        principal: &Principal,
        password: &Secret<String>,
        client: &Client,
        now: i64,
    ) -> Result<(), AppError> {
        let guard_key = self.hasher.identifier(
            Identifier::GuardedSession,
            &[&account.id, &principal.session_id],
        );
        let mut counted = self.count_attempt(&guard_key, client, false, now).await?;
        // The counter names no login: the failure belongs to the account.
        counted.account_id = Some(account.id.clone());
        if passwords::verify(password, Some(&account.password_hash)) {
            self.store
                .forgive_attempt(&counted.login_key, counted.client_window())
                .await?;
            return Ok(());
        }
        match self.fail_attempt(&counted, true, client, now).await {
            AppError::InvalidCredentials => Err(AppError::WrongPassword),
            other => Err(other),
        }
    }

    /// The signed-in citizen's account once the password they gave is confirmed: how every
    /// change the password guards begins.
    async fn confirmed_account(
        &self,
        request: &GuardedRequest<'_>,
    ) -> Result<StoredAccount, AppError> {
        let account = self.account(request.principal).await?;
        self.confirm_password(
            &account,
            request.principal,
            request.password,
            request.client,
            request.now_s(),
        )
        .await?;
        Ok(account)
    }

    /// A security alert: kept in the account's inbox and e-mailed to `to` (an address
    /// that does not parse gets no e-mail; the inbox keeps the alert all the same).
    pub(super) async fn notify_email(
        &self,
        account_id: &AccountId,
        to: &str,
        subject: &str,
        text: &str,
    ) {
        self.alert(
            account_id,
            MessageCategory::Security,
            subject,
            text,
            Email::parse("email", to).ok(),
        )
        .await;
    }

    /// Tells the account's owner: the message kept in the inbox, the e-mail sent if there
    /// is an address. A failure is logged: what it tells of is done either way.
    pub(super) async fn alert(
        &self,
        account_id: &AccountId,
        category: MessageCategory,
        subject: &str,
        text: &str,
        email: Option<Email>,
    ) {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let message = Message::new(category, subject, text, now);
        let deliveries: Vec<Delivery<'_>> = email.iter().map(Delivery::Email).collect();
        let sent = inbox::tell(
            &self.store,
            &self.notifier,
            account_id,
            &message,
            &deliveries,
        );
        for result in sent.await {
            match result {
                Ok(()) => security_notice_sent(NoticeChannel::Email),
                Err(e) => tracing::warn!(%account_id, error = %e, "notification e-mail not sent"),
            }
        }
    }

    /// Sessions of the account other than `keep`.
    pub(super) async fn other_sessions(
        &self,
        account_id: &AccountId,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, AppError> {
        Ok(self
            .store
            .list_sessions(account_id)
            .await?
            .into_iter()
            .map(|s| s.id)
            .filter(|id| Some(id) != keep)
            .collect())
    }

    /// Sets a new password once the old one (`request.password`) is confirmed.
    pub async fn change_password(
        &self,
        request: GuardedRequest<'_>,
        new_password: Secret<String>,
    ) -> Result<(), AppError> {
        let GuardedRequest {
            principal, client, ..
        } = request;
        let now_s = request.now_s();
        let account = self.confirmed_account(&request).await?;
        let hash = new_password_hash(&account, &new_password)?;
        // Every other session ends: whoever knew the old password is out.
        let others = self
            .other_sessions(&account.id, Some(&principal.session_id))
            .await?;
        let event = self.event(&account.id, "password_changed", client, now_s);
        let change = PasswordChange {
            account_id: &account.id,
            password_hash: &hash,
            credentials_epoch: account.credentials_epoch,
            keep_session: Some(&principal.session_id),
            token: None,
            end_sessions: &others,
            event: &event,
        };
        if !self.store.replace_password(&change, now_s).await? {
            // The account went away meanwhile (deleted in another session).
            return Err(AppError::Unauthenticated);
        }
        self.notify_email(
            &account.id,
            &account.email,
            PASSWORD_CHANGED_SUBJECT,
            "Пароль от вашей учётной записи изменён, другие сеансы завершены. \
             Если это были не вы, восстановите доступ.",
        )
        .await;
        Ok(())
    }

    pub async fn change_security_question(
        &self,
        request: GuardedRequest<'_>,
        question: &str,
        answer: &Secret<String>,
    ) -> Result<(), AppError> {
        let account = self.confirmed_account(&request).await?;
        let answer_hash = passwords::hash(&Secret::new(crate::domain::normalise_security_answer(
            answer.expose(),
        )))?;
        let event = self.event(
            &account.id,
            "security_question_changed",
            request.client,
            request.now_s(),
        );
        self.store
            .replace_security_question(&QuestionChange {
                account_id: &account.id,
                question,
                answer_hash: &answer_hash,
                event: &event,
            })
            .await?;
        Ok(())
    }

    /// Replaces the e-mail or phone with one confirmed by a `contact_change` code, and
    /// tells the old address.
    pub async fn change_contact(
        &self,
        request: GuardedRequest<'_>,
        new_contact: Destination,
        token: &Secret<String>,
    ) -> Result<(), AppError> {
        let now_s = request.now_s();
        // Before the password: without a fresh proof of presence nothing is checked,
        // so the route cannot be used to try passwords either.
        request
            .principal
            .presence(request.now, self.limits.step_up_window)
            .require()?;
        let account = self.confirmed_account(&request).await?;
        let (kind, old_value) = match &new_contact {
            Destination::Email(_) => (ContactKind::Email, account.email.clone()),
            Destination::Phone(_) => (ContactKind::Phone, account.phone.clone()),
        };
        let new_value = new_contact.canonical().to_string();
        if new_value == old_value {
            return Err(invalid_field(
                kind.as_str(),
                "unchanged",
                "Новое значение совпадает с текущим",
            ));
        }
        let new_key = destination_key(&self.hasher, &new_value);
        let event_kind = match kind {
            ContactKind::Email => "email_changed",
            ContactKind::Phone => "phone_changed",
        };
        let change = ContactChange {
            account_id: account.id.clone(),
            kind,
            new_value: new_value.clone(),
            new_key: new_key.clone(),
            old_key: (!old_value.is_empty()).then(|| destination_key(&self.hasher, &old_value)),
            token: self
                .redemption(token.expose(), new_key, "contact_change", now_s)
                .await?,
            event: self.event(&account.id, event_kind, request.client, now_s),
        };
        // The proof first, on its own: whatever the transaction below reports when both
        // its conditions fail, a refused token must answer the same for a contact that
        // is registered as for one that is not.
        if !self.store.token_usable(&change.token, now_s).await? {
            return Err(token_refused());
        }
        if let Err(refusals) = self.store.change_contact(&change, now_s).await? {
            // The proof first: only who holds the new contact (a live code for it) may
            // learn that another account has it, as at registration.
            return Err(if refusals.contains(&ContactChangeRefusal::TokenInvalid) {
                token_refused()
            } else {
                AppError::ContactTaken(vec![kind.as_str().to_string()])
            });
        }
        // The old address hears of it: if the change was not the owner's, they know.
        // An account registered at a service centre may have had none.
        if old_value.is_empty() {
            return Ok(());
        }
        match kind {
            ContactKind::Email => {
                self.notify_email(
                    &account.id,
                    &old_value,
                    CONTACT_CHANGED_SUBJECT,
                    "Адрес электронной почты вашей учётной записи изменён. \
                     Если это были не вы, восстановите доступ.",
                )
                .await
            }
            ContactKind::Phone => {
                let text = "Номер телефона вашей учётной записи изменён. \
                            Если это были не вы, восстановите доступ.";
                let message = Message::new(
                    MessageCategory::Security,
                    CONTACT_CHANGED_SUBJECT,
                    text,
                    OffsetDateTime::now_utc().unix_timestamp(),
                );
                let phone = Phone::parse("phone", &old_value).ok();
                let sms: Vec<Delivery<'_>> = phone.iter().map(|p| Delivery::Sms(p, text)).collect();
                let sent = inbox::tell(&self.store, &self.notifier, &account.id, &message, &sms);
                for result in sent.await {
                    match result {
                        Ok(()) => security_notice_sent(NoticeChannel::Sms),
                        Err(e) => tracing::warn!(error = %e, "contact change SMS not sent"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Removes the account and everything kept about it; the citizen may leave. What
    /// else the account leaves (`departure`: its organisations) goes first, once the
    /// password is confirmed; a refusal there (the last owner of an organisation, 409
    /// `last_owner`) deletes nothing.
    pub async fn delete_account(
        &self,
        request: GuardedRequest<'_>,
        departure: &(impl Departure + Sync),
    ) -> Result<(), AppError> {
        let account = self.confirmed_account(&request).await?;
        departure.leave(&account.id, request.now_s()).await?;
        let mut logins = vec![
            destination_key(&self.hasher, &account.email),
            destination_key(&self.hasher, &account.phone),
        ];
        logins.extend(account.snils_login.clone());
        self.store.delete_account(&account.id, &logins).await?;
        tracing::info!(account_id = %account.id, "account deleted");
        // By e-mail only: the inbox went with the account.
        if let Ok(email) = Email::parse("email", &account.email) {
            let text = Secret::new(
                "Ваша учётная запись и все связанные с ней данные удалены.".to_string(),
            );
            match self
                .notifier
                .send_email(&email, ACCOUNT_DELETED_SUBJECT, &text)
                .await
            {
                Ok(()) => security_notice_sent(NoticeChannel::Email),
                Err(e) => tracing::warn!(error = %e, "notification e-mail not sent"),
            }
        }
        Ok(())
    }

    /// Turns two-step login and new-device alerts on or off (the password confirms it).
    pub async fn change_security_settings(
        &self,
        request: GuardedRequest<'_>,
        settings: SecuritySettings,
    ) -> Result<EffectiveSettings, AppError> {
        let GuardedRequest {
            principal,
            password,
            client,
            now,
        } = request;
        let now_s = request.now_s();
        let account = self.account(principal).await?;
        // Turning two-step login off weakens the account: a password alone must not.
        let weakening = settings.two_step_login == Some(false) && account.two_step_login;
        if weakening {
            principal
                .presence(now, self.limits.step_up_window)
                .require()?;
        }
        self.confirm_password(&account, principal, password, client, now_s)
            .await?;
        // Two-step login needs a second factor to ask for (the phone, or an app).
        if settings.two_step_login == Some(true) && account.factor_count == 0 {
            return Err(AppError::FactorNotEnrolled);
        }
        let mut events = Vec::new();
        match settings.two_step_login {
            Some(true) if !account.two_step_login => {
                events.push(self.event(&account.id, "two_step_enabled", client, now_s))
            }
            Some(false) if account.two_step_login => {
                events.push(self.event(&account.id, "two_step_disabled", client, now_s))
            }
            _ => {}
        }
        if settings
            .new_device_alerts
            .is_some_and(|on| on != account.new_device_alerts)
        {
            events.push(self.event(&account.id, "new_device_alerts_changed", client, now_s));
        }
        if !events.is_empty() {
            self.store
                .update_security_settings(&account.id, settings, &events)
                .await?;
        }
        if weakening {
            self.notify_email(
                &account.id,
                &account.email,
                TWO_STEP_DISABLED_SUBJECT,
                "Вход по SMS-коду для вашей учётной записи отключён. \
                 Если это были не вы, восстановите доступ и включите его снова.",
            )
            .await;
        }
        Ok(EffectiveSettings {
            two_step_login: settings.two_step_login.unwrap_or(account.two_step_login),
            new_device_alerts: settings
                .new_device_alerts
                .unwrap_or(account.new_device_alerts),
        })
    }

    // -------------------------------------------------------------- step-up

    /// Sends a step-up code to the account's current phone: the fresh proof of
    /// presence that turning two-step login off, changing a contact, saving a payment
    /// method or widening an autopay need once the login is older than the window.
    pub async fn start_step_up<C: Confirmations + Sync>(
        &self,
        principal: &Principal,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<StepUpChallenge, AppError> {
        let account = self.account(principal).await?;
        let phone = Phone::parse("phone", &account.phone)
            .map_err(|_| AppError::Internal("stored phone unreadable".into()))?;
        let sent = codes
            .send_code(
                SendCode {
                    destination: Destination::Phone(phone),
                    purpose: Purpose::StepUp,
                    client_ip: client.ip.clone(),
                    deliver: true,
                },
                now,
            )
            .await?;
        tracing::info!(account_id = %account.id, "step-up code sent");
        Ok(StepUpChallenge {
            id: sent.id,
            expires_at: sent.expires_at,
            resend_available_at: sent.resend_available_at,
        })
    }

    /// Checks a step-up code (its wrong answers count on the code like any other's)
    /// and marks the session as having proved presence now. Only a step-up code sent to
    /// the account's current phone will do: the token is redeemed against that phone
    /// and purpose, in one transaction with the session's update and the event.
    pub async fn complete_step_up<C: Confirmations + Sync>(
        &self,
        principal: &Principal,
        code_id: &CodeId,
        answer: CodeAnswer<'_, C>,
    ) -> Result<OffsetDateTime, AppError> {
        let now_s = answer.now.unix_timestamp();
        let account = self.account(principal).await?;
        let verified = answer
            .codes
            .verify_code(code_id, answer.code, answer.now)
            .await?;
        let redemption = TokenRedemption {
            token_key: verification_token_key(&self.hasher, verified.token.expose()),
            destination_key: destination_key(&self.hasher, &account.phone),
            purpose: Purpose::StepUp.as_str(),
        };
        let event = self.event(&account.id, "step_up_completed", answer.client, now_s);
        let proof = PresenceProof {
            principal,
            token: &redemption,
            event: &event,
        };
        if !self.store.prove_presence(&proof, now_s).await? {
            // A code of another purpose or for another phone: as if there were none.
            return Err(AppError::CodeNotFound);
        }
        tracing::info!(account_id = %account.id, "step-up completed");
        self.notify_email(
            &account.id,
            &account.email,
            STEP_UP_SUBJECT,
            "Кодом из SMS на ваш телефон подтверждено важное действие в учётной записи \
             (отключение входа по SMS-коду, смена телефона или почты, сохранение способа \
             оплаты или автоплатежа). Если это были не вы, смените пароль и завершите \
             чужие сеансы.",
        )
        .await;
        Ok(at(now_s + secs(self.limits.step_up_window)))
    }

    // -------------------------------------------------------------- recovery

    /// Where a recovery code for `login` goes: the account's confirmed contact of the
    /// same kind as the login. `None` when no account answers to it.
    pub async fn recovery_destination(&self, login: &str) -> Result<Option<Destination>, AppError> {
        let trimmed = login.trim();
        let account = self.store.find_account(&self.login_key(trimmed)).await?;
        Ok(account.and_then(|account| recovery_contact(&account, trimmed)))
    }

    /// The destination a recovery code for `login` is recorded against when no account
    /// answers to it: the login itself for a phone or e-mail, and for a SNILS a stand-in
    /// number derived from it, so that limits and the code behave as for a real account
    /// while nothing is sent.
    pub fn recovery_stand_in(&self, login: &str) -> Option<Destination> {
        let trimmed = login.trim();
        if trimmed.contains('@') {
            return Email::parse("login", trimmed).ok().map(Destination::Email);
        }
        if let Ok(phone) = Phone::parse("login", trimmed) {
            return Some(Destination::Phone(phone));
        }
        let snils = Snils::parse("login", trimmed).ok()?;
        let digest = self
            .hasher
            .identifier(Identifier::SnilsStandIn, &[snils.as_str()]);
        let digits: String = digest
            .bytes()
            .map(|b| char::from(b'0' + b % 10))
            .take(9)
            .collect();
        Phone::parse("login", &format!("+79{digits}"))
            .ok()
            .map(Destination::Phone)
    }

    /// Sets a new password for the account behind `login`, proven by a recovery token for
    /// its contact and the security answer. Every session ends.
    pub async fn complete_recovery(
        &self,
        login: &str,
        token: &Secret<String>,
        answer: &Secret<String>,
        new_password: Secret<String>,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let now_s = now.unix_timestamp();
        let trimmed = login.trim();
        let account = self
            .store
            .find_account(&self.login_key(trimmed))
            .await?
            .ok_or_else(token_refused)?;
        let destination = recovery_contact(&account, trimmed).ok_or_else(token_refused)?;
        let redemption = self
            .redemption(
                token.expose(),
                destination_key(&self.hasher, destination.canonical()),
                "recovery",
                now_s,
            )
            .await?;
        // The code comes first: without it nobody gets to try security answers, and an
        // unknown login and a missing code look the same.
        if !self.store.token_usable(&redemption, now_s).await? {
            return Err(token_refused());
        }

        // Wrong answers are limited like passwords, on a counter of their own.
        let answer_key = self
            .hasher
            .identifier(Identifier::SecurityAnswer, &[&account.id]);
        let counted = self
            .count_attempt(&answer_key, client, false, now_s)
            .await?;
        let normalised = Secret::new(crate::domain::normalise_security_answer(answer.expose()));
        if !passwords::verify(&normalised, Some(&account.security_answer_hash)) {
            // No event and no owner e-mail for answers: the counter names no account.
            return Err(
                match self.fail_attempt(&counted, false, client, now_s).await {
                    AppError::InvalidCredentials => invalid_field(
                        "security_answer",
                        "wrong_security_answer",
                        "Неверный ответ на контрольный вопрос",
                    ),
                    other => other,
                },
            );
        }
        self.store
            .forgive_attempt(&counted.login_key, counted.client_window())
            .await?;
        let hash = new_password_hash(&account, &new_password)?;
        let sessions = self.other_sessions(&account.id, None).await?;
        let event = self.event(&account.id, "password_recovered", client, now_s);
        let change = PasswordChange {
            account_id: &account.id,
            password_hash: &hash,
            credentials_epoch: account.credentials_epoch,
            keep_session: None,
            token: Some(&redemption),
            end_sessions: &sessions,
            event: &event,
        };
        if !self.store.replace_password(&change, now_s).await? {
            return Err(token_refused());
        }
        self.notify_email(
            &account.id,
            &account.email,
            PASSWORD_CHANGED_SUBJECT,
            "Пароль от вашей учётной записи изменён через восстановление доступа, \
             все сеансы завершены. Если это были не вы, обратитесь в поддержку.",
        )
        .await;
        Ok(())
    }

    pub(super) fn event(
        &self,
        account_id: &AccountId,
        kind: &'static str,
        client: &Client,
        now: i64,
    ) -> SecurityEvent {
        SecurityEvent {
            account_id: account_id.clone(),
            kind,
            at: now,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        }
    }
}

/// The hash of a new password once it passes the password rules (among them: not the
/// account's own e-mail or phone); a change and a recovery set one alike.
pub(super) fn new_password_hash(
    account: &StoredAccount,
    new_password: &Secret<String>,
) -> Result<String, AppError> {
    crate::domain::check_new_password(
        "new_password",
        new_password,
        &[&account.email, &account.phone],
    )
    .map_err(|e| AppError::Validation(vec![e]))?;
    passwords::hash(new_password)
}
