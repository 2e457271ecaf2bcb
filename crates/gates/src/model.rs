//! The model gate: the candidate version must be READY, meet each metric's bounds, and not regress
//! against the version serving now beyond a per-metric tolerance.
//!
//! Defaults come from the seed pipelines: accuracy ≥ 0.85, f1 ≥ 0.80, and accuracy may drop at
//! most 0.01 against what serves now.
//!
//! A metric that is NaN or infinite fails every rule that reads it: IEEE comparisons with NaN are
//! all false, and a gate written as "fail if value < min" would let NaN through. Each comparison
//! here is written as "pass only if" and non-finite values are refused before comparing, so a
//! broken training run can never pass by accident. The same holds for the serving baseline: a
//! non-finite baseline fails the regression check rather than skipping it, because "we cannot
//! tell" is not "no regression".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use slipway_core::ModelVersion;

use crate::{CheckStatus, GateReport};

const GATE: &str = "model";

/// Slack for the regression comparison, so that `0.94` against `0.95` with tolerance `0.01`
/// passes despite binary floating point (`0.95 - 0.01` is `0.9399999999999999`).
const FLOAT_SLACK: f64 = 1e-9;

/// Bounds for one metric (`[policy.model.metrics.<name>]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MetricRule {
    /// Lowest acceptable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Highest acceptable value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// How far the candidate may fall below the serving version (for higher-is-better metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_regression: Option<f64>,
}

/// The model gate's policy (`[policy.model]`).
///
/// Setting `metrics` in the file replaces the default rules as a whole: a team that lists only
/// `accuracy` has dropped the default `f1` rule, which is what listing means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelPolicy {
    /// Rules per metric name.
    pub metrics: BTreeMap<String, MetricRule>,
    /// Require the version's status to be READY.
    pub require_ready: bool,
}

impl Default for ModelPolicy {
    fn default() -> ModelPolicy {
        let mut metrics = BTreeMap::new();
        metrics.insert(
            "accuracy".to_owned(),
            MetricRule {
                min: Some(0.85),
                max: None,
                max_regression: Some(0.01),
            },
        );
        metrics.insert(
            "f1".to_owned(),
            MetricRule {
                min: Some(0.80),
                max: None,
                max_regression: None,
            },
        );
        ModelPolicy {
            metrics,
            require_ready: true,
        }
    }
}

/// The version serving now, and its metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ServingModel {
    /// Which version serves.
    pub version: ModelVersion,
    /// Its run metrics.
    pub metrics: BTreeMap<String, f64>,
}

/// What the model gate judges: collected by the pipeline from the model registry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEvidence {
    /// The candidate version.
    pub candidate: ModelVersion,
    /// Candidate status as the registry spells it (`READY`, `PENDING_REGISTRATION`, …).
    pub status: String,
    /// Candidate run metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The version serving now, if anything serves.
    pub serving: Option<ServingModel>,
}

/// Judges the evidence: one check for the status, one per configured bound, one per regression
/// tolerance.
pub fn evaluate(policy: &ModelPolicy, evidence: &ModelEvidence) -> GateReport {
    let mut report = GateReport::default();
    let candidate = &evidence.candidate;
    if policy.require_ready {
        let status = if evidence.status == "READY" {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        };
        report.push(
            GATE,
            "status is READY",
            status,
            format!("{candidate} is {}", evidence.status),
        );
    }
    for (metric, rule) in &policy.metrics {
        let value = evidence.metrics.get(metric).copied();
        let bounds = [
            (
                ">=",
                rule.min,
                (|v, limit| v >= limit) as fn(f64, f64) -> bool,
            ),
            ("<=", rule.max, |v, limit| v <= limit),
        ];
        for (bound, limit, within) in bounds {
            let Some(limit) = limit else { continue };
            let name = format!("{metric} {bound} {limit}");
            let (status, reason) = match value {
                None => (
                    CheckStatus::Fail,
                    format!("{candidate} logged no `{metric}` metric"),
                ),
                Some(v) if !v.is_finite() => (
                    CheckStatus::Fail,
                    format!("{metric} is {v}, not a finite number"),
                ),
                Some(v) if within(v, limit) => (CheckStatus::Pass, format!("{metric} is {v}")),
                Some(v) => (CheckStatus::Fail, format!("{metric} is {v}")),
            };
            report.push(GATE, name, status, reason);
        }
        if let Some(tolerance) = rule.max_regression {
            let name = format!("{metric} no regression (tolerance {tolerance})");
            let (status, reason) = regression(metric, tolerance, value, evidence);
            report.push(GATE, name, status, reason);
        }
    }
    report
}

fn regression(
    metric: &str,
    tolerance: f64,
    value: Option<f64>,
    evidence: &ModelEvidence,
) -> (CheckStatus, String) {
    let Some(serving) = &evidence.serving else {
        return (CheckStatus::Skip, "nothing serves yet".to_owned());
    };
    let serving_version = &serving.version;
    if *serving_version == evidence.candidate {
        return (
            CheckStatus::Skip,
            format!("{serving_version} already serves; nothing to compare against"),
        );
    }
    let Some(value) = value else {
        return (
            CheckStatus::Fail,
            format!("{} logged no `{metric}` metric", evidence.candidate),
        );
    };
    if !value.is_finite() {
        return (
            CheckStatus::Fail,
            format!("{metric} is {value}, not a finite number"),
        );
    }
    match serving.metrics.get(metric).copied() {
        None => (
            CheckStatus::Skip,
            format!("serving {serving_version} logged no `{metric}` metric"),
        ),
        Some(baseline) if !baseline.is_finite() => (
            CheckStatus::Fail,
            format!(
                "serving {serving_version} has {metric} {baseline}, so a regression cannot be ruled out"
            ),
        ),
        Some(baseline) if value >= baseline - tolerance - FLOAT_SLACK => (
            CheckStatus::Pass,
            format!("{value} against {baseline} serving ({serving_version})"),
        ),
        Some(baseline) => (
            CheckStatus::Fail,
            format!(
                "{value} is below {baseline} serving ({serving_version}) by more than {tolerance}"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(number: u64) -> ModelVersion {
        ModelVersion {
            name: "iris".to_owned(),
            version: number,
        }
    }

    fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn evidence(candidate: &[(&str, f64)], serving: Option<&[(&str, f64)]>) -> ModelEvidence {
        ModelEvidence {
            candidate: version(2),
            status: "READY".into(),
            metrics: metrics(candidate),
            serving: serving.map(|pairs| ServingModel {
                version: version(1),
                metrics: metrics(pairs),
            }),
        }
    }

    /// Renders every check as `status name: reason`, one per line, for table comparisons.
    fn outcome(report: &GateReport) -> Vec<String> {
        report
            .checks
            .iter()
            .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.reason))
            .collect()
    }

    #[track_caller]
    fn check(policy: &ModelPolicy, evidence: &ModelEvidence, want: &[&str]) {
        let got = outcome(&evaluate(policy, evidence));
        assert_eq!(got, want);
    }

    #[test]
    fn lists_every_check_and_fails_on_any() {
        let policy = ModelPolicy::default();
        let good = evaluate(
            &policy,
            &evidence(
                &[("accuracy", 0.93), ("f1", 0.91)],
                Some(&[("accuracy", 0.935)]),
            ),
        );
        assert!(good.passed(), "{good:?}");
        assert_eq!(good.summary(), "4 passed, 0 failed, 0 skipped");

        let regressed = evaluate(
            &policy,
            &evidence(
                &[("accuracy", 0.90), ("f1", 0.70)],
                Some(&[("accuracy", 0.95)]),
            ),
        );
        let failed: Vec<_> = regressed
            .failures()
            .map(|check| check.name.as_str())
            .collect();
        assert_eq!(
            failed,
            ["accuracy no regression (tolerance 0.01)", "f1 >= 0.8"]
        );

        let first = evaluate(&policy, &evidence(&[("accuracy", 0.86)], None));
        assert_eq!(first.summary(), "2 passed, 1 failed, 1 skipped");
        assert!(
            first
                .checks
                .iter()
                .any(|c| c.reason == "iris/2 logged no `f1` metric")
        );
    }

    #[test]
    fn rules() {
        let accuracy_only = |rule: MetricRule| ModelPolicy {
            metrics: [("accuracy".to_owned(), rule)].into_iter().collect(),
            require_ready: false,
        };
        let min = accuracy_only(MetricRule {
            min: Some(0.85),
            ..MetricRule::default()
        });
        let max = accuracy_only(MetricRule {
            max: Some(0.99),
            ..MetricRule::default()
        });
        let regression = accuracy_only(MetricRule {
            max_regression: Some(0.01),
            ..MetricRule::default()
        });
        let cases: &[(&str, &ModelPolicy, ModelEvidence, &[&str])] = &[
            (
                "min exactly met passes",
                &min,
                evidence(&[("accuracy", 0.85)], None),
                &["pass accuracy >= 0.85: accuracy is 0.85"],
            ),
            (
                "just below min fails",
                &min,
                evidence(&[("accuracy", 0.8499)], None),
                &["fail accuracy >= 0.85: accuracy is 0.8499"],
            ),
            (
                "NaN fails min",
                &min,
                evidence(&[("accuracy", f64::NAN)], None),
                &["fail accuracy >= 0.85: accuracy is NaN, not a finite number"],
            ),
            (
                "infinity fails min",
                &min,
                evidence(&[("accuracy", f64::INFINITY)], None),
                &["fail accuracy >= 0.85: accuracy is inf, not a finite number"],
            ),
            (
                "NaN fails max",
                &max,
                evidence(&[("accuracy", f64::NAN)], None),
                &["fail accuracy <= 0.99: accuracy is NaN, not a finite number"],
            ),
            (
                "above max fails",
                &max,
                evidence(&[("accuracy", 1.0)], None),
                &["fail accuracy <= 0.99: accuracy is 1"],
            ),
            (
                "missing metric fails",
                &max,
                evidence(&[("f1", 0.9)], None),
                &["fail accuracy <= 0.99: iris/2 logged no `accuracy` metric"],
            ),
            (
                "drop exactly at tolerance passes",
                &regression,
                evidence(&[("accuracy", 0.94)], Some(&[("accuracy", 0.95)])),
                &[
                    "pass accuracy no regression (tolerance 0.01): 0.94 against 0.95 serving (iris/1)",
                ],
            ),
            (
                "drop beyond tolerance fails",
                &regression,
                evidence(&[("accuracy", 0.9389)], Some(&[("accuracy", 0.95)])),
                &[
                    "fail accuracy no regression (tolerance 0.01): 0.9389 is below 0.95 serving (iris/1) by more than 0.01",
                ],
            ),
            (
                "NaN candidate fails regression",
                &regression,
                evidence(&[("accuracy", f64::NAN)], Some(&[("accuracy", 0.95)])),
                &[
                    "fail accuracy no regression (tolerance 0.01): accuracy is NaN, not a finite number",
                ],
            ),
            (
                "NaN baseline fails regression",
                &regression,
                evidence(&[("accuracy", 0.96)], Some(&[("accuracy", f64::NAN)])),
                &[
                    "fail accuracy no regression (tolerance 0.01): serving iris/1 has accuracy NaN, so a regression cannot be ruled out",
                ],
            ),
            (
                "baseline without the metric skips",
                &regression,
                evidence(&[("accuracy", 0.96)], Some(&[("f1", 0.9)])),
                &[
                    "skip accuracy no regression (tolerance 0.01): serving iris/1 logged no `accuracy` metric",
                ],
            ),
            (
                "nothing serving skips",
                &regression,
                evidence(&[("accuracy", 0.96)], None),
                &["skip accuracy no regression (tolerance 0.01): nothing serves yet"],
            ),
            (
                "candidate missing the metric fails regression",
                &regression,
                evidence(&[], Some(&[("accuracy", 0.95)])),
                &[
                    "fail accuracy no regression (tolerance 0.01): iris/2 logged no `accuracy` metric",
                ],
            ),
        ];
        for (what, policy, evidence, want) in cases {
            let got = outcome(&evaluate(policy, evidence));
            assert_eq!(got, *want, "case: {what}");
        }
    }

    /// Every bound at, just inside and just outside its edge.
    #[test]
    fn boundaries() {
        let rule = |min, max, max_regression| ModelPolicy {
            metrics: [(
                "accuracy".to_owned(),
                MetricRule {
                    min,
                    max,
                    max_regression,
                },
            )]
            .into_iter()
            .collect(),
            require_ready: false,
        };
        let band = rule(Some(0.85), Some(0.99), None);
        let point = rule(Some(0.9), Some(0.9), None);
        let tight = rule(None, None, Some(0.0));
        let wide = rule(None, None, Some(0.1));
        let cases: &[(&str, &ModelPolicy, ModelEvidence, &[&str])] = &[
            (
                "exactly at min and inside max",
                &band,
                evidence(&[("accuracy", 0.85)], None),
                &[
                    "pass accuracy >= 0.85: accuracy is 0.85",
                    "pass accuracy <= 0.99: accuracy is 0.85",
                ],
            ),
            (
                "exactly at max passes",
                &band,
                evidence(&[("accuracy", 0.99)], None),
                &[
                    "pass accuracy >= 0.85: accuracy is 0.99",
                    "pass accuracy <= 0.99: accuracy is 0.99",
                ],
            ),
            (
                "just above max fails",
                &band,
                evidence(&[("accuracy", 0.990_001)], None),
                &[
                    "pass accuracy >= 0.85: accuracy is 0.990001",
                    "fail accuracy <= 0.99: accuracy is 0.990001",
                ],
            ),
            (
                "the next float above max fails: no slack on bounds",
                &band,
                evidence(
                    &[("accuracy", f64::from_bits(0.99_f64.to_bits() + 1))],
                    None,
                ),
                &[
                    "pass accuracy >= 0.85: accuracy is 0.9900000000000001",
                    "fail accuracy <= 0.99: accuracy is 0.9900000000000001",
                ],
            ),
            (
                "the next float below min fails",
                &band,
                evidence(
                    &[("accuracy", f64::from_bits(0.85_f64.to_bits() - 1))],
                    None,
                ),
                &[
                    "fail accuracy >= 0.85: accuracy is 0.8499999999999999",
                    "pass accuracy <= 0.99: accuracy is 0.8499999999999999",
                ],
            ),
            (
                "min equal to max admits exactly that value",
                &point,
                evidence(&[("accuracy", 0.9)], None),
                &[
                    "pass accuracy >= 0.9: accuracy is 0.9",
                    "pass accuracy <= 0.9: accuracy is 0.9",
                ],
            ),
            (
                "min equal to max refuses a neighbour",
                &point,
                evidence(&[("accuracy", 0.900_1)], None),
                &[
                    "pass accuracy >= 0.9: accuracy is 0.9001",
                    "fail accuracy <= 0.9: accuracy is 0.9001",
                ],
            ),
            (
                "tolerance 0: equal passes",
                &tight,
                evidence(&[("accuracy", 0.95)], Some(&[("accuracy", 0.95)])),
                &["pass accuracy no regression (tolerance 0): 0.95 against 0.95 serving (iris/1)"],
            ),
            (
                "tolerance 0: better passes",
                &tight,
                evidence(&[("accuracy", 0.96)], Some(&[("accuracy", 0.95)])),
                &["pass accuracy no regression (tolerance 0): 0.96 against 0.95 serving (iris/1)"],
            ),
            (
                "tolerance 0: a millionth worse fails",
                &tight,
                evidence(&[("accuracy", 0.949_999)], Some(&[("accuracy", 0.95)])),
                &[
                    "fail accuracy no regression (tolerance 0): 0.949999 is below 0.95 serving (iris/1) by more than 0",
                ],
            ),
            (
                // 0.8 - 0.1 is 0.7000000000000001 in binary floating point: without the slack
                // a drop of exactly the tolerance would fail.
                "drop exactly at tolerance, rounding against us",
                &wide,
                evidence(&[("accuracy", 0.7)], Some(&[("accuracy", 0.8)])),
                &["pass accuracy no regression (tolerance 0.1): 0.7 against 0.8 serving (iris/1)"],
            ),
            (
                "drop a millionth beyond tolerance fails despite the slack",
                &wide,
                evidence(&[("accuracy", 0.699_999)], Some(&[("accuracy", 0.8)])),
                &[
                    "fail accuracy no regression (tolerance 0.1): 0.699999 is below 0.8 serving (iris/1) by more than 0.1",
                ],
            ),
        ];
        for (what, policy, evidence, want) in cases {
            let got = outcome(&evaluate(policy, evidence));
            assert_eq!(got, *want, "case: {what}");
        }
    }

    #[test]
    fn re_releasing_the_serving_version_skips_regression() {
        let policy = ModelPolicy {
            metrics: [(
                "accuracy".to_owned(),
                MetricRule {
                    max_regression: Some(0.0),
                    ..MetricRule::default()
                },
            )]
            .into_iter()
            .collect(),
            require_ready: false,
        };
        let mut same = evidence(&[("accuracy", 0.9)], Some(&[("accuracy", 0.9)]));
        same.serving = same.serving.map(|serving| ServingModel {
            version: version(2),
            ..serving
        });
        check(
            &policy,
            &same,
            &[
                "skip accuracy no regression (tolerance 0): iris/2 already serves; nothing to compare against",
            ],
        );
    }

    #[test]
    fn status_must_be_ready() {
        let policy = ModelPolicy {
            metrics: BTreeMap::new(),
            require_ready: true,
        };
        for (status, want) in [
            ("READY", "pass status is READY: iris/2 is READY"),
            (
                "PENDING_REGISTRATION",
                "fail status is READY: iris/2 is PENDING_REGISTRATION",
            ),
            ("ready", "fail status is READY: iris/2 is ready"),
        ] {
            let mut ev = evidence(&[], None);
            ev.status = status.to_owned();
            check(&policy, &ev, &[want]);
        }
        let relaxed = ModelPolicy {
            require_ready: false,
            ..policy
        };
        let mut pending = evidence(&[], None);
        pending.status = "FAILED_REGISTRATION".to_owned();
        check(&relaxed, &pending, &[]);
    }
}
