//! S3 answers a missing key with 404 NoSuchKey only to callers allowed `s3:ListBucket` on the
//! bucket; everyone else gets 403 AccessDenied, so they learn nothing about which keys exist
//! (docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html, "Permissions"). moto always
//! says 404.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::aws_errors::AwsError;
use crate::iam::actions::{Call, call_of};
use crate::iam::authorization::Authorization;
use crate::iam::principals::role_of;

/// The bucket ARN of a `GetObject`/`HeadObject` call, the calls this rule is about.
pub fn bucket_of_object_read(call: &Call) -> Option<String> {
    if call.service != "s3" || !matches!(call.operation.as_str(), "GetObject" | "HeadObject") {
        return None;
    }
    let object = &call.checks.first()?.1;
    let bucket = object.strip_prefix("arn:aws:s3:::")?.split('/').next()?;
    Some(format!("arn:aws:s3:::{bucket}"))
}

/// Layer: the emulator's 404 for a missing object becomes 403 for a caller who may not list.
pub async fn hide_missing_keys(
    State(authorization): State<Arc<Authorization>>,
    request: Request,
    next: Next,
) -> Response {
    let bucket = bucket_of_object_read(call_of(&request));
    let Some(bucket) = bucket else {
        return next.run(request).await;
    };
    let (role, call) = (role_of(&request).clone(), call_of(&request).clone());
    let response = next.run(request).await;
    if response.status() != StatusCode::NOT_FOUND {
        return response;
    }
    let decision = authorization.decide(&role, &call, "s3:ListBucket", &bucket);
    if decision.allowed() {
        return response;
    }
    AwsError::access_denied("s3", "Access Denied").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(operation: &str, object: &str) -> Call {
        Call::new(
            "s3",
            operation,
            vec![("s3:GetObject".into(), object.into())],
        )
    }

    #[test]
    fn only_object_reads_are_about_missing_keys() {
        assert_eq!(
            bucket_of_object_read(&call("GetObject", "arn:aws:s3:::photos/a/b.jpg")).as_deref(),
            Some("arn:aws:s3:::photos")
        );
        assert_eq!(
            bucket_of_object_read(&call("HeadObject", "arn:aws:s3:::photos/x")).as_deref(),
            Some("arn:aws:s3:::photos")
        );
        assert_eq!(
            bucket_of_object_read(&call("PutObject", "arn:aws:s3:::photos/x")),
            None
        );
    }
}
