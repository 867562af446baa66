//! Test harness: every integration test provisions its own resources from template.yaml in the
//! local emulator (unique name prefix, so tests run in parallel) and drives the real handlers
//! with API Gateway / event-source payloads parsed by the same crates Lambda uses.

use std::sync::{Arc, OnceLock};

use aws_config::SdkConfig;
use lambda_http::{Body, Request, Response};
use local_stack::cloudformation::provision::Stack;
use local_stack::cloudformation::template::Template;
use local_stack::emulator;
use serde_json::{Value, json};

pub use local_stack;

pub mod fake_connections;
pub mod fake_sfn;
pub mod samples;

/// The project template, parsed once per test binary.
pub fn template() -> Arc<Template> {
    static TEMPLATE: OnceLock<Arc<Template>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| Arc::new(Template::load_project().expect("template.yaml parses")))
        .clone()
}

/// SDK configuration for the emulator; panics with a one-line instruction when it is not running.
pub async fn sdk() -> SdkConfig {
    let endpoint = match emulator::endpoint_from_env().await {
        Ok(endpoint) => endpoint,
        Err(err) => panic!("{err}"),
    };
    emulator::sdk_config(&endpoint).await
}

/// A fresh, isolated stack (nothing provisioned until asked).
pub async fn stack() -> Stack {
    Stack::isolated(template(), sdk().await)
}

/// A signed-in person as API Gateway's Cognito authorizer hands them to a function
/// (`requestContext.authorizer.claims`, every value a string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub sub: String,
    pub email: String,
    pub name: String,
    /// `cognito:groups` as the authorizer passes it (`"staff"`), if any.
    pub groups: Option<String>,
}

impl Person {
    /// A person of their own (a fresh `sub`), with a verified address.
    pub fn new(name: &str, email: &str) -> Self {
        Self {
            sub: uuid::Uuid::new_v4().to_string(),
            email: email.to_string(),
            name: name.to_string(),
            groups: None,
        }
    }

    pub fn in_group(mut self, group: &str) -> Self {
        self.groups = Some(group.to_string());
        self
    }

    pub fn claims(&self) -> Value {
        let mut claims = json!({
            "sub": self.sub, "cognito:username": self.sub, "email": self.email,
            "email_verified": "true", "name": self.name, "token_use": "id",
            "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_tests",
            "aud": "tests-client", "auth_time": "1795273200",
            "iat": "Sat Nov 21 15:00:00 UTC 2026", "exp": "Sat Nov 21 16:00:00 UTC 2026",
        });
        if let Some(groups) = &self.groups {
            claims["cognito:groups"] = json!(groups);
        }
        claims
    }
}

/// The person every [`Rest`] request is made as unless it says otherwise.
pub fn ann() -> Person {
    Person {
        sub: "0d6c2a4e-1f3b-4c5d-8e9f-a0b1c2d3e4f5".into(),
        email: "ann@example.com".into(),
        name: "Ann Lee".into(),
        groups: None,
    }
}

/// Builds API Gateway REST (v1 proxy) events, and `lambda_http` requests from them.
#[derive(Debug, Clone)]
pub struct Rest {
    method: String,
    path: String,
    resource: Option<String>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// Who the authorizer verified (`None`: a route without one).
    person: Option<Person>,
}

impl Rest {
    pub fn new(method: &str, path: &str) -> Self {
        Self {
            method: method.to_string(),
            path: path.to_string(),
            resource: None,
            query: Vec::new(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: None,
            person: Some(ann()),
        }
    }
    /// Made as `person` (the default is [`ann`]).
    pub fn as_person(mut self, person: &Person) -> Self {
        self.person = Some(person.clone());
        self
    }
    /// Made with no verified person (a route without the authorizer).
    pub fn anonymous(mut self) -> Self {
        self.person = None;
        self
    }
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }
    /// The route template API Gateway matched (e.g. `/items/{id}`); path parameters follow from it.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_string());
        self
    }
    pub fn query(mut self, key: &str, value: &str) -> Self {
        self.query.push((key.into(), value.into()));
        self
    }
    pub fn header(mut self, key: &str, value: &str) -> Self {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(key));
        self.headers.push((key.into(), value.into()));
        self
    }
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self
    }
    pub fn raw_body(mut self, body: &str) -> Self {
        self.body = Some(body.to_string());
        self
    }

    pub fn to_event(&self) -> Value {
        let resource = self.resource.clone().unwrap_or_else(|| self.path.clone());
        let mut path_parameters = serde_json::Map::new();
        for (template, actual) in resource.split('/').zip(self.path.split('/')) {
            if let Some(name) = template.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                path_parameters.insert(name.to_string(), Value::String(actual.to_string()));
            }
        }
        let mut single = serde_json::Map::new();
        let mut multi = serde_json::Map::new();
        for (k, v) in &self.query {
            single.insert(k.clone(), Value::String(v.clone()));
            multi
                .entry(k.clone())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("array")
                .push(Value::String(v.clone()));
        }
        let headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let multi_headers: serde_json::Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!([v])))
            .collect();
        json!({
            "resource": resource,
            "path": self.path,
            "httpMethod": self.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": if single.is_empty() { Value::Null } else { Value::Object(single) },
            "multiValueQueryStringParameters": if multi.is_empty() { Value::Null } else { Value::Object(multi) },
            "pathParameters": if path_parameters.is_empty() { Value::Null } else { Value::Object(path_parameters) },
            "stageVariables": null,
            "requestContext": {
                "resourcePath": resource,
                "httpMethod": self.method,
                "path": format!("/prod{}", self.path),
                "stage": "prod",
                "accountId": emulator::ACCOUNT_ID,
                "apiId": "localapi",
                "requestId": uuid::Uuid::new_v4().to_string(),
                "identity": { "sourceIp": "127.0.0.1", "userAgent": "integration-tests" },
                "authorizer": self.person.as_ref().map(|p| json!({"claims": p.claims()})),
                "requestTimeEpoch": 0
            },
            "body": self.body,
            "isBase64Encoded": false
        })
    }

    pub fn request(&self) -> Request {
        lambda_http::request::from_str(&self.to_event().to_string())
            .expect("API Gateway event parses")
    }
}

/// Status and parsed JSON body (Null for an empty body) of a handler response.
pub fn parts(response: &Response<Body>) -> (u16, Value) {
    let bytes: &[u8] = response.body().as_ref();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).expect("response body is JSON")
    };
    (response.status().as_u16(), body)
}

/// Asserts an error response: the status, the JSON error shape and its code.
pub fn assert_error(response: &Response<Body>, status: u16, code: &str) {
    let (actual, body) = parts(response);
    assert_eq!(actual, status, "body: {body}");
    assert_eq!(body["error"]["code"], code, "body: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "body: {body}"
    );
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
}

/// Reads a fixture from events/.
pub fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("events")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// An API Gateway WebSocket event (`$connect`, `$disconnect` or a message route) as a request.
pub fn websocket(
    route_key: &str,
    connection_id: &str,
    query: &[(&str, &str)],
    body: Option<Value>,
) -> Request {
    let event_type = match route_key {
        "$connect" => "CONNECT",
        "$disconnect" => "DISCONNECT",
        _ => "MESSAGE",
    };
    let mut event = json!({
        "requestContext": {
            "routeKey": route_key,
            "eventType": event_type,
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": 0,
            "requestTimeEpoch": 0,
            "identity": { "sourceIp": "127.0.0.1" },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "domainName": "localhost",
            "connectionId": connection_id,
            "apiId": "localws"
        },
        "isBase64Encoded": false
    });
    if !query.is_empty() {
        let single: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let multi: serde_json::Map<String, Value> = query
            .iter()
            .map(|(k, v)| (k.to_string(), json!([v])))
            .collect();
        event["queryStringParameters"] = Value::Object(single);
        event["multiValueQueryStringParameters"] = Value::Object(multi);
    }
    if let Some(body) = body {
        event["body"] = Value::String(body.to_string());
    }
    lambda_http::request::from_str(&event.to_string()).expect("WebSocket event parses")
}

/// Subscribes a fresh queue to a topic (raw delivery), so published messages can be read back.
pub async fn subscribe_queue(stack: &Stack, topic_arn: &str) -> String {
    let name = format!(
        "{}-tap-{}",
        stack.prefix,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    local_stack::lambda::queues::tap(&stack.sdk, topic_arn, &name)
        .await
        .expect("tap queue")
}

/// Receives and deletes every message on a queue; returns their bodies.
pub async fn drain(stack: &Stack, queue_url: &str) -> Vec<String> {
    local_stack::lambda::queues::drain(&aws_sdk_sqs::Client::new(&stack.sdk), queue_url)
        .await
        .expect("drain")
}
