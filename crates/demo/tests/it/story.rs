//! The demo story and `watch`, on simulated time: the story ends as written (checked here from
//! the cluster, the model registry and the audit file, not from the story's own verdict), and
//! the watch keeps a healthy release, rolls back a crash-looping one, and never rolls back on a
//! metrics outage.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use slipway_audit_log::{AuditStore, Event, FileAuditStore, MemoryAuditStore, verify};
use slipway_cli::config::Settings;
use slipway_cli::release::release_spec;
use slipway_core::{Clock, ModelRef, Outcome, ReleaseRecord, SimClock};
use slipway_demo::scenario::{self, START, StoryWorld};
use slipway_demo::story::{tell, tell_in};
use slipway_k8s_rollout::{Cluster as _, Fault};
use slipway_pipeline::watch::{WatchConfig, WatchSpec, watch};
use slipway_pipeline::{Backends, ReleaseSpec, RunOutcome, StageEvent, StageStatus};

fn spec() -> ReleaseSpec {
    release_spec(&Settings::default(), None, None).expect("defaults are valid")
}

/// A fresh directory per test (a counter, not randomness, keeps names distinct).
fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "slipway-story-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

async fn story_world(audit: Arc<dyn AuditStore>) -> StoryWorld {
    let clock: Arc<dyn Clock> = Arc::new(SimClock::starting_at(START.parse().expect("start")));
    scenario::build_story(&spec(), audit, clock).await
}

async fn stable_image(backends: &Backends, spec: &ReleaseSpec) -> String {
    backends
        .cluster
        .deployment(&spec.release.namespace, &spec.release.name)
        .await
        .expect("read")
        .expect("stable exists")
        .spec
        .image
}

async fn serving_version(backends: &Backends, spec: &ReleaseSpec) -> u64 {
    let alias =
        ModelRef::parse(&format!("{}@{}", spec.model.name, spec.serving_alias)).expect("ref");
    backends
        .models
        .resolve(&alias)
        .await
        .expect("alias")
        .version
        .version
}

async fn history(backends: &Backends, spec: &ReleaseSpec) -> Vec<ReleaseRecord> {
    backends
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history")
}

#[tokio::test]
async fn the_story_ends_as_written() {
    let dir = temp_dir();
    let trail = dir.join("audit.jsonl");
    let audit = Arc::new(FileAuditStore::new(&trail));
    let story = story_world(audit.clone()).await;
    let base = spec();
    let watch_spec = WatchSpec::new(&base, &WatchConfig::default()).expect("valid");
    let mut events: Vec<StageEvent> = Vec::new();
    let report = tell_in(&story, &watch_spec, &mut |event: &StageEvent| {
        events.push(event.clone())
    })
    .await;
    for chapter in &report.chapters {
        assert!(
            chapter.deviations.is_empty(),
            "{}: {:?}",
            chapter.title,
            chapter.deviations
        );
    }
    assert!(report.as_written());
    let headings: Vec<&str> = events
        .iter()
        .filter(|event| event.stage == "story" && event.status == StageStatus::Start)
        .map(|event| event.message.as_str())
        .collect();
    assert_eq!(headings.len(), 4, "{headings:?}");
    assert!(
        headings[3].starts_with("chapter 4/4: v2 degrades"),
        "{headings:?}"
    );

    // The world afterwards, read directly.
    let [v1, v2, v3] = [0, 1, 2].map(|idx| story.versions[idx].clone());
    let backends = &story.world.backends;
    assert!(
        stable_image(backends, &base)
            .await
            .ends_with(&v1.digest.to_string()),
        "stable is back on v1's image"
    );
    assert_eq!(serving_version(backends, &base).await, v1.model.version);
    let records = history(backends, &base).await;
    let summary: Vec<(u64, Outcome, u64)> = records
        .iter()
        .map(|record| (record.revision, record.outcome, record.model.version))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Outcome::Promoted, v1.model.version),
            (2, Outcome::Promoted, v2.model.version),
            (3, Outcome::Aborted, v3.model.version),
            (4, Outcome::RolledBack, v1.model.version),
        ]
    );
    assert_eq!(records[3].digest, v1.digest, "rolled back to v1's image");

    // Why each thing happened, from the chapters' reports.
    let v3_reason = &report.chapters[2].report.as_ref().expect("ran").reason;
    assert!(
        v3_reason.contains("canary analysis failed") && v3_reason.contains("p99-latency"),
        "{v3_reason}"
    );
    let watch_report = report.chapters[3].report.as_ref().expect("ran");
    assert!(
        watch_report.reason.contains("error-rate breached for 5m"),
        "{}",
        watch_report.reason
    );
    let rollback_started = watch_report
        .stages
        .iter()
        .find(|event| event.stage == "rollback")
        .expect("the watch rolled back");
    let promoted_at = records[1].at;
    let degraded_for = rollback_started.at.duration_since(promoted_at);
    assert!(
        degraded_for >= jiff::SignedDuration::from_mins(20),
        "v2 serves 15m healthy, then the breach must hold 5m: rolled back after {degraded_for}"
    );

    // The trail on disk: verifies, and tells the same history.
    let entries = FileAuditStore::new(&trail)
        .entries()
        .await
        .expect("read trail");
    assert!(verify(&entries, None).is_empty(), "the trail verifies");
    let released: Vec<(u64, Outcome)> = entries
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::Release(record) => Some((record.revision, record.outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(
        released,
        // Each release is on the trail as in progress before its first change, then as it ended.
        [
            (1, Outcome::Promoted),
            (2, Outcome::InProgress),
            (2, Outcome::Promoted),
            (3, Outcome::InProgress),
            (3, Outcome::Aborted),
            (4, Outcome::RolledBack)
        ]
    );
    assert!(entries.iter().any(|entry| matches!(&entry.event,
        Event::Decision { stage, verdict, detail, .. }
            if stage == "watch" && verdict == "fail" && detail.contains("error-rate"))));
    // DORA as `slipway-audit dora` defines it: a deployment is a promotion; a failed change is a
    // promotion a later rollback replaced. Two deployments, one failed: 1/2.
    let deployments = released
        .iter()
        .filter(|(_, outcome)| *outcome == Outcome::Promoted)
        .count();
    let failed = released
        .iter()
        .enumerate()
        .filter(|(idx, (_, outcome))| {
            *outcome == Outcome::Promoted
                && released[idx + 1..]
                    .iter()
                    .take_while(|(_, later)| *later != Outcome::Promoted)
                    .any(|(_, later)| *later == Outcome::RolledBack)
        })
        .count();
    assert_eq!((failed, deployments), (1, 2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn tell_builds_its_own_world_and_reports_a_bad_watch_config() {
    let audit = Arc::new(MemoryAuditStore::new());
    let report = tell(
        &spec(),
        &WatchConfig::default(),
        audit.clone(),
        &mut |_: &StageEvent| {},
    )
    .await
    .expect("valid");
    let deviations: Vec<&Vec<String>> = report.chapters.iter().map(|c| &c.deviations).collect();
    assert!(report.as_written(), "{deviations:?}");
    assert!(verify(&audit.entries().await.expect("trail"), None).is_empty());

    // A watch that gives up before v2 degrades (15 minutes after promotion) sees no breach:
    // the last chapter is then not as written, and says why.
    let short = WatchConfig {
        duration: Duration::from_secs(5 * 60),
        ..WatchConfig::default()
    };
    let report = tell(
        &spec(),
        &short,
        Arc::new(MemoryAuditStore::new()),
        &mut |_: &StageEvent| {},
    )
    .await
    .expect("valid");
    assert!(!report.as_written());
    let last = report.chapters.last().expect("chapters");
    assert!(
        last.deviations.iter().any(|d| d.contains("not Rejected")),
        "{:?}",
        last.deviations
    );

    let bad = WatchConfig {
        interval: Duration::ZERO,
        ..WatchConfig::default()
    };
    let err = tell(
        &spec(),
        &bad,
        Arc::new(MemoryAuditStore::new()),
        &mut |_: &StageEvent| {},
    )
    .await
    .expect_err("invalid");
    assert!(err.to_string().contains("`interval` is 0"), "{err}");
}

/// The `happy` scenario released: stable runs the candidate (revision 3).
async fn promoted_happy_world() -> (scenario::World, ReleaseSpec) {
    let spec = spec();
    let world = scenario::build("happy", &spec).await.expect("known");
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    (world, spec)
}

#[tokio::test]
async fn a_healthy_release_is_guarded_and_left_alone() {
    let (world, spec) = promoted_happy_world().await;
    let before = stable_image(&world.backends, &spec).await;
    let started = world.backends.clock.now();
    let watch_spec = WatchSpec::new(&spec, &WatchConfig::default()).expect("valid");
    let report = watch(&watch_spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    assert_eq!(report.revision, Some(3));
    assert!(
        report.reason.contains("measured 61/61"),
        "every check measured: {}",
        report.reason
    );
    assert_eq!(
        world.backends.clock.now().duration_since(started),
        jiff::SignedDuration::from_mins(30),
        "guards for the configured duration"
    );
    assert_eq!(stable_image(&world.backends, &spec).await, before);
    assert_eq!(serving_version(&world.backends, &spec).await, 3);
    assert_eq!(
        history(&world.backends, &spec).await.len(),
        3,
        "no rollback"
    );
    let entries = world.backends.audit.entries().await.expect("trail");
    assert!(entries.iter().any(|entry| matches!(&entry.event,
        Event::Decision { stage, verdict, .. } if stage == "watch" && verdict == "pass")));
    assert!(
        !world
            .notifier
            .sent()
            .iter()
            .any(|note| note.event == "rolled-back")
    );
}

#[tokio::test]
async fn crash_looping_stable_is_rolled_back_after_the_health_grace() {
    let (world, spec) = promoted_happy_world().await;
    let promoted = history(&world.backends, &spec).await[2].clone();
    world
        .cluster
        .inject(promoted.digest.hex(), Fault::CrashLoop);
    let started = world.backends.clock.now();
    let watch_spec = WatchSpec::new(&spec, &WatchConfig::default()).expect("valid");
    let mut events = Vec::new();
    let report = watch(&watch_spec, &world.backends, &mut |event: &StageEvent| {
        events.push(event.clone())
    })
    .await;
    assert_eq!(report.outcome, RunOutcome::Rejected, "{}", report.reason);
    assert_eq!(
        report.stages, events,
        "the observer saw the rollback's events too"
    );
    assert!(
        report.reason.contains("health breached for 1m")
            && report.reason.contains("CrashLoopBackOff"),
        "{}",
        report.reason
    );
    let records = history(&world.backends, &spec).await;
    let last = records.last().expect("records");
    assert_eq!((last.revision, last.outcome), (4, Outcome::RolledBack));
    assert_eq!(
        last.model.version, 2,
        "back to the version before the release"
    );
    assert_eq!(serving_version(&world.backends, &spec).await, 2);
    assert!(
        stable_image(&world.backends, &spec)
            .await
            .ends_with(&last.digest.to_string())
    );
    let breach_at = events
        .iter()
        .find(|event| event.stage == "rollback")
        .expect("rolled back")
        .at;
    assert_eq!(
        breach_at.duration_since(started),
        jiff::SignedDuration::from_mins(1),
        "ill health from the first check, rolled back once it held for the 1m grace"
    );
    assert!(
        world
            .notifier
            .sent()
            .iter()
            .any(|note| note.event == "rolled-back")
    );
    let reason = last.reason.as_deref().unwrap_or_default();
    assert!(reason.contains("watch: health"), "{reason}");
}

#[tokio::test]
async fn a_metrics_outage_never_rolls_back() {
    let story = story_world(Arc::new(MemoryAuditStore::new())).await;
    let spec = story.release_spec(1);
    let backends = &story.world.backends;
    story.track_runs("canary", 1, backends.clock.now());
    let report = slipway_pipeline::run(&spec, backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    // v2 would degrade after 15 minutes, but nobody can see it.
    story.track_runs("stable", 1, backends.clock.now());
    story.metrics.set_unavailable(true);
    let watch_spec = WatchSpec::new(&spec, &WatchConfig::default()).expect("valid");
    let report = watch(&watch_spec, backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed, "{}", report.reason);
    assert!(
        report
            .reason
            .contains("error-rate, p99-latency never measured in 61 checks"),
        "{}",
        report.reason
    );
    assert_eq!(history(backends, &spec).await.len(), 2, "no rollback");
    assert_eq!(serving_version(backends, &spec).await, 2);
}

#[tokio::test]
async fn nothing_promoted_means_nothing_to_guard() {
    let spec = spec();
    let world = scenario::build("happy", &spec).await.expect("known");
    // Stable runs an image the history does not know.
    world
        .cluster
        .apply_deployment(&slipway_k8s_rollout::DeploymentSpec {
            image: "ghcr.io/acme/iris-server@sha256:".to_owned() + &"f".repeat(64),
            ..world
                .cluster
                .deployment(&spec.release.namespace, &spec.release.name)
                .await
                .expect("read")
                .expect("stable")
                .spec
        })
        .await
        .expect("apply");
    let watch_spec = WatchSpec::new(&spec, &WatchConfig::default()).expect("valid");
    let report = watch(&watch_spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert!(
        report
            .reason
            .contains("the cluster and the history disagree"),
        "{}",
        report.reason
    );
}

#[test]
fn watch_spec_borrows_the_plans_queries_and_reports_every_problem() {
    let release = spec();
    let watch_spec = WatchSpec::new(&release, &WatchConfig::default()).expect("defaults are valid");
    let names: Vec<(&str, f64)> = watch_spec
        .metrics
        .iter()
        .map(|metric| (metric.name.as_str(), metric.max))
        .collect();
    assert_eq!(names, [("error-rate", 0.01), ("p99-latency", 2.0)]);
    assert_eq!(
        watch_spec.metrics[0].query,
        release.analysis.metrics[0].query
    );
    assert_eq!(watch_spec.rate_window, release.analysis.interval);

    let mut bare = release.clone();
    bare.analysis.metrics.clear();
    let config = WatchConfig {
        interval: Duration::ZERO,
        latency_p99_max: f64::NAN,
        latency_p99_query: Some("histogram_quantile(0.99, x{track=\"{{trak}}\"})".into()),
        ..WatchConfig::default()
    };
    let err = WatchSpec::new(&bare, &config).expect_err("invalid");
    let expected = "invalid watch configuration:
  - `error_rate_query` is not set and the analysis plan has no metric `error-rate` to borrow it from
  - `latency_p99_max` is NaN; give a finite, non-negative number
  - `latency_p99_query`: failed to render query template `histogram_quantile(0.99, x{track=\"{{trak}}\"})`: unknown placeholder `{{trak}}`
  - `interval` is 0; check at least every few seconds

hint: fix the `[watch]` section (`--print-config` shows every key)";
    assert_eq!(err.to_string(), expected);
}
