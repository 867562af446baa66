//! The local API Gateway, on one loopback port:
//!
//! - REST: `/{path}` -> an API Gateway REST proxy event (path and query parameters, headers,
//!   API key check, CORS preflight, the template's gateway responses) -> the function's process;
//! - WebSocket: `ws://…/_ws/{ApiLogicalId}` -> `$connect`, route-selected messages and
//!   `$disconnect` events, and the `@connections` management API under the same path;
//! - `GET /_local/mail`: the emails the emulator's SES accepted (there is no real inbox);
//! - `GET /_local/queues/{QueueLogicalId}`: a look at up to 10 waiting messages (left in place);
//! - `GET /_local/health`: how many function processes exited unasked (crashes, timeouts);
//! - `GET /_local/metrics`: the metrics CloudWatch extracted from the functions' EMF lines.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE};
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::apigateway::apis::{GatewayResponse, RestApi, WebSocketApi};
use crate::apigateway::rest::cognito_authorizer::KeySets;
use crate::cloudformation::template::items;
use crate::cloudwatch::LogSink;
use crate::emulator::{ACCOUNT_ID, sdk_error};
use crate::lambda::runtime::{Functions, InvokeError};

const LABEL: &str = "gateway";

/// Everything the gateway routes to.
pub struct Gateway {
    pub functions: Arc<Functions>,
    pub rest: Vec<RestApi>,
    pub websockets: Vec<WebSocketApi>,
    /// The value clients send as `x-api-key` where a route requires a key: the template's
    /// enabled `AWS::ApiGateway::ApiKey` in a usage plan of the API's stage ([`apis::usable_api_key`]);
    /// `None` when it has none, and then no keyed route can be called.
    pub api_key: Option<String>,
    /// `127.0.0.1:port`, as requests' `Host`.
    pub authority: String,
    /// The emulator, for the local mailbox.
    pub emulator: String,
    /// The API id each API's events carry (its local physical id).
    pub api_ids: HashMap<String, String>,
    /// Queue logical id -> URL, for `GET /_local/queues/{id}`.
    pub queues: BTreeMap<String, String>,
    pub sqs: aws_sdk_sqs::Client,
    /// Where the gateway reports integration failures (next to the functions' own logs).
    pub log: Arc<dyn LogSink>,
    /// Decides `execute-api:ManageConnections` for `@connections` calls (IAM-authorised in AWS).
    pub gate: crate::iam::GateClient,
    pub metrics: Arc<crate::cloudwatch::MetricStore>,
}

struct Connection {
    outbox: mpsc::UnboundedSender<Message>,
    connected_at: u64,
    last_active: AtomicU64,
    user_agent: String,
}

struct Shared {
    gateway: Gateway,
    /// Open WebSocket connections by API logical id, then connection id.
    connections: Mutex<HashMap<String, HashMap<String, Arc<Connection>>>>,
    http: reqwest::Client,
    /// The user pools' published keys, for the REST APIs' Cognito authorizers.
    key_sets: KeySets,
}

type AppState = Arc<Shared>;

pub fn router(gateway: Gateway) -> Router {
    let http = reqwest::Client::new();
    let shared = Arc::new(Shared {
        key_sets: KeySets::new(&gateway.emulator, http.clone()),
        gateway,
        connections: Mutex::new(HashMap::new()),
        http,
    });
    Router::new()
        .route("/_local/mail", get(mailbox))
        .route("/_local/queues/{queue}", get(peek_queue))
        .route("/_local/health", get(health))
        .route("/_local/metrics", get(metrics))
        .route("/_ws/{api}", any(websocket_connect))
        .route(
            "/_ws/{api}/@connections/{connection_id}",
            any(manage_connection),
        )
        .fallback(rest)
        .with_state(shared)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default() // a clock before 1970: unreachable
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `21/Nov/2026:15:04:05 +0000`, API Gateway's `requestTime`.
fn request_time() -> String {
    let format = time::macros::format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .expect("the current UTC time has this form")
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// API Gateway's own `{"message": ...}` answer.
fn message(status: StatusCode, text: impl std::fmt::Display) -> Response {
    json_response(status, json!({"message": text.to_string()}))
}

/// A single-value map (the last value of each name) and a multi-value one (every value).
fn single_and_multi(pairs: impl Iterator<Item = (String, String)>) -> (Value, Value) {
    let mut single = Map::new();
    let mut multi: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (name, value) in pairs {
        single.insert(name.clone(), json!(value));
        multi.entry(name).or_default().push(json!(value));
    }
    (Value::Object(single), json!(multi))
}

/// Single- and multi-value header maps, as API Gateway's proxy events carry them.
fn header_maps(headers: &HeaderMap) -> (Value, Value) {
    single_and_multi(headers.iter().map(|(name, value)| {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        (name.to_string(), value)
    }))
}

/// Single- and multi-value query maps (decoded), `null` when there is no query string.
fn query_maps(query: Option<&str>) -> (Value, Value) {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return (Value::Null, Value::Null);
    };
    single_and_multi(url::form_urlencoded::parse(query.as_bytes()).into_owned())
}

/// A request body as API Gateway passes it on: text as is, anything else base64-encoded.
fn body_field(body: &[u8]) -> (Value, bool) {
    if body.is_empty() {
        return (Value::Null, false);
    }
    match std::str::from_utf8(body) {
        Ok(text) => (json!(text), false),
        Err(_) => (json!(BASE64.encode(body)), true),
    }
}

// --- REST ---------------------------------------------------------------------------------------

/// A response API Gateway itself generates, shaped by the template's `GatewayResponses`
/// (`kind`, else `DEFAULT_4XX` / `DEFAULT_5XX`).
fn gateway_response(api: &RestApi, kind: &str, status: StatusCode, message: &str) -> Response {
    let default = if status.is_server_error() {
        "DEFAULT_5XX"
    } else {
        "DEFAULT_4XX"
    };
    let configured = api
        .gateway_responses
        .get(kind)
        .or_else(|| api.gateway_responses.get(default));
    let fallback = GatewayResponse::default();
    let configured = configured.unwrap_or(&fallback);
    let body = match &configured.json_template {
        Some(template) => template
            .replace("$context.error.responseType", kind)
            .replace("$context.error.messageString", &json!(message).to_string()),
        None => json!({"message": message}).to_string(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_str(kind).expect("ascii"),
    );
    for (name, value) in &configured.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

/// What a REST request reaches: a CORS preflight mock, or a route of an API.
enum RestTarget<'a> {
    Preflight(&'a crate::apigateway::apis::Cors),
    Route(
        &'a RestApi,
        &'a crate::apigateway::apis::RestRoute,
        BTreeMap<String, String>,
    ),
}

/// Several REST APIs would share the root; the template has one, and routes are matched across
/// all of them in template order.
fn rest_target<'a>(apis: &'a [RestApi], method: &Method, path: &str) -> Option<RestTarget<'a>> {
    for api in apis {
        if method == Method::OPTIONS
            && let Some(cors) = api.preflight_for(path)
        {
            return Some(RestTarget::Preflight(cors));
        }
        if let Some((route, path_parameters)) = api.find(method.as_str(), path) {
            return Some(RestTarget::Route(api, route, path_parameters));
        }
    }
    None
}

/// The CORS mock integration's answer to a preflight.
fn preflight_response(cors: &crate::apigateway::apis::Cors) -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    // API Gateway sends the headers the mock integration maps, and no others.
    if let Some(origin) = &cors.allow_origin {
        set("access-control-allow-origin", origin);
    }
    if let Some(methods) = &cors.allow_methods {
        set("access-control-allow-methods", methods);
    }
    if let Some(allow) = &cors.allow_headers {
        set("access-control-allow-headers", allow);
    }
    if let Some(max_age) = &cors.max_age {
        set("access-control-max-age", max_age);
    }
    response
}

async fn rest(State(shared): State<AppState>, request: Request) -> Response {
    let gateway = &shared.gateway;
    let (parts, body) = request.into_parts();
    let Some(first_api) = gateway.rest.first() else {
        return message(StatusCode::NOT_FOUND, "no REST API");
    };
    // API Gateway's payload limit is 10 MB; what it answers is a gateway response
    // (REQUEST_TOO_LARGE, else DEFAULT_4XX), shaped by the template.
    let Ok(body) = axum::body::to_bytes(body, 10 * 1024 * 1024).await else {
        return gateway_response(
            first_api,
            "REQUEST_TOO_LARGE",
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request Too Long",
        );
    };
    let (api, route, path_parameters) =
        match rest_target(&gateway.rest, &parts.method, parts.uri.path()) {
            Some(RestTarget::Preflight(cors)) => return preflight_response(cors),
            Some(RestTarget::Route(api, route, path_parameters)) => (api, route, path_parameters),
            None => {
                return gateway_response(
                    first_api,
                    "MISSING_AUTHENTICATION_TOKEN",
                    StatusCode::FORBIDDEN,
                    "Missing Authentication Token",
                );
            }
        };
    // The authorizer runs before the API key is checked (a request with neither is 401).
    let mut claims = None;
    if let Some(authorizer) = &route.authorizer {
        match authorizer.authorize(&parts.headers, &shared.key_sets).await {
            Ok(verified) => claims = Some(verified),
            Err(refusal) => {
                let status = StatusCode::UNAUTHORIZED;
                return gateway_response(api, "UNAUTHORIZED", status, refusal.message());
            }
        }
    }
    let sent_key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if route.api_key_required && (sent_key.is_none() || sent_key != gateway.api_key.as_deref()) {
        return gateway_response(api, "INVALID_API_KEY", StatusCode::FORBIDDEN, "Forbidden");
    }
    let mut event = gateway.proxy_event(api, route, path_parameters, &parts, &body);
    if let Some(claims) = claims {
        event["requestContext"]["authorizer"] = json!({"claims": claims});
    }
    gateway.integrate(api, route, &parts, &event).await
}

impl Gateway {
    /// The Lambda proxy integration's input event (API Gateway's REST "Input format").
    fn proxy_event(
        &self,
        api: &RestApi,
        route: &crate::apigateway::apis::RestRoute,
        path_parameters: BTreeMap<String, String>,
        parts: &axum::http::request::Parts,
        body: &[u8],
    ) -> Value {
        let (path, method) = (parts.uri.path(), parts.method.as_str());
        let (headers, multi_value_headers) = header_maps(&parts.headers);
        let (query, multi_value_query) = query_maps(parts.uri.query());
        let (body, is_base64) = body_field(body);
        let sent_key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let request_id = request_id();
        json!({
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": multi_value_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_value_query,
            "pathParameters": if path_parameters.is_empty() { Value::Null } else { json!(path_parameters) },
            "stageVariables": null,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": self.api_ids.get(&api.logical_id),
                "resourceId": "local",
                "resourcePath": route.path,
                "httpMethod": method,
                "path": format!("/{}{}", api.stage, path),
                "stage": api.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "requestTime": request_time(),
                "requestTimeEpoch": now_ms(),
                "protocol": "HTTP/1.1",
                "domainName": self.authority,
                "identity": {
                    "sourceIp": "127.0.0.1",
                    "userAgent": parts.headers.get("user-agent").and_then(|v| v.to_str().ok()),
                    "apiKey": if route.api_key_required { sent_key } else { None },
                },
            },
            "body": body,
            "isBase64Encoded": is_base64,
        })
    }

    /// Invokes the route's function; its result, or the gateway response for a failed
    /// integration.
    async fn integrate(
        &self,
        api: &RestApi,
        route: &crate::apigateway::apis::RestRoute,
        parts: &axum::http::request::Parts,
        event: &Value,
    ) -> Response {
        let failure = || {
            gateway_response(
                api,
                "INTEGRATION_FAILURE",
                StatusCode::BAD_GATEWAY,
                "Internal server error",
            )
        };
        match self.functions.invoke(&route.function, event).await {
            Ok(result) => proxy_response(&result).unwrap_or_else(failure),
            Err(InvokeError::Timeout { .. }) => gateway_response(
                api,
                "INTEGRATION_TIMEOUT",
                StatusCode::GATEWAY_TIMEOUT,
                "Endpoint request timed out",
            ),
            Err(err) => {
                self.log.line(
                    LABEL,
                    &format!(
                        "{} {}: integration failed: {err}",
                        parts.method,
                        parts.uri.path()
                    ),
                );
                failure()
            }
        }
    }
}

/// A Lambda proxy integration result -> HTTP response (`None` if it is malformed, which API
/// Gateway answers with 502).
fn proxy_response(result: &Value) -> Option<Response> {
    let status = StatusCode::from_u16(result["statusCode"].as_u64()? as u16).ok()?;
    let body = match result["body"].as_str() {
        Some(text) if result["isBase64Encoded"] == true => BASE64.decode(text).ok()?,
        Some(text) => text.as_bytes().to_vec(),
        None => Vec::new(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    for (name, value) in result["headers"].as_object().into_iter().flatten() {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::try_from(name.as_str()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(name, value);
        }
    }
    for (name, values) in result["multiValueHeaders"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let Ok(name) = HeaderName::try_from(name.as_str()) else {
            continue;
        };
        headers.remove(&name);
        for value in items(values).iter().filter_map(Value::as_str) {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(name.clone(), value);
            }
        }
    }
    Some(response)
}

// --- WebSocket ----------------------------------------------------------------------------------

impl Shared {
    fn websocket_api(&self, logical_id: &str) -> Option<&WebSocketApi> {
        self.gateway
            .websockets
            .iter()
            .find(|api| api.logical_id == logical_id)
    }

    fn connection(&self, api: &str, connection_id: &str) -> Option<Arc<Connection>> {
        self.connections
            .lock()
            .expect("lock")
            .get(api)?
            .get(connection_id)
            .cloned()
    }

    fn websocket_event(
        &self,
        api: &WebSocketApi,
        connection_id: &str,
        route_key: &str,
        event_type: &str,
        connection: &Connection,
    ) -> Value {
        let request_id = request_id();
        json!({
            "requestContext": {
                "routeKey": route_key,
                "eventType": event_type,
                "extendedRequestId": request_id,
                "requestTime": request_time(),
                "messageDirection": "IN",
                "stage": api.stage,
                "connectedAt": connection.connected_at,
                "requestTimeEpoch": now_ms(),
                "identity": {"sourceIp": "127.0.0.1", "userAgent": connection.user_agent},
                "requestId": request_id,
                "domainName": self.gateway.authority,
                "connectionId": connection_id,
                "apiId": self.gateway.api_ids.get(&api.logical_id),
            },
            "isBase64Encoded": false,
        })
    }

    /// Runs the `$connect` route's function, if the API has one: a non-2xx result refuses the
    /// connection with that result, a failed integration with 500.
    async fn authorize_connect(
        &self,
        api: &WebSocketApi,
        connection_id: &str,
        connection: &Connection,
        parts: &axum::http::request::Parts,
    ) -> Option<Response> {
        let function = api.routes.get("$connect")?;
        let mut event = self.websocket_event(api, connection_id, "$connect", "CONNECT", connection);
        let (headers, multi_value_headers) = header_maps(&parts.headers);
        let (query_single, query_multi) = query_maps(parts.uri.query());
        event["headers"] = headers;
        event["multiValueHeaders"] = multi_value_headers;
        event["queryStringParameters"] = query_single;
        event["multiValueQueryStringParameters"] = query_multi;
        match self.gateway.functions.invoke(function, &event).await {
            Ok(result) => {
                // A result without a statusCode accepts the connection, as API Gateway does.
                let status = result["statusCode"].as_u64().unwrap_or(200);
                (!(200..300).contains(&status)).then(|| {
                    proxy_response(&result)
                        .unwrap_or_else(|| message(StatusCode::FORBIDDEN, "Forbidden"))
                })
            }
            Err(err) => {
                self.gateway
                    .log
                    .line(LABEL, &format!("$connect failed: {err}"));
                Some(message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal server error",
                ))
            }
        }
    }
}

async fn websocket_connect(
    State(shared): State<AppState>,
    Path(api_id): Path<String>,
    request: Request,
) -> Response {
    let Some(api) = shared.websocket_api(&api_id) else {
        return message(StatusCode::NOT_FOUND, format!("no WebSocket API {api_id}"));
    };
    let (mut parts, _) = request.into_parts();
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let expected = format!("a WebSocket handshake is expected here: {rejection}");
            return message(StatusCode::UPGRADE_REQUIRED, expected);
        }
    };
    let connection_id = URL_SAFE.encode(&uuid::Uuid::new_v4().as_bytes()[..12]);
    let connected_at = now_ms();
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default() // no User-Agent header: an empty identity.userAgent
        .to_string();
    let (outbox, inbox) = mpsc::unbounded_channel();
    let connection = Arc::new(Connection {
        outbox,
        connected_at,
        last_active: AtomicU64::new(connected_at),
        user_agent,
    });
    if let Some(refusal) = shared
        .authorize_connect(api, &connection_id, &connection, &parts)
        .await
    {
        return refusal;
    }
    shared
        .connections
        .lock()
        .expect("lock")
        .entry(api_id.clone())
        .or_default()
        .insert(connection_id.clone(), connection.clone());
    upgrade.on_upgrade(move |socket| {
        serve_socket(shared, api_id, connection_id, connection, socket, inbox)
    })
}

/// Relays one client's frames to its routes and the management API's posts to the client, then
/// reports `$disconnect`.
async fn serve_socket(
    shared: AppState,
    api_id: String,
    connection_id: String,
    connection: Arc<Connection>,
    socket: WebSocket,
    mut inbox: mpsc::UnboundedReceiver<Message>,
) {
    let (mut to_client, mut from_client) = socket.split();
    loop {
        tokio::select! {
            outgoing = inbox.recv() => {
                let Some(message) = outgoing else { break };
                let closing = matches!(message, Message::Close(_));
                if to_client.send(message).await.is_err() || closing {
                    break;
                }
            }
            incoming = from_client.next() => {
                let (body, is_base64) = match incoming {
                    Some(Ok(Message::Text(text))) => (text.to_string(), false),
                    Some(Ok(Message::Binary(bytes))) => (BASE64.encode(&bytes), true),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                };
                connection.last_active.store(now_ms(), Ordering::Relaxed);
                if let Some(reply) = route_message(&shared, &api_id, &connection_id, &connection, body, is_base64).await
                    && to_client.send(Message::Text(reply.to_string().into())).await.is_err()
                {
                    break;
                }
            }
        }
    }
    if let Some(connections) = shared.connections.lock().expect("lock").get_mut(&api_id) {
        connections.remove(&connection_id);
    }
    let Some(api) = shared.websocket_api(&api_id) else {
        return;
    };
    if let Some(function) = api.routes.get("$disconnect") {
        let mut event = shared.websocket_event(
            api,
            &connection_id,
            "$disconnect",
            "DISCONNECT",
            &connection,
        );
        event["disconnectStatusCode"] = json!(1000);
        event["disconnectReason"] = json!("");
        if let Err(err) = shared.gateway.functions.invoke(function, &event).await {
            shared
                .gateway
                .log
                .line(LABEL, &format!("$disconnect failed: {err}"));
        }
    }
}

/// Invokes the route the selection expression picks; returns what API Gateway would send back
/// to the client on its own (errors only: the routes have no route responses).
async fn route_message(
    shared: &Shared,
    api_id: &str,
    connection_id: &str,
    connection: &Connection,
    body: String,
    is_base64: bool,
) -> Option<Value> {
    let api = shared.websocket_api(api_id)?;
    let selected = api.selection_pointer.as_deref().and_then(|pointer| {
        serde_json::from_str::<Value>(&body)
            .ok()?
            .pointer(pointer)?
            .as_str()
            .map(str::to_string)
    });
    let route = selected
        .filter(|key| api.routes.contains_key(key))
        .or_else(|| {
            api.routes
                .contains_key("$default")
                .then(|| "$default".to_string())
        });
    let mut event = shared.websocket_event(
        api,
        connection_id,
        route.as_deref().unwrap_or("$default"),
        "MESSAGE",
        connection,
    );
    let request_id = event["requestContext"]["requestId"].clone();
    let error = |message: &str| json!({"message": message, "connectionId": connection_id, "requestId": request_id});
    let Some(route) = route else {
        return Some(error("Forbidden"));
    };
    event["body"] = json!(body);
    event["isBase64Encoded"] = json!(is_base64);
    match shared
        .gateway
        .functions
        .invoke(&api.routes[&route], &event)
        .await
    {
        Ok(_) => None,
        Err(err) => {
            shared
                .gateway
                .log
                .line(LABEL, &format!("WebSocket route {route} failed: {err}"));
            Some(error("Internal server error"))
        }
    }
}

/// API Gateway's answer for a connection that is not open: 410 with the error type header the
/// SDK reads (`GoneException`).
fn gone() -> Response {
    let mut response = json_response(StatusCode::GONE, json!({"message": null}));
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_static("GoneException"),
    );
    response
}

impl Shared {
    /// The management API is IAM-authorised: the caller's role must allow
    /// `execute-api:ManageConnections` on
    /// `arn:aws:execute-api:region:account:api/stage/METHOD/@connections/id`.
    async fn authorize_management(
        &self,
        headers: &HeaderMap,
        api_id: &str,
        connection_id: &str,
        method: &Method,
    ) -> Option<Response> {
        let Some((key, _)) = crate::iam::sigv4::credential_scope(headers, &[]) else {
            return Some(message(
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
            ));
        };
        let (Some(api), Some(physical)) =
            (self.websocket_api(api_id), self.gateway.api_ids.get(api_id))
        else {
            let unknown = format!("no WebSocket API {api_id}");
            return Some(message(StatusCode::NOT_FOUND, unknown));
        };
        let question = crate::iam::AuthorizeRequest {
            access_key_id: key,
            action: "execute-api:ManageConnections".into(),
            resource: format!(
                "arn:aws:execute-api:{}:{ACCOUNT_ID}:{physical}/{}/{method}/@connections/{connection_id}",
                crate::emulator::REGION,
                api.stage
            ),
        };
        match self.gateway.gate.authorize(&question).await {
            Ok(answer) if answer.allowed => None,
            Ok(answer) => Some(message(StatusCode::FORBIDDEN, answer.message)),
            Err(err) => Some(message(StatusCode::INTERNAL_SERVER_ERROR, err)),
        }
    }
}

/// `GET @connections/{id}`: when it connected, when it last spoke, who it is.
fn describe_connection(connection: &Connection) -> Response {
    let at = |ms: u64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
    };
    json_response(
        StatusCode::OK,
        json!({
            "connectedAt": at(connection.connected_at),
            "lastActiveAt": at(connection.last_active.load(Ordering::Relaxed)),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": connection.user_agent},
        }),
    )
}

/// `POST` (send), `GET` (describe), `DELETE` (close) `/@connections/{id}`; 410 for ids that are
/// not connected, as API Gateway answers.
async fn manage_connection(
    State(shared): State<AppState>,
    Path((api_id, connection_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = shared
        .authorize_management(&headers, &api_id, &connection_id, &method)
        .await
    {
        return refusal;
    }
    let Some(connection) = shared.connection(&api_id, &connection_id) else {
        return gone();
    };
    match method {
        Method::POST => {
            let message = match String::from_utf8(body.to_vec()) {
                Ok(text) => Message::Text(text.into()),
                Err(bytes) => Message::Binary(bytes.into_bytes().into()),
            };
            if connection.outbox.send(message).is_err() {
                return gone();
            }
            StatusCode::OK.into_response()
        }
        Method::GET => describe_connection(&connection),
        Method::DELETE => {
            let _ = connection.outbox.send(Message::Close(None));
            StatusCode::NO_CONTENT.into_response()
        }
        _ => message(StatusCode::METHOD_NOT_ALLOWED, "use POST, GET or DELETE"),
    }
}

// --- Mailbox -------------------------------------------------------------------------------------

/// moto's dump of its state (`/moto-api/data.json`). moto builds it from live state and can fail
/// while another request changes it, so a failed read is tried again, five times in all.
async fn emulator_dump(shared: &Shared) -> Result<Value, reqwest::Error> {
    let url = format!("{}/moto-api/data.json", shared.gateway.emulator);
    let mut attempt = 0;
    loop {
        let mut request = shared.http.get(&url);
        if let Ok(token) = std::env::var("LOCAL_GATE_TOKEN") {
            request = request.header(crate::gate::control::ADMIN_HEADER, token);
        }
        match async { request.send().await?.json::<Value>().await }.await {
            Err(_) if attempt < 4 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            answered => return answered,
        }
    }
}

/// `GET /_local/mail[?to=address]`: every email SES accepted in the emulator, oldest first, with
/// the links in each body listed for convenience.
async fn mailbox(
    State(shared): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let data = match emulator_dump(&shared).await {
        Ok(data) => data,
        Err(err) => {
            let silent = format!("the emulator did not answer: {err}");
            return message(StatusCode::BAD_GATEWAY, silent);
        }
    };
    let to = query.get("to");
    let messages: Vec<Value> = data
        .pointer("/ses/Message")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| {
            to.is_none_or(|to| {
                m.pointer("/destinations/ToAddresses")
                    .and_then(Value::as_array)
                    .is_some_and(|a| a.iter().any(|a| a.as_str() == Some(to.as_str())))
            })
        })
        .map(|m| {
            let body = m["body"].as_str().unwrap_or_default(); // no body: no text, no links
            json!({
                "id": m["id"],
                "from": m["source"],
                "to": m.pointer("/destinations/ToAddresses"),
                "subject": m["subject"],
                "body": body,
                "links": links(body),
            })
        })
        .collect();
    json_response(StatusCode::OK, json!({"messages": messages}))
}

async fn health(State(shared): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        json!({"unexpected_exits": shared.gateway.functions.unexpected_exits()}),
    )
}

async fn metrics(State(shared): State<AppState>) -> Response {
    json_response(StatusCode::OK, shared.gateway.metrics.snapshot())
}

/// Up to 10 messages waiting in a queue, received with a zero visibility timeout so they stay
/// where they are; JSON bodies are shown parsed.
async fn peek_queue(State(shared): State<AppState>, Path(queue): Path<String>) -> Response {
    let Some(url) = shared.gateway.queues.get(&queue) else {
        let known: Vec<&String> = shared.gateway.queues.keys().collect();
        return json_response(
            StatusCode::NOT_FOUND,
            json!({"message": format!("no queue {queue}"), "queues": known}),
        );
    };
    let received = shared
        .gateway
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .send()
        .await;
    match received {
        Ok(out) => {
            let messages: Vec<Value> = out
                .messages
                .unwrap_or_default() // no Messages: nothing waiting
                .into_iter()
                .map(|m| {
                    let body = m.body.unwrap_or_default(); // SQS bodies are never absent
                    serde_json::from_str(&body).unwrap_or(Value::String(body))
                })
                .collect();
            json_response(
                StatusCode::OK,
                json!({"queue": queue, "messages": messages}),
            )
        }
        Err(err) => message(StatusCode::BAD_GATEWAY, sdk_error(err)),
    }
}

/// `http(s)://` links in a text or HTML body (HTML-escaped ampersands restored).
fn links(body: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    for (start, _) in body.match_indices("http") {
        let rest = &body[start..];
        if !(rest.starts_with("http://") || rest.starts_with("https://")) {
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(rest.len());
        let link = rest[..end].replace("&amp;", "&");
        if !found.contains(&link) {
            found.push(link);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_found_once_each_in_text_and_html() {
        let body = "Approve: http://127.0.0.1:3000/approvals/succeed?taskToken=a%2Bb\n<a href=\"http://127.0.0.1:3000/approvals/succeed?taskToken=a%2Bb\">x</a> https://e.example/x?a=1&amp;b=2";
        assert_eq!(
            links(body),
            [
                "http://127.0.0.1:3000/approvals/succeed?taskToken=a%2Bb",
                "https://e.example/x?a=1&b=2"
            ]
        );
    }

    #[test]
    fn proxy_results_become_responses_and_malformed_ones_do_not() {
        let ok = proxy_response(&json!({
            "statusCode": 201,
            "headers": {"content-type": "application/json"},
            "multiValueHeaders": {"set-cookie": ["a=1", "b=2"]},
            "body": "{}",
        }))
        .expect("well-formed");
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers().get_all("set-cookie").iter().count(), 2);
        assert!(proxy_response(&json!({"body": "no status"})).is_none());
        let binary =
            proxy_response(&json!({"statusCode": 200, "body": "AAE=", "isBase64Encoded": true}))
                .expect("well-formed");
        assert_eq!(binary.status(), 200);
    }

    #[test]
    fn query_strings_keep_every_value_and_decode() {
        let (single, multi) = query_maps(Some("a=1&a=2&b=x%20y"));
        assert_eq!(single, json!({"a": "2", "b": "x y"}));
        assert_eq!(multi, json!({"a": ["1", "2"], "b": ["x y"]}));
        assert_eq!(query_maps(None).0, Value::Null);
    }
}
