//! Planted secrets never reach what the binaries print.
//!
//! Each secret gets a value no output could contain by accident, is handed over the way a CI job
//! hands it (a docker config, `SLIPWAY_*__*` and `MLFLOW_TRACKING_TOKEN` variables, a Secret in
//! the cluster), and the binaries run over the real registry and MLflow so the secrets are
//! actually used on the way. Then no stdout, stderr, GitHub step summary or output file may
//! contain any of them (or the base64 form the docker config stores).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;

use crate::e2e::seed_mlflow;
use crate::support::{
    MLFLOW_ENV, Output, REGISTRY_ENV, candidate_image, command, output, service, unique,
};

const REGISTRY_TOKEN: &str = "reg-tok-PLANTED-6f1c9e";
const SIGNING_PASSWORD: &str = "cosign-pw-PLANTED-91ab7d";
const MLFLOW_TOKEN: &str = "mlflow-tok-PLANTED-slipway-c3d2";
const MLFLOW_TRACKING_TOKEN: &str = "mlflow-tok-PLANTED-tracking-77e0";
const WEBHOOK_TOKEN: &str = "hook-PLANTED-0b5e44";
/// The admin token the embedded world keeps in the cluster's `<deployment>-admin` Secret; the
/// reload call below proves it is read and sent.
const ADMIN_TOKEN: &str = "demo-admin-token";

/// A model server's reload endpoint: answers 200 and keeps each request's head.
fn reload_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/admin/reload",
        listener.local_addr().expect("addr")
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    // The thread ends with the test process.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            record.lock().expect("lock").push(head);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            );
        }
    });
    (url, seen)
}

fn check(what: &str, result: &Output, extra: &[(&str, &str)], leaks: &mut Vec<String>) {
    let docker_auth =
        base64::engine::general_purpose::STANDARD.encode(format!("slipway-ci:{REGISTRY_TOKEN}"));
    let secrets = [
        ("registry token", REGISTRY_TOKEN),
        ("registry auth (base64)", docker_auth.as_str()),
        ("signing key password", SIGNING_PASSWORD),
        ("MLflow token (SLIPWAY_MLFLOW__TOKEN)", MLFLOW_TOKEN),
        (
            "MLflow token (MLFLOW_TRACKING_TOKEN)",
            MLFLOW_TRACKING_TOKEN,
        ),
        ("webhook URL token", WEBHOOK_TOKEN),
        ("admin token", ADMIN_TOKEN),
    ];
    let mut streams = vec![
        ("stdout", result.stdout.as_str()),
        ("stderr", result.stderr.as_str()),
    ];
    streams.extend_from_slice(extra);
    for (stream, text) in streams {
        for (name, value) in secrets {
            if text.contains(value) {
                leaks.push(format!("{what}: {stream} contains the {name}"));
            }
        }
    }
}

#[tokio::test]
async fn planted_secrets_never_reach_any_output() {
    let test = "planted_secrets_never_reach_any_output";
    let Some(registry) = service(REGISTRY_ENV, test) else {
        return;
    };
    let Some(mlflow) = service(MLFLOW_ENV, test) else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();

    // The candidate image in the real registry, and a Trivy report about it.
    let repository = format!("slipway-e2e/{}", unique("secrets"));
    candidate_image(&registry, &repository, root);

    // A model of this test's own in the real MLflow.
    let model = unique("slipway-e2e-secrets");
    seed_mlflow(&mlflow, &model, (0.95, 0.93)).await;

    // Registry credentials where docker login puts them.
    let docker = root.join("docker");
    std::fs::create_dir_all(&docker).expect("docker dir");
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("slipway-ci:{REGISTRY_TOKEN}"));
    std::fs::write(
        docker.join("config.json"),
        serde_json::json!({"auths": {registry.as_str(): {"auth": auth}}}).to_string(),
    )
    .expect("docker config");

    // An encrypted cosign.key: the password is needed to sign.
    let (_, private_pem, _) =
        slipway_attest::keyfile::generate_key_pair(&slipway_core::Secret::new(SIGNING_PASSWORD))
            .expect("key pair");
    std::fs::write(root.join("cosign.key"), private_pem).expect("cosign.key");

    let (reload_url, reloads) = reload_server();
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    std::fs::write(
        root.join("slipway.toml"),
        format!(
            r#"[model]
ref = "{model}@candidate"

[image]
ref = "{registry}/{repository}:1.5.0"

[rollout]
steps = [25]

[signing]
key = "cosign.key"

# Outside --demo no flag names an approver, and the simulated cluster does not outlive this
# process, so no later `approve` could find the pause: this release needs no approval.
[policy.approvals]
required = 0

[backend]
models = "mlflow"
registry = "oci"
scanner = "trivy-report"
# No API server here: the cluster, and the metrics of its pods, are the embedded world's, on
# purpose, and every output says so.
simulated = ["cluster", "metrics"]

[mlflow]
tracking_uri = "{mlflow}"

[registry]
insecure = ["{registry}"]

[scanner]
report = "trivy.json"

[server]
reload_url = "{reload_url}"

[audit]
path = "audit.jsonl"
"#
        ),
    )
    .expect("config");
    let summary = root.join("step-summary.md");
    let outputs = root.join("github-output");

    let run = |binary: &str, args: &[&str]| -> Output {
        output(
            command(binary)
                .current_dir(root)
                .args(args)
                .env("DOCKER_CONFIG", &docker)
                .env("SLIPWAY_SIGNING__PASSWORD", SIGNING_PASSWORD)
                .env("COSIGN_PASSWORD", SIGNING_PASSWORD)
                .env("SLIPWAY_MLFLOW__TOKEN", MLFLOW_TOKEN)
                .env("MLFLOW_TRACKING_TOKEN", MLFLOW_TRACKING_TOKEN)
                .env(
                    "SLIPWAY_NOTIFY__WEBHOOK",
                    format!("http://127.0.0.1:{closed_port}/{WEBHOOK_TOKEN}"),
                )
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_STEP_SUMMARY", &summary)
                .env("GITHUB_OUTPUT", &outputs),
        )
    };
    let read = |path: &Path| std::fs::read_to_string(path).unwrap_or_default();

    let mut leaks = Vec::new();
    let config = ["--config", "slipway.toml"];
    let printed = run(
        "slipway-deploy",
        &[&["plan"][..], &config, &["--print-config"]].concat(),
    );
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert!(printed.stdout.contains("<redacted>"), "{}", printed.stdout);
    check("plan --print-config", &printed, &[], &mut leaks);

    let plan = run("slipway-deploy", &[&["plan"][..], &config].concat());
    assert_eq!(plan.code, 0, "plan:\n{}\n{}", plan.stdout, plan.stderr);
    check("plan", &plan, &[], &mut leaks);

    let release = run(
        "slipway-deploy",
        &[&["run"][..], &config, &["--output", "json"]].concat(),
    );
    // Promoted: every secret was on the path (MLflow calls, registry pushes of the signature,
    // the failing webhook, the reload with the admin token).
    assert_eq!(release.code, 0, "run:\n{}", release.stderr);
    let json: serde_json::Value = serde_json::from_str(&release.stdout).expect("run JSON");
    assert_eq!(json["outcome"], "promoted", "{}", release.stdout);
    // Promoted on a simulated cluster: the report and the step summary say which parts were real.
    assert_eq!(
        json["backends"]["models"]["simulated"], false,
        "{}",
        release.stdout
    );
    assert_eq!(json["backends"]["registry"]["implementation"], "oci");
    assert_eq!(json["backends"]["cluster"]["simulated"], true);
    assert_eq!(json["backends"]["metrics"]["simulated"], true);
    // Every story line that rests on a simulated system says which.
    let staged: Vec<&str> = release
        .stderr
        .lines()
        .filter(|line| line.contains("  canary ") || line.contains("  analysis "))
        .collect();
    assert!(!staged.is_empty(), "{}", release.stderr);
    for line in staged {
        assert!(
            line.ends_with("[simulated: cluster]") || line.ends_with("[simulated: metrics]"),
            "{line}"
        );
    }
    assert!(
        release
            .stderr
            .lines()
            .filter(|line| line.contains("  model-gate "))
            .all(|line| !line.contains("[simulated")),
        "the model gate read the real MLflow: {}",
        release.stderr
    );
    assert!(
        read(&summary)
            .contains("| simulated | ⚠️ cluster, metrics (in memory, `backend.simulated`) |"),
        "{}",
        read(&summary)
    );
    assert!(
        release
            .stderr
            .contains("SIMULATED on purpose (backend.simulated): cluster, metrics"),
        "{}",
        release.stderr
    );
    let heads = reloads.lock().expect("lock").clone();
    assert!(
        heads.iter().any(|head| head
            .to_ascii_lowercase()
            .contains(&format!("x-admin-token: {ADMIN_TOKEN}"))),
        "the reload endpoint never received the admin token: {heads:?}\n{}",
        release.stderr
    );
    check(
        "run --output json",
        &release,
        &[
            ("step summary", &read(&summary)),
            ("GITHUB_OUTPUT", &read(&outputs)),
        ],
        &mut leaks,
    );

    // Logs: `-v` and `RUST_LOG=debug` show request-level logs (MLflow, the registry, reqwest's
    // connections) on stderr, and still no secret, although every one of them was used.
    let verbose = run("slipway-deploy", &[&["run"][..], &config, &["-v"]].concat());
    assert_eq!(verbose.code, 0, "run -v:\n{}", verbose.stderr);
    for expected in ["DEBUG", "mlflow request", "registry request"] {
        assert!(
            verbose.stderr.contains(expected),
            "run -v logs no `{expected}`:\n{}",
            verbose.stderr
        );
    }
    check("run -v", &verbose, &[], &mut leaks);
    let debug = output(
        command("slipway-deploy")
            .current_dir(root)
            .args([&["run"][..], &config, &["--log-format", "json"]].concat())
            .env("RUST_LOG", "debug")
            .env("DOCKER_CONFIG", &docker)
            .env("SLIPWAY_SIGNING__PASSWORD", SIGNING_PASSWORD)
            .env("SLIPWAY_MLFLOW__TOKEN", MLFLOW_TOKEN)
            .env("MLFLOW_TRACKING_TOKEN", MLFLOW_TRACKING_TOKEN)
            .env(
                "SLIPWAY_NOTIFY__WEBHOOK",
                format!("http://127.0.0.1:{closed_port}/{WEBHOOK_TOKEN}"),
            ),
    );
    assert_eq!(debug.code, 0, "RUST_LOG=debug run:\n{}", debug.stderr);
    let json_lines = debug
        .stderr
        .lines()
        .filter(|line| line.starts_with('{'))
        .filter(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
        .count();
    assert!(json_lines > 10, "{}", debug.stderr);
    assert!(
        debug.stderr.contains("\"level\":\"DEBUG\""),
        "{}",
        debug.stderr
    );
    check(
        "RUST_LOG=debug run --log-format json",
        &debug,
        &[],
        &mut leaks,
    );

    let rollback = run(
        "slipway-rollback",
        &[
            &config[..],
            &["--reason", "planted-secrets check", "--output", "json"],
        ]
        .concat(),
    );
    // Each invocation starts a fresh in-memory cluster, whose history holds the embedded world's
    // earlier releases; their images exist only in its memory registry, so the real registry
    // (asked with the planted credentials) says the target is gone: exit 2, named.
    assert_eq!(
        rollback.code, 2,
        "rollback:\n{}\n{}",
        rollback.stdout, rollback.stderr
    );
    assert!(
        rollback.stdout.contains("no longer exists in the registry"),
        "{}",
        rollback.stdout
    );
    check("slipway-rollback", &rollback, &[], &mut leaks);

    let log = run("slipway-audit", &[&["log"][..], &config].concat());
    assert_eq!(log.code, 0, "audit log:\n{}", log.stderr);
    assert!(log.stdout.contains("revision 3 promoted"), "{}", log.stdout);
    check(
        "slipway-audit log",
        &log,
        &[("audit trail file", &read(&root.join("audit.jsonl")))],
        &mut leaks,
    );

    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
}
