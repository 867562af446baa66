use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = aws_config::load_from_env().await;
    let thumbnailer = thumbnailer::Thumbnailer::from_env(&sdk, &shared::config::ProcessEnv)?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| {
        let thumbnailer = &thumbnailer;
        async move { Ok::<_, Error>(thumbnailer.handle(event.payload).await) }
    }))
    .await
}
