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
//! Rendering the [`AnalysisRun`] as a decision record (text, Markdown, JSON) lives in [`report`].

mod error;
mod judge;
mod memory;
mod plan;
mod prometheus;
mod provider;
pub mod report;
mod run;
pub mod stats;
mod template;

pub use error::Error;
pub use judge::{Decision, Measurement, MetricStatus, MetricTally, Outcome, Verdict, judge};
pub use memory::{LOOKBACK, MemoryMetrics};
pub use plan::{AnalysisPlan, MetricCheck, NoDataPolicy};
pub use prometheus::{PrometheusAuth, PrometheusClient, PrometheusConfig};
pub use provider::{Labels, MetricsProvider, Sample, Series};
pub use run::{AnalysisRun, RenderedQuery, run};
pub use template::{TemplateVars, render};
