mod handler;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), shared::entry::Error> {
    shared::entry::run_api(handler::App::from_env()).await
}
