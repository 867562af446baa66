//! What AWS does at scale, on demand (docs.aws.amazon.com/general/latest/gr/api-retries.html):
//! the gate injects faults into a stack's calls (`local-stack dev --faults SPEC`, or
//! `POST /_local/iam/faults` on the gate). Off by default.
//!
//! A SPEC is a rate and options, comma-separated: `0.2` (20% of every principal's calls fail),
//! `0.2,seed=7,latency=0.5,dynamodb=0.4,s3:PutObject=1,kinds=throttle+error+reset`. The rate
//! is drawn per attempt (every SDK retry sees a fresh draw); `service=RATE` or
//! `service:Operation=RATE` override it; `kinds` picks among:
//! - `throttle`: the service's own throttling error (`ProvisionedThroughputExceededException`,
//!   `SlowDown`, `RequestThrottled`, `Throttled`, `ThrottlingException`, `TooManyRequestsException`);
//! - `error`: a 500 or 503 in the service's shape;
//! - `reset`: the connection cut before the request is forwarded;
//! - `lost`: the request applied, then the connection cut before the answer (what tests
//!   idempotency);
//! - `latency`: a delay of up to `latency` (a fraction, default 0.3) of the principal's timeout.
//!
//! Calls of the deployer (provisioning, test assertions) are never faulted; calls moto's Step
//! Functions makes for a state machine are.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::aws_errors::{AwsError, Fault};
use crate::gate::control::{ControlError, parse};
use crate::iam::EMULATOR_STATES_KEY;
use crate::iam::actions::call_of;
use crate::iam::principals::role_of;
use crate::iam::sigv4::caller;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    Throttle,
    Error,
    Reset,
    Lost,
    Latency,
}

impl FaultKind {
    const ALL: [FaultKind; 5] = [
        FaultKind::Throttle,
        FaultKind::Error,
        FaultKind::Reset,
        FaultKind::Lost,
        FaultKind::Latency,
    ];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "throttle" => Self::Throttle,
            "error" => Self::Error,
            "reset" => Self::Reset,
            "lost" => Self::Lost,
            "latency" => Self::Latency,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub rate: f64,
    /// (service, operation or None for all, rate), most specific first when matched.
    pub overrides: Vec<(String, Option<String>, f64)>,
    pub seed: u64,
    /// Largest delay, as a fraction of the principal's timeout.
    pub latency: f64,
    pub kinds: Vec<FaultKind>,
}

impl std::str::FromStr for FaultSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut parts = text.split(',').map(str::trim).filter(|p| !p.is_empty());
        let rate_text = parts.next().ok_or("empty fault spec")?;
        let rate = parse_rate(rate_text)?;
        let mut spec = FaultSpec {
            rate,
            overrides: Vec::new(),
            seed: 20261201,
            latency: 0.3,
            kinds: FaultKind::ALL.to_vec(),
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("fault spec part {part:?}: expected key=value"))?;
            match key {
                "seed" => spec.seed = value.parse().map_err(|_| format!("seed {value:?}"))?,
                "latency" => spec.latency = parse_rate(value)?,
                "kinds" => {
                    spec.kinds = value
                        .split('+')
                        .map(|k| FaultKind::parse(k).ok_or_else(|| format!("fault kind {k:?}")))
                        .collect::<Result<_, _>>()?;
                }
                target => {
                    let (service, operation) = match target.split_once(':') {
                        Some((s, o)) => (s.to_string(), Some(o.to_string())),
                        None => (target.to_string(), None),
                    };
                    spec.overrides
                        .push((service, operation, parse_rate(value)?));
                }
            }
        }
        if spec.kinds.is_empty() {
            return Err("kinds= names no fault kind".into());
        }
        Ok(spec)
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .parse()
        .map_err(|_| format!("fault rate {text:?} is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("fault rate {rate} is not between 0 and 1"))
    }
}

/// One stack's fault injector: the spec, its random source, and what it injected.
pub struct Faults {
    spec: FaultSpec,
    rng: Mutex<fastrand::Rng>,
    injected: Mutex<BTreeMap<(String, FaultKind), u64>>,
    attempts: Mutex<BTreeMap<String, u64>>,
}

impl Faults {
    pub fn new(spec: FaultSpec) -> Self {
        Self {
            rng: Mutex::new(fastrand::Rng::with_seed(spec.seed)),
            spec,
            injected: Mutex::new(BTreeMap::new()),
            attempts: Mutex::new(BTreeMap::new()),
        }
    }

    fn rate_for(&self, service: &str, operation: &str) -> f64 {
        let exact = self
            .spec
            .overrides
            .iter()
            .find(|(s, o, _)| s == service && o.as_deref() == Some(operation));
        let by_service = || {
            self.spec
                .overrides
                .iter()
                .find(|(s, o, _)| s == service && o.is_none())
        };
        exact
            .or_else(by_service)
            .map_or(self.spec.rate, |(_, _, rate)| *rate)
    }

    /// Whether this attempt fails, and how (a fresh draw per call).
    pub fn draw(&self, service: &str, operation: &str) -> Option<FaultKind> {
        *self
            .attempts
            .lock()
            .expect("faults")
            .entry(service.to_string())
            .or_default() += 1;
        let rate = self.rate_for(service, operation);
        let mut rng = self.rng.lock().expect("faults");
        if rng.f64() >= rate {
            return None;
        }
        let kind = self.spec.kinds[rng.usize(..self.spec.kinds.len())];
        drop(rng);
        *self
            .injected
            .lock()
            .expect("faults")
            .entry((service.to_string(), kind))
            .or_default() += 1;
        Some(kind)
    }

    /// A seeded coin (503 or 500 for an `error` fault).
    pub fn coin(&self) -> bool {
        self.rng.lock().expect("faults").bool()
    }

    /// A delay for a `latency` fault: up to the spec's fraction of `timeout`.
    pub fn delay(&self, timeout: Duration) -> Duration {
        let fraction = self.rng.lock().expect("faults").f64() * self.spec.latency;
        timeout.mul_f64(fraction)
    }

    /// Calls seen and faults injected, per service and kind (for `POST /_local/iam/faults-summary`).
    pub fn summary(&self) -> serde_json::Value {
        let injected: BTreeMap<String, BTreeMap<String, u64>> =
            self.injected.lock().expect("faults").iter().fold(
                BTreeMap::new(),
                |mut out, ((service, kind), n)| {
                    let kind = serde_json::to_value(kind)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .expect("fault kinds serialise as strings");
                    out.entry(service.clone()).or_default().insert(kind, *n);
                    out
                },
            );
        serde_json::json!({
            "attempts": *self.attempts.lock().expect("faults"),
            "injected": injected,
        })
    }
}

/// The answer for a `throttle` or `error` fault, in the service's own code.
/// `streams`: a DynamoDB Streams operation (its throttling error is LimitExceededException).
pub fn fault_error(
    service: &str,
    kind: FaultKind,
    server_error_503: bool,
    streams: bool,
) -> AwsError {
    let (status, code) = match (kind, service) {
        (FaultKind::Throttle, "dynamodb") if streams => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#LimitExceededException",
        ),
        (FaultKind::Throttle, "dynamodb") => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        ),
        (FaultKind::Throttle, "s3") => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
        (FaultKind::Throttle, "sqs") => (StatusCode::BAD_REQUEST, "RequestThrottled"),
        (FaultKind::Throttle, "sns") => (StatusCode::TOO_MANY_REQUESTS, "Throttled"),
        (FaultKind::Throttle, "ses") => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
        (FaultKind::Throttle, _) => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        (_, _) if server_error_503 => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
        (_, "dynamodb") => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "com.amazonaws.dynamodb.v20120810#InternalServerError",
        ),
        (_, "s3" | "sns") => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        (_, _) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    };
    let mut error = AwsError::new(
        service,
        status,
        code,
        "injected by the local fault injector",
    );
    // Throttling is the caller's fault (Sender) whatever its status, a 5xx the service's.
    if kind == FaultKind::Throttle {
        error.fault = Fault::Sender;
    }
    error
}

/// A connection cut: the status line and headers promise a body that never comes.
pub fn cut_connection() -> Response {
    let stream = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection cut by the local fault injector",
        ))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        axum::http::header::CONTENT_LENGTH,
        HeaderValue::from_static("4096"),
    );
    response
}

/// Fault injection per stack (name prefix), when turned on for it.
#[derive(Default)]
pub struct FaultInjection {
    stacks: Mutex<HashMap<String, Arc<Faults>>>,
}

impl FaultInjection {
    fn for_stack(&self, stack: &str) -> Option<Arc<Faults>> {
        self.stacks.lock().expect("faults").get(stack).cloned()
    }
}

/// What the injector does to one attempt: the drawn kind, made one the caller can meet.
fn effective(kind: FaultKind, from_state_machine: bool, head: bool) -> FaultKind {
    match kind {
        // Step Functions' own calls to SQS surface a failure to the execution as an SQS.* error,
        // never as a transport cut (which moto would turn into States.Runtime, an error AWS
        // does not retry).
        FaultKind::Reset | FaultKind::Lost if from_state_machine => FaultKind::Error,
        // A HEAD answer has no body to cut: the client would read the headers as success.
        FaultKind::Reset | FaultKind::Lost if head => FaultKind::Error,
        kind => kind,
    }
}

/// Marks an answer a layer gave in the emulator's place (the request never reached it), which a
/// `lost` fault leaves alone.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredByGate;

/// Layer, once a call is allowed: what AWS does at scale, when faults are on for its stack.
pub async fn inject(
    State(injection): State<Arc<FaultInjection>>,
    request: Request,
    next: Next,
) -> Response {
    let (role, call) = (role_of(&request), call_of(&request));
    let Some(faults) = injection.for_stack(&role.stack) else {
        return next.run(request).await;
    };
    let from_state_machine = caller(&request).access_key == EMULATOR_STATES_KEY;
    let head = request.method() == Method::HEAD;
    let fault = faults
        .draw(&call.service, &call.operation)
        .map(|kind| effective(kind, from_state_machine, head));
    match fault {
        Some(kind @ (FaultKind::Throttle | FaultKind::Error)) => {
            let streams = call.operation.contains("Shard")
                || matches!(
                    call.operation.as_str(),
                    "GetRecords" | "DescribeStream" | "ListStreams"
                );
            fault_error(&call.service, kind, faults.coin(), streams).into_response()
        }
        Some(FaultKind::Reset) => cut_connection(),
        Some(FaultKind::Lost) => {
            // Applied by the emulator (and learned from by the layers inside); the answer
            // never arrives. An answer the gate gave in the emulator's place is not lost.
            let response = next.run(request).await;
            if response.extensions().get::<AnsweredByGate>().is_some() {
                return response;
            }
            cut_connection()
        }
        Some(FaultKind::Latency) => {
            // A role no function runs as (a state machine's, the pipe's): Lambda's default 3 s.
            let timeout = Duration::from_millis(role.timeout_ms.unwrap_or(3_000));
            tokio::time::sleep(faults.delay(timeout)).await;
            next.run(request).await
        }
        None => next.run(request).await,
    }
}

/// A stack's faults: `{"stack": ..., "spec": SPEC}` turns them on, `"spec": null` off.
#[derive(serde::Deserialize)]
struct FaultsRequest {
    stack: String,
    spec: Option<String>,
}

/// `POST /_local/iam/faults`.
pub async fn switch(
    State(injection): State<Arc<FaultInjection>>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let request: FaultsRequest = parse(&body)?;
    let mut stacks = injection.stacks.lock().expect("faults");
    match request.spec {
        Some(text) => {
            let spec: FaultSpec = text.parse().map_err(ControlError::BadRequest)?;
            eprintln!("iam-gate: faults on for stack {}: {text}", request.stack);
            stacks.insert(request.stack, Arc::new(Faults::new(spec)));
        }
        None => {
            eprintln!("iam-gate: faults off for stack {}", request.stack);
            stacks.remove(&request.stack);
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_local/iam/faults-summary`: `{"stack": ...}` -> what was injected (null: faults off).
pub async fn summary(
    State(injection): State<Arc<FaultInjection>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ControlError> {
    #[derive(serde::Deserialize)]
    struct SummaryRequest {
        stack: String,
    }
    let request: SummaryRequest = parse(&body)?;
    let summary = injection.for_stack(&request.stack).map(|f| f.summary());
    Ok(Json(summary.unwrap_or(serde_json::Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::middleware::{from_fn, from_fn_with_state};
    use tower::ServiceExt;

    /// What the layers before `inject` leave on a request: a caller, a call and a role.
    async fn identified(mut request: Request, next: Next) -> Response {
        let extensions = request.extensions_mut();
        extensions.insert(crate::iam::sigv4::Caller {
            access_key: "LOCAL-s1-Role".into(),
            service: "states".into(),
        });
        extensions.insert(crate::iam::actions::Call::new(
            "states",
            "SendTaskSuccess",
            vec![],
        ));
        extensions.insert(crate::iam::RoleRecord {
            access_key_id: "LOCAL-s1-Role".into(),
            stack: "s1".into(),
            stack_aliases: vec![],
            logical_id: "Role".into(),
            arn: "arn:aws:iam::1:role/r".into(),
            policies: vec![],
            timeout_ms: None,
        });
        next.run(request).await
    }

    async fn through_lost_fault(answered_by_gate: bool) -> Result<Bytes, axum::Error> {
        let injection = Arc::new(FaultInjection::default());
        let always_lost = Faults::new("1,kinds=lost".parse().unwrap());
        injection
            .stacks
            .lock()
            .unwrap()
            .insert("s1".into(), Arc::new(always_lost));
        let app = Router::new()
            .fallback(move || async move {
                let mut response = "answer".into_response();
                if answered_by_gate {
                    response.extensions_mut().insert(AnsweredByGate);
                }
                response
            })
            .layer(from_fn_with_state(injection, inject))
            .layer(from_fn(identified));
        let request = Request::post("/").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        axum::body::to_bytes(response.into_body(), 1 << 20).await
    }

    #[tokio::test]
    async fn a_lost_answer_is_cut_unless_the_gate_gave_it_in_the_emulators_place() {
        assert!(
            through_lost_fault(false).await.is_err(),
            "the emulator's answer is lost"
        );
        assert_eq!(through_lost_fault(true).await.unwrap(), "answer");
    }

    #[test]
    fn specs_parse_with_overrides_and_kinds() {
        let spec: FaultSpec =
            "0.2,seed=7,latency=0.5,dynamodb=0.4,s3:PutObject=1,kinds=throttle+lost"
                .parse()
                .unwrap();
        assert_eq!(spec.rate, 0.2);
        assert_eq!(spec.seed, 7);
        assert_eq!(spec.kinds, [FaultKind::Throttle, FaultKind::Lost]);
        let faults = Faults::new(spec);
        assert_eq!(faults.rate_for("dynamodb", "GetItem"), 0.4);
        assert_eq!(faults.rate_for("s3", "PutObject"), 1.0);
        assert_eq!(faults.rate_for("s3", "GetObject"), 0.2);
        assert!("1.5".parse::<FaultSpec>().is_err());
        assert!("0.1,kinds=fire".parse::<FaultSpec>().is_err());
    }

    #[test]
    fn the_draws_follow_the_rate_and_repeat_with_the_seed() {
        let run = || {
            let faults = Faults::new("0.2,seed=42".parse().unwrap());
            (0..10_000)
                .map(|_| faults.draw("sqs", "SendMessage"))
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run(), "same seed, same faults");
        let failed = first.iter().filter(|f| f.is_some()).count();
        assert!((1800..2200).contains(&failed), "{failed} of 10000 at 20%");
        let none = Faults::new("0".parse().unwrap());
        assert!((0..1000).all(|_| none.draw("s3", "GetObject").is_none()));
    }
}
