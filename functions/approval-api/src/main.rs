use std::convert::Infallible;

use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    let sdk = shared::sdk::load(&shared::config::ProcessEnv).await?;
    let app = approval_api::App::from_env(&sdk, &shared::config::ProcessEnv)?;
    run(service_fn(|req: Request| {
        let app = &app;
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    }))
    .await
}
