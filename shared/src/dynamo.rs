//! The DynamoDB calls every system's storage repeats: put one typed item, get one by its
//! partition key, page through one partition newest first. Items are (de)serialised with
//! `serde_dynamo`; errors classified once.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cursor::{self, Page};
use crate::error::{ApiError, BackendError, classify_sdk_error};

/// A conditional write's result: `Ok(Some(output))` when written, `Ok(None)` when its
/// condition did not hold (`ConditionalCheckFailedException`), any other error classified.
pub fn unless_condition_failed<O, E>(
    result: Result<
        O,
        aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    >,
) -> Result<Option<O>, BackendError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_dynamodb::error::ProvideErrorMetadata;
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(None),
        Err(err) => Err(classify_sdk_error("dynamodb", &err)),
    }
}

/// Puts `item`, optionally only if `condition` holds (e.g. `attribute_not_exists(id)`).
pub async fn put<T: Serialize>(
    db: &Client,
    table: &str,
    item: &T,
    condition: Option<&str>,
) -> Result<(), BackendError> {
    let attributes =
        serde_dynamo::to_item(item).map_err(|e| BackendError::failed("dynamodb", e))?;
    db.put_item()
        .table_name(table)
        .set_item(Some(attributes))
        .set_condition_expression(condition.map(str::to_string))
        .send()
        .await
        .map_err(|e| classify_sdk_error("dynamodb", &e))?;
    Ok(())
}

/// Puts a new item: only if no item has its key (`key`: the key attribute names). A put whose
/// first attempt was applied but whose answer was lost (the SDK then retries) meets its own
/// write: when the stored item is exactly ours, that is success, not a conflict.
/// `Ok(false)`: another item already has the key.
pub async fn put_new<T: Serialize>(
    db: &Client,
    table: &str,
    item: &T,
    key: &[&str],
) -> Result<bool, BackendError> {
    let attributes: std::collections::HashMap<String, AttributeValue> =
        serde_dynamo::to_item(item).map_err(|e| BackendError::failed("dynamodb", e))?;
    let condition = key
        .iter()
        .enumerate()
        .map(|(i, _)| format!("attribute_not_exists(#k{i})"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut put = db
        .put_item()
        .table_name(table)
        .set_item(Some(attributes.clone()))
        .condition_expression(condition);
    for (i, name) in key.iter().enumerate() {
        put = put.expression_attribute_names(format!("#k{i}"), *name);
    }
    if unless_condition_failed(put.send().await)?.is_some() {
        return Ok(true);
    }
    // The key is taken: by our own earlier attempt, or by another item.
    let key_attributes = key
        .iter()
        .filter_map(|k| Some((k.to_string(), attributes.get(*k)?.clone())))
        .collect();
    let stored = db
        .get_item()
        .table_name(table)
        .set_key(Some(key_attributes))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| classify_sdk_error("dynamodb", &e))?;
    Ok(stored.item.as_ref() == Some(&attributes))
}

/// One stored item as `T` (a row that does not fit the model is a backend failure).
pub fn decode<T: DeserializeOwned>(
    attributes: HashMap<String, AttributeValue>,
) -> Result<T, BackendError> {
    serde_dynamo::from_item(attributes).map_err(|e| BackendError::failed("dynamodb", e))
}

/// Deletes the item with `key`; deleting a missing one is no error (DynamoDB answers alike).
pub async fn delete(
    db: &Client,
    table: &str,
    key: HashMap<String, AttributeValue>,
) -> Result<(), BackendError> {
    db.delete_item()
        .table_name(table)
        .set_key(Some(key))
        .send()
        .await
        .map_err(|e| classify_sdk_error("dynamodb", &e))?;
    Ok(())
}

/// Gets the item whose string partition key `key` is `value`.
pub async fn get<T: DeserializeOwned>(
    db: &Client,
    table: &str,
    key: &str,
    value: &str,
) -> Result<Option<T>, BackendError> {
    let out = db
        .get_item()
        .table_name(table)
        .key(key, AttributeValue::S(value.to_string()))
        .send()
        .await
        .map_err(|e| classify_sdk_error("dynamodb", &e))?;
    out.item
        .map(|item| serde_dynamo::from_item(item).map_err(|e| BackendError::failed("dynamodb", e)))
        .transpose()
}

/// One partition of a table or index, newest (highest sort key) first: a page of its raw items
/// and the cursor of the next. `after` is a cursor of this listing (`scope`); one whose key
/// names another partition is a 400 here, not DynamoDB's ValidationException later.
pub struct NewestFirst<'a> {
    pub table: &'a str,
    pub index: Option<&'a str>,
    /// The partition key's attribute and value.
    pub partition: (&'a str, &'a str),
    /// The attributes of a `LastEvaluatedKey` (the table's key, and the index's).
    pub key: &'a [&'a str],
    pub scope: String,
}

impl NewestFirst<'_> {
    pub async fn page(
        &self,
        db: &Client,
        limit: usize,
        after: Option<&str>,
    ) -> Result<Page<HashMap<String, AttributeValue>>, ApiError> {
        let (attr, value) = self.partition;
        let value = AttributeValue::S(value.to_string());
        let start = after
            .map(|c| cursor::decode(&self.scope, c, self.key))
            .transpose()?;
        if start.as_ref().is_some_and(|k| k.get(attr) != Some(&value)) {
            return Err(ApiError::validation(
                "cursor is invalid or belongs to a different listing",
            ));
        }
        let out = db
            .query()
            .table_name(self.table)
            .set_index_name(self.index.map(str::to_string))
            .key_condition_expression("#partition = :partition")
            .expression_attribute_names("#partition", attr)
            .expression_attribute_values(":partition", value)
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| ApiError::from(classify_sdk_error("dynamodb", &e)))?;
        let next_cursor = out
            .last_evaluated_key
            .filter(|k| !k.is_empty())
            .and_then(|k| cursor::encode(&self.scope, &k));
        Ok(Page {
            items: out.items.unwrap_or_default(),
            next_cursor,
        })
    }
}
