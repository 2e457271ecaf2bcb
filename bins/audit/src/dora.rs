//! DORA metrics from release records: deployment frequency, change-failure rate and time to
//! restore. Pure: records and a period in, numbers out.
//!
//! Definitions (DORA's, applied to what the trail records):
//! - a *deployment* is a revision that ended `promoted`;
//! - a *failed change* is a promoted revision that a later `rolled-back` revision of the same
//!   release replaced;
//! - *time to restore* runs from the failed promotion to the rollback that replaced it.
//!
//! Lead time for changes needs the commit time from the image's provenance, which release
//! records do not carry yet; it is reported as unavailable rather than guessed.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use slipway_core::{Outcome, ReleaseRecord};

/// The figures for one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Dora {
    pub(crate) since: Timestamp,
    pub(crate) until: Timestamp,
    pub(crate) deployments: usize,
    pub(crate) deployments_per_week: f64,
    pub(crate) failed_changes: usize,
    pub(crate) change_failure_rate: Option<f64>,
    pub(crate) mean_time_to_restore_minutes: Option<f64>,
    pub(crate) lead_time_for_changes: Option<f64>,
}

pub(crate) fn compute(records: &[ReleaseRecord], since: Timestamp, until: Timestamp) -> Dora {
    let in_period = |record: &&ReleaseRecord| record.at >= since && record.at < until;
    let promoted: Vec<&ReleaseRecord> = records
        .iter()
        .filter(in_period)
        .filter(|r| r.outcome == Outcome::Promoted)
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
        lead_time_for_changes: None,
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
            "period: {} .. {}\ndeployments: {} ({:.2} per week)\nchange failure rate: {} ({} failed)\nmean time to restore: {}\nlead time for changes: n/a (release records carry no commit time yet)\n",
            self.since,
            self.until,
            self.deployments,
            self.deployments_per_week,
            percent(self.change_failure_rate),
            self.failed_changes,
            minutes(self.mean_time_to_restore_minutes),
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
}
