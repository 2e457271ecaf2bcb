//! The metrics backend boundary: [`MetricsProvider`] and the data it returns.
//!
//! Implementations we ship: [`crate::PrometheusClient`] (Prometheus HTTP API v1) and
//! [`crate::MemoryMetrics`] (in-memory store for tests and dry runs).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::Error;

/// A series' label set, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One value of one series at one instant (an element of a Prometheus instant vector).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Sample {
    /// The series' labels (empty for a scalar or a fully aggregated query).
    pub labels: Labels,
    /// The value; may be NaN or infinite, as in Prometheus.
    pub value: f64,
}

/// One series over a time range (an element of a Prometheus range matrix).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Series {
    /// The series' labels.
    pub labels: Labels,
    /// Points in time order.
    pub points: Vec<(Timestamp, f64)>,
}

/// Answers metric queries. Used as `Arc<dyn MetricsProvider>`, chosen at runtime from config.
#[async_trait::async_trait]
pub trait MetricsProvider: Send + Sync {
    /// Evaluates `query` at the instant `at`. An empty vector means "no data".
    async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<Sample>, Error>;

    /// Evaluates `query` at every `step` from `start` to `end` inclusive.
    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<Vec<Series>, Error>;
}
