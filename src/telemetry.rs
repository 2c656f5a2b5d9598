//! Structured logs with `tracing`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides the default filter.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,mistralrs_core=warn,mistralrs_quant=warn,tantivy=warn,actix_server=warn",
        )
    });
    // Logs go to standard error, so a command's output (`eval … --format
    // json`) stays clean on standard output.
    // No colour codes in a file or a journal, only on a terminal.
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// How logs name a session. Its id is the only credential to its
/// transcript, so logs carry a short hash of it instead: enough to follow
/// one conversation through the log, useless to open it.
pub fn session_ref(id: uuid::Uuid) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    hex::encode(&digest[..6])
}
