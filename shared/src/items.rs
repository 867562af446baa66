//! Items API domain: the item model, request validation, key and index design, storage
//! operations, and what the stream processor does with each change.
//!
//! Table design (template.yaml `ItemsTable`):
//! - primary key `id` (UUID);
//! - [`OWNER_INDEX`]: `owner` (HASH) + `created_at` (RANGE), a person's items newest first;
//! - [`STATUS_INDEX`]: `status` (HASH) + `created_at` (RANGE), listing by status newest first;
//! - [`EMAIL_INDEX`]: `email` (HASH), lookup by email.
//!
//! Every item belongs to the person who created it (`owner`: their `sub`). Each operation names
//! the caller, and someone else's item answers exactly as a missing one does (404), so an id
//! tells nobody whether it exists. The status and e-mail listings read their index and keep the
//! caller's rows (a filter: a page may come back short, its cursor still leads on).
//!
//! A test checks these names against template.yaml so the two cannot drift.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client as DynamoDb;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

use crate::cursor::{self, Page};
use crate::dynamo;
use crate::error::{ApiError, BackendError, classify_sdk_error};
use crate::timestamp;
use crate::validate;

pub const KEY_ATTR: &str = "id";
pub const OWNER_ATTR: &str = "owner";
pub const OWNER_INDEX: &str = "OwnerIndex";
pub const OWNER_INDEX_KEYS: (&str, &str) = (OWNER_ATTR, "created_at");
pub const STATUS_INDEX: &str = "CreatedAtIndex";
pub const STATUS_INDEX_KEYS: (&str, &str) = ("status", "created_at");
pub const EMAIL_INDEX: &str = "EmailIndex";
pub const EMAIL_INDEX_KEY: &str = "email";

pub const NAME_MAX: usize = 200;
pub const DESCRIPTION_MAX: usize = 2000;
pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 100;

/// Namespace for ids derived from idempotency keys (UUID v5), so a retried create maps to the
/// same id and the conditional put detects it.
const IDEMPOTENT_ID_NAMESPACE: uuid::Uuid = uuid::uuid!("0b5c1d2e-7a41-4c55-9d0a-6a1f3f0e8e21");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemStatus {
    Active,
    Inactive,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
        }
    }

    pub fn parse(text: &str) -> Result<Self, ApiError> {
        match text {
            "active" => Ok(Self::Active),
            "inactive" => Ok(Self::Inactive),
            _ => Err(ApiError::validation(
                "status must be `active` or `inactive`",
            )),
        }
    }
}

/// An item as clients see it (and as backups store it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    /// The `sub` of the person who created it (empty for an item from before owners: nobody's).
    #[serde(default)]
    pub owner: String,
    pub name: String,
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub status: ItemStatus,
    pub created_at: String,
    pub updated_at: String,
}

/// What the table holds: the item plus the fingerprint of the request that created it, used to
/// tell an idempotent retry from a reuse of the same key for a different request.
#[derive(Debug, Serialize, Deserialize)]
struct StoredItem {
    #[serde(flatten)]
    item: Item,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_fingerprint: Option<String>,
    /// The correlation id of the request that last wrote it ([`crate::rest::correlation_id`]):
    /// the stream processor carries it on to the backup and the notice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
}

/// Body of `POST /items`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateItemRequest {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "validate::not_null")]
    pub status: Option<ItemStatus>,
}

/// A validated, normalised create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewItem {
    pub name: String,
    pub email: String,
    pub description: Option<String>,
    pub status: ItemStatus,
}

impl CreateItemRequest {
    pub fn validate(self) -> Result<NewItem, ApiError> {
        Ok(NewItem {
            name: validate::text("name", &self.name, 1, NAME_MAX)?,
            email: validate::email("email", &self.email)?,
            description: self
                .description
                .map(|d| validate::text("description", &d, 0, DESCRIPTION_MAX))
                .transpose()?,
            status: self.status.unwrap_or(ItemStatus::Active),
        })
    }
}

impl NewItem {
    /// Stable hash of the normalised request (hex SHA-256 of its JSON).
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("plain struct serialises");
        Sha256::digest(json)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Body of `PUT /items/{id}`: only these fields may change. `"description": null` removes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateItemRequest {
    #[serde(default, deserialize_with = "validate::not_null")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "validate::not_null")]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "validate::not_null")]
    pub status: Option<ItemStatus>,
}

/// Distinguishes a field sent as `null` (`Some(None)`) from one not sent (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ItemPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    /// `Some(None)` removes the description.
    pub description: Option<Option<String>>,
    pub status: Option<ItemStatus>,
}

impl UpdateItemRequest {
    pub fn validate(self) -> Result<ItemPatch, ApiError> {
        let patch = ItemPatch {
            name: self
                .name
                .map(|n| validate::text("name", &n, 1, NAME_MAX))
                .transpose()?,
            email: self
                .email
                .map(|e| validate::email("email", &e))
                .transpose()?,
            description: self
                .description
                .map(|d| {
                    d.map(|d| validate::text("description", &d, 0, DESCRIPTION_MAX))
                        .transpose()
                })
                .transpose()?,
            status: self.status,
        };
        if patch == ItemPatch::default() {
            return Err(ApiError::validation(
                "send at least one of: name, email, description, status",
            ));
        }
        Ok(patch)
    }
}

/// An `Idempotency-Key` header value: 1-255 visible ASCII characters.
pub fn idempotency_key(raw: &str) -> Result<String, ApiError> {
    if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::validation(
            "Idempotency-Key must be 1-255 visible ASCII characters",
        ));
    }
    Ok(raw.to_string())
}

/// The id for a new item: derived from the owner and the idempotency key when there is one (two
/// people using the same key make two items, and neither learns of the other's), random
/// otherwise.
pub fn new_item_id(owner: &str, idempotency_key: Option<&str>) -> String {
    match idempotency_key {
        Some(key) => {
            let name = format!("{owner}\n{key}");
            uuid::Uuid::new_v5(&IDEMPOTENT_ID_NAMESPACE, name.as_bytes()).to_string()
        }
        None => uuid::Uuid::new_v4().to_string(),
    }
}

/// Which listing `GET /items` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    All,
    /// Newest first; `from`/`to` bound `created_at` inclusively (normalised timestamps).
    ByStatus {
        status: ItemStatus,
        from: Option<String>,
        to: Option<String>,
    },
    ByEmail {
        email: String,
    },
}

impl Listing {
    /// What a cursor of this listing belongs to: the listing and its owner, so nobody can page
    /// on with another person's cursor.
    fn scope(&self, owner: &str) -> String {
        let listing = match self {
            Self::All => "items".into(),
            Self::ByStatus { status, from, to } => format!(
                "items/status/{}/{}/{}",
                status.as_str(),
                from.as_deref().unwrap_or(""),
                to.as_deref().unwrap_or("")
            ),
            Self::ByEmail { email } => format!("items/email/{email}"),
        };
        format!("{owner}/{listing}")
    }

    /// The attributes DynamoDB puts in `LastEvaluatedKey` for this listing.
    fn key_attrs(&self) -> &'static [&'static str] {
        match self {
            Self::All => &[KEY_ATTR, OWNER_INDEX_KEYS.0, OWNER_INDEX_KEYS.1],
            Self::ByStatus { .. } => &[KEY_ATTR, STATUS_INDEX_KEYS.0, STATUS_INDEX_KEYS.1],
            Self::ByEmail { .. } => &[KEY_ATTR, EMAIL_INDEX_KEY],
        }
    }
}

/// Raw query parameters of `GET /items`.
#[derive(Debug, Default, Clone)]
pub struct ListParams {
    pub limit: Option<String>,
    pub cursor: Option<String>,
    pub status: Option<String>,
    pub email: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

impl ListParams {
    pub const NAMES: [&'static str; 6] = ["limit", "cursor", "status", "email", "from", "to"];
}

#[derive(Debug, Clone)]
pub struct ListRequest {
    /// Whose items (the caller's `sub`).
    pub owner: String,
    pub listing: Listing,
    pub limit: usize,
    pub start_key: Option<HashMap<String, AttributeValue>>,
}

impl ListRequest {
    pub fn parse(params: &ListParams, owner: &str) -> Result<Self, ApiError> {
        let limit = validate::limit(params.limit.as_deref(), DEFAULT_PAGE, MAX_PAGE)?;
        let bound = |name: &str, raw: &Option<String>| -> Result<Option<String>, ApiError> {
            raw.as_deref()
                .map(|t| {
                    timestamp::normalise(t).ok_or_else(|| {
                        ApiError::validation(format!("{name} must be an RFC 3339 timestamp"))
                    })
                })
                .transpose()
        };
        let from = bound("from", &params.from)?;
        let to = bound("to", &params.to)?;
        let listing = match (&params.status, &params.email) {
            (Some(_), Some(_)) => {
                return Err(ApiError::validation(
                    "filter by status or by email, not both",
                ));
            }
            (Some(status), None) => {
                if let (Some(f), Some(t)) = (&from, &to)
                    && f > t
                {
                    return Err(ApiError::validation("from must not be after to"));
                }
                Listing::ByStatus {
                    status: ItemStatus::parse(status)?,
                    from,
                    to,
                }
            }
            (None, email) => {
                if from.is_some() || to.is_some() {
                    return Err(ApiError::validation(
                        "from/to need a status filter (the status index is sorted by created_at)",
                    ));
                }
                match email {
                    Some(email) => Listing::ByEmail {
                        email: validate::email("email", email)?,
                    },
                    None => Listing::All,
                }
            }
        };
        let start_key = params
            .cursor
            .as_deref()
            .map(|c| cursor::decode(&listing.scope(owner), c, listing.key_attrs()))
            .transpose()?;
        Ok(Self {
            owner: owner.to_string(),
            listing,
            limit,
            start_key,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    #[error("item not found")]
    NotFound,
    #[error("Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("stored item does not match the model: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
}

impl From<ItemsError> for ApiError {
    fn from(err: ItemsError) -> Self {
        match err {
            ItemsError::NotFound => ApiError::not_found("item not found"),
            ItemsError::IdempotencyKeyReused => ApiError::new(
                http::StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency-Key was already used with a different request body",
            ),
            ItemsError::Corrupt(detail) => {
                tracing::error!(%detail, "corrupt item in table");
                ApiError::internal()
            }
            ItemsError::Backend(b) => b.into(),
        }
    }
}

/// The outcome of a create: the item, and whether it was an idempotent replay.
#[derive(Debug)]
pub struct Created {
    pub item: Item,
    pub replayed: bool,
}

/// DynamoDB access for items. Built once per process; cheap to clone.
#[derive(Debug, Clone)]
pub struct ItemsRepo {
    db: DynamoDb,
    table: String,
}

/// The condition of a change: the item exists and is the caller's (`:owner`).
const OWNED: &str = "attribute_exists(#id) AND #owner = :owner";

fn decode_item(attrs: HashMap<String, AttributeValue>) -> Result<Item, ItemsError> {
    serde_dynamo::from_item(attrs).map_err(|e| ItemsError::Corrupt(e.to_string()))
}

impl ItemsRepo {
    pub fn new(db: DynamoDb, table: impl Into<String>) -> Self {
        Self {
            db,
            table: table.into(),
        }
    }

    /// One conditional write. With an idempotency key the id is derived from the key, so a retry
    /// hits the condition and gets the stored item back (or 422 when the body differs).
    pub async fn create(
        &self,
        owner: &str,
        new: NewItem,
        idempotency_key: Option<&str>,
        correlation_id: &str,
    ) -> Result<Created, ItemsError> {
        let now = timestamp::now();
        let fingerprint = idempotency_key.map(|_| new.fingerprint());
        let item = Item {
            id: new_item_id(owner, idempotency_key),
            owner: owner.to_string(),
            name: new.name,
            email: new.email,
            description: new.description,
            status: new.status,
            created_at: now.clone(),
            updated_at: now,
        };
        let stored = StoredItem {
            item,
            request_fingerprint: fingerprint.clone(),
            correlation_id: Some(correlation_id.to_string()),
        };
        let attrs =
            serde_dynamo::to_item(&stored).map_err(|e| ItemsError::Corrupt(e.to_string()))?;
        let put = self
            .db
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs))
            .condition_expression("attribute_not_exists(#id)")
            .expression_attribute_names("#id", KEY_ATTR)
            .send()
            .await;
        if dynamo::unless_condition_failed(put)?.is_some() {
            return Ok(Created {
                item: stored.item,
                replayed: false,
            });
        }
        // The id is taken: by an earlier attempt of this request, or by another one.
        let Some(existing) = self.get_stored(&stored.item.id).await? else {
            // Deleted between our put and get: nothing to replay.
            return Err(ItemsError::IdempotencyKeyReused);
        };
        match (fingerprint, existing.request_fingerprint) {
            (Some(ours), Some(theirs)) if ours == theirs => Ok(Created {
                item: existing.item,
                replayed: true,
            }),
            // No key, a fresh random id: the SDK retried a put whose answer was lost, and met
            // our own write.
            (None, None) if existing.item == stored.item => Ok(Created {
                item: existing.item,
                replayed: false,
            }),
            _ => Err(ItemsError::IdempotencyKeyReused),
        }
    }

    async fn get_stored(&self, id: &str) -> Result<Option<StoredItem>, ItemsError> {
        let out = self
            .db
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTR, AttributeValue::S(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify_sdk_error("dynamodb", &e))?;
        out.item
            .map(|attrs| {
                serde_dynamo::from_item(attrs).map_err(|e| ItemsError::Corrupt(e.to_string()))
            })
            .transpose()
    }

    /// `owner`'s item `id`; someone else's is [`ItemsError::NotFound`], as a missing one.
    pub async fn get(&self, owner: &str, id: &str) -> Result<Item, ItemsError> {
        self.get_stored(id)
            .await?
            .map(|s| s.item)
            .filter(|item| item.owner == owner)
            .ok_or(ItemsError::NotFound)
    }

    /// Updates only the patched fields; "missing" is decided by the condition, not a prior read.
    pub async fn update(
        &self,
        owner: &str,
        id: &str,
        patch: ItemPatch,
        correlation_id: &str,
    ) -> Result<Item, ItemsError> {
        let mut sets = vec!["#updated_at = :updated_at".to_string()];
        let mut removes = Vec::new();
        let mut names = HashMap::from([
            ("#id".to_string(), KEY_ATTR.to_string()),
            ("#owner".to_string(), OWNER_ATTR.to_string()),
            ("#updated_at".to_string(), "updated_at".to_string()),
        ]);
        let mut values = HashMap::from([
            (
                ":updated_at".to_string(),
                AttributeValue::S(timestamp::now()),
            ),
            (":owner".to_string(), AttributeValue::S(owner.to_string())),
        ]);
        let mut set = |field: &str, value: String| {
            sets.push(format!("#{field} = :{field}"));
            names.insert(format!("#{field}"), field.to_string());
            values.insert(format!(":{field}"), AttributeValue::S(value));
        };
        set("correlation_id", correlation_id.to_string());
        if let Some(name) = patch.name {
            set("name", name);
        }
        if let Some(email) = patch.email {
            set("email", email);
        }
        if let Some(status) = patch.status {
            set("status", status.as_str().to_string());
        }
        match patch.description {
            Some(Some(description)) => set("description", description),
            Some(None) => {
                removes.push("#description".to_string());
                names.insert("#description".to_string(), "description".to_string());
            }
            None => {}
        }
        let mut expression = format!("SET {}", sets.join(", "));
        if !removes.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
        }
        let out = self
            .db
            .update_item()
            .table_name(&self.table)
            .key(KEY_ATTR, AttributeValue::S(id.to_string()))
            .update_expression(expression)
            .condition_expression(OWNED)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        // The condition is the item's existence and owner: failing, there is no such item of
        // the caller's.
        match dynamo::unless_condition_failed(out)? {
            Some(out) => decode_item(out.attributes.unwrap_or_default()),
            None => Err(ItemsError::NotFound),
        }
    }

    pub async fn delete(&self, owner: &str, id: &str) -> Result<(), ItemsError> {
        let out = self
            .db
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTR, AttributeValue::S(id.to_string()))
            .condition_expression(OWNED)
            .expression_attribute_names("#id", KEY_ATTR)
            .expression_attribute_names("#owner", OWNER_ATTR)
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_string()))
            .send()
            .await;
        match dynamo::unless_condition_failed(out)? {
            Some(_) => Ok(()),
            None => Err(ItemsError::NotFound),
        }
    }

    /// A page of the owner's items: their index newest first, or the status or e-mail index
    /// with their rows kept.
    pub async fn list(&self, request: &ListRequest) -> Result<Page<Item>, ItemsError> {
        let limit = i32::try_from(request.limit).unwrap_or(i32::MAX);
        let owner = AttributeValue::S(request.owner.clone());
        let query = self
            .db
            .query()
            .table_name(&self.table)
            .expression_attribute_names("#owner", OWNER_ATTR)
            .expression_attribute_values(":owner", owner)
            .limit(limit)
            .set_exclusive_start_key(request.start_key.clone());
        let query = match &request.listing {
            Listing::All => query
                .index_name(OWNER_INDEX)
                .key_condition_expression("#owner = :owner")
                .scan_index_forward(false),
            Listing::ByStatus { status, from, to } => {
                let (status_attr, created_attr) = STATUS_INDEX_KEYS;
                let (range, query) = created_range(query, created_attr, from, to);
                query
                    .index_name(STATUS_INDEX)
                    .key_condition_expression(format!("#status = :status{range}"))
                    .filter_expression("#owner = :owner")
                    .expression_attribute_names("#status", status_attr)
                    .expression_attribute_values(
                        ":status",
                        AttributeValue::S(status.as_str().into()),
                    )
                    .scan_index_forward(false)
            }
            Listing::ByEmail { email } => query
                .index_name(EMAIL_INDEX)
                .key_condition_expression("#email = :email")
                .filter_expression("#owner = :owner")
                .expression_attribute_names("#email", EMAIL_INDEX_KEY)
                .expression_attribute_values(":email", AttributeValue::S(email.clone())),
        };
        let out = query
            .send()
            .await
            .map_err(|e| classify_sdk_error("dynamodb", &e))?;
        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(decode_item)
            .collect::<Result<Vec<_>, _>>()?;
        let scope = request.listing.scope(&request.owner);
        let next_cursor = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .and_then(|k| cursor::encode(&scope, &k));
        Ok(Page { items, next_cursor })
    }
}

/// The `created_at` bounds of a status listing: the key condition's tail and the query with
/// their values.
fn created_range(
    query: QueryFluentBuilder,
    created_attr: &str,
    from: &Option<String>,
    to: &Option<String>,
) -> (&'static str, QueryFluentBuilder) {
    let value = |v: &String| AttributeValue::S(v.clone());
    let (range, query) = match (from, to) {
        (Some(f), Some(t)) => (
            " AND #created BETWEEN :from AND :to",
            query
                .expression_attribute_values(":from", value(f))
                .expression_attribute_values(":to", value(t)),
        ),
        (Some(f), None) => (
            " AND #created >= :from",
            query.expression_attribute_values(":from", value(f)),
        ),
        (None, Some(t)) => (
            " AND #created <= :to",
            query.expression_attribute_values(":to", value(t)),
        ),
        (None, None) => return ("", query),
    };
    (
        range,
        query.expression_attribute_names("#created", created_attr),
    )
}

/// A change the items stream carries, decoded from its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemChange {
    Created(Item),
    Modified(Item),
    Removed(Item),
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("unknown stream event name `{0}`")]
    UnknownEvent(String),
    #[error("{event} record has no usable image: {reason}")]
    BadImage { event: &'static str, reason: String },
}

impl ItemChange {
    pub fn from_record(
        record: &aws_lambda_events::event::dynamodb::EventRecord,
    ) -> Result<Self, ChangeError> {
        let decode =
            |event: &'static str, image: &serde_dynamo::Item| -> Result<Item, ChangeError> {
                serde_dynamo::from_item(image.clone()).map_err(|e| ChangeError::BadImage {
                    event,
                    reason: e.to_string(),
                })
            };
        match record.event_name.as_str() {
            "INSERT" => decode("INSERT", &record.change.new_image).map(Self::Created),
            "MODIFY" => decode("MODIFY", &record.change.new_image).map(Self::Modified),
            "REMOVE" => decode("REMOVE", &record.change.old_image).map(Self::Removed),
            other => Err(ChangeError::UnknownEvent(other.to_string())),
        }
    }
}

/// The correlation id of the request that made this change (the new image's, or for a REMOVE the
/// last writer's), when the item has one.
pub fn correlation_id(record: &aws_lambda_events::event::dynamodb::EventRecord) -> Option<String> {
    let image = if record.event_name == "REMOVE" {
        &record.change.old_image
    } else {
        &record.change.new_image
    };
    match image.get("correlation_id")? {
        serde_dynamo::AttributeValue::S(id) => Some(id.clone()),
        _ => None,
    }
}

/// `backups/YYYY/MM/DD/<id>.json`, dated by the item's creation so every change of one item
/// lands on the same key (a REMOVE can find it from the old image).
pub fn backup_key(item: &Item) -> String {
    let date = timestamp::date_path(&item.created_at).unwrap_or_else(|| "undated".into());
    format!("backups/{date}/{}.json", item.id)
}

/// Subject and JSON message of the "item created" notification.
pub fn created_notification(item: &Item) -> (String, String) {
    let subject: String = format!("Item created: {}", item.name)
        .chars()
        .take(100)
        .collect();
    let message = serde_json::json!({ "event": "item.created", "item": item }).to_string();
    // SNS subjects must be ASCII-printable without newlines.
    let subject = subject
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    (subject, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> ListParams {
        let mut p = ListParams::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "limit" => p.limit = v,
                "cursor" => p.cursor = v,
                "status" => p.status = v,
                "email" => p.email = v,
                "from" => p.from = v,
                "to" => p.to = v,
                _ => unreachable!(),
            }
        }
        p
    }

    #[test]
    fn create_request_normalises_and_defaults() {
        let req: CreateItemRequest =
            serde_json::from_str(r#"{"name":" Widget ","email":"A@Example.com"}"#).unwrap();
        let new = req.validate().unwrap();
        assert_eq!(new.name, "Widget");
        assert_eq!(new.email, "a@example.com");
        assert_eq!(new.status, ItemStatus::Active);
    }

    #[test]
    fn fingerprint_depends_on_normalised_content() {
        let a = CreateItemRequest {
            name: "x".into(),
            email: "a@b.co".into(),
            description: None,
            status: None,
        }
        .validate()
        .unwrap();
        let b = CreateItemRequest {
            name: " x ".into(),
            email: "A@B.CO".into(),
            description: None,
            status: Some(ItemStatus::Active),
        }
        .validate()
        .unwrap();
        let c = CreateItemRequest {
            name: "y".into(),
            email: "a@b.co".into(),
            description: None,
            status: None,
        }
        .validate()
        .unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn update_request_distinguishes_null_from_absent() {
        let req: UpdateItemRequest = serde_json::from_str(r#"{"description":null}"#).unwrap();
        assert_eq!(req.validate().unwrap().description, Some(None));
        let req: UpdateItemRequest = serde_json::from_str(r#"{}"#).unwrap();
        assert!(req.validate().is_err());
        assert!(serde_json::from_str::<UpdateItemRequest>(r#"{"id":"x"}"#).is_err());
    }

    #[test]
    fn only_the_description_may_be_sent_as_null() {
        for body in [
            r#"{"status":null}"#,
            r#"{"name":null}"#,
            r#"{"email":null}"#,
        ] {
            assert!(
                serde_json::from_str::<UpdateItemRequest>(body).is_err(),
                "{body}"
            );
        }
        let create = r#"{"name":"n","email":"a@b.io","status":null}"#;
        assert!(serde_json::from_str::<CreateItemRequest>(create).is_err());
        let create = r#"{"name":"n","email":"a@b.io","description":null}"#;
        let req: CreateItemRequest = serde_json::from_str(create).unwrap();
        assert_eq!(req.validate().unwrap().status, ItemStatus::Active);
        let req: UpdateItemRequest = serde_json::from_str(r#"{"status":"inactive"}"#).unwrap();
        assert_eq!(req.validate().unwrap().status, Some(ItemStatus::Inactive));
    }

    #[test]
    fn idempotent_ids_are_stable_and_distinct() {
        assert_eq!(new_item_id("a", Some("k1")), new_item_id("a", Some("k1")));
        assert_ne!(new_item_id("a", Some("k1")), new_item_id("a", Some("k2")));
        // Two people's same key: two items, neither meeting the other's.
        assert_ne!(new_item_id("a", Some("k1")), new_item_id("b", Some("k1")));
        assert_ne!(new_item_id("a", None), new_item_id("a", None));
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(256)).is_err());
    }

    #[test]
    fn listing_selection_and_validation() {
        assert_eq!(
            ListRequest::parse(&params(&[]), "a").unwrap().listing,
            Listing::All
        );
        let by_status = ListRequest::parse(
            &params(&[("status", "active"), ("from", "2026-01-01T00:00:00Z")]),
            "a",
        )
        .unwrap();
        assert_eq!(
            by_status.listing,
            Listing::ByStatus {
                status: ItemStatus::Active,
                from: Some("2026-01-01T00:00:00.000Z".into()),
                to: None
            }
        );
        for bad in [
            params(&[("status", "active"), ("email", "a@b.co")]),
            params(&[("from", "2026-01-01T00:00:00Z")]),
            params(&[("status", "gone")]),
            params(&[
                ("status", "active"),
                ("from", "2026-02-01T00:00:00Z"),
                ("to", "2026-01-01T00:00:00Z"),
            ]),
            params(&[("status", "active"), ("to", "soon")]),
            params(&[("limit", "0")]),
            params(&[("cursor", "bogus")]),
        ] {
            assert_eq!(
                ListRequest::parse(&bad, "a").unwrap_err().status,
                http::StatusCode::BAD_REQUEST,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cursor_is_bound_to_its_listing() {
        let key = HashMap::from([
            ("id".to_string(), AttributeValue::S("i".into())),
            ("email".to_string(), AttributeValue::S("a@b.co".into())),
        ]);
        let cursor = cursor::encode(
            &Listing::ByEmail {
                email: "a@b.co".into(),
            }
            .scope("a"),
            &key,
        )
        .unwrap();
        assert!(
            ListRequest::parse(&params(&[("email", "a@b.co"), ("cursor", &cursor)]), "a").is_ok()
        );
        assert!(
            ListRequest::parse(&params(&[("email", "c@d.co"), ("cursor", &cursor)]), "a").is_err()
        );
        assert!(ListRequest::parse(&params(&[("cursor", &cursor)]), "a").is_err());
        // Another person's cursor, for the same listing: refused, not paged on.
        let theirs = params(&[("email", "a@b.co"), ("cursor", &cursor)]);
        assert!(ListRequest::parse(&theirs, "b").is_err());
    }

    #[test]
    fn backup_key_is_dated_by_creation() {
        let item = Item {
            id: "abc".into(),
            owner: "u1".into(),
            name: "n".into(),
            email: "a@b.co".into(),
            description: None,
            status: ItemStatus::Active,
            created_at: "2026-03-04T05:06:07.000Z".into(),
            updated_at: "2026-05-04T05:06:07.000Z".into(),
        };
        assert_eq!(backup_key(&item), "backups/2026/03/04/abc.json");
        let (subject, message) = created_notification(&item);
        assert_eq!(subject, "Item created: n");
        assert!(message.contains("\"item.created\""));
    }
}
