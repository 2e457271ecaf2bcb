//! Time as the pipeline sees it: a [`Clock`] that tells the time and waits.
//!
//! The pipeline never calls the system clock or `sleep` directly. Real runs use a clock backed by
//! the runtime (in `slipway-pipeline`); dry runs and tests use [`SimClock`], whose `sleep` moves
//! simulated time forward at once. That is what lets a 10-minute canary with pauses run in
//! milliseconds in the demo while every timestamp in its story stays consistent.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

/// Tells the time and waits.
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
    /// Waits for `duration`.
    async fn sleep(&self, duration: Duration);
}

/// Simulated time: starts where you say and only moves when someone sleeps or calls `advance`.
#[derive(Debug, Clone)]
pub struct SimClock {
    now: Arc<Mutex<Timestamp>>,
}

impl SimClock {
    /// A clock that starts at `start`.
    pub fn starting_at(start: Timestamp) -> SimClock {
        SimClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, duration: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        let step = jiff::SignedDuration::try_from(duration).unwrap_or(jiff::SignedDuration::MAX);
        *now = now.checked_add(step).unwrap_or(Timestamp::MAX);
    }
}

#[async_trait::async_trait]
impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}
