//! Slipway's shared domain types: image references, digests, model references, release records,
//! secrets and the clock.
//!
//! Key design decision: every type here is *parsed, not validated*. A value of [`ImageRef`],
//! [`Digest`], [`ModelRef`] or [`ReleaseId`] can only exist if its text followed the grammar, so
//! the crates that use them never re-check. Parse errors say what is wrong, where (byte offset)
//! and how to fix it.
//!
//! This crate does no I/O and depends on no runtime: it is the common language of the other crates.

mod clock;
mod digest;
mod model;
mod reference;
mod release;
mod schema;
mod secret;

pub use clock::{Clock, SimClock};
pub use digest::{Digest, DigestAlgorithm, DigestError};
pub use model::{ModelRef, ModelRefError, ModelSelector, ModelVersion, Stage};
pub use reference::{DEFAULT_REGISTRY, ImageRef, ImageRefError};
pub use release::{Outcome, ReleaseId, ReleaseIdError, ReleaseRecord, Strategy, TrailHead};
pub use secret::Secret;
