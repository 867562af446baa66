//! The template CloudFormation receives, read as data: the output of the SAM transform of
//! template.yaml (run by `local/tools/sam_transform.py` with the pinned aws-sam-translator, the
//! library behind `sam build`, `sam validate` and CloudFormation's `AWS::Serverless`
//! transform), with its parameters, conditions and intrinsic functions.
//!
//! Nothing here interprets an `AWS::Serverless::*` type: functions, roles, permissions,
//! event-source mappings, rules, the REST API's OpenAPI body, its deployment, stage, key and
//! usage plan are what SAM generated. The translator refuses local `CodeUri`/`DefinitionUri`
//! paths, so the script passes them as `s3://local-placeholder/<path>`: a function's
//! `Code.S3Key` is its crate folder, a state machine's `DefinitionS3Location.Key` its file.
//!
//! YAML short forms (`!Ref`, `!GetAtt`, `!Sub`, ...) are normalised to their long JSON forms
//! (`{"Ref": ..}`, `{"Fn::GetAtt": [..]}`) so everything downstream works on `serde_json::Value`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::workspace::{project_root, project_template_path};

use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    Yaml(String),
    #[error("template has no resource `{0}`")]
    NoSuchResource(String),
    #[error("cannot resolve {0}")]
    Unresolved(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("the SAM transform failed: {0}")]
    Transform(String),
    #[error("template: {0} (CloudFormation rejects it)")]
    Invalid(String),
}

/// The bucket name the transform script puts in place of local code and definition paths.
pub const PLACEHOLDER_BUCKET: &str = "local-placeholder";

#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: String,
    pub properties: Value,
    pub metadata: Value,
    /// The name of the condition that decides whether the resource exists.
    pub condition: Option<String>,
    /// `DependsOn`: created after these, as CloudFormation does.
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub resources: BTreeMap<String, Resource>,
    pub parameter_defaults: BTreeMap<String, String>,
    pub conditions: BTreeMap<String, Value>,
}

impl Template {
    /// The repository's template.yaml (or `KIT_TEMPLATE`) through the SAM transform, with the
    /// parameters' defaults.
    pub fn load_project() -> Result<Self, TemplateError> {
        Self::load_project_with(&[])
    }

    /// The transformed project template with parameter overrides (as `sam deploy
    /// --parameter-overrides`): the transform sees them, as CloudFormation's does.
    pub fn load_project_with(parameters: &[(String, String)]) -> Result<Self, TemplateError> {
        let transformed = transform(&project_template_path(), parameters)?;
        Self::parse(&transformed)
    }

    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| TemplateError::Yaml(e.to_string()))?;
        let doc = to_json(yaml);
        let mut resources = BTreeMap::new();
        for (id, body) in doc
            .get("Resources")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let kind = body
                .get("Type")
                .and_then(Value::as_str)
                .ok_or_else(|| TemplateError::Invalid(format!("resource {id} has no Type")))?;
            resources.insert(
                id.clone(),
                Resource {
                    kind: kind.to_string(),
                    // Properties and Metadata are optional in a resource declaration.
                    properties: body
                        .get("Properties")
                        .cloned()
                        .unwrap_or(Value::Object(Map::new())),
                    metadata: body.get("Metadata").cloned().unwrap_or(Value::Null),
                    condition: body
                        .get("Condition")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    depends_on: strings(&body["DependsOn"]),
                },
            );
        }
        let mut parameter_defaults = BTreeMap::new();
        for (name, body) in doc
            .get("Parameters")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            if let Some(default) = body.get("Default") {
                let default = scalar_string(default).ok_or_else(|| {
                    TemplateError::Invalid(format!(
                        "parameter {name}: Default must be a string or number, not {default}"
                    ))
                })?;
                parameter_defaults.insert(name.clone(), default);
            }
        }
        // No Conditions section: no conditions (naming one then fails to resolve).
        let conditions = doc
            .get("Conditions")
            .and_then(Value::as_object)
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        Ok(Self {
            resources,
            parameter_defaults,
            conditions,
        })
    }

    pub fn resource(&self, id: &str) -> Result<&Resource, TemplateError> {
        self.resources
            .get(id)
            .ok_or_else(|| TemplateError::NoSuchResource(id.to_string()))
    }

    pub fn resources_of_kind<'a>(
        &'a self,
        kind: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Resource)> + 'a {
        self.resources.iter().filter(move |(_, r)| r.kind == kind)
    }

    /// A function's environment as deployed (`AWS::Lambda::Function`), still unresolved.
    pub fn function_environment(
        &self,
        function_id: &str,
    ) -> Result<Map<String, Value>, TemplateError> {
        // Environment is optional (AWS::Lambda::Function): absent, no variables.
        let Some(variables) = self
            .resource(function_id)?
            .properties
            .pointer("/Environment/Variables")
        else {
            return Ok(Map::new());
        };
        variables.as_object().cloned().ok_or_else(|| {
            TemplateError::Unsupported(format!(
                "{function_id}: Environment.Variables must be a map of names to values"
            ))
        })
    }

    /// A function property as deployed (unresolved); SAM has already applied `Globals`.
    pub fn function_property(&self, function_id: &str, name: &str) -> Option<Value> {
        self.resources
            .get(function_id)?
            .properties
            .get(name)
            .cloned()
    }

    /// The cargo binary that implements a function (`Metadata.BuildProperties.Binary`, which
    /// the transform passes through for `sam build`).
    pub fn function_binary(&self, function_id: &str) -> Result<String, TemplateError> {
        self.resource(function_id)?
            .metadata
            .pointer("/BuildProperties/Binary")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                TemplateError::Unsupported(format!(
                    "{function_id} has no Metadata.BuildProperties.Binary"
                ))
            })
    }

    /// A repository file a resource was packaged from: the placeholder `s3://local-placeholder/
    /// <path>` the transform script wrote for a local `CodeUri` or `DefinitionUri`.
    pub fn packaged_path(location: &Value) -> Option<PathBuf> {
        let (bucket, key) = match (location.get("S3Bucket"), location.get("Bucket")) {
            (Some(b), _) => (b, location.get("S3Key")?),
            (None, Some(b)) => (b, location.get("Key")?),
            _ => return None,
        };
        let key = key.as_str()?;
        (bucket == PLACEHOLDER_BUCKET).then(|| project_root().join(key))
    }

    /// The `AWS::Lambda::Function` a value (a `FunctionName`, an ARN, an integration URI) invokes:
    /// directly, or through an `AWS::Lambda::Alias` or `AWS::Lambda::Version` of it.
    pub fn invoked_function(&self, value: &Value) -> Option<String> {
        self.references(value)
            .into_iter()
            .find_map(|id| self.function_behind(&id))
    }

    /// `id` itself when it is a function; the function an alias or version belongs to.
    pub fn function_behind(&self, id: &str) -> Option<String> {
        let resource = self.resources.get(id)?;
        match resource.kind.as_str() {
            "AWS::Lambda::Function" => Some(id.to_string()),
            "AWS::Lambda::Alias" | "AWS::Lambda::Version" => self
                .references(&resource.properties["FunctionName"])
                .into_iter()
                .find(|f| {
                    self.resources
                        .get(f)
                        .is_some_and(|r| r.kind == "AWS::Lambda::Function")
                }),
            _ => None,
        }
    }

    /// The logical ids of resources a value refers to (Ref, GetAtt, Sub), parameters excluded.
    pub fn references(&self, value: &Value) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        collect_refs(value, &mut out);
        out.retain(|id| self.resources.contains_key(id));
        out
    }
}

/// A resolved property's whole number: a number, or its text (a `Ref` to a Number parameter
/// resolves to text).
pub fn whole_number(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_str()?.parse().ok())
}

/// A list's items; anything else has none.
pub fn items(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A string, or the strings of a list; anything else names none.
pub fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        other => items(other)
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    }
}

/// A string argument of an intrinsic function, or `malformed`'s error.
fn string_argument(
    value: &Value,
    malformed: impl Fn() -> TemplateError,
) -> Result<&str, TemplateError> {
    value.as_str().ok_or_else(malformed)
}

/// An intrinsic function's argument list, when it has exactly `n` items.
fn arguments(arg: &Value, n: usize) -> Option<&[Value]> {
    arg.as_array().filter(|a| a.len() == n).map(Vec::as_slice)
}

/// Runs the SAM transform over `template` (JSON text of the CloudFormation template). The
/// output is cached under `target/sam-transform/`, keyed by the template's bytes and the
/// parameters, so test binaries and `make dev` pay the ~2 s of Python once per change.
/// The Python comes from `.venv-sam` (`make venvs`), or `KIT_SAM_PYTHON`.
pub fn transform(
    template: &Path,
    parameters: &[(String, String)],
) -> Result<String, TemplateError> {
    use sha2::Digest;
    let text = std::fs::read(template).map_err(|source| TemplateError::Read {
        path: template.to_path_buf(),
        source,
    })?;
    let root = project_root();
    let script = root.join("local/tools/sam_transform.py");
    let mut hasher = sha2::Sha256::new();
    hasher.update(&text);
    // A missing script hashes as empty; running it then fails with its own clear error.
    hasher.update(std::fs::read(&script).unwrap_or_default());
    for (name, value) in parameters {
        hasher.update(format!("\0{name}={value}"));
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let cache_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("sam-transform");
    let cached = cache_dir.join(format!("{digest}.json"));
    if let Ok(out) = std::fs::read_to_string(&cached) {
        return Ok(out);
    }
    let python = std::env::var_os("KIT_SAM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv-sam/bin/python"));
    if !python.exists() {
        return Err(TemplateError::Transform(format!(
            "{} is missing: run `make venvs` (or `make test`, which creates it)",
            python.display()
        )));
    }
    let mut command = std::process::Command::new(&python);
    command.arg(&script).arg(template);
    for (name, value) in parameters {
        command.arg("--parameter").arg(format!("{name}={value}"));
    }
    let out = command
        .output()
        .map_err(|e| TemplateError::Transform(format!("{}: {e}", python.display())))?;
    if !out.status.success() {
        return Err(TemplateError::Transform(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let json = String::from_utf8(out.stdout)
        .map_err(|e| TemplateError::Transform(format!("output is not UTF-8: {e}")))?;
    // Write-then-rename: parallel test binaries may race to fill the cache.
    let _ = std::fs::create_dir_all(&cache_dir);
    let partial = cache_dir.join(format!("{digest}.{}.tmp", std::process::id()));
    if std::fs::write(&partial, &json).is_ok() {
        let _ = std::fs::rename(&partial, &cached);
    }
    Ok(json)
}

pub fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// YAML -> JSON, turning CloudFormation short-form tags into long-form intrinsics.
fn to_json(value: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                // Neither i64 nor u64: a YAML float, which as_f64 always gives.
                Value::from(n.as_f64().unwrap_or_default())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                // A number or boolean key reads as its text, as CloudFormation's YAML parser
                // does; a key that is a list or map has no text (and no CloudFormation meaning).
                let key = match k {
                    Y::String(s) => s,
                    other => {
                        scalar_string(&to_json(other)).unwrap_or_else(|| "<non-scalar key>".into())
                    }
                };
                out.insert(key, to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = to_json(tagged.value);
            let (key, inner) = match tag {
                "Ref" => ("Ref".to_string(), inner),
                "Condition" => ("Condition".to_string(), inner),
                "GetAtt" => {
                    // `!GetAtt A.B` is a string; the long form is a list.
                    let inner = match inner {
                        Value::String(s) => match s.split_once('.') {
                            Some((a, b)) => Value::Array(vec![Value::from(a), Value::from(b)]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), inner)
                }
                other => (format!("Fn::{other}"), inner),
            };
            let mut out = Map::new();
            out.insert(key, inner);
            Value::Object(out)
        }
    }
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("Ref") {
                out.insert(target.clone());
            }
            if let Some(Value::Array(parts)) = map.get("Fn::GetAtt")
                && let Some(Value::String(target)) = parts.first()
            {
                out.insert(target.clone());
            }
            if let Some(sub) = map.get("Fn::Sub") {
                let text = match sub {
                    Value::String(s) => Some(s.as_str()),
                    Value::Array(parts) => parts.first().and_then(Value::as_str),
                    _ => None,
                };
                // A dependency scan: a malformed Fn::Sub names nothing here (`sub` refuses it).
                for var in text.map(sub_variables).unwrap_or_default() {
                    // split always yields a first piece: the resource of `Resource.Attribute`.
                    out.insert(var.split('.').next().unwrap_or_default().to_string());
                }
            }
            for v in map.values() {
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn sub_variables(text: &str) -> Vec<String> {
    let mut vars = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        if let Some(literal) = after.strip_prefix('!') {
            rest = literal;
            continue;
        }
        match after.find('}') {
            Some(end) => {
                vars.push(after[..end].trim().to_string());
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    vars
}

/// What `Ref AWS::NoValue` resolves to before the enclosing property is dropped.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

fn is_no_value(value: &Value) -> bool {
    value.as_str() == Some(NO_VALUE)
}

/// What a provisioned resource answers to `Ref` and `Fn::GetAtt`.
#[derive(Debug, Clone, Default)]
pub struct Physical {
    pub reference: String,
    pub attributes: HashMap<String, String>,
}

impl Physical {
    /// `reference` (what `Ref` answers) and the attributes `Fn::GetAtt` reads.
    pub fn new<const N: usize>(reference: &str, attributes: [(&str, &str); N]) -> Self {
        Self {
            reference: reference.to_string(),
            attributes: attributes
                .into_iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
    }
}

/// Evaluates intrinsic functions against provisioned resources and parameter values.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub physical: HashMap<String, Physical>,
    pub parameters: BTreeMap<String, String>,
    /// The template's `Conditions`, evaluated against `parameters` on demand.
    pub conditions: BTreeMap<String, Value>,
    pub region: String,
    pub account_id: String,
    pub stack_name: String,
}

impl Resolver {
    pub fn resolve(&self, value: &Value) -> Result<Value, TemplateError> {
        match value {
            Value::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("len is 1");
                match self.intrinsic(key, arg) {
                    Some(resolved) => resolved,
                    None => Ok(Value::Object(
                        map.iter()
                            .map(|(k, v)| Ok((k.clone(), self.resolve(v)?)))
                            .collect::<Result<_, TemplateError>>()?,
                    )),
                }
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    let resolved = self.resolve(v)?;
                    if !is_no_value(&resolved) {
                        out.insert(k.clone(), resolved);
                    }
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => {
                let resolved = items
                    .iter()
                    .map(|v| self.resolve(v))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::Array(
                    resolved.into_iter().filter(|v| !is_no_value(v)).collect(),
                ))
            }
            other => Ok(other.clone()),
        }
    }

    /// The value of the intrinsic function `key` applied to `arg`
    /// (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/intrinsic-function-reference.html);
    /// `None` when `key` names none (a plain one-key object). Malformed arguments are errors,
    /// as CloudFormation rejects them.
    fn intrinsic(&self, key: &str, arg: &Value) -> Option<Result<Value, TemplateError>> {
        let malformed = || TemplateError::Unresolved(format!("{key} {arg}"));
        Some(match key {
            "Ref" => string_argument(arg, malformed)
                .and_then(|name| self.reference(name).map(Value::String)),
            "Fn::GetAtt" => match arguments(arg, 2).map(|a| (a[0].as_str(), a[1].as_str())) {
                Some((Some(id), Some(attr))) => self.attribute(id, attr).map(Value::String),
                _ => Err(malformed()),
            },
            "Fn::Sub" => self.sub(arg).map(Value::String),
            "Fn::If" => arguments(arg, 3).ok_or_else(malformed).and_then(|parts| {
                let holds = self.condition(string_argument(&parts[0], malformed)?)?;
                self.resolve(&parts[if holds { 1 } else { 2 }])
            }),
            "Fn::Join" => arguments(arg, 2).ok_or_else(malformed).and_then(|parts| {
                let items = self.resolve(&parts[1])?;
                let items = items.as_array().ok_or_else(malformed)?;
                let strings: Vec<String> = items.iter().filter_map(scalar_string).collect();
                Ok(Value::String(
                    strings.join(string_argument(&parts[0], malformed)?),
                ))
            }),
            "Fn::Split" => arguments(arg, 2).ok_or_else(malformed).and_then(|parts| {
                let text = self.resolve_string(&parts[1])?;
                let pieces = text.split(string_argument(&parts[0], malformed)?);
                Ok(Value::Array(pieces.map(Value::from).collect()))
            }),
            "Fn::Select" => arguments(arg, 2).ok_or_else(malformed).and_then(|parts| {
                let index: usize = self
                    .resolve_string(&parts[0])?
                    .parse()
                    .map_err(|_| malformed())?;
                let list = self.resolve(&parts[1])?;
                list.as_array()
                    .and_then(|items| items.get(index))
                    .cloned()
                    .ok_or_else(malformed)
            }),
            _ if key.starts_with("Fn::") => Err(TemplateError::Unsupported(format!(
                "intrinsic {key} is not supported locally"
            ))),
            _ => return None,
        })
    }

    /// Whether a named condition of the template holds for the current parameters.
    pub fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        let body = self
            .conditions
            .get(name)
            .ok_or_else(|| TemplateError::Unresolved(format!("condition {name}")))?;
        self.evaluate(body)
    }

    fn evaluate(&self, body: &Value) -> Result<bool, TemplateError> {
        let unsupported = || TemplateError::Unsupported(format!("condition {body}"));
        let map = body
            .as_object()
            .filter(|m| m.len() == 1)
            .ok_or_else(unsupported)?;
        let (key, arg) = map.iter().next().expect("len is 1");
        let args = arg.as_array();
        match key.as_str() {
            "Condition" => self.condition(arg.as_str().ok_or_else(unsupported)?),
            "Fn::Equals" => {
                let pair = args.filter(|a| a.len() == 2).ok_or_else(unsupported)?;
                Ok(self.resolve(&pair[0])? == self.resolve(&pair[1])?)
            }
            "Fn::Not" => Ok(!self.evaluate(args.and_then(|a| a.first()).ok_or_else(unsupported)?)?),
            "Fn::And" => args
                .ok_or_else(unsupported)?
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.evaluate(c)?)),
            "Fn::Or" => args
                .ok_or_else(unsupported)?
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.evaluate(c)?)),
            _ => Err(unsupported()),
        }
    }

    /// Whether a resource exists under the current parameters (its `Condition`, if any, holds).
    pub fn exists(&self, resource: &Resource) -> Result<bool, TemplateError> {
        resource
            .condition
            .as_deref()
            .map_or(Ok(true), |c| self.condition(c))
    }

    /// Resolves to a string (numbers and booleans rendered as text).
    pub fn resolve_string(&self, value: &Value) -> Result<String, TemplateError> {
        let resolved = self.resolve(value)?;
        scalar_string(&resolved)
            .ok_or_else(|| TemplateError::Unresolved(format!("{value} is not a scalar")))
    }

    fn reference(&self, name: &str) -> Result<String, TemplateError> {
        match name {
            "AWS::Region" => return Ok(self.region.clone()),
            "AWS::AccountId" => return Ok(self.account_id.clone()),
            "AWS::Partition" => return Ok("aws".into()),
            "AWS::URLSuffix" => return Ok("amazonaws.com".into()),
            "AWS::StackName" => return Ok(self.stack_name.clone()),
            "AWS::StackId" => return Ok(self.stack_id()),
            "AWS::NoValue" => return Ok(NO_VALUE.into()),
            _ => {}
        }
        if let Some(value) = self.parameters.get(name) {
            return Ok(value.clone());
        }
        self.physical
            .get(name)
            .map(|p| p.reference.clone())
            .ok_or_else(|| TemplateError::Unresolved(format!("Ref {name} (not provisioned)")))
    }

    /// `arn:aws:cloudformation:region:account:stack/<name>/<uuid>`, the uuid derived from the
    /// stack name so that a stack keeps its id across restarts of the local stack.
    pub fn stack_id(&self) -> String {
        let uuid = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, self.stack_name.as_bytes());
        format!(
            "arn:aws:cloudformation:{}:{}:stack/{}/{uuid}",
            self.region, self.account_id, self.stack_name
        )
    }

    fn attribute(&self, id: &str, attr: &str) -> Result<String, TemplateError> {
        self.physical
            .get(id)
            .and_then(|p| p.attributes.get(attr))
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved(format!("Fn::GetAtt {id}.{attr}")))
    }

    fn sub(&self, arg: &Value) -> Result<String, TemplateError> {
        let (text, vars) = match arg {
            Value::String(s) => (s.as_str(), Map::new()),
            Value::Array(parts) if parts.len() == 2 => {
                match (parts[0].as_str(), parts[1].as_object()) {
                    (Some(text), Some(vars)) => (text, vars.clone()),
                    _ => return Err(TemplateError::Unresolved(format!("Fn::Sub {arg}"))),
                }
            }
            _ => return Err(TemplateError::Unresolved(format!("Fn::Sub {arg}"))),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            if let Some(literal) = after.strip_prefix('!') {
                out.push_str("${");
                rest = literal;
                continue;
            }
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unresolved(format!("Fn::Sub {text}")))?;
            let name = after[..end].trim();
            let value = if let Some(v) = vars.get(name) {
                self.resolve_string(v)?
            } else if let Some((id, attr)) = name
                .split_once('.')
                .filter(|(id, _)| !id.starts_with("AWS:"))
            {
                self.attribute(id, attr)?
            } else {
                self.reference(name)?
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
Parameters:
  Stage: { Type: String, Default: prod }
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Lambda::Function
    Metadata: { BuildProperties: { Binary: fn-bin } }
    Properties:
      Code: { S3Bucket: local-placeholder, S3Key: functions/fn }
      Environment:
        Variables:
          SHARED: "1"
          TABLE: !Ref Table
          STREAM: !GetAtt Table.StreamArn
          URL: !Sub "https://${Table}.example/${Stage}/${AWS::Region}/${!Literal}"
"#;

    #[test]
    fn normalises_tags_and_resolves_environment() {
        let template = Template::parse(SAMPLE).unwrap();
        let env = template.function_environment("Fn").unwrap();
        assert_eq!(
            template.references(&Value::Object(env.clone())),
            BTreeSet::from(["Table".to_string()])
        );
        let resolver = Resolver {
            physical: HashMap::from([(
                "Table".into(),
                Physical::new("t1", [("StreamArn", "arn:s")]),
            )]),
            parameters: template.parameter_defaults.clone(),
            conditions: template.conditions.clone(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            stack_name: "s".into(),
        };
        let get = |k: &str| resolver.resolve_string(&env[k]).unwrap();
        assert_eq!(get("SHARED"), "1");
        assert_eq!(get("TABLE"), "t1");
        assert_eq!(get("STREAM"), "arn:s");
        assert_eq!(get("URL"), "https://t1.example/prod/us-east-1/${Literal}");
        assert_eq!(template.function_binary("Fn").unwrap(), "fn-bin");
        let code = &template.resource("Fn").unwrap().properties["Code"];
        assert_eq!(
            Template::packaged_path(code).unwrap(),
            project_root().join("functions/fn")
        );
    }

    fn empty_resolver() -> Resolver {
        Resolver {
            physical: HashMap::new(),
            parameters: BTreeMap::from([("Sep".to_string(), ",".to_string())]),
            conditions: BTreeMap::new(),
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            stack_name: "s".into(),
        }
    }

    #[test]
    fn malformed_intrinsics_are_errors_not_defaults() {
        let resolver = empty_resolver();
        let resolve = |text: &str| resolver.resolve(&serde_json::from_str(text).unwrap());
        assert_eq!(
            resolve(r#"{"Fn::Join": [",", ["a", "b"]]}"#).unwrap(),
            "a,b"
        );
        assert_eq!(
            resolve(r#"{"Fn::Split": [",", "a,b"]}"#).unwrap(),
            serde_json::json!(["a", "b"])
        );
        // A delimiter that is no string, a list that is no list, a Ref to no name, a Sub
        // without its variables map: CloudFormation rejects each.
        for bad in [
            r#"{"Fn::Join": [1, ["a", "b"]]}"#,
            r#"{"Fn::Join": [",", "ab"]}"#,
            r#"{"Fn::Split": [null, "a,b"]}"#,
            r#"{"Ref": 7}"#,
            r#"{"Fn::Sub": ["${A}", "not a map"]}"#,
            r#"{"Fn::If": [1, "a", "b"]}"#,
        ] {
            assert!(resolve(bad).is_err(), "{bad} resolved");
        }
    }

    #[test]
    fn a_resource_without_a_type_is_refused() {
        let error = Template::parse("Resources:\n  Table:\n    Properties: {}\n").unwrap_err();
        assert!(error.to_string().contains("Table has no Type"), "{error}");
        let list_default = "Parameters:\n  P: { Type: String, Default: [a] }\nResources: {}\n";
        assert!(Template::parse(list_default).is_err());
    }
}
