//! The AWS SDK configuration each function builds once, before its first `next`.
//!
//! Same as `aws_config::load_from_env()` except for two costs it keeps out of cold start
//! (measured in docs/benchmarks.md, `make bench-cold`):
//! - **TLS trust.** The SDK's default client reads the whole system CA store while the first
//!   client is built (on Debian: the bundle plus every file in /etc/ssl/certs, ~85% of a
//!   function's init instructions). Functions only talk to AWS endpoints, whose certificates all
//!   chain to the Amazon Trust Services roots, so those five roots are the trust store. Setting
//!   `SSL_CERT_FILE` or `SSL_CERT_DIR` (a custom CA, a TLS-inspecting proxy, an endpoint outside
//!   AWS) switches back to the system store, which honours those variables.
//! - **Credentials.** Lambda hands a function its role's credentials in environment variables.
//!   When they are there, read them directly instead of building the default provider chain,
//!   whose web-identity link constructs a whole STS client. Without them (a developer's profile
//!   under `cargo lambda watch`) the default chain runs as usual.
//!
//! And one setting the default lacks: timeouts well below every function's own (10 s and up).
//! Without them a hung connection holds the invocation until Lambda kills it (a 504 at the API,
//! a retried batch); with them the attempt fails fast, the SDK retries it, and what still fails
//! is a 503 the client can retry ([`crate::error`]).

use std::time::Duration;

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::rustls_provider::CryptoMode;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder, HttpClientError};

use crate::config::{EnvSource, optional};

/// PEM of the Amazon Trust Services roots (see the file's header).
const AMAZON_TRUST_SERVICES_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// Which certificate authorities the functions' HTTPS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// The roots every AWS endpoint chains to; nothing to read from disk.
    AmazonTrustServices,
    /// The system store, as the SDK loads it by default (honours SSL_CERT_FILE / SSL_CERT_DIR).
    System,
}

impl TrustRoots {
    pub fn from_env(env: &dyn EnvSource) -> Self {
        if optional(env, "SSL_CERT_FILE").is_some() || optional(env, "SSL_CERT_DIR").is_some() {
            TrustRoots::System
        } else {
            TrustRoots::AmazonTrustServices
        }
    }

    fn trust_store(self) -> TrustStore {
        match self {
            TrustRoots::AmazonTrustServices => TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(AMAZON_TRUST_SERVICES_ROOTS),
            TrustRoots::System => TrustStore::default(),
        }
    }
}

/// Whether Lambda (or whoever started the process) put credentials in the environment.
fn credentials_in_env(env: &dyn EnvSource) -> bool {
    optional(env, "AWS_ACCESS_KEY_ID").is_some() && optional(env, "AWS_SECRET_ACCESS_KEY").is_some()
}

/// The SDK's default HTTPS client (rustls with aws-lc, proxy settings from the environment),
/// with `roots` as its trust store.
fn https_client(roots: TrustRoots) -> Result<SharedHttpClient, HttpClientError> {
    let tls = TlsContext::builder()
        .with_trust_store(roots.trust_store())
        .build()?;
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
                .tls_context(tls.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        }),
    )
}

/// The SDK configuration for a function process: region, endpoints and retry settings from the
/// environment as `aws_config::load_from_env()` reads them, plus the two differences above.
/// `env` decides the trust store and the credentials path; the SDK itself reads the process
/// environment.
pub async fn load(env: &dyn EnvSource) -> Result<SdkConfig, HttpClientError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client(TrustRoots::from_env(env))?)
        .timeout_config(timeouts());
    if credentials_in_env(env) {
        loader = loader.credentials_provider(EnvironmentVariableCredentialsProvider::new());
    }
    Ok(loader.load().await)
}

/// Connecting takes at most 2 s and the first byte of an answer at most 5 s, per attempt (a
/// long poll sets its own, see approval-worker's `ActivityPoller`).
pub fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(5))
        .build()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::config::env_of;

    #[test]
    fn amazon_roots_by_default_system_store_when_a_ca_location_is_set() {
        assert_eq!(
            TrustRoots::from_env(&env_of(&[])),
            TrustRoots::AmazonTrustServices
        );
        assert_eq!(
            TrustRoots::from_env(&env_of(&[("SSL_CERT_FILE", "")])),
            TrustRoots::AmazonTrustServices
        );
        assert_eq!(
            TrustRoots::from_env(&env_of(&[(
                "SSL_CERT_FILE",
                "/etc/pki/tls/certs/ca-bundle.crt"
            )])),
            TrustRoots::System
        );
        assert_eq!(
            TrustRoots::from_env(&env_of(&[("SSL_CERT_DIR", "/etc/ssl/certs")])),
            TrustRoots::System
        );
    }

    #[tokio::test]
    async fn functions_get_timeouts_below_their_own() {
        let config = load(&env_of(&[("AWS_REGION", "us-east-1")])).await.unwrap();
        let timeouts = config.timeout_config().expect("set");
        assert_eq!(timeouts.connect_timeout(), Some(Duration::from_secs(2)));
        assert_eq!(timeouts.read_timeout(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn environment_credentials_need_both_halves() {
        assert!(credentials_in_env(&env_of(&[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ])));
        assert!(!credentials_in_env(&env_of(&[(
            "AWS_ACCESS_KEY_ID",
            "AKIDEXAMPLE"
        )])));
        assert!(!credentials_in_env(&env_of(&[])));
    }

    /// SHA-256 of each certificate's DER, in file order.
    fn pem_fingerprints(pem: &str) -> Vec<String> {
        pem.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body: String = block
                    .split("-----END CERTIFICATE-----")
                    .next()
                    .unwrap()
                    .split_whitespace()
                    .collect();
                let der = base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .unwrap();
                Sha256::digest(der)
                    .iter()
                    .map(|b| format!("{b:02X}"))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn the_bundled_roots_are_exactly_the_amazon_trust_services_roots() {
        // Pinned here, so an edited or substituted file fails this test.
        let expected = [
            "8ECDE6884F3D87B1125BA31AC3FCB13D7016DE7F57CC904FE1CB97C6AE98196E", // Root CA 1
            "1BA5B2AA8C65401A82960118F80BEC4F62304D83CEC4713A19C39C011EA46DB4", // Root CA 2
            "18CE6CFE7BF14E60B2E347B8DFE868CB31D02EBB3ADA271569F50343B46DB3A4", // Root CA 3
            "E35D28419ED02025CFA69038CD623962458DA5C695FBDEA3C22B0BFB25897092", // Root CA 4
            "568D6905A2C88708A4B3025190EDCFEDB1974A606A13C6E5290FCB2AE63EDAB5", // Starfield G2
        ];
        let pem = std::str::from_utf8(AMAZON_TRUST_SERVICES_ROOTS).unwrap();
        assert_eq!(pem_fingerprints(pem), expected);
    }

    #[tokio::test]
    async fn building_a_client_loads_the_amazon_roots_into_rustls() {
        // The SDK builds the TLS connector while constructing a client and panics on a
        // certificate rustls cannot parse, so this fails if the bundled PEM is unusable.
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "AKIDEXAMPLE",
                "secret",
                None,
                None,
                "test",
            ))
            .http_client(https_client(TrustRoots::AmazonTrustServices).unwrap())
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        assert!(client.config().http_client().is_some());
    }
}
