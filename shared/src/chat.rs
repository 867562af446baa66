//! Chat domain: rooms, users and messages; WebSocket connections per room; history paging; and
//! the fan-out of a message to every connection of its room.
//!
//! Tables (template.yaml):
//! - `ChatConnectionsTable`: `connection_id` (HASH), [`ROOM_INDEX`] = `room` (HASH) +
//!   `connection_id` (RANGE), keys only (the fan-out needs ids only); [`MEMBERS_INDEX`], the same
//!   keys with `user` and `connected_at` (who is in a room); TTL on `expires_at` (API Gateway
//!   closes sockets at 2 h).
//! - `ChatMessagesTable`: `room` (HASH) + `sort_key` (RANGE) = `<sent_at>#<id>`: time-ordered, and
//!   two messages in the same millisecond never collide.

use std::collections::HashMap;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::config::{self, ConfigError, EnvSource};
use crate::cursor::Page;
use crate::error::{ApiError, BackendError, classify_sdk_error};
use crate::person::Person;
use crate::telemetry::metric;
use crate::timestamp;
use crate::validate;

pub const ROOM_INDEX: &str = "RoomIndex";
pub const MEMBERS_INDEX: &str = "RoomMembersIndex";
/// A members answer names at most this many people (`truncated` says when there are more).
pub const MAX_MEMBERS: usize = 200;
pub const TEXT_MAX: usize = 4000;
/// Longest room and user names, in user-perceived characters (grapheme clusters).
pub const ROOM_MAX: usize = 64;
pub const USER_MAX: usize = 32;
pub const DEFAULT_HISTORY_PAGE: usize = 50;
pub const MAX_HISTORY_PAGE: usize = 100;
/// API Gateway closes WebSocket connections after 2 hours; records expire a little later.
pub const CONNECTION_TTL_SECONDS: i64 = 2 * 3600 + 600;
pub const DEFAULT_FANOUT_CONCURRENCY: usize = 64;

/// A room name, by the rules of people's names ([`validate::name`]): 1-64 characters of any
/// script, at most 256 code points (a DynamoDB key stays far under its 2,048 bytes). No `/` or
/// `\\`: it is a path segment of the REST routes.
pub fn room(raw: &str) -> Result<String, ApiError> {
    let room = validate::name("room", raw, ROOM_MAX, 4 * ROOM_MAX)?;
    if room.contains(['/', '\\']) {
        return Err(ApiError::validation("room must not contain `/` or `\\`"));
    }
    Ok(room)
}

/// A display name as the person typed it, in any script, emoji included: 1-32 characters
/// ([`validate::name`]), at most 128 code points.
pub fn user(raw: &str) -> Result<String, ApiError> {
    validate::name("user", raw, USER_MAX, 4 * USER_MAX)
}

/// The name a signed-in person speaks under: their own display name (the pool's `name`), by
/// [`user`]'s rules. A request may repeat it (`user`), never choose another (403).
pub fn own_name(person: &Person, asked: Option<&str>) -> Result<String, ApiError> {
    let own = user(&person.name).map_err(|e| {
        ApiError::validation(format!(
            "your display name cannot be used in chat: {}",
            e.message
        ))
    })?;
    match asked {
        Some(asked) if user(asked)? != own => Err(ApiError::forbidden(format!(
            "you speak as your own display name ({own})"
        ))),
        _ => Ok(own),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub connection_id: String,
    pub room: String,
    pub user: String,
    pub connected_at: String,
    /// Epoch seconds; DynamoDB TTL removes records whose disconnect never arrived.
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub room: String,
    pub user: String,
    pub text: String,
    pub sent_at: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredMessage {
    #[serde(flatten)]
    message: Message,
    sort_key: String,
}

/// Body of `POST /rooms/{room}/messages`; `user`, if sent, must be the sender's own name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    #[serde(default, deserialize_with = "validate::not_null")]
    pub user: Option<String>,
    pub text: String,
}

impl PostMessageRequest {
    /// The sender's name ([`own_name`]) and the text.
    pub fn validate(self, sender: &Person) -> Result<(String, String), ApiError> {
        Ok((
            own_name(sender, self.user.as_deref())?,
            validate::text("text", &self.text, 1, TEXT_MAX)?,
        ))
    }
}

/// A message sent over the socket: `{"action": "sendmessage", "text": "..."}`; room and user are
/// those the connection joined with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketMessage {
    pub action: String,
    pub text: String,
}

/// What a post did: the stored message and how the fan-out went.
#[derive(Debug, Clone, Serialize)]
pub struct PostOutcome {
    pub message: Message,
    pub delivered: usize,
    pub pruned: usize,
    pub failed: usize,
}

/// The frame every connection of the room receives.
pub fn message_frame(message: &Message) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"type": "message", "message": message}))
        .expect("plain struct serialises")
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FanoutReport {
    pub delivered: usize,
    /// Connections API Gateway answered 410 Gone for: stale, to be deleted.
    pub gone: Vec<String>,
    pub failed: usize,
}

/// Posts `payload` to every connection, at most `concurrency` requests in flight.
pub async fn broadcast(
    client: &aws_sdk_apigatewaymanagement::Client,
    connection_ids: Vec<String>,
    payload: &[u8],
    concurrency: usize,
) -> FanoutReport {
    let sends = futures::stream::iter(connection_ids).map(|id| async move {
        let result = client
            .post_to_connection()
            .connection_id(&id)
            .data(Blob::new(payload.to_vec()))
            .send()
            .await;
        (id, result)
    });
    let mut results = sends.buffer_unordered(concurrency.max(1));
    let mut report = FanoutReport::default();
    while let Some((id, result)) = results.next().await {
        match result {
            Ok(_) => report.delivered += 1,
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_gone_exception()) =>
            {
                report.gone.push(id)
            }
            Err(err) => {
                tracing::warn!(connection_id = %id, error = %aws_sdk_apigatewaymanagement::error::DisplayErrorContext(&err), "post to connection failed");
                report.failed += 1;
            }
        }
    }
    report
}

/// The management API client for a WebSocket stage's callback URL
/// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).
pub fn management_client(
    sdk: &aws_config::SdkConfig,
    callback_url: &str,
) -> aws_sdk_apigatewaymanagement::Client {
    let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk)
        .endpoint_url(callback_url)
        .build();
    aws_sdk_apigatewaymanagement::Client::from_conf(config)
}

/// The connections table: who is connected to which room.
#[derive(Debug, Clone)]
pub struct Connections {
    db: DynamoDb,
    table: String,
}

impl Connections {
    pub fn new(db: DynamoDb, table: impl Into<String>) -> Self {
        Self {
            db,
            table: table.into(),
        }
    }

    /// From `CHAT_CONNECTIONS_TABLE` (set by template.yaml).
    pub fn from_env(db: DynamoDb, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self::new(
            db,
            config::required(env, "CHAT_CONNECTIONS_TABLE")?,
        ))
    }

    pub async fn add_connection(
        &self,
        connection_id: &str,
        room: &str,
        user: &str,
    ) -> Result<Connection, BackendError> {
        let now = time::OffsetDateTime::now_utc();
        let connection = Connection {
            connection_id: connection_id.into(),
            room: room.into(),
            user: user.into(),
            connected_at: timestamp::format(now),
            expires_at: now.unix_timestamp() + CONNECTION_TTL_SECONDS,
        };
        crate::dynamo::put(&self.db, &self.table, &connection, None).await?;
        Ok(connection)
    }

    /// Idempotent: removing an unknown connection is not an error.
    pub async fn remove_connection(&self, connection_id: &str) -> Result<(), BackendError> {
        let key = HashMap::from([(
            "connection_id".to_string(),
            AttributeValue::S(connection_id.into()),
        )]);
        crate::dynamo::delete(&self.db, &self.table, key).await
    }

    pub async fn connection(
        &self,
        connection_id: &str,
    ) -> Result<Option<Connection>, BackendError> {
        crate::dynamo::get(&self.db, &self.table, "connection_id", connection_id).await
    }

    /// Every connection id in a room: a query on the room index, all pages.
    pub async fn room_connections(&self, room: &str) -> Result<Vec<String>, BackendError> {
        let mut ids = Vec::new();
        self.each_in_room(ROOM_INDEX, room, &[], |item| {
            if let Some(AttributeValue::S(id)) = item.get("connection_id") {
                ids.push(id.clone());
            }
            true
        })
        .await?;
        Ok(ids)
    }

    /// Who is in a room: a query on the members index (all pages, stopping once more than
    /// `max` names are known), folded by name.
    pub async fn room_members(&self, room: &str, max: usize) -> Result<Members, BackendError> {
        let mut connections = Vec::new();
        let mut names = std::collections::HashSet::new();
        self.each_in_room(MEMBERS_INDEX, room, &["user", "connected_at"], |item| {
            if let (Some(AttributeValue::S(user)), Some(AttributeValue::S(at))) =
                (item.get("user"), item.get("connected_at"))
            {
                names.insert(user.clone());
                connections.push((user.clone(), at.clone()));
            }
            names.len() <= max
        })
        .await?;
        Ok(members_of(room, connections, max))
    }

    /// Queries `index` for the room page by page (only the `projected` attributes when some are
    /// named), handing each item to `each`; a page whose items made `each` answer false is the
    /// last one read.
    async fn each_in_room(
        &self,
        index: &str,
        room: &str,
        projected: &[&str],
        mut each: impl FnMut(&HashMap<String, AttributeValue>) -> bool,
    ) -> Result<(), BackendError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let mut query = self
                .db
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#room = :room")
                .expression_attribute_names("#room", "room")
                .expression_attribute_values(":room", AttributeValue::S(room.into()))
                .set_exclusive_start_key(start);
            if !projected.is_empty() {
                let placeholders: Vec<String> =
                    (0..projected.len()).map(|i| format!("#p{i}")).collect();
                query = query.projection_expression(placeholders.join(", "));
                for (placeholder, name) in placeholders.iter().zip(projected) {
                    query = query.expression_attribute_names(placeholder, *name);
                }
            }
            let out = query
                .send()
                .await
                .map_err(|e| classify_sdk_error("dynamodb", &e))?;
            let mut more = true;
            for item in out.items.unwrap_or_default() {
                more &= each(&item);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && more => start = Some(key),
                _ => return Ok(()),
            }
        }
    }
}

/// One person in a room (`GET /rooms/{room}/members`): a display name and how many sockets it
/// has open there (two tabs are one person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user: String,
    pub connections: usize,
    /// When the earliest of those sockets connected.
    pub since: String,
}

/// The answer to `GET /rooms/{room}/members`: members in the order they arrived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Members {
    pub room: String,
    pub members: Vec<Member>,
    /// More than the limit of people are in the room; only that many are listed.
    pub truncated: bool,
}

/// Folds connection records (`user`, `connected_at`) into one [`Member`] per name.
pub fn members_of(
    room: &str,
    connections: impl IntoIterator<Item = (String, String)>,
    max: usize,
) -> Members {
    let mut by_name: HashMap<String, Member> = HashMap::new();
    for (user, connected_at) in connections {
        let member = by_name.entry(user.clone()).or_insert_with(|| Member {
            user,
            connections: 0,
            since: connected_at.clone(),
        });
        member.connections += 1;
        if connected_at < member.since {
            member.since = connected_at;
        }
    }
    let mut members: Vec<Member> = by_name.into_values().collect();
    members.sort_by(|a, b| a.since.cmp(&b.since).then_with(|| a.user.cmp(&b.user)));
    let truncated = members.len() > max;
    members.truncate(max);
    Members {
        room: room.to_string(),
        members,
        truncated,
    }
}

/// The messages table: each room's history.
#[derive(Debug, Clone)]
pub struct Messages {
    db: DynamoDb,
    table: String,
}

impl Messages {
    pub fn new(db: DynamoDb, table: impl Into<String>) -> Self {
        Self {
            db,
            table: table.into(),
        }
    }

    /// From `CHAT_MESSAGES_TABLE` (set by template.yaml).
    pub fn from_env(db: DynamoDb, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self::new(db, config::required(env, "CHAT_MESSAGES_TABLE")?))
    }

    pub async fn save(&self, room: &str, user: &str, text: &str) -> Result<Message, BackendError> {
        let sent_at = timestamp::now();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let message = Message {
            id: id.clone(),
            room: room.into(),
            user: user.into(),
            text: text.into(),
            sent_at: sent_at.clone(),
        };
        let stored = StoredMessage {
            message,
            sort_key: format!("{sent_at}#{id}"),
        };
        // The sort key holds a fresh id: only our own lost-answer attempt can already hold it.
        if !crate::dynamo::put_new(&self.db, &self.table, &stored, &["room", "sort_key"]).await? {
            return Err(BackendError::failed("dynamodb", "message key collision"));
        }
        Ok(stored.message)
    }

    /// A page of a room's history, newest first; `before` is the previous page's cursor.
    pub async fn history(
        &self,
        room: &str,
        limit: usize,
        before: Option<&str>,
    ) -> Result<Page<Message>, ApiError> {
        let page = crate::dynamo::NewestFirst {
            table: &self.table,
            index: None,
            partition: ("room", room),
            key: &["room", "sort_key"],
            scope: format!("chat/{room}"),
        }
        .page(&self.db, limit, before)
        .await?;
        let items = page
            .items
            .into_iter()
            .map(|i| serde_dynamo::from_item::<_, StoredMessage>(i).map(|s| s.message))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::from(BackendError::failed("dynamodb", e)))?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }
}

/// Storing a message and pushing it to its room: the one code path for REST and socket posts.
#[derive(Debug, Clone)]
pub struct ChatService {
    pub connections: Connections,
    pub messages: Messages,
    management: aws_sdk_apigatewaymanagement::Client,
    concurrency: usize,
}

impl ChatService {
    pub fn new(
        connections: Connections,
        messages: Messages,
        management: aws_sdk_apigatewaymanagement::Client,
        concurrency: usize,
    ) -> Self {
        Self {
            connections,
            messages,
            management,
            concurrency,
        }
    }

    /// Stores, then fans out. Once stored the post succeeds: send errors are counted, stale
    /// connections (410) are deleted, and nothing else fails the request.
    pub async fn post(
        &self,
        room: &str,
        user: &str,
        text: &str,
    ) -> Result<PostOutcome, BackendError> {
        let message = self.messages.save(room, user, text).await?;
        let connections = match self.connections.room_connections(room).await {
            Ok(ids) => ids,
            Err(err) => {
                tracing::error!(error = %err, "listing room connections failed; message stored but not pushed");
                return Ok(PostOutcome {
                    message,
                    delivered: 0,
                    pruned: 0,
                    failed: 0,
                });
            }
        };
        let report = broadcast(
            &self.management,
            connections,
            &message_frame(&message),
            self.concurrency,
        )
        .await;
        let mut pruned = 0;
        for id in &report.gone {
            match self.connections.remove_connection(id).await {
                Ok(()) => pruned += 1,
                Err(err) => {
                    tracing::warn!(connection_id = %id, error = %err, "could not prune stale connection")
                }
            }
        }
        let outcome = PostOutcome {
            message,
            delivered: report.delivered,
            pruned,
            failed: report.failed + report.gone.len() - pruned,
        };
        metrics::counter!(metric::FANOUT_DELIVERED).increment(outcome.delivered as u64);
        metrics::counter!(metric::FANOUT_PRUNED).increment(outcome.pruned as u64);
        metrics::counter!(metric::FANOUT_FAILED).increment(outcome.failed as u64);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_fold_connections_by_name_in_arrival_order() {
        let at = |s: &str| format!("2026-12-02T10:00:{s}Z");
        let members = members_of(
            "lobby",
            [
                ("김민수".to_string(), at("05")),
                ("Zoë 🎉".to_string(), at("01")),
                ("김민수".to_string(), at("02")),
                ("ann".to_string(), at("09")),
            ],
            10,
        );
        let summary: Vec<(&str, usize, &str)> = members
            .members
            .iter()
            .map(|m| (m.user.as_str(), m.connections, &m.since[17..19]))
            .collect();
        assert_eq!(
            summary,
            [("Zoë 🎉", 1, "01"), ("김민수", 2, "02"), ("ann", 1, "09")]
        );
        assert!(!members.truncated);
        let capped = members_of("lobby", [("a".into(), at("01")), ("b".into(), at("02"))], 1);
        assert_eq!(capped.members.len(), 1);
        assert!(capped.truncated);
    }

    #[test]
    fn rooms_and_users() {
        assert_eq!(room("general-1_a").unwrap(), "general-1_a");
        assert_eq!(room("서울 모임 ☕").unwrap(), "서울 모임 ☕");
        assert_eq!(user("Zoë").unwrap(), "Zoë");
        assert_eq!(
            user("a/b").unwrap(),
            "a/b",
            "a display name may have a slash"
        );
        for bad in ["", " lobby", "a/b", "a\\b", "x\u{202E}y", &"r".repeat(65)] {
            assert!(room(bad).is_err(), "{bad}");
        }
        assert!(room(&"r".repeat(64)).is_ok());
        assert!(user(&"u".repeat(33)).is_err());
    }

    fn person(name: &str) -> Person {
        Person::from_claims(&serde_json::json!({"sub": "u1", "name": name})).unwrap()
    }

    #[test]
    fn post_requests() {
        let post = |user: Option<&str>, text: &str| PostMessageRequest {
            user: user.map(str::to_string),
            text: text.into(),
        };
        let ann = person("ann");
        // Left out is "my own name"; sent as null is not a name (the contract forbids it).
        let null = r#"{"user": null, "text": "x"}"#;
        assert!(serde_json::from_str::<PostMessageRequest>(null).is_err());
        let null = r#"{"user": null}"#;
        assert!(serde_json::from_str::<crate::tickets::TicketRequest>(null).is_err());
        let ok = post(Some("ann"), "  hi  ").validate(&ann).unwrap();
        assert_eq!(ok, ("ann".to_string(), "hi".to_string()));
        assert_eq!(post(None, "hi").validate(&ann).unwrap().0, "ann");
        assert!(post(Some("ann"), "").validate(&ann).is_err());
        assert!(
            post(Some("ann"), &"x".repeat(TEXT_MAX + 1))
                .validate(&ann)
                .is_err()
        );
        assert_eq!(
            post(Some(" ann"), "x")
                .validate(&ann)
                .unwrap_err()
                .status
                .as_u16(),
            400
        );
        assert_eq!(
            post(Some("bob"), "x")
                .validate(&ann)
                .unwrap_err()
                .status
                .as_u16(),
            403,
            "nobody speaks under another's name"
        );
    }

    #[test]
    fn a_display_name_chat_cannot_show_is_a_clear_400() {
        let long = person(&"u".repeat(33));
        let refused = own_name(&long, None).unwrap_err();
        assert_eq!(refused.status.as_u16(), 400);
        assert!(
            refused.message.starts_with("your display name"),
            "{refused}"
        );
        assert_eq!(own_name(&person("Zoë 🎉"), None).unwrap(), "Zoë 🎉");
    }
}
