use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let env = shared::config::ProcessEnv;
    let mailer = approval_worker::Mailer::from_env(&sdk, &env)?;
    let poller = shared::config::optional(&env, "APPROVAL_ACTIVITY_ARN")
        .map(|arn| approval_worker::ActivityPoller::for_lambda(&sdk, arn));
    shared::telemetry::run(service_fn(|event: LambdaEvent<Value>| {
        let (mailer, poller) = (&mailer, &poller);
        async move {
            // SQS deliveries have Records; anything else is the schedule of the activity pattern.
            if event.payload.get("Records").is_some() {
                let sqs: SqsEvent = serde_json::from_value(event.payload)?;
                return Ok::<Value, Error>(serde_json::to_value(mailer.handle_queue(sqs).await)?);
            }
            let Some(poller) = poller else {
                tracing::warn!(
                    "scheduled invocation without APPROVAL_ACTIVITY_ARN: nothing to poll"
                );
                return Ok(Value::Null);
            };
            let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
            let summary = poller
                .run(mailer, || {
                    deadline
                        .duration_since(SystemTime::now())
                        .unwrap_or_default()
                })
                .await;
            tracing::info!(
                tasks = summary.tasks,
                empty_polls = summary.empty_polls,
                failed = summary.failed,
                "activity poll done"
            );
            Ok(Value::Null)
        }
    }))
    .await
}
