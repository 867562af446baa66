use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let thumbnailer = thumbnailer::Thumbnailer::from_env(&sdk, &shared::config::ProcessEnv)?;
    shared::telemetry::run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let thumbnailer = &thumbnailer;
        async move { Ok::<_, Error>(thumbnailer.handle(event.payload).await) }
    }))
    .await
}
