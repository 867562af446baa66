//! A host for the Lambda Runtime API: each function's real binary runs as a child process and
//! pulls its invocations from us over HTTP, exactly as it does in Lambda (`next`, `response`,
//! `error`), so what runs locally is what ships.
//!
//! Per function: one process at a time (Lambda's concurrency of one execution environment),
//! restarted when it exits or crashes; an invocation that outlives the function's `Timeout`
//! fails as "Task timed out" and its process is replaced, as in Lambda. Every line the process
//! prints is forwarded with the function's name in front.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::cloudwatch::LogSink;

/// How to run one function: what the template and the build say about it.
#[derive(Debug, Clone)]
pub struct FunctionSpec {
    /// The template's logical id (`ItemsApiFunction`).
    pub logical_id: String,
    /// The function name Lambda would report (the stack's physical name).
    pub name: String,
    /// Short label for log lines: the cargo binary name (`items-api`).
    pub label: String,
    pub binary: PathBuf,
    /// The function's resolved environment plus where AWS is (emulator endpoint, credentials).
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub arn: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no function {0} is running")]
    Unknown(String),
    #[error("{function} failed: {error}")]
    Function { function: String, error: Value },
    #[error("{function}: task timed out after {seconds} seconds")]
    Timeout { function: String, seconds: u64 },
    #[error("{function}: the process exited during the invocation")]
    Crashed { function: String },
    #[error("{function} returned a response that is not JSON: {detail}")]
    NotJson { function: String, detail: String },
}

type Outcome = Result<Bytes, InvokeError>;

struct Pending {
    request_id: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Outcome>,
}

struct Host {
    spec: FunctionSpec,
    queue: mpsc::Sender<Pending>,
    next_invocation: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    /// Asks the supervisor to replace the running process (after a timeout).
    replace: Notify,
    /// Fires once the first process asked for its first invocation (init finished).
    initialised: watch::Sender<bool>,
    /// Process exits the function did not ask for (crashes, timeouts), for tests and the fuzzer.
    unexpected_exits: AtomicUsize,
    log: Arc<dyn LogSink>,
}

impl Host {
    fn finish(&self, request_id: &str, outcome: Outcome) -> bool {
        let reply = self.in_flight.lock().expect("lock").remove(request_id);
        match reply {
            Some(reply) => {
                let _ = reply.send(outcome);
                true
            }
            None => false,
        }
    }

    fn fail_in_flight(&self) {
        let pending: Vec<_> = self.in_flight.lock().expect("lock").drain().collect();
        for (_, reply) in pending {
            let _ = reply.send(Err(InvokeError::Crashed {
                function: self.spec.label.clone(),
            }));
        }
    }
}

/// The running functions, by logical id.
pub struct Functions {
    hosts: HashMap<String, Arc<Host>>,
    stop: watch::Sender<bool>,
    supervisors: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Functions {
    /// Starts one supervised process per function; returns once each has been spawned (use
    /// [`Functions::wait_initialised`] to wait for their init to finish).
    pub fn start(specs: Vec<FunctionSpec>, log: Arc<dyn LogSink>) -> Self {
        let (stop, _) = watch::channel(false);
        let mut hosts = HashMap::new();
        let mut supervisors = Vec::new();
        for spec in specs {
            let (queue, next_invocation) = mpsc::channel(1024);
            let host = Arc::new(Host {
                spec,
                queue,
                next_invocation: tokio::sync::Mutex::new(next_invocation),
                in_flight: Mutex::new(HashMap::new()),
                replace: Notify::new(),
                initialised: watch::channel(false).0,
                unexpected_exits: AtomicUsize::new(0),
                log: log.clone(),
            });
            supervisors.push(tokio::spawn(supervise(
                host.clone(),
                stop.subscribe(),
                log.clone(),
            )));
            hosts.insert(host.spec.logical_id.clone(), host);
        }
        Self {
            hosts,
            stop,
            supervisors: Mutex::new(supervisors),
        }
    }

    /// Waits until every function's process has asked for its first invocation.
    pub async fn wait_initialised(&self, limit: Duration) -> Result<(), String> {
        let waits = self.hosts.values().map(|host| {
            let mut ready = host.initialised.subscribe();
            async move { ready.wait_for(|ready| *ready).await.map(|_| ()) }
        });
        match tokio::time::timeout(limit, futures::future::join_all(waits)).await {
            Ok(_) => Ok(()),
            Err(_) => {
                let slow: Vec<&str> = self
                    .hosts
                    .values()
                    .filter(|h| !*h.initialised.borrow())
                    .map(|h| h.spec.label.as_str())
                    .collect();
                Err(format!(
                    "not initialised after {limit:?}: {}",
                    slow.join(", ")
                ))
            }
        }
    }

    pub fn spec(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.hosts.get(logical_id).map(|h| &h.spec)
    }

    /// How many times processes exited without being asked to (crashes and timeouts).
    pub fn unexpected_exits(&self) -> usize {
        self.hosts
            .values()
            .map(|h| h.unexpected_exits.load(Ordering::Relaxed))
            .sum()
    }

    /// Invokes a function synchronously (`RequestResponse`) with a JSON event.
    pub async fn invoke(&self, logical_id: &str, event: &Value) -> Result<Value, InvokeError> {
        let host = self
            .hosts
            .get(logical_id)
            .ok_or_else(|| InvokeError::Unknown(logical_id.to_string()))?;
        let (reply, outcome) = oneshot::channel();
        let pending = Pending {
            request_id: uuid::Uuid::new_v4().to_string(),
            payload: event.to_string().into_bytes(),
            reply,
        };
        let crashed = || InvokeError::Crashed {
            function: host.spec.label.clone(),
        };
        host.queue.send(pending).await.map_err(|_| crashed())?;
        let raw = outcome.await.map_err(|_| crashed())??;
        serde_json::from_slice(&raw).map_err(|e| InvokeError::NotJson {
            function: logical_id.to_string(),
            detail: e.to_string(),
        })
    }

    /// Stops every process and waits for them to exit.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let supervisors: Vec<_> = self.supervisors.lock().expect("lock").drain(..).collect();
        for supervisor in supervisors {
            let _ = supervisor.await;
        }
    }
}

/// Runs the function's process, replacing it whenever it exits, until `stop`.
async fn supervise(host: Arc<Host>, mut stop: watch::Receiver<bool>, log: Arc<dyn LogSink>) {
    let label = host.spec.label.clone();
    let mut quick_exits = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        // A Runtime API endpoint of its own per process: requests still open from a process that
        // is gone are told so (`retired`) and can never take the next invocation.
        let (retired, retired_rx) = watch::channel(false);
        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(err) => {
                log.line(&label, &format!("cannot open a Runtime API port: {err}"));
                return;
            }
        };
        let address = listener.local_addr().expect("bound");
        let api = runtime_api(host.clone(), retired_rx);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, api).await;
        });
        let started = std::time::Instant::now();
        let mut child = match function_process(&host.spec, &address.to_string()).spawn() {
            Ok(child) => child,
            Err(err) => {
                log.line(
                    &label,
                    &format!("cannot start {}: {err}", host.spec.binary.display()),
                );
                server.abort();
                return;
            }
        };
        forward_lines(child.stdout.take(), label.clone(), log.clone());
        forward_lines(child.stderr.take(), label.clone(), log.clone());
        let stopping = tokio::select! {
            status = child.wait() => {
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                log.line(&label, &format!("[local-stack] process exited ({status}); starting a new one"));
                host.unexpected_exits.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ = host.replace.notified() => {
                let _ = child.kill().await;
                host.unexpected_exits.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ = until_set(&mut stop) => {
                let _ = child.kill().await;
                true
            }
        };
        let _ = retired.send(true);
        server.abort();
        host.fail_in_flight();
        if stopping {
            return;
        }
        // A process that dies at once (bad configuration) is restarted with growing pauses.
        quick_exits = if started.elapsed() < Duration::from_secs(2) {
            quick_exits + 1
        } else {
            0
        };
        let pause = Duration::from_millis(100 * 2u64.pow(quick_exits.min(6)));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = until_set(&mut stop) => return,
        }
    }
}

/// The function's binary as a Lambda process: only its environment and Lambda's, output
/// piped to the logs.
fn function_process(spec: &FunctionSpec, runtime_api: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(&spec.binary);
    command
        .env_clear()
        .envs(spec.env.iter().cloned())
        .envs(lambda_environment(spec, runtime_api))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Its own process group: Ctrl-C reaches the local stack, which stops the functions
        // itself (and so never mistakes that for a crash).
        .process_group(0)
        .kill_on_drop(true);
    command
}

/// Resolves once the flag is set (no borrow of the value is held across an await).
async fn until_set(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|set| *set).await;
}

/// What Lambda's execution environment sets for a custom runtime.
fn lambda_environment(spec: &FunctionSpec, runtime_api: &str) -> Vec<(String, String)> {
    let mut vars = vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            spec.memory_mb.to_string(),
        ),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("local/{}", uuid::Uuid::new_v4().simple()),
        ),
        ("_HANDLER", "bootstrap".to_string()),
    ];
    // Let a developer turn up a function's logs (`RUST_LOG=debug make dev`).
    if let Ok(filter) = std::env::var("RUST_LOG") {
        vars.push(("RUST_LOG", filter));
    }
    vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn forward_lines<R>(stream: Option<R>, label: String, log: Arc<dyn LogSink>)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let Some(stream) = stream else { return };
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.line(&label, &line);
        }
    });
}

#[derive(Clone)]
struct ApiState {
    host: Arc<Host>,
    retired: watch::Receiver<bool>,
}

fn runtime_api(host: Arc<Host>, retired: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{request_id}/error",
            post(error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(ApiState { host, retired })
}

async fn next(State(state): State<ApiState>) -> Response {
    let host = &state.host;
    host.initialised.send_replace(true);
    let mut retired = state.retired.clone();
    let pending = {
        let mut queue = host.next_invocation.lock().await;
        tokio::select! {
            pending = queue.recv() => pending,
            _ = until_set(&mut retired) => None,
        }
    };
    let Some(pending) = pending else {
        return StatusCode::GONE.into_response();
    };
    let timeout = host.spec.timeout;
    let deadline_ms = SystemTime::now()
        .checked_add(timeout)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or_default(); // now + a function timeout past SystemTime's range: unreachable
    let request_id = pending.request_id.clone();
    host.in_flight
        .lock()
        .expect("lock")
        .insert(request_id.clone(), pending.reply);
    // Lambda's timeout: the invocation fails and the execution environment is replaced.
    let watchdog = host.clone();
    let watched = request_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(timeout).await;
        let timed_out = InvokeError::Timeout {
            function: watchdog.spec.label.clone(),
            seconds: timeout.as_secs(),
        };
        if watchdog.finish(&watched, Err(timed_out)) {
            watchdog.replace.notify_one();
        }
    });
    // Lambda's X-Ray header with active tracing: root, parent segment, sampled.
    let trace_id = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=1",
        deadline_ms / 1000,
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("Lambda-Runtime-Aws-Request-Id", request_id.as_str()),
        ("Lambda-Runtime-Deadline-Ms", &deadline_ms.to_string()),
        ("Lambda-Runtime-Invoked-Function-Arn", &host.spec.arn),
        ("Lambda-Runtime-Trace-Id", &trace_id),
        ("Content-Type", "application/json"),
    ] {
        headers.insert(name, value.parse().expect("header value"));
    }
    (StatusCode::OK, headers, pending.payload).into_response()
}

async fn response(
    State(state): State<ApiState>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    state.host.finish(&request_id, Ok(body));
    StatusCode::ACCEPTED
}

async fn error(
    State(state): State<ApiState>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let error = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let function = state.host.spec.label.clone();
    state
        .host
        .finish(&request_id, Err(InvokeError::Function { function, error }));
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<ApiState>, body: Bytes) -> StatusCode {
    let host = &state.host;
    host.log.line(
        &host.spec.label,
        &format!(
            "[local-stack] init error: {}",
            String::from_utf8_lossy(&body)
        ),
    );
    StatusCode::ACCEPTED
}
