//! What a release leaves in the cluster, and removing it: the objects Slipway creates next to
//! the user's own, found by name and by [`MANAGED_BY_LABEL`](crate::MANAGED_BY_LABEL), so a
//! run that was killed (or a pipeline that stopped) can be cleaned up by the next one.
//!
//! - [`canary_objects`] and [`bluegreen_objects`] are pure: the names a run *will* create, for
//!   the pipeline to record before the first change.
//! - [`managed_objects`] reads what of those exists now and is left over.
//! - [`remove_managed`] removes it, traffic routing first.
//!
//! The user's own Deployment, Service and Ingress are never listed, even when one happens to
//! carry a name Slipway uses: only objects with Slipway's label count. Nor is the active
//! blue-green colour, or the Service's selector: the release keeps serving exactly what it
//! served.
//!
//! Blue-green: after a finished release the inactive colour stays, scaled to zero, as the next
//! release's standby and so that [`crate::bluegreen::switch_back`] can scale it up again. That
//! is the steady state, not a leftover. A colour the Service does not select *with pods*
//! (replicas > 0) is a leftover: a deploy interrupted before the switch, or a switch whose
//! [`crate::bluegreen::finish`] never ran. Removing it means scaling it to zero, as `finish`
//! does; it is not deleted.

use std::fmt;

use slipway_core::ReleaseId;

use crate::bluegreen::{self, BlueGreenConfig, Colour};
use crate::rollout::{self, TrafficRouting};
use crate::{Cluster, DeploymentSpec, Error, ObjectKind, Ownership, TRACK_LABEL};

/// An object Slipway creates for a release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagedObject {
    /// `Deployment`, `Service` or `Ingress`.
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ManagedObject {
    fn new(kind: ObjectKind, namespace: &str, name: String) -> ManagedObject {
        ManagedObject {
            kind: kind.as_str(),
            namespace: namespace.to_owned(),
            name,
        }
    }
}

impl fmt::Display for ManagedObject {
    /// `Deployment/ml/iris-canary`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// The objects a canary run of `release` creates, in the order it creates them: the canary
/// Deployment `<name>-canary`, and with [`TrafficRouting::NginxIngress`] the canary Service
/// `<service>-canary` and the canary Ingress `<ingress>-canary`.
pub fn canary_objects(
    release: &ReleaseId,
    service: &str,
    traffic: &TrafficRouting,
) -> Vec<ManagedObject> {
    canary_plan(release, service, traffic)
        .into_iter()
        .map(|(_, object)| object)
        .collect()
}

fn canary_plan(
    release: &ReleaseId,
    service: &str,
    traffic: &TrafficRouting,
) -> Vec<(ObjectKind, ManagedObject)> {
    let namespace = &release.namespace;
    let mut objects = vec![(ObjectKind::Deployment, rollout::canary_name(release))];
    match traffic {
        TrafficRouting::ReplicaRatio => {}
        TrafficRouting::NginxIngress { ingress } => {
            objects.push((ObjectKind::Service, rollout::canary_service_name(service)));
            objects.push((ObjectKind::Ingress, rollout::canary_ingress_name(ingress)));
        }
        TrafficRouting::GatewayApi { .. } => {
            objects.push((ObjectKind::Service, rollout::canary_service_name(service)));
            objects.push((ObjectKind::Service, rollout::baseline_service_name(service)));
        }
    }
    objects
        .into_iter()
        .map(|(kind, name)| (kind, ManagedObject::new(kind, namespace, name)))
        .collect()
}

/// The objects a blue-green run of `release` may create or scale up, in that order: both colour
/// Deployments `<name>-blue` and `<name>-green` (which one becomes the standby is read from the
/// Service when the run starts, and the first release also creates blue to adopt the
/// Deployment), then the preview Service `<service>-preview`.
pub fn bluegreen_objects(release: &ReleaseId, config: &BlueGreenConfig) -> Vec<ManagedObject> {
    let namespace = &release.namespace;
    vec![
        ManagedObject::new(
            ObjectKind::Deployment,
            namespace,
            bluegreen::colour_name(release, Colour::Blue),
        ),
        ManagedObject::new(
            ObjectKind::Deployment,
            namespace,
            bluegreen::colour_name(release, Colour::Green),
        ),
        ManagedObject::new(
            ObjectKind::Service,
            namespace,
            bluegreen::preview_name(&config.service),
        ),
    ]
}

/// How one leftover object is removed.
enum Removal {
    /// The user's HTTPRoute: its backendRefs put back ([`rollout::restore_route`]).
    RestoreRoute,
    DeleteIngress,
    DeleteService,
    DeleteDeployment,
    /// A blue-green colour the Service does not select: scaled to zero.
    ScaleDown(Colour),
}

/// The colour the Service `service` selects; `None` when it selects none (or is absent).
async fn active_colour(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
) -> Result<Option<Colour>, Error> {
    let selector = cluster
        .service_selector(&release.namespace, service)
        .await?;
    Ok(selector
        .as_ref()
        .and_then(|selector| selector.get(TRACK_LABEL))
        .and_then(|track| {
            [Colour::Blue, Colour::Green]
                .into_iter()
                .find(|colour| colour.as_str() == track)
        }))
}

async fn owned(
    cluster: &dyn Cluster,
    object: &ManagedObject,
    kind: ObjectKind,
) -> Result<bool, Error> {
    Ok(cluster
        .ownership(kind, &object.namespace, &object.name)
        .await?
        == Ownership::Slipway)
}

/// The leftovers with how to remove each, in removal order.
async fn leftovers(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    traffic: &TrafficRouting,
    bluegreen: Option<&BlueGreenConfig>,
) -> Result<Vec<(ManagedObject, Removal)>, Error> {
    let mut found = Vec::new();
    // The user's HTTPRoute first: back to its own backends before any Service goes.
    if let TrafficRouting::GatewayApi { route } = traffic
        && let Some(current) = cluster.http_route(&release.namespace, route).await?
    {
        let ours = [
            rollout::canary_service_name(service),
            rollout::baseline_service_name(service),
        ];
        let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
        if crate::gateway::carries_canary(&current, &ours) {
            found.push((
                ManagedObject::new(ObjectKind::HttpRoute, &release.namespace, route.clone()),
                Removal::RestoreRoute,
            ));
        }
    }
    // Traffic routing first (reverse creation order): the canary Ingress, the canary Service,
    // then the canary Deployment, so no request is routed to pods that are going away.
    for (kind, object) in canary_plan(release, service, traffic).into_iter().rev() {
        let removal = match kind {
            ObjectKind::Ingress => Removal::DeleteIngress,
            ObjectKind::Service => Removal::DeleteService,
            ObjectKind::Deployment => Removal::DeleteDeployment,
            ObjectKind::HttpRoute => continue,
        };
        if owned(cluster, &object, kind).await? {
            found.push((object, removal));
        }
    }
    let Some(config) = bluegreen else {
        return Ok(found);
    };
    let namespace = &release.namespace;
    let preview = ManagedObject::new(
        ObjectKind::Service,
        namespace,
        bluegreen::preview_name(&config.service),
    );
    if owned(cluster, &preview, ObjectKind::Service).await? {
        found.push((preview, Removal::DeleteService));
    }
    let active = active_colour(cluster, release, &config.service).await?;
    for colour in [Colour::Blue, Colour::Green] {
        if Some(colour) == active {
            continue;
        }
        let object = ManagedObject::new(
            ObjectKind::Deployment,
            namespace,
            bluegreen::colour_name(release, colour),
        );
        if !owned(cluster, &object, ObjectKind::Deployment).await? {
            continue;
        }
        let scaled_up = cluster
            .deployment(namespace, &object.name)
            .await?
            .is_some_and(|state| state.spec.replicas > 0);
        if scaled_up {
            found.push((object, Removal::ScaleDown(colour)));
        }
    }
    Ok(found)
}

/// Every Slipway-managed object of `release` that exists now and is left over from a run: the
/// canary Deployment, and with [`TrafficRouting::NginxIngress`] the canary Service and canary
/// Ingress; with `bluegreen`, the preview Service and a colour the Service does not select that
/// still has pods (see the module docs). Listed in the order [`remove_managed`] removes them.
///
/// Never lists the user's own objects (only those carrying Slipway's label) nor the active
/// colour. `service` is the Service in front of the release (the canary Service is named after
/// it); `bluegreen.service` is the one whose selector names the active colour.
pub async fn managed_objects(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    traffic: &TrafficRouting,
    bluegreen: Option<&BlueGreenConfig>,
) -> Result<Vec<ManagedObject>, Error> {
    Ok(leftovers(cluster, release, service, traffic, bluegreen)
        .await?
        .into_iter()
        .map(|(object, _)| object)
        .collect())
}

/// Removes what [`managed_objects`] finds and returns it, in a safe order: the canary Ingress,
/// the canary Service, the canary Deployment, then the blue-green preview Service, then the
/// standby colour is scaled to zero (kept, see the module docs). The user's objects, the
/// active colour and the Service's selector are never touched: a colour is re-checked against
/// the Service just before it is scaled down, and skipped if the Service selects it by then.
///
/// Idempotent: an object already gone is fine, and a second call finds nothing. A failure
/// stops at that object with its error; calling again continues where it stopped.
pub async fn remove_managed(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    service: &str,
    traffic: &TrafficRouting,
    bluegreen: Option<&BlueGreenConfig>,
) -> Result<Vec<ManagedObject>, Error> {
    let mut removed = Vec::new();
    for (object, removal) in leftovers(cluster, release, service, traffic, bluegreen).await? {
        let namespace = &object.namespace;
        let done = match removal {
            Removal::RestoreRoute => {
                rollout::restore_route(cluster, release, service, &object.name).await
            }
            Removal::DeleteIngress => cluster.delete_canary_ingress(namespace, &object.name).await,
            Removal::DeleteService => cluster.delete_service(namespace, &object.name).await,
            Removal::DeleteDeployment => cluster.delete_deployment(namespace, &object.name).await,
            Removal::ScaleDown(colour) => {
                match scale_down(cluster, release, bluegreen, colour, &object).await {
                    Ok(false) => continue,
                    Ok(true) => Ok(()),
                    Err(err) => Err(err),
                }
            }
        };
        match done {
            Ok(()) => removed.push(object),
            Err(Error::NotFound { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(removed)
}

/// Scales a standby colour to zero unless the Service selects it now or it is gone or already
/// at zero. Returns whether it scaled.
async fn scale_down(
    cluster: &dyn Cluster,
    release: &ReleaseId,
    bluegreen: Option<&BlueGreenConfig>,
    colour: Colour,
    object: &ManagedObject,
) -> Result<bool, Error> {
    let Some(config) = bluegreen else {
        return Ok(false);
    };
    if active_colour(cluster, release, &config.service).await? == Some(colour) {
        return Ok(false);
    }
    let Some(state) = cluster.deployment(&object.namespace, &object.name).await? else {
        return Ok(false);
    };
    if state.spec.replicas == 0 {
        return Ok(false);
    }
    cluster
        .apply_deployment(&DeploymentSpec {
            replicas: 0,
            ..state.spec
        })
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use slipway_core::SimClock;

    use super::*;
    use crate::{IngressPath, MemoryCluster};

    const DEADLINE: Duration = Duration::from_secs(600);

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
        cluster.seed_ingress(
            "ml",
            "iris-web",
            vec![IngressPath {
                host: "iris.example.com".into(),
                path: "/predict".into(),
                service: "iris".into(),
            }],
        );
        (clock, cluster, ReleaseId::parse("ml/iris").expect("id"))
    }

    fn nginx() -> TrafficRouting {
        TrafficRouting::NginxIngress {
            ingress: "iris-web".into(),
        }
    }

    fn names(objects: &[ManagedObject]) -> Vec<String> {
        objects.iter().map(ToString::to_string).collect()
    }

    /// Lists, removes, and checks that a second pass finds and removes nothing.
    async fn remove_all(
        cluster: &MemoryCluster,
        release: &ReleaseId,
        traffic: &TrafficRouting,
        bluegreen: Option<&BlueGreenConfig>,
        want: &[&str],
    ) {
        let found = managed_objects(cluster, release, "iris", traffic, bluegreen)
            .await
            .expect("list");
        assert_eq!(names(&found), want, "listed");
        let removed = remove_managed(cluster, release, "iris", traffic, bluegreen)
            .await
            .expect("remove");
        assert_eq!(removed, found, "removed what was listed");
        for pass in ["list again", "remove again"] {
            let again = if pass == "list again" {
                managed_objects(cluster, release, "iris", traffic, bluegreen).await
            } else {
                remove_managed(cluster, release, "iris", traffic, bluegreen).await
            };
            assert_eq!(again.expect(pass), [], "{pass}");
        }
    }

    #[test]
    fn planned_objects_name_what_a_run_creates() {
        let release = ReleaseId::parse("ml/iris").expect("id");
        let cases: [(&TrafficRouting, &[&str]); 2] = [
            (
                &TrafficRouting::ReplicaRatio,
                &["Deployment/ml/iris-canary"],
            ),
            (
                &nginx(),
                &[
                    "Deployment/ml/iris-canary",
                    "Service/ml/iris-canary",
                    "Ingress/ml/iris-web-canary",
                ],
            ),
        ];
        for (traffic, want) in cases {
            assert_eq!(
                names(&canary_objects(&release, "iris", traffic)),
                want,
                "{traffic:?}"
            );
        }
        assert_eq!(
            names(&bluegreen_objects(&release, &BlueGreenConfig::new("iris"))),
            [
                "Deployment/ml/iris-blue",
                "Deployment/ml/iris-green",
                "Service/ml/iris-preview"
            ]
        );
    }

    #[tokio::test]
    async fn nothing_to_remove_before_any_release() {
        let (_, cluster, release) = setup();
        let bluegreen = BlueGreenConfig::new("iris");
        remove_all(&cluster, &release, &nginx(), Some(&bluegreen), &[]).await;
        assert_eq!(cluster.deployment_names("ml"), ["iris"]);
    }

    #[tokio::test]
    async fn replica_ratio_canary_is_removed_and_stable_kept() {
        let (clock, cluster, release) = setup();
        let before = cluster.deployment("ml", "iris").await.expect("get");
        rollout::set_canary_weight(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:new",
            25,
            DEADLINE,
        )
        .await
        .expect("canary");
        let traffic = TrafficRouting::ReplicaRatio;
        remove_all(
            &cluster,
            &release,
            &traffic,
            None,
            &["Deployment/ml/iris-canary"],
        )
        .await;
        assert_eq!(cluster.deployment_names("ml"), ["iris"]);
        assert_eq!(cluster.deployment("ml", "iris").await.expect("get"), before);
    }

    #[tokio::test]
    async fn nginx_canary_routing_goes_first_and_the_users_objects_stay() {
        let (clock, cluster, release) = setup();
        rollout::set_canary(
            &cluster,
            clock.as_ref(),
            &release,
            "reg/iris@sha256:new",
            10,
            DEADLINE,
            Some("iris"),
        )
        .await
        .expect("canary");
        rollout::set_traffic_weight(&cluster, &release, "iris", &nginx(), 10, false)
            .await
            .expect("weight");
        remove_all(
            &cluster,
            &release,
            &nginx(),
            None,
            &[
                "Ingress/ml/iris-web-canary",
                "Service/ml/iris-canary",
                "Deployment/ml/iris-canary",
            ],
        )
        .await;
        assert_eq!(cluster.ingress_names("ml"), ["iris-web"]);
        assert_eq!(cluster.service_names("ml"), ["iris"]);
        assert_eq!(cluster.deployment_names("ml"), ["iris"]);
    }

    #[tokio::test]
    async fn the_users_objects_with_slipways_names_are_never_listed() {
        let (_, cluster, release) = setup();
        let labels: BTreeMap<_, _> = [("app".to_owned(), "other".to_owned())].into();
        cluster.seed_service("ml", "iris-canary", labels.clone());
        cluster.seed_service("ml", "iris-preview", labels.clone());
        cluster.seed_ingress("ml", "iris-web-canary", Vec::new());
        for name in ["iris-canary", "iris-green"] {
            cluster.seed_deployment(DeploymentSpec {
                namespace: "ml".into(),
                name: name.into(),
                replicas: 1,
                selector: labels.clone(),
                pod_labels: labels.clone(),
                container: "server".into(),
                image: "reg/other:1".into(),
            });
        }
        let bluegreen = BlueGreenConfig::new("iris");
        remove_all(&cluster, &release, &nginx(), Some(&bluegreen), &[]).await;
        assert_eq!(
            cluster.deployment_names("ml"),
            ["iris", "iris-canary", "iris-green"]
        );
        assert_eq!(
            cluster.service_names("ml"),
            ["iris", "iris-canary", "iris-preview"]
        );
    }

    #[tokio::test]
    async fn bluegreen_standby_of_an_interrupted_deploy_is_scaled_down_and_active_kept() {
        let (clock, cluster, release) = setup();
        let config = BlueGreenConfig::new("iris");
        // Killed after deploy, before the switch: blue (adopted) serves, green runs the new
        // image with the preview Service on it.
        let standby = bluegreen::deploy(
            &cluster,
            clock.as_ref(),
            &release,
            &config,
            "reg/iris@sha256:new",
        )
        .await
        .expect("deploy");
        assert_eq!(standby, Colour::Green);
        let selector = cluster.service_selector("ml", "iris").await.expect("get");
        let blue = cluster.deployment("ml", "iris-blue").await.expect("get");
        remove_all(
            &cluster,
            &release,
            &TrafficRouting::ReplicaRatio,
            Some(&config),
            &["Service/ml/iris-preview", "Deployment/ml/iris-green"],
        )
        .await;
        let green = cluster
            .deployment("ml", "iris-green")
            .await
            .expect("get")
            .expect("green is kept as the next standby");
        assert_eq!(green.spec.replicas, 0);
        assert_eq!(cluster.service_names("ml"), ["iris"]);
        assert_eq!(
            cluster.service_selector("ml", "iris").await.expect("get"),
            selector
        );
        assert_eq!(
            cluster.deployment("ml", "iris-blue").await.expect("get"),
            blue
        );
        assert_eq!(
            cluster.endpoints("ml", "iris"),
            [("iris-blue".to_owned(), 4)]
        );
    }

    #[tokio::test]
    async fn bluegreen_colour_of_an_interrupted_adoption_is_scaled_down() {
        let (clock, cluster, release) = setup();
        let config = BlueGreenConfig::new("iris");
        // Killed while blue was being created to adopt the Deployment: the Service still
        // selects the user's pods, so no colour serves and blue is a leftover.
        let stable = rollout::stable(&cluster, &release).await.expect("stable");
        let mut blue = stable.spec.clone();
        blue.name = bluegreen::colour_name(&release, Colour::Blue);
        for labels in [&mut blue.pod_labels, &mut blue.selector] {
            labels.insert(TRACK_LABEL.to_owned(), "blue".to_owned());
        }
        cluster
            .derive_deployment("iris", &blue)
            .await
            .expect("blue");
        clock.advance(Duration::from_secs(60));
        remove_all(
            &cluster,
            &release,
            &TrafficRouting::ReplicaRatio,
            Some(&config),
            &["Deployment/ml/iris-blue"],
        )
        .await;
        assert_eq!(
            cluster.endpoints("ml", "iris"),
            [("iris".to_owned(), 4), ("iris-blue".to_owned(), 0)],
            "the user's Deployment serves as before, blue has no pods left"
        );
    }

    #[tokio::test]
    async fn bluegreen_after_a_finished_release_leaves_nothing_over() {
        let (clock, cluster, release) = setup();
        let config = BlueGreenConfig::new("iris");
        let image = "reg/iris@sha256:new";
        let standby = bluegreen::deploy(&cluster, clock.as_ref(), &release, &config, image)
            .await
            .expect("deploy");
        bluegreen::switch(&cluster, &release, &config, standby)
            .await
            .expect("switch");
        // Within the scale-down delay the old colour still has pods: a leftover if the run
        // stops here.
        assert_eq!(
            names(
                &managed_objects(
                    &cluster,
                    &release,
                    "iris",
                    &TrafficRouting::ReplicaRatio,
                    Some(&config)
                )
                .await
                .expect("list")
            ),
            ["Service/ml/iris-preview", "Deployment/ml/iris-blue"]
        );
        bluegreen::finish(&cluster, clock.as_ref(), &release, &config)
            .await
            .expect("finish");
        remove_all(
            &cluster,
            &release,
            &TrafficRouting::ReplicaRatio,
            Some(&config),
            &[],
        )
        .await;
        assert_eq!(
            cluster.endpoints("ml", "iris"),
            [("iris-green".to_owned(), 4)]
        );
    }
}
