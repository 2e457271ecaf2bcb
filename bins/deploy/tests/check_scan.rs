//! `check-scan` end to end over real Trivy reports: exit code, stdout and stderr snapshotted
//! together, SARIF validated against the SARIF 2.1.0 schema (tests/data, from the OASIS spec
//! repository) and compared with Trivy's own SARIF for the same image.
//!
//! The command module is compiled in directly so these tests do not depend on how `main.rs`
//! wires subcommands.

#[allow(
    dead_code,
    unreachable_pub,
    reason = "only part of the command is exercised here"
)]
#[path = "../src/check_scan.rs"]
mod check_scan;

use std::path::{Path, PathBuf};

use check_scan::{CheckScanArgs, OutputFormat};
use slipway_scanner::Severity;

const ALPINE: &str = "registry.example/acme/model-server:1.0@sha256:961769676411f082461f9ef46626dd7a2d1e2b2a38e6a44364bcbecf51e66dd4";
const FLUENTD: &str = "registry.example/acme/fluentd@sha256:5a992077baba51b97f27591a10d54d2f2723dc9c81a3fe419e261023f2554933";
const DISTROLESS: &str = "registry.example/acme/py27@sha256:6fcac2cc8a710f21577b5bbd534e0bfc841c0cca569b57182ba19054696cddda";

fn scanner_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/scanner/tests/data")
        .join(name)
}

fn args(report: &str, image: &str) -> CheckScanArgs {
    CheckScanArgs {
        report: Some(scanner_data(report)),
        image: image.to_owned(),
        ignore_files: Vec::new(),
        sarif: None,
        markdown: None,
        global: slipway_cli::GlobalArgs::default(),
        fail_at: Severity::High,
        ignore_unfixed: false,
        max_report_size: slipway_scanner::DEFAULT_MAX_REPORT_BYTES,
        as_of: Some(jiff::civil::date(2025, 6, 1)),
    }
}

/// Runs the command like `main` would and renders exit code, stdout and stderr (uv's layout),
/// with machine-specific paths replaced.
fn run(args: &CheckScanArgs, tmp: &Path) -> String {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let exit_code = match check_scan::run_with(args, &mut stdout, &mut stderr) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(err) => {
            stderr.extend(format!("error: {err:#}\n").into_bytes());
            2
        }
    };
    let data_dir = scanner_data("").display().to_string();
    let render = |bytes: Vec<u8>| {
        String::from_utf8(bytes)
            .expect("utf-8")
            .replace(&data_dir, "[DATA]/")
            .replace(&tmp.display().to_string(), "[TMP]")
    };
    format!(
        "exit_code: {exit_code}\n----- stdout -----\n{}----- stderr -----\n{}",
        render(stdout),
        render(stderr)
    )
}

#[test]
fn fails_on_critical_and_high_and_reports_all() {
    let tmp = tempfile::tempdir().expect("tempdir");
    insta::assert_snapshot!(run(&args("fluentd-gems.json", FLUENTD), tmp.path()));
}

#[test]
fn ignore_file_with_future_and_past_expiry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ignore = tmp.path().join(".trivyignore");
    std::fs::write(&ignore, "# accepted until the base image moves\nCVE-2019-18224 exp:2030-01-01\nCVE-2020-8165 exp:2025-01-31\n")
        .expect("write");
    let mut args = args("fluentd-gems.json", FLUENTD);
    args.ignore_files = vec![ignore];
    insta::assert_snapshot!(run(&args, tmp.path()));
}

#[test]
fn yaml_ignore_file_passes_and_json_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ignore = tmp.path().join(".trivyignore.yaml");
    std::fs::write(
        &ignore,
        "vulnerabilities:\n  - id: CVE-2019-18224\n    expired_at: 2030-01-01\n    statement: libidn2 is not reachable from the model server\n  - id: CVE-2020-8165\n    paths: [\"var/lib/gems/*\"]\n    statement: activesupport only in the build stage\n",
    )
    .expect("write");
    let mut args = args("fluentd-gems.json", FLUENTD);
    args.ignore_files = vec![ignore];
    args.global.output = OutputFormat::Json;
    let markdown = tmp.path().join("summary.md");
    args.markdown = Some(markdown.clone());
    insta::assert_snapshot!(run(&args, tmp.path()));
    let markdown = std::fs::read_to_string(markdown).expect("markdown written");
    let markdown = markdown.replace(&tmp.path().display().to_string(), "[TMP]");
    insta::assert_snapshot!("yaml_ignore_markdown", markdown);
}

#[test]
fn ignore_unfixed_with_low_threshold() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut args = args("distroless-python27.json", DISTROLESS);
    args.fail_at = Severity::Low;
    args.ignore_unfixed = true;
    insta::assert_snapshot!(run(&args, tmp.path()));
}

#[test]
fn report_about_another_image_is_an_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    insta::assert_snapshot!(run(&args("alpine-310.json", FLUENTD), tmp.path()));
}

#[test]
fn unreadable_and_legacy_reports_are_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    insta::assert_snapshot!(run(&args("missing.json", ALPINE), tmp.path()));
    insta::assert_snapshot!(run(
        &args("alpine-310-ignore-unfixed.json", ALPINE),
        tmp.path()
    ));
    let truncated = tmp.path().join("truncated.json");
    let full = std::fs::read(scanner_data("alpine-310.json")).expect("fixture");
    std::fs::write(&truncated, &full[..1000]).expect("write");
    let mut args = args("alpine-310.json", ALPINE);
    args.report = Some(truncated);
    insta::assert_snapshot!(run(&args, tmp.path()));
}

#[test]
fn sarif_is_valid_and_matches_trivys_findings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let sarif_path = tmp.path().join("out.sarif");
    let mut args = args("alpine-310.json", ALPINE);
    args.fail_at = Severity::Medium;
    args.sarif = Some(sarif_path.clone());
    let ignore = tmp.path().join(".trivyignore");
    std::fs::write(&ignore, "CVE-2019-1551 exp:2030-01-01\n").expect("write");
    args.ignore_files = vec![ignore];
    let out = run(&args, tmp.path());
    assert!(out.starts_with("exit_code: 1\n"), "{out}");

    let mut sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif_path).expect("sarif written"))
            .expect("sarif is JSON");
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json"),
        )
        .expect("schema"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|err| format!("{err} at {}", err.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF does not validate:\n{}",
        errors.join("\n")
    );

    // Trivy's own SARIF for the same image: same rules and the same results, in order.
    let trivy: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scanner_data("alpine-310.sarif.json")).expect("fixture"),
    )
    .expect("JSON");
    // Trivy's own output validates too, so the check above is not vacuous about the schema.
    assert!(validator.is_valid(&trivy));
    let rule_ids = |sarif: &serde_json::Value| -> Vec<String> {
        sarif["runs"][0]["tool"]["driver"]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .map(|r| r["id"].to_string())
            .collect()
    };
    let result_keys = |sarif: &serde_json::Value| -> Vec<(String, String)> {
        sarif["runs"][0]["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| (r["ruleId"].to_string(), r["ruleIndex"].to_string()))
            .collect()
    };
    assert_eq!(rule_ids(&sarif), rule_ids(&trivy));
    assert_eq!(result_keys(&sarif), result_keys(&trivy));
    // A schema-invalid document is caught (guards against a validator that accepts anything).
    assert!(
        !validator.is_valid(&serde_json::json!({"version": "2.1.0", "runs": [{"results": []}]}))
    );

    sarif["runs"][0]["tool"]["driver"]["version"] = serde_json::json!("[VERSION]");
    let rendered = serde_json::to_string_pretty(&sarif).expect("render");
    insta::assert_snapshot!(rendered.replace(&tmp.path().display().to_string(), "[TMP]"));
}

/// Runs the real `slipway-deploy check-scan` binary and renders exit code, stdout and stderr.
fn cli(args: &[&str], path_var: Option<&std::ffi::OsStr>, tmp: &Path) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_slipway-deploy"));
    command.arg("check-scan").args(args).env("NO_COLOR", "1");
    if let Some(path_var) = path_var {
        command.env("PATH", path_var);
    }
    let output = command.output().expect("run slipway-deploy");
    let data_dir = scanner_data("").display().to_string();
    let render = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .replace(&data_dir, "[DATA]/")
            .replace(&tmp.display().to_string(), "[TMP]")
    };
    format!(
        "exit_code: {}\n----- stdout -----\n{}----- stderr -----\n{}",
        output
            .status
            .code()
            .map_or("signal".to_owned(), |code| code.to_string()),
        render(&output.stdout),
        render(&output.stderr)
    )
}

#[test]
fn cli_fail_pass_and_error_exit_codes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let report = scanner_data("fluentd-gems.json");
    let report = report.to_str().expect("utf-8 path");
    let sarif = tmp.path().join("out.sarif");
    insta::assert_snapshot!(
        "cli_fail",
        cli(
            &[
                "--report",
                report,
                "--image",
                FLUENTD,
                "--as-of",
                "2025-06-01",
                "--sarif",
                sarif.to_str().expect("utf-8")
            ],
            None,
            tmp.path()
        )
    );
    assert!(sarif.exists());
    insta::assert_snapshot!(
        "cli_critical_threshold_json",
        cli(
            &[
                "--report",
                report,
                "--image",
                FLUENTD,
                "--as-of",
                "2025-06-01",
                "--fail-at",
                "critical",
                "--ignore-unfixed",
                "--output",
                "json"
            ],
            None,
            tmp.path()
        )
        .lines()
        .take(8)
        .collect::<Vec<_>>()
        .join("\n")
    );
    insta::assert_snapshot!(
        "cli_wrong_image",
        cli(
            &[
                "--report",
                report,
                "--image",
                ALPINE,
                "--as-of",
                "2025-06-01"
            ],
            None,
            tmp.path()
        )
    );
    insta::assert_snapshot!(
        "cli_bad_severity",
        cli(
            &["--report", report, "--image", ALPINE, "--fail-at", "severe"],
            None,
            tmp.path()
        )
    );
}

#[test]
fn cli_runs_trivy_from_path_without_report() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let script = tmp.path().join("trivy");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncat '{}'\n",
            scanner_data("alpine-310.json").display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path_var =
        std::env::join_paths([tmp.path(), Path::new("/usr/bin"), Path::new("/bin")]).expect("PATH");
    insta::assert_snapshot!(
        "cli_trivy_on_path",
        cli(
            &["--image", ALPINE, "--as-of", "2025-06-01"],
            Some(&path_var),
            tmp.path()
        )
    );
    insta::assert_snapshot!(
        "cli_no_trivy_no_report",
        cli(
            &["--image", ALPINE],
            Some(std::ffi::OsStr::new("/nonexistent")),
            tmp.path()
        )
    );
}

/// `--output json` validates against the schema `slipway-deploy schema check-scan` publishes,
/// for a pass, a fail with ignored findings, and unfixed findings.
#[test]
fn json_output_validates_against_its_schema() {
    let validator = jsonschema::validator_for(&check_scan::schema()).expect("schema compiles");
    for (report, image) in [
        ("alpine-310.json", ALPINE),
        ("fluentd-gems.json", FLUENTD),
        ("distroless-python27.json", DISTROLESS),
    ] {
        let mut args = args(report, image);
        args.global.output = OutputFormat::Json;
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        check_scan::run_with(&args, &mut stdout, &mut stderr).expect("check-scan runs");
        let document: serde_json::Value = serde_json::from_slice(&stdout).expect("JSON");
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{report}: {errors:?}");
        assert_eq!(document["schema_version"], 2, "{report}");
    }
}
