//! The two DynamoDB calls every system's storage repeats: put one typed item, get one by its
//! partition key. Items are (de)serialised with `serde_dynamo`; errors classified once.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{BackendError, classify_sdk_error};

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
