//! The model gate: the candidate version must be READY, meet each metric's bounds, and not regress
//! against the version serving now beyond a per-metric tolerance.
//!
//! Defaults come from the seed pipelines: accuracy ≥ 0.85, f1 ≥ 0.80, and accuracy may drop at
//! most 0.01 against what serves now.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{CheckStatus, GateReport};

const GATE: &str = "model";

/// Bounds for one metric.
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

/// The model gate's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPolicy {
    /// Rules per metric name.
    pub metrics: BTreeMap<String, MetricRule>,
    /// Require the version's status to be READY.
    pub require_ready: bool,
}

impl Default for ModelPolicy {
    fn default() -> ModelPolicy {
        let mut metrics = BTreeMap::new();
        metrics.insert("accuracy".to_owned(), MetricRule { min: Some(0.85), max: None, max_regression: Some(0.01) });
        metrics.insert("f1".to_owned(), MetricRule { min: Some(0.80), max: None, max_regression: None });
        ModelPolicy { metrics, require_ready: true }
    }
}

/// What the model gate judges: collected by the pipeline from the model registry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEvidence {
    /// `name/version` of the candidate.
    pub candidate: String,
    /// Candidate status as the registry spells it (`READY`, …).
    pub status: String,
    /// Candidate run metrics.
    pub metrics: BTreeMap<String, f64>,
    /// The version serving now and its metrics, if anything serves.
    pub serving: Option<(String, BTreeMap<String, f64>)>,
}

/// Judges the evidence.
pub fn evaluate(policy: &ModelPolicy, evidence: &ModelEvidence) -> GateReport {
    let mut report = GateReport::default();
    if policy.require_ready {
        let status = if evidence.status == "READY" { CheckStatus::Pass } else { CheckStatus::Fail };
        report.push(GATE, "status is READY", status, format!("{} is {}", evidence.candidate, evidence.status));
    }
    for (metric, rule) in &policy.metrics {
        let value = evidence.metrics.get(metric).copied();
        for (bound, limit, ok) in [
            (">=", rule.min, value.zip(rule.min).map(|(v, l)| v >= l)),
            ("<=", rule.max, value.zip(rule.max).map(|(v, l)| v <= l)),
        ] {
            let Some(limit) = limit else { continue };
            let name = format!("{metric} {bound} {limit}");
            match (value, ok) {
                (Some(value), Some(true)) => report.push(GATE, name, CheckStatus::Pass, format!("{metric} is {value}")),
                (Some(value), _) => report.push(GATE, name, CheckStatus::Fail, format!("{metric} is {value}")),
                (None, _) => report.push(
                    GATE,
                    name,
                    CheckStatus::Fail,
                    format!("{} logged no `{metric}` metric", evidence.candidate),
                ),
            }
        }
        if let Some(tolerance) = rule.max_regression {
            let name = format!("{metric} no regression (tolerance {tolerance})");
            match (&evidence.serving, value) {
                (None, _) => report.push(GATE, name, CheckStatus::Skip, "nothing serves yet"),
                (Some((serving, metrics)), Some(value)) => match metrics.get(metric) {
                    None => report.push(GATE, name, CheckStatus::Skip, format!("serving {serving} has no `{metric}`")),
                    Some(baseline) if value >= baseline - tolerance - f64::EPSILON => report.push(
                        GATE,
                        name,
                        CheckStatus::Pass,
                        format!("{value} against {baseline} serving ({serving})"),
                    ),
                    Some(baseline) => report.push(
                        GATE,
                        name,
                        CheckStatus::Fail,
                        format!("{value} is below {baseline} serving ({serving}) by more than {tolerance}"),
                    ),
                },
                (Some(_), None) => report.push(GATE, name, CheckStatus::Fail, format!("candidate has no `{metric}`")),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(metrics: &[(&str, f64)], serving: Option<&[(&str, f64)]>) -> ModelEvidence {
        let map = |pairs: &[(&str, f64)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect();
        ModelEvidence {
            candidate: "iris/2".into(),
            status: "READY".into(),
            metrics: map(metrics),
            serving: serving.map(|pairs| ("iris/1".to_owned(), map(pairs))),
        }
    }

    #[test]
    fn lists_every_check_and_fails_on_any() {
        let policy = ModelPolicy::default();
        let good = evaluate(&policy, &evidence(&[("accuracy", 0.93), ("f1", 0.91)], Some(&[("accuracy", 0.935)])));
        assert!(good.passed(), "{good:?}");
        assert_eq!(good.summary(), "4 passed, 0 failed, 0 skipped");

        let regressed = evaluate(&policy, &evidence(&[("accuracy", 0.90), ("f1", 0.70)], Some(&[("accuracy", 0.95)])));
        let failed: Vec<_> = regressed.failures().map(|check| check.name.as_str()).collect();
        assert_eq!(failed, ["accuracy no regression (tolerance 0.01)", "f1 >= 0.8"]);

        let first = evaluate(&policy, &evidence(&[("accuracy", 0.86)], None));
        assert_eq!(first.summary(), "2 passed, 1 failed, 1 skipped");
        assert!(first.checks.iter().any(|c| c.reason == "iris/2 logged no `f1` metric"));
    }
}
