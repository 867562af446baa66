//! `appointments-api`: book appointments and manage contact preferences.
//!
//! `POST /appointments`, `GET /appointments/{id}`, `PUT /contacts/{email}`,
//! `GET /contacts/{email}`. New appointments reach the queue through the table's stream and the
//! pipe (template.yaml `AppointmentPipe`), not from here.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::appointments::{AppointmentsRepo, ContactPreferenceRequest, CreateAppointmentRequest};
use shared::config::{self, ConfigError, EnvSource};
use shared::rest::{self, Responder};
use shared::validate;

#[derive(Debug, Clone)]
pub struct App {
    repo: AppointmentsRepo,
    responder: Responder,
}

impl App {
    /// Reads `APPOINTMENTS_TABLE`, `CONTACTS_TABLE` and optionally `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let repo = AppointmentsRepo::new(
            aws_sdk_dynamodb::Client::new(sdk),
            Some(config::required(env, "APPOINTMENTS_TABLE")?),
            config::required(env, "CONTACTS_TABLE")?,
        );
        Ok(Self {
            repo,
            responder: Responder::from_env(env),
        })
    }

    pub async fn handle(&self, req: Request) -> Response<Body> {
        self.responder
            .serve(&req, async |route| self.route(&req, route).await)
            .await
    }

    async fn route(&self, req: &Request, route: &rest::Route) -> Result<Response<Body>, ApiError> {
        let (method, segments) = (route.method.clone(), route.segments());
        match (segments.as_slice(), &method) {
            (["appointments"], &Method::POST) => {
                let appointment = rest::parse_json::<CreateAppointmentRequest>(req)?
                    .validate(time::OffsetDateTime::now_utc())?;
                self.repo.create(&appointment).await?;
                tracing::info!(id = %appointment.id, "appointment booked");
                Ok(rest::json(StatusCode::CREATED, &appointment))
            }
            (["appointments"], _) => Err(ApiError::method_not_allowed("POST, OPTIONS")),
            (["appointments", id], &Method::GET) => {
                let id = validate::uuid("id", id)?;
                let appointment = self
                    .repo
                    .get(&id)
                    .await?
                    .ok_or_else(|| ApiError::not_found("appointment not found"))?;
                Ok(rest::json(StatusCode::OK, &appointment))
            }
            (["appointments", _], _) => Err(ApiError::method_not_allowed("GET, OPTIONS")),
            (["contacts", email], &Method::PUT) => {
                let email = validate::email("email", email)?;
                let preference = rest::parse_json::<ContactPreferenceRequest>(req)?;
                Ok(rest::json(
                    StatusCode::OK,
                    &self
                        .repo
                        .put_contact(&email, preference.preferred_method)
                        .await?,
                ))
            }
            (["contacts", email], &Method::GET) => {
                let email = validate::email("email", email)?;
                let contact =
                    self.repo.contact(&email).await?.ok_or_else(|| {
                        ApiError::not_found("no contact preference for that email")
                    })?;
                Ok(rest::json(StatusCode::OK, &contact))
            }
            (["contacts", _], _) => Err(ApiError::method_not_allowed("GET, PUT, OPTIONS")),
            _ => Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        }
    }
}
