//! `cargo xtask ci`: the whole gate CI runs, in one command developers can run too.
//!
//! Steps, failing fast: fmt, clippy, services + tests, cargo deny (bans, licenses, sources). The cheap static checks
//! come first so a formatting slip fails in seconds, not after the test suite. Services are
//! stopped even when tests fail, so a red run leaves no servers behind.
//!
//! Tests run with plain `cargo test`, not nextest: one less tool to install, and the
//! workspace-hygiene checks (`tidy.rs`) are ordinary tests in it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Context as _, Error, Result, bail};

use crate::process::{self, cargo};
use crate::services;

/// Installed on first use; 0.20.2 is the newest that builds with our pinned Rust 1.95.
const CARGO_DENY_VERSION: &str = "0.20.2";

struct Timings(Vec<(&'static str, Duration, bool)>);

impl Timings {
    /// Runs one step, records how long it took, and names it in the error if it fails.
    fn step(&mut self, name: &'static str, body: impl FnOnce() -> Result<()>) -> Result<()> {
        eprintln!("ci: == {name}");
        let begin = Instant::now();
        let res = body();
        self.0.push((name, begin.elapsed(), res.is_ok()));
        res.with_context(|| format!("ci step `{name}` failed"))
    }

    fn print(&self) {
        eprintln!("ci: timings");
        for (name, elapsed, ok) in &self.0 {
            let outcome = if *ok { "ok" } else { "FAILED" };
            eprintln!(
                "ci:   {name:<10} {:>7.1}s  {outcome}",
                elapsed.as_secs_f64()
            );
        }
    }
}

pub(crate) fn run(root: &Path) -> Result<()> {
    let mut timings = Timings(Vec::new());
    let res = run_steps(root, &mut timings);
    timings.print();
    if res.is_ok() {
        eprintln!("ci: all steps passed");
    }
    res
}

fn run_steps(root: &Path, timings: &mut Timings) -> Result<()> {
    timings.step("fmt", || {
        cargo_in(root, &["fmt", "--all", "--check"], &[]).map_err(|err| {
            Error::msg(format!(
                "{err}\n\nhint: run `cargo fmt --all` and commit the result"
            ))
        })
    })?;
    timings.step("clippy", || {
        cargo_in(
            root,
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
    })?;

    let mut env = None;
    let started = timings.step("services", || {
        env = Some(services::start(root)?);
        Ok(())
    });
    let tested = match (&started, &env) {
        (Ok(()), Some(env)) => {
            let mut vars: Vec<(&str, String)> = vec![
                // insta: fail on a missing or changed snapshot and write nothing.
                ("INSTA_UPDATE", "no".to_owned()),
                ("CI", "true".to_owned()),
            ];
            vars.extend(env.vars.iter().cloned());
            timings.step("test", || {
                // --no-fail-fast: report every failing package, not just the first.
                cargo_in(
                    root,
                    &["test", "--workspace", "--locked", "--no-fail-fast"],
                    &vars,
                )
            })
        }
        _ => Ok(()),
    };
    // Always stop, even after a failed start (it may have left some running).
    let stopped = timings.step("stop", || services::stop(root));
    started?;
    tested?;
    stopped?;

    timings.step("deny", || {
        ensure_cargo_deny(root)?;
        // Not `advisories`: it clones github.com/rustsec/advisory-db, and our CI machines
        // reach only the package registries (checked: "Could not resolve host: github.com").
        // Run `cargo deny check advisories` where GitHub is reachable.
        cargo_in(root, &["deny", "check", "bans", "licenses", "sources"], &[])
    })
}

/// Runs `cargo <args>` in `root` with inherited stdio and extra environment variables.
fn cargo_in(root: &Path, args: &[&str], vars: &[(&str, String)]) -> Result<()> {
    let mut command = Command::new(cargo());
    command.current_dir(root).args(args);
    for (name, value) in vars {
        command.env(name, value);
    }
    let line = format!("cargo {}", args.join(" "));
    eprintln!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}

fn ensure_cargo_deny(root: &Path) -> Result<()> {
    let installed = Command::new(cargo())
        .current_dir(root)
        .args(["deny", "--version"])
        .output()
        .is_ok_and(|output| output.status.success());
    if installed {
        return Ok(());
    }
    eprintln!("ci: installing cargo-deny {CARGO_DENY_VERSION} into ~/.cargo/bin (once)");
    process::run_to_stderr(Command::new(cargo()).current_dir(root).args([
        "install",
        "cargo-deny",
        "--locked",
        "--version",
        CARGO_DENY_VERSION,
    ]))
}
