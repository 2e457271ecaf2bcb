//! Kubernetes rollouts: the [`Cluster`] trait, its two implementations, and the strategy
//! operations (canary, blue-green, rolling, promote, abort, rollback) written once against the
//! trait.
//!
//! Implementations of [`Cluster`]:
//! - [`KubeCluster`]: a real cluster through kube-rs. Slipway-owned objects (canary, colours,
//!   preview Service, history ConfigMaps) are written with server-side apply under the field
//!   manager `slipway`; the user's own Deployment only ever gets a strategic-merge patch of its
//!   container image (as `kubectl set image` does), so Helm or Argo CD stay its owner. Every API
//!   call names its verb and resource from [`OPERATIONS`], which is also what
//!   `deploy/rbac/role.yaml` grants (a test keeps them equal).
//!   The audit trail ([`ClusterAuditStore`]) lives there too, one immutable ConfigMap per entry.
//!   Exact canary traffic weights ([`rollout::TrafficRouting::NginxIngress`]) use a Slipway-owned
//!   canary Ingress with NGINX's canary annotations, derived from the user's Ingress (read only);
//!   with [`rollout::TrafficRouting::GatewayApi`] the weights go on the `backendRefs` of the
//!   user's HTTPRoute ([`gateway`]: only those, restored at the end).
//! - [`MemoryCluster`]: Deployments whose pods become ready over (simulated) time, Services with
//!   selectors, Ingresses, Secrets, Events, release history and Leases, with injectable failures (image pull
//!   error, crash loop, slow readiness). The dry run and the pipeline tests use it.
//!
//! What a release creates, and what a stopped one left behind, is in [`cleanup`]: the names a
//! run will create (recorded before the first change), and finding and removing leftovers
//! without touching the user's objects or the active colour.
//!
//! Key design decision: the trait is at the level of *Deployments, Services and releases*, not raw
//! API objects. The strategies in [`rollout`], [`bluegreen`] and [`rolling`] hold the logic (names,
//! labels, replica maths, waiting with a progress deadline), so every cluster implementation gets
//! the same behaviour, and the user's own stable Deployment stays the source of truth: Slipway
//! only ever changes its image (on promotion or a rolling update). Every strategy step is
//! idempotent and convergent, so a run killed at any point and started again ends in the same
//! state, never with a half-changed cluster.

mod audit_store;
pub mod bluegreen;
pub mod cleanup;
pub mod gateway;
mod kube_cluster;
pub mod lock;
mod memory;
mod ops;
pub mod rolling;
pub mod rollout;

use std::collections::BTreeMap;
use std::time::Duration;

pub use audit_store::ClusterAuditStore;
pub use cleanup::ManagedObject;
pub use kube_cluster::{
    ConnectOptions, KubeCluster, KubeClusterConfig, KubeRetry, KubeTimeouts, connect,
};
pub use memory::{
    Fault, IngressPath, MemoryCluster, MemoryClusterSnapshot, MemoryIngress, RecordedEvent,
};
pub use ops::{OPERATIONS, Operation};
use slipway_core::{ReleaseId, ReleaseRecord, Secret};

/// Label that marks a pod's track (`stable`, `canary`, `blue`, `green`).
pub const TRACK_LABEL: &str = "slipway.dev/track";
/// Label on release-history objects naming the release.
pub const RELEASE_LABEL: &str = "slipway.dev/release";
/// Label on audit-trail ConfigMaps naming their trail (the release's name).
pub const AUDIT_LABEL: &str = "slipway.dev/audit";
/// Label on every object Slipway creates (`app.kubernetes.io/managed-by: slipway`); Slipway
/// only ever replaces whole objects that carry it.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] and Slipway's server-side apply field manager.
pub const FIELD_MANAGER: &str = "slipway";
/// How long a Deployment may take to become ready (Argo Rollouts' and Flagger's default).
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
/// The live holder of a release's lock (the Lease `slipway-lock-<name>`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct LockHolder {
    /// The holder's identity (`actor@host:pid`, as the command wrote it).
    pub holder: String,
    /// When the lease expires unless renewed (RFC 3339).
    pub expires: String,
    /// When its holder last took or renewed it (RFC 3339), as the lease records it; `None`
    /// when the lease does not say. With `expires` it gives the holder's own time to live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renewed: Option<String>,
}

/// How many revisions of a release the cluster keeps (Helm's `--history-max` default is 10 too).
pub const DEFAULT_HISTORY_LIMIT: usize = 10;

/// The parts of a Deployment Slipway reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeploymentSpec {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Desired replicas.
    pub replicas: u32,
    /// The Deployment's label selector.
    pub selector: BTreeMap<String, String>,
    /// Pod template labels.
    pub pod_labels: BTreeMap<String, String>,
    /// Name of the serving container.
    pub container: String,
    /// The serving container's image.
    pub image: String,
}

/// Why pods are not becoming ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodProblem {
    /// `ImagePullBackOff` / `ErrImagePull`.
    ImagePull(String),
    /// `CrashLoopBackOff`.
    CrashLoop(String),
    /// The scheduler cannot place the pods.
    Unschedulable(String),
    /// The Deployment controller reports no progress (`ProgressDeadlineExceeded`, quota, ...).
    Stalled(String),
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodProblem::ImagePull(message) => write!(f, "ImagePullBackOff: {message}"),
            PodProblem::CrashLoop(message) => write!(f, "CrashLoopBackOff: {message}"),
            PodProblem::Unschedulable(message) => write!(f, "Unschedulable: {message}"),
            PodProblem::Stalled(message) => write!(f, "no progress: {message}"),
        }
    }
}

/// A Deployment's spec and observed state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentState {
    /// What is asked for.
    pub spec: DeploymentSpec,
    /// Pods ready, of any revision.
    pub ready_replicas: u32,
    /// Pods ready on the current template.
    pub updated_ready_replicas: u32,
    /// Template revision (1 on create, +1 on each template change).
    pub revision: u64,
    /// What keeps pods from becoming ready, if known.
    pub problem: Option<PodProblem>,
}

impl DeploymentState {
    /// True when every desired pod runs the current template and is ready.
    pub fn rolled_out(&self) -> bool {
        self.updated_ready_replicas >= self.spec.replicas && self.problem.is_none()
    }
}

/// A Service port, copied from the Service in front of a release to its preview Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// Port name (may be empty for a single-port Service).
    pub name: String,
    /// Port the Service listens on.
    pub port: u16,
    /// Container port (number or name) the traffic goes to.
    pub target_port: String,
}

/// Rolling-update parameters (`maxSurge`, `maxUnavailable`), as counts or percentages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RollingParams {
    /// Extra pods allowed above the desired count (`25%`, `1`).
    pub max_surge: String,
    /// Pods allowed to be unavailable during the update (`0`, `25%`).
    pub max_unavailable: String,
}

impl Default for RollingParams {
    /// Kubernetes' defaults.
    fn default() -> Self {
        RollingParams {
            max_surge: "25%".to_owned(),
            max_unavailable: "25%".to_owned(),
        }
    }
}

/// One audit-trail entry as the cluster keeps it: an immutable ConfigMap
/// `slipway-audit-<trail>-<seq>` labelled [`AUDIT_LABEL`]`=<trail>`, holding the entry's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditObject {
    /// Object name.
    pub name: String,
    /// The entry's JSON, exactly as written.
    pub entry: String,
}

/// What creating an [`AuditObject`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditCreate {
    /// The object was created.
    Created,
    /// An object of that name exists already (another runner appended that entry first);
    /// nothing was changed.
    NameTaken,
}

/// NGINX ingress annotation that marks an Ingress as the canary of the Ingress with the same
/// host and path.
pub const NGINX_CANARY_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary";
/// NGINX ingress annotation: the percentage (0-100) of requests the canary Ingress receives.
pub const NGINX_CANARY_WEIGHT_ANNOTATION: &str = "nginx.ingress.kubernetes.io/canary-weight";

/// A Slipway-owned canary Ingress for the NGINX ingress controller: the rules of the user's
/// Ingress `source` whose backend is Service `service`, sent to `canary_service` instead, with
/// NGINX's canary annotations asking for exactly `weight` percent of the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryIngress {
    /// Namespace of all the objects named here.
    pub namespace: String,
    /// Name of the Slipway-owned canary Ingress.
    pub name: String,
    /// The user's Ingress whose hosts and paths are copied (read only).
    pub source: String,
    /// The Service in front of the release: only `source`'s paths to it are copied.
    pub service: String,
    /// The Slipway-owned Service selecting the canary pods, the copied paths' backend.
    pub canary_service: String,
    /// Percent of the requests for the canary (`canary-weight`), 0-100.
    pub weight: u8,
}

/// The error for a canary Ingress whose source Ingress does not exist (both implementations).
pub(crate) fn missing_ingress(ingress: &CanaryIngress) -> Error {
    let CanaryIngress {
        namespace,
        source,
        service,
        ..
    } = ingress;
    Error::NotFound {
        kind: "Ingress",
        namespace: namespace.clone(),
        name: source.clone(),
        hint: format!(
            "exact canary weights copy the hosts and paths of the Ingress that routes to Service `{service}`; set `rollout.ingress` to its name (`kubectl -n {namespace} get ingresses`)"
        ),
    }
}

/// The error for a source Ingress without any path to the release's Service.
pub(crate) fn no_path_to_service(ingress: &CanaryIngress) -> Error {
    let CanaryIngress {
        namespace,
        name,
        source,
        service,
        ..
    } = ingress;
    Error::Api {
        operation: format!("derive canary Ingress `{namespace}/{name}` from `{source}`"),
        message: format!(
            "Ingress `{source}` has no rule with a path to Service `{service}`\n\nhint: set `rollout.ingress` to the Ingress whose paths send traffic to `{service}`"
        ),
    }
}

/// The error for an HTTPRoute that does not exist (both implementations).
pub(crate) fn missing_route(namespace: &str, name: &str) -> Error {
    Error::NotFound {
        kind: "HTTPRoute",
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        hint: format!(
            "Gateway API weights go on the HTTPRoute that sends the release's traffic to its Service; set `rollout.route` to its name (`kubectl -n {namespace} get httproutes`)"
        ),
    }
}

/// The kinds of object Slipway creates next to the user's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `v1` Service.
    Service,
    /// `networking.k8s.io/v1` Ingress.
    Ingress,
    /// `gateway.networking.k8s.io/v1` HTTPRoute: always the user's; Slipway only weights its
    /// `backendRefs` ([`gateway`]) and restores them.
    HttpRoute,
}

impl ObjectKind {
    /// `Deployment`, `Service` or `Ingress`, as `kubectl` names the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "Deployment",
            ObjectKind::Service => "Service",
            ObjectKind::Ingress => "Ingress",
            ObjectKind::HttpRoute => "HTTPRoute",
        }
    }
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an object exists, and who created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// No object of that kind and name.
    Absent,
    /// It exists and carries [`MANAGED_BY_LABEL`]` = slipway`: Slipway created it.
    Slipway,
    /// It exists and someone else created it (the user, Helm, Argo CD): Slipway never removes it.
    Other,
}

/// Errors from a cluster. Each names the object and the operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("{kind} `{namespace}/{name}` not found\n\nhint: {hint}")]
    NotFound {
        /// Kind (`Deployment`, `Service`, `Secret`).
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// How to fix it.
        hint: String,
    },
    /// RBAC refused a request.
    #[error(
        "forbidden: cannot {verb} {resource} `{namespace}/{name}`: {message}\n\nhint: grant the verb `{verb}` on `{resource}` in namespace `{namespace}` to Slipway's service account (deploy/rbac/role.yaml lists every verb Slipway uses); check with `kubectl auth can-i {verb} {resource} -n {namespace}`"
    )]
    Forbidden {
        /// The missing verb (`patch`, `create`, ...).
        verb: &'static str,
        /// Resource with its API group (`deployments.apps`).
        resource: String,
        /// Namespace.
        namespace: String,
        /// Object name (empty for a list or create).
        name: String,
        /// The API server's message.
        message: String,
    },
    /// Pods did not become ready before the progress deadline.
    #[error(
        "Deployment `{namespace}/{name}` not ready after {waited:?} (progress deadline): {reason}"
    )]
    NotReady {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// How long we waited.
        waited: Duration,
        /// Why, from pod status and events.
        reason: String,
    },
    /// Another pipeline holds the release's lock.
    #[error(
        "release `{release}` is locked by `{holder}` until {expires}\n\nhint: wait for that run to finish; a dead holder's lock is taken over after it expires, or broken sooner with `slipway-deploy unlock '{holder}' --reason …`"
    )]
    Locked {
        /// The release.
        release: String,
        /// Who holds it.
        holder: String,
        /// When the lease expires unless renewed.
        expires: String,
    },
    /// The release history in the cluster is unreadable or its hash chain is broken.
    #[error(
        "release history of `{release}` is not trustworthy: {message}\n\nhint: inspect it with `kubectl get configmaps -l slipway.dev/release` in the release's namespace; Slipway will not roll back from a tampered history"
    )]
    History {
        /// The release.
        release: String,
        /// What is wrong.
        message: String,
    },
    /// The API server refused or failed a request.
    #[error("{operation}: {message}")]
    Api {
        /// What we were doing.
        operation: String,
        /// What went wrong.
        message: String,
    },
}

/// A Kubernetes cluster, as far as Slipway needs one.
///
/// `dyn Cluster` is chosen at run time (real or in-memory), hence `async_trait`.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// Reads a Deployment and its status; `None` when absent.
    async fn deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DeploymentState>, Error>;
    /// Creates or updates a Deployment. A Deployment Slipway did not create (the user's stable
    /// one) only gets its container image and replica count changed; anything else is replaced
    /// as a whole (server-side apply with Slipway's field manager).
    async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), Error>;
    /// Creates or updates the Slipway-owned Deployment `spec.name` with the pod template of
    /// Deployment `source` (same namespace), overridden by `spec`'s image, labels, selector and
    /// replicas. Refuses to overwrite a Deployment Slipway did not create.
    async fn derive_deployment(&self, source: &str, spec: &DeploymentSpec) -> Result<(), Error>;
    /// Deletes a Deployment; absent is fine.
    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), Error>;
    /// Sets a Deployment's image and rolling-update parameters and lets Kubernetes roll it.
    async fn rolling_update(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        params: &RollingParams,
    ) -> Result<(), Error>;
    /// A Service's selector; `None` when the Service is absent.
    async fn service_selector(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error>;
    /// Replaces a Service's selector (re-reading and retrying on a write conflict).
    async fn set_service_selector(
        &self,
        namespace: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), Error>;
    /// Creates or updates the Slipway-owned Service `name` with `source`'s ports and `selector`.
    async fn copy_service(
        &self,
        namespace: &str,
        source: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), Error>;
    /// Deletes a Slipway-owned Service; absent is fine.
    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), Error>;
    /// Creates or updates the Slipway-owned canary Ingress derived from the user's Ingress
    /// `ingress.source` (see [`CanaryIngress`]). Fails naming the source when it is absent or has
    /// no path to `ingress.service`; refuses to overwrite an Ingress Slipway did not create.
    async fn apply_canary_ingress(&self, ingress: &CanaryIngress) -> Result<(), Error>;
    /// Deletes a Slipway-owned canary Ingress; absent is fine.
    async fn delete_canary_ingress(&self, namespace: &str, name: &str) -> Result<(), Error>;
    /// Reads the user's HTTPRoute (its `spec.rules` and Slipway's annotation); `None` when
    /// absent.
    async fn http_route(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<gateway::HttpRoute>, Error>;
    /// Writes `route.rules` and Slipway's annotation (`route.original`; `None` removes it) to
    /// the user's HTTPRoute with Slipway's field manager, leaving every other field to its
    /// owner. Never creates a route.
    async fn apply_http_route(&self, route: &gateway::HttpRoute) -> Result<(), Error>;
    /// Whether object `kind` `namespace/name` exists, and whether Slipway created it.
    async fn ownership(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Result<Ownership, Error>;
    /// Reads one key of a Secret. The value never appears in logs or errors.
    async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, Error>;
    /// Records a Kubernetes Event on a Deployment.
    async fn emit_event(
        &self,
        namespace: &str,
        deployment: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), Error>;
    /// The release's history, oldest first.
    async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, Error>;
    /// Appends a record to the release's history, dropping the oldest beyond `limit`.
    async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), Error>;
    /// Takes (or renews) the release's lock for `holder`; refuses when another live holder has it.
    async fn acquire_lock(
        &self,
        release: &ReleaseId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), Error>;
    /// Gives the lock up if `holder` has it.
    async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), Error>;
    /// Who holds the release's lock and until when, if anyone does and the lease has not
    /// expired (`slipway-deploy status`). Read only.
    async fn lock_holder(&self, release: &ReleaseId) -> Result<Option<LockHolder>, Error>;
    /// Every object of audit trail `trail` in `namespace`, in no particular order.
    async fn audit_objects(&self, namespace: &str, trail: &str) -> Result<Vec<AuditObject>, Error>;
    /// Creates an audit object of trail `trail`; never replaces one (append-only): an existing
    /// name gives [`AuditCreate::NameTaken`].
    async fn create_audit_object(
        &self,
        namespace: &str,
        trail: &str,
        object: &AuditObject,
    ) -> Result<AuditCreate, Error>;
}
