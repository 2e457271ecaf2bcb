//! [`KubeCluster`]: [`Cluster`] on a real API server through kube-rs.
//!
//! - Slipway-owned objects (canary and colour Deployments, the preview Service) carry
//!   `app.kubernetes.io/managed-by: slipway` and are written whole with server-side apply
//!   (`fieldManager=slipway`, `force=true`): Slipway is their only writer.
//! - The user's Deployment gets a strategic-merge patch of just its container image (and replicas
//!   or rolling-update parameters when asked), carrying the `resourceVersion` it was read at, as
//!   `kubectl set image` would. Server-side apply was rejected for it: an apply that later omits a
//!   field Slipway once applied *removes* that field, and Helm or Argo CD own the rest.
//! - Writes that depend on what was read (the Service selector, the Lease, the user's Deployment)
//!   carry the `resourceVersion` they read; a 409 conflict re-reads and retries.
//! - Slipway deletes only objects that carry its label, with the `uid` as a precondition.
//! - Release history: one ConfigMap per revision, `slipway-release-<name>-v<revision>`, labelled
//!   `slipway.dev/release=<name>`, holding the record's JSON and the SHA-256 of the previous
//!   record's JSON (`prev-hash`), so an edited or removed revision is noticed.
//! - Canary Ingress (exact weights with the NGINX ingress controller): the user's Ingress is only
//!   read; its rules' paths to the release's Service are copied into a Slipway-owned Ingress
//!   whose backend is the canary Service, with `nginx.ingress.kubernetes.io/canary: "true"` and
//!   `canary-weight`. NGINX sends that percentage of the requests for the same host and path to
//!   the canary Ingress and the rest to the user's, whatever the pod counts.
//! - Lock: a `coordination.k8s.io/v1` Lease `slipway-lock-<name>`.
//! - Audit trail: one ConfigMap per entry, created with `immutable: true` and never updated, so
//!   the API server itself refuses any change to an entry's data; a name already taken (409)
//!   means another runner appended first.
//! - Every request goes through [`KubeCluster::call`] with an [`Operation`] from the table in
//!   `ops.rs`, so a 403 names the missing verb and the RBAC Role can be checked against the table.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret as SecretObject, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams, Preconditions,
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use slipway_core::{Clock, ReleaseId, ReleaseRecord, Secret};

use crate::ops::{self, Operation};
use crate::{
    AUDIT_LABEL, AuditCreate, AuditObject, CanaryIngress, Cluster, DeploymentSpec, DeploymentState,
    Error, FIELD_MANAGER, MANAGED_BY_LABEL, NGINX_CANARY_ANNOTATION,
    NGINX_CANARY_WEIGHT_ANNOTATION, ObjectKind, Ownership, PodProblem, RELEASE_LABEL,
    RollingParams, gateway,
};

/// Annotation on derived objects naming the object they were derived from.
const DERIVED_FROM_ANNOTATION: &str = "slipway.dev/derived-from";
/// The ingress class annotation older Ingresses use instead of `spec.ingressClassName`; copied to
/// the canary Ingress so the same controller picks it up.
const LEGACY_INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// Settings of a [`KubeCluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeClusterConfig {
    /// Server-side apply field manager (default `slipway`).
    pub field_manager: String,
    /// Send every write with `dryRun=All`: the API server validates and admits it but stores
    /// nothing.
    pub dry_run: bool,
    /// Events' `reportingInstance` (e.g. the CI runner), default `slipway`.
    pub reporting_instance: String,
    /// How often a write that hit a 409 conflict is re-read and retried.
    pub conflict_retries: u32,
    /// Time limits on each request (default: connect 10 s, write 30 s, read 30 s).
    pub timeouts: KubeTimeouts,
    /// How requests that failed on the way (429, 5xx, a timeout, a lost connection) are retried
    /// (default: 4 attempts, backoff from 250 ms doubling up to 4 s).
    pub retry: KubeRetry,
}

impl Default for KubeClusterConfig {
    fn default() -> Self {
        KubeClusterConfig {
            field_manager: FIELD_MANAGER.to_owned(),
            dry_run: false,
            reporting_instance: "slipway".to_owned(),
            conflict_retries: 3,
            timeouts: KubeTimeouts::default(),
            retry: KubeRetry::default(),
        }
    }
}

/// Time limits on each request to the API server.
///
/// [`connect`] sets them on kube's client (`connect_timeout`, `write_timeout`, `read_timeout`),
/// and [`KubeCluster`] also bounds every attempt by [`KubeTimeouts::attempt`] itself, so a
/// client built some other way (a caller's own `kube::Client`, a test's scripted server) cannot
/// hang a release either. kube's own default has no read timeout at all: an API server that
/// accepts the connection and never answers would stall the run forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeTimeouts {
    /// Opening the connection (TCP and TLS). Default 10 s.
    pub connect: Duration,
    /// Sending one request. Default 30 s.
    pub write: Duration,
    /// Waiting for the answer to one request. Default 30 s: the API server's own request
    /// timeout is 60 s, but Slipway's requests are single objects and answer in milliseconds.
    pub read: Duration,
}

impl Default for KubeTimeouts {
    fn default() -> Self {
        KubeTimeouts {
            connect: Duration::from_secs(10),
            write: Duration::from_secs(30),
            read: Duration::from_secs(30),
        }
    }
}

impl KubeTimeouts {
    /// The longest one attempt may take: connecting, sending and waiting for the answer.
    pub fn attempt(&self) -> Duration {
        self.connect
            .saturating_add(self.write)
            .saturating_add(self.read)
    }
}

/// Bounded retries of requests that failed on the way: 429 (honouring the API server's
/// `retryAfterSeconds` up to `max_backoff`), 500, 502, 503, 504, timeouts and lost connections.
///
/// Every request Slipway sends is safe to repeat: reads, server-side applies, patches and
/// replaces carrying the `resourceVersion` they read (a repeat after a lost answer gets a 409,
/// which re-reads), the replace that ends an in-progress revision (it writes the same content
/// again), deletes with a `uid` precondition (a repeat gets a 404, which is fine), and
/// creates whose 409 is handled (Lease, release history, Events). The one exception is an
/// audit-trail entry: its 409 means "another runner appended first", so an append is repeated
/// only after a 429, which the API server sends before doing anything.
///
/// kube's own retry layer (`Config::default_retry`, 15 attempts with up to 1000 s between them,
/// creates included) is switched off by [`connect`] so that this is the only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeRetry {
    /// Attempts in all, the first included (at least 1). Default 4.
    pub attempts: u32,
    /// Wait before the second attempt; it doubles for each further one. Default 250 ms.
    pub first_backoff: Duration,
    /// The longest wait between two attempts. Default 4 s.
    pub max_backoff: Duration,
}

impl Default for KubeRetry {
    fn default() -> Self {
        KubeRetry {
            attempts: 4,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(4),
        }
    }
}

impl KubeRetry {
    /// The wait after failed attempt `attempt` (1-based), or the server's `retry_after` when it
    /// sent one; never more than `max_backoff`.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(doubled).min(self.max_backoff)
    }
}

/// Where to find the cluster, as kubectl looks for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    /// An explicit kubeconfig file (`--kubeconfig`). Unset: `KUBECONFIG`, then `~/.kube/config`,
    /// then the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (`--context`); unset: the current context.
    pub context: Option<String>,
    /// The default namespace (`--namespace`); unset: the context's namespace, else `default`.
    pub namespace: Option<String>,
}

/// Builds a [`KubeCluster`] from a kubeconfig (or the in-cluster service account) the way kubectl
/// finds it.
pub async fn connect(
    options: &ConnectOptions,
    config: KubeClusterConfig,
) -> Result<KubeCluster, Error> {
    let kube_options = kube::config::KubeConfigOptions {
        context: options.context.clone(),
        cluster: None,
        user: None,
    };
    let failed = |what: String, message: String| Error::Api {
        operation: what,
        message,
    };
    let mut kube_config = match (&options.kubeconfig, &options.context) {
        (Some(path), _) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|err| {
                failed(format!("read kubeconfig `{}`", path.display()), format!("{err}\n\nhint: check the path given with --kubeconfig"))
            })?;
            kube::Config::from_custom_kubeconfig(file, &kube_options).await.map_err(|err| {
                failed(format!("load kubeconfig `{}`", path.display()), format!("{err}\n\nhint: list contexts with `kubectl config get-contexts`"))
            })?
        }
        (None, Some(context)) => kube::Config::from_kubeconfig(&kube_options).await.map_err(|err| {
            failed(format!("load kubeconfig context `{context}`"), format!("{err}\n\nhint: list contexts with `kubectl config get-contexts`"))
        })?,
        (None, None) => kube::Config::infer().await.map_err(|err| {
            failed(
                "find a cluster".to_owned(),
                format!("{err}\n\nhint: set KUBECONFIG or --kubeconfig, or run inside a Pod with a service account"),
            )
        })?,
    };
    if let Some(namespace) = &options.namespace {
        kube_config.default_namespace = namespace.clone();
    }
    kube_config.connect_timeout = Some(config.timeouts.connect);
    kube_config.write_timeout = Some(config.timeouts.write);
    kube_config.read_timeout = Some(config.timeouts.read);
    // Count the read timeout from when a request is sent, not from when its pooled connection
    // went idle (kube's advice when setting one); Slipway uses no exec or attach streams.
    kube_config.reset_reader_on_write = true;
    // `KubeCluster::call` retries, knowing which requests are safe to repeat; see `KubeRetry`.
    kube_config.default_retry = false;
    let client = kube::Client::try_from(kube_config)
        .map_err(|err| failed("build the Kubernetes client".to_owned(), err.to_string()))?;
    Ok(KubeCluster::new(client, config))
}

/// The wall clock, for a real cluster.
#[derive(Debug)]
struct WallClock;

#[async_trait::async_trait]
impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// [`Cluster`] on a real API server. See the module docs.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
    config: KubeClusterConfig,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster")
            .field("namespace", &self.client.default_namespace())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why one request failed: a write conflict the caller may retry after re-reading, or an error.
enum Failure {
    Conflict(String),
    Error(Error),
}

/// A failure on the way that may go away when the request is sent again.
struct Transient {
    message: String,
    /// A 429: the API server refused before doing anything.
    throttled: bool,
    /// The API server's `retryAfterSeconds`.
    retry_after: Option<Duration>,
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Error {
        match failure {
            Failure::Conflict(operation) => Error::Api {
                operation,
                message: "the object kept changing under Slipway (409 conflict after every retry)\n\nhint: another controller is writing it; try again".to_owned(),
            },
            Failure::Error(err) => err,
        }
    }
}

fn kind_of(op: &Operation) -> &'static str {
    match op.resource {
        "deployments" => "Deployment",
        "services" => "Service",
        "secrets" => "Secret",
        "configmaps" => "ConfigMap",
        "leases" => "Lease",
        "events" => "Event",
        "pods" => "Pod",
        "ingresses" => "Ingress",
        _ => "object",
    }
}

fn labels_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn is_managed(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|labels| labels.get(MANAGED_BY_LABEL))
        .is_some_and(|value| value == FIELD_MANAGER)
}

fn count(value: Option<i32>) -> u32 {
    u32::try_from(value.unwrap_or(0).max(0)).unwrap_or(0)
}

fn int_or_string(value: &str) -> Value {
    value
        .parse::<i64>()
        .map_or_else(|_| json!(value), |number| json!(number))
}

/// SHA-256 of a stored record's JSON, the `prev-hash` of the next revision.
pub(crate) fn record_hash(record_json: &str) -> String {
    hex::encode(Sha256::digest(record_json.as_bytes()))
}

/// The ConfigMap that holds one revision of a release's history: the record and the hash of
/// the revision before it.
fn history_config_map(
    release: &ReleaseId,
    name: &str,
    raw: &str,
    prev_hash: &str,
) -> Result<ConfigMap, Error> {
    let namespace = &release.namespace;
    serde_json::from_value(json!({
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { RELEASE_LABEL: release.name, MANAGED_BY_LABEL: FIELD_MANAGER },
        },
        "data": { "record": raw, "prev-hash": prev_hash },
    }))
    .map_err(|err| Error::Api {
        operation: format!("build ConfigMap `{namespace}/{name}`"),
        message: err.to_string(),
    })
}

fn history_name(release: &ReleaseId, revision: u64) -> String {
    format!("slipway-release-{}-v{revision}", release.name)
}

fn lock_name(release: &ReleaseId) -> String {
    format!("slipway-lock-{}", release.name)
}

fn add(at: Timestamp, duration: Duration) -> Timestamp {
    at.checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX)
}

impl KubeCluster {
    /// A cluster on `client` (a real one from [`connect`], or a scripted one in tests).
    pub fn new(client: kube::Client, config: KubeClusterConfig) -> KubeCluster {
        KubeCluster {
            client,
            config,
            clock: Arc::new(WallClock),
        }
    }

    /// Uses `clock` for Lease and Event times and for the waits between retries, instead of the
    /// wall clock. Each attempt's time limit ([`KubeTimeouts`]) stays on real time.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> KubeCluster {
        self.clock = clock;
        self
    }

    /// The namespace from the kubeconfig context or `--namespace`.
    pub fn default_namespace(&self) -> &str {
        self.client.default_namespace()
    }

    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// HTTPRoutes (`gateway.networking.k8s.io/v1`), read and written as dynamic objects: see
    /// [`gateway`] for why not the `gateway-api` crate's types.
    fn route_api(&self, namespace: &str) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
            "httproutes",
        );
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    fn post_params(&self) -> PostParams {
        PostParams {
            dry_run: self.config.dry_run,
            field_manager: Some(self.config.field_manager.clone()),
        }
    }

    fn apply_params(&self) -> PatchParams {
        PatchParams {
            dry_run: self.config.dry_run,
            force: true,
            field_manager: Some(self.config.field_manager.clone()),
            field_validation: None,
        }
    }

    fn patch_params(&self) -> PatchParams {
        PatchParams {
            dry_run: self.config.dry_run,
            force: false,
            field_manager: Some(self.config.field_manager.clone()),
            field_validation: None,
        }
    }

    fn delete_params(&self, uid: Option<String>, resource_version: Option<String>) -> DeleteParams {
        DeleteParams {
            dry_run: self.config.dry_run,
            preconditions: (uid.is_some() || resource_version.is_some()).then_some(Preconditions {
                uid,
                resource_version,
            }),
            ..DeleteParams::background()
        }
    }

    /// Runs one API request, turning kube's errors into ours: 404 names the object, 403 the
    /// missing verb, 409 becomes [`Failure::Conflict`] for the caller to re-read and retry.
    ///
    /// `request` builds the request afresh for each attempt. Each attempt is bounded by
    /// [`KubeTimeouts::attempt`]; 429, 5xx, timeouts and lost connections are retried with
    /// backoff up to [`KubeRetry::attempts`] (see [`KubeRetry`] for why each request is safe to
    /// repeat), and the last failure names the verb, the object and the attempts made.
    async fn call<T, Fut>(
        &self,
        op: &'static Operation,
        namespace: &str,
        name: &str,
        request: impl Fn() -> Fut,
    ) -> Result<T, Failure>
    where
        Fut: Future<Output = kube::Result<T>>,
    {
        let describe = || {
            let verb = op.verbs.first().copied().unwrap_or("call");
            if name.is_empty() {
                format!("{verb} {} in `{namespace}`", op.qualified_resource())
            } else {
                format!("{verb} {} `{namespace}/{name}`", kind_of(op))
            }
        };
        let limit = self.config.timeouts.attempt();
        let attempts = self.config.retry.attempts.max(1);
        let mut attempt = 1;
        loop {
            let transient = match tokio::time::timeout(limit, request()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(kube::Error::Api(status))) => {
                    let message = status.message.clone();
                    match status.code {
                        404 => {
                            return Err(Failure::Error(Error::NotFound {
                                kind: kind_of(op),
                                namespace: namespace.to_owned(),
                                name: name.to_owned(),
                                hint: format!(
                                    "check the name and namespace (`kubectl -n {namespace} get {}`)",
                                    op.resource
                                ),
                            }));
                        }
                        403 => {
                            let verb = op
                                .verbs
                                .iter()
                                .copied()
                                .find(|verb| message.contains(&format!("cannot {verb} ")))
                                .or(op.verbs.first().copied())
                                .unwrap_or("get");
                            return Err(Failure::Error(Error::Forbidden {
                                verb,
                                resource: op.qualified_resource(),
                                namespace: namespace.to_owned(),
                                name: name.to_owned(),
                                message,
                            }));
                        }
                        409 => return Err(Failure::Conflict(describe())),
                        code @ (429 | 500 | 502 | 503 | 504) => Transient {
                            message: format!("{message} ({code} {})", status.reason),
                            throttled: code == 429,
                            retry_after: status
                                .details
                                .as_ref()
                                .map(|details| details.retry_after_seconds)
                                .filter(|seconds| *seconds > 0)
                                .map(|seconds| Duration::from_secs(u64::from(seconds))),
                        },
                        code => {
                            return Err(Failure::Error(Error::Api {
                                operation: describe(),
                                message: format!("{message} ({code} {})", status.reason),
                            }));
                        }
                    }
                }
                // Connection refused or reset, TLS and hyper-timeout's own timeouts.
                Ok(Err(err @ (kube::Error::HyperError(_) | kube::Error::Service(_)))) => {
                    Transient {
                        message: err.to_string(),
                        throttled: false,
                        retry_after: None,
                    }
                }
                Ok(Err(err)) => {
                    return Err(Failure::Error(Error::Api {
                        operation: describe(),
                        message: err.to_string(),
                    }));
                }
                Err(_elapsed) => Transient {
                    message: format!("no answer within {limit:?}"),
                    throttled: false,
                    retry_after: None,
                },
            };
            let repeatable = transient.throttled || *op != ops::CREATE_AUDIT;
            if !repeatable {
                return Err(Failure::Error(Error::Api {
                    operation: describe(),
                    message: format!(
                        "{}\n\nhint: not retried, since the entry may have been stored and an append is never sent twice; run again, and check the API server's health with `kubectl get --raw='/readyz?verbose'`",
                        transient.message
                    ),
                }));
            }
            if attempt >= attempts {
                return Err(Failure::Error(Error::Api {
                    operation: describe(),
                    message: format!(
                        "{} (gave up after {attempt} attempts)\n\nhint: the API server is overloaded or unreachable; check it with `kubectl get --raw='/readyz?verbose'` and run again",
                        transient.message
                    ),
                }));
            }
            self.clock
                .sleep(self.config.retry.backoff(attempt, transient.retry_after))
                .await;
            attempt += 1;
        }
    }

    async fn get_deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Deployment>, Error> {
        let api = self.api::<Deployment>(namespace);
        Ok(self
            .call(&ops::GET_DEPLOYMENT, namespace, name, || api.get_opt(name))
            .await?)
    }

    async fn problem(
        &self,
        namespace: &str,
        deployment: &Deployment,
        spec: &DeploymentSpec,
    ) -> Result<Option<PodProblem>, Error> {
        let selector = labels_selector(&spec.selector);
        let api = self.api::<Pod>(namespace);
        let params = ListParams::default().labels(&selector);
        let pods = self
            .call(&ops::LIST_PODS, namespace, "", || api.list(&params))
            .await?;
        for pod in &pods.items {
            let Some(pod_spec) = &pod.spec else { continue };
            // Only pods of the current template explain why the rollout is stuck.
            if !pod_spec.containers.iter().any(|container| {
                container.name == spec.container
                    && container.image.as_deref() == Some(spec.image.as_str())
            }) {
                continue;
            }
            let Some(status) = &pod.status else { continue };
            for container in status.container_statuses.iter().flatten() {
                let Some(waiting) = container
                    .state
                    .as_ref()
                    .and_then(|state| state.waiting.as_ref())
                else {
                    continue;
                };
                let message = waiting.message.clone().unwrap_or_default();
                match waiting.reason.as_deref() {
                    Some("ImagePullBackOff" | "ErrImagePull" | "InvalidImageName") => {
                        return Ok(Some(PodProblem::ImagePull(message)));
                    }
                    Some("CrashLoopBackOff") => return Ok(Some(PodProblem::CrashLoop(message))),
                    _ => {}
                }
            }
            for condition in status.conditions.iter().flatten() {
                if condition.type_ == "PodScheduled"
                    && condition.status == "False"
                    && condition.reason.as_deref() == Some("Unschedulable")
                {
                    return Ok(Some(PodProblem::Unschedulable(
                        condition.message.clone().unwrap_or_default(),
                    )));
                }
            }
        }
        let conditions = deployment
            .status
            .as_ref()
            .and_then(|status| status.conditions.as_ref());
        for condition in conditions.into_iter().flatten() {
            let stalled = (condition.type_ == "Progressing" && condition.status == "False")
                || (condition.type_ == "ReplicaFailure" && condition.status == "True");
            if stalled {
                let reason = condition.reason.clone().unwrap_or_default();
                return Ok(Some(PodProblem::Stalled(format!(
                    "{reason}: {}",
                    condition.message.clone().unwrap_or_default()
                ))));
            }
        }
        Ok(None)
    }

    /// Reads `deployment`'s spec the way the trait sees it (first container is the serving one).
    fn spec_of(
        namespace: &str,
        name: &str,
        deployment: &Deployment,
    ) -> Result<DeploymentSpec, Error> {
        let invalid = |message: &str| Error::Api {
            operation: format!("read Deployment `{namespace}/{name}`"),
            message: message.to_owned(),
        };
        let spec = deployment
            .spec
            .as_ref()
            .ok_or_else(|| invalid("it has no spec"))?;
        let pod_spec = spec
            .template
            .spec
            .as_ref()
            .ok_or_else(|| invalid("its pod template has no spec"))?;
        let container = pod_spec
            .containers
            .first()
            .ok_or_else(|| invalid("its pod template has no containers"))?;
        Ok(DeploymentSpec {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            replicas: u32::try_from(spec.replicas.unwrap_or(1).max(0)).unwrap_or(0),
            selector: spec.selector.match_labels.clone().unwrap_or_default(),
            pod_labels: spec
                .template
                .metadata
                .as_ref()
                .and_then(|meta| meta.labels.clone())
                .unwrap_or_default(),
            container: container.name.clone(),
            image: container.image.clone().unwrap_or_default(),
        })
    }

    /// The whole Deployment Slipway applies for `spec`, on `template` (another Deployment's pod
    /// template as JSON).
    fn owned_deployment(
        &self,
        spec: &DeploymentSpec,
        mut template: Value,
        source: &str,
    ) -> Result<Value, Error> {
        let operation = || {
            format!(
                "derive Deployment `{}/{}` from `{source}`",
                spec.namespace, spec.name
            )
        };
        template["metadata"]["labels"] = json!(spec.pod_labels);
        let containers = template["spec"]["containers"]
            .as_array_mut()
            .ok_or_else(|| Error::Api {
                operation: operation(),
                message: "the pod template has no containers".to_owned(),
            })?;
        let container = containers
            .iter_mut()
            .find(|container| container["name"] == spec.container.as_str())
            .ok_or_else(|| Error::Api {
                operation: operation(),
                message: format!("`{source}` has no container `{}`", spec.container),
            })?;
        container["image"] = json!(spec.image);
        Ok(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": spec.name,
                "namespace": spec.namespace,
                "labels": { MANAGED_BY_LABEL: FIELD_MANAGER },
                "annotations": { DERIVED_FROM_ANNOTATION: source },
            },
            "spec": {
                "replicas": spec.replicas,
                "selector": { "matchLabels": spec.selector },
                "template": template,
            },
        }))
    }

    async fn apply_owned_deployment(
        &self,
        spec: &DeploymentSpec,
        body: Value,
    ) -> Result<(), Error> {
        let api = self.api::<Deployment>(&spec.namespace);
        let params = self.apply_params();
        let patch = Patch::Apply(body);
        self.call(&ops::APPLY_DEPLOYMENT, &spec.namespace, &spec.name, || {
            api.patch(&spec.name, &params, &patch)
        })
        .await?;
        Ok(())
    }

    /// Strategic-merge patch of the user's Deployment, with the `resourceVersion` it was read at;
    /// re-reads and retries on a conflict. `build` returns `None` when nothing needs to change.
    async fn patch_user_deployment(
        &self,
        namespace: &str,
        name: &str,
        read: Option<Deployment>,
        build: impl Fn(&DeploymentSpec) -> Option<Value>,
    ) -> Result<(), Error> {
        let api = self.api::<Deployment>(namespace);
        let mut attempts = 0;
        let mut read = read;
        loop {
            let live = match read.take() {
                Some(live) => Some(live),
                None => self.get_deployment(namespace, name).await?,
            };
            let live = live.ok_or_else(|| Error::NotFound {
                kind: "Deployment",
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                hint: "deploy the stable version first (e.g. with Helm or Argo CD)".to_owned(),
            })?;
            let spec = Self::spec_of(namespace, name, &live)?;
            let Some(mut patch) = build(&spec) else {
                return Ok(());
            };
            patch["metadata"] = json!({ "resourceVersion": live.metadata.resource_version });
            let params = self.patch_params();
            let patch = Patch::Strategic(patch);
            match self
                .call(&ops::PATCH_DEPLOYMENT, namespace, name, || {
                    api.patch(name, &params, &patch)
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(Failure::Conflict(_)) if attempts < self.config.conflict_retries => {
                    attempts += 1
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    /// Deletes an object Slipway created: refuses one without Slipway's label, and deletes with
    /// its `uid` as a precondition so a re-created object of the same name is not hit.
    async fn delete_owned<K>(
        &self,
        get: &'static Operation,
        delete: &'static Operation,
        namespace: &str,
        name: &str,
    ) -> Result<(), Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api = self.api::<K>(namespace);
        let Some(live) = self
            .call(get, namespace, name, || api.get_opt(name))
            .await?
        else {
            return Ok(());
        };
        let meta = live.meta();
        if !is_managed(meta.labels.as_ref()) {
            return Err(Error::Api {
                operation: format!("delete {} `{namespace}/{name}`", kind_of(delete)),
                message: format!(
                    "it was not created by Slipway (no `{MANAGED_BY_LABEL}: {FIELD_MANAGER}` label); refusing to delete it"
                ),
            });
        }
        let params = self.delete_params(meta.uid.clone(), None);
        match self
            .call(delete, namespace, name, || api.delete(name, &params))
            .await
        {
            Ok(_) | Err(Failure::Error(Error::NotFound { .. })) => Ok(()),
            Err(failure) => Err(failure.into()),
        }
    }

    /// The labels of an object; `None` when it is absent.
    async fn labels_of<K>(
        &self,
        get: &'static Operation,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Option<BTreeMap<String, String>>>, Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api = self.api::<K>(namespace);
        let live = self
            .call(get, namespace, name, || api.get_opt(name))
            .await?;
        Ok(live.map(|object| object.meta().labels.clone()))
    }

    async fn refuse_unmanaged<K>(
        &self,
        get: &'static Operation,
        namespace: &str,
        name: &str,
    ) -> Result<(), Error>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let api = self.api::<K>(namespace);
        let live = self
            .call(get, namespace, name, || api.get_opt(name))
            .await?;
        match live {
            Some(object) if !is_managed(object.meta().labels.as_ref()) => Err(Error::Api {
                operation: format!("write {} `{namespace}/{name}`", kind_of(get)),
                message: "it exists and was not created by Slipway; refusing to overwrite it\n\nhint: rename or remove that object".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// History ConfigMaps of a release with their raw record JSON and `prev-hash`, by revision.
    async fn history_objects(
        &self,
        release: &ReleaseId,
    ) -> Result<Vec<(u64, String, String, ReleaseRecord)>, Error> {
        let selector = format!("{RELEASE_LABEL}={}", release.name);
        let api = self.api::<ConfigMap>(&release.namespace);
        let params = ListParams::default().labels(&selector);
        let list = self
            .call(&ops::LIST_HISTORY, &release.namespace, "", || {
                api.list(&params)
            })
            .await?;
        let broken = |message: String| Error::History {
            release: release.to_string(),
            message,
        };
        let mut entries = Vec::new();
        for object in list.items {
            let name = object.metadata.name.clone().unwrap_or_default();
            let data = object.data.unwrap_or_default();
            let raw = data
                .get("record")
                .ok_or_else(|| broken(format!("ConfigMap `{name}` has no `record` key")))?;
            let record: ReleaseRecord = serde_json::from_str(raw).map_err(|err| {
                broken(format!(
                    "ConfigMap `{name}` holds an unreadable record: {err}"
                ))
            })?;
            if record.release != *release {
                return Err(broken(format!(
                    "ConfigMap `{name}` holds a record of `{}`",
                    record.release
                )));
            }
            entries.push((
                record.revision,
                name,
                raw.clone(),
                record,
                data.get("prev-hash").cloned().unwrap_or_default(),
            ));
        }
        entries.sort_by_key(|entry| entry.0);
        for pair in entries.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            if after.4 != record_hash(&before.2) {
                return Err(broken(format!(
                    "revision {} does not chain to revision {} (prev-hash {} != {}): a record was edited or removed",
                    after.0,
                    before.0,
                    after.4,
                    record_hash(&before.2)
                )));
            }
        }
        Ok(entries
            .into_iter()
            .map(|(revision, name, raw, record, _)| (revision, name, raw, record))
            .collect())
    }
}

#[async_trait::async_trait]
impl Cluster for KubeCluster {
    async fn deployment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<DeploymentState>, Error> {
        let Some(deployment) = self.get_deployment(namespace, name).await? else {
            return Ok(None);
        };
        let spec = Self::spec_of(namespace, name, &deployment)?;
        let status = deployment.status.clone().unwrap_or_default();
        let generation = deployment.metadata.generation.unwrap_or(0);
        let observed = status.observed_generation.unwrap_or(0) >= generation;
        let updated = count(status.updated_replicas);
        let available = count(status.available_replicas);
        // `kubectl rollout status`: the new template is observed, every pod runs it, no old pod
        // is left and all are available.
        let complete = observed
            && updated >= spec.replicas
            && count(status.replicas) <= updated
            && available >= updated;
        let updated_ready = match (complete, observed) {
            (true, _) => spec.replicas,
            (false, false) => 0,
            (false, true) => updated.min(available).min(spec.replicas.saturating_sub(1)),
        };
        let revision = deployment
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get("deployment.kubernetes.io/revision"))
            .and_then(|revision| revision.parse().ok())
            .unwrap_or(u64::try_from(generation).unwrap_or(0));
        let problem = if complete {
            None
        } else {
            self.problem(namespace, &deployment, &spec).await?
        };
        Ok(Some(DeploymentState {
            ready_replicas: count(status.ready_replicas),
            updated_ready_replicas: updated_ready,
            revision,
            problem,
            spec,
        }))
    }

    async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), Error> {
        let live = self.get_deployment(&spec.namespace, &spec.name).await?;
        match live {
            Some(live) if !is_managed(live.metadata.labels.as_ref()) => {
                // The user's Deployment: change only image and replicas.
                self.patch_user_deployment(&spec.namespace, &spec.name, Some(live), |current| {
                    let mut patch = json!({});
                    if current.image != spec.image {
                        patch["spec"]["template"]["spec"]["containers"] =
                            json!([{ "name": current.container, "image": spec.image }]);
                    }
                    if current.replicas != spec.replicas {
                        patch["spec"]["replicas"] = json!(spec.replicas);
                    }
                    (patch != json!({})).then_some(patch)
                })
                .await
            }
            Some(live) => {
                let template = serde_json::to_value(live.spec.as_ref().map(|s| &s.template))
                    .unwrap_or(Value::Null);
                let source = live
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DERIVED_FROM_ANNOTATION))
                    .cloned()
                    .unwrap_or_else(|| spec.name.clone());
                let body = self.owned_deployment(spec, template, &source)?;
                self.apply_owned_deployment(spec, body).await
            }
            None => {
                let template = json!({ "metadata": {}, "spec": { "containers": [{ "name": spec.container, "image": spec.image }] } });
                let body = self.owned_deployment(spec, template, &spec.name)?;
                self.apply_owned_deployment(spec, body).await
            }
        }
    }

    async fn derive_deployment(&self, source: &str, spec: &DeploymentSpec) -> Result<(), Error> {
        let namespace = &spec.namespace;
        let from = self
            .get_deployment(namespace, source)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "Deployment",
                namespace: namespace.clone(),
                name: source.to_owned(),
                hint: "the stable Deployment must exist; Slipway derives its pod template from it"
                    .to_owned(),
            })?;
        self.refuse_unmanaged::<Deployment>(&ops::GET_DEPLOYMENT, namespace, &spec.name)
            .await?;
        let template =
            serde_json::to_value(from.spec.as_ref().map(|s| &s.template)).unwrap_or(Value::Null);
        let body = self.owned_deployment(spec, template, source)?;
        self.apply_owned_deployment(spec, body).await
    }

    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.delete_owned::<Deployment>(
            &ops::GET_DEPLOYMENT,
            &ops::DELETE_DEPLOYMENT,
            namespace,
            name,
        )
        .await
    }

    async fn rolling_update(
        &self,
        namespace: &str,
        name: &str,
        image: &str,
        params: &RollingParams,
    ) -> Result<(), Error> {
        self.patch_user_deployment(namespace, name, None, |current| {
            Some(json!({
                "spec": {
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": { "maxSurge": int_or_string(&params.max_surge), "maxUnavailable": int_or_string(&params.max_unavailable) },
                    },
                    "template": { "spec": { "containers": [{ "name": current.container, "image": image }] } },
                },
            }))
        })
        .await
    }

    async fn service_selector(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        let api = self.api::<Service>(namespace);
        let service = self
            .call(&ops::GET_SERVICE, namespace, name, || api.get_opt(name))
            .await?;
        Ok(service.map(|service| {
            service
                .spec
                .and_then(|spec| spec.selector)
                .unwrap_or_default()
        }))
    }

    async fn set_service_selector(
        &self,
        namespace: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let api = self.api::<Service>(namespace);
        let mut attempts = 0;
        loop {
            let mut service = self
                .call(&ops::GET_SERVICE, namespace, name, || api.get(name))
                .await?;
            let spec = service.spec.get_or_insert_with(Default::default);
            if spec.selector.as_ref() == Some(selector) {
                return Ok(());
            }
            spec.selector = Some(selector.clone());
            let params = self.post_params();
            match self
                .call(&ops::UPDATE_SERVICE, namespace, name, || {
                    api.replace(name, &params, &service)
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(Failure::Conflict(_)) if attempts < self.config.conflict_retries => {
                    attempts += 1
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    async fn copy_service(
        &self,
        namespace: &str,
        source: &str,
        name: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let api = self.api::<Service>(namespace);
        let from = self
            .call(&ops::GET_SERVICE, namespace, source, || api.get(source))
            .await?;
        self.refuse_unmanaged::<Service>(&ops::GET_SERVICE, namespace, name)
            .await?;
        let ports: Vec<Value> = from
            .spec
            .and_then(|spec| spec.ports)
            .unwrap_or_default()
            .into_iter()
            .map(|port| json!({ "name": port.name, "port": port.port, "targetPort": port.target_port, "protocol": port.protocol }))
            .collect();
        let body = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": { MANAGED_BY_LABEL: FIELD_MANAGER },
                "annotations": { DERIVED_FROM_ANNOTATION: source },
            },
            "spec": { "type": "ClusterIP", "selector": selector, "ports": ports },
        });
        let params = self.apply_params();
        let patch = Patch::Apply(body);
        self.call(&ops::APPLY_SERVICE, namespace, name, || {
            api.patch(name, &params, &patch)
        })
        .await?;
        Ok(())
    }

    async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.delete_owned::<Service>(&ops::GET_SERVICE, &ops::DELETE_SERVICE, namespace, name)
            .await
    }

    async fn apply_canary_ingress(&self, ingress: &CanaryIngress) -> Result<(), Error> {
        let CanaryIngress {
            namespace,
            name,
            source,
            service,
            canary_service,
            weight,
        } = ingress;
        let api = self.api::<Ingress>(namespace);
        let from = match self
            .call(&ops::GET_INGRESS, namespace, source, || api.get(source))
            .await
        {
            Ok(from) => from,
            Err(Failure::Error(Error::NotFound { .. })) => {
                return Err(crate::missing_ingress(ingress));
            }
            Err(failure) => return Err(failure.into()),
        };
        self.refuse_unmanaged::<Ingress>(&ops::GET_INGRESS, namespace, name)
            .await?;
        let spec = from.spec.unwrap_or_default();
        let mut rules = Vec::new();
        for rule in spec.rules.unwrap_or_default() {
            let Some(http) = rule.http else { continue };
            let paths: Vec<Value> = http
                .paths
                .into_iter()
                .filter_map(|path| {
                    let backend = path.backend.service?;
                    if &backend.name != service {
                        return None;
                    }
                    let mut copied = json!({
                        "pathType": path.path_type,
                        "backend": { "service": { "name": canary_service, "port": backend.port } },
                    });
                    if let Some(path) = path.path {
                        copied["path"] = json!(path);
                    }
                    Some(copied)
                })
                .collect();
            if paths.is_empty() {
                continue;
            }
            let mut copied = json!({ "http": { "paths": paths } });
            if let Some(host) = rule.host {
                copied["host"] = json!(host);
            }
            rules.push(copied);
        }
        if rules.is_empty() {
            return Err(crate::no_path_to_service(ingress));
        }
        let mut annotations = json!({
            DERIVED_FROM_ANNOTATION: source,
            NGINX_CANARY_ANNOTATION: "true",
            NGINX_CANARY_WEIGHT_ANNOTATION: (*weight).min(100).to_string(),
        });
        if let Some(class) = from
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(LEGACY_INGRESS_CLASS_ANNOTATION))
        {
            annotations[LEGACY_INGRESS_CLASS_ANNOTATION] = json!(class);
        }
        let mut ingress_spec = json!({ "rules": rules });
        if let Some(class) = spec.ingress_class_name {
            ingress_spec["ingressClassName"] = json!(class);
        }
        let body = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": { MANAGED_BY_LABEL: FIELD_MANAGER },
                "annotations": annotations,
            },
            "spec": ingress_spec,
        });
        let params = self.apply_params();
        let patch = Patch::Apply(body);
        self.call(&ops::APPLY_INGRESS, namespace, name, || {
            api.patch(name, &params, &patch)
        })
        .await?;
        Ok(())
    }

    async fn http_route(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<gateway::HttpRoute>, Error> {
        let api = self.route_api(namespace);
        let found = match self
            .call(&ops::GET_HTTPROUTE, namespace, name, || api.get(name))
            .await
        {
            Ok(found) => found,
            Err(Failure::Error(Error::NotFound { .. })) => return Ok(None),
            Err(failure) => return Err(failure.into()),
        };
        let rules = found
            .data
            .get("spec")
            .and_then(|spec| spec.get("rules"))
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new()));
        let original = found
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(gateway::ORIGINAL_ANNOTATION))
            .cloned();
        Ok(Some(gateway::HttpRoute {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            rules,
            original,
        }))
    }

    async fn apply_http_route(&self, route: &gateway::HttpRoute) -> Result<(), Error> {
        let gateway::HttpRoute {
            namespace,
            name,
            rules,
            original,
        } = route;
        // Server-side apply never creates here: a route that is gone is the user's to fix.
        if self.http_route(namespace, name).await?.is_none() {
            return Err(crate::missing_route(namespace, name));
        }
        let mut metadata = json!({ "name": name, "namespace": namespace });
        // Leaving the annotation out of the apply removes it: only Slipway's manager owns it.
        if let Some(original) = original {
            metadata["annotations"] = json!({ gateway::ORIGINAL_ANNOTATION: original });
        }
        let body = json!({
            "apiVersion": gateway::API_VERSION,
            "kind": "HTTPRoute",
            "metadata": metadata,
            "spec": { "rules": rules },
        });
        let api = self.route_api(namespace);
        let params = self.apply_params();
        let patch = Patch::Apply(body);
        self.call(&ops::APPLY_HTTPROUTE, namespace, name, || {
            api.patch(name, &params, &patch)
        })
        .await?;
        Ok(())
    }

    async fn delete_canary_ingress(&self, namespace: &str, name: &str) -> Result<(), Error> {
        self.delete_owned::<Ingress>(&ops::GET_INGRESS, &ops::DELETE_INGRESS, namespace, name)
            .await
    }

    async fn ownership(
        &self,
        kind: ObjectKind,
        namespace: &str,
        name: &str,
    ) -> Result<Ownership, Error> {
        let labels = match kind {
            ObjectKind::Deployment => {
                self.labels_of::<Deployment>(&ops::GET_DEPLOYMENT, namespace, name)
                    .await?
            }
            ObjectKind::Service => {
                self.labels_of::<Service>(&ops::GET_SERVICE, namespace, name)
                    .await?
            }
            ObjectKind::Ingress => {
                self.labels_of::<Ingress>(&ops::GET_INGRESS, namespace, name)
                    .await?
            }
            // Always the user's: Slipway only weights its backendRefs.
            ObjectKind::HttpRoute => {
                return Ok(match self.http_route(namespace, name).await? {
                    Some(_) => Ownership::Other,
                    None => Ownership::Absent,
                });
            }
        };
        Ok(match labels {
            None => Ownership::Absent,
            Some(labels) if is_managed(labels.as_ref()) => Ownership::Slipway,
            Some(_) => Ownership::Other,
        })
    }

    async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, Error> {
        let not_found = |hint: String| Error::NotFound {
            kind: "Secret",
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            hint,
        };
        let api = self.api::<SecretObject>(namespace);
        let secret = match self
            .call(&ops::GET_SECRET, namespace, name, || api.get(name))
            .await
        {
            Ok(secret) => secret,
            Err(Failure::Error(Error::NotFound { .. })) => {
                return Err(not_found(format!(
                    "create it: kubectl -n {namespace} create secret generic {name} --from-literal={key}=…"
                )));
            }
            Err(failure) => return Err(failure.into()),
        };
        let data = secret.data.unwrap_or_default();
        let Some(value) = data.get(key) else {
            let keys: Vec<&str> = data.keys().map(String::as_str).collect();
            return Err(not_found(format!(
                "the Secret exists but has no key `{key}` (keys: {})",
                keys.join(", ")
            )));
        };
        let text = String::from_utf8(value.0.clone()).map_err(|_| Error::Api {
            operation: format!("read key `{key}` of Secret `{namespace}/{name}`"),
            message: "the value is not UTF-8 text".to_owned(),
        })?;
        Ok(Secret::new(text))
    }

    async fn emit_event(
        &self,
        namespace: &str,
        deployment: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let suffix = &record_hash(&format!("{now}\n{reason}\n{message}"))[..16];
        let warning = ["Abort", "Fail", "Rollback", "RolledBack", "Unhealthy"]
            .iter()
            .any(|word| reason.contains(word));
        // The API server caps a note at 1 kB.
        let note: String = message.chars().take(1000).collect();
        let event: Event = serde_json::from_value(json!({
            "metadata": { "name": format!("{deployment}.{suffix}"), "namespace": namespace },
            "eventTime": now,
            "action": reason,
            "reason": reason,
            "note": note,
            "type": if warning { "Warning" } else { "Normal" },
            "reportingController": "slipway.dev/slipway",
            "reportingInstance": self.config.reporting_instance,
            "regarding": { "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment, "namespace": namespace },
        }))
        .map_err(|err| Error::Api { operation: format!("build Event for `{namespace}/{deployment}`"), message: err.to_string() })?;
        let api = self.api::<Event>(namespace);
        let params = self.post_params();
        match self
            .call(&ops::CREATE_EVENT, namespace, "", || {
                api.create(&params, &event)
            })
            .await
        {
            // The name is derived from time, reason and message: a 409 is this very Event,
            // stored by an attempt whose answer was lost.
            Ok(_) | Err(Failure::Conflict(_)) => Ok(()),
            Err(failure) => Err(failure.into()),
        }
    }

    async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, Error> {
        Ok(self
            .history_objects(release)
            .await?
            .into_iter()
            .map(|(_, _, _, record)| record)
            .collect())
    }

    async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), Error> {
        let release = &record.release;
        let namespace = &release.namespace;
        let existing = self.history_objects(release).await?;
        let raw = serde_json::to_string(record).map_err(|err| Error::Api {
            operation: format!("encode revision {} of `{release}`", record.revision),
            message: err.to_string(),
        })?;
        let name = history_name(release, record.revision);
        let api = self.api::<ConfigMap>(namespace);
        if let Some(index) = existing.iter().position(|entry| entry.0 == record.revision) {
            let stored = &existing[index].3;
            // A run that was killed after recording and started again: same record, nothing to do.
            if stored == record {
                return Ok(());
            }
            // The record that ends an in-progress revision replaces it, keeping its place in
            // the chain (nothing chains onto a revision while it is in progress: the lock).
            if stored.outcome == slipway_core::Outcome::InProgress {
                let prev_hash = index
                    .checked_sub(1)
                    .map(|prev| record_hash(&existing[prev].2))
                    .unwrap_or_default();
                let config_map = history_config_map(release, &name, &raw, &prev_hash)?;
                let params = self.post_params();
                self.call(&ops::FINISH_HISTORY, namespace, &name, || {
                    api.replace(&name, &params, &config_map)
                })
                .await?;
                return Ok(());
            }
            return Err(Error::History {
                release: release.to_string(),
                message: format!(
                    "revision {} is already recorded with different content",
                    record.revision
                ),
            });
        }
        let prev_hash = existing
            .last()
            .map(|entry| record_hash(&entry.2))
            .unwrap_or_default();
        let config_map = history_config_map(release, &name, &raw, &prev_hash)?;
        let params = self.post_params();
        match self
            .call(&ops::CREATE_HISTORY, namespace, &name, || {
                api.create(&params, &config_map)
            })
            .await
        {
            Ok(_) => {}
            Err(Failure::Conflict(_)) => {
                // Another run recorded the same revision between our read and our write.
                let again = self.history_objects(release).await?;
                if again
                    .iter()
                    .any(|entry| entry.0 == record.revision && entry.3 == *record)
                {
                    return Ok(());
                }
                return Err(Error::History {
                    release: release.to_string(),
                    message: format!(
                        "revision {} was recorded concurrently by another run",
                        record.revision
                    ),
                });
            }
            Err(failure) => return Err(failure.into()),
        }
        let total = existing.len() + 1;
        for (_, old, _, _) in existing.iter().take(total.saturating_sub(limit.max(1))) {
            let params = self.delete_params(None, None);
            match self
                .call(&ops::DELETE_HISTORY, namespace, old, || {
                    api.delete(old, &params)
                })
                .await
            {
                Ok(_) | Err(Failure::Error(Error::NotFound { .. })) => {}
                Err(failure) => return Err(failure.into()),
            }
        }
        Ok(())
    }

    async fn acquire_lock(
        &self,
        release: &ReleaseId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let namespace = &release.namespace;
        let name = lock_name(release);
        let api = self.api::<Lease>(namespace);
        let seconds = i32::try_from(ttl.as_secs().max(1)).unwrap_or(i32::MAX);
        let mut attempts = 0;
        loop {
            let now = self.clock.now();
            let live = self
                .call(&ops::GET_LEASE, namespace, &name, || api.get_opt(&name))
                .await?;
            let result = match live {
                None => {
                    let lease: Lease = serde_json::from_value(json!({
                        "metadata": { "name": name, "namespace": namespace, "labels": { RELEASE_LABEL: release.name, MANAGED_BY_LABEL: FIELD_MANAGER } },
                        "spec": { "holderIdentity": holder, "leaseDurationSeconds": seconds, "acquireTime": now, "renewTime": now, "leaseTransitions": 0 },
                    }))
                    .map_err(|err| Error::Api { operation: format!("build Lease `{namespace}/{name}`"), message: err.to_string() })?;
                    let params = self.post_params();
                    self.call(&ops::CREATE_LEASE, namespace, &name, || {
                        api.create(&params, &lease)
                    })
                    .await
                    .map(drop)
                }
                Some(mut lease) => {
                    let spec = lease.spec.get_or_insert_with(Default::default);
                    let current = spec.holder_identity.clone().unwrap_or_default();
                    let renewed = spec
                        .renew_time
                        .as_ref()
                        .or(spec.acquire_time.as_ref())
                        .map_or(Timestamp::UNIX_EPOCH, |time| time.0);
                    let duration = Duration::from_secs(
                        u64::try_from(spec.lease_duration_seconds.unwrap_or(0).max(0)).unwrap_or(0),
                    );
                    let expires = add(renewed, duration);
                    if !current.is_empty() && current != holder && expires > now {
                        return Err(Error::Locked {
                            release: release.to_string(),
                            holder: current,
                            expires: expires.to_string(),
                        });
                    }
                    if current != holder {
                        spec.acquire_time = Some(
                            k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now),
                        );
                        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                    }
                    spec.holder_identity = Some(holder.to_owned());
                    spec.lease_duration_seconds = Some(seconds);
                    spec.renew_time = Some(
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now),
                    );
                    let params = self.post_params();
                    self.call(&ops::UPDATE_LEASE, namespace, &name, || {
                        api.replace(&name, &params, &lease)
                    })
                    .await
                    .map(drop)
                }
            };
            match result {
                Ok(()) => return Ok(()),
                Err(Failure::Conflict(_)) if attempts < self.config.conflict_retries => {
                    attempts += 1
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    async fn lock_holder(&self, release: &ReleaseId) -> Result<Option<crate::LockHolder>, Error> {
        let namespace = &release.namespace;
        let name = lock_name(release);
        let api = self.api::<Lease>(namespace);
        let Some(lease) = self
            .call(&ops::GET_LEASE, namespace, &name, || api.get_opt(&name))
            .await?
        else {
            return Ok(None);
        };
        let spec = lease.spec.unwrap_or_default();
        let holder = spec.holder_identity.unwrap_or_default();
        let renewed = spec
            .renew_time
            .as_ref()
            .or(spec.acquire_time.as_ref())
            .map_or(Timestamp::UNIX_EPOCH, |time| time.0);
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0).max(0)).unwrap_or(0),
        );
        let expires = add(renewed, duration);
        Ok(
            (!holder.is_empty() && expires > self.clock.now()).then(|| crate::LockHolder {
                holder,
                expires: expires.to_string(),
                renewed: (renewed != Timestamp::UNIX_EPOCH).then(|| renewed.to_string()),
            }),
        )
    }

    async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), Error> {
        let namespace = &release.namespace;
        let name = lock_name(release);
        let api = self.api::<Lease>(namespace);
        let mut attempts = 0;
        loop {
            let Some(lease) = self
                .call(&ops::GET_LEASE, namespace, &name, || api.get_opt(&name))
                .await?
            else {
                return Ok(());
            };
            if lease
                .spec
                .as_ref()
                .and_then(|spec| spec.holder_identity.as_deref())
                != Some(holder)
            {
                return Ok(());
            }
            let params = self.delete_params(None, lease.metadata.resource_version.clone());
            match self
                .call(&ops::DELETE_LEASE, namespace, &name, || {
                    api.delete(&name, &params)
                })
                .await
            {
                Ok(_) | Err(Failure::Error(Error::NotFound { .. })) => return Ok(()),
                Err(Failure::Conflict(_)) if attempts < self.config.conflict_retries => {
                    attempts += 1
                }
                Err(failure) => return Err(failure.into()),
            }
        }
    }

    async fn audit_objects(&self, namespace: &str, trail: &str) -> Result<Vec<AuditObject>, Error> {
        let selector = format!("{AUDIT_LABEL}={trail}");
        let api = self.api::<ConfigMap>(namespace);
        let params = ListParams::default().labels(&selector);
        let list = self
            .call(&ops::LIST_AUDIT, namespace, "", || api.list(&params))
            .await?;
        Ok(list
            .items
            .into_iter()
            .map(|object| AuditObject {
                name: object.metadata.name.unwrap_or_default(),
                entry: object
                    .data
                    .and_then(|mut data| data.remove("entry"))
                    .unwrap_or_default(),
            })
            .collect())
    }

    async fn create_audit_object(
        &self,
        namespace: &str,
        trail: &str,
        object: &AuditObject,
    ) -> Result<AuditCreate, Error> {
        let config_map: ConfigMap = serde_json::from_value(json!({
            "metadata": {
                "name": object.name,
                "namespace": namespace,
                "labels": { AUDIT_LABEL: trail, MANAGED_BY_LABEL: FIELD_MANAGER },
            },
            "immutable": true,
            "data": { "entry": object.entry },
        }))
        .map_err(|err| Error::Api {
            operation: format!("build ConfigMap `{namespace}/{}`", object.name),
            message: err.to_string(),
        })?;
        let api = self.api::<ConfigMap>(namespace);
        let params = self.post_params();
        match self
            .call(&ops::CREATE_AUDIT, namespace, &object.name, || {
                api.create(&params, &config_map)
            })
            .await
        {
            Ok(_) => Ok(AuditCreate::Created),
            Err(Failure::Conflict(_)) => Ok(AuditCreate::NameTaken),
            Err(failure) => Err(failure.into()),
        }
    }
}
