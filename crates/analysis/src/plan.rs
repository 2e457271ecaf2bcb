//! The analysis plan: which metrics to check, their thresholds, and how many measurements to take.
//!
//! Durations are written the friendly way (`"1m"`, `"30s"`, `"1m 30s"`; ISO 8601 `"PT1M"` also
//! parses) through jiff's serde helpers, which the workspace already depends on: no extra
//! humantime crate.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::Error;
use crate::compare::ComparePlan;
use crate::quality::QualityPlan;
use crate::smoke::SmokeCheck;
use crate::template::{TemplateVars, promql_duration, render};

/// What a measurement with no data (empty result or NaN) counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoDataPolicy {
    /// A failed measurement: counts toward `failure_limit`.
    Fail,
    /// A successful measurement, e.g. "no 5xx series at all" means no errors.
    Pass,
    /// An inconclusive measurement: counts toward `inconclusive_limit`.
    #[default]
    Inconclusive,
}

/// One metric to measure and its thresholds. At least one of `max` and `min` is required.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricCheck {
    /// Unique name within the plan, used in reports.
    pub name: String,
    /// Query template; see [`crate::render`] for placeholders. Must yield one number.
    pub query: String,
    /// A value above this fails the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A value below this fails the measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Overrides the plan-wide [`AnalysisPlan::no_data`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<NoDataPolicy>,
}

/// A threshold analysis, with Argo Rollouts' limit semantics.
///
/// Each metric is measured until it has `count` measurements that are not errors. It fails once
/// more than `failure_limit` measurements breach a threshold, is inconclusive once more than
/// `inconclusive_limit` are inconclusive, and is inconclusive ("measurement errors, not a failed
/// canary") once more than `consecutive_error_limit` measurements in a row could not be taken.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisPlan {
    /// Time between measurements; also the default `{{interval}}` rate window.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub interval: Duration,
    /// Measurements (not counting errors) per metric for a Pass.
    pub count: u32,
    /// Failed measurements tolerated per metric.
    pub failure_limit: u32,
    /// Consecutive measurement errors tolerated per metric.
    pub consecutive_error_limit: u32,
    /// Inconclusive measurements tolerated per metric.
    pub inconclusive_limit: u32,
    /// What no data means, for metrics that don't say.
    pub no_data: NoDataPolicy,
    /// The threshold checks.
    pub metrics: Vec<MetricCheck>,
    /// Statistical comparison of the canary with a baseline track (`[compare]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<ComparePlan>,
    /// Model quality: prediction drift and accuracy (`[quality]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<QualityPlan>,
    /// HTTP smoke tests against the canary (`[[smoke]]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<SmokeCheck>,
}

/// Independent points per side a `[compare]` window needs for 90 % detection of a variance ×3
/// regression (SIMULATION.md, the line under the table).
const VARIANCE_POINTS: u64 = 116;

/// Labels shared by the default checks' queries.
const SELECTOR: &str = r#"namespace="{{namespace}}",release="{{release}}",track="{{track}}""#;

impl Default for AnalysisPlan {
    /// The seed pipelines' checks: 5xx ratio ≤ 1 % and p99 latency ≤ 2 s, 5 measurements 1 m apart.
    fn default() -> AnalysisPlan {
        AnalysisPlan {
            interval: Duration::from_secs(60),
            count: 5,
            failure_limit: 0,
            consecutive_error_limit: 4,
            inconclusive_limit: 0,
            no_data: NoDataPolicy::Inconclusive,
            metrics: vec![
                MetricCheck {
                    name: "error-rate".to_owned(),
                    query: format!(
                        r#"sum(rate(model_requests_total{{{SELECTOR},code=~"5.."}}[{{{{interval}}}}])) / sum(rate(model_requests_total{{{SELECTOR}}}[{{{{interval}}}}]))"#
                    ),
                    max: Some(0.01),
                    min: None,
                    no_data: None,
                },
                MetricCheck {
                    name: "p99-latency".to_owned(),
                    query: format!(
                        r#"histogram_quantile(0.99, sum by (le)(rate(model_request_duration_seconds_bucket{{{SELECTOR}}}[{{{{interval}}}}])))"#
                    ),
                    max: Some(2.0),
                    min: None,
                    no_data: None,
                },
            ],
            compare: None,
            quality: None,
            smoke: Vec::new(),
        }
    }
}

impl AnalysisPlan {
    /// Checks everything that deserialization cannot: counts, names, thresholds, templates.
    /// Reports every problem at once.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if self.count == 0 {
            problems.push("`count` is 0; take at least one measurement".to_owned());
        }
        // With `inconclusive_limit >= count` every measurement can be missing and the metric
        // still reaches `count` without exceeding the limit: Passed on no data at all.
        if self.count > 0 && self.inconclusive_limit >= self.count && !self.metrics.is_empty() {
            problems.push(format!(
                "`inconclusive_limit` {} is not below `count` {}; a metric with no data at all would pass",
                self.inconclusive_limit, self.count
            ));
        }
        if promql_duration(self.interval).is_none() {
            problems.push(format!(
                "`interval` {:?} must be a positive whole number of milliseconds",
                self.interval
            ));
        }
        if self.metrics.is_empty()
            && self.compare.is_none()
            && self.quality.is_none()
            && self.smoke.is_empty()
        {
            problems.push(
                "`metrics`, `compare`, `quality` and `smoke` are all empty; an analysis without checks proves nothing"
                    .to_owned(),
            );
        }
        let mut seen = BTreeSet::new();
        let probe = TemplateVars {
            interval: Some(Duration::from_secs(60)),
            ..TemplateVars::new("release", "namespace", "track")
        };
        for check in &self.metrics {
            let name = &check.name;
            if name.trim().is_empty() {
                problems.push("a metric has an empty `name`".to_owned());
            } else if !seen.insert(name.as_str()) {
                problems.push(format!("metric `{name}` is listed twice"));
            }
            match (check.min, check.max) {
                (None, None) => {
                    problems.push(format!("metric `{name}` has neither `max` nor `min`"));
                }
                (Some(min), Some(max)) if min > max => problems.push(format!(
                    "metric `{name}` has `min` {min} above `max` {max}; no value can pass"
                )),
                _ => {}
            }
            for (field, value) in [("min", check.min), ("max", check.max)] {
                if value.is_some_and(f64::is_nan) {
                    problems.push(format!("metric `{name}` has a NaN `{field}`"));
                }
            }
            if let Err(Error::Template { problem, .. }) = render(&check.query, &probe) {
                problems.push(format!("metric `{name}` query: {problem}"));
            }
        }
        let templates = self
            .compare
            .iter()
            .flat_map(|c| {
                c.metrics
                    .iter()
                    .map(|m| ("compare metric", &m.name, &m.query))
            })
            .chain(self.quality.iter().flat_map(|q| {
                q.distributions.iter().filter_map(|d| {
                    d.query
                        .as_ref()
                        .or(d.url.as_ref())
                        .map(|t| ("quality distribution", &d.name, t))
                })
            }))
            .chain(self.smoke.iter().map(|s| ("smoke check", &s.name, &s.url)));
        for (kind, name, template) in templates {
            if let Err(Error::Template { problem, .. }) = render(template, &probe) {
                problems.push(format!("{kind} `{name}`: {problem}"));
            }
        }
        if let Some(compare) = &self.compare {
            problems.extend(compare.problems());
        }
        if let Some(quality) = &self.quality {
            problems.extend(quality.problems());
        }
        let mut smoke_names = BTreeSet::new();
        for check in &self.smoke {
            if !smoke_names.insert(check.name.as_str()) {
                problems.push(format!("smoke check `{}` is listed twice", check.name));
            }
            problems.extend(check.problems());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidPlan { problems })
        }
    }

    /// Evidence a valid plan lacks for the detection rates SIMULATION.md publishes, one line
    /// each, for the caller to show as warnings: a `[compare]` window too short to see a
    /// variance-only regression (about 116 independent points per side are needed for 90 %).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if let Some(compare) = &self.compare
            && !compare.step.is_zero()
            && compare.metrics.iter().any(|m| m.count_query().is_some())
        {
            let window = self.interval.as_secs_f64() * f64::from(self.count.saturating_sub(1));
            let judged = (window - compare.warmup.as_secs_f64()).max(0.0);
            let points = (judged / compare.step.as_secs_f64()).floor() as u64 + 1;
            if points < VARIANCE_POINTS {
                warnings.push(format!(
                    "`compare` judges about {points} points per side (`count` × `interval` after `compare.warmup`, every `compare.step`); a variance-only regression (×3) needs about {VARIANCE_POINTS} independent points to be caught 90 % of the time (crates/analysis/SIMULATION.md): raise `count` or lower `compare.step` with rate windows no longer than the step"
                ));
            }
        }
        warnings
    }

    /// The no-data policy that applies to `check`.
    pub fn no_data_for(&self, check: &MetricCheck) -> NoDataPolicy {
        check.no_data.unwrap_or(self.no_data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_is_valid_and_round_trips() {
        let plan = AnalysisPlan::default();
        plan.validate().expect("default plan is valid");
        let json = serde_json::to_string(&plan).expect("serialize");
        let back: AnalysisPlan = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, plan);
        insta::assert_json_snapshot!(plan);
    }

    #[test]
    fn friendly_durations_and_partial_plans() {
        let plan: AnalysisPlan = serde_json::from_str(
            r#"{"interval": "30s", "count": 3, "no_data": "pass",
                "metrics": [{"name": "rps", "query": "sum(rate(x[{{interval}}]))", "min": 1, "no_data": "fail"}]}"#,
        )
        .expect("parse");
        assert_eq!(plan.interval, Duration::from_secs(30));
        assert_eq!(plan.count, 3);
        assert_eq!(
            plan.consecutive_error_limit, 4,
            "unset fields keep defaults"
        );
        assert_eq!(plan.no_data_for(&plan.metrics[0]), NoDataPolicy::Fail);
        let iso: AnalysisPlan = serde_json::from_str(r#"{"interval": "PT2M"}"#).expect("iso 8601");
        assert_eq!(iso.interval, Duration::from_secs(120));
    }

    #[test]
    fn warns_when_the_compare_window_is_short_of_evidence() {
        let mut plan: AnalysisPlan =
            toml::from_str(include_str!("../analysis.example.toml")).expect("example parses");
        plan.validate().expect("example is valid");
        let warnings = plan.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("`compare` judges about 75 points per side"),
            "{warnings:?}"
        );
        plan.count = 61;
        assert_eq!(plan.warnings(), Vec::<String>::new());
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = serde_json::from_str::<AnalysisPlan>(r#"{"intervall": "1m"}"#)
            .expect_err("typo must be rejected");
        assert!(
            err.to_string().contains("unknown field `intervall`"),
            "{err}"
        );
        let err = serde_json::from_str::<AnalysisPlan>(
            r#"{"metrics": [{"name": "a", "query": "q", "maximum": 1}]}"#,
        )
        .expect_err("typo must be rejected");
        assert!(err.to_string().contains("unknown field `maximum`"), "{err}");
    }

    #[test]
    fn validate_lists_every_problem() {
        let plan = AnalysisPlan {
            count: 0,
            interval: Duration::ZERO,
            metrics: vec![
                MetricCheck {
                    name: "a".to_owned(),
                    query: "x[{{window}}]".to_owned(),
                    max: None,
                    min: None,
                    no_data: None,
                },
                MetricCheck {
                    name: "a".to_owned(),
                    query: "x".to_owned(),
                    max: Some(1.0),
                    min: Some(2.0),
                    no_data: None,
                },
            ],
            ..AnalysisPlan::default()
        };
        let err = plan.validate().expect_err("invalid");
        let silent = AnalysisPlan {
            count: 3,
            inconclusive_limit: 3,
            ..AnalysisPlan::default()
        };
        let problem = silent
            .validate()
            .expect_err("passes on no data")
            .to_string();
        assert!(
            problem.contains("`inconclusive_limit` 3 is not below `count` 3; a metric with no data at all would pass"),
            "{problem}"
        );
        insta::assert_snapshot!(err.to_string(), @r"
        invalid analysis plan:
          - `count` is 0; take at least one measurement
          - `interval` 0ns must be a positive whole number of milliseconds
          - metric `a` has neither `max` nor `min`
          - metric `a` query: unknown placeholder `{{window}}`
          - metric `a` is listed twice
          - metric `a` has `min` 2 above `max` 1; no value can pass

        hint: fix the `analysis` section of the pipeline config
        ");
    }
}
