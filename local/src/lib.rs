//! Runs this project's template.yaml locally, the way AWS runs it, against an AWS emulator.
//!
//! Each module stands in for an AWS service:
//! - [`cloudformation`]: the SAM transform's output (what CloudFormation receives), intrinsic
//!   functions, and provisioning in the emulator;
//! - [`iam`]: every principal's credentials, policy evaluation, and the gate in front of the
//!   emulator that refuses what AWS would refuse;
//! - [`lambda`]: functions as Lambda processes, event-source mappings, pipes;
//! - [`apigateway`]: REST and WebSocket APIs and `@connections`;
//! - [`cloudwatch`]: metrics extracted from the functions' Embedded Metric Format log lines;
//! - [`emulator`]: where the emulator (behind the gate) is;
//! - [`faults`]: throttling, errors, cut connections and latency the gate injects on demand;
//! - [`dev`]: the start-up order of the whole system (`make dev`, the end-to-end tests);
//! - [`tour`]: the script `make dev` prints and the end-to-end tests run;
//! - [`web`]: the web app (`web/`) served as CloudFront serves it, with the template's headers;
//! - [`redrive`]: a DLQ's messages back to their source queue (`make redrive`).

pub mod apigateway;
pub mod cloudformation;
pub mod cloudwatch;
pub mod dev;
pub mod emulator;
pub mod faults;
pub mod iam;
pub mod lambda;
pub mod redrive;
pub mod s3_cors;
pub mod service_errors;
pub mod tour;
pub mod web;

pub use apigateway::{apis, gateway};
pub use cloudformation::{provision, template};
pub use lambda::{pipes, queues, runtime, sources, streams};
pub use provision::Stack;
pub use template::Template;
