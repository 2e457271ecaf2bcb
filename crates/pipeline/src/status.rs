//! `status`: where a release stands, read from the cluster's history and the audit trail.

use serde::Serialize;
use slipway_audit_log::{ApprovalRecord, Event};
use slipway_core::{Outcome, ReleaseRecord};
use slipway_k8s_rollout::rollout;

use crate::{Backends, ReleaseSpec};

/// The canary, as it runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanaryStatus {
    /// Its image.
    pub image: String,
    /// Ready pods.
    pub ready: u32,
    /// Desired pods.
    pub replicas: u32,
}

/// Where a release stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseStatus {
    /// `namespace/name`.
    pub release: String,
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
    let approvals = match &paused {
        None => Vec::new(),
        Some(paused) => backends
            .audit
            .entries()
            .await
            .map_err(|err| err.to_string())?
            .into_iter()
            .filter_map(|entry| match entry.event {
                Event::Approval(approval)
                    if &approval.release == release
                        && approval.digest == paused.digest
                        && approval.model == paused.model =>
                {
                    Some(approval)
                }
                _ => None,
            })
            .collect(),
    };
    let in_progress = history
        .last()
        .filter(|record| record.outcome == Outcome::InProgress)
        .cloned();
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
    Ok(ReleaseStatus {
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

impl ReleaseStatus {
    /// For people.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "release: {}\nstable: {}\n",
            self.release,
            self.stable_image.as_deref().unwrap_or("not found")
        );
        match &self.canary {
            Some(canary) => text.push_str(&format!(
                "canary: {} ({}/{} ready)\n",
                canary.image, canary.ready, canary.replicas
            )),
            None => text.push_str("canary: none\n"),
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
