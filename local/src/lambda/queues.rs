//! SQS messages as Lambda's SQS event source delivers them (`aws_lambda_events` records).

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::Message;
use serde_json::json;

use crate::emulator::REGION;

/// Wraps messages received from the queue `queue_arn` into the event Lambda would invoke with.
pub fn to_lambda_event(messages: &[Message], queue_arn: &str) -> SqsEvent {
    let records: Vec<SqsMessage> = messages
        .iter()
        .map(|m| to_lambda_record(m, queue_arn))
        .collect();
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

pub fn to_lambda_record(message: &Message, queue_arn: &str) -> SqsMessage {
    let attributes: serde_json::Map<String, serde_json::Value> = message
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_string(), json!(v)))
        .collect();
    let record = json!({
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    });
    serde_json::from_value(record).expect("an SQS message always fits the SQS event record")
}
