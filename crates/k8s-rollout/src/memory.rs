//! [`MemoryCluster`]: an in-memory Kubernetes with the semantics Slipway relies on.
//!
//! - A Deployment's new pods become ready `readiness_delay` after its template or scale changes
//!   (simulated time, read from the [`Clock`]). While a template change rolls out, the old pods
//!   keep serving, as with the default RollingUpdate strategy.
//! - Faults are injected per image (substring match): image pull errors and crash loops keep new
//!   pods from ever becoming ready and are reported the way pod status reports them; slow
//!   readiness only delays them.
//! - Services select pods by labels; Ingresses are kept as host/path/Service routes with their
//!   annotations (the canary Ingress is derived from a seeded one as the real cluster does);
//!   Secrets hold keys; Events are recorded; release history keeps
//!   the newest `limit` records; Leases expire unless renewed; audit objects are create-only.
//! - As in [`crate::KubeCluster`], a Deployment Slipway did not create (a seeded one) only ever
//!   has its image and replica count changed, and Slipway refuses to derive over it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use slipway_core::{Clock, ReleaseId, ReleaseRecord, Secret};

use crate::{
    AuditCreate, AuditObject, CanaryIngress, Cluster, DeploymentSpec, DeploymentState, Error,
    NGINX_CANARY_ANNOTATION, NGINX_CANARY_WEIGHT_ANNOTATION, ObjectKind, Ownership, PodProblem,
    RollingParams,
};

/// A failure to inject for pods running a given image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Fault {
    /// The image cannot be pulled.
    ImagePull,
    /// The container exits right after start.
    CrashLoop,
    /// Pods take this long to become ready.
    SlowReadiness(Duration),
    /// No node can take the pods.
    Unschedulable,
}

/// An Event as recorded on a Deployment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedEvent {
    /// When.
    pub at: Timestamp,
    /// `namespace/deployment`.
    pub object: String,
    /// Short CamelCase reason (`CanaryStarted`).
    pub reason: String,
    /// Sentence for people.
    pub message: String,
}

/// One path of an Ingress rule: requests for `host` under `path` go to Service `service`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IngressPath {
    /// Host (empty: every host).
    pub host: String,
    /// Path prefix.
    pub path: String,
    /// Backend Service.
    pub service: String,
}

/// An Ingress as [`MemoryCluster`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryIngress {
    /// Its rules' paths.
    pub paths: Vec<IngressPath>,
    /// Its annotations (the NGINX canary annotations on a canary Ingress).
    pub annotations: BTreeMap<String, String>,
    /// Created by Slipway (true) or by the user (false, seeded).
    pub managed: bool,
}

impl MemoryIngress {
    /// The `canary-weight` of a canary Ingress, if it is one.
    pub fn canary_weight(&self) -> Option<u8> {
        if self
            .annotations
            .get(NGINX_CANARY_ANNOTATION)
            .map(String::as_str)
            != Some("true")
        {
            return None;
        }
        self.annotations
            .get(NGINX_CANARY_WEIGHT_ANNOTATION)
            .and_then(|weight| weight.parse().ok())
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Deployment {
    spec: DeploymentSpec,
    revision: u64,
    changed_at: Timestamp,
    template_changed: bool,
    /// Pods ready when the last change began.
    ready_before: u32,
    /// Created by Slipway (true) or by the user (false, seeded).
    managed: bool,
    /// Rolling-update parameters, once set.
    rolling: Option<RollingParams>,
}

#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct State {
    #[serde(with = "pairs")]
    deployments: BTreeMap<(String, String), Deployment>,
    #[serde(with = "pairs")]
    services: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Services Slipway created ([`Cluster::copy_service`]); the others are the user's.
    #[serde(default)]
    managed_services: BTreeSet<(String, String)>,
    #[serde(with = "pairs")]
    ingresses: BTreeMap<(String, String), MemoryIngress>,
    /// The user's HTTPRoutes: `spec.rules` and Slipway's annotation.
    #[serde(default, with = "pairs")]
    routes: BTreeMap<(String, String), (serde_json::Value, Option<String>)>,
    #[serde(with = "pairs")]
    secrets: BTreeMap<(String, String), BTreeMap<String, String>>,
    events: Vec<RecordedEvent>,
    #[serde(with = "pairs")]
    history: BTreeMap<ReleaseId, Vec<ReleaseRecord>>,
    #[serde(with = "pairs")]
    /// Holder, expiry and when it was last taken or renewed.
    leases: BTreeMap<ReleaseId, (String, Timestamp, Timestamp)>,
    faults: Vec<(String, Fault)>,
    /// Audit objects by (namespace, trail), by name.
    #[serde(with = "pairs")]
    audit: BTreeMap<(String, String), BTreeMap<String, String>>,
}

/// Everything a [`MemoryCluster`] holds, as a serialisable value: what a process saves so that
/// another one can go on in the same cluster (the embedded world of `--demo --state`). The
/// format is private to the version that wrote it.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
pub struct MemoryClusterSnapshot(State);

/// Maps whose keys are not strings (tuples, release ids), written as lists of `[key, value]`
/// pairs so that JSON can hold them.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<K: Serialize, V: Serialize, S: Serializer>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub(super) fn deserialize<'de, K, V, D>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

/// An in-memory cluster. See the module docs.
pub struct MemoryCluster {
    clock: Arc<dyn Clock>,
    readiness_delay: Duration,
    state: Mutex<State>,
}

impl std::fmt::Debug for MemoryCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCluster")
            .field("readiness_delay", &self.readiness_delay)
            .finish_non_exhaustive()
    }
}

fn key(namespace: &str, name: &str) -> (String, String) {
    (namespace.to_owned(), name.to_owned())
}

fn add(at: Timestamp, duration: Duration) -> Timestamp {
    at.checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

impl MemoryCluster {
    /// An empty cluster on `clock`, where pods become ready 20 s after they start.
    pub fn new(clock: Arc<dyn Clock>) -> MemoryCluster {
        MemoryCluster {
            clock,
            readiness_delay: Duration::from_secs(20),
            state: Mutex::new(State::default()),
        }
    }

    /// Everything this cluster holds now (see [`MemoryClusterSnapshot`]).
    pub fn snapshot(&self) -> MemoryClusterSnapshot {
        MemoryClusterSnapshot(self.lock().clone())
    }

    /// Replaces everything this cluster holds with `snapshot`; the clock and readiness delay
    /// stay this cluster's own.
    pub fn restore(&self, snapshot: MemoryClusterSnapshot) {
        *self.lock() = snapshot.0;
    }

    /// Creates a Deployment whose pods are already ready (a workload that was running before).
    pub fn seed_deployment(&self, spec: DeploymentSpec) {
        let ready = spec.replicas;
        let at = self.clock.now();
        self.lock().deployments.insert(
            key(&spec.namespace, &spec.name),
            Deployment {
                spec,
                revision: 1,
                changed_at: at,
                template_changed: false,
                ready_before: ready,
                managed: false,
                rolling: None,
            },
        );
    }

    /// Creates a Service with a selector.
    pub fn seed_service(&self, namespace: &str, name: &str, selector: BTreeMap<String, String>) {
        let mut state = self.lock();
        state.managed_services.remove(&key(namespace, name));
        state.services.insert(key(namespace, name), selector);
    }

    /// Creates the user's Ingress with these paths.
    pub fn seed_ingress(&self, namespace: &str, name: &str, paths: Vec<IngressPath>) {
        self.lock().ingresses.insert(
            key(namespace, name),
            MemoryIngress {
                paths,
                annotations: BTreeMap::new(),
                managed: false,
            },
        );
    }

    /// Creates the user's HTTPRoute with these `spec.rules`.
    pub fn seed_http_route(&self, namespace: &str, name: &str, rules: serde_json::Value) {
        self.lock()
            .routes
            .insert(key(namespace, name), (rules, None));
    }

    /// An HTTPRoute's `spec.rules` and Slipway's annotation; `None` when absent.
    pub fn http_route_rules(
        &self,
        namespace: &str,
        name: &str,
    ) -> Option<(serde_json::Value, Option<String>)> {
        self.lock().routes.get(&key(namespace, name)).cloned()
    }

    /// An Ingress; `None` when absent.
    pub fn ingress(&self, namespace: &str, name: &str) -> Option<MemoryIngress> {
        self.lock().ingresses.get(&key(namespace, name)).cloned()
    }

    /// Names of the Ingresses in a namespace.
    pub fn ingress_names(&self, namespace: &str) -> Vec<String> {
        self.lock()
            .ingresses
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Names of the Services in a namespace.
    pub fn service_names(&self, namespace: &str) -> Vec<String> {
        self.lock()
            .services
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Creates a Secret.
    pub fn seed_secret(&self, namespace: &str, name: &str, data: BTreeMap<String, String>) {
        self.lock().secrets.insert(key(namespace, name), data);
    }

    /// Makes pods whose image contains `image_fragment` fail with `fault`.
    pub fn inject(&self, image_fragment: &str, fault: Fault) {
        self.lock().faults.push((image_fragment.to_owned(), fault));
    }

    /// Every Event recorded so far.
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.lock().events.clone()
    }

    /// The rolling-update parameters last set on a Deployment.
    pub fn rolling_params(&self, namespace: &str, name: &str) -> Option<RollingParams> {
        self.lock()
            .deployments
            .get(&key(namespace, name))
            .and_then(|deployment| deployment.rolling.clone())
    }

    /// Names of the Deployments in a namespace.
    pub fn deployment_names(&self, namespace: &str) -> Vec<String> {
        self.lock()
            .deployments
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// The release's lock: holder and expiry, if a lease exists (expired or not).
    pub fn lease(&self, release: &ReleaseId) -> Option<(String, Timestamp)> {
        self.lock()
            .leases
            .get(release)
            .map(|(holder, expires, _)| (holder.clone(), *expires))
    }

    /// Writes the release's Lease as another holder would after taking it over (tests: a
    /// runner that stalled past its lease and lost it).
    pub fn set_lease(&self, release: &ReleaseId, holder: &str, expires: Timestamp) {
        let now = self.clock.now();
        self.lock()
            .leases
            .insert(release.clone(), (holder.to_owned(), expires, now));
    }

    /// Who holds the release's lock, if anyone (expired or not).
    pub fn lock_holder(&self, release: &ReleaseId) -> Option<String> {
        self.lock()
            .leases
            .get(release)
            .map(|(holder, _, _)| holder.clone())
    }

    /// Pods behind a Service, per Deployment name: `(deployment, ready pods)`.
    pub fn endpoints(&self, namespace: &str, service: &str) -> Vec<(String, u32)> {
        let now = self.clock.now();
        let state = self.lock();
        let Some(selector) = state.services.get(&key(namespace, service)) else {
            return Vec::new();
        };
        state
            .deployments
            .values()
            .filter(|deployment| deployment.spec.namespace == namespace)
            .filter(|deployment| {
                selector
                    .iter()
                    .all(|(k, v)| deployment.spec.pod_labels.get(k) == Some(v))
            })
            .map(|deployment| {
                (
                    deployment.spec.name.clone(),
                    self.observe(&state, deployment, now).ready_replicas,
                )
            })
            .collect()
    }

    /// Writes a Deployment. `keep_owner`: an existing user Deployment keeps its labels (only
    /// image and replicas change), as with the real cluster's patch.
    fn write_deployment(
        &self,
        spec: &DeploymentSpec,
        keep_owner: bool,
        rolling: Option<RollingParams>,
    ) -> Result<(), Error> {
        if spec.replicas > 1000 {
            return Err(Error::Api {
                operation: format!("apply Deployment `{}/{}`", spec.namespace, spec.name),
                message: format!("replicas {} exceeds the namespace quota", spec.replicas),
            });
        }
        let now = self.clock.now();
        let mut state = self.lock();
        let current = state
            .deployments
            .get(&key(&spec.namespace, &spec.name))
            .map(|d| (d.clone(), self.observe(&state, d, now)));
        let next = match current {
            None => Deployment {
                spec: spec.clone(),
                revision: 1,
                changed_at: now,
                template_changed: true,
                ready_before: 0,
                managed: true,
                rolling,
            },
            Some((old, observed)) => {
                let mut spec = spec.clone();
                if keep_owner && !old.managed {
                    spec.pod_labels = old.spec.pod_labels.clone();
                    spec.selector = old.spec.selector.clone();
                    spec.container = old.spec.container.clone();
                }
                let rolling = rolling.or(old.rolling.clone());
                let template_changed =
                    old.spec.image != spec.image || old.spec.pod_labels != spec.pod_labels;
                if !template_changed && old.spec.replicas == spec.replicas {
                    state.deployments.insert(
                        key(&spec.namespace, &spec.name),
                        Deployment { rolling, ..old },
                    );
                    return Ok(());
                }
                Deployment {
                    spec,
                    revision: old.revision + u64::from(template_changed),
                    changed_at: now,
                    template_changed,
                    ready_before: observed.ready_replicas,
                    managed: old.managed,
                    rolling,
                }
            }
        };
        state
            .deployments
            .insert(key(&spec.namespace, &spec.name), next);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn observe(&self, state: &State, deployment: &Deployment, now: Timestamp) -> DeploymentState {
        let spec = &deployment.spec;
        let fault = state
            .faults
            .iter()
            .find(|(fragment, _)| spec.image.contains(fragment.as_str()))
            .map(|(_, f)| f);
        let delay = match fault {
            Some(Fault::SlowReadiness(delay)) => *delay,
            _ => self.readiness_delay,
        };
        let problem = match fault {
            Some(Fault::ImagePull) => Some(PodProblem::ImagePull(format!(
                "Back-off pulling image \"{}\": manifest unknown",
                spec.image
            ))),
            Some(Fault::CrashLoop) => Some(PodProblem::CrashLoop(format!(
                "back-off 5m0s restarting failed container={} (exit code 1)",
                spec.container
            ))),
            Some(Fault::Unschedulable) => Some(PodProblem::Unschedulable(
                "0/3 nodes are available: 3 Insufficient memory".to_owned(),
            )),
            _ => None,
        };
        let settled = problem.is_none() && now >= add(deployment.changed_at, delay);
        let (ready, updated_ready) = match (settled, deployment.template_changed) {
            (true, _) => (spec.replicas, spec.replicas),
            (false, true) => (deployment.ready_before, 0),
            (false, false) => {
                let ready = deployment.ready_before.min(spec.replicas);
                (ready, ready)
            }
        };
        // A failing change that only scaled down or kept the count has no new pods to fail.
        let new_pods = deployment.template_changed || spec.replicas > deployment.ready_before;
        DeploymentState {
            spec: spec.clone(),
            ready_replicas: ready,
            updated_ready_replicas: updated_ready,
            revision: deployment.revision,
            problem: if new_pods { problem } else { None },
        }
    }
}

#[async_trait::async_trait]
impl Cluster for MemoryCluster {
    async fn deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DeploymentState>, Error> {
        let now = self.clock.now();
        let state = self.lock();
        Ok(state
            .deployments
            .get(&key(namespace, name))
            .map(|deployment| self.observe(&state, deployment, now)))
    }

    async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), Error> {
        self.write_deployment(spec, true, None)
    }

    async fn derive_deployment(&self, source: &str, spec: &DeploymentSpec) -> Result<(), Error> {
        let operation = || {
            format!(
                "derive Deployment `{}/{}` from `{source}`",
                spec.namespace, spec.name
            )
        };
        {
            let state = self.lock();
            let Some(source_deployment) = state.deployments.get(&key(&spec.namespace, source))
            else {
                return Err(Error::NotFound {
                    kind: "Deployment",
                    namespace: spec.namespace.clone(),
                    name: source.to_owned(),
                    hint:
                        "the stable Deployment must exist; Slipway derives its pod template from it"
                            .to_owned(),
                });
            };
            if source_deployment.spec.container != spec.container {
                return Err(Error::Api {
                    operation: operation(),
                    message: format!("`{source}` has no container `{}`", spec.container),
                });
            }
            if state
                .deployments
                .get(&key(&spec.namespace, &spec.name))
                .is_some_and(|target| !target.managed)
            {
                return Err(Error::Api {
                    operation: operation(),
                    message: "the Deployment exists and was not created by Slipway; refusing to overwrite it".to_owned(),
                });
            }
        }
        self.write_deployment(spec, false, None)
    }

    async fn rolling_update(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        params: &RollingParams,
    ) -> Result<(), Error> {
        let current = self
            .lock()
            .deployments
            .get(&key(namespace, name))
            .map(|deployment| deployment.spec.clone());
        let Some(mut spec) = current else {
            return Err(Error::NotFound {
                kind: "Deployment",
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                hint: "deploy the stable version first (e.g. with Helm or Argo CD)".to_owned(),
            });
        };
        spec.image = image.to_owned();
        self.write_deployment(&spec, true, Some(params.clone()))
    }

    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.lock().deployments.remove(&key(namespace, name));
        Ok(())
    }

    async fn service_selector(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        Ok(self.lock().services.get(&key(namespace, name)).cloned())
    }

    async fn set_service_selector(
        &self,
        namespace: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        let Some(current) = state.services.get_mut(&key(namespace, name)) else {
            return Err(Error::NotFound {
                kind: "Service",
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                hint: "create the Service that fronts the release".to_owned(),
            });
        };
        *current = selector.clone();
        Ok(())
    }

    async fn copy_service(
        &self,
        namespace: &str,
        source: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut state = self.lock();
        if !state.services.contains_key(&key(namespace, source)) {
            return Err(Error::NotFound {
                kind: "Service",
                namespace: namespace.to_owned(),
                name: source.to_owned(),
                hint: "create the Service that fronts the release".to_owned(),
            });
        }
        state
            .services
            .insert(key(namespace, name), selector.clone());
        state.managed_services.insert(key(namespace, name));
        Ok(())
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let mut state = self.lock();
        state.services.remove(&key(namespace, name));
        state.managed_services.remove(&key(namespace, name));
        Ok(())
    }

    async fn ownership(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Result<Ownership, Error> {
        let state = self.lock();
        let object = key(namespace, name);
        let managed = match kind {
            ObjectKind::Deployment => state.deployments.get(&object).map(|d| d.managed),
            ObjectKind::Service => state
                .services
                .contains_key(&object)
                .then(|| state.managed_services.contains(&object)),
            ObjectKind::Ingress => state.ingresses.get(&object).map(|i| i.managed),
            ObjectKind::HttpRoute => state.routes.get(&object).map(|_| false),
        };
        Ok(match managed {
            None => Ownership::Absent,
            Some(true) => Ownership::Slipway,
            Some(false) => Ownership::Other,
        })
    }

    async fn apply_canary_ingress(&self, ingress: &CanaryIngress) -> Result<(), Error> {
        let mut state = self.lock();
        let Some(source) = state
            .ingresses
            .get(&key(&ingress.namespace, &ingress.source))
        else {
            return Err(crate::missing_ingress(ingress));
        };
        let paths: Vec<IngressPath> = source
            .paths
            .iter()
            .filter(|path| path.service == ingress.service)
            .map(|path| IngressPath {
                service: ingress.canary_service.clone(),
                ..path.clone()
            })
            .collect();
        if paths.is_empty() {
            return Err(crate::no_path_to_service(ingress));
        }
        if state
            .ingresses
            .get(&key(&ingress.namespace, &ingress.name))
            .is_some_and(|existing| !existing.managed)
        {
            return Err(Error::Api {
                operation: format!("write Ingress `{}/{}`", ingress.namespace, ingress.name),
                message: "it exists and was not created by Slipway; refusing to overwrite it\n\nhint: rename or remove that object".to_owned(),
            });
        }
        let annotations = BTreeMap::from([
            (NGINX_CANARY_ANNOTATION.to_owned(), "true".to_owned()),
            (
                NGINX_CANARY_WEIGHT_ANNOTATION.to_owned(),
                ingress.weight.min(100).to_string(),
            ),
        ]);
        state.ingresses.insert(
            key(&ingress.namespace, &ingress.name),
            MemoryIngress {
                paths,
                annotations,
                managed: true,
            },
        );
        Ok(())
    }

    async fn http_route(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<crate::gateway::HttpRoute>, Error> {
        Ok(self
            .lock()
            .routes
            .get(&key(namespace, name))
            .map(|(rules, original)| crate::gateway::HttpRoute {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                rules: rules.clone(),
                original: original.clone(),
            }))
    }

    async fn apply_http_route(&self, route: &crate::gateway::HttpRoute) -> Result<(), Error> {
        let mut state = self.lock();
        let Some(existing) = state.routes.get_mut(&key(&route.namespace, &route.name)) else {
            return Err(crate::missing_route(&route.namespace, &route.name));
        };
        *existing = (route.rules.clone(), route.original.clone());
        Ok(())
    }

    async fn delete_canary_ingress(&self, namespace: &str, name: &str) -> Result<(), Error> {
        let mut state = self.lock();
        match state.ingresses.get(&key(namespace, name)) {
            Some(existing) if !existing.managed => Err(Error::Api {
                operation: format!("delete Ingress `{namespace}/{name}`"),
                message: "it was not created by Slipway; refusing to delete it".to_owned(),
            }),
            _ => {
                state.ingresses.remove(&key(namespace, name));
                Ok(())
            }
        }
    }

    async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
        key_name: &str,
    ) -> Result<Secret, Error> {
        let state = self.lock();
        let not_found = |hint: String| Error::NotFound {
            kind: "Secret",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            hint,
        };
        let data = state
            .secrets
            .get(&key(namespace, name))
            .ok_or_else(|| not_found(format!("create it: kubectl -n {namespace} create secret generic {name} --from-literal={key_name}=…")))?;
        data.get(key_name)
            .map(|value| Secret::new(value.clone()))
            .ok_or_else(|| not_found(format!("the Secret exists but has no key `{key_name}`")))
    }

    async fn emit_event(
        &self,
        namespace: &str,
        deployment: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let at = self.clock.now();
        self.lock().events.push(RecordedEvent {
            at,
            object: format!("{namespace}/{deployment}"),
            reason: reason.to_owned(),
            message: message.to_owned(),
        });
        Ok(())
    }

    async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, Error> {
        Ok(self
            .lock()
            .history
            .get(release)
            .cloned()
            .unwrap_or_default())
    }

    async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), Error> {
        let mut state = self.lock();
        let history = state.history.entry(record.release.clone()).or_default();
        // The record that ends an in-progress revision replaces it (same revision).
        match history.last_mut() {
            Some(last)
                if last.revision == record.revision
                    && last.outcome == slipway_core::Outcome::InProgress =>
            {
                *last = record.clone();
            }
            Some(last) if last.revision == record.revision && last == record => {}
            Some(last) if last.revision >= record.revision => {
                return Err(Error::History {
                    release: record.release.to_string(),
                    message: format!(
                        "revision {} is already recorded with different content",
                        record.revision
                    ),
                });
            }
            _ => history.push(record.clone()),
        }
        let excess = history.len().saturating_sub(limit.max(1));
        history.drain(..excess);
        Ok(())
    }

    async fn acquire_lock(
        &self,
        release: &ReleaseId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut state = self.lock();
        if let Some((current, expires, _)) = state.leases.get(release)
            && current != holder
            && *expires > now
        {
            return Err(Error::Locked {
                release: release.to_string(),
                holder: current.clone(),
                expires: expires.to_string(),
            });
        }
        state
            .leases
            .insert(release.clone(), (holder.to_owned(), add(now, ttl), now));
        Ok(())
    }

    async fn lock_holder(&self, release: &ReleaseId) -> Result<Option<crate::LockHolder>, Error> {
        let now = self.clock.now();
        Ok(self
            .lock()
            .leases
            .get(release)
            .filter(|(_, expires, _)| *expires > now)
            .map(|(holder, expires, renewed)| crate::LockHolder {
                holder: holder.clone(),
                expires: expires.to_string(),
                renewed: Some(renewed.to_string()),
            }))
    }

    async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), Error> {
        let mut state = self.lock();
        if state
            .leases
            .get(release)
            .is_some_and(|(current, _, _)| current == holder)
        {
            state.leases.remove(release);
        }
        Ok(())
    }

    async fn audit_objects(&self, namespace: &str, trail: &str) -> Result<Vec<AuditObject>, Error> {
        Ok(self
            .lock()
            .audit
            .get(&key(namespace, trail))
            .map(|objects| {
                objects
                    .iter()
                    .map(|(name, entry)| AuditObject {
                        name: name.clone(),
                        entry: entry.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create_audit_object(
        &self,
        namespace: &str,
        trail: &str,
        object: &AuditObject,
    ) -> Result<AuditCreate, Error> {
        let mut state = self.lock();
        let objects = state.audit.entry(key(namespace, trail)).or_default();
        if objects.contains_key(&object.name) {
            return Ok(AuditCreate::NameTaken);
        }
        objects.insert(object.name.clone(), object.entry.clone());
        Ok(AuditCreate::Created)
    }
}
