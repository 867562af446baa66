//! IAM, enforced locally the way AWS evaluates it.
//!
//! Every principal that acts signs its requests with credentials of its own: each function
//! process and each event-source mapping with its function's role, the pipe with its role, the
//! state machine with its role (moto's Step Functions reaches SQS through the gate, see
//! [`crate::gate`]), presigned URLs with the signer's key. In the gate's pipeline, IAM names the
//! signer from the SigV4 credential scope ([`sigv4`]), derives the action, resources and
//! condition keys ([`actions`]), finds the acting role ([`principals`]), and evaluates the role's
//! policies and the resource's policy ([`policy`], [`authorization`]), refusing in the service's
//! own AccessDenied shape; it also answers the local `@connections` API's and the pipe runner's
//! questions. Nothing it cannot attribute is allowed.
//!
//! The deployer (the `test` key the provisioning and the tests' own assertions use) stands for
//! CloudFormation and the operator, who act with administrator rights; it is not checked.

pub mod actions;
pub mod authorization;
pub mod policy;
pub mod principals;
pub mod report;
pub mod sigv4;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The access key of the deployer (CloudFormation, the operator, test assertions).
pub const DEPLOYER_KEY: &str = "test";
/// The access key moto's Step Functions signs its service-integration calls with.
pub const EMULATOR_STATES_KEY: &str = "ak";
/// Secret of every local principal (signatures are attributed by key id, not verified).
pub const LOCAL_SECRET: &str = "local-secret-not-checked";

/// A role as the gate knows it: its credentials and its policies, resolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RoleRecord {
    pub access_key_id: String,
    /// The stack (name prefix) the role belongs to.
    pub stack: String,
    /// Other names of the stack's resources (stack id UUID, API ids), for the report.
    #[serde(default)]
    pub stack_aliases: Vec<String>,
    /// The role's logical id in the transformed template (`ItemsApiFunctionRole`).
    pub logical_id: String,
    pub arn: String,
    /// Inline policies and pinned copies of its AWS managed policies.
    pub policies: Vec<Value>,
    /// The timeout of what runs as this role (a function's `Timeout`), for latency faults.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A resource-based policy (bucket policy, queue policy) on a resource ARN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResourcePolicyRecord {
    pub resource: String,
    pub policy: Value,
}

/// A state machine whose service integrations run inside the emulator: the calls moto makes for
/// it (`sqs:sendMessage.waitForTaskToken`) are attributed to its role, and the task tokens it
/// sends are attributed to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateMachineRecord {
    pub arn: String,
    pub role_access_key: String,
    /// Queue URLs its definition sends to.
    pub queue_urls: Vec<String>,
    /// Message-body fields its definition fills with `$$.Task.Token`.
    pub token_fields: Vec<String>,
}

/// A question from a local stand-in for an AWS service (the `@connections` API, the pipe's
/// enrichment invocation): may this key do this?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    pub access_key_id: String,
    pub action: String,
    pub resource: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeAnswer {
    pub allowed: bool,
    pub message: String,
}

/// The access key of a role of a stack.
pub fn access_key_for(stack: &str, role_logical_id: &str) -> String {
    format!("LOCAL-{stack}-{role_logical_id}")
}

/// The role's ARN as a session: what AWS names in an AccessDenied message.
pub fn session_arn(role_arn: &str) -> String {
    let name = role_arn.rsplit('/').next().unwrap_or(role_arn);
    format!(
        "arn:aws:sts::{}:assumed-role/{name}/{name}",
        crate::emulator::ACCOUNT_ID
    )
}

/// The pinned copy of an AWS managed policy SAM attaches (`local/iam/managed/<Name>.json`).
pub fn managed_policy(arn: &str) -> Result<Value, String> {
    let name = arn.rsplit('/').next().unwrap_or(arn);
    let path = crate::workspace::project_root()
        .join("local/iam/managed")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "managed policy {arn} has no pinned copy at {}: {e} (add the AWS document there)",
            path.display()
        )
    })?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Registers principals and policies with the gate and asks it for decisions.
#[derive(Debug, Clone)]
pub struct GateClient {
    base: String,
    http: reqwest::Client,
}

impl GateClient {
    /// `endpoint` is the emulator endpoint the stack uses, which is the gate.
    pub fn new(endpoint: &str) -> Self {
        Self {
            base: format!("{}/_local/iam", endpoint.trim_end_matches('/')),
            http: reqwest::Client::new(),
        }
    }

    async fn post<T: Serialize>(&self, what: &str, body: &T) -> Result<reqwest::Response, String> {
        let mut request = self.http.post(format!("{}/{what}", self.base)).json(body);
        // The deployer's token, from the environment local/with-emulator.sh set up.
        if let Ok(token) = std::env::var("LOCAL_GATE_TOKEN") {
            request = request.header(crate::gate::control::ADMIN_HEADER, token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("the IAM gate did not answer ({e}); is AWS_ENDPOINT_URL the gate started by local/with-emulator.sh?"))?;
        if !response.status().is_success() {
            return Err(format!(
                "the IAM gate refused {what}: {}",
                response.text().await.unwrap_or_default() // an unreadable body: the status says it
            ));
        }
        Ok(response)
    }

    /// Registers a record with the gate at `/_local/iam/{what}`: a `RoleRecord` at `roles`, a
    /// `ResourcePolicyRecord` at `resource-policies`, a `StateMachineRecord` at
    /// `state-machines`, a bucket and its CORS rules (none: CORS is not enabled on it) at
    /// `bucket-cors`.
    pub async fn register<T: Serialize>(&self, what: &str, record: T) -> Result<(), String> {
        self.post(what, &record).await.map(drop)
    }

    /// Turns fault injection on (`Some(spec)`, see [`crate::faults`]) or off for a stack's
    /// principals.
    pub async fn set_faults(&self, stack: &str, spec: Option<&str>) -> Result<(), String> {
        self.post("faults", &serde_json::json!({"stack": stack, "spec": spec}))
            .await
            .map(drop)
    }

    /// What the injector did for a stack: attempts and faults per service.
    pub async fn faults(&self, stack: &str) -> Result<Value, String> {
        self.post("faults-summary", &serde_json::json!({"stack": stack}))
            .await?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn authorize(&self, question: &AuthorizeRequest) -> Result<AuthorizeAnswer, String> {
        self.post("authorize", question)
            .await?
            .json()
            .await
            .map_err(|e| e.to_string())
    }
}
