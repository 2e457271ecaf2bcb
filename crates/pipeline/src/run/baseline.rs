//! The equal-size baseline (`compare.baseline = "deployment"`): a Deployment `<name>-baseline`
//! of stable's version at the canary's replica count, started once the canary's pods are ready
//! and removed with the canary on promote, abort, cancel and rollback, so the comparison judges
//! two tracks of the same size and age (Kayenta's recommendation). Kept in its own functions so
//! the stage machine only calls them: after the canary is ready, after promotion, and in
//! `remove_managed`, through which every stop removes what the run created.
//!
//! With the replica ratio the baseline's pods carry stable's labels, so they serve from the
//! user's Service and take the same share as the canary. With exact NGINX weights they are kept
//! out of the user's Service like the canary's and share the canary Service with them: the
//! canary Ingress asks for twice the step's weight, split evenly by two Deployments of the same
//! size (see `slipway_k8s_rollout::rollout`'s docs); preflight refuses steps above 50%.

use super::*;

impl Ctx<'_> {
    /// Whether the plan asks for a baseline Deployment.
    pub(super) fn wants_baseline(&self) -> bool {
        self.spec
            .analysis
            .compare
            .as_ref()
            .is_some_and(|compare| compare.wants_baseline_deployment())
    }

    /// Creates or rescales the baseline next to a ready canary of `replicas` pods.
    pub(super) async fn start_baseline(&mut self, replicas: u32) -> Result<(), Stop> {
        if !self.wants_baseline() {
            return Ok(());
        }
        let release = self.spec.release.clone();
        rollout::set_baseline(
            self.backends.cluster.as_ref(),
            self.backends.clock.as_ref(),
            &release,
            replicas,
            self.spec.progress_deadline,
            self.spec
                .traffic
                .isolates_canary()
                .then_some(self.spec.service.as_str()),
        )
        .await
        .map_err(|err| match err {
            slipway_k8s_rollout::Error::NotReady { .. } => {
                rejected(format!("baseline unhealthy: {}", chain(&err)))
            }
            other => failed(chain(&other)),
        })?;
        self.emit(
            "canary",
            StageStatus::Info,
            format!(
                "{replicas} baseline pod(s) of stable's version ready in {}: the comparison judges the canary against track `{}`",
                rollout::baseline_name(&release),
                rollout::BASELINE_TRACK
            ),
        );
        Ok(())
    }

    /// Removes the baseline when the plan asks for one and it exists; returns what it removed.
    pub(super) async fn remove_baseline(&mut self) -> Result<Option<String>, Stop> {
        if !self.wants_baseline() {
            return Ok(None);
        }
        let release = &self.spec.release;
        let name = rollout::baseline_name(release);
        let cluster = self.backends.cluster.as_ref();
        let exists = cluster
            .deployment(&release.namespace, &name)
            .await
            .map_err(|err| failed(chain(&err)))?
            .is_some();
        if !exists {
            return Ok(None);
        }
        rollout::remove_baseline(cluster, release)
            .await
            .map_err(|err| failed(chain(&err)))?;
        Ok(Some(format!("Deployment/{}/{name}", release.namespace)))
    }
}
