//! The encoder's own thread: embeddings are CPU-heavy, so they run off the
//! async executor, and messages that arrive while one batch runs are
//! embedded together in the next.

use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use super::encoder::{Encoder, EncoderError, Reading};
use super::sentiment::SentimentModel;

/// Most texts embedded in one forward pass.
const MAX_BATCH: usize = 16;

/// The sentiment model in use; replaced once when the adapted one is ready.
pub type SentimentSlot = Arc<RwLock<Arc<SentimentModel>>>;

/// A reading, and the sentiment model whose branch read it (the one to
/// judge it with, even if the slot changed since).
pub type Read = (Reading, Arc<SentimentModel>);

type Job = (String, oneshot::Sender<Result<Read, EncoderError>>);

#[derive(Clone)]
pub struct EncoderWorker {
    jobs: mpsc::UnboundedSender<Job>,
    encoder: Arc<Encoder>,
}

/// The model in `slot` now.
pub fn current(slot: &SentimentSlot) -> Arc<SentimentModel> {
    slot.read().unwrap_or_else(|e| e.into_inner()).clone()
}

impl EncoderWorker {
    pub fn spawn(encoder: Arc<Encoder>, sentiment: SentimentSlot) -> Self {
        let (jobs, mut queue) = mpsc::unbounded_channel::<Job>();
        let worker_encoder = encoder.clone();
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                while let Some(first) = queue.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let texts: Vec<&str> = batch.iter().map(|(t, _)| t.as_str()).collect();
                    let model = current(&sentiment);
                    match worker_encoder.read(&texts, model.branch()) {
                        Ok(readings) => {
                            for ((_, reply), reading) in batch.into_iter().zip(readings) {
                                let _ = reply.send(Ok((reading, model.clone())));
                            }
                        }
                        Err(e) => {
                            for (_, reply) in batch {
                                let _ = reply.send(Err(EncoderError::Run(e.to_string())));
                            }
                        }
                    }
                }
            })
            .expect("spawn the encoder thread");
        Self { jobs, encoder }
    }

    pub async fn read(&self, text: &str) -> Result<Read, EncoderError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((text.to_string(), reply))
            .map_err(|_| EncoderError::Run("the encoder thread stopped".into()))?;
        answer
            .await
            .map_err(|_| EncoderError::Run("the encoder thread stopped".into()))?
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}
