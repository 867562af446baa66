//! One id that follows a request's work through every system it sets off: an item from the API
//! request through the table's stream to its backup and its notice; a photo from the upload
//! ticket through S3 and SQS to its thumbnail and its notice. Logs carry it as `correlation_id`
//! (beside Lambda's `requestId` and `xrayTraceId`), S3 objects as user metadata, SNS notices as
//! a message attribute, so one search finds every step.

use std::collections::HashMap;

use aws_sdk_sns::types::MessageAttributeValue;
use http::HeaderValue;
use lambda_http::{Body, Request, RequestExt, Response};

/// The header a client may send, and responses that started work answer with.
pub const HEADER: &str = "x-correlation-id";
/// S3 user metadata key (sent as `x-amz-meta-correlation-id`).
pub const METADATA: &str = "correlation-id";
/// SNS message attribute name.
pub const ATTRIBUTE: &str = "correlation_id";

/// The client's `x-correlation-id` when it sent a usable one, else API Gateway's request id,
/// else a fresh one.
pub fn of_request(req: &Request) -> String {
    let sent = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_valid(v));
    if let Some(sent) = sent {
        return sent.to_string();
    }
    let gateway = match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    gateway.unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// 1-128 of `A-Za-z0-9._:-`: safe in a header, S3 metadata and a log search.
pub fn is_valid(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Adds the id to a response, so the client can quote it.
pub fn on_response(mut response: Response<Body>, id: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// The SNS message attributes that carry it (none without an id).
pub fn sns_attributes(id: Option<&str>) -> Option<HashMap<String, MessageAttributeValue>> {
    let id = id?;
    let value = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(id)
        .build()
        .ok()?;
    Some(HashMap::from([(ATTRIBUTE.to_string(), value)]))
}

/// The id in an S3 object's user metadata, if it is a usable one.
pub fn of_metadata(metadata: Option<&HashMap<String, String>>) -> Option<String> {
    metadata?.get(METADATA).filter(|v| is_valid(v)).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_are_taken_from_clients() {
        assert!(is_valid("3f2a-9c1e_req.7:1"));
        for bad in ["", "a b", "ünï", "x\r\nSet-Cookie: y", &"a".repeat(129)] {
            assert!(!is_valid(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_client_id_wins_else_a_fresh_one() {
        let sent = http::Request::builder()
            .header(HEADER, "order-42")
            .body(Body::Empty)
            .unwrap();
        assert_eq!(of_request(&Request::from(sent)), "order-42");
        let spoofed = http::Request::builder()
            .header(HEADER, "a b")
            .body(Body::Empty)
            .unwrap();
        let fresh = of_request(&Request::from(spoofed));
        assert!(uuid::Uuid::parse_str(&fresh).is_ok(), "{fresh}");
    }
}
