//! Whole runs of the strategies, written once against `&dyn Cluster` so the same scenarios run
//! on the in-memory cluster here and on a real cluster in `e2e.rs`: canary success, canary
//! failure, blue-green switch and instant switch back, a run killed after each step and run again,
//! and two concurrent deploys.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use slipway_core::{
    Clock, Digest, ImageRef, ModelVersion, Outcome, ReleaseId, ReleaseRecord, SimClock, Strategy,
};
use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig, Colour};
use slipway_k8s_rollout::{
    Cluster, DeploymentSpec, Error, Fault, MemoryCluster, RollingParams, TRACK_LABEL, lock,
    rolling, rollout,
};

/// What a scenario runs against.
pub(crate) struct World {
    pub(crate) cluster: Arc<dyn Cluster>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) release: ReleaseId,
    pub(crate) service: String,
    /// What stable runs at the start.
    pub(crate) old: String,
    /// A good new image.
    pub(crate) new: String,
    /// An image whose pods never become ready.
    pub(crate) broken: String,
    pub(crate) deadline: Duration,
    /// Deadline for the broken image (short: it is waited out in full).
    pub(crate) fail_deadline: Duration,
    pub(crate) lock_ttl: Duration,
    pub(crate) pause: Duration,
}

const STEPS: [u8; 3] = [10, 25, 50];
/// lock, 3 canary steps, promote, record, unlock.
pub(crate) const STAGES: usize = 7;

/// How a run of [`deploy`] ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Promoted(u64),
    /// "Killed" after this many stages: nothing after them ran, not even the lock release.
    Killed(usize),
}

fn record(world: &World, revision: u64, image: &str, outcome: Outcome) -> ReleaseRecord {
    let digest = image
        .rsplit_once('@')
        .map_or("sha256:0", |(_, digest)| digest);
    let digest = Digest::parse(digest)
        .unwrap_or_else(|_| Digest::parse(&format!("sha256:{}", "0".repeat(64))).expect("digest"));
    ReleaseRecord {
        trail_head: None,
        ci_run: None,
        source_time: None,
        creates: Vec::new(),
        alias_pending: None,
        release: world.release.clone(),
        revision,
        image: ImageRef::parse(image).expect("image"),
        digest,
        model: ModelVersion {
            name: "iris".into(),
            version: revision,
        },
        strategy: Strategy::Canary,
        outcome,
        actor: "scenario".into(),
        at: world.clock.now(),
        reason: None,
    }
}

/// A canary deploy as the pipeline runs it, stage by stage; `stop_after` simulates the process
/// being killed after that many stages.
pub(crate) async fn deploy(
    world: &World,
    holder: &str,
    image: &str,
    stop_after: Option<usize>,
) -> Result<Ended, Error> {
    let cluster = world.cluster.as_ref();
    let clock = world.clock.as_ref();
    let release = &world.release;
    let killed = |done: usize| stop_after.is_some_and(|k| done >= k);
    cluster
        .acquire_lock(release, holder, world.lock_ttl)
        .await?;
    if killed(1) {
        return Ok(Ended::Killed(1));
    }
    for (idx, percent) in STEPS.into_iter().enumerate() {
        let deadline = if image == world.broken {
            world.fail_deadline
        } else {
            world.deadline
        };
        if let Err(err) =
            rollout::set_canary_weight(cluster, clock, release, image, percent, deadline).await
        {
            rollout::abort(cluster, release).await?;
            cluster
                .emit_event(
                    &release.namespace,
                    &release.name,
                    "Aborted",
                    &err.to_string(),
                )
                .await?;
            cluster.release_lock(release, holder).await?;
            return Err(err);
        }
        cluster
            .emit_event(
                &release.namespace,
                &release.name,
                "CanaryStep",
                &format!("{percent}%"),
            )
            .await?;
        clock.sleep(world.pause).await;
        if killed(2 + idx) {
            return Ok(Ended::Killed(2 + idx));
        }
    }
    rollout::promote(cluster, clock, release, image, world.deadline).await?;
    if killed(5) {
        return Ok(Ended::Killed(5));
    }
    let revision = cluster
        .release_history(release)
        .await?
        .last()
        .map_or(1, |last| last.revision + 1);
    cluster
        .record_release(&record(world, revision, image, Outcome::Promoted), 10)
        .await?;
    if killed(6) {
        return Ok(Ended::Killed(6));
    }
    cluster.release_lock(release, holder).await?;
    Ok(Ended::Promoted(revision))
}

async fn stable_image(world: &World) -> String {
    rollout::stable(world.cluster.as_ref(), &world.release)
        .await
        .expect("stable")
        .spec
        .image
}

async fn canary_exists(world: &World) -> bool {
    world
        .cluster
        .deployment(
            &world.release.namespace,
            &rollout::canary_name(&world.release),
        )
        .await
        .expect("get")
        .is_some()
}

pub(crate) async fn canary_success(world: &World) {
    let ended = deploy(world, "ci-run-1", &world.new, None)
        .await
        .expect("deploy");
    assert!(matches!(ended, Ended::Promoted(_)), "{ended:?}");
    assert_eq!(stable_image(world).await, world.new);
    assert!(
        !canary_exists(world).await,
        "canary removed after promotion"
    );
    let history = world
        .cluster
        .release_history(&world.release)
        .await
        .expect("history");
    assert_eq!(
        history
            .last()
            .map(|record| record.image.pinned().unwrap_or_default()),
        Some(world.new.clone())
    );
}

pub(crate) async fn canary_failure(world: &World) {
    let before = rollout::stable(world.cluster.as_ref(), &world.release)
        .await
        .expect("stable")
        .spec;
    let err = deploy(world, "ci-run-1", &world.broken, None)
        .await
        .expect_err("broken image");
    let text = err.to_string();
    assert!(
        matches!(err, Error::NotReady { .. }) && text.contains("-canary"),
        "{text}"
    );
    assert!(!canary_exists(world).await, "canary removed after failure");
    assert_eq!(
        rollout::stable(world.cluster.as_ref(), &world.release)
            .await
            .expect("stable")
            .spec,
        before,
        "stable unchanged"
    );
    // The lock was given up: the next run can start at once.
    world
        .cluster
        .acquire_lock(&world.release, "ci-run-2", world.lock_ttl)
        .await
        .expect("lock free");
    world
        .cluster
        .release_lock(&world.release, "ci-run-2")
        .await
        .expect("release");
}

/// Kills a run after `k` stages, then runs again as another process once the dead run's lock
/// expired; the end state must be the same as an uninterrupted run.
pub(crate) async fn killed_and_rerun(world: &World, k: usize) {
    let ended = deploy(world, "ci-run-dead", &world.new, Some(k))
        .await
        .expect("first run");
    assert_eq!(ended, Ended::Killed(k));
    if k < STAGES - 1
        || world
            .cluster
            .acquire_lock(&world.release, "probe", world.lock_ttl)
            .await
            .is_err()
    {
        // The dead run still holds the lock: a new run is refused, naming it, until it expires.
        let refused = deploy(world, "ci-run-2", &world.new, None)
            .await
            .expect_err("locked");
        assert!(
            refused.to_string().contains("locked by `ci-run-dead`"),
            "{refused}"
        );
        world
            .clock
            .sleep(world.lock_ttl + Duration::from_secs(1))
            .await;
    } else {
        world
            .cluster
            .release_lock(&world.release, "probe")
            .await
            .expect("release probe");
    }
    let ended = deploy(world, "ci-run-2", &world.new, None)
        .await
        .expect("re-run converges");
    assert!(matches!(ended, Ended::Promoted(_)), "{ended:?}");
    assert_eq!(
        stable_image(world).await,
        world.new,
        "after kill at stage {k}"
    );
    assert!(
        !canary_exists(world).await,
        "no leaked canary after kill at stage {k}"
    );
    let history = world
        .cluster
        .release_history(&world.release)
        .await
        .expect("history");
    assert_eq!(
        history
            .last()
            .map(|record| record.image.pinned().unwrap_or_default()),
        Some(world.new.clone())
    );
}

/// Two deploys at once: the second is refused and names the first.
pub(crate) async fn concurrent_deploys(world: &World) {
    let (started, wait_started) = tokio::sync::oneshot::channel::<()>();
    let (finish, wait_finish) = tokio::sync::oneshot::channel::<()>();
    let first = lock::hold(
        world.cluster.as_ref(),
        world.clock.as_ref(),
        &world.release,
        "ci-run-1",
        world.lock_ttl,
        async move {
            let _ = started.send(());
            let _ = wait_finish.await;
        },
    );
    let second = async {
        let _ = wait_started.await;
        let refused = deploy(world, "ci-run-2", &world.new, None).await;
        let _ = finish.send(());
        refused
    };
    let (first, second) = tokio::join!(first, second);
    first.expect("first run holds the lock throughout");
    let refused = second.expect_err("second is refused");
    assert!(
        matches!(&refused, Error::Locked { holder, .. } if holder == "ci-run-1"),
        "{refused:?}"
    );
    assert_eq!(
        stable_image(world).await,
        world.old,
        "the refused run changed nothing"
    );
    assert!(!canary_exists(world).await);
    // `hold` gave the lock up at the end.
    world
        .cluster
        .acquire_lock(&world.release, "ci-run-3", world.lock_ttl)
        .await
        .expect("lock free again");
    world
        .cluster
        .release_lock(&world.release, "ci-run-3")
        .await
        .expect("release");
}

/// Blue-green: deploy to standby, preview, switch, switch back at once, finish.
pub(crate) async fn blue_green(world: &World) {
    let cluster = world.cluster.as_ref();
    let clock = world.clock.as_ref();
    let config = BlueGreenConfig {
        deadline: world.deadline,
        ..BlueGreenConfig::new(world.service.clone())
    };
    let standby = bluegreen::deploy(cluster, clock, &world.release, &config, &world.new)
        .await
        .expect("deploy");
    assert_eq!(
        standby,
        Colour::Green,
        "the first release adopts stable as blue and deploys green"
    );
    assert_eq!(
        bluegreen::active(cluster, &world.release, &config)
            .await
            .expect("active"),
        Some(Colour::Blue)
    );
    let preview = cluster
        .service_selector(
            &world.release.namespace,
            &bluegreen::preview_name(&world.service),
        )
        .await
        .expect("get")
        .expect("preview exists");
    assert_eq!(preview.get(TRACK_LABEL).map(String::as_str), Some("green"));
    let blue = cluster
        .deployment(
            &world.release.namespace,
            &bluegreen::colour_name(&world.release, Colour::Blue),
        )
        .await
        .expect("get")
        .expect("blue");
    assert_eq!(blue.spec.image, world.old, "blue serves what stable served");

    bluegreen::switch(cluster, &world.release, &config, Colour::Green)
        .await
        .expect("switch");
    assert_eq!(
        bluegreen::active(cluster, &world.release, &config)
            .await
            .expect("active"),
        Some(Colour::Green)
    );
    // Instant: blue is still scaled up and ready, nothing is waited for.
    let back = bluegreen::switch_back(cluster, clock, &world.release, &config)
        .await
        .expect("switch back");
    assert_eq!(back, Colour::Blue);
    assert_eq!(
        bluegreen::active(cluster, &world.release, &config)
            .await
            .expect("active"),
        Some(Colour::Blue)
    );

    bluegreen::switch(cluster, &world.release, &config, Colour::Green)
        .await
        .expect("switch again");
    bluegreen::finish(cluster, clock, &world.release, &config)
        .await
        .expect("finish");
    let blue = cluster
        .deployment(
            &world.release.namespace,
            &bluegreen::colour_name(&world.release, Colour::Blue),
        )
        .await
        .expect("get")
        .expect("blue kept");
    assert_eq!(
        blue.spec.replicas, 0,
        "old colour scaled down after the delay"
    );
    assert!(
        cluster
            .service_selector(
                &world.release.namespace,
                &bluegreen::preview_name(&world.service)
            )
            .await
            .expect("get")
            .is_none()
    );
    // Deploying the image that already serves changes nothing.
    assert_eq!(
        bluegreen::deploy(cluster, clock, &world.release, &config, &world.new)
            .await
            .expect("again"),
        Colour::Green
    );
    assert_eq!(
        stable_image(world).await,
        world.old,
        "blue-green never changes the user's Deployment"
    );
}

// ----- the in-memory runs -----

fn memory_world() -> (World, Arc<MemoryCluster>, Arc<SimClock>) {
    let clock = Arc::new(SimClock::starting_at(
        "2026-11-22T10:00:00Z".parse().expect("timestamp"),
    ));
    let cluster = Arc::new(MemoryCluster::new(clock.clone()));
    let labels: BTreeMap<_, _> = [("app".to_owned(), "iris".to_owned())].into();
    let old = format!("reg.example/iris@sha256:{}", "a".repeat(64));
    cluster.seed_deployment(DeploymentSpec {
        namespace: "ml".into(),
        name: "iris".into(),
        replicas: 4,
        selector: labels.clone(),
        pod_labels: labels.clone(),
        container: "server".into(),
        image: old.clone(),
    });
    cluster.seed_service("ml", "iris", labels);
    let broken = format!("reg.example/iris@sha256:{}", "f".repeat(64));
    cluster.inject(&"f".repeat(64), Fault::ImagePull);
    let world = World {
        cluster: cluster.clone(),
        clock: clock.clone(),
        release: ReleaseId::parse("ml/iris").expect("release"),
        service: "iris".into(),
        old,
        new: format!("reg.example/iris@sha256:{}", "b".repeat(64)),
        broken,
        deadline: Duration::from_secs(600),
        fail_deadline: Duration::from_secs(120),
        lock_ttl: Duration::from_secs(900),
        pause: Duration::from_secs(60),
    };
    (world, cluster, clock)
}

#[tokio::test]
async fn memory_canary_success() {
    let (world, cluster, _) = memory_world();
    canary_success(&world).await;
    let reasons: Vec<String> = cluster
        .events()
        .into_iter()
        .map(|event| event.reason)
        .collect();
    assert_eq!(reasons, ["CanaryStep", "CanaryStep", "CanaryStep"]);
    assert_eq!(cluster.endpoints("ml", "iris"), [("iris".to_owned(), 4)]);
}

#[tokio::test]
async fn memory_canary_shares_pods_step_by_step() {
    let (world, cluster, clock) = memory_world();
    for (percent, canary) in [(10, 1), (25, 2), (50, 4)] {
        rollout::set_canary_weight(
            cluster.as_ref(),
            clock.as_ref(),
            &world.release,
            &world.new,
            percent,
            world.deadline,
        )
        .await
        .expect("step");
        assert_eq!(
            cluster.endpoints("ml", "iris"),
            [("iris".to_owned(), 4), ("iris-canary".to_owned(), canary)],
            "{percent}%"
        );
    }
}

#[tokio::test]
async fn memory_canary_failure() {
    let (world, cluster, _) = memory_world();
    canary_failure(&world).await;
    let aborted = cluster
        .events()
        .into_iter()
        .find(|event| event.reason == "Aborted")
        .expect("Aborted event");
    assert!(
        aborted.message.contains("ImagePullBackOff"),
        "{}",
        aborted.message
    );
}

#[tokio::test]
async fn memory_killed_after_each_stage_converges() {
    for k in 1..STAGES {
        let (world, cluster, _) = memory_world();
        killed_and_rerun(&world, k).await;
        assert_eq!(
            cluster.deployment_names("ml"),
            ["iris"],
            "after kill at stage {k}"
        );
        assert_eq!(
            cluster.lock_holder(&world.release),
            None,
            "lock released after kill at stage {k}"
        );
    }
}

#[tokio::test]
async fn memory_concurrent_deploys() {
    let (world, _, _) = memory_world();
    concurrent_deploys(&world).await;
}

#[tokio::test]
async fn memory_blue_green() {
    let (world, cluster, _) = memory_world();
    blue_green(&world).await;
    assert_eq!(
        cluster.endpoints("ml", "iris"),
        [("iris-green".to_owned(), 4)]
    );
}

#[tokio::test]
async fn memory_blue_green_switch_back_is_instant_and_killed_runs_converge() {
    let (world, cluster, clock) = memory_world();
    let config = BlueGreenConfig::new("iris");
    bluegreen::deploy(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        &config,
        &world.new,
    )
    .await
    .expect("deploy");
    assert_eq!(
        cluster.endpoints("ml", "iris-preview"),
        [("iris-green".to_owned(), 4)],
        "preview shows green only"
    );
    assert_eq!(
        cluster.endpoints("ml", "iris"),
        [("iris-blue".to_owned(), 4)],
        "green takes no traffic before the switch"
    );
    bluegreen::switch(cluster.as_ref(), &world.release, &config, Colour::Green)
        .await
        .expect("switch");
    let at = clock.now();
    bluegreen::switch_back(cluster.as_ref(), clock.as_ref(), &world.release, &config)
        .await
        .expect("back");
    assert_eq!(clock.now(), at, "nothing was waited for");
    assert_eq!(
        cluster.endpoints("ml", "iris"),
        [("iris-blue".to_owned(), 4)]
    );

    // Each step run twice (a re-run after a kill) ends in the same state.
    let (world, cluster, clock) = memory_world();
    for _ in 0..2 {
        bluegreen::deploy(
            cluster.as_ref(),
            clock.as_ref(),
            &world.release,
            &config,
            &world.new,
        )
        .await
        .expect("deploy");
    }
    for _ in 0..2 {
        bluegreen::switch(cluster.as_ref(), &world.release, &config, Colour::Green)
            .await
            .expect("switch");
        bluegreen::finish(cluster.as_ref(), clock.as_ref(), &world.release, &config)
            .await
            .expect("finish");
    }
    assert_eq!(
        cluster.endpoints("ml", "iris"),
        [("iris-green".to_owned(), 4)]
    );
    assert_eq!(
        cluster.deployment_names("ml"),
        ["iris", "iris-blue", "iris-green"]
    );
}

#[tokio::test]
async fn memory_switch_to_a_colour_that_is_not_ready_is_refused() {
    let (world, cluster, clock) = memory_world();
    let config = BlueGreenConfig::new("iris");
    let err = bluegreen::switch(cluster.as_ref(), &world.release, &config, Colour::Green)
        .await
        .expect_err("no green");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let config = BlueGreenConfig {
        deadline: Duration::from_secs(30),
        ..config
    };
    let err = bluegreen::deploy(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        &config,
        &world.broken,
    )
    .await
    .expect_err("broken");
    assert!(
        err.to_string().contains("iris-green") && err.to_string().contains("ImagePullBackOff"),
        "{err}"
    );
    let err = bluegreen::switch(cluster.as_ref(), &world.release, &config, Colour::Green)
        .await
        .expect_err("not ready");
    assert!(err.to_string().contains("refusing to switch"), "{err}");
    assert_eq!(
        cluster.endpoints("ml", "iris"),
        [("iris-blue".to_owned(), 4)],
        "traffic stays on blue"
    );
}

#[tokio::test]
async fn memory_rolling_update_and_undo_on_failure() {
    let (world, cluster, clock) = memory_world();
    let params = RollingParams {
        max_surge: "1".into(),
        max_unavailable: "0".into(),
    };
    rolling::run(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        &world.new,
        &params,
        world.deadline,
    )
    .await
    .expect("rolling");
    assert_eq!(stable_image(&world).await, world.new);
    assert_eq!(cluster.rolling_params("ml", "iris"), Some(params.clone()));
    let err = rolling::run(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        &world.broken,
        &params,
        Duration::from_secs(60),
    )
    .await
    .expect_err("broken");
    assert!(
        err.to_string()
            .contains(&format!("rolled back to {}", world.new)),
        "{err}"
    );
    assert_eq!(stable_image(&world).await, world.new);
    let state = cluster
        .deployment("ml", "iris")
        .await
        .expect("get")
        .expect("stable");
    assert!(state.rolled_out());
}

#[tokio::test]
async fn memory_rollback_from_history() {
    let (world, cluster, clock) = memory_world();
    canary_success(&world).await;
    // Revision 1 served `new`; record the original as an earlier served revision to return to.
    let (world2, _, _) = memory_world();
    drop(world2);
    cluster
        .record_release(&record(&world, 2, &world.broken, Outcome::Aborted), 10)
        .await
        .expect("record");
    let err = rollout::rollback(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        Some(2),
        world.deadline,
    )
    .await
    .expect_err("aborted revision");
    assert!(err.to_string().contains("never served"), "{err}");
    let err = rollout::rollback(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        None,
        world.deadline,
    )
    .await
    .expect_err("nothing different");
    assert!(
        err.to_string().contains("no earlier served revision"),
        "{err}"
    );
    cluster
        .record_release(&record(&world, 3, &world.old, Outcome::Promoted), 10)
        .await
        .expect("record");
    let target = rollout::rollback(
        cluster.as_ref(),
        clock.as_ref(),
        &world.release,
        Some(1),
        world.deadline,
    )
    .await
    .expect("rollback");
    assert_eq!(target.revision, 1);
    assert_eq!(stable_image(&world).await, world.new);
}
