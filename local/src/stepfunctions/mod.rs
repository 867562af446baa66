//! Step Functions where moto differs from AWS
//! (docs.aws.amazon.com/step-functions/latest/apireference/Welcome.html):
//! - [`state_machines`]: the state machines whose integrations run inside the emulator, and
//!   whose role their calls carry;
//! - [`task_tokens`]: each token's issuer, and `TaskTimedOut` for a task that is over.

pub mod state_machines;
pub mod task_tokens;
