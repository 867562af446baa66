//! Every (action, resource) a call needs, allowed by the role's policies and the resource's
//! policy or refused in the service's AccessDenied shape
//! (docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html), each
//! decision audited. Also answers the local stand-ins' questions (`@connections`, the pipe's
//! enrichment): may this key do this?

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::actions::{Call, call_of};
use super::policy::{self, Check, Decision, Principal};
use super::principals::{Principals, role_of};
use super::{AuthorizeAnswer, AuthorizeRequest, RoleRecord, session_arn};
use crate::aws_errors::AwsError;
use crate::gate::audit::{Audit, AuditEntry, refused};
use crate::gate::control::{ControlError, parse};

/// Policy evaluation with its audit.
pub struct Authorization {
    pub principals: Arc<Principals>,
    pub audit: Arc<Audit>,
}

impl Authorization {
    /// Evaluates and audits one (action, resource) of `call` for `role`.
    pub fn decide(&self, role: &RoleRecord, call: &Call, action: &str, resource: &str) -> Decision {
        let resource_policy = self.principals.resource_policy_for(resource);
        let decision = policy::evaluate(
            &Principal::Role {
                arn: role.arn.clone(),
            },
            &role.policies,
            resource_policy.as_ref(),
            &Check {
                action,
                resource,
                context: &call.context,
            },
        );
        self.audit.call(&AuditEntry {
            stack: role.stack.clone(),
            role: role.logical_id.clone(),
            service: call.service.clone(),
            operation: call.operation.clone(),
            action: action.to_string(),
            resource: resource.to_string(),
            allowed: decision.allowed(),
        });
        decision
    }

    /// The first of `call`'s checks `role` may not make, as AWS words the refusal.
    pub fn refusal(&self, role: &RoleRecord, call: &Call) -> Option<String> {
        call.checks.iter().find_map(|(action, resource)| {
            let decision = self.decide(role, call, action, resource);
            (!decision.allowed()).then(|| denial_message(role, action, resource, &decision))
        })
    }
}

/// AWS's AccessDenied text: who, what, on which resource, and which kind of policy said no.
pub fn denial_message(
    role: &RoleRecord,
    action: &str,
    resource: &str,
    decision: &Decision,
) -> String {
    let why = match decision {
        Decision::ExplicitDeny(_) => "with an explicit deny in a resource-based policy",
        _ => "because no identity-based policy allows the action",
    };
    format!(
        "User: {} is not authorized to perform: {action} on resource: {resource} {why}",
        session_arn(&role.arn)
    )
}

/// Layer: the call goes on only when every check is allowed.
pub async fn authorize(
    State(authorization): State<Arc<Authorization>>,
    request: Request,
    next: Next,
) -> Response {
    let (role, call) = (role_of(&request), call_of(&request));
    if call.checks.is_empty() {
        refused(&format!(
            "{}: {} {} names nothing to authorise",
            role.access_key_id, call.service, call.operation
        ));
        return AwsError::access_denied(&call.service, "nothing to authorise").into_response();
    }
    if let Some(message) = authorization.refusal(role, call) {
        eprintln!(
            "iam-gate: AccessDenied {} ({}): {message}",
            role.logical_id, call.operation
        );
        return AwsError::access_denied(&call.service, &message).into_response();
    }
    next.run(request).await
}

/// `POST /_local/iam/authorize`: a decision for a local stand-in of an AWS service.
pub async fn answer_question(
    State(authorization): State<Arc<Authorization>>,
    body: Bytes,
) -> Result<Json<AuthorizeAnswer>, ControlError> {
    let question: AuthorizeRequest = parse(&body)?;
    Ok(Json(authorization.answer(&question)))
}

impl Authorization {
    fn answer(&self, question: &AuthorizeRequest) -> AuthorizeAnswer {
        let Some(role) = self.principals.role(&question.access_key_id) else {
            refused(&format!("unknown access key {}", question.access_key_id));
            return AuthorizeAnswer {
                allowed: false,
                message: "The security token included in the request is invalid".into(),
            };
        };
        let (service, operation) = question
            .action
            .split_once(':')
            .unwrap_or((&question.action, ""));
        // The stand-ins are reached over AWS's TLS endpoints; the resource's policy, when it has
        // one, applies as to any call.
        let checks = vec![(question.action.clone(), question.resource.clone())];
        let mut call = Call::new(service, operation, checks);
        call.context = crate::iam::actions::secure_transport();
        match self.refusal(&role, &call) {
            None => AuthorizeAnswer {
                allowed: true,
                message: "allowed".to_string(),
            },
            Some(message) => {
                eprintln!("iam-gate: AccessDenied {}: {message}", role.logical_id);
                AuthorizeAnswer {
                    allowed: false,
                    message,
                }
            }
        }
    }
}
