use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let processor = items_stream::Processor::from_env(&sdk, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<Event>| {
        let processor = &processor;
        async move { Ok::<_, Error>(processor.handle(event.payload).await) }
    }))
    .await
}
