//! The user pools operations a person calls with no AWS credentials
//! (docs.aws.amazon.com/cognito/latest/developerguide/user-pools-API-operations.html,
//! "Authorization models for API and SDK authentication"): the unauthenticated ones (sign-up,
//! confirmation, sign-in, password reset), the ones authorised by the person's own access token
//! (their profile, password and sign-out), and a pool's signing keys
//! (`/{pool}/.well-known/jwks.json`, .../amazon-cognito-user-pools-using-tokens-verifying-a-jwt.html).
//! Cognito evaluates no IAM policy for them, signed or not. Every other Cognito operation (the
//! `Admin*` ones, pool and client management) is IAM-authorised like any AWS call, and unsigned
//! it is refused.
//!
//! A page calls these operations from its own origin: Cognito's API has no CORS setting and
//! answers browsers from any origin (what Amplify's in-page sign-in relies on), so its preflight
//! (`OPTIONS /` asking for `x-amz-target`) is answered here and every answer on this road
//! carries `Access-Control-Allow-Origin: *`. No credentials ride on it (no cookies).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt;

use super::CognitoCall;
use super::app_clients::AppClients;

/// The operations that pass without IAM, as the page above lists them (those the app uses and
/// their siblings; moto lacks some, and answers them with an error).
pub const PUBLIC_OPERATIONS: &[&str] = &[
    "SignUp",
    "ConfirmSignUp",
    "ResendConfirmationCode",
    "InitiateAuth",
    "RespondToAuthChallenge",
    "ForgotPassword",
    "ConfirmForgotPassword",
    "RevokeToken",
    "GetUser",
    "ChangePassword",
    "UpdateUserAttributes",
    "GlobalSignOut",
];

/// Whether `request` is one of Cognito's public operations or the published keys of a pool the
/// stack provisioned (only those: the same path could name an object in a bucket).
pub fn is_public(request: &Request, clients: &AppClients) -> bool {
    let path: Vec<&str> = request.uri().path().trim_matches('/').split('/').collect();
    let key_set = request.method() == Method::GET
        && match path.as_slice() {
            [pool, ".well-known", "jwks.json" | "openid-configuration"] => clients.knows_pool(pool),
            _ => false,
        };
    key_set || PUBLIC_OPERATIONS.contains(&CognitoCall::of(request).operation.as_str())
}

/// The public road and what it needs to recognise its requests.
#[derive(Clone)]
pub struct PublicRoad {
    /// The confirmation codes and sign-in rules, then the emulator.
    pub road: Router,
    pub clients: Arc<AppClients>,
}

/// Layer, a branch: a public Cognito request takes the user pool's own road; anything else goes
/// on down the pipeline, where an unsigned request is refused.
pub async fn branch(State(public): State<PublicRoad>, request: Request, next: Next) -> Response {
    if is_preflight(&request) {
        return preflight_answer(&request);
    }
    if !is_public(&request, &public.clients) {
        return next.run(request).await;
    }
    let mut response = match public.road.oneshot(request).await {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    }
    .into_response();
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// A page's preflight for a user pools API call: `OPTIONS /` asking to send `x-amz-target`.
fn is_preflight(request: &Request) -> bool {
    let asks_for_target = request
        .headers()
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|asked| {
            asked
                .split(',')
                .any(|h| h.trim().eq_ignore_ascii_case("x-amz-target"))
        });
    request.method() == Method::OPTIONS && request.uri().path() == "/" && asks_for_target
}

/// Any origin may POST with the headers it asked for (a day's cache of the answer).
fn preflight_answer(request: &Request) -> Response {
    let asked = request
        .headers()
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .cloned();
    let mut response = axum::http::StatusCode::OK.into_response();
    let headers = response.headers_mut();
    headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    headers.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    if let Some(asked) = asked {
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked);
    }
    headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn buffered(request: axum::http::Request<Body>) -> Request {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(crate::gate::body::BufferedRequest {
            body: axum::body::Bytes::new(),
            query: Vec::new(),
        });
        Request::from_parts(parts, body)
    }

    fn target(operation: &str) -> Request {
        buffered(
            axum::http::Request::post("/")
                .header(
                    "x-amz-target",
                    format!("{}{operation}", super::super::TARGET_PREFIX),
                )
                .body(Body::empty())
                .unwrap(),
        )
    }

    #[test]
    fn only_the_public_operations_and_key_sets_pass_unsigned() {
        let clients = AppClients::default();
        clients.insert(crate::cognito::app_clients::tests::record(
            "c1",
            "us-east-1_abc",
        ));
        let is_public = |request: Request| is_public(&request, &clients);
        for (operation, public) in [
            ("SignUp", true),
            ("ConfirmSignUp", true),
            ("InitiateAuth", true),
            ("GetUser", true),
            ("GlobalSignOut", true),
            ("AdminDeleteUser", false),
            ("AdminConfirmSignUp", false),
            ("CreateUserPool", false),
            ("ListUsers", false),
        ] {
            assert_eq!(is_public(target(operation)), public, "{operation}");
        }
        let get =
            |path: &str| buffered(axum::http::Request::get(path).body(Body::empty()).unwrap());
        assert!(is_public(get("/us-east-1_abc/.well-known/jwks.json")));
        assert!(is_public(get(
            "/us-east-1_abc/.well-known/openid-configuration"
        )));
        assert!(!is_public(get("/us-east-1_abc/.well-known/other")));
        // Not a pool of the stack: maybe an object's key.
        assert!(!is_public(get("/us-east-1_zzz/.well-known/jwks.json")));
        assert!(!is_public(get(
            "/bucket/us-east-1_abc/.well-known/jwks.json"
        )));
        let dynamodb = axum::http::Request::post("/")
            .header("x-amz-target", "DynamoDB_20120810.SignUp")
            .body(Body::empty())
            .unwrap();
        assert!(!is_public(buffered(dynamodb)));
    }

    #[test]
    fn only_a_preflight_for_a_user_pools_call_is_answered_as_cognitos() {
        let preflight = |path: &str, asked: &str| {
            axum::http::Request::builder()
                .method(Method::OPTIONS)
                .uri(path)
                .header(ACCESS_CONTROL_REQUEST_HEADERS, asked)
                .body(Body::empty())
                .unwrap()
        };
        let cognito = preflight("/", "content-type, X-Amz-Target");
        assert!(is_preflight(&cognito));
        let answer = preflight_answer(&cognito);
        assert_eq!(answer.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(
            answer.headers()[ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type, X-Amz-Target"
        );
        // A bucket's preflight (S3 answers those from the bucket's rules), or another API's.
        assert!(!is_preflight(&preflight(
            "/uploads/key.jpg",
            "x-amz-target"
        )));
        assert!(!is_preflight(&preflight("/", "content-type")));
    }
}
