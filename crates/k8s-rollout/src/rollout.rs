//! Strategy operations, written once against [`Cluster`]: the replica-ratio canary, promotion,
//! abort, and waiting for readiness with a progress deadline.
//!
//! The canary is `<name>-canary`: the stable Deployment's pod template with the new image and the
//! label `slipway.dev/track: canary`, scaled so that it holds the requested share of the pods
//! behind the Service. Stable is never scaled down: a canary adds pods, so an abort only deletes
//! the canary and stable serves exactly as before. This works without a service mesh; the share is
//! a share of *pods*, which approximates traffic under round-robin load balancing.
//!
//! Every operation converges: starting a canary that exists re-applies it at the asked share,
//! promoting when stable already runs the image only waits for it and deletes the canary, and
//! aborting when there is no canary does nothing. A run killed anywhere can simply run again.

use std::time::Duration;

use slipway_core::{Clock, Outcome, ReleaseId, ReleaseRecord};

use crate::{Cluster, DeploymentSpec, DeploymentState, Error, TRACK_LABEL};

/// How long to wait between readiness checks.
const POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Name of the canary Deployment for a release.
pub fn canary_name(release: &ReleaseId) -> String {
    format!("{}-canary", release.name)
}

/// Canary replicas so that the canary holds about `percent` of all pods next to `stable` pods:
/// the smallest count whose share is at least `percent` (at least 1, at most `stable` for 50%).
pub fn canary_replicas(stable: u32, percent: u8) -> u32 {
    let percent = u64::from(percent.clamp(1, 99));
    let stable = u64::from(stable.max(1));
    // canary / (stable + canary) >= p/100  <=>  canary >= stable * p / (100 - p)
    let needed = (stable * percent).div_ceil(100 - percent);
    u32::try_from(needed.max(1)).unwrap_or(u32::MAX)
}

/// The share of pods a canary of `canary` replicas holds next to `stable`, in percent.
pub fn canary_share(stable: u32, canary: u32) -> f64 {
    let total = f64::from(stable) + f64::from(canary);
    if total == 0.0 {
        0.0
    } else {
        f64::from(canary) * 100.0 / total
    }
}

/// Reads the stable Deployment, or explains that it must exist first.
pub async fn stable(cluster: &dyn Cluster, release: &ReleaseId) -> Result<DeploymentState, Error> {
    cluster.deployment(&release.namespace, &release.name).await?.ok_or_else(|| Error::NotFound {
        kind: "Deployment",
        namespace: release.namespace.clone(),
        name: release.name.clone(),
        hint: "deploy the stable version first (e.g. with Helm or Argo CD); Slipway releases new versions of an existing Deployment".to_owned(),
    })
}

/// Builds the canary's spec from stable's.
pub fn canary_spec(
    stable: &DeploymentSpec,
    release: &ReleaseId,
    image: &str,
    replicas: u32,
) -> DeploymentSpec {
    let mut spec = stable.clone();
    spec.name = canary_name(release);
    spec.image = image.to_owned();
    spec.replicas = replicas;
    spec.pod_labels
        .insert(TRACK_LABEL.to_owned(), "canary".to_owned());
    spec.selector
        .insert(TRACK_LABEL.to_owned(), "canary".to_owned());
    spec
}

/// Creates or rescales the canary to hold `percent` of the pods, and waits until it is ready.
/// Returns the canary's replica count.
pub async fn set_canary_weight(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    image: &str,
    percent: u8,
    deadline: Duration,
) -> Result<u32, Error> {
    let stable = stable(cluster, release).await?;
    let replicas = canary_replicas(stable.spec.replicas, percent);
    cluster
        .derive_deployment(
            &release.name,
            &canary_spec(&stable.spec, release, image, replicas),
        )
        .await?;
    wait_ready(
        cluster,
        clock,
        &release.namespace,
        &canary_name(release),
        deadline,
    )
    .await?;
    Ok(replicas)
}

/// Waits until every pod of the Deployment runs its current template and is ready, or fails with
/// the reason once `deadline` passes. A pod problem that cannot heal (image pull, crash loop)
/// still waits for the deadline: Kubernetes retries pulls and restarts, and so do we.
pub async fn wait_ready(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    namespace: &str,
    name: &str,
    deadline: Duration,
) -> Result<(), Error> {
    let mut waited = Duration::ZERO;
    loop {
        let state = cluster
            .deployment(namespace, name)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "Deployment",
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                hint: "it was deleted while Slipway waited for it".to_owned(),
            })?;
        if state.rolled_out() {
            return Ok(());
        }
        if waited >= deadline {
            let reason = match &state.problem {
                Some(problem) => problem.to_string(),
                None => format!(
                    "{} of {} pods ready on the new template",
                    state.updated_ready_replicas, state.spec.replicas
                ),
            };
            return Err(Error::NotReady {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                waited,
                reason,
            });
        }
        clock.sleep(POLL_INTERVAL).await;
        waited += POLL_INTERVAL;
    }
}

/// Promotes: stable gets the canary's image, we wait for its rollout, then delete the canary.
/// If stable does not become ready, the canary is left in place (it was serving fine) and the
/// error says so; stable's own rollout is Kubernetes' to roll back.
pub async fn promote(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    image: &str,
    deadline: Duration,
) -> Result<(), Error> {
    let stable = stable(cluster, release).await?;
    let mut spec = stable.spec;
    spec.image = image.to_owned();
    cluster.apply_deployment(&spec).await?;
    wait_ready(cluster, clock, &release.namespace, &release.name, deadline).await?;
    cluster
        .delete_deployment(&release.namespace, &canary_name(release))
        .await
}

/// Aborts: deletes the canary. Stable is not touched.
pub async fn abort(cluster: &dyn Cluster, release: &ReleaseId) -> Result<(), Error> {
    cluster
        .delete_deployment(&release.namespace, &canary_name(release))
        .await
}

/// The revision a rollback returns to: `to` if given (it must be in the history and have been
/// promoted once), else the newest promoted or rolled-back revision whose image differs from
/// what stable runs now.
pub fn rollback_target<'a>(
    history: &'a [ReleaseRecord],
    current_image: &str,
    to: Option<u64>,
) -> Result<&'a ReleaseRecord, String> {
    let serving =
        |record: &&ReleaseRecord| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack);
    match to {
        Some(revision) => {
            let record = history
                .iter()
                .find(|record| record.revision == revision)
                .ok_or_else(|| {
                    let kept: Vec<String> = history
                        .iter()
                        .map(|record| record.revision.to_string())
                        .collect();
                    format!(
                        "revision {revision} is not in the history (kept: {})",
                        if kept.is_empty() {
                            "none".to_owned()
                        } else {
                            kept.join(", ")
                        }
                    )
                })?;
            if serving(&record) {
                Ok(record)
            } else {
                Err(format!(
                    "revision {revision} was {}, never served",
                    record.outcome
                ))
            }
        }
        None => history
            .iter()
            .rev()
            .filter(serving)
            .find(|record| {
                record
                    .image
                    .pinned()
                    .is_some_and(|pinned| pinned != current_image)
            })
            .ok_or_else(|| {
                "no earlier served revision with a different image in the history".to_owned()
            }),
    }
}

/// Rolls stable back to an earlier revision from the history in the cluster (so any CI runner
/// can do it): removes any canary, sets stable's image to the target's pinned image and waits for
/// it. Returns the target record; the caller records the rollback as a new revision.
pub async fn rollback(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    to: Option<u64>,
    deadline: Duration,
) -> Result<ReleaseRecord, Error> {
    let history = cluster.release_history(release).await?;
    let stable = stable(cluster, release).await?;
    let target = rollback_target(&history, &stable.spec.image, to)
        .map_err(|message| Error::Api {
            operation: format!("roll back `{release}`"),
            message,
        })?
        .clone();
    let image = target.image.pinned().unwrap_or_default();
    abort(cluster, release).await?;
    let mut spec = stable.spec;
    spec.image = image;
    cluster.apply_deployment(&spec).await?;
    wait_ready(cluster, clock, &release.namespace, &release.name, deadline).await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use slipway_core::SimClock;

    use super::*;
    use crate::{Fault, MemoryCluster};

    #[test]
    fn replica_maths() {
        // (stable, percent) -> canary replicas, share
        for (stable, percent, want) in [
            (4, 10, 1),
            (9, 10, 1),
            (10, 10, 2),
            (4, 25, 2),
            (4, 50, 4),
            (3, 50, 3),
            (1, 1, 1),
            (0, 20, 1),
            (100, 99, 9900),
        ] {
            assert_eq!(
                canary_replicas(stable, percent),
                want,
                "stable {stable}, {percent}%"
            );
            assert!(canary_share(stable, want) >= f64::from(percent.clamp(1, 99)) || stable == 0);
        }
    }

    fn setup() -> (Arc<SimClock>, MemoryCluster, ReleaseId) {
        let clock = Arc::new(SimClock::starting_at(
            "2026-11-22T10:00:00Z".parse().expect("ts"),
        ));
        let cluster = MemoryCluster::new(clock.clone());
        let labels: BTreeMap<_, _> = [("app".to_owned(), "iris".to_owned())].into();
        cluster.seed_deployment(DeploymentSpec {
            namespace: "ml".into(),
            name: "iris".into(),
            replicas: 4,
            selector: labels.clone(),
            pod_labels: labels.clone(),
            container: "server".into(),
            image: "reg/iris@sha256:old".into(),
        });
        cluster.seed_service("ml", "iris", labels);
        (clock, cluster, ReleaseId::parse("ml/iris").expect("id"))
    }

    #[tokio::test]
    async fn canary_promote_replaces_stable_image_and_removes_canary() {
        let (clock, cluster, release) = setup();
        let deadline = Duration::from_secs(600);
        let replicas = set_canary_weight(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:new",
            25,
            deadline,
        )
        .await
        .expect("canary");
        assert_eq!(replicas, 2);
        let behind_service = cluster.endpoints("ml", "iris");
        assert_eq!(
            behind_service,
            [("iris".to_owned(), 4), ("iris-canary".to_owned(), 2)]
        );
        promote(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:new",
            deadline,
        )
        .await
        .expect("promote");
        let stable = cluster
            .deployment("ml", "iris")
            .await
            .expect("get")
            .expect("stable");
        assert_eq!(stable.spec.image, "reg/iris@sha256:new");
        assert_eq!(stable.revision, 2);
        assert!(
            cluster
                .deployment("ml", "iris-canary")
                .await
                .expect("get")
                .is_none()
        );
    }

    #[tokio::test]
    async fn failing_canary_reports_why_and_abort_leaves_stable_untouched() {
        let (clock, cluster, release) = setup();
        cluster.inject("sha256:bad", Fault::CrashLoop);
        let before = cluster.deployment("ml", "iris").await.expect("get");
        let err = set_canary_weight(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:bad",
            10,
            Duration::from_secs(60),
        )
        .await
        .expect_err("crash loop");
        let text = err.to_string();
        assert!(
            text.contains("iris-canary") && text.contains("CrashLoopBackOff"),
            "{text}"
        );
        abort(&cluster, &release).await.expect("abort");
        assert_eq!(cluster.deployment("ml", "iris").await.expect("get"), before);
        assert!(
            cluster
                .deployment("ml", "iris-canary")
                .await
                .expect("get")
                .is_none()
        );
    }

    #[tokio::test]
    async fn slow_readiness_beyond_deadline_times_out_within_is_fine() {
        let (clock, cluster, release) = setup();
        cluster.inject("sha256:slow", Fault::SlowReadiness(Duration::from_secs(90)));
        let image = "reg/iris@sha256:slow";
        let short = set_canary_weight(
            &cluster,
            clock.as_ref(),
            &release,
            image,
            10,
            Duration::from_secs(30),
        )
        .await;
        assert!(matches!(short, Err(Error::NotReady { .. })), "{short:?}");
        // The same pods keep starting; a longer deadline sees them ready.
        wait_ready(
            &cluster,
            clock.as_ref(),
            "ml",
            "iris-canary",
            Duration::from_secs(120),
        )
        .await
        .expect("ready");
    }

    #[tokio::test]
    async fn lock_refuses_other_holder_until_expiry() {
        let (clock, cluster, release) = setup();
        cluster
            .acquire_lock(&release, "ci-run-1", Duration::from_secs(60))
            .await
            .expect("first");
        let err = cluster
            .acquire_lock(&release, "ci-run-2", Duration::from_secs(60))
            .await
            .expect_err("held");
        assert!(err.to_string().contains("locked by `ci-run-1`"), "{err}");
        clock.advance(Duration::from_secs(61));
        cluster
            .acquire_lock(&release, "ci-run-2", Duration::from_secs(60))
            .await
            .expect("taken over after expiry");
    }
}
