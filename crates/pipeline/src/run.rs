//! The stage machine behind [`run`] and [`plan`].
//!
//! Both walk the same stages over the same backends. `plan` stops before the first change and
//! writes nothing, not even to the audit trail; `run` goes on to the canary, approval and
//! promotion. Every exit path after the canary starts goes through [`Ctx::abort_canary`].

use std::time::Duration;

use slipway_analysis::{Decision, TemplateVars};
use slipway_attest::Verifier;
use slipway_attest::model_link::ModelLink;
use slipway_audit_log::{ApprovalRecord, Event};
use slipway_core::{
    ImageRef, ModelRef, ModelSelector, ModelVersion, Outcome, ReleaseRecord, Strategy,
};
use slipway_gates::approval::{Approval, ApprovalEvidence};
use slipway_gates::model::{ModelEvidence, ServingModel};
use slipway_gates::signature::{ProvenanceSummary, SignatureEvidence, VerifiedSignature};
use slipway_gates::{CheckStatus, GateReport};
use slipway_k8s_rollout::bluegreen::{self, BlueGreenConfig};
use slipway_k8s_rollout::rollout::TrafficRouting;
use slipway_k8s_rollout::{DeploymentSpec, RollingParams, rolling, rollout};
use slipway_mlflow::VersionStatus;

use crate::{Backends, Notification, ReleaseSpec, RunOutcome, RunReport, StageEvent, StageStatus};

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

/// A version's metrics, read through its run (none when the version names no run).
async fn run_metrics(
    models: &dyn slipway_mlflow::ModelRegistry,
    run_id: Option<&str>,
) -> Result<std::collections::BTreeMap<String, f64>, Stop> {
    match run_id {
        Some(run_id) => Ok(models
            .run_data(run_id)
            .await
            .map_err(|err| failed(chain(&err)))?
            .metrics),
        None => Ok(Default::default()),
    }
}

/// The signature gate's inputs from a verification: each signature as evidence, and the policy
/// with the backends' keys as the trusted ones when the policy names none.
pub(crate) fn signature_gate_input(
    policy: &slipway_gates::signature::SignaturePolicy,
    keys: &[&dyn Verifier],
    verification: &slipway_attest::VerificationReport,
) -> (
    slipway_gates::signature::SignaturePolicy,
    Vec<VerifiedSignature>,
) {
    let mut policy = policy.clone();
    if policy.trusted_keys.is_empty() {
        policy.trusted_keys = keys.iter().map(|key| key.key_id()).collect();
    }
    let signatures = verification
        .signatures
        .iter()
        .map(|check| VerifiedSignature {
            key_id: check
                .key_id
                .clone()
                .unwrap_or_else(|| format!("layer #{}", check.layer)),
            result: if check.ok {
                Ok(())
            } else {
                Err(check.reason.clone())
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
}

fn rejected(reason: impl Into<String>) -> Stop {
    Stop {
        outcome: RunOutcome::Rejected,
        reason: reason.into(),
    }
}

fn failed(reason: impl Into<String>) -> Stop {
    Stop {
        outcome: RunOutcome::Failed,
        reason: reason.into(),
    }
}

/// An error and its sources on one line, hints gathered at the end, for events and reports.
fn chain(err: &dyn std::error::Error) -> String {
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

struct Ctx<'a> {
    spec: &'a ReleaseSpec,
    backends: &'a Backends,
    observer: &'a mut dyn Observer,
    mode: Mode,
    report: RunReport,
    lock_holder: Option<String>,
    stable_before: Option<DeploymentSpec>,
    canary_started: bool,
    /// Who started the release, when it differs from who runs this command (resume).
    spec_actor_override: Option<String>,
    /// The run that produced the candidate, for the model-link attestation.
    candidate_run: Option<String>,
    /// Preflight passed and the lock was taken: decisions may now be Kubernetes Events.
    preflight_passed: bool,
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

/// Records an approval of the paused release, bound to its digest and model version.
/// Refuses when nothing is paused, when the reason is empty, or when the approver started the
/// release themselves and the policy forbids self-approval.
pub async fn approve(
    spec: &ReleaseSpec,
    backends: &Backends,
    approver: &str,
    reason: &str,
) -> Result<ApprovalRecord, ApproveError> {
    if reason.trim().is_empty() {
        return Err(ApproveError::Refused(
            "an approval needs a reason (hint: `--reason \"canary dashboards reviewed\"`)"
                .to_owned(),
        ));
    }
    let history = backends
        .cluster
        .release_history(&spec.release)
        .await
        .map_err(|err| ApproveError::Backend(chain(&err)))?;
    let paused = paused_record(&history).map_err(ApproveError::NothingPaused)?;
    let approvers = &spec.policy.approvals.approvers;
    if !approvers.is_empty()
        && !approvers
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(approver))
    {
        return Err(ApproveError::Refused(format!(
            "{approver} is not among the approvers ({}) of policy.approvals.approvers",
            approvers.join(", ")
        )));
    }
    if spec.policy.approvals.forbid_self_approval && approver.eq_ignore_ascii_case(&paused.actor) {
        return Err(ApproveError::Refused(format!(
            "{approver} started revision {} and cannot approve it (policy.approvals.forbid_self_approval)",
            paused.revision
        )));
    }
    let record = ApprovalRecord {
        release: spec.release.clone(),
        approver: approver.to_owned(),
        at: backends.clock.now(),
        reason: reason.to_owned(),
        digest: paused.digest.clone(),
        model: paused.model.clone(),
    };
    backends
        .audit
        .append(record.at, Event::Approval(record.clone()))
        .await
        .map_err(|err| ApproveError::Backend(chain(&err)))?;
    Ok(record)
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
        backends,
        observer,
        mode,
        report: RunReport::new(&spec.release),
        lock_holder: None,
        stable_before: None,
        canary_started: false,
        spec_actor_override: None,
        candidate_run: None,
        preflight_passed: false,
    };
    let result = match action {
        Some(action) => match ctx.take_lock().await {
            Ok(()) => ctx.resume(action).await,
            Err(stop) => Err(stop),
        },
        None => ctx.stages().await,
    };
    let (outcome, reason) = match result {
        Ok((outcome, reason)) => (outcome, reason),
        Err(stop) => {
            if ctx.canary_started {
                ctx.abort_canary(&stop).await;
            }
            (stop.outcome, stop.reason)
        }
    };
    ctx.report.outcome = outcome;
    ctx.report.reason = reason;
    ctx.finish().await;
    ctx.report
}

impl Ctx<'_> {
    fn emit(&mut self, stage: &'static str, status: StageStatus, message: impl Into<String>) {
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
    async fn audit(&mut self, stage: &str, verdict: &str, detail: &str) -> Result<(), Stop> {
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
    async fn gate(&mut self, stage: &'static str, report: GateReport) -> Result<(), Stop> {
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

    async fn stages(&mut self) -> Result<(RunOutcome, String), Stop> {
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
        let started = format!(
            "revision {revision}: {candidate} at {} starting {}",
            image.pinned().unwrap_or_default(),
            self.spec.strategy
        );
        self.notify("started", &started).await;
        match self.spec.strategy {
            Strategy::Canary => {
                self.canary(&image).await?;
                if let Err(stop) = self.approval(&image, &candidate).await {
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

    /// Leaves the healthy canary running and records the release as paused at the approval gate.
    async fn pause(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(RunOutcome, String), Stop> {
        self.canary_started = false;
        let reason = format!(
            "canary {} healthy; waiting for {} approval(s) of {candidate} at {}",
            rollout::canary_name(&self.spec.release),
            self.spec.policy.approvals.required,
            image
                .digest()
                .map(|digest| digest.short())
                .unwrap_or_default()
        );
        self.record(image, candidate, revision, Outcome::Paused, &reason)
            .await?;
        self.emit("approval", StageStatus::Info, format!("paused: {reason}; run `slipway-deploy approve` then `slipway-deploy promote` (or `abort`)"));
        self.notify("paused", &reason).await;
        Ok((RunOutcome::Paused, reason))
    }

    /// Promotes or aborts the paused revision recorded last in the history.
    async fn resume(&mut self, action: Resume) -> Result<(RunOutcome, String), Stop> {
        let release = self.spec.release.clone();
        let history = self
            .backends
            .cluster
            .release_history(&release)
            .await
            .map_err(|err| failed(chain(&err)))?;
        let paused = paused_record(&history).map_err(failed)?;
        let revision = history.last().map_or(1, |record| record.revision + 1);
        self.report.revision = Some(revision);
        self.report.model = Some(paused.model.clone());
        self.report.digest = Some(paused.digest.clone());
        let image = paused.image.with_digest(paused.digest.clone());
        let pinned = image.pinned().unwrap_or_default();
        let canary = self
            .backends
            .cluster
            .deployment(&release.namespace, &rollout::canary_name(&release))
            .await
            .map_err(|err| failed(chain(&err)))?;
        let canary_ok = canary
            .as_ref()
            .is_some_and(|state| state.spec.image == pinned);
        self.emit(
            "resume",
            StageStatus::Info,
            format!(
                "revision {} of {release} paused at approval: {} at {}{}",
                paused.revision,
                paused.model,
                paused.digest.short(),
                if canary_ok {
                    "; its canary is running"
                } else {
                    "; its canary is gone"
                }
            ),
        );
        match action {
            Resume::Abort(reason) => {
                self.canary_started = true;
                Err(rejected(format!(
                    "aborted by {}: {reason}",
                    self.spec.actor
                )))
            }
            Resume::Promote => {
                if !canary_ok {
                    return Err(failed(format!(
                        "the canary of paused revision {} is not running {pinned} (hint: start a new release with `slipway-deploy run`)",
                        paused.revision
                    )));
                }
                // The gate judges self-approval against who started the release, not who
                // promotes. Too few approvals leave the release paused, canary running.
                let promoter = self.spec_actor_override.replace(paused.actor.clone());
                let gate = self.approval(&image, &paused.model).await;
                self.spec_actor_override = promoter;
                if let Err(stop) = gate {
                    self.report.revision = Some(paused.revision);
                    return Err(rejected(format!(
                        "{}; revision {} stays paused",
                        stop.reason, paused.revision
                    )));
                }
                self.canary_started = true;
                self.promote(&image, &paused.model, revision).await?;
                Ok((
                    RunOutcome::Promoted,
                    format!(
                        "{} serves from {pinned} as revision {revision}",
                        paused.model
                    ),
                ))
            }
        }
    }

    async fn preflight(&mut self) -> Result<(), Stop> {
        let release = &self.spec.release;
        self.emit(
            "preflight",
            StageStatus::Start,
            format!("checking release {release} before touching anything"),
        );
        let cluster = self.backends.cluster.clone();
        let stable = rollout::stable(cluster.as_ref(), release)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "preflight",
            StageStatus::Pass,
            format!(
                "stable Deployment {release} runs {} with {}/{} pods ready",
                stable.spec.image, stable.ready_replicas, stable.spec.replicas
            ),
        );
        let service = cluster
            .service_selector(&release.namespace, &self.spec.service)
            .await
            .map_err(|err| failed(chain(&err)))?;
        if service.is_none() {
            return Err(failed(format!(
                "Service `{}/{}` not found (hint: set `release.service` to the Service in front of the Deployment)",
                release.namespace, self.spec.service
            )));
        }
        self.emit(
            "preflight",
            StageStatus::Pass,
            format!("Service {}/{} found", release.namespace, self.spec.service),
        );
        if cluster
            .deployment(&release.namespace, &rollout::canary_name(release))
            .await
            .map_err(|err| failed(chain(&err)))?
            .is_some()
        {
            self.emit(
                "preflight",
                StageStatus::Info,
                "a canary from an earlier run exists; this run replaces it",
            );
        }
        self.stable_before = Some(stable.spec);
        // Secrets the release will need must exist before anything changes.
        if let Some(reload) = self.spec.reload.clone() {
            self.backends
                .cluster
                .read_secret(&release.namespace, &reload.secret_name, &reload.secret_key)
                .await
                .map_err(|err| {
                    failed(format!(
                        "the model server's admin token is missing: {}",
                        chain(&err)
                    ))
                })?;
            self.emit(
                "preflight",
                StageStatus::Pass,
                format!(
                    "Secret {}/{} has `{}`",
                    release.namespace, reload.secret_name, reload.secret_key
                ),
            );
        }
        let now = self.backends.clock.now();
        let windows = slipway_gates::window::evaluate(
            &self.spec.policy.windows,
            now,
            self.spec.window_override.as_ref(),
        );
        self.gate("deploy-window", windows).await?;
        if self.mode == Mode::Run {
            self.take_lock().await?;
        }
        Ok(())
    }

    /// Takes the release's lock (a Lease on a real cluster) for this run.
    async fn take_lock(&mut self) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let holder = format!("{}@{}", self.spec.actor, self.backends.clock.now());
        let ttl = self
            .spec
            .progress_deadline
            .saturating_mul(2)
            .max(Duration::from_secs(900));
        self.backends
            .cluster
            .acquire_lock(&release, &holder, ttl)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "preflight",
            StageStatus::Pass,
            format!("lock taken for {release} by {holder}"),
        );
        self.lock_holder = Some(holder);
        self.preflight_passed = true;
        Ok(())
    }

    async fn model_gate(&mut self) -> Result<ModelVersion, Stop> {
        let models = self.backends.models.clone();
        let info = models
            .resolve(&self.spec.model)
            .await
            .map_err(|err| failed(chain(&err)))?;
        let candidate = info.version.clone();
        self.candidate_run = info.run_id.clone();
        self.report.model = Some(candidate.clone());
        self.emit(
            "model-gate",
            StageStatus::Start,
            format!(
                "{} resolves to {candidate} (run {})",
                self.spec.model,
                info.run_id.as_deref().unwrap_or("unknown")
            ),
        );
        let metrics = run_metrics(models.as_ref(), info.run_id.as_deref()).await?;
        let serving_ref = ModelRef {
            name: candidate.name.clone(),
            selector: ModelSelector::Alias(self.spec.serving_alias.clone()),
        };
        let serving = match models.resolve(&serving_ref).await {
            Ok(serving) => {
                let serving_metrics =
                    run_metrics(models.as_ref(), serving.run_id.as_deref()).await?;
                Some(ServingModel {
                    version: serving.version,
                    metrics: serving_metrics,
                })
            }
            Err(slipway_mlflow::Error::NotFound { .. }) => None,
            Err(err) => return Err(failed(chain(&err))),
        };
        let evidence = ModelEvidence {
            candidate: candidate.clone(),
            status: if info.status == VersionStatus::Ready {
                "READY".to_owned()
            } else {
                info.status.as_str().to_owned()
            },
            metrics,
            serving,
        };
        self.gate(
            "model-gate",
            slipway_gates::model::evaluate(&self.spec.policy.model, &evidence),
        )
        .await?;
        Ok(candidate)
    }

    async fn resolve_digest(&mut self) -> Result<ImageRef, Stop> {
        let resolved = self
            .backends
            .registry
            .resolve(&self.spec.image)
            .await
            .map_err(|err| failed(chain(&err)))?;
        if let Some(index) = &resolved.index_digest {
            self.emit(
                "resolve-digest",
                StageStatus::Info,
                format!("{} is a multi-platform index {index}", self.spec.image),
            );
        }
        if let Some(asked) = self.spec.image.digest()
            && resolved.index_digest.as_ref() != Some(asked)
            && &resolved.digest != asked
        {
            return Err(failed(format!(
                "registry returned {} for {}",
                resolved.digest, self.spec.image
            )));
        }
        let pinned = self.spec.image.with_digest(resolved.digest.clone());
        self.report.digest = Some(resolved.digest);
        self.emit(
            "resolve-digest",
            StageStatus::Pass,
            format!(
                "{} pinned to {}",
                self.spec.image,
                pinned.pinned().unwrap_or_default()
            ),
        );
        Ok(pinned)
    }

    async fn scan_gate(&mut self, image: &ImageRef) -> Result<(), Stop> {
        let scan = self
            .backends
            .scanner
            .scan(image)
            .await
            .map_err(|err| failed(chain(&err)))?;
        let today = self
            .backends
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let verdict = slipway_gates::vuln::evaluate(
            &self.spec.policy.vulnerabilities,
            &scan,
            &self.spec.vuln_ignores,
            today,
        );
        let findings = match scan.findings.len() {
            1 => "1 finding".to_owned(),
            n => format!("{n} findings"),
        };
        let ignored = verdict.ignored().count();
        self.emit(
            "scan-gate",
            StageStatus::Info,
            format!("{findings}, {ignored} ignored: {}", verdict.counts_line()),
        );
        self.gate("scan-gate", verdict.gate_report()).await
    }

    async fn sign_and_verify(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
    ) -> Result<(), Stop> {
        match (&self.backends.signer, self.spec.sign, self.mode) {
            (Some(signer), true, Mode::Run) => {
                let key_id = slipway_attest::sign_image(
                    self.backends.registry.as_ref(),
                    signer.as_ref(),
                    image,
                )
                .await
                .map_err(|err| failed(chain(&err)))?;
                self.emit(
                    "sign",
                    StageStatus::Pass,
                    format!(
                        "signed {} with key {key_id} (appended to existing signatures)",
                        image.pinned().unwrap_or_default()
                    ),
                );
                self.audit("sign", "pass", &format!("signed with {key_id}"))
                    .await?;
                self.attest(signer.as_ref(), image, candidate).await?;
            }
            (Some(signer), true, Mode::Plan | Mode::Resume) => {
                self.emit(
                    "sign",
                    StageStatus::Info,
                    format!("would sign with key {}", signer.key_id()),
                );
                self.emit(
                    "verify",
                    StageStatus::Skip,
                    "would verify the signature made at `sign` against the trusted keys",
                );
                return Ok(());
            }
            (None, true, _) => {
                return Err(failed(
                    "signing is on (`signing.sign`) but no signing key is configured",
                ));
            }
            (_, false, _) => self.emit(
                "sign",
                StageStatus::Skip,
                "signing is off (`signing.sign = false`)",
            ),
        }
        let keys: Vec<&dyn Verifier> = self
            .backends
            .trusted_keys
            .iter()
            .map(AsRef::as_ref)
            .collect();
        let verification =
            slipway_attest::verify_image(self.backends.registry.as_ref(), &keys, image)
                .await
                .map_err(|err| failed(chain(&err)))?;
        let (policy, signatures) =
            signature_gate_input(&self.spec.policy.signatures, &keys, &verification);
        let provenance = self.verified_provenance(image, &keys).await?;
        let evidence = SignatureEvidence {
            signatures,
            provenance,
        };
        let mut report = slipway_gates::signature::evaluate(&policy, &evidence);
        report.extend(self.model_link_check(image, &keys, candidate).await?);
        self.gate("verify", report).await
    }

    /// Attaches the signed model link (which model this image serves) and, when the build is
    /// known, SLSA provenance, both appended under the image's `.att` tag.
    async fn attest(
        &mut self,
        signer: &dyn slipway_attest::Signer,
        image: &ImageRef,
        candidate: &ModelVersion,
    ) -> Result<(), Stop> {
        let registry = self.backends.registry.clone();
        let link = ModelLink {
            model_name: candidate.name.clone(),
            model_version: candidate.version.to_string(),
            run_id: self.candidate_run.clone().unwrap_or_default(),
        };
        slipway_attest::model_link::attach_model_link(registry.as_ref(), signer, image, &link)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "sign",
            StageStatus::Pass,
            format!(
                "attached the model link: {} (run {})",
                candidate,
                if link.run_id.is_empty() {
                    "unknown"
                } else {
                    &link.run_id
                }
            ),
        );
        match &self.spec.build {
            Some(build) => {
                slipway_attest::provenance::attach_provenance(
                    registry.as_ref(),
                    signer,
                    image,
                    build,
                )
                .await
                .map_err(|err| failed(chain(&err)))?;
                self.emit(
                    "sign",
                    StageStatus::Pass,
                    format!(
                        "attached SLSA provenance: built by {} from {}@{}",
                        build.builder_id, build.source_repository, build.source_commit
                    ),
                );
            }
            None => self.emit(
                "sign",
                StageStatus::Skip,
                "no build information (`[provenance]` or GitHub Actions): no provenance attached",
            ),
        }
        Ok(())
    }

    /// Reads and verifies the image's provenance (signature, subject, predicate type); the gate
    /// judges builder and source. `None` when there is none that verifies.
    async fn verified_provenance(
        &mut self,
        image: &ImageRef,
        keys: &[&dyn Verifier],
    ) -> Result<Option<ProvenanceSummary>, Stop> {
        let policy = slipway_attest::provenance::ProvenancePolicy {
            builder: slipway_attest::provenance::BuilderMatch::Prefix(String::new()),
            source_repository: None,
            source_ref: None,
        };
        let report = slipway_attest::provenance::verify_provenance(
            self.backends.registry.as_ref(),
            keys,
            image,
            &policy,
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        for check in report.attestations.iter().filter(|check| !check.ok) {
            self.emit(
                "verify",
                StageStatus::Info,
                format!(
                    "provenance #{} rejected: {}",
                    check.layer,
                    check.reasons.join("; ")
                ),
            );
        }
        Ok(report.verified().map(|summary| ProvenanceSummary {
            builder_id: summary.builder_id.clone(),
            source_repository: summary.source_repository.clone(),
            source_ref: summary.source_ref.clone(),
        }))
    }

    /// The image must not be signed as serving another model than the candidate.
    async fn model_link_check(
        &mut self,
        image: &ImageRef,
        keys: &[&dyn Verifier],
        candidate: &ModelVersion,
    ) -> Result<GateReport, Stop> {
        let report = slipway_attest::model_link::verify_model_link(
            self.backends.registry.as_ref(),
            keys,
            image,
            None,
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        let linked: Vec<String> = report
            .verified()
            .iter()
            .map(|link| format!("{}/{}", link.model_name, link.model_version))
            .collect();
        let mut gate = GateReport::default();
        let name = "image serves the candidate model";
        let expected = candidate.to_string();
        if linked.is_empty() {
            gate.push(
                "signatures",
                name,
                CheckStatus::Skip,
                "no signed model link on the image",
            );
        } else if let Some(other) = linked.iter().find(|link| **link != expected) {
            gate.push(
                "signatures",
                name,
                CheckStatus::Fail,
                format!("the image is signed as serving {other}, not {expected}"),
            );
        } else {
            gate.push(
                "signatures",
                name,
                CheckStatus::Pass,
                format!("signed model link: {expected}"),
            );
        }
        Ok(gate)
    }

    /// Blue-green: the candidate goes to the standby colour (a preview Service fronts it), is
    /// analysed on its own track, needs its approvals (no pause: the standby is removed when they
    /// are missing), then the Service switches. The old colour stays scaled for
    /// `scale_down_delay` so switching back is instant, then is scaled down.
    async fn blue_green(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        let mut config = BlueGreenConfig::new(self.spec.service.clone());
        config.deadline = self.spec.progress_deadline;
        self.emit(
            "blue-green",
            StageStatus::Start,
            format!("deploying {pinned} to the standby colour"),
        );
        let standby =
            bluegreen::deploy(cluster.as_ref(), clock.as_ref(), &release, &config, &pinned)
                .await
                .map_err(|err| match err {
                    slipway_k8s_rollout::Error::NotReady { .. } => {
                        rejected(format!("standby colour unhealthy: {}", chain(&err)))
                    }
                    other => failed(chain(&other)),
                });
        let standby = match standby {
            Ok(colour) => colour,
            Err(stop) => {
                self.remove_standby(&config).await;
                return Err(stop);
            }
        };
        self.emit(
            "blue-green",
            StageStatus::Pass,
            format!(
                "{} ready behind {}",
                bluegreen::colour_name(&release, standby),
                bluegreen::preview_name(&config.service)
            ),
        );
        let checked = match self.analysis_on(0, standby.as_str()).await {
            Ok(()) => self.approval(image, candidate).await,
            Err(stop) => Err(stop),
        };
        if let Err(stop) = checked {
            self.remove_standby(&config).await;
            return Err(stop);
        }
        bluegreen::switch(cluster.as_ref(), &release, &config, standby)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "blue-green",
            StageStatus::Pass,
            format!("Service {} now selects {standby}", config.service),
        );
        self.k8s_event(
            "Switched",
            &format!("revision {revision}: {candidate} on {standby}"),
        )
        .await;
        bluegreen::finish(cluster.as_ref(), clock.as_ref(), &release, &config)
            .await
            .map_err(|err| failed(chain(&err)))?;
        self.emit(
            "blue-green",
            StageStatus::Pass,
            format!("old colour scaled down after {:?}", config.scale_down_delay),
        );
        self.promoted(image, candidate, revision).await
    }

    /// Scales the standby colour down and removes the preview Service; the active colour and the
    /// Service's selector are untouched.
    async fn remove_standby(&mut self, config: &BlueGreenConfig) {
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        let mut now = config.clone();
        now.scale_down_delay = Duration::ZERO;
        match bluegreen::finish(cluster.as_ref(), clock.as_ref(), &self.spec.release, &now).await {
            Ok(()) => self.emit(
                "abort",
                StageStatus::Pass,
                "standby colour removed; the active colour still serves",
            ),
            Err(err) => self.emit(
                "abort",
                StageStatus::Fail,
                format!("could not remove the standby colour: {}", chain(&err)),
            ),
        }
    }

    /// Rolling: approvals first (nothing to look at before the change), then Kubernetes replaces
    /// stable's pods, then the whole release is analysed; a failed analysis rolls stable back.
    async fn rolling(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        self.approval(image, candidate).await?;
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        self.emit(
            "rolling",
            StageStatus::Start,
            format!("rolling stable {release} to {pinned}"),
        );
        let params = RollingParams::default();
        rolling::run(
            cluster.as_ref(),
            clock.as_ref(),
            &release,
            &pinned,
            &params,
            self.spec.progress_deadline,
        )
        .await
        .map_err(|err| match err {
            slipway_k8s_rollout::Error::NotReady { .. } => rejected(format!(
                "rolling update unhealthy, previous image restored: {}",
                chain(&err)
            )),
            other => failed(chain(&other)),
        })?;
        self.emit(
            "rolling",
            StageStatus::Pass,
            format!("stable {release} runs {pinned}"),
        );
        if let Err(stop) = self.analysis_on(0, "stable").await {
            if let Some(before) = self.stable_before.clone() {
                let restored = match cluster.apply_deployment(&before).await {
                    Ok(()) => {
                        rollout::wait_ready(
                            cluster.as_ref(),
                            clock.as_ref(),
                            &release.namespace,
                            &release.name,
                            self.spec.progress_deadline,
                        )
                        .await
                    }
                    Err(err) => Err(err),
                };
                match restored {
                    Ok(()) => self.emit(
                        "abort",
                        StageStatus::Pass,
                        format!("stable {release} restored to {}", before.image),
                    ),
                    Err(err) => self.emit(
                        "abort",
                        StageStatus::Fail,
                        format!("could not restore stable: {}", chain(&err)),
                    ),
                }
            }
            return Err(stop);
        }
        self.promoted(image, candidate, revision).await
    }

    async fn next_revision(&mut self) -> Result<u64, Stop> {
        let history = self
            .backends
            .cluster
            .release_history(&self.spec.release)
            .await
            .map_err(|err| failed(chain(&err)))?;
        Ok(history.last().map_or(1, |record| record.revision + 1))
    }

    async fn canary(&mut self, image: &ImageRef) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        let cluster = self.backends.cluster.clone();
        let clock = self.backends.clock.clone();
        for (idx, step) in self.spec.steps.iter().copied().enumerate() {
            self.canary_started = true;
            let traffic = &self.spec.traffic;
            let share = match traffic {
                TrafficRouting::ReplicaRatio => "of pods",
                TrafficRouting::NginxIngress { .. } => "of requests",
            };
            self.emit(
                "canary",
                StageStatus::Start,
                format!(
                    "step {}/{}: {step}% {share} on {}",
                    idx + 1,
                    self.spec.steps.len(),
                    rollout::canary_name(&release)
                ),
            );
            // With exact weights the canary pods stay out of the user's Service; the replicas
            // still follow the pod ratio (at least 1) so capacity follows the traffic.
            let replicas = rollout::set_canary(
                cluster.as_ref(),
                clock.as_ref(),
                &release,
                &pinned,
                step,
                self.spec.progress_deadline,
                traffic
                    .isolates_canary()
                    .then_some(self.spec.service.as_str()),
            )
            .await
            .map_err(|err| match err {
                slipway_k8s_rollout::Error::NotReady { .. } => {
                    rejected(format!("canary unhealthy: {}", chain(&err)))
                }
                other => failed(chain(&other)),
            })?;
            // The weight is set only once the canary is ready, so it never points at pods that
            // cannot serve.
            rollout::set_traffic_weight(
                cluster.as_ref(),
                &release,
                &self.spec.service,
                &self.spec.traffic,
                step,
            )
            .await
            .map_err(|err| failed(chain(&err)))?;
            let stable_replicas = self.stable_before.as_ref().map_or(0, |spec| spec.replicas);
            let message = match &self.spec.traffic {
                TrafficRouting::ReplicaRatio => {
                    let share = rollout::canary_share(stable_replicas, replicas);
                    format!(
                        "{replicas} canary pod(s) ready next to {stable_replicas} stable: {share:.0}% of pods"
                    )
                }
                TrafficRouting::NginxIngress { ingress } => format!(
                    "{replicas} canary pod(s) ready next to {stable_replicas} stable: Ingress {} sends exactly {step}% of the requests of {ingress} to Service {}",
                    rollout::canary_ingress_name(ingress),
                    rollout::canary_service_name(&self.spec.service)
                ),
            };
            self.emit("canary", StageStatus::Pass, message.clone());
            self.k8s_event("CanaryStep", &message).await;
            if !self.spec.pause.is_zero() {
                self.emit(
                    "canary",
                    StageStatus::Info,
                    format!("pausing {:?} before analysis", self.spec.pause),
                );
                clock.sleep(self.spec.pause).await;
            }
            self.analysis(idx).await?;
        }
        Ok(())
    }

    async fn analysis(&mut self, step_idx: usize) -> Result<(), Stop> {
        self.analysis_on(step_idx, "canary").await
    }

    /// Analyses the pods of `track` (the `{{track}}` of the queries).
    async fn analysis_on(&mut self, step_idx: usize, track: &str) -> Result<(), Stop> {
        let release = &self.spec.release;
        let vars = TemplateVars::new(release.name.clone(), release.namespace.clone(), track);
        let clock = self.backends.clock.clone();
        let metrics = self.backends.metrics.clone();
        let plan = &self.spec.analysis;
        let observer = &mut self.observer;
        let stages = &mut self.report.stages;
        let limits: std::collections::BTreeMap<&str, String> = plan
            .metrics
            .iter()
            .map(|check| {
                let bounds = [
                    check.min.map(|min| format!("min {min}")),
                    check.max.map(|max| format!("max {max}")),
                ];
                (
                    check.name.as_str(),
                    bounds.into_iter().flatten().collect::<Vec<_>>().join(", "),
                )
            })
            .collect();
        let mut on_measurement = |measurement: &slipway_analysis::Measurement| {
            let limit = limits
                .get(measurement.metric.as_str())
                .cloned()
                .unwrap_or_default();
            let message = match &measurement.outcome {
                slipway_analysis::Outcome::Value(value) => {
                    format!("{} = {value:.4} ({limit})", measurement.metric)
                }
                slipway_analysis::Outcome::NoData => {
                    format!("{}: no data ({limit})", measurement.metric)
                }
                slipway_analysis::Outcome::Error(err) => {
                    format!(
                        "{}: measurement error: {}",
                        measurement.metric,
                        err.split("\n\nhint:").next().unwrap_or(err)
                    )
                }
            };
            let event = StageEvent {
                stage: "analysis",
                status: StageStatus::Info,
                at: measurement.at,
                message,
            };
            observer.event(&event);
            stages.push(event);
        };
        // `run` also runs the plan's smoke tests and endpoint checks against the judged pods.
        let run = slipway_analysis::run(
            plan,
            metrics.as_ref(),
            clock.as_ref(),
            &vars,
            &mut on_measurement,
        )
        .await
        .map_err(|err| failed(chain(&err)))?;
        let decision = run.decision();
        let reasons = run.verdict.reasons.join("; ");
        self.report.analysis.push(run);
        let verdict = match decision {
            Decision::Pass => "pass",
            Decision::Fail => "fail",
            Decision::Inconclusive => "inconclusive",
        };
        self.audit(
            "analysis",
            verdict,
            &format!("step {}: {reasons}", step_idx + 1),
        )
        .await?;
        match decision {
            Decision::Pass => {
                self.emit(
                    "analysis",
                    StageStatus::Pass,
                    format!("step {} healthy: {reasons}", step_idx + 1),
                );
                Ok(())
            }
            Decision::Fail => {
                self.emit(
                    "analysis",
                    StageStatus::Fail,
                    format!("step {} unhealthy: {reasons}", step_idx + 1),
                );
                Err(rejected(format!("canary analysis failed: {reasons}")))
            }
            Decision::Inconclusive => {
                self.emit(
                    "analysis",
                    StageStatus::Fail,
                    format!("step {} inconclusive: {reasons}", step_idx + 1),
                );
                Err(rejected(format!(
                    "canary analysis inconclusive, a person must decide: {reasons}"
                )))
            }
        }
    }

    async fn approval(&mut self, image: &ImageRef, candidate: &ModelVersion) -> Result<(), Stop> {
        let digest = image
            .digest()
            .cloned()
            .ok_or_else(|| failed("image lost its digest"))?;
        if let Some(given) = self.spec.approval.clone() {
            let record = ApprovalRecord {
                release: self.spec.release.clone(),
                approver: given.approver.clone(),
                at: self.backends.clock.now(),
                reason: given.reason.clone(),
                digest: digest.clone(),
                model: candidate.clone(),
            };
            self.backends
                .audit
                .append(record.at, Event::Approval(record))
                .await
                .map_err(|err| failed(chain(&err)))?;
            self.emit(
                "approval",
                StageStatus::Info,
                format!("approval by {} recorded: {}", given.approver, given.reason),
            );
        }
        let entries = self
            .backends
            .audit
            .entries()
            .await
            .map_err(|err| failed(chain(&err)))?;
        let approvals = entries
            .into_iter()
            .filter_map(|entry| match entry.event {
                Event::Approval(approval) if approval.release == self.spec.release => {
                    Some(Approval {
                        approver: approval.approver,
                        at: approval.at,
                        reason: approval.reason,
                        digest: approval.digest,
                        model: approval.model,
                    })
                }
                _ => None,
            })
            .collect();
        let evidence = ApprovalEvidence {
            actor: self
                .spec_actor_override
                .clone()
                .unwrap_or_else(|| self.spec.actor.clone()),
            digest,
            model: candidate.clone(),
            approvals,
        };
        self.gate(
            "approval",
            slipway_gates::approval::evaluate(&self.spec.policy.approvals, &evidence),
        )
        .await
    }

    async fn promote(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let pinned = image.pinned().unwrap_or_default();
        self.emit(
            "promote",
            StageStatus::Start,
            format!("setting stable {release} to {pinned}"),
        );
        let cluster = self.backends.cluster.clone();
        if let Err(err) = rollout::promote_routed(
            cluster.as_ref(),
            self.backends.clock.as_ref(),
            &release,
            (&self.spec.service, &self.spec.traffic),
            &pinned,
            self.spec.progress_deadline,
        )
        .await
        {
            // Put stable back the way it was before the canary deletion in abort_canary.
            if let Some(before) = self.stable_before.clone()
                && let Err(restore) = cluster.apply_deployment(&before).await
            {
                self.emit(
                    "promote",
                    StageStatus::Fail,
                    format!("could not restore stable: {}", chain(&restore)),
                );
            }
            return Err(failed(format!(
                "promotion failed, stable restored to its previous image: {}",
                chain(&err)
            )));
        }
        self.canary_started = false;
        self.emit(
            "promote",
            StageStatus::Pass,
            format!("stable {release} runs {pinned}; canary removed"),
        );
        self.k8s_event(
            "Promoted",
            &format!("revision {revision}: {candidate} at {pinned}"),
        )
        .await;
        self.promoted(image, candidate, revision).await
    }

    /// After the cluster serves the candidate, whatever the strategy: move the serving alias,
    /// tag the model version and the image, record, reload the model server.
    async fn promoted(
        &mut self,
        image: &ImageRef,
        candidate: &ModelVersion,
        revision: u64,
    ) -> Result<(), Stop> {
        let release = self.spec.release.clone();
        let models = self.backends.models.clone();
        if let Err(err) = models.set_alias(candidate, &self.spec.serving_alias).await {
            return Err(failed(format!(
                "promoted in the cluster, but moving alias `{}` failed: {}",
                self.spec.serving_alias,
                chain(&err)
            )));
        }
        let tag_value = format!("{release} revision {revision}");
        if let Err(err) = models
            .set_version_tag(candidate, "slipway.release", &tag_value)
            .await
        {
            self.emit(
                "promote",
                StageStatus::Info,
                format!("could not tag the model version: {}", chain(&err)),
            );
        }
        self.emit(
            "promote",
            StageStatus::Pass,
            format!(
                "alias `{}` now points at {candidate}",
                self.spec.serving_alias
            ),
        );
        match self
            .backends
            .registry
            .tag(image, &format!("release-{revision}"))
            .await
        {
            Ok(()) => self.emit(
                "promote",
                StageStatus::Pass,
                format!("image tagged release-{revision}"),
            ),
            Err(err) => self.emit(
                "promote",
                StageStatus::Info,
                format!("could not tag the image: {}", chain(&err)),
            ),
        }
        self.record(
            image,
            candidate,
            revision,
            Outcome::Promoted,
            "promoted after analysis and approval",
        )
        .await?;
        self.reload(candidate).await
    }

    /// Tells the model server to load the promoted version, with the admin token from its Secret.
    /// A failure is recorded as a failed release: the cluster runs the new image, but the server
    /// may still serve the old model, and somebody has to look.
    async fn reload(&mut self, candidate: &ModelVersion) -> Result<(), Stop> {
        let Some(reload) = self.spec.reload.clone() else {
            self.emit(
                "reload",
                StageStatus::Skip,
                "no reload endpoint configured (`[server] reload_url`)",
            );
            return Ok(());
        };
        let namespace = self.spec.release.namespace.clone();
        let token = self
            .backends
            .cluster
            .read_secret(&namespace, &reload.secret_name, &reload.secret_key)
            .await
            .map_err(|err| {
                failed(format!(
                    "promoted, but the admin token could not be read: {}",
                    chain(&err)
                ))
            })?;
        match crate::reload::reload(&reload, &token, candidate).await {
            Ok(()) => {
                self.emit(
                    "reload",
                    StageStatus::Pass,
                    format!("model server reloaded {candidate}"),
                );
                Ok(())
            }
            Err(err) => {
                let _ = self.audit("reload", "fail", &err).await;
                Err(failed(format!(
                    "promoted, but reloading the model server failed: {err}"
                )))
            }
        }
    }

    async fn record(
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
        let record = ReleaseRecord {
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

    async fn k8s_event(&mut self, reason: &str, message: &str) {
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

    /// Deletes the canary after a stop; stable is not touched. Records the revision as aborted
    /// or failed.
    async fn abort_canary(&mut self, stop: &Stop) {
        let release = self.spec.release.clone();
        let routing = (self.spec.service.as_str(), &self.spec.traffic);
        match rollout::abort_routed(self.backends.cluster.as_ref(), &release, routing).await {
            Ok(()) => self.emit(
                "abort",
                StageStatus::Pass,
                match &self.spec.traffic {
                    TrafficRouting::ReplicaRatio => {
                        format!("canary removed; stable {release} untouched")
                    }
                    TrafficRouting::NginxIngress { ingress } => format!(
                        "canary Ingress {}, Service {} and canary removed; stable {release} untouched",
                        rollout::canary_ingress_name(ingress),
                        rollout::canary_service_name(&self.spec.service)
                    ),
                },
            ),
            Err(err) => self.emit(
                "abort",
                StageStatus::Fail,
                format!(
                    "could not remove the canary: {} (hint: delete Deployment {}/{} by hand)",
                    chain(&err),
                    release.namespace,
                    rollout::canary_name(&release)
                ),
            ),
        }
        self.k8s_event("Aborted", &stop.reason).await;
        let (Some(revision), Some(model), Some(digest)) = (
            self.report.revision,
            self.report.model.clone(),
            self.report.digest.clone(),
        ) else {
            return;
        };
        let outcome = if stop.outcome == RunOutcome::Failed {
            Outcome::Failed
        } else {
            Outcome::Aborted
        };
        let image = self.spec.image.with_digest(digest);
        if let Err(err) = self
            .record(&image, &model, revision, outcome, &stop.reason.clone())
            .await
        {
            self.emit(
                "record",
                StageStatus::Fail,
                format!("could not record the abort: {}", err.reason),
            );
        }
    }

    /// Sends a notification; a failure is an event and an audit entry, never a stop.
    async fn notify(&mut self, event: &str, summary: &str) {
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

    async fn finish(&mut self) {
        if let Some(holder) = self.lock_holder.take()
            && let Err(err) = self
                .backends
                .cluster
                .release_lock(&self.spec.release, &holder)
                .await
        {
            self.emit(
                "finish",
                StageStatus::Info,
                format!("could not release the lock: {}", chain(&err)),
            );
        }
        if self.mode == Mode::Plan {
            return;
        }
        // Every run's end is on the trail, including stops before anything changed (a held
        // lock, an unreachable registry), so "why did this release not happen" has an answer.
        let verdict = match self.report.outcome {
            RunOutcome::Promoted => "promoted",
            RunOutcome::Paused => "paused",
            RunOutcome::Rejected => "rejected",
            RunOutcome::Failed => "failed",
            RunOutcome::WouldProceed => "planned",
        };
        let reason = self.report.reason.clone();
        if let Err(stop) = self.audit("run", verdict, &reason).await {
            self.emit("record", StageStatus::Fail, stop.reason);
        }
        let outcome = match self.report.outcome {
            RunOutcome::Promoted => "promoted",
            RunOutcome::Rejected => "rejected",
            RunOutcome::Failed => "failed",
            RunOutcome::WouldProceed => "planned",
            RunOutcome::Paused => return,
        };
        self.notify(outcome, &self.report.reason.clone()).await;
    }
}
