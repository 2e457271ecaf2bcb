//! [`watch`]: guard a release after promotion and roll it back by itself when it breaks.
//!
//! Every `interval` for `duration`, the watch checks the stable Deployment's health (every pod
//! ready on the current template, no pod problem) and measures each guarded metric on the
//! stable track (by default the analysis plan's error-rate and p99-latency queries). A breach
//! that holds without interruption for `sustain` (`health_grace` for health) triggers the
//! existing [`crate::rollback`] to the previous successful revision, as an emergency (no
//! approval gate: the release is hurting users now) with a reason naming the breach.
//!
//! Key design decision: "has this breach held long enough?" is the pure [`first_sustained`],
//! over plain `(time, observation)` pairs, so every timing rule is a table test; the loop around
//! it only measures, on the backends' [`slipway_core::Clock`] (a `SimClock` makes a 30-minute
//! watch instant). A check that could not be made (metrics down, no data, cluster unreachable)
//! is [`Observation::Unknown`] and *interrupts* a streak: a rollback needs the breach to have
//! been seen continuously, as the analysis refuses to fail a canary on a monitoring outage.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slipway_analysis::TemplateVars;
use slipway_audit_log::Event;
use slipway_core::{Outcome, ReleaseId, ReleaseRecord};
use slipway_gates::Policy;

use crate::{
    Backends, Observer, ReleaseSpec, RollbackSpec, RollbackTarget, RunOutcome, RunReport,
    StageEvent, StageStatus,
};

/// The `[watch]` configuration section, as written (durations like `"30m"`, `"30s"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    /// How long to guard the release after promotion.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub duration: Duration,
    /// Time between checks.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub interval: Duration,
    /// How long a metric must stay above its maximum before the watch rolls back.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub sustain: Duration,
    /// How long stable may stay unhealthy (pods not ready, a pod problem) before the watch rolls
    /// back. Short, because a crash-looping stable serves nobody.
    #[serde(with = "jiff::fmt::serde::unsigned_duration::friendly::compact::required")]
    pub health_grace: Duration,
    /// Highest tolerated error ratio on stable (0.01 = 1%).
    pub error_rate_max: f64,
    /// Highest tolerated p99 latency on stable, in seconds.
    pub latency_p99_max: f64,
    /// Error-ratio query template (default: the analysis plan's `error-rate` query).
    pub error_rate_query: Option<String>,
    /// p99 latency query template (default: the analysis plan's `p99-latency` query).
    pub latency_p99_query: Option<String>,
}

impl Default for WatchConfig {
    /// Error rate above 1% or p99 above 2 s, either for 5 minutes, over 30 minutes checked
    /// every 30 seconds; one minute of ill health.
    fn default() -> WatchConfig {
        WatchConfig {
            duration: Duration::from_secs(30 * 60),
            interval: Duration::from_secs(30),
            sustain: Duration::from_secs(5 * 60),
            health_grace: Duration::from_secs(60),
            error_rate_max: 0.01,
            latency_p99_max: 2.0,
            error_rate_query: None,
            latency_p99_query: None,
        }
    }
}

/// One guarded metric on the stable track.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchMetric {
    /// Name in events and reasons.
    pub name: String,
    /// Query template (`{{release}}`, `{{namespace}}`, `{{track}}`, `{{interval}}`).
    pub query: String,
    /// A value above this is a breach.
    pub max: f64,
}

/// A watch to run, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchSpec {
    /// Which release.
    pub release: ReleaseId,
    /// How long to guard.
    pub duration: Duration,
    /// Time between checks.
    pub interval: Duration,
    /// How long a metric breach must hold.
    pub sustain: Duration,
    /// How long ill health must hold.
    pub health_grace: Duration,
    /// The guarded metrics.
    pub metrics: Vec<WatchMetric>,
    /// `{{interval}}` in the queries (the analysis plan's interval, so the series match).
    pub rate_window: Duration,
    /// Who runs it (recorded on the rollback).
    pub actor: String,
    /// Alias that marks the serving model version (moved back on rollback).
    pub serving_alias: String,
    /// How long stable may take to become healthy after the rollback.
    pub progress_deadline: Duration,
    /// Records kept in the cluster's release history.
    pub history_limit: usize,
    /// Signature policy the rollback target must still satisfy.
    pub policy: Policy,
    /// The Service in front of the release.
    pub service: String,
    /// How a canary gets its traffic (a rollback removes its routing too).
    pub traffic: slipway_k8s_rollout::rollout::TrafficRouting,
}

/// The `[watch]` section cannot make a watch.
#[derive(Debug, thiserror::Error)]
#[error("invalid watch configuration:\n{}\n\nhint: fix the `[watch]` section (`--print-config` shows every key)", problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct InvalidWatch {
    /// Every problem found.
    pub problems: Vec<String>,
}

impl WatchSpec {
    /// Builds the watch for `release` from `config`. Queries not given default to the analysis
    /// plan's metrics named `error-rate` and `p99-latency`; every problem is reported at once.
    pub fn new(release: &ReleaseSpec, config: &WatchConfig) -> Result<WatchSpec, InvalidWatch> {
        let mut problems = Vec::new();
        let plan_query = |name: &str| {
            release
                .analysis
                .metrics
                .iter()
                .find(|check| check.name == name)
                .map(|check| check.query.clone())
        };
        let mut metrics = Vec::new();
        for (name, key, given, max) in [
            (
                "error-rate",
                "error_rate",
                &config.error_rate_query,
                config.error_rate_max,
            ),
            (
                "p99-latency",
                "latency_p99",
                &config.latency_p99_query,
                config.latency_p99_max,
            ),
        ] {
            if !max.is_finite() || max < 0.0 {
                problems.push(format!(
                    "`{key}_max` is {max}; give a finite, non-negative number"
                ));
            }
            let Some(query) = given.clone().or_else(|| plan_query(name)) else {
                problems.push(format!(
                    "`{key}_query` is not set and the analysis plan has no metric `{name}` to borrow it from"
                ));
                continue;
            };
            let probe = TemplateVars {
                interval: Some(release.analysis.interval),
                ..TemplateVars::new(
                    release.release.name.clone(),
                    release.release.namespace.clone(),
                    "stable",
                )
            };
            if let Err(err) = slipway_analysis::render(&query, &probe) {
                let text = err.to_string();
                problems.push(format!(
                    "`{key}_query`: {}",
                    text.split("\n\nhint:").next().unwrap_or(&text)
                ));
            }
            metrics.push(WatchMetric {
                name: name.to_owned(),
                query,
                max,
            });
        }
        if config.interval.is_zero() {
            problems.push("`interval` is 0; check at least every few seconds".to_owned());
        }
        if config.duration < config.interval {
            problems.push(format!(
                "`duration` {:?} is shorter than `interval` {:?}; nothing would be checked twice",
                config.duration, config.interval
            ));
        }
        if !problems.is_empty() {
            return Err(InvalidWatch { problems });
        }
        Ok(WatchSpec {
            release: release.release.clone(),
            duration: config.duration,
            interval: config.interval,
            sustain: config.sustain,
            health_grace: config.health_grace,
            metrics,
            rate_window: release.analysis.interval,
            service: release.service.clone(),
            traffic: release.traffic.clone(),
            actor: release.actor.clone(),
            serving_alias: release.serving_alias.clone(),
            progress_deadline: release.progress_deadline,
            history_limit: release.history_limit,
            policy: release.policy.clone(),
        })
    }
}

/// What one check of one signal saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// Within limits.
    Healthy,
    /// Outside limits.
    Breach,
    /// Could not tell (no data, NaN, an error): interrupts a streak.
    Unknown,
}

/// Classifies a measured value against a maximum. Pure.
pub fn observe_value(value: Option<f64>, max: f64) -> Observation {
    match value {
        None => Observation::Unknown,
        Some(value) if value.is_nan() => Observation::Unknown,
        Some(value) if value > max => Observation::Breach,
        Some(_) => Observation::Healthy,
    }
}

/// A breach that held long enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sustained {
    /// The first check of the uninterrupted streak.
    pub since: Timestamp,
    /// The check at which it had held for `sustain`.
    pub at: Timestamp,
}

/// The first time a breach held without interruption for `sustain`, measured from the first
/// breaching check of the streak to the current one; any `Healthy` or `Unknown` check ends a
/// streak. `observations` are in time order. Pure.
pub fn first_sustained(
    observations: &[(Timestamp, Observation)],
    sustain: Duration,
) -> Option<Sustained> {
    let sustain = SignedDuration::try_from(sustain).unwrap_or(SignedDuration::MAX);
    let mut since = None;
    for (at, observation) in observations {
        if *observation != Observation::Breach {
            since = None;
            continue;
        }
        let start = *since.get_or_insert(*at);
        if at.duration_since(start) >= sustain {
            return Some(Sustained {
                since: start,
                at: *at,
            });
        }
    }
    None
}

/// One signal the watch follows: stable's health or one metric.
struct Signal {
    name: String,
    /// What the limit is, for messages.
    limit: String,
    sustain: Duration,
    observations: Vec<(Timestamp, Observation)>,
    last: Option<f64>,
    last_detail: String,
    measured: u32,
}

impl Signal {
    fn new(name: &str, limit: String, sustain: Duration) -> Signal {
        Signal {
            name: name.to_owned(),
            limit,
            sustain,
            observations: Vec::new(),
            last: None,
            last_detail: String::new(),
            measured: 0,
        }
    }

    fn previous(&self) -> Option<Observation> {
        self.observations
            .last()
            .map(|(_, observation)| *observation)
    }
}

struct Watcher<'a> {
    spec: &'a WatchSpec,
    backends: &'a Backends,
    observer: &'a mut dyn Observer,
    report: RunReport,
    /// The Deployment that serves: stable, or the active blue-green colour.
    serving_name: String,
    /// True while a rollback runs: a signal then lets the rollback settle (it races the same
    /// interrupt) instead of dropping it half-way.
    rolling_back: tokio::sync::watch::Sender<bool>,
}

/// Guards the release for `spec.duration`; on a sustained breach rolls it back.
///
/// Outcome: `Promoted` when the guarded revision still serves at the end with no breach (exit 0),
/// `Rejected` when a breach held and the rollback finished (exit 1: a "no" for the release),
/// `Failed` when the watch could not guard (nothing promoted, stable changed under it, no metric
/// ever measured) or the rollback did not finish (exit 2).
pub async fn watch(
    spec: &WatchSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
) -> RunReport {
    let mut watcher = Watcher {
        spec,
        backends,
        observer,
        report: RunReport::new(&spec.release),
        serving_name: spec.release.name.clone(),
        rolling_back: tokio::sync::watch::Sender::new(false),
    };
    let mut rolling_back = watcher.rolling_back.subscribe();
    // A signal stops the guard where it waits (a rollback in progress settles itself first:
    // it races the same interrupt and records or undoes what it did).
    let interrupt = backends.interrupt.clone();
    let guarded = tokio::select! {
        biased;
        why = async {
            let why = interrupt.triggered().await;
            let _ = rolling_back.wait_for(|busy| !*busy).await;
            why
        } => Err((RunOutcome::Cancelled, format!("{why}: stopped guarding"))),
        done = watcher.guard() => done,
    };
    let (outcome, reason) = match guarded {
        Ok(done) | Err(done) => done,
    };
    if outcome == RunOutcome::Cancelled && watcher.report.interruption.is_none() {
        watcher.report.interruption = interrupt.current();
        let _ = watcher.audit("cancelled", &reason).await;
    }
    watcher.report.outcome = outcome;
    watcher.report.reason = reason;
    watcher.report
}

fn one_line(err: &dyn std::error::Error) -> String {
    err.to_string()
        .replace("\n\nhint: ", " (hint: ")
        .replace('\n', " ")
}

fn failed(reason: String) -> (RunOutcome, String) {
    (RunOutcome::Failed, reason)
}

fn minutes(duration: Duration) -> String {
    let secs = duration.as_secs();
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

impl Watcher<'_> {
    fn emit(&mut self, status: StageStatus, message: String) {
        let event = StageEvent {
            stage: "watch",
            status,
            at: self.backends.clock.now(),
            message,
        };
        self.observer.event(&event);
        self.report.stages.push(event);
    }

    async fn audit(&mut self, verdict: &str, detail: &str) -> Result<(), (RunOutcome, String)> {
        let event = Event::Decision {
            release: self.spec.release.clone(),
            stage: "watch".to_owned(),
            verdict: verdict.to_owned(),
            detail: detail.to_owned(),
        };
        self.backends
            .audit
            .append(self.backends.clock.now(), event)
            .await
            .map(drop)
            .map_err(|err| failed(one_line(&err)))
    }

    /// The revision serving now, checked against what stable runs.
    async fn guarded(&mut self) -> Result<(ReleaseRecord, String), (RunOutcome, String)> {
        let release = &self.spec.release;
        let cluster = self.backends.cluster.as_ref();
        let history = cluster
            .release_history(release)
            .await
            .map_err(|err| failed(one_line(&err)))?;
        let Some(current) = history
            .iter()
            .rev()
            .find(|record| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack))
            .cloned()
        else {
            return Err(failed(format!(
                "nothing to guard: {release} has no promoted revision in its history (hint: watch after `slipway-deploy run` promoted one)"
            )));
        };
        // After a blue-green release the active colour serves, not the user's Deployment.
        let stable = slipway_k8s_rollout::bluegreen::serving(cluster, release, &self.spec.service)
            .await
            .map_err(|err| failed(one_line(&err)))?;
        self.serving_name = stable.spec.name.clone();
        if !stable.spec.image.ends_with(&current.digest.to_string()) {
            return Err(failed(format!(
                "stable {release} runs {} but its newest successful revision {} deployed {}; the cluster and the history disagree (hint: `slipway-audit log` shows who changed what; watch after the next release)",
                stable.spec.image, current.revision, current.digest
            )));
        }
        Ok((current, stable.spec.image))
    }

    async fn guard(&mut self) -> Result<(RunOutcome, String), (RunOutcome, String)> {
        let spec = self.spec;
        let release = &spec.release;
        let (current, image) = self.guarded().await?;
        self.report.revision = Some(current.revision);
        self.report.model = Some(current.model.clone());
        self.report.digest = Some(current.digest.clone());
        // The serving pods' track: `stable`, or the active colour after a blue-green release.
        let track = self
            .serving_name
            .strip_prefix(&format!("{}-", release.name))
            .filter(|colour| matches!(*colour, "blue" | "green"))
            .unwrap_or("stable")
            .to_owned();
        let vars = TemplateVars {
            interval: Some(spec.rate_window),
            ..TemplateVars::new(release.name.clone(), release.namespace.clone(), track)
        };
        let mut queries = Vec::new();
        for metric in &spec.metrics {
            let query = slipway_analysis::render(&metric.query, &vars)
                .map_err(|err| failed(format!("metric `{}`: {}", metric.name, one_line(&err))))?;
            queries.push(query);
        }
        let limits: Vec<String> = spec
            .metrics
            .iter()
            .map(|metric| format!("{} ≤ {}", metric.name, metric.max))
            .collect();
        self.emit(
            StageStatus::Start,
            format!(
                "guarding revision {} ({} at {}) for {}, every {}: {} sustained {}, pods healthy within {}",
                current.revision,
                current.model,
                current.digest.short(),
                minutes(spec.duration),
                minutes(spec.interval),
                limits.join(", "),
                minutes(spec.sustain),
                minutes(spec.health_grace),
            ),
        );
        let mut signals = vec![Signal::new(
            "health",
            "every pod ready".to_owned(),
            spec.health_grace,
        )];
        signals.extend(
            spec.metrics.iter().map(|metric| {
                Signal::new(&metric.name, format!("max {}", metric.max), spec.sustain)
            }),
        );
        let clock = self.backends.clock.clone();
        let start = clock.now();
        let summary_every = spec.sustain.max(spec.interval);
        let mut next_summary = summary_every;
        let mut checks = 0u32;
        loop {
            let now = clock.now();
            checks += 1;
            let health = self.check_health(&image).await?;
            let mut observed = vec![health];
            for (metric, query) in spec.metrics.iter().zip(&queries) {
                observed.push(self.measure(metric, query, now).await);
            }
            for (signal, (observation, value, detail)) in signals.iter_mut().zip(observed) {
                let previous = signal.previous();
                signal.observations.push((now, observation));
                if value.is_some() {
                    signal.last = value;
                    signal.measured += 1;
                }
                let changed = previous != Some(observation)
                    && !(previous.is_none() && observation == Observation::Healthy);
                let message = match observation {
                    Observation::Breach => format!(
                        "{}: {detail} ({}): breach begins; rolls back if it holds for {}",
                        signal.name,
                        signal.limit,
                        minutes(signal.sustain)
                    ),
                    Observation::Healthy => {
                        format!("{}: back within limits ({detail})", signal.name)
                    }
                    Observation::Unknown => format!(
                        "{}: cannot tell ({detail}); a breach streak needs every check",
                        signal.name
                    ),
                };
                signal.last_detail = detail;
                if changed {
                    let event = StageEvent {
                        stage: "watch",
                        status: StageStatus::Info,
                        at: now,
                        message,
                    };
                    self.observer.event(&event);
                    self.report.stages.push(event);
                }
            }
            if let Some((signal, sustained)) = signals.iter().find_map(|signal| {
                first_sustained(&signal.observations, signal.sustain)
                    .map(|sustained| (signal, sustained))
            }) {
                let held = minutes(sustained.at.duration_since(sustained.since).unsigned_abs());
                let what = format!(
                    "{} breached for {held} since {} ({}; {})",
                    signal.name,
                    sustained.since.strftime("%H:%M:%S"),
                    signal.last_detail,
                    signal.limit
                );
                return self.roll_back(&current, &what).await;
            }
            let elapsed = now.duration_since(start).unsigned_abs();
            if elapsed >= spec.duration {
                break;
            }
            if elapsed >= next_summary {
                next_summary += summary_every;
                let values: Vec<String> = signals
                    .iter()
                    .map(|signal| format!("{} {}", signal.name, signal.last_detail))
                    .collect();
                self.emit(
                    StageStatus::Pass,
                    format!("{} guarded: {}", minutes(elapsed), values.join("; ")),
                );
            }
            clock.sleep(spec.interval).await;
        }
        let never: Vec<&str> = signals
            .iter()
            .skip(1)
            .filter(|signal| signal.measured == 0)
            .map(|signal| signal.name.as_str())
            .collect();
        if !never.is_empty() {
            let reason = format!(
                "could not guard revision {}: {} never measured in {checks} checks (hint: check the `[watch]` queries and the metrics backend)",
                current.revision,
                never.join(", ")
            );
            self.emit(StageStatus::Fail, reason.clone());
            self.audit("inconclusive", &reason).await?;
            return Err(failed(reason));
        }
        let coverage: Vec<String> = signals
            .iter()
            .skip(1)
            .map(|signal| format!("{} measured {}/{checks}", signal.name, signal.measured))
            .collect();
        let reason = format!(
            "revision {} ({}) guarded for {} with no sustained breach ({})",
            current.revision,
            current.model,
            minutes(spec.duration),
            coverage.join(", ")
        );
        self.emit(StageStatus::Pass, reason.clone());
        self.audit("pass", &reason).await?;
        Ok((RunOutcome::Promoted, reason))
    }

    /// Stable's health now; a changed image ends the watch.
    async fn check_health(
        &mut self,
        image: &str,
    ) -> Result<(Observation, Option<f64>, String), (RunOutcome, String)> {
        let release = &self.spec.release;
        let state = self
            .backends
            .cluster
            .deployment(&release.namespace, &self.serving_name)
            .await;
        Ok(match state {
            Ok(Some(state)) if state.spec.image != image => {
                let reason = format!(
                    "stable {release} changed under the watch, from {image} to {}: a new release or rollback took over (hint: watch that revision instead)",
                    state.spec.image
                );
                self.emit(StageStatus::Fail, reason.clone());
                return Err(failed(reason));
            }
            Ok(Some(state)) => {
                let ready = format!(
                    "{}/{} pods ready",
                    state.updated_ready_replicas, state.spec.replicas
                );
                match &state.problem {
                    Some(problem) => (Observation::Breach, None, format!("{ready}, {problem}")),
                    None if state.rolled_out() => (Observation::Healthy, None, ready),
                    None => (Observation::Breach, None, ready),
                }
            }
            Ok(None) => (
                Observation::Breach,
                None,
                "the stable Deployment is gone".to_owned(),
            ),
            Err(err) => (Observation::Unknown, None, one_line(&err)),
        })
    }

    async fn measure(
        &self,
        metric: &WatchMetric,
        query: &str,
        at: Timestamp,
    ) -> (Observation, Option<f64>, String) {
        match self.backends.metrics.instant(query, at).await {
            Ok(samples) => match samples.as_slice() {
                [] => (Observation::Unknown, None, "no data".to_owned()),
                [sample] => {
                    let value = Some(sample.value).filter(|value| !value.is_nan());
                    let observation = observe_value(value, metric.max);
                    (observation, value, format!("{:.4}", sample.value))
                }
                many => (
                    Observation::Unknown,
                    None,
                    format!("{} series; the query must return one number", many.len()),
                ),
            },
            Err(err) => {
                let text = err.to_string();
                let first = text.split("\n\nhint:").next().unwrap_or(&text).to_owned();
                (Observation::Unknown, None, first)
            }
        }
    }

    async fn roll_back(
        &mut self,
        current: &ReleaseRecord,
        what: &str,
    ) -> Result<(RunOutcome, String), (RunOutcome, String)> {
        let spec = self.spec;
        self.emit(
            StageStatus::Fail,
            format!("revision {}: {what}: rolling back", current.revision),
        );
        let detail = format!("revision {} ({}): {what}", current.revision, current.model);
        self.audit("fail", &detail).await?;
        let rollback = RollbackSpec {
            release: spec.release.clone(),
            target: RollbackTarget::Previous,
            reason: format!("watch: {what}"),
            emergency: true,
            actor: spec.actor.clone(),
            serving_alias: spec.serving_alias.clone(),
            progress_deadline: spec.progress_deadline,
            history_limit: spec.history_limit,
            policy: spec.policy.clone(),
            service: spec.service.clone(),
            traffic: spec.traffic.clone(),
        };
        self.rolling_back.send_replace(true);
        let rolled = crate::rollback(&rollback, self.backends, &mut *self.observer).await;
        self.report.stages.extend(rolled.stages);
        self.report.gates.extend(rolled.gates);
        self.report.interruption = rolled.interruption.clone();
        self.rolling_back.send_replace(false);
        match rolled.outcome {
            RunOutcome::RolledBack => Ok((
                RunOutcome::Rejected,
                format!("revision {}: {what}; {}", current.revision, rolled.reason),
            )),
            _ => Err(failed(format!(
                "revision {}: {what}, and the rollback did not finish: {}",
                current.revision, rolled.reason
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).expect("valid")
    }

    /// `pattern`: one char per check, 30 s apart: `B` breach, `.` healthy, `?` unknown.
    #[track_caller]
    fn check(pattern: &str, sustain_secs: u64, expected: Option<(i64, i64)>) {
        let observations: Vec<(Timestamp, Observation)> = pattern
            .chars()
            .enumerate()
            .map(|(idx, c)| {
                let observation = match c {
                    'B' => Observation::Breach,
                    '.' => Observation::Healthy,
                    '?' => Observation::Unknown,
                    other => panic!("bad pattern char {other:?}"),
                };
                (t(idx as i64 * 30), observation)
            })
            .collect();
        let got = first_sustained(&observations, Duration::from_secs(sustain_secs));
        let expected = expected.map(|(since, at)| Sustained {
            since: t(since),
            at: t(at),
        });
        assert_eq!(
            got, expected,
            "pattern {pattern:?}, sustain {sustain_secs}s"
        );
    }

    #[test]
    fn sustained_breaches() {
        // Nothing to see.
        check("", 300, None);
        check("..........", 300, None);
        // 5 minutes = 11 checks 30 s apart, first to last.
        check("BBBBBBBBBB", 300, None);
        check("BBBBBBBBBBB", 300, Some((0, 300)));
        check("..BBBBBBBBBBB", 300, Some((60, 360)));
        // A healthy check restarts the streak.
        check("BBBBB.BBBBBBBBBB", 300, None);
        check("BBBBB.BBBBBBBBBBB", 300, Some((180, 480)));
        // So does a check that could not tell: a rollback needs the breach seen throughout.
        check("BBBBBBBBB?BBBBB", 300, None);
        check("?BBBBBBBBBBB", 300, Some((30, 330)));
        // The first streak that qualifies wins, not the longest.
        check("BBBBBBBBBBBBBBBBBBBB", 300, Some((0, 300)));
        // No grace: the first breach is enough.
        check("..B", 0, Some((60, 60)));
        // A one-minute grace needs three checks.
        check(".BB.BBB", 60, Some((120, 180)));
    }

    #[test]
    fn uneven_check_times_use_real_time() {
        // Checks late by a few seconds (a slow query) still measure the streak by clock time.
        let observations = [
            (t(0), Observation::Breach),
            (t(170), Observation::Breach),
            (t(299), Observation::Breach),
            (t(301), Observation::Breach),
        ];
        assert_eq!(
            first_sustained(&observations, Duration::from_secs(300)),
            Some(Sustained {
                since: t(0),
                at: t(301)
            })
        );
    }

    #[test]
    fn values_against_max() {
        for (value, max, expected) in [
            (Some(0.02), 0.01, Observation::Breach),
            (Some(0.01), 0.01, Observation::Healthy),
            (Some(0.0), 0.01, Observation::Healthy),
            (Some(f64::INFINITY), 2.0, Observation::Breach),
            (Some(f64::NAN), 2.0, Observation::Unknown),
            (None, 2.0, Observation::Unknown),
        ] {
            assert_eq!(observe_value(value, max), expected, "{value:?} vs {max}");
        }
    }

    #[test]
    fn config_reads_friendly_durations_and_rejects_typos() {
        let config: WatchConfig =
            serde_json::from_str(r#"{"duration": "1h", "sustain": "2m", "error_rate_max": 0.05}"#)
                .expect("parse");
        assert_eq!(config.duration, Duration::from_secs(3600));
        assert_eq!(config.sustain, Duration::from_secs(120));
        assert_eq!(
            config.interval,
            Duration::from_secs(30),
            "unset keys keep defaults"
        );
        assert!((config.error_rate_max - 0.05).abs() < f64::EPSILON);
        let err = serde_json::from_str::<WatchConfig>(r#"{"sustained": "2m"}"#).expect_err("typo");
        assert!(
            err.to_string().contains("unknown field `sustained`"),
            "{err}"
        );
    }
}
