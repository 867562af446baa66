//! Items API and items stream, end to end against the emulator.

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::event::dynamodb::Event;
use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use integration_tests::{
    Person, Rest, assert_error, drain, fixture, parts, stack, subscribe_queue,
};
use items_api::App;
use local_stack::cloudformation::provision::Stack;
use local_stack::lambda::streams::StreamReader;
use serde_json::{Value, json};
use shared::config::EnvSource;

async fn items_app() -> (App, Stack) {
    let mut stack = stack().await;
    let env = stack
        .function_env("ItemsApiFunction")
        .await
        .expect("provision ItemsApiFunction's resources");
    let app = App::from_env(
        &stack.function_sdk("ItemsApiFunction").await.unwrap(),
        &env as &dyn EnvSource,
    )
    .expect("env from template");
    (app, stack)
}

async fn create(app: &App, body: Value) -> Value {
    create_as(app, &integration_tests::ann(), body).await
}

async fn create_as(app: &App, person: &Person, body: Value) -> Value {
    let request = Rest::post("/items").as_person(person).json(body);
    let response = app.handle(request.request()).await;
    let (status, body) = parts(&response);
    assert_eq!(status, 201, "{body}");
    body
}

fn item_path(id: &str) -> String {
    format!("/items/{id}")
}

fn by_id(method: &str, id: &str) -> Rest {
    Rest::new(method, &item_path(id)).resource("/items/{id}")
}

#[tokio::test]
async fn create_then_get_returns_the_stored_item_with_cors() {
    let (app, _stack) = items_app().await;
    let created = create(
        &app,
        json!({"name": " Widget ", "email": "Ann@Example.com", "description": "blue"}),
    )
    .await;
    assert_eq!(created["name"], "Widget");
    assert_eq!(created["email"], "ann@example.com");
    assert_eq!(created["status"], "active");
    assert_eq!(created["created_at"], created["updated_at"]);
    assert!(created.get("request_fingerprint").is_none());
    let id = created["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert!(shared::timestamp::parse(created["created_at"].as_str().unwrap()).is_some());

    let response = app.handle(by_id("GET", id).request()).await;
    assert_eq!(parts(&response), (200, created.clone()));
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn create_rejects_bad_input_with_json_4xx() {
    let (app, _stack) = items_app().await;
    let long_name = "n".repeat(201);
    let cases: Vec<(Rest, u16, &str)> = vec![
        (
            Rest::post("/items").json(json!({"email": "a@b.co"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!({"name": "", "email": "a@b.co"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!({"name": long_name, "email": "a@b.co"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!({"name": "x", "email": "not-an-email"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!({"name": 5, "email": "a@b.co"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!({"name": "x", "email": "a@b.co", "status": "deleted"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!({"name": "x", "email": "a@b.co", "id": "mine"})),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").json(json!(["not", "an", "object"])),
            400,
            "validation_error",
        ),
        (
            Rest::post("/items").raw_body("{\"name\": \"x\", "),
            400,
            "malformed_json",
        ),
        (Rest::post("/items"), 400, "malformed_json"),
        (
            Rest::post("/items").raw_body(&format!("{{\"name\":\"{}\"}}", "x".repeat(70_000))),
            413,
            "payload_too_large",
        ),
        (
            Rest::post("/items")
                .header("Content-Type", "text/plain")
                .raw_body("hello"),
            415,
            "unsupported_media_type",
        ),
        (
            Rest::post("/items")
                .header("Idempotency-Key", "has space")
                .json(json!({"name": "x", "email": "a@b.co"})),
            400,
            "validation_error",
        ),
    ];
    for (request, status, code) in cases {
        let response = app.handle(request.request()).await;
        assert_error(&response, status, code);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }
}

#[tokio::test]
async fn idempotency_key_replays_the_same_item_and_rejects_a_different_body() {
    let (app, _stack) = items_app().await;
    let key = format!("order-{}", uuid::Uuid::new_v4());
    let body = json!({"name": "Once", "email": "once@example.com"});
    let first = app
        .handle(
            Rest::post("/items")
                .header("Idempotency-Key", &key)
                .json(body.clone())
                .request(),
        )
        .await;
    let second = app
        .handle(
            Rest::post("/items")
                .header("Idempotency-Key", &key)
                .json(body)
                .request(),
        )
        .await;
    let (s1, b1) = parts(&first);
    let (s2, b2) = parts(&second);
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(
        b1, b2,
        "a retry returns the stored item, timestamps included"
    );
    assert!(first.headers().get("idempotent-replayed").is_none());
    assert_eq!(second.headers()["idempotent-replayed"], "true");

    let reused = app
        .handle(
            Rest::post("/items")
                .header("Idempotency-Key", &key)
                .json(json!({"name": "Other", "email": "once@example.com"}))
                .request(),
        )
        .await;
    assert_error(&reused, 422, "idempotency_key_reused");

    let listed = app
        .handle(
            Rest::get("/items")
                .query("email", "once@example.com")
                .request(),
        )
        .await;
    assert_eq!(
        parts(&listed).1["items"].as_array().unwrap().len(),
        1,
        "no duplicate was created"
    );
}

#[tokio::test]
async fn update_changes_only_allowed_fields_and_is_conditional() {
    let (app, _stack) = items_app().await;
    let created = create(
        &app,
        json!({"name": "Before", "email": "u@example.com", "description": "old"}),
    )
    .await;
    let id = created["id"].as_str().unwrap();

    let response = app
        .handle(
            by_id("PUT", id)
                .json(json!({"name": "After", "status": "inactive"}))
                .request(),
        )
        .await;
    let (status, updated) = parts(&response);
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "After");
    assert_eq!(updated["status"], "inactive");
    assert_eq!(updated["description"], "old");
    assert_eq!(updated["created_at"], created["created_at"]);
    assert!(updated["updated_at"].as_str() >= created["updated_at"].as_str());

    let response = app
        .handle(
            by_id("PUT", id)
                .json(json!({"description": null}))
                .request(),
        )
        .await;
    assert!(
        parts(&response).1.get("description").is_none(),
        "null removes the description"
    );

    assert_error(
        &app.handle(
            by_id("PUT", id)
                .json(json!({"created_at": "2020-01-01T00:00:00Z"}))
                .request(),
        )
        .await,
        400,
        "validation_error",
    );
    assert_error(
        &app.handle(by_id("PUT", id).json(json!({})).request()).await,
        400,
        "validation_error",
    );
    assert_error(
        &app.handle(by_id("PUT", id).json(json!({"email": "nope"})).request())
            .await,
        400,
        "validation_error",
    );
    assert_error(
        &app.handle(by_id("PUT", id).raw_body("{").request()).await,
        400,
        "malformed_json",
    );
    let missing = uuid::Uuid::new_v4().to_string();
    assert_error(
        &app.handle(by_id("PUT", &missing).json(json!({"name": "x"})).request())
            .await,
        404,
        "not_found",
    );
    assert_error(
        &app.handle(by_id("GET", &missing).request()).await,
        404,
        "not_found",
    );
    assert_error(
        &app.handle(by_id("GET", "not-a-uuid").request()).await,
        400,
        "validation_error",
    );
}

#[tokio::test]
async fn delete_is_conditional() {
    let (app, _stack) = items_app().await;
    let created = create(&app, json!({"name": "Doomed", "email": "d@example.com"})).await;
    let id = created["id"].as_str().unwrap();
    let response = app.handle(by_id("DELETE", id).request()).await;
    assert_eq!(parts(&response), (204, Value::Null));
    assert_error(
        &app.handle(by_id("DELETE", id).request()).await,
        404,
        "not_found",
    );
    assert_error(
        &app.handle(by_id("GET", id).request()).await,
        404,
        "not_found",
    );
}

/// Bob on Ann's item: every route answers exactly as for an item that does not exist, and Ann's
/// item is unchanged afterwards; no listing of Bob's shows it, and Ann's cursor does not page
/// on for him.
#[tokio::test]
async fn someone_elses_item_answers_as_a_missing_one_and_stays_as_it_was() {
    let (app, _stack) = items_app().await;
    let bob = Person::new("Bob", "bob@example.com");
    let anns = create(
        &app,
        json!({"name": "Ann's lamp", "email": "shared@example.com"}),
    )
    .await;
    let id = anns["id"].as_str().unwrap();
    let missing = uuid::Uuid::new_v4().to_string();
    let as_bob = |method: &str, id: &str| {
        let request = by_id(method, id).as_person(&bob);
        match method {
            "PUT" => request.json(json!({"name": "Bob's now"})),
            _ => request,
        }
    };
    for method in ["GET", "PUT", "DELETE"] {
        let theirs = parts(&app.handle(as_bob(method, id).request()).await);
        let nothing = parts(&app.handle(as_bob(method, &missing).request()).await);
        assert_eq!(theirs, nothing, "{method}: Ann's item looks missing to Bob");
        assert_eq!(theirs.0, 404, "{method}");
    }
    let (status, still) = parts(&app.handle(by_id("GET", id).request()).await);
    assert_eq!((status, &still), (200, &anns), "Ann's item is unchanged");

    let bobs = create_as(
        &app,
        &bob,
        json!({"name": "Bob's", "email": "shared@example.com"}),
    )
    .await;
    for query in [
        vec![],
        vec![("status", "active")],
        vec![("email", "shared@example.com")],
    ] {
        let listing = |person: &Person| {
            let mut request = Rest::get("/items").as_person(person);
            for (key, value) in &query {
                request = request.query(key, value);
            }
            request.request()
        };
        let (status, page) = parts(&app.handle(listing(&bob)).await);
        assert_eq!(status, 200, "{page}");
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [bobs["id"].as_str().unwrap()],
            "{query:?}: only Bob's own"
        );
        let (_, page) = parts(&app.handle(listing(&integration_tests::ann())).await);
        let ids: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [id], "{query:?}: only Ann's own");
    }
    assert_eq!(anns["owner"], integration_tests::ann().sub);

    // Ann's cursor, for the same listing, does not page on for Bob.
    create(
        &app,
        json!({"name": "Ann's second", "email": "a2@example.com"}),
    )
    .await;
    let (_, first) = parts(
        &app.handle(Rest::get("/items").query("limit", "1").request())
            .await,
    );
    let cursor = first["next_cursor"].as_str().expect("a second page");
    let request = Rest::get("/items")
        .query("limit", "1")
        .query("cursor", cursor)
        .as_person(&bob);
    assert_error(
        &app.handle(request.request()).await,
        400,
        "validation_error",
    );
}

/// Two people using the same Idempotency-Key make two items; neither replays the other's.
#[tokio::test]
async fn one_idempotency_key_of_two_people_makes_two_items() {
    let (app, _stack) = items_app().await;
    let bob = Person::new("Bob", "bob@example.com");
    let body = json!({"name": "Same", "email": "s@example.com"});
    let post = |person: &Person| {
        Rest::post("/items")
            .as_person(person)
            .header("Idempotency-Key", "shared-key-1")
            .json(body.clone())
            .request()
    };
    let (status, anns) = parts(&app.handle(post(&integration_tests::ann())).await);
    assert_eq!(status, 201, "{anns}");
    let response = app.handle(post(&bob)).await;
    assert!(response.headers().get("idempotent-replayed").is_none());
    let (status, bobs) = parts(&response);
    assert_eq!(status, 201, "{bobs}");
    assert_ne!(anns["id"], bobs["id"]);
    assert_eq!(bobs["owner"], bob.sub.as_str());
}

/// A request that reaches the function with no verified person (its route lost the authorizer)
/// is refused, whatever it asks.
#[tokio::test]
async fn no_verified_person_no_items() {
    let (app, _stack) = items_app().await;
    for request in [
        Rest::get("/items"),
        Rest::post("/items").json(json!({"name": "x", "email": "x@example.com"})),
        by_id("GET", &uuid::Uuid::new_v4().to_string()),
    ] {
        assert_error(
            &app.handle(request.anonymous().request()).await,
            401,
            "unauthorized",
        );
    }
}

#[tokio::test]
async fn listing_pages_through_every_item_with_opaque_cursors() {
    let (app, _stack) = items_app().await;
    let mut expected = BTreeSet::new();
    for i in 0..7 {
        expected.insert(
            create(
                &app,
                json!({"name": format!("item {i}"), "email": "p@example.com"}),
            )
            .await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut seen = BTreeSet::new();
    let mut created = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut request = Rest::get("/items").query("limit", "3");
        if let Some(c) = &cursor {
            request = request.query("cursor", c);
        }
        let (status, page) = parts(&app.handle(request.request()).await);
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        for item in items {
            assert!(
                seen.insert(item["id"].as_str().unwrap().to_string()),
                "no item twice"
            );
            created.push(item["created_at"].as_str().unwrap().to_string());
        }
        pages += 1;
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination terminates");
    }
    assert_eq!(seen, expected);
    assert!(pages >= 3);
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first across pages: {created:?}"
    );

    for (key, value) in [
        ("limit", "0"),
        ("limit", "101"),
        ("limit", "ten"),
        ("cursor", "garbage"),
        ("sort", "name"),
    ] {
        assert_error(
            &app.handle(Rest::get("/items").query(key, value).request())
                .await,
            400,
            "validation_error",
        );
    }
}

#[tokio::test]
async fn status_index_lists_newest_first_within_a_time_range() {
    let (app, _stack) = items_app().await;
    let mut active = Vec::new();
    for i in 0..4 {
        active.push(
            create(
                &app,
                json!({"name": format!("a{i}"), "email": "s@example.com"}),
            )
            .await,
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    create(
        &app,
        json!({"name": "off", "email": "s@example.com", "status": "inactive"}),
    )
    .await;

    let (status, page) = parts(
        &app.handle(Rest::get("/items").query("status", "active").request())
            .await,
    );
    assert_eq!(status, 200);
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a3", "a2", "a1", "a0"]);

    let from = active[1]["created_at"].as_str().unwrap();
    let to = active[2]["created_at"].as_str().unwrap();
    let (_, page) = parts(
        &app.handle(
            Rest::get("/items")
                .query("status", "active")
                .query("from", from)
                .query("to", to)
                .request(),
        )
        .await,
    );
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a2", "a1"]);

    // Pages of the index keep the order and the bounds.
    let (_, first) = parts(
        &app.handle(
            Rest::get("/items")
                .query("status", "active")
                .query("limit", "2")
                .request(),
        )
        .await,
    );
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = parts(
        &app.handle(
            Rest::get("/items")
                .query("status", "active")
                .query("limit", "2")
                .query("cursor", cursor)
                .request(),
        )
        .await,
    );
    let names: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a1", "a0"]);
    // A cursor from one listing is refused by another.
    assert_error(
        &app.handle(
            Rest::get("/items")
                .query("status", "inactive")
                .query("cursor", cursor)
                .request(),
        )
        .await,
        400,
        "validation_error",
    );
    assert_error(
        &app.handle(Rest::get("/items").query("from", from).request())
            .await,
        400,
        "validation_error",
    );
    assert_error(
        &app.handle(
            Rest::get("/items")
                .query("status", "active")
                .query("from", "last week")
                .request(),
        )
        .await,
        400,
        "validation_error",
    );
}

#[tokio::test]
async fn email_index_finds_items_by_email_case_insensitively() {
    let (app, _stack) = items_app().await;
    create(&app, json!({"name": "mine", "email": "me@example.com"})).await;
    create(
        &app,
        json!({"name": "also mine", "email": "ME@example.com"}),
    )
    .await;
    create(&app, json!({"name": "theirs", "email": "them@example.com"})).await;
    let (status, page) = parts(
        &app.handle(
            Rest::get("/items")
                .query("email", "Me@Example.com")
                .request(),
        )
        .await,
    );
    assert_eq!(status, 200);
    let mut names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["also mine", "mine"]);
    assert_error(
        &app.handle(Rest::get("/items").query("email", "bad").request())
            .await,
        400,
        "validation_error",
    );
}

#[tokio::test]
async fn unknown_routes_methods_and_preflight() {
    let (app, _stack) = items_app().await;
    assert_error(
        &app.handle(Rest::get("/nothing").request()).await,
        404,
        "route_not_found",
    );
    assert_error(
        &app.handle(Rest::get("/items/a/b").request()).await,
        404,
        "route_not_found",
    );
    let response = app.handle(Rest::new("PATCH", "/items").request()).await;
    assert_error(&response, 405, "method_not_allowed");
    assert_eq!(response.headers()["allow"], "GET, POST, OPTIONS");
    let response = app.handle(Rest::new("OPTIONS", "/items").request()).await;
    assert_eq!(response.status(), 204);
    assert!(
        response.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("Idempotency-Key")
    );
}

#[tokio::test]
async fn fixtures_are_valid_api_gateway_events() {
    let (app, _stack) = items_app().await;
    let created = app
        .handle(lambda_http::request::from_str(&fixture("items-api/create.json")).unwrap())
        .await;
    let (status, item) = parts(&created);
    assert_eq!(status, 201, "{item}");
    let list = app
        .handle(lambda_http::request::from_str(&fixture("items-api/list-active.json")).unwrap())
        .await;
    assert_eq!(list.status(), 200);
    // The id in the get/update/delete fixtures does not exist in a fresh table.
    for name in [
        "items-api/get.json",
        "items-api/update.json",
        "items-api/delete.json",
    ] {
        let response = app
            .handle(lambda_http::request::from_str(&fixture(name)).unwrap())
            .await;
        assert_error(&response, 404, "not_found");
    }
    let bad = app
        .handle(lambda_http::request::from_str(&fixture("items-api/create-invalid.json")).unwrap())
        .await;
    assert_error(&bad, 400, "validation_error");
}

async fn object(stack: &Stack, bucket: &str, key: &str) -> Option<Value> {
    let out = aws_sdk_s3::Client::new(&stack.sdk)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    let bytes = out.body.collect().await.unwrap().into_bytes();
    Some(serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn stream_backs_up_notifies_and_cleans_up() {
    let (app, mut stack) = items_app().await;
    let env = stack.function_env("ItemsStreamFunction").await.unwrap();
    let processor = items_stream::Processor::from_env(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        &env as &dyn EnvSource,
    )
    .unwrap();
    let bucket = env["BACKUP_BUCKET"].clone();
    let tap = subscribe_queue(&stack, &env["ITEMS_TOPIC_ARN"]).await;
    let stream_arn = stack.attribute("ItemsTable", "StreamArn").unwrap();
    let mut reader = StreamReader::new(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        stream_arn,
        ShardIteratorType::TrimHorizon,
    );

    let kept = create(&app, json!({"name": "Kept", "email": "k@example.com"})).await;
    let gone = create(&app, json!({"name": "Gone", "email": "g@example.com"})).await;
    let kept_id = kept["id"].as_str().unwrap();
    let gone_id = gone["id"].as_str().unwrap();
    app.handle(
        by_id("PUT", kept_id)
            .json(json!({"name": "Kept v2"}))
            .request(),
    )
    .await;
    app.handle(by_id("DELETE", gone_id).request()).await;

    let records = reader.poll().await.unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.event_name.as_str()).collect();
    assert_eq!(names, ["INSERT", "INSERT", "MODIFY", "REMOVE"]);
    let mut event = Event::default();
    event.records = records;
    let response = processor.handle(event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let key = |item: &Value| {
        let date = shared::timestamp::date_path(item["created_at"].as_str().unwrap()).unwrap();
        format!("backups/{date}/{}.json", item["id"].as_str().unwrap())
    };
    let backup = object(&stack, &bucket, &key(&kept))
        .await
        .expect("backup of the kept item");
    assert_eq!(backup["name"], "Kept v2", "MODIFY refreshed the backup");
    assert!(
        object(&stack, &bucket, &key(&gone)).await.is_none(),
        "REMOVE deleted the backup"
    );

    let notes: Vec<Value> = drain(&stack, &tap)
        .await
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let mut created: Vec<&str> = notes
        .iter()
        .map(|n| n["item"]["id"].as_str().unwrap())
        .collect();
    created.sort();
    let mut expected = vec![kept_id, gone_id];
    expected.sort();
    assert_eq!(created, expected, "one notification per INSERT");
    assert!(notes.iter().all(|n| n["event"] == "item.created"));
}

#[tokio::test]
async fn stream_stops_at_the_first_failure_and_reports_it() {
    let (app, mut stack) = items_app().await;
    let env = stack.function_env("ItemsStreamFunction").await.unwrap();
    let processor = items_stream::Processor::from_env(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        &env as &dyn EnvSource,
    )
    .unwrap();
    let tap = subscribe_queue(&stack, &env["ITEMS_TOPIC_ARN"]).await;
    let stream_arn = stack.attribute("ItemsTable", "StreamArn").unwrap();
    let mut reader = StreamReader::new(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        stream_arn,
        ShardIteratorType::TrimHorizon,
    );
    for i in 0..3 {
        create(
            &app,
            json!({"name": format!("n{i}"), "email": "f@example.com"}),
        )
        .await;
    }
    let mut records = reader.poll().await.unwrap();
    assert_eq!(records.len(), 3);
    // A poison record in the middle: an image that is not an item.
    records[1].change.new_image = serde_dynamo::Item::from(HashMap::from([(
        "id".to_string(),
        serde_dynamo::AttributeValue::N("1".into()),
    )]));
    let poison_sequence = records[1].change.sequence_number.clone();
    let mut event = Event::default();
    event.records = records;
    let response = processor.handle(event).await;
    let failures: Vec<Option<String>> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    assert_eq!(
        failures,
        vec![poison_sequence],
        "the poison record is reported"
    );
    assert_eq!(
        drain(&stack, &tap).await.len(),
        1,
        "the record before it was processed, the one after waits for the retry"
    );
}

#[tokio::test]
async fn stream_reports_backend_failures_for_retry() {
    let (app, mut stack) = items_app().await;
    let mut env = stack.function_env("ItemsStreamFunction").await.unwrap();
    env.insert(
        "BACKUP_BUCKET".into(),
        format!("{}-no-such-bucket", stack.prefix),
    );
    let processor = items_stream::Processor::from_env(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        &env as &dyn EnvSource,
    )
    .unwrap();
    let stream_arn = stack.attribute("ItemsTable", "StreamArn").unwrap();
    let mut reader = StreamReader::new(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        stream_arn,
        ShardIteratorType::TrimHorizon,
    );
    create(&app, json!({"name": "x", "email": "x@example.com"})).await;
    create(&app, json!({"name": "y", "email": "y@example.com"})).await;
    let mut event = Event::default();
    event.records = reader.poll().await.unwrap();
    let first = event.records[0].change.sequence_number.clone();
    let response = processor.handle(event).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, first);
}

#[test]
fn template_declares_the_indexes_the_domain_queries() {
    let template = integration_tests::template();
    let table = &template.resource("ItemsTable").unwrap().properties;
    let indexes: HashMap<&str, Vec<(&str, &str)>> = table["GlobalSecondaryIndexes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let keys = i["KeySchema"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    (
                        k["AttributeName"].as_str().unwrap(),
                        k["KeyType"].as_str().unwrap(),
                    )
                })
                .collect();
            (i["IndexName"].as_str().unwrap(), keys)
        })
        .collect();
    use shared::items::*;
    assert_eq!(
        indexes[OWNER_INDEX],
        vec![(OWNER_INDEX_KEYS.0, "HASH"), (OWNER_INDEX_KEYS.1, "RANGE")]
    );
    assert_eq!(
        indexes[STATUS_INDEX],
        vec![
            (STATUS_INDEX_KEYS.0, "HASH"),
            (STATUS_INDEX_KEYS.1, "RANGE")
        ]
    );
    assert_eq!(indexes[EMAIL_INDEX], vec![(EMAIL_INDEX_KEY, "HASH")]);
    assert_eq!(table["KeySchema"][0]["AttributeName"], KEY_ATTR);
    assert_eq!(
        table["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    let connections = &template
        .resource("ChatConnectionsTable")
        .unwrap()
        .properties;
    let room_index = &connections["GlobalSecondaryIndexes"][0];
    assert_eq!(room_index["IndexName"], shared::chat::ROOM_INDEX);
    assert_eq!(room_index["KeySchema"][0]["AttributeName"], "room");
    let members_index = &connections["GlobalSecondaryIndexes"][1];
    assert_eq!(members_index["IndexName"], shared::chat::MEMBERS_INDEX);
    assert_eq!(members_index["KeySchema"][0]["AttributeName"], "room");
    // The members route reads the display name and connection time from the index itself.
    assert_eq!(
        members_index["Projection"]["NonKeyAttributes"],
        serde_json::json!(["user", "connected_at"])
    );
}

#[tokio::test]
async fn stream_fixture_is_a_valid_lambda_event() {
    let mut stack = stack().await;
    let env = stack.function_env("ItemsStreamFunction").await.unwrap();
    let processor = items_stream::Processor::from_env(
        &stack.function_sdk("ItemsStreamFunction").await.unwrap(),
        &env as &dyn EnvSource,
    )
    .unwrap();
    let event: Event = serde_json::from_str(&fixture("items-stream/changes.json"))
        .expect("fixture is a DynamoDB stream event");
    assert_eq!(event.records.len(), 3);
    let response = processor.handle(event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    // INSERT wrote the backup, REMOVE deleted it again.
    let listed = aws_sdk_s3::Client::new(&stack.sdk)
        .list_objects_v2()
        .bucket(&env["BACKUP_BUCKET"])
        .send()
        .await
        .unwrap();
    assert_eq!(listed.key_count, Some(0));
}
