//! `items-api`: REST CRUD for items behind API Gateway (proxy integration).
//!
//! Routes (template.yaml `ItemsApiFunction` events):
//! `POST /items`, `GET /items`, `GET|PUT|DELETE /items/{id}`. Everything else is a JSON 404/405.
//! Each route works on the signed-in person's items only ([`shared::person`]).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::config::{self, ConfigError, EnvSource};
use shared::items::{CreateItemRequest, ItemsRepo, ListParams, ListRequest, UpdateItemRequest};
use shared::person::Person;
use shared::rest::{self, Responder};
use shared::telemetry::metric;
use shared::validate;

/// Everything the handler needs, built once per process.
#[derive(Debug, Clone)]
pub struct App {
    items: ItemsRepo,
    responder: Responder,
}

impl App {
    pub fn new(items: ItemsRepo, responder: Responder) -> Self {
        Self { items, responder }
    }

    /// Reads `ITEMS_TABLE` and `CORS_ALLOW_ORIGIN` (set by template.yaml).
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let table = config::required(env, "ITEMS_TABLE")?;
        Ok(Self::new(
            ItemsRepo::new(aws_sdk_dynamodb::Client::new(sdk), table),
            Responder::from_env(env),
        ))
    }

    /// Never fails: every outcome, including bad input, is an HTTP response.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder
            .serve(&req, async |route| self.route(&req, route).await)
            .await
    }

    async fn route(&self, req: &Request, route: &rest::Route) -> Result<Response<Body>, ApiError> {
        let (method, segments) = (route.method.clone(), route.segments());
        let owner = &Person::of(req)?.sub;
        match segments.as_slice() {
            ["items"] => match method {
                Method::POST => self.create(req, owner).await,
                Method::GET => self.list(req, owner).await,
                _ => Err(ApiError::method_not_allowed("GET, POST, OPTIONS")),
            },
            ["items", id] => {
                let id = validate::uuid("id", id)?;
                match method {
                    Method::GET => {
                        let item = self.items.get(owner, &id).await?;
                        Ok(rest::json(StatusCode::OK, &item))
                    }
                    Method::PUT => self.update(req, owner, &id).await,
                    Method::DELETE => {
                        self.items.delete(owner, &id).await?;
                        metrics::counter!(metric::ITEMS_DELETED).increment(1);
                        Ok(rest::no_content())
                    }
                    _ => Err(ApiError::method_not_allowed("GET, PUT, DELETE, OPTIONS")),
                }
            }
            _ => Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        }
    }

    async fn create(&self, req: &Request, owner: &str) -> Result<Response<Body>, ApiError> {
        let key = rest::header_str(req, "idempotency-key")?
            .map(shared::items::idempotency_key)
            .transpose()?;
        let new = rest::parse_json::<CreateItemRequest>(req)?.validate()?;
        let correlation = shared::correlation::of_request(req);
        let created = self
            .items
            .create(owner, new, key.as_deref(), &correlation)
            .await?;
        tracing::info!(item_id = %created.item.id, correlation_id = %correlation, replayed = created.replayed, "item created");
        let mut response = rest::json(StatusCode::CREATED, &created.item);
        if !created.replayed {
            metrics::counter!(metric::ITEMS_CREATED).increment(1);
        }
        if created.replayed {
            response.headers_mut().insert(
                "idempotent-replayed",
                http::HeaderValue::from_static("true"),
            );
        }
        Ok(shared::correlation::on_response(response, &correlation))
    }

    async fn update(
        &self,
        req: &Request,
        owner: &str,
        id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let patch = rest::parse_json::<UpdateItemRequest>(req)?.validate()?;
        let correlation = shared::correlation::of_request(req);
        let updated = self.items.update(owner, id, patch, &correlation).await?;
        metrics::counter!(metric::ITEMS_UPDATED).increment(1);
        Ok(shared::correlation::on_response(
            rest::json(StatusCode::OK, &updated),
            &correlation,
        ))
    }

    async fn list(&self, req: &Request, owner: &str) -> Result<Response<Body>, ApiError> {
        rest::reject_unknown_query_params(req, &ListParams::NAMES)?;
        let params = ListParams {
            limit: rest::query_param(req, "limit")?,
            cursor: rest::query_param(req, "cursor")?,
            status: rest::query_param(req, "status")?,
            email: rest::query_param(req, "email")?,
            from: rest::query_param(req, "from")?,
            to: rest::query_param(req, "to")?,
        };
        let page = self
            .items
            .list(&ListRequest::parse(&params, owner)?)
            .await?;
        Ok(rest::json(StatusCode::OK, &page))
    }
}
