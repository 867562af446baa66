//! What CloudFormation does: the template as it receives it (the SAM transform's output, see
//! [`template`]), intrinsic functions, and the resources created in the emulator ([`provision`]).

pub mod provision;
pub mod template;
