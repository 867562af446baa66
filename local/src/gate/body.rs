//! The request read once: the gate must see the whole body to name the IAM action and resource
//! (a `TableName`, a `QueueUrl`), so its outermost layer buffers it and hands it on in an
//! extension (s3s reads the bodies it must parse in full the same way).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The largest body the gate buffers (S3's single PUT goes to 5 GB; this stack's uploads are
/// capped far below this by their presigned `content-length`).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The request's body and query, read once.
#[derive(Debug, Clone)]
pub struct BufferedRequest {
    pub body: Bytes,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
}

impl BufferedRequest {
    /// A query parameter's first value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Layer: buffers the body (413 past [`MAX_BODY`]) and decodes the query into a
/// [`BufferedRequest`] extension; the body stays readable for the routes. An answer to HEAD
/// carries no body, whoever made it (an S3 error to `HeadObject` is a bare status).
pub async fn buffer(request: Request, next: Next) -> Response {
    let head = request.method() == axum::http::Method::HEAD;
    let (mut parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default(); // no query string: no parameters
    parts.extensions.insert(BufferedRequest {
        body: body.clone(),
        query,
    });
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if head {
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    response
}

pub fn buffered(request: &Request) -> &BufferedRequest {
    request
        .extensions()
        .get::<BufferedRequest>()
        .expect("gate::body::buffer is the outermost layer")
}

/// A response's body read back (the emulator's answers are already in memory), for layers that
/// learn from what the emulator said.
pub async fn read_response(response: Response) -> (axum::http::response::Parts, Bytes) {
    let (parts, body) = response.into_parts();
    // An answer that is no longer readable (a cut connection) has nothing to learn from.
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default(); // unreadable: nothing to learn
    (parts, bytes)
}
