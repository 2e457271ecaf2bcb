//! The stage machine behind [`run`] and [`plan`].
//!
//! Both walk the same stages over the same backends. `plan` stops before the first change and
//! writes nothing, not even to the audit trail; `run` goes on to the canary, approval and
//! promotion. Every exit path after the canary starts goes through `Ctx::abort_canary`.
//!
//! This file holds the public entry points, the context every stage shares (events, audit,
//! gates, records, notifications) and the order of the stages; `gates.rs` has the stages before
//! any change, `strategies.rs` the ones that change the cluster.

use slipway_analysis::{Decision, TemplateVars};
use slipway_attest::Verifier;
use slipway_attest::model_link::ModelLink;
use slipway_audit_log::{ApprovalRecord, Event};
use slipway_core::{
    ImageRef, ModelRef, ModelSelector, ModelVersion, Outcome, ReleaseRecord, Strategy,
};
use slipway_gates::approval::ApprovalEvidence;
use slipway_gates::model::{ModelEvidence, ServingModel};
use slipway_gates::signature::{ProvenanceSummary, SignatureEvidence, VerifiedSignature};
use slipway_gates::{CheckStatus, GateReport};
use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig};
use slipway_k8s_rollout::rollout::{CoarseSteps, TrafficRouting};
use slipway_k8s_rollout::{DeploymentSpec, RollingParams, rolling, rollout};
use slipway_mlflow::VersionStatus;

use crate::{
    Backends, Interruption, Notification, ReleaseSpec, RunOutcome, RunReport, StageEvent,
    StageStatus, StepShare,
};

mod baseline;
mod converge;
mod gates;
pub use gates::model_evidence;
pub(crate) use gates::provenance_evidence;
mod strategies;

/// Receives each stage event as it happens (the binaries print them on stderr).
pub trait Observer: Send {
    /// One event.
    fn event(&mut self, event: &StageEvent);
}

impl<F: FnMut(&StageEvent) + Send> Observer for F {
    fn event(&mut self, event: &StageEvent) {
        self(event);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plan,
    Run,
    Resume,
}

/// An Event reason in Kubernetes' CamelCase: `model-gate` + `fail` → `ModelGateFail`.
fn event_reason(stage: &str, verdict: &str) -> String {
    format!("{stage}-{verdict}")
        .split(['-', '_', ' '])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The signature gate's inputs from a verification in both formats: each signature as evidence
/// (named by the key that verified its bytes, else by its `.sig` layer or bundle manifest), and
/// the policy with the backends' keys as the trusted ones when the policy names none.
pub(crate) fn signature_gate_input(
    policy: &slipway_gates::signature::SignaturePolicy,
    keys: &[&dyn Verifier],
    verification: &slipway_attest::bundle::ImageVerification,
) -> (
    slipway_gates::signature::SignaturePolicy,
    Vec<VerifiedSignature>,
) {
    use slipway_attest::bundle::SignatureFormat as Found;
    use slipway_gates::signature::SignatureFormat;
    let mut policy = policy.clone();
    if policy.trusted_keys.is_empty() {
        policy.trusted_keys = keys.iter().map(|key| key.key_id()).collect();
    }
    let signatures = verification
        .checks
        .iter()
        .map(|check| VerifiedSignature {
            key_id: check.key_id.clone().unwrap_or_else(|| check.source.clone()),
            result: match &check.failure {
                None => Ok(()),
                Some(why) => Err(why.clone()),
            },
            format: match check.format {
                Found::LegacyTag => SignatureFormat::LegacyTag,
                Found::SigstoreBundle => SignatureFormat::SigstoreBundle,
            },
        })
        .collect();
    (policy, signatures)
}

/// What to do with a release paused at the approval gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Check the approvals and promote.
    Promote,
    /// Delete the canary and record the abort with this reason.
    Abort(String),
}

/// The paused revision a resume acts on: the last record, if it is paused.
fn paused_record(history: &[ReleaseRecord]) -> Result<ReleaseRecord, String> {
    match history.last() {
        Some(record) if record.outcome == Outcome::Paused => Ok(record.clone()),
        Some(record) if record.outcome == Outcome::InProgress => Err(format!(
            "no release is paused at the approval gate: revision {} is in progress, or its command was killed (hint: `slipway-deploy status` shows it; `slipway-deploy abort --reason \"…\"` ends it)",
            record.revision
        )),
        Some(record) => Err(format!(
            "no release is paused at the approval gate: the last revision ({}) ended {} (hint: `slipway-deploy status` shows the release)",
            record.revision, record.outcome
        )),
        None => Err("no release is paused at the approval gate: the release has no history (hint: start one with `slipway-deploy run`)".to_owned()),
    }
}

/// Why the run stopped early.
struct Stop {
    outcome: RunOutcome,
    reason: String,
    /// Set when a signal or the loss of the lock stopped the run.
    interruption: Option<Interruption>,
}

fn rejected(reason: impl Into<String>) -> Stop {
    Stop {
        outcome: RunOutcome::Rejected,
        reason: reason.into(),
        interruption: None,
    }
}

fn failed(reason: impl Into<String>) -> Stop {
    Stop {
        outcome: RunOutcome::Failed,
        reason: reason.into(),
        interruption: None,
    }
}

fn interrupted(why: Interruption) -> Stop {
    Stop {
        outcome: RunOutcome::Cancelled,
        reason: why.to_string(),
        interruption: Some(why),
    }
}

/// An error and its sources on one line, hints gathered at the end, for events and reports.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut hints = Vec::new();
    let mut next: Option<&dyn std::error::Error> = Some(err);
    while let Some(current) = next {
        let text = current.to_string();
        match text.split_once("\n\nhint: ") {
            Some((message, hint)) => {
                parts.push(message.replace('\n', " "));
                hints.push(hint.replace('\n', " "));
            }
            None => parts.push(text.replace('\n', " ")),
        }
        next = current.source();
    }
    parts.dedup();
    let mut line = parts.join(": ");
    if !hints.is_empty() {
        line.push_str(&format!(" (hint: {})", hints.join("; ")));
    }
    line
}

/// How far a run got, which decides what stopping it must undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing changed yet.
    Before,
    /// The in-progress record is written and Slipway objects may exist; stable is untouched.
    Changing,
    /// Stable (or the Service's colour) serves the candidate, not yet recorded as promoted.
    Serving,
    /// Recorded as promoted: what is left (alias, tags, reload) never undoes the release.
    Recorded,
}

struct Ctx<'a> {
    spec: &'a ReleaseSpec,
    /// The caller's backends; once the lock is held, `clock` keeps it (see `crate::lock`).
    backends: Backends,
    /// The caller's clock, for cleaning up after the lock was lost.
    raw_clock: std::sync::Arc<dyn slipway_core::Clock>,
    observer: &'a mut dyn Observer,
    mode: Mode,
    report: RunReport,
    lock: Option<std::sync::Arc<crate::lock::ReleaseLock>>,
    stable_before: Option<DeploymentSpec>,
    phase: Phase,
    /// The candidate, pinned, once the run changes the cluster for it.
    changing: Option<(ImageRef, ModelVersion, u64)>,
    /// Who started the release, when it differs from who runs this command (resume).
    spec_actor_override: Option<String>,
    /// The run that produced the candidate, for the model-link attestation.
    candidate_run: Option<String>,
    /// Preflight passed and the lock was taken: decisions may now be Kubernetes Events.
    preflight_passed: bool,
    /// The serving alias still to move, for the promoted record.
    alias_pending: Option<String>,
    /// Where the serving alias pointed before this run moved it, for an unwind to put back.
    alias_before: Option<ModelVersion>,
    /// The objects the in-progress record names.
    creates: Vec<String>,
}

/// Plans a release: runs preflight and every gate against the backends and says what `run`
/// would do. Changes nothing anywhere.
pub async fn plan(
    spec: &ReleaseSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
) -> RunReport {
    execute(spec, backends, observer, Mode::Plan, None).await
}

/// Runs a release from preflight to promotion (or to a stop that leaves stable untouched).
pub async fn run(
    spec: &ReleaseSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
) -> RunReport {
    execute(spec, backends, observer, Mode::Run, None).await
}

/// Promotes or aborts the release paused at the approval gate (the last history record).
/// Promotion checks the approvals recorded for the paused digest and model version.
pub async fn resume(
    spec: &ReleaseSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
    action: Resume,
) -> RunReport {
    execute(spec, backends, observer, Mode::Resume, Some(action)).await
}

/// Why an approval was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    /// There is nothing to approve (exit 2: wrong release, or not paused).
    #[error("{0}")]
    NothingPaused(String),
    /// The policy refuses this approver (exit 1).
    #[error("{0}")]
    Refused(String),
    /// The history or the trail could not be read or written.
    #[error("{0}")]
    Backend(String),
}

/// Records an approval by a person named on the command line: the embedded demo world only
/// (elsewhere refused, see [`approve_with`]). Bound to the paused revision, digest and model.
pub async fn approve(
    spec: &ReleaseSpec,
    backends: &Backends,
    approver: &str,
    reason: &str,
) -> Result<ApprovalRecord, ApproveError> {
    let given = crate::ApprovalGiven::Named {
        approver: approver.to_owned(),
        reason: reason.to_owned(),
    };
    let mut records = approve_with(spec, backends, given).await?;
    records
        .pop()
        .ok_or_else(|| ApproveError::Backend("no approval was recorded".to_owned()))
}

/// Records the approvals `given` makes of the paused release, each bound to its revision,
/// digest and model version. Refuses when nothing is paused, when the reason is empty, when a
/// GitHub environment was rejected or has no approval, when a key is no approver's, or when no
/// approver is allowed (on the list, not the person who started the release).
pub async fn approve_with(
    spec: &ReleaseSpec,
    backends: &Backends,
    given: crate::ApprovalGiven,
) -> Result<Vec<ApprovalRecord>, ApproveError> {
    // Under the lock, so the approval binds to a paused revision that no promote or abort is
    // ending at the same moment.
    let lock = crate::lock::ReleaseLock::acquire(
        backends.cluster.clone(),
        backends.clock.clone(),
        backends.interrupt.clone(),
        &spec.release,
        &format!("{}@{}", given.label(), backends.clock.now()),
        crate::lock::lock_ttl(spec.progress_deadline),
    )
    .await
    .map_err(|err| ApproveError::Backend(chain(&err)))?;
    let result = record_approval(spec, backends, &given).await;
    if let Err(err) = lock.release().await {
        return Err(ApproveError::Backend(chain(&err)));
    }
    result
}

async fn record_approval(
    spec: &ReleaseSpec,
    backends: &Backends,
    given: &crate::ApprovalGiven,
) -> Result<Vec<ApprovalRecord>, ApproveError> {
    let history = backends
        .cluster
        .release_history(&spec.release)
        .await
        .map_err(|err| ApproveError::Backend(chain(&err)))?;
    let paused = paused_record(&history).map_err(ApproveError::NothingPaused)?;
    let records = crate::approvals::records_for(spec, backends, &paused, given)
        .map_err(ApproveError::Refused)?;
    for record in &records {
        backends
            .audit
            .append(record.at, Event::Approval(record.clone()))
            .await
            .map_err(|err| ApproveError::Backend(chain(&err)))?;
    }
    Ok(records)
}

async fn execute(
    spec: &ReleaseSpec,
    backends: &Backends,
    observer: &mut dyn Observer,
    mode: Mode,
    action: Option<Resume>,
) -> RunReport {
    let mut ctx = Ctx {
        spec,
        backends: backends.clone(),
        raw_clock: backends.clock.clone(),
        observer,
        mode,
        report: RunReport::new(&spec.release),
        lock: None,
        stable_before: None,
        phase: Phase::Before,
        changing: None,
        spec_actor_override: None,
        candidate_run: None,
        preflight_passed: false,
        alias_pending: None,
        alias_before: None,
        creates: Vec::new(),
    };
    let interrupt = backends.interrupt.clone();
    ctx.backends.clock = std::sync::Arc::new(crate::interrupt::InterruptibleClock::new(
        backends.clock.clone(),
        interrupt.clone(),
    ));
    // Every stage races the interrupt (a signal, a lost lock): when it wins, the stage's
    // future is dropped where it waited, and `unwind` below removes what the run started.
    let result = {
        let work = async {
            match action {
                Some(action) => match ctx.take_lock().await {
                    Ok(()) => ctx.resume(action).await,
                    Err(stop) => Err(stop),
                },
                None => ctx.stages().await,
            }
        };
        tokio::select! {
            biased;
            why = interrupt.triggered() => Err(interrupted(why)),
            result = work => result,
        }
    };
    let (outcome, reason) = match result {
        Ok((outcome, reason)) => (outcome, reason),
        Err(stop) => {
            ctx.unwind(&stop).await;
            (stop.outcome, stop.reason)
        }
    };
    ctx.report.outcome = outcome;
    ctx.report.reason = reason;
    ctx.finish().await;
    ctx.report
}

impl Ctx<'_> {
    pub(super) fn emit(
        &mut self,
        stage: &'static str,
        status: StageStatus,
        message: impl Into<String>,
    ) {
        let event = StageEvent {
            stage,
            status,
            at: self.backends.clock.now(),
            message: message.into(),
        };
        self.observer.event(&event);
        self.report.stages.push(event);
    }

    /// Appends a decision to the audit trail (not in plan mode). Losing a decision is not
    /// acceptable, so a failing trail stops the run.
    pub(super) async fn audit(
        &mut self,
        stage: &str,
        verdict: &str,
        detail: &str,
    ) -> Result<(), Stop> {
        if self.mode == Mode::Plan {
            return Ok(());
        }
        let event = Event::Decision {
            release: self.spec.release.clone(),
            stage: stage.to_owned(),
            verdict: verdict.to_owned(),
            detail: detail.to_owned(),
        };
        self.backends
            .audit
            .append(self.backends.clock.now(), event)
            .await
            .map_err(|err| failed(chain(&err)))?;
        // Once preflight passed (the lock is ours), each decision is also a Kubernetes Event
        // on the Deployment, so `kubectl describe` tells the same story as the trail.
        if self.preflight_passed {
            let reason = event_reason(stage, verdict);
            self.k8s_event(&reason, detail).await;
        }
        Ok(())
    }

    /// Emits a gate's checks, adds them to the report, audits the verdict, and stops on a "no".
    pub(super) async fn gate(
        &mut self,
        stage: &'static str,
        report: GateReport,
    ) -> Result<(), Stop> {
        for check in &report.checks {
            let status = match check.status {
                CheckStatus::Pass => StageStatus::Pass,
                CheckStatus::Fail => StageStatus::Fail,
                CheckStatus::Skip => StageStatus::Skip,
            };
            self.emit(stage, status, format!("{}: {}", check.name, check.reason));
        }
        let passed = report.passed();
        let summary = report.summary();
        self.report.gates.extend(report);
        self.audit(stage, if passed { "pass" } else { "fail" }, &summary)
            .await?;
        if passed {
            Ok(())
        } else {
            Err(rejected(format!("{stage} said no ({summary})")))
        }
    }

    pub(super) async fn stages(&mut self) -> Result<(RunOutcome, String), Stop> {
        self.preflight().await?;
        let candidate = self.model_gate().await?;
        let image = self.resolve_digest().await?;
        self.scan_gate(&image).await?;
        self.sign_and_verify(&image, &candidate).await?;
        if self.mode == Mode::Plan {
            let approvals = self.spec.policy.approvals.required;
            let rollout = match self.spec.strategy {
                Strategy::Canary => {
                    let steps: Vec<String> = self
                        .spec
                        .steps
                        .iter()
                        .map(|step| format!("{step}%"))
                        .collect();
                    format!(
                        "run a canary in steps {}, analyse each, wait for {approvals} approval(s)",
                        steps.join(" → ")
                    )
                }
                Strategy::BlueGreen => format!(
                    "deploy to the standby colour behind a preview Service, analyse it, wait for {approvals} approval(s), switch the Service"
                ),
                Strategy::Rolling => format!(
                    "wait for {approvals} approval(s), roll stable's pods, analyse the release"
                ),
            };
            self.emit(
                "plan",
                StageStatus::Info,
                format!(
                    "would {rollout}, then promote {image} ({candidate}) and move `{}` to it",
                    self.spec.serving_alias
                ),
            );
            return Ok((
                RunOutcome::WouldProceed,
                "every gate passes; nothing was changed".to_owned(),
            ));
        }
        let revision = self.next_revision().await?;
        self.report.revision = Some(revision);
        let creates = self.objects_to_create().await?;
        self.begin(&image, &candidate, revision, creates).await?;
        let started = format!(
            "revision {revision}: {candidate} at {} starting {}",
            image.pinned().unwrap_or_default(),
            self.spec.strategy
        );
        self.notify("started", &started).await;
        match self.spec.strategy {
            Strategy::Canary => {
                self.canary(&image).await?;
                if let Err(stop) = self.approval(&image, &candidate, revision).await {
                    if self.spec.pause_for_approval && stop.outcome == RunOutcome::Rejected {
                        return self.pause(&image, &candidate, revision).await;
                    }
                    return Err(stop);
                }
                self.promote(&image, &candidate, revision).await?;
            }
            Strategy::BlueGreen => self.blue_green(&image, &candidate, revision).await?,
            Strategy::Rolling => self.rolling(&image, &candidate, revision).await?,
        }
        Ok((
            RunOutcome::Promoted,
            format!(
                "{candidate} serves from {} as revision {revision}",
                image.pinned().unwrap_or_default()
            ),
        ))
    }

    pub(super) async fn record(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
        outcome: Outcome,
        reason: &str,
    ) -> Result<(), Stop> {
        let Some(digest) = image.digest().cloned() else {
            return Ok(());
        };
        // The trail's head goes into the history, so a trail cut short is caught without a
        // head kept elsewhere. An unreadable trail leaves it out: recording must not stop here.
        let trail_head = self.backends.audit.head().await.ok().flatten();
        let record = ReleaseRecord {
            trail_head,
            ci_run: self.spec.ci_run.clone(),
            source_time: self.spec.source_time,
            release: self.spec.release.clone(),
            revision,
            image: image.clone(),
            digest,
            model: candidate.clone(),
            strategy: self.spec.strategy,
            outcome,
            actor: self.spec.actor.clone(),
            at: self.backends.clock.now(),
            reason: Some(reason.to_owned()),
            creates: if outcome == Outcome::InProgress {
                self.creates.clone()
            } else {
                Vec::new()
            },
            alias_pending: if outcome == Outcome::Promoted {
                self.alias_pending.clone()
            } else {
                None
            },
        };
        self.backends
            .cluster
            .record_release(&record, self.spec.history_limit)
            .await
            .map_err(|err| failed(chain(&err)))?;
        // The history in the cluster is what the next command acts on, so from here the phase
        // follows it, even when the trail below fails: an unwind must never contradict it
        // (restore stable under a `promoted` record, or leave an `in-progress` one standing).
        match outcome {
            Outcome::InProgress => self.phase = Phase::Changing,
            Outcome::Promoted => self.phase = Phase::Recorded,
            Outcome::Paused => self.phase = Phase::Before,
            _ => {}
        }
        self.backends
            .audit
            .append(record.at, Event::Release(record))
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "record",
            StageStatus::Pass,
            format!("revision {revision} recorded as {outcome}"),
        );
        Ok(())
    }

    /// Records how a revision that an earlier command started ended (settled by `converge` or
    /// `abort`): the record keeps that command's image, model, strategy, actor and commit time,
    /// so neither the history nor DORA's lead time is rewritten by whoever settles it.
    pub(super) async fn record_end_of(
        &mut self,
        last: &ReleaseRecord,
        revision: u64,
        outcome: Outcome,
        reason: &str,
        alias_pending: Option<String>,
    ) -> Result<(), Stop> {
        let record = ReleaseRecord {
            revision,
            outcome,
            at: self.backends.clock.now(),
            reason: Some(reason.to_owned()),
            creates: Vec::new(),
            alias_pending,
            ..last.clone()
        };
        self.backends
            .cluster
            .record_release(&record, self.spec.history_limit)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.backends
            .audit
            .append(record.at, Event::Release(record))
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "record",
            StageStatus::Pass,
            format!("revision {revision} recorded as {outcome}"),
        );
        Ok(())
    }

    pub(super) async fn k8s_event(&mut self, reason: &str, message: &str) {
        let release = &self.spec.release;
        if let Err(err) = self
            .backends
            .cluster
            .emit_event(&release.namespace, &release.name, reason, message)
            .await
        {
            let text = chain(&err);
            self.emit(
                "record",
                StageStatus::Info,
                format!("could not emit a Kubernetes Event: {text}"),
            );
        }
    }

    /// Sends a notification; a failure is an event and an audit entry, never a stop.
    pub(super) async fn notify(&mut self, event: &str, summary: &str) {
        let notification = Notification {
            release: self.report.release.clone(),
            event: event.to_owned(),
            summary: summary.to_owned(),
        };
        if let Err(err) = self.backends.notifier.notify(&notification).await {
            self.emit(
                "notify",
                StageStatus::Info,
                format!("notification `{event}` failed: {err}"),
            );
            if let Err(stop) = self
                .audit("notify", "fail", &format!("`{event}` not delivered: {err}"))
                .await
            {
                self.emit("notify", StageStatus::Fail, stop.reason);
            }
        }
    }

    pub(super) async fn finish(&mut self) {
        // After a signal the process has seconds left: the lock goes first, so the next job is
        // never refused because a notification was slow. Otherwise it goes last, once the end
        // is on the trail.
        let interrupted = self.report.interruption.is_some();
        if interrupted {
            self.release_lock().await;
        }
        if self.mode != Mode::Plan {
            self.finish_trail().await;
        }
        if !interrupted {
            self.release_lock().await;
        }
    }

    async fn release_lock(&mut self) {
        if let Some(lock) = self.lock.take()
            && let Err(err) = lock.release().await
        {
            self.emit(
                "finish",
                StageStatus::Info,
                format!("could not release the lock: {}", chain(&err)),
            );
        }
    }

    async fn finish_trail(&mut self) {
        // Every run's end is on the trail, including stops before anything changed (a held
        // lock, an unreachable registry), so "why did this release not happen" has an answer.
        let verdict = match (&self.report.outcome, &self.report.interruption) {
            (RunOutcome::Promoted, _) => "promoted",
            (RunOutcome::RolledBack, _) => "rolled-back",
            (RunOutcome::Paused, _) => "paused",
            (RunOutcome::Rejected, _) => "rejected",
            (RunOutcome::Failed, _) => "failed",
            (RunOutcome::WouldProceed, _) => "planned",
            (RunOutcome::Unchanged, _) => "unchanged",
            (RunOutcome::Aborted, _) => "aborted",
            (RunOutcome::Cancelled, Some(why)) => why.verdict(),
            (RunOutcome::Cancelled, None) => "cancelled",
        };
        let reason = self.report.reason.clone();
        if let Err(stop) = self.audit("run", verdict, &reason).await {
            self.emit("record", StageStatus::Fail, stop.reason);
        }
        // Paused notified already; nothing done is nothing to tell.
        if matches!(
            self.report.outcome,
            RunOutcome::Paused | RunOutcome::Unchanged
        ) {
            return;
        }
        if self.report.interruption.is_some() {
            // Within the seconds a cancelled job has left; the trail above already has it.
            let notified = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                self.notify(verdict, &reason),
            )
            .await;
            if notified.is_err() {
                self.emit(
                    "notify",
                    StageStatus::Info,
                    format!("notification `{verdict}` dropped: no time left after the signal"),
                );
            }
            return;
        }
        self.notify(verdict, &reason).await;
    }
}

#[cfg(test)]
mod tests {
    use slipway_attest::bundle::{Trust, sign_image_bundle, verify_image_any_format};
    use slipway_attest::{EcdsaP256Key, Signer as _, sign_image};
    use slipway_core::ImageRef;
    use slipway_gates::CheckStatus;
    use slipway_gates::signature::{SignaturePolicy, evaluate};
    use slipway_registry::MemoryRegistry;

    use super::*;

    async fn gate_reason(
        registry: &MemoryRegistry,
        image: &ImageRef,
        key: &EcdsaP256Key,
    ) -> (CheckStatus, String) {
        let public = key.public();
        let keys: [&dyn Verifier; 1] = [&public];
        let verification = verify_image_any_format(registry, image, Trust::Keys(&keys))
            .await
            .expect("verify");
        let policy = SignaturePolicy {
            require_provenance: false,
            ..SignaturePolicy::default()
        };
        let (policy, signatures) = signature_gate_input(&policy, &keys, &verification);
        let report = evaluate(
            &policy,
            &SignatureEvidence {
                signatures,
                provenance: None,
                rejected_provenance: Vec::new(),
            },
        );
        (report.checks[0].status, report.checks[0].reason.clone())
    }

    #[tokio::test]
    async fn the_signature_gate_accepts_a_cosign_v3_bundle_and_names_it() {
        let registry = MemoryRegistry::new();
        let tagged = ImageRef::parse("ghcr.io/acme/iris:1.0").expect("ref");
        let image = tagged.with_digest(registry.push_image(&tagged, "v1"));
        let key = EcdsaP256Key::generate();
        sign_image_bundle(&registry, &key, &image)
            .await
            .expect("bundle");
        let (status, reason) = gate_reason(&registry, &image, &key).await;
        assert_eq!(status, CheckStatus::Pass, "{reason}");
        assert_eq!(
            reason,
            format!(
                "verified with trusted key `{}` in a Sigstore bundle",
                key.key_id()
            )
        );

        // With a .sig signature as well, the legacy one answers and the reason is as before.
        sign_image(&registry, &key, &image).await.expect("sig");
        let (status, reason) = gate_reason(&registry, &image, &key).await;
        assert_eq!(status, CheckStatus::Pass, "{reason}");
        assert_eq!(
            reason,
            format!("verified with trusted key `{}`", key.key_id())
        );

        // Another key's bundle is listed as a reason, by its manifest digest.
        let other = EcdsaP256Key::generate();
        let (status, reason) = gate_reason(&registry, &image, &other).await;
        assert_eq!(status, CheckStatus::Fail, "{reason}");
        assert!(reason.contains("`sha256:"), "{reason}");
        assert!(
            reason.contains("does not verify with any of the 1 trusted key"),
            "{reason}"
        );
    }
}
