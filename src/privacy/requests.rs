//! `frontdesk privacy …`: a customer's data on request from the command
//! line, the same store calls and audit as the admin API.

use clap::Subcommand;

use crate::storage::Store;
use crate::storage::privacy::Subject;

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Print a customer's conversations as JSON (redacted unless --unredacted)
    Export {
        #[command(flatten)]
        subject: SubjectArgs,
        /// The text as the customer wrote it, for their own access request
        #[arg(long)]
        unredacted: bool,
    },
    /// Delete a customer's conversations and everything derived from them
    Erase {
        #[command(flatten)]
        subject: SubjectArgs,
    },
    /// The latest exports, erasures and retention runs (who, when, how many)
    Audit,
}

#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct SubjectArgs {
    /// The conversation's session id (the widget keeps it in the customer's browser)
    #[arg(long)]
    session: Option<uuid::Uuid>,
    /// Every conversation in which the customer wrote this e-mail address
    #[arg(long)]
    email: Option<String>,
}

impl SubjectArgs {
    fn subject(&self) -> Subject {
        match (&self.session, &self.email) {
            (Some(id), _) => Subject::Session(*id),
            (None, Some(email)) => Subject::Email(email.trim().to_string()),
            (None, None) => unreachable!("clap requires one"),
        }
    }
}

/// Who did it, for the audit: the operator's login name.
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

pub async fn run(store: Store, command: PrivacyCommand) -> anyhow::Result<()> {
    match command {
        PrivacyCommand::Export {
            subject,
            unredacted,
        } => {
            let conversations = store.export(subject.subject(), actor()).await?;
            let export = super::Export::new(conversations, !unredacted);
            println!("{}", serde_json::to_string_pretty(&export)?);
        }
        PrivacyCommand::Erase { subject } => {
            let erased = store.erase(subject.subject(), actor()).await?;
            // A running server keeps an erased session in memory until it
            // is idle; it holds no more than its recent turns.
            println!("erased {} conversation(s)", erased.len());
        }
        PrivacyCommand::Audit => {
            for r in store.privacy_audit(200).await? {
                println!(
                    "{}\t{}\t{:?}\t{}\t{}",
                    r.at_ms, r.actor, r.action, r.selector, r.conversations
                );
            }
        }
    }
    Ok(())
}
