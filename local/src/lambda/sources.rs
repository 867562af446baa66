//! Event sources, run the way Lambda runs them, configured only by the transformed template's
//! `AWS::Lambda::EventSourceMapping`s, `AWS::Events::Rule`s and `AWS::Pipes::Pipe`s. A mapping
//! reads its source with its function's role (Lambda's pollers act as the execution role), so
//! the gate checks what AWS checks.
//!
//! - SQS mappings: a poller per mapping; batches up to `BatchSize`; on success deletes every
//!   message except the `batchItemFailures` (with `ReportBatchItemFailures`); on a function error
//!   deletes nothing. Redelivery after the queue's visibility timeout and redrive to its DLQ are
//!   the emulator's real SQS behaviour.
//! - DynamoDB stream mappings: a stream reader per mapping; batches up to `BatchSize`; retries from the
//!   first reported failure up to `MaximumRetryAttempts`, then sends the batch's description to
//!   the `OnFailure` destination and moves on (no bisecting: retries start at the failed record).
//! - Rules with a `ScheduleExpression`: `rate(...)` expressions, when `State` is `ENABLED`,
//!   invoking their Lambda targets.
//! - `AWS::Pipes::Pipe`: [`PipeRunner`], its enrichment invoked through the function's process.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde_json::{Value, json};

use crate::cloudformation::provision::{ProvisionError, Stack};
use crate::cloudformation::template::{TemplateError, items};
use crate::cloudwatch::LogSink;
use crate::emulator::{ACCOUNT_ID, REGION, sdk_error};
use crate::lambda::pipes::PipeRunner;
use crate::lambda::runtime::Functions;
use crate::lambda::streams::StreamReader;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Pipe(#[from] crate::lambda::pipes::PipeError),
    #[error("{0}")]
    Config(String),
}

/// The running pollers; dropping this stops them.
pub struct EventSources {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// One line per source, for the start-up summary.
    pub descriptions: Vec<String>,
}

impl Drop for EventSources {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

const LABEL: &str = "event-source";

/// Starts every event source of every function that exists, and every pipe.
pub async fn start(
    stack: &mut Stack,
    functions: Arc<Functions>,
    log: Arc<dyn LogSink>,
) -> Result<EventSources, SourceError> {
    let mut sources = EventSources {
        tasks: Vec::new(),
        descriptions: Vec::new(),
    };
    let template = stack.template.clone();
    for (mapping_id, mapping) in template.resources_of_kind("AWS::Lambda::EventSourceMapping") {
        if stack.resolver.exists(mapping)? {
            sources
                .start_mapping(stack, mapping_id, &mapping.properties, &functions, &log)
                .await?;
        }
    }
    for (rule_id, rule) in template.resources_of_kind("AWS::Events::Rule") {
        if stack.resolver.exists(rule)? {
            sources
                .start_schedule(stack, rule_id, &rule.properties, &functions, &log)
                .await?;
        }
    }
    for (pipe_id, pipe) in template.resources_of_kind("AWS::Pipes::Pipe") {
        if !stack.resolver.exists(pipe)? {
            continue;
        }
        let runner = PipeRunner::from_stack(stack, pipe_id).await?;
        let enrichment = runner
            .enrichment
            .as_deref()
            .and_then(|id| functions.spec(id))
            .map(|spec| format!(" (enrichment: {})", spec.label));
        sources
            .descriptions
            .push(format!("pipe {pipe_id}{}", enrichment.unwrap_or_default())); // none: no suffix
        sources.tasks.push(tokio::spawn(run_pipe(
            runner,
            functions.clone(),
            log.clone(),
            pipe_id.clone(),
        )));
    }
    Ok(sources)
}

impl EventSources {
    /// One `AWS::Lambda::EventSourceMapping`, polled as Lambda polls it, under the function's
    /// role; `EventSourceArn` is required (a mapping of a Kafka or MQ source has none, and is
    /// not run locally).
    async fn start_mapping(
        &mut self,
        stack: &mut Stack,
        mapping_id: &str,
        raw: &Value,
        functions: &Arc<Functions>,
        log: &Arc<dyn LogSink>,
    ) -> Result<(), SourceError> {
        let Some(function_id) = stack.template.invoked_function(&raw["FunctionName"]) else {
            return Err(SourceError::Config(format!(
                "{mapping_id}: FunctionName names no function of the template"
            )));
        };
        let Some(spec) = functions.spec(&function_id) else {
            return Ok(());
        };
        let label = spec.label.clone();
        stack.ensure(&[mapping_id]).await?;
        let props = stack.resolver.resolve(raw)?;
        if props["Enabled"] == false {
            self.descriptions
                .push(format!("{label} <- {mapping_id}: disabled by the template"));
            return Ok(());
        }
        let source_arn = props["EventSourceArn"].as_str().ok_or_else(|| {
            SourceError::Config(format!(
                "{mapping_id}: EventSourceArn is required for the SQS and DynamoDB sources this stack runs"
            ))
        })?;
        let sdk = stack.function_sdk(&function_id).await?;
        let task = if source_arn.starts_with("arn:aws:sqs:") {
            let mapping = SqsMapping::new(stack, &sdk, &function_id, source_arn, &props)?;
            self.descriptions.push(format!(
                "{label} <- SQS {} (batch {})",
                mapping.queue_id, mapping.batch_size
            ));
            tokio::spawn(mapping.run(functions.clone(), log.clone()))
        } else if source_arn.contains(":dynamodb:") && source_arn.contains("/stream/") {
            let mapping = StreamMapping::new(stack, &sdk, &function_id, source_arn, &props).await?;
            self.descriptions.push(format!(
                "{label} <- DynamoDB stream of {} (batch {})",
                mapping.table_id, mapping.batch_size
            ));
            tokio::spawn(mapping.run(functions.clone(), log.clone()))
        } else {
            self.descriptions.push(format!(
                "{label} <- {mapping_id} ({source_arn}): not run locally"
            ));
            return Ok(());
        };
        self.tasks.push(task);
        Ok(())
    }

    /// An `AWS::Events::Rule` with a `rate(...)` schedule, invoking each function target.
    async fn start_schedule(
        &mut self,
        stack: &mut Stack,
        rule_id: &str,
        raw: &Value,
        functions: &Arc<Functions>,
        log: &Arc<dyn LogSink>,
    ) -> Result<(), SourceError> {
        let props = stack.resolver.resolve(&Value::Object(
            raw.as_object()
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k != "Targets")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))?;
        let Some(expression) = props["ScheduleExpression"].as_str().map(str::to_string) else {
            return Ok(());
        };
        // The rule's ARN as provisioned: what the scheduled event's `resources` names.
        stack.ensure(&[rule_id]).await?;
        let rule_arn = stack.attribute(rule_id, "Arn")?;
        // EventBridge's default State is ENABLED (AWS::Events::Rule State).
        let state = props["State"].as_str().unwrap_or("ENABLED");
        for target in raw["Targets"].as_array().into_iter().flatten() {
            let Some(function_id) = stack.template.invoked_function(&target["Arn"]) else {
                continue;
            };
            let Some(spec) = functions.spec(&function_id) else {
                continue;
            };
            let label = spec.label.clone();
            if !state.starts_with("ENABLED") {
                self.descriptions.push(format!(
                    "{label} <- {rule_id} {expression}: {state} in the template"
                ));
                continue;
            }
            let period = rate(&expression).ok_or_else(|| {
                SourceError::Config(format!(
                    "{rule_id}: only rate(...) schedules run locally, not {expression}"
                ))
            })?;
            self.descriptions
                .push(format!("{label} <- {rule_id} {expression}"));
            self.tasks.push(tokio::spawn(schedule(
                functions.clone(),
                log.clone(),
                function_id.clone(),
                rule_arn.clone(),
                period,
            )));
        }
        Ok(())
    }
}

/// `rate(5 minutes)` -> 5 minutes.
pub fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok().filter(|c| *c > 0)?;
    let seconds = match unit.trim().trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count * seconds))
}

struct SqsMapping {
    function_id: String,
    queue_id: String,
    queue_url: String,
    queue_arn: String,
    batch_size: i32,
    report_failures: bool,
    sqs: aws_sdk_sqs::Client,
}

fn reports_item_failures(props: &Value) -> bool {
    props["FunctionResponseTypes"]
        .as_array()
        .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures"))
}

impl SqsMapping {
    fn new(
        stack: &Stack,
        sdk: &aws_config::SdkConfig,
        function_id: &str,
        queue_arn: &str,
        props: &Value,
    ) -> Result<Self, SourceError> {
        let queue_arn = queue_arn.to_string();
        let queue_id = stack.id_with_arn(&queue_arn).ok_or_else(|| {
            SourceError::Config(format!("{queue_arn} is not a provisioned queue"))
        })?;
        Ok(Self {
            function_id: function_id.to_string(),
            queue_url: stack.reference(&queue_id)?,
            queue_id,
            queue_arn,
            // SQS delivers at most 10 messages a receive; larger sizes (with a batching window)
            // are valid on AWS and arrive here 10 at a time.
            batch_size: crate::lambda::batch_size(&props["BatchSize"], 10, 10_000)
                .map_err(SourceError::Config)?
                .min(10) as i32,
            report_failures: reports_item_failures(props),
            sqs: aws_sdk_sqs::Client::new(sdk),
        })
    }

    async fn run(self, functions: Arc<Functions>, log: Arc<dyn LogSink>) {
        // Lambda reads the queue's attributes (visibility timeout, redrive) with the function's
        // role when it starts a mapping; a role without sqs:GetQueueAttributes fails here.
        if let Err(err) = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
            .send()
            .await
        {
            log.line(
                LABEL,
                &format!(
                    "mapping {} -> {} is not usable: {}",
                    self.queue_id,
                    self.function_id,
                    sdk_error(err)
                ),
            );
            return;
        }
        loop {
            let Some(messages) = self.receive(log.as_ref()).await else {
                continue;
            };
            let Some(failed) = self.invoke(&functions, &messages, log.as_ref()).await else {
                continue;
            };
            self.delete_processed(&messages, &failed, log.as_ref())
                .await;
        }
    }

    /// One long poll (1 s); `None` when nothing came or the receive failed (said in the log).
    async fn receive(&self, log: &dyn LogSink) -> Option<Vec<aws_sdk_sqs::types::Message>> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        match received {
            // No Messages in the answer: the queue was empty for the whole poll.
            Ok(out) => out.messages.filter(|m| !m.is_empty()),
            Err(err) => {
                log.line(
                    LABEL,
                    &format!(
                        "receiving from {} failed: {}",
                        self.queue_id,
                        sdk_error(err)
                    ),
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
                None
            }
        }
    }

    /// The batch through the function: the ids it reported failed (`ReportBatchItemFailures`),
    /// or `None` when the invocation failed and the whole batch returns to the queue when its
    /// visibility timeout ends.
    async fn invoke(
        &self,
        functions: &Functions,
        messages: &[aws_sdk_sqs::types::Message],
        log: &dyn LogSink,
    ) -> Option<Vec<String>> {
        let event = crate::lambda::queues::to_lambda_event(messages, &self.queue_arn);
        let event = serde_json::to_value(&event).expect("SQS events serialise");
        match functions.invoke(&self.function_id, &event).await {
            Ok(response) if self.report_failures => Some(
                items(&response["batchItemFailures"])
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_string))
                    .collect(),
            ),
            Ok(_) => Some(Vec::new()),
            Err(err) => {
                log.line(
                    LABEL,
                    &format!(
                        "{} batch from {} failed: {err}",
                        messages.len(),
                        self.queue_id
                    ),
                );
                None
            }
        }
    }

    /// Deletes what the function processed; what it reported failed returns after the
    /// visibility timeout.
    async fn delete_processed(
        &self,
        messages: &[aws_sdk_sqs::types::Message],
        failed: &[String],
        log: &dyn LogSink,
    ) {
        let done: Vec<DeleteMessageBatchRequestEntry> = messages
            .iter()
            .filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id()))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle()?)
                    .build()
                    .ok()
            })
            .collect();
        if !failed.is_empty() {
            log.line(
                LABEL,
                &format!(
                    "{} of {} messages from {} reported as failed; they return after the visibility timeout",
                    failed.len(),
                    messages.len(),
                    self.queue_id
                ),
            );
        }
        if done.is_empty() {
            return;
        }
        if let Err(err) = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(done))
            .send()
            .await
        {
            log.line(
                LABEL,
                &format!(
                    "deleting processed messages from {} failed: {}",
                    self.queue_id,
                    sdk_error(err)
                ),
            );
        }
    }
}

struct StreamMapping {
    function_id: String,
    function_arn: String,
    table_id: String,
    stream_arn: String,
    reader: StreamReader,
    batch_size: usize,
    /// `None`: retry until the records expire (Lambda's -1).
    max_retries: Option<u64>,
    report_failures: bool,
    on_failure_url: Option<String>,
    sqs: aws_sdk_sqs::Client,
}

impl StreamMapping {
    async fn new(
        stack: &Stack,
        sdk: &aws_config::SdkConfig,
        function_id: &str,
        stream_arn: &str,
        props: &Value,
    ) -> Result<Self, SourceError> {
        let stream_arn = stream_arn.to_string();
        let table_id = stack
            .id_with_attribute("StreamArn", &stream_arn)
            .ok_or_else(|| {
                SourceError::Config(format!("{stream_arn} is not a provisioned stream"))
            })?;
        let start = crate::lambda::streams::starting_position(&props["StartingPosition"])
            .map_err(|e| SourceError::Config(format!("{function_id}'s mapping: {e}")))?;
        let on_failure_url = props
            .pointer("/DestinationConfig/OnFailure/Destination")
            .and_then(Value::as_str)
            .map(|arn| {
                let id = stack
                    .id_with_arn(arn)
                    .ok_or_else(|| SourceError::Config(format!("{arn} is not provisioned")))?;
                Ok::<_, SourceError>(stack.reference(&id)?)
            })
            .transpose()?;
        let mut reader = StreamReader::new(sdk, stream_arn.clone(), start);
        // Opening the shards now pins LATEST to "from here on".
        reader
            .poll()
            .await
            .map_err(|e| SourceError::Config(e.to_string()))?;
        Ok(Self {
            function_id: function_id.to_string(),
            function_arn: stack.attribute(function_id, "Arn")?,
            table_id,
            stream_arn,
            reader,
            batch_size: crate::lambda::batch_size(&props["BatchSize"], 100, 10_000)
                .map_err(SourceError::Config)?,
            max_retries: props["MaximumRetryAttempts"]
                .as_i64()
                .and_then(|n| u64::try_from(n).ok()),
            report_failures: reports_item_failures(props),
            on_failure_url,
            sqs: aws_sdk_sqs::Client::new(sdk),
        })
    }

    async fn run(mut self, functions: Arc<Functions>, log: Arc<dyn LogSink>) {
        loop {
            match self.reader.poll().await {
                Ok(records) => {
                    let records: Vec<Value> = records
                        .iter()
                        .filter_map(|r| serde_json::to_value(r).ok())
                        .collect();
                    for batch in records.chunks(self.batch_size) {
                        self.deliver(batch.to_vec(), &functions, &log).await;
                    }
                }
                Err(err) => log.line(
                    LABEL,
                    &format!("reading the {} stream failed: {err}", self.table_id),
                ),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Delivers one batch, retrying from the first failed record.
    async fn deliver(
        &self,
        mut records: Vec<Value>,
        functions: &Functions,
        log: &Arc<dyn LogSink>,
    ) {
        let mut attempts = 0u64;
        loop {
            let outcome = functions
                .invoke(&self.function_id, &json!({"Records": records}))
                .await;
            let first_failed = match &outcome {
                Ok(response) if self.report_failures => items(&response["batchItemFailures"])
                    .iter()
                    .filter_map(|f| f["itemIdentifier"].as_str())
                    .filter_map(|sequence| {
                        records.iter().position(|r| {
                            r.pointer("/dynamodb/SequenceNumber")
                                .and_then(Value::as_str)
                                == Some(sequence)
                        })
                    })
                    .min(),
                Ok(_) => None,
                Err(_) => Some(0),
            };
            let Some(first_failed) = first_failed else {
                return;
            };
            records.drain(..first_failed);
            attempts += 1;
            let detail = match &outcome {
                Err(err) => err.to_string(),
                Ok(_) => "records reported as failed".to_string(),
            };
            if self.max_retries.is_some_and(|max| attempts > max) {
                log.line(
                    LABEL,
                    &format!(
                        "{} records of the {} stream failed {attempts} times ({detail}); sent to the on-failure destination",
                        records.len(),
                        self.table_id
                    ),
                );
                self.send_to_destination(&records, attempts, &detail).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(200 * attempts.min(10))).await;
        }
    }

    /// What Lambda sends to an on-failure destination for a stream batch: where the records are,
    /// not the records.
    async fn send_to_destination(&self, records: &[Value], attempts: u64, detail: &str) {
        let Some(url) = &self.on_failure_url else {
            return;
        };
        let sequence = |r: Option<&Value>| {
            r.and_then(|r| r.pointer("/dynamodb/SequenceNumber"))
                .cloned()
        };
        let body = json!({
            "requestContext": {
                "requestId": uuid::Uuid::new_v4().to_string(),
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": detail},
            "version": "1.0",
            "timestamp": crate::lambda::now_rfc3339(),
            "DDBStreamBatchInfo": {
                "startSequenceNumber": sequence(records.first()),
                "endSequenceNumber": sequence(records.last()),
                "batchSize": records.len(),
                "streamArn": self.stream_arn,
            },
        });
        // Retried until SQS takes it: it is the batch's only trace.
        for attempt in 1..=20u64 {
            let sent = self
                .sqs
                .send_message()
                .queue_url(url)
                .message_body(body.to_string())
                .send()
                .await;
            if sent.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
        }
    }
}

async fn schedule(
    functions: Arc<Functions>,
    log: Arc<dyn LogSink>,
    function_id: String,
    rule_arn: String,
    period: Duration,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.tick().await; // the first tick is immediate; EventBridge waits one period
    loop {
        ticks.tick().await;
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": crate::lambda::now_rfc3339(),
            "region": REGION,
            "resources": [rule_arn],
            "detail": {},
        });
        if let Err(err) = functions.invoke(&function_id, &event).await {
            log.line(LABEL, &format!("scheduled invocation failed: {err}"));
        }
    }
}

async fn run_pipe(
    mut runner: PipeRunner,
    functions: Arc<Functions>,
    log: Arc<dyn LogSink>,
    pipe_id: String,
) {
    // Without an enrichment the name is unused: the batch goes to the target as it is.
    let enrichment = runner.enrichment.clone().unwrap_or_default();
    loop {
        let enrich = |batch: Value| {
            let functions = functions.clone();
            let enrichment = enrichment.clone();
            async move {
                functions
                    .invoke(&enrichment, &batch)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        match runner.run_once(enrich).await {
            Ok(stats) if stats.failed_batches > 0 => log.line(
                LABEL,
                &format!(
                    "pipe {pipe_id}: {} batches failed and went to its DLQ",
                    stats.failed_batches
                ),
            ),
            Ok(_) => {}
            Err(err) => log.line(LABEL, &format!("pipe {pipe_id}: {err}")),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_expressions() {
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        assert_eq!(rate("rate(0 minutes)"), None);
        assert_eq!(rate("cron(0 12 * * ? *)"), None);
    }
}
