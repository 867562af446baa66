//! `presigner`: the photos API, each person's own album.
//!
//! - `POST /uploads` {filename, content_type, size} -> files a pending photo in the caller's
//!   album and answers a presigned, upload-only PUT for a key we choose (under the caller's
//!   `sub`); content type and length are signed, so the upload must match what was asked for.
//! - `GET /photos` -> the caller's album, newest first, paged, each photo with its state
//!   (pending; ready with a presigned `thumbnail_url`; failed with the reason).
//! - `GET /photos/{id}` -> one of them; `DELETE /photos/{id}` -> the original, its thumbnail
//!   (or failure marker) and the row all gone.
//! - `GET /thumbnails/{id}` -> 302 to a freshly presigned GET of the caller's thumbnail. This is
//!   the link the SNS notice carries: a presigned URL in a message would die with the signer's
//!   temporary credentials.
//!
//! Someone else's photo answers exactly as a missing one (404). Presigned URLs carry
//! signatures: they are returned, never logged.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use http::{Method, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::ApiError;
use shared::config::{self, ConfigError, EnvSource};
use shared::cursor::Page;
use shared::error::{BackendError, classify_sdk_error};
use shared::person::Person;
use shared::photos::album::{Albums, Photo, PhotoState, PhotoView};
use shared::photos::{self, PhotoRef, UploadRequest, UploadTicket};
use shared::rest::{self, Responder};

#[derive(Debug, Clone)]
pub struct App {
    s3: aws_sdk_s3::Client,
    albums: Albums,
    uploads_bucket: String,
    thumbnails_bucket: String,
    max_upload_bytes: u64,
    expiry: Duration,
    responder: Responder,
}

impl App {
    /// Reads `UPLOAD_BUCKET`, `THUMBNAIL_BUCKET`, `PHOTOS_TABLE`, and optionally `MAX_UPLOAD_BYTES` (20 MiB),
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
            albums: Albums::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required(env, "PHOTOS_TABLE")?,
            ),
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
        let person = Person::of(req)?;
        let (method, segments) = (route.method.clone(), route.segments());
        match segments.as_slice() {
            ["uploads"] if method == Method::POST => self.upload_ticket(req, &person).await,
            ["uploads"] => Err(ApiError::method_not_allowed("POST, OPTIONS")),
            ["photos"] if method == Method::GET => self.album(req, &person).await,
            ["photos"] => Err(ApiError::method_not_allowed("GET, OPTIONS")),
            ["photos", id] if method == Method::GET => {
                let photo = self.owned(&person, id).await?;
                let url = self.thumbnail_url(&photo).await?;
                Ok(rest::json(StatusCode::OK, &photo.view(url)))
            }
            ["photos", id] if method == Method::DELETE => self.delete(&person, id).await,
            ["photos", _] => Err(ApiError::method_not_allowed("GET, DELETE, OPTIONS")),
            ["thumbnails", id] if method == Method::GET => {
                self.thumbnail_redirect(&person, id).await
            }
            ["thumbnails", _] => Err(ApiError::method_not_allowed("GET, OPTIONS")),
            _ => Err(ApiError::route_not_found(method.as_str(), req.uri().path())),
        }
    }

    fn presigning(&self) -> Result<PresigningConfig, ApiError> {
        PresigningConfig::expires_in(self.expiry)
            .map_err(|e| ApiError::from(BackendError::failed("s3", e)))
    }

    async fn upload_ticket(
        &self,
        req: &Request,
        person: &Person,
    ) -> Result<Response<Body>, ApiError> {
        let plan =
            rest::parse_json::<UploadRequest>(req)?.validate(&person.sub, self.max_upload_bytes)?;
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
        // Filed before the ticket is answered: the thumbnailer settles only photos it finds.
        self.albums.add(&Photo::pending(&plan)).await?;
        let expires_at = shared::timestamp::format((SystemTime::now() + self.expiry).into());
        tracing::info!(key = %plan.key, size = plan.size, correlation_id = %correlation, "upload ticket issued");
        let ticket = UploadTicket {
            upload_url: presigned.uri().to_string(),
            method: "PUT",
            headers,
            key: plan.key,
            id: plan.photo.id,
            expires_at,
            correlation_id: correlation.clone(),
        };
        Ok(shared::correlation::on_response(
            rest::json(StatusCode::CREATED, &ticket),
            &correlation,
        ))
    }

    /// The caller's photo `raw_id`, or 404 (also for someone else's).
    async fn owned(&self, person: &Person, raw_id: &str) -> Result<Photo, ApiError> {
        let photo = PhotoRef {
            owner: person.sub.clone(),
            id: photos::parse_photo_id(raw_id)?,
        };
        self.albums
            .get(&photo)
            .await?
            .ok_or_else(|| ApiError::not_found("no photo with that id"))
    }

    /// A presigned GET of a ready photo's thumbnail.
    async fn thumbnail_url(&self, photo: &Photo) -> Result<Option<String>, ApiError> {
        if photo.state != PhotoState::Ready {
            return Ok(None);
        }
        let presigned = self
            .s3
            .get_object()
            .bucket(&self.thumbnails_bucket)
            .key(photo.reference().thumbnail_key())
            .presigned(self.presigning()?)
            .await
            .map_err(|e| ApiError::from(classify_sdk_error("s3", &e)))?;
        Ok(Some(presigned.uri().to_string()))
    }

    async fn album(&self, req: &Request, person: &Person) -> Result<Response<Body>, ApiError> {
        let (limit, cursor) = rest::page_query(req)?;
        let page = self
            .albums
            .list(&person.sub, limit.as_deref(), cursor.as_deref())
            .await?;
        let mut items = Vec::with_capacity(page.items.len());
        for photo in page.items {
            let url = self.thumbnail_url(&photo).await?;
            items.push(photo.view(url));
        }
        let page: Page<PhotoView> = Page {
            items,
            next_cursor: page.next_cursor,
        };
        Ok(rest::json(StatusCode::OK, &page))
    }

    /// The original, what the thumbnailer made of it, then the row: a failure part-way leaves
    /// the row, so the person can simply delete again.
    async fn delete(&self, person: &Person, raw_id: &str) -> Result<Response<Body>, ApiError> {
        let photo = self.owned(person, raw_id).await?;
        let reference = photo.reference();
        let (thumbnail, marker) = (reference.thumbnail_key(), reference.failure_marker_key());
        photos::delete_objects(
            &self.s3,
            &[
                (&self.uploads_bucket, &photo.key),
                (&self.thumbnails_bucket, &thumbnail),
                (&self.thumbnails_bucket, &marker),
            ],
        )
        .await?;
        self.albums.remove(&reference).await?;
        tracing::info!(photo = %reference.id, "photo deleted");
        Ok(rest::no_content())
    }

    /// The caller's thumbnail: 302 once ready; 422 with the reason once it failed for good;
    /// 404 while pending, or for a photo that is not theirs.
    async fn thumbnail_redirect(
        &self,
        person: &Person,
        raw_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let photo = self.owned(person, raw_id).await?;
        match photo.state {
            PhotoState::Pending => Err(ApiError::not_found("no thumbnail with that id (yet)")),
            PhotoState::Failed => Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "thumbnail_failed",
                photos::failure_message(photo.reason.as_deref()),
            )),
            PhotoState::Ready => {
                let url = self.thumbnail_url(&photo).await?.unwrap_or_default();
                Ok(Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, url)
                    .header(header::CACHE_CONTROL, "no-store")
                    .body(Body::Empty)
                    .expect("static response parts are valid"))
            }
        }
    }
}
