//! `cargo xtask demo`: run one `slipway-deploy` scenario end to end.
//!
//! A thin wrapper: it spawns `cargo run -p slipway-deploy -- run --no-config ...` in the
//! workspace root and exits with the child's exit code (0 promoted, 1 a gate or the
//! analysis said no, 2 error), so scripts can branch on it as they would on the binary.

use std::path::Path;
use std::process::{Command, ExitCode};

use crate::error::{Context as _, Result, bail};

use crate::process::cargo;

const DEFAULT_SCENARIO: &str = "happy";

/// What `demo` was asked to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Args {
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
            (false, scenario) => Ok(Self::Scenario(
                scenario.unwrap_or_else(|| DEFAULT_SCENARIO.to_owned()),
            )),
        }
    }
}

pub(crate) fn run(root: &Path, args: &Args) -> Result<ExitCode> {
    let mut command = Command::new(cargo());
    command.current_dir(root).args([
        "run",
        "--quiet",
        "-p",
        "slipway-deploy",
        "--",
        "run",
        "--no-config",
    ]);
    match args {
        Args::Scenario(name) => command.args(["--scenario", name]),
        Args::List => command.arg("--list-scenarios"),
    };
    // Inherited stdio streams the child's output as it comes.
    let status = command
        .status()
        .context("failed to spawn `cargo run -p slipway-deploy`")?;
    // A child killed by a signal has no code; report it as an error (2) like the binary would.
    let code = status.code().unwrap_or(2);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(2)))
}

#[cfg(test)]
mod tests {
    use super::Args;

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
        check(&[], Ok(Args::Scenario("happy".to_owned())));
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
}
