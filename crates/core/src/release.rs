//! Releases: which workload is released ([`ReleaseId`]) and what happened to one revision of it
//! ([`ReleaseRecord`]).
//!
//! `ReleaseRecord` is serialisable on purpose, unlike most domain types: it *is* a stored format
//! (the audit trail and the in-cluster release history hold it), so its field names are part of
//! the on-disk contract. Add fields with `#[serde(default)]`; never rename one.

use std::fmt;

use jiff::Timestamp;

use crate::digest::Digest;
use crate::model::ModelVersion;
use crate::reference::ImageRef;

/// A release: the Kubernetes namespace and the name of the stable Deployment it manages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseId {
    /// Namespace.
    pub namespace: String,
    /// Deployment name.
    pub name: String,
}

/// Why a release id did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid release `{input}`: {why}\n\nhint: write `namespace/name`, both lowercase DNS labels such as `ml-serving/iris-classifier`"
)]
pub struct ReleaseIdError {
    /// The text that was parsed.
    pub input: String,
    /// What is wrong.
    pub why: String,
}

impl ReleaseId {
    /// Parses `namespace/name`.
    pub fn parse(input: &str) -> Result<ReleaseId, ReleaseIdError> {
        let err = |why: String| ReleaseIdError {
            input: input.to_owned(),
            why,
        };
        let Some((namespace, name)) = input.split_once('/') else {
            return Err(err("expected `namespace/name`".to_owned()));
        };
        for (what, value, max) in [("namespace", namespace, 63), ("name", name, 63)] {
            if !is_dns_label(value, max) {
                return Err(err(format!(
                    "{what} `{value}` is not a DNS label (lowercase letters, digits and inner `-`, at most {max} characters)"
                )));
            }
        }
        // The canary and the colours append suffixes; keep room for `-canary` and `-green`.
        if name.len() > 63 - "-canary".len() {
            return Err(err(format!(
                "name `{name}` leaves no room for the `-canary` suffix (at most 56 characters)"
            )));
        }
        Ok(ReleaseId {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

fn is_dns_label(value: &str, max: usize) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl serde::Serialize for ReleaseId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ReleaseId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ReleaseId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// How a new revision replaces the old one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// A `<name>-canary` Deployment takes a growing share of pods, then stable is updated.
    Canary,
    /// Deploy to the standby colour, switch the Service selector.
    BlueGreen,
    /// Patch stable and let Kubernetes roll it.
    Rolling,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Canary => "canary",
            Strategy::BlueGreen => "blue-green",
            Strategy::Rolling => "rolling",
        })
    }
}

/// How a revision ended.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Serving: the new revision became stable.
    Promoted,
    /// A gate, the analysis or a person said no before promotion; stable untouched.
    Aborted,
    /// Something broke (an error, not a "no"); stable untouched.
    Failed,
    /// This revision restored an earlier one.
    RolledBack,
    /// The canary passed its analysis and waits for approval; `slipway-deploy promote` or
    /// `abort` ends it with a new record.
    Paused,
    /// Written before the revision's first change to the cluster, naming what it is about to
    /// create ([`ReleaseRecord::creates`]). A record that stays `in-progress` after its process
    /// ended marks a run that was killed: `abort`, `status` and the next `run` find its objects
    /// from it.
    InProgress,
    /// Stopped by a signal (a cancelled CI job) or by losing the release's lock; what the
    /// revision created was removed and stable left as it was.
    Cancelled,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Promoted => "promoted",
            Outcome::Aborted => "aborted",
            Outcome::Failed => "failed",
            Outcome::RolledBack => "rolled-back",
            Outcome::Paused => "paused",
            Outcome::InProgress => "in-progress",
            Outcome::Cancelled => "cancelled",
        })
    }
}

/// One revision of a release: what was deployed, how, by whom, and how it ended.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ReleaseRecord {
    /// Which release.
    pub release: ReleaseId,
    /// Revision number, 1-based, one more than the previous record of this release.
    pub revision: u64,
    /// The image, pinned (always carries a digest).
    pub image: ImageRef,
    /// The image digest (the platform manifest that runs).
    pub digest: Digest,
    /// The model version the image serves.
    pub model: ModelVersion,
    /// Rollout strategy used.
    pub strategy: Strategy,
    /// How it ended.
    pub outcome: Outcome,
    /// Who ran it (CI actor or user).
    pub actor: String,
    /// When it ended.
    pub at: Timestamp,
    /// Why it ended this way, in a sentence.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the change was committed, when the build said so: DORA's lead time for changes
    /// runs from here to the promotion. Absent from stored records that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_time: Option<Timestamp>,
    /// For an `in-progress` record: the Slipway-managed objects the revision is about to
    /// create (`Deployment/ml/iris-canary`, …), so a run killed half-way can be cleaned up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub creates: Vec<String>,
    /// For a `promoted` record: the serving alias that still has to be moved to this model
    /// version (the cluster serves the candidate, but moving the alias failed). The next
    /// command that holds the lock retries it and records the revision again without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_pending: Option<String>,
    /// The audit trail's last entry when this record was written, so a reader of the history
    /// can tell a trail cut short (`slipway-audit verify` checks the trail still reaches the
    /// newest one). Absent from stored records that predate it, and when the trail was empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trail_head: Option<TrailHead>,
    /// The CI run that started the revision, `owner/repo#run_id` for GitHub Actions: a GitHub
    /// environment approval of the revision counts only when it comes from that run's reviews.
    /// Absent outside CI (and in records written before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_run: Option<String>,
}

/// A point in the audit trail: an entry's sequence number and hash.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct TrailHead {
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (SHA-256, hex).
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expect: Result<&str, &str>) {
        match (ReleaseId::parse(input), expect) {
            (Ok(id), Ok(display)) => assert_eq!(id.to_string(), display),
            (Err(err), Err(fragment)) => {
                let text = err.to_string();
                assert!(
                    text.contains(fragment),
                    "`{text}` should contain `{fragment}`"
                );
            }
            (got, want) => panic!("parse({input:?}) = {got:?}, want {want:?}"),
        }
    }

    #[test]
    fn release_ids() {
        check("ml-serving/iris", Ok("ml-serving/iris"));
        check("iris", Err("expected `namespace/name`"));
        check("ML/iris", Err("namespace `ML` is not a DNS label"));
        check("ml/-iris", Err("name `-iris`"));
        check("ml/iris/x", Err("name `iris/x`"));
        check(
            &format!("ml/{}", "a".repeat(60)),
            Err("no room for the `-canary` suffix"),
        );
    }
}
