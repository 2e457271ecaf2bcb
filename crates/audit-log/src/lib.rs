//! The audit trail: an append-only, hash-chained log of releases, approvals and decisions.
//!
//! Each [`Entry`] carries the SHA-256 of the previous entry and its own hash over
//! `(seq, at, prev, event)`, so editing, removing or reordering any entry breaks the chain, and
//! [`verify`] says where. Truncating the tail leaves a valid chain, so [`verify`] also takes the
//! head a reader saw last ([`Head`]: sequence number and hash), which a CI job can keep as an
//! artifact or a step output.
//!
//! Implementations of [`AuditStore`]:
//! - [`MemoryAuditStore`]: a vector, for the dry run and tests.
//! - [`FileAuditStore`]: JSON Lines in a file, appended and flushed per entry.

mod chain;
mod store;

pub use chain::{ChainProblem, Entry, Head, verify};
pub use store::{FileAuditStore, MemoryAuditStore};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slipway_core::{Digest, ModelVersion, ReleaseId, ReleaseRecord};

/// A recorded approval: who approved which digest and model version of which release, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Which release.
    pub release: ReleaseId,
    /// Who approved.
    pub approver: String,
    /// When.
    pub at: Timestamp,
    /// Why, in their words.
    pub reason: String,
    /// The image digest approved: an approval does not carry over to another image.
    pub digest: Digest,
    /// The model version approved.
    pub model: ModelVersion,
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Event {
    /// A revision ended (promoted, aborted, failed, rolled back).
    Release(ReleaseRecord),
    /// Someone approved a release.
    Approval(ApprovalRecord),
    /// A pipeline stage decided something (a gate, the analysis, an override).
    Decision {
        /// Which release.
        release: ReleaseId,
        /// Which stage (`model-gate`, `analysis`, …).
        stage: String,
        /// `pass`, `fail`, `skip`, `override`, …
        verdict: String,
        /// The reason in a sentence.
        detail: String,
    },
}

/// Errors reading or writing the trail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store could not be read or written.
    #[error("audit trail `{path}`: {operation} failed")]
    Io {
        /// Where.
        path: String,
        /// What.
        operation: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid entry.
    #[error(
        "audit trail `{path}` line {line}: not a valid entry ({message})\n\nhint: the file was edited by hand or is corrupt; `slipway-audit verify` shows where the chain breaks"
    )]
    Corrupt {
        /// Where.
        path: String,
        /// 1-based line.
        line: usize,
        /// Parser message.
        message: String,
    },
}

/// An append-only audit store.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event, chaining it to the last entry, and returns the new entry.
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error>;
    /// Every entry, oldest first.
    async fn entries(&self) -> Result<Vec<Entry>, Error>;
}
