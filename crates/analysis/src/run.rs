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
