//! `status`: where a release stands, read from the cluster's history, the lock and the audit
//! trail; `history`: every revision the cluster keeps.
//!
//! Where the progress of a running (or paused) canary comes from, and why: the pipeline writes
//! two records while it runs, and `status` reads only those, never guessing.
//! - The in-progress (or paused) record in the release history names the revision, its digest,
//!   model and strategy, who started it and the objects it creates.
//! - The audit trail gets one `analysis` decision per analysed step (`step N: <reasons>`, the
//!   reasons naming each metric's measurements and value against its limit) before the next
//!   step starts. The decisions after the release's last ended revision (the trail also holds
//!   the in-progress and paused records, which do not end one) are the current revision's: the number
//!   of steps analysed, each one's verdict and values. The current step is the one after the
//!   last analysed (the last, once paused); its weight is the live replica share for a
//!   replica-ratio canary, and the configured step for exact-weight routing (what the run sets
//!   once the step's pods are ready).
//! - Individual measurements inside a step are not recorded (only streamed to the running
//!   command's stderr): `status` shows the analysed steps, not a measurement in flight.
//!   Recording every measurement would add a cluster or trail write per measurement.

use serde::Serialize;
use slipway_audit_log::{ApprovalRecord, Event};
use slipway_core::{Outcome, ReleaseRecord, Strategy};
use slipway_k8s_rollout::LockHolder;
use slipway_k8s_rollout::rollout::{self, TrafficRouting};

use crate::{Backends, ReleaseSpec};

/// The canary, as it runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CanaryStatus {
    /// Its image.
    pub image: String,
    /// Ready pods.
    pub ready: u32,
    /// Desired pods.
    pub replicas: u32,
}

/// What `status` concludes, and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The last revision was promoted (or rolled back to) and stable is ready: exit 0.
    Promoted,
    /// No revision yet, and stable is ready: exit 0.
    Healthy,
    /// The last revision was aborted, failed or cancelled: exit 1.
    Aborted,
    /// Stable is missing or not ready, or Slipway objects were left behind: exit 1.
    Degraded,
    /// Waiting for approval: exit 3 (not final).
    Paused,
    /// A run is going on (or was killed; `abort` settles it): exit 3 (not final).
    InProgress,
}

impl State {
    /// Whether waiting longer cannot change it (`status --watch` stops).
    pub fn is_final(self) -> bool {
        !matches!(self, State::Paused | State::InProgress)
    }
}

/// One analysed step of the current revision, from its `analysis` decision in the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct StepAnalysis {
    /// The step, 1-based.
    pub step: usize,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: String,
    /// Each metric's value against its limit.
    pub detail: String,
    /// When it was decided (RFC 3339).
    pub at: String,
}

/// How far the current revision's canary got (see the module docs for the sources).
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Progress {
    /// The step running now (or paused after), 1-based; 0 before the first step's analysis.
    pub step: usize,
    /// Steps configured.
    pub steps: usize,
    /// The canary's share in percent: of pods (replica ratio, live) or of requests (exact
    /// weights, the configured step).
    pub weight_percent: Option<f64>,
    /// `pods` or `requests`.
    pub weight_of: String,
    /// The steps analysed so far, oldest first.
    pub analysed: Vec<StepAnalysis>,
}

/// Where a release stands.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ReleaseStatus {
    /// `namespace/name`.
    pub release: String,
    /// What the status amounts to (the exit code of `slipway-deploy status`).
    pub state: State,
    /// The canary's progress, while a canary revision is paused or in progress.
    pub progress: Option<Progress>,
    /// Who holds the release's lock now (a command working on it), if anyone.
    pub lock: Option<LockHolder>,
    /// The lock's holder missed a renewal of its lease: probably a command that died holding it
    /// (`slipway-deploy unlock` breaks it).
    pub lock_stale: bool,
    /// What stable runs.
    pub stable_image: Option<String>,
    /// The newest revisions, newest last (at most five).
    pub revisions: Vec<ReleaseRecord>,
    /// The revision paused at the approval gate, if the last one is.
    pub paused: Option<ReleaseRecord>,
    /// The canary, if one runs.
    pub canary: Option<CanaryStatus>,
    /// Approvals bound to the paused revision's digest and model version.
    pub approvals: Vec<ApprovalRecord>,
    /// Approvals the policy requires.
    pub approvals_required: u32,
    /// The last revision, if it is still in progress: its run is going on, or was killed
    /// (`slipway-deploy abort` or the next `run` cleans up after it).
    pub in_progress: Option<ReleaseRecord>,
    /// Slipway objects of the release that exist although nothing is paused or in progress:
    /// left by a command that died (`slipway-deploy abort` removes them).
    pub orphans: Vec<String>,
    /// A promoted revision whose serving alias still has to be moved (the next command does).
    pub alias_pending: Option<String>,
}

/// Reads the release's status. Changes nothing.
pub async fn status(spec: &ReleaseSpec, backends: &Backends) -> Result<ReleaseStatus, String> {
    let release = &spec.release;
    let cluster = &backends.cluster;
    let stable = cluster
        .deployment(&release.namespace, &release.name)
        .await
        .map_err(|err| err.to_string())?;
    let canary = cluster
        .deployment(&release.namespace, &rollout::canary_name(release))
        .await
        .map_err(|err| err.to_string())?;
    let history = cluster
        .release_history(release)
        .await
        .map_err(|err| err.to_string())?;
    let paused = history
        .last()
        .filter(|record| record.outcome == Outcome::Paused)
        .cloned();
    // Only the approvals the gate would count: in the trail's hash chain, signed outside the
    // demo, and from an authenticated identity (the gate's own reading of the trail), for
    // this revision's digest and model.
    let approvals = match &paused {
        None => Vec::new(),
        Some(paused) => {
            let counted: Vec<(jiff::Timestamp, String)> =
                crate::approvals::recorded_approvals(backends, release)
                    .await?
                    .into_iter()
                    .filter(|approval| approval.authenticated.is_ok())
                    .map(|approval| (approval.at, approval.reason))
                    .collect();
            backends
                .audit
                .entries()
                .await
                .map_err(|err| err.to_string())?
                .into_iter()
                .filter_map(|entry| match entry.event {
                    Event::Approval(approval)
                        if &approval.release == release
                            && approval.digest == paused.digest
                            && approval.model == paused.model
                            && counted.contains(&(approval.at, approval.reason.clone())) =>
                    {
                        Some(approval)
                    }
                    _ => None,
                })
                .collect()
        }
    };
    let in_progress = history
        .last()
        .filter(|record| record.outcome == Outcome::InProgress)
        .cloned();
    let lock = cluster
        .lock_holder(release)
        .await
        .map_err(|err| err.to_string())?;
    let orphans = if paused.is_some() || in_progress.is_some() {
        Vec::new()
    } else {
        let config = slipway_k8s_rollout::bluegreen::BlueGreenConfig::new(spec.service.clone());
        slipway_k8s_rollout::cleanup::managed_objects(
            cluster.as_ref(),
            release,
            &spec.service,
            &spec.traffic,
            Some(&config),
        )
        .await
        .map_err(|err| err.to_string())?
        .iter()
        .map(ToString::to_string)
        .collect()
    };
    // The record keeps saying "pending" after a later command moved the alias: ask MLflow.
    let mut alias_pending = None;
    if let Some(record) = history
        .iter()
        .rev()
        .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
        && let Some(alias) = &record.alias_pending
    {
        let wanted = slipway_core::ModelRef {
            name: record.model.name.clone(),
            selector: slipway_core::ModelSelector::Alias(alias.clone()),
        };
        let moved = backends
            .models
            .resolve(&wanted)
            .await
            .is_ok_and(|info| info.version == record.model);
        if !moved {
            alias_pending = Some(alias.clone());
        }
    }
    let current = paused.as_ref().or(in_progress.as_ref());
    let progress = match current {
        Some(record) if record.strategy == Strategy::Canary => {
            let entries = backends
                .audit
                .entries()
                .await
                .map_err(|err| err.to_string())?;
            Some(progress(
                spec,
                &entries,
                record.outcome == Outcome::Paused,
                stable.as_ref().map(|state| state.spec.replicas),
                canary.as_ref().map(|state| state.spec.replicas),
            ))
        }
        _ => None,
    };
    let stable_ready = stable
        .as_ref()
        .is_some_and(|state| state.ready_replicas >= state.spec.replicas);
    let state = match history.last().map(|record| record.outcome) {
        Some(Outcome::Paused) => State::Paused,
        Some(Outcome::InProgress) => State::InProgress,
        Some(Outcome::Aborted | Outcome::Failed | Outcome::Cancelled) => State::Aborted,
        _ if !stable_ready || !orphans.is_empty() => State::Degraded,
        Some(Outcome::Promoted | Outcome::RolledBack) => State::Promoted,
        None => State::Healthy,
    };
    Ok(ReleaseStatus {
        state,
        progress,
        lock_stale: lock.as_ref().is_some_and(|lock| {
            crate::lock::missed_renewal(lock)
                .is_some_and(|missed| backends.clock.now() >= missed.stale_from)
        }),
        lock,
        in_progress,
        orphans,
        alias_pending,
        release: release.to_string(),
        stable_image: stable.map(|state| state.spec.image),
        revisions: history.iter().rev().take(5).rev().cloned().collect(),
        paused,
        canary: canary.map(|state| CanaryStatus {
            image: state.spec.image,
            ready: state.ready_replicas,
            replicas: state.spec.replicas,
        }),
        approvals,
        approvals_required: spec.policy.approvals.required,
    })
}

/// Every revision of the release the cluster keeps, oldest first. Changes nothing.
pub async fn history(
    spec: &ReleaseSpec,
    backends: &Backends,
) -> Result<Vec<ReleaseRecord>, String> {
    backends
        .cluster
        .release_history(&spec.release)
        .await
        .map_err(|err| err.to_string())
}

/// The current revision's progress from the trail's `analysis` decisions after the release's
/// last ended revision, and the live replicas (see the module docs).
fn progress(
    spec: &ReleaseSpec,
    entries: &[slipway_audit_log::Entry],
    paused: bool,
    stable_replicas: Option<u32>,
    canary_replicas: Option<u32>,
) -> Progress {
    let release = &spec.release;
    let since = entries
        .iter()
        .rposition(|entry| {
            matches!(&entry.event, Event::Release(record)
                if &record.release == release
                    && !matches!(record.outcome, Outcome::InProgress | Outcome::Paused))
        })
        .map_or(0, |index| index + 1);
    let analysed: Vec<StepAnalysis> = entries[since..]
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::Decision {
                release: decided,
                stage,
                verdict,
                detail,
            } if decided == release && stage == "analysis" => {
                let (step, detail) = detail.strip_prefix("step ")?.split_once(": ")?;
                Some(StepAnalysis {
                    step: step.parse().ok()?,
                    verdict: verdict.clone(),
                    detail: detail.to_owned(),
                    at: entry.at.to_string(),
                })
            }
            _ => None,
        })
        .collect();
    let steps = spec.steps.len();
    let done = analysed.iter().map(|step| step.step).max().unwrap_or(0);
    let step = if paused || canary_replicas.is_none() {
        done
    } else {
        (done + 1).min(steps)
    };
    let (weight_percent, weight_of) = match &spec.traffic {
        TrafficRouting::ReplicaRatio => (
            canary_replicas.map(|canary| {
                (rollout::canary_share(stable_replicas.unwrap_or(0), canary) * 100.0).round()
                    / 100.0
            }),
            "pods",
        ),
        _ => (
            step.checked_sub(1)
                .and_then(|index| spec.steps.get(index))
                .map(|weight| f64::from(*weight)),
            "requests",
        ),
    };
    Progress {
        step,
        steps,
        weight_percent,
        weight_of: weight_of.to_owned(),
        analysed,
    }
}

impl ReleaseStatus {
    /// For people.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "release: {}\nstate: {}\nstable: {}\n",
            self.release,
            serde_json::to_value(self.state)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default(),
            self.stable_image.as_deref().unwrap_or("not found")
        );
        match &self.canary {
            Some(canary) => text.push_str(&format!(
                "canary: {} ({}/{} ready)\n",
                canary.image, canary.ready, canary.replicas
            )),
            None => text.push_str("canary: none\n"),
        }
        if let Some(progress) = &self.progress {
            let weight = progress.weight_percent.map_or_else(
                || "no canary".to_owned(),
                |weight| format!("{weight}% of {}", progress.weight_of),
            );
            text.push_str(&format!(
                "step: {} of {} ({weight}), {} analysed\n",
                progress.step,
                progress.steps,
                progress.analysed.len()
            ));
            for step in &progress.analysed {
                text.push_str(&format!(
                    "  step {} {} at {}: {}\n",
                    step.step, step.verdict, step.at, step.detail
                ));
            }
        }
        match &self.lock {
            Some(lock) if self.lock_stale => text.push_str(&format!(
                "lock: held by {} until {}, but it missed a renewal (last {}): if its job is gone, `slipway-deploy unlock '{}' --reason \"…\"`\n",
                lock.holder,
                lock.expires,
                lock.renewed.as_deref().unwrap_or("unknown"),
                lock.holder
            )),
            Some(lock) => text.push_str(&format!(
                "lock: held by {} until {}\n",
                lock.holder, lock.expires
            )),
            None => text.push_str("lock: free\n"),
        }
        if let Some(paused) = &self.paused {
            text.push_str(&format!(
                "paused: revision {} ({} at {}) waits for approval: {} of {} given\n",
                paused.revision,
                paused.model,
                paused.digest.short(),
                self.approvals.len(),
                self.approvals_required
            ));
            for approval in &self.approvals {
                text.push_str(&format!(
                    "  approved by {} at {}: {}\n",
                    approval.approver, approval.at, approval.reason
                ));
            }
        }
        if let Some(record) = &self.in_progress {
            text.push_str(&format!(
                "in progress: revision {} ({} at {}) started by {}{} (if its command is gone: `slipway-deploy abort`)\n",
                record.revision,
                record.model,
                record.digest.short(),
                record.actor,
                if record.creates.is_empty() {
                    String::new()
                } else {
                    format!("; creates {}", record.creates.join(", "))
                }
            ));
        }
        if !self.orphans.is_empty() {
            text.push_str(&format!(
                "orphans: {} (no revision is paused or in progress; `slipway-deploy abort` removes them)\n",
                self.orphans.join(", ")
            ));
        }
        if let Some(alias) = &self.alias_pending {
            text.push_str(&format!(
                "alias pending: `{alias}` still has to move to the promoted version (the next command does it)\n"
            ));
        }
        text.push_str("revisions:\n");
        for record in &self.revisions {
            text.push_str(&format!(
                "  {:>3}  {:<11} {}  {} at {}  by {}\n",
                record.revision,
                record.outcome.to_string(),
                record.at,
                record.model,
                record.digest.short(),
                record.actor
            ));
        }
        text
    }
}
