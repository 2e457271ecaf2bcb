//! Stopping a command from outside: a signal (a cancelled CI job) or the loss of the release's
//! lock.
//!
//! An [`Interrupt`] is a one-shot flag shared by whoever can stop the work (the binaries' signal
//! handler, the lock's renewal) and the stage machine, which races every stage against it. The
//! first [`Interruption`] wins; later ones are ignored, so the record names the real cause.

use std::sync::Arc;

use tokio::sync::watch;

/// Why a command must stop now.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Interruption {
    /// A signal: SIGINT (2) or SIGTERM (15), as a cancelled GitHub job sends them.
    Signal {
        /// `SIGINT`, `SIGTERM`.
        name: String,
        /// The signal's number: the command exits with 128 + it.
        number: i32,
    },
    /// Renewing the release's lock failed for longer than its time to live, or another
    /// holder took it: two pipelines must never both believe they own a release.
    LockLost {
        /// What the renewal saw.
        reason: String,
    },
}

impl Interruption {
    /// The audit verdict: `cancelled` or `lock-lost`.
    pub fn verdict(&self) -> &'static str {
        match self {
            Interruption::Signal { .. } => "cancelled",
            Interruption::LockLost { .. } => "lock-lost",
        }
    }
}

impl std::fmt::Display for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Interruption::Signal { name, .. } => write!(f, "cancelled by {name}"),
            Interruption::LockLost { reason } => write!(f, "lock lost: {reason}"),
        }
    }
}

/// A one-shot stop flag, cheap to clone; every clone sees the same flag.
#[derive(Debug, Clone)]
pub struct Interrupt {
    flag: Arc<watch::Sender<Option<Interruption>>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt {
            flag: Arc::new(watch::Sender::new(None)),
        }
    }
}

impl Interrupt {
    /// A flag nobody has raised.
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    /// Raises the flag; returns `false` when it was already raised (the first cause stays).
    pub fn trigger(&self, why: Interruption) -> bool {
        self.flag.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(why);
                true
            } else {
                false
            }
        })
    }

    /// The cause, once raised.
    pub fn current(&self) -> Option<Interruption> {
        self.flag.borrow().clone()
    }

    /// Waits until the flag is raised.
    pub async fn triggered(&self) -> Interruption {
        let mut rx = self.flag.subscribe();
        loop {
            if let Some(why) = rx.borrow_and_update().clone() {
                return why;
            }
            if rx.changed().await.is_err() {
                // The sender lives in `self`, so this cannot happen; never resolve rather than
                // invent a cause.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// A clock whose waits never end once the [`Interrupt`] is raised: the stage machine races its
/// stages against the interrupt, but a stage whose every call completes at once (in-memory
/// backends, a simulated clock) would never yield to that race. Checking at every wait makes
/// an interrupt take effect at the next wait at the latest, whatever the backends.
pub(crate) struct InterruptibleClock {
    inner: std::sync::Arc<dyn slipway_core::Clock>,
    interrupt: Interrupt,
}

impl InterruptibleClock {
    pub(crate) fn new(
        inner: std::sync::Arc<dyn slipway_core::Clock>,
        interrupt: Interrupt,
    ) -> InterruptibleClock {
        InterruptibleClock { inner, interrupt }
    }
}

#[async_trait::async_trait]
impl slipway_core::Clock for InterruptibleClock {
    fn now(&self) -> jiff::Timestamp {
        self.inner.now()
    }

    async fn sleep(&self, duration: std::time::Duration) {
        if self.interrupt.current().is_some() {
            std::future::pending::<()>().await;
        }
        tokio::select! {
            biased;
            _ = self.interrupt.triggered() => std::future::pending::<()>().await,
            () = self.inner.sleep(duration) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_cause_wins_and_wakes_every_waiter() {
        let interrupt = Interrupt::new();
        let waiter = interrupt.clone();
        let task = tokio::spawn(async move { waiter.triggered().await });
        tokio::task::yield_now().await;
        assert!(interrupt.trigger(Interruption::Signal {
            name: "SIGINT".into(),
            number: 2
        }));
        assert!(!interrupt.trigger(Interruption::LockLost { reason: "x".into() }));
        let why = task.await.expect("task");
        assert_eq!(why.verdict(), "cancelled");
        assert_eq!(interrupt.current(), Some(why));
    }
}
