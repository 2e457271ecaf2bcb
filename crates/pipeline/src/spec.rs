//! [`ReleaseSpec`]: everything a run needs to know, parsed and validated before it starts.

use std::time::Duration;

use slipway_analysis::AnalysisPlan;
use slipway_core::{ImageRef, ModelRef, ReleaseId, Strategy};
use slipway_gates::Policy;
use slipway_gates::window::WindowOverride;
use slipway_k8s_rollout::rollout::{CoarseSteps, TrafficRouting};

/// An approval given to this run directly (interactive use: `--approve-as`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GivenApproval {
    /// Who approves.
    pub approver: String,
    /// Why.
    pub reason: String,
}

/// A release to run. Built by the binaries from configuration; every field is already valid.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseSpec {
    /// Which release (namespace and stable Deployment).
    pub release: ReleaseId,
    /// The Service in front of it.
    pub service: String,
    /// Which model version to release.
    pub model: ModelRef,
    /// Alias marking the serving version; moved on promotion.
    pub serving_alias: String,
    /// The image to deploy (tag or digest).
    pub image: ImageRef,
    /// Rollout strategy.
    pub strategy: Strategy,
    /// Canary weights in percent.
    pub steps: Vec<u8>,
    /// How the canary gets its weight: its share of the pods behind `service` (default), or an
    /// exact share of the requests through an NGINX canary Ingress.
    pub traffic: TrafficRouting,
    /// What to do when a replica-ratio step would expose more of the pods than asked by more
    /// than one pod's granularity allows (checked in preflight against stable's replicas).
    pub coarse_steps: CoarseSteps,
    /// Pause after each step.
    pub pause: Duration,
    /// How long pods may take to become ready.
    pub progress_deadline: Duration,
    /// Records kept in the cluster's release history.
    pub history_limit: usize,
    /// Analysis run at each canary step.
    pub analysis: AnalysisPlan,
    /// Every gate's policy. When `policy.signatures.trusted_keys` is empty, the keys the
    /// backends were given to verify with are the trusted ones.
    pub policy: Policy,
    /// An approval given to this run.
    pub approval: Option<GivenApproval>,
    /// A deploy-window override given to this run (who and why; recorded).
    pub window_override: Option<WindowOverride>,
    /// Sign the image with the backends' signer.
    pub sign: bool,
    /// The model server's reload endpoint, called after promotion.
    pub reload: Option<crate::reload::ReloadSpec>,
    /// Ignore rules from the team's `.trivyignore` / `.trivyignore.yaml` files, applied by the
    /// scan gate after the policy's own.
    pub vuln_ignores: Vec<slipway_scanner::IgnoreRule>,
    /// When the change being released was committed (for DORA's lead time), when known.
    pub source_time: Option<jiff::Timestamp>,
    /// When the approval gate finds too few approvals: pause with the canary running (the
    /// separate-CI-job pattern: `slipway-deploy approve` and `promote` later), instead of
    /// aborting.
    pub pause_for_approval: bool,
    /// Who runs it.
    pub actor: String,
    /// The CI run this command is part of (`owner/repo#run_id` in GitHub Actions), recorded on
    /// the revision so that only that run's environment reviews approve it.
    pub ci_run: Option<String>,
}
