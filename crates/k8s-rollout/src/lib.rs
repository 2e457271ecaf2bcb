//! Kubernetes rollouts: the [`Cluster`] trait, the in-memory cluster, and the strategy operations
//! (canary, promote, abort) written once against the trait.
//!
//! Implementations of [`Cluster`]:
//! - [`MemoryCluster`]: Deployments whose pods become ready over (simulated) time, Services with
//!   selectors, Secrets, Events, release history and Leases, with injectable failures (image pull
//!   error, crash loop, slow readiness). The dry run and the pipeline tests use it.
//!
//! Key design decision: the trait is at the level of *Deployments, Services and releases*, not raw
//! API objects. The strategies in [`rollout`] hold the logic (names, labels, replica maths, waiting
//! with a progress deadline), so every cluster implementation gets the same behaviour, and the
//! user's own stable Deployment stays the source of truth: Slipway only ever changes its image on
//! promotion.

mod memory;
pub mod rollout;

use std::collections::BTreeMap;
use std::time::Duration;

pub use memory::{Fault, MemoryCluster, RecordedEvent};
use slipway_core::{ReleaseId, ReleaseRecord, Secret};

/// Label that marks a pod's track (`stable`, `canary`, `blue`, `green`).
pub const TRACK_LABEL: &str = "slipway.dev/track";
/// Label on release-history objects naming the release.
pub const RELEASE_LABEL: &str = "slipway.dev/release";

/// The parts of a Deployment Slipway reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl std::fmt::Display for PodProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PodProblem::ImagePull(message) => write!(f, "ImagePullBackOff: {message}"),
            PodProblem::CrashLoop(message) => write!(f, "CrashLoopBackOff: {message}"),
            PodProblem::Unschedulable(message) => write!(f, "Unschedulable: {message}"),
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
    /// Pods did not become ready before the progress deadline.
    #[error("Deployment `{namespace}/{name}` not ready after {waited:?} (progress deadline): {reason}")]
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
    #[error("release `{release}` is locked by `{holder}` until {expires}\n\nhint: wait for that run to finish; a dead holder's lock is taken over after it expires")]
    Locked {
        /// The release.
        release: String,
        /// Who holds it.
        holder: String,
        /// When the lease expires unless renewed.
        expires: String,
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
#[async_trait::async_trait]
pub trait Cluster: Send + Sync {
    /// Reads a Deployment and its status; `None` when absent.
    async fn deployment(&self, namespace: &str, name: &str) -> Result<Option<DeploymentState>, Error>;
    /// Creates or updates a Deployment (server-side apply with Slipway's field manager).
    async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), Error>;
    /// Deletes a Deployment; absent is fine.
    async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), Error>;
    /// A Service's selector; `None` when the Service is absent.
    async fn service_selector(&self, namespace: &str, name: &str) -> Result<Option<BTreeMap<String, String>>, Error>;
    /// Replaces a Service's selector.
    async fn set_service_selector(&self, namespace: &str, name: &str, selector: &BTreeMap<String, String>) -> Result<(), Error>;
    /// Reads one key of a Secret.
    async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, Error>;
    /// Records a Kubernetes Event on a Deployment.
    async fn emit_event(&self, namespace: &str, deployment: &str, reason: &str, message: &str) -> Result<(), Error>;
    /// The release's history, oldest first.
    async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, Error>;
    /// Appends a record to the release's history, dropping the oldest beyond `limit`.
    async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), Error>;
    /// Takes (or renews) the release's lock for `holder`; refuses when another live holder has it.
    async fn acquire_lock(&self, release: &ReleaseId, holder: &str, ttl: Duration) -> Result<(), Error>;
    /// Gives the lock up if `holder` has it.
    async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), Error>;
}
