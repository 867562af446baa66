//! `chat-put`: stores a chat message and pushes it to every connection of the room.
//!
//! Two entry points, one code path ([`ChatService::post`]):
//! - REST `POST /rooms/{room}/messages` {user, text} -> 201 {message, delivered, pruned, failed};
//! - WebSocket route `sendmessage` {"action": "sendmessage", "text"} from a connected socket,
//!   posting as the room and user the connection joined with.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::chat::{self, ChatService, Connections, Messages, PostMessageRequest, SocketMessage};
use shared::config::{self, ConfigError, EnvSource};
use shared::person::Person;
use shared::rest::{self, Responder};

#[derive(Debug, Clone)]
pub struct App {
    chat: ChatService,
    responder: Responder,
}

impl App {
    /// Reads `CHAT_CONNECTIONS_TABLE`, `CHAT_MESSAGES_TABLE`, `CHAT_CALLBACK_URL` (the WebSocket
    /// stage's management endpoint) and optionally `FANOUT_CONCURRENCY` and `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let db = aws_sdk_dynamodb::Client::new(sdk);
        let chat = ChatService::new(
            Connections::from_env(db.clone(), env)?,
            Messages::from_env(db, env)?,
            chat::management_client(sdk, &config::required(env, "CHAT_CALLBACK_URL")?),
            config::parsed_or(env, "FANOUT_CONCURRENCY", chat::DEFAULT_FANOUT_CONCURRENCY)?,
        );
        Ok(Self {
            chat,
            responder: Responder::from_env(env),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder
            .finish(match rest::websocket_connection_id(&req) {
                Some(connection_id) => self.post_from_socket(&req, &connection_id).await,
                None => self.post_from_rest(&req).await,
            })
    }

    async fn post_from_rest(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let Some(route) = rest::Route::of(req) else {
            return Ok(rest::preflight());
        };
        let (method, segments) = (route.method.clone(), route.segments());
        let ["rooms", room, "messages"] = segments.as_slice() else {
            return Err(ApiError::route_not_found(method.as_str(), req.uri().path()));
        };
        if method != Method::POST {
            return Err(ApiError::method_not_allowed("POST, OPTIONS"));
        }
        let room = chat::room(room)?;
        let sender = Person::of(req)?;
        let (user, text) = rest::parse_json::<PostMessageRequest>(req)?.validate(&sender)?;
        let outcome = self.chat.post(&room, &user, &text).await?;
        Ok(rest::json(StatusCode::CREATED, &outcome))
    }

    async fn post_from_socket(
        &self,
        req: &Request,
        connection_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let message: SocketMessage = rest::parse_json_bytes(req.body().as_ref())?;
        if message.action != "sendmessage" {
            return Err(ApiError::validation("action must be `sendmessage`"));
        }
        let text = shared::validate::text("text", &message.text, 1, chat::TEXT_MAX)?;
        let connection = self
            .chat
            .connections
            .connection(connection_id)
            .await?
            .ok_or_else(|| ApiError::not_found("this connection has not joined a room"))?;
        let outcome = self
            .chat
            .post(&connection.room, &connection.user, &text)
            .await?;
        Ok(rest::json(StatusCode::OK, &outcome))
    }
}
