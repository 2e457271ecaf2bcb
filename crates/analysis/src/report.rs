//! Decision records: an [`AnalysisRun`] as plain text, Markdown or JSON.
//!
//! Text is for terminals and logs, Markdown for pull-request comments and release notes, JSON
//! for machines. All three carry the same facts: the decision, one reason per metric, the queries
//! and every measurement with what it counted as.

use std::fmt::Write as _;

use crate::compare::{Classification, short_value};
use crate::judge::{Decision, Measurement, Outcome, bounds, format_value};
use crate::plan::{AnalysisPlan, NoDataPolicy};
use crate::run::AnalysisRun;
use crate::svg::{self, Line, Panel};
use crate::template::promql_duration;

/// How one measurement counted, in words.
fn counted_as(plan: &AnalysisPlan, measurement: &Measurement) -> &'static str {
    let Some(check) = plan.metrics.iter().find(|c| c.name == measurement.metric) else {
        return "not in plan";
    };
    let no_data = match plan.no_data_for(check) {
        NoDataPolicy::Pass => "pass (no data)",
        NoDataPolicy::Fail => "FAIL (no data)",
        NoDataPolicy::Inconclusive => "inconclusive (no data)",
    };
    match &measurement.outcome {
        Outcome::Error(_) => "error",
        Outcome::NoData => no_data,
        Outcome::Value(value) if value.is_nan() => no_data,
        Outcome::Value(value) => {
            let outside = check.max.is_some_and(|max| *value > max)
                || check.min.is_some_and(|min| *value < min);
            if outside { "FAIL" } else { "pass" }
        }
    }
}

fn shown_value(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Value(value) => format_value(*value),
        Outcome::NoData => "no data".to_owned(),
        Outcome::Error(_) => "-".to_owned(),
    }
}

/// Replaces each rendered query quoted in `text` by a short reference to its metric: the record
/// lists every query once, and repeating it in each error would drown the table.
fn shorten(run: &AnalysisRun, text: &str) -> String {
    run.queries.iter().fold(text.to_owned(), |text, rendered| {
        text.replace(
            &format!("`{}`", rendered.query),
            &format!("the `{}` query", rendered.metric),
        )
    })
}

fn decision_word(decision: Decision) -> &'static str {
    match decision {
        Decision::Pass => "PASS",
        Decision::Fail => "FAIL",
        Decision::Inconclusive => "INCONCLUSIVE",
    }
}

fn interval(plan: &AnalysisPlan) -> String {
    promql_duration(plan.interval).unwrap_or_else(|| format!("{:?}", plan.interval))
}

/// The decision record as plain text.
pub fn text(run: &AnalysisRun) -> String {
    let mut out = String::new();
    let plan = &run.plan;
    let _ = writeln!(
        out,
        "canary analysis of {} in {} (track {}): {}",
        run.release,
        run.namespace,
        run.track,
        decision_word(run.verdict.decision)
    );
    let _ = writeln!(
        out,
        "from {} to {}: {} measurements, every {}, count {}, failure_limit {}, consecutive_error_limit {}, inconclusive_limit {}",
        run.started,
        run.finished,
        run.measurements.len(),
        interval(plan),
        plan.count,
        plan.failure_limit,
        plan.consecutive_error_limit,
        plan.inconclusive_limit,
    );
    out.push_str("\nreasons:\n");
    for reason in &run.verdict.reasons {
        let _ = writeln!(out, "  - {}", shorten(run, reason));
    }
    out.push_str("\nqueries:\n");
    for (check, rendered) in plan.metrics.iter().zip(&run.queries) {
        let _ = writeln!(
            out,
            "  {} ({}): {}",
            rendered.metric,
            bounds(check),
            rendered.query
        );
    }
    if let (Some(record), Some(compare)) = (&run.comparison, &plan.compare) {
        let _ = writeln!(
            out,
            "\ncomparison with `{}` from {} to {}, every {}: confidence {}, tolerance {}, pass {}, marginal {}, min_samples {}, max_spread_ratio {}",
            compare.baseline,
            record.from,
            record.to,
            promql_duration(compare.step).unwrap_or_default(),
            compare.confidence,
            compare.tolerance,
            compare.pass_score,
            compare.marginal_score,
            compare.min_samples,
            compare.max_spread_ratio,
        );
        for series in &record.series {
            let _ = writeln!(
                out,
                "  {}: canary {} ({} points), baseline {} ({} points)",
                series.metric,
                series.canary_query,
                series.canary.len(),
                series.baseline_query,
                series.baseline.len()
            );
        }
    }
    if !run.measurements.is_empty() {
        out.push_str("\nmeasurements:\n");
    }
    let width = run
        .measurements
        .iter()
        .map(|m| m.metric.len())
        .max()
        .unwrap_or(0);
    for measurement in &run.measurements {
        let _ = writeln!(
            out,
            "  {}  {:<width$}  {:>12}  {}",
            measurement.at,
            measurement.metric,
            shown_value(&measurement.outcome),
            counted_as(plan, measurement),
        );
        if let Outcome::Error(error) = &measurement.outcome {
            for line in shorten(run, error).lines().filter(|line| !line.is_empty()) {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    out
}

/// Escapes text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
        .replace("\n\n", "<br>")
        .replace('\n', "<br>")
}

/// The decision record as Markdown: a heading, the reasons, and a table of measurements.
pub fn markdown(run: &AnalysisRun) -> String {
    let mut out = String::new();
    let plan = &run.plan;
    let _ = writeln!(
        out,
        "### Canary analysis: {} ({}, track `{}`): **{}**\n",
        run.release,
        run.namespace,
        run.track,
        decision_word(run.verdict.decision)
    );
    for reason in &run.verdict.reasons {
        let _ = writeln!(out, "- {}", shorten(run, reason));
    }
    let _ = writeln!(
        out,
        "\n{} measurements from {} to {}, every {}; count {}, failure_limit {}, consecutive_error_limit {}, inconclusive_limit {}.\n",
        run.measurements.len(),
        run.started,
        run.finished,
        interval(plan),
        plan.count,
        plan.failure_limit,
        plan.consecutive_error_limit,
        plan.inconclusive_limit,
    );
    if let Some(record) = &run.comparison {
        let baseline = plan
            .compare
            .as_ref()
            .map(|c| c.baseline.as_str())
            .unwrap_or("baseline");
        let _ = writeln!(
            out,
            "Comparison with `{baseline}` from {} to {}: score **{}**.\n",
            record.from,
            record.to,
            record
                .result
                .score
                .map(short_value)
                .unwrap_or_else(|| "none".to_owned()),
        );
        let _ = writeln!(
            out,
            "| metric | result | canary median | {baseline} median | shift | CI | Mann-Whitney p | spread ratio (p) | samples |"
        );
        out.push_str("|---|---|---:|---:|---:|---|---:|---|---|\n");
        for metric in &record.result.metrics {
            let opt = |v: Option<f64>| v.map(short_value).unwrap_or_else(|| "-".to_owned());
            let result = match (metric.classification, metric.failed) {
                (Classification::TooFewSamples, _) => "too few samples",
                (_, true) => "FAIL",
                (Classification::Pass, false) => "pass",
                (_, false) => "pass (good direction)",
            };
            let _ = writeln!(
                out,
                "| `{}`{} | {result} | {} | {} | {} | {} | {} | {} | {} / {} |",
                metric.metric,
                if metric.critical { " (critical)" } else { "" },
                opt(metric.canary_median),
                opt(metric.baseline_median),
                opt(metric.shift.map(|s| s.estimate)),
                metric
                    .shift
                    .map(|s| format!("{} to {}", short_value(s.lower), short_value(s.upper)))
                    .unwrap_or_else(|| "-".to_owned()),
                opt(metric.mann_whitney.map(|m| m.p_value)),
                metric
                    .spread
                    .map(|s| format!("{} ({})", short_value(s.ratio), short_value(s.p_value)))
                    .unwrap_or_else(|| "-".to_owned()),
                metric.canary_samples,
                metric.baseline_samples,
            );
        }
        out.push('\n');
    }
    if !run.smoke.is_empty() {
        out.push_str(
            "| smoke test | URL | status | latency ms | result |\n|---|---|---:|---:|---|\n",
        );
        for result in &run.smoke {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                result.name,
                cell(&result.url),
                result
                    .status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                short_value(result.latency_ms),
                if result.passed {
                    "pass".to_owned()
                } else {
                    format!("FAIL: {}", cell(&result.failures.join("; ")))
                }
            );
        }
        out.push('\n');
    }
    if run.measurements.is_empty() {
        out.push_str("<details><summary>queries</summary>\n\n");
        for rendered in &run.queries {
            let _ = writeln!(out, "- `{}`: `{}`", rendered.metric, rendered.query);
        }
        out.push_str("\n</details>\n");
        return out;
    }
    out.push_str("| time | metric | value | threshold | counted as |\n");
    out.push_str("|---|---|---:|---|---|\n");
    for measurement in &run.measurements {
        let threshold = plan
            .metrics
            .iter()
            .find(|c| c.name == measurement.metric)
            .map(bounds)
            .unwrap_or_default();
        let counted = match &measurement.outcome {
            Outcome::Error(error) => format!("error: {}", cell(&shorten(run, error))),
            _ => counted_as(plan, measurement).to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} |",
            measurement.at,
            measurement.metric,
            shown_value(&measurement.outcome),
            threshold,
            counted,
        );
    }
    out.push_str("\n<details><summary>queries</summary>\n\n");
    for rendered in &run.queries {
        let _ = writeln!(out, "- `{}`: `{}`", rendered.metric, rendered.query);
    }
    out.push_str("\n</details>\n");
    out
}

/// The decision record's chart as SVG: for each compared metric, canary against baseline over
/// the window; without a comparison, each threshold metric's measurements against its bounds.
pub fn svg(run: &AnalysisRun) -> String {
    let title = format!(
        "{} in {}: {}",
        run.release,
        run.namespace,
        decision_word(run.verdict.decision)
    );
    let baseline = run
        .plan
        .compare
        .as_ref()
        .map(|c| c.baseline.clone())
        .unwrap_or_else(|| "baseline".to_owned());
    let mut panels: Vec<Panel> = Vec::new();
    if let Some(record) = &run.comparison {
        for series in &record.series {
            let verdict = record
                .result
                .metrics
                .iter()
                .find(|m| m.metric == series.metric)
                .map(|m| match (m.classification, m.failed) {
                    (Classification::TooFewSamples, _) => "too few samples",
                    (_, true) => "FAIL",
                    _ => "pass",
                })
                .unwrap_or("");
            panels.push(Panel {
                title: format!("{} ({verdict})", series.metric),
                lines: vec![
                    Line {
                        label: run.track.clone(),
                        color: svg::CANARY.to_owned(),
                        points: series.canary.clone(),
                    },
                    Line {
                        label: baseline.clone(),
                        color: svg::BASELINE.to_owned(),
                        points: series.baseline.clone(),
                    },
                ],
                threshold: None,
            });
        }
    }
    for check in &run.plan.metrics {
        let points: Vec<_> = run
            .measurements
            .iter()
            .filter(|m| m.metric == check.name)
            .filter_map(|m| match m.outcome {
                Outcome::Value(value) => Some((m.at, value)),
                _ => None,
            })
            .collect();
        panels.push(Panel {
            title: format!("{} ({})", check.name, bounds(check)),
            lines: vec![Line {
                label: run.track.clone(),
                color: svg::CANARY.to_owned(),
                points,
            }],
            threshold: check
                .max
                .map(|max| (format!("max {}", format_value(max)), max))
                .or_else(|| {
                    check
                        .min
                        .map(|min| (format!("min {}", format_value(min)), min))
                }),
        });
    }
    svg::chart(&title, &panels)
}

/// The decision record as pretty-printed JSON (the serde form of [`AnalysisRun`]).
/// Non-finite values appear as Prometheus' strings `"NaN"`, `"+Inf"`, `"-Inf"`.
pub fn json(run: &AnalysisRun) -> String {
    // Cannot fail: every map key is a string and non-finite floats are written as strings.
    // Falling back to an error object keeps the library free of panics all the same.
    serde_json::to_string_pretty(run).unwrap_or_else(|err| {
        serde_json::json!({ "error": format!("failed to serialize analysis run: {err}") })
            .to_string()
    })
}
