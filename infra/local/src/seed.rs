//! `uslugi-local seed`: a demo family in a running local stack, made the way real
//! clients and billers would make it — over the gateway, with codes read from the
//! outbox and billers created by the admin command — so a newcomer sees bills a minute
//! after `make dev`.
//!
//! Every running `up` leaves what the admin command needs (table, the HMAC secret's ARN,
//! stage, endpoint) in its own `.local/stacks/<gateway port>.env`, and `make dev`'s also
//! in `.local/stack.env`; each removes only the files that still hold what it wrote, so
//! stacks side by side in one checkout never take each other's away. `seed` reads the
//! file of the gateway it is pointed at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where `make dev`'s stack (`up --tools-env`) leaves its environment for local tools.
pub const STACK_ENV_FILE: &str = ".local/stack.env";
/// Where every `up` leaves its environment, one file per gateway port.
pub const STACKS_DIR: &str = ".local/stacks";

/// The environment file of the stack whose gateway listens on `gateway_port`.
pub fn stack_env_path(repo_root: &Path, gateway_port: u16) -> PathBuf {
    repo_root
        .join(STACKS_DIR)
        .join(format!("{gateway_port}.env"))
}

/// The gateway port of a local gateway URL such as `http://127.0.0.1:3000/`.
pub fn gateway_port(gateway: &str) -> Option<u16> {
    let rest = gateway.split_once("://").map_or(gateway, |(_, r)| r);
    let authority = rest.split('/').next()?;
    match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None if gateway.starts_with("https://") => Some(443),
        None => Some(80),
    }
}

/// A tools environment file this stack wrote. It is removed only while it still
/// holds what this stack wrote: another stack may have written the same path since
/// (a later `make dev` on other ports, or a stack on a port this one left).
#[derive(Debug)]
pub struct StackEnvFile {
    pub path: PathBuf,
    written: String,
}

impl StackEnvFile {
    /// Writes `vars` to `path` (see [`write_stack_env`]).
    pub fn write(path: &Path, vars: &BTreeMap<String, String>) -> std::io::Result<StackEnvFile> {
        write_stack_env(path, vars)?;
        Ok(StackEnvFile {
            path: path.to_path_buf(),
            written: render(vars),
        })
    }

    /// Removes the file if it is still this stack's; whether it was removed.
    pub fn remove_if_own(&self) -> bool {
        match std::fs::read_to_string(&self.path) {
            Ok(now) if now == self.written => std::fs::remove_file(&self.path).is_ok(),
            _ => false,
        }
    }
}

fn render(vars: &BTreeMap<String, String>) -> String {
    vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

/// Variables of the functions' environment that local tools need: where the table is,
/// which secret holds the key of its hashes, the stage and integrations (the sandbox
/// card page checks them), and how to reach moto.
pub fn tool_environment(function_env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    function_env
        .iter()
        .filter(|(k, _)| {
            matches!(
                k.as_str(),
                "TABLE_NAME" | "HMAC_SECRET_ARN" | "STAGE" | "INTEGRATIONS"
            ) || k.starts_with("AWS_")
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Writes `KEY=VALUE` lines readable only by the owner (they open the local stack's
/// table and secret to whoever reads them).
pub fn write_stack_env(path: &Path, vars: &BTreeMap<String, String>) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(render(vars).as_bytes())
}

fn read_stack_env(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "{}: {e} — is a local stack running on that gateway (make dev, make seed \
             GATEWAY_PORT=...)?",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

/// A UIN with its GIS GMP check digit (weights 1..10; prefixes whose first pass gives
/// 10 are skipped rather than weighed again).
fn uin(prefix: &str, serial: u32) -> String {
    let mut n = serial;
    loop {
        let body = format!("{prefix}{n:0width$}", width = 19 - prefix.len());
        let sum: u32 = body
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * (i as u32 % 10 + 1))
            .sum();
        if sum % 11 < 10 {
            return format!("{body}{}", sum % 11);
        }
        n += 1;
    }
}

struct Seeder {
    http: reqwest::Client,
    gateway: String,
    admin: PathBuf,
    env: Vec<(String, String)>,
    ip: u32,
}

struct Reply {
    status: u16,
    body: Value,
}

/// A request to the gateway as a client sends it: from `client_ip` and `user_agent`, with
/// the bearer `token` and the JSON `body` where given. The seed script and the end-to-end
/// tests call the API this one way.
pub fn client_request(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    client_ip: &str,
    user_agent: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::RequestBuilder {
    let mut request = http
        .request(method, url)
        .header("x-forwarded-for", client_ip)
        .header("user-agent", user_agent);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    request
}

impl Seeder {
    /// A fresh client address per request, so the per-address limits of a real
    /// deployment do not stop one script creating a family.
    fn next_ip(&mut self) -> String {
        self.ip += 1;
        format!("198.18.{}.{}", self.ip / 250, self.ip % 250 + 1)
    }

    async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply, String> {
        let client_ip = self.next_ip();
        let request = client_request(
            &self.http,
            method.clone(),
            &format!("{}{path}", self.gateway),
            &client_ip,
            "uslugi-local seed",
            token,
            body.as_ref(),
        );
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok(Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        })
    }

    async fn expect(
        &mut self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        ok: &[u16],
    ) -> Result<Value, String> {
        let reply = self.call(method.clone(), path, token, body).await?;
        if ok.contains(&reply.status) {
            Ok(reply.body)
        } else {
            Err(format!("{method} {path}: {} {}", reply.status, reply.body))
        }
    }

    /// A citizen's profile as `GET /v1/profile` answers it.
    async fn profile(&mut self, token: &str) -> Result<Value, String> {
        let get = reqwest::Method::GET;
        self.expect(get, "/v1/profile", Some(token), None, &[200])
            .await
    }

    /// Writes a citizen's profile once: only while it is at version 0, so that an earlier
    /// seed's profile stays as it is.
    async fn first_profile(&mut self, token: &str, profile: Value) -> Result<(), String> {
        let version = self.profile(token).await?["version"].clone();
        if version != 0 {
            return Ok(());
        }
        let reply = self
            .http
            .patch(format!("{}/v1/profile", self.gateway))
            .header("authorization", format!("Bearer {token}"))
            .header("if-match", "\"0\"")
            .header("content-type", "application/json")
            .body(profile.to_string())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !reply.status().is_success() {
            return Err(format!(
                "PATCH /v1/profile: {}",
                reply.text().await.unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// Changes a citizen's profile with `body` over its current version, read again when
    /// the verification worker moved it meanwhile (412).
    async fn patch_profile(&mut self, token: &str, body: Value) -> Result<(), String> {
        for _ in 0..5 {
            let version = self.profile(token).await?["version"].clone();
            let client_ip = self.next_ip();
            let reply = client_request(
                &self.http,
                reqwest::Method::PATCH,
                &format!("{}/v1/profile", self.gateway),
                &client_ip,
                "uslugi-local seed",
                Some(token),
                Some(&body),
            )
            .header("if-match", format!("\"{version}\""))
            .send()
            .await
            .map_err(|e| format!("PATCH /v1/profile: {e}"))?;
            match reply.status().as_u16() {
                200 => return Ok(()),
                412 => tokio::time::sleep(Duration::from_millis(500)).await,
                status => {
                    let text = reply.text().await.unwrap_or_default();
                    return Err(format!("PATCH /v1/profile: {status} {text}"));
                }
            }
        }
        Err("PATCH /v1/profile: the profile kept changing under the seed".into())
    }

    /// Waits up to a minute for the sandbox checks to leave the profile `done`; whether
    /// they did.
    async fn profile_settled(
        &mut self,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Result<bool, String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let profile = self.profile(token).await?;
            if done(&profile) {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The messages the local outbox holds for `destination`, newest first.
    async fn outbox(&self, destination: &str) -> Result<Vec<Value>, String> {
        let outbox: Value = self
            .http
            .get(format!(
                "{}/_local/outbox?to={}",
                self.gateway,
                percent_encoding::utf8_percent_encode(
                    destination,
                    percent_encoding::NON_ALPHANUMERIC
                )
            ))
            .send()
            .await
            .map_err(|e| format!("outbox: {e}"))?
            .json()
            .await
            .map_err(|e| format!("outbox: {e}"))?;
        Ok(outbox["messages"].as_array().cloned().unwrap_or_default())
    }

    /// A verification token for a contact, through the code flow and the outbox.
    async fn confirmed(&mut self, channel: &str, destination: &str) -> Result<String, String> {
        let sent = self
            .expect(
                reqwest::Method::POST,
                "/v1/codes",
                None,
                Some(json!({"channel": channel, "destination": destination, "purpose": "registration"})),
                &[202],
            )
            .await?;
        let id = sent["id"].as_str().unwrap_or_default().to_string();
        let messages = self.outbox(destination).await?;
        let code = messages
            .first()
            .map(|m| code_in(&m["text"]))
            .unwrap_or_default();
        let verified = self
            .expect(
                reqwest::Method::POST,
                &format!("/v1/codes/{id}/verify"),
                None,
                Some(json!({ "code": code })),
                &[200],
            )
            .await?;
        Ok(verified["verification_token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Registers a citizen (or finds them registered by an earlier seed) and logs in.
    async fn citizen(
        &mut self,
        last: &str,
        first: &str,
        middle: &str,
        email: &str,
        phone: &str,
    ) -> Result<String, String> {
        let login = json!({"login": email, "password": PASSWORD});
        let existing = self
            .call(
                reqwest::Method::POST,
                "/v1/sessions",
                None,
                Some(login.clone()),
            )
            .await?;
        if existing.status == 201 {
            return Ok(existing.body["token"]
                .as_str()
                .unwrap_or_default()
                .to_string());
        }
        let email_token = self.confirmed("email", email).await?;
        let phone_token = self.confirmed("sms", phone).await?;
        self.expect(
            reqwest::Method::POST,
            "/v1/accounts",
            None,
            Some(json!({
                "last_name": last, "first_name": first, "middle_name": middle,
                "email": email, "phone": phone, "password": PASSWORD,
                "security_question": "Кличка первого питомца", "security_answer": "Барсик",
                "email_verification_token": email_token, "phone_verification_token": phone_token,
            })),
            &[201],
        )
        .await?;
        let session = self
            .expect(
                reqwest::Method::POST,
                "/v1/sessions",
                None,
                Some(login),
                &[201],
            )
            .await?;
        Ok(session["token"].as_str().unwrap_or_default().to_string())
    }

    /// A biller named `name`, registered for the UINs that share all but the last digit
    /// of `uin` and for its payee, as a biller's key writes nothing else; its key.
    fn create_biller(&self, name: &str, uin: &str) -> Result<String, String> {
        let biller = self.admin(&[
            "create-biller",
            "--name",
            name,
            "--uin-prefixes",
            &uin[..18],
            "--payee-name",
            name,
            "--payee-inn",
            PAYEE_INN,
            "--payee-kpp",
            PAYEE_KPP,
            "--payee-bic",
            PAYEE_BIC,
            "--payee-account",
            PAYEE_ACCOUNT,
        ])?;
        Ok(biller["key"].as_str().unwrap_or_default().to_string())
    }

    fn admin(&self, args: &[&str]) -> Result<Value, String> {
        let out = std::process::Command::new(&self.admin)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|e| format!("{}: {e} — build it with `make build`", self.admin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "uslugi-admin: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("uslugi-admin output: {e}"))
    }
}

impl Seeder {
    /// An operator of a service centre, who has the citizen and their passport in front
    /// of them, confirms the account (nothing when it is confirmed already).
    async fn confirmed_at_desk(
        &mut self,
        token: &str,
        snils: &str,
        passport: (&str, &str),
    ) -> Result<(), String> {
        if self.profile(token).await?["level"] == "confirmed" {
            return Ok(());
        }
        let operator = self.admin(&[
            "create-operator",
            "--name",
            "Петрова А. В.",
            "--centre",
            "МФЦ района Тверской",
        ])?;
        let key = operator["key"].as_str().unwrap_or_default().to_string();
        self.expect(
            reqwest::Method::POST,
            "/v1/operator/confirmations",
            Some(&key),
            Some(json!({"snils": snils, "passport_series": passport.0,
                        "passport_number": passport.1})),
            &[200, 409],
        )
        .await?;
        Ok(())
    }

    /// Proves a second factor in the session `token` with a step-up code to `phone`.
    async fn step_up(&mut self, token: &str, phone: &str) -> Result<(), String> {
        let path = "/v1/sessions/current/step-up";
        // The phone got its registration code moments ago: a new code waits for the
        // resend interval, which the refusal says.
        let mut sent = self
            .call(reqwest::Method::POST, path, Some(token), None)
            .await?;
        if sent.status == 429 && sent.body["code"] == "code_resend_too_early" {
            let wait = sent.body["retry_after"].as_u64().unwrap_or(60);
            println!("seed: waiting {wait} s to send the mother a step-up code");
            tokio::time::sleep(Duration::from_secs(wait + 1)).await;
            sent = self
                .call(reqwest::Method::POST, path, Some(token), None)
                .await?;
        }
        if sent.status != 202 {
            return Err(format!("POST {path}: {} {}", sent.status, sent.body));
        }
        let id = sent.body["id"].as_str().unwrap_or_default().to_string();
        let code = self
            .outbox(phone)
            .await?
            .first()
            .map(|m| code_in(&m["text"]))
            .unwrap_or_default();
        self.expect(
            reqwest::Method::POST,
            &format!("{path}/verify"),
            Some(token),
            Some(json!({"id": id, "code": code})),
            &[200],
        )
        .await?;
        Ok(())
    }
}

/// The six-digit code in a message's text (empty when there is none).
fn code_in(text: &Value) -> String {
    text.as_str()
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_default()
        .to_string()
}

const PASSWORD: &str = "Demo-Portal-2026";
const MOTHER_EMAIL: &str = "elena.ivanova@example.ru";
const FATHER_EMAIL: &str = "petr.ivanov@example.ru";
const MOTHER_PASSPORT: (&str, &str) = ("45 10", "123456");
const FATHER_PASSPORT: (&str, &str) = ("45 07", "654321");
const MOTHER_PHONE: &str = "+79160000101";
const FATHER_PHONE: &str = "+79160000102";
/// The parents' SNILS, as the sandbox civil registry's birth records of the children's
/// certificates (`…65432x`) name them.
const MOTHER_SNILS: &str = "776-543-201 28";
const FATHER_SNILS: &str = "776-543-202 29";

/// The demo billers' payee (each under its own name); the account's control key agrees
/// with the BIC, as registration checks.
const PAYEE_INN: &str = "7707083893";
const PAYEE_KPP: &str = "770701001";
const PAYEE_BIC: &str = "044525000";
const PAYEE_ACCOUNT: &str = "03234643350000007300";

/// The mother's company, as the business register sandbox knows it: active under the
/// sandbox's OGRN, its head the person whose INN is `77` and the company INN's last
/// eight digits with their check digits (`head_inn_of`, docs/testing.md) — the mother's.
const COMPANY_INN: &str = "7705123452";
const COMPANY_KPP: &str = "773601001";
const COMPANY_OGRN: &str = "1027700132195";
/// The mother's personal INN, verified by the tax service sandbox: the company's head.
const MOTHER_INN: &str = "770512345266";

fn payee(name: &str) -> Value {
    json!({"name": name, "inn": PAYEE_INN, "kpp": PAYEE_KPP, "bic": PAYEE_BIC,
           "account": PAYEE_ACCOUNT})
}

/// Seeds the demo family into the stack behind `gateway` and prints how to sign in.
pub async fn seed(repo_root: &Path, gateway: &str) -> Result<(), String> {
    let port = gateway_port(gateway)
        .ok_or_else(|| format!("cannot tell the port of the gateway {gateway:?}"))?;
    let env = read_stack_env(&stack_env_path(repo_root, port))?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root.join("target"));
    let mut s = Seeder {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| e.to_string())?,
        gateway: gateway.trim_end_matches('/').to_string(),
        admin: target.join("debug/uslugi-admin"),
        env,
        ip: 0,
    };
    use reqwest::Method;

    println!("seed: the parents");
    let mother = s
        .citizen("Иванова", "Елена", "Сергеевна", MOTHER_EMAIL, MOTHER_PHONE)
        .await?;
    let father = s
        .citizen("Иванов", "Пётр", "Андреевич", FATHER_EMAIL, FATHER_PHONE)
        .await?;

    println!("seed: the mother's documents, checked by the sandbox registries");
    s.first_profile(
        &mother,
        json!({
            "personal": {"birth_date": "1988-04-15", "gender": "female", "citizenship": "RUS"},
            "addresses": {"registration": "125009, г. Москва, ул. Тверская, д. 13, кв. 5"},
            "documents": {"snils": MOTHER_SNILS, "inn": MOTHER_INN,
                          "passport": {"series": MOTHER_PASSPORT.0, "number": MOTHER_PASSPORT.1, "issue_date": "2008-05-20",
                                       "department_code": "770-001", "issued_by": "ОВД района Тверской г. Москвы"}},
        }),
    )
    .await?;
    // Standard, as adding the children and paying need (the access matrix).
    if !s
        .profile_settled(&mother, |p| p["level"] != "simplified")
        .await?
    {
        return Err(
            "the mother's documents are not verified yet; run `make seed` again in a minute".into(),
        );
    }

    // Standard, as adding the children needs (the access matrix).
    println!("seed: the father's SNILS, which the birth records name too, and his passport");
    s.first_profile(
        &father,
        json!({
            "personal": {"birth_date": "1986-02-20", "gender": "male", "citizenship": "RUS"},
            "documents": {"snils": FATHER_SNILS,
                          "passport": {"series": FATHER_PASSPORT.0, "number": FATHER_PASSPORT.1, "issue_date": "2006-03-10",
                                       "department_code": "770-002", "issued_by": "ОВД района Хамовники г. Москвы"}},
        }),
    )
    .await?;
    if !s
        .profile_settled(&father, |p| p["level"] != "simplified")
        .await?
    {
        return Err(
            "the father's documents are not verified yet; run `make seed` again in a minute".into(),
        );
    }

    // The civil registry sandbox names both parents on both birth records (certificates
    // 65432x: parents 77654320 1/2, see docs/testing.md); each link is confirmed by the
    // verify-documents worker, and the children's bills show once it is.
    println!("seed: two children (held by both parents) and a car");
    let children = [
        json!({"last_name": "Иванова", "first_name": "Мария", "middle_name": "Петровна", "birth_date": "2019-06-01",
               "gender": "female", "birth_certificate": "II-МЮ 654321"}),
        json!({"last_name": "Иванов", "first_name": "Алексей", "middle_name": "Петрович", "birth_date": "2015-09-12",
               "gender": "male", "birth_certificate": "I-МЮ 654322"}),
    ];
    for child in &children {
        for parent in [&mother, &father] {
            s.expect(
                Method::POST,
                "/v1/profile/children",
                Some(parent),
                Some(child.clone()),
                &[202, 409],
            )
            .await?;
        }
    }
    s.expect(
        Method::POST,
        "/v1/profile/vehicles",
        Some(&mother),
        Some(json!({"sts": "77 УО 123456", "plate": "А123ВС77", "title": "Семейный автомобиль"})),
        &[201, 409],
    )
    .await?;

    println!("seed: billers and their charges");
    let bills = [
        (
            "Детский сад № 1234",
            "kindergarten",
            "Родительская плата за присмотр и уход, ноябрь",
            320_000u64,
            json!([{"kind": "birth_certificate", "value": "II-МЮ 654321"}]),
            Value::Null,
            "0751130299202000013",
        ),
        (
            "Школа искусств «Гармония»",
            "clubs",
            "Кружок рисования, ноябрь",
            180_000,
            json!([{"kind": "birth_certificate", "value": "I-МЮ 654322"}]),
            Value::Null,
            "0751130199002000013",
        ),
        (
            "Мосэнергосбыт",
            "utilities",
            "Электроэнергия, октябрь",
            245_670,
            json!([{"kind": "snils", "value": MOTHER_SNILS}]),
            Value::Null,
            "1821130199001000013",
        ),
        (
            "ГИБДД ГУ МВД России по г. Москве",
            "fines",
            "Штраф по постановлению 18810177220000000015",
            500_000,
            json!([{"kind": "sts", "value": "77 УО 123456"}]),
            json!({"amount": 250_000, "until": "2099-12-31"}),
            "1881160112301000114",
        ),
    ];
    for (serial, (name, category, purpose, amount, payers, discount, kbk19)) in
        bills.iter().enumerate()
    {
        let number = uin("18810177", 7_000_000 + serial as u32 * 10);
        // Seeding again adds nothing: a bill already there stays with its biller.
        let known = s
            .call(
                Method::GET,
                &format!("/v1/bills/{number}"),
                Some(&mother),
                None,
            )
            .await?;
        if known.status == 200 {
            continue;
        }
        let key = s.create_biller(name, &number)?;
        let mut body = json!({
            "amount": amount, "payee": payee(name), "purpose": purpose, "kbk": format!("{kbk19}0"),
            "oktmo": "45383000", "bill_date": "2026-11-01", "due_date": "2026-12-10",
            "category": category, "payers": payers,
        });
        if !discount.is_null() {
            body["discount"] = discount.clone();
        }
        s.expect(
            Method::PUT,
            &format!("/v1/biller/charges/{number}"),
            Some(&key),
            Some(body),
            &[200, 201],
        )
        .await?;
    }

    println!("seed: the mother's company, the father its accountant, and its bills");
    let company = company(&mut s, &mother, &father).await?;

    println!();
    println!("The Ivanov family is in. Sign in with:");
    println!("  elena.ivanova@example.ru / {PASSWORD}   (mother: documents verified, a car, two children)");
    println!("  petr.ivanov@example.ru   / {PASSWORD}   (father: documents verified, the same two children)");
    println!();
    println!("Then:");
    println!(
        "  TOKEN=$(curl -s -X POST {0}/v1/sessions -H 'content-type: application/json' \\",
        s.gateway
    );
    println!("    -d '{{\"login\":\"elena.ivanova@example.ru\",\"password\":\"{PASSWORD}\"}}' | python3 -c 'import sys,json;print(json.load(sys.stdin)[\"token\"])')");
    println!(
        "  curl -s {0}/v1/bills -H \"authorization: Bearer $TOKEN\"",
        s.gateway
    );
    println!();
    println!(
        "The mother's company ООО «Песочница {COMPANY_INN}» (INN {COMPANY_INN}, KPP {COMPANY_KPP}) is {}:",
        company.id
    );
    println!("the mother its owner, the father its accountant. Act for it with the header");
    println!("  -H 'X-Organisation-Id: {}'", company.id);
    println!(
        "  curl -s {0}/v1/organisations/{1}/members -H \"authorization: Bearer $TOKEN\" -H 'X-Organisation-Id: {1}'",
        s.gateway, company.id
    );
    println!(
        "Its bills (payer {COMPANY_INN}/{COMPANY_KPP}): {}",
        company.uins.join(", ")
    );
    println!(
        "  curl -s {0}/v1/bills -H \"authorization: Bearer $TOKEN\" -H 'X-Organisation-Id: {1}'",
        s.gateway, company.id
    );
    Ok(())
}

/// The UINs of the company's two bills, under one biller's prefix (all but the last two
/// digits).
fn company_uins() -> Vec<String> {
    [7_000_100, 7_000_105]
        .into_iter()
        .map(|serial| uin("07111105", serial))
        .collect()
}

/// The seed's company: its id and the UINs of its bills.
struct Company {
    id: String,
    uins: Vec<String>,
}

/// The mother registers her company through the API, as its head (her verified INN,
/// the confirmed level an operator gives in person), invites the father as accountant,
/// who joins with the code from the outbox, and a biller pushes two charges on the
/// company's INN and KPP. Run again, it finds each step done and adds nothing.
async fn company(s: &mut Seeder, mother: &str, father: &str) -> Result<Company, String> {
    use reqwest::Method;

    // A family seeded before the company came holds the mother's earlier INN.
    if s.profile(mother).await?["documents"]["inn"] != MOTHER_INN {
        s.patch_profile(mother, json!({"documents": {"inn": MOTHER_INN}}))
            .await?;
    }
    let checked = s
        .profile_settled(mother, |p| {
            p["verification"]["inn"]["status"] == "verified" && p["level"] != "simplified"
        })
        .await?;
    if !checked {
        return Err(
            "the mother's INN and documents are not verified yet; run `make seed` again in a minute"
                .into(),
        );
    }
    // Organisations need the confirmed level (the access matrix): both parents are seen
    // at a service centre with their passports; and registering a company and inviting
    // a member need a second factor, a step-up code to the mother's phone.
    s.confirmed_at_desk(mother, MOTHER_SNILS, MOTHER_PASSPORT)
        .await?;
    s.confirmed_at_desk(father, FATHER_SNILS, FATHER_PASSPORT)
        .await?;
    s.step_up(mother, MOTHER_PHONE).await?;

    let listed = s
        .expect(Method::GET, "/v1/organisations", Some(mother), None, &[200])
        .await?;
    let known = listed["organisations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|o| o["inn"] == COMPANY_INN && o["status"] != "refused")
        .map(|o| o["id"].as_str().unwrap_or_default().to_string());
    let id = match known {
        Some(id) => id,
        None => {
            let asked = s
                .expect(
                    Method::POST,
                    "/v1/organisations",
                    Some(mother),
                    Some(
                        json!({"kind": "legal_entity", "inn": COMPANY_INN, "kpp": COMPANY_KPP,
                                "ogrn": COMPANY_OGRN, "email": "office@pesochnitsa.example.ru"}),
                    ),
                    &[202],
                )
                .await?;
            asked["id"].as_str().unwrap_or_default().to_string()
        }
    };
    // The register's answer, through the verification worker.
    let path = format!("/v1/organisations/{id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let org = loop {
        let org = s
            .expect(Method::GET, &path, Some(mother), None, &[200])
            .await?;
        if org["status"] != "pending" || Instant::now() > deadline {
            break org;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if org["status"] != "registered" {
        return Err(format!("the company is not registered: {org}"));
    }

    let joined = s
        .expect(Method::GET, "/v1/organisations", Some(father), None, &[200])
        .await?;
    let member = joined["organisations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["id"] == id.as_str());
    if !member {
        s.expect(
            Method::POST,
            &format!("/v1/organisations/{id}/invitations"),
            Some(mother),
            Some(json!({"channel": "email", "destination": FATHER_EMAIL, "role": "accountant"})),
            &[202],
        )
        .await?;
        let code = s
            .outbox(FATHER_EMAIL)
            .await?
            .iter()
            .find(|m| m["subject"] == "Приглашение в кабинет организации")
            .map(|m| code_in(&m["text"]))
            .unwrap_or_default();
        s.expect(
            Method::POST,
            "/v1/organisation-invitations/accept",
            Some(father),
            Some(json!({ "code": code })),
            &[200],
        )
        .await?;
    }

    // The city's property department bills the company's rent: one biller, two
    // charges, the company (INN and KPP) their payer.
    let name = "Департамент городского имущества города Москвы";
    let uins = company_uins();
    let rents = [
        (
            &uins[0],
            "Арендная плата за нежилое помещение, ноябрь",
            1_250_000u64,
        ),
        (
            &uins[1],
            "Арендная плата за нежилое помещение, декабрь",
            1_250_000,
        ),
    ];
    let mut key = None;
    for (number, purpose, amount) in rents {
        // Seeding again adds nothing: a bill already there stays with its biller. The
        // father looks it up, so that the mother's lookups stay those of her own bills.
        let known = s
            .call(
                Method::GET,
                &format!("/v1/bills/{number}"),
                Some(father),
                None,
            )
            .await?;
        if known.status == 200 {
            continue;
        }
        if key.is_none() {
            key = Some(s.create_biller(name, number)?);
        }
        let body = json!({
            "amount": amount, "payee": payee(name), "purpose": purpose,
            "kbk": "07111105034020000120", "oktmo": "45383000",
            "bill_date": "2026-12-01", "due_date": "2026-12-25", "category": "other",
            "payers": [{"kind": "inn_kpp", "value": format!("{COMPANY_INN}/{COMPANY_KPP}")}],
        });
        s.expect(
            Method::PUT,
            &format!("/v1/biller/charges/{number}"),
            key.as_deref(),
            Some(body),
            &[200, 201],
        )
        .await?;
    }
    Ok(Company { id, uins })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("uslugi-local-seed-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        dir
    }

    #[test]
    fn each_gateway_has_its_own_tools_env() {
        let root = Path::new("/repo");
        assert_eq!(
            stack_env_path(root, 3000),
            Path::new("/repo/.local/stacks/3000.env")
        );
        assert_ne!(stack_env_path(root, 3000), stack_env_path(root, 3100));
        assert_eq!(gateway_port("http://127.0.0.1:3100"), Some(3100));
        assert_eq!(gateway_port("http://127.0.0.1:3100/"), Some(3100));
        assert_eq!(gateway_port("http://localhost"), Some(80));
        assert_eq!(gateway_port("http://127.0.0.1:nope"), None);
    }

    #[test]
    fn a_stack_removes_only_the_tools_env_it_still_owns() {
        let dir = scratch("own");
        let path = dir.join(STACK_ENV_FILE);
        let first = BTreeMap::from([(
            "AWS_ENDPOINT_URL".to_string(),
            "http://127.0.0.1:4566".to_string(),
        )]);
        let second = BTreeMap::from([(
            "AWS_ENDPOINT_URL".to_string(),
            "http://127.0.0.1:4666".to_string(),
        )]);
        let a = StackEnvFile::write(&path, &first).unwrap();
        // A second stack writes the same file while the first still runs.
        let b = StackEnvFile::write(&path, &second).unwrap();
        assert!(!a.remove_if_own(), "the first stack took the second's file");
        assert_eq!(
            read_stack_env(&path).unwrap(),
            [(
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:4666".to_string()
            )]
        );
        assert!(b.remove_if_own());
        assert!(!path.exists());
        // Gone already: nothing to remove, no error.
        assert!(!b.remove_if_own());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_tools_env_is_for_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("mode");
        let path = stack_env_path(&dir, 3000);
        let vars = BTreeMap::from([("TABLE_NAME".to_string(), "t".to_string())]);
        StackEnvFile::write(&path, &vars).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "TABLE_NAME=t\n");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn uins_carry_their_check_digit() {
        let u = uin("18810177", 7_000_000);
        assert_eq!(u.len(), 20);
        let sum: u32 = u[..19]
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * (i as u32 % 10 + 1))
            .sum();
        assert_eq!(sum % 11, u32::from(u.as_bytes()[19] - b'0'));
    }

    #[test]
    fn the_mother_heads_the_company_the_sandbox_knows() {
        use shared::adapters::business_registry::{head_inn_of, ogrn_of, organisation_inn};
        assert_eq!(head_inn_of(COMPANY_INN), MOTHER_INN);
        assert_eq!(organisation_inn(&COMPANY_INN[..9]), COMPANY_INN);
        assert_eq!(ogrn_of(&COMPANY_OGRN[..12]), COMPANY_OGRN);
        let uins = company_uins();
        assert_eq!(uins.len(), 2);
        assert_ne!(uins[0], uins[1]);
        assert_eq!(uins[0][..18], uins[1][..18], "one biller's prefix");
    }

    #[test]
    fn tools_get_only_what_they_need() {
        let env = BTreeMap::from([
            ("TABLE_NAME".to_string(), "t".to_string()),
            ("HMAC_SECRET_ARN".to_string(), "arn:k".to_string()),
            ("STAGE".to_string(), "dev".to_string()),
            (
                "AWS_ENDPOINT_URL".to_string(),
                "http://127.0.0.1:4566".to_string(),
            ),
            ("RUST_LOG".to_string(), "info".to_string()),
        ]);
        let tools = tool_environment(&env);
        assert_eq!(tools.len(), 4);
        assert!(!tools.contains_key("RUST_LOG"));
    }
}
