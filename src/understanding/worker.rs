//! The encoder's own thread: embeddings are CPU-heavy, so they run off the
//! async executor, and messages that arrive while one batch runs are
//! embedded together in the next.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::encoder::{Embedding, Encoder, EncoderError};

/// Most texts embedded in one forward pass.
const MAX_BATCH: usize = 16;

type Job = (String, oneshot::Sender<Result<Embedding, EncoderError>>);

#[derive(Clone)]
pub struct EncoderWorker {
    jobs: mpsc::UnboundedSender<Job>,
    encoder: Arc<Encoder>,
}

impl EncoderWorker {
    pub fn spawn(encoder: Arc<Encoder>) -> Self {
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
                    match worker_encoder.embed(&texts) {
                        Ok(embeddings) => {
                            for ((_, reply), embedding) in batch.into_iter().zip(embeddings) {
                                let _ = reply.send(Ok(embedding));
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

    pub async fn embed(&self, text: &str) -> Result<Embedding, EncoderError> {
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
