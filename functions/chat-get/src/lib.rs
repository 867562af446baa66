//! `chat-get`: what a room holds, for reading.
//! - `GET /rooms/{room}/messages?limit=&before=` -> a page of the room's history, newest first;
//!   `before` is the previous page's `next_cursor`.
//! - `GET /rooms/{room}/members` -> who is connected to the room now, one entry per display
//!   name (the chat page's member list).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::chat::{self, Connections, Messages};
use shared::config::{ConfigError, EnvSource};
use shared::person::Person;
use shared::rest::{self, Responder};

#[derive(Debug, Clone)]
pub struct App {
    messages: Messages,
    connections: Connections,
    responder: Responder,
}

impl App {
    /// Reads `CHAT_MESSAGES_TABLE`, `CHAT_CONNECTIONS_TABLE` and optionally `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let db = aws_sdk_dynamodb::Client::new(sdk);
        Ok(Self {
            messages: Messages::from_env(db.clone(), env)?,
            connections: Connections::from_env(db, env)?,
            responder: Responder::from_env(env),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder
            .serve(&req, async |route| self.route(&req, route).await)
            .await
    }

    async fn route(&self, req: &Request, route: &rest::Route) -> Result<Response<Body>, ApiError> {
        // Rooms are shared: any signed-in person reads them, nobody unverified.
        Person::of(req)?;
        let (method, segments) = (route.method.clone(), route.segments());
        let (room, what) = match segments.as_slice() {
            ["rooms", room, what @ ("messages" | "members")] => (*room, *what),
            _ => return Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        };
        if method != Method::GET {
            return Err(ApiError::method_not_allowed("GET, OPTIONS"));
        }
        if what == "members" {
            rest::reject_unknown_query_params(req, &[])?;
            let members = self
                .connections
                .room_members(&chat::room(room)?, chat::MAX_MEMBERS)
                .await?;
            return Ok(rest::json(StatusCode::OK, &members));
        }
        rest::reject_unknown_query_params(req, &["limit", "before"])?;
        let room = chat::room(room)?;
        let limit = shared::validate::limit(
            rest::query_param(req, "limit")?.as_deref(),
            chat::DEFAULT_HISTORY_PAGE,
            chat::MAX_HISTORY_PAGE,
        )?;
        let page = self
            .messages
            .history(&room, limit, rest::query_param(req, "before")?.as_deref())
            .await?;
        Ok(rest::json(StatusCode::OK, &page))
    }
}
