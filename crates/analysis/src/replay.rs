//! Replay: run an analysis plan against a past time range of real metrics, without deploying
//! anything — "would this canary have been stopped?".
//!
//! Each threshold metric is read with one range query at the plan's `interval`, and the rounds
//! are then fed to the same pure [`judge`] that a live [`crate::run`] uses, stopping at the same
//! round a live run would have stopped. The comparison and metric-based quality checks read the
//! whole window. Unlike a live run, a failing metrics backend is an error, not a verdict: a
//! replay that cannot read the past has nothing to say about it. Endpoint checks (smoke tests,
//! accuracy) are not part of a replay; the past's endpoints are gone.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::Error;
use crate::judge::{Measurement, Outcome, judge};
use crate::plan::AnalysisPlan;
use crate::provider::MetricsProvider;
use crate::run::{AnalysisRun, RenderedQuery, Strictness, points, window_checks};
use crate::template::{TemplateVars, render};

/// Replays `plan` over `[from, to]`. Rounds are taken at `from`, `from + interval`, … up to `to`;
/// a round without a point for a metric counts as no data. `finished` is the time of the last
/// round judged, i.e. when a live run would have decided.
pub async fn replay(
    plan: &AnalysisPlan,
    provider: &dyn MetricsProvider,
    vars: &TemplateVars,
    from: Timestamp,
    to: Timestamp,
) -> Result<AnalysisRun, Error> {
    plan.validate()?;
    if to < from {
        return Err(Error::InvalidPlan {
            problems: vec![format!(
                "the replay range ends ({to}) before it starts ({from})"
            )],
        });
    }
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

    let mut history: Vec<BTreeMap<Timestamp, f64>> = Vec::with_capacity(queries.len());
    for rendered in &queries {
        let series = provider
            .range(&rendered.query, from, to, plan.interval)
            .await?;
        if series.len() > 1 {
            // The same rule as a live measurement, but as an error: the query needs fixing.
            points(provider, &rendered.query, from, to, plan.interval).await?;
        }
        history.push(
            series
                .into_iter()
                .next()
                .map(|s| s.points.into_iter().collect())
                .unwrap_or_default(),
        );
    }

    let interval = SignedDuration::try_from(plan.interval).unwrap_or(SignedDuration::MAX);
    let mut measurements = Vec::new();
    let mut verdict = judge(plan, &measurements);
    let mut at = from;
    let mut last_round = from;
    while at <= to && verdict.needs_more() {
        last_round = at;
        for ((tally, rendered), points) in verdict.metrics.iter().zip(&queries).zip(&history) {
            if tally.status.is_decided() {
                continue;
            }
            let outcome = match points.get(&at) {
                Some(value) => Outcome::Value(*value),
                None => Outcome::NoData,
            };
            measurements.push(Measurement {
                metric: rendered.metric.clone(),
                at,
                outcome,
            });
        }
        verdict = judge(plan, &measurements);
        match at.checked_add(interval) {
            Ok(next) => at = next,
            Err(_) => break,
        }
    }

    let window = window_checks(plan, provider, &vars, from, to, Strictness::Fail).await?;
    let mut run = AnalysisRun {
        release: vars.release.clone(),
        namespace: vars.namespace.clone(),
        track: vars.track.clone(),
        plan: plan.clone(),
        queries,
        started: from,
        finished: last_round,
        measurements,
        verdict,
        comparison: window.comparison,
        quality: window.quality,
        smoke: Vec::new(),
    };
    run.decide();
    Ok(run)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::compare::{CompareMetric, ComparePlan, Direction};
    use crate::judge::Decision;
    use crate::memory::MemoryMetrics;

    const T0: i64 = 1_735_689_600;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(T0 + second).expect("valid")
    }

    fn vars() -> TemplateVars {
        TemplateVars::new("fraud-model", "ml", "canary")
    }

    fn rendered(plan: &AnalysisPlan, idx: usize) -> String {
        let vars = TemplateVars {
            interval: Some(plan.interval),
            ..vars()
        };
        render(&plan.metrics[idx].query, &vars).expect("renders")
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
        }
    }

    #[test]
    fn stops_where_a_live_run_would() {
        let plan = AnalysisPlan {
            failure_limit: 1,
            ..AnalysisPlan::default()
        };
        let store = MemoryMetrics::new();
        let minutes = |values: &[f64]| -> Vec<(Timestamp, f64)> {
            values
                .iter()
                .enumerate()
                .map(|(idx, v)| (t(60 * idx as i64), *v))
                .collect()
        };
        // Error rate breaches from minute 3 on; failure_limit 1 → Fail at the second breach.
        store.push_series(
            &rendered(&plan, 0),
            &[],
            minutes(&[0.001, 0.001, 0.001, 0.05, 0.05, 0.05, 0.05]),
        );
        store.push_series(&rendered(&plan, 1), &[], minutes(&[0.3; 7]));
        let run = block_on(replay(&plan, &store, &vars(), t(0), t(600))).expect("replay");
        assert_eq!(run.decision(), Decision::Fail, "{}", run.to_text());
        assert_eq!(run.finished, t(240), "decided at the second breach");
        assert_eq!(
            run.finished.duration_since(t(180)),
            SignedDuration::from_secs(60),
            "within interval × failure_limit of the breach"
        );

        // A range too short for `count` is incomplete, not a pass.
        let short = block_on(replay(&plan, &store, &vars(), t(0), t(120))).expect("replay");
        assert_eq!(short.decision(), Decision::Inconclusive);
        assert!(
            short.verdict.reasons[0].contains("only 3 of 5"),
            "{:?}",
            short.verdict.reasons
        );

        store.set_unavailable(true);
        let err = block_on(replay(&plan, &store, &vars(), t(0), t(600))).expect_err("outage");
        assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    }

    #[test]
    fn a_baseline_deployment_is_read_from_its_own_track() {
        let plan = AnalysisPlan {
            metrics: Vec::new(),
            compare: Some(ComparePlan {
                baseline: crate::BASELINE_DEPLOYMENT.to_owned(),
                step: Duration::from_secs(60),
                min_samples: 3,
                metrics: vec![CompareMetric {
                    name: "latency".to_owned(),
                    query: r#"latency{track="{{track}}"}"#.to_owned(),
                    direction: Direction::Increase,
                    critical: true,
                    weight: 1.0,
                    count: None,
                    model: crate::CountModel::Auto,
                }],
                ..ComparePlan::default()
            }),
            ..AnalysisPlan::default()
        };
        let store = MemoryMetrics::new();
        for track in ["canary", "baseline"] {
            store.push_series(
                &format!(r#"latency{{track="{track}"}}"#),
                &[],
                (0..5).map(|i| (t(60 * i), 0.4 + 0.01 * i as f64)),
            );
        }
        let run = block_on(replay(&plan, &store, &vars(), t(0), t(4 * 60))).expect("replay");
        let record = run.comparison.expect("compared");
        assert_eq!(
            record.series[0].baseline_query,
            r#"latency{track="baseline"}"#
        );
        assert_eq!(record.result.metrics[0].baseline_samples, 5);
    }

    #[test]
    fn compares_over_the_window() {
        let plan = AnalysisPlan {
            metrics: Vec::new(),
            compare: Some(ComparePlan {
                step: Duration::from_secs(60),
                metrics: vec![CompareMetric {
                    name: "latency".to_owned(),
                    query: r#"latency{track="{{track}}"}"#.to_owned(),
                    direction: Direction::Increase,
                    critical: true,
                    weight: 1.0,
                    count: None,
                    model: crate::CountModel::Auto,
                }],
                ..ComparePlan::default()
            }),
            ..AnalysisPlan::default()
        };
        let store = MemoryMetrics::new();
        let wobble = |i: i64| 0.01 * ((i * 7) % 5) as f64;
        store.push_series(
            r#"latency{track="canary"}"#,
            &[],
            (0..30).map(|i| (t(60 * i), 0.52 + wobble(i))),
        );
        store.push_series(
            r#"latency{track="stable"}"#,
            &[],
            (0..30).map(|i| (t(60 * i), 0.40 + wobble(i + 2))),
        );
        let run = block_on(replay(&plan, &store, &vars(), t(0), t(29 * 60))).expect("replay");
        assert_eq!(run.decision(), Decision::Fail, "{}", run.to_text());
        let record = run.comparison.as_ref().expect("compared");
        assert_eq!(record.series[0].canary.len(), 30);
        assert_eq!(record.result.metrics[0].canary_samples, 30);
        assert!(run.verdict.reasons[0].contains("critical metric `latency` failed"));

        let few = block_on(replay(&plan, &store, &vars(), t(0), t(5 * 60))).expect("replay");
        assert_eq!(few.decision(), Decision::Inconclusive);
        assert!(
            few.verdict.reasons[1].contains("too few samples (canary 6, stable 6; at least 10"),
            "{:?}",
            few.verdict.reasons
        );
    }
}
