//! `status`, `history`, `schema` and `--output yaml` across processes, on the embedded world
//! kept in a state directory (`--demo SCENARIO --state DIR`), as a CI job's steps would run
//! them: exit codes, snapshots, and every JSON document checked against the schema the binary
//! publishes.

use std::path::Path;
use std::process::Command;

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn deploy(args: &[&str], dir: &Path) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slipway-deploy"));
    command
        .args(args)
        .current_dir(dir)
        .env("USER", "release-bot")
        .env_remove("GITHUB_ACTOR")
        .env_remove("RUST_LOG");
    for (key, _) in std::env::vars() {
        if key.starts_with("SLIPWAY_") || key.starts_with("GITHUB_") {
            command.env_remove(key);
        }
    }
    let output = command.output().expect("run slipway-deploy");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A world released by `run --demo SCENARIO --state DIR/world` in its own process.
fn world(scenario: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("world").display().to_string();
    let run = deploy(
        &["run", "--no-config", "--demo", scenario, "--state", &state],
        dir.path(),
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    (dir, state)
}

fn snapshot(output: &Output, dir: &Path) -> String {
    format!(
        "exit code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        output.code, output.stdout, output.stderr
    )
    .replace(&dir.display().to_string(), "[DIR]")
}

/// The schema `slipway-deploy schema NAME` prints, compiled.
fn validator(name: &str, dir: &Path) -> jsonschema::Validator {
    let printed = deploy(&["schema", name], dir);
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    let schema: serde_json::Value = serde_json::from_str(&printed.stdout).expect("schema JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

#[track_caller]
fn assert_valid(validator: &jsonschema::Validator, json: &str, what: &str) -> serde_json::Value {
    let document: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|err| panic!("{what}: not JSON: {err}\n{json}"));
    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|err| format!("{} at {}", err, err.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {}\n{json}", errors.join("\n"));
    assert_eq!(document["schema_version"], 2, "{what}");
    document
}

#[test]
fn status_watch_on_a_paused_release_exits_3_when_the_timeout_ends() {
    let (dir, state) = world("unapproved");
    let status = deploy(
        &[
            "status",
            "--no-config",
            "--demo",
            "--state",
            &state,
            "--watch",
            "--timeout",
            "1s",
        ],
        dir.path(),
    );
    assert_eq!(status.code, 3, "{}", status.stderr);
    assert!(
        status.stderr.contains("paused; waiting up to"),
        "{}",
        status.stderr
    );
    // The progress the run recorded: every step analysed, with its measurements.
    assert!(
        status
            .stdout
            .contains("step: 3 of 3 (50% of pods), 3 analysed"),
        "{}",
        status.stdout
    );
    insta::assert_snapshot!(
        "status_paused",
        snapshot(&status, dir.path())
            .lines()
            .filter(|line| !line.contains("waiting up to"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn status_on_an_aborted_release_exits_1_and_a_promoted_one_0() {
    let (dir, state) = world("bad-canary");
    let status = deploy(
        &[
            "status",
            "--no-config",
            "--demo",
            "--state",
            &state,
            "--watch",
            "--timeout",
            "1s",
        ],
        dir.path(),
    );
    assert_eq!(status.code, 1, "{}", status.stderr);
    insta::assert_snapshot!("status_aborted", snapshot(&status, dir.path()));

    let (dir, state) = world("happy");
    let status = deploy(
        &["status", "--no-config", "--demo", "--state", &state],
        dir.path(),
    );
    assert_eq!(status.code, 0, "{}\n{}", status.stdout, status.stderr);
    assert!(
        status.stdout.contains("state: promoted"),
        "{}",
        status.stdout
    );
}

#[test]
fn history_lists_every_revision_as_text_json_and_yaml() {
    let (dir, state) = world("bad-canary");
    let base = ["history", "--no-config", "--demo", "--state", &state];
    let text = deploy(&base, dir.path());
    assert_eq!(text.code, 0, "{}", text.stderr);
    insta::assert_snapshot!("history_text", snapshot(&text, dir.path()));

    let yaml = deploy(&[&base[..], &["--output", "yaml"]].concat(), dir.path());
    assert_eq!(yaml.code, 0, "{}", yaml.stderr);
    let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml.stdout).expect("YAML");
    assert_eq!(parsed["schema_version"], 2);
    let revisions = parsed["revisions"].as_array().expect("revisions");
    assert_eq!(revisions.len(), 3, "{}", yaml.stdout);
    assert_eq!(revisions[2]["outcome"], "aborted");
    insta::assert_snapshot!("history_yaml", yaml.stdout);

    // The YAML is the JSON document, and `--max` keeps the newest.
    let json = deploy(
        &[&base[..], &["-o", "json", "--max", "1"]].concat(),
        dir.path(),
    );
    let document = assert_valid(&validator("history", dir.path()), &json.stdout, "history");
    assert_eq!(document["revisions"].as_array().map(Vec::len), Some(1));
    assert_eq!(document["revisions"][0]["revision"], 3);
    assert_eq!(document["revisions"][0], revisions[2]);
}

/// Every JSON document `slipway-deploy` prints validates against the schema it publishes.
#[test]
fn every_json_output_validates_against_its_published_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = validator("report", dir.path());
    let status = validator("status", dir.path());
    let approval = validator("approval", dir.path());
    let audit_entry = validator("audit-entry", dir.path());
    // `config` is a schema too, and `slipway.toml`'s defaults satisfy it.
    let config = validator("config", dir.path());
    let printed = deploy(&["plan", "--no-config", "--print-config"], dir.path());
    let toml: toml::Value = toml::from_str(&printed.stdout).expect("TOML");
    let settings = serde_json::to_value(&toml).expect("config as JSON");
    let errors: Vec<String> = config
        .iter_errors(&settings)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "config: {errors:?}");

    for scenario in ["happy", "bad-canary", "bad-model"] {
        let run = deploy(
            &["run", "--no-config", "--demo", scenario, "-o", "json"],
            dir.path(),
        );
        assert_valid(&report, &run.stdout, &format!("run {scenario}"));
    }
    let plan = deploy(
        &["plan", "--no-config", "--demo", "--output", "json"],
        dir.path(),
    );
    assert_valid(&report, &plan.stdout, "plan");

    let state = dir.path().join("world").display().to_string();
    let with_state = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend([
            "--no-config",
            "--demo",
            "--state",
            &state,
            "--output",
            "json",
        ]);
        deploy(&all, dir.path())
    };
    deploy(
        &[
            "run",
            "--no-config",
            "--demo",
            "unapproved",
            "--state",
            &state,
        ],
        dir.path(),
    );
    let paused = with_state(&["status"]);
    let document = assert_valid(&status, &paused.stdout, "status paused");
    assert_eq!(document["state"], "paused");
    assert_eq!(
        document["progress"]["analysed"].as_array().map(Vec::len),
        Some(3)
    );
    let approved = with_state(&["approve", "--as", "sam.reviewer", "--reason", "reviewed"]);
    assert_valid(&approval, &approved.stdout, "approve");
    let promoted = with_state(&["promote"]);
    assert_valid(&report, &promoted.stdout, "promote");
    let done = with_state(&["status"]);
    assert_valid(&status, &done.stdout, "status promoted");
    // Nothing holds the lock now: `unlock` says so.
    let unlock = validator("unlock", dir.path());
    let unlocked = with_state(&["unlock", "nobody@2026-01-01T00:00:00Z", "--reason", "stale"]);
    let document = assert_valid(&unlock, &unlocked.stdout, "unlock");
    assert_eq!(document["holder"], serde_json::Value::Null);
    // Another world's paused release, aborted: the report's outcome is `aborted`.
    let other = dir.path().join("other").display().to_string();
    let paused = deploy(
        &[
            "run",
            "--no-config",
            "--demo",
            "unapproved",
            "--state",
            &other,
        ],
        dir.path(),
    );
    assert_eq!(paused.code, 0, "{}", paused.stderr);
    let aborted = deploy(
        &[
            "abort",
            "--reason",
            "not today",
            "--no-config",
            "--demo",
            "--state",
            &other,
            "-o",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(aborted.code, 0, "{}", aborted.stderr);
    let document = assert_valid(&report, &aborted.stdout, "abort");
    assert_eq!(document["outcome"], "aborted");

    // Each line of the trail the world keeps is an audit entry.
    let trail = std::fs::read_to_string(dir.path().join("world/audit.jsonl")).expect("trail");
    for line in trail.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("entry");
        let errors: Vec<String> = audit_entry
            .iter_errors(&entry)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "audit entry: {errors:?}\n{line}");
    }
}

/// A document missing a required field, or with a wrong type, is refused: the schemas are not
/// "anything goes".
#[test]
fn the_schemas_refuse_a_wrong_document() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = validator("report", dir.path());
    let run = deploy(&["run", "--no-config", "--demo", "-o", "json"], dir.path());
    let mut document: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(report.is_valid(&document));
    document["outcome"] = serde_json::json!("maybe");
    assert!(!report.is_valid(&document));
    document["outcome"] = serde_json::json!("promoted");
    document
        .as_object_mut()
        .expect("object")
        .remove("schema_version");
    assert!(!report.is_valid(&document));
}

#[test]
fn a_release_written_after_demo_is_refused_naming_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = deploy(&["status", "--no-config", "--demo", "ml/iris"], dir.path());
    assert_eq!(status.code, 2, "{}", status.stderr);
    assert!(
        status
            .stderr
            .contains("`ml/iris` is not a demo scenario (a release? give it before `--demo`"),
        "{}",
        status.stderr
    );
    // Before `--demo`, the positional release is the release.
    let status = deploy(&["status", "ml/iris", "--no-config", "--demo"], dir.path());
    assert!(
        status.stdout.contains("release: ml/iris"),
        "{}\n{}",
        status.stdout,
        status.stderr
    );
}
