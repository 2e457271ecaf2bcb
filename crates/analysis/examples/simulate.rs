//! Simulation: 1,000 canaries with known ground truth judged by the example plan
//! (`analysis.example.toml`), reporting detection and false-abort rates as a Markdown table.
//!
//! Run with `cargo run --release -p slipway-analysis --example simulate [-- CANARIES SEED]`
//! (`cargo xtask bench analysis` runs it). `tests/it.rs` runs the same code and asserts bounds.
//!
//! Each canary is 20 minutes of traffic in 30-second steps for a stable and a canary track:
//! 2,000 requests per step with 0.5 % errors (Poisson counts), a per-step p99 latency of
//! 0.4 s with 8 % noise, and an evaluation set of 1,000 labelled examples at 85 % accuracy.
//! Ground truth classes change only the canary: error rate +0.5 points, latency +30 %,
//! accuracy −5 points, or latency variance ×3 with the same mean. The plan's thresholds see
//! five 1-minute measurements; the comparison sees the 41 steps of both tracks; the accuracy
//! check scores both endpoints. Everything is seeded (xorshift64*), so the table is reproducible.

use std::fmt::Write as _;

use jiff::Timestamp;
use slipway_analysis::{
    AccuracyCheck, AnalysisPlan, Decision, Measurement, MetricSamples, Outcome, Scored, compare,
    judge, judge_accuracy,
};

/// The ground truth of a simulated canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    Healthy,
    ErrorRate,
    Latency,
    Accuracy,
    Variance,
}

pub const TRUTHS: [(Truth, &str); 5] = [
    (Truth::Healthy, "healthy"),
    (Truth::ErrorRate, "error rate +0.5 points"),
    (Truth::Latency, "latency +30 %"),
    (Truth::Accuracy, "accuracy −5 points"),
    (Truth::Variance, "latency variance ×3, same mean"),
];

/// Counts per ground truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub canaries: usize,
    pub fail: usize,
    pub inconclusive: usize,
    pub pass: usize,
}

/// A seeded xorshift64* generator with the few distributions the simulation needs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (bits >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Knuth's method; fine for the small means used here.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let mut product = self.uniform();
        let mut count = 0;
        while product > limit {
            product *= self.uniform();
            count += 1;
        }
        count
    }

    pub fn binomial(&mut self, n: usize, p: f64) -> usize {
        (0..n).filter(|_| self.uniform() < p).count()
    }
}

const STEPS: usize = 41;
const REQUESTS: f64 = 2000.0;
const ERROR_RATE: f64 = 0.005;
const P99: f64 = 0.4;
const P99_NOISE: f64 = 0.08;
const EVAL_SET: usize = 1000;
const ACCURACY: f64 = 0.85;

/// One track's 41 steps: (error ratio, p99 latency) per 30 s.
fn track(rng: &mut Rng, error_rate: f64, p99: f64, noise: f64) -> Vec<(f64, f64)> {
    (0..STEPS)
        .map(|_| {
            let errors = rng.poisson(REQUESTS * error_rate) as f64;
            let latency = p99 * (1.0 + noise * rng.normal());
            (errors / REQUESTS, latency)
        })
        .collect()
}

/// The example plan, parsed from the file shipped next to this crate.
pub fn example_plan() -> AnalysisPlan {
    let text = include_str!("../analysis.example.toml");
    match toml::from_str::<AnalysisPlan>(text) {
        Ok(plan) => plan,
        Err(err) => panic!("analysis.example.toml does not parse: {err}"),
    }
}

/// Judges one simulated canary with the plan's thresholds, comparison and accuracy check.
pub fn judge_one(plan: &AnalysisPlan, truth: Truth, rng: &mut Rng) -> Decision {
    let canary_error = if truth == Truth::ErrorRate {
        ERROR_RATE + 0.005
    } else {
        ERROR_RATE
    };
    let canary_p99 = if truth == Truth::Latency {
        P99 * 1.3
    } else {
        P99
    };
    let canary_noise = if truth == Truth::Variance {
        P99_NOISE * 3f64.sqrt()
    } else {
        P99_NOISE
    };
    let canary_accuracy = if truth == Truth::Accuracy {
        ACCURACY - 0.05
    } else {
        ACCURACY
    };
    let stable = track(rng, ERROR_RATE, P99, P99_NOISE);
    let canary = track(rng, canary_error, canary_p99, canary_noise);

    // Thresholds: five measurements, each over the two 30 s steps of the minute before it.
    let t0 = Timestamp::UNIX_EPOCH;
    let mut measurements = Vec::new();
    for round in 0..plan.count as usize {
        let steps = &canary[2 * round..2 * round + 2];
        let at = t0
            .checked_add(jiff::SignedDuration::from_secs(60 * round as i64))
            .unwrap_or(t0);
        let error = steps.iter().map(|s| s.0).sum::<f64>() / 2.0;
        let p99 = steps.iter().map(|s| s.1).fold(f64::MIN, f64::max);
        for (metric, value) in [("error-rate", error), ("p99-latency", p99)] {
            measurements.push(Measurement {
                metric: metric.to_owned(),
                at,
                outcome: Outcome::Value(value),
            });
        }
    }
    let thresholds = judge(plan, &measurements).decision;

    let comparison = plan.compare.as_ref().map(|compare_plan| {
        let column = |rows: &[(f64, f64)], latency: bool| -> Vec<f64> {
            rows.iter()
                .map(|r| if latency { r.1 } else { r.0 })
                .collect()
        };
        let samples = [
            MetricSamples {
                metric: "error-rate".to_owned(),
                canary: column(&canary, false),
                baseline: column(&stable, false),
            },
            MetricSamples {
                metric: "p99-latency".to_owned(),
                canary: column(&canary, true),
                baseline: column(&stable, true),
            },
        ];
        compare(compare_plan, &samples).decision
    });

    let accuracy = plan
        .quality
        .as_ref()
        .and_then(|q| q.accuracy.as_ref().map(|a| (q, a)))
        .map(|(quality, check): (_, &AccuracyCheck)| {
            let score = |rng: &mut Rng, p: f64| Scored {
                answered: EVAL_SET,
                correct: rng.binomial(EVAL_SET, p),
                errors: 0,
            };
            let canary_scored = score(rng, canary_accuracy);
            let stable_scored = score(rng, ACCURACY);
            judge_accuracy(
                check,
                quality.confidence,
                &quality.baseline,
                canary_scored,
                Some(stable_scored),
            )
            .decision
        });

    [Some(thresholds), comparison, accuracy]
        .into_iter()
        .flatten()
        .max_by_key(|d| match d {
            Decision::Pass => 0,
            Decision::Inconclusive => 1,
            Decision::Fail => 2,
        })
        .unwrap_or(Decision::Inconclusive)
}

/// Simulates `canaries` canaries, spread evenly over the five ground truths, with the example
/// plan.
pub fn simulate(canaries: usize, seed: u64) -> Vec<(Truth, Tally)> {
    simulate_plan(&example_plan(), canaries, seed)
}

/// The example plan with the spread test off: Kayenta's location-only judgement.
pub fn without_spread_test() -> AnalysisPlan {
    let mut plan = example_plan();
    if let Some(compare) = plan.compare.as_mut() {
        compare.max_spread_ratio = 0.0;
    }
    plan
}

/// Simulates `canaries` canaries with `plan`.
pub fn simulate_plan(plan: &AnalysisPlan, canaries: usize, seed: u64) -> Vec<(Truth, Tally)> {
    let plan = plan.clone();
    let mut rng = Rng::new(seed);
    let per_truth = canaries / TRUTHS.len();
    TRUTHS
        .iter()
        .map(|(truth, _)| {
            let mut tally = Tally::default();
            for _ in 0..per_truth {
                tally.canaries += 1;
                match judge_one(&plan, *truth, &mut rng) {
                    Decision::Fail => tally.fail += 1,
                    Decision::Inconclusive => tally.inconclusive += 1,
                    Decision::Pass => tally.pass += 1,
                }
            }
            (*truth, tally)
        })
        .collect()
}

fn percent(part: usize, whole: usize) -> String {
    format!("{:.1} %", 100.0 * part as f64 / whole.max(1) as f64)
}

/// The results as a Markdown table.
pub fn table(results: &[(Truth, Tally)]) -> String {
    let mut out = String::new();
    out.push_str(
        "| ground truth | canaries | aborted (fail) | held (inconclusive) | promoted (pass) | |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---|\n");
    for (truth, tally) in results {
        let name = TRUTHS
            .iter()
            .find(|(t, _)| t == truth)
            .map(|(_, name)| *name)
            .unwrap_or("?");
        let rate = if *truth == Truth::Healthy {
            format!("false-abort rate {}", percent(tally.fail, tally.canaries))
        } else {
            format!("detection rate {}", percent(tally.fail, tally.canaries))
        };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {rate} |",
            tally.canaries,
            percent(tally.fail, tally.canaries),
            percent(tally.inconclusive, tally.canaries),
            percent(tally.pass, tally.canaries),
        );
    }
    out
}

#[allow(
    dead_code,
    reason = "the test harness includes this file without calling main"
)]
#[allow(clippy::print_stdout, reason = "an example prints its table")]
fn main() {
    let mut args = std::env::args().skip(1);
    let canaries = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let started = std::time::Instant::now();
    let results = simulate(canaries, seed);
    let elapsed = started.elapsed().as_secs_f64();
    println!("Example plan (crates/analysis/analysis.example.toml):\n");
    print!("{}", table(&results));
    println!("\nThe same plan without the spread test (Kayenta's location-only judge):\n");
    print!(
        "{}",
        table(&simulate_plan(&without_spread_test(), canaries, seed))
    );
    println!("\n{canaries} canaries (seed {seed}) judged in {elapsed:.2} s");
}
