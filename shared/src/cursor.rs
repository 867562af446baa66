//! Opaque pagination cursors over DynamoDB's `LastEvaluatedKey`.
//!
//! A cursor is base64url(JSON) of the key plus the *scope* it was issued for (which table or
//! index and which partition), so a cursor from one listing cannot be replayed against another.
//! Anything that does not decode to exactly the expected key attributes is a 400, never a 500.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

const VERSION: u8 = 1;
/// Far above any real key (a few attributes of at most a few hundred bytes).
const MAX_CURSOR_CHARS: usize = 2048;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum KeyAttr {
    S(String),
    N(String),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    v: u8,
    scope: String,
    key: BTreeMap<String, KeyAttr>,
}

/// Encodes `LastEvaluatedKey` for `scope`. Keys hold only string and number attributes here;
/// anything else is a programming error and yields no cursor (logged).
pub fn encode(scope: &str, key: &HashMap<String, AttributeValue>) -> Option<String> {
    let mut attrs = BTreeMap::new();
    for (name, value) in key {
        let attr = match value {
            AttributeValue::S(s) => KeyAttr::S(s.clone()),
            AttributeValue::N(n) => KeyAttr::N(n.clone()),
            other => {
                tracing::error!(attribute = %name, kind = ?other, "unsupported key attribute type in cursor");
                return None;
            }
        };
        attrs.insert(name.clone(), attr);
    }
    let payload = Payload {
        v: VERSION,
        scope: scope.to_string(),
        key: attrs,
    };
    let json = serde_json::to_vec(&payload).ok()?;
    Some(URL_SAFE_NO_PAD.encode(json))
}

/// Decodes a cursor issued for `scope` whose key has exactly the attributes `expected`.
pub fn decode(
    scope: &str,
    cursor: &str,
    expected: &[&str],
) -> Result<HashMap<String, AttributeValue>, ApiError> {
    let invalid = || ApiError::validation("cursor is invalid or belongs to a different listing");
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_CHARS {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let payload: Payload = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if payload.v != VERSION || payload.scope != scope || payload.key.len() != expected.len() {
        return Err(invalid());
    }
    let mut key = HashMap::with_capacity(expected.len());
    for name in expected {
        let value = match payload.key.get(*name) {
            Some(KeyAttr::S(s)) if !s.is_empty() => AttributeValue::S(s.clone()),
            Some(KeyAttr::N(n)) if n.parse::<f64>().is_ok() => AttributeValue::N(n.clone()),
            _ => return Err(invalid()),
        };
        key.insert((*name).to_string(), value);
    }
    Ok(key)
}

/// One page of a listing; `next_cursor` is absent on the last page.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("id".to_string(), AttributeValue::S("abc".into())),
            ("seq".to_string(), AttributeValue::N("42".into())),
        ])
    }

    #[test]
    fn round_trips_within_its_scope() {
        let cursor = encode("items", &key()).unwrap();
        assert_eq!(decode("items", &cursor, &["id", "seq"]).unwrap(), key());
    }

    #[test]
    fn rejects_other_scopes_shapes_and_garbage() {
        let cursor = encode("items", &key()).unwrap();
        assert!(decode("items/status/active", &cursor, &["id", "seq"]).is_err());
        assert!(decode("items", &cursor, &["id"]).is_err());
        assert!(decode("items", &cursor, &["id", "other"]).is_err());
        for bad in ["", "not base64!", "eyJ2IjoxfQ", &"A".repeat(5000)] {
            let err = decode("items", bad, &["id", "seq"]).unwrap_err();
            assert_eq!(err.status, http::StatusCode::BAD_REQUEST, "{bad}");
        }
    }
}
