//! Registration, login (with its second step by code), and the counting of failed
//! attempts that locks a login.

use super::*;

impl<S: IdentityStore + Sync, N: Notifier + Sync> IdentityService<S, N> {
    /// A verification token a client hands back, as the key it is stored under. A token
    /// issued before the HMAC key's last rotation is stored under an older version, so
    /// while the keyring holds several, each is tried (current first) by reading the
    /// token; with one version there is nothing to read.
    pub(super) async fn redemption(
        &self,
        token: &str,
        destination_key: String,
        purpose: &'static str,
        now_s: i64,
    ) -> Result<TokenRedemption, AppError> {
        let keys = verification_token_keys(&self.hasher, token);
        let mut redemption = TokenRedemption {
            token_key: String::new(),
            destination_key,
            purpose,
        };
        if keys.len() > 1 {
            for key in &keys {
                redemption.token_key.clone_from(key);
                if self.store.token_usable(&redemption, now_s).await? {
                    return Ok(redemption);
                }
            }
        }
        // None usable: the current version's key, which the caller's checks refuse.
        redemption.token_key = keys.into_iter().next().unwrap_or_default();
        Ok(redemption)
    }

    // -------------------------------------------------------------- registration

    pub async fn register(
        &self,
        r: Registration,
        client: &Client,
        now: OffsetDateTime,
    ) -> Result<RegisteredAccount, AppError> {
        let now_s = now.unix_timestamp();
        let email_key = destination_key(&self.hasher, r.email.as_str());
        let phone_key = destination_key(&self.hasher, r.phone.e164());
        let id = AccountId::new();
        let account = NewAccount {
            id: id.clone(),
            last_name: r.last_name.as_str().to_string(),
            first_name: r.first_name.as_str().to_string(),
            middle_name: r.middle_name.map(|m| m.as_str().to_string()),
            email: r.email.as_str().to_string(),
            phone: r.phone.e164().to_string(),
            password_hash: passwords::hash(&r.password)?,
            security_question: r.security_question,
            security_answer_hash: passwords::hash(&Secret::new(
                crate::domain::normalise_security_answer(r.security_answer.expose()),
            ))?,
            level: crate::domain::AccountLevel::Simplified,
            created_at: now_s,
        };
        let logins = [
            LoginClaim {
                key: email_key.clone(),
                kind: "email",
            },
            LoginClaim {
                key: phone_key.clone(),
                kind: "phone",
            },
        ];
        let tokens = [
            self.redemption(
                r.email_verification_token.expose(),
                email_key,
                "registration",
                now_s,
            )
            .await?,
            self.redemption(
                r.phone_verification_token.expose(),
                phone_key,
                "registration",
                now_s,
            )
            .await?,
        ];
        let event = self.event(&id, "account_created", client, now_s);
        // A transaction that collided with another one touching the same contact is
        // tried again; the second try sees the winner's login and refuses cleanly.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .store
                .create_account(
                    &AccountCreation {
                        account: &account,
                        logins: &logins,
                        tokens: &tokens,
                        event: &event,
                    },
                    now_s,
                )
                .await
            {
                Ok(Ok(())) => break,
                Ok(Err(refusals)) => return Err(registration_error(&refusals)),
                Err(StoreError::Conflict) if attempt < 3 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(account_id = %id, "account registered");
        let welcome = format!(
            "{}, ваш аккаунт создан. Уровень учётной записи: упрощённая. \
             Чтобы получить доступ к большему числу услуг, заполните профиль.",
            account.first_name
        );
        // The account exists either way; a lost welcome letter is not worth an error.
        let message = Message::new(MessageCategory::Account, WELCOME_SUBJECT, welcome, now_s);
        let email = [Delivery::Email(&r.email)];
        for result in inbox::tell(&self.store, &self.notifier, &id, &message, &email).await {
            if let Err(e) = result {
                tracing::warn!(account_id = %id, error = %e, "welcome e-mail not sent");
            }
        }
        Ok(RegisteredAccount {
            account_id: id,
            level: account.level,
        })
    }

    // -------------------------------------------------------------- login

    /// The login key of what a citizen typed: a phone in any usual form, an e-mail in any
    /// case; anything else still gets a key, so that it is throttled like the rest.
    pub(super) fn login_key(&self, login: &str) -> String {
        let trimmed = login.trim();
        // A SNILS written in its own groups (`112-233-445 95`) is unmistakable; eleven bare
        // digits that make a Russian mobile number are read as the phone, anything else
        // as a SNILS.
        let snils_shaped = snils_grouping(trimmed);
        if trimmed.contains('@') {
            if let Ok(email) = Email::parse("login", trimmed) {
                return destination_key(&self.hasher, email.as_str());
            }
        } else if let (true, Ok(snils)) = (snils_shaped, Snils::parse("login", trimmed)) {
            return snils_login_key(&self.hasher, snils.as_str());
        } else if let Ok(phone) = Phone::parse("login", trimmed) {
            return destination_key(&self.hasher, phone.e164());
        } else if let Ok(snils) = Snils::parse("login", trimmed) {
            return snils_login_key(&self.hasher, snils.as_str());
        }
        self.hasher
            .identifier(Identifier::UnknownLogin, &[&trimmed.to_lowercase()])
    }

    pub(super) fn window_start(&self, now: i64) -> i64 {
        let window = secs(self.limits.client_failure_window).max(1);
        now - now.rem_euclid(window)
    }

    /// Checks the login and password. With two-step login on, an SMS code goes to the
    /// account's phone and the session waits for [`Self::complete_two_step`].
    pub async fn login<C: Confirmations + Sync>(
        &self,
        request: Login,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<LoginOutcome, AppError> {
        let now_s = now.unix_timestamp();
        let login_key = self.login_key(&request.login);
        let counted = self
            .count_attempt(&login_key, client, true, now_s)
            .await
            .inspect_err(|e| {
                // A locked login, or a client address over its failures.
                if matches!(
                    e,
                    AppError::LoginThrottled { .. } | AppError::LoginClientLimited { .. }
                ) {
                    metrics::emit(Metric::LoginsThrottled);
                }
            })?;

        let account = self.store.get_account(counted.account_id.as_ref()).await?;
        let verified = passwords::verify(
            &request.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        );
        let Some(account) = account.filter(|_| verified) else {
            metrics::emit(Metric::LoginsFailed);
            return Err(self.fail_attempt(&counted, true, client, now_s).await);
        };
        if let Some(due) = account.password_change_due {
            // The paper password is proven: it opens nothing but its own replacement.
            self.store
                .forgive_attempt(&counted.login_key, counted.client_window())
                .await?;
            if due <= now_s {
                return Err(AppError::TemporaryPasswordExpired);
            }
            return self
                .start_password_change(&account, &login_key, request.foreign_computer, now)
                .await
                .map(LoginOutcome::PasswordChangeRequired);
        }
        if account.two_step_login {
            // The password is proven; the second step has its own attempt limit.
            self.store
                .forgive_attempt(&counted.login_key, counted.client_window())
                .await?;
            let available = self.available_factors(&account).await?;
            // The SMS code unless the citizen chose another factor, or the phone is none.
            let chosen = request
                .second_factor
                .or_else(|| available.first().copied())
                .filter(|f| available.contains(f))
                .ok_or(AppError::FactorNotEnrolled)?;
            let mut challenge = if chosen == SecondFactor::Sms {
                self.start_two_step(
                    &account,
                    &login_key,
                    request.foreign_computer,
                    client,
                    now,
                    codes,
                )
                .await?
            } else {
                self.start_factor_step(&account, chosen, &login_key, request.foreign_computer, now)
                    .await?
            };
            challenge.available = available;
            return Ok(LoginOutcome::CodeRequired(challenge));
        }
        self.open_session(
            &account,
            request.foreign_computer,
            ProvenLogin {
                key: &login_key,
                client: Some(counted.client_window()),
            },
            client,
            now_s,
            None,
        )
        .await
        .map(LoginOutcome::Session)
    }

    pub(super) async fn start_two_step<C: Confirmations + Sync>(
        &self,
        account: &StoredAccount,
        login_key: &str,
        foreign_computer: bool,
        client: &Client,
        now: OffsetDateTime,
        codes: &C,
    ) -> Result<IssuedChallenge, AppError> {
        let phone = Phone::parse("phone", &account.phone)
            .map_err(|_| AppError::Internal("stored phone unreadable".into()))?;
        let destination = Destination::Phone(phone);
        let destination_key = destination_key(&self.hasher, destination.canonical());
        let sent = codes
            .send_code(
                SendCode {
                    destination,
                    purpose: Purpose::Login,
                    client_ip: client.ip.clone(),
                    deliver: true,
                },
                now,
            )
            .await?;
        let token = crypto::token(CHALLENGE_TOKEN_PREFIX)?;
        let challenge = LoginChallenge {
            key: self
                .hasher
                .credential(Credential::LoginChallenge, &[token.expose()]),
            account_id: account.id.clone(),
            step: ChallengeStep::Sms {
                code_id: sent.id,
                destination_key,
            },
            login_key: login_key.to_string(),
            foreign_computer,
            credentials_epoch: account.credentials_epoch,
            expires_at: sent.expires_at.unix_timestamp(),
        };
        self.store.put_challenge(&challenge).await?;
        tracing::info!(account_id = %account.id, "two-step login: code sent");
        Ok(IssuedChallenge {
            token,
            expires_at: sent.expires_at,
            resend_available_at: sent.resend_available_at,
            second_factor: SecondFactor::Sms,
            available: Vec::new(),
            passkey_options: None,
        })
    }

    /// Finishes a two-step login with the SMS code, the app's code or a backup code. The
    /// challenge is single-use: the session, the challenge and what the code used up
    /// (the SMS code's token, the app's time step, the backup code) change in one
    /// transaction.
    pub async fn complete_two_step<C: Confirmations + Sync>(
        &self,
        challenge_token: &Secret<String>,
        answer: CodeAnswer<'_, C>,
    ) -> Result<IssuedSession, AppError> {
        let now_s = answer.now.unix_timestamp();
        let challenge = self.live_challenge(challenge_token, now_s).await?;
        let ChallengeStep::Sms {
            code_id,
            destination_key,
        } = &challenge.step
        else {
            return self.complete_factor_step(&challenge, answer).await;
        };
        let verified = answer
            .codes
            .verify_code(code_id, answer.code, answer.now)
            .await?;
        let redemption = TokenRedemption {
            token_key: verification_token_key(&self.hasher, verified.token.expose()),
            destination_key: destination_key.clone(),
            purpose: Purpose::Login.as_str(),
        };
        self.finish_two_step(&challenge, answer.client, now_s, Some(&redemption), None)
            .await
    }

    /// The live challenge a token names; any other token is
    /// [`AppError::TwoStepChallengeInvalid`].
    pub(super) async fn live_challenge(
        &self,
        challenge_token: &Secret<String>,
        now_s: i64,
    ) -> Result<LoginChallenge, AppError> {
        let token = challenge_token.expose();
        // Characters, as the API's maxLength counts them: a longer token is no challenge.
        if !token.starts_with(CHALLENGE_TOKEN_PREFIX) || token.chars().count() > 128 {
            return Err(AppError::TwoStepChallengeInvalid);
        }
        let mut found = None;
        for key in self
            .hasher
            .credential_lookups(Credential::LoginChallenge, &[token])
        {
            found = self.store.get_challenge(&key).await?;
            if found.is_some() {
                break;
            }
        }
        found
            .filter(|c| c.expires_at > now_s)
            .ok_or(AppError::TwoStepChallengeInvalid)
    }

    /// The second step by an app's code or a backup code.
    async fn complete_factor_step<C: Confirmations + Sync>(
        &self,
        challenge: &LoginChallenge,
        answer: CodeAnswer<'_, C>,
    ) -> Result<IssuedSession, AppError> {
        let now_s = answer.now.unix_timestamp();
        let (used, counted) = self
            .factor_use(
                &challenge.account_id,
                &challenge.step,
                answer.code,
                answer.client,
                now_s,
            )
            .await?;
        let session = self
            .finish_two_step(challenge, answer.client, now_s, None, Some(&used))
            .await?;
        // The right code takes its attempt back, as a right password does.
        self.store
            .forgive_attempt(&counted.login_key, counted.client_window())
            .await?;
        Ok(session)
    }

    /// Opens the session of a two-step login whose second step was right, consuming the
    /// challenge with the SMS code's token or what the factor's code used up.
    pub(super) async fn finish_two_step(
        &self,
        challenge: &LoginChallenge,
        client: &Client,
        now_s: i64,
        token: Option<&TokenRedemption>,
        factor_use: Option<&FactorUse>,
    ) -> Result<IssuedSession, AppError> {
        // The session belongs to the password the challenge checked: a password changed
        // meanwhile makes it a session of the old one, refused by the authorizer.
        let account = StoredAccount {
            credentials_epoch: challenge.credentials_epoch,
            ..self
                .store
                .get_account(Some(&challenge.account_id))
                .await?
                .ok_or(AppError::TwoStepChallengeInvalid)?
        };
        self.open_session(
            &account,
            challenge.foreign_computer,
            // The password's attempt was given back when the second step began.
            ProvenLogin {
                key: &challenge.login_key,
                client: None,
            },
            client,
            now_s,
            Some(TwoStepProof {
                challenge_key: Some(&challenge.key),
                ceremony_key: None,
                token,
                factor_use,
                second_factor: true,
            }),
        )
        .await
    }

    /// Creates a session for a proven login; remembers the device and tells the owner
    /// of a new one.
    pub(super) async fn open_session(
        &self,
        account: &StoredAccount,
        foreign_computer: bool,
        login: ProvenLogin<'_>,
        client: &Client,
        now_s: i64,
        two_step: Option<TwoStepProof<'_>>,
    ) -> Result<IssuedSession, AppError> {
        let token = crypto::token(SESSION_TOKEN_PREFIX)?;
        let (idle, max) = if foreign_computer {
            (self.limits.foreign_idle, self.limits.foreign_max)
        } else {
            (self.limits.idle, self.limits.max)
        };
        let session = Session {
            id: self.session_id(token.expose()),
            account_id: account.id.clone(),
            created_at: now_s,
            last_seen_at: now_s,
            idle_secs: secs(idle),
            absolute_expires_at: now_s + secs(max),
            foreign_computer,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            proven_at: now_s,
            factor_proven_at: two_step.as_ref().filter(|p| p.second_factor).map(|_| now_s),
            credentials_epoch: account.credentials_epoch,
        };
        let device = self
            .hasher
            .identifier(Identifier::Device, &[&account.id, &client.user_agent]);
        let new_device = !account.known_devices.contains(&device);
        let known_devices = new_device.then(|| remember_device(&account.known_devices, device));
        let event = self.event(&account.id, "login_succeeded", client, now_s);
        let write = SessionWrite {
            session: &session,
            login_key: login.key,
            client: login.client,
            event: &event,
            known_devices,
            challenge_key: two_step.as_ref().and_then(|p| p.challenge_key),
            ceremony_key: two_step.as_ref().and_then(|p| p.ceremony_key),
            token: two_step.as_ref().and_then(|p| p.token),
            factor_use: two_step.as_ref().and_then(|p| p.factor_use),
        };
        if !self.store.create_session(&write, now_s).await? {
            return Err(AppError::TwoStepChallengeInvalid);
        }
        tracing::info!(account_id = %account.id, foreign_computer, new_device, "session created");
        // The very first login has nothing to compare with: no alert for it.
        if new_device && account.new_device_alerts && !account.known_devices.is_empty() {
            self.alert_new_device(account, client, now_s).await;
        }
        Ok(IssuedSession {
            id: session.id.clone(),
            token,
            expires_at: at(session.expires_at()),
            absolute_expires_at: at(session.absolute_expires_at),
        })
    }

    pub(super) async fn alert_new_device(
        &self,
        account: &StoredAccount,
        client: &Client,
        now_s: i64,
    ) {
        let moscow = at(now_s).to_offset(MOSCOW);
        let device = if client.user_agent.is_empty() {
            "неизвестно"
        } else {
            client.user_agent.as_str()
        };
        let text = format!(
            "В вашу учётную запись выполнен вход с нового устройства.\n\
             Время: {:02}.{:02}.{} {:02}:{:02} (МСК)\n\
             IP-адрес: {}\n\
             Устройство: {}\n\
             Если это были не вы, смените пароль и завершите чужие сеансы.",
            moscow.day(),
            u8::from(moscow.month()),
            moscow.year(),
            moscow.hour(),
            moscow.minute(),
            client.ip,
            device,
        );
        self.notify_email(&account.id, &account.email, NEW_DEVICE_SUBJECT, &text)
            .await;
    }

    /// Counts an attempt at the secret of `login_key` before the secret is checked, and
    /// refuses one over the login's lock or the client's limit (`limit_client`). A race
    /// lost to parallel attempts is read again, so that its answer says how long to wait.
    ///
    /// Only failures lock a login. When the limit is full with attempts whose secret is
    /// still being checked (a citizen's devices signing in at once), this one waits for
    /// them to be decided, at most [`PENDING_WAIT`]: a right secret among them clears the
    /// count, wrong ones make it a lock. Either way no more than the limit is checked.
    /// Races lost to other attempts are read again within the same wait.
    /// The client's counter is keyed by its address.
    pub(super) async fn count_attempt(
        &self,
        login_key: &str,
        client: &Client,
        limit_client: bool,
        now: i64,
    ) -> Result<CountedAttempt, AppError> {
        let client_key = &self
            .hasher
            .identifier(Identifier::LoginClient, &[&client.ip]);
        let window_start = self.window_start(now);
        let window_end = window_start + secs(self.limits.client_failure_window);
        let window = ClientWindow {
            key: client_key,
            start: window_start,
            end: window_end,
        };
        let started = std::time::Instant::now();
        loop {
            // The clock moves while this attempt waits for pending ones.
            let now_live = now + i64::try_from(started.elapsed().as_secs()).unwrap_or(0);
            let state = self.store.load_login_state(login_key, &window).await?;
            // What is left of the client's limit once the window before has its share.
            let client_room = self
                .limits
                .max_client_failures
                .saturating_sub(window.carried(state.previous_client_failures, now));
            if limit_client && state.client_failures >= client_room {
                return Err(AppError::LoginClientLimited {
                    retry_after_secs: wait(window_end, now),
                });
            }
            let locked_until = self.locked_until(&state.failures, now_live);
            if locked_until > now_live {
                return Err(AppError::LoginThrottled {
                    retry_after_secs: wait(locked_until, now_live),
                });
            }
            if state.failures.count >= self.limits.max_failures
                && state.failures.failed(now_live) < self.limits.max_failures
            {
                // Full, but not with failures: wait for the pending attempts' verdict.
                if started.elapsed() >= PENDING_WAIT {
                    return Err(AppError::LoginThrottled {
                        retry_after_secs: 1,
                    });
                }
                tokio::time::sleep(PENDING_POLL).await;
                continue;
            }
            let attempt = Attempt {
                login_key,
                max_failures: self.limits.max_failures,
                seen_failures: state.failures.count,
                client: window,
                client_limit: limit_client.then_some(client_room),
            };
            match self.store.count_attempt(&attempt, now).await? {
                AttemptCount::Counted { failures } => {
                    return Ok(CountedAttempt {
                        login_key: login_key.to_string(),
                        client_key: client_key.to_string(),
                        window_start,
                        window_end,
                        failures,
                        account_id: state.account_id,
                    })
                }
                AttemptCount::ClientLimited => {
                    return Err(AppError::LoginClientLimited {
                        retry_after_secs: wait(window_end, now),
                    })
                }
                // Others counted meanwhile: the next read tells the lock they set, or
                // that they are still being checked. Losing races is not a lock: past
                // the wait, the answer is to try again at once, not after a lock's time.
                // A pause before reading again keeps a flood's losers at one read and
                // one write a poll each, not a tight loop against the table.
                AttemptCount::LoginLimited => {
                    if started.elapsed() >= PENDING_WAIT {
                        return Err(AppError::LoginThrottled {
                            retry_after_secs: 1,
                        });
                    }
                    tokio::time::sleep(PENDING_POLL).await;
                }
            }
        }
    }

    /// A counted attempt whose secret was wrong: logs it for the account, if any, and
    /// warns the owner when it is the one that locked the login.
    pub(super) async fn fail_attempt(
        &self,
        counted: &CountedAttempt,
        warn: bool,
        client: &Client,
        now: i64,
    ) -> AppError {
        // Decided: a failure now, no longer pending.
        if let Err(e) = self.store.settle_failure(&counted.login_key).await {
            return e.into();
        }
        let Some(account_id) = counted.account_id.as_ref() else {
            return AppError::InvalidCredentials;
        };
        let event = self.event(account_id, "login_failed", client, now);
        if let Err(e) = self.store.put_event(&event).await {
            return e.into();
        }
        if warn && counted.failures == self.limits.max_failures {
            self.warn_owner(account_id).await;
        }
        AppError::InvalidCredentials
    }

    /// The n-th failure past the limit locks the login for base·2ⁿ⁻¹ after it, capped.
    /// Attempts still pending at `now` are not failures (yet).
    pub(super) fn locked_until(&self, failures: &LoginFailures, now: i64) -> i64 {
        match failures.failed(now).checked_sub(self.limits.max_failures) {
            Some(over) => {
                let delay = secs(self.limits.lock_base)
                    .saturating_mul(1_i64 << over.min(20))
                    .min(secs(self.limits.lock_max));
                failures.last_failure_at.saturating_add(delay)
            }
            None => 0,
        }
    }

    /// Tells the owner that their login is now locked after failed attempts.
    pub(super) async fn warn_owner(&self, account_id: &AccountId) {
        let account = match self.store.get_account(Some(account_id)).await {
            Ok(Some(a)) => a,
            _ => return,
        };
        let text = "Несколько раз подряд в ваш аккаунт пытались войти с неверным паролем, \
                    и вход временно ограничен. Если это были не вы, смените пароль.";
        self.notify_email(account_id, &account.email, LOCKED_SUBJECT, text)
            .await;
    }
}
