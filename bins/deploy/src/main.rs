//! `slipway-deploy`: plan and run a release, from model registry to promotion.
//!
//! Thin by design: it parses flags, loads configuration through `slipway-cli`, builds the
//! backends the configuration names, and hands over to `slipway-pipeline`. Stage decisions go
//! to stderr as they happen; the result (text summary or `--output json` report) goes to stdout.

mod analyze;
mod check_scan;
mod demo;
mod meta;
mod story;
mod supply_chain;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use slipway_audit_log::{AuditStore, FileAuditStore, MemoryAuditStore};
use slipway_cli::ReleaseArg;
use slipway_cli::backends::Built;
use slipway_cli::config::{self, Settings};
use slipway_cli::demo::DemoArgs;
use slipway_cli::release::release_spec;
use slipway_cli::{ExitStatus, Failure, GlobalArgs};
use slipway_demo::scenario::SCENARIOS;
use slipway_gates::window::WindowOverride;
use slipway_pipeline::{
    ApprovalGiven, ApproveError, GivenApproval, ReleaseSpec, Resume, RunReport,
};

/// Plan and run ML model releases on Kubernetes: gates, signing, canary analysis, approval,
/// promotion, all recorded.
#[derive(Debug, Parser)]
#[command(
    name = "slipway-deploy",
    version,
    about,
    after_help = "Examples:\n  slipway-deploy plan                                   # what would happen; changes nothing\n  slipway-deploy run --output json > report.json         # release with the backends of slipway.toml\n  slipway-deploy run --demo bad-canary                   # on the embedded demo world: aborts (exit 1)\n  slipway-deploy run --demo unapproved --state demo/     # pauses; the world stays in demo/ for the next command\n  slipway-deploy approve --demo --state demo/ --as maria --reason \"dashboards reviewed\"\n  slipway-deploy approve --key approver.key --reason \"dashboards reviewed\"   # a signed approval\n  slipway-deploy approve                                  # in a GitHub environment: its reviews\n  slipway-deploy promote --demo --state demo/\n  slipway-deploy status                                  # where the release stands\n  slipway-deploy check-scan --report trivy.json --image ghcr.io/acme/iris@sha256:...\n  slipway-deploy check-model iris@candidate --min accuracy=0.9\n  slipway-deploy sign --key cosign.key ghcr.io/acme/iris:1.5.0        # the build job\n  slipway-deploy attest --key build.key --type slsaprovenance ghcr.io/acme/iris:1.5.0\n\nWithout --demo, every backend must be configured in [backend] (or listed in backend.simulated).\nExit codes: 0 promoted (or paused for approval; for abort: removed), 1 a gate, the analysis or a person said no, 2 error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what `run` would do and what every gate says now. Changes nothing.
    Plan(ReleaseArgs),
    /// Release: preflight, gates, sign, verify, canary with analysis, approval, promote, record.
    Run(ReleaseArgs),
    /// Record an approval of the release paused at the approval gate, bound to its digest and
    /// model version (exit 1 when the policy refuses the approver).
    Approve(ApproveArgs),
    /// Promote the paused release once its approvals satisfy the policy.
    Promote(PromoteArgs),
    /// Abort the paused release: delete its canary, stable untouched, reason recorded (exit 0
    /// when it was removed, 1 when it cannot be: stable already serves it).
    Abort(AbortArgs),
    /// Break the lock of a command that died holding it (a killed runner), named exactly as
    /// `status` shows it, so the next `abort` or `run` need not wait for the lease to expire;
    /// refused while the holder still renews it, unless `--force` (exit 1), recorded on the trail.
    #[command(
        after_help = "Examples:\n  slipway-deploy status                       # lock: held by ci-bot@2026-12-05T09:14:02Z until …\n  slipway-deploy unlock 'ci-bot@2026-12-05T09:14:02Z' --reason \"runner lost in job 4711\"\n  slipway-deploy abort --reason \"runner lost in job 4711\"   # then settle the release"
    )]
    Unlock(UnlockArgs),
    /// Where the release stands: state, current step and weight, analysis so far, approvals,
    /// lock holder (exit 0 promoted or healthy, 1 aborted or degraded, 3 paused or in progress).
    Status(meta::StatusArgs),
    /// Every revision the cluster keeps: digest, model, strategy, outcome, actor, time, reason.
    History(meta::HistoryArgs),
    /// Print the shell completion script for bash, zsh, fish or PowerShell.
    Completions(slipway_cli::meta::CompletionsArgs),
    /// Print the JSON Schema of a printed document or of `slipway.toml`.
    Schema(meta::SchemaArgs),
    /// Write the man pages into DIR (`cargo xtask man` runs it).
    #[command(hide = true)]
    Man(slipway_cli::meta::ManArgs),
    /// Judge a Trivy report for the image being deployed (exit 0 pass, 1 fail, 2 error).
    CheckScan(check_scan::CheckScanArgs),
    /// Judge one model version with the release's model gate (exit 0 pass, 1 fail, 2 error).
    CheckModel(supply_chain::CheckModelArgs),
    /// Sign an image with a cosign key, appended under its `.sig` tag (the build job's step).
    Sign(supply_chain::SignArgs),
    /// Attach a signed in-toto attestation (SLSA provenance, vuln, custom) under its `.att` tag.
    Attest(supply_chain::AttestArgs),
    /// Tell the whole demo story in one in-memory world (`cargo xtask demo` runs it).
    #[command(hide = true)]
    Demo(demo::DemoArgs),
    /// Judge a canary from real metrics without deploying (exit 0 pass, 1 fail, 3 inconclusive, 2 error).
    Analyze(analyze::AnalyzeArgs),
}

/// Flags of `plan` and `run`. Each one overrides the config key named in its help.
#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(flatten)]
    release: ReleaseArg,
    /// Model: `name@alias`, `name/version` or `name/Stage` [model.ref].
    #[arg(long)]
    model: Option<String>,
    /// Image by tag or digest [image.ref].
    #[arg(long)]
    image: Option<String>,
    /// Rollout strategy [rollout.strategy].
    #[arg(long, value_parser = ["canary", "blue-green", "rolling"])]
    strategy: Option<String>,
    #[command(flatten)]
    demo: DemoArgs,
    /// List the embedded world's scenarios (for `--demo SCENARIO`) and exit.
    #[arg(long)]
    list_scenarios: bool,
    /// Record an approval by this person for this run's digest and model version (only with
    /// `--demo`: outside it an approver's identity comes from GitHub or a key, never a flag).
    #[arg(long, value_name = "NAME", requires = "approve_reason")]
    approve_as: Option<String>,
    /// Why the approver approves (required with `--approve-as`).
    #[arg(long, value_name = "TEXT")]
    approve_reason: Option<String>,
    /// When the release pauses for approval, ask on the terminal who approves and why, then
    /// promote (or abort on an empty answer).
    #[arg(long)]
    interactive: bool,
    /// Release outside the deploy windows; needs a reason, which is recorded.
    #[arg(long, value_name = "REASON")]
    override_window: Option<String>,
}

/// Flags of `approve`. Who approves comes from one of two real sources: the reviews of the
/// run's GitHub environment (inside GitHub Actions), or a statement signed with `--key`.
#[derive(Debug, Args)]
struct ApproveArgs {
    #[command(flatten)]
    release: ReleaseArgs,
    /// Who approves: only with `--demo` (outside it, the identity comes from GitHub or a key).
    #[arg(long = "as", value_name = "NAME", conflicts_with = "key")]
    approver: Option<String>,
    /// Sign the approval with this approver key (an encrypted `cosign.key`, password from
    /// `COSIGN_PASSWORD`); `[policy.approvals] keys` names whose key it is.
    #[arg(long, value_name = "PATH")]
    key: Option<PathBuf>,
    /// How long a signed approval counts (default: `policy.approvals.valid_for`): `4h`, `2d`.
    #[arg(long, value_name = "DURATION", requires = "key")]
    expires_in: Option<String>,
    /// The GitHub repository whose run's reviews approve (default: `GITHUB_REPOSITORY`).
    #[arg(long, value_name = "OWNER/REPO")]
    github_repository: Option<String>,
    /// The GitHub Actions run whose reviews approve (default: `GITHUB_RUN_ID`).
    #[arg(long, value_name = "ID")]
    github_run_id: Option<String>,
    /// Why: recorded with the approval (with `--as` and `--key`; a GitHub review brings its
    /// reviewer's comment).
    #[arg(long)]
    reason: Option<String>,
}

/// Flags of `promote`.
#[derive(Debug, Args)]
struct PromoteArgs {
    #[command(flatten)]
    release: ReleaseArgs,
}

/// Flags of `abort`.
#[derive(Debug, Args)]
struct AbortArgs {
    #[command(flatten)]
    release: ReleaseArgs,
    /// Why: recorded with the abort.
    #[arg(long)]
    reason: String,
}

/// Flags of `unlock`.
#[derive(Debug, Args)]
struct UnlockArgs {
    /// The holder of the lock, exactly as `status` or the "locked by" message names it.
    #[arg(value_name = "HOLDER")]
    holder: String,
    /// Why: recorded on the trail with who broke the lock.
    #[arg(long)]
    reason: String,
    /// Break it even though its holder renewed it within a renewal period (it may be alive:
    /// only when you know its job is gone).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    release: ReleaseArgs,
}

impl ReleaseArgs {
    fn overrides(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut overrides = Vec::new();
        let mut set = |key: &'static str, value: &Option<String>| {
            if let Some(value) = value {
                overrides.push((key, serde_json::Value::String(value.clone())));
            }
        };
        set("model.ref", &self.model);
        set("image.ref", &self.image);
        set("rollout.strategy", &self.strategy);
        overrides
    }

    /// The shared flags, with a positional RELEASE as `--release`.
    fn global(&self) -> GlobalArgs {
        self.global.with_release(&self.release)
    }
}

impl Command {
    /// The shared flags of the command, for logging (`None`: it has none).
    fn global(&self) -> Option<GlobalArgs> {
        match self {
            Command::Plan(args) | Command::Run(args) => Some(args.global()),
            Command::Approve(args) => Some(args.release.global()),
            Command::Promote(args) => Some(args.release.global()),
            Command::Abort(args) => Some(args.release.global()),
            Command::Unlock(args) => Some(args.release.global()),
            Command::Status(args) => Some(args.release.global()),
            Command::History(args) => Some(args.release.global()),
            Command::Schema(args) => Some(args.global.clone()),
            Command::CheckScan(args) => Some(args.global.clone()),
            Command::Analyze(args) => Some(args.global.clone()),
            Command::Demo(args) => Some(args.global.clone()),
            Command::CheckModel(args) => Some(args.global.clone()),
            Command::Sign(args) => Some(args.global.clone()),
            Command::Attest(args) => Some(args.global.clone()),
            Command::Completions(_) | Command::Man(_) => None,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli: Cli = slipway_cli::meta::parse();
    if let Some(global) = cli.command.global() {
        slipway_cli::logging::init(&global);
    }
    let result = match cli.command {
        Command::Plan(args) => release(&args, Action::Plan).await,
        Command::Run(args) => release(&args, Action::Run).await,
        Command::Approve(args) => approve(&args).await,
        Command::Promote(args) => release(&args.release, Action::Resume(Resume::Promote)).await,
        Command::Abort(args) => {
            release(
                &args.release,
                Action::Resume(Resume::Abort(args.reason.clone())),
            )
            .await
        }
        Command::Unlock(args) => unlock(&args).await,
        Command::Status(args) => meta::status(&args).await,
        Command::History(args) => meta::history(&args).await,
        Command::Completions(args) => {
            slipway_cli::meta::completions::<Cli>(args.shell);
            Ok(ExitStatus::Success)
        }
        Command::Schema(args) => meta::schema(&args),
        Command::Man(args) => meta::man::<Cli>(&args),
        Command::Analyze(args) => analyze::run(&args).await,
        Command::Demo(args) => demo::run(&args).await,
        Command::CheckModel(args) => supply_chain::check_model(&args).await,
        Command::Sign(args) => supply_chain::sign(&args).await,
        Command::Attest(args) => supply_chain::attest(&args).await,
        Command::CheckScan(args) => check_scan::run(&args).map(|passed| {
            if passed {
                ExitStatus::Success
            } else {
                ExitStatus::No
            }
        }),
    };
    match result {
        Ok(status) => status.into(),
        Err(err) => Failure::report(&err),
    }
}

enum Action {
    Plan,
    Run,
    Resume(Resume),
}

/// Configuration, the validated spec and the backends, shared by every release command.
pub(crate) struct Prepared {
    pub(crate) spec: ReleaseSpec,
    pub(crate) built: Built,
}

/// `None` when the command only printed something (`--list-scenarios`, `--print-config`).
#[allow(
    clippy::print_stdout,
    reason = "listing scenarios and the config is data"
)]
pub(crate) async fn prepare(args: &ReleaseArgs) -> anyhow::Result<Option<Prepared>> {
    if args.list_scenarios {
        for (name, what, code) in SCENARIOS {
            println!("{name:<18} exit {code}  {what}");
        }
        return Ok(None);
    }
    let global = args.global();
    let settings: Settings = config::load(&global, &args.overrides())?;
    if global.print_config {
        print!("{}", config::render(&settings)?);
        return Ok(None);
    }
    let demo = args.demo.demo.is_some();
    if args.approve_as.is_some() {
        slipway_cli::approvals::refuse_named_outside_demo("--approve-as", demo)?;
    }
    if args.interactive {
        // The terminal's answer is a name typed in, which is no identity outside the demo.
        slipway_cli::approvals::refuse_named_outside_demo("--interactive", demo)?;
    }
    let approval = match (&args.approve_as, &args.approve_reason) {
        (Some(approver), Some(reason)) => Some(GivenApproval {
            approver: approver.clone(),
            reason: reason.clone(),
        }),
        _ => None,
    };
    let window_override = args.override_window.as_ref().map(|reason| WindowOverride {
        by: String::new(),
        reason: reason.clone(),
    });
    let mut spec = release_spec(&settings, approval, window_override)?;
    if let Some(window_override) = &mut spec.window_override {
        window_override.by = spec.actor.clone();
    }
    let audit: Arc<dyn AuditStore> = match &settings.audit.path {
        Some(path) => Arc::new(FileAuditStore::new(path)),
        None => Arc::new(MemoryAuditStore::new()),
    };
    let env = |name: &str| std::env::var(name).ok();
    let built =
        slipway_cli::backends::build(&settings, &global, &args.demo, &spec, audit, &env).await?;
    Ok(Some(Prepared { spec, built }))
}

#[allow(
    clippy::print_stdout,
    reason = "a binary: data on stdout, the story on stderr"
)]
async fn release(args: &ReleaseArgs, action: Action) -> anyhow::Result<ExitStatus> {
    let Some(Prepared { spec, built, .. }) = prepare(args).await? else {
        return Ok(ExitStatus::Success);
    };
    slipway_cli::signals::install(built.backends.interrupt.clone());
    let mut story = story::Story::new(&spec);
    story.before(&built).await;
    let mut observer =
        |event: &slipway_pipeline::StageEvent| slipway_cli::story::print_event(event);
    let mut report = match action {
        Action::Run if args.interactive => {
            let report = slipway_pipeline::run(&spec, &built.backends, &mut observer).await;
            ask_approval(&spec, &built, report, &mut observer).await?
        }
        Action::Run => slipway_pipeline::run(&spec, &built.backends, &mut observer).await,
        Action::Plan => slipway_pipeline::plan(&spec, &built.backends, &mut observer).await,
        Action::Resume(action) => {
            slipway_pipeline::resume(&spec, &built.backends, &mut observer, action).await
        }
    };
    slipway_cli::story::finish();
    report.backends = built.systems.clone();
    story.after(&built).await;
    slipway_cli::output::print(args.global.output, &report, || summary(&report))?;
    slipway_cli::github::publish_from_env(&report)?;
    Ok(ExitStatus::from(&report))
}

/// `unlock`: breaks a dead holder's lock (see `slipway_pipeline::lock::unlock`).
async fn unlock(args: &UnlockArgs) -> anyhow::Result<ExitStatus> {
    if args.reason.trim().is_empty() {
        return Err(slipway_cli::UserError {
            message: "`--reason` is empty\n\nhint: say why the holder is gone, e.g. `--reason \"runner lost in job 4711\"`".to_owned(),
        }
        .into());
    }
    let Some(Prepared { spec, built, .. }) = prepare(&args.release).await? else {
        return Ok(ExitStatus::Success);
    };
    match slipway_pipeline::lock::unlock(
        &spec,
        &built.backends,
        &args.holder,
        &args.reason,
        args.force,
    )
    .await
    {
        Ok(unlocked) => {
            slipway_cli::output::print(args.release.global.output, &unlocked, || match &unlocked
                .holder
            {
                Some(holder) => format!(
                    "unlocked: {}\nholder: {holder}\nlast renewed: {}\nrecorded: lock broken by {}: {}\n",
                    unlocked.release,
                    unlocked.renewed.as_deref().unwrap_or("unknown"),
                    spec.actor,
                    args.reason
                ),
                None => format!("not locked: {}\n", unlocked.release),
            })?;
            Ok(ExitStatus::Success)
        }
        Err(
            err @ (slipway_pipeline::lock::UnlockError::OtherHolder { .. }
            | slipway_pipeline::lock::UnlockError::Fresh { .. }
            | slipway_pipeline::lock::UnlockError::Unknown { .. }),
        ) => {
            slipway_cli::story::print_refusal(&err.to_string());
            Ok(ExitStatus::No)
        }
        Err(err) => Err(anyhow::anyhow!(err)),
    }
}

/// `run --interactive`: when the release pauses for approval, ask on the terminal who approves
/// and why, record it (the same checks as `approve`: not the person who started it), and promote;
/// an empty answer aborts.
#[allow(
    clippy::print_stderr,
    reason = "questions for the person at the terminal"
)]
async fn ask_approval(
    spec: &ReleaseSpec,
    built: &Built,
    report: RunReport,
    observer: &mut dyn slipway_pipeline::Observer,
) -> anyhow::Result<RunReport> {
    if report.outcome != slipway_pipeline::RunOutcome::Paused {
        return Ok(report);
    }
    slipway_cli::story::finish();
    let ask = |question: &str| -> anyhow::Result<String> {
        eprint!("{question}");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .context("reading the answer from the terminal")?;
        Ok(answer.trim().to_owned())
    };
    eprintln!("\n{}", report.reason);
    let approver = ask("approved by (empty to abort): ")?;
    if approver.is_empty() {
        let reason = "declined at the terminal".to_owned();
        let mut report =
            slipway_pipeline::resume(spec, &built.backends, observer, Resume::Abort(reason)).await;
        // A person said no at the gate: the run is rejected (exit 1), not an abort on request.
        if report.outcome == slipway_pipeline::RunOutcome::Aborted {
            report.outcome = slipway_pipeline::RunOutcome::Rejected;
        }
        return Ok(report);
    }
    let reason = ask("why: ")?;
    match slipway_pipeline::approve(spec, &built.backends, &approver, &reason).await {
        Ok(_) => {
            Ok(slipway_pipeline::resume(spec, &built.backends, observer, Resume::Promote).await)
        }
        Err(ApproveError::Refused(message)) => {
            slipway_cli::story::print_refusal(&message);
            Ok(report)
        }
        Err(err) => Err(anyhow::anyhow!(err)),
    }
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the approval record is data; where it runs is the story"
)]
async fn approve(args: &ApproveArgs) -> anyhow::Result<ExitStatus> {
    let demo = args.release.demo.demo.is_some();
    if args.approver.is_some() {
        // Before anything is built or contacted.
        slipway_cli::approvals::refuse_named_outside_demo("--as", demo)?;
    }
    let Some(Prepared {
        spec, mut built, ..
    }) = prepare(&args.release).await?
    else {
        return Ok(ExitStatus::Success);
    };
    eprintln!("slipway: approving {} {}", spec.release, built.banner());
    let flags = slipway_cli::approvals::ApproveFlags {
        named: args.approver.clone(),
        key: args.key.clone(),
        expires_in: args.expires_in.clone(),
        github_repository: args.github_repository.clone(),
        github_run_id: args.github_run_id.clone(),
        reason: args.reason.clone(),
    };
    let env = |name: &str| std::env::var(name).ok();
    let given = slipway_cli::approvals::given(&flags, demo, &spec.actor, &env).await?;
    if let ApprovalGiven::Signed { key, .. } = &given {
        let settings = config::load(&args.release.global, &args.release.overrides())?;
        slipway_cli::backends::sign_trail_with(&settings, &spec, &mut built, key.clone());
    }
    match slipway_pipeline::approve_with(&spec, &built.backends, given).await {
        Ok(records) => {
            let document = meta::ApprovedDocument {
                approvals: &records,
            };
            slipway_cli::output::print(args.release.global.output, &document, || {
                records
                    .iter()
                    .map(|record| {
                        format!(
                            "approved: {} by {} for {} at {}\nrevision: {}\nreason: {}\n",
                            record.release,
                            record.approver,
                            record.model,
                            record.digest,
                            record.revision.unwrap_or_default(),
                            record.reason
                        )
                    })
                    .collect()
            })?;
            Ok(ExitStatus::Success)
        }
        Err(ApproveError::Refused(message)) => {
            slipway_cli::story::print_refusal(&message);
            Ok(ExitStatus::No)
        }
        Err(err @ (ApproveError::NothingPaused(_) | ApproveError::Backend(_))) => {
            Err(anyhow::anyhow!(err))
        }
    }
}

/// The text result on stdout: a few `key: value` lines a script can grep.
fn summary(report: &RunReport) -> String {
    let outcome = serde_json::to_value(report.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut text = format!(
        "release: {}\noutcome: {outcome}\nreason: {}\n",
        report.release, report.reason
    );
    if let Some(model) = &report.model {
        text.push_str(&format!("model: {model}\n"));
    }
    if let Some(digest) = &report.digest {
        text.push_str(&format!("digest: {digest}\n"));
    }
    if let Some(revision) = report.revision {
        text.push_str(&format!("revision: {revision}\n"));
    }
    if !report.steps.is_empty() {
        let steps: Vec<String> = report
            .steps
            .iter()
            .map(|step| {
                format!(
                    "{}% → {}%{}",
                    step.requested_percent,
                    step.actual_percent,
                    if step.rounded_up { " (rounded up)" } else { "" }
                )
            })
            .collect();
        text.push_str(&format!(
            "steps (requested → actual): {}\n",
            steps.join(", ")
        ));
    }
    text.push_str(&format!("gates: {}\n", report.gates.summary()));
    let simulated: Vec<&str> = report
        .backends
        .iter()
        .filter(|(_, info)| info.simulated)
        .map(|(name, _)| name.as_str())
        .collect();
    if !simulated.is_empty() {
        text.push_str(&format!("simulated: {}\n", simulated.join(", ")));
    }
    text
}
