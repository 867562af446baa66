//! Who is calling: the person API Gateway's Cognito user pool authorizer verified, read from
//! the claims it hands the function (`requestContext.authorizer.claims`, every value a string;
//! docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-integrate-with-cognito.html).
//! Identity comes from here only, never from a body, path or header the caller writes.
//!
//! A route that reaches a function without claims was deployed without its authorizer: the
//! function refuses it (401) rather than serve an anonymous caller.

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;

use crate::error::ApiError;

/// The `staff` group of the user pool (template.yaml `StaffGroup`).
pub const STAFF_GROUP: &str = "staff";

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The `sub` claim: the person's lasting id (an e-mail address can change).
    pub sub: String,
    /// The sign-in address, lower-cased (the pool's user names are case-insensitive).
    pub email: String,
    /// Whether Cognito verified `email` (by the code sent to it).
    pub email_verified: bool,
    /// The display name the person chose (`name`).
    pub name: String,
    /// `cognito:groups`.
    pub groups: Vec<String>,
}

impl Person {
    /// The person of an API Gateway REST request, or 401.
    pub fn of(req: &Request) -> Result<Self, ApiError> {
        let claims = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV1(context)) => context.authorizer.fields.get("claims"),
            _ => None,
        };
        claims
            .and_then(Self::from_claims)
            .ok_or_else(ApiError::unauthorized)
    }

    /// From the claims object; `None` without a `sub`.
    pub fn from_claims(claims: &Value) -> Option<Self> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or_default();
        let sub = text("sub");
        if sub.is_empty() {
            return None;
        }
        Some(Self {
            sub: sub.to_string(),
            email: text("email").to_lowercase(),
            email_verified: matches!(claims.get("email_verified"), Some(v) if v == "true" || v == true),
            name: text("name").to_string(),
            groups: groups(claims.get("cognito:groups")),
        })
    }

    pub fn is_staff(&self) -> bool {
        self.groups.iter().any(|g| g == STAFF_GROUP)
    }

    /// The person's address, when Cognito verified it; else 403.
    pub fn verified_email(&self) -> Result<&str, ApiError> {
        if self.email_verified && !self.email.is_empty() {
            Ok(&self.email)
        } else {
            Err(ApiError::forbidden("your e-mail address is not verified"))
        }
    }
}

/// `cognito:groups` as the authorizer passes it: a list, or one string that API Gateway has
/// flattened (`"a,b"`, and `"[a b]"` as REST APIs have been seen to send it).
fn groups(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(text)) => text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split([',', ' '])
            .filter(|g| !g.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_person_is_read_from_the_claims_api_gateway_passes() {
        let claims = json!({"sub": "u1", "email": "Ann@Example.com", "email_verified": "true",
            "name": "Ann Lee", "cognito:groups": "staff", "token_use": "id"});
        let ann = Person::from_claims(&claims).unwrap();
        assert_eq!(
            (ann.sub.as_str(), ann.email.as_str(), ann.name.as_str()),
            ("u1", "ann@example.com", "Ann Lee")
        );
        assert!(ann.email_verified && ann.is_staff());
        assert_eq!(ann.verified_email().unwrap(), "ann@example.com");

        let unverified = json!({"sub": "u2", "email": "b@example.com", "email_verified": "false"});
        let bob = Person::from_claims(&unverified).unwrap();
        assert_eq!(bob.verified_email().unwrap_err().status.as_u16(), 403);
        assert!(!bob.is_staff());
        assert_eq!(
            Person::from_claims(&json!({"email": "x@example.com"})),
            None
        );
    }

    #[test]
    fn groups_come_in_every_shape_the_authorizer_sends() {
        for (value, expected) in [
            (json!("staff"), vec!["staff"]),
            (json!("staff,admins"), vec!["staff", "admins"]),
            (json!("[staff admins]"), vec!["staff", "admins"]),
            (json!(["staff", "admins"]), vec!["staff", "admins"]),
            (json!(""), vec![]),
        ] {
            assert_eq!(groups(Some(&value)), expected, "{value}");
        }
        assert!(groups(None).is_empty());
    }
}
