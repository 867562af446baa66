use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let enricher = pipe_enrichment::Enricher::from_env(&sdk, &shared::config::ProcessEnv)?;
    shared::telemetry::run(service_fn(|event: LambdaEvent<Value>| {
        let enricher = &enricher;
        async move { Ok::<_, Error>(enricher.handle(event.payload).await?) }
    }))
    .await
}
