//! The release pipeline: preflight → model gate → resolve digest → scan gate → sign → verify →
//! canary steps with analysis → approval → promote → record, composed from the boundary crates.
//!
//! Key design decision: the pipeline is a library over [`Backends`] (one trait object per
//! external system), so the binaries, the dry run, the tests and a platform team's own tool all
//! run the *same* sequence; only the backends differ. It prints nothing: each decision goes to
//! an [`Observer`] as it happens and into the [`RunReport`] at the end.
//!
//! Invariants kept here:
//! - Nothing in the cluster or registry changes before preflight and every gate passed.
//! - A failure after the canary starts deletes the canary; stable keeps its image and replicas.
//! - Every decision is appended to the audit trail.

mod approvals;
mod backends;
mod interrupt;
pub mod lock;
mod notify;
mod reload;
mod report;
mod rollback;
mod run;
mod spec;
mod status;
pub mod watch;

pub use approvals::{ApprovalGiven, ApprovalTrust};
pub use backends::{Backends, SystemClock};
pub use interrupt::{Interrupt, Interruption};
pub use notify::{FanOut, MemoryNotifier, Notification, Notifier, WebhookKind, WebhookNotifier};
pub use reload::{ADMIN_TOKEN_HEADER, ReloadSpec, reload};
pub use report::{BackendInfo, RunOutcome, RunReport, StageEvent, StageStatus, StepShare};
pub use rollback::{RollbackSpec, RollbackTarget, choose_target, rollback};
pub use run::{
    ApproveError, Observer, Resume, approve, approve_with, model_evidence, plan, resume, run,
};
pub use spec::{GivenApproval, ReleaseSpec};
pub use status::{CanaryStatus, Progress, ReleaseStatus, State, StepAnalysis, history, status};
