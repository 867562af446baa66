//! `chat-connect`: who may open a chat socket, and the socket's record.
//!
//! - REST `POST /rooms/{room}/tickets` {user?} (signed in) -> 201 {ticket, room, user, expiresAt}:
//!   a short-lived signed ticket for one room under the caller's own display name
//!   ([`shared::tickets`], [`shared::chat::own_name`]);
//! - WebSocket `$connect?ticket=<ticket>`: a valid ticket's room and user become the connection's
//!   record; without one the answer is 401, and API Gateway refuses the handshake.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::chat::{self, Connections};
use shared::config::{self, ConfigError, EnvSource};
use shared::person::Person;
use shared::rest::{self, Responder};
use shared::tickets::{IssuedTicket, TicketKey, TicketRequest};

#[derive(Debug, Clone)]
pub struct App {
    connections: Connections,
    tickets: TicketKey,
    responder: Responder,
}

impl App {
    /// Reads `CHAT_CONNECTIONS_TABLE`, `CHAT_TICKET_SECRET_ARN`, and optionally
    /// `CHAT_TICKET_TTL_SECONDS` (60) and `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let ttl = config::parsed_or(
            env,
            "CHAT_TICKET_TTL_SECONDS",
            shared::tickets::DEFAULT_TTL.as_secs(),
        )?;
        Ok(Self {
            connections: Connections::from_env(aws_sdk_dynamodb::Client::new(sdk), env)?,
            tickets: TicketKey::new(
                aws_sdk_secretsmanager::Client::new(sdk),
                config::required(env, "CHAT_TICKET_SECRET_ARN")?,
                std::time::Duration::from_secs(ttl),
            ),
            responder: Responder::from_env(env),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder
            .finish(match rest::websocket_connection_id(&req) {
                Some(connection_id) => self.connect(&req, &connection_id).await,
                None => self.issue(&req).await,
            })
    }

    async fn issue(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let Some(route) = rest::Route::of(req) else {
            return Ok(rest::preflight());
        };
        let (method, segments) = (route.method.clone(), route.segments());
        let ["rooms", room, "tickets"] = segments.as_slice() else {
            return Err(ApiError::route_not_found(method.as_str(), req.uri().path()));
        };
        if method != Method::POST {
            return Err(ApiError::method_not_allowed("POST, OPTIONS"));
        }
        let room = chat::room(room)?;
        let holder = Person::of(req)?;
        let user = rest::parse_json::<TicketRequest>(req)?.validate(&holder)?;
        let signer = self.tickets.signer().await?;
        let now = time::OffsetDateTime::now_utc();
        let (ticket, claims) = signer.issue(&room, &user, now.unix_timestamp());
        let expires_at = time::OffsetDateTime::from_unix_timestamp(claims.exp)
            .map(shared::timestamp::format)
            .map_err(|_| ApiError::internal())?;
        Ok(rest::json(
            StatusCode::CREATED,
            &IssuedTicket {
                ticket,
                room: claims.room,
                user: claims.user,
                expires_at,
            },
        ))
    }

    async fn connect(
        &self,
        req: &Request,
        connection_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let ticket: Option<String> = rest::query_param(req, "ticket")?;
        let signer = self.tickets.signer().await?;
        let claims = signer.verify(
            ticket.as_deref(),
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )?;
        let connection = self
            .connections
            .add_connection(connection_id, &claims.room, &claims.user)
            .await?;
        tracing::info!(%connection_id, room = %claims.room, user = %claims.user, "connected");
        Ok(rest::json(
            StatusCode::OK,
            &serde_json::json!({"room": connection.room, "user": connection.user}),
        ))
    }
}
