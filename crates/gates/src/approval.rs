//! The approval gate: enough distinct, allowed, *authenticated* people approved *this* release.
//!
//! An approval counts only when it is bound to the exact image digest, model version and
//! revision being released, and has not expired. An approval of an earlier build is not an
//! approval of this one: without the binding, a reviewer who approved `sha256:aaa…` would
//! silently approve whatever was pushed after, and an approval of an aborted attempt would
//! approve the next attempt of the same digest.
//!
//! It counts only when the approver's identity was *established*, never claimed: the pipeline
//! reads approvals from the verified audit trail and says how each identity is known
//! ([`Authentication`]): the GitHub environment review API, a DSSE statement signed by a key
//! that `[policy.approvals] keys` names, or, only in the embedded demo world, a name given on
//! the command line. An approval whose identity could not be established carries the reason and
//! is listed as not counted.
//!
//! It also counts only when its approver is on the list (if there is one) and, with
//! `forbid_self_approval` (the default: the seed pipelines have reviewers approve, not the person
//! deploying), is not the actor who started the release. Several approvals by one person count
//! once. Names compare ASCII case-insensitively, as GitHub logins do.
//!
//! Every approval that did not count is named in the reason with why, so a blocked release says
//! what to fix.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use slipway_core::{Digest, ModelVersion};

use crate::{CheckStatus, GateReport};

const GATE: &str = "approvals";

/// The approval gate's policy (`[policy.approvals]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalPolicy {
    /// How many distinct people must approve; 0 turns the gate off.
    pub required: u32,
    /// Who may approve; empty = anyone authenticated.
    pub approvers: Vec<String>,
    /// Whether the actor who started the release is barred from approving it.
    pub forbid_self_approval: bool,
    /// Who each approver key is: `{ "maria.chen" = "keys/maria.pub" }`. A signed approval
    /// (`slipway-deploy approve --key`) counts as the person whose public key verifies it.
    pub keys: BTreeMap<String, PathBuf>,
    /// The GitHub environment whose reviews approve a release (the approve job's
    /// `environment:`); reviews of other environments of the run are ignored.
    pub environment: String,
    /// How long an approval stays valid when it names no expiry of its own (GitHub reviews,
    /// signed approvals without `--expires-in`): `24h`, `2d`.
    pub valid_for: String,
}

impl Default for ApprovalPolicy {
    fn default() -> ApprovalPolicy {
        ApprovalPolicy {
            required: 1,
            approvers: Vec::new(),
            forbid_self_approval: true,
            keys: BTreeMap::new(),
            environment: "production".to_owned(),
            valid_for: "24h".to_owned(),
        }
    }
}

impl ApprovalPolicy {
    /// `valid_for` as a duration (validated at load time; 24 hours if it does not parse).
    pub fn validity(&self) -> SignedDuration {
        crate::window::parse_duration(&self.valid_for)
            .unwrap_or_else(|_| SignedDuration::from_hours(24))
    }
}

/// How an approver's identity was established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// A name given on the command line, in the embedded demo world only.
    Demo,
    /// A review of the run's GitHub environment, read from GitHub's API by the approve step.
    GitHub,
    /// A DSSE statement signed by this key (its id), which `policy.approvals.keys` names.
    Key(String),
}

/// One recorded approval, as the pipeline found it in the verified trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approved: the authenticated identity (GitHub login, key owner), or the name claimed
    /// when the identity could not be established.
    pub approver: String,
    /// When.
    pub at: Timestamp,
    /// Why, in their words.
    pub reason: String,
    /// The image digest the approval is for.
    pub digest: Digest,
    /// The model version the approval is for.
    pub model: ModelVersion,
    /// The revision the approval is for (`None`: an approval recorded before approvals named
    /// revisions, or given in the demo world to a run directly).
    pub revision: Option<u64>,
    /// When it stops counting.
    pub expires: Option<Timestamp>,
    /// How the approver's identity is known, or why it is not.
    pub authenticated: Result<Authentication, String>,
}

/// What the approval gate judges: the release being made and the approvals recorded for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalEvidence {
    /// Who started the release.
    pub actor: String,
    /// The image digest being released.
    pub digest: Digest,
    /// The model version being released.
    pub model: ModelVersion,
    /// The revision being approved (the paused one); `None` when no revision is at stake
    /// (a rollback target).
    pub revision: Option<u64>,
    /// The time the approvals are judged at.
    pub now: Timestamp,
    /// Every approval found.
    pub approvals: Vec<Approval>,
}

fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Why one approval does not count, or `None` when it does.
fn why_not(
    policy: &ApprovalPolicy,
    evidence: &ApprovalEvidence,
    approval: &Approval,
) -> Option<String> {
    let who = approval.approver.trim();
    if who.is_empty() {
        return Some("has no approver name".to_owned());
    }
    let authentication = match &approval.authenticated {
        Ok(authentication) => authentication,
        Err(why) => return Some(format!("is not authenticated: {why}")),
    };
    if approval.digest != evidence.digest {
        return Some(format!(
            "approved {}, not {}",
            approval.digest.short(),
            evidence.digest.short()
        ));
    }
    if approval.model != evidence.model {
        return Some(format!(
            "approved model {}, not {}",
            approval.model, evidence.model
        ));
    }
    match (approval.revision, evidence.revision) {
        (Some(approved), Some(released)) if approved != released => {
            return Some(format!("approved revision {approved}, not {released}"));
        }
        // Outside the demo every approval names its revision when it is made.
        (None, Some(released)) if *authentication != Authentication::Demo => {
            return Some(format!(
                "names no revision (revision {released} is at stake)"
            ));
        }
        _ => {}
    }
    if let Some(expires) = approval.expires
        && expires <= evidence.now
    {
        return Some(format!("expired at {expires}"));
    }
    if !policy.approvers.is_empty()
        && !policy
            .approvers
            .iter()
            .any(|allowed| same_person(allowed, who))
    {
        return Some("is not an allowed approver".to_owned());
    }
    if policy.forbid_self_approval && same_person(who, &evidence.actor) {
        return Some("started this release and cannot approve it".to_owned());
    }
    None
}

/// Judges the evidence: one check, `N distinct approvals`.
pub fn evaluate(policy: &ApprovalPolicy, evidence: &ApprovalEvidence) -> GateReport {
    let mut report = GateReport::default();
    let name = format!("{} distinct approval(s)", policy.required);
    if policy.required == 0 {
        report.push(GATE, name, CheckStatus::Skip, "no approvals required");
        return report;
    }

    let mut counted: Vec<&str> = Vec::new();
    let mut rejected: Vec<String> = Vec::new();
    for approval in &evidence.approvals {
        let who = approval.approver.trim();
        match why_not(policy, evidence, approval) {
            Some(why) if who.is_empty() => rejected.push(format!("an approval {why}")),
            Some(why) => rejected.push(format!("{who} {why}")),
            None if counted.iter().any(|c| same_person(c, who)) => {}
            None => counted.push(who),
        }
    }

    let required = usize::try_from(policy.required).unwrap_or(usize::MAX);
    let status = if counted.len() >= required {
        CheckStatus::Pass
    } else {
        CheckStatus::Fail
    };
    let mut reason = format!("{} of {required}", counted.len());
    if !counted.is_empty() {
        reason.push_str(&format!(": {}", counted.join(", ")));
    }
    if !rejected.is_empty() {
        reason.push_str(&format!("; not counted: {}", rejected.join("; ")));
    }
    report.push(GATE, name, status, reason);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELEASED: &str =
        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const OLDER: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn digest(text: &str) -> Digest {
        Digest::parse(text).expect("test digest")
    }

    fn model(version: u64) -> ModelVersion {
        ModelVersion {
            name: "iris".to_owned(),
            version,
        }
    }

    fn approval(who: &str) -> Approval {
        Approval {
            approver: who.to_owned(),
            at: "2024-06-04T09:00:00Z".parse().expect("timestamp"),
            reason: "looks good".to_owned(),
            digest: digest(RELEASED),
            model: model(2),
            revision: Some(4),
            expires: Some("2024-06-05T09:00:00Z".parse().expect("timestamp")),
            authenticated: Ok(Authentication::GitHub),
        }
    }

    fn evidence(approvals: Vec<Approval>) -> ApprovalEvidence {
        ApprovalEvidence {
            actor: "deployer".to_owned(),
            digest: digest(RELEASED),
            model: model(2),
            revision: Some(4),
            now: "2024-06-04T12:00:00Z".parse().expect("timestamp"),
            approvals,
        }
    }

    #[test]
    fn rules() {
        let one = ApprovalPolicy::default();
        let two_of_list = ApprovalPolicy {
            required: 2,
            approvers: vec!["alice".to_owned(), "bob".to_owned(), "deployer".to_owned()],
            forbid_self_approval: true,
            ..ApprovalPolicy::default()
        };
        let self_ok = ApprovalPolicy {
            forbid_self_approval: false,
            ..ApprovalPolicy::default()
        };
        let off = ApprovalPolicy {
            required: 0,
            ..ApprovalPolicy::default()
        };
        let stale = Approval {
            digest: digest(OLDER),
            ..approval("alice")
        };
        let other_model = Approval {
            model: model(1),
            ..approval("bob")
        };
        let earlier_revision = Approval {
            revision: Some(3),
            ..approval("alice")
        };
        let unbound = Approval {
            revision: None,
            ..approval("alice")
        };
        let demo_unbound = Approval {
            revision: None,
            authenticated: Ok(Authentication::Demo),
            ..approval("alice")
        };
        let expired = Approval {
            expires: Some("2024-06-04T12:00:00Z".parse().expect("timestamp")),
            ..approval("alice")
        };
        let claimed = Approval {
            authenticated: Err("named on the command line (only with --demo)".to_owned()),
            ..approval("alice")
        };
        let signed_self = Approval {
            authenticated: Ok(Authentication::Key("SHA256:abc".to_owned())),
            ..approval("deployer")
        };
        let cases: &[(&str, &ApprovalPolicy, Vec<Approval>, &str)] = &[
            (
                "approval of an earlier revision does not count",
                &one,
                vec![earlier_revision],
                "fail 1 distinct approval(s): 0 of 1; not counted: alice approved revision 3, not 4",
            ),
            (
                "an authenticated approval must name its revision",
                &one,
                vec![unbound],
                "fail 1 distinct approval(s): 0 of 1; not counted: alice names no revision (revision 4 is at stake)",
            ),
            (
                "a demo approval given to the run names none",
                &one,
                vec![demo_unbound],
                "pass 1 distinct approval(s): 1 of 1: alice",
            ),
            (
                "an approval expiring now no longer counts",
                &one,
                vec![expired],
                "fail 1 distinct approval(s): 0 of 1; not counted: alice expired at 2024-06-04T12:00:00Z",
            ),
            (
                "a claimed identity does not count",
                &one,
                vec![claimed],
                "fail 1 distinct approval(s): 0 of 1; not counted: alice is not authenticated: named on the command line (only with --demo)",
            ),
            (
                "a signed approval by the actor is self-approval",
                &one,
                vec![signed_self],
                "fail 1 distinct approval(s): 0 of 1; not counted: deployer started this release and cannot approve it",
            ),
            (
                "one approval from anyone",
                &one,
                vec![approval("alice")],
                "pass 1 distinct approval(s): 1 of 1: alice",
            ),
            ("none", &one, vec![], "fail 1 distinct approval(s): 0 of 1"),
            (
                "self approval is refused by default",
                &one,
                vec![approval("Deployer")],
                "fail 1 distinct approval(s): 0 of 1; not counted: Deployer started this release and cannot approve it",
            ),
            (
                "self approval allowed when configured",
                &self_ok,
                vec![approval("deployer")],
                "pass 1 distinct approval(s): 1 of 1: deployer",
            ),
            (
                "approval of another digest does not count",
                &one,
                vec![stale.clone()],
                "fail 1 distinct approval(s): 0 of 1; not counted: alice approved sha256:2c26b46b68ff, not sha256:9f86d081884c",
            ),
            (
                "approval of another model version does not count",
                &one,
                vec![other_model.clone()],
                "fail 1 distinct approval(s): 0 of 1; not counted: bob approved model iris/1, not iris/2",
            ),
            (
                "a stale approval next to a bound one",
                &one,
                vec![stale, approval("carol")],
                "pass 1 distinct approval(s): 1 of 1: carol; not counted: alice approved sha256:2c26b46b68ff, not sha256:9f86d081884c",
            ),
            (
                "duplicates count once",
                &two_of_list,
                vec![approval("alice"), approval("ALICE"), approval("alice")],
                "fail 2 distinct approval(s): 1 of 2: alice",
            ),
            (
                "two distinct listed approvers",
                &two_of_list,
                vec![approval("alice"), approval("bob")],
                "pass 2 distinct approval(s): 2 of 2: alice, bob",
            ),
            (
                "unlisted approver and listed actor do not count",
                &two_of_list,
                vec![approval("alice"), approval("mallory"), approval("deployer")],
                "fail 2 distinct approval(s): 1 of 2: alice; not counted: mallory is not an allowed approver; deployer started this release and cannot approve it",
            ),
            (
                "nameless approval",
                &one,
                vec![approval(" ")],
                "fail 1 distinct approval(s): 0 of 1; not counted: an approval has no approver name",
            ),
            (
                "gate off",
                &off,
                vec![],
                "skip 0 distinct approval(s): no approvals required",
            ),
        ];
        for (what, policy, approvals, want) in cases {
            let report = evaluate(policy, &evidence(approvals.clone()));
            let got: Vec<String> = report
                .checks
                .iter()
                .map(|c| format!("{} {}: {}", c.status.as_str(), c.name, c.reason))
                .collect();
            assert_eq!(got, [*want], "case: {what}");
        }
    }
}
