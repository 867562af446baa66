//! The one error type every HTTP route answers with, and its JSON shape:
//! `{"error": {"code": "...", "message": "..."}}`.

use http::StatusCode;
use serde::Serialize;

/// A client-facing error: HTTP status, a stable machine-readable code and a human message.
///
/// Messages never carry secrets (tokens, signatures) or internal details: server-side causes are
/// logged where they happen and answered with a generic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For 405 answers: the methods the route does allow.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            allow: None,
        }
    }

    /// 400 for a request whose fields are present but not acceptable.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", message)
    }

    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 401: no verified person reached the function (its route lost its authorizer).
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in to use this route",
        )
    }

    /// 403: the person is known, and this is not theirs to do.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no route for {method} {path}"),
        )
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("allowed methods: {allow}"),
            )
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 503: a dependency throttled us; the client may retry.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "temporarily unavailable, retry later",
        )
    }

    /// 500 with a generic message; the cause must already be logged by the caller.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error",
        )
    }

    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail<'a> {
    pub code: &'a str,
    pub message: &'a str,
}

/// Failures of a storage or messaging dependency, classified by what the caller should do.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The service asked us to slow down; retrying later is expected to work.
    #[error("throttled by {service}: {detail}")]
    Throttled {
        service: &'static str,
        detail: String,
    },
    /// Anything else: a bug, a permission or a network problem.
    #[error("{service} call failed: {detail}")]
    Failed {
        service: &'static str,
        detail: String,
    },
}

impl BackendError {
    pub fn failed(service: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Failed {
            service,
            detail: err.to_string(),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(err: BackendError) -> Self {
        tracing::error!(error = %err, "backend call failed");
        match err {
            BackendError::Throttled { .. } => ApiError::unavailable(),
            BackendError::Failed { .. } => ApiError::internal(),
        }
    }
}

/// Classifies an SDK error without naming its operation type.
pub fn classify_sdk_error<E>(
    service: &'static str,
    err: &aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> BackendError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    use aws_sdk_dynamodb::error::SdkError;
    let code = err.code().unwrap_or_default();
    let detail = format!("{}: {}", code, err.message().unwrap_or("no message"));
    // What a retry can fix: throttling, the service's own 5xx, and the transport (timeouts,
    // refused or cut connections, a response cut off mid-way) once the SDK's retries ran out.
    let status = match err {
        SdkError::ServiceError(e) => e.raw().status().as_u16(),
        _ => 0,
    };
    let throttled = matches!(
        code,
        "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "Throttling"
            | "Throttled"
            | "RequestThrottled"
            | "SlowDown"
            | "TooManyRequestsException"
            | "ServiceUnavailable"
            | "InternalServerError"
            | "InternalFailure"
    ) || status == 429
        || status >= 500
        || matches!(
            err,
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
        );
    if throttled {
        BackendError::Throttled { service, detail }
    } else {
        BackendError::Failed {
            service,
            detail: format!(
                "{detail} ({})",
                aws_sdk_dynamodb::error::DisplayErrorContext(err)
            ),
        }
    }
}
