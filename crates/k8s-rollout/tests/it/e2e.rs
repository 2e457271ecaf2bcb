//! The scenarios of `scenarios.rs` against a real cluster (kind or k3s). Marked
//! `#[ignore = "needs cluster"]`; run them with `cargo xtask e2e --kubeconfig PATH`, which sets
//! [`KUBECONFIG_VAR`]. Each scenario gets its own namespace `slipway-e2e-<scenario>-<time>`,
//! deleted at the end; the kubeconfig's user must be allowed to create namespaces.
//!
//! The workload is `registry.k8s.io/pause` (two versions, pinned by digest): it starts in a
//! second and is ready as soon as it runs. The broken image is a name that cannot resolve, so its
//! pods sit in `ImagePullBackOff`.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use slipway_core::{Clock, ReleaseId};
use slipway_k8s_rollout::{ConnectOptions, KubeClusterConfig, connect};

use crate::scenarios::{self, World};

/// Path of the kubeconfig for the real-cluster tests (set by `cargo xtask e2e --kubeconfig`).
pub(crate) const KUBECONFIG_VAR: &str = "SLIPWAY_E2E_KUBECONFIG";
/// Optional kubeconfig context for the real-cluster tests.
pub(crate) const CONTEXT_VAR: &str = "SLIPWAY_E2E_CONTEXT";

const OLD: &str =
    "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a";
const NEW: &str =
    "registry.k8s.io/pause@sha256:7031c1b283388d2c2e09b57badb803c05ebed362dc88d84b480cc47f72a21097";
const BROKEN: &str = "registry.invalid/slipway/never@sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug)]
struct WallClock;

#[async_trait::async_trait]
impl Clock for WallClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

struct Namespaced {
    client: kube::Client,
    namespace: String,
}

impl Namespaced {
    async fn delete(self) {
        let _ = Api::<Namespace>::all(self.client)
            .delete(&self.namespace, &DeleteParams::background())
            .await;
    }
}

/// A fresh namespace with a 4-replica Deployment `iris` (as Helm would create it) and a Service.
async fn world(scenario: &str) -> (World, Namespaced) {
    let Ok(path) = std::env::var(KUBECONFIG_VAR) else {
        panic!("{KUBECONFIG_VAR} is not set\n\nhint: run `cargo xtask e2e --kubeconfig PATH`");
    };
    let options = ConnectOptions {
        kubeconfig: Some(path.into()),
        context: std::env::var(CONTEXT_VAR).ok(),
        namespace: None,
    };
    let namespace = format!("slipway-e2e-{scenario}-{}", Timestamp::now().as_second());
    let cluster = connect(
        &options,
        KubeClusterConfig {
            reporting_instance: format!("e2e-{scenario}"),
            ..KubeClusterConfig::default()
        },
    )
    .await
    .expect("connect");
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(options.kubeconfig.as_ref().expect("path"))
                .expect("kubeconfig"),
            &kube::config::KubeConfigOptions {
                context: options.context.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("config"),
    )
    .expect("client");
    let post = PostParams::default();
    let ns: Namespace =
        serde_json::from_value(json!({ "metadata": { "name": namespace } })).expect("namespace");
    Api::<Namespace>::all(client.clone())
        .create(&post, &ns)
        .await
        .expect("create namespace");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": { "name": "iris", "labels": { "app": "iris", "app.kubernetes.io/managed-by": "Helm" } },
        "spec": {
            "replicas": 4,
            "selector": { "matchLabels": { "app": "iris" } },
            "template": {
                "metadata": { "labels": { "app": "iris" } },
                "spec": { "terminationGracePeriodSeconds": 0, "containers": [{ "name": "server", "image": OLD, "resources": { "requests": { "cpu": "1m", "memory": "4Mi" } } }] },
            },
        },
    }))
    .expect("deployment");
    Api::<Deployment>::namespaced(client.clone(), &namespace)
        .create(&post, &deployment)
        .await
        .expect("create deployment");
    let service: Service = serde_json::from_value(json!({
        "metadata": { "name": "iris" },
        "spec": { "selector": { "app": "iris" }, "ports": [{ "name": "http", "port": 80, "targetPort": 8080 }] },
    }))
    .expect("service");
    Api::<Service>::namespaced(client.clone(), &namespace)
        .create(&post, &service)
        .await
        .expect("create service");
    let clock: Arc<dyn Clock> = Arc::new(WallClock);
    let release = ReleaseId::parse(&format!("{namespace}/iris")).expect("release");
    slipway_k8s_rollout::rollout::wait_ready(
        &cluster,
        clock.as_ref(),
        &namespace,
        "iris",
        Duration::from_secs(180),
    )
    .await
    .expect("stable ready");
    let world = World {
        cluster: Arc::new(cluster),
        clock,
        release,
        service: "iris".into(),
        old: OLD.into(),
        new: NEW.into(),
        broken: BROKEN.into(),
        deadline: Duration::from_secs(180),
        fail_deadline: Duration::from_secs(30),
        lock_ttl: Duration::from_secs(5),
        pause: Duration::ZERO,
    };
    (world, Namespaced { client, namespace })
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn e2e_canary_success() {
    let (world, ns) = world("canary").await;
    scenarios::canary_success(&world).await;
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn e2e_canary_failure() {
    let (world, ns) = world("failure").await;
    scenarios::canary_failure(&world).await;
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn e2e_killed_and_rerun_converges() {
    // One kill per phase (lock held, canary up, stable promoted, recorded) keeps the run short.
    for k in [1, 3, 5, 6] {
        let (world, ns) = world(&format!("kill{k}")).await;
        scenarios::killed_and_rerun(&world, k).await;
        ns.delete().await;
    }
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn e2e_concurrent_deploys() {
    let (world, ns) = world("concurrent").await;
    scenarios::concurrent_deploys(&world).await;
    ns.delete().await;
}

#[tokio::test]
#[ignore = "needs cluster"]
async fn e2e_blue_green() {
    let (world, ns) = world("bluegreen").await;
    scenarios::blue_green(&world).await;
    ns.delete().await;
}

/// Gateway API weights on a real API server: the user's HTTPRoute (created here as `kubectl
/// apply` would, with hostnames and a label Slipway never writes) carries exactly each step's
/// weight on its `backendRefs`, and promotion gives it back as it was, annotation gone, its
/// other fields and their owner untouched. Needs the Gateway API CRDs (Envoy Gateway on kind
/// installs them: `helm install eg oci://docker.io/envoyproxy/gateway-helm -n envoy-gateway-system
/// --create-namespace`); without them the test says so and stops.
#[tokio::test]
#[ignore = "needs cluster"]
async fn e2e_gateway_api_weights() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
    use slipway_k8s_rollout::rollout::{self, TrafficRouting};

    let (world, ns) = world("gateway").await;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    );
    let routes: Api<DynamicObject> =
        Api::namespaced_with(ns.client.clone(), &ns.namespace, &resource);
    let users_rules = json!([{ "backendRefs": [{ "name": "iris", "port": 80 }] }]);
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": { "name": "iris-route", "labels": { "gateway": "prod-web-gw" } },
        "spec": { "hostnames": ["iris.example.com"], "rules": users_rules },
    });
    let applied = routes
        .patch(
            "iris-route",
            &PatchParams::apply("kubectl"),
            &Patch::Apply(route),
        )
        .await;
    if let Err(kube::Error::Api(status)) = &applied
        && status.code == 404
    {
        eprintln!("skipped: the cluster has no Gateway API CRDs (install Envoy Gateway)");
        ns.delete().await;
        return;
    }
    applied.expect("create the user's route");
    let traffic = TrafficRouting::GatewayApi {
        route: "iris-route".into(),
    };
    let cluster = world.cluster.as_ref();
    for percent in [10, 25, 50] {
        rollout::set_canary(
            cluster,
            world.clock.as_ref(),
            &world.release,
            &world.new,
            percent,
            world.deadline,
            Some(&world.service),
        )
        .await
        .expect("canary");
        rollout::set_traffic_weight(
            cluster,
            &world.release,
            &world.service,
            &traffic,
            percent,
            false,
        )
        .await
        .expect("weight");
        let read = routes.get("iris-route").await.expect("route");
        let weights = slipway_k8s_rollout::gateway::backend_weights(&read.data["spec"]["rules"]);
        assert_eq!(
            weights,
            [
                (0, "iris".to_owned(), u64::from(100 - percent)),
                (0, "iris-canary".to_owned(), u64::from(percent)),
            ]
        );
        assert_eq!(read.data["spec"]["hostnames"], json!(["iris.example.com"]));
    }
    rollout::promote_routed(
        cluster,
        world.clock.as_ref(),
        &world.release,
        (&world.service, &traffic),
        &world.new,
        world.deadline,
    )
    .await
    .expect("promote");
    let read = routes.get("iris-route").await.expect("route");
    assert_eq!(read.data["spec"]["rules"], users_rules);
    assert_eq!(read.data["spec"]["hostnames"], json!(["iris.example.com"]));
    assert!(
        !read
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(slipway_k8s_rollout::gateway::ORIGINAL_ANNOTATION)
    );
    ns.delete().await;
}
