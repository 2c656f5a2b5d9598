//! Command line: `frontdesk [serve]`, `frontdesk fetch-models`, `frontdesk bench`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigLayer};
use crate::models::{self, DEFAULT_CHAT_MODEL};
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about = "Self-hosted customer-service chatbot")]
pub struct Cli {
    /// TOML config file [default: ./frontdesk.toml when it exists]
    #[arg(long, env = "FRONTDESK_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ConfigLayer,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the chat (the default)
    Serve,
    /// Download the default models into place if they are missing
    FetchModels,
    /// Measure model load time, time to first token and tokens/s on knowledge-base questions
    Bench(crate::bench::BenchArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.settings, cli.config.as_deref())?;
    crate::telemetry::init(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until_stopped().await?;
        }
        Command::FetchModels => {
            models::ensure(&DEFAULT_CHAT_MODEL, &config.model).await?;
        }
        Command::Bench(args) => crate::bench::run(config, args).await?,
    }
    Ok(())
}
