//! The domain crate every Lambda in this workspace depends on.
//!
//! Functions' `main.rs` only wire clients; their `lib.rs` route and call into here. Validation,
//! key design, error mapping and response shaping live in this crate, once.

pub mod appointments;
pub mod approval;
pub mod batch;
pub mod chat;
pub mod config;
pub mod correlation;
pub mod cursor;
pub mod dynamo;
pub mod error;
pub mod items;
pub mod logging;
pub mod person;
pub mod photos;
pub mod rest;
pub mod sdk;
pub mod telemetry;
pub mod tickets;
pub mod timestamp;
pub mod validate;

pub use error::ApiError;
