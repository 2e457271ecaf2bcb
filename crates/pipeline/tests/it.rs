//! Pipeline tests over the in-memory backends: every scenario ends the way its story says, and
//! every stop leaves stable exactly as it was, with no canary left behind and the reason recorded.

use slipway_audit_log::{Event, verify};
use slipway_cli::config::Settings;
use slipway_cli::release::release_spec;
use slipway_core::Outcome;
use slipway_demo::scenario::{self, SCENARIOS, World};
use slipway_k8s_rollout::rollout::{self, CoarseSteps, TrafficRouting};
use slipway_k8s_rollout::{Cluster as _, IngressPath};
use slipway_mlflow::ModelRegistry as _;
use slipway_pipeline::{ReleaseSpec, Resume, RunOutcome, RunReport, StageEvent, StageStatus};

fn spec() -> ReleaseSpec {
    release_spec(&Settings::default(), None, None).expect("defaults are valid")
}

async fn world(name: &str, spec: &ReleaseSpec) -> World {
    scenario::build(name, spec).await.expect("known scenario")
}

async fn run(name: &str) -> (World, ReleaseSpec, RunReport, String) {
    let spec = spec();
    let world = world(name, &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let mut events = Vec::new();
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |event: &StageEvent| {
        events.push(event.clone())
    })
    .await;
    assert_eq!(
        report.stages, events,
        "the observer sees every event the report holds, in order"
    );
    (world, spec, report, stable_before)
}

/// The colour Deployment the Service `service` (the release's, or its preview) selects.
async fn selected_colour(
    world: &World,
    spec: &ReleaseSpec,
    service: &str,
) -> slipway_k8s_rollout::DeploymentState {
    let selector = world
        .cluster
        .service_selector(&spec.release.namespace, service)
        .await
        .expect("read")
        .expect("service");
    let colour = selector
        .get(slipway_k8s_rollout::TRACK_LABEL)
        .cloned()
        .expect("the Service selects a colour");
    world
        .cluster
        .deployment(
            &spec.release.namespace,
            &format!("{}-{colour}", spec.release.name),
        )
        .await
        .expect("read")
        .expect("colour")
}

async fn stable_image(world: &World, spec: &ReleaseSpec) -> String {
    let state = world
        .cluster
        .deployment(&spec.release.namespace, &spec.release.name)
        .await
        .expect("read")
        .expect("stable exists");
    state.spec.image
}

async fn canary_exists(world: &World, spec: &ReleaseSpec) -> bool {
    let name = format!("{}-canary", spec.release.name);
    world
        .cluster
        .deployment(&spec.release.namespace, &name)
        .await
        .expect("read")
        .is_some()
}

async fn serving_version(world: &World, spec: &ReleaseSpec) -> u64 {
    let alias =
        slipway_core::ModelRef::parse(&format!("{}@{}", spec.model.name, spec.serving_alias))
            .expect("ref");
    world
        .models
        .resolve(&alias)
        .await
        .expect("alias")
        .version
        .version
}

#[tokio::test]
async fn happy_release_is_promoted_and_everything_points_at_it() {
    let (world, spec, report, stable_before) = run("happy").await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    let digest = report.digest.clone().expect("digest resolved");
    let stable_after = stable_image(&world, &spec).await;
    assert_ne!(stable_after, stable_before);
    assert!(
        stable_after.ends_with(&digest.to_string()),
        "stable runs the pinned candidate: {stable_after}"
    );
    assert!(!canary_exists(&world, &spec).await);
    assert_eq!(
        serving_version(&world, &spec).await,
        3,
        "alias moved to the candidate"
    );
    assert_eq!(
        report.analysis.len(),
        spec.steps.len(),
        "one analysis per canary step"
    );
    assert!(report.gates.passed());

    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(history.len(), 3, "two earlier releases and this one");
    assert_eq!(
        (history[2].revision, history[2].outcome),
        (3, Outcome::Promoted)
    );

    let entries = world.backends.audit.entries().await.expect("trail");
    assert!(verify(&entries, None).is_empty(), "the trail verifies");
    assert!(entries.iter().any(|entry| matches!(&entry.event, Event::Release(record) if record.outcome == Outcome::Promoted)));
    let stages: Vec<&str> = entries
        .iter()
        .filter_map(|entry| match &entry.event {
            Event::Decision { stage, .. } => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        stages,
        [
            "deploy-window",
            "model-gate",
            "scan-gate",
            "sign",
            "verify",
            "analysis",
            "analysis",
            "analysis",
            "approval",
            "run"
        ]
    );
    let sent: Vec<String> = world
        .notifier
        .sent()
        .into_iter()
        .map(|note| note.event)
        .collect();
    assert_eq!(sent, ["started", "promoted"]);
}

#[tokio::test]
async fn every_stop_leaves_stable_untouched_and_no_canary() {
    for (name, _, code) in SCENARIOS.iter().filter(|(_, _, code)| *code != 0) {
        let (world, spec, report, stable_before) = run(name).await;
        assert_eq!(
            report.outcome,
            RunOutcome::Rejected,
            "{name}: {}",
            report.reason
        );
        assert_eq!(*code, 1);
        assert_eq!(
            stable_image(&world, &spec).await,
            stable_before,
            "{name}: stable image changed"
        );
        let stable = world
            .cluster
            .deployment(&spec.release.namespace, &spec.release.name)
            .await
            .expect("read")
            .expect("stable");
        assert_eq!(stable.spec.replicas, 9, "{name}: stable scaled");
        assert!(
            !canary_exists(&world, &spec).await,
            "{name}: canary left behind"
        );
        assert_eq!(
            serving_version(&world, &spec).await,
            2,
            "{name}: alias moved"
        );
        assert!(!report.reason.is_empty());
        let entries = world.backends.audit.entries().await.expect("trail");
        assert!(verify(&entries, None).is_empty(), "{name}: trail broken");
        assert!(
            entries.iter().any(|entry| matches!(&entry.event, Event::Decision { verdict, .. } if verdict != "pass")
                || matches!(&entry.event, Event::Release(record) if record.outcome == Outcome::Aborted)),
            "{name}: the reason is recorded"
        );
        // The lock is released: a second run may start.
        world
            .cluster
            .acquire_lock(
                &spec.release,
                "next-run",
                std::time::Duration::from_secs(60),
            )
            .await
            .expect("lock free");
    }
}

#[tokio::test]
async fn stops_say_why() {
    for (name, expected) in [
        ("bad-canary", "canary analysis failed: `error-rate` failed"),
        ("bad-model", "model-gate said no"),
        ("vulnerable-image", "scan-gate said no"),
        ("crashloop", "CrashLoopBackOff"),
        ("prometheus-outage", "inconclusive"),
    ] {
        let (_, _, report, _) = run(name).await;
        assert!(
            report.reason.contains(expected),
            "{name}: `{}` should contain `{expected}`",
            report.reason
        );
    }
}

#[tokio::test]
async fn gate_stops_change_nothing_in_the_cluster() {
    for name in ["bad-model", "vulnerable-image"] {
        let (world, spec, report, _) = run(name).await;
        assert_eq!(
            report.revision, None,
            "{name}: no revision before the cluster is touched"
        );
        assert_eq!(
            world
                .cluster
                .release_history(&spec.release)
                .await
                .expect("history")
                .len(),
            2,
            "{name}: only the earlier releases"
        );
        // No workload changed, but the refusal is an Event on the Deployment.
        let reasons: Vec<String> = world
            .cluster
            .events()
            .into_iter()
            .map(|event| event.reason)
            .collect();
        assert!(
            !reasons.iter().any(|reason| reason.starts_with("Canary")),
            "{name}: {reasons:?}"
        );
        assert!(
            reasons.iter().any(|reason| reason.ends_with("GateFail")),
            "{name}: {reasons:?}"
        );
        assert!(
            reasons.contains(&"RunRejected".to_owned()),
            "{name}: {reasons:?}"
        );
    }
}

#[tokio::test]
async fn plan_changes_nothing_anywhere() {
    let spec = spec();
    let world = world("happy", &spec).await;
    let trail_before = world.backends.audit.entries().await.expect("trail");
    let report = slipway_pipeline::plan(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(
        report.outcome,
        RunOutcome::WouldProceed,
        "{}",
        report.reason
    );
    assert_eq!(
        world.backends.audit.entries().await.expect("trail"),
        trail_before
    );
    assert!(!canary_exists(&world, &spec).await);
    assert!(world.cluster.events().is_empty());
    assert_eq!(serving_version(&world, &spec).await, 2);
    let digest = report.digest.expect("resolved");
    let signatures = world
        .backends
        .registry
        .get_artifact(&spec.image, &digest.cosign_tag("sig"))
        .await
        .expect("read");
    assert_eq!(signatures, None, "plan does not sign");
    // The lock was never taken.
    world
        .cluster
        .acquire_lock(&spec.release, "someone", std::time::Duration::from_secs(60))
        .await
        .expect("free");
}

#[tokio::test]
async fn a_held_lock_refuses_the_run_naming_the_holder() {
    let spec = spec();
    let world = world("happy", &spec).await;
    world
        .cluster
        .acquire_lock(
            &spec.release,
            "ci-run-41",
            std::time::Duration::from_secs(3600),
        )
        .await
        .expect("lock");
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert!(
        report.reason.contains("locked by `ci-run-41`"),
        "{}",
        report.reason
    );
    assert!(!canary_exists(&world, &spec).await);
}

#[tokio::test]
async fn without_pause_a_missing_approval_aborts() {
    let mut spec = spec();
    spec.pause_for_approval = false;
    let world = world("unapproved", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Rejected);
    assert!(
        report.reason.contains("approval said no"),
        "{}",
        report.reason
    );
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    assert!(!canary_exists(&world, &spec).await);
}

#[tokio::test]
async fn paused_release_is_approved_by_someone_else_then_promoted() {
    let spec = spec();
    assert!(spec.pause_for_approval, "pausing is the default");
    let world = world("unapproved", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Paused, "{}", report.reason);
    assert!(
        canary_exists(&world, &spec).await,
        "the healthy canary keeps running"
    );
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(
        history.last().map(|r| (r.revision, r.outcome)),
        Some((3, Outcome::Paused))
    );

    // A second `run` cannot start while it waits? It can: the lock was released. But promote
    // first needs an approval, and the one who started it cannot give it.
    let refused = slipway_pipeline::approve(&spec, &world.backends, &spec.actor, "lgtm").await;
    assert!(
        matches!(refused, Err(slipway_pipeline::ApproveError::Refused(_))),
        "{refused:?}"
    );
    let early = slipway_pipeline::resume(
        &spec,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(
        early.outcome,
        RunOutcome::Rejected,
        "no approval yet: {}",
        early.reason
    );
    assert!(early.reason.contains("stays paused"), "{}", early.reason);
    assert!(
        canary_exists(&world, &spec).await,
        "a refused promotion keeps the release paused"
    );
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    let status = slipway_pipeline::status(&spec, &world.backends)
        .await
        .expect("status");
    assert!(status.paused.is_some());
}

#[tokio::test]
async fn approve_then_promote_and_abort_paths() {
    let spec = spec();
    // Promote path.
    let world = world("unapproved", &spec).await;
    let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(paused.outcome, RunOutcome::Paused);
    let approval = slipway_pipeline::approve(
        &spec,
        &world.backends,
        "sam.reviewer",
        "dashboards reviewed",
    )
    .await
    .expect("approved");
    assert_eq!(
        Some(&approval.digest),
        paused.digest.as_ref(),
        "bound to the paused digest"
    );
    let status = slipway_pipeline::status(&spec, &world.backends)
        .await
        .expect("status");
    assert_eq!(status.approvals.len(), 1);
    assert!(
        status
            .to_text()
            .contains("waits for approval: 1 of 1 given"),
        "{}",
        status.to_text()
    );
    let promoted = slipway_pipeline::resume(
        &spec,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(
        promoted.outcome,
        RunOutcome::Promoted,
        "{}",
        promoted.reason
    );
    assert!(
        stable_image(&world, &spec)
            .await
            .ends_with(&paused.digest.expect("digest").to_string())
    );
    assert!(!canary_exists(&world, &spec).await);
    assert_eq!(serving_version(&world, &spec).await, 3);
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(
        history.last().map(|r| (r.revision, r.outcome)),
        Some((4, Outcome::Promoted))
    );
    let nothing = slipway_pipeline::resume(
        &spec,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(nothing.outcome, RunOutcome::Failed);
    assert!(
        nothing.reason.contains("no release is paused"),
        "{}",
        nothing.reason
    );

    // Abort path.
    let world = build(&spec).await;
    let stable_before = stable_image(&world, &spec).await;
    slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    let aborted = slipway_pipeline::resume(
        &spec,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Abort("model card incomplete".into()),
    )
    .await;
    assert_eq!(aborted.outcome, RunOutcome::Aborted);
    assert!(
        aborted.reason.contains("model card incomplete"),
        "{}",
        aborted.reason
    );
    assert!(!canary_exists(&world, &spec).await);
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    assert_eq!(serving_version(&world, &spec).await, 2);
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(history.last().map(|r| r.outcome), Some(Outcome::Aborted));
}

async fn build(spec: &ReleaseSpec) -> World {
    world("unapproved", spec).await
}

#[tokio::test]
async fn approvals_must_come_from_someone_else() {
    let mut spec = spec();
    spec.approval = None;
    let world = world("unapproved", &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Paused);
    // The same world, approved on the command line by someone other than the actor, promotes.
    let mut approved = spec.clone();
    approved.approval = Some(slipway_pipeline::GivenApproval {
        approver: "sam.reviewer".into(),
        reason: "looked at the canary".into(),
    });
    let world = build(&approved).await;
    let report = slipway_pipeline::run(&approved, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    // Self-approval does not count.
    let mut selfish = spec.clone();
    selfish.approval = Some(slipway_pipeline::GivenApproval {
        approver: selfish.actor.clone(),
        reason: "trust me".into(),
    });
    let world = build(&selfish).await;
    let report = slipway_pipeline::run(&selfish, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(
        report.outcome,
        RunOutcome::Paused,
        "self-approval does not count: {}",
        report.reason
    );
}

/// A model server on loopback that accepts one admin token and records what it was asked.
async fn model_server(
    token: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/admin/reload",
        listener.local_addr().expect("addr")
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen_task = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = vec![0u8; 8192];
            let n = socket.read(&mut buffer).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let authorised = request
                .lines()
                .any(|line| line.eq_ignore_ascii_case(&format!("x-admin-token: {token}")));
            seen_task.lock().expect("lock").push(
                request
                    .split("\r\n\r\n")
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned(),
            );
            let status = if authorised {
                "200 OK"
            } else {
                "401 Unauthorized"
            };
            let _ = socket
                .write_all(
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        }
    });
    (url, seen)
}

#[tokio::test]
async fn promotion_reloads_the_model_server_with_the_admin_token_from_its_secret() {
    let (url, seen) = model_server("demo-admin-token").await;
    let mut spec = spec();
    spec.reload = Some(slipway_pipeline::ReloadSpec {
        url,
        secret_name: format!("{}-admin", spec.release.name),
        secret_key: "admin-token".into(),
    });
    let world = world("happy", &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    let bodies = seen.lock().expect("lock").clone();
    assert_eq!(bodies, [r#"{"model":"iris-random-forest","version":"3"}"#]);
    let text = serde_json::to_string(&report).expect("json");
    assert!(
        !text.contains("demo-admin-token"),
        "the token never reaches the report"
    );
}

#[tokio::test]
async fn a_refused_token_fails_the_release_after_recording_the_promotion() {
    let (url, _) = model_server("another-token").await;
    let mut spec = spec();
    spec.reload = Some(slipway_pipeline::ReloadSpec {
        url,
        secret_name: format!("{}-admin", spec.release.name),
        secret_key: "admin-token".into(),
    });
    let world = world("happy", &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert!(
        report.reason.contains(
            "refused the admin token from Secret `iris-classifier-admin` key `admin-token`"
        ),
        "{}",
        report.reason
    );
    assert!(!report.reason.contains("demo-admin-token"));
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(
        history.last().map(|record| record.outcome),
        Some(Outcome::Promoted),
        "what runs is recorded"
    );
}

#[tokio::test]
async fn blue_green_switches_the_service_and_keeps_the_users_deployment() {
    let mut spec = spec();
    spec.strategy = slipway_core::Strategy::BlueGreen;
    let world = world("happy", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    let colour = selected_colour(&world, &spec, &spec.service).await;
    assert!(
        colour
            .spec
            .image
            .ends_with(&report.digest.expect("digest").to_string()),
        "{}",
        colour.spec.image
    );
    assert_eq!(
        stable_image(&world, &spec).await,
        stable_before,
        "the user's Deployment is never changed by blue-green"
    );
    assert_eq!(serving_version(&world, &spec).await, 3);
}

#[tokio::test]
async fn blue_green_failure_leaves_the_active_colour_serving() {
    let mut spec = spec();
    spec.strategy = slipway_core::Strategy::BlueGreen;
    let world = world("crashloop", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Rejected, "{}", report.reason);
    assert!(
        report.reason.contains("standby colour unhealthy"),
        "{}",
        report.reason
    );
    let selector = world
        .cluster
        .service_selector(&spec.release.namespace, &spec.service)
        .await
        .expect("read")
        .expect("service");
    let active = selector
        .get(slipway_k8s_rollout::TRACK_LABEL)
        .cloned()
        .unwrap_or_default();
    if !active.is_empty() {
        let colour = world
            .cluster
            .deployment(
                &spec.release.namespace,
                &format!("{}-{active}", spec.release.name),
            )
            .await
            .expect("read")
            .expect("active colour");
        assert_eq!(
            colour.spec.image, stable_before,
            "the active colour still runs what served before"
        );
    }
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    assert_eq!(serving_version(&world, &spec).await, 2);
}

#[tokio::test]
async fn rolling_updates_stable_and_restores_it_when_pods_crash() {
    let mut spec = spec();
    spec.strategy = slipway_core::Strategy::Rolling;
    let happy = world("happy", &spec).await;
    let report = slipway_pipeline::run(&spec, &happy.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    assert!(
        stable_image(&happy, &spec)
            .await
            .ends_with(&report.digest.expect("digest").to_string())
    );

    let world = world("crashloop", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Rejected, "{}", report.reason);
    assert_eq!(
        stable_image(&world, &spec).await,
        stable_before,
        "previous image restored"
    );
    assert_eq!(serving_version(&world, &spec).await, 2);
}

#[tokio::test]
async fn a_missing_admin_token_secret_stops_the_run_in_preflight() {
    let mut spec = spec();
    spec.reload = Some(slipway_pipeline::ReloadSpec {
        url: "http://127.0.0.1:9/admin/reload".into(),
        secret_name: "no-such-secret".into(),
        secret_key: "admin-token".into(),
    });
    let world = world("happy", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed);
    assert!(
        report.reason.contains("admin token is missing")
            && report.reason.contains("no-such-secret"),
        "{}",
        report.reason
    );
    assert_eq!(report.revision, None, "nothing changed");
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    assert!(!canary_exists(&world, &spec).await);
}

/// The user's Ingress for the NGINX tests: `/` on `iris.example.com` to the release's Service,
/// `/docs` to another Service.
fn seed_ingress(world: &World, spec: &ReleaseSpec) -> Vec<IngressPath> {
    let paths = vec![
        IngressPath {
            host: "iris.example.com".into(),
            path: "/".into(),
            service: spec.service.clone(),
        },
        IngressPath {
            host: "iris.example.com".into(),
            path: "/docs".into(),
            service: "docs".into(),
        },
    ];
    world
        .cluster
        .seed_ingress(&spec.release.namespace, "iris-web", paths.clone());
    paths
}

fn nginx_spec() -> ReleaseSpec {
    ReleaseSpec {
        traffic: TrafficRouting::NginxIngress {
            ingress: "iris-web".into(),
        },
        ..spec()
    }
}

#[tokio::test]
async fn nginx_canary_gets_exact_weights_and_promote_or_abort_remove_its_routing() {
    for (name, outcome, weights) in [
        (
            "happy",
            RunOutcome::Promoted,
            vec![Some(10), Some(25), Some(50)],
        ),
        ("bad-canary", RunOutcome::Rejected, vec![Some(10)]),
    ] {
        let spec = nginx_spec();
        let world = world(name, &spec).await;
        let namespace = spec.release.namespace.clone();
        let users_ingress = seed_ingress(&world, &spec);
        let stable_before = world
            .cluster
            .deployment(&namespace, &spec.release.name)
            .await
            .expect("read");
        let canary_ingress = "iris-web-canary";
        let canary_service = format!("{}-canary", spec.service);
        // At each step, once the canary is ready: the canary Ingress's weight, and which
        // Deployments' pods sit behind the user's Service and behind the canary Service.
        let mut seen = Vec::new();
        let report = slipway_pipeline::run(&spec, &world.backends, &mut |event: &StageEvent| {
            if event.stage == "canary" && event.status == StageStatus::Pass {
                let behind = |service: &str| -> Vec<String> {
                    world
                        .cluster
                        .endpoints(&namespace, service)
                        .into_iter()
                        .map(|(deployment, _)| deployment)
                        .collect()
                };
                seen.push((
                    world
                        .cluster
                        .ingress(&namespace, canary_ingress)
                        .and_then(|ingress| ingress.canary_weight()),
                    behind(&spec.service),
                    behind(&canary_service),
                    event.message.clone(),
                ));
            }
        })
        .await;
        assert_eq!(report.outcome, outcome, "{name}: {}", report.reason);
        let canary_name = format!("{}-canary", spec.release.name);
        assert_eq!(
            seen.iter().map(|(weight, ..)| *weight).collect::<Vec<_>>(),
            weights,
            "{name}: the canary Ingress's weight at each step"
        );
        for (weight, stable_side, canary_side, message) in &seen {
            assert_eq!(
                stable_side,
                std::slice::from_ref(&spec.release.name),
                "{name}: canary pods stay out of the user's Service"
            );
            assert_eq!(canary_side, std::slice::from_ref(&canary_name), "{name}");
            let percent = weight.expect("weight");
            assert!(
                message.contains(&format!("exactly {percent}% of the requests")),
                "{name}: {message}"
            );
        }
        // Promote and abort both leave only the user's objects.
        assert_eq!(
            world.cluster.ingress_names(&namespace),
            ["iris-web"],
            "{name}"
        );
        let users = world.cluster.ingress(&namespace, "iris-web").expect("kept");
        assert_eq!(
            users.paths, users_ingress,
            "{name}: the user's Ingress untouched"
        );
        assert!(users.annotations.is_empty(), "{name}");
        assert_eq!(
            world.cluster.service_names(&namespace),
            std::slice::from_ref(&spec.service),
            "{name}: canary Service removed"
        );
        assert!(
            !canary_exists(&world, &spec).await,
            "{name}: canary removed"
        );
        let stable_after = world
            .cluster
            .deployment(&namespace, &spec.release.name)
            .await
            .expect("read");
        if outcome == RunOutcome::Promoted {
            let digest = report.digest.clone().expect("digest");
            let image = stable_after.expect("stable").spec.image;
            assert!(image.ends_with(&digest.to_string()), "{image}");
        } else {
            assert_eq!(stable_after, stable_before, "{name}: stable untouched");
        }
    }
}

/// The user's HTTPRoute for the Gateway API tests: `/predict` to the release's Service, `/docs`
/// (with a filter of its own) to another Service.
fn seed_route(world: &World, spec: &ReleaseSpec) -> serde_json::Value {
    let rules = serde_json::json!([
        { "matches": [{ "path": { "type": "PathPrefix", "value": "/predict" } }],
          "backendRefs": [{ "name": spec.service, "port": 8080 }] },
        { "matches": [{ "path": { "type": "PathPrefix", "value": "/docs" } }],
          "filters": [{ "type": "RequestHeaderModifier", "requestHeaderModifier": { "set": [{ "name": "x-docs", "value": "1" }] } }],
          "backendRefs": [{ "name": "docs", "port": 80 }] }
    ]);
    world
        .cluster
        .seed_http_route(&spec.release.namespace, "iris-route", rules.clone());
    rules
}

fn gateway_spec() -> ReleaseSpec {
    ReleaseSpec {
        traffic: TrafficRouting::GatewayApi {
            route: "iris-route".into(),
        },
        ..spec()
    }
}

/// Gateway API weights: at each step the user's HTTPRoute sends exactly the step's share to the
/// canary Service (and the rest to stable), the canary pods stay out of the user's Service, and
/// promotion, an abort and a cancel each give the route back exactly as it was (annotation
/// gone) and remove the canary Service.
#[tokio::test]
async fn gateway_api_canary_gets_exact_weights_and_every_ending_restores_the_route() {
    for (name, outcome) in [
        ("happy", RunOutcome::Promoted),
        ("bad-canary", RunOutcome::Rejected),
        ("cancelled", RunOutcome::Cancelled),
    ] {
        let spec = gateway_spec();
        let world = world(if name == "cancelled" { "happy" } else { name }, &spec).await;
        let namespace = spec.release.namespace.clone();
        let users_rules = seed_route(&world, &spec);
        let stable_before = stable_image(&world, &spec).await;
        let canary_service = format!("{}-canary", spec.service);
        let mut seen = Vec::new();
        let interrupt = world.backends.interrupt.clone();
        let report = slipway_pipeline::run(&spec, &world.backends, &mut |event: &StageEvent| {
            if event.stage == "canary" && event.status == StageStatus::Pass {
                let (rules, original) = world
                    .cluster
                    .http_route_rules(&namespace, "iris-route")
                    .expect("route");
                seen.push((
                    slipway_k8s_rollout::gateway::backend_weights(&rules),
                    original.is_some(),
                    world.cluster.endpoints(&namespace, &spec.service).len(),
                    world.cluster.endpoints(&namespace, &canary_service),
                    event.message.clone(),
                ));
                if name == "cancelled" {
                    interrupt.trigger(slipway_pipeline::Interruption::Signal {
                        name: "SIGTERM".into(),
                        number: 15,
                    });
                }
            }
        })
        .await;
        assert_eq!(report.outcome, outcome, "{name}: {}", report.reason);
        assert!(!seen.is_empty(), "{name}: the canary ran");
        for ((weights, annotated, stable_side, canary_side, message), step) in
            seen.iter().zip(&spec.steps)
        {
            assert_eq!(
                weights,
                &[
                    (0, spec.service.clone(), u64::from(100 - step)),
                    (0, canary_service.clone(), u64::from(*step)),
                    (1, "docs".to_owned(), 1),
                ],
                "{name}"
            );
            assert!(
                annotated,
                "{name}: the original backends are kept on the route"
            );
            assert_eq!(
                *stable_side, 1,
                "{name}: only stable behind the user's Service"
            );
            assert_eq!(
                canary_side.len(),
                1,
                "{name}: the canary behind its Service"
            );
            assert!(
                message.contains(&format!("HTTPRoute iris-route sends exactly {step}%")),
                "{name}: {message}"
            );
        }
        let (rules, original) = world
            .cluster
            .http_route_rules(&namespace, "iris-route")
            .expect("route kept");
        assert_eq!(rules, users_rules, "{name}: the route is back as it was");
        assert_eq!(original, None, "{name}: annotation removed");
        assert_eq!(
            world.cluster.service_names(&namespace),
            std::slice::from_ref(&spec.service),
            "{name}: canary Service removed"
        );
        assert!(!canary_exists(&world, &spec).await, "{name}");
        if outcome != RunOutcome::Promoted {
            assert_eq!(stable_image(&world, &spec).await, stable_before, "{name}");
        }
    }
}

/// A release paused at the approval gate keeps the route weighted; aborting it and rolling it
/// back each give the route back as it was.
#[tokio::test]
async fn a_paused_gateway_api_release_restores_the_route_on_abort_and_rollback() {
    for ending in ["abort", "rollback"] {
        let spec = gateway_spec();
        let world = world("unapproved", &spec).await;
        let namespace = spec.release.namespace.clone();
        let users_rules = seed_route(&world, &spec);
        let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
        assert_eq!(paused.outcome, RunOutcome::Paused, "{}", paused.reason);
        let (rules, original) = world
            .cluster
            .http_route_rules(&namespace, "iris-route")
            .expect("route");
        assert_ne!(rules, users_rules, "{ending}: weighted while paused");
        assert!(original.is_some(), "{ending}");
        let report = if ending == "abort" {
            slipway_pipeline::resume(
                &spec,
                &world.backends,
                &mut |_: &StageEvent| {},
                Resume::Abort("not today".into()),
            )
            .await
        } else {
            let rollback = slipway_pipeline::RollbackSpec {
                release: spec.release.clone(),
                target: slipway_pipeline::RollbackTarget::Previous,
                reason: "the model card was wrong".into(),
                emergency: true,
                actor: spec.actor.clone(),
                serving_alias: spec.serving_alias.clone(),
                progress_deadline: spec.progress_deadline,
                history_limit: spec.history_limit,
                policy: spec.policy.clone(),
                service: spec.service.clone(),
                traffic: spec.traffic.clone(),
            };
            slipway_pipeline::rollback(&rollback, &world.backends, &mut |_: &StageEvent| {}).await
        };
        assert!(
            matches!(report.outcome, RunOutcome::Aborted | RunOutcome::RolledBack),
            "{ending}: {:?} {}",
            report.outcome,
            report.reason
        );
        assert_eq!(
            world.cluster.http_route_rules(&namespace, "iris-route"),
            Some((users_rules, None)),
            "{ending}"
        );
        assert_eq!(
            world.cluster.service_names(&namespace),
            std::slice::from_ref(&spec.service),
            "{ending}"
        );
    }
}

/// A run killed while the route carries the canary (the annotation and the weights on it) is
/// settled by the next command: the route goes back to the user's backends.
#[tokio::test]
async fn a_killed_gateway_api_run_leaves_a_route_the_next_command_restores() {
    let spec = gateway_spec();
    let world = world("happy", &spec).await;
    let namespace = spec.release.namespace.clone();
    let users_rules = seed_route(&world, &spec);
    rollout::set_canary(
        world.cluster.as_ref(),
        world.backends.clock.as_ref(),
        &spec.release,
        "registry.local/iris@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        10,
        spec.progress_deadline,
        Some(&spec.service),
    )
    .await
    .expect("canary");
    rollout::set_traffic_weight(
        world.cluster.as_ref(),
        &spec.release,
        &spec.service,
        &spec.traffic,
        10,
        false,
    )
    .await
    .expect("weighted");
    assert_ne!(
        world
            .cluster
            .http_route_rules(&namespace, "iris-route")
            .map(|(rules, _)| rules),
        Some(users_rules.clone())
    );
    let removed = slipway_k8s_rollout::cleanup::remove_managed(
        world.cluster.as_ref(),
        &spec.release,
        &spec.service,
        &spec.traffic,
        None,
    )
    .await
    .expect("cleanup");
    assert_eq!(
        removed.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            format!("HTTPRoute/{namespace}/iris-route"),
            format!("Service/{namespace}/{}-canary", spec.service),
            format!("Deployment/{namespace}/{}-canary", spec.release.name),
        ]
    );
    assert_eq!(
        world.cluster.http_route_rules(&namespace, "iris-route"),
        Some((users_rules, None))
    );
}

#[tokio::test]
async fn nginx_canary_without_the_users_ingress_stops_and_cleans_up() {
    let spec = nginx_spec();
    let world = world("happy", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("Ingress `") && report.reason.contains("/iris-web` not found"),
        "{}",
        report.reason
    );
    assert!(!canary_exists(&world, &spec).await);
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    assert_eq!(
        world.cluster.service_names(&spec.release.namespace),
        std::slice::from_ref(&spec.service)
    );
}

#[tokio::test]
async fn a_rollback_while_an_nginx_canary_is_paused_removes_its_ingress_and_service() {
    let spec = nginx_spec();
    let world = world("unapproved", &spec).await;
    seed_ingress(&world, &spec);
    let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(paused.outcome, RunOutcome::Paused, "{}", paused.reason);
    let namespace = spec.release.namespace.clone();
    assert!(
        world
            .cluster
            .ingress(&namespace, "iris-web-canary")
            .is_some(),
        "the paused canary has its Ingress"
    );
    let rollback = slipway_pipeline::RollbackSpec {
        release: spec.release.clone(),
        target: slipway_pipeline::RollbackTarget::Previous,
        reason: "the model card was wrong".into(),
        emergency: true,
        actor: spec.actor.clone(),
        serving_alias: spec.serving_alias.clone(),
        progress_deadline: spec.progress_deadline,
        history_limit: spec.history_limit,
        policy: spec.policy.clone(),
        service: spec.service.clone(),
        traffic: spec.traffic.clone(),
    };
    let report =
        slipway_pipeline::rollback(&rollback, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::RolledBack, "{}", report.reason);
    assert!(
        world
            .cluster
            .ingress(&namespace, "iris-web-canary")
            .is_none(),
        "canary Ingress removed"
    );
    assert!(
        !world
            .cluster
            .service_names(&namespace)
            .contains(&format!("{}-canary", spec.service)),
        "canary Service removed"
    );
    assert!(!canary_exists(&world, &spec).await);
}

#[tokio::test]
async fn after_blue_green_the_watch_guards_the_active_colour_and_rollback_switches_back() {
    let mut spec = spec();
    spec.strategy = slipway_core::Strategy::BlueGreen;
    let world = world("happy", &spec).await;
    let stable_before = stable_image(&world, &spec).await;
    let released = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(
        released.outcome,
        RunOutcome::Promoted,
        "{}",
        released.reason
    );
    let namespace = spec.release.namespace.clone();
    let active = |world: &World| {
        let cluster = world.cluster.clone();
        let namespace = namespace.clone();
        let service = spec.service.clone();
        async move {
            let selector = cluster
                .service_selector(&namespace, &service)
                .await
                .expect("read")
                .expect("service");
            selector
                .get(slipway_k8s_rollout::TRACK_LABEL)
                .cloned()
                .expect("a colour")
        }
    };
    let after_release = active(&world).await;

    // The watch finds the active colour serving the promoted digest (no "cluster and history
    // disagree" because the user's Deployment still runs the old image).
    let config = slipway_pipeline::watch::WatchConfig {
        duration: std::time::Duration::from_secs(120),
        ..slipway_pipeline::watch::WatchConfig::default()
    };
    let watch = slipway_pipeline::watch::WatchSpec::new(&spec, &config).expect("watch spec");
    let guarded =
        slipway_pipeline::watch::watch(&watch, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(guarded.outcome, RunOutcome::Promoted, "{}", guarded.reason);

    let rollback = slipway_pipeline::RollbackSpec {
        release: spec.release.clone(),
        target: slipway_pipeline::RollbackTarget::Previous,
        reason: "p99 regression".into(),
        emergency: true,
        actor: spec.actor.clone(),
        serving_alias: spec.serving_alias.clone(),
        progress_deadline: spec.progress_deadline,
        history_limit: spec.history_limit,
        policy: spec.policy.clone(),
        service: spec.service.clone(),
        traffic: spec.traffic.clone(),
    };
    let rolled =
        slipway_pipeline::rollback(&rollback, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(rolled.outcome, RunOutcome::RolledBack, "{}", rolled.reason);
    let after_rollback = active(&world).await;
    assert_ne!(after_rollback, after_release, "the Service switched colour");
    let colour = world
        .cluster
        .deployment(
            &namespace,
            &format!("{}-{after_rollback}", spec.release.name),
        )
        .await
        .expect("read")
        .expect("colour");
    assert_eq!(
        colour.spec.image, stable_before,
        "the previous image serves again"
    );
    assert_eq!(
        stable_image(&world, &spec).await,
        stable_before,
        "the user's Deployment never changed"
    );
    assert_eq!(serving_version(&world, &spec).await, 2);

    // Every record written carries the trail's head at that moment, and the record's own entry
    // comes right after it: what `slipway-audit verify` checks a trail against.
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    let entries = world.backends.audit.entries().await.expect("trail");
    for record in history.iter().filter(|record| record.revision > 2) {
        let head = record.trail_head.as_ref().unwrap_or_else(|| {
            panic!(
                "revision {} ({}) carries no trail head",
                record.revision, record.outcome
            )
        });
        let at = entries
            .iter()
            .position(|entry| entry.head() == *head)
            .expect("the head is an entry of the trail");
        assert_eq!(
            entries.get(at + 1).map(|entry| &entry.event),
            Some(&Event::Release(record.clone())),
            "revision {}'s own entry comes right after its head: the head is the trail's when the record was written",
            record.revision
        );
    }
    assert_eq!(
        history.last().map(|record| record.outcome),
        Some(Outcome::RolledBack)
    );
}

/// A loopback HTTP server that answers every request with `status` and a small JSON body.
async fn status_server(status: u16) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/predict", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buffer = vec![0u8; 8192];
            let _ = socket.read(&mut buffer).await;
            let body = r#"{"prediction":"setosa"}"#;
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    url
}

#[tokio::test]
async fn smoke_tests_run_at_each_canary_step_and_a_failing_one_aborts() {
    for (status, outcome) in [(200, RunOutcome::Promoted), (500, RunOutcome::Rejected)] {
        let url = status_server(status).await;
        let mut spec = spec();
        spec.analysis.smoke = vec![
            toml::from_str(&format!(
                "name = \"predict\"\nurl = \"{url}\"\nstatus = 200\n"
            ))
            .expect("smoke check"),
        ];
        let world = world("happy", &spec).await;
        let stable_before = stable_image(&world, &spec).await;
        let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
        assert_eq!(
            report.outcome, outcome,
            "status {status}: {}",
            report.reason
        );
        let smoke: Vec<usize> = report.analysis.iter().map(|run| run.smoke.len()).collect();
        assert!(
            !smoke.is_empty() && smoke.iter().all(|n| *n == 1),
            "status {status}: a smoke result per step: {smoke:?} ({})",
            report.reason
        );
        if outcome == RunOutcome::Rejected {
            assert!(report.reason.contains("predict"), "{}", report.reason);
            assert_eq!(stable_image(&world, &spec).await, stable_before);
            assert!(!canary_exists(&world, &spec).await);
        }
    }
}

/// The scenario world with stable scaled to `replicas` (it seeds 9).
async fn world_with_stable(spec: &ReleaseSpec, replicas: u32) -> World {
    let world = world("happy", spec).await;
    let mut stable = world
        .cluster
        .deployment(&spec.release.namespace, &spec.release.name)
        .await
        .expect("read")
        .expect("stable exists")
        .spec;
    stable.replicas = replicas;
    world.cluster.seed_deployment(stable);
    world
}

/// Decisions with `verdict` on the trail, as `detail`s.
async fn decisions(world: &World, verdict: &str) -> Vec<String> {
    world
        .backends
        .audit
        .entries()
        .await
        .expect("trail")
        .into_iter()
        .filter_map(|entry| match entry.event {
            Event::Decision {
                verdict: seen,
                detail,
                ..
            } if seen == verdict => Some(detail),
            _ => None,
        })
        .collect()
}

/// (step, requested, actual, canary replicas, stable replicas, rounded up) of a report.
fn shares(report: &RunReport) -> Vec<(usize, u8, f64, u32, u32, bool)> {
    report
        .steps
        .iter()
        .map(|step| {
            (
                step.step,
                step.requested_percent,
                step.actual_percent,
                step.canary_replicas,
                step.stable_replicas,
                step.rounded_up,
            )
        })
        .collect()
}

#[tokio::test]
async fn steps_one_canary_pod_exceeds_are_refused_before_any_change() {
    let spec = spec();
    assert_eq!(spec.steps, [10, 25, 50]);
    assert_eq!(
        spec.coarse_steps,
        CoarseSteps::Refuse,
        "refusing is the default"
    );
    for plan in [true, false] {
        let world = world_with_stable(&spec, 4).await;
        let stable_before = stable_image(&world, &spec).await;
        let trail_before = world.backends.audit.entries().await.expect("trail");
        let mut events = Vec::new();
        let mut observer = |event: &StageEvent| events.push(event.clone());
        let report = if plan {
            slipway_pipeline::plan(&spec, &world.backends, &mut observer).await
        } else {
            slipway_pipeline::run(&spec, &world.backends, &mut observer).await
        };
        assert_eq!(report.outcome, RunOutcome::Failed, "{}", report.reason);
        for needle in [
            "step 1/3: 10% requested, 20% achievable (1 canary pod(s) next to 4 stable)",
            "at least 9 replicas",
            "`rollout.traffic = \"gateway-api\"` (or `\"nginx\"`)",
            "`rollout.coarse_steps = \"round-up\"`",
        ] {
            assert!(
                report.reason.contains(needle),
                "{needle}: {}",
                report.reason
            );
        }
        // 25% lies between one pod (20%) and two (33%): rounding it up is one pod's granularity.
        assert!(!report.reason.contains("25%"), "{}", report.reason);
        assert!(
            events
                .iter()
                .any(|event| event.stage == "preflight" && event.status == StageStatus::Fail),
            "the refusal is an event"
        );
        // Nothing changed: no canary, stable as it was, no gate ran, no lock taken.
        assert!(!canary_exists(&world, &spec).await);
        assert_eq!(stable_image(&world, &spec).await, stable_before);
        assert!(report.gates.checks.is_empty(), "{:?}", report.gates);
        assert!(report.steps.is_empty());
        world
            .cluster
            .acquire_lock(&spec.release, "someone", std::time::Duration::from_secs(60))
            .await
            .expect("free");
        if plan {
            assert_eq!(
                world.backends.audit.entries().await.expect("trail"),
                trail_before
            );
        } else {
            assert_eq!(decisions(&world, "rounded-up").await, Vec::<String>::new());
            let failed = decisions(&world, "failed").await;
            assert!(
                failed
                    .iter()
                    .any(|detail| detail.contains("20% achievable")),
                "the stop is on the trail: {failed:?}"
            );
        }
    }
}

#[tokio::test]
async fn round_up_runs_coarse_steps_and_reports_both_shares() {
    let spec = ReleaseSpec {
        coarse_steps: CoarseSteps::RoundUp,
        ..spec()
    };
    let want = vec![
        (1, 10, 20.0, 1, 4, true),
        (2, 25, 33.33, 2, 4, false),
        (3, 50, 50.0, 4, 4, false),
    ];

    let world = world_with_stable(&spec, 4).await;
    let trail_before = world.backends.audit.entries().await.expect("trail");
    let plan = slipway_pipeline::plan(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(plan.outcome, RunOutcome::WouldProceed, "{}", plan.reason);
    assert_eq!(shares(&plan), want, "what would happen");
    let told: Vec<&str> = plan
        .stages
        .iter()
        .filter(|event| event.message.contains("rounded up"))
        .map(|event| event.message.as_str())
        .collect();
    assert_eq!(
        told,
        [
            "step 1/3: 10% requested, 20% achievable (1 canary pod(s) next to 4 stable): rounded up to one canary pod (rollout.coarse_steps = \"round-up\")"
        ]
    );
    assert_eq!(
        world.backends.audit.entries().await.expect("trail"),
        trail_before,
        "plan writes nothing"
    );

    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    assert_eq!(shares(&report), want, "what happened");
    let rounded = decisions(&world, "rounded-up").await;
    assert_eq!(rounded.len(), 1, "{rounded:?}");
    assert!(
        rounded[0].contains("10% requested, 20% achievable"),
        "{rounded:?}"
    );
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(
        json["steps"][0],
        serde_json::json!({
            "step": 1,
            "requested_percent": 10,
            "actual_percent": 20.0,
            "canary_replicas": 1,
            "stable_replicas": 4,
            "rounded_up": true,
        })
    );
}

#[tokio::test]
async fn exact_weights_and_enough_replicas_are_never_coarse() {
    // NGINX weights are exact: 10% next to 4 stable pods is 10% of the requests.
    let spec = nginx_spec();
    let world = world_with_stable(&spec, 4).await;
    seed_ingress(&world, &spec);
    let report = slipway_pipeline::plan(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(
        report.outcome,
        RunOutcome::WouldProceed,
        "{}",
        report.reason
    );
    assert_eq!(
        shares(&report),
        [
            (1, 10, 10.0, 1, 4, false),
            (2, 25, 25.0, 2, 4, false),
            (3, 50, 50.0, 4, 4, false),
        ]
    );
    // The demo world's 9 stable replicas make the default steps exact pod shares.
    let (_, _, report, _) = run("happy").await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    assert_eq!(
        shares(&report),
        [
            (1, 10, 10.0, 1, 9, false),
            (2, 25, 25.0, 3, 9, false),
            (3, 50, 50.0, 9, 9, false),
        ]
    );
}

/// A world for `scenario` whose plan compares the canary with a baseline Deployment
/// (`compare.baseline = "deployment"`) on a `latency` series; stable's latency is far lower
/// than the canary's, the baseline's is `0.4`.
async fn baseline_world(scenario: &str, canary_latency: f64) -> (World, ReleaseSpec) {
    use std::sync::Arc;

    use slipway_analysis::{CompareMetric, ComparePlan, CountModel, Direction, MemoryMetrics};

    let mut spec = spec();
    // One threshold check, always met, so the analysis takes its rounds and the comparison
    // has a window.
    spec.analysis.metrics = vec![slipway_analysis::MetricCheck {
        name: "up".to_owned(),
        query: r#"up{track="{{track}}"}"#.to_owned(),
        max: None,
        min: Some(0.5),
        no_data: None,
    }];
    spec.analysis.compare = Some(ComparePlan {
        baseline: slipway_analysis::BASELINE_DEPLOYMENT.to_owned(),
        step: std::time::Duration::from_secs(30),
        min_samples: 3,
        metrics: vec![CompareMetric {
            name: "latency".to_owned(),
            query: r#"latency{track="{{track}}"}"#.to_owned(),
            direction: Direction::Increase,
            critical: true,
            weight: 1.0,
            count: None,
            model: CountModel::Auto,
        }],
        ..ComparePlan::default()
    });
    let mut world = world(scenario, &spec).await;
    let metrics = Arc::new(MemoryMetrics::new());
    let start = world
        .backends
        .clock
        .now()
        .checked_sub(jiff::SignedDuration::from_secs(3600))
        .expect("time");
    let at = |idx: i64| {
        start
            .checked_add(jiff::SignedDuration::from_secs(30 * idx))
            .expect("time")
    };
    metrics.push_series(
        r#"up{track="canary"}"#,
        &[],
        (0..720i64).map(|idx| (at(idx), 1.0)),
    );
    for (track, level) in [
        ("canary", canary_latency),
        ("baseline", 0.4),
        ("stable", 0.1),
    ] {
        let points = (0..720i64).map(|idx| (at(idx), level + 0.001 * (idx % 7) as f64));
        metrics.push_series(&format!(r#"latency{{track="{track}"}}"#), &[], points);
    }
    world.backends.metrics = metrics;
    (world, spec)
}

async fn deployment_exists(world: &World, spec: &ReleaseSpec, name: &str) -> bool {
    world
        .cluster
        .deployment(&spec.release.namespace, name)
        .await
        .expect("read")
        .is_some()
}

/// `compare.baseline = "deployment"`: a `<name>-baseline` Deployment of stable's version at
/// the canary's size is created once the canary is ready, the comparison reads track
/// `baseline` (stable's series would fail this canary; the baseline's pass it), and the
/// baseline is gone after a promotion and after an abort, like the canary.
#[tokio::test]
async fn a_baseline_deployment_is_created_judged_against_and_removed() {
    for (canary_latency, expected) in [(0.4, RunOutcome::Promoted), (0.8, RunOutcome::Rejected)] {
        let (world, spec) = baseline_world("happy", canary_latency).await;
        let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
        assert_eq!(report.outcome, expected, "{}", report.reason);
        let baseline = format!("{}-baseline", spec.release.name);
        assert!(
            report
                .stages
                .iter()
                .any(|event| event.message.contains(&format!(
                    "baseline pod(s) of stable's version ready in {baseline}"
                ))),
            "created: {:#?}",
            report.stages
        );
        let compared = report
            .analysis
            .first()
            .and_then(|run| run.comparison.as_ref())
            .expect("compared");
        assert_eq!(
            compared.series[0].baseline_query,
            r#"latency{track="baseline"}"#
        );
        for name in [baseline.as_str(), &format!("{}-canary", spec.release.name)] {
            assert!(
                !deployment_exists(&world, &spec, name).await,
                "{name} left behind after {expected:?}"
            );
        }
    }
}

/// With exact NGINX weights the baseline gets the canary's weight: the canary Ingress asks for
/// twice the step and the canary Service holds the canary's and the baseline's pods (the same
/// number of each) while the user's Service keeps only stable; promotion removes all of it. A
/// step above 50% leaves no room for two equal shares and is refused before anything changes.
#[tokio::test]
async fn nginx_weights_give_the_baseline_the_canary_share() {
    let (world, mut spec) = baseline_world("happy", 0.4).await;
    spec.traffic = TrafficRouting::NginxIngress {
        ingress: "iris-web".into(),
    };
    seed_ingress(&world, &spec);
    let namespace = spec.release.namespace.clone();
    let canary_service = format!("{}-canary", spec.service);
    let mut seen = Vec::new();
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |event: &StageEvent| {
        if event.stage == "canary" && event.status == StageStatus::Pass {
            let behind = |service: &str| -> Vec<(String, u32)> {
                world.cluster.endpoints(&namespace, service)
            };
            seen.push((
                world
                    .cluster
                    .ingress(&namespace, "iris-web-canary")
                    .and_then(|ingress| ingress.canary_weight()),
                behind(&spec.service).len(),
                behind(&canary_service),
            ));
        }
    })
    .await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    let weights: Vec<Option<u8>> = seen.iter().map(|(weight, _, _)| *weight).collect();
    let doubled: Vec<Option<u8>> = spec.steps.iter().map(|step| Some(step * 2)).collect();
    assert_eq!(weights, doubled, "{seen:?}");
    for (_, stable_only, behind_canary) in &seen {
        assert_eq!(
            *stable_only, 1,
            "only stable behind the user's Service: {seen:?}"
        );
        let names: Vec<String> = behind_canary.iter().map(|(name, _)| name.clone()).collect();
        let pair = ["baseline", "canary"].map(|track| format!("{}-{track}", spec.release.name));
        assert_eq!(names, pair, "{seen:?}");
        assert_eq!(
            behind_canary[0].1, behind_canary[1].1,
            "equal pods: {seen:?}"
        );
    }
    assert_eq!(world.cluster.ingress_names(&namespace), ["iris-web"]);
    assert_eq!(
        world.cluster.deployment_names(&namespace),
        [spec.release.name.clone()]
    );

    let (world, mut spec) = baseline_world("happy", 0.4).await;
    spec.traffic = TrafficRouting::NginxIngress {
        ingress: "iris-web".into(),
    };
    spec.steps = vec![10, 60];
    seed_ingress(&world, &spec);
    let before = world.cluster.deployment_names(&namespace);
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Failed, "{}", report.reason);
    assert!(
        report.reason.contains("60%") && report.reason.contains("baseline"),
        "{}",
        report.reason
    );
    assert_eq!(world.cluster.deployment_names(&namespace), before);
}

/// With Gateway API weights the baseline has a Service of its own and the route gives it the
/// canary's weight; promotion restores the route and removes both Services.
#[tokio::test]
async fn gateway_api_weights_give_the_baseline_the_canary_share() {
    let (world, mut spec) = baseline_world("happy", 0.4).await;
    spec.traffic = TrafficRouting::GatewayApi {
        route: "iris-route".into(),
    };
    let users_rules = seed_route(&world, &spec);
    let namespace = spec.release.namespace.clone();
    let mut seen = Vec::new();
    let report = slipway_pipeline::run(&spec, &world.backends, &mut |event: &StageEvent| {
        if event.stage == "canary" && event.status == StageStatus::Pass {
            let (rules, _) = world
                .cluster
                .http_route_rules(&namespace, "iris-route")
                .expect("route");
            seen.push(slipway_k8s_rollout::gateway::backend_weights(&rules));
        }
    })
    .await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    let expected: Vec<Vec<(usize, String, u64)>> = spec
        .steps
        .iter()
        .map(|step| {
            let step = u64::from(*step);
            vec![
                (0, spec.service.clone(), 100 - 2 * step),
                (0, format!("{}-canary", spec.service), step),
                (0, format!("{}-baseline", spec.service), step),
                (1, "docs".to_owned(), 1),
            ]
        })
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(
        world.cluster.http_route_rules(&namespace, "iris-route"),
        Some((users_rules, None))
    );
    assert_eq!(
        world.cluster.service_names(&namespace),
        std::slice::from_ref(&spec.service)
    );
    assert_eq!(
        world.cluster.deployment_names(&namespace),
        [spec.release.name.clone()]
    );
}

/// A cancelled run (a signal while the canary is analysed against its baseline) removes the
/// baseline with the canary, records `cancelled` and leaves stable as it was.
#[tokio::test]
async fn a_cancelled_run_removes_its_baseline_with_the_canary() {
    let (world, spec) = baseline_world("happy", 0.4).await;
    let stable_before = stable_image(&world, &spec).await;
    let interrupt = world.backends.interrupt.clone();
    let mut observer = |event: &StageEvent| {
        if event.stage == "analysis" {
            interrupt.trigger(slipway_pipeline::Interruption::Signal {
                name: "SIGTERM".into(),
                number: 15,
            });
        }
    };
    let report = slipway_pipeline::run(&spec, &world.backends, &mut observer).await;
    assert_eq!(report.outcome, RunOutcome::Cancelled, "{}", report.reason);
    let baseline = format!("{}-baseline", spec.release.name);
    assert!(
        report
            .stages
            .iter()
            .any(|event| event.message.contains(&format!(
                "baseline pod(s) of stable's version ready in {baseline}"
            ))),
        "the baseline ran: {:#?}",
        report.stages
    );
    for name in [baseline.as_str(), &format!("{}-canary", spec.release.name)] {
        assert!(
            !deployment_exists(&world, &spec, name).await,
            "{name} left behind after a cancel"
        );
    }
    assert_eq!(stable_image(&world, &spec).await, stable_before);
    let history = world
        .cluster
        .release_history(&spec.release)
        .await
        .expect("history");
    assert_eq!(
        history.last().map(|record| record.outcome),
        Some(Outcome::Cancelled)
    );
}

/// A release paused at the approval gate keeps its canary and its baseline; a rollback then
/// removes both.
#[tokio::test]
async fn a_rollback_of_a_paused_release_removes_its_baseline() {
    let (world, spec) = baseline_world("unapproved", 0.4).await;
    let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(paused.outcome, RunOutcome::Paused, "{}", paused.reason);
    let baseline = format!("{}-baseline", spec.release.name);
    assert!(
        deployment_exists(&world, &spec, &baseline).await,
        "kept while paused"
    );
    let rollback = slipway_pipeline::RollbackSpec {
        release: spec.release.clone(),
        target: slipway_pipeline::RollbackTarget::Previous,
        reason: "the model card was wrong".into(),
        emergency: true,
        actor: spec.actor.clone(),
        serving_alias: spec.serving_alias.clone(),
        progress_deadline: spec.progress_deadline,
        history_limit: spec.history_limit,
        policy: spec.policy.clone(),
        service: spec.service.clone(),
        traffic: spec.traffic.clone(),
    };
    let report =
        slipway_pipeline::rollback(&rollback, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::RolledBack, "{}", report.reason);
    assert!(
        !deployment_exists(&world, &spec, &baseline).await,
        "baseline removed"
    );
    assert!(!canary_exists(&world, &spec).await);
}

#[tokio::test]
async fn one_server_image_ships_two_model_versions_in_turn() {
    // The image loads its model (the reload step): it ships model 3, then model 4.
    let spec = spec();
    let world = world("happy", &spec).await;
    let first = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(first.outcome, RunOutcome::Promoted, "{}", first.reason);
    let digest = first.digest.clone().expect("digest");

    let next = world.models.register(
        &spec.model.name,
        "c4f1e9a7-train-2026-11-27",
        &[("accuracy", 0.96), ("f1", 0.94)],
    );
    let slipway_core::ModelSelector::Alias(alias) = &spec.model.selector else {
        panic!("the default spec selects the candidate by alias");
    };
    world.models.set_alias(&next, alias).await.expect("alias");
    let approval = slipway_audit_log::ApprovalRecord {
        release: spec.release.clone(),
        approver: "maria.chen".to_owned(),
        at: world.backends.clock.now(),
        reason: "model 4 reviewed".to_owned(),
        digest: digest.clone(),
        model: next.clone(),
        revision: None,
        expires: None,
        source: slipway_audit_log::ApprovalSource::Named,
    };
    world
        .backends
        .audit
        .append(world.backends.clock.now(), Event::Approval(approval))
        .await
        .expect("approval");

    let second = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    let link_check = second
        .gates
        .checks
        .iter()
        .find(|check| check.name == "image serves the candidate model")
        .map(|check| format!("{:?}: {}", check.status, check.reason));
    assert_eq!(
        second.outcome,
        RunOutcome::Promoted,
        "{} / model link check: {link_check:?}",
        second.reason
    );
    assert_eq!(second.digest.as_ref(), Some(&digest), "the same image");
    assert_eq!(serving_version(&world, &spec).await, next.version);
    assert!(
        link_check
            .as_deref()
            .is_some_and(|text| text.starts_with("Pass")),
        "{link_check:?}"
    );
}

/// Provenance is the build's word: with `require_provenance`, a release passes on the demo
/// build key's provenance, and fails, naming the reason, when the only provenance was signed by
/// the deploy key, names a ref the policy does not allow, or is about another digest.
#[tokio::test]
async fn provenance_counts_only_from_a_build_key_about_this_digest_from_an_allowed_ref() {
    use slipway_attest::provenance::attach_provenance;
    use slipway_registry::Artifact;

    let mut spec = spec();
    spec.policy.signatures.require_provenance = true;
    spec.policy.signatures.source_refs = vec!["refs/heads/main".to_owned()];
    let failures = |report: &RunReport| -> Vec<String> {
        report
            .gates
            .failures()
            .map(|check| format!("{}: {}", check.name, check.reason))
            .collect()
    };

    // The demo world's images carry provenance from the demo build key.
    let built = world("happy", &spec).await;
    let report = slipway_pipeline::run(&spec, &built.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(report.outcome, RunOutcome::Promoted, "{}", report.reason);
    assert!(
        report
            .gates
            .checks
            .iter()
            .any(|check| check.name == "source ref allowed"
                && check.status == slipway_gates::CheckStatus::Pass),
        "{:#?}",
        report.gates
    );

    // Rollback with `require_provenance` verifies the target's provenance and succeeds.
    let rollback = slipway_pipeline::RollbackSpec {
        release: spec.release.clone(),
        target: slipway_pipeline::RollbackTarget::Previous,
        reason: "provenance test".into(),
        emergency: true,
        actor: spec.actor.clone(),
        serving_alias: spec.serving_alias.clone(),
        progress_deadline: spec.progress_deadline,
        history_limit: spec.history_limit,
        policy: spec.policy.clone(),
        service: spec.service.clone(),
        traffic: spec.traffic.clone(),
    };
    let rolled =
        slipway_pipeline::rollback(&rollback, &built.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(rolled.outcome, RunOutcome::RolledBack, "{}", rolled.reason);
    assert!(
        rolled
            .gates
            .checks
            .iter()
            .any(|check| check.name == "provenance verified"
                && check.status == slipway_gates::CheckStatus::Pass),
        "{:#?}",
        rolled.gates
    );

    let build = scenario::demo_build_info(jiff::Timestamp::now());
    let build_key = scenario::demo_build_key().expect("demo build key");
    let cases: [(&str, &str); 3] = [
        (
            "deploy key",
            "none of the envelope's 1 signature(s) verifies",
        ),
        (
            "wrong ref",
            "source ref allowed: source ref `refs/heads/feature` is not one of `refs/heads/main`",
        ),
        ("other digest", "not the image digest"),
    ];
    for (case, expected) in cases {
        let world = world("happy", &spec).await;
        let registry = world.backends.registry.clone();
        let candidate = spec
            .image
            .with_digest(registry.resolve(&spec.image).await.expect("resolve").digest);
        let tag = candidate.digest().expect("pinned").cosign_tag("att");
        registry
            .put_artifact(&candidate, &tag, &Artifact::default())
            .await
            .expect("clear the build's provenance");
        match case {
            "deploy key" => {
                let deploy = world.backends.signer.clone().expect("deploy key");
                attach_provenance(registry.as_ref(), deploy.as_ref(), &candidate, &build)
                    .await
                    .expect("attest");
            }
            "wrong ref" => {
                let mut feature = build.clone();
                feature.source_ref = "refs/heads/feature".to_owned();
                attach_provenance(registry.as_ref(), &build_key, &candidate, &feature)
                    .await
                    .expect("attest");
            }
            _ => {
                let other = spec.image.with_tag("1.4.0").expect("tag");
                let other = other.with_digest(registry.resolve(&other).await.expect("r").digest);
                let copied = registry
                    .get_artifact(&other, &other.digest().expect("d").cosign_tag("att"))
                    .await
                    .expect("read")
                    .expect("the other image has provenance");
                registry
                    .put_artifact(&candidate, &tag, &copied)
                    .await
                    .expect("copy");
            }
        }
        let report = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
        assert_eq!(
            report.outcome,
            RunOutcome::Rejected,
            "{case}: {}",
            report.reason
        );
        let failed = failures(&report);
        assert!(
            failed.iter().any(|line| line.contains(expected)),
            "{case}: expected `{expected}` in {failed:#?}"
        );
    }
}

/// Blue-green and rolling releases pause at the approval gate as a canary does: blue-green with
/// its standby colour running the candidate behind the preview Service, rolling before it
/// changed anything; what serves is untouched while paused. An approval bound to the paused
/// revision and `promote` then switch (blue-green) or roll (rolling) and record it promoted;
/// `abort` instead removes the standby and leaves no Slipway object.
#[tokio::test]
async fn blue_green_and_rolling_pause_for_approval_then_promote_or_abort() {
    use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig};
    use slipway_k8s_rollout::rollout::TrafficRouting;
    for strategy in [
        slipway_core::Strategy::BlueGreen,
        slipway_core::Strategy::Rolling,
    ] {
        let mut spec = spec();
        spec.strategy = strategy;
        let serving = |world: &World| {
            let (cluster, release, service) = (
                world.cluster.clone(),
                spec.release.clone(),
                spec.service.clone(),
            );
            async move {
                bluegreen::serving(cluster.as_ref(), &release, &service)
                    .await
                    .expect("serving")
                    .spec
                    .image
            }
        };
        let managed = |world: &World| {
            let (cluster, release, service) = (
                world.cluster.clone(),
                spec.release.clone(),
                spec.service.clone(),
            );
            async move {
                slipway_k8s_rollout::cleanup::managed_objects(
                    cluster.as_ref(),
                    &release,
                    &service,
                    &TrafficRouting::ReplicaRatio,
                    Some(&BlueGreenConfig::new(service.clone())),
                )
                .await
                .expect("managed")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
            }
        };

        // Promote path.
        let paused_world = world("unapproved", &spec).await;
        let aborted_world = world("unapproved", &spec).await;
        let world = &paused_world;
        let before = serving(world).await;
        let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
        assert_eq!(
            paused.outcome,
            RunOutcome::Paused,
            "{strategy}: {}",
            paused.reason
        );
        let digest = paused.digest.clone().expect("digest").to_string();
        assert_eq!(
            serving(world).await,
            before,
            "{strategy}: nothing switched while paused"
        );
        match strategy {
            slipway_core::Strategy::BlueGreen => {
                assert!(
                    paused
                        .reason
                        .contains("standby colour healthy behind iris-classifier-preview"),
                    "{}",
                    paused.reason
                );
                let standby =
                    selected_colour(world, &spec, &bluegreen::preview_name(&spec.service)).await;
                assert!(
                    standby.spec.image.ends_with(&digest),
                    "{}",
                    standby.spec.image
                );
            }
            _ => {
                assert!(
                    paused.reason.contains("not yet changed"),
                    "{}",
                    paused.reason
                );
                assert_eq!(managed(world).await, Vec::<String>::new());
            }
        }
        let early = slipway_pipeline::resume(
            &spec,
            &world.backends,
            &mut |_: &StageEvent| {},
            Resume::Promote,
        )
        .await;
        assert_eq!(
            early.outcome,
            RunOutcome::Rejected,
            "{strategy}: no approval yet"
        );
        assert_eq!(serving(world).await, before, "{strategy}: still untouched");
        slipway_pipeline::approve(
            &spec,
            &world.backends,
            "sam.reviewer",
            "dashboards reviewed",
        )
        .await
        .expect("approved");
        let promoted = slipway_pipeline::resume(
            &spec,
            &world.backends,
            &mut |_: &StageEvent| {},
            Resume::Promote,
        )
        .await;
        assert_eq!(
            promoted.outcome,
            RunOutcome::Promoted,
            "{strategy}: {}",
            promoted.reason
        );
        assert!(serving(world).await.ends_with(&digest), "{strategy}");
        assert_eq!(serving_version(world, &spec).await, 3, "{strategy}");

        // Abort path.
        let world = &aborted_world;
        let before = serving(world).await;
        let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
        assert_eq!(paused.outcome, RunOutcome::Paused, "{strategy}");
        let aborted = slipway_pipeline::resume(
            &spec,
            &world.backends,
            &mut |_: &StageEvent| {},
            Resume::Abort("not today".into()),
        )
        .await;
        assert_eq!(
            aborted.outcome,
            RunOutcome::Aborted,
            "{strategy}: {}",
            aborted.reason
        );
        assert_eq!(
            serving(world).await,
            before,
            "{strategy}: what served still serves"
        );
        assert_eq!(
            managed(world).await,
            Vec::<String>::new(),
            "{strategy}: nothing left"
        );
        assert_eq!(serving_version(world, &spec).await, 2, "{strategy}");
    }
}

/// `promote` judges the deploy windows again at its own moment: a paused rolling release (whose
/// whole change happens at promotion) is not rolled inside a deny window, stays paused with
/// stable untouched, and is rolled once the window no longer denies it.
#[tokio::test]
async fn promote_judges_the_deploy_windows_again() {
    let mut spec = spec();
    spec.strategy = slipway_core::Strategy::Rolling;
    let world = world("unapproved", &spec).await;
    let before = stable_image(&world, &spec).await;
    let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(paused.outcome, RunOutcome::Paused, "{}", paused.reason);
    slipway_pipeline::approve(&spec, &world.backends, "sam.reviewer", "reviewed")
        .await
        .expect("approved");
    let mut frozen = spec.clone();
    frozen.policy.windows.deny = vec![slipway_gates::window::Window {
        schedule: "* * * * *".to_owned(),
        duration: "1h".to_owned(),
        time_zone: "UTC".to_owned(),
    }];
    let refused = slipway_pipeline::resume(
        &frozen,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(refused.outcome, RunOutcome::Rejected, "{}", refused.reason);
    assert!(
        refused.reason.contains("stays paused"),
        "{}",
        refused.reason
    );
    assert_eq!(stable_image(&world, &spec).await, before, "nothing rolled");
    let promoted = slipway_pipeline::resume(
        &spec,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(
        promoted.outcome,
        RunOutcome::Promoted,
        "{}",
        promoted.reason
    );
    assert!(
        stable_image(&world, &spec)
            .await
            .ends_with(&paused.digest.expect("digest").to_string())
    );
}

/// A paused blue-green release whose standby colour no longer runs the candidate (someone
/// changed it while it waited) is not switched to: `promote` fails naming the standby, and the
/// Service keeps selecting what served.
#[tokio::test]
async fn a_paused_blue_green_whose_standby_changed_is_not_switched_to() {
    use slipway_k8s_rollout::bluegreen;
    let mut spec = spec();
    spec.strategy = slipway_core::Strategy::BlueGreen;
    let world = world("unapproved", &spec).await;
    let paused = slipway_pipeline::run(&spec, &world.backends, &mut |_: &StageEvent| {}).await;
    assert_eq!(paused.outcome, RunOutcome::Paused, "{}", paused.reason);
    let serving_before = bluegreen::serving(world.cluster.as_ref(), &spec.release, &spec.service)
        .await
        .expect("serving")
        .spec
        .image;
    let mut standby = selected_colour(&world, &spec, &bluegreen::preview_name(&spec.service))
        .await
        .spec;
    standby.image = "ghcr.io/acme/iris-server:hotfix".to_owned();
    world.cluster.seed_deployment(standby);
    slipway_pipeline::approve(&spec, &world.backends, "sam.reviewer", "reviewed")
        .await
        .expect("approved");
    let promoted = slipway_pipeline::resume(
        &spec,
        &world.backends,
        &mut |_: &StageEvent| {},
        Resume::Promote,
    )
    .await;
    assert_eq!(promoted.outcome, RunOutcome::Failed, "{}", promoted.reason);
    assert!(
        promoted
            .reason
            .contains("the standby colour of paused revision"),
        "{}",
        promoted.reason
    );
    assert_eq!(
        bluegreen::serving(world.cluster.as_ref(), &spec.release, &spec.service)
            .await
            .expect("serving")
            .spec
            .image,
        serving_before,
        "the Service was not switched"
    );
}
