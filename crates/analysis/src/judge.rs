//! The pure decision: [`judge`] turns a plan and the measurements taken so far into a [`Verdict`].
//!
//! Semantics follow Argo Rollouts' analysis controller. Every measurement is classified as
//! successful, failed, inconclusive or an error. Errors do not count toward `count`, and any other
//! measurement resets the consecutive-error counter. A metric is decided by the first limit it
//! exceeds (`failed > failure_limit` → failed, `inconclusive > inconclusive_limit` → inconclusive,
//! `consecutive errors > consecutive_error_limit` → errored) or passes once it has `count`
//! measurements; measurements after that are ignored, as Argo stops measuring.
//! One deliberate difference: Argo reports an errored metric as `Error`; we report the run as
//! Inconclusive, because an outage of the monitoring system says nothing about the canary.

use jiff::Timestamp;

use crate::plan::{AnalysisPlan, MetricCheck, NoDataPolicy};

/// What one query returned, as far as the decision is concerned.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// One number. NaN is treated as no data; infinities are compared normally.
    Value(#[serde(with = "prometheus_float")] f64),
    /// The query returned nothing.
    NoData,
    /// The measurement could not be taken; the text says why.
    Error(String),
}

/// One measurement of one metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Measurement {
    /// The [`MetricCheck::name`] it belongs to.
    pub metric: String,
    /// When it was taken (the query's evaluation time).
    pub at: Timestamp,
    /// What came back.
    pub outcome: Outcome,
}

/// The overall decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Every metric met its thresholds often enough.
    Pass,
    /// At least one metric breached its thresholds more than `failure_limit` times.
    Fail,
    /// Not enough evidence either way: inconclusive or missing data, or measurement errors.
    Inconclusive,
}

/// Where one metric stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricStatus {
    /// Needs more measurements.
    Running,
    /// Reached `count` within the limits.
    Passed,
    /// Exceeded `failure_limit`.
    Failed,
    /// Exceeded `inconclusive_limit`.
    Inconclusive,
    /// Exceeded `consecutive_error_limit`.
    Errored,
}

impl MetricStatus {
    /// Whether no further measurement can change it.
    pub fn is_decided(self) -> bool {
        self != MetricStatus::Running
    }
}

/// Counters for one metric, like Argo's `MetricResult`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricTally {
    /// The metric's name.
    pub metric: String,
    /// Where it stands.
    pub status: MetricStatus,
    /// Measurements that count toward `count` (everything but errors).
    pub measured: u32,
    /// Within thresholds (or no data under policy `pass`).
    pub successful: u32,
    /// Outside thresholds (or no data under policy `fail`).
    pub failed: u32,
    /// No data under policy `inconclusive`.
    pub inconclusive: u32,
    /// Measurement errors in total.
    pub errors: u32,
    /// Measurement errors since the last measurement that worked.
    pub consecutive_errors: u32,
}

/// The decision with its reasons: one line per metric, in plan order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// Pass, Fail or Inconclusive.
    pub decision: Decision,
    /// Why, one sentence per metric.
    pub reasons: Vec<String>,
    /// The counters behind the reasons.
    pub metrics: Vec<MetricTally>,
}

impl Verdict {
    /// Whether more measurements could still produce a Pass: no metric is decided against it and
    /// at least one still runs. [`crate::run`] stops as soon as this is false.
    pub fn needs_more(&self) -> bool {
        self.metrics
            .iter()
            .any(|m| m.status == MetricStatus::Running)
            && self
                .metrics
                .iter()
                .all(|m| matches!(m.status, MetricStatus::Running | MetricStatus::Passed))
    }
}

/// How one measurement counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

fn classify(plan: &AnalysisPlan, check: &MetricCheck, outcome: &Outcome) -> Phase {
    let no_data = || match plan.no_data_for(check) {
        NoDataPolicy::Pass => Phase::Successful,
        NoDataPolicy::Fail => Phase::Failed,
        NoDataPolicy::Inconclusive => Phase::Inconclusive,
    };
    match outcome {
        Outcome::Error(_) => Phase::Error,
        Outcome::NoData => no_data(),
        Outcome::Value(value) if value.is_nan() => no_data(),
        Outcome::Value(value) => {
            let above = check.max.is_some_and(|max| *value > max);
            let below = check.min.is_some_and(|min| *value < min);
            if above || below {
                Phase::Failed
            } else {
                Phase::Successful
            }
        }
    }
}

/// Decides. Measurements of metrics not in the plan are ignored; a metric still short of `count`
/// makes the verdict Inconclusive ("only 2 of 5 measurements").
pub fn judge(plan: &AnalysisPlan, measurements: &[Measurement]) -> Verdict {
    let mut tallies = Vec::with_capacity(plan.metrics.len());
    let mut reasons = Vec::with_capacity(plan.metrics.len());
    for check in &plan.metrics {
        let mut tally = MetricTally {
            metric: check.name.clone(),
            status: MetricStatus::Running,
            measured: 0,
            successful: 0,
            failed: 0,
            inconclusive: 0,
            errors: 0,
            consecutive_errors: 0,
        };
        // The measurement that decided the metric, or the last one seen.
        let mut last: Option<&Measurement> = None;
        let mut last_failed: Option<&Measurement> = None;
        for measurement in measurements.iter().filter(|m| m.metric == check.name) {
            if tally.status.is_decided() {
                break;
            }
            last = Some(measurement);
            match classify(plan, check, &measurement.outcome) {
                Phase::Successful => tally.successful += 1,
                Phase::Failed => {
                    tally.failed += 1;
                    last_failed = Some(measurement);
                }
                Phase::Inconclusive => tally.inconclusive += 1,
                Phase::Error => tally.errors += 1,
            }
            if matches!(measurement.outcome, Outcome::Error(_)) {
                tally.consecutive_errors += 1;
            } else {
                tally.measured += 1;
                tally.consecutive_errors = 0;
            }
            tally.status = if tally.failed > plan.failure_limit {
                MetricStatus::Failed
            } else if tally.inconclusive > plan.inconclusive_limit {
                MetricStatus::Inconclusive
            } else if tally.consecutive_errors > plan.consecutive_error_limit {
                MetricStatus::Errored
            } else if tally.measured >= plan.count {
                MetricStatus::Passed
            } else {
                MetricStatus::Running
            };
        }
        reasons.push(reason(plan, check, &tally, last, last_failed));
        tallies.push(tally);
    }

    let any = |status: MetricStatus| tallies.iter().any(|t| t.status == status);
    let decision = if any(MetricStatus::Failed) {
        Decision::Fail
    } else if tallies.is_empty() || tallies.iter().any(|t| t.status != MetricStatus::Passed) {
        Decision::Inconclusive
    } else {
        Decision::Pass
    };
    if tallies.is_empty() {
        reasons.push("the plan has no metrics, so nothing was checked".to_owned());
    }
    Verdict {
        decision,
        reasons,
        metrics: tallies,
    }
}

/// One sentence explaining where a metric stands.
fn reason(
    plan: &AnalysisPlan,
    check: &MetricCheck,
    tally: &MetricTally,
    last: Option<&Measurement>,
    last_failed: Option<&Measurement>,
) -> String {
    let name = &check.name;
    let bounds = bounds(check);
    let plural = |n: u32, word: &str| {
        if n == 1 {
            format!("{n} {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    let at = |m: Option<&Measurement>| match m {
        Some(Measurement {
            at,
            outcome: Outcome::Value(value),
            ..
        }) => format!(" (last: {} at {at})", format_value(*value)),
        Some(Measurement {
            at,
            outcome: Outcome::Error(error),
            ..
        }) => format!(
            " (last at {at}: {})",
            error.lines().next().unwrap_or_default()
        ),
        Some(Measurement {
            at,
            outcome: Outcome::NoData,
            ..
        }) => format!(" (last: no data at {at})"),
        None => String::new(),
    };
    match tally.status {
        MetricStatus::Passed => {
            let mut text = format!(
                "`{name}` passed: {} of {} within {bounds}",
                tally.successful,
                plural(tally.measured, "measurement"),
            );
            let mut tolerated = Vec::new();
            if tally.failed > 0 {
                tolerated.push(format!(
                    "{} tolerated by failure_limit {}",
                    plural(tally.failed, "failure"),
                    plan.failure_limit
                ));
            }
            if tally.inconclusive > 0 {
                tolerated.push(format!(
                    "{} without data tolerated by inconclusive_limit {}",
                    tally.inconclusive, plan.inconclusive_limit
                ));
            }
            if tally.errors > 0 {
                tolerated.push(format!(
                    "{} retried",
                    plural(tally.errors, "measurement error")
                ));
            }
            if !tolerated.is_empty() {
                text.push_str(&format!("; {}", tolerated.join(", ")));
            }
            text
        }
        MetricStatus::Failed => format!(
            "`{name}` failed: {} outside {bounds}, more than failure_limit {}{}",
            plural(tally.failed, "measurement"),
            plan.failure_limit,
            at(last_failed),
        ),
        MetricStatus::Inconclusive => format!(
            "`{name}` is inconclusive: {} without data, more than inconclusive_limit {}{}",
            plural(tally.inconclusive, "measurement"),
            plan.inconclusive_limit,
            at(last),
        ),
        MetricStatus::Errored => format!(
            "`{name}` is inconclusive: {} in a row, more than consecutive_error_limit {}; measurement errors, not a failed canary{}",
            plural(tally.consecutive_errors, "measurement error"),
            plan.consecutive_error_limit,
            at(last),
        ),
        MetricStatus::Running => format!(
            "`{name}` is incomplete: only {} of {} taken{}",
            tally.measured,
            plural(plan.count, "measurement"),
            at(last),
        ),
    }
}

/// "max 0.01", "min 1", "min 1 and max 5".
pub(crate) fn bounds(check: &MetricCheck) -> String {
    match (check.min, check.max) {
        (Some(min), Some(max)) => {
            format!("min {} and max {}", format_value(min), format_value(max))
        }
        (Some(min), None) => format!("min {}", format_value(min)),
        (None, Some(max)) => format!("max {}", format_value(max)),
        (None, None) => "no bounds".to_owned(),
    }
}

/// Formats a value the way Prometheus writes it: `NaN`, `+Inf`, `-Inf`, else shortest decimal.
pub(crate) fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        format!("{value}")
    }
}

/// Serde for `f64` that keeps NaN and infinities (JSON has no literal for them) as Prometheus'
/// strings `"NaN"`, `"+Inf"`, `"-Inf"`.
mod prometheus_float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &f64, se: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            se.serialize_f64(*value)
        } else {
            se.serialize_str(&super::format_value(*value))
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(de)? {
            Raw::Number(value) => Ok(value),
            Raw::Text(text) => crate::prometheus::parse_float(&text)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid float `{text}`"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn plan(
        limits: [u32; 3],
        no_data: NoDataPolicy,
        metric_no_data: Option<NoDataPolicy>,
    ) -> AnalysisPlan {
        let [failure_limit, consecutive_error_limit, inconclusive_limit] = limits;
        AnalysisPlan {
            count: 3,
            failure_limit,
            consecutive_error_limit,
            inconclusive_limit,
            no_data,
            metrics: vec![MetricCheck {
                name: "error-rate".to_owned(),
                query: "q".to_owned(),
                max: Some(0.01),
                min: None,
                no_data: metric_no_data,
            }],
            ..AnalysisPlan::default()
        }
    }

    /// Shorthand for measurements: a number, `-` (no data), `nan`, `inf` or `E` (error).
    fn measurements(script: &str) -> Vec<Measurement> {
        script
            .split_whitespace()
            .enumerate()
            .map(|(idx, word)| Measurement {
                metric: "error-rate".to_owned(),
                at: Timestamp::from_second(T0 + 60 * idx as i64).expect("valid"),
                outcome: match word {
                    "-" => Outcome::NoData,
                    "E" => {
                        Outcome::Error("could not query prometheus: connection refused".to_owned())
                    }
                    number => Outcome::Value(number.parse().expect("number")),
                },
            })
            .collect()
    }

    #[track_caller]
    fn check(plan: &AnalysisPlan, script: &str, expected: Decision, reason: &str) {
        let verdict = judge(plan, &measurements(script));
        assert_eq!(
            verdict.decision, expected,
            "script `{script}`: {:?}",
            verdict.reasons
        );
        assert!(
            verdict.reasons[0].contains(reason),
            "script `{script}`: reason {:?} lacks {reason:?}",
            verdict.reasons[0]
        );
    }

    #[test]
    fn thresholds_and_limits() {
        use Decision::*;
        use NoDataPolicy as P;
        let strict = plan([0, 4, 0], P::Inconclusive, None);
        let lenient = plan([1, 1, 1], P::Inconclusive, None);
        let cases: &[(&AnalysisPlan, &str, Decision, &str)] = &[
            // Thresholds.
            (
                &strict,
                "0.001 0.002 0.01",
                Pass,
                "passed: 3 of 3 measurements within max 0.01",
            ),
            (
                &strict,
                "0.001 0.02 0.001",
                Fail,
                "1 measurement outside max 0.01, more than failure_limit 0 (last: 0.02 at 2023-11-14T22:14:20Z)",
            ),
            (&strict, "inf", Fail, "(last: +Inf at"),
            // failure_limit tolerates, then fails.
            (
                &lenient,
                "0.5 0.001 0.001 0.001",
                Pass,
                "1 failure tolerated by failure_limit 1",
            ),
            (
                &lenient,
                "0.5 0.001 0.5",
                Fail,
                "2 measurements outside max 0.01, more than failure_limit 1",
            ),
            // Not enough measurements.
            (
                &strict,
                "0.001 0.001",
                Inconclusive,
                "incomplete: only 2 of 3 measurements taken",
            ),
            (&strict, "", Inconclusive, "only 0 of 3"),
            // Errors: not failures, don't count toward `count`, reset by any measurement.
            (
                &strict,
                "E E E E 0.001 0.001 0.001",
                Pass,
                "4 measurement errors retried",
            ),
            (
                &strict,
                "E E E E E",
                Inconclusive,
                "5 measurement errors in a row, more than consecutive_error_limit 4; measurement errors, not a failed canary",
            ),
            (
                &strict,
                "E E E E 0.001 E E E E 0.001 0.001",
                Pass,
                "passed: 3 of 3",
            ),
            (
                &lenient,
                "0.001 E E",
                Inconclusive,
                "(last at 2023-11-14T22:15:20Z: could not query prometheus: connection refused)",
            ),
            // Decided metrics ignore later measurements (Argo stops measuring).
            (
                &strict,
                "0.5 0.001 0.001 0.001",
                Fail,
                "1 measurement outside",
            ),
            (&strict, "0.001 0.001 0.001 0.5", Pass, "passed: 3 of 3"),
            // No data: plan-wide policy.
            (
                &strict,
                "0.001 - 0.001",
                Inconclusive,
                "1 measurement without data, more than inconclusive_limit 0",
            ),
            (
                &lenient,
                "0.001 - 0.001 0.001",
                Pass,
                "1 without data tolerated by inconclusive_limit 1",
            ),
            (
                &plan([0, 4, 0], P::Pass, None),
                "- - -",
                Pass,
                "passed: 3 of 3",
            ),
            (
                &plan([0, 4, 0], P::Fail, None),
                "0.001 -",
                Fail,
                "1 measurement outside max 0.01",
            ),
            // No data: the metric's own policy wins.
            (
                &plan([0, 4, 0], P::Fail, Some(P::Pass)),
                "- - -",
                Pass,
                "passed",
            ),
            (
                &plan([0, 4, 0], P::Pass, Some(P::Inconclusive)),
                "-",
                Inconclusive,
                "without data",
            ),
            // NaN is no data, under each policy.
            (&strict, "NaN", Inconclusive, "without data"),
            (
                &plan([0, 4, 0], P::Pass, None),
                "NaN nan NaN",
                Pass,
                "passed",
            ),
            (&plan([0, 4, 0], P::Fail, None), "NaN", Fail, "outside"),
        ];
        for (plan, script, expected, reason) in cases {
            check(plan, script, *expected, reason);
        }
    }

    #[test]
    fn min_and_both_bounds() {
        let mut plan = plan([0, 4, 0], NoDataPolicy::Inconclusive, None);
        plan.metrics[0].min = Some(0.001);
        check(
            &plan,
            "0.005 0.001 0.01",
            Decision::Pass,
            "within min 0.001 and max 0.01",
        );
        check(
            &plan,
            "0.0001",
            Decision::Fail,
            "outside min 0.001 and max 0.01",
        );
        plan.metrics[0].max = None;
        check(&plan, "-inf", Decision::Fail, "outside min 0.001");
    }

    #[test]
    fn worst_metric_decides() {
        let mut plan = plan([0, 0, 0], NoDataPolicy::Inconclusive, None);
        plan.count = 1;
        let mut second = plan.metrics[0].clone();
        second.name = "p99-latency".to_owned();
        second.max = Some(2.0);
        plan.metrics.push(second);
        let at = Timestamp::from_second(T0).expect("valid");
        let m = |metric: &str, outcome: Outcome| Measurement {
            metric: metric.to_owned(),
            at,
            outcome,
        };
        let fail_and_error = [
            m("error-rate", Outcome::Error("down".to_owned())),
            m("p99-latency", Outcome::Value(3.0)),
        ];
        let verdict = judge(&plan, &fail_and_error);
        assert_eq!(
            verdict.decision,
            Decision::Fail,
            "a failure outranks an error"
        );
        assert!(!verdict.needs_more());
        let pass_and_unknown = [
            m("error-rate", Outcome::Value(0.0)),
            m("p99-latency", Outcome::Value(0.1)),
            m("not-in-plan", Outcome::Value(1e9)),
        ];
        let verdict = judge(&plan, &pass_and_unknown);
        assert_eq!(verdict.decision, Decision::Pass);
        assert_eq!(verdict.reasons.len(), 2);
    }

    #[test]
    fn needs_more() {
        let plan = plan([0, 4, 0], NoDataPolicy::Inconclusive, None);
        assert!(judge(&plan, &measurements("0.001")).needs_more());
        assert!(judge(&plan, &measurements("E E")).needs_more());
        assert!(!judge(&plan, &measurements("0.5")).needs_more());
        assert!(!judge(&plan, &measurements("0 0 0")).needs_more());
    }

    #[test]
    fn outcome_json_keeps_non_finite_values() {
        let outcomes = [
            Outcome::Value(0.5),
            Outcome::Value(f64::INFINITY),
            Outcome::Value(f64::NAN),
            Outcome::NoData,
            Outcome::Error("down".to_owned()),
        ];
        let json = serde_json::to_string(&outcomes).expect("serialize");
        assert_eq!(
            json,
            r#"[{"value":0.5},{"value":"+Inf"},{"value":"NaN"},"no_data",{"error":"down"}]"#
        );
        let back: Vec<Outcome> = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back[1], Outcome::Value(f64::INFINITY));
        assert!(matches!(back[2], Outcome::Value(v) if v.is_nan()));
    }
}
