//! EventBridge Pipes, run locally: the emulator accepts Pipe resources but never runs them.
//!
//! [`PipeRunner`] is configured only from the template's `AWS::Pipes::Pipe`: the source stream,
//! its filter patterns, batch size and dead-letter queue, the enrichment function and the target
//! queue. It reads the real stream, keeps what the filters match, calls the enrichment with each
//! batch (a JSON array) and sends every element it returns to the target as one message.
//! Differences from AWS, kept small on purpose: a failed batch goes to the source's dead-letter
//! queue at once (no retries or bisecting), and only SQS targets are supported.

use std::future::Future;

use serde_json::Value;

use crate::cloudformation::provision::{ProvisionError, Stack};
use crate::cloudformation::template::TemplateError;
use crate::emulator::sdk_error;
use crate::lambda::streams::{StreamError, StreamReader};

/// Whether an event matches an EventBridge event pattern (exact values, `prefix`, `exists`,
/// `anything-but`; nested objects; arrays in the event match if any element does).
pub fn matches(pattern: &Value, event: &Value) -> bool {
    let Value::Object(fields) = pattern else {
        return false;
    };
    fields.iter().all(|(key, rule)| {
        let field = event.get(key);
        match rule {
            Value::Object(_) => field.is_some_and(|f| matches(rule, f)),
            Value::Array(alternatives) => alternatives.iter().any(|alt| rule_matches(alt, field)),
            _ => false,
        }
    })
}

fn rule_matches(rule: &Value, field: Option<&Value>) -> bool {
    let values: Vec<&Value> = match field {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(value) => vec![value],
        None => Vec::new(),
    };
    match rule {
        Value::Object(op) => {
            if let Some(exists) = op.get("exists").and_then(Value::as_bool) {
                return field.is_some() == exists;
            }
            if let Some(prefix) = op.get("prefix").and_then(Value::as_str) {
                return values
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.starts_with(prefix)));
            }
            if let Some(excluded) = op.get("anything-but") {
                let excluded: Vec<&Value> = match excluded {
                    Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                return !values.is_empty() && values.iter().all(|v| !excluded.contains(v));
            }
            false
        }
        exact => values.contains(&exact),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("pipe {0}")]
    Config(String),
    #[error("sending to {queue} failed: {detail}")]
    Send { queue: String, detail: String },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PipeStats {
    pub read: usize,
    pub filtered_out: usize,
    pub delivered: usize,
    pub failed_batches: usize,
}

pub struct PipeRunner {
    pipe_arn: String,
    stream_arn: String,
    /// `MaximumRetryAttempts` of the source (retries after the first attempt).
    max_retries: u64,
    reader: StreamReader,
    filters: Vec<Value>,
    batch_size: usize,
    target_url: String,
    dead_letter_url: Option<String>,
    /// The enrichment function's logical id, when the pipe has one.
    pub enrichment: Option<String>,
    /// The pipe role's `lambda:InvokeFunction` on the enrichment, asked of the IAM gate.
    invoke_check: Option<(crate::iam::GateClient, crate::iam::AuthorizeRequest)>,
    sqs: aws_sdk_sqs::Client,
}

/// The source's filter patterns (`FilterCriteria.Filters[].Pattern`, each required: a filter
/// without one would match every record, and AWS names no default).
fn filter_patterns(params: &Value) -> Result<Vec<Value>, PipeError> {
    params
        .pointer("/FilterCriteria/Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let pattern = f["Pattern"].as_str().ok_or_else(|| {
                PipeError::Config("a FilterCriteria filter has no Pattern".into())
            })?;
            serde_json::from_str(pattern)
                .map_err(|e| PipeError::Config(format!("bad filter pattern: {e}")))
        })
        .collect()
}

impl PipeRunner {
    /// Provisions the pipe's resources and opens its source at the template's starting position.
    pub async fn from_stack(stack: &mut Stack, pipe_id: &str) -> Result<Self, PipeError> {
        stack.ensure(&[pipe_id]).await?;
        let props = stack
            .resolver
            .resolve(&stack.template.resource(pipe_id)?.properties)?;
        let stream = props["Source"]
            .as_str()
            .ok_or_else(|| PipeError::Config("has no Source stream".into()))?;
        let params = &props["SourceParameters"];
        let stream_params = &params["DynamoDBStreamParameters"];
        let start = crate::lambda::streams::starting_position(&stream_params["StartingPosition"])
            .map_err(PipeError::Config)?;
        let filters = filter_patterns(params)?;
        let queue_url = |arn: &str| -> Result<String, PipeError> {
            let id = stack.id_with_arn(arn).ok_or_else(|| {
                PipeError::Config(format!("target {arn} is not a provisioned queue"))
            })?;
            Ok(stack.reference(&id)?)
        };
        let target = props["Target"]
            .as_str()
            .ok_or_else(|| PipeError::Config("Target is required (AWS::Pipes::Pipe)".into()))?;
        let target_url = queue_url(target)?;
        let dead_letter_url = stream_params
            .pointer("/DeadLetterConfig/Arn")
            .and_then(Value::as_str)
            .map(queue_url)
            .transpose()?;
        let enrichment_arn = props["Enrichment"].as_str();
        // The enrichment may be the function or its alias: the function behind either runs.
        let enrichment = enrichment_arn
            .and_then(|arn| stack.id_with_arn(arn))
            .and_then(|id| stack.template.function_behind(&id));
        // The pipe reads, invokes and sends as its role.
        let role = stack.role_of(pipe_id)?;
        let sdk = stack.role_sdk(&role);
        let invoke_check = enrichment_arn.map(|arn| {
            (
                stack.gate.clone(),
                crate::iam::AuthorizeRequest {
                    access_key_id: stack.access_key(&role),
                    action: "lambda:InvokeFunction".into(),
                    resource: arn.to_string(),
                },
            )
        });
        let max_retries = stream_params["MaximumRetryAttempts"]
            .as_i64()
            .and_then(|n| u64::try_from(n).ok())
            // -1 (the default) retries until the records expire; a day of local retries is
            // the same thing here.
            .unwrap_or(u64::MAX);
        let pipe_arn = stack.attribute(pipe_id, "Arn")?;
        let stream_arn = stream.to_string();
        let mut reader = StreamReader::new(&sdk, stream, start);
        // Opening the shards now pins LATEST to "from here on".
        reader.poll().await?;
        Ok(Self {
            pipe_arn,
            stream_arn,
            max_retries,
            reader,
            filters,
            batch_size: crate::lambda::batch_size(&stream_params["BatchSize"], 100, 10_000)
                .map_err(PipeError::Config)?,
            target_url,
            dead_letter_url,
            enrichment,
            invoke_check,
            sqs: aws_sdk_sqs::Client::new(&sdk),
        })
    }

    /// Moves everything new on the stream through the pipe once. `enrich` gets each batch as a
    /// JSON array and returns the documents for the target (or an error for the whole batch).
    pub async fn run_once<F, Fut>(&mut self, enrich: F) -> Result<PipeStats, PipeError>
    where
        F: Fn(Value) -> Fut,
        Fut: Future<Output = Result<Value, String>>,
    {
        let records = self.reader.poll().await?;
        let mut stats = PipeStats {
            read: records.len(),
            ..PipeStats::default()
        };
        let mut selected = Vec::new();
        for record in records {
            let json =
                serde_json::to_value(&record).map_err(|e| PipeError::Config(e.to_string()))?;
            if self.filters.is_empty() || self.filters.iter().any(|f| matches(f, &json)) {
                selected.push(json);
            } else {
                stats.filtered_out += 1;
            }
        }
        for batch in selected.chunks(self.batch_size) {
            let input = Value::Array(batch.to_vec());
            // An enrichment failure fails the whole batch (Pipes supports no partial batch
            // failure for enrichments); it is retried up to MaximumRetryAttempts, then only
            // where the batch was goes to the dead-letter queue.
            // A failed target send fails the batch the same way (at least once: documents sent
            // before the failure are sent again).
            let mut attempts = 0;
            let outcome = loop {
                attempts += 1;
                let result = match self.enrich_once(&input, &enrich).await {
                    Ok(output) => self.deliver(output).await,
                    Err(reason) => Err(reason),
                };
                match result {
                    Ok(delivered) => break Ok(delivered),
                    Err(reason) if attempts > self.max_retries => break Err(reason),
                    Err(reason) => {
                        tracing::warn!(%reason, attempts, "pipe batch failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(50 * attempts.min(20)))
                            .await;
                    }
                }
            };
            match outcome {
                Ok(delivered) => stats.delivered += delivered,
                Err(reason) => {
                    stats.failed_batches += 1;
                    if let Some(dlq) = &self.dead_letter_url {
                        let message = self.dead_letter_message(batch, attempts, &reason);
                        // The DLQ send is retried until it is taken: the batch's only trace.
                        let mut tries = 0;
                        while let Err(err) = self.send(dlq, &message).await {
                            tries += 1;
                            if tries >= 20 {
                                return Err(err);
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(100 * tries)).await;
                        }
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Sends the enrichment's documents to the target; the count sent.
    async fn deliver(&self, output: Value) -> Result<usize, String> {
        let documents = match output {
            Value::Array(documents) => documents,
            document => vec![document],
        };
        for document in &documents {
            self.send(&self.target_url, document)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(documents.len())
    }

    async fn enrich_once<F, Fut>(&self, input: &Value, enrich: &F) -> Result<Value, String>
    where
        F: Fn(Value) -> Fut,
        Fut: Future<Output = Result<Value, String>>,
    {
        if self.enrichment.is_none() {
            return Ok(input.clone());
        }
        if let Some((gate, question)) = &self.invoke_check {
            // The pipe invokes its enrichment as its role.
            let answer = gate.authorize(question).await?;
            if !answer.allowed {
                return Err(format!("AccessDeniedException: {}", answer.message));
            }
        }
        enrich(input.clone()).await
    }

    /// What the dead-letter queue gets for a stream batch: where it was, not the records (as
    /// for Lambda's stream sources); the records stay readable in the table.
    fn dead_letter_message(&self, batch: &[Value], attempts: u64, reason: &str) -> Value {
        let sequence = |r: Option<&Value>| {
            r.and_then(|r| r.pointer("/dynamodb/SequenceNumber"))
                .cloned()
        };
        serde_json::json!({
            "context": {
                "pipeArn": self.pipe_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
                "errorMessage": reason,
            },
            "version": "1.0",
            "timestamp": crate::lambda::now_rfc3339(),
            "DDBStreamBatchInfo": {
                "startSequenceNumber": sequence(batch.first()),
                "endSequenceNumber": sequence(batch.last()),
                "batchSize": batch.len(),
                "streamArn": self.stream_arn,
            },
        })
    }

    async fn send(&self, queue_url: &str, document: &Value) -> Result<(), PipeError> {
        self.sqs
            .send_message()
            .queue_url(queue_url)
            .message_body(document.to_string())
            .send()
            .await
            .map_err(|e| PipeError::Send {
                queue: queue_url.into(),
                detail: sdk_error(e),
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_patterns() {
        let insert = json!({"eventName": "INSERT", "dynamodb": {"Keys": {"id": {"S": "a"}}}, "tags": ["x", "y"]});
        assert!(matches(&json!({"eventName": ["INSERT"]}), &insert));
        assert!(!matches(
            &json!({"eventName": ["MODIFY", "REMOVE"]}),
            &insert
        ));
        assert!(matches(&json!({"eventName": [{"prefix": "INS"}]}), &insert));
        assert!(matches(
            &json!({"dynamodb": {"Keys": {"id": {"S": ["a"]}}}}),
            &insert
        ));
        assert!(matches(&json!({"tags": ["y"]}), &insert));
        assert!(matches(&json!({"missing": [{"exists": false}]}), &insert));
        assert!(!matches(
            &json!({"eventName": [{"exists": false}]}),
            &insert
        ));
        assert!(matches(
            &json!({"eventName": [{"anything-but": ["REMOVE"]}]}),
            &insert
        ));
        assert!(!matches(
            &json!({"eventName": [{"anything-but": "INSERT"}]}),
            &insert
        ));
        assert!(!matches(&json!({"absent": ["x"]}), &insert));
    }
}
