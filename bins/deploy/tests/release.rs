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
    let output = deploy(&["run", "--no-config"], dir.path(), &[]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::assert_snapshot!("run_happy", snapshot(&output));
}

#[test]
fn bad_canary_exits_1_after_the_abort() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = deploy(
        &["run", "--no-config", "--scenario", "bad-canary"],
        dir.path(),
        &[],
    );
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
        let output = deploy(&["run", "--no-config", "--scenario", name], dir.path(), &[]);
        assert_eq!(output.code.to_string(), code, "{name}: {}", output.stderr);
        seen += 1;
    }
    assert!(seen >= 7, "{}", list.stdout);
}

#[test]
fn json_output_is_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = deploy(&["run", "--no-config", "--output", "json"], dir.path(), &[]);
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
        &["plan", "--no-config"],
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
        ("bare_model", vec!["run", "--no-config", "--model", "iris"]),
        (
            "uppercase_image",
            vec!["run", "--no-config", "--image", "ghcr.io/Acme/iris:1"],
        ),
        (
            "unknown_scenario",
            vec!["run", "--no-config", "--scenario", "nope"],
        ),
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
        &["run", "--no-config"],
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
            &["run", "--no-config", "--output", "json"],
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
        &["run", "--no-config"],
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
    let paused = ["--no-config", "--scenario", "paused"];
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

    let status = run(&["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
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
    let record: serde_json::Value = serde_json::from_str(&approved.stdout).expect("json");
    assert_eq!(record["approver"], "sam.reviewer");
    assert_eq!(record["model"]["version"], 3);

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
    assert_eq!(aborted.code, 1, "{}", aborted.stderr);
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
        &["plan", "--no-config", "--output", "json"],
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
        &["plan", "--no-config", "--scenario", "vulnerable-image"],
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
        &["plan", "--no-config", "--scenario", "vulnerable-image"],
        dir.path(),
        &[("SLIPWAY_SCANNER__IGNORE_FILES", "[\"expired.trivyignore\"]")],
    );
    assert_eq!(
        expired.code, 1,
        "an expired ignore stops applying: {}",
        expired.stderr
    );
    let missing = deploy(
        &["plan", "--no-config"],
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
        "--scenario",
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
    let refused = deploy(&["plan"], dir.path(), &[]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    for needle in [
        "outcome: failed",
        "step 1/3: 5% requested, 10% achievable (1 canary pod(s) next to 9 stable)",
        "at least 19 replicas",
        "rollout.traffic = \"nginx\"",
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
        &["plan"],
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
        &["plan", "--output", "json"],
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
