//! Model quality on live traffic: prediction drift (PSI and two-sample Kolmogorov-Smirnov) between
//! canary and baseline, and accuracy on a labelled evaluation set sent to the canary endpoint.
//!
//! The judgements here are pure: [`judge_distribution`] takes two vectors of predictions and
//! [`judge_accuracy`] takes counts. Where the predictions come from is the caller's business:
//! a metric's values over the window (a `query`), or the answers of the canary and baseline
//! endpoints to the evaluation set's inputs (a `url`; see `crate::endpoint`).
//!
//! Defaults: PSI above 0.2 fails (the usual "significant shift" rule of thumb); a KS test fails
//! when significant at `confidence` (0.98) *and* its statistic exceeds `max_ks` (0.1), because
//! with thousands of predictions KS finds differences too small to matter. Accuracy below 0.70
//! fails, as the seed's canary check did; with `max_drop` set, a drop against the baseline
//! endpoint that is significant (one-sided two-proportion z-test) and at least `max_drop` fails
//! too.

use std::path::PathBuf;
use std::time::Duration;

use crate::compare::short_value;
use crate::judge::Decision;
use crate::stats::{self, KolmogorovSmirnov};

/// The `[quality]` section of an analysis plan.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityPlan {
    /// The track the canary's predictions are compared with.
    pub baseline: String,
    /// PSI above this fails.
    pub max_psi: f64,
    /// A significant KS test fails only when its statistic is above this.
    pub max_ks: f64,
    /// Confidence of the KS and accuracy-drop tests.
    pub confidence: f64,
    /// PSI bins (quantiles of the baseline).
    pub bins: usize,
    /// Predictions required on each side before a distribution is judged.
    pub min_samples: usize,
    /// Time between samples for metric-based distributions.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub step: Duration,
    /// Prediction distributions to compare.
    pub distributions: Vec<DistributionCheck>,
    /// Accuracy on a labelled evaluation set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracyCheck>,
}

impl Default for QualityPlan {
    fn default() -> QualityPlan {
        QualityPlan {
            baseline: "stable".to_owned(),
            max_psi: 0.2,
            max_ks: 0.1,
            confidence: 0.98,
            bins: 10,
            min_samples: 50,
            step: Duration::from_secs(15),
            distributions: Vec::new(),
            accuracy: None,
        }
    }
}

/// One prediction distribution to compare, from a metric (`query`) or an endpoint (`url`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributionCheck {
    /// Unique name, used in reports.
    pub name: String,
    /// Query template (rendered per track); its values over the window are the predictions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Endpoint URL template (rendered per track); each input of the accuracy data set is
    /// POSTed to it as JSON and the number at `prediction` is the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Where the prediction is in the endpoint's JSON answer (`$.a.b[0]` or `/a/b/0`).
    #[serde(default = "default_prediction")]
    pub prediction: String,
}

/// Accuracy of the canary endpoint on a labelled evaluation set.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracyCheck {
    /// Endpoint URL template, rendered with the canary track (and the baseline track for
    /// `max_drop`).
    pub url: String,
    /// JSON Lines file, one `{"input": …, "label": …}` per line.
    pub dataset: PathBuf,
    /// Where the prediction is in the endpoint's JSON answer (`$.a.b[0]` or `/a/b/0`).
    #[serde(default = "default_prediction")]
    pub prediction: String,
    /// Accuracy below this fails.
    #[serde(default = "default_min_accuracy")]
    pub min_accuracy: f64,
    /// If set, the baseline endpoint is scored too, and a significant drop of at least this
    /// much (absolute, e.g. 0.02) fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_drop: Option<f64>,
}

fn default_prediction() -> String {
    "$.prediction".to_owned()
}

fn default_min_accuracy() -> f64 {
    0.70
}

impl QualityPlan {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.confidence > 0.5 && self.confidence < 1.0) {
            problems.push(format!(
                "`quality.confidence` {} must be between 0.5 and 1 (exclusive)",
                self.confidence
            ));
        }
        if self.bins < 2 {
            problems.push(format!("`quality.bins` {} must be 2 or more", self.bins));
        }
        if self.min_samples < 3 {
            problems.push(format!(
                "`quality.min_samples` {} must be 3 or more",
                self.min_samples
            ));
        }
        if self.step.is_zero() {
            problems.push("`quality.step` is 0".to_owned());
        }
        if self.distributions.is_empty() && self.accuracy.is_none() {
            problems.push("`quality` has neither `distributions` nor `accuracy`".to_owned());
        }
        for check in &self.distributions {
            match (&check.query, &check.url) {
                (Some(_), None) => {}
                (None, Some(_)) if self.accuracy.is_none() => problems.push(format!(
                    "quality distribution `{}` reads an endpoint but there is no `quality.accuracy` data set to send it",
                    check.name
                )),
                (None, Some(_)) => {}
                _ => problems.push(format!(
                    "quality distribution `{}` needs exactly one of `query` and `url`",
                    check.name
                )),
            }
        }
        if let Some(accuracy) = &self.accuracy {
            if !(0.0..=1.0).contains(&accuracy.min_accuracy) {
                problems.push(format!(
                    "`quality.accuracy.min_accuracy` {} must be between 0 and 1",
                    accuracy.min_accuracy
                ));
            }
            if accuracy.max_drop.is_some_and(|d| !(0.0..=1.0).contains(&d)) {
                problems.push("`quality.accuracy.max_drop` must be between 0 and 1".to_owned());
            }
        }
        problems
    }
}

/// One distribution's judgement.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DistributionResult {
    /// The check's name.
    pub name: String,
    /// Pass, Fail or Inconclusive (too few predictions or an endpoint error).
    pub decision: Decision,
    /// Canary predictions used.
    pub canary_samples: usize,
    /// Baseline predictions used.
    pub baseline_samples: usize,
    /// Population stability index of the canary against the baseline.
    pub psi: Option<f64>,
    /// Two-sample Kolmogorov-Smirnov test.
    pub ks: Option<KolmogorovSmirnov>,
    /// One sentence.
    pub reason: String,
}

/// Judges one prediction distribution. NaNs are dropped.
pub fn judge_distribution(
    plan: &QualityPlan,
    name: &str,
    canary: &[f64],
    baseline: &[f64],
) -> DistributionResult {
    let canary: Vec<f64> = canary.iter().copied().filter(|v| !v.is_nan()).collect();
    let baseline: Vec<f64> = baseline.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut result = DistributionResult {
        name: name.to_owned(),
        decision: Decision::Inconclusive,
        canary_samples: canary.len(),
        baseline_samples: baseline.len(),
        psi: None,
        ks: None,
        reason: String::new(),
    };
    if canary.len() < plan.min_samples || baseline.len() < plan.min_samples {
        result.reason = format!(
            "`{name}` not judged: too few predictions (canary {}, {} {}; at least {} each are required)",
            canary.len(),
            plan.baseline,
            baseline.len(),
            plan.min_samples
        );
        return result;
    }
    let psi = stats::psi(&baseline, &canary, plan.bins);
    let ks = stats::ks_2samp(&canary, &baseline);
    let (Some(psi), Some(ks)) = (psi, ks) else {
        result.reason = format!("`{name}` not judged: the predictions could not be compared");
        return result;
    };
    let alpha = 1.0 - plan.confidence;
    let psi_bad = psi > plan.max_psi;
    let ks_bad = ks.p_value < alpha && ks.statistic > plan.max_ks;
    let numbers = format!(
        "PSI {} (max {}), KS D = {} (max {}) p = {} ({} and {} predictions)",
        short_value(psi),
        short_value(plan.max_psi),
        short_value(ks.statistic),
        short_value(plan.max_ks),
        short_value(ks.p_value),
        canary.len(),
        baseline.len()
    );
    result.decision = if psi_bad || ks_bad {
        Decision::Fail
    } else {
        Decision::Pass
    };
    result.reason = if psi_bad || ks_bad {
        format!(
            "`{name}` failed: canary predictions drifted from `{}`; {numbers}",
            plan.baseline
        )
    } else {
        format!(
            "`{name}` passed: predictions match `{}`; {numbers}",
            plan.baseline
        )
    };
    result.psi = Some(psi);
    result.ks = Some(ks);
    result
}

/// How an endpoint did on the evaluation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    /// Examples answered and compared with their label.
    pub answered: usize,
    /// Answers equal to the label.
    pub correct: usize,
    /// Requests that failed or answers without a prediction.
    pub errors: usize,
}

impl Scored {
    /// `correct / answered`, `None` when nothing was answered.
    pub fn accuracy(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.correct as f64 / self.answered as f64)
    }
}

/// The accuracy judgement.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AccuracyResult {
    /// Pass, Fail or Inconclusive.
    pub decision: Decision,
    /// The canary endpoint.
    pub canary: Scored,
    /// The baseline endpoint, when `max_drop` is set.
    pub baseline: Option<Scored>,
    /// The threshold.
    pub min_accuracy: f64,
    /// One-sided p-value of "the canary is less accurate than the baseline".
    pub drop_p_value: Option<f64>,
    /// One sentence.
    pub reason: String,
}

/// Judges accuracy. More than half the examples unanswered is Inconclusive: the endpoint, not
/// the model, is the problem, and smoke tests say so.
pub fn judge_accuracy(
    check: &AccuracyCheck,
    confidence: f64,
    baseline_track: &str,
    canary: Scored,
    baseline: Option<Scored>,
) -> AccuracyResult {
    let mut result = AccuracyResult {
        decision: Decision::Inconclusive,
        canary,
        baseline,
        min_accuracy: check.min_accuracy,
        drop_p_value: None,
        reason: String::new(),
    };
    let total = canary.answered + canary.errors;
    let Some(accuracy) = canary.accuracy().filter(|_| canary.answered * 2 > total) else {
        result.reason = format!(
            "`accuracy` not judged: the canary answered {} of {total} examples ({} errors)",
            canary.answered, canary.errors
        );
        return result;
    };
    let base = format!(
        "{} of {} correct = {} (min {})",
        canary.correct,
        canary.answered,
        short_value(accuracy),
        short_value(check.min_accuracy)
    );
    if accuracy < check.min_accuracy {
        result.decision = Decision::Fail;
        result.reason = format!("`accuracy` failed: {base}");
        return result;
    }
    if let (Some(max_drop), Some(baseline)) = (check.max_drop, baseline) {
        let Some(baseline_accuracy) = baseline.accuracy() else {
            result.reason = format!(
                "`accuracy` not judged: {base}, but `{baseline_track}` answered none of the examples"
            );
            return result;
        };
        let (n1, n2) = (canary.answered as f64, baseline.answered as f64);
        let pooled = (canary.correct + baseline.correct) as f64 / (n1 + n2);
        let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
        let drop = baseline_accuracy - accuracy;
        let p_value = if se > 0.0 {
            stats::normal_sf(drop / se)
        } else if drop > 0.0 {
            0.0
        } else {
            1.0
        };
        result.drop_p_value = Some(p_value);
        let versus = format!(
            "{base}; `{baseline_track}` {} of {} = {}, drop {} (max {}, p = {})",
            baseline.correct,
            baseline.answered,
            short_value(baseline_accuracy),
            short_value(drop),
            short_value(max_drop),
            short_value(p_value)
        );
        if p_value < 1.0 - confidence && drop >= max_drop {
            result.decision = Decision::Fail;
            result.reason = format!("`accuracy` failed: {versus}");
        } else {
            result.decision = Decision::Pass;
            result.reason = format!("`accuracy` passed: {versus}");
        }
        return result;
    }
    result.decision = Decision::Pass;
    result.reason = format!("`accuracy` passed: {base}");
    result
}

/// Everything the quality section decided.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Quality {
    /// Worst of the checks.
    pub decision: Decision,
    /// Distribution checks, in plan order.
    pub distributions: Vec<DistributionResult>,
    /// The accuracy check, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracyResult>,
    /// Checks that were not run, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

impl Quality {
    /// Builds the section from its parts; the decision is the worst of them.
    pub fn new(
        distributions: Vec<DistributionResult>,
        accuracy: Option<AccuracyResult>,
        skipped: Vec<String>,
    ) -> Quality {
        let decisions = distributions
            .iter()
            .map(|d| d.decision)
            .chain(accuracy.iter().map(|a| a.decision));
        // Nothing judged (e.g. every check skipped in a replay): the run's verdict ignores the
        // section, see `Quality::judged`.
        let decision = worst(decisions).unwrap_or(Decision::Inconclusive);
        Quality {
            decision,
            distributions,
            accuracy,
            skipped,
        }
    }

    /// Whether any check was judged (skipped checks alone do not count).
    pub fn judged(&self) -> bool {
        !self.distributions.is_empty() || self.accuracy.is_some()
    }

    /// One sentence per check.
    pub fn reasons(&self) -> Vec<String> {
        self.distributions
            .iter()
            .map(|d| d.reason.clone())
            .chain(self.accuracy.iter().map(|a| a.reason.clone()))
            .chain(self.skipped.iter().cloned())
            .collect()
    }
}

/// Fail beats Inconclusive beats Pass; `None` for no decisions.
pub(crate) fn worst(decisions: impl IntoIterator<Item = Decision>) -> Option<Decision> {
    decisions.into_iter().max_by_key(|d| match d {
        Decision::Pass => 0,
        Decision::Inconclusive => 1,
        Decision::Fail => 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(max_drop: Option<f64>) -> AccuracyCheck {
        AccuracyCheck {
            url: "http://canary/predict".to_owned(),
            dataset: PathBuf::from("eval.jsonl"),
            prediction: default_prediction(),
            min_accuracy: 0.70,
            max_drop,
        }
    }

    fn scored(correct: usize, answered: usize, errors: usize) -> Scored {
        Scored {
            answered,
            correct,
            errors,
        }
    }

    #[test]
    fn accuracy_table() {
        let cases = [
            (
                None,
                scored(80, 100, 0),
                None,
                Decision::Pass,
                "`accuracy` passed: 80 of 100 correct = 0.8 (min 0.7)",
            ),
            (
                None,
                scored(69, 100, 0),
                None,
                Decision::Fail,
                "`accuracy` failed: 69 of 100 correct = 0.69 (min 0.7)",
            ),
            (
                None,
                scored(40, 40, 60),
                None,
                Decision::Inconclusive,
                "`accuracy` not judged: the canary answered 40 of 100 examples (60 errors)",
            ),
            (
                Some(0.02),
                scored(750, 1000, 0),
                Some(scored(800, 1000, 0)),
                Decision::Fail,
                "`accuracy` failed: 750 of 1000 correct = 0.75 (min 0.7); `stable` 800 of 1000 = 0.8, drop 0.05 (max 0.02, p = 0.00371)",
            ),
            (
                Some(0.02),
                scored(790, 1000, 0),
                Some(scored(800, 1000, 0)),
                Decision::Pass,
                "`accuracy` passed: 790 of 1000 correct = 0.79 (min 0.7); `stable` 800 of 1000 = 0.8, drop 0.01 (max 0.02, p = 0.2898)",
            ),
        ];
        for (max_drop, canary, baseline, decision, reason) in cases {
            let result = judge_accuracy(&check(max_drop), 0.98, "stable", canary, baseline);
            assert_eq!(
                (result.decision, result.reason.as_str()),
                (decision, reason)
            );
        }
    }

    #[test]
    fn distribution_drift() {
        let plan = QualityPlan::default();
        let grid = |n: usize, shift: f64| -> Vec<f64> {
            (0..n)
                .map(|i| (i as f64 + 0.5) / n as f64 + shift)
                .collect()
        };
        let same = judge_distribution(&plan, "score", &grid(200, 0.0), &grid(300, 0.0));
        assert_eq!(same.decision, Decision::Pass, "{}", same.reason);
        let shifted = judge_distribution(&plan, "score", &grid(200, 0.3), &grid(300, 0.0));
        assert_eq!(shifted.decision, Decision::Fail, "{}", shifted.reason);
        assert!(
            shifted
                .reason
                .starts_with("`score` failed: canary predictions drifted from `stable`; PSI ")
        );
        let few = judge_distribution(&plan, "score", &grid(20, 0.0), &grid(300, 0.0));
        assert_eq!(few.decision, Decision::Inconclusive);
        assert_eq!(
            few.reason,
            "`score` not judged: too few predictions (canary 20, stable 300; at least 50 each are required)"
        );
    }
}
