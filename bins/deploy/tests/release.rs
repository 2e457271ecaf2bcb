//! `slipway-deploy plan|run` end to end on the embedded backends: exit codes, what goes to stdout
//! and stderr, configuration errors, and secrets that must never be printed.

use std::path::Path;
use std::process::Command;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn deploy(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway-deploy"));
    command
        .args(args)
        .current_dir(dir)
        .env("USER", "release-bot")
        .env_remove("GITHUB_ACTOR");
    // Outside a GitHub Actions run, whatever runs the tests.
    for key in [
        "GITHUB_ACTIONS",
        "GITHUB_TRIGGERING_ACTOR",
        "GITHUB_REPOSITORY",
        "GITHUB_RUN_ID",
        "GITHUB_TOKEN",
        "GITHUB_API_URL",
    ] {
        command.env_remove(key);
    }
    // Drop every SLIPWAY_* variable of the caller so the test sees only its own.
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") {
            command.env_remove(key);
        }
    }
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("run slipway-deploy");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn snapshot(output: &Output) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        output.code, output.stdout, output.stderr
    )
}

#[test]
fn happy_run_promotes_and_tells_the_story() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = deploy(&["run", "--no-config", "--demo"], dir.path(), &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::assert_snapshot!("run_happy", snapshot(&output));
}

#[test]
fn bad_canary_exits_1_after_the_abort() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = deploy(&["run", "--demo", "bad-canary"], dir.path(), &[]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    insta::assert_snapshot!("run_bad_canary", snapshot(&output));
}

#[test]
fn every_scenario_exits_as_listed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let list = deploy(&["run", "--list-scenarios"], dir.path(), &[]);
    assert_eq!(list.code, 0);
    let mut seen = 0;
    for line in list.stdout.lines() {
        let mut words = line.split_whitespace();
        let (Some(name), Some("exit"), Some(code)) = (words.next(), words.next(), words.next())
        else {
            panic!("unexpected line `{line}`")
        };
        let output = deploy(&["run", "--demo", name], dir.path(), &[]);
        assert_eq!(output.code.to_string(), code, "{name}: {}", output.stderr);
        seen += 1;
    }
    assert!(seen >= 7, "{}", list.stdout);
}

#[test]
fn json_output_is_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = deploy(
        &["run", "--no-config", "--demo", "--output", "json"],
        dir.path(),
        &[],
    );
    assert_eq!(output.code, 0);
    let report: serde_json::Value =
        serde_json::from_str(&output.stdout).expect("stdout is one JSON document");
    assert_eq!(report["outcome"], "promoted");
    assert_eq!(report["revision"], 3);
    assert_eq!(report["model"]["version"], 3);
    assert_eq!(report["analysis"].as_array().map(Vec::len), Some(3));
    assert!(
        report["stages"]
            .as_array()
            .is_some_and(|stages| stages.len() > 20)
    );
}

#[test]
fn plan_proceeds_without_changing_anything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trail = dir.path().join("trail.jsonl");
    let trail_arg = format!("{}", trail.display());
    let output = deploy(
        &["plan", "--no-config", "--demo"],
        dir.path(),
        &[("SLIPWAY_AUDIT__PATH", &trail_arg)],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(
        output.stdout.contains("outcome: would-proceed"),
        "{}",
        output.stdout
    );
    assert!(
        output.stderr.contains("would sign with key"),
        "{}",
        output.stderr
    );
    assert!(
        !output.stderr.contains("canary         ▶"),
        "plan starts no canary"
    );
    // The scenario seeds history and an approval into the trail; plan adds no decision to it.
    let text = std::fs::read_to_string(&trail).expect("trail");
    assert!(!text.contains("\"kind\":\"decision\""), "{text}");
}

#[test]
fn configuration_errors_name_the_file_and_key_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("unknown.toml"), "[rollout]\nstepz = [5]\n").expect("write");
    std::fs::write(
        dir.path().join("wrong-type.toml"),
        "[rollout]\nsteps = \"ten\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("bad-steps.toml"),
        "[rollout]\nsteps = [50, 10]\n",
    )
    .expect("write");
    let cases = [
        ("missing_file", vec!["run", "--config", "nope.toml"]),
        ("unknown_key", vec!["run", "--config", "unknown.toml"]),
        ("wrong_type", vec!["run", "--config", "wrong-type.toml"]),
        ("bad_steps", vec!["run", "--config", "bad-steps.toml"]),
        (
            "bare_model",
            vec!["run", "--no-config", "--demo", "--model", "iris"],
        ),
        (
            "uppercase_image",
            vec![
                "run",
                "--no-config",
                "--demo",
                "--image",
                "ghcr.io/Acme/iris:1",
            ],
        ),
        ("unknown_scenario", vec!["run", "--demo", "nope"]),
    ];
    for (name, args) in cases {
        let output = deploy(&args, dir.path(), &[]);
        assert_eq!(output.code, 2, "{name}: {}", output.stderr);
        assert!(output.stdout.is_empty(), "{name}: errors go to stderr");
        assert!(
            output.stderr.starts_with("error: "),
            "{name}: {}",
            output.stderr
        );
        insta::assert_snapshot!(name, output.stderr);
    }
    let env_error = deploy(
        &["run", "--no-config", "--demo"],
        dir.path(),
        &[("SLIPWAY_ROLLOUT__HISTORY_LIMIT", "many")],
    );
    assert_eq!(env_error.code, 2);
    insta::assert_snapshot!("wrong_type_env", env_error.stderr);
}

#[test]
fn secrets_never_appear_in_print_config_or_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = [
        ("SLIPWAY_MLFLOW__TOKEN", "mlflow-tok-5ecret"),
        ("SLIPWAY_SIGNING__PASSWORD", "cosign-pw-5ecret"),
    ];
    let printed = deploy(
        &["run", "--no-config", "--print-config"],
        dir.path(),
        &secrets,
    );
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    assert!(
        printed.stdout.contains("token = \"<redacted>\""),
        "{}",
        printed.stdout
    );
    assert!(
        printed.stdout.contains("password = \"<redacted>\""),
        "{}",
        printed.stdout
    );
    for output in [
        printed,
        deploy(
            &["run", "--no-config", "--demo", "--output", "json"],
            dir.path(),
            &secrets,
        ),
    ] {
        for (_, secret) in secrets {
            assert!(
                !output.stdout.contains(secret) && !output.stderr.contains(secret),
                "{secret} leaked"
            );
        }
    }
}

#[test]
fn with_a_cosign_key_the_run_signs_the_image_and_its_trail_entries() {
    use slipway_attest::Verifier as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let password = slipway_core::Secret::new("k3y-passw0rd");
    let (key, private_pem, public_pem) =
        slipway_attest::keyfile::generate_key_pair(&password).expect("generate");
    std::fs::write(dir.path().join("cosign.key"), private_pem).expect("write key");
    std::fs::write(dir.path().join("cosign.pub"), public_pem).expect("write pub");
    let trail = dir.path().join("trail.jsonl");
    let trail_arg = trail.display().to_string();
    let output = deploy(
        &["run", "--no-config", "--demo"],
        dir.path(),
        &[
            ("SLIPWAY_SIGNING__KEY", "cosign.key"),
            ("COSIGN_PASSWORD", "k3y-passw0rd"),
            ("SLIPWAY_AUDIT__PATH", &trail_arg),
        ],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    let key_id = key.public().key_id();
    assert!(
        output.stderr.contains(&format!("with key {key_id}")),
        "signed with the configured key: {}",
        output.stderr
    );
    assert!(!output.stderr.contains("k3y-passw0rd") && !output.stdout.contains("k3y-passw0rd"));
    let text = std::fs::read_to_string(&trail).expect("trail");
    let entries: Vec<slipway_audit_log::Entry> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("entry"))
        .collect();
    let public = key.public();
    let problems = slipway_audit_log::verify_signatures(&entries, &[&public]);
    // The dry run's seeded past (two releases and an approval) predates the key and is
    // unsigned; every entry this run wrote is signed by it.
    let unsigned: Vec<u64> = problems.iter().map(|problem| problem.seq).collect();
    assert_eq!(unsigned, [1, 2, 3], "{problems:?}");
    assert!(entries.len() > 10, "the run wrote its decisions");
    assert!(
        entries
            .iter()
            .skip(3)
            .all(|entry| entry.signature.as_ref().is_some_and(|s| s.key_id == key_id))
    );
}

#[test]
fn a_paused_release_is_shown_approved_promoted_or_aborted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paused = ["--demo", "paused"];
    let with = |command: &[&str]| -> Vec<String> {
        command
            .iter()
            .chain(paused.iter())
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let run = |command: &[&str]| {
        let args = with(command);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        deploy(&args, dir.path(), &[])
    };

    // Paused is not final: `status` exits 3.
    let status = run(&["status"]);
    assert_eq!(status.code, 3, "{}", status.stderr);
    insta::assert_snapshot!("status_paused", status.stdout);

    let selfish = run(&["approve", "--reason", "trust me"]);
    assert_eq!(selfish.code, 1, "the release's own actor cannot approve it");
    insta::assert_snapshot!(
        "approve_self_refused",
        selfish
            .stderr
            .lines()
            .filter(|line| !line.starts_with("slipway:")
                && !line.starts_with("before:")
                && !line.starts_with("after:"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    let approved = run(&[
        "approve",
        "--as",
        "sam.reviewer",
        "--reason",
        "canary dashboards reviewed",
        "--output",
        "json",
    ]);
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    // The approvals recorded (a GitHub environment may bring several), with the document's
    // schema_version.
    let document: serde_json::Value = serde_json::from_str(&approved.stdout).expect("json");
    assert_eq!(document["schema_version"], 2);
    let records = &document["approvals"];
    assert_eq!(records[0]["approver"], "sam.reviewer");
    assert_eq!(records[0]["model"]["version"], 3);
    assert_eq!(records[0]["revision"], 3);

    // Each command is a new process on the in-memory backends: promote records its approval itself.
    let unapproved = run(&["promote"]);
    assert_eq!(unapproved.code, 1);
    assert!(
        unapproved.stdout.contains("stays paused"),
        "{}",
        unapproved.stdout
    );
    let promoted = run(&[
        "promote",
        "--approve-as",
        "sam.reviewer",
        "--approve-reason",
        "canary dashboards reviewed",
    ]);
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    insta::assert_snapshot!("promote_paused", promoted.stdout);

    let aborted = run(&["abort", "--reason", "model card incomplete"]);
    assert_eq!(
        aborted.code, 0,
        "the abort was carried out: {}",
        aborted.stderr
    );
    insta::assert_snapshot!("abort_paused", aborted.stdout);
    assert!(
        aborted
            .stderr
            .contains("removed Deployment/ml-serving/iris-classifier-canary; stable ml-serving/iris-classifier untouched"),
        "{}",
        aborted.stderr
    );
}

#[test]
fn plan_json_is_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = deploy(
        &["plan", "--no-config", "--demo", "--output", "json"],
        dir.path(),
        &[],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    let report: serde_json::Value =
        serde_json::from_str(&output.stdout).expect("one JSON document");
    insta::assert_json_snapshot!("plan_json", report);
}

#[test]
fn a_trivyignore_from_the_config_lets_an_accepted_cve_through_and_an_expired_one_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join(".trivyignore"),
        "# accepted until the base image moves\nCVE-2024-3094 exp:2099-01-01\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("expired.trivyignore"),
        "CVE-2024-3094 exp:2020-01-01\n",
    )
    .expect("write");
    let accepted = deploy(
        &["plan", "--demo", "vulnerable-image"],
        dir.path(),
        &[("SLIPWAY_SCANNER__IGNORE_FILES", "[\".trivyignore\"]")],
    );
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    assert!(
        accepted.stderr.contains("3 findings, 1 ignored"),
        "{}",
        accepted.stderr
    );
    let expired = deploy(
        &["plan", "--demo", "vulnerable-image"],
        dir.path(),
        &[("SLIPWAY_SCANNER__IGNORE_FILES", "[\"expired.trivyignore\"]")],
    );
    assert_eq!(
        expired.code, 1,
        "an expired ignore stops applying: {}",
        expired.stderr
    );
    let missing = deploy(
        &["plan", "--no-config", "--demo"],
        dir.path(),
        &[("SLIPWAY_SCANNER__IGNORE_FILES", "[\"nope.trivyignore\"]")],
    );
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("key `scanner.ignore_files`")
            && missing.stderr.contains("nope.trivyignore"),
        "{}",
        missing.stderr
    );
}

fn deploy_with_input(args: &[&str], dir: &Path, input: &str) -> Output {
    use std::io::Write as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway-deploy"));
    command
        .args(args)
        .current_dir(dir)
        .env("USER", "release-bot")
        .env_remove("GITHUB_ACTOR")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") {
            command.env_remove(key);
        }
    }
    let mut child = command.spawn().expect("spawn slipway-deploy");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("answer");
    let output = child.wait_with_output().expect("wait");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn interactive_runs_ask_for_the_approval_at_the_gate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "run",
        "--no-config",
        "--demo",
        "unapproved",
        "--interactive",
    ];
    let approved = deploy_with_input(&args, dir.path(), "sam.reviewer\ncanary looked fine\n");
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert!(
        approved.stdout.contains("outcome: promoted"),
        "{}",
        approved.stdout
    );
    assert!(
        approved.stderr.contains("approved by (empty to abort): "),
        "{}",
        approved.stderr
    );

    let declined = deploy_with_input(&args, dir.path(), "\n");
    assert_eq!(declined.code, 1, "{}", declined.stderr);
    assert!(
        declined.stdout.contains("declined at the terminal"),
        "{}",
        declined.stdout
    );

    let selfish = deploy_with_input(&args, dir.path(), "release-bot\nmine\n");
    assert_eq!(
        selfish.code, 0,
        "refused, the release stays paused: {}",
        selfish.stderr
    );
    assert!(
        selfish.stdout.contains("outcome: paused"),
        "{}",
        selfish.stdout
    );
    assert!(
        selfish.stderr.contains("cannot approve it"),
        "{}",
        selfish.stderr
    );
}

#[test]
fn plan_refuses_a_step_one_canary_pod_exceeds_and_round_up_reports_both_shares() {
    // The demo world's stable has 9 replicas: one canary pod is 10% of the pods, so 5% is too
    // coarse (the 4-replica case, 10% → 20%, is tested in the pipeline's tests).
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("slipway.toml"),
        "[rollout]\nsteps = [5, 25, 50]\n",
    )
    .expect("write");
    let refused = deploy(&["plan", "--demo"], dir.path(), &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    for needle in [
        "outcome: failed",
        "step 1/3: 5% requested, 10% achievable (1 canary pod(s) next to 9 stable)",
        "at least 19 replicas",
        "rollout.traffic = \"gateway-api\"",
        "rollout.coarse_steps = \"round-up\"",
    ] {
        assert!(
            refused.stdout.contains(needle),
            "{needle}: {}",
            refused.stdout
        );
    }
    assert!(
        !refused.stderr.contains("model-gate"),
        "refused in preflight, before any gate: {}",
        refused.stderr
    );

    let text = deploy(
        &["plan", "--demo"],
        dir.path(),
        &[("SLIPWAY_ROLLOUT__COARSE_STEPS", "round-up")],
    );
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("steps (requested → actual): 5% → 10% (rounded up), 25% → 25%, 50% → 50%\n"),
        "{}",
        text.stdout
    );

    let output = deploy(
        &["plan", "--demo", "--output", "json"],
        dir.path(),
        &[("SLIPWAY_ROLLOUT__COARSE_STEPS", "round-up")],
    );
    assert_eq!(output.code, 0, "{}", output.stderr);
    assert!(
        output.stderr.contains(
            "5% requested, 10% achievable (1 canary pod(s) next to 9 stable): rounded up"
        ),
        "{}",
        output.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(&output.stdout).expect("one JSON document");
    assert_eq!(report["outcome"], "would-proceed");
    let steps: Vec<(u64, f64, u64, bool)> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| {
            (
                step["requested_percent"].as_u64().expect("requested"),
                step["actual_percent"].as_f64().expect("actual"),
                step["canary_replicas"].as_u64().expect("replicas"),
                step["rounded_up"].as_bool().expect("rounded up"),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (5, 10.0, 1, true),
            (25, 25.0, 3, false),
            (50, 50.0, 9, false)
        ]
    );
}

/// Replaces the temp directory in `text` so snapshots do not depend on it.
fn without_dir(text: &str, dir: &Path) -> String {
    let shown = dir.display().to_string();
    let text = text.replace(&shown, "[DIR]");
    // macOS and some CI runners reach the temp dir through a symlink.
    match dir.canonicalize() {
        Ok(real) => text.replace(&real.display().to_string(), "[DIR]"),
        Err(_) => text,
    }
}

#[test]
fn without_backends_or_demo_every_release_command_exits_2_naming_demo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = deploy(&["run"], dir.path(), &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    insta::assert_snapshot!("no_backends", without_dir(&run.stderr, dir.path()));
    for args in [
        &["plan"][..],
        &["approve", "--reason", "x"],
        &["promote"],
        &["abort", "--reason", "x"],
        &["status"],
    ] {
        let output = deploy(args, dir.path(), &[]);
        assert_eq!(output.code, 2, "{args:?}: {}", output.stderr);
        assert_eq!(
            without_dir(&output.stderr, dir.path()),
            without_dir(&run.stderr, dir.path()),
            "{args:?}"
        );
    }
    // The demo is one flag away, in the same empty directory.
    let demo = deploy(&["run", "--demo", "bad-canary"], dir.path(), &[]);
    assert_eq!(demo.code, 1, "{}", demo.stderr);
}

/// A configuration naming real systems everywhere; `extra` goes into `[backend]`.
fn real_config(dir: &Path, extra: &str) {
    std::fs::write(
        dir.join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: not-a-real-token\n",
    )
    .expect("kubeconfig");
    std::fs::write(
        dir.join("slipway.toml"),
        format!(
            "[backend]\nmodels = \"mlflow\"\nregistry = \"oci\"\ncluster = \"kubernetes\"\nscanner = \"trivy-report\"\n{extra}\n[mlflow]\ntracking_uri = \"http://127.0.0.1:1\"\n\n[kubernetes]\nkubeconfig = \"kubeconfig\"\n\n[scanner]\nreport = \"trivy.json\"\n\n[audit]\npath = \"audit.jsonl\"\n"
        ),
    )
    .expect("config");
}

#[test]
fn a_real_cluster_with_default_metrics_is_refused_naming_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    real_config(dir.path(), "");
    let output = deploy(&["plan"], dir.path(), &[]);
    assert_eq!(output.code, 2, "{}", output.stderr);
    assert!(output.stderr.contains("backend.simulated = [\"metrics\"]"));
    insta::assert_snapshot!("real_cluster_default_metrics", output.stderr);
    let demo = deploy(&["plan", "--demo"], dir.path(), &[]);
    assert_eq!(demo.code, 2, "--demo never runs next to real backends");
    assert!(
        demo.stderr.contains("names real backends"),
        "{}",
        demo.stderr
    );
}

/// With `backend.simulated = ["metrics"]` the command runs, and the story, the JSON report and
/// the GitHub step summary each name the simulated part. The cluster here is a real client
/// whose API server is unreachable (no API server runs in these tests), so the run fails at
/// preflight (exit 2) after every output was written.
#[test]
fn metrics_simulated_on_purpose_is_named_in_every_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    real_config(dir.path(), "simulated = [\"metrics\"]");
    let summary = dir.path().join("summary.md");
    let summary_arg = summary.display().to_string();
    let docker = dir.path().join("docker");
    let docker_arg = docker.display().to_string();
    let output = deploy(
        &["plan", "--output", "json"],
        dir.path(),
        &[
            ("GITHUB_STEP_SUMMARY", &summary_arg),
            ("DOCKER_CONFIG", &docker_arg),
        ],
    );
    assert_eq!(output.code, 2, "{}", output.stderr);
    let report: serde_json::Value = serde_json::from_str(&output.stdout).expect("JSON report");
    insta::assert_json_snapshot!("simulated_metrics_backends", report["backends"]);
    let story: Vec<&str> = output
        .stderr
        .lines()
        .filter(|line| line.starts_with("slipway:") || line.starts_with("after:"))
        .collect();
    insta::assert_snapshot!(
        "simulated_metrics_story",
        without_dir(&story.join("\n"), dir.path())
    );
    let summary = std::fs::read_to_string(&summary).expect("step summary");
    assert!(
        summary.contains("| simulated | ⚠️ metrics (in memory, `backend.simulated`) |"),
        "{summary}"
    );
}

/// `--demo --state DIR`: a release paused by one process is approved and promoted by the next
/// ones, and another one paused is aborted; the trail is `DIR/audit.jsonl`.
#[test]
fn a_release_paused_by_one_process_is_approved_and_promoted_by_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world");
    let state_arg = state.display().to_string();
    let with_state = |args: &[&str]| -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--demo", "--state", &state_arg]);
        deploy(&all, dir.path(), &[])
    };
    let run = deploy(
        &["run", "--demo", "unapproved", "--state", &state_arg],
        dir.path(),
        &[],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("outcome: paused"), "{}", run.stdout);

    let status = with_state(&["status"]);
    assert_eq!(status.code, 3, "{}", status.stderr);
    assert!(
        status.stdout.contains("paused: revision 3"),
        "{}",
        status.stdout
    );

    let approve = with_state(&[
        "approve",
        "--as",
        "sam.reviewer",
        "--reason",
        "canary looked fine",
    ]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);

    let promote = with_state(&["promote"]);
    assert_eq!(promote.code, 0, "{}", promote.stderr);
    assert!(
        promote.stdout.contains("outcome: promoted"),
        "{}",
        promote.stdout
    );
    assert!(promote.stdout.contains("revision: 4"), "{}", promote.stdout);

    let after = with_state(&["status", "--output", "json"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
    let after: serde_json::Value = serde_json::from_str(&after.stdout).expect("status JSON");
    assert_eq!(after["paused"], serde_json::Value::Null, "{after}");
    assert_eq!(after["canary"], serde_json::Value::Null, "{after}");
    let trail = std::fs::read_to_string(state.join("audit.jsonl")).expect("trail in the state dir");
    assert!(
        trail.contains("sam.reviewer"),
        "the approval is in the trail"
    );
    assert!(
        trail.contains("\"promoted\""),
        "the promotion is in the trail"
    );

    // The state names its scenario: asking for another one is an error naming both.
    let other = deploy(
        &["status", "--demo", "happy", "--state", &state_arg],
        dir.path(),
        &[],
    );
    assert_eq!(other.code, 2, "{}", other.stderr);
    assert!(
        other.stderr.contains("holds the `unapproved` world"),
        "{}",
        other.stderr
    );

    // Another world: paused, then aborted by the next process; stable untouched.
    let second = dir.path().join("second");
    let second_arg = second.display().to_string();
    let paused = deploy(
        &["run", "--demo", "unapproved", "--state", &second_arg],
        dir.path(),
        &[],
    );
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    let abort = deploy(
        &[
            "abort",
            "--demo",
            "--state",
            &second_arg,
            "--reason",
            "not today",
        ],
        dir.path(),
        &[],
    );
    assert_eq!(abort.code, 0, "{}", abort.stderr);
    let world = slipway_demo::persist::open(&second).expect("saved world");
    assert_eq!(world.scenario, "unapproved");
    assert_eq!(
        world.cluster.deployment_names("ml-serving"),
        ["iris-classifier"],
        "the canary is gone"
    );
}

/// The embedded world's test hooks at the process level: a run stalled after its 6th cluster
/// write (the canary's creation) and killed with SIGKILL leaves the state directory holding
/// every write it made, and nothing after.
#[test]
fn a_process_killed_after_a_cluster_write_leaves_that_write_saved() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world");
    let mut child = Command::new(env!("CARGO_BIN_EXE_slipway-deploy"))
        .args(["run", "--no-config", "--demo", "--state"])
        .arg(&state)
        .current_dir(dir.path())
        .env("USER", "release-bot")
        .env("SLIPWAY_DEMO_TRACE_WRITES", "1")
        .env("SLIPWAY_DEMO_STALL_AFTER_WRITE", "7")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut traced = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("line");
        if line.starts_with("slipway-demo: ") {
            traced.push(line.clone());
        }
        if line.starts_with("slipway-demo: stalled after cluster write 7: ") {
            break;
        }
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert!(
        traced.first().is_some_and(|line| line.starts_with(
            "slipway-demo: cluster write 1: acquire Lease ml-serving/iris-classifier"
        )),
        "{traced:#?}"
    );
    assert_eq!(
        traced.last().map(String::as_str),
        Some(
            "slipway-demo: stalled after cluster write 7: derive Deployment ml-serving/iris-classifier-canary"
        ),
        "{traced:#?}"
    );
    let world = slipway_demo::persist::open(&state).expect("saved world");
    assert_eq!(
        world.cluster.deployment_names("ml-serving"),
        ["iris-classifier", "iris-classifier-canary"],
        "the canary created before the kill is saved"
    );
    let release = slipway_core::ReleaseId::parse("ml-serving/iris-classifier").expect("release");
    assert!(
        world.cluster.lock_holder(&release).is_some(),
        "the lease taken before the kill is saved"
    );
}
