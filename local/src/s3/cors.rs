//! S3's CORS evaluation of a bucket's `CorsConfiguration`, which the gate applies in front of
//! the emulator (moto answers every origin), so a browser test proves the deployed rules: S3
//! answers a preflight itself ([`answer_preflight`]) and gives an actual request only the
//! headers a rule allows ([`response_headers`]).
//!
//! As S3 does it (docs.aws.amazon.com/AmazonS3/latest/API/RESTOPTIONSobject.html,
//! .../userguide/ManageCorsUsing.html, .../userguide/cors-troubleshooting.html): the first rule
//! whose `AllowedOrigins` match the `Origin` (each with at most one `*` wildcard), whose
//! `AllowedMethods` hold the (requested) method and whose `AllowedHeaders` cover every header of
//! `Access-Control-Request-Headers` (case-insensitive, `*` wildcards) wins. A preflight with no
//! match is 403 "CORSResponse: This CORS request is not allowed", on a bucket without CORS 403
//! "CORSResponse: CORS is not enabled for this bucket", without an `Origin` 400. An actual
//! request is served either way, with the CORS headers only when a rule matches.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::aws_errors::AwsError;
use crate::cloudformation::template::{items, whole_number};
use crate::gate::audit::refused;
use crate::gate::control::{ControlError, parse};
use crate::iam::actions::call_of;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    pub allowed_methods: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub exposed_headers: Vec<String>,
    pub max_age: Option<u64>,
}

/// A bucket's rules as the deployer registers them (an empty list: the bucket has no CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketCorsRecord {
    pub bucket: String,
    pub rules: Vec<CorsRule>,
}

/// The rules of an `AWS::S3::Bucket`'s `CorsConfiguration` (resolved properties).
pub fn rules_of(properties: &Value) -> Vec<CorsRule> {
    // Lists only: a rule's field written as one string is not CloudFormation's shape.
    let strings = |rule: &Value, field: &str| -> Vec<String> {
        let names = items(&rule[field]).iter().filter_map(Value::as_str);
        names.map(str::to_string).collect()
    };
    items(&properties["CorsConfiguration"]["CorsRules"])
        .iter()
        .map(|rule| CorsRule {
            allowed_methods: strings(rule, "AllowedMethods"),
            allowed_origins: strings(rule, "AllowedOrigins"),
            allowed_headers: strings(rule, "AllowedHeaders"),
            exposed_headers: strings(rule, "ExposedHeaders"),
            max_age: whole_number(&rule["MaxAge"]),
        })
        .collect()
}

/// `pattern` with at most one `*` matching any run of characters; `fold` compares without case.
fn wildcard(pattern: &str, value: &str, fold: bool) -> bool {
    let (pattern, value) = if fold {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, suffix)) => {
            value.len() >= prefix.len() + suffix.len()
                && value.starts_with(prefix)
                && value.ends_with(suffix)
        }
    }
}

impl CorsRule {
    fn matches(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard(o, origin, false))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|allowed| wildcard(allowed, h, true))
            })
    }

    /// The response headers of a request this rule allowed.
    fn headers(&self, origin: &str, requested_headers: &[String]) -> Vec<(String, String)> {
        let any_origin = self.allowed_origins.iter().any(|o| o == "*");
        let mut out = vec![
            (
                "access-control-allow-origin".to_string(),
                if any_origin {
                    "*".into()
                } else {
                    origin.to_string()
                },
            ),
            (
                "access-control-allow-methods".to_string(),
                self.allowed_methods.join(", "),
            ),
            (
                "vary".to_string(),
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".into(),
            ),
        ];
        if !any_origin {
            out.push(("access-control-allow-credentials".into(), "true".into()));
        }
        if !requested_headers.is_empty() {
            out.push((
                "access-control-allow-headers".into(),
                requested_headers.join(", "),
            ));
        }
        if !self.exposed_headers.is_empty() {
            out.push((
                "access-control-expose-headers".into(),
                self.exposed_headers.join(", "),
            ));
        }
        if let Some(age) = self.max_age {
            out.push(("access-control-max-age".into(), age.to_string()));
        }
        out
    }
}

/// S3's answer to `OPTIONS` on an object of a bucket with `rules`, or its refusal.
pub fn preflight(
    rules: &[CorsRule],
    origin: Option<&str>,
    method: Option<&str>,
    request_headers: Option<&str>,
) -> Result<Vec<(String, String)>, AwsError> {
    let forbidden =
        |message| AwsError::new("s3", StatusCode::FORBIDDEN, "AccessForbidden", message);
    let (Some(origin), Some(method)) = (origin, method) else {
        return Err(AwsError::new(
            "s3",
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        ));
    };
    if rules.is_empty() {
        return Err(forbidden(
            "CORSResponse: CORS is not enabled for this bucket.",
        ));
    }
    // No Access-Control-Request-Headers: no headers requested.
    let headers: Vec<String> = request_headers
        .unwrap_or_default()
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    rules
        .iter()
        .find(|rule| rule.matches(origin, method, &headers))
        .map(|rule| rule.headers(origin, &headers))
        .ok_or_else(|| forbidden("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."))
}

/// The CORS headers of an actual request with an `Origin` (none when no rule matches; S3 still
/// serves the request, and the browser then withholds the answer from the page).
pub fn actual(rules: &[CorsRule], origin: &str, method: &str) -> Vec<(String, String)> {
    rules
        .iter()
        .find(|rule| rule.matches(origin, method, &[]))
        .map(|rule| rule.headers(origin, &[]))
        .unwrap_or_default() // no rule matches: no CORS headers
}

/// Every provisioned bucket's CORS rules, by bucket name (empty: CORS not enabled).
#[derive(Default)]
pub struct BucketCors {
    rules: RwLock<HashMap<String, Vec<CorsRule>>>,
}

impl BucketCors {
    /// The rules of the bucket a path-style S3 request names, if it is a provisioned bucket.
    fn of_request(&self, request: &Request) -> Option<Vec<CorsRule>> {
        let bucket = request
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()?;
        self.rules.read().expect("bucket cors").get(bucket).cloned()
    }
}

/// `POST /_local/iam/bucket-cors`: a bucket and its rules.
pub async fn register(
    State(cors): State<Arc<BucketCors>>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let record: BucketCorsRecord = parse(&body)?;
    cors.rules
        .write()
        .expect("bucket cors")
        .insert(record.bucket, record.rules);
    Ok(StatusCode::NO_CONTENT)
}

/// Layer: S3 answers a preflight on a provisioned bucket from its rules (a preflight is never
/// authenticated: a presigned URL's query does not make it a signed request).
pub async fn answer_preflight(
    State(cors): State<Arc<BucketCors>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::OPTIONS {
        return next.run(request).await;
    }
    let Some(rules) = cors.of_request(&request) else {
        return next.run(request).await;
    };
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    match preflight(
        &rules,
        header("origin"),
        header("access-control-request-method"),
        header("access-control-request-headers"),
    ) {
        Ok(allowed) => {
            let mut response = StatusCode::OK.into_response();
            add_headers(&mut response, &allowed);
            response
        }
        Err(refusal) => {
            refused(&format!("S3 CORS preflight refused: {}", refusal.message));
            refusal.into_response()
        }
    }
}

/// Layer: an S3 answer to a request from a page (`Origin`) carries what the bucket's rules say
/// instead of moto's own CORS headers (none when no rule matches, as S3).
pub async fn response_headers(
    State(cors): State<Arc<BucketCors>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request
        .headers()
        .get("origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let rules = cors.of_request(&request);
    let method = request.method().clone();
    let is_s3 = call_of(&request).service == "s3";
    let mut response = next.run(request).await;
    let (Some(origin), Some(rules), true) = (origin, rules, is_s3) else {
        return response;
    };
    let stale: Vec<_> = response
        .headers()
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in stale {
        response.headers_mut().remove(name);
    }
    add_headers(&mut response, &actual(&rules, &origin, method.as_str()));
    response
}

fn add_headers(response: &mut Response, headers: &[(String, String)]) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn uploads(origin: &str) -> Vec<CorsRule> {
        rules_of(&json!({"CorsConfiguration": {"CorsRules": [{
            "AllowedMethods": ["PUT"],
            "AllowedOrigins": [origin],
            "AllowedHeaders": ["content-type", "content-length", "x-amz-meta-*"],
            "MaxAge": 3000
        }]}}))
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_preflight_the_rule_covers_is_allowed() {
        let rules = uploads("https://app.example.com");
        let headers = preflight(
            &rules,
            Some("https://app.example.com"),
            Some("PUT"),
            Some("Content-Type, x-amz-meta-correlation-id"),
        )
        .unwrap();
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(header(&headers, "access-control-max-age"), Some("3000"));
        assert_eq!(
            header(&headers, "access-control-allow-headers"),
            Some("content-type, x-amz-meta-correlation-id")
        );
        let any = preflight(&uploads("*"), Some("https://x"), Some("PUT"), None).unwrap();
        assert_eq!(header(&any, "access-control-allow-origin"), Some("*"));
        assert_eq!(header(&any, "access-control-allow-credentials"), None);
        let sub = uploads("https://*.example.com");
        assert!(preflight(&sub, Some("https://a.example.com"), Some("PUT"), None).is_ok());
    }

    #[test]
    fn what_no_rule_covers_is_refused() {
        let rules = uploads("https://app.example.com");
        for (origin, method, headers) in [
            ("https://evil.example", "PUT", None),
            ("https://app.example.com", "DELETE", None),
            (
                "https://app.example.com",
                "PUT",
                Some("content-type, x-evil"),
            ),
            ("http://app.example.com", "PUT", None),
        ] {
            let refused = preflight(&rules, Some(origin), Some(method), headers).unwrap_err();
            assert_eq!(
                (refused.status, refused.code.as_str()),
                (StatusCode::FORBIDDEN, "AccessForbidden"),
                "{origin} {method}"
            );
        }
        assert_eq!(
            preflight(&[], Some("https://x"), Some("PUT"), None)
                .unwrap_err()
                .message,
            "CORSResponse: CORS is not enabled for this bucket."
        );
        assert_eq!(
            preflight(&rules, None, Some("PUT"), None)
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
        assert!(actual(&rules, "https://evil.example", "PUT").is_empty());
        assert!(!actual(&rules, "https://app.example.com", "PUT").is_empty());
    }
}
