use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let processor = items_stream::Processor::from_env(&sdk, &shared::config::ProcessEnv)?;
    shared::telemetry::run(service_fn(|event: LambdaEvent<Event>| {
        let processor = &processor;
        async move { Ok::<_, Error>(processor.handle(event.payload).await) }
    }))
    .await
}
