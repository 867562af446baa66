//! Baseline for `make bench-cold`: a lambda_runtime function that answers `{"hello": "world"}`
//! and creates no SDK client, built with the workspace's release profile.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| async {
        Ok::<_, Error>(json!({"hello": "world"}))
    }))
    .await
}
