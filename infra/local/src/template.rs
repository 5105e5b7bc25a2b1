//! Loading the SAM template into plain JSON values.
//!
//! CloudFormation's YAML short forms (`!Ref X`, `!GetAtt A.B`, `!Sub ...`) are
//! YAML tags, which a generic YAML-to-JSON conversion would silently drop. They
//! are rewritten here into their long forms (`{"Ref": "X"}`,
//! `{"Fn::GetAtt": "A.B"}`, `{"Fn::Sub": ...}`), so the resolver only ever has
//! to understand one spelling.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

use crate::error::{Error, Result};

/// One entry of the template's `Resources` section.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub logical_id: String,
    /// `Type`, e.g. `AWS::DynamoDB::Table`.
    pub kind: String,
    /// `Properties`, always an object (empty when absent).
    pub properties: Map<String, Value>,
    /// `Metadata`, always an object (empty when absent).
    pub metadata: Map<String, Value>,
    /// Name of the condition under which the resource exists, if any.
    pub condition: Option<String>,
}

impl Resource {
    pub fn property(&self, name: &str) -> Option<&Value> {
        self.properties.get(name)
    }

    /// Path used in error messages, e.g. `Resources.MainTable.Properties.TableName`.
    pub fn at(&self, property: &str) -> String {
        format!("Resources.{}.Properties.{}", self.logical_id, property)
    }
}

/// A parsed template. Sections the local stack does not use are kept in `raw`.
#[derive(Debug, Clone)]
pub struct Template {
    /// Where it was read from; relative `CodeUri`s are resolved against its directory.
    pub path: PathBuf,
    pub parameters: Map<String, Value>,
    /// `Rules`: assertions on the parameter values, checked before anything starts.
    pub rules: Map<String, Value>,
    pub conditions: Map<String, Value>,
    pub mappings: Map<String, Value>,
    pub globals: Map<String, Value>,
    pub resources: BTreeMap<String, Resource>,
    pub raw: Value,
}

impl Template {
    pub fn load(path: &Path) -> Result<Template> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Template::parse(&text, path)
    }

    /// Parses template text; `path` is only recorded (for `CodeUri` and messages).
    pub fn parse(text: &str, path: &Path) -> Result<Template> {
        let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|source| Error::Yaml {
            path: path.to_path_buf(),
            source,
        })?;
        let raw = yaml_to_json(yaml).map_err(Error::template)?;
        let Value::Object(root) = &raw else {
            return Err(Error::template("the template is not a mapping"));
        };

        let section = |name: &str| -> Result<Map<String, Value>> {
            match root.get(name) {
                None | Some(Value::Null) => Ok(Map::new()),
                Some(Value::Object(map)) => Ok(map.clone()),
                Some(_) => Err(Error::template(format!("{name} must be a mapping"))),
            }
        };

        let mut resources = BTreeMap::new();
        for (logical_id, body) in section("Resources")? {
            let Value::Object(body) = body else {
                return Err(Error::template(format!(
                    "Resources.{logical_id} must be a mapping"
                )));
            };
            let kind = match body.get("Type") {
                Some(Value::String(kind)) => kind.clone(),
                _ => {
                    return Err(Error::template(format!(
                        "Resources.{logical_id} has no Type"
                    )))
                }
            };
            let object = |key: &str| -> Result<Map<String, Value>> {
                match body.get(key) {
                    None | Some(Value::Null) => Ok(Map::new()),
                    Some(Value::Object(map)) => Ok(map.clone()),
                    Some(_) => Err(Error::template(format!(
                        "Resources.{logical_id}.{key} must be a mapping"
                    ))),
                }
            };
            let condition = match body.get("Condition") {
                None => None,
                Some(Value::String(name)) => Some(name.clone()),
                Some(_) => {
                    return Err(Error::template(format!(
                        "Resources.{logical_id}.Condition must be a condition name"
                    )))
                }
            };
            resources.insert(
                logical_id.clone(),
                Resource {
                    properties: object("Properties")?,
                    metadata: object("Metadata")?,
                    logical_id,
                    kind,
                    condition,
                },
            );
        }

        Ok(Template {
            path: path.to_path_buf(),
            parameters: section("Parameters")?,
            rules: section("Rules")?,
            conditions: section("Conditions")?,
            mappings: section("Mappings")?,
            globals: section("Globals")?,
            resources,
            raw,
        })
    }

    /// Directory the template lives in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or_else(|| Path::new("."))
    }

    pub fn resources_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Resource> + 'a {
        self.resources.values().filter(move |r| r.kind == kind)
    }

    /// `Globals.<section>` (e.g. `Function`, `HttpApi`) as an object.
    pub fn global(&self, section: &str) -> Map<String, Value> {
        match self.globals.get(section) {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        }
    }
}

/// Converts parsed YAML into JSON, turning CloudFormation tags into long forms.
pub fn yaml_to_json(yaml: Yaml) -> std::result::Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .ok_or_else(|| format!("number {n} cannot be represented"))?
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<std::result::Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut map = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported mapping key {other:?}")),
                };
                map.insert(key, yaml_to_json(value)?);
            }
            Value::Object(map)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = match name {
                "Ref" | "Condition" => name.to_string(),
                _ => format!("Fn::{name}"),
            };
            let mut map = Map::new();
            map.insert(key, yaml_to_json(tagged.value)?);
            Value::Object(map)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Template {
        Template::parse(text, Path::new("/repo/infra/template.yaml")).expect("template parses")
    }

    #[test]
    fn short_forms_become_long_forms() {
        let t = parse(
            r#"
Resources:
  A:
    Type: X::Y
    Properties:
      R: !Ref Param
      G: !GetAtt Table.Arn
      S: !Sub "${AWS::Region}-x"
      J: !Join [",", [a, !Ref B]]
      I: !If [IsProd, 1, !Ref AWS::NoValue]
      C: !Condition IsProd
      N: !Select [0, !Split [",", "a,b"]]
"#,
        );
        let a = &t.resources["A"];
        assert_eq!(a.properties["R"], json!({"Ref": "Param"}));
        assert_eq!(a.properties["G"], json!({"Fn::GetAtt": "Table.Arn"}));
        assert_eq!(a.properties["S"], json!({"Fn::Sub": "${AWS::Region}-x"}));
        assert_eq!(
            a.properties["J"],
            json!({"Fn::Join": [",", ["a", {"Ref": "B"}]]})
        );
        assert_eq!(
            a.properties["I"],
            json!({"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]})
        );
        assert_eq!(a.properties["C"], json!({"Condition": "IsProd"}));
        assert_eq!(
            a.properties["N"],
            json!({"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]})
        );
    }

    #[test]
    fn sections_and_resource_fields() {
        let t = parse(
            r#"
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Timeout: 10
Resources:
  Q:
    Type: AWS::SQS::Queue
    Condition: IsProd
    Metadata: {Note: x}
  T:
    Type: AWS::DynamoDB::Table
"#,
        );
        assert_eq!(t.parameters["Stage"]["Default"], json!("dev"));
        assert_eq!(
            t.conditions["IsProd"],
            json!({"Fn::Equals": [{"Ref": "Stage"}, "prod"]})
        );
        assert_eq!(t.global("Function")["Timeout"], json!(10));
        assert_eq!(t.resources["Q"].condition.as_deref(), Some("IsProd"));
        assert_eq!(t.resources["Q"].metadata["Note"], json!("x"));
        assert!(t.resources["T"].properties.is_empty());
        assert_eq!(t.resources_of("AWS::SQS::Queue").count(), 1);
        assert_eq!(t.dir(), Path::new("/repo/infra"));
    }

    #[test]
    fn missing_type_is_an_error() {
        let err = Template::parse(
            "Resources:\n  A:\n    Properties: {}\n",
            Path::new("t.yaml"),
        )
        .expect_err("no Type");
        assert!(err.to_string().contains("Resources.A has no Type"), "{err}");
    }

    #[test]
    fn real_template_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
        let t = Template::load(&path).expect("infra/template.yaml parses");
        let table = &t.resources["MainTable"];
        assert_eq!(table.kind, "AWS::DynamoDB::Table");
        assert_eq!(
            table.properties["TableName"],
            json!({"Fn::Sub": "uslugi-${Stage}-main"})
        );
        let codes = &t.resources["CodesFunction"];
        assert_eq!(codes.kind, "AWS::Serverless::Function");
        assert_eq!(codes.metadata["BuildProperties"]["Binary"], json!("codes"));
        assert_eq!(
            t.global("Function")["Environment"]["Variables"]["TABLE_NAME"],
            json!({"Ref": "MainTable"})
        );
    }
}
