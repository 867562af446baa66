//! Runs this project's template.yaml against a local AWS emulator.
//!
//! - [`template`]: the template as data, with intrinsic functions resolved;
//! - [`provision`]: resources created in the emulator under a unique prefix;
//! - [`streams`]: DynamoDB streams read into Lambda-shaped event records;
//! - [`emulator`]: where the emulator is and how SDK clients reach it;
//! - [`dev`]: the whole system running locally (`make dev`): [`runtime`] runs the functions as
//!   Lambda processes, [`gateway`] serves the [`apis`], [`sources`] runs the event sources.

pub mod apis;
pub mod dev;
pub mod emulator;
pub mod gateway;
pub mod pipes;
pub mod provision;
pub mod queues;
pub mod runtime;
pub mod sources;
pub mod streams;
pub mod template;

pub use provision::Stack;
pub use template::Template;
