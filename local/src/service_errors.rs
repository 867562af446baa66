//! AWS services' error answers in each protocol's shape, as the SDK parses them: JSON with
//! `__type` and `x-amzn-ErrorType` (DynamoDB, SQS, Step Functions, SES), XML (S3, SNS). Used by
//! the IAM gate's refusals and the fault injector's errors.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub fn error_json(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"__type": code, "message": message})),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_str(code).unwrap_or(HeaderValue::from_static("AccessDenied")),
    );
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

pub fn xml(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
