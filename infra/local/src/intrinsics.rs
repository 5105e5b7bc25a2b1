//! Resolving CloudFormation intrinsic functions for local use.
//!
//! Values are resolved on demand, at the places the local stack actually needs
//! them (resource names, function environments, event sources, authorizers), so
//! an intrinsic the local stack cannot evaluate only matters when its value is
//! used. An unsupported one is then an error naming the resource and property.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::template::Template;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";
pub const PARTITION: &str = "aws";
pub const URL_SUFFIX: &str = "amazonaws.com";
pub const STACK_NAME: &str = "uslugi-local";
/// The version every local function runs: the one build `cargo lambda watch` serves,
/// as Lambda names an unpublished function's (and the code's default for
/// `AWS_LAMBDA_FUNCTION_VERSION`).
pub const LOCAL_VERSION: &str = "$LATEST";

/// What `Ref` and `Fn::GetAtt` return for one resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Physical {
    pub ref_value: Value,
    pub attributes: BTreeMap<String, Value>,
}

/// Why a value could not be resolved yet or at all.
#[derive(Debug)]
pub(crate) enum Unresolved {
    /// Refers to a resource whose physical name is not known yet; the caller
    /// may retry once more names are assigned.
    Pending(String),
    Failed(Error),
}

impl From<Error> for Unresolved {
    fn from(err: Error) -> Self {
        Unresolved::Failed(err)
    }
}

type R<T> = std::result::Result<T, Unresolved>;

fn fail<T>(at: &str, message: impl Into<String>) -> R<T> {
    Err(Unresolved::Failed(Error::resolve(at, message)))
}

/// Resource types whose `Ref`/`GetAtt` values the local stack computes itself;
/// a reference to one of them before its name is known is `Pending`, not a
/// fallback to the logical id.
pub const NAMED_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::GlobalTable",
    "AWS::Serverless::SimpleTable",
    "AWS::SQS::Queue",
    "AWS::Serverless::Function",
    "AWS::SecretsManager::Secret",
    "AWS::SNS::Topic",
    "AWS::Logs::LogGroup",
    "AWS::SES::EmailIdentity",
];

pub struct Resolver<'t> {
    template: &'t Template,
    parameters: BTreeMap<String, Value>,
    physical: BTreeMap<String, Physical>,
    /// Secret values by logical id, generated once per stack start.
    secrets: BTreeMap<String, String>,
    /// Conditions being evaluated, to report cycles instead of overflowing.
    evaluating: RefCell<BTreeSet<String>>,
}

impl<'t> Resolver<'t> {
    /// Builds the parameter values (defaults, then overrides) and generates the
    /// values of secrets declared with `GenerateSecretString`.
    pub fn new(template: &'t Template, overrides: &[(String, String)]) -> Result<Self> {
        let mut parameters = BTreeMap::new();
        for (name, _) in overrides {
            if !template.parameters.contains_key(name) {
                return Err(Error::Options(format!(
                    "parameter {name} is not declared in the template"
                )));
            }
        }
        for (name, decl) in &template.parameters {
            let at = format!("Parameters.{name}");
            let given = overrides
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone());
            let value = match given {
                Some(v) => Some(v),
                None => decl
                    .get("Default")
                    .map(scalar_text)
                    .transpose()
                    .map_err(|m| Error::resolve(&at, m))?,
            };
            let Some(value) = value else {
                // Reported when (and only if) the parameter is referenced.
                continue;
            };
            if let Some(Value::Array(allowed)) = decl.get("AllowedValues") {
                let ok = allowed
                    .iter()
                    .filter_map(|a| scalar_text(a).ok())
                    .any(|a| a == value);
                if !ok {
                    return Err(Error::resolve(
                        at,
                        format!("value {value:?} is not one of the AllowedValues"),
                    ));
                }
            }
            let kind = decl.get("Type").and_then(Value::as_str).unwrap_or("String");
            let value = if kind == "CommaDelimitedList" || kind.starts_with("List<") {
                Value::Array(
                    value
                        .split(',')
                        .map(|s| Value::String(s.trim().to_string()))
                        .collect(),
                )
            } else {
                Value::String(value)
            };
            parameters.insert(name.clone(), value);
        }

        let mut resolver = Resolver {
            template,
            parameters,
            physical: BTreeMap::new(),
            secrets: BTreeMap::new(),
            evaluating: RefCell::new(BTreeSet::new()),
        };
        resolver.check_rules()?;
        resolver.generate_secrets()?;
        Ok(resolver)
    }

    /// CloudFormation's `Rules`, checked against the parameter values as a change set
    /// would check them: for every rule whose `RuleCondition` holds (or that has none),
    /// each `Assert` must hold, or the stack refuses to start with the rule's
    /// `AssertDescription`. The rule functions that only compare parameter values are
    /// evaluated (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Fn::Contains`,
    /// `Fn::EachMemberEquals`, `Fn::EachMemberIn`, `Ref`); those that ask AWS about
    /// resources (`Fn::ValueOf`, `Fn::RefAll`, …) are refused.
    fn check_rules(&self) -> Result<()> {
        for (name, rule) in &self.template.rules {
            let at = format!("Rules.{name}");
            if let Some(condition) = rule.get("RuleCondition") {
                if !self.rule_holds(condition, &format!("{at}.RuleCondition"))? {
                    continue;
                }
            }
            let assertions = match rule.get("Assertions") {
                None => continue,
                Some(Value::Array(items)) => items,
                Some(_) => return Err(Error::resolve(at, "Assertions must be a list")),
            };
            for (i, assertion) in assertions.iter().enumerate() {
                let at = format!("{at}.Assertions[{i}]");
                let Some(assert) = assertion.get("Assert") else {
                    return Err(Error::resolve(at, "an assertion needs Assert"));
                };
                if !self.rule_holds(assert, &format!("{at}.Assert"))? {
                    let description = assertion
                        .get("AssertDescription")
                        .and_then(Value::as_str)
                        .map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "))
                        .unwrap_or_else(|| "its assertion does not hold".to_string());
                    return Err(Error::RuleFailed {
                        rule: name.clone(),
                        message: description,
                    });
                }
            }
        }
        Ok(())
    }

    fn rule_holds(&self, expr: &Value, at: &str) -> Result<bool> {
        match self.rule_value(expr, at)? {
            Value::Bool(b) => Ok(b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            other => Err(Error::resolve(
                at,
                format!("a rule's condition is true or false, not {other}"),
            )),
        }
    }

    fn rule_value(&self, expr: &Value, at: &str) -> Result<Value> {
        let Value::Object(map) = expr else {
            return Ok(expr.clone());
        };
        let Some((key, arg)) = map.iter().next().filter(|_| map.len() == 1) else {
            return Ok(expr.clone());
        };
        let args = |n: usize| -> Result<&Vec<Value>> {
            match arg {
                Value::Array(items) if items.len() == n => Ok(items),
                _ => Err(Error::resolve(at, format!("{key} takes a list of {n}"))),
            }
        };
        let text_list = |v: Value| -> Result<Vec<String>> {
            match v {
                Value::Array(items) => items
                    .iter()
                    .map(|i| scalar_text(i).map_err(|m| Error::resolve(at, m)))
                    .collect(),
                other => Err(Error::resolve(
                    at,
                    format!("{key} needs a list, not {other}"),
                )),
            }
        };
        let text = |v: Value| scalar_text(&v).map_err(|m| Error::resolve(at, m));
        Ok(Value::Bool(match key.as_str() {
            "Fn::Equals" => {
                let items = args(2)?;
                let a = self.rule_value(&items[0], at)?;
                let b = self.rule_value(&items[1], at)?;
                match (scalar_text(&a), scalar_text(&b)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => a == b,
                }
            }
            "Fn::Not" => !self.rule_holds(&args(1)?[0], at)?,
            "Fn::And" | "Fn::Or" => {
                let Value::Array(items) = arg else {
                    return Err(Error::resolve(at, format!("{key} takes a list")));
                };
                let mut all = true;
                let mut any = false;
                for item in items {
                    let v = self.rule_holds(item, at)?;
                    all &= v;
                    any |= v;
                }
                if key == "Fn::And" {
                    all
                } else {
                    any
                }
            }
            "Fn::Contains" => {
                let items = args(2)?;
                let list = text_list(self.rule_value(&items[0], at)?)?;
                let wanted = text(self.rule_value(&items[1], at)?)?;
                list.contains(&wanted)
            }
            "Fn::EachMemberEquals" => {
                let items = args(2)?;
                let list = text_list(self.rule_value(&items[0], at)?)?;
                let wanted = text(self.rule_value(&items[1], at)?)?;
                list.iter().all(|m| *m == wanted)
            }
            "Fn::EachMemberIn" => {
                let items = args(2)?;
                let list = text_list(self.rule_value(&items[0], at)?)?;
                let allowed = text_list(self.rule_value(&items[1], at)?)?;
                list.iter().all(|m| allowed.contains(m))
            }
            "Ref" => return self.resolve(expr, at),
            other if other.starts_with("Fn::") => {
                return Err(Error::resolve(
                    at,
                    format!("{other} is not evaluated locally in a rule"),
                ))
            }
            _ => return Ok(expr.clone()),
        }))
    }

    pub fn template(&self) -> &'t Template {
        self.template
    }

    pub fn set_physical(&mut self, logical_id: &str, physical: Physical) {
        self.physical.insert(logical_id.to_string(), physical);
    }

    /// The value generated or given for a secret, by logical id.
    pub fn secret_value(&self, logical_id: &str) -> Option<&str> {
        self.secrets.get(logical_id).map(String::as_str)
    }

    pub fn physical(&self, logical_id: &str) -> Option<&Physical> {
        self.physical.get(logical_id)
    }

    pub fn physical_mut(&mut self, logical_id: &str) -> Option<&mut Physical> {
        self.physical.get_mut(logical_id)
    }

    /// Resolves `value` completely. `AWS::NoValue` at the top level becomes `null`.
    pub fn resolve(&self, value: &Value, at: &str) -> Result<Value> {
        match self.try_resolve(value, at) {
            Ok(v) => Ok(v),
            Err(Unresolved::Failed(err)) => Err(err),
            Err(Unresolved::Pending(id)) => Err(Error::resolve(
                at,
                format!("refers to {id}, whose name could not be determined (circular reference?)"),
            )),
        }
    }

    pub(crate) fn try_resolve(&self, value: &Value, at: &str) -> R<Value> {
        let resolved = self.eval(value, at)?.unwrap_or(Value::Null);
        self.expand_dynamic_references(resolved, at)
    }

    /// Resolves to a string; numbers and booleans are accepted as CloudFormation does.
    pub fn resolve_string(&self, value: &Value, at: &str) -> Result<String> {
        let v = self.resolve(value, at)?;
        scalar_text(&v).map_err(|m| Error::resolve(at, m))
    }

    /// Whether the resource exists, given its `Condition`.
    pub fn resource_enabled(&self, logical_id: &str) -> Result<bool> {
        match self.template.resources.get(logical_id) {
            None => Ok(false),
            Some(r) => match &r.condition {
                None => Ok(true),
                Some(c) => self.condition(c, &format!("Resources.{logical_id}.Condition")),
            },
        }
    }

    /// Evaluates a named condition from the `Conditions` section.
    pub fn condition(&self, name: &str, at: &str) -> Result<bool> {
        let Some(expr) = self.template.conditions.get(name) else {
            return Err(Error::resolve(at, format!("unknown condition {name}")));
        };
        if !self.evaluating.borrow_mut().insert(name.to_string()) {
            return Err(Error::resolve(
                at,
                format!("condition {name} refers to itself"),
            ));
        }
        let result = self.eval_condition(expr, &format!("Conditions.{name}"));
        self.evaluating.borrow_mut().remove(name);
        match result {
            Ok(b) => Ok(b),
            Err(Unresolved::Failed(e)) => Err(e),
            Err(Unresolved::Pending(id)) => Err(Error::resolve(
                at,
                format!("condition {name} refers to resource {id}"),
            )),
        }
    }

    fn eval_condition(&self, expr: &Value, at: &str) -> R<bool> {
        let Some((key, arg)) = single_key(expr) else {
            return match expr {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s == "true" => Ok(true),
                Value::String(s) if s == "false" => Ok(false),
                _ => fail(at, "expected a condition function"),
            };
        };
        match key {
            "Condition" => {
                let name = arg.as_str().ok_or_else(|| {
                    Unresolved::Failed(Error::resolve(at, "Condition takes a condition name"))
                })?;
                Ok(self.condition(name, at)?)
            }
            "Fn::Equals" => {
                let items = array_arg(arg, 2, "Fn::Equals", at)?;
                let a = self.try_resolve(&items[0], at)?;
                let b = self.try_resolve(&items[1], at)?;
                Ok(match (scalar_text(&a), scalar_text(&b)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => a == b,
                })
            }
            "Fn::Not" => {
                let items = array_arg(arg, 1, "Fn::Not", at)?;
                Ok(!self.eval_condition(&items[0], at)?)
            }
            "Fn::And" | "Fn::Or" => {
                let Value::Array(items) = arg else {
                    return fail(at, format!("{key} takes a list of conditions"));
                };
                let mut results = Vec::with_capacity(items.len());
                for item in items {
                    results.push(self.eval_condition(item, at)?);
                }
                Ok(if key == "Fn::And" {
                    results.iter().all(|b| *b)
                } else {
                    results.iter().any(|b| *b)
                })
            }
            other => fail(at, format!("{other} is not a condition function")),
        }
    }

    /// Core evaluator; `None` stands for `AWS::NoValue`, which removes the
    /// enclosing key or list element.
    fn eval(&self, value: &Value, at: &str) -> R<Option<Value>> {
        match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = self.eval(item, &format!("{at}[{i}]"))? {
                        out.push(v);
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            Value::Object(map) => {
                if let Some((key, arg)) = single_key(value) {
                    if key == "Ref" || key == "Condition" || key.starts_with("Fn::") {
                        return self.intrinsic(key, arg, at);
                    }
                }
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.eval(v, &format!("{at}.{k}"))? {
                        out.insert(k.clone(), v);
                    }
                }
                Ok(Some(Value::Object(out)))
            }
            other => Ok(Some(other.clone())),
        }
    }

    fn intrinsic(&self, key: &str, arg: &Value, at: &str) -> R<Option<Value>> {
        match key {
            "Ref" => {
                let Some(name) = arg.as_str() else {
                    return fail(at, "Ref takes a name");
                };
                self.reference(name, at)
            }
            "Condition" => {
                let Some(name) = arg.as_str() else {
                    return fail(at, "Condition takes a condition name");
                };
                Ok(Some(Value::Bool(self.condition(name, at)?)))
            }
            "Fn::GetAtt" => {
                let (id, attribute) = match arg {
                    Value::String(s) => match s.split_once('.') {
                        Some((id, attr)) => (id.to_string(), attr.to_string()),
                        None => {
                            return fail(at, format!("Fn::GetAtt {s:?} needs Resource.Attribute"))
                        }
                    },
                    Value::Array(items) if items.len() == 2 => {
                        let id = items[0].as_str().map(str::to_string);
                        let attr = self.try_resolve(&items[1], at)?;
                        match (id, attr.as_str()) {
                            (Some(id), Some(attr)) => (id, attr.to_string()),
                            _ => return fail(at, "Fn::GetAtt takes [Resource, Attribute]"),
                        }
                    }
                    _ => {
                        return fail(
                            at,
                            "Fn::GetAtt takes Resource.Attribute or [Resource, Attribute]",
                        )
                    }
                };
                self.get_att(&id, &attribute, at).map(Some)
            }
            "Fn::Sub" => {
                let (text, vars) = match arg {
                    Value::String(s) => (s.as_str(), Map::new()),
                    Value::Array(items) if items.len() == 2 => {
                        let Some(text) = items[0].as_str() else {
                            return fail(at, "Fn::Sub takes a string first");
                        };
                        let Value::Object(vars) = &items[1] else {
                            return fail(at, "Fn::Sub takes a map of variables second");
                        };
                        (text, vars.clone())
                    }
                    _ => return fail(at, "Fn::Sub takes a string or [string, {variables}]"),
                };
                self.sub(text, &vars, at).map(|s| Some(Value::String(s)))
            }
            "Fn::Join" => {
                let items = array_arg(arg, 2, "Fn::Join", at)?;
                let Some(delimiter) = items[0].as_str() else {
                    return fail(at, "Fn::Join takes a delimiter string first");
                };
                let list = self.eval(&items[1], at)?.unwrap_or(Value::Array(vec![]));
                let Value::Array(list) = list else {
                    return fail(at, "Fn::Join takes a list second");
                };
                let parts = list
                    .iter()
                    .map(|v| scalar_text(v).map_err(|m| Unresolved::Failed(Error::resolve(at, m))))
                    .collect::<R<Vec<_>>>()?;
                Ok(Some(Value::String(parts.join(delimiter))))
            }
            "Fn::If" => {
                let items = array_arg(arg, 3, "Fn::If", at)?;
                let Some(name) = items[0].as_str() else {
                    return fail(at, "Fn::If takes a condition name first");
                };
                let branch = if self.condition(name, at)? {
                    &items[1]
                } else {
                    &items[2]
                };
                self.eval(branch, at)
            }
            "Fn::Select" => {
                let items = array_arg(arg, 2, "Fn::Select", at)?;
                let index = self.try_resolve(&items[0], at)?;
                let index = scalar_text(&index)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or_else(|| {
                        Unresolved::Failed(Error::resolve(at, "Fn::Select takes an index"))
                    })?;
                match self.try_resolve(&items[1], at)? {
                    Value::Array(list) => match list.into_iter().nth(index) {
                        Some(v) => Ok(Some(v)),
                        None => fail(at, format!("Fn::Select index {index} is out of range")),
                    },
                    _ => fail(at, "Fn::Select takes a list second"),
                }
            }
            "Fn::Split" => {
                let items = array_arg(arg, 2, "Fn::Split", at)?;
                let Some(delimiter) = items[0].as_str() else {
                    return fail(at, "Fn::Split takes a delimiter first");
                };
                let text = self.try_resolve(&items[1], at)?;
                let text =
                    scalar_text(&text).map_err(|m| Unresolved::Failed(Error::resolve(at, m)))?;
                Ok(Some(Value::Array(
                    text.split(delimiter)
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )))
            }
            "Fn::FindInMap" => {
                let items = array_arg(arg, 3, "Fn::FindInMap", at)?;
                let mut keys = Vec::with_capacity(3);
                for item in items {
                    let v = self.try_resolve(item, at)?;
                    keys.push(
                        scalar_text(&v).map_err(|m| Unresolved::Failed(Error::resolve(at, m)))?,
                    );
                }
                match self
                    .template
                    .mappings
                    .get(&keys[0])
                    .and_then(|m| m.get(&keys[1]))
                    .and_then(|m| m.get(&keys[2]))
                {
                    Some(v) => self.eval(v, at),
                    None => fail(
                        at,
                        format!("Fn::FindInMap: no {}.{}.{}", keys[0], keys[1], keys[2]),
                    ),
                }
            }
            "Fn::Base64" => {
                use base64::Engine as _;
                let v = self.try_resolve(arg, at)?;
                let text =
                    scalar_text(&v).map_err(|m| Unresolved::Failed(Error::resolve(at, m)))?;
                Ok(Some(Value::String(
                    base64::engine::general_purpose::STANDARD.encode(text),
                )))
            }
            "Fn::ToJsonString" => {
                let v = self.try_resolve(arg, at)?;
                Ok(Some(Value::String(v.to_string())))
            }
            "Fn::GetAZs" => Ok(Some(Value::Array(
                ["a", "b", "c"]
                    .iter()
                    .map(|z| Value::String(format!("{REGION}{z}")))
                    .collect(),
            ))),
            "Fn::Equals" | "Fn::Not" | "Fn::And" | "Fn::Or" => {
                let mut map = Map::new();
                map.insert(key.to_string(), arg.clone());
                Ok(Some(Value::Bool(
                    self.eval_condition(&Value::Object(map), at)?,
                )))
            }
            other => fail(
                at,
                format!("intrinsic function {other} is not supported locally"),
            ),
        }
    }

    fn reference(&self, name: &str, at: &str) -> R<Option<Value>> {
        let pseudo = match name {
            "AWS::Region" => Some(REGION.to_string()),
            "AWS::AccountId" => Some(ACCOUNT_ID.to_string()),
            "AWS::Partition" => Some(PARTITION.to_string()),
            "AWS::URLSuffix" => Some(URL_SUFFIX.to_string()),
            "AWS::StackName" => Some(STACK_NAME.to_string()),
            "AWS::StackId" => Some(format!(
                "arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/00000000-0000-0000-0000-000000000000"
            )),
            "AWS::NoValue" => return Ok(None),
            "AWS::NotificationARNs" => return Ok(Some(Value::Array(vec![]))),
            _ => None,
        };
        if let Some(v) = pseudo {
            return Ok(Some(Value::String(v)));
        }
        if self.template.parameters.contains_key(name) {
            return match self.parameters.get(name) {
                Some(v) => Ok(Some(v.clone())),
                None => fail(
                    at,
                    format!("parameter {name} has no Default; pass a value for it"),
                ),
            };
        }
        let Some(resource) = self.template.resources.get(name) else {
            if let Some(published) = self.published_reference(name, at)? {
                return Ok(Some(published));
            }
            return fail(
                at,
                format!("Ref to {name}, which is neither a parameter nor a resource"),
            );
        };
        if !self.resource_enabled(name)? {
            return fail(at, format!("Ref to {name}, which its Condition leaves out"));
        }
        if let Some(p) = self.physical.get(name) {
            return Ok(Some(p.ref_value.clone()));
        }
        if NAMED_TYPES.contains(&resource.kind.as_str()) {
            return Err(Unresolved::Pending(name.to_string()));
        }
        // Everything else (APIs, roles, log-less helpers) has no local counterpart;
        // its logical id is a stable, readable stand-in.
        Ok(Some(Value::String(name.to_string())))
    }

    /// SAM's references to what `AutoPublishAlias` publishes: `Ref Fn.Alias` (the
    /// alias's ARN) and `Ref Fn.Version` (the version's ARN). Locally there is one
    /// build of each function, so the alias is the function's ARN qualified by the
    /// alias name, and the version is `$LATEST`. `None`: `name` is no such reference.
    fn published_reference(&self, name: &str, at: &str) -> R<Option<Value>> {
        let Some((id, part)) = name.split_once('.') else {
            return Ok(None);
        };
        if part != "Alias" && part != "Version" {
            return Ok(None);
        }
        let Some(alias) = self.published_alias(id, at)? else {
            return Ok(None);
        };
        let arn = self.get_att(id, "Arn", at)?;
        let arn = arn
            .as_str()
            .ok_or_else(|| Unresolved::Failed(Error::resolve(at, "a function ARN is text")))?;
        let qualifier = if part == "Alias" {
            alias
        } else {
            LOCAL_VERSION.to_string()
        };
        Ok(Some(Value::String(format!("{arn}:{qualifier}"))))
    }

    /// The `AutoPublishAlias` of the function `id` (its own, else the Globals'), or
    /// `None` when `id` is no function. A function without one has no alias or
    /// version to refer to, which SAM refuses too.
    fn published_alias(&self, id: &str, at: &str) -> R<Option<String>> {
        let Some(resource) = self.template.resources.get(id) else {
            return Ok(None);
        };
        if resource.kind != "AWS::Serverless::Function" {
            return Ok(None);
        }
        let globals = self.template.global("Function");
        let Some(alias) = resource
            .property("AutoPublishAlias")
            .or_else(|| globals.get("AutoPublishAlias"))
        else {
            return fail(
                at,
                format!("{id} publishes no alias or version: it has no AutoPublishAlias"),
            );
        };
        let alias = self.try_resolve(alias, at)?;
        match scalar_text(&alias) {
            Ok(alias) => Ok(Some(alias)),
            Err(m) => fail(at, format!("{id}.AutoPublishAlias: {m}")),
        }
    }

    fn get_att(&self, id: &str, attribute: &str, at: &str) -> R<Value> {
        // `Fn::GetAtt Fn.Version.Version` (or `[Fn.Version, Version]`): the number of
        // the version SAM published.
        let (id, attribute) = match id.strip_suffix(".Version") {
            Some(function) if attribute == "Version" => (function, "Version.Version"),
            _ => (id, attribute),
        };
        if attribute == "Version.Version" && self.published_alias(id, at)?.is_some() {
            return Ok(Value::String(LOCAL_VERSION.to_string()));
        }
        let Some(resource) = self.template.resources.get(id) else {
            return fail(at, format!("Fn::GetAtt on {id}, which is not a resource"));
        };
        if let Some(p) = self.physical.get(id) {
            return match p.attributes.get(attribute) {
                Some(v) => Ok(v.clone()),
                None => fail(
                    at,
                    format!(
                        "Fn::GetAtt {id}.{attribute} is not supported locally for {}",
                        resource.kind
                    ),
                ),
            };
        }
        if NAMED_TYPES.contains(&resource.kind.as_str()) {
            return Err(Unresolved::Pending(id.to_string()));
        }
        fail(
            at,
            format!(
                "Fn::GetAtt {id}.{attribute} is not supported locally for {}",
                resource.kind
            ),
        )
    }

    fn sub(&self, text: &str, vars: &Map<String, Value>, at: &str) -> R<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return fail(at, format!("Fn::Sub: unclosed ${{ in {text:?}"));
            };
            let name = &after[..end];
            rest = &after[end + 1..];
            if let Some(literal) = name.strip_prefix('!') {
                // `${!Literal}` is how a template writes a literal `${Literal}`.
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
                continue;
            }
            let name = name.trim();
            let value = if let Some(v) = vars.get(name) {
                self.try_resolve(v, at)?
            } else if let Some((id, attribute)) = name.split_once('.') {
                if name.starts_with("AWS::") {
                    self.reference(name, at)?.unwrap_or(Value::Null)
                } else {
                    self.get_att(id, attribute, at)?
                }
            } else {
                self.reference(name, at)?.unwrap_or(Value::Null)
            };
            out.push_str(
                &scalar_text(&value).map_err(|m| Unresolved::Failed(Error::resolve(at, m)))?,
            );
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Replaces `{{resolve:secretsmanager:...}}` in every string of `value`.
    fn expand_dynamic_references(&self, value: Value, at: &str) -> R<Value> {
        Ok(match value {
            Value::String(s) if s.contains("{{resolve:") => {
                Value::String(self.expand_string(&s, at)?)
            }
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|v| self.expand_dynamic_references(v, at))
                    .collect::<R<_>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, self.expand_dynamic_references(v, at)?)))
                    .collect::<R<_>>()?,
            ),
            other => other,
        })
    }

    fn expand_string(&self, text: &str, at: &str) -> R<String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{resolve:") {
            out.push_str(&rest[..start]);
            let after = &rest[start + "{{resolve:".len()..];
            let Some(end) = after.find("}}") else {
                return fail(at, "unclosed {{resolve:...}} dynamic reference");
            };
            out.push_str(&self.dynamic_reference(&after[..end], at)?);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `secretsmanager:<secret-id>:SecretString[:json-key[:version-stage[:version-id]]]`
    fn dynamic_reference(&self, spec: &str, at: &str) -> R<String> {
        let Some(rest) = spec.strip_prefix("secretsmanager:") else {
            return fail(
                at,
                format!("dynamic reference {{{{resolve:{spec}}}}} is not supported locally (only secretsmanager)"),
            );
        };
        let parts: Vec<&str> = rest.split(':').collect();
        // A secret ARN has colons of its own: arn:aws:secretsmanager:region:account:secret:name
        let id_len = if rest.starts_with("arn:") { 7 } else { 1 };
        if parts.len() < id_len {
            return fail(at, format!("malformed secret reference {spec:?}"));
        }
        let secret_id = parts[..id_len].join(":");
        let tail = &parts[id_len..];
        if let Some(field) = tail.first() {
            if !field.is_empty() && *field != "SecretString" {
                return fail(
                    at,
                    format!("only SecretString can be resolved, not {field}"),
                );
            }
        }
        let json_key = tail.get(1).filter(|k| !k.is_empty());

        let logical = self
            .template
            .resources_of("AWS::SecretsManager::Secret")
            .find(|r| {
                r.logical_id == secret_id
                    || self.physical.get(&r.logical_id).is_some_and(|p| {
                        p.ref_value.as_str() == Some(secret_id.as_str())
                            || p.attributes.get("Name").and_then(Value::as_str)
                                == Some(secret_id.as_str())
                    })
            })
            .map(|r| r.logical_id.clone());
        let Some(logical) = logical else {
            return fail(
                at,
                format!("secret {secret_id} is not declared in the template"),
            );
        };
        let Some(secret) = self.secrets.get(&logical) else {
            return fail(
                at,
                format!("secret {logical} has neither SecretString nor GenerateSecretString"),
            );
        };
        match json_key {
            None => Ok(secret.clone()),
            Some(key) => {
                let parsed: Value = serde_json::from_str(secret).map_err(|_| {
                    Unresolved::Failed(Error::resolve(
                        at,
                        format!("secret {logical} is not JSON, cannot take key {key}"),
                    ))
                })?;
                match parsed.get(*key) {
                    Some(v) => {
                        scalar_text(v).map_err(|m| Unresolved::Failed(Error::resolve(at, m)))
                    }
                    None => fail(at, format!("secret {logical} has no key {key}")),
                }
            }
        }
    }

    fn generate_secrets(&mut self) -> Result<()> {
        let secrets: Vec<_> = self
            .template
            .resources_of("AWS::SecretsManager::Secret")
            .cloned()
            .collect();
        for secret in secrets {
            let name = match secret.property("Name") {
                Some(v) => self.resolve_string(v, &secret.at("Name"))?,
                None => secret.logical_id.clone(),
            };
            let arn = format!("arn:{PARTITION}:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}");
            let mut attributes = BTreeMap::new();
            attributes.insert("Id".to_string(), Value::String(arn.clone()));
            attributes.insert("Name".to_string(), Value::String(name));
            self.physical.insert(
                secret.logical_id.clone(),
                Physical {
                    ref_value: Value::String(arn),
                    attributes,
                },
            );

            let value = if let Some(v) = secret.property("SecretString") {
                Some(self.resolve_string(v, &secret.at("SecretString"))?)
            } else if let Some(spec) = secret.property("GenerateSecretString") {
                let spec = self.resolve(spec, &secret.at("GenerateSecretString"))?;
                Some(
                    generate_secret_string(&spec)
                        .map_err(|m| Error::resolve(secret.at("GenerateSecretString"), m))?,
                )
            } else {
                None
            };
            if let Some(value) = value {
                self.secrets.insert(secret.logical_id.clone(), value);
            }
        }
        Ok(())
    }
}

/// Produces a secret like Secrets Manager's `GenerateSecretString` would, but
/// always without punctuation: the value ends up in environment variables and
/// command lines, where quoting surprises are not worth the extra entropy.
fn generate_secret_string(spec: &Value) -> std::result::Result<String, String> {
    let length = match spec.get("PasswordLength") {
        None => 32,
        Some(v) => scalar_text(v)?
            .parse::<usize>()
            .map_err(|_| "PasswordLength must be a number".to_string())?,
    };
    let flag = |name: &str| {
        spec.get(name)
            .map(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
            .unwrap_or(false)
    };
    let excluded: String = spec
        .get("ExcludeCharacters")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut alphabet = Vec::new();
    if !flag("ExcludeUppercase") {
        alphabet.extend(b'A'..=b'Z');
    }
    if !flag("ExcludeLowercase") {
        alphabet.extend(b'a'..=b'z');
    }
    if !flag("ExcludeNumbers") {
        alphabet.extend(b'0'..=b'9');
    }
    alphabet.retain(|c| !excluded.as_bytes().contains(c));
    if alphabet.is_empty() {
        return Err("GenerateSecretString excludes every character".into());
    }
    let password = random_string(&alphabet, length)?;

    let template = spec.get("SecretStringTemplate").and_then(Value::as_str);
    let key = spec.get("GenerateStringKey").and_then(Value::as_str);
    match (template, key) {
        (Some(template), Some(key)) => {
            let mut object: Map<String, Value> = serde_json::from_str(template)
                .map_err(|e| format!("SecretStringTemplate is not a JSON object: {e}"))?;
            object.insert(key.to_string(), Value::String(password));
            Ok(Value::Object(object).to_string())
        }
        _ => Ok(password),
    }
}

fn random_string(alphabet: &[u8], length: usize) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(length);
    // Rejection sampling keeps every character equally likely.
    let limit = 256 - (256 % alphabet.len());
    let mut buf = [0u8; 64];
    while out.len() < length {
        getrandom::fill(&mut buf).map_err(|e| format!("no randomness available: {e}"))?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < length {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

/// The text of a scalar, as CloudFormation stringifies parameters and attributes.
pub fn scalar_text(value: &Value) -> std::result::Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Err("expected a value, found nothing (AWS::NoValue?)".into()),
        Value::Array(_) => Err("expected a string, found a list".into()),
        Value::Object(map) => match map.keys().next() {
            Some(k) if map.len() == 1 && (k == "Ref" || k.starts_with("Fn::")) => {
                Err(format!("{k} is not allowed here"))
            }
            _ => Err("expected a string, found a mapping".into()),
        },
    }
}

/// `{"Ref": x}` and friends: an object with exactly one key.
fn single_key(value: &Value) -> Option<(&str, &Value)> {
    match value {
        Value::Object(map) if map.len() == 1 => map.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

fn array_arg<'v>(arg: &'v Value, len: usize, name: &str, at: &str) -> R<&'v [Value]> {
    match arg {
        Value::Array(items) if items.len() == len => Ok(items),
        _ => fail(at, format!("{name} takes a list of {len}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;

    fn template(text: &str) -> Template {
        Template::parse(text, Path::new("/repo/infra/template.yaml")).expect("template parses")
    }

    const SMALL: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Names: {Type: CommaDelimitedList, Default: "a, b,c"}
  Port: {Type: Number, Default: 8080}
  Required: {Type: String}
Mappings:
  Limits:
    dev: {Rate: 5}
    prod: {Rate: 50}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  IsDev: !Not [!Condition IsProd]
  Both: !And [!Condition IsDev, !Equals [a, a]]
Resources:
  Secret:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {PasswordLength: 40, ExcludePunctuation: true}
  JsonSecret:
    Type: AWS::SecretsManager::Secret
    Properties:
      Name: app/json
      GenerateSecretString:
        SecretStringTemplate: '{"user":"svc"}'
        GenerateStringKey: password
  Api:
    Type: AWS::Serverless::HttpApi
  Unnamed:
    Type: AWS::SQS::Queue
  OnlyInProd:
    Type: AWS::SQS::Queue
    Condition: IsProd
"#;

    /// [`SMALL`], parsed once for all the tests that resolve in it.
    static SMALL_TEMPLATE: std::sync::LazyLock<Template> =
        std::sync::LazyLock::new(|| template(SMALL));

    /// A resolver of [`SMALL`] that knows the queue `Unnamed` by its physical name and
    /// ARN, as a started stack does.
    fn with_names() -> Resolver<'static> {
        let mut r = Resolver::new(&SMALL_TEMPLATE, &[]).expect("resolver");
        let mut attrs = BTreeMap::new();
        attrs.insert(
            "Arn".into(),
            json!("arn:aws:sqs:us-east-1:123456789012:Unnamed"),
        );
        attrs.insert("QueueName".into(), json!("Unnamed"));
        r.set_physical(
            "Unnamed",
            Physical {
                ref_value: json!("http://q/Unnamed"),
                attributes: attrs,
            },
        );
        r
    }

    /// The error text of resolving `expression` at `at`: the tests check that it names the
    /// place and the reason.
    fn refusal(r: &Resolver, expression: Value, at: &str) -> String {
        r.resolve(&expression, at).unwrap_err().to_string()
    }

    /// Checks each `(expression, expected value)` pair: the tests of the intrinsic
    /// functions are such tables.
    fn assert_resolves<const N: usize>(r: &Resolver, cases: [(Value, Value); N]) {
        for (expression, expected) in cases {
            assert_eq!(
                r.resolve(&expression, "x").unwrap(),
                expected,
                "{expression}"
            );
        }
    }

    #[test]
    fn refs_parameters_and_pseudo_parameters() {
        let r = with_names();
        assert_resolves(
            &r,
            [
                (json!({"Ref": "Stage"}), json!("dev")),
                (json!({"Ref": "Port"}), json!("8080")),
                (json!({"Ref": "Names"}), json!(["a", "b", "c"])),
                (json!({"Ref": "AWS::Region"}), json!("us-east-1")),
                (json!({"Ref": "AWS::AccountId"}), json!("123456789012")),
                (json!({"Ref": "AWS::StackName"}), json!("uslugi-local")),
                (json!({"Ref": "Unnamed"}), json!("http://q/Unnamed")),
                // Resources without a local counterpart resolve to their logical id.
                (json!({"Ref": "Api"}), json!("Api")),
            ],
        );
        let err = refusal(&r, json!({"Ref": "Required"}), "Resources.F.Properties.X");
        assert!(err.contains("Resources.F.Properties.X"), "{err}");
        assert!(err.contains("no Default"), "{err}");
        let err = refusal(&r, json!({"Ref": "Nope"}), "here");
        assert!(err.contains("Nope"), "{err}");
    }

    #[test]
    fn overrides_are_validated() {
        let t = template(SMALL);
        let r = Resolver::new(&t, &[("Stage".into(), "prod".into())]).unwrap();
        assert_eq!(
            r.resolve(&json!({"Ref": "Stage"}), "x").unwrap(),
            json!("prod")
        );
        assert!(r.condition("IsProd", "x").unwrap());
        assert!(Resolver::new(&t, &[("Stage".into(), "qa".into())]).is_err());
        assert!(Resolver::new(&t, &[("Typo".into(), "x".into())]).is_err());
    }

    #[test]
    fn get_att_long_and_short_forms() {
        let r = with_names();
        let arn = json!("arn:aws:sqs:us-east-1:123456789012:Unnamed");
        assert_resolves(
            &r,
            [
                (json!({"Fn::GetAtt": "Unnamed.Arn"}), arn.clone()),
                (json!({"Fn::GetAtt": ["Unnamed", "Arn"]}), arn),
            ],
        );
        let err = refusal(
            &r,
            json!({"Fn::GetAtt": "Unnamed.Nope"}),
            "Resources.A.Properties.B",
        );
        assert!(err.starts_with("Resources.A.Properties.B:"), "{err}");
        assert!(err.contains("Unnamed.Nope"), "{err}");
    }

    #[test]
    fn sub_join_select_split_if_find_in_map() {
        let r = with_names();
        assert_resolves(
            &r,
            [
                (
                    json!({"Fn::Sub": "uslugi-${Stage}-${AWS::Region}-${!Literal}"}),
                    json!("uslugi-dev-us-east-1-${Literal}"),
                ),
                (
                    json!({"Fn::Sub": ["${A}/${Unnamed.QueueName}", {"A": {"Ref": "Stage"}}]}),
                    json!("dev/Unnamed"),
                ),
                (
                    json!({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 3]]}),
                    json!("a-dev-3"),
                ),
                (json!({"Fn::Join": [",", {"Ref": "Names"}]}), json!("a,b,c")),
                (
                    json!({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}),
                    json!("y"),
                ),
                (
                    json!({"Fn::If": ["IsProd", "big", "small"]}),
                    json!("small"),
                ),
                (
                    json!({"Fn::FindInMap": ["Limits", {"Ref": "Stage"}, "Rate"]}),
                    json!(5),
                ),
            ],
        );
        assert!(r.condition("Both", "x").unwrap());
    }

    #[test]
    fn no_value_removes_keys_and_items() {
        let r = with_names();
        let v = json!({
            "Keep": 1,
            "Drop": {"Fn::If": ["IsProd", 1, {"Ref": "AWS::NoValue"}]},
            "List": ["a", {"Ref": "AWS::NoValue"}, "b"]
        });
        assert_eq!(
            r.resolve(&v, "x").unwrap(),
            json!({"Keep": 1, "List": ["a", "b"]})
        );
    }

    #[test]
    fn conditional_resources_cannot_be_referenced() {
        let r = with_names();
        assert!(!r.resource_enabled("OnlyInProd").unwrap());
        let err = refusal(&r, json!({"Ref": "OnlyInProd"}), "x");
        assert!(err.contains("Condition"), "{err}");
    }

    #[test]
    fn unknown_intrinsic_names_the_location() {
        let r = with_names();
        let err = refusal(
            &r,
            json!({"Fn::ImportValue": "x"}),
            "Resources.F.Properties.Environment.Variables.X",
        );
        assert_eq!(
            err,
            "Resources.F.Properties.Environment.Variables.X: intrinsic function Fn::ImportValue is not supported locally"
        );
    }

    #[test]
    fn generated_secrets_resolve_through_dynamic_references() {
        let r = with_names();
        let v = r
            .resolve(
                &json!({"Fn::Sub": "{{resolve:secretsmanager:${Secret}:SecretString}}"}),
                "x",
            )
            .unwrap();
        let s = v.as_str().unwrap();
        assert_eq!(s.len(), 40);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
        // Same value every time within one stack start; by logical id too.
        let again = r
            .resolve(
                &json!("pre-{{resolve:secretsmanager:Secret:SecretString}}"),
                "x",
            )
            .unwrap();
        assert_eq!(again, json!(format!("pre-{s}")));
        // JSON secrets by name and key.
        let user = r
            .resolve(
                &json!("{{resolve:secretsmanager:app/json:SecretString:user}}"),
                "x",
            )
            .unwrap();
        assert_eq!(user, json!("svc"));
        let password = r
            .resolve(
                &json!("{{resolve:secretsmanager:app/json:SecretString:password}}"),
                "x",
            )
            .unwrap();
        assert_eq!(password.as_str().unwrap().len(), 32);
        let err = refusal(&r, json!("{{resolve:ssm:/x}}"), "Resources.F.Properties.Y");
        assert!(err.contains("not supported locally"), "{err}");
    }

    #[test]
    fn secrets_differ_between_starts() {
        let t = template(SMALL);
        let a = Resolver::new(&t, &[]).unwrap();
        let b = Resolver::new(&t, &[]).unwrap();
        let get = |r: &Resolver| {
            r.resolve(
                &json!("{{resolve:secretsmanager:Secret:SecretString}}"),
                "x",
            )
            .unwrap()
        };
        assert_ne!(get(&a), get(&b));
    }

    #[test]
    fn pending_names_are_distinguished() {
        let t = template(
            "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n  T:\n    Type: AWS::DynamoDB::Table\n",
        );
        let r = Resolver::new(&t, &[]).unwrap();
        assert!(matches!(
            r.try_resolve(&json!({"Fn::GetAtt": "Q.Arn"}), "x"),
            Err(Unresolved::Pending(id)) if id == "Q"
        ));
        assert!(r.resolve(&json!({"Ref": "T"}), "x").is_err());
    }

    const RULES: &str = r#"
Parameters:
  Stage: {Type: String, Default: dev}
  Sender: {Type: String, Default: no-reply@uslugi.example}
  Origins: {Type: CommaDelimitedList, Default: "https://a.example,https://b.example"}
Rules:
  PlaceholdersNotInProd:
    RuleCondition: !Equals [!Ref Stage, prod]
    Assertions:
      - Assert: !Not [!Contains [[no-reply@uslugi.example, no-reply-dev@uslugi.example], !Ref Sender]]
        AssertDescription: >-
          Sender is a placeholder:
          set the portal's own.
  KnownOrigins:
    Assertions:
      - Assert: !And
          - !EachMemberIn [!Ref Origins, [https://a.example, https://b.example, https://c.example]]
          - !Not [!EachMemberEquals [!Ref Origins, "*"]]
          - !Or [!Equals [!Ref Stage, dev], !Equals [!Ref Stage, prod]]
        AssertDescription: unknown origin or stage
Resources:
  Q:
    Type: AWS::SQS::Queue
"#;

    fn resolver_for(text: &str, overrides: &[(&str, &str)]) -> Result<()> {
        let t = template(text);
        let overrides: Vec<(String, String)> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Resolver::new(&t, &overrides).map(|_| ())
    }

    #[test]
    fn rules_hold_for_good_parameters() {
        resolver_for(RULES, &[]).unwrap();
        resolver_for(
            RULES,
            &[("Stage", "prod"), ("Sender", "no-reply@mos.example")],
        )
        .unwrap();
        resolver_for(RULES, &[("Origins", "https://c.example")]).unwrap();
    }

    #[test]
    fn a_rule_that_fails_refuses_the_stack_with_its_description() {
        // The placeholder passes in dev (no RuleCondition match) and fails in prod.
        let err = resolver_for(RULES, &[("Stage", "prod")]).unwrap_err();
        match err {
            Error::RuleFailed { rule, message } => {
                assert_eq!(rule, "PlaceholdersNotInProd");
                assert_eq!(message, "Sender is a placeholder: set the portal's own.");
            }
            other => panic!("{other}"),
        }
        for (key, value) in [
            ("Origins", "https://a.example,https://evil.example"),
            ("Stage", "test"),
        ] {
            let err = resolver_for(RULES, &[(key, value)]).unwrap_err();
            assert!(
                matches!(&err, Error::RuleFailed { rule, message }
                    if rule == "KnownOrigins" && message == "unknown origin or stage"),
                "{key}={value}: {err}"
            );
        }
    }

    #[test]
    fn rule_functions_that_ask_aws_are_refused_not_skipped() {
        let text = r#"
Rules:
  Vpc:
    Assertions:
      - Assert: !EachMemberEquals [{"Fn::ValueOfAll": ["AWS::EC2::Subnet::Id", VpcId]}, vpc-1]
Resources:
  Q: {Type: AWS::SQS::Queue}
"#;
        let err = resolver_for(text, &[]).unwrap_err().to_string();
        assert!(
            err.contains("Rules.Vpc.Assertions[0].Assert")
                && err.contains("Fn::ValueOfAll is not evaluated locally"),
            "{err}"
        );
    }
}
