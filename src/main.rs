use clap::Parser;

#[actix_web::main]
async fn main() {
    if let Err(e) = frontdesk::cli::run(frontdesk::cli::Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
