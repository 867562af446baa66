//! Reads a DynamoDB stream from the emulator and hands back records in exactly the shape Lambda
//! delivers them (`aws_lambda_events` DynamoDB records), for event-source emulation and tests.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodbstreams::Client;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use serde_json::json;

use crate::emulator::{REGION, sdk_error};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("stream call failed: {0}")]
    Call(String),
    #[error("stream record could not be converted: {0}")]
    Convert(String),
}

/// Where a DynamoDB stream source starts (`StartingPosition`, required by Lambda's mappings
/// and Pipes alike): `TRIM_HORIZON` or `LATEST`; DynamoDB Streams knows no `AT_TIMESTAMP`.
pub fn starting_position(value: &serde_json::Value) -> Result<ShardIteratorType, String> {
    match value.as_str() {
        Some("TRIM_HORIZON") => Ok(ShardIteratorType::TrimHorizon),
        Some("LATEST") => Ok(ShardIteratorType::Latest),
        Some(other) => Err(format!(
            "StartingPosition {other} is not one of a DynamoDB stream's (TRIM_HORIZON, LATEST)"
        )),
        None => Err("StartingPosition is required for a DynamoDB stream source".into()),
    }
}

/// Follows every shard of one stream from where it was opened.
#[derive(Debug)]
pub struct StreamReader {
    client: Client,
    stream_arn: String,
    start: ShardIteratorType,
    iterators: HashMap<String, Option<String>>,
}

impl StreamReader {
    /// `start`: `TrimHorizon` to read all retained records, `Latest` for new ones only.
    pub fn new(sdk: &SdkConfig, stream_arn: impl Into<String>, start: ShardIteratorType) -> Self {
        Self {
            client: Client::new(sdk),
            stream_arn: stream_arn.into(),
            start,
            iterators: HashMap::new(),
        }
    }

    /// Every record that arrived since the last poll, in shard order.
    pub async fn poll(&mut self) -> Result<Vec<EventRecord>, StreamError> {
        let description = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|e| StreamError::Call(sdk_error(e)))?;
        let shards = description
            .stream_description
            .and_then(|d| d.shards)
            .unwrap_or_default(); // no shards described: nothing to read yet
        for shard in shards {
            let Some(shard_id) = shard.shard_id else {
                continue;
            };
            if self.iterators.contains_key(&shard_id) {
                continue;
            }
            let iterator = self
                .client
                .get_shard_iterator()
                .stream_arn(&self.stream_arn)
                .shard_id(&shard_id)
                .shard_iterator_type(self.start.clone())
                .send()
                .await
                .map_err(|e| StreamError::Call(sdk_error(e)))?;
            self.iterators.insert(shard_id, iterator.shard_iterator);
        }
        let mut records = Vec::new();
        let mut shard_ids: Vec<String> = self.iterators.keys().cloned().collect();
        shard_ids.sort();
        // A shard whose read fails keeps its iterator (read again next poll); what the other
        // shards returned is delivered, never dropped.
        let mut failure = None;
        for shard_id in shard_ids {
            let Some(Some(iterator)) = self.iterators.get(&shard_id).cloned() else {
                continue;
            };
            let out = match self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) => {
                    failure = Some(StreamError::Call(sdk_error(e)));
                    continue;
                }
            };
            // No Records in this read: nothing new on the shard.
            for record in out.records.unwrap_or_default() {
                records.push(to_lambda_record(&record, &self.stream_arn)?);
            }
            self.iterators.insert(shard_id, out.next_shard_iterator);
        }
        match failure {
            Some(err) if records.is_empty() => Err(err),
            _ => Ok(records),
        }
    }
}

/// One stream record as Lambda's DynamoDB event source would deliver it.
pub fn to_lambda_record(record: &Record, stream_arn: &str) -> Result<EventRecord, StreamError> {
    let change = record
        .dynamodb
        .as_ref()
        .ok_or_else(|| StreamError::Convert("record has no dynamodb part".into()))?;
    let image =
        |attrs: &Option<HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            attrs
                .clone()
                .map(|a| serde_json::to_value(serde_dynamo::Item::from(a)))
                .transpose()
        };
    let convert = |e: serde_json::Error| StreamError::Convert(e.to_string());
    let mut dynamodb = json!({
        "Keys": image(&change.keys).map_err(convert)?,
        "SequenceNumber": change.sequence_number,
        // The emulator may not report a size; the field is informational (0 then).
        "SizeBytes": change.size_bytes.unwrap_or_default(),
        "StreamViewType": change.stream_view_type.as_ref().map(|v| v.as_str().to_string()),
    });
    if let Some(at) = change.approximate_creation_date_time {
        dynamodb["ApproximateCreationDateTime"] = json!(at.secs());
    }
    if let Some(new) = image(&change.new_image).map_err(convert)? {
        dynamodb["NewImage"] = new;
    }
    if let Some(old) = image(&change.old_image).map_err(convert)? {
        dynamodb["OldImage"] = old;
    }
    let event = json!({
        "eventID": record.event_id,
        "eventName": record.event_name.as_ref().map(|n| n.as_str().to_string()),
        "eventVersion": record.event_version,
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region.clone().unwrap_or_else(|| REGION.to_string()),
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    });
    serde_json::from_value(event).map_err(convert)
}
