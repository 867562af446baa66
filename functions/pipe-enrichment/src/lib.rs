//! `pipe-enrichment`: the EventBridge Pipe's enrichment step.
//!
//! Input: the whole batch of DynamoDB stream records the pipe passes (INSERTs, after the pipe's
//! filter). Output: one plain JSON appointment per record, in order, with `preferredMethod` from
//! the contacts table (`none` when unknown); the pipe sends each to the target queue.
//! A malformed record fails the invocation (see [`shared::appointments::enrich`]).

use serde_json::Value;
use shared::appointments::{self, AppointmentsRepo, EnrichError, EnrichedAppointment};
use shared::config::{self, ConfigError, EnvSource};

#[derive(Debug, Clone)]
pub struct Enricher {
    repo: AppointmentsRepo,
}

impl Enricher {
    /// Reads `CONTACTS_TABLE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            repo: AppointmentsRepo::new(
                aws_sdk_dynamodb::Client::new(sdk),
                None,
                config::required(env, "CONTACTS_TABLE")?,
            ),
        })
    }

    /// Pipes send a JSON array of records; a single object is treated as a batch of one.
    pub async fn handle(&self, payload: Value) -> Result<Vec<EnrichedAppointment>, EnrichError> {
        let records = match payload {
            Value::Array(records) => records,
            other => vec![other],
        };
        let enriched = appointments::enrich(&self.repo, &records).await;
        match &enriched {
            Ok(out) => tracing::info!(records = out.len(), "batch enriched"),
            Err(err) => {
                tracing::error!(error = %err, "batch failed; the pipe will retry and bisect it")
            }
        }
        enriched
    }
}
