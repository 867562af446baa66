//! `chat-connect`: the WebSocket API's `$connect` route. `?room=<room>&user=<name>` are
//! validated; a 4xx answer makes API Gateway refuse the connection.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::chat::{self, Connections};
use shared::config::{ConfigError, EnvSource};
use shared::rest::{self, Responder};

#[derive(Debug, Clone)]
pub struct App {
    connections: Connections,
    responder: Responder,
}

impl App {
    /// Reads `CHAT_CONNECTIONS_TABLE`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        Ok(Self {
            connections: Connections::from_env(aws_sdk_dynamodb::Client::new(sdk), env)?,
            responder: Responder::default(),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder.finish(self.connect(&req).await)
    }

    async fn connect(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let connection_id = rest::websocket_connection_id(req)
            .ok_or_else(|| ApiError::validation("not a WebSocket connect event"))?;
        let room = chat::room(&rest::query_param(req, "room")?.unwrap_or_default())?;
        let user = chat::user(&rest::query_param(req, "user")?.unwrap_or_default())?;
        let connection = self
            .connections
            .add_connection(&connection_id, &room, &user)
            .await?;
        tracing::info!(%connection_id, %room, %user, "connected");
        Ok(rest::json(
            StatusCode::OK,
            &serde_json::json!({"room": connection.room, "user": connection.user}),
        ))
    }
}
