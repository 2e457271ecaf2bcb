//! `cargo xtask demo`: tell the whole story on the embedded defaults, or run one scenario.
//!
//! - `demo` (no flags): `slipway-deploy demo` tells the story in one in-memory world (v1
//!   serves; canary v2 passes and is promoted; canary v3, a worse model, is aborted; v2 degrades
//!   after promotion and `watch` rolls it back) and writes the audit trail to
//!   `target/demo/audit.jsonl`; then `slipway-audit` reads that trail: `log`, `dora`, `verify`
//!   and `report --html target/demo/report.html`. Each command is printed before it runs; the
//!   demo exits 0 only when every step ended as the story expects, else with the first
//!   unexpected exit code (1 "said no", 2 error).
//! - `demo --scenario NAME`: `slipway-deploy run --no-config --scenario NAME`, exit code passed
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
/// `slipway-deploy demo` itself exits 0 only when every chapter ended as written.
#[derive(Debug, PartialEq, Eq)]
struct Step {
    package: &'static str,
    args: Vec<String>,
}

impl Step {
    fn new(package: &'static str, args: &[&str]) -> Step {
        Step {
            package,
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        }
    }

    /// The command a developer would type.
    fn line(&self) -> String {
        format!("{} {}", self.package, self.args.join(" "))
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
            &["verify", "--no-config", "--trail", TRAIL],
        ),
        Step::new(
            "slipway-audit",
            &["report", "--no-config", "--trail", TRAIL, "--html", REPORT],
        ),
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
        Args::Scenario(name) => single(root, &["run", "--no-config", "--scenario", name]),
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

fn story(root: &Path) -> Result<ExitCode> {
    let mut unexpected = None;
    for step in story_steps() {
        eprintln!("\n$ {}", step.line());
        let status = cargo_run(root, step.package, &step.args)
            .status()
            .with_context(|| format!("failed to spawn `cargo run -p {}`", step.package))?;
        let code = code_of(status);
        if code != 0 {
            eprintln!("demo: `{}` exited {code}, the story expects 0", step.line());
            unexpected.get_or_insert(code);
        }
    }
    match unexpected {
        None => {
            eprintln!(
                "\ndemo: every step ended as the story expects; trail {TRAIL}, report {REPORT}"
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(code) => Ok(exit_code(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, story_steps};

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
                "slipway-audit verify --no-config --trail target/demo/audit.jsonl",
                "slipway-audit report --no-config --trail target/demo/audit.jsonl --html target/demo/report.html",
            ]
        );
    }
}
