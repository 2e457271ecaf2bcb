//! `cargo xtask bench analysis`: the canary judge on two series of 100,000 samples, side by side
//! with SciPy on the same data in the same run, then the 1,000-canary simulation table.
//!
//! The Rust side is the `judge_bench` example of `slipway-analysis` (release build); it writes
//! the samples to `target/bench-analysis/` as raw f64, and `crates/analysis/benches/scipy_peer.py`
//! times SciPy on those files. SciPy runs from a virtualenv cached at `target/bench-venv`
//! (created with `python3 -m venv` and `pip install scipy numpy` on first use), so the
//! benchmark needs `python3` and, once, the package index.
//!
//! With `--write` the two generated sections of `crates/analysis/SIMULATION.md` (between the
//! `simulation:begin`/`end` and `bench:begin`/`end` markers) are replaced by this run's output;
//! the simulation section is deterministic (fixed seeds) and a test in `slipway-analysis`
//! fails when the committed one differs from a fresh run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::error::{Context as _, Result, bail};
use crate::process::{cargo, display, on_path, run_to_stderr};

pub(crate) const USAGE: &str = "\
  bench analysis [--write]    the canary judge on 2 × 100,000 samples next to SciPy on the same
                              data (venv cached in target/bench-venv), then the simulation table;
                              --write puts both into crates/analysis/SIMULATION.md
";

/// One timed statistic: seconds, statistic, p-value (as printed).
type Row = (f64, String, String);

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let write = match args {
        [] => false,
        [flag] if flag == "--write" => true,
        [arg, ..] => bail!("`bench analysis` takes only `--write`, got `{arg}`\n\nusage:\n{USAGE}"),
    };
    let python = scipy_python(root)?;
    let data = root.join("target").join("bench-analysis");
    std::fs::create_dir_all(&data)
        .with_context(|| format!("failed to create `{}`", data.display()))?;

    let mut ours = Command::new(cargo());
    ours.current_dir(root)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "slipway-analysis",
        ])
        .args(["--example", "judge_bench", "--"])
        .arg(&data);
    let ours = parse(&capture(&mut ours)?);
    let mut peer = Command::new(&python);
    peer.arg(root.join("crates/analysis/benches/scipy_peer.py"))
        .arg(&data);
    let peer = parse(&capture(&mut peer)?);

    let mut bench = String::new();
    bench.push_str(
        "| step | slipway (Rust) | SciPy | slipway statistic, p | SciPy statistic, p |\n",
    );
    bench.push_str("|---|---:|---:|---|---|\n");
    let names = [
        (
            "sort_both",
            "radix sort of both samples (part of the judge)",
        ),
        ("mannwhitneyu", "Mann-Whitney U (asymptotic)"),
        ("ks_2samp", "two-sample KS"),
        ("spread_test", "spread test (MW on absolute deviations)"),
        ("levene_median", "Brown-Forsythe (SciPy levene, median)"),
        ("hodges_lehmann", "Hodges-Lehmann + 98 % CI"),
        ("psi", "PSI, 10 bins"),
        (
            "compare_judge",
            "whole comparison of one metric (MW, HL + CI, spread, KS)",
        ),
    ];
    let cell = |row: Option<&Row>| match row {
        Some((seconds, _, _)) => format!("{:.1} ms", seconds * 1000.0),
        None => "-".to_owned(),
    };
    let numbers = |row: Option<&Row>| match row {
        Some((_, statistic, p)) => format!("{statistic}, {p}"),
        None => "no equivalent".to_owned(),
    };
    for (key, label) in names {
        bench.push_str(&format!(
            "| {label} | {} | {} | {} | {} |\n",
            cell(ours.get(key)),
            cell(peer.get(key)),
            numbers(ours.get(key)),
            numbers(peer.get(key)),
        ));
    }
    println!(
        "canary judge, 2 × 100,000 samples, best of 15 runs (SciPy: 5), same data, same run\n"
    );
    print!("{bench}");
    println!();

    let mut simulate = Command::new(cargo());
    simulate
        .current_dir(root)
        .args([
            "run",
            "--quiet",
            "--release",
            "--package",
            "slipway-analysis",
        ])
        .args(["--example", "simulate"]);
    let simulation = capture(&mut simulate)?;
    print!("{simulation}");
    if write {
        let path = root.join("crates/analysis/SIMULATION.md");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let text = replace_section(&text, "simulation", &simulation)?;
        let text = replace_section(&text, "bench", &bench)?;
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Replaces the lines between `<!-- NAME:begin ... -->` and `<!-- NAME:end -->` with `body`.
fn replace_section(text: &str, name: &str, body: &str) -> Result<String> {
    let begin_marker = format!("<!-- {name}:begin");
    let end_marker = format!("<!-- {name}:end -->");
    let (Some(begin), Some(end)) = (text.find(&begin_marker), text.find(&end_marker)) else {
        bail!("SIMULATION.md has no `{begin_marker}` … `{end_marker}` section");
    };
    let Some(line_end) = text[begin..].find('\n').map(|at| begin + at + 1) else {
        bail!("SIMULATION.md ends on the `{begin_marker}` line");
    };
    if end < line_end {
        bail!("SIMULATION.md's `{end_marker}` comes before `{begin_marker}`");
    }
    Ok(format!("{}{body}{}", &text[..line_end], &text[end..]))
}

/// A Python with SciPy: `target/bench-venv`, created and filled on first use.
fn scipy_python(root: &Path) -> Result<std::path::PathBuf> {
    let venv = root.join("target").join("bench-venv");
    let python = venv.join("bin").join("python");
    let has_scipy = |python: &Path| {
        Command::new(python)
            .args(["-c", "import scipy, numpy"])
            .status()
            .is_ok_and(|status| status.success())
    };
    if python.is_file() && has_scipy(&python) {
        return Ok(python);
    }
    if !on_path("python3") {
        bail!("`bench analysis` needs `python3` on PATH to run SciPy next to slipway");
    }
    if !python.is_file() {
        run_to_stderr(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    run_to_stderr(
        Command::new(venv.join("bin").join("pip")).args(["install", "--quiet", "scipy", "numpy"]),
    )
    .context("installing scipy and numpy into target/bench-venv")?;
    Ok(python)
}

/// Runs `command`, stderr passed through, and returns its stdout.
fn capture(command: &mut Command) -> Result<String> {
    let line = display(command);
    eprintln!("$ {line}");
    let output = command
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("failed to spawn `{line}`"))?;
    if !output.status.success() {
        bail!("`{line}` failed ({})", output.status);
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `name seconds statistic p` lines.
fn parse(text: &str) -> BTreeMap<String, Row> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?.to_owned();
            let seconds = words.next()?.parse().ok()?;
            let statistic = words.next().unwrap_or("-").to_owned();
            let p = words.next().unwrap_or("-").to_owned();
            Some((name, (seconds, statistic, p)))
        })
        .collect()
}
