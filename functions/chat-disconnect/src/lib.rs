//! `chat-disconnect`: the WebSocket API's `$disconnect` route. Forgets the connection; an unknown
//! id (already pruned, or expired by TTL) is fine.

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::chat::Connections;
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
        self.responder.finish(self.disconnect(&req).await)
    }

    async fn disconnect(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let connection_id = rest::websocket_connection_id(req)
            .ok_or_else(|| ApiError::validation("not a WebSocket disconnect event"))?;
        self.connections.remove_connection(&connection_id).await?;
        tracing::info!(%connection_id, "disconnected");
        Ok(rest::json(
            StatusCode::OK,
            &serde_json::json!({"disconnected": true}),
        ))
    }
}
