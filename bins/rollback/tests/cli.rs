//! The real `slipway-rollback` binary on the embedded `happy` world (revision 2 serves, revision
//! 1 before it): the bare flags still roll back, `to` does the same, `watch` exits 0 when the
//! release stays healthy and 1 when it breaches and is rolled back, and errors exit 2 naming
//! what to fix. stdout is snapshotted; stderr (the stage events) is checked for the key lines.

use std::process::Command;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn rollback(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_slipway-rollback"))
        .args(args)
        .env_remove("SLIPWAY_AUDIT__PATH")
        .env_remove("SLIPWAY_BACKEND__SCENARIO")
        .output()
        .expect("run slipway-rollback");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn snapshot(output: &Output) -> String {
    format!(
        "exit_code: {}\n----- stdout -----\n{}",
        output.code, output.stdout
    )
}

#[test]
fn bare_flags_and_to_roll_back_alike() {
    let bare = rollback(&[
        "--no-config",
        "--demo",
        "--reason",
        "p99 doubled",
        "--emergency",
    ]);
    assert_eq!(bare.code, 0, "{}", bare.stderr);
    let to = rollback(&[
        "to",
        "--no-config",
        "--demo",
        "--reason",
        "p99 doubled",
        "--emergency",
    ]);
    assert_eq!(to.code, 0, "{}", to.stderr);
    assert_eq!(bare.stdout, to.stdout, "`to` is the default command");
    insta::assert_snapshot!("emergency_rollback", snapshot(&bare));
    assert!(
        bare.stderr.contains("emergency rollback by"),
        "{}",
        bare.stderr
    );
}

#[test]
fn a_rollback_without_approval_is_refused() {
    let output = rollback(&["to", "--no-config", "--demo", "--reason", "p99 doubled"]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    assert!(
        output.stdout.contains("outcome: refused"),
        "{}",
        output.stdout
    );
}

#[test]
fn a_healthy_release_is_guarded_and_exits_0() {
    let output = rollback(&["watch", "--no-config", "--demo"]);
    assert_eq!(output.code, 0, "{}", output.stderr);
    insta::assert_snapshot!("watch_healthy", snapshot(&output));
    assert!(
        output.stderr.contains("30m guarded") || output.stderr.contains("guarded for 30m"),
        "{}",
        output.stderr
    );
}

#[test]
fn a_breach_rolls_back_and_exits_1() {
    // The happy world's stable serves a 0.2% error rate: above a 0.1% limit from the first check.
    let output = rollback(&[
        "watch",
        "ml-serving/iris-classifier",
        "--no-config",
        "--demo",
        "--error-rate-max",
        "0.001",
    ]);
    assert_eq!(output.code, 1, "{}", output.stderr);
    insta::assert_snapshot!("watch_breach", snapshot(&output));
    assert!(
        output
            .stderr
            .contains("approval skipped (watch: error-rate breached for 5m"),
        "an emergency rollback naming the breach: {}",
        output.stderr
    );
    let json = rollback(&[
        "watch",
        "--no-config",
        "--demo",
        "--error-rate-max",
        "0.001",
        "--output",
        "json",
    ]);
    assert_eq!(json.code, 1);
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(report["outcome"], "rejected");
    assert_eq!(report["revision"], 2, "the guarded revision");
}

#[test]
fn errors_exit_2_and_say_what_to_fix() {
    let cases: [(&str, &[&str]); 5] = [
        ("missing_reason", &["--no-config", "--demo"]),
        (
            "watch_zero_interval",
            &["watch", "--no-config", "--demo", "--interval", "0s"],
        ),
        // A bad flag value is attributed to the command-line flags and names its key.
        (
            "watch_bad_duration",
            &["watch", "--no-config", "--demo", "--duration", "soon"],
        ),
        ("reason_with_watch", &["--reason", "x", "watch"]),
        // Real by default: no configuration and no `--demo` is an error naming `--demo`.
        (
            "no_backends",
            &["--no-config", "--reason", "x", "--emergency"],
        ),
    ];
    for (name, args) in cases {
        let output = rollback(args);
        assert_eq!(output.code, 2, "{name}: {}", output.stderr);
        assert_eq!(output.stdout, "", "{name}: nothing on stdout");
        insta::assert_snapshot!(name, output.stderr);
    }
}

#[test]
fn in_github_actions_a_rollback_writes_its_outputs_and_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outputs = dir.path().join("outputs");
    let summary = dir.path().join("summary.md");
    let output = Command::new(env!("CARGO_BIN_EXE_slipway-rollback"))
        .args([
            "--no-config",
            "--demo",
            "--emergency",
            "--reason",
            "p99 doubled",
        ])
        .env_remove("SLIPWAY_AUDIT__PATH")
        .env_remove("SLIPWAY_BACKEND__SCENARIO")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("run slipway-rollback");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let written = std::fs::read_to_string(&outputs).expect("outputs written");
    assert!(written.contains("verdict=rolled-back"), "{written}");
    assert!(written.contains("revision=3"), "{written}");
    let markdown = std::fs::read_to_string(&summary).expect("summary written");
    assert!(
        markdown.contains("ml-serving/iris-classifier"),
        "{markdown}"
    );
}

#[test]
fn a_rollback_goes_on_in_the_world_saved_by_the_previous_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world");
    let state = state.display().to_string();
    let args = [
        "to",
        "--demo",
        "--state",
        &state,
        "--emergency",
        "--reason",
        "p99 doubled",
    ];
    let first = rollback(&args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("revision: 3"), "{}", first.stdout);
    // A fresh world would roll back to revision 3 again; the saved one goes on from it.
    let second = rollback(&args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("revision: 4"), "{}", second.stdout);
    let trail = std::fs::read_to_string(dir.path().join("world").join("audit.jsonl"))
        .expect("the trail lives with the world");
    assert!(trail.matches("p99 doubled").count() >= 2, "{trail}");
}
