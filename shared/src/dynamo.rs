//! The two DynamoDB calls every system's storage repeats: put one typed item, get one by its
//! partition key. Items are (de)serialised with `serde_dynamo`; errors classified once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{BackendError, classify_sdk_error};

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
