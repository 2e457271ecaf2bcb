//! Stops that cross process boundaries, with the real `slipway-deploy` binary on the embedded
//! world persisted in a state directory (`--demo --state DIR`, write-through like an API server):
//!
//! - SIGINT and SIGTERM mid-canary: the process exits 130 / 143 within 7 s, the canary is gone,
//!   stable is as it was, the trail says `cancelled`, and the lock is free.
//! - A kill matrix: `kill -9` after every cluster write of a canary, a blue-green and a rolling
//!   run (from the lock to the final record), then `abort`, and separately a re-run: every case
//!   ends with stable serving exactly the old or the new image, no Slipway object left, the
//!   history agreeing with what serves, the MLflow alias on the serving model and the lock free.
//!
//! The demo world's test hooks place each stop: `SLIPWAY_DEMO_TRACE_WRITES` lists the writes of a
//! whole run, `SLIPWAY_DEMO_STALL_AFTER_WRITE=N` makes the process wait forever right after its
//! N-th write (saved), where the test signals or kills it.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use slipway_audit_log::{AuditStore as _, Event, FileAuditStore};
use slipway_core::{Outcome, ReleaseId};
use slipway_k8s_rollout::Cluster as _;
use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig};
use slipway_k8s_rollout::rollout::TrafficRouting;

const RELEASE: &str = "ml-serving/iris-classifier";
const SERVICE: &str = "iris-classifier";

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway-deploy"));
    command
        .args(args)
        .current_dir(dir)
        .env("USER", "release-bot")
        .env_remove("GITHUB_ACTOR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("GITHUB_OUTPUT");
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") {
            command.env_remove(key);
        }
    }
    command
}

struct Done {
    code: i32,
    stderr: String,
}

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Done {
    let mut command = command(dir, args);
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run slipway-deploy");
    Done {
        code: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The writes a whole run makes, in order, as the trace hook names them.
fn writes_of(dir: &Path, args: &[&str]) -> Vec<String> {
    let done = run(dir, args, &[("SLIPWAY_DEMO_TRACE_WRITES", "1")]);
    assert_eq!(done.code, 0, "the traced run succeeds: {}", done.stderr);
    done.stderr
        .lines()
        .filter_map(|line| line.strip_prefix("slipway-demo: cluster write "))
        .map(|rest| {
            rest.split_once(": ")
                .map_or(rest, |(_, what)| what)
                .to_owned()
        })
        .collect()
}

/// Starts `args` stalled after write `n` and returns once it stalls there.
fn stalled(dir: &Path, args: &[&str], n: usize) -> (Child, String) {
    let mut child = command(dir, args)
        .env("SLIPWAY_DEMO_STALL_AFTER_WRITE", n.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn slipway-deploy");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let marker = format!("slipway-demo: stalled after cluster write {n}: ");
    let mut seen = String::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(what) = line.strip_prefix(&marker) {
                    let what = what.to_owned();
                    // Keep draining stderr so the child never blocks on a full pipe.
                    std::thread::spawn(move || for _ in lines.by_ref() {});
                    return (child, what);
                }
                seen.push_str(&line);
                seen.push('\n');
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the run ended before write {n}:\n{seen}");
            }
        }
    }
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args(["-s", name, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -s {name}");
}

fn release() -> ReleaseId {
    ReleaseId::parse(RELEASE).expect("release")
}

/// What serves the release in the saved world: the active colour's image after a blue-green
/// switch, else stable's.
async fn serving(dir: &Path) -> String {
    let world = slipway_demo::persist::open(dir).expect("saved world");
    bluegreen::serving(world.cluster.as_ref(), &release(), SERVICE)
        .await
        .expect("serving")
        .spec
        .image
}

async fn leftovers(dir: &Path) -> Vec<String> {
    let world = slipway_demo::persist::open(dir).expect("saved world");
    slipway_k8s_rollout::cleanup::managed_objects(
        world.cluster.as_ref(),
        &release(),
        SERVICE,
        &TrafficRouting::ReplicaRatio,
        Some(&BlueGreenConfig::new(SERVICE)),
    )
    .await
    .expect("managed objects")
    .iter()
    .map(ToString::to_string)
    .collect()
}

async fn history(dir: &Path) -> Vec<slipway_core::ReleaseRecord> {
    let world = slipway_demo::persist::open(dir).expect("saved world");
    world
        .cluster
        .release_history(&release())
        .await
        .expect("history")
}

/// A new world in `dir`: `status` creates it and changes nothing.
fn new_world(dir: &Path) {
    let done = run(dir, &["status", "--demo", "happy", "--state", "state"], &[]);
    assert_eq!(done.code, 0, "{}", done.stderr);
}

async fn signal_mid_canary(name: &str, code: i32) {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["run", "--demo", "happy", "--state", "state"];
    // Where the canary is ready and being analysed: the write of its CanaryStep Event.
    let trace = tempfile::tempdir().expect("tempdir");
    new_world(trace.path());
    let writes = writes_of(trace.path(), &args);
    let step = writes
        .iter()
        .position(|what| what.contains("CanaryStep"))
        .expect("a canary step")
        + 1;

    new_world(dir.path());
    let state = dir.path().join("state");
    let before = serving(&state).await;
    let (mut child, what) = stalled(dir.path(), &args, step);
    assert!(what.contains("CanaryStep"), "{what}");
    let canary = slipway_demo::persist::open(&state).expect("world");
    assert!(
        canary
            .cluster
            .deployment_names("ml-serving")
            .contains(&"iris-classifier-canary".to_owned()),
        "the canary runs when the signal comes"
    );
    let sent = Instant::now();
    signal(&child, name);
    let status = child.wait().expect("wait");
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(code), "{name} exits {code}");
    assert!(
        took < Duration::from_secs(7),
        "{name}: exited after {took:?}, over the 7 s a cancelled GitHub job allows"
    );

    assert_eq!(serving(&state).await, before, "stable unchanged");
    assert_eq!(
        leftovers(&state).await,
        Vec::<String>::new(),
        "no canary left"
    );
    let world = slipway_demo::persist::open(&state).expect("world");
    assert_eq!(
        world.cluster.lock_holder(&release()),
        None,
        "the lock is free"
    );
    let last = history(&state).await.pop().expect("a record");
    assert_eq!(last.outcome, Outcome::Cancelled, "{last:?}");
    assert!(
        last.reason.as_deref().is_some_and(|r| r.contains(name)),
        "{:?}",
        last.reason
    );
    let entries = FileAuditStore::new(&world.trail)
        .entries()
        .await
        .expect("trail");
    assert!(
        entries.iter().any(|entry| matches!(&entry.event,
            Event::Decision { stage, verdict, detail, .. }
                if stage == "run" && verdict == "cancelled" && detail.contains(name))),
        "the trail records the cancellation"
    );
    // The lock is really free: the next command takes it at once.
    let next = run(
        dir.path(),
        &[
            "abort",
            "--demo",
            "--state",
            "state",
            "--reason",
            "after the signal",
        ],
        &[],
    );
    assert_eq!(next.code, 0, "nothing left to abort: {}", next.stderr);
}

#[tokio::test]
async fn sigint_mid_canary_cleans_up_records_cancelled_and_exits_130() {
    signal_mid_canary("SIGINT", 130).await;
}

#[tokio::test]
async fn sigterm_mid_canary_cleans_up_records_cancelled_and_exits_143() {
    signal_mid_canary("SIGTERM", 143).await;
}

/// `kill -9` after write `n` of `args`, then recovery, then the invariants.
async fn kill_and_recover(args: &[&str], n: usize, what: &str, abort: bool, old: &str, new: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    new_world(dir.path());
    let state = dir.path().join("state");
    let (mut child, stalled_at) = stalled(dir.path(), args, n);
    assert_eq!(stalled_at, what, "the same run makes the same writes");
    child.kill().expect("kill -9");
    let _ = child.wait();
    // The killed runner's lease outlives it: wait until it expires, as a person would.
    slipway_demo::persist::let_time_pass(&state, Duration::from_secs(3600)).expect("time");
    let case = format!(
        "kill -9 after write {n} ({what}), then {}",
        if abort { "abort" } else { "re-run" }
    );

    let recovery = if abort {
        run(
            dir.path(),
            &[
                "abort",
                "--demo",
                "--state",
                "state",
                "--reason",
                "job killed",
            ],
            &[],
        )
    } else {
        run(dir.path(), args, &[])
    };
    let serving = serving(&state).await;
    assert!(
        serving == old || serving == new,
        "{case}: stable serves exactly the old or the new image, not {serving}"
    );
    if abort {
        assert!(
            recovery.code == 0 || recovery.code == 1,
            "{case}: abort exits 0 (nothing to do) or 1 (aborted or refused): {}",
            recovery.stderr
        );
        if serving == new {
            assert!(
                recovery.code == 0 || recovery.stderr.contains("slipway-rollback"),
                "{case}: abort refuses when the candidate serves, pointing to rollback: {}",
                recovery.stderr
            );
        }
    } else {
        assert_eq!(
            recovery.code, 0,
            "{case}: the re-run converges and promotes: {}",
            recovery.stderr
        );
        assert_eq!(serving, new, "{case}: the re-run promoted the candidate");
    }
    let leftovers = leftovers(&state).await;
    assert!(
        leftovers.is_empty(),
        "{case}: Slipway objects left: {leftovers:?}"
    );
    let history = history(&state).await;
    let last = history.last().expect("a record");
    assert_ne!(last.outcome, Outcome::InProgress, "{case}: {history:#?}");
    let current = history
        .iter()
        .rev()
        .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
        .expect("a promoted revision");
    let recorded = current.image.with_digest(current.digest.clone());
    assert_eq!(
        recorded.pinned().unwrap_or_default(),
        serving,
        "{case}: the newest promoted revision is what serves: {history:#?}"
    );
    let world = slipway_demo::persist::open(&state).expect("world");
    assert_eq!(
        world.cluster.lock_holder(&release()),
        None,
        "{case}: the lock is free"
    );
    // The MLflow alias follows what serves too (the story's last line names where it points).
    let alias = recovery
        .stderr
        .lines()
        .rev()
        .find(|line| line.starts_with("after:"))
        .and_then(|line| line.split("`production` → ").nth(1))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_owned);
    assert_eq!(
        alias.as_deref(),
        Some(current.model.to_string().as_str()),
        "{case}: the alias points at the serving revision's model: {}",
        recovery.stderr
    );
}

async fn kill_matrix(args: &[&str]) {
    let trace = tempfile::tempdir().expect("tempdir");
    new_world(trace.path());
    let old = serving(&trace.path().join("state")).await;
    let writes = writes_of(trace.path(), args);
    let new = serving(&trace.path().join("state")).await;
    assert_ne!(old, new, "the traced run promoted a new image");
    assert!(writes.len() >= 8, "at least 8 stop points: {writes:#?}");
    // Every stop point, each recovered both ways.
    for (idx, what) in writes.iter().enumerate() {
        kill_and_recover(args, idx + 1, what, true, &old, &new).await;
        kill_and_recover(args, idx + 1, what, false, &old, &new).await;
    }
}

#[tokio::test]
async fn kill_9_at_every_write_of_a_canary_then_abort_or_rerun_converges() {
    kill_matrix(&["run", "--demo", "happy", "--state", "state"]).await;
}

#[tokio::test]
async fn kill_9_at_every_write_of_a_blue_green_release_then_abort_or_rerun_converges() {
    kill_matrix(&[
        "run",
        "--demo",
        "happy",
        "--state",
        "state",
        "--strategy",
        "blue-green",
    ])
    .await;
}

#[tokio::test]
async fn kill_9_at_every_write_of_a_rolling_release_then_abort_or_rerun_converges() {
    kill_matrix(&[
        "run",
        "--demo",
        "happy",
        "--state",
        "state",
        "--strategy",
        "rolling",
    ])
    .await;
}

/// A runner killed mid-canary leaves its lease behind. `unlock` breaks it by the holder's exact
/// name once the holder has missed a renewal (a live holder renews every third of the time to
/// live), refusing a wrong name and a lock renewed too recently (unless `--force`); the break is
/// on the trail, and the next `abort` settles the release at once instead of after the lease
/// expires. Each step is a separate process on the saved world.
#[tokio::test]
async fn a_killed_runners_lock_is_broken_by_name_and_abort_settles_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["run", "--demo", "happy", "--state", "state"];
    let trace = tempfile::tempdir().expect("tempdir");
    new_world(trace.path());
    let step = writes_of(trace.path(), &args)
        .iter()
        .position(|what| what.contains("CanaryStep"))
        .expect("a canary step")
        + 1;
    new_world(dir.path());
    let state = dir.path().join("state");
    let before = serving(&state).await;
    let (mut child, _) = stalled(dir.path(), &args, step);
    child.kill().expect("kill -9");
    let _ = child.wait();
    let holder = slipway_demo::persist::open(&state)
        .expect("world")
        .cluster
        .lock_holder(&release())
        .expect("the dead runner's lease outlives it");
    let demo = ["--demo", "--state", "state"];
    let cmd = |extra: &[&str]| run(dir.path(), &[extra, &demo[..]].concat(), &[]);

    let locked = cmd(&["abort", "--reason", "runner lost"]);
    assert_eq!(locked.code, 2, "{}", locked.stderr);
    assert!(
        locked.stderr.contains(&format!("locked by `{holder}`")),
        "{}",
        locked.stderr
    );
    let wrong = cmd(&["unlock", "someone@else", "--reason", "runner lost"]);
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains(&format!("is locked by `{holder}`")),
        "{}",
        wrong.stderr
    );
    // Just killed: its lease was renewed moments ago, so it may be alive.
    let fresh = cmd(&["unlock", &holder, "--reason", "runner lost"]);
    assert_eq!(fresh.code, 1, "{}", fresh.stderr);
    assert!(
        fresh.stderr.contains("--force") && fresh.stderr.contains("counts as gone from"),
        "{}",
        fresh.stderr
    );

    let status = || {
        let output = command(dir.path(), &["status", "--demo", "--state", "state"])
            .output()
            .expect("status");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let held = status();
    assert!(
        held.contains(&format!("lock: held by {holder} until"))
            && !held.contains("missed a renewal"),
        "{held}"
    );
    // Ten minutes on: past a missed renewal (the demo's lease lives 20 min, renewed every 6 min
    // 40 s, plus a tenth), long before the lease expires.
    slipway_demo::persist::let_time_pass(&state, Duration::from_secs(10 * 60)).expect("time");
    let stale = status();
    assert!(
        stale.contains("missed a renewal")
            && stale.contains(&format!("slipway-deploy unlock '{holder}'")),
        "status points to unlock: {stale}"
    );
    assert_eq!(
        cmd(&["abort", "--reason", "runner lost"]).code,
        2,
        "the lease still blocks"
    );
    let unlocked = cmd(&["unlock", &holder, "--reason", "runner lost in job 4711"]);
    assert_eq!(unlocked.code, 0, "{}", unlocked.stderr);
    let aborted = cmd(&["abort", "--reason", "runner lost in job 4711"]);
    assert_eq!(aborted.code, 0, "{}", aborted.stderr);
    assert_eq!(serving(&state).await, before, "stable as it was");
    assert_eq!(
        leftovers(&state).await,
        Vec::<String>::new(),
        "no canary left"
    );
    assert_eq!(
        history(&state).await.pop().expect("record").outcome,
        Outcome::Aborted
    );
    let world = slipway_demo::persist::open(&state).expect("world");
    let entries = FileAuditStore::new(&world.trail)
        .entries()
        .await
        .expect("trail");
    assert!(
        entries.iter().any(|entry| matches!(&entry.event,
            Event::Decision { stage, verdict, detail, .. }
                if stage == "lock" && verdict == "broken"
                    && detail.contains(&holder) && detail.contains("runner lost in job 4711"))),
        "the trail records who broke which lock and why"
    );
    assert_eq!(
        world.cluster.lock_holder(&release()),
        None,
        "the lock is free"
    );
    let nothing = cmd(&["unlock", &holder, "--reason", "again"]);
    assert_eq!(nothing.code, 0, "{}", nothing.stderr);
}

/// `--force` breaks a lock its holder renewed moments ago (the person knows the job is gone).
#[tokio::test]
async fn unlock_force_breaks_a_fresh_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = ["run", "--demo", "happy", "--state", "state"];
    new_world(dir.path());
    let state = dir.path().join("state");
    let (mut child, _) = stalled(dir.path(), &args, 2);
    child.kill().expect("kill -9");
    let _ = child.wait();
    let holder = slipway_demo::persist::open(&state)
        .expect("world")
        .cluster
        .lock_holder(&release())
        .expect("lease");
    let forced = run(
        dir.path(),
        &[
            "unlock",
            &holder,
            "--force",
            "--reason",
            "job cancelled",
            "--demo",
            "--state",
            "state",
        ],
        &[],
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    let rerun = run(dir.path(), &args, &[]);
    assert_eq!(
        rerun.code, 0,
        "the re-run settles and releases: {}",
        rerun.stderr
    );
}
