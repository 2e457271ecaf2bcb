//! `cargo xtask demo`: tell the whole story on the embedded defaults, or run one scenario.
//!
//! - `demo` (no flags): `slipway-deploy demo` tells the story in one in-memory world (v1
//!   serves; canary v2 passes and is promoted; canary v3, a worse model, is aborted; v2 degrades
//!   after promotion and `watch` rolls it back) and writes the audit trail to
//!   `target/demo/audit.jsonl`; then `slipway-audit` reads that trail: `log`, `dora`, `verify`
//!   and `report --html target/demo/report.html`. Each command is printed before it runs; the
//!   demo exits 0 only when every step ended as the story expects, else with the first
//!   unexpected exit code (1 "said no", 2 error).
//!   Then the same release across processes, in a world kept in `target/demo/state` (made anew
//!   each time): `slipway-deploy run --demo unapproved --state DIR` pauses at the approval gate,
//!   `status` shows it, `approve` (a reviewer) and `promote` finish it, each a separate process,
//!   as a CI workflow's jobs would; `status` shows the result.
//! - `demo --scenario NAME`: `slipway-deploy run --no-config --demo NAME`, exit code passed
//!   through (0 promoted, 1 a gate or the analysis said no, 2 error).
//! - `demo --list`: the scenarios.
//!
//! Each step goes through `cargo run --quiet -p …`, so the binaries are built on first use and
//! the printed command is the one a developer would type after `cargo install`.

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::error::{Context as _, Result, bail};

use crate::process::cargo;

/// Where the story's trail and report go, relative to the workspace root.
const TRAIL: &str = "target/demo/audit.jsonl";
const REPORT: &str = "target/demo/report.html";
/// The embedded world the cross-process steps share.
const STATE: &str = "target/demo/state";
/// The end of the DORA period: the day after the story's simulated day (`scenario::START`,
/// 2026-11-22), so the figures cover it whatever the real date is.
const DORA_UNTIL: &str = "2026-11-23T00:00:00Z";

/// What `demo` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Args {
    Story,
    Scenario(String),
    List,
}

impl Args {
    pub(crate) fn parse(args: &[String]) -> Result<Self> {
        let mut scenario = None;
        let mut list = false;
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            match arg.as_str() {
                "--list" => list = true,
                "--scenario" => match iter.next() {
                    Some(name) => scenario = Some(name.clone()),
                    None => bail!("`--scenario` needs a name, e.g. `--scenario happy`"),
                },
                other => match other.strip_prefix("--scenario=") {
                    Some(name) => scenario = Some(name.to_owned()),
                    None => bail!(
                        "unknown `demo` argument `{other}`\n\nhint: `cargo xtask demo --list` lists the scenarios"
                    ),
                },
            }
        }
        match (list, scenario) {
            (true, Some(_)) => bail!("`--list` and `--scenario` cannot be used together"),
            (true, None) => Ok(Self::List),
            (false, Some(name)) => Ok(Self::Scenario(name)),
            (false, None) => Ok(Self::Story),
        }
    }
}

/// One step of the story: which binary and its arguments. Every step is expected to exit 0:
/// `slipway-deploy demo` itself exits 0 only when every chapter ended as written. A step with
/// `expect` must also print that text on stdout.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    package: &'static str,
    args: Vec<String>,
    expect: Option<&'static str>,
    /// The exit code the story expects (0; `status` of a paused release exits 3).
    code: i32,
}

impl Step {
    fn new(package: &'static str, args: &[&str]) -> Step {
        Step {
            package,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            expect: None,
            code: 0,
        }
    }

    fn expecting(mut self, text: &'static str) -> Step {
        self.expect = Some(text);
        self
    }

    fn exiting(mut self, code: i32) -> Step {
        self.code = code;
        self
    }

    /// The command a developer would type.
    fn line(&self) -> String {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|arg| {
                if arg.contains(' ') {
                    format!("\"{arg}\"")
                } else {
                    arg.clone()
                }
            })
            .collect();
        format!("{} {}", self.package, args.join(" "))
    }
}

/// The story's steps, in order.
fn story_steps() -> Vec<Step> {
    vec![
        Step::new("slipway-deploy", &["demo", "--no-config", "--trail", TRAIL]),
        Step::new("slipway-audit", &["log", "--no-config", "--trail", TRAIL]),
        Step::new(
            "slipway-audit",
            &[
                "dora",
                "--no-config",
                "--trail",
                TRAIL,
                "--until",
                DORA_UNTIL,
            ],
        ),
        Step::new(
            "slipway-audit",
            &["verify", "--no-config", "--demo", "--trail", TRAIL],
        ),
        Step::new(
            "slipway-audit",
            &["report", "--no-config", "--trail", TRAIL, "--html", REPORT],
        ),
    ]
}

/// The release paused by one process and finished by the next ones, in the world kept in
/// [`STATE`].
fn cross_process_steps() -> Vec<Step> {
    let deploy = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--no-config", "--demo", "--state", STATE]);
        Step::new("slipway-deploy", &all)
    };
    vec![
        Step::new(
            "slipway-deploy",
            &[
                "run",
                "--no-config",
                "--demo",
                "unapproved",
                "--state",
                STATE,
            ],
        )
        .expecting("outcome: paused"),
        // Paused is not a final state: `status` exits 3, as `kubectl argo rollouts status` does.
        deploy(&["status"])
            .expecting("waits for approval: 0 of 1 given")
            .exiting(3),
        deploy(&[
            "approve",
            "--as",
            "sam.reviewer",
            "--reason",
            "canary dashboards reviewed",
        ])
        .expecting("approved: ml-serving/iris-classifier by sam.reviewer"),
        deploy(&["promote"]).expecting("outcome: promoted"),
        deploy(&["status"]).expecting("canary: none"),
    ]
}

fn cargo_run(root: &Path, package: &str, args: &[String]) -> Command {
    let mut command = Command::new(cargo());
    command
        .current_dir(root)
        .args(["run", "--quiet", "-p", package, "--"])
        .args(args);
    command
}

/// The child's exit code; a child killed by a signal has none and counts as an error (2).
fn code_of(status: std::process::ExitStatus) -> i32 {
    status.code().unwrap_or(2)
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<ExitCode> {
    match args {
        Args::Story => story(root),
        Args::Scenario(name) => single(root, &["run", "--no-config", "--demo", name]),
        Args::List => single(root, &["run", "--list-scenarios"]),
    }
}

fn single(root: &Path, args: &[&str]) -> Result<ExitCode> {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    // Inherited stdio streams the child's output as it comes.
    let status = cargo_run(root, "slipway-deploy", &args)
        .status()
        .context("failed to spawn `cargo run -p slipway-deploy`")?;
    Ok(exit_code(code_of(status)))
}

/// Runs `step`, printing it first; `None` when it ended as expected, else its exit code (1 for
/// an exit 0 without the expected output).
fn run_step(root: &Path, step: &Step) -> Result<Option<i32>> {
    eprintln!("\n$ {}", step.line());
    let mut command = cargo_run(root, step.package, &step.args);
    let code = match step.expect {
        None => code_of(
            command
                .status()
                .with_context(|| format!("failed to spawn `cargo run -p {}`", step.package))?,
        ),
        Some(expected) => {
            // Stdout is read to check it, then shown; stderr (the story) streams as it comes.
            let output = command
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("failed to spawn `cargo run -p {}`", step.package))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            print!("{stdout}");
            let code = code_of(output.status);
            if code == step.code && !stdout.contains(expected) {
                eprintln!("demo: `{}` did not print `{expected}`", step.line());
                return Ok(Some(1));
            }
            code
        }
    };
    if code != step.code {
        eprintln!(
            "demo: `{}` exited {code}, the story expects {}",
            step.line(),
            step.code
        );
        return Ok(Some(code));
    }
    Ok(None)
}

fn story(root: &Path) -> Result<ExitCode> {
    let mut unexpected = None;
    for step in story_steps() {
        if let Some(code) = run_step(root, &step)? {
            unexpected.get_or_insert(code);
        }
    }
    eprintln!(
        "\n━━ across processes: a release paused by one command, approved and promoted by the next ━━"
    );
    let state = root.join(STATE);
    match std::fs::remove_dir_all(&state) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => bail!("cannot start a fresh world in `{}`: {err}", state.display()),
    }
    for step in cross_process_steps() {
        if let Some(code) = run_step(root, &step)? {
            unexpected.get_or_insert(code);
            // The next steps depend on this one.
            break;
        }
    }
    match unexpected {
        None => {
            eprintln!(
                "\ndemo: every step ended as the story expects; trail {TRAIL}, report {REPORT}, world {STATE}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(code) => Ok(exit_code(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, cross_process_steps, story_steps};

    #[track_caller]
    fn check(args: &[&str], expected: Result<Args, &str>) {
        let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        match (Args::parse(&args), expected) {
            (Ok(actual), Ok(expected)) => assert_eq!(actual, expected),
            (Err(actual), Err(expected)) => {
                let actual = actual.to_string();
                assert!(
                    actual.contains(expected),
                    "`{actual}` should contain `{expected}`"
                );
            }
            (actual, expected) => panic!("got {actual:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn parses_demo_args() {
        check(&[], Ok(Args::Story));
        check(
            &["--scenario", "bad-canary"],
            Ok(Args::Scenario("bad-canary".to_owned())),
        );
        check(
            &["--scenario=bad-canary"],
            Ok(Args::Scenario("bad-canary".to_owned())),
        );
        check(&["--list"], Ok(Args::List));
        check(&["--scenario"], Err("needs a name"));
        check(
            &["--list", "--scenario", "x"],
            Err("cannot be used together"),
        );
        check(&["--frobnicate"], Err("unknown `demo` argument"));
    }

    #[test]
    fn the_story_writes_a_trail_and_every_audit_step_reads_it() {
        let steps = story_steps();
        let lines: Vec<String> = steps.iter().map(super::Step::line).collect();
        assert_eq!(
            lines,
            [
                "slipway-deploy demo --no-config --trail target/demo/audit.jsonl",
                "slipway-audit log --no-config --trail target/demo/audit.jsonl",
                "slipway-audit dora --no-config --trail target/demo/audit.jsonl --until 2026-11-23T00:00:00Z",
                "slipway-audit verify --no-config --demo --trail target/demo/audit.jsonl",
                "slipway-audit report --no-config --trail target/demo/audit.jsonl --html target/demo/report.html",
            ]
        );
    }

    #[test]
    fn across_processes_a_paused_release_is_approved_and_promoted() {
        let lines: Vec<String> = cross_process_steps()
            .iter()
            .map(|step| format!("{} => {:?}", step.line(), step.expect))
            .collect();
        assert_eq!(
            lines,
            [
                "slipway-deploy run --no-config --demo unapproved --state target/demo/state => Some(\"outcome: paused\")",
                "slipway-deploy status --no-config --demo --state target/demo/state => Some(\"waits for approval: 0 of 1 given\")",
                "slipway-deploy approve --as sam.reviewer --reason \"canary dashboards reviewed\" --no-config --demo --state target/demo/state => Some(\"approved: ml-serving/iris-classifier by sam.reviewer\")",
                "slipway-deploy promote --no-config --demo --state target/demo/state => Some(\"outcome: promoted\")",
                "slipway-deploy status --no-config --demo --state target/demo/state => Some(\"canary: none\")",
            ]
        );
    }
}
