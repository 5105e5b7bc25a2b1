//! Cold starts of real function binaries (`target/debug`, built by `make build`) against
//! moto, with the environment the template gives them: the HMAC key comes from the
//! secret `HMAC_SECRET_ARN` names, a bad secret stops the start without showing the key,
//! and a function that would run a sandbox refuses to start in the prod stage.
//!
//! A start counts as done when the binary asks the Lambda Runtime API for its first
//! event: a stand-in API here records that request, hands out the events a case gives
//! it, and keeps the function waiting after the last. The authorizer answers such events
//! across a rotation of the secret, as a deployed one would.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uslugi_local::intrinsics::Resolver;
use uslugi_local::moto::Moto;
use uslugi_local::provision::{provision, Clients};
use uslugi_local::template::Template;
use uslugi_local::{find_repo_root, function_environment, model};

/// How long a debug binary may take to start (or to give up) on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The Lambda Runtime API, as far as a function needs it: hands out `events` one per
/// poll (then keeps the poll waiting), and passes on each poll and each answer.
struct RuntimeApi {
    events: Mutex<VecDeque<Value>>,
    polled: mpsc::UnboundedSender<()>,
    answered: mpsc::UnboundedSender<Result<Value, Value>>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    let _ = api.polled.send(());
    let event = api
        .events
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop_front();
    let Some(event) = event else {
        // No more events: the function waits here until it is killed.
        return std::future::pending().await;
    };
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 10_000;
    (
        [
            ("lambda-runtime-aws-request-id", request_id()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:cold-start".to_string(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".to_string(),
            ),
        ],
        Json(event),
    )
        .into_response()
}

fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "cold-start-request-{}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

// The runtime posts its answers without a content type: read as bytes.
async fn response(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    let _ = api.answered.send(Ok(parsed(&body)));
    StatusCode::ACCEPTED
}

async fn error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    let _ = api.answered.send(Err(parsed(&body)));
    StatusCode::ACCEPTED
}

fn parsed(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Starts a Runtime API stand-in with `events`: its address, and the channels of polls
/// and answers.
async fn runtime_api(
    events: Vec<Value>,
) -> (
    String,
    mpsc::UnboundedReceiver<()>,
    mpsc::UnboundedReceiver<Result<Value, Value>>,
) {
    let (polled, polls) = mpsc::unbounded_channel();
    let (answered, answers) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        events: Mutex::new(events.into()),
        polled,
        answered,
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .fallback(|uri: axum::http::Uri| async move {
            eprintln!("runtime API stand-in: unexpected {uri}");
            StatusCode::NOT_FOUND
        })
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("runtime API stand-in: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("runtime API stand-in: {e}"))
        .to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, polls, answers)
}

/// What became of one cold start.
#[derive(Debug)]
enum Start {
    /// It polled for its first event after this long, answered the events (the
    /// function's result, or its error), and logged this.
    Ready {
        took: Duration,
        answers: Vec<Result<Value, Value>>,
        log: String,
    },
    /// It exited first, with this status and standard error.
    Exited { success: bool, stderr: String },
}

struct Harness {
    _moto: Moto,
    clients: Clients,
    /// The environment by function logical id, as the template gives it, pointed at moto.
    environments: BTreeMap<String, BTreeMap<String, String>>,
    target: PathBuf,
}

impl Harness {
    async fn start() -> Harness {
        let root = find_repo_root(env!("CARGO_MANIFEST_DIR")).expect("repository root");
        let log =
            std::env::temp_dir().join(format!("uslugi-cold-start-moto-{}.log", std::process::id()));
        let moto = Moto::start(&root.join(".venv/bin/moto_server"), &log)
            .await
            .unwrap_or_else(|e| panic!("moto: {e} (run `make venv`)"));
        let template = Template::load(&root.join("infra/template.yaml")).unwrap();
        let mut resolver = Resolver::new(&template, &[]).unwrap();
        let mut plan = model::plan(&mut resolver, &moto.url()).unwrap();
        let clients = Clients::new(&moto.url());
        let urls = provision(&clients, &plan.infrastructure).await.unwrap();
        for (id, url) in urls {
            if let Some(p) = resolver.physical_mut(&id) {
                p.ref_value = Value::String(url);
            }
        }
        plan = model::finish_plan(&resolver).unwrap();
        let environments = plan
            .functions
            .iter()
            .map(|f| {
                (
                    f.logical_id.clone(),
                    function_environment(&f.environment, &moto.url(), &[]),
                )
            })
            .collect();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"))
            .join("debug");
        Harness {
            _moto: moto,
            clients,
            environments,
            target,
        }
    }

    /// Starts `binary` with the environment of `function` and `changes` on top (an empty
    /// value removes the variable), and waits for its first poll or its exit.
    async fn cold_start(&self, function: &str, binary: &str, changes: &[(&str, &str)]) -> Start {
        self.invoke(function, binary, changes, vec![]).await
    }

    /// [`Harness::cold_start`], then the function answers `events`, one after another.
    async fn invoke(
        &self,
        function: &str,
        binary: &str,
        changes: &[(&str, &str)],
        events: Vec<Value>,
    ) -> Start {
        let expected = events.len();
        let (api, mut polls, mut answered) = runtime_api(events).await;
        let path = self.target.join(binary);
        assert!(
            path.is_file(),
            "{} is missing: build the functions first (make build)",
            path.display()
        );
        let mut env = self.environments[function].clone();
        for (k, v) in changes {
            if v.is_empty() {
                env.remove(*k);
            } else {
                env.insert(k.to_string(), v.to_string());
            }
        }
        env.insert("AWS_LAMBDA_RUNTIME_API".into(), api);
        env.insert("AWS_LAMBDA_FUNCTION_NAME".into(), binary.into());
        env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), "128".into());
        env.insert("AWS_LAMBDA_FUNCTION_VERSION".into(), "$LATEST".into());
        env.insert("AWS_LAMBDA_LOG_STREAM_NAME".into(), "cold-start".into());
        env.insert("AWS_LAMBDA_LOG_GROUP_NAME".into(), "cold-start".into());
        let started = Instant::now();
        let mut child: Child = Command::new(&path)
            .env_clear()
            .envs(&env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = loop {
            if polls.try_recv().is_ok() {
                let took = started.elapsed();
                let mut answers = Vec::new();
                while answers.len() < expected {
                    match tokio::time::timeout(START_TIMEOUT, answered.recv()).await {
                        Ok(Some(answer)) => answers.push(answer),
                        _ => break,
                    }
                }
                let _ = child.kill();
                let _ = child.wait();
                let mut log = String::new();
                if let Some(mut pipe) = child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut log);
                }
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut log);
                }
                assert_eq!(
                    answers.len(),
                    expected,
                    "{binary} answered {} of {expected} events: {log}",
                    answers.len()
                );
                break Start::Ready { took, answers, log };
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                let mut stdout = String::new();
                if let Some(mut pipe) = child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut stdout);
                }
                break Start::Exited {
                    success: status.success(),
                    stderr: format!("{stderr}{stdout}"),
                };
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "{binary} neither started nor exited within {START_TIMEOUT:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let _ = child.kill();
        let _ = child.wait();
        outcome
    }

    /// Runs `uslugi-admin` with the stack's environment in `stage`.
    fn admin(&self, args: &[&str], stage: &str) -> std::process::Output {
        let mut env = self.environments["PayFunction"].clone();
        env.insert("STAGE".into(), stage.into());
        Command::new(self.target.join("uslugi-admin"))
            .args(args)
            .env_clear()
            .envs(&env)
            .output()
            .unwrap_or_else(|e| panic!("uslugi-admin: {e} (make build)"))
    }

    /// A new operator's key, made by `uslugi-admin` under the secret as it is now.
    fn operator_key(&self) -> String {
        let out = self.admin(
            &[
                "create-operator",
                "--name",
                "Петрова А. В.",
                "--centre",
                "МФЦ Арбат",
            ],
            "dev",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
        printed["key"].as_str().unwrap().to_string()
    }

    async fn put_secret(&self, value: String) {
        self.clients
            .secretsmanager
            .put_secret_value()
            .secret_id(self.secret_arn())
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }

    /// What a freshly started authorizer answers for each bearer key.
    async fn authorize(&self, keys: &[&str]) -> Vec<bool> {
        let events = keys
            .iter()
            .map(|k| json!({"headers": {"authorization": format!("Bearer {k}")}}))
            .collect();
        match self
            .invoke("AuthorizerFunction", "authorizer", &[], events)
            .await
        {
            Start::Ready { answers, .. } => answers
                .into_iter()
                .map(|a| match a {
                    Ok(body) => {
                        assert_eq!(body["isAuthorized"], true, "{body}");
                        assert_eq!(body["context"]["role"], "operator", "{body}");
                        true
                    }
                    Err(body) => {
                        assert_eq!(body["errorMessage"], "Unauthorized", "{body}");
                        false
                    }
                })
                .collect(),
            other => panic!("the authorizer did not start: {other:?}"),
        }
    }

    fn secret_arn(&self) -> String {
        self.environments["PayFunction"]["HMAC_SECRET_ARN"].clone()
    }
}

fn refused(start: Start, binary: &str) -> String {
    match start {
        Start::Exited {
            success: false,
            stderr,
        } => stderr,
        other => panic!("{binary} should have refused to start: {other:?}"),
    }
}

/// Every case shares one moto, one after another: a broken secret must not leak into
/// the other cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_starts_read_the_key_and_refuse_sandboxes_in_prod() {
    let h = Harness::start().await;

    // dev with sandboxes: both start, with the key read from Secrets Manager (moto).
    for (function, binary) in [
        ("PayFunction", "pay"),
        ("VerifyDocumentsFunction", "verify-documents"),
        ("CodesFunction", "codes"),
    ] {
        let env = &h.environments[function];
        assert_eq!(env["STAGE"], "dev");
        assert_eq!(env["INTEGRATIONS"], "sandbox");
        assert!(
            !env.contains_key("HMAC_SECRET"),
            "no key in the environment"
        );
        match h.cold_start(function, binary, &[]).await {
            Start::Ready { took, log, .. } => {
                eprintln!("{binary}: first poll {took:?} after exec");
                assert!(log.contains("HMAC keys read"), "{log}");
                assert!(log.contains(r#""current":1"#), "{log}");
            }
            other => panic!("{binary} did not start in dev: {other:?}"),
        }
    }

    // What the secret adds to a cold start: one GetSecretValue (here against moto).
    let mut reads = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        h.clients
            .secretsmanager
            .get_secret_value()
            .secret_id(h.secret_arn())
            .send()
            .await
            .unwrap();
        reads.push(started.elapsed());
    }
    reads.sort();
    eprintln!("GetSecretValue against moto: median {:?}", reads[2]);

    // prod with sandboxes: each function that would run one refuses, and says why.
    let prod = [("STAGE", "prod")];
    let stderr = refused(
        h.cold_start("VerifyDocumentsFunction", "verify-documents", &prod)
            .await,
        "verify-documents",
    );
    assert!(stderr.contains("INTEGRATIONS"), "{stderr}");
    assert!(stderr.contains("verify any passport"), "{stderr}");
    for (function, binary) in [
        ("PayFunction", "pay"),
        ("ReconcilePaymentsFunction", "reconcile-payments"),
        ("AutopaysFunction", "autopays"),
        ("RunAutopaysFunction", "run-autopays"),
    ] {
        let stderr = refused(h.cold_start(function, binary, &prod).await, binary);
        assert!(stderr.contains("INTEGRATIONS"), "{binary}: {stderr}");
        assert!(
            stderr.contains("paid without any money"),
            "{binary}: {stderr}"
        );
    }
    let stderr = refused(
        h.cold_start("PaymentNoticesFunction", "payment-notices", &prod)
            .await,
        "payment-notices",
    );
    assert!(stderr.contains("no biller hears"), "{stderr}");
    // A function without a sandbox starts in prod all the same.
    assert!(matches!(
        h.cold_start("CodesFunction", "codes", &prod).await,
        Start::Ready { .. }
    ));

    // Fault injection never runs in prod: any plan refuses the cold start there.
    let stderr = refused(
        h.cold_start(
            "CodesFunction",
            "codes",
            &[("STAGE", "prod"), ("FAULTS", "sesv2=timeout@0.01")],
        )
        .await,
        "codes",
    );
    assert!(
        stderr.contains("FAULTS") && stderr.contains("refused in stage prod"),
        "{stderr}"
    );
    // A plan that does not parse names the variable and the rule.
    let stderr = refused(
        h.cold_start(
            "CodesFunction",
            "codes",
            &[("FAULTS", "sns=error;sqs=boom")],
        )
        .await,
        "codes",
    );
    assert!(
        stderr.contains("FAULTS") && stderr.contains("`sqs=boom`"),
        "{stderr}"
    );
    // Elsewhere a plan starts, and says so.
    match h
        .cold_start(
            "CodesFunction",
            "codes",
            &[("FAULTS", "sesv2=timeout@0.01")],
        )
        .await
    {
        Start::Ready { log, .. } => assert!(log.contains("fault injection is on"), "{log}"),
        other => panic!("codes did not start with a plan in dev: {other:?}"),
    }

    // The admin command's sandbox card page refuses in prod too, and works in dev.
    let card = [
        "sandbox-card-token",
        "--number",
        "4242424242424242",
        "--exp",
        "12/30",
    ];
    let out = h.admin(&card, "prod");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("INTEGRATIONS"), "{stderr}");
    assert!(stderr.contains("paid without any money"), "{stderr}");
    let out = h.admin(&card, "dev");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"token\""));

    // live without the acquirer's secret: the start fails naming the variable, and the
    // sandbox acquirer is never built in its place.
    let stderr = refused(
        h.cold_start("PayFunction", "pay", &[("INTEGRATIONS", "live")])
            .await,
        "pay",
    );
    assert!(stderr.contains("TBANK_SECRET_ARN"), "{stderr}");

    // No ARN: the start fails naming the variable.
    let stderr = refused(
        h.cold_start("CodesFunction", "codes", &[("HMAC_SECRET_ARN", "")])
            .await,
        "codes",
    );
    assert!(stderr.contains("HMAC_SECRET_ARN"), "{stderr}");

    // A secret without "current", then one with a short key: refused, key not shown.
    let leaky_key = "Q7u3bZx9W2mK5pL8rT4vN6yH1cJ0dF3gS5aE7wR9tY2uI4oP6lK8jH0gF2dS4aZ";
    for (secret, says) in [
        (format!(r#"{{"key_1":"{leaky_key}"}}"#), "current"),
        (
            format!(r#"{{"current":"2","key_1":"{leaky_key}","key_2":"Q7u3bZx9"}}"#),
            "key_2",
        ),
    ] {
        h.put_secret(secret).await;
        let stderr = refused(h.cold_start("CodesFunction", "codes", &[]).await, "codes");
        assert!(stderr.contains("HMAC_SECRET_ARN"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        assert!(!stderr.contains("Q7u3bZx9"), "the key leaked: {stderr}");
    }

    // A rotated secret starts again.
    h.clients
        .secretsmanager
        .put_secret_value()
        .secret_id(h.secret_arn())
        .secret_string(format!(
            r#"{{"current":"2","key_1":"{leaky_key}","key_2":"{}"}}"#,
            leaky_key.to_lowercase()
        ))
        .send()
        .await
        .unwrap();
    match h.cold_start("CodesFunction", "codes", &[]).await {
        Start::Ready { log, .. } => {
            // The cold start reports the versions it found, and no key.
            assert!(log.contains(r#""current":2"#), "{log}");
            assert!(log.contains(r#""identifiers":1"#), "{log}");
            assert!(!log.contains("Q7u3bZx9"), "the key leaked: {log}");
        }
        other => panic!("codes did not start with a rotated secret: {other:?}"),
    }
}

/// A rotation as an engineer does it, through the real admin command and authorizer: a
/// key made under version 1 still works once version 2 is current, keys made then are
/// hashed under version 2, and removing version 1 ends only the keys made under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_keys_outlive_a_rotation_until_their_version_is_removed() {
    let h = Harness::start().await;
    let (k1, k2) = ("k1".repeat(20), "k2".repeat(20));
    h.put_secret(format!(r#"{{"current":"1","key_1":"{k1}"}}"#))
        .await;
    let old = h.operator_key();
    h.put_secret(format!(
        r#"{{"current":"2","key_1":"{k1}","key_2":"{k2}"}}"#
    ))
    .await;
    let new = h.operator_key();
    assert_eq!(
        h.authorize(&[&old, &new, "op_unknown"]).await,
        [true, true, false]
    );

    h.put_secret(format!(
        r#"{{"current":"2","identifiers":"2","key_2":"{k2}"}}"#
    ))
    .await;
    assert_eq!(h.authorize(&[&old, &new]).await, [false, true]);
}
