//! The IAM gate: an HTTP proxy on loopback in front of the emulator (moto does not evaluate
//! IAM). `local/with-emulator.sh` starts it (`local-stack gate`) and exports its URL as
//! `AWS_ENDPOINT_URL`; moto runs with `MOTO_PORT` set to the gate's port, so the calls moto's
//! Step Functions makes for a state machine come back through it too.
//!
//! For every request: the principal from the SigV4 credential scope (header or presigned
//! query), the action/resources/condition keys from [`actions::derive`], the role's policies and
//! the resource's policy through [`policy::evaluate`]; a refusal is answered in the service's
//! own error shape and never reaches the emulator. Unsigned CORS preflights pass through.
//! Every decision is appended to the audit file (`--audit`), which `local-stack iam-report`
//! reads. Task tokens are attributed to the state machine that sent them (read from its
//! messages) or the activity that handed them out (read from `GetActivityTask` answers); shard
//! iterators to the stream they were issued for.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::actions::{self, Call, HttpRequest, SHARD_ITERATOR_RESOURCE, TASK_TOKEN_RESOURCE};
use super::policy::{self, Check, Decision, Principal};
use super::{
    AuthorizeAnswer, AuthorizeRequest, DEPLOYER_KEY, EMULATOR_STATES_KEY, ResourcePolicyRecord,
    RoleRecord, StateMachineRecord, session_arn,
};
use crate::service_errors::{error_json, escape, xml};

#[derive(Default)]
struct Registry {
    roles: HashMap<String, RoleRecord>,
    resource_policies: HashMap<String, Vec<Value>>,
    state_machines: Vec<StateMachineRecord>,
    /// Task token -> ARN of the state machine or activity that issued it.
    tokens: HashMap<String, String>,
    /// Tokens whose task is over as far as the gate saw: answered (SendTaskSuccess /
    /// SendTaskFailure accepted), or superseded by a later task of the same execution (a
    /// reminder after a timeout).
    closed_tokens: std::collections::HashSet<String>,
    /// Token -> the execution whose task it is (the callback message's `executionArn`), and
    /// execution -> its open task's token.
    token_executions: HashMap<String, String>,
    execution_tokens: HashMap<String, String>,
    /// Bucket name -> its CORS rules (every provisioned bucket; empty: CORS not enabled).
    bucket_cors: HashMap<String, Vec<crate::s3_cors::CorsRule>>,
    /// Shard iterator -> stream ARN.
    iterators: HashMap<String, String>,
}

/// The header carrying the deployer's gate token (see [`serve`]).
pub const ADMIN_HEADER: &str = "x-local-gate-token";

struct Gate {
    /// When set, `/_local/iam/*` and the emulator's own API need it in [`ADMIN_HEADER`]
    /// (function processes never see it).
    admin_token: Option<String>,
    /// Fault injection per stack (prefix), when turned on.
    faults: Mutex<HashMap<String, Arc<crate::faults::Faults>>>,
    emulator: String,
    http: reqwest::Client,
    registry: Mutex<Registry>,
    audit: Option<Mutex<std::fs::File>>,
}

/// Serves the gate on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emulator: String,
    audit: Option<std::path::PathBuf>,
    admin_token: Option<String>,
) -> std::io::Result<()> {
    let audit = match audit {
        Some(path) => Some(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        )),
        None => None,
    };
    let gate = Arc::new(Gate {
        emulator: emulator.trim_end_matches('/').to_string(),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client"),
        registry: Mutex::new(Registry::default()),
        audit,
        faults: Mutex::new(HashMap::new()),
        admin_token,
    });
    let app = Router::new().fallback(handle).with_state(gate);
    axum::serve(listener, app).await
}

/// What the gate decided about one call, as one audit line.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub stack: String,
    pub role: String,
    pub service: String,
    pub operation: String,
    pub action: String,
    pub resource: String,
    pub allowed: bool,
}

impl Gate {
    fn audit(&self, line: &Value) {
        if let Some(file) = &self.audit {
            let mut file = file.lock().expect("audit lock");
            let _ = writeln!(file, "{line}");
        }
    }
}

fn loud(message: &str) {
    eprintln!("iam-gate: REFUSED {message}");
}

async fn handle(State(gate): State<Arc<Gate>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large").into_response();
    };
    let path = parts.uri.path().to_string();
    let admin = gate.admin_token.as_deref().is_none_or(|token| {
        parts
            .headers
            .get(ADMIN_HEADER)
            .and_then(|v| v.to_str().ok())
            == Some(token)
    });
    if let Some(what) = path.strip_prefix("/_local/iam/") {
        // Registering roles or turning faults off is the deployer's, not a function's.
        if !admin {
            loud(&format!("{what} without the deployer's gate token"));
            return (
                StatusCode::FORBIDDEN,
                "the deployer's gate token is required",
            )
                .into_response();
        }
        return register(&gate, what, &body);
    }
    if path.starts_with("/moto-api/") && !admin {
        loud(&format!(
            "{} {path} without the deployer's gate token",
            parts.method
        ));
        return (
            StatusCode::FORBIDDEN,
            "the deployer's gate token is required",
        )
            .into_response();
    }
    if path.starts_with("/moto-api/") {
        // The emulator's own inspection API (the local mailbox reads SES's outbox there) is no
        // AWS API; it passes.
        return forward(&gate, &parts, body).await;
    }
    let query: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    // A preflight is never authenticated (a presigned URL's query does not make it a signed
    // request); S3 answers it from the bucket's CORS rules.
    if parts.method == Method::OPTIONS
        && let Some(rules) = bucket_cors_of(&gate, &parts)
    {
        return s3_preflight(&rules, &parts.headers);
    }
    let Some((key, service)) = actions::credential_scope(&parts.headers, &query) else {
        if parts.method == Method::OPTIONS {
            // CORS preflights carry no credentials, in AWS too.
            return forward(&gate, &parts, body).await;
        }
        loud(&format!("unsigned {} {path}", parts.method));
        return denied(
            "s3",
            "anonymous",
            "Anonymous requests are not allowed by this stack",
        );
    };
    if let Some(refusal) = presigned_url_refusal(&parts.headers, &query) {
        return refusal;
    }
    if key == DEPLOYER_KEY {
        return forward(&gate, &parts, body).await;
    }
    let http_request = HttpRequest {
        method: parts.method.as_str(),
        path: &path,
        query: &query,
        headers: &parts.headers,
        body: &body,
    };
    let mut call = match actions::derive(&service, &http_request) {
        Ok(call) => call,
        Err(unmapped) => {
            loud(&format!("{key}: {unmapped}"));
            return denied(&service, &unmapped.detail, &unmapped.to_string());
        }
    };
    // The principal: a role's key, or moto's Step Functions acting for a state machine.
    let role = {
        let registry = gate.registry.lock().expect("registry");
        if key == EMULATOR_STATES_KEY {
            state_machine_role(&registry, &body)
        } else {
            registry.roles.get(&key).cloned()
        }
    };
    let Some(role) = role else {
        loud(&format!(
            "unknown access key {key} ({service} {})",
            call.operation
        ));
        return denied(
            &service,
            &call.operation,
            "The security token included in the request is invalid",
        );
    };
    if let Some(refusal) = resolve_placeholders(&gate, &mut call) {
        return refusal;
    }
    let principal = Principal::Role {
        arn: role.arn.clone(),
    };
    if call.checks.is_empty() {
        loud(&format!(
            "{key}: {} {} names nothing to authorise",
            call.service, call.operation
        ));
        return denied(&call.service, &call.operation, "nothing to authorise");
    }
    // Tokens in a state machine's outgoing message are known before any consumer can read it.
    if key == EMULATOR_STATES_KEY {
        learn_outgoing_tokens(&gate, &call, &body);
    }
    for (action, resource) in &call.checks {
        let resource_policies = {
            let registry = gate.registry.lock().expect("registry");
            resource_policy_for(&registry, resource)
        };
        let check = Check {
            action,
            resource,
            context: &call.context,
        };
        let decision = policy::evaluate(
            &principal,
            &role.policies,
            resource_policies.as_ref(),
            &check,
        );
        gate.audit(&json!({
            "kind": "call",
            "stack": role.stack,
            "role": role.logical_id,
            "service": call.service,
            "operation": call.operation,
            "action": action,
            "resource": resource,
            "allowed": decision.allowed(),
        }));
        if !decision.allowed() {
            let why = match &decision {
                Decision::ExplicitDeny(_) => "with an explicit deny in a resource-based policy",
                _ => "because no identity-based policy allows the action",
            };
            let message = format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
                session_arn(&role.arn)
            );
            eprintln!(
                "iam-gate: AccessDenied {} ({}): {message}",
                role.logical_id, call.operation
            );
            return denied(&call.service, &call.operation, &message);
        }
    }
    // Allowed: now what AWS does at scale, when faults are on for this stack.
    let faults = gate
        .faults
        .lock()
        .expect("faults")
        .get(&role.stack)
        .cloned();
    use crate::faults::FaultKind;
    let fault = faults
        .as_ref()
        .and_then(|f| f.draw(&call.service, &call.operation))
        .map(|kind| match kind {
            // Step Functions' own calls to SQS surface a failure to the execution as an
            // SQS.* error, never as a transport cut (which moto would turn into States.Runtime,
            // an error AWS does not retry).
            FaultKind::Reset | FaultKind::Lost if key == EMULATOR_STATES_KEY => FaultKind::Error,
            // A HEAD answer has no body to cut: the client would read the headers as success.
            FaultKind::Reset | FaultKind::Lost if parts.method == Method::HEAD => FaultKind::Error,
            kind => kind,
        });
    match fault {
        Some(kind @ (FaultKind::Throttle | FaultKind::Error)) => {
            let use_503 = faults.as_ref().is_some_and(|f| f.coin());
            let streams = call.operation.contains("Shard")
                || matches!(
                    call.operation.as_str(),
                    "GetRecords" | "DescribeStream" | "ListStreams"
                );
            return crate::faults::error_response(&call.service, kind, use_503, streams);
        }
        Some(FaultKind::Reset) => return crate::faults::cut_connection(),
        Some(FaultKind::Latency) => {
            let timeout = Duration::from_millis(role.timeout_ms.unwrap_or(3_000));
            let delay = faults
                .as_ref()
                .map(|f| f.delay(timeout))
                .unwrap_or_default();
            tokio::time::sleep(delay).await;
        }
        Some(FaultKind::Lost) | None => {}
    }
    if let Some(response) = answered_task(&gate, &call) {
        return response;
    }
    let response = forward_raw(&gate, &parts, body).await;
    if fault == Some(FaultKind::Lost) {
        // Applied by the emulator; the answer never arrives.
        if let Ok((status, _, bytes)) = &response
            && status.is_success()
        {
            learn(&gate, &call, bytes);
        }
        return crate::faults::cut_connection();
    }
    match response {
        Ok((status, headers, bytes)) => {
            if status.is_success() {
                learn(&gate, &call, &bytes);
            }
            if status == StatusCode::NOT_FOUND
                && let Some(response) = missing_object_without_list(&gate, &role, &call)
            {
                return response;
            }
            if call.operation == "SendTaskHeartbeat"
                && is_invalid_token(status, &bytes)
                && let Some(token) = &call.task_token
            {
                return heartbeat_of_open_task(&gate, token).await;
            }
            if let Some(response) = closed_task(&call, status, &bytes) {
                return response;
            }
            let response = build_response(status, headers, bytes);
            if call.service == "s3" {
                return with_s3_cors(&gate, &parts, response);
            }
            response
        }
        Err(response) => response,
    }
}

/// A task token Step Functions issued whose task is over (answered, or its execution ended):
/// AWS answers `TaskTimedOut` "Provided task does not exist anymore" to SendTask* (e.g.
/// aws-samples/amazon-mwaa-examples#61). moto accepts a second answer while the execution still
/// runs (`answered_task`) and says `InvalidToken`, the answer for a token AWS never issued, once
/// it ended (`closed_task`; the token got here past [`resolve_placeholders`], so it was issued).
fn answered_task(gate: &Gate, call: &Call) -> Option<Response> {
    let token = call.task_token.as_ref()?;
    let registry = gate.registry.lock().expect("registry");
    registry
        .closed_tokens
        .contains(token)
        .then(task_no_longer_exists)
}

fn task_no_longer_exists() -> Response {
    error_json(
        StatusCode::BAD_REQUEST,
        "TaskTimedOut",
        "Task Timed Out: 'Provided task does not exist anymore'",
    )
}

fn closed_task(call: &Call, status: StatusCode, body: &[u8]) -> Option<Response> {
    (call.task_token.is_some() && is_invalid_token(status, body)).then(task_no_longer_exists)
}

fn is_invalid_token(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::BAD_REQUEST
        && serde_json::from_slice::<Value>(body).is_ok_and(|error| {
            error["__type"]
                .as_str()
                .is_some_and(|code| code.rsplit('#').next() == Some("InvalidToken"))
        })
}

/// SendTaskHeartbeat on an issued token moto refused: moto accepts heartbeats only for tasks
/// with `HeartbeatSeconds`, while AWS accepts one for any open task (a harmless no-op), which is
/// what the approval page relies on to check its link. Open means: not answered or superseded,
/// and its execution (when the gate knows it) still running; then the gate gives AWS's empty
/// success, else `TaskTimedOut`.
async fn heartbeat_of_open_task(gate: &Gate, token: &str) -> Response {
    let execution = {
        let registry = gate.registry.lock().expect("registry");
        if registry.closed_tokens.contains(token) {
            return task_no_longer_exists();
        }
        registry.token_executions.get(token).cloned()
    };
    if let Some(execution) = execution
        && execution_status(gate, &execution).await.as_deref() != Some("RUNNING")
    {
        return task_no_longer_exists();
    }
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "application/x-amz-json-1.0",
        )],
        "{}",
    )
        .into_response()
}

/// An execution's status, asked of the emulator (behind the gate) as the deployer.
async fn execution_status(gate: &Gate, execution_arn: &str) -> Option<String> {
    let sfn = aws_sdk_sfn::Client::new(&crate::emulator::sdk_config(&gate.emulator).await);
    let described = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .ok()?;
    Some(described.status().as_str().to_string())
}

/// The CORS rules of the bucket a path-style S3 request names, if it is a provisioned bucket.
fn bucket_cors_of(
    gate: &Gate,
    parts: &axum::http::request::Parts,
) -> Option<Vec<crate::s3_cors::CorsRule>> {
    let bucket = parts.uri.path().trim_start_matches('/').split('/').next()?;
    gate.registry
        .lock()
        .expect("registry")
        .bucket_cors
        .get(bucket)
        .cloned()
}

fn s3_preflight(rules: &[crate::s3_cors::CorsRule], headers: &HeaderMap) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    match crate::s3_cors::preflight(
        rules,
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
            loud(&format!("S3 CORS preflight refused: {}", refusal.message));
            s3_error(
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN),
                refusal.code,
                refusal.message,
            )
        }
    }
}

fn add_headers(response: &mut Response, headers: &[(String, String)]) {
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
}

/// An S3 answer to a request from a page (`Origin`): moto's own CORS headers replaced by what
/// the bucket's rules say (none when no rule matches, as S3).
fn with_s3_cors(
    gate: &Gate,
    parts: &axum::http::request::Parts,
    mut response: Response,
) -> Response {
    let Some(origin) = parts.headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return response;
    };
    let Some(rules) = bucket_cors_of(gate, parts) else {
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
    add_headers(
        &mut response,
        &crate::s3_cors::actual(&rules, origin, parts.method.as_str()),
    );
    response
}

/// What S3 refuses of a presigned URL before any policy (moto checks neither): a request
/// without every header the URL signed (`X-Amz-SignedHeaders`, e.g. the upload ticket's
/// content-type, content-length and `x-amz-meta-*`) does not match the signature; a URL past
/// `X-Amz-Date` + `X-Amz-Expires` has expired. The signature itself is not recomputed here.
fn presigned_url_refusal(headers: &HeaderMap, query: &[(String, String)]) -> Option<Response> {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let signed = param("X-Amz-SignedHeaders")?;
    let missing: Vec<&str> = signed
        .split(';')
        .filter(|h| !h.eq_ignore_ascii_case("host") && !headers.contains_key(*h))
        .collect();
    if !missing.is_empty() {
        loud(&format!(
            "presigned request without its signed headers {missing:?}"
        ));
        return Some(s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
        ));
    }
    let issued = param("X-Amz-Date").and_then(|d| {
        time::PrimitiveDateTime::parse(
            d,
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
        )
        .ok()
    })?;
    let expires: i64 = param("X-Amz-Expires")?.parse().ok()?;
    let deadline = issued.assume_utc() + time::Duration::seconds(expires);
    (time::OffsetDateTime::now_utc() > deadline)
        .then(|| s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"))
}

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>local</RequestId></Error>",
            escape(message)
        ),
    )
}

/// S3 answers a missing key with 404 only to callers allowed to list the bucket; everyone else
/// gets 403 AccessDenied, so they learn nothing about which keys exist. moto always says 404.
fn missing_object_without_list(gate: &Gate, role: &RoleRecord, call: &Call) -> Option<Response> {
    if call.service != "s3" || !matches!(call.operation.as_str(), "GetObject" | "HeadObject") {
        return None;
    }
    let object = &call.checks.first()?.1;
    let bucket = format!(
        "arn:aws:s3:::{}",
        object.strip_prefix("arn:aws:s3:::")?.split('/').next()?
    );
    let resource_policy = resource_policy_for(&gate.registry.lock().expect("registry"), &bucket);
    let decision = policy::evaluate(
        &Principal::Role {
            arn: role.arn.clone(),
        },
        &role.policies,
        resource_policy.as_ref(),
        &Check {
            action: "s3:ListBucket",
            resource: &bucket,
            context: &call.context,
        },
    );
    gate.audit(&json!({
        "kind": "call",
        "stack": role.stack,
        "role": role.logical_id,
        "service": "s3",
        "operation": call.operation,
        "action": "s3:ListBucket",
        "resource": bucket,
        "allowed": decision.allowed(),
    }));
    (!decision.allowed()).then(|| denied("s3", &call.operation, "Access Denied"))
}

/// The role of the state machine moto is acting for: the one whose definition sends to the
/// queue in this request.
fn state_machine_role(registry: &Registry, body: &[u8]) -> Option<RoleRecord> {
    let url = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b["QueueUrl"].as_str().map(str::to_string))
        .or_else(|| {
            url::form_urlencoded::parse(body)
                .find(|(k, _)| k == "QueueUrl")
                .map(|(_, v)| v.into_owned())
        })?;
    let machine = registry
        .state_machines
        .iter()
        .find(|m| m.queue_urls.iter().any(|q| q == &url))?;
    registry.roles.get(&machine.role_access_key).cloned()
}

fn resource_policy_for(registry: &Registry, resource: &str) -> Option<Value> {
    // S3 object ARNs fall under their bucket's policy.
    let owner = if let Some(rest) = resource.strip_prefix("arn:aws:s3:::") {
        format!("arn:aws:s3:::{}", rest.split('/').next().unwrap_or(rest))
    } else {
        resource.to_string()
    };
    let policies = registry.resource_policies.get(&owner)?;
    let statements: Vec<Value> = policies
        .iter()
        .flat_map(|p| policy::statements(p).into_iter().cloned())
        .collect();
    Some(json!({"Statement": statements}))
}

/// Replaces the token/iterator placeholders with what issued them; the refusal AWS would give
/// when it cannot.
fn resolve_placeholders(gate: &Gate, call: &mut Call) -> Option<Response> {
    let registry = gate.registry.lock().expect("registry");
    if let Some(token) = &call.task_token {
        let Some(issuer) = registry.tokens.get(token).cloned() else {
            // A token AWS did not issue cannot be decoded: Step Functions answers InvalidToken
            // before anything else.
            return Some(error_json(
                StatusCode::BAD_REQUEST,
                "InvalidToken",
                "Invalid Token: the task token was not issued by this account",
            ));
        };
        for check in &mut call.checks {
            if check.1 == TASK_TOKEN_RESOURCE {
                check.1 = issuer.clone();
            }
        }
    }
    if let Some(iterator) = &call.shard_iterator {
        let Some(stream) = registry.iterators.get(iterator).cloned() else {
            loud("GetRecords with a shard iterator the gate has not seen issued");
            return Some(error_json(
                StatusCode::BAD_REQUEST,
                "ExpiredIteratorException",
                "Iterator expired or unknown to the gate",
            ));
        };
        for check in &mut call.checks {
            if check.1 == SHARD_ITERATOR_RESOURCE {
                check.1 = stream.clone();
            }
        }
    }
    None
}

/// Records what answers and sent messages reveal: shard iterators, task tokens.
fn learn(gate: &Gate, call: &Call, answer: &[u8]) {
    let mut registry = gate.registry.lock().expect("registry");
    let answer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    match (call.service.as_str(), call.operation.as_str()) {
        ("dynamodb", "GetShardIterator") => {
            if let (Some(iterator), Some((_, stream))) =
                (answer["ShardIterator"].as_str(), call.checks.first())
            {
                registry.iterators.insert(iterator.into(), stream.clone());
            }
        }
        ("dynamodb", "GetRecords") => {
            if let (Some(next), Some((_, stream))) =
                (answer["NextShardIterator"].as_str(), call.checks.first())
            {
                registry.iterators.insert(next.into(), stream.clone());
            }
        }
        ("states", "SendTaskSuccess" | "SendTaskFailure") => {
            if let Some(token) = &call.task_token {
                registry.closed_tokens.insert(token.clone());
            }
        }
        ("states", "GetActivityTask") => {
            if let (Some(token), Some((_, activity))) =
                (answer["taskToken"].as_str(), call.checks.first())
            {
                registry.tokens.insert(token.into(), activity.clone());
            }
        }
        _ => {}
    }
}

/// Attributes the task tokens in a state machine's outgoing SQS message to it, before the
/// message exists (a consumer could otherwise resume the task before the gate knew the token).
fn learn_outgoing_tokens(gate: &Gate, call: &Call, body: &[u8]) {
    if (call.service.as_str(), call.operation.as_str()) != ("sqs", "SendMessage") {
        return;
    }
    let (url, message_body) = match serde_json::from_slice::<Value>(body) {
        Ok(sent) => (
            sent["QueueUrl"].as_str().unwrap_or_default().to_string(),
            sent["MessageBody"].as_str().unwrap_or_default().to_string(),
        ),
        Err(_) => {
            let form: HashMap<String, String> =
                url::form_urlencoded::parse(body).into_owned().collect();
            (
                form.get("QueueUrl").cloned().unwrap_or_default(),
                form.get("MessageBody").cloned().unwrap_or_default(),
            )
        }
    };
    let message: Value = serde_json::from_str(&message_body).unwrap_or(Value::Null);
    let execution = message["executionArn"].as_str().map(str::to_string);
    let mut registry = gate.registry.lock().expect("registry");
    let found: Vec<(String, String)> = registry
        .state_machines
        .iter()
        .filter(|m| m.queue_urls.iter().any(|q| q == &url))
        .flat_map(|m| {
            m.token_fields
                .iter()
                .filter_map(|field| Some((message[field].as_str()?.to_string(), m.arn.clone())))
        })
        .collect();
    if let Some(execution) = execution {
        for (token, _) in &found {
            registry
                .token_executions
                .insert(token.clone(), execution.clone());
            // A new task of the same execution closes its previous one (it timed out).
            if let Some(previous) = registry
                .execution_tokens
                .insert(execution.clone(), token.clone())
                && &previous != token
            {
                registry.closed_tokens.insert(previous);
            }
        }
    }
    registry.tokens.extend(found);
}

fn register(gate: &Gate, what: &str, body: &[u8]) -> Response {
    fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    }
    let registry = || gate.registry.lock().expect("registry");
    let outcome: Result<Response, String> = match what {
        "roles" => parse::<RoleRecord>(body).map(|role| {
            gate.audit(&json!({"kind": "role", "record": role}));
            registry().roles.insert(role.access_key_id.clone(), role);
            StatusCode::NO_CONTENT.into_response()
        }),
        // A bucket or queue has one policy: a new one replaces it, as in AWS.
        "resource-policies" => parse::<ResourcePolicyRecord>(body).map(|record| {
            registry()
                .resource_policies
                .insert(record.resource, vec![record.policy]);
            StatusCode::NO_CONTENT.into_response()
        }),
        "bucket-cors" => parse::<crate::s3_cors::BucketCors>(body).map(|record| {
            registry().bucket_cors.insert(record.bucket, record.rules);
            StatusCode::NO_CONTENT.into_response()
        }),
        "state-machines" => parse::<StateMachineRecord>(body).map(|record| {
            let mut registry = registry();
            registry.state_machines.retain(|m| m.arn != record.arn);
            registry.state_machines.push(record);
            StatusCode::NO_CONTENT.into_response()
        }),
        "authorize" => parse::<AuthorizeRequest>(body)
            .map(|question| axum::Json(authorize(gate, &question)).into_response()),
        "faults" => parse::<Value>(body).and_then(|request| {
            let stack = request["stack"].as_str().unwrap_or_default().to_string();
            let mut faults = gate.faults.lock().expect("faults");
            match request["spec"].as_str() {
                Some(text) => {
                    let spec: crate::faults::FaultSpec = text.parse()?;
                    eprintln!("iam-gate: faults on for stack {stack}: {text}");
                    faults.insert(stack, Arc::new(crate::faults::Faults::new(spec)));
                }
                None => {
                    eprintln!("iam-gate: faults off for stack {stack}");
                    faults.remove(&stack);
                }
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }),
        "faults-summary" => parse::<Value>(body).map(|request| {
            let stack = request["stack"].as_str().unwrap_or_default();
            let summary = gate
                .faults
                .lock()
                .expect("faults")
                .get(stack)
                .map(|f| f.summary())
                .unwrap_or(Value::Null);
            axum::Json(summary).into_response()
        }),
        _ => Ok((StatusCode::NOT_FOUND, "unknown gate endpoint").into_response()),
    };
    outcome.unwrap_or_else(|e| (StatusCode::BAD_REQUEST, e).into_response())
}

/// A decision for a local stand-in of an AWS service (see [`AuthorizeRequest`]).
fn authorize(gate: &Gate, question: &AuthorizeRequest) -> AuthorizeAnswer {
    let role = gate
        .registry
        .lock()
        .expect("registry")
        .roles
        .get(&question.access_key_id)
        .cloned();
    let Some(role) = role else {
        loud(&format!("unknown access key {}", question.access_key_id));
        return AuthorizeAnswer {
            allowed: false,
            message: "The security token included in the request is invalid".into(),
        };
    };
    let context = BTreeMap::from([("aws:SecureTransport".to_string(), vec!["true".to_string()])]);
    let decision = policy::evaluate(
        &Principal::Role {
            arn: role.arn.clone(),
        },
        &role.policies,
        None,
        &Check {
            action: &question.action,
            resource: &question.resource,
            context: &context,
        },
    );
    let service = question.action.split(':').next().unwrap_or_default();
    gate.audit(&json!({
        "kind": "call",
        "stack": role.stack,
        "role": role.logical_id,
        "service": service,
        "operation": question.action.split(':').nth(1).unwrap_or_default(),
        "action": question.action,
        "resource": question.resource,
        "allowed": decision.allowed(),
    }));
    let message = if decision.allowed() {
        "allowed".to_string()
    } else {
        let message = format!(
            "User: {} is not authorized to perform: {} on resource: {} because no identity-based policy allows the action",
            session_arn(&role.arn),
            question.action,
            question.resource
        );
        eprintln!("iam-gate: AccessDenied {}: {message}", role.logical_id);
        message
    };
    AuthorizeAnswer {
        allowed: decision.allowed(),
        message,
    }
}

type Forwarded = (StatusCode, HeaderMap, Bytes);

async fn forward_raw(
    gate: &Gate,
    parts: &axum::http::request::Parts,
    body: Bytes,
) -> Result<Forwarded, Response> {
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut request = gate.http.request(
        parts.method.clone(),
        format!("{}{path_and_query}", gate.emulator),
    );
    for (name, value) in &parts.headers {
        // The Host header stays the gate's: moto builds queue URLs and S3 hosts from it.
        if name == axum::http::header::CONNECTION || name == axum::http::header::CONTENT_LENGTH {
            continue;
        }
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.map_err(|e| {
        (
            StatusCode::BAD_GATEWAY,
            format!("the emulator did not answer: {e}"),
        )
            .into_response()
    })?;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.map_err(|e| {
        (
            StatusCode::BAD_GATEWAY,
            format!("the emulator's answer was cut off: {e}"),
        )
            .into_response()
    })?;
    Ok((status, headers, bytes))
}

async fn forward(gate: &Gate, parts: &axum::http::request::Parts, body: Bytes) -> Response {
    match forward_raw(gate, parts, body).await {
        Ok((status, headers, bytes)) => build_response(status, headers, bytes),
        Err(response) => response,
    }
}

fn build_response(status: StatusCode, headers: HeaderMap, bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name == axum::http::header::TRANSFER_ENCODING || name == axum::http::header::CONNECTION {
            continue;
        }
        response.headers_mut().append(name, value.clone());
    }
    response
}

/// AccessDenied in each service's own shape (what the SDK parses into its error types).
pub fn denied(service: &str, operation: &str, message: &str) -> Response {
    match service {
        "s3" => {
            let mut response = s3_error(StatusCode::FORBIDDEN, "AccessDenied", message);
            if operation == "HeadObject" || operation == "HeadBucket" {
                // HEAD answers carry no body.
                *response.body_mut() = Body::empty();
            }
            response
        }
        "sns" => xml(
            StatusCode::FORBIDDEN,
            format!(
                "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>{}</Message></Error><RequestId>local</RequestId></ErrorResponse>",
                escape(message)
            ),
        ),
        "sqs" => {
            let mut response = error_json(
                StatusCode::BAD_REQUEST,
                "com.amazonaws.sqs#AccessDenied",
                message,
            );
            response.headers_mut().insert(
                "x-amzn-query-error",
                HeaderValue::from_static("AccessDenied;Sender"),
            );
            response
        }
        "ses" => {
            let mut response = (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"message": message})),
            )
                .into_response();
            response.headers_mut().insert(
                "x-amzn-errortype",
                HeaderValue::from_static("AccessDeniedException"),
            );
            response
        }
        "dynamodb" => error_json(
            StatusCode::BAD_REQUEST,
            "com.amazon.coral.service#AccessDeniedException",
            message,
        ),
        _ => error_json(StatusCode::BAD_REQUEST, "AccessDeniedException", message),
    }
}
