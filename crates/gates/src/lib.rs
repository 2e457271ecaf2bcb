//! Release gates: pure, synchronous judgement of a declarative policy over evidence that was
//! already collected.
//!
//! Key design decision: a gate never fetches anything. The pipeline gathers [`evidence`] at the
//! edges (model registry, scanner, signatures, clock, approvals) and calls the gate functions here,
//! which return a [`GateReport`] listing *every* configured check with pass, fail or skip and a
//! reason, never only the first failure. That makes gates trivially testable and replayable.
//!
//! Gates shipped:
//! - [`model`]: version status and metric thresholds, no regression against what serves now.
//! - [`vuln`]: vulnerability findings at or above a severity threshold, after ignore rules.

pub mod model;
mod report;
pub mod vuln;

pub use report::{Check, CheckStatus, GateReport};
