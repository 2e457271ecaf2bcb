//! Rollback: put a release back on an earlier good revision, with the same care as a release.
//!
//! The target is the previous successful revision in the release history (kept in the cluster,
//! so any CI runner finds it), or one named by revision number or digest. Before anything
//! changes: the target image must still exist and its signature and (when required) its build provenance must still verify; unless it
//! is an emergency, an approval bound to the target's digest and model version must exist.
//! Then the canary (if any) is removed, stable is rolled back and health-checked, the serving
//! alias moves back to the target's model version, and the rollback is recorded with its reason.

use slipway_attest::Verifier;
use slipway_audit_log::Event;
use slipway_core::{Digest, Outcome, ReleaseId, ReleaseRecord};
use slipway_gates::approval::ApprovalEvidence;
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

/// What `steps` learned, for settling a rollback that a signal or a lost lock stopped.
#[derive(Default)]
struct Progress {
    /// The revision being restored, pinned, once chosen.
    target: Option<ReleaseRecord>,
    /// The history read under the lock.
    history: Vec<ReleaseRecord>,
    /// Stable as it was, once read.
    stable_before: Option<slipway_k8s_rollout::DeploymentSpec>,
}

/// Runs the rollback. Never leaves a canary behind; on failure either stable (or the Service's
/// colour) is left as it was, or the rollback is recorded with its alias pending: the history
/// always names what serves.
///
/// The lock is taken first, before the history is read, and kept to the end (renewed on every
/// wait, [`crate::lock`]). A signal or the loss of the lock stops the rollback where it waits:
/// if stable already serves the target by then, the rollback is recorded; otherwise stable is
/// put back as it was. Either way history and cluster agree.
pub async fn rollback(
    spec: &RollbackSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
) -> RunReport {
    let mut report = RunReport::new(&spec.release);
    let holder = format!("{}@{}", spec.actor, backends.clock.now());
    let lock = match crate::lock::ReleaseLock::acquire(
        backends.cluster.clone(),
        backends.clock.clone(),
        backends.interrupt.clone(),
        &spec.release,
        &holder,
        crate::lock::lock_ttl(spec.progress_deadline),
    )
    .await
    {
        Ok(lock) => lock,
        Err(err) => {
            report.outcome = RunOutcome::Failed;
            report.reason = one_line(&err);
            let reason = report.reason.clone();
            emit(
                backends,
                observer,
                &mut report,
                "preflight",
                StageStatus::Fail,
                reason,
            );
            return report;
        }
    };
    let mut locked = backends.clone();
    locked.clock = std::sync::Arc::new(crate::interrupt::InterruptibleClock::new(
        lock.clock(),
        backends.interrupt.clone(),
    ));
    let mut progress = Progress::default();
    let interrupt = backends.interrupt.clone();
    let result = tokio::select! {
        biased;
        why = interrupt.triggered() => {
            report.interruption = Some(why.clone());
            Err(Stop(RunOutcome::Cancelled, why.to_string()))
        }
        result = steps(spec, &locked, observer, &mut report, &mut progress) => result,
    };
    let result = match result {
        Err(Stop(RunOutcome::Cancelled, why)) => {
            settle(spec, backends, observer, &mut report, &progress, why).await
        }
        other => other,
    };
    match result {
        Ok(reason) => {
            report.outcome = RunOutcome::RolledBack;
            report.reason = reason;
        }
        Err(Stop(outcome, reason)) => {
            report.outcome = outcome;
            report.reason = reason;
        }
    }
    if let Err(err) = lock.release().await {
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
        event: if report.outcome == RunOutcome::RolledBack {
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

/// A rollback stopped by a signal or a lost lock: record it when stable already serves the
/// target, else put stable back as it was. Returns the stop either way (the command was
/// cancelled), except that a recorded rollback says so in its reason.
async fn settle(
    spec: &RollbackSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
    report: &mut RunReport,
    progress: &Progress,
    why: String,
) -> Result<String, Stop> {
    let cancelled = |text: String| Err(Stop(RunOutcome::Cancelled, text));
    let Some(target) = &progress.target else {
        return cancelled(format!("{why}; nothing was changed"));
    };
    let pinned = target.image.with_digest(target.digest.clone());
    let pinned = pinned.pinned().unwrap_or_default();
    let serving = bluegreen::serving(backends.cluster.as_ref(), &spec.release, &spec.service)
        .await
        .map(|state| state.spec.image);
    if serving.as_deref().ok() == Some(pinned.as_str()) {
        let colours = BlueGreenConfig {
            deadline: spec.progress_deadline,
            ..BlueGreenConfig::new(spec.service.clone())
        };
        let blue_green = bluegreen::active(backends.cluster.as_ref(), &spec.release, &colours)
            .await
            .ok()
            .flatten()
            .is_some();
        let undo = match (&progress.stable_before, blue_green) {
            (Some(before), false) => Undo::Stable(before),
            _ => Undo::SwitchBack(&colours),
        };
        let recorded = finish_rollback(
            spec,
            backends,
            observer,
            report,
            (&progress.history, target),
            undo,
        )
        .await;
        return match recorded {
            Ok(text) => cancelled(format!("{why} after stable served the target: {text}")),
            Err(Stop(_, text)) => cancelled(format!("{why}: {text}")),
        };
    }
    if let Some(before) = &progress.stable_before {
        let restored = backends.cluster.apply_deployment(before).await;
        emit(
            backends,
            observer,
            report,
            "rollback",
            if restored.is_ok() {
                StageStatus::Pass
            } else {
                StageStatus::Fail
            },
            match restored {
                Ok(()) => format!("stable {} left as it was ({})", spec.release, before.image),
                Err(err) => format!("could not put stable back: {}", one_line(&err)),
            },
        );
    }
    cancelled(format!("{why}; stable left as it was"))
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
///
/// `serving` is the digest that serves now, read from the cluster: the current revision is the
/// newest good record of that digest (so a record that failed to say `promoted` cannot make the
/// rollback skip a version), and `Previous` is the newest good revision of another digest. With
/// no digest serving (an image by tag), the newest good record counts as current.
pub fn choose_target(
    history: &[ReleaseRecord],
    target: &RollbackTarget,
    serving: Option<&Digest>,
) -> Result<(ReleaseRecord, Option<ReleaseRecord>), String> {
    let good =
        |record: &&ReleaseRecord| matches!(record.outcome, Outcome::Promoted | Outcome::RolledBack);
    let current = match serving {
        Some(digest) => history
            .iter()
            .rev()
            .filter(good)
            .find(|record| &record.digest == digest)
            .cloned(),
        None => history.iter().rev().find(good).cloned(),
    };
    let chosen = match target {
        RollbackTarget::Previous => {
            let current_digest = serving.or(current.as_ref().map(|record| &record.digest));
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
    progress: &mut Progress,
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
    progress.stable_before = Some(stable.spec.clone());
    let history = backends
        .cluster
        .release_history(release)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    progress.history = history.clone();
    // What serves decides where we are, whatever the last record says.
    let serving = bluegreen::serving(backends.cluster.as_ref(), release, &spec.service)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    let serving_digest = slipway_core::ImageRef::parse(&serving.spec.image)
        .ok()
        .and_then(|image| image.digest().cloned());
    let (target, current) =
        choose_target(&history, &spec.target, serving_digest.as_ref()).map_err(failed)?;
    progress.target = Some(target.clone());
    report.model = Some(target.model.clone());
    report.digest = Some(target.digest.clone());
    let from = current.as_ref().map_or_else(
        || format!("what serves now ({})", serving.spec.image),
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
    let verification = slipway_attest::bundle::verify_image_any_format(
        backends.registry.as_ref(),
        &image,
        slipway_attest::bundle::Trust::Keys(&keys),
    )
    .await
    .map_err(|err| failed(one_line(&err)))?;
    let (policy, signatures) =
        crate::run::signature_gate_input(&spec.policy.signatures, &keys, &verification);
    // The target's provenance is verified as `run` verifies it (build keys, builder, source,
    // ref, subject), so a rollback never returns to an image the gate would refuse today.
    let (provenance, rejected_provenance) = crate::run::provenance_evidence(backends, &image)
        .await
        .map_err(|err| failed(one_line(&err)))?;
    let gate = slipway_gates::signature::evaluate(
        &policy,
        &SignatureEvidence {
            signatures,
            provenance,
            rejected_provenance,
        },
    );
    let failures: Vec<String> = gate
        .checks
        .iter()
        .filter(|check| check.status == slipway_gates::CheckStatus::Fail)
        .map(|check| format!("{}: {}", check.name, check.reason))
        .collect();
    let verdict = gate_events(backends, observer, report, "verify", gate);
    if !verdict {
        return Err(Stop(
            RunOutcome::Rejected,
            format!(
                "the target image does not pass the signature gate: {}",
                failures.join("; ")
            ),
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
        // A rollback target is approved by approvals of its digest and model; no revision is at
        // stake (the target's own revision ended long ago), but expiry and identity are.
        let approvals = crate::approvals::recorded_approvals(backends, release)
            .await
            .map_err(failed)?;
        let evidence = ApprovalEvidence {
            revision: None,
            now: backends.clock.now(),
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
        // Recorded before the housekeeping, so a failure there never leaves the history
        // saying another colour serves.
        let undo = Undo::SwitchBack(&colours);
        let finished =
            finish_rollback(spec, backends, observer, report, (&history, &target), undo).await?;
        if let Err(err) = bluegreen::finish(
            backends.cluster.as_ref(),
            backends.clock.as_ref(),
            release,
            &colours,
        )
        .await
        {
            emit(
                backends,
                observer,
                report,
                "rollback",
                StageStatus::Info,
                format!(
                    "could not scale the old colour down: {} (it keeps running; the next release or `slipway-deploy abort` removes it)",
                    one_line(&err)
                ),
            );
        }
        return Ok(finished);
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
    let undo = Undo::Stable(&stable.spec);
    finish_rollback(spec, backends, observer, report, (&history, &target), undo).await
}

/// How to put the cluster back when the rollback cannot be recorded.
enum Undo<'a> {
    /// Stable's Deployment as it was.
    Stable(&'a slipway_k8s_rollout::DeploymentSpec),
    /// The Service back on the colour it selected.
    SwitchBack(&'a BlueGreenConfig),
}

/// After the cluster serves the target again: move the alias back, record the rollback as a new
/// revision (with the alias pending when moving it failed: the next command moves it), tell the
/// cluster's Events. When the record cannot be written, the cluster and the alias are put back
/// (`undo`), so the history never disagrees with what serves.
async fn finish_rollback(
    spec: &RollbackSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
    report: &mut RunReport,
    (history, target): (&[ReleaseRecord], &ReleaseRecord),
    undo: Undo<'_>,
) -> Result<String, Stop> {
    let failed = |text: String| Stop(RunOutcome::Failed, text);
    let release = &spec.release;
    let serving_alias = slipway_core::ModelRef {
        name: target.model.name.clone(),
        selector: slipway_core::ModelSelector::Alias(spec.serving_alias.clone()),
    };
    let alias_before = backends
        .models
        .resolve(&serving_alias)
        .await
        .ok()
        .map(|info| info.version);
    let alias_failed = backends
        .models
        .set_alias(&target.model, &spec.serving_alias)
        .await
        .err();
    let (status, text) = match &alias_failed {
        None => (
            StageStatus::Pass,
            format!(
                "alias `{}` points at {} again",
                spec.serving_alias, target.model
            ),
        ),
        Some(err) => (
            StageStatus::Fail,
            format!(
                "moving alias `{}` to {} failed: {}; recorded as pending",
                spec.serving_alias,
                target.model,
                one_line(err)
            ),
        ),
    };
    emit(backends, observer, report, "rollback", status, text);

    let revision = history.last().map_or(1, |record| record.revision + 1);
    report.revision = Some(revision);
    // The trail's head goes into the history (see `run::record`).
    let trail_head = backends.audit.head().await.ok().flatten();
    let record = ReleaseRecord {
        trail_head,
        source_time: None,
        creates: Vec::new(),
        alias_pending: alias_failed.is_some().then(|| spec.serving_alias.clone()),
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
    if let Err(err) = backends
        .cluster
        .record_release(&record, spec.history_limit)
        .await
    {
        let cluster = backends.cluster.as_ref();
        let undone = match undo {
            Undo::Stable(before) => cluster.apply_deployment(before).await,
            Undo::SwitchBack(colours) => {
                bluegreen::switch_back(cluster, backends.clock.as_ref(), release, colours)
                    .await
                    .map(|_| ())
            }
        };
        if alias_failed.is_none()
            && let Some(before) = alias_before
        {
            let _ = backends
                .models
                .set_alias(&before, &spec.serving_alias)
                .await;
        }
        let restored = if undone.is_ok() {
            "put back as the history says"
        } else {
            "and could NOT be put back (hint: run the rollback again)"
        };
        return Err(failed(format!(
            "the rollback could not be recorded, {restored}: {}",
            one_line(&err)
        )));
    }
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
    if let Some(err) = alias_failed {
        return Err(failed(format!(
            "rolled back and recorded as revision {revision}, but moving alias `{}` failed: {} (hint: `slipway-deploy run` for {release}, or this rollback again, moves it)",
            spec.serving_alias,
            one_line(&err)
        )));
    }
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
        let serving = history[3].digest.clone();
        let revision = |target| {
            choose_target(&history, &target, Some(&serving)).map(|(record, _)| record.revision)
        };
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
        let nothing = choose_target(&history[..1], &RollbackTarget::Previous, None)
            .expect_err("only one release");
        assert!(
            nothing.contains("no earlier successful revision"),
            "{nothing}"
        );
    }

    /// The record of the serving revision failed to be written (it says aborted, or it is
    /// missing): the target is still the one before what serves, not one further back.
    #[test]
    fn the_target_follows_what_serves_not_the_last_record() {
        let history = [
            record(1, 'a', Outcome::Promoted),
            record(2, 'b', Outcome::Promoted),
            record(3, 'c', Outcome::Aborted),
        ];
        // `c` serves although its record says aborted: go back to b, the newest other digest.
        let serving = history[2].digest.clone();
        let (target, current) =
            choose_target(&history, &RollbackTarget::Previous, Some(&serving)).expect("target");
        assert_eq!(target.revision, 2);
        assert_eq!(current, None, "no good record of what serves");
        // Reading only the records would pick 1 (skipping b as "current").
        let (by_records, _) =
            choose_target(&history, &RollbackTarget::Previous, None).expect("target");
        assert_eq!(by_records.revision, 1);
    }
}
