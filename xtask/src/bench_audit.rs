//! `cargo xtask bench audit`: verify a one-million-entry trail file (about 440 MB) by
//! streaming it, side by side with `sha256sum` on the same file in the same run, and check the
//! bounds issue 12 sets: at most 64 MiB of memory and at least half of `sha256sum`'s throughput.
//!
//! The Rust side is the `audit_bench` example of `slipway-audit-log` (release build): its
//! `generate` writes the trail into `target/bench-audit/` (about a second), its `verify` runs
//! the same streaming read and chain check as `slipway-audit verify --trail` and reports its
//! own peak RSS (`VmHWM`). Both sides are timed here as whole processes, best of three, after
//! one untimed `sha256sum` has put the file in the page cache.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::error::{Context as _, Result, bail};
use crate::process::{cargo, display, on_path, run_to_stderr};

pub(crate) const USAGE: &str = "\
  bench audit [--entries N]   `slipway-audit verify` streaming a 1,000,000-entry trail next to
                              `sha256sum` of the same file: time, peak memory, throughput ratio
";

/// The memory bound: 64 MiB.
const MAX_PEAK_KIB: u64 = 64 * 1024;
/// The throughput bound: at least half of `sha256sum`'s.
const MIN_RATIO: f64 = 0.5;
const RUNS: usize = 3;

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let entries = match args {
        [] => 1_000_000_u64,
        [flag, value] if flag == "--entries" => value
            .parse()
            .with_context(|| format!("`--entries {value}` is not a number"))?,
        _ => bail!("unknown arguments for `bench audit`\n\nusage:\n{USAGE}"),
    };
    if !on_path("sha256sum") {
        bail!("`bench audit` needs `sha256sum` on PATH (GNU coreutils)");
    }
    run_to_stderr(Command::new(cargo()).current_dir(root).args([
        "build",
        "--quiet",
        "--release",
        "--package",
        "slipway-audit-log",
        "--example",
        "audit_bench",
    ]))?;
    let bench = root.join("target/release/examples/audit_bench");
    let dir = root.join("target").join("bench-audit");
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let trail = dir.join("trail.jsonl");
    let generated = Instant::now();
    run_to_stderr(
        Command::new(&bench)
            .arg("generate")
            .arg(&trail)
            .arg(entries.to_string()),
    )?;
    let generated = generated.elapsed();

    let mut sha = Command::new("sha256sum");
    sha.arg(&trail);
    // Untimed: reads the file into the page cache, so neither side pays for the disk.
    timed(&mut sha)?;
    let mut verify = Command::new(&bench);
    verify.arg("verify").arg(&trail);
    let mut sha_best = Duration::MAX;
    let mut ours_best = Duration::MAX;
    let mut report = BTreeMap::new();
    for _ in 0..RUNS {
        let (elapsed, _) = timed(&mut sha)?;
        sha_best = sha_best.min(elapsed);
        let (elapsed, stdout) = timed(&mut verify)?;
        ours_best = ours_best.min(elapsed);
        report = parse(&stdout);
    }
    let number = |key: &str| report.get(key).copied().unwrap_or(0);
    let bytes = number("bytes");
    let peak_kib = number("peak_rss_kib");
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let throughput = |elapsed: Duration| mib(bytes) / elapsed.as_secs_f64();
    // Throughput ratio = time ratio: same file on both sides.
    let ratio = sha_best.as_secs_f64() / ours_best.as_secs_f64();

    println!(
        "audit trail verify: {} entries, {:.0} MiB (generated in {:.1} s), best of {RUNS} runs, same file, same run\n",
        number("entries"),
        mib(bytes),
        generated.as_secs_f64()
    );
    println!("| | time | throughput | peak memory |");
    println!("|---|---:|---:|---:|");
    println!(
        "| slipway verify, streaming (audit_bench) | {:.2} s | {:.0} MiB/s | {:.1} MiB |",
        ours_best.as_secs_f64(),
        throughput(ours_best),
        peak_kib as f64 / 1024.0
    );
    println!(
        "| sha256sum | {:.2} s | {:.0} MiB/s | - |",
        sha_best.as_secs_f64(),
        throughput(sha_best)
    );
    println!(
        "\nthroughput ratio (slipway / sha256sum): {ratio:.2} (bound: at least {MIN_RATIO}); peak memory {:.1} MiB (bound: at most {} MiB); chain problems: {}",
        peak_kib as f64 / 1024.0,
        MAX_PEAK_KIB / 1024,
        number("problems")
    );
    if number("problems") != 0 || number("entries") != entries {
        bail!("the generated trail did not verify: {report:?}");
    }
    if peak_kib == 0 || peak_kib > MAX_PEAK_KIB {
        bail!(
            "peak memory {peak_kib} KiB is over the {MAX_PEAK_KIB} KiB bound (or was not measured)"
        );
    }
    if ratio < MIN_RATIO {
        bail!("verify runs at {ratio:.2} of sha256sum's throughput, under the {MIN_RATIO} bound");
    }
    Ok(())
}

/// Runs `command` to completion, timed, and returns its stdout.
fn timed(command: &mut Command) -> Result<(Duration, String)> {
    let line = display(command);
    eprintln!("$ {line}");
    let started = Instant::now();
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    Ok((
        elapsed,
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ))
}

/// `name value` lines.
fn parse(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(' ')?;
            // `seconds` is fractional; xtask times the process itself.
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}
