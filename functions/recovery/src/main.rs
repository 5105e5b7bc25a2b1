use lambda_http::{service_fn, Error};

mod handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::logging::init();
    shared::metrics::init()?;
    let app = handler::App::from_env().await?;
    lambda_http::run(service_fn(|request| handler::handle(&app, request))).await
}
