//! [`Backends`]: one implementation per external system, chosen by the caller.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use slipway_analysis::MetricsProvider;
use slipway_attest::{Signer, Verifier};
use slipway_audit_log::AuditStore;
use slipway_core::Clock;
use slipway_k8s_rollout::Cluster;
use slipway_mlflow::ModelRegistry;
use slipway_registry::Registry;
use slipway_scanner::Scanner;

use crate::Notifier;

/// The systems a release talks to.
#[derive(Clone)]
pub struct Backends {
    /// Model registry (MLflow).
    pub models: Arc<dyn ModelRegistry>,
    /// OCI registry.
    pub registry: Arc<dyn Registry>,
    /// Vulnerability scanner.
    pub scanner: Arc<dyn Scanner>,
    /// Key to sign with, if the pipeline signs.
    pub signer: Option<Arc<dyn Signer>>,
    /// Keys whose signatures are trusted.
    pub trusted_keys: Vec<Arc<dyn Verifier>>,
    /// The build system's keys (`[policy.provenance] keys`): only provenance they signed counts.
    /// The deploy key is not among them unless configured; a deploy never vouches for its build.
    pub provenance_keys: Vec<Arc<dyn Verifier>>,
    /// Kubernetes.
    pub cluster: Arc<dyn Cluster>,
    /// Metrics (Prometheus).
    pub metrics: Arc<dyn MetricsProvider>,
    /// Where notifications go.
    pub notifier: Arc<dyn Notifier>,
    /// Audit trail.
    pub audit: Arc<dyn AuditStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Raised by a signal or a lost lock: the command stops waiting and cleans up.
    pub interrupt: crate::Interrupt,
    /// What makes an approval in the trail count: signed entries (outside the demo) and the
    /// approver keys.
    pub approvals: crate::ApprovalTrust,
}

/// Real time, for runs against real systems.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
