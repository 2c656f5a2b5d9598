fn main() {
    // Before any code that may use the build's CPU features.
    let missing = frontdesk::cpu::missing_features();
    if !missing.is_empty() {
        eprintln!("error: {}", frontdesk::cpu::explain(&missing));
        std::process::exit(2);
    }
    let cli = frontdesk::cli::Cli::parse_args();
    let result = actix_web::rt::System::new().block_on(frontdesk::cli::run(cli));
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
