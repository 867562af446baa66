//! The local AWS emulator (moto server, started by the Makefile) and SDK configuration for it.

use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, Region};

pub const REGION: &str = "us-east-1";
/// The account id the emulator uses for every ARN.
pub const ACCOUNT_ID: &str = "123456789012";

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error(
        "AWS_ENDPOINT_URL is not set: run `make test` (it starts the emulator), or `make emulator` and export the AWS_ENDPOINT_URL it prints"
    )]
    NotConfigured,
    #[error(
        "the AWS emulator at {0} is not reachable: run `make test`, or start it with `make emulator`"
    )]
    Unreachable(String),
}

/// The emulator endpoint from `AWS_ENDPOINT_URL`, checked to answer within two seconds, so a
/// missing emulator fails fast with an instruction instead of hanging in SDK retries.
pub async fn endpoint_from_env() -> Result<String, EmulatorError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(EmulatorError::NotConfigured)?;
    let authority = endpoint
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .split('/')
        .next()
        .unwrap_or_default() // split always yields a first piece: the authority
        .to_string();
    let connect = tokio::net::TcpStream::connect(authority.clone());
    match tokio::time::timeout(Duration::from_secs(2), connect).await {
        Ok(Ok(_)) => Ok(endpoint),
        _ => Err(EmulatorError::Unreachable(endpoint)),
    }
}

/// An SDK error with its sources, as the SDKs' `DisplayErrorContext` writes it (every SDK
/// re-exports the same type, so it serves any client's errors).
pub fn sdk_error(e: impl std::error::Error) -> String {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string()
}

/// SDK configuration that sends every client to `endpoint` with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "local-emulator",
        ))
        .load()
        .await
}
