//! `cargo xtask`: Slipway's developer tasks, written in Rust so they run the same everywhere.
//!
//! Commands: `ci` (the whole gate CI runs), `image` (the container image), `services` (real local registry, Prometheus and
//! MLflow on loopback for the end-to-end tests), `demo` (the whole release story, or one scenario) and
//! `bench` (benchmarks that are programs, not timed tests).
//! Workspace hygiene checks are `#[test]`s in `tidy.rs`, so plain `cargo test --workspace`
//! enforces them without a separate command.
//!
//! We parse arguments by hand instead of using clap: there are three commands with a couple
//! of flags each, and every dependency here is compiled before any `cargo xtask` can run.

// xtask is a CLI for developers: printing is its job. Data (the `export` lines of
// `services`) goes to stdout, progress and errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod bench_analysis;
mod bench_audit;
mod ci;
mod demo;
mod e2e;
mod error;
mod image;
mod man;
mod process;
mod services;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::{Context as _, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci                          fmt, clippy, services + tests, cargo deny (what CI runs)
  services [start|stop|env]   real local registry, Prometheus and MLflow (default: start);
                              start/env print `export SLIPWAY_TEST_*=...` lines on stdout
  demo                        the whole story: v2 promoted, v3 aborted, v2 rolled back, audit,
                              then a release paused by one process and promoted by the next
  demo --scenario NAME        run one slipway-deploy scenario (`run --demo NAME`)
  demo --list                 list the scenarios slipway-deploy knows
  e2e --kubeconfig PATH [--context NAME]
                              k8s-rollout scenarios against a real cluster (kind, k3s)
  man [DIR]                   man pages of the three binaries, one per command (default target/man)
  image [--release] [--bin-dir DIR] [--tag NAME] [--push REF] [--storage DIR]
                              the container image of the three binaries (buildah, from
                              scratch); prints its name, or with --push `REF@sha256:...`
  bench                       every benchmark below
  bench registry [--images N] [--concurrency N] [--release]
                              Slipway resolve + verify of N signed images next to `skopeo inspect`
  bench analysis              the canary judge on 2 x 100,000 samples next to SciPy, and the
                              simulation table
  bench audit [--entries N]   `slipway-audit verify` streaming a 1,000,000-entry trail next to
                              `sha256sum` of the same file: time, peak memory, throughput ratio
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode> {
    let root = workspace_root()?;
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest),
        None => {
            eprint!("{USAGE}");
            return Ok(ExitCode::from(2));
        }
    };
    match command {
        "ci" => {
            no_more_args("ci", rest)?;
            ci::run(&root)?;
            Ok(ExitCode::SUCCESS)
        }
        "services" => {
            let sub = match rest {
                [] => "start",
                [sub] => sub.as_str(),
                _ => bail!("`services` takes at most one argument\n\n{USAGE}"),
            };
            match sub {
                "start" => {
                    let env = services::start(&root)?;
                    print!("{}", env.export_lines());
                }
                "stop" => services::stop(&root)?,
                "env" => print!("{}", services::env(&root)?.export_lines()),
                other => bail!("unknown `services` subcommand `{other}`\n\n{USAGE}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        // demo's own errors exit 2, like the binary's: 1 must only ever mean "said no".
        "demo" => Ok(demo::Args::parse(rest)
            .and_then(|args| demo::run(&root, &args))
            .unwrap_or_else(|err| {
                eprintln!("error: {err}");
                ExitCode::from(2)
            })),
        "image" => {
            print!("{}", image::run(&root, &image::Args::parse(rest)?)?);
            Ok(ExitCode::SUCCESS)
        }
        "e2e" => {
            e2e::run(&root, &e2e::Args::parse(rest)?)?;
            Ok(ExitCode::SUCCESS)
        }
        "bench" if rest.first().is_some_and(|name| name == "audit") => {
            bench_audit::run(&root, &rest[1..])?;
            Ok(ExitCode::SUCCESS)
        }
        "bench" if rest.first().is_some_and(|name| name == "analysis") => {
            bench_analysis::run(&root, &rest[1..])?;
            Ok(ExitCode::SUCCESS)
        }
        // `cargo xtask bench` alone runs every benchmark, each next to its peer.
        "bench" if rest.is_empty() => {
            bench::run(&root, &["registry".to_owned()])?;
            bench_analysis::run(&root, &[])?;
            bench_audit::run(&root, &[])?;
            Ok(ExitCode::SUCCESS)
        }
        "bench" => {
            bench::run(&root, rest)?;
            Ok(ExitCode::SUCCESS)
        }
        "man" => {
            let pages = man::run(&root, rest)?;
            for page in &pages {
                println!("{}", page.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}

fn no_more_args(command: &str, rest: &[String]) -> Result<()> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => bail!("`{command}` takes no arguments, got `{arg}`\n\n{USAGE}"),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
///
/// Compiled in rather than read from the environment so the binary also works when run
/// directly from `target/`, not only through `cargo xtask`.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(PathBuf::from)
        .with_context(|| format!("`{}` has no parent directory", manifest_dir.display()))
}
