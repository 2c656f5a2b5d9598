//! Admission control in front of the model: a fixed number of replies run,
//! a fixed number wait, and anything beyond is refused at once rather than
//! left to hang.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::GenerationError;

#[derive(Clone)]
pub struct Admission {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
    capacity: usize,
}

/// A place in the queue; hold it until the generation ends.
pub struct Ticket {
    _admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl Admission {
    pub fn new(concurrency: usize, queue: usize) -> Admission {
        Admission {
            admitted: Arc::new(Semaphore::new(concurrency + queue)),
            running: Arc::new(Semaphore::new(concurrency)),
            capacity: concurrency + queue,
        }
    }

    /// Replies admitted and not finished: running or queued.
    pub fn in_flight(&self) -> usize {
        self.capacity - self.admitted.available_permits()
    }

    pub fn try_admit(&self) -> Result<Ticket, GenerationError> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| GenerationError::Busy)?;
        Ok(Ticket {
            _admitted: admitted,
            running: self.running.clone(),
        })
    }
}

impl Ticket {
    /// Waits for a free model slot.
    pub async fn wait_turn(&self) -> OwnedSemaphorePermit {
        self.running
            .clone()
            .acquire_owned()
            .await
            .expect("admission semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_beyond_running_plus_queued() {
        let admission = Admission::new(1, 1);
        let first = admission.try_admit().unwrap();
        let second = admission.try_admit().unwrap();
        assert_eq!(admission.try_admit().err(), Some(GenerationError::Busy));
        let running = first.wait_turn().await;
        drop(running);
        drop(first);
        assert!(admission.try_admit().is_ok());
        drop(second);
    }
}
