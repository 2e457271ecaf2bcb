//! The audit trail: an append-only, hash-chained log of releases, approvals and decisions,
//! signed with the deploy key when one is configured.
//!
//! Each [`Entry`] carries the SHA-256 of the previous entry and its own hash over
//! `(seq, at, prev, event)`, so editing, removing or reordering any entry breaks the chain, and
//! [`verify`] says where. Truncating the tail leaves a valid chain, so [`verify`] also takes the
//! head a reader saw last ([`Head`]: sequence number and hash), which a CI job can keep as an
//! artifact or a step output.
//!
//! A hash chain alone only proves consistency: whoever can write the store can rewrite every
//! entry after the one they change and recompute the hashes. So when the store has a signer (the
//! deploy key), each entry also carries an ECDSA signature over its hash ([`EntrySignature`]),
//! and [`verify_signatures`] checks them against trusted public keys, reporting unsigned entries,
//! unknown keys and signatures that do not verify.
//!
//! Key design decision: a write that a crash cut short never yields an entry that verifies.
//! [`FileAuditStore`] writes each entry as one line *including* its newline in a single `write`,
//! then `fsync`s; a last line without its newline, or one that does not parse, is a
//! [`DamageKind::TruncatedWrite`], never an entry. [`AuditStore::read`] reports such damage
//! (so `slipway-audit verify` can show it), [`AuditStore::entries`] fails on it, and
//! [`AuditStore::append`] refuses to chain onto it and names the command that repairs it.
//!
//! Implementations of [`AuditStore`]:
//! - [`MemoryAuditStore`]: a vector, for the dry run and tests.
//! - [`FileAuditStore`]: JSON Lines in a file, one `write` + `fsync` per entry.
//! - `slipway_k8s_rollout::ClusterAuditStore`: one ConfigMap per entry in the release's
//!   namespace, so every runner sees the same trail.

mod chain;
mod store;

pub use chain::{
    ChainProblem, ChainVerifier, Entry, EntrySignature, Head, check_sequence, signed_payload,
    verify, verify_entry_signature, verify_signature, verify_signatures,
};
pub use store::{FileAuditStore, MemoryAuditStore};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use slipway_core::{Digest, ModelVersion, ReleaseId, ReleaseRecord};

/// A recorded approval: who approved which revision, digest and model version of which release,
/// why, until when, and how the approver's identity is known.
///
/// The fields added after the first release (`revision`, `expires`, `source`) are left out of
/// the JSON when empty, so an entry written before them still hashes as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The revision approved (the paused one): an approval of an aborted attempt does not carry
    /// over to the next attempt of the same digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// When the approval stops counting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// Where the approver's identity comes from.
    #[serde(default, skip_serializing_if = "ApprovalSource::is_named")]
    pub source: ApprovalSource,
}

/// Where an approval's identity comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ApprovalSource {
    /// A name given on the command line: counts only in the embedded demo world.
    #[default]
    Named,
    /// A review of a GitHub Actions run's environment, read from GitHub's REST API by the
    /// approve step (whose own entry signature vouches for what it read).
    #[serde(rename = "github")]
    GitHub {
        /// `owner/repo`.
        repository: String,
        /// The workflow run reviewed.
        run_id: u64,
        /// The environment the review approved.
        environment: String,
    },
    /// A DSSE envelope over a `slipway_attest::approval::ApprovalStatement`, signed by the
    /// approver's key; the gate takes the statement, not the fields beside it, as the approval.
    Signed {
        /// The envelope as signed (`payloadType`, base64 `payload`, `signatures`).
        #[schemars(with = "serde_json::Value")]
        envelope: slipway_attest::dsse::Envelope,
    },
}

impl ApprovalSource {
    /// Whether this is a name given on the command line.
    pub fn is_named(&self) -> bool {
        matches!(self, ApprovalSource::Named)
    }
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[allow(
    clippy::large_enum_variant,
    reason = "a handful of events per release, each moved once into its entry; boxing the record would change every construction site for no measurable gain"
)]
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

impl Event {
    /// The release this event is about.
    pub fn release(&self) -> &ReleaseId {
        match self {
            Event::Release(record) => &record.release,
            Event::Approval(approval) => &approval.release,
            Event::Decision { release, .. } => release,
        }
    }
}

/// What kind of damage a reader found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DamageKind {
    /// The last write did not finish (a crash or a full disk): a last line without its newline,
    /// or a last line that does not parse. It was never acknowledged, so it is not an entry.
    TruncatedWrite,
    /// A stored record in the middle of the trail cannot be read: it was edited or corrupted.
    Unreadable,
}

/// Part of a trail that is not a readable entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Damage {
    /// What kind.
    pub kind: DamageKind,
    /// Where: "`trail.jsonl` line 7" or "ConfigMap `ml/slipway-audit-iris-7`".
    pub location: String,
    /// What is wrong, in a sentence.
    pub detail: String,
    /// How to repair it.
    pub repair: String,
}

impl Damage {
    /// This damage as an error (for readers that need every entry).
    pub fn into_error(self) -> Error {
        Error::Damaged {
            kind: self.kind,
            location: self.location,
            detail: self.detail,
            repair: self.repair,
        }
    }
}

/// A trail as read: the entries that could be read, oldest first, and the damage found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trail {
    /// Readable entries, oldest first (a torn last write is never among them).
    pub entries: Vec<Entry>,
    /// Everything that could not be read.
    pub damage: Vec<Damage>,
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
    /// Part of the trail is not a readable entry; appending onto it is refused.
    #[error("audit trail {location}: {detail}\n\nhint: {repair}")]
    Damaged {
        /// Torn last write or unreadable record.
        kind: DamageKind,
        /// Where.
        location: String,
        /// What is wrong.
        detail: String,
        /// How to repair it.
        repair: String,
    },
    /// The trail's sequence numbers do not follow on (an entry far ahead, or one removed), so
    /// the next entry has no number; appending onto it is refused.
    #[error(
        "audit trail {location}: refusing to append: expected entry {expected}, found entry {found} (a sequence gap)\n\nhint: the trail was edited; `slipway-audit verify` shows where; keep the file as evidence and restore the trail from a backup"
    )]
    SequenceGap {
        /// Where.
        location: String,
        /// The sequence number that should have come next.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// The signer failed to sign an entry.
    #[error("audit trail: signing entry {seq} with key `{key_id}` failed")]
    Sign {
        /// The entry.
        seq: u64,
        /// The key.
        key_id: String,
        /// Why.
        #[source]
        source: Box<slipway_attest::Error>,
    },
    /// The backing store (e.g. the cluster) failed.
    #[error("audit trail {location}: {operation} failed: {message}")]
    Backend {
        /// Where.
        location: String,
        /// What.
        operation: String,
        /// Why, with a hint when there is one.
        message: String,
    },
}

/// An append-only audit store.
///
/// `dyn AuditStore` is chosen at run time (memory, file, cluster), hence `async_trait`.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event, chaining it to the last entry (and signing it when the store has a
    /// signer), and returns the new entry. Refuses when the trail is damaged.
    async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, Error>;
    /// The trail with whatever damage was found; fails only when the store cannot be read.
    async fn read(&self) -> Result<Trail, Error>;
    /// The last readable entry's sequence number and hash (`None` for an empty trail): what a
    /// release record carries as its `trail_head`.
    async fn head(&self) -> Result<Option<Head>, Error> {
        Ok(self.read().await?.entries.last().map(Entry::head))
    }
    /// Every entry, oldest first; fails on any damage.
    async fn entries(&self) -> Result<Vec<Entry>, Error> {
        let trail = self.read().await?;
        match trail.damage.into_iter().next() {
            Some(damage) => Err(damage.into_error()),
            None => Ok(trail.entries),
        }
    }
}
