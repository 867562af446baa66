//! Runs this project's template.yaml locally, the way AWS runs it, against an AWS emulator.
//!
//! Each module stands in for an AWS service (a "room": its state, its rules, its errors, its
//! tests), named after the service:
//! - [`cloudformation`]: the SAM transform's output (what CloudFormation receives), intrinsic
//!   functions, and provisioning in the emulator;
//! - [`gate`]: the proxy in front of the emulator, wiring the rooms below into one pipeline;
//! - [`iam`]: every principal's credentials, policy evaluation, authorisation;
//! - [`s3`], [`stepfunctions`], [`dynamodb_streams`], [`cognito`]: where moto is looser than
//!   those services;
//! - [`faults`]: throttling, errors, cut connections and latency the gate injects on demand;
//! - [`lambda`]: functions as Lambda processes, event-source mappings, pipes;
//! - [`apigateway`]: REST and WebSocket APIs and `@connections`;
//! - [`cloudwatch`]: metrics extracted from the functions' Embedded Metric Format log lines;
//! - [`cloudfront`]: the web app (`web/`) served as CloudFront serves it, with the template's
//!   response headers;
//! - [`aws_errors`]: each protocol's error shape, in one place;
//! - [`emulator`]: where the emulator (behind the gate) is; [`workspace`]: where the repository
//!   is;
//! - [`dev`]: the start-up order of the whole system (`make dev`, the end-to-end tests);
//! - [`tour`]: the script `make dev` prints and the end-to-end tests run;
//! - [`redrive`]: a DLQ's messages back to their source queue (`make redrive`).

pub mod apigateway;
pub mod aws_errors;
pub mod cloudformation;
pub mod cloudfront;
pub mod cloudwatch;
pub mod cognito;
pub mod dev;
pub mod dynamodb_streams;
pub mod emulator;
pub mod faults;
pub mod gate;
pub mod iam;
pub mod lambda;
pub mod redrive;
pub mod s3;
pub mod stepfunctions;
pub mod tour;
pub mod workspace;
