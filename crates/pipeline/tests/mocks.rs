//! Strict mocks (mockall) of the four systems a release writes to (`Registry`, `Cluster`,
//! `ModelRegistry`, `AuditStore`), for what the in-memory fakes cannot show on their own:
//!
//! - `plan` makes no write call at all: the mocks expect only read calls, so any write panics;
//! - the serving alias moves only once stable (or the Service's colour) serves the candidate;
//! - for each write call of promote (a canary `run`, and `promote` after a pause), abort,
//!   rollback (by stable, and by colour) and a blue-green switch in turn, making that one call
//!   fail leaves history and cluster agreeing (see [`agree`]), and `abort` then `run` (or the
//!   rollback again) converge with nothing of Slipway's left behind.
//!
//! Every expectation delegates to the in-memory backend of the same system, so the pipeline sees
//! a consistent world; the mocks add strictness (no expectation, no call), the call log and the
//! injected failure. The in-memory backends never wait, so a synchronous `returning` closure
//! drives their futures to completion with one poll ([`now`]); no executor is needed.
//!
//! The world is seeded here, not taken from the demo scenarios, so these tests depend on the
//! backends' contracts only.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use mockall::mock;
use slipway_analysis::{MemoryMetrics, TemplateVars};
use slipway_attest::EcdsaP256Key;
use slipway_audit_log::{ApprovalRecord, AuditStore, Entry, Event, MemoryAuditStore, Trail};
use slipway_cli::config::Settings;
use slipway_cli::release::release_spec;
use slipway_core::{
    Clock, Digest, ImageRef, ModelRef, ModelSelector, ModelVersion, Outcome, ReleaseId,
    ReleaseRecord, Secret, SimClock, Stage, Strategy,
};
use slipway_k8s_rollout::bluegreen::BlueGreenConfig;
use slipway_k8s_rollout::{
    AuditCreate, AuditObject, CanaryIngress, Cluster, DeploymentSpec, DeploymentState,
    MemoryCluster, ObjectKind, Ownership, RollingParams, TRACK_LABEL,
};
use slipway_mlflow::{MemoryModelRegistry, MetricPoint, ModelRegistry, RunData, VersionInfo};
use slipway_registry::{Artifact, Manifest, MemoryRegistry, Registry, Resolved};
use slipway_scanner::{Finding, MemoryScanner, Severity};

use slipway_pipeline::{
    Backends, MemoryNotifier, ReleaseSpec, Resume, RollbackSpec, RollbackTarget, RunOutcome,
    RunReport, StageEvent,
};

mock! {
    pub Cluster {}
    #[async_trait]
    impl slipway_k8s_rollout::Cluster for Cluster {
        async fn deployment(&self, namespace: &str, name: &str) -> Result<Option<DeploymentState>, slipway_k8s_rollout::Error>;
        async fn apply_deployment(&self, spec: &DeploymentSpec) -> Result<(), slipway_k8s_rollout::Error>;
        async fn derive_deployment(&self, source: &str, spec: &DeploymentSpec) -> Result<(), slipway_k8s_rollout::Error>;
        async fn delete_deployment(&self, namespace: &str, name: &str) -> Result<(), slipway_k8s_rollout::Error>;
        async fn rolling_update(&self, namespace: &str, name: &str, image: &str, params: &RollingParams) -> Result<(), slipway_k8s_rollout::Error>;
        async fn service_selector(&self, namespace: &str, name: &str) -> Result<Option<BTreeMap<String, String>>, slipway_k8s_rollout::Error>;
        async fn set_service_selector(&self, namespace: &str, name: &str, selector: &BTreeMap<String, String>) -> Result<(), slipway_k8s_rollout::Error>;
        async fn copy_service(&self, namespace: &str, source: &str, name: &str, selector: &BTreeMap<String, String>) -> Result<(), slipway_k8s_rollout::Error>;
        async fn delete_service(&self, namespace: &str, name: &str) -> Result<(), slipway_k8s_rollout::Error>;
        async fn apply_canary_ingress(&self, ingress: &CanaryIngress) -> Result<(), slipway_k8s_rollout::Error>;
        async fn delete_canary_ingress(&self, namespace: &str, name: &str) -> Result<(), slipway_k8s_rollout::Error>;
        async fn http_route(&self, namespace: &str, name: &str) -> Result<Option<slipway_k8s_rollout::gateway::HttpRoute>, slipway_k8s_rollout::Error>;
        async fn apply_http_route(&self, route: &slipway_k8s_rollout::gateway::HttpRoute) -> Result<(), slipway_k8s_rollout::Error>;
        async fn ownership(&self, kind: ObjectKind, namespace: &str, name: &str) -> Result<Ownership, slipway_k8s_rollout::Error>;
        async fn read_secret(&self, namespace: &str, name: &str, key: &str) -> Result<Secret, slipway_k8s_rollout::Error>;
        async fn emit_event(&self, namespace: &str, deployment: &str, reason: &str, message: &str) -> Result<(), slipway_k8s_rollout::Error>;
        async fn release_history(&self, release: &ReleaseId) -> Result<Vec<ReleaseRecord>, slipway_k8s_rollout::Error>;
        async fn record_release(&self, record: &ReleaseRecord, limit: usize) -> Result<(), slipway_k8s_rollout::Error>;
        async fn acquire_lock(&self, release: &ReleaseId, holder: &str, ttl: Duration) -> Result<(), slipway_k8s_rollout::Error>;
        async fn lock_holder(&self, release: &ReleaseId) -> Result<Option<slipway_k8s_rollout::LockHolder>, slipway_k8s_rollout::Error>;
        async fn release_lock(&self, release: &ReleaseId, holder: &str) -> Result<(), slipway_k8s_rollout::Error>;
        async fn audit_objects(&self, namespace: &str, trail: &str) -> Result<Vec<AuditObject>, slipway_k8s_rollout::Error>;
        async fn create_audit_object(&self, namespace: &str, trail: &str, object: &AuditObject) -> Result<AuditCreate, slipway_k8s_rollout::Error>;
    }
}

mock! {
    pub Models {}
    #[async_trait]
    impl slipway_mlflow::ModelRegistry for Models {
        async fn resolve(&self, model: &ModelRef) -> Result<VersionInfo, slipway_mlflow::Error>;
        async fn run_data(&self, run_id: &str) -> Result<RunData, slipway_mlflow::Error>;
        async fn metric_history(&self, run_id: &str, key: &str) -> Result<Vec<MetricPoint>, slipway_mlflow::Error>;
        async fn set_alias(&self, version: &ModelVersion, alias: &str) -> Result<(), slipway_mlflow::Error>;
        async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), slipway_mlflow::Error>;
        async fn set_version_tag(&self, version: &ModelVersion, key: &str, value: &str) -> Result<(), slipway_mlflow::Error>;
        async fn delete_version_tag(&self, version: &ModelVersion, key: &str) -> Result<(), slipway_mlflow::Error>;
        async fn transition_stage(&self, version: &ModelVersion, stage: Stage, archive_existing: bool) -> Result<(), slipway_mlflow::Error>;
    }
}

mock! {
    pub Images {}
    #[async_trait]
    impl slipway_registry::Registry for Images {
        async fn resolve(&self, image: &ImageRef) -> Result<Resolved, slipway_registry::Error>;
        async fn exists(&self, image: &ImageRef) -> Result<bool, slipway_registry::Error>;
        async fn list_tags(&self, image: &ImageRef) -> Result<Vec<String>, slipway_registry::Error>;
        async fn get_manifest(&self, image: &ImageRef) -> Result<Manifest, slipway_registry::Error>;
        async fn get_blob(&self, image: &ImageRef, digest: &Digest) -> Result<Vec<u8>, slipway_registry::Error>;
        async fn get_artifact(&self, image: &ImageRef, tag: &str) -> Result<Option<Artifact>, slipway_registry::Error>;
        async fn put_artifact(&self, image: &ImageRef, tag: &str, artifact: &Artifact) -> Result<Digest, slipway_registry::Error>;
        async fn tag(&self, image: &ImageRef, tag: &str) -> Result<(), slipway_registry::Error>;
    }
}

// `entries` keeps the trait's own implementation (over `read`), as every store does.
mock! {
    pub Trail {}
    #[async_trait]
    impl slipway_audit_log::AuditStore for Trail {
        async fn append(&self, at: Timestamp, event: Event) -> Result<Entry, slipway_audit_log::Error>;
        async fn read(&self) -> Result<Trail, slipway_audit_log::Error>;
    }
}

/// Drives an in-memory backend's future, which never waits, to its end with one poll.
fn now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("an in-memory backend waited; it must answer at once"),
    }
}

/// The write calls of one operation, across all four systems, in order; and which one fails.
#[derive(Default)]
struct Writes {
    state: Mutex<WriteState>,
}

#[derive(Default)]
struct WriteState {
    /// Counting starts with `arm` (the world's seeding and earlier commands are not counted).
    armed: bool,
    calls: Vec<String>,
    fail_at: Option<usize>,
}

impl Writes {
    fn arm(&self, fail_at: Option<usize>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        *state = WriteState {
            armed: true,
            calls: Vec::new(),
            fail_at,
        };
    }

    /// Stops counting and returns the calls made since `arm`.
    fn disarm(&self) -> Vec<String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.armed = false;
        state.fail_at = None;
        std::mem::take(&mut state.calls)
    }

    /// Logs a write call; true when it is the one that must fail.
    fn fails(&self, call: String) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.armed {
            return false;
        }
        let idx = state.calls.len();
        state.calls.push(call);
        state.fail_at == Some(idx)
    }
}

fn cluster_error(call: &str) -> slipway_k8s_rollout::Error {
    slipway_k8s_rollout::Error::Api {
        operation: call.to_owned(),
        message: "injected failure".to_owned(),
    }
}

fn models_error(call: &str) -> slipway_mlflow::Error {
    slipway_mlflow::Error::Unavailable {
        operation: call.to_owned(),
        message: "injected failure".to_owned(),
        hint: String::new(),
    }
}

fn registry_error(call: &'static str, image: &ImageRef) -> slipway_registry::Error {
    slipway_registry::Error::Unavailable {
        operation: call,
        image: image.to_string(),
        message: "injected failure".to_owned(),
    }
}

fn audit_error(call: &'static str) -> slipway_audit_log::Error {
    slipway_audit_log::Error::Io {
        path: "mock".to_owned(),
        operation: call,
        source: std::io::Error::other("injected failure"),
    }
}

/// A read call: always expected, answered by the in-memory backend.
macro_rules! read {
    ($mock:ident . $expect:ident => $inner:ident . $method:ident ( $($arg:ident),* )) => {{
        let inner = $inner.clone();
        $mock
            .$expect()
            .returning(move |$($arg),*| now(inner.$method($($arg),*)));
    }};
}

/// A write call: expected only when `writes` is given (else a call panics: the mock is strict);
/// logged, and failed with `$error` when it is the one `writes` says must fail.
macro_rules! write {
    ($mock:ident . $expect:ident, $writes:ident, $label:expr, $error:expr => $inner:ident . $method:ident ( $($arg:ident),* )) => {{
        if let Some(writes) = $writes.clone() {
            let inner = $inner.clone();
            $mock.$expect().returning(move |$($arg),*| {
                if writes.fails($label) {
                    Err($error)
                } else {
                    now(inner.$method($($arg),*))
                }
            });
        }
    }};
}

/// A strict `Cluster` over `memory`. Without `writes`, only reads are expected.
fn cluster_mock(memory: &Arc<MemoryCluster>, writes: Option<Arc<Writes>>) -> MockCluster {
    let mut mock = MockCluster::new();
    read!(mock.expect_deployment => memory.deployment(namespace, name));
    read!(mock.expect_service_selector => memory.service_selector(namespace, name));
    read!(mock.expect_ownership => memory.ownership(kind, namespace, name));
    read!(mock.expect_read_secret => memory.read_secret(namespace, name, key));
    read!(mock.expect_release_history => memory.release_history(release));
    read!(mock.expect_audit_objects => memory.audit_objects(namespace, trail));
    // The trait's `lock_holder` (the lease), not `MemoryCluster`'s inherent one of that name.
    let inner = memory.clone();
    mock.expect_lock_holder().returning(move |release| {
        now(slipway_k8s_rollout::Cluster::lock_holder(
            inner.as_ref(),
            release,
        ))
    });
    write!(mock.expect_apply_deployment, writes,
        format!("Cluster::apply_deployment {} {}", spec.name, spec.image),
        cluster_error("apply_deployment") => memory.apply_deployment(spec));
    write!(mock.expect_derive_deployment, writes,
        format!("Cluster::derive_deployment {} {}", spec.name, spec.image),
        cluster_error("derive_deployment") => memory.derive_deployment(source, spec));
    write!(mock.expect_delete_deployment, writes,
        format!("Cluster::delete_deployment {name}"),
        cluster_error("delete_deployment") => memory.delete_deployment(namespace, name));
    write!(mock.expect_rolling_update, writes,
        format!("Cluster::rolling_update {name} {image}"),
        cluster_error("rolling_update") => memory.rolling_update(namespace, name, image, params));
    write!(mock.expect_set_service_selector, writes,
        format!("Cluster::set_service_selector {name} {selector:?}"),
        cluster_error("set_service_selector") => memory.set_service_selector(namespace, name, selector));
    write!(mock.expect_copy_service, writes,
        format!("Cluster::copy_service {name}"),
        cluster_error("copy_service") => memory.copy_service(namespace, source, name, selector));
    write!(mock.expect_delete_service, writes,
        format!("Cluster::delete_service {name}"),
        cluster_error("delete_service") => memory.delete_service(namespace, name));
    write!(mock.expect_apply_canary_ingress, writes,
        format!("Cluster::apply_canary_ingress {}", ingress.name),
        cluster_error("apply_canary_ingress") => memory.apply_canary_ingress(ingress));
    write!(mock.expect_delete_canary_ingress, writes,
        format!("Cluster::delete_canary_ingress {name}"),
        cluster_error("delete_canary_ingress") => memory.delete_canary_ingress(namespace, name));
    write!(mock.expect_emit_event, writes,
        format!("Cluster::emit_event {reason}"),
        cluster_error("emit_event") => memory.emit_event(namespace, deployment, reason, message));
    write!(mock.expect_record_release, writes,
        format!("Cluster::record_release revision {} {}", record.revision, record.outcome),
        cluster_error("record_release") => memory.record_release(record, limit));
    write!(mock.expect_acquire_lock, writes,
        "Cluster::acquire_lock".to_owned(),
        cluster_error("acquire_lock") => memory.acquire_lock(release, holder, ttl));
    write!(mock.expect_release_lock, writes,
        "Cluster::release_lock".to_owned(),
        cluster_error("release_lock") => memory.release_lock(release, holder));
    write!(mock.expect_create_audit_object, writes,
        format!("Cluster::create_audit_object {}", object.name),
        cluster_error("create_audit_object") => memory.create_audit_object(namespace, trail, object));
    mock
}

/// A strict `ModelRegistry` over `memory`. Without `writes`, only reads are expected; without
/// `set_alias`, `set_alias` delegates like every other write (else the caller sets its own).
fn models_mock(
    memory: &Arc<MemoryModelRegistry>,
    writes: Option<Arc<Writes>>,
    delegate_set_alias: bool,
) -> MockModels {
    let mut mock = MockModels::new();
    read!(mock.expect_resolve => memory.resolve(model));
    read!(mock.expect_run_data => memory.run_data(run_id));
    read!(mock.expect_metric_history => memory.metric_history(run_id, key));
    if delegate_set_alias {
        write!(mock.expect_set_alias, writes,
            format!("ModelRegistry::set_alias {alias} -> {version}"),
            models_error("set_alias") => memory.set_alias(version, alias));
    }
    write!(mock.expect_delete_alias, writes,
        format!("ModelRegistry::delete_alias {alias}"),
        models_error("delete_alias") => memory.delete_alias(name, alias));
    write!(mock.expect_set_version_tag, writes,
        format!("ModelRegistry::set_version_tag {version} {key}"),
        models_error("set_version_tag") => memory.set_version_tag(version, key, value));
    write!(mock.expect_delete_version_tag, writes,
        format!("ModelRegistry::delete_version_tag {version} {key}"),
        models_error("delete_version_tag") => memory.delete_version_tag(version, key));
    write!(mock.expect_transition_stage, writes,
        format!("ModelRegistry::transition_stage {version} {stage:?}"),
        models_error("transition_stage") => memory.transition_stage(version, stage, archive_existing));
    mock
}

/// A strict `Registry` over `memory`. Without `writes`, only reads are expected.
fn registry_mock(memory: &Arc<MemoryRegistry>, writes: Option<Arc<Writes>>) -> MockImages {
    let mut mock = MockImages::new();
    read!(mock.expect_resolve => memory.resolve(image));
    read!(mock.expect_exists => memory.exists(image));
    read!(mock.expect_list_tags => memory.list_tags(image));
    read!(mock.expect_get_manifest => memory.get_manifest(image));
    read!(mock.expect_get_blob => memory.get_blob(image, digest));
    read!(mock.expect_get_artifact => memory.get_artifact(image, tag));
    write!(mock.expect_put_artifact, writes,
        format!("Registry::put_artifact {tag}"),
        registry_error("put_artifact", image) => memory.put_artifact(image, tag, artifact));
    write!(mock.expect_tag, writes,
        format!("Registry::tag {tag}"),
        registry_error("tag", image) => memory.tag(image, tag));
    mock
}

/// A strict `AuditStore` over `memory`. Without `writes`, only reads are expected.
fn trail_mock(memory: &Arc<MemoryAuditStore>, writes: Option<Arc<Writes>>) -> MockTrail {
    let mut mock = MockTrail::new();
    read!(mock.expect_read => memory.read());
    write!(mock.expect_append, writes,
        format!("AuditStore::append {}", describe(&event)),
        audit_error("append") => memory.append(at, event));
    mock
}

fn describe(event: &Event) -> String {
    match event {
        Event::Release(record) => {
            format!("release revision {} {}", record.revision, record.outcome)
        }
        Event::Approval(approval) => format!("approval by {}", approval.approver),
        Event::Decision { stage, verdict, .. } => format!("decision {stage} {verdict}"),
    }
}

/// The in-memory systems behind the mocks, to seed them and to look at them afterwards.
struct World {
    spec: ReleaseSpec,
    cluster: Arc<MemoryCluster>,
    models: Arc<MemoryModelRegistry>,
    registry: Arc<MemoryRegistry>,
    audit: Arc<MemoryAuditStore>,
    /// What a command uses: the memory backends as they are, for preparing a world.
    memory: Backends,
    /// Counts (and fails) the write calls made through `mocked`.
    writes: Arc<Writes>,
    /// What the command under test uses: strict mocks delegating to the memory backends.
    mocked: Backends,
}

impl World {
    /// Backends whose four writing systems are strict mocks expecting only read calls.
    fn read_only(&self) -> Backends {
        Backends {
            cluster: Arc::new(cluster_mock(&self.cluster, None)),
            models: Arc::new(models_mock(&self.models, None, false)),
            registry: Arc::new(registry_mock(&self.registry, None)),
            audit: Arc::new(trail_mock(&self.audit, None)),
            ..self.memory.clone()
        }
    }
}

fn base_spec() -> ReleaseSpec {
    release_spec(&Settings::default(), None, None).expect("defaults are valid")
}

/// The key the world's earlier releases were signed with, and the pipeline signs with.
const KEY_SEED: &[u8; 32] = b"slipway mock-test signing key v1";

/// A release world: version 1 served once, version 2 serves now (revisions 1 and 2, both
/// promoted), version 3 is the candidate, healthy in every metric of the analysis plan; a
/// reviewer approved it unless `approved` is false. Stable has 9 replicas behind its Service.
async fn world(spec: ReleaseSpec, approved: bool) -> World {
    let start: Timestamp = "2026-11-22T09:00:00Z".parse().expect("timestamp");
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(start));
    let release = spec.release.clone();
    let model = spec.model.name.clone();

    let models = Arc::new(MemoryModelRegistry::new());
    let previous = models.register(&model, "run-1", &[("accuracy", 0.91), ("f1", 0.89)]);
    let serving = models.register(&model, "run-2", &[("accuracy", 0.93), ("f1", 0.91)]);
    let candidate = models.register(&model, "run-3", &[("accuracy", 0.95), ("f1", 0.93)]);
    models
        .set_alias(&serving, &spec.serving_alias)
        .await
        .expect("alias");
    models
        .transition_stage(&serving, Stage::Production, false)
        .await
        .expect("stage");
    match &spec.model.selector {
        ModelSelector::Alias(alias) => models.set_alias(&candidate, alias).await.expect("alias"),
        ModelSelector::Stage(stage) => models
            .transition_stage(&candidate, *stage, true)
            .await
            .expect("stage"),
        ModelSelector::Version(_) => {}
    }

    let key = Arc::new(EcdsaP256Key::from_secret_bytes("mock key", KEY_SEED).expect("key"));
    let registry = Arc::new(MemoryRegistry::new());
    let mut released = Vec::new();
    for (tag, version) in [("1.3.0", &previous), ("1.4.0", &serving)] {
        let tagged = ImageRef::parse(&format!("{}:{tag}", spec.image.name())).expect("image");
        let pinned = tagged.with_digest(registry.push_image(&tagged, &format!("server {tag}")));
        slipway_attest::sign_image(registry.as_ref(), key.as_ref(), &pinned)
            .await
            .expect("sign");
        released.push((pinned, version.clone()));
    }
    let candidate_digest = registry.push_image(&spec.image, "server candidate");

    let cluster = Arc::new(MemoryCluster::new(clock.clone()));
    let labels: BTreeMap<String, String> = [("app".to_owned(), release.name.clone())].into();
    let mut pod_labels = labels.clone();
    pod_labels.insert(TRACK_LABEL.to_owned(), "stable".to_owned());
    cluster.seed_deployment(DeploymentSpec {
        namespace: release.namespace.clone(),
        name: release.name.clone(),
        replicas: 9,
        selector: labels.clone(),
        pod_labels,
        container: "model-server".to_owned(),
        image: released[1].0.pinned().expect("pinned"),
    });
    cluster.seed_service(&release.namespace, &spec.service, labels);
    cluster.seed_secret(
        &release.namespace,
        &format!("{}-admin", release.name),
        [("admin-token".to_owned(), "token".to_owned())].into(),
    );
    let audit = Arc::new(MemoryAuditStore::new());
    for (idx, (image, version)) in released.iter().enumerate() {
        let record = ReleaseRecord {
            trail_head: None,
            ci_run: None,
            source_time: None,
            creates: Vec::new(),
            alias_pending: None,
            release: release.clone(),
            revision: idx as u64 + 1,
            image: image.clone(),
            digest: image.digest().cloned().expect("pinned"),
            model: version.clone(),
            strategy: Strategy::Canary,
            outcome: Outcome::Promoted,
            actor: "ci".to_owned(),
            at: start - jiff::SignedDuration::from_hours(24 * (10 - idx as i64)),
            reason: Some("promoted".to_owned()),
        };
        cluster
            .record_release(&record, spec.history_limit)
            .await
            .expect("history");
        audit
            .append(record.at, Event::Release(record))
            .await
            .expect("trail");
    }
    if approved {
        let at = start - jiff::SignedDuration::from_mins(10);
        let approval = ApprovalRecord {
            release: release.clone(),
            approver: "maria.chen".to_owned(),
            at,
            reason: "model card reviewed".to_owned(),
            digest: candidate_digest.clone(),
            model: candidate.clone(),
            revision: None,
            expires: None,
            source: slipway_audit_log::ApprovalSource::Named,
        };
        audit
            .append(at, Event::Approval(approval))
            .await
            .expect("trail");
    }

    let scanner = Arc::new(MemoryScanner::new());
    scanner.record(
        candidate_digest,
        vec![Finding::new(
            "CVE-2023-5678",
            "openssl",
            "3.1.4-r0",
            None,
            Severity::Low,
        )],
    );
    // Every track (stable, canary, both colours) is healthy for six hours.
    let metrics = Arc::new(MemoryMetrics::new());
    for check in &spec.analysis.metrics {
        let value = match (check.min, check.max) {
            (_, Some(max)) => max * 0.2,
            (Some(min), None) => min * 1.3,
            (None, None) => 1.0,
        };
        for track in ["stable", "canary", "blue", "green"] {
            let vars = TemplateVars {
                interval: Some(spec.analysis.interval),
                ..TemplateVars::new(release.name.clone(), release.namespace.clone(), track)
            };
            let query = slipway_analysis::render(&check.query, &vars).expect("query");
            let points =
                (0..720i64).map(|idx| (start + jiff::SignedDuration::from_secs(idx * 30), value));
            metrics.push_series(&query, &[], points);
        }
    }

    let memory = Backends {
        models: models.clone(),
        registry: registry.clone(),
        scanner,
        signer: Some(key.clone() as Arc<dyn slipway_attest::Signer>),
        trusted_keys: vec![Arc::new(key.public()) as Arc<dyn slipway_attest::Verifier>],
        provenance_keys: Vec::new(),
        cluster: cluster.clone(),
        metrics,
        notifier: Arc::new(MemoryNotifier::default()),
        audit: audit.clone(),
        clock,
        interrupt: Default::default(),
        approvals: slipway_pipeline::ApprovalTrust::demo(),
    };
    let writes = Arc::new(Writes::default());
    let mocked = Backends {
        cluster: Arc::new(cluster_mock(&cluster, Some(writes.clone()))),
        models: Arc::new(models_mock(&models, Some(writes.clone()), true)),
        registry: Arc::new(registry_mock(&registry, Some(writes.clone()))),
        audit: Arc::new(trail_mock(&audit, Some(writes.clone()))),
        ..memory.clone()
    };
    World {
        spec,
        cluster,
        models,
        registry,
        audit,
        memory,
        writes,
        mocked,
    }
}

fn quiet() -> impl FnMut(&StageEvent) + Send {
    |_: &StageEvent| {}
}

fn blue_green_spec() -> ReleaseSpec {
    ReleaseSpec {
        strategy: Strategy::BlueGreen,
        ..base_spec()
    }
}

fn rollback_spec(spec: &ReleaseSpec) -> RollbackSpec {
    RollbackSpec {
        release: spec.release.clone(),
        // By number, so running it again goes to the same place.
        target: RollbackTarget::Revision(1),
        reason: "p99 regression".to_owned(),
        emergency: true,
        actor: spec.actor.clone(),
        serving_alias: spec.serving_alias.clone(),
        progress_deadline: spec.progress_deadline,
        history_limit: spec.history_limit,
        policy: spec.policy.clone(),
        service: spec.service.clone(),
        traffic: spec.traffic.clone(),
    }
}

/// What serves the release now (the active colour once a Service selects one, else stable),
/// pinned.
fn serving(world: &World) -> String {
    now(slipway_k8s_rollout::bluegreen::serving(
        world.cluster.as_ref(),
        &world.spec.release,
        &world.spec.service,
    ))
    .expect("what serves")
    .spec
    .image
}

/// The image the canary Deployment runs, if there is one.
fn canary_image(world: &World) -> Option<String> {
    let release = &world.spec.release;
    now(world.cluster.deployment(
        &release.namespace,
        &slipway_k8s_rollout::rollout::canary_name(release),
    ))
    .expect("canary")
    .map(|state| state.spec.image)
}

fn pinned(record: &ReleaseRecord) -> String {
    record
        .image
        .with_digest(record.digest.clone())
        .pinned()
        .expect("pinned")
}

fn leftovers(world: &World) -> Vec<String> {
    let spec = &world.spec;
    let config = BlueGreenConfig::new(spec.service.clone());
    now(slipway_k8s_rollout::cleanup::managed_objects(
        world.cluster.as_ref(),
        &spec.release,
        &spec.service,
        &spec.traffic,
        Some(&config),
    ))
    .expect("managed objects")
    .iter()
    .map(ToString::to_string)
    .collect()
}

/// History and cluster agree: the last record is never left `in-progress`; what serves is the
/// newest `promoted` or `rolled-back` revision, and the serving alias points at its model unless
/// that record says the alias is pending; a canary runs only the candidate of a `paused` record;
/// and Slipway objects exist only while the last record is `paused` (its canary) or right after
/// a promotion (housekeeping a failed call left, which the next command removes) unless
/// `settled`, when none may exist at all but a pause's.
fn agree(world: &World, settled: bool) -> Result<(), String> {
    let history = now(world.cluster.release_history(&world.spec.release)).expect("history");
    let last = history.last().ok_or("no history")?;
    let summary = history
        .iter()
        .map(|record| format!("{} {}", record.revision, record.outcome))
        .collect::<Vec<_>>()
        .join(", ");
    if last.outcome == Outcome::InProgress {
        return Err(format!(
            "the last record is left in-progress (history: {summary})"
        ));
    }
    let good = history
        .iter()
        .rev()
        .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
        .ok_or("no good revision")?;
    let image = serving(world);
    if image != pinned(good) {
        return Err(format!(
            "{image} serves, but the history says revision {} ({}) does (history: {summary})",
            good.revision,
            pinned(good)
        ));
    }
    if good.alias_pending.is_none() {
        alias_follows(world).map_err(|err| format!("{err} (history: {summary})"))?;
    }
    // A paused record whose canary is gone is tolerated (an `abort` removed it, then failed to
    // record the end): nothing runs that the history does not name, and `abort` records it.
    if let Some(canary) = canary_image(world)
        && (last.outcome != Outcome::Paused || canary != pinned(last))
    {
        return Err(format!(
            "a canary runs {canary}, but the last record is revision {} {} of {} (history: {summary})",
            last.revision,
            last.outcome,
            pinned(last)
        ));
    }
    let left = leftovers(world);
    let allowed = last.outcome == Outcome::Paused
        || (!settled && matches!(last.outcome, Outcome::Promoted | Outcome::RolledBack));
    if !left.is_empty() && !allowed {
        return Err(format!(
            "{} left behind after revision {} ended {} (history: {summary})",
            left.join(", "),
            last.revision,
            last.outcome
        ));
    }
    Ok(())
}

/// After convergence the serving alias points at the model of what serves.
fn alias_follows(world: &World) -> Result<(), String> {
    let history = now(world.cluster.release_history(&world.spec.release)).expect("history");
    let good = history
        .iter()
        .rev()
        .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
        .ok_or("no good revision")?;
    let alias = ModelRef {
        name: good.model.name.clone(),
        selector: ModelSelector::Alias(world.spec.serving_alias.clone()),
    };
    let points_at = now(world.models.resolve(&alias))
        .map_err(|err| format!("alias unresolved: {err}"))?
        .version;
    if points_at != good.model {
        return Err(format!(
            "alias `{}` points at {points_at}, but revision {} ({}) serves",
            world.spec.serving_alias, good.revision, good.model
        ));
    }
    Ok(())
}

/// The operations whose every write call is failed in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    /// `slipway-deploy run`, a canary approved up front: its promotion.
    CanaryRun,
    /// `slipway-deploy promote` of a release paused at the approval gate, since approved.
    Promote,
    /// `slipway-deploy abort` of a release paused at the approval gate.
    Abort,
    /// `slipway-rollback --to 1` after revision 2 was promoted.
    Rollback,
    /// `slipway-deploy run` with the blue-green strategy: its switch.
    BlueGreenRun,
    /// `slipway-rollback --to 1` after a blue-green release: back by colour.
    BlueGreenRollback,
}

/// A fresh world with the operation's preconditions met, through the memory backends.
async fn prepare(operation: Operation) -> World {
    match operation {
        Operation::CanaryRun | Operation::Rollback => world(base_spec(), true).await,
        Operation::BlueGreenRun => world(blue_green_spec(), true).await,
        Operation::BlueGreenRollback => {
            let world = world(blue_green_spec(), true).await;
            let released = slipway_pipeline::run(&world.spec, &world.memory, &mut quiet()).await;
            assert_eq!(
                released.outcome,
                RunOutcome::Promoted,
                "{}",
                released.reason
            );
            world
        }
        Operation::Promote | Operation::Abort => {
            let world = world(base_spec(), false).await;
            let paused = slipway_pipeline::run(&world.spec, &world.memory, &mut quiet()).await;
            assert_eq!(paused.outcome, RunOutcome::Paused, "{}", paused.reason);
            if operation == Operation::Promote {
                slipway_pipeline::approve(&world.spec, &world.memory, "sam.reviewer", "lgtm")
                    .await
                    .expect("approved");
            }
            world
        }
    }
}

/// Runs the operation through the mocks.
async fn perform(operation: Operation, world: &World) -> RunReport {
    let spec = &world.spec;
    let backends = &world.mocked;
    match operation {
        Operation::CanaryRun | Operation::BlueGreenRun => {
            slipway_pipeline::run(spec, backends, &mut quiet()).await
        }
        Operation::Promote => {
            slipway_pipeline::resume(spec, backends, &mut quiet(), Resume::Promote).await
        }
        Operation::Abort => {
            slipway_pipeline::resume(spec, backends, &mut quiet(), Resume::Abort("no".into())).await
        }
        Operation::Rollback | Operation::BlueGreenRollback => {
            slipway_pipeline::rollback(&rollback_spec(spec), backends, &mut quiet()).await
        }
    }
}

/// A command that converges what a failed one left, run with no failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Converging {
    Abort,
    Run,
    Rollback,
}

/// Runs `command` through the memory backends. When a lock the failed command could not give up
/// still holds the release, the command is refused naming it; it runs again once the lease
/// expired, as the next CI job would.
async fn converging(command: Converging, world: &World) -> RunReport {
    let spec = &world.spec;
    let backends = &world.memory;
    let mut attempts = 0;
    loop {
        let report = match command {
            Converging::Abort => {
                slipway_pipeline::resume(spec, backends, &mut quiet(), Resume::Abort("tidy".into()))
                    .await
            }
            Converging::Run => slipway_pipeline::run(spec, backends, &mut quiet()).await,
            Converging::Rollback => {
                slipway_pipeline::rollback(&rollback_spec(spec), backends, &mut quiet()).await
            }
        };
        attempts += 1;
        if attempts > 1 || !report.reason.contains("is locked by") {
            return report;
        }
        let ttl = slipway_pipeline::lock::lock_ttl(spec.progress_deadline);
        backends.clock.sleep(ttl + Duration::from_secs(1)).await;
    }
}

/// Converges with no failure: `abort`, then `run` (a rollback is run again instead); checks
/// `agree` after each, and at the end that the alias follows what serves.
async fn converge(operation: Operation, world: &World) -> Result<(), String> {
    let rollback = matches!(
        operation,
        Operation::Rollback | Operation::BlueGreenRollback
    );
    let commands: &[Converging] = if rollback {
        &[Converging::Rollback]
    } else {
        &[Converging::Abort, Converging::Run]
    };
    for command in commands {
        let report = converging(*command, world).await;
        agree(world, true)
            .map_err(|err| format!("after {command:?} ({}): {err}", report.reason))?;
        if *command == Converging::Rollback && report.outcome != RunOutcome::RolledBack {
            return Err(format!("the rollback again ended {}", report.reason));
        }
    }
    alias_follows(world)
}

/// Records the write calls of a clean `operation`, then fails each in turn (in a fresh world each
/// time) and fails the test listing every case where history and cluster disagree, right after
/// the failure or after converging.
async fn failure_matrix(operation: Operation, expected: RunOutcome) {
    let world = prepare(operation).await;
    world.writes.arm(None);
    let clean = perform(operation, &world).await;
    let calls = world.writes.disarm();
    assert_eq!(clean.outcome, expected, "{:?}: {}", operation, clean.reason);
    agree(&world, false).expect("a clean operation leaves history and cluster agreeing");
    assert!(
        calls.len() > 3,
        "{operation:?} makes write calls: {calls:#?}"
    );

    let mut broken = Vec::new();
    for (idx, call) in calls.iter().enumerate() {
        let world = prepare(operation).await;
        world.writes.arm(Some(idx));
        let report = perform(operation, &world).await;
        let made = world.writes.disarm();
        assert_eq!(
            made.get(idx),
            Some(call),
            "{operation:?} makes the same calls every time"
        );
        let case = format!(
            "{operation:?}, write #{idx} `{call}` failing (ended {:?}: {})",
            report.outcome, report.reason
        );
        if let Err(err) = agree(&world, false) {
            broken.push(format!("{case}\n    right after: {err}"));
            continue;
        }
        if let Err(err) = converge(operation, &world).await {
            broken.push(format!("{case}\n    {err}"));
        }
    }
    assert!(
        broken.is_empty(),
        "{} of {} failing write calls leave history and cluster disagreeing:\n{}",
        broken.len(),
        calls.len(),
        broken.join("\n")
    );
}

/// Proves: `plan` makes no write call at all, for every strategy. The four mocks expect only
/// read calls; mockall panics on any other, naming it.
#[tokio::test]
async fn plan_makes_no_write_call() {
    for strategy in [Strategy::Canary, Strategy::BlueGreen, Strategy::Rolling] {
        let world = world(
            ReleaseSpec {
                strategy,
                ..base_spec()
            },
            true,
        )
        .await;
        let report = slipway_pipeline::plan(&world.spec, &world.read_only(), &mut quiet()).await;
        assert_eq!(
            report.outcome,
            RunOutcome::WouldProceed,
            "{strategy}: {}",
            report.reason
        );
    }
}

/// Proves: the serving alias moves only once the candidate serves, ready: stable runs it after
/// a canary `run` and after `promote`, and the Service selects its colour after a blue-green
/// `run`. The mock's `set_alias` looks at the cluster at the moment of the call.
#[tokio::test]
async fn the_alias_moves_only_after_the_candidate_serves() {
    for operation in [
        Operation::CanaryRun,
        Operation::Promote,
        Operation::BlueGreenRun,
    ] {
        let world = prepare(operation).await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut models = models_mock(&world.models, Some(world.writes.clone()), false);
        let cluster = world.cluster.clone();
        let release = world.spec.release.clone();
        let service = world.spec.service.clone();
        let memory = world.models.clone();
        let log = seen.clone();
        models
            .expect_set_alias()
            .times(1)
            .returning(move |version, alias| {
                let serves = now(slipway_k8s_rollout::bluegreen::serving(
                    cluster.as_ref(),
                    &release,
                    &service,
                ))
                .map(|state| (state.rolled_out(), state.spec.image));
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((version.clone(), serves.map_err(|err| err.to_string())));
                now(memory.set_alias(version, alias))
            });
        let backends = Backends {
            models: Arc::new(models),
            ..world.mocked.clone()
        };
        world.writes.arm(None);
        let report = match operation {
            Operation::Promote => {
                slipway_pipeline::resume(&world.spec, &backends, &mut quiet(), Resume::Promote)
                    .await
            }
            _ => slipway_pipeline::run(&world.spec, &backends, &mut quiet()).await,
        };
        let calls = world.writes.disarm();
        assert_eq!(
            report.outcome,
            RunOutcome::Promoted,
            "{operation:?}: {}",
            report.reason
        );
        let candidate = report.model.clone().expect("candidate");
        let digest = report.digest.clone().expect("digest");
        let seen = seen.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert_eq!(seen.len(), 1, "{operation:?}: one alias move");
        let (moved, serving) = &seen[0];
        assert_eq!(
            moved, &candidate,
            "{operation:?}: the alias goes to the candidate"
        );
        let (ready, image) = serving.clone().expect("what serves is readable");
        assert!(
            image.ends_with(&digest.to_string()) && ready,
            "{operation:?}: when the alias moved, {image} served (ready: {ready}), not the candidate {digest}; write calls: {calls:#?}"
        );
    }
}

/// Proves: each write call of a canary `run` (its canary steps, its promotion: stable patched,
/// canary removed, alias moved, recorded, tagged) failing in turn leaves history and cluster
/// agreeing, and `abort` then `run` converge.
#[tokio::test]
async fn every_failing_write_of_a_canary_promotion_leaves_history_and_cluster_agreeing() {
    failure_matrix(Operation::CanaryRun, RunOutcome::Promoted).await;
}

/// Proves: the same for `promote` of a release paused at the approval gate.
#[tokio::test]
async fn every_failing_write_of_promote_leaves_history_and_cluster_agreeing() {
    failure_matrix(Operation::Promote, RunOutcome::Promoted).await;
}

/// Proves: the same for `abort` of a release paused at the approval gate.
#[tokio::test]
async fn every_failing_write_of_abort_leaves_history_and_cluster_agreeing() {
    failure_matrix(Operation::Abort, RunOutcome::Aborted).await;
}

/// Proves: the same for a rollback to an earlier revision, converging by running it again.
#[tokio::test]
async fn every_failing_write_of_rollback_leaves_history_and_cluster_agreeing() {
    failure_matrix(Operation::Rollback, RunOutcome::RolledBack).await;
}

/// Proves: the same for a blue-green `run` (standby deployed, Service switched, recorded, old
/// colour scaled down).
#[tokio::test]
async fn every_failing_write_of_a_blue_green_switch_leaves_history_and_cluster_agreeing() {
    failure_matrix(Operation::BlueGreenRun, RunOutcome::Promoted).await;
}

/// Proves: the same for a rollback after a blue-green release, which goes back by colour.
#[tokio::test]
async fn every_failing_write_of_a_blue_green_rollback_leaves_history_and_cluster_agreeing() {
    failure_matrix(Operation::BlueGreenRollback, RunOutcome::RolledBack).await;
}
