//! Reads infra/template.yaml: which functions exist, the environment each one gets, and
//! the resources the bench has to create on moto for them.
//!
//! CloudFormation intrinsics are resolved for a local stack: parameters take their
//! defaults (except `Stage`, which becomes `bench`), pseudo parameters get fixed local
//! values, names and ARNs are derived the way CloudFormation would, and dynamic
//! references (`{{resolve:...}}`) become fresh random secrets.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Map as JsonMap, Value as Json};
use serde_yaml_ng::{Mapping, Value as Yaml};

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "123456789012";
pub const STAGE: &str = "bench";
const STACK: &str = "uslugi-bench";

/// One `AWS::Serverless::Function` with a cargo-lambda binary.
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
    /// Route keys of its HttpApi events, e.g. `POST /v1/codes/{id}/verify`.
    pub routes: Vec<String>,
}

/// What has to exist on moto before the functions run.
#[derive(Debug, Default)]
pub struct Infra {
    /// Ready-to-send DynamoDB `CreateTable` requests.
    pub tables: Vec<Json>,
    pub email_identities: Vec<String>,
    pub queues: Vec<(String, bool)>,
    pub topics: Vec<String>,
}

pub struct Template {
    parameters: BTreeMap<String, String>,
    resources: Mapping,
    globals_function: Mapping,
    /// Secrets made up for dynamic references, so one reference resolves to one value.
    secrets: RefCell<HashMap<String, String>>,
    /// Base URL queue URLs point at (the counting proxy).
    endpoint: String,
}

impl Template {
    pub fn load(path: &Path, endpoint: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the template {}", path.display()))?;
        Self::parse(&text, endpoint).with_context(|| format!("reading {}", path.display()))
    }

    pub fn parse(text: &str, endpoint: &str) -> Result<Self> {
        let doc: Yaml = serde_yaml_ng::from_str(text).context("the template is not valid YAML")?;
        let resources = doc
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .cloned()
            .ok_or_else(|| anyhow!("the template has no Resources"))?;
        let mut parameters = BTreeMap::new();
        if let Some(params) = doc.get("Parameters").and_then(Yaml::as_mapping) {
            for (name, decl) in params {
                let name = yaml_str(name)?;
                let value = if name == "Stage" {
                    STAGE.to_string()
                } else {
                    match decl.get("Default") {
                        Some(v) => scalar_string(v)
                            .ok_or_else(|| anyhow!("parameter {name} has a non-scalar default"))?,
                        None => format!("bench-{}", name.to_lowercase()),
                    }
                };
                parameters.insert(name, value);
            }
        }
        let globals_function = doc
            .get("Globals")
            .and_then(|g| g.get("Function"))
            .and_then(Yaml::as_mapping)
            .cloned()
            .unwrap_or_default();
        Ok(Self {
            parameters,
            resources,
            globals_function,
            secrets: RefCell::new(HashMap::new()),
            endpoint: endpoint.trim_end_matches('/').to_string(),
        })
    }

    fn resource(&self, id: &str) -> Option<(&str, &Yaml)> {
        let res = self.resources.get(id)?;
        let kind = res.get("Type").and_then(Yaml::as_str).unwrap_or("");
        Some((kind, res))
    }

    fn resources_of(&self, kind: &str) -> Vec<(String, &Yaml)> {
        self.resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Yaml::as_str) == Some(kind))
            .filter_map(|(id, r)| Some((id.as_str()?.to_string(), r)))
            .collect()
    }

    /// Every function with a cargo-lambda binary, in template order.
    pub fn functions(&self) -> Result<Vec<FunctionSpec>> {
        let mut out = Vec::new();
        for (id, res) in self.resources_of("AWS::Serverless::Function") {
            let Some(binary) = res
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Yaml::as_str)
            else {
                eprintln!("uslugi-bench: {id} names no Metadata.BuildProperties.Binary; skipped");
                continue;
            };
            let props = res.get("Properties");
            let setting = |name: &str| {
                props
                    .and_then(|p| p.get(name))
                    .or_else(|| self.globals_function.get(name))
            };
            let memory_mb = match setting("MemorySize") {
                None => 128,
                Some(v) => {
                    let resolved = self.resolve(v)?;
                    resolved
                        .as_u64()
                        .or_else(|| resolved.as_str()?.parse().ok())
                        .ok_or_else(|| anyhow!("{id}: MemorySize is not a number"))?
                }
            };
            let timeout_s = match setting("Timeout") {
                None => 3,
                Some(v) => {
                    let resolved = self.resolve(v)?;
                    resolved
                        .as_u64()
                        .or_else(|| resolved.as_str()?.parse().ok())
                        .ok_or_else(|| anyhow!("{id}: Timeout is not a number"))?
                }
            };
            let architectures = match setting("Architectures") {
                None => vec!["x86_64".to_string()],
                Some(v) => self
                    .resolve(v)?
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| Some(x.as_str()?.to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            let json_logs = setting("LoggingConfig")
                .and_then(|l| l.get("LogFormat"))
                .and_then(Yaml::as_str)
                == Some("JSON");

            let mut env = BTreeMap::new();
            let mut secret_env = BTreeSet::new();
            let globals = self
                .globals_function
                .get("Environment")
                .and_then(|e| e.get("Variables"));
            let own = props
                .and_then(|p| p.get("Environment"))
                .and_then(|e| e.get("Variables"));
            for vars in [globals, own].into_iter().flatten() {
                let Some(vars) = vars.as_mapping() else {
                    bail!("{id}: Environment.Variables is not a mapping");
                };
                for (name, value) in vars {
                    let name = yaml_str(name)?;
                    let resolved = self
                        .resolve(value)
                        .with_context(|| format!("{id}: environment variable {name}"))?;
                    let text = scalar_json_string(&resolved).ok_or_else(|| {
                        anyhow!("{id}: environment variable {name} is not a scalar")
                    })?;
                    let raw = serde_yaml_ng::to_string(value).unwrap_or_default();
                    if raw.contains("{{resolve:") {
                        secret_env.insert(name.clone());
                    } else {
                        secret_env.remove(&name);
                    }
                    env.insert(name, text);
                }
            }

            let mut routes = Vec::new();
            if let Some(events) = props
                .and_then(|p| p.get("Events"))
                .and_then(Yaml::as_mapping)
            {
                for (_, event) in events {
                    if event.get("Type").and_then(Yaml::as_str) != Some("HttpApi") {
                        continue;
                    }
                    let p = event.get("Properties");
                    let method = p.and_then(|p| p.get("Method")).and_then(Yaml::as_str);
                    let path = p.and_then(|p| p.get("Path")).and_then(Yaml::as_str);
                    routes.push(match (method, path) {
                        (Some(m), Some(path)) => format!("{} {path}", m.to_uppercase()),
                        _ => "$default".to_string(),
                    });
                }
            }
            out.push(FunctionSpec {
                logical_id: id,
                binary: binary.to_string(),
                memory_mb,
                timeout_s,
                architectures,
                json_logs,
                env,
                secret_env,
                routes,
            });
        }
        Ok(out)
    }

    /// Tables, e-mail identities, queues and topics the template declares.
    pub fn infra(&self) -> Result<Infra> {
        let mut infra = Infra::default();
        for (id, res) in self.resources_of("AWS::DynamoDB::Table") {
            let props = self
                .resolve(res.get("Properties").unwrap_or(&Yaml::Null))
                .with_context(|| format!("{id}: resolving the table's properties"))?;
            let mut request = JsonMap::new();
            request.insert("TableName".into(), json!(self.table_name(&id)?));
            for key in [
                "AttributeDefinitions",
                "KeySchema",
                "GlobalSecondaryIndexes",
                "LocalSecondaryIndexes",
                "ProvisionedThroughput",
                "StreamSpecification",
            ] {
                if let Some(v) = props.get(key) {
                    request.insert(key.into(), v.clone());
                }
            }
            if !request.contains_key("KeySchema") {
                bail!("{id}: the table declares no KeySchema");
            }
            let billing = props
                .get("BillingMode")
                .and_then(Json::as_str)
                .unwrap_or("PROVISIONED");
            request.insert("BillingMode".into(), json!(billing));
            infra.tables.push(Json::Object(request));
        }
        for (id, _) in self.resources_of("AWS::SES::EmailIdentity") {
            infra.email_identities.push(self.ref_value(&id)?);
        }
        for (id, res) in self.resources_of("AWS::SQS::Queue") {
            let fifo = res
                .get("Properties")
                .and_then(|p| p.get("FifoQueue"))
                .map(|v| self.resolve(v))
                .transpose()?
                .is_some_and(|v| v == json!(true) || v == json!("true"));
            infra.queues.push((self.queue_name(&id)?, fifo));
        }
        for (id, _) in self.resources_of("AWS::SNS::Topic") {
            infra.topics.push(self.topic_name(&id)?);
        }
        Ok(infra)
    }

    // ------------------------------------------------------------ intrinsics

    /// Resolves a template value to JSON, evaluating the intrinsics a local stack needs.
    pub fn resolve(&self, value: &Yaml) -> Result<Json> {
        Ok(match value {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => json!(b),
            Yaml::Number(n) => serde_json::to_value(n)?,
            Yaml::String(s) => json!(self.dynamic_references(s)),
            Yaml::Sequence(items) => Json::Array(
                items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<_>>()?,
            ),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                let name = tag.trim_start_matches('!');
                let name = if name == "Ref" {
                    "Ref".to_string()
                } else {
                    format!("Fn::{name}")
                };
                self.intrinsic(&name, &tagged.value)?
            }
            Yaml::Mapping(map) => {
                if map.len() == 1 {
                    if let Some((Yaml::String(key), arg)) = map.iter().next() {
                        if key == "Ref" || key.starts_with("Fn::") {
                            return self.intrinsic(key, arg);
                        }
                    }
                }
                let mut out = JsonMap::new();
                for (k, v) in map {
                    out.insert(yaml_str(k)?, self.resolve(v)?);
                }
                Json::Object(out)
            }
        })
    }

    fn intrinsic(&self, name: &str, arg: &Yaml) -> Result<Json> {
        match name {
            "Ref" => Ok(json!(self.ref_value(&self.resolve_str(arg)?)?)),
            "Fn::GetAtt" => {
                let (id, attr) = match self.resolve(arg)? {
                    Json::String(s) => {
                        let (id, attr) = s
                            .split_once('.')
                            .ok_or_else(|| anyhow!("!GetAtt {s} names no attribute"))?;
                        (id.to_string(), attr.to_string())
                    }
                    Json::Array(parts) if parts.len() == 2 => (
                        json_str(&parts[0])?.to_string(),
                        json_str(&parts[1])?.to_string(),
                    ),
                    other => bail!("malformed !GetAtt {other}"),
                };
                Ok(json!(self.get_att(&id, &attr)?))
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Yaml::Sequence(parts) if parts.len() == 2 => {
                        let vars = match self.resolve(&parts[1])? {
                            Json::Object(m) => m,
                            other => bail!("!Sub variables must be a mapping, not {other}"),
                        };
                        (yaml_str(&parts[0])?, vars)
                    }
                    other => (yaml_str(other)?, JsonMap::new()),
                };
                Ok(json!(self.dynamic_references(&self.sub(&text, &vars)?)))
            }
            "Fn::Join" => {
                let parts = self.resolve(arg)?;
                let (delim, items) = match parts.as_array().map(Vec::as_slice) {
                    Some([Json::String(d), Json::Array(items)]) => (d.clone(), items.clone()),
                    _ => bail!("malformed !Join {parts}"),
                };
                let items: Vec<String> = items
                    .iter()
                    .map(|i| scalar_json_string(i).ok_or_else(|| anyhow!("!Join of {i}")))
                    .collect::<Result<_>>()?;
                Ok(json!(items.join(&delim)))
            }
            other => bail!("the bench cannot resolve {other} for a local stack"),
        }
    }

    fn resolve_str(&self, value: &Yaml) -> Result<String> {
        match self.resolve(value)? {
            Json::String(s) => Ok(s),
            other => bail!("expected a string, found {other}"),
        }
    }

    fn sub(&self, text: &str, vars: &JsonMap<String, Json>) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| anyhow!("unclosed ${{ in !Sub {text:?}"))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.get(name) {
                out.push_str(
                    &scalar_json_string(v).ok_or_else(|| anyhow!("!Sub variable {name}"))?,
                );
            } else if let Some((id, attr)) = name.split_once('.') {
                out.push_str(&self.get_att(id, attr)?);
            } else {
                out.push_str(&self.ref_value(name)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn ref_value(&self, name: &str) -> Result<String> {
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        match name {
            "AWS::Region" => return Ok(REGION.into()),
            "AWS::AccountId" => return Ok(ACCOUNT.into()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::StackName" => return Ok(STACK.into()),
            _ => {}
        }
        let (kind, res) = self
            .resource(name)
            .ok_or_else(|| anyhow!("!Ref {name}: no such parameter or resource"))?;
        Ok(match kind {
            "AWS::DynamoDB::Table" => self.table_name(name)?,
            "AWS::SQS::Queue" => self.queue_url(name)?,
            "AWS::SNS::Topic" => self.arn("sns", &self.topic_name(name)?),
            "AWS::SES::EmailIdentity" => {
                let identity = res
                    .get("Properties")
                    .and_then(|p| p.get("EmailIdentity"))
                    .ok_or_else(|| anyhow!("{name} has no EmailIdentity"))?;
                self.resolve_str(identity)?
            }
            "AWS::SecretsManager::Secret" => self.arn("secretsmanager", &format!("secret:{name}")),
            _ => name.to_string(),
        })
    }

    fn get_att(&self, id: &str, attr: &str) -> Result<String> {
        let (kind, _) = self
            .resource(id)
            .ok_or_else(|| anyhow!("!GetAtt {id}.{attr}: no such resource"))?;
        Ok(match (kind, attr) {
            ("AWS::DynamoDB::Table", "Arn") => {
                self.arn("dynamodb", &format!("table/{}", self.table_name(id)?))
            }
            ("AWS::DynamoDB::Table", "StreamArn") => self.arn(
                "dynamodb",
                &format!(
                    "table/{}/stream/1970-01-01T00:00:00.000",
                    self.table_name(id)?
                ),
            ),
            ("AWS::SQS::Queue", "Arn") => self.arn("sqs", &self.queue_name(id)?),
            ("AWS::SQS::Queue", "QueueUrl") => self.queue_url(id)?,
            ("AWS::SQS::Queue", "QueueName") => self.queue_name(id)?,
            ("AWS::SNS::Topic", "TopicArn") => self.arn("sns", &self.topic_name(id)?),
            ("AWS::SNS::Topic", "TopicName") => self.topic_name(id)?,
            (_, "Arn") => {
                let service = kind.split("::").nth(1).unwrap_or("unknown").to_lowercase();
                self.arn(&service, id)
            }
            _ => bail!("the bench cannot resolve !GetAtt {id}.{attr} ({kind})"),
        })
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:aws:{service}:{REGION}:{ACCOUNT}:{resource}")
    }

    /// A resource's explicit name property, or the name CloudFormation would generate.
    fn physical_name(&self, id: &str, property: &str) -> Result<String> {
        let declared = self
            .resource(id)
            .and_then(|(_, r)| r.get("Properties"))
            .and_then(|p| p.get(property));
        match declared {
            Some(v) => self.resolve_str(v),
            None => Ok(format!("{STACK}-{id}")),
        }
    }

    fn table_name(&self, id: &str) -> Result<String> {
        self.physical_name(id, "TableName")
    }

    fn queue_name(&self, id: &str) -> Result<String> {
        self.physical_name(id, "QueueName")
    }

    fn topic_name(&self, id: &str) -> Result<String> {
        self.physical_name(id, "TopicName")
    }

    fn queue_url(&self, id: &str) -> Result<String> {
        Ok(format!(
            "{}/{ACCOUNT}/{}",
            self.endpoint,
            self.queue_name(id)?
        ))
    }

    /// Replaces each `{{resolve:...}}` with a random secret. A secrets-manager reference
    /// to a secret of this template gets that secret's `PasswordLength`.
    fn dynamic_references(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{resolve:") {
            let Some(len) = rest[start..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let reference = &rest[start..start + len + 2];
            let mut secrets = self.secrets.borrow_mut();
            let secret = secrets
                .entry(reference.to_string())
                .or_insert_with(|| random_alnum(self.secret_length(reference)));
            out.push_str(secret);
            rest = &rest[start + len + 2..];
        }
        out.push_str(rest);
        out
    }

    fn secret_length(&self, reference: &str) -> usize {
        for (id, res) in self.resources_of("AWS::SecretsManager::Secret") {
            let arn = self.arn("secretsmanager", &format!("secret:{id}"));
            if reference.contains(&arn) {
                return res
                    .get("Properties")
                    .and_then(|p| p.get("GenerateSecretString"))
                    .and_then(|g| g.get("PasswordLength"))
                    .and_then(Yaml::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(32);
            }
        }
        64
    }
}

fn yaml_str(v: &Yaml) -> Result<String> {
    v.as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("expected a string, found {v:?}"))
}

fn json_str(v: &Json) -> Result<&str> {
    v.as_str()
        .ok_or_else(|| anyhow!("expected a string, found {v}"))
}

fn scalar_string(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Number(n) => Some(n.to_string()),
        Yaml::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_json_string(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Letters and digits from the kernel's random source.
pub fn random_alnum(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let bytes = crate::system::random_bytes(len);
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  EmailSender: {Type: String, Default: no-reply@uslugi.example}
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
  Sender:
    Type: AWS::SES::EmailIdentity
    Properties: {EmailIdentity: !Ref EmailSender}
  Fn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: fn}}
    Properties:
      MemorySize: 512
      Environment:
        Variables:
          RUST_LOG: debug
          QUEUE: !Ref Jobs
          TABLE_ARN: !GetAtt MainTable.Arn
          SECRET: !Sub "{{resolve:secretsmanager:${Key}:SecretString}}"
          JOINED: !Join ["-", [a, !Ref "AWS::Region"]]
          LITERAL: !Sub "${!NotResolved}"
          COUNT: 3
      Events:
        One: {Type: HttpApi, Properties: {Method: post, Path: "/v1/things/{id}"}}
        Two: {Type: SQS, Properties: {Queue: !GetAtt Jobs.Arn}}
"#;

    #[test]
    fn resolves_function_environment_for_a_local_stack() {
        let t = Template::parse(TEMPLATE, "http://127.0.0.1:9").unwrap();
        let f = &t.functions().unwrap()[0];
        assert_eq!(f.binary, "fn");
        assert_eq!(f.memory_mb, 512);
        assert_eq!(f.architectures, ["arm64"]);
        assert!(f.json_logs);
        assert_eq!(f.routes, ["POST /v1/things/{id}"]);
        assert_eq!(f.env["TABLE_NAME"], "uslugi-bench-main");
        assert_eq!(f.env["RUST_LOG"], "debug");
        assert_eq!(
            f.env["QUEUE"],
            "http://127.0.0.1:9/123456789012/uslugi-bench-Jobs"
        );
        assert_eq!(
            f.env["TABLE_ARN"],
            "arn:aws:dynamodb:us-east-1:123456789012:table/uslugi-bench-main"
        );
        assert_eq!(f.env["SECRET"].len(), 48);
        assert_eq!(f.secret_env.iter().collect::<Vec<_>>(), ["SECRET"]);
        assert!(f.env["SECRET"].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(f.env["JOINED"], "a-us-east-1");
        assert_eq!(f.env["LITERAL"], "${NotResolved}");
        assert_eq!(f.env["COUNT"], "3");
    }

    #[test]
    fn lists_the_resources_to_create() {
        let t = Template::parse(TEMPLATE, "http://127.0.0.1:9").unwrap();
        let infra = t.infra().unwrap();
        assert_eq!(infra.tables.len(), 1);
        assert_eq!(infra.tables[0]["TableName"], "uslugi-bench-main");
        assert_eq!(infra.tables[0]["KeySchema"][0]["AttributeName"], "pk");
        assert_eq!(infra.tables[0]["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(infra.email_identities, ["no-reply@uslugi.example"]);
        assert_eq!(infra.queues, [("uslugi-bench-Jobs".to_string(), false)]);
    }

    #[test]
    fn names_what_it_cannot_resolve() {
        let text = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Metadata: {BuildProperties: {Binary: f}}\n    Properties:\n      Environment: {Variables: {X: !Select [0, [a]]}}\n";
        let err = Template::parse(text, "http://x")
            .unwrap()
            .functions()
            .unwrap_err();
        let shown = format!("{err:#}");
        assert!(shown.contains("environment variable X"), "{shown}");
        assert!(shown.contains("Fn::Select"), "{shown}");
    }
}
