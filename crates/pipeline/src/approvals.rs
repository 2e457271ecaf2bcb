//! Approvals: recording one ([`approve_with`]) and reading the ones that count from the trail
//! ([`recorded_approvals`]), for the approval gate of a release, a resume and a rollback.
//!
//! An approver's identity comes from one of two real sources, never from a flag:
//! - [`ApprovalGiven::GitHub`]: the reviews of the run's GitHub environment, which the binary
//!   read from GitHub's API (`slipway_github`); the login is GitHub's.
//! - [`ApprovalGiven::Signed`]: a DSSE statement signed with the approver's own key
//!   (`slipway_attest::approval`); the identity is the owner `[policy.approvals] keys` gives
//!   that key.
//!
//! [`ApprovalGiven::Named`] (a name on the command line) exists for the embedded demo world and
//! counts nowhere else.
//!
//! Reading, the trail is not taken at its word: an entry counts only when it links to the entry
//! before it (sequence, `prev`, its own hash) and, outside the demo, carries a signature by a
//! trusted key (the deploy key; for a signed approval also the approver's key that signed the
//! statement inside it). An entry added outside the chain (a line appended to the file, a
//! ConfigMap created by hand) is therefore never an approval: it is listed as not counted,
//! with why. `slipway-audit verify` reports the broken chain itself.

use std::sync::Arc;

use jiff::SignedDuration;
use slipway_attest::approval::{ApprovalStatement, sign_approval, verify_approval};
use slipway_attest::{Signer, Verifier};
use slipway_audit_log::{ApprovalRecord, ApprovalSource, Entry, Event};
use slipway_core::{ReleaseId, ReleaseRecord};
use slipway_gates::approval::{Approval, Authentication};
use slipway_github::{Review, ReviewState, RunRef};

use crate::{Backends, ReleaseSpec};

/// What the trail trusts and who approver keys belong to.
#[derive(Clone, Default)]
pub struct ApprovalTrust {
    /// The embedded demo world: entries need no signature, and a name given on the command
    /// line counts as an approver. Never set next to real systems.
    pub demo: bool,
    /// Approver keys by owner (`[policy.approvals] keys`).
    pub keys: Vec<(String, Arc<dyn Verifier>)>,
}

impl ApprovalTrust {
    /// The demo world's trust: hash chain only, named approvers count.
    pub fn demo() -> ApprovalTrust {
        ApprovalTrust {
            demo: true,
            keys: Vec::new(),
        }
    }

    fn key_refs(&self) -> Vec<(&str, &dyn Verifier)> {
        self.keys
            .iter()
            .map(|(owner, key)| (owner.as_str(), key.as_ref()))
            .collect()
    }
}

impl std::fmt::Debug for ApprovalTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApprovalTrust")
            .field("demo", &self.demo)
            .field(
                "keys",
                &self
                    .keys
                    .iter()
                    .map(|(owner, key)| format!("{owner}={}", key.key_id()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// An approval being given to the paused release.
pub enum ApprovalGiven {
    /// A name on the command line: the embedded demo world only.
    Named {
        /// Who.
        approver: String,
        /// Why.
        reason: String,
    },
    /// A statement signed with the approver's key.
    Signed {
        /// The approver's key.
        key: Arc<dyn Signer>,
        /// Why.
        reason: String,
        /// How long it counts (default: `policy.approvals.valid_for`).
        expires_in: Option<SignedDuration>,
    },
    /// The reviews of a GitHub Actions run's environments.
    GitHub {
        /// Which run.
        run: RunRef,
        /// Every review of the run, as GitHub listed them.
        reviews: Vec<Review>,
    },
}

impl ApprovalGiven {
    /// Who approves, for the lock's holder name and the story.
    pub(crate) fn label(&self) -> String {
        match self {
            ApprovalGiven::Named { approver, .. } => approver.clone(),
            ApprovalGiven::Signed { key, .. } => format!("key {}", key.key_id()),
            ApprovalGiven::GitHub { run, .. } => format!("github {run}"),
        }
    }
}

/// The records `given` makes for `paused`, checked as the gate will check them (allowed
/// approver, not the release's actor): a refusal says why, and nothing is recorded.
pub(crate) fn records_for(
    spec: &ReleaseSpec,
    backends: &Backends,
    paused: &ReleaseRecord,
    given: &ApprovalGiven,
) -> Result<Vec<ApprovalRecord>, String> {
    let policy = &spec.policy.approvals;
    let now = backends.clock.now();
    let base = |approver: &str, reason: &str| ApprovalRecord {
        release: spec.release.clone(),
        approver: approver.to_owned(),
        at: now,
        reason: reason.to_owned(),
        digest: paused.digest.clone(),
        model: paused.model.clone(),
        revision: Some(paused.revision),
        expires: None,
        source: ApprovalSource::Named,
    };
    let records = match given {
        ApprovalGiven::Named { approver, reason } => {
            if !backends.approvals.demo {
                return Err(format!(
                    "an approver named on the command line ({approver}) counts only in the embedded demo world (hint: approve with `--key approver.key`, or in a GitHub environment)"
                ));
            }
            require_reason(reason)?;
            vec![base(approver, reason)]
        }
        ApprovalGiven::Signed {
            key,
            reason,
            expires_in,
        } => {
            require_reason(reason)?;
            let expires = now
                .checked_add(expires_in.unwrap_or_else(|| policy.validity()))
                .map_err(|err| format!("the approval's expiry is out of range: {err}"))?;
            let statement = ApprovalStatement {
                release: spec.release.clone(),
                revision: paused.revision,
                digest: paused.digest.to_string(),
                model: paused.model.clone(),
                reason: reason.clone(),
                at: now,
                expires,
            };
            let envelope =
                sign_approval(key.as_ref(), &statement).map_err(|err| err.to_string())?;
            let (owner, _) = verify_approval(&envelope, &backends.approvals.key_refs())
                .map_err(|why| {
                    format!(
                        "key {} is not an approver key: {why} (hint: add its public half to `[policy.approvals] keys`, named after its owner)",
                        key.key_id()
                    )
                })?;
            vec![ApprovalRecord {
                expires: Some(expires),
                source: ApprovalSource::Signed { envelope },
                ..base(&owner, reason)
            }]
        }
        ApprovalGiven::GitHub { run, reviews } => {
            // Only the reviews of the run that started the revision approve it: another run's
            // (an older release's, another repository's) are not about this revision.
            let reviewed = format!("{}#{}", run.repository, run.run_id);
            if let Some(started) = &paused.ci_run
                && !started.eq_ignore_ascii_case(&reviewed)
            {
                return Err(format!(
                    "the reviews of {run} do not approve revision {}, which GitHub Actions run {started} started (hint: approve in a job of that run, behind its environment)",
                    paused.revision
                ));
            }
            let environment = policy.environment.as_str();
            let ours: Vec<&Review> = reviews
                .iter()
                .filter(|review| {
                    review
                        .environments
                        .iter()
                        .any(|name| name.eq_ignore_ascii_case(environment))
                })
                .collect();
            let rejections: Vec<String> = ours
                .iter()
                .filter(|review| review.state == ReviewState::Rejected)
                .map(|review| describe(review))
                .collect();
            if !rejections.is_empty() {
                return Err(format!(
                    "environment `{environment}` of {run} was rejected: {}",
                    rejections.join("; ")
                ));
            }
            let expires = now
                .checked_add(policy.validity())
                .map_err(|err| format!("the approval's expiry is out of range: {err}"))?;
            let approved: Vec<ApprovalRecord> = ours
                .iter()
                .filter(|review| review.state == ReviewState::Approved)
                .map(|review| {
                    let reason = if review.comment.trim().is_empty() {
                        format!("approved in GitHub environment `{environment}`")
                    } else {
                        review.comment.clone()
                    };
                    ApprovalRecord {
                        expires: Some(expires),
                        source: ApprovalSource::GitHub {
                            repository: run.repository.clone(),
                            run_id: run.run_id,
                            environment: environment.to_owned(),
                        },
                        ..base(&review.login, &reason)
                    }
                })
                .collect();
            if approved.is_empty() {
                let others: Vec<String> = reviews
                    .iter()
                    .filter(|review| !ours.iter().any(|own| std::ptr::eq(*own, *review)))
                    .map(describe)
                    .collect();
                return Err(format!(
                    "{run} has no approval of environment `{environment}`{} (hint: the approve job must run in `environment: {environment}` with required reviewers; `policy.approvals.environment` names it)",
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!(" (reviews of other environments: {})", others.join("; "))
                    }
                ));
            }
            approved
        }
    };
    // The gate's own checks, so a refused approval is refused now, not at promotion.
    let mut refused = Vec::new();
    let mut kept = Vec::new();
    for record in records {
        let who = record.approver.clone();
        if !policy.approvers.is_empty()
            && !policy
                .approvers
                .iter()
                .any(|allowed| allowed.trim().eq_ignore_ascii_case(who.trim()))
        {
            refused.push(format!(
                "{who} is not among the approvers ({}) of policy.approvals.approvers",
                policy.approvers.join(", ")
            ));
        } else if policy.forbid_self_approval
            && who.trim().eq_ignore_ascii_case(paused.actor.trim())
        {
            refused.push(format!(
                "{who} started revision {} and cannot approve it (policy.approvals.forbid_self_approval)",
                paused.revision
            ));
        } else {
            kept.push(record);
        }
    }
    if kept.is_empty() {
        return Err(refused.join("; "));
    }
    Ok(kept)
}

fn require_reason(reason: &str) -> Result<(), String> {
    if reason.trim().is_empty() {
        return Err(
            "an approval needs a reason (hint: `--reason \"canary dashboards reviewed\"`)"
                .to_owned(),
        );
    }
    Ok(())
}

fn describe(review: &Review) -> String {
    let state = match &review.state {
        ReviewState::Approved => "approved",
        ReviewState::Rejected => "rejected",
        ReviewState::Other(state) => state.as_str(),
    };
    let environments = review.environments.join(", ");
    if review.comment.trim().is_empty() {
        format!("{} {state} {environments}", review.login)
    } else {
        format!(
            "{} {state} {environments}: {}",
            review.login, review.comment
        )
    }
}

/// Every approval of `release` in the trail, each with how its approver is known or why it is
/// not (see the module doc): the approval gate's evidence.
pub(crate) async fn recorded_approvals(
    backends: &Backends,
    release: &ReleaseId,
) -> Result<Vec<Approval>, String> {
    let trail = backends
        .audit
        .read()
        .await
        .map_err(|err| crate::run::chain(&err))?;
    let trust = &backends.approvals;
    let trusted: Vec<&dyn Verifier> = backends.trusted_keys.iter().map(AsRef::as_ref).collect();
    let approver_keys = trust.key_refs();
    let approver_verifiers: Vec<&dyn Verifier> =
        approver_keys.iter().map(|(_, key)| *key).collect();
    let mut previous: Option<&Entry> = None;
    let mut approvals = Vec::new();
    for entry in &trail.entries {
        let linked = entry.links_to(previous);
        previous = Some(entry);
        let Event::Approval(record) = &entry.event else {
            continue;
        };
        if &record.release != release {
            continue;
        }
        let mut approval = Approval {
            approver: record.approver.clone(),
            at: record.at,
            reason: record.reason.clone(),
            digest: record.digest.clone(),
            model: record.model.clone(),
            revision: record.revision,
            expires: record.expires,
            authenticated: Ok(Authentication::Demo),
        };
        if !linked {
            approval.authenticated = Err(format!(
                "entry {} is not a link of the trail's hash chain",
                entry.seq
            ));
            approvals.push(approval);
            continue;
        }
        // Outside the demo, who wrote the entry must be proven by its signature.
        if !trust.demo
            && let Some(problem) =
                slipway_audit_log::verify_entry_signature(entry, &trusted, &approver_verifiers)
        {
            approval.authenticated = Err(format!("entry {} is {}", entry.seq, problem.problem));
            approvals.push(approval);
            continue;
        }
        approval.authenticated = match &record.source {
            ApprovalSource::Named if trust.demo => Ok(Authentication::Demo),
            ApprovalSource::Named => Err(
                "named on the command line, which counts only in the embedded demo world"
                    .to_owned(),
            ),
            ApprovalSource::GitHub { .. } => Ok(Authentication::GitHub),
            ApprovalSource::Signed { envelope } => {
                match verify_approval(envelope, &approver_keys) {
                    Err(why) => Err(format!("its signed statement does not verify: {why}")),
                    Ok((_, statement)) if &statement.release != release => Err(format!(
                        "its signed statement approves `{}`",
                        statement.release
                    )),
                    Ok((owner, statement)) => match statement.digest() {
                        Err(why) => Err(format!("its signed statement names no digest: {why}")),
                        Ok(digest) => {
                            // The statement, not the fields beside it, is the approval.
                            let key_id = envelope_key(envelope, &approver_keys);
                            approval.approver = owner;
                            approval.reason = statement.reason;
                            approval.digest = digest;
                            approval.model = statement.model;
                            approval.revision = Some(statement.revision);
                            approval.expires = Some(statement.expires);
                            approval.at = statement.at;
                            Ok(Authentication::Key(key_id))
                        }
                    },
                }
            }
        };
        approvals.push(approval);
    }
    Ok(approvals)
}

fn envelope_key(
    envelope: &slipway_attest::dsse::Envelope,
    keys: &[(&str, &dyn Verifier)],
) -> String {
    let verifiers: Vec<&dyn Verifier> = keys.iter().map(|(_, key)| *key).collect();
    envelope.verify(&verifiers).unwrap_or_default()
}
