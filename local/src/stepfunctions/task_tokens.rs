//! Task tokens as Step Functions keeps them
//! (docs.aws.amazon.com/step-functions/latest/dg/connect-to-resource.html#connect-wait-token,
//! docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html): each token
//! belongs to the state machine that sent it (read from its outgoing messages) or the activity
//! that handed it out (read from `GetActivityTask` answers), and authorising `SendTask*` means
//! authorising on that issuer. A token whose task is over (answered, superseded by a later task
//! of the same execution, or its execution ended) gets `TaskTimedOut` "Provided task does not
//! exist anymore", as AWS answers (e.g. aws-samples/amazon-mwaa-examples#61); moto accepts a
//! second answer while the execution runs and says `InvalidToken` once it ended. AWS accepts a
//! heartbeat for any open task (a harmless no-op), moto only for tasks with
//! `HeartbeatSeconds`; the approval page relies on AWS's behaviour to check its link.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::state_machines::{StateMachines, sent_message};
use crate::aws_errors::AwsError;
use crate::faults::AnsweredByGate;
use crate::gate::body::{buffered, read_response};
use crate::iam::EMULATOR_STATES_KEY;
use crate::iam::actions::{Call, TASK_TOKEN_RESOURCE, call_of};
use crate::iam::sigv4::caller;

/// What the gate learned of task tokens.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Token -> ARN of the state machine or activity that issued it.
    issuers: HashMap<String, String>,
    /// Tokens whose task is over as far as the gate saw.
    closed: HashSet<String>,
    /// Token -> the execution whose task it is (the message's `executionArn`).
    token_executions: HashMap<String, String>,
    /// Execution -> its open task's token.
    execution_tokens: HashMap<String, String>,
}

impl Ledger {
    pub fn issuer(&self, token: &str) -> Option<&String> {
        self.issuers.get(token)
    }

    pub fn is_closed(&self, token: &str) -> bool {
        self.closed.contains(token)
    }

    /// Tokens a state machine sends in a message, known before any consumer can read it.
    pub fn sent(&mut self, tokens: Vec<(String, String)>, execution: Option<String>) {
        if let Some(execution) = execution {
            for (token, _) in &tokens {
                self.token_executions
                    .insert(token.clone(), execution.clone());
                // A new task of the same execution closes its previous one (it timed out).
                if let Some(previous) = self
                    .execution_tokens
                    .insert(execution.clone(), token.clone())
                    && &previous != token
                {
                    self.closed.insert(previous);
                }
            }
        }
        self.issuers.extend(tokens);
    }

    /// What an accepted call tells: an answer closes its task; an activity hands out a token.
    pub fn accepted(&mut self, call: &Call, answer: &Value) {
        match call.operation.as_str() {
            "SendTaskSuccess" | "SendTaskFailure" => {
                if let Some(token) = &call.task_token {
                    self.closed.insert(token.clone());
                }
            }
            "GetActivityTask" => {
                if let (Some(token), Some((_, activity))) =
                    (answer["taskToken"].as_str(), call.checks.first())
                {
                    self.issuers.insert(token.into(), activity.clone());
                }
            }
            _ => {}
        }
    }
}

/// The ledger, the state machines whose messages carry tokens, and the emulator to ask
/// whether an execution still runs.
pub struct TaskTokens {
    ledger: Mutex<Ledger>,
    state_machines: Arc<StateMachines>,
    emulator: String,
}

impl TaskTokens {
    pub fn new(state_machines: Arc<StateMachines>, emulator: &str) -> Self {
        Self {
            ledger: Mutex::default(),
            state_machines,
            emulator: emulator.to_string(),
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().expect("task tokens")
    }

    /// The tokens in a state machine's outgoing SQS message, attributed to it.
    fn learn_outgoing(&self, call: &Call, body: &[u8]) {
        if (call.service.as_str(), call.operation.as_str()) != ("sqs", "SendMessage") {
            return;
        }
        let Some((url, Some(message))) = sent_message(body) else {
            return;
        };
        let tokens = self
            .state_machines
            .sending_to(&url)
            .into_iter()
            .flat_map(|m| {
                m.token_fields
                    .iter()
                    .filter_map(|field| Some((message[field].as_str()?.to_string(), m.arn.clone())))
                    .collect::<Vec<_>>()
            })
            .collect();
        let execution = message["executionArn"].as_str().map(str::to_string);
        self.ledger().sent(tokens, execution);
    }

    /// A heartbeat on an issued token moto refused: AWS's empty success while the task is open
    /// (not answered or superseded, and its execution, when known, still running).
    async fn heartbeat_of_open_task(&self, token: &str) -> Response {
        let execution = {
            let ledger = self.ledger();
            if ledger.is_closed(token) {
                return task_timed_out().into_response();
            }
            ledger.token_executions.get(token).cloned()
        };
        if let Some(execution) = execution
            && self.execution_status(&execution).await.as_deref() != Some("RUNNING")
        {
            return task_timed_out().into_response();
        }
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/x-amz-json-1.0")],
            "{}",
        )
            .into_response()
    }

    /// An execution's status, asked of the emulator (behind the gate) as the deployer.
    async fn execution_status(&self, execution_arn: &str) -> Option<String> {
        let sfn = aws_sdk_sfn::Client::new(&crate::emulator::sdk_config(&self.emulator).await);
        let described = sfn
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .ok()?;
        Some(described.status().as_str().to_string())
    }
}

fn task_timed_out() -> AwsError {
    AwsError::new(
        "states",
        StatusCode::BAD_REQUEST,
        "TaskTimedOut",
        "Task Timed Out: 'Provided task does not exist anymore'",
    )
}

fn is_invalid_token(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::BAD_REQUEST
        && serde_json::from_slice::<Value>(body).is_ok_and(|error| {
            error["__type"]
                .as_str()
                .is_some_and(|code| code.rsplit('#').next() == Some("InvalidToken"))
        })
}

/// Layer, before authorisation: a `SendTask*` call is authorised on the token's issuer; a
/// token AWS did not issue cannot be decoded, and Step Functions answers `InvalidToken` first.
pub async fn resolve_issuer(
    State(tokens): State<Arc<TaskTokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(token) = call_of(&request).task_token.clone() else {
        return next.run(request).await;
    };
    let Some(issuer) = tokens.ledger().issuer(&token).cloned() else {
        return AwsError::new(
            "states",
            StatusCode::BAD_REQUEST,
            "InvalidToken",
            "Invalid Token: the task token was not issued by this account",
        )
        .into_response();
    };
    let call = request.extensions_mut().get_mut::<Call>().expect("a call");
    call.resolve_placeholder(TASK_TOKEN_RESOURCE, &issuer);
    next.run(request).await
}

/// Layer, before authorisation: the tokens in a state machine's outgoing message are its own,
/// known before any consumer can read it (and before a refusal or fault could hide them).
pub async fn learn_sent_tokens(
    State(tokens): State<Arc<TaskTokens>>,
    request: Request,
    next: Next,
) -> Response {
    if caller(&request).access_key == EMULATOR_STATES_KEY {
        tokens.learn_outgoing(call_of(&request), &buffered(&request).body);
    }
    next.run(request).await
}

/// Layer, once allowed: learns what accepted calls tell, and answers for a task that is over
/// as AWS does.
pub async fn track(
    State(tokens): State<Arc<TaskTokens>>,
    request: Request,
    next: Next,
) -> Response {
    let call = call_of(&request).clone();
    if call
        .task_token
        .as_ref()
        .is_some_and(|t| tokens.ledger().is_closed(t))
    {
        // Answered here, in the emulator's place: a `lost` fault has no emulator answer to lose.
        let mut response = task_timed_out().into_response();
        response.extensions_mut().insert(AnsweredByGate);
        return response;
    }
    let response = next.run(request).await;
    if call.service != "states" {
        return response;
    }
    let (parts, bytes) = read_response(response).await;
    if parts.status.is_success() {
        let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        tokens.ledger().accepted(&call, &answer);
    }
    if let Some(token) = &call.task_token
        && is_invalid_token(parts.status, &bytes)
    {
        // The token got past `resolve_issuer`, so it was issued: its task is over.
        return match call.operation.as_str() {
            "SendTaskHeartbeat" => tokens.heartbeat_of_open_task(token).await,
            _ => task_timed_out().into_response(),
        };
    }
    Response::from_parts(parts, bytes.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(token: &str) -> Call {
        let checks = vec![("states:SendTaskSuccess".into(), "arn:sm".into())];
        let mut call = Call::new("states", "SendTaskSuccess", checks);
        call.task_token = Some(token.into());
        call
    }

    #[test]
    fn an_answered_task_is_closed() {
        let mut ledger = Ledger::default();
        ledger.sent(vec![("t1".into(), "arn:sm".into())], Some("exec".into()));
        assert_eq!(ledger.issuer("t1").map(String::as_str), Some("arn:sm"));
        assert!(!ledger.is_closed("t1"));
        ledger.accepted(&answer("t1"), &Value::Null);
        assert!(
            ledger.is_closed("t1"),
            "a second SendTaskSuccess answers TaskTimedOut"
        );
    }

    #[test]
    fn a_later_task_of_the_same_execution_supersedes_the_earlier() {
        let mut ledger = Ledger::default();
        ledger.sent(vec![("first".into(), "arn:sm".into())], Some("exec".into()));
        ledger.sent(
            vec![("reminder".into(), "arn:sm".into())],
            Some("exec".into()),
        );
        assert!(ledger.is_closed("first"));
        assert!(!ledger.is_closed("reminder"));
    }

    #[test]
    fn an_activity_hands_out_tokens_it_issued() {
        let mut ledger = Ledger::default();
        let mut call = answer("unused");
        call.operation = "GetActivityTask".into();
        call.task_token = None;
        call.checks = vec![("states:GetActivityTask".into(), "arn:activity".into())];
        ledger.accepted(&call, &serde_json::json!({"taskToken": "t9"}));
        assert_eq!(
            ledger.issuer("t9").map(String::as_str),
            Some("arn:activity")
        );
    }

    #[test]
    fn a_sent_message_is_read_in_either_protocol() {
        let json = br#"{"QueueUrl":"http://q/1/a","MessageBody":"{\"taskToken\":\"t\"}"}"#;
        let (url, message) = sent_message(json).unwrap();
        assert_eq!(
            (url.as_str(), message.unwrap()["taskToken"].as_str()),
            ("http://q/1/a", Some("t"))
        );
        let form = b"QueueUrl=http%3A%2F%2Fq%2F1%2Fa&MessageBody=plain";
        let (url, message) = sent_message(form).unwrap();
        assert_eq!((url.as_str(), message), ("http://q/1/a", Some(Value::Null)));
        assert!(is_invalid_token(
            StatusCode::BAD_REQUEST,
            br#"{"__type":"com.amazonaws.swf.service.v2.model#InvalidToken"}"#
        ));
    }
}
