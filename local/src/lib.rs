//! Runs this project's template.yaml against a local AWS emulator.
//!
//! - [`template`]: the template as data, with intrinsic functions resolved;
//! - [`provision`]: resources created in the emulator under a unique prefix;
//! - [`streams`]: DynamoDB streams read into Lambda-shaped event records;
//! - [`emulator`]: where the emulator is and how SDK clients reach it.

pub mod emulator;
pub mod pipes;
pub mod provision;
pub mod queues;
pub mod streams;
pub mod template;

pub use provision::Stack;
pub use template::Template;
