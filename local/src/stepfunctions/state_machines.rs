//! The state machines whose service integrations run inside the emulator
//! (docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html): the calls moto makes
//! for one (`sqs:sendMessage.waitForTaskToken`) are its role's, and the task tokens it sends
//! are its own.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::Arc;

use crate::gate::control::{ControlError, parse};
use crate::iam::StateMachineRecord;

/// Every registered state machine, by ARN.
#[derive(Default)]
pub struct StateMachines {
    records: RwLock<Vec<StateMachineRecord>>,
}

impl StateMachines {
    /// A state machine registered again replaces its earlier record.
    pub fn register(&self, record: StateMachineRecord) {
        let mut records = self.records.write().expect("state machines");
        records.retain(|m| m.arn != record.arn);
        records.push(record);
    }

    /// Every state machine that sends to `queue_url` (two may share a queue).
    pub fn sending_to(&self, queue_url: &str) -> Vec<StateMachineRecord> {
        self.records
            .read()
            .expect("state machines")
            .iter()
            .filter(|m| m.queue_urls.iter().any(|q| q == queue_url))
            .cloned()
            .collect()
    }
}

/// `POST /_local/iam/state-machines`: the deployer registers a state machine.
pub async fn register(
    State(machines): State<Arc<StateMachines>>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    machines.register(parse(&body)?);
    Ok(StatusCode::NO_CONTENT)
}

/// An SQS call's `QueueUrl` and, when it sends one, its `MessageBody` (JSON or the query form).
pub fn sent_message(body: &[u8]) -> Option<(String, Option<Value>)> {
    let (url, text) = match serde_json::from_slice::<Value>(body) {
        Ok(sent) => (
            sent["QueueUrl"].as_str()?.to_string(),
            sent["MessageBody"].as_str().map(str::to_string),
        ),
        Err(_) => {
            let mut form: HashMap<String, String> =
                url::form_urlencoded::parse(body).into_owned().collect();
            (form.remove("QueueUrl")?, form.remove("MessageBody"))
        }
    };
    // A message that is not JSON carries no token fields.
    Some((
        url,
        text.map(|t| serde_json::from_str(&t).unwrap_or(Value::Null)),
    ))
}
