//! Simulation: seeded canaries with known ground truth at five traffic shares, judged by the
//! example plan (`analysis.example.toml`); prints the Markdown section of SIMULATION.md.
//!
//! Run with `cargo run --release -p slipway-analysis --example simulate`
//! (`cargo xtask bench analysis` runs it, `--write` puts its output into SIMULATION.md).
//! `tests/it.rs` includes this file, regenerates the section in-process and fails when it differs
//! from the committed SIMULATION.md, so the published numbers are always this code's output.
//!
//! One canary is `count` one-minute rounds of traffic in 30-second steps, both tracks together
//! serving 4,000 requests per step, split by the traffic share. What makes it look like
//! production:
//!
//! - **per-pod differences**: 20 pods; each pod's error rate and latency differ by a fixed
//!   factor (sd 5 % and 3 %); a track's level is the mean of its pods' (a 1 % canary is one pod);
//! - **autocorrelated noise**: an AR(1) factor per track (coefficient 0.8, sd 5 % on errors, 2 %
//!   on latency);
//! - **a daily trend**: load ±10 % over 24 hours from a random time of day, moving requests and
//!   latency of both tracks together;
//! - **a slow warm-up**: the canary's first two minutes start at +50 % latency and twice the
//!   error rate, fading linearly;
//! - **sampling noise**: error counts are Poisson over the step's requests; a step's p99 has a
//!   log-normal error whose sd is 8 % at 2,000 requests and grows as 1/√requests.
//!
//! The ground truths change only the canary, from its first step: error rate +0.5 points,
//! latency +30 %, accuracy −5 points (an evaluation set of `EVAL_SET` labelled examples at 85 %),
//! and latency variance ×3 per request at the same mean. The thresholds see one measurement per
//! round (the minute's two steps); the comparison sees every step; the accuracy check scores
//! both endpoints once the rounds are over. "Aborted" is Fail, "held" Inconclusive, "promoted"
//! Pass; the intervals to abort count rounds from the canary's start (the regression's start)
//! to the round whose verdict aborted it (thresholds stop early; the comparison and the
//! accuracy check decide after the last round).

use std::fmt::Write as _;

use jiff::Timestamp;
use slipway_analysis::{
    AnalysisPlan, Decision, Measurement, MetricSamples, Outcome, Scored, compare, judge,
    judge_accuracy,
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

/// Traffic shares of the canary.
pub const SHARES: [f64; 5] = [0.01, 0.05, 0.10, 0.25, 0.50];
/// Seeds of the published table.
pub const SEEDS: std::ops::RangeInclusive<u64> = 1..=20;
/// Canaries per share, truth and seed.
pub const CANARIES: usize = 40;

const STEP_SECONDS: f64 = 30.0;
const REQUESTS_PER_STEP: f64 = 4000.0;
const ERROR_RATE: f64 = 0.005;
const P99: f64 = 0.4;
const P99_NOISE_AT_2000: f64 = 0.08;
const PODS: usize = 20;
const POD_ERROR_SD: f64 = 0.05;
const POD_LATENCY_SD: f64 = 0.03;
const AR_COEFFICIENT: f64 = 0.8;
const AR_ERROR_SD: f64 = 0.05;
const AR_LATENCY_SD: f64 = 0.02;
const DAILY_AMPLITUDE: f64 = 0.1;
const WARMUP_STEPS: usize = 4;
/// Labelled examples each endpoint answers for the accuracy check.
pub const EVAL_SET: usize = 3000;
const ACCURACY: f64 = 0.85;

/// A seeded xorshift64* generator with the few distributions the simulation needs.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(0x2545_f491_4f6c_dd1d)
            .max(1))
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

    /// Knuth's method for small means, a rounded normal above 30 (skew below 0.2).
    pub fn poisson(&mut self, mean: f64) -> f64 {
        if mean > 30.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0);
        }
        let limit = (-mean).exp();
        let mut product = self.uniform();
        let mut count = 0.0;
        while product > limit {
            product *= self.uniform();
            count += 1.0;
        }
        count
    }

    /// A rounded normal approximation (n·p·(1-p) is in the hundreds here).
    pub fn binomial(&mut self, n: usize, p: f64) -> usize {
        let mean = n as f64 * p;
        let sd = (mean * (1.0 - p)).sqrt();
        (mean + sd * self.normal()).round().clamp(0.0, n as f64) as usize
    }
}

/// The example plan, parsed from the file shipped next to this crate.
pub fn example_plan() -> AnalysisPlan {
    let text = include_str!("../analysis.example.toml");
    match toml::from_str::<AnalysisPlan>(text) {
        Ok(plan) => plan,
        Err(err) => panic!("analysis.example.toml does not parse: {err}"),
    }
}

/// One track's steps of `STEP_SECONDS`.
pub struct Track {
    /// Requests served in each step.
    pub requests: Vec<f64>,
    /// Errors among them.
    pub errors: Vec<f64>,
    /// The step's p99 latency.
    pub p99: Vec<f64>,
}

/// Seconds per simulated step.
pub const STEP: f64 = STEP_SECONDS;

/// What one canary's verdict was and when it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome1 {
    pub decision: Decision,
    /// Rounds from the canary's start to the verdict.
    pub rounds: u32,
}

/// The mean of `pods` pod factors with sd `sd`.
fn pod_level(rng: &mut Rng, pods: usize, sd: f64) -> f64 {
    (0..pods).map(|_| 1.0 + sd * rng.normal()).sum::<f64>() / pods as f64
}

/// Judges one simulated canary.
pub fn judge_one(plan: &AnalysisPlan, share: f64, truth: Truth, rng: &mut Rng) -> Outcome1 {
    let (stable, canary) = generate(2 * plan.count as usize, share, truth, rng);
    judge_tracks(plan, truth, &stable, &canary, rng)
}

/// The comparison's samples of one simulated canary: error ratio and p99 latency per step,
/// each with its requests per second as the volume.
pub fn compare_samples(stable: &Track, canary: &Track) -> [MetricSamples; 2] {
    let volume =
        |track: &Track| -> Vec<f64> { track.requests.iter().map(|n| n / STEP_SECONDS).collect() };
    let ratio = |track: &Track| -> Vec<f64> {
        track
            .errors
            .iter()
            .zip(&track.requests)
            .map(|(e, n)| e / n)
            .collect()
    };
    [
        MetricSamples {
            metric: "error-rate".to_owned(),
            canary: ratio(canary),
            baseline: ratio(stable),
            canary_volume: volume(canary),
            baseline_volume: volume(stable),
        },
        MetricSamples {
            metric: "p99-latency".to_owned(),
            canary: canary.p99.clone(),
            baseline: stable.p99.clone(),
            canary_volume: volume(canary),
            baseline_volume: volume(stable),
        },
    ]
}

/// `steps` steps of a stable and a canary track at `share` under `truth`.
pub fn generate(steps: usize, share: f64, truth: Truth, rng: &mut Rng) -> (Track, Track) {
    let canary_pods = ((share * PODS as f64).round() as usize).max(1);
    let stable_pods = PODS - canary_pods.min(PODS - 1);
    let phase = rng.uniform();
    let mut make = |canary: bool| -> Track {
        let pods = if canary { canary_pods } else { stable_pods };
        let pod_error = pod_level(rng, pods, POD_ERROR_SD);
        let pod_latency = pod_level(rng, pods, POD_LATENCY_SD);
        let innovation = (1.0 - AR_COEFFICIENT * AR_COEFFICIENT).sqrt();
        let (mut ar_error, mut ar_latency) =
            (AR_ERROR_SD * rng.normal(), AR_LATENCY_SD * rng.normal());
        let fraction = if canary { share } else { 1.0 - share };
        let mut track = Track {
            requests: Vec::with_capacity(steps),
            errors: Vec::with_capacity(steps),
            p99: Vec::with_capacity(steps),
        };
        for step in 0..steps {
            let day = phase + step as f64 * STEP_SECONDS / 86_400.0;
            let load = 1.0 + DAILY_AMPLITUDE * (2.0 * std::f64::consts::PI * day).sin();
            let requests = rng.poisson(REQUESTS_PER_STEP * fraction * load).max(1.0);
            let warm = if canary && step < WARMUP_STEPS {
                1.0 - step as f64 / WARMUP_STEPS as f64
            } else {
                0.0
            };
            let mut error_rate = ERROR_RATE * pod_error * (1.0 + ar_error) * (1.0 + warm);
            if canary && truth == Truth::ErrorRate {
                error_rate += 0.005;
            }
            let errors = rng.poisson(requests * error_rate.clamp(0.0, 1.0));
            let mut p99 = P99
                * pod_latency
                * (1.0 + ar_latency)
                * (1.0 + 0.5 * (load - 1.0))
                * (1.0 + 0.5 * warm);
            if canary && truth == Truth::Latency {
                p99 *= 1.3;
            }
            let mut sigma = P99_NOISE_AT_2000 * (2000.0 / requests).sqrt();
            if canary && truth == Truth::Variance {
                sigma *= 3f64.sqrt();
            }
            p99 *= (sigma * rng.normal() - sigma * sigma / 2.0).exp();
            track.requests.push(requests);
            track.errors.push(errors);
            track.p99.push(p99);
            ar_error = AR_COEFFICIENT * ar_error + innovation * AR_ERROR_SD * rng.normal();
            ar_latency = AR_COEFFICIENT * ar_latency + innovation * AR_LATENCY_SD * rng.normal();
        }
        track
    };
    let stable = make(false);
    let canary = make(true);
    (stable, canary)
}

/// Judges generated tracks with the plan's thresholds, comparison and accuracy check.
fn judge_tracks(
    plan: &AnalysisPlan,
    truth: Truth,
    stable: &Track,
    canary: &Track,
    rng: &mut Rng,
) -> Outcome1 {
    // Thresholds: one measurement per round over the minute's two steps; the round that
    // decides a Fail is when the canary is aborted.
    let t0 = Timestamp::UNIX_EPOCH;
    let mut measurements = Vec::new();
    for round in 0..plan.count as usize {
        let at = t0
            .checked_add(jiff::SignedDuration::from_secs(60 * round as i64))
            .unwrap_or(t0);
        let range = 2 * round..2 * round + 2;
        let requests: f64 = canary.requests[range.clone()].iter().sum();
        let errors: f64 = canary.errors[range.clone()].iter().sum();
        let p99 = range
            .clone()
            .map(|i| canary.p99[i] * canary.requests[i])
            .sum::<f64>()
            / requests;
        for (metric, value) in [("error-rate", errors / requests), ("p99-latency", p99)] {
            measurements.push(Measurement {
                metric: metric.to_owned(),
                at,
                outcome: Outcome::Value(value),
            });
        }
    }
    let thresholds = judge(plan, &measurements);
    let threshold_round = if thresholds.decision == Decision::Fail {
        // The round of the measurement that took the failing metric over its limit.
        plan.metrics
            .iter()
            .filter_map(|check| {
                let mut failed = 0;
                measurements
                    .iter()
                    .filter(|m| m.metric == check.name)
                    .position(|m| {
                        let value = match m.outcome {
                            Outcome::Value(v) => v,
                            _ => f64::NAN,
                        };
                        if check.max.is_some_and(|max| value > max)
                            || check.min.is_some_and(|min| value < min)
                        {
                            failed += 1;
                        }
                        failed > plan.failure_limit
                    })
            })
            .min()
            .map(|idx| idx as u32 + 1)
    } else {
        None
    };
    if let Some(rounds) = threshold_round {
        return Outcome1 {
            decision: Decision::Fail,
            rounds,
        };
    }

    let comparison = plan
        .compare
        .as_ref()
        .map(|compare_plan| compare(compare_plan, &compare_samples(stable, canary)).decision);

    let accuracy = plan
        .quality
        .as_ref()
        .and_then(|q| q.accuracy.as_ref().map(|a| (q, a)))
        .map(|(quality, check)| {
            let canary_accuracy = if truth == Truth::Accuracy {
                ACCURACY - 0.05
            } else {
                ACCURACY
            };
            let mut score = |p: f64| Scored {
                answered: EVAL_SET,
                correct: rng.binomial(EVAL_SET, p),
                errors: 0,
            };
            let canary_scored = score(canary_accuracy);
            let stable_scored = score(ACCURACY);
            judge_accuracy(
                check,
                quality.confidence,
                &quality.baseline,
                canary_scored,
                Some(stable_scored),
            )
            .decision
        });

    let decision = [Some(thresholds.decision), comparison, accuracy]
        .into_iter()
        .flatten()
        .max_by_key(|d| match d {
            Decision::Pass => 0,
            Decision::Inconclusive => 1,
            Decision::Fail => 2,
        })
        .unwrap_or(Decision::Inconclusive);
    Outcome1 {
        decision,
        rounds: plan.count,
    }
}

/// The simulation's scenarios as OpenMetrics history: one release per scenario with a `stable`
/// and a `canary` track, a sample every simulated step, counters of requests (by code) and a
/// latency `_sum`/`_count` pair whose per-step mean is the simulated p99. With samples one
/// step apart and `[1m]` windows at a 30 s step, each point Prometheus returns is exactly one
/// step's ratio, and its volume that step's requests per second.
pub fn openmetrics(base: i64, scenarios: &[(String, Track, Track)]) -> String {
    let step = STEP_SECONDS as i64;
    let mut out = String::new();
    out.push_str("# TYPE sim_requests counter\n");
    for (release, stable, canary) in scenarios {
        for (track, data) in [("stable", stable), ("canary", canary)] {
            for code in ["200", "500"] {
                // Counters start high so Prometheus's extrapolation never stops at zero.
                let mut total = 1_000_000.0;
                for idx in 0..=data.requests.len() {
                    if idx > 0 {
                        total += if code == "500" {
                            data.errors[idx - 1]
                        } else {
                            data.requests[idx - 1] - data.errors[idx - 1]
                        };
                    }
                    let _ = writeln!(
                        out,
                        r#"sim_requests_total{{release="{release}",track="{track}",code="{code}"}} {total} {}"#,
                        base + idx as i64 * step
                    );
                }
            }
        }
    }
    out.push_str("# TYPE sim_latency_seconds summary\n");
    for (release, stable, canary) in scenarios {
        for (track, data) in [("stable", stable), ("canary", canary)] {
            let (mut count, mut sum) = (1_000_000.0f64, 400_000.0f64);
            for idx in 0..=data.requests.len() {
                if idx > 0 {
                    count += data.requests[idx - 1];
                    sum += data.requests[idx - 1] * data.p99[idx - 1];
                }
                let labels = format!(r#"release="{release}",track="{track}""#);
                let at = base + idx as i64 * step;
                let _ = writeln!(out, "sim_latency_seconds_count{{{labels}}} {count} {at}");
                let _ = writeln!(out, "sim_latency_seconds_sum{{{labels}}} {sum:?} {at}");
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The example plan's comparison alone, with queries over the history of [`openmetrics`]
/// (`[1m]` windows at the 30 s step: each point is one simulated step), for replays.
pub fn replay_plan() -> AnalysisPlan {
    let mut plan = example_plan();
    plan.metrics = Vec::new();
    plan.quality = None;
    plan.smoke = Vec::new();
    if let Some(compare_plan) = plan.compare.as_mut() {
        let selector = r#"release="{{release}}",track="{{track}}""#;
        compare_plan.metrics[0].query = format!(
            r#"sum(rate(sim_requests_total{{{selector},code="500"}}[1m])) / sum(rate(sim_requests_total{{{selector}}}[1m]))"#
        );
        compare_plan.metrics[1].query = format!(
            "sum(rate(sim_latency_seconds_sum{{{selector}}}[1m])) / sum(rate(sim_latency_seconds_count{{{selector}}}[1m]))"
        );
        compare_plan.metrics[1].count = None;
    }
    plan
}

/// Results of one share and truth over all seeds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Per seed: (aborted, held, promoted) counts.
    pub per_seed: Vec<(usize, usize, usize)>,
    /// Rounds to abort of every aborted canary.
    pub abort_rounds: Vec<u32>,
}

impl Cell {
    /// Mean, min and max over seeds of a rate (0–1), picked by `part`.
    pub fn rate(&self, part: impl Fn(&(usize, usize, usize)) -> usize) -> (f64, f64, f64) {
        let rates: Vec<f64> = self
            .per_seed
            .iter()
            .map(|t| part(t) as f64 / (t.0 + t.1 + t.2).max(1) as f64)
            .collect();
        let mean = rates.iter().sum::<f64>() / rates.len().max(1) as f64;
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (mean, min, max)
    }

    pub fn aborted(&self) -> f64 {
        self.rate(|t| t.0).0
    }

    pub fn median_rounds(&self) -> Option<f64> {
        let mut rounds = self.abort_rounds.clone();
        if rounds.is_empty() {
            return None;
        }
        rounds.sort_unstable();
        let mid = rounds.len() / 2;
        Some(if rounds.len() % 2 == 1 {
            f64::from(rounds[mid])
        } else {
            f64::from(rounds[mid - 1] + rounds[mid]) / 2.0
        })
    }
}

/// Every share and truth, in table order.
pub fn simulate_plan(plan: &AnalysisPlan) -> Vec<(f64, Truth, Cell)> {
    simulate_truths(plan, &TRUTHS.map(|(truth, _)| truth))
}

/// Every share and the given truths, in table order.
pub fn simulate_truths(plan: &AnalysisPlan, truths: &[Truth]) -> Vec<(f64, Truth, Cell)> {
    let mut out = Vec::new();
    for (share_idx, share) in SHARES.iter().enumerate() {
        for (truth_idx, (truth, _)) in TRUTHS
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| truths.contains(t))
        {
            let mut cell = Cell::default();
            for seed in SEEDS {
                let mut rng = Rng::new(seed * 1000 + share_idx as u64 * 10 + truth_idx as u64);
                let mut tally = (0, 0, 0);
                for _ in 0..CANARIES {
                    let outcome = judge_one(plan, *share, *truth, &mut rng);
                    match outcome.decision {
                        Decision::Fail => {
                            tally.0 += 1;
                            cell.abort_rounds.push(outcome.rounds);
                        }
                        Decision::Inconclusive => tally.1 += 1,
                        Decision::Pass => tally.2 += 1,
                    }
                }
                cell.per_seed.push(tally);
            }
            out.push((*share, *truth, cell));
        }
    }
    out
}

fn percent(rate: (f64, f64, f64)) -> String {
    format!(
        "{:.1} % ({:.1}–{:.1})",
        100.0 * rate.0,
        100.0 * rate.1,
        100.0 * rate.2
    )
}

/// The results as a Markdown table.
pub fn table(results: &[(f64, Truth, Cell)]) -> String {
    let mut out = String::new();
    out.push_str(
        "| share | ground truth | aborted (fail) | held (inconclusive) | promoted (pass) | median rounds to abort |\n",
    );
    out.push_str("|---:|---|---:|---:|---:|---:|\n");
    for (share, truth, cell) in results {
        let name = TRUTHS
            .iter()
            .find(|(t, _)| t == truth)
            .map(|(_, name)| *name)
            .unwrap_or("?");
        let rounds = cell
            .median_rounds()
            .map(|r| format!("{r}"))
            .unwrap_or_else(|| "-".to_owned());
        let _ = writeln!(
            out,
            "| {} % | {name} | {} | {} | {} | {rounds} |",
            share * 100.0,
            percent(cell.rate(|t| t.0)),
            percent(cell.rate(|t| t.1)),
            percent(cell.rate(|t| t.2)),
        );
    }
    out
}

/// The targets of issue 14 that a cell misses, one line each.
pub fn misses(results: &[(f64, Truth, Cell)]) -> Vec<String> {
    results
        .iter()
        .filter_map(|(share, truth, cell)| {
            let aborted = cell.aborted();
            let target = match truth {
                Truth::Healthy => {
                    return (aborted > 0.01).then(|| {
                        format!(
                            "{} % healthy: false aborts {:.1} % > 1 %",
                            share * 100.0,
                            aborted * 100.0
                        )
                    });
                }
                Truth::ErrorRate | Truth::Latency if *share >= 0.05 => 0.99,
                Truth::ErrorRate | Truth::Latency => return None,
                Truth::Accuracy => 0.95,
                Truth::Variance => 0.90,
            };
            (aborted < target).then(|| {
                format!(
                    "{} % {truth:?}: detection {:.1} % < {:.0} %",
                    share * 100.0,
                    aborted * 100.0,
                    target * 100.0
                )
            })
        })
        .collect()
}

/// The section of SIMULATION.md this example owns.
pub fn report() -> String {
    let plan = example_plan();
    let results = simulate_plan(&plan);
    let mut out = table(&results);
    let missed = misses(&results);
    out.push('\n');
    if missed.is_empty() {
        out.push_str("Every target of issue 14 holds at every share.\n");
    } else {
        out.push_str("Targets missed with the example plan:\n\n");
        for line in missed {
            let _ = writeln!(out, "- {line}");
        }
    }
    // The evidence that meets the variance target: a longer window.
    let mut longer = plan.clone();
    longer.count = LONGER_COUNT;
    let variance = simulate_truths(&longer, &[Truth::Variance]);
    let rates: Vec<String> = variance
        .iter()
        .map(|(share, _, cell)| format!("{:.1} % at {} %", cell.aborted() * 100.0, share * 100.0))
        .collect();
    let _ = writeln!(
        out,
        "\nThe same plan with `count = {LONGER_COUNT}` ({} points per side after the warm-up) catches variance ×3 {}.",
        2 * LONGER_COUNT as usize - 4,
        rates.join(", ")
    );
    out
}

/// Rounds of the longer plan that shows the evidence the variance target needs.
pub const LONGER_COUNT: u32 = 60;

#[allow(
    dead_code,
    reason = "the test harness includes this file without calling main"
)]
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "an example prints its table, and its time on stderr"
)]
fn main() {
    let started = std::time::Instant::now();
    print!("{}", report());
    eprintln!("simulated in {:.2} s", started.elapsed().as_secs_f64());
}
