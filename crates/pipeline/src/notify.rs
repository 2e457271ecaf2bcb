//! The notification boundary: where "release promoted" and "release stopped" messages go.
//!
//! Implementations: [`MemoryNotifier`] (collects messages; the dry run prints them). A failed
//! notification never fails a release: it is reported as a stage event instead.

use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// A message about a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// `namespace/name`.
    pub release: String,
    /// `promoted`, `aborted`, `failed`.
    pub outcome: String,
    /// One sentence.
    pub summary: String,
}

/// Sends notifications.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one; the error is a sentence for the run's log.
    async fn notify(&self, notification: &Notification) -> Result<(), String>;
}

/// Keeps every notification in memory.
#[derive(Debug, Default)]
pub struct MemoryNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl MemoryNotifier {
    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Notification> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait::async_trait]
impl Notifier for MemoryNotifier {
    async fn notify(&self, notification: &Notification) -> Result<(), String> {
        self.sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(notification.clone());
        Ok(())
    }
}
