//! `items-stream`: consumes the items table's stream.
//!
//! INSERT -> S3 backup + SNS "item created"; MODIFY -> backup; REMOVE -> delete the backup.
//! Records are handled in order; at the first failure the handler stops and reports that
//! record's sequence number (`ReportBatchItemFailures`), so Lambda retries from it and nothing
//! before it runs twice. Retries exhausted -> the on-failure destination (template.yaml).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_s3::primitives::ByteStream;
use shared::config::{self, ConfigError, EnvSource};
use shared::error::{BackendError, classify_sdk_error};
use shared::items::{self, Item, ItemChange};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Processor {
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
    backup_bucket: String,
    topic_arn: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Poison(#[from] items::ChangeError),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl Processor {
    pub fn new(
        s3: aws_sdk_s3::Client,
        sns: aws_sdk_sns::Client,
        backup_bucket: String,
        topic_arn: String,
    ) -> Self {
        Self {
            s3,
            sns,
            backup_bucket,
            topic_arn,
        }
    }

    /// Reads `BACKUP_BUCKET` and `ITEMS_TOPIC_ARN` (set by template.yaml).
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self::new(
            aws_sdk_s3::Client::new(sdk),
            aws_sdk_sns::Client::new(sdk),
            config::required(env, "BACKUP_BUCKET")?,
            config::required(env, "ITEMS_TOPIC_ARN")?,
        ))
    }

    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &event.records {
            if let Err(err) = self.process(record).await {
                tracing::error!(event_id = %record.event_id, event = %record.event_name, error = %err, "stream record failed; reporting it for retry");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                // Later records wait for the retry, which restarts at this one.
                break;
            }
        }
        response
    }

    /// One record, its logs in a span with the correlation id of the request that made it,
    /// which the backup (object metadata) and the notice (message attribute) carry on.
    pub async fn process(&self, record: &EventRecord) -> Result<(), RecordError> {
        let correlation = items::correlation_id(record);
        let span = tracing::info_span!("record", correlation_id = correlation.as_deref());
        async {
            match ItemChange::from_record(record)? {
                ItemChange::Created(item) => {
                    self.write_backup(&item, correlation.as_deref()).await?;
                    self.notify_created(&item, correlation.as_deref()).await?;
                }
                ItemChange::Modified(item) => {
                    self.write_backup(&item, correlation.as_deref()).await?
                }
                ItemChange::Removed(item) => self.delete_backup(&item).await?,
            }
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn write_backup(
        &self,
        item: &Item,
        correlation: Option<&str>,
    ) -> Result<(), BackendError> {
        let body = serde_json::to_vec(item).map_err(|e| BackendError::failed("s3", e))?;
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.backup_bucket)
            .key(items::backup_key(item))
            .content_type("application/json")
            .body(ByteStream::from(body));
        if let Some(id) = correlation {
            put = put.metadata(shared::correlation::METADATA, id);
        }
        put.send().await.map_err(|e| classify_sdk_error("s3", &e))?;
        tracing::info!(item_id = %item.id, "backup written");
        Ok(())
    }

    async fn delete_backup(&self, item: &Item) -> Result<(), BackendError> {
        self.s3
            .delete_object()
            .bucket(&self.backup_bucket)
            .key(items::backup_key(item))
            .send()
            .await
            .map_err(|e| classify_sdk_error("s3", &e))?;
        tracing::info!(item_id = %item.id, "item removed; backup deleted");
        Ok(())
    }

    async fn notify_created(
        &self,
        item: &Item,
        correlation: Option<&str>,
    ) -> Result<(), BackendError> {
        let (subject, message) = items::created_notification(item);
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .set_message_attributes(shared::correlation::sns_attributes(correlation))
            .send()
            .await
            .map_err(|e| classify_sdk_error("sns", &e))?;
        tracing::info!(item_id = %item.id, "creation notice published");
        Ok(())
    }
}
