//! What an app client and its user pool decide, which moto stores but ignores
//! (docs.aws.amazon.com/cognito/latest/developerguide/user-pool-settings-client-apps.html,
//! .../cognito-user-pool-managing-errors.html, .../user-pool-settings-policies.html): sign-in
//! only with the client's `ExplicitAuthFlows` ("Auth flow not enabled for this client"), an
//! unknown user answered as a wrong password when `PreventUserExistenceErrors` is `ENABLED`,
//! and the pool's password policy on a password reset (moto checks it on sign-up only).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{CognitoCall, cognito_error};
use crate::aws_errors::AwsError;
use crate::cloudformation::template::{items, scalar_string};
use crate::gate::body::read_response;
use crate::gate::control::{ControlError, parse};

/// An app client as the deployer registers it, with what the gate needs of its user pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppClientRecord {
    pub client_id: String,
    pub user_pool_id: String,
    /// `ALLOW_*` names, as the template writes them.
    pub explicit_auth_flows: Vec<String>,
    pub prevent_user_existence_errors: bool,
    pub password_policy: PasswordPolicy,
    pub verification: VerificationMessage,
}

/// `Policies.PasswordPolicy` of an `AWS::Cognito::UserPool`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordPolicy {
    pub minimum_length: usize,
    pub require_lowercase: bool,
    pub require_uppercase: bool,
    pub require_numbers: bool,
    pub require_symbols: bool,
}

/// The e-mail that carries a code: `VerificationMessageTemplate`'s subject and message, the code
/// in place of `{####}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationMessage {
    pub subject: String,
    pub message: String,
}

/// The registered app clients, by client id.
#[derive(Debug, Default)]
pub struct AppClients(RwLock<HashMap<String, AppClientRecord>>);

impl AppClients {
    pub fn get(&self, client_id: &str) -> Option<AppClientRecord> {
        self.0.read().expect("app clients").get(client_id).cloned()
    }

    pub fn insert(&self, record: AppClientRecord) {
        let mut clients = self.0.write().expect("app clients");
        clients.insert(record.client_id.clone(), record);
    }

    /// Whether a registered client belongs to `pool`.
    pub fn knows_pool(&self, pool: &str) -> bool {
        let clients = self.0.read().expect("app clients");
        clients.values().any(|c| c.user_pool_id == pool)
    }
}

/// `POST /_local/iam/cognito-app-clients`: the deployer registers an [`AppClientRecord`].
pub async fn register(
    State(clients): State<Arc<AppClients>>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    clients.insert(parse(&body)?);
    Ok(StatusCode::NO_CONTENT)
}

impl PasswordPolicy {
    /// From a pool's resolved properties; without a policy, Cognito's default (8 characters,
    /// every class required: the PasswordPolicy property reference).
    pub fn of(pool: &Value) -> Self {
        let policy = &pool["Policies"]["PasswordPolicy"];
        let flag = |name: &str| {
            policy.get(name).is_none_or(|v| {
                v.as_bool() == Some(true) || scalar_string(v).as_deref() == Some("true")
            })
        };
        Self {
            minimum_length: scalar_string(&policy["MinimumLength"])
                .and_then(|n| n.parse().ok())
                .unwrap_or(8), // Cognito's default minimum
            require_lowercase: flag("RequireLowercase"),
            require_uppercase: flag("RequireUppercase"),
            require_numbers: flag("RequireNumbers"),
            require_symbols: flag("RequireSymbols"),
        }
    }

    /// The first rule `password` breaks, in Cognito's words ("Password does not conform to
    /// policy: ...").
    pub fn check(&self, password: &str) -> Result<(), AwsError> {
        let rules: [(bool, &str); 5] = [
            (
                password.chars().count() < self.minimum_length,
                "Password not long enough",
            ),
            (
                self.require_lowercase && !password.chars().any(char::is_lowercase),
                "Password must have lowercase characters",
            ),
            (
                self.require_uppercase && !password.chars().any(char::is_uppercase),
                "Password must have uppercase characters",
            ),
            (
                self.require_numbers && !password.chars().any(|c| c.is_ascii_digit()),
                "Password must have numeric characters",
            ),
            (
                self.require_symbols && !password.chars().any(|c| c.is_ascii_punctuation()),
                "Password must have symbol characters",
            ),
        ];
        match rules.iter().find(|(broken, _)| *broken) {
            Some((_, why)) => Err(cognito_error(
                "InvalidPasswordException",
                &format!("Password does not conform to policy: {why}"),
            )),
            None => Ok(()),
        }
    }
}

impl VerificationMessage {
    /// From a pool's resolved properties, with Cognito's defaults.
    pub fn of(pool: &Value) -> Self {
        let template = &pool["VerificationMessageTemplate"];
        Self {
            subject: scalar_string(&template["EmailSubject"])
                .unwrap_or_else(|| "Your verification code".into()),
            message: scalar_string(&template["EmailMessage"])
                .unwrap_or_else(|| "Your verification code is {####}.".into()),
        }
    }
}

impl AppClientRecord {
    /// The record of an `AWS::Cognito::UserPoolClient` (resolved properties) of the pool
    /// `user_pool_id` (its resolved properties `pool`).
    pub fn of(client_id: &str, user_pool_id: &str, client: &Value, pool: &Value) -> Self {
        let flows = items(&client["ExplicitAuthFlows"]).iter();
        Self {
            client_id: client_id.to_string(),
            user_pool_id: user_pool_id.to_string(),
            explicit_auth_flows: flows.filter_map(scalar_string).collect(),
            prevent_user_existence_errors: scalar_string(&client["PreventUserExistenceErrors"])
                .as_deref()
                == Some("ENABLED"),
            password_policy: PasswordPolicy::of(pool),
            verification: VerificationMessage::of(pool),
        }
    }

    /// Whether `InitiateAuth`'s `AuthFlow` is one the client allows.
    pub fn allows_flow(&self, flow: &str) -> bool {
        let allowed = match flow {
            // The legacy name of the refresh flow.
            "REFRESH_TOKEN" | "REFRESH_TOKEN_AUTH" => "ALLOW_REFRESH_TOKEN_AUTH",
            other => return self.explicit_auth_flows.contains(&format!("ALLOW_{other}")),
        };
        self.explicit_auth_flows.iter().any(|f| f == allowed)
    }
}

/// Layer (public operations): `InitiateAuth` only with an allowed flow, and an unknown user
/// answered as a wrong password when the client prevents user-existence errors.
pub async fn enforce_sign_in_rules(
    State(clients): State<Arc<AppClients>>,
    request: Request,
    next: Next,
) -> Response {
    let call = CognitoCall::of(&request);
    if call.operation != "InitiateAuth" {
        return next.run(request).await;
    }
    let Some(client) = clients.get(call.field("ClientId")) else {
        return call.unknown_client().into_response();
    };
    let flow = call.field("AuthFlow");
    if !client.allows_flow(flow) {
        let why = format!("{flow} flow not enabled for this client");
        return cognito_error("InvalidParameterException", &why).into_response();
    }
    let response = next.run(request).await;
    if !client.prevent_user_existence_errors || response.status() != StatusCode::BAD_REQUEST {
        return response;
    }
    let (parts, body) = read_response(response).await;
    if super::error_type(&parts.headers, &body).as_deref() == Some("UserNotFoundException") {
        return cognito_error("NotAuthorizedException", "Incorrect username or password.")
            .into_response();
    }
    Response::from_parts(parts, body.into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A password-and-refresh client of `pool` that prevents user-existence errors.
    pub(crate) fn record(client_id: &str, pool: &str) -> AppClientRecord {
        let client = json!({"ExplicitAuthFlows": ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "PreventUserExistenceErrors": "ENABLED"});
        AppClientRecord::of(client_id, pool, &client, &pool_properties())
    }

    fn pool_properties() -> Value {
        json!({
            "Policies": {"PasswordPolicy": {"MinimumLength": 12, "RequireLowercase": false,
                "RequireUppercase": false, "RequireNumbers": "false", "RequireSymbols": false}},
            "VerificationMessageTemplate": {"EmailSubject": "Code", "EmailMessage": "It is {####}."}
        })
    }

    #[test]
    fn the_pools_password_policy_is_applied_in_cognitos_words() {
        let policy = PasswordPolicy::of(&pool_properties());
        assert!(policy.check("twelve chars").is_ok());
        let short = policy.check("eleven char").unwrap_err();
        assert_eq!(short.code, "InvalidPasswordException");
        assert_eq!(
            short.message,
            "Password does not conform to policy: Password not long enough"
        );
        // No policy in the template: Cognito's default, every class and 8 characters.
        let default = PasswordPolicy::of(&json!({}));
        assert!(default.check("Abcdef1!").is_ok());
        let no_symbol = default.check("Abcdefg1").unwrap_err();
        assert!(no_symbol.message.ends_with("symbol characters"));
    }

    #[test]
    fn only_the_clients_auth_flows_are_allowed() {
        let record = record("c1", "us-east-1_p");
        assert!(record.prevent_user_existence_errors);
        assert_eq!(record.verification.subject, "Code");
        for (flow, allowed) in [
            ("USER_PASSWORD_AUTH", true),
            ("REFRESH_TOKEN_AUTH", true),
            ("REFRESH_TOKEN", true),
            ("USER_SRP_AUTH", false),
            ("CUSTOM_AUTH", false),
        ] {
            assert_eq!(record.allows_flow(flow), allowed, "{flow}");
        }
    }
}
