//! Running an analysis: measure on a clock, judge after every round, stop when decided.

use jiff::Timestamp;
use slipway_core::Clock;

use crate::judge::{Decision, Measurement, Outcome, Verdict, judge};
use crate::plan::AnalysisPlan;
use crate::provider::MetricsProvider;
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
    /// The decision.
    pub verdict: Verdict,
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
/// Errors only for an invalid plan or template: a failing backend becomes measurement errors,
/// which the verdict reports.
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
    Ok(AnalysisRun {
        release: vars.release,
        namespace: vars.namespace,
        track: vars.track,
        plan: plan.clone(),
        queries,
        started,
        finished: clock.now(),
        measurements,
        verdict,
    })
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
