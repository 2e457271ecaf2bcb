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
    Ok(ReleaseStatus {
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
