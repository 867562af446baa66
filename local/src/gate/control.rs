//! The deployer's side door: `/_local/iam/*` (registering roles, policies, bucket CORS, state
//! machines, faults) and the emulator's own API (`/moto-api/*`) are CloudFormation's and the
//! operator's, never a function's. When the gate has a token, they need it in
//! [`ADMIN_HEADER`]; function processes never see it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::audit::refused;

/// The header carrying the deployer's gate token.
pub const ADMIN_HEADER: &str = "x-local-gate-token";

/// The token the control routes require (`None`: no token is required).
#[derive(Clone, Default)]
pub struct DeployerToken(pub Option<Arc<str>>);

/// Layer: the control routes answer the deployer only.
pub async fn require_deployer(
    State(token): State<DeployerToken>,
    request: Request,
    next: Next,
) -> Response {
    let sent = request
        .headers()
        .get(ADMIN_HEADER)
        .and_then(|v| v.to_str().ok());
    if token.0.as_deref().is_none_or(|token| sent == Some(token)) {
        return next.run(request).await;
    }
    refused(&format!(
        "{} {} without the deployer's gate token",
        request.method(),
        request.uri().path()
    ));
    (
        StatusCode::FORBIDDEN,
        "the deployer's gate token is required",
    )
        .into_response()
}

/// Why a control request was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    BadRequest(String),
    #[error("unknown gate endpoint")]
    UnknownEndpoint,
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnknownEndpoint => StatusCode::NOT_FOUND,
        };
        (status, self.to_string()).into_response()
    }
}

/// A control request's JSON body.
pub fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::BadRequest(e.to_string()))
}

/// The control router's fallback.
pub async fn unknown_endpoint() -> ControlError {
    ControlError::UnknownEndpoint
}
