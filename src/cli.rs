//! Command line: `frontdesk [serve]`, `frontdesk fetch-models`, `frontdesk bench`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigLayer};
use crate::models::{self, DEFAULT_CHAT_MODEL, DEFAULT_ENCODER};
use crate::startup::Application;
use crate::understanding::eval as evaluate;

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Self-hosted customer-service chatbot"
)]
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
    /// Knowledge-base tools
    #[command(subcommand)]
    Kb(KbCommand),
    /// Measure understanding on labelled CSV files (`text,label`)
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Intent accuracy, out-of-scope detection and latency
    Intent(EvalArgs),
    /// Sentiment accuracy and latency
    Sentiment(EvalArgs),
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Labelled test set, CSV with header `text,label` (`oos` = out of scope)
    #[arg(long)]
    test: PathBuf,
    /// Train on this CSV instead of using the shipped model
    #[arg(long)]
    train: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum KbCommand {
    /// Show the passages a question retrieves, with scores, and whether the bot would answer
    Search {
        query: String,
        /// Previous customer message, for follow-ups
        #[arg(long)]
        context: Option<String>,
    },
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
            models::ensure_dir(&DEFAULT_ENCODER, &config.encoder).await?;
        }
        Command::Eval(command) => eval(config, command).await?,
        Command::Bench(args) => crate::bench::run(config, args).await?,
        Command::Kb(KbCommand::Search { query, context }) => kb_search(&config, query, context)?,
    }
    Ok(())
}

async fn eval(config: Config, command: EvalCommand) -> anyhow::Result<()> {
    let understanding = crate::startup::load_understanding(&config).await?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let (args, report) = match command {
            EvalCommand::Intent(args) => {
                let test = evaluate::read_csv(&args.test)?;
                let train = args.train.as_deref().map(evaluate::read_csv).transpose()?;
                let report = evaluate::intent(&understanding, &test, train.as_deref())?;
                (args, serde_json::to_value(report)?)
            }
            EvalCommand::Sentiment(args) => {
                let test = evaluate::read_csv(&args.test)?;
                let train = args.train.as_deref().map(evaluate::read_csv).transpose()?;
                let train = args.train.as_deref().zip(train.as_deref());
                let report = evaluate::sentiment(&understanding, &test, train)?;
                (args, serde_json::to_value(report)?)
            }
        };
        match args.format {
            OutputFormat::Json => println!("{report}"),
            OutputFormat::Text => print!("{}", evaluate::to_text(&report)),
        }
        Ok(())
    })
    .await?
}

fn kb_search(config: &Config, text: String, context: Option<String>) -> anyhow::Result<()> {
    let load = crate::knowledge::load_dir(&config.knowledge)?;
    let (index, _) = crate::knowledge::KbIndex::open_or_build(&config.index_dir(), &load)?;
    let hits = index.search(
        &crate::knowledge::RetrievalQuery {
            text,
            context,
            prefer_tags: Vec::new(),
        },
        8,
    )?;
    for hit in &hits {
        let answers = hit.relevance >= config.min_relevance;
        println!(
            "{:>7.3}  relevance {:.2}{}  {}  ({})",
            hit.score,
            hit.relevance,
            if answers { " ✓" } else { "  " },
            hit.passage.id,
            hit.passage.heading
        );
    }
    let would_answer = hits.iter().any(|h| h.relevance >= config.min_relevance);
    println!(
        "would {}",
        if would_answer {
            "answer"
        } else {
            "decline and offer a person"
        }
    );
    Ok(())
}
