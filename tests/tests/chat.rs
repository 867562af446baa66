//! Chat: WebSocket connect/disconnect, REST post and history, and the fan-out through a local
//! `@connections` server (real HTTP, real SigV4 from the SDK).

use std::time::Duration;

use integration_tests::fake_connections::FakeConnections;
use integration_tests::{Person, Rest, assert_error, fixture, parts, stack, websocket};
use local_stack::cloudformation::provision::Stack;
use serde_json::{Value, json};
use shared::config::EnvSource;

struct Chat {
    stack: Stack,
    connect: chat_connect::App,
    disconnect: chat_disconnect::App,
    put: chat_put::App,
    get: chat_get::App,
    fake: FakeConnections,
}

/// Every chat function wired from the template, `chat-put` pushing to a local fake.
async fn chat(gone: &[&str], broken: &[&str], latency: Duration) -> Chat {
    let mut stack = stack().await;
    let fake = FakeConnections::start(
        gone.iter().map(|s| s.to_string()),
        broken.iter().map(|s| s.to_string()),
        latency,
    )
    .await;
    let connect_env = stack.function_env("ChatConnectFunction").await.unwrap();
    let disconnect_env = stack.function_env("ChatDisconnectFunction").await.unwrap();
    let mut put_env = stack.function_env("ChatPutFunction").await.unwrap();
    // The management endpoint comes from the template; local runs override it.
    put_env.insert("CHAT_CALLBACK_URL".into(), fake.url.clone());
    let get_env = stack.function_env("ChatGetFunction").await.unwrap();
    Chat {
        connect: chat_connect::App::from_env(
            &stack.function_sdk("ChatConnectFunction").await.unwrap(),
            &connect_env as &dyn EnvSource,
        )
        .unwrap(),
        disconnect: chat_disconnect::App::from_env(
            &stack.function_sdk("ChatDisconnectFunction").await.unwrap(),
            &disconnect_env as &dyn EnvSource,
        )
        .unwrap(),
        put: chat_put::App::from_env(
            &stack.function_sdk("ChatPutFunction").await.unwrap(),
            &put_env as &dyn EnvSource,
        )
        .unwrap(),
        get: chat_get::App::from_env(
            &stack.function_sdk("ChatGetFunction").await.unwrap(),
            &get_env as &dyn EnvSource,
        )
        .unwrap(),
        stack,
        fake,
    }
}

/// A signed-in person whose display name is `name`.
fn named(name: &str) -> Person {
    Person::new(name, "chatter@example.com")
}

impl Chat {
    /// A ticket for `room`, asked for by a signed-in person whose display name is `user`.
    async fn ticket(&self, room: &str, user: &str) -> (u16, Value) {
        let request = Rest::post(&format!("/rooms/{room}/tickets"))
            .resource("/rooms/{room}/tickets")
            .as_person(&named(user))
            .json(json!({ "user": user }));
        parts(&self.connect.handle(request.request()).await)
    }

    async fn join(&self, connection_id: &str, room: &str, user: &str) {
        let (status, issued) = self.ticket(room, user).await;
        assert_eq!(status, 201, "{issued}");
        let ticket = issued["ticket"].as_str().unwrap();
        let response = self
            .connect
            .handle(websocket(
                "$connect",
                connection_id,
                &[("ticket", ticket)],
                None,
            ))
            .await;
        assert_eq!(response.status(), 200, "{:?}", parts(&response));
    }

    async fn post(&self, room: &str, user: &str, text: &str) -> Value {
        let request = Rest::post(&format!("/rooms/{room}/messages"))
            .resource("/rooms/{room}/messages")
            .as_person(&named(user))
            .json(json!({"user": user, "text": text}));
        let (status, body) = parts(&self.put.handle(request.request()).await);
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn history(&self, room: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let mut request =
            Rest::get(&format!("/rooms/{room}/messages")).resource("/rooms/{room}/messages");
        for (k, v) in query {
            request = request.query(k, v);
        }
        parts(&self.get.handle(request.request()).await)
    }

    async fn room_connections(&self, room: &str) -> Vec<String> {
        let table = self.stack.reference("ChatConnectionsTable").unwrap();
        shared::chat::Connections::new(aws_sdk_dynamodb::Client::new(&self.stack.sdk), table)
            .room_connections(room)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn connect_validates_room_and_user_and_disconnect_forgets() {
    let mut c = chat(&[], &[], Duration::ZERO).await;
    c.join("conn-a", "general", "ann").await;
    assert_eq!(c.room_connections("general").await, ["conn-a"]);

    // Tickets are only issued for valid names ...
    for (room, user) in [
        ("has%2Fslash", "ann"),
        ("general", "a\u{202E}b"),
        ("general", " ann"),
    ] {
        let (status, body) = c.ticket(room, user).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("validation_error")),
            "{room} {user}"
        );
    }
    // ... and a socket opens only with one this stack signed, not yet expired; room and user
    // are the ticket's, whatever else the query says.
    let (_, issued) = c.ticket("general", "ann").await;
    let mut edited = issued["ticket"].as_str().unwrap().to_string();
    edited.insert(3, 'x');
    for query in [
        vec![],
        vec![("room", "general"), ("user", "ann")],
        vec![("ticket", "abc.def")],
        vec![("ticket", edited.as_str())],
    ] {
        let response = c
            .connect
            .handle(websocket("$connect", "conn-b", &query, None))
            .await;
        assert_error(&response, 401, "invalid_ticket");
    }
    let mut env = c.stack.function_env("ChatConnectFunction").await.unwrap();
    env.insert("CHAT_TICKET_TTL_SECONDS".into(), "0".into());
    let instant = chat_connect::App::from_env(
        &c.stack.function_sdk("ChatConnectFunction").await.unwrap(),
        &env as &dyn EnvSource,
    )
    .unwrap();
    let expired = parts(
        &instant
            .handle(
                Rest::post("/rooms/general/tickets")
                    .resource("/rooms/{room}/tickets")
                    .as_person(&named("ann"))
                    .json(json!({"user": "ann"}))
                    .request(),
            )
            .await,
    )
    .1;
    let response = c
        .connect
        .handle(websocket(
            "$connect",
            "conn-b",
            &[("ticket", expired["ticket"].as_str().unwrap())],
            None,
        ))
        .await;
    assert_error(&response, 401, "invalid_ticket");
    assert_eq!(
        c.room_connections("general").await,
        ["conn-a"],
        "refused connections are not stored"
    );

    let response = c
        .disconnect
        .handle(websocket("$disconnect", "conn-a", &[], None))
        .await;
    assert_eq!(response.status(), 200);
    assert!(c.room_connections("general").await.is_empty());
    let response = c
        .disconnect
        .handle(websocket("$disconnect", "never-connected", &[], None))
        .await;
    assert_eq!(response.status(), 200, "an unknown id is not an error");
}

#[tokio::test]
async fn history_is_newest_first_and_pages_with_cursors() {
    let c = chat(&[], &[], Duration::ZERO).await;
    for i in 0..7 {
        c.post("lobby", "bob", &format!("message {i}")).await;
    }
    let mut texts = Vec::new();
    let mut before: Option<String> = None;
    loop {
        let mut query = vec![("limit", "3")];
        if let Some(b) = &before {
            query.push(("before", b));
        }
        let (status, page) = c.history("lobby", &query).await;
        assert_eq!(status, 200, "{page}");
        texts.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["text"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => before = Some(next.to_string()),
            None => break,
        }
        assert!(texts.len() <= 9, "pagination terminates");
    }
    let expected: Vec<String> = (0..7).rev().map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);

    let (status, page) = c.history("empty-room", &[]).await;
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 0));
}

#[tokio::test]
async fn members_lists_each_person_in_the_room_once_until_they_leave() {
    let c = chat(&[], &[], Duration::ZERO).await;
    let members = |room: &'static str| {
        let request =
            Rest::get(&format!("/rooms/{room}/members")).resource("/rooms/{room}/members");
        let get = &c.get;
        async move { parts(&get.handle(request.request()).await) }
    };
    let (status, empty) = members("서울").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["members"], json!([]));

    c.join("m1", "서울", "김민수").await;
    c.join("m2", "서울", "Zoë 🎉").await;
    c.join("m3", "서울", "김민수").await;
    c.join("m4", "elsewhere", "bob").await;
    let (status, body) = members("서울").await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<(String, u64)> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user"].as_str().unwrap().to_string(),
                m["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("김민수".to_string(), 2), ("Zoë 🎉".to_string(), 1)]
    );
    assert_eq!(body["truncated"], false);

    for id in ["m1", "m3"] {
        let response = c
            .disconnect
            .handle(websocket("$disconnect", id, &[], None))
            .await;
        assert_eq!(response.status(), 200);
    }
    let (_, body) = members("서울").await;
    assert_eq!(body["members"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["members"][0]["user"], "Zoë 🎉");

    let request = Rest::get("/rooms/a%2Fb/members")
        .resource("/rooms/{room}/members")
        .query("x", "1");
    let (status, body) = parts(&c.get.handle(request.request()).await);
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn fan_out_reaches_the_room_prunes_gone_connections_and_counts_failures() {
    let gone = ["c3", "c7", "c11"];
    let c = chat(&gone, &["c5"], Duration::from_millis(5)).await;
    for i in 0..20 {
        c.join(&format!("c{i}"), "team", &format!("user{i}")).await;
    }
    c.join("elsewhere", "other-room", "eve").await;

    let outcome = c.post("team", "user0", "hello team").await;
    assert_eq!(outcome["message"]["text"], "hello team");
    assert_eq!(
        (
            outcome["delivered"].as_u64(),
            outcome["pruned"].as_u64(),
            outcome["failed"].as_u64()
        ),
        (Some(16), Some(3), Some(1))
    );

    let posts = c.fake.posts();
    assert_eq!(posts.len(), 16);
    assert!(posts.iter().all(|p| p.signed), "every post is SigV4-signed");
    assert!(
        posts
            .iter()
            .all(|p| p.connection_id.starts_with('c') && p.connection_id != "elsewhere")
    );
    let frame: Value = serde_json::from_slice(&posts[0].body).unwrap();
    assert_eq!(frame["type"], "message");
    assert_eq!(frame["message"]["text"], "hello team");
    assert!(c.fake.max_in_flight() > 1, "posts are concurrent");

    let mut remaining = c.room_connections("team").await;
    remaining.sort();
    assert_eq!(
        remaining.len(),
        17,
        "exactly the gone connections were deleted"
    );
    for id in gone {
        assert!(!remaining.contains(&id.to_string()));
    }
    assert!(remaining.contains(&"c0".to_string()), "the sender is kept");
    assert_eq!(c.room_connections("other-room").await, ["elsewhere"]);
}

#[tokio::test]
async fn messages_sent_over_the_socket_take_the_same_path() {
    let c = chat(&[], &[], Duration::ZERO).await;
    c.join("sock-1", "den", "ann").await;
    c.join("sock-2", "den", "bob").await;
    let response = c
        .put
        .handle(websocket(
            "sendmessage",
            "sock-1",
            &[],
            Some(json!({"action": "sendmessage", "text": "hi from ann"})),
        ))
        .await;
    let (status, outcome) = parts(&response);
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["delivered"], 2);
    let (_, page) = c.history("den", &[]).await;
    assert_eq!(page["items"][0]["user"], "ann");
    assert_eq!(page["items"][0]["text"], "hi from ann");

    let unknown = c
        .put
        .handle(websocket(
            "sendmessage",
            "ghost",
            &[],
            Some(json!({"action": "sendmessage", "text": "boo"})),
        ))
        .await;
    assert_error(&unknown, 404, "not_found");
    let bad = c
        .put
        .handle(websocket(
            "sendmessage",
            "sock-1",
            &[],
            Some(json!({"action": "dance", "text": "x"})),
        ))
        .await;
    assert_error(&bad, 400, "validation_error");
    let malformed = c
        .put
        .handle(websocket("sendmessage", "sock-1", &[], None))
        .await;
    assert_error(&malformed, 400, "malformed_json");
}

#[tokio::test]
async fn rest_routes_reject_bad_input() {
    let c = chat(&[], &[], Duration::ZERO).await;
    let post = |room: &str| {
        Rest::post(&format!("/rooms/{room}/messages"))
            .resource("/rooms/{room}/messages")
            .as_person(&named("ann"))
    };
    let too_long = "x".repeat(4001);
    let cases: Vec<(Rest, u16, &str)> = vec![
        (
            post("lobby").json(json!({"user": "ann"})),
            400,
            "validation_error",
        ),
        (
            post("lobby").json(json!({"user": "ann", "text": ""})),
            400,
            "validation_error",
        ),
        (
            post("lobby").json(json!({"user": "ann", "text": too_long})),
            400,
            "validation_error",
        ),
        (
            post("lobby").json(json!({"user": "ann", "text": 5})),
            400,
            "validation_error",
        ),
        (
            post("lobby").json(json!({"user": "ann", "text": "x", "room": "other"})),
            400,
            "validation_error",
        ),
        (
            post("lobby").json(json!({"user": "bad\u{202E}user", "text": "x"})),
            400,
            "validation_error",
        ),
        (
            post("bad%E2%80%AEroom").json(json!({"user": "ann", "text": "x"})),
            400,
            "validation_error",
        ),
        (post("lobby").raw_body("{"), 400, "malformed_json"),
        (
            Rest::get("/rooms/lobby/messages"),
            405,
            "method_not_allowed",
        ),
        (Rest::post("/rooms"), 404, "route_not_found"),
    ];
    for (request, status, code) in cases {
        assert_error(&c.put.handle(request.request()).await, status, code);
    }
    for (query, status, code) in [
        (vec![("limit", "0")], 400, "validation_error"),
        (vec![("limit", "101")], 400, "validation_error"),
        (vec![("before", "garbage")], 400, "validation_error"),
        (vec![("after", "x")], 400, "validation_error"),
    ] {
        let mut request = Rest::get("/rooms/lobby/messages");
        for (k, v) in &query {
            request = request.query(k, v);
        }
        assert_error(&c.get.handle(request.request()).await, status, code);
    }
    assert_error(
        &c.get
            .handle(Rest::get("/rooms/bad%E2%80%AEroom/messages").request())
            .await,
        400,
        "validation_error",
    );
    assert_error(
        &c.get
            .handle(Rest::post("/rooms/lobby/messages").request())
            .await,
        405,
        "method_not_allowed",
    );
}

#[tokio::test]
async fn fixtures_parse_as_the_events_each_function_expects() {
    let c = chat(&[], &[], Duration::ZERO).await;
    let load = |name: &str| lambda_http::request::from_str(&fixture(name)).unwrap();
    assert_eq!(
        shared::rest::websocket_connection_id(&load("chat-connect/connect.json")).as_deref(),
        Some("L0SM9cOFvHcCIhw=")
    );
    // The connect fixture says where its ticket goes: paste one from the issue-ticket fixture.
    let (status, issued) = parts(
        &c.connect
            .handle(load("chat-connect/issue-ticket.json"))
            .await,
    );
    assert_eq!(status, 201, "{issued}");
    let ticket = issued["ticket"].as_str().unwrap();
    let with_ticket = fixture("chat-connect/connect.json")
        .replace("PASTE-A-TICKET-FROM-POST-/rooms/general/tickets", ticket);
    assert_eq!(
        c.connect
            .handle(lambda_http::request::from_str(&with_ticket).unwrap())
            .await
            .status(),
        200
    );
    assert_error(
        &c.connect
            .handle(load("chat-connect/connect-invalid.json"))
            .await,
        401,
        "invalid_ticket",
    );
    let (status, outcome) = parts(&c.put.handle(load("chat-put/sendmessage.json")).await);
    assert_eq!(
        (status, outcome["delivered"].as_u64()),
        (200, Some(1)),
        "{outcome}"
    );
    assert_eq!(
        c.put
            .handle(load("chat-put/post-message.json"))
            .await
            .status(),
        201
    );
    let (status, page) = parts(&c.get.handle(load("chat-get/history.json")).await);
    assert_eq!((status, page["items"].as_array().unwrap().len()), (200, 2));
    let (status, members) = parts(&c.get.handle(load("chat-get/members.json")).await);
    assert_eq!(
        (status, members["members"].as_array().unwrap().len()),
        (200, 1)
    );
    assert_eq!(
        c.disconnect
            .handle(load("chat-disconnect/disconnect.json"))
            .await
            .status(),
        200
    );
    assert!(c.room_connections("general").await.is_empty());
}

/// A ticket and a REST post are the signed-in person's, under their own display name: asked
/// without a name they get it, asked under someone else's they are refused (403); the name
/// comes from the token, never from the body.
#[tokio::test]
async fn people_speak_only_under_their_own_display_name() {
    let c = chat(&[], &[], Duration::ZERO).await;
    let ticket_for = |person: &Person, body: Value| {
        Rest::post("/rooms/lobby/tickets")
            .resource("/rooms/{room}/tickets")
            .as_person(person)
            .json(body)
            .request()
    };
    let zoe = named("Zoë 🎉");
    let (status, own) = parts(&c.connect.handle(ticket_for(&zoe, json!({}))).await);
    assert_eq!(
        (status, own["user"].as_str()),
        (201, Some("Zoë 🎉")),
        "{own}"
    );
    let (status, same) = parts(
        &c.connect
            .handle(ticket_for(&zoe, json!({"user": "Zoë 🎉"})))
            .await,
    );
    assert_eq!(
        (status, same["user"].as_str()),
        (201, Some("Zoë 🎉")),
        "{same}"
    );
    assert_error(
        &c.connect
            .handle(ticket_for(&zoe, json!({"user": "Ann"})))
            .await,
        403,
        "forbidden",
    );
    let anonymous = Rest::post("/rooms/lobby/tickets")
        .resource("/rooms/{room}/tickets")
        .anonymous()
        .json(json!({}));
    assert_error(
        &c.connect.handle(anonymous.request()).await,
        401,
        "unauthorized",
    );

    let post = |person: &Person, body: Value| {
        Rest::post("/rooms/lobby/messages")
            .resource("/rooms/{room}/messages")
            .as_person(person)
            .json(body)
            .request()
    };
    let (status, sent) = parts(&c.put.handle(post(&zoe, json!({"text": "hej"}))).await);
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["message"]["user"], "Zoë 🎉", "{sent}");
    assert_error(
        &c.put
            .handle(post(&zoe, json!({"user": "Ann", "text": "as Ann"})))
            .await,
        403,
        "forbidden",
    );
    let (_, history) = c.history("lobby", &[]).await;
    let users: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["user"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["Zoë 🎉"], "nothing was posted as Ann");
}
