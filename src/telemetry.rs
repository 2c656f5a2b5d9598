//! Structured logs with `tracing`, with personal data redacted from every
//! line before it is written.

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
        .with_writer(redacting_stderr)
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

/// One log line, buffered while it is formatted and written to `out`
/// redacted (`[email]`, `[card]`, …) when the formatter is done with it:
/// whatever a message, an error or a field holds, personal data never
/// reaches the log.
struct RedactingLine<W: std::io::Write> {
    line: Vec<u8>,
    out: W,
}

impl<W: std::io::Write> RedactingLine<W> {
    fn new(out: W) -> Self {
        RedactingLine {
            line: Vec::new(),
            out,
        }
    }
}

impl<W: std::io::Write> std::io::Write for RedactingLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<W: std::io::Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.line);
        let _ = self.out.write_all(crate::privacy::redact(&line).as_bytes());
    }
}

fn redacting_stderr() -> RedactingLine<std::io::Stderr> {
    RedactingLine::new(std::io::stderr())
}

/// How logs name a session. Its id is the only credential to its
/// transcript, so logs carry a short hash of it instead: enough to follow
/// one conversation through the log, useless to open it. Written in the
/// letters a–p (one per 4 bits), not hex: a hash whose hex is mostly digits
/// looked like a phone number, and the log's redaction replaced it.
pub fn session_ref(id: uuid::Uuid) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    digest[..6]
        .iter()
        .flat_map(|b| [b >> 4, b & 0x0f])
        .map(|nibble| char::from(b'a' + nibble))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn personal_data_never_reaches_the_log() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || RedactingLine::new(sink.clone()))
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                name = "jan@example.com",
                "signing in with 4111 1111 1111 1111"
            );
            tracing::error!(error = "call +31 6 12345678", "failed");
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        for secret in ["jan@example.com", "4111 1111 1111 1111", "+31 6 12345678"] {
            assert!(!log.contains(secret), "{log}");
        }
        for marker in ["[email]", "[card]", "[phone]", "signing in", "failed"] {
            assert!(log.contains(marker), "{log}");
        }
    }

    #[test]
    fn a_session_ref_survives_the_logs_redaction() {
        for n in 0..2000u128 {
            let reference = session_ref(uuid::Uuid::from_u128(n * 0x9e37_79b9_7f4a_7c15));
            assert_eq!(reference.len(), 12);
            assert_eq!(crate::privacy::redact(&reference), reference);
        }
    }
}
