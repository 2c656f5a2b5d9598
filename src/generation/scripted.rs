//! A generator that writes a fixed script, token by token: for fast tests
//! of the code around the model (streaming, checking, cancelling, queueing).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use super::{Admission, GenEvent, GenerationError, GenerationRequest, TextGenerator};

/// Writes `tokens` for every request, then `Done`; optionally one token
/// every `delay`, behind an admission queue like the real model's.
pub struct ScriptedGenerator {
    tokens: Vec<String>,
    delay: Duration,
    admission: Admission,
    /// Every request it was given, for tests of what reaches the model.
    requests: Arc<Mutex<Vec<GenerationRequest>>>,
}

impl ScriptedGenerator {
    pub fn new<S: Into<String>>(tokens: impl IntoIterator<Item = S>) -> Self {
        ScriptedGenerator {
            tokens: tokens.into_iter().map(Into::into).collect(),
            delay: Duration::ZERO,
            admission: Admission::new(64, 64),
            requests: Arc::default(),
        }
    }

    /// The requests it was given so far, oldest first.
    pub fn requests(&self) -> Vec<GenerationRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One token every `delay` (needs a tokio runtime).
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_admission(mut self, admission: Admission) -> Self {
        self.admission = admission;
        self
    }
}

impl TextGenerator for ScriptedGenerator {
    fn start(
        &self,
        request: GenerationRequest,
    ) -> Result<mpsc::Receiver<GenEvent>, GenerationError> {
        let ticket = self.admission.try_admit()?;
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
        let (tx, rx) = mpsc::channel(self.tokens.len() + 1);
        let tokens = self.tokens.clone();
        let done = GenEvent::Done {
            tokens: tokens.len(),
            prompt_tokens: None,
        };
        if self.delay.is_zero() {
            // The channel holds the whole script, so sending cannot fail.
            for t in tokens {
                let _ = tx.try_send(GenEvent::Token(t));
            }
            let _ = tx.try_send(done);
            return Ok(rx);
        }
        let delay = self.delay;
        tokio::spawn(async move {
            let _running = ticket.wait_turn().await;
            for t in tokens {
                tokio::time::sleep(delay).await;
                if tx.send(GenEvent::Token(t)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(done).await;
        });
        Ok(rx)
    }

    fn describe(&self) -> String {
        "scripted generator (tests)".into()
    }

    fn in_flight(&self) -> usize {
        self.admission.in_flight()
    }
}
