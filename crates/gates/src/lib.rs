//! Release gates: pure, synchronous judgement of a declarative policy over evidence that was
//! already collected.
//!
//! Key design decision: a gate never fetches anything. The pipeline gathers the evidence at the
//! edges (model registry, scanner, signature verification, clock, approvals) and calls the gate
//! functions here, which return a [`GateReport`] listing *every* configured check with pass,
//! fail or skip and a reason, never only the first failure. That makes gates trivially testable
//! and replayable. Not even the clock is read here: time is an argument.
//!
//! Gates shipped, each a module with a `…Policy` (serde, the `[policy.…]` table of
//! `slipway.toml`), an evidence struct (plain data), and `evaluate(&policy, &evidence) ->
//! GateReport`:
//! - [`model`]: version status and metric thresholds, no regression against what serves now;
//!   NaN and infinite metrics fail.
//! - [`vuln`]: vulnerability findings at or above a severity threshold, after ignore rules.
//! - [`signature`]: a signature verified with a trusted key, provenance from a trusted builder
//!   and an allowed source repository.
//! - [`window`]: allow and deny windows (cron + duration + time zone, deny wins), with a recorded
//!   override that needs a reason.
//! - [`approval`]: enough distinct allowed approvers, not the release's own actor, bound to the
//!   digest and model version being released.
//!
//! [`Policy`] gathers every gate's policy, checks what serde cannot ([`Policy::validate`], errors
//! name the key such as `policy.windows.deny[0].schedule`) and runs them all
//! ([`Policy::evaluate`]). Reports render as text, Markdown and JSON ([`GateReport`]).

pub mod approval;
pub mod model;
mod policy;
mod report;
pub mod signature;
pub mod vuln;
pub mod window;

pub use policy::{Evidence, Policy, PolicyError, PolicyProblem};
pub use report::{Check, CheckStatus, GateReport};
