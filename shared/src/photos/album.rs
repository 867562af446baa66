//! Each person's album: one row per photo in `PhotosTable` (partition key `owner`, their `sub`;
//! sort key `id`, a UUIDv7, so the ids sort by upload time and a query backwards is newest
//! first). `POST /uploads` writes the row as pending; the thumbnailer settles it as ready or
//! failed (with the reason's code); `DELETE /photos/{id}` removes it (and `DELETE /me`, once it
//! exists, every row of a person).
//!
//! The composite key is the ownership check: a person's reads name their own `sub`, so someone
//! else's photo is simply not found (404, as for a missing one).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{PhotoRef, UploadPlan};
use crate::cursor::Page;
use crate::error::{ApiError, BackendError, classify_sdk_error};
use crate::{dynamo, timestamp, validate};

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;
const KEY: [&str; 2] = ["owner", "id"];

/// Where a photo is on its way to a thumbnail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoState {
    /// Ticket issued; the upload or its thumbnail is still to come.
    Pending,
    Ready,
    /// Can never become a thumbnail; `reason` says why.
    Failed,
}

/// A photo's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photo {
    pub owner: String,
    pub id: String,
    /// As the person named it.
    pub filename: String,
    /// The upload's key in the uploads bucket.
    pub key: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
    pub state: PhotoState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// The failure's code (`UploadsFailed`'s `Reason`), once failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Photo {
    /// The pending row of a planned upload.
    pub fn pending(plan: &UploadPlan) -> Self {
        Self {
            owner: plan.photo.owner.clone(),
            id: plan.photo.id.clone(),
            filename: plan.filename.clone(),
            key: plan.key.clone(),
            content_type: plan.content_type.clone(),
            size: plan.size,
            created_at: timestamp::now(),
            state: PhotoState::Pending,
            width: None,
            height: None,
            reason: None,
        }
    }

    pub fn reference(&self) -> PhotoRef {
        PhotoRef {
            owner: self.owner.clone(),
            id: self.id.clone(),
        }
    }

    /// What the owner sees (`thumbnail_url`: a presigned GET, for a ready photo).
    pub fn view(self, thumbnail_url: Option<String>) -> PhotoView {
        let reason = (self.state == PhotoState::Failed)
            .then(|| super::failure_message(self.reason.as_deref()).to_string());
        PhotoView {
            id: self.id,
            filename: self.filename,
            key: self.key,
            content_type: self.content_type,
            size: self.size,
            created_at: self.created_at,
            state: self.state,
            width: self.width,
            height: self.height,
            thumbnail_url,
            reason,
        }
    }
}

/// A photo as `GET /photos` and `GET /photos/{id}` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhotoView {
    pub id: String,
    pub filename: String,
    pub key: String,
    pub content_type: String,
    pub size: u64,
    pub created_at: String,
    pub state: PhotoState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// A short-lived presigned GET of the thumbnail, once ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// Why it can never become a thumbnail, in the person's words, once failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How the thumbnailer settled a photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ready { width: u32, height: u32 },
    Failed { code: String },
}

/// DynamoDB access for albums. Built once per process; cheap to clone.
#[derive(Debug, Clone)]
pub struct Albums {
    db: DynamoDb,
    table: String,
}

fn key_of(photo: &PhotoRef) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("owner".into(), AttributeValue::S(photo.owner.clone())),
        ("id".into(), AttributeValue::S(photo.id.clone())),
    ])
}

impl Albums {
    pub fn new(db: DynamoDb, table: impl Into<String>) -> Self {
        Self {
            db,
            table: table.into(),
        }
    }

    /// Files a new pending photo (its id is fresh: a retry of the same write is no conflict).
    pub async fn add(&self, photo: &Photo) -> Result<(), BackendError> {
        if dynamo::put_new(&self.db, &self.table, photo, &KEY).await? {
            Ok(())
        } else {
            Err(BackendError::failed("dynamodb", "photo id already taken"))
        }
    }

    /// The photo, when `photo.owner` has it (read after the owner's own writes).
    pub async fn get(&self, photo: &PhotoRef) -> Result<Option<Photo>, BackendError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_of(photo)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify_sdk_error("dynamodb", &e))?;
        out.item.map(dynamo::decode).transpose()
    }

    /// A page of `owner`'s photos, newest first.
    pub async fn list(
        &self,
        owner: &str,
        limit: Option<&str>,
        after: Option<&str>,
    ) -> Result<Page<Photo>, ApiError> {
        let limit = validate::limit(limit, DEFAULT_PAGE, MAX_PAGE)?;
        let page = dynamo::NewestFirst {
            table: &self.table,
            index: None,
            partition: ("owner", owner),
            key: &KEY,
            scope: format!("photos/{owner}"),
        }
        .page(&self.db, limit, after)
        .await?;
        let items = page
            .items
            .into_iter()
            .map(dynamo::decode)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    /// Records the thumbnailer's outcome. `Ok(false)`: the photo is gone (deleted while it was
    /// being made), so whatever was made for it must go too.
    pub async fn settle(&self, photo: &PhotoRef, outcome: &Outcome) -> Result<bool, BackendError> {
        let update = self
            .db
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(photo)))
            .condition_expression("attribute_exists(#id)")
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#state", "state");
        let update = match outcome {
            Outcome::Ready { width, height } => update
                .update_expression("SET #state = :ready, width = :w, height = :h REMOVE reason")
                .expression_attribute_values(":ready", AttributeValue::S("ready".into()))
                .expression_attribute_values(":w", AttributeValue::N(width.to_string()))
                .expression_attribute_values(":h", AttributeValue::N(height.to_string())),
            Outcome::Failed { code } => update
                .update_expression("SET #state = :failed, reason = :reason")
                .expression_attribute_values(":failed", AttributeValue::S("failed".into()))
                .expression_attribute_values(":reason", AttributeValue::S(code.clone())),
        };
        Ok(dynamo::unless_condition_failed(update.send().await)?.is_some())
    }

    /// Removes the photo's row (its objects are the caller's to delete first).
    pub async fn remove(&self, photo: &PhotoRef) -> Result<(), BackendError> {
        dynamo::delete(&self.db, &self.table, key_of(photo)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photos::UploadRequest;

    #[test]
    fn a_planned_upload_is_filed_pending_and_viewed_by_state() {
        let plan = UploadRequest {
            filename: "사진 1.png".into(),
            content_type: "image/png".into(),
            size: 10,
        }
        .validate("0d6c2a4e-1f3b-4c5d-8e9f-a0b1c2d3e4f5", 100)
        .unwrap();
        let photo = Photo::pending(&plan);
        assert_eq!(
            photo.filename, "사진 1.png",
            "the name as given, in any script"
        );
        assert_eq!(photo.reference(), plan.photo);
        assert_eq!(photo.state, PhotoState::Pending);
        let pending = serde_json::to_value(photo.clone().view(None)).unwrap();
        assert_eq!(pending["state"], "pending");
        assert!(pending.get("reason").is_none() && pending.get("thumbnail_url").is_none());

        let failed = Photo {
            state: PhotoState::Failed,
            reason: Some("unsupported_format".into()),
            ..photo.clone()
        };
        let failed = serde_json::to_value(failed.view(None)).unwrap();
        assert_eq!(failed["state"], "failed");
        assert!(
            failed["reason"]
                .as_str()
                .unwrap()
                .contains("not an image in an accepted format"),
            "{failed}"
        );
        let row: Photo = serde_dynamo::from_item(
            serde_dynamo::to_item::<_, HashMap<String, AttributeValue>>(&photo).unwrap(),
        )
        .unwrap();
        assert_eq!(row, photo, "the row round-trips");
    }
}
