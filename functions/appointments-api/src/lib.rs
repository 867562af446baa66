//! `appointments-api`: book appointments and manage contact preferences.
//!
//! `POST /appointments`, `GET /appointments[?all=true]`, `GET /appointments/{id}`,
//! `PUT /contacts/{email}`, `GET /contacts/{email}`, each for the signed-in person (the patient)
//! or the clinic's staff ([`shared::appointments`]). New appointments reach the queue through
//! the table's stream and the pipe (template.yaml `AppointmentPipe`), not from here.

use http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::appointments::{AppointmentsRepo, ContactPreferenceRequest, CreateAppointmentRequest};
use shared::config::{self, ConfigError, EnvSource};
use shared::person::Person;
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
        let person = Person::of(req)?;
        match (segments.as_slice(), &method) {
            (["appointments"], &Method::POST) => {
                let appointment = rest::parse_json::<CreateAppointmentRequest>(req)?
                    .validate(&person, time::OffsetDateTime::now_utc())?;
                self.repo.create(&appointment).await?;
                tracing::info!(id = %appointment.id, "appointment booked");
                Ok(rest::json(StatusCode::CREATED, &appointment))
            }
            (["appointments"], &Method::GET) => self.list(req, &person).await,
            (["appointments"], _) => Err(ApiError::method_not_allowed("GET, POST, OPTIONS")),
            (["appointments", id], &Method::GET) => {
                let id = validate::uuid("id", id)?;
                let appointment = (self.repo.get(&person, &id).await?)
                    .ok_or_else(|| ApiError::not_found("appointment not found"))?;
                Ok(rest::json(StatusCode::OK, &appointment))
            }
            (["appointments", _], _) => Err(ApiError::method_not_allowed("GET, OPTIONS")),
            (["contacts", email], &Method::PUT) => {
                let email = validate::email("email", email)?;
                if email != person.verified_email()? {
                    return Err(ApiError::forbidden(
                        "you set the contact preference of your own verified e-mail address only",
                    ));
                }
                let preference = rest::parse_json::<ContactPreferenceRequest>(req)?;
                let contact = self
                    .repo
                    .put_contact(&email, preference.preferred_method)
                    .await?;
                Ok(rest::json(StatusCode::OK, &contact))
            }
            (["contacts", email], &Method::GET) => {
                let email = validate::email("email", email)?;
                // Someone else's preference is the staff's to read; to anyone else it is missing.
                let readable = person.is_staff() || person.verified_email().ok() == Some(&email);
                let contact = match readable {
                    true => self.repo.contact(&email).await?,
                    false => None,
                };
                let contact = contact
                    .ok_or_else(|| ApiError::not_found("no contact preference for that email"))?;
                Ok(rest::json(StatusCode::OK, &contact))
            }
            (["contacts", _], _) => Err(ApiError::method_not_allowed("GET, PUT, OPTIONS")),
            _ => Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        }
    }

    /// `GET /appointments`: the caller's, or with `all=true` (staff) everyone's.
    async fn list(&self, req: &Request, person: &Person) -> Result<Response<Body>, ApiError> {
        rest::reject_unknown_query_params(req, &["limit", "cursor", "all"])?;
        let all = match rest::query_param(req, "all")?.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(ApiError::validation("all must be `true` or `false`")),
        };
        let limit = rest::query_param(req, "limit")?;
        let cursor = rest::query_param(req, "cursor")?;
        let page = (self.repo)
            .list(person, all, limit.as_deref(), cursor.as_deref())
            .await?;
        Ok(rest::json(StatusCode::OK, &page))
    }
}
