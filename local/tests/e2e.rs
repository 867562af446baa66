//! End to end: the local stack (`local-stack dev`, what `make dev` runs) started once for this
//! test binary, and each system driven only through its real interfaces: HTTP on the gateway,
//! WebSocket clients, the presigned S3 URL, the local mailbox, and SQS/S3 in the emulator where
//! a user would look.
//!
//! Needs the emulator (`make test` starts it). Queues' visibility timeouts are capped at 1 s here
//! (`--sqs-visibility-cap`) so redrive to a DLQ takes seconds, not the template's minutes.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::{Local, Person, http, photo, sdk};

/// The stack of this test binary, started on first use.
fn local() -> &'static Local {
    static LOCAL: OnceLock<Local> = OnceLock::new();
    LOCAL.get_or_init(|| Local::start("e2e", &["--sqs-visibility-cap", "1"]))
}

/// The person this binary's REST calls are made as: signed in once, on first use.
async fn ann() -> &'static Person {
    static ANN: tokio::sync::OnceCell<Person> = tokio::sync::OnceCell::const_new();
    ANN.get_or_init(|| local().person("Ann Lee")).await
}

/// A REST request as the web app sends it: the API key and Ann's ID token.
async fn rest(method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    rest_as(ann().await, method, path)
}

/// A REST request as `person` makes it from the web app.
fn rest_as(person: &Person, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
    let local = local();
    http()
        .request(method, format!("{}{path}", local.url))
        .header("x-api-key", &local.api_key)
        .header("authorization", &person.id_token)
}

/// A call to the REST API with the key, signed in; returns status and JSON body (or `null`).
async fn call(method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    call_as(ann().await, method, path, body).await
}

/// [`call`] as `person`.
async fn call_as(
    person: &Person,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = rest_as(person, method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `check` every 250 ms until it returns `Some`, or fails after `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}\n--- local-stack log ---\n{}",
            local().log_tail()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn items_api_with_key_cors_and_the_stream_backup() {
    let local = local();
    let counts = |name: &'static str| local.metric("ItemsApiFunction", name, &[]);
    let (created, updated, deleted) = (
        counts("ItemsCreated").await.0,
        counts("ItemsUpdated").await.0,
        counts("ItemsDeleted").await.0,
    );
    let notices = local_stack::lambda::queues::tap(
        &sdk().await,
        &local.resource("ItemsTopic"),
        &format!("{}-items-tap", local.prefix),
    )
    .await
    .expect("tap");
    // One correlation id, from the request to the backup and the notice.
    let correlation = format!("e2e-{}", uuid::Uuid::new_v4().simple());
    let response = rest(reqwest::Method::POST, "/items")
        .await
        .header("x-correlation-id", &correlation)
        .json(&json!({"name": "Lamp", "email": "e2e@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-correlation-id"], correlation.as_str());
    let item: Value = response.json().await.unwrap();
    let id = item["id"].as_str().expect("id").to_string();
    let (status, got) = call(reqwest::Method::GET, &format!("/items/{id}"), None).await;
    assert_eq!((status, got["name"].as_str()), (200, Some("Lamp")));
    let (status, listed) = call(reqwest::Method::GET, "/items?email=e2e%40example.com", None).await;
    assert_eq!(status, 200, "{listed}");
    assert!(listed.to_string().contains(&id), "{listed}");

    assert_gateway_answers(local, &id).await;
    assert_backed_up(local, &id, &correlation).await;
    let notice = notice_with(&notices, &id).await;
    assert_eq!(notice, correlation, "the notice's correlation_id attribute");
    local_stack::lambda::queues::untap(&sdk().await, &local.resource("ItemsTopic"), &notices)
        .await
        .expect("untap");
    assert_logged_in_every_step(&correlation, &["items-api", "items-stream"]);

    // Edit and delete it; every change is counted (EMF -> CloudWatch), and so is the cold start.
    let (status, _) = call(
        reqwest::Method::PUT,
        &format!("/items/{id}"),
        Some(json!({"name": "Desk lamp"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(reqwest::Method::DELETE, &format!("/items/{id}"), None).await;
    assert_eq!(status, 204);
    let grows = |name, before| local.metric_grows("ItemsApiFunction", name, &[], before, 1.0);
    grows("ItemsCreated", created).await;
    grows("ItemsUpdated", updated).await;
    grows("ItemsDeleted", deleted).await;
    grows("ColdStart", 0.0).await;
}

/// API Gateway's own answers (no token, no key, unknown route, CORS preflight), and malformed
/// input as the function's 4xx, passed through.
async fn assert_gateway_answers(local: &Local, id: &str) {
    // The authorizer runs first: with neither token nor key, 401; signed in without the key, 403.
    let anonymous = http()
        .get(format!("{}/items", local.url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["access-control-allow-origin"],
        local.cors_allow_origin.as_str()
    );
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({"code": "UNAUTHORIZED", "message": "Unauthorized"})
    );
    let no_key = http()
        .get(format!("{}/items", local.url))
        .header("authorization", &ann().await.id_token)
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 403);
    let body: Value = no_key.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_API_KEY");
    let (status, body) = call(reqwest::Method::GET, "/no-such-route", None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("MISSING_AUTHENTICATION_TOKEN"))
    );
    let preflight = http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/items/{id}", local.url),
        )
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 200);
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PUT")
    );
    let bad = rest(reqwest::Method::POST, "/items")
        .await
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

/// The stream processor backs the new item up to S3, with the request's correlation id.
async fn assert_backed_up(local: &Local, id: &str, correlation: &str) {
    let s3 = aws_sdk_s3::Client::new(&sdk().await);
    let bucket = local.resource("BackupBucket");
    let key = eventually("backup of the new item", Duration::from_secs(30), || {
        let (s3, bucket, id) = (s3.clone(), bucket.clone(), id.to_string());
        async move {
            let listed = s3
                .list_objects_v2()
                .bucket(&bucket)
                .prefix("backups/")
                .send()
                .await
                .ok()?;
            listed
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .find(|k| k.ends_with(&format!("{id}.json")))
                .map(str::to_string)
        }
    })
    .await;
    let backup = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        backup
            .metadata()
            .and_then(|m| m.get("correlation-id"))
            .map(String::as_str),
        Some(correlation)
    );
    let backup: Value =
        serde_json::from_slice(&backup.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(backup["id"], id);
}

#[tokio::test(flavor = "multi_thread")]
async fn photo_upload_becomes_a_200_px_thumbnail() {
    let local = local();
    let photo = photo();
    let thumbnailer = |name: &'static str| local.metric("ThumbnailerFunction", name, &[]);
    let rendered = thumbnailer("ThumbnailsRendered").await.0;
    let renders_timed = thumbnailer("RenderMs").await.1;
    let ticket = upload("e2e.jpg", photo).await;

    let id = ticket["id"].as_str().unwrap().to_string();
    let correlation = ticket["correlation_id"]
        .as_str()
        .expect("correlation id")
        .to_string();
    let ann = ann().await;
    let location = eventually("thumbnail link redirects", Duration::from_secs(60), || {
        let link = rest_as(ann, reqwest::Method::GET, &format!("/thumbnails/{id}"));
        async move {
            let response = link.send().await.ok()?;
            (response.status() == 302)
                .then(|| response.headers()["location"].to_str().unwrap().to_string())
        }
    })
    .await;
    let thumbnail = http().get(location).send().await.unwrap();
    assert_eq!(thumbnail.status(), 200);
    let thumbnail = image::load_from_memory(&thumbnail.bytes().await.unwrap()).expect("a JPEG");
    assert_eq!((thumbnail.width(), thumbnail.height()), (200, 150));
    // The upload's correlation id reached the thumbnail and the notice.
    let sdk = sdk().await;
    let head = aws_sdk_s3::Client::new(&sdk)
        .head_object()
        .bucket(local.resource("ThumbnailsBucket"))
        .key(format!("thumbnails/{}/{id}.jpg", ann.sub))
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata().and_then(|m| m.get("correlation-id")),
        Some(&correlation)
    );
    assert_logged_in_every_step(&correlation, &["presigner", "thumbnailer"]);
    local
        .metric_grows(
            "ThumbnailerFunction",
            "ThumbnailsRendered",
            &[],
            rendered,
            1.0,
        )
        .await;
    if !local.on_aws() {
        assert!(thumbnailer("RenderMs").await.1 > renders_timed);
        let (megapixels, samples) = thumbnailer("InputMegapixels").await;
        assert!(
            samples > 0 && megapixels >= 0.3072,
            "{megapixels} MP in {samples}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_is_not_an_image_is_counted_by_reason() {
    let local = local();
    let reason = [("Reason", "unsupported_format")];
    let (failed, _) = local
        .metric("ThumbnailerFunction", "UploadsFailed", &reason)
        .await;
    let ticket = upload("notes.jpg", b"not a photo at all".to_vec()).await;
    local
        .metric_grows("ThumbnailerFunction", "UploadsFailed", &reason, failed, 1.0)
        .await;
    // The page waiting for it learns that it failed, and why.
    let id = ticket["id"].as_str().unwrap().to_string();
    let ann = ann().await;
    let error = eventually(
        "a 422 for the failed upload",
        Duration::from_secs(30),
        || {
            let link = rest_as(ann, reqwest::Method::GET, &format!("/thumbnails/{id}"));
            async move {
                let response = link.send().await.ok()?;
                (response.status() == 422).then_some(response)
            }
        },
    )
    .await;
    let body: Value = error.json().await.unwrap();
    assert_eq!(body["error"]["code"], "thumbnail_failed", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not an image in an accepted format (JPEG, PNG, WebP, GIF)"),
        "{body}"
    );
}

/// An upload ticket for a JPEG named `filename`, and the PUT it describes (every header it
/// signed); returns the ticket.
async fn upload(filename: &str, bytes: Vec<u8>) -> Value {
    let (status, ticket) = call(
        reqwest::Method::POST,
        "/uploads",
        Some(json!({"filename": filename, "content_type": "image/jpeg", "size": bytes.len()})),
    )
    .await;
    assert_eq!(status, 201, "{ticket}");
    let mut put = http().put(ticket["upload_url"].as_str().unwrap());
    for (name, value) in ticket["headers"].as_object().unwrap() {
        put = put.header(name, value.as_str().unwrap());
    }
    let uploaded = put.body(bytes).send().await.unwrap();
    assert_eq!(uploaded.status(), 200, "{:?}", uploaded.text().await);
    ticket
}

/// The `correlation_id` attribute of the first notice on `tap` that mentions `needle`.
async fn notice_with(tap: &str, needle: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    eventually("the notice", Duration::from_secs(30), || {
        let sqs = sqs.clone();
        async move {
            let received = sqs
                .receive_message()
                .queue_url(tap)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .send()
                .await
                .ok()?;
            received
                .messages()
                .iter()
                .find(|m| m.body().is_some_and(|b| b.contains(needle)))?
                .message_attributes()?
                .get("correlation_id")?
                .string_value()
                .map(str::to_string)
        }
    })
    .await
}

/// Every function in `steps` logged at least one line carrying the correlation id, next to
/// Lambda's request id and trace id.
fn assert_logged_in_every_step(correlation: &str, steps: &[&str]) {
    if local()
        .skip_on_aws("the functions' logs are in CloudWatch Logs (search the correlation id there)")
    {
        return;
    }
    let log = std::fs::read_to_string(&local().log).expect("log");
    for step in steps {
        let line = log
            .lines()
            .filter_map(|l| l.split_once(" | "))
            .filter(|(label, _)| label.trim() == *step)
            .filter_map(|(_, line)| serde_json::from_str::<Value>(line).ok())
            .find(|l| l.to_string().contains(correlation))
            .unwrap_or_else(|| panic!("{step} logged nothing with {correlation}"));
        let spans = line["spans"].as_array().cloned().unwrap_or_default();
        assert!(
            spans
                .iter()
                .any(|s| s["requestId"].is_string() && s["xrayTraceId"].is_string()),
            "{line}"
        );
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A ticket for `room`, asked for by `person` (it carries their own display name).
async fn ticket(room: &str, person: &Person) -> String {
    let room = url::form_urlencoded::byte_serialize(room.as_bytes()).collect::<String>();
    let (status, issued) = call_as(
        person,
        reqwest::Method::POST,
        &format!("/rooms/{}/tickets", room.replace('+', "%20")),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["user"], person.name.as_str());
    issued["ticket"].as_str().unwrap().to_string()
}

async fn join(room: &str, person: &Person) -> Socket {
    let url = local_stack::tour::chat_url(&local().websocket, &ticket(room, person).await);
    let (socket, response) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the gateway accepts the socket");
    assert_eq!(response.status(), 101);
    socket
}

/// The next text frame as JSON, within 10 s.
async fn receive(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap_or_else(|_| panic!("no frame within 10 s\n{}", local().log_tail()))
            .expect("socket open")
            .expect("frame");
        if let Message::Text(text) = frame {
            return serde_json::from_str(&text).expect("JSON frame");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_websocket_clients_chat_and_read_the_history() {
    let local = local();
    // People's names, in their scripts and with emoji, round-trip exactly.
    let room = format!(
        "서울 ☕ {}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let (ann_name, bob_name) = ("김민수", "Zoë 👩🏽‍💻");
    let (delivered, _) = local
        .metric("ChatPutFunction", "FanoutDelivered", &[])
        .await;
    let (ann_person, bob_person) = (local.person(ann_name).await, local.person(bob_name).await);
    let mut ann = join(&room, &ann_person).await;
    let mut bob = join(&room, &bob_person).await;

    // Over the socket: route selection by `action`, fan-out to both.
    ann.send(Message::Text(
        json!({"action": "sendmessage", "text": "안녕 bob 👋"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    for socket in [&mut ann, &mut bob] {
        let frame = receive(socket).await;
        let message = &frame["message"];
        assert_eq!(
            (message["user"].as_str(), message["text"].as_str()),
            (Some(ann_name), Some("안녕 bob 👋"))
        );
    }
    // Over REST: stored and pushed to the room, under the poster's own name.
    let (status, posted) = call_as(
        &bob_person,
        reqwest::Method::POST,
        &format!("/rooms/{room}/messages"),
        Some(json!({"text": "hello ann"})),
    )
    .await;
    assert_eq!(status, 201, "{posted}");
    for socket in [&mut ann, &mut bob] {
        assert_eq!(receive(socket).await["message"]["text"], "hello ann");
    }
    assert_history_has_both(&room, ann_name, bob_name).await;
    assert_bad_frames_and_tickets_refused(local, &mut bob).await;

    // After bob leaves ($disconnect), posts reach ann only.
    bob.close(None).await.unwrap();
    drop(bob);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, posted) = call_as(
        &ann_person,
        reqwest::Method::POST,
        &format!("/rooms/{room}/messages"),
        Some(json!({"text": "still here"})),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(receive(&mut ann).await["message"]["text"], "still here");
    // $disconnect forgot bob: nothing was left to push to and prune (a failed $disconnect,
    // e.g. AccessDenied on DeleteItem, leaves the record behind; API Gateway ignores its result).
    assert_eq!(
        (
            posted["delivered"].as_u64(),
            posted["pruned"].as_u64(),
            posted["failed"].as_u64()
        ),
        (Some(1), Some(0), Some(0)),
        "{posted}\n{}",
        local.log_tail()
    );
    // Two posts to two sockets, one to one.
    local
        .metric_grows("ChatPutFunction", "FanoutDelivered", &[], delivered, 5.0)
        .await;
}

/// The room's history holds both messages, by both people, in this room only.
async fn assert_history_has_both(room: &str, ann_name: &str, bob_name: &str) {
    let (status, history) = call(
        reqwest::Method::GET,
        &format!("/rooms/{room}/messages"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let texts: Vec<&str> = history["items"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(texts.len(), 2, "{history}");
    assert!(texts.contains(&"안녕 bob 👋") && texts.contains(&"hello ann"));
    let users: Vec<&str> = history["items"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["user"].as_str())
        .collect();
    assert!(
        users.contains(&ann_name) && users.contains(&bob_name),
        "{history}"
    );
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["room"] == room || m.get("room").is_none()),
        "{history}"
    );
}

/// An unroutable frame gets API Gateway's own answer; a socket without a ticket (or with a
/// forged or empty one) is refused at $connect, and a bad room (a right-to-left override hiding
/// what it says) gets no ticket.
async fn assert_bad_frames_and_tickets_refused(local: &Local, socket: &mut Socket) {
    socket
        .send(Message::Text(json!({"action": "dance"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(receive(socket).await["message"], "Forbidden");
    let (status, _) = call(
        reqwest::Method::POST,
        "/rooms/bad%E2%80%AEroom/tickets",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 400);
    for query in ["?room=lobby&user=x", "?ticket=e30.forged", "?ticket="] {
        let refused = tokio_tungstenite::connect_async(format!("{}{query}", local.websocket)).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{query}")
            }
            other => panic!("expected a refused handshake, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_link_from_the_mailbox_resumes_the_execution() {
    let local = local();
    // On AWS, SES's mailbox simulator: accepted (in the sandbox too) and delivered nowhere.
    let manager = if local.on_aws() {
        "success@simulator.amazonses.com".to_string()
    } else {
        format!(
            "boss-{}@example.com",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    };
    let (status, started) = call(
        reqwest::Method::POST,
        "/approvals",
        Some(json!({"employeeName": "Ann Lee", "managerEmail": manager})),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let execution_arn = started["executionArn"].as_str().unwrap().to_string();
    if local.on_aws() {
        stop_the_waiting_execution(local, &execution_arn).await;
        return;
    }
    let worker = |name: &'static str| local.metric("ApprovalWorkerFunction", name, &[]);
    let api = |name: &'static str| local.metric("ApprovalApiFunction", name, &[]);
    let requested = worker("ApprovalsRequested").await.0;
    let (approved, expired) = (
        api("ApprovalsApproved").await.0,
        api("ApprovalsExpired").await.0,
    );

    let approve = eventually("approval email", Duration::from_secs(60), || {
        let url = format!("{}/_local/mail?to={manager}", local.url);
        async move {
            let mail: Value = http().get(url).send().await.ok()?.json().await.ok()?;
            mail["messages"][0]["links"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .find(|l| l.contains("/approvals/succeed"))
                .map(str::to_string)
        }
    })
    .await;
    assert!(
        approve.starts_with(&local.url),
        "links point at the local gateway: {approve}"
    );
    decide_once_by_the_confirmation_page(local, &approve).await;
    let grows = |id, name, before| local.metric_grows(id, name, &[], before, 1.0);
    grows("ApprovalWorkerFunction", "ApprovalsRequested", requested).await;
    grows("ApprovalApiFunction", "ApprovalsApproved", approved).await;
    grows("ApprovalApiFunction", "ApprovalsExpired", expired).await;

    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    eventually("execution succeeded", Duration::from_secs(30), || {
        let (sfn, arn) = (sfn.clone(), execution_arn.clone());
        async move {
            let described = sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .ok()?;
            (described.status().as_str() == "SUCCEEDED").then_some(())
        }
    })
    .await;
}

/// On AWS there is no inbox to click in: check the execution waits for the person, then stop
/// it, so it never times out into ApprovalExpired (which alarms).
async fn stop_the_waiting_execution(local: &Local, execution_arn: &str) {
    let sfn = aws_sdk_sfn::Client::new(&sdk().await);
    let described = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(described.status().as_str(), "RUNNING");
    sfn.stop_execution()
        .execution_arn(execution_arn)
        .cause("end-to-end test against the deployed stack")
        .send()
        .await
        .unwrap();
    local.skip_on_aws(
        "no inbox to follow the link from (SES simulator); the decision path is checked locally",
    );
}

/// The link opens a confirmation page (no API key: it comes from an email) whose button POSTs
/// the decision; a second click finds the request closed, and so does the used link on GET,
/// before offering any button; a made-up link is refused.
async fn decide_once_by_the_confirmation_page(local: &Local, approve: &str) {
    let page = http().get(approve).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("<form method=\"post\""), "{page}");
    assert!(page.contains("the promotion of Ann Lee"), "{page}");
    // Whose request it is: the requester's name and address, from their token.
    assert!(page.contains("Requested by Ann Lee ("), "{page}");
    let token = page
        .split("name=\"taskToken\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("token in the form");
    let decide = || {
        http()
            .post(approve.split('?').next().unwrap())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "taskToken={}",
                url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
            ))
            .send()
    };
    assert_eq!(decide().await.unwrap().status(), 200);
    assert_eq!(decide().await.unwrap().status(), 410);
    let used = http()
        .get(approve)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 410);
    assert!(!used.text().await.unwrap().contains("<form"));
    let made_up = http()
        .get(format!(
            "{}/approvals/succeed?taskToken=not-a-token",
            local.url
        ))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(made_up.status(), 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn appointments_reach_the_queue_enriched_by_the_pipe() {
    let local = local();
    // Two patients, each booking for themselves: one told the clinic how to reach them.
    let (known, unknown) = (local.person("Known").await, local.person("Unknown").await);
    let enrichment = |name: &'static str| local.metric("PipeEnrichmentFunction", name, &[]);
    let (enriched, contact_unknown) = (
        enrichment("AppointmentsEnriched").await.0,
        enrichment("ContactUnknown").await.0,
    );
    let (status, _) = call_as(
        &known,
        reqwest::Method::PUT,
        &format!("/contacts/{}", known.email),
        Some(json!({"preferredMethod": "sms"})),
    )
    .await;
    assert_eq!(status, 200);
    let mut ids = Vec::new();
    for patient in [&known, &unknown] {
        let (status, booked) = call_as(
            patient,
            reqwest::Method::POST,
            "/appointments",
            Some(json!({"patientName": patient.name, "dentist": "Dr. Kim", "startsAt": "2031-03-14T09:30:00Z"})),
        )
        .await;
        assert_eq!(status, 201, "{booked}");
        assert_eq!(booked["email"], patient.email.as_str());
        ids.push(booked["id"].as_str().unwrap().to_string());
    }
    // Each lists their own; neither reads the other's.
    let (_, mine) = call_as(&unknown, reqwest::Method::GET, "/appointments", None).await;
    assert!(
        mine.to_string().contains(&ids[1]) && !mine.to_string().contains(&ids[0]),
        "{mine}"
    );
    let theirs = format!("/appointments/{}", ids[0]);
    let (status, _) = call_as(&unknown, reqwest::Method::GET, &theirs, None).await;
    assert_eq!(status, 404);

    // Read the target queue as a consumer would.
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = local.resource("AppointmentQueue");
    let mut preferred = std::collections::HashMap::new();
    let started = Instant::now();
    while preferred.len() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "appointments not on the queue: {preferred:?}\n{}",
            local.log_tail()
        );
        let received = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in received.messages() {
            let body: Value = serde_json::from_str(message.body().unwrap_or_default()).unwrap();
            if let Some(id) = body["id"].as_str().filter(|id| ids.iter().any(|i| i == id)) {
                preferred.insert(id.to_string(), body["preferredMethod"].clone());
            }
        }
    }
    assert_eq!(preferred[&ids[0]], "sms");
    assert_eq!(preferred[&ids[1]], "none");
    let grows =
        |name, before, by| local.metric_grows("PipeEnrichmentFunction", name, &[], before, by);
    grows("AppointmentsEnriched", enriched, 2.0).await;
    grows("ContactUnknown", contact_unknown, 1.0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_message_ends_in_the_dead_letter_queue() {
    let local = local();
    if local.skip_on_aws("a message in PhotoUploadDLQ sets off its alarm and pages the operator") {
        return;
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let marker = format!("poison-{}", uuid::Uuid::new_v4().simple());
    sqs.send_message()
        .queue_url(local.resource("PhotoUploadQueue"))
        .message_body(&marker)
        .send()
        .await
        .unwrap();
    // The thumbnailer reports it as a batch item failure each time; after 3 receives SQS moves it.
    let template =
        local_stack::cloudformation::template::Template::load_project().expect("template");
    let redrive = &template.resource("PhotoUploadQueue").unwrap().properties["RedrivePolicy"];
    let dlq_id = template
        .references(redrive)
        .into_iter()
        .next()
        .expect("a DLQ");
    let dlq = local.resource(&dlq_id);
    eventually("poison message in the DLQ", Duration::from_secs(60), || {
        let (sqs, dlq, marker) = (sqs.clone(), dlq.clone(), marker.clone());
        async move {
            let received = sqs
                .receive_message()
                .queue_url(&dlq)
                .max_number_of_messages(10)
                .visibility_timeout(0)
                .send()
                .await
                .ok()?;
            received
                .messages()
                .iter()
                .any(|m| m.body() == Some(marker.as_str()))
                .then_some(())
        }
    })
    .await;
}

/// The tour `make dev` prints, run exactly as printed (bash, curl, python3), plus the socket
/// frame it tells a chat client to send: every step must be accepted by the APIs.
#[tokio::test(flavor = "multi_thread")]
async fn tour_runs_as_printed() {
    let local = local();
    if local.skip_on_aws("the tour is what `make dev` prints for the local stack") {
        return;
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("the gate");
    let client_id = local.resource("WebAppClient");
    let sign_in = local_stack::tour::SignIn {
        endpoint: &endpoint,
        client_id: &client_id,
    };
    let script = local_stack::tour::script(
        &local.web,
        &local.url,
        &local.api_key,
        &local.websocket,
        &sign_in,
        time::OffsetDateTime::now_utc(),
    );
    // Step 3's clients: connected before the script posts to the room.
    let (mut ann, _) = tokio_tungstenite::connect_async(local_stack::tour::chat_url(
        &local.websocket,
        &ticket(local_stack::tour::CHAT_ROOM, &local.person("Ann").await).await,
    ))
    .await
    .expect("the tour's chat URL connects");
    ann.send(Message::Text(local_stack::tour::CHAT_FRAME.into()))
        .await
        .unwrap();
    let echoed = receive(&mut ann).await;
    assert_eq!(echoed["message"]["user"], "Ann", "{echoed}");

    let dir = std::env::temp_dir().join(format!("tour-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("photo.jpg"), photo()).unwrap();
    let output = tokio::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(&dir)
        .output()
        .await
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the printed tour failed\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- stack\n{}",
        local.log_tail()
    );
    let thumbnail = image::open(dir.join("thumbnail.jpg")).expect("step 2 saved the thumbnail");
    assert_eq!(thumbnail.width(), 200);
    assert!(stdout.contains("hello from curl"), "{stdout}");
    // Two people: Bob sees nothing of Ann's, and her item answers him as a missing one.
    assert!(stdout.contains(r#"Bob's items: {"items":[]}"#), "{stdout}");
    assert!(stdout.contains("Bob reading Ann's item: 404"), "{stdout}");
    assert!(stdout.contains(r#"Bob's photos: {"items":[]}"#), "{stdout}");
    assert!(
        stdout.contains("/approvals/succeed?"),
        "the approval email: {stdout}"
    );
    assert!(stdout.contains(r#""preferredMethod":"sms""#), "{stdout}");
    assert!(
        stdout.contains(r#""status":"pending""#),
        "Ann's requests: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Over API Gateway's 10 MB payload limit the gateway answers itself, with the template's
/// gateway response (REQUEST_TOO_LARGE falls back to DEFAULT_4XX): the JSON error shape.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_body_gets_the_gateway_response_shape() {
    let response = rest(reqwest::Method::POST, "/items")
        .await
        .header("content-type", "application/json")
        .body(vec![b' '; 10 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("gateway answers");
    assert_eq!(response.status().as_u16(), 413);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "REQUEST_TOO_LARGE", "{body}");
}

/// The six-digit code of the newest mail to `to`, once it arrived.
async fn mailed_code(to: &str) -> String {
    let url = format!("{}/_local/mail?to={to}", local().url);
    eventually("the mailed code", Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let mail: Value = http().get(url).send().await.ok()?.json().await.ok()?;
            let body = mail["messages"].as_array()?.last()?["body"]
                .as_str()?
                .to_string();
            let digits = body.split(|c: char| !c.is_ascii_digit());
            digits
                .into_iter()
                .find(|d| d.len() == 6)
                .map(str::to_string)
        }
    })
    .await
}

/// `InitiateAuth` for a confirmed person: refused for a wrong password, a flow the client does
/// not allow and an unknown user (answered alike); with the password, an ID token naming them.
async fn signs_in_only_as_cognito_allows(client: &str, email: &str) {
    let password = |password: &str| {
        json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": email, "PASSWORD": password}})
    };
    for (case, body, refusal) in [
        (
            "a wrong password",
            password("wrong horse battery"),
            "NotAuthorizedException",
        ),
        (
            "SRP, which the client does not allow",
            {
                let mut srp = password("x");
                srp["AuthFlow"] = json!("USER_SRP_AUTH");
                srp
            },
            "InvalidParameterException",
        ),
        (
            "an unknown user, answered as a wrong password",
            {
                let mut unknown = password("correct horse battery");
                unknown["AuthParameters"]["USERNAME"] = json!("nobody@example.com");
                unknown
            },
            "NotAuthorizedException",
        ),
    ] {
        let (status, refused) = support::cognito("InitiateAuth", body).await;
        assert_eq!(
            (status, &refused["__type"]),
            (400, &json!(refusal)),
            "{case}: {refused}"
        );
    }
    let (status, signed_in) =
        support::cognito("InitiateAuth", password("correct horse battery")).await;
    assert_eq!(status, 200, "{signed_in}");
    let id_token = signed_in["AuthenticationResult"]["IdToken"]
        .as_str()
        .unwrap();
    let claims = support::claims(id_token);
    assert_eq!(claims["email"], json!(email));
    assert_eq!(claims["name"], "Ann Lee");
    assert_eq!(claims["aud"], json!(client));
    assert!(claims["email_verified"] == json!(true) || claims["email_verified"] == "true");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_up_with_the_mailed_code_and_signs_in() {
    let local = local();
    if local.skip_on_aws("the confirmation code is read from the local mailbox") {
        return;
    }
    let client = local.resource("WebAppClient");
    let email = format!(
        "ann-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let sign_up = |password: &str| {
        json!({"ClientId": client, "Username": email, "Password": password, "UserAttributes": [
            {"Name": "email", "Value": email}, {"Name": "name", "Value": "Ann Lee"}]})
    };
    let (status, weak) = support::cognito("SignUp", sign_up("too short")).await;
    assert_eq!(
        (status, &weak["__type"]),
        (400, &json!("InvalidPasswordException"))
    );
    let (status, signed_up) = support::cognito("SignUp", sign_up("correct horse battery")).await;
    assert_eq!(
        (status, &signed_up["UserConfirmed"]),
        (200, &json!(false)),
        "{signed_up}"
    );
    assert_eq!(signed_up["CodeDeliveryDetails"]["DeliveryMedium"], "EMAIL");
    let code = mailed_code(&email).await;

    let password = |password: &str| {
        json!({"ClientId": client, "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {"USERNAME": email, "PASSWORD": password}})
    };
    let (_, early) = support::cognito("InitiateAuth", password("correct horse battery")).await;
    assert_eq!(early["__type"], "UserNotConfirmedException", "{early}");
    let confirm =
        |code: &str| json!({"ClientId": client, "Username": email, "ConfirmationCode": code});
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, mismatch) = support::cognito("ConfirmSignUp", confirm(wrong)).await;
    assert_eq!(
        (status, &mismatch["__type"]),
        (400, &json!("CodeMismatchException"))
    );
    let (status, confirmed) = support::cognito("ConfirmSignUp", confirm(&code)).await;
    assert_eq!(status, 200, "{confirmed}");

    signs_in_only_as_cognito_allows(&client, &email).await;

    // Without AWS credentials, nothing but the public operations: not the admin ones.
    let pool = local.resource("UserPool");
    let delete = json!({"UserPoolId": pool, "Username": email});
    let (status, denied) = support::cognito("AdminDeleteUser", delete).await;
    assert!(status == 400 || status == 403, "{status} {denied}");
    let (status, _) = support::cognito("InitiateAuth", password("correct horse battery")).await;
    assert_eq!(status, 200, "the person is still there");
}

/// The routes docs/openapi.yaml says need a signed-in person (the contract test holds the
/// document to the template), with every path parameter filled in.
fn signed_in_routes() -> Vec<(reqwest::Method, String)> {
    let path = local_stack::workspace::project_root().join("docs/openapi.yaml");
    let doc: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let needs_person = |security: &Value| {
        security
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("person").is_some()))
    };
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str())
                || !needs_person(operation.get("security").unwrap_or(&doc["security"]))
            {
                continue;
            }
            let filled: Vec<String> = path
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "x1".into()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            let method = method.to_ascii_uppercase().parse().unwrap();
            routes.push((method, filled.join("/")));
        }
    }
    routes
}

/// An ID token for Ann from another app client of the pool, and one from another pool: both
/// signed by the emulator's key, so only the audience and issuer checks can refuse them.
async fn tokens_from_elsewhere(local: &Local, ann: &Person) -> (String, String) {
    use aws_sdk_cognitoidentityprovider::types::{
        AttributeType, AuthFlowType, ExplicitAuthFlowsType, MessageActionType,
    };
    let idp = aws_sdk_cognitoidentityprovider::Client::new(&sdk().await);
    let token = async |pool: &str, email: &str, password: &str| {
        let client = idp
            .create_user_pool_client()
            .user_pool_id(pool)
            .client_name(format!("{}-elsewhere", local.prefix))
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowAdminUserPasswordAuth)
            .send()
            .await
            .expect("another client");
        let client = client.user_pool_client.unwrap().client_id.unwrap();
        let signed_in = idp
            .admin_initiate_auth()
            .user_pool_id(pool)
            .client_id(&client)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .expect("signed in through the other client");
        // The token outlives its client (and pool): only the claims are checked.
        idp.delete_user_pool_client()
            .user_pool_id(pool)
            .client_id(&client)
            .send()
            .await
            .expect("the other client deleted");
        signed_in.authentication_result.unwrap().id_token.unwrap()
    };
    let other_client = token(&local.resource("UserPool"), &ann.email, &ann.password).await;
    let pool = idp
        .create_user_pool()
        .pool_name(format!("{}-elsewhere", local.prefix))
        .send()
        .await
        .expect("another pool");
    let pool = pool.user_pool.unwrap().id.unwrap();
    let password = "Elsewhere-1-password";
    idp.admin_create_user()
        .user_pool_id(&pool)
        .username(&ann.email)
        .message_action(MessageActionType::Suppress)
        .user_attributes(
            AttributeType::builder()
                .name("email")
                .value(&ann.email)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("Ann in the other pool");
    idp.admin_set_user_password()
        .user_pool_id(&pool)
        .username(&ann.email)
        .password(password)
        .permanent(true)
        .send()
        .await
        .expect("her password there");
    let other_pool = token(&pool, &ann.email, password).await;
    idp.delete_user_pool()
        .user_pool_id(&pool)
        .send()
        .await
        .expect("the other pool deleted");
    (other_client, other_pool)
}

/// Every route behind the authorizer answers 401 (`UNAUTHORIZED`, the template's error shape)
/// to a request with the API key but no valid ID token, before any function runs: none, a
/// tampered one, one claiming `alg: none`, an access token, one issued to another app client
/// of the pool, one from another pool, and one behind a `Bearer ` prefix. Expiry is checked by
/// the authorizer's unit tests (the emulator's tokens live an hour).
#[tokio::test(flavor = "multi_thread")]
async fn every_signed_in_route_refuses_a_missing_or_false_token() {
    use base64::Engine;
    let local = local();
    let ann = ann().await;
    let base64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = ann.id_token.split('.').collect();
    let mut claims = support::claims(&ann.id_token);
    claims["email"] = json!("someone-else@example.com");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64url.encode(claims.to_string()),
        parts[2]
    );
    let none = base64url.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let (other_client, other_pool) = tokens_from_elsewhere(local, ann).await;
    let cases = [
        ("no token", None),
        ("a tampered token", Some(tampered)),
        ("alg none", Some(format!("{none}.{}.", parts[1]))),
        ("an access token", Some(ann.access_token.clone())),
        ("another client's token", Some(other_client)),
        ("another pool's token", Some(other_pool)),
        ("a Bearer prefix", Some(format!("Bearer {}", ann.id_token))),
    ];
    let routes = signed_in_routes();
    assert!(routes.len() >= 10, "{routes:?}");
    for (method, path) in routes {
        for (case, token) in &cases {
            let mut request = http()
                .request(method.clone(), format!("{}{path}", local.url))
                .header("x-api-key", &local.api_key)
                .json(&json!({}));
            if let Some(token) = token {
                request = request.header("authorization", token);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, &body["error"]["code"]),
                (401, &json!("UNAUTHORIZED")),
                "{method} {path} with {case}: {body}"
            );
        }
    }
    // The real token passes the authorizer (whatever the function then answers to `x1`).
    let (status, _) = call(reqwest::Method::GET, "/items/x1", None).await;
    assert_ne!(status, 401);
}

/// Two signed-in people through the gateway: Bob gets exactly a missing item's answers on Ann's,
/// her item is unchanged afterwards, and neither's listing shows the other's rows.
#[tokio::test(flavor = "multi_thread")]
async fn each_persons_items_are_theirs_alone() {
    use reqwest::Method;
    let (ann, bob) = (ann().await, &local().person("Bob Kim").await);
    let body = json!({"name": "Ann's desk", "email": "desk@example.com"});
    let (status, anns) = call_as(ann, Method::POST, "/items", Some(body)).await;
    assert_eq!(status, 201, "{anns}");
    let id = anns["id"].as_str().unwrap();
    let missing = uuid::Uuid::new_v4();
    for (method, body) in [
        (Method::GET, None),
        (Method::PUT, Some(json!({"name": "Bob's now"}))),
        (Method::DELETE, None),
    ] {
        let theirs = call_as(bob, method.clone(), &format!("/items/{id}"), body.clone()).await;
        let nothing = call_as(bob, method.clone(), &format!("/items/{missing}"), body).await;
        assert_eq!(theirs, nothing, "{method}");
        assert_eq!(theirs.0, 404, "{method}");
    }
    let (status, still) = call_as(ann, Method::GET, &format!("/items/{id}"), None).await;
    assert_eq!(
        (status, &still),
        (200, &anns),
        "Ann's item is as she left it"
    );
    assert_eq!(anns["owner"], json!(support::claims(&ann.id_token)["sub"]));

    let (_, bobs) = call_as(bob, Method::GET, "/items", None).await;
    assert!(!bobs.to_string().contains(id), "{bobs}");
    let (_, hers) = call_as(ann, Method::GET, "/items", None).await;
    assert!(hers.to_string().contains(id), "{hers}");
}
