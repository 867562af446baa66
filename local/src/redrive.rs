//! `make redrive QUEUE=<logical id>`: a dead-letter queue's messages back to the queue that
//! dead-lettered them, none lost. The source is the queue whose `RedrivePolicy` names the DLQ in
//! the transformed template. SQS's own `StartMessageMoveTask` does it where the service has it
//! (AWS); otherwise (the emulator) each message is received, sent to the source, and only then
//! deleted from the DLQ, so a failure in between leaves a copy in both, never in neither.

use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::Value;

use crate::cloudformation::template::Template;
use crate::emulator::sdk_error;

/// The logical id of the queue whose redrive policy sends to `dlq`.
pub fn source_of(template: &Template, dlq: &str) -> Result<String, String> {
    let resource = template.resource(dlq).map_err(|e| e.to_string())?;
    if resource.kind != "AWS::SQS::Queue" {
        return Err(format!("{dlq} is a {}, not a queue", resource.kind));
    }
    template
        .resources_of_kind("AWS::SQS::Queue")
        .find(|(_, q)| {
            q.properties
                .pointer("/RedrivePolicy/deadLetterTargetArn")
                .is_some_and(|target| template.references(target).contains(dlq))
        })
        .map(|(id, _)| id.clone())
        .ok_or_else(|| {
            format!(
                "no queue redrives to {dlq}: it holds failure records (stream batch positions, rejected records), not messages to replay; read them with the SQS console or CLI"
            )
        })
}

/// How the messages moved.
#[derive(Debug, PartialEq, Eq)]
pub enum Moved {
    /// SQS's own move task started (it runs in the service).
    Task(String),
    /// Moved here, one by one: how many.
    Messages(usize),
}

/// Moves every message of `dlq_url` to `source_url`.
pub async fn redrive(sqs: &Client, dlq_url: &str, source_url: &str) -> Result<Moved, String> {
    let arn = |url: &str| {
        crate::iam::actions::queue_arn(url).ok_or_else(|| format!("{url} is not a queue URL"))
    };
    let task = sqs
        .start_message_move_task()
        .source_arn(arn(dlq_url)?)
        .destination_arn(arn(source_url)?)
        .send()
        .await;
    if let Ok(out) = task {
        let handle = out
            .task_handle
            .ok_or("StartMessageMoveTask returned no TaskHandle")?;
        return Ok(Moved::Task(handle));
    }
    let mut moved = 0;
    let mut empty = 0;
    while empty < 2 {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(sdk_error)?;
        let messages = out.messages.unwrap_or_default(); // no Messages: the DLQ is empty
        if messages.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for message in messages {
            sqs.send_message()
                .queue_url(source_url)
                .message_body(
                    message
                        .body
                        .clone()
                        .ok_or("a received message has no body")?,
                )
                .set_message_attributes(message.message_attributes.clone())
                .send()
                .await
                .map_err(sdk_error)?;
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(
                    message
                        .receipt_handle
                        .ok_or("a received message has no receipt handle")?,
                )
                .send()
                .await
                .map_err(sdk_error)?;
            moved += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Moved::Messages(moved))
}

/// A queue's URL in a deployed stack: CloudFormation names it `<stack>-<LogicalId>-<suffix>`.
pub async fn deployed_queue_url(
    sqs: &Client,
    stack: &str,
    logical_id: &str,
) -> Result<String, String> {
    let prefix = format!("{stack}-{logical_id}");
    let out = sqs
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
        .map_err(sdk_error)?;
    let urls: Vec<String> = out
        .queue_urls
        .unwrap_or_default() // no QueueUrls: no queue with that prefix (said below)
        .into_iter()
        .filter(|u| {
            u.rsplit('/').next().is_some_and(|name| {
                name.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.starts_with('-'))
            })
        })
        .collect();
    match urls.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no queue named {prefix}-* in this account and region"
        )),
        many => Err(format!("{} queues named {prefix}-*: {many:?}", many.len())),
    }
}

/// A queue's URL in a running `make dev` stack, from its state file.
pub fn local_queue_url(state: &Value, logical_id: &str) -> Result<String, String> {
    state["resources"][logical_id]["ref"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("the running stack has no {logical_id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_redrivable_dlq_has_its_source_and_failure_records_are_refused() {
        let template = Template::load_project().expect("transform");
        for (dlq, source) in [
            ("PhotoUploadDLQ", "PhotoUploadQueue"),
            ("ApprovalRequestDLQ", "ApprovalRequestQueue"),
            ("AppointmentQueueDLQ", "AppointmentQueue"),
        ] {
            assert_eq!(source_of(&template, dlq).unwrap(), source, "{dlq}");
        }
        assert!(source_of(&template, "AppointmentPipeDLQ").is_err());
        assert!(source_of(&template, "ItemsTable").is_err());
    }
}
