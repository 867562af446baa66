//! A local stand-in for API Gateway's `@connections` management API, reached over real HTTP with
//! real SigV4-signed requests from the SDK. It records each post, answers 410 Gone or 500 for
//! chosen connection ids, can be slow, and tracks how many posts were in flight at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct Post {
    pub connection_id: String,
    pub body: Vec<u8>,
    /// The request carried a SigV4 `Authorization` header.
    pub signed: bool,
}

#[derive(Default)]
struct Inner {
    posts: Vec<Post>,
    gone: HashSet<String>,
    broken: HashSet<String>,
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    latency: Duration,
}

pub struct FakeConnections {
    /// Use as the callback URL (the stage path is accepted and ignored).
    pub url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl FakeConnections {
    /// `gone` ids answer 410 (stale connection), `broken` ids 500 (any other failure).
    pub async fn start(
        gone: impl IntoIterator<Item = String>,
        broken: impl IntoIterator<Item = String>,
        latency: Duration,
    ) -> Self {
        let inner = Inner {
            gone: gone.into_iter().collect(),
            broken: broken.into_iter().collect(),
            ..Inner::default()
        };
        let shared = Shared {
            inner: Arc::new(Mutex::new(inner)),
            latency,
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}/prod", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake @connections server");
        });
        Self {
            url,
            shared,
            server,
        }
    }

    pub fn posts(&self) -> Vec<Post> {
        self.shared.inner.lock().unwrap().posts.clone()
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.inner.lock().unwrap().max_in_flight
    }
}

impl Drop for FakeConnections {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((_, id)) = uri.path().split_once("/@connections/") else {
        return (StatusCode::NOT_FOUND, "not a @connections path").into_response();
    };
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8_lossy()
        .into_owned();
    let (gone, broken) = {
        let inner = shared.inner.lock().unwrap();
        (inner.gone.contains(&id), inner.broken.contains(&id))
    };
    if gone {
        return (
            StatusCode::GONE,
            [("x-amzn-errortype", "GoneException")],
            r#"{"message":"Gone"}"#,
        )
            .into_response();
    }
    if broken {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("x-amzn-errortype", "InternalServerErrorException")],
            r#"{"message":"boom"}"#,
        )
            .into_response();
    }
    match method {
        Method::POST => {
            {
                let mut inner = shared.inner.lock().unwrap();
                inner.in_flight += 1;
                inner.max_in_flight = inner.max_in_flight.max(inner.in_flight);
            }
            tokio::time::sleep(shared.latency).await;
            let mut inner = shared.inner.lock().unwrap();
            inner.in_flight -= 1;
            let signed = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256"));
            inner.posts.push(Post {
                connection_id: id,
                body: body.to_vec(),
                signed,
            });
            StatusCode::OK.into_response()
        }
        Method::DELETE => StatusCode::NO_CONTENT.into_response(),
        Method::GET => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"connectedAt":"2026-11-21T15:00:00Z"}"#,
        )
            .into_response(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}
