//! What API Gateway does: REST routes from the REST API's OpenAPI body and WebSocket routes
//! ([`apis`]), served with the `@connections` management API by the local [`gateway`]; the
//! checks a REST method makes before its integration runs are in [`rest`].

pub mod apis;
pub mod gateway;
pub mod rest;
