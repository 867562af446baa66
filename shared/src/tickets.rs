//! Chat tickets: the credential a WebSocket `$connect` must carry. An API-key route
//! (`POST /rooms/{room}/tickets`) issues one for one room and one display name; it is short-lived
//! and signed (HMAC-SHA256 over the room, the name and the expiry) with the secret the stack
//! generates in Secrets Manager (`ChatTicketSecret`), so the WebSocket API is no longer open to
//! anyone who knows its URL, and a socket posts as the name its ticket was issued for.
//!
//! Checked in chat-connect rather than by a REQUEST authorizer: the `$connect` integration runs
//! anyway, so the check costs no second function (and no second cold start) on the handshake,
//! and the name it verifies is the one it stores. An authorizer would pay off with several
//! routes to guard; WebSocket APIs authorise only `$connect`.
//!
//! Format: `base64url(JSON claims) "." base64url(HMAC)`; the claims are not secret (the client
//! chose them), only unforgeable.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{ApiError, BackendError, classify_sdk_error};

/// How long a ticket opens a socket for (the client asks for one right before connecting).
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub room: String,
    pub user: String,
    /// Expiry, epoch seconds.
    pub exp: i64,
}

/// Why a ticket opens nothing (the handshake is refused with 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("no ticket: ask POST /rooms/{{room}}/tickets for one")]
    Missing,
    #[error("the ticket is not one this stack issued")]
    Forged,
    #[error("the ticket has expired: ask for a new one")]
    Expired,
}

impl From<TicketError> for ApiError {
    fn from(err: TicketError) -> Self {
        ApiError::new(
            http::StatusCode::UNAUTHORIZED,
            "invalid_ticket",
            err.to_string(),
        )
    }
}

/// Body of `POST /rooms/{room}/tickets`: a ticket is the caller's, under their own display name
/// (`user`, if sent, must be it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    #[serde(default, deserialize_with = "crate::validate::not_null")]
    pub user: Option<String>,
}

impl TicketRequest {
    /// The name the ticket carries: [`crate::chat::own_name`].
    pub fn validate(self, holder: &crate::person::Person) -> Result<String, ApiError> {
        crate::chat::own_name(holder, self.user.as_deref())
    }
}

/// The answer: the ticket, what it is for, and until when (RFC 3339).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IssuedTicket {
    pub ticket: String,
    pub room: String,
    pub user: String,
    pub expires_at: String,
}

/// Issues and checks tickets with one key.
#[derive(Clone)]
pub struct TicketSigner {
    key: Vec<u8>,
    ttl: Duration,
}

impl std::fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("TicketSigner")
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl TicketSigner {
    pub fn new(key: impl Into<Vec<u8>>, ttl: Duration) -> Self {
        Self {
            key: key.into(),
            ttl,
        }
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(payload.as_bytes());
        mac
    }

    /// A ticket for `room` and `user` (already validated names), valid until `now + ttl`.
    pub fn issue(&self, room: &str, user: &str, now: i64) -> (String, Claims) {
        let claims = Claims {
            room: room.to_string(),
            user: user.to_string(),
            exp: now + self.ttl.as_secs() as i64,
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let signature = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        (format!("{payload}.{signature}"), claims)
    }

    /// The claims of a ticket this key signed that has not expired at `now`.
    pub fn verify(&self, ticket: Option<&str>, now: i64) -> Result<Claims, TicketError> {
        let ticket = ticket
            .filter(|t| !t.is_empty())
            .ok_or(TicketError::Missing)?;
        let (payload, signature) = ticket.split_once('.').ok_or(TicketError::Forged)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TicketError::Forged)?;
        // Constant-time comparison.
        self.mac(payload)
            .verify_slice(&signature)
            .map_err(|_| TicketError::Forged)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TicketError::Forged)?;
        if claims.exp <= now {
            return Err(TicketError::Expired);
        }
        Ok(claims)
    }
}

/// The signing key, read from Secrets Manager on first use (not during init: a function that
/// never sees a ticket never pays the call) and kept for the process's life.
#[derive(Debug, Clone)]
pub struct TicketKey {
    client: aws_sdk_secretsmanager::Client,
    secret_arn: String,
    ttl: Duration,
    signer: std::sync::Arc<tokio::sync::OnceCell<TicketSigner>>,
}

impl TicketKey {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_arn: String, ttl: Duration) -> Self {
        Self {
            client,
            secret_arn,
            ttl,
            signer: Default::default(),
        }
    }

    pub async fn signer(&self) -> Result<&TicketSigner, BackendError> {
        self.signer
            .get_or_try_init(|| async {
                let secret = self
                    .client
                    .get_secret_value()
                    .secret_id(&self.secret_arn)
                    .send()
                    .await
                    .map_err(|e| classify_sdk_error("secretsmanager", &e))?;
                let key = secret
                    .secret_string()
                    .filter(|s| s.len() >= 32)
                    .ok_or_else(|| {
                        BackendError::failed("secretsmanager", "the ticket secret is too short")
                    })?;
                Ok(TicketSigner::new(key.as_bytes(), self.ttl))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TicketSigner {
        TicketSigner::new(b"k".repeat(64), Duration::from_secs(60))
    }

    #[test]
    fn a_ticket_opens_its_room_as_its_user_until_it_expires() {
        let (ticket, claims) = signer().issue("서울 ☕", "Zoë 👩🏽‍💻", 1_000);
        assert_eq!(claims.exp, 1_060);
        let checked = signer().verify(Some(&ticket), 1_059).unwrap();
        assert_eq!(
            (checked.room.as_str(), checked.user.as_str()),
            ("서울 ☕", "Zoë 👩🏽‍💻")
        );
        assert_eq!(
            signer().verify(Some(&ticket), 1_060),
            Err(TicketError::Expired)
        );
    }

    #[test]
    fn forged_tampered_or_missing_tickets_open_nothing() {
        let (ticket, _) = signer().issue("lobby", "ann", 1_000);
        let other_key = TicketSigner::new(b"x".repeat(64), Duration::from_secs(60));
        assert_eq!(
            other_key.verify(Some(&ticket), 1_001),
            Err(TicketError::Forged)
        );
        // Claims edited to another user, signature kept.
        let (payload, signature) = ticket.split_once('.').unwrap();
        let mut claims: Claims =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims.user = "boss".into();
        let edited = format!(
            "{}.{signature}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
        );
        assert_eq!(
            signer().verify(Some(&edited), 1_001),
            Err(TicketError::Forged)
        );
        for garbage in ["", "abc", "a.b", "..", "x.AAAA"] {
            assert!(signer().verify(Some(garbage), 1_001).is_err(), "{garbage}");
        }
        assert_eq!(signer().verify(None, 1_001), Err(TicketError::Missing));
        assert!(
            !format!("{:?}", signer()).contains("kkkk"),
            "the key is never printed"
        );
    }
}
