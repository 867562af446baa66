//! Who signed a request, from its SigV4 credential scope
//! (docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-signing-elements.html): the access
//! key and the service, from the `Authorization` header or a presigned URL's
//! `X-Amz-Credential`. Signatures are attributed by key, not recomputed.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::DEPLOYER_KEY;
use crate::aws_errors::AwsError;
use crate::gate::audit::refused;
use crate::gate::body::buffered;
use crate::gate::proxy::Proxy;

/// The signer of a request: its access key and the service of its credential scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key: String,
    pub service: String,
}

/// Layer: names the [`Caller`]. An unsigned CORS preflight goes to the emulator (preflights
/// carry no credentials, in AWS too); any other unsigned request is refused.
pub async fn identify_caller(
    State(proxy): State<Proxy>,
    mut request: Request,
    next: Next,
) -> Response {
    let buffered = buffered(&request);
    match credential_scope(request.headers(), &buffered.query) {
        Some((access_key, service)) => {
            request.extensions_mut().insert(Caller {
                access_key,
                service,
            });
            next.run(request).await
        }
        None if request.method() == Method::OPTIONS => proxy.forward(request).await,
        None => {
            refused(&format!(
                "unsigned {} {}",
                request.method(),
                request.uri().path()
            ));
            AwsError::access_denied("s3", "Anonymous requests are not allowed by this stack")
                .into_response()
        }
    }
}

/// Layer, a branch: the deployer (CloudFormation, the operator, the tests' own assertions)
/// acts with administrator rights and goes straight to the emulator.
pub async fn pass_deployer(State(proxy): State<Proxy>, request: Request, next: Next) -> Response {
    if caller(&request).access_key == DEPLOYER_KEY {
        return proxy.forward(request).await;
    }
    next.run(request).await
}

pub fn caller(request: &Request) -> &Caller {
    request
        .extensions()
        .get::<Caller>()
        .expect("iam::sigv4::identify_caller runs first")
}

/// The principal's access key id and the service from a SigV4 `Authorization` header or a
/// presigned URL's `X-Amz-Credential`.
pub fn credential_scope(
    headers: &http::HeaderMap,
    query: &[(String, String)],
) -> Option<(String, String)> {
    // Exactly the shape SigV4 defines (and moto routes on): `AWS4-HMAC-SHA256
    // Credential=<scope>, SignedHeaders=..., Signature=...`; anything else is not attributed.
    let header = headers.get(http::header::AUTHORIZATION);
    let presigned: Vec<&String> = query
        .iter()
        .filter(|(k, _)| k == "X-Amz-Credential")
        .map(|(_, v)| v)
        .collect();
    let credential = match (header, presigned.as_slice()) {
        (Some(value), []) => value
            .to_str()
            .ok()?
            .strip_prefix("AWS4-HMAC-SHA256 ")?
            .split(',')
            .next()?
            .trim()
            .strip_prefix("Credential=")?
            .to_string(),
        (None, [one]) => one.to_string(),
        _ => return None,
    };
    // AKID/date/region/service/aws4_request
    let parts: Vec<&str> = credential.split('/').collect();
    match parts.as_slice() {
        [key, _date, _region, service, _] => Some((key.to_string(), service.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn the_credential_scope_names_the_key_and_service() {
        let h = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=KEY1/20261201/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=abc",
        )]);
        assert_eq!(
            credential_scope(&h, &[]),
            Some(("KEY1".into(), "dynamodb".into()))
        );
        let q = vec![(
            "X-Amz-Credential".to_string(),
            "KEY2/20261201/us-east-1/s3/aws4_request".to_string(),
        )];
        assert_eq!(
            credential_scope(&http::HeaderMap::new(), &q),
            Some(("KEY2".into(), "s3".into()))
        );
        assert_eq!(credential_scope(&http::HeaderMap::new(), &[]), None);
    }

    #[test]
    fn two_credentials_or_another_shape_are_attributed_to_nobody() {
        let two = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 K/d/us-east-1/dynamodb/aws4_request Credential=K/d/us-east-1/sns/aws4_request",
        )]);
        assert_eq!(credential_scope(&two, &[]), None);
        let both = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=K/d/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x",
        )]);
        let q = vec![(
            "X-Amz-Credential".to_string(),
            "L/d/us-east-1/s3/aws4_request".to_string(),
        )];
        assert_eq!(credential_scope(&both, &q), None);
    }
}
