//! `pipe-enrichment`: the EventBridge Pipe's enrichment step.
//!
//! Input: the whole batch of DynamoDB stream records the pipe passes (INSERTs, after the pipe's
//! filter). Output: one plain JSON appointment per well-formed record, in order, with
//! `preferredMethod` from the contacts table (`none` when unknown); the pipe sends each to the
//! target queue. Pipes cannot take a partial failure from an enrichment, so a malformed record
//! is not an error: it goes, with the reason, to `REJECTED_RECORDS_QUEUE_URL` (a queue a person
//! watches) and the rest of the batch goes on. Only a failure to read the contacts or to keep a
//! rejected record fails the batch, which the pipe then retries.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use serde_json::Value;
use shared::appointments::{
    self, AppointmentsRepo, ContactMethod, EnrichError, EnrichedAppointment, RejectedRecord,
};
use shared::config::{self, ConfigError, EnvSource};
use shared::error::{BackendError, classify_sdk_error};
use shared::telemetry::metric;

#[derive(Debug, Clone)]
pub struct Enricher {
    repo: AppointmentsRepo,
    sqs: aws_sdk_sqs::Client,
    rejects_queue_url: String,
}

impl Enricher {
    /// Reads `CONTACTS_TABLE` and `REJECTED_RECORDS_QUEUE_URL`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            repo: AppointmentsRepo::new(
                aws_sdk_dynamodb::Client::new(sdk),
                None,
                config::required(env, "CONTACTS_TABLE")?,
            ),
            sqs: aws_sdk_sqs::Client::new(sdk),
            rejects_queue_url: config::required(env, "REJECTED_RECORDS_QUEUE_URL")?,
        })
    }

    /// Pipes send a JSON array of records; a single object is treated as a batch of one.
    pub async fn handle(&self, payload: Value) -> Result<Vec<EnrichedAppointment>, EnrichError> {
        let records = match payload {
            Value::Array(records) => records,
            other => vec![other],
        };
        let enrichment = match appointments::enrich(&self.repo, &records).await {
            Ok(enrichment) => enrichment,
            Err(err) => {
                tracing::error!(error = %err, "batch failed; the pipe will retry it");
                return Err(err);
            }
        };
        if !enrichment.rejected.is_empty() {
            self.keep_rejected(&enrichment.rejected).await?;
            for rejected in &enrichment.rejected {
                tracing::error!(index = rejected.index, reason = %rejected.reason, "record rejected");
            }
        }
        let unknown = enrichment
            .documents
            .iter()
            .filter(|d| d.preferred_method == ContactMethod::None)
            .count();
        metrics::counter!(metric::APPOINTMENTS_ENRICHED)
            .increment(enrichment.documents.len() as u64);
        metrics::counter!(metric::CONTACT_UNKNOWN).increment(unknown as u64);
        tracing::info!(
            records = enrichment.documents.len(),
            rejected = enrichment.rejected.len(),
            "batch enriched"
        );
        Ok(enrichment.documents)
    }

    /// Sends every rejected record to the rejects queue (10 per request, SQS's batch limit);
    /// any that SQS did not take fails the batch, so the pipe retries and nothing is lost.
    async fn keep_rejected(&self, rejected: &[RejectedRecord]) -> Result<(), EnrichError> {
        for chunk in rejected.chunks(10) {
            let entries = chunk
                .iter()
                .map(|r| {
                    SendMessageBatchRequestEntry::builder()
                        .id(r.index.to_string())
                        .message_body(serde_json::to_string(r).unwrap_or_default())
                        .build()
                        .map_err(|e| BackendError::failed("sqs", e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.rejects_queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| classify_sdk_error("sqs", &e))?;
            if !out.failed.is_empty() {
                return Err(BackendError::failed(
                    "sqs",
                    format!("{} rejected records were not kept", out.failed.len()),
                )
                .into());
            }
        }
        Ok(())
    }
}
