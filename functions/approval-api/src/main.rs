use std::convert::Infallible;

use lambda_http::{Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let app = approval_api::App::from_env(&sdk, &shared::config::ProcessEnv)?;
    shared::telemetry::run_http(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    }))
    .await
}
