//! The statistical judge: canary against baseline, per metric, as Kayenta's Mann-Whitney
//! classifier does, plus the two things Kayenta misses.
//!
//! For each metric, [`compare`] takes the canary's and the baseline's samples (a metric's
//! values over the analysis window, one per step) and classifies it:
//!
//! 1. Too few samples on either side (`min_samples`, default 10) → [`Classification::TooFewSamples`],
//!    said in so many words, instead of a confident answer from three points. Kayenta judges
//!    whatever it gets.
//! 2. The Hodges-Lehmann shift `canary - baseline` and its confidence interval (default 0.98)
//!    are compared with a tolerance band of `±tolerance·|estimate|` (default 0.25): an interval
//!    entirely above the band is [`Classification::High`], entirely below it
//!    [`Classification::Low`]. Whether High or Low is bad depends on the metric's
//!    [`Direction`].
//! 3. A spread test (Mann-Whitney U on absolute deviations from each side's median) catches a
//!    canary whose values scatter more with the same median — e.g. three times the variance —
//!    which a location test cannot see: [`Classification::Spread`] when significant at the same
//!    confidence and the canary's median absolute deviation exceeds the baseline's by more than
//!    `max_spread_ratio` (default 1.3).
//!
//! Those rank tests treat every point as equally informative. A point is usually a ratio over
//! the requests of one step, and a canary with a small traffic share has few requests behind
//! each point: its points scatter more for no other reason, and the spread test used to fail
//! healthy small canaries. So a metric that has a **volume** is judged on its counts instead.
//!
//! ## Judging on counts
//!
//! A compared metric has a volume when it names a `count` query (e.g. requests per second) or
//! its query is a ratio `A / B` of counter rates, whose denominator `B` is then the count
//! ([`CompareMetric::count_query`]). Each point `x_i` comes with its volume `n_i`; the side's
//! volume is `N = Σ n_i · step` (units over the window, each counted once however the rate
//! windows overlap) and its level the volume-weighted mean `m = Σ n_i x_i / Σ n_i`. The model
//! ([`CountModel`]) is a **proportion** (errors among requests: a ratio of two rates of the same
//! counter) or a **mean** (latency sum over count, a quantile over requests). The assumptions:
//!
//! - a point's variance is a variance per unit divided by its volume, `V / n_i`: binomial
//!   `p(1 - p)` times an overdispersion `φ ≥ 1` for a proportion (quasi-binomial: Wedderburn
//!   1974; McCullagh and Nelder 1989, §4.5), the per-request variance for a mean;
//! - under "no regression" the canary and the baseline have the same variance per unit, and
//!   the baseline, which has the most volume, estimates it: the Newey-West (1987) variance of
//!   its weighted mean (Bartlett kernel, `⌈k^{1/3}⌉` lags, so autocorrelated noise and overlapping
//!   rate windows count) times `N_b`; for a proportion floored at the binomial `p̄(1 - p̄)` (pooled
//!   `p̄`), which makes `φ` the baseline's dispersion over what its counts predict. Excess
//!   variation that grows with volume makes this conservative for a smaller canary;
//! - **location**: `z = (m_c - m_b) / sqrt(V (1/N_c + 1/N_b))`, for a proportion on Anscombe's
//!   (1948) square-root scale, `sqrt((m N + 3/8)/N)` with variance `φ/(4N)`, because a canary with
//!   a few dozen errors is too skewed for a normal test on the ratio. One-sided in the bad
//!   direction at `1 - confidence`, and the difference must exceed `min_effect` of the
//!   baseline's level: pods differ a little (a 1 % canary is one pod), which is bias, not noise,
//!   and no count test can tell it from a regression;
//! - **dispersion**: each side's variance per unit `Σ n_i (x_i - m)² / (k - 1)` (the Pearson
//!   statistic over `k - 1`; on the log scale for a positive mean, whose noise is
//!   multiplicative), compared as a ratio whose logarithm is about normal with variance
//!   `Σ (κ - 1)·B/(k - 1)` over both sides (Layard 1973): `κ` the residuals' kurtosis, at least
//!   3, and for a proportion at least `3 + 1/events` (the Pearson statistic's small-count term);
//!   `B = 1 + 2 Σ ρ_h²` Bartlett's (1946) factor for autocorrelated residuals. The ratio does not
//!   depend on the traffic share, because both sides are scaled by their own counts. A ratio of
//!   standard deviations above `max_spread_ratio`, significant at `1 - confidence`, is
//!   [`Classification::Spread`];
//! - the first `warmup` of the window is left out on both sides, and a point without a
//!   positive volume is dropped; at least `min_samples` points per side are required.
//!
//! `crates/analysis/SIMULATION.md` measures the result against known truths at traffic shares
//! from 1 % to 50 %, with per-pod differences, autocorrelated noise, a daily trend and a slow
//! warm-up, and says which evidence (points per side) each target needs.
//!
//! References: F. J. Anscombe, "The transformation of Poisson, binomial and negative-binomial
//! data", Biometrika 35 (1948); M. S. Bartlett, "On the theoretical specification and sampling
//! properties of autocorrelated time-series", JRSS Suppl. 8 (1946); M. W. J. Layard, "Robust
//! large-sample tests for homogeneity of variances", JASA 68 (1973); P. McCullagh and
//! J. A. Nelder, *Generalized Linear Models*, 2nd ed. (1989); W. K. Newey and K. D. West, "A
//! simple, positive semi-definite, heteroskedasticity and autocorrelation consistent covariance
//! matrix", Econometrica 55 (1987); R. W. M. Wedderburn, "Quasi-likelihood functions,
//! generalized linear models, and the Gauss-Newton method", Biometrika 61 (1974).
//!
//! The score is the weight of passing metrics over the weight of judged metrics, 0–100.
//! A critical metric that fails fails the comparison outright (score 0), as in Kayenta. Otherwise
//! score ≥ `pass_score` (90) passes, below `marginal_score` (75) fails, in between is marginal and
//! Inconclusive: a person decides. A metric with too few samples is left out of the score and
//! keeps the comparison from passing.

use std::time::Duration;

use crate::judge::{Decision, format_value};
use crate::stats::{self, HodgesLehmann, KolmogorovSmirnov, MannWhitney};

/// Which change of a metric is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is worse (latency, error rate).
    Increase,
    /// Lower is worse (throughput, accuracy).
    Decrease,
    /// Any significant change is bad.
    #[default]
    Either,
}

/// One metric to compare between canary and baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareMetric {
    /// Unique name within the comparison, used in reports.
    pub name: String,
    /// Query template, rendered once with `{{track}}` = the canary track and once with the
    /// baseline track; its values over the window (one per `step`) are the samples. Must yield
    /// one series.
    pub query: String,
    /// Which change is bad.
    #[serde(default)]
    pub direction: Direction,
    /// A failing critical metric fails the whole comparison, whatever the score.
    #[serde(default)]
    pub critical: bool,
    /// Weight in the score.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Query template for the volume behind each point (e.g. requests per second), rendered
    /// per track like `query`. When absent and `query` is a ratio `A / B` of counter rates, `B`
    /// is used (see [`CompareMetric::count_query`]). With a volume the metric is judged on its
    /// counts (see the module docs); without one, by ranks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<String>,
    /// How the value relates to its volume; `auto` by default.
    #[serde(default, skip_serializing_if = "is_auto")]
    pub model: CountModel,
}

fn is_auto(model: &CountModel) -> bool {
    *model == CountModel::Auto
}

/// How a metric's value relates to the volume behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountModel {
    /// `proportion` when the query is a ratio of two rates of the same counter (errors among
    /// requests), else `mean`.
    #[default]
    Auto,
    /// Events among trials (errors / requests): binomial, with overdispersion.
    Proportion,
    /// An average over the volume's units (latency sum / count, a quantile over requests).
    Mean,
}

impl CompareMetric {
    /// The volume query: `count`, or the denominator `B` of a query `A / B` whose `B` is a
    /// rate or increase of a counter (the one `/` outside parentheses). `None`: no volume.
    pub fn count_query(&self) -> Option<String> {
        if let Some(count) = &self.count {
            return Some(count.clone());
        }
        ratio_parts(&self.query).map(|(_, denominator)| denominator.to_owned())
    }

    /// The model in force: `auto` resolved. `None` when the metric has no volume.
    pub fn count_model(&self) -> Option<CountModel> {
        self.count_query()?;
        Some(match self.model {
            CountModel::Auto => match ratio_parts(&self.query) {
                Some((numerator, denominator))
                    if counter_name(numerator).is_some()
                        && counter_name(numerator) == counter_name(denominator) =>
                {
                    CountModel::Proportion
                }
                _ => CountModel::Mean,
            },
            model => model,
        })
    }
}

/// `A` and `B` of a query `A / B` with exactly one `/` outside parentheses, brackets and
/// quotes, where `B` takes a `rate(` or `increase(` of a counter.
fn ratio_parts(query: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut split = None;
    for (idx, ch) in query.char_indices() {
        match (quote, ch) {
            (Some(open), c) if c == open => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'' | '`') => quote = Some(ch),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, '/') if depth == 0 => {
                if split.is_some() {
                    return None;
                }
                split = Some(idx);
            }
            _ => {}
        }
    }
    let idx = split?;
    let (numerator, denominator) = (query[..idx].trim(), query[idx + 1..].trim());
    let counter = denominator.contains("rate(") || denominator.contains("increase(");
    (counter && !numerator.is_empty()).then_some((numerator, denominator))
}

/// The metric name inside the first `rate(`/`increase(` of `side`.
fn counter_name(side: &str) -> Option<&str> {
    let start = ["rate(", "increase("]
        .iter()
        .filter_map(|f| side.find(f).map(|at| at + f.len()))
        .min()?;
    let rest = side[start..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(rest.len());
    (end > 0).then_some(&rest[..end])
}

fn default_weight() -> f64 {
    1.0
}

/// A Kayenta-style comparison of the canary with a baseline track: the `[compare]` section of an
/// analysis plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComparePlan {
    /// The track the canary is compared with; `"deployment"` ([`BASELINE_DEPLOYMENT`]) asks for
    /// an equal-size baseline Deployment of stable's version run next to the canary, whose pods
    /// carry the track [`BASELINE_DEPLOYMENT_TRACK`] (Kayenta's recommendation).
    pub baseline: String,
    /// Confidence of the Hodges-Lehmann interval and the spread test.
    pub confidence: f64,
    /// Half-width of the "no meaningful change" band, as a fraction of `|estimate|`.
    pub tolerance: f64,
    /// Score (0–100) at or above which the comparison passes.
    pub pass_score: f64,
    /// Score below which it fails; in between it is marginal (Inconclusive).
    pub marginal_score: f64,
    /// Samples required on each side before a metric is judged.
    pub min_samples: usize,
    /// Canary-to-baseline ratio of median absolute deviations above which a significant spread
    /// difference fails the metric. `0` turns the spread test off.
    pub max_spread_ratio: f64,
    /// Time between samples in the window (the range query's step).
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub step: Duration,
    /// The first part of the window left out of the comparison, on both sides: a new pod's
    /// warm-up (cold caches, JIT) is not the release's steady state.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub warmup: Duration,
    /// For metrics judged on counts: a change smaller than this fraction of the baseline's
    /// level never fails, however significant (pods differ a little; huge volumes make any
    /// difference significant).
    pub min_effect: f64,
    /// The metrics.
    pub metrics: Vec<CompareMetric>,
}

impl Default for ComparePlan {
    fn default() -> ComparePlan {
        ComparePlan {
            baseline: "stable".to_owned(),
            confidence: 0.98,
            tolerance: 0.25,
            pass_score: 90.0,
            marginal_score: 75.0,
            min_samples: 10,
            max_spread_ratio: 1.3,
            step: Duration::from_secs(15),
            warmup: Duration::ZERO,
            min_effect: 0.1,
            metrics: Vec::new(),
        }
    }
}

/// The `compare.baseline` value that asks for an equal-size baseline Deployment.
pub const BASELINE_DEPLOYMENT: &str = "deployment";
/// The track of the baseline Deployment's pods.
pub const BASELINE_DEPLOYMENT_TRACK: &str = "baseline";

impl ComparePlan {
    /// Whether the plan asks for an equal-size baseline Deployment next to the canary.
    pub fn wants_baseline_deployment(&self) -> bool {
        self.baseline == BASELINE_DEPLOYMENT
    }

    /// The track whose series are the baseline's: [`BASELINE_DEPLOYMENT_TRACK`] for
    /// `baseline = "deployment"`, else `baseline` itself.
    pub fn baseline_track(&self) -> &str {
        if self.wants_baseline_deployment() {
            BASELINE_DEPLOYMENT_TRACK
        } else {
            &self.baseline
        }
    }

    /// Problems with the settings, one line each (checked by [`crate::AnalysisPlan::validate`]).
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            problems.push(format!(
                "`compare.confidence` {} must be between 0.5 and 1 (exclusive)",
                self.confidence
            ));
        }
        if !(self.tolerance >= 0.0 && self.tolerance.is_finite()) {
            problems.push(format!(
                "`compare.tolerance` {} must be 0 or more",
                self.tolerance
            ));
        }
        let score_ok = |s: f64| (0.0..=100.0).contains(&s);
        if !score_ok(self.pass_score)
            || !score_ok(self.marginal_score)
            || self.marginal_score > self.pass_score
        {
            problems.push(format!(
                "`compare.marginal_score` {} and `compare.pass_score` {} must satisfy 0 <= marginal <= pass <= 100",
                self.marginal_score, self.pass_score
            ));
        }
        if self.min_samples < 3 {
            problems.push(format!(
                "`compare.min_samples` {} is below 3; no test means anything with fewer",
                self.min_samples
            ));
        }
        if self.max_spread_ratio.is_nan() || self.max_spread_ratio < 0.0 {
            problems.push(format!(
                "`compare.max_spread_ratio` {} must be 0 (off) or more",
                self.max_spread_ratio
            ));
        }
        if self.step.is_zero() {
            problems.push("`compare.step` is 0".to_owned());
        }
        if !(self.min_effect >= 0.0 && self.min_effect.is_finite()) {
            problems.push(format!(
                "`compare.min_effect` {} must be 0 or more",
                self.min_effect
            ));
        }
        if self.baseline.trim().is_empty() {
            problems.push("`compare.baseline` is empty; name the baseline track".to_owned());
        }
        if self.metrics.is_empty() {
            problems.push("`compare.metrics` is empty".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for metric in &self.metrics {
            if metric.name.trim().is_empty() {
                problems.push("a compare metric has an empty `name`".to_owned());
            } else if !seen.insert(metric.name.as_str()) {
                problems.push(format!("compare metric `{}` is listed twice", metric.name));
            }
            if !(metric.weight > 0.0 && metric.weight.is_finite()) {
                problems.push(format!(
                    "compare metric `{}` has weight {}; it must be positive",
                    metric.name, metric.weight
                ));
            }
        }
        problems
    }
}

/// The samples of one metric, canary and baseline, in time order; NaNs are dropped.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricSamples {
    /// The [`CompareMetric::name`].
    pub metric: String,
    /// The canary's values.
    pub canary: Vec<f64>,
    /// The baseline's values.
    pub baseline: Vec<f64>,
    /// The volume behind each canary value (the count query, e.g. requests per second), one
    /// per value; empty when the metric has none. A point without a positive volume is dropped.
    pub canary_volume: Vec<f64>,
    /// The volume behind each baseline value, as `canary_volume`.
    pub baseline_volume: Vec<f64>,
}

/// How one metric compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Classification {
    /// No meaningful difference in the bad direction.
    Pass,
    /// The canary is significantly higher (bad for `increase` and `either`).
    High,
    /// The canary is significantly lower (bad for `decrease` and `either`).
    Low,
    /// The canary's values are significantly more spread out.
    Spread,
    /// Not enough samples on one side to judge.
    TooFewSamples,
}

/// The spread test's numbers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spread {
    /// Mann-Whitney p-value on the absolute deviations.
    pub p_value: f64,
    /// Canary MAD over baseline MAD.
    pub ratio: f64,
}

/// One metric's judgement, with every number behind it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricComparison {
    /// The metric's name.
    pub metric: String,
    /// The classification.
    pub classification: Classification,
    /// Whether it counts against the comparison (a bad direction or too much spread).
    pub failed: bool,
    /// From the plan.
    pub critical: bool,
    /// From the plan.
    pub weight: f64,
    /// Finite canary samples.
    pub canary_samples: usize,
    /// Finite baseline samples.
    pub baseline_samples: usize,
    /// Canary median.
    pub canary_median: Option<f64>,
    /// Baseline median.
    pub baseline_median: Option<f64>,
    /// The location test.
    pub mann_whitney: Option<MannWhitney>,
    /// The shift and its confidence interval.
    pub shift: Option<HodgesLehmann>,
    /// The tolerance band `±tolerance·|estimate|`.
    pub tolerance_band: Option<f64>,
    /// The spread test.
    pub spread: Option<Spread>,
    /// The two-sample Kolmogorov-Smirnov test of the whole distributions, recorded for the
    /// reader (a shape change the location and spread tests describe less directly); it does
    /// not change the classification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kolmogorov_smirnov: Option<KolmogorovSmirnov>,
    /// The judgement on counts, for a metric with a volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<CountTest>,
    /// One sentence.
    pub reason: String,
}

/// The numbers of a judgement on counts (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CountTest {
    /// `proportion` or `mean`.
    pub model: CountModel,
    /// The canary's level: its values weighted by their volume.
    pub canary_level: f64,
    /// The baseline's level.
    pub baseline_level: f64,
    /// The canary's volume over the window (e.g. requests): Σ volume × step.
    pub canary_volume: f64,
    /// The baseline's volume over the window.
    pub baseline_volume: f64,
    /// The baseline's variance per unit of volume over what the counts alone predict (the
    /// quasi-binomial dispersion φ ≥ 1 for a proportion; 1 for a mean, whose unit variance is
    /// only known from the data).
    pub dispersion: f64,
    /// `canary_level - baseline_level`.
    pub difference: f64,
    /// Lower end of the difference's confidence interval.
    pub lower: f64,
    /// Upper end of the difference's confidence interval.
    pub upper: f64,
    /// p-value of the location test in the bad direction (two-sided for `either`).
    pub p_value: f64,
    /// Canary-to-baseline ratio of the standard deviation per unit of volume.
    pub spread_ratio: f64,
    /// p-value of that ratio being above 1.
    pub spread_p_value: f64,
}

/// The comparison's decision with its score and reasons.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Comparison {
    /// Pass, Fail or Inconclusive.
    pub decision: Decision,
    /// 0–100; `None` when no metric could be judged.
    pub score: Option<f64>,
    /// The overall sentence first, then one per metric.
    pub reasons: Vec<String>,
    /// Per metric, in plan order.
    pub metrics: Vec<MetricComparison>,
}

/// Judges `samples` by `plan`. Pure. Metrics of the plan without samples count as having none.
pub fn compare(plan: &ComparePlan, samples: &[MetricSamples]) -> Comparison {
    let metrics: Vec<MetricComparison> = plan
        .metrics
        .iter()
        .map(|metric| {
            let found = samples.iter().find(|s| s.metric == metric.name);
            let skip = warmup_points(plan);
            let finite = |values: Option<&Vec<f64>>| -> Vec<f64> {
                values
                    .map(|v| {
                        v.iter()
                            .skip(skip)
                            .copied()
                            .filter(|x| !x.is_nan())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let with_volume = |values: &[f64], volume: &[f64]| -> Vec<(f64, f64)> {
                values
                    .iter()
                    .zip(volume)
                    .skip(skip)
                    .filter(|(x, n)| x.is_finite() && n.is_finite() && **n > 0.0)
                    .map(|(x, n)| (*x, *n))
                    .collect()
            };
            match (found, metric.count_model()) {
                (Some(found), Some(model))
                    if !found.canary_volume.is_empty() && !found.baseline_volume.is_empty() =>
                {
                    judge_counts(
                        plan,
                        metric,
                        model,
                        &with_volume(&found.canary, &found.canary_volume),
                        &with_volume(&found.baseline, &found.baseline_volume),
                    )
                }
                _ => {
                    let canary = finite(found.map(|s| &s.canary));
                    let baseline = finite(found.map(|s| &s.baseline));
                    judge_metric(plan, metric, &canary, &baseline)
                }
            }
        })
        .collect();

    let judged: Vec<&MetricComparison> = metrics
        .iter()
        .filter(|m| m.classification != Classification::TooFewSamples)
        .collect();
    let short: Vec<&str> = metrics
        .iter()
        .filter(|m| m.classification == Classification::TooFewSamples)
        .map(|m| m.metric.as_str())
        .collect();
    let critical: Vec<&str> = metrics
        .iter()
        .filter(|m| m.critical && m.failed)
        .map(|m| m.metric.as_str())
        .collect();
    let total_weight: f64 = judged.iter().map(|m| m.weight).sum();
    let passing_weight: f64 = judged.iter().filter(|m| !m.failed).map(|m| m.weight).sum();
    let score = if !critical.is_empty() {
        Some(0.0)
    } else if judged.is_empty() {
        None
    } else {
        Some(100.0 * passing_weight / total_weight)
    };
    let passed = judged.iter().filter(|m| !m.failed).count();
    let tally = format!("{passed} of {} judged metrics passed", judged.len());
    let (decision, summary) = match score {
        _ if !critical.is_empty() => (
            Decision::Fail,
            format!(
                "comparison with `{}` failed: critical metric {} failed, score 0",
                plan.baseline_track(),
                quoted(&critical)
            ),
        ),
        None => (
            Decision::Inconclusive,
            format!(
                "comparison with `{}` is inconclusive: no metric had {} samples on both sides",
                plan.baseline_track(),
                plan.min_samples
            ),
        ),
        Some(score) if score < plan.marginal_score => (
            Decision::Fail,
            format!(
                "comparison with `{}` failed: score {} below marginal {} ({tally})",
                plan.baseline_track(),
                round(score),
                plan.marginal_score
            ),
        ),
        Some(score) if score < plan.pass_score => (
            Decision::Inconclusive,
            format!(
                "comparison with `{}` is marginal: score {} below pass {} but not below marginal {} ({tally}); a person must decide",
                plan.baseline_track(),
                round(score),
                plan.pass_score,
                plan.marginal_score
            ),
        ),
        Some(score) if !short.is_empty() => (
            Decision::Inconclusive,
            format!(
                "comparison with `{}` is inconclusive: score {} but {} had too few samples to judge",
                plan.baseline_track(),
                round(score),
                quoted(&short)
            ),
        ),
        Some(score) => (
            Decision::Pass,
            format!(
                "comparison with `{}` passed: score {} ({tally}, pass {})",
                plan.baseline_track(),
                round(score),
                plan.pass_score
            ),
        ),
    };
    let mut reasons = vec![summary];
    reasons.extend(metrics.iter().map(|m| m.reason.clone()));
    Comparison {
        decision,
        score,
        reasons,
        metrics,
    }
}

fn judge_metric(
    plan: &ComparePlan,
    metric: &CompareMetric,
    canary: &[f64],
    baseline: &[f64],
) -> MetricComparison {
    let name = &metric.name;
    let mut result = MetricComparison {
        metric: name.clone(),
        classification: Classification::TooFewSamples,
        failed: false,
        critical: metric.critical,
        weight: metric.weight,
        canary_samples: canary.len(),
        baseline_samples: baseline.len(),
        canary_median: None,
        baseline_median: None,
        mann_whitney: None,
        shift: None,
        tolerance_band: None,
        spread: None,
        kolmogorov_smirnov: None,
        counts: None,
        reason: String::new(),
    };
    if canary.len() < plan.min_samples || baseline.len() < plan.min_samples {
        result.reason = format!(
            "`{name}` not judged: too few samples (canary {}, {} {}; at least {} each are required)",
            canary.len(),
            plan.baseline_track(),
            baseline.len(),
            plan.min_samples
        );
        return result;
    }
    // Sort each side once; every test below runs on the sorted samples in linear time (the
    // Hodges-Lehmann selection in `O(n log n)`).
    let canary = &stats::sorted(canary);
    let baseline = &stats::sorted(baseline);
    result.canary_median = Some(stats::median_sorted(canary));
    result.baseline_median = Some(stats::median_sorted(baseline));
    let (test, kolmogorov_smirnov) = stats::mann_whitney_and_ks_sorted(canary, baseline);
    let Some(shift) = stats::hodges_lehmann_sorted(canary, baseline, plan.confidence) else {
        // Unreachable with non-empty NaN-free input; judged as too few rather than panicking.
        result.reason = format!("`{name}` not judged: the samples could not be compared");
        return result;
    };
    let band = plan.tolerance * shift.estimate.abs();
    let spread = if plan.max_spread_ratio > 0.0 {
        let (test, ratio) = stats::spread_sorted(canary, baseline);
        Some(Spread {
            p_value: test.p_value,
            ratio,
        })
    } else {
        None
    };
    result.kolmogorov_smirnov = Some(kolmogorov_smirnov);
    let alpha = 1.0 - plan.confidence;
    let high = shift.lower > band;
    let low = shift.upper < -band;
    let spread_bad = spread
        .is_some_and(|s| s.p_value < alpha && s.ratio > plan.max_spread_ratio && s.ratio > 1.0);
    let classification = if high {
        Classification::High
    } else if low {
        Classification::Low
    } else if spread_bad {
        Classification::Spread
    } else {
        Classification::Pass
    };
    let failed = match classification {
        Classification::High => metric.direction != Direction::Decrease,
        Classification::Low => metric.direction != Direction::Increase,
        Classification::Spread => true,
        Classification::Pass | Classification::TooFewSamples => false,
    };
    let percent = format!("{}%", round(plan.confidence * 100.0));
    let spread_text = spread
        .map(|s| {
            format!(
                ", spread ratio {} (p = {})",
                short_value(s.ratio),
                short_value(s.p_value)
            )
        })
        .unwrap_or_default();
    let numbers = format!(
        "shift {} ({percent} CI {} to {}, tolerance ±{}), Mann-Whitney p = {}{spread_text}; medians: canary {}, {} {} ({} and {} samples)",
        signed(shift.estimate),
        signed(shift.lower),
        signed(shift.upper),
        short_value(band),
        short_value(test.p_value),
        result.canary_median.map(short_value).unwrap_or_default(),
        plan.baseline_track(),
        result.baseline_median.map(short_value).unwrap_or_default(),
        canary.len(),
        baseline.len(),
    );
    let verdict = if failed { "failed" } else { "passed" };
    let direction = match metric.direction {
        Direction::Increase => "increase",
        Direction::Decrease => "decrease",
        Direction::Either => "either",
    };
    result.reason = match classification {
        Classification::High | Classification::Low => format!(
            "`{name}` {verdict}: canary {} than `{}` (direction {direction}); {numbers}",
            if high { "higher" } else { "lower" },
            plan.baseline_track()
        ),
        Classification::Spread => {
            let s = spread.unwrap_or(Spread {
                p_value: f64::NAN,
                ratio: f64::NAN,
            });
            format!(
                "`{name}` failed: canary values spread {}× as widely as `{}` (median absolute deviation; limit {}×) with no significant shift; {numbers}",
                short_value(s.ratio),
                plan.baseline_track(),
                short_value(plan.max_spread_ratio),
            )
        }
        _ => format!("`{name}` passed: no significant difference; {numbers}"),
    };
    result.classification = classification;
    result.failed = failed;
    result.mann_whitney = Some(test);
    result.shift = Some(shift);
    result.tolerance_band = Some(band);
    result.spread = spread;
    result
}

/// Points at the start of each side left out as warm-up.
fn warmup_points(plan: &ComparePlan) -> usize {
    if plan.step.is_zero() {
        return 0;
    }
    plan.warmup.as_nanos().div_ceil(plan.step.as_nanos()) as usize
}

/// A side's level and noise, from `(value, volume rate)` points.
struct Side {
    /// Points.
    k: usize,
    /// Volume-weighted mean.
    level: f64,
    /// Σ volume × step.
    volume: f64,
    /// Variance of `level` from the data: Newey-West over the weighted residuals.
    level_variance: f64,
    /// Pearson variance per unit: Σ w (x - level)² / (k - 1), in rate units (shared scale).
    unit_variance: f64,
    /// 1 + 2 Σ ρ_h² over the standardised residuals' autocorrelations.
    correlation_inflation: f64,
    /// Sample kurtosis of the standardised residuals (3 for normal noise).
    kurtosis: f64,
    /// Mean of 1 / expected events per point (proportions; the small-count term of the
    /// Pearson statistic's variance).
    inverse_events: f64,
}

impl Side {
    fn new(points: &[(f64, f64)], step_seconds: f64, log_spread: bool) -> Side {
        let k = points.len();
        let weight: f64 = points.iter().map(|(_, n)| n).sum();
        let level = points.iter().map(|(x, n)| x * n).sum::<f64>() / weight;
        let residual: Vec<f64> = points.iter().map(|(x, n)| (x - level) * n).collect();
        let lags = (k as f64).cbrt().ceil() as usize;
        let mut sum = residual.iter().map(|r| r * r).sum::<f64>();
        // Newey-West: autocovariances up to `lags` with Bartlett kernel weights.
        for lag in 1..=lags.min(k.saturating_sub(1)) {
            let kernel = 1.0 - lag as f64 / (lags + 1) as f64;
            let cross: f64 = residual
                .iter()
                .zip(&residual[lag..])
                .map(|(a, b)| a * b)
                .sum();
            sum += 2.0 * kernel * cross;
        }
        // Pearson residuals: each point's deviation scaled to one unit of volume. For a mean
        // (latency) on the log scale: its noise is multiplicative, so logs have normal tails.
        let spread_points: Vec<(f64, f64)> = if log_spread {
            points.iter().map(|(x, n)| (x.ln(), *n)).collect()
        } else {
            points.to_vec()
        };
        let spread_level = spread_points.iter().map(|(x, n)| x * n).sum::<f64>() / weight;
        let standardised: Vec<f64> = spread_points
            .iter()
            .map(|(x, n)| (x - spread_level) * n.sqrt())
            .collect();
        let squares: f64 = standardised.iter().map(|r| r * r).sum();
        // Bartlett: the variance of a sample variance grows by 1 + 2 Σ ρ_h² under
        // autocorrelation (overlapping rate windows, slow drifts).
        let mut correlation_inflation = 1.0;
        if squares > 0.0 {
            for lag in 1..=lags.min(k.saturating_sub(2)) {
                let rho = standardised
                    .iter()
                    .zip(&standardised[lag..])
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
                    / squares;
                correlation_inflation += 2.0 * rho * rho;
            }
        }
        let fourth: f64 = standardised.iter().map(|r| r.powi(4)).sum();
        let kurtosis = if squares > 0.0 {
            fourth * k as f64 / (squares * squares)
        } else {
            3.0
        };
        let inverse_events = points
            .iter()
            .map(|(_, n)| 1.0 / (n * step_seconds * level.max(f64::MIN_POSITIVE)))
            .sum::<f64>()
            / k.max(1) as f64;
        Side {
            k,
            level,
            volume: weight * step_seconds,
            level_variance: (sum / (weight * weight)).max(0.0),
            unit_variance: squares / (k.saturating_sub(1).max(1)) as f64,
            correlation_inflation,
            kurtosis,
            inverse_events,
        }
    }
}

/// Judges a metric with a volume on its counts (see the module docs for the method).
fn judge_counts(
    plan: &ComparePlan,
    metric: &CompareMetric,
    model: CountModel,
    canary: &[(f64, f64)],
    baseline: &[(f64, f64)],
) -> MetricComparison {
    let name = &metric.name;
    let values = |points: &[(f64, f64)]| points.iter().map(|(x, _)| *x).collect::<Vec<f64>>();
    let mut result = MetricComparison {
        metric: name.clone(),
        classification: Classification::TooFewSamples,
        failed: false,
        critical: metric.critical,
        weight: metric.weight,
        canary_samples: canary.len(),
        baseline_samples: baseline.len(),
        canary_median: stats::median(&values(canary)),
        baseline_median: stats::median(&values(baseline)),
        mann_whitney: None,
        shift: None,
        tolerance_band: None,
        spread: None,
        kolmogorov_smirnov: None,
        counts: None,
        reason: String::new(),
    };
    if canary.len() < plan.min_samples || baseline.len() < plan.min_samples {
        result.reason = format!(
            "`{name}` not judged: too few samples with volume (canary {}, {} {}; at least {} each are required)",
            canary.len(),
            plan.baseline_track(),
            baseline.len(),
            plan.min_samples
        );
        return result;
    }
    let step = plan.step.as_secs_f64();
    // Dispersion of a positive mean is judged on the log scale (multiplicative noise).
    let log_spread = model != CountModel::Proportion
        && canary
            .iter()
            .chain(baseline)
            .all(|(x, _)| *x > 0.0 && x.is_finite());
    let c = Side::new(canary, step, log_spread);
    let b = Side::new(baseline, step, log_spread);
    let difference = c.level - b.level;
    // The baseline's variance per unit of volume, from its own data (Newey-West, so
    // autocorrelation and overlapping rate windows count), floored for a proportion at what
    // binomial counts predict: the quasi-binomial dispersion φ ≥ 1.
    let observed_unit = b.level_variance * b.volume;
    let (unit, dispersion, z) = match model {
        CountModel::Proportion => {
            let pooled =
                ((c.level * c.volume + b.level * b.volume) / (c.volume + b.volume)).clamp(0.0, 1.0);
            let binomial = pooled * (1.0 - pooled);
            let unit = observed_unit.max(binomial);
            let dispersion = if binomial > 0.0 { unit / binomial } else { 1.0 };
            // Anscombe's square root: counts of a few events are skewed, their roots nearly
            // normal with variance φ/4 per event (Poisson limit of a rare event).
            let root = |level: f64, volume: f64| ((level * volume + 0.375) / volume).sqrt();
            let se = (dispersion / 4.0 * (1.0 / c.volume + 1.0 / b.volume)).sqrt();
            let gap = root(c.level, c.volume) - root(b.level, b.volume);
            (unit, dispersion, if se > 0.0 { gap / se } else { 0.0 })
        }
        CountModel::Mean | CountModel::Auto => {
            let unit = if observed_unit > 0.0 {
                observed_unit
            } else {
                c.level_variance * c.volume
            };
            let se = (unit * (1.0 / c.volume + 1.0 / b.volume)).sqrt();
            let z = if se > 0.0 {
                difference / se
            } else if difference != 0.0 {
                difference.signum() * f64::INFINITY
            } else {
                0.0
            };
            (unit, 1.0, z)
        }
    };
    let se = (unit * (1.0 / c.volume + 1.0 / b.volume)).sqrt();
    let alpha = 1.0 - plan.confidence;
    let half = stats::normal_quantile((1.0 + plan.confidence) / 2.0) * se;
    let (p_up, p_down) = (stats::normal_sf(z), stats::normal_sf(-z));
    let p_two = (2.0 * p_up.min(p_down)).min(1.0);
    let meaningful = difference.abs() > plan.min_effect * b.level.abs();
    let p_value = match metric.direction {
        Direction::Increase if difference > 0.0 => p_up,
        Direction::Decrease if difference < 0.0 => p_down,
        _ => p_two,
    };
    let high = difference > 0.0 && meaningful && p_value < alpha;
    let low = difference < 0.0 && meaningful && p_value < alpha;
    // Dispersion: the canary's variance per unit of volume against the baseline's. Both are
    // what their counts predict times any excess, so the ratio does not depend on the traffic
    // share. log(ratio) is about normal with variance Σ (κ - 1)·B/(k - 1) over both sides: κ the
    // residuals' kurtosis (3 for normal noise; at least 3 + 1/events for rare events, the small
    // count term of the Pearson statistic), B Bartlett's autocorrelation factor. Heavy tails
    // and few events widen the test instead of raising false alarms.
    let term = |side: &Side| {
        let floor = if model == CountModel::Proportion {
            3.0 + side.inverse_events.min(1e6)
        } else {
            3.0
        };
        (side.kurtosis.max(floor) - 1.0) * side.correlation_inflation
            / (side.k.saturating_sub(1).max(1)) as f64
    };
    let ratio = if b.unit_variance > 0.0 {
        c.unit_variance / b.unit_variance
    } else if c.unit_variance > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    let spread_z = ratio.ln() / (term(&c) + term(&b)).sqrt();
    let spread_p = if spread_z.is_nan() {
        1.0
    } else {
        stats::normal_sf(spread_z)
    };
    let spread_ratio = ratio.sqrt();
    let spread_bad = plan.max_spread_ratio > 0.0
        && spread_p < alpha
        && spread_ratio > plan.max_spread_ratio.max(1.0);
    let classification = if high {
        Classification::High
    } else if low {
        Classification::Low
    } else if spread_bad {
        Classification::Spread
    } else {
        Classification::Pass
    };
    let failed = match classification {
        Classification::High => metric.direction != Direction::Decrease,
        Classification::Low => metric.direction != Direction::Increase,
        Classification::Spread => true,
        Classification::Pass | Classification::TooFewSamples => false,
    };
    let counts = CountTest {
        model,
        canary_level: c.level,
        baseline_level: b.level,
        canary_volume: c.volume,
        baseline_volume: b.volume,
        dispersion,
        difference,
        lower: difference - half,
        upper: difference + half,
        p_value,
        spread_ratio,
        spread_p_value: spread_p,
    };
    let percent = format!("{}%", round(plan.confidence * 100.0));
    let kind = match model {
        CountModel::Proportion => "proportion",
        _ => "mean",
    };
    let numbers = format!(
        "judged on counts ({kind}): canary {} over volume {}, {} {} over volume {}; difference {} ({percent} CI {} to {}, min effect ±{}), p = {}, dispersion {}×; spread ratio per unit {} (p = {}); {} and {} samples",
        short_value(c.level),
        short_value(c.volume),
        plan.baseline_track(),
        short_value(b.level),
        short_value(b.volume),
        signed(difference),
        signed(counts.lower),
        signed(counts.upper),
        short_value(plan.min_effect * b.level.abs()),
        short_value(p_value),
        short_value(dispersion),
        short_value(spread_ratio),
        short_value(spread_p),
        canary.len(),
        baseline.len(),
    );
    let verdict = if failed { "failed" } else { "passed" };
    let direction = match metric.direction {
        Direction::Increase => "increase",
        Direction::Decrease => "decrease",
        Direction::Either => "either",
    };
    result.reason = match classification {
        Classification::High | Classification::Low => format!(
            "`{name}` {verdict}: canary {} than `{}` (direction {direction}); {numbers}",
            if high { "higher" } else { "lower" },
            plan.baseline_track()
        ),
        Classification::Spread => format!(
            "`{name}` failed: canary values spread {}× as widely as `{}` for the volume behind them (limit {}×) with no significant shift; {numbers}",
            short_value(spread_ratio),
            plan.baseline_track(),
            short_value(plan.max_spread_ratio),
        ),
        _ => format!("`{name}` passed: no meaningful difference; {numbers}"),
    };
    result.classification = classification;
    result.failed = failed;
    result.counts = Some(counts);
    result
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rounds a score or percentage to one decimal for text.
fn round(value: f64) -> String {
    format_value((value * 10.0).round() / 10.0)
}

/// Four significant digits, for reasons (the JSON keeps full precision).
pub(crate) fn short_value(value: f64) -> String {
    if !value.is_finite() || value == 0.0 {
        return format_value(value);
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-3..6).contains(&magnitude) {
        return format!("{value:.3e}");
    }
    let decimals = (3 - magnitude).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

fn signed(value: f64) -> String {
    if value > 0.0 {
        format!("+{}", short_value(value))
    } else {
        short_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic normal samples (xorshift + Box-Muller), enough for table tests.
    fn normal(seed: u64, n: usize, mean: f64, sd: f64) -> Vec<f64> {
        let mut state = seed.max(1);
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                let (u1, u2) = (uniform().max(1e-300), uniform());
                mean + sd * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
            })
            .collect()
    }

    fn plan(metrics: &[(&str, Direction, bool)]) -> ComparePlan {
        ComparePlan {
            metrics: metrics
                .iter()
                .map(|(name, direction, critical)| CompareMetric {
                    name: (*name).to_owned(),
                    query: "q".to_owned(),
                    direction: *direction,
                    critical: *critical,
                    weight: 1.0,
                    count: None,
                    model: CountModel::Auto,
                })
                .collect(),
            ..ComparePlan::default()
        }
    }

    fn samples(metric: &str, canary: Vec<f64>, baseline: Vec<f64>) -> MetricSamples {
        MetricSamples {
            metric: metric.to_owned(),
            canary,
            baseline,
            ..MetricSamples::default()
        }
    }

    #[test]
    fn classifies_each_kind_of_change() {
        use Classification::*;
        // 120 samples: the spread test needs them to see variance ×3 reliably (about 55 % of
        // the time at 40 samples; see SIMULATION.md).
        let base = normal(1, 120, 0.4, 0.02);
        let cases: &[(&str, Direction, Vec<f64>, Classification, bool)] = &[
            (
                "same",
                Direction::Increase,
                normal(2, 40, 0.4, 0.02),
                Pass,
                false,
            ),
            (
                "+30%",
                Direction::Increase,
                normal(3, 40, 0.52, 0.02),
                High,
                true,
            ),
            (
                "+30% but lower is bad",
                Direction::Decrease,
                normal(3, 40, 0.52, 0.02),
                High,
                false,
            ),
            (
                "-30%",
                Direction::Either,
                normal(4, 40, 0.28, 0.02),
                Low,
                true,
            ),
            (
                "variance x3",
                Direction::Increase,
                normal(5, 120, 0.4, 0.02 * 3f64.sqrt()),
                Spread,
                true,
            ),
            (
                "too few",
                Direction::Increase,
                normal(6, 9, 0.9, 0.02),
                TooFewSamples,
                false,
            ),
        ];
        for (name, direction, canary, expected, failed) in cases {
            let plan = plan(&[("m", *direction, false)]);
            let result = compare(&plan, &[samples("m", canary.clone(), base.clone())]);
            let metric = &result.metrics[0];
            assert_eq!(
                (metric.classification, metric.failed),
                (*expected, *failed),
                "{name}: {}",
                metric.reason
            );
        }
    }

    #[test]
    fn scores_and_decides() {
        let base = normal(10, 30, 1.0, 0.05);
        let same = normal(11, 30, 1.0, 0.05);
        let worse = normal(12, 30, 1.5, 0.05);
        let four = plan(&[
            ("a", Direction::Increase, false),
            ("b", Direction::Increase, false),
            ("c", Direction::Increase, false),
            ("d", Direction::Increase, false),
        ]);
        let all_same: Vec<MetricSamples> = ["a", "b", "c", "d"]
            .iter()
            .map(|m| samples(m, same.clone(), base.clone()))
            .collect();
        let result = compare(&four, &all_same);
        assert_eq!(
            (result.decision, result.score),
            (Decision::Pass, Some(100.0))
        );
        assert_eq!(
            result.reasons[0],
            "comparison with `stable` passed: score 100 (4 of 4 judged metrics passed, pass 90)"
        );

        // One of four fails: 75, marginal → Inconclusive.
        let mut one_bad = all_same.clone();
        one_bad[3].canary = worse.clone();
        let result = compare(&four, &one_bad);
        assert_eq!(
            (result.decision, result.score),
            (Decision::Inconclusive, Some(75.0)),
            "{:?}",
            result.reasons
        );
        assert!(result.reasons[0].contains("is marginal: score 75"));

        // Two of four: 50 → Fail.
        let mut two_bad = one_bad.clone();
        two_bad[2].canary = worse.clone();
        assert_eq!(compare(&four, &two_bad).decision, Decision::Fail);

        // A critical metric fails the comparison with score 0.
        let mut critical = four.clone();
        critical.metrics[3].critical = true;
        let result = compare(&critical, &one_bad);
        assert_eq!((result.decision, result.score), (Decision::Fail, Some(0.0)));
        assert_eq!(
            result.reasons[0],
            "comparison with `stable` failed: critical metric `d` failed, score 0"
        );

        // Too few samples: excluded from the score, and the comparison cannot pass.
        let mut short = all_same.clone();
        short[0].canary.truncate(4);
        let result = compare(&four, &short);
        assert_eq!(
            (result.decision, result.score),
            (Decision::Inconclusive, Some(100.0))
        );
        assert_eq!(
            result.reasons[1],
            "`a` not judged: too few samples (canary 4, stable 30; at least 10 each are required)"
        );
        let result = compare(&four, &[]);
        assert_eq!(
            (result.decision, result.score),
            (Decision::Inconclusive, None)
        );
    }

    #[test]
    fn reasons_carry_the_numbers() {
        let plan = plan(&[("latency", Direction::Increase, true)]);
        let canary: Vec<f64> = (0..12).map(|i| 0.5 + 0.01 * i as f64).collect();
        let baseline: Vec<f64> = (0..12).map(|i| 0.4 + 0.01 * i as f64).collect();
        let result = compare(&plan, &[samples("latency", canary, baseline)]);
        insta::assert_snapshot!(result.reasons.join("\n"), @r"
        comparison with `stable` failed: critical metric `latency` failed, score 0
        `latency` failed: canary higher than `stable` (direction increase); shift +0.1 (98% CI +0.06 to +0.14, tolerance ±0.025), Mann-Whitney p = 5.961e-5, spread ratio 1 (p = 1); medians: canary 0.555, stable 0.455 (12 and 12 samples)
        ");
    }

    /// (value, volume) per step.
    type Points = Vec<(f64, f64)>;

    /// Per-step (error ratio, requests/s) and (mean latency, requests/s) of a track serving
    /// `rate` requests per second at `error_rate`, latency mean 0.2 s with per-request sd 0.1 s,
    /// 15 s steps: the issue's replay scenario, generated.
    fn track(seed: u64, steps: usize, rate: f64, error_rate: f64) -> (Points, Points) {
        let noise = normal(seed, 2 * steps, 0.0, 1.0);
        let mut errors = Vec::new();
        let mut latency = Vec::new();
        for step in 0..steps {
            let requests = rate * 15.0;
            // Normal approximation of the binomial error count, rounded and kept >= 0.
            let mean = requests * error_rate;
            let count = (mean + mean.sqrt() * noise[2 * step]).round().max(0.0);
            errors.push((count / requests, rate));
            latency.push((0.2 + 0.1 / requests.sqrt() * noise[2 * step + 1], rate));
        }
        (errors, latency)
    }

    fn with_volume(metric: &str, canary: &[(f64, f64)], baseline: &[(f64, f64)]) -> MetricSamples {
        MetricSamples {
            metric: metric.to_owned(),
            canary: canary.iter().map(|p| p.0).collect(),
            baseline: baseline.iter().map(|p| p.0).collect(),
            canary_volume: canary.iter().map(|p| p.1).collect(),
            baseline_volume: baseline.iter().map(|p| p.1).collect(),
        }
    }

    #[test]
    fn a_small_healthy_canary_passes_on_counts_and_a_bad_one_fails() {
        let mut plan = plan(&[
            ("error-rate", Direction::Increase, false),
            ("latency", Direction::Increase, true),
        ]);
        for metric in &mut plan.metrics {
            metric.count = Some("requests".to_owned());
        }
        plan.metrics[0].model = CountModel::Proportion;
        plan.metrics[1].model = CountModel::Mean;
        let (stable_errors, stable_latency) = track(21, 80, 40.0, 0.002);
        let (canary_errors, canary_latency) = track(22, 80, 10.0, 0.002);
        let healthy = [
            with_volume("error-rate", &canary_errors, &stable_errors),
            with_volume("latency", &canary_latency, &stable_latency),
        ];
        // Judged by ranks, the small canary's noisier points look like a spread regression.
        let by_ranks: Vec<MetricSamples> = healthy
            .iter()
            .map(|s| MetricSamples {
                canary_volume: Vec::new(),
                baseline_volume: Vec::new(),
                ..s.clone()
            })
            .collect();
        let ranks = compare(&plan, &by_ranks);
        assert_eq!(
            ranks.metrics[1].classification,
            Classification::Spread,
            "{:?}",
            ranks.reasons
        );
        // Judged on counts, it passes.
        let counts = compare(&plan, &healthy);
        assert_eq!(counts.decision, Decision::Pass, "{:?}", counts.reasons);
        assert!(counts.metrics.iter().all(|m| m.counts.is_some()));

        // 3 % errors at the same small share fail.
        let (bad_errors, _) = track(23, 80, 10.0, 0.03);
        let bad = [
            with_volume("error-rate", &bad_errors, &stable_errors),
            with_volume("latency", &canary_latency, &stable_latency),
        ];
        let result = compare(&plan, &bad);
        assert_eq!(
            result.metrics[0].classification,
            Classification::High,
            "{:?}",
            result.reasons
        );
        assert!(result.metrics[0].failed);
        assert!(
            result.reasons[1].contains("judged on counts (proportion)"),
            "{}",
            result.reasons[1]
        );

        // Latency variance x3 per request at the same mean, the same small share: spread.
        let wide: Vec<(f64, f64)> = canary_latency
            .iter()
            .map(|(x, n)| (0.2 + (x - 0.2) * 3f64.sqrt(), *n))
            .collect();
        let result = compare(&plan, &[with_volume("latency", &wide, &stable_latency)]);
        assert_eq!(
            result.metrics[1].classification,
            Classification::Spread,
            "{:?}",
            result.reasons
        );
    }

    #[test]
    fn derives_the_volume_of_a_ratio_of_counter_rates() {
        let metric = |query: &str| CompareMetric {
            name: "m".to_owned(),
            query: query.to_owned(),
            direction: Direction::Increase,
            critical: false,
            weight: 1.0,
            count: None,
            model: CountModel::Auto,
        };
        let errors = metric(
            r#"sum(rate(model_requests_total{track="{{track}}",code=~"5.."}[1m])) / sum(rate(model_requests_total{track="{{track}}"}[1m]))"#,
        );
        assert_eq!(
            errors.count_query().as_deref(),
            Some(r#"sum(rate(model_requests_total{track="{{track}}"}[1m]))"#)
        );
        assert_eq!(errors.count_model(), Some(CountModel::Proportion));
        let latency = metric("sum(rate(d_sum[1m])) / sum(rate(d_count[1m]))");
        assert_eq!(
            latency.count_query().as_deref(),
            Some("sum(rate(d_count[1m]))")
        );
        assert_eq!(latency.count_model(), Some(CountModel::Mean));
        for none in [
            "histogram_quantile(0.99, sum by (le)(rate(b[1m])))",
            "a / b",
            "sum(rate(a[1m])) / sum(rate(b[1m])) / 2",
            r#"sum(rate(a{path="/x"}[1m]))"#,
        ] {
            assert_eq!(metric(none).count_query(), None, "{none}");
            assert_eq!(metric(none).count_model(), None, "{none}");
        }
    }

    #[test]
    fn values() {
        let cases = [
            (0.000_607_4, "6.074e-4"),
            (0.001_5, "0.0015"),
            (0.025, "0.025"),
            (123.456_78, "123.5"),
            (1.0, "1"),
            (0.0, "0"),
            (-0.5, "-0.5"),
            (1_234_567.0, "1.235e6"),
        ];
        for (value, expected) in cases {
            assert_eq!(short_value(value), expected);
        }
    }
}
