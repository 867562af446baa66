//! Creates the template's resources in the emulator, under a name prefix so that parallel tests
//! (and a dev stack beside them) never share a table, queue, topic or bucket.
//!
//! Only what the transformed template says is created: key schemas, indexes, streams, TTL,
//! queue attributes and redrive policies are read from the resource properties, never restated
//! here, and nothing AWS would reject is repaired (an invalid bucket name fails, as in AWS).
//! IAM roles, bucket and queue policies and state machines are registered with the IAM gate
//! ([`crate::iam`]), so every principal acts with exactly the permissions the template gives it.

mod cognito;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types as ddb;
use serde_json::Value;

use aws_config::Region;
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};

use crate::cloudformation::template::{
    Physical, Resolver, Template, TemplateError, items, scalar_string, whole_number,
};
use crate::emulator::{ACCOUNT_ID, REGION};
use crate::iam::{self, GateClient, ResourcePolicyRecord, RoleRecord, StateMachineRecord};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("creating {id} ({kind}) failed: {detail}")]
    Create {
        id: String,
        kind: String,
        detail: String,
    },
    #[error("resource type {kind} of {id} cannot be provisioned locally")]
    Unsupported { id: String, kind: String },
    #[error("{kind} {id}: {property} is required (CloudFormation rejects the template without it)")]
    MissingProperty {
        id: String,
        kind: String,
        property: String,
    },
    #[error("{0}")]
    Iam(String),
}

/// Resources provisioned so far and the resolver over them.
#[derive(Debug, Clone)]
pub struct Stack {
    pub template: Arc<Template>,
    pub sdk: SdkConfig,
    pub prefix: String,
    pub resolver: Resolver,
    /// Local-only: caps every queue's visibility timeout (seconds), so redelivery and redrive to
    /// a DLQ take seconds in end-to-end tests instead of the template's minutes.
    pub visibility_timeout_cap: Option<u64>,
    /// The IAM gate in front of the emulator, where roles and resource policies are registered.
    pub gate: GateClient,
    /// Resource policies as registered (bucket and queue ARN -> documents), for the checks the
    /// emulator makes inside itself (S3 validating a notification's queue).
    pub resource_policies: HashMap<String, Vec<Value>>,
}

fn create_err(id: &str, kind: &str, err: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Create {
        id: id.into(),
        kind: kind.into(),
        detail: err.to_string(),
    }
}

/// An SDK call's failure as [`create_err`], with the error's chain of causes.
fn sdk_err<E: std::error::Error>(id: &str, kind: &str) -> impl FnOnce(E) -> ProvisionError {
    move |e| create_err(id, kind, crate::emulator::sdk_error(e))
}

/// Resource types served or run by this crate from their properties (the gateway, the
/// event-source pollers, the pipe runner), or not emulated: they only need names that resolve.
const NAMED_ONLY: &[&str] = &[
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Stage",
    "AWS::ApiGateway::ApiKey",
    "AWS::ApiGateway::UsagePlan",
    "AWS::ApiGateway::UsagePlanKey",
    "AWS::ApiGatewayV2::Deployment",
    "AWS::ApiGatewayV2::Stage",
    "AWS::ApiGatewayV2::Route",
    "AWS::ApiGatewayV2::Integration",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Events::Rule",
    "AWS::Pipes::Pipe",
    // CloudWatch is not emulated: alarms and dashboards only need names that resolve (their
    // coverage is checked on the template, local/tests/template.rs).
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    // CloudFront is not emulated: the local stack serves web/ itself with the response headers
    // policy's headers (crate::cloudfront).
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
    // CodeDeploy shifts alias traffic in AWS; locally the alias always serves.
    "AWS::CodeDeploy::Application",
    "AWS::CodeDeploy::DeploymentGroup",
    "AWS::SNS::Subscription",
];

/// Lambda runs $LATEST locally; an alias or version resolves to the function's ARN qualified as
/// AWS names it, so policies and event sources on it match. `FunctionName` (and an alias's
/// `Name`) are required.
fn lambda_qualified(id: &str, kind: &str, props: &Value) -> Result<Physical, ProvisionError> {
    let function = required_str(id, kind, props, "/FunctionName")?;
    let qualifier = match kind {
        "AWS::Lambda::Alias" => required_str(id, kind, props, "/Name")?,
        _ => "1",
    };
    let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}:{qualifier}");
    let attributes = [("Arn", &*arn), ("AliasArn", &arn), ("Version", "1")];
    Ok(Physical::new(&arn, attributes))
}

/// A property CloudFormation requires, at `pointer` in `props` (`/KeySchema/0/KeyType`), of
/// the shape `is` checks; missing or malformed, the error names the resource and property.
fn required<'a>(
    id: &str,
    kind: &str,
    props: &'a Value,
    pointer: &str,
    is: fn(&Value) -> bool,
) -> Result<&'a Value, ProvisionError> {
    props
        .pointer(pointer)
        .filter(|value| is(value))
        .ok_or_else(|| ProvisionError::MissingProperty {
            id: id.into(),
            kind: kind.into(),
            property: pointer.trim_start_matches('/').replace('/', "."),
        })
}

/// A string property CloudFormation requires (see [`required`]).
fn required_str<'a>(
    id: &str,
    kind: &str,
    props: &'a Value,
    pointer: &str,
) -> Result<&'a str, ProvisionError> {
    Ok(required(id, kind, props, pointer, Value::is_string)?
        .as_str()
        .expect("a string"))
}

/// A list property CloudFormation requires (see [`required`]).
fn required_list<'a>(
    id: &str,
    kind: &str,
    props: &'a Value,
    pointer: &str,
) -> Result<&'a Vec<Value>, ProvisionError> {
    Ok(required(id, kind, props, pointer, Value::is_array)?
        .as_array()
        .expect("a list"))
}

/// An `AWS::DynamoDB::Table`'s properties, read as CloudFormation requires them
/// (docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-dynamodb-table.html).
struct TableDeclaration<'a> {
    id: &'a str,
    props: &'a Value,
}

impl TableDeclaration<'_> {
    const KIND: &'static str = "AWS::DynamoDB::Table";

    fn error(&self, err: impl std::fmt::Display) -> ProvisionError {
        create_err(self.id, Self::KIND, err)
    }

    fn required_str(&self, pointer: &str) -> Result<&str, ProvisionError> {
        required_str(self.id, Self::KIND, self.props, pointer)
    }

    /// Each entry of the list at `pointer` as its `AttributeName` and its `second` property,
    /// both required.
    fn named_pairs(
        &self,
        pointer: &str,
        second: &str,
    ) -> Result<Vec<(&str, &str)>, ProvisionError> {
        let count = required_list(self.id, Self::KIND, self.props, pointer)?.len();
        (0..count)
            .map(|i| {
                Ok((
                    self.required_str(&format!("{pointer}/{i}/AttributeName"))?,
                    self.required_str(&format!("{pointer}/{i}/{second}"))?,
                ))
            })
            .collect()
    }

    fn key_schema(&self, pointer: &str) -> Result<Vec<ddb::KeySchemaElement>, ProvisionError> {
        let keys = self.named_pairs(pointer, "KeyType")?;
        keys.into_iter()
            .map(|(name, key_type)| {
                let key_type = ddb::KeyType::from(key_type);
                let key = ddb::KeySchemaElement::builder().attribute_name(name);
                key.key_type(key_type).build().map_err(|e| self.error(e))
            })
            .collect()
    }

    fn attribute_definitions(&self) -> Result<Vec<ddb::AttributeDefinition>, ProvisionError> {
        let attributes = self.named_pairs("/AttributeDefinitions", "AttributeType")?;
        attributes
            .into_iter()
            .map(|(name, kind)| {
                let kind = ddb::ScalarAttributeType::from(kind);
                let attribute = ddb::AttributeDefinition::builder().attribute_name(name);
                attribute
                    .attribute_type(kind)
                    .build()
                    .map_err(|e| self.error(e))
            })
            .collect()
    }

    /// Each index's name, keys and projection (all required; `ProjectionType` as written, the
    /// service deciding when it is absent).
    fn global_secondary_indexes(
        &self,
    ) -> Result<Option<Vec<ddb::GlobalSecondaryIndex>>, ProvisionError> {
        let Some(indexes) = self.props.get("GlobalSecondaryIndexes") else {
            return Ok(None);
        };
        let count = indexes.as_array().map_or(0, Vec::len);
        if count == 0 {
            return Ok(None);
        }
        let built = (0..count)
            .map(|i| {
                let at = format!("/GlobalSecondaryIndexes/{i}");
                let pointer = format!("{at}/Projection");
                let projection =
                    required(self.id, Self::KIND, self.props, &pointer, Value::is_object)?;
                let non_key: Option<Vec<String>> = projection
                    .get("NonKeyAttributes")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    });
                ddb::GlobalSecondaryIndex::builder()
                    .index_name(self.required_str(&format!("{at}/IndexName"))?)
                    .set_key_schema(Some(self.key_schema(&format!("{at}/KeySchema"))?))
                    .projection(
                        ddb::Projection::builder()
                            .set_projection_type(
                                projection["ProjectionType"]
                                    .as_str()
                                    .map(ddb::ProjectionType::from),
                            )
                            .set_non_key_attributes(non_key)
                            .build(),
                    )
                    .build()
                    .map_err(|e| self.error(e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(built))
    }

    fn stream_specification(&self) -> Result<Option<ddb::StreamSpecification>, ProvisionError> {
        if self.props.get("StreamSpecification").is_none() {
            return Ok(None);
        }
        let view = self.required_str("/StreamSpecification/StreamViewType")?;
        ddb::StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(ddb::StreamViewType::from(view))
            .build()
            .map(Some)
            .map_err(|e| self.error(e))
    }

    /// TTL when enabled; its `AttributeName` is then required.
    fn time_to_live(&self) -> Result<Option<ddb::TimeToLiveSpecification>, ProvisionError> {
        let enabled = self.props.pointer("/TimeToLiveSpecification/Enabled");
        if enabled.and_then(Value::as_bool) != Some(true) {
            return Ok(None);
        }
        ddb::TimeToLiveSpecification::builder()
            .attribute_name(self.required_str("/TimeToLiveSpecification/AttributeName")?)
            .enabled(true)
            .build()
            .map(Some)
            .map_err(|e| self.error(e))
    }
}

impl Stack {
    pub fn new(template: Arc<Template>, sdk: SdkConfig, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        // A stack read without an emulator (the template-only tests) has no gate: registering
        // with it then fails with the gate client's own error.
        let endpoint = sdk.endpoint_url().unwrap_or_default().to_string();
        let resolver = Resolver {
            physical: HashMap::new(),
            parameters: template.parameter_defaults.clone(),
            conditions: template.conditions.clone(),
            region: REGION.into(),
            account_id: ACCOUNT_ID.into(),
            stack_name: prefix.clone(),
        };
        Self {
            template,
            sdk,
            prefix,
            resolver,
            visibility_timeout_cap: None,
            gate: GateClient::new(&endpoint),
            resource_policies: HashMap::new(),
        }
    }

    /// The logical id of the role a function, pipe or state machine runs with (`Role`,
    /// `RoleArn`).
    pub fn role_of(&self, id: &str) -> Result<String, TemplateError> {
        let resource = self.template.resource(id)?;
        let role = resource
            .properties
            .get("Role")
            .or_else(|| resource.properties.get("RoleArn"))
            .ok_or_else(|| TemplateError::Unresolved(format!("{id} has no Role or RoleArn")))?;
        self.template
            .references(role)
            .into_iter()
            .find(|r| {
                self.template
                    .resource(r)
                    .is_ok_and(|r| r.kind == "AWS::IAM::Role")
            })
            .ok_or_else(|| TemplateError::Unresolved(format!("{id}'s role is not in the template")))
    }

    /// An API's id: 10 lower-case characters, as API Gateway's, distinct per stack and API.
    pub fn api_id(&self, logical_id: &str) -> String {
        let name = format!("{}/{logical_id}", self.prefix);
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
            .simple()
            .to_string()[..10]
            .to_string()
    }

    /// Names this stack's resources carry besides its prefix (the stack id's UUID, API ids),
    /// which the least-privilege report folds into `<stack>`.
    fn stack_aliases(&self) -> Vec<String> {
        let mut aliases = vec![
            // rsplit yields at least one piece: the id's UUID, or the whole id.
            self.resolver
                .stack_id()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        ];
        for (id, resource) in &self.template.resources {
            if matches!(
                resource.kind.as_str(),
                "AWS::ApiGateway::RestApi" | "AWS::ApiGatewayV2::Api"
            ) {
                aliases.push(self.api_id(id));
            }
        }
        aliases
    }

    /// The access key id a role's principal signs with.
    pub fn access_key(&self, role_id: &str) -> String {
        iam::access_key_for(&self.prefix, role_id)
    }

    /// SDK configuration for a role's principal: the gate, signing with the role's key.
    pub fn role_sdk(&self, role_id: &str) -> SdkConfig {
        self.sdk
            .to_builder()
            .region(Region::new(REGION))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                self.access_key(role_id),
                iam::LOCAL_SECRET,
                None,
                None,
                "local-iam",
            )))
            .build()
    }

    /// SDK configuration for a function (its role provisioned first): what its process, and
    /// its event-source mappings, sign with.
    pub async fn function_sdk(&mut self, function_id: &str) -> Result<SdkConfig, ProvisionError> {
        self.ensure(&[function_id]).await?;
        let role = self.role_of(function_id)?;
        Ok(self.role_sdk(&role))
    }

    /// A stack with a random prefix, for one test.
    pub fn isolated(template: Arc<Template>, sdk: SdkConfig) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self::new(template, sdk, format!("t{}", &id[..10]))
    }

    pub fn physical(&self, id: &str) -> Result<&Physical, TemplateError> {
        self.resolver
            .physical
            .get(id)
            .ok_or_else(|| TemplateError::Unresolved(format!("{id} is not provisioned")))
    }

    /// The logical id of the provisioned resource whose `Arn` attribute is `arn`.
    pub fn id_with_arn(&self, arn: &str) -> Option<String> {
        self.id_with_attribute("Arn", arn)
    }

    /// The logical id of the provisioned resource whose attribute `name` is `value`
    /// (e.g. the table with `StreamArn` = a stream's ARN).
    pub fn id_with_attribute(&self, name: &str, value: &str) -> Option<String> {
        self.resolver
            .physical
            .iter()
            .find(|(_, p)| p.attributes.get(name).map(String::as_str) == Some(value))
            .map(|(id, _)| id.clone())
    }

    /// `Ref` of a provisioned resource: table/bucket name, queue URL, topic ARN.
    pub fn reference(&self, id: &str) -> Result<String, TemplateError> {
        self.physical(id).map(|p| p.reference.clone())
    }

    pub fn attribute(&self, id: &str, attr: &str) -> Result<String, TemplateError> {
        self.physical(id)?
            .attributes
            .get(attr)
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved(format!("{id}.{attr}")))
    }

    /// What a user does in SES before deploying (the README's deploy step): verify an address
    /// the stack sends from without creating its identity (`CreateSenderIdentity=false`).
    pub async fn verify_email_identity(&self, address: &str) -> Result<(), ProvisionError> {
        aws_sdk_sesv2::Client::new(&self.sdk)
            .create_email_identity()
            .email_identity(address)
            .send()
            .await
            .map(drop)
            .or_else(|e| {
                let already = e
                    .as_service_error()
                    .is_some_and(|e| e.is_already_exists_exception());
                if already {
                    Ok(())
                } else {
                    Err(create_err(
                        address,
                        "SES identity",
                        crate::emulator::sdk_error(e),
                    ))
                }
            })
    }

    /// Overrides a template parameter (before provisioning what depends on it).
    pub fn set_parameter(&mut self, name: &str, value: &str) {
        self.resolver.parameters.insert(name.into(), value.into());
    }

    /// Provisions `ids` and everything their properties refer to, dependencies first.
    pub async fn ensure(&mut self, ids: &[&str]) -> Result<(), ProvisionError> {
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for id in ids {
            self.visit(id, &mut seen, &mut order)?;
        }
        for id in order {
            if !self.resolver.physical.contains_key(&id) {
                let physical = self.create(&id).await?;
                self.resolver.physical.insert(id, physical);
            }
        }
        Ok(())
    }

    /// Provisions every resource the emulator can hold; returns the ones it cannot (logical id,
    /// type), which the local stack either runs itself or does without.
    pub async fn ensure_all(&mut self) -> Result<Vec<(String, String)>, ProvisionError> {
        let ids: Vec<String> = self.template.resources.keys().cloned().collect();
        let mut skipped: Vec<(String, String)> = Vec::new();
        for id in &ids {
            match self.ensure(&[id.as_str()]).await {
                Ok(()) => {}
                Err(ProvisionError::Unsupported { id, kind }) => {
                    if !skipped.iter().any(|(s, _)| s == &id) {
                        skipped.push((id, kind));
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(skipped)
    }

    fn visit(
        &self,
        id: &str,
        seen: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<(), ProvisionError> {
        if !seen.insert(id.to_string()) {
            return Ok(());
        }
        let resource = self.template.resource(id)?;
        // Resources whose condition is false do not exist; `Fn::If` never resolves to them.
        if !self.resolver.exists(resource)? {
            return Ok(());
        }
        let mut deps = self.template.references(&resource.properties);
        deps.extend(resource.depends_on.iter().cloned());
        for dep in deps {
            self.visit(&dep, seen, order)?;
        }
        order.push(id.to_string());
        Ok(())
    }

    /// Provisions what a function's environment refers to and returns the environment resolved,
    /// exactly as Lambda would see it deployed from the template.
    pub async fn function_env(
        &mut self,
        function_id: &str,
    ) -> Result<HashMap<String, String>, ProvisionError> {
        let vars = self.template.function_environment(function_id)?;
        let deps: Vec<String> = self
            .template
            .references(&Value::Object(vars.clone()))
            .into_iter()
            .collect();
        self.ensure(&deps.iter().map(String::as_str).collect::<Vec<_>>())
            .await?;
        let resolved = self.resolver.resolve(&Value::Object(vars))?;
        Ok(resolved
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| scalar_string(v).map(|v| (k.clone(), v)))
            .collect())
    }

    fn physical_name(&self, id: &str, max: usize) -> String {
        let mut name = format!("{}-{}", self.prefix, id);
        name.truncate(max);
        name
    }

    async fn create(&mut self, id: &str) -> Result<Physical, ProvisionError> {
        let template = self.template.clone();
        let resource = template.resource(id)?;
        let props = self.resolver.resolve(&resource.properties)?;
        let kind = resource.kind.as_str();
        match kind {
            "AWS::DynamoDB::Table" => self.create_table(id, &props).await,
            "AWS::SQS::Queue" => self.create_queue(id, &props).await,
            "AWS::SNS::Topic" => self.create_topic(id).await,
            "AWS::S3::Bucket" => self.create_bucket(id, &props).await,
            "AWS::SES::EmailIdentity" => self.create_email_identity(id, &props).await,
            "AWS::StepFunctions::Activity" => self.create_activity(id).await,
            "AWS::SecretsManager::Secret" => self.create_secret(id, &props).await,
            "AWS::StepFunctions::StateMachine" => self.create_state_machine(id, &props).await,
            "AWS::Cognito::UserPool" => self.create_user_pool(id, &props).await,
            "AWS::Cognito::UserPoolClient" => self.create_user_pool_client(id, &props).await,
            "AWS::Cognito::UserPoolGroup" => self.create_user_pool_group(id, &props).await,
            // Not emulated (functions log to stdout locally); named and ARN'd as CloudFormation does.
            "AWS::Logs::LogGroup" => Ok(self.log_group(id, &props)),
            "AWS::IAM::Role" => self.create_role(id, &props).await,
            "AWS::SQS::QueuePolicy" | "AWS::S3::BucketPolicy" => {
                self.create_resource_policy(id, kind, &props).await
            }
            "AWS::Lambda::Version" | "AWS::Lambda::Alias" => lambda_qualified(id, kind, &props),
            "AWS::Lambda::Function" => Ok(self.lambda_function(id, &props)),
            "AWS::ApiGateway::RestApi" | "AWS::ApiGatewayV2::Api" => {
                let api_id = self.api_id(id);
                let attributes = [("ApiId", &*api_id), ("RootResourceId", "root")];
                Ok(Physical::new(&api_id, attributes))
            }
            kind if NAMED_ONLY.contains(&kind) => Ok(self.named_only(id, kind, &props)),
            _ => Err(ProvisionError::Unsupported {
                id: id.into(),
                kind: kind.into(),
            }),
        }
        .inspect(|_| tracing::debug!(%id, %kind, "provisioned"))
    }

    /// The name property `prop` as written, or, since it is optional, the unique name
    /// CloudFormation generates (from the stack and logical id, at most `max` characters).
    fn name_or_generated(&self, id: &str, props: &Value, prop: &str, max: usize) -> String {
        let written = props[prop].as_str().map(str::to_string);
        written.unwrap_or_else(|| self.physical_name(id, max))
    }

    fn log_group(&self, id: &str, props: &Value) -> Physical {
        let name = self.name_or_generated(id, props, "LogGroupName", 512);
        let arn = format!("arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*");
        Physical::new(&name, [("Arn", &arn)])
    }

    fn lambda_function(&self, id: &str, props: &Value) -> Physical {
        let name = self.name_or_generated(id, props, "FunctionName", 64);
        let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}");
        Physical::new(&name, [("Arn", &arn)])
    }

    /// A resource this crate serves or runs from its properties: only a name (and ARN) that
    /// resolves.
    fn named_only(&self, id: &str, kind: &str, props: &Value) -> Physical {
        let reference = match kind {
            // A stage's Ref is its name.
            "AWS::ApiGateway::Stage" | "AWS::ApiGatewayV2::Stage" => {
                self.name_or_generated(id, props, "StageName", 64)
            }
            _ => self.physical_name(id, 64),
        };
        // Every kind in NAMED_ONLY is AWS::<Service>::<Resource>.
        let names: Vec<String> = kind.split("::").map(str::to_ascii_lowercase).collect();
        let arn = format!(
            "arn:aws:{}:{REGION}:{ACCOUNT_ID}:{}/{reference}",
            names[1], names[2]
        );
        let mut attributes = HashMap::from([("Arn".into(), arn)]);
        if kind.starts_with("AWS::CloudFront::") {
            attributes.insert("Id".into(), reference.clone());
            attributes.insert("DomainName".into(), format!("{reference}.cloudfront.net"));
        }
        Physical {
            reference,
            attributes,
        }
    }

    async fn create_table(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        let table = TableDeclaration { id, props };
        let name = self.name_or_generated(id, props, "TableName", 255);
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        let out = client
            .create_table()
            .table_name(&name)
            .billing_mode(ddb::BillingMode::PayPerRequest)
            .set_key_schema(Some(table.key_schema("/KeySchema")?))
            .set_attribute_definitions(Some(table.attribute_definitions()?))
            .set_global_secondary_indexes(table.global_secondary_indexes()?)
            .set_stream_specification(table.stream_specification()?)
            .send()
            .await
            .map_err(|e| table.error(crate::emulator::sdk_error(e)))?;
        if let Some(ttl) = table.time_to_live()? {
            client
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| table.error(crate::emulator::sdk_error(e)))?;
        }
        let description = out
            .table_description
            .ok_or_else(|| table.error("CreateTable returned no TableDescription"))?;
        let arn = description
            .table_arn
            .ok_or_else(|| table.error("CreateTable returned no TableArn"))?;
        let mut attributes = HashMap::from([("Arn".to_string(), arn)]);
        if let Some(stream) = description.latest_stream_arn {
            attributes.insert("StreamArn".into(), stream);
        }
        Ok(Physical {
            reference: name,
            attributes,
        })
    }

    async fn create_queue(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let kind = "AWS::SQS::Queue";
        let fifo = props
            .get("FifoQueue")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let name = props
            .get("QueueName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                let base = self.physical_name(id, 75);
                if fifo { format!("{base}.fifo") } else { base }
            });
        let mut attributes = HashMap::new();
        for (prop, attr) in [
            ("VisibilityTimeout", A::VisibilityTimeout),
            ("MessageRetentionPeriod", A::MessageRetentionPeriod),
            ("DelaySeconds", A::DelaySeconds),
            (
                "ReceiveMessageWaitTimeSeconds",
                A::ReceiveMessageWaitTimeSeconds,
            ),
            ("MaximumMessageSize", A::MaximumMessageSize),
            ("FifoQueue", A::FifoQueue),
            ("ContentBasedDeduplication", A::ContentBasedDeduplication),
        ] {
            if let Some(value) = props.get(prop) {
                let text = match value {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                attributes.insert(attr, text);
            }
        }
        if let Some(cap) = self.visibility_timeout_cap {
            let configured = attributes
                .get(&A::VisibilityTimeout)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(30);
            attributes.insert(A::VisibilityTimeout, configured.min(cap).to_string());
        }
        if let Some(redrive) = props.get("RedrivePolicy") {
            attributes.insert(A::RedrivePolicy, redrive.to_string());
        }
        let client = aws_sdk_sqs::Client::new(&self.sdk);
        let out = client
            .create_queue()
            .queue_name(&name)
            .set_attributes(Some(attributes))
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        let url = out
            .queue_url
            .ok_or_else(|| create_err(id, kind, "CreateQueue returned no QueueUrl"))?;
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}");
        let attributes = [("Arn", &*arn), ("QueueName", &name), ("QueueUrl", &url)];
        Ok(Physical::new(&url, attributes))
    }

    async fn create_topic(&self, id: &str) -> Result<Physical, ProvisionError> {
        let kind = "AWS::SNS::Topic";
        let name = self.physical_name(id, 256);
        let sns = aws_sdk_sns::Client::new(&self.sdk);
        let out = sns.create_topic().name(&name).send().await;
        let arn = out.map_err(sdk_err(id, kind))?.topic_arn;
        let arn = arn.ok_or_else(|| create_err(id, kind, "CreateTopic returned no TopicArn"))?;
        let attributes = [("TopicArn", &*arn), ("TopicName", &name)];
        Ok(Physical::new(&arn, attributes))
    }

    async fn create_bucket(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        let kind = "AWS::S3::Bucket";
        // CloudFormation names an unnamed bucket from the stack and logical id, lower-cased;
        // an explicit name is used as written, and S3 refuses an invalid one.
        let name = match props.get("BucketName").and_then(Value::as_str) {
            Some(name) => name.to_string(),
            None => self.physical_name(id, 63).to_ascii_lowercase(),
        };
        if let Err(why) = valid_bucket_name(&name) {
            return Err(create_err(
                id,
                kind,
                format!(
                    "InvalidBucketName: {name:?} {why} (S3 refuses it; so does CloudFormation)"
                ),
            ));
        }
        let bucket_arn = format!("arn:aws:s3:::{name}");
        let s3 = aws_sdk_s3::Client::new(&self.sdk);
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        // S3's CORS evaluation happens at the gate (moto answers every origin).
        let cors = crate::s3::cors::BucketCorsRecord {
            bucket: name.clone(),
            rules: crate::s3::cors::rules_of(props),
        };
        self.gate
            .register("bucket-cors", cors)
            .await
            .map_err(ProvisionError::Iam)?;
        if let Some(config) = self.bucket_notifications(id, props, &bucket_arn)? {
            s3.put_bucket_notification_configuration()
                .bucket(&name)
                .notification_configuration(config)
                .send()
                .await
                .map_err(sdk_err(id, kind))?;
        }
        let domain = format!("{name}.s3.amazonaws.com");
        let regional = format!("{name}.s3.{REGION}.amazonaws.com");
        let attributes = [
            ("Arn", &*bucket_arn),
            ("DomainName", &domain),
            ("RegionalDomainName", &regional),
        ];
        Ok(Physical::new(&name, attributes))
    }

    /// The bucket's queue notifications, each destination checked as S3 checks it when the
    /// configuration is put: the queue policy must let s3.amazonaws.com send for this bucket.
    /// `Queue`, `Event` and each filter rule's `Name` and `Value` are required.
    fn bucket_notifications(
        &self,
        id: &str,
        props: &Value,
        bucket_arn: &str,
    ) -> Result<Option<aws_sdk_s3::types::NotificationConfiguration>, ProvisionError> {
        use aws_sdk_s3::types::{
            Event, FilterRule, FilterRuleName, NotificationConfiguration,
            NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
        };
        let kind = "AWS::S3::Bucket";
        let at = "/NotificationConfiguration/QueueConfigurations";
        let Some(queues) = props.pointer(at).and_then(Value::as_array) else {
            return Ok(None);
        };
        let mut config = NotificationConfiguration::builder();
        for i in 0..queues.len() {
            let queue = format!("{at}/{i}");
            let rules_at = format!("{queue}/Filter/S3Key/Rules");
            let rule_count = props
                .pointer(&rules_at)
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let rules = (0..rule_count)
                .map(|j| {
                    let rule = format!("{rules_at}/{j}");
                    Ok(FilterRule::builder()
                        .name(FilterRuleName::from(required_str(
                            id,
                            kind,
                            props,
                            &format!("{rule}/Name"),
                        )?))
                        .value(required_str(id, kind, props, &format!("{rule}/Value"))?)
                        .build())
                })
                .collect::<Result<Vec<_>, ProvisionError>>()?;
            let queue_arn = required_str(id, kind, props, &format!("{queue}/Queue"))?;
            self.s3_may_notify(queue_arn, bucket_arn)
                .map_err(|why| create_err(id, kind, why))?;
            let event = required_str(id, kind, props, &format!("{queue}/Event"))?;
            let mut target = QueueConfiguration::builder()
                .queue_arn(queue_arn)
                .events(Event::from(event));
            if !rules.is_empty() {
                target = target.filter(
                    NotificationConfigurationFilter::builder()
                        .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                        .build(),
                );
            }
            config =
                config.queue_configurations(target.build().map_err(|e| create_err(id, kind, e))?);
        }
        Ok(Some(config.build()))
    }

    async fn create_email_identity(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let kind = "AWS::SES::EmailIdentity";
        let identity = required_str(id, kind, props, "/EmailIdentity")?;
        aws_sdk_sesv2::Client::new(&self.sdk)
            .create_email_identity()
            .email_identity(identity)
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        Ok(Physical::new(identity, []))
    }

    /// A secret whose value Secrets Manager generates (`GenerateSecretString`: `PasswordLength`,
    /// default 32, letters and digits with `ExcludePunctuation`), named as CloudFormation names an
    /// unnamed one; `Ref` is its ARN.
    async fn create_secret(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        let kind = "AWS::SecretsManager::Secret";
        let name = self.name_or_generated(id, props, "Name", 256);
        let value = match (&props["SecretString"], &props["GenerateSecretString"]) {
            (Value::String(value), _) => value.clone(),
            (_, Value::Object(generate)) => {
                let length = generate
                    .get("PasswordLength")
                    .and_then(whole_number)
                    .unwrap_or(32) as usize;
                let alphabet: Vec<char> = if generate
                    .get("ExcludePunctuation")
                    .is_some_and(|v| v == true || v == "true")
                {
                    ('a'..='z').chain('A'..='Z').chain('0'..='9').collect()
                } else {
                    ('!'..='~').collect()
                };
                (0..length)
                    .map(|_| alphabet[fastrand::usize(..alphabet.len())])
                    .collect()
            }
            _ => {
                return Err(create_err(
                    id,
                    kind,
                    "neither SecretString nor GenerateSecretString",
                ));
            }
        };
        let out = aws_sdk_secretsmanager::Client::new(&self.sdk)
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        let arn = out
            .arn
            .ok_or_else(|| create_err(id, kind, "CreateSecret returned no ARN"))?;
        Ok(Physical::new(&arn, []))
    }

    async fn create_activity(&self, id: &str) -> Result<Physical, ProvisionError> {
        let name = self.physical_name(id, 80);
        let sfn = aws_sdk_sfn::Client::new(&self.sdk);
        let out = sfn.create_activity().name(&name).send().await;
        let out = out.map_err(sdk_err(id, "AWS::StepFunctions::Activity"))?;
        Ok(Physical::new(&out.activity_arn, [("Name", &name)]))
    }

    /// The definition comes from the file the transform's placeholder `DefinitionS3Location`
    /// names, with `DefinitionSubstitutions` applied, as `sam deploy` packages it. The state
    /// machine is registered with the gate: moto runs its service integrations, and the gate
    /// attributes those calls (and the task tokens they carry) to it and its role.
    async fn create_state_machine(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let kind = "AWS::StepFunctions::StateMachine";
        let mut definition = match (
            props.get("DefinitionString"),
            props.get("DefinitionS3Location"),
        ) {
            (Some(Value::String(text)), _) => text.clone(),
            (_, Some(location)) => {
                let path = Template::packaged_path(location).ok_or_else(|| {
                    create_err(id, kind, "DefinitionS3Location is not a local placeholder")
                })?;
                std::fs::read_to_string(&path)
                    .map_err(|e| create_err(id, kind, format!("{}: {e}", path.display())))?
            }
            _ => {
                return Err(create_err(
                    id,
                    kind,
                    "no DefinitionString or DefinitionS3Location",
                ));
            }
        };
        for (name, value) in props
            .get("DefinitionSubstitutions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let value = scalar_string(value).ok_or_else(|| {
                create_err(
                    id,
                    kind,
                    format!("DefinitionSubstitutions.{name} must be a string, number or boolean"),
                )
            })?;
            definition = definition.replace(&format!("${{{name}}}"), &value);
        }
        let parsed: Value = serde_json::from_str(&definition)
            .map_err(|e| create_err(id, kind, format!("definition is not JSON: {e}")))?;
        let role_arn = required_str(id, kind, props, "/RoleArn")?.to_string();
        let name = self.physical_name(id, 80);
        let out = aws_sdk_sfn::Client::new(&self.sdk)
            .create_state_machine()
            .name(&name)
            .definition(definition)
            .role_arn(&role_arn)
            .send()
            .await
            .map_err(sdk_err(id, kind))?;
        let role = self.role_of(id)?;
        let (queue_urls, token_fields) = service_integrations(&parsed);
        let machine = StateMachineRecord {
            arn: out.state_machine_arn.clone(),
            role_access_key: self.access_key(&role),
            queue_urls,
            token_fields,
        };
        self.gate
            .register("state-machines", machine)
            .await
            .map_err(ProvisionError::Iam)?;
        let arn = &out.state_machine_arn;
        Ok(Physical::new(arn, [("Name", &name), ("Arn", arn)]))
    }

    /// A role: registered with the gate with its inline policies (SAM's policy templates
    /// already expanded by the transform) and pinned copies of its managed policies.
    async fn create_role(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        let name = self.name_or_generated(id, props, "RoleName", 64);
        let arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}");
        let count = props["Policies"].as_array().map_or(0, Vec::len);
        let mut policies: Vec<Value> = (0..count)
            .map(|i| {
                let pointer = format!("/Policies/{i}/PolicyDocument");
                required(id, "AWS::IAM::Role", props, &pointer, Value::is_object).cloned()
            })
            .collect::<Result<_, _>>()?;
        for managed in items(&props["ManagedPolicyArns"])
            .iter()
            .filter_map(Value::as_str)
        {
            policies.push(iam::managed_policy(managed).map_err(ProvisionError::Iam)?);
        }
        let role = RoleRecord {
            access_key_id: self.access_key(id),
            stack: self.prefix.clone(),
            stack_aliases: self.stack_aliases(),
            logical_id: id.to_string(),
            arn: arn.clone(),
            policies,
            timeout_ms: self.timeout_of_role_user(id)?,
        };
        self.gate
            .register("roles", role)
            .await
            .map_err(ProvisionError::Iam)?;
        Ok(Physical::new(&name, [("Arn", &arn), ("RoleId", &name)]))
    }

    /// The `Timeout` (ms) of the function that runs as this role, if one does: resolved, 3 s
    /// when absent (AWS::Lambda::Function Timeout's default), an error when not a whole number.
    fn timeout_of_role_user(&self, role_id: &str) -> Result<Option<u64>, ProvisionError> {
        let user = self.template.resources.iter().find(|(_, r)| {
            r.properties
                .get("Role")
                .is_some_and(|role| self.template.references(role).contains(role_id))
        });
        let Some((function_id, function)) = user else {
            return Ok(None);
        };
        let Some(timeout) = function.properties.get("Timeout") else {
            return Ok(Some(3_000));
        };
        let seconds: u64 = self
            .resolver
            .resolve_string(timeout)?
            .parse()
            .map_err(|_| {
                create_err(
                    function_id,
                    &function.kind,
                    "Timeout must be a whole number of seconds",
                )
            })?;
        Ok(Some(seconds * 1000))
    }

    /// Bucket and queue policies: registered with the gate for the resources they are on.
    async fn create_resource_policy(
        &mut self,
        id: &str,
        kind: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let resources: Vec<String> = match kind {
            "AWS::S3::BucketPolicy" => {
                let bucket = required_str(id, kind, props, "/Bucket")?;
                vec![format!("arn:aws:s3:::{bucket}")]
            }
            _ => {
                let queues = required_list(id, kind, props, "/Queues")?;
                queues
                    .iter()
                    .map(|url| {
                        url.as_str()
                            .and_then(iam::actions::queue_arn)
                            .ok_or_else(|| {
                                create_err(id, kind, format!("Queues: {url} is not a queue URL"))
                            })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let policy = required(id, kind, props, "/PolicyDocument", Value::is_object)?.clone();
        for resource in &resources {
            let record = ResourcePolicyRecord {
                resource: resource.clone(),
                policy: policy.clone(),
            };
            self.gate
                .register("resource-policies", record)
                .await
                .map_err(ProvisionError::Iam)?;
            self.resource_policies
                .entry(resource.clone())
                .or_default()
                .push(policy.clone());
        }
        Ok(Physical::new(&self.physical_name(id, 128), []))
    }

    /// Whether the queue's policy lets S3 deliver this bucket's notifications (what S3 checks
    /// when the notification configuration is put).
    fn s3_may_notify(&self, queue_arn: &str, bucket_arn: &str) -> Result<(), String> {
        // No policy on the queue: no statement lets S3 send, and S3 refuses the configuration.
        let policies = self
            .resource_policies
            .get(queue_arn)
            .cloned()
            .unwrap_or_default();
        let statements: Vec<Value> = policies
            .iter()
            .flat_map(|p| iam::policy::statements(p).into_iter().cloned())
            .collect();
        let policy = serde_json::json!({ "Statement": statements });
        let context = std::collections::BTreeMap::from([
            ("aws:SourceArn".to_string(), vec![bucket_arn.to_string()]),
            (
                "aws:SourceAccount".to_string(),
                vec![ACCOUNT_ID.to_string()],
            ),
        ]);
        let decision = iam::policy::evaluate(
            &iam::policy::Principal::Service {
                name: "s3.amazonaws.com".into(),
            },
            &[],
            Some(&policy),
            &iam::policy::Check {
                action: "sqs:SendMessage",
                resource: queue_arn,
                context: &context,
            },
        );
        if decision.allowed() {
            Ok(())
        } else {
            Err(format!(
                "Unable to validate the following destination configurations: the policy of {queue_arn} does not let s3.amazonaws.com send messages for {bucket_arn}"
            ))
        }
    }
}

/// S3's bucket naming rules (general purpose buckets): 3-63 characters of lower-case letters,
/// digits, dots and hyphens, starting and ending with a letter or digit, not an IP address.
pub fn valid_bucket_name(name: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&name.len()) {
        return Err("must be 3 to 63 characters long");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err("may contain only lower-case letters, digits, dots and hyphens");
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) {
        return Err("must begin and end with a letter or digit");
    }
    if name.contains("..") || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("must not contain two adjacent dots or be an IP address");
    }
    Ok(())
}

/// The queue URLs a state machine definition sends to and the message fields it fills with
/// `$$.Task.Token`.
fn service_integrations(definition: &Value) -> (Vec<String>, Vec<String>) {
    let mut urls = Vec::new();
    let mut fields = Vec::new();
    fn walk(value: &Value, urls: &mut Vec<String>, fields: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(url)) = map.get("QueueUrl") {
                    urls.push(url.clone());
                }
                for (key, v) in map {
                    if v == "$$.Task.Token"
                        && let Some(field) = key.strip_suffix(".$")
                    {
                        fields.push(field.to_string());
                    }
                    walk(v, urls, fields);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, urls, fields)),
            _ => {}
        }
    }
    walk(definition, &mut urls, &mut fields);
    urls.sort();
    urls.dedup();
    fields.sort();
    fields.dedup();
    (urls, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_required_property_missing_or_malformed_names_resource_and_property() {
        let props = serde_json::json!({"KeySchema": [{"AttributeName": "id", "KeyType": 1}]});
        let kind = "AWS::DynamoDB::Table";
        assert_eq!(
            required_str("Items", kind, &props, "/KeySchema/0/AttributeName").unwrap(),
            "id"
        );
        let wrong_type = required_str("Items", kind, &props, "/KeySchema/0/KeyType").unwrap_err();
        assert_eq!(
            wrong_type.to_string(),
            "AWS::DynamoDB::Table Items: KeySchema.0.KeyType is required (CloudFormation rejects the template without it)"
        );
        assert!(required_list("Items", kind, &props, "/AttributeDefinitions").is_err());
        assert_eq!(
            required_list("Items", kind, &props, "/KeySchema")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn bucket_names_follow_s3s_rules() {
        assert!(valid_bucket_name("uploads-0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        assert!(valid_bucket_name("MyStack-uploads-123456789012-us-east-1").is_err());
        assert!(valid_bucket_name(&"a".repeat(64)).is_err());
        assert!(valid_bucket_name("-abc").is_err());
        assert!(valid_bucket_name("192.168.1.1").is_err());
    }

    #[test]
    fn definitions_name_their_queues_and_token_fields() {
        let definition = serde_json::json!({"States": {"Ask": {"Parameters": {
            "QueueUrl": "http://q/1/a", "MessageBody": {"taskToken.$": "$$.Task.Token", "x.$": "$.x"}}}}});
        assert_eq!(
            service_integrations(&definition),
            (
                vec!["http://q/1/a".to_string()],
                vec!["taskToken".to_string()]
            )
        );
    }
}
