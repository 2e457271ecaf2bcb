//! GitHub Actions integration: the step summary, step outputs and annotations of a run.
//!
//! What a job gets from one [`RunReport`]:
//! - `$GITHUB_STEP_SUMMARY`: Markdown appended to the file (release, outcome, reason, model,
//!   digest, revision, every gate check, each canary step's requested and actual share, the
//!   analysis verdict of each canary step, and the stage log folded away).
//! - `$GITHUB_OUTPUT`: `release`, `verdict`, `reason`, `model`, `digest`, `revision`, so later
//!   jobs (`approve`, `promote`) can read `needs.<job>.outputs.digest`. Multi-line values use the
//!   heredoc form with a delimiter that is checked not to occur in the value.
//! - `::error::` / `::warning::` workflow commands, returned as lines for the binary to print on
//!   stderr (a library never prints). Only when `GITHUB_ACTIONS=true`: elsewhere they are noise.
//!
//! Key design decision: everything is rendered by pure functions ([`step_summary`], [`outputs`],
//! [`encode_outputs`], [`annotations`]) and [`GithubEnv::publish`] only appends to the files the
//! runner named. The environment is read once, through a closure, so tests and other CI systems
//! never touch the process environment. Secrets never reach these outputs because the report
//! holds none (its messages are built from redacted errors).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use slipway_analysis::Decision;
use slipway_gates::CheckStatus;
use slipway_pipeline::{RunOutcome, RunReport, StageStatus};

use crate::UserError;

/// The environment variables GitHub Actions sets that this module reads, declared once.
pub mod env_vars {
    /// Path of the file whose Markdown becomes the job's summary page.
    pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";
    /// Path of the file that collects the step's outputs (`name=value` or heredoc form).
    pub const GITHUB_OUTPUT: &str = "GITHUB_OUTPUT";
    /// `true` when running inside GitHub Actions.
    pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
}

/// Where a run reports to GitHub Actions. Empty when not running there.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GithubEnv {
    /// `$GITHUB_STEP_SUMMARY`: Markdown is appended here.
    pub step_summary: Option<PathBuf>,
    /// `$GITHUB_OUTPUT`: step outputs are appended here.
    pub output: Option<PathBuf>,
    /// `$GITHUB_ACTIONS == "true"`: annotations are worth printing.
    pub actions: bool,
}

impl GithubEnv {
    /// Reads the variables through `env` (the binaries pass `|name| std::env::var(name).ok()`).
    /// An empty value counts as unset.
    pub fn from_env_map(env: impl Fn(&str) -> Option<String>) -> GithubEnv {
        let path = |name: &str| {
            env(name)
                .filter(|value| !value.trim().is_empty())
                .map(PathBuf::from)
        };
        GithubEnv {
            step_summary: path(env_vars::GITHUB_STEP_SUMMARY),
            output: path(env_vars::GITHUB_OUTPUT),
            actions: env(env_vars::GITHUB_ACTIONS).is_some_and(|value| value.trim() == "true"),
        }
    }

    /// Whether there is anything to publish to.
    pub fn is_active(&self) -> bool {
        self.actions || self.step_summary.is_some() || self.output.is_some()
    }

    /// Appends the step summary and the outputs to the files GitHub named, and returns the
    /// annotation lines for the caller to print on stderr (none outside GitHub Actions).
    pub fn publish(&self, report: &RunReport) -> Result<Vec<String>, UserError> {
        if let Some(path) = &self.step_summary {
            append(path, &step_summary(report), env_vars::GITHUB_STEP_SUMMARY)?;
        }
        if let Some(path) = &self.output {
            append(
                path,
                &encode_outputs(&outputs(report)),
                env_vars::GITHUB_OUTPUT,
            )?;
        }
        Ok(if self.actions {
            annotations(report)
        } else {
            Vec::new()
        })
    }
}

/// Appends `text` to `path`, which the runner created; creates it when missing (as the runner's
/// own toolkit does).
fn append(path: &Path, text: &str, variable: &str) -> Result<(), UserError> {
    let result = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    result.map_err(|err| UserError {
        message: format!(
            "cannot append to `{}` (named by `{variable}`): {err}\n\nhint: GitHub Actions sets `{variable}` to a writable file; outside Actions, unset it",
            path.display()
        ),
    })
}

/// The outcome's name as the JSON report spells it (`promoted`, `would-proceed`, …).
pub fn outcome_name(outcome: RunOutcome) -> String {
    serde_json::to_value(outcome)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{outcome:?}").to_lowercase())
}

/// The step outputs, in a fixed order. Values not known (the run stopped before) are empty, so
/// a later job's `needs.<job>.outputs.<name>` is always defined.
pub fn outputs(report: &RunReport) -> Vec<(&'static str, String)> {
    vec![
        ("release", report.release.clone()),
        ("verdict", outcome_name(report.outcome)),
        ("reason", report.reason.clone()),
        (
            "model",
            report
                .model
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            "digest",
            report
                .digest
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        (
            "revision",
            report
                .revision
                .map(|revision| revision.to_string())
                .unwrap_or_default(),
        ),
    ]
}

/// `name=value` lines; a value with a line break uses the heredoc form
/// `name<<DELIMITER\nvalue\nDELIMITER`, with a delimiter that does not occur in the value (so a
/// value can never end the heredoc early and inject another output).
pub fn encode_outputs(outputs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in outputs {
        if value.contains(['\n', '\r']) {
            let mut n = 0_u32;
            let mut delimiter = "SLIPWAY_EOF".to_owned();
            while value.contains(&delimiter) {
                n += 1;
                delimiter = format!("SLIPWAY_EOF_{n}");
            }
            out.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
        } else {
            out.push_str(&format!("{name}={value}\n"));
        }
    }
    out
}

/// Severity of a workflow command annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error::`: shown in red; the step fails anyway through the exit code.
    Error,
    /// `::warning::`: something went wrong that did not change the outcome.
    Warning,
}

/// One workflow command: `::error title=…::message`, escaped as GitHub requires (`%`, `\r`,
/// `\n` in the message; additionally `:` and `,` in the title property).
pub fn workflow_command(level: Level, title: &str, message: &str) -> String {
    let command = match level {
        Level::Error => "error",
        Level::Warning => "warning",
    };
    format!(
        "::{command} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// Escapes a workflow command's message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Stages whose failures are already reported as failed gate checks.
const GATE_STAGES: &[&str] = &[
    "deploy-window",
    "model-gate",
    "scan-gate",
    "verify",
    "approval",
];

/// The annotations for a run, most specific first:
/// - an error per failed gate check (`model gate: accuracy >= 0.85`);
/// - an error per failed event of a non-gate stage (the canary could not be removed, …), except
///   the analysis, whose reasons the outcome line carries;
/// - a warning per event that reports a failure that did not change the outcome (a notification
///   not delivered, a tag not set: `notify` events and messages starting with `could not`);
/// - an error for the outcome when the release was rejected or failed.
pub fn annotations(report: &RunReport) -> Vec<String> {
    let mut lines = Vec::new();
    for check in &report.gates.checks {
        if check.status == CheckStatus::Fail {
            lines.push(workflow_command(
                Level::Error,
                &format!("{} gate: {}", check.gate, check.name),
                &check.reason,
            ));
        }
    }
    for event in &report.stages {
        let gate_stage = GATE_STAGES.contains(&event.stage) || event.stage == "analysis";
        match event.status {
            StageStatus::Fail if !gate_stage => lines.push(workflow_command(
                Level::Error,
                &format!("slipway {}", event.stage),
                &event.message,
            )),
            StageStatus::Info
                if event.stage == "notify" || event.message.starts_with("could not") =>
            {
                lines.push(workflow_command(
                    Level::Warning,
                    &format!("slipway {}", event.stage),
                    &event.message,
                ));
            }
            _ => {}
        }
    }
    // `matches!` rather than an exhaustive `match`: outcomes that end well or wait (promoted,
    // would proceed, paused for approval) need no annotation, whatever new ones are added.
    if matches!(
        report.outcome,
        RunOutcome::Rejected | RunOutcome::Failed | RunOutcome::Cancelled
    ) {
        lines.push(workflow_command(
            Level::Error,
            &format!(
                "slipway release {} {}",
                report.release,
                outcome_name(report.outcome)
            ),
            &report.reason,
        ));
    }
    lines
}

/// Escapes text for a Markdown table cell: `|` would end the cell, a line break the row, and `<`
/// could open an HTML tag.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

/// A code span for values we produce ourselves (digests, model versions, release ids).
fn code(text: &str) -> String {
    if text.contains('`') {
        cell(text)
    } else {
        format!("`{}`", cell(text))
    }
}

/// The Markdown appended to `$GITHUB_STEP_SUMMARY`.
pub fn step_summary(report: &RunReport) -> String {
    let outcome = outcome_name(report.outcome);
    let mark = if matches!(
        report.outcome,
        RunOutcome::Promoted | RunOutcome::RolledBack | RunOutcome::WouldProceed
    ) {
        "✅"
    } else if report.outcome == RunOutcome::Rejected {
        "❌"
    } else if matches!(report.outcome, RunOutcome::Failed | RunOutcome::Cancelled) {
        "⚠️"
    } else if report.outcome == RunOutcome::Unchanged {
        "✅"
    } else if report.outcome == RunOutcome::Aborted {
        // Removed on request: done, but nothing was released.
        "🛑"
    } else {
        // Waiting for a person (paused at the approval gate).
        "⏸️"
    };
    let mut out = format!(
        "## {mark} Slipway: {} {outcome}\n\n| | |\n| --- | --- |\n",
        code(&report.release)
    );
    out.push_str(&format!("| release | {} |\n", code(&report.release)));
    let simulated: Vec<&str> = report
        .backends
        .iter()
        .filter(|(_, info)| info.simulated)
        .map(|(name, _)| name.as_str())
        .collect();
    if !simulated.is_empty() {
        let what = if simulated.len() == report.backends.len() {
            "every backend (the embedded demo world)".to_owned()
        } else {
            format!("{} (in memory, `backend.simulated`)", simulated.join(", "))
        };
        out.push_str(&format!("| simulated | ⚠️ {what} |\n"));
    }
    out.push_str(&format!("| outcome | {outcome} |\n"));
    out.push_str(&format!("| reason | {} |\n", cell(&report.reason)));
    let unknown = "–".to_owned();
    out.push_str(&format!(
        "| model | {} |\n",
        report
            .model
            .as_ref()
            .map_or_else(|| unknown.clone(), |model| code(&model.to_string()))
    ));
    out.push_str(&format!(
        "| digest | {} |\n",
        report
            .digest
            .as_ref()
            .map_or_else(|| unknown.clone(), |digest| code(&digest.to_string()))
    ));
    out.push_str(&format!(
        "| revision | {} |\n\n",
        report
            .revision
            .map_or_else(|| unknown.clone(), |revision| revision.to_string())
    ));
    out.push_str(&report.gates.render_markdown());
    if !report.steps.is_empty() {
        out.push_str(
            "\n### Canary steps\n\n| step | requested | actual | canary pods | stable pods |\n| --- | --- | --- | --- | --- |\n",
        );
        for step in &report.steps {
            out.push_str(&format!(
                "| {} | {}% | {}%{} | {} | {} |\n",
                step.step,
                step.requested_percent,
                step.actual_percent,
                if step.rounded_up {
                    " ⚠️ rounded up"
                } else {
                    ""
                },
                step.canary_replicas,
                step.stable_replicas
            ));
        }
    }
    out.push_str("\n### Canary analysis\n\n");
    if report.analysis.is_empty() {
        out.push_str("No analysis ran.\n");
    } else {
        out.push_str("| step | verdict | measurements | reasons |\n| --- | --- | --- | --- |\n");
        for (idx, run) in report.analysis.iter().enumerate() {
            let verdict = match run.decision() {
                Decision::Pass => "✅ pass",
                Decision::Fail => "❌ fail",
                Decision::Inconclusive => "❔ inconclusive",
            };
            out.push_str(&format!(
                "| {} | {verdict} | {} | {} |\n",
                idx + 1,
                run.measurements.len(),
                cell(&run.verdict.reasons.join("\n"))
            ));
        }
    }
    out.push_str(&format!(
        "\n<details><summary>Stage log ({} events)</summary>\n\n| time (UTC) | stage | status | message |\n| --- | --- | --- | --- |\n",
        report.stages.len()
    ));
    for event in &report.stages {
        let status = match event.status {
            StageStatus::Start => "start",
            StageStatus::Pass => "pass",
            StageStatus::Fail => "fail",
            StageStatus::Skip => "skip",
            StageStatus::Info => "info",
        };
        out.push_str(&format!(
            "| {} | {} | {status} | {} |\n",
            event.at.strftime("%H:%M:%S"),
            event.stage,
            cell(&event.message)
        ));
    }
    out.push_str("\n</details>\n\n");
    out
}

/// In GitHub Actions (read from the process environment): writes the step summary and outputs
/// for `report` and prints the annotation lines on stderr, where the runner reads workflow
/// commands too, so stdout stays data. Does nothing elsewhere.
#[allow(
    clippy::print_stderr,
    reason = "workflow commands for the Actions runner"
)]
pub fn publish_from_env(report: &RunReport) -> Result<(), UserError> {
    let github = GithubEnv::from_env_map(|name| std::env::var(name).ok());
    if github.is_active() {
        for line in github.publish(report)? {
            eprintln!("{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use jiff::Timestamp;
    use slipway_analysis::{AnalysisPlan, AnalysisRun, Measurement, Outcome, Verdict};
    use slipway_core::{Digest, ModelVersion};
    use slipway_gates::GateReport;
    use slipway_pipeline::{StageEvent, StepShare};

    use super::*;

    /// A directory of its own per test, removed on drop (no tempfile dependency in this crate).
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "slipway-cli-github-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_795_338_000 + seconds).expect("timestamp")
    }

    fn event(stage: &'static str, status: StageStatus, message: &str) -> StageEvent {
        StageEvent {
            stage,
            status,
            at: at(0),
            message: message.to_owned(),
        }
    }

    fn analysis(decision: Decision, reasons: &[&str]) -> AnalysisRun {
        AnalysisRun {
            release: "iris".to_owned(),
            namespace: "ml".to_owned(),
            track: "canary".to_owned(),
            plan: AnalysisPlan::default(),
            queries: Vec::new(),
            started: at(60),
            finished: at(360),
            measurements: vec![Measurement {
                metric: "error-rate".to_owned(),
                at: at(60),
                outcome: Outcome::Value(0.002),
            }],
            verdict: Verdict {
                decision,
                reasons: reasons.iter().map(|reason| (*reason).to_owned()).collect(),
                metrics: Vec::new(),
            },
            comparison: None,
            quality: None,
            smoke: Vec::new(),
        }
    }

    fn digest() -> Digest {
        Digest::parse(&format!("sha256:{}", "ab".repeat(32))).expect("digest")
    }

    /// A promoted release: gates passed, one analysis step, a notification that failed.
    fn promoted() -> RunReport {
        let mut gates = GateReport::default();
        gates.push(
            "model",
            "accuracy >= 0.85",
            CheckStatus::Pass,
            "0.95 >= 0.85",
        );
        gates.push(
            "signatures",
            "signed by a trusted key",
            CheckStatus::Pass,
            "1 of 1 signatures verified",
        );
        gates.push(
            "approvals",
            "1 approval(s)",
            CheckStatus::Pass,
            "maria.chen approved",
        );
        RunReport {
            release: "ml/iris".to_owned(),
            interruption: None,
            revision: Some(3),
            outcome: RunOutcome::Promoted,
            reason: "iris/3 serves from ghcr.io/acme/iris@sha256:abab… as revision 3".to_owned(),
            model: Some(ModelVersion {
                name: "iris".to_owned(),
                version: 3,
            }),
            digest: Some(digest()),
            stages: vec![
                event(
                    "preflight",
                    StageStatus::Start,
                    "checking release ml/iris before touching anything",
                ),
                event(
                    "notify",
                    StageStatus::Info,
                    "notification `started` failed: POST http://hooks:1 refused",
                ),
                event(
                    "promote",
                    StageStatus::Pass,
                    "stable ml/iris runs the new image",
                ),
            ],
            gates,
            analysis: vec![analysis(
                Decision::Pass,
                &["`error-rate` passed: 5 of 5 within max 0.01"],
            )],
            steps: vec![
                StepShare {
                    step: 1,
                    requested_percent: 10,
                    actual_percent: 20.0,
                    canary_replicas: 1,
                    stable_replicas: 4,
                    rounded_up: true,
                },
                StepShare {
                    step: 2,
                    requested_percent: 25,
                    actual_percent: 33.33,
                    canary_replicas: 2,
                    stable_replicas: 4,
                    rounded_up: false,
                },
            ],
            backends: Default::default(),
        }
    }

    /// A rejected release: the model gate said no, with awkward characters in the reason.
    fn rejected() -> RunReport {
        let mut gates = GateReport::default();
        gates.push(
            "model",
            "accuracy >= 0.85",
            CheckStatus::Fail,
            "0.81 < 0.85 | 100% sure,\nsee run: abc",
        );
        gates.push("model", "f1 >= 0.80", CheckStatus::Skip, "no f1 metric");
        RunReport {
            release: "ml/iris".to_owned(),
            interruption: None,
            revision: None,
            outcome: RunOutcome::Rejected,
            reason: "model-gate said no (0 passed, 1 failed, 1 skipped)\nhint: retrain".to_owned(),
            model: Some(ModelVersion {
                name: "iris".to_owned(),
                version: 4,
            }),
            digest: None,
            stages: vec![
                event(
                    "model-gate",
                    StageStatus::Fail,
                    "accuracy >= 0.85: 0.81 < 0.85",
                ),
                event(
                    "abort",
                    StageStatus::Fail,
                    "could not remove the canary: 403",
                ),
            ],
            gates,
            analysis: Vec::new(),
            steps: Vec::new(),
            backends: Default::default(),
        }
    }

    #[track_caller]
    fn check_escape(input: &str, data: &str, property: &str) {
        assert_eq!(escape_data(input), data, "data escape of {input:?}");
        assert_eq!(
            escape_property(input),
            property,
            "property escape of {input:?}"
        );
    }

    #[test]
    fn escapes_workflow_command_values() {
        check_escape("plain", "plain", "plain");
        check_escape("100%", "100%25", "100%25");
        check_escape("a\nb\r\nc", "a%0Ab%0D%0Ac", "a%0Ab%0D%0Ac");
        check_escape("gate: a, b", "gate: a, b", "gate%3A a%2C b");
        // `%` first, so an escape sequence in the input is not mistaken for one of ours.
        check_escape("%0A", "%250A", "%250A");
        check_escape("::error::x", "::error::x", "%3A%3Aerror%3A%3Ax");
    }

    #[test]
    fn reads_the_environment_once_through_the_closure() {
        let env = |name: &str| match name {
            env_vars::GITHUB_STEP_SUMMARY => Some("/runner/summary".to_owned()),
            env_vars::GITHUB_OUTPUT => Some(" ".to_owned()),
            env_vars::GITHUB_ACTIONS => Some("true".to_owned()),
            _ => None,
        };
        let github = GithubEnv::from_env_map(env);
        assert_eq!(
            github,
            GithubEnv {
                step_summary: Some(PathBuf::from("/runner/summary")),
                output: None,
                actions: true,
            }
        );
        assert!(github.is_active());
        let outside = GithubEnv::from_env_map(|name| {
            (name == env_vars::GITHUB_ACTIONS).then(|| "false".to_owned())
        });
        assert_eq!(outside, GithubEnv::default());
        assert!(!outside.is_active());
    }

    #[test]
    fn step_summary_of_a_promoted_release() {
        insta::assert_snapshot!("summary_promoted", step_summary(&promoted()));
    }

    #[test]
    fn step_summary_names_the_simulated_parts() {
        let mut report = promoted();
        for (name, implementation) in [
            ("models", "mlflow"),
            ("registry", "oci"),
            ("cluster", "kubernetes"),
            ("metrics", "memory"),
            ("scanner", "trivy-report"),
        ] {
            report.backends.insert(
                name.to_owned(),
                slipway_pipeline::BackendInfo {
                    implementation: implementation.to_owned(),
                    simulated: implementation == "memory",
                },
            );
        }
        let summary = step_summary(&report);
        assert!(
            summary.contains("| simulated | ⚠️ metrics (in memory, `backend.simulated`) |"),
            "{summary}"
        );
        insta::assert_snapshot!("summary_simulated_metrics", summary);
        for info in report.backends.values_mut() {
            info.implementation = "memory".to_owned();
            info.simulated = true;
        }
        assert!(
            step_summary(&report)
                .contains("| simulated | ⚠️ every backend (the embedded demo world) |")
        );
        report.backends.clear();
        assert!(!step_summary(&report).contains("simulated"));
    }

    #[test]
    fn step_summary_of_a_rejected_release() {
        let summary = step_summary(&rejected());
        // The reason's `|` and line break stay inside their cells.
        assert!(
            summary.contains(
                "| reason | model-gate said no (0 passed, 1 failed, 1 skipped)<br>hint: retrain |"
            ),
            "{summary}"
        );
        insta::assert_snapshot!("summary_rejected", summary);
    }

    #[test]
    fn annotations_name_each_failure_once() {
        assert_eq!(
            annotations(&rejected()),
            [
                "::error title=model gate%3A accuracy >= 0.85::0.81 < 0.85 | 100%25 sure,%0Asee run: abc",
                "::error title=slipway abort::could not remove the canary: 403",
                "::error title=slipway release ml/iris rejected::model-gate said no (0 passed, 1 failed, 1 skipped)%0Ahint: retrain",
            ]
        );
        assert_eq!(
            annotations(&promoted()),
            [
                "::warning title=slipway notify::notification `started` failed: POST http://hooks:1 refused"
            ]
        );
    }

    #[test]
    fn outputs_use_heredocs_for_multi_line_values_only() {
        let encoded = encode_outputs(&outputs(&rejected()));
        assert_eq!(
            encoded,
            "release=ml/iris\nverdict=rejected\nreason<<SLIPWAY_EOF\nmodel-gate said no (0 passed, 1 failed, 1 skipped)\nhint: retrain\nSLIPWAY_EOF\nmodel=iris/4\ndigest=\nrevision=\n"
        );
        let hostile = encode_outputs(&[(
            "reason",
            "a\nSLIPWAY_EOF\ndigest=sha256:evil\nSLIPWAY_EOF_1".to_owned(),
        )]);
        assert_eq!(
            hostile,
            "reason<<SLIPWAY_EOF_2\na\nSLIPWAY_EOF\ndigest=sha256:evil\nSLIPWAY_EOF_1\nSLIPWAY_EOF_2\n"
        );
    }

    #[test]
    fn publish_appends_to_the_runner_files() {
        let dir = TempDir::new();
        let summary = dir.0.join("step_summary.md");
        let output = dir.0.join("output");
        std::fs::write(&summary, "## earlier step\n").expect("seed summary");
        std::fs::write(&output, "earlier=1\n").expect("seed output");
        let github = GithubEnv {
            step_summary: Some(summary.clone()),
            output: Some(output.clone()),
            actions: true,
        };
        let report = promoted();
        let lines = github.publish(&report).expect("publish");
        assert_eq!(lines, annotations(&report));
        let written = std::fs::read_to_string(&summary).expect("summary");
        assert_eq!(
            written,
            format!("## earlier step\n{}", step_summary(&report))
        );
        let written = std::fs::read_to_string(&output).expect("output");
        assert_eq!(
            written,
            format!(
                "earlier=1\nrelease=ml/iris\nverdict=promoted\nreason=iris/3 serves from ghcr.io/acme/iris@sha256:abab… as revision 3\nmodel=iris/3\ndigest={}\nrevision=3\n",
                digest()
            )
        );

        // Outside Actions (files named by hand, no GITHUB_ACTIONS): files yes, annotations no.
        let quiet = GithubEnv {
            actions: false,
            ..github
        };
        assert_eq!(
            quiet.publish(&rejected()).expect("publish"),
            Vec::<String>::new()
        );
        assert!(
            std::fs::read_to_string(&output)
                .expect("output")
                .ends_with("verdict=rejected\nreason<<SLIPWAY_EOF\nmodel-gate said no (0 passed, 1 failed, 1 skipped)\nhint: retrain\nSLIPWAY_EOF\nmodel=iris/4\ndigest=\nrevision=\n")
        );
    }

    #[test]
    fn unwritable_file_is_an_error_naming_path_and_variable() {
        let dir = TempDir::new();
        let github = GithubEnv {
            step_summary: Some(dir.0.clone()),
            output: None,
            actions: false,
        };
        let err = github
            .publish(&promoted())
            .expect_err("a directory is not writable as a file");
        let message = err.message.replace(&dir.0.display().to_string(), "[DIR]");
        let (first, hint) = message.split_once("\n\nhint: ").expect("a hint");
        assert!(
            first.starts_with("cannot append to `[DIR]` (named by `GITHUB_STEP_SUMMARY`): "),
            "{first}"
        );
        assert_eq!(
            hint,
            "GitHub Actions sets `GITHUB_STEP_SUMMARY` to a writable file; outside Actions, unset it"
        );
    }
}
