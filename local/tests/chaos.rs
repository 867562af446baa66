//! Chaos: every system driven through its public interfaces at a steady rate while the IAM gate
//! fails a share of every principal's AWS calls (throttling, 500/503, cut connections before
//! and after the call was applied, latency), then, with faults off, drained and checked against
//! its promises. It prints a ledger per system and fails if anything was lost.
//!
//! `make test` runs it short and seeded (`CHAOS_SECONDS`, default 12); `make chaos` runs it for
//! 2 minutes. `CHAOS_FAULTS` is the fault spec (default `0.2,seed=20261201`, see
//! `local_stack::faults`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use support::{Local, http, photo, sdk};
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Ledger {
    requests: u64,
    /// Final answers by kind ("201", "201 after retry", "503 gave up", ...).
    outcomes: BTreeMap<String, u64>,
    /// Broken promises found while driving (a 500, a 502, a 503 without Retry-After, ...).
    violations: Vec<String>,
}

impl Ledger {
    fn outcome(&mut self, kind: impl Into<String>) {
        *self.outcomes.entry(kind.into()).or_default() += 1;
    }
}

type Shared<T> = Arc<Mutex<T>>;

struct Client {
    url: String,
    key: String,
    /// A signed-in person's ID token (the REST API's authorizer).
    token: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    body: Value,
    retry_after: bool,
}

impl Client {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        idem: Option<&str>,
    ) -> Option<Answer> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .header("x-api-key", &self.key)
            .header("authorization", &self.token)
            .timeout(Duration::from_secs(40))
            .json(body);
        if let Some(key) = idem {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body = response.json().await.unwrap_or(Value::Null);
        Some(Answer {
            status,
            body,
            retry_after,
        })
    }

    /// Sends until a non-503 answer (at most `tries`), checking every 5xx against the promise:
    /// dependency failures are 503, with a JSON error and Retry-After; never 500 or 502.
    async fn with_retries(
        &self,
        ledger: &Shared<Ledger>,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        idem: Option<&str>,
    ) -> Option<Answer> {
        for attempt in 1..=6 {
            ledger.lock().unwrap().requests += 1;
            let answer = self.send(method.clone(), path, body, idem).await;
            match answer {
                Some(a) if a.status == 503 => {
                    if !a.retry_after || a.body["error"]["code"].as_str().is_none() {
                        ledger.lock().unwrap().violations.push(format!(
                            "{method} {path}: 503 without a JSON error and Retry-After: {}",
                            a.body
                        ));
                    }
                    if attempt == 6 {
                        ledger.lock().unwrap().outcome("503, gave up after 6 tries");
                        return Some(a);
                    }
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Some(a) if a.status >= 500 => {
                    ledger
                        .lock()
                        .unwrap()
                        .violations
                        .push(format!("{method} {path}: {} {}", a.status, a.body));
                    return Some(a);
                }
                Some(a) if a.status >= 400 => {
                    // Every request the drivers send is valid: a 4xx is a broken promise too.
                    ledger
                        .lock()
                        .unwrap()
                        .violations
                        .push(format!("{method} {path}: {} {}", a.status, a.body));
                    return Some(a);
                }
                Some(a) => {
                    let kind = if attempt > 1 {
                        format!("{} after {attempt} tries", a.status)
                    } else {
                        a.status.to_string()
                    };
                    ledger.lock().unwrap().outcome(kind);
                    return Some(a);
                }
                None => {
                    ledger
                        .lock()
                        .unwrap()
                        .violations
                        .push(format!("{method} {path}: the gateway did not answer"));
                    return None;
                }
            }
        }
        None
    }
}
/// An id from an answer; an accepted answer without one is a broken promise (and an empty id
/// would match anything in the checks below).
fn id_of(value: &Value) -> String {
    let id = value.as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "an accepted answer without an id: {value}");
    id
}

fn spec() -> String {
    std::env::var("CHAOS_FAULTS").unwrap_or_else(|_| "0.2,seed=20261201".into())
}

fn seconds() -> u64 {
    std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

/// Every message of a queue, taken off it.
async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    local_stack::lambda::queues::drain(sqs, url)
        .await
        .expect("drain")
}

async fn tap(sdk: &aws_config::SdkConfig, topic_arn: &str, name: &str) -> String {
    local_stack::lambda::queues::tap(sdk, topic_arn, name)
        .await
        .expect("tap")
}

async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut token = None;
    loop {
        let out = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token)
            .send()
            .await
            .expect("list");
        for object in out.contents.unwrap_or_default() {
            keys.insert(object.key.unwrap_or_default());
        }
        token = out.next_continuation_token;
        if token.is_none() {
            return keys;
        }
    }
}

/// What the drivers share: the API, when to stop, each system's ledger, the chat room.
struct Run {
    client: Arc<Client>,
    deadline: Instant,
    every: Duration,
    ledgers: BTreeMap<&'static str, Shared<Ledger>>,
    room: String,
}

/// What each system accepted while driven: what must hold once drained.
#[derive(Default)]
struct Accepted {
    created: Shared<Vec<String>>,
    /// Item creates that never got an answer: (Idempotency-Key, body).
    unresolved: Shared<Vec<(String, Value)>>,
    uploads: Shared<Vec<String>>,
    posted: Shared<Vec<String>>,
    /// (execution ARN, employee name)
    executions: Shared<Vec<(String, String)>>,
    booked: Shared<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_system_keeps_its_promises_under_faults() {
    let local = Local::start("chaos", &["--sqs-visibility-cap", "1"]);
    let deployer = sdk().await;
    let gate =
        local_stack::iam::GateClient::new(&std::env::var("AWS_ENDPOINT_URL").expect("the gate"));
    let taps = Taps::subscribe(&local, &deployer).await;
    let client = Arc::new(Client {
        url: local.url.clone(),
        key: local.api_key.clone(),
        token: local.person("Chaos Tester").await.id_token,
        http: http(),
    });
    // Two live chat connections in one room, before the faults start.
    let room = format!("chaos{}", &local.prefix[5..]);
    let mut sockets = join_room(&local, &client, &room).await;

    let spec = spec();
    gate.set_faults(&local.prefix, Some(&spec))
        .await
        .expect("faults on");
    let run = Arc::new(Run {
        client: client.clone(),
        deadline: Instant::now() + Duration::from_secs(seconds()),
        every: Duration::from_millis(400),
        ledgers: ["items", "photos", "chat", "approval", "appointments"]
            .into_iter()
            .map(|s| (s, Arc::new(Mutex::new(Ledger::default()))))
            .collect(),
        room,
    });
    let accepted = Arc::new(Accepted::default());
    let drivers = [
        tokio::spawn(drive_items(run.clone(), accepted.clone())),
        tokio::spawn(drive_photos(run.clone(), accepted.clone())),
        tokio::spawn(drive_chat(run.clone(), accepted.clone())),
        tokio::spawn(drive_approvals(run.clone(), accepted.clone())),
        tokio::spawn(drive_appointments(run.clone(), accepted.clone())),
    ];
    for driver in drivers {
        driver.await.expect("driver");
    }
    let injected = gate.faults(&local.prefix).await.expect("fault summary");
    gate.set_faults(&local.prefix, None)
        .await
        .expect("faults off");
    resolve_unanswered_creates(&run, &accepted).await;

    let lost = Drain::new(&local, &deployer, taps)
        .until_every_promise_holds(&run, &accepted)
        .await;
    let storm = after_the_storm(&local, &client, &run.room, &mut sockets).await;
    println!(
        "\nchaos: {spec} for {} s (stack {})",
        seconds(),
        local.prefix
    );
    let violations = print_ledgers(&run, &accepted, &lost, &injected);
    println!(
        "chat: sockets still open {}/2, post after faults: {} delivered {} pruned {}; function processes that crashed or timed out: {}",
        storm.live,
        storm.final_post.status,
        storm.final_post.body["delivered"],
        storm.final_post.body["pruned"],
        storm.health["unexpected_exits"]
    );
    assert!(
        violations.is_empty(),
        "broken promises while driving:\n{}",
        violations.join("\n")
    );
    assert!(
        lost.is_empty(),
        "lost after draining: {lost:#?}\n{}",
        local.log_tail()
    );
    storm.assert_nothing_dropped();
    assert_every_fault_kind_injected(&spec, &injected);
}

/// Items: creates with an Idempotency-Key, retried with the same key after a 503.
async fn drive_items(run: Arc<Run>, accepted: Arc<Accepted>) {
    let ledger = &run.ledgers["items"];
    let mut i = 0;
    while Instant::now() < run.deadline {
        i += 1;
        let key = uuid::Uuid::new_v4().to_string();
        let body = json!({"name": format!("chaos item {i}"), "email": "chaos@example.com"});
        match run
            .client
            .with_retries(ledger, reqwest::Method::POST, "/items", &body, Some(&key))
            .await
        {
            Some(a) if a.status == 201 || a.status == 200 => {
                accepted.created.lock().unwrap().push(id_of(&a.body["id"]))
            }
            _ => accepted.unresolved.lock().unwrap().push((key, body)),
        }
        tokio::time::sleep(run.every).await;
    }
}

/// Photos: an upload ticket, then the presigned PUT (retried as a browser would).
async fn drive_photos(run: Arc<Run>, accepted: Arc<Accepted>) {
    let ledger = &run.ledgers["photos"];
    let jpeg = photo();
    let mut i = 0;
    while Instant::now() < run.deadline {
        i += 1;
        let body = json!({"filename": format!("chaos-{i}.jpg"), "content_type": "image/jpeg", "size": jpeg.len()});
        let Some(ticket) = run
            .client
            .with_retries(ledger, reqwest::Method::POST, "/uploads", &body, None)
            .await
            .filter(|a| a.status == 201 || a.status == 200)
        else {
            tokio::time::sleep(run.every).await;
            continue;
        };
        let id = upload_id(&ticket.body);
        if put_upload(&run.client, &ticket.body, &jpeg).await {
            ledger.lock().unwrap().outcome("uploaded");
            accepted.uploads.lock().unwrap().push(id);
        } else {
            ledger.lock().unwrap().outcome("PUT gave up (not uploaded)");
        }
        tokio::time::sleep(run.every).await;
    }
}

/// The presigned PUT with exactly the signed headers, up to six tries.
async fn put_upload(client: &Client, ticket: &Value, jpeg: &[u8]) -> bool {
    for _ in 0..6 {
        let mut put = client
            .http
            .put(ticket["upload_url"].as_str().unwrap_or_default());
        for (name, value) in ticket["headers"].as_object().into_iter().flatten() {
            put = put.header(name.as_str(), value.as_str().unwrap_or_default());
        }
        match put.body(jpeg.to_vec()).send().await {
            Ok(r) if r.status().is_success() => return true,
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
    false
}

/// Chat: REST posts into the room the two sockets are in.
async fn drive_chat(run: Arc<Run>, accepted: Arc<Accepted>) {
    let ledger = &run.ledgers["chat"];
    let path = format!("/rooms/{}/messages", run.room);
    let mut i = 0;
    while Instant::now() < run.deadline {
        i += 1;
        let body = json!({"text": format!("chaos message {i}")});
        if let Some(a) = run
            .client
            .with_retries(ledger, reqwest::Method::POST, &path, &body, None)
            .await
            .filter(|a| a.status == 201)
        {
            accepted
                .posted
                .lock()
                .unwrap()
                .push(id_of(&a.body["message"]["id"]));
        }
        tokio::time::sleep(run.every).await;
    }
}

/// Approval: requests for a manager.
async fn drive_approvals(run: Arc<Run>, accepted: Arc<Accepted>) {
    let ledger = &run.ledgers["approval"];
    let mut i = 0;
    while Instant::now() < run.deadline {
        i += 1;
        let employee = format!(
            "Chaos {i} {}",
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let body = json!({"employeeName": employee, "managerEmail": "chaos-manager@example.com"});
        if let Some(a) = run
            .client
            .with_retries(ledger, reqwest::Method::POST, "/approvals", &body, None)
            .await
            .filter(|a| a.status == 202)
        {
            accepted
                .executions
                .lock()
                .unwrap()
                .push((id_of(&a.body["executionArn"]), employee));
        }
        tokio::time::sleep(run.every * 2).await;
    }
}

/// Appointments: bookings.
async fn drive_appointments(run: Arc<Run>, accepted: Arc<Accepted>) {
    let ledger = &run.ledgers["appointments"];
    let starts = time::OffsetDateTime::now_utc() + time::Duration::days(3);
    let starts = starts
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut i = 0;
    while Instant::now() < run.deadline {
        i += 1;
        let body =
            json!({"patientName": format!("Chaos {i}"), "dentist": "Dr. Kim", "startsAt": starts});
        if let Some(a) = run
            .client
            .with_retries(ledger, reqwest::Method::POST, "/appointments", &body, None)
            .await
            .filter(|a| a.status == 201)
        {
            accepted.booked.lock().unwrap().push(id_of(&a.body["id"]));
        }
        tokio::time::sleep(run.every).await;
    }
}

/// Creates that never got an answer: a retry with the same key returns the item (or makes it).
async fn resolve_unanswered_creates(run: &Run, accepted: &Accepted) {
    let unresolved = accepted.unresolved.lock().unwrap().clone();
    for (key, body) in unresolved {
        let a = run
            .client
            .with_retries(
                &run.ledgers["items"],
                reqwest::Method::POST,
                "/items",
                &body,
                Some(&key),
            )
            .await
            .expect("answer");
        assert!(
            a.status == 201 || a.status == 200,
            "retry of {key}: {} {}",
            a.status,
            a.body
        );
        accepted.created.lock().unwrap().push(id_of(&a.body["id"]));
    }
}

/// Two chat connections of the client's person in `room` (two devices), each with its ticket.
async fn join_room(
    local: &Local,
    client: &Client,
    room: &str,
) -> Vec<tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>>
{
    let mut sockets = Vec::new();
    for _device in 0..2 {
        let issued: serde_json::Value = client
            .http
            .post(format!("{}/rooms/{room}/tickets", client.url))
            .header("x-api-key", &client.key)
            .header("authorization", &client.token)
            .json(&serde_json::json!({}))
            .send()
            .await
            .expect("a ticket")
            .json()
            .await
            .expect("JSON");
        let ticket = issued["ticket"].as_str().expect("ticket");
        let (socket, _) =
            tokio_tungstenite::connect_async(local_stack::tour::chat_url(&local.websocket, ticket))
                .await
                .expect("chat connects");
        sockets.push(socket);
    }
    sockets
}

/// Queues subscribed to the notice topics.
struct Taps {
    item_notices: String,
    thumbnail_notices: String,
}

impl Taps {
    async fn subscribe(local: &Local, deployer: &aws_config::SdkConfig) -> Self {
        let item_notices = tap(
            deployer,
            &local.resource("ItemsTopic"),
            &format!("{}-items-tap", local.prefix),
        )
        .await;
        let thumbnail_notices = tap(
            deployer,
            &local.resource("ThumbnailTopic"),
            &format!("{}-thumbs-tap", local.prefix),
        )
        .await;
        Self {
            item_notices,
            thumbnail_notices,
        }
    }
}

/// What the drain has taken off the queues so far.
struct Drain<'a> {
    local: &'a Local,
    sqs: aws_sdk_sqs::Client,
    s3: aws_sdk_s3::Client,
    sfn: aws_sdk_sfn::Client,
    taps: Taps,
    item_notices: Vec<String>,
    thumbnail_notices: Vec<String>,
    appointments: Vec<String>,
    pipe_dead: Vec<String>,
    photo_dlq: Vec<String>,
}

type Lost = BTreeMap<&'static str, Vec<String>>;

impl<'a> Drain<'a> {
    fn new(local: &'a Local, deployer: &aws_config::SdkConfig, taps: Taps) -> Self {
        Self {
            local,
            sqs: aws_sdk_sqs::Client::new(deployer),
            s3: aws_sdk_s3::Client::new(deployer),
            sfn: aws_sdk_sfn::Client::new(deployer),
            taps,
            item_notices: Vec::new(),
            thumbnail_notices: Vec::new(),
            appointments: Vec::new(),
            pipe_dead: Vec::new(),
            photo_dlq: Vec::new(),
        }
    }

    /// Drains until every promise holds, or 120 s; what is still lost then, per system.
    async fn until_every_promise_holds(mut self, run: &Run, accepted: &Accepted) -> Lost {
        let started = Instant::now();
        loop {
            let lost = self.lost(run, accepted).await;
            if lost.is_empty() || started.elapsed() > Duration::from_secs(120) {
                return lost;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    async fn lost(&mut self, run: &Run, accepted: &Accepted) -> Lost {
        let (sqs, local) = (&self.sqs, self.local);
        self.item_notices
            .extend(drain_queue(sqs, &self.taps.item_notices).await);
        self.thumbnail_notices
            .extend(drain_queue(sqs, &self.taps.thumbnail_notices).await);
        self.appointments
            .extend(drain_queue(sqs, &local.resource("AppointmentQueue")).await);
        self.pipe_dead
            .extend(drain_queue(sqs, &local.resource("AppointmentPipeDLQ")).await);
        self.photo_dlq
            .extend(drain_queue(sqs, &local.resource("PhotoUploadDLQ")).await);
        let created = accepted.created.lock().unwrap().clone();
        let uploads = accepted.uploads.lock().unwrap().clone();
        let posted = accepted.posted.lock().unwrap().clone();
        let executions = accepted.executions.lock().unwrap().clone();
        let booked = accepted.booked.lock().unwrap().clone();
        let mut lost = Lost::new();
        for (system, missing) in [
            ("items", self.lost_items(&run.client, &created).await),
            ("photos", self.lost_photos(&uploads).await),
            ("chat", lost_messages(&run.client, &run.room, &posted).await),
            (
                "approval",
                self.lost_approvals(&run.client, &executions).await,
            ),
            ("appointments", self.lost_appointments(&booked)),
        ] {
            if !missing.is_empty() {
                lost.insert(system, missing);
            }
        }
        lost
    }

    /// Items: readable, backed up, announced.
    async fn lost_items(&self, client: &Client, created: &[String]) -> Vec<String> {
        let backups = keys_under(&self.s3, &self.local.resource("BackupBucket"), "backups/").await;
        let mut lost = Vec::new();
        for id in created {
            let readable = client
                .send(
                    reqwest::Method::GET,
                    &format!("/items/{id}"),
                    &Value::Null,
                    None,
                )
                .await
                .is_some_and(|a| a.status == 200);
            let backed_up = backups.iter().any(|k| k.ends_with(&format!("/{id}.json")));
            let announced = self.item_notices.iter().any(|b| b.contains(id.as_str()));
            if !(readable && backed_up && announced) {
                lost.push(format!(
                    "{id}: readable {readable}, backed up {backed_up}, announced {announced}"
                ));
            }
        }
        lost
    }

    /// Photos: one thumbnail plus a notice, or a recorded failure, or the DLQ.
    async fn lost_photos(&self, uploads: &[String]) -> Vec<String> {
        let thumbs = keys_under(&self.s3, &self.local.resource("ThumbnailsBucket"), "").await;
        let mut lost = Vec::new();
        for id in uploads {
            let thumbnail = has_photo_object(&thumbs, "thumbnails/", id, ".jpg")
                && self
                    .thumbnail_notices
                    .iter()
                    .any(|b| b.contains(id.as_str()));
            let failed = has_photo_object(&thumbs, "failed/", id, ".json");
            let dead = self.photo_dlq.iter().any(|b| b.contains(id.as_str()));
            if !(thumbnail || failed || dead) {
                lost.push(id.clone());
            }
        }
        lost
    }

    /// Approval: ended as designed, or waiting with its email sent.
    async fn lost_approvals(
        &self,
        client: &Client,
        executions: &[(String, String)],
    ) -> Vec<String> {
        let mail = client
            .http
            .get(format!(
                "{}/_local/mail?to=chaos-manager@example.com",
                self.local.url
            ))
            .send()
            .await
            .expect("mailbox")
            .text()
            .await
            .unwrap_or_default();
        let mut lost = Vec::new();
        for (arn, employee) in executions {
            let described = self
                .sfn
                .describe_execution()
                .execution_arn(arn)
                .send()
                .await
                .expect("describe");
            let status = described.status.as_str().to_string();
            let error = described.error.unwrap_or_default();
            let ok = match status.as_str() {
                "SUCCEEDED" => true,
                // Nobody rejects here and requests wait an hour: any failure is a broken promise.
                "FAILED" => false,
                "RUNNING" => mail.contains(employee.as_str()),
                _ => false,
            };
            if !ok {
                lost.push(format!("{employee}: {status} {error}"));
            }
        }
        lost
    }

    /// Appointments: enriched on the queue, or in a batch the pipe dead-lettered.
    fn lost_appointments(&self, booked: &[String]) -> Vec<String> {
        let dead_records: u64 = self
            .pipe_dead
            .iter()
            .filter_map(|b| serde_json::from_str::<Value>(b).ok())
            .filter_map(|b| b["DDBStreamBatchInfo"]["batchSize"].as_u64())
            .sum();
        let missing: Vec<String> = booked
            .iter()
            .filter(|id| !self.appointments.iter().any(|b| b.contains(id.as_str())))
            .cloned()
            .collect();
        if missing.len() as u64 > dead_records {
            missing
        } else {
            Vec::new()
        }
    }
}

/// Chat: every 201 in the history.
async fn lost_messages(client: &Client, room: &str, posted: &[String]) -> Vec<String> {
    let mut history = BTreeSet::new();
    let mut before: Option<String> = None;
    loop {
        let path = match &before {
            Some(cursor) => format!(
                "/rooms/{room}/messages?limit=100&before={}",
                percent_encoding::utf8_percent_encode(cursor, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => format!("/rooms/{room}/messages?limit=100"),
        };
        let page = client
            .send(reqwest::Method::GET, &path, &Value::Null, None)
            .await
            .expect("history");
        for m in page.body["items"].as_array().into_iter().flatten() {
            history.insert(m["id"].as_str().unwrap_or_default().to_string());
        }
        before = page.body["next_cursor"].as_str().map(str::to_string);
        if before.is_none() {
            break;
        }
    }
    posted
        .iter()
        .filter(|id| !history.contains(*id))
        .cloned()
        .collect()
}

/// The chat after the faults: sockets still open, a post both hear, no process crashed.
struct AfterTheStorm {
    live: usize,
    heard: usize,
    final_post: Answer,
    health: Value,
}

impl AfterTheStorm {
    fn assert_nothing_dropped(&self) {
        assert_eq!(self.live, 2, "a live connection was dropped");
        assert_eq!(self.heard, 2, "a live connection stopped hearing its room");
        assert_eq!(
            (
                self.final_post.status,
                self.final_post.body["delivered"].as_u64(),
                self.final_post.body["pruned"].as_u64()
            ),
            (201, Some(2), Some(0)),
            "a live connection was pruned: {}",
            self.final_post.body
        );
        assert_eq!(
            self.health["unexpected_exits"], 0,
            "a function process crashed"
        );
    }
}

async fn after_the_storm(
    local: &Local,
    client: &Client,
    room: &str,
    sockets: &mut [tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >],
) -> AfterTheStorm {
    // The sockets stayed connected and their connections were never pruned.
    let mut live = 0;
    for socket in sockets.iter_mut() {
        if socket.send(Message::Ping(vec![].into())).await.is_ok() {
            live += 1;
        }
    }
    let health: Value = client
        .http
        .get(format!("{}/_local/health", local.url))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .unwrap_or_default();
    let final_post = client
        .send(
            reqwest::Method::POST,
            &format!("/rooms/{room}/messages"),
            &json!({"text": "after the storm"}),
            None,
        )
        .await
        .expect("post");
    // Both sockets hear the post made after the storm (frames from the run come first).
    let mut heard = 0;
    for socket in sockets.iter_mut() {
        let listening = async {
            while let Some(Ok(frame)) = socket.next().await {
                if let Message::Text(text) = frame
                    && text.contains("after the storm")
                {
                    return true;
                }
            }
            false
        };
        if tokio::time::timeout(Duration::from_secs(10), listening).await == Ok(true) {
            heard += 1;
        }
    }
    AfterTheStorm {
        live,
        heard,
        final_post,
        health,
    }
}

/// The table, one row per system; returns the broken promises the ledgers recorded. Every
/// system must have accepted work.
fn print_ledgers(run: &Run, accepted: &Accepted, lost: &Lost, injected: &Value) -> Vec<String> {
    let counts = [
        ("items", accepted.created.lock().unwrap().len()),
        ("photos", accepted.uploads.lock().unwrap().len()),
        ("chat", accepted.posted.lock().unwrap().len()),
        ("approval", accepted.executions.lock().unwrap().len()),
        ("appointments", accepted.booked.lock().unwrap().len()),
    ];
    println!("faults injected: {}", injected["injected"]);
    println!("calls seen by the injector: {}", injected["attempts"]);
    println!("| system | requests | accepted | outcomes | lost |");
    println!("|---|---|---|---|---|");
    let mut violations = Vec::new();
    for (system, accepted) in counts {
        let ledger = run.ledgers[system].lock().unwrap();
        let outcomes: Vec<String> = ledger
            .outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        println!(
            "| {system} | {} | {accepted} | {} | {} |",
            ledger.requests,
            outcomes.join(", "),
            lost.get(system).map_or(0, Vec::len)
        );
        violations.extend(ledger.violations.iter().cloned());
    }
    assert!(
        counts.iter().all(|(_, n)| *n > 0),
        "every system accepted work: {counts:?}"
    );
    violations
}

/// The injector really injected every kind of fault it was asked for.
fn assert_every_fault_kind_injected(spec: &str, injected: &Value) {
    let rate = spec
        .split(',')
        .next()
        .and_then(|r| r.parse::<f64>().ok())
        .unwrap_or(0.0);
    if rate == 0.0 {
        return;
    }
    let kinds: BTreeSet<&str> = injected["injected"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(_, kinds)| {
            kinds
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str())
        })
        .collect();
    for kind in ["throttle", "error", "reset", "lost", "latency"] {
        assert!(
            kinds.contains(kind),
            "no {kind} fault was injected: {injected}"
        );
    }
}

/// `make redrive`: an upload the thumbnailer could not read ends in the DLQ; once the cause is
/// fixed, the redrive moves it back and the thumbnail is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_upload_is_thumbnailed_after_a_redrive() {
    let local = Local::start("redrive", &["--sqs-visibility-cap", "1"]);
    let deployer = sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&deployer);
    let s3 = aws_sdk_s3::Client::new(&deployer);
    let gate =
        local_stack::iam::GateClient::new(&std::env::var("AWS_ENDPOINT_URL").expect("the gate"));
    // The cause: every read of an upload fails.
    gate.set_faults(&local.prefix, Some("0,s3:GetObject=1,kinds=error"))
        .await
        .expect("faults on");
    let client = Client {
        url: local.url.clone(),
        key: local.api_key.clone(),
        token: local.person("Chaos Tester").await.id_token,
        http: http(),
    };
    let jpeg = photo();
    let ticket = client
        .send(
            reqwest::Method::POST,
            "/uploads",
            &json!({"filename": "redrive.jpg", "content_type": "image/jpeg", "size": jpeg.len()}),
            None,
        )
        .await
        .expect("ticket");
    assert_eq!(ticket.status, 201, "{}", ticket.body);
    let id = upload_id(&ticket.body);
    let mut put = client.http.put(ticket.body["upload_url"].as_str().unwrap());
    for (name, value) in ticket.body["headers"].as_object().into_iter().flatten() {
        put = put.header(name.as_str(), value.as_str().unwrap_or_default());
    }
    assert!(put.body(jpeg).send().await.unwrap().status().is_success());

    let dlq_url = local.resource("PhotoUploadDLQ");
    wait_in_dead_letter_queue(&local, &sqs, &dlq_url, &id).await;
    let bucket = local.resource("ThumbnailsBucket");
    let thumbnailed = async || {
        let keys = keys_under(&s3, &bucket, "thumbnails/").await;
        has_photo_object(&keys, "thumbnails/", &id, ".jpg")
    };
    assert!(!thumbnailed().await);

    // The fix, then the redrive (what `make redrive QUEUE=PhotoUploadDLQ` runs).
    gate.set_faults(&local.prefix, None)
        .await
        .expect("faults off");
    let template =
        local_stack::cloudformation::template::Template::load_project().expect("transform");
    let source = local_stack::redrive::source_of(&template, "PhotoUploadDLQ").unwrap();
    let moved = local_stack::redrive::redrive(&sqs, &dlq_url, &local.resource(&source))
        .await
        .expect("redrive");
    assert_eq!(moved, local_stack::redrive::Moved::Messages(1));
    let started = Instant::now();
    while !thumbnailed().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no thumbnail after the redrive\n{}",
            local.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The photo id of an upload ticket.
fn upload_id(ticket: &Value) -> String {
    id_of(&ticket["id"])
}

/// Whether `keys` has the photo's object under `prefix` (`<prefix><owner>/<id><suffix>`).
fn has_photo_object(keys: &BTreeSet<String>, prefix: &str, id: &str, suffix: &str) -> bool {
    let tail = format!("/{id}{suffix}");
    keys.iter()
        .any(|k| k.starts_with(prefix) && k.ends_with(&tail))
}

/// Waits (90 s at most) until a message naming `id` is on the dead-letter queue.
async fn wait_in_dead_letter_queue(
    local: &Local,
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    id: &str,
) {
    let started = Instant::now();
    loop {
        let peek = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("peek");
        if peek
            .messages()
            .iter()
            .any(|m| m.body().is_some_and(|b| b.contains(id)))
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the upload never reached the DLQ\n{}",
            local.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
