//! Embedded demo worlds: in-memory backends seeded so that a release tells one story.
//!
//! `slipway-deploy run --demo NAME` (what `cargo xtask demo --scenario NAME` runs) releases in
//! one of these; `--state DIR` keeps it between processes ([`crate::persist`]). Each world is
//! built from the [`ReleaseSpec`] (release, model, image, analysis plan), so a config that
//! changes names or thresholds still gets a consistent world. Time is simulated from a fixed
//! start and the signing key is derived from a fixed seed, so the story is the same every run.
//!
//! What makes each scenario differ is data (a metric value, a CVE, a fault), never a branch in
//! the pipeline: the pipeline cannot tell a scenario from a real system.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use slipway_analysis::{MemoryMetrics, TemplateVars};
use slipway_attest::EcdsaP256Key;
use slipway_audit_log::{ApprovalRecord, AuditStore, Event, MemoryAuditStore};
use slipway_core::{
    Clock, Digest, ImageRef, ModelRef, ModelSelector, ModelVersion, Outcome, ReleaseRecord,
    SimClock, Stage, Strategy,
};
use slipway_k8s_rollout::{Cluster as _, DeploymentSpec, Fault, MemoryCluster, TRACK_LABEL};
use slipway_mlflow::{MemoryModelRegistry, ModelRegistry};
use slipway_registry::MemoryRegistry;
use slipway_scanner::{Finding, MemoryScanner, Severity};

use slipway_pipeline::{Backends, MemoryNotifier, ReleaseSpec};

/// Each scenario: name, what happens, and the exit code the demo ends with.
pub const SCENARIOS: &[(&str, &str, u8)] = &[
    (
        "happy",
        "a better model in a clean, signed image: every canary step passes, a reviewer approved, promoted",
        0,
    ),
    (
        "bad-canary",
        "the canary's error rate climbs to 6%: analysis fails at the first step, canary removed, stable untouched",
        1,
    ),
    (
        "bad-model",
        "the candidate's accuracy is 0.81: the model gate says no before anything changes",
        1,
    ),
    (
        "vulnerable-image",
        "the image has a fixable CRITICAL CVE: the scan gate says no before anything changes",
        1,
    ),
    (
        "crashloop",
        "canary pods crash on start: not ready by the progress deadline, canary removed, stable untouched",
        1,
    ),
    (
        "prometheus-outage",
        "Prometheus is down during analysis: measurement errors make it inconclusive (not failed), canary removed",
        1,
    ),
    (
        "unapproved",
        "the canary is healthy but nobody approved this digest: the release pauses at the approval gate, canary running, for `approve` and `promote`",
        0,
    ),
    (
        "paused",
        "the `unapproved` world after its release paused at the approval gate: for `status`, `approve`, `promote` and `abort`",
        0,
    ),
];

/// The demo's fixed start time.
pub const START: &str = "2026-11-22T09:00:00Z";

/// A world: the backends plus handles on the in-memory parts, for telling the story.
pub struct World {
    /// What the pipeline uses.
    pub backends: Backends,
    /// The cluster, to show what runs before and after.
    pub cluster: Arc<MemoryCluster>,
    /// The model registry, to show where aliases point.
    pub models: Arc<MemoryModelRegistry>,
    /// The OCI registry, to save its tags and signatures (`--state`).
    pub registry: Arc<MemoryRegistry>,
    /// Notifications sent.
    pub notifier: Arc<MemoryNotifier>,
}

/// Unknown scenario name.
#[derive(Debug, thiserror::Error)]
#[error("unknown scenario `{name}`\n\nhint: choose one of: {known}")]
pub struct UnknownScenario {
    /// What was asked for.
    pub name: String,
    /// The known names.
    pub known: String,
}

/// The demo key's secret scalar: fixed so the key id in the story never changes. Any valid
/// scalar will do; this one is readable.
const DEMO_KEY_SEED: &[u8; 32] = b"slipway demo signing key, v1 :-)";

/// The demo build system's key: it attaches SLSA provenance to every image when the world is
/// created, as a build job would (`slipway-deploy attest`). It is not the deploy key: the
/// pipeline trusts provenance only from the build keys (`Backends::provenance_keys`).
const DEMO_BUILD_KEY_SEED: &[u8; 32] = b"slipway demo build key, v1 :-)!!";

/// The demo's build key (see [`DEMO_BUILD_KEY_SEED`]).
pub fn demo_build_key() -> Option<EcdsaP256Key> {
    EcdsaP256Key::from_secret_bytes("demo build key", DEMO_BUILD_KEY_SEED).ok()
}

/// What the demo's build job says about every image it built.
pub fn demo_build_info(start: Timestamp) -> slipway_attest::provenance::BuildInfo {
    slipway_attest::provenance::BuildInfo {
        build_type: "https://actions.github.io/buildtypes/workflow/v1".to_owned(),
        builder_id: "https://github.com/acme/iris/.github/workflows/build.yml@refs/heads/main"
            .to_owned(),
        source_repository: "https://github.com/acme/iris".to_owned(),
        source_ref: "refs/heads/main".to_owned(),
        source_commit: "4d329c75e7ec1725f7c9ce917a8799d408d06be3".to_owned(),
        workflow: ".github/workflows/build.yml".to_owned(),
        invocation_id: "https://github.com/acme/iris/actions/runs/1/attempts/1".to_owned(),
        started_on: start - jiff::SignedDuration::from_mins(30),
        finished_on: start - jiff::SignedDuration::from_mins(25),
    }
}

/// Attaches the demo build's provenance to `image`, signed by the demo build key.
async fn attach_build_provenance(registry: &MemoryRegistry, image: &ImageRef, start: Timestamp) {
    if let Some(key) = demo_build_key() {
        // Cannot fail on the memory registry for a pinned image; ignoring keeps the demo total.
        let _ = slipway_attest::provenance::attach_provenance(
            registry,
            &key,
            image,
            &demo_build_info(start),
        )
        .await;
    }
}

/// The demo build key's public half, as the world's only provenance key.
fn demo_provenance_keys() -> Vec<Arc<dyn slipway_attest::Verifier>> {
    demo_build_key()
        .map(|key| Arc::new(key.public()) as Arc<dyn slipway_attest::Verifier>)
        .into_iter()
        .collect()
}

/// Builds the world for `name` around `spec`, with the audit trail in memory.
pub async fn build(name: &str, spec: &ReleaseSpec) -> Result<World, UnknownScenario> {
    build_with_audit(name, spec, Arc::new(MemoryAuditStore::new())).await
}

/// Builds the world for `name` around `spec`, recording into `audit` (e.g. a file trail that
/// `slipway-audit` reads afterwards). The scenario's earlier approval is appended to it.
pub async fn build_with_audit(
    name: &str,
    spec: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
) -> Result<World, UnknownScenario> {
    let start: Timestamp = START.parse().unwrap_or(Timestamp::UNIX_EPOCH);
    build_on(name, spec, audit, Arc::new(SimClock::starting_at(start))).await
}

/// Builds the world on `clock`: the demo's fixed simulated start, or real time when some
/// backends are real (a memory cluster must then make pods ready in real seconds, and seeded
/// metrics must cover the real "now"). Everything seeded is placed relative to `clock.now()`.
pub async fn build_on(
    name: &str,
    spec: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
) -> Result<World, UnknownScenario> {
    build_with(name, spec, audit, clock, WorldOptions::default()).await
}

/// Which parts of a world will be replaced by real systems, so the world seeds no evidence
/// about them: a simulated part never invents evidence for a real one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorldOptions {
    /// The cluster is real: the memory metrics hold no series (the scenario's healthy series
    /// would describe pods that do not exist), so every query answers "no data" and the
    /// analysis says so instead of passing on invented numbers.
    pub real_cluster: bool,
}

/// Checks a scenario name.
pub fn check_name(name: &str) -> Result<(), UnknownScenario> {
    if SCENARIOS.iter().any(|(known, _, _)| *known == name) {
        return Ok(());
    }
    let known = SCENARIOS
        .iter()
        .map(|(known, _, _)| *known)
        .collect::<Vec<_>>()
        .join(", ");
    Err(UnknownScenario {
        name: name.to_owned(),
        known,
    })
}

/// Builds the world for `name` as [`build_on`] does, seeding nothing about the parts `options`
/// names as real.
pub async fn build_with(
    name: &str,
    spec: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    options: WorldOptions,
) -> Result<World, UnknownScenario> {
    check_name(name)?;
    let start = clock.now();
    let release = &spec.release;

    // Model registry: version 1 served first, version 2 serves now, version 3 is the candidate.
    let models = Arc::new(MemoryModelRegistry::new());
    let model = &spec.model.name;
    let previous = models.register(
        model,
        "1c4e8a70-train-2026-10-28",
        &[("accuracy", 0.91), ("f1", 0.89)],
    );
    let serving = models.register(
        model,
        "3f2a9c1e-train-2026-11-10",
        &[("accuracy", 0.93), ("f1", 0.91)],
    );
    let (accuracy, f1) = if name == "bad-model" {
        (0.81, 0.79)
    } else {
        (0.95, 0.93)
    };
    let candidate = models.register(
        model,
        "8b7d4e02-train-2026-11-20",
        &[("accuracy", accuracy), ("f1", f1)],
    );
    // Errors here are impossible (the versions exist); ignoring them keeps the demo total.
    let _ = models.set_alias(&serving, &spec.serving_alias).await;
    let _ = models
        .transition_stage(&previous, Stage::Archived, false)
        .await;
    let _ = models
        .transition_stage(&serving, Stage::Production, false)
        .await;
    match &spec.model.selector {
        ModelSelector::Alias(alias) => {
            let _ = models.set_alias(&candidate, alias).await;
        }
        ModelSelector::Stage(stage) => {
            let _ = models.transition_stage(&candidate, *stage, true).await;
        }
        ModelSelector::Version(_) => {}
    }

    // OCI registry: the two images released before (signed with the demo key), and the
    // candidate under the configured reference (signed by the pipeline when it runs); the demo
    // build key attached each one's provenance when it was built.
    let key = EcdsaP256Key::from_secret_bytes("demo key", DEMO_KEY_SEED)
        .ok()
        .map(Arc::new);
    let registry = Arc::new(MemoryRegistry::new());
    let mut released = Vec::new();
    for (tag, version) in [("1.3.0", &previous), ("1.4.0", &serving)] {
        let tagged = ImageRef::parse(&format!("{}:{tag}", spec.image.name()))
            .unwrap_or_else(|_| spec.image.clone());
        let pinned = tagged.with_digest(
            registry.push_image(&tagged, &format!("{model} v{} server", version.version)),
        );
        if let Some(key) = &key {
            let _ = slipway_attest::sign_image(registry.as_ref(), key.as_ref(), &pinned).await;
        }
        attach_build_provenance(&registry, &pinned, start).await;
        released.push((pinned, version.clone()));
    }
    let candidate_digest = match spec.image.digest() {
        Some(digest) => digest.clone(),
        None => registry.push_image(
            &spec.image,
            &format!("{model} v{} server", candidate.version),
        ),
    };
    attach_build_provenance(
        &registry,
        &spec.image.with_digest(candidate_digest.clone()),
        start,
    )
    .await;
    let stable_image = released
        .last()
        .map(|(image, _)| image.clone())
        .unwrap_or_else(|| spec.image.clone());

    // Cluster: the stable Deployment and its Service, the model server's admin token. Nine
    // replicas make the default steps exact pod shares (1, 3 and 9 canary pods for 10, 25 and
    // 50 %); next to 4, one canary pod is already 20 % and a 10 % step is refused.
    let cluster = seed_cluster(clock.clone(), release, &spec.service, &stable_image);
    // Release history: both earlier images were released by Slipway, so rollback has targets.
    let mut history = Vec::new();
    for (idx, ((image, version), days_ago)) in released.iter().zip([12, 7]).enumerate() {
        let record = ReleaseRecord {
            trail_head: None,
            ci_run: None,
            source_time: None,
            creates: Vec::new(),
            alias_pending: None,
            release: release.clone(),
            revision: idx as u64 + 1,
            image: image.clone(),
            digest: image
                .digest()
                .cloned()
                .unwrap_or_else(|| candidate_digest.clone()),
            model: version.clone(),
            strategy: Strategy::Canary,
            outcome: Outcome::Promoted,
            actor: "github-actions".to_owned(),
            at: start - jiff::SignedDuration::from_hours(24 * days_ago),
            reason: Some("promoted after analysis and approval".to_owned()),
        };
        let _ = cluster.record_release(&record, spec.history_limit).await;
        history.push(record);
    }
    if name == "crashloop" {
        cluster.inject(candidate_digest.hex(), Fault::CrashLoop);
    }

    // Scanner: two low findings normally; a fixable CRITICAL in the vulnerable image.
    let scanner = Arc::new(MemoryScanner::new());
    let mut findings = vec![
        Finding::new(
            "CVE-2024-45490",
            "libexpat",
            "2.5.0-r2",
            Some("2.6.3-r0".to_owned()),
            Severity::Medium,
        ),
        Finding::new("CVE-2023-5678", "openssl", "3.1.4-r0", None, Severity::Low),
    ];
    if name == "vulnerable-image" {
        findings.push(Finding::new(
            "CVE-2024-3094",
            "xz-utils",
            "5.6.0-1",
            Some("5.6.1+really5.4.5-1".to_owned()),
            Severity::Critical,
        ));
    }
    scanner.record(candidate_digest.clone(), findings);

    // Metrics: stable and canary series for every configured query, from the start for 6 h.
    let metrics = Arc::new(MemoryMetrics::new());
    let seeded_checks = if options.real_cluster {
        &[][..]
    } else {
        &spec.analysis.metrics[..]
    };
    for check in seeded_checks {
        let (stable_value, canary_value) = healthy_values(check.min, check.max);
        let canary_value = if name == "bad-canary" && Some(check) == spec.analysis.metrics.first() {
            check.max.map_or(canary_value, |max| max * 6.0)
        } else {
            canary_value
        };
        // Blue-green analyses the standby colour's track; it serves the candidate like a canary.
        for (track, value) in [
            ("stable", stable_value),
            ("canary", canary_value),
            ("blue", canary_value),
            ("green", canary_value),
        ] {
            let vars = TemplateVars {
                interval: Some(spec.analysis.interval),
                ..TemplateVars::new(release.name.clone(), release.namespace.clone(), track)
            };
            let Ok(query) = slipway_analysis::render(&check.query, &vars) else {
                continue;
            };
            let points =
                (0..720i64).map(|idx| (start + jiff::SignedDuration::from_secs(idx * 30), value));
            metrics.push_series(&query, &[], points);
        }
    }
    if name == "prometheus-outage" {
        metrics.set_unavailable(true);
    }

    // Audit trail: a reviewer approved this digest and model version in an earlier CI job.
    for record in history {
        let _ = audit.append(record.at, Event::Release(record)).await;
    }
    if !matches!(name, "unapproved" | "paused") {
        let approved_at = start - jiff::SignedDuration::from_mins(10);
        let approval = ApprovalRecord {
            release: release.clone(),
            approver: "maria.chen".to_owned(),
            at: approved_at,
            reason: "model card and eval report reviewed".to_owned(),
            digest: candidate_digest.clone(),
            model: candidate.clone(),
            revision: None,
            expires: None,
            source: slipway_audit_log::ApprovalSource::Named,
        };
        let _ = audit.append(approved_at, Event::Approval(approval)).await;
    }

    let key = EcdsaP256Key::from_secret_bytes("demo key", DEMO_KEY_SEED)
        .ok()
        .map(Arc::new);
    let trusted = key.as_ref().map(|key| key.public());
    let notifier = Arc::new(MemoryNotifier::default());
    let backends = Backends {
        models: models.clone(),
        registry: registry.clone(),
        scanner,
        signer: key.map(|key| key as Arc<dyn slipway_attest::Signer>),
        trusted_keys: trusted
            .into_iter()
            .map(|key| Arc::new(key) as Arc<dyn slipway_attest::Verifier>)
            .collect(),
        provenance_keys: demo_provenance_keys(),
        cluster: cluster.clone(),
        metrics,
        notifier: notifier.clone(),
        audit,
        clock,
        interrupt: Default::default(),
        approvals: slipway_pipeline::ApprovalTrust::demo(),
    };
    let world = World {
        backends,
        cluster,
        models,
        registry,
        notifier,
    };
    if name == "paused" {
        // What the earlier CI job did: run the release until it paused for approval. The
        // world's notifier keeps that job's notifications, as a real channel would.
        let earlier = ReleaseSpec {
            pause_for_approval: true,
            approval: None,
            ..spec.clone()
        };
        slipway_pipeline::run(
            &earlier,
            &world.backends,
            &mut |_: &slipway_pipeline::StageEvent| {},
        )
        .await;
    }
    Ok(world)
}

/// Values well inside the thresholds: (stable, canary).
fn healthy_values(min: Option<f64>, max: Option<f64>) -> (f64, f64) {
    match (min, max) {
        (_, Some(max)) => (max * 0.20, max * 0.25),
        (Some(min), None) => (min * 1.30, min * 1.25),
        (None, None) => (1.0, 1.0),
    }
}

/// One version in the story world: its model version, its image and how its pods behave.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryVersion {
    /// `v1`, `v2`, `v3`.
    pub label: &'static str,
    /// The registered model version.
    pub model: ModelVersion,
    /// Its offline accuracy, as the training run logged it.
    pub accuracy: f64,
    /// Its image, by tag (as a release names it).
    pub image: ImageRef,
    /// The digest behind the tag.
    pub digest: Digest,
    /// How its pods behave in serving.
    pub behaviour: Behaviour,
}

/// How a version's pods show up in the metrics, relative to the analysis plan's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Well inside every threshold.
    Healthy,
    /// The plan's `metric`-th metric sits at `factor` times its threshold from the start.
    Breaches {
        /// Index into the plan's metrics.
        metric: usize,
        /// Multiple of the threshold.
        factor: f64,
    },
    /// Healthy as a canary (a share of the traffic, for a few minutes); once it has served all
    /// the traffic as stable for `after`, the plan's `metric`-th metric sits at `factor` times
    /// its threshold (a leak, a traffic pattern the canary never saw).
    DegradesOnStable {
        /// How long it stays healthy after its pods start serving as stable.
        after: Duration,
        /// Index into the plan's metrics.
        metric: usize,
        /// Multiple of the threshold.
        factor: f64,
    },
}

/// The world of the whole demo story, held in one place so every chapter happens in it: v1
/// serves (revision 1); v2, a better model, and v3, a model slightly worse offline whose pods are
/// slow, wait as candidates. v2 degrades some minutes after it starts serving.
///
/// The story moves data, never the pipeline: before a chapter it says which version's pods a
/// track runs from when ([`StoryWorld::track_runs`]), which is what the metrics then show.
pub struct StoryWorld {
    /// Backends and handles.
    pub world: World,
    /// The metrics store, for [`StoryWorld::track_runs`].
    pub metrics: Arc<MemoryMetrics>,
    /// v1, v2, v3.
    pub versions: Vec<StoryVersion>,
    base: ReleaseSpec,
    start: Timestamp,
}

/// Points are pushed every 30 s from the world's start, for 6 hours.
const GRID_STEP_SECS: i64 = 30;
const GRID_POINTS: i64 = 720;

/// Builds the story world around `base` on `clock`, recording into `audit`.
pub async fn build_story(
    base: &ReleaseSpec,
    audit: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
) -> StoryWorld {
    let start = clock.now();
    let release = &base.release;
    let name = &base.model.name;
    let models = Arc::new(MemoryModelRegistry::new());
    let registry = Arc::new(MemoryRegistry::new());
    let key = EcdsaP256Key::from_secret_bytes("demo key", DEMO_KEY_SEED)
        .ok()
        .map(Arc::new);
    let plan_metrics = base.analysis.metrics.len();
    let table = [
        (
            "v1",
            "1.3.0",
            "1c4e8a70-train-2026-10-28",
            0.91,
            0.89,
            Behaviour::Healthy,
        ),
        (
            "v2",
            "1.4.0",
            "3f2a9c1e-train-2026-11-10",
            0.95,
            0.93,
            Behaviour::DegradesOnStable {
                after: Duration::from_secs(15 * 60),
                metric: 0,
                factor: 4.0,
            },
        ),
        (
            "v3",
            "1.5.0",
            "8b7d4e02-train-2026-11-20",
            0.945,
            0.92,
            Behaviour::Breaches {
                metric: plan_metrics.saturating_sub(1),
                factor: 1.3,
            },
        ),
    ];
    let mut versions = Vec::new();
    for (label, tag, run_id, accuracy, f1, behaviour) in table {
        let model = models.register(name, run_id, &[("accuracy", accuracy), ("f1", f1)]);
        let image = ImageRef::parse(&format!("{}:{tag}", base.image.name()))
            .unwrap_or_else(|_| base.image.clone());
        let digest = registry.push_image(&image, &format!("{model} server {tag}"));
        attach_build_provenance(&registry, &image.with_digest(digest.clone()), start).await;
        versions.push(StoryVersion {
            label,
            model,
            accuracy,
            image,
            digest,
            behaviour,
        });
    }
    let v1 = versions[0].clone();
    // Errors here are impossible (the versions exist); ignoring them keeps the demo total.
    let _ = models.set_alias(&v1.model, &base.serving_alias).await;
    let _ = models
        .transition_stage(&v1.model, Stage::Production, false)
        .await;
    let v1_pinned = v1.image.with_digest(v1.digest.clone());
    if let Some(key) = &key {
        let _ = slipway_attest::sign_image(registry.as_ref(), key.as_ref(), &v1_pinned).await;
    }

    let cluster = seed_cluster(clock.clone(), release, &base.service, &v1_pinned);
    let first = ReleaseRecord {
        trail_head: None,
        ci_run: None,
        source_time: None,
        creates: Vec::new(),
        alias_pending: None,
        release: release.clone(),
        revision: 1,
        image: v1_pinned.clone(),
        digest: v1.digest.clone(),
        model: v1.model.clone(),
        strategy: Strategy::Canary,
        outcome: Outcome::Promoted,
        actor: "github-actions".to_owned(),
        at: start - jiff::SignedDuration::from_hours(24 * 7),
        reason: Some("promoted after analysis and approval".to_owned()),
    };
    let _ = cluster.record_release(&first, base.history_limit).await;
    let _ = audit.append(first.at, Event::Release(first)).await;
    // v2 was reviewed before its release; v3 never got that far.
    let approved_at = start - jiff::SignedDuration::from_mins(10);
    let approval = ApprovalRecord {
        release: release.clone(),
        approver: "maria.chen".to_owned(),
        at: approved_at,
        reason: "model card and eval report reviewed".to_owned(),
        digest: versions[1].digest.clone(),
        model: versions[1].model.clone(),
        revision: None,
        expires: None,
        source: slipway_audit_log::ApprovalSource::Named,
    };
    let _ = audit.append(approved_at, Event::Approval(approval)).await;

    let scanner = Arc::new(MemoryScanner::new());
    for version in &versions[1..] {
        scanner.record(
            version.digest.clone(),
            vec![Finding::new(
                "CVE-2023-5678",
                "openssl",
                "3.1.4-r0",
                None,
                Severity::Low,
            )],
        );
    }

    let trusted = key.as_ref().map(|key| key.public());
    let notifier = Arc::new(MemoryNotifier::default());
    let metrics = Arc::new(MemoryMetrics::new());
    let backends = Backends {
        models: models.clone(),
        registry: registry.clone(),
        scanner,
        signer: key.map(|key| key as Arc<dyn slipway_attest::Signer>),
        trusted_keys: trusted
            .into_iter()
            .map(|key| Arc::new(key) as Arc<dyn slipway_attest::Verifier>)
            .collect(),
        provenance_keys: demo_provenance_keys(),
        cluster: cluster.clone(),
        metrics: metrics.clone(),
        notifier: notifier.clone(),
        audit,
        clock,
        interrupt: Default::default(),
        approvals: slipway_pipeline::ApprovalTrust::demo(),
    };
    let story = StoryWorld {
        world: World {
            backends,
            cluster,
            models,
            registry,
            notifier,
        },
        metrics,
        versions,
        base: base.clone(),
        start,
    };
    story.track_runs("stable", 0, start);
    story
}

impl StoryWorld {
    /// The release of version `idx` (0 = v1): the base spec with that model version and image tag.
    pub fn release_spec(&self, idx: usize) -> ReleaseSpec {
        let mut spec = self.base.clone();
        if let Some(version) = self.versions.get(idx) {
            spec.model = ModelRef {
                name: version.model.name.clone(),
                selector: ModelSelector::Version(version.model.version),
            };
            spec.image = version.image.clone();
        }
        spec
    }

    /// From `since` on, the pods of `track` (`stable`, `canary`) run version `idx`: every
    /// analysis metric of that track shows the version's [`Behaviour`] from then. Later calls
    /// overwrite the points from their own `since`.
    pub fn track_runs(&self, track: &str, idx: usize, since: Timestamp) {
        let Some(version) = self.versions.get(idx) else {
            return;
        };
        let plan = &self.base.analysis;
        let release = &self.base.release;
        for (metric_idx, check) in plan.metrics.iter().enumerate() {
            let vars = TemplateVars {
                interval: Some(plan.interval),
                ..TemplateVars::new(release.name.clone(), release.namespace.clone(), track)
            };
            let Ok(query) = slipway_analysis::render(&check.query, &vars) else {
                continue;
            };
            let (healthy, _) = healthy_values(check.min, check.max);
            let bad = |factor: f64| match (check.max, check.min) {
                (Some(max), _) => max * factor,
                (None, Some(min)) => min / factor,
                (None, None) => healthy,
            };
            let points = (0..GRID_POINTS)
                .map(|idx| self.start + jiff::SignedDuration::from_secs(idx * GRID_STEP_SECS))
                .filter(|at| *at >= since)
                .map(|at| {
                    let serving = at.duration_since(since).unsigned_abs();
                    let value = match version.behaviour {
                        Behaviour::Healthy => healthy,
                        Behaviour::Breaches { metric, factor } if metric == metric_idx => {
                            bad(factor)
                        }
                        Behaviour::DegradesOnStable {
                            after,
                            metric,
                            factor,
                        } if track == "stable" && metric == metric_idx && serving >= after => {
                            bad(factor)
                        }
                        _ => healthy,
                    };
                    (at, value)
                });
            self.metrics.push_series(&query, &[], points);
        }
    }
}

/// The cluster every demo world starts from: the stable Deployment (9 replicas, so the default
/// steps are exact pod shares) running `stable`, its Service, and the model server's admin
/// token Secret.
fn seed_cluster(
    clock: Arc<dyn Clock>,
    release: &slipway_core::ReleaseId,
    service: &str,
    stable: &ImageRef,
) -> Arc<MemoryCluster> {
    let cluster = Arc::new(MemoryCluster::new(clock));
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
        image: stable.pinned().unwrap_or_default(),
    });
    cluster.seed_service(&release.namespace, service, labels);
    cluster.seed_secret(
        &release.namespace,
        &format!("{}-admin", release.name),
        [("admin-token".to_owned(), "demo-admin-token".to_owned())].into(),
    );
    cluster
}
