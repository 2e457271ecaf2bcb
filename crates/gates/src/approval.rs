//! The approval gate: enough distinct, allowed people approved *this* release.
//!
//! An approval counts only when it is bound to the exact image digest and model version being
//! released. An approval of an earlier build is not an approval of this one: without the binding,
//! a reviewer who approved `sha256:aaa…` would silently approve whatever was pushed after.
//!
//! It also counts only when its approver is on the list (if there is one) and, with
//! `forbid_self_approval` (the default: the seed pipelines have reviewers approve, not the person
//! deploying), is not the actor who started the release. Several approvals by one person count
//! once. Names compare ASCII case-insensitively, as GitHub logins do.
//!
//! Every approval that did not count is named in the reason with why, so a blocked release says
//! what to fix.

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
    /// Who may approve; empty = anyone.
    pub approvers: Vec<String>,
    /// Whether the actor who started the release is barred from approving it.
    pub forbid_self_approval: bool,
}

impl Default for ApprovalPolicy {
    fn default() -> ApprovalPolicy {
        ApprovalPolicy {
            required: 1,
            approvers: Vec::new(),
            forbid_self_approval: true,
        }
    }
}

/// One recorded approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// Who approved.
    pub approver: String,
    /// When.
    pub at: jiff::Timestamp,
    /// Why, in their words.
    pub reason: String,
    /// The image digest the approval is for.
    pub digest: Digest,
    /// The model version the approval is for.
    pub model: ModelVersion,
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
    /// Every approval found.
    pub approvals: Vec<Approval>,
}

fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
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
        let why_not = if who.is_empty() {
            Some("has no approver name".to_owned())
        } else if approval.digest != evidence.digest {
            Some(format!(
                "approved {}, not {}",
                approval.digest.short(),
                evidence.digest.short()
            ))
        } else if approval.model != evidence.model {
            Some(format!(
                "approved model {}, not {}",
                approval.model, evidence.model
            ))
        } else if !policy.approvers.is_empty()
            && !policy
                .approvers
                .iter()
                .any(|allowed| same_person(allowed, who))
        {
            Some("is not an allowed approver".to_owned())
        } else if policy.forbid_self_approval && same_person(who, &evidence.actor) {
            Some("started this release and cannot approve it".to_owned())
        } else {
            None
        };
        match why_not {
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
        }
    }

    fn evidence(approvals: Vec<Approval>) -> ApprovalEvidence {
        ApprovalEvidence {
            actor: "deployer".to_owned(),
            digest: digest(RELEASED),
            model: model(2),
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
        let cases: &[(&str, &ApprovalPolicy, Vec<Approval>, &str)] = &[
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
