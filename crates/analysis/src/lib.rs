//! Canary analysis: measure a release's metrics over time and decide Pass, Fail or Inconclusive.
//!
//! Key design decision: **the decision is a pure function and I/O stays at the edges.**
//! [`judge`] takes an [`AnalysisPlan`] and the [`Measurement`]s taken so far and returns a
//! [`Verdict`]; it has no async, no clock and no network, so every rule (thresholds,
//! `failure_limit`, `consecutive_error_limit`, `inconclusive_limit`, no-data policies, NaN) is
//! tested with a table of plain data. Everything that touches the world sits around it:
//!
//! - [`MetricsProvider`] is the one trait for the metrics backend. We ship
//!   [`PrometheusClient`] (HTTP API v1) and [`MemoryMetrics`] (an in-memory time-series store
//!   for tests and dry runs, with a switch that simulates an outage).
//! - [`run`] is the only function that waits: it takes measurements `interval` apart on a
//!   [`slipway_core::Clock`] (a `SimClock` makes a 5-minute analysis finish at once), asks
//!   [`judge`] after each round and stops as soon as the verdict can no longer be Pass.
//!
//! A measurement that could not be taken (Prometheus down, query rejected) is an *error*, never a
//! *failure*: errors count toward `consecutive_error_limit` and end the analysis as Inconclusive,
//! because an outage of the monitoring system says nothing about the canary. The semantics of the
//! three limits follow Argo Rollouts' `AnalysisTemplate`.
//!
//! Beyond thresholds, the same pure/edge split holds for the other judges:
//!
//! - [`compare`] (`[compare]` in the plan) compares canary and baseline samples per metric as
//!   Kayenta does (Mann-Whitney U, Hodges-Lehmann shift with a 0.98 interval, tolerance 0.25,
//!   direction, critical metrics, weighted score with pass 90 / marginal 75), and adds what
//!   Kayenta lacks: a spread test for variance-only regressions and a minimum sample count that
//!   says "too few samples" instead of guessing. A metric with a volume behind each point
//!   (requests) is judged on its counts instead of its ranks, so a canary with a small traffic
//!   share is neither failed for its sampling noise nor passed when it is worse: a
//!   quasi-binomial or per-unit-variance comparison with dispersion from the baseline, described
//!   with its assumptions and references in the `compare` module. The statistics live in
//!   [`stats`] and equal SciPy's to 1e-9 on recorded cases; the comparison sorts each side once
//!   and selects the Hodges-Lehmann order statistics in `O(n log n)`.
//! - [`judge_distribution`] and [`judge_accuracy`] (`[quality]`) judge prediction drift (PSI,
//!   two-sample KS) and accuracy on a labelled set; [`judge_smoke`] (`[[smoke]]`) judges HTTP
//!   answers. [`check_endpoints`] is their HTTP edge.
//! - [`replay`] runs a plan over a past time range ("would this canary have been stopped?")
//!   with the same judge as [`run`]; there a metrics outage is an error, not a verdict.
//!
//! Rendering the [`AnalysisRun`] as a decision record (text, Markdown, JSON, SVG chart) lives in
//! [`report`] and [`svg`].

mod compare;
mod endpoint;
mod error;
mod judge;
mod memory;
mod plan;
mod prometheus;
mod provider;
mod quality;
mod replay;
pub mod report;
mod run;
mod smoke;
pub mod stats;
pub mod svg;
mod template;

pub use compare::{
    BASELINE_DEPLOYMENT, BASELINE_DEPLOYMENT_TRACK, Classification, CompareMetric, ComparePlan,
    Comparison, CountModel, CountTest, Direction, MetricComparison, MetricSamples, Spread, compare,
};
pub use endpoint::{EndpointResults, Example, check_endpoints, load_dataset};
pub use error::Error;
pub use judge::{Decision, Measurement, MetricStatus, MetricTally, Outcome, Verdict, judge};
pub use memory::{LOOKBACK, MemoryMetrics};
pub use plan::{AnalysisPlan, MetricCheck, NoDataPolicy};
pub use prometheus::{PrometheusAuth, PrometheusClient, PrometheusConfig};
pub use provider::{Labels, MetricsProvider, Sample, Series};
pub use quality::{
    AccuracyCheck, AccuracyResult, DistributionCheck, DistributionResult, Quality, QualityPlan,
    Scored, judge_accuracy, judge_distribution,
};
pub use replay::replay;
pub use run::{AnalysisRun, CompareRecord, ComparedSeries, RenderedQuery, combine, run};
pub use smoke::{JsonExpectation, SmokeCheck, SmokeObservation, SmokeResult, judge_smoke};
pub use template::{TemplateVars, render};
