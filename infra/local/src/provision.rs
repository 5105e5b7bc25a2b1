//! Creating the template's tables, queues, e-mail identities and secrets in moto.

use std::collections::HashMap;

use aws_sdk_dynamodb::types as ddb;
use aws_sdk_sqs::types::QueueAttributeName;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::intrinsics::REGION;
use crate::model::{EmailIdentitySpec, Infrastructure, QueueSpec, SecretSpec, TableSpec};

/// SDK clients pointed at moto, with throwaway credentials.
#[derive(Clone, Debug)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub sesv2: aws_sdk_sesv2::Client,
    pub secretsmanager: aws_sdk_secretsmanager::Client,
}

impl Clients {
    pub fn new(moto_url: &str) -> Clients {
        // Built directly rather than through aws-config, so nothing from the
        // developer's AWS profile or environment can point these at real AWS.
        let credentials =
            aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "uslugi-local");
        let region = aws_sdk_dynamodb::config::Region::new(REGION);
        macro_rules! at_moto {
            ($sdk:ident) => {
                $sdk::Client::from_conf(
                    $sdk::Config::builder()
                        .behavior_version_latest()
                        .region(region.clone())
                        .endpoint_url(moto_url)
                        .credentials_provider(credentials.clone())
                        .build(),
                )
            };
        }
        Clients {
            dynamodb: at_moto!(aws_sdk_dynamodb),
            sqs: at_moto!(aws_sdk_sqs),
            sesv2: at_moto!(aws_sdk_sesv2),
            secretsmanager: at_moto!(aws_sdk_secretsmanager),
        }
    }
}

/// Creates everything; returns the queue URLs moto assigned, by logical id.
pub async fn provision(
    clients: &Clients,
    infra: &Infrastructure,
) -> Result<HashMap<String, String>> {
    for table in &infra.tables {
        create_table(&clients.dynamodb, table).await?;
    }
    let mut urls = HashMap::new();
    // Already ordered so that dead-letter queues exist before their users.
    for queue in &infra.queues {
        let url = create_queue(&clients.sqs, queue).await?;
        urls.insert(queue.logical_id.clone(), url);
    }
    for identity in &infra.email_identities {
        create_email_identity(&clients.sesv2, identity).await?;
    }
    for secret in &infra.secrets {
        create_secret(&clients.secretsmanager, secret).await?;
    }
    Ok(urls)
}

fn sdk_error(resource: &str, err: impl std::error::Error) -> Error {
    // The SDK's Display is terse ("service error"); the source chain has the reason.
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Provision {
        resource: resource.to_string(),
        message,
    }
}

// CloudFormation accepts numbers and booleans as strings too.
fn de_u64<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<u64, D::Error> {
    let v = Value::deserialize(d)?;
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| serde::de::Error::custom(format!("expected a number, got {v}")))
}

fn de_bool<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    let v = Value::deserialize(d)?;
    v.as_bool()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| serde::de::Error::custom(format!("expected a boolean, got {v}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AttributeDefinition {
    attribute_name: String,
    attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyElement {
    attribute_name: String,
    key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Throughput {
    #[serde(deserialize_with = "de_u64")]
    read_capacity_units: u64,
    #[serde(deserialize_with = "de_u64")]
    write_capacity_units: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Projection {
    projection_type: Option<String>,
    #[serde(default)]
    non_key_attributes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Index {
    index_name: String,
    key_schema: Vec<KeyElement>,
    projection: Option<Projection>,
    provisioned_throughput: Option<Throughput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StreamSpecification {
    stream_view_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TtlSpecification {
    attribute_name: Option<String>,
    #[serde(deserialize_with = "de_bool")]
    enabled: bool,
}

/// The parts of `AWS::DynamoDB::Table` (and `GlobalTable`) moto needs.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TableProperties {
    #[serde(default)]
    attribute_definitions: Vec<AttributeDefinition>,
    #[serde(default)]
    key_schema: Vec<KeyElement>,
    billing_mode: Option<String>,
    provisioned_throughput: Option<Throughput>,
    #[serde(default)]
    global_secondary_indexes: Vec<Index>,
    #[serde(default)]
    local_secondary_indexes: Vec<Index>,
    stream_specification: Option<StreamSpecification>,
    time_to_live_specification: Option<TtlSpecification>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SimpleKey {
    name: String,
    #[serde(rename = "Type")]
    kind: String,
}

/// `AWS::Serverless::SimpleTable`: one hash key, no indexes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SimpleTableProperties {
    primary_key: Option<SimpleKey>,
    provisioned_throughput: Option<Throughput>,
}

impl TableProperties {
    fn from_spec(spec: &TableSpec) -> Result<TableProperties> {
        let invalid = |e: serde_json::Error| {
            Error::resolve(
                format!("Resources.{}.Properties", spec.logical_id),
                e.to_string(),
            )
        };
        if spec.kind == "AWS::Serverless::SimpleTable" {
            let simple: SimpleTableProperties =
                serde_json::from_value(spec.properties.clone()).map_err(invalid)?;
            let key = simple.primary_key.unwrap_or(SimpleKey {
                name: "id".into(),
                kind: "String".into(),
            });
            let attribute_type = match key.kind.as_str() {
                "Number" => "N",
                "Binary" => "B",
                _ => "S",
            };
            let billing_mode = if simple.provisioned_throughput.is_some() {
                "PROVISIONED"
            } else {
                "PAY_PER_REQUEST"
            };
            return Ok(TableProperties {
                attribute_definitions: vec![AttributeDefinition {
                    attribute_name: key.name.clone(),
                    attribute_type: attribute_type.into(),
                }],
                key_schema: vec![KeyElement {
                    attribute_name: key.name,
                    key_type: "HASH".into(),
                }],
                billing_mode: Some(billing_mode.into()),
                provisioned_throughput: simple.provisioned_throughput,
                global_secondary_indexes: vec![],
                local_secondary_indexes: vec![],
                stream_specification: None,
                time_to_live_specification: None,
            });
        }
        serde_json::from_value(spec.properties.clone()).map_err(invalid)
    }
}

fn key_schema(elements: &[KeyElement], resource: &str) -> Result<Vec<ddb::KeySchemaElement>> {
    elements
        .iter()
        .map(|k| {
            ddb::KeySchemaElement::builder()
                .attribute_name(&k.attribute_name)
                .key_type(ddb::KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(|e| sdk_error(resource, e))
        })
        .collect()
}

/// A table's or an index's throughput: the one the template declares, else 5 read and 5
/// write units (the default of a provisioned table here, for the table and every index).
fn throughput(declared: Option<&Throughput>, resource: &str) -> Result<ddb::ProvisionedThroughput> {
    const DEFAULT: Throughput = Throughput {
        read_capacity_units: 5,
        write_capacity_units: 5,
    };
    let t = declared.unwrap_or(&DEFAULT);
    ddb::ProvisionedThroughput::builder()
        .read_capacity_units(t.read_capacity_units as i64)
        .write_capacity_units(t.write_capacity_units as i64)
        .build()
        .map_err(|e| sdk_error(resource, e))
}

fn projection(p: &Option<Projection>) -> ddb::Projection {
    let mut builder = ddb::Projection::builder();
    if let Some(p) = p {
        if let Some(t) = &p.projection_type {
            builder = builder.projection_type(ddb::ProjectionType::from(t.as_str()));
        }
        for a in &p.non_key_attributes {
            builder = builder.non_key_attributes(a);
        }
    } else {
        builder = builder.projection_type(ddb::ProjectionType::All);
    }
    builder.build()
}

async fn create_table(client: &aws_sdk_dynamodb::Client, spec: &TableSpec) -> Result<()> {
    let resource = format!("table {} ({})", spec.name, spec.logical_id);
    let props = TableProperties::from_spec(spec)?;
    // Global tables are on-demand unless told otherwise; plain tables default to provisioned.
    let default_mode = if spec.kind == "AWS::DynamoDB::GlobalTable" {
        "PAY_PER_REQUEST"
    } else {
        "PROVISIONED"
    };
    let mode = props.billing_mode.as_deref().unwrap_or(default_mode);
    let provisioned = mode == "PROVISIONED";

    let mut request = client
        .create_table()
        .table_name(&spec.name)
        .billing_mode(ddb::BillingMode::from(mode))
        .set_key_schema(Some(key_schema(&props.key_schema, &resource)?));
    for a in &props.attribute_definitions {
        request = request.attribute_definitions(
            ddb::AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(ddb::ScalarAttributeType::from(a.attribute_type.as_str()))
                .build()
                .map_err(|e| sdk_error(&resource, e))?,
        );
    }
    if provisioned {
        let t = throughput(props.provisioned_throughput.as_ref(), &resource)?;
        request = request.provisioned_throughput(t);
    }
    for index in &props.global_secondary_indexes {
        let mut gsi = ddb::GlobalSecondaryIndex::builder()
            .index_name(&index.index_name)
            .set_key_schema(Some(key_schema(&index.key_schema, &resource)?))
            .projection(projection(&index.projection));
        if provisioned {
            let t = throughput(index.provisioned_throughput.as_ref(), &resource)?;
            gsi = gsi.provisioned_throughput(t);
        }
        request =
            request.global_secondary_indexes(gsi.build().map_err(|e| sdk_error(&resource, e))?);
    }
    for index in &props.local_secondary_indexes {
        request = request.local_secondary_indexes(
            ddb::LocalSecondaryIndex::builder()
                .index_name(&index.index_name)
                .set_key_schema(Some(key_schema(&index.key_schema, &resource)?))
                .projection(projection(&index.projection))
                .build()
                .map_err(|e| sdk_error(&resource, e))?,
        );
    }
    if let Some(stream) = &props.stream_specification {
        let mut s = ddb::StreamSpecification::builder().stream_enabled(true);
        if let Some(view) = &stream.stream_view_type {
            s = s.stream_view_type(ddb::StreamViewType::from(view.as_str()));
        }
        request = request.stream_specification(s.build().map_err(|e| sdk_error(&resource, e))?);
    }
    request.send().await.map_err(|e| sdk_error(&resource, e))?;

    if let Some(ttl) = &props.time_to_live_specification {
        if ttl.enabled {
            let attribute = ttl.attribute_name.as_deref().ok_or_else(|| {
                Error::resolve(
                    format!(
                        "Resources.{}.Properties.TimeToLiveSpecification",
                        spec.logical_id
                    ),
                    "AttributeName is required when Enabled",
                )
            })?;
            client
                .update_time_to_live()
                .table_name(&spec.name)
                .time_to_live_specification(
                    ddb::TimeToLiveSpecification::builder()
                        .attribute_name(attribute)
                        .enabled(true)
                        .build()
                        .map_err(|e| sdk_error(&resource, e))?,
                )
                .send()
                .await
                .map_err(|e| sdk_error(&resource, e))?;
        }
    }
    tracing::debug!("created {resource}");
    Ok(())
}

async fn create_queue(client: &aws_sdk_sqs::Client, spec: &QueueSpec) -> Result<String> {
    let resource = format!("queue {} ({})", spec.name, spec.logical_id);
    let attributes: HashMap<QueueAttributeName, String> = spec
        .attributes
        .iter()
        .map(|(k, v)| (QueueAttributeName::from(k.as_str()), v.clone()))
        .collect();
    let out = client
        .create_queue()
        .queue_name(&spec.name)
        .set_attributes((!attributes.is_empty()).then_some(attributes))
        .send()
        .await
        .map_err(|e| sdk_error(&resource, e))?;
    tracing::debug!("created {resource}");
    out.queue_url.ok_or_else(|| Error::Provision {
        resource,
        message: "CreateQueue returned no URL".into(),
    })
}

/// Functions read the secret by the ARN `!Ref` gave them, without moto's random suffix:
/// Secrets Manager, and moto, accept such a partial ARN.
pub(crate) async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    spec: &SecretSpec,
) -> Result<()> {
    let resource = format!("secret {} ({})", spec.name, spec.logical_id);
    client
        .create_secret()
        .name(&spec.name)
        .secret_string(&spec.value)
        .send()
        .await
        .map_err(|e| sdk_error(&resource, e))?;
    tracing::debug!("created {resource}");
    Ok(())
}

async fn create_email_identity(
    client: &aws_sdk_sesv2::Client,
    spec: &EmailIdentitySpec,
) -> Result<()> {
    let resource = format!("e-mail identity {} ({})", spec.identity, spec.logical_id);
    match client
        .create_email_identity()
        .email_identity(&spec.identity)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        // Two resources may declare the same identity; once is enough.
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_already_exists_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error(&resource, e)),
    }
}
