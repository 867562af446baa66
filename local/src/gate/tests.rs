//! The pipeline as a whole, over a stub emulator on loopback that records what reached it: what
//! the layers refuse never gets there, what they allow does, and their answers are AWS's.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

use super::audit::Audit;
use super::control::ADMIN_HEADER;

const TOKEN: &str = "deployer-token";

/// A stand-in for moto: answers `answer` to everything and records each request's path and
/// `X-Amz-Target`.
async fn stub_emulator(answer: (StatusCode, &'static str)) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = Router::new().fallback(move |request: axum::extract::Request| {
        let record = record.clone();
        async move {
            let target = request
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            record
                .lock()
                .unwrap()
                .push(format!("{} {target}", request.uri().path()));
            (answer.0, answer.1)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

fn control(path: &str, body: serde_json::Value, token: Option<&str>) -> Request<Body> {
    let mut request = Request::post(format!("/_local/iam/{path}"));
    if let Some(token) = token {
        request = request.header(ADMIN_HEADER, token);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

fn dynamodb(key: &str, operation: &str) -> Request<Body> {
    Request::post("/")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential={key}/20261207/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x"
            ),
        )
        .header("x-amz-target", format!("DynamoDB_20120810.{operation}"))
        .body(Body::from(
            json!({"TableName": "s1-Items", "Key": {"id": {"S": "1"}}}).to_string(),
        ))
        .unwrap()
}

fn items_reader() -> serde_json::Value {
    json!({
        "access_key_id": "LOCAL-s1-ItemsRole",
        "stack": "s1",
        "logical_id": "ItemsRole",
        "arn": "arn:aws:iam::123456789012:role/s1-ItemsRole",
        "policies": [{"Statement": [{
            "Effect": "Allow",
            "Action": "dynamodb:GetItem",
            "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/s1-Items"
        }]}],
    })
}

/// One request through the gate.
async fn send(gate: &Router, request: Request<Body>) -> axum::response::Response {
    gate.clone().oneshot(request).await.unwrap()
}

async fn text(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn the_control_routes_answer_the_deployer_only() {
    let (emulator, _) = stub_emulator((StatusCode::OK, "{}")).await;
    let gate = super::router(&emulator, Audit::default(), Some(TOKEN.into()));
    let refused = send(&gate, control("roles", items_reader(), None)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let registered = send(&gate, control("roles", items_reader(), Some(TOKEN))).await;
    assert_eq!(registered.status(), StatusCode::NO_CONTENT);
    let unknown = send(&gate, control("nothing", json!({}), Some(TOKEN))).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_role_reaches_the_emulator_only_with_what_its_policy_allows() {
    let (emulator, seen) = stub_emulator((StatusCode::OK, "{}")).await;
    let gate = super::router(&emulator, Audit::default(), Some(TOKEN.into()));
    let role = control("roles", items_reader(), Some(TOKEN));
    send(&gate, role).await;

    let allowed = send(&gate, dynamodb("LOCAL-s1-ItemsRole", "GetItem")).await;
    assert_eq!(allowed.status(), StatusCode::OK);

    let denied = send(&gate, dynamodb("LOCAL-s1-ItemsRole", "DeleteItem")).await;
    assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        denied.headers()["x-amzn-errortype"],
        "com.amazon.coral.service#AccessDeniedException"
    );
    assert!(text(denied).await.contains(
        "is not authorized to perform: dynamodb:DeleteItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/s1-Items"
    ));

    let stranger = send(&gate, dynamodb("LOCAL-s1-Nobody", "GetItem")).await;
    assert!(
        text(stranger)
            .await
            .contains("security token included in the request is invalid")
    );
    assert_eq!(*seen.lock().unwrap(), ["/ DynamoDB_20120810.GetItem"]);
}

#[tokio::test]
async fn unsigned_requests_are_refused_and_the_deployer_passes() {
    let (emulator, seen) = stub_emulator((StatusCode::OK, "{}")).await;
    let gate = super::router(&emulator, Audit::default(), Some(TOKEN.into()));
    let unsigned = Request::get("/photos/a.jpg").body(Body::empty()).unwrap();
    let refused = send(&gate, unsigned).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(text(refused).await.contains("<Code>AccessDenied</Code>"));
    // The deployer acts as CloudFormation: even an operation no role may make passes.
    let deployer = send(&gate, dynamodb("test", "CreateTable")).await;
    assert_eq!(deployer.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), ["/ DynamoDB_20120810.CreateTable"]);
}

#[tokio::test]
async fn a_task_token_nobody_issued_is_invalid_before_any_policy() {
    let (emulator, seen) = stub_emulator((StatusCode::OK, "{}")).await;
    let gate = super::router(&emulator, Audit::default(), Some(TOKEN.into()));
    let mut role = items_reader();
    role["access_key_id"] = json!("LOCAL-s1-ApprovalRole");
    send(&gate, control("roles", role, Some(TOKEN))).await;
    let answer = Request::post("/")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=LOCAL-s1-ApprovalRole/20261207/us-east-1/states/aws4_request, SignedHeaders=host, Signature=x",
        )
        .header("x-amz-target", "AWSStepFunctions.SendTaskSuccess")
        .body(Body::from(json!({"taskToken": "forged", "output": "{}"}).to_string()))
        .unwrap();
    let response = send(&gate, answer).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.headers()["x-amzn-errortype"], "InvalidToken");
    assert!(seen.lock().unwrap().is_empty());
}
