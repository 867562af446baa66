//! SQS messages as Lambda's SQS event source delivers them (`aws_lambda_events` records).

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::Message;
use serde_json::json;

use crate::emulator::{REGION, sdk_error};

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

/// Receives and deletes every message on a queue (as the deployer, to look at what arrived);
/// returns their bodies.
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<Vec<String>, String> {
    let mut bodies = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(sdk_error)?;
        let messages = out.messages.unwrap_or_default(); // no Messages: the queue is drained
        if messages.is_empty() {
            return Ok(bodies);
        }
        for message in messages {
            bodies.extend(message.body);
            sqs.delete_message()
                .queue_url(queue_url)
                .set_receipt_handle(message.receipt_handle)
                .send()
                .await
                .map_err(sdk_error)?;
        }
    }
}

/// A new queue `name` subscribed to a topic with raw delivery, so what is published there can be
/// read back (a tap for tests; not part of the template). Its policy lets the topic send, as SNS
/// needs on AWS. Returns the queue's URL; [`untap`] removes it.
pub async fn tap(
    sdk: &aws_config::SdkConfig,
    topic_arn: &str,
    name: &str,
) -> Result<String, String> {
    let url = aws_sdk_sqs::Client::new(sdk)
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(sdk_error)?
        .queue_url
        .ok_or("CreateQueue returned no QueueUrl")?;
    let arn =
        crate::iam::actions::queue_arn(&url).ok_or_else(|| format!("{url} is not a queue URL"))?;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
        }],
    });
    aws_sdk_sqs::Client::new(sdk)
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            policy.to_string(),
        )
        .send()
        .await
        .map_err(sdk_error)?;
    aws_sdk_sns::Client::new(sdk)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(url)
}

/// Removes a [`tap`]: its subscription, then its queue.
pub async fn untap(sdk: &aws_config::SdkConfig, topic_arn: &str, url: &str) -> Result<(), String> {
    let arn =
        crate::iam::actions::queue_arn(url).ok_or_else(|| format!("{url} is not a queue URL"))?;
    let sns = aws_sdk_sns::Client::new(sdk);
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(topic_arn)
        .send()
        .await
        .map_err(sdk_error)?;
    for subscription in subscriptions.subscriptions() {
        if subscription.endpoint() == Some(arn.as_str())
            && let Some(subscription_arn) = subscription.subscription_arn()
        {
            sns.unsubscribe()
                .subscription_arn(subscription_arn)
                .send()
                .await
                .map_err(sdk_error)?;
        }
    }
    aws_sdk_sqs::Client::new(sdk)
        .delete_queue()
        .queue_url(url)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}
