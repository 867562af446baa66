//! What the Lambda service does: runs each function's binary as a Lambda process ([`runtime`]),
//! and polls its event sources ([`sources`]: SQS, DynamoDB streams, schedules) and EventBridge
//! Pipes ([`pipes`]) under the principal AWS uses for each.

pub mod pipes;
pub mod queues;
pub mod runtime;
pub mod sources;
pub mod streams;
