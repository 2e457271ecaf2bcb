//! The model registry boundary: the [`ModelRegistry`] trait, what it returns, and the
//! implementations Slipway ships.
//!
//! Implementations:
//! - [`MlflowClient`]: MLflow's REST API (2.x and 3.x tracking servers) over reqwest, configured
//!   from the same `MLFLOW_TRACKING_*` variables MLflow's own clients read ([`MlflowConfig`]).
//! - [`MemoryModelRegistry`]: registered models, versions, aliases, legacy stages, tags and run
//!   metrics in memory, following MLflow's semantics (an alias points at one version; a stage
//!   transition can archive the versions already in that stage; a version's metrics live on its run).
//!
//! Key design decision: metrics are read through the version's *run*, as MLflow stores them, so a
//! gate always judges the exact run that produced the version.
//!
//! The trait uses `#[async_trait]` rather than native async because the pipeline picks the
//! implementation at runtime (memory or MLflow) and holds it as `Arc<dyn ModelRegistry>`.
//! Wire types stay private (`wire.rs`): the trait speaks only Slipway's types.

mod client;
mod config;
mod memory;
mod wire;

use std::collections::BTreeMap;

pub use client::MlflowClient;
pub use config::{ConfigError, MlflowAuth, MlflowConfig, env_vars};
pub use memory::{MemoryModelRegistry, MemoryModelRegistrySnapshot};
use slipway_core::{ModelRef, ModelVersion, Stage};

/// Registration status of a model version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VersionStatus {
    /// `READY`: usable.
    Ready,
    /// `PENDING_REGISTRATION`.
    PendingRegistration,
    /// `FAILED_REGISTRATION`.
    FailedRegistration,
}

impl VersionStatus {
    /// MLflow's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Ready => "READY",
            VersionStatus::PendingRegistration => "PENDING_REGISTRATION",
            VersionStatus::FailedRegistration => "FAILED_REGISTRATION",
        }
    }
}

/// What the registry knows about one model version.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VersionInfo {
    /// Name and number.
    pub version: ModelVersion,
    /// Registration status.
    pub status: VersionStatus,
    /// Artifact source (`runs:/…`, `models:/m-…`, a path).
    pub source: String,
    /// The run that produced it, when known.
    pub run_id: Option<String>,
    /// Legacy stage.
    pub stage: Stage,
    /// Aliases pointing at it.
    pub aliases: Vec<String>,
    /// Version tags.
    pub tags: BTreeMap<String, String>,
}

/// A run's metrics (latest value of each) and params.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct RunData {
    /// Latest value of each metric.
    pub metrics: BTreeMap<String, f64>,
    /// Params.
    pub params: BTreeMap<String, String>,
}

/// One logged value of a metric, as MLflow keeps its history.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricPoint {
    /// When it was logged, in milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// The training step it was logged at (0 when the run logged no steps).
    pub step: i64,
    /// The value (may be NaN or infinite: MLflow stores those too).
    pub value: f64,
}

/// Errors from a model registry. Each names the model (and version or alias).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model, version, alias or run does not exist.
    #[error("{what} not found in the model registry{detail}\n\nhint: {hint}")]
    NotFound {
        /// What was looked up, e.g. "alias `champion` of model `iris`".
        what: String,
        /// Registry's own words, prefixed with `: ` when present.
        detail: String,
        /// How to fix it.
        hint: String,
    },
    /// The registry refused the request as invalid.
    #[error("{operation}: the model registry rejected the request: {error_code}: {message}{hint}")]
    Rejected {
        /// What we were doing.
        operation: String,
        /// MLflow's `error_code` (or `HTTP <status>` when the body was not MLflow's JSON).
        error_code: String,
        /// MLflow's `message`.
        message: String,
        /// Empty, or `\n\nhint: …` when one helps.
        hint: String,
    },
    /// The registry could not be reached, timed out, or failed.
    #[error("{operation}: the model registry is unavailable: {message}{hint}")]
    Unavailable {
        /// What we were doing.
        operation: String,
        /// What went wrong.
        message: String,
        /// Empty, or `\n\nhint: …` when one helps.
        hint: String,
    },
}

/// A model registry, as far as Slipway needs one.
#[async_trait::async_trait]
pub trait ModelRegistry: Send + Sync {
    /// Resolves a reference (alias, version or stage) to a version.
    async fn resolve(&self, model: &ModelRef) -> Result<VersionInfo, Error>;
    /// The metrics and params of a run.
    async fn run_data(&self, run_id: &str) -> Result<RunData, Error>;
    /// Every logged value of metric `key` of a run, oldest first as the registry returns them;
    /// empty when the run never logged that metric. An unknown run also gives an empty history,
    /// as MLflow answers it: read [`ModelRegistry::run_data`] first to tell the two apart.
    async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>, Error>;
    /// Points `alias` at `version` (moving it if it pointed elsewhere).
    async fn set_alias(&self, version: &ModelVersion, alias: &str) -> Result<(), Error>;
    /// Removes `alias` from model `name`; removing an alias that is not set succeeds, as in MLflow.
    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), Error>;
    /// Sets a tag on a version.
    async fn set_version_tag(
        &self,
        version: &ModelVersion,
        key: &str,
        value: &str,
    ) -> Result<(), Error>;
    /// Removes a tag from a version; removing a tag that is not set succeeds, as in MLflow.
    async fn delete_version_tag(&self, version: &ModelVersion, key: &str) -> Result<(), Error>;
    /// Moves a version to a legacy stage; with `archive_existing`, versions already in that
    /// stage move to `Archived`.
    async fn transition_stage(
        &self,
        version: &ModelVersion,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<(), Error>;
}
