//! Shard iterators belong to the stream they were issued for
//! (docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html): a
//! `GetRecords` call is authorised on that stream, and an iterator the gate has not seen
//! issued is refused as expired, as DynamoDB Streams refuses one it cannot decode.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::aws_errors::AwsError;
use crate::gate::audit::refused;
use crate::gate::body::read_response;
use crate::iam::actions::{Call, SHARD_ITERATOR_RESOURCE, call_of};

/// Shard iterator -> the stream ARN it reads.
#[derive(Default)]
pub struct ShardIterators {
    streams: Mutex<HashMap<String, String>>,
}

impl ShardIterators {
    pub fn stream_of(&self, iterator: &str) -> Option<String> {
        self.streams
            .lock()
            .expect("shard iterators")
            .get(iterator)
            .cloned()
    }

    /// The iterator an accepted `GetShardIterator` or `GetRecords` answer hands out.
    pub fn accepted(&self, call: &Call, answer: &Value) {
        let field = match call.operation.as_str() {
            "GetShardIterator" => "ShardIterator",
            "GetRecords" => "NextShardIterator",
            _ => return,
        };
        if let (Some(iterator), Some((_, stream))) = (answer[field].as_str(), call.checks.first()) {
            self.streams
                .lock()
                .expect("shard iterators")
                .insert(iterator.into(), stream.clone());
        }
    }
}

/// Layer, before authorisation: `GetRecords` is authorised on its iterator's stream.
pub async fn resolve_stream(
    State(iterators): State<Arc<ShardIterators>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(iterator) = call_of(&request).shard_iterator.clone() else {
        return next.run(request).await;
    };
    let Some(stream) = iterators.stream_of(&iterator) else {
        refused("GetRecords with a shard iterator the gate has not seen issued");
        return AwsError::new(
            "dynamodb",
            StatusCode::BAD_REQUEST,
            "ExpiredIteratorException",
            "Iterator expired or unknown to the gate",
        )
        .into_response();
    };
    let call = request.extensions_mut().get_mut::<Call>().expect("a call");
    call.resolve_placeholder(SHARD_ITERATOR_RESOURCE, &stream);
    next.run(request).await
}

/// Layer, once allowed: learns the iterators the answers hand out.
pub async fn learn(
    State(iterators): State<Arc<ShardIterators>>,
    request: Request,
    next: Next,
) -> Response {
    let call = call_of(&request).clone();
    let response = next.run(request).await;
    if call.service != "dynamodb" || !response.status().is_success() {
        return response;
    }
    if !matches!(call.operation.as_str(), "GetShardIterator" | "GetRecords") {
        return response;
    }
    let (parts, bytes) = read_response(response).await;
    // An answer that is not JSON hands out no iterator.
    iterators.accepted(
        &call,
        &serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    );
    Response::from_parts(parts, bytes.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &str) -> Call {
        let checks = vec![("dynamodb:GetShardIterator".into(), "arn:stream".into())];
        Call::new("dynamodb", operation, checks)
    }

    #[test]
    fn each_iterator_handed_out_reads_its_stream() {
        let iterators = ShardIterators::default();
        iterators.accepted(
            &call("GetShardIterator"),
            &serde_json::json!({"ShardIterator": "i1"}),
        );
        iterators.accepted(
            &call("GetRecords"),
            &serde_json::json!({"NextShardIterator": "i2"}),
        );
        iterators.accepted(
            &call("DescribeStream"),
            &serde_json::json!({"ShardIterator": "i3"}),
        );
        assert_eq!(iterators.stream_of("i1").as_deref(), Some("arn:stream"));
        assert_eq!(iterators.stream_of("i2").as_deref(), Some("arn:stream"));
        assert_eq!(iterators.stream_of("i3"), None);
    }
}
