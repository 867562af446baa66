//! A local stand-in for Step Functions' `GetActivityTask` (JSON 1.0 protocol over real HTTP),
//! because the emulator does not implement activities. It hands out queued tasks, holds empty
//! polls open for a while like the real long poll, and records when each poll started.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Default)]
struct Inner {
    tasks: VecDeque<(String, String)>,
    poll_starts: Vec<Instant>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    empty_poll: Duration,
}

pub struct FakeStepFunctions {
    pub url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl FakeStepFunctions {
    /// `tasks`: (task token, input JSON) handed out in order; then polls come back empty after
    /// `empty_poll`.
    pub async fn start(tasks: Vec<(String, String)>, empty_poll: Duration) -> Self {
        let shared = Shared {
            inner: Arc::new(Mutex::new(Inner {
                tasks: tasks.into(),
                poll_starts: Vec::new(),
            })),
            empty_poll,
        };
        let app = Router::new().fallback(handle).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake Step Functions server");
        });
        Self {
            url,
            shared,
            server,
        }
    }

    pub fn poll_starts(&self) -> Vec<Instant> {
        self.shared.inner.lock().unwrap().poll_starts.clone()
    }
}

impl Drop for FakeStepFunctions {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if target != "AWSStepFunctions.GetActivityTask" {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.0")],
            r#"{"__type":"UnknownOperationException"}"#,
        )
            .into_response();
    }
    let next = {
        let mut inner = shared.inner.lock().unwrap();
        inner.poll_starts.push(Instant::now());
        inner.tasks.pop_front()
    };
    let body = match next {
        Some((token, input)) => serde_json::json!({"taskToken": token, "input": input}).to_string(),
        None => {
            tokio::time::sleep(shared.empty_poll).await;
            "{}".to_string()
        }
    };
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.0")],
        body,
    )
        .into_response()
}
