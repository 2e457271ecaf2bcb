//! The persisted embedded world: each `open_or_create` stands for a separate process, so a
//! release paused in one is promoted in the next; writes are on disk at once; the stall hook
//! keeps a process alive after its N-th write with that write saved.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use slipway_audit_log::{AuditStore, FileAuditStore};
use slipway_cli::config::Settings;
use slipway_cli::release::release_spec;
use slipway_core::{ModelRef, Outcome};
use slipway_demo::persist::{self, Hooks, PersistError, Persisted};
use slipway_demo::scenario::{self, START, WorldOptions};
use slipway_k8s_rollout::{Cluster as _, DeploymentSpec};
use slipway_pipeline::{ReleaseSpec, Resume, RunOutcome, StageEvent};

fn spec() -> ReleaseSpec {
    release_spec(&Settings::default(), None, None).expect("defaults are valid")
}

/// One "process": the world in `dir`, its trail in `DIR/audit.jsonl`.
async fn process(dir: &Path, scenario: Option<&str>, hooks: Hooks) -> Persisted {
    let audit: Arc<dyn AuditStore> = Arc::new(FileAuditStore::new(persist::trail_path(dir)));
    let mut persisted = persist::open_or_create(dir, scenario, &spec(), audit.clone(), hooks)
        .await
        .expect("open the world");
    persisted.world.backends.audit = audit;
    persisted
}

#[tokio::test]
async fn a_release_paused_in_one_process_is_promoted_in_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec();
    spec.approval = None;

    let first = process(dir.path(), Some("unapproved"), Hooks::default()).await;
    assert!(first.created);
    let report =
        slipway_pipeline::run(&spec, &first.world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Paused, "{}", report.reason);
    let paused_at = first.world.backends.clock.now();
    drop(first);

    let second = process(dir.path(), None, Hooks::default()).await;
    assert!(!second.created);
    assert_eq!(second.scenario, "unapproved");
    assert_eq!(
        second.world.backends.clock.now(),
        paused_at,
        "time goes on where the last process left it"
    );
    let canary = second
        .world
        .backends
        .cluster
        .deployment("ml-serving", "iris-classifier-canary")
        .await
        .expect("read");
    assert!(canary.is_some(), "the paused canary is still running");
    slipway_pipeline::approve(&spec, &second.world.backends, "sam.reviewer", "looked fine")
        .await
        .expect("approve");
    drop(second);

    let third = process(dir.path(), None, Hooks::default()).await;
    let report = slipway_pipeline::resume(
        &spec,
        &third.world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    drop(third);

    // What a test reads after the processes ended.
    let saved = persist::open(dir.path()).expect("saved world");
    assert_eq!(
        saved.cluster.deployment_names("ml-serving"),
        ["iris-classifier"]
    );
    let history = saved
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(
        history.iter().map(|r| r.outcome).collect::<Vec<_>>(),
        [
            Outcome::Promoted,
            Outcome::Promoted,
            Outcome::Paused,
            Outcome::Promoted
        ]
    );
    let trail = std::fs::read_to_string(&saved.trail).expect("trail");
    assert!(trail.contains("sam.reviewer"), "{trail}");
    // The alias moved, and a new process sees it.
    let fourth = process(dir.path(), None, Hooks::default()).await;
    let serving = fourth
        .world
        .backends
        .models
        .resolve(&ModelRef::parse("iris-random-forest@production").expect("ref"))
        .await
        .expect("resolve");
    assert_eq!(serving.version.version, 3);
}

fn canary(name: &str) -> DeploymentSpec {
    DeploymentSpec {
        namespace: "ml-serving".into(),
        name: name.into(),
        replicas: 1,
        selector: [("app".to_owned(), name.to_owned())].into(),
        pod_labels: [("app".to_owned(), name.to_owned())].into(),
        container: "model-server".into(),
        image: "ghcr.io/acme/iris-server:1.5.0".into(),
    }
}

#[tokio::test]
async fn each_write_is_on_disk_at_once_and_seen_by_other_processes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = process(dir.path(), Some("happy"), Hooks::default()).await;
    let two = process(dir.path(), None, Hooks::default()).await;
    one.world
        .backends
        .cluster
        .apply_deployment(&canary("written-by-one"))
        .await
        .expect("write");
    // Without any save call or exit: the file already has it, and the other "process" reads it.
    let saved = persist::open(dir.path()).expect("saved");
    assert!(
        saved
            .cluster
            .deployment_names("ml-serving")
            .contains(&"written-by-one".to_owned())
    );
    let seen = two
        .world
        .backends
        .cluster
        .deployment("ml-serving", "written-by-one")
        .await
        .expect("read");
    assert!(seen.is_some());
    two.world
        .backends
        .cluster
        .delete_deployment("ml-serving", "written-by-one")
        .await
        .expect("delete");
    let gone = one
        .world
        .backends
        .cluster
        .deployment("ml-serving", "written-by-one")
        .await
        .expect("read");
    assert!(gone.is_none(), "one sees two's delete");
}

#[tokio::test]
async fn the_stall_hook_waits_after_the_nth_write_with_it_saved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hooks = Hooks {
        trace_writes: true,
        stall_after_write: Some(2),
    };
    let world = process(dir.path(), Some("happy"), hooks).await;
    let cluster = world.world.backends.cluster.clone();
    cluster
        .apply_deployment(&canary("first"))
        .await
        .expect("write 1");
    let second = tokio::time::timeout(
        Duration::from_millis(300),
        cluster.apply_deployment(&canary("second")),
    )
    .await;
    assert!(second.is_err(), "the second write never returns");
    let saved = persist::open(dir.path()).expect("the lock was released");
    let names = saved.cluster.deployment_names("ml-serving");
    assert!(names.contains(&"second".to_owned()), "{names:?}");
    // Later writes (a signal handler's cleanup) go on normally.
    cluster
        .delete_deployment("ml-serving", "first")
        .await
        .expect("write 3");
    let saved = persist::open(dir.path()).expect("saved");
    assert!(
        !saved
            .cluster
            .deployment_names("ml-serving")
            .contains(&"first".to_owned())
    );
}

#[test]
fn hooks_come_from_the_environment() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    };
    assert_eq!(Hooks::from_env(&env(&[])).expect("none"), Hooks::default());
    assert_eq!(
        Hooks::from_env(&env(&[
            (persist::TRACE_WRITES_ENV, "1"),
            (persist::STALL_AFTER_WRITE_ENV, "3")
        ]))
        .expect("both"),
        Hooks {
            trace_writes: true,
            stall_after_write: Some(3)
        }
    );
    let err = Hooks::from_env(&env(&[(persist::STALL_AFTER_WRITE_ENV, "soon")]))
        .expect_err("not a number");
    assert!(
        err.to_string().contains("SLIPWAY_DEMO_STALL_AFTER_WRITE"),
        "{err}"
    );
}

#[tokio::test]
async fn a_saved_world_refuses_another_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(process(dir.path(), Some("unapproved"), Hooks::default()).await);
    let audit: Arc<dyn AuditStore> = Arc::new(FileAuditStore::new(persist::trail_path(dir.path())));
    let err = persist::open_or_create(dir.path(), Some("happy"), &spec(), audit, Hooks::default())
        .await
        .err()
        .expect("another scenario");
    assert!(matches!(err, PersistError::OtherScenario { .. }), "{err}");
    assert!(
        err.to_string().contains("holds the `unapproved` world"),
        "{err}"
    );
}

#[tokio::test]
async fn next_to_a_real_cluster_the_memory_metrics_have_no_data() {
    let spec = spec();
    let start = START.parse().expect("start");
    let query = |world: &scenario::World| {
        let check = spec.analysis.metrics.first().expect("a metric").clone();
        let vars = slipway_analysis::TemplateVars {
            interval: Some(spec.analysis.interval),
            ..slipway_analysis::TemplateVars::new(
                spec.release.name.clone(),
                spec.release.namespace.clone(),
                "stable",
            )
        };
        let rendered = slipway_analysis::render(&check.query, &vars).expect("render");
        let metrics = world.backends.metrics.clone();
        async move { metrics.instant(&rendered, start).await.expect("query") }
    };
    let clock =
        || -> Arc<dyn slipway_core::Clock> { Arc::new(slipway_core::SimClock::starting_at(start)) };
    let audit = || -> Arc<dyn AuditStore> { Arc::new(slipway_audit_log::MemoryAuditStore::new()) };
    let simulated = scenario::build_with("happy", &spec, audit(), clock(), WorldOptions::default())
        .await
        .expect("world");
    assert!(
        !query(&simulated).await.is_empty(),
        "a simulated cluster has its metrics"
    );
    let next_to_real = scenario::build_with(
        "happy",
        &spec,
        audit(),
        clock(),
        WorldOptions { real_cluster: true },
    )
    .await
    .expect("world");
    assert!(
        query(&next_to_real).await.is_empty(),
        "no invented series for a real cluster's pods"
    );
}

#[tokio::test]
async fn every_scenario_reopens_at_its_saved_time() {
    for (name, _, _) in scenario::SCENARIOS {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = process(dir.path(), Some(name), Hooks::default()).await;
        first
            .world
            .backends
            .clock
            .sleep(Duration::from_secs(90))
            .await;
        let saved = first.world.backends.clock.now();
        let names = first.world.cluster.deployment_names("ml-serving");
        drop(first);
        let again = process(dir.path(), None, Hooks::default()).await;
        assert_eq!(again.world.backends.clock.now(), saved, "{name}");
        let reread = again
            .world
            .backends
            .cluster
            .deployment("ml-serving", "iris-classifier")
            .await
            .expect("read");
        assert!(reread.is_some(), "{name}");
        assert_eq!(
            again.world.cluster.deployment_names("ml-serving"),
            names,
            "{name}"
        );
    }
}
