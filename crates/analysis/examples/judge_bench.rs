//! Benchmark: judge two series of 100,000 samples each (canary latency +2 % against stable),
//! timing each statistic and the whole `compare` judge. Writes the samples as little-endian
//! f64 files into the directory given as the first argument, so SciPy can time itself on the
//! very same data (`scipy_peer.py`, run by `cargo xtask bench analysis`).
//!
//! Output: one line per measurement, `name seconds statistic p_value`, for xtask to tabulate.

use std::path::PathBuf;
use std::time::Instant;

use slipway_analysis::stats;
use slipway_analysis::{CompareMetric, ComparePlan, Direction, MetricSamples, compare};

const SAMPLES: usize = 100_000;

/// xorshift64* + Box-Muller, seeded: the same data every run.
fn normal_series(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
    let mut state = seed;
    let mut uniform = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let u1 = uniform().max(f64::MIN_POSITIVE);
            let u2 = uniform();
            mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        })
        .collect()
}

fn write_f64(path: &PathBuf, values: &[f64]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    if let Err(err) = std::fs::write(path, bytes) {
        panic!("failed to write `{}`: {err}", path.display());
    }
}

/// Best of `runs` timings, in seconds, and the last result.
fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut out = f();
    for _ in 0..runs {
        let started = Instant::now();
        out = f();
        best = best.min(started.elapsed().as_secs_f64());
    }
    (best, out)
}

#[allow(
    clippy::print_stdout,
    reason = "the benchmark's results are its output"
)]
fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".to_owned()));
    let canary = normal_series(11, SAMPLES, 0.408, 0.05);
    let stable = normal_series(12, SAMPLES, 0.400, 0.05);
    write_f64(&dir.join("canary.f64"), &canary);
    write_f64(&dir.join("stable.f64"), &stable);

    let runs = 15;
    let (seconds, _) = time(runs, || {
        (
            stats::sorted_for_bench(&canary),
            stats::sorted_for_bench(&stable),
        )
    });
    println!("sort_both {seconds} - -");
    let (seconds, mw) = time(runs, || stats::mann_whitney_u(&canary, &stable));
    let mw = mw.expect("valid samples");
    println!("mannwhitneyu {seconds} {} {:e}", mw.u, mw.p_value);
    let (seconds, ks) = time(runs, || stats::ks_2samp(&canary, &stable));
    let ks = ks.expect("valid samples");
    println!("ks_2samp {seconds} {} {:e}", ks.statistic, ks.p_value);
    let (seconds, spread) = time(runs, || stats::spread_test(&canary, &stable));
    let (spread, ratio) = spread.expect("valid samples");
    println!("spread_test {seconds} {ratio} {}", spread.p_value);
    let (seconds, hl) = time(runs, || stats::hodges_lehmann(&canary, &stable, 0.98));
    let hl = hl.expect("valid samples");
    println!(
        "hodges_lehmann {seconds} {} {}..{}",
        hl.estimate, hl.lower, hl.upper
    );
    let (seconds, psi) = time(runs, || stats::psi(&stable, &canary, 10));
    println!("psi {seconds} {} -", psi.expect("valid samples"));

    let plan = ComparePlan {
        metrics: vec![CompareMetric {
            name: "latency".to_owned(),
            query: "q".to_owned(),
            direction: Direction::Increase,
            critical: true,
            weight: 1.0,
            count: None,
            model: slipway_analysis::CountModel::Auto,
        }],
        ..ComparePlan::default()
    };
    let samples = [MetricSamples {
        metric: "latency".to_owned(),
        canary: canary.clone(),
        baseline: stable.clone(),
        ..MetricSamples::default()
    }];
    let (seconds, result) = time(runs, || compare(&plan, &samples));
    println!(
        "compare_judge {seconds} {} {:?}",
        result.score.unwrap_or(f64::NAN),
        result.decision
    );
}
