//! `chat-get`: `GET /rooms/{room}/messages?limit=&before=` -> a page of the room's history,
//! newest first; `before` is the previous page's `next_cursor`.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::chat::{self, Messages};
use shared::config::{ConfigError, EnvSource};
use shared::rest::{self, Responder};

#[derive(Debug, Clone)]
pub struct App {
    messages: Messages,
    responder: Responder,
}

impl App {
    /// Reads `CHAT_MESSAGES_TABLE` and optionally `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let messages = Messages::from_env(aws_sdk_dynamodb::Client::new(sdk), env)?;
        Ok(Self {
            messages,
            responder: Responder::from_env(env),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder.finish(self.history(&req).await)
    }

    async fn history(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let Some(route) = rest::Route::of(req) else {
            return Ok(rest::preflight());
        };
        let (method, segments) = (route.method.clone(), route.segments());
        let ["rooms", room, "messages"] = segments.as_slice() else {
            return Err(ApiError::route_not_found(method.as_str(), req.uri().path()));
        };
        if method != Method::GET {
            return Err(ApiError::method_not_allowed("GET, OPTIONS"));
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
