//! A pool's password policy as Cognito reads it. In the user pools API model, each of
//! `PasswordPolicyType`'s `Require*` flags defaults to `false`, so the AWS SDKs leave a `false`
//! flag out of `CreateUserPool` and `UpdateUserPool` (the Rust SDK's serializer writes a flag
//! only when it is true). moto reads an absent flag as `true` and would then refuse every
//! password without an upper-case letter, a digit and a symbol, whatever the template says; this
//! layer writes the absent flags out as the `false` Cognito takes them for.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use super::CognitoCall;
use crate::gate::body::BufferedRequest;

/// The flags whose absence means `false` (the API reference's `PasswordPolicyType`).
const FLAGS: [&str; 4] = [
    "RequireUppercase",
    "RequireLowercase",
    "RequireNumbers",
    "RequireSymbols",
];

/// `body` with the absent flags of its password policy written out; `None` when it has no
/// password policy (Cognito's default policy then applies, as moto's does).
fn with_flags_written_out(mut body: Value) -> Option<Value> {
    let policy = body
        .pointer_mut("/Policies/PasswordPolicy")?
        .as_object_mut()?;
    for flag in FLAGS {
        policy.entry(flag).or_insert(json!(false));
    }
    Some(body)
}

/// Layer: `CreateUserPool` and `UpdateUserPool` reach the emulator with every password-policy
/// flag explicit.
pub async fn absent_flags_are_false(request: Request, next: Next) -> Response {
    let call = CognitoCall::of(&request);
    if !matches!(call.operation.as_str(), "CreateUserPool" | "UpdateUserPool") {
        return next.run(request).await;
    }
    let Some(body) = with_flags_written_out(call.body) else {
        return next.run(request).await;
    };
    let bytes = Bytes::from(body.to_string());
    let (mut parts, _) = request.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    if let Some(buffered) = parts.extensions.get_mut::<BufferedRequest>() {
        buffered.body = bytes.clone();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_flags_become_false_and_given_ones_stay() {
        let body = json!({"PoolName": "p", "Policies": {"PasswordPolicy": {
            "MinimumLength": 12, "RequireNumbers": true}}});
        let written = with_flags_written_out(body).unwrap();
        assert_eq!(
            written["Policies"]["PasswordPolicy"],
            json!({"MinimumLength": 12, "RequireNumbers": true, "RequireUppercase": false,
                "RequireLowercase": false, "RequireSymbols": false})
        );
    }

    #[test]
    fn without_a_password_policy_the_default_policy_stays() {
        assert_eq!(with_flags_written_out(json!({"PoolName": "p"})), None);
        let other_policy = json!({"Policies": {"SignInPolicy": {}}});
        assert_eq!(with_flags_written_out(other_policy), None);
    }
}
