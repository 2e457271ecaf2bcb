//! Strategy operations, written once against [`Cluster`]: the replica-ratio canary, promotion,
//! abort, and waiting for readiness with a progress deadline.
//!
//! The canary is `<name>-canary`: the stable Deployment's pod template with the new image and the
//! label `slipway.dev/track: canary`, scaled so that it holds the requested share of the pods
//! behind the Service. Stable is never scaled down: a canary adds pods, so an abort only deletes
//! the canary and stable serves exactly as before. This works without a service mesh; the share is
//! a share of *pods*, which approximates traffic under round-robin load balancing.
//! Whole pods make the shares coarse: `k` canary pods next to `n` stable hold `k / (n + k)`.
//! [`replica_share`] gives a step's pods and share, and [`ReplicaShare::too_coarse`] says when
//! even one canary pod is more than the step asked for ([`CoarseSteps`] decides what then).
//!
//! Exact traffic weights ([`TrafficRouting::NginxIngress`]): a Slipway-owned canary Ingress,
//! derived from the user's Ingress, asks the NGINX ingress controller for exactly the step's
//! percentage of requests ([`set_traffic_weight`]), sent to the Slipway-owned canary Service
//! `<service>-canary`. The canary pods are then kept out of the user's Service
//! ([`isolate_canary`]), or they would also get a pod-ratio share of the remaining requests and
//! the weight would not be exact. The canary Deployment is still scaled to the pod ratio (at
//! least 1 ready replica): with a weight the replicas no longer decide the share, but scaling
//! them with it keeps the canary's capacity in step with its traffic, so a 50% step does not
//! land on one pod. Rejected: a fixed single canary pod (overloaded at high weights) and
//! scaling stable down (an abort would then have to restore stable's capacity first).
//!
//! With an equal-size baseline (`compare.baseline = "deployment"`) and exact weights, the
//! baseline gets the canary's weight too: ingress-nginx routes one canary Ingress per host and
//! path, so there is no second weight to give. Instead the canary and baseline pods both carry
//! [`WEIGHTED_LABEL`], the canary Service selects on that label alone, and the canary Ingress
//! asks for twice the step's weight: NGINX balances the requests of one Service evenly across
//! its endpoints, and the two Deployments run the same number of pods, so each gets the step's
//! share (exact in expectation, as the replica ratio is) and stable keeps the rest (none at a
//! 50% step). A step above 50% cannot be given twice; preflight refuses such a plan
//! ([`baseline_weight_fits`]).
//!
//! Every operation converges: starting a canary that exists re-applies it at the asked share,
//! promoting when stable already runs the image only waits for it and deletes the canary, and
//! aborting when there is no canary does nothing. A run killed anywhere can simply run again.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use slipway_core::{Clock, Outcome, ReleaseId, ReleaseRecord};

use crate::{
    CanaryIngress, Cluster, DeploymentSpec, DeploymentState, Error, RELEASE_LABEL, TRACK_LABEL,
};

/// How requests are split between stable and the canary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrafficRouting {
    /// The canary holds the step's share of the *pods* behind the user's Service; the traffic
    /// share follows under round-robin load balancing. Needs nothing but the Service.
    #[default]
    ReplicaRatio,
    /// The NGINX ingress controller sends exactly the step's percentage of requests to the
    /// canary, through a canary Ingress derived from the user's Ingress `ingress`.
    NginxIngress {
        /// The user's Ingress that routes to the release's Service.
        ingress: String,
    },
    /// The Gateway API: the user's HTTPRoute `route` sends exactly the step's percentage of its
    /// requests to the canary Service by weighted `backendRefs` ([`crate::gateway`]).
    GatewayApi {
        /// The user's HTTPRoute whose rules send traffic to the release's Service.
        route: String,
    },
}

impl TrafficRouting {
    /// Whether the canary pods must be kept out of the user's Service ([`isolate_canary`]).
    pub fn isolates_canary(&self) -> bool {
        !matches!(self, TrafficRouting::ReplicaRatio)
    }
}

/// Label on every pod behind the canary Ingress (the canary's and, with exact weights, the
/// baseline's), valued with the release's name: with a baseline the canary Service selects on
/// it alone, so the canary Ingress's weight is shared evenly by the two equal Deployments.
pub const WEIGHTED_LABEL: &str = "slipway.dev/weighted";

/// Whether exact weights can give both the canary and the baseline `percent` of the requests
/// (the canary Ingress then asks for `2 × percent`, at most 100).
pub fn baseline_weight_fits(percent: u8) -> bool {
    percent <= 50
}

/// Name of the Slipway-owned baseline Service next to the release's Service `service` (Gateway
/// API weights with the equal-size baseline).
pub fn baseline_service_name(service: &str) -> String {
    format!("{service}-baseline")
}

/// Name of the Slipway-owned canary Service next to the release's Service `service`.
pub fn canary_service_name(service: &str) -> String {
    format!("{service}-canary")
}

/// Name of the Slipway-owned canary Ingress next to the user's Ingress `ingress`.
pub fn canary_ingress_name(ingress: &str) -> String {
    format!("{ingress}-canary")
}

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

/// What a replica-ratio step asked for and what whole pods give it: the step's canary replicas
/// next to `stable_replicas` and the share of pods they hold ([`replica_share`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaShare {
    /// The step's weight, in percent of pods.
    pub requested_percent: u8,
    /// Canary replicas for the step ([`canary_replicas`]).
    pub canary_replicas: u32,
    /// Stable's replicas, never scaled by a canary.
    pub stable_replicas: u32,
    /// The share of all pods the canary holds, in percent ([`canary_share`]).
    pub achievable_percent: f64,
}

/// The canary replicas and the share of pods they hold when a step asks for `percent` of the
/// pods next to `stable` replicas.
pub fn replica_share(stable: u32, percent: u8) -> ReplicaShare {
    let canary = canary_replicas(stable, percent);
    ReplicaShare {
        requested_percent: percent,
        canary_replicas: canary,
        stable_replicas: stable,
        achievable_percent: canary_share(stable, canary),
    }
}

impl ReplicaShare {
    /// Whether the step would expose more than asked by more than one pod's granularity allows.
    ///
    /// The rule: a step is too coarse when even a single canary pod holds more than the
    /// requested share, that is when `requested < 100 / (stable + 1)` percent. Then the request
    /// lies below every share a canary can have (`k / (stable + k)` for `k >= 1` pods); running
    /// it does not round the step, it replaces it with a different, larger one. Steps [10, 25, 50]
    /// on 4 stable replicas: 10 % is too coarse (one pod is 20 %); 25 % is not, it lies
    /// between one pod (20 %) and two (33 %), and [`canary_replicas`] rounds it up to the next
    /// whole pod, so it exceeds the request by less than the share of the one pod added.
    ///
    /// Why this rule: it is the one overshoot no choice of canary size can fix, it strikes the
    /// first step, the one meant to limit the blast radius, and the remedy is exact (give
    /// stable at least [`min_stable_replicas`] replicas). Rejected: comparing the overshoot
    /// with the gap between neighbouring shares, which never refuses a one-pod canary (its
    /// lower neighbour is no canary at all, so the gap is the whole share); and a relative
    /// tolerance (say 1.5 × the request), which is a number nobody can derive from the pods.
    pub fn too_coarse(&self) -> bool {
        // requested < 100 / (stable + 1), in integers.
        u64::from(self.requested_percent) * (u64::from(self.stable_replicas) + 1) < 100
    }
}

/// The fewest stable replicas next to which one canary pod holds at most `percent` of the pods,
/// so that a step of `percent` is not [`ReplicaShare::too_coarse`]: `ceil(100 / percent) - 1`.
pub fn min_stable_replicas(percent: u8) -> u32 {
    let percent = u32::from(percent.max(1));
    100u32.div_ceil(percent).saturating_sub(1)
}

/// What to do with a replica-ratio step that is [`ReplicaShare::too_coarse`]
/// (`rollout.coarse_steps`). Exact traffic weights ([`TrafficRouting::NginxIngress`]) are
/// never coarse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoarseSteps {
    /// Stop the release before any change, naming the requested and achievable shares.
    #[default]
    Refuse,
    /// Run the step with one canary pod anyway; the larger share is told and recorded.
    RoundUp,
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

/// Name of the equal-size baseline Deployment for a release (Kayenta's recommendation: compare
/// the canary with a baseline of stable's version started at the same time and with the same
/// size, not with the long-running stable pods).
pub fn baseline_name(release: &ReleaseId) -> String {
    format!("{}-baseline", release.name)
}

/// The track label of the baseline's pods (`{{track}}` of the comparison's baseline queries).
pub const BASELINE_TRACK: &str = "baseline";

/// Builds the baseline's spec from stable's: stable's image and configuration, `replicas`
/// (the canary's), track [`BASELINE_TRACK`].
pub fn baseline_spec(
    stable: &DeploymentSpec,
    release: &ReleaseId,
    replicas: u32,
) -> DeploymentSpec {
    let mut spec = stable.clone();
    spec.name = baseline_name(release);
    spec.replicas = replicas;
    spec.pod_labels
        .insert(TRACK_LABEL.to_owned(), BASELINE_TRACK.to_owned());
    spec.selector
        .insert(TRACK_LABEL.to_owned(), BASELINE_TRACK.to_owned());
    spec
}

/// Creates or rescales the baseline next to a ready canary of `replicas` pods, and waits until
/// it is ready. Stable is not touched. With the replica ratio its pods match the user's Service
/// like stable's, so it takes the same share of traffic as the canary. With
/// `isolate_from: Some(service)` (exact weights) its pods are kept out of that Service like the
/// canary's and wait behind the canary Service ([`set_traffic_weight`] with a baseline).
pub async fn set_baseline(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    replicas: u32,
    deadline: Duration,
    isolate_from: Option<&str>,
) -> Result<(), Error> {
    let stable = stable(cluster, release).await?;
    let mut spec = baseline_spec(&stable.spec, release, replicas);
    if let Some(service) = isolate_from {
        let selector = user_selector(cluster, release, service).await?;
        isolate(&mut spec, release, &selector, BASELINE_TRACK);
    }
    cluster.derive_deployment(&release.name, &spec).await?;
    wait_ready(
        cluster,
        clock,
        &release.namespace,
        &baseline_name(release),
        deadline,
    )
    .await
}

/// Deletes the baseline (on promote, abort, cancel and rollback, with the canary).
pub async fn remove_baseline(cluster: &dyn Cluster, release: &ReleaseId) -> Result<(), Error> {
    cluster
        .delete_deployment(&release.namespace, &baseline_name(release))
        .await
}

/// Keeps the canary's pods out of a Service with `service_selector` (the user's Service in front
/// of stable): when its pods would match, the labels the Service selects on are dropped from the
/// pod labels and the selector, and [`RELEASE_LABEL`]`=<name>` keeps the selector specific to
/// this release's canary. [`TRACK_LABEL`] is kept. A selector that already misses the canary
/// (say it selects `slipway.dev/track: stable`) leaves the spec as it is. Either way the pods
/// carry [`WEIGHTED_LABEL`]: they are the ones behind the canary Ingress.
pub fn isolate_canary(
    spec: &mut DeploymentSpec,
    release: &ReleaseId,
    service_selector: &BTreeMap<String, String>,
) {
    isolate(spec, release, service_selector, "canary");
}

/// [`isolate_canary`] for the pods of `track` (the canary's or the baseline's).
fn isolate(
    spec: &mut DeploymentSpec,
    release: &ReleaseId,
    service_selector: &BTreeMap<String, String>,
    track: &str,
) {
    spec.pod_labels
        .insert(WEIGHTED_LABEL.to_owned(), release.name.clone());
    let selected = !service_selector.is_empty()
        && service_selector
            .iter()
            .all(|(key, value)| spec.pod_labels.get(key) == Some(value));
    if !selected {
        return;
    }
    for key in service_selector.keys().filter(|key| *key != TRACK_LABEL) {
        spec.pod_labels.remove(key);
        spec.selector.remove(key);
    }
    for labels in [&mut spec.pod_labels, &mut spec.selector] {
        labels.insert(RELEASE_LABEL.to_owned(), release.name.clone());
        labels.insert(TRACK_LABEL.to_owned(), track.to_owned());
    }
}

/// The user's Service's selector, which isolated pods must stay out of.
async fn user_selector(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
) -> Result<BTreeMap<String, String>, Error> {
    cluster
        .service_selector(&release.namespace, service)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "Service",
            namespace: release.namespace.clone(),
            name: service.to_owned(),
            hint: "set `release.service` to the Service in front of the Deployment".to_owned(),
        })
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
    set_canary(cluster, clock, release, image, percent, deadline, None).await
}

/// [`set_canary_weight`], and with `isolate_from: Some(service)` the canary pods are kept out of
/// that Service ([`isolate_canary`]): what exact traffic weights need
/// ([`TrafficRouting::isolates_canary`]). The replicas still follow the pod ratio, at least 1.
pub async fn set_canary(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    image: &str,
    percent: u8,
    deadline: Duration,
    isolate_from: Option<&str>,
) -> Result<u32, Error> {
    let stable = stable(cluster, release).await?;
    let replicas = canary_replicas(stable.spec.replicas, percent);
    let mut spec = canary_spec(&stable.spec, release, image, replicas);
    if let Some(service) = isolate_from {
        let selector = user_selector(cluster, release, service).await?;
        isolate_canary(&mut spec, release, &selector);
    }
    cluster.derive_deployment(&release.name, &spec).await?;
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
///
/// The deadline is a point on `clock`, fixed when the wait starts, so the time the API calls
/// themselves take (a slow API server, retries after a 429) counts against it: summing the
/// sleeps instead would let a slow cluster stretch a 10-minute deadline without limit. The
/// last check happens at the deadline, not up to a poll interval before it.
pub async fn wait_ready(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    namespace: &str,
    name: &str,
    deadline: Duration,
) -> Result<(), Error> {
    let started = clock.now();
    let due = after(started, deadline);
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
        let now = clock.now();
        if now >= due {
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
                waited: between(started, now),
                reason,
            });
        }
        clock.sleep(POLL_INTERVAL.min(between(now, due))).await;
    }
}

/// `at + duration`, saturating at the end of time.
pub(crate) fn after(at: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|duration| at.checked_add(duration).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The time from `from` to `to`; zero when `to` is not later.
pub(crate) fn between(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or(Duration::ZERO)
}

/// Sends exactly `percent` of the requests to the canary, as `routing` can: with
/// [`TrafficRouting::NginxIngress`] it creates or updates the canary Service
/// `<service>-canary` (the user's Service's ports, selecting the canary Deployment's pods) and
/// the canary Ingress `<ingress>-canary` with `canary-weight: <percent>`. Call it once the canary
/// is ready, so the weight never points at pods that cannot serve. With
/// [`TrafficRouting::ReplicaRatio`] the pod count is the weight and this does nothing.
///
/// `with_baseline`: a ready baseline of the canary's size runs isolated next to it; the canary
/// Service then selects both by [`WEIGHTED_LABEL`] and the weight is `2 × percent`, so each gets
/// `percent` (see the module docs). A `percent` above 50 is refused: preflight keeps such a
/// plan from starting ([`baseline_weight_fits`]).
pub async fn set_traffic_weight(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    routing: &TrafficRouting,
    percent: u8,
    with_baseline: bool,
) -> Result<(), Error> {
    let ingress = match routing {
        TrafficRouting::ReplicaRatio => return Ok(()),
        TrafficRouting::GatewayApi { route } => {
            return weigh_route(cluster, release, service, route, percent, with_baseline).await;
        }
        TrafficRouting::NginxIngress { ingress } => ingress,
    };
    let canary = running(cluster, release, &canary_name(release)).await?;
    let canary_service = canary_service_name(service);
    let (selector, weight) = if with_baseline {
        if !baseline_weight_fits(percent) {
            return Err(Error::Api {
                operation: format!("set a {percent}% canary weight with a baseline"),
                message: "the baseline cannot get the canary's weight too above 50%: lower `rollout.steps` or drop `compare.baseline = \"deployment\"`".to_owned(),
            });
        }
        let pair = BTreeMap::from([(WEIGHTED_LABEL.to_owned(), release.name.clone())]);
        (pair, percent.saturating_mul(2))
    } else {
        (canary.spec.selector.clone(), percent.min(100))
    };
    cluster
        .copy_service(&release.namespace, service, &canary_service, &selector)
        .await?;
    cluster
        .apply_canary_ingress(&CanaryIngress {
            namespace: release.namespace.clone(),
            name: canary_ingress_name(ingress),
            source: ingress.clone(),
            service: service.to_owned(),
            canary_service,
            weight,
        })
        .await
}

/// A Deployment Slipway started for `release` (the canary or the baseline), which must run
/// before it gets traffic.
async fn running(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    name: &str,
) -> Result<DeploymentState, Error> {
    cluster
        .deployment(&release.namespace, name)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "Deployment",
            namespace: release.namespace.clone(),
            name: name.to_owned(),
            hint: "start the canary before sending it traffic".to_owned(),
        })
}

/// [`set_traffic_weight`] with [`TrafficRouting::GatewayApi`]: the canary Service (and the
/// baseline's), then the route's weights ([`crate::gateway::weigh`]).
async fn weigh_route(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    route: &str,
    percent: u8,
    with_baseline: bool,
) -> Result<(), Error> {
    let namespace = &release.namespace;
    if with_baseline && !baseline_weight_fits(percent) {
        return Err(Error::Api {
            operation: format!("set a {percent}% canary weight with a baseline"),
            message: "the baseline cannot get the canary's weight too above 50%: lower `rollout.steps` or drop `compare.baseline = \"deployment\"`".to_owned(),
        });
    }
    let current = cluster
        .http_route(namespace, route)
        .await?
        .ok_or_else(|| crate::missing_route(namespace, route))?;
    let canary = running(cluster, release, &canary_name(release)).await?;
    let canary_service = canary_service_name(service);
    cluster
        .copy_service(namespace, service, &canary_service, &canary.spec.selector)
        .await?;
    let baseline_service = baseline_service_name(service);
    if with_baseline {
        let baseline = running(cluster, release, &baseline_name(release)).await?;
        cluster
            .copy_service(
                namespace,
                service,
                &baseline_service,
                &baseline.spec.selector,
            )
            .await?;
    }
    let (rules, original) = crate::gateway::weigh(
        &current,
        &crate::gateway::Weights {
            service,
            canary_service: &canary_service,
            baseline_service: with_baseline.then_some(baseline_service.as_str()),
            percent,
        },
    )
    .map_err(|message| Error::Api {
        operation: format!("weight HTTPRoute `{namespace}/{route}`"),
        message,
    })?;
    cluster
        .apply_http_route(&crate::gateway::HttpRoute {
            rules,
            original: Some(original),
            ..current
        })
        .await
}

/// Puts the user's HTTPRoute back as it was before the canary ([`crate::gateway::restore`]);
/// nothing to do when it carries no canary or is gone.
pub async fn restore_route(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    route: &str,
) -> Result<(), Error> {
    let namespace = &release.namespace;
    let Some(current) = cluster.http_route(namespace, route).await? else {
        return Ok(());
    };
    let ours = [canary_service_name(service), baseline_service_name(service)];
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    if !crate::gateway::carries_canary(&current, &ours) {
        return Ok(());
    }
    let rules =
        crate::gateway::restore(&current, service, &ours).map_err(|message| Error::Api {
            operation: format!("restore HTTPRoute `{namespace}/{route}`"),
            message,
        })?;
    cluster
        .apply_http_route(&crate::gateway::HttpRoute {
            rules,
            original: None,
            ..current
        })
        .await
}

/// Sends every request back through the user's Ingress or HTTPRoute: deletes the canary
/// Ingress (or restores the route), then the canary Service (and the baseline's) — in that
/// order, so nothing routes to a Service that is gone. Absent objects are fine; with
/// [`TrafficRouting::ReplicaRatio`] there is nothing to remove.
pub async fn remove_traffic_routing(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    routing: &TrafficRouting,
) -> Result<(), Error> {
    let ingress = match routing {
        TrafficRouting::ReplicaRatio => return Ok(()),
        TrafficRouting::GatewayApi { route } => {
            restore_route(cluster, release, service, route).await?;
            cluster
                .delete_service(&release.namespace, &canary_service_name(service))
                .await?;
            return cluster
                .delete_service(&release.namespace, &baseline_service_name(service))
                .await;
        }
        TrafficRouting::NginxIngress { ingress } => ingress,
    };
    cluster
        .delete_canary_ingress(&release.namespace, &canary_ingress_name(ingress))
        .await?;
    cluster
        .delete_service(&release.namespace, &canary_service_name(service))
        .await
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
    promote_routed(
        cluster,
        clock,
        release,
        (&release.name, &TrafficRouting::ReplicaRatio),
        image,
        deadline,
    )
    .await
}

/// [`promote`] with the canary's traffic routed by `(service, routing)`: once stable runs the
/// image and is ready, the routing is removed ([`remove_traffic_routing`]) *before* the canary
/// Deployment is deleted, so no request is sent to a canary that is going away. A failed
/// removal keeps the canary Deployment (it still serves its weight) and is reported.
pub async fn promote_routed(
    cluster: &dyn Cluster,
    clock: &dyn Clock,
    release: &ReleaseId,
    (service, routing): (&str, &TrafficRouting),
    image: &str,
    deadline: Duration,
) -> Result<(), Error> {
    let stable = stable(cluster, release).await?;
    let mut spec = stable.spec;
    spec.image = image.to_owned();
    cluster.apply_deployment(&spec).await?;
    wait_ready(cluster, clock, &release.namespace, &release.name, deadline).await?;
    remove_traffic_routing(cluster, release, service, routing).await?;
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

/// [`abort`] with the canary's traffic routed by `(service, routing)`: the canary Ingress and
/// canary Service go first, so every request is back on stable before the canary pods go. A
/// failed removal keeps the canary Deployment (better its weight on the canary than errors).
pub async fn abort_routed(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    (service, routing): (&str, &TrafficRouting),
) -> Result<(), Error> {
    remove_traffic_routing(cluster, release, service, routing).await?;
    abort(cluster, release).await
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

    #[test]
    fn coarse_steps() {
        // (stable, percent) -> canary replicas, achievable share (rounded), too coarse
        for (stable, percent, canary, share, coarse) in [
            (4, 10, 1, 20.0, true),
            (4, 19, 1, 20.0, true),
            (4, 20, 1, 20.0, false),
            (4, 25, 2, 33.3, false),
            (4, 50, 4, 50.0, false),
            (9, 10, 1, 10.0, false),
            (8, 10, 1, 11.1, true),
            (10, 10, 2, 16.7, false),
            (3, 25, 1, 25.0, false),
            (2, 30, 1, 33.3, true),
            (1, 50, 1, 50.0, false),
            (0, 50, 1, 100.0, true),
            (99, 1, 1, 1.0, false),
            (98, 1, 1, 1.0, true),
        ] {
            let got = replica_share(stable, percent);
            let context = format!("stable {stable}, {percent}%: {got:?}");
            assert_eq!(got.canary_replicas, canary, "{context}");
            assert_eq!(got.stable_replicas, stable, "{context}");
            assert_eq!(got.requested_percent, percent, "{context}");
            assert!((got.achievable_percent - share).abs() < 0.05, "{context}");
            assert_eq!(got.too_coarse(), coarse, "{context}");
            // The remedy the refusal names is exact: that many stable replicas and no fewer.
            let enough = min_stable_replicas(percent);
            assert!(!replica_share(enough, percent).too_coarse(), "{context}");
            assert!(
                enough == 0 || replica_share(enough - 1, percent).too_coarse(),
                "{context}"
            );
        }
        assert_eq!(min_stable_replicas(10), 9);
        assert_eq!(min_stable_replicas(25), 3);
        assert_eq!(min_stable_replicas(30), 3);
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
    async fn baseline_runs_stable_image_at_the_canary_size_and_goes_with_it() {
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
        set_baseline(&cluster, clock.as_ref(), &release, replicas, deadline, None)
            .await
            .expect("baseline");
        let baseline = cluster
            .deployment("ml", "iris-baseline")
            .await
            .expect("read")
            .expect("baseline exists");
        assert_eq!(baseline.spec.image, "reg/iris@sha256:old", "stable's image");
        assert_eq!(baseline.spec.replicas, replicas, "the canary's size");
        assert_eq!(
            baseline
                .spec
                .pod_labels
                .get(TRACK_LABEL)
                .map(String::as_str),
            Some(BASELINE_TRACK)
        );
        assert!(baseline.rolled_out());
        let stable = cluster
            .deployment("ml", "iris")
            .await
            .expect("read")
            .expect("stable");
        assert_eq!(
            (stable.spec.replicas, stable.spec.image.as_str()),
            (4, "reg/iris@sha256:old")
        );
        remove_baseline(&cluster, &release).await.expect("removed");
        abort(&cluster, &release).await.expect("aborted");
        for name in ["iris-baseline", "iris-canary"] {
            assert!(
                cluster
                    .deployment("ml", name)
                    .await
                    .expect("read")
                    .is_none(),
                "{name}"
            );
        }
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

    /// A cluster whose every Deployment read takes `latency` of simulated time, as a slow API
    /// server (or one answering 429 with a wait) does.
    struct SlowReads {
        inner: MemoryCluster,
        clock: Arc<SimClock>,
        latency: Duration,
    }

    #[async_trait::async_trait]
    impl Cluster for SlowReads {
        async fn deployment(
            &self,
            namespace: &str,
            name: &str,
        ) -> Result<Option<DeploymentState>, Error> {
            self.clock.advance(self.latency);
            self.inner.deployment(namespace, name).await
        }
        async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), Error> {
            self.inner.apply_deployment(spec).await
        }
        async fn derive_deployment(
            &self,
            source: &str,
            spec: &DeploymentSpec,
        ) -> Result<(), Error> {
            self.inner.derive_deployment(source, spec).await
        }
        async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), Error> {
            self.inner.delete_deployment(namespace, name).await
        }
        async fn rolling_update(
            &self,
            namespace: &str,
            name: &str,
            image: &str,
            params: &crate::RollingParams,
        ) -> Result<(), Error> {
            self.inner
                .rolling_update(namespace, name, image, params)
                .await
        }
        async fn service_selector(
            &self,
            namespace: &str,
            name: &str,
        ) -> Result<Option<BTreeMap<String, String>>, Error> {
            self.inner.service_selector(namespace, name).await
        }
        async fn set_service_selector(
            &self,
            namespace: &str,
            name: &str,
            selector: &BTreeMap<String, String>,
        ) -> Result<(), Error> {
            self.inner
                .set_service_selector(namespace, name, selector)
                .await
        }
        async fn copy_service(
            &self,
            namespace: &str,
            source: &str,
            name: &str,
            selector: &BTreeMap<String, String>,
        ) -> Result<(), Error> {
            self.inner
                .copy_service(namespace, source, name, selector)
                .await
        }
        async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), Error> {
            self.inner.delete_service(namespace, name).await
        }
        async fn apply_canary_ingress(&self, ingress: &CanaryIngress) -> Result<(), Error> {
            self.inner.apply_canary_ingress(ingress).await
        }
        async fn delete_canary_ingress(&self, namespace: &str, name: &str) -> Result<(), Error> {
            self.inner.delete_canary_ingress(namespace, name).await
        }
        async fn http_route(
            &self,
            namespace: &str,
            name: &str,
        ) -> Result<Option<crate::gateway::HttpRoute>, Error> {
            self.inner.http_route(namespace, name).await
        }
        async fn apply_http_route(&self, route: &crate::gateway::HttpRoute) -> Result<(), Error> {
            self.inner.apply_http_route(route).await
        }
        async fn ownership(
            &self,
            kind: crate::ObjectKind,
            namespace: &str,
            name: &str,
        ) -> Result<crate::Ownership, Error> {
            self.inner.ownership(kind, namespace, name).await
        }
        async fn read_secret(
            &self,
            namespace: &str,
            name: &str,
            key: &str,
        ) -> Result<slipway_core::Secret, Error> {
            self.inner.read_secret(namespace, name, key).await
        }
        async fn emit_event(
            &self,
            namespace: &str,
            deployment: &str,
            reason: &str,
            message: &str,
        ) -> Result<(), Error> {
            self.inner
                .emit_event(namespace, deployment, reason, message)
                .await
        }
        async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, Error> {
            self.inner.release_history(release).await
        }
        async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), Error> {
            self.inner.record_release(record, limit).await
        }
        async fn acquire_lock(
            &self,
            release: &ReleaseId,
            holder: &str,
            ttl: Duration,
        ) -> Result<(), Error> {
            self.inner.acquire_lock(release, holder, ttl).await
        }
        async fn lock_holder(
            &self,
            release: &ReleaseId,
        ) -> Result<Option<crate::LockHolder>, Error> {
            Cluster::lock_holder(&self.inner, release).await
        }
        async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), Error> {
            self.inner.release_lock(release, holder).await
        }
        async fn audit_objects(
            &self,
            namespace: &str,
            trail: &str,
        ) -> Result<Vec<crate::AuditObject>, Error> {
            self.inner.audit_objects(namespace, trail).await
        }
        async fn create_audit_object(
            &self,
            namespace: &str,
            trail: &str,
            object: &crate::AuditObject,
        ) -> Result<crate::AuditCreate, Error> {
            self.inner
                .create_audit_object(namespace, trail, object)
                .await
        }
    }

    #[tokio::test]
    async fn slow_api_calls_count_against_the_progress_deadline() {
        let (clock, inner, release) = setup();
        // Ready 90 s after creation; every read takes 20 s; the deadline is 60 s. Summing only
        // the sleeps, the fourth read (at 95 s) would find the pods ready and call it a success.
        inner.inject("sha256:slow", Fault::SlowReadiness(Duration::from_secs(90)));
        let cluster = SlowReads {
            inner,
            clock: clock.clone(),
            latency: Duration::from_secs(20),
        };
        let stable = stable(&cluster, &release).await.expect("stable");
        let spec = canary_spec(&stable.spec, &release, "reg/iris@sha256:slow", 1);
        cluster
            .derive_deployment("iris", &spec)
            .await
            .expect("derive");
        let started = clock.now();
        let deadline = Duration::from_secs(60);
        let err = wait_ready(&cluster, clock.as_ref(), "ml", "iris-canary", deadline)
            .await
            .expect_err("not ready by the deadline");
        let elapsed = between(started, clock.now());
        let Error::NotReady { waited, .. } = err else {
            panic!("{err:?}");
        };
        // Reads end at 20 s, 45 s and 70 s: the one past the deadline fails the wait.
        assert_eq!(waited, Duration::from_secs(70));
        assert_eq!(elapsed, waited);
        assert!(elapsed <= deadline + cluster.latency, "{elapsed:?}");
    }

    #[tokio::test]
    async fn the_last_check_is_at_the_deadline_not_a_poll_interval_before_it() {
        let (clock, cluster, release) = setup();
        // Ready after 12 s; the deadline is 12 s, not a multiple of the 5 s poll interval.
        cluster.inject("sha256:slow", Fault::SlowReadiness(Duration::from_secs(12)));
        let stable = stable(&cluster, &release).await.expect("stable");
        let spec = canary_spec(&stable.spec, &release, "reg/iris@sha256:slow", 1);
        cluster
            .derive_deployment("iris", &spec)
            .await
            .expect("derive");
        let started = clock.now();
        wait_ready(
            &cluster,
            clock.as_ref(),
            "ml",
            "iris-canary",
            Duration::from_secs(12),
        )
        .await
        .expect("ready at the deadline");
        assert_eq!(between(started, clock.now()), Duration::from_secs(12));
    }

    #[test]
    fn isolation_drops_only_what_the_service_selects() {
        let release = ReleaseId::parse("ml/iris").expect("id");
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let canary = || {
            let mut spec = DeploymentSpec {
                namespace: "ml".into(),
                name: "iris-canary".into(),
                replicas: 1,
                selector: labels(&[("app", "iris")]),
                pod_labels: labels(&[("app", "iris"), ("tier", "web")]),
                container: "server".into(),
                image: "reg/iris@sha256:new".into(),
            };
            spec.pod_labels
                .insert(TRACK_LABEL.to_owned(), "canary".to_owned());
            spec.selector
                .insert(TRACK_LABEL.to_owned(), "canary".to_owned());
            spec
        };
        // (Service selector, pod labels after, selector after)
        let cases = [
            (
                labels(&[("app", "iris")]),
                labels(&[
                    ("tier", "web"),
                    (RELEASE_LABEL, "iris"),
                    (TRACK_LABEL, "canary"),
                ]),
                labels(&[(RELEASE_LABEL, "iris"), (TRACK_LABEL, "canary")]),
            ),
            (
                labels(&[("tier", "web")]),
                labels(&[
                    ("app", "iris"),
                    (RELEASE_LABEL, "iris"),
                    (TRACK_LABEL, "canary"),
                ]),
                labels(&[
                    ("app", "iris"),
                    (RELEASE_LABEL, "iris"),
                    (TRACK_LABEL, "canary"),
                ]),
            ),
            // Already out of the Service: unchanged.
            (
                labels(&[("app", "iris"), (TRACK_LABEL, "stable")]),
                canary().pod_labels,
                canary().selector,
            ),
            (BTreeMap::new(), canary().pod_labels, canary().selector),
        ];
        for (service, mut pods, selector) in cases {
            // Every isolated pod is one of those behind the canary Ingress.
            pods.insert(WEIGHTED_LABEL.to_owned(), "iris".to_owned());
            let mut spec = canary();
            isolate_canary(&mut spec, &release, &service);
            assert_eq!(
                (&spec.pod_labels, &spec.selector),
                (&pods, &selector),
                "{service:?}"
            );
            let still_selected = service
                .iter()
                .all(|(k, v)| spec.pod_labels.get(k) == Some(v));
            assert!(service.is_empty() || !still_selected, "{service:?}");
        }
    }

    fn seed_ingress(cluster: &MemoryCluster) {
        cluster.seed_ingress(
            "ml",
            "iris-web",
            vec![
                crate::IngressPath {
                    host: "iris.example.com".into(),
                    path: "/predict".into(),
                    service: "iris".into(),
                },
                crate::IngressPath {
                    host: "iris.example.com".into(),
                    path: "/docs".into(),
                    service: "docs".into(),
                },
            ],
        );
    }

    fn nginx() -> TrafficRouting {
        TrafficRouting::NginxIngress {
            ingress: "iris-web".into(),
        }
    }

    #[tokio::test]
    async fn nginx_weight_is_exact_and_promotion_removes_the_routing_first() {
        let (clock, cluster, release) = setup();
        seed_ingress(&cluster);
        let deadline = Duration::from_secs(600);
        let image = "reg/iris@sha256:new";
        for (percent, replicas) in [(10, 1), (25, 2), (50, 4)] {
            let got = set_canary(
                &cluster,
                clock.as_ref(),
                &release,
                image,
                percent,
                deadline,
                Some("iris"),
            )
            .await
            .expect("canary");
            assert_eq!(got, replicas, "{percent}%");
            set_traffic_weight(&cluster, &release, "iris", &nginx(), percent, false)
                .await
                .expect("weight");
            let canary_ingress = cluster.ingress("ml", "iris-web-canary").expect("ingress");
            assert_eq!(canary_ingress.canary_weight(), Some(percent));
            assert_eq!(
                canary_ingress.paths,
                [crate::IngressPath {
                    host: "iris.example.com".into(),
                    path: "/predict".into(),
                    service: "iris-canary".into(),
                }]
            );
            // Exact: the user's Service sees only stable, the canary Service only the canary.
            assert_eq!(cluster.endpoints("ml", "iris"), [("iris".to_owned(), 4)]);
            assert_eq!(
                cluster.endpoints("ml", "iris-canary"),
                [("iris-canary".to_owned(), replicas)]
            );
        }
        assert_eq!(
            cluster.ingress("ml", "iris-web").map(|i| i.managed),
            Some(false)
        );
        promote_routed(
            &cluster,
            clock.as_ref(),
            &release,
            ("iris", &nginx()),
            image,
            deadline,
        )
        .await
        .expect("promote");
        assert_eq!(cluster.ingress_names("ml"), ["iris-web"]);
        assert_eq!(cluster.service_names("ml"), ["iris"]);
        assert_eq!(cluster.deployment_names("ml"), ["iris"]);
    }

    /// With a baseline and exact weights the canary Ingress asks for twice the step, and the
    /// canary Service selects the canary's and the baseline's pods, the same number of each,
    /// so each gets the step's share; the user's Service still sees only stable. A step above
    /// 50% cannot be doubled and is refused; abort removes all of it.
    #[tokio::test]
    async fn nginx_gives_the_baseline_the_canary_weight() {
        let (clock, cluster, release) = setup();
        seed_ingress(&cluster);
        let deadline = Duration::from_secs(600);
        for (percent, replicas) in [(10, 1), (25, 2), (50, 4)] {
            let got = set_canary(
                &cluster,
                clock.as_ref(),
                &release,
                "reg/iris@sha256:new",
                percent,
                deadline,
                Some("iris"),
            )
            .await
            .expect("canary");
            set_baseline(
                &cluster,
                clock.as_ref(),
                &release,
                got,
                deadline,
                Some("iris"),
            )
            .await
            .expect("baseline");
            set_traffic_weight(&cluster, &release, "iris", &nginx(), percent, true)
                .await
                .expect("weight");
            let canary_ingress = cluster.ingress("ml", "iris-web-canary").expect("ingress");
            assert_eq!(canary_ingress.canary_weight(), Some(percent * 2));
            assert_eq!(cluster.endpoints("ml", "iris"), [("iris".to_owned(), 4)]);
            assert_eq!(
                cluster.endpoints("ml", "iris-canary"),
                [
                    ("iris-baseline".to_owned(), replicas),
                    ("iris-canary".to_owned(), replicas)
                ]
            );
        }
        let err = set_traffic_weight(&cluster, &release, "iris", &nginx(), 60, true)
            .await
            .expect_err("no room for two 60% shares");
        assert!(
            err.to_string().contains("at most 50%") || err.to_string().contains("above 50%"),
            "{err}"
        );
        abort_routed(&cluster, &release, ("iris", &nginx()))
            .await
            .expect("abort");
        remove_baseline(&cluster, &release).await.expect("removed");
        assert_eq!(cluster.ingress_names("ml"), ["iris-web"]);
        assert_eq!(cluster.service_names("ml"), ["iris"]);
        assert_eq!(cluster.deployment_names("ml"), ["iris"]);
    }

    #[tokio::test]
    async fn nginx_abort_removes_routing_and_canary_and_leaves_stable() {
        let (clock, cluster, release) = setup();
        seed_ingress(&cluster);
        let before = cluster.deployment("ml", "iris").await.expect("get");
        set_canary(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:new",
            10,
            Duration::from_secs(600),
            Some("iris"),
        )
        .await
        .expect("canary");
        set_traffic_weight(&cluster, &release, "iris", &nginx(), 10, false)
            .await
            .expect("weight");
        abort_routed(&cluster, &release, ("iris", &nginx()))
            .await
            .expect("abort");
        assert_eq!(cluster.ingress_names("ml"), ["iris-web"]);
        assert_eq!(cluster.service_names("ml"), ["iris"]);
        assert_eq!(cluster.deployment("ml", "iris").await.expect("get"), before);
        assert_eq!(cluster.deployment_names("ml"), ["iris"]);
        // Again: nothing left to remove is fine.
        abort_routed(&cluster, &release, ("iris", &nginx()))
            .await
            .expect("abort again");
    }

    #[tokio::test]
    async fn nginx_weight_names_a_missing_ingress_and_a_wrong_one() {
        let (clock, cluster, release) = setup();
        set_canary_weight(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:new",
            10,
            Duration::from_secs(600),
        )
        .await
        .expect("canary");
        let err = set_traffic_weight(&cluster, &release, "iris", &nginx(), 10, false)
            .await
            .expect_err("no ingress");
        let text = err.to_string();
        assert!(
            text.contains("Ingress `ml/iris-web` not found") && text.contains("rollout.ingress"),
            "{text}"
        );
        cluster.seed_ingress(
            "ml",
            "iris-web",
            vec![crate::IngressPath {
                host: String::new(),
                path: "/".into(),
                service: "other".into(),
            }],
        );
        let err = set_traffic_weight(&cluster, &release, "iris", &nginx(), 10, false)
            .await
            .expect_err("no path to iris");
        assert!(
            err.to_string()
                .contains("has no rule with a path to Service `iris`"),
            "{err}"
        );
        // The replica-ratio routing needs no Ingress at all.
        set_traffic_weight(
            &cluster,
            &release,
            "iris",
            &TrafficRouting::ReplicaRatio,
            10,
            false,
        )
        .await
        .expect("nothing to do");
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
