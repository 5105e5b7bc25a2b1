//! The stack's life cycle in-process, with a template that has no functions
//! (so nothing is compiled): start on free ports, serve the gateway and the
//! outbox, stop every child process on drop.

use std::time::{Duration, Instant};

use serde_json::Value;
use uslugi_local::{find_repo_root, Stack, StackOptions};

const TEMPLATE: &str = r#"
Parameters:
  Sender: {Type: String, Default: no-reply@stack.example}
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Queue:
    Type: AWS::SQS::Queue
  Identity:
    Type: AWS::SES::EmailIdentity
    Properties: {EmailIdentity: !Ref Sender}
"#;

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            state != Some("Z")
        })
        .unwrap_or(false)
}

fn moto_pids(port: u16) -> Vec<u32> {
    let needle = format!("-p\0{port}");
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("moto_server") && c.contains(&needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// The local outbox's messages to `to` (URL-encoded).
async fn outbox(http: &reqwest::Client, stack: &Stack, to: &str) -> Value {
    http.get(format!("{}/_local/outbox?to={to}", stack.gateway_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn starts_serves_and_stops() {
    let root = find_repo_root(env!("CARGO_MANIFEST_DIR")).expect("repository root");
    if !root.join(".venv/bin/moto_server").is_file() {
        eprintln!("skipped: no .venv/bin/moto_server (run `make venv`)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("uslugi-local-stack-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let template = dir.join("template.yaml");
    std::fs::write(&template, TEMPLATE).unwrap();

    let mut opts = StackOptions::new(&root);
    opts.template = template;
    opts.param_overrides = vec![("Sender".into(), "robot@stack.example".into())];
    let stack = Stack::start(opts).await.expect("stack starts");

    assert_eq!(stack.resource_name("Table").as_deref(), Some("Table"));
    assert_eq!(
        stack.resource_name("Queue"),
        Some(format!("{}/123456789012/Queue", stack.moto_url()))
    );
    assert_eq!(
        stack.attribute("Queue", "Arn").as_deref(),
        Some("arn:aws:sqs:us-east-1:123456789012:Queue")
    );
    assert!(stack.functions().is_empty());

    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/v1/anything", stack.gateway_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // An e-mail sent through moto shows up in the outbox.
    let ses = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_sesv2::config::Region::new("us-east-1"))
            .endpoint_url(stack.moto_url())
            .credentials_provider(aws_sdk_sesv2::config::Credentials::new(
                "k", "s", None, None, "test",
            ))
            .build(),
    );
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let content = |s: &str| Content::builder().data(s).build().unwrap();
    ses.send_email()
        .from_email_address("robot@stack.example")
        .destination(
            Destination::builder()
                .to_addresses("Someone@Example.ru")
                .build(),
        )
        .content(
            EmailContent::builder()
                .simple(
                    Message::builder()
                        .subject(content("Code"))
                        .body(Body::builder().text(content("Your code: 123456")).build())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("moto accepts mail from the template's identity");
    let mail = outbox(&http, &stack, "someone@example.ru").await;
    let messages = mail["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{mail}");
    assert_eq!(messages[0]["channel"], "email");
    assert_eq!(messages[0]["from"], "robot@stack.example");
    assert_eq!(messages[0]["subject"], "Code");
    assert_eq!(messages[0]["text"], "Your code: 123456");
    let other = outbox(&http, &stack, "%2B79000000000").await;
    assert_eq!(other["messages"].as_array().unwrap().len(), 0);

    // Dropping the stack stops moto.
    let moto_port: u16 = stack
        .moto_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let pids = moto_pids(moto_port);
    assert_eq!(pids.len(), 1, "one moto for this stack");
    let gateway = stack.gateway_url();
    drop(stack);
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "moto survived the stack");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http
        .get(format!("{gateway}/_local/outbox"))
        .send()
        .await
        .is_err());
    std::fs::remove_dir_all(&dir).ok();
}
