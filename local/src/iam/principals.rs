//! Who acts, and the resource-based policies on what they act on
//! (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): each
//! role by its access key, and moto's Step Functions acting for the state machine whose
//! definition sends to the queue it calls.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{EMULATOR_STATES_KEY, ResourcePolicyRecord, RoleRecord, policy};
use crate::aws_errors::AwsError;
use crate::gate::audit::{Audit, refused};
use crate::gate::body::buffered;
use crate::gate::control::{ControlError, parse};
use crate::iam::actions::call_of;
use crate::iam::sigv4::caller;
use crate::stepfunctions::state_machines::{StateMachines, sent_message};

/// Roles by access key, and resource-based policies by resource ARN.
pub struct Principals {
    roles: RwLock<HashMap<String, RoleRecord>>,
    /// A bucket or queue has one policy: a new one replaces it, as in AWS.
    resource_policies: RwLock<HashMap<String, Value>>,
    state_machines: Arc<StateMachines>,
    audit: Arc<Audit>,
}

impl Principals {
    pub fn new(state_machines: Arc<StateMachines>, audit: Arc<Audit>) -> Self {
        Self {
            roles: RwLock::default(),
            resource_policies: RwLock::default(),
            state_machines,
            audit,
        }
    }

    pub fn role(&self, access_key: &str) -> Option<RoleRecord> {
        self.roles.read().expect("roles").get(access_key).cloned()
    }

    /// The role moto's Step Functions acts for: that of the state machine whose definition sends
    /// to the queue in `body`.
    fn state_machine_role(&self, body: &[u8]) -> Option<RoleRecord> {
        let (queue_url, _) = sent_message(body)?;
        let sending = self.state_machines.sending_to(&queue_url);
        let machine = sending.first()?;
        self.role(&machine.role_access_key)
    }

    /// The resource-based policy `resource` falls under (an S3 object under its bucket's).
    pub fn resource_policy_for(&self, resource: &str) -> Option<Value> {
        let owner = match resource.strip_prefix("arn:aws:s3:::") {
            Some(rest) => format!("arn:aws:s3:::{}", rest.split('/').next().unwrap_or(rest)),
            None => resource.to_string(),
        };
        let policies = self.resource_policies.read().expect("resource policies");
        let statements: Vec<Value> = policy::statements(policies.get(&owner)?)
            .into_iter()
            .cloned()
            .collect();
        Some(json!({"Statement": statements}))
    }
}

/// Layer: the acting role, as a [`RoleRecord`] extension; a key no role has is refused.
pub async fn resolve_role(
    State(principals): State<Arc<Principals>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = caller(&request);
    let role = if caller.access_key == EMULATOR_STATES_KEY {
        principals.state_machine_role(&buffered(&request).body)
    } else {
        principals.role(&caller.access_key)
    };
    let Some(role) = role else {
        let call = call_of(&request);
        refused(&format!(
            "unknown access key {} ({} {})",
            caller.access_key, caller.service, call.operation
        ));
        return AwsError::access_denied(
            &caller.service,
            "The security token included in the request is invalid",
        )
        .into_response();
    };
    request.extensions_mut().insert(role);
    next.run(request).await
}

pub fn role_of(request: &Request) -> &RoleRecord {
    request
        .extensions()
        .get::<RoleRecord>()
        .expect("iam::principals::resolve_role runs first")
}

/// `POST /_local/iam/roles`: the deployer registers a role (and the audit records it).
pub async fn register_role(
    State(principals): State<Arc<Principals>>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let role: RoleRecord = parse(&body)?;
    principals.audit.role(&role);
    principals
        .roles
        .write()
        .expect("roles")
        .insert(role.access_key_id.clone(), role);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /_local/iam/resource-policies`: a bucket's or queue's policy, replacing its last.
pub async fn register_resource_policy(
    State(principals): State<Arc<Principals>>,
    body: Bytes,
) -> Result<StatusCode, ControlError> {
    let record: ResourcePolicyRecord = parse(&body)?;
    principals
        .resource_policies
        .write()
        .expect("resource policies")
        .insert(record.resource, record.policy);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_falls_under_its_buckets_policy() {
        let principals = Principals::new(Arc::default(), Arc::default());
        principals.resource_policies.write().unwrap().insert(
            "arn:aws:s3:::photos".into(),
            json!({"Statement": [{"Effect": "Deny", "Action": "s3:*"}]}),
        );
        let policy = principals
            .resource_policy_for("arn:aws:s3:::photos/a/b.jpg")
            .unwrap();
        assert_eq!(policy["Statement"][0]["Effect"], "Deny");
        assert!(
            principals
                .resource_policy_for("arn:aws:s3:::other/x")
                .is_none()
        );
    }

    #[test]
    fn step_functions_acts_as_the_state_machine_sending_to_the_queue() {
        let machines = Arc::new(StateMachines::default());
        machines.register(crate::iam::StateMachineRecord {
            arn: "arn:sm".into(),
            role_access_key: "SMKEY".into(),
            queue_urls: vec!["http://q/123456789012/approvals".into()],
            token_fields: vec![],
        });
        let principals = Principals::new(machines, Arc::default());
        let role = RoleRecord {
            access_key_id: "SMKEY".into(),
            stack: "s".into(),
            stack_aliases: vec![],
            logical_id: "StateMachineRole".into(),
            arn: "arn:aws:iam::1:role/sm".into(),
            policies: vec![],
            timeout_ms: None,
        };
        principals
            .roles
            .write()
            .unwrap()
            .insert("SMKEY".into(), role);
        let body = br#"{"QueueUrl":"http://q/123456789012/approvals","MessageBody":"{}"}"#;
        assert_eq!(
            principals.state_machine_role(body).unwrap().logical_id,
            "StateMachineRole"
        );
        let form = b"Action=SendMessage&QueueUrl=http%3A%2F%2Fq%2F123456789012%2Fother";
        assert!(principals.state_machine_role(form).is_none());
    }
}
