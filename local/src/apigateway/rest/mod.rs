//! What a REST API checks before a method's integration runs
//! (docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-integrate-with-cognito.html,
//! .../api-gateway-api-usage-plans.html): the method's authorizer first, then its API key, so
//! a request with neither is 401, a signed-in one without a key 403.
//! - [`cognito_authorizer`]: a Cognito user pool authorizer's token check and the claims it
//!   hands on.

pub mod cognito_authorizer;
