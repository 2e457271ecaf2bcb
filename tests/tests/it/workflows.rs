//! The example workflows run as written (issue 12, item 5): every job of
//! `examples/github/release.yml` and `rollback.yml`, in `needs` order, each job its own
//! processes with its `env:` and its steps' `run:` scripts (`workflow_runner.rs`).
//!
//! Real: the OCI registry and MLflow from `cargo xtask services`, Slipway installed in every
//! job by its own `action.yml` from a local asset server holding this test's binaries and their
//! SHA-256 checksums, and GitHub's environment-approval API as a scripted HTTP server answering
//! `GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals` as GitHub documents it.
//! Real too: the canary's metrics, from a Prometheus of this test's own (the one
//! `cargo xtask services` installs, started by `prometheus.rs` over a known history of
//! `ml-serving/iris-classifier`'s stable and canary tracks): every canary analysis of every job
//! is judged on its answers, and the test checks that it was asked.
//! Simulated, and said so by every command: the cluster, kept between jobs in one directory
//! (`backend.state`, the embedded world `--demo --state` also uses). The runner machine's
//! environment points the example `slipway.toml` at them, as a real runner's would point it at
//! a cluster; no workflow file is changed for the test.
//!
//! The saved world runs on simulated time (a 20-minute canary in milliseconds), so its clock
//! starts inside the Prometheus history (`backend.state_start`), which is long enough for every
//! analysis of the whole story; the test checks the clock never left it.
//!
//! The story: release 1 canary → paused → approved by a reviewer → promoted; release 2 the same;
//! release 3 approved only by the person who started it → refused → the abort job removes the
//! canary; a planned rollback (to release 1, whose approval is in the trail); an emergency
//! rollback (to release 2).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use slipway_attest::keyfile::generate_key_pair;
use slipway_core::Secret;
use slipway_k8s_rollout::Cluster as _;
use slipway_registry::testing::{OciLayout, linux_amd64, skopeo_digest, skopeo_push};

use crate::e2e::{alias_version, mlflow_post, mlflow_run, seed_mlflow};
use crate::prometheus::{self, Canary, History, START_MINUTE};
use crate::support::{MLFLOW_ENV, REGISTRY_ENV, binary, service, unique, workspace_root};
use crate::workflow_runner::{Effect, JobResult, Run};

const RELEASE_NAMESPACE: &str = "ml-serving";
const RELEASE_NAME: &str = "iris-classifier";
/// Who triggers the workflow runs.
const ACTOR: &str = "ci-bot";
/// The reviewer of the `production` environment.
const REVIEWER: &str = "maria.chen";
/// The version the workflows install (`SLIPWAY_VERSION` in their `env:`).
const VERSION: &str = "0.1.0";

/// The Prometheus history: the example release's tracks, long enough for every analysis of
/// three releases and two rollbacks on the simulated clock (checked at the end).
const HISTORY: History = History {
    namespace: RELEASE_NAMESPACE,
    release: RELEASE_NAME,
    minutes: 3 * 60,
};

/// The queries the story makes at least: three canaries, each analysing its three steps
/// (`rollout.steps`) `analysis.count` (5) times with the example's two checks.
const QUERIES_AT_LEAST: u64 = 3 * 3 * 5 * 2;

/// Every job's commands ran with real metrics: no story line marks them simulated, and the
/// canary's report (`run.json`, when the job wrote one) says metrics are real and the cluster
/// simulated.
fn assert_metrics_real(setup: &Setup, run_id: u64, results: &BTreeMap<String, JobResult>) {
    let transcript = all_transcripts(results);
    let marked: Vec<&str> = transcript
        .match_indices("[simulated: ")
        .map(|(at, _)| {
            let rest = &transcript[at..];
            &rest[..rest.find(']').map_or(rest.len(), |end| end + 1)]
        })
        .filter(|tag| tag.contains("metrics"))
        .collect();
    assert!(
        marked.is_empty(),
        "a command marked the metrics simulated ({marked:?}):\n{transcript}"
    );
    let report = setup
        .dir
        .join(format!("run-{run_id}/jobs/canary/workspace/run.json"));
    if let Ok(text) = std::fs::read_to_string(&report) {
        let report: Value = serde_json::from_str(&text).expect("run.json is JSON");
        let backends = &report["backends"];
        assert_eq!(
            backends["metrics"],
            json!({"implementation": "prometheus", "simulated": false}),
            "{report}"
        );
        assert_eq!(backends["cluster"]["simulated"], json!(true), "{report}");
    } else {
        assert!(
            !results.contains_key("canary"),
            "the canary job wrote no run.json:\n{transcript}"
        );
    }
}

/// What the scripted server answers and saw.
#[derive(Default)]
struct Scripted {
    /// run id → the JSON body of `…/runs/{id}/approvals`.
    approvals: BTreeMap<String, String>,
    /// Every request line, with whether it carried a bearer token.
    requests: Vec<(String, bool)>,
}

/// One loopback HTTP server: `/assets/…` (release assets from a directory) and GitHub's
/// approvals endpoint (scripted). Threads end with the process.
fn serve(assets: PathBuf, scripted: Arc<Mutex<Scripted>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let assets = assets.clone();
            let scripted = scripted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                let mut bearer = false;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if lower.starts_with("authorization:") && lower.contains("bearer ") {
                        bearer = true;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let path = path.split('?').next().unwrap_or("/").to_owned();
                let (status, body, kind): (&str, Vec<u8>, &str) = if let Some(file) =
                    path.strip_prefix("/assets/")
                {
                    match std::fs::read(assets.join(file)) {
                        Ok(bytes) => ("200 OK", bytes, "application/octet-stream"),
                        Err(_) => ("404 Not Found", b"not found".to_vec(), "text/plain"),
                    }
                } else if path.starts_with("/repos/") && path.ends_with("/approvals") {
                    let mut scripted = scripted.lock().expect("lock");
                    scripted.requests.push((path.clone(), bearer));
                    let run_id = path.rsplit('/').nth(1).unwrap_or_default().to_owned();
                    match scripted.approvals.get(&run_id) {
                            Some(body) => ("200 OK", body.clone().into_bytes(), "application/json"),
                            None => (
                                "404 Not Found",
                                br#"{"message":"Not Found","documentation_url":"https://docs.github.com/rest/actions/workflow-runs#get-the-review-history-for-a-workflow-run","status":"404"}"#.to_vec(),
                                "application/json",
                            ),
                        }
                } else {
                    ("404 Not Found", b"not found".to_vec(), "text/plain")
                };
                let mut stream = reader.into_inner();
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    format!("http://{addr}")
}

/// A review as GitHub's API documents it (`GET …/actions/runs/{run_id}/approvals`).
fn review(login: &str, state: &str, environment: &str, comment: &str) -> Value {
    json!({
        "state": state,
        "comment": comment,
        "environments": [{
            "id": 161_088_068,
            "node_id": "MDExOkVudmlyb25tZW50MTYxMDg4MDY4",
            "name": environment,
            "url": format!("https://api.github.com/repos/acme/iris-serving/environments/{environment}"),
            "html_url": format!("https://github.com/acme/iris-serving/deployments/activity_log?environments_filter={environment}"),
            "created_at": "2026-11-23T22:00:40Z",
            "updated_at": "2026-11-23T22:00:40Z"
        }],
        "user": {"login": login, "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User", "site_admin": false}
    })
}

/// The release assets of `VERSION` for this runner: the test's own binaries (debug sections
/// stripped, to keep every job's download small) in the archive `action.yml` asks for, and
/// `SHA256SUMS`.
fn release_assets(dir: &Path) {
    let version_dir = dir.join(format!("v{VERSION}"));
    let staging = dir.join("staging");
    std::fs::create_dir_all(&version_dir).expect("mkdir");
    std::fs::create_dir_all(&staging).expect("mkdir");
    for name in ["slipway-deploy", "slipway-rollback", "slipway-audit"] {
        let status = Command::new("strip")
            .arg("--strip-debug")
            .arg(binary(name))
            .arg("-o")
            .arg(staging.join(name))
            .status();
        if !status.is_ok_and(|status| status.success()) {
            std::fs::copy(binary(name), staging.join(name)).expect("copy binary");
        }
    }
    let target = match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    };
    let asset = format!("slipway-{VERSION}-{target}.tar.gz");
    let status = Command::new("tar")
        .args(["-I", "gzip -1", "-cf"])
        .arg(version_dir.join(&asset))
        .arg("-C")
        .arg(&staging)
        .args(["slipway-deploy", "slipway-rollback", "slipway-audit"])
        .status()
        .expect("tar");
    assert!(status.success(), "tar the release archive");
    let sums = Command::new("sha256sum")
        .arg(&asset)
        .current_dir(&version_dir)
        .output()
        .expect("sha256sum");
    assert!(sums.status.success());
    std::fs::write(version_dir.join("SHA256SUMS"), &sums.stdout).expect("SHA256SUMS");
    std::fs::remove_dir_all(&staging).expect("rm staging");
}

/// The release assets, built once per test process (stripping and packing take seconds) in a
/// directory kept for the process's life: `workflow-assets/PID` under Cargo's target tmp dir.
/// A static is never dropped, so no `TempDir` would remove it; instead each process first
/// removes the directories of processes that have exited (about 60 MB each).
fn shared_assets() -> &'static Path {
    static ASSETS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ASSETS.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("workflow-assets");
        std::fs::create_dir_all(&root).expect("mkdir workflow-assets");
        if cfg!(target_os = "linux") {
            for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
                let pid = entry.file_name();
                if !Path::new("/proc").join(&pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = root.join(std::process::id().to_string());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir assets");
        release_assets(&dir);
        dir
    })
}

fn load(file: &str) -> serde_yaml_ng::Value {
    let path = workspace_root().join("examples/github").join(file);
    serde_yaml_ng::from_str(&std::fs::read_to_string(&path).expect("read workflow"))
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// The cluster's stable image and whether a canary Deployment exists, from the saved world.
async fn cluster_state(state: &Path) -> (String, bool) {
    let world = slipway_demo::persist::open(state).expect("open the saved world");
    let stable = world
        .cluster
        .deployment(RELEASE_NAMESPACE, RELEASE_NAME)
        .await
        .expect("read stable")
        .expect("stable exists");
    let canary = world
        .cluster
        .deployment(RELEASE_NAMESPACE, &format!("{RELEASE_NAME}-canary"))
        .await
        .expect("read canary");
    (stable.spec.image, canary.is_some())
}

fn job<'a>(results: &'a BTreeMap<String, JobResult>, name: &str) -> &'a JobResult {
    results.get(name).unwrap_or_else(|| panic!("no job {name}"))
}

fn all_transcripts(results: &BTreeMap<String, JobResult>) -> String {
    results
        .iter()
        .map(|(name, result)| {
            format!(
                "===== job {name}: {}\n{}",
                result.result,
                result.transcript()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything one test's workflow runs share.
struct Setup {
    root: PathBuf,
    dir: PathBuf,
    registry: String,
    mlflow: String,
    model: String,
    scripted: Arc<Mutex<Scripted>>,
    secrets: Value,
    vars: Value,
    machine_env: BTreeMap<String, String>,
    /// Set by the build effect: the digest pushed last.
    pushed: Arc<Mutex<Vec<String>>>,
}

impl Setup {
    fn run(&self, workflow: &str, run_id: u64, inputs: Value) -> BTreeMap<String, JobResult> {
        let run_dir = self.dir.join(format!("run-{run_id}"));
        let mut machine_env = self.machine_env.clone();
        machine_env.insert("GITHUB_RUN_ID".into(), run_id.to_string());
        let registry = self.registry.clone();
        let pushed = self.pushed.clone();
        let build: Effect<'_> = Box::new(move |with, _workspace| {
            // docker/build-push-action: a new image under the tag asked for.
            let tag_ref = with.get("tags").expect("tags").trim().to_owned();
            let (repository, tag) = tag_ref
                .strip_prefix(&format!("{registry}/"))
                .and_then(|rest| rest.rsplit_once(':'))
                .unwrap_or_else(|| panic!("the build pushes to the test registry: {tag_ref}"));
            let layout_dir = tempfile::tempdir().expect("tempdir");
            let mut layout = OciLayout::create(&layout_dir.path().join("layout")).expect("layout");
            let written = layout
                .image(&unique("iris-server"), &linux_amd64())
                .expect("image");
            layout.tag(tag, &written).expect("tag");
            skopeo_push(&layout, tag, &registry, &format!("{repository}:{tag}")).expect("push");
            let digest = skopeo_digest(&registry, &format!("{repository}:{tag}")).expect("digest");
            pushed.lock().expect("lock").push(digest.to_string());
            BTreeMap::from([("digest".to_owned(), digest.to_string())])
        });
        let trivy: Effect<'_> = Box::new(|with, workspace| {
            // aquasecurity/trivy-action: a clean report about the image scanned.
            let image = with.get("image-ref").expect("image-ref");
            let report = json!({
                "SchemaVersion": 2,
                "ArtifactName": image,
                "ArtifactType": "container_image",
                "Metadata": {"RepoDigests": [image]},
                "Results": [{"Target": "iris-server (alpine 3.20)", "Class": "os-pkgs", "Vulnerabilities": []}],
            });
            let output = with.get("output").expect("output");
            std::fs::write(workspace.join(output), report.to_string()).expect("trivy report");
            BTreeMap::new()
        });
        let sarif: Effect<'_> = Box::new(|with, workspace| {
            let file = with.get("sarif_file").expect("sarif_file");
            assert!(
                workspace.join(file).is_file(),
                "the SARIF upload finds {file}"
            );
            BTreeMap::new()
        });
        let run = Run {
            workflow: load(workflow),
            checkout: vec!["examples", "action.yml"],
            root: self.root.clone(),
            dir: run_dir,
            github: json!({
                "run_id": run_id.to_string(),
                "actor": ACTOR,
                "triggering_actor": ACTOR,
                "repository": "acme/iris-serving",
                "repository_owner": "acme",
                "sha": format!("{run_id:040}"),
                "ref": "refs/heads/main",
                "event_name": "workflow_dispatch",
            }),
            inputs,
            secrets: self.secrets.clone(),
            vars: self.vars.clone(),
            machine_env,
            effects: BTreeMap::from([
                ("docker/build-push-action", build),
                ("aquasecurity/trivy-action", trivy),
                ("github/codeql-action/upload-sarif", sarif),
            ]),
        };
        run.run()
    }

    /// A new MLflow version behind alias `candidate`; returns its number.
    async fn new_candidate(&self) -> String {
        let experiment = mlflow_post(
            &self.mlflow,
            "experiments/create",
            json!({ "name": unique(&self.model) }),
        )
        .await;
        let experiment = experiment["experiment_id"].as_str().expect("id").to_owned();
        let run_id = mlflow_run(&self.mlflow, &experiment, "train", (0.95, 0.93)).await;
        let version = mlflow_post(
            &self.mlflow,
            "model-versions/create",
            json!({ "name": self.model, "source": format!("runs:/{run_id}/model"), "run_id": run_id }),
        )
        .await;
        let version = version["model_version"]["version"]
            .as_str()
            .expect("version")
            .to_owned();
        mlflow_post(
            &self.mlflow,
            "registered-models/alias",
            json!({ "name": self.model, "alias": "candidate", "version": version }),
        )
        .await;
        version
    }

    fn script_reviews(&self, run_id: u64, reviews: Value) {
        self.scripted
            .lock()
            .expect("lock")
            .approvals
            .insert(run_id.to_string(), reviews.to_string());
    }
}

#[tokio::test]
#[allow(
    clippy::print_stderr,
    reason = "the gap must be visible in the test output"
)]
async fn the_example_workflows_run_as_written() {
    const TEST: &str = "the_example_workflows_run_as_written";
    let Some(registry) = service(REGISTRY_ENV, TEST) else {
        return;
    };
    let Some(mlflow) = service(MLFLOW_ENV, TEST) else {
        return;
    };
    let Some(prometheus) = prometheus::start_with(TEST, Canary::Healthy, &HISTORY).await else {
        return;
    };
    let root = workspace_root();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_owned();

    let scripted = Arc::new(Mutex::new(Scripted::default()));
    let server = serve(shared_assets().to_owned(), scripted.clone());

    let model = unique("wf-iris");
    seed_mlflow(&mlflow, &model, (0.95, 0.93)).await;
    let image_repository = format!("{registry}/{}/iris-server", unique("wf"));

    let password = "correct horse battery staple";
    let (_key, private_pem, public_pem) =
        generate_key_pair(&Secret::new(password.to_owned())).expect("key pair");
    let kubeconfig = "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n";
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let state = dir.join("cluster-state");
    // The runner machine: a plain PATH (no Slipway on it: the action installs it), GitHub's
    // variables, and the infrastructure this test stands in for.
    let machine_env: BTreeMap<String, String> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("HOME", home.display().to_string()),
        ("CI", "true".to_owned()),
        ("GITHUB_ACTIONS", "true".to_owned()),
        ("GITHUB_REPOSITORY", "acme/iris-serving".to_owned()),
        ("GITHUB_REPOSITORY_OWNER", "acme".to_owned()),
        ("GITHUB_ACTOR", ACTOR.to_owned()),
        ("GITHUB_TRIGGERING_ACTOR", ACTOR.to_owned()),
        ("GITHUB_API_URL", server.clone()),
        ("GITHUB_SERVER_URL", "https://github.com".to_owned()),
        ("GITHUB_SHA", "0".repeat(40)),
        ("GITHUB_REF", "refs/heads/main".to_owned()),
        (
            "GITHUB_WORKFLOW_REF",
            "acme/iris-serving/.github/workflows/release.yml@refs/heads/main".to_owned(),
        ),
        ("RUNNER_OS", "Linux".to_owned()),
        // The cluster: simulated, saved between jobs, on a clock that starts inside the
        // Prometheus history.
        ("SLIPWAY_BACKEND__CLUSTER", "memory".to_owned()),
        ("SLIPWAY_BACKEND__SIMULATED", "[\"cluster\"]".to_owned()),
        ("SLIPWAY_BACKEND__STATE", state.display().to_string()),
        (
            "SLIPWAY_BACKEND__STATE_START",
            prometheus.at(START_MINUTE).to_string(),
        ),
        // The canary's metrics: the real Prometheus (the example's `backend.metrics`).
        ("SLIPWAY_PROMETHEUS__URL", prometheus.url.clone()),
        // The real MLflow and registry of `cargo xtask services`.
        ("SLIPWAY_MLFLOW__TRACKING_URI", mlflow.clone()),
        ("SLIPWAY_REGISTRY__INSECURE", format!("[\"{registry}\"]")),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    let setup = Setup {
        root,
        dir: dir.clone(),
        registry: registry.clone(),
        mlflow: mlflow.clone(),
        model: model.clone(),
        scripted: scripted.clone(),
        secrets: json!({
            "KUBE_CONFIG_DATA": base64_encode(kubeconfig),
            "COSIGN_PRIVATE_KEY": private_pem,
            "COSIGN_PASSWORD": password,
            "MLFLOW_TRACKING_TOKEN": "mlflow-token-not-checked-by-the-test-server",
            "GITHUB_TOKEN": "ghs_scriptedGitHubToken",
            // SLACK_WEBHOOK_URL is not set: GitHub then gives an empty string.
        }),
        vars: json!({
            "IMAGE": image_repository,
            "COSIGN_PUBLIC_KEY": public_pem,
            "SLIPWAY_RELEASES_URL": format!("{server}/assets"),
        }),
        machine_env,
        pushed: Arc::new(Mutex::new(Vec::new())),
    };
    let release_inputs = json!({ "model": format!("{model}@candidate") });
    // Releases 1 and 2: canary → paused → approved by a reviewer → promoted.
    let mut promoted = Vec::new();
    for (run_id, version) in [(1001_u64, "2".to_owned()), (1002, String::new())] {
        let version = if version.is_empty() {
            setup.new_candidate().await
        } else {
            version
        };
        setup.script_reviews(
            run_id,
            json!([review(
                REVIEWER,
                "approved",
                "production",
                "canary dashboards look fine"
            )]),
        );
        let results = setup.run("release.yml", run_id, release_inputs.clone());
        let transcript = all_transcripts(&results);
        assert_metrics_real(&setup, run_id, &results);
        assert_eq!(
            job(&results, "canary").outputs["verdict"],
            "paused",
            "{transcript}"
        );
        assert_eq!(job(&results, "approve").result, "success", "{transcript}");
        assert_eq!(job(&results, "abort").result, "skipped", "{transcript}");
        let digest = setup
            .pushed
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("pushed");
        let (stable, canary) = cluster_state(&state).await;
        assert_eq!(
            stable,
            format!("{image_repository}@{digest}"),
            "{transcript}"
        );
        assert!(!canary, "the canary is gone after promotion");
        assert_eq!(alias_version(&mlflow, &model, "production").await, version);
        let requests = scripted.lock().expect("lock").requests.clone();
        assert!(
            requests.iter().any(|(path, bearer)| *bearer
                && path == &format!("/repos/acme/iris-serving/actions/runs/{run_id}/approvals")),
            "the approve job read run {run_id}'s reviews with a token: {requests:?}"
        );
        promoted.push((digest, version));
    }

    // Release 3: the only approval is by the person who started the run: refused, and the abort
    // job removes the paused canary; stable and the production alias stay.
    let run_id = 1003;
    let before = cluster_state(&state).await.0;
    let production_before = alias_version(&mlflow, &model, "production").await;
    setup.new_candidate().await;
    setup.script_reviews(
        run_id,
        json!([review(
            ACTOR,
            "approved",
            "production",
            "approving my own release"
        )]),
    );
    let results = setup.run("release.yml", run_id, release_inputs.clone());
    let transcript = all_transcripts(&results);
    assert_metrics_real(&setup, run_id, &results);
    assert_eq!(
        job(&results, "canary").outputs["verdict"],
        "paused",
        "{transcript}"
    );
    assert_eq!(job(&results, "approve").result, "failure", "{transcript}");
    // `abort` exits 0 when it removed the canary, so the abort job is green (the run stays red
    // through the refused approval).
    let abort = job(&results, "abort");
    assert_eq!(abort.result, "success", "{transcript}");
    assert!(
        abort.transcript().contains(&format!(
            "removed Deployment/{RELEASE_NAMESPACE}/{RELEASE_NAME}-canary"
        )),
        "{transcript}"
    );
    let (stable, canary) = cluster_state(&state).await;
    let refused = setup
        .pushed
        .lock()
        .expect("lock")
        .last()
        .cloned()
        .expect("pushed");
    assert_ne!(
        stable,
        format!("{image_repository}@{refused}"),
        "{transcript}"
    );
    assert_eq!(stable, before, "stable keeps its image:\n{transcript}");
    assert!(!canary, "the abort job removed the canary:\n{transcript}");
    assert_eq!(
        alias_version(&mlflow, &model, "production").await,
        production_before
    );

    // A planned rollback (the previous successful release: release 1, approved in the trail).
    let (first_digest, first_version) = promoted[0].clone();
    let results = setup.run(
        "rollback.yml",
        2001,
        json!({"revision": "", "reason": "p99 latency regressed after release 2", "emergency": false}),
    );
    let transcript = all_transcripts(&results);
    assert_metrics_real(&setup, 2001, &results);
    assert_eq!(job(&results, "rollback").result, "success", "{transcript}");
    let (stable, _) = cluster_state(&state).await;
    assert_eq!(
        stable,
        format!("{image_repository}@{first_digest}"),
        "{transcript}"
    );
    assert_eq!(
        alias_version(&mlflow, &model, "production").await,
        first_version
    );

    // An emergency rollback to release 2's revision: no approval gate, signature still checked.
    let (second_digest, second_version) = promoted[1].clone();
    let results = setup.run(
        "rollback.yml",
        2002,
        json!({"revision": second_digest, "reason": "incident INC-42: restore release 2", "emergency": true}),
    );
    let transcript = all_transcripts(&results);
    assert_metrics_real(&setup, 2002, &results);
    assert_eq!(job(&results, "rollback").result, "success", "{transcript}");
    let (stable, _) = cluster_state(&state).await;
    assert_eq!(
        stable,
        format!("{image_repository}@{second_digest}"),
        "{transcript}"
    );
    assert_eq!(
        alias_version(&mlflow, &model, "production").await,
        second_version
    );

    // Every canary analysis asked the real Prometheus, about instants inside its history.
    let queries = prometheus.queries().await;
    assert!(
        queries >= QUERIES_AT_LEAST,
        "Prometheus answered {queries} queries; three canaries of three steps, five measurements of two checks each, ask at least {QUERIES_AT_LEAST}"
    );
    let clock: Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("clock.json")).expect("the saved clock"),
    )
    .expect("clock.json is JSON");
    let now: jiff::Timestamp = clock["now"]
        .as_str()
        .expect("clock.now")
        .parse()
        .expect("a timestamp");
    assert!(
        now < prometheus.at(HISTORY.minutes),
        "the simulated clock ({now}) left the Prometheus history (ends {})",
        prometheus.at(HISTORY.minutes)
    );
    eprintln!(
        "workflows: Prometheus answered {queries} queries; simulated clock ended {} minutes into the history",
        (now.as_second() - prometheus.at(0).as_second()) / 60
    );
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// `action.yml` on its own: installs the release for this runner and puts it on `PATH`, and
/// refuses an archive whose SHA-256 is not the one `SHA256SUMS` lists (nothing installed), a
/// version with no assets, and a malformed version.
#[test]
fn the_action_installs_a_checked_release_and_refuses_a_tampered_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    // A copy: this test tampers with the archive.
    let assets = dir.join("assets");
    let shared = shared_assets().join(format!("v{VERSION}"));
    std::fs::create_dir_all(assets.join(format!("v{VERSION}"))).expect("mkdir");
    let mut archive = PathBuf::new();
    for entry in std::fs::read_dir(&shared).expect("assets") {
        let entry = entry.expect("entry");
        let to = assets.join(format!("v{VERSION}")).join(entry.file_name());
        std::fs::copy(entry.path(), &to).expect("copy asset");
        if to.extension().is_some_and(|ext| ext == "gz") {
            archive = to;
        }
    }
    let server = serve(assets, Arc::new(Mutex::new(Scripted::default())));
    let install = |name: &str, version: &str| {
        let job = dir.join(name);
        let workspace = job.join("workspace");
        std::fs::create_dir_all(&workspace).expect("mkdir");
        let path_file = job.join("path");
        std::fs::write(&path_file, "").expect("path file");
        let env: BTreeMap<String, String> = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
            ("RUNNER_TEMP", job.display().to_string()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let with = BTreeMap::from([
            ("version".to_owned(), version.to_owned()),
            ("base-url".to_owned(), format!("{server}/assets")),
        ]);
        let (code, text, outputs) = crate::workflow_runner::run_action(
            &workspace_root(),
            &with,
            &workspace,
            &job,
            &env,
            &path_file,
        );
        let path = std::fs::read_to_string(&path_file).expect("path file");
        (code, text, outputs, path)
    };

    let (code, text, outputs, path) = install("good", VERSION);
    assert_eq!(code, 0, "{text}");
    let bin_dir = PathBuf::from(outputs["bin-dir"].clone());
    assert_eq!(path.trim(), bin_dir.display().to_string());
    for name in ["slipway-deploy", "slipway-rollback", "slipway-audit"] {
        let ran = Command::new(bin_dir.join(name))
            .arg("--version")
            .output()
            .expect("run installed binary");
        assert!(ran.status.success(), "{name} installed and runs");
    }

    // One byte appended to the archive: the checksum no longer matches.
    let mut bytes = std::fs::read(&archive).expect("read archive");
    bytes.push(0);
    std::fs::write(&archive, bytes).expect("tamper");
    let (code, text, _, path) = install("tampered", VERSION);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(path.trim().is_empty(), "nothing added to PATH: {path}");

    let (code, text, _, _) = install("missing", "9.9.9");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("cannot download"), "{text}");
    let (code, text, _, _) = install("malformed", "latest");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is not a release version"), "{text}");
}
