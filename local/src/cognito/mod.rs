//! Amazon Cognito user pools where moto is looser than Cognito
//! (docs.aws.amazon.com/cognito/latest/developerguide/user-pools-API-operations.html):
//! - [`public_operations`]: the operations a person calls without AWS credentials (sign-up,
//!   confirmation, sign-in, password reset, their own profile, sign-out) and each pool's key
//!   set pass unsigned and without IAM, as Cognito evaluates no IAM policy for them; every other
//!   Cognito operation is signed and authorised like any AWS call;
//! - [`confirmation_codes`]: moto sends no code and confirms with any; the stack mails a code to
//!   the local mailbox and refuses a wrong or expired one, for sign-up and password reset;
//! - [`app_clients`]: each app client's auth flows and user-existence errors, and its pool's
//!   password policy on a password reset;
//! - [`pool_policies`]: a password policy's absent flags read as `false`, as Cognito reads them;
//! - [`people`]: confirmed people made by the deployer (tests, `local-stack token`).
//!
//! moto signs every pool's tokens with one key that ships inside moto: only the local stack
//! may trust tokens checked against it (`apigateway::rest::cognito_authorizer`).

pub mod app_clients;
pub mod confirmation_codes;
pub mod people;
pub mod pool_policies;
pub mod public_operations;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::aws_errors::AwsError;
use crate::gate::body::buffered;

/// The `X-Amz-Target` prefix of the user pools API.
pub const TARGET_PREFIX: &str = "AWSCognitoIdentityProviderService.";

/// A Cognito error as the JSON 1.1 protocol carries it (`__type`, 400).
pub fn cognito_error(code: &str, message: &str) -> AwsError {
    AwsError::new("cognito-idp", StatusCode::BAD_REQUEST, code, message)
}

/// The error type of a JSON-protocol answer: `x-amzn-errortype` or the body's `__type`,
/// without a namespace.
pub fn error_type(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let named = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            let body: Value = serde_json::from_slice(body).ok()?;
            body["__type"].as_str().map(str::to_string)
        })?;
    let short = named.split(':').next().unwrap_or(&named); // `Type:http://...` form
    Some(short.rsplit('#').next().unwrap_or(short).to_string())
}

/// One user pools API request: its operation (from `X-Amz-Target`) and JSON body.
#[derive(Debug, Clone)]
pub struct CognitoCall {
    pub operation: String,
    pub body: Value,
}

impl CognitoCall {
    /// The call a buffered request makes (no operation: not a user pools API request).
    pub fn of(request: &Request) -> Self {
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix(TARGET_PREFIX))
            .unwrap_or_default() // not a user pools call: no operation
            .to_string();
        let body = serde_json::from_slice(&buffered(request).body).unwrap_or(Value::Null);
        Self { operation, body }
    }

    /// A string field of the body ("" when absent: Cognito's own validation answers that).
    pub fn field(&self, name: &str) -> &str {
        self.body[name].as_str().unwrap_or_default()
    }

    /// The user the call names, as the pool compares user names (the pool's sign-in name is a
    /// case-insensitive e-mail address).
    pub fn username(&self) -> String {
        self.field("Username").to_lowercase()
    }

    /// Cognito's answer to a `ClientId` the stack did not provision.
    pub fn unknown_client(&self) -> AwsError {
        let id = self.field("ClientId");
        cognito_error(
            "ResourceNotFoundException",
            &format!("User pool client {id} does not exist."),
        )
    }
}
