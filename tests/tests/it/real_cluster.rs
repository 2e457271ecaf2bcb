//! `slipway-deploy plan` with every backend real except the metrics, which the configuration
//! lists in `backend.simulated`: the real MLflow and registry from `cargo xtask services`, and a
//! Kubernetes API server scripted on loopback (no real one can run here) that the real kube
//! client talks to over HTTP. The stable Deployment has 4 replicas.
//!
//! - Steps `[10, 25, 50]` are refused before any gate (exit 2): one canary pod next to 4 stable
//!   is 20 % of the pods, not 10 %.
//! - With `rollout.coarse_steps = "round-up"` the plan runs to the end (exit 0); its JSON report
//!   shows the requested and actual share of every step, and the story, the report and the
//!   GitHub step summary each name the simulated metrics.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::e2e::seed_mlflow;
use crate::support::{MLFLOW_ENV, REGISTRY_ENV, candidate_image, command, output, service, unique};

/// Answers the kube client's requests from `objects` (path → JSON); anything else is a 404
/// Status, as a real API server answers for a missing object. Every request line is kept.
fn api_server(objects: BTreeMap<String, serde_json::Value>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let objects = objects.clone();
            let record = record.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                loop {
                    let mut request = String::new();
                    if reader.read_line(&mut request).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some(value) =
                            line.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let _ = std::io::Read::read_exact(&mut reader, &mut body);
                    let mut parts = request.split_whitespace();
                    let method = parts.next().unwrap_or_default().to_owned();
                    let target = parts.next().unwrap_or_default().to_owned();
                    record
                        .lock()
                        .expect("lock")
                        .push(format!("{method} {target}"));
                    let path = target.split('?').next().unwrap_or_default();
                    let (status, json) = match (method.as_str(), objects.get(path)) {
                        ("GET", Some(object)) => ("200 OK", object.clone()),
                        _ => (
                            "404 Not Found",
                            serde_json::json!({
                                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                                "message": format!("{path} not found"), "reason": "NotFound", "code": 404,
                            }),
                        ),
                    };
                    let body = json.to_string();
                    let reply = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(reply.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

fn objects(stable_image: &str) -> BTreeMap<String, serde_json::Value> {
    let deployment = serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "iris", "namespace": "ml", "uid": "uid-iris", "resourceVersion": "7", "generation": 2,
                      "labels": { "app": "iris" } },
        "spec": {
            "replicas": 4,
            "selector": { "matchLabels": { "app": "iris" } },
            "template": {
                "metadata": { "labels": { "app": "iris" } },
                "spec": { "containers": [{ "name": "server", "image": stable_image }] },
            },
        },
        "status": { "observedGeneration": 2, "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4, "availableReplicas": 4 },
    });
    let service = serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "iris", "namespace": "ml", "uid": "uid-svc", "resourceVersion": "8", "labels": { "app": "iris" } },
        "spec": { "type": "ClusterIP", "selector": { "app": "iris" }, "ports": [{ "port": 80, "targetPort": 8080 }] },
    });
    let empty_list = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMapList", "metadata": { "resourceVersion": "9" }, "items": [],
    });
    BTreeMap::from([
        (
            "/apis/apps/v1/namespaces/ml/deployments/iris".to_owned(),
            deployment,
        ),
        ("/api/v1/namespaces/ml/services/iris".to_owned(), service),
        ("/api/v1/namespaces/ml/configmaps".to_owned(), empty_list),
    ])
}

#[tokio::test]
async fn plan_on_a_real_cluster_with_simulated_metrics_refuses_coarse_steps_and_names_the_simulated_part()
 {
    let test = "plan_on_a_real_cluster_with_simulated_metrics_refuses_coarse_steps_and_names_the_simulated_part";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let Some(mlflow) = service(MLFLOW_ENV, test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();

    let repository = format!("slipway-e2e/{}", unique("real-cluster"));
    candidate_image(&registry, &repository, root);
    let model = unique("slipway-e2e-real-cluster");
    seed_mlflow(&mlflow, &model, (0.95, 0.93)).await;

    // The deploy key: a plan says it would sign with it (and changes nothing).
    let password = "real-cluster-test-password";
    let (_, private_pem, _) =
        slipway_attest::keyfile::generate_key_pair(&slipway_core::Secret::new(password))
            .expect("key pair");
    std::fs::write(root.join("cosign.key"), private_pem).expect("cosign.key");
    let stable_image = format!("{registry}/{repository}@sha256:{}", "0".repeat(64));
    let (api, requests) = api_server(objects(&stable_image));
    std::fs::write(
        root.join("kubeconfig"),
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {api}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: ml\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: scripted\n"
        ),
    )
    .expect("kubeconfig");
    std::fs::write(
        root.join("slipway.toml"),
        format!(
            r#"[release]
name = "ml/iris"
service = "iris"

[model]
ref = "{model}@candidate"

[image]
ref = "{registry}/{repository}:1.5.0"

[rollout]
steps = [10, 25, 50]

[signing]
key = "cosign.key"

[backend]
models = "mlflow"
registry = "oci"
cluster = "kubernetes"
scanner = "trivy-report"
# No Prometheus scrapes this scripted cluster's pods: the metrics are simulated, on purpose.
simulated = ["metrics"]

[mlflow]
tracking_uri = "{mlflow}"

[registry]
insecure = ["{registry}"]

[kubernetes]
kubeconfig = "kubeconfig"

[scanner]
report = "trivy.json"

[audit]
path = "audit.jsonl"
"#
        ),
    )
    .expect("config");
    let summary = root.join("step-summary.md");
    let plan = |extra: &[&str], env: &[(&str, &str)]| {
        let mut command = command("slipway-deploy");
        command
            .current_dir(root)
            .args(["plan", "--config", "slipway.toml"])
            .args(extra)
            .env("COSIGN_PASSWORD", password)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary);
        for (key, value) in env {
            command.env(key, value);
        }
        output(&mut command)
    };

    let refused = plan(&[], &[]);
    assert_eq!(refused.code, 2, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stdout.contains("10% requested, 20% achievable"),
        "{}",
        refused.stdout
    );
    assert!(
        !refused.stderr.contains("model-gate"),
        "refused before any gate: {}",
        refused.stderr
    );
    assert!(
        requests
            .lock()
            .expect("requests")
            .iter()
            .all(|request| request.starts_with("GET ")),
        "plan only reads: {:?}",
        requests.lock().expect("requests")
    );

    let planned = plan(
        &["--output", "json"],
        &[("SLIPWAY_ROLLOUT__COARSE_STEPS", "round-up")],
    );
    assert_eq!(planned.code, 0, "{}\n{}", planned.stdout, planned.stderr);
    let json: serde_json::Value = serde_json::from_str(&planned.stdout).expect("report");
    assert_eq!(json["outcome"], "would-proceed", "{}", planned.stdout);
    let shares: Vec<(u64, f64)> = json["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            (
                step["requested_percent"].as_u64().expect("requested"),
                step["actual_percent"].as_f64().expect("actual"),
            )
        })
        .collect();
    assert_eq!(
        shares,
        [(10, 20.0), (25, 33.33), (50, 50.0)],
        "{}",
        planned.stdout
    );
    assert_eq!(json["backends"]["cluster"]["implementation"], "kubernetes");
    assert_eq!(json["backends"]["cluster"]["simulated"], false);
    assert_eq!(json["backends"]["metrics"]["simulated"], true);
    assert!(
        planned.stderr.contains("SIMULATED") && planned.stderr.contains("metrics"),
        "the story names the simulated part: {}",
        planned.stderr
    );
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    assert!(summary.contains("| simulated |"), "{summary}");
    assert!(
        requests
            .lock()
            .expect("requests")
            .iter()
            .all(|request| request.starts_with("GET ")),
        "plan only reads: {:?}",
        requests.lock().expect("requests")
    );
}
