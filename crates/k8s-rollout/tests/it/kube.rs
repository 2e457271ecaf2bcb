//! [`KubeCluster`] against a scripted API server: every request's method, path, query
//! (`fieldManager`, `force`, `dryRun`) and body is snapshotted; conflicts, 404 and 403 are
//! exercised.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use slipway_core::{ReleaseId, ReleaseRecord, SimClock};
use slipway_k8s_rollout::{
    Cluster, DeploymentSpec, Error, KubeCluster, KubeClusterConfig, PodProblem, RollingParams,
    rollout,
};

use crate::scripted::{Step, deleted, serve, status, step};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/ml/deployments";
const SERVICES: &str = "/api/v1/namespaces/ml/services";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/ml/leases";
const CONFIGMAPS: &str = "/api/v1/namespaces/ml/configmaps";

fn release() -> ReleaseId {
    ReleaseId::parse("ml/iris").expect("release id")
}

fn clock() -> Arc<SimClock> {
    Arc::new(SimClock::starting_at(
        "2026-11-22T10:00:00Z".parse().expect("timestamp"),
    ))
}

fn cluster(client: kube::Client, config: KubeClusterConfig) -> KubeCluster {
    KubeCluster::new(client, config).with_clock(clock())
}

fn not_found(kind: &str, name: &str) -> Value {
    status(404, "NotFound", &format!("{kind} \"{name}\" not found"))
}

fn conflict(kind: &str, name: &str) -> Value {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {kind} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
    )
}

/// A Deployment as the API server returns it. `managed`: carries Slipway's label.
/// `rollout`: `complete`, `progressing` (1 of 4 new pods) or `stalled`.
fn deployment(
    name: &str,
    image: &str,
    managed: bool,
    rollout: &str,
    resource_version: &str,
) -> Value {
    let mut labels = json!({ "app": "iris" });
    if managed {
        labels["app.kubernetes.io/managed-by"] = json!("slipway");
    }
    let status = match rollout {
        "complete" => {
            json!({ "observedGeneration": 2, "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4, "availableReplicas": 4 })
        }
        "progressing" => {
            json!({ "observedGeneration": 2, "replicas": 5, "updatedReplicas": 1, "readyReplicas": 4, "availableReplicas": 4 })
        }
        _ => json!({
            "observedGeneration": 2, "replicas": 5, "updatedReplicas": 1, "readyReplicas": 4, "availableReplicas": 4,
            "conditions": [{ "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"iris-7d9\" has timed out progressing." }],
        }),
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name, "namespace": "ml", "uid": format!("uid-{name}"), "resourceVersion": resource_version, "generation": 2,
            "labels": labels, "annotations": { "deployment.kubernetes.io/revision": "3" },
        },
        "spec": {
            "replicas": 4,
            "selector": { "matchLabels": { "app": "iris" } },
            "template": {
                "metadata": { "labels": { "app": "iris" }, "annotations": { "prometheus.io/scrape": "true" } },
                "spec": { "containers": [{ "name": "server", "image": image, "ports": [{ "containerPort": 8080 }], "env": [{ "name": "MODEL", "value": "iris" }] }] },
            },
        },
        "status": status,
    })
}

fn service(name: &str, selector: Value, managed: bool, resource_version: &str) -> Value {
    let labels = if managed {
        json!({ "app.kubernetes.io/managed-by": "slipway" })
    } else {
        json!({ "app": "iris" })
    };
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": "ml", "uid": format!("uid-{name}"), "resourceVersion": resource_version, "labels": labels },
        "spec": { "type": "ClusterIP", "clusterIP": "10.0.0.7", "selector": selector, "ports": [{ "name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP" }] },
    })
}

fn stable_spec(image: &str) -> DeploymentSpec {
    let labels: BTreeMap<String, String> = [("app".to_owned(), "iris".to_owned())].into();
    DeploymentSpec {
        namespace: "ml".into(),
        name: "iris".into(),
        replicas: 4,
        selector: labels.clone(),
        pod_labels: labels,
        container: "server".into(),
        image: image.into(),
    }
}

async fn transcript(server: tokio::task::JoinHandle<Vec<Value>>) -> Value {
    Value::Array(server.await.expect("scripted server"))
}

async fn run<T>(
    steps: Vec<Step>,
    config: KubeClusterConfig,
    work: impl AsyncFnOnce(&KubeCluster) -> T,
) -> (T, Value) {
    let (client, server) = serve(steps);
    let cluster = cluster(client, config);
    let out = work(&cluster).await;
    drop(cluster);
    (out, transcript(server).await)
}

#[tokio::test]
async fn canary_is_derived_from_stable_with_server_side_apply() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            404,
            not_found("deployments.apps", "iris-canary"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris-canary"),
            201,
            deployment(
                "iris-canary",
                "reg/iris@sha256:new",
                true,
                "progressing",
                "7",
            ),
        ),
    ];
    let (replicas, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        let stable = rollout::stable(cluster, &release()).await.expect("stable");
        let replicas = rollout::canary_replicas(stable.spec.replicas, 25);
        let spec = rollout::canary_spec(&stable.spec, &release(), "reg/iris@sha256:new", replicas);
        cluster
            .derive_deployment("iris", &spec)
            .await
            .expect("derive");
        replicas
    })
    .await;
    assert_eq!(replicas, 2);
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn dry_run_sends_dry_run_all() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deployment("iris-canary", "reg/iris@sha256:new", true, "complete", "8"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deployment("iris-canary", "reg/iris@sha256:new", true, "complete", "8"),
        ),
    ];
    let config = KubeClusterConfig {
        dry_run: true,
        ..KubeClusterConfig::default()
    };
    let spec = rollout::canary_spec(
        &stable_spec("reg/iris@sha256:old"),
        &release(),
        "reg/iris@sha256:new",
        1,
    );
    let ((), requests) = run(steps, config, async |cluster| {
        cluster
            .derive_deployment("iris", &spec)
            .await
            .expect("derive")
    })
    .await;
    let query = &requests[2]["query"];
    assert_eq!(
        (
            query["dryRun"].as_str(),
            query["fieldManager"].as_str(),
            query["force"].as_str()
        ),
        (Some("All"), Some("slipway"), Some("true")),
        "{requests:#}"
    );
}

#[tokio::test]
async fn derive_refuses_to_overwrite_a_deployment_slipway_did_not_create() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deployment("iris-canary", "reg/other@sha256:x", false, "complete", "3"),
        ),
    ];
    let spec = rollout::canary_spec(
        &stable_spec("reg/iris@sha256:old"),
        &release(),
        "reg/iris@sha256:new",
        1,
    );
    let (result, _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster.derive_deployment("iris", &spec).await
    })
    .await;
    insta::assert_snapshot!(result.expect_err("refused").to_string());
}

#[tokio::test]
async fn promotion_patches_only_the_image_and_retries_a_conflict_after_rereading() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris"),
            409,
            conflict("deployments.apps", "iris"),
        ),
        // Argo CD synced in between: a new resourceVersion, same image.
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "101"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:new", false, "progressing", "102"),
        ),
    ];
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .apply_deployment(&stable_spec("reg/iris@sha256:new"))
            .await
            .expect("apply")
    })
    .await;
    assert_eq!(requests[1]["body"]["metadata"]["resourceVersion"], "100");
    assert_eq!(requests[3]["body"]["metadata"]["resourceVersion"], "101");
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn conflicts_beyond_the_retry_budget_are_reported() {
    let mut steps = Vec::new();
    for version in ["1", "2"] {
        steps.push(step(
            "GET",
            format!("{SERVICES}/iris"),
            200,
            service("iris", json!({ "app": "iris" }), false, version),
        ));
        steps.push(step(
            "PUT",
            format!("{SERVICES}/iris"),
            409,
            conflict("services", "iris"),
        ));
    }
    let config = KubeClusterConfig {
        conflict_retries: 1,
        ..KubeClusterConfig::default()
    };
    let selector: BTreeMap<String, String> = [
        ("app".to_owned(), "iris".to_owned()),
        ("slipway.dev/track".to_owned(), "blue".to_owned()),
    ]
    .into();
    let (result, _) = run(steps, config, async |cluster| {
        cluster.set_service_selector("ml", "iris", &selector).await
    })
    .await;
    insta::assert_snapshot!(result.expect_err("conflict").to_string());
}

#[tokio::test]
async fn rolling_update_sets_strategy_and_image() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:new", false, "progressing", "101"),
        ),
    ];
    let params = RollingParams {
        max_surge: "1".into(),
        max_unavailable: "0".into(),
    };
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .rolling_update("ml", "iris", "reg/iris@sha256:new", &params)
            .await
            .expect("rolling")
    })
    .await;
    insta::assert_json_snapshot!(requests);
}

/// Pod status -> the reason a rollout is stuck.
#[tokio::test]
async fn not_ready_pods_are_explained() {
    let waiting = |reason: &str, message: &str| {
        json!({ "containerStatuses": [{ "name": "server", "image": "reg/iris@sha256:new", "imageID": "", "ready": false, "restartCount": 4,
            "state": { "waiting": { "reason": reason, "message": message } } }] })
    };
    let cases = [
        (
            waiting(
                "ImagePullBackOff",
                "Back-off pulling image \"reg/iris@sha256:new\"",
            ),
            Some(PodProblem::ImagePull(
                "Back-off pulling image \"reg/iris@sha256:new\"".into(),
            )),
        ),
        (
            waiting(
                "CrashLoopBackOff",
                "back-off 5m0s restarting failed container=server",
            ),
            Some(PodProblem::CrashLoop(
                "back-off 5m0s restarting failed container=server".into(),
            )),
        ),
        (
            json!({ "conditions": [{ "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory." }] }),
            Some(PodProblem::Unschedulable(
                "0/3 nodes are available: 3 Insufficient memory.".into(),
            )),
        ),
        (waiting("ContainerCreating", ""), None),
    ];
    for (pod_status, want) in cases {
        let pod = json!({ "metadata": { "name": "iris-canary-abc", "namespace": "ml" },
            "spec": { "containers": [{ "name": "server", "image": "reg/iris@sha256:new" }] }, "status": pod_status });
        let old_pod = json!({ "metadata": { "name": "iris-canary-old", "namespace": "ml" },
            "spec": { "containers": [{ "name": "server", "image": "reg/iris@sha256:old" }] }, "status": waiting("CrashLoopBackOff", "an older pod") });
        let steps = vec![
            step(
                "GET",
                format!("{DEPLOYMENTS}/iris-canary"),
                200,
                deployment(
                    "iris-canary",
                    "reg/iris@sha256:new",
                    true,
                    "progressing",
                    "9",
                ),
            ),
            step(
                "GET",
                "/api/v1/namespaces/ml/pods",
                200,
                json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [old_pod, pod] }),
            ),
        ];
        let (state, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
            cluster
                .deployment("ml", "iris-canary")
                .await
                .expect("get")
                .expect("exists")
        })
        .await;
        assert_eq!(requests[1]["query"]["labelSelector"], "app=iris");
        assert!(!state.rolled_out());
        assert_eq!((state.updated_ready_replicas, state.ready_replicas), (1, 4));
        assert_eq!(state.problem, want);
    }
}

#[tokio::test]
async fn stalled_deployment_reports_the_controller_condition_and_complete_one_lists_no_pods() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:new", false, "stalled", "9"),
        ),
        step(
            "GET",
            "/api/v1/namespaces/ml/pods",
            200,
            json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": [] }),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:new", false, "complete", "10"),
        ),
    ];
    let ((stalled, complete), _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        (
            cluster
                .deployment("ml", "iris")
                .await
                .expect("get")
                .expect("exists"),
            cluster
                .deployment("ml", "iris")
                .await
                .expect("get")
                .expect("exists"),
        )
    })
    .await;
    assert_eq!(
        stalled
            .problem
            .map(|problem| problem.to_string())
            .as_deref(),
        Some(
            "no progress: ProgressDeadlineExceeded: ReplicaSet \"iris-7d9\" has timed out progressing."
        )
    );
    assert!(complete.rolled_out());
    assert_eq!(
        (complete.revision, complete.spec.image.as_str()),
        (3, "reg/iris@sha256:new")
    );
}

#[tokio::test]
async fn abort_deletes_the_canary_with_its_uid_as_precondition_and_never_a_users_deployment() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deployment("iris-canary", "reg/iris@sha256:new", true, "complete", "9"),
        ),
        step(
            "DELETE",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deleted(),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            404,
            not_found("deployments.apps", "iris-canary"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deployment("iris-canary", "reg/iris@sha256:new", false, "complete", "9"),
        ),
    ];
    let ((absent, refused), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        rollout::abort(cluster, &release()).await.expect("abort");
        (
            rollout::abort(cluster, &release()).await,
            rollout::abort(cluster, &release()).await,
        )
    })
    .await;
    absent.expect("deleting an absent canary is fine");
    let refused = refused.expect_err("not Slipway's").to_string();
    assert!(refused.contains("refusing to delete"), "{refused}");
    insta::assert_json_snapshot!(requests);
}

/// `compare.baseline = "deployment"`: the baseline is derived from stable with server-side
/// apply (stable's image, the canary's replicas, track `baseline`), waited for, and deleted
/// with its uid as precondition.
#[tokio::test]
async fn baseline_is_derived_from_stable_waited_for_and_deleted() {
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-baseline"),
            404,
            not_found("deployments.apps", "iris-baseline"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris-baseline"),
            201,
            deployment(
                "iris-baseline",
                "reg/iris@sha256:old",
                true,
                "complete",
                "7",
            ),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-baseline"),
            200,
            deployment(
                "iris-baseline",
                "reg/iris@sha256:old",
                true,
                "complete",
                "7",
            ),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-baseline"),
            200,
            deployment(
                "iris-baseline",
                "reg/iris@sha256:old",
                true,
                "complete",
                "7",
            ),
        ),
        step(
            "DELETE",
            format!("{DEPLOYMENTS}/iris-baseline"),
            200,
            deleted(),
        ),
    ];
    let clock = SimClock::starting_at("2026-11-22T10:00:00Z".parse().expect("ts"));
    let (result, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        rollout::set_baseline(
            cluster,
            &clock,
            &release(),
            2,
            Duration::from_secs(600),
            None,
        )
        .await
        .expect("baseline ready");
        rollout::remove_baseline(cluster, &release()).await
    })
    .await;
    result.expect("removed");
    let patch = &requests[3];
    let text = patch.to_string();
    assert!(
        text.contains(r#""slipway.dev/track":"baseline""#) && text.contains("reg/iris@sha256:old"),
        "{patch:#}"
    );
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn service_selector_switch_retries_a_conflict_after_rereading() {
    let blue = json!({ "app": "iris", "slipway.dev/track": "blue" });
    let steps = vec![
        step(
            "GET",
            format!("{SERVICES}/iris"),
            200,
            service("iris", blue.clone(), false, "50"),
        ),
        step(
            "PUT",
            format!("{SERVICES}/iris"),
            409,
            conflict("services", "iris"),
        ),
        step(
            "GET",
            format!("{SERVICES}/iris"),
            200,
            service("iris", blue, false, "51"),
        ),
        step(
            "PUT",
            format!("{SERVICES}/iris"),
            200,
            service(
                "iris",
                json!({ "app": "iris", "slipway.dev/track": "green" }),
                false,
                "52",
            ),
        ),
    ];
    let green: BTreeMap<String, String> = [
        ("app".to_owned(), "iris".to_owned()),
        ("slipway.dev/track".to_owned(), "green".to_owned()),
    ]
    .into();
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .set_service_selector("ml", "iris", &green)
            .await
            .expect("switch")
    })
    .await;
    assert_eq!(requests[3]["body"]["metadata"]["resourceVersion"], "51");
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn preview_service_copies_ports_and_selects_the_standby_colour() {
    let steps = vec![
        step(
            "GET",
            format!("{SERVICES}/iris"),
            200,
            service(
                "iris",
                json!({ "app": "iris", "slipway.dev/track": "blue" }),
                false,
                "50",
            ),
        ),
        step(
            "GET",
            format!("{SERVICES}/iris-preview"),
            404,
            not_found("services", "iris-preview"),
        ),
        step(
            "PATCH",
            format!("{SERVICES}/iris-preview"),
            201,
            service("iris-preview", json!({}), true, "1"),
        ),
        step(
            "GET",
            format!("{SERVICES}/iris-preview"),
            200,
            service("iris-preview", json!({}), true, "1"),
        ),
        step("DELETE", format!("{SERVICES}/iris-preview"), 200, deleted()),
    ];
    let green: BTreeMap<String, String> = [
        ("app".to_owned(), "iris".to_owned()),
        ("slipway.dev/track".to_owned(), "green".to_owned()),
    ]
    .into();
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .copy_service("ml", "iris", "iris-preview", &green)
            .await
            .expect("preview");
        cluster
            .delete_service("ml", "iris-preview")
            .await
            .expect("delete");
    })
    .await;
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn missing_objects_are_named() {
    let steps = vec![
        step(
            "GET",
            format!("{SERVICES}/iris"),
            404,
            not_found("services", "iris"),
        ),
        step(
            "GET",
            "/api/v1/namespaces/ml/secrets/iris-admin",
            404,
            not_found("secrets", "iris-admin"),
        ),
    ];
    let selector: BTreeMap<String, String> = BTreeMap::new();
    let ((service, secret), _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        (
            cluster.set_service_selector("ml", "iris", &selector).await,
            cluster.read_secret("ml", "iris-admin", "admin-token").await,
        )
    })
    .await;
    insta::assert_snapshot!(format!(
        "{}\n---\n{}",
        service.expect_err("404"),
        secret.expect_err("404")
    ));
}

#[tokio::test]
async fn forbidden_names_the_missing_verb_and_resource() {
    let message = "deployments.apps \"iris-canary\" is forbidden: User \"system:serviceaccount:ci:slipway\" cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"ml\"";
    let steps = vec![
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris-canary"),
            404,
            not_found("deployments.apps", "iris-canary"),
        ),
        step(
            "PATCH",
            format!("{DEPLOYMENTS}/iris-canary"),
            403,
            status(403, "Forbidden", message),
        ),
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            403,
            status(
                403,
                "Forbidden",
                "leases.coordination.k8s.io \"slipway-lock-iris\" is forbidden: User \"system:serviceaccount:ci:slipway\" cannot get resource \"leases\"",
            ),
        ),
    ];
    let spec = rollout::canary_spec(
        &stable_spec("reg/iris@sha256:old"),
        &release(),
        "reg/iris@sha256:new",
        1,
    );
    let ((derive, lock), _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        (
            cluster.derive_deployment("iris", &spec).await,
            cluster
                .acquire_lock(&release(), "ci-run-1", Duration::from_secs(60))
                .await,
        )
    })
    .await;
    let derive = derive.expect_err("403");
    assert!(
        matches!(derive, Error::Forbidden { verb: "patch", .. }),
        "{derive:?}"
    );
    insta::assert_snapshot!(format!("{derive}\n---\n{}", lock.expect_err("403")));
}

#[tokio::test]
async fn secret_value_is_read_but_never_shown() {
    let steps = vec![
        step(
            "GET",
            "/api/v1/namespaces/ml/secrets/iris-admin",
            200,
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "iris-admin" }, "data": { "admin-token": "czNjcjN0LXQwa2Vu" } }),
        ),
        step(
            "GET",
            "/api/v1/namespaces/ml/secrets/iris-admin",
            200,
            json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "iris-admin" }, "data": { "admin-token": "czNjcjN0LXQwa2Vu" } }),
        ),
    ];
    let ((token, missing), _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        (
            cluster
                .read_secret("ml", "iris-admin", "admin-token")
                .await
                .expect("secret"),
            cluster.read_secret("ml", "iris-admin", "password").await,
        )
    })
    .await;
    assert_eq!(token.expose(), "s3cr3t-t0ken");
    assert!(!format!("{token:?} {token}").contains("s3cr3t"));
    let missing = missing.expect_err("no such key").to_string();
    assert!(
        missing.contains("no key `password` (keys: admin-token)") && !missing.contains("s3cr3t"),
        "{missing}"
    );
}

#[tokio::test]
async fn events_are_recorded_on_the_deployment() {
    let steps = vec![
        step(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/ml/events",
            201,
            json!({ "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": { "name": "x" }, "eventTime": "2026-11-22T10:00:00.000000Z" }),
        ),
        step(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/ml/events",
            201,
            json!({ "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": { "name": "y" }, "eventTime": "2026-11-22T10:00:00.000000Z" }),
        ),
    ];
    let ((), requests) = run(
        steps,
        KubeClusterConfig {
            reporting_instance: "ci-runner-7".into(),
            ..KubeClusterConfig::default()
        },
        async |cluster| {
            cluster
                .emit_event(
                    "ml",
                    "iris",
                    "CanaryStep",
                    "2 canary pod(s) ready next to 4 stable: 33% of pods",
                )
                .await
                .expect("event");
            cluster
                .emit_event(
                    "ml",
                    "iris",
                    "Aborted",
                    "canary analysis failed: error rate 0.12 > 0.05",
                )
                .await
                .expect("event");
        },
    )
    .await;
    insta::assert_json_snapshot!(requests);
}

fn record(revision: u64, digest_hex: char, outcome: &str) -> ReleaseRecord {
    let digest = format!("sha256:{}", digest_hex.to_string().repeat(64));
    serde_json::from_value(json!({
        "release": "ml/iris",
        "revision": revision,
        "image": format!("reg.example/iris@{digest}"),
        "digest": digest,
        "model": { "name": "iris", "version": revision },
        "strategy": "canary",
        "outcome": outcome,
        "actor": "ci",
        "at": "2026-11-22T10:00:00Z",
        "reason": null,
    }))
    .expect("record")
}

fn history_object(record: &ReleaseRecord, prev_hash: &str) -> (Value, String) {
    let raw = serde_json::to_string(record).expect("json");
    let object = json!({
        "metadata": { "name": format!("slipway-release-iris-v{}", record.revision), "namespace": "ml", "labels": { "slipway.dev/release": "iris" } },
        "data": { "record": raw, "prev-hash": prev_hash },
    });
    (object, raw)
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

#[tokio::test]
async fn history_appends_a_hash_chained_configmap_and_trims_to_the_limit() {
    let (first, first_raw) = history_object(&record(1, 'a', "promoted"), "");
    let (second, second_raw) = history_object(&record(2, 'b', "promoted"), &sha256_hex(&first_raw));
    let list = json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [second, first] });
    let steps = vec![
        step("GET", CONFIGMAPS, 200, list.clone()),
        step("GET", CONFIGMAPS, 200, list),
        step(
            "POST",
            CONFIGMAPS,
            201,
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "slipway-release-iris-v3" } }),
        ),
        step(
            "DELETE",
            format!("{CONFIGMAPS}/slipway-release-iris-v1"),
            200,
            deleted(),
        ),
    ];
    let (history, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        let history = cluster.release_history(&release()).await.expect("history");
        cluster
            .record_release(&record(3, 'c', "aborted"), 2)
            .await
            .expect("record");
        history
    })
    .await;
    assert_eq!(
        history
            .iter()
            .map(|record| record.revision)
            .collect::<Vec<_>>(),
        [1, 2],
        "sorted by revision"
    );
    assert_eq!(
        requests[2]["body"]["data"]["prev-hash"],
        sha256_hex(&second_raw)
    );
    assert_eq!(
        requests[0]["query"]["labelSelector"],
        "slipway.dev/release=iris"
    );
    insta::assert_json_snapshot!(requests, { "[2].body.data.record" => "[record json]" });
}

#[tokio::test]
async fn edited_history_is_refused() {
    let (first, _) = history_object(&record(1, 'a', "promoted"), "");
    let (second, _) = history_object(&record(2, 'b', "promoted"), "0000");
    let steps = vec![step(
        "GET",
        CONFIGMAPS,
        200,
        json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [first, second] }),
    )];
    let (result, _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster.release_history(&release()).await
    })
    .await;
    let err = result.expect_err("broken chain");
    assert!(matches!(err, Error::History { .. }), "{err:?}");
    insta::assert_snapshot!(err.to_string());
}

/// The record that ends an in-progress revision replaces it in place (PUT, same name), keeping
/// the hash of the revision before it, so the chain stays whole; a finished revision is never
/// replaced.
#[tokio::test]
async fn the_end_of_an_in_progress_revision_replaces_it_in_place() {
    let (first, first_raw) = history_object(&record(1, 'a', "promoted"), "");
    let (second, _) = history_object(&record(2, 'b', "in-progress"), &sha256_hex(&first_raw));
    let list = json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [first, second] });
    let steps = vec![
        step("GET", CONFIGMAPS, 200, list),
        step(
            "PUT",
            format!("{CONFIGMAPS}/slipway-release-iris-v2"),
            200,
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "slipway-release-iris-v2" } }),
        ),
    ];
    let (result, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .record_release(&record(2, 'b', "promoted"), 10)
            .await
    })
    .await;
    result.expect("replaced");
    assert_eq!(
        requests[1]["request"], "PUT /api/v1/namespaces/ml/configmaps/slipway-release-iris-v2",
        "{requests:#}"
    );
    assert_eq!(
        requests[1]["body"]["data"]["prev-hash"],
        sha256_hex(&first_raw),
        "keeps its place in the chain"
    );
    let stored: ReleaseRecord = serde_json::from_str(
        requests[1]["body"]["data"]["record"]
            .as_str()
            .expect("record"),
    )
    .expect("record json");
    assert_eq!(stored.outcome, slipway_core::Outcome::Promoted);

    // A promoted revision is final: recording it again with other content is refused, unsent.
    let (done, _) = history_object(&record(2, 'b', "promoted"), &sha256_hex(&first_raw));
    let (first, _) = history_object(&record(1, 'a', "promoted"), "");
    let steps = vec![step(
        "GET",
        CONFIGMAPS,
        200,
        json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [first, done] }),
    )];
    let (result, _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster.record_release(&record(2, 'b', "aborted"), 10).await
    })
    .await;
    assert!(matches!(result, Err(Error::History { .. })), "{result:?}");
}

#[tokio::test]
async fn re_recording_the_same_revision_is_a_no_op() {
    let (first, _) = history_object(&record(1, 'a', "promoted"), "");
    let steps = vec![step(
        "GET",
        CONFIGMAPS,
        200,
        json!({ "apiVersion": "v1", "kind": "ConfigMapList", "metadata": {}, "items": [first] }),
    )];
    let (result, _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        (
            cluster
                .record_release(&record(1, 'a', "promoted"), 10)
                .await,
            cluster
                .record_release(&record(1, 'b', "promoted"), 10)
                .await,
        )
    })
    .await;
    // The second call gets no response: the script has one step. It must fail before writing.
    assert!(result.0.is_ok(), "{:?}", result.0);
    assert!(result.1.is_err());
}

fn lease(holder: &str, renewed: &str, transitions: i32, resource_version: &str) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": { "name": "slipway-lock-iris", "namespace": "ml", "resourceVersion": resource_version },
        "spec": { "holderIdentity": holder, "leaseDurationSeconds": 900, "acquireTime": renewed, "renewTime": renewed, "leaseTransitions": transitions },
    })
}

#[tokio::test]
async fn lock_is_created_when_free_and_refused_naming_a_live_holder() {
    let steps = vec![
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            404,
            not_found("leases.coordination.k8s.io", "slipway-lock-iris"),
        ),
        step(
            "POST",
            LEASES,
            201,
            lease("ci-run-1", "2026-11-22T10:00:00.000000Z", 0, "1"),
        ),
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            lease("ci-run-1", "2026-11-22T09:55:00.000000Z", 0, "1"),
        ),
    ];
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .acquire_lock(&release(), "ci-run-1", Duration::from_secs(900))
            .await
            .expect("free lock");
        let refused = cluster
            .acquire_lock(&release(), "ci-run-2", Duration::from_secs(900))
            .await
            .expect_err("held");
        insta::assert_snapshot!("lock_refused_naming_the_holder", refused.to_string());
    })
    .await;
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn expired_lock_is_taken_over_retrying_a_conflict_and_released_by_its_holder() {
    let steps = vec![
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            lease("ci-run-1", "2026-11-22T09:00:00.000000Z", 2, "5"),
        ),
        step(
            "PUT",
            format!("{LEASES}/slipway-lock-iris"),
            409,
            conflict("leases.coordination.k8s.io", "slipway-lock-iris"),
        ),
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            lease("ci-run-1", "2026-11-22T09:00:00.000000Z", 2, "6"),
        ),
        step(
            "PUT",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            lease("ci-run-2", "2026-11-22T10:00:00.000000Z", 3, "7"),
        ),
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            lease("ci-run-2", "2026-11-22T10:00:00.000000Z", 3, "7"),
        ),
        step(
            "DELETE",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            deleted(),
        ),
        step(
            "GET",
            format!("{LEASES}/slipway-lock-iris"),
            200,
            lease("ci-run-3", "2026-11-22T10:00:00.000000Z", 4, "8"),
        ),
    ];
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .acquire_lock(&release(), "ci-run-2", Duration::from_secs(900))
            .await
            .expect("take over");
        cluster
            .release_lock(&release(), "ci-run-2")
            .await
            .expect("release");
        // Someone else's lock is left alone.
        cluster
            .release_lock(&release(), "ci-run-2")
            .await
            .expect("not ours");
    })
    .await;
    assert_eq!(requests[3]["body"]["spec"]["leaseTransitions"], 3);
    insta::assert_json_snapshot!(requests);
}

const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/ml/ingresses";

/// An Ingress as the API server returns it: the user's `iris-web` routes `/predict` on
/// `iris.example.com` to Service `iris` and other paths to `docs`; a managed one is Slipway's.
fn ingress(name: &str, managed: bool, resource_version: &str) -> Value {
    let labels = if managed {
        json!({ "app.kubernetes.io/managed-by": "slipway" })
    } else {
        json!({ "app": "iris" })
    };
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {
            "name": name, "namespace": "ml", "uid": format!("uid-{name}"), "resourceVersion": resource_version, "labels": labels,
            "annotations": { "kubernetes.io/ingress.class": "nginx", "nginx.ingress.kubernetes.io/proxy-body-size": "8m" },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{ "hosts": ["iris.example.com"], "secretName": "iris-tls" }],
            "rules": [
                { "host": "iris.example.com", "http": { "paths": [
                    { "path": "/predict", "pathType": "Prefix", "backend": { "service": { "name": "iris", "port": { "name": "http" } } } },
                    { "path": "/docs", "pathType": "Prefix", "backend": { "service": { "name": "docs", "port": { "number": 80 } } } },
                ] } },
                { "host": "docs.example.com", "http": { "paths": [
                    { "path": "/", "pathType": "Prefix", "backend": { "service": { "name": "docs", "port": { "number": 80 } } } },
                ] } },
                { "http": { "paths": [
                    { "path": "/v1", "pathType": "Exact", "backend": { "service": { "name": "iris", "port": { "number": 8080 } } } },
                ] } },
            ],
        },
    })
}

fn canary_ingress(weight: u8) -> slipway_k8s_rollout::CanaryIngress {
    slipway_k8s_rollout::CanaryIngress {
        namespace: "ml".into(),
        name: "iris-web-canary".into(),
        source: "iris-web".into(),
        service: "iris".into(),
        canary_service: "iris-canary".into(),
        weight,
    }
}

#[tokio::test]
async fn canary_ingress_copies_the_paths_to_the_service_with_nginx_canary_annotations() {
    let steps = vec![
        // First weight: the canary Ingress is new.
        step(
            "GET",
            format!("{INGRESSES}/iris-web"),
            200,
            ingress("iris-web", false, "70"),
        ),
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            404,
            not_found("ingresses.networking.k8s.io", "iris-web-canary"),
        ),
        step(
            "PATCH",
            format!("{INGRESSES}/iris-web-canary"),
            201,
            ingress("iris-web-canary", true, "1"),
        ),
        // Next weight: the same apply, now over Slipway's own object.
        step(
            "GET",
            format!("{INGRESSES}/iris-web"),
            200,
            ingress("iris-web", false, "70"),
        ),
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", true, "1"),
        ),
        step(
            "PATCH",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", true, "2"),
        ),
        // Removal: by uid, only Slipway's.
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", true, "2"),
        ),
        step(
            "DELETE",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            deleted(),
        ),
        // Removing it again: absent is fine.
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            404,
            not_found("ingresses.networking.k8s.io", "iris-web-canary"),
        ),
    ];
    let ((), requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster
            .apply_canary_ingress(&canary_ingress(10))
            .await
            .expect("weight 10");
        cluster
            .apply_canary_ingress(&canary_ingress(25))
            .await
            .expect("weight 25");
        cluster
            .delete_canary_ingress("ml", "iris-web-canary")
            .await
            .expect("delete");
        cluster
            .delete_canary_ingress("ml", "iris-web-canary")
            .await
            .expect("delete again");
    })
    .await;
    for idx in [2, 5] {
        let request = &requests[idx];
        assert_eq!(request["query"]["fieldManager"], "slipway", "{request}");
        assert_eq!(request["query"]["force"], "true", "{request}");
        let annotations = &request["body"]["metadata"]["annotations"];
        assert_eq!(annotations["nginx.ingress.kubernetes.io/canary"], "true");
        assert_eq!(
            request["body"]["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "slipway"
        );
    }
    assert_eq!(
        requests[2]["body"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
        "10"
    );
    assert_eq!(
        requests[5]["body"]["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
        "25"
    );
    assert_eq!(
        requests[7]["body"]["preconditions"]["uid"],
        "uid-iris-web-canary"
    );
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn canary_ingress_errors_name_the_users_ingress_and_refuse_foreign_objects() {
    let mut other = ingress("iris-web", false, "70");
    other["spec"]["rules"] = json!([{ "host": "docs.example.com", "http": { "paths": [
        { "path": "/", "pathType": "Prefix", "backend": { "service": { "name": "docs", "port": { "number": 80 } } } },
    ] } }]);
    let steps = vec![
        step(
            "GET",
            format!("{INGRESSES}/iris-web"),
            404,
            not_found("ingresses.networking.k8s.io", "iris-web"),
        ),
        step("GET", format!("{INGRESSES}/iris-web"), 200, other),
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            404,
            not_found("ingresses.networking.k8s.io", "iris-web-canary"),
        ),
        step(
            "GET",
            format!("{INGRESSES}/iris-web"),
            200,
            ingress("iris-web", false, "70"),
        ),
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", false, "5"),
        ),
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", false, "5"),
        ),
    ];
    let (errors, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        [
            cluster.apply_canary_ingress(&canary_ingress(10)).await,
            cluster.apply_canary_ingress(&canary_ingress(10)).await,
            cluster.apply_canary_ingress(&canary_ingress(10)).await,
            cluster.delete_canary_ingress("ml", "iris-web-canary").await,
        ]
        .map(|result| result.expect_err("refused").to_string())
    })
    .await;
    assert!(
        matches!(requests.as_array().map(Vec::len), Some(6)),
        "nothing written: {requests}"
    );
    assert!(
        errors[0].contains("Ingress `ml/iris-web` not found"),
        "{}",
        errors[0]
    );
    insta::assert_snapshot!(errors.join("\n---\n"));
}

/// A `Status` failure with the API server's `retryAfterSeconds`, as a 429 from API Priority and
/// Fairness carries it.
fn throttled(retry_after_seconds: u32) -> Value {
    let mut body = status(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
    );
    body["details"] = json!({ "retryAfterSeconds": retry_after_seconds });
    body
}

#[tokio::test]
async fn throttling_and_unavailability_are_retried_after_the_servers_wait() {
    let steps = vec![
        step("GET", format!("{DEPLOYMENTS}/iris"), 429, throttled(2)),
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            200,
            deployment("iris", "reg/iris@sha256:old", false, "complete", "100"),
        ),
        // A write: server-side apply of the preview Service answered 503 once.
        step(
            "GET",
            format!("{SERVICES}/iris"),
            200,
            service("iris", json!({ "app": "iris" }), false, "5"),
        ),
        step(
            "GET",
            format!("{SERVICES}/iris-preview"),
            404,
            not_found("services", "iris-preview"),
        ),
        step(
            "PATCH",
            format!("{SERVICES}/iris-preview"),
            503,
            status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
        ),
        step(
            "PATCH",
            format!("{SERVICES}/iris-preview"),
            200,
            service("iris-preview", json!({ "app": "iris" }), true, "6"),
        ),
    ];
    let (client, server) = serve(steps);
    let clock = clock();
    let cluster = KubeCluster::new(client, KubeClusterConfig::default()).with_clock(clock.clone());
    let start = slipway_core::Clock::now(clock.as_ref());
    let stable = cluster
        .deployment("ml", "iris")
        .await
        .expect("read after a 429");
    let after_throttle = slipway_core::Clock::now(clock.as_ref());
    let selector: BTreeMap<String, String> = [("app".to_owned(), "iris".to_owned())].into();
    cluster
        .copy_service("ml", "iris", "iris-preview", &selector)
        .await
        .expect("apply after a 503");
    let after_unavailable = slipway_core::Clock::now(clock.as_ref());
    drop(cluster);
    let requests = transcript(server).await;
    assert_eq!(stable.map(|state| state.spec.replicas), Some(4));
    assert_eq!(
        after_throttle.duration_since(start),
        jiff::SignedDuration::from_secs(2),
        "the 429's retryAfterSeconds is honoured"
    );
    assert_eq!(
        after_unavailable.duration_since(after_throttle),
        jiff::SignedDuration::from_millis(250),
        "the first backoff"
    );
    // The repeated apply is the same request.
    assert_eq!(requests[4], requests[5]);
}

#[tokio::test]
async fn a_failing_server_is_given_up_on_after_the_bounded_attempts_naming_verb_and_object() {
    let failing = || {
        step(
            "GET",
            format!("{DEPLOYMENTS}/iris"),
            500,
            status(500, "InternalError", "etcdserver: request timed out"),
        )
    };
    let config = KubeClusterConfig::default();
    let attempts = config.retry.attempts;
    let steps = (0..attempts).map(|_| failing()).collect();
    let (result, requests) = run(steps, config, async |cluster| {
        cluster.deployment("ml", "iris").await
    })
    .await;
    let err = result.expect_err("a server failing every time");
    assert_eq!(requests.as_array().map(Vec::len), Some(4));
    let text = err.to_string();
    assert!(
        text.starts_with("get Deployment `ml/iris`: etcdserver: request timed out (500 InternalError) (gave up after 4 attempts)"),
        "{text}"
    );
    assert!(text.contains("\n\nhint: "), "{text}");
}

#[tokio::test]
async fn an_audit_append_is_never_sent_twice_after_a_failure_that_may_have_stored_it() {
    let steps = vec![step(
        "POST",
        CONFIGMAPS,
        500,
        status(500, "InternalError", "etcdserver: leader changed"),
    )];
    let object = slipway_k8s_rollout::AuditObject {
        name: "slipway-audit-iris-1".into(),
        entry: "{}".into(),
    };
    let (result, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster.create_audit_object("ml", "iris", &object).await
    })
    .await;
    let text = result.expect_err("a failed append").to_string();
    assert_eq!(requests.as_array().map(Vec::len), Some(1));
    assert!(text.contains("not retried"), "{text}");
}

#[tokio::test]
async fn an_event_stored_by_an_attempt_whose_answer_was_lost_is_not_an_error() {
    let steps = vec![
        step(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/ml/events",
            504,
            status(
                504,
                "Timeout",
                "the server was unable to return a response in the time allotted",
            ),
        ),
        step(
            "POST",
            "/apis/events.k8s.io/v1/namespaces/ml/events",
            409,
            status(
                409,
                "AlreadyExists",
                "events.events.k8s.io \"iris.0123\" already exists",
            ),
        ),
    ];
    let (result, _) = run(steps, KubeClusterConfig::default(), async |cluster| {
        cluster.emit_event("ml", "iris", "CanaryStep", "25%").await
    })
    .await;
    result.expect("the second attempt finds the first one's Event");
}

#[tokio::test]
async fn a_server_that_never_answers_fails_the_call_within_the_timeouts() {
    // Accepts every request and answers none.
    let (service, mut handle) = tower_test::mock::pair::<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >();
    let silent = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(request) = handle.next_request().await {
            pending.push(request);
        }
        pending.len()
    });
    let config = KubeClusterConfig {
        timeouts: slipway_k8s_rollout::KubeTimeouts {
            connect: Duration::from_millis(20),
            write: Duration::from_millis(20),
            read: Duration::from_millis(60),
        },
        retry: slipway_k8s_rollout::KubeRetry {
            attempts: 2,
            ..slipway_k8s_rollout::KubeRetry::default()
        },
        ..KubeClusterConfig::default()
    };
    let cluster = cluster(kube::Client::new(service, "default"), config);
    let started = std::time::Instant::now();
    let err = cluster
        .service_selector("ml", "iris")
        .await
        .expect_err("no answer");
    let waited = started.elapsed();
    drop(cluster);
    assert_eq!(
        silent.await.expect("silent server"),
        2,
        "one request per attempt"
    );
    assert!(waited >= Duration::from_millis(200), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(
        err.to_string().lines().next(),
        Some("get Service `ml/iris`: no answer within 100ms (gave up after 2 attempts)")
    );
}

#[tokio::test]
async fn remove_managed_takes_routing_down_first_and_scales_only_the_standby_colour() {
    const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/ml/ingresses";
    let canary = || deployment("iris-canary", "reg/iris@sha256:new", true, "complete", "9");
    let green = || deployment("iris-green", "reg/iris@sha256:new", true, "complete", "12");
    let serving_blue = || {
        service(
            "iris",
            json!({ "app": "iris", "slipway.dev/track": "blue" }),
            false,
            "5",
        )
    };
    let canary_service = || {
        service(
            "iris-canary",
            json!({ "slipway.dev/track": "canary" }),
            true,
            "6",
        )
    };
    let steps = vec![
        // What is left over: the canary's routing and Deployment, no preview Service, and green
        // still scaled up while the Service selects blue.
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", true, "3"),
        ),
        step(
            "GET",
            format!("{SERVICES}/iris-canary"),
            200,
            canary_service(),
        ),
        step("GET", format!("{DEPLOYMENTS}/iris-canary"), 200, canary()),
        step(
            "GET",
            format!("{SERVICES}/iris-preview"),
            404,
            not_found("services", "iris-preview"),
        ),
        step("GET", format!("{SERVICES}/iris"), 200, serving_blue()),
        step("GET", format!("{DEPLOYMENTS}/iris-green"), 200, green()),
        step("GET", format!("{DEPLOYMENTS}/iris-green"), 200, green()),
        // Removal, routing first.
        step(
            "GET",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            ingress("iris-web-canary", true, "3"),
        ),
        step(
            "DELETE",
            format!("{INGRESSES}/iris-web-canary"),
            200,
            deleted(),
        ),
        step(
            "GET",
            format!("{SERVICES}/iris-canary"),
            200,
            canary_service(),
        ),
        step("DELETE", format!("{SERVICES}/iris-canary"), 200, deleted()),
        step("GET", format!("{DEPLOYMENTS}/iris-canary"), 200, canary()),
        step(
            "DELETE",
            format!("{DEPLOYMENTS}/iris-canary"),
            200,
            deleted(),
        ),
        // The standby is re-checked against the Service, then scaled to zero.
        step("GET", format!("{SERVICES}/iris"), 200, serving_blue()),
        step("GET", format!("{DEPLOYMENTS}/iris-green"), 200, green()),
        step("GET", format!("{DEPLOYMENTS}/iris-green"), 200, green()),
        step("PATCH", format!("{DEPLOYMENTS}/iris-green"), 200, green()),
    ];
    let traffic = rollout::TrafficRouting::NginxIngress {
        ingress: "iris-web".into(),
    };
    let bluegreen = slipway_k8s_rollout::bluegreen::BlueGreenConfig::new("iris");
    let (removed, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        slipway_k8s_rollout::cleanup::remove_managed(
            cluster,
            &release(),
            "iris",
            &traffic,
            Some(&bluegreen),
        )
        .await
    })
    .await;
    let removed: Vec<String> = removed
        .expect("remove")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        removed,
        [
            "Ingress/ml/iris-web-canary",
            "Service/ml/iris-canary",
            "Deployment/ml/iris-canary",
            "Deployment/ml/iris-green",
        ]
    );
    assert_eq!(requests[16]["body"]["spec"]["replicas"], 0);
    insta::assert_json_snapshot!(requests);
}

#[tokio::test]
async fn connect_sets_timeouts_on_the_real_client_so_a_silent_server_cannot_hang_a_release() {
    // An API server that accepts connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming() {
            held.push(connection);
        }
    });
    let kubeconfig = std::env::temp_dir().join(format!(
        "slipway-silent-kubeconfig-{}.yaml",
        std::process::id()
    ));
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: silent\n  cluster:\n    server: http://{address}\ncontexts:\n- name: silent\n  context:\n    cluster: silent\n    user: nobody\n    namespace: ml\ncurrent-context: silent\nusers:\n- name: nobody\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    let options = slipway_k8s_rollout::ConnectOptions {
        kubeconfig: Some(kubeconfig.clone()),
        ..Default::default()
    };
    let config = KubeClusterConfig {
        timeouts: slipway_k8s_rollout::KubeTimeouts {
            connect: Duration::from_millis(100),
            write: Duration::from_millis(100),
            read: Duration::from_millis(200),
        },
        retry: slipway_k8s_rollout::KubeRetry {
            attempts: 2,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(10),
        },
        ..KubeClusterConfig::default()
    };
    let cluster = slipway_k8s_rollout::connect(&options, config)
        .await
        .expect("connect");
    let started = std::time::Instant::now();
    let err = cluster
        .deployment("ml", "iris")
        .await
        .expect_err("no answer");
    let waited = started.elapsed();
    let _ = std::fs::remove_file(&kubeconfig);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("get Deployment `ml/iris`: ")
            && text.contains("(gave up after 2 attempts)"),
        "{text}"
    );
}

const HTTPROUTES: &str = "/apis/gateway.networking.k8s.io/v1/namespaces/ml/httproutes";

/// The user's HTTPRoute, shaped as the Gateway API's traffic-splitting guide writes one
/// (kubernetes-sigs/gateway-api `examples/standard/traffic-splitting/traffic-split-2.yaml`:
/// hostnames, a label, one rule), before any split: every request to `iris`.
fn http_route(rules: Value, annotations: Option<Value>, resource_version: &str) -> Value {
    let mut metadata = json!({
        "name": "iris-route",
        "namespace": "ml",
        "labels": { "gateway": "prod-web-gw" },
        "resourceVersion": resource_version,
        "uid": "uid-iris-route",
    });
    if let Some(annotations) = annotations {
        metadata["annotations"] = annotations;
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": metadata,
        "spec": { "hostnames": ["iris.example.com"], "rules": rules },
    })
}

/// Gateway API weights: the route is read, and written with server-side apply carrying only
/// `spec.rules` and Slipway's annotation (field manager `slipway`, forced: the rules list is
/// atomic); the restore writes the original rules and leaves the annotation out, which removes
/// it. A route that is gone is named with a hint, and never created.
#[tokio::test]
async fn http_route_weights_are_applied_with_only_the_rules_and_restored() {
    let users = json!([{ "backendRefs": [{ "name": "iris", "port": 8080 }] }]);
    let weighted = json!([{ "backendRefs": [
        { "name": "iris", "port": 8080, "weight": 90 },
        { "name": "iris-canary", "port": 8080, "weight": 10 }
    ] }]);
    let original = json!([[0, [{ "name": "iris", "port": 8080 }]]]).to_string();
    let annotated = json!({ "slipway.dev/original-backends": original });
    let steps = vec![
        step(
            "GET",
            format!("{HTTPROUTES}/iris-route"),
            200,
            http_route(users.clone(), None, "5"),
        ),
        step(
            "GET",
            format!("{HTTPROUTES}/iris-route"),
            200,
            http_route(users.clone(), None, "5"),
        ),
        step(
            "PATCH",
            format!("{HTTPROUTES}/iris-route"),
            200,
            http_route(weighted.clone(), Some(annotated.clone()), "6"),
        ),
        step(
            "GET",
            format!("{HTTPROUTES}/iris-route"),
            200,
            http_route(weighted.clone(), Some(annotated.clone()), "6"),
        ),
        step(
            "GET",
            format!("{HTTPROUTES}/iris-route"),
            200,
            http_route(weighted.clone(), Some(annotated.clone()), "6"),
        ),
        step(
            "PATCH",
            format!("{HTTPROUTES}/iris-route"),
            200,
            http_route(users.clone(), None, "7"),
        ),
        step(
            "GET",
            format!("{HTTPROUTES}/gone"),
            404,
            not_found("httproutes.gateway.networking.k8s.io", "gone"),
        ),
    ];
    let (gone, requests) = run(steps, KubeClusterConfig::default(), async |cluster| {
        let route = cluster
            .http_route("ml", "iris-route")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(route.rules, users);
        assert_eq!(route.original, None);
        let (rules, annotation) = slipway_k8s_rollout::gateway::weigh(
            &route,
            &slipway_k8s_rollout::gateway::Weights {
                service: "iris",
                canary_service: "iris-canary",
                baseline_service: None,
                percent: 10,
            },
        )
        .expect("weigh");
        assert_eq!(rules, weighted);
        cluster
            .apply_http_route(&slipway_k8s_rollout::gateway::HttpRoute {
                rules,
                original: Some(annotation),
                ..route
            })
            .await
            .expect("weighted");
        let route = cluster
            .http_route("ml", "iris-route")
            .await
            .expect("read")
            .expect("exists");
        assert_eq!(route.original.as_deref(), Some(original.as_str()));
        let rules = slipway_k8s_rollout::gateway::restore(&route, "iris", &["iris-canary"])
            .expect("restore");
        cluster
            .apply_http_route(&slipway_k8s_rollout::gateway::HttpRoute {
                rules,
                original: None,
                ..route
            })
            .await
            .expect("restored");
        cluster
            .apply_http_route(&slipway_k8s_rollout::gateway::HttpRoute {
                namespace: "ml".into(),
                name: "gone".into(),
                rules: users.clone(),
                original: None,
            })
            .await
    })
    .await;
    let gone = gone
        .expect_err("a missing route is not created")
        .to_string();
    assert!(
        gone.contains("HTTPRoute `ml/gone` not found") && gone.contains("rollout.route"),
        "{gone}"
    );
    for idx in [2, 5] {
        let request = &requests[idx];
        assert_eq!(request["query"]["fieldManager"], "slipway", "{request}");
        assert_eq!(request["query"]["force"], "true", "{request}");
        assert!(
            request["body"]["spec"].get("hostnames").is_none(),
            "only the rules are applied: {request}"
        );
    }
    assert_eq!(requests[2]["body"]["spec"]["rules"], weighted);
    assert_eq!(requests[2]["body"]["metadata"]["annotations"], annotated);
    assert_eq!(requests[5]["body"]["spec"]["rules"], users);
    assert!(
        requests[5]["body"]["metadata"].get("annotations").is_none(),
        "{}",
        requests[5]
    );
    insta::assert_json_snapshot!(requests);
}
