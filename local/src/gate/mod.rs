//! The gate: an HTTP proxy on loopback in front of the emulator that refuses what AWS would
//! refuse (moto evaluates no IAM and is looser than AWS in places). `local/with-emulator.sh`
//! starts it (`local-stack gate`) and exports its URL as `AWS_ENDPOINT_URL`; moto runs with
//! `MOTO_PORT` set to the gate's port, so the calls moto's Step Functions makes for a state
//! machine come back through it too.
//!
//! Wiring only: every AWS rule lives in the room (module) of the service it belongs to. A
//! request passes these layers in this order, each of which may answer it itself:
//!
//! 1. [`body::buffer`]: the body read once (the action and resource are in it);
//! 2. [`crate::s3::cors::answer_preflight`]: S3 answers a preflight from the bucket's rules;
//! 3. [`crate::cognito::public_operations::branch`]: Cognito's operations for people without
//!    AWS credentials (sign-up, sign-in, ...) and a pool's keys take their own road, through
//!    [`crate::cognito::confirmation_codes::send_and_check`] and
//!    [`crate::cognito::app_clients::enforce_sign_in_rules`] to the emulator, without IAM;
//! 4. [`crate::cognito::pool_policies::absent_flags_are_false`]: a pool's password-policy
//!    flags as Cognito reads them (absent is `false`);
//! 5. [`crate::iam::sigv4::identify_caller`]: the signer from the SigV4 scope, or refused;
//! 6. [`crate::s3::presigned_urls::refuse_mismatched`]: signed headers present, not expired;
//! 7. [`crate::iam::sigv4::pass_deployer`]: the deployer goes straight to the emulator;
//! 8. [`crate::iam::actions::name_the_call`]: the IAM action(s), resources, condition keys;
//! 9. [`crate::iam::principals::resolve_role`]: the role acting;
//! 10. [`crate::stepfunctions::task_tokens::resolve_issuer`],
//!     [`crate::stepfunctions::task_tokens::learn_sent_tokens`] and
//!     [`crate::dynamodb_streams::shard_iterators::resolve_stream`]: what a token or iterator
//!     names, and the tokens a state machine's message carries;
//! 11. [`crate::iam::authorization::authorize`]: every check allowed, or AccessDenied;
//! 12. [`crate::faults::inject`]: throttling, errors, cuts and latency, when on;
//! 13. [`crate::stepfunctions::task_tokens::track`] and
//!     [`crate::dynamodb_streams::shard_iterators::learn`]: what answers reveal (inside the
//!     faults, so a call applied but whose answer is lost is still learned from);
//! 14. [`crate::s3::no_such_key::hide_missing_keys`] and
//!     [`crate::s3::cors::response_headers`]: S3's answers corrected;
//! 15. [`proxy::to_emulator`].
//!
//! Beside the pipeline, [`control`] routes (`/_local/iam/*`) let the deployer register each
//! room's configuration, and the emulator's own API (`/moto-api/*`) passes for the deployer.

pub mod audit;
pub mod body;
pub mod control;
pub mod proxy;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{any, post};
use tower::ServiceBuilder;

use crate::cognito::app_clients::{self, AppClients};
use crate::cognito::confirmation_codes::{self, ConfirmationCodes};
use crate::cognito::pool_policies;
use crate::cognito::public_operations::{self, PublicRoad};
use crate::dynamodb_streams::shard_iterators::{self, ShardIterators};
use crate::faults::{self, FaultInjection};
use crate::iam::authorization::{self, Authorization};
use crate::iam::principals::{self, Principals};
use crate::iam::{actions, sigv4};
use crate::s3::cors::{self, BucketCors};
use crate::s3::{no_such_key, presigned_urls};
use crate::stepfunctions::state_machines::{self, StateMachines};
use crate::stepfunctions::task_tokens::{self, TaskTokens};
use audit::Audit;
use control::DeployerToken;
use proxy::Proxy;

/// Every room's state, each behind its own lock.
struct Rooms {
    proxy: Proxy,
    bucket_cors: Arc<BucketCors>,
    state_machines: Arc<StateMachines>,
    principals: Arc<Principals>,
    authorization: Arc<Authorization>,
    task_tokens: Arc<TaskTokens>,
    shard_iterators: Arc<ShardIterators>,
    faults: Arc<FaultInjection>,
    app_clients: Arc<AppClients>,
    confirmation_codes: Arc<ConfirmationCodes>,
}

impl Rooms {
    fn new(emulator: &str, audit: Audit) -> Self {
        let audit = Arc::new(audit);
        let state_machines = Arc::new(StateMachines::default());
        let principals = Arc::new(Principals::new(state_machines.clone(), audit.clone()));
        let proxy = Proxy::new(emulator);
        let app_clients = Arc::new(AppClients::default());
        Self {
            confirmation_codes: Arc::new(ConfirmationCodes::new(app_clients.clone(), emulator)),
            app_clients,
            bucket_cors: Arc::default(),
            task_tokens: Arc::new(TaskTokens::new(state_machines.clone(), proxy.emulator())),
            authorization: Arc::new(Authorization {
                principals: principals.clone(),
                audit,
            }),
            state_machines,
            principals,
            shard_iterators: Arc::default(),
            faults: Arc::default(),
            proxy,
        }
    }

    /// The AWS APIs: the layers in the order of the module doc, above the emulator.
    fn aws(&self) -> Router {
        let (buckets, emulator, tokens) = (&self.bucket_cors, &self.proxy, &self.task_tokens);
        let (iterators, authz) = (&self.shard_iterators, &self.authorization);
        let layers = ServiceBuilder::new()
            .layer(from_fn_with_state(buckets.clone(), cors::answer_preflight))
            .layer(from_fn_with_state(
                self.cognito(),
                public_operations::branch,
            ))
            .layer(from_fn(pool_policies::absent_flags_are_false))
            .layer(from_fn_with_state(emulator.clone(), sigv4::identify_caller))
            .layer(from_fn(presigned_urls::refuse_mismatched))
            .layer(from_fn_with_state(emulator.clone(), sigv4::pass_deployer))
            .layer(from_fn(actions::name_the_call))
            .layer(from_fn_with_state(
                self.principals.clone(),
                principals::resolve_role,
            ))
            .layer(from_fn_with_state(
                tokens.clone(),
                task_tokens::resolve_issuer,
            ))
            .layer(from_fn_with_state(
                tokens.clone(),
                task_tokens::learn_sent_tokens,
            ))
            .layer(from_fn_with_state(
                iterators.clone(),
                shard_iterators::resolve_stream,
            ))
            .layer(from_fn_with_state(authz.clone(), authorization::authorize))
            .layer(from_fn_with_state(self.faults.clone(), faults::inject))
            .layer(from_fn_with_state(tokens.clone(), task_tokens::track))
            .layer(from_fn_with_state(
                iterators.clone(),
                shard_iterators::learn,
            ))
            .layer(from_fn_with_state(
                authz.clone(),
                no_such_key::hide_missing_keys,
            ))
            .layer(from_fn_with_state(buckets.clone(), cors::response_headers));
        Router::new()
            .fallback(proxy::to_emulator)
            .with_state(emulator.clone())
            .layer(layers)
    }

    /// Cognito's road for people without AWS credentials: codes, sign-in rules, the emulator.
    fn cognito(&self) -> PublicRoad {
        let layers = ServiceBuilder::new()
            .layer(from_fn_with_state(
                self.confirmation_codes.clone(),
                confirmation_codes::send_and_check,
            ))
            .layer(from_fn_with_state(
                self.app_clients.clone(),
                app_clients::enforce_sign_in_rules,
            ));
        let road = Router::new()
            .fallback(proxy::to_emulator)
            .with_state(self.proxy.clone())
            .layer(layers);
        PublicRoad {
            road,
            clients: self.app_clients.clone(),
        }
    }

    /// `/_local/iam/*`: each room's registration route, beside its state.
    fn control(&self) -> Router {
        Router::new()
            .route("/roles", post(principals::register_role))
            .route(
                "/resource-policies",
                post(principals::register_resource_policy),
            )
            .with_state(self.principals.clone())
            .route("/bucket-cors", post(cors::register))
            .with_state(self.bucket_cors.clone())
            .route("/state-machines", post(state_machines::register))
            .with_state(self.state_machines.clone())
            .route("/authorize", post(authorization::answer_question))
            .with_state(self.authorization.clone())
            .route("/cognito-app-clients", post(app_clients::register))
            .with_state(self.app_clients.clone())
            .route("/faults", post(faults::switch))
            .route("/faults-summary", post(faults::summary))
            .with_state(self.faults.clone())
            .fallback(control::unknown_endpoint)
    }
}

/// The gate as one router: control routes and the emulator's API for the deployer, the AWS
/// APIs through the pipeline.
pub fn router(emulator: &str, audit: Audit, deployer_token: Option<String>) -> Router {
    let rooms = Rooms::new(emulator, audit);
    let deployer_only = from_fn_with_state(
        DeployerToken(deployer_token.map(Arc::from)),
        control::require_deployer,
    );
    // The emulator's own inspection API (the local mailbox reads SES's outbox there) is no AWS
    // API: it passes, for the deployer.
    let emulator_api = Router::new()
        .route("/moto-api/{*rest}", any(proxy::to_emulator))
        .with_state(rooms.proxy.clone());
    Router::new()
        .nest("/_local/iam", rooms.control().layer(deployer_only.clone()))
        .merge(emulator_api.layer(deployer_only))
        .fallback_service(rooms.aws())
        .layer(from_fn(body::buffer))
}

/// Serves the gate on `listener` until the process ends; every decision is appended to
/// `audit` when given, and the control routes need `deployer_token` when given.
pub async fn serve(
    listener: tokio::net::TcpListener,
    emulator: &str,
    audit: Option<&Path>,
    deployer_token: Option<String>,
) -> std::io::Result<()> {
    let app = router(emulator, Audit::open(audit)?, deployer_token);
    axum::serve(listener, app).await
}
