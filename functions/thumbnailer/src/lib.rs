//! `thumbnailer`: S3 upload notifications (through SQS) -> 200 px JPEG thumbnails + SNS notice.
//!
//! Per message: a transient failure (throttling, network, a dependency down) is reported as a
//! batch item failure, so SQS redelivers just that message (and after 3 receives moves it to the
//! DLQ). A permanent failure (not an image, truncated, too large) is recorded as a marker object
//! next to the thumbnails and the message is consumed: retrying cannot fix it. Either way the
//! photo's row in its owner's album is settled (ready or failed); a photo deleted meanwhile has
//! no row, and what was made for it is removed with its upload.

pub mod jpeg_dc;
pub mod lzw;
pub mod render;
pub mod webp;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_s3::primitives::ByteStream;
use render::{RenderOptions, Thumbnail};
use shared::config::{self, ConfigError, EnvSource};
use shared::error::{BackendError, classify_sdk_error};
use shared::photos::album::{Albums, Outcome};
use shared::photos::{
    self, CreatedObject, FailureMarker, PhotoRef, S3Notification, ThumbnailNotice,
};
use shared::telemetry::{label, metric};
use tracing::Instrument;

#[derive(Debug, Clone)]
pub struct Thumbnailer {
    s3: aws_sdk_s3::Client,
    sns: aws_sdk_sns::Client,
    albums: Albums,
    thumbnails_bucket: String,
    topic_arn: String,
    link_base: String,
    max_source_bytes: u64,
    options: RenderOptions,
}

/// An object being thumbnailed: whose photo it is, and the correlation id its upload ticket
/// signed into it.
struct Upload<'a> {
    object: &'a CreatedObject,
    photo: PhotoRef,
    correlation: Option<String>,
}

/// A failure worth retrying; everything else is handled (or recorded) in place.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Transient(#[from] BackendError);

impl Thumbnailer {
    /// Reads `THUMBNAIL_BUCKET`, `THUMBNAIL_TOPIC_ARN`, `THUMBNAIL_LINK_BASE`, `PHOTOS_TABLE`,
    /// and optionally
    /// `THUMBNAIL_WIDTH` (200) and `MAX_SOURCE_BYTES` (50 MiB).
    pub fn from_env(sdk: &aws_config::SdkConfig, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let options = RenderOptions {
            width: config::parsed_or(env, "THUMBNAIL_WIDTH", 200)?,
            ..RenderOptions::default()
        };
        Ok(Self {
            s3: aws_sdk_s3::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            albums: Albums::new(
                aws_sdk_dynamodb::Client::new(sdk),
                config::required(env, "PHOTOS_TABLE")?,
            ),
            thumbnails_bucket: config::required(env, "THUMBNAIL_BUCKET")?,
            topic_arn: config::required(env, "THUMBNAIL_TOPIC_ARN")?,
            link_base: config::required(env, "THUMBNAIL_LINK_BASE")?
                .trim_end_matches('/')
                .to_string(),
            max_source_bytes: config::parsed_or(env, "MAX_SOURCE_BYTES", 50 * 1024 * 1024)?,
            options,
        })
    }

    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failed = Vec::new();
        for message in &event.records {
            if let Err(err) = self.process_message(message).await {
                tracing::warn!(message_id = ?message.message_id, error = %err, "message will be retried");
                failed.push(message);
            }
        }
        shared::batch::sqs_failures(failed)
    }

    async fn process_message(&self, message: &SqsMessage) -> Result<(), Transient> {
        let body = message.body.as_deref().unwrap_or_default();
        match photos::parse_s3_notification(body) {
            Ok(S3Notification::TestEvent) => Ok(()),
            Ok(S3Notification::Created(objects)) => {
                for object in objects {
                    self.process_object(&object).await?;
                }
                Ok(())
            }
            // Not ours to interpret: let redrive move it to the DLQ for a human to look at.
            Err(err) => {
                Err(BackendError::failed("sqs", format!("unreadable message: {err}")).into())
            }
        }
    }

    /// Thumbnails one object. Ok also for permanent failures, which leave a marker instead.
    pub async fn process_object(&self, object: &CreatedObject) -> Result<(), Transient> {
        let span = tracing::info_span!("object", key = %object.key, correlation_id = tracing::field::Empty);
        self.thumbnail(object).instrument(span).await
    }

    async fn thumbnail(&self, object: &CreatedObject) -> Result<(), Transient> {
        let Some(photo) = PhotoRef::of_upload_key(&object.key) else {
            // Not put through an upload ticket, so nobody's album has it.
            tracing::warn!(key = %object.key, "object outside the owner-keyed layout; skipped");
            metrics::counter!(metric::UPLOADS_FAILED, label::REASON => "unowned").increment(1);
            return Ok(());
        };
        let got = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await;
        let output = match got {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                tracing::info!(key = %object.key, "object is gone; nothing to thumbnail");
                return Ok(());
            }
            Err(err) => return Err(classify_sdk_error("s3", &err).into()),
        };
        // The upload ticket's id, signed into the object's metadata.
        let correlation = shared::correlation::of_metadata(output.metadata());
        if let Some(id) = &correlation {
            tracing::Span::current().record("correlation_id", id.as_str());
        }
        let upload = Upload {
            object,
            photo,
            correlation,
        };
        let length = output.content_length.unwrap_or_default().max(0) as u64;
        if length > self.max_source_bytes {
            return self
                .record_failure(
                    &upload,
                    "object_too_large",
                    format!(
                        "object is {length} bytes, over the {} limit",
                        self.max_source_bytes
                    ),
                )
                .await;
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| BackendError::failed("s3", e))?
            .into_bytes();
        let options = self.options.clone();
        let started = std::time::Instant::now();
        let rendered = tokio::task::spawn_blocking(move || render::render(&bytes, &options))
            .await
            .map_err(|e| BackendError::failed("render", e))?;
        match rendered {
            Ok(thumbnail) => {
                metrics::histogram!(metric::RENDER_MS)
                    .record(started.elapsed().as_secs_f64() * 1e3);
                metrics::histogram!(metric::INPUT_MEGAPIXELS)
                    .record(thumbnail.source_pixels as f64 / 1e6);
                self.store_and_announce(&upload, thumbnail).await
            }
            Err(err) => {
                self.record_failure(&upload, err.reason(), err.to_string())
                    .await
            }
        }
    }

    async fn store_and_announce(
        &self,
        upload: &Upload<'_>,
        thumbnail: Thumbnail,
    ) -> Result<(), Transient> {
        let (object, correlation) = (upload.object, upload.correlation.as_deref());
        let key = upload.photo.thumbnail_key();
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.thumbnails_bucket)
            .key(&key)
            .content_type("image/jpeg")
            .cache_control("public, max-age=31536000, immutable")
            .body(ByteStream::from(thumbnail.jpeg));
        if let Some(id) = correlation {
            put = put.metadata(shared::correlation::METADATA, id);
        }
        put.send().await.map_err(|e| classify_sdk_error("s3", &e))?;
        let ready = Outcome::Ready {
            width: thumbnail.width,
            height: thumbnail.height,
        };
        if !self.albums.settle(&upload.photo, &ready).await? {
            return self.discard(upload, &key).await;
        }
        let notice = ThumbnailNotice {
            source_bucket: object.bucket.clone(),
            source_key: object.key.clone(),
            thumbnail_key: key,
            url: format!("{}/{}", self.link_base, upload.photo.id),
            width: thumbnail.width,
            height: thumbnail.height,
            correlation_id: upload.correlation.clone(),
        };
        let message = serde_json::to_string(&notice).map_err(|e| BackendError::failed("sns", e))?;
        self.sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject("New photo thumbnail")
            .message(message)
            .set_message_attributes(shared::correlation::sns_attributes(correlation))
            .send()
            .await
            .map_err(|e| classify_sdk_error("sns", &e))?;
        tracing::info!(source_key = %object.key, width = thumbnail.width, height = thumbnail.height, "thumbnail written");
        metrics::counter!(metric::THUMBNAILS_RENDERED).increment(1);
        Ok(())
    }

    async fn record_failure(
        &self,
        upload: &Upload<'_>,
        reason_code: &'static str,
        reason: String,
    ) -> Result<(), Transient> {
        let object = upload.object;
        tracing::warn!(source_key = %object.key, %reason, "upload cannot be thumbnailed; recording a failure marker");
        let marker = FailureMarker {
            source_bucket: object.bucket.clone(),
            source_key: object.key.clone(),
            reason,
            code: Some(reason_code.to_string()),
            correlation_id: upload.correlation.clone(),
        };
        let body = serde_json::to_vec(&marker).map_err(|e| BackendError::failed("s3", e))?;
        let key = upload.photo.failure_marker_key();
        self.s3
            .put_object()
            .bucket(&self.thumbnails_bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| classify_sdk_error("s3", &e))?;
        let failed = Outcome::Failed {
            code: reason_code.to_string(),
        };
        if !self.albums.settle(&upload.photo, &failed).await? {
            return self.discard(upload, &key).await;
        }
        metrics::counter!(metric::UPLOADS_FAILED, label::REASON => reason_code).increment(1);
        Ok(())
    }

    /// The photo was deleted while it was being made (or its upload arrived after the delete):
    /// nothing of it may stay, neither what was just made nor the upload itself.
    async fn discard(&self, upload: &Upload<'_>, made: &str) -> Result<(), Transient> {
        tracing::info!(photo = %upload.photo.id, "photo was deleted meanwhile; discarding");
        let (upload_bucket, upload_key) = (&upload.object.bucket, &upload.object.key);
        photos::delete_objects(
            &self.s3,
            &[(&self.thumbnails_bucket, made), (upload_bucket, upload_key)],
        )
        .await?;
        Ok(())
    }
}
