//! DORA metrics from release records: deployment frequency, change-failure rate and time to
//! restore. Pure: records and a period in, numbers out.
//!
//! Definitions (DORA's, applied to what the trail records):
//! - a *deployment* is a revision that ended `promoted`;
//! - a *failed change* is a promoted revision that a later `rolled-back` revision of the same
//!   release replaced;
//! - *time to restore* runs from the failed promotion to the rollback that replaced it.
//!
//! - *lead time for changes* runs from the commit (`source_time`, recorded when the build said
//!   when it was committed) to the promotion: the median over the deployments that know it;
//!   unavailable, never guessed, when none does.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use slipway_core::{Outcome, ReleaseRecord};

/// The figures for one period.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub(crate) struct Dora {
    pub(crate) since: Timestamp,
    pub(crate) until: Timestamp,
    pub(crate) deployments: usize,
    pub(crate) deployments_per_week: f64,
    pub(crate) failed_changes: usize,
    pub(crate) change_failure_rate: Option<f64>,
    pub(crate) mean_time_to_restore_minutes: Option<f64>,
    /// Median minutes from commit to promotion, over the deployments that know their commit time.
    pub(crate) lead_time_for_changes: Option<f64>,
    /// How many deployments knew their commit time.
    pub(crate) lead_time_samples: usize,
}

pub(crate) fn compute(records: &[ReleaseRecord], since: Timestamp, until: Timestamp) -> Dora {
    let in_period = |record: &&ReleaseRecord| record.at >= since && record.at < until;
    let promoted: Vec<&ReleaseRecord> = records
        .iter()
        .filter(in_period)
        .filter(|r| r.outcome == Outcome::Promoted)
        .collect();
    let mut lead_times: Vec<f64> = promoted
        .iter()
        .filter_map(|record| {
            record
                .source_time
                .map(|commit| record.at.duration_since(commit).as_secs_f64() / 60.0)
        })
        .filter(|minutes| *minutes >= 0.0)
        .collect();
    let mut restores = Vec::new();
    for failed in &promoted {
        let rollback = records.iter().find(|later| {
            later.release == failed.release
                && later.outcome == Outcome::RolledBack
                && later.revision > failed.revision
                && later.at >= failed.at
        });
        // Only a rollback before any newer promotion replaced this one counts against it.
        let newer_promotion = records.iter().find(|later| {
            later.release == failed.release
                && later.outcome == Outcome::Promoted
                && later.revision > failed.revision
        });
        if let Some(rollback) = rollback
            && newer_promotion.is_none_or(|newer| newer.revision > rollback.revision)
        {
            restores.push(rollback.at.duration_since(failed.at));
        }
    }
    let weeks = until.duration_since(since).as_secs_f64()
        / SignedDuration::from_hours(24 * 7).as_secs_f64();
    let deployments = promoted.len();
    Dora {
        since,
        until,
        deployments,
        deployments_per_week: if weeks > 0.0 {
            deployments as f64 / weeks
        } else {
            0.0
        },
        failed_changes: restores.len(),
        change_failure_rate: (deployments > 0).then(|| restores.len() as f64 / deployments as f64),
        mean_time_to_restore_minutes: (!restores.is_empty()).then(|| {
            restores.iter().map(|d| d.as_secs_f64() / 60.0).sum::<f64>() / restores.len() as f64
        }),
        lead_time_for_changes: median(&mut lead_times),
        lead_time_samples: lead_times.len(),
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// "12.0 min (median of 3)" or why there is no figure.
pub(crate) fn lead_time_text(dora: &Dora) -> String {
    match dora.lead_time_for_changes {
        Some(minutes) => format!("{minutes:.1} min (median of {})", dora.lead_time_samples),
        None => "n/a (no deployment recorded its commit time)".to_owned(),
    }
}

impl Dora {
    pub(crate) fn to_text(&self) -> String {
        let percent = |value: Option<f64>| {
            value.map_or_else(
                || "n/a (no deployments)".to_owned(),
                |v| format!("{:.1}%", v * 100.0),
            )
        };
        let minutes = |value: Option<f64>| {
            value.map_or_else(
                || "n/a (nothing to restore)".to_owned(),
                |v| format!("{v:.1} min"),
            )
        };
        format!(
            "period: {} .. {}\ndeployments: {} ({:.2} per week)\nchange failure rate: {} ({} failed)\nmean time to restore: {}\nlead time for changes: {}\n",
            self.since,
            self.until,
            self.deployments,
            self.deployments_per_week,
            percent(self.change_failure_rate),
            self.failed_changes,
            minutes(self.mean_time_to_restore_minutes),
            lead_time_text(self),
        )
    }
}

#[cfg(test)]
mod tests {
    use slipway_core::{Digest, ImageRef, ModelVersion, ReleaseId, Strategy};

    use super::*;

    fn record(revision: u64, outcome: Outcome, minute: i64) -> ReleaseRecord {
        let digest = Digest::parse(&format!("sha256:{}", "a".repeat(64))).expect("digest");
        ReleaseRecord {
            trail_head: None,
            ci_run: None,
            source_time: None,
            creates: Vec::new(),
            alias_pending: None,
            release: ReleaseId::parse("ml/iris").expect("id"),
            revision,
            image: ImageRef::parse("ghcr.io/acme/iris:1")
                .expect("ref")
                .with_digest(digest.clone()),
            digest,
            model: ModelVersion {
                name: "iris".into(),
                version: revision,
            },
            strategy: Strategy::Canary,
            outcome,
            actor: "ci".into(),
            at: Timestamp::from_second(1_700_000_000 + minute * 60).expect("ts"),
            reason: None,
        }
    }

    #[test]
    fn counts_deployments_failures_and_restores() {
        let records = [
            record(1, Outcome::Promoted, 0),
            record(2, Outcome::Aborted, 60),
            record(3, Outcome::Promoted, 120),
            record(4, Outcome::RolledBack, 150),
            record(5, Outcome::Promoted, 600),
        ];
        let since = Timestamp::from_second(1_700_000_000).expect("ts");
        let until = since + SignedDuration::from_hours(24 * 7);
        let dora = compute(&records, since, until);
        assert_eq!(dora.deployments, 3);
        assert!((dora.deployments_per_week - 3.0).abs() < 1e-9);
        assert_eq!(
            dora.failed_changes, 1,
            "revision 3 was rolled back; 1 and 5 were not"
        );
        assert_eq!(dora.change_failure_rate, Some(1.0 / 3.0));
        assert_eq!(dora.mean_time_to_restore_minutes, Some(30.0));
        let empty = compute(&[], since, until);
        assert_eq!(
            (
                empty.deployments,
                empty.change_failure_rate,
                empty.mean_time_to_restore_minutes
            ),
            (0, None, None)
        );
    }

    #[test]
    fn lead_time_is_the_median_from_commit_to_promotion_of_those_that_know() {
        let since = Timestamp::from_second(1_700_000_000).expect("ts");
        let until = since + SignedDuration::from_hours(24 * 7);
        let with_commit = |revision: u64, minute: i64, commit_minutes_before: i64| ReleaseRecord {
            source_time: Some(
                Timestamp::from_second(1_700_000_000 + (minute - commit_minutes_before) * 60)
                    .expect("ts"),
            ),
            ..record(revision, Outcome::Promoted, minute)
        };
        let records = [
            with_commit(1, 100, 30),
            record(2, Outcome::Promoted, 200),
            with_commit(3, 300, 90),
            with_commit(4, 400, 60),
            ReleaseRecord {
                source_time: Some(since),
                ..record(5, Outcome::Aborted, 500)
            },
        ];
        let dora = compute(&records, since, until);
        assert_eq!(
            dora.lead_time_samples, 3,
            "revision 2 knows no commit, 5 was not deployed"
        );
        assert_eq!(dora.lead_time_for_changes, Some(60.0));
        assert_eq!(lead_time_text(&dora), "60.0 min (median of 3)");
        let unknown = compute(&records[1..2], since, until);
        assert_eq!(
            lead_time_text(&unknown),
            "n/a (no deployment recorded its commit time)"
        );
    }
}
