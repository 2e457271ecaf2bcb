//! What a run reports: the stage events as they happened and the outcome.
//!
//! `RunReport` is the JSON document `slipway-deploy run --output json` prints; its field names are
//! a contract for CI jobs that read it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Serialize;
use slipway_analysis::AnalysisRun;
use slipway_core::{Digest, ModelVersion};
use slipway_gates::GateReport;

/// How a stage event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StageStatus {
    /// The stage began.
    Start,
    /// It passed.
    Pass,
    /// It said no, or failed.
    Fail,
    /// It did not apply.
    Skip,
    /// Something worth telling on the way.
    Info,
}

/// One event of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StageEvent {
    /// Stage name (`preflight`, `model-gate`, …).
    pub stage: &'static str,
    /// What happened.
    pub status: StageStatus,
    /// When (simulated time in dry runs).
    pub at: Timestamp,
    /// A sentence.
    pub message: String,
}

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunOutcome {
    /// The new version serves (exit 0).
    Promoted,
    /// `slipway-rollback`: an earlier good revision serves again (exit 0).
    RolledBack,
    /// A plan whose every gate passes (exit 0).
    WouldProceed,
    /// The canary passed and waits for approval; stable untouched (exit 0).
    Paused,
    /// A gate, the analysis or the approval said no; stable untouched (exit 1).
    Rejected,
    /// An error kept the run from finishing; stable untouched (exit 2).
    Failed,
    /// `abort` found nothing to abort: nothing paused or in progress, no Slipway object (exit 0).
    Unchanged,
    /// `abort` removed the paused or unfinished revision, which is recorded `aborted`; stable
    /// untouched (exit 0: the command did what it was asked, so the job that aborts a refused
    /// canary is green).
    Aborted,
    /// A signal (exit 128 + its number) or the loss of the release's lock (exit 2) stopped the
    /// run; what it started was removed, stable untouched. [`RunReport::interruption`] says which.
    Cancelled,
}

/// One canary step: the share asked for and the share the canary got (or, in a plan, would get).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct StepShare {
    /// The step's number, from 1.
    pub step: usize,
    /// The step's weight from `rollout.steps`, in percent.
    pub requested_percent: u8,
    /// The canary's share, in percent, to two decimals: of the pods behind the Service with
    /// replica-ratio routing, of the requests (exactly the request) with NGINX routing.
    pub actual_percent: f64,
    /// Canary replicas at this step.
    pub canary_replicas: u32,
    /// Stable's replicas next to them.
    pub stable_replicas: u32,
    /// A single canary pod was more than the request and the step ran (or would run) with it
    /// anyway, because `rollout.coarse_steps = "round-up"`.
    pub rounded_up: bool,
}

/// Everything a run decided.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct RunReport {
    /// `namespace/name`.
    pub release: String,
    /// Revision recorded, once the run got that far.
    pub revision: Option<u64>,
    /// Outcome.
    pub outcome: RunOutcome,
    /// Why it ended this way.
    pub reason: String,
    /// The candidate model version, once resolved.
    pub model: Option<ModelVersion>,
    /// The image digest, once resolved.
    pub digest: Option<Digest>,
    /// Every stage event, in order.
    pub stages: Vec<StageEvent>,
    /// Every gate check (model, vulnerabilities, signatures, approvals).
    #[schemars(with = "serde_json::Value")]
    pub gates: GateReport,
    /// Each analysis run, one per canary step.
    #[schemars(with = "Vec<serde_json::Value>")]
    pub analysis: Vec<AnalysisRun>,
    /// What stopped a `cancelled` run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interruption: Option<crate::Interruption>,
    /// Each canary step's requested and actual share: in a plan every step as it would run, in
    /// a run the steps that ran. Empty for blue-green and rolling.
    pub steps: Vec<StepShare>,
    /// Which implementation served each system (`models`, `registry`, `cluster`, `metrics`,
    /// `scanner`) and whether it was simulated. The pipeline only carries it: the caller that
    /// chose the backends fills it in; empty when nobody did.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backends: BTreeMap<String, BackendInfo>,
}

/// One system's implementation in a [`RunReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct BackendInfo {
    /// `memory`, `mlflow`, `oci`, `kubernetes`, `prometheus`, `trivy-report`, `trivy`.
    pub implementation: String,
    /// True when the in-memory world stood in for the real system.
    pub simulated: bool,
}

impl RunReport {
    /// An empty report for `release`: failed, with no reason yet, until a run fills it in.
    pub fn new(release: &slipway_core::ReleaseId) -> RunReport {
        RunReport {
            release: release.to_string(),
            revision: None,
            outcome: RunOutcome::Failed,
            reason: String::new(),
            model: None,
            digest: None,
            stages: Vec::new(),
            gates: GateReport::default(),
            analysis: Vec::new(),
            interruption: None,
            steps: Vec::new(),
            backends: BTreeMap::new(),
        }
    }
}
