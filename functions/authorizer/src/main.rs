use lambda_runtime::{service_fn, Error};

mod handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    shared::entry::init()?;
    let app = handler::App::from_env().await?;
    lambda_runtime::run(service_fn(|event| handler::handle(&app, event))).await
}
