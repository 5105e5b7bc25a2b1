//! The functions to measure and the resources moto must hold for them, as the local
//! stack (`uslugi_local`, the one reader of infra/template.yaml) resolves them: `Stage`
//! is `bench`, other parameters keep their defaults, names and ARNs are derived as
//! CloudFormation would, and `{{resolve:...}}` references become random secrets.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::Value as Json;
use uslugi_local::intrinsics::Resolver;
use uslugi_local::model::{self, Infrastructure};
use uslugi_local::routes::RouteTable;
use uslugi_local::template::Template;

use shared::crypto::Hasher;
use shared::redact::Secret;

pub const STAGE: &str = "bench";

/// One `AWS::Serverless::Function` of the template.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    pub logical_id: String,
    pub binary: String,
    pub memory_mb: u64,
    pub timeout_s: u64,
    pub architectures: Vec<String>,
    pub json_logs: bool,
    /// Globals and the function's own variables, resolved; the function's win.
    pub env: BTreeMap<String, String>,
    /// Variables whose value came from a dynamic reference (a secret).
    pub secret_env: BTreeSet<String>,
    /// The value of the secret its `HMAC_SECRET_ARN` names, as moto will hold it: the
    /// harness hashes with the same keys as the function.
    pub hmac_secret: Option<Secret<String>>,
    /// Route keys of its HttpApi events, e.g. `POST /v1/codes/{id}/verify`.
    pub routes: Vec<String>,
    /// Queues whose messages its SQS event sources deliver.
    pub queues: Vec<QueueSource>,
}

/// An SQS event source of a function.
#[derive(Debug, Clone)]
pub struct QueueSource {
    pub queue_arn: String,
    /// Most messages in one event (`BatchSize`).
    pub batch_size: u32,
}

impl FunctionSpec {
    /// The HMAC keys the function reads at cold start.
    pub fn hasher(&self) -> Result<Hasher> {
        let secret = self
            .hmac_secret
            .as_ref()
            .with_context(|| format!("{}: no HMAC secret", self.binary))?;
        Hasher::from_secret(secret.expose())
            .with_context(|| format!("{}: HMAC secret", self.binary))
    }
}

impl QueueSource {
    /// The queue's name: the last part of its ARN.
    pub fn queue_name(&self) -> &str {
        self.queue_arn.rsplit(':').next().unwrap_or(&self.queue_arn)
    }
}

pub struct Stack {
    pub functions: Vec<FunctionSpec>,
    /// What has to exist on moto before the functions run.
    pub infrastructure: Infrastructure,
}

/// Reads the template; queue URLs point at `endpoint`, where the functions reach AWS.
pub fn load(path: &Path, endpoint: &str) -> Result<Stack> {
    let template = Template::load(path)?;
    resolve(&template, endpoint).with_context(|| format!("reading {}", path.display()))
}

fn resolve(template: &Template, endpoint: &str) -> Result<Stack> {
    let mut parameters = Vec::new();
    if template.parameters.contains_key("Stage") {
        parameters.push(("Stage".to_string(), STAGE.to_string()));
    }
    let mut resolver = Resolver::new(template, &parameters)?;
    let plan = model::plan(&mut resolver, endpoint)?;
    let routes = RouteTable::new(&plan.functions, &plan.apis);
    let functions = plan
        .functions
        .iter()
        .map(|f| function(&resolver, f, &routes, &plan.infrastructure))
        .collect::<Result<_>>()?;
    Ok(Stack {
        functions,
        infrastructure: plan.infrastructure,
    })
}

fn function(
    resolver: &Resolver<'_>,
    f: &model::FunctionSpec,
    routes: &RouteTable,
    infrastructure: &Infrastructure,
) -> Result<FunctionSpec> {
    let id = &f.logical_id;
    let setting = |key: &str| model::function_setting(resolver, id, key);
    let memory_mb = match setting("MemorySize")? {
        None => 128,
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str()?.parse().ok())
            .with_context(|| format!("{id}: MemorySize is not a number"))?,
    };
    let architectures = match setting("Architectures")? {
        None => vec!["x86_64".to_string()],
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|a| Some(a.as_str()?.to_string()))
            .collect(),
        Some(other) => bail!("{id}: Architectures is not a list: {other}"),
    };
    let json_logs = setting("LoggingConfig")?
        .and_then(|l| l.get("LogFormat").cloned())
        .is_some_and(|f| f == "JSON");
    Ok(FunctionSpec {
        logical_id: id.clone(),
        binary: f.binary.clone(),
        memory_mb,
        timeout_s: f.timeout_secs,
        architectures,
        json_logs,
        env: f.environment.clone(),
        secret_env: f.secret_variables.clone(),
        hmac_secret: f.environment.get("HMAC_SECRET_ARN").and_then(|arn| {
            infrastructure
                .secrets
                .iter()
                .find(|s| arn.ends_with(&format!(":secret:{}", s.name)))
                .map(|s| Secret::new(s.value.clone()))
        }),
        routes: routes
            .routes()
            .iter()
            .filter(|r| &r.function == id)
            .map(|r| r.route_key.clone())
            .collect(),
        queues: f
            .sqs_events
            .iter()
            .map(|e| QueueSource {
                queue_arn: e.queue_arn.clone(),
                batch_size: e.batch_size,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    MemorySize: 256
    Architectures: [arm64]
    LoggingConfig: {LogFormat: JSON}
    Environment:
      Variables:
        TABLE_NAME: !Ref MainTable
        RUST_LOG: info
Resources:
  MainTable:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub uslugi-${Stage}-main
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
  Jobs:
    Type: AWS::SQS::Queue
  Key:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {PasswordLength: 48}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
      MemorySize: 512
      Environment:
        Variables:
          RUST_LOG: debug
          QUEUE: !Ref Jobs
          SECRET: !Sub "{{resolve:secretsmanager:${Key}:SecretString}}"
      Events:
        One: {Type: HttpApi, Properties: {Method: post, Path: "/v1/things/{id}"}}
        Two: {Type: SQS, Properties: {Queue: !GetAtt Jobs.Arn}}
  Plain:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: plain}}
"#;

    fn stack() -> Stack {
        let template = Template::parse(TEMPLATE, Path::new("/repo/infra/template.yaml")).unwrap();
        resolve(&template, "http://127.0.0.1:9").unwrap()
    }

    #[test]
    fn functions_as_the_bench_runs_them() {
        let stack = stack();
        let f = stack.functions.iter().find(|f| f.binary == "fn").unwrap();
        assert_eq!(f.logical_id, "Fn");
        assert_eq!(f.memory_mb, 512);
        assert_eq!(f.timeout_s, 3);
        assert_eq!(f.architectures, ["arm64"]);
        assert!(f.json_logs);
        assert_eq!(f.routes, ["POST /v1/things/{id}"]);
        assert_eq!(f.queues.len(), 1);
        assert_eq!(f.queues[0].queue_name(), "Jobs");
        assert_eq!(f.queues[0].batch_size, 10);
        assert_eq!(f.env["TABLE_NAME"], "uslugi-bench-main");
        assert_eq!(f.env["RUST_LOG"], "debug");
        // Queue URLs name the endpoint the functions are given (the counting proxy).
        assert_eq!(f.env["QUEUE"], "http://127.0.0.1:9/123456789012/Jobs");
        assert_eq!(f.env["SECRET"].len(), 48);
        assert_eq!(f.secret_env.iter().collect::<Vec<_>>(), ["SECRET"]);

        let plain = stack
            .functions
            .iter()
            .find(|f| f.binary == "plain")
            .unwrap();
        assert_eq!(plain.memory_mb, 256);
        assert!(plain.routes.is_empty());
        assert!(plain.secret_env.is_empty());
    }

    #[test]
    fn resources_to_create() {
        let infra = stack().infrastructure;
        assert_eq!(infra.tables.len(), 1);
        assert_eq!(infra.tables[0].name, "uslugi-bench-main");
        assert_eq!(infra.queues.len(), 1);
        assert_eq!(infra.queues[0].name, "Jobs");
    }
}
