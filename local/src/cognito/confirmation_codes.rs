//! Confirmation codes as Cognito sends and checks them
//! (docs.aws.amazon.com/cognito/latest/developerguide/signing-up-users-in-your-app.html,
//! .../API_ConfirmSignUp.html, .../API_ForgotPassword.html, .../API_ConfirmForgotPassword.html):
//! a sign-up mails a code valid for 24 hours and a password reset one valid for 1 hour, to the
//! address being confirmed, in the pool's `VerificationMessageTemplate`; a wrong code is
//! `CodeMismatchException`, an old one `ExpiredCodeException`; confirming a sign-up verifies
//! the address (`email_verified`). moto sends nothing, confirms a sign-up with any code, leaves
//! `email_verified` unset, resets a password with any code under no password policy, and has no
//! `ResendConfirmationCode`: this room does each as Cognito does.
//!
//! The mail goes to the emulator's SES, from Cognito's default sender, so it lands in the local
//! mailbox (`GET /_local/mail`) like any other mail of the stack.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::app_clients::{AppClientRecord, AppClients};
use super::{CognitoCall, cognito_error};
use crate::aws_errors::AwsError;
use crate::emulator::{sdk_config, sdk_error};
use crate::gate::audit::refused;
use crate::gate::body::read_response;

/// Cognito's sender when a pool's `EmailConfiguration` is `COGNITO_DEFAULT`.
pub const COGNITO_SENDER: &str = "no-reply@verificationemail.com";
/// moto answers `ForgotPassword` with its own code in this header; AWS sends no such header.
const MOTO_RESET_CODE_HEADER: &str = "x-moto-forgot-password-confirmation-code";

/// What a code confirms, and how long it is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    SignUp,
    PasswordReset,
}

impl Purpose {
    fn lifetime(self) -> Duration {
        match self {
            Self::SignUp => Duration::from_secs(24 * 3600),
            Self::PasswordReset => Duration::from_secs(3600),
        }
    }
}

type Key = (String, String, Purpose);

/// The codes sent and not yet used, per pool, user and purpose (a new code replaces the old).
#[derive(Debug, Default)]
pub struct Codes(Mutex<HashMap<Key, (String, Instant)>>);

impl Codes {
    /// A new six-digit code for `user` of `pool`, valid from `now`.
    pub fn issue(&self, pool: &str, user: &str, purpose: Purpose, now: Instant) -> String {
        // Not a secret worth a CSPRNG: the local stack's codes only need to be unguessed by tests.
        let code = format!("{:06}", fastrand::u32(0..1_000_000));
        let key = (pool.to_string(), user.to_string(), purpose);
        let expires = now + purpose.lifetime();
        let mut codes = self.0.lock().expect("codes");
        codes.insert(key, (code.clone(), expires));
        code
    }

    /// Whether a code for `user` is waiting.
    pub fn is_pending(&self, pool: &str, user: &str, purpose: Purpose) -> bool {
        let key = (pool.to_string(), user.to_string(), purpose);
        self.0.lock().expect("codes").contains_key(&key)
    }

    /// `code` checked against the one sent, in Cognito's errors (none sent: a mismatch, as
    /// Cognito answers an unknown user when it prevents user-existence errors).
    pub fn check(
        &self,
        (pool, user, purpose): (&str, &str, Purpose),
        code: &str,
        now: Instant,
    ) -> Result<(), AwsError> {
        let key = (pool.to_string(), user.to_string(), purpose);
        let codes = self.0.lock().expect("codes");
        match codes.get(&key) {
            Some((_, expires)) if now >= *expires => Err(cognito_error(
                "ExpiredCodeException",
                "Invalid code provided, please request a code again.",
            )),
            Some((sent, _)) if sent == code => Ok(()),
            _ => Err(cognito_error(
                "CodeMismatchException",
                "Invalid verification code provided, please try again.",
            )),
        }
    }

    /// A used code is gone.
    pub fn clear(&self, pool: &str, user: &str, purpose: Purpose) {
        let key = (pool.to_string(), user.to_string(), purpose);
        self.0.lock().expect("codes").remove(&key);
    }
}

/// The room: the codes, the clients they belong to, and the emulator the mail goes to.
pub struct ConfirmationCodes {
    pub codes: Codes,
    clients: Arc<AppClients>,
    emulator: String,
    sdk: OnceCell<aws_config::SdkConfig>,
}

impl ConfirmationCodes {
    pub fn new(clients: Arc<AppClients>, emulator: &str) -> Self {
        Self {
            codes: Codes::default(),
            clients,
            emulator: emulator.to_string(),
            sdk: OnceCell::new(),
        }
    }

    /// SDK configuration for the emulator itself (these calls are Cognito's, not a caller's).
    async fn sdk(&self) -> &aws_config::SdkConfig {
        self.sdk.get_or_init(|| sdk_config(&self.emulator)).await
    }

    /// Mails `code` to `to` in the client's pool's verification message.
    async fn mail(&self, client: &AppClientRecord, to: &str, code: &str) -> Result<(), String> {
        let ses = aws_sdk_sesv2::Client::new(self.sdk().await);
        // Cognito's own sender is verified in its account, not the stack's; the emulator needs
        // it as an identity (an existing one is fine).
        let _ = ses
            .create_email_identity()
            .email_identity(COGNITO_SENDER)
            .send()
            .await;
        let text = client.verification.message.replace("{####}", code);
        let content = |data: &str| aws_sdk_sesv2::types::Content::builder().data(data).build();
        let message = aws_sdk_sesv2::types::Message::builder()
            .subject(content(&client.verification.subject).map_err(|e| e.to_string())?)
            .body(
                aws_sdk_sesv2::types::Body::builder()
                    .text(content(&text).map_err(|e| e.to_string())?)
                    .build(),
            )
            .build();
        let destination = aws_sdk_sesv2::types::Destination::builder().to_addresses(to);
        ses.send_email()
            .from_email_address(COGNITO_SENDER)
            .destination(destination.build())
            .content(
                aws_sdk_sesv2::types::EmailContent::builder()
                    .simple(message)
                    .build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(sdk_error)
    }

    /// A new code for the call's user, mailed; the delivery details Cognito answers with.
    async fn send_code(&self, client: &AppClientRecord, call: &CognitoCall, purpose: Purpose) {
        let code = self.codes.issue(
            &client.user_pool_id,
            &call.username(),
            purpose,
            Instant::now(),
        );
        if let Err(why) = self.mail(client, &address(call), &code).await {
            refused(&format!("the confirmation code could not be mailed: {why}"));
        }
    }

    /// Marks the user's address verified, as confirming a sign-up does in Cognito.
    async fn verify_address(&self, client: &AppClientRecord, user: &str) -> Result<(), String> {
        let cognito = aws_sdk_cognitoidentityprovider::Client::new(self.sdk().await);
        let verified = aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
            .name("email_verified")
            .value("true")
            .build()
            .map_err(|e| e.to_string())?;
        cognito
            .admin_update_user_attributes()
            .user_pool_id(&client.user_pool_id)
            .username(user)
            .user_attributes(verified)
            .send()
            .await
            .map(drop)
            .map_err(sdk_error)
    }
}

/// The address a code goes to: the `email` attribute of a sign-up, else the user name (the
/// pools here sign in with their e-mail address).
fn address(call: &CognitoCall) -> String {
    let attributes = call.body["UserAttributes"].as_array();
    let email = attributes
        .into_iter()
        .flatten()
        .find(|a| a["Name"] == "email")
        .and_then(|a| a["Value"].as_str());
    email.unwrap_or(call.field("Username")).to_string()
}

/// `CodeDeliveryDetails` as Cognito masks an address (`a***@e***`).
pub fn delivery_details(address: &str) -> Value {
    let (local, domain) = address.split_once('@').unwrap_or((address, ""));
    let first = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    json!({
        "Destination": format!("{}***@{}***", first(local), first(domain)),
        "DeliveryMedium": "EMAIL",
        "AttributeName": "email",
    })
}

fn answer(body: &Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let json = axum::http::HeaderValue::from_static("application/x-amz-json-1.1");
    response.headers_mut().insert("content-type", json);
    response
}

/// Layer (public operations): codes sent on `SignUp`, `ResendConfirmationCode` and
/// `ForgotPassword`, checked on `ConfirmSignUp` and `ConfirmForgotPassword`.
pub async fn send_and_check(
    State(room): State<Arc<ConfirmationCodes>>,
    request: Request,
    next: Next,
) -> Response {
    let call = CognitoCall::of(&request);
    let purpose = match call.operation.as_str() {
        "SignUp" | "ConfirmSignUp" | "ResendConfirmationCode" => Purpose::SignUp,
        "ForgotPassword" | "ConfirmForgotPassword" => Purpose::PasswordReset,
        _ => return next.run(request).await,
    };
    let Some(client) = room.clients.get(call.field("ClientId")) else {
        return call.unknown_client().into_response();
    };
    let key = (client.user_pool_id.as_str(), call.username(), purpose);
    let code_checked = match call.operation.as_str() {
        "ConfirmSignUp" | "ConfirmForgotPassword" => {
            let code = call.field("ConfirmationCode");
            let checked = room
                .codes
                .check((key.0, &key.1, purpose), code, Instant::now());
            let policy = match call.operation.as_str() {
                "ConfirmForgotPassword" => client.password_policy.check(call.field("Password")),
                _ => Ok(()),
            };
            if let Err(refusal) = checked.and(policy) {
                return refusal.into_response();
            }
            true
        }
        _ => false,
    };
    if call.operation == "ResendConfirmationCode" {
        return resend(&room, &client, &call).await;
    }
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    if code_checked {
        room.codes.clear(key.0, &key.1, purpose);
        if purpose == Purpose::SignUp
            && let Err(why) = room.verify_address(&client, call.field("Username")).await
        {
            refused(&format!(
                "the confirmed address was not marked verified: {why}"
            ));
        }
        return response;
    }
    sent(&room, &client, &call, response).await
}

/// After a sign-up or a reset request the emulator accepted: the code sent, the answer's
/// delivery details Cognito's, moto's own code header gone.
async fn sent(
    room: &ConfirmationCodes,
    client: &AppClientRecord,
    call: &CognitoCall,
    response: Response,
) -> Response {
    let (parts, body) = read_response(response).await;
    let reset_known = parts.headers.contains_key(MOTO_RESET_CODE_HEADER);
    let mut answered: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    let signed_up = call.operation == "SignUp" && answered["UserConfirmed"] == false;
    // An unknown user's reset is answered alike (user-existence errors), but nothing is sent.
    if signed_up || reset_known {
        let purpose = if signed_up {
            Purpose::SignUp
        } else {
            Purpose::PasswordReset
        };
        room.send_code(client, call, purpose).await;
    }
    answered["CodeDeliveryDetails"] = delivery_details(&address(call));
    // A fresh answer: moto's code header does not reach the caller.
    answer(&answered)
}

/// `ResendConfirmationCode`, which moto lacks: a new code to a user still unconfirmed; an
/// unknown or confirmed user is answered alike when the client prevents user-existence errors.
async fn resend(
    room: &ConfirmationCodes,
    client: &AppClientRecord,
    call: &CognitoCall,
) -> Response {
    let user = call.username();
    if room
        .codes
        .is_pending(&client.user_pool_id, &user, Purpose::SignUp)
    {
        room.send_code(client, call, Purpose::SignUp).await;
    } else if !client.prevent_user_existence_errors {
        let why = "Username/client id combination not found.";
        return cognito_error("UserNotFoundException", why).into_response();
    }
    answer(&json!({"CodeDeliveryDetails": delivery_details(&address(call))}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_refused_when_wrong_or_old_and_taken_when_right() {
        let codes = Codes::default();
        let now = Instant::now();
        let code = codes.issue("p", "ann@example.com", Purpose::SignUp, now);
        assert_eq!(code.len(), 6);
        let key = ("p", "ann@example.com", Purpose::SignUp);
        let wrong = if code == "000000" { "000001" } else { "000000" };
        let mismatch = codes.check(key, wrong, now).unwrap_err();
        assert_eq!(mismatch.code, "CodeMismatchException");
        assert!(
            codes
                .check(key, &code, now + Duration::from_secs(3600))
                .is_ok()
        );
        let day_later = now + Duration::from_secs(24 * 3600);
        let expired = codes.check(key, &code, day_later).unwrap_err();
        assert_eq!(expired.code, "ExpiredCodeException");
        // A reset code lasts an hour, and is not a sign-up code.
        let reset = codes.issue("p", "ann@example.com", Purpose::PasswordReset, now);
        let reset_key = ("p", "ann@example.com", Purpose::PasswordReset);
        assert!(
            codes
                .check(reset_key, &reset, now + Duration::from_secs(3599))
                .is_ok()
        );
        assert!(
            codes
                .check(reset_key, &reset, now + Duration::from_secs(3600))
                .is_err()
        );
        // Another user, or nothing sent: a mismatch, never a hint that the user exists.
        let other = codes.check(("p", "bob@example.com", Purpose::SignUp), &code, now);
        assert_eq!(other.unwrap_err().code, "CodeMismatchException");
        codes.clear("p", "ann@example.com", Purpose::SignUp);
        assert!(codes.check(key, &code, now).is_err());
    }

    #[test]
    fn delivery_details_mask_the_address() {
        let details = delivery_details("ann@example.com");
        assert_eq!(details["Destination"], "a***@e***");
        assert_eq!(details["DeliveryMedium"], "EMAIL");
    }
}
