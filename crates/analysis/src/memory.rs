//! [`MemoryMetrics`]: an in-memory time-series store behind [`MetricsProvider`].
//!
//! It cannot evaluate PromQL. Each query's *exact text* (after template expansion) names a set
//! of series that a test or dry run pushes in advance; `instant` and `range` then answer with
//! Prometheus' sampling rules, so a plan behaves the same against it as against Prometheus for
//! the same data. `set_unavailable(true)` simulates an outage.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::Error;
use crate::provider::{Labels, MetricsProvider, Sample, Series};

/// Prometheus' default `--query.lookback-delta`: an instant query sees a series' latest sample
/// no older than this.
pub const LOOKBACK: Duration = Duration::from_secs(5 * 60);

/// Series by label set, each a time-sorted list of points.
type Store = HashMap<String, BTreeMap<Labels, Vec<(Timestamp, f64)>>>;

/// An in-memory metrics backend. See the module docs.
#[derive(Debug, Default)]
pub struct MemoryMetrics {
    series: Mutex<Store>,
    unavailable: AtomicBool,
}

impl MemoryMetrics {
    /// An empty store.
    pub fn new() -> MemoryMetrics {
        MemoryMetrics::default()
    }

    /// Records one sample of the series `labels` under the query text `query`.
    pub fn push(&self, query: &str, labels: &[(&str, &str)], at: Timestamp, value: f64) {
        self.push_series(query, labels, [(at, value)]);
    }

    /// Records several samples of one series. Order does not matter; a second value for the same
    /// timestamp replaces the first.
    pub fn push_series(
        &self,
        query: &str,
        labels: &[(&str, &str)],
        points: impl IntoIterator<Item = (Timestamp, f64)>,
    ) {
        let labels: Labels = labels
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let mut store = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let series = store
            .entry(query.to_owned())
            .or_default()
            .entry(labels)
            .or_default();
        for (at, value) in points {
            match series.binary_search_by_key(&at, |(t, _)| *t) {
                Ok(idx) => series[idx].1 = value,
                Err(idx) => series.insert(idx, (at, value)),
            }
        }
    }

    /// While `true`, every query fails as if Prometheus were down.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn check_available(&self, query: &str) -> Result<(), Error> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::Unavailable {
                backend: "in-memory metrics".to_owned(),
                query: query.to_owned(),
                reason: "the store is marked unavailable (simulated outage)".to_owned(),
                hint: "call `set_unavailable(false)` to end the outage".to_owned(),
            });
        }
        Ok(())
    }

    /// Each series' value at `at`, Prometheus-style.
    fn sample_at(store: &Store, query: &str, at: Timestamp) -> Vec<Sample> {
        let Some(series) = store.get(query) else {
            return Vec::new();
        };
        series
            .iter()
            .filter_map(|(labels, points)| {
                latest_within_lookback(points, at).map(|value| Sample {
                    labels: labels.clone(),
                    value,
                })
            })
            .collect()
    }
}

/// The value of the latest point in `(at - LOOKBACK, at]`, as Prometheus 3 selects it (the
/// window is left-open: a point exactly 5 minutes old is stale).
fn latest_within_lookback(points: &[(Timestamp, f64)], at: Timestamp) -> Option<f64> {
    let after_at = points.partition_point(|(t, _)| *t <= at);
    let (t, value) = points[..after_at].last()?;
    let lookback = SignedDuration::from_secs(LOOKBACK.as_secs() as i64);
    (at.duration_since(*t) < lookback).then_some(*value)
}

#[async_trait::async_trait]
impl MetricsProvider for MemoryMetrics {
    async fn instant(&self, query: &str, at: Timestamp) -> Result<Vec<Sample>, Error> {
        self.check_available(query)?;
        let store = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(Self::sample_at(&store, query, at))
    }

    async fn range(
        &self,
        query: &str,
        start: Timestamp,
        end: Timestamp,
        step: Duration,
    ) -> Result<Vec<Series>, Error> {
        self.check_available(query)?;
        let step = SignedDuration::try_from(step)
            .ok()
            .filter(|step| step.is_positive())
            .ok_or_else(|| Error::BadResponse {
                backend: "in-memory metrics".to_owned(),
                query: query.to_owned(),
                problem: format!("range step {step:?} is not positive"),
                hint: "pass a step such as 15s".to_owned(),
            })?;
        let store = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: BTreeMap<Labels, Vec<(Timestamp, f64)>> = BTreeMap::new();
        let mut at = start;
        while at <= end {
            for sample in Self::sample_at(&store, query, at) {
                out.entry(sample.labels)
                    .or_default()
                    .push((at, sample.value));
            }
            match at.checked_add(step) {
                Ok(next) => at = next,
                Err(_) => break,
            }
        }
        Ok(out
            .into_iter()
            .map(|(labels, points)| Series { labels, points })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &str = "up";

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("valid")
    }

    fn instant(store: &MemoryMetrics, query: &str, at: Timestamp) -> Result<Vec<Sample>, Error> {
        block_on(store.instant(query, at))
    }

    /// The store never awaits anything, so a no-op waker is enough to drive it.
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
    fn instant_follows_lookback() {
        let store = MemoryMetrics::new();
        store.push_series(Q, &[("track", "canary")], [(t(0), 1.0), (t(60), 2.0)]);
        store.push(Q, &[("track", "stable")], t(30), 5.0);
        let value_at = |at: Timestamp| -> Vec<(String, f64)> {
            instant(&store, Q, at)
                .expect("available")
                .into_iter()
                .map(|s| (s.labels["track"].clone(), s.value))
                .collect()
        };
        let cases: &[(i64, &[(&str, f64)])] = &[
            (-1, &[]),                                 // before any sample
            (0, &[("canary", 1.0)]),                   // exactly at a sample
            (59, &[("canary", 1.0), ("stable", 5.0)]), // latest at or before
            (60, &[("canary", 2.0), ("stable", 5.0)]),
            (329, &[("canary", 2.0), ("stable", 5.0)]), // stable's sample is 299 s old
            (330, &[("canary", 2.0)]),                  // exactly 5 min old: stale
            (359, &[("canary", 2.0)]),
            (360, &[]), // all stale
        ];
        for (second, expected) in cases {
            let expected: Vec<(String, f64)> = expected
                .iter()
                .map(|(track, v)| ((*track).to_owned(), *v))
                .collect();
            assert_eq!(value_at(t(*second)), expected, "at +{second}s");
        }
        assert_eq!(instant(&store, "other", t(0)).expect("available"), vec![]);
    }

    #[test]
    fn later_push_replaces_and_sorts() {
        let store = MemoryMetrics::new();
        store.push(Q, &[], t(60), 2.0);
        store.push(Q, &[], t(0), 1.0);
        store.push(Q, &[], t(60), 3.0);
        let values: Vec<f64> = [0, 30, 60]
            .iter()
            .map(|s| instant(&store, Q, t(*s)).expect("available")[0].value)
            .collect();
        assert_eq!(values, [1.0, 1.0, 3.0]);
    }

    #[test]
    fn range_samples_each_step() {
        let store = MemoryMetrics::new();
        store.push_series(Q, &[("pod", "a")], [(t(0), 1.0), (t(120), 2.0)]);
        store.push(Q, &[("pod", "b")], t(400), 9.0);
        let series =
            block_on(store.range(Q, t(-60), t(480), Duration::from_secs(60))).expect("available");
        let points = |idx: usize| -> Vec<(i64, f64)> {
            series[idx]
                .points
                .iter()
                .map(|(at, v)| (at.as_second() - 1_700_000_000, *v))
                .collect()
        };
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels["pod"], "a");
        assert_eq!(
            points(0),
            [
                (0, 1.0),
                (60, 1.0),
                (120, 2.0),
                (180, 2.0),
                (240, 2.0),
                (300, 2.0),
                (360, 2.0)
            ]
        );
        assert_eq!(points(1), [(420, 9.0), (480, 9.0)]);
        let err = block_on(store.range(Q, t(0), t(60), Duration::ZERO)).expect_err("zero step");
        assert!(
            err.to_string().contains("range step 0ns is not positive"),
            "{err}"
        );
    }

    #[test]
    fn outage() {
        let store = MemoryMetrics::new();
        store.push(Q, &[], t(0), 1.0);
        store.set_unavailable(true);
        let err = instant(&store, Q, t(0)).expect_err("outage");
        insta::assert_snapshot!(err.to_string(), @r"
        could not query in-memory metrics for `up`: the store is marked unavailable (simulated outage)

        hint: call `set_unavailable(false)` to end the outage
        ");
        store.set_unavailable(false);
        assert_eq!(instant(&store, Q, t(0)).expect("available").len(), 1);
    }
}
