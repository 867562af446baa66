//! A stack of the template that is not provisioned, for the suites that read what the template
//! deploys without an emulator (routes, stages, keys). What only provisioning would tell (the
//! user pool's ARN in the REST API's authorizer, its client's id) gets a stand-in.

use std::sync::Arc;

use local_stack::cloudformation::provision::Stack;
use local_stack::cloudformation::template::{Physical, Template};

pub fn stack(template: Arc<Template>, name: &str) -> Stack {
    let mut stack = Stack::new(template, aws_config::SdkConfig::builder().build(), name);
    let pool = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_unprovisioned";
    let stand_ins: Vec<(String, Physical)> = stack
        .template
        .resources
        .iter()
        .filter_map(|(id, resource)| match resource.kind.as_str() {
            "AWS::Cognito::UserPool" => Some((id.clone(), Physical::new(id, [("Arn", pool)]))),
            "AWS::Cognito::UserPoolClient" => Some((id.clone(), Physical::new(id, []))),
            _ => None,
        })
        .collect();
    stack.resolver.physical.extend(stand_ins);
    stack
}
