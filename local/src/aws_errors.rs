//! AWS services' error answers in each protocol's shape, as the SDKs parse them
//! (docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html for S3's REST-XML,
//! docs.aws.amazon.com/sns/latest/api/CommonErrors.html for the Query-XML of SNS,
//! docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-responses.html
//! for SQS's JSON with its query-compatible `x-amzn-query-error`, and the JSON shape with
//! `__type` / `x-amzn-ErrorType` of DynamoDB, Step Functions, Secrets Manager and SES v2).
//!
//! Rooms only construct an [`AwsError`]; its [`IntoResponse`] impl is the one place that picks
//! the shape (HEAD answers lose their body in [`crate::gate::body::buffer`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Whose fault an error is, as the Query protocols say it (`<Type>`, `x-amzn-query-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Sender,
    Receiver,
}

/// One AWS error answer: the service (the SigV4 signing name) picks its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub service: String,
    pub status: StatusCode,
    /// The error code as the protocol carries it (`AccessDenied`,
    /// `com.amazon.coral.service#AccessDeniedException`, ...).
    pub code: String,
    pub message: String,
    pub fault: Fault,
}

impl AwsError {
    /// An error the caller caused (4xx): `Sender`.
    pub fn new(service: &str, status: StatusCode, code: &str, message: &str) -> Self {
        Self {
            service: service.to_string(),
            status,
            code: code.to_string(),
            message: message.to_string(),
            fault: if status.is_server_error() {
                Fault::Receiver
            } else {
                Fault::Sender
            },
        }
    }

    /// AccessDenied in the service's own code and status (what each SDK maps to its
    /// access-denied error).
    pub fn access_denied(service: &str, message: &str) -> Self {
        let (status, code) = match service {
            "s3" => (StatusCode::FORBIDDEN, "AccessDenied"),
            "sns" => (StatusCode::FORBIDDEN, "AuthorizationError"),
            "sqs" => (StatusCode::BAD_REQUEST, "com.amazonaws.sqs#AccessDenied"),
            "ses" => (StatusCode::FORBIDDEN, "AccessDeniedException"),
            "dynamodb" => (
                StatusCode::BAD_REQUEST,
                "com.amazon.coral.service#AccessDeniedException",
            ),
            _ => (StatusCode::BAD_REQUEST, "AccessDeniedException"),
        };
        Self::new(service, status, code, message)
    }

    /// The code without its namespace (`com.amazonaws.sqs#AccessDenied` -> `AccessDenied`).
    fn short_code(&self) -> &str {
        self.code.rsplit('#').next().unwrap_or(&self.code)
    }

    fn fault_name(&self) -> &'static str {
        match self.fault {
            Fault::Sender => "Sender",
            Fault::Receiver => "Receiver",
        }
    }

    fn s3_xml(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>local</RequestId></Error>",
            escape(self.short_code()),
            escape(&self.message)
        )
    }

    fn sns_xml(&self) -> String {
        format!(
            "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>local</RequestId></ErrorResponse>",
            self.fault_name(),
            escape(self.short_code()),
            escape(&self.message)
        )
    }

    fn json_body(&self) -> String {
        json!({"__type": self.code, "message": self.message}).to_string()
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let (content_type, body) = match self.service.as_str() {
            "s3" => ("application/xml", self.s3_xml()),
            "sns" => ("application/xml", self.sns_xml()),
            // SES v2 speaks REST-JSON, Cognito user pools JSON 1.1; the others JSON 1.0.
            "ses" => ("application/json", self.json_body()),
            "cognito-idp" => ("application/x-amz-json-1.1", self.json_body()),
            _ => ("application/x-amz-json-1.0", self.json_body()),
        };
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if !matches!(self.service.as_str(), "s3" | "sns")
            && let Ok(code) = HeaderValue::from_str(&self.code)
        {
            headers.insert("x-amzn-errortype", code);
        }
        if self.service == "sqs"
            && let Ok(value) =
                HeaderValue::from_str(&format!("{};{}", self.short_code(), self.fault_name()))
        {
            headers.insert("x-amzn-query-error", value);
        }
        response
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parts(error: AwsError) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = error.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn access_denied_takes_each_services_shape() {
        let (status, _, body) = parts(AwsError::access_denied("s3", "no <way>")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("<Code>AccessDenied</Code><Message>no &lt;way&gt;</Message>"));

        let (status, _, body) = parts(AwsError::access_denied("sns", "no")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("<Type>Sender</Type><Code>AuthorizationError</Code>"));

        let (status, headers, body) = parts(AwsError::access_denied("sqs", "no")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers["x-amzn-query-error"], "AccessDenied;Sender");
        assert!(body.contains(r#""__type":"com.amazonaws.sqs#AccessDenied""#));

        let (_, headers, _) = parts(AwsError::access_denied("dynamodb", "no")).await;
        assert_eq!(
            headers["x-amzn-errortype"],
            "com.amazon.coral.service#AccessDeniedException"
        );
        let (status, headers, _) = parts(AwsError::access_denied("ses", "no")).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(headers["content-type"], "application/json");
    }

    #[tokio::test]
    async fn a_server_error_is_the_receivers() {
        let error = AwsError::new(
            "sqs",
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "x",
        );
        let (_, headers, _) = parts(error).await;
        assert_eq!(headers["x-amzn-query-error"], "ServiceUnavailable;Receiver");
    }
}
