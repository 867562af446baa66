//! Photo pipeline domain: upload requests and keys, S3 notifications as they arrive through SQS,
//! where thumbnails and failure markers live, and each person's album ([`album`]).
//!
//! Keys: clients never choose them. A person's upload goes to
//! `uploads/<owner>/<photo id>/<sanitised filename>` (the owner is their `sub`, the photo id a
//! time-ordered UUIDv7); its thumbnail to `thumbnails/<owner>/<photo id>.jpg` and, if the upload
//! is not a usable image, a marker to `failed/<owner>/<photo id>.json` (both in the thumbnails
//! bucket). The owner in every key lets a person's objects be found and erased by prefix, and
//! deterministic keys make reprocessing idempotent.

pub mod album;

use std::collections::BTreeMap;

use aws_lambda_events::event::s3::S3Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;
use crate::validate;

pub const UPLOAD_PREFIX: &str = "uploads/";
pub const ALLOWED_CONTENT_TYPES: [&str; 4] = ["image/jpeg", "image/png", "image/webp", "image/gif"];
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 20 * 1024 * 1024;
pub const DEFAULT_PRESIGN_SECONDS: u64 = 300;
const FILENAME_MAX: usize = 100;

/// Body of `POST /uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// A validated upload: the photo it becomes, the key we chose and what the signature will bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPlan {
    pub photo: PhotoRef,
    /// The name as the person gave it (shown in their album, in any script).
    pub filename: String,
    pub key: String,
    pub content_type: String,
    pub size: u64,
}

impl UploadRequest {
    /// The plan for `owner`'s upload (their `sub`), under a new time-ordered photo id.
    pub fn validate(self, owner: &str, max_bytes: u64) -> Result<UploadPlan, ApiError> {
        if !is_owner_segment(owner) {
            tracing::error!("a verified sub that cannot key an upload");
            return Err(ApiError::internal());
        }
        let filename = validate::text("filename", &self.filename, 1, 255)?;
        let content_type = self.content_type.trim().to_ascii_lowercase();
        if !ALLOWED_CONTENT_TYPES.contains(&content_type.as_str()) {
            return Err(ApiError::validation(format!(
                "content_type must be one of {}",
                ALLOWED_CONTENT_TYPES.join(", ")
            )));
        }
        if self.size == 0 || self.size > max_bytes {
            return Err(ApiError::validation(format!(
                "size must be 1 to {max_bytes} bytes"
            )));
        }
        let photo = PhotoRef {
            owner: owner.to_string(),
            id: uuid::Uuid::now_v7().hyphenated().to_string(),
        };
        Ok(UploadPlan {
            key: photo.upload_key(&filename),
            photo,
            filename,
            content_type,
            size: self.size,
        })
    }
}

/// A filename safe in a key and a URL: ASCII letters, digits, `.`, `-`, `_`; runs of anything
/// else become one `_`; no leading dots; at most 100 characters, extension kept.
pub fn sanitise_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let (stem, ext) = match base.rfind('.') {
        Some(i) if i > 0 => (&base[..i], clean_part(&base[i + 1..])),
        _ => (base, String::new()),
    };
    let mut stem = clean_part(stem);
    if stem.is_empty() {
        stem = "upload".into();
    }
    let ext = if ext.is_empty() || ext.len() > 10 {
        String::new()
    } else {
        format!(".{ext}")
    };
    stem.truncate(FILENAME_MAX - ext.len());
    stem + &ext
}

/// ASCII letters, digits, `-`, `_` and inner dots; runs of anything else become one `_`.
fn clean_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for c in part.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches(['.', '_']).to_string()
}

/// One person's photo: who owns it (their `sub`) and its id. Every key of the photo derives
/// from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhotoRef {
    pub owner: String,
    pub id: String,
}

impl PhotoRef {
    /// The photo an upload key we issued belongs to; `None` for any other object (it was put
    /// into the bucket some other way, and has no owner).
    pub fn of_upload_key(key: &str) -> Option<Self> {
        let mut parts = key.strip_prefix(UPLOAD_PREFIX)?.splitn(3, '/');
        let (owner, id, name) = (parts.next()?, parts.next()?, parts.next()?);
        let id = uuid::Uuid::parse_str(id)
            .ok()
            .map(|u| u.hyphenated().to_string())
            .filter(|u| u == id)?;
        (is_owner_segment(owner) && !name.is_empty() && !name.contains('/')).then(|| Self {
            owner: owner.to_string(),
            id,
        })
    }

    pub fn upload_key(&self, filename: &str) -> String {
        format!(
            "{UPLOAD_PREFIX}{}/{}/{}",
            self.owner,
            self.id,
            sanitise_filename(filename)
        )
    }

    pub fn thumbnail_key(&self) -> String {
        format!("thumbnails/{}/{}.jpg", self.owner, self.id)
    }

    pub fn failure_marker_key(&self) -> String {
        format!("failed/{}/{}.json", self.owner, self.id)
    }
}

/// Whether a `sub` can stand as a key segment. Cognito documents `sub` only as a unique
/// identifier within the pool (UUIDs today, of more than one version), not its format, so this
/// accepts what a key segment safely holds rather than one UUID shape.
pub fn is_owner_segment(sub: &str) -> bool {
    (1..=128).contains(&sub.len())
        && sub
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Deletes each `(bucket, key)`; a key already gone is no error (S3 answers 204 either way).
pub async fn delete_objects(
    s3: &aws_sdk_s3::Client,
    objects: &[(&str, &str)],
) -> Result<(), crate::error::BackendError> {
    for (bucket, key) in objects {
        s3.delete_object()
            .bucket(*bucket)
            .key(*key)
            .send()
            .await
            .map_err(|e| crate::error::classify_sdk_error("s3", &e))?;
    }
    Ok(())
}

/// A photo id from a URL path: a UUID in canonical form, nothing else.
pub fn parse_photo_id(raw: &str) -> Result<String, ApiError> {
    match uuid::Uuid::parse_str(raw) {
        Ok(uuid) if raw.len() == 36 => Ok(uuid.hyphenated().to_string()),
        _ => Err(ApiError::validation("photo id must be a UUID")),
    }
}

/// The headers a presigned URL's signature covers (its `X-Amz-SignedHeaders`, `host` aside):
/// exactly what the client must send. Headers the SDK adds without signing them (in Lambda, the
/// recursion-detection `x-amzn-trace-id`) are left out; they are not the client's to send.
pub fn signed_headers<'a>(
    uri: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    let signed: Vec<String> = uri
        .split_once('?')
        .map(|(_, query)| query)
        .unwrap_or_default()
        .split('&')
        .find_map(|pair| pair.strip_prefix("X-Amz-SignedHeaders="))
        .map(|list| {
            percent_encoding::percent_decode_str(list)
                .decode_utf8_lossy()
                .split(';')
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default();
    headers
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .filter(|(k, _)| k != "host" && signed.contains(k))
        .collect()
}

/// The answer to `POST /uploads`.
#[derive(Debug, Clone, Serialize)]
pub struct UploadTicket {
    pub upload_url: String,
    pub method: &'static str,
    /// Send exactly these headers with the PUT: they are part of the signature.
    pub headers: BTreeMap<String, String>,
    pub key: String,
    /// The photo's id in the album (`GET /photos/{id}`, `GET /thumbnails/{id}`).
    pub id: String,
    pub expires_at: String,
    /// Follows the photo to its thumbnail and notice ([`crate::correlation`]).
    pub correlation_id: String,
}

/// The SNS message published for each thumbnail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThumbnailNotice {
    pub source_bucket: String,
    pub source_key: String,
    pub thumbnail_key: String,
    /// A stable link (an API route that redirects to a fresh presigned GET), not a presigned URL
    /// that would die with the Lambda role's temporary credentials.
    pub url: String,
    pub width: u32,
    pub height: u32,
    /// The upload ticket's ([`crate::correlation`]), when the object carried one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// The marker left for an upload that can never become a thumbnail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureMarker {
    pub source_bucket: String,
    pub source_key: String,
    /// The thumbnailer's own words (decoder errors included), for whoever reads the bucket.
    pub reason: String,
    /// A fixed name for the reason (`UploadsFailed`'s `Reason`): what a person is told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

/// What the person who uploaded a photo reads when it failed for good, by the failure's code
/// (never the decoder's raw text or the configured limits).
pub fn failure_message(code: Option<&str>) -> &'static str {
    match code {
        Some("empty") => "The upload is empty.",
        Some("unsupported_format") => {
            "This file is not an image in an accepted format (JPEG, PNG, WebP, GIF)."
        }
        Some("too_many_pixels") => "The image has more pixels than the thumbnailer accepts.",
        Some("object_too_large") => "The file is larger than the thumbnailer accepts.",
        Some("undecodable") => "The image is damaged or truncated and cannot be read.",
        _ => "This upload cannot become a thumbnail.",
    }
}

/// One object an S3 notification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedObject {
    pub bucket: String,
    pub key: String,
    pub size: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Notification {
    /// Sent once when a notification configuration is saved; nothing to do.
    TestEvent,
    Created(Vec<CreatedObject>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an S3 notification: {0}")]
pub struct NotificationError(pub String);

/// Parses the body of an SQS message that S3 sent. Fields the emulator omits
/// (`userIdentity`, `requestParameters`) are filled in so the standard event type applies.
pub fn parse_s3_notification(body: &str) -> Result<S3Notification, NotificationError> {
    let mut value: Value =
        serde_json::from_str(body).map_err(|e| NotificationError(e.to_string()))?;
    if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(S3Notification::TestEvent);
    }
    let records = value
        .get_mut("Records")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| NotificationError("no Records".into()))?;
    for record in records.iter_mut() {
        if let Some(map) = record.as_object_mut() {
            map.entry("userIdentity")
                .or_insert_with(|| serde_json::json!({}));
            map.entry("requestParameters")
                .or_insert_with(|| serde_json::json!({}));
        }
    }
    let event: S3Event =
        serde_json::from_value(value).map_err(|e| NotificationError(e.to_string()))?;
    let mut objects = Vec::new();
    for record in event.records {
        if !record
            .event_name
            .as_deref()
            .unwrap_or_default()
            .starts_with("ObjectCreated:")
        {
            continue;
        }
        let bucket = record
            .s3
            .bucket
            .name
            .ok_or_else(|| NotificationError("record without bucket".into()))?;
        let raw_key = record
            .s3
            .object
            .key
            .ok_or_else(|| NotificationError("record without key".into()))?;
        objects.push(CreatedObject {
            bucket,
            key: decode_event_key(&raw_key),
            size: record.s3.object.size,
        });
    }
    Ok(S3Notification::Created(objects))
}

/// S3 event keys are form-URL-encoded: `+` is a space, `%XX` a byte.
pub fn decode_event_key(raw: &str) -> String {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: &str = "0d6c2a4e-1f3b-4c5d-8e9f-a0b1c2d3e4f5";

    #[test]
    fn only_signed_headers_are_handed_to_the_client() {
        let uri = "http://s3/b/k?x-id=PutObject&X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost&X-Amz-Signature=abc";
        let headers = signed_headers(
            uri,
            [
                ("Content-Type", "image/jpeg"),
                ("content-length", "10"),
                ("x-amzn-trace-id", "Root=1-abc"),
                ("host", "s3"),
            ],
        );
        assert_eq!(
            headers.into_iter().collect::<Vec<_>>(),
            [
                ("content-length".to_string(), "10".to_string()),
                ("content-type".to_string(), "image/jpeg".to_string())
            ]
        );
        assert!(signed_headers("http://s3/b/k", [("content-type", "x")]).is_empty());
    }

    #[test]
    fn filenames_are_sanitised() {
        assert_eq!(sanitise_filename("My Holiday (1).JPG"), "My_Holiday_1.JPG");
        assert_eq!(sanitise_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_filename("..hidden.png"), "hidden.png");
        assert_eq!(sanitise_filename("???"), "upload");
        assert_eq!(sanitise_filename("사진.jpg"), "upload.jpg");
        assert_eq!(sanitise_filename("noext"), "noext");
        let long = format!("{}.jpeg", "a".repeat(300));
        let clean = sanitise_filename(&long);
        assert_eq!(clean.len(), 100);
        assert!(clean.ends_with(".jpeg"));
    }

    #[test]
    fn upload_requests_are_validated() {
        let ok = UploadRequest {
            filename: "a.png".into(),
            content_type: "IMAGE/PNG".into(),
            size: 10,
        }
        .validate(OWNER, 100)
        .unwrap();
        assert_eq!(
            ok.key,
            format!("uploads/{OWNER}/{}/a.png", ok.photo.id),
            "keyed by owner"
        );
        assert_eq!(PhotoRef::of_upload_key(&ok.key), Some(ok.photo.clone()));
        assert_eq!(ok.content_type, "image/png");
        for bad in [
            UploadRequest {
                filename: "a.svg".into(),
                content_type: "image/svg+xml".into(),
                size: 10,
            },
            UploadRequest {
                filename: "a.png".into(),
                content_type: "image/png".into(),
                size: 0,
            },
            UploadRequest {
                filename: "a.png".into(),
                content_type: "image/png".into(),
                size: 101,
            },
            UploadRequest {
                filename: " ".into(),
                content_type: "image/png".into(),
                size: 1,
            },
        ] {
            assert!(bad.validate(OWNER, 100).is_err());
        }
    }

    #[test]
    fn every_key_of_a_photo_names_its_owner() {
        let photo = PhotoRef {
            owner: OWNER.into(),
            id: uuid::Uuid::now_v7().to_string(),
        };
        let key = photo.upload_key("사진 (1).jpg");
        assert_eq!(key, format!("uploads/{OWNER}/{}/1.jpg", photo.id));
        assert_eq!(PhotoRef::of_upload_key(&key), Some(photo.clone()));
        // A sub of another shape (Cognito does not promise one) is still an owner.
        let other_sub = PhotoRef {
            owner: "eu-west-1_Ab_0123456789abcdef".into(),
            ..photo.clone()
        };
        let key = other_sub.upload_key("x.jpg");
        assert_eq!(PhotoRef::of_upload_key(&key), Some(other_sub));
        assert_eq!(
            photo.thumbnail_key(),
            format!("thumbnails/{OWNER}/{}.jpg", photo.id)
        );
        assert_eq!(
            photo.failure_marker_key(),
            format!("failed/{OWNER}/{}.json", photo.id)
        );
        // Objects put some other way have no owner.
        let id = &photo.id;
        for other in [
            format!("uploads/{id}/x.jpg"),
            format!("uploads/{OWNER}/{id}/"),
            format!("uploads/{OWNER}/{id}/a/b.jpg"),
            format!("uploads/{OWNER}/{}/x.jpg", id.to_uppercase()),
            format!("uploads/a.b/{id}/x.jpg"),
            format!("uploads/{}/{id}/x.jpg", "a".repeat(129)),
            format!("elsewhere/{OWNER}/{id}/x.jpg"),
        ] {
            assert_eq!(PhotoRef::of_upload_key(&other), None, "{other}");
        }
        assert_eq!(parse_photo_id(id).unwrap(), *id);
        for bad in ["", "../x", "ZZ", &"a".repeat(32), &id.to_uppercase()[..35]] {
            assert!(parse_photo_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn photo_ids_sort_oldest_first() {
        let ids: Vec<String> = (0..50).map(|_| uuid::Uuid::now_v7().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "a listing newest first is the ids descending");
    }

    #[test]
    fn event_keys_are_form_decoded() {
        assert_eq!(
            decode_event_key("uploads/a+b%2Fc%25d.jpg"),
            "uploads/a b/c%d.jpg"
        );
        assert_eq!(decode_event_key("x%zz"), "x%zz");
        assert_eq!(decode_event_key("%E2%9C%93"), "✓");
    }

    #[test]
    fn notifications_tolerate_missing_optional_fields() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
            "eventTime":"2026-11-21T15:04:05.000Z","eventName":"ObjectCreated:Put",
            "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"b","arn":"arn:aws:s3:::b"},
            "object":{"key":"uploads/x+y.jpg","size":12,"eTag":"e"}}}]}"#;
        assert_eq!(
            parse_s3_notification(body).unwrap(),
            S3Notification::Created(vec![CreatedObject {
                bucket: "b".into(),
                key: "uploads/x y.jpg".into(),
                size: Some(12)
            }])
        );
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-21T15:04:05.000Z","Bucket":"b"}"#;
        assert_eq!(
            parse_s3_notification(test).unwrap(),
            S3Notification::TestEvent
        );
        assert!(parse_s3_notification("not json").is_err());
        assert!(parse_s3_notification("{}").is_err());
    }
}
