//! Against a real moto_server (from the repository's .venv): resources are
//! created from a template as declared, and the SQS event source deletes,
//! retries and dead-letters messages like Lambda's does. Functions are faked
//! by a small Invoke API server, so no cargo-lambda build is involved.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use uslugi_local::intrinsics::Resolver;
use uslugi_local::lambda::FunctionEndpoint;
use uslugi_local::moto::Moto;
use uslugi_local::provision::{provision, Clients};
use uslugi_local::sqs::Poller;
use uslugi_local::template::Template;
use uslugi_local::{find_repo_root, model};

const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: test}
Resources:
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "items-${Stage}"
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: gsi1pk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
      GlobalSecondaryIndexes:
        - IndexName: gsi1
          KeySchema: [{AttributeName: gsi1pk, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  Work:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 1
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDlq.Arn
        maxReceiveCount: 2
  WorkDlq:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "work-dlq-${Stage}"
  Ordered:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true, ContentBasedDeduplication: true}
  Sender:
    Type: AWS::SES::EmailIdentity
    Properties: {EmailIdentity: no-reply@test.example}
  Worker:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: worker}}
    Properties:
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Work.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
"#;

/// Batches the fake worker was invoked with, and whether it answered with an error.
type Seen = Arc<Mutex<Vec<(Value, bool)>>>;

/// Invoke API stand-in, answering as `shared::batch::run` does: every message whose body
/// is "fail" is reported as failed, and a batch of nothing else fails the invocation
/// (HTTP 500 with `errorType`, as `cargo lambda watch` answers a handler's error).
async fn fake_worker(seen: Seen) -> u16 {
    async fn invoke(
        State(seen): State<Seen>,
        UrlPath(_name): UrlPath<String>,
        Json(event): Json<Value>,
    ) -> (axum::http::StatusCode, Json<Value>) {
        let records = event["Records"].as_array().cloned().unwrap_or_default();
        let failures: Vec<Value> = records
            .iter()
            .filter(|r| r["body"] == "fail")
            .map(|r| json!({"itemIdentifier": r["messageId"]}))
            .collect();
        let all_failed = !records.is_empty() && failures.len() == records.len();
        seen.lock().unwrap().push((event, all_failed));
        if all_failed {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({
                    "errorType": "shared::batch::BatchFailed",
                    "errorMessage": "all messages of the batch failed",
                })),
            );
        }
        (
            axum::http::StatusCode::OK,
            Json(json!({ "batchItemFailures": failures })),
        )
    }
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisions_resources_and_runs_the_sqs_event_source() {
    let root = find_repo_root(env!("CARGO_MANIFEST_DIR")).expect("repository root");
    if !root.join(".venv/bin/moto_server").is_file() {
        eprintln!("skipped: no .venv/bin/moto_server (run `make venv`)");
        return;
    }
    let log =
        std::env::temp_dir().join(format!("uslugi-local-moto-test-{}.log", std::process::id()));
    let moto_server = Moto::start(&root.join(".venv/bin/moto_server"), &log)
        .await
        .unwrap();
    let moto = moto_server.url();

    let template = Template::parse(TEMPLATE, &root.join("infra/test-template.yaml")).unwrap();
    let mut resolver = Resolver::new(&template, &[]).unwrap();
    let plan = model::plan(&mut resolver, &moto).unwrap();
    let clients = Clients::new(&moto);
    let urls = provision(&clients, &plan.infrastructure).await.unwrap();

    // The table, as declared.
    let table = clients
        .dynamodb
        .describe_table()
        .table_name("items-test")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let gsis = table.global_secondary_indexes.unwrap_or_default();
    assert_eq!(gsis.len(), 1);
    assert_eq!(gsis[0].index_name.as_deref(), Some("gsi1"));
    let ttl = clients
        .dynamodb
        .describe_time_to_live()
        .table_name("items-test")
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name.as_deref(), Some("expires_at"));

    transaction_rolls_back_every_item(&clients.dynamodb).await;

    // Queues, with the redrive policy and the FIFO suffix.
    assert_eq!(urls["Work"], format!("{moto}/123456789012/Work"));
    assert_eq!(
        urls["WorkDlq"],
        format!("{moto}/123456789012/work-dlq-test")
    );
    assert_eq!(urls["Ordered"], format!("{moto}/123456789012/Ordered.fifo"));
    let attributes = clients
        .sqs
        .get_queue_attributes()
        .queue_url(&urls["Work"])
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let redrive: Value =
        serde_json::from_str(&attributes[&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy])
            .unwrap();
    assert_eq!(
        redrive["deadLetterTargetArn"],
        "arn:aws:sqs:us-east-1:123456789012:work-dlq-test"
    );

    // The e-mail identity, so the functions may send from it.
    let identities = clients.sesv2.list_email_identities().send().await.unwrap();
    assert!(identities
        .email_identities
        .unwrap_or_default()
        .iter()
        .any(|i| i.identity_name.as_deref() == Some("no-reply@test.example")));

    // The event source: "ok" is deleted after one delivery; "fail" is reported
    // failed (or fails its batch as a whole), redelivered after the visibility timeout
    // and dead-lettered.
    let seen: Seen = Arc::default();
    let port = fake_worker(seen.clone()).await;
    let worker = &plan.functions[0];
    let poller = Poller {
        sqs: clients.sqs.clone(),
        queue_url: urls["Work"].clone(),
        queue_arn: worker.sqs_events[0].queue_arn.clone(),
        source: worker.sqs_events[0].clone(),
        function: Arc::new(FunctionEndpoint::new(
            "Worker",
            "worker",
            port,
            Duration::from_secs(3),
            false,
        )),
        http: reqwest::Client::new(),
    };
    for body in ["ok", "fail"] {
        clients
            .sqs
            .send_message()
            .queue_url(&urls["Work"])
            .message_body(body)
            .message_attributes(
                "kind",
                aws_sdk_sqs::types::MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("test")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let dead = loop {
        poller.poll_once().await.unwrap();
        let dlq = receive(&clients.sqs, &urls["WorkDlq"], 0).await;
        if !dlq.is_empty() {
            break dlq;
        }
        assert!(
            Instant::now() < deadline,
            "the failing message never reached the dead-letter queue"
        );
    };
    assert_eq!(dead[0].body.as_deref(), Some("fail"));

    let answers = seen.lock().unwrap().clone();
    // The failing message's last delivery comes without the deleted "ok": the whole
    // batch failed, and an invocation error brings it back just as a reported failure.
    assert!(
        answers.iter().any(|(_, failed)| *failed),
        "no batch failed as a whole: {answers:?}"
    );
    let records: Vec<&Value> = answers
        .iter()
        .flat_map(|(e, _)| e["Records"].as_array().unwrap().iter())
        .collect();
    let oks = records.iter().filter(|r| r["body"] == "ok").count();
    let fails: Vec<&&Value> = records.iter().filter(|r| r["body"] == "fail").collect();
    assert_eq!(oks, 1, "the successful message is delivered once");
    assert_eq!(
        fails.len(),
        2,
        "maxReceiveCount deliveries of the failing one"
    );
    assert_eq!(fails[1]["attributes"]["ApproximateReceiveCount"], "2");
    let r = records[0];
    assert_eq!(r["eventSource"], "aws:sqs");
    assert_eq!(
        r["eventSourceARN"],
        "arn:aws:sqs:us-east-1:123456789012:Work"
    );
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["messageAttributes"]["kind"]["stringValue"], "test");
    assert_eq!(r["messageAttributes"]["kind"]["dataType"], "String");
    assert!(r["md5OfBody"].as_str().is_some_and(|m| m.len() == 32));
    assert!(r["receiptHandle"].as_str().is_some_and(|h| !h.is_empty()));

    // Nothing left in the work queue.
    let left = receive(&clients.sqs, &urls["Work"], 2).await;
    assert!(left.is_empty(), "{left:?}");
}

/// moto is launched with its own transaction rollback (item snapshots instead of table
/// copies): a cancelled transaction must still leave every item it named as it was.
/// The messages one receive from `queue_url` brings, waiting up to `wait_seconds`: the
/// test looks into the dead-letter queue and the work queue this way.
async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    wait_seconds: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(queue_url)
        .wait_time_seconds(wait_seconds)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default()
}

async fn transaction_rolls_back_every_item(dynamodb: &aws_sdk_dynamodb::Client) {
    use aws_sdk_dynamodb::types::{
        AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
    };
    let s = |v: &str| AttributeValue::S(v.to_string());
    let key = |pk: &str| {
        std::collections::HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s("-"))])
    };
    for (pk, value) in [("kept", "before"), ("doomed", "before")] {
        dynamodb
            .put_item()
            .table_name("items-test")
            .set_item(Some(key(pk)))
            .item("value", s(value))
            .send()
            .await
            .unwrap();
    }
    let mut new_item = key("new");
    new_item.insert("value".into(), s("after"));
    let cancelled = dynamodb
        .transact_write_items()
        .transact_items(
            TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name("items-test")
                        .set_item(Some(new_item))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name("items-test")
                        .set_key(Some(key("kept")))
                        .update_expression("SET #v = :after")
                        .expression_attribute_names("#v", "value")
                        .expression_attribute_values(":after", s("after"))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .delete(
                    Delete::builder()
                        .table_name("items-test")
                        .set_key(Some(key("doomed")))
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .transact_items(
            TransactWriteItem::builder()
                .condition_check(
                    ConditionCheck::builder()
                        .table_name("items-test")
                        .set_key(Some(key("absent")))
                        .condition_expression("attribute_exists(pk)")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await;
    assert!(cancelled.is_err(), "the condition on a missing item fails");
    let value = |pk: &'static str| async move {
        dynamodb
            .get_item()
            .table_name("items-test")
            .set_key(Some(key(pk)))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .and_then(|item| item.get("value").and_then(|v| v.as_s().ok()).cloned())
    };
    assert_eq!(value("kept").await.as_deref(), Some("before"));
    assert_eq!(value("doomed").await.as_deref(), Some("before"));
    assert_eq!(value("new").await, None, "a put of a cancelled transaction");
}
