//! `presigner`: upload tickets and stable thumbnail links.
//!
//! - `POST /uploads` {filename, content_type, size} -> a presigned, upload-only PUT for a key we
//!   choose; content type and length are signed, so the upload must match what was asked for.
//! - `GET /thumbnails/{id}` -> 302 to a freshly presigned GET. This is the link the SNS notice
//!   carries: a presigned URL in a message would die with the signer's temporary credentials.
//!
//! Presigned URLs carry signatures: they are returned, never logged.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::config::{self, ConfigError, EnvSource};
use shared::error::{BackendError, classify_sdk_error};
use shared::photos::{self, UploadRequest, UploadTicket};
use shared::rest::{self, Responder};

#[derive(Debug, Clone)]
pub struct App {
    s3: aws_sdk_s3::Client,
    uploads_bucket: String,
    thumbnails_bucket: String,
    max_upload_bytes: u64,
    expiry: Duration,
    responder: Responder,
}

impl App {
    /// Reads `UPLOAD_BUCKET`, `THUMBNAIL_BUCKET`, and optionally `MAX_UPLOAD_BYTES` (20 MiB),
    /// `PRESIGN_EXPIRY_SECONDS` (300) and `CORS_ALLOW_ORIGIN`.
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let expiry: u64 = config::parsed_or(
            env,
            "PRESIGN_EXPIRY_SECONDS",
            photos::DEFAULT_PRESIGN_SECONDS,
        )?;
        if !(1..=604_800).contains(&expiry) {
            return Err(ConfigError::Invalid {
                key: "PRESIGN_EXPIRY_SECONDS".into(),
                reason: "must be 1 to 604800".into(),
            });
        }
        Ok(Self {
            s3: aws_sdk_s3::Client::new(sdk),
            uploads_bucket: config::required(env, "UPLOAD_BUCKET")?,
            thumbnails_bucket: config::required(env, "THUMBNAIL_BUCKET")?,
            max_upload_bytes: config::parsed_or(
                env,
                "MAX_UPLOAD_BYTES",
                photos::DEFAULT_MAX_UPLOAD_BYTES,
            )?,
            expiry: Duration::from_secs(expiry),
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
        match segments.as_slice() {
            ["uploads"] if method == Method::POST => self.upload_ticket(req).await,
            ["uploads"] => Err(ApiError::method_not_allowed("POST, OPTIONS")),
            ["thumbnails", id] if method == Method::GET => self.thumbnail_redirect(id).await,
            ["thumbnails", _] => Err(ApiError::method_not_allowed("GET, OPTIONS")),
            _ => Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        }
    }

    fn presigning(&self) -> Result<PresigningConfig, ApiError> {
        PresigningConfig::expires_in(self.expiry)
            .map_err(|e| ApiError::from(BackendError::failed("s3", e)))
    }

    async fn upload_ticket(&self, req: &Request) -> Result<Response<Body>, ApiError> {
        let plan = rest::parse_json::<UploadRequest>(req)?.validate(self.max_upload_bytes)?;
        let size =
            i64::try_from(plan.size).map_err(|_| ApiError::validation("size is too large"))?;
        // Signed into the upload: the thumbnailer reads it back from the object's metadata.
        let correlation = shared::correlation::of_request(req);
        let presigned = self
            .s3
            .put_object()
            .bucket(&self.uploads_bucket)
            .key(&plan.key)
            .content_type(&plan.content_type)
            .content_length(size)
            .metadata(shared::correlation::METADATA, &correlation)
            .presigned(self.presigning()?)
            .await
            .map_err(|e| ApiError::from(classify_sdk_error("s3", &e)))?;
        let mut headers = photos::signed_headers(presigned.uri(), presigned.headers());
        headers.insert("content-type".into(), plan.content_type.clone());
        headers.insert("content-length".into(), plan.size.to_string());
        let expires_at = shared::timestamp::format((SystemTime::now() + self.expiry).into());
        tracing::info!(key = %plan.key, size = plan.size, correlation_id = %correlation, "upload ticket issued");
        let ticket = UploadTicket {
            upload_url: presigned.uri().to_string(),
            method: "PUT",
            headers,
            key: plan.key,
            expires_at,
            correlation_id: correlation.clone(),
        };
        Ok(shared::correlation::on_response(
            rest::json(StatusCode::CREATED, &ticket),
            &correlation,
        ))
    }

    async fn thumbnail_redirect(&self, raw_id: &str) -> Result<Response<Body>, ApiError> {
        let id = photos::parse_thumbnail_id(raw_id)?;
        let key = photos::thumbnail_key(&id);
        let head = self
            .s3
            .head_object()
            .bucket(&self.thumbnails_bucket)
            .key(&key)
            .send()
            .await;
        match head {
            Ok(_) => {}
            Err(err)
                if err.as_service_error().is_some_and(|e| e.is_not_found())
                    || err
                        .raw_response()
                        .is_some_and(|r| r.status().as_u16() == 404) =>
            {
                return Err(self.why_no_thumbnail(&id).await?);
            }
            Err(err) => return Err(classify_sdk_error("s3", &err).into()),
        }
        let presigned = self
            .s3
            .get_object()
            .bucket(&self.thumbnails_bucket)
            .key(&key)
            .presigned(self.presigning()?)
            .await
            .map_err(|e| ApiError::from(classify_sdk_error("s3", &e)))?;
        Ok(Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, presigned.uri())
            .header(header::CACHE_CONTROL, "no-store")
            .body(Body::Empty)
            .expect("static response parts are valid"))
    }

    /// No thumbnail: 422 with the recorded reason once the upload failed for good (the
    /// thumbnailer's failure marker), else 404 while it is pending or unknown.
    async fn why_no_thumbnail(&self, id: &str) -> Result<ApiError, ApiError> {
        let marker = self
            .s3
            .get_object()
            .bucket(&self.thumbnails_bucket)
            .key(photos::failure_marker_key(id))
            .send()
            .await;
        let output = match marker {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(ApiError::not_found("no thumbnail with that id (yet)"));
            }
            Err(err) => return Err(classify_sdk_error("s3", &err).into()),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| ApiError::from(BackendError::failed("s3", e)))?
            .into_bytes();
        let marker: photos::FailureMarker = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::from(BackendError::failed("s3", e)))?;
        Ok(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "thumbnail_failed",
            marker.public_message(),
        ))
    }
}
