//! Creates the template's resources in the emulator, under a name prefix so that parallel tests
//! (and a dev stack beside them) never share a table, queue, topic or bucket.
//!
//! Only what the template says is created: key schemas, indexes, streams, TTL, queue attributes
//! and redrive policies are read from the resource properties, never restated here.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types as ddb;
use serde_json::Value;

use crate::emulator::{ACCOUNT_ID, REGION};
use crate::template::{Physical, Resolver, Template, TemplateError};

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
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn create_err(id: &str, kind: &str, err: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Create {
        id: id.into(),
        kind: kind.into(),
        detail: err.to_string(),
    }
}

impl Stack {
    pub fn new(template: Arc<Template>, sdk: SdkConfig, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
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
        }
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

    /// Provisions everything the value (e.g. an event's properties) refers to.
    pub async fn ensure_referenced(&mut self, value: &Value) -> Result<(), ProvisionError> {
        let ids: Vec<String> = self.template.references(value).into_iter().collect();
        self.ensure(&ids.iter().map(String::as_str).collect::<Vec<_>>())
            .await
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
        for dep in self.template.references(&resource.properties) {
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
            .filter_map(|(k, v)| scalar(v).map(|v| (k.clone(), v)))
            .collect())
    }

    fn physical_name(&self, id: &str, max: usize) -> String {
        let mut name = format!("{}-{}", self.prefix, id);
        name.truncate(max);
        name
    }

    async fn create(&self, id: &str) -> Result<Physical, ProvisionError> {
        let resource = self.template.resource(id)?;
        let props = self.resolver.resolve(&resource.properties)?;
        let kind = resource.kind.as_str();
        match kind {
            "AWS::DynamoDB::Table" => self.create_table(id, &props).await,
            "AWS::SQS::Queue" => self.create_queue(id, &props).await,
            "AWS::SNS::Topic" => self.create_topic(id).await,
            "AWS::S3::Bucket" => self.create_bucket(id, &props).await,
            "AWS::SES::EmailIdentity" => self.create_email_identity(id, &props).await,
            "AWS::StepFunctions::Activity" => self.create_activity(id).await,
            "AWS::Serverless::StateMachine" => self.create_state_machine(id, &props).await,
            // Policies and APIs have no emulator counterpart that changes behaviour; they resolve
            // to a stable local name so environments that mention them still resolve.
            "AWS::SQS::QueuePolicy" | "AWS::S3::BucketPolicy" | "AWS::SNS::TopicPolicy" => {
                Ok(Physical {
                    reference: self.physical_name(id, 128),
                    attributes: HashMap::new(),
                })
            }
            // Run by this crate (pipes) or not needed to run functions (roles, log groups).
            "AWS::Pipes::Pipe" | "AWS::IAM::Role" | "AWS::Logs::LogGroup" => {
                let name = self.physical_name(id, 64);
                let arn = format!(
                    "arn:aws:local:{REGION}:{ACCOUNT_ID}:{}/{name}",
                    kind.rsplit("::")
                        .next()
                        .unwrap_or("resource")
                        .to_ascii_lowercase()
                );
                Ok(Physical {
                    reference: name,
                    attributes: HashMap::from([("Arn".into(), arn)]),
                })
            }
            // Functions run as processes or in-process handlers; the template's ARN still resolves.
            "AWS::Serverless::Function" => {
                let name = self.physical_name(id, 64);
                let arn = format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}");
                Ok(Physical {
                    reference: name,
                    attributes: HashMap::from([("Arn".into(), arn)]),
                })
            }
            "AWS::Serverless::Api" | "AWS::ApiGateway::RestApi" | "AWS::ApiGatewayV2::Api" => {
                let api_id = format!("{}{}", self.prefix, id.to_ascii_lowercase())
                    .chars()
                    .take(10)
                    .collect::<String>();
                Ok(Physical {
                    reference: api_id.clone(),
                    attributes: HashMap::from([("ApiId".into(), api_id)]),
                })
            }
            _ => Err(ProvisionError::Unsupported {
                id: id.into(),
                kind: kind.into(),
            }),
        }
        .inspect(|_| tracing::debug!(%id, %kind, "provisioned"))
    }

    async fn create_table(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        let kind = "AWS::DynamoDB::Table";
        let bad = |what: &str| create_err(id, kind, format!("invalid {what}"));
        let name = props
            .get("TableName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.physical_name(id, 255));
        let key_schema = |list: &Value| -> Result<Vec<ddb::KeySchemaElement>, ProvisionError> {
            list.as_array()
                .ok_or_else(|| bad("KeySchema"))?
                .iter()
                .map(|k| {
                    ddb::KeySchemaElement::builder()
                        .attribute_name(k["AttributeName"].as_str().unwrap_or_default())
                        .key_type(ddb::KeyType::from(
                            k["KeyType"].as_str().unwrap_or_default(),
                        ))
                        .build()
                        .map_err(|e| create_err(id, kind, e))
                })
                .collect()
        };
        let mut request = aws_sdk_dynamodb::Client::new(&self.sdk)
            .create_table()
            .table_name(&name)
            .billing_mode(ddb::BillingMode::PayPerRequest)
            .set_key_schema(Some(key_schema(&props["KeySchema"])?));
        for attr in props["AttributeDefinitions"]
            .as_array()
            .ok_or_else(|| bad("AttributeDefinitions"))?
        {
            request = request.attribute_definitions(
                ddb::AttributeDefinition::builder()
                    .attribute_name(attr["AttributeName"].as_str().unwrap_or_default())
                    .attribute_type(ddb::ScalarAttributeType::from(
                        attr["AttributeType"].as_str().unwrap_or_default(),
                    ))
                    .build()
                    .map_err(|e| create_err(id, kind, e))?,
            );
        }
        for index in props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let projection = &index["Projection"];
            let non_key: Option<Vec<String>> = projection
                .get("NonKeyAttributes")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                });
            request = request.global_secondary_indexes(
                ddb::GlobalSecondaryIndex::builder()
                    .index_name(index["IndexName"].as_str().unwrap_or_default())
                    .set_key_schema(Some(key_schema(&index["KeySchema"])?))
                    .projection(
                        ddb::Projection::builder()
                            .projection_type(ddb::ProjectionType::from(
                                projection["ProjectionType"].as_str().unwrap_or("ALL"),
                            ))
                            .set_non_key_attributes(non_key)
                            .build(),
                    )
                    .build()
                    .map_err(|e| create_err(id, kind, e))?,
            );
        }
        if let Some(view) = props
            .pointer("/StreamSpecification/StreamViewType")
            .and_then(Value::as_str)
        {
            request = request.stream_specification(
                ddb::StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(ddb::StreamViewType::from(view))
                    .build()
                    .map_err(|e| create_err(id, kind, e))?,
            );
        }
        let client = aws_sdk_dynamodb::Client::new(&self.sdk);
        let out = request
            .send()
            .await
            .map_err(|e| create_err(id, kind, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if let Some(ttl) = props
            .get("TimeToLiveSpecification")
            .filter(|t| t["Enabled"].as_bool() == Some(true))
        {
            client
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    ddb::TimeToLiveSpecification::builder()
                        .attribute_name(ttl["AttributeName"].as_str().unwrap_or_default())
                        .enabled(true)
                        .build()
                        .map_err(|e| create_err(id, kind, e))?,
                )
                .send()
                .await
                .map_err(|e| {
                    create_err(id, kind, aws_sdk_dynamodb::error::DisplayErrorContext(e))
                })?;
        }
        let description = out
            .table_description
            .unwrap_or_else(|| ddb::TableDescription::builder().build());
        let mut attributes = HashMap::from([(
            "Arn".to_string(),
            description.table_arn.clone().unwrap_or_default(),
        )]);
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
            .map_err(|e| create_err(id, kind, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let url = out.queue_url.unwrap_or_default();
        let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}");
        Ok(Physical {
            reference: url.clone(),
            attributes: HashMap::from([
                ("Arn".into(), arn),
                ("QueueName".into(), name),
                ("QueueUrl".into(), url),
            ]),
        })
    }

    async fn create_topic(&self, id: &str) -> Result<Physical, ProvisionError> {
        let name = self.physical_name(id, 256);
        let out = aws_sdk_sns::Client::new(&self.sdk)
            .create_topic()
            .name(&name)
            .send()
            .await
            .map_err(|e| {
                create_err(
                    id,
                    "AWS::SNS::Topic",
                    aws_sdk_sns::error::DisplayErrorContext(e),
                )
            })?;
        let arn = out.topic_arn.unwrap_or_default();
        Ok(Physical {
            reference: arn.clone(),
            attributes: HashMap::from([("TopicArn".into(), arn), ("TopicName".into(), name)]),
        })
    }

    async fn create_bucket(&self, id: &str, props: &Value) -> Result<Physical, ProvisionError> {
        let kind = "AWS::S3::Bucket";
        let name = props
            .get("BucketName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| self.physical_name(id, 63))
            .to_ascii_lowercase();
        let s3 = aws_sdk_s3::Client::new(&self.sdk);
        s3.create_bucket()
            .bucket(&name)
            .send()
            .await
            .map_err(|e| create_err(id, kind, aws_sdk_s3::error::DisplayErrorContext(e)))?;
        if let Some(queues) = props
            .pointer("/NotificationConfiguration/QueueConfigurations")
            .and_then(Value::as_array)
        {
            use aws_sdk_s3::types::{
                Event, FilterRule, FilterRuleName, NotificationConfiguration,
                NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
            };
            let mut config = NotificationConfiguration::builder();
            for queue in queues {
                let rules = queue
                    .pointer("/Filter/S3Key/Rules")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        FilterRule::builder()
                            .name(FilterRuleName::from(r["Name"].as_str().unwrap_or_default()))
                            .value(r["Value"].as_str().unwrap_or_default())
                            .build()
                    })
                    .collect::<Vec<_>>();
                let mut target = QueueConfiguration::builder()
                    .queue_arn(queue["Queue"].as_str().unwrap_or_default())
                    .events(Event::from(queue["Event"].as_str().unwrap_or_default()));
                if !rules.is_empty() {
                    target = target.filter(
                        NotificationConfigurationFilter::builder()
                            .key(S3KeyFilter::builder().set_filter_rules(Some(rules)).build())
                            .build(),
                    );
                }
                config = config
                    .queue_configurations(target.build().map_err(|e| create_err(id, kind, e))?);
            }
            s3.put_bucket_notification_configuration()
                .bucket(&name)
                .notification_configuration(config.build())
                .send()
                .await
                .map_err(|e| create_err(id, kind, aws_sdk_s3::error::DisplayErrorContext(e)))?;
        }
        Ok(Physical {
            reference: name.clone(),
            attributes: HashMap::from([
                ("Arn".into(), format!("arn:aws:s3:::{name}")),
                ("DomainName".into(), format!("{name}.s3.amazonaws.com")),
                (
                    "RegionalDomainName".into(),
                    format!("{name}.s3.{REGION}.amazonaws.com"),
                ),
            ]),
        })
    }

    async fn create_email_identity(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let identity = props["EmailIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        aws_sdk_sesv2::Client::new(&self.sdk)
            .create_email_identity()
            .email_identity(&identity)
            .send()
            .await
            .map_err(|e| {
                create_err(
                    id,
                    "AWS::SES::EmailIdentity",
                    aws_sdk_sesv2::error::DisplayErrorContext(e),
                )
            })?;
        Ok(Physical {
            reference: identity,
            attributes: HashMap::new(),
        })
    }

    async fn create_activity(&self, id: &str) -> Result<Physical, ProvisionError> {
        let name = self.physical_name(id, 80);
        let out = aws_sdk_sfn::Client::new(&self.sdk)
            .create_activity()
            .name(&name)
            .send()
            .await
            .map_err(|e| {
                create_err(
                    id,
                    "AWS::StepFunctions::Activity",
                    aws_sdk_sfn::error::DisplayErrorContext(e),
                )
            })?;
        Ok(Physical {
            reference: out.activity_arn.clone(),
            attributes: HashMap::from([("Name".into(), name)]),
        })
    }

    /// `DefinitionUri` is read from the repository and `DefinitionSubstitutions` applied, as
    /// `sam deploy` does.
    async fn create_state_machine(
        &self,
        id: &str,
        props: &Value,
    ) -> Result<Physical, ProvisionError> {
        let kind = "AWS::Serverless::StateMachine";
        let uri = props["DefinitionUri"]
            .as_str()
            .ok_or_else(|| create_err(id, kind, "only DefinitionUri (a file) is supported"))?;
        let path = crate::template::project_template_path()
            .parent()
            .map(|p| p.join(uri))
            .unwrap_or_default();
        let mut definition = std::fs::read_to_string(&path)
            .map_err(|e| create_err(id, kind, format!("{}: {e}", path.display())))?;
        for (name, value) in props
            .get("DefinitionSubstitutions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            definition =
                definition.replace(&format!("${{{name}}}"), &scalar(value).unwrap_or_default());
        }
        let name = self.physical_name(id, 80);
        let out = aws_sdk_sfn::Client::new(&self.sdk)
            .create_state_machine()
            .name(&name)
            .definition(definition)
            .role_arn(format!("arn:aws:iam::{ACCOUNT_ID}:role/{name}"))
            .send()
            .await
            .map_err(|e| create_err(id, kind, aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        Ok(Physical {
            reference: out.state_machine_arn.clone(),
            attributes: HashMap::from([
                ("Name".into(), name),
                ("Arn".into(), out.state_machine_arn),
            ]),
        })
    }
}
