//! Cold starts of real function binaries (`target/debug`, built by `make build`) against
//! moto, with the environment the template gives them: the HMAC key comes from the
//! secret `HMAC_SECRET_ARN` names, a bad secret stops the start without showing the key,
//! and a function that would run a sandbox refuses to start in the prod stage.
//!
//! A start counts as done when the binary asks the Lambda Runtime API for its first
//! event: a stand-in API here records that request and never answers it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use uslugi_local::intrinsics::Resolver;
use uslugi_local::moto::Moto;
use uslugi_local::provision::{provision, Clients};
use uslugi_local::template::Template;
use uslugi_local::{find_repo_root, function_environment, model};

/// How long a debug binary may take to start (or to give up) on a loaded machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The Runtime API stand-in: its address, and a channel that hears of every poll for
/// the next event.
async fn runtime_api() -> (String, mpsc::UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("runtime API stand-in: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("runtime API stand-in: {e}"))
        .to_string();
    let (polled, polls) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let polled = polled.clone();
            tokio::spawn(async move {
                let mut head = vec![0u8; 1024];
                let n = socket.read(&mut head).await.unwrap_or(0);
                if String::from_utf8_lossy(&head[..n]).contains("/runtime/invocation/next") {
                    let _ = polled.send(());
                }
                // Never answered: the function waits for its first event until killed.
                let _ = socket.read(&mut head).await;
            });
        }
    });
    (address, polls)
}

/// What became of one cold start.
#[derive(Debug)]
enum Start {
    /// It polled for its first event after this long, having logged this.
    Ready { took: Duration, log: String },
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
        let (api, mut polls) = runtime_api().await;
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
                let _ = child.kill();
                let _ = child.wait();
                let mut log = String::new();
                if let Some(mut pipe) = child.stdout.take() {
                    let _ = std::io::Read::read_to_string(&mut pipe, &mut log);
                }
                break Start::Ready { took, log };
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
            Start::Ready { took, log } => {
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

    // The admin command's sandbox card page refuses in prod too, and works in dev.
    let admin = |stage: &str| {
        let mut env = h.environments["PayFunction"].clone();
        env.insert("STAGE".into(), stage.into());
        Command::new(h.target.join("uslugi-admin"))
            .args([
                "sandbox-card-token",
                "--number",
                "4242424242424242",
                "--exp",
                "12/30",
            ])
            .env_clear()
            .envs(&env)
            .output()
            .unwrap_or_else(|e| panic!("uslugi-admin: {e} (make build)"))
    };
    let out = admin("prod");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("INTEGRATIONS"), "{stderr}");
    assert!(stderr.contains("paid without any money"), "{stderr}");
    let out = admin("dev");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"token\""));

    // live: no adapter is built yet, so nothing that needs one starts.
    let stderr = refused(
        h.cold_start("PayFunction", "pay", &[("INTEGRATIONS", "live")])
            .await,
        "pay",
    );
    assert!(stderr.contains("not built yet"), "{stderr}");

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
        h.clients
            .secretsmanager
            .put_secret_value()
            .secret_id(h.secret_arn())
            .secret_string(secret)
            .send()
            .await
            .unwrap();
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
