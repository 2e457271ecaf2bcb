//! The release story and each failure path, end to end: the real OCI registry, MLflow and
//! Prometheus (`cargo xtask services`, plus a Prometheus of the test's own over a known
//! history), the in-memory cluster, and `slipway_pipeline` driven exactly as `slipway-deploy`
//! drives it (configuration loaded by `slipway_cli::config`, spec built by `release_spec`).
//!
//! Every story starts from the same world: release `ml/iris` whose stable Deployment runs image
//! `:1.4.0` (revision 1, model version 1 behind MLflow alias `production`), and a candidate image
//! `:1.5.0` with model version 2 behind alias `candidate`. Each test owns its MLflow model and
//! registry repository (unique names), so the tests run in parallel and never touch the seeded
//! `iris-random-forest` fixture.
//!
//! Each failure path checks the same three things: the outcome and its exit code, stable
//! untouched (same image, canary gone, the `production` alias and the registry's tags unmoved),
//! and the reason recorded in the audit trail.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use slipway_analysis::{Decision, PrometheusClient, PrometheusConfig};
use slipway_attest::{EcdsaP256Key, Verifier};
use slipway_audit_log::{AuditStore, Event, MemoryAuditStore};
use slipway_cli::{ExitStatus, GlobalArgs, config, release::release_spec};
use slipway_core::{
    Clock, Digest, ImageRef, ModelVersion, Outcome, ReleaseRecord, Secret, SimClock, Strategy,
};
use slipway_gates::CheckStatus;
use slipway_k8s_rollout::{Cluster, DeploymentSpec, MemoryCluster, TRACK_LABEL};
use slipway_mlflow::{MlflowClient, MlflowConfig};
use slipway_pipeline::{
    Backends, MemoryNotifier, Notifier, ReleaseSpec, Resume, RunOutcome, RunReport, StageEvent,
    WebhookKind, WebhookNotifier,
};
use slipway_registry::testing::{OciLayout, linux_amd64, skopeo_digest, skopeo_push};
use slipway_registry::{DockerConfig, OciRegistry, RegistryConfig};
use slipway_scanner::{Finding, MemoryScanner, Severity};

use crate::prometheus::{self, Canary, START_MINUTE};
use crate::support::{MLFLOW_ENV, REGISTRY_ENV, service, unique};

/// Who starts the releases (the CI job's actor).
const ACTOR: &str = "ci-bot";
/// The reviewer who approves in the protected environment.
const REVIEWER: &str = "maria.chen";

/// Exit status of a report, as the binaries map it.
fn exit_status(outcome: RunOutcome) -> ExitStatus {
    ExitStatus::from(outcome)
}

/// What makes one story differ from another: data, never a branch in the pipeline.
#[derive(Debug, Clone)]
struct Options {
    /// Candidate accuracy and F1 in MLflow.
    candidate_metrics: (f64, f64),
    canary: Canary,
    /// Extra TOML appended to the configuration.
    config: &'static str,
    /// A fixable CRITICAL finding in the candidate image.
    vulnerable: bool,
    /// Notifications go to a webhook on a closed port instead of memory.
    webhook_down: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            candidate_metrics: (0.95, 0.93),
            canary: Canary::Healthy,
            config: "",
            vulnerable: false,
            webhook_down: false,
        }
    }
}

/// A world over the real services; `None` when the test skips.
struct World {
    /// Kept alive for the story; killed on drop.
    _prometheus: prometheus::Prometheus,
    mlflow: String,
    registry_addr: String,
    model: String,
    repository: String,
    stable_image: String,
    candidate_digest: Digest,
    spec: ReleaseSpec,
    backends: Backends,
    cluster: Arc<MemoryCluster>,
    audit: Arc<MemoryAuditStore>,
    notifier: Arc<MemoryNotifier>,
    key: Arc<EcdsaP256Key>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn mlflow_post(base: &str, endpoint: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/2.0/mlflow/{endpoint}"))
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|err| panic!("MLflow {endpoint}: {err}"));
    let status = response.status();
    let text = response.text().await.expect("MLflow answer");
    assert!(
        status.is_success(),
        "MLflow {endpoint} {body}: {status} {text}"
    );
    serde_json::from_str(&text).expect("MLflow answers JSON")
}

async fn mlflow_get(base: &str, endpoint: &str, query: &[(&str, &str)]) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/2.0/mlflow/{endpoint}"))
        .query(query)
        .send()
        .await
        .unwrap_or_else(|err| panic!("MLflow {endpoint}: {err}"));
    let status = response.status();
    let text = response.text().await.expect("MLflow answer");
    assert!(status.is_success(), "MLflow {endpoint}: {status} {text}");
    serde_json::from_str(&text).expect("MLflow answers JSON")
}

/// A run with `accuracy` and `f1`, finished; returns its id.
pub(crate) async fn mlflow_run(
    base: &str,
    experiment: &str,
    name: &str,
    metrics: (f64, f64),
) -> String {
    let now = jiff::Timestamp::now().as_millisecond();
    let run = mlflow_post(
        base,
        "runs/create",
        json!({ "experiment_id": experiment, "start_time": now, "run_name": name }),
    )
    .await;
    let run_id = run["run"]["info"]["run_id"]
        .as_str()
        .expect("run_id")
        .to_owned();
    mlflow_post(
        base,
        "runs/log-batch",
        json!({
            "run_id": run_id,
            "metrics": [
                { "key": "accuracy", "value": metrics.0, "timestamp": now, "step": 0 },
                { "key": "f1", "value": metrics.1, "timestamp": now, "step": 0 },
            ],
        }),
    )
    .await;
    mlflow_post(
        base,
        "runs/update",
        json!({ "run_id": run_id, "status": "FINISHED", "end_time": now + 1 }),
    )
    .await;
    run_id
}

/// Model `name`: version 1 (serving, alias `production`) and version 2 (candidate, alias
/// `candidate`), each from its own training run.
pub(crate) async fn seed_mlflow(base: &str, name: &str, candidate: (f64, f64)) {
    let experiment = mlflow_post(base, "experiments/create", json!({ "name": name })).await;
    let experiment = experiment["experiment_id"]
        .as_str()
        .expect("experiment_id")
        .to_owned();
    let serving_run = mlflow_run(base, &experiment, "train-v1", (0.93, 0.91)).await;
    let candidate_run = mlflow_run(base, &experiment, "train-v2", candidate).await;
    mlflow_post(base, "registered-models/create", json!({ "name": name })).await;
    for run_id in [&serving_run, &candidate_run] {
        mlflow_post(
            base,
            "model-versions/create",
            json!({ "name": name, "source": format!("runs:/{run_id}/model"), "run_id": run_id }),
        )
        .await;
    }
    for (alias, version) in [("production", "1"), ("candidate", "2")] {
        mlflow_post(
            base,
            "registered-models/alias",
            json!({ "name": name, "alias": alias, "version": version }),
        )
        .await;
    }
}

/// The version an alias points at, read over REST (independent of the client under test).
pub(crate) async fn alias_version(base: &str, name: &str, alias: &str) -> String {
    let answer = mlflow_get(
        base,
        "registered-models/alias",
        &[("name", name), ("alias", alias)],
    )
    .await;
    answer["model_version"]["version"]
        .as_str()
        .expect("version")
        .to_owned()
}

/// Builds the world for `test`, or `None` to skip.
async fn world(test: &str, options: Options) -> Option<World> {
    let registry_addr = service(REGISTRY_ENV, test)?;
    let mlflow = service(MLFLOW_ENV, test)?;
    let prometheus = prometheus::start(test, options.canary).await?;
    let dir = tempfile::tempdir().expect("tempdir");

    // Registry: stable `:1.4.0` and candidate `:1.5.0`, pushed as OCI layouts with skopeo.
    let repository = format!("slipway-e2e/{}", unique(test));
    let mut layout = OciLayout::create(&dir.path().join("layout")).expect("layout");
    for (tag, seed) in [("1.4.0", "stable"), ("1.5.0", "candidate")] {
        let written = layout
            .image(&format!("{repository}-{seed}"), &linux_amd64())
            .expect("image");
        layout.tag(tag, &written).expect("tag");
        skopeo_push(&layout, tag, &registry_addr, &format!("{repository}:{tag}"))
            .expect("skopeo push");
    }
    let digest_of = |tag: &str| {
        Digest::parse(
            &skopeo_digest(&registry_addr, &format!("{repository}:{tag}")).expect("inspect"),
        )
        .expect("digest")
    };
    let stable_digest = digest_of("1.4.0");
    let candidate_digest = digest_of("1.5.0");
    let stable_image = format!("{registry_addr}/{repository}:1.4.0@{stable_digest}");

    // MLflow: a model of this test's own.
    let model = unique(&format!("slipway-e2e-{test}"));
    seed_mlflow(&mlflow, &model, options.candidate_metrics).await;

    // Configuration, loaded the way the binaries load it.
    let config_path = dir.path().join("slipway.toml");
    let config_text = format!(
        r#"[release]
name = "ml/iris"
service = "iris"
actor = "{ACTOR}"

[model]
ref = "{model}@candidate"
serving_alias = "production"

[image]
ref = "{registry_addr}/{repository}:1.5.0"

[rollout]
steps = [20, 50]
pause = "30s"
progress_deadline = "2m"
{extra}
"#,
        extra = options.config
    );
    std::fs::write(&config_path, config_text).expect("write config");
    let settings = config::load(
        &GlobalArgs {
            config: Some(config_path),
            ..GlobalArgs::default()
        },
        &[],
    )
    .unwrap_or_else(|err| panic!("config: {}", err.message));
    let spec = release_spec(&settings, None, None).unwrap_or_else(|err| panic!("{}", err.message));

    // The cluster: stable Deployment, its Service, revision 1 in the history; on simulated
    // time lined up with the Prometheus history. Next to 4 stable pods one canary pod is 20%,
    // so the steps start there (10% would be refused as coarser than the pods allow).
    let clock = Arc::new(SimClock::starting_at(prometheus.at(START_MINUTE)));
    let cluster = Arc::new(MemoryCluster::new(clock.clone()));
    let labels: BTreeMap<String, String> = [("app".to_owned(), "iris".to_owned())].into();
    let mut pod_labels = labels.clone();
    pod_labels.insert(TRACK_LABEL.to_owned(), "stable".to_owned());
    cluster.seed_deployment(DeploymentSpec {
        namespace: "ml".to_owned(),
        name: "iris".to_owned(),
        replicas: 4,
        selector: labels.clone(),
        pod_labels,
        container: "model-server".to_owned(),
        image: stable_image.clone(),
    });
    cluster.seed_service("ml", "iris", labels);
    cluster.seed_secret(
        "ml",
        "iris-admin",
        [("admin-token".to_owned(), "e2e-admin-token".to_owned())].into(),
    );
    let stable_ref = ImageRef::parse(&stable_image).expect("stable ref");
    cluster
        .record_release(
            &ReleaseRecord {
                trail_head: None,
                ci_run: None,
                source_time: None,
                creates: Vec::new(),
                alias_pending: None,
                release: spec.release.clone(),
                revision: 1,
                image: stable_ref,
                digest: stable_digest,
                model: ModelVersion {
                    name: model.clone(),
                    version: 1,
                },
                strategy: Strategy::Canary,
                outcome: Outcome::Promoted,
                actor: ACTOR.to_owned(),
                at: clock.now() - jiff::SignedDuration::from_hours(24),
                reason: Some("promoted after analysis and approval".to_owned()),
            },
            spec.history_limit,
        )
        .await
        .expect("seed history");

    let scanner = Arc::new(MemoryScanner::new());
    let mut findings = vec![Finding::new(
        "CVE-2023-5678",
        "openssl",
        "3.1.4-r0",
        None,
        Severity::Low,
    )];
    if options.vulnerable {
        findings.push(Finding::new(
            "CVE-2024-3094",
            "xz-utils",
            "5.6.0-1",
            Some("5.6.1+really5.4.5-1".to_owned()),
            Severity::Critical,
        ));
    }
    scanner.record(candidate_digest.clone(), findings);

    let registry = OciRegistry::new(
        RegistryConfig::default()
            .insecure(&registry_addr)
            .retries(2, Duration::from_millis(50)),
        DockerConfig::empty(),
    )
    .expect("registry client");
    let key = Arc::new(EcdsaP256Key::generate());
    let audit = Arc::new(MemoryAuditStore::new());
    let notifier = Arc::new(MemoryNotifier::default());
    let notify: Arc<dyn Notifier> = if options.webhook_down {
        // A port that was free a moment ago: nothing listens, every attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        Arc::new(
            WebhookNotifier::new(
                WebhookKind::Json,
                Secret::new(format!("http://127.0.0.1:{port}/hooks/slipway")),
            )
            .expect("webhook")
            .retries(2, Duration::from_millis(10)),
        )
    } else {
        notifier.clone()
    };
    let backends = Backends {
        models: Arc::new(
            MlflowClient::new(MlflowConfig::new(mlflow.clone()).timeout(Duration::from_secs(10)))
                .expect("MLflow client"),
        ),
        registry: Arc::new(registry),
        scanner,
        signer: Some(key.clone()),
        trusted_keys: vec![Arc::new(key.public())],
        provenance_keys: Vec::new(),
        cluster: cluster.clone(),
        metrics: Arc::new(
            PrometheusClient::new(PrometheusConfig::new(&prometheus.url)).expect("Prometheus"),
        ),
        notifier: notify,
        audit: audit.clone(),
        clock,
        interrupt: Default::default(),
        approvals: slipway_pipeline::ApprovalTrust::demo(),
    };
    Some(World {
        _prometheus: prometheus,
        mlflow,
        registry_addr,
        model,
        repository,
        stable_image,
        candidate_digest,
        spec,
        backends,
        cluster,
        audit,
        notifier,
        key,
        _dir: dir,
    })
}

impl World {
    async fn run(&self) -> RunReport {
        let mut events: Vec<StageEvent> = Vec::new();
        let mut observer = |event: &StageEvent| events.push(event.clone());
        slipway_pipeline::run(&self.spec, &self.backends, &mut observer).await
    }

    async fn resume(&self, action: Resume) -> RunReport {
        let mut observer = |_: &StageEvent| {};
        slipway_pipeline::resume(&self.spec, &self.backends, &mut observer, action).await
    }

    async fn stable_image(&self) -> String {
        self.cluster
            .deployment("ml", "iris")
            .await
            .expect("read stable")
            .expect("stable exists")
            .spec
            .image
    }

    fn candidate(&self) -> ModelVersion {
        ModelVersion {
            name: self.model.clone(),
            version: 2,
        }
    }

    fn pinned_candidate(&self) -> ImageRef {
        ImageRef::parse(&format!(
            "{}/{}:1.5.0@{}",
            self.registry_addr, self.repository, self.candidate_digest
        ))
        .expect("candidate ref")
    }

    async fn audit_entries(&self) -> Vec<Event> {
        self.audit
            .entries()
            .await
            .expect("audit entries")
            .into_iter()
            .map(|entry| entry.event)
            .collect()
    }

    /// `(stage, verdict, detail)` of every decision.
    async fn decisions(&self) -> Vec<(String, String, String)> {
        self.audit_entries()
            .await
            .into_iter()
            .filter_map(|event| match event {
                Event::Decision {
                    stage,
                    verdict,
                    detail,
                    ..
                } => Some((stage, verdict, detail)),
                _ => None,
            })
            .collect()
    }

    /// Stable untouched: same image, no canary left, alias and registry tags unmoved.
    async fn assert_stable_untouched(&self, report: &RunReport) {
        assert_eq!(
            self.stable_image().await,
            self.stable_image,
            "stable changed: {}",
            stages(report)
        );
        assert_eq!(
            self.cluster.deployment_names("ml"),
            ["iris"],
            "a canary is left: {}",
            stages(report)
        );
        assert_eq!(
            alias_version(&self.mlflow, &self.model, "production").await,
            "1",
            "the production alias moved"
        );
        let tags = self
            .backends
            .registry
            .list_tags(&self.pinned_candidate())
            .await
            .expect("list tags");
        assert!(
            tags.iter().all(|tag| !tag.starts_with("release-")),
            "a release tag was set: {tags:?}"
        );
        assert!(
            self.cluster.lock_holder(&self.spec.release).is_none(),
            "lock still held"
        );
    }
}

/// A measured value equal to `expected` up to float rounding in PromQL's `rate` arithmetic.
fn close(outcome: &slipway_analysis::Outcome, expected: f64) -> bool {
    matches!(outcome, slipway_analysis::Outcome::Value(value) if (value - expected).abs() < 1e-9)
}

fn stages(report: &RunReport) -> String {
    report
        .stages
        .iter()
        .map(|event| {
            format!(
                "\n  {:<14} {:?} {}",
                event.stage, event.status, event.message
            )
        })
        .collect()
}

#[tokio::test]
async fn a_release_is_paused_approved_and_promoted_in_the_real_systems() {
    let Some(world) = world("promoted", Options::default()).await else {
        return;
    };
    // The `canary` job: every gate passes, the image is signed, both canary steps are
    // analysed against Prometheus, and the run pauses for the reviewer.
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Paused,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::Success);
    assert_eq!(report.revision, Some(2));
    assert_eq!(report.digest.as_ref(), Some(&world.candidate_digest));
    assert_eq!(report.model, Some(world.candidate()));
    // Every gate passed except the approval, which has none yet: that is why it paused.
    let failed: Vec<&str> = report
        .gates
        .checks
        .iter()
        .filter(|check| check.status == CheckStatus::Fail)
        .map(|check| check.gate.as_str())
        .collect();
    assert_eq!(failed, ["approvals"], "{}", report.gates.render_text());
    assert_eq!(report.analysis.len(), 2, "one analysis per canary step");
    for run in &report.analysis {
        assert_eq!(run.decision(), Decision::Pass, "{}", run.to_text());
        // Real answers from the history: 1 error in 400 requests.
        assert!(
            run.measurements
                .iter()
                .any(|m| m.metric == "error-rate" && close(&m.outcome, 1.0 / 400.0)),
            "{}",
            run.to_text()
        );
    }
    assert_eq!(
        world.stable_image().await,
        world.stable_image,
        "stable changed before approval"
    );
    assert_eq!(
        alias_version(&world.mlflow, &world.model, "production").await,
        "1"
    );

    // The image carries our signature in the real registry, verifiable by anyone with the key.
    let verification = slipway_attest::verify_image(
        world.backends.registry.as_ref(),
        &[&world.key.public() as &dyn Verifier],
        &world.pinned_candidate(),
    )
    .await
    .expect("verify");
    assert_eq!(verification.verified_keys(), [world.key.public().key_id()]);

    // The `approve` job: the actor cannot approve their own release; the reviewer can.
    let own = slipway_pipeline::approve(&world.spec, &world.backends, ACTOR, "looks fine").await;
    assert!(
        matches!(own, Err(slipway_pipeline::ApproveError::Refused(_))),
        "{own:?}"
    );
    let approval = slipway_pipeline::approve(
        &world.spec,
        &world.backends,
        REVIEWER,
        "canary dashboards and model card reviewed",
    )
    .await
    .expect("approve");
    assert_eq!(approval.digest, world.candidate_digest);
    assert_eq!(approval.model, world.candidate());

    // `promote`. The promotion is recorded as a revision of its own, after the paused one.
    let promoted = world.resume(Resume::Promote).await;
    assert_eq!(
        promoted.outcome,
        RunOutcome::Promoted,
        "{}{}",
        promoted.reason,
        stages(&promoted)
    );
    assert_eq!(exit_status(promoted.outcome), ExitStatus::Success);
    let revision = promoted.revision.expect("a revision");
    assert!(revision >= 2, "{revision}");
    let pinned = world.pinned_candidate().pinned().expect("pinned");
    assert_eq!(world.stable_image().await, pinned);
    assert_eq!(
        world.cluster.deployment_names("ml"),
        ["iris"],
        "canary removed"
    );

    // The alias moved in the real MLflow, and the version says which release it is.
    assert_eq!(
        alias_version(&world.mlflow, &world.model, "production").await,
        "2"
    );
    let version = mlflow_get(
        &world.mlflow,
        "model-versions/get",
        &[("name", world.model.as_str()), ("version", "2")],
    )
    .await;
    let tags = version["model_version"]["tags"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        tags.iter().any(|tag| tag["key"] == "slipway.release"
            && tag["value"] == format!("ml/iris revision {revision}")),
        "{version}"
    );

    // The real registry has the release tag on the candidate's digest (as skopeo sees it).
    assert_eq!(
        skopeo_digest(
            &world.registry_addr,
            &format!("{}:release-{revision}", world.repository)
        )
        .expect("release tag"),
        world.candidate_digest.to_string()
    );

    // The record: history, audit trail (chain intact), notifications.
    let history = world
        .cluster
        .release_history(&world.spec.release)
        .await
        .expect("history");
    let last = history.last().expect("a record");
    assert_eq!(
        (last.revision, last.outcome, &last.digest),
        (revision, Outcome::Promoted, &world.candidate_digest)
    );
    let entries = world.audit.entries().await.expect("entries");
    assert!(slipway_audit_log::verify(&entries, None).is_empty());
    assert!(entries.iter().any(|entry| matches!(&entry.event,
        Event::Approval(record) if record.approver == REVIEWER && record.digest == world.candidate_digest)));
    assert!(entries.iter().any(|entry| matches!(&entry.event,
        Event::Release(record) if record.revision == revision && record.outcome == Outcome::Promoted)));
    let sent: Vec<String> = world.notifier.sent().into_iter().map(|n| n.event).collect();
    assert!(
        sent.contains(&"paused".to_owned()) && sent.contains(&"promoted".to_owned()),
        "{sent:?}"
    );
}

#[tokio::test]
async fn model_gate_says_no_before_anything_changes() {
    let options = Options {
        candidate_metrics: (0.81, 0.79),
        ..Options::default()
    };
    let Some(world) = world("model-gate", options).await else {
        return;
    };
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Rejected,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::No);
    assert!(
        report.reason.starts_with("model-gate said no"),
        "{}",
        report.reason
    );
    assert!(report.analysis.is_empty(), "no canary ran");
    world.assert_stable_untouched(&report).await;
    let decisions = world.decisions().await;
    assert!(
        decisions
            .iter()
            .any(|(stage, verdict, _)| stage == "model-gate" && verdict == "fail"),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn an_unsigned_image_is_refused() {
    let options = Options {
        config: "[signing]\nsign = false\n",
        ..Options::default()
    };
    let Some(world) = world("unsigned", options).await else {
        return;
    };
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Rejected,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::No);
    assert!(
        report.reason.starts_with("verify said no"),
        "{}",
        report.reason
    );
    world.assert_stable_untouched(&report).await;
    // Nothing was signed on the way.
    let signature = world
        .backends
        .registry
        .get_artifact(
            &world.pinned_candidate(),
            &world.candidate_digest.cosign_tag("sig"),
        )
        .await
        .expect("read .sig");
    assert_eq!(signature, None);
    let decisions = world.decisions().await;
    assert!(
        decisions
            .iter()
            .any(|(stage, verdict, _)| stage == "verify" && verdict == "fail"),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn a_fixable_critical_vulnerability_is_refused() {
    let options = Options {
        vulnerable: true,
        ..Options::default()
    };
    let Some(world) = world("scan-gate", options).await else {
        return;
    };
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Rejected,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::No);
    assert!(
        report.reason.starts_with("scan-gate said no"),
        "{}",
        report.reason
    );
    assert!(
        report
            .gates
            .checks
            .iter()
            .any(|check| check.reason.contains("CVE-2024-3094")),
        "{}",
        report.gates.render_text()
    );
    world.assert_stable_untouched(&report).await;
    let decisions = world.decisions().await;
    assert!(
        decisions
            .iter()
            .any(|(stage, verdict, _)| stage == "scan-gate" && verdict == "fail"),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn an_unhealthy_canary_is_removed_after_the_first_analysis() {
    let options = Options {
        canary: Canary::Breach,
        ..Options::default()
    };
    let Some(world) = world("unhealthy", options).await else {
        return;
    };
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Rejected,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::No);
    assert!(
        report.reason.starts_with("canary analysis failed"),
        "{}",
        report.reason
    );
    assert_eq!(report.analysis.len(), 1, "stopped at the first step");
    let analysis = &report.analysis[0];
    assert_eq!(
        analysis.decision(),
        Decision::Fail,
        "{}",
        analysis.to_text()
    );
    // The breach as Prometheus computed it from the history: 20 errors in 400 requests.
    assert!(
        analysis
            .measurements
            .iter()
            .any(|m| m.metric == "error-rate" && close(&m.outcome, 20.0 / 400.0)),
        "{}",
        analysis.to_text()
    );
    world.assert_stable_untouched(&report).await;
    let decisions = world.decisions().await;
    assert!(
        decisions
            .iter()
            .any(|(stage, verdict, _)| stage == "analysis" && verdict == "fail"),
        "{decisions:?}"
    );
    let history = world
        .cluster
        .release_history(&world.spec.release)
        .await
        .expect("history");
    let last = history.last().expect("a record");
    assert_eq!((last.revision, last.outcome), (2, Outcome::Aborted));
    assert!(
        last.reason
            .as_deref()
            .is_some_and(|reason| reason.starts_with("canary analysis failed")),
        "{last:?}"
    );
}

#[tokio::test]
async fn a_refused_approval_aborts_the_paused_canary() {
    let Some(world) = world("refused", Options::default()).await else {
        return;
    };
    let paused = world.run().await;
    assert_eq!(
        paused.outcome,
        RunOutcome::Paused,
        "{}{}",
        paused.reason,
        stages(&paused)
    );
    assert_eq!(
        world.cluster.deployment_names("ml"),
        ["iris", "iris-canary"]
    );

    // Promoting without an approval is refused, and the canary keeps waiting.
    let early = world.resume(Resume::Promote).await;
    assert_ne!(early.outcome, RunOutcome::Promoted, "{}", stages(&early));
    assert_eq!(world.stable_image().await, world.stable_image);

    // The reviewers reject the deployment: the `abort` job removes the canary, and succeeds
    // doing so (the revision is recorded aborted).
    let reason = "production approval rejected by maria.chen: dashboards incomplete";
    let report = world.resume(Resume::Abort(reason.to_owned())).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Aborted,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::Success);
    world.assert_stable_untouched(&report).await;
    let history = world
        .cluster
        .release_history(&world.spec.release)
        .await
        .expect("history");
    let last = history.last().expect("a record");
    assert_eq!(
        (Some(last.revision), last.outcome, &last.digest),
        (report.revision, Outcome::Aborted, &world.candidate_digest)
    );
    let recorded = world
        .audit_entries()
        .await
        .into_iter()
        .any(|event| match event {
            Event::Release(record) => {
                record.outcome == Outcome::Aborted
                    && record
                        .reason
                        .as_deref()
                        .is_some_and(|text| text.contains(reason))
            }
            Event::Decision { detail, .. } => detail.contains(reason),
            Event::Approval(_) => false,
        });
    assert!(
        recorded,
        "the reason is not in the audit trail: {:?}",
        world.decisions().await
    );
}

#[tokio::test]
async fn a_notification_endpoint_that_is_down_does_not_stop_the_release() {
    let options = Options {
        webhook_down: true,
        // The approval is given to this run directly (`--approve-as` interactively), so the
        // run goes all the way.
        ..Options::default()
    };
    let Some(mut world) = world("notify-down", options).await else {
        return;
    };
    world.spec.approval = Some(slipway_pipeline::GivenApproval {
        approver: REVIEWER.to_owned(),
        reason: "reviewed at the desk".to_owned(),
    });
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Promoted,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::Success);
    assert_eq!(
        world.stable_image().await,
        world.pinned_candidate().pinned().expect("pinned")
    );
    assert!(
        report
            .stages
            .iter()
            .any(|event| event.stage == "notify" && event.message.contains("`started` failed")),
        "{}",
        stages(&report)
    );
    let decisions = world.decisions().await;
    assert!(
        decisions
            .iter()
            .any(|(stage, verdict, detail)| stage == "notify"
                && verdict == "fail"
                && detail.contains("`started` not delivered")),
        "{decisions:?}"
    );
    // The webhook URL is a secret: it is not in the report.
    let json = serde_json::to_string(&report).expect("report JSON");
    assert!(!json.contains("/hooks/slipway"), "{json}");
}

#[tokio::test]
async fn a_held_lock_stops_the_run_before_anything_changes() {
    let Some(world) = world("locked", Options::default()).await else {
        return;
    };
    let holder = "other-pipeline@2026-11-22T08:58:00Z";
    world
        .cluster
        .acquire_lock(&world.spec.release, holder, Duration::from_secs(3600))
        .await
        .expect("take the lock");
    let report = world.run().await;
    assert_eq!(
        report.outcome,
        RunOutcome::Failed,
        "{}{}",
        report.reason,
        stages(&report)
    );
    assert_eq!(exit_status(report.outcome), ExitStatus::Error);
    assert!(report.reason.contains(holder), "{}", report.reason);
    assert_eq!(world.stable_image().await, world.stable_image);
    assert_eq!(world.cluster.deployment_names("ml"), ["iris"]);
    assert_eq!(
        alias_version(&world.mlflow, &world.model, "production").await,
        "1"
    );
    // The other run still holds it.
    assert_eq!(
        world.cluster.lock_holder(&world.spec.release).as_deref(),
        Some(holder)
    );
    let sent = world.notifier.sent();
    assert!(
        sent.iter()
            .any(|n| n.event == "failed" && n.summary.contains(holder)),
        "{sent:?}"
    );
    // The trail says why this run stopped, naming the holder.
    let decisions = world.decisions().await;
    assert!(
        decisions
            .iter()
            .any(|(stage, verdict, detail)| stage == "run"
                && verdict == "failed"
                && detail.contains(holder)),
        "the run's end is recorded with the holder: {decisions:?}"
    );
}
