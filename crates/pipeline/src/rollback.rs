//! Rollback: put a release back on an earlier good revision, with the same care as a release.
//!
//! The target is the previous successful revision in the release history (kept in the cluster,
//! so any CI runner finds it), or one named by revision number or digest. Before anything
//! changes: the target image must still exist and its signature must still verify; unless it
//! is an emergency, an approval bound to the target's digest and model version must exist.
//! Then the canary (if any) is removed, stable is rolled back and health-checked, the serving
//! alias moves back to the target's model version, and the rollback is recorded with its reason.

use slipway_attest::Verifier;
use slipway_audit_log::Event;
use slipway_core::{Digest, Outcome, ReleaseId, ReleaseRecord};
use slipway_gates::approval::{Approval, ApprovalEvidence};
use slipway_gates::signature::SignatureEvidence;
use slipway_gates::{CheckStatus, GateReport, Policy};
use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig};
use slipway_k8s_rollout::rollout;

use crate::{Backends, Observer, RunOutcome, RunReport, StageEvent, StageStatus};

/// Which revision to go back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackTarget {
    /// The last successful revision before the one serving now.
    Previous,
    /// A revision number from the history.
    Revision(u64),
    /// The newest successful revision that deployed this digest.
    Digest(Digest),
}

/// A rollback to run.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackSpec {
    /// Which release.
    pub release: ReleaseId,
    /// Where to go.
    pub target: RollbackTarget,
    /// Why (required; recorded).
    pub reason: String,
    /// Skip the approval gate (still needs a reason, still verifies the signature).
    pub emergency: bool,
    /// Who runs it.
    pub actor: String,
    /// Alias that marks the serving model version.
    pub serving_alias: String,
    /// How long stable may take to become healthy.
    pub progress_deadline: std::time::Duration,
    /// Records kept in the cluster's release history.
    pub history_limit: usize,
    /// Signature and approval policy (the same as for releases).
    pub policy: Policy,
    /// The Service in front of the release (the canary Service is derived from it).
    pub service: String,
    /// How a running canary gets its traffic, so its Ingress and Service go with it.
    pub traffic: slipway_k8s_rollout::rollout::TrafficRouting,
}

struct Stop(RunOutcome, String);

/// Runs the rollback. Never leaves a canary behind; on failure stable is left as it was.
pub async fn rollback(
    spec: &RollbackSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
) -> RunReport {
    let mut report = RunReport::new(&spec.release);
    let holder = format!("{}@{}", spec.actor, backends.clock.now());
    let mut locked = false;
    let result = steps(spec, backends, observer, &mut report, &holder, &mut locked).await;
    match result {
        Ok(reason) => {
            report.outcome = RunOutcome::Promoted;
            report.reason = reason;
        }
        Err(Stop(outcome, reason)) => {
            report.outcome = outcome;
            report.reason = reason;
        }
    }
    if locked && let Err(err) = backends.cluster.release_lock(&spec.release, &holder).await {
        emit(
            backends,
            observer,
            &mut report,
            "finish",
            StageStatus::Info,
            format!("could not release the lock: {err}"),
        );
    }
    let notification = crate::Notification {
        release: report.release.clone(),
        event: if report.outcome == RunOutcome::Promoted {
            "rolled-back".to_owned()
        } else {
            "rollback-failed".to_owned()
        },
        summary: report.reason.clone(),
    };
    if let Err(err) = backends.notifier.notify(&notification).await {
        emit(
            backends,
            observer,
            &mut report,
            "notify",
            StageStatus::Info,
            format!("notification failed: {err}"),
        );
    }
    report
}

fn emit(
    backends: &Backends,
    observer: &mut dyn Observer,
    report: &mut RunReport,
    stage: &'static str,
    status: StageStatus,
    message: String,
) {
    let event = StageEvent {
        stage,
        status,
        at: backends.clock.now(),
        message,
    };
    observer.event(&event);
    report.stages.push(event);
}

fn one_line(err: &dyn std::error::Error) -> String {
    err.to_string()
        .replace("\n\nhint: ", " (hint: ")
        .replace('\n', " ")
}

/// Picks the target record: pure, so every rule is tested on plain data.
pub fn choose_target(
    history: &[ReleaseRecord],
    target: &RollbackTarget,
) -> Result<(ReleaseRecord, Option<ReleaseRecord>), String> {
    let good =
        |record: &&ReleaseRecord| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack);
    let current = history.iter().rev().find(good).cloned();
    let chosen = match target {
        RollbackTarget::Previous => {
            let current_digest = current.as_ref().map(|record| &record.digest);
            history
                .iter()
                .rev()
                .filter(good)
                .find(|record| Some(&record.digest) != current_digest)
        }
        RollbackTarget::Revision(revision) => history
            .iter()
            .filter(good)
            .find(|record| record.revision == *revision),
        RollbackTarget::Digest(digest) => history
            .iter()
            .rev()
            .filter(good)
            .find(|record| &record.digest == digest),
    };
    match (chosen, target) {
        (Some(record), _) => Ok((record.clone(), current)),
        (None, RollbackTarget::Previous) => Err(format!(
            "no earlier successful revision to roll back to ({} revision(s) in the history) (hint: name one with `--to REVISION`)",
            history.len()
        )),
        (None, RollbackTarget::Revision(revision)) => Err(format!(
            "revision {revision} is not a successful revision in the history (hint: `slipway-audit log` lists the revisions; the history keeps the newest {} records)",
            history.len()
        )),
        (None, RollbackTarget::Digest(digest)) => Err(format!(
            "no successful revision deployed {digest} (hint: check the digest with `slipway-audit log`)"
        )),
    }
}

async fn steps(
    spec: &RollbackSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
    report: &mut RunReport,
    holder: &str,
    locked: &mut bool,
) -> Result<String, Stop> {
    let failed = |text: String| Stop(RunOutcome::Failed, text);
    let release = &spec.release;
    emit(
        backends,
        observer,
        report,
        "preflight",
        StageStatus::Start,
        format!("rolling back {release}: {}", spec.reason),
    );
    if spec.reason.trim().is_empty() {
        return Err(failed(
            "a rollback needs a reason (hint: pass `--reason`)".to_owned(),
        ));
    }
    let stable = rollout::stable(backends.cluster.as_ref(), release)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    let history = backends
        .cluster
        .release_history(release)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    let (target, current) = choose_target(&history, &spec.target).map_err(failed)?;
    report.model = Some(target.model.clone());
    report.digest = Some(target.digest.clone());
    let from = current.as_ref().map_or_else(
        || "unknown".to_owned(),
        |record| format!("revision {} ({})", record.revision, record.model),
    );
    emit(
        backends,
        observer,
        report,
        "preflight",
        StageStatus::Pass,
        format!(
            "target: revision {} ({} at {}), replacing {from}",
            target.revision,
            target.model,
            target.digest.short()
        ),
    );
    backends
        .cluster
        .acquire_lock(release, holder, spec.progress_deadline.saturating_mul(2))
        .await
        .map_err(|err| failed(one_line(&err)))?;
    *locked = true;

    let image = target.image.with_digest(target.digest.clone());
    let exists = backends
        .registry
        .exists(&image)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    if !exists {
        return Err(failed(format!(
            "target image {} no longer exists in the registry (hint: roll back to another revision with `--to`)",
            image.pinned().unwrap_or_default()
        )));
    }
    emit(
        backends,
        observer,
        report,
        "verify",
        StageStatus::Pass,
        format!(
            "target image {} still exists",
            image.pinned().unwrap_or_default()
        ),
    );
    let keys: Vec<&dyn Verifier> = backends.trusted_keys.iter().map(AsRef::as_ref).collect();
    let verification = slipway_attest::verify_image(backends.registry.as_ref(), &keys, &image)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    let (policy, signatures) =
        crate::run::signature_gate_input(&spec.policy.signatures, &keys, &verification);
    let gate = slipway_gates::signature::evaluate(
        &policy,
        &SignatureEvidence {
            signatures,
            provenance: None,
        },
    );
    let verdict = gate_events(backends, observer, report, "verify", gate);
    if !verdict {
        return Err(Stop(
            RunOutcome::Rejected,
            "the target image's signature no longer verifies".to_owned(),
        ));
    }

    if spec.emergency {
        emit(
            backends,
            observer,
            report,
            "approval",
            StageStatus::Skip,
            format!(
                "emergency rollback by {}: approval skipped ({})",
                spec.actor, spec.reason
            ),
        );
    } else {
        let entries = backends
            .audit
            .entries()
            .await
            .map_err(|err| failed(one_line(&err)))?;
        let approvals = entries
            .into_iter()
            .filter_map(|entry| match entry.event {
                Event::Approval(approval) if &approval.release == release => Some(Approval {
                    approver: approval.approver,
                    at: approval.at,
                    reason: approval.reason,
                    digest: approval.digest,
                    model: approval.model,
                }),
                _ => None,
            })
            .collect();
        let evidence = ApprovalEvidence {
            actor: spec.actor.clone(),
            digest: target.digest.clone(),
            model: target.model.clone(),
            approvals,
        };
        let gate = slipway_gates::approval::evaluate(&spec.policy.approvals, &evidence);
        if !gate_events(backends, observer, report, "approval", gate) {
            return Err(Stop(RunOutcome::Rejected, "no approval for this rollback target (hint: approve it, or use `--emergency --reason …`)".to_owned()));
        }
    }

    // After a blue-green release the Service selects a colour: go back by colour, which is
    // instant while the old colour is still scaled.
    let colours = BlueGreenConfig {
        deadline: spec.progress_deadline,
        ..BlueGreenConfig::new(spec.service.clone())
    };
    if let Some(active) = bluegreen::active(backends.cluster.as_ref(), release, &colours)
        .await
        .map_err(|err| failed(one_line(&err)))?
    {
        let pinned = image.pinned().unwrap_or_default();
        emit(
            backends,
            observer,
            report,
            "rollback",
            StageStatus::Start,
            format!(
                "Service {} selects {active}: bringing {pinned} up on the other colour",
                spec.service
            ),
        );
        let standby = bluegreen::deploy(
            backends.cluster.as_ref(),
            backends.clock.as_ref(),
            release,
            &colours,
            &pinned,
        )
        .await
        .map_err(|err| {
            failed(format!(
                "rollback failed, {active} still serves: {}",
                one_line(&err)
            ))
        })?;
        bluegreen::switch(backends.cluster.as_ref(), release, &colours, standby)
            .await
            .map_err(|err| failed(one_line(&err)))?;
        emit(
            backends,
            observer,
            report,
            "rollback",
            StageStatus::Pass,
            format!(
                "Service {} selects {standby} again, running {pinned}",
                spec.service
            ),
        );
        bluegreen::finish(
            backends.cluster.as_ref(),
            backends.clock.as_ref(),
            release,
            &colours,
        )
        .await
        .map_err(|err| failed(one_line(&err)))?;
        return finish_rollback(spec, backends, observer, report, &history, &target).await;
    }

    // Change: remove any canary (and an equal-size baseline next to it), roll stable back,
    // wait for health.
    rollout::abort_routed(
        backends.cluster.as_ref(),
        release,
        (&spec.service, &spec.traffic),
    )
    .await
    .map_err(|err| failed(one_line(&err)))?;
    // A rollback does not know the plan; the baseline is deleted when it exists and is
    // Slipway's (a Deployment of the user's with that name is left alone, and said so).
    if let Err(err) = rollout::remove_baseline(backends.cluster.as_ref(), release).await {
        emit(
            backends,
            observer,
            report,
            "rollback",
            StageStatus::Info,
            format!(
                "left {} in place: {}",
                rollout::baseline_name(release),
                one_line(&err)
            ),
        );
    }
    let pinned = image.pinned().unwrap_or_default();
    emit(
        backends,
        observer,
        report,
        "rollback",
        StageStatus::Start,
        format!(
            "setting stable {release} from {} to {pinned}",
            stable.spec.image
        ),
    );
    if let Err(err) = rollout::promote(
        backends.cluster.as_ref(),
        backends.clock.as_ref(),
        release,
        &pinned,
        spec.progress_deadline,
    )
    .await
    {
        let restore = backends.cluster.apply_deployment(&stable.spec).await;
        let restored = if restore.is_ok() {
            "stable restored to its previous image"
        } else {
            "stable could NOT be restored"
        };
        return Err(failed(format!(
            "rollback failed health checks, {restored}: {}",
            one_line(&err)
        )));
    }
    emit(
        backends,
        observer,
        report,
        "rollback",
        StageStatus::Pass,
        format!("stable {release} healthy on {pinned}"),
    );
    finish_rollback(spec, backends, observer, report, &history, &target).await
}

/// After the cluster serves the target again: move the alias back, record the rollback as a new
/// revision, tell the cluster's Events.
async fn finish_rollback(
    spec: &RollbackSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
    report: &mut RunReport,
    history: &[ReleaseRecord],
    target: &ReleaseRecord,
) -> Result<String, Stop> {
    let failed = |text: String| Stop(RunOutcome::Failed, text);
    let release = &spec.release;
    if let Err(err) = backends
        .models
        .set_alias(&target.model, &spec.serving_alias)
        .await
    {
        return Err(failed(format!(
            "rolled back in the cluster, but moving alias `{}` failed: {}",
            spec.serving_alias,
            one_line(&err)
        )));
    }
    emit(
        backends,
        observer,
        report,
        "rollback",
        StageStatus::Pass,
        format!(
            "alias `{}` points at {} again",
            spec.serving_alias, target.model
        ),
    );

    let revision = history.last().map_or(1, |record| record.revision + 1);
    report.revision = Some(revision);
    let record = ReleaseRecord {
        source_time: None,
        creates: Vec::new(),
        alias_pending: None,
        revision,
        outcome: Outcome::RolledBack,
        actor: spec.actor.clone(),
        at: backends.clock.now(),
        reason: Some(format!(
            "rollback to revision {}: {}",
            target.revision, spec.reason
        )),
        ..target.clone()
    };
    backends
        .cluster
        .record_release(&record, spec.history_limit)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    backends
        .audit
        .append(record.at, Event::Release(record))
        .await
        .map_err(|err| failed(one_line(&err)))?;
    let _ = backends
        .cluster
        .emit_event(
            &release.namespace,
            &release.name,
            "RolledBack",
            &format!("revision {revision}: back to revision {}", target.revision),
        )
        .await;
    emit(
        backends,
        observer,
        report,
        "record",
        StageStatus::Pass,
        format!("revision {revision} recorded as rolled-back"),
    );
    Ok(format!(
        "{release} rolled back to revision {} ({} at {}) as revision {revision}",
        target.revision,
        target.model,
        target.digest.short()
    ))
}

fn gate_events(
    backends: &Backends,
    observer: &mut dyn Observer,
    report: &mut RunReport,
    stage: &'static str,
    gate: GateReport,
) -> bool {
    for check in &gate.checks {
        let status = match check.status {
            CheckStatus::Pass => StageStatus::Pass,
            CheckStatus::Fail => StageStatus::Fail,
            CheckStatus::Skip => StageStatus::Skip,
        };
        emit(
            backends,
            observer,
            report,
            stage,
            status,
            format!("{}: {}", check.name, check.reason),
        );
    }
    let passed = gate.passed();
    report.gates.extend(gate);
    passed
}

#[cfg(test)]
mod tests {
    use slipway_core::{ImageRef, ModelVersion, Strategy};

    use super::*;

    fn record(revision: u64, digest_char: char, outcome: Outcome) -> ReleaseRecord {
        let digest = Digest::parse(&format!("sha256:{}", digest_char.to_string().repeat(64)))
            .expect("digest");
        ReleaseRecord {
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
            at: jiff::Timestamp::UNIX_EPOCH,
            reason: None,
        }
    }

    #[test]
    fn targets() {
        let history = [
            record(1, 'a', Outcome::Promoted),
            record(2, 'b', Outcome::Promoted),
            record(3, 'c', Outcome::Aborted),
            record(4, 'b', Outcome::Promoted),
        ];
        let revision = |target| choose_target(&history, &target).map(|(record, _)| record.revision);
        assert_eq!(
            revision(RollbackTarget::Previous),
            Ok(1),
            "skips aborted 3 and revisions with the serving digest"
        );
        assert_eq!(revision(RollbackTarget::Revision(2)), Ok(2));
        let aborted =
            revision(RollbackTarget::Revision(3)).expect_err("aborted revisions are no target");
        assert!(
            aborted.contains("revision 3 is not a successful revision"),
            "{aborted}"
        );
        let by_digest = RollbackTarget::Digest(history[0].digest.clone());
        assert_eq!(revision(by_digest), Ok(1));
        let nothing =
            choose_target(&history[..1], &RollbackTarget::Previous).expect_err("only one release");
        assert!(
            nothing.contains("no earlier successful revision"),
            "{nothing}"
        );
    }
}
