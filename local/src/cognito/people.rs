//! People made by the deployer, as an operator would add them, for the tests and for a curl
//! user's token (`local-stack token`): `AdminCreateUser` without an invitation and with the
//! address marked verified, `AdminSetUserPassword` (permanent), then the web app's sign-in
//! (`InitiateAuth`, `USER_PASSWORD_AUTH`). A person signing up by themselves goes through the
//! mailed code instead ([`super::confirmation_codes`]).

use aws_sdk_cognitoidentityprovider as idp;
use idp::types::{AttributeType, AuthFlowType, MessageActionType};

/// A confirmed person, signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub email: String,
    pub name: String,
    pub password: String,
    /// What the REST API's authorizer takes, as is, in `Authorization`.
    pub id_token: String,
    pub access_token: String,
}

/// Where people are made: the pool and the web app's client of it.
#[derive(Debug, Clone)]
pub struct Pool<'a> {
    pub pool_id: &'a str,
    pub client_id: &'a str,
}

impl Pool<'_> {
    /// `email` (its verified address, the sign-in name) with `name` and `password`, signed in.
    pub async fn person(
        &self,
        sdk: &aws_config::SdkConfig,
        email: &str,
        name: &str,
        password: &str,
    ) -> Result<SignedIn, String> {
        let client = idp::Client::new(sdk);
        let attribute = |name: &str, value: &str| {
            AttributeType::builder()
                .name(name)
                .value(value)
                .build()
                .map_err(|e| e.to_string())
        };
        client
            .admin_create_user()
            .user_pool_id(self.pool_id)
            .username(email)
            .message_action(MessageActionType::Suppress)
            .user_attributes(attribute("email", email)?)
            .user_attributes(attribute("email_verified", "true")?)
            .user_attributes(attribute("name", name)?)
            .send()
            .await
            .map_err(|e| format!("AdminCreateUser: {}", crate::emulator::sdk_error(&e)))?;
        client
            .admin_set_user_password()
            .user_pool_id(self.pool_id)
            .username(email)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| format!("AdminSetUserPassword: {}", crate::emulator::sdk_error(&e)))?;
        let signed_in = client
            .initiate_auth()
            .client_id(self.client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(|e| format!("InitiateAuth: {}", crate::emulator::sdk_error(&e)))?;
        let tokens = signed_in
            .authentication_result
            .ok_or("InitiateAuth answered a challenge, not tokens")?;
        Ok(SignedIn {
            email: email.to_string(),
            name: name.to_string(),
            password: password.to_string(),
            id_token: tokens.id_token.ok_or("no ID token")?,
            access_token: tokens.access_token.ok_or("no access token")?,
        })
    }
}
