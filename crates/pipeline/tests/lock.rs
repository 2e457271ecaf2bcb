//! The release's lock is held to the end of a run: renewed on the run's own clock through a
//! canary several times longer than the lock's time to live, and when another holder takes it
//! the run stops, removes its canary and records `lock-lost`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use slipway_audit_log::Event;
use slipway_cli::config::Settings;
use slipway_cli::release::release_spec;
use slipway_core::Outcome;
use slipway_demo::scenario::{self, World};
use slipway_k8s_rollout::Cluster as _;
use slipway_pipeline::{Interruption, ReleaseSpec, RunOutcome, StageEvent, StageStatus};

/// A canary of three ten-minute steps: with its analysis, about 45 simulated minutes, three
/// times the lock's 15-minute time to live.
fn long_spec() -> ReleaseSpec {
    let mut spec = release_spec(&Settings::default(), None, None).expect("defaults are valid");
    spec.pause = Duration::from_secs(600);
    spec
}

async fn world(name: &str, spec: &ReleaseSpec) -> World {
    scenario::build(name, spec).await.expect("known scenario")
}

async fn stable(world: &World, spec: &ReleaseSpec) -> slipway_k8s_rollout::DeploymentSpec {
    world
        .cluster
        .deployment(&spec.release.namespace, &spec.release.name)
        .await
        .expect("read")
        .expect("stable")
        .spec
}

/// After a stop: the canary is removed and stable is as it was before the run.
async fn assert_cleaned_up(
    world: &World,
    spec: &ReleaseSpec,
    stable_before: &slipway_k8s_rollout::DeploymentSpec,
) {
    let canary = world
        .cluster
        .deployment(
            &spec.release.namespace,
            &format!("{}-canary", spec.release.name),
        )
        .await
        .expect("read");
    assert!(canary.is_none(), "the canary is removed");
    assert_eq!(
        &stable(world, spec).await,
        stable_before,
        "stable is untouched"
    );
}

#[tokio::test]
async fn the_lease_is_renewed_throughout_a_canary_longer_than_its_ttl() {
    let spec = long_spec();
    let world = world("happy", &spec).await;
    let ttl = slipway_pipeline::lock::lock_ttl(spec.progress_deadline);
    let cluster = world.cluster.clone();
    let release = spec.release.clone();
    // At every event after the lock is taken, the lease is ours and has not expired.
    let seen: Arc<Mutex<Vec<(jiff::Timestamp, String, jiff::Timestamp)>>> = Arc::default();
    let log = seen.clone();
    let mut observer = move |event: &StageEvent| {
        if let Some((holder, expires)) = cluster.lease(&release) {
            log.lock().expect("log").push((event.at, holder, expires));
        }
    };
    let report = slipway_pipeline::run(&spec, &world.backends, &mut observer).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    let seen = seen.lock().expect("log").clone();
    let first = seen.first().expect("the lock was taken").0;
    let last = seen.last().expect("events").0;
    assert!(
        last.duration_since(first) > jiff::SignedDuration::try_from(ttl * 2).expect("ttl"),
        "the canary must outlast the lock's TTL ({ttl:?}) several times: {first} → {last}"
    );
    let holder = &seen[0].1;
    for (at, who, expires) in &seen {
        assert_eq!(who, holder, "nobody else held the lock at {at}");
        assert!(
            expires > at,
            "the lease had expired at {at} (expiry {expires})"
        );
    }
    let renewals = seen.windows(2).filter(|pair| pair[1].2 > pair[0].2).count();
    assert!(
        renewals >= 6,
        "renewed every third of the TTL: {renewals} renewals seen"
    );
    assert_eq!(
        world.cluster.lock_holder(&spec.release),
        None,
        "the lock is given up at the end"
    );
}

#[tokio::test]
async fn another_holder_taking_the_lock_stops_the_canary_and_records_lock_lost() {
    let spec = long_spec();
    let world = world("happy", &spec).await;
    let stable_before = stable(&world, &spec).await;
    let cluster = world.cluster.clone();
    let clock = world.backends.clock.clone();
    let release = spec.release.clone();
    // During step 2, the lease shows another holder: what a takeover after a stall leaves.
    let mut observer = move |event: &StageEvent| {
        if event.stage == "canary"
            && event.status == StageStatus::Start
            && event.message.starts_with("step 2/")
        {
            let until = clock.now() + jiff::SignedDuration::from_hours(1);
            cluster.set_lease(&release, "other-runner@later", until);
        }
    };
    let report = slipway_pipeline::run(&spec, &world.backends, &mut observer).await;
    assert_eq!(report.outcome, RunOutcome::Cancelled, "{}", report.reason);
    assert!(
        matches!(&report.interruption, Some(Interruption::LockLost { reason }) if reason.contains("other-runner@later")),
        "{:?}",
        report.interruption
    );
    assert_cleaned_up(&world, &spec, &stable_before).await;
    assert_eq!(
        world.cluster.lock_holder(&spec.release).as_deref(),
        Some("other-runner@later"),
        "the new holder keeps the lock"
    );
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    let last = history.last().expect("a record");
    assert_eq!(last.outcome, Outcome::Cancelled);
    assert!(
        last.reason
            .as_deref()
            .is_some_and(|r| r.contains("lock lost")),
        "{:?}",
        last.reason
    );
    let entries = world.backends.audit.entries().await.expect("trail");
    assert!(
        entries.iter().any(|entry| matches!(&entry.event,
            Event::Decision { stage, verdict, .. } if stage == "run" && verdict == "lock-lost")),
        "the trail records lock-lost"
    );
}

/// A live holder whose lock was broken (`unlock --force`: the lease deleted under it) does not
/// re-create the lease at its next renewal: it stops as on any lost lock, removes its canary,
/// leaves stable as it was, and the lease stays gone for whoever settles the release.
#[tokio::test]
async fn a_holder_whose_lock_was_broken_stops_instead_of_taking_it_again() {
    let spec = long_spec();
    let world = world("happy", &spec).await;
    let stable_before = stable(&world, &spec).await;
    let cluster = world.cluster.clone();
    let release = spec.release.clone();
    let mut observer = move |event: &StageEvent| {
        if event.stage == "canary"
            && event.status == StageStatus::Start
            && event.message.starts_with("step 2/")
            && let Some(holder) = cluster.lock_holder(&release)
        {
            let released =
                slipway_k8s_rollout::Cluster::release_lock(cluster.as_ref(), &release, &holder);
            let mut released = std::pin::pin!(released);
            let waker = std::task::Waker::noop();
            let ready = released
                .as_mut()
                .poll(&mut std::task::Context::from_waker(waker));
            assert!(ready.is_ready(), "the in-memory cluster answers at once");
        }
    };
    let report = slipway_pipeline::run(&spec, &world.backends, &mut observer).await;
    assert_eq!(report.outcome, RunOutcome::Cancelled, "{}", report.reason);
    assert!(
        matches!(&report.interruption, Some(Interruption::LockLost { reason }) if reason.contains("is gone")),
        "{:?}",
        report.interruption
    );
    assert_cleaned_up(&world, &spec, &stable_before).await;
    assert_eq!(
        world.cluster.lock_holder(&spec.release),
        None,
        "the broken lock is not taken again"
    );
}

/// `unlock` judges a lease by the holder's own time to live (renewed → expires), not by the
/// unlocking command's configuration: a holder with a 20-minute lease renewed a minute ago is
/// alive even to a command whose own lease would last an hour; it is stale once it missed a
/// renewal of its own period.
#[tokio::test]
async fn unlock_judges_the_lease_by_its_own_time_to_live() {
    let spec = long_spec();
    let world = world("happy", &spec).await;
    let clock = world.backends.clock.clone();
    world
        .cluster
        .acquire_lock(&spec.release, "ci-bot@dead", Duration::from_secs(20 * 60))
        .await
        .expect("lock");
    let mut unlocker = spec.clone();
    unlocker.progress_deadline = Duration::from_secs(30 * 60);
    assert_eq!(
        slipway_pipeline::lock::lock_ttl(unlocker.progress_deadline),
        Duration::from_secs(3600)
    );
    clock.sleep(Duration::from_secs(60)).await;
    let fresh =
        slipway_pipeline::lock::unlock(&unlocker, &world.backends, "ci-bot@dead", "gone", false)
            .await
            .expect_err("renewed a minute ago");
    assert!(
        matches!(&fresh, slipway_pipeline::lock::UnlockError::Fresh { period, .. } if period == "400 s"),
        "{fresh}"
    );
    assert_eq!(
        world.cluster.lock_holder(&spec.release).as_deref(),
        Some("ci-bot@dead")
    );
    // 20 min / 3 + 20 min / 10 = 8 min 40 s after the renewal.
    clock.sleep(Duration::from_secs(8 * 60)).await;
    let broken =
        slipway_pipeline::lock::unlock(&unlocker, &world.backends, "ci-bot@dead", "gone", false)
            .await
            .expect("stale now");
    assert_eq!(broken.holder.as_deref(), Some("ci-bot@dead"));
    assert_eq!(world.cluster.lock_holder(&spec.release), None);
}
