//! Running an analysis: measure on a clock, judge after every round, stop when decided; then
//! compare canary with baseline over the window and run the endpoint checks.

use std::time::Duration;

use jiff::Timestamp;
use slipway_core::Clock;

use crate::compare::{Comparison, MetricSamples, compare};
use crate::endpoint::{EndpointResults, check_endpoints};
use crate::judge::{Decision, Measurement, Outcome, Verdict, judge};
use crate::plan::AnalysisPlan;
use crate::provider::{MetricsProvider, Series};
use crate::quality::{DistributionResult, Quality, judge_distribution, worst};
use crate::smoke::SmokeResult;
use crate::template::{TemplateVars, render};
use crate::{Error, report};

/// A metric's query as it was sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RenderedQuery {
    /// The metric's name.
    pub metric: String,
    /// The query after template expansion.
    pub query: String,
}

/// Everything an analysis did and decided: the decision record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnalysisRun {
    /// `{{release}}`.
    pub release: String,
    /// `{{namespace}}`.
    pub namespace: String,
    /// `{{track}}`.
    pub track: String,
    /// The plan it followed.
    pub plan: AnalysisPlan,
    /// Each metric's rendered query, in plan order.
    pub queries: Vec<RenderedQuery>,
    /// Clock time of the first measurement.
    pub started: Timestamp,
    /// Clock time after the last measurement.
    pub finished: Timestamp,
    /// Every measurement, in the order taken.
    pub measurements: Vec<Measurement>,
    /// The decision: thresholds, comparison, quality and smoke tests together (see [`combine`]).
    pub verdict: Verdict,
    /// The statistical comparison with the baseline, when the plan has `[compare]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<CompareRecord>,
    /// Model quality, when the plan has `[quality]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
    /// Smoke test results, in plan order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub smoke: Vec<SmokeResult>,
}

/// One compared metric's series over the window, for the record and the chart.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComparedSeries {
    /// The metric's name.
    pub metric: String,
    /// The canary query as sent.
    pub canary_query: String,
    /// The baseline query as sent.
    pub baseline_query: String,
    /// Canary points (finite values only).
    pub canary: Vec<(Timestamp, f64)>,
    /// Baseline points (finite values only).
    pub baseline: Vec<(Timestamp, f64)>,
}

/// The comparison section of the decision record.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompareRecord {
    /// Window start.
    pub from: Timestamp,
    /// Window end.
    pub to: Timestamp,
    /// The data compared.
    pub series: Vec<ComparedSeries>,
    /// The judgement.
    pub result: Comparison,
}

impl AnalysisRun {
    /// The decision, for callers that only branch on it.
    pub fn decision(&self) -> Decision {
        self.verdict.decision
    }

    /// The decision record as plain text (see [`report::text`]).
    pub fn to_text(&self) -> String {
        report::text(self)
    }

    /// Adds the results of [`check_endpoints`] and decides again.
    pub fn add_endpoint_results(&mut self, results: EndpointResults) {
        self.smoke.extend(results.smoke);
        if let Some(found) = results.quality {
            self.quality = Some(match self.quality.take() {
                Some(mut quality) => {
                    quality.distributions.extend(found.distributions);
                    quality.skipped.extend(found.skipped);
                    Quality::new(
                        quality.distributions,
                        found.accuracy.or(quality.accuracy),
                        quality.skipped,
                    )
                }
                None => found,
            });
        }
        self.decide();
    }

    /// Records checks that were not run and why (they do not change the decision).
    pub fn add_skipped(&mut self, note: &str) {
        let mut quality = self
            .quality
            .take()
            .unwrap_or_else(|| Quality::new(Vec::new(), None, Vec::new()));
        quality.skipped.push(note.to_owned());
        self.quality = Some(Quality::new(
            quality.distributions,
            quality.accuracy,
            quality.skipped,
        ));
        self.decide();
    }

    pub(crate) fn decide(&mut self) {
        self.verdict = combine(
            &self.plan,
            &self.measurements,
            self.comparison.as_ref().map(|c| &c.result),
            self.quality.as_ref(),
            &self.smoke,
        );
    }
}

/// The overall verdict: the worst of the threshold checks (when the plan has any), the
/// comparison, the quality checks that were judged and the smoke tests. Reasons come in that
/// order; the tallies are the threshold metrics'. Pure.
pub fn combine(
    plan: &AnalysisPlan,
    measurements: &[Measurement],
    comparison: Option<&Comparison>,
    quality: Option<&Quality>,
    smoke: &[SmokeResult],
) -> Verdict {
    let thresholds = judge(plan, measurements);
    let mut decisions = Vec::new();
    let mut reasons = Vec::new();
    if !plan.metrics.is_empty() {
        decisions.push(thresholds.decision);
        reasons.extend(thresholds.reasons.iter().cloned());
    }
    if let Some(comparison) = comparison {
        decisions.push(comparison.decision);
        reasons.extend(comparison.reasons.iter().cloned());
    }
    if let Some(quality) = quality {
        if quality.judged() {
            decisions.push(quality.decision);
        }
        reasons.extend(quality.reasons());
    }
    for result in smoke {
        decisions.push(if result.passed {
            Decision::Pass
        } else {
            Decision::Fail
        });
        reasons.push(result.reason.clone());
    }
    let decision = worst(decisions).unwrap_or_else(|| {
        reasons.push("nothing was checked".to_owned());
        Decision::Inconclusive
    });
    Verdict {
        decision,
        reasons,
        metrics: thresholds.metrics,
    }
}

/// Runs `plan` against `provider`.
///
/// Takes a round of measurements (one query per undecided metric, evaluated at `clock.now()`),
/// judges, and sleeps `plan.interval` on `clock` before the next round. Stops as soon as the
/// verdict can no longer be Pass (a failure, too much missing data, too many errors) or every
/// metric has `count` measurements. With a `SimClock` the whole run takes no real time.
///
/// `{{interval}}` renders as `vars.interval`, or `plan.interval` when that is `None`.
/// `observer` sees each measurement as it is taken, so the caller can print progress.
///
/// After the threshold rounds, a `[compare]` section is judged over the run's window
/// (`started` to the last round) and metric-based `[quality]` distributions likewise; then smoke
/// tests and endpoint checks run (see [`check_endpoints`]).
///
/// Errors only for an invalid plan, template or evaluation data set: a failing backend becomes
/// measurement errors (or a comparison "not judged"), which the verdict reports.
pub async fn run(
    plan: &AnalysisPlan,
    provider: &dyn MetricsProvider,
    clock: &dyn Clock,
    vars: &TemplateVars,
    observer: &mut dyn FnMut(&Measurement),
) -> Result<AnalysisRun, Error> {
    plan.validate()?;
    let vars = TemplateVars {
        interval: vars.interval.or(Some(plan.interval)),
        ..vars.clone()
    };
    let queries = plan
        .metrics
        .iter()
        .map(|check| {
            Ok(RenderedQuery {
                metric: check.name.clone(),
                query: render(&check.query, &vars)?,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;

    let started = clock.now();
    let mut measurements = Vec::new();
    let mut verdict = judge(plan, &measurements);
    loop {
        let at = clock.now();
        for (tally, rendered) in verdict.metrics.iter().zip(&queries) {
            if tally.status.is_decided() {
                continue;
            }
            let measurement = Measurement {
                metric: rendered.metric.clone(),
                at,
                outcome: measure(provider, &rendered.query, at).await,
            };
            observer(&measurement);
            measurements.push(measurement);
        }
        verdict = judge(plan, &measurements);
        if !verdict.needs_more() {
            break;
        }
        clock.sleep(plan.interval).await;
    }
    if plan.metrics.is_empty() && (plan.compare.is_some() || plan.quality.is_some()) {
        // No threshold rounds to take: still let the window the plan describes (`count`
        // rounds `interval` apart) pass, or the comparison would judge a single instant.
        for _ in 1..plan.count {
            clock.sleep(plan.interval).await;
        }
    }
    let finished = clock.now();
    let window =
        window_checks(plan, provider, &vars, started, finished, Strictness::Record).await?;
    let mut run = AnalysisRun {
        release: vars.release.clone(),
        namespace: vars.namespace.clone(),
        track: vars.track.clone(),
        plan: plan.clone(),
        queries,
        started,
        finished,
        measurements,
        verdict,
        comparison: window.comparison,
        quality: window.quality,
        smoke: Vec::new(),
    };
    if !plan.smoke.is_empty() || plan.quality.as_ref().is_some_and(|q| q.accuracy.is_some()) {
        run.add_endpoint_results(check_endpoints(plan, &vars).await?);
    } else {
        run.decide();
    }
    Ok(run)
}

/// What to do when the metrics backend fails during the window checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strictness {
    /// Return the error: a replay that cannot read the past has no verdict to give.
    Fail,
    /// Record the metric as not judged, with the error as the reason (a live run).
    Record,
}

/// The window-based sections of a run.
pub(crate) struct WindowChecks {
    pub(crate) comparison: Option<CompareRecord>,
    pub(crate) quality: Option<Quality>,
}

/// Judges `[compare]` and metric-based `[quality]` distributions over `[from, to]`.
pub(crate) async fn window_checks(
    plan: &AnalysisPlan,
    provider: &dyn MetricsProvider,
    vars: &TemplateVars,
    from: Timestamp,
    to: Timestamp,
    strictness: Strictness,
) -> Result<WindowChecks, Error> {
    let mut comparison = None;
    if let Some(compare_plan) = &plan.compare {
        let baseline_vars = TemplateVars {
            track: compare_plan.baseline_track().to_owned(),
            ..vars.clone()
        };
        let mut series = Vec::new();
        let mut samples = Vec::new();
        let mut failures = Vec::new();
        for metric in &compare_plan.metrics {
            let canary_query = render(&metric.query, vars)?;
            let baseline_query = render(&metric.query, &baseline_vars)?;
            let count_queries = match metric.count_query() {
                Some(count) => Some((
                    render(count.as_str(), vars)?,
                    render(count.as_str(), &baseline_vars)?,
                )),
                None => None,
            };
            let fetched = async {
                let canary = points(provider, &canary_query, from, to, compare_plan.step).await?;
                let baseline =
                    points(provider, &baseline_query, from, to, compare_plan.step).await?;
                let volumes = match &count_queries {
                    Some((canary_count, baseline_count)) => Some((
                        points(provider, canary_count, from, to, compare_plan.step).await?,
                        points(provider, baseline_count, from, to, compare_plan.step).await?,
                    )),
                    None => None,
                };
                Ok::<_, Error>((canary, baseline, volumes))
            }
            .await;
            let (canary, baseline, volumes) = match fetched {
                Ok(found) => found,
                Err(err) if strictness == Strictness::Record => {
                    failures.push((metric.name.clone(), err.to_string()));
                    (Vec::new(), Vec::new(), None)
                }
                Err(err) => return Err(err),
            };
            let mut sample = MetricSamples {
                metric: metric.name.clone(),
                canary: canary.iter().map(|(_, v)| *v).collect(),
                baseline: baseline.iter().map(|(_, v)| *v).collect(),
                ..MetricSamples::default()
            };
            if let Some((canary_volume, baseline_volume)) = &volumes {
                // Each value with the volume at the same instant; a value without one is
                // dropped by the judge (NaN volume).
                let aligned = |values: &[(Timestamp, f64)], volume: &[(Timestamp, f64)]| {
                    let by_time: std::collections::BTreeMap<Timestamp, f64> =
                        volume.iter().copied().collect();
                    values
                        .iter()
                        .map(|(at, _)| by_time.get(at).copied().unwrap_or(f64::NAN))
                        .collect::<Vec<f64>>()
                };
                sample.canary_volume = aligned(&canary, canary_volume);
                sample.baseline_volume = aligned(&baseline, baseline_volume);
            }
            samples.push(sample);
            series.push(ComparedSeries {
                metric: metric.name.clone(),
                canary_query,
                baseline_query,
                canary,
                baseline,
            });
        }
        let mut result = compare(compare_plan, &samples);
        for (metric, error) in failures {
            let first_line = error.lines().next().unwrap_or_default().to_owned();
            for judged in &mut result.metrics {
                if judged.metric == metric {
                    judged.reason = format!("`{metric}` not judged: {first_line}");
                }
            }
            for reason in &mut result.reasons {
                if reason.starts_with(&format!("`{metric}` not judged")) {
                    *reason = format!("`{metric}` not judged: {first_line}");
                }
            }
        }
        comparison = Some(CompareRecord {
            from,
            to,
            series,
            result,
        });
    }

    let mut quality = None;
    if let Some(quality_plan) = &plan.quality {
        let baseline_vars = TemplateVars {
            track: quality_plan.baseline.clone(),
            ..vars.clone()
        };
        let mut distributions: Vec<DistributionResult> = Vec::new();
        for check in &quality_plan.distributions {
            let Some(query) = &check.query else { continue };
            let fetched = async {
                let canary =
                    points(provider, &render(query, vars)?, from, to, quality_plan.step).await?;
                let baseline = points(
                    provider,
                    &render(query, &baseline_vars)?,
                    from,
                    to,
                    quality_plan.step,
                )
                .await?;
                Ok::<_, Error>((canary, baseline))
            }
            .await;
            match fetched {
                Ok((canary, baseline)) => {
                    let values = |points: &[(Timestamp, f64)]| -> Vec<f64> {
                        points.iter().map(|(_, v)| *v).collect()
                    };
                    distributions.push(judge_distribution(
                        quality_plan,
                        &check.name,
                        &values(&canary),
                        &values(&baseline),
                    ));
                }
                Err(err) if strictness == Strictness::Record => {
                    let mut result = judge_distribution(quality_plan, &check.name, &[], &[]);
                    result.reason = format!(
                        "`{}` not judged: {}",
                        check.name,
                        err.to_string().lines().next().unwrap_or_default()
                    );
                    distributions.push(result);
                }
                Err(err) => return Err(err),
            }
        }
        quality = Some(Quality::new(distributions, None, Vec::new()));
    }
    Ok(WindowChecks {
        comparison,
        quality,
    })
}

/// One series' finite points over `[from, to]` at `step`. No series is no points; several are an
/// error, as for a measurement.
pub(crate) async fn points(
    provider: &dyn MetricsProvider,
    query: &str,
    from: Timestamp,
    to: Timestamp,
    step: Duration,
) -> Result<Vec<(Timestamp, f64)>, Error> {
    let series = provider.range(query, from, to, step).await?;
    match series.as_slice() {
        [] => Ok(Vec::new()),
        [one] => Ok(one
            .points
            .iter()
            .copied()
            .filter(|(_, v)| v.is_finite())
            .collect()),
        many => Err(Error::BadResponse {
            backend: "the metrics backend".to_owned(),
            query: query.to_owned(),
            problem: format!(
                "it returned {} series ({}) where one was needed",
                many.len(),
                label_sets(many)
            ),
            hint: "aggregate it, e.g. `sum(...)`, or narrow its label matchers".to_owned(),
        }),
    }
}

fn label_sets(many: &[Series]) -> String {
    let mut shown: Vec<String> = many
        .iter()
        .take(3)
        .map(|series| {
            let pairs: Vec<String> = series
                .labels
                .iter()
                .map(|(name, value)| format!("{name}=\"{value}\""))
                .collect();
            format!("{{{}}}", pairs.join(","))
        })
        .collect();
    if many.len() > 3 {
        shown.push("...".to_owned());
    }
    shown.join(", ")
}

/// One query, reduced to one outcome. Several series are an error: a threshold needs one number,
/// and picking one of them silently could hide the bad pod.
async fn measure(provider: &dyn MetricsProvider, query: &str, at: Timestamp) -> Outcome {
    match provider.instant(query, at).await {
        Err(err) => Outcome::Error(err.to_string()),
        Ok(samples) => match samples.as_slice() {
            [] => Outcome::NoData,
            [sample] => Outcome::Value(sample.value),
            many => {
                let labels: Vec<String> = many
                    .iter()
                    .take(3)
                    .map(|sample| {
                        let pairs: Vec<String> = sample
                            .labels
                            .iter()
                            .map(|(name, value)| format!("{name}=\"{value}\""))
                            .collect();
                        format!("{{{}}}", pairs.join(","))
                    })
                    .collect();
                Outcome::Error(format!(
                    "query `{query}` returned {} series ({}{}) where one number was needed\n\nhint: aggregate it, e.g. `sum(...)`, or narrow its label matchers",
                    many.len(),
                    labels.join(", "),
                    if many.len() > 3 { ", ..." } else { "" },
                ))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use slipway_core::SimClock;

    use super::*;
    use crate::memory::MemoryMetrics;

    /// 2025-01-01T00:00:00Z.
    const T0: i64 = 1_735_689_600;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(T0 + second).expect("valid")
    }

    fn vars() -> TemplateVars {
        TemplateVars::new("fraud-model", "ml", "canary")
    }

    /// The default plan's queries as `run` renders them.
    fn queries(plan: &AnalysisPlan) -> (String, String) {
        let vars = TemplateVars {
            interval: Some(plan.interval),
            ..vars()
        };
        let render = |idx: usize| render(&plan.metrics[idx].query, &vars).expect("renders");
        (render(0), render(1))
    }

    /// A store with one sample per minute, 30 s before each measurement, for both default checks.
    fn seeded(error_rates: &[f64], latencies: &[f64]) -> MemoryMetrics {
        let (error_rate, latency) = queries(&AnalysisPlan::default());
        let store = MemoryMetrics::new();
        let minutes = |values: &[f64]| -> Vec<(Timestamp, f64)> {
            values
                .iter()
                .enumerate()
                .map(|(idx, value)| (t(60 * idx as i64 - 30), *value))
                .collect()
        };
        store.push_series(&error_rate, &[], minutes(error_rates));
        store.push_series(&latency, &[], minutes(latencies));
        store
    }

    async fn analyse(store: &MemoryMetrics) -> (AnalysisRun, usize) {
        let clock = SimClock::starting_at(t(0));
        let mut observed = 0;
        let run = run(
            &AnalysisPlan::default(),
            store,
            &clock,
            &vars(),
            &mut |_| observed += 1,
        )
        .await
        .expect("valid plan");
        (run, observed)
    }

    fn summary(run: &AnalysisRun) -> String {
        format!(
            "{:?} after {} measurements, {} of sim time",
            run.decision(),
            run.measurements.len(),
            run.finished.duration_since(run.started)
        )
    }

    #[tokio::test]
    async fn healthy_canary_passes_instantly_on_sim_clock() {
        let store = seeded(
            &[0.002, 0.004, 0.001, 0.0, 0.003],
            &[0.31, 0.42, 0.38, 0.35, 0.4],
        );
        let wall = Instant::now();
        let (run, observed) = analyse(&store).await;
        assert!(
            wall.elapsed() < Duration::from_secs(1),
            "{:?}",
            wall.elapsed()
        );
        assert_eq!(
            summary(&run),
            "Pass after 10 measurements, PT4M of sim time"
        );
        assert_eq!(observed, 10);
        assert_eq!(run.measurements[9].at, t(240));
        insta::assert_snapshot!("healthy_text", report::text(&run));
    }

    #[tokio::test]
    async fn a_comparison_alone_still_waits_its_window() {
        let plan = AnalysisPlan {
            metrics: Vec::new(),
            compare: Some(crate::ComparePlan {
                step: Duration::from_secs(60),
                min_samples: 3,
                metrics: vec![crate::CompareMetric {
                    name: "latency".to_owned(),
                    query: r#"latency{track="{{track}}"}"#.to_owned(),
                    direction: crate::Direction::Increase,
                    critical: true,
                    weight: 1.0,
                    count: None,
                    model: crate::CountModel::Auto,
                }],
                ..crate::ComparePlan::default()
            }),
            ..AnalysisPlan::default()
        };
        let store = MemoryMetrics::new();
        for track in ["canary", "stable"] {
            store.push_series(
                &format!(r#"latency{{track="{track}"}}"#),
                &[],
                (0..10).map(|i| (t(60 * i), 0.4 + 0.01 * (i % 3) as f64)),
            );
        }
        let clock = SimClock::starting_at(t(0));
        let run = run(&plan, &store, &clock, &vars(), &mut |_| {})
            .await
            .expect("valid plan");
        assert_eq!(run.finished, t(240), "count 5 rounds a minute apart");
        let comparison = run.comparison.expect("compared");
        assert_eq!(comparison.result.metrics[0].canary_samples, 5);
        assert_eq!(
            run.verdict.decision,
            Decision::Pass,
            "{:?}",
            run.verdict.reasons
        );
    }

    #[tokio::test]
    async fn failing_canary_stops_early() {
        let store = seeded(
            &[0.002, 0.004, 0.05, 0.06, 0.07],
            &[0.31, 0.42, 2.5, 0.35, 0.4],
        );
        let (run, observed) = analyse(&store).await;
        assert_eq!(summary(&run), "Fail after 6 measurements, PT2M of sim time");
        assert_eq!(observed, 6);
        insta::assert_snapshot!("failing_text", report::text(&run));
        insta::assert_snapshot!("failing_markdown", report::markdown(&run));
        insta::assert_snapshot!("failing_json", report::json(&run));
        let back: AnalysisRun = serde_json::from_str(&report::json(&run)).expect("round trip");
        assert_eq!(back, run);
    }

    #[tokio::test]
    async fn outage_is_inconclusive_not_a_failure() {
        let store = seeded(&[0.002; 5], &[0.3; 5]);
        store.set_unavailable(true);
        let (run, _) = analyse(&store).await;
        assert_eq!(
            summary(&run),
            "Inconclusive after 10 measurements, PT4M of sim time"
        );
        assert!(
            run.verdict.reasons[0].contains("measurement errors, not a failed canary"),
            "{:?}",
            run.verdict.reasons
        );
        insta::assert_snapshot!("outage_markdown", report::markdown(&run));
        insta::assert_snapshot!("outage_text", report::text(&run));
    }

    #[tokio::test]
    async fn short_outage_is_retried() {
        // Down for the first two rounds; data keeps coming, so the run just takes longer.
        let store = seeded(&[0.002; 7], &[0.3; 7]);
        store.set_unavailable(true);
        let clock = SimClock::starting_at(t(0));
        let mut rounds = 0;
        let run = run(
            &AnalysisPlan::default(),
            &store,
            &clock,
            &vars(),
            &mut |m| {
                if m.metric == "p99-latency" {
                    rounds += 1;
                    if rounds == 2 {
                        store.set_unavailable(false);
                    }
                }
            },
        )
        .await
        .expect("valid plan");
        assert_eq!(
            summary(&run),
            "Pass after 14 measurements, PT6M of sim time"
        );
        assert!(run.verdict.reasons[0].contains("2 measurement errors retried"));
    }

    #[tokio::test]
    async fn missing_data_is_inconclusive_at_once() {
        let store = seeded(&[], &[0.3; 5]);
        let (run, _) = analyse(&store).await;
        assert_eq!(
            summary(&run),
            "Inconclusive after 2 measurements, PT0S of sim time"
        );
        assert_eq!(
            run.verdict.reasons[0],
            "`error-rate` is inconclusive: 1 measurement without data, more than inconclusive_limit 0 (last: no data at 2025-01-01T00:00:00Z)"
        );
    }

    #[tokio::test]
    async fn several_series_are_an_error() {
        let (error_rate, _) = queries(&AnalysisPlan::default());
        let store = seeded(&[], &[0.3; 5]);
        store.push(&error_rate, &[("pod", "a")], t(0), 0.0);
        store.push(&error_rate, &[("pod", "b")], t(0), 0.5);
        let outcome = measure(&store, &error_rate, t(0)).await;
        let Outcome::Error(text) = outcome else {
            panic!("expected an error, got {outcome:?}");
        };
        assert!(
            text.contains(
                r#"returned 2 series ({pod="a"}, {pod="b"}) where one number was needed"#
            ),
            "{text}"
        );
    }

    #[tokio::test]
    async fn invalid_plan_and_templates_fail_before_measuring() {
        let store = MemoryMetrics::new();
        let clock = SimClock::starting_at(t(0));
        let mut plan = AnalysisPlan::default();
        plan.metrics[0].query = "x[{{window}}]".to_owned();
        let err = run(&plan, &store, &clock, &vars(), &mut |_| {})
            .await
            .expect_err("invalid");
        assert!(
            err.to_string().contains("unknown placeholder `{{window}}`"),
            "{err}"
        );
        let hostile = TemplateVars::new("fraud-model", "ml", "canary\"}");
        let err = run(
            &AnalysisPlan::default(),
            &store,
            &clock,
            &hostile,
            &mut |_| {},
        )
        .await
        .expect_err("hostile track");
        assert!(matches!(err, Error::Template { .. }), "{err}");
        assert_eq!(clock.now(), t(0), "nothing waited");
    }
}
