//! `cargo xtask bench [<name>]`: benchmarks that are programs, not timed tests (no name: all of
//! them, this table's and `bench analysis` in `bench_analysis.rs`).
//!
//! Each benchmark is a Cargo example in the crate it measures, so xtask stays free of our
//! library crates (it is built before every `cargo xtask` run) and the benchmark builds with the
//! crate's own dev-dependencies. xtask checks the tools a benchmark needs, then runs it with its
//! stdout (the results table) passed through.
//!
//! Benchmarks:
//! - `registry`: resolve and verify N signed images on a private local registry with bounded
//!   concurrency, side by side with `skopeo inspect` of the same images
//!   (`crates/attest/examples/registry_bench.rs`).

use std::path::Path;
use std::process::Command;

use crate::error::{Context as _, Result, bail};
use crate::process::{cargo, display, on_path};

pub(crate) const USAGE: &str = "\
  bench registry [--images N] [--concurrency N] [--release]
                              resolve + verify N signed images (default 100, concurrency 8) on
                              a private docker-registry, next to `skopeo inspect` of the same
";

/// One benchmark: where it lives and what it needs on `PATH`.
struct Bench {
    name: &'static str,
    package: &'static str,
    example: &'static str,
    tools: &'static [&'static str],
    /// Flags passed through to the example, each taking a value.
    flags: &'static [&'static str],
}

const BENCHES: [Bench; 1] = [Bench {
    name: "registry",
    package: "slipway-attest",
    example: "registry_bench",
    tools: &["docker-registry", "skopeo"],
    flags: &["--images", "--concurrency"],
}];

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let names: Vec<&str> = BENCHES.iter().map(|bench| bench.name).collect();
    let Some((name, rest)) = args.split_first() else {
        bail!(
            "`bench` needs a benchmark name: {}\n\nusage:\n{USAGE}",
            names.join(", ")
        );
    };
    let Some(bench) = BENCHES.iter().find(|bench| bench.name == name.as_str()) else {
        bail!(
            "unknown benchmark `{name}` (known: {})\n\nusage:\n{USAGE}",
            names.join(", ")
        );
    };
    let mut release = false;
    let mut passed = Vec::new();
    let mut iter = rest.iter();
    while let Some(arg) = iter.next() {
        if arg == "--release" {
            release = true;
        } else if bench.flags.contains(&arg.as_str()) {
            let value = iter
                .next()
                .with_context(|| format!("`{arg}` needs a value"))?;
            passed.extend([arg.clone(), value.clone()]);
        } else {
            bail!("unknown argument `{arg}` for `bench {name}`\n\nusage:\n{USAGE}");
        }
    }
    for tool in bench.tools {
        if !on_path(tool) {
            bail!(
                "`bench {name}` needs `{tool}` on PATH\n\nhint: `cargo xtask services` installs it"
            );
        }
    }
    let mut command = Command::new(cargo());
    command.current_dir(root).args([
        "run",
        "--quiet",
        "--package",
        bench.package,
        "--example",
        bench.example,
    ]);
    if release {
        command.arg("--release");
    }
    command.arg("--").args(&passed);
    let line = display(&command);
    eprintln!("$ {line}");
    let status = command
        .status()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed ({status})");
    }
    Ok(())
}
