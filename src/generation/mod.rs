//! Reply generation: the local model behind a bounded queue, the prompt, and
//! the grounding check that keeps replies to what the sources say.

use tokio::sync::mpsc;

mod admission;
pub mod grounding;
mod mistral;
pub mod prompt;
mod requantize;
mod scripted;

pub use admission::{Admission, Ticket};
pub use mistral::{MistralGenerator, ModelError};
pub use scripted::ScriptedGenerator;

/// The largest magnitude in a tensor of f32 (tests comparing products).
#[cfg(test)]
fn largest_abs(t: &candle_core::Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// Who said a turn in a generation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    Customer,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTurn {
    pub speaker: Speaker,
    pub text: String,
}

/// Everything the model needs for one reply.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    /// Instructions; empty for the model's own default.
    pub system: String,
    /// Conversation so far, ending with the customer's question.
    pub turns: Vec<ChatTurn>,
    pub max_tokens: usize,
}

/// What a running generation reports, in order: tokens, then one `Done` or `Failed`.
#[derive(Debug, Clone, PartialEq)]
pub enum GenEvent {
    Token(String),
    /// `prompt_tokens`: the prompt's length, when the model reports it.
    Done {
        tokens: usize,
        prompt_tokens: Option<usize>,
    },
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationError {
    /// Too many replies are already waiting for the model.
    #[error("the model is busy")]
    Busy,
}

/// A text generator. The real one is [`MistralGenerator`]; the trait exists so
/// the code around generation can be unit-tested without a model.
pub trait TextGenerator: Send + Sync {
    /// Admits the request or refuses it at once with [`GenerationError::Busy`].
    /// Dropping the receiver cancels the generation.
    fn start(
        &self,
        request: GenerationRequest,
    ) -> Result<mpsc::Receiver<GenEvent>, GenerationError>;

    /// A short description of the model, for readiness and logs.
    fn describe(&self) -> String;

    /// Replies running on or waiting for the model now.
    fn in_flight(&self) -> usize {
        0
    }
}
