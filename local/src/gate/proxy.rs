//! Forwarding to the emulator: what no layer answered goes to moto as it came (the Host header
//! stays the gate's: moto builds queue URLs and S3 hosts from it), and moto's answer comes back
//! as it was.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::body::buffered;

/// The emulator behind the gate.
#[derive(Clone)]
pub struct Proxy(Arc<Inner>);

struct Inner {
    emulator: String,
    http: reqwest::Client,
}

impl Proxy {
    pub fn new(emulator: &str) -> Self {
        Self(Arc::new(Inner {
            emulator: emulator.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("HTTP client"),
        }))
    }

    /// The emulator's URL (for the gate's own SDK calls as the deployer).
    pub fn emulator(&self) -> &str {
        &self.0.emulator
    }

    /// Sends `request` (buffered by [`super::body::buffer`]) to the emulator; 502 when it does
    /// not answer.
    pub async fn forward(&self, request: Request) -> Response {
        let body = buffered(&request).body.clone();
        let (parts, _) = request.into_parts();
        match self.send(&parts, body).await {
            Ok((status, headers, bytes)) => build_response(status, &headers, bytes),
            Err(why) => (StatusCode::BAD_GATEWAY, why).into_response(),
        }
    }

    async fn send(
        &self,
        request: &axum::http::request::Parts,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes), String> {
        let path_and_query = request.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut forwarded = self.0.http.request(
            request.method.clone(),
            format!("{}{path_and_query}", self.0.emulator),
        );
        for (name, value) in &request.headers {
            if name == header::CONNECTION || name == header::CONTENT_LENGTH {
                continue;
            }
            forwarded = forwarded.header(name, value);
        }
        let answer = forwarded
            .body(body)
            .send()
            .await
            .map_err(|e| format!("the emulator did not answer: {e}"))?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| format!("the emulator's answer was cut off: {e}"))?;
        Ok((status, headers, bytes))
    }
}

/// The pipeline's innermost service: what every layer let through goes to the emulator.
pub async fn to_emulator(State(proxy): State<Proxy>, request: Request) -> Response {
    proxy.forward(request).await
}

fn build_response(status: StatusCode, headers: &HeaderMap, bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in headers {
        if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            continue;
        }
        response.headers_mut().append(name, value.clone());
    }
    response
}
