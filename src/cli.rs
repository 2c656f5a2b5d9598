//! Command line: `frontdesk [serve]`, `fetch-models`, `bench`, `kb`, `eval`, `agent`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigLayer};
use crate::evaluation::understanding as evaluate;
use crate::model_files::{self, DEFAULT_CHAT_MODEL, DEFAULT_ENCODER, SENTIMENT_CORPUS};
use crate::startup::Application;
use crate::storage::agents::Role;

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Self-hosted customer-service chatbot"
)]
pub struct Cli {
    /// TOML config file [default: ./frontdesk.toml when it exists]
    #[arg(long, env = "FRONTDESK_CONFIG", global = true, help_heading = crate::config::SETTINGS_HEADING)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ConfigLayer,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses the command line. A command's `-h` shows its own flags and
    /// `--config`; the settings every command shares are in `--help`,
    /// after them. Done here, once, so a new setting needs nothing.
    pub fn parse_args() -> Cli {
        use clap::{CommandFactory, FromArgMatches};
        let command = Cli::command().mut_args(|arg| {
            let shared_setting = arg.get_help_heading() == Some(crate::config::SETTINGS_HEADING)
                && arg.get_id() != "config";
            if shared_setting {
                arg.hide_short_help(true)
            } else {
                arg
            }
        });
        Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the chat (the default)
    Serve,
    /// Download the default models into place if they are missing
    FetchModels,
    /// Measure model load time, time to first token and tokens/s on knowledge-base questions
    Bench(crate::evaluation::bench::BenchArgs),
    /// Knowledge-base tools
    #[command(subcommand)]
    Kb(KbCommand),
    /// Measure understanding on labelled CSV files (`text,label`)
    #[command(subcommand)]
    Eval(EvalCommand),
    /// Staff accounts: agents (the console) and admins (also the
    /// knowledge base and customers' data requests)
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Write a consistent copy of the database to FILE while the server runs
    Backup {
        /// Where to write it; must not exist yet
        file: PathBuf,
    },
    /// A customer's data on request: export, erasure, and their audit
    #[command(subcommand)]
    Privacy(crate::privacy::requests::PrivacyCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent account, or set its password; the password is read
    /// from standard input (one line), so it stays out of shell history
    Add {
        /// The name the agent signs in with and customers see
        name: String,
        /// `agent` (the console) or `admin` (also the knowledge base and
        /// customers' data requests); a new account is an agent
        #[arg(long)]
        role: Option<Role>,
    },
    /// Change an account's role; its open sign-ins end
    Role { name: String, role: Role },
    /// Set an existing agent's password (read from standard input); every
    /// browser signed in as the agent is signed out
    Passwd { name: String },
    /// List accounts, their roles and open sign-ins
    List,
    /// Remove an agent account and sign it out everywhere
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Intent accuracy, out-of-scope detection and latency
    Intent(EvalArgs),
    /// Sentiment accuracy and latency
    Sentiment(EvalArgs),
    /// Retrieval quality (recall@k, MRR, NDCG@10) and latency on a JSON-lines KB
    Retrieval(RetrievalEvalArgs),
    /// Answer quality: conversations (JSON lines) run through the chat's own
    /// answering path against the configured knowledge base and model
    Answers(AnswersEvalArgs),
    /// Demand extraction: precision and recall of the products and aspects
    /// found in labelled messages, per aspect
    Demand(DemandEvalArgs),
}

#[derive(Debug, clap::Args)]
pub struct DemandEvalArgs {
    /// Labelled messages, JSON lines: `{"text", "products": [key], "aspects": {key: "negative"|"neutral"|"positive"}}`
    #[arg(long)]
    set: PathBuf,
    /// Print each message whose aspects were missed or extra
    #[arg(long)]
    misses: bool,
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct AnswersEvalArgs {
    /// Conversations, JSON lines: `{"turns": [...], "articles": [...], "facts": [...]}`
    /// or `"answerable": false`, per conversation or per turn (see evalsets/README.md)
    #[arg(long)]
    set: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
}

#[derive(Debug, clap::Args)]
pub struct RetrievalEvalArgs {
    /// Knowledge base, JSON lines of `{"id","title","body","tags","url"}`
    #[arg(long)]
    kb: PathBuf,
    /// Questions, CSV with header `query,doc_id`
    #[arg(long)]
    queries: PathBuf,
    /// Which retrievers rank the passages
    #[arg(long, value_enum, default_value = "hybrid")]
    retriever: crate::knowledge::RetrieverKind,
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
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
    /// Rebuild the search index and every passage embedding from the database
    Reindex,
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
            model_files::ensure(&DEFAULT_CHAT_MODEL, &config.model).await?;
            model_files::ensure_dir(&DEFAULT_ENCODER, &config.encoder).await?;
            model_files::ensure_sdist(&SENTIMENT_CORPUS, &config.sentiment_corpus_dir()).await?;
        }
        Command::Eval(command) => eval(config, command).await?,
        Command::Bench(args) => match args.what {
            Some(crate::evaluation::bench::BenchCommand::Insights(what)) => {
                crate::evaluation::insights_bench::run(what).await?
            }
            None => crate::evaluation::bench::run(config, args).await?,
        },
        Command::Kb(command) => kb(config, command).await?,
        Command::Privacy(command) => {
            crate::privacy::requests::run(open_store(&config)?, command).await?
        }
        Command::Backup { file } => {
            anyhow::ensure!(!file.exists(), "{} exists already", file.display());
            open_store(&config)?.backup_to(file.clone()).await?;
            println!(
                "backed up {} to {}",
                config.database_path().display(),
                file.display()
            );
        }
        Command::Agent(AgentCommand::Add { name, role }) => add_agent(&config, &name, role, false)?,
        Command::Agent(AgentCommand::Passwd { name }) => add_agent(&config, &name, None, true)?,
        Command::Agent(AgentCommand::Role { name, role }) => {
            let changed = open_store(&config)?.set_role_blocking(&name, role)?;
            anyhow::ensure!(changed, "there is no agent {name:?}");
            println!("{name:?} is now {} (and signed out)", role.as_str());
        }
        Command::Agent(AgentCommand::List) => {
            for a in open_store(&config)?.agents_blocking()? {
                println!("{}\t{}\t{} signed in", a.name, a.role.as_str(), a.signed_in);
            }
        }
        Command::Agent(AgentCommand::Remove { name }) => {
            let removed = open_store(&config)?.remove_agent_blocking(&name)?;
            anyhow::ensure!(removed, "there is no agent {name:?}");
            println!("removed agent {name:?} and signed it out");
        }
    }
    Ok(())
}

fn open_store(config: &Config) -> anyhow::Result<crate::storage::Store> {
    std::fs::create_dir_all(&config.data_dir)?;
    Ok(crate::storage::Store::open(&config.database_path())?)
}

fn add_agent(
    config: &Config,
    name: &str,
    role: Option<Role>,
    must_exist: bool,
) -> anyhow::Result<()> {
    let name = name.trim();
    let store = open_store(config)?;
    if must_exist {
        let known = store.agents_blocking()?.iter().any(|a| a.name == name);
        anyhow::ensure!(
            known,
            "there is no agent {name:?}; create it with `agent add`"
        );
    }
    anyhow::ensure!(
        !name.is_empty() && name.chars().count() <= 60,
        "an agent name is 1 to 60 characters"
    );
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(
        password.chars().count() >= 8,
        "the password must be at least 8 characters"
    );
    let hash = crate::console::auth::hash_password(password)
        .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
    let created = store.upsert_agent_blocking(name, &hash, role)?;
    let page = match role {
        Some(Role::Admin) => "/console.html and /admin.html",
        _ => "/console.html",
    };
    println!(
        "{} {name:?}; sign in at {page}",
        if created {
            "created"
        } else {
            "updated the password (and signed out every browser) of"
        }
    );
    Ok(())
}

async fn eval(config: Config, command: EvalCommand) -> anyhow::Result<()> {
    if let EvalCommand::Answers(args) = command {
        return eval_answers(config, args).await;
    }
    let min_relevance = config.min_relevance;
    let understanding = crate::startup::load_understanding_adapted(&config).await?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let (format, report) = match command {
            EvalCommand::Intent(args) => {
                let test = evaluate::read_csv(&args.test)?;
                let train = args.train.as_deref().map(evaluate::read_csv).transpose()?;
                let report = evaluate::intent(&understanding, &test, train.as_deref())?;
                (args.format, serde_json::to_value(report)?)
            }
            EvalCommand::Sentiment(args) => {
                let test = evaluate::read_csv(&args.test)?;
                let train = args.train.as_deref().map(evaluate::read_csv).transpose()?;
                let train = args.train.as_deref().zip(train.as_deref());
                let report = evaluate::sentiment(&understanding, &config, &test, train)?;
                (args.format, serde_json::to_value(report)?)
            }
            EvalCommand::Retrieval(args) => {
                let report = crate::evaluation::retrieval::retrieval(
                    understanding.encoder(),
                    &args.kb,
                    &args.queries,
                    args.retriever,
                    min_relevance,
                )?;
                (args.format, serde_json::to_value(report)?)
            }
            EvalCommand::Demand(args) => {
                let set = crate::evaluation::demand::read_set(&args.set)?;
                let report =
                    crate::evaluation::demand::evaluate(&understanding, &set, args.misses)?;
                if let OutputFormat::Text = args.format {
                    print!("{}", crate::evaluation::demand::to_text(&report));
                    return Ok(());
                }
                (args.format, serde_json::to_value(report)?)
            }
            EvalCommand::Answers(_) => unreachable!("answered above"),
        };
        match format {
            OutputFormat::Json => println!("{report}"),
            OutputFormat::Text => print!("{}", evaluate::to_text(&report)),
        }
        Ok(())
    })
    .await?
}

/// Runs a set of conversations through a fresh server (a temporary
/// database seeded from the knowledge folder, the configured model, the
/// demo shop's orders served on a free local port).
async fn eval_answers(mut config: Config, args: AnswersEvalArgs) -> anyhow::Result<()> {
    let set = crate::evaluation::answers::read_set(&args.set)?;
    let generator = crate::startup::load_generator(&config).await?;
    let understanding = crate::startup::load_understanding_adapted(&config).await?;
    let scratch = tempfile_dir()?;
    // Passage embeddings already computed for the server are reused.
    let cache = config.embedding_cache_path();
    config.data_dir = scratch.clone();
    if cache.exists() {
        std::fs::create_dir_all(config.embedding_cache_path().parent().expect("a folder"))?;
        std::fs::copy(&cache, config.embedding_cache_path())?;
    }
    config.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let app = crate::startup::Application::with_models(
        config,
        crate::state::Models {
            generator,
            understanding,
        },
    )?;
    let state = app.state().clone();
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    let report = crate::evaluation::answers::run(state, &set).await;
    server.stop(true).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = report?;
    match args.format {
        OutputFormat::Json => println!("{}", serde_json::to_string(&report)?),
        OutputFormat::Text => print!("{}", crate::evaluation::answers::to_text(&report)),
    }
    Ok(())
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("frontdesk-eval-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Knowledge-base tools work on the server's database (seeding it from
/// `knowledge/` when it is empty, as the server does).
async fn kb(config: Config, command: KbCommand) -> anyhow::Result<()> {
    use crate::knowledge::base::KnowledgeBase;
    let understanding = crate::startup::load_understanding(&config).await?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = crate::storage::Store::open(&config.database_path())?;
        store.seed_if_empty(&crate::knowledge::load_dir(&config.knowledge)?.articles)?;
        let cache = config.embedding_cache_path();
        if matches!(command, KbCommand::Reindex) && cache.exists() {
            std::fs::remove_file(&cache)?;
        }
        let started = std::time::Instant::now();
        let encoder = understanding.encoder();
        let kb = KnowledgeBase::build(store.active_articles_blocking()?, encoder, &cache)?;
        let corpus = kb.snapshot();
        match command {
            KbCommand::Reindex => println!(
                "indexed {} articles ({} passages) in {:.1} s",
                corpus.article_count(),
                corpus.passage_count(),
                started.elapsed().as_secs_f32()
            ),
            KbCommand::Search { query, context } => {
                let texts = crate::answer::Texts::load(&config.knowledge)?;
                let ctx = crate::answer::Context {
                    corpus: &corpus,
                    encoder,
                    catalogue: understanding.catalogue(),
                    products: understanding.product_catalogue(),
                    rule: crate::knowledge::Answerability::from_config(&config),
                    texts: &texts,
                    // `kb search` has no shop to ask.
                    orders: false,
                };
                // The same decision chat makes, in a conversation that asked `context` first.
                let mut dialogue = crate::answer::DialogueState::default();
                let ask = |text: &str, dialogue: &mut crate::answer::DialogueState| {
                    let meant = crate::answer::as_meant(text, &corpus, encoder);
                    let understood = understanding.understand_now(&meant)?;
                    dialogue.observe_customer(text);
                    let input = crate::answer::Input {
                        text,
                        understood: Some(&understood),
                        dialogue,
                    };
                    anyhow::Ok((crate::answer::decide(&input, &ctx), understood))
                };
                if let Some(context) = context {
                    let (first, _) = ask(&context, &mut dialogue)?;
                    dialogue.after_plan(&first.plan);
                }
                let (decision, understood) = ask(&query, &mut dialogue)?;
                print_decision(&decision, &understood, &ctx.rule);
            }
        }
        Ok(())
    })
    .await?
}

fn print_decision(
    decision: &crate::answer::Decision,
    understood: &crate::understanding::Understood,
    rule: &crate::knowledge::retriever::Answerability,
) {
    println!("searched: {}", decision.evidence.searched.join(" | "));
    println!("  fused  bm25  dense  relevance similarity  passage");
    for hit in decision.evidence.passages.iter().take(8) {
        let rank = |s: Option<crate::knowledge::retriever::Scored>| {
            s.map_or("-".to_string(), |s| s.rank.to_string())
        };
        println!(
            "{:>7.4} {:>5} {:>6} {:>10.2} {:>10.2}{} {} ({})",
            hit.fused,
            rank(hit.bm25),
            rank(hit.dense),
            hit.relevance,
            hit.similarity,
            if hit.answers(rule) { " ✓" } else { "  " },
            hit.passage.id,
            hit.passage.heading
        );
    }
    let plan = &decision.plan;
    println!(
        "intent {} ({:.0}%), sentiment {:.2}",
        understood.intent.name,
        understood.intent.confidence * 100.0,
        understood.sentiment.score
    );
    println!("reply ({:?}, {}): {}", plan.kind, plan.why, plan.text());
    for c in plan.citations() {
        println!("cites {} ({})", c.article_id, c.url);
    }
    if !plan.quick_replies.is_empty() {
        println!("buttons: {}", plan.quick_replies.join(" | "));
    }
}
