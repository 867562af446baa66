//! Request parsing and response shaping for every API Gateway (REST) route.
//!
//! Every answer is JSON with CORS headers; every failure is an [`ApiError`] rendered as
//! `{"error": {"code", "message"}}`. Handlers return `Result<Response, ApiError>` and call
//! [`Responder::finish`] once, so no route can forget the headers or leak a panic-shaped 500.

use http::StatusCode;
use http::header::{self, HeaderValue};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Largest JSON body any route accepts. API Gateway allows 10 MB; nothing here needs more than a
/// few KiB, and a small cap keeps memory bounded and abuse cheap to reject.
pub const MAX_JSON_BODY_BYTES: usize = 64 * 1024;

const ALLOW_HEADERS: &str = "Content-Type,X-Api-Key,Idempotency-Key,Authorization,X-Correlation-Id";
/// What a page may read of a response besides the CORS-safelisted headers.
const EXPOSE_HEADERS: &str = "X-Correlation-Id,Idempotent-Replayed,Retry-After";
const ALLOW_METHODS: &str = "GET,POST,PUT,DELETE,OPTIONS";

/// Adds CORS headers and renders results. Built once per process from `CORS_ALLOW_ORIGIN`.
#[derive(Debug, Clone)]
pub struct Responder {
    allow_origin: HeaderValue,
}

impl Responder {
    /// From `CORS_ALLOW_ORIGIN` (template parameter `CorsAllowOrigin`), `*` when unset.
    pub fn from_env(env: &dyn crate::config::EnvSource) -> Self {
        Self::new(&crate::config::optional(env, "CORS_ALLOW_ORIGIN").unwrap_or_else(|| "*".into()))
    }

    pub fn new(allow_origin: &str) -> Self {
        let allow_origin =
            HeaderValue::from_str(allow_origin).unwrap_or(HeaderValue::from_static("*"));
        Self { allow_origin }
    }

    /// One REST request served: a CORS preflight is answered here, any other request goes to
    /// `route` with its method and path segments, and every outcome is shaped by [`Self::finish`].
    pub async fn serve(
        &self,
        req: &Request,
        route: impl AsyncFnOnce(&Route) -> Result<Response<Body>, ApiError>,
    ) -> Response<Body> {
        let outcome = match Route::of(req) {
            Some(found) => route(&found).await,
            None => Ok(preflight()),
        };
        self.finish(outcome)
    }

    /// Renders a handler's outcome: the response as is, or the error as JSON; CORS on both.
    pub fn finish(&self, outcome: Result<Response<Body>, ApiError>) -> Response<Body> {
        let mut response = outcome.unwrap_or_else(|err| error_response(&err));
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin.clone(),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(ALLOW_HEADERS),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        response
    }
}

impl Default for Responder {
    fn default() -> Self {
        Self::new("*")
    }
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response<Body> {
    match serde_json::to_string(body) {
        Ok(text) => Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::Text(text))
            .expect("static response parts are valid"),
        Err(err) => {
            tracing::error!(error = %err, "response serialisation failed");
            error_response(&ApiError::internal())
        }
    }
}

pub fn no_content() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::Empty)
        .expect("static response parts are valid")
}

/// The answer to a CORS preflight; the headers themselves are added by [`Responder::finish`].
pub fn preflight() -> Response<Body> {
    no_content()
}

pub fn error_response(err: &ApiError) -> Response<Body> {
    let text = serde_json::to_string(&err.body()).unwrap_or_else(|_| {
        r#"{"error":{"code":"internal_error","message":"internal error"}}"#.into()
    });
    let mut builder = Response::builder()
        .status(err.status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(allow) = err.allow {
        builder = builder.header(header::ALLOW, allow);
    }
    if err.status == http::StatusCode::SERVICE_UNAVAILABLE {
        // A dependency is throttling or failing: safe to retry (creates carry their
        // Idempotency-Key), after a second.
        builder = builder.header(header::RETRY_AFTER, "1");
    }
    builder
        .body(Body::Text(text))
        .expect("static response parts are valid")
}

/// Parses a JSON body into `T`, answering every way it can go wrong with a 4xx:
/// missing body, non-JSON content type, oversize, malformed JSON, and wrong shapes (with the
/// offending field's path in the message).
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if let Some(content_type) = req.headers().get(header::CONTENT_TYPE) {
        let is_json = content_type
            .to_str()
            .map(|v| {
                let mime = v
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::unsupported_media_type(
                "send the body as application/json",
            ));
        }
    }
    let bytes: &[u8] = req.body().as_ref();
    parse_json_bytes(bytes)
}

/// The body-parsing rules of [`parse_json`] on raw bytes (used by non-HTTP routes too).
pub fn parse_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > MAX_JSON_BODY_BYTES {
        return Err(ApiError::payload_too_large(MAX_JSON_BODY_BYTES));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json(
            "request body is empty; send a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        json_error(&path, err.into_inner())
    })?;
    de.end().map_err(|err| json_error(".", err))?;
    Ok(value)
}

/// Syntax problems are `malformed_json`; well-formed JSON of the wrong shape is a validation
/// error naming the field.
fn json_error(path: &str, err: serde_json::Error) -> ApiError {
    match err.classify() {
        serde_json::error::Category::Data => {
            let detail = strip_position(&err.to_string());
            if path == "." || path.is_empty() {
                ApiError::validation(detail)
            } else {
                ApiError::validation(format!("{path}: {detail}"))
            }
        }
        _ => ApiError::malformed_json(format!("body is not valid JSON: {err}")),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_string(),
        None => message.to_string(),
    }
}

/// A single query-string value; `None` when absent. Repeated keys are rejected so that a
/// request never silently means something other than what the client sent.
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let params = req.query_string_parameters();
    match params.all(name) {
        None => Ok(None),
        Some(values) if values.len() == 1 => Ok(Some(values[0].to_string())),
        Some(_) => Err(ApiError::validation(format!(
            "query parameter `{name}` given more than once"
        ))),
    }
}

/// `limit` and `cursor` of a paged listing that takes no other query parameter.
pub fn page_query(req: &Request) -> Result<(Option<String>, Option<String>), ApiError> {
    reject_unknown_query_params(req, &["limit", "cursor"])?;
    Ok((query_param(req, "limit")?, query_param(req, "cursor")?))
}

/// Rejects query parameters a route does not know, naming the first one.
pub fn reject_unknown_query_params(req: &Request, known: &[&str]) -> Result<(), ApiError> {
    let params = req.query_string_parameters();
    for (key, _) in params.iter() {
        if !known.contains(&key) {
            return Err(ApiError::validation(format!(
                "unknown query parameter `{key}`; allowed: {}",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

pub fn header_str<'a>(req: &'a Request, name: &str) -> Result<Option<&'a str>, ApiError> {
    match req.headers().get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(Some)
            .map_err(|_| ApiError::validation(format!("header `{name}` must be visible ASCII"))),
    }
}

/// A REST request's method and stage-less, percent-decoded path segments.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: http::Method,
    segments: Vec<String>,
}

impl Route {
    /// `None` for a CORS preflight (OPTIONS), which every route answers with [`preflight`].
    pub fn of(req: &Request) -> Option<Self> {
        (req.method() != http::Method::OPTIONS).then(|| Self {
            method: req.method().clone(),
            segments: path_segments(req),
        })
    }

    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// The connection id of a WebSocket API event (`None` for REST events).
pub fn websocket_connection_id(req: &Request) -> Option<String> {
    match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::WebSocket(ctx)) => ctx.connection_id.clone(),
        _ => None,
    }
}

/// The request path without the API Gateway stage, split into non-empty segments.
pub fn path_segments(req: &Request) -> Vec<String> {
    req.raw_http_path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect()
}

fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        count: u32,
    }

    #[test]
    fn malformed_json_is_400_malformed() {
        let err = parse_json_bytes::<Sample>(b"{\"name\": ").unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.code, "malformed_json");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let err = parse_json_bytes::<Sample>(br#"{"name": 5, "count": 1}"#).unwrap_err();
        assert_eq!(err.code, "validation_error");
        assert!(
            err.message.starts_with("name: invalid type"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_fields_and_trailing_garbage_are_rejected() {
        let err =
            parse_json_bytes::<Sample>(br#"{"name": "a", "count": 1, "id": "x"}"#).unwrap_err();
        assert_eq!(err.code, "validation_error");
        assert!(
            err.message.contains("unknown field `id`"),
            "{}",
            err.message
        );
        let err = parse_json_bytes::<Sample>(br#"{"name": "a", "count": 1} x"#).unwrap_err();
        assert_eq!(err.code, "malformed_json");
    }

    #[test]
    fn empty_and_oversize_bodies_are_rejected() {
        assert_eq!(
            parse_json_bytes::<Sample>(b"  ").unwrap_err().code,
            "malformed_json"
        );
        let big = vec![b' '; MAX_JSON_BODY_BYTES + 1];
        assert_eq!(
            parse_json_bytes::<Sample>(&big).unwrap_err().status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    #[test]
    fn percent_decoding_of_path_segments() {
        assert_eq!(percent_decode("a%20b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }
}
